/*
 * ctl_sendmail.c: posternctl's sendmail(8) face ("sendmail", "newaliases"
 * and "sendmail -bp"): read a message from stdin, fix its header, hand it
 * to posternd in plain SMTP over the local submission socket; or relay an
 * SMTP session (-bs), or ask for a reload (-bi).
 * When posternd is not running, the message goes to the offline drop
 * directory of the spool instead (ctl_drop.c).
 * SECURITY: runs as the invoking user; the setgid _postern_drop group of
 * an installed posternctl is dropped in main and only ctl_drop_write uses
 * it.  The daemon sees the caller's uid (SO_PEERCRED, or the drop file's
 * owner) and decides.  The message and the arguments are untrusted:
 * addresses are checked before they reach a command line or a drop file,
 * server text is escaped before it reaches a terminal.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "drop.h"

#define SM_DEFAULT_CONF		"/etc/postern/postern.conf"
#define SM_TIMEOUT_MS		(300 * 1000)	/* RFC 5321 4.5.3.2 */
#define SM_REPLYMAX		4096	/* bytes of one reply line */
#define SM_REPLYLINES		100	/* lines of one reply */
#define SM_ERRLEN		1024
#define SM_IOBUF		16384

/* One SMTP connection to posternd. */
struct sm_conn {
	int	 fd;
	int	 verbose;
	char	 in[SM_REPLYMAX * 2];
	size_t	 inlen;
	int	 code;			/* last reply */
	char	 reply[SM_REPLYMAX + 1];/* its last line, escaped */
};

static const char	*sm_face = "sendmail";

/* ---------------------------------------------------------------- errors */

static void __attribute__((format(printf, 1, 2)))
sm_err(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "%s: ", sm_face);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Escape len bytes for a terminal into dst (cut, for messages only). */
static void
sm_escape(char *dst, size_t dstsz, const char *s, size_t len)
{
	struct ctl_buf	 b;
	char		*t;

	if ((t = strndup(s, len)) == NULL) {
		strlcpy(dst, "?", dstsz);
		return;
	}
	ctl_buf_init(&b);
	ctl_escape_text(&b, t);
	strlcpy(dst, b.failed ? "?" : ctl_buf_str(&b), dstsz);
	ctl_buf_free(&b);
	free(t);
}

/* ---------------------------------------------------------------- options */

int
ctl_sendmail_parse(const char *face, int argc, char *argv[],
    struct ctl_sendmail_opts *o, char *err, size_t errsz)
{
	int	 ch;

