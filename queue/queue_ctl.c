/*
 * queue_ctl.c: the control connections posternctl opens.  The parent
 * accepts them, learns the caller's uid from SO_PEERCRED and hands them
 * here; each carries one request, answered with zero or more records and
 * an END frame.
 * SECURITY: the caller is any local user.  Requests are decoded strictly;
 * a malformed one closes that connection only.  Root and the admin group
 * may do anything, the monitoring group may read everything, and other
 * users see only the messages they submitted through the local socket.
 */
#include <sys/types.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
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

#define CTL_HEADERS_MAX		(64 * 1024)
#define CTL_OUTPUT_MAX		(64 * 1024 * 1024)

struct queue_ctl_conn {
	struct imsgbuf	 ib;
	struct event	 ev;
	short		 events;
	uint32_t	 uid;
	int		 admin;
	int		 monitor;	/* may read, not change */
	int		 answered;	/* close once the reply is written */
	uint64_t	 listed;	/* envelopes sent */
};

struct queue_ctl_ids {
	uint64_t	*ids;
	size_t		 n;
	size_t		 cap;
};

struct queue_ctl_headers {
	uint8_t		*buf;
	size_t		 len;
	int		 done;
};

static struct queue_stats	 stats;

/* Gauges and counters other processes report, shown as they came. */
#define CTL_EXTERNAL_MAX	64
static struct msg_ctl_stat	 external[CTL_EXTERNAL_MAX];
static size_t			 nexternal;

/* The delays of the last deliveries, for percentiles. */
#define CTL_LATENCY_RING	4096
static int64_t			 latency[CTL_LATENCY_RING];
static size_t			 nlatency, latency_pos;

static void	queue_ctl_dispatch(int, short, void *);

struct queue_stats *
queue_ctl_stats(void)
{
	return &stats;
}

void
queue_ctl_stats_set(struct imsg *imsg)
{
	struct msg_ctl_stat	 st;
	size_t			 i;

	if (proto_dec_ctl_stat(imsg, &st) == -1)
		fatalx("malformed IMSG_STATS_SET");
	for (i = 0; i < nexternal; i++)
		if (strcmp(external[i].name, st.name) == 0)
			break;
	if (i == nexternal) {
		if (nexternal == CTL_EXTERNAL_MAX)
			return;
		nexternal++;
	}
	external[i] = st;
}

void
queue_ctl_latency(int64_t seconds)
{
	latency[latency_pos] = seconds < 0 ? 0 : seconds;
	latency_pos = (latency_pos + 1) % CTL_LATENCY_RING;
	if (nlatency < CTL_LATENCY_RING)
		nlatency++;
}

static int
queue_ctl_cmp64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

void
queue_ctl_accept(struct imsg *imsg)
{
	struct msg_ctl_conn	 c;
	struct queue_ctl_conn		*cc;

	if (proto_dec_ctl_conn(imsg, &c) == -1 || imsg->fd == -1)
		fatalx("parent: malformed IMSG_CTL_CONN");
	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		log_warn("control connection");
		return;		/* imsg_free closes the fd */
	}
	if (fcntl(imsg->fd, F_SETFL, O_NONBLOCK) == -1) {
		free(cc);
		return;
	}
	imsgbuf_init(&cc->ib, imsg->fd);
	imsg->fd = -1;
	cc->uid = c.uid;
	cc->admin = c.admin;
	cc->monitor = c.monitor;
	cc->events = EV_READ;
	event_set(&cc->ev, cc->ib.fd, EV_READ | EV_PERSIST, queue_ctl_dispatch, cc);
	event_add(&cc->ev, NULL);
}

static void
queue_ctl_close(struct queue_ctl_conn *cc)
{
	event_del(&cc->ev);
	close(cc->ib.fd);
	imsgbuf_clear(&cc->ib);
	free(cc);
}

