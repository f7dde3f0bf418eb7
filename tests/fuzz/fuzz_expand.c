/*
 * fuzz_expand.c: libFuzzer target for parent_deliver_expand().
 * Input: one byte choosing the output size, then template, home, user
 * and rcpt separated by NUL bytes (a missing field is NULL).  Checks that
 * a result is absolute, bounded and the same at any output size, and that
 * a substituted value never adds a "." or ".." component (so no "/../" or
 * "/./") or a control byte: the expansion with the same template and home
 * but harmless values must have such a component at the same place.
 * SECURITY: test code.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../smtpd/parent_deliver.h"

#define FUZZ_BIG	(2 * PATH_MAX)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Whether a path component is "." or "..". */
static int
fuzz_dot_component(const char *s, size_t len)
{
	return (len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.');
}

/* Compare real and safe expansions component by component. */
static void
fuzz_compare(const char *real, const char *safe)
{
	const char	*r = real, *s = safe, *re, *se;
	const unsigned char *p;

	for (p = (const unsigned char *)real; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
	if ((strstr(real, "/../") != NULL && strstr(safe, "/../") == NULL) ||
	    (strstr(real, "/./") != NULL && strstr(safe, "/./") == NULL))
		abort();
	for (;;) {
		re = strchr(r, '/');
		se = strchr(s, '/');
		if ((re == NULL) != (se == NULL))
			abort();	/* a value added a '/' */
		if (re == NULL)
			re = r + strlen(r);
		if (se == NULL)
			se = s + strlen(s);
		if (fuzz_dot_component(r, re - r) &&
		    !fuzz_dot_component(s, se - s))
			abort();
		if ((re == r) != (se == s))
			abort();	/* an empty component appeared */
		if (*re == '\0')
			break;
		r = re + 1;
		s = se + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t	 sizes[8] = { 1, 2, 8, 16, 32, 64, 256,
				    PATH_MAX };
	static char		 big[FUZZ_BIG], small[PATH_MAX];
	static char		 safe[3 * FUZZ_BIG + 16];
	char			*copy, *field[4] = { NULL, NULL, NULL, NULL };
	char			 err[256];
	size_t			 outsz, i, n;
	int			 rc_big, rc_small, rc_safe;

	if (size < 1)
		return 0;
	outsz = sizes[data[0] & 7];
	if ((copy = malloc(size)) == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	/* Split at NULs: up to four fields, the rest is ignored. */
	field[0] = copy;
	for (i = 0, n = 1; i < size - 1 && n < 4; i++)
		if (copy[i] == '\0')
			field[n++] = copy + i + 1;

	rc_big = parent_deliver_expand(field[0], field[1], field[2], field[3],
	    big, sizeof(big), err, sizeof(err));
	if (rc_big == 0) {
		if (big[0] != '/' || strlen(big) >= sizeof(big))
			abort();
	} else {
		if (rc_big != -1 || big[0] != '\0' || err[0] == '\0' ||
		    strchr(err, '\n') != NULL)
			abort();
	}

	/* The same answer at any size, or "too long": never a prefix. */
	rc_small = parent_deliver_expand(field[0], field[1], field[2],
	    field[3], small, outsz, err, sizeof(err));
	if (rc_small == 0 && (rc_big != 0 || strcmp(small, big) != 0))
		abort();
	if (rc_small != 0) {
		if (small[0] != '\0')
			abort();
		if (rc_big == 0 && strlen(big) < outsz)
			abort();
	}

	if (rc_big == 0) {
		rc_safe = parent_deliver_expand(field[0], field[1], "u", "r@d",
		    safe, sizeof(safe), err, sizeof(err));
		if (rc_safe != 0)
			abort();
		fuzz_compare(big, safe);
	}
	free(copy);
	return 0;
}
