/*
 * posternd.c: the privileged parent.  Reads the configuration, prepares
 * the spool, opens the listeners, starts smtpd, tlsd and queue (each a
 * fresh exec under its own user), ships them what they need, supervises
 * them, and performs local deliveries as the recipient user.
 * SECURITY: runs as root.  Never parses mail or talks to a network peer;
 * every request from a child is decoded strictly and checked against its
 * own copy of the configuration.  A child that dies stops everything.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "parent.h"
#include "proc.h"
#include "proto.h"

#define PARENT_CONFFILE		"/etc/postern/postern.conf"
#define PARENT_MAXMACROS	32
#define PARENT_LISTEN_BACKLOG	512

struct listener_sock {
	int		 fd;
	uint32_t	 index;
};

static struct parent_proc procs[CHILD_MAX] = {
	[CHILD_SMTPD] = { .name = "smtpd", .program = "postern-smtpd" },
	[CHILD_QUEUE] = { .name = "queue", .program = "postern-queue" },
};
static int			 nprocs;	/* CHILD_TLSD + workers */

static struct postern_conf	*conf;
static const char		*conffile = PARENT_CONFFILE;
static struct conf_macro	 macros[PARENT_MAXMACROS];
static size_t			 nmacros;
static int			 foreground, verbose;
static int			 stopping;
static int			 exit_status;
static char			 progdir[PATH_MAX];
static struct event		 ev_sigterm, ev_sigint, ev_sighup, ev_sigchld;
static struct event		 ev_stop_timer;
static struct event		 ev_control;
static struct event		 ev_memory;
static int			 control_fd = -1;

static __dead void usage(void);
static void	parent_spool_prepare(const char *);
static int	parent_listen(struct listener_sock **, size_t *);
static void	parent_start(enum parent_child, int, int);
static void	parent_ship_conf(struct imsgbuf *, int);
static void	parent_dispatch(int, short, void *);
static void	parent_update_event(struct parent_proc *);
static void	parent_sig(int, short, void *);
static void	parent_stop(int);
static void	parent_reload(void);
static char	*parent_read_conf_text(size_t *);
static int	parent_control_open(const char *);
static int	parent_unix_listen(const char *, const char *);
static void	parent_memory(int, short, void *);
static void	parent_control_accept(int, short, void *);