static void
queue_ctl_end(struct queue_ctl_conn *cc, int ok, uint64_t count, const char *error)
{
	struct imsg_payload	 p;
	struct msg_ctl_end	 e;

	memset(&e, 0, sizeof(e));
	e.ok = ok;
	e.count = count;
	if (error != NULL)
		strlcpy(e.error, error, sizeof(e.error));
	imsg_payload_init(&p);
	proto_enc_ctl_end(&p, &e);
	if (imsg_compose_payload(&cc->ib, IMSG_CTL_END, 0, -1, &p) == -1)
		fatal("compose ctl end");
	imsg_payload_free(&p);
	cc->answered = 1;
}

static int
queue_ctl_send_envelope(void *arg, const struct queue_envelope *e)
{
	struct queue_ctl_conn		*cc = arg;
	struct imsg_payload	 p;
	struct msg_ctl_envelope	 m;

	if (imsgbuf_queued(&cc->ib) > CTL_OUTPUT_MAX)
		return -1;
	/* A user sees the messages he submitted, and no others. */
	if (!cc->admin && !cc->monitor && e->owner != (int64_t)cc->uid)
		return 0;
	cc->listed++;
	memset(&m, 0, sizeof(m));
	m.evpid = e->evpid;
	m.msgid = e->msgid;
	strlcpy(m.sender, e->sender, sizeof(m.sender));
	strlcpy(m.rcpt, e->rcpt, sizeof(m.rcpt));
	m.state = e->state;
	m.attempts = e->attempts;
	m.ctime = e->ctime;
	m.next_try = e->next_try;
	m.size = e->size;
	strlcpy(m.last_error, e->last_error, sizeof(m.last_error));
	imsg_payload_init(&p);
	proto_enc_ctl_envelope(&p, &m);
	if (imsg_compose_payload(&cc->ib, IMSG_CTL_ENVELOPE, 0, -1, &p) == -1)
		fatal("compose ctl envelope");
	imsg_payload_free(&p);
	return 0;
}

static int
queue_ctl_collect(void *arg, const struct queue_envelope *e)
{
	struct queue_ctl_ids	*ids = arg;
	uint64_t	*n;

	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 16;
		if ((n = reallocarray(ids->ids, ids->cap, sizeof(*n))) == NULL)
			fatal("ctl ids");
		ids->ids = n;
	}
	ids->ids[ids->n++] = e->evpid;
	return 0;
}

/* The envelopes an id names: itself, or every envelope of a message. */
static int
queue_ctl_resolve(uint64_t id, struct queue_ctl_ids *ids)
{
	struct queue_envelope	 e;
	int			 rv;

	if ((rv = queue_db_envelope(qs->db, id, &e)) == -1)
		return -1;
	if (rv == 1)
		return queue_ctl_collect(ids, &e);
	return queue_db_message_envelopes(qs->db, id, queue_ctl_collect, ids) ==
	    -1 ? -1 : 0;
}

static int
queue_ctl_header_chunk(void *arg, const uint8_t *data, size_t len)
{
	struct queue_ctl_headers	*h = arg;
	size_t			 take, i;

	if (h->done)
		return -1;
	take = len;
	if (take > CTL_HEADERS_MAX - h->len)
		take = CTL_HEADERS_MAX - h->len;
	memcpy(h->buf + h->len, data, take);
	h->len += take;
	/* Stop at the blank line that ends the header. */
	for (i = 0; i + 3 < h->len; i++)
		if (memcmp(h->buf + i, "\r\n\r\n", 4) == 0) {
			h->len = i + 2;
			h->done = 1;
			return -1;
		}
	if (h->len == CTL_HEADERS_MAX) {
		h->done = 1;
		return -1;
	}
	return 0;
}

