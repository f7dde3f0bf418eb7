/*
 * drop.c: strict reader of offline drop files (see drop.h).
 * SECURITY: input from any local user: bounded, validated, no bare CR/LF.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drop.h"

static int
drop_fail(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
drop_fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -1;
}

/* An address field: printable ASCII or UTF-8, no space, no control. */
static int
drop_addr_ok(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		unsigned char	 c = s[i];

		if (c <= ' ' || c == 0x7f || c == '<' || c == '>')
			return 0;
	}
	return 1;
}

int
drop_parse(const char *buf, size_t len, struct drop_msg *m, char *err,
    size_t errsz)
{
	const char	*p = buf, *end = buf + len, *nl;
	size_t		 mlen = strlen(DROP_MAGIC), l, i;
	int		 have_sender = 0;

	memset(m, 0, sizeof(*m));
	if (len < mlen || memcmp(buf, DROP_MAGIC, mlen) != 0)
		return drop_fail(err, errsz, "not a drop file");
	p += mlen;
	for (;;) {
		if ((nl = memchr(p, '\n', end - p)) == NULL) {
			drop_free(m);
			return drop_fail(err, errsz, "header not terminated");
		}
		l = nl - p;
		if (l == 0) {
			p = nl + 1;
			break;
		}
		if (l > 7 && memcmp(p, "sender ", 7) == 0 && !have_sender &&
		    m->nrcpts == 0) {
			l -= 7;
			if (l >= DROP_ADDRMAX || !drop_addr_ok(p + 7, l)) {
				drop_free(m);
				return drop_fail(err, errsz, "bad sender");
			}
			memcpy(m->sender, p + 7, l);
			m->sender[l] = '\0';
			have_sender = 1;
		} else if ((l == 6 || l == 7) &&
		    memcmp(p, "sender ", l) == 0 &&
		    !have_sender && m->nrcpts == 0) {
			have_sender = 1;	/* the null sender */
		} else if (l > 5 && memcmp(p, "rcpt ", 5) == 0 && have_sender) {
			char	(*n)[DROP_ADDRMAX];
			size_t	 ncap;

			l -= 5;
			if (l >= DROP_ADDRMAX || !drop_addr_ok(p + 5, l)) {
				drop_free(m);
				return drop_fail(err, errsz, "bad recipient");
			}
			if (m->nrcpts == DROP_MAXRCPT) {
				drop_free(m);
				return drop_fail(err, errsz,
				    "too many recipients");
			}
			/* Grow by doubling: powers of two up to the cap. */
			if ((m->nrcpts & (m->nrcpts - 1)) == 0) {
				ncap = m->nrcpts == 0 ? 1 : m->nrcpts * 2;
				if ((n = reallocarray(m->rcpts, ncap,
				    sizeof(*n))) == NULL) {
					drop_free(m);
					return drop_fail(err, errsz,
					    "out of memory");
				}
				m->rcpts = n;
			}
			memcpy(m->rcpts[m->nrcpts], p + 5, l);
			m->rcpts[m->nrcpts][l] = '\0';
			m->nrcpts++;
		} else {
			drop_free(m);
			return drop_fail(err, errsz, "unexpected header line");
		}
		p = nl + 1;
	}
	if (!have_sender || m->nrcpts == 0) {
		drop_free(m);
		return drop_fail(err, errsz, "no sender or no recipient");
	}
	/* The message: CRLF line ends only, as it would come over SMTP. */
	for (i = 0; p + i < end; i++) {
		if (p[i] == '\r' && (p + i + 1 == end || p[i + 1] != '\n')) {
			drop_free(m);
			return drop_fail(err, errsz, "bare CR in message");
		}
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
			drop_free(m);
			return drop_fail(err, errsz, "bare LF in message");
		}
	}
	m->body = p;
	m->bodylen = end - p;
	return 0;
}

void
drop_free(struct drop_msg *m)
{
	free(m->rcpts);
	m->rcpts = NULL;
	m->nrcpts = 0;
}
