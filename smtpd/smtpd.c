/*
 * smtpd.c: the SMTP server process: receives its configuration and
 * listening sockets from the parent, drops privileges, accepts clients
 * and relays each session's transaction to queue.
 * SECURITY: runs as _postern_smtpd in an empty chroot; holds no key, no
 * file, no database.  Frames from the parent and queue are decoded
 * strictly; a malformed one is fatal.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <err.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "proc.h"
#include "proto.h"
#include "smtpd.h"

static struct smtpd_state	 state;
struct smtpd_state		*sd = &state;

static struct conf_wire		*wire;
static struct event		 ev_sigterm, ev_sigint;
static int			 pending_fds[256];
static uint32_t			 pending_idx[256];
static size_t			 npending;

static void	smtpd_parent_dispatch(int, short, void *);
static void	smtpd_queue_dispatch(int, short, void *);
static void	smtpd_accept(int, short, void *);
static void	smtpd_resume_accept(int, short, void *);
static void	smtpd_start_listeners(void);
static void	smtpd_sig(int, short, void *);
static void	smtpd_worker_dispatch(int, short, void *);
static void	smtpd_pause(struct imsg *);
static void	smtpd_stats(int, short, void *);

static struct event		 ev_stats;

int
main(int argc, char *argv[])
{
	struct rlimit	 rl;
	int		 ch, fg = 0, verbose = 0;

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
		errx(2, "usage: postern-smtpd [-dv] spool");
	log_init("smtpd", fg, verbose);

	/* As many descriptors as the hard limit allows, for sessions. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	{
		char	 root[PATH_MAX];

		if (snprintf(root, sizeof(root), "%s/%s", argv[optind],
		    PROC_SPOOL_EMPTY) >= (int)sizeof(root))
			fatalx("spool path too long");
		proc_sandbox(PROC_USER_SMTPD, root);
	}

	sd->base = event_init();
	TAILQ_INIT(&sd->listeners);
	RB_INIT(&sd->sessions);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal_set(&ev_sigterm, SIGTERM, smtpd_sig, NULL);
	signal_set(&ev_sigint, SIGINT, smtpd_sig, NULL);
	signal_add(&ev_sigterm, NULL);
	signal_add(&ev_sigint, NULL);

	if (fcntl(PROC_FD_PARENT, F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(PROC_FD_PEER, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl");
	imsgbuf_init(&sd->parent, PROC_FD_PARENT);
	imsgbuf_init(&sd->queue, PROC_FD_PEER);
	event_set(&sd->ev_parent, PROC_FD_PARENT, EV_READ | EV_PERSIST,
	    smtpd_parent_dispatch, NULL);
	event_add(&sd->ev_parent, NULL);

	event_dispatch();
	return 0;
}

static void
smtpd_parent_dispatch(int fd, short ev, void *arg)
{
	struct imsg		 imsg;
	struct msg_listener_fd	 l;
	char			 err[CONF_ERRLEN];
	ssize_t			 n;
	int			 rv;

	n = imsgbuf_read(&sd->parent);
	if (n == -1 && errno != EAGAIN)
		fatal("parent: read");
	if (n == 0) {
		log_debug("parent closed the pipe: exiting");
		exit(0);
	}
	while ((rv = imsg_get(&sd->parent, &imsg)) == 1) {
		switch (imsg.hdr.type) {
		case IMSG_CONF_BLOB:
			if (sd->conf != NULL)
				fatalx("parent: second configuration");
			if (wire == NULL &&
			    (wire = proc_conf_wire_new()) == NULL)
				fatal("conf");
			proc_conf_wire_blob(wire, &imsg);
			break;
		case IMSG_CONF_END:
			if (wire == NULL || sd->conf != NULL)
				fatalx("parent: unexpected configuration end");
			sd->conf = proc_conf_wire_end(wire, &imsg, err,
			    sizeof(err));
			proc_conf_wire_free(wire);
			wire = NULL;
			if (sd->conf == NULL)
				fatalx("configuration: %s", err);
			smtpd_start_listeners();
			break;
		case IMSG_TLS_WORKER_FD: {
			struct msg_tls_worker_fd	 w;
			struct smtpd_worker		*wk;

			if (proto_dec_tls_worker_fd(&imsg, &w) == -1 ||
			    imsg.fd == -1 || sd->nworkers == SMTPD_MAXWORKERS ||
			    w.index != (uint32_t)sd->nworkers)
				fatalx("parent: malformed IMSG_TLS_WORKER_FD");
			wk = &sd->workers[sd->nworkers];
			wk->index = sd->nworkers++;
			if (fcntl(imsg.fd, F_SETFL, O_NONBLOCK) == -1)
				fatal("fcntl");
			imsgbuf_init(&wk->ib, imsg.fd);
			imsg.fd = -1;
			wk->events = 0;
			smtpd_worker_update(wk);
			break;
		}
		case IMSG_CTL_LOG: {
			struct msg_ctl_what	 w;

			if (proto_dec_ctl_what(&imsg, &w) == -1 || w.what > 1)
				fatalx("parent: malformed IMSG_CTL_LOG");
			log_setverbose(w.what);
			break;
		}
		case IMSG_LISTENER_FD:
			if (proto_dec_listener_fd(&imsg, &l) == -1 ||
			    imsg.fd == -1 || npending == 256)
				fatalx("parent: malformed IMSG_LISTENER_FD");
			pending_fds[npending] = imsg.fd;
			pending_idx[npending++] = l.index;
			imsg.fd = -1;
			smtpd_start_listeners();
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

/* Listen on every socket received so far, once the config is here. */
static void
smtpd_start_listeners(void)
{
	struct smtp_listener	*sl;
	struct listen_conf	*lc;
	uint32_t		 i;
	size_t			 k;

	if (sd->conf == NULL)
		return;
	if (!sd->running) {
		struct timeval	 tv = { 1, 0 };

		sd->running = 1;
		evtimer_set(&ev_stats, smtpd_stats, NULL);
		evtimer_add(&ev_stats, &tv);
		event_set(&sd->ev_queue, PROC_FD_PEER, EV_READ | EV_PERSIST,
		    smtpd_queue_dispatch, NULL);
		event_add(&sd->ev_queue, NULL);
		sd->queue_events = EV_READ;
	}
	for (k = 0; k < npending; k++) {
		i = 0;
		TAILQ_FOREACH(lc, &sd->conf->listeners, entry)
			if (i++ == pending_idx[k])
				break;
		if (lc == NULL)
			fatalx("parent: listener index %u out of range",
			    pending_idx[k]);
		if ((sl = calloc(1, sizeof(*sl))) == NULL)
			fatal("listener");
		sl->fd = pending_fds[k];
		sl->conf = lc;
		event_set(&sl->ev, sl->fd, EV_READ | EV_PERSIST, smtpd_accept,
		    sl);
		event_add(&sl->ev, NULL);
		evtimer_set(&sl->pause, smtpd_resume_accept, sl);
		TAILQ_INSERT_TAIL(&sd->listeners, sl, entry);
		if (lc->is_socket)
			log_debug("event=listening path=%s", lc->path);
		else
			log_debug("event=listening port=%u", lc->port);
	}
	npending = 0;
}

