/*
 * test_drop.c: unit tests for sendmail's offline drop writer
 * (ctl/ctl_drop.c) against the reader queue uses (common/drop.c): what
 * ctl_drop_format writes, drop_parse gives back byte for byte; the
 * writer refuses what the reader would; ctl_drop_unstuff undoes exactly
 * the dot-stuffing of ctl_mail_wire; ctl_drop_write publishes one m*
 * file and leaves nothing on failure.
 * SECURITY: test code; files only under a mkdtemp directory.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../ctl/ctl.h"
#include "drop.h"

/* Format, parse back, compare sender, recipients and body exactly. */
static void
roundtrip(const char *sender, const char **rcpts, size_t n,
    const char *body, size_t bodylen)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_buf		 b;
	struct drop_msg		 m;
	char			 err[256];
	size_t			 i;

	ctl_mail_rcpts_init(&r);
	for (i = 0; i < n; i++)
		assert_int_equal(ctl_mail_rcpt_add(&r, rcpts[i],
		    strlen(rcpts[i])), 0);
	ctl_buf_init(&b);
	assert_int_equal(ctl_drop_format(&b, sender, &r, body, bodylen, err,
	    sizeof(err)), 0);
	assert_int_equal(drop_parse(b.data, b.len, &m, err, sizeof(err)), 0);
	assert_string_equal(m.sender, sender);
	assert_int_equal(m.nrcpts, n);
	for (i = 0; i < n; i++)
		assert_string_equal(m.rcpts[i], rcpts[i]);
	assert_int_equal(m.bodylen, bodylen);
	if (bodylen > 0)
		assert_memory_equal(m.body, body, bodylen);
	drop_free(&m);
	ctl_buf_free(&b);
	ctl_mail_rcpts_free(&r);
}

static void
test_exact_bytes(void **state)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_buf		 b;
	char			 err[256];
	const char		*body = "Subject: x\r\n\r\nhi\r\n";
	const char		*want = "POSTERN-DROP 1\nsender bob@b.test\n"
				    "rcpt alice@a.test\nrcpt carol\n\n"
				    "Subject: x\r\n\r\nhi\r\n";

	ctl_mail_rcpts_init(&r);
	assert_int_equal(ctl_mail_rcpt_add(&r, "alice@a.test", 12), 0);
	assert_int_equal(ctl_mail_rcpt_add(&r, "carol", 5), 0);
	ctl_buf_init(&b);
	assert_int_equal(ctl_drop_format(&b, "bob@b.test", &r, body,
	    strlen(body), err, sizeof(err)), 0);
	assert_string_equal(ctl_buf_str(&b), want);
	ctl_buf_free(&b);
	ctl_mail_rcpts_free(&r);
}

static void
test_roundtrip_simple(void **state)
{
	const char	*rc[] = { "alice@test.postern" };
	const char	*body = "From: bob\r\nSubject: s\r\n\r\nline\r\n";

	roundtrip("bob@test.postern", rc, 1, body, strlen(body));
}

static void
test_roundtrip_null_sender(void **state)
{
	const char	*rc[] = { "alice@test.postern", "bob" };
	const char	*body = "Subject: bounce\r\n\r\nx\r\n";

	roundtrip("", rc, 2, body, strlen(body));
}

static void
test_roundtrip_many(void **state)
{
	static char	 addr[DROP_MAXRCPT][32];
	const char	*rc[DROP_MAXRCPT];
	const char	*body = "Subject: many\r\n\r\n";
	size_t		 i;

	for (i = 0; i < DROP_MAXRCPT; i++) {
		snprintf(addr[i], sizeof(addr[i]), "user%zu@test.postern", i);
		rc[i] = addr[i];
	}
	roundtrip("s@test.postern", rc, DROP_MAXRCPT, body, strlen(body));
}

static void
test_roundtrip_dot_line(void **state)
{
	const char	*rc[] = { "alice@test.postern" };
	const char	*body = "Subject: d\r\n\r\nbefore\r\n.\r\n..two\r\n"
			    ".\r\nafter\r\n";

	roundtrip("bob@test.postern", rc, 1, body, strlen(body));
}

static void
test_roundtrip_empty_body(void **state)
{
	const char	*rc[] = { "alice@test.postern" };

	roundtrip("bob@test.postern", rc, 1, "", 0);
}

static void
test_roundtrip_8bit(void **state)
{
	const char	*rc[] = { "j\xc3\xbcrgen@test.postern" };
	const char	*body = "Subject: \xc3\xa9t\xc3\xa9\r\n\r\n\xff\r\n";

	roundtrip("s\xc3\xa9@test.postern", rc, 1, body, strlen(body));
}

/* The writer refuses: -1, err as given, nothing appended. */
static void
refuse(const char *sender, const char *rcpt, const char *body,
    const char *want)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_buf		 b;
	char			 err[256];
	char			*a;

	ctl_mail_rcpts_init(&r);
	if (rcpt != NULL) {
		/* Bypass ctl_mail_rcpt_add's checks: the writer checks. */
		assert_non_null(r.addr = calloc(1, sizeof(*r.addr)));
		assert_non_null(a = strdup(rcpt));
		r.addr[0] = a;
		r.n = r.cap = 1;
	}
	ctl_buf_init(&b);
	err[0] = '\0';
	assert_int_equal(ctl_drop_format(&b, sender, &r, body, strlen(body),
	    err, sizeof(err)), -1);
	assert_string_equal(err, want);
	assert_int_equal(b.len, 0);
	ctl_buf_free(&b);
	ctl_mail_rcpts_free(&r);
}

