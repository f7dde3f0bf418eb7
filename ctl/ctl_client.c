/*
 * ctl_client.c: posternctl's side of the control socket: connect, send
 * one request frame, read the reply frames one by one.
 * SECURITY: runs as the invoking user; a frame that is not well formed
 * ends the command with an error, never a crash.  Waits are bounded so
 * that a stuck daemon cannot hang a script forever.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

#define CTL_TIMEOUT_MS	(60 * 1000)	/* per frame of a reply */

/* Connect to a UNIX stream socket; -1 with errno on failure. */
int
ctl_unix_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		if (errno == EINTR)
			continue;
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int
ctl_connect(struct ctl_conn *c, const char *path)
{
	int	 fd;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if ((fd = ctl_unix_connect(path)) == -1)
		return -1;
	c->fd = fd;
	c->timeout = CTL_TIMEOUT_MS;
	imsgbuf_init(&c->ib, fd);
	return 0;
}

int
ctl_request(struct ctl_conn *c, uint16_t type, const struct imsg_payload *p)
{
	int	 rv;

	if (p != NULL)
		rv = imsg_compose_payload(&c->ib, type, 0, -1, p);
	else
		rv = imsg_compose(&c->ib, type, 0, -1, NULL, 0);
	if (rv == -1)
		return -1;
	return imsgbuf_flush(&c->ib);
}

int
ctl_next(struct ctl_conn *c, struct imsg *m, char *err, size_t errsz)
{
	struct pollfd	 pfd;
	ssize_t		 n;
	int		 r;

	for (;;) {
		if ((r = imsg_get(&c->ib, m)) == 1)
			return 1;
		if (r == -1) {
			snprintf(err, errsz, "malformed reply from the server");
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = poll(&pfd, 1, c->timeout);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			snprintf(err, errsz, "poll: %s", strerror(errno));
			return -1;
		}
		if (r == 0) {
			snprintf(err, errsz, "no reply from posternd within %d "
			    "seconds", c->timeout / 1000);
			return -1;
		}
		n = imsgbuf_read(&c->ib);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == -1) {
			snprintf(err, errsz, "reading the reply: %s",
			    strerror(errno));
			return -1;
		}
		if (n == 0) {
			snprintf(err, errsz, "posternd closed the connection "
			    "before the end of its reply");
			return -1;
		}
	}
}

void
ctl_close(struct ctl_conn *c)
{
	if (c->fd == -1)
		return;
	imsgbuf_clear(&c->ib);
	close(c->fd);
	c->fd = -1;
}
