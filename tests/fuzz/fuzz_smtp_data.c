/*
 * fuzz_smtp_data.c: libFuzzer target for smtpd/smtp_data.c.  The first
 * byte chooses a chunking pattern, the rest is DATA content.  Checks that
 * one-shot, byte-by-byte and chunked feeding agree, that no call outputs
 * more than its input, that a line-by-line reference decoder agrees, and
 * that BDAT's bare CR/LF flag matches a scan of the raw bytes.
 * SECURITY: test code.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../smtpd/smtp_data.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fuzz_result {
	char	*out;
	size_t	 outlen;
	size_t	 consumed;
	int	 done, bare;
	size_t	 lines, size;
};

/*
 * Feed in pieces of pattern-chosen sizes (0: everything at once), as the
 * session would, stopping at the end of data.
 */
static void
fuzz_data_feed(const char *in, size_t len, unsigned int pattern,
    struct fuzz_result *r)
{
	struct smtp_data	 d;
	size_t			 pos = 0, n, chunk, got, k = 0;
	char			*buf, *out;

	/* each call writes at the end of buf: ASan sees any overflow */
	if ((buf = malloc(len + 1)) == NULL)
		abort();
	r->outlen = 0;
	smtp_data_init(&d);
	while (pos < len && !d.done) {
		if (pattern == 0)
			chunk = len - pos;
		else
			chunk = 1 + ((pattern >> (k++ % 8)) & 0x7) % pattern;
		if (chunk > len - pos)
			chunk = len - pos;
		out = buf + len + 1 - chunk;
		n = smtp_data_feed(&d, in + pos, chunk, out, &got);
		if (n > chunk || got > chunk || (!d.done && n != chunk))
			abort();
		memcpy(r->out + r->outlen, out, got);
		r->outlen += got;
		pos += n;
		if (d.size != r->outlen)
			abort();
	}
	/* once done, nothing more is consumed or output */
	if (d.done && (smtp_data_feed(&d, in, len, r->out + r->outlen,
	    &got) != 0 || got != 0))
		abort();
	free(buf);
	r->consumed = pos;
	r->done = d.done;
	r->bare = d.bare;
	r->lines = d.lines;
	r->size = d.size;
}

/* Equal results, except that unfinished output may lag by one byte. */
static void
fuzz_data_same(const struct fuzz_result *a, const struct fuzz_result *b)
{
	if (a->consumed != b->consumed || a->done != b->done ||
	    a->bare != b->bare || a->lines != b->lines)
		abort();
	if (a->done) {
		if (a->outlen != b->outlen ||
		    memcmp(a->out, b->out, a->outlen) != 0)
			abort();
	} else {
		if (b->outlen > a->outlen || b->outlen + 1 < a->outlen ||
		    memcmp(a->out, b->out, b->outlen) != 0)
			abort();
	}
}

/* Line-by-line reference: same output and bare flag when terminated. */
static void
fuzz_data_reference(const char *in, size_t len, const struct fuzz_result *r)
{
	size_t	start = 0, i, p, o = 0, lines = 0;
	int	bare = 0;

	for (;;) {
		for (i = start; i + 1 < len; i++)
			if (in[i] == '\r' && in[i + 1] == '\n')
				break;
		if (i + 1 >= len) {
			if (r->done)
				abort();
			return;
		}
		if (i == start + 1 && in[start] == '.')
			break;
		p = in[start] == '.' ? start + 1 : start;
		if (o + i + 2 - p > r->outlen ||
		    memcmp(r->out + o, in + p, i + 2 - p) != 0)
			abort();
		o += i + 2 - p;
		lines++;
		start = i + 2;
	}
	if (!r->done || r->consumed != i + 2 || r->outlen != o ||
	    r->lines != lines)
		abort();
	for (p = 0; p < r->consumed; p++) {
		if (in[p] == '\n' && (p == 0 || in[p - 1] != '\r'))
			bare = 1;
		if (in[p] == '\r' && in[p + 1] != '\n')
			bare = 1;
	}
	if (bare != r->bare)
		abort();
}

/* BDAT in two chunks split at cut: bare and size as the raw scan says. */
static void
fuzz_bdat(const char *in, size_t len, size_t cut)
{
	struct smtp_data	d;
	size_t			p, lines = 0;
	int			bare = 0;

	if (cut > len)
		cut = len;
	smtp_data_init(&d);
	smtp_bdat_feed(&d, in, cut);
	smtp_bdat_feed(&d, in + cut, len - cut);
	smtp_bdat_finish(&d);
	for (p = 0; p < len; p++) {
		if (in[p] == '\n' && (p == 0 || in[p - 1] != '\r'))
			bare = 1;
		if (in[p] == '\r') {
			if (p + 1 == len || in[p + 1] != '\n')
				bare = 1;
			else
				lines++;
		}
	}
	if (d.bare != bare || d.size != len || d.lines != lines || !d.done)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_result	 once, other;
	const char		*in;
	size_t			 len;

	if (size < 1)
		return 0;
	in = (const char *)data + 1;
	len = size - 1;
	if ((once.out = malloc(len + 1)) == NULL ||
	    (other.out = malloc(len + 1)) == NULL)
		abort();

	fuzz_data_feed(in, len, 0, &once);
	fuzz_data_reference(in, len, &once);
	fuzz_data_feed(in, len, 1, &other);		/* byte by byte */
	fuzz_data_same(&once, &other);
	fuzz_data_feed(in, len, data[0] | 1, &other);	/* chunked */
	fuzz_data_same(&once, &other);
	fuzz_bdat(in, len, data[0]);

	free(once.out);
	free(other.out);
	return 0;
}