	memset(o, 0, sizeof(*o));
	o->mode = CTL_SM_DELIVER;
	if (strcmp(face, "newaliases") == 0) {
		o->mode = CTL_SM_ALIASES;
		if (argc > 1) {
			snprintf(err, errsz, "unexpected argument '%s'",
			    argv[1]);
			return -1;
		}
		return 0;
	}
	optind = 0;	/* glibc: a full reset */
	opterr = 0;
	/* "+": the first recipient ends the options, as in BSD. */
	while ((ch = getopt(argc, argv,
	    "+B:b:C:F:f:iL:N:O:o:R:r:tUV:vX:")) != -1) {
		switch (ch) {
		case 'b':
			if (strcmp(optarg, "m") == 0)
				o->mode = CTL_SM_DELIVER;
			else if (strcmp(optarg, "s") == 0)
				o->mode = CTL_SM_SMTP;
			else if (strcmp(optarg, "p") == 0)
				o->mode = CTL_SM_QUEUE;
			else if (strcmp(optarg, "i") == 0)
				o->mode = CTL_SM_ALIASES;
			else {
				snprintf(err, errsz, "-b%s: mode not "
				    "supported", optarg);
				return -1;
			}
			break;
		case 'C':
			o->conffile = optarg;
			break;
		case 'F':
			o->fullname = optarg;
			break;
		case 'f':
		case 'r':
			if (o->sender != NULL) {
				snprintf(err, errsz, "more than one sender "
				    "(-f/-r)");
				return -1;
			}
			o->sender = optarg;
			break;
		case 'i':
			o->ignore_dots = 1;
			break;
		case 'o':
			if (strcmp(optarg, "i") == 0)
				o->ignore_dots = 1;
			else if (strcmp(optarg, "di") != 0 &&
			    strcmp(optarg, "db") != 0 &&
			    strcmp(optarg, "dq") != 0 &&
			    strcmp(optarg, "em") != 0 &&
			    strcmp(optarg, "ep") != 0 &&
			    strcmp(optarg, "ee") != 0 &&
			    strcmp(optarg, "eq") != 0 &&
			    strcmp(optarg, "ew") != 0 &&
			    strcmp(optarg, "m") != 0) {
				snprintf(err, errsz, "-o%s: option not "
				    "supported", optarg);
				return -1;
			}
			break;
		case 't':
			o->from_headers = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'B':	/* body type: the server sees 8-bit anyway */
		case 'L':	/* syslog tag */
		case 'N':	/* DSN notify */
		case 'O':	/* long options */
		case 'R':	/* DSN return */
		case 'V':	/* DSN envid */
		case 'X':	/* traffic log */
		case 'U':	/* initial submission */
			break;
		default:
			if (optopt != 0 && strchr("BbCFfLNOoRrVX", optopt) !=
			    NULL)
				snprintf(err, errsz, "option -%c needs an "
				    "argument", optopt);
			else if (optopt != 0)
				snprintf(err, errsz, "unknown option -%c",
				    optopt);
			else
				snprintf(err, errsz, "unknown option %s",
				    argv[optind - 1]);
			return -1;
		}
	}
	o->rcpts = argv + optind;
	o->nrcpts = argc - optind;
	if (o->mode != CTL_SM_DELIVER && o->nrcpts > 0) {
		snprintf(err, errsz, "unexpected argument '%s'", o->rcpts[0]);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- config */

/* Tables are the daemon's business (and may be unreadable): all empty. */
static int
sm_no_table(void *arg, const char *path, char **text, size_t *len,
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
 * The configuration: -C, else $POSTERN_CONF, else the default, which may
 * be missing or unreadable (*conf NULL then).  0, or -1 after saying why.
 */
static int
sm_config(const struct ctl_sendmail_opts *o, struct postern_conf **conf)
{
	const char	*file = o->conffile;
	char		 err[CONF_ERRLEN];
	char		*text;
	size_t		 len;

	*conf = NULL;
	if (file == NULL && (file = getenv("POSTERN_CONF")) != NULL &&
	    *file == '\0')
		file = NULL;
	if (config_load_file(NULL, file != NULL ? file : SM_DEFAULT_CONF,
	    &text, &len, err, sizeof(err)) == -1) {
		if (file == NULL)
			return 0;
		sm_err("%s", err);
		return -1;
	}
	if (file == NULL)
		file = SM_DEFAULT_CONF;
	*conf = config_parse(file, text, len, NULL, 0, sm_no_table, NULL,
	    err, sizeof(err));
	free(text);
	if (*conf == NULL) {
		sm_err("%s", err);
		return -1;
	}
	return 0;
}

/*
 * The submission socket: $POSTERN_SOCKET, else the first "listen on
 * socket" of the configuration, else the default.
 */
static int
sm_socket_path(const struct ctl_sendmail_opts *o, char *dst, size_t dstsz)
{
	struct postern_conf	*conf;
	struct listen_conf	*l;
	const char		*env, *path = CONF_DEFAULT_SOCKET;
	int			 rv = 0;

	if ((env = getenv("POSTERN_SOCKET")) != NULL && *env != '\0')
		path = env;
	else {
		if (sm_config(o, &conf) == -1)
			return -1;
		if (conf != NULL) {
			TAILQ_FOREACH(l, &conf->listeners, entry)
				if (l->is_socket) {
					if (strlcpy(dst, l->path, dstsz) >=
					    dstsz)
						rv = -1;
					config_free(conf);
					goto done;
				}
			config_free(conf);
		}
	}
	if (strlcpy(dst, path, dstsz) >= dstsz)
		rv = -1;
 done:
	if (rv == -1)
		sm_err("socket path too long");
	return rv;
}

/* ---------------------------------------------------------------- SMTP */

/* Connect to the submission socket; -1 with errno. */
static int
sm_connect(struct sm_conn *c, const char *path, int verbose)
{
	int	 fd;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->verbose = verbose;
	if ((fd = ctl_unix_connect(path)) == -1)
		return -1;
	c->fd = fd;
	return 0;
}

/* Wait until fd is ready for events; 0, or -1 (ETIMEDOUT on timeout). */
static int
sm_wait(int fd, short events)
{
	struct pollfd	 pfd;
	int		 r;

	pfd.fd = fd;
	pfd.events = events;
	for (;;) {
		pfd.revents = 0;
		r = poll(&pfd, 1, SM_TIMEOUT_MS);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		return 0;
	}
}

/* Write all of buf; 0, or -1 with errno. */
static int
sm_write(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		if (sm_wait(fd, POLLOUT) == -1)
			return -1;
		n = write(fd, buf, len);	/* SIGPIPE is ignored */
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n == -1)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send one command line (CRLF added); 0, or -1 after saying why. */
static int
sm_command(struct sm_conn *c, const char *line)
{
	char	 buf[SM_REPLYMAX];
	int	 n;

	n = snprintf(buf, sizeof(buf), "%s\r\n", line);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		sm_err("command too long");
		return -1;
	}
	if (c->verbose)
		fprintf(stderr, ">>> %s\n", line);
	if (sm_write(c->fd, buf, (size_t)n) == -1) {
		sm_err("lost connection to posternd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Read one reply: c->code and its last line in c->reply.  0, or -1
 * after saying why (closed, timeout, not SMTP).
 */
static int
sm_reply(struct sm_conn *c)
{
	char	*lf;
	size_t	 llen, nlines = 0;
	ssize_t	 n;
	int	 code, last;

	for (;;) {
		lf = memchr(c->in, '\n', c->inlen);
		if (lf == NULL) {
			if (c->inlen >= SM_REPLYMAX) {
				sm_err("reply line too long from posternd");
				return -1;
			}
			if (sm_wait(c->fd, POLLIN) == -1) {
				sm_err("no reply from posternd: %s",
				    strerror(errno));
				return -1;
			}
			n = read(c->fd, c->in + c->inlen,
			    sizeof(c->in) - c->inlen);
			if (n == -1 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				sm_err("lost connection to posternd: %s",
				    n == 0 ? "closed" : strerror(errno));
				return -1;
			}
			c->inlen += (size_t)n;
			continue;
		}
		llen = (size_t)(lf - c->in);
		if (llen > 0 && c->in[llen - 1] == '\r')
			llen--;
		sm_escape(c->reply, sizeof(c->reply), c->in, llen);
		if (c->verbose)
			fprintf(stderr, "<<< %s\n", c->reply);
		if (ctl_mail_reply_line(c->in, llen, &code, &last) == -1 ||
		    (nlines > 0 && code != c->code)) {
			sm_err("malformed reply from posternd: %s", c->reply);
			return -1;
		}
		c->code = code;
		c->inlen -= (size_t)(lf + 1 - c->in);
		memmove(c->in, lf + 1, c->inlen);
		if (last)
			return 0;
		if (++nlines >= SM_REPLYLINES) {
			sm_err("reply too long from posternd");
			return -1;
		}
	}
}

/* A command and its reply; the reply code, or -1 after saying why. */
static int
sm_transact(struct sm_conn *c, const char *line)
{
	if (sm_command(c, line) == -1 || sm_reply(c) == -1)
		return -1;
	return c->code;
}

static void
sm_quit(struct sm_conn *c)
{
	if (c->fd == -1)
		return;
	if (sm_command(c, "QUIT") == 0)
		(void)sm_reply(c);
	close(c->fd);
	c->fd = -1;
}

/* ---------------------------------------------------------------- input */

/*
 * Read the message from stdin: all of it, or with the "." rule up to a
 * lone "." line.  0, or an exit status after saying why.
 */
static int
sm_read_message(const struct ctl_sendmail_opts *o, struct ctl_buf *msg)
{
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	int	 rv = EX_OK;

	while ((n = getline(&line, &cap, stdin)) != -1) {
		if (!o->ignore_dots && ctl_mail_is_end_line(line, (size_t)n))
			break;
		if ((size_t)n > CTL_MAIL_MAXSIZE - msg->len) {
			sm_err("message too large (more than %d bytes)",
			    CTL_MAIL_MAXSIZE);
			rv = EX_DATAERR;
			break;
		}
		ctl_buf_add(msg, line, (size_t)n);
		if (msg->failed) {
			sm_err("out of memory");
			rv = EX_OSERR;
			break;
		}
	}
	if (rv == EX_OK && ferror(stdin)) {
		sm_err("reading the message: %s", strerror(errno));
		rv = EX_IOERR;
	}
	free(line);
	return rv;
}

/* The host name for Message-ID: gethostname if it looks like one. */
static void
sm_hostname(char *dst, size_t dstsz)
{
	char	 h[HOST_NAME_MAX + 1];
	size_t	 i;

	if (gethostname(h, sizeof(h)) == -1 || h[0] == '\0')
		goto local;
	h[sizeof(h) - 1] = '\0';
	for (i = 0; h[i] != '\0'; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') ||
		    (h[i] >= 'A' && h[i] <= 'Z') ||
		    (h[i] >= '0' && h[i] <= '9') || h[i] == '-' ||
		    h[i] == '.'))
			goto local;
	if (strlcpy(dst, h, dstsz) < dstsz)
		return;
 local:
	strlcpy(dst, "localhost", dstsz);
}

/* The header fields the message lacks, CRLF-terminated. */
static int
sm_added_headers(const struct ctl_sendmail_opts *o, const char *user,
    const struct ctl_mail_scan *sc, struct ctl_buf *added)
{
	char		 date[64], host[HOST_NAME_MAX + 1];
	unsigned char	 rnd[16];
	size_t		 i;

	if (!sc->has_date) {
		if (ctl_mail_date(date, sizeof(date), time(NULL)) == -1) {
			sm_err("cannot format the date");
			return EX_SOFTWARE;
		}
		ctl_buf_printf(added, "Date: %s\r\n", date);
	}
	if (!sc->has_msgid) {
		arc4random_buf(rnd, sizeof(rnd));
		sm_hostname(host, sizeof(host));
		ctl_buf_puts(added, "Message-ID: <");
		for (i = 0; i < sizeof(rnd); i++)
			ctl_buf_printf(added, "%02x", rnd[i]);
		ctl_buf_printf(added, "@%s>\r\n", host);
	}
	if (!sc->has_from && ctl_mail_from_header(added, o->fullname,
	    user) == -1) {
		sm_err("cannot make a From: header from the full name or "
		    "login name");
		return EX_DATAERR;
	}
	if (added->failed) {
		sm_err("out of memory");
		return EX_OSERR;
	}
	return EX_OK;
}

/* ---------------------------------------------------------------- modes */

/* Print a refusal as "sendmail: what: reply". */
static void
sm_refused(struct sm_conn *c, const char *what)
{
	char	 w[CTL_MAIL_ADDRMAX * 4 + 32];

	sm_escape(w, sizeof(w), what, strlen(what));
	sm_err("%s: %s", w, c->reply);
}

/* The spool: $POSTERN_SPOOL, else the configuration's, else the default. */
static int
sm_spool_path(const struct ctl_sendmail_opts *o, char *dst, size_t dstsz)
{
	struct postern_conf	*conf;
	const char		*env;
	size_t			 n;

	if ((env = getenv("POSTERN_SPOOL")) != NULL && *env != '\0')
		n = strlcpy(dst, env, dstsz);
	else {
		if (sm_config(o, &conf) == -1)
			return -1;
		n = strlcpy(dst, conf != NULL ? conf->spool :
		    CONF_DEFAULT_SPOOL, dstsz);
		if (conf != NULL)
			config_free(conf);
	}
	if (n >= dstsz) {
		sm_err("spool path too long");
		return -1;
	}
	return 0;
}

/*
 * posternd is not running: keep the message in SPOOL/offline for queue
 * to import when it starts.  EX_OK, or EX_TEMPFAIL after saying why.
 */
static int
sm_offline(const struct ctl_sendmail_opts *o, const char *sockpath,
    int connerr, const char *sender, const struct ctl_mail_rcpts *r,
    const struct ctl_buf *wire)
{
	struct ctl_buf	 body, file;
	char		 spool[PATH_MAX], dir[PATH_MAX], name[32];
	char		 err[SM_ERRLEN], w[PATH_MAX * 4 + 1];
	int		 rv = EX_TEMPFAIL, n;

	ctl_buf_init(&body);
	ctl_buf_init(&file);
	if (sm_spool_path(o, spool, sizeof(spool)) == -1) {
		strlcpy(err, "no usable spool path", sizeof(err));
		goto fail;
	}
	n = snprintf(dir, sizeof(dir), "%s/%s", spool, DROP_DIR);
	if (n < 0 || (size_t)n >= sizeof(dir)) {
		strlcpy(err, "spool path too long", sizeof(err));
		goto fail;
	}
	ctl_drop_unstuff(&body, ctl_buf_str(wire), wire->len);
	if (body.failed) {
		strlcpy(err, "out of memory", sizeof(err));
		goto fail;
	}
	if (ctl_drop_format(&file, sender, r, ctl_buf_str(&body), body.len,
	    err, sizeof(err)) == -1)
		goto fail;
	if (ctl_drop_write(dir, ctl_buf_str(&file), file.len, name,
	    sizeof(name), err, sizeof(err)) == -1)
		goto fail;
	if (o->verbose)
		sm_err("posternd is not running: message queued offline as %s",
		    name);
	rv = EX_OK;
	goto done;
 fail:
	sm_escape(w, sizeof(w), sockpath, strlen(sockpath));
	sm_err("cannot reach posternd at %s: %s (message not sent)", w,
	    strerror(connerr));
	sm_escape(w, sizeof(w), err, strlen(err));
	sm_err("cannot queue the message offline: %s", w);
 done:
	ctl_buf_free(&body);
	ctl_buf_free(&file);
	return rv;
}

/* The SMTP dialogue for one message; a sysexits status. */
static int
sm_submit(const struct ctl_sendmail_opts *o, const char *sockpath,
    const char *sender, const struct ctl_mail_rcpts *r,
    const struct ctl_buf *wire)
{
	struct sm_conn	 c;
	char		 cmd[CTL_MAIL_ADDRMAX + 32];
	char		 what[CTL_MAIL_ADDRMAX + 32];
	size_t		 i, accepted = 0;
	int		 code, rv = EX_OK, tempfail = 0, permfail = 0;

	if (sm_connect(&c, sockpath, o->verbose) == -1)
		return sm_offline(o, sockpath, errno, sender, r, wire);
	if (sm_reply(&c) == -1) {
		rv = EX_TEMPFAIL;
		goto done;
	}
	if (c.code != 220) {
		sm_refused(&c, "greeting");
		rv = c.code / 100 == 4 ? EX_TEMPFAIL : EX_UNAVAILABLE;
		goto done;
	}
	if ((code = sm_transact(&c, "EHLO localhost")) == -1) {
		rv = EX_TEMPFAIL;
		goto done;
	}
	if (code / 100 == 5 &&
	    (code = sm_transact(&c, "HELO localhost")) == -1) {
		rv = EX_TEMPFAIL;
		goto done;
	}
	if (code / 100 != 2) {
		sm_refused(&c, "EHLO");
		rv = code / 100 == 4 ? EX_TEMPFAIL : EX_UNAVAILABLE;
		goto done;
	}
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", sender);
	if ((code = sm_transact(&c, cmd)) == -1) {
		rv = EX_TEMPFAIL;
		goto done;
	}
	if (code / 100 != 2) {
		snprintf(what, sizeof(what), "sender <%s>", sender);
		sm_refused(&c, what);
		rv = code / 100 == 4 ? EX_TEMPFAIL : EX_NOPERM;
		goto done;
	}
	for (i = 0; i < r->n; i++) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", r->addr[i]);
		if ((code = sm_transact(&c, cmd)) == -1) {
			rv = EX_TEMPFAIL;
			goto done;
		}
		if (code / 100 == 2) {
			accepted++;
			continue;
		}
		sm_refused(&c, r->addr[i]);
		if (code / 100 == 4)
			tempfail = 1;
		else
			permfail = 1;
	}
	if (accepted == 0) {
		rv = tempfail ? EX_TEMPFAIL : EX_NOUSER;
		goto done;
	}
	if ((code = sm_transact(&c, "DATA")) == -1) {
		rv = EX_TEMPFAIL;
		goto done;
	}
	if (code != 354) {
		sm_refused(&c, "DATA");
		rv = code / 100 == 4 ? EX_TEMPFAIL : EX_DATAERR;
		goto done;
	}
	if (o->verbose)
		fprintf(stderr, ">>> (%zu bytes of message)\n", wire->len);
	if (sm_write(c.fd, ctl_buf_str(wire), wire->len) == -1) {
		sm_err("lost connection to posternd: %s (message not sent)",
		    strerror(errno));
		rv = EX_TEMPFAIL;
		goto done;
	}
	if ((code = sm_transact(&c, ".")) == -1) {
		rv = EX_TEMPFAIL;
		goto done;
	}
	if (code / 100 != 2) {
		sm_refused(&c, "message");
		rv = code / 100 == 4 ? EX_TEMPFAIL : EX_DATAERR;
		goto done;
	}
	/* Sent to the accepted recipients; the others were reported. */
	if (tempfail)
		rv = EX_TEMPFAIL;
	else if (permfail)
		rv = EX_NOUSER;
 done:
	sm_quit(&c);
	return rv;
}

/* sendmail [-t] [rcpt ...] < message */
static int
sm_deliver(const struct ctl_sendmail_opts *o)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_mail_scan	 sc;
	struct ctl_buf		 msg, added, wire;
	struct passwd		*pw;
	char			 sockpath[PATH_MAX], err[SM_ERRLEN];
	char			 user[256];
	char			 w[CTL_MAIL_ADDRMAX * 4 + 8];
	const char		*sender;
	int			 i, rv;

	ctl_mail_rcpts_init(&r);
	ctl_buf_init(&msg);
	ctl_buf_init(&added);
	ctl_buf_init(&wire);

	if ((pw = getpwuid(getuid())) == NULL) {
		sm_err("unknown user id %lu", (unsigned long)getuid());
		rv = EX_NOUSER;
		goto done;
	}
	if (strlcpy(user, pw->pw_name, sizeof(user)) >= sizeof(user) ||
	    user[0] == '\0' || !ctl_mail_addr_valid(user, strlen(user))) {
		sm_err("unusable login name");
		rv = EX_NOUSER;
		goto done;
	}
	sender = o->sender != NULL ? o->sender : user;
	if (!ctl_mail_addr_valid(sender, strlen(sender))) {
		sm_escape(w, sizeof(w), sender, strlen(sender));
		sm_err("invalid sender address '%s'", w);
		rv = EX_USAGE;
		goto done;
	}
	if (o->fullname != NULL && ctl_mail_from_header(&added, o->fullname,
	    user) == -1) {
		sm_err("invalid full name (-F)");
		rv = EX_USAGE;
		goto done;
	}
	ctl_buf_reset(&added);
	for (i = 0; i < o->nrcpts; i++) {
		if (ctl_mail_addrlist(&r, o->rcpts[i],
		    strlen(o->rcpts[i])) == -1) {
			sm_escape(w, sizeof(w), o->rcpts[i],
			    strlen(o->rcpts[i]));
			sm_err("invalid recipient '%s'", w);
			rv = EX_USAGE;
			goto done;
		}
	}
	if (!o->from_headers && r.n == 0) {
		sm_err("no recipients given");
		rv = EX_USAGE;
		goto done;
	}
	if (sm_socket_path(o, sockpath, sizeof(sockpath)) == -1) {
		rv = EX_CONFIG;
		goto done;
	}

	if ((rv = sm_read_message(o, &msg)) != EX_OK)
		goto done;
	if (ctl_mail_scan(ctl_buf_str(&msg), msg.len, o->from_headers, &r,
	    &sc, err, sizeof(err)) == -1) {
		sm_err("%s", err);
		rv = EX_DATAERR;
		goto done;
	}
	if (r.n == 0) {
		sm_err("no recipient addresses found in the header");
		rv = EX_DATAERR;
		goto done;
	}
	if ((rv = sm_added_headers(o, user, &sc, &added)) != EX_OK)
		goto done;
	ctl_mail_wire(&wire, ctl_buf_str(&msg), msg.len, &sc,
	    ctl_buf_str(&added));
	if (wire.failed) {
		sm_err("message too large");
		rv = EX_DATAERR;
		goto done;
	}
	rv = sm_submit(o, sockpath, sender, &r, &wire);
 done:
	ctl_mail_rcpts_free(&r);
	ctl_buf_free(&msg);
	ctl_buf_free(&added);
	ctl_buf_free(&wire);
	return rv;
}

/* sendmail -bs: relay bytes both ways until the server closes. */
static int
sm_smtp_relay(const struct ctl_sendmail_opts *o)
{
	struct sm_conn	 c;
	struct pollfd	 pfd[2];
	char		 sockpath[PATH_MAX], buf[SM_IOBUF];
	ssize_t		 n;
	int		 in_open = 1, rv = EX_OK;

	if (sm_socket_path(o, sockpath, sizeof(sockpath)) == -1)
		return EX_CONFIG;
	if (sm_connect(&c, sockpath, 0) == -1) {
		sm_err("cannot reach posternd at %s: %s", sockpath,
		    strerror(errno));
		return EX_UNAVAILABLE;
	}
	for (;;) {
		pfd[0].fd = c.fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = in_open ? STDIN_FILENO : -1;
		pfd[1].events = POLLIN;
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			sm_err("poll: %s", strerror(errno));
			rv = EX_OSERR;
			break;
		}
		if (pfd[0].revents != 0) {
			n = read(c.fd, buf, sizeof(buf));
			if (n == -1 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n == -1) {
				sm_err("reading from posternd: %s",
				    strerror(errno));
				rv = EX_IOERR;
				break;
			}
			if (n == 0)
				break;		/* after QUIT */
			if (sm_write(STDOUT_FILENO, buf, (size_t)n) == -1) {
				if (errno != EPIPE)
					sm_err("writing to stdout: %s",
					    strerror(errno));
				rv = EX_IOERR;
				break;
			}
		}
		if (in_open && pfd[1].revents != 0) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n == -1 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				/* The client is gone: let the server see. */
				in_open = 0;
				shutdown(c.fd, SHUT_WR);
				continue;
			}
			if (sm_write(c.fd, buf, (size_t)n) == -1) {
				sm_err("writing to posternd: %s",
				    strerror(errno));
				rv = EX_IOERR;
				break;
			}
		}
	}
	close(c.fd);
	return rv;
}