static __dead void
usage(void)
{
	fprintf(stderr, "usage: posternd [-dnv] [-D name=value] [-f file]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct listener_sock	*socks = NULL;
	size_t			 nsocks = 0, i;
	char			 err[CONF_ERRLEN], exe[PATH_MAX];
	int			 ch, checkonly = 0;
	int			 sp_smtpd[2], sp_tlsd[2], sp_queue[2], sp_peer[2];
	ssize_t			 n;

	while ((ch = getopt(argc, argv, "dD:f:nv")) != -1) {
		switch (ch) {
		case 'd':
			foreground = 1;
			break;
		case 'D': {
			char	*eq = strchr(optarg, '=');

			if (eq == NULL || eq == optarg ||
			    nmacros == PARENT_MAXMACROS) {
				fprintf(stderr, "posternd: bad macro: %s\n",
				    optarg);
				exit(2);
			}
			*eq = '\0';
			macros[nmacros].name = optarg;
			macros[nmacros].value = eq + 1;
			nmacros++;
			break;
		}
		case 'f':
			conffile = optarg;
			break;
		case 'n':
			checkonly = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	conf = config_read_file(conffile, macros, nmacros, err, sizeof(err));
	if (conf == NULL) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	if (checkonly) {
		fprintf(stderr, "%s: configuration OK\n", conffile);
		exit(0);
	}
	if (geteuid() != 0) {
		fprintf(stderr, "posternd: must be started as root\n");
		exit(1);
	}
	log_init("posternd", foreground, verbose);

	/* Children live next to this program, or in the libexec dir. */
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) == -1)
		fatal("readlink /proc/self/exe");
	exe[n] = '\0';
	strlcpy(progdir, dirname(exe), sizeof(progdir));
	{
		char	 probe[PATH_MAX];

		if (snprintf(probe, sizeof(probe), "%s/postern-smtpd",
		    progdir) >= (int)sizeof(probe) ||
		    access(probe, X_OK) == -1)
			strlcpy(progdir, PATH_LIBEXEC, sizeof(progdir));
	}

	if (getpwnam(PROC_USER_SMTPD) == NULL ||
	    getpwnam(PROC_USER_TLSD) == NULL ||
	    getpwnam(PROC_USER_QUEUE) == NULL)
		fatalx("system users %s, %s and %s must exist",
		    PROC_USER_SMTPD, PROC_USER_TLSD, PROC_USER_QUEUE);
	parent_spool_prepare(conf->spool);

	if (parent_listen(&socks, &nsocks) == -1)
		exit(1);
	if ((control_fd = parent_control_open(conf->control)) == -1)
		exit(1);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp_smtpd) ==
	    -1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sp_queue) == -1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
	    0, sp_peer) == -1)
		fatal("socketpair");

	signal(SIGPIPE, SIG_IGN);
	parent_start(CHILD_QUEUE, sp_queue[1], sp_peer[1]);
	parent_start(CHILD_SMTPD, sp_smtpd[1], sp_peer[0]);
	close(sp_queue[1]);
	close(sp_smtpd[1]);
	close(sp_peer[0]);
	close(sp_peer[1]);
	imsgbuf_init(&procs[CHILD_QUEUE].ib, sp_queue[0]);
	imsgbuf_init(&procs[CHILD_SMTPD].ib, sp_smtpd[0]);

	/* TLS workers: a pipe to us and one to smtpd each. */
	nprocs = CHILD_TLSD + conf->tls_workers;
	for (i = CHILD_TLSD; i < (size_t)nprocs; i++) {
		struct imsg_payload		 p;
		struct msg_tls_worker_fd	 w;

		procs[i].name = "tlsd";
		procs[i].program = "postern-tlsd";
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    sp_tlsd) == -1 || socketpair(AF_UNIX,
		    SOCK_STREAM | SOCK_CLOEXEC, 0, sp_peer) == -1)
			fatal("socketpair");
		parent_start(i, sp_tlsd[1], sp_peer[1]);
		close(sp_tlsd[1]);
		close(sp_peer[1]);
		imsgbuf_init(&procs[i].ib, sp_tlsd[0]);
		/* smtpd gets its end before its configuration. */
		w.index = i - CHILD_TLSD;
		imsg_payload_init(&p);
		proto_enc_tls_worker_fd(&p, &w);
		if (imsg_compose_payload(&procs[CHILD_SMTPD].ib,
		    IMSG_TLS_WORKER_FD, 0, sp_peer[0], &p) == -1)
			fatal("compose worker fd");
		imsg_payload_free(&p);
		if (parent_tls_ship(conf, &procs[i].ib) == -1)
			exit(1);
	}

	event_init();
	parent_local_init();

	parent_ship_conf(&procs[CHILD_QUEUE].ib, 1);
	parent_ship_conf(&procs[CHILD_SMTPD].ib, 0);
	for (i = 0; i < nsocks; i++) {
		struct imsg_payload	 p;
		struct msg_listener_fd	 l = { .index = socks[i].index };

		imsg_payload_init(&p);
		proto_enc_listener_fd(&p, &l);
		if (imsg_compose_payload(&procs[CHILD_SMTPD].ib,
		    IMSG_LISTENER_FD, 0, socks[i].fd, &p) == -1)
			fatal("compose listener");
		imsg_payload_free(&p);
	}
	free(socks);

	for (i = 0; i < (size_t)nprocs; i++) {
		if (fcntl(procs[i].ib.fd, F_SETFL, O_NONBLOCK) == -1)
			fatal("fcntl");
		procs[i].events = 0;
		parent_update_event(&procs[i]);
	}

	event_set(&ev_control, control_fd, EV_READ | EV_PERSIST,
	    parent_control_accept, NULL);
	event_add(&ev_control, NULL);
	evtimer_set(&ev_memory, parent_memory, NULL);
	parent_memory(-1, 0, NULL);

	signal_set(&ev_sigterm, SIGTERM, parent_sig, NULL);
	signal_set(&ev_sigint, SIGINT, parent_sig, NULL);
	signal_set(&ev_sighup, SIGHUP, parent_sig, NULL);
	signal_set(&ev_sigchld, SIGCHLD, parent_sig, NULL);
	signal_add(&ev_sigterm, NULL);
	signal_add(&ev_sigint, NULL);
	signal_add(&ev_sighup, NULL);
	signal_add(&ev_sigchld, NULL);

	log_info("event=start version=%s config=%s spool=%s hostname=%s",
	    POSTERN_VERSION, conffile, conf->spool, conf->hostname);
	event_dispatch();
	return exit_status;
}

