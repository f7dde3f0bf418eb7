/*
 * posternctl.c: operate and monitor the running posternd over its control
 * socket: show the queue, a message and the statistics, act on envelopes,
 * pause and resume, reload, change the log level, watch live counters.
 * Also the future home of the sendmail, mailq and newaliases faces.
 * SECURITY: runs as the invoking user with no privilege of its own; the
 * daemon decides what that user may do (it sees the peer's credentials).
 * Text from the daemon is escaped before it reaches the terminal.
 */
#include <sys/ioctl.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"

#define CTL_DEFAULT_CONF	"/etc/postern/postern.conf"
#define CTL_MAXMACROS		PROTO_MAXMACROS
#define CTL_ERRLEN		1024
#define CTL_MONITOR_REPEAT	20	/* lines between two headers */
#define CTL_MAXSTATS		65536	/* no daemon has that many */

/* Exit statuses. */
#define EX_OK		0
#define EX_FAIL		1
#define EX_USAGE	2

/* What a command takes after its words. */
enum ctl_arg {
	ARG_NONE,
	ARG_ID,		/* an envelope or message id, or "all" */
	ARG_MSGID,	/* an id, not "all" */
	ARG_WHAT,	/* smtp | delivery */
	ARG_LEVEL,	/* verbose | brief */
};

/* Output forms a command accepts. */
#define FMT_JSON	0x01
#define FMT_OPENMETRICS	0x02

struct ctl_invocation;

struct ctl_command {
	const char	*verb;
	const char	*object;	/* second word, or NULL */
	enum ctl_arg	 arg;
	uint16_t	 type;		/* request frame */
	int		 formats;
	const char	*done;		/* "removed", "paused", ... */
	int		(*run)(const struct ctl_command *,
			    struct ctl_invocation *);
};

struct ctl_invocation {
	const char	*socket;
	int		 json;
	int		 openmetrics;
	uint64_t	 id;		/* ARG_ID, ARG_MSGID */
	uint8_t		 what;		/* ARG_WHAT, ARG_LEVEL */
	const char	*whatname;
};

/* Collects the frames of one reply. */
struct ctl_reply {
	const struct ctl_command *cmd;
	struct ctl_invocation	*inv;
	int64_t			 now;
	size_t			 count;		/* envelopes seen */
	int			 count_only;	/* keep nothing */
	int			 stream;	/* JSON straight to stdout */
	/* show queue, show message */
	struct ctl_row		*rows;
	size_t			 nrows;
	struct ctl_buf		 json;		/* show message --json */
	struct ctl_buf		 headers;	/* show message */
	uint64_t		 msgid;
	/* show stats */
	struct msg_ctl_stat	*stats;
	size_t			 nstats;
	size_t			 capstats;
};

static int	ctl_cmd_show_queue(const struct ctl_command *,
		    struct ctl_invocation *);
static int	ctl_cmd_show_message(const struct ctl_command *,
		    struct ctl_invocation *);
static int	ctl_cmd_show_stats(const struct ctl_command *,
		    struct ctl_invocation *);
static int	ctl_cmd_ids(const struct ctl_command *,
		    struct ctl_invocation *);
static int	ctl_cmd_simple(const struct ctl_command *,
		    struct ctl_invocation *);
static int	ctl_cmd_monitor(const struct ctl_command *,
		    struct ctl_invocation *);

