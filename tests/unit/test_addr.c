/*
 * test_addr.c: unit tests for common/addr.c (paths, mailboxes, domains,
 * literals, UTF-8, formatting).
 * SECURITY: test code; inputs are copied to exact-size heap buffers so
 * that ASan catches any read past the given length.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"

/* Heap copy of n bytes without a NUL, so over-reads are caught. */
static char *
dup_exact(const char *s, size_t n)
{
	char	*p = malloc(n == 0 ? 1 : n);

	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

static int
path_n(const char *s, size_t n, int flags, struct mailaddr *a, size_t *used,
    const char **why)
{
	char	*p = dup_exact(s, n);
	int	 r;

	r = addr_parse_path(p, n, flags, a, used, why);
	free(p);
	return r;
}

static int
mbox_n(const char *s, size_t n, int flags, struct mailaddr *a,
    const char **why)
{
	char	*p = dup_exact(s, n);
	int	 r;

	r = addr_parse_mailbox(p, n, flags, a, why);
	free(p);
	return r;
}

#define PATH_OK(s, fl, l, d) do {					\
	struct mailaddr a_; size_t u_ = 0; const char *w_ = NULL;	\
	assert_int_equal(path_n((s), strlen(s), (fl), &a_, &u_, &w_), 0); \
	assert_string_equal(a_.local, (l));				\
	assert_string_equal(a_.domain, (d));				\
	assert_int_equal(u_, strlen(s));				\
} while (0)

#define PATH_BAD(s, fl, reason) do {					\
	struct mailaddr a_; size_t u_ = 0; const char *w_ = NULL;	\
	assert_int_equal(path_n((s), strlen(s), (fl), &a_, &u_, &w_), -1); \
	assert_non_null(w_);						\
	assert_string_equal(w_, (reason));				\
} while (0)

#define MBOX_OK(s, fl, l, d) do {					\
	struct mailaddr a_; const char *w_ = NULL;			\
	assert_int_equal(mbox_n((s), strlen(s), (fl), &a_, &w_), 0);	\
	assert_string_equal(a_.local, (l));				\
	assert_string_equal(a_.domain, (d));				\
} while (0)

#define MBOX_BAD(s, fl, reason) do {					\
	struct mailaddr a_; const char *w_ = NULL;			\
	assert_int_equal(mbox_n((s), strlen(s), (fl), &a_, &w_), -1);	\
	assert_non_null(w_);						\
	assert_string_equal(w_, (reason));				\
} while (0)

static void
test_path_simple(void **state)
{
	PATH_OK("<a@b.c>", 0, "a", "b.c");
	PATH_OK("<john.q.public@example.com>", 0, "john.q.public",
	    "example.com");
	PATH_OK("<A.B@Example.COM>", 0, "A.B", "example.com");
	PATH_OK("<x@localhost>", 0, "x", "localhost");
	PATH_OK("<x@a-b.c0m>", 0, "x", "a-b.c0m");
	PATH_OK("<x@123.example>", 0, "x", "123.example");
	PATH_OK("<!#$%&'*+-/=?^_`{|}~@x.y>", 0, "!#$%&'*+-/=?^_`{|}~", "x.y");
}

static void
test_path_used(void **state)
{
	struct mailaddr	 a;
	size_t		 used = 0;
	const char	*why = NULL;
	const char	*s = "<a@b.c> SIZE=10";

	assert_int_equal(path_n(s, strlen(s), 0, &a, &used, &why), 0);
	assert_int_equal(used, 7);
	assert_string_equal(a.local, "a");
	s = "<>BODY";
	assert_int_equal(path_n(s, strlen(s), ADDR_ALLOW_NULL, &a, &used,
	    &why), 0);
	assert_int_equal(used, 2);
	/* the length is honoured: the '>' past len is not seen */
	s = "<a@b.c>";
	PATH_BAD("<a@b.c", 0, ADDR_ERR_NOCLOSE);
	assert_int_equal(path_n(s, 6, 0, &a, &used, &why), -1);
	assert_string_equal(why, ADDR_ERR_NOCLOSE);
	assert_int_equal(path_n(s, 0, 0, &a, &used, &why), -1);
	assert_string_equal(why, ADDR_ERR_NOBRACKET);
}

