/*
 * queue_drop.c: import the messages sendmail left in SPOOL/offline while
 * posternd was not running.  Each file is parsed strictly, its recipients
 * go through the match rules as local mail of the file's owner, and it is
 * removed only once the message is committed.
 * SECURITY: the files come from any local user (through the setgid
 * posternctl); the owner is taken from fstat, never from the content, and
 * a file that cannot be imported is set aside, never half-imported.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drop.h"
#include "log.h"
#include "proc.h"
#include "queue.h"
#include "queue_db.h"

#define DROP_PATH		"/" DROP_DIR
#define DROP_SCAN_SECONDS	5
#define DROP_STALE_SECONDS	(24 * 3600)	/* abandoned "t" files */

static struct event	 ev_drop;

static void	queue_drop_scan(int, short, void *);

void
queue_drop_init(void)
{
	struct timeval	 tv = { 0, 0 };

	evtimer_set(&ev_drop, queue_drop_scan, NULL);
	evtimer_add(&ev_drop, &tv);
}

/* Set a file aside under another name, so it is not tried again. */
static void
queue_drop_reject(const char *name, const char *why)
{
	char	 from[PATH_MAX], to[PATH_MAX];

	log_warnx("event=offline-refused file=%s error=\"%s\"", name, why);
	if (snprintf(from, sizeof(from), "%s/%s", DROP_PATH, name) >=
	    (int)sizeof(from) || snprintf(to, sizeof(to), "%s/x%s",
	    DROP_PATH, name + 1) >= (int)sizeof(to))
		return;
	if (rename(from, to) == -1)
		log_warn("rename %s", from);
}

