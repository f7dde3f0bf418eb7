/*
 * parent_local.c: local delivery (maildir, mbox) in a short-lived child of
 * the parent that has switched to the mailbox owner's uid and gid.
 * SECURITY: the request comes from queue, which may be compromised: the
 * action and its path template come from the parent's own configuration,
 * the user is looked up here, root is never a delivery user, and every
 * value that reaches a path is checked by parent_deliver_expand().
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "parent.h"
#include "parent_deliver.h"
#include "proc.h"
#include "proto.h"

#define LOCAL_TIMEOUT		300	/* seconds a delivery may take */

struct local_delivery {
	TAILQ_ENTRY(local_delivery)	 entry;
	pid_t				 pid;
	uint64_t			 evpid;
	int				 errfd;	/* child's reason, read end */
	struct imsgbuf			*queue;
	struct event			 timer;
};
TAILQ_HEAD(, local_delivery)	 local_running =
	TAILQ_HEAD_INITIALIZER(local_running);

static void	parent_local_reply(struct imsgbuf *, uint64_t, int,
		    const char *);
static __dead void parent_local_child(const struct action_conf *,
		    const struct passwd *, const struct msg_deliver_local *,
		    uint64_t, int, int);
static void	parent_local_timeout(int, short, void *);

void
parent_local_init(void)
{
}

/* Tell queue how one delivery ended. */
static void
parent_local_reply(struct imsgbuf *queue, uint64_t evpid, int status,
    const char *text)
{
	struct imsg_payload		 p;
	struct msg_deliver_result	 r;

	memset(&r, 0, sizeof(r));
	r.status = status;
	strlcpy(r.text, text, sizeof(r.text));
	imsg_payload_init(&p);
	proto_enc_deliver_result(&p, &r);
	if (imsg_compose_payload(queue, IMSG_DELIVER_RESULT, evpid, -1,
	    &p) == -1)
		fatal("compose delivery result");
	imsg_payload_free(&p);
}

void
parent_local_request(struct postern_conf *conf, struct imsg *imsg,
    struct imsgbuf *queue)
{
	struct msg_deliver_local	 d;
	struct action_conf		*act;
	struct passwd			*pw, pwcopy;
	struct local_delivery		*ld;
	struct timeval			 tv = { LOCAL_TIMEOUT, 0 };
	char				 idbuf[17];
	int				 fd, errpipe[2];
	pid_t				 pid;

	if (proto_dec_deliver_local(imsg, &d) == -1)
		fatalx("queue: malformed IMSG_DELIVER_LOCAL");
	if ((fd = imsg->fd) == -1)
		fatalx("queue: IMSG_DELIVER_LOCAL without a message");
	imsg->fd = -1;
	proc_id(imsg->hdr.id, idbuf);

	if ((act = config_action(conf, d.action)) == NULL ||
	    (act->kind != ACTION_MAILDIR && act->kind != ACTION_MBOX)) {
		/* Rules changed under the queue (reload): try later. */
		parent_local_reply(queue, imsg->hdr.id, DELIVER_TEMPFAIL,
		    "no such local action");
		close(fd);
		return;
	}
	pw = getpwnam(act->user[0] != '\0' ? act->user : d.mailbox);
	if (pw == NULL) {
		parent_local_reply(queue, imsg->hdr.id, DELIVER_PERMFAIL,
		    "5.1.1 no such user");
		close(fd);
		return;
	}
	if (pw->pw_uid == 0) {
		parent_local_reply(queue, imsg->hdr.id, DELIVER_PERMFAIL,
		    "5.7.1 delivery as root refused; alias root to a person");
		close(fd);
		return;
	}
	pwcopy = *pw;
	if (pipe2(errpipe, O_CLOEXEC) == -1) {
		parent_local_reply(queue, imsg->hdr.id, DELIVER_TEMPFAIL,
		    "4.3.0 pipe failed");
		close(fd);
		return;
	}
	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		parent_local_reply(queue, imsg->hdr.id, DELIVER_TEMPFAIL,
		    "4.3.0 fork failed");
		close(fd);
		close(errpipe[0]);
		close(errpipe[1]);
		return;
	case 0:
		close(errpipe[0]);
		parent_local_child(act, &pwcopy, &d, imsg->hdr.id, fd,
		    errpipe[1]);
		/* NOTREACHED */
	}
	close(fd);
	close(errpipe[1]);
	if ((ld = calloc(1, sizeof(*ld))) == NULL)
		fatal("local delivery");
	ld->pid = pid;
	ld->evpid = imsg->hdr.id;
	ld->errfd = errpipe[0];
	ld->queue = queue;
	evtimer_set(&ld->timer, parent_local_timeout, ld);
	evtimer_add(&ld->timer, &tv);
	TAILQ_INSERT_TAIL(&local_running, ld, entry);
	log_debug("event=local-start evp=%s pid=%d user=%s", idbuf, (int)pid,
	    pwcopy.pw_name);
}

