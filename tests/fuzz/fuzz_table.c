/*
 * fuzz_table.c: libFuzzer target for common/table.c: arbitrary bytes as
 * a table file.  Checks that an accepted table is bounded and that every
 * entry is found again by a lookup in another case, and that a rejected
 * text leaves the table unchanged.
 * SECURITY: test code.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Entries are bounded, lowercased, free of CR and LF, and found. */
static void
fuzz_table_check(const struct table *t)
{
	struct table_entry	*e;
	char			 upper[TABLE_KEYMAX + 1];
	const char		*v;
	size_t			 n = 0, i, klen;

	RB_FOREACH(e, table_tree, (struct table_tree *)&t->entries) {
		klen = strlen(e->key);
		if (klen == 0 || klen > TABLE_KEYMAX ||
		    strpbrk(e->key, "\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ") != NULL)
			abort();
		if (e->value != NULL && (strlen(e->value) > TABLE_VALUEMAX ||
		    strpbrk(e->value, "\r\n") != NULL))
			abort();
		for (i = 0; i <= klen; i++)
			upper[i] = (e->key[i] >= 'a' && e->key[i] <= 'z') ?
			    e->key[i] - 'a' + 'A' : e->key[i];
		v = table_lookup(t, upper);
		if (v == NULL || strcmp(v, e->value != NULL ? e->value : "")
		    != 0)
			abort();
		n++;
	}
	if (n != t->count)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct table	*t;
	char		 err[256];
	char		*copy;

	if ((t = table_new("fuzz", TABLE_FILE, "/fuzz")) == NULL)
		return 0;
	if (table_add(t, "sentinel", "kept", err, sizeof(err)) == -1)
		abort();
	if ((copy = malloc(size == 0 ? 1 : size)) == NULL) {
		table_free(t);
		return 0;
	}
	memcpy(copy, data, size);
	err[0] = '\0';
	if (table_parse_text(t, copy, size, err, sizeof(err)) == -1) {
		/* Unchanged, and the message names the line. */
		if (t->count != 1 || strcmp(table_lookup(t, "SENTINEL"),
		    "kept") != 0 || strncmp(err, "line ", 5) != 0)
			abort();
	} else
		fuzz_table_check(t);
	free(copy);
	table_free(t);
	return 0;
}