/* local@domain, qualifying a bare local name with the host name. */
static int
queue_drop_qualify(const char *in, char *out, size_t outsz)
{
	int	 n;

	if (in[0] == '\0' || strchr(in, '@') != NULL)
		n = snprintf(out, outsz, "%s", in);
	else
		n = snprintf(out, outsz, "%s@%s", in, qs->conf->hostname);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* Import one file; 0 when it is done with (imported or set aside). */
static int
queue_drop_import(const char *name)
{
	struct queue_message_new	 m;
	struct queue_envelope_new	*evps = NULL;
	struct rule_target		*targets = NULL, *all = NULL;
	struct drop_msg			 d;
	struct rule_ctx			 ctx;
	struct stat			 st;
	char				 path[PATH_MAX], err[256];
	char				 sender[DROP_ADDRMAX], rcpt[DROP_ADDRMAX];
	char				 reply[PROTO_REPLYLEN], idbuf[17], uidbuf[16];
	char				 date[64], *buf = NULL, *msg = NULL;
	size_t				 i, j, n, nall = 0, maxlen, hlen;
	ssize_t				 r;
	time_t				 now = time(NULL);
	struct tm			 tm;
	int				 fd;

	if (snprintf(path, sizeof(path), "%s/%s", DROP_PATH, name) >=
	    (int)sizeof(path))
		return 0;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC)) == -1) {
		if (errno != ENOENT)
			queue_drop_reject(name, strerror(errno));
		return 0;
	}
	maxlen = qs->conf->max_message_size + 256 * 1024;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > maxlen) {
		close(fd);
		queue_drop_reject(name, "not a regular file, or too large");
		return 0;
	}
	if ((buf = malloc(st.st_size + 1)) == NULL)
		fatal("offline");
	for (n = 0; n < (size_t)st.st_size; n += r) {
		if ((r = read(fd, buf + n, st.st_size - n)) <= 0)
			break;
	}
	close(fd);
	if (n != (size_t)st.st_size) {
		free(buf);
		queue_drop_reject(name, "short read");
		return 0;
	}
	if (drop_parse(buf, n, &d, err, sizeof(err)) == -1) {
		free(buf);
		queue_drop_reject(name, err);
		return 0;
	}
	if (queue_drop_qualify(d.sender, sender, sizeof(sender)) == -1) {
		queue_drop_reject(name, "sender too long");
		goto done;
	}
	snprintf(uidbuf, sizeof(uidbuf), "%u", (unsigned)st.st_uid);
	memset(&ctx, 0, sizeof(ctx));
	ctx.local = 1;
	ctx.client = "";
	ctx.auth_user = "";
	ctx.sender = sender;
	if ((targets = calloc(RULE_MAXTARGETS, sizeof(*targets))) == NULL)
		fatal("offline");
	for (i = 0; i < d.nrcpts; i++) {
		if (queue_drop_qualify(d.rcpts[i], rcpt, sizeof(rcpt)) == -1 ||
		    queue_rule_resolve(qs->conf, &qs->users, &ctx, rcpt,
		    targets, RULE_MAXTARGETS, &n, reply, sizeof(reply)) == -1) {
			/* No bounce yet (issue 4): say it where admins look. */
			log_warnx("event=offline-rcpt-refused file=%s uid=%s "
			    "rcpt=%s reply=\"%s\"", name, uidbuf, d.rcpts[i],
			    reply);
			continue;
		}
		if ((all = reallocarray(all, nall + n, sizeof(*all))) == NULL)
			fatal("offline");
		for (j = 0; j < n; j++)
			all[nall++] = targets[j];
	}
	if (nall == 0) {
		queue_drop_reject(name, "no recipient accepted");
		goto done;
	}

	/* Received: first, as smtpd writes it for network mail. */
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	memset(&m, 0, sizeof(m));
	do {
		arc4random_buf(&m.msgid, sizeof(m.msgid));
	} while (m.msgid == 0);
	if ((msg = malloc(512 + d.bodylen)) == NULL)
		fatal("offline");
	hlen = snprintf(msg, 512, "Received: (from uid %s)\r\n\tby %s "
	    "(Postern) with local id %s;\r\n\t%s\r\n", uidbuf,
	    qs->conf->hostname, proc_id(m.msgid, idbuf), date);
	if (hlen >= 512)
		fatalx("offline: Received: header does not fit");
	memcpy(msg + hlen, d.body, d.bodylen);

	if ((evps = calloc(nall, sizeof(*evps))) == NULL)
		fatal("offline");
	for (i = 0; i < nall; i++) {
		evps[i].rcpt = all[i].rcpt;
		evps[i].orig_rcpt = all[i].rcpt;
		evps[i].action = all[i].action;
		evps[i].mailbox = all[i].mailbox;
		evps[i].orcpt = "";
	}
	m.sender = sender;
	m.envid = "";
	m.helo = "";
	m.client = "local";
	m.owner = st.st_uid;
	m.ctime = now;
	m.body = (const uint8_t *)msg;
	m.bodylen = hlen + d.bodylen;
	m.evps = evps;
	m.nevps = nall;
	if (queue_db_begin(qs->db) == -1 ||
	    queue_db_add_message(qs->db, &m) == -1 ||
	    queue_db_commit(qs->db) == -1) {
		/* Keep the file: the next scan tries again. */
		queue_db_rollback(qs->db);
		log_warnx("event=offline-deferred file=%s error=\"cannot "
		    "store the message\"", name);
		goto done;
	}
	if (unlink(path) == -1)
		log_warn("unlink %s (the message is queued; it may be "
		    "imported twice)", path);
	queue_ctl_stats()->received++;
	log_info("event=queued msg=%s uid=%s rcpts=%zu source=offline",
	    proc_id(m.msgid, idbuf), uidbuf, nall);
done:
	drop_free(&d);
	free(evps);
	free(all);
	free(targets);
	free(msg);
	free(buf);
	return 0;
}

static void
queue_drop_scan(int fd, short ev, void *arg)
{
	struct timeval	 tv = { DROP_SCAN_SECONDS, 0 };
	struct dirent	*de;
	struct stat	 st;
	DIR		*dir;
	char		 path[PATH_MAX];
	int		 imported = 0;

	if (qs->conf == NULL)
		goto again;
	if ((dir = opendir(DROP_PATH)) == NULL) {
		if (errno != ENOENT)
			log_warn("opendir %s", DROP_PATH);
		goto again;
	}
	while ((de = readdir(dir)) != NULL && imported < 100) {
		if (de->d_name[0] == 'm') {
			queue_drop_import(de->d_name);
			imported++;
		} else if (de->d_name[0] == 't' &&
		    snprintf(path, sizeof(path), "%s/%s", DROP_PATH,
		    de->d_name) < (int)sizeof(path) &&
		    lstat(path, &st) == 0 &&
		    st.st_mtime + DROP_STALE_SECONDS < time(NULL))
			(void)unlink(path);	/* a sendmail that died */
	}
	closedir(dir);
	if (imported > 0)
		queue_sched_kick();
again:
	evtimer_add(&ev_drop, &tv);
}