static void
test_refuse_addresses(void **state)
{
	const char	*ok = "Subject: x\r\n\r\n";
	char		 longa[DROP_ADDRMAX + 1];

	refuse("s@t", "a b@test", ok, "recipient not allowed in a drop file");
	refuse("s@t", "a\n@test", ok, "recipient not allowed in a drop file");
	refuse("s@t", "a\r@test", ok, "recipient not allowed in a drop file");
	refuse("s@t", "a\t@test", ok, "recipient not allowed in a drop file");
	refuse("s@t", "a\x7f@test", ok,
	    "recipient not allowed in a drop file");
	refuse("s@t", "<a@test>", ok, "recipient not allowed in a drop file");
	refuse("s@t", "", ok, "recipient not allowed in a drop file");
	refuse("s t", "a@test", ok, "sender not allowed in a drop file");
	refuse("s\n", "a@test", ok, "sender not allowed in a drop file");
	memset(longa, 'a', sizeof(longa) - 1);
	longa[sizeof(longa) - 1] = '\0';
	refuse("s@t", longa, ok, "recipient not allowed in a drop file");
	refuse(longa, "a@test", ok, "sender not allowed in a drop file");
	refuse("s@t", NULL, ok, "no recipient (1 to 1000 in a drop file)");
}

static void
test_refuse_body(void **state)
{
	refuse("s@t", "a@test", "Subject: x\r\n\r\nbare\rcr\r\n",
	    "bare CR in the message");
	refuse("s@t", "a@test", "Subject: x\r\n\r\nbare\nlf\r\n",
	    "bare LF in the message");
	refuse("s@t", "a@test", "\n", "bare LF in the message");
	refuse("s@t", "a@test", "x\r", "bare CR in the message");
}

static void
test_refuse_too_many(void **state)
{
	struct ctl_mail_rcpts	 r;
	struct ctl_buf		 b;
	char			 err[256];
	size_t			 i;

	ctl_mail_rcpts_init(&r);
	for (i = 0; i < DROP_MAXRCPT + 1; i++)
		assert_int_equal(ctl_mail_rcpt_add(&r, "a@test", 6), 0);
	ctl_buf_init(&b);
	assert_int_equal(ctl_drop_format(&b, "s@t", &r, "", 0, err,
	    sizeof(err)), -1);
	assert_string_equal(err,
	    "too many recipients (1 to 1000 in a drop file)");
	ctl_buf_free(&b);
	ctl_mail_rcpts_free(&r);
}

/* The wire form of a message, unstuffed, is the message with CRLF. */
static void
test_unstuff(void **state)
{
	const char		*msg = "Subject: d\n\nbefore\n.\n..two\n."
				    "x\nlast";
	const char		*want = "Subject: d\r\n\r\nbefore\r\n.\r\n"
				    "..two\r\n.x\r\nlast\r\n";
	struct ctl_mail_rcpts	 r;
	struct ctl_mail_scan	 sc;
	struct ctl_buf		 wire, body;
	char			 err[256];

	ctl_mail_rcpts_init(&r);
	assert_int_equal(ctl_mail_scan(msg, strlen(msg), 0, &r, &sc, err,
	    sizeof(err)), 0);
	ctl_buf_init(&wire);
	ctl_mail_wire(&wire, msg, strlen(msg), &sc, "");
	ctl_buf_init(&body);
	ctl_drop_unstuff(&body, wire.data, wire.len);
	assert_string_equal(ctl_buf_str(&body), want);
	ctl_buf_reset(&body);
	ctl_drop_unstuff(&body, "", 0);
	assert_int_equal(body.len, 0);
	ctl_drop_unstuff(&body, ".", 1);
	assert_int_equal(body.len, 0);
	ctl_buf_free(&wire);
	ctl_buf_free(&body);
	ctl_mail_rcpts_free(&r);
}

static void
test_write(void **state)
{
	char		 dir[] = "/tmp/test_drop.XXXXXX", path[256];
	char		 name[32], err[256], buf[64];
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	int		 fd, nfiles = 0;
	ssize_t		 n;

	assert_non_null(mkdtemp(dir));
	umask(077);
	assert_int_equal(ctl_drop_write(dir, "hello", 5, name, sizeof(name),
	    err, sizeof(err)), 0);
	assert_int_equal(strlen(name), 17);
	assert_int_equal(name[0], 'm');
	assert_int_equal(strspn(name + 1, "0123456789abcdef"), 16);
	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		assert_string_equal(de->d_name, name);
		nfiles++;
	}
	closedir(d);
	assert_int_equal(nfiles, 1);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_uid, getuid());
	assert_true((fd = open(path, O_RDONLY)) != -1);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);

	/* No directory: -1, ENOENT, the reason names it. */
	assert_int_equal(ctl_drop_write(dir, "x", 1, name, sizeof(name), err,
	    sizeof(err)), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(buf, sizeof(buf), "cannot open %s: ", dir);
	assert_memory_equal(err, buf, strlen(buf));
}

int
main(void)
{
	const struct CMUnitTest	 tests[] = {
		cmocka_unit_test(test_exact_bytes),
		cmocka_unit_test(test_roundtrip_simple),
		cmocka_unit_test(test_roundtrip_null_sender),
		cmocka_unit_test(test_roundtrip_many),
		cmocka_unit_test(test_roundtrip_dot_line),
		cmocka_unit_test(test_roundtrip_empty_body),
		cmocka_unit_test(test_roundtrip_8bit),
		cmocka_unit_test(test_refuse_addresses),
		cmocka_unit_test(test_refuse_body),
		cmocka_unit_test(test_refuse_too_many),
		cmocka_unit_test(test_unstuff),
		cmocka_unit_test(test_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
