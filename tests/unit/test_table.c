/*
 * test_table.c: unit tests for common/table.c: adding and looking up
 * keys, the bounds on keys, values and entries, and the table file
 * format with its exact "line N: message" errors.
 * SECURITY: test code; table text is copied to an exact-size heap buffer
 * without a NUL so that ASan catches any read past the given length.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "table.h"

/* Parse n bytes of s from an exact-size copy. */
static int
parse_n(struct table *t, const char *s, size_t n, char *err, size_t errsz)
{
	char	*copy = malloc(n == 0 ? 1 : n);
	int	 rv;

	assert_non_null(copy);
	memcpy(copy, s, n);
	rv = table_parse_text(t, copy, n, err, errsz);
	free(copy);
	return rv;
}

static int
parse(struct table *t, const char *s, char *err, size_t errsz)
{
	return parse_n(t, s, strlen(s), err, errsz);
}

static void
expect_parse_err(const char *s, size_t n, const char *want)
{
	struct table	*t;
	char		 err[256];

	t = table_new("t", TABLE_FILE, "/x");
	assert_non_null(t);
	err[0] = '\0';
	assert_int_equal(parse_n(t, s, n, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	assert_int_equal(t->count, 0);
	assert_true(RB_EMPTY(&t->entries));
	table_free(t);
}

static void
test_new(void **state)
{
	struct table	*t;
	char		 name[TABLE_NAMELEN + 1], path[PATH_MAX + 1];

	t = table_new("aliases", TABLE_FILE, "/etc/aliases");
	assert_non_null(t);
	assert_string_equal(t->name, "aliases");
	assert_string_equal(t->path, "/etc/aliases");
	assert_int_equal(t->source, TABLE_FILE);
	assert_int_equal(t->count, 0);
	table_free(t);

	t = table_new("d", TABLE_INLINE, NULL);
	assert_non_null(t);
	assert_string_equal(t->path, "");
	table_free(t);
	table_free(NULL);

	/* Names and paths that do not fit are refused, not cut. */
	memset(name, 'n', TABLE_NAMELEN);
	name[TABLE_NAMELEN] = '\0';
	assert_null(table_new(name, TABLE_INLINE, NULL));
	name[TABLE_NAMELEN - 1] = '\0';
	t = table_new(name, TABLE_INLINE, NULL);
	assert_non_null(t);
	table_free(t);
	memset(path, 'p', PATH_MAX);
	path[PATH_MAX] = '\0';
	assert_null(table_new("t", TABLE_FILE, path));
}

static void
test_add_lookup(void **state)
{
	struct table		*t;
	struct table_entry	*e;
	char			 err[128];
	const char		*order[] = { "alpha", "beta", "gamma" };
	size_t			 i = 0;

	t = table_new("t", TABLE_INLINE, NULL);
	assert_non_null(t);
	assert_int_equal(table_add(t, "Gamma", NULL, err, sizeof(err)), 0);
	assert_int_equal(table_add(t, "ALPHA", "First Value", err,
	    sizeof(err)), 0);
	assert_int_equal(table_add(t, "beta", "", err, sizeof(err)), 0);
	assert_int_equal(t->count, 3);

	/* Lookups ignore case; values keep theirs; a list entry is "". */
	assert_string_equal(table_lookup(t, "alpha"), "First Value");
	assert_string_equal(table_lookup(t, "aLpHa"), "First Value");
	assert_string_equal(table_lookup(t, "GAMMA"), "");
	assert_string_equal(table_lookup(t, "beta"), "");
	assert_null(table_lookup(t, "delta"));
	assert_null(table_lookup(t, ""));
	assert_null(table_lookup(t, NULL));
	assert_null(table_lookup(NULL, "alpha"));
	assert_true(table_contains(t, "Beta"));
	assert_false(table_contains(t, "alph"));

	/* Keys are stored lowercased, in order. */
	RB_FOREACH(e, table_tree, &t->entries) {
		assert_true(i < 3);
		assert_string_equal(e->key, order[i]);
		i++;
	}
	assert_int_equal(i, 3);

	/* Duplicates, whatever their case. */
	assert_int_equal(table_add(t, "gAMMA", "x", err, sizeof(err)), -1);
	assert_string_equal(err, "duplicate key 'gamma'");
	assert_int_equal(t->count, 3);

	table_clear(t);
	assert_int_equal(t->count, 0);
	assert_null(table_lookup(t, "alpha"));
	assert_int_equal(table_add(t, "alpha", NULL, err, sizeof(err)), 0);
	assert_int_equal(t->count, 1);
	table_free(t);
}

static void
test_add_bounds(void **state)
{
	struct table	*t;
	char		 err[128];
	char		 key[TABLE_KEYMAX + 2], value[TABLE_VALUEMAX + 2];

	t = table_new("t", TABLE_INLINE, NULL);
	assert_non_null(t);

	assert_int_equal(table_add(t, "", NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "empty key");
	assert_int_equal(table_add(t, "a\nb", NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "key contains CR or LF");
	assert_int_equal(table_add(t, "a\r", NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "key contains CR or LF");
	assert_int_equal(table_add(t, "a", "x\r\ny", err, sizeof(err)), -1);
	assert_string_equal(err, "value contains CR or LF");

	/* TABLE_KEYMAX bytes fit; one more does not. */
	memset(key, 'k', TABLE_KEYMAX + 1);
	key[TABLE_KEYMAX + 1] = '\0';
	assert_int_equal(table_add(t, key, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "key too long (max 1024 bytes)");
	assert_null(table_lookup(t, key));
	key[TABLE_KEYMAX] = '\0';
	assert_int_equal(table_add(t, key, NULL, err, sizeof(err)), 0);
	assert_true(table_contains(t, key));

	memset(value, 'v', TABLE_VALUEMAX + 1);
	value[TABLE_VALUEMAX + 1] = '\0';
	assert_int_equal(table_add(t, "v", value, err, sizeof(err)), -1);
	assert_string_equal(err, "value too long (max 8192 bytes)");
	value[TABLE_VALUEMAX] = '\0';
	assert_int_equal(table_add(t, "v", value, err, sizeof(err)), 0);
	assert_int_equal(strlen(table_lookup(t, "V")), TABLE_VALUEMAX);
	assert_int_equal(t->count, 2);

	/* A NULL error buffer is allowed. */
	assert_int_equal(table_add(t, "v", NULL, NULL, 0), -1);
	table_free(t);
}

/* At most TABLE_MAXENTRIES entries. */
static void
test_max_entries(void **state)
{
	struct table	*t;
	char		 key[32], err[128];
	size_t		 i;

	t = table_new("t", TABLE_INLINE, NULL);
	assert_non_null(t);
	for (i = 0; i < TABLE_MAXENTRIES; i++) {
		snprintf(key, sizeof(key), "%zx", i);
		if (table_add(t, key, NULL, err, sizeof(err)) == -1)
			fail_msg("entry %zu: %s", i, err);
	}
	assert_int_equal(table_add(t, "one-more", NULL, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "too many entries (max 1000000)");
	assert_int_equal(t->count, TABLE_MAXENTRIES);
	table_free(t);
}

static void
test_parse_formats(void **state)
{
	struct table	*t;
	char		 err[256];

	t = table_new("t", TABLE_FILE, "/x");
	assert_non_null(t);
	assert_int_equal(parse(t,
	    "# a comment\n"
	    "\n"
	    "   \t\n"
	    "root: alice\n"
	    "postmaster:root\n"
	    "staff: alice,\n"
	    "  bob,\n"
	    "\t carol  \n"
	    "  # a comment inside\n"
	    "    dave\n"
	    "example.org relay.example.net:25\n"
	    "Bare.Example\n"
	    "alice:$2b$10$0123456789abcdef\n"
	    "::1\n"
	    "2001:db8::/32 ok\n"
	    "10.0.0.0/8\n"
	    "spaced   value \t with\ttabs   \n"
	    "late:\n"
	    "  x\n"
	    "list-then\n"
	    " more\n"
	    "last no newline", err, sizeof(err)), 0);
	assert_int_equal(t->count, 13);
	assert_string_equal(table_lookup(t, "root"), "alice");
	assert_string_equal(table_lookup(t, "POSTMASTER"), "root");
	assert_string_equal(table_lookup(t, "staff"),
	    "alice, bob, carol dave");
	assert_string_equal(table_lookup(t, "example.org"),
	    "relay.example.net:25");
	assert_string_equal(table_lookup(t, "bare.example"), "");
	assert_string_equal(table_lookup(t, "alice"), "$2b$10$0123456789abcdef");
	assert_string_equal(table_lookup(t, "::1"), "");
	assert_string_equal(table_lookup(t, "2001:DB8::/32"), "ok");
	assert_string_equal(table_lookup(t, "10.0.0.0/8"), "");
	assert_string_equal(table_lookup(t, "spaced"), "value \t with\ttabs");
	assert_string_equal(table_lookup(t, "late"), "x");
	assert_string_equal(table_lookup(t, "list-then"), "more");
	assert_string_equal(table_lookup(t, "last"), "no newline");
	table_free(t);
}

static void
test_parse_crlf(void **state)
{
	struct table	*t;
	char		 err[256];

	t = table_new("t", TABLE_FILE, "/x");
	assert_non_null(t);
	assert_int_equal(parse(t, "a: 1\r\nb 2\r\n  3\r\n\r\nc\r\nd: 4\r",
	    err, sizeof(err)), 0);
	assert_int_equal(t->count, 4);
	assert_string_equal(table_lookup(t, "a"), "1");
	assert_string_equal(table_lookup(t, "b"), "2 3");
	assert_string_equal(table_lookup(t, "c"), "");
	assert_string_equal(table_lookup(t, "d"), "4");
	table_free(t);
}

/* A good parse replaces the old entries; a bad one keeps them. */
static void
test_parse_replace(void **state)
{
	struct table	*t;
	char		 err[256];

	t = table_new("t", TABLE_FILE, "/x");
	assert_non_null(t);
	assert_int_equal(parse(t, "a 1\nb 2\n", err, sizeof(err)), 0);
	assert_int_equal(parse(t, "c 3\nd 4\nc 5\n", err, sizeof(err)), -1);
	assert_string_equal(err, "line 3: duplicate key 'c'");
	assert_int_equal(t->count, 2);
	assert_string_equal(table_lookup(t, "a"), "1");
	assert_null(table_lookup(t, "c"));
	assert_int_equal(parse(t, "c 3\n", err, sizeof(err)), 0);
	assert_int_equal(t->count, 1);
	assert_null(table_lookup(t, "a"));
	assert_string_equal(table_lookup(t, "c"), "3");
	/* An empty file empties the table. */
	assert_int_equal(parse(t, "", err, sizeof(err)), 0);
	assert_int_equal(t->count, 0);
	table_free(t);
}

static void
test_parse_errors(void **state)
{
	char	*big;
	size_t	 n;

	expect_parse_err("a 1\nb\0c\n", 8, "line 2: NUL byte");
	expect_parse_err("a 1\nb 2\nA 3\n", 12, "line 3: duplicate key 'a'");
	expect_parse_err("  x\n", 4, "line 1: continuation line without "
	    "a key");
	expect_parse_err("# c\n\n\tx\n", 8, "line 3: continuation line "
	    "without a key");
	expect_parse_err("a: 1\nb:\nc: 2\n", 13, "line 2: missing value "
	    "for 'b'");
	expect_parse_err("a: 1\nb:   \n", 11, "line 2: missing value for 'b'");
	expect_parse_err(": x\n", 4, "line 1: empty key");
	expect_parse_err("a\rb c\n", 6, "line 1: stray carriage return");
	expect_parse_err("a 1\nb\r\r\n", 8, "line 2: stray carriage return");

	/* A key of TABLE_KEYMAX + 1 bytes. */
	n = TABLE_KEYMAX + 1;
	big = malloc(n + 8);
	assert_non_null(big);
	memset(big, 'k', n);
	memcpy(big + n, " v\n", 3);
	expect_parse_err(big, n + 3, "line 1: key too long (max 1024 bytes)");
	free(big);

	/* A value of TABLE_VALUEMAX + 1 bytes on one line. */
	n = TABLE_VALUEMAX + 1;
	big = malloc(n + 8);
	assert_non_null(big);
	memcpy(big, "k ", 2);
	memset(big + 2, 'v', n);
	big[n + 2] = '\n';
	expect_parse_err(big, n + 3, "line 1: value too long (max 8192 bytes)");
	free(big);

	/* A value that grows too long through continuation lines. */
	n = 2 + TABLE_VALUEMAX / 2 + 1 + 1 + TABLE_VALUEMAX / 2 + 1;
	big = malloc(n);
	assert_non_null(big);
	memcpy(big, "k ", 2);
	memset(big + 2, 'a', TABLE_VALUEMAX / 2);
	big[2 + TABLE_VALUEMAX / 2] = '\n';
	big[3 + TABLE_VALUEMAX / 2] = ' ';
	memset(big + 4 + TABLE_VALUEMAX / 2, 'b', TABLE_VALUEMAX / 2);
	big[n - 1] = '\n';
	expect_parse_err(big, n, "line 2: value too long (max 8192 bytes)");
	/* One byte less fits exactly: 4096 + ' ' + 4095 = 8192. */
	{
		struct table	*t = table_new("t", TABLE_FILE, "/x");
		char		 err[128];

		assert_non_null(t);
		big[n - 2] = '\n';
		assert_int_equal(parse_n(t, big, n - 1, err, sizeof(err)), 0);
		assert_int_equal(strlen(table_lookup(t, "k")), TABLE_VALUEMAX);
		table_free(t);
	}
	free(big);

	/* A line longer than any key and value could make. */
	n = TABLE_KEYMAX + TABLE_VALUEMAX + 17;
	big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\n';
	expect_parse_err(big, n + 1, "line 1: line too long (max 9232 bytes)");
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new),
		cmocka_unit_test(test_add_lookup),
		cmocka_unit_test(test_add_bounds),
		cmocka_unit_test(test_max_entries),
		cmocka_unit_test(test_parse_formats),
		cmocka_unit_test(test_parse_crlf),
		cmocka_unit_test(test_parse_replace),
		cmocka_unit_test(test_parse_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
