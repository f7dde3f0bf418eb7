/*
 * parent.h: state of posternd, the privileged parent.
 * SECURITY: runs as root; talks only to its own children.
 */
#ifndef POSTERN_PARENT_H
#define POSTERN_PARENT_H

#include <sys/types.h>
#include <event.h>

#include "config.h"
#include "imsg.h"

enum parent_child {
	CHILD_SMTPD,
	CHILD_QUEUE,
	CHILD_TLSD,		/* the first tlsd worker; more follow */
	CHILD_MAX = CHILD_TLSD + 64,
};

struct parent_proc {
	const char	*name;		/* "smtpd" */
	const char	*program;	/* "postern-smtpd" */
	pid_t		 pid;
	struct imsgbuf	 ib;
	struct event	 ev;
	short		 events;
};

/* parent_local.c: local delivery in a child running as the recipient. */
void	parent_local_init(void);
void	parent_local_request(struct postern_conf *, struct imsg *,
	    struct imsgbuf *queue);
/* Called from the SIGCHLD handler for a pid not among the core children;
 * returns 1 if it was a delivery child. */
int	parent_local_reap(pid_t, int status);
void	parent_local_shutdown(void);

/* parent_tls.c: certificates and keys for tlsd. */
/* Check and read every pki of conf and ship them, with the settings and
 * the CA bundle, to one tlsd worker; key bytes are wiped after.  Returns
 * -1 with a message logged when a file is missing or unsafe. */
int	parent_tls_ship(struct postern_conf *, struct imsgbuf *);

#endif
