/*
 * tlsd.c: the TLS process.  For now it only starts, drops privileges
 * into the empty chroot and waits on its pipe to the parent; the BearSSL
 * engine comes with the TLS work.  It exits when the parent goes away.
 * SECURITY: runs as _postern_tlsd in an empty chroot with no socket but
 * its pipe to the parent.
 */
#include <sys/types.h>

#include <err.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "imsg.h"
#include "log.h"
#include "proc.h"

int
main(int argc, char *argv[])
{
	struct imsgbuf	 ib;
	struct imsg	 imsg;
	struct pollfd	 pfd;
	char		 root[PATH_MAX];
	ssize_t		 n;
	int		 ch, fg = 0, verbose = 0, rv;

	while ((ch = getopt(argc, argv, "dv")) != -1) {
		switch (ch) {
		case 'd':
			fg = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			exit(2);
		}
	}
	if (argc - optind != 1)
		errx(2, "usage: postern-tlsd [-dv] spool");
	log_init("tlsd", fg, verbose);
	if (snprintf(root, sizeof(root), "%s/%s", argv[optind],
	    PROC_SPOOL_EMPTY) >= (int)sizeof(root))
		fatalx("spool path too long");
	proc_sandbox(PROC_USER_TLSD, root);
	signal(SIGHUP, SIG_IGN);

	imsgbuf_init(&ib, PROC_FD_PARENT);
	pfd.fd = PROC_FD_PARENT;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		n = imsgbuf_read(&ib);
		if (n == -1 && errno != EAGAIN)
			fatal("parent: read");
		if (n == 0)
			break;
		while ((rv = imsg_get(&ib, &imsg)) == 1) {
			fatalx("parent: unexpected message type %u",
			    imsg.hdr.type);
		}
		if (rv == -1)
			fatalx("parent: malformed frame");
	}
	log_debug("parent closed the pipe: exiting");
	return 0;
}
