/*
 * queue_sched.c: the scheduler.  Takes due envelopes from the store (an
 * index range, never a scan), marks them in flight, hands local ones to
 * the parent with the message in a memfd, and records each result:
 * delivered, deferred with exponential backoff and jitter, or failed.
 * SECURITY: results come from the parent and are decoded strictly.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/tree.h>

#include <errno.h>
#include <event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"
#include "proto.h"
#include "queue.h"
#include "queue_db.h"

#define SCHED_MAX_INFLIGHT	64	/* local deliveries at once */
#define SCHED_BATCH		64

struct sched_inflight {
	RB_ENTRY(sched_inflight) node;
	uint64_t		 evpid;
	uint32_t		 attempts;
	int64_t			 ctime;
};
RB_HEAD(sched_tree, sched_inflight);
int	sched_cmp(struct sched_inflight *, struct sched_inflight *);
RB_PROTOTYPE(sched_tree, sched_inflight, node, sched_cmp);
RB_GENERATE(sched_tree, sched_inflight, node, sched_cmp);

static struct sched_tree	 inflight = RB_INITIALIZER(&inflight);
static size_t			 ninflight;
static struct event		 ev_sched;
static int			 sched_armed;

static void	queue_sched_run(int, short, void *);
static int	queue_sched_start(void *, const struct queue_envelope *);
static void	queue_sched_defer(uint64_t, uint32_t, const char *);

int
sched_cmp(struct sched_inflight *a, struct sched_inflight *b)
{
	return a->evpid < b->evpid ? -1 : a->evpid > b->evpid;
}

void
queue_sched_init(void)
{
	evtimer_set(&ev_sched, queue_sched_run, NULL);
}

/* Run the scheduler at the next turn of the loop. */
void
queue_sched_kick(void)
{
	struct timeval	 tv = { 0, 0 };

	if (qs->conf == NULL)
		return;
	if (sched_armed)
		evtimer_del(&ev_sched);
	sched_armed = 1;
	evtimer_add(&ev_sched, &tv);
}

/* Arm the timer for the earliest envelope that is not due yet. */
static void
queue_sched_rearm(void)
{
	struct timeval	 tv;
	int64_t		 when, now = time(NULL);
	int		 rv;

	if (sched_armed)
		evtimer_del(&ev_sched);
	sched_armed = 0;
	if (ninflight >= SCHED_MAX_INFLIGHT)
		return;		/* a result will kick us */
	if ((rv = queue_db_next_wakeup(qs->db, &when)) == -1)
		fatalx("queue: cannot read the schedule");
	if (rv == 0)
		return;
	tv.tv_sec = when > now ? when - now : 0;
	tv.tv_usec = 0;
	sched_armed = 1;
	evtimer_add(&ev_sched, &tv);
}

static void
queue_sched_run(int fd, short ev, void *arg)
{
	int64_t	 now = time(NULL);
	size_t	 room;

	sched_armed = 0;
	if (queue_ctl_stats()->delivery_paused)
		return;		/* resume kicks us */
	while (ninflight < SCHED_MAX_INFLIGHT) {
		room = SCHED_MAX_INFLIGHT - ninflight;
		if (room > SCHED_BATCH)
			room = SCHED_BATCH;
		if (queue_db_begin(qs->db) == -1)
			fatalx("queue: cannot start a transaction");
		if (queue_db_due(qs->db, now, room, queue_sched_start,
		    NULL) <= 0) {
			if (queue_db_commit(qs->db) == -1)
				fatalx("queue: cannot commit the schedule");
			break;
		}
		if (queue_db_commit(qs->db) == -1)
			fatalx("queue: cannot commit the schedule");
	}
	queue_peer_update(&qs->parent);
	queue_sched_rearm();
}

/* Backoff: retry_min doubled per attempt, capped, with +-10% jitter. */
static int64_t
queue_sched_backoff(uint32_t attempts)
{
	uint64_t	 delay = qs->conf->queue_retry_min;
	uint32_t	 i, jitter;

	for (i = 1; i < attempts && delay < qs->conf->queue_retry_max; i++)
		delay *= 2;
	if (delay > qs->conf->queue_retry_max)
		delay = qs->conf->queue_retry_max;
	if (delay >= 10) {
		jitter = arc4random_uniform(delay / 5 + 1);
		delay = delay - delay / 10 + jitter;
	}
	return delay > 0 ? (int64_t)delay : 1;
}

static void
queue_sched_defer(uint64_t evpid, uint32_t attempts, const char *why)
{
	int64_t	 now = time(NULL);

	if (queue_db_defer(qs->db, evpid, now,
	    now + queue_sched_backoff(attempts + 1), why) == -1)
		fatalx("queue: cannot defer an envelope");
}

