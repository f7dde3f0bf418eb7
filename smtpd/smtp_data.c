/*
 * smtp_data.c: DATA content decoder (dot unstuffing, end of data) and
 * BDAT chunk accounting, as byte-level state machines.
 * SECURITY: hostile input in the unprivileged smtpd process.  Only CR LF
 * "." CR LF ends the data; bare CR and bare LF are content and flagged,
 * so that the caller can refuse them (SMTP smuggling).  The output of a
 * call never exceeds its input.
 */
#include <stdint.h>
#include <string.h>

#include "smtp_data.h"

/*
 * d->state holds the line state in its low byte and, at most, one output
 * byte that did not fit the caller's buffer in the previous call (see
 * smtp_data_feed).
 */
enum smtp_data_state {
	SMTP_DATA_BOL,		/* at the beginning of a line */
	SMTP_DATA_TEXT,		/* inside a line */
	SMTP_DATA_CR,		/* inside a line, after CR (already output) */
	SMTP_DATA_DOT,		/* after a '.' at the beginning of a line */
	SMTP_DATA_DOTCR,	/* after ".\r" at the beginning of a line */
};
#define SMTP_DATA_STMASK	0xff
#define SMTP_DATA_CARRY		0x100
#define SMTP_DATA_CARRYSHIFT	16

#define SMTP_BDAT_CR		0x01	/* the last byte fed was CR */

void
smtp_data_init(struct smtp_data *d)
{
	memset(d, 0, sizeof(*d));
	d->state = SMTP_DATA_BOL;
}

/*
 * Every input byte produces at most one output byte, except the byte that
 * resolves ".\r" into content: the held-back CR and that byte.  When a
 * call starts in that state its output could exceed its input by one;
 * that byte is then kept in the state ("carry") and written first by the
 * next call (each input byte writes the carry before its own output).  A
 * dot at the beginning of a line and the terminator produce no output, so
 * the carry is always written before the end of data.
 */
size_t
smtp_data_feed(struct smtp_data *d, const char *in, size_t inlen, char *out,
    size_t *outlen)
{
	const unsigned char	*s = (const unsigned char *)in;
	size_t			 i = 0, o = 0;
	int			 st, carry;
	unsigned char		 cb, c;

#define SMTP_DATA_EMIT(x) do {						\
	if (o < i)							\
		out[o++] = (x);						\
	else {								\
		carry = 1;						\
		cb = (x);						\
	}								\
} while (0)

	*outlen = 0;
	if (d->done)
		return 0;
	st = d->state & SMTP_DATA_STMASK;
	carry = (d->state & SMTP_DATA_CARRY) != 0;
	cb = (d->state >> SMTP_DATA_CARRYSHIFT) & 0xff;

	while (i < inlen) {
		c = s[i++];
		if (carry) {
			out[o++] = cb;
			carry = 0;
		}
		switch (st) {
		case SMTP_DATA_BOL:
			if (c == '.') {
				st = SMTP_DATA_DOT;
				break;
			}
			goto text;
		case SMTP_DATA_CR:
			if (c == '\n') {
				SMTP_DATA_EMIT(c);
				d->lines++;
				st = SMTP_DATA_BOL;
				break;
			}
			d->bare = 1;	/* CR not followed by LF */
			goto text;
		case SMTP_DATA_DOT:
			if (c == '\r') {
				st = SMTP_DATA_DOTCR;
				break;
			}
			/* ".." gives "." and ".x" gives "x": drop the dot. */
			goto text;
		case SMTP_DATA_DOTCR:
			if (c == '\n') {
				d->done = 1;
				goto end;
			}
			/* ".\rx": dot dropped, the CR is a bare one. */
			SMTP_DATA_EMIT('\r');
			d->bare = 1;
			goto text;
		case SMTP_DATA_TEXT:
		default:
 text:
			SMTP_DATA_EMIT(c);
			if (c == '\r')
				st = SMTP_DATA_CR;
			else {
				if (c == '\n')
					d->bare = 1;	/* LF without CR */
				st = SMTP_DATA_TEXT;
			}
			break;
		}
	}
 end:
#undef SMTP_DATA_EMIT
	d->state = st;
	if (carry)
		d->state |= SMTP_DATA_CARRY | (int)cb << SMTP_DATA_CARRYSHIFT;
	d->size += o;
	*outlen = o;
	return i;
}

void
smtp_bdat_feed(struct smtp_data *d, const char *in, size_t inlen)
{
	const unsigned char	*s = (const unsigned char *)in;
	size_t			 i;
	int			 cr = d->state & SMTP_BDAT_CR;

	for (i = 0; i < inlen; i++) {
		if (cr) {
			if (s[i] == '\n')
				d->lines++;
			else
				d->bare = 1;
		} else if (s[i] == '\n')
			d->bare = 1;
		cr = s[i] == '\r';
	}
	d->state = cr ? SMTP_BDAT_CR : 0;
	if (SIZE_MAX - d->size < inlen)
		d->size = SIZE_MAX;
	else
		d->size += inlen;
}

void
smtp_bdat_finish(struct smtp_data *d)
{
	if (d->state & SMTP_BDAT_CR)
		d->bare = 1;
	d->state = 0;
	d->done = 1;
}
