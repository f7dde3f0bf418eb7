/*
 * smtpd.h: the SMTP server process: listeners, sessions, and the pipe to
 * queue that every session's transaction goes through.
 * SECURITY: everything a session reads is hostile; this process runs as
 * _postern_smtpd chrooted to an empty directory and can do nothing but
 * talk to its clients and to queue.
 */
#ifndef POSTERN_SMTPD_H
#define POSTERN_SMTPD_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <event.h>

#include "config.h"
#include "imsg.h"
#include "proto.h"

struct smtp_listener {
	TAILQ_ENTRY(smtp_listener)	 entry;
	int				 fd;
	struct listen_conf		*conf;
	struct event			 ev;
	struct event			 pause;
};

struct smtp_session;
RB_HEAD(smtp_session_tree, smtp_session);

#define SMTPD_MAXWORKERS	64

/* One tlsd worker: sessions are spread over them. */
struct smtpd_worker {
	struct imsgbuf		 ib;
	struct event		 ev;
	short			 events;
	int			 index;
};

struct smtpd_state {
	struct postern_conf	*conf;
	struct event_base	*base;
	struct imsgbuf		 parent;
	struct event		 ev_parent;
	struct imsgbuf		 queue;
	struct event		 ev_queue;
	short			 queue_events;
	TAILQ_HEAD(, smtp_listener) listeners;
	struct smtp_session_tree sessions;
	size_t			 nsessions;
	int			 running;
	struct smtpd_worker	 workers[SMTPD_MAXWORKERS];
	int			 nworkers;
	/* for show stats */
	uint64_t		 sessions_total;
	uint64_t		 tls_now;
	uint64_t		 tls_total;
	uint64_t		 tls_failed;
};

extern struct smtpd_state	*sd;

/* Queue output above this pauses sessions that stream data into it. */
#define SMTPD_QUEUE_HIWAT	(8 * 1024 * 1024)

void	smtpd_queue_update(void);
void	smtpd_worker_update(struct smtpd_worker *);

/* smtp_session.c */
void	smtp_session_accept(struct smtp_listener *, int,
	    const struct sockaddr_storage *);
void	smtp_session_queue_reply(struct imsg *);
void	smtp_session_resume_all(void);
void	smtp_session_shutdown_all(void);
void	smtp_session_tls_imsg(struct smtpd_worker *, struct imsg *);

#endif
