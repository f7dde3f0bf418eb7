/*
 * fuzz_headers.c: libFuzzer target for the sendmail face's message
 * parsing (ctl/ctl_mail.c).  The first byte selects -t (bit 0); the rest
 * is a message from a local user.  Checks that every recipient taken from
 * the headers is fit for an RCPT TO line, and that the wire form has only
 * CRLF line ends and no line that would end the DATA early.
 * SECURITY: test code.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ctl/ctl.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* The invariants of the DATA text; abort() on violation. */
static void
fuzz_headers_check_wire(const char *w, size_t len, size_t inlen)
{
	size_t	 i;

	if (len > 2 * inlen + 64)
		abort();	/* at most a "." and a CR per input byte */
	if (len > 0 && (len < 2 || w[len - 2] != '\r' || w[len - 1] != '\n'))
		abort();
	for (i = 0; i < len; i++) {
		if (w[i] == '\n' && (i == 0 || w[i - 1] != '\r'))
			abort();
		/* A line start: "." must be followed by another ".". */
		if ((i == 0 || w[i - 1] == '\n') && w[i] == '.' &&
		    (i + 1 >= len || w[i + 1] != '.'))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_mail_scan	 sc;
	struct ctl_buf		 b;
	const char		*msg;
	char			 err[256];
	size_t			 len, i;
	int			 code, last;

	if (size < 1)
		return 0;
	msg = (const char *)data + 1;
	len = size - 1;
	ctl_mail_rcpts_init(&r);
	if (ctl_mail_scan(msg, len, data[0] & 1, &r, &sc, err,
	    sizeof(err)) == 0) {
		if (sc.hdrend > len || sc.bodystart > len ||
		    sc.bodystart < sc.hdrend)
			abort();
		ctl_buf_init(&b);
		ctl_mail_wire(&b, msg, len, &sc, "");
		if (!b.failed)
			fuzz_headers_check_wire(ctl_buf_str(&b), b.len, len);
		ctl_buf_free(&b);
	} else if (err[0] == '\0')
		abort();
	for (i = 0; i < r.n; i++)
		if (r.addr[i][0] == '\0' ||
		    !ctl_mail_addr_valid(r.addr[i], strlen(r.addr[i])))
			abort();
	ctl_mail_rcpts_free(&r);

	/* The whole input as one address list, and as a reply line. */
	ctl_mail_rcpts_init(&r);
	(void)ctl_mail_addrlist(&r, msg, len);
	for (i = 0; i < r.n; i++)
		if (strlen(r.addr[i]) > CTL_MAIL_ADDRMAX)
			abort();
	ctl_mail_rcpts_free(&r);
	if (ctl_mail_reply_line(msg, len, &code, &last) == 0 &&
	    (code < 200 || code > 599))
		abort();
	(void)ctl_mail_is_end_line(msg, len);
	return 0;
}
