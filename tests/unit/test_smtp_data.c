/*
 * test_smtp_data.c: unit tests for smtpd/smtp_data.c: dot unstuffing,
 * end of data, pipelined bytes, bare CR/LF (smuggling forms), splits of
 * the input at every position, and BDAT chunk accounting.
 * SECURITY: test code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../smtpd/smtp_data.h"

struct result {
	char	out[4096];
	size_t	outlen;
	size_t	consumed;
	int	done;
	int	bare;
	size_t	lines;
	size_t	size;
};

/*
 * Feed in[0..len) in pieces whose sizes are taken in turn from cuts (0
 * terminates the list and means "the rest"), as a caller would: stop once
 * done.  Checks the output bound of every call.
 */
static void
feed_split(const char *in, size_t len, const size_t *cuts, struct result *r)
{
	struct smtp_data	 d;
	size_t			 pos = 0, n, chunk, got, k = 0;
	char			*out;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d);
	while (pos < len && !d.done) {
		chunk = cuts != NULL && cuts[k] != 0 ? cuts[k++] : len - pos;
		if (chunk > len - pos)
			chunk = len - pos;
		/* exact-size heap buffers: ASan sees any overflow */
		out = malloc(chunk);
		assert_non_null(out);
		n = smtp_data_feed(&d, in + pos, chunk, out, &got);
		assert_true(n <= chunk);
		assert_true(got <= chunk);
		if (!d.done)
			assert_int_equal(n, chunk);
		assert_true(r->outlen + got <= sizeof(r->out));
		memcpy(r->out + r->outlen, out, got);
		free(out);
		r->outlen += got;
		pos += n;
		assert_int_equal(d.size, r->outlen);
	}
	r->consumed = pos;
	r->done = d.done;
	r->bare = d.bare;
	r->lines = d.lines;
	r->size = d.size;
}

static void
feed_once(const char *in, size_t len, struct result *r)
{
	feed_split(in, len, NULL, r);
}

static void
feed_bytes(const char *in, size_t len, struct result *r)
{
	struct smtp_data	d;
	size_t			pos, n, got;
	char			out[1];

	memset(r, 0, sizeof(*r));
	smtp_data_init(&d);
	for (pos = 0; pos < len && !d.done; pos += n) {
		n = smtp_data_feed(&d, in + pos, 1, out, &got);
		assert_int_equal(n, 1);
		assert_true(got <= 1);
		if (got)
			r->out[r->outlen++] = out[0];
	}
	r->consumed = pos;
	r->done = d.done;
	r->bare = d.bare;
	r->lines = d.lines;
	r->size = d.size;
	assert_int_equal(d.size, r->outlen);
}

/*
 * Reference decoder, line by line: a line ends at the first CR LF; ".\r\n"
 * ends the data; a leading dot is removed.  Bare is computed on the raw
 * bytes.  Only for inputs that hold the terminator.
 */
static void
ref_decode(const char *in, size_t len, struct result *r)
{
	size_t	start = 0, i, p;

	memset(r, 0, sizeof(*r));
	for (;;) {
		for (i = start; i + 1 < len; i++)
			if (in[i] == '\r' && in[i + 1] == '\n')
				break;
		assert_true(i + 1 < len);	/* terminated inputs only */
		if (i == start + 1 && in[start] == '.') {
			r->done = 1;
			r->consumed = i + 2;
			break;
		}
		p = in[start] == '.' ? start + 1 : start;
		memcpy(r->out + r->outlen, in + p, i + 2 - p);
		r->outlen += i + 2 - p;
		r->lines++;
		start = i + 2;
	}
	for (p = 0; p < r->consumed; p++) {
		if (in[p] == '\n' && (p == 0 || in[p - 1] != '\r'))
			r->bare = 1;
		if (in[p] == '\r' && in[p + 1] != '\n')
			r->bare = 1;
	}
	r->size = r->outlen;
}

static void
result_equal(const struct result *a, const struct result *b)
{
	assert_int_equal(a->outlen, b->outlen);
	assert_memory_equal(a->out, b->out, a->outlen);
	assert_int_equal(a->consumed, b->consumed);
	assert_int_equal(a->done, b->done);
	assert_int_equal(a->bare, b->bare);
	assert_int_equal(a->lines, b->lines);
	assert_int_equal(a->size, b->size);
}