static void
test_path_null(void **state)
{
	PATH_OK("<>", ADDR_ALLOW_NULL, "", "");
	PATH_BAD("<>", 0, ADDR_ERR_EMPTY);
	PATH_BAD("<>", ADDR_ALLOW_POSTMASTER, ADDR_ERR_EMPTY);
	PATH_BAD("< >", ADDR_ALLOW_NULL, ADDR_ERR_LOCALCHAR);
}

static void
test_path_postmaster(void **state)
{
	PATH_OK("<postmaster>", ADDR_ALLOW_POSTMASTER, "postmaster", "");
	PATH_OK("<PostMaster>", ADDR_ALLOW_POSTMASTER, "postmaster", "");
	PATH_BAD("<postmaster>", 0, ADDR_ERR_NODOMAIN);
	PATH_BAD("<postmaster>", ADDR_ALLOW_NULL, ADDR_ERR_NODOMAIN);
	PATH_BAD("<\"postmaster\">", ADDR_ALLOW_POSTMASTER, ADDR_ERR_NODOMAIN);
	PATH_BAD("<@a.b:postmaster>", ADDR_ALLOW_POSTMASTER,
	    ADDR_ERR_NODOMAIN);
	PATH_BAD("<postmasterx>", ADDR_ALLOW_POSTMASTER, ADDR_ERR_NODOMAIN);
	PATH_OK("<Postmaster@Example.org>", ADDR_ALLOW_POSTMASTER,
	    "Postmaster", "example.org");
}

static void
test_path_quoted(void **state)
{
	PATH_OK("<\"a b\"@x.y>", 0, "a b", "x.y");
	PATH_OK("<\"a\\\"b\"@x>", 0, "a\"b", "x");
	PATH_OK("<\"a\\\\b\"@x>", 0, "a\\b", "x");
	PATH_OK("<\"a\\ b\"@x>", 0, "a b", "x");
	PATH_OK("<\"abc\"@x>", 0, "abc", "x");
	PATH_OK("<\"a..b\"@x>", 0, "a..b", "x");
	PATH_OK("<\".a.\"@x>", 0, ".a.", "x");
	PATH_OK("<\"a@b\"@x>", 0, "a@b", "x");
	PATH_OK("<\"a>b\"@x>", 0, "a>b", "x");
	PATH_BAD("<\"\"@x>", 0, ADDR_ERR_LOCALEMPTY);
	PATH_BAD("<\"abc@x>", 0, ADDR_ERR_QUOTE);
	PATH_BAD("<\"abc\\", 0, ADDR_ERR_QUOTE);
	PATH_BAD("<\"a\tb\"@x>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<\"a\\\tb\"@x>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<\"a\x7f\"@x>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<a\"b\"@x>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<\"a\".\"b\"@x>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<\"a\"b@x>", 0, ADDR_ERR_LOCALCHAR);
}

static void
test_path_nul(void **state)
{
	struct mailaddr	 a;
	size_t		 used;
	const char	*why = NULL;

	assert_int_equal(path_n("<a\0b@x>", 7, 0, &a, &used, &why), -1);
	assert_string_equal(why, ADDR_ERR_LOCALCHAR);
	assert_int_equal(path_n("<\"a\0b\"@x>", 9, 0, &a, &used, &why), -1);
	assert_string_equal(why, ADDR_ERR_LOCALCHAR);
	assert_int_equal(path_n("<a@x\0y>", 7, 0, &a, &used, &why), -1);
	assert_string_equal(why, ADDR_ERR_DOMAIN);
	assert_int_equal(path_n("<a@[1.2.3.4\0]>", 14, 0, &a, &used, &why),
	    -1);
	assert_string_equal(why, ADDR_ERR_LITERAL);
}

static void
test_path_local_dots(void **state)
{
	PATH_BAD("<.a@b>", 0, ADDR_ERR_LOCALDOT);
	PATH_BAD("<a.@b>", 0, ADDR_ERR_LOCALDOT);
	PATH_BAD("<a..b@b>", 0, ADDR_ERR_LOCALDOT);
	PATH_BAD("<.@b>", 0, ADDR_ERR_LOCALDOT);
	PATH_OK("<a.b.c@b>", 0, "a.b.c", "b");
}

