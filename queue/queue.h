/*
 * queue.h: state shared by the parts of the queue process: the current
 * configuration and system users, the store, and the pipes to the parent
 * and to smtpd.
 * SECURITY: runs as _postern_queue, chrooted to the spool.
 */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <sys/types.h>
#include <sys/tree.h>
#include <event.h>

#include "config.h"
#include "imsg.h"
#include "proto.h"

struct queue_db;

struct queue_user {
	RB_ENTRY(queue_user)	 node;
	char			 name[PROTO_NAMELEN];
	uid_t			 uid;
	gid_t			 gid;
};
RB_HEAD(queue_user_tree, queue_user);

/* What the rules need to know of the session that asks. */
struct rule_ctx {
	int		 local;		/* local socket or loopback client */
	const char	*client;	/* address, "" for the local socket */
	const char	*auth_user;	/* "" if not authenticated */
	const char	*sender;	/* "" for <> */
};

/* One final recipient after alias expansion. */
struct rule_target {
	char		 rcpt[PROTO_ADDRLEN];
	char		 action[PROTO_NAMELEN];
	char		 mailbox[PROTO_HOSTLEN];	/* "" for relay */
};

#define RULE_MAXTARGETS		1000	/* one RCPT may expand to this many */
#define RULE_MAXDEPTH		10	/* alias nesting */

struct queue_peer {
	struct imsgbuf	 ib;
	struct event	 ev;
	short		 events;
	const char	*name;
};

struct queue_state {
	struct postern_conf	*conf;
	struct queue_user_tree	 users;
	struct queue_db		*db;
	struct queue_peer	 parent;
	struct queue_peer	 smtpd;
	time_t			 started;
};

extern struct queue_state	*qs;

void	queue_peer_update(struct queue_peer *);

/* queue_rule.c */
int	queue_user_cmp(struct queue_user *, struct queue_user *);
RB_PROTOTYPE(queue_user_tree, queue_user, node, queue_user_cmp);
const struct queue_user *queue_user_lookup(const struct queue_user_tree *,
	    const char *);
void	queue_users_free(struct queue_user_tree *);
/*
 * queue_rule_resolve: apply the match rules to one recipient.  Returns 0
 * with the final recipients in targets[0..*n), or -1 with a complete SMTP
 * reply line ("550 5.1.1 ...") in reply.
 */
int	queue_rule_resolve(const struct postern_conf *,
	    const struct queue_user_tree *, const struct rule_ctx *,
	    const char *rcpt, struct rule_target *targets, size_t max,
	    size_t *n, char *reply, size_t replysz);

/* queue_smtp.c: transactions coming from smtpd */
void	queue_smtp_init(void);
void	queue_smtp_dispatch(struct imsg *);

/* queue_ctl.c: posternctl's requests */
struct queue_stats {
	uint64_t	 received;
	uint64_t	 delivered;
	uint64_t	 deferred;
	uint64_t	 failed;
	int		 smtp_paused;
	int		 delivery_paused;
};
void	queue_ctl_accept(struct imsg *);
struct queue_stats *queue_ctl_stats(void);
/* IMSG_STATS_SET from smtpd or the parent. */
void	queue_ctl_stats_set(struct imsg *);
/* A delivery took this many seconds from arrival. */
void	queue_ctl_latency(int64_t);

/* queue_drop.c: sendmail's offline drop */
void	queue_drop_init(void);

/* queue_sched.c: hands due envelopes to deliveries */
void	queue_sched_init(void);
void	queue_sched_kick(void);
void	queue_sched_result(struct imsg *);

#endif