/* newaliases, sendmail -bi: ask the daemon to reload its tables. */
static int
sm_reload(const struct ctl_sendmail_opts *o)
{
	struct postern_conf	*conf;
	struct ctl_conn		 cc;
	struct msg_ctl_end	 end;
	struct imsg		 m;
	char			 path[PATH_MAX], err[SM_ERRLEN];
	char			 w[PROTO_REPLYLEN * 4 + 1];
	int			 bad, rv = EX_SOFTWARE;

	if (sm_config(o, &conf) == -1)
		return EX_CONFIG;
	if (strlcpy(path, conf != NULL ? conf->control : CONF_DEFAULT_CONTROL,
	    sizeof(path)) >= sizeof(path)) {
		config_free(conf);
		sm_err("control socket path too long");
		return EX_CONFIG;
	}
	if (conf != NULL)
		config_free(conf);
	if (ctl_connect(&cc, path) == -1) {
		sm_err("cannot reach posternd at %s: %s", path,
		    strerror(errno));
		return EX_UNAVAILABLE;
	}
	if (ctl_request(&cc, IMSG_CTL_RELOAD, NULL) == -1) {
		sm_err("sending the request to posternd: %s",
		    strerror(errno));
		rv = EX_IOERR;
		goto done;
	}
	if (ctl_next(&cc, &m, err, sizeof(err)) == -1) {
		sm_err("%s", err);
		rv = EX_IOERR;
		goto done;
	}
	bad = m.hdr.type != IMSG_CTL_END || proto_dec_ctl_end(&m, &end) == -1;
	imsg_free(&m);
	if (bad) {
		sm_err("malformed reply from the server");
		rv = EX_PROTOCOL;
	} else if (!end.ok) {
		sm_escape(w, sizeof(w), end.error, strlen(end.error));
		sm_err("%s", end.error[0] != '\0' ? w : "reload failed");
		rv = EX_NOPERM;
	} else {
		printf("newaliases: aliases reloaded\n");
		rv = EX_OK;
	}
 done:
	ctl_close(&cc);
	return rv;
}