static void
queue_ctl_show_message(struct queue_ctl_conn *cc, uint64_t id)
{
	struct queue_envelope	 e;
	struct queue_ctl_headers	 h;
	size_t			 off, len;
	int			 n;

	/* An envelope id shows its message. */
	if (queue_db_envelope(qs->db, id, &e) == 1)
		id = e.msgid;
	if ((n = queue_db_message_envelopes(qs->db, id, queue_ctl_send_envelope,
	    cc)) == -1) {
		queue_ctl_end(cc, 0, 0, "cannot read the queue");
		return;
	}
	if (n == 0) {
		queue_ctl_end(cc, 0, 0, "no such envelope or message");
		return;
	}
	memset(&h, 0, sizeof(h));
	if ((h.buf = malloc(CTL_HEADERS_MAX)) == NULL)
		fatal("ctl headers");
	(void)queue_db_read_body(qs->db, id, queue_ctl_header_chunk, &h);
	for (off = 0; off < h.len; off += len) {
		len = h.len - off > 16384 ? 16384 : h.len - off;
		if (proto_compose_bytes(&cc->ib, IMSG_CTL_HEADERS, 0,
		    h.buf + off, len) == -1)
			fatal("compose ctl headers");
	}
	free(h.buf);
	queue_ctl_end(cc, 1, n, NULL);
}

static void
queue_ctl_stat(struct queue_ctl_conn *cc, const char *name, int64_t value)
{
	struct imsg_payload	 p;
	struct msg_ctl_stat	 s;

	memset(&s, 0, sizeof(s));
	strlcpy(s.name, name, sizeof(s.name));
	s.value = value;
	imsg_payload_init(&p);
	proto_enc_ctl_stat(&p, &s);
	if (imsg_compose_payload(&cc->ib, IMSG_CTL_STAT, 0, -1, &p) == -1)
		fatal("compose ctl stat");
	imsg_payload_free(&p);
}

static void
queue_ctl_show_stats(struct queue_ctl_conn *cc)
{
	size_t	 counts[4], messages, i;
	int64_t	 oldest, now = time(NULL);

	if (queue_db_counts(qs->db, counts, &messages, &oldest) == -1) {
		queue_ctl_end(cc, 0, 0, "cannot read the queue");
		return;
	}
	queue_ctl_stat(cc, "uptime_seconds", now - qs->started);
	queue_ctl_stat(cc, "messages", messages);
	queue_ctl_stat(cc, "envelopes_pending", counts[EVP_PENDING]);
	queue_ctl_stat(cc, "envelopes_inflight", counts[EVP_INFLIGHT]);
	queue_ctl_stat(cc, "envelopes_deferred", counts[EVP_DEFERRED]);
	queue_ctl_stat(cc, "envelopes_held", counts[EVP_HELD]);
	queue_ctl_stat(cc, "oldest_age_seconds", messages > 0 && oldest > 0 ?
	    now - oldest : 0);
	queue_ctl_stat(cc, "messages_received_total", stats.received);
	queue_ctl_stat(cc, "messages_delivered_total", stats.delivered);
	queue_ctl_stat(cc, "deliveries_deferred_total", stats.deferred);
	queue_ctl_stat(cc, "deliveries_failed_total", stats.failed);
	queue_ctl_stat(cc, "smtp_paused", stats.smtp_paused);
	queue_ctl_stat(cc, "delivery_paused", stats.delivery_paused);
	if (nlatency > 0) {
		int64_t	 sorted[CTL_LATENCY_RING];

		/* Over the last CTL_LATENCY_RING deliveries. */
		memcpy(sorted, latency, nlatency * sizeof(*sorted));
		qsort(sorted, nlatency, sizeof(*sorted), queue_ctl_cmp64);
		queue_ctl_stat(cc, "delivery_latency_p50_seconds",
		    sorted[nlatency * 50 / 100]);
		queue_ctl_stat(cc, "delivery_latency_p90_seconds",
		    sorted[nlatency * 90 / 100]);
		queue_ctl_stat(cc, "delivery_latency_p99_seconds",
		    sorted[nlatency * 99 / 100]);
	}
	for (i = 0; i < nexternal; i++)
		queue_ctl_stat(cc, external[i].name, external[i].value);
	queue_ctl_end(cc, 1, 0, NULL);
}