static void
test_path_local_chars(void **state)
{
	PATH_BAD("<a b@c>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<a\x01@c>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<a(b)@c>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<a,b@c>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<a[b@c>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<a\\b@c>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<a:b@c>", 0, ADDR_ERR_LOCALCHAR);
	PATH_BAD("<@c>", 0, ADDR_ERR_ROUTE);
	PATH_BAD("<@c:@d>", 0, ADDR_ERR_LOCALEMPTY);
	PATH_BAD("<a@b@c>", 0, ADDR_ERR_DOMAIN);
}

static void
test_path_percent_bang(void **state)
{
	/* Parsed as plain local parts: the policy layer decides. */
	PATH_OK("<user%other@dom.example>", 0, "user%other", "dom.example");
	PATH_OK("<host!user@dom.example>", 0, "host!user", "dom.example");
	PATH_OK("<a!b%c@d>", 0, "a!b%c", "d");
}

static void
test_path_route(void **state)
{
	PATH_OK("<@r1.example:u@d.example>", 0, "u", "d.example");
	PATH_OK("<@r1.example,@r2.example:u@d.example>", 0, "u", "d.example");
	PATH_OK("<@[192.0.2.1]:u@d>", 0, "u", "d");
	PATH_OK("<@r:\"a b\"@d>", 0, "a b", "d");
	PATH_BAD("<@r1,r2:u@d>", 0, ADDR_ERR_ROUTE);
	PATH_BAD("<@r1;u@d>", 0, ADDR_ERR_ROUTE);
	PATH_BAD("<@:u@d>", 0, ADDR_ERR_ROUTE);
	PATH_BAD("<@r1.,@r2:u@d>", 0, ADDR_ERR_ROUTE);
	PATH_BAD("<@r1,@r2", 0, ADDR_ERR_ROUTE);
	PATH_BAD("<@r1,", 0, ADDR_ERR_ROUTE);
	PATH_BAD("<@r1", 0, ADDR_ERR_ROUTE);
	PATH_BAD("<@r1:", 0, ADDR_ERR_NOCLOSE);
	PATH_BAD("<@r1:u>", 0, ADDR_ERR_NODOMAIN);
}

static void
test_path_brackets(void **state)
{
	PATH_BAD("a@b", 0, ADDR_ERR_NOBRACKET);
	PATH_BAD(" <a@b>", 0, ADDR_ERR_NOBRACKET);
	PATH_BAD("", 0, ADDR_ERR_NOBRACKET);
	PATH_BAD("<", 0, ADDR_ERR_NOCLOSE);
	PATH_BAD("<a", 0, ADDR_ERR_NOCLOSE);
	PATH_BAD("<a@b", 0, ADDR_ERR_NOCLOSE);
	PATH_BAD("<a@b ", 0, ADDR_ERR_DOMAIN);
	PATH_BAD("<a@b >", 0, ADDR_ERR_DOMAIN);
	PATH_BAD("<a@[1.2.3.4]", 0, ADDR_ERR_NOCLOSE);
	PATH_BAD("<a@[1.2.3.4]x>", 0, ADDR_ERR_NOCLOSE);
	PATH_BAD("<a>", 0, ADDR_ERR_NODOMAIN);
	PATH_BAD("<a@>", 0, ADDR_ERR_NODOMAIN);
}

static void
test_path_domain(void **state)
{
	PATH_BAD("<a@b.>", 0, ADDR_ERR_DOMAIN);
	PATH_BAD("<a@.b>", 0, ADDR_ERR_DOMAIN);
	PATH_BAD("<a@b..c>", 0, ADDR_ERR_DOMAIN);
	PATH_BAD("<a@-b.c>", 0, ADDR_ERR_DOMAIN);
	PATH_BAD("<a@b-.c>", 0, ADDR_ERR_DOMAIN);
	PATH_BAD("<a@b.c->", 0, ADDR_ERR_DOMAIN);
	PATH_BAD("<a@b_c.d>", 0, ADDR_ERR_DOMAIN);
	PATH_BAD("<a@.>", 0, ADDR_ERR_DOMAIN);
	PATH_OK("<a@b--c.d>", 0, "a", "b--c.d");
	PATH_OK("<a@xn--bcher-kva.example>", 0, "a", "xn--bcher-kva.example");
}

