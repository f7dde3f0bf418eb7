/*
 * ctl.h: posternctl, the operator's client of the control socket: the
 * pure formatters (ctl_format.c: ids, ages, sizes, escaping, the queue
 * table, JSON, OpenMetrics) and the connection (ctl_client.c).
 * SECURITY: runs as whoever invokes it, root or not; everything the
 * server sends (addresses, errors, headers) is escaped before it reaches
 * a terminal or a JSON document.
 */
#ifndef POSTERN_CTL_H
#define POSTERN_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "imsg.h"
#include "proto.h"

#define CTL_SHORTLEN	24

/* Largest document the formatters build in memory (one reply). */
#define CTL_BUF_MAX	(64 * 1024 * 1024)

/*
 * A growable, always NUL-terminated text buffer.  Appending past
 * CTL_BUF_MAX or running out of memory sets failed and stops appending;
 * the caller checks failed once at the end.
 */
struct ctl_buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	int	 failed;
};

void	ctl_buf_init(struct ctl_buf *);
void	ctl_buf_free(struct ctl_buf *);
/* ctl_buf_reset: empty it, keep the memory, clear failed. */
void	ctl_buf_reset(struct ctl_buf *);
void	ctl_buf_add(struct ctl_buf *, const char *, size_t);
void	ctl_buf_puts(struct ctl_buf *, const char *);
void	ctl_buf_printf(struct ctl_buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* ctl_buf_str: the text so far ("" if nothing was added). */
const char *ctl_buf_str(const struct ctl_buf *);

/*
 * ctl_parse_id: "all" -> 0, or exactly 16 hex digits (either case) that
 * are not all zero -> the id.  Returns 0, or -1 for anything else.
 */
int	ctl_parse_id(const char *, uint64_t *);

/*
 * Short human forms.  Each writes a NUL-terminated string into dst and
 * returns 0, or -1 (dst set to "") if dstsz is too small; CTL_SHORTLEN
 * bytes are always enough.
 * ctl_fmt_age: seconds, floored to the largest unit: "45s", "12m", "3h",
 *   "2d"; negative counts as 0.
 * ctl_fmt_size: bytes, base 1024: "512B", "4.0K" (one decimal below 10),
 *   "12K", "1.5M", up to "E".
 * ctl_fmt_next: "now" when next_try <= now, else ctl_fmt_age of the wait.
 */
int	ctl_fmt_age(char *dst, size_t dstsz, int64_t seconds);
int	ctl_fmt_size(char *dst, size_t dstsz, uint64_t bytes);
int	ctl_fmt_next(char *dst, size_t dstsz, int64_t next_try, int64_t now);

/* ctl_state_name: "pending", "in-flight", "deferred", "held" or "?". */
const char *ctl_state_name(unsigned int state);

/*
 * ctl_escape_text: append s for a terminal: well-formed UTF-8 printable
 * characters pass through; backslash becomes "\\", TAB/CR/LF "\t" "\r"
 * "\n", other C0 and C1 controls, DEL and bytes that are not UTF-8
 * become "\xHH" (one per byte).
 */
void	ctl_escape_text(struct ctl_buf *, const char *s);
/*
 * ctl_escape_json: append s as a JSON string, quotes included: '"' and
 * '\\' backslashed, every control character (U+0000 to U+001F) and DEL
 * as \u00XX, well-formed UTF-8 passed through, each byte of a malformed
 * sequence as \ufffd so that the document is always valid UTF-8.
 * ctl_escape_json_bytes: the same for len bytes that may hold NULs.
 */
void	ctl_escape_json(struct ctl_buf *, const char *s);
void	ctl_escape_json_bytes(struct ctl_buf *, const uint8_t *, size_t len);
/*
 * ctl_text_columns: terminal columns of len bytes of already escaped
 * text (one per UTF-8 character; wide characters are not measured).
 */
size_t	ctl_text_columns(const char *, size_t len);

/* The columns of the queue table, in order. */
enum ctl_col {
	CTL_COL_ID, CTL_COL_AGE, CTL_COL_SIZE, CTL_COL_SENDER, CTL_COL_RCPT,
	CTL_COL_STATE, CTL_COL_ATTEMPTS, CTL_COL_NEXT, CTL_COL_ERROR,
	CTL_NCOLS
};
/* Sender and recipient columns grow with their cells up to this width;
 * a longer cell overflows its own line only. */
#define CTL_COL_MAXWIDTH	40

/* One line of the queue table: escaped cells, each malloc'd. */
struct ctl_row {
	char	*cell[CTL_NCOLS];
};

/* ctl_row_header: the column titles.  0, or -1 out of memory. */
int	ctl_row_header(struct ctl_row *);
/*
 * ctl_row_envelope: the cells of one envelope at time now: AGE from
 * ctime, NEXT "-" when held or in flight, SENDER "<>" when empty, ERROR
 * "-" when none.  0, or -1 out of memory (row left empty).
 */
int	ctl_row_envelope(struct ctl_row *, const struct msg_ctl_envelope *,
	    int64_t now);
void	ctl_row_free(struct ctl_row *);
/* ctl_row_widths: raise width[c] to the columns of each cell (capped). */
void	ctl_row_widths(const struct ctl_row *, size_t width[CTL_NCOLS]);
/*
 * ctl_fmt_row: append one line, cells left-aligned to width[] and
 * separated by two spaces, no trailing blanks, then LF.  maxcols > 0 cuts
 * the line to that many columns (terminal output); 0 never cuts.
 */
void	ctl_fmt_row(struct ctl_buf *, const struct ctl_row *,
	    const size_t width[CTL_NCOLS], size_t maxcols);

/*
 * ctl_json_envelope: append one JSON object {"id", "message_id" (16 hex),
 * "age_seconds", "size", "sender", "recipient", "state", "attempts",
 * "next_try" (unix time), "last_error"}, no newline.
 */
void	ctl_json_envelope(struct ctl_buf *, const struct msg_ctl_envelope *,
	    int64_t now);

/*
 * ctl_fmt_headers: append raw header bytes for a terminal: CRLF (and a
 * bare LF) ends a line as LF, TAB passes, a lone CR and every other
 * control or malformed byte is escaped as in ctl_escape_text; a missing
 * final LF is added.
 */
void	ctl_fmt_headers(struct ctl_buf *, const uint8_t *, size_t);

/*
 * Statistics, in the order received.  Text: "name: value" lines.  JSON:
 * one object {"name": value, ...} and LF.  OpenMetrics: per stat a
 * "# TYPE" line (counter for names ending in "_total", whose family is
 * the name without it, gauge otherwise) and a sample "postern_NAME VALUE",
 * then "# EOF".
 */
void	ctl_fmt_stats_text(struct ctl_buf *, const struct msg_ctl_stat *,
	    size_t);
void	ctl_fmt_stats_json(struct ctl_buf *, const struct msg_ctl_stat *,
	    size_t);
void	ctl_fmt_stats_openmetrics(struct ctl_buf *,
	    const struct msg_ctl_stat *, size_t);
/* ctl_stat_find: 0 and *value for name, or -1 if it is absent. */
int	ctl_stat_find(const struct msg_ctl_stat *, size_t, const char *name,
	    int64_t *value);

/* One sample of the counters "monitor" shows. */
struct ctl_sample {
	double		 when;		/* monotonic seconds */
	int64_t		 received;	/* messages_received_total */
	int64_t		 delivered;	/* messages_delivered_total */
	int64_t		 deferrals;	/* deliveries_deferred_total */
	int64_t		 deferred;	/* envelopes_deferred */
	int64_t		 queue;		/* sum of envelopes_{pending,
					   inflight,deferred,held} */
	int64_t		 sessions;	/* smtp_sessions, -1 if absent */
};

/* ctl_sample_from_stats: fill s from a stats reply (absent = 0). */
void	ctl_sample_from_stats(struct ctl_sample *,
	    const struct msg_ctl_stat *, size_t, double when);
/* ctl_fmt_monitor_header: the title line, with SESSIONS if asked. */
void	ctl_fmt_monitor_header(struct ctl_buf *, int sessions);
/*
 * ctl_fmt_monitor_line: "HH:MM:SS" of clock (local time), received/s,
 * delivered/s and deferrals/s between prev and cur (a counter that went
 * down, as after a restart, counts as 0), deferred, queue, [sessions].
 */
void	ctl_fmt_monitor_line(struct ctl_buf *, int64_t clock,
	    const struct ctl_sample *prev, const struct ctl_sample *cur,
	    int sessions);

/* ---------------------------------------------------------- connection */

struct ctl_conn {
	int		 fd;
	struct imsgbuf	 ib;
	int		 timeout;	/* ms to wait for each frame */
};

/*
 * ctl_connect: connect to the control socket at path.  0, or -1 with
 * errno set (ENAMETOOLONG for a path that does not fit sun_path).
 */
int	ctl_connect(struct ctl_conn *, const char *path);
/* ctl_request: send one request frame (p NULL = empty payload); 0 or -1
 * with errno. */
int	ctl_request(struct ctl_conn *, uint16_t type,
	    const struct imsg_payload *p);
/*
 * ctl_next: wait for the next frame of the reply.  Returns 1 with *m
 * filled (imsg_free it), or -1 with a one-line reason in err: the server
 * closed the connection, timed out, or sent bytes that are no frame.
 */
int	ctl_next(struct ctl_conn *, struct imsg *m, char *err, size_t errsz);
void	ctl_close(struct ctl_conn *);

#endif
