/*
 * tlsd.c: the TLS process.  Receives certificates and keys from the
 * parent, then runs every TLS session of smtpd (and later of the delivery
 * workers) as a pure function of its pipes: ciphertext in, cleartext out
 * and back, with BearSSL's engine driven by tls_engine.c.
 * SECURITY: runs as _postern_tlsd in an empty chroot, not dumpable, with
 * no socket but its pipes; once the keys are loaded a seccomp filter
 * allows only what this loop needs, and anything else kills the process
 * (and so, fail closed, the daemon).  Keys are wiped on exit.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/tree.h>

#include <err.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"
#include "log.h"
#include "proc.h"
#include "proto.h"
#include "tls_engine.h"

#define TLSD_CHUNK		(32 * 1024)	/* bytes per frame to smtpd */
#define TLSD_INPUT_MAX		(1024 * 1024)	/* ciphertext not yet taken */
#define TLSD_CA_MAX		(16 * 1024 * 1024)

struct tlsd_conn {
	RB_ENTRY(tlsd_conn)	 node;
	uint64_t		 id;
	struct tls_session	*ts;
	uint8_t			*in;		/* ciphertext the engine */
	size_t			 inlen;		/* has not taken yet */
	size_t			 incap;
	uint8_t			*out;		/* cleartext it has not */
	size_t			 outlen;	/* taken yet */
	size_t			 outcap;
	int			 handshake_sent;
};

RB_HEAD(tlsd_tree, tlsd_conn);
int	tlsd_conn_cmp(struct tlsd_conn *, struct tlsd_conn *);
RB_PROTOTYPE(tlsd_tree, tlsd_conn, node, tlsd_conn_cmp);
RB_GENERATE(tlsd_tree, tlsd_conn, node, tlsd_conn_cmp);

static struct tlsd_tree		 conns = RB_INITIALIZER(&conns);
static struct tls_config	*tlsconf;
static struct imsgbuf		 ib_parent, ib_smtpd;
static struct event		 ev_parent, ev_smtpd, ev_sigterm;
static short			 smtpd_events;
static uint8_t			*ca_pem;
static size_t			 ca_len;

static void	tlsd_parent_dispatch(int, short, void *);
static void	tlsd_smtpd_dispatch(int, short, void *);
static void	tlsd_smtpd_update(void);
static void	tlsd_pump(struct tlsd_conn *);
static void	tlsd_seccomp(void);
static void	tlsd_sig(int, short, void *);