static void
test_path_lengths(void **state)
{
	char	 buf[600], l64[65], l63[64], l65[66];
	size_t	 i;

	memset(l64, 'a', 64);
	l64[64] = '\0';
	memset(l65, 'b', 65);
	l65[65] = '\0';
	memset(l63, 'c', 63);
	l63[63] = '\0';

	snprintf(buf, sizeof(buf), "<%s@x>", l64);
	PATH_OK(buf, 0, l64, "x");
	snprintf(buf, sizeof(buf), "<%s@x>", l65);
	PATH_BAD(buf, 0, ADDR_ERR_LOCALLONG);
	snprintf(buf, sizeof(buf), "<\"%s\"@x>", l64);
	PATH_OK(buf, 0, l64, "x");
	snprintf(buf, sizeof(buf), "<\"%s\"@x>", l65);
	PATH_BAD(buf, 0, ADDR_ERR_LOCALLONG);

	/* the limit is on the unquoted form: 64 escaped quotes fit */
	buf[0] = '<';
	buf[1] = '"';
	for (i = 0; i < 64; i++) {
		buf[2 + 2 * i] = '\\';
		buf[3 + 2 * i] = '"';
	}
	strlcpy(buf + 130, "\"@x>", sizeof(buf) - 130);
	{
		struct mailaddr	a;
		size_t		used;
		const char	*why;
		char		exp[65];

		memset(exp, '"', 64);
		exp[64] = '\0';
		assert_int_equal(path_n(buf, strlen(buf), 0, &a, &used, &why),
		    0);
		assert_string_equal(a.local, exp);
	}

	/* labels of 63 are fine, 64 is not */
	{
		char	dom[80];

		snprintf(dom, sizeof(dom), "%s.com", l63);
		snprintf(buf, sizeof(buf), "<a@%s>", dom);
		PATH_OK(buf, 0, "a", dom);
	}
	snprintf(buf, sizeof(buf), "<a@%sc.com>", l63);
	PATH_BAD(buf, 0, ADDR_ERR_DOMAIN);
	snprintf(buf, sizeof(buf), "<a@x.%sc>", l63);
	PATH_BAD(buf, 0, ADDR_ERR_DOMAIN);

	/* 4 labels of 63 and 3 dots: 255, the maximum */
	{
		char	d255[256], d256[257];

		snprintf(d255, sizeof(d255), "%s.%s.%s.%s", l63, l63, l63, l63);
		assert_int_equal(strlen(d255), 255);
		snprintf(buf, sizeof(buf), "<a@%s>", d255);
		PATH_OK(buf, 0, "a", d255);
		snprintf(d256, sizeof(d256), "%s.%s.%s.%sc", l63, l63, l63,
		    l63);
		snprintf(buf, sizeof(buf), "<a@%s>", d256);
		PATH_BAD(buf, 0, ADDR_ERR_DOMAINLONG);
	}
}

