/*
 * ctl_mail.c: the pure parts of posternctl's sendmail(8) face: header
 * fields, address lists, the wire form of a message (CRLF, dot-stuffing),
 * SMTP reply lines, the Date: and From: fields it adds.  No I/O, so that
 * each can be unit-tested and fuzzed on byte buffers.
 * SECURITY: the message comes from any local user and is untrusted; every
 * scan is bounded by its length, addresses are checked before they reach
 * an SMTP command line, and bad input is an error return.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ctl.h"

#define MAIL_WSP(c)	((c) == ' ' || (c) == '\t')

void
ctl_mail_rcpts_init(struct ctl_mail_rcpts *r)
{
	memset(r, 0, sizeof(*r));
}

void
ctl_mail_rcpts_free(struct ctl_mail_rcpts *r)
{
	size_t	 i;

	for (i = 0; i < r->n; i++)
		free(r->addr[i]);
	free(r->addr);
	memset(r, 0, sizeof(*r));
}

int
ctl_mail_addr_valid(const char *s, size_t len)
{
	size_t		 i;
	unsigned char	 c;

	if (len > CTL_MAIL_ADDRMAX)
		return 0;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c < 0x21 || c == 0x7f || c == '<' || c == '>')
			return 0;
	}
	return 1;
}

int
ctl_mail_rcpt_add(struct ctl_mail_rcpts *r, const char *s, size_t len)
{
	char	**na, *a;
	size_t	  ncap;

	if (len == 0 || !ctl_mail_addr_valid(s, len)) {
		errno = EINVAL;
		return -1;
	}
	if (r->n >= CTL_MAIL_MAXRCPT) {
		errno = E2BIG;
		return -1;
	}
	if (r->n == r->cap) {
		ncap = r->cap == 0 ? 8 : r->cap * 2;
		if ((na = reallocarray(r->addr, ncap, sizeof(*na))) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		r->addr = na;
		r->cap = ncap;
	}
	if ((a = strndup(s, len)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	r->addr[r->n++] = a;
	return 0;
}

/* The address being collected from one mailbox of a list. */
struct mail_mbox {
	char	 buf[CTL_MAIL_ADDRMAX + 1];
	size_t	 len;
	int	 overflow;	/* too long: an error if it is kept */
	int	 angle;		/* inside <...> */
	int	 had_angle;	/* <...> seen: the rest is display text */
};

static void
mail_mbox_reset(struct mail_mbox *m)
{
	m->len = 0;
	m->overflow = 0;
	m->angle = 0;
	m->had_angle = 0;
}

static void
mail_mbox_put(struct mail_mbox *m, char c)
{
	if (m->had_angle && !m->angle)
		return;		/* text after <addr> */
	if (m->len >= CTL_MAIL_ADDRMAX) {
		m->overflow = 1;
		return;
	}
	m->buf[m->len++] = c;
}

/* End of one mailbox: add its address, if it had one. */
static int
mail_mbox_end(struct ctl_mail_rcpts *r, struct mail_mbox *m)
{
	const char	*a = m->buf, *colon;
	size_t		 len = m->len;
	int		 rv = 0;

	if (m->angle) {
		errno = EINVAL;
		return -1;
	}
	if (m->overflow) {
		errno = EINVAL;
		return -1;
	}
	/* Obsolete route: <@a,@b:user@c>. */
	if (m->had_angle && len > 0 && a[0] == '@') {
		if ((colon = memchr(a, ':', len)) == NULL) {
			errno = EINVAL;
			return -1;
		}
		len -= (size_t)(colon + 1 - a);
		a = colon + 1;
	}
	if (len > 0 || m->had_angle)
		rv = ctl_mail_rcpt_add(r, a, len);
	mail_mbox_reset(m);
	return rv;
}