static const struct ctl_command commands[] = {
	{ "show", "queue", ARG_NONE, IMSG_CTL_SHOW_QUEUE, FMT_JSON, NULL,
	    ctl_cmd_show_queue },
	{ "show", "message", ARG_MSGID, IMSG_CTL_SHOW_MESSAGE, FMT_JSON, NULL,
	    ctl_cmd_show_message },
	{ "show", "stats", ARG_NONE, IMSG_CTL_SHOW_STATS,
	    FMT_JSON | FMT_OPENMETRICS, NULL, ctl_cmd_show_stats },
	{ "schedule", NULL, ARG_ID, IMSG_CTL_SCHEDULE, FMT_JSON, "scheduled",
	    ctl_cmd_ids },
	{ "remove", NULL, ARG_ID, IMSG_CTL_REMOVE, FMT_JSON, "removed",
	    ctl_cmd_ids },
	{ "hold", NULL, ARG_ID, IMSG_CTL_HOLD, FMT_JSON, "held",
	    ctl_cmd_ids },
	{ "release", NULL, ARG_ID, IMSG_CTL_RELEASE, FMT_JSON, "released",
	    ctl_cmd_ids },
	{ "pause", NULL, ARG_WHAT, IMSG_CTL_PAUSE, FMT_JSON, "paused",
	    ctl_cmd_simple },
	{ "resume", NULL, ARG_WHAT, IMSG_CTL_RESUME, FMT_JSON, "resumed",
	    ctl_cmd_simple },
	{ "reload", NULL, ARG_NONE, IMSG_CTL_RELOAD, FMT_JSON,
	    "configuration reloaded", ctl_cmd_simple },
	{ "log", NULL, ARG_LEVEL, IMSG_CTL_LOG, FMT_JSON, "log level set to",
	    ctl_cmd_simple },
	{ "monitor", NULL, ARG_NONE, IMSG_CTL_SHOW_STATS, 0, NULL,
	    ctl_cmd_monitor },
};

static volatile sig_atomic_t	 ctl_interrupted;

/* ---------------------------------------------------------------- errors */