static void
test_path_literal(void **state)
{
	PATH_OK("<u@[192.0.2.1]>", 0, "u", "[192.0.2.1]");
	PATH_OK("<u@[IPv6:2001:DB8::1]>", 0, "u", "[IPv6:2001:db8::1]");
	PATH_OK("<u@[ipv6:::1]>", 0, "u", "[IPv6:::1]");
	PATH_OK("<u@[IPv6:::ffff:192.0.2.1]>", 0, "u",
	    "[IPv6:::ffff:192.0.2.1]");
	PATH_OK("<u@[IPv6:2001:db8:0:0:0:0:0:1]>", 0, "u",
	    "[IPv6:2001:db8:0:0:0:0:0:1]");
	PATH_BAD("<u@[1.2.3]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[1.2.3.256]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[1.2.3.4.5]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[ 1.2.3.4]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[IPv6:]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[IPv6:zz::1]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[IPv6:1.2.3.4]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[2001:db8::1]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[tag:something]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[1.2.3.4>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, ADDR_ERR_LITERAL);
	PATH_BAD("<u@[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]>",
	    0, ADDR_ERR_LITERAL);
}

static void
test_path_utf8(void **state)
{
	PATH_OK("<\xc4\x88u@example.com>", ADDR_UTF8, "\xc4\x88u",
	    "example.com");
	PATH_BAD("<\xc4\x88u@example.com>", 0, ADDR_ERR_LOCALCHAR);
	PATH_OK("<a@b\xc3\xbc" "cher.de>", ADDR_UTF8, "a",
	    "b\xc3\xbc" "cher.de");
	PATH_BAD("<a@b\xc3\xbc" "cher.de>", 0, ADDR_ERR_DOMAIN);
	/* ASCII letters are lowercased, the rest is left alone */
	PATH_OK("<a@B\xc3\x9c" "CHER.DE>", ADDR_UTF8, "a",
	    "b\xc3\x9c" "cher.de");
	PATH_OK("<\"\xe2\x82\xac x\"@e.x>", ADDR_UTF8, "\xe2\x82\xac x", "e.x");
	PATH_OK("<\xf0\x9f\x98\x80@e.x>", ADDR_UTF8, "\xf0\x9f\x98\x80", "e.x");
	PATH_OK("<\xef\xbf\xbf@e.x>", ADDR_UTF8, "\xef\xbf\xbf", "e.x");
	PATH_OK("<\xf4\x8f\xbf\xbf@e.x>", ADDR_UTF8, "\xf4\x8f\xbf\xbf", "e.x");
	/* overlong, surrogate, out of range, truncated, stray */
	PATH_BAD("<\xc0\xaf@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\xc1\xbf@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\xe0\x80\xaf@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\xf0\x80\x80\xaf@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\xed\xa0\x80@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\xed\xbf\xbf@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\xf4\x90\x80\x80@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\xf5\x80\x80\x80@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\xc3@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<a\x80@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\xfe@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<\"\xc3\"@e.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<a@e\xc3.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<a@e\xed\xa0\x80.x>", ADDR_UTF8, ADDR_ERR_UTF8);
	/* truncated at the end of the buffer: never read past len */
	PATH_BAD("<\xe2\x82", ADDR_UTF8, ADDR_ERR_UTF8);
	PATH_BAD("<a@\xf0\x9f", ADDR_UTF8, ADDR_ERR_UTF8);
}

static void
test_mailbox(void **state)
{
	MBOX_OK("a@b.c", 0, "a", "b.c");
	MBOX_OK("Joe@Example.COM", 0, "Joe", "example.com");
	MBOX_OK("\"x y\"@z", 0, "x y", "z");
	MBOX_OK("u@[10.0.0.1]", 0, "u", "[10.0.0.1]");
	MBOX_OK("", ADDR_ALLOW_NULL, "", "");
	MBOX_OK("postmaster", ADDR_ALLOW_POSTMASTER, "postmaster", "");
	MBOX_OK("POSTMASTER", ADDR_ALLOW_POSTMASTER, "postmaster", "");
	MBOX_OK("user%other@dom", 0, "user%other", "dom");
	MBOX_OK("\xc3\xa9@\xc3\xa9.fr", ADDR_UTF8, "\xc3\xa9", "\xc3\xa9.fr");
	MBOX_BAD("", 0, ADDR_ERR_EMPTY);
	MBOX_BAD("postmaster", 0, ADDR_ERR_NODOMAIN);
	MBOX_BAD("a", 0, ADDR_ERR_NODOMAIN);
	MBOX_BAD("a@", 0, ADDR_ERR_NODOMAIN);
	MBOX_BAD("@b", 0, ADDR_ERR_LOCALEMPTY);
	MBOX_BAD("a@b c", 0, ADDR_ERR_DOMAIN);
	MBOX_BAD("a@b.", 0, ADDR_ERR_DOMAIN);
	MBOX_BAD("a@b>", 0, ADDR_ERR_DOMAIN);
	MBOX_BAD("a@[1.2.3.4] ", 0, ADDR_ERR_TRAILING);
	MBOX_BAD("<a@b>", 0, ADDR_ERR_LOCALCHAR);
	MBOX_BAD("a b@c", 0, ADDR_ERR_LOCALCHAR);
	MBOX_BAD("a..b@c", 0, ADDR_ERR_LOCALDOT);
	MBOX_BAD("\"ab@c", 0, ADDR_ERR_QUOTE);
	MBOX_BAD("\xc3\xa9@x", 0, ADDR_ERR_LOCALCHAR);
	MBOX_BAD("@r:a@b", 0, ADDR_ERR_LOCALEMPTY);
}

static void
test_no_write_on_error(void **state)
{
	struct mailaddr	 a, b;
	size_t		 used = 77;
	const char	*why;

	memset(&a, 0x5a, sizeof(a));
	memcpy(&b, &a, sizeof(b));
	assert_int_equal(path_n("<a@b.>", 6, 0, &a, &used, &why), -1);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(used, 77);
	assert_int_equal(mbox_n("a@b.", 4, 0, &a, &why), -1);
	assert_memory_equal(&a, &b, sizeof(a));
}

#define FMT_IS(l, d, exp) do {						\
	struct mailaddr a_; char b_[ADDR_MAX + 1];			\
	memset(&a_, 0, sizeof(a_));					\
	strlcpy(a_.local, (l), sizeof(a_.local));			\
	strlcpy(a_.domain, (d), sizeof(a_.domain));			\
	assert_int_equal(addr_format(&a_, b_, sizeof(b_)), 0);		\
	assert_string_equal(b_, (exp));					\
} while (0)

