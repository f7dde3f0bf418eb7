/*
 * test_sendmail.c: unit tests for the sendmail(8) face of posternctl:
 * header fields and folding, address lists (comments, quotes, groups,
 * routes), missing-header detection, Bcc removal, the wire form (CRLF,
 * dot-stuffing), the "." end rule, SMTP reply lines, the Date: and From:
 * fields, and option parsing (ctl/ctl_mail.c, ctl/ctl_sendmail.c).
 * SECURITY: test code; exact bytes and exact addresses are compared.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "../../ctl/ctl.h"

/* Parse value as an address list; the addresses joined by "|", or "ERR". */
static char *
addrs(const char *value)
{
	static char		 out[4096];
	struct ctl_mail_rcpts	 r;
	size_t			 i;

	ctl_mail_rcpts_init(&r);
	if (ctl_mail_addrlist(&r, value, strlen(value)) == -1) {
		ctl_mail_rcpts_free(&r);
		return "ERR";
	}
	out[0] = '\0';
	for (i = 0; i < r.n; i++) {
		if (i > 0)
			strlcat(out, "|", sizeof(out));
		strlcat(out, r.addr[i], sizeof(out));
	}
	ctl_mail_rcpts_free(&r);
	return out;
}

static void
test_addrlist_simple(void **state)
{
	assert_string_equal(addrs("alice@example.org"), "alice@example.org");
	assert_string_equal(addrs(" a@x ,b@y,  c@z "), "a@x|b@y|c@z");
	assert_string_equal(addrs("a@x,,b@y,"), "a@x|b@y");
	assert_string_equal(addrs(""), "");
	assert_string_equal(addrs("bob"), "bob");
}

static void
test_addrlist_display_names(void **state)
{
	assert_string_equal(addrs("Alice Smith <alice@x>"), "alice@x");
	assert_string_equal(addrs("\"Doe, John\" <john@x>, b@y"),
	    "john@x|b@y");
	assert_string_equal(addrs("\"a \\\"quoted\\\" <name>\" <q@x>"), "q@x");
	assert_string_equal(addrs("<@relay.example,@b.example:u@c>"), "u@c");
	assert_string_equal(addrs("Name <a@x> trailing words, b@y"),
	    "a@x|b@y");
}

static void
test_addrlist_comments(void **state)
{
	assert_string_equal(addrs("alice@x (Alice, the (nested) one)"),
	    "alice@x");
	assert_string_equal(addrs("(lead) bob@y, carol@z (x\\) y)"),
	    "bob@y|carol@z");
	assert_string_equal(addrs("Al (c) <a (inner) @x>"), "a@x");
}

static void
test_addrlist_groups(void **state)
{
	assert_string_equal(addrs("undisclosed-recipients:;"), "");
	assert_string_equal(addrs("undisclosed-recipients: ;, a@x"), "a@x");
	assert_string_equal(addrs("Team: a@x, B <b@y>; c@z"), "a@x|b@y|c@z");
	assert_string_equal(addrs("\"quoted: group\" <g@x>"), "g@x");
}

static void
test_addrlist_folded(void **state)
{
	assert_string_equal(addrs("a@x,\r\n b@y,\n\tC\r\n <c@z>"),
	    "a@x|b@y|c@z");
}

static void
test_addrlist_malformed(void **state)
{
	assert_string_equal(addrs("\"unterminated <a@x>"), "ERR");
	assert_string_equal(addrs("a@x (open comment"), "ERR");
	assert_string_equal(addrs("<a@x"), "ERR");
	assert_string_equal(addrs("a@x>"), "ERR");
	assert_string_equal(addrs("<>"), "ERR");
	assert_string_equal(addrs("<a@x> <b@y>"), "ERR");
	assert_string_equal(addrs("g: a@x; h: b@y: c;"), "ERR");
	assert_string_equal(addrs("a@x;"), "ERR");
	assert_string_equal(addrs("a\x01@x"), "ERR");
	assert_string_equal(addrs("a\x7f@x"), "ERR");
	assert_string_equal(addrs("<@route-without-colon>"), "ERR");
}

