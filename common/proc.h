/*
 * proc.h: what every Postern process does the same way: the fixed
 * descriptors a child starts with, the one privilege-drop sequence, and
 * the shipping of the configuration from the parent to a child.
 * SECURITY: proc_sandbox is the only place privileges are dropped; it
 * runs as root and ends unprivileged, chrooted, with no_new_privs.
 */
#ifndef POSTERN_PROC_H
#define POSTERN_PROC_H

#include <sys/types.h>

#include "config.h"
#include "imsg.h"

#define PROC_FD_PARENT		3	/* every child: pipe to posternd */
#define PROC_FD_PEER		4	/* smtpd <-> queue */

#define PROC_USER_SMTPD		"_postern_smtpd"
#define PROC_USER_TLSD		"_postern_tlsd"
#define PROC_USER_QUEUE		"_postern_queue"
#define PROC_GROUP_DROP		"_postern_drop"	/* setgid of sendmail */

#define PROC_SPOOL_QUEUE	"queue"	/* spool subdirectory for queue.db */
#define PROC_SPOOL_EMPTY	"empty"	/* chroot of smtpd and tlsd */

/*
 * proc_sandbox: chroot to root (which must be owned by root and not
 * writable by group or others), switch to user's uid and gid with no
 * supplementary groups, set no_new_privs and a zero core limit.  Fatal on
 * any failure.
 */
void	proc_sandbox(const char *user, const char *root);

/* Parent side: send the configuration text, the table files it uses and
 * the command-line macros to a child, as IMSG_CONF_* frames. */
int	proc_conf_send(struct imsgbuf *, const char *fname, const char *text,
	    size_t len, const struct postern_conf *,
	    const struct conf_macro *, size_t nmacros);

/* Child side: collect IMSG_CONF_BLOB frames until IMSG_CONF_END. */
struct conf_wire;
struct conf_wire *proc_conf_wire_new(void);
void	proc_conf_wire_free(struct conf_wire *);
/* Take one blob (fatal on malformed frame). */
void	proc_conf_wire_blob(struct conf_wire *, struct imsg *);
/* At IMSG_CONF_END: parse what came.  Returns the configuration or NULL
 * with the parse error in err. */
struct postern_conf *proc_conf_wire_end(struct conf_wire *, struct imsg *,
	    char *err, size_t errsz);

/* Hex form of an id: 16 lowercase digits. */
const char *proc_id(uint64_t id, char buf[17]);

#endif
