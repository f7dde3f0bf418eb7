/*
 * fuzz_smtp_cmd.c: libFuzzer target for smtpd/smtp_parse.c.  The input
 * is one command line without CRLF: smtp_parse_command, then the parser
 * of that verb's arguments, as the session does.  Checks that every
 * error is a well-formed reply and that results are within bounds.
 * SECURITY: test code.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "../../smtpd/smtp_parse.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A reply must be a 5xx with an enhanced code and a text. */
static void
fuzz_cmd_check_err(const struct smtp_error *e)
{
	if (e->code < 500 || e->code > 555 || e->enhanced == NULL ||
	    e->text == NULL || e->enhanced[0] != '5' ||
	    strlen(e->text) == 0 || strchr(e->text, '\r') != NULL ||
	    strchr(e->text, '\n') != NULL)
		abort();
}

/* A parsed address formats into ADDR_MAX + 1 bytes. */
static void
fuzz_cmd_check_addr(const struct mailaddr *a)
{
	char	buf[ADDR_MAX + 1];

	if (addr_format(a, buf, sizeof(buf)) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command	 cmd;
	struct smtp_error	 err;
	struct smtp_mail_args	 m;
	struct smtp_rcpt_args	 r;
	const char		*line = (const char *)data;
	char			 helo[ADDR_DOMAIN_MAX + 1], x[SMTP_LINE_MAX];
	size_t			 chunk, i;
	int			 last;

	memset(&err, 0, sizeof(err));
	if (smtp_parse_command(line, size, &cmd, &err) == -1) {
		fuzz_cmd_check_err(&err);
		return 0;
	}
	if (cmd.verb < SMTP_CMD_HELO || cmd.verb > SMTP_CMD_UNKNOWN)
		abort();
	if (cmd.arglen > 0 && (cmd.args < line ||
	    cmd.args + cmd.arglen != line + size))
		abort();

	switch (cmd.verb) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		if (smtp_parse_helo(cmd.args, cmd.arglen, helo, sizeof(helo),
		    &err) == -1)
			fuzz_cmd_check_err(&err);
		else if (strlen(helo) == 0 || strlen(helo) > cmd.arglen)
			abort();
		break;
	case SMTP_CMD_MAIL:
		if (smtp_parse_mail(cmd.args, cmd.arglen, &m, &err) == -1)
			fuzz_cmd_check_err(&err);
		else {
			fuzz_cmd_check_addr(&m.from);
			if (strnlen(m.envid, sizeof(m.envid)) > 100)
				abort();
			if (addr_is_utf8(&m.from) && !m.smtputf8)
				abort();
		}
		break;
	case SMTP_CMD_RCPT:
		for (i = 0; i < 2; i++) {
			if (smtp_parse_rcpt(cmd.args, cmd.arglen, (int)i, &r,
			    &err) == -1)
				fuzz_cmd_check_err(&err);
			else {
				fuzz_cmd_check_addr(&r.to);
				if (strnlen(r.orcpt, sizeof(r.orcpt)) >=
				    sizeof(r.orcpt))
					abort();
				if ((r.notify & SMTP_NOTIFY_NEVER) &&
				    r.notify != SMTP_NOTIFY_NEVER)
					abort();
				if (i == 0 && addr_is_utf8(&r.to))
					abort();
			}
		}
		break;
	case SMTP_CMD_BDAT:
		if (smtp_parse_bdat(cmd.args, cmd.arglen, &chunk, &last,
		    &err) == -1)
			fuzz_cmd_check_err(&err);
		else if (chunk > SIZE_MAX / 2 || (last != 0 && last != 1))
			abort();
		break;
	default:
		/* AUTH, VRFY, ...: their arguments are xtext-like at most */
		if (smtp_xtext_decode(cmd.args, cmd.arglen, x,
		    sizeof(x)) == 0 && strlen(x) > cmd.arglen)
			abort();
		break;
	}
	return 0;
}
