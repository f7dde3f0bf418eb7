/*
 * smtp_data.h: decoder for message content received with DATA (dot
 * unstuffing, end-of-data detection) or BDAT (size and bare CR/LF
 * tracking).  A byte-level state machine: no I/O, no allocation.
 * SECURITY: hostile input in the unprivileged smtpd process; only the
 * exact sequence CR LF "." CR LF ends DATA (no SMTP smuggling).
 */
#ifndef POSTERN_SMTP_DATA_H
#define POSTERN_SMTP_DATA_H

#include <stddef.h>

struct smtp_data {
	int	state;	/* private */
	size_t	size;	/* content bytes output so far */
	int	bare;	/* a bare CR or bare LF was seen */
	int	done;	/* DATA: end of data seen; BDAT: finished */
	size_t	lines;	/* CRLF-terminated content lines so far */
};

/* state: at the beginning of a line, nothing seen. */
void	smtp_data_init(struct smtp_data *d);

/*
 * Consume bytes of DATA content.  Writes the unstuffed content to out
 * (caller provides at least inlen bytes of room: the output of one call
 * never exceeds its input) and sets *outlen; returns the number of input
 * bytes consumed, which is inlen unless the end of data was reached.
 * Stops right after the end-of-data sequence "\r\n.\r\n" (the terminating
 * ".\r\n" is consumed but not output; the CRLF before it is part of the
 * content) and sets d->done; bytes after it are NOT consumed (pipelined
 * commands); once done, further calls consume and output nothing.
 * A line starting with '.' has that dot removed ("..x" -> ".x", ".x" ->
 * "x").  d->size counts output bytes (the sum of all *outlen).  A bare LF
 * or bare CR sets d->bare = 1 and is passed through as content: it never
 * ends a line, so "\n.\n", "\r\n.\n", "\n.\r\n" never end the message.
 * ".\r\n" right after the 354 is the empty message (size 0).  Any split
 * of the input over calls gives the same total output and state; output
 * may lag the input by one byte in the rare case of a call that starts
 * between ".\r" and a byte other than LF.
 */
size_t	smtp_data_feed(struct smtp_data *d, const char *in, size_t inlen,
	    char *out, size_t *outlen);

/*
 * BDAT chunks: no dot handling and no terminator; only tracks size and
 * bare CR/LF across chunk boundaries (a chunk ending in CR followed by a
 * chunk starting with LF is not bare).  Call smtp_bdat_finish at LAST to
 * flag a trailing lone CR; it sets d->done.  d->size saturates at
 * SIZE_MAX.
 */
void	smtp_bdat_feed(struct smtp_data *d, const char *in, size_t inlen);
void	smtp_bdat_finish(struct smtp_data *d);

#endif
