/*
 * queue_smtp.c: the transactions smtpd opens in the queue: MAIL, RCPT
 * (answered by the rules), the message bytes, and the commit, which is
 * grouped with the other sessions' commits into one durable transaction
 * before any of them is acknowledged.
 * SECURITY: smtpd may be compromised: every frame is decoded strictly and
 * a message that does not fit the session's state is fatal.
 */
#include <sys/types.h>
#include <sys/tree.h>

#include <event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "proc.h"
#include "proto.h"
#include "queue.h"
#include "queue_db.h"

#define TXN_MAXENVELOPES	10000
#define TXN_HEADROOM		(64 * 1024)	/* Received: and rounding */

struct txn_rcpt {
	struct rule_target	 target;
	char			 orig[PROTO_ADDRLEN];
	char			 orcpt[PROTO_ADDRLEN + 16];
	uint32_t		 notify;
};

struct txn {
	RB_ENTRY(txn)		 node;
	TAILQ_ENTRY(txn)	 commit_entry;
	uint64_t		 sid;
	uint64_t		 msgid;
	struct msg_smtp_mail	 mail;
	struct txn_rcpt		*rcpts;
	size_t			 nrcpts;
	size_t			 caprcpts;
	uint8_t			*body;
	size_t			 bodylen;
	size_t			 bodycap;
	int			 overflow;
	int			 committing;
	time_t			 ctime;
};

int		txn_cmp(struct txn *, struct txn *);
RB_HEAD(txn_tree, txn);
static struct txn_tree	 txns = RB_INITIALIZER(&txns);
RB_PROTOTYPE(txn_tree, txn, node, txn_cmp);
RB_GENERATE(txn_tree, txn, node, txn_cmp);
static TAILQ_HEAD(, txn) commits = TAILQ_HEAD_INITIALIZER(commits);
static struct event	 ev_commit;
static int		 commit_scheduled;

static void	queue_smtp_reply(uint16_t, uint64_t, int, uint64_t,
		    const char *);
static void	queue_smtp_flush(int, short, void *);
static void	txn_free(struct txn *);

int
txn_cmp(struct txn *a, struct txn *b)
{
	return a->sid < b->sid ? -1 : a->sid > b->sid;
}

void
queue_smtp_init(void)
{
	evtimer_set(&ev_commit, queue_smtp_flush, NULL);
}

static void
txn_free(struct txn *t)
{
	RB_REMOVE(txn_tree, &txns, t);
	free(t->rcpts);
	free(t->body);
	free(t);
}

static struct txn *
txn_find(uint64_t sid, uint64_t msgid, const char *what)
{
	struct txn	 key, *t;

	key.sid = sid;
	if ((t = RB_FIND(txn_tree, &txns, &key)) == NULL ||
	    t->msgid != msgid || t->committing)
		fatalx("smtpd: %s for a transaction it has not opened", what);
	return t;
}

static void
queue_smtp_reply(uint16_t type, uint64_t sid, int ok, uint64_t msgid,
    const char *reply)
{
	struct imsg_payload	 p;
	struct msg_smtp_result	 r;

	memset(&r, 0, sizeof(r));
	r.ok = ok;
	r.msgid = msgid;
	if (!ok)
		strlcpy(r.reply, reply, sizeof(r.reply));
	imsg_payload_init(&p);
	proto_enc_smtp_result(&p, &r);
	if (imsg_compose_payload(&qs->smtpd.ib, type, sid, -1, &p) == -1)
		fatal("compose smtp result");
	imsg_payload_free(&p);
}