int
ctl_sendmail_main(const char *face, int argc, char *argv[],
    int (*mailq)(const char *conffile))
{
	struct ctl_sendmail_opts	 o;
	char				 err[SM_ERRLEN];
	const char			*conf;

	sm_face = strcmp(face, "newaliases") == 0 ? "newaliases" : "sendmail";
	signal(SIGPIPE, SIG_IGN);
	if (ctl_sendmail_parse(sm_face, argc, argv, &o, err,
	    sizeof(err)) == -1) {
		sm_err("%s", err);
		if (strcmp(sm_face, "newaliases") == 0)
			fprintf(stderr, "usage: newaliases\n");
		else
			fprintf(stderr, "usage: sendmail [-tiv] [-f sender] "
			    "[-F name] [-C file] [-bm | -bs | -bp | -bi] "
			    "[recipient ...]\n");
		return EX_USAGE;
	}
	switch (o.mode) {
	case CTL_SM_DELIVER:
		return sm_deliver(&o);
	case CTL_SM_SMTP:
		return sm_smtp_relay(&o);
	case CTL_SM_QUEUE:
		conf = o.conffile;
		if (conf == NULL && (conf = getenv("POSTERN_CONF")) != NULL &&
		    *conf == '\0')
			conf = NULL;
		return mailq(conf);
	case CTL_SM_ALIASES:
		return sm_reload(&o);
	}
	return EX_SOFTWARE;
}
