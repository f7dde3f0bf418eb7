/*
 * fuzz_addr.c: libFuzzer target for common/addr.c.  The first byte
 * selects the ADDR_* flags, the rest is a path or mailbox.  Checks the
 * bounds of what is parsed and that formatting and parsing again gives
 * the same address.
 * SECURITY: test code.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Invariants of a parsed address; abort() on violation. */
static void
fuzz_addr_check(const struct mailaddr *a, int flags)
{
	struct mailaddr	 b;
	char		 buf[ADDR_MAX + 1];
	const char	*why;
	int		 rflags;

	rflags = flags | ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER;
	if (strnlen(a->local, sizeof(a->local)) > ADDR_LOCAL_MAX ||
	    strnlen(a->domain, sizeof(a->domain)) > ADDR_DOMAIN_MAX)
		abort();
	if (addr_is_utf8(a) && !(flags & ADDR_UTF8))
		abort();
	if (a->domain[0] != '\0' && a->domain[0] != '[' &&
	    !addr_domain_valid(a->domain, flags & ADDR_UTF8))
		abort();
	if (a->domain[0] == '[' &&
	    !addr_literal_valid(a->domain, strlen(a->domain)))
		abort();
	if (addr_format(a, buf, sizeof(buf)) != 0)
		abort();
	if (addr_parse_mailbox(buf, strlen(buf), rflags, &b, &why) != 0)
		abort();
	if (strcmp(a->local, b.local) != 0 || strcmp(a->domain, b.domain) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mailaddr	 a;
	const char	*s, *why = NULL;
	size_t		 used = 0, len;
	int		 flags;
	char		*z;

	if (size < 1)
		return 0;
	flags = data[0] & (ADDR_ALLOW_NULL | ADDR_ALLOW_POSTMASTER | ADDR_UTF8);
	s = (const char *)data + 1;
	len = size - 1;

	if (addr_parse_path(s, len, flags, &a, &used, &why) == 0) {
		if (used < 2 || used > len || s[used - 1] != '>')
			abort();
		fuzz_addr_check(&a, flags);
	} else if (why == NULL)
		abort();

	why = NULL;
	if (addr_parse_mailbox(s, len, flags, &a, &why) == 0)
		fuzz_addr_check(&a, flags);
	else if (why == NULL)
		abort();

	(void)addr_literal_valid(s, len);
	if ((z = malloc(len + 1)) == NULL)
		return 0;
	memcpy(z, s, len);
	z[len] = '\0';
	(void)addr_domain_valid(z, flags & ADDR_UTF8);
	free(z);
	return 0;
}
