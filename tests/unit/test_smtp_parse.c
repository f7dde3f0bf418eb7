/*
 * test_smtp_parse.c: unit tests for smtpd/smtp_parse.c: command lines,
 * MAIL/RCPT parameters, BDAT, HELO/EHLO and xtext, with the exact reply
 * codes and texts a client would see.
 * SECURITY: test code; inputs are copied to exact-size heap buffers so
 * that ASan catches any read past the given length.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "addr.h"
#include "../../smtpd/smtp_parse.h"

static char *
dup_exact(const char *s, size_t n)
{
	char	*p = malloc(n == 0 ? 1 : n);

	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

#define ERR_IS(e, c, enh, txt) do {					\
	assert_int_equal((e).code, (c));				\
	assert_string_equal((e).enhanced, (enh));			\
	assert_string_equal((e).text, (txt));				\
} while (0)

/* ---------------------------------------------------------------- command */

static int
cmd_n(const char *s, size_t n, struct smtp_command *c, struct smtp_error *e)
{
	char	*p = dup_exact(s, n);
	int	 r;

	r = smtp_parse_command(p, n, c, e);
	if (r == 0 && c->arglen > 0) {
		/* make args relative to the caller's string */
		assert_true(c->args >= p && c->args + c->arglen <= p + n);
		c->args = s + (c->args - p);
	}
	free(p);
	return r;
}

#define CMD_OK(line, v, a) do {						\
	struct smtp_command c_; struct smtp_error e_;			\
	assert_int_equal(cmd_n((line), strlen(line), &c_, &e_), 0);	\
	assert_int_equal(c_.verb, (v));					\
	assert_int_equal(c_.arglen, strlen(a));				\
	assert_memory_equal(c_.args, (a), strlen(a));			\
} while (0)

#define CMD_BAD(line, n, c, enh, txt) do {				\
	struct smtp_command c_; struct smtp_error e_;			\
	assert_int_equal(cmd_n((line), (n), &c_, &e_), -1);		\
	ERR_IS(e_, (c), (enh), (txt));					\
} while (0)

static void
test_cmd_verbs(void **state)
{
	CMD_OK("HELO x.example", SMTP_CMD_HELO, "x.example");
	CMD_OK("EHLO x.example", SMTP_CMD_EHLO, "x.example");
	CMD_OK("MAIL FROM:<a@b>", SMTP_CMD_MAIL, "FROM:<a@b>");
	CMD_OK("RCPT TO:<a@b>", SMTP_CMD_RCPT, "TO:<a@b>");
	CMD_OK("DATA", SMTP_CMD_DATA, "");
	CMD_OK("BDAT 10 LAST", SMTP_CMD_BDAT, "10 LAST");
	CMD_OK("RSET", SMTP_CMD_RSET, "");
	CMD_OK("NOOP", SMTP_CMD_NOOP, "");
	CMD_OK("QUIT", SMTP_CMD_QUIT, "");
	CMD_OK("HELP", SMTP_CMD_HELP, "");
	CMD_OK("HELP MAIL", SMTP_CMD_HELP, "MAIL");
	CMD_OK("VRFY user", SMTP_CMD_VRFY, "user");
	CMD_OK("EXPN list", SMTP_CMD_EXPN, "list");
	CMD_OK("STARTTLS", SMTP_CMD_STARTTLS, "");
	CMD_OK("AUTH PLAIN AGFAAGI=", SMTP_CMD_AUTH, "PLAIN AGFAAGI=");
}

static void
test_cmd_case(void **state)
{
	CMD_OK("ehlo x", SMTP_CMD_EHLO, "x");
	CMD_OK("eHlO x", SMTP_CMD_EHLO, "x");
	CMD_OK("mail from:<a@b>", SMTP_CMD_MAIL, "from:<a@b>");
	CMD_OK("StartTls", SMTP_CMD_STARTTLS, "");
	CMD_OK("quit", SMTP_CMD_QUIT, "");
	CMD_OK("bdat 1", SMTP_CMD_BDAT, "1");
}

static void
test_cmd_args(void **state)
{
	struct smtp_command	c;
	struct smtp_error	e;

	/* only the single separating space is skipped */
	CMD_OK("NOOP  x", SMTP_CMD_NOOP, " x");
	CMD_OK("QUIT ", SMTP_CMD_QUIT, "");
	CMD_OK("MAIL FROM:<a@b> ", SMTP_CMD_MAIL, "FROM:<a@b> ");
	assert_int_equal(smtp_parse_command("DATA", 4, &c, &e), 0);
	assert_string_equal(c.args, "");
	assert_int_equal(c.arglen, 0);
	assert_int_equal(smtp_parse_command("RSET ", 5, &c, &e), 0);
	assert_string_equal(c.args, "");
	assert_int_equal(c.arglen, 0);
	/* len is honoured */
	assert_int_equal(smtp_parse_command("QUIT now", 4, &c, &e), 0);
	assert_int_equal(c.verb, SMTP_CMD_QUIT);
	assert_int_equal(c.arglen, 0);
}