/*
 * The spool is root's: SPOOL (0711), SPOOL/queue owned by the queue user
 * (0700), SPOOL/empty (0555, the chroot of smtpd and tlsd).  Refuse one
 * that others could write to.
 */
static void
parent_spool_prepare(const char *spool)
{
	struct passwd	*pw;
	struct group	*gr;
	struct stat	 st;
	char		 path[PATH_MAX];

	if ((pw = getpwnam(PROC_USER_QUEUE)) == NULL)
		fatalx("unknown user %s", PROC_USER_QUEUE);
	if (mkdir(spool, 0711) == -1 && errno != EEXIST)
		fatal("mkdir %s", spool);
	if (lstat(spool, &st) == -1)
		fatal("%s", spool);
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		fatalx("spool %s must be a directory owned by root and not "
		    "writable by group or others", spool);

	if (snprintf(path, sizeof(path), "%s/%s", spool, PROC_SPOOL_QUEUE) >=
	    (int)sizeof(path))
		fatalx("spool path too long");
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	if (lstat(path, &st) == -1)
		fatal("%s", path);
	if (!S_ISDIR(st.st_mode))
		fatalx("%s must be a directory", path);
	if (st.st_uid != pw->pw_uid || (st.st_mode & 077) != 0) {
		if (chown(path, pw->pw_uid, pw->pw_gid) == -1 ||
		    chmod(path, 0700) == -1)
			fatal("%s", path);
	}

	/*
	 * The offline drop: sendmail, setgid _postern_drop, may create
	 * files but not list or read them (1730); queue owns and empties it.
	 */
	if ((gr = getgrnam(PROC_GROUP_DROP)) == NULL)
		fatalx("system group %s must exist", PROC_GROUP_DROP);
	if (snprintf(path, sizeof(path), "%s/offline", spool) >=
	    (int)sizeof(path))
		fatalx("spool path too long");
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	if (lstat(path, &st) == -1)
		fatal("%s", path);
	if (!S_ISDIR(st.st_mode))
		fatalx("%s must be a directory", path);
	if (st.st_uid != pw->pw_uid || st.st_gid != gr->gr_gid ||
	    (st.st_mode & 07777) != 01730) {
		if (chown(path, pw->pw_uid, gr->gr_gid) == -1 ||
		    chmod(path, 01730) == -1)
			fatal("%s", path);
	}

	if (snprintf(path, sizeof(path), "%s/%s", spool, PROC_SPOOL_EMPTY) >=
	    (int)sizeof(path))
		fatalx("spool path too long");
	if (mkdir(path, 0555) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	if (lstat(path, &st) == -1)
		fatal("%s", path);
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		fatalx("%s must be a directory owned by root and not writable "
		    "by group or others", path);
}

/* Bind one listening socket per address of each listen statement. */
static int
parent_listen(struct listener_sock **out, size_t *nout)
{
	struct listen_conf	*l;
	struct addrinfo		 hints, *res, *ai;
	struct listener_sock	*socks = NULL, *ns;
	size_t			 n = 0;
	uint32_t		 index = 0;
	char			 port[8];
	const char		*host;
	int			 fd, on = 1, rv;

	TAILQ_FOREACH(l, &conf->listeners, entry) {
		index++;
		if (l->is_socket) {
			if ((fd = parent_unix_listen(l->path,
			    "local submission socket")) == -1)
				return -1;
			if ((ns = reallocarray(socks, n + 1,
			    sizeof(*ns))) == NULL)
				fatal("listen");
			socks = ns;
			socks[n].fd = fd;
			socks[n].index = index - 1;
			n++;
			continue;
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		host = l->addr;
		if (strcmp(host, "any") == 0)
			host = NULL;
		else if (strcmp(host, "localhost") != 0)
			hints.ai_flags |= AI_NUMERICHOST;
		snprintf(port, sizeof(port), "%u", l->port);
		if ((rv = getaddrinfo(host, port, &hints, &res)) != 0) {
			log_warnx("%s:%d: listen on %s: %s", conffile, l->line,
			    l->addr, gai_strerror(rv));
			return -1;
		}
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype |
			    SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
			if (fd == -1)
				fatal("socket");
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
			    sizeof(on));
			if (ai->ai_family == AF_INET6)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
				    sizeof(on));
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 ||
			    listen(fd, PARENT_LISTEN_BACKLOG) == -1) {
				log_warn("listen on %s port %u", l->addr,
				    l->port);
				freeaddrinfo(res);
				return -1;
			}
			if ((ns = reallocarray(socks, n + 1,
			    sizeof(*ns))) == NULL)
				fatal("listen");
			socks = ns;
			socks[n].fd = fd;
			socks[n].index = index - 1;
			n++;
			log_info("event=listen addr=%s port=%u", l->addr,
			    l->port);
		}
		freeaddrinfo(res);
	}
	*out = socks;
	*nout = n;
	return 0;
}