static void
test_addrlist_bounds(void **state)
{
	struct ctl_mail_rcpts	 r;
	char			 big[CTL_MAIL_ADDRMAX + 8];
	char			*long_name;
	size_t			 n;

	/* An address of the maximum length passes, one more byte fails. */
	memset(big, 'a', CTL_MAIL_ADDRMAX);
	big[CTL_MAIL_ADDRMAX] = '\0';
	ctl_mail_rcpts_init(&r);
	assert_int_equal(ctl_mail_addrlist(&r, big, strlen(big)), 0);
	assert_int_equal(r.n, 1);
	ctl_mail_rcpts_free(&r);
	strlcat(big, "a", sizeof(big));
	assert_string_equal(addrs(big), "ERR");

	/* A display name longer than an address does not matter. */
	n = CTL_MAIL_ADDRMAX * 3;
	long_name = malloc(n + 16);
	assert_non_null(long_name);
	memset(long_name, 'N', n);
	strlcpy(long_name + n, " <a@x>", 16);
	assert_string_equal(addrs(long_name), "a@x");
	free(long_name);
}

static void
test_rcpt_add(void **state)
{
	struct ctl_mail_rcpts	 r;

	ctl_mail_rcpts_init(&r);
	assert_int_equal(ctl_mail_rcpt_add(&r, "", 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ctl_mail_rcpt_add(&r, "a\r\nRCPT TO:<b>", 14), -1);
	assert_int_equal(ctl_mail_rcpt_add(&r, "a b", 3), -1);
	assert_int_equal(ctl_mail_rcpt_add(&r, "a@x", 3), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.addr[0], "a@x");
	ctl_mail_rcpts_free(&r);
	assert_true(ctl_mail_addr_valid("", 0));
	assert_false(ctl_mail_addr_valid("<a>", 3));
	assert_false(ctl_mail_addr_valid("a\tb", 3));
}

static void
test_field_next(void **state)
{
	const char		*m = "Subject: one\r\n two\r\nTo : a@x\n"
				    "X-Empty:\nnot a header\n";
	struct ctl_mail_field	 f;
	size_t			 off = 0;

	assert_int_equal(ctl_mail_field_next(m, strlen(m), &off, &f), 1);
	assert_int_equal(f.namelen, 7);
	assert_memory_equal(f.name, "Subject", 7);
	assert_int_equal(f.valuelen, strlen(" one\r\n two"));
	assert_memory_equal(f.value, " one\r\n two", f.valuelen);
	assert_int_equal(f.start, 0);
	assert_int_equal(f.end, 20);
	assert_int_equal(ctl_mail_field_next(m, strlen(m), &off, &f), 1);
	assert_int_equal(f.namelen, 2);
	assert_memory_equal(f.value, " a@x", f.valuelen);
	assert_int_equal(ctl_mail_field_next(m, strlen(m), &off, &f), 1);
	assert_int_equal(f.valuelen, 0);
	assert_int_equal(ctl_mail_field_next(m, strlen(m), &off, &f), 0);
	assert_memory_equal(m + off, "not a header", 12);

	off = 0;
	assert_int_equal(ctl_mail_field_next(" cont: x\n", 9, &off, &f), 0);
	assert_int_equal(ctl_mail_field_next(":x\n", 3, &off, &f), 0);
	assert_int_equal(ctl_mail_field_next("\r\n", 2, &off, &f), 0);
	/* A last field without LF. */
	assert_int_equal(ctl_mail_field_next("A: b", 4, &off, &f), 1);
	assert_int_equal(off, 4);
	assert_int_equal(f.valuelen, 2);
}

/* Scan and wire a message; the wire text (static). */
static const char *
wire(const char *msg, int want, struct ctl_mail_rcpts *r,
    struct ctl_mail_scan *sc, const char *added)
{
	static char	 out[8192];
	struct ctl_buf	 b;
	char		 err[256];

	assert_int_equal(ctl_mail_scan(msg, strlen(msg), want, r, sc, err,
	    sizeof(err)), 0);
	ctl_buf_init(&b);
	ctl_mail_wire(&b, msg, strlen(msg), sc, added);
	assert_false(b.failed);
	strlcpy(out, ctl_buf_str(&b), sizeof(out));
	ctl_buf_free(&b);
	return out;
}

static void
test_scan_missing_headers(void **state)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_mail_scan	 sc;

	ctl_mail_rcpts_init(&r);
	wire("Subject: x\n\nbody\n", 0, &r, &sc, "");
	assert_false(sc.has_date);
	assert_false(sc.has_msgid);
	assert_false(sc.has_from);
	wire("DATE: Mon, 1 Jan 2024 00:00:00 +0000\nmessage-id: <a@b>\n"
	    "from: x@y\n\nbody\n", 0, &r, &sc, "");
	assert_true(sc.has_date);
	assert_true(sc.has_msgid);
	assert_true(sc.has_from);
	/* "From " (mbox) and "From-X:" are not From:. */
	wire("From-X: a\nResent-From: b\n\n", 0, &r, &sc, "");
	assert_false(sc.has_from);
	assert_int_equal(r.n, 0);
	ctl_mail_rcpts_free(&r);
}