/* Start one delivery; called for each due envelope. */
static int
queue_sched_start(void *arg, const struct queue_envelope *e)
{
	struct msg_deliver_local	 d;
	struct imsg_payload		 p;
	struct action_conf		*act;
	struct sched_inflight		*si;
	char				 idbuf[17];
	int				 fd;

	proc_id(e->evpid, idbuf);
	if (e->ctime + (int64_t)qs->conf->queue_expire <= time(NULL)) {
		/* Bounces come with outbound delivery; say it loudly. */
		log_warnx("event=expired evp=%s rcpt=%s attempts=%u "
		    "error=\"%s\"", idbuf, e->rcpt, e->attempts,
		    e->last_error);
		if (queue_db_remove_envelope(qs->db, e->evpid) == -1)
			fatalx("queue: cannot remove an envelope");
		return 0;
	}
	act = config_action(qs->conf, e->action);
	if (act == NULL || (act->kind != ACTION_MAILDIR &&
	    act->kind != ACTION_MBOX)) {
		log_warnx("event=deferred evp=%s rcpt=%s error=\"action %s "
		    "cannot deliver yet\"", idbuf, e->rcpt, e->action);
		queue_sched_defer(e->evpid, e->attempts,
		    act == NULL ? "4.3.5 no such action" :
		    "4.3.5 remote delivery is not available yet");
		return 0;
	}

	if ((fd = memfd_create("message", MFD_CLOEXEC)) == -1) {
		log_warn("memfd_create");
		return -1;
	}
	if (queue_db_write_body(qs->db, e->msgid, fd) == -1 ||
	    lseek(fd, 0, SEEK_SET) == -1) {
		log_warnx("event=deferred evp=%s error=\"cannot read the "
		    "message\"", idbuf);
		close(fd);
		queue_sched_defer(e->evpid, e->attempts,
		    "4.3.0 cannot read the message");
		return 0;
	}
	if (queue_db_set_inflight(qs->db, e->evpid, time(NULL)) == -1)
		fatalx("queue: cannot mark an envelope in flight");

	memset(&d, 0, sizeof(d));
	strlcpy(d.action, e->action, sizeof(d.action));
	strlcpy(d.mailbox, e->mailbox, sizeof(d.mailbox));
	strlcpy(d.sender, e->sender, sizeof(d.sender));
	strlcpy(d.rcpt, e->rcpt, sizeof(d.rcpt));
	d.ctime = e->ctime;
	d.retry = e->last_try != 0;
	imsg_payload_init(&p);
	proto_enc_deliver_local(&p, &d);
	if (imsg_compose_payload(&qs->parent.ib, IMSG_DELIVER_LOCAL, e->evpid,
	    fd, &p) == -1)
		fatal("compose delivery");
	imsg_payload_free(&p);

	if ((si = calloc(1, sizeof(*si))) == NULL)
		fatal("sched");
	si->evpid = e->evpid;
	si->attempts = e->attempts;
	si->ctime = e->ctime;
	RB_INSERT(sched_tree, &inflight, si);
	ninflight++;
	log_debug("event=deliver evp=%s rcpt=%s action=%s", idbuf, e->rcpt,
	    e->action);
	return 0;
}

void
queue_sched_result(struct imsg *imsg)
{
	struct msg_deliver_result	 r;
	struct sched_inflight		 key, *si;
	struct queue_envelope		 e;
	char				 idbuf[17];

	if (proto_dec_deliver_result(imsg, &r) == -1)
		fatalx("parent: malformed IMSG_DELIVER_RESULT");
	key.evpid = imsg->hdr.id;
	if ((si = RB_FIND(sched_tree, &inflight, &key)) == NULL)
		fatalx("parent: result for a delivery not in flight");
	RB_REMOVE(sched_tree, &inflight, si);
	ninflight--;
	proc_id(si->evpid, idbuf);
	if (queue_db_envelope(qs->db, si->evpid, &e) != 1)
		memset(&e, 0, sizeof(e));

	switch (r.status) {
	case DELIVER_OK:
		log_info("event=delivered evp=%s msg=%016llx rcpt=%s "
		    "delay=%llds", idbuf, (unsigned long long)e.msgid, e.rcpt,
		    (long long)(time(NULL) - e.ctime));
		if (queue_db_remove_envelope(qs->db, si->evpid) == -1)
			fatalx("queue: cannot remove an envelope");
		queue_ctl_stats()->delivered++;
		if (e.ctime != 0)
			queue_ctl_latency(time(NULL) - e.ctime);
		break;
	case DELIVER_TEMPFAIL:
		log_info("event=deferred evp=%s rcpt=%s attempts=%u "
		    "error=\"%s\"", idbuf, e.rcpt, si->attempts + 1, r.text);
		queue_sched_defer(si->evpid, si->attempts, r.text);
		queue_ctl_stats()->deferred++;
		break;
	case DELIVER_PERMFAIL:
		/* Bounces come with outbound delivery; say it loudly. */
		log_warnx("event=failed evp=%s rcpt=%s error=\"%s\"", idbuf,
		    e.rcpt, r.text);
		queue_ctl_stats()->failed++;
		if (queue_db_remove_envelope(qs->db, si->evpid) == -1)
			fatalx("queue: cannot remove an envelope");
		break;
	}
	free(si);
	queue_sched_kick();
}