static void
smtpd_accept(int fd, short ev, void *arg)
{
	struct smtp_listener	*sl = arg;
	struct sockaddr_storage	 ss;
	struct timeval		 tv = { 1, 0 };
	socklen_t		 len = sizeof(ss);
	int			 s;

	if ((s = accept4(fd, (struct sockaddr *)&ss, &len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of descriptors: stop accepting for a while. */
			log_warn("accept: pausing the listener");
			event_del(&sl->ev);
			evtimer_add(&sl->pause, &tv);
		} else if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("accept");
		return;
	}
	smtp_session_accept(sl, s, &ss);
}

static void
smtpd_resume_accept(int fd, short ev, void *arg)
{
	struct smtp_listener	*sl = arg;

	event_add(&sl->ev, NULL);
}

/* Watch the queue pipe for writing only while output is queued. */
void
smtpd_queue_update(void)
{
	short	 events = EV_READ;

	if (imsgbuf_queued(&sd->queue) > 0)
		events |= EV_WRITE;
	if (events == sd->queue_events)
		return;
	event_del(&sd->ev_queue);
	event_set(&sd->ev_queue, PROC_FD_PEER, events | EV_PERSIST,
	    smtpd_queue_dispatch, NULL);
	event_add(&sd->ev_queue, NULL);
	sd->queue_events = events;
}

static void
smtpd_queue_dispatch(int fd, short ev, void *arg)
{
	struct imsg	 imsg;
	size_t		 before;
	ssize_t		 n;
	int		 rv;

	if (ev & EV_WRITE) {
		before = imsgbuf_queued(&sd->queue);
		if (imsgbuf_write(&sd->queue) == -1) {
			if (errno == EPIPE || errno == ECONNRESET) {
				log_debug("queue is gone: exiting");
				exit(0);
			}
			fatal("queue: write");
		}
		if (before >= SMTPD_QUEUE_HIWAT &&
		    imsgbuf_queued(&sd->queue) < SMTPD_QUEUE_HIWAT)
			smtp_session_resume_all();
	}
	if (ev & EV_READ) {
		n = imsgbuf_read(&sd->queue);
		if (n == -1 && errno != EAGAIN)
			fatal("queue: read");
		if (n == 0) {
			log_debug("queue closed the pipe: exiting");
			exit(0);
		}
		while ((rv = imsg_get(&sd->queue, &imsg)) == 1) {
			switch (imsg.hdr.type) {
			case IMSG_SMTP_MAIL_RESULT:
			case IMSG_SMTP_RCPT_RESULT:
			case IMSG_SMTP_COMMIT_RESULT:
				smtp_session_queue_reply(&imsg);
				break;
			case IMSG_CTL_PAUSE:
			case IMSG_CTL_RESUME:
				smtpd_pause(&imsg);
				break;
			default:
				fatalx("queue: unexpected message type %u",
				    imsg.hdr.type);
			}
			imsg_free(&imsg);
		}
		if (rv == -1)
			fatalx("queue: malformed frame");
	}
	smtpd_queue_update();
}

/* Once a second, what changed goes to queue for show stats. */
static void
smtpd_stats(int fd, short ev, void *arg)
{
	static uint64_t		 last[5] = { -1, -1, -1, -1, -1 };
	static const char	*names[5] = {
		"smtp_sessions", "smtp_sessions_total", "tls_sessions",
		"tls_sessions_total", "tls_handshake_failures_total",
	};
	struct timeval		 tv = { 1, 0 };
	struct imsg_payload	 p;
	struct msg_ctl_stat	 st;
	uint64_t		 now[5];
	int			 i;

	now[0] = sd->nsessions;
	now[1] = sd->sessions_total;
	now[2] = sd->tls_now;
	now[3] = sd->tls_total;
	now[4] = sd->tls_failed;
	for (i = 0; i < 5; i++) {
		if (now[i] == last[i])
			continue;
		last[i] = now[i];
		memset(&st, 0, sizeof(st));
		strlcpy(st.name, names[i], sizeof(st.name));
		st.value = now[i];
		imsg_payload_init(&p);
		proto_enc_ctl_stat(&p, &st);
		if (imsg_compose_payload(&sd->queue, IMSG_STATS_SET, 0, -1,
		    &p) == -1)
			fatal("compose stats");
		imsg_payload_free(&p);
	}
	smtpd_queue_update();
	evtimer_add(&ev_stats, &tv);
}

/* posternctl pause|resume smtp: stop or start accepting; sessions that
 * are open go on. */
static void
smtpd_pause(struct imsg *imsg)
{
	struct msg_ctl_what	 w;
	struct smtp_listener	*sl;
	int			 pause = imsg->hdr.type == IMSG_CTL_PAUSE;

	if (proto_dec_ctl_what(imsg, &w) == -1 || w.what != CTL_WHAT_SMTP)
		fatalx("queue: malformed pause");
	TAILQ_FOREACH(sl, &sd->listeners, entry) {
		evtimer_del(&sl->pause);
		if (pause)
			event_del(&sl->ev);
		else
			event_add(&sl->ev, NULL);
	}
	log_info("event=%s what=smtp", pause ? "pause" : "resume");
}

/* Watch a worker's pipe for writing only while output is queued. */
void
smtpd_worker_update(struct smtpd_worker *wk)
{
	short	 events = EV_READ;

	if (imsgbuf_queued(&wk->ib) > 0)
		events |= EV_WRITE;
	if (events == wk->events)
		return;
	if (wk->events != 0)
		event_del(&wk->ev);
	event_set(&wk->ev, wk->ib.fd, events | EV_PERSIST,
	    smtpd_worker_dispatch, wk);
	event_add(&wk->ev, NULL);
	wk->events = events;
}

static void
smtpd_worker_dispatch(int fd, short ev, void *arg)
{
	struct smtpd_worker	*wk = arg;
	struct imsg		 imsg;
	ssize_t			 n;
	int			 rv;

	if (ev & EV_WRITE) {
		if (imsgbuf_write(&wk->ib) == -1) {
			if (errno == EPIPE || errno == ECONNRESET) {
				log_debug("tlsd is gone: exiting");
				exit(0);
			}
			fatal("tlsd: write");
		}
	}
	if (ev & EV_READ) {
		n = imsgbuf_read(&wk->ib);
		if (n == -1 && errno != EAGAIN)
			fatal("tlsd: read");
		if (n == 0) {
			log_debug("tlsd closed the pipe: exiting");
			exit(0);
		}
		while ((rv = imsg_get(&wk->ib, &imsg)) == 1) {
			smtp_session_tls_imsg(wk, &imsg);
			imsg_free(&imsg);
		}
		if (rv == -1)
			fatalx("tlsd: malformed frame");
	}
	smtpd_worker_update(wk);
}

static void
smtpd_sig(int sig, short ev, void *arg)
{
	smtp_session_shutdown_all();
	exit(0);
}