static void
test_scan_rcpts_and_bcc(void **state)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_mail_scan	 sc;
	const char		*msg =
	    "To: Alice <alice@x>,\n bob@y\n"
	    "Subject: hi\n"
	    "bcc: secret@z,\n\thidden@w\n"
	    "Cc: undisclosed-recipients:;\n"
	    "CC: \"c, d\" <cd@v>\n"
	    "\n"
	    "To: body@not\n";

	ctl_mail_rcpts_init(&r);
	assert_string_equal(wire(msg, 1, &r, &sc, "Date: D\r\n"),
	    "Date: D\r\n"
	    "To: Alice <alice@x>,\r\n bob@y\r\n"
	    "Subject: hi\r\n"
	    "Cc: undisclosed-recipients:;\r\n"
	    "CC: \"c, d\" <cd@v>\r\n"
	    "\r\n"
	    "To: body@not\r\n");
	assert_int_equal(sc.nbcc, 1);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.addr[0], "alice@x");
	assert_string_equal(r.addr[1], "bob@y");
	assert_string_equal(r.addr[2], "secret@z");
	assert_string_equal(r.addr[3], "hidden@w");
	assert_string_equal(r.addr[4], "cd@v");
	ctl_mail_rcpts_free(&r);

	/* Without -t: no recipients taken, Bcc still removed. */
	ctl_mail_rcpts_init(&r);
	assert_string_equal(wire("Bcc: a@x\nX: y\n\nb\n", 0, &r, &sc, ""),
	    "X: y\r\n\r\nb\r\n");
	assert_int_equal(r.n, 0);
	ctl_mail_rcpts_free(&r);
}

static void
test_scan_bad_list(void **state)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_mail_scan	 sc;
	char			 err[256];
	const char		*msg = "Subject: x\nCc: \"open <a@x>\n\nb\n";

	ctl_mail_rcpts_init(&r);
	assert_int_equal(ctl_mail_scan(msg, strlen(msg), 1, &r, &sc, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "bad address list in Cc: header");
	/* Without -t the list is not parsed: no error. */
	assert_int_equal(ctl_mail_scan(msg, strlen(msg), 0, &r, &sc, err,
	    sizeof(err)), 0);
	ctl_mail_rcpts_free(&r);
}

static void
test_wire_separator_cases(void **state)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_mail_scan	 sc;

	ctl_mail_rcpts_init(&r);
	/* All headers, no separator: no empty line is invented. */
	assert_string_equal(wire("Subject: a\nX: b", 0, &r, &sc, "D: 1\r\n"),
	    "D: 1\r\nSubject: a\r\nX: b\r\n");
	assert_false(sc.separator);
	/* Body text right after the headers: an empty line goes between. */
	assert_string_equal(wire("Subject: a\nhello world\n", 0, &r, &sc,
	    "D: 1\r\n"), "D: 1\r\nSubject: a\r\n\r\nhello world\r\n");
	/* No header at all. */
	assert_string_equal(wire("just text\n", 0, &r, &sc, "D: 1\r\n"),
	    "D: 1\r\n\r\njust text\r\n");
	assert_string_equal(wire("\nbody\n", 0, &r, &sc, "D: 1\r\n"),
	    "D: 1\r\n\r\nbody\r\n");
	/* An empty message. */
	assert_string_equal(wire("", 0, &r, &sc, "D: 1\r\n"), "D: 1\r\n");
	/* CRLF input stays CRLF, once. */
	assert_string_equal(wire("A: b\r\n\r\nx\r\ny", 0, &r, &sc, ""),
	    "A: b\r\n\r\nx\r\ny\r\n");
	ctl_mail_rcpts_free(&r);
}