static void
test_cmd_unknown(void **state)
{
	CMD_OK("XYZZY foo bar", SMTP_CMD_UNKNOWN, "foo bar");
	CMD_OK("MAILFROM:<a@b>", SMTP_CMD_UNKNOWN, "");
	CMD_OK("", SMTP_CMD_UNKNOWN, "");
	CMD_OK(" MAIL FROM:<a@b>", SMTP_CMD_UNKNOWN, "");
	CMD_OK("123", SMTP_CMD_UNKNOWN, "");
	CMD_OK("HEL", SMTP_CMD_UNKNOWN, "");
	CMD_OK("STARTTLSX", SMTP_CMD_UNKNOWN, "");
	CMD_OK("GET / HTTP/1.0", SMTP_CMD_UNKNOWN, "/ HTTP/1.0");
	CMD_OK("X-FOO:bar", SMTP_CMD_UNKNOWN, "");
}

static void
test_cmd_errors(void **state)
{
	char	*big;

	CMD_BAD("MAIL\tFROM:<a@b>", 15, 500, "5.5.2", "Syntax error");
	CMD_BAD("MAIL:FROM:<a@b>", 15, 500, "5.5.2", "Syntax error");
	CMD_BAD("QUIT.", 5, 500, "5.5.2", "Syntax error");
	CMD_BAD("EHLO1", 5, 500, "5.5.2", "Syntax error");
	CMD_BAD("HELO x\0y", 8, 500, "5.5.2", "Invalid character in command");
	CMD_BAD("\0", 1, 500, "5.5.2", "Invalid character in command");
	CMD_BAD("QUIT\r", 5, 500, "5.5.2", "Invalid character in command");
	CMD_BAD("DATA\rQUIT", 9, 500, "5.5.2", "Invalid character in command");
	CMD_BAD("NOOP\nQUIT", 9, 500, "5.5.2", "Invalid character in command");
	CMD_BAD("XYZ\n", 4, 500, "5.5.2", "Invalid character in command");

	big = malloc(SMTP_LINE_MAX);
	assert_non_null(big);
	memset(big, 'x', SMTP_LINE_MAX);
	memcpy(big, "NOOP ", 5);
	{
		struct smtp_command c;
		struct smtp_error e;

		assert_int_equal(smtp_parse_command(big, SMTP_LINE_MAX - 2,
		    &c, &e), 0);
		assert_int_equal(c.verb, SMTP_CMD_NOOP);
		assert_int_equal(c.arglen, SMTP_LINE_MAX - 7);
		assert_int_equal(smtp_parse_command(big, SMTP_LINE_MAX - 1,
		    &c, &e), -1);
		ERR_IS(e, 500, "5.5.2", "Line too long");
	}
	free(big);
}

/* ---------------------------------------------------------------- MAIL */

static int
mail_n(const char *s, struct smtp_mail_args *m, struct smtp_error *e)
{
	size_t	 n = strlen(s);
	char	*p = dup_exact(s, n);
	int	 r;

	r = smtp_parse_mail(p, n, m, e);
	free(p);
	return r;
}

#define MAIL_BAD(s, c, enh, txt) do {					\
	struct smtp_mail_args m_; struct smtp_error e_;			\
	assert_int_equal(mail_n((s), &m_, &e_), -1);			\
	ERR_IS(e_, (c), (enh), (txt));					\
} while (0)

static void
test_mail_basic(void **state)
{
	struct smtp_mail_args	m;
	struct smtp_error	e;

	assert_int_equal(mail_n("FROM:<a@b.example>", &m, &e), 0);
	assert_string_equal(m.from.local, "a");
	assert_string_equal(m.from.domain, "b.example");
	assert_int_equal(m.size, 0);
	assert_int_equal(m.body, SMTP_BODY_NONE);
	assert_int_equal(m.smtputf8, 0);
	assert_int_equal(m.ret, 0);
	assert_string_equal(m.envid, "");

	assert_int_equal(mail_n("from:<a@B.Example>", &m, &e), 0);
	assert_string_equal(m.from.domain, "b.example");
	assert_int_equal(mail_n("FROM: <a@b>", &m, &e), 0);
	assert_string_equal(m.from.local, "a");
	assert_int_equal(mail_n("FROM:<>", &m, &e), 0);
	assert_string_equal(m.from.local, "");
	assert_string_equal(m.from.domain, "");
	assert_int_equal(mail_n("FROM:<@r.example:a@b>", &m, &e), 0);
	assert_string_equal(m.from.local, "a");
	assert_int_equal(mail_n("FROM:<\"a b\"@c>", &m, &e), 0);
	assert_string_equal(m.from.local, "a b");
}