int
ctl_mail_addrlist(struct ctl_mail_rcpts *r, const char *s, size_t len)
{
	struct mail_mbox	 m;
	size_t			 i, depth = 0;
	int			 quoted = 0, group = 0;
	char			 c;

	mail_mbox_reset(&m);
	for (i = 0; i < len; i++) {
		c = s[i];
		if (c == '\r' || c == '\n')
			continue;	/* unfold */
		if (depth > 0) {
			/* A comment: dropped, nesting and quoted-pairs. */
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (quoted) {
			if (c == '\\') {
				if (i + 1 >= len)
					break;
				mail_mbox_put(&m, c);
				c = s[++i];
			} else if (c == '"')
				quoted = 0;
			mail_mbox_put(&m, c);
			continue;
		}
		switch (c) {
		case '"':
			quoted = 1;
			mail_mbox_put(&m, c);
			break;
		case '(':
			depth = 1;
			break;
		case ' ':
		case '\t':
			break;
		case '<':
			if (m.angle || m.had_angle) {
				errno = EINVAL;
				return -1;
			}
			/* What came before was the display name. */
			m.len = 0;
			m.overflow = 0;
			m.angle = 1;
			m.had_angle = 1;
			break;
		case '>':
			if (!m.angle) {
				errno = EINVAL;
				return -1;
			}
			m.angle = 0;
			break;
		case ',':
			if (m.angle) {
				mail_mbox_put(&m, c);	/* a route */
				break;
			}
			if (mail_mbox_end(r, &m) == -1)
				return -1;
			break;
		case ':':
			if (m.angle) {
				mail_mbox_put(&m, c);
				break;
			}
			if (group || m.had_angle) {
				errno = EINVAL;
				return -1;
			}
			/* A group: what came before is its name. */
			group = 1;
			mail_mbox_reset(&m);
			break;
		case ';':
			if (m.angle || !group) {
				errno = EINVAL;
				return -1;
			}
			if (mail_mbox_end(r, &m) == -1)
				return -1;
			group = 0;
			break;
		default:
			mail_mbox_put(&m, c);
			break;
		}
	}
	if (quoted || depth > 0) {
		errno = EINVAL;
		return -1;
	}
	return mail_mbox_end(r, &m);
}

int
ctl_mail_field_next(const char *buf, size_t len, size_t *off,
    struct ctl_mail_field *f)
{
	const char	*line, *lf;
	size_t		 o = *off, n, i, llen;
	unsigned char	 c;

	if (o >= len)
		return 0;
	line = buf + o;
	n = len - o;
	lf = memchr(line, '\n', n);
	llen = lf != NULL ? (size_t)(lf - line) : n;
	/* The name: printable ASCII but ':', then blanks, then ':'. */
	for (i = 0; i < llen; i++) {
		c = (unsigned char)line[i];
		if (c < 0x21 || c > 0x7e || c == ':')
			break;
	}
	if (i == 0)
		return 0;
	f->name = line;
	f->namelen = i;
	while (i < llen && MAIL_WSP(line[i]))
		i++;
	if (i >= llen || line[i] != ':')
		return 0;
	f->start = o;
	f->value = line + i + 1;
	o += lf != NULL ? llen + 1 : llen;
	/* Continuation lines. */
	while (o < len && MAIL_WSP(buf[o])) {
		lf = memchr(buf + o, '\n', len - o);
		o = lf != NULL ? (size_t)(lf - buf) + 1 : len;
	}
	f->end = o;
	n = o - (size_t)(f->value - buf);
	if (n > 0 && buf[o - 1] == '\n') {
		n--;
		if (n > 0 && f->value[n - 1] == '\r')
			n--;
	}
	f->valuelen = n;
	*off = o;
	return 1;
}

/* 1 if the field is named name (any case). */
static int
mail_field_is(const struct ctl_mail_field *f, const char *name)
{
	return f->namelen == strlen(name) &&
	    strncasecmp(f->name, name, f->namelen) == 0;
}

int
ctl_mail_scan(const char *buf, size_t len, int want_rcpts,
    struct ctl_mail_rcpts *r, struct ctl_mail_scan *sc, char *err,
    size_t errsz)
{
	struct ctl_mail_field	 f;
	static const char	*lists[] = { "To", "Cc", "Bcc" };
	size_t			 off = 0, i, rest;
	char			 name[8];

	memset(sc, 0, sizeof(*sc));
	while (ctl_mail_field_next(buf, len, &off, &f) == 1) {
		if (mail_field_is(&f, "Date"))
			sc->has_date = 1;
		else if (mail_field_is(&f, "Message-ID"))
			sc->has_msgid = 1;
		else if (mail_field_is(&f, "From"))
			sc->has_from = 1;
		else if (mail_field_is(&f, "Bcc"))
			sc->nbcc++;
		if (!want_rcpts)
			continue;
		for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
			if (!mail_field_is(&f, lists[i]))
				continue;
			if (ctl_mail_addrlist(r, f.value, f.valuelen) == -1) {
				strlcpy(name, lists[i], sizeof(name));
				if (errno == E2BIG)
					snprintf(err, errsz, "too many "
					    "recipients (more than %d)",
					    CTL_MAIL_MAXRCPT);
				else if (errno == ENOMEM)
					snprintf(err, errsz, "out of memory");
				else
					snprintf(err, errsz, "bad address "
					    "list in %s: header", name);
				return -1;
			}
		}
	}
	sc->hdrend = off;
	rest = len - off;
	if (rest > 0 && buf[off] == '\n') {
		sc->separator = 1;
		sc->bodystart = off + 1;
	} else if (rest > 1 && buf[off] == '\r' && buf[off + 1] == '\n') {
		sc->separator = 1;
		sc->bodystart = off + 2;
	} else if (rest == 1 && buf[off] == '\r') {
		sc->separator = 1;
		sc->bodystart = len;
	} else
		sc->bodystart = off;
	return 0;
}

