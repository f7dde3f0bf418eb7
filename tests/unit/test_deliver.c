/*
 * test_deliver.c: unit tests of local delivery (parent_deliver.c): path
 * template expansion, maildir and mbox delivery, checked byte for byte
 * against an independent reference conversion, in a mkdtemp directory.
 * SECURITY: test code; some cases fork and drop to uid 65534 when root.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../smtpd/parent_deliver.h"

#define RP	"alice@example.org"
#define DT	"bob@example.org"
#define HDRS	"Return-Path: <" RP ">\nDelivered-To: " DT "\n"

static char	tdir[PATH_MAX];

static char	*tpath(const char *, ...) __attribute__((format(printf, 1, 2)));

/* A path under the test directory, in one of a few rotating buffers. */
static char *
tpath(const char *fmt, ...)
{
	static char	 bufs[8][PATH_MAX];
	static int	 n;
	char		*b = bufs[n++ % 8];
	size_t		 len;
	va_list		 ap;

	len = strlcpy(b, tdir, PATH_MAX);
	assert_true(len + 1 < PATH_MAX);
	b[len++] = '/';
	va_start(ap, fmt);
	assert_true(vsnprintf(b + len, PATH_MAX - len, fmt, ap) <
	    (int)(PATH_MAX - len));
	va_end(ap);
	return b;
}