static void
queue_smtp_mail(struct imsg *imsg)
{
	struct txn	*t, key;
	char		 sidbuf[17], idbuf[17];

	key.sid = imsg->hdr.id;
	if ((t = RB_FIND(txn_tree, &txns, &key)) != NULL) {
		if (t->committing)
			fatalx("smtpd: MAIL during a commit");
		txn_free(t);
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		fatal("txn");
	if (proto_dec_smtp_mail(imsg, &t->mail) == -1)
		fatalx("smtpd: malformed IMSG_SMTP_MAIL");
	t->sid = imsg->hdr.id;
	do {
		arc4random_buf(&t->msgid, sizeof(t->msgid));
	} while (t->msgid == 0);
	t->ctime = time(NULL);
	RB_INSERT(txn_tree, &txns, t);
	log_debug("event=mail session=%s msg=%s", proc_id(t->sid, sidbuf),
	    proc_id(t->msgid, idbuf));
	queue_smtp_reply(IMSG_SMTP_MAIL_RESULT, t->sid, 1, t->msgid, NULL);
}

static void
queue_smtp_rcpt(struct imsg *imsg)
{
	struct msg_smtp_rcpt	 r;
	struct rule_target	*targets;
	struct rule_ctx		 ctx;
	struct txn		*t;
	struct txn_rcpt		*nr;
	char			 reply[PROTO_REPLYLEN];
	size_t			 n, i;

	if (proto_dec_smtp_rcpt(imsg, &r) == -1)
		fatalx("smtpd: malformed IMSG_SMTP_RCPT");
	t = txn_find(imsg->hdr.id, r.msgid, "RCPT");
	if ((targets = calloc(RULE_MAXTARGETS, sizeof(*targets))) == NULL)
		fatal("rcpt");
	ctx.local = t->mail.local;
	ctx.client = t->mail.client;
	ctx.auth_user = t->mail.auth_user;
	ctx.sender = t->mail.sender;
	if (queue_rule_resolve(qs->conf, &qs->users, &ctx, r.rcpt, targets,
	    RULE_MAXTARGETS, &n, reply, sizeof(reply)) == -1) {
		queue_smtp_reply(IMSG_SMTP_RCPT_RESULT, t->sid, 0, 0, reply);
		free(targets);
		return;
	}
	if (n == 0 || t->nrcpts + n > TXN_MAXENVELOPES) {
		queue_smtp_reply(IMSG_SMTP_RCPT_RESULT, t->sid, 0, 0,
		    "452 4.5.3 Too many recipients");
		free(targets);
		return;
	}
	if (t->nrcpts + n > t->caprcpts) {
		size_t	 ncap = t->caprcpts ? t->caprcpts : 4;

		while (ncap < t->nrcpts + n)
			ncap *= 2;
		if ((nr = reallocarray(t->rcpts, ncap, sizeof(*nr))) == NULL)
			fatal("rcpt");
		t->rcpts = nr;
		t->caprcpts = ncap;
	}
	for (i = 0; i < n; i++) {
		nr = &t->rcpts[t->nrcpts++];
		memset(nr, 0, sizeof(*nr));
		nr->target = targets[i];
		strlcpy(nr->orig, r.rcpt, sizeof(nr->orig));
		strlcpy(nr->orcpt, r.orcpt, sizeof(nr->orcpt));
		nr->notify = r.notify;
	}
	free(targets);
	queue_smtp_reply(IMSG_SMTP_RCPT_RESULT, t->sid, 1, 0, NULL);
}

static void
queue_smtp_data(struct imsg *imsg)
{
	struct msg_smtp_data	 d;
	struct txn		*t;
	size_t			 limit, ncap;
	uint8_t			*nb;

	if (proto_dec_smtp_data(imsg, &d) == -1)
		fatalx("smtpd: malformed IMSG_SMTP_DATA");
	t = txn_find(imsg->hdr.id, d.msgid, "DATA");
	limit = qs->conf->max_message_size + TXN_HEADROOM;
	if (t->overflow || d.len > limit - t->bodylen) {
		t->overflow = 1;
		return;
	}
	if (t->bodylen + d.len > t->bodycap) {
		ncap = t->bodycap ? t->bodycap : 16384;
		while (ncap < t->bodylen + d.len)
			ncap *= 2;
		if ((nb = realloc(t->body, ncap)) == NULL) {
			t->overflow = 1;
			return;
		}
		t->body = nb;
		t->bodycap = ncap;
	}
	memcpy(t->body + t->bodylen, d.data, d.len);
	t->bodylen += d.len;
}

static void
queue_smtp_commit(struct imsg *imsg)
{
	struct msg_smtp_commit	 c;
	struct txn		*t;
	struct timeval		 tv = { 0, 0 };

	if (proto_dec_smtp_commit(imsg, &c) == -1)
		fatalx("smtpd: malformed IMSG_SMTP_COMMIT");
	t = txn_find(imsg->hdr.id, c.msgid, "COMMIT");
	if (t->nrcpts == 0)
		fatalx("smtpd: COMMIT without recipients");
	if (t->overflow) {
		queue_smtp_reply(IMSG_SMTP_COMMIT_RESULT, t->sid, 0, 0,
		    "552 5.3.4 Message size exceeds fixed limit");
		txn_free(t);
		return;
	}
	t->committing = 1;
	TAILQ_INSERT_TAIL(&commits, t, commit_entry);
	/*
	 * Group commit: everything that arrives before the loop comes back
	 * around shares one transaction and one fsync.
	 */
	if (!commit_scheduled) {
		commit_scheduled = 1;
		evtimer_add(&ev_commit, &tv);
	}
}

static void
queue_smtp_rollback(struct imsg *imsg)
{
	struct msg_smtp_commit	 c;
	struct txn		*t, key;

	if (proto_dec_smtp_commit(imsg, &c) == -1)
		fatalx("smtpd: malformed IMSG_SMTP_ROLLBACK");
	key.sid = imsg->hdr.id;
	if ((t = RB_FIND(txn_tree, &txns, &key)) == NULL ||
	    t->msgid != c.msgid)
		return;		/* already gone: nothing to undo */
	if (t->committing)
		fatalx("smtpd: ROLLBACK during a commit");
	txn_free(t);
}

/* Store every waiting message in one transaction, then answer them all. */
static void
queue_smtp_flush(int fd, short ev, void *arg)
{
	struct queue_message_new	 m;
	struct queue_envelope_new	*evps;
	struct txn			*t;
	size_t				 i, batch = 0;
	int				 failed = 0, *ok;
	char				 idbuf[17], sidbuf[17];

	commit_scheduled = 0;
	if (TAILQ_EMPTY(&commits))
		return;
	TAILQ_FOREACH(t, &commits, commit_entry)
		batch++;
	if ((ok = calloc(batch, sizeof(*ok))) == NULL)
		fatal("commit");
	if (queue_db_begin(qs->db) == -1)
		failed = 1;
	i = 0;
	TAILQ_FOREACH(t, &commits, commit_entry) {
		size_t	 j;

		if (failed)
			break;
		if ((evps = calloc(t->nrcpts, sizeof(*evps))) == NULL)
			fatal("commit");
		for (j = 0; j < t->nrcpts; j++) {
			evps[j].rcpt = t->rcpts[j].target.rcpt;
			evps[j].orig_rcpt = t->rcpts[j].orig;
			evps[j].action = t->rcpts[j].target.action;
			evps[j].mailbox = t->rcpts[j].target.mailbox;
			evps[j].dsn_notify = t->rcpts[j].notify;
			evps[j].orcpt = t->rcpts[j].orcpt;
		}
		memset(&m, 0, sizeof(m));
		m.msgid = t->msgid;
		m.sender = t->mail.sender;
		m.envid = "";
		m.helo = t->mail.helo;
		m.client = t->mail.client;
		m.owner = t->mail.owner;
		m.ctime = t->ctime;
		m.body = t->body;
		m.bodylen = t->bodylen;
		m.evps = evps;
		m.nevps = t->nrcpts;
		ok[i++] = queue_db_add_message(qs->db, &m) == 0;
		free(evps);
	}
	if (!failed && queue_db_commit(qs->db) == -1) {
		failed = 1;
		queue_db_rollback(qs->db);
	} else if (failed)
		queue_db_rollback(qs->db);

	i = 0;
	while ((t = TAILQ_FIRST(&commits)) != NULL) {
		TAILQ_REMOVE(&commits, t, commit_entry);
		if (!failed && ok[i]) {
			log_info("event=queued session=%s msg=%s size=%zu "
			    "rcpts=%zu batch=%zu", proc_id(t->sid, sidbuf),
			    proc_id(t->msgid, idbuf), t->bodylen, t->nrcpts,
			    batch);
			queue_smtp_reply(IMSG_SMTP_COMMIT_RESULT, t->sid, 1,
			    t->msgid, NULL);
			queue_ctl_stats()->received++;
		} else {
			log_warnx("event=queue-failed session=%s msg=%s",
			    proc_id(t->sid, sidbuf), proc_id(t->msgid, idbuf));
			queue_smtp_reply(IMSG_SMTP_COMMIT_RESULT, t->sid, 0, 0,
			    "451 4.3.0 Error: queue file write error");
		}
		i++;
		txn_free(t);
	}
	free(ok);
	queue_peer_update(&qs->smtpd);
	queue_sched_kick();
}

void
queue_smtp_dispatch(struct imsg *imsg)
{
	switch (imsg->hdr.type) {
	case IMSG_SMTP_MAIL:
		queue_smtp_mail(imsg);
		break;
	case IMSG_SMTP_RCPT:
		queue_smtp_rcpt(imsg);
		break;
	case IMSG_SMTP_DATA:
		queue_smtp_data(imsg);
		break;
	case IMSG_SMTP_COMMIT:
		queue_smtp_commit(imsg);
		break;
	case IMSG_SMTP_ROLLBACK:
		queue_smtp_rollback(imsg);
		break;
	case IMSG_STATS_SET:
		queue_ctl_stats_set(imsg);
		break;
	default:
		fatalx("smtpd: unexpected message type %u", imsg->hdr.type);
	}
}
