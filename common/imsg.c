/*
 * imsg.c: framing, descriptor passing and strict payload decoding for the
 * pipes between Postern processes.
 * SECURITY: the peer is one of our own processes, but it may have been
 * compromised: every length is checked before use, and any malformed frame
 * is reported to the caller, who treats it as fatal.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imsg.h"

#define IMSG_HDRLEN		sizeof(struct imsg_hdr)
#define IMSG_READ_CHUNK		(64 * 1024)
#define IMSG_IOV_MAX		64

static int	imsg_take_fd(struct imsgbuf *);

void
imsgbuf_init(struct imsgbuf *ib, int fd)
{
	memset(ib, 0, sizeof(*ib));
	ib->fd = fd;
	TAILQ_INIT(&ib->outq);
}

void
imsgbuf_clear(struct imsgbuf *ib)
{
	struct imsg_out	*o;
	int		 i;

	while ((o = TAILQ_FIRST(&ib->outq)) != NULL) {
		TAILQ_REMOVE(&ib->outq, o, entry);
		if (o->fd != -1)
			close(o->fd);
		explicit_bzero(o->buf, o->len);
		free(o->buf);
		free(o);
	}
	for (i = 0; i < ib->nrfds; i++)
		close(ib->rfds[i]);
	ib->nrfds = 0;
	free(ib->rbuf);
	ib->rbuf = NULL;
	ib->rlen = ib->rcap = 0;
	ib->outbytes = 0;
}

/* Read once from the socket, collecting any descriptors that came along. */
ssize_t
imsgbuf_read(struct imsgbuf *ib)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cmsg;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * 16)];
	} cmsgbuf;
	ssize_t		 n;

	if (ib->rcap - ib->rlen < IMSG_READ_CHUNK) {
		size_t	 ncap = ib->rlen + IMSG_READ_CHUNK;
		uint8_t	*p;

		if (ncap > IMSG_HDRLEN + IMSG_MAXPAYLOAD + IMSG_READ_CHUNK) {
			/* Buffered more than a frame can be: caller drains. */
			if (ib->rlen >= IMSG_HDRLEN + IMSG_MAXPAYLOAD) {
				errno = ENOBUFS;
				return -1;
			}
		}
		if ((p = realloc(ib->rbuf, ncap)) == NULL)
			return -1;
		ib->rbuf = p;
		ib->rcap = ncap;
	}

	memset(&msg, 0, sizeof(msg));
	memset(&cmsgbuf, 0, sizeof(cmsgbuf));
	iov.iov_base = ib->rbuf + ib->rlen;
	iov.iov_len = ib->rcap - ib->rlen;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = &cmsgbuf.buf;
	msg.msg_controllen = sizeof(cmsgbuf.buf);

	do {
		n = recvmsg(ib->fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;

	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL;
	    cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		int	*fds, nfds, i;

		if (cmsg->cmsg_level != SOL_SOCKET ||
		    cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(cmsg);
		for (i = 0; i < nfds; i++) {
			if (ib->nrfds == IMSG_MAXFDS_QUEUED) {
				close(fds[i]);
				errno = EMFILE;
				n = -1;
				continue;
			}
			ib->rfds[ib->nrfds++] = fds[i];
		}
	}
	if (msg.msg_flags & MSG_CTRUNC) {
		errno = EMSGSIZE;
		return -1;
	}
	if (n > 0)
		ib->rlen += n;
	return n;
}

/* Take the oldest received descriptor, or -1. */
static int
imsg_take_fd(struct imsgbuf *ib)
{
	int	 fd;

	if (ib->nrfds == 0)
		return -1;
	fd = ib->rfds[0];
	memmove(ib->rfds, ib->rfds + 1, (ib->nrfds - 1) * sizeof(int));
	ib->nrfds--;
	return fd;
}

int
imsg_get(struct imsgbuf *ib, struct imsg *imsg)
{
	struct imsg_hdr	 hdr;
	size_t		 total;

	memset(imsg, 0, sizeof(*imsg));
	imsg->fd = -1;
	if (ib->rlen < IMSG_HDRLEN)
		return 0;
	memcpy(&hdr, ib->rbuf, IMSG_HDRLEN);
	if (hdr.version != IMSG_VERSION || (hdr.flags & ~IMSG_FLAG_FD) != 0 ||
	    hdr.len > IMSG_MAXPAYLOAD)
		return -1;
	total = IMSG_HDRLEN + hdr.len;
	if (ib->rlen < total)
		return 0;
	if (hdr.flags & IMSG_FLAG_FD) {
		/* The descriptor arrives with the frame's first byte. */
		if ((imsg->fd = imsg_take_fd(ib)) == -1)
			return -1;
	}
	imsg->hdr = hdr;
	if (hdr.len > 0) {
		if ((imsg->data = malloc(hdr.len)) == NULL) {
			if (imsg->fd != -1)
				close(imsg->fd);
			imsg->fd = -1;
			return -1;
		}
		memcpy(imsg->data, ib->rbuf + IMSG_HDRLEN, hdr.len);
	}
	memmove(ib->rbuf, ib->rbuf + total, ib->rlen - total);
	ib->rlen -= total;
	return 1;
}

void
imsg_free(struct imsg *imsg)
{
	free(imsg->data);
	imsg->data = NULL;
	if (imsg->fd != -1)
		close(imsg->fd);
	imsg->fd = -1;
}

int
imsg_compose(struct imsgbuf *ib, uint16_t type, uint64_t id, int fd,
    const void *data, size_t len)
{
	struct imsg_out	*o;
	struct imsg_hdr	 hdr;

	if (len > IMSG_MAXPAYLOAD) {
		errno = EMSGSIZE;
		goto fail;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL)
		goto fail;
	if ((o->buf = malloc(IMSG_HDRLEN + len)) == NULL) {
		free(o);
		goto fail;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.version = IMSG_VERSION;
	hdr.flags = fd != -1 ? IMSG_FLAG_FD : 0;
	hdr.type = type;
	hdr.len = len;
	hdr.id = id;
	memcpy(o->buf, &hdr, IMSG_HDRLEN);
	if (len > 0)
		memcpy(o->buf + IMSG_HDRLEN, data, len);
	o->len = IMSG_HDRLEN + len;
	o->fd = fd;
	TAILQ_INSERT_TAIL(&ib->outq, o, entry);
	ib->outbytes += o->len;
	return 0;
fail:
	if (fd != -1)
		close(fd);
	return -1;
}

int
imsg_compose_payload(struct imsgbuf *ib, uint16_t type, uint64_t id, int fd,
    const struct imsg_payload *p)
{
	if (p->overflow) {
		if (fd != -1)
			close(fd);
		errno = EMSGSIZE;
		return -1;
	}
	return imsg_compose(ib, type, id, fd, p->buf, p->len);
}

/*
 * Write queued frames, as many per sendmsg as fit, but never two
 * descriptors in one call: a descriptor goes with its frame's first byte.
 */
int
imsgbuf_write(struct imsgbuf *ib)
{
	struct iovec	 iov[IMSG_IOV_MAX];
	struct msghdr	 msg;
	struct imsg_out	*o, *next;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	ssize_t		 n;
	int		 i, fd;

	while (!TAILQ_EMPTY(&ib->outq)) {
		memset(&msg, 0, sizeof(msg));
		fd = -1;
		i = 0;
		TAILQ_FOREACH(o, &ib->outq, entry) {
			if (i == IMSG_IOV_MAX)
				break;
			if (o->fd != -1) {
				if (i > 0)
					break;
				fd = o->fd;
			}
			iov[i].iov_base = o->buf + o->wpos;
			iov[i].iov_len = o->len - o->wpos;
			i++;
		}
		msg.msg_iov = iov;
		msg.msg_iovlen = i;
		if (fd != -1) {
			struct cmsghdr	*cmsg;

			memset(&cmsgbuf, 0, sizeof(cmsgbuf));
			msg.msg_control = &cmsgbuf.buf;
			msg.msg_controllen = sizeof(cmsgbuf.buf);
			cmsg = CMSG_FIRSTHDR(&msg);
			cmsg->cmsg_len = CMSG_LEN(sizeof(int));
			cmsg->cmsg_level = SOL_SOCKET;
			cmsg->cmsg_type = SCM_RIGHTS;
			memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
		}
		do {
			n = sendmsg(ib->fd, &msg, MSG_NOSIGNAL);
		} while (n == -1 && errno == EINTR);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == ENOBUFS)
				return 0;
			return -1;
		}
		ib->outbytes -= n;
		for (o = TAILQ_FIRST(&ib->outq); o != NULL && n > 0; o = next) {
			size_t	 left = o->len - o->wpos;

			next = TAILQ_NEXT(o, entry);
			if (o->fd != -1) {
				/* Sent with this call's first byte. */
				close(o->fd);
				o->fd = -1;
			}
			if ((size_t)n < left) {
				o->wpos += n;
				n = 0;
				break;
			}
			n -= left;
			TAILQ_REMOVE(&ib->outq, o, entry);
			/* Frames may carry keys (parent -> tlsd): wipe them. */
			explicit_bzero(o->buf, o->len);
			free(o->buf);
			free(o);
		}
	}
	return 0;
}