static void
test_wire_dot_stuffing(void **state)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_mail_scan	 sc;

	ctl_mail_rcpts_init(&r);
	assert_string_equal(wire("S: x\n\n.\n..\n.a\nb.\n.\r\n", 0, &r, &sc,
	    ""), "S: x\r\n\r\n..\r\n...\r\n..a\r\nb.\r\n..\r\n");
	ctl_mail_rcpts_free(&r);
}

static void
test_end_line(void **state)
{
	assert_true(ctl_mail_is_end_line(".\n", 2));
	assert_true(ctl_mail_is_end_line(".\r\n", 3));
	assert_true(ctl_mail_is_end_line(".", 1));
	assert_false(ctl_mail_is_end_line("..\n", 3));
	assert_false(ctl_mail_is_end_line(". \n", 3));
	assert_false(ctl_mail_is_end_line("\n", 1));
	assert_false(ctl_mail_is_end_line("", 0));
	assert_false(ctl_mail_is_end_line(".\r", 2));
}

static void
test_reply_line(void **state)
{
	int	 code, last;

	assert_int_equal(ctl_mail_reply_line("250 ok", 6, &code, &last), 0);
	assert_int_equal(code, 250);
	assert_true(last);
	assert_int_equal(ctl_mail_reply_line("250-x", 5, &code, &last), 0);
	assert_false(last);
	assert_int_equal(ctl_mail_reply_line("354", 3, &code, &last), 0);
	assert_int_equal(code, 354);
	assert_true(last);
	assert_int_equal(ctl_mail_reply_line("199 x", 5, &code, &last), -1);
	assert_int_equal(ctl_mail_reply_line("600 x", 5, &code, &last), -1);
	assert_int_equal(ctl_mail_reply_line("25 x", 4, &code, &last), -1);
	assert_int_equal(ctl_mail_reply_line("250x", 4, &code, &last), -1);
	assert_int_equal(ctl_mail_reply_line("2a0 x", 5, &code, &last), -1);
}

static void
test_date(void **state)
{
	char	 d[64];

	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(ctl_mail_date(d, sizeof(d), 1700000000), 0);
	assert_string_equal(d, "Tue, 14 Nov 2023 22:13:20 +0000");
	setenv("TZ", "EST5EDT", 1);
	tzset();
	assert_int_equal(ctl_mail_date(d, sizeof(d), 1700000000), 0);
	assert_string_equal(d, "Tue, 14 Nov 2023 17:13:20 -0500");
	assert_int_equal(ctl_mail_date(d, 10, 1700000000), -1);
	assert_string_equal(d, "");
	setenv("TZ", "UTC", 1);
	tzset();
}

static void
test_from_header(void **state)
{
	struct ctl_buf	 b;

	ctl_buf_init(&b);
	assert_int_equal(ctl_mail_from_header(&b, NULL, "joe"), 0);
	assert_int_equal(ctl_mail_from_header(&b, "Joe Bloggs", "joe"), 0);
	assert_int_equal(ctl_mail_from_header(&b, "Bloggs, Joe \"J\"", "joe"),
	    0);
	assert_int_equal(ctl_mail_from_header(&b, "a\\b", "joe"), 0);
	assert_string_equal(ctl_buf_str(&b),
	    "From: joe\r\n"
	    "From: Joe Bloggs <joe>\r\n"
	    "From: \"Bloggs, Joe \\\"J\\\"\" <joe>\r\n"
	    "From: \"a\\\\b\" <joe>\r\n");
	ctl_buf_reset(&b);
	assert_int_equal(ctl_mail_from_header(&b, "Evil\r\nBcc: x", "joe"),
	    -1);
	assert_int_equal(ctl_mail_from_header(&b, "Ok", "jo e"), -1);
	assert_int_equal(ctl_mail_from_header(&b, "Ok", ""), -1);
	assert_int_equal(b.len, 0);
	ctl_buf_free(&b);
}