static void __attribute__((format(printf, 1, 2)))
ctl_err(const char *fmt, ...)
{
	va_list	 ap;

	fputs("posternctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
ctl_usage_line(void)
{
	fprintf(stderr, "usage: posternctl [-f file] [-D name=value] "
	    "[-s socket] command [argument ...]\n");
}

/* A usage error: one line saying what, the usage line, exit 2. */
static void __attribute__((noreturn, format(printf, 1, 2)))
ctl_usage_err(const char *fmt, ...)
{
	va_list	 ap;

	if (fmt != NULL) {
		fputs("posternctl: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	ctl_usage_line();
	exit(EX_USAGE);
}

/* Flush stdout; a failed write is a failed command. */
static int
ctl_flush_stdout(void)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (errno != EPIPE)
			ctl_err("writing the output: %s", strerror(errno));
		return EX_FAIL;
	}
	return EX_OK;
}

/* Write a built document to stdout. */
static int
ctl_output(const struct ctl_buf *b)
{
	if (b->failed) {
		ctl_err("reply too large to format");
		return EX_FAIL;
	}
	if (b->len > 0 && fwrite(b->data, 1, b->len, stdout) != b->len) {
		if (errno != EPIPE)
			ctl_err("writing the output: %s", strerror(errno));
		return EX_FAIL;
	}
	return EX_OK;
}

/* ---------------------------------------------------------------- talking */

/* Connect, or say why not in one line. */
static int
ctl_open(struct ctl_conn *c, const char *path)
{
	if (ctl_connect(c, path) == 0)
		return 0;
	if (errno == ENOENT || errno == ECONNREFUSED)
		ctl_err("cannot reach posternd at %s: %s (is posternd "
		    "running?)", path, strerror(errno));
	else
		ctl_err("cannot reach posternd at %s: %s", path,
		    strerror(errno));
	return -1;
}

/* What a frame callback returns besides 0. */
#define FRAME_BAD	-1	/* not a frame this request expects */
#define FRAME_FAILED	-2	/* a local failure, already reported */

/*
 * One request and its reply: each frame before END goes to frame(), which
 * returns 0, FRAME_BAD or FRAME_FAILED.  Returns 0 with *end filled, or -1
 * after printing why.
 */
static int
ctl_transact(const char *path, uint16_t type, const struct imsg_payload *p,
    int (*frame)(struct ctl_reply *, struct imsg *), struct ctl_reply *r,
    struct msg_ctl_end *end)
{
	struct ctl_conn	 c;
	struct imsg	 m;
	char		 err[CTL_ERRLEN];
	int		 rv = -1, bad, fr;

	if (ctl_open(&c, path) == -1)
		return -1;
	if (ctl_request(&c, type, p) == -1) {
		ctl_err("sending the request to posternd: %s",
		    strerror(errno));
		goto done;
	}
	for (;;) {
		if (ctl_next(&c, &m, err, sizeof(err)) == -1) {
			ctl_err("%s", err);
			goto done;
		}
		if (m.hdr.type == IMSG_CTL_END) {
			bad = proto_dec_ctl_end(&m, end) == -1;
			imsg_free(&m);
			if (bad)
				break;
			rv = 0;
			goto done;
		}
		fr = frame != NULL ? frame(r, &m) : FRAME_BAD;
		imsg_free(&m);
		if (fr == FRAME_FAILED)
			goto done;
		if (fr != 0)
			break;
	}
	ctl_err("malformed reply from the server");
 done:
	ctl_close(&c);
	return rv;
}

/* The daemon refused: its one-line reason. */
static int
ctl_refused(const struct msg_ctl_end *end)
{
	struct ctl_buf	 b;

	ctl_buf_init(&b);
	ctl_escape_text(&b, end->error[0] != '\0' ? end->error :
	    "operation failed");
	ctl_err("%s", b.failed ? "operation failed" : ctl_buf_str(&b));
	ctl_buf_free(&b);
	return EX_FAIL;
}

static void
ctl_reply_init(struct ctl_reply *r, const struct ctl_command *cmd,
    struct ctl_invocation *inv)
{
	memset(r, 0, sizeof(*r));
	r->cmd = cmd;
	r->inv = inv;
	r->now = time(NULL);
	ctl_buf_init(&r->json);
	ctl_buf_init(&r->headers);
}

static void
ctl_reply_free(struct ctl_reply *r)
{
	size_t	 i;

	for (i = 0; i < r->nrows; i++)
		ctl_row_free(&r->rows[i]);
	free(r->rows);
	free(r->stats);
	ctl_buf_free(&r->json);
	ctl_buf_free(&r->headers);
}

/* Keep one envelope: as a table row, or as JSON (kept or printed). */
static int
ctl_take_envelope(struct ctl_reply *r, const struct msg_ctl_envelope *e)
{
	struct ctl_row	*rows;

	if (r->count == 0)
		r->msgid = e->msgid;
	r->count++;
	if (r->count_only)
		return 0;
	if (r->inv->json) {
		if (r->stream)
			ctl_buf_reset(&r->json);
		ctl_buf_puts(&r->json, r->count > 1 ? ",\n  " :
		    r->stream ? "[\n  " : "\n  ");
		ctl_json_envelope(&r->json, e, r->now);
		if (r->json.failed) {
			ctl_err("reply too large to format");
			return FRAME_FAILED;
		}
		if (r->stream && ctl_output(&r->json) != EX_OK)
			return FRAME_FAILED;
		return 0;
	}
	rows = reallocarray(r->rows, r->nrows + 1, sizeof(*rows));
	if (rows == NULL) {
		ctl_err("out of memory");
		return FRAME_FAILED;
	}
	r->rows = rows;
	if (ctl_row_envelope(&r->rows[r->nrows], e, r->now) == -1) {
		ctl_err("out of memory");
		return FRAME_FAILED;
	}
	r->nrows++;
	return 0;
}

/* Terminal width when stdout is a terminal, else 0 (do not cut). */
static size_t
ctl_term_columns(void)
{
	struct winsize	 ws;

	if (!isatty(STDOUT_FILENO))
		return 0;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* The collected envelopes as an aligned table with a title line. */
static void
ctl_fmt_table(struct ctl_buf *b, const struct ctl_reply *r)
{
	struct ctl_row	 head;
	size_t		 width[CTL_NCOLS], maxcols, i;

	if (r->nrows == 0)
		return;
	if (ctl_row_header(&head) == -1) {
		b->failed = 1;
		return;
	}
	memset(width, 0, sizeof(width));
	ctl_row_widths(&head, width);
	for (i = 0; i < r->nrows; i++)
		ctl_row_widths(&r->rows[i], width);
	maxcols = ctl_term_columns();
	ctl_fmt_row(b, &head, width, maxcols);
	for (i = 0; i < r->nrows; i++)
		ctl_fmt_row(b, &r->rows[i], width, maxcols);
	ctl_row_free(&head);
}

/* ---------------------------------------------------------------- show */

/* show queue: ENVELOPE frames. */
static int
ctl_frame_queue(struct ctl_reply *r, struct imsg *m)
{
	struct msg_ctl_envelope	 e;

	if (m->hdr.type != IMSG_CTL_ENVELOPE ||
	    proto_dec_ctl_envelope(m, &e) == -1)
		return FRAME_BAD;
	return ctl_take_envelope(r, &e);
}

/* The number of queued envelopes, or -1 after printing why not. */
static int64_t
ctl_queue_size(struct ctl_invocation *inv)
{
	struct ctl_reply	 r;
	struct msg_ctl_end	 end;
	int64_t			 n = -1;

	ctl_reply_init(&r, NULL, inv);
	r.count_only = 1;
	if (ctl_transact(inv->socket, IMSG_CTL_SHOW_QUEUE, NULL,
	    ctl_frame_queue, &r, &end) == 0) {
		if (!end.ok)
			ctl_refused(&end);
		else
			n = (int64_t)r.count;
	}
	ctl_reply_free(&r);
	return n;
}

static int
ctl_cmd_show_queue(const struct ctl_command *cmd, struct ctl_invocation *inv)
{
	struct ctl_reply	 r;
	struct msg_ctl_end	 end;
	struct ctl_buf		 out;
	int			 rv;

	ctl_reply_init(&r, cmd, inv);
	/* A queue can be long: JSON goes out as it comes, the table must
	 * wait for its widths. */
	r.stream = 1;
	ctl_buf_init(&out);
	if (ctl_transact(inv->socket, cmd->type, NULL, ctl_frame_queue, &r,
	    &end) == -1)
		rv = EX_FAIL;
	else if (!end.ok)
		rv = ctl_refused(&end);
	else {
		if (inv->json)
			ctl_buf_puts(&out, r.count > 0 ? "\n]\n" : "[]\n");
		else
			ctl_fmt_table(&out, &r);
		rv = ctl_output(&out);
	}
	ctl_buf_free(&out);
	ctl_reply_free(&r);
	return rv;
}

/* show message: ENVELOPE and HEADERS frames. */
static int
ctl_frame_message(struct ctl_reply *r, struct imsg *m)
{
	struct msg_tls_bytes	 h;

	if (m->hdr.type == IMSG_CTL_HEADERS) {
		if (proto_dec_tls_bytes(m, &h) == -1)
			return FRAME_BAD;
		ctl_buf_add(&r->headers, (const char *)h.data, h.len);
		if (r->headers.failed) {
			ctl_err("reply too large to format");
			return FRAME_FAILED;
		}
		return 0;
	}
	return ctl_frame_queue(r, m);
}

static int
ctl_cmd_show_message(const struct ctl_command *cmd,
    struct ctl_invocation *inv)
{
	struct ctl_reply	 r;
	struct msg_ctl_end	 end;
	struct msg_ctl_id	 id;
	struct imsg_payload	 p;
	struct ctl_buf		 out;
	int			 rv;

	ctl_reply_init(&r, cmd, inv);
	ctl_buf_init(&out);
	imsg_payload_init(&p);
	id.id = inv->id;
	proto_enc_ctl_id(&p, &id);
	if (ctl_transact(inv->socket, cmd->type, &p, ctl_frame_message, &r,
	    &end) == -1)
		rv = EX_FAIL;
	else if (!end.ok)
		rv = ctl_refused(&end);
	else {
		if (inv->json) {
			ctl_buf_printf(&out, "{\"message_id\": \"%016llx\", "
			    "\"envelopes\": [", (unsigned long long)
			    (r.count > 0 ? r.msgid : inv->id));
			ctl_buf_add(&out, ctl_buf_str(&r.json), r.json.len);
			if (r.json.failed)
				out.failed = 1;
			ctl_buf_puts(&out, r.count > 0 ? "\n], \"headers\": " :
			    "], \"headers\": ");
			ctl_escape_json_bytes(&out,
			    (const uint8_t *)ctl_buf_str(&r.headers),
			    r.headers.len);
			ctl_buf_puts(&out, "}\n");
		} else {
			ctl_fmt_table(&out, &r);
			if (r.nrows > 0 && r.headers.len > 0)
				ctl_buf_puts(&out, "\n");
			ctl_fmt_headers(&out,
			    (const uint8_t *)ctl_buf_str(&r.headers),
			    r.headers.len);
		}
		rv = ctl_output(&out);
	}
	imsg_payload_free(&p);
	ctl_buf_free(&out);
	ctl_reply_free(&r);
	return rv;
}

/* show stats: STAT frames. */
static int
ctl_frame_stat(struct ctl_reply *r, struct imsg *m)
{
	struct msg_ctl_stat	*st;
	size_t			 ncap;

	if (m->hdr.type != IMSG_CTL_STAT)
		return FRAME_BAD;
	if (r->nstats == r->capstats) {
		if (r->capstats >= CTL_MAXSTATS) {
			ctl_err("too many statistics in the reply");
			return FRAME_FAILED;
		}
		ncap = r->capstats == 0 ? 32 : r->capstats * 2;
		st = reallocarray(r->stats, ncap, sizeof(*st));
		if (st == NULL) {
			ctl_err("out of memory");
			return FRAME_FAILED;
		}
		r->stats = st;
		r->capstats = ncap;
	}
	if (proto_dec_ctl_stat(m, &r->stats[r->nstats]) == -1)
		return FRAME_BAD;
	r->nstats++;
	return 0;
}

/* Fetch the statistics into r; 0, or -1 after printing why not. */
static int
ctl_fetch_stats(struct ctl_invocation *inv, struct ctl_reply *r)
{
	struct msg_ctl_end	 end;

	if (ctl_transact(inv->socket, IMSG_CTL_SHOW_STATS, NULL,
	    ctl_frame_stat, r, &end) == -1)
		return -1;
	if (!end.ok) {
		ctl_refused(&end);
		return -1;
	}
	return 0;
}

static int
ctl_cmd_show_stats(const struct ctl_command *cmd, struct ctl_invocation *inv)
{
	struct ctl_reply	 r;
	struct ctl_buf		 out;
	int			 rv = EX_FAIL;

	ctl_reply_init(&r, cmd, inv);
	ctl_buf_init(&out);
	if (ctl_fetch_stats(inv, &r) == 0) {
		if (inv->openmetrics)
			ctl_fmt_stats_openmetrics(&out, r.stats, r.nstats);
		else if (inv->json)
			ctl_fmt_stats_json(&out, r.stats, r.nstats);
		else
			ctl_fmt_stats_text(&out, r.stats, r.nstats);
		rv = ctl_output(&out);
	}
	ctl_buf_free(&out);
	ctl_reply_free(&r);
	return rv;
}

/* ---------------------------------------------------------------- act */

/* "remove all" at a terminal: ask first.  0 to go on, -1 not to. */
static int
ctl_confirm_remove_all(struct ctl_invocation *inv)
{
	char	 answer[64];
	int64_t	 n;

	if ((n = ctl_queue_size(inv)) == -1)
		return -1;
	fprintf(stderr, "Remove all %lld queued envelope%s? [y/N] ",
	    (long long)n, n == 1 ? "" : "s");
	fflush(stderr);
	if (fgets(answer, sizeof(answer), stdin) == NULL) {
		fputc('\n', stderr);
		ctl_err("nothing removed");
		return -1;
	}
	answer[strcspn(answer, "\r\n")] = '\0';
	if (strcasecmp(answer, "y") != 0 && strcasecmp(answer, "yes") != 0) {
		ctl_err("nothing removed");
		return -1;
	}
	return 0;
}

/* schedule, remove, hold, release: "N envelopes VERB". */
static int
ctl_cmd_ids(const struct ctl_command *cmd, struct ctl_invocation *inv)
{
	struct msg_ctl_end	 end;
	struct msg_ctl_id	 id;
	struct imsg_payload	 p;
	int			 rv;

	if (cmd->type == IMSG_CTL_REMOVE && inv->id == 0 &&
	    isatty(STDIN_FILENO) && ctl_confirm_remove_all(inv) == -1)
		return EX_FAIL;
	imsg_payload_init(&p);
	id.id = inv->id;
	proto_enc_ctl_id(&p, &id);
	if (ctl_transact(inv->socket, cmd->type, &p, NULL, NULL, &end) == -1)
		rv = EX_FAIL;
	else if (!end.ok)
		rv = ctl_refused(&end);
	else {
		if (inv->json)
			printf("{\"count\": %llu}\n",
			    (unsigned long long)end.count);
		else
			printf("%llu envelope%s %s\n",
			    (unsigned long long)end.count,
			    end.count == 1 ? "" : "s", cmd->done);
		rv = EX_OK;
	}
	imsg_payload_free(&p);
	return rv;
}

/* pause, resume, reload, log: a request and an acknowledgement. */
static int
ctl_cmd_simple(const struct ctl_command *cmd, struct ctl_invocation *inv)
{
	struct msg_ctl_end	 end;
	struct msg_ctl_what	 what;
	struct imsg_payload	 p;
	int			 rv;

	imsg_payload_init(&p);
	if (cmd->arg == ARG_WHAT || cmd->arg == ARG_LEVEL) {
		what.what = inv->what;
		proto_enc_ctl_what(&p, &what);
	}
	if (ctl_transact(inv->socket, cmd->type, cmd->arg == ARG_NONE ? NULL :
	    &p, NULL, NULL, &end) == -1)
		rv = EX_FAIL;
	else if (!end.ok)
		rv = ctl_refused(&end);
	else {
		if (inv->json)
			printf("{\"ok\": true}\n");
		else if (cmd->arg == ARG_WHAT)
			printf("%s %s\n", inv->whatname, cmd->done);
		else if (cmd->arg == ARG_LEVEL)
			printf("%s %s\n", cmd->done, inv->whatname);
		else
			printf("%s\n", cmd->done);
		rv = EX_OK;
	}
	imsg_payload_free(&p);
	return rv;
}

/* ---------------------------------------------------------------- monitor */

static void
ctl_on_sigint(int sig)
{
	ctl_interrupted = 1;
}

static double
ctl_monotonic(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One stats sample; 0, or -1 after printing why not. */
static int
ctl_sample(struct ctl_invocation *inv, struct ctl_sample *s)
{
	struct ctl_reply	 r;
	int			 rv = -1;

	ctl_reply_init(&r, NULL, inv);
	if (ctl_fetch_stats(inv, &r) == 0) {
		ctl_sample_from_stats(s, r.stats, r.nstats, ctl_monotonic());
		rv = 0;
	}
	ctl_reply_free(&r);
	return rv;
}

/* Until SIGINT: one line of counters a second, titles every 20 lines. */
static int
ctl_cmd_monitor(const struct ctl_command *cmd, struct ctl_invocation *inv)
{
	struct sigaction	 sa;
	struct ctl_sample	 prev, cur;
	struct ctl_buf		 out;
	struct timespec		 ts;
	unsigned int		 lines = 0;
	int			 sessions, rv = EX_OK;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ctl_on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (ctl_sample(inv, &prev) == -1)
		return EX_FAIL;
	sessions = prev.sessions >= 0;
	ctl_buf_init(&out);
	while (!ctl_interrupted) {
		ts.tv_sec = 1;
		ts.tv_nsec = 0;
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR &&
		    !ctl_interrupted)
			;
		if (ctl_interrupted)
			break;
		if (ctl_sample(inv, &cur) == -1) {
			rv = EX_FAIL;
			break;
		}
		ctl_buf_reset(&out);
		if (lines++ % CTL_MONITOR_REPEAT == 0)
			ctl_fmt_monitor_header(&out, sessions);
		ctl_fmt_monitor_line(&out, time(NULL), &prev, &cur, sessions);
		if (ctl_output(&out) != EX_OK || ctl_flush_stdout() != EX_OK) {
			rv = EX_FAIL;
			break;
		}
		prev = cur;
	}
	ctl_buf_free(&out);
	return rv;
}

/* ---------------------------------------------------------------- setup */

/* Table loader for posternctl: tables are the daemon's business (and an
 * unprivileged user may not read them), so every table is empty. */
static int
ctl_no_table(void *arg, const char *path, char **text, size_t *len,
    char *err, size_t errsz)
{
	if ((*text = strdup("")) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	*len = 0;
	return 0;
}

/*
 * The control socket: -s, else the configuration's "control" (a missing
 * default configuration means the default socket), else the default.
 */
static int
ctl_socket_path(char *dst, size_t dstsz, const char *sockopt,
    const char *conffile, int conf_given, const struct conf_macro *macros,
    size_t nmacros)
{
	struct postern_conf	*conf;
	char			 err[CONF_ERRLEN];
	char			*text;
	size_t			 len;

	if (sockopt != NULL) {
		if (strlcpy(dst, sockopt, dstsz) >= dstsz) {
			ctl_err("socket path too long: %s", sockopt);
			return -1;
		}
		return 0;
	}
	if (config_load_file(NULL, conffile, &text, &len, err,
	    sizeof(err)) == -1) {
		if (conf_given) {
			ctl_err("%s", err);
			return -1;
		}
		/* No readable default configuration: the default socket. */
		strlcpy(dst, CONF_DEFAULT_CONTROL, dstsz);
		return 0;
	}
	conf = config_parse(conffile, text, len, macros, nmacros,
	    ctl_no_table, NULL, err, sizeof(err));
	free(text);
	if (conf == NULL) {
		ctl_err("%s", err);
		return -1;
	}
	if (strlcpy(dst, conf->control, dstsz) >= dstsz) {
		config_free(conf);
		ctl_err("control socket path too long");
		return -1;
	}
	config_free(conf);
	return 0;
}

/* Parse the words after the options into cmd and inv, or exit 2. */
static const struct ctl_command *
ctl_parse_command(int argc, char **argv, struct ctl_invocation *inv)
{
	const struct ctl_command	*cmd = NULL;
	const char			*words[8];
	size_t				 nwords = 0, i, used;
	int				 a;

	for (a = 0; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0)
			inv->json = 1;
		else if (strcmp(argv[a], "--openmetrics") == 0)
			inv->openmetrics = 1;
		else if (strncmp(argv[a], "--", 2) == 0)
			ctl_usage_err("unknown option '%s'", argv[a]);
		else if (nwords == sizeof(words) / sizeof(words[0]))
			ctl_usage_err("too many arguments");
		else
			words[nwords++] = argv[a];
	}
	if (nwords == 0)
		ctl_usage_err("missing command");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].verb, words[0]) != 0)
			continue;
		if (commands[i].object == NULL ||
		    (nwords > 1 && strcmp(commands[i].object, words[1]) == 0)) {
			cmd = &commands[i];
			break;
		}
	}
	if (cmd == NULL) {
		if (strcmp(words[0], "show") != 0)
			ctl_usage_err("unknown command '%s'", words[0]);
		if (nwords == 1)
			ctl_usage_err("show: missing argument: queue, "
			    "message ID or stats");
		ctl_usage_err("unknown command 'show %s'", words[1]);
	}
	used = cmd->object != NULL ? 2 : 1;

	switch (cmd->arg) {
	case ARG_NONE:
		break;
	case ARG_ID:
	case ARG_MSGID:
		if (nwords <= used)
			ctl_usage_err("%s: missing argument: %s", words[0],
			    cmd->arg == ARG_ID ? "an id or 'all'" : "an id");
		if (ctl_parse_id(words[used], &inv->id) == -1 ||
		    (cmd->arg == ARG_MSGID && inv->id == 0))
			ctl_usage_err("invalid id '%s': expected 16 hex "
			    "digits%s", words[used],
			    cmd->arg == ARG_ID ? " or 'all'" : "");
		used++;
		break;
	case ARG_WHAT:
		if (nwords <= used)
			ctl_usage_err("%s: missing argument: smtp or delivery",
			    words[0]);
		if (strcmp(words[used], "smtp") == 0)
			inv->what = CTL_WHAT_SMTP;
		else if (strcmp(words[used], "delivery") == 0)
			inv->what = CTL_WHAT_DELIVERY;
		else
			ctl_usage_err("%s: expected smtp or delivery, not '%s'",
			    words[0], words[used]);
		inv->whatname = words[used++];
		break;
	case ARG_LEVEL:
		if (nwords <= used)
			ctl_usage_err("log: missing argument: verbose or "
			    "brief");
		if (strcmp(words[used], "verbose") == 0)
			inv->what = 1;
		else if (strcmp(words[used], "brief") == 0)
			inv->what = 0;
		else
			ctl_usage_err("log: expected verbose or brief, not "
			    "'%s'", words[used]);
		inv->whatname = words[used++];
		break;
	}
	if (nwords > used)
		ctl_usage_err("too many arguments: '%s'", words[used]);
	if (inv->json && inv->openmetrics)
		ctl_usage_err("--json and --openmetrics exclude each other");
	if ((inv->json && !(cmd->formats & FMT_JSON)) ||
	    (inv->openmetrics && !(cmd->formats & FMT_OPENMETRICS)))
		ctl_usage_err("%s: not supported by '%s%s%s'",
		    inv->json ? "--json" : "--openmetrics", cmd->verb,
		    cmd->object != NULL ? " " : "",
		    cmd->object != NULL ? cmd->object : "");
	return cmd;
}