static void
test_format(void **state)
{
	FMT_IS("a", "b.c", "a@b.c");
	FMT_IS("a.b", "c", "a.b@c");
	FMT_IS("", "", "");
	FMT_IS("postmaster", "", "postmaster");
	FMT_IS("a b", "x", "\"a b\"@x");
	FMT_IS("a\"b", "x", "\"a\\\"b\"@x");
	FMT_IS("a\\b", "x", "\"a\\\\b\"@x");
	FMT_IS(".a", "x", "\".a\"@x");
	FMT_IS("a.", "x", "\"a.\"@x");
	FMT_IS("a..b", "x", "\"a..b\"@x");
	FMT_IS("a@b", "x", "\"a@b\"@x");
	FMT_IS("user%other", "x", "user%other@x");
	FMT_IS("\xc3\xa9", "\xc3\xa9.fr", "\xc3\xa9@\xc3\xa9.fr");
	FMT_IS("u", "[IPv6:::1]", "u@[IPv6:::1]");
}

static void
test_format_bounds(void **state)
{
	struct mailaddr	 a;
	char		 buf[ADDR_MAX + 1];
	size_t		 i;

	memset(&a, 0, sizeof(a));
	strlcpy(a.local, "ab", sizeof(a.local));
	strlcpy(a.domain, "cd", sizeof(a.domain));
	assert_int_equal(addr_format(&a, buf, 6), 0);
	assert_string_equal(buf, "ab@cd");
	assert_int_equal(addr_format(&a, buf, 5), -1);
	assert_string_equal(buf, "");
	assert_int_equal(addr_format(&a, buf, 1), -1);
	assert_int_equal(addr_format(&a, buf, 0), -1);
	strlcpy(a.local, "a b", sizeof(a.local));
	assert_int_equal(addr_format(&a, buf, 9), 0);
	assert_string_equal(buf, "\"a b\"@cd");
	for (i = 0; i < 9; i++)
		assert_int_equal(addr_format(&a, buf, i), -1);
	memset(&a, 0, sizeof(a));
	assert_int_equal(addr_format(&a, buf, 1), 0);
	assert_string_equal(buf, "");

	/* worst case: 64 quotes and a 255-octet domain is ADDR_MAX */
	memset(a.local, '"', ADDR_LOCAL_MAX);
	memset(a.domain, 'd', ADDR_DOMAIN_MAX);
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), ADDR_MAX);
	assert_int_equal(addr_format(&a, buf, ADDR_MAX), -1);

	/* controls never reach a line-oriented format */
	memset(&a, 0, sizeof(a));
	strlcpy(a.local, "a\r\nb", sizeof(a.local));
	strlcpy(a.domain, "x", sizeof(a.domain));
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");
	strlcpy(a.local, "a", sizeof(a.local));
	strlcpy(a.domain, "x\ty", sizeof(a.domain));
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), -1);
	strlcpy(a.domain, "x\x7f", sizeof(a.domain));
	assert_int_equal(addr_format(&a, buf, sizeof(buf)), -1);
}