/*
 * The control socket: any local user may connect (0666); queue decides
 * per request, knowing the caller's uid from SO_PEERCRED.
 */
static int
parent_control_open(const char *path)
{
	return parent_unix_listen(path, "control socket");
}

/* A UNIX socket anyone may connect to (0666), for posternctl and for
 * local submission; a stale one from an earlier run is replaced. */
static int
parent_unix_listen(const char *path, const char *what)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	char			 dir[PATH_MAX], *slash;
	mode_t			 old;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		log_warnx("%s path too long: %s", what, path);
		return -1;
	}
	strlcpy(dir, path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
			log_warn("mkdir %s", dir);
			return -1;
		}
	}
	/* A stale socket from an earlier run; never remove anything else. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_warnx("%s exists and is not a socket", path);
			return -1;
		}
		if (unlink(path) == -1) {
			log_warn("unlink %s", path);
			return -1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		fatal("socket");
	old = umask(0111);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		log_warn("bind %s", path);
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(path, 0666) == -1 || listen(fd, 64) == -1) {
		log_warn("%s %s", what, path);
		close(fd);
		return -1;
	}
	log_debug("event=listen what=\"%s\" path=%s", what, path);
	return fd;
}

/* Proportional set size of a process in KiB, 0 if unknown. */
static int64_t
parent_pss(pid_t pid)
{
	char	 path[64], line[256];
	FILE	*f;
	long long kib = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Pss: %lld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Every few seconds: each process's memory, for show stats. */
static void
parent_memory(int fd, short ev, void *arg)
{
	struct timeval		 tv = { 5, 0 };
	struct imsg_payload	 p;
	struct msg_ctl_stat	 st[4];
	int			 i, k;

	memset(st, 0, sizeof(st));
	strlcpy(st[0].name, "memory_posternd_kib", sizeof(st[0].name));
	st[0].value = parent_pss(getpid());
	strlcpy(st[1].name, "memory_smtpd_kib", sizeof(st[1].name));
	strlcpy(st[2].name, "memory_queue_kib", sizeof(st[2].name));
	strlcpy(st[3].name, "memory_tlsd_kib", sizeof(st[3].name));
	for (i = 0; i < nprocs; i++) {
		if (procs[i].pid == 0)
			continue;
		k = i == CHILD_SMTPD ? 1 : i == CHILD_QUEUE ? 2 : 3;
		st[k].value += parent_pss(procs[i].pid);
	}
	for (k = 0; k < 4 && !stopping; k++) {
		imsg_payload_init(&p);
		proto_enc_ctl_stat(&p, &st[k]);
		if (imsg_compose_payload(&procs[CHILD_QUEUE].ib,
		    IMSG_STATS_SET, 0, -1, &p) == -1)
			fatal("compose stats");
		imsg_payload_free(&p);
	}
	if (procs[CHILD_QUEUE].events != 0)
		parent_update_event(&procs[CHILD_QUEUE]);
	evtimer_add(&ev_memory, &tv);
}

/* Is the user (uid, primary gid) a member of the named group? */
static int
parent_in_group(uid_t uid, gid_t gid, const char *name)
{
	struct passwd	*pw;
	struct group	*gr;
	gid_t		 groups[1024];
	int		 n = 1024, i;

	if (name[0] == '\0' || (gr = getgrnam(name)) == NULL)
		return 0;
	if (gid == gr->gr_gid)
		return 1;
	if ((pw = getpwuid(uid)) == NULL ||
	    getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1)
		return 0;
	for (i = 0; i < n; i++)
		if (groups[i] == gr->gr_gid)
			return 1;
	return 0;
}

static void
parent_control_accept(int fd, short ev, void *arg)
{
	struct imsg_payload	 p;
	struct msg_ctl_conn	 c;
	struct ucred		 cred;
	socklen_t		 len = sizeof(cred);
	int			 s;

	if ((s = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn("control accept");
		return;
	}
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("SO_PEERCRED");
		close(s);
		return;
	}
	memset(&c, 0, sizeof(c));
	c.uid = cred.uid;
	c.gid = cred.gid;
	c.admin = cred.uid == 0 ||
	    parent_in_group(cred.uid, cred.gid, conf->control_admin);
	c.monitor = c.admin ||
	    parent_in_group(cred.uid, cred.gid, conf->control_monitor);
	imsg_payload_init(&p);
	proto_enc_ctl_conn(&p, &c);
	if (imsg_compose_payload(&procs[CHILD_QUEUE].ib, IMSG_CTL_CONN, 0, s,
	    &p) == -1)
		fatal("compose control connection");
	imsg_payload_free(&p);
	parent_update_event(&procs[CHILD_QUEUE]);
}

/* Fork and exec one child with its pipes on the fixed descriptors. */
static void
parent_start(enum parent_child which, int fd_parent, int fd_peer)
{
	struct parent_proc	*p = &procs[which];
	char			 path[PATH_MAX];
	char			*argv[5];
	int			 argc = 0;
	pid_t			 pid;

	if (snprintf(path, sizeof(path), "%s/%s", progdir, p->program) >=
	    (int)sizeof(path))
		fatalx("program path too long");
	switch (pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		break;
	default:
		p->pid = pid;
		log_debug("event=child-start process=%s pid=%d", p->name,
		    (int)pid);
		return;
	}

	/* Child: fixed descriptors, nothing else inherited.  Move both
	 * out of the way first so neither dup2 clobbers the other. */
	if ((fd_parent = fcntl(fd_parent, F_DUPFD, 10)) == -1)
		_exit(1);
	if (fd_peer != -1 && (fd_peer = fcntl(fd_peer, F_DUPFD, 10)) == -1)
		_exit(1);
	if (dup2(fd_parent, PROC_FD_PARENT) == -1)
		_exit(1);
	if (fd_peer != -1 && dup2(fd_peer, PROC_FD_PEER) == -1)
		_exit(1);
	closefrom(fd_peer != -1 ? PROC_FD_PEER + 1 : PROC_FD_PARENT + 1);
	argv[argc++] = (char *)p->program;
	if (foreground)
		argv[argc++] = "-d";
	if (verbose)
		argv[argc++] = "-v";
	argv[argc++] = (char *)conf->spool;
	argv[argc] = NULL;
	execv(path, argv);
	fprintf(stderr, "posternd: exec %s: %s\n", path, strerror(errno));
	_exit(1);
}

/* Read the configuration file's bytes again, to ship them. */
static char *
parent_read_conf_text(size_t *len)
{
	char	*text, err[CONF_ERRLEN];

	if (config_load_file(NULL, conffile, &text, len, err,
	    sizeof(err)) == -1) {
		log_warnx("%s", err);
		return NULL;
	}
	return text;
}

/* Send the configuration (and, to queue, the system users) to a child. */
static void
parent_ship_conf(struct imsgbuf *ib, int with_users)
{
	struct passwd		*pw;
	struct imsg_payload	 p;
	struct msg_conf_user	 u;
	char			*text;
	size_t			 len;

	if ((text = parent_read_conf_text(&len)) == NULL)
		fatalx("cannot read %s", conffile);
	if (with_users) {
		setpwent();
		while ((pw = getpwent()) != NULL) {
			memset(&u, 0, sizeof(u));
			if (strlcpy(u.name, pw->pw_name, sizeof(u.name)) >=
			    sizeof(u.name) || strlcpy(u.home, pw->pw_dir,
			    sizeof(u.home)) >= sizeof(u.home))
				continue;
			u.uid = pw->pw_uid;
			u.gid = pw->pw_gid;
			imsg_payload_init(&p);
			proto_enc_conf_user(&p, &u);
			if (imsg_compose_payload(ib, IMSG_CONF_USER, 0, -1,
			    &p) == -1)
				fatal("compose user");
			imsg_payload_free(&p);
		}
		endpwent();
	}
	/*
	 * The text we ship may differ from what we parsed if the file
	 * changed in between; children parse it themselves and fail closed.
	 */
	if (proc_conf_send(ib, conffile, text, len, conf, macros,
	    nmacros) == -1)
		fatalx("cannot ship the configuration");
	free(text);
}

static void
parent_update_event(struct parent_proc *p)
{
	short	 events = EV_READ;

	if (imsgbuf_queued(&p->ib) > 0)
		events |= EV_WRITE;
	if (p->events == events)
		return;
	if (p->events != 0)
		event_del(&p->ev);
	p->events = events;
	event_set(&p->ev, p->ib.fd, events | EV_PERSIST, parent_dispatch, p);
	event_add(&p->ev, NULL);
}

/* Messages from a child.  Only queue may ask for anything. */
static void
parent_dispatch(int fd, short ev, void *arg)
{
	struct parent_proc	*p = arg;
	struct imsg		 imsg;
	ssize_t			 n;
	int			 rv;

	if (ev & EV_WRITE) {
		if (imsgbuf_write(&p->ib) == -1 && errno != EPIPE)
			fatal("%s: write", p->name);
	}
	if (ev & EV_READ) {
		n = imsgbuf_read(&p->ib);
		if (n == -1 && errno != EAGAIN && errno != ECONNRESET)
			fatal("%s: read", p->name);
		if (n == 0 || (n == -1 && errno == ECONNRESET)) {
			/* The child is gone; SIGCHLD tells us why. */
			event_del(&p->ev);
			p->events = 0;
			return;
		}
		while ((rv = imsg_get(&p->ib, &imsg)) == 1) {
			if (p == &procs[CHILD_QUEUE] &&
			    imsg.hdr.type == IMSG_DELIVER_LOCAL)
				parent_local_request(conf, &imsg,
				    &procs[CHILD_QUEUE].ib);
			else if (p == &procs[CHILD_QUEUE] &&
			    imsg.hdr.type == IMSG_CTL_PARENT_RELOAD) {
				if (imsg_end(&imsg) == -1)
					fatalx("queue: malformed reload");
				parent_reload();
			} else if (p == &procs[CHILD_QUEUE] &&
			    imsg.hdr.type == IMSG_CTL_LOG) {
				struct msg_ctl_what	 w;
				struct imsg_payload	 pl;

				if (proto_dec_ctl_what(&imsg, &w) == -1 ||
				    w.what > 1)
					fatalx("queue: malformed log request");
				log_setverbose(w.what);
				imsg_payload_init(&pl);
				proto_enc_ctl_what(&pl, &w);
				if (imsg_compose_payload(
				    &procs[CHILD_SMTPD].ib, IMSG_CTL_LOG, 0,
				    -1, &pl) == -1)
					fatal("compose log");
				imsg_payload_free(&pl);
				log_info("event=log level=%s", w.what ?
				    "verbose" : "brief");
			} else
				fatalx("%s: unexpected message type %u",
				    p->name, imsg.hdr.type);
			imsg_free(&imsg);
		}
		if (rv == -1)
			fatalx("%s: malformed message", p->name);
	}
	for (n = 0; n < nprocs; n++)
		if (procs[n].events != 0)
			parent_update_event(&procs[n]);
}

static void
parent_sig(int sig, short ev, void *arg)
{
	pid_t	 pid;
	int	 status, i;

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_info("event=stop signal=%s", strsignal(sig));
		parent_stop(0);
		break;
	case SIGHUP:
		parent_reload();
		break;
	case SIGCHLD: {
		pid_t	 dead[CHILD_MAX];
		int	 dstatus[CHILD_MAX], ndead = 0, pass, k;

		/* Reap everything first: report the cause, not the echo. */
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (i = 0; i < nprocs; i++)
				if (procs[i].pid == pid)
					break;
			if (i == nprocs) {
				if (parent_local_reap(pid, status) &&
				    procs[CHILD_QUEUE].events != 0)
					parent_update_event(
					    &procs[CHILD_QUEUE]);
				continue;
			}
			procs[i].pid = 0;
			dead[ndead] = i;
			dstatus[ndead++] = status;
		}
		/* Children killed by a signal first: they are the cause. */
		for (pass = 0; pass < 2; pass++)
			for (k = 0; k < ndead; k++) {
				i = dead[k];
				status = dstatus[k];
				if ((pass == 0) != (WIFSIGNALED(status) != 0))
					continue;
				if (WIFSIGNALED(status) && (!stopping ||
				    (WTERMSIG(status) != SIGTERM &&
				    WTERMSIG(status) != SIGKILL))) {
					log_warnx("event=child-died process=%s "
					    "signal=%s%s", procs[i].name,
					    strsignal(WTERMSIG(status)),
					    stopping ? "" : ": stopping all");
					parent_stop(1);
				} else if (stopping)
					log_debug("event=child-exit process=%s",
					    procs[i].name);
				else {
					log_warnx("event=child-died process=%s "
					    "status=%d: stopping all",
					    procs[i].name, WEXITSTATUS(status));
					parent_stop(1);
				}
			}
		if (stopping) {
			for (i = 0; i < nprocs; i++)
				if (procs[i].pid != 0)
					return;
			parent_local_shutdown();
			log_info("event=exit status=%d", exit_status);
			exit(exit_status);
		}
		break;
	}
	}
}

