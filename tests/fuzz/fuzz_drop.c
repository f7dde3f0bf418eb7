/*
 * fuzz_drop.c: libFuzzer target for drop_parse() (common/drop.c), the
 * reader of offline drop files any local user may write.  Besides not
 * crashing, a parse that succeeds must hold only what the format allows.
 * SECURITY: test code.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drop.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* An accepted address: bounded, no space, control, '<' or '>'. */
static void
fuzz_addr_check(const char *a)
{
	size_t	 i, len = strnlen(a, DROP_ADDRMAX);

	if (len >= DROP_ADDRMAX)
		abort();
	for (i = 0; i < len; i++)
		if ((unsigned char)a[i] <= ' ' || a[i] == 0x7f ||
		    a[i] == '<' || a[i] == '>')
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct drop_msg	 m;
	char		 err[128], *buf;
	size_t		 i;

	/* A private copy: an over-read shows up at its exact end. */
	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	if (drop_parse(buf, size, &m, err, sizeof(err)) == 0) {
		if (m.nrcpts == 0 || m.nrcpts > DROP_MAXRCPT)
			abort();
		fuzz_addr_check(m.sender);
		for (i = 0; i < m.nrcpts; i++) {
			if (m.rcpts[i][0] == '\0')
				abort();
			fuzz_addr_check(m.rcpts[i]);
		}
		if (m.body < buf || m.body + m.bodylen != buf + size)
			abort();
		for (i = 0; i < m.bodylen; i++)
			if ((m.body[i] == '\n' && (i == 0 ||
			    m.body[i - 1] != '\r')) || (m.body[i] == '\r' &&
			    (i + 1 == m.bodylen || m.body[i + 1] != '\n')))
				abort();
		drop_free(&m);
	} else if (err[0] == '\0' || m.rcpts != NULL)
		abort();
	free(buf);
	return 0;
}