int
tlsd_conn_cmp(struct tlsd_conn *a, struct tlsd_conn *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

int
main(int argc, char *argv[])
{
	char	 root[PATH_MAX];
	int	 ch, fg = 0, verbose = 0;

	while ((ch = getopt(argc, argv, "dv")) != -1) {
		switch (ch) {
		case 'd':
			fg = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			exit(2);
		}
	}
	if (argc - optind != 1)
		errx(2, "usage: postern-tlsd [-dv] spool");
	log_init("tlsd", fg, verbose);
	if (snprintf(root, sizeof(root), "%s/%s", argv[optind],
	    PROC_SPOOL_EMPTY) >= (int)sizeof(root))
		fatalx("spool path too long");
	proc_sandbox(PROC_USER_TLSD, root);
	/* No core dumps and no ptrace of a process that holds keys. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl(PR_SET_DUMPABLE)");

	event_init();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal_set(&ev_sigterm, SIGTERM, tlsd_sig, NULL);
	signal_add(&ev_sigterm, NULL);
	if (fcntl(PROC_FD_PARENT, F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(PROC_FD_PEER, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl");
	imsgbuf_init(&ib_parent, PROC_FD_PARENT);
	imsgbuf_init(&ib_smtpd, PROC_FD_PEER);
	event_set(&ev_parent, PROC_FD_PARENT, EV_READ | EV_PERSIST,
	    tlsd_parent_dispatch, NULL);
	event_add(&ev_parent, NULL);
	event_dispatch();
	return 0;
}

/* Leave with the keys wiped. */
static __dead void
tlsd_exit(int status)
{
	struct tlsd_conn	*c, *next;

	RB_FOREACH_SAFE(c, tlsd_tree, &conns, next) {
		RB_REMOVE(tlsd_tree, &conns, c);
		tls_session_free(c->ts);
	}
	if (tlsconf != NULL)
		tls_config_free(tlsconf);
	exit(status);
}

static void
tlsd_sig(int sig, short ev, void *arg)
{
	log_debug("event=exit signal=%d", sig);
	tlsd_exit(0);
}

/* Keys and settings from the parent; after SETUP_END, serve smtpd. */
static void
tlsd_parent_dispatch(int fd, short ev, void *arg)
{
	struct imsg		 imsg;
	struct msg_tls_setup	 setup;
	struct msg_tls_pki	 k;
	struct msg_tls_bytes	 b;
	char			 err[512];
	uint8_t			*n;
	ssize_t			 r;
	int			 rv;

	r = imsgbuf_read(&ib_parent);
	if (r == -1 && errno != EAGAIN)
		fatal("parent: read");
	if (r == 0) {
		log_debug("parent closed the pipe: exiting");
		tlsd_exit(0);
	}
	while ((rv = imsg_get(&ib_parent, &imsg)) == 1) {
		if (smtpd_events != 0)
			fatalx("parent: message after setup");
		switch (imsg.hdr.type) {
		case IMSG_TLS_SETUP:
			if (proto_dec_tls_setup(&imsg, &setup) == -1 ||
			    tlsconf != NULL)
				fatalx("parent: malformed IMSG_TLS_SETUP");
			tlsconf = tls_config_new(setup.ciphers ==
			    CONF_TLS_CIPHERS_COMPAT ? TLS_CIPHERS_COMPAT :
			    TLS_CIPHERS_DEFAULT, setup.cache_bytes);
			if (tlsconf == NULL)
				fatalx("cannot create the TLS configuration");
			break;
		case IMSG_TLS_PKI:
			if (proto_dec_tls_pki(&imsg, &k) == -1 ||
			    tlsconf == NULL)
				fatalx("parent: malformed IMSG_TLS_PKI");
			if (tls_config_add_pki(tlsconf, k.name,
			    (const char *)k.cert, k.certlen,
			    (const char *)k.key, k.keylen, err,
			    sizeof(err)) == -1)
				fatalx("pki %s: %s", k.name, err);
			/* The frame held the key: wipe it now. */
			explicit_bzero(imsg.data, imsg.hdr.len);
			log_debug("event=pki name=%s", k.name);
			break;
		case IMSG_TLS_CA:
			if (proto_dec_tls_bytes(&imsg, &b) == -1 ||
			    b.len > TLSD_CA_MAX - ca_len)
				fatalx("parent: malformed IMSG_TLS_CA");
			if ((n = realloc(ca_pem, ca_len + b.len)) == NULL)
				fatal("ca");
			ca_pem = n;
			memcpy(ca_pem + ca_len, b.data, b.len);
			ca_len += b.len;
			break;
		case IMSG_TLS_SETUP_END:
			if (imsg_end(&imsg) == -1 || tlsconf == NULL)
				fatalx("parent: malformed IMSG_TLS_SETUP_END");
			if (ca_len > 0 && tls_config_add_cas(tlsconf,
			    (const char *)ca_pem, ca_len, err,
			    sizeof(err)) == -1)
				log_warnx("tls ca: %s: outbound TLS will not "
				    "verify", err);
			free(ca_pem);
			ca_pem = NULL;
			ca_len = 0;
			tlsd_seccomp();
			smtpd_events = EV_READ;
			event_set(&ev_smtpd, PROC_FD_PEER,
			    EV_READ | EV_PERSIST, tlsd_smtpd_dispatch, NULL);
			event_add(&ev_smtpd, NULL);
			if (getenv("POSTERN_TEST_TLSD_OPEN") != NULL) {
				/* Test hook: prove that the filter kills. */
				log_info("event=test-hook action=open");
				(void)open("/etc/passwd", O_RDONLY);
				log_warnx("event=test-hook error=\"open was "
				    "not stopped by the filter\"");
			}
			break;
		default:
			fatalx("parent: unexpected message type %u",
			    imsg.hdr.type);
		}
		imsg_free(&imsg);
	}
	if (rv == -1)
		fatalx("parent: malformed frame");
}

/*
 * Only the calls this loop makes once running: I/O on the pipes, the
 * event loop, memory, time and randomness.  No open, no socket, no exec.
 */
static void
tlsd_seccomp(void)
{
	static const int	 allowed[] = {
		SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv),
		SCMP_SYS(writev), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg),
		SCMP_SYS(sendto), SCMP_SYS(close),
		SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
		SCMP_SYS(epoll_ctl), SCMP_SYS(poll), SCMP_SYS(ppoll),
		SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
		SCMP_SYS(time), SCMP_SYS(getrandom),
		SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap),
		SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(mprotect),
		SCMP_SYS(futex), SCMP_SYS(getpid), SCMP_SYS(gettid),
		SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
		SCMP_SYS(rt_sigaction), SCMP_SYS(sigaltstack),
		SCMP_SYS(tgkill), SCMP_SYS(sched_yield),
		SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
		SCMP_SYS(fcntl), SCMP_SYS(exit), SCMP_SYS(exit_group),
	};
	scmp_filter_ctx	 ctx;
	size_t		 i;

	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		fatalx("seccomp_init failed");
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0) < 0)
			fatalx("seccomp_rule_add failed");
	if (seccomp_load(ctx) < 0)
		fatalx("seccomp_load failed");
	seccomp_release(ctx);
	log_debug("event=seccomp status=enforcing");
}

