/*
 * smtp_session.c: one SMTP session (RFC 5321) as an explicit state
 * machine: the verb table says in which states a command is allowed, one
 * function changes state, and every transaction goes to queue, which
 * decides on recipients and stores the message before the 250.
 * SECURITY: all input is hostile.  Lines and chunks are bounded, the
 * parsers do no I/O, pipelined input is processed one command at a time,
 * and a bare CR or LF never ends a line or the message.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "proc.h"
#include "proto.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "smtpd.h"

#define SMTP_CHUNK		(64 * 1024)	/* message bytes per frame */
#define SMTP_INPUT_HIWAT	(256 * 1024)	/* stop reading above this */
#define SMTP_OUTPUT_MAX		(1024 * 1024)	/* client not reading */

enum smtp_state {
	SMTP_STATE_HELO,	/* greeted, waiting for HELO/EHLO */
	SMTP_STATE_IDLE,	/* no transaction */
	SMTP_STATE_MAIL,	/* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,	/* at least one recipient */
	SMTP_STATE_DATA,	/* reading DATA content */
	SMTP_STATE_BDAT,	/* reading a BDAT chunk */
	SMTP_STATE_QUIT,	/* closing */
};

static const char *smtp_state_names[] = {
	"HELO", "IDLE", "MAIL", "RCPT", "DATA", "BDAT", "QUIT",
};

#define S(st)	(1 << (st))

enum smtp_wait {
	SMTP_WAIT_NONE,
	SMTP_WAIT_MAIL,
	SMTP_WAIT_RCPT,
	SMTP_WAIT_COMMIT,
};

struct smtp_session {
	RB_ENTRY(smtp_session)	 node;
	TAILQ_ENTRY(smtp_session) blocked_entry;
	uint64_t		 id;
	int			 fd;
	struct bufferevent	*bev;
	struct smtp_listener	*listener;
	char			 addr[PROTO_IPLEN];	/* "127.0.0.1" */
	char			 literal[PROTO_IPLEN + 8];/* "[IPv6:::1]" */
	int			 local;
	int64_t			 owner;		/* local socket: uid, else -1 */
	enum smtp_state		 state;
	enum smtp_wait		 wait;
	int			 blocked;	/* queue pipe is full */
	int			 esmtp;
	char			 helo[PROTO_HOSTLEN];
	unsigned int		 errors;

	/* transaction */
	uint64_t		 msgid;
	struct smtp_mail_args	 mail;
	size_t			 nrcpts;
	char			 rcpt_one[PROTO_ADDRLEN];
	char			 rcpt_pending[PROTO_ADDRLEN];
	struct smtp_data	 data;
	int			 toobig;
	int			 bdat;		/* transaction uses BDAT */
	size_t			 bdat_left;
	int			 bdat_last;
	char			*chunk;
	size_t			 chunklen;
	int			 discarding;	/* rest of an over-long line */

	/* TLS: the socket carries ciphertext that tlsd turns into these */
	int			 tls;		/* SMTP_TLS_* */
	struct smtpd_worker	*worker;
	struct evbuffer		*clear_in;
	struct evbuffer		*clear_out;
	struct event		 ev_flush;
	int			 flush_pending;
	int			 tls_done;	/* tlsd forgot the session */
	int			 read_paused;	/* clear_in is full */
	char			 tls_desc[96];	/* "TLSv1.2:SUITE" */
};

#define SMTP_TLS_NONE		0
#define SMTP_TLS_HANDSHAKE	1
#define SMTP_TLS_OPEN		2

struct smtp_verb_entry {
	enum smtp_verb	 verb;
	const char	*name;
	int		 states;	/* where it is allowed */
	void		(*proceed)(struct smtp_session *, const char *,
			    size_t);
};

int	smtp_session_cmp(struct smtp_session *, struct smtp_session *);
RB_PROTOTYPE(smtp_session_tree, smtp_session, node, smtp_session_cmp);
RB_GENERATE(smtp_session_tree, smtp_session, node, smtp_session_cmp);

static TAILQ_HEAD(, smtp_session) blocked =
	TAILQ_HEAD_INITIALIZER(blocked);