/*
 * mailq, sendmail -bp: "show queue" with the control socket of conffile
 * (NULL: the default configuration, which may be missing).
 */
static int
ctl_mailq(const char *conffile)
{
	static char			 sockpath[PATH_MAX];
	static char			*mailq_argv[] = { "show", "queue",
					    NULL };
	const struct ctl_command	*cmd;
	struct ctl_invocation		 inv;
	int				 rv;

	memset(&inv, 0, sizeof(inv));
	cmd = ctl_parse_command(2, mailq_argv, &inv);
	if (ctl_socket_path(sockpath, sizeof(sockpath), NULL,
	    conffile != NULL ? conffile : CTL_DEFAULT_CONF, conffile != NULL,
	    NULL, 0) == -1)
		return EX_FAIL;
	inv.socket = sockpath;
	rv = cmd->run(cmd, &inv);
	if (ctl_flush_stdout() != EX_OK)
		rv = EX_FAIL;
	return rv;
}

int
main(int argc, char *argv[])
{
	static struct conf_macro	 macros[CTL_MAXMACROS];
	static char			 sockpath[PATH_MAX];
	const struct ctl_command	*cmd;
	struct ctl_invocation		 inv;
	const char			*name, *conffile = CTL_DEFAULT_CONF;
	const char			*sockopt = NULL;
	size_t				 nmacros = 0;
	int				 ch, conf_given = 0, rv;

	ctl_drop_init();
	memset(&inv, 0, sizeof(inv));
	name = argc > 0 && argv[0] != NULL ? argv[0] : "posternctl";
	if (strrchr(name, '/') != NULL)
		name = strrchr(name, '/') + 1;

	if (strcmp(name, "sendmail") == 0 || strcmp(name, "newaliases") == 0)
		return ctl_sendmail_main(name, argc, argv, ctl_mailq);
	if (strcmp(name, "mailq") == 0) {
		if (argc > 1) {
			fprintf(stderr, "usage: mailq\n");
			return EX_USAGE;
		}
		/* As sendmail -bp: $POSTERN_CONF names the configuration. */
		conffile = getenv("POSTERN_CONF");
		if (conffile == NULL || *conffile == '\0')
			conffile = NULL;
		return ctl_mailq(conffile);
	} else {
		/* "+": stop at the command, whose words may look like
		 * options ("--json"). */
		while ((ch = getopt(argc, argv, "+D:f:s:")) != -1) {
			switch (ch) {
			case 'D': {
				char	*eq = strchr(optarg, '=');

				if (eq == NULL || eq == optarg)
					ctl_usage_err("bad macro '%s': "
					    "expected name=value", optarg);
				if (nmacros == CTL_MAXMACROS)
					ctl_usage_err("too many macros");
				*eq = '\0';
				macros[nmacros].name = optarg;
				macros[nmacros].value = eq + 1;
				nmacros++;
				break;
			}
			case 'f':
				conffile = optarg;
				conf_given = 1;
				break;
			case 's':
				sockopt = optarg;
				break;
			default:
				ctl_usage_err(NULL);
			}
		}
		cmd = ctl_parse_command(argc - optind, argv + optind, &inv);
	}

	if (ctl_socket_path(sockpath, sizeof(sockpath), sockopt, conffile,
	    conf_given, macros, nmacros) == -1)
		return EX_FAIL;
	inv.socket = sockpath;

	rv = cmd->run(cmd, &inv);
	if (ctl_flush_stdout() != EX_OK)
		rv = EX_FAIL;
	return rv;
}
