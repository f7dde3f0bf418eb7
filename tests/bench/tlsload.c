/*
 * tlsload.c: the TLS load client of tests/bench/bench.py.  Threads of
 * blocking OpenSSL connections to one SMTPS port, either doing full or
 * resumed handshakes (220, QUIT, 221) for a fixed time, or sending a fixed
 * number of messages; counts, errors and its own CPU time go to stdout.
 * Thread i connects from 127.0.0.(1 + i % -a), so that the clients look
 * like different hosts to a server that places sessions by address.
 * SECURITY: a test tool run by the bench as root against loopback only;
 * it trusts nothing the server sends beyond bounded reply lines, and
 * verifies the server certificate against the bench's own CA file.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define TL_MAXTHREADS	256
#define TL_LINEMAX	1024		/* one reply line, CRLF included */
#define TL_BUFSZ	4096
#define TL_IOTIMEOUT	30		/* seconds per read or write */
#define TL_MAXERRSHOWN	10
#define TL_MAXSOURCES	250		/* 127.0.0.1 to 127.0.0.250 */

enum tl_mode {
	TL_FULL,	/* new handshake on every connection */
	TL_RESUME,	/* offer the session of the thread's first connection */
	TL_SMTP		/* send messages */
};

struct tl_conn {
	int		 fd;
	SSL		*ssl;
	char		 buf[TL_BUFSZ];
	size_t		 len;		/* bytes in buf */
	size_t		 off;		/* first unread byte */
	char		 line[TL_LINEMAX + 1];
};

struct tl_thread {
	pthread_t	 tid;
	int		 index;
	SSL_SESSION	*first;		/* TL_RESUME: offered every time */
	/* Read by the main thread while running: atomics. */
	uint64_t	 conns;		/* connections that completed */
	uint64_t	 reused;	/* of which resumed a session */
	uint64_t	 failed;	/* connections that failed */
	uint64_t	 messages;	/* TL_SMTP: messages answered 250 */
};

static enum tl_mode	 tl_mode = TL_FULL;
static struct sockaddr_in tl_addr;
static int		 tl_sources = 1;	/* source addresses used */
static SSL_CTX		*tl_ctx;
static const char	*tl_servername = "bench.test";
static const char	*tl_from = "bench@bench.test";
static const char	*tl_rcpt = "user@bench.test";
static int		 tl_stop;		/* atomic */
static uint64_t		 tl_msgs_left;		/* atomic, TL_SMTP */
static int		 tl_per_conn = 1;
static size_t		 tl_size = 4096;
static char		*tl_body;		/* message, dot-terminated */
static size_t		 tl_bodylen;
static pthread_mutex_t	 tl_errlock = PTHREAD_MUTEX_INITIALIZER;
static int		 tl_errshown;
static pthread_mutex_t	 tl_paramlock = PTHREAD_MUTEX_INITIALIZER;
static char		 tl_params[128];	/* version suite group */

static void	 tl_usage(void) __attribute__((noreturn));
static void	 tl_error(int, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 tl_conn_close(struct tl_conn *, int);
static int	 tl_connect(struct tl_thread *, struct tl_conn *);
static int	 tl_read_line(struct tl_conn *);
static int	 tl_reply(struct tl_conn *, int, const char *, int);
static int	 tl_write(struct tl_conn *, const char *, size_t);
static int	 tl_cmd(struct tl_conn *, int, int, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
static void	 tl_note_params(SSL *);
static void	 tl_sleep(double);
static int	 tl_handshake_conn(struct tl_thread *);
static int	 tl_smtp_conn(struct tl_thread *, int);
static void	*tl_thread_main(void *);
static void	 tl_make_body(void);
static double	 tl_now(void);
static double	 tl_cpu(void);
static void	 tl_report(const char *, struct tl_thread *, int, double);

static void
tl_usage(void)
{
	fprintf(stderr, "usage: tlsload -p port -C cafile [-m full|resume|smtp]"
	    " [-c threads]\n\t[-a source-addresses] [-w warmup-seconds]"
	    " [-d seconds] [-N messages]\n\t[-k per-connection] [-s size]"
	    " [-n servername] [-f from] [-t rcpt]\n");
	exit(2);
}

/* One line on stderr about a failed connection, for the first few only. */
static void
tl_error(int index, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512];
	unsigned long e;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&tl_errlock);
	if (tl_errshown++ < TL_MAXERRSHOWN) {
		fprintf(stderr, "tlsload: thread %d: %s", index, msg);
		while ((e = ERR_get_error()) != 0) {
			char	 eb[256];

			ERR_error_string_n(e, eb, sizeof(eb));
			fprintf(stderr, "; %s", eb);
		}
		fputc('\n', stderr);
	}
	pthread_mutex_unlock(&tl_errlock);
	ERR_clear_error();
}