static void	smtp_enter_state(struct smtp_session *, enum smtp_state);
static void	smtp_reply(struct smtp_session *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	smtp_process(struct smtp_session *);
static void	smtp_command(struct smtp_session *, const char *, size_t);
static void	smtp_read_cb(struct bufferevent *, void *);
static void	smtp_write_cb(struct bufferevent *, void *);
static void	smtp_event_cb(struct bufferevent *, short, void *);
static void	smtp_close(struct smtp_session *, const char *);
static void	smtp_txn_reset(struct smtp_session *);
static void	smtp_data_flush(struct smtp_session *);
static void	smtp_data_end(struct smtp_session *);
static int	smtp_received(struct smtp_session *);
static void	smtp_tls_start(struct smtp_session *);
static void	smtp_tls_flush(int, short, void *);
static void	smtp_tls_send(struct smtp_session *, uint16_t, const void *,
		    size_t);

/* Where the session reads and writes cleartext. */
static struct evbuffer *
smtp_input(struct smtp_session *s)
{
	return s->tls ? s->clear_in : bufferevent_get_input(s->bev);
}

static struct evbuffer *
smtp_output(struct smtp_session *s)
{
	return s->tls ? s->clear_out : bufferevent_get_output(s->bev);
}

static void	smtp_cmd_helo(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_ehlo(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_mail(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_rcpt(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_data(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_bdat(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_rset(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_noop(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_quit(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_help(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_vrfy(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_expn(struct smtp_session *, const char *, size_t);
static void	smtp_cmd_starttls(struct smtp_session *, const char *,
		    size_t);
static void	smtp_cmd_auth(struct smtp_session *, const char *, size_t);

#define ANY_STATE	(S(SMTP_STATE_HELO) | S(SMTP_STATE_IDLE) | \
			    S(SMTP_STATE_MAIL) | S(SMTP_STATE_RCPT))
#define AFTER_HELO	(S(SMTP_STATE_IDLE) | S(SMTP_STATE_MAIL) | \
			    S(SMTP_STATE_RCPT))

static const struct smtp_verb_entry smtp_verbs[] = {
	{ SMTP_CMD_HELO, "HELO", ANY_STATE, smtp_cmd_helo },
	{ SMTP_CMD_EHLO, "EHLO", ANY_STATE, smtp_cmd_ehlo },
	{ SMTP_CMD_MAIL, "MAIL", S(SMTP_STATE_IDLE), smtp_cmd_mail },
	{ SMTP_CMD_RCPT, "RCPT", S(SMTP_STATE_MAIL) | S(SMTP_STATE_RCPT),
	    smtp_cmd_rcpt },
	{ SMTP_CMD_DATA, "DATA", S(SMTP_STATE_RCPT), smtp_cmd_data },
	{ SMTP_CMD_BDAT, "BDAT", S(SMTP_STATE_RCPT), smtp_cmd_bdat },
	{ SMTP_CMD_RSET, "RSET", ANY_STATE, smtp_cmd_rset },
	{ SMTP_CMD_NOOP, "NOOP", ANY_STATE, smtp_cmd_noop },
	{ SMTP_CMD_QUIT, "QUIT", ANY_STATE, smtp_cmd_quit },
	{ SMTP_CMD_HELP, "HELP", ANY_STATE, smtp_cmd_help },
	{ SMTP_CMD_VRFY, "VRFY", ANY_STATE, smtp_cmd_vrfy },
	{ SMTP_CMD_EXPN, "EXPN", ANY_STATE, smtp_cmd_expn },
	{ SMTP_CMD_STARTTLS, "STARTTLS", ANY_STATE, smtp_cmd_starttls },
	{ SMTP_CMD_AUTH, "AUTH", ANY_STATE, smtp_cmd_auth },
};

int
smtp_session_cmp(struct smtp_session *a, struct smtp_session *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

static const char *
smtp_hostname(struct smtp_session *s)
{
	if (s->listener->conf->hostname[0] != '\0')
		return s->listener->conf->hostname;
	return sd->conf->hostname;
}

/* Format the client address and its Received: literal. */
static void
smtp_session_addr(struct smtp_session *s, const struct sockaddr_storage *ss)
{
	const void	*ap;
	int		 af = ss->ss_family;

	s->local = 0;
	if (af == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;

		ap = &sin->sin_addr;
		s->local = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else if (af == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;

		ap = &sin6->sin6_addr;
		s->local = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	} else {
		strlcpy(s->addr, "local", sizeof(s->addr));
		strlcpy(s->literal, "local", sizeof(s->literal));
		s->local = 1;
		return;
	}
	if (inet_ntop(af, ap, s->addr, sizeof(s->addr)) == NULL)
		strlcpy(s->addr, "unknown", sizeof(s->addr));
	snprintf(s->literal, sizeof(s->literal), "[%s%s]",
	    af == AF_INET6 ? "IPv6:" : "", s->addr);
}

void
smtp_session_accept(struct smtp_listener *l, int fd,
    const struct sockaddr_storage *ss)
{
	struct smtp_session	*s;
	struct timeval		 tv;
	char			 idbuf[17];
	int			 on = 1;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->chunk = malloc(SMTP_CHUNK)) == NULL) {
		log_warn("session");
		free(s);
		close(fd);
		return;
	}
	do {
		arc4random_buf(&s->id, sizeof(s->id));
	} while (s->id == 0 ||
	    RB_FIND(smtp_session_tree, &sd->sessions, s) != NULL);
	s->fd = fd;
	s->listener = l;
	smtp_session_addr(s, ss);
	s->owner = -1;
	if (l->conf->is_socket) {
		struct ucred	 cred;
		socklen_t	 credlen = sizeof(cred);

		/* Local submission: whose mail it is. */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
		    &credlen) == -1) {
			log_warn("SO_PEERCRED");
			free(s->chunk);
			free(s);
			close(fd);
			return;
		}
		s->owner = cred.uid;
		snprintf(s->literal, sizeof(s->literal), "local uid %u",
		    (unsigned)cred.uid);
	} else
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));

	s->bev = bufferevent_socket_new(sd->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		log_warnx("bufferevent_socket_new failed");
		free(s->chunk);
		free(s);
		close(fd);
		return;
	}
	bufferevent_setcb(s->bev, smtp_read_cb, smtp_write_cb, smtp_event_cb,
	    s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_INPUT_HIWAT);
	tv.tv_sec = sd->conf->timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	RB_INSERT(smtp_session_tree, &sd->sessions, s);
	sd->nsessions++;
	sd->sessions_total++;

	s->state = SMTP_STATE_HELO;
	if (l->conf->is_socket)
		log_info("event=connect session=%s client=local uid=%lld",
		    proc_id(s->id, idbuf), (long long)s->owner);
	else
		log_info("event=connect session=%s client=%s "
		    "listener_port=%u%s", proc_id(s->id, idbuf), s->addr,
		    l->conf->port, l->conf->tls == LISTEN_SMTPS ?
		    " tls=implicit" : "");
	if (l->conf->tls == LISTEN_SMTPS)
		smtp_tls_start(s);	/* greeting once the handshake is done */
	else
		smtp_reply(s, "220 %s ESMTP Postern", smtp_hostname(s));
}

/* The one place a session changes state. */
static void
smtp_enter_state(struct smtp_session *s, enum smtp_state st)
{
	char	 idbuf[17];

	if (s->state == st)
		return;
	log_debug("event=state session=%s from=%s to=%s",
	    proc_id(s->id, idbuf), smtp_state_names[s->state],
	    smtp_state_names[st]);
	s->state = st;
}

/* Queue one reply line; 4xx and 5xx count as errors. */
static void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer	*out = smtp_output(s);
	char		 line[1024], idbuf[17];
	va_list		 ap;
	int		 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		fatalx("reply too long");
	log_debug("event=reply session=%s reply=\"%s\"", proc_id(s->id, idbuf),
	    line);
	memcpy(line + n, "\r\n", 2);
	evbuffer_add(out, line, n + 2);
	if (s->tls && !s->flush_pending) {
		/* All replies of this turn of the loop go in one record. */
		s->flush_pending = 1;
		event_active(&s->ev_flush, EV_TIMEOUT, 1);
	}
	if ((line[0] == '4' || line[0] == '5') && strncmp(line, "421", 3))
		s->errors++;
}

/* An error reply that may end the session when errors pile up. */
static void
smtp_error(struct smtp_session *s, const char *fmt, ...)
{
	char	 line[1024];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		fatalx("reply too long");
	smtp_reply(s, "%s", line);
	if (s->errors >= sd->conf->max_errors) {
		smtp_reply(s, "421 4.7.0 %s Error: too many errors",
		    smtp_hostname(s));
		smtp_close(s, "too many errors");
	}
}

static void
smtp_error_parse(struct smtp_session *s, const struct smtp_error *e)
{
	smtp_error(s, "%d %s %s", e->code, e->enhanced, e->text);
}

/* Start closing: no more input, free once the output is written. */
static void
smtp_close(struct smtp_session *s, const char *why)
{
	char	 idbuf[17];

	if (s->state == SMTP_STATE_QUIT)
		return;
	log_info("event=close session=%s reason=\"%s\"", proc_id(s->id, idbuf),
	    why);
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_STATE_QUIT);
	bufferevent_disable(s->bev, EV_READ);
	if (s->tls == SMTP_TLS_OPEN && !s->tls_done) {
		struct imsg_payload	 p;
		struct msg_tls_close	 c = { .how = TLS_CLOSE_NOTIFY };

		/* Last replies, then close_notify; tlsd says CLOSED. */
		smtp_tls_flush(-1, 0, s);
		imsg_payload_init(&p);
		proto_enc_tls_close(&p, &c);
		if (imsg_compose_payload(&s->worker->ib, IMSG_TLS_CLOSE,
		    s->id, -1, &p) == -1)
			fatal("compose tls close");
		imsg_payload_free(&p);
		smtpd_worker_update(s->worker);
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		smtp_write_cb(s->bev, s);
}

static void
smtp_free(struct smtp_session *s)
{
	if (s->blocked)
		TAILQ_REMOVE(&blocked, s, blocked_entry);
	smtp_txn_reset(s);
	if (s->tls == SMTP_TLS_OPEN)
		sd->tls_now--;
	if (s->tls != SMTP_TLS_NONE) {
		if (!s->tls_done) {
			struct imsg_payload	 p;
			struct msg_tls_close	 c = { .how = TLS_CLOSE_FORGET };

			imsg_payload_init(&p);
			proto_enc_tls_close(&p, &c);
			if (imsg_compose_payload(&s->worker->ib,
			    IMSG_TLS_CLOSE, s->id, -1, &p) == -1)
				fatal("compose tls close");
			imsg_payload_free(&p);
			smtpd_worker_update(s->worker);
		}
		event_del(&s->ev_flush);
		evbuffer_free(s->clear_in);
		evbuffer_free(s->clear_out);
	}
	RB_REMOVE(smtp_session_tree, &sd->sessions, s);
	sd->nsessions--;
	bufferevent_free(s->bev);
	free(s->chunk);
	free(s);
}

/* Forget the transaction; tell queue unless it is committing it. */
static void
smtp_txn_reset(struct smtp_session *s)
{
	struct imsg_payload	 p;
	struct msg_smtp_commit	 c;

	if (s->msgid != 0 && s->wait != SMTP_WAIT_COMMIT) {
		memset(&c, 0, sizeof(c));
		c.msgid = s->msgid;
		imsg_payload_init(&p);
		proto_enc_smtp_commit(&p, &c);
		if (imsg_compose_payload(&sd->queue, IMSG_SMTP_ROLLBACK, s->id,
		    -1, &p) == -1)
			fatal("compose rollback");
		imsg_payload_free(&p);
		smtpd_queue_update();
	}
	s->msgid = 0;
	s->nrcpts = 0;
	s->rcpt_one[0] = '\0';
	s->toobig = 0;
	s->bdat = 0;
	s->bdat_left = 0;
	s->bdat_last = 0;
	s->chunklen = 0;
	memset(&s->mail, 0, sizeof(s->mail));
}

static void
smtp_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session	*s = arg;
	struct evbuffer		*in;
	unsigned char		*p;
	size_t			 len;

	if (s->tls == SMTP_TLS_NONE) {
		smtp_process(s);
		return;
	}
	/* Ciphertext: all of it to tlsd, in frames of a record or two. */
	in = bufferevent_get_input(bev);
	while ((len = evbuffer_get_length(in)) > 0) {
		if (len > 32 * 1024)
			len = 32 * 1024;
		p = evbuffer_pullup(in, len);
		smtp_tls_send(s, IMSG_TLS_CIPHER, p, len);
		evbuffer_drain(in, len);
	}
}

static void
smtp_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session	*s = arg;

	if (s->state == SMTP_STATE_QUIT &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
	    s->wait != SMTP_WAIT_COMMIT &&
	    (s->tls != SMTP_TLS_OPEN || s->tls_done))
		smtp_free(s);
}

static void
smtp_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session	*s = arg;
	char			 idbuf[17];

	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == SMTP_STATE_QUIT ||
		    s->tls == SMTP_TLS_HANDSHAKE) {
			if (s->tls == SMTP_TLS_HANDSHAKE)
				log_info("event=timeout session=%s "
				    "state=TLS-HANDSHAKE", proc_id(s->id,
				    idbuf));
			smtp_free(s);
			return;
		}
		log_info("event=timeout session=%s state=%s",
		    proc_id(s->id, idbuf), smtp_state_names[s->state]);
		smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    smtp_hostname(s));
		smtp_close(s, "timeout");
		/* Give the reply one timeout period to leave. */
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	/* EOF or error: the client is gone, mid-transaction or not. */
	if (s->state != SMTP_STATE_QUIT)
		log_info("event=disconnect session=%s state=%s",
		    proc_id(s->id, idbuf), smtp_state_names[s->state]);
	if (s->wait == SMTP_WAIT_COMMIT) {
		/* Keep the session until queue answers; then free it. */
		smtp_enter_state(s, SMTP_STATE_QUIT);
		bufferevent_disable(bev, EV_READ | EV_WRITE);
		return;
	}
	smtp_free(s);
}