static void
test_format_roundtrip(void **state)
{
	static const char *in[] = {
		"a@b.c", "\"a b\"@x", "\"a\\\"b\"@x", "\"a\\\\b\"@x",
		"\".a\"@x", "u@[192.0.2.1]", "u@[IPv6:2001:db8::1]",
		"x.y.z@d", "\"a@b\"@c", "\xc3\xa9@\xc3\xa9.fr",
	};
	struct mailaddr	 a, b;
	char		 buf[ADDR_MAX + 1];
	const char	*why;
	size_t		 i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_int_equal(mbox_n(in[i], strlen(in[i]), ADDR_UTF8, &a,
		    &why), 0);
		assert_int_equal(addr_format(&a, buf, sizeof(buf)), 0);
		assert_string_equal(buf, in[i]);
		assert_int_equal(mbox_n(buf, strlen(buf), ADDR_UTF8, &b,
		    &why), 0);
		assert_memory_equal(&a, &b, sizeof(a));
	}
}

static void
test_is_utf8(void **state)
{
	struct mailaddr	a;

	memset(&a, 0, sizeof(a));
	strlcpy(a.local, "abc", sizeof(a.local));
	strlcpy(a.domain, "example.com", sizeof(a.domain));
	assert_int_equal(addr_is_utf8(&a), 0);
	strlcpy(a.local, "\xc3\xa9", sizeof(a.local));
	assert_int_equal(addr_is_utf8(&a), 1);
	strlcpy(a.local, "abc", sizeof(a.local));
	strlcpy(a.domain, "\xc3\xa9.fr", sizeof(a.domain));
	assert_int_equal(addr_is_utf8(&a), 1);
	memset(&a, 0, sizeof(a));
	assert_int_equal(addr_is_utf8(&a), 0);
}

static void
test_domain_valid(void **state)
{
	char	d[300];

	assert_int_equal(addr_domain_valid("example.com", 0), 1);
	assert_int_equal(addr_domain_valid("localhost", 0), 1);
	assert_int_equal(addr_domain_valid("a", 0), 1);
	assert_int_equal(addr_domain_valid("1.2.3.4", 0), 1);
	assert_int_equal(addr_domain_valid("MX1.Example.COM", 0), 1);
	assert_int_equal(addr_domain_valid("", 0), 0);
	assert_int_equal(addr_domain_valid(NULL, 0), 0);
	assert_int_equal(addr_domain_valid(".", 0), 0);
	assert_int_equal(addr_domain_valid("example.com.", 0), 0);
	assert_int_equal(addr_domain_valid(".example.com", 0), 0);
	assert_int_equal(addr_domain_valid("a..b", 0), 0);
	assert_int_equal(addr_domain_valid("a_b.c", 0), 0);
	assert_int_equal(addr_domain_valid("-a.b", 0), 0);
	assert_int_equal(addr_domain_valid("a-.b", 0), 0);
	assert_int_equal(addr_domain_valid("a b", 0), 0);
	assert_int_equal(addr_domain_valid("[1.2.3.4]", 0), 0);
	assert_int_equal(addr_domain_valid("b\xc3\xbc" "cher.de", 0), 0);
	assert_int_equal(addr_domain_valid("b\xc3\xbc" "cher.de", 1), 1);
	assert_int_equal(addr_domain_valid("b\xc3" "cher.de", 1), 0);
	memset(d, 'a', 63);
	d[63] = '\0';
	assert_int_equal(addr_domain_valid(d, 0), 1);
	d[63] = 'a';
	d[64] = '\0';
	assert_int_equal(addr_domain_valid(d, 0), 0);
	/* 256 octets is too long even if every label is fine */
	memset(d, 'a', 256);
	d[63] = d[127] = d[191] = d[255 - 1] = '.';
	d[256] = '\0';
	assert_int_equal(addr_domain_valid(d, 0), 0);
	d[255] = '\0';
	d[254] = 'a';
	assert_int_equal(addr_domain_valid(d, 0), 1);
}