/* The delivery child: become the user, expand the path, deliver. */
static __dead void
parent_local_child(const struct action_conf *act, const struct passwd *pw,
    const struct msg_deliver_local *d, uint64_t evpid, int msgfd, int errfd)
{
	char	 path[PATH_MAX], err[512], tag[17];
	int	 rv;

	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1) {
		dprintf(errfd, "4.3.0 cannot switch to user %s", pw->pw_name);
		_exit(EX_TEMPFAIL);
	}
	err[0] = '\0';
	if (parent_deliver_expand(act->path, pw->pw_dir, d->mailbox, d->rcpt,
	    path, sizeof(path), err, sizeof(err)) == -1) {
		dprintf(errfd, "5.1.3 %s", err);
		_exit(EX_DATAERR);
	}
	if (act->kind == ACTION_MAILDIR)
		rv = parent_deliver_maildir(path, msgfd, d->sender, d->rcpt,
		    proc_id(evpid, tag), (time_t)d->ctime, d->retry, err,
		    sizeof(err));
	else
		rv = parent_deliver_mbox(path, msgfd, d->sender, d->rcpt,
		    (time_t)d->ctime, err, sizeof(err));
	if (rv != EX_OK)
		dprintf(errfd, "%s %s", rv == EX_NOUSER || rv == EX_DATAERR ||
		    rv == EX_USAGE ? "5.2.0" : "4.2.0", err);
	_exit(rv);
}

/* A delivery that hangs costs one attempt, never the parent. */
static void
parent_local_timeout(int fd, short ev, void *arg)
{
	struct local_delivery	*ld = arg;

	log_warnx("event=local-timeout pid=%d", (int)ld->pid);
	kill(ld->pid, SIGKILL);
}

int
parent_local_reap(pid_t pid, int status)
{
	struct local_delivery	*ld;
	char			 text[PROTO_REPLYLEN], idbuf[17];
	ssize_t			 n;
	int			 result;

	TAILQ_FOREACH(ld, &local_running, entry)
		if (ld->pid == pid)
			break;
	if (ld == NULL)
		return 0;
	TAILQ_REMOVE(&local_running, ld, entry);
	evtimer_del(&ld->timer);
	/* The child has exited: what it wrote is all in the pipe. */
	fcntl(ld->errfd, F_SETFL, O_NONBLOCK);
	n = read(ld->errfd, text, sizeof(text) - 1);
	text[n > 0 ? n : 0] = '\0';
	text[strcspn(text, "\r\n")] = '\0';
	close(ld->errfd);

	if (WIFEXITED(status) && WEXITSTATUS(status) == EX_OK) {
		result = DELIVER_OK;
		strlcpy(text, "delivered", sizeof(text));
	} else if (WIFEXITED(status) && (WEXITSTATUS(status) == EX_NOUSER ||
	    WEXITSTATUS(status) == EX_DATAERR ||
	    WEXITSTATUS(status) == EX_USAGE)) {
		/*
		 * Only what cannot change by itself is permanent; a mailbox
		 * the admin can fix (EX_CANTCREAT...) is retried, as Postfix
		 * does.
		 */
		result = DELIVER_PERMFAIL;
	} else {
		result = DELIVER_TEMPFAIL;
		if (WIFSIGNALED(status))
			snprintf(text, sizeof(text), "4.3.0 delivery killed "
			    "by signal %d", WTERMSIG(status));
	}
	if (text[0] == '\0')
		snprintf(text, sizeof(text), "delivery failed, status %d",
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	log_debug("event=local-done evp=%s pid=%d result=%d",
	    proc_id(ld->evpid, idbuf), (int)pid, result);
	parent_local_reply(ld->queue, ld->evpid, result, text);
	free(ld);
	return 1;
}

void
parent_local_shutdown(void)
{
	struct local_delivery	*ld;

	/* Deliveries still running are retried by queue after restart. */
	TAILQ_FOREACH(ld, &local_running, entry)
		kill(ld->pid, SIGKILL);
}
