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
#include <time.h>

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
int	ctl_unix_connect(const char *);
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


/* ------------------------------------------------------------ sendmail */

/*
 * ctl_mail.c: the pure parts of the sendmail(8) face, on byte buffers.
 * Everything here may see a message from any local user: bad input is
 * an error return, never a crash.
 */
#define CTL_MAIL_ADDRMAX	512	/* bytes of one address */
#define CTL_MAIL_MAXRCPT	10000	/* recipients of one message */
#define CTL_MAIL_MAXSIZE	(64 * 1024 * 1024)	/* bytes read */

/* Envelope recipients, each a malloc'd NUL-terminated addr-spec. */
struct ctl_mail_rcpts {
	char	**addr;
	size_t	  n;
	size_t	  cap;
};

void	ctl_mail_rcpts_init(struct ctl_mail_rcpts *);
void	ctl_mail_rcpts_free(struct ctl_mail_rcpts *);
/*
 * ctl_mail_addr_valid: 1 if len bytes may go between the angle brackets
 * of MAIL FROM or RCPT TO: at most CTL_MAIL_ADDRMAX bytes, no control
 * byte (C0, DEL), no space, '<' or '>'.  The empty string is valid (the
 * null sender); callers that need an address check len themselves.
 */
int	ctl_mail_addr_valid(const char *, size_t len);
/*
 * ctl_mail_rcpt_add: append a copy of a non-empty valid address.  0, or
 * -1: invalid or empty (errno EINVAL), more than CTL_MAIL_MAXRCPT
 * (E2BIG), out of memory (ENOMEM).
 */
int	ctl_mail_rcpt_add(struct ctl_mail_rcpts *, const char *, size_t len);
/*
 * ctl_mail_addrlist: the addr-spec of each mailbox of an address-list
 * header value (RFC 5322 3.4; folding CR/LF anywhere is unfolded):
 * mailboxes separated by commas, "Display Name" <addr>, comments (nested,
 * with quoted-pairs), quoted strings holding commas, obsolete routes
 * <@a,@b:addr>, groups "name: a, b;" (an empty group adds nothing).
 * Whitespace and comments outside quotes are dropped from the address.
 * Each address is added with ctl_mail_rcpt_add.  0, or -1 on an
 * unterminated quote, comment or angle, stray '>', or an address
 * ctl_mail_rcpt_add refuses (errno as it sets, EINVAL for syntax).
 */
int	ctl_mail_addrlist(struct ctl_mail_rcpts *, const char *, size_t len);

/* One header field: name and raw value (folds included, terminator not). */
struct ctl_mail_field {
	const char	*name;
	size_t		 namelen;
	const char	*value;
	size_t		 valuelen;
	size_t		 start;		/* its first byte */
	size_t		 end;		/* offset past its last LF */
};

/*
 * ctl_mail_field_next: the header field at *off of buf.  A field is a
 * line "name:" (name: printable ASCII but ':', optionally followed by
 * blanks) plus every following line that starts with SP or HTAB.
 * Returns 1 with *f filled and *off at the next line, or 0 when the line
 * at *off is no field (empty line, body text, a leading continuation,
 * the end of buf): the header section ends there.
 */
int	ctl_mail_field_next(const char *buf, size_t len, size_t *off,
	    struct ctl_mail_field *);

/* What ctl_mail_scan found in a message. */
struct ctl_mail_scan {
	size_t	 hdrend;	/* end of the header section */
	size_t	 bodystart;	/* first body byte (len: no body) */
	int	 separator;	/* an empty line ended the header */
	int	 has_date;
	int	 has_msgid;
	int	 has_from;
	size_t	 nbcc;		/* Bcc: fields (not sent) */
};

/*
 * ctl_mail_scan: find the header section of a message (LF or CRLF
 * lines), note Date:, Message-ID: and From:, and with want_rcpts add
 * the addresses of each To:, Cc: and Bcc: to rcpts.  0, or -1 with a
 * one-line reason in err ("bad address list in To: header").
 */
int	ctl_mail_scan(const char *buf, size_t len, int want_rcpts,
	    struct ctl_mail_rcpts *, struct ctl_mail_scan *, char *err,
	    size_t errsz);
/*
 * ctl_mail_wire: append the message as SMTP DATA text, without the
 * final ".": first the added header lines (CRLF-terminated, may be
 * ""), then the message's header fields but Bcc:, an empty line if a
 * body follows, the body.  Lines end in CRLF (a CR before an LF is
 * kept once, a last line without LF gets CRLF) and a line that starts
 * with "." gets one more.
 */
void	ctl_mail_wire(struct ctl_buf *, const char *buf, size_t len,
	    const struct ctl_mail_scan *, const char *added);