/* Force the end if a child does not stop in time. */
static void
parent_stop_timeout(int fd, short ev, void *arg)
{
	int	 i;

	for (i = 0; i < nprocs; i++)
		if (procs[i].pid != 0) {
			log_warnx("event=child-kill process=%s", procs[i].name);
			kill(procs[i].pid, SIGKILL);
		}
}

/* Stop every child; fail closed with status 1 if one died. */
static void
parent_stop(int failed)
{
	struct timeval	 tv = { 10, 0 };
	int		 i, alive = 0;

	if (failed)
		exit_status = 1;
	if (stopping)
		return;
	stopping = 1;
	for (i = 0; i < nprocs; i++)
		if (procs[i].pid != 0) {
			kill(procs[i].pid, SIGTERM);
			alive++;
		}
	if (alive == 0) {
		parent_local_shutdown();
		exit(exit_status);
	}
	evtimer_set(&ev_stop_timer, parent_stop_timeout, NULL);
	evtimer_add(&ev_stop_timer, &tv);
}

/* SIGHUP: re-read the configuration and ship it to queue (tables and
 * rules).  Listener changes need a restart. */
static void
parent_reload(void)
{
	struct postern_conf	*nconf;
	char			 err[CONF_ERRLEN];

	nconf = config_read_file(conffile, macros, nmacros, err, sizeof(err));
	if (nconf == NULL) {
		log_warnx("event=reload status=failed error=\"%s\"", err);
		return;
	}
	config_free(conf);
	conf = nconf;
	parent_ship_conf(&procs[CHILD_QUEUE].ib, 1);
	parent_update_event(&procs[CHILD_QUEUE]);
	log_info("event=reload status=ok");
}