int
imsgbuf_flush(struct imsgbuf *ib)
{
	struct pollfd	 pfd;

	while (!TAILQ_EMPTY(&ib->outq)) {
		if (imsgbuf_write(ib) == -1)
			return -1;
		if (TAILQ_EMPTY(&ib->outq))
			break;
		pfd.fd = ib->fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			return -1;
	}
	return 0;
}

size_t
imsgbuf_queued(const struct imsgbuf *ib)
{
	return ib->outbytes;
}

/* ---------------------------------------------------------------- payloads */

void
imsg_payload_init(struct imsg_payload *p)
{
	memset(p, 0, sizeof(*p));
}

void
imsg_payload_free(struct imsg_payload *p)
{
	free(p->buf);
	memset(p, 0, sizeof(*p));
}

/* Append bytes, growing the buffer; past the frame limit set overflow. */
static void
imsg_add_raw(struct imsg_payload *p, const void *data, size_t len)
{
	size_t	 ncap;
	uint8_t	*nb;

	if (p->overflow)
		return;
	if (len > IMSG_MAXPAYLOAD || p->len + len > IMSG_MAXPAYLOAD) {
		p->overflow = 1;
		return;
	}
	if (p->len + len > p->cap) {
		ncap = p->cap ? p->cap : 256;
		while (ncap < p->len + len)
			ncap *= 2;
		if ((nb = realloc(p->buf, ncap)) == NULL) {
			p->overflow = 1;
			return;
		}
		p->buf = nb;
		p->cap = ncap;
	}
	if (len > 0)
		memcpy(p->buf + p->len, data, len);
	p->len += len;
}