static void
test_literal_valid(void **state)
{
	assert_int_equal(addr_literal_valid("[1.2.3.4]", 9), 1);
	assert_int_equal(addr_literal_valid("[IPv6:::1]", 10), 1);
	assert_int_equal(addr_literal_valid("[IPV6:fe80::1]", 14), 1);
	assert_int_equal(addr_literal_valid("[1.2.3.4]", 8), 0);
	assert_int_equal(addr_literal_valid("1.2.3.4", 7), 0);
	assert_int_equal(addr_literal_valid("[1.2.3.04]", 10), 0);
	assert_int_equal(addr_literal_valid("[::1]", 5), 0);
	assert_int_equal(addr_literal_valid("[IPv6:1.2.3.4]", 14), 0);
	assert_int_equal(addr_literal_valid("[]", 2), 0);
	assert_int_equal(addr_literal_valid("", 0), 0);
	assert_int_equal(addr_literal_valid(NULL, 0), 0);
}

static void
test_utf8_seqlen(void **state)
{
	static const struct {
		const char	*s;
		size_t		 len, want;
	} t[] = {
		{ "a", 1, 1 },
		{ "\x7f", 1, 1 },
		{ "\xc2\x80", 2, 2 },
		{ "\xdf\xbf", 2, 2 },
		{ "\xc2", 1, 0 },
		{ "\xc2\x41", 2, 0 },
		{ "\xc0\x80", 2, 0 },
		{ "\xc1\xbf", 2, 0 },
		{ "\xe0\xa0\x80", 3, 3 },
		{ "\xe0\x9f\xbf", 3, 0 },
		{ "\xed\x9f\xbf", 3, 3 },
		{ "\xed\xa0\x80", 3, 0 },
		{ "\xee\x80\x80", 3, 3 },
		{ "\xe1\x80", 2, 0 },
		{ "\xf0\x90\x80\x80", 4, 4 },
		{ "\xf0\x8f\xbf\xbf", 4, 0 },
		{ "\xf4\x8f\xbf\xbf", 4, 4 },
		{ "\xf4\x90\x80\x80", 4, 0 },
		{ "\xf5\x80\x80\x80", 4, 0 },
		{ "\xf1\x80\x80", 3, 0 },
		{ "\xf1\x80\x80\x7f", 4, 0 },
		{ "\x80", 1, 0 },
		{ "\xff", 1, 0 },
		{ "", 0, 0 },
	};
	size_t	i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(addr_utf8_seqlen((const unsigned char *)t[i].s,
		    t[i].len), t[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_simple),
		cmocka_unit_test(test_path_used),
		cmocka_unit_test(test_path_null),
		cmocka_unit_test(test_path_postmaster),
		cmocka_unit_test(test_path_quoted),
		cmocka_unit_test(test_path_nul),
		cmocka_unit_test(test_path_local_dots),
		cmocka_unit_test(test_path_local_chars),
		cmocka_unit_test(test_path_percent_bang),
		cmocka_unit_test(test_path_route),
		cmocka_unit_test(test_path_brackets),
		cmocka_unit_test(test_path_domain),
		cmocka_unit_test(test_path_lengths),
		cmocka_unit_test(test_path_literal),
		cmocka_unit_test(test_path_utf8),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_no_write_on_error),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_bounds),
		cmocka_unit_test(test_format_roundtrip),
		cmocka_unit_test(test_is_utf8),
		cmocka_unit_test(test_domain_valid),
		cmocka_unit_test(test_literal_valid),
		cmocka_unit_test(test_utf8_seqlen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