static void
tlsd_send(uint16_t type, uint64_t id, const void *data, size_t len)
{
	if (proto_compose_bytes(&ib_smtpd, type, id, data, len) == -1)
		fatal("compose tls bytes");
}

static void
tlsd_closed(struct tlsd_conn *c, int failed, const char *reason)
{
	struct imsg_payload	 p;
	struct msg_tls_closed	 m;

	memset(&m, 0, sizeof(m));
	m.failed = failed;
	strlcpy(m.reason, reason, sizeof(m.reason));
	imsg_payload_init(&p);
	proto_enc_tls_closed(&p, &m);
	if (imsg_compose_payload(&ib_smtpd, IMSG_TLS_CLOSED, c->id, -1,
	    &p) == -1)
		fatal("compose tls closed");
	imsg_payload_free(&p);
	RB_REMOVE(tlsd_tree, &conns, c);
	tls_session_free(c->ts);
	free(c->in);
	if (c->out != NULL)
		explicit_bzero(c->out, c->outcap);
	free(c->out);
	free(c);
}

static int
tlsd_append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *data,
    size_t n)
{
	size_t	 ncap;
	uint8_t	*nb;

	if (n > TLSD_INPUT_MAX - *len)
		return -1;
	if (*len + n > *cap) {
		ncap = *cap ? *cap : 4096;
		while (ncap < *len + n)
			ncap *= 2;
		if ((nb = realloc(*buf, ncap)) == NULL)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	return 0;
}

/* Move bytes through the engine until it can do nothing more. */
static void
tlsd_pump(struct tlsd_conn *c)
{
	struct msg_tls_handshake	 h;
	struct imsg_payload		 p;
	const uint8_t			*d;
	size_t				 len;
	ssize_t				 n;
	int				 progress, resumed;

	do {
		progress = 0;
		if (c->inlen > 0) {
			if ((n = tls_session_feed(c->ts, c->in, c->inlen)) > 0) {
				memmove(c->in, c->in + n, c->inlen - n);
				c->inlen -= n;
				progress = 1;
			}
		}
		while ((d = tls_session_pending(c->ts, &len)) != NULL &&
		    len > 0) {
			if (len > TLSD_CHUNK)
				len = TLSD_CHUNK;
			tlsd_send(IMSG_TLS_CIPHER, c->id, d, len);
			tls_session_sent(c->ts, len);
			progress = 1;
		}
		while ((d = tls_session_read(c->ts, &len)) != NULL &&
		    len > 0) {
			if (len > TLSD_CHUNK)
				len = TLSD_CHUNK;
			tlsd_send(IMSG_TLS_CLEAR, c->id, d, len);
			tls_session_consumed(c->ts, len);
			progress = 1;
		}
		if (c->outlen > 0 &&
		    tls_session_state(c->ts) == TLS_STATE_OPEN) {
			if ((n = tls_session_write(c->ts, c->out,
			    c->outlen)) > 0) {
				memmove(c->out, c->out + n, c->outlen - n);
				c->outlen -= n;
				progress = 1;
			}
			if (c->outlen == 0)
				tls_session_flush(c->ts);
		}
	} while (progress);

	switch (tls_session_state(c->ts)) {
	case TLS_STATE_OPEN:
		if (c->handshake_sent)
			break;
		c->handshake_sent = 1;
		memset(&h, 0, sizeof(h));
		if (tls_session_info(c->ts, h.version, sizeof(h.version),
		    h.suite, sizeof(h.suite), h.sni, sizeof(h.sni),
		    &resumed) == -1)
			fatalx("tls_session_info failed");
		h.resumed = resumed ? 1 : 0;
		h.verified = tls_session_verified(c->ts, h.why,
		    sizeof(h.why)) == 1;
		imsg_payload_init(&p);
		proto_enc_tls_handshake(&p, &h);
		if (imsg_compose_payload(&ib_smtpd, IMSG_TLS_HANDSHAKE, c->id,
		    -1, &p) == -1)
			fatal("compose handshake");
		imsg_payload_free(&p);
		break;
	case TLS_STATE_FAILED:
		tlsd_closed(c, 1, tls_session_error(c->ts));
		break;
	case TLS_STATE_CLOSED:
		tlsd_closed(c, 0, "closed");
		break;
	case TLS_STATE_HANDSHAKE:
		break;
	}
}

static void
tlsd_smtpd_imsg(struct imsg *imsg)
{
	struct tlsd_conn	 key, *c;
	struct msg_tls_open	 o;
	struct msg_tls_bytes	 b;
	struct msg_tls_close	 cl;

	key.id = imsg->hdr.id;
	c = RB_FIND(tlsd_tree, &conns, &key);
	switch (imsg->hdr.type) {
	case IMSG_TLS_OPEN:
		if (proto_dec_tls_open(imsg, &o) == -1 || c != NULL)
			fatalx("smtpd: malformed IMSG_TLS_OPEN");
		if ((c = calloc(1, sizeof(*c))) == NULL)
			fatal("tls session");
		c->id = imsg->hdr.id;
		c->ts = o.mode == TLS_OPEN_SERVER ?
		    tls_session_server(tlsconf, o.name) :
		    tls_session_client(tlsconf, o.name);
		if (c->ts == NULL)
			fatalx("cannot create a TLS session");
		RB_INSERT(tlsd_tree, &conns, c);
		tlsd_pump(c);
		break;
	case IMSG_TLS_CIPHER:
		if (proto_dec_tls_bytes(imsg, &b) == -1)
			fatalx("smtpd: malformed IMSG_TLS_CIPHER");
		if (c == NULL)
			break;	/* closed meanwhile; smtpd will know */
		if (tlsd_append(&c->in, &c->inlen, &c->incap, b.data,
		    b.len) == -1) {
			tlsd_closed(c, 1, "peer sends faster than it reads");
			break;
		}
		tlsd_pump(c);
		break;
	case IMSG_TLS_CLEAR:
		if (proto_dec_tls_bytes(imsg, &b) == -1)
			fatalx("smtpd: malformed IMSG_TLS_CLEAR");
		if (c == NULL)
			break;
		if (tlsd_append(&c->out, &c->outlen, &c->outcap, b.data,
		    b.len) == -1) {
			tlsd_closed(c, 1, "too much output pending");
			break;
		}
		tlsd_pump(c);
		break;
	case IMSG_TLS_CLOSE:
		if (proto_dec_tls_close(imsg, &cl) == -1)
			fatalx("smtpd: malformed IMSG_TLS_CLOSE");
		if (c == NULL)
			break;
		if (cl.how == TLS_CLOSE_FORGET) {
			RB_REMOVE(tlsd_tree, &conns, c);
			tls_session_free(c->ts);
			free(c->in);
			free(c->out);
			free(c);
			break;
		}
		tls_session_close(c->ts);
		tlsd_pump(c);
		if (RB_FIND(tlsd_tree, &conns, &key) != NULL)
			tlsd_closed(c, 0, "closed");
		break;
	default:
		fatalx("smtpd: unexpected message type %u", imsg->hdr.type);
	}
}

static void
tlsd_smtpd_update(void)
{
	short	 events = EV_READ;

	if (imsgbuf_queued(&ib_smtpd) > 0)
		events |= EV_WRITE;
	if (events == smtpd_events)
		return;
	event_del(&ev_smtpd);
	event_set(&ev_smtpd, PROC_FD_PEER, events | EV_PERSIST,
	    tlsd_smtpd_dispatch, NULL);
	event_add(&ev_smtpd, NULL);
	smtpd_events = events;
}

/* smtpd gone means the parent is stopping us: leave quietly. */
static void
tlsd_write_failed(void)
{
	if (errno == EPIPE || errno == ECONNRESET) {
		log_debug("smtpd is gone: exiting");
		tlsd_exit(0);
	}
	fatal("smtpd: write");
}

static void
tlsd_smtpd_dispatch(int fd, short ev, void *arg)
{
	struct imsg	 imsg;
	ssize_t		 n;
	int		 rv;

	if (ev & EV_WRITE) {
		if (imsgbuf_write(&ib_smtpd) == -1)
			tlsd_write_failed();
	}
	if (ev & EV_READ) {
		n = imsgbuf_read(&ib_smtpd);
		if (n == -1 && errno != EAGAIN)
			fatal("smtpd: read");
		if (n == 0) {
			log_debug("smtpd closed the pipe: exiting");
			tlsd_exit(0);
		}
		while ((rv = imsg_get(&ib_smtpd, &imsg)) == 1) {
			tlsd_smtpd_imsg(&imsg);
			imsg_free(&imsg);
		}
		if (rv == -1)
			fatalx("smtpd: malformed frame");
	}
	/* Write at once what the engines produced: one syscall for all. */
	if (imsgbuf_queued(&ib_smtpd) > 0 && imsgbuf_write(&ib_smtpd) == -1)
		tlsd_write_failed();
	tlsd_smtpd_update();
}
