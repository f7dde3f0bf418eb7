/*
 * queue.c: the queue process.  Holds the rules and tables the parent
 * ships, answers smtpd's MAIL/RCPT questions, commits messages to the
 * SQLite store (group commit) before smtpd may say 250, and schedules
 * deliveries.
 * SECURITY: runs as _postern_queue chrooted to the spool, with no network
 * access; the only process that opens the queue database.  Anything
 * malformed from smtpd or the parent is fatal (fail closed).
 */
#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "proc.h"
#include "proto.h"
#include "queue.h"
#include "queue_db.h"

static struct queue_state	 state;
struct queue_state		*qs = &state;

static struct conf_wire		*wire;
static struct queue_user_tree	 wire_users = RB_INITIALIZER(&wire_users);
static struct event		 ev_sigterm, ev_sigint;

static void	queue_dispatch(int, short, void *);
static void	queue_parent_imsg(struct imsg *);
static void	queue_sig(int, short, void *);
static void	queue_peer_init(struct queue_peer *, int, const char *);

int
main(int argc, char *argv[])
{
	char	 err[512];
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
		errx(2, "usage: postern-queue [-dv] spool");
	log_init("queue", fg, verbose);

	proc_sandbox(PROC_USER_QUEUE, argv[optind]);
	if (queue_db_open(&qs->db, "/" PROC_SPOOL_QUEUE, err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	{
		int	 n = queue_db_recover(qs->db, time(NULL));

		if (n == -1)
			fatalx("cannot recover in-flight envelopes");
		if (n > 0)
			log_info("event=recover envelopes=%d", n);
	}
	qs->started = time(NULL);
	RB_INIT(&qs->users);

	event_init();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal_set(&ev_sigterm, SIGTERM, queue_sig, NULL);
	signal_set(&ev_sigint, SIGINT, queue_sig, NULL);
	signal_add(&ev_sigterm, NULL);
	signal_add(&ev_sigint, NULL);

	queue_peer_init(&qs->parent, PROC_FD_PARENT, "parent");
	/* smtpd is listened to once the configuration is here. */
	queue_peer_init(&qs->smtpd, PROC_FD_PEER, "smtpd");
	qs->smtpd.events = -1;
	queue_peer_update(&qs->parent);

	queue_smtp_init();
	queue_sched_init();
	queue_drop_init();
	event_dispatch();
	return 0;
}

static void
queue_peer_init(struct queue_peer *p, int fd, const char *name)
{
	if (fcntl(fd, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl");
	imsgbuf_init(&p->ib, fd);
	p->name = name;
	p->events = 0;
}

/* Watch for reading always, for writing while output is queued. */
void
queue_peer_update(struct queue_peer *p)
{
	short	 events = EV_READ;

	if (p->events == -1)
		return;		/* not yet listened to */
	if (imsgbuf_queued(&p->ib) > 0)
		events |= EV_WRITE;
	if (p->events == events)
		return;
	if (p->events != 0)
		event_del(&p->ev);
	p->events = events;
	event_set(&p->ev, p->ib.fd, events | EV_PERSIST, queue_dispatch, p);
	event_add(&p->ev, NULL);
}

static void
queue_dispatch(int fd, short ev, void *arg)
{
	struct queue_peer	*p = arg;
	struct imsg		 imsg;
	ssize_t			 n;
	int			 rv;

	if (ev & EV_WRITE) {
		if (imsgbuf_write(&p->ib) == -1) {
			/* A peer that is gone: the parent is stopping us. */
			if (errno == EPIPE || errno == ECONNRESET) {
				log_debug("%s is gone: exiting", p->name);
				exit(0);
			}
			fatal("%s: write", p->name);
		}
	}
	if (ev & EV_READ) {
		n = imsgbuf_read(&p->ib);
		if (n == -1 && errno != EAGAIN)
			fatal("%s: read", p->name);
		if (n == 0) {
			/* Our peer is gone: the parent stops everything. */
			log_debug("%s closed the pipe: exiting", p->name);
			exit(0);
		}
		while ((rv = imsg_get(&p->ib, &imsg)) == 1) {
			if (p == &qs->parent)
				queue_parent_imsg(&imsg);
			else
				queue_smtp_dispatch(&imsg);
			imsg_free(&imsg);
		}
		if (rv == -1)
			fatalx("%s: malformed frame", p->name);
	}
	queue_peer_update(&qs->parent);
	queue_peer_update(&qs->smtpd);
}

static void
queue_parent_imsg(struct imsg *imsg)
{
	struct msg_conf_user	 u;
	struct queue_user	*qu;
	struct postern_conf	*nconf;
	char			 err[CONF_ERRLEN];

	switch (imsg->hdr.type) {
	case IMSG_CONF_BLOB:
		if (wire == NULL && (wire = proc_conf_wire_new()) == NULL)
			fatal("conf");
		proc_conf_wire_blob(wire, imsg);
		break;
	case IMSG_CONF_USER:
		if (proto_dec_conf_user(imsg, &u) == -1)
			fatalx("parent: malformed IMSG_CONF_USER");
		if ((qu = calloc(1, sizeof(*qu))) == NULL)
			fatal("user");
		strlcpy(qu->name, u.name, sizeof(qu->name));
		qu->uid = u.uid;
		qu->gid = u.gid;
		if (RB_INSERT(queue_user_tree, &wire_users, qu) != NULL)
			free(qu);	/* duplicate name: first one wins */
		break;
	case IMSG_CONF_END:
		if (wire == NULL)
			fatalx("parent: configuration end without content");
		nconf = proc_conf_wire_end(wire, imsg, err, sizeof(err));
		proc_conf_wire_free(wire);
		wire = NULL;
		if (nconf == NULL) {
			if (qs->conf == NULL)
				fatalx("configuration: %s", err);
			log_warnx("event=reload status=failed error=\"%s\"",
			    err);
			queue_users_free(&wire_users);
			break;
		}
		if (qs->conf != NULL) {
			config_free(qs->conf);
			log_info("event=reload status=ok");
		}
		qs->conf = nconf;
		queue_users_free(&qs->users);
		qs->users = wire_users;
		RB_INIT(&wire_users);
		if (qs->smtpd.events == -1) {
			qs->smtpd.events = 0;
			queue_peer_update(&qs->smtpd);
			queue_sched_kick();
		}
		break;
	case IMSG_DELIVER_RESULT:
		queue_sched_result(imsg);
		break;
	case IMSG_CTL_CONN:
		queue_ctl_accept(imsg);
		break;
	case IMSG_STATS_SET:
		queue_ctl_stats_set(imsg);
		break;
	default:
		fatalx("parent: unexpected message type %u", imsg->hdr.type);
	}
}

static void
queue_sig(int sig, short ev, void *arg)
{
	/* Everything acknowledged is already committed. */
	log_debug("event=exit signal=%d", sig);
	queue_db_close(qs->db);
	exit(0);
}