/* schedule, remove, hold, release: by id, or 0 for all. */
static void
queue_ctl_change(struct queue_ctl_conn *cc, uint16_t type, uint64_t id)
{
	struct queue_ctl_ids	 ids;
	int64_t		 now = time(NULL);
	size_t		 i, changed = 0;
	int		 rv = 0;

	memset(&ids, 0, sizeof(ids));
	if (id == 0 && type == IMSG_CTL_SCHEDULE)
		rv = queue_db_schedule_all(qs->db, now);
	else if (id == 0 && (type == IMSG_CTL_HOLD ||
	    type == IMSG_CTL_RELEASE))
		rv = queue_db_hold_all(qs->db, type == IMSG_CTL_HOLD, now);
	else {
		if ((id == 0 ? queue_db_list(qs->db, queue_ctl_collect, &ids) :
		    queue_ctl_resolve(id, &ids)) == -1) {
			free(ids.ids);
			queue_ctl_end(cc, 0, 0, "cannot read the queue");
			return;
		}
		if (id != 0 && ids.n == 0) {
			free(ids.ids);
			queue_ctl_end(cc, 0, 0, "no such envelope or message");
			return;
		}
		if (queue_db_begin(qs->db) == -1)
			fatalx("queue: cannot start a transaction");
		for (i = 0; i < ids.n && rv != -1; i++) {
			switch (type) {
			case IMSG_CTL_SCHEDULE:
				rv = queue_db_schedule(qs->db, ids.ids[i], now);
				break;
			case IMSG_CTL_REMOVE:
				rv = queue_db_remove_envelope(qs->db,
				    ids.ids[i]);
				break;
			case IMSG_CTL_HOLD:
				rv = queue_db_hold(qs->db, ids.ids[i], 1);
				break;
			case IMSG_CTL_RELEASE:
				rv = queue_db_hold(qs->db, ids.ids[i], 0);
				break;
			}
			if (rv == 1)
				changed++;
		}
		if (rv == -1) {
			queue_db_rollback(qs->db);
			free(ids.ids);
			queue_ctl_end(cc, 0, 0, "cannot change the queue");
			return;
		}
		if (queue_db_commit(qs->db) == -1)
			fatalx("queue: cannot commit a change");
		rv = changed;
		free(ids.ids);
	}
	if (rv == -1) {
		queue_ctl_end(cc, 0, 0, "cannot change the queue");
		return;
	}
	log_info("event=control uid=%u request=%s id=%016llx changed=%d",
	    cc->uid, type == IMSG_CTL_SCHEDULE ? "schedule" :
	    type == IMSG_CTL_REMOVE ? "remove" : type == IMSG_CTL_HOLD ?
	    "hold" : "release", (unsigned long long)id, rv);
	if (type != IMSG_CTL_HOLD)
		queue_sched_kick();
	queue_ctl_end(cc, 1, rv, NULL);
}

/* Tell smtpd to stop or start accepting. */
static void
queue_ctl_smtp_pause(uint16_t type)
{
	struct imsg_payload	 p;
	struct msg_ctl_what	 w = { .what = CTL_WHAT_SMTP };

	imsg_payload_init(&p);
	proto_enc_ctl_what(&p, &w);
	if (imsg_compose_payload(&qs->smtpd.ib, type, 0, -1, &p) == -1)
		fatal("compose pause");
	imsg_payload_free(&p);
	queue_peer_update(&qs->smtpd);
}

