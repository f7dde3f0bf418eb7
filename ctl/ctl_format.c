/*
 * ctl_format.c: posternctl's pure formatters: ids, ages, sizes, escaping
 * for terminals and JSON, the queue table, statistics as text, JSON and
 * OpenMetrics, and the monitor lines.  No I/O: everything is built in a
 * ctl_buf, so that each form can be unit-tested byte for byte.
 * SECURITY: every string came from the queue process, which saw it from
 * the network; nothing reaches the output unescaped.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "ctl.h"

#define ESC_TAB_RAW	0x01	/* headers: TAB passes as it is */

static void	ctl_escape(struct ctl_buf *, const uint8_t *, size_t, int);
static int	ctl_cell(char **, const char *);
static int	ctl_cell_text(char **, const char *);
static void	ctl_json_bytes(struct ctl_buf *, const uint8_t *, size_t);
static int64_t	ctl_elapsed(int64_t, int64_t);

/* ---------------------------------------------------------------- buffer */

void
ctl_buf_init(struct ctl_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
ctl_buf_free(struct ctl_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void
ctl_buf_reset(struct ctl_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void
ctl_buf_add(struct ctl_buf *b, const char *s, size_t n)
{
	size_t	 need, ncap;
	char	*p;

	if (b->failed)
		return;
	if (n > CTL_BUF_MAX || b->len > CTL_BUF_MAX - n) {
		b->failed = 1;
		return;
	}
	need = b->len + n + 1;
	if (need > b->cap) {
		ncap = b->cap < 256 ? 256 : b->cap;
		while (ncap < need)
			ncap *= 2;
		if ((p = realloc(b->data, ncap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->data = p;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
ctl_buf_puts(struct ctl_buf *b, const char *s)
{
	ctl_buf_add(b, s, strlen(s));
}

void
ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	 small[256], *big;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		ctl_buf_add(b, small, n);
		return;
	}
	/* Rare: only long cells get here. */
	va_start(ap, fmt);
	n = vasprintf(&big, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	ctl_buf_add(b, big, n);
	free(big);
}

const char *
ctl_buf_str(const struct ctl_buf *b)
{
	return b->data != NULL ? b->data : "";
}

/* ---------------------------------------------------------------- values */

int
ctl_parse_id(const char *s, uint64_t *id)
{
	uint64_t	 v = 0;
	size_t		 i;
	int		 c;

	if (strcmp(s, "all") == 0) {
		*id = 0;
		return 0;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (i == 16)
			return -1;
		c = (unsigned char)s[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (uint64_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v << 4 | (uint64_t)(c - 'A' + 10);
		else
			return -1;
	}
	/* Zero means "all" on the wire: no real id is zero. */
	if (i != 16 || v == 0)
		return -1;
	*id = v;
	return 0;
}

/* Store a formatted short value, or "" and -1 if it does not fit. */
static int
ctl_fmt_small(char *dst, size_t dstsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int
ctl_fmt_small(char *dst, size_t dstsz, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (dstsz == 0)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= dstsz) {
		dst[0] = '\0';
		return -1;
	}
	return 0;
}

int
ctl_fmt_age(char *dst, size_t dstsz, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		return ctl_fmt_small(dst, dstsz, "%llds", (long long)s);
	if (s < 3600)
		return ctl_fmt_small(dst, dstsz, "%lldm", (long long)(s / 60));
	if (s < 86400)
		return ctl_fmt_small(dst, dstsz, "%lldh",
		    (long long)(s / 3600));
	return ctl_fmt_small(dst, dstsz, "%lldd", (long long)(s / 86400));
}

int
ctl_fmt_size(char *dst, size_t dstsz, uint64_t b)
{
	static const char	 units[] = "KMGTPE";
	uint64_t		 div, tenths, whole;
	int			 k;

	if (b < 1024)
		return ctl_fmt_small(dst, dstsz, "%lluB",
		    (unsigned long long)b);
	for (k = 1; k <= 6; k++) {
		div = (uint64_t)1 << (10 * k);
		/* Rounded to tenths without overflowing b * 10. */
		tenths = (b / div) * 10 + ((b % div) * 10 + div / 2) / div;
		if (tenths < 100)
			return ctl_fmt_small(dst, dstsz, "%llu.%llu%c",
			    (unsigned long long)(tenths / 10),
			    (unsigned long long)(tenths % 10), units[k - 1]);
		whole = (tenths + 5) / 10;
		if (whole < 1024 || k == 6)
			return ctl_fmt_small(dst, dstsz, "%llu%c",
			    (unsigned long long)whole, units[k - 1]);
	}
	return -1;	/* not reached: k == 6 always returns */
}

/* Seconds from then to now: 0 if then is later, saturated, no overflow
 * whatever the server sent. */
static int64_t
ctl_elapsed(int64_t now, int64_t then)
{
	if (then >= now)
		return 0;
	if (then < 0 && now > INT64_MAX + then)
		return INT64_MAX;
	return now - then;
}

int
ctl_fmt_next(char *dst, size_t dstsz, int64_t next_try, int64_t now)
{
	if (next_try <= now)
		return ctl_fmt_small(dst, dstsz, "now");
	return ctl_fmt_age(dst, dstsz, ctl_elapsed(next_try, now));
}

const char *
ctl_state_name(unsigned int state)
{
	switch (state) {
	case CTL_STATE_PENDING:
		return "pending";
	case CTL_STATE_INFLIGHT:
		return "in-flight";
	case CTL_STATE_DEFERRED:
		return "deferred";
	case CTL_STATE_HELD:
		return "held";
	}
	return "?";
}

/* ---------------------------------------------------------------- escaping */

/* Append len bytes for a terminal; see ctl_escape_text. */
static void
ctl_escape(struct ctl_buf *b, const uint8_t *s, size_t len, int flags)
{
	size_t	 i = 0, n, j;
	uint8_t	 c;

	while (i < len) {
		c = s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			/* Copy the run of plain characters at once. */
			for (j = i; j < len && s[j] >= 0x20 && s[j] < 0x7f &&
			    s[j] != '\\'; j++)
				;
			ctl_buf_add(b, (const char *)s + i, j - i);
			i = j;
			continue;
		}
		switch (c) {
		case '\\':
			ctl_buf_puts(b, "\\\\");
			i++;
			continue;
		case '\t':
			ctl_buf_puts(b, (flags & ESC_TAB_RAW) ? "\t" : "\\t");
			i++;
			continue;
		case '\r':
			ctl_buf_puts(b, "\\r");
			i++;
			continue;
		case '\n':
			ctl_buf_puts(b, "\\n");
			i++;
			continue;
		}
		if (c < 0x80) {
			ctl_buf_printf(b, "\\x%02X", c);
			i++;
			continue;
		}
		n = addr_utf8_seqlen(s + i, len - i);
		/* Malformed, or a C1 control (U+0080 to U+009F). */
		if (n == 0 || (n == 2 && c == 0xc2 && s[i + 1] < 0xa0)) {
			if (n == 0)
				n = 1;
			for (j = 0; j < n; j++)
				ctl_buf_printf(b, "\\x%02X", s[i + j]);
			i += n;
			continue;
		}
		ctl_buf_add(b, (const char *)s + i, n);
		i += n;
	}
}

void
ctl_escape_text(struct ctl_buf *b, const char *s)
{
	ctl_escape(b, (const uint8_t *)s, strlen(s), 0);
}

/* Append len bytes as the inside of a JSON string. */
static void
ctl_json_bytes(struct ctl_buf *b, const uint8_t *s, size_t len)
{
	size_t	 i = 0, j, n;
	uint8_t	 c;

	while (i < len) {
		c = s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			for (j = i; j < len && s[j] >= 0x20 && s[j] < 0x7f &&
			    s[j] != '"' && s[j] != '\\'; j++)
				;
			ctl_buf_add(b, (const char *)s + i, j - i);
			i = j;
			continue;
		}
		if (c == '"' || c == '\\') {
			ctl_buf_printf(b, "\\%c", c);
			i++;
			continue;
		}
		if (c < 0x80) {
			ctl_buf_printf(b, "\\u%04x", c);
			i++;
			continue;
		}
		if ((n = addr_utf8_seqlen(s + i, len - i)) == 0) {
			ctl_buf_puts(b, "\\ufffd");
			i++;
			continue;
		}
		ctl_buf_add(b, (const char *)s + i, n);
		i += n;
	}
}

void
ctl_escape_json(struct ctl_buf *b, const char *s)
{
	ctl_escape_json_bytes(b, (const uint8_t *)s, strlen(s));
}

void
ctl_escape_json_bytes(struct ctl_buf *b, const uint8_t *s, size_t len)
{
	ctl_buf_puts(b, "\"");
	ctl_json_bytes(b, s, len);
	ctl_buf_puts(b, "\"");
}

size_t
ctl_text_columns(const char *s, size_t len)
{
	size_t	 i, cols = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			cols++;
	return cols;
}

/* ---------------------------------------------------------------- table */

/* Set *cell to a copy of s; 0 or -1. */
static int
ctl_cell(char **cell, const char *s)
{
	return (*cell = strdup(s)) == NULL ? -1 : 0;
}

/* Set *cell to s escaped for a terminal; 0 or -1. */
static int
ctl_cell_text(char **cell, const char *s)
{
	struct ctl_buf	 b;
	int		 rv = -1;

	ctl_buf_init(&b);
	ctl_escape_text(&b, s);
	if (!b.failed)
		rv = ctl_cell(cell, ctl_buf_str(&b));
	ctl_buf_free(&b);
	return rv;
}

int
ctl_row_header(struct ctl_row *r)
{
	static const char	*titles[CTL_NCOLS] = {
		"ID", "AGE", "SIZE", "SENDER", "RECIPIENT", "STATE",
		"ATTEMPTS", "NEXT", "ERROR"
	};
	int			 c;

	memset(r, 0, sizeof(*r));
	for (c = 0; c < CTL_NCOLS; c++)
		if (ctl_cell(&r->cell[c], titles[c]) == -1) {
			ctl_row_free(r);
			return -1;
		}
	return 0;
}

int
ctl_row_envelope(struct ctl_row *r, const struct msg_ctl_envelope *e,
    int64_t now)
{
	char	 id[17], age[CTL_SHORTLEN], size[CTL_SHORTLEN];
	char	 next[CTL_SHORTLEN], attempts[CTL_SHORTLEN];
	int	 ok = 0;

	memset(r, 0, sizeof(*r));
	snprintf(id, sizeof(id), "%016llx", (unsigned long long)e->evpid);
	snprintf(attempts, sizeof(attempts), "%u", e->attempts);
	ctl_fmt_age(age, sizeof(age), ctl_elapsed(now, e->ctime));
	ctl_fmt_size(size, sizeof(size), e->size);
	if (e->state == CTL_STATE_HELD || e->state == CTL_STATE_INFLIGHT)
		strlcpy(next, "-", sizeof(next));
	else
		ctl_fmt_next(next, sizeof(next), e->next_try, now);

	ok |= ctl_cell(&r->cell[CTL_COL_ID], id);
	ok |= ctl_cell(&r->cell[CTL_COL_AGE], age);
	ok |= ctl_cell(&r->cell[CTL_COL_SIZE], size);
	if (e->sender[0] == '\0')
		ok |= ctl_cell(&r->cell[CTL_COL_SENDER], "<>");
	else
		ok |= ctl_cell_text(&r->cell[CTL_COL_SENDER], e->sender);
	ok |= ctl_cell_text(&r->cell[CTL_COL_RCPT], e->rcpt);
	ok |= ctl_cell(&r->cell[CTL_COL_STATE], ctl_state_name(e->state));
	ok |= ctl_cell(&r->cell[CTL_COL_ATTEMPTS], attempts);
	ok |= ctl_cell(&r->cell[CTL_COL_NEXT], next);
	if (e->last_error[0] == '\0')
		ok |= ctl_cell(&r->cell[CTL_COL_ERROR], "-");
	else
		ok |= ctl_cell_text(&r->cell[CTL_COL_ERROR], e->last_error);
	if (ok != 0) {
		ctl_row_free(r);
		return -1;
	}
	return 0;
}

void
ctl_row_free(struct ctl_row *r)
{
	int	 c;

	for (c = 0; c < CTL_NCOLS; c++) {
		free(r->cell[c]);
		r->cell[c] = NULL;
	}
}

void
ctl_row_widths(const struct ctl_row *r, size_t width[CTL_NCOLS])
{
	size_t	 w;
	int	 c;

	for (c = 0; c < CTL_NCOLS; c++) {
		if (r->cell[c] == NULL)
			continue;
		w = ctl_text_columns(r->cell[c], strlen(r->cell[c]));
		if ((c == CTL_COL_SENDER || c == CTL_COL_RCPT) &&
		    w > CTL_COL_MAXWIDTH)
			w = CTL_COL_MAXWIDTH;
		if (w > width[c])
			width[c] = w;
	}
}

/* Numbers line up on the right, text on the left. */
static int
ctl_col_right(int c)
{
	return c == CTL_COL_AGE || c == CTL_COL_SIZE ||
	    c == CTL_COL_ATTEMPTS;
}

void
ctl_fmt_row(struct ctl_buf *b, const struct ctl_row *r,
    const size_t width[CTL_NCOLS], size_t maxcols)
{
	struct ctl_buf	 line;
	const char	*cell, *s;
	size_t		 w, pad, cols;
	int		 c;

	ctl_buf_init(&line);
	for (c = 0; c < CTL_NCOLS; c++) {
		cell = r->cell[c] != NULL ? r->cell[c] : "";
		w = ctl_text_columns(cell, strlen(cell));
		pad = width[c] > w ? width[c] - w : 0;
		if (c > 0)
			ctl_buf_puts(&line, "  ");
		if (ctl_col_right(c))
			for (; pad > 0; pad--)
				ctl_buf_puts(&line, " ");
		ctl_buf_puts(&line, cell);
		if (c < CTL_NCOLS - 1)
			for (; pad > 0; pad--)
				ctl_buf_puts(&line, " ");
	}
	if (line.failed) {
		b->failed = 1;
		ctl_buf_free(&line);
		return;
	}
	s = ctl_buf_str(&line);
	w = line.len;
	if (maxcols > 0) {
		/* Cut at a character boundary, never inside UTF-8. */
		for (w = 0, cols = 0; w < line.len; w++) {
			if (((unsigned char)s[w] & 0xc0) != 0x80) {
				if (cols == maxcols)
					break;
				cols++;
			}
		}
	}
	/* No trailing blanks (an empty last cell, or a cut padding). */
	while (w > 0 && s[w - 1] == ' ')
		w--;
	ctl_buf_add(b, s, w);
	ctl_buf_puts(b, "\n");
	ctl_buf_free(&line);
}

void
ctl_json_envelope(struct ctl_buf *b, const struct msg_ctl_envelope *e,
    int64_t now)
{
	ctl_buf_printf(b, "{\"id\": \"%016llx\", \"message_id\": \"%016llx\", "
	    "\"age_seconds\": %lld, \"size\": %llu, \"sender\": ",
	    (unsigned long long)e->evpid, (unsigned long long)e->msgid,
	    (long long)ctl_elapsed(now, e->ctime),
	    (unsigned long long)e->size);
	ctl_escape_json(b, e->sender);
	ctl_buf_puts(b, ", \"recipient\": ");
	ctl_escape_json(b, e->rcpt);
	ctl_buf_printf(b, ", \"state\": \"%s\", \"attempts\": %u, "
	    "\"next_try\": %lld, \"last_error\": ", ctl_state_name(e->state),
	    e->attempts, (long long)e->next_try);
	ctl_escape_json(b, e->last_error);
	ctl_buf_puts(b, "}");
}

void
ctl_fmt_headers(struct ctl_buf *b, const uint8_t *h, size_t len)
{
	size_t	 i = 0, eol, next;

	while (i < len) {
		/* One line: up to LF; a CR right before it is the CRLF. */
		for (eol = i; eol < len && h[eol] != '\n'; eol++)
			;
		next = eol < len ? eol + 1 : eol;
		if (eol < len && eol > i && h[eol - 1] == '\r')
			eol--;
		ctl_escape(b, h + i, eol - i, ESC_TAB_RAW);
		ctl_buf_puts(b, "\n");
		i = next;
	}
}

/* ---------------------------------------------------------------- stats */

void
ctl_fmt_stats_text(struct ctl_buf *b, const struct msg_ctl_stat *st,
    size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		ctl_escape_text(b, st[i].name);
		ctl_buf_printf(b, ": %lld\n", (long long)st[i].value);
	}
}

void
ctl_fmt_stats_json(struct ctl_buf *b, const struct msg_ctl_stat *st,
    size_t n)
{
	size_t	 i;

	ctl_buf_puts(b, "{");
	for (i = 0; i < n; i++) {
		if (i > 0)
			ctl_buf_puts(b, ", ");
		ctl_escape_json(b, st[i].name);
		ctl_buf_printf(b, ": %lld", (long long)st[i].value);
	}
	ctl_buf_puts(b, "}\n");
}

/* True if name ends in "_total" after at least one character. */
static int
ctl_stat_is_counter(const char *name)
{
	size_t	 len = strlen(name);

	return len > 6 && strcmp(name + len - 6, "_total") == 0;
}

void
ctl_fmt_stats_openmetrics(struct ctl_buf *b, const struct msg_ctl_stat *st,
    size_t n)
{
	size_t	 i, len;
	char	 name[PROTO_NAMELEN];

	for (i = 0; i < n; i++) {
		/* The decoder allows [a-z0-9_] only; the names need no
		 * escaping but a foreign caller's might: skip those. */
		if (strspn(st[i].name, "abcdefghijklmnopqrstuvwxyz0123456789_")
		    != strlen(st[i].name) || st[i].name[0] == '\0')
			continue;
		if (ctl_stat_is_counter(st[i].name)) {
			/* OpenMetrics: the family drops the _total suffix. */
			len = strlen(st[i].name) - 6;
			memcpy(name, st[i].name, len);
			name[len] = '\0';
			ctl_buf_printf(b, "# TYPE postern_%s counter\n", name);
		} else
			ctl_buf_printf(b, "# TYPE postern_%s gauge\n",
			    st[i].name);
		ctl_buf_printf(b, "postern_%s %lld\n", st[i].name,
		    (long long)st[i].value);
	}
	ctl_buf_puts(b, "# EOF\n");
}

int
ctl_stat_find(const struct msg_ctl_stat *st, size_t n, const char *name,
    int64_t *value)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(st[i].name, name) == 0) {
			*value = st[i].value;
			return 0;
		}
	return -1;
}

/* ---------------------------------------------------------------- monitor */

/* The value of name, or 0 if absent. */
static int64_t
ctl_stat_or_zero(const struct msg_ctl_stat *st, size_t n, const char *name)
{
	int64_t	 v;

	return ctl_stat_find(st, n, name, &v) == 0 ? v : 0;
}

void
ctl_sample_from_stats(struct ctl_sample *s, const struct msg_ctl_stat *st,
    size_t n, double when)
{
	static const char	*queued[] = { "envelopes_pending",
	    "envelopes_inflight", "envelopes_deferred", "envelopes_held" };
	size_t			 i;
	int64_t			 v;

	memset(s, 0, sizeof(*s));
	s->when = when;
	s->received = ctl_stat_or_zero(st, n, "messages_received_total");
	s->delivered = ctl_stat_or_zero(st, n, "messages_delivered_total");
	s->deferrals = ctl_stat_or_zero(st, n, "deliveries_deferred_total");
	s->deferred = ctl_stat_or_zero(st, n, "envelopes_deferred");
	for (i = 0; i < sizeof(queued) / sizeof(queued[0]); i++) {
		v = ctl_stat_or_zero(st, n, queued[i]);
		if (v > 0 && s->queue <= INT64_MAX - v)
			s->queue += v;
	}
	if (ctl_stat_find(st, n, "smtp_sessions", &s->sessions) == -1)
		s->sessions = -1;
}

#define MON_HEAD	"%-8s  %8s  %8s  %8s  %8s  %8s"
#define MON_LINE	"%-8s  %8.1f  %8.1f  %8.1f  %8lld  %8lld"

void
ctl_fmt_monitor_header(struct ctl_buf *b, int sessions)
{
	ctl_buf_printf(b, MON_HEAD, "TIME", "RECV/S", "DELIV/S", "DEFER/S",
	    "DEFERRED", "QUEUE");
	if (sessions)
		ctl_buf_printf(b, "  %8s", "SESSIONS");
	ctl_buf_puts(b, "\n");
}

/* Events per second of a counter between two samples, 0 if it fell. */
static double
ctl_rate(int64_t prev, int64_t cur, double secs)
{
	if (cur <= prev || secs <= 0)
		return 0.0;
	return ((double)cur - (double)prev) / secs;
}

void
ctl_fmt_monitor_line(struct ctl_buf *b, int64_t clock,
    const struct ctl_sample *prev, const struct ctl_sample *cur,
    int sessions)
{
	struct tm	 tm;
	time_t		 t = (time_t)clock;
	char		 hms[16];
	double		 secs = cur->when - prev->when;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(hms, sizeof(hms), "%H:%M:%S", &tm) == 0)
		strlcpy(hms, "??:??:??", sizeof(hms));
	ctl_buf_printf(b, MON_LINE, hms,
	    ctl_rate(prev->received, cur->received, secs),
	    ctl_rate(prev->delivered, cur->delivered, secs),
	    ctl_rate(prev->deferrals, cur->deferrals, secs),
	    (long long)cur->deferred, (long long)cur->queue);
	if (sessions)
		ctl_buf_printf(b, "  %8lld",
		    (long long)(cur->sessions < 0 ? 0 : cur->sessions));
	ctl_buf_puts(b, "\n");
}