/* Feed s whole, byte by byte and at every split point: all must agree. */
static void
check_all_splits(const char *s, size_t len, struct result *r)
{
	struct result	o;
	size_t		cuts[3], i, j;

	feed_once(s, len, r);
	feed_bytes(s, len, &o);
	result_equal(r, &o);
	for (i = 1; i < len; i++) {
		cuts[0] = i;
		cuts[1] = 0;
		feed_split(s, len, cuts, &o);
		result_equal(r, &o);
		for (j = 1; i + j < len; j++) {
			cuts[1] = j;
			cuts[2] = 0;
			feed_split(s, len, cuts, &o);
			result_equal(r, &o);
		}
	}
}

#define DATA_IS(s, want, wbare, wlines) do {				\
	struct result r_;						\
	check_all_splits((s), sizeof(s) - 1, &r_);			\
	assert_int_equal(r_.done, 1);					\
	assert_int_equal(r_.outlen, sizeof(want) - 1);			\
	assert_memory_equal(r_.out, (want), sizeof(want) - 1);		\
	assert_int_equal(r_.size, sizeof(want) - 1);			\
	assert_int_equal(r_.bare, (wbare));				\
	assert_int_equal(r_.lines, (wlines));				\
	assert_int_equal(r_.consumed, sizeof(s) - 1);			\
} while (0)

static void
test_data_simple(void **state)
{
	DATA_IS("Hello\r\n.\r\n", "Hello\r\n", 0, 1);
	DATA_IS("Subject: x\r\n\r\nbody\r\n.\r\n",
	    "Subject: x\r\n\r\nbody\r\n", 0, 3);
	DATA_IS("a.b\r\n.\r\n", "a.b\r\n", 0, 1);
	DATA_IS("a\r\n.b.\r\n.\r\n", "a\r\nb.\r\n", 0, 2);
}

static void
test_data_empty(void **state)
{
	DATA_IS(".\r\n", "", 0, 0);
	DATA_IS("\r\n.\r\n", "\r\n", 0, 1);
}

static void
test_data_unstuff(void **state)
{
	DATA_IS("..\r\n.\r\n", ".\r\n", 0, 1);
	DATA_IS("...\r\n.\r\n", "..\r\n", 0, 1);
	DATA_IS("..foo\r\n.\r\n", ".foo\r\n", 0, 1);
	DATA_IS(".foo\r\n.\r\n", "foo\r\n", 0, 1);
	DATA_IS("a\r\n..\r\n..\r\n.\r\n", "a\r\n.\r\n.\r\n", 0, 3);
	DATA_IS(". \r\n.\r\n", " \r\n", 0, 1);
}

static void
test_data_pipelined(void **state)
{
	static const char	 s[] = "x\r\n.\r\nQUIT\r\n";
	struct result		 r;
	struct smtp_data	 d;
	char			 out[64];
	size_t			 got, n;

	check_all_splits(s, sizeof(s) - 1, &r);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.consumed, 6);
	assert_int_equal(r.outlen, 3);
	assert_memory_equal(r.out, "x\r\n", 3);

	/* once done, nothing more is consumed */
	smtp_data_init(&d);
	n = smtp_data_feed(&d, s, sizeof(s) - 1, out, &got);
	assert_int_equal(n, 6);
	assert_int_equal(d.done, 1);
	n = smtp_data_feed(&d, s + 6, 6, out, &got);
	assert_int_equal(n, 0);
	assert_int_equal(got, 0);
	assert_int_equal(d.size, 3);

	/* an empty message followed by a command */
	smtp_data_init(&d);
	n = smtp_data_feed(&d, ".\r\nRSET\r\n", 9, out, &got);
	assert_int_equal(n, 3);
	assert_int_equal(got, 0);
	assert_int_equal(d.done, 1);
	assert_int_equal(d.size, 0);
}

static void
test_data_smuggling(void **state)
{
	/* none of these ends the data: only the final CRLF.CRLF does */
	DATA_IS("a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", 1, 1);
	DATA_IS("a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", 1, 2);
	DATA_IS("a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", 1, 2);
	DATA_IS("a\r.\r\nb\r\n.\r\n", "a\r.\r\nb\r\n", 1, 2);
	DATA_IS("a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", 1, 2);
	DATA_IS("a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", 1, 2);
	DATA_IS("a\r\r\n.\r\n", "a\r\r\n", 1, 1);
	DATA_IS(".\n.\r\n.\r\n", "\n.\r\n", 1, 1);
	DATA_IS("\n.\r\n.\r\n", "\n.\r\n", 1, 1);
	DATA_IS("\r.\r\n.\r\n", "\r.\r\n", 1, 1);
	DATA_IS("\n\r\n.\r\n", "\n\r\n", 1, 1);
}