void
imsg_add_u8(struct imsg_payload *p, uint8_t v)
{
	imsg_add_raw(p, &v, sizeof(v));
}

void
imsg_add_u32(struct imsg_payload *p, uint32_t v)
{
	imsg_add_raw(p, &v, sizeof(v));
}

void
imsg_add_u64(struct imsg_payload *p, uint64_t v)
{
	imsg_add_raw(p, &v, sizeof(v));
}

void
imsg_add_i64(struct imsg_payload *p, int64_t v)
{
	imsg_add_raw(p, &v, sizeof(v));
}

void
imsg_add_data(struct imsg_payload *p, const void *data, size_t len)
{
	uint32_t	 l;

	if (len > IMSG_MAXPAYLOAD) {
		p->overflow = 1;
		return;
	}
	l = len;
	imsg_add_raw(p, &l, sizeof(l));
	imsg_add_raw(p, data, len);
}

void
imsg_add_string(struct imsg_payload *p, const char *s)
{
	imsg_add_data(p, s, s == NULL ? 0 : strlen(s));
}

/* Take len bytes from the payload, or fail if fewer remain. */
static int
imsg_get_raw(struct imsg *m, void *out, size_t len)
{
	if (m->hdr.len < m->rpos || m->hdr.len - m->rpos < len)
		return -1;
	if (len > 0)
		memcpy(out, m->data + m->rpos, len);
	m->rpos += len;
	return 0;
}

int
imsg_get_u8(struct imsg *m, uint8_t *v)
{
	return imsg_get_raw(m, v, sizeof(*v));
}

int
imsg_get_u32(struct imsg *m, uint32_t *v)
{
	return imsg_get_raw(m, v, sizeof(*v));
}

int
imsg_get_u64(struct imsg *m, uint64_t *v)
{
	return imsg_get_raw(m, v, sizeof(*v));
}

int
imsg_get_i64(struct imsg *m, int64_t *v)
{
	return imsg_get_raw(m, v, sizeof(*v));
}

int
imsg_get_data(struct imsg *m, const uint8_t **data, size_t *len)
{
	uint32_t	 l;

	if (imsg_get_raw(m, &l, sizeof(l)) == -1)
		return -1;
	if (m->hdr.len - m->rpos < l)
		return -1;
	*data = l > 0 ? m->data + m->rpos : (const uint8_t *)"";
	*len = l;
	m->rpos += l;
	return 0;
}

int
imsg_get_string(struct imsg *m, char *dst, size_t max)
{
	const uint8_t	*d;
	size_t		 l;
	size_t		 save = m->rpos;

	if (imsg_get_data(m, &d, &l) == -1)
		return -1;
	if (l >= max || memchr(d, '\0', l) != NULL) {
		m->rpos = save;
		return -1;
	}
	memcpy(dst, d, l);
	dst[l] = '\0';
	return 0;
}

int
imsg_get_strdup(struct imsg *m, char **out, size_t max)
{
	const uint8_t	*d;
	size_t		 l;
	size_t		 save = m->rpos;

	if (imsg_get_data(m, &d, &l) == -1)
		return -1;
	if (l >= max || memchr(d, '\0', l) != NULL ||
	    (*out = strndup((const char *)d, l)) == NULL) {
		m->rpos = save;
		return -1;
	}
	return 0;
}

int
imsg_end(struct imsg *m)
{
	return m->rpos == m->hdr.len ? 0 : -1;
}
