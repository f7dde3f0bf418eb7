/*
 * smtp_parse.h: parsers for SMTP command lines and their arguments
 * (RFC 5321, ESMTP parameters of RFC 1870, 6152, 6531, 3461, 3030).
 * SECURITY: runs in the unprivileged smtpd process on hostile input;
 * pure functions (no I/O, no allocation), every input is bounded and
 * every error is a reply for the client, never a crash.
 */
#ifndef POSTERN_SMTP_PARSE_H
#define POSTERN_SMTP_PARSE_H

#include <stddef.h>

#include "addr.h"

#define SMTP_LINE_MAX 2048  /* command line limit including CRLF */

enum smtp_verb {
	SMTP_CMD_HELO = 1, SMTP_CMD_EHLO, SMTP_CMD_MAIL, SMTP_CMD_RCPT,
	SMTP_CMD_DATA, SMTP_CMD_BDAT, SMTP_CMD_RSET, SMTP_CMD_NOOP,
	SMTP_CMD_QUIT, SMTP_CMD_HELP, SMTP_CMD_VRFY, SMTP_CMD_EXPN,
	SMTP_CMD_STARTTLS, SMTP_CMD_AUTH, SMTP_CMD_UNKNOWN
};

/* e.g. {501, "5.5.4", "Syntax error in parameters"}; strings are static. */
struct smtp_error {
	int		 code;
	const char	*enhanced;
	const char	*text;
};

/*
 * args points into the line after the verb and the single separating
 * space, and is not NUL-terminated; when there is nothing after the verb
 * (or only the space) args is the static "" and arglen 0.
 */
struct smtp_command {
	enum smtp_verb	 verb;
	const char	*args;
	size_t		 arglen;
};

/*
 * line excludes the CRLF.  Verbs are case-insensitive.  Returns 0, or -1
 * with err set:
 *   NUL, CR or LF inside the line	500 5.5.2 "Invalid character in command"
 *   len > SMTP_LINE_MAX - 2		500 5.5.2 "Line too long"
 *   a verb followed by other than SP	500 5.5.2 "Syntax error"
 * The verb is the leading run of ASCII letters.  An unknown verb is NOT an
 * error: verb = SMTP_CMD_UNKNOWN, args as above when the run is not empty
 * and is followed by SP, else "" (an empty line, or one starting with a
 * space or a digit, is SMTP_CMD_UNKNOWN too).
 */
int	smtp_parse_command(const char *line, size_t len,
	    struct smtp_command *cmd, struct smtp_error *err);

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

#define SMTP_NOTIFY_NEVER	0x01
#define SMTP_NOTIFY_SUCCESS	0x02
#define SMTP_NOTIFY_FAILURE	0x04
#define SMTP_NOTIFY_DELAY	0x08

#define SMTP_RET_NONE		0
#define SMTP_RET_FULL		1
#define SMTP_RET_HDRS		2

struct smtp_mail_args {
	struct mailaddr	 from;
	size_t		 size;		/* 0 if no SIZE= */
	enum smtp_body	 body;
	int		 smtputf8;
	int		 ret;		/* 0, 1=FULL, 2=HDRS */
	char		 envid[101];	/* xtext-decoded, "" if none */
};

struct smtp_rcpt_args {
	struct mailaddr	 to;
	int		 notify;	/* SMTP_NOTIFY_*, 0 if no NOTIFY= */
	/* "rfc822;addr", xtext-decoded, "" if none */
	char		 orcpt[ADDR_MAX + 16];
};

/*
 * args: the text after "MAIL " ("FROM:<a@b> SIZE=100 BODY=8BITMIME
 * SMTPUTF8 RET=HDRS ENVID=x").  "FROM:" is case-insensitive, ONE optional
 * space after the colon is tolerated.  Parameters are separated by spaces
 * (several tolerated, trailing ones too); keywords are case-insensitive.
 * The output struct is written only on success.  Errors:
 *   no "FROM:<"			501 5.5.4 "Syntax: MAIL FROM:<address>"
 *   bad address			553 5.1.7 "Invalid address: <reason>"
 *   UTF-8 address without SMTPUTF8	553 5.6.7 "Address needs SMTPUTF8"
 *   junk after '>', bad param syntax	501 5.5.4 "Syntax error in parameters"
 *   duplicate parameter		501 5.5.4 "Duplicate parameter"
 *   bad SIZE/BODY/RET/ENVID/SMTPUTF8	501 5.5.4 "Invalid SIZE parameter", ...
 *   unknown parameter			555 5.5.4 "Unsupported parameter"
 * AUTH=<xtext> (RFC 4954) is accepted and ignored.  ENVID must decode to
 * at most 100 printable ASCII characters.  Whether the session advertised
 * SIZE, 8BITMIME, SMTPUTF8 or DSN is for the caller to check.
 */
int	smtp_parse_mail(const char *args, size_t len, struct smtp_mail_args *m,
	    struct smtp_error *err);

/*
 * "TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b"; utf8: the
 * transaction declared SMTPUTF8.  <postmaster> allowed, <> refused.
 * NOTIFY=NEVER cannot be combined.  ORCPT is "addr-type;xtext" and must
 * decode to printable ASCII that fits orcpt.  Errors as for MAIL, with
 * 553 5.1.3 for a bad address and "Syntax: RCPT TO:<address>".
 */
int	smtp_parse_rcpt(const char *args, size_t len, int utf8,
	    struct smtp_rcpt_args *r, struct smtp_error *err);

/*
 * "1000" or "1000 LAST" (case-insensitive, one space); size <= SIZE_MAX/2.
 * Errors: 501 5.5.4 "Syntax: BDAT chunk-size [LAST]" or
 * 501 5.5.4 "Chunk size too large".
 */
int	smtp_parse_bdat(const char *args, size_t len, size_t *chunk, int *last,
	    struct smtp_error *err);

/*
 * HELO/EHLO argument: an ASCII domain (addr_domain_valid) or an address
 * literal; leading spaces and trailing text after a space are tolerated
 * and ignored; the name is copied verbatim to out.  Errors:
 *   empty				501 5.5.4 "Syntax: EHLO hostname"
 *   invalid name or literal		501 5.5.4 "Invalid domain name"
 *   does not fit outsz			501 5.5.4 "Domain name too long"
 */
int	smtp_parse_helo(const char *args, size_t len, char *out, size_t outsz,
	    struct smtp_error *err);

/*
 * xtext decode (RFC 3461) into out, NUL-terminated.  Returns 0, or -1 on
 * a byte that is not xchar, a bad "+XX" (hex digits of either case), a
 * "+00" (NUL) or when the result does not fit outsz.
 */
int	smtp_xtext_decode(const char *in, size_t len, char *out, size_t outsz);

#endif