void
ctl_mail_wire_line(struct ctl_buf *b, const char *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > 0 && line[0] == '.')
		ctl_buf_add(b, ".", 1);
	ctl_buf_add(b, line, len);
	ctl_buf_add(b, "\r\n", 2);
}

/* Append the lines of buf[from, to) in wire form. */
static void
mail_wire_lines(struct ctl_buf *b, const char *buf, size_t from, size_t to)
{
	const char	*lf;
	size_t		 n;

	while (from < to) {
		lf = memchr(buf + from, '\n', to - from);
		n = lf != NULL ? (size_t)(lf - (buf + from)) : to - from;
		ctl_mail_wire_line(b, buf + from, n);
		from += lf != NULL ? n + 1 : n;
	}
}

void
ctl_mail_wire(struct ctl_buf *b, const char *buf, size_t len,
    const struct ctl_mail_scan *sc, const char *added)
{
	struct ctl_mail_field	 f;
	size_t			 off = 0;

	ctl_buf_puts(b, added);
	while (off < sc->hdrend &&
	    ctl_mail_field_next(buf, sc->hdrend, &off, &f) == 1) {
		if (!mail_field_is(&f, "Bcc"))
			mail_wire_lines(b, buf, f.start, f.end);
	}
	if (sc->separator || sc->bodystart < len)
		ctl_buf_add(b, "\r\n", 2);
	mail_wire_lines(b, buf, sc->bodystart, len);
}

int
ctl_mail_is_end_line(const char *line, size_t len)
{
	if (len == 0 || line[0] != '.')
		return 0;
	return len == 1 || (len == 2 && line[1] == '\n') ||
	    (len == 3 && line[1] == '\r' && line[2] == '\n');
}

int
ctl_mail_reply_line(const char *line, size_t len, int *code, int *last)
{
	size_t	 i;

	if (len < 3 || line[0] < '2' || line[0] > '5')
		return -1;
	for (i = 1; i < 3; i++)
		if (line[i] < '0' || line[i] > '9')
			return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*last = len == 3 || line[3] == ' ';
	return 0;
}

int
ctl_mail_date(char *dst, size_t dstsz, time_t t)
{
	static const char	*days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
				    "Fri", "Sat" };
	static const char	*months[] = { "Jan", "Feb", "Mar", "Apr",
				    "May", "Jun", "Jul", "Aug", "Sep", "Oct",
				    "Nov", "Dec" };
	struct tm		 tm;
	long			 off;
	int			 n;

	if (localtime_r(&t, &tm) == NULL || tm.tm_wday < 0 ||
	    tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
		return -1;
	/* Names fixed here: strftime's follow the locale. */
	off = tm.tm_gmtoff / 60;
	n = snprintf(dst, dstsz, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
	if (n < 0 || (size_t)n >= dstsz) {
		if (dstsz > 0)
			dst[0] = '\0';
		return -1;
	}
	return 0;
}

/* 1 if name may go in a phrase without quotes: atoms and spaces. */
static int
mail_phrase_is_atoms(const char *name)
{
	const char	*p;

	if (*name == '\0' || *name == ' ')
		return 0;
	for (p = name; *p != '\0'; p++)
		if (strchr("()<>[]:;@\\,.\"", *p) != NULL)
			return 0;
	return name[strlen(name) - 1] != ' ';
}

int
ctl_mail_from_header(struct ctl_buf *b, const char *fullname,
    const char *user)
{
	const char	*p;

	if (*user == '\0' || !ctl_mail_addr_valid(user, strlen(user)))
		return -1;
	if (fullname == NULL || *fullname == '\0') {
		ctl_buf_printf(b, "From: %s\r\n", user);
		return 0;
	}
	for (p = fullname; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -1;
	ctl_buf_puts(b, "From: ");
	if (mail_phrase_is_atoms(fullname))
		ctl_buf_puts(b, fullname);
	else {
		ctl_buf_add(b, "\"", 1);
		for (p = fullname; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				ctl_buf_add(b, "\\", 1);
			ctl_buf_add(b, p, 1);
		}
		ctl_buf_add(b, "\"", 1);
	}
	ctl_buf_printf(b, " <%s>\r\n", user);
	return 0;
}