/* Handle buffered input until we must wait (for queue, or for bytes). */
static void
smtp_process(struct smtp_session *s)
{
	struct evbuffer		*in = smtp_input(s);
	struct evbuffer_ptr	 eol;
	size_t			 eol_len, avail, take, outlen, used;
	char			 line[SMTP_LINE_MAX];
	unsigned char		*p;

	while (s->wait == SMTP_WAIT_NONE && !s->blocked &&
	    s->state != SMTP_STATE_QUIT) {
		avail = evbuffer_get_length(in);
		if (avail == 0 && !(s->state == SMTP_STATE_BDAT &&
		    s->bdat_left == 0))
			break;
		if (s->state == SMTP_STATE_DATA) {
			if (imsgbuf_queued(&sd->queue) >= SMTPD_QUEUE_HIWAT) {
				s->blocked = 1;
				TAILQ_INSERT_TAIL(&blocked, s, blocked_entry);
				break;
			}
			take = avail;
			if (take > SMTP_CHUNK - s->chunklen)
				take = SMTP_CHUNK - s->chunklen;
			p = evbuffer_pullup(in, take);
			used = smtp_data_feed(&s->data, (const char *)p, take,
			    s->chunk + s->chunklen, &outlen);
			evbuffer_drain(in, used);
			s->chunklen += outlen;
			if (s->data.size > sd->conf->max_message_size)
				s->toobig = 1;
			if (s->chunklen == SMTP_CHUNK || s->data.done)
				smtp_data_flush(s);
			if (s->data.done)
				smtp_data_end(s);
			continue;
		}
		if (s->state == SMTP_STATE_BDAT) {
			if (imsgbuf_queued(&sd->queue) >= SMTPD_QUEUE_HIWAT) {
				s->blocked = 1;
				TAILQ_INSERT_TAIL(&blocked, s, blocked_entry);
				break;
			}
			take = avail;
			if (take > s->bdat_left)
				take = s->bdat_left;
			if (take > SMTP_CHUNK - s->chunklen)
				take = SMTP_CHUNK - s->chunklen;
			if (take > 0) {
				evbuffer_remove(in, s->chunk + s->chunklen,
				    take);
				smtp_bdat_feed(&s->data,
				    s->chunk + s->chunklen, take);
				s->chunklen += take;
				s->bdat_left -= take;
			}
			if (s->data.size > sd->conf->max_message_size)
				s->toobig = 1;
			if (s->chunklen == SMTP_CHUNK || s->bdat_left == 0)
				smtp_data_flush(s);
			if (s->bdat_left == 0) {
				if (s->bdat_last) {
					smtp_bdat_finish(&s->data);
					smtp_data_end(s);
				} else {
					smtp_enter_state(s, SMTP_STATE_RCPT);
					if (s->toobig) {
						smtp_error(s, "552 5.3.4 "
						    "Message size exceeds "
						    "fixed limit");
						smtp_txn_reset(s);
						smtp_enter_state(s,
						    SMTP_STATE_IDLE);
					} else
						smtp_reply(s, "250 2.0.0 %zu "
						    "bytes received",
						    s->data.size);
				}
			}
			continue;
		}

		/* Command mode: one CRLF-terminated line at a time. */
		eol = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF_STRICT);
		if (eol.pos == -1) {
			if (avail >= SMTP_LINE_MAX) {
				if (!s->discarding)
					smtp_error(s, "500 5.5.2 Error: line "
					    "too long");
				s->discarding = 1;
				evbuffer_drain(in, avail - 1);
			}
			break;
		}
		if (s->discarding || (size_t)eol.pos + 2 > SMTP_LINE_MAX) {
			evbuffer_drain(in, eol.pos + 2);
			if (!s->discarding)
				smtp_error(s, "500 5.5.2 Error: line too long");
			s->discarding = 0;
			continue;
		}
		evbuffer_remove(in, line, eol.pos);
		evbuffer_drain(in, 2);
		smtp_command(s, line, eol.pos);
		/* STARTTLS switches the input buffer. */
		in = smtp_input(s);
	}
	/* TLS input is buffered here, not in the socket: bound it. */
	if (s->tls != SMTP_TLS_NONE && s->state != SMTP_STATE_QUIT) {
		int	 full = evbuffer_get_length(s->clear_in) >=
		    SMTP_INPUT_HIWAT;

		if (full && !s->read_paused) {
			bufferevent_disable(s->bev, EV_READ);
			s->read_paused = 1;
		} else if (!full && s->read_paused) {
			bufferevent_enable(s->bev, EV_READ);
			s->read_paused = 0;
		}
	}
}

