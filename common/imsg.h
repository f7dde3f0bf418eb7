/*
 * imsg.h: typed, length-prefixed messages between Postern processes over
 * AF_UNIX socketpairs, with optional descriptor passing.
 *
 * Frame: struct imsg_hdr (16 bytes, host order: both ends are one host)
 * followed by hdr.len payload bytes, hdr.len <= IMSG_MAXPAYLOAD.  A frame
 * with a wrong version, an unknown flag or an oversized length is a broken
 * invariant between our own processes: imsg_get() reports it and the
 * caller treats it as fatal.
 *
 * Payloads are built with the imsg_add_*() writers and read back with the
 * imsg_get_*() readers, which check every length before touching a byte;
 * imsg_end() rejects trailing bytes.  Each message type has one decoder.
 * SECURITY: trusts nothing in a frame; never blocks unless asked to flush.
 */
#ifndef POSTERN_IMSG_H
#define POSTERN_IMSG_H

#include <sys/types.h>
#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>

#define IMSG_VERSION		1
#define IMSG_MAXPAYLOAD		(256 * 1024)
#define IMSG_FLAG_FD		0x01	/* a descriptor travels with it */
#define IMSG_MAXFDS_QUEUED	64	/* received but not yet consumed */

struct imsg_hdr {
	uint8_t		version;
	uint8_t		flags;
	uint16_t	type;
	uint32_t	len;		/* payload bytes after the header */
	uint64_t	id;		/* session, message or request id */
};

struct imsg {
	struct imsg_hdr	 hdr;
	int		 fd;		/* -1 unless IMSG_FLAG_FD */
	uint8_t		*data;		/* hdr.len bytes, owned by the imsg */
	size_t		 rpos;		/* read position for imsg_get_*() */
};

struct imsg_out {
	TAILQ_ENTRY(imsg_out)	 entry;
	uint8_t			*buf;
	size_t			 len;
	size_t			 wpos;
	int			 fd;	/* sent with the first byte, then closed */
};
TAILQ_HEAD(imsg_outq, imsg_out);

struct imsgbuf {
	int		 fd;
	uint8_t		*rbuf;		/* bytes read, not yet framed */
	size_t		 rlen;
	size_t		 rcap;
	int		 rfds[IMSG_MAXFDS_QUEUED];
	int		 nrfds;
	struct imsg_outq outq;
	size_t		 outbytes;	/* queued, not yet written */
};

/* A growable payload under construction. */
struct imsg_payload {
	uint8_t		*buf;
	size_t		 len;
	size_t		 cap;
	int		 overflow;	/* set when a field would pass the max */
};

void	imsgbuf_init(struct imsgbuf *, int fd);
/* Frees queued output and buffered input; closes received fds, not ib->fd. */
void	imsgbuf_clear(struct imsgbuf *);

/*
 * imsgbuf_read: read what the socket has.  Returns >0 bytes read, 0 on EOF,
 * -1 on error (errno; EAGAIN means nothing to read now).
 */
ssize_t	imsgbuf_read(struct imsgbuf *);

/*
 * imsg_get: take the next complete frame.  Returns 1 and fills *imsg (free
 * it with imsg_free), 0 if no full frame is buffered, -1 if the buffered
 * bytes are not a valid frame (caller: fatalx).
 */
int	imsg_get(struct imsgbuf *, struct imsg *);
void	imsg_free(struct imsg *);

/*
 * imsg_compose: queue one frame.  fd (-1 for none) is passed with it and
 * closed once sent.  Returns 0, or -1 if len > IMSG_MAXPAYLOAD or memory
 * ran out (the fd is closed in that case too).
 */
int	imsg_compose(struct imsgbuf *, uint16_t type, uint64_t id, int fd,
	    const void *data, size_t len);
int	imsg_compose_payload(struct imsgbuf *, uint16_t type, uint64_t id,
	    int fd, const struct imsg_payload *);

/*
 * imsgbuf_write: write as much queued output as the socket takes, many
 * frames per sendmsg.  Returns 0 (check imsgbuf_queued for what is left),
 * -1 on error (errno; EAGAIN is not an error and returns 0).
 */
int	imsgbuf_write(struct imsgbuf *);
/* imsgbuf_flush: write everything, blocking (poll) until done; -1 on error. */
int	imsgbuf_flush(struct imsgbuf *);
size_t	imsgbuf_queued(const struct imsgbuf *);

/* Payload writers.  Strings are a u32 length then the bytes, no NUL. */
void	imsg_payload_init(struct imsg_payload *);
void	imsg_payload_free(struct imsg_payload *);
void	imsg_add_u8(struct imsg_payload *, uint8_t);
void	imsg_add_u32(struct imsg_payload *, uint32_t);
void	imsg_add_u64(struct imsg_payload *, uint64_t);
void	imsg_add_i64(struct imsg_payload *, int64_t);
void	imsg_add_string(struct imsg_payload *, const char *);
void	imsg_add_data(struct imsg_payload *, const void *, size_t);

/*
 * Payload readers.  Each returns 0 or -1 when the payload is too short or
 * the field is malformed (a string with a NUL byte or longer than max-1).
 * imsg_get_string copies into dst (NUL-terminated); imsg_get_strdup
 * allocates; imsg_get_data gives a pointer into the imsg and its length.
 */
int	imsg_get_u8(struct imsg *, uint8_t *);
int	imsg_get_u32(struct imsg *, uint32_t *);
int	imsg_get_u64(struct imsg *, uint64_t *);
int	imsg_get_i64(struct imsg *, int64_t *);
int	imsg_get_string(struct imsg *, char *dst, size_t max);
int	imsg_get_strdup(struct imsg *, char **, size_t max);
int	imsg_get_data(struct imsg *, const uint8_t **, size_t *);
/* imsg_end: 0 if every payload byte was consumed, else -1. */
int	imsg_end(struct imsg *);

#endif