/* ctl_mail_wire_line: one line (no LF; one trailing CR dropped). */
void	ctl_mail_wire_line(struct ctl_buf *, const char *line, size_t len);
/*
 * ctl_mail_is_end_line: 1 if a line read from stdin (with its LF, if
 * any) is a lone "." ("." "\n", ".\r\n" or "." at EOF): without -i it
 * ends the message.
 */
int	ctl_mail_is_end_line(const char *line, size_t len);
/*
 * ctl_mail_reply_line: one SMTP reply line (no CRLF): "DDD" or "DDD "
 * text (*last = 1) or "DDD-" text (*last = 0), first digit 2 to 5.
 * 0 with *code, or -1 if it is no reply line.
 */
int	ctl_mail_reply_line(const char *line, size_t len, int *code,
	    int *last);
/* ctl_mail_date: RFC 5322 date-time of t in local time; 0 or -1. */
int	ctl_mail_date(char *dst, size_t dstsz, time_t t);
/*
 * ctl_mail_from_header: append "From: " user or "From: NAME <user>" and
 * CRLF, NAME as it is when it is atoms and spaces, else as a quoted
 * string with '"' and '\\' backslashed.  -1 (nothing appended) if name
 * or user holds a control byte or user is not a valid address.
 */
int	ctl_mail_from_header(struct ctl_buf *, const char *fullname,
	    const char *user);

/* sendmail(8) options, as ctl_sendmail_parse leaves them. */
enum ctl_sendmail_mode {
	CTL_SM_DELIVER,		/* -bm, the default */
	CTL_SM_SMTP,		/* -bs */
	CTL_SM_QUEUE,		/* -bp, mailq */
	CTL_SM_ALIASES,		/* -bi, newaliases */
};

struct ctl_sendmail_opts {
	enum ctl_sendmail_mode	 mode;
	const char		*sender;	/* -f/-r, NULL = login name */
	const char		*fullname;	/* -F */
	const char		*conffile;	/* -C, NULL = default */
	int			 ignore_dots;	/* -i, -oi */
	int			 from_headers;	/* -t */
	int			 verbose;	/* -v */
	char			**rcpts;	/* the arguments left */
	int			 nrcpts;
};

/*
 * ctl_sendmail_parse: the options of "sendmail" (face "sendmail") or
 * "newaliases" (no arguments: mode CTL_SM_ALIASES).  Options for
 * compatibility only are accepted and ignored.  0, or -1 with a
 * one-line reason in err (a usage error).  Uses getopt(3): resets
 * optind itself.
 */
int	ctl_sendmail_parse(const char *face, int argc, char *argv[],
	    struct ctl_sendmail_opts *, char *err, size_t errsz);
/*
 * ctl_sendmail_main: run the sendmail face named face ("sendmail" or
 * "newaliases"); returns a sysexits(3) status.  -bp calls mailq with the
 * configuration file to read (NULL = the default) and returns its status.
 */
int	ctl_sendmail_main(const char *face, int argc, char *argv[],
	    int (*mailq)(const char *conffile));


/* ------------------------------------------------------- offline drop */

/*
 * ctl_drop.c: the offline drop of sendmail (drop.h has the file format).
 * ctl_drop_init: first thing in main: save the effective group (the
 * setgid _postern_drop of an installed posternctl) and drop it; it comes
 * back only inside ctl_drop_write.  Exits 71 if it cannot be dropped.
 */
void	ctl_drop_init(void);
/*
 * ctl_drop_unstuff: append SMTP DATA text as ctl_mail_wire makes it, with
 * the one "." each line starting with "." got removed (CRLF kept).
 */
void	ctl_drop_unstuff(struct ctl_buf *, const char *wire, size_t len);
/*
 * ctl_drop_format: append a whole drop file: magic, sender ("" is the
 * null sender), 1 to DROP_MAXRCPT recipients, blank line, len bytes of
 * body (CRLF lines, not dot-stuffed).  0, or -1 with a reason in err:
 * an address drop_parse would refuse (too long, empty recipient, a
 * space, control byte, '<' or '>'), no or too many recipients, a bare
 * CR or LF in the body, out of memory.  b is left partial on -1.
 */
int	ctl_drop_format(struct ctl_buf *, const char *sender,
	    const struct ctl_mail_rcpts *, const char *body, size_t len,
	    char *err, size_t errsz);
/*
 * ctl_drop_write: store len bytes as a new file of directory dir: create
 * dir/t<16 hex> (O_EXCL, O_NOFOLLOW, mode 0644, owned by the real uid),
 * write, fsync, rename to dir/m<same hex>, whose name goes to name.
 * 0, or -1 with errno and a reason in err; no file is left on failure.
 */
int	ctl_drop_write(const char *dir, const char *data, size_t len,
	    char *name, size_t namesz, char *err, size_t errsz);

#endif