/* A queue pipe that drained lets blocked sessions go on. */
void
smtp_session_resume_all(void)
{
	struct smtp_session	*s;

	while ((s = TAILQ_FIRST(&blocked)) != NULL) {
		TAILQ_REMOVE(&blocked, s, blocked_entry);
		s->blocked = 0;
		smtp_process(s);
		if (imsgbuf_queued(&sd->queue) >= SMTPD_QUEUE_HIWAT)
			break;
	}
}

static void
smtp_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command	 cmd;
	struct smtp_error	 err;
	char			 esc[128], idbuf[17];
	size_t			 i;

	if (smtp_parse_command(line, len, &cmd, &err) == -1) {
		smtp_error_parse(s, &err);
		return;
	}
	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (smtp_verbs[i].verb == cmd.verb)
			break;
	if (i == sizeof(smtp_verbs) / sizeof(smtp_verbs[0])) {
		log_debug("event=unknown-command session=%s line=\"%s\"",
		    proc_id(s->id, idbuf), log_escape(esc, sizeof(esc), line,
		    len > 32 ? 32 : len));
		smtp_error(s, "500 5.5.1 Error: command not recognized");
		return;
	}
	if (cmd.verb != SMTP_CMD_AUTH)
		log_debug("event=command session=%s line=\"%s\"",
		    proc_id(s->id, idbuf), log_escape(esc, sizeof(esc), line,
		    len));
	if ((smtp_verbs[i].states & S(s->state)) == 0) {
		if (s->state == SMTP_STATE_HELO)
			smtp_error(s, "503 5.5.1 Error: send HELO/EHLO first");
		else if (cmd.verb == SMTP_CMD_MAIL)
			smtp_error(s, "503 5.5.1 Error: nested MAIL command");
		else if (cmd.verb == SMTP_CMD_RCPT)
			smtp_error(s, "503 5.5.1 Error: need MAIL command");
		else if (s->state == SMTP_STATE_IDLE)
			smtp_error(s, "503 5.5.1 Error: need MAIL command");
		else
			smtp_error(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (s->bdat && cmd.verb == SMTP_CMD_DATA) {
		smtp_error(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	smtp_verbs[i].proceed(s, cmd.args, cmd.arglen);
}

static int
smtp_cmd_helo_common(struct smtp_session *s, const char *args, size_t len,
    int esmtp)
{
	struct smtp_error	 err;
	char			 helo[PROTO_HOSTLEN];

	if (smtp_parse_helo(args, len, helo, sizeof(helo), &err) == -1) {
		smtp_error_parse(s, &err);
		return -1;
	}
	smtp_txn_reset(s);
	strlcpy(s->helo, helo, sizeof(s->helo));
	s->esmtp = esmtp;
	smtp_enter_state(s, SMTP_STATE_IDLE);
	return 0;
}

static void
smtp_cmd_helo(struct smtp_session *s, const char *args, size_t len)
{
	if (smtp_cmd_helo_common(s, args, len, 0) == 0)
		smtp_reply(s, "250 %s Hello %s %s", smtp_hostname(s), s->helo,
		    s->literal);
}

static void
smtp_cmd_ehlo(struct smtp_session *s, const char *args, size_t len)
{
	if (smtp_cmd_helo_common(s, args, len, 1) == -1)
		return;
	smtp_reply(s, "250-%s Hello %s %s", smtp_hostname(s), s->helo,
	    s->literal);
	smtp_reply(s, "250-PIPELINING");
	if (s->tls == SMTP_TLS_NONE &&
	    (s->listener->conf->tls == LISTEN_STARTTLS ||
	    s->listener->conf->tls == LISTEN_STARTTLS_REQUIRE))
		smtp_reply(s, "250-STARTTLS");
	smtp_reply(s, "250-SIZE %zu", sd->conf->max_message_size);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	smtp_reply(s, "250-CHUNKING");
	smtp_reply(s, "250 HELP");
}

/*
 * Local submission may name a user without a domain ("MAIL FROM:<joe>",
 * as sendmail does): qualify it with our host name.  Network sessions
 * get no such help.  Returns args, or buf holding the rewritten line.
 */
static const char *
smtp_local_qualify(struct smtp_session *s, const char *args, size_t *len,
    char *buf, size_t bufsz)
{
	const char	*lt, *gt;
	int		 n;

	if (!s->listener->conf->is_socket)
		return args;
	if ((lt = memchr(args, '<', *len)) == NULL ||
	    (gt = memchr(lt, '>', *len - (lt - args))) == NULL ||
	    gt == lt + 1 || memchr(lt, '@', gt - lt) != NULL ||
	    memchr(lt, '"', gt - lt) != NULL)
		return args;
	n = snprintf(buf, bufsz, "%.*s@%s%.*s", (int)(gt - args), args,
	    smtp_hostname(s), (int)(*len - (gt - args)), gt);
	if (n < 0 || (size_t)n >= bufsz)
		return args;	/* the parser will say it is too long */
	*len = n;
	return buf;
}

static void
smtp_cmd_mail(struct smtp_session *s, const char *args, size_t len)
{
	char			 qbuf[SMTP_LINE_MAX + CONF_HOSTLEN];
	struct smtp_error	 err;
	struct imsg_payload	 p;
	struct msg_smtp_mail	 m;

	if (s->listener->conf->tls == LISTEN_STARTTLS_REQUIRE &&
	    s->tls != SMTP_TLS_OPEN) {
		smtp_error(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	memset(&s->mail, 0, sizeof(s->mail));
	args = smtp_local_qualify(s, args, &len, qbuf, sizeof(qbuf));
	if (smtp_parse_mail(args, len, &s->mail, &err) == -1) {
		smtp_error_parse(s, &err);
		return;
	}
	if (s->mail.ret != 0 || s->mail.envid[0] != '\0') {
		smtp_error(s, "555 5.5.4 Error: DSN is not supported");
		return;
	}
	if (s->mail.smtputf8 && !s->esmtp) {
		smtp_error(s, "555 5.5.4 Error: SMTPUTF8 needs EHLO");
		return;
	}
	if (s->mail.size > sd->conf->max_message_size) {
		smtp_error(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	memset(&m, 0, sizeof(m));
	m.local = s->local;
	strlcpy(m.client, s->addr, sizeof(m.client));
	strlcpy(m.helo, s->helo, sizeof(m.helo));
	if (addr_format(&s->mail.from, m.sender, sizeof(m.sender)) == -1) {
		smtp_error(s, "553 5.1.7 Error: sender address too long");
		return;
	}
	m.smtputf8 = s->mail.smtputf8 ? 1 : 0;
	m.body = s->mail.body;
	m.size = s->mail.size;
	m.owner = s->owner;
	imsg_payload_init(&p);
	proto_enc_smtp_mail(&p, &m);
	if (imsg_compose_payload(&sd->queue, IMSG_SMTP_MAIL, s->id, -1,
	    &p) == -1)
		fatal("compose mail");
	imsg_payload_free(&p);
	smtpd_queue_update();
	s->wait = SMTP_WAIT_MAIL;
}

static void
smtp_cmd_rcpt(struct smtp_session *s, const char *args, size_t len)
{
	char			 qbuf[SMTP_LINE_MAX + CONF_HOSTLEN];
	struct smtp_error	 err;
	struct smtp_rcpt_args	 r;
	struct imsg_payload	 p;
	struct msg_smtp_rcpt	 m;

	memset(&r, 0, sizeof(r));
	args = smtp_local_qualify(s, args, &len, qbuf, sizeof(qbuf));
	if (smtp_parse_rcpt(args, len, s->mail.smtputf8, &r, &err) == -1) {
		smtp_error_parse(s, &err);
		return;
	}
	if (r.notify != 0 || r.orcpt[0] != '\0') {
		smtp_error(s, "555 5.5.4 Error: DSN is not supported");
		return;
	}
	if (s->nrcpts >= sd->conf->max_recipients) {
		smtp_error(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	/* <postmaster> alone is the postmaster of this host. */
	if (r.to.domain[0] == '\0' &&
	    strlcpy(r.to.domain, smtp_hostname(s), sizeof(r.to.domain)) >=
	    sizeof(r.to.domain)) {
		smtp_error(s, "553 5.1.3 Error: bad recipient address");
		return;
	}
	memset(&m, 0, sizeof(m));
	m.msgid = s->msgid;
	if (addr_format(&r.to, m.rcpt, sizeof(m.rcpt)) == -1) {
		smtp_error(s, "553 5.1.3 Error: recipient address too long");
		return;
	}
	strlcpy(s->rcpt_pending, m.rcpt, sizeof(s->rcpt_pending));
	imsg_payload_init(&p);
	proto_enc_smtp_rcpt(&p, &m);
	if (imsg_compose_payload(&sd->queue, IMSG_SMTP_RCPT, s->id, -1,
	    &p) == -1)
		fatal("compose rcpt");
	imsg_payload_free(&p);
	smtpd_queue_update();
	s->wait = SMTP_WAIT_RCPT;
}

/* The Received: header (RFC 5321 4.4) opens every message. */
static int
smtp_received(struct smtp_session *s)
{
	char		 date[64], idbuf[17], tlsinfo[112];
	const char	*proto;
	struct tm	 tm;
	time_t		 now = time(NULL);
	int		 n;

	if (s->mail.smtputf8)
		proto = s->tls ? "UTF8SMTPS" : "UTF8SMTP";
	else if (s->tls)
		proto = "ESMTPS";
	else
		proto = s->esmtp ? "ESMTP" : "SMTP";
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	if (s->tls)
		snprintf(tlsinfo, sizeof(tlsinfo), " (%s)", s->tls_desc);
	else
		tlsinfo[0] = '\0';
	if (s->nrcpts == 1)
		n = snprintf(s->chunk, SMTP_CHUNK, "Received: from %s (%s)\r\n"
		    "\tby %s (Postern) with %s%s id %s\r\n"
		    "\tfor <%s>; %s\r\n", s->helo, s->literal,
		    smtp_hostname(s), proto, tlsinfo,
		    proc_id(s->msgid, idbuf), s->rcpt_one, date);
	else
		n = snprintf(s->chunk, SMTP_CHUNK, "Received: from %s (%s)\r\n"
		    "\tby %s (Postern) with %s%s id %s;\r\n\t%s\r\n",
		    s->helo, s->literal, smtp_hostname(s), proto, tlsinfo,
		    proc_id(s->msgid, idbuf), date);
	if (n < 0 || n >= SMTP_CHUNK)
		return -1;
	s->chunklen = n;
	return 0;
}

static void
smtp_cmd_data(struct smtp_session *s, const char *args, size_t len)
{
	if (len != 0) {
		smtp_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (smtp_received(s) == -1)
		fatalx("Received: header does not fit");
	smtp_data_init(&s->data);
	s->toobig = 0;
	smtp_enter_state(s, SMTP_STATE_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
smtp_cmd_bdat(struct smtp_session *s, const char *args, size_t len)
{
	struct smtp_error	 err;
	size_t			 chunk;
	int			 last;

	if (smtp_parse_bdat(args, len, &chunk, &last, &err) == -1) {
		/* The chunk length is unknown: the session cannot go on. */
		smtp_error_parse(s, &err);
		if (s->state != SMTP_STATE_QUIT) {
			smtp_reply(s, "421 4.7.0 %s Error: bad BDAT, closing",
			    smtp_hostname(s));
			smtp_close(s, "bad BDAT");
		}
		return;
	}
	if (!s->bdat) {
		if (smtp_received(s) == -1)
			fatalx("Received: header does not fit");
		smtp_data_init(&s->data);
		s->bdat = 1;
		s->toobig = 0;
	}
	s->bdat_left = chunk;
	s->bdat_last = last;
	smtp_enter_state(s, SMTP_STATE_BDAT);
}

/* Send what the chunk buffer holds to queue, unless the message is
 * already refused. */
static void
smtp_data_flush(struct smtp_session *s)
{
	struct imsg_payload	 p;
	struct msg_smtp_data	 d;

	if (s->chunklen == 0)
		return;
	if (!s->toobig && !s->data.bare) {
		d.msgid = s->msgid;
		d.data = (const uint8_t *)s->chunk;
		d.len = s->chunklen;
		imsg_payload_init(&p);
		proto_enc_smtp_data(&p, &d);
		if (imsg_compose_payload(&sd->queue, IMSG_SMTP_DATA, s->id,
		    -1, &p) == -1)
			fatal("compose data");
		imsg_payload_free(&p);
		smtpd_queue_update();
	}
	s->chunklen = 0;
}

/* The end of DATA or of the last BDAT: commit, or refuse. */
static void
smtp_data_end(struct smtp_session *s)
{
	struct imsg_payload	 p;
	struct msg_smtp_commit	 c;
	char			 idbuf[17];

	if (s->data.bare) {
		log_info("event=refused session=%s reason=\"bare CR or LF\"",
		    proc_id(s->id, idbuf));
		smtp_txn_reset(s);
		smtp_enter_state(s, SMTP_STATE_IDLE);
		smtp_error(s, "550 5.6.0 Error: bare CR or LF in message "
		    "content is not allowed (RFC 5321 2.3.8)");
		return;
	}
	if (s->toobig) {
		smtp_txn_reset(s);
		smtp_enter_state(s, SMTP_STATE_IDLE);
		smtp_error(s, "552 5.3.4 Message size exceeds fixed limit");
		return;
	}
	memset(&c, 0, sizeof(c));
	c.msgid = s->msgid;
	imsg_payload_init(&p);
	proto_enc_smtp_commit(&p, &c);
	if (imsg_compose_payload(&sd->queue, IMSG_SMTP_COMMIT, s->id, -1,
	    &p) == -1)
		fatal("compose commit");
	imsg_payload_free(&p);
	smtpd_queue_update();
	s->wait = SMTP_WAIT_COMMIT;
}

/* A reply from queue for some session: resume it. */
void
smtp_session_queue_reply(struct imsg *imsg)
{
	struct msg_smtp_result	 r;
	struct smtp_session	 key, *s;
	char			 idbuf[17], sidbuf[17];

	if (proto_dec_smtp_result(imsg, &r) == -1)
		fatalx("queue: malformed result");
	key.id = imsg->hdr.id;
	if ((s = RB_FIND(smtp_session_tree, &sd->sessions, &key)) == NULL) {
		/* Gone meanwhile; an open transaction must be undone. */
		if (imsg->hdr.type == IMSG_SMTP_MAIL_RESULT && r.ok) {
			struct imsg_payload	 p;
			struct msg_smtp_commit	 c = { .msgid = r.msgid };

			imsg_payload_init(&p);
			proto_enc_smtp_commit(&p, &c);
			if (imsg_compose_payload(&sd->queue,
			    IMSG_SMTP_ROLLBACK, imsg->hdr.id, -1, &p) == -1)
				fatal("compose rollback");
			imsg_payload_free(&p);
		}
		return;
	}
	if (s->state == SMTP_STATE_QUIT) {
		/* Closing: undo what queue just opened, then let it go. */
		if (imsg->hdr.type == IMSG_SMTP_MAIL_RESULT && r.ok) {
			s->msgid = r.msgid;
			s->wait = SMTP_WAIT_NONE;
			smtp_txn_reset(s);
		}
		s->wait = SMTP_WAIT_NONE;
		s->msgid = 0;
		smtp_write_cb(s->bev, s);
		return;
	}

	switch (imsg->hdr.type) {
	case IMSG_SMTP_MAIL_RESULT:
		if (s->wait != SMTP_WAIT_MAIL)
			fatalx("queue: unexpected MAIL result");
		s->wait = SMTP_WAIT_NONE;
		if (!r.ok) {
			smtp_error(s, "%s", r.reply);
			break;
		}
		s->msgid = r.msgid;
		smtp_enter_state(s, SMTP_STATE_MAIL);
		smtp_reply(s, "250 2.1.0 Ok");
		break;
	case IMSG_SMTP_RCPT_RESULT:
		if (s->wait != SMTP_WAIT_RCPT)
			fatalx("queue: unexpected RCPT result");
		s->wait = SMTP_WAIT_NONE;
		if (!r.ok) {
			smtp_error(s, "%s", r.reply);
			break;
		}
		if (s->nrcpts++ == 0)
			strlcpy(s->rcpt_one, s->rcpt_pending,
			    sizeof(s->rcpt_one));
		smtp_enter_state(s, SMTP_STATE_RCPT);
		smtp_reply(s, "250 2.1.5 Ok");
		break;
	case IMSG_SMTP_COMMIT_RESULT:
		if (s->wait != SMTP_WAIT_COMMIT)
			fatalx("queue: unexpected COMMIT result");
		s->wait = SMTP_WAIT_NONE;
		s->msgid = 0;	/* committed or refused: nothing to undo */
		smtp_txn_reset(s);
		smtp_enter_state(s, SMTP_STATE_IDLE);
		if (r.ok) {
			log_info("event=accepted session=%s msg=%s",
			    proc_id(s->id, sidbuf), proc_id(r.msgid, idbuf));
			smtp_reply(s, "250 2.0.0 Ok: queued as %s",
			    proc_id(r.msgid, idbuf));
		} else
			smtp_error(s, "%s", r.reply);
		break;
	default:
		fatalx("queue: unexpected reply type");
	}
	if (s->state != SMTP_STATE_QUIT)
		smtp_process(s);
}

static void
smtp_cmd_rset(struct smtp_session *s, const char *args, size_t len)
{
	smtp_txn_reset(s);
	if (s->state != SMTP_STATE_HELO)
		smtp_enter_state(s, SMTP_STATE_IDLE);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_noop(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_quit(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply(s, "221 2.0.0 Bye");
	smtp_close(s, "quit");
}

static void
smtp_cmd_help(struct smtp_session *s, const char *args, size_t len)
{
	smtp_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT "
	    "RSET NOOP QUIT HELP VRFY");
}

static void
smtp_cmd_vrfy(struct smtp_session *s, const char *args, size_t len)
{
	if (len == 0) {
		smtp_error(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	/* Never disclose which users exist (RFC 5321 7.3). */
	smtp_reply(s, "252 2.1.5 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

static void
smtp_cmd_expn(struct smtp_session *s, const char *args, size_t len)
{
	smtp_error(s, "502 5.5.1 Error: EXPN not supported");
}

static void
smtp_cmd_starttls(struct smtp_session *s, const char *args, size_t len)
{
	enum listen_tls	 mode = s->listener->conf->tls;

	if (s->tls != SMTP_TLS_NONE) {
		smtp_error(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (mode != LISTEN_STARTTLS && mode != LISTEN_STARTTLS_REQUIRE) {
		smtp_error(s, "502 5.5.1 Error: STARTTLS not available");
		return;
	}
	if (len != 0) {
		smtp_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/*
	 * RFC 3207 4.2 and CVE-2011-0411: whatever the client pipelined
	 * after STARTTLS is cleartext from before TLS: never execute it.
	 * The session starts over: EHLO again, no transaction.
	 */
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	smtp_txn_reset(s);
	s->esmtp = 0;
	s->helo[0] = '\0';
	smtp_enter_state(s, SMTP_STATE_HELO);
	smtp_tls_start(s);
}

/* Hand the session's bytes to a tlsd worker from now on. */
static void
smtp_tls_start(struct smtp_session *s)
{
	struct imsg_payload	 p;
	struct msg_tls_open	 o;
	uint32_t		 h = 2166136261u;
	const char		*c;

	if (sd->nworkers == 0)
		fatalx("TLS session without a tlsd worker");
	/*
	 * Each worker has its own session cache: a client that comes back
	 * from the same address must meet the same worker to resume.
	 */
	for (c = s->addr; *c != '\0'; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	s->worker = &sd->workers[h % sd->nworkers];
	if ((s->clear_in = evbuffer_new()) == NULL ||
	    (s->clear_out = evbuffer_new()) == NULL)
		fatal("tls buffers");
	event_set(&s->ev_flush, -1, 0, smtp_tls_flush, s);
	s->tls = SMTP_TLS_HANDSHAKE;
	memset(&o, 0, sizeof(o));
	o.mode = TLS_OPEN_SERVER;
	strlcpy(o.name, s->listener->conf->pki, sizeof(o.name));
	imsg_payload_init(&p);
	proto_enc_tls_open(&p, &o);
	if (imsg_compose_payload(&s->worker->ib, IMSG_TLS_OPEN, s->id, -1,
	    &p) == -1)
		fatal("compose tls open");
	imsg_payload_free(&p);
	smtpd_worker_update(s->worker);
}

static void
smtp_tls_send(struct smtp_session *s, uint16_t type, const void *data,
    size_t len)
{
	if (proto_compose_bytes(&s->worker->ib, type, s->id, data, len) == -1)
		fatal("compose tls bytes");
	smtpd_worker_update(s->worker);
}

/* Replies of this turn of the loop go to tlsd together. */
static void
smtp_tls_flush(int fd, short ev, void *arg)
{
	struct smtp_session	*s = arg;
	unsigned char		*p;
	size_t			 len;

	s->flush_pending = 0;
	if (s->tls_done)
		return;
	while ((len = evbuffer_get_length(s->clear_out)) > 0) {
		if (len > 16 * 1024)
			len = 16 * 1024;
		p = evbuffer_pullup(s->clear_out, len);
		smtp_tls_send(s, IMSG_TLS_CLEAR, p, len);
		evbuffer_drain(s->clear_out, len);
	}
}

/* What a tlsd worker says about one of our sessions. */
void
smtp_session_tls_imsg(struct smtpd_worker *wk, struct imsg *imsg)
{
	struct smtp_session		 key, *s;
	struct msg_tls_bytes		 b;
	struct msg_tls_handshake	 h;
	struct msg_tls_closed		 c;
	char				 idbuf[17], esc[PROTO_HOSTLEN * 4];

	key.id = imsg->hdr.id;
	s = RB_FIND(smtp_session_tree, &sd->sessions, &key);
	if (s != NULL && (s->worker != wk || s->tls == SMTP_TLS_NONE))
		fatalx("tlsd: message for a session it does not serve");
	switch (imsg->hdr.type) {
	case IMSG_TLS_CIPHER:
		if (proto_dec_tls_bytes(imsg, &b) == -1)
			fatalx("tlsd: malformed IMSG_TLS_CIPHER");
		if (s != NULL && bufferevent_write(s->bev, b.data,
		    b.len) == -1)
			fatal("bufferevent_write");
		break;
	case IMSG_TLS_CLEAR:
		if (proto_dec_tls_bytes(imsg, &b) == -1)
			fatalx("tlsd: malformed IMSG_TLS_CLEAR");
		if (s == NULL || s->state == SMTP_STATE_QUIT)
			break;
		evbuffer_add(s->clear_in, b.data, b.len);
		smtp_process(s);
		break;
	case IMSG_TLS_HANDSHAKE:
		if (proto_dec_tls_handshake(imsg, &h) == -1)
			fatalx("tlsd: malformed IMSG_TLS_HANDSHAKE");
		if (s == NULL)
			break;
		if (s->tls != SMTP_TLS_HANDSHAKE)
			fatalx("tlsd: second handshake");
		s->tls = SMTP_TLS_OPEN;
		sd->tls_now++;
		sd->tls_total++;
		snprintf(s->tls_desc, sizeof(s->tls_desc), "%s:%s",
		    h.version, h.suite);
		log_info("event=tls session=%s version=%s suite=%s sni=\"%s\" "
		    "resumed=%s", proc_id(s->id, idbuf), h.version, h.suite,
		    log_escape(esc, sizeof(esc), h.sni, strlen(h.sni)),
		    h.resumed ? "yes" : "no");
		if (s->listener->conf->tls == LISTEN_SMTPS)
			smtp_reply(s, "220 %s ESMTP Postern",
			    smtp_hostname(s));
		break;
	case IMSG_TLS_CLOSED:
		if (proto_dec_tls_closed(imsg, &c) == -1)
			fatalx("tlsd: malformed IMSG_TLS_CLOSED");
		if (s == NULL)
			break;
		s->tls_done = 1;
		if (c.failed)
			sd->tls_failed++;
		if (c.failed)
			log_info("event=tls-failed session=%s reason=\"%s\"",
			    proc_id(s->id, idbuf), log_escape(esc,
			    sizeof(esc), c.reason, strlen(c.reason)));
		if (s->state != SMTP_STATE_QUIT) {
			if (!c.failed)
				log_info("event=disconnect session=%s "
				    "reason=close_notify", proc_id(s->id,
				    idbuf));
			smtp_enter_state(s, SMTP_STATE_QUIT);
			bufferevent_disable(s->bev, EV_READ);
		}
		/* What tlsd sent last may still be on its way out. */
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
			smtp_write_cb(s->bev, s);
		break;
	default:
		fatalx("tlsd: unexpected message type %u", imsg->hdr.type);
	}
}

static void
smtp_cmd_auth(struct smtp_session *s, const char *args, size_t len)
{
	smtp_error(s, "503 5.5.1 Error: authentication not enabled");
}

/* SIGTERM: every session hears 421 before the process exits. */
void
smtp_session_shutdown_all(void)
{
	struct smtp_session	*s;
	struct evbuffer		*out;
	char			 line[512];
	int			 n;

	RB_FOREACH(s, smtp_session_tree, &sd->sessions) {
		if (s->state == SMTP_STATE_QUIT || s->tls != SMTP_TLS_NONE)
			continue;	/* tlsd is stopping too: just close */
		/* Best effort, never blocking: the socket is nonblocking. */
		out = bufferevent_get_output(s->bev);
		if (evbuffer_get_length(out) > 0)
			(void)evbuffer_write(out, s->fd);
		n = snprintf(line, sizeof(line), "421 4.3.2 %s Service "
		    "shutting down\r\n", smtp_hostname(s));
		if (n > 0 && (size_t)n < sizeof(line) &&
		    write(s->fd, line, n) == -1)
			log_debug("event=shutdown-write session=%016llx: %s",
			    (unsigned long long)s->id, strerror(errno));
	}
	log_info("event=shutdown sessions=%zu", sd->nsessions);
}