/* Parse a NULL-terminated argument list as face. */
static int
parse(const char *face, struct ctl_sendmail_opts *o, char *err, size_t errsz,
    ...)
{
	static char	*argv[32];
	va_list		 ap;
	int		 argc = 0;
	char		*a;

	va_start(ap, errsz);
	while ((a = va_arg(ap, char *)) != NULL && argc < 31)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	err[0] = '\0';
	return ctl_sendmail_parse(face, argc, argv, o, err, errsz);
}

static void
test_options(void **state)
{
	struct ctl_sendmail_opts	 o;
	char				 err[256];

	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-t", "-oi", "-f", "me@x", "-F", "Me Myself", "-v", "a@x", "b@y",
	    NULL), 0);
	assert_int_equal(o.mode, CTL_SM_DELIVER);
	assert_true(o.from_headers);
	assert_true(o.ignore_dots);
	assert_true(o.verbose);
	assert_string_equal(o.sender, "me@x");
	assert_string_equal(o.fullname, "Me Myself");
	assert_int_equal(o.nrcpts, 2);
	assert_string_equal(o.rcpts[0], "a@x");
	assert_string_equal(o.rcpts[1], "b@y");

	/* Compatibility options, silently accepted. */
	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-odi", "-odb", "-odq", "-oem", "-oep", "-oee", "-om", "-U",
	    "-B", "8BITMIME", "-B7BIT", "-L", "tag", "-N", "never", "-R",
	    "hdrs", "-V", "envid", "-X", "/tmp/x", "-i", "-rme", "-bm", "a",
	    NULL), 0);
	assert_string_equal(o.sender, "me");
	assert_true(o.ignore_dots);
	assert_false(o.from_headers);
	assert_int_equal(o.nrcpts, 1);

	/* Options stop at the first recipient. */
	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "a@x", "-t", NULL), 0);
	assert_false(o.from_headers);
	assert_int_equal(o.nrcpts, 2);

	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-bs", NULL), 0);
	assert_int_equal(o.mode, CTL_SM_SMTP);
	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-bp", NULL), 0);
	assert_int_equal(o.mode, CTL_SM_QUEUE);
	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-bi", "-C", "/etc/x.conf", NULL), 0);
	assert_int_equal(o.mode, CTL_SM_ALIASES);
	assert_string_equal(o.conffile, "/etc/x.conf");
	assert_int_equal(parse("newaliases", &o, err, sizeof(err),
	    "newaliases", NULL), 0);
	assert_int_equal(o.mode, CTL_SM_ALIASES);
}

static void
test_options_errors(void **state)
{
	struct ctl_sendmail_opts	 o;
	char				 err[256];

	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-q", NULL), -1);
	assert_string_equal(err, "unknown option -q");
	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-f", NULL), -1);
	assert_string_equal(err, "option -f needs an argument");
	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-bd", NULL), -1);
	assert_string_equal(err, "-bd: mode not supported");
	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-oQ/var/spool", NULL), -1);
	assert_string_equal(err, "-oQ/var/spool: option not supported");
	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-f", "a", "-r", "b", NULL), -1);
	assert_string_equal(err, "more than one sender (-f/-r)");
	assert_int_equal(parse("sendmail", &o, err, sizeof(err), "sendmail",
	    "-bp", "x", NULL), -1);
	assert_string_equal(err, "unexpected argument 'x'");
	assert_int_equal(parse("newaliases", &o, err, sizeof(err),
	    "newaliases", "-v", NULL), -1);
	assert_string_equal(err, "unexpected argument '-v'");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addrlist_simple),
		cmocka_unit_test(test_addrlist_display_names),
		cmocka_unit_test(test_addrlist_comments),
		cmocka_unit_test(test_addrlist_groups),
		cmocka_unit_test(test_addrlist_folded),
		cmocka_unit_test(test_addrlist_malformed),
		cmocka_unit_test(test_addrlist_bounds),
		cmocka_unit_test(test_rcpt_add),
		cmocka_unit_test(test_field_next),
		cmocka_unit_test(test_scan_missing_headers),
		cmocka_unit_test(test_scan_rcpts_and_bcc),
		cmocka_unit_test(test_scan_bad_list),
		cmocka_unit_test(test_wire_separator_cases),
		cmocka_unit_test(test_wire_dot_stuffing),
		cmocka_unit_test(test_end_line),
		cmocka_unit_test(test_reply_line),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_from_header),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_options_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