/* Sleep for seconds, resuming after signals. */
static void
tl_sleep(double seconds)
{
	struct timespec	 ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static double
tl_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* User plus system CPU seconds of the whole process, all threads. */
static double
tl_cpu(void)
{
	struct rusage	 ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Close after a clean QUIT (orderly TLS close) or abort. */
static void
tl_conn_close(struct tl_conn *c, int clean)
{
	if (c->ssl != NULL) {
		if (clean)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
}

/* TCP connect and TLS handshake, offering th->first in resume mode. */
static int
tl_connect(struct tl_thread *th, struct tl_conn *c)
{
	struct timeval	 tv = { TL_IOTIMEOUT, 0 };
	struct sockaddr_in src;
	int		 one = 1;

	c->fd = -1;
	c->ssl = NULL;
	c->len = c->off = 0;
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1) {
		tl_error(th->index, "socket: %s", strerror(errno));
		return -1;
	}
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (tl_sources > 1) {
		/* The port is picked at connect(), by the whole 4-tuple. */
		(void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
		    &one, sizeof(one));
		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(INADDR_LOOPBACK +
		    (uint32_t)(th->index % tl_sources));
		if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) == -1) {
			tl_error(th->index, "bind: %s", strerror(errno));
			goto fail;
		}
	}
	if (connect(c->fd, (struct sockaddr *)&tl_addr, sizeof(tl_addr)) ==
	    -1) {
		tl_error(th->index, "connect: %s", strerror(errno));
		goto fail;
	}
	if ((c->ssl = SSL_new(tl_ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1 ||
	    SSL_set_tlsext_host_name(c->ssl, tl_servername) != 1 ||
	    SSL_set1_host(c->ssl, tl_servername) != 1) {
		tl_error(th->index, "SSL setup failed");
		goto fail;
	}
	if (tl_mode == TL_RESUME && th->first != NULL &&
	    SSL_set_session(c->ssl, th->first) != 1) {
		tl_error(th->index, "SSL_set_session failed");
		goto fail;
	}
	errno = 0;
	if (SSL_connect(c->ssl) != 1) {
		tl_error(th->index, "handshake failed (%s)",
		    errno ? strerror(errno) : "no errno");
		goto fail;
	}
	return 0;
 fail:
	tl_conn_close(c, 0);
	return -1;
}

/* Next CRLF-terminated line into c->line; -1 on EOF, error or overlong. */
static int
tl_read_line(struct tl_conn *c)
{
	size_t	 n = 0;
	int	 r;

	for (;;) {
		while (c->off < c->len) {
			char	 ch = c->buf[c->off++];

			if (n == TL_LINEMAX)
				return -1;
			c->line[n++] = ch;
			if (ch == '\n') {
				while (n > 0 && (c->line[n - 1] == '\n' ||
				    c->line[n - 1] == '\r'))
					n--;
				c->line[n] = '\0';
				return 0;
			}
		}
		if ((r = SSL_read(c->ssl, c->buf, sizeof(c->buf))) <= 0)
			return -1;
		c->len = r;
		c->off = 0;
	}
}

/* Read a whole (multi-line) reply and check its code; -1 if not it. */
static int
tl_reply(struct tl_conn *c, int want, const char *what, int index)
{
	int	 code;

	for (;;) {
		if (tl_read_line(c) == -1) {
			tl_error(index, "%s: no reply (%s)", what,
			    errno ? strerror(errno) : "connection closed");
			return -1;
		}
		if (strlen(c->line) < 3 || c->line[0] < '2' ||
		    c->line[0] > '5') {
			tl_error(index, "%s: malformed reply \"%.80s\"", what,
			    c->line);
			return -1;
		}
		if (c->line[3] != '-')
			break;
	}
	code = (c->line[0] - '0') * 100 + (c->line[1] - '0') * 10 +
	    (c->line[2] - '0');
	if (code != want) {
		tl_error(index, "%s: \"%.200s\"", what, c->line);
		return -1;
	}
	return 0;
}

static int
tl_write(struct tl_conn *c, const char *p, size_t len)
{
	int	 r;

	while (len > 0) {
		r = SSL_write(c->ssl, p, len > INT_MAX ? INT_MAX : (int)len);
		if (r <= 0)
			return -1;
		p += r;
		len -= r;
	}
	return 0;
}

/* Send one command line and expect the reply code want. */
static int
tl_cmd(struct tl_conn *c, int index, int want, const char *fmt, ...)
{
	char	 line[512];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		return -1;
	memcpy(line + n, "\r\n", 2);
	if (tl_write(c, line, n + 2) == -1) {
		tl_error(index, "write \"%.40s\" failed", line);
		return -1;
	}
	line[n] = '\0';
	return tl_reply(c, want, line, index);
}

/* Remember what the first handshake negotiated, for the report. */
static void
tl_note_params(SSL *ssl)
{
	const char	*group;
	int		 nid;

	pthread_mutex_lock(&tl_paramlock);
	if (tl_params[0] == '\0') {
		nid = SSL_get_negotiated_group(ssl);
		group = nid > 0 ? OBJ_nid2sn(nid) : "none";
		snprintf(tl_params, sizeof(tl_params), "%s %s %s",
		    SSL_get_version(ssl), SSL_get_cipher_name(ssl),
		    group != NULL ? group : "unknown");
	}
	pthread_mutex_unlock(&tl_paramlock);
}

/* Connect, handshake, 220, QUIT, 221, close; 0 if all went well. */
static int
tl_handshake_conn(struct tl_thread *th)
{
	struct tl_conn	 c;

	if (tl_connect(th, &c) == -1)
		return -1;
	if (tl_reply(&c, 220, "greeting", th->index) == -1 ||
	    tl_cmd(&c, th->index, 221, "QUIT") == -1) {
		tl_conn_close(&c, 0);
		return -1;
	}
	tl_note_params(c.ssl);
	if (SSL_session_reused(c.ssl))
		__atomic_add_fetch(&th->reused, 1, __ATOMIC_RELAXED);
	if (tl_mode == TL_RESUME && th->first == NULL &&
	    (th->first = SSL_get1_session(c.ssl)) == NULL) {
		tl_error(th->index, "no session to resume");
		tl_conn_close(&c, 0);
		return -1;
	}
	tl_conn_close(&c, 1);
	return 0;
}

/* One connection carrying up to n messages; -1 on any failure. */
static int
tl_smtp_conn(struct tl_thread *th, int n)
{
	struct tl_conn	 c;
	int		 i;

	if (tl_connect(th, &c) == -1)
		return -1;
	if (tl_reply(&c, 220, "greeting", th->index) == -1 ||
	    tl_cmd(&c, th->index, 250, "EHLO client%d.bench.test", th->index) == -1)
		goto fail;
	tl_note_params(c.ssl);
	for (i = 0; i < n; i++) {
		if (tl_cmd(&c, th->index, 250, "MAIL FROM:<%s>", tl_from) == -1 ||
		    tl_cmd(&c, th->index, 250, "RCPT TO:<%s>", tl_rcpt) == -1 ||
		    tl_cmd(&c, th->index, 354, "DATA") == -1)
			goto fail;
		if (tl_write(&c, tl_body, tl_bodylen) == -1) {
			tl_error(th->index, "writing the message failed");
			goto fail;
		}
		if (tl_reply(&c, 250, "end of data", th->index) == -1)
			goto fail;
		__atomic_add_fetch(&th->messages, 1, __ATOMIC_RELAXED);
	}
	if (tl_cmd(&c, th->index, 221, "QUIT") == -1)
		goto fail;
	tl_conn_close(&c, 1);
	return 0;
 fail:
	tl_conn_close(&c, 0);
	return -1;
}

static void *
tl_thread_main(void *arg)
{
	struct tl_thread	*th = arg;
	uint64_t		 left, take;
	int			 r;

	while (!__atomic_load_n(&tl_stop, __ATOMIC_RELAXED)) {
		if (tl_mode == TL_SMTP) {
			/* Claim up to tl_per_conn of the messages left. */
			left = __atomic_load_n(&tl_msgs_left, __ATOMIC_RELAXED);
			do {
				if (left == 0)
					return NULL;
				take = left < (uint64_t)tl_per_conn ? left :
				    (uint64_t)tl_per_conn;
			} while (!__atomic_compare_exchange_n(&tl_msgs_left,
			    &left, left - take, 0, __ATOMIC_RELAXED,
			    __ATOMIC_RELAXED));
			r = tl_smtp_conn(th, (int)take);
			if (r == -1) {
				/* A failed message is a failed run: stop. */
				__atomic_add_fetch(&th->failed, 1,
				    __ATOMIC_RELAXED);
				__atomic_store_n(&tl_stop, 1, __ATOMIC_RELAXED);
				return NULL;
			}
		} else
			r = tl_handshake_conn(th);
		if (r == 0)
			__atomic_add_fetch(&th->conns, 1, __ATOMIC_RELAXED);
		else {
			__atomic_add_fetch(&th->failed, 1, __ATOMIC_RELAXED);
			tl_sleep(0.01);	/* no hot loop against a dead port */
		}
	}
	return NULL;
}

/* Headers, size bytes of 78-column lines, and the final dot. */
static void
tl_make_body(void)
{
	static const char hdr[] =
	    "From: <%s>\r\nTo: <%s>\r\nSubject: tlsload bench\r\n\r\n";
	size_t	 cap, n, line;
	int	 h;

	cap = sizeof(hdr) + strlen(tl_from) + strlen(tl_rcpt) + tl_size +
	    tl_size / 78 * 2 + 16;
	if ((tl_body = malloc(cap)) == NULL) {
		perror("malloc");
		exit(1);
	}
	h = snprintf(tl_body, cap, hdr, tl_from, tl_rcpt);
	if (h < 0 || (size_t)h >= cap)
		exit(1);
	n = h;
	line = 0;
	for (size_t i = 0; i < tl_size; i++) {
		if (line == 78) {
			tl_body[n++] = '\r';
			tl_body[n++] = '\n';
			line = 0;
		}
		tl_body[n++] = 'a' + i % 26;
		line++;
	}
	memcpy(tl_body + n, "\r\n.\r\n", 5);
	tl_bodylen = n + 5;
}

/* key=value totals of all threads at this moment, one stdout line. */
static void
tl_report(const char *tag, struct tl_thread *th, int nth, double t0)
{
	uint64_t	 conns = 0, reused = 0, failed = 0, msgs = 0;

	for (int i = 0; i < nth; i++) {
		conns += __atomic_load_n(&th[i].conns, __ATOMIC_RELAXED);
		reused += __atomic_load_n(&th[i].reused, __ATOMIC_RELAXED);
		failed += __atomic_load_n(&th[i].failed, __ATOMIC_RELAXED);
		msgs += __atomic_load_n(&th[i].messages, __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&tl_paramlock);
	printf("%s time=%.6f cpu=%.6f conns=%llu reused=%llu failed=%llu "
	    "messages=%llu params=\"%s\"\n", tag, tl_now() - t0, tl_cpu(),
	    (unsigned long long)conns, (unsigned long long)reused,
	    (unsigned long long)failed, (unsigned long long)msgs, tl_params);
	pthread_mutex_unlock(&tl_paramlock);
	fflush(stdout);
}

int
main(int argc, char *argv[])
{
	struct tl_thread	*th;
	const char		*cafile = NULL, *errstr;
	double			 warmup = 1.0, duration = 10.0, t0;
	long long		 port = 0, messages = 0;
	int			 ch, nth = 10;

	while ((ch = getopt(argc, argv, "a:C:c:d:f:k:m:N:n:p:s:t:w:")) !=
	    -1) {
		errstr = NULL;
		switch (ch) {
		case 'a':
			tl_sources = atoi(optarg);
			if (tl_sources < 1 || tl_sources > TL_MAXSOURCES)
				errstr = "-a out of range";
			break;
		case 'C':
			cafile = optarg;
			break;
		case 'c':
			nth = atoi(optarg);
			if (nth < 1 || nth > TL_MAXTHREADS)
				errstr = "-c out of range";
			break;
		case 'd':
			duration = atof(optarg);
			if (!(duration > 0 && duration < 3600))
				errstr = "-d out of range";
			break;
		case 'f':
			tl_from = optarg;
			break;
		case 'k':
			tl_per_conn = atoi(optarg);
			if (tl_per_conn < 1 || tl_per_conn > 100000)
				errstr = "-k out of range";
			break;
		case 'm':
			if (strcmp(optarg, "full") == 0)
				tl_mode = TL_FULL;
			else if (strcmp(optarg, "resume") == 0)
				tl_mode = TL_RESUME;
			else if (strcmp(optarg, "smtp") == 0)
				tl_mode = TL_SMTP;
			else
				errstr = "unknown -m";
			break;
		case 'N':
			messages = atoll(optarg);
			if (messages < 1 || messages > 100000000)
				errstr = "-N out of range";
			break;
		case 'n':
			tl_servername = optarg;
			break;
		case 'p':
			port = atoll(optarg);
			if (port < 1 || port > 65535)
				errstr = "-p out of range";
			break;
		case 's':
			tl_size = (size_t)atoll(optarg);
			if (tl_size < 1 || tl_size > 64 * 1024 * 1024)
				errstr = "-s out of range";
			break;
		case 't':
			tl_rcpt = optarg;
			break;
		case 'w':
			warmup = atof(optarg);
			if (!(warmup >= 0 && warmup < 3600))
				errstr = "-w out of range";
			break;
		default:
			tl_usage();
		}
		if (errstr != NULL) {
			fprintf(stderr, "tlsload: %s\n", errstr);
			tl_usage();
		}
	}
	if (port == 0 || cafile == NULL || optind != argc ||
	    (tl_mode == TL_SMTP && messages == 0))
		tl_usage();
	signal(SIGPIPE, SIG_IGN);

	memset(&tl_addr, 0, sizeof(tl_addr));
	tl_addr.sin_family = AF_INET;
	tl_addr.sin_port = htons((uint16_t)port);
	tl_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	/* TLS 1.2 for both MTAs: the protocol Postern speaks. */
	if ((tl_ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(tl_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(tl_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(tl_ctx, cafile, NULL) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_verify(tl_ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(tl_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(tl_ctx, SSL_MODE_AUTO_RETRY);
	if (tl_mode == TL_SMTP) {
		tl_make_body();
		tl_msgs_left = (uint64_t)messages;
	}

	if ((th = calloc(nth, sizeof(*th))) == NULL) {
		perror("calloc");
		return 1;
	}
	t0 = tl_now();
	for (int i = 0; i < nth; i++) {
		th[i].index = i;
		if (pthread_create(&th[i].tid, NULL, tl_thread_main, &th[i]) !=
		    0) {
			fprintf(stderr, "tlsload: pthread_create failed\n");
			return 1;
		}
	}
	if (tl_mode != TL_SMTP) {
		/* The bench snapshots the server's CPU at each mark. */
		if (warmup > 0)
			tl_sleep(warmup);
		tl_report("start", th, nth, t0);
		tl_sleep(duration);
		tl_report("end", th, nth, t0);
		__atomic_store_n(&tl_stop, 1, __ATOMIC_RELAXED);
	} else
		tl_report("start", th, nth, t0);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i].tid, NULL);
	tl_report("done", th, nth, t0);
	for (int i = 0; i < nth; i++)
		if (th[i].first != NULL)
			SSL_SESSION_free(th[i].first);
	SSL_CTX_free(tl_ctx);
	free(tl_body);
	free(th);
	return 0;
}