static void
test_mail_syntax(void **state)
{
	MAIL_BAD("", 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	MAIL_BAD("FROM", 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	MAIL_BAD("FROM:", 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	MAIL_BAD("FROM <a@b>", 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	MAIL_BAD("FROM:  <a@b>", 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	MAIL_BAD("FROM:a@b", 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	MAIL_BAD("TO:<a@b>", 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	MAIL_BAD(" FROM:<a@b>", 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	MAIL_BAD("FROM:\t<a@b>", 501, "5.5.4", "Syntax: MAIL FROM:<address>");
	MAIL_BAD("FROM:<a@b>x", 501, "5.5.4", "Syntax error in parameters");
	MAIL_BAD("FROM:<a@b>>", 501, "5.5.4", "Syntax error in parameters");
	MAIL_BAD("FROM:<a@b>\t", 501, "5.5.4", "Syntax error in parameters");
	MAIL_BAD("FROM:<a@b> =x", 501, "5.5.4", "Syntax error in parameters");
	MAIL_BAD("FROM:<a@b> -X=1", 501, "5.5.4", "Syntax error in parameters");
	MAIL_BAD("FROM:<a@b> SIZE=", 501, "5.5.4",
	    "Syntax error in parameters");
	MAIL_BAD("FROM:<a@b> SIZE=1\t", 501, "5.5.4",
	    "Syntax error in parameters");
	MAIL_BAD("FROM:<a@b> X_Y", 501, "5.5.4", "Syntax error in parameters");
	MAIL_BAD("FROM:<a@b> ENVID=a=b", 501, "5.5.4",
	    "Syntax error in parameters");
	MAIL_BAD("FROM:<a@b> ENVID=\xc3\xa9", 501, "5.5.4",
	    "Syntax error in parameters");
}

static void
test_mail_address_errors(void **state)
{
	MAIL_BAD("FROM:<a@b.>", 553, "5.1.7",
	    "Invalid address: invalid domain");
	MAIL_BAD("FROM:<a@b", 553, "5.1.7", "Invalid address: missing '>'");
	MAIL_BAD("FROM:<a..b@c>", 553, "5.1.7",
	    "Invalid address: invalid dot in local part");
	MAIL_BAD("FROM:<\"a@b>", 553, "5.1.7",
	    "Invalid address: unbalanced quote");
	MAIL_BAD("FROM:<a>", 553, "5.1.7", "Invalid address: missing domain");
	MAIL_BAD("FROM:<postmaster>", 553, "5.1.7",
	    "Invalid address: missing domain");
	MAIL_BAD("FROM:<a@[1.2.3]>", 553, "5.1.7",
	    "Invalid address: invalid address literal");
	MAIL_BAD("FROM:<@x,y:a@b>", 553, "5.1.7",
	    "Invalid address: invalid source route");
	MAIL_BAD("FROM:<a b@c>", 553, "5.1.7",
	    "Invalid address: invalid character in local part");
	MAIL_BAD("FROM:<\xc0\xaf@c>", 553, "5.1.7",
	    "Invalid address: invalid UTF-8");
	MAIL_BAD("FROM:<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaa@c>",
	    553, "5.1.7", "Invalid address: local part too long");
	MAIL_BAD("FROM:<\"\"@c>", 553, "5.1.7",
	    "Invalid address: empty local part");
}

static void
test_mail_params(void **state)
{
	struct smtp_mail_args	m;
	struct smtp_error	e;

	assert_int_equal(mail_n("FROM:<a@b> SIZE=100 BODY=8BITMIME SMTPUTF8 "
	    "RET=HDRS ENVID=x", &m, &e), 0);
	assert_int_equal(m.size, 100);
	assert_int_equal(m.body, SMTP_BODY_8BITMIME);
	assert_int_equal(m.smtputf8, 1);
	assert_int_equal(m.ret, SMTP_RET_HDRS);
	assert_string_equal(m.envid, "x");

	assert_int_equal(mail_n("FROM:<a@b> size=0 body=7bit ret=full "
	    "envid=AbC+2B+3Dz smtputf8", &m, &e), 0);
	assert_int_equal(m.size, 0);
	assert_int_equal(m.body, SMTP_BODY_7BIT);
	assert_int_equal(m.ret, SMTP_RET_FULL);
	assert_string_equal(m.envid, "AbC+=z");
	assert_int_equal(m.smtputf8, 1);

	/* several and trailing spaces are tolerated */
	assert_int_equal(mail_n("FROM:<a@b>   SIZE=5   BODY=7BIT  ", &m, &e),
	    0);
	assert_int_equal(m.size, 5);
	assert_int_equal(m.body, SMTP_BODY_7BIT);
	assert_int_equal(mail_n("FROM:<a@b> ", &m, &e), 0);

	/* AUTH= is accepted and ignored */
	assert_int_equal(mail_n("FROM:<a@b> AUTH=<>", &m, &e), 0);
	assert_int_equal(mail_n("FROM:<a@b> AUTH=u+40example.com", &m, &e), 0);
}

static void
test_mail_param_errors(void **state)
{
	char	buf[256];

	MAIL_BAD("FROM:<a@b> FOO=bar", 555, "5.5.4", "Unsupported parameter");
	MAIL_BAD("FROM:<a@b> NOTIFY=NEVER", 555, "5.5.4",
	    "Unsupported parameter");
	MAIL_BAD("FROM:<a@b> ORCPT=rfc822;a@b", 555, "5.5.4",
	    "Unsupported parameter");
	MAIL_BAD("FROM:<a@b> SIZES=1", 555, "5.5.4", "Unsupported parameter");
	MAIL_BAD("FROM:<a@b> SIZE=1 SIZE=1", 501, "5.5.4",
	    "Duplicate parameter");
	MAIL_BAD("FROM:<a@b> BODY=7BIT body=7bit", 501, "5.5.4",
	    "Duplicate parameter");
	MAIL_BAD("FROM:<a@b> SMTPUTF8 SMTPUTF8", 501, "5.5.4",
	    "Duplicate parameter");
	MAIL_BAD("FROM:<a@b> RET=FULL RET=HDRS", 501, "5.5.4",
	    "Duplicate parameter");
	MAIL_BAD("FROM:<a@b> ENVID=a ENVID=b", 501, "5.5.4",
	    "Duplicate parameter");
	MAIL_BAD("FROM:<a@b> AUTH=<> AUTH=<>", 501, "5.5.4",
	    "Duplicate parameter");
	MAIL_BAD("FROM:<a@b> SIZE", 501, "5.5.4", "Invalid SIZE parameter");
	MAIL_BAD("FROM:<a@b> SIZE=-1", 501, "5.5.4", "Invalid SIZE parameter");
	MAIL_BAD("FROM:<a@b> SIZE=+1", 501, "5.5.4", "Invalid SIZE parameter");
	MAIL_BAD("FROM:<a@b> SIZE=1k", 501, "5.5.4", "Invalid SIZE parameter");
	MAIL_BAD("FROM:<a@b> SIZE=0x10", 501, "5.5.4",
	    "Invalid SIZE parameter");
	MAIL_BAD("FROM:<a@b> SIZE=99999999999999999999999", 501, "5.5.4",
	    "Invalid SIZE parameter");
	snprintf(buf, sizeof(buf), "FROM:<a@b> SIZE=%zu", (size_t)SIZE_MAX);
	{
		struct smtp_mail_args	m;
		struct smtp_error	e;

		assert_int_equal(mail_n(buf, &m, &e), 0);
		assert_true(m.size == SIZE_MAX);
	}
	snprintf(buf, sizeof(buf), "FROM:<a@b> SIZE=%zu0", (size_t)SIZE_MAX);
	MAIL_BAD(buf, 501, "5.5.4", "Invalid SIZE parameter");
	MAIL_BAD("FROM:<a@b> BODY=BINARYMIME", 501, "5.5.4",
	    "Invalid BODY parameter");
	MAIL_BAD("FROM:<a@b> BODY", 501, "5.5.4", "Invalid BODY parameter");
	MAIL_BAD("FROM:<a@b> SMTPUTF8=yes", 501, "5.5.4",
	    "Invalid SMTPUTF8 parameter");
	MAIL_BAD("FROM:<a@b> RET=ALL", 501, "5.5.4", "Invalid RET parameter");
	MAIL_BAD("FROM:<a@b> RET", 501, "5.5.4", "Invalid RET parameter");
	MAIL_BAD("FROM:<a@b> ENVID", 501, "5.5.4", "Invalid ENVID parameter");
	MAIL_BAD("FROM:<a@b> ENVID=a+ZZ", 501, "5.5.4",
	    "Invalid ENVID parameter");
	MAIL_BAD("FROM:<a@b> ENVID=a+0", 501, "5.5.4",
	    "Invalid ENVID parameter");
	MAIL_BAD("FROM:<a@b> ENVID=a+0Ab", 501, "5.5.4",
	    "Invalid ENVID parameter");
	MAIL_BAD("FROM:<a@b> ENVID=a+00", 501, "5.5.4",
	    "Invalid ENVID parameter");
	MAIL_BAD("FROM:<a@b> ENVID=a+C3+A9", 501, "5.5.4",
	    "Invalid ENVID parameter");
	MAIL_BAD("FROM:<a@b> AUTH", 501, "5.5.4", "Invalid AUTH parameter");
	MAIL_BAD("FROM:<a@b> AUTH=a+", 501, "5.5.4", "Invalid AUTH parameter");
	/* the first error wins */
	MAIL_BAD("FROM:<a@b> FOO SIZE=x", 555, "5.5.4",
	    "Unsupported parameter");
	MAIL_BAD("FROM:<a@b> SIZE=x FOO", 501, "5.5.4",
	    "Invalid SIZE parameter");
}

static void
test_mail_envid_length(void **state)
{
	struct smtp_mail_args	m;
	struct smtp_error	e;
	char			buf[300];

	memcpy(buf, "FROM:<a@b> ENVID=", 17);
	memset(buf + 17, 'e', 100);
	buf[117] = '\0';
	assert_int_equal(mail_n(buf, &m, &e), 0);
	assert_int_equal(strlen(m.envid), 100);
	buf[117] = 'e';
	buf[118] = '\0';
	MAIL_BAD(buf, 501, "5.5.4", "Invalid ENVID parameter");
}

static void
test_mail_utf8(void **state)
{
	struct smtp_mail_args	m;
	struct smtp_error	e;

	MAIL_BAD("FROM:<\xc3\xa9@b>", 553, "5.6.7", "Address needs SMTPUTF8");
	MAIL_BAD("FROM:<a@\xc3\xa9.fr> SIZE=1", 553, "5.6.7",
	    "Address needs SMTPUTF8");
	assert_int_equal(mail_n("FROM:<\xc3\xa9@b> SMTPUTF8", &m, &e), 0);
	assert_string_equal(m.from.local, "\xc3\xa9");
	assert_int_equal(m.smtputf8, 1);
	assert_int_equal(mail_n("FROM:<a@\xc3\xa9.fr> smtputf8", &m, &e), 0);
	assert_string_equal(m.from.domain, "\xc3\xa9.fr");
	/* parameter errors come before the SMTPUTF8 check */
	MAIL_BAD("FROM:<\xc3\xa9@b> FOO", 555, "5.5.4",
	    "Unsupported parameter");
}

static void
test_mail_no_write_on_error(void **state)
{
	struct smtp_mail_args	m, ref;
	struct smtp_error	e;

	memset(&m, 0xa5, sizeof(m));
	memcpy(&ref, &m, sizeof(m));
	assert_int_equal(mail_n("FROM:<a@b> SIZE=10 FOO", &m, &e), -1);
	assert_memory_equal(&m, &ref, sizeof(m));
	assert_int_equal(mail_n("FROM:<\xc3\xa9@b> SIZE=10", &m, &e), -1);
	assert_memory_equal(&m, &ref, sizeof(m));
}

/* ---------------------------------------------------------------- RCPT */

static int
rcpt_n(const char *s, int utf8, struct smtp_rcpt_args *r, struct smtp_error *e)
{
	size_t	 n = strlen(s);
	char	*p = dup_exact(s, n);
	int	 rv;

	rv = smtp_parse_rcpt(p, n, utf8, r, e);
	free(p);
	return rv;
}

#define RCPT_BAD(s, u, c, enh, txt) do {				\
	struct smtp_rcpt_args r_; struct smtp_error e_;			\
	assert_int_equal(rcpt_n((s), (u), &r_, &e_), -1);		\
	ERR_IS(e_, (c), (enh), (txt));					\
} while (0)

#define NOTIFY_IS(s, want) do {						\
	struct smtp_rcpt_args r_; struct smtp_error e_;			\
	assert_int_equal(rcpt_n((s), 0, &r_, &e_), 0);			\
	assert_int_equal(r_.notify, (want));				\
} while (0)

static void
test_rcpt_basic(void **state)
{
	struct smtp_rcpt_args	r;
	struct smtp_error	e;

	assert_int_equal(rcpt_n("TO:<u@Example.org>", 0, &r, &e), 0);
	assert_string_equal(r.to.local, "u");
	assert_string_equal(r.to.domain, "example.org");
	assert_int_equal(r.notify, 0);
	assert_string_equal(r.orcpt, "");
	assert_int_equal(rcpt_n("to: <u@x>", 0, &r, &e), 0);
	assert_string_equal(r.to.local, "u");
	assert_int_equal(rcpt_n("TO:<postmaster>", 0, &r, &e), 0);
	assert_string_equal(r.to.local, "postmaster");
	assert_string_equal(r.to.domain, "");
	assert_int_equal(rcpt_n("TO:<Postmaster> ", 0, &r, &e), 0);
	assert_string_equal(r.to.local, "postmaster");
	assert_int_equal(rcpt_n("TO:<@a,@b:u@x>", 0, &r, &e), 0);
	assert_string_equal(r.to.local, "u");
	assert_int_equal(rcpt_n("TO:<user%other@x>", 0, &r, &e), 0);
	assert_string_equal(r.to.local, "user%other");
}

static void
test_rcpt_errors(void **state)
{
	RCPT_BAD("", 0, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	RCPT_BAD("TO", 0, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	RCPT_BAD("TO:", 0, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	RCPT_BAD("FROM:<a@b>", 0, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	RCPT_BAD("TO:u@x", 0, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	RCPT_BAD("TO:  <u@x>", 0, 501, "5.5.4", "Syntax: RCPT TO:<address>");
	RCPT_BAD("TO:<>", 0, 553, "5.1.3", "Invalid address: empty address");
	RCPT_BAD("TO:<u@x.>", 0, 553, "5.1.3",
	    "Invalid address: invalid domain");
	RCPT_BAD("TO:<u>", 0, 553, "5.1.3", "Invalid address: missing domain");
	RCPT_BAD("TO:<u@x>y", 0, 501, "5.5.4", "Syntax error in parameters");
	RCPT_BAD("TO:<u@x> SIZE=1", 0, 555, "5.5.4", "Unsupported parameter");
	RCPT_BAD("TO:<u@x> BODY=8BITMIME", 0, 555, "5.5.4",
	    "Unsupported parameter");
	RCPT_BAD("TO:<\xc3\xa9@x>", 0, 553, "5.6.7", "Address needs SMTPUTF8");
	RCPT_BAD("TO:<\xc3@x>", 1, 553, "5.1.3",
	    "Invalid address: invalid UTF-8");
}

static void
test_rcpt_utf8(void **state)
{
	struct smtp_rcpt_args	r;
	struct smtp_error	e;

	assert_int_equal(rcpt_n("TO:<\xc3\xa9@\xc3\xa9.fr>", 1, &r, &e), 0);
	assert_string_equal(r.to.local, "\xc3\xa9");
	assert_string_equal(r.to.domain, "\xc3\xa9.fr");
	RCPT_BAD("TO:<a@\xc3\xa9.fr>", 0, 553, "5.6.7",
	    "Address needs SMTPUTF8");
}

static void
test_rcpt_notify(void **state)
{
	NOTIFY_IS("TO:<u@x> NOTIFY=NEVER", SMTP_NOTIFY_NEVER);
	NOTIFY_IS("TO:<u@x> NOTIFY=SUCCESS", SMTP_NOTIFY_SUCCESS);
	NOTIFY_IS("TO:<u@x> NOTIFY=SUCCESS,FAILURE",
	    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
	NOTIFY_IS("TO:<u@x> notify=delay,failure,success",
	    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
	NOTIFY_IS("TO:<u@x> NOTIFY=Failure", SMTP_NOTIFY_FAILURE);
	RCPT_BAD("TO:<u@x> NOTIFY=NEVER,SUCCESS", 0, 501, "5.5.4",
	    "Invalid NOTIFY parameter");
	RCPT_BAD("TO:<u@x> NOTIFY=DELAY,NEVER", 0, 501, "5.5.4",
	    "Invalid NOTIFY parameter");
	RCPT_BAD("TO:<u@x> NOTIFY=SUCCESS,", 0, 501, "5.5.4",
	    "Invalid NOTIFY parameter");
	RCPT_BAD("TO:<u@x> NOTIFY=,SUCCESS", 0, 501, "5.5.4",
	    "Invalid NOTIFY parameter");
	RCPT_BAD("TO:<u@x> NOTIFY=SUCCESS,,DELAY", 0, 501, "5.5.4",
	    "Invalid NOTIFY parameter");
	RCPT_BAD("TO:<u@x> NOTIFY=ALWAYS", 0, 501, "5.5.4",
	    "Invalid NOTIFY parameter");
	RCPT_BAD("TO:<u@x> NOTIFY", 0, 501, "5.5.4",
	    "Invalid NOTIFY parameter");
	RCPT_BAD("TO:<u@x> NOTIFY=", 0, 501, "5.5.4",
	    "Syntax error in parameters");
	RCPT_BAD("TO:<u@x> NOTIFY=NEVER NOTIFY=NEVER", 0, 501, "5.5.4",
	    "Duplicate parameter");
}

static void
test_rcpt_orcpt(void **state)
{
	struct smtp_rcpt_args	r;
	struct smtp_error	e;
	char			buf[600];

	assert_int_equal(rcpt_n("TO:<u@x> ORCPT=rfc822;a@b", 0, &r, &e), 0);
	assert_string_equal(r.orcpt, "rfc822;a@b");
	assert_int_equal(rcpt_n("TO:<u@x> ORCPT=rfc822;a+2Bb+40c "
	    "NOTIFY=FAILURE", 0, &r, &e), 0);
	assert_string_equal(r.orcpt, "rfc822;a+b@c");
	assert_int_equal(r.notify, SMTP_NOTIFY_FAILURE);
	assert_int_equal(rcpt_n("TO:<u@x> ORCPT=RFC822;+22a+20b+22@c", 0, &r,
	    &e), 0);
	assert_string_equal(r.orcpt, "RFC822;\"a b\"@c");
	assert_int_equal(rcpt_n("TO:<u@x> ORCPT=utf-8;a@b", 0, &r, &e), 0);
	assert_string_equal(r.orcpt, "utf-8;a@b");

	RCPT_BAD("TO:<u@x> ORCPT=a@b", 0, 501, "5.5.4",
	    "Invalid ORCPT parameter");
	RCPT_BAD("TO:<u@x> ORCPT=;a@b", 0, 501, "5.5.4",
	    "Invalid ORCPT parameter");
	RCPT_BAD("TO:<u@x> ORCPT=rfc822;", 0, 501, "5.5.4",
	    "Invalid ORCPT parameter");
	RCPT_BAD("TO:<u@x> ORCPT=rfc_822;a@b", 0, 501, "5.5.4",
	    "Invalid ORCPT parameter");
	RCPT_BAD("TO:<u@x> ORCPT=rfc822;a+0D+0Ab", 0, 501, "5.5.4",
	    "Invalid ORCPT parameter");
	RCPT_BAD("TO:<u@x> ORCPT=rfc822;a+G0", 0, 501, "5.5.4",
	    "Invalid ORCPT parameter");
	RCPT_BAD("TO:<u@x> ORCPT", 0, 501, "5.5.4", "Invalid ORCPT parameter");
	RCPT_BAD("TO:<u@x> ORCPT=rfc822;a ORCPT=rfc822;b", 0, 501, "5.5.4",
	    "Duplicate parameter");

	/* "rfc822;" and ADDR_MAX + 8 octets fill orcpt exactly */
	memcpy(buf, "TO:<u@x> ORCPT=rfc822;", 22);
	memset(buf + 22, 'a', ADDR_MAX + 8);
	buf[22 + ADDR_MAX + 8] = '\0';
	assert_int_equal(rcpt_n(buf, 0, &r, &e), 0);
	assert_int_equal(strlen(r.orcpt), sizeof(r.orcpt) - 1);
	buf[22 + ADDR_MAX + 8] = 'a';
	buf[22 + ADDR_MAX + 9] = '\0';
	RCPT_BAD(buf, 0, 501, "5.5.4", "Invalid ORCPT parameter");
}

/* ---------------------------------------------------------------- BDAT */

#define BDAT_OK(s, sz, l) do {						\
	size_t c_ = 7; int l_ = 7; struct smtp_error e_;		\
	char *p_ = dup_exact((s), strlen(s));				\
	assert_int_equal(smtp_parse_bdat(p_, strlen(s), &c_, &l_, &e_), 0); \
	free(p_);							\
	assert_true(c_ == (size_t)(sz));				\
	assert_int_equal(l_, (l));					\
} while (0)

#define BDAT_BAD(s, txt) do {						\
	size_t c_ = 7; int l_ = 7; struct smtp_error e_;		\
	char *p_ = dup_exact((s), strlen(s));				\
	assert_int_equal(smtp_parse_bdat(p_, strlen(s), &c_, &l_, &e_), -1); \
	free(p_);							\
	ERR_IS(e_, 501, "5.5.4", (txt));				\
	assert_int_equal(c_, 7);					\
	assert_int_equal(l_, 7);					\
} while (0)

static void
test_bdat(void **state)
{
	char	buf[64];

	BDAT_OK("1000", 1000, 0);
	BDAT_OK("1000 LAST", 1000, 1);
	BDAT_OK("0 last", 0, 1);
	BDAT_OK("0", 0, 0);
	BDAT_OK("007 LaSt", 7, 1);
	BDAT_BAD("", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("abc", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("-1", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("+1", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD(" 1", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("1 ", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("1  LAST", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("1 LASTX", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("1 LAS", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("1 LAST ", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("1\tLAST", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("1x", "Syntax: BDAT chunk-size [LAST]");
	BDAT_BAD("99999999999999999999999999", "Chunk size too large");
	BDAT_BAD("99999999999999999999999999 LAST", "Chunk size too large");
	snprintf(buf, sizeof(buf), "%zu", (size_t)SIZE_MAX / 2);
	BDAT_OK(buf, SIZE_MAX / 2, 0);
	snprintf(buf, sizeof(buf), "%zu LAST", (size_t)SIZE_MAX / 2 + 1);
	BDAT_BAD(buf, "Chunk size too large");
}

/* ---------------------------------------------------------------- HELO */

#define HELO_OK(s, want) do {						\
	char o_[300]; struct smtp_error e_;				\
	char *p_ = dup_exact((s), strlen(s));				\
	assert_int_equal(smtp_parse_helo(p_, strlen(s), o_, sizeof(o_),	\
	    &e_), 0);							\
	free(p_);							\
	assert_string_equal(o_, (want));				\
} while (0)

#define HELO_BAD(s, txt) do {						\
	char o_[300]; struct smtp_error e_;				\
	char *p_ = dup_exact((s), strlen(s));				\
	assert_int_equal(smtp_parse_helo(p_, strlen(s), o_, sizeof(o_),	\
	    &e_), -1);							\
	free(p_);							\
	ERR_IS(e_, 501, "5.5.4", (txt));				\
} while (0)

static void
test_helo(void **state)
{
	char			out[8];
	struct smtp_error	e;
	char			l63[64];
	char			buf[300];

	HELO_OK("mail.example.com", "mail.example.com");
	HELO_OK("Mail.Example.COM", "Mail.Example.COM");
	HELO_OK("localhost", "localhost");
	HELO_OK("[192.0.2.1]", "[192.0.2.1]");
	HELO_OK("[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]");
	HELO_OK("client.example (some comment)", "client.example");
	HELO_OK("client.example ", "client.example");
	HELO_OK("  client.example", "client.example");
	HELO_BAD("", "Syntax: EHLO hostname");
	HELO_BAD("   ", "Syntax: EHLO hostname");
	HELO_BAD("foo_bar.example", "Invalid domain name");
	HELO_BAD("example.com.", "Invalid domain name");
	HELO_BAD("-x.example", "Invalid domain name");
	HELO_BAD("b\xc3\xbc" "cher.de", "Invalid domain name");
	HELO_BAD("[1.2.3]", "Invalid domain name");
	HELO_BAD("[1.2.3.4", "Invalid domain name");
	HELO_BAD("[2001:db8::1]", "Invalid domain name");
	HELO_BAD("x\tfoo", "Invalid domain name");
	HELO_BAD("<x>", "Invalid domain name");

	assert_int_equal(smtp_parse_helo("abcdefg", 7, out, sizeof(out), &e),
	    0);
	assert_string_equal(out, "abcdefg");
	assert_int_equal(smtp_parse_helo("abcdefgh", 8, out, sizeof(out), &e),
	    -1);
	ERR_IS(e, 501, "5.5.4", "Domain name too long");
	assert_int_equal(smtp_parse_helo("ab\0c", 4, out, sizeof(out), &e),
	    -1);
	ERR_IS(e, 501, "5.5.4", "Invalid domain name");

	memset(l63, 'a', 63);
	l63[63] = '\0';
	snprintf(buf, sizeof(buf), "%s.%s.%s.%s", l63, l63, l63, l63);
	HELO_OK(buf, buf);
	snprintf(buf, sizeof(buf), "%s.%s.%s.%sa", l63, l63, l63, l63);
	HELO_BAD(buf, "Invalid domain name");
}

/* ---------------------------------------------------------------- xtext */

static void
test_xtext(void **state)
{
	char	out[16];

	assert_int_equal(smtp_xtext_decode("abc", 3, out, sizeof(out)), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(smtp_xtext_decode("a+2Bb", 5, out, sizeof(out)), 0);
	assert_string_equal(out, "a+b");
	assert_int_equal(smtp_xtext_decode("+2b+3d", 6, out, sizeof(out)), 0);
	assert_string_equal(out, "+=");
	assert_int_equal(smtp_xtext_decode("+20+7E", 6, out, sizeof(out)), 0);
	assert_string_equal(out, " ~");
	assert_int_equal(smtp_xtext_decode("", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(smtp_xtext_decode("+", 1, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("+2", 2, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("a+GG", 4, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("+00", 3, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("a=b", 3, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("a b", 3, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("a\x7f", 2, out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("\xc3\xa9", 2, out, sizeof(out)),
	    -1);
	assert_string_equal(out, "");
	/* "+2B" given with len 2 must not read the B */
	assert_int_equal(smtp_xtext_decode("+2B", 2, out, sizeof(out)), -1);
	/* bounds: the NUL must fit too */
	assert_int_equal(smtp_xtext_decode("abcd", 4, out, 5), 0);
	assert_int_equal(smtp_xtext_decode("abcd", 4, out, 4), -1);
	assert_int_equal(smtp_xtext_decode("+41+42", 6, out, 3), 0);
	assert_string_equal(out, "AB");
	assert_int_equal(smtp_xtext_decode("+41+42", 6, out, 2), -1);
	assert_int_equal(smtp_xtext_decode("", 0, out, 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd_verbs),
		cmocka_unit_test(test_cmd_case),
		cmocka_unit_test(test_cmd_args),
		cmocka_unit_test(test_cmd_unknown),
		cmocka_unit_test(test_cmd_errors),
		cmocka_unit_test(test_mail_basic),
		cmocka_unit_test(test_mail_syntax),
		cmocka_unit_test(test_mail_address_errors),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_mail_param_errors),
		cmocka_unit_test(test_mail_envid_length),
		cmocka_unit_test(test_mail_utf8),
		cmocka_unit_test(test_mail_no_write_on_error),
		cmocka_unit_test(test_rcpt_basic),
		cmocka_unit_test(test_rcpt_errors),
		cmocka_unit_test(test_rcpt_utf8),
		cmocka_unit_test(test_rcpt_notify),
		cmocka_unit_test(test_rcpt_orcpt),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_xtext),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