static void
test_data_unterminated(void **state)
{
	static const char *s[] = {
		"a\n.\n", "a\r\n.\n", "a\n.\r\n", "a\r.\r\n", "a\r\n.\r",
		"a\r\n.", "a\r\n", "a\r", "\r\n.\rx", "abc\n.\nQUIT\r\n",
	};
	struct result	r;
	size_t		i;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		feed_once(s[i], strlen(s[i]), &r);
		assert_int_equal(r.done, 0);
		assert_int_equal(r.consumed, strlen(s[i]));
	}
	feed_once("a\n.\n", 4, &r);
	assert_int_equal(r.bare, 1);
	assert_memory_equal(r.out, "a\n.\n", 4);
	/* a trailing lone CR is not known to be bare yet */
	feed_once("a\r", 2, &r);
	assert_int_equal(r.bare, 0);
	assert_int_equal(r.outlen, 2);
	/* a pending ".\r" is not output yet */
	feed_once("a\r\n.\r", 5, &r);
	assert_int_equal(r.outlen, 3);
	assert_int_equal(r.bare, 0);
}

static void
test_data_terminator_splits(void **state)
{
	static const char	s[] = "abc\r\n..x\r\n\r\n.\r\nRSET\r\n";
	struct result		r;

	check_all_splits(s, sizeof(s) - 1, &r);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.consumed, sizeof(s) - 1 - 6);
	assert_int_equal(r.outlen, 11);
	assert_memory_equal(r.out, "abc\r\n.x\r\n\r\n", 11);
	assert_int_equal(r.lines, 3);
	assert_int_equal(r.bare, 0);
}

static void
test_data_carry(void **state)
{
	struct smtp_data	d;
	char			out[16];
	size_t			got, n;

	/* a call that starts between ".\r" and a byte other than LF */
	smtp_data_init(&d);
	n = smtp_data_feed(&d, "x\r\n.\r", 5, out, &got);
	assert_int_equal(n, 5);
	assert_int_equal(got, 3);
	n = smtp_data_feed(&d, "y", 1, out, &got);
	assert_int_equal(n, 1);
	assert_int_equal(got, 1);
	assert_memory_equal(out, "\r", 1);
	n = smtp_data_feed(&d, "z", 1, out, &got);
	assert_int_equal(got, 1);
	assert_memory_equal(out, "y", 1);
	assert_int_equal(d.size, 5);
	n = smtp_data_feed(&d, "\r\n.\r\n", 5, out, &got);
	assert_int_equal(n, 5);
	assert_int_equal(d.done, 1);
	assert_int_equal(got, 3);
	assert_memory_equal(out, "z\r\n", 3);
	assert_int_equal(d.size, 8);
	assert_int_equal(d.bare, 1);
	assert_int_equal(d.lines, 2);
}

static void
test_data_lines_size(void **state)
{
	char		big[3000];
	struct result	r;
	size_t		i, n = 0;

	for (i = 0; i < 500; i++) {
		memcpy(big + n, "..a\r\n", 5);
		n += 5;
	}
	memcpy(big + n, ".\r\n", 3);
	n += 3;
	feed_once(big, n, &r);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.lines, 500);
	assert_int_equal(r.size, 2000);
	for (i = 0; i < 500; i++)
		assert_memory_equal(r.out + 4 * i, ".a\r\n", 4);
}