static void
queue_ctl_request(struct queue_ctl_conn *cc, struct imsg *imsg)
{
	struct msg_ctl_id	 id;
	struct msg_ctl_what	 w;
	struct imsg_payload	 p;

	if (imsg->hdr.type == IMSG_CTL_SHOW_QUEUE) {
		if (imsg_end(imsg) == -1)
			goto bad;
		if (queue_db_list(qs->db, queue_ctl_send_envelope, cc) == -1)
			queue_ctl_end(cc, 0, 0, "cannot read the queue");
		else
			queue_ctl_end(cc, 1, cc->listed, NULL);
		return;
	}
	/* The monitoring group reads; only admins change anything. */
	if (!cc->admin && !(cc->monitor &&
	    (imsg->hdr.type == IMSG_CTL_SHOW_MESSAGE ||
	    imsg->hdr.type == IMSG_CTL_SHOW_STATS))) {
		queue_ctl_end(cc, 0, 0, "permission denied");
		return;
	}
	switch (imsg->hdr.type) {
	case IMSG_CTL_SHOW_MESSAGE:
		if (proto_dec_ctl_id(imsg, &id) == -1)
			goto bad;
		queue_ctl_show_message(cc, id.id);
		break;
	case IMSG_CTL_SHOW_STATS:
		if (imsg_end(imsg) == -1)
			goto bad;
		queue_ctl_show_stats(cc);
		break;
	case IMSG_CTL_SCHEDULE:
	case IMSG_CTL_REMOVE:
	case IMSG_CTL_HOLD:
	case IMSG_CTL_RELEASE:
		if (proto_dec_ctl_id(imsg, &id) == -1)
			goto bad;
		queue_ctl_change(cc, imsg->hdr.type, id.id);
		break;
	case IMSG_CTL_PAUSE:
	case IMSG_CTL_RESUME:
		if (proto_dec_ctl_what(imsg, &w) == -1 || w.what == 0)
			goto bad;
		if (w.what == CTL_WHAT_DELIVERY) {
			stats.delivery_paused = imsg->hdr.type ==
			    IMSG_CTL_PAUSE;
			if (!stats.delivery_paused)
				queue_sched_kick();
		} else {
			stats.smtp_paused = imsg->hdr.type == IMSG_CTL_PAUSE;
			queue_ctl_smtp_pause(imsg->hdr.type);
		}
		log_info("event=control uid=%u request=%s what=%s", cc->uid,
		    imsg->hdr.type == IMSG_CTL_PAUSE ? "pause" : "resume",
		    w.what == CTL_WHAT_DELIVERY ? "delivery" : "smtp");
		queue_ctl_end(cc, 1, 0, NULL);
		break;
	case IMSG_CTL_RELOAD:
		if (imsg_end(imsg) == -1)
			goto bad;
		if (imsg_compose(&qs->parent.ib, IMSG_CTL_PARENT_RELOAD, 0, -1,
		    NULL, 0) == -1)
			fatal("compose reload");
		queue_peer_update(&qs->parent);
		queue_ctl_end(cc, 1, 0, NULL);
		break;
	case IMSG_CTL_LOG:
		if (proto_dec_ctl_what(imsg, &w) == -1 || w.what > 1)
			goto bad;
		log_setverbose(w.what);
		imsg_payload_init(&p);
		proto_enc_ctl_what(&p, &w);
		if (imsg_compose_payload(&qs->parent.ib, IMSG_CTL_LOG, 0, -1,
		    &p) == -1)
			fatal("compose log");
		imsg_payload_free(&p);
		queue_peer_update(&qs->parent);
		queue_ctl_end(cc, 1, 0, NULL);
		break;
	default:
		goto bad;
	}
	return;
bad:
	queue_ctl_end(cc, 0, 0, "malformed request");
}

static void
queue_ctl_dispatch(int fd, short ev, void *arg)
{
	struct queue_ctl_conn	*cc = arg;
	struct imsg	 imsg;
	ssize_t		 n;
	int		 rv;

	if (ev & EV_WRITE) {
		if (imsgbuf_write(&cc->ib) == -1) {
			queue_ctl_close(cc);
			return;
		}
	}
	if ((ev & EV_READ) && !cc->answered) {
		n = imsgbuf_read(&cc->ib);
		if (n == 0 || (n == -1 && errno != EAGAIN)) {
			queue_ctl_close(cc);
			return;
		}
		/* One request per connection; anything malformed ends it. */
		if ((rv = imsg_get(&cc->ib, &imsg)) == -1) {
			queue_ctl_close(cc);
			return;
		}
		if (rv == 1) {
			queue_ctl_request(cc, &imsg);
			imsg_free(&imsg);
		}
	}
	if (cc->answered && imsgbuf_queued(&cc->ib) == 0) {
		queue_ctl_close(cc);
		return;
	}
	if (cc->answered && cc->events != EV_WRITE) {
		event_del(&cc->ev);
		cc->events = EV_WRITE;
		event_set(&cc->ev, cc->ib.fd, EV_WRITE | EV_PERSIST,
		    queue_ctl_dispatch, cc);
		event_add(&cc->ev, NULL);
	}
}