static int
setup(void **state)
{
	strlcpy(tdir, "/tmp/postern-deliver.XXXXXX", sizeof(tdir));
	if (mkdtemp(tdir) == NULL)
		return -1;
	parent_deliver_set_lock_timeout(DELIVER_LOCK_TIMEOUT_MS);
	return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
teardown(void **state)
{
	return nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A memory file holding len bytes, at offset len (delivery must pread). */
static int
msg_fd(const void *buf, size_t len)
{
	int	 fd;

	fd = memfd_create("message", MFD_CLOEXEC);
	assert_true(fd != -1);
	if (len > 0)
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
	return fd;
}

/* The whole content of a file. */
static unsigned char *
slurp(const char *path, size_t *len)
{
	struct stat	 st;
	unsigned char	*b;
	int		 fd;

	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	assert_int_equal(fstat(fd, &st), 0);
	b = malloc(st.st_size + 1);
	assert_non_null(b);
	assert_int_equal(read(fd, b, st.st_size + 1), st.st_size);
	close(fd);
	*len = st.st_size;
	return b;
}

static void
write_file(const char *path, const char *s)
{
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
}

static void
assert_file_equal(const char *path, const void *want, size_t wantlen)
{
	unsigned char	*b;
	size_t		 len;

	b = slurp(path, &len);
	assert_int_equal(len, wantlen);
	assert_memory_equal(b, want, wantlen);
	free(b);
}

/* Number of entries of a directory; the name of the last one in name. */
static int
dir_count(const char *path, char *name, size_t namesz)
{
	struct dirent	*de;
	DIR		*d;
	int		 n = 0;

	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		n++;
		if (name != NULL)
			strlcpy(name, de->d_name, namesz);
	}
	closedir(d);
	return n;
}

static int
file_mode(const char *path)
{
	struct stat	 st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode & 07777;
}

/*
 * Reference conversion, written independently of the code under test:
 * drop the CR of every CRLF, then (mboxrd) add '>' to ^>*From  lines.
 */
static unsigned char *
ref_convert(const unsigned char *in, size_t len, int mboxrd, size_t *outlen)
{
	unsigned char	*lf, *out;
	size_t		 i, n = 0, o = 0, pos, e, k;

	lf = malloc(len + 1);
	assert_non_null(lf);
	for (i = 0; i < len; i++) {
		if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
			continue;
		lf[n++] = in[i];
	}
	if (!mboxrd) {
		*outlen = n;
		return lf;
	}
	out = malloc(2 * n + 1);
	assert_non_null(out);
	for (pos = 0; pos < n; pos = e + 1) {
		for (e = pos; e < n && lf[e] != '\n'; e++)
			;
		for (k = pos; k < e && lf[k] == '>'; k++)
			;
		if (e - k >= 5 && memcmp(lf + k, "From ", 5) == 0)
			out[o++] = '>';
		memcpy(out + o, lf + pos, (e < n ? e + 1 : n) - pos);
		o += (e < n ? e + 1 : n) - pos;
	}
	free(lf);
	*outlen = o;
	return out;
}

/* ------------------------------------------------------------ expand */

static void
expand_ok(const char *tmpl, const char *home, const char *user,
    const char *rcpt, const char *want)
{
	char	 out[PATH_MAX], err[256] = "";

	if (parent_deliver_expand(tmpl, home, user, rcpt, out, sizeof(out),
	    err, sizeof(err)) != 0)
		fail_msg("%s: %s", tmpl, err);
	assert_string_equal(out, want);
}

static void
expand_bad(const char *tmpl, const char *home, const char *user,
    const char *rcpt, const char *wanterr)
{
	char	 out[PATH_MAX], err[256] = "";

	memset(out, 'X', sizeof(out));
	assert_int_equal(parent_deliver_expand(tmpl, home, user, rcpt, out,
	    sizeof(out), err, sizeof(err)), -1);
	assert_string_equal(err, wanterr);
	assert_string_equal(out, "");
}

static void
test_expand_home(void **state)
{
	expand_ok("~/Maildir", "/home/alice", "alice", DT,
	    "/home/alice/Maildir");
	expand_ok("~", "/home/alice", "alice", DT, "/home/alice");
	expand_ok("~/", "/home/alice", "alice", DT, "/home/alice/");
	expand_ok("~/Maildir", "/home/alice//", "alice", DT,
	    "/home/alice/Maildir");
	expand_ok("~/Maildir", "/", "alice", DT, "/Maildir");
	expand_ok("~", "/", "alice", DT, "/");
	expand_ok("/var/~/x", NULL, "alice", DT, "/var/~/x");
	expand_ok("~/Mail/%{user}", "/home/alice", "alice", DT,
	    "/home/alice/Mail/alice");
	expand_bad("~bob/Maildir", "/home/alice", "alice", DT,
	    "~user is not supported in template");
	expand_bad("~/Maildir", NULL, "alice", DT,
	    "home directory is not an absolute path");
	expand_bad("~/Maildir", "home/alice", "alice", DT,
	    "home directory is not an absolute path");
	expand_bad("~/Maildir", "/home/al\nice", "alice", DT,
	    "home directory contains a control character");
}

static void
test_expand_variables(void **state)
{
	expand_ok("/var/mail/%{user}", NULL, "alice", DT, "/var/mail/alice");
	expand_ok("/srv/%{rcpt.domain}/%{rcpt.user}/%{rcpt}", NULL, "x",
	    "Bob.Smith@Example.org",
	    "/srv/Example.org/Bob.Smith/Bob.Smith@Example.org");
	/* The split is at the last '@': a quoted local part may hold one. */
	expand_ok("/srv/%{rcpt.domain}/%{rcpt.user}", NULL, "x",
	    "\"a@b\"@example.org", "/srv/example.org/\"a@b\"");
	expand_ok("/x/100%%/%{user}%%", NULL, "alice", DT,
	    "/x/100%/alice%");
	expand_ok("/x/%{user}%{user}", NULL, "a", DT, "/x/aa");
	expand_ok("/var/mail/%{user}", NULL, "j\xc3\xb6rg", DT,
	    "/var/mail/j\xc3\xb6rg");
	expand_ok("/var/mail/%{user}", NULL, "a..b.", DT, "/var/mail/a..b.");
	/* A value that is not referenced is not checked. */
	expand_ok("/var/mail/%{rcpt.user}", NULL, "../x", "bob@example.org",
	    "/var/mail/bob");
	expand_ok("/var/mail/%{user}", NULL, "bob", NULL, "/var/mail/bob");
}

static void
test_expand_refusals(void **state)
{
	const char	*t = "/var/mail/%{user}";

	expand_bad(t, NULL, "../etc", DT,
	    "%{user} value refused: starts with '.'");
	expand_bad(t, NULL, "a/b", DT, "%{user} value refused: contains '/'");
	expand_bad(t, NULL, "a/../../etc", DT,
	    "%{user} value refused: contains '/'");
	expand_bad(t, NULL, "/", DT, "%{user} value refused: contains '/'");
	expand_bad(t, NULL, "..", DT, "%{user} value refused: starts with '.'");
	expand_bad(t, NULL, ".", DT, "%{user} value refused: starts with '.'");
	expand_bad(t, NULL, ".hidden", DT,
	    "%{user} value refused: starts with '.'");
	expand_bad(t, NULL, "x\ny", DT,
	    "%{user} value refused: contains a control character");
	expand_bad(t, NULL, "x\r", DT,
	    "%{user} value refused: contains a control character");
	expand_bad(t, NULL, "x\ty", DT,
	    "%{user} value refused: contains a control character");
	expand_bad(t, NULL, "x\x7f", DT,
	    "%{user} value refused: contains a control character");
	expand_bad(t, NULL, "", DT, "%{user} value refused: is empty");
	expand_bad(t, NULL, NULL, DT, "%{user} value refused: is not set");
	expand_bad("/m/%{rcpt.domain}", NULL, "a", "bob",
	    "%{rcpt.domain} value refused: is empty");
	expand_bad("/m/%{rcpt.domain}", NULL, "a", "bob@",
	    "%{rcpt.domain} value refused: is empty");
	expand_bad("/m/%{rcpt.domain}", NULL, "a", "bob@..",
	    "%{rcpt.domain} value refused: starts with '.'");
	expand_bad("/m/%{rcpt.user}", NULL, "a", "@example.org",
	    "%{rcpt.user} value refused: is empty");
	expand_bad("/m/%{rcpt.user}", NULL, "a", "../x@example.org",
	    "%{rcpt.user} value refused: starts with '.'");
	expand_bad("/m/%{rcpt}", NULL, "a", "a/b@example.org",
	    "%{rcpt} value refused: contains '/'");
	expand_bad("/m/%{rcpt}", NULL, "a", NULL,
	    "%{rcpt} value refused: is not set");
	expand_bad("/m/%{rcpt.domain}", NULL, "a", NULL,
	    "%{rcpt.domain} value refused: is not set");
}

static void
test_expand_syntax(void **state)
{
	expand_bad("/m/%{foo}", NULL, "a", DT,
	    "unknown variable %{foo} in template");
	expand_bad("/m/%{user:lowercase}", NULL, "a", DT,
	    "unknown variable %{user:lowercase} in template");
	expand_bad("/m/%{}", NULL, "a", DT, "unknown variable %{} in template");
	expand_bad("/m/%{USER}", NULL, "a", DT,
	    "unknown variable %{USER} in template");
	expand_bad("/m/%", NULL, "a", DT, "lone '%' in template");
	expand_bad("/m/%d", NULL, "a", DT, "lone '%' in template");
	expand_bad("/m/%{user", NULL, "a", DT, "unterminated %{ in template");
	expand_bad("Maildir", NULL, "a", DT, "expanded path is not absolute");
	expand_bad("%{user}/Maildir", NULL, "a", DT,
	    "expanded path is not absolute");
	expand_bad("", NULL, "a", DT, "expanded path is not absolute");
	expand_bad("/m/a\nb", NULL, "a", DT,
	    "template contains a control character");
	expand_bad(NULL, NULL, "a", DT, "no template");
}

static void
test_expand_length(void **state)
{
	char	 out[32], err[128], user[64];

	/* "/m/" + 28 bytes + NUL is exactly 32. */
	memset(user, 'u', 28);
	user[28] = '\0';
	assert_int_equal(parent_deliver_expand("/m/%{user}", NULL, user, DT,
	    out, sizeof(out), err, sizeof(err)), 0);
	assert_int_equal(strlen(out), 31);
	user[28] = 'u';
	user[29] = '\0';
	assert_int_equal(parent_deliver_expand("/m/%{user}", NULL, user, DT,
	    out, sizeof(out), err, sizeof(err)), -1);
	assert_string_equal(err, "expanded path is too long");
	assert_string_equal(out, "");
	/* Literal text and %% count the same way. */
	assert_int_equal(parent_deliver_expand(
	    "/0123456789012345678901234567%%%%", NULL, NULL, NULL, out,
	    sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "/0123456789012345678901234567%%");
	assert_int_equal(parent_deliver_expand(
	    "/0123456789012345678901234567%%%%%%", NULL, NULL, NULL, out,
	    sizeof(out), err, sizeof(err)), -1);
	assert_string_equal(err, "expanded path is too long");
	assert_int_equal(parent_deliver_expand("~/x", "/home/"
	    "0123456789012345678901234567890", NULL, NULL, out, sizeof(out),
	    err, sizeof(err)), -1);
	assert_string_equal(err, "expanded path is too long");
	assert_string_equal(out, "");
	/* An err buffer too small is cut, never overrun. */
	assert_int_equal(parent_deliver_expand("x", NULL, NULL, NULL, out,
	    sizeof(out), err, 6), -1);
	assert_string_equal(err, "expan");
}

/* ------------------------------------------------------------ maildir */

static void
maildir_deliver_ok(const char *dir, const void *msg, size_t len)
{
	char	 err[256] = "";
	int	 fd, rc;

	fd = msg_fd(msg, len);
	rc = parent_deliver_maildir(dir, fd, RP, DT, NULL, 0, 0, err, sizeof(err));
	close(fd);
	if (rc != EX_OK)
		fail_msg("maildir delivery: %d %s", rc, err);
}

/* Check the maildir holds exactly one message in new/ with these bytes. */
static void
maildir_check_one(const char *dir, const void *want, size_t wantlen)
{
	char		 name[NAME_MAX + 1], path[PATH_MAX + NAME_MAX + 8];
	char		 size[32];
	regex_t		 re;

	snprintf(path, sizeof(path), "%s/tmp", dir);
	assert_int_equal(dir_count(path, NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/cur", dir);
	assert_int_equal(dir_count(path, NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/new", dir);
	assert_int_equal(dir_count(path, name, sizeof(name)), 1);
	assert_int_equal(regcomp(&re,
	    "^[0-9]+\\.M[0-9]+P[0-9]+Q[0-9]+\\.[^/]+,S=[0-9]+$",
	    REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&re, name, 0, NULL, 0), 0);
	regfree(&re);
	snprintf(size, sizeof(size), ",S=%zu", wantlen);
	assert_string_equal(strrchr(name, ','), size);
	snprintf(path, sizeof(path), "%s/new/%s", dir, name);
	assert_int_equal(file_mode(path), 0600);
	assert_file_equal(path, want, wantlen);
}

static void
test_maildir_basic(void **state)
{
	static const char msg[] =
	    "Subject: hi\r\n\r\nline1\r\nbare\rcr\nbare-lf\r\n"
	    "\xe9\xff\x00 8bit\r\n\r\r\n\n\r";
	static const char want[] = HDRS
	    "Subject: hi\n\nline1\nbare\rcr\nbare-lf\n"
	    "\xe9\xff\x00 8bit\n\r\n\n\r";
	char	*dir = tpath("home/bob/Maildir");

	maildir_deliver_ok(dir, msg, sizeof(msg) - 1);
	maildir_check_one(dir, want, sizeof(want) - 1);
	assert_int_equal(file_mode(dir), 0700);
	assert_int_equal(file_mode(tpath("home/bob/Maildir/tmp")), 0700);
	assert_int_equal(file_mode(tpath("home/bob/Maildir/new")), 0700);
	assert_int_equal(file_mode(tpath("home/bob/Maildir/cur")), 0700);
}

static void
test_maildir_empty(void **state)
{
	char	*dir = tpath("Maildir");

	assert_int_equal(mkdir(dir, 0755), 0);
	maildir_deliver_ok(dir, "", 0);
	maildir_check_one(dir, HDRS, strlen(HDRS));
	/* An existing maildir keeps its mode. */
	assert_int_equal(file_mode(dir), 0755);
}

/* Compare a delivery of msg with the reference conversion. */
static void
maildir_check_ref(const unsigned char *msg, size_t len)
{
	unsigned char	*conv, *want;
	size_t		 convlen, hl = strlen(HDRS);
	char		*dir = tpath("Maildir");

	conv = ref_convert(msg, len, 0, &convlen);
	want = malloc(hl + convlen);
	assert_non_null(want);
	memcpy(want, HDRS, hl);
	memcpy(want + hl, conv, convlen);
	maildir_deliver_ok(dir, msg, len);
	maildir_check_one(dir, want, hl + convlen);
	free(conv);
	free(want);
}

static void
test_maildir_block_boundary(void **state)
{
	size_t		 len = 3 * DELIVER_BLOCK + 100, i;
	unsigned char	*msg;

	msg = malloc(len);
	assert_non_null(msg);
	for (i = 0; i < len; i++)
		msg[i] = i % 61 == 59 ? '\r' : i % 61 == 60 ? '\n' :
		    'a' + i % 26;
	/* CRLF split across the first block boundary. */
	msg[DELIVER_BLOCK - 1] = '\r';
	msg[DELIVER_BLOCK] = '\n';
	/* A bare CR at the end of the second block. */
	msg[2 * DELIVER_BLOCK - 1] = '\r';
	msg[2 * DELIVER_BLOCK] = 'x';
	/* CR CR LF across the third. */
	msg[3 * DELIVER_BLOCK - 1] = '\r';
	msg[3 * DELIVER_BLOCK] = '\r';
	msg[3 * DELIVER_BLOCK + 1] = '\n';
	/* A CR as the very last byte is kept. */
	msg[len - 1] = '\r';
	maildir_check_ref(msg, len);
	free(msg);
}

static void
test_maildir_large(void **state)
{
	size_t		 len = 10 * 1024 * 1024, i;
	unsigned char	*msg;

	msg = malloc(len);
	assert_non_null(msg);
	for (i = 0; i < len; i++)
		msg[i] = i % 79 == 77 ? '\r' : i % 79 == 78 ? '\n' :
		    (unsigned char)(0x20 + (i * 7) % 0xe0);
	maildir_check_ref(msg, len);
	free(msg);
}

static void
test_maildir_unique(void **state)
{
	char	 a[256], b[256], want[256], name1[NAME_MAX + 1];
	char	*dir = tpath("Maildir");
	unsigned int q;

	assert_int_equal(parent_deliver_maildir_unique(a, sizeof(a),
	    1700000000, 123456, "mx.example.org"), 0);
	assert_int_equal(parent_deliver_maildir_unique(b, sizeof(b),
	    1700000000, 123456, "mx.example.org"), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(sscanf(strchr(a, 'Q'), "Q%u", &q), 1);
	snprintf(want, sizeof(want), "1700000000.M123456P%ldQ%u.mx.example.org",
	    (long)getpid(), q);
	assert_string_equal(a, want);
	snprintf(want, sizeof(want), "1700000000.M123456P%ldQ%u.mx.example.org",
	    (long)getpid(), q + 1);
	assert_string_equal(b, want);
	/* '/' and ':' in the host name are escaped as the spec says. */
	assert_int_equal(parent_deliver_maildir_unique(a, sizeof(a), 1, 2,
	    "a/b:c"), 0);
	snprintf(want, sizeof(want), "1.M2P%ldQ%u.a\\057b\\072c",
	    (long)getpid(), q + 2);
	assert_string_equal(a, want);
	assert_int_equal(parent_deliver_maildir_unique(a, 10, 1, 2, "host"),
	    -1);

	/* Two deliveries back to back: two files, both intact. */
	maildir_deliver_ok(dir, "A\r\n", 3);
	assert_int_equal(dir_count(tpath("Maildir/new"), name1,
	    sizeof(name1)), 1);
	maildir_deliver_ok(dir, "A\r\n", 3);
	assert_int_equal(dir_count(tpath("Maildir/new"), NULL, 0), 2);
	assert_int_equal(dir_count(tpath("Maildir/tmp"), NULL, 0), 0);
	assert_file_equal(tpath("Maildir/new/%s", name1), HDRS "A\n",
	    strlen(HDRS) + 2);
}

static void
test_maildir_pipe(void **state)
{
	char	 err[256] = "";
	int	 p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x\r\ny\r\n", 6), 6);
	close(p[1]);
	assert_int_equal(parent_deliver_maildir(tpath("Maildir"), p[0], RP,
	    DT, NULL, 0, 0, err, sizeof(err)), EX_OK);
	close(p[0]);
	maildir_check_one(tpath("Maildir"), HDRS "x\ny\n", strlen(HDRS) + 4);
}

static void
test_maildir_read_error(void **state)
{
	char	 err[256] = "";
	int	 fd;

	assert_int_equal(parent_deliver_maildir(tpath("Maildir"), -1, RP, DT, NULL, 0, 0,
	    err, sizeof(err)), EX_TEMPFAIL);
	assert_string_equal(err, "read message: Bad file descriptor");
	fd = open(tdir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(parent_deliver_maildir(tpath("Maildir"), fd, RP, DT, NULL, 0, 0,
	    err, sizeof(err)), EX_TEMPFAIL);
	assert_string_equal(err, "read message: Is a directory");
	close(fd);
	assert_int_equal(dir_count(tpath("Maildir/tmp"), NULL, 0), 0);
	assert_int_equal(dir_count(tpath("Maildir/new"), NULL, 0), 0);
}

/*
 * Run one delivery in a child whose files may not grow past limit bytes,
 * as a full disk would; returns its status and copies its err.
 */
static int
deliver_limited(int mbox, const char *path, const void *msg, size_t len,
    rlim_t limit, char *err, size_t errsz)
{
	struct rlimit	 rl;
	pid_t		 pid;
	ssize_t		 n;
	int		 p[2], status, rc, fd;

	fd = msg_fd(msg, len);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		close(p[0]);
		signal(SIGXFSZ, SIG_IGN);
		rl.rlim_cur = rl.rlim_max = limit;
		if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
			_exit(99);
		if (mbox)
			rc = parent_deliver_mbox(path, fd, RP, DT, 0, err,
			    errsz);
		else
			rc = parent_deliver_maildir(path, fd, RP, DT, NULL, 0, 0, err,
			    errsz);
		if (write(p[1], err, strlen(err) + 1) == -1)
			_exit(98);
		_exit(rc);
	}
	close(p[1]);
	close(fd);
	n = read(p[0], err, errsz - 1);
	assert_true(n > 0);
	err[n] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void
test_maildir_write_error(void **state)
{
	char		 err[256] = "";
	unsigned char	*msg;
	size_t		 len = 200 * 1024;

	msg = malloc(len);
	assert_non_null(msg);
	memset(msg, 'm', len);
	assert_int_equal(deliver_limited(0, tpath("Maildir"), msg, len, 100000,
	    err, sizeof(err)), EX_TEMPFAIL);
	assert_string_equal(err, "write: File too large");
	assert_int_equal(dir_count(tpath("Maildir/tmp"), NULL, 0), 0);
	assert_int_equal(dir_count(tpath("Maildir/new"), NULL, 0), 0);
	free(msg);
}

static void
test_maildir_refusals(void **state)
{
	char	 err[256] = "";
	int	 fd;

	fd = msg_fd("x\r\n", 3);
	/* A planted tmp symlink is not followed. */
	assert_int_equal(mkdir(tpath("M1"), 0700), 0);
	assert_int_equal(mkdir(tpath("elsewhere"), 0700), 0);
	assert_int_equal(symlink(tpath("elsewhere"), tpath("M1/tmp")), 0);
	assert_int_equal(parent_deliver_maildir(tpath("M1"), fd, RP, DT, NULL, 0, 0, err,
	    sizeof(err)), EX_CANTCREAT);
	assert_string_equal(err, "maildir tmp is a symbolic link");
	assert_int_equal(dir_count(tpath("elsewhere"), NULL, 0), 0);
	/* new/ as a file. */
	assert_int_equal(mkdir(tpath("M2"), 0700), 0);
	write_file(tpath("M2/new"), "");
	assert_int_equal(parent_deliver_maildir(tpath("M2"), fd, RP, DT, NULL, 0, 0, err,
	    sizeof(err)), EX_CANTCREAT);
	assert_string_equal(err, "maildir new is not a directory");
	assert_int_equal(dir_count(tpath("M2/tmp"), NULL, 0), 0);
	/* The maildir path itself is a file. */
	write_file(tpath("M3"), "");
	assert_int_equal(parent_deliver_maildir(tpath("M3"), fd, RP, DT, NULL, 0, 0, err,
	    sizeof(err)), EX_CANTCREAT);
	assert_string_equal(err, "maildir open: Not a directory");
	/* Header values that would inject a header are refused first. */
	assert_int_equal(parent_deliver_maildir(tpath("M4"), fd,
	    "a@b>\r\nX-Injected: 1", DT, NULL, 0, 0, err, sizeof(err)), EX_DATAERR);
	assert_string_equal(err, "Return-Path contains a control character");
	assert_int_equal(parent_deliver_maildir(tpath("M4"), fd, RP,
	    "b@c\nX: y", NULL, 0, 0, err, sizeof(err)), EX_DATAERR);
	assert_string_equal(err, "Delivered-To contains a control character");
	assert_int_equal(access(tpath("M4"), F_OK), -1);
	close(fd);
}

/* ------------------------------------------------------------ mbox */

static int
mbox_deliver(const char *path, const void *msg, size_t len, const char *rp,
    time_t arrival, char *err, size_t errsz)
{
	int	 fd, rc;

	fd = msg_fd(msg, len);
	rc = parent_deliver_mbox(path, fd, rp, DT, arrival, err, errsz);
	close(fd);
	return rc;
}

static void
test_mbox_two_deliveries(void **state)
{
	static const char msg1[] =
	    "Subject: one\r\n\r\nFrom here\r\n>From there\r\n>>From x\r\n"
	    "Fromage\r\n From y\r\n>From\r\n>\r\nFrom\r\nFrom \r\nFrom";
	static const char msg2[] = "Subject: two\r\n\r\nbody\r\n";
	static const char want[] =
	    "From " RP " Thu Jan  1 00:00:00 1970\n" HDRS
	    "Subject: one\n\n>From here\n>>From there\n>>>From x\n"
	    "Fromage\n From y\n>From\n>\nFrom\n>From \nFrom\n\n"
	    "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\n"
	    "Return-Path: <>\nDelivered-To: " DT "\n"
	    "Subject: two\n\nbody\n\n";
	char	 err[256] = "";
	char	*mbox = tpath("mbox");

	assert_int_equal(mbox_deliver(mbox, msg1, sizeof(msg1) - 1, RP, 0,
	    err, sizeof(err)), EX_OK);
	assert_int_equal(mbox_deliver(mbox, msg2, sizeof(msg2) - 1, "",
	    1700000000, err, sizeof(err)), EX_OK);
	assert_file_equal(mbox, want, sizeof(want) - 1);
	assert_int_equal(file_mode(mbox), 0600);
	assert_int_equal(access(tpath("mbox.lock"), F_OK), -1);
}

static void
test_mbox_empty_message(void **state)
{
	static const char want[] =
	    "From " RP " Thu Jan  1 00:00:01 1970\n" HDRS "\n";
	char	 err[256] = "";

	assert_int_equal(mbox_deliver(tpath("mbox"), "", 0, RP, 1, err,
	    sizeof(err)), EX_OK);
	assert_file_equal(tpath("mbox"), want, sizeof(want) - 1);
}

static void
test_mbox_block_boundary(void **state)
{
	size_t		 len = 3 * DELIVER_BLOCK + 50, i, convlen, hl;
	unsigned char	*msg, *conv, *want;
	char		 err[256] = "";
	const char	*from = "From " RP " Thu Jan  1 00:00:00 1970\n";

	msg = malloc(len);
	assert_non_null(msg);
	for (i = 0; i < len; i++)
		msg[i] = i % 40 == 38 ? '\r' : i % 40 == 39 ? '\n' : 'z';
	/* "From " split after "Fro" at the first boundary. */
	memcpy(msg + DELIVER_BLOCK - 5, "\r\nFrom x", 8);
	/* CRLF split, then "From " at the start of the third block. */
	memcpy(msg + 2 * DELIVER_BLOCK - 1, "\r\nFrom y", 8);
	/* A ">>" prefix split from its "From ". */
	memcpy(msg + 3 * DELIVER_BLOCK - 4, "\r\n>>From z", 10);
	memcpy(msg + len - 2, "\r\n", 2);
	conv = ref_convert(msg, len, 1, &convlen);
	hl = strlen(from) + strlen(HDRS);
	want = malloc(hl + convlen + 2);
	assert_non_null(want);
	memcpy(want, from, strlen(from));
	memcpy(want + strlen(from), HDRS, strlen(HDRS));
	memcpy(want + hl, conv, convlen);
	assert_int_equal(conv[convlen - 1], '\n');
	want[hl + convlen] = '\n';
	assert_int_equal(mbox_deliver(tpath("mbox"), msg, len, RP, 0, err,
	    sizeof(err)), EX_OK);
	assert_file_equal(tpath("mbox"), want, hl + convlen + 1);
	/* The reference itself saw the three quoted lines. */
	assert_non_null(memmem(conv, convlen, "\n>From x", 8));
	assert_non_null(memmem(conv, convlen, "\n>From y", 8));
	assert_non_null(memmem(conv, convlen, "\n>>>From z", 10));
	free(msg);
	free(conv);
	free(want);
}

static void
test_mbox_refusals(void **state)
{
	char	 err[256] = "";

	/* A symlink planted in place of the mbox is not followed. */
	write_file(tpath("target"), "precious\n");
	assert_int_equal(symlink(tpath("target"), tpath("mbox")), 0);
	assert_int_equal(mbox_deliver(tpath("mbox"), "x\r\n", 3, RP, 0, err,
	    sizeof(err)), EX_CANTCREAT);
	assert_string_equal(err, "mbox is a symbolic link");
	assert_file_equal(tpath("target"), "precious\n", 9);
	assert_int_equal(access(tpath("mbox.lock"), F_OK), -1);
	/* Nor a hard link. */
	assert_int_equal(link(tpath("target"), tpath("hard")), 0);
	assert_int_equal(mbox_deliver(tpath("hard"), "x\r\n", 3, RP, 0, err,
	    sizeof(err)), EX_CANTCREAT);
	assert_string_equal(err, "mbox has more than one link");
	assert_file_equal(tpath("target"), "precious\n", 9);
	/* A FIFO without a reader must not hang us. */
	assert_int_equal(mkfifo(tpath("fifo"), 0600), 0);
	assert_int_equal(mbox_deliver(tpath("fifo"), "x\r\n", 3, RP, 0, err,
	    sizeof(err)), EX_CANTCREAT);
	assert_string_equal(err, "mbox is not a regular file");
	assert_int_equal(mkdir(tpath("dir"), 0700), 0);
	assert_int_equal(mbox_deliver(tpath("dir"), "x\r\n", 3, RP, 0, err,
	    sizeof(err)), EX_CANTCREAT);
	assert_string_equal(err, "mbox open: Is a directory");
	assert_int_equal(mbox_deliver(tpath("nodir/mbox"), "x\r\n", 3, RP, 0,
	    err, sizeof(err)), EX_CANTCREAT);
	assert_string_equal(err, "mbox open: No such file or directory");
	assert_int_equal(mbox_deliver(tpath("mbox2"), "x\r\n", 3, "a\nb", 0,
	    err, sizeof(err)), EX_DATAERR);
	assert_string_equal(err, "Return-Path contains a control character");
	assert_int_equal(access(tpath("mbox2"), F_OK), -1);
	if (geteuid() == 0) {
		/* Someone else's file in a shared spool is not ours. */
		write_file(tpath("other"), "");
		assert_int_equal(chown(tpath("other"), 65534, 65534), 0);
		assert_int_equal(mbox_deliver(tpath("other"), "x\r\n", 3, RP,
		    0, err, sizeof(err)), EX_CANTCREAT);
		assert_string_equal(err, "mbox is owned by another user");
		assert_file_equal(tpath("other"), "", 0);
	}
}

static void
test_mbox_truncate_on_failure(void **state)
{
	static const char first[] =
	    "From " RP " Thu Jan  1 00:00:00 1970\n" HDRS "one\n\n";
	unsigned char	*msg;
	size_t		 len = 300 * 1024;
	char		 err[256] = "";
	int		 fd;

	assert_int_equal(mbox_deliver(tpath("mbox"), "one\r\n", 5, RP, 0, err,
	    sizeof(err)), EX_OK);
	assert_file_equal(tpath("mbox"), first, sizeof(first) - 1);

	/* The disk fills in the middle of the message. */
	msg = malloc(len);
	assert_non_null(msg);
	memset(msg, 'm', len);
	assert_int_equal(deliver_limited(1, tpath("mbox"), msg, len, 150000,
	    err, sizeof(err)), EX_TEMPFAIL);
	assert_string_equal(err, "write: File too large");
	assert_file_equal(tpath("mbox"), first, sizeof(first) - 1);
	assert_int_equal(access(tpath("mbox.lock"), F_OK), -1);
	free(msg);

	/* The message cannot be read. */
	fd = open(tdir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(parent_deliver_mbox(tpath("mbox"), fd, RP, DT, 0,
	    err, sizeof(err)), EX_TEMPFAIL);
	assert_string_equal(err, "read message: Is a directory");
	close(fd);
	assert_int_equal(parent_deliver_mbox(tpath("mbox"), -1, RP, DT, 0,
	    err, sizeof(err)), EX_TEMPFAIL);
	assert_string_equal(err, "read message: Bad file descriptor");
	assert_file_equal(tpath("mbox"), first, sizeof(first) - 1);
	assert_int_equal(access(tpath("mbox.lock"), F_OK), -1);
}

static void
test_mbox_dotlock(void **state)
{
	static const char want[] =
	    "From " RP " Thu Jan  1 00:00:00 1970\n" HDRS "x\n\n";
	struct timespec	 ts[2];
	char		 err[256] = "";

	parent_deliver_set_lock_timeout(300);
	write_file(tpath("mbox.lock"), "");
	assert_int_equal(mbox_deliver(tpath("mbox"), "x\r\n", 3, RP, 0, err,
	    sizeof(err)), EX_TEMPFAIL);
	assert_string_equal(err, "mbox dotlock busy");
	/* Somebody else's lock is left alone. */
	assert_int_equal(access(tpath("mbox.lock"), F_OK), 0);
	assert_file_equal(tpath("mbox"), "", 0);

	/* Ten minutes old: stale, removed, and the delivery goes through. */
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= 600;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, tpath("mbox.lock"), ts, 0), 0);
	assert_int_equal(mbox_deliver(tpath("mbox"), "x\r\n", 3, RP, 0, err,
	    sizeof(err)), EX_OK);
	assert_file_equal(tpath("mbox"), want, sizeof(want) - 1);
	assert_int_equal(access(tpath("mbox.lock"), F_OK), -1);
}

static void
test_mbox_fcntl_busy(void **state)
{
	static const char want[] =
	    "From " RP " Thu Jan  1 00:00:00 1970\n" HDRS "x\n\n";
	struct flock	 fl;
	char		 err[256] = "", c;
	pid_t		 pid;
	int		 ready[2], release[2], status, fd;

	write_file(tpath("mbox"), "");
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		/* fcntl locks are per process: hold one from a child. */
		close(ready[0]);
		close(release[1]);
		fd = open(tpath("mbox"), O_RDWR);
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fd == -1 || fcntl(fd, F_SETLK, &fl) == -1)
			_exit(1);
		if (write(ready[1], "r", 1) != 1 ||
		    read(release[0], &c, 1) == -1)
			_exit(1);
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	parent_deliver_set_lock_timeout(300);
	assert_int_equal(mbox_deliver(tpath("mbox"), "x\r\n", 3, RP, 0, err,
	    sizeof(err)), EX_TEMPFAIL);
	assert_string_equal(err, "mbox lock busy");
	assert_file_equal(tpath("mbox"), "", 0);
	assert_int_equal(access(tpath("mbox.lock"), F_OK), -1);
	close(release[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ready[0]);
	assert_int_equal(mbox_deliver(tpath("mbox"), "x\r\n", 3, RP, 0, err,
	    sizeof(err)), EX_OK);
	assert_file_equal(tpath("mbox"), want, sizeof(want) - 1);
}

/* A spool like /var/mail that we may not write: no dotlock, no error. */
static void
test_mbox_unwritable_dir(void **state)
{
	static const char want[] =
	    "From " RP " Thu Jan  1 00:00:00 1970\n" HDRS "x\n\n";
	char		 err[256] = "";
	pid_t		 pid;
	int		 status, rc;

	assert_int_equal(mkdir(tpath("spool"), 0700), 0);
	write_file(tpath("spool/bob"), "");
	if (geteuid() == 0) {
		assert_int_equal(chmod(tdir, 0711), 0);
		assert_int_equal(chown(tpath("spool/bob"), 65534, 65534), 0);
	}
	assert_int_equal(chmod(tpath("spool"), 0555), 0);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		if (geteuid() == 0 && (setgroups(0, NULL) == -1 ||
		    setresgid(65534, 65534, 65534) == -1 ||
		    setresuid(65534, 65534, 65534) == -1))
			_exit(100);
		rc = mbox_deliver(tpath("spool/bob"), "x\r\n", 3, RP, 0, err,
		    sizeof(err));
		if (rc != EX_OK)
			fprintf(stderr, "delivery: %s\n", err);
		_exit(rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), EX_OK);
	assert_file_equal(tpath("spool/bob"), want, sizeof(want) - 1);
	assert_int_equal(access(tpath("spool/bob.lock"), F_OK), -1);
	assert_int_equal(chmod(tpath("spool"), 0700), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand_home),
		cmocka_unit_test(test_expand_variables),
		cmocka_unit_test(test_expand_refusals),
		cmocka_unit_test(test_expand_syntax),
		cmocka_unit_test(test_expand_length),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_maildir_basic),
		T(test_maildir_empty),
		T(test_maildir_block_boundary),
		T(test_maildir_large),
		T(test_maildir_unique),
		T(test_maildir_pipe),
		T(test_maildir_read_error),
		T(test_maildir_write_error),
		T(test_maildir_refusals),
		T(test_mbox_two_deliveries),
		T(test_mbox_empty_message),
		T(test_mbox_block_boundary),
		T(test_mbox_refusals),
		T(test_mbox_truncate_on_failure),
		T(test_mbox_dotlock),
		T(test_mbox_fcntl_busy),
		T(test_mbox_unwritable_dir),
#undef T
	};

	setenv("TZ", "UTC", 1);
	tzset();
	setenv("LC_ALL", "C", 1);
	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