/* Random inputs over a small alphabet against the reference decoder. */
static void
test_data_random(void **state)
{
	static const char	alpha[] = ".\r\n.\r\nab";
	uint32_t		seed = 12345;
	char			s[128];
	struct result		r, ref, o;
	size_t			iter, n, k, cuts[8];

	for (iter = 0; iter < 20000; iter++) {
		n = 0;
		seed = seed * 1103515245 + 12345;
		k = (seed >> 16) % 40;
		while (n < k) {
			seed = seed * 1103515245 + 12345;
			s[n++] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
		}
		memcpy(s + n, "\r\n.\r\nNOOP", 9);
		n += 9;
		ref_decode(s, n, &ref);
		feed_once(s, n, &r);
		result_equal(&r, &ref);
		feed_bytes(s, n, &o);
		result_equal(&o, &ref);
		for (k = 0; k < 7; k++) {
			seed = seed * 1103515245 + 12345;
			cuts[k] = 1 + (seed >> 16) % 5;
		}
		cuts[7] = 0;
		feed_split(s, n, cuts, &o);
		result_equal(&o, &ref);
	}
}

/* ---------------------------------------------------------------- BDAT */

static void
test_bdat_clean(void **state)
{
	struct smtp_data	d;

	smtp_data_init(&d);
	smtp_bdat_feed(&d, "a\r\nb", 4);
	smtp_bdat_feed(&d, "\r\n", 2);
	smtp_bdat_finish(&d);
	assert_int_equal(d.bare, 0);
	assert_int_equal(d.size, 6);
	assert_int_equal(d.lines, 2);
	assert_int_equal(d.done, 1);

	/* CR at the end of a chunk, LF at the start of the next */
	smtp_data_init(&d);
	smtp_bdat_feed(&d, "a\r", 2);
	smtp_bdat_feed(&d, "\nb\r", 3);
	smtp_bdat_feed(&d, "", 0);
	smtp_bdat_feed(&d, "\n", 1);
	smtp_bdat_finish(&d);
	assert_int_equal(d.bare, 0);
	assert_int_equal(d.size, 6);
	assert_int_equal(d.lines, 2);

	/* dots and the DATA terminator mean nothing in BDAT */
	smtp_data_init(&d);
	smtp_bdat_feed(&d, "\r\n.\r\n..\r\n", 9);
	smtp_bdat_finish(&d);
	assert_int_equal(d.bare, 0);
	assert_int_equal(d.size, 9);
	assert_int_equal(d.lines, 3);
}

static void
test_bdat_bare(void **state)
{
	struct smtp_data	d;

	smtp_data_init(&d);
	smtp_bdat_feed(&d, "a\nb", 3);
	assert_int_equal(d.bare, 1);

	smtp_data_init(&d);
	smtp_bdat_feed(&d, "a\rb", 3);
	assert_int_equal(d.bare, 1);

	smtp_data_init(&d);
	smtp_bdat_feed(&d, "a\r", 2);
	assert_int_equal(d.bare, 0);
	smtp_bdat_feed(&d, "b", 1);
	assert_int_equal(d.bare, 1);

	smtp_data_init(&d);
	smtp_bdat_feed(&d, "\n", 1);
	assert_int_equal(d.bare, 1);

	smtp_data_init(&d);
	smtp_bdat_feed(&d, "a\r\n", 3);
	smtp_bdat_feed(&d, "\n", 1);
	assert_int_equal(d.bare, 1);

	/* a trailing lone CR is only known at LAST */
	smtp_data_init(&d);
	smtp_bdat_feed(&d, "a\r\nb\r", 5);
	assert_int_equal(d.bare, 0);
	smtp_bdat_finish(&d);
	assert_int_equal(d.bare, 1);

	smtp_data_init(&d);
	smtp_bdat_feed(&d, "\r", 1);
	smtp_bdat_feed(&d, "\r", 1);
	assert_int_equal(d.bare, 1);
}

static void
test_bdat_size_saturates(void **state)
{
	struct smtp_data	d;

	smtp_data_init(&d);
	d.size = SIZE_MAX - 2;
	smtp_bdat_feed(&d, "abcd", 4);
	assert_true(d.size == SIZE_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_simple),
		cmocka_unit_test(test_data_empty),
		cmocka_unit_test(test_data_unstuff),
		cmocka_unit_test(test_data_pipelined),
		cmocka_unit_test(test_data_smuggling),
		cmocka_unit_test(test_data_unterminated),
		cmocka_unit_test(test_data_terminator_splits),
		cmocka_unit_test(test_data_carry),
		cmocka_unit_test(test_data_lines_size),
		cmocka_unit_test(test_data_random),
		cmocka_unit_test(test_bdat_clean),
		cmocka_unit_test(test_bdat_bare),
		cmocka_unit_test(test_bdat_size_saturates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
