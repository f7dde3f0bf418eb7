/*
 * test_queue_db.c: unit tests of the SQLite message store (queue_db.c),
 * each in a fresh mkdtemp directory: durability across reopen and kill -9,
 * group commit, body chunking, scheduling states, refusals, disk full.
 * SECURITY: test code; runs unprivileged in temporary directories.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "log.h"
#include "../../queue/queue_db.h"

#define CHUNK	QUEUE_DB_CHUNK_SIZE

struct fixture {
	char		 dir[PATH_MAX];
	struct queue_db	*db;
};

/* One message under construction, with storage for its strings. */
struct testmsg {
	struct queue_message_new	 msg;
	struct queue_envelope_new	 evps[8];
	char				 sender[64];
	char				 rcpt[8][64];
};

static int
setup(void **state)
{
	struct fixture	*f;
	const char	*tmp;
	char		 err[512];

	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	assert_true(snprintf(f->dir, sizeof(f->dir), "%s/test_queue_db.XXXXXX",
	    tmp) < (int)sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	if (queue_db_open(&f->db, f->dir, err, sizeof(err)) == -1)
		fail_msg("queue_db_open: %s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX * 2];

	queue_db_close(f->db);
	queue_db_set_id_generator(NULL);
	if ((d = opendir(f->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", f->dir,
			    de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	if (rmdir(f->dir) == -1)
		fail_msg("rmdir %s: %s", f->dir, strerror(errno));
	free(f);
	return 0;
}

/* Close and reopen the fixture's database (a clean restart). */
static void
reopen(struct fixture *f)
{
	char	 err[512];

	queue_db_close(f->db);
	f->db = NULL;
	if (queue_db_open(&f->db, f->dir, err, sizeof(err)) == -1)
		fail_msg("queue_db_open: %s", err);
}

/* Deterministic body bytes for message number seed. */
static uint8_t *
make_body(size_t len, unsigned seed)
{
	uint8_t	*b;
	size_t	 i;

	b = malloc(len > 0 ? len : 1);
	assert_non_null(b);
	for (i = 0; i < len; i++)
		b[i] = (uint8_t)((i * 7 + seed * 13 + i / 4099) % 251);
	return b;
}

/* Fill t with a message of nevps envelopes, ctime, and the given body. */
static void
testmsg_init(struct testmsg *t, unsigned n, size_t nevps, int64_t ctime,
    const uint8_t *body, size_t bodylen)
{
	size_t	 i;

	memset(t, 0, sizeof(*t));
	assert_true(nevps <= 8);
	snprintf(t->sender, sizeof(t->sender), "s%u@example.org", n);
	for (i = 0; i < nevps; i++) {
		snprintf(t->rcpt[i], sizeof(t->rcpt[i]), "r%u.%zu@example.net",
		    n, i);
		t->evps[i].rcpt = t->rcpt[i];
		t->evps[i].orig_rcpt = t->rcpt[i];
		t->evps[i].action = "out";
		t->evps[i].mailbox = "";
		t->evps[i].orcpt = "";
	}
	t->msg.sender = t->sender;
	t->msg.envid = "";
	t->msg.helo = "client.example.com";
	t->msg.client = "client.example.com [192.0.2.1]";
	t->msg.ctime = ctime;
	t->msg.body = body;
	t->msg.bodylen = bodylen;
	t->msg.evps = t->evps;
	t->msg.nevps = nevps;
}

/* Store one message in its own transaction; returns its msgid. */
static uint64_t
add_one(struct queue_db *db, struct testmsg *t)
{
	assert_int_equal(queue_db_begin(db), 0);
	assert_int_equal(queue_db_add_message(db, &t->msg), 0);
	assert_int_equal(queue_db_commit(db), 0);
	return t->msg.msgid;
}

/* Open our own connection to the fixture's database, as an admin would. */
static sqlite3 *
raw_open(struct fixture *f)
{
	sqlite3	*h;
	char	 path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/%s", f->dir, QUEUE_DB_FILE);
	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	return h;
}

/* One integer from sql on a separate connection. */
static int64_t
raw_int(struct fixture *f, const char *sql)
{
	sqlite3		*h = raw_open(f);
	sqlite3_stmt	*st;
	int64_t		 v;

	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static void
raw_exec(struct fixture *f, const char *sql)
{
	sqlite3	*h = raw_open(f);
	char	*msg = NULL;

	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(h);
}

/* Collects envelopes passed to a callback. */
struct collect {
	struct queue_envelope	 e[64];
	size_t			 n;
	struct queue_db		*db;	/* set: mark each one INFLIGHT */
	int64_t			 now;
};

static int
collect_cb(void *arg, const struct queue_envelope *e)
{
	struct collect	*c = arg;

	assert_true(c->n < 64);
	c->e[c->n++] = *e;
	if (c->db != NULL)
		assert_int_equal(queue_db_set_inflight(c->db, e->evpid,
		    c->now), 1);
	return 0;
}

static int
count_cb(void *arg, const struct queue_envelope *e)
{
	(*(size_t *)arg)++;
	return 0;
}

static void
counts(struct queue_db *db, size_t c[4], size_t *msgs, int64_t *oldest)
{
	assert_int_equal(queue_db_counts(db, c, msgs, oldest), 0);
}

/* Store a message, reopen, and read every field back. */
static void
test_open_reopen_keeps_data(void **state)
{
	struct fixture		*f = *state;
	struct queue_message_new m;
	struct queue_envelope_new ev[2];
	struct queue_envelope	 e;
	struct queue_message	 qm;
	uint8_t			 body[] = "Subject: hi\r\n\r\nhello\r\n";
	size_t			 n = 0;

	memset(&m, 0, sizeof(m));
	memset(ev, 0, sizeof(ev));
	ev[0] = (struct queue_envelope_new){ "bob@example.org",
	    "Bob@Example.org", "local", "bob", 0x5, "rfc822;Bob@Example.org",
	    0 };
	ev[1] = (struct queue_envelope_new){ "carol@example.net",
	    "carol@example.net", "out", "", 0, "", 0 };
	m.sender = "alice@example.com";
	m.envid = "QQ314159";
	m.dsn_ret = 2;
	m.helo = "mail.example.com";
	m.client = "mail.example.com [198.51.100.7]";
	m.ctime = 1700000000;
	m.body = body;
	m.bodylen = sizeof(body) - 1;
	m.evps = ev;
	m.nevps = 2;

	assert_int_equal(queue_db_begin(f->db), 0);
	assert_int_equal(queue_db_add_message(f->db, &m), 0);
	assert_int_equal(queue_db_commit(f->db), 0);
	assert_int_not_equal(m.msgid, 0);
	assert_int_not_equal(ev[0].evpid, 0);
	assert_int_not_equal(ev[1].evpid, 0);
	assert_int_not_equal(ev[0].evpid, ev[1].evpid);

	reopen(f);
	assert_int_equal(queue_db_envelope(f->db, ev[0].evpid, &e), 1);
	assert_int_equal(e.evpid, ev[0].evpid);
	assert_int_equal(e.msgid, m.msgid);
	assert_string_equal(e.sender, "alice@example.com");
	assert_string_equal(e.rcpt, "bob@example.org");
	assert_string_equal(e.orig_rcpt, "Bob@Example.org");
	assert_string_equal(e.action, "local");
	assert_string_equal(e.mailbox, "bob");
	assert_string_equal(e.orcpt, "rfc822;Bob@Example.org");
	assert_string_equal(e.last_error, "");
	assert_int_equal(e.ctime, 1700000000);
	assert_int_equal(e.next_try, 1700000000);
	assert_int_equal(e.last_try, 0);
	assert_int_equal(e.attempts, 0);
	assert_int_equal(e.state, EVP_PENDING);
	assert_int_equal(e.dsn_notify, 0x5);
	assert_int_equal(e.size, sizeof(body) - 1);

	assert_int_equal(queue_db_envelope(f->db, ev[1].evpid, &e), 1);
	assert_string_equal(e.rcpt, "carol@example.net");
	assert_string_equal(e.mailbox, "");
	assert_string_equal(e.orcpt, "");

	assert_int_equal(queue_db_message(f->db, m.msgid, &qm), 1);
	assert_int_equal(qm.msgid, m.msgid);
	assert_string_equal(qm.sender, "alice@example.com");
	assert_string_equal(qm.envid, "QQ314159");
	assert_int_equal(qm.dsn_ret, 2);
	assert_string_equal(qm.helo, "mail.example.com");
	assert_string_equal(qm.client, "mail.example.com [198.51.100.7]");
	assert_int_equal(qm.ctime, 1700000000);
	assert_int_equal(qm.size, sizeof(body) - 1);
	assert_int_equal(qm.nevps, 2);

	assert_int_equal(queue_db_list(f->db, count_cb, &n), 2);
	assert_int_equal(n, 2);
	assert_int_equal(queue_db_envelope(f->db, 12345, &e), 0);
	assert_int_equal(queue_db_message(f->db, 12345, &qm), 0);
}

/* The schema version, application id, WAL mode and file mode are set. */
static void
test_schema_version(void **state)
{
	struct fixture	*f = *state;
	struct stat	 sb;
	char		 path[PATH_MAX * 2];
	sqlite3		*h;
	sqlite3_stmt	*st;

	assert_int_equal(raw_int(f, "PRAGMA user_version"),
	    QUEUE_DB_SCHEMA_VERSION);
	assert_int_equal(QUEUE_DB_SCHEMA_VERSION, 2);
	/* Version 2 added the submitting user, -1 for network mail. */
	assert_int_equal(raw_int(f, "SELECT count(*) FROM pragma_table_info("
	    "'message') WHERE name = 'owner' AND dflt_value = '-1'"), 1);
	assert_int_equal(raw_int(f, "PRAGMA application_id"),
	    QUEUE_DB_APPLICATION_ID);
	h = raw_open(f);
	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(h);

	snprintf(path, sizeof(path), "%s/%s", f->dir, QUEUE_DB_FILE);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);

	/* Reopening an up-to-date database changes nothing. */
	reopen(f);
	assert_int_equal(raw_int(f, "PRAGMA user_version"),
	    QUEUE_DB_SCHEMA_VERSION);
}

/* A database from a newer Postern is refused, untouched. */
static void
test_newer_version_refused(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t;
	struct queue_db	*db = (struct queue_db *)&db;
	char		 err[512], want[PATH_MAX + 128];

	testmsg_init(&t, 1, 1, 100, NULL, 0);
	add_one(f->db, &t);
	queue_db_close(f->db);
	f->db = NULL;
	raw_exec(f, "PRAGMA user_version = 3");

	assert_int_equal(queue_db_open(&db, f->dir, err, sizeof(err)), -1);
	assert_null(db);
	snprintf(want, sizeof(want), "%s/queue.db: schema version 3 is newer "
	    "than this program supports (2)", f->dir);
	assert_string_equal(err, want);
	assert_int_equal(raw_int(f, "PRAGMA user_version"), 3);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM message"), 1);
}

/* Some other program's SQLite file, or no SQLite file at all, is refused. */
static void
test_foreign_database_refused(void **state)
{
	struct fixture	*f = *state;
	struct queue_db	*db;
	char		 err[512], want[PATH_MAX + 128], path[PATH_MAX * 2];
	int		 fd;

	queue_db_close(f->db);
	f->db = NULL;
	snprintf(path, sizeof(path), "%s/%s", f->dir, QUEUE_DB_FILE);
	assert_int_equal(unlink(path), 0);
	raw_exec(f, "CREATE TABLE notes (a TEXT)");
	assert_int_equal(queue_db_open(&db, f->dir, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s/queue.db: not a Postern queue "
	    "database", f->dir);
	assert_string_equal(err, want);

	/* Same user_version as ours, but another application id. */
	raw_exec(f, "PRAGMA user_version = 1");
	assert_int_equal(queue_db_open(&db, f->dir, err, sizeof(err)), -1);
	assert_string_equal(err, want);

	unlink(path);
	snprintf(path, sizeof(path), "%s/%s-wal", f->dir, QUEUE_DB_FILE);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", f->dir, QUEUE_DB_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(write(fd, "this is not a database.\n", 24),
		    24);
	close(fd);
	assert_int_equal(queue_db_open(&db, f->dir, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s/queue.db: file is not a database",
	    f->dir);
	assert_string_equal(err, want);
}

/* No database through a symlink, in a FIFO, or in a missing directory. */
static void
test_open_refusals(void **state)
{
	struct fixture	*f = *state;
	struct queue_db	*db;
	char		 sub[PATH_MAX + 16], path[PATH_MAX + 32];
	char		 err[512], want[PATH_MAX + 128];
	struct stat	 sb;

	snprintf(sub, sizeof(sub), "%s/missing", f->dir);
	assert_int_equal(queue_db_open(&db, sub, err, sizeof(err)), -1);
	assert_null(db);
	snprintf(want, sizeof(want), "%s/queue.db: No such file or directory",
	    sub);
	assert_string_equal(err, want);

	snprintf(sub, sizeof(sub), "%s/link", f->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/queue.db", sub);
	assert_int_equal(symlink("../elsewhere.db", path), 0);
	assert_int_equal(queue_db_open(&db, sub, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: Too many levels of symbolic links",
	    path);
	assert_string_equal(err, want);
	snprintf(want, sizeof(want), "%s/elsewhere.db", f->dir);
	assert_int_equal(stat(want, &sb), -1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(queue_db_open(&db, sub, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	assert_string_equal(err, want);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(sub), 0);
}

/* 50 messages in one transaction: invisible before COMMIT, all after. */
static void
test_group_commit_50(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	*t;
	uint64_t	 ids[150];
	size_t		 c[4], msgs, i, j, n = 0;
	int64_t		 oldest;
	uint8_t		*body = make_body(4096, 1);

	t = calloc(50, sizeof(*t));
	assert_non_null(t);
	assert_int_equal(queue_db_begin(f->db), 0);
	assert_int_equal(queue_db_begin(f->db), -1);	/* no nesting */
	for (i = 0; i < 50; i++) {
		testmsg_init(&t[i], i, 2, 1000 + i, body, 4096);
		assert_int_equal(queue_db_add_message(f->db, &t[i].msg), 0);
		ids[n++] = t[i].msg.msgid;
		ids[n++] = t[i].evps[0].evpid;
		ids[n++] = t[i].evps[1].evpid;
	}
	/* Another connection sees nothing until the commit. */
	assert_int_equal(raw_int(f, "SELECT count(*) FROM message"), 0);
	assert_int_equal(queue_db_commit(f->db), 0);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM message"), 50);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM envelope"), 100);

	for (i = 0; i < n; i++) {
		assert_int_not_equal(ids[i], 0);
		for (j = i + 1; j < n; j++)
			assert_int_not_equal(ids[i], ids[j]);
	}
	counts(f->db, c, &msgs, &oldest);
	assert_int_equal(c[EVP_PENDING], 100);
	assert_int_equal(c[EVP_INFLIGHT] + c[EVP_DEFERRED] + c[EVP_HELD], 0);
	assert_int_equal(msgs, 50);
	assert_int_equal(oldest, 1000);
	assert_int_equal(queue_db_list(f->db, count_cb, &n), 100);
	free(t);
	free(body);
}

/* A rolled-back transaction leaves nothing behind. */
static void
test_rollback(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t[3];
	size_t		 c[4], msgs, i;
	int64_t		 oldest;
	uint8_t		*body = make_body(CHUNK + 10, 2);

	assert_int_equal(queue_db_rollback(f->db), 0);	/* none open: ok */
	assert_int_equal(queue_db_begin(f->db), 0);
	for (i = 0; i < 3; i++) {
		testmsg_init(&t[i], i, 2, 50, body, CHUNK + 10);
		assert_int_equal(queue_db_add_message(f->db, &t[i].msg), 0);
	}
	assert_int_equal(queue_db_rollback(f->db), 0);
	counts(f->db, c, &msgs, &oldest);
	assert_int_equal(c[EVP_PENDING], 0);
	assert_int_equal(msgs, 0);
	assert_int_equal(oldest, 0);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM chunk"), 0);
	assert_int_equal(queue_db_commit(f->db), -1);	/* none open */
	free(body);
}

/* Write the body of msgid into a temp file and compare it with want. */
static void
check_body_file(struct fixture *f, uint64_t msgid, const uint8_t *want,
    size_t len)
{
	char	 path[PATH_MAX * 2];
	uint8_t	*got;
	ssize_t	 n;
	size_t	 off = 0;
	int	 fd;

	snprintf(path, sizeof(path), "%s/body.XXXXXX", f->dir);
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(queue_db_write_body(f->db, msgid, fd), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	got = malloc(len + 1);
	assert_non_null(got);
	while ((n = read(fd, got + off, len + 1 - off)) > 0)
		off += n;
	assert_int_equal(n, 0);
	assert_int_equal(off, len);
	assert_memory_equal(got, want, len > 0 ? len : 0);
	free(got);
	close(fd);
}

/* Bodies around the chunk boundaries come back byte for byte. */
static void
test_body_round_trip(void **state)
{
	struct fixture	*f = *state;
	const size_t	 sizes[] = { 0, 1, CHUNK - 1, CHUNK, CHUNK + 1,
			    CHUNK * 7 / 2 };
	struct testmsg	 t;
	uint8_t		*body;
	uint64_t	 id;
	char		 sql[128];
	size_t		 i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		body = make_body(sizes[i], i);
		testmsg_init(&t, i, 1, 10, body, sizes[i]);
		id = add_one(f->db, &t);
		check_body_file(f, id, body, sizes[i]);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM chunk "
		    "WHERE msgid = %" PRId64, (int64_t)id);
		assert_int_equal(raw_int(f, sql),
		    (sizes[i] + CHUNK - 1) / CHUNK);
		snprintf(sql, sizeof(sql), "SELECT coalesce(max(length(data)),"
		    " 0) FROM chunk WHERE msgid = %" PRId64, (int64_t)id);
		assert_int_equal(raw_int(f, sql),
		    sizes[i] < CHUNK ? sizes[i] : CHUNK);
		free(body);
	}
	errno = 0;
	assert_int_equal(queue_db_write_body(f->db, 777, 1), -1);
	assert_int_equal(errno, ENOENT);
}

/* 3.5 MiB through a non-blocking pipe to a slow reader (EAGAIN path). */
static void
test_body_pipe(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t;
	size_t		 len = CHUNK * 7 / 2, off = 0;
	uint8_t		*body = make_body(len, 9), *got;
	uint64_t	 id;
	ssize_t		 n;
	pid_t		 pid;
	int		 p[2], status;

	testmsg_init(&t, 1, 1, 10, body, len);
	id = add_one(f->db, &t);
	queue_db_close(f->db);		/* no SQLite handle across fork */
	f->db = NULL;

	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		struct queue_db	*db;
		char		 err[256];

		close(p[0]);
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		if (queue_db_open(&db, f->dir, err, sizeof(err)) == -1)
			_exit(2);
		n = queue_db_write_body(db, id, p[1]);
		queue_db_close(db);
		_exit(n == (ssize_t)len ? 0 : 1);
	}
	assert_true(pid > 0);
	close(p[1]);
	got = malloc(len + 1);
	assert_non_null(got);
	usleep(100 * 1000);	/* let the writer fill the pipe first */
	while ((n = read(p[0], got + off, len + 1 - off < 4096 ?
	    len + 1 - off : 4096)) > 0)
		off += n;
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(off, len);
	assert_memory_equal(got, body, len);
	free(got);
	free(body);
}

/* Due envelopes come in next_try order, bounded by max and by state. */
static void
test_due_ordering_and_max(void **state)
{
	struct fixture	*f = *state;
	const int64_t	 ctimes[] = { 100, 50, 300, 200, 150, 120 };
	struct testmsg	 t[6];
	struct collect	 c;
	size_t		 i;

	for (i = 0; i < 6; i++) {
		testmsg_init(&t[i], i, i == 3 ? 2 : 1, ctimes[i], NULL, 0);
		add_one(f->db, &t[i]);
	}
	/* t[5] deferred to 175, t[4] held, t[0] in flight. */
	assert_int_equal(queue_db_defer(f->db, t[5].evps[0].evpid, 130, 175,
	    "451 try later"), 1);
	assert_int_equal(queue_db_hold(f->db, t[4].evps[0].evpid, 1), 1);
	assert_int_equal(queue_db_set_inflight(f->db, t[0].evps[0].evpid,
	    140), 1);

	memset(&c, 0, sizeof(c));
	assert_int_equal(queue_db_due(f->db, 250, 100, collect_cb, &c), 4);
	assert_int_equal(c.n, 4);
	assert_int_equal(c.e[0].evpid, t[1].evps[0].evpid);
	assert_int_equal(c.e[0].next_try, 50);
	assert_int_equal(c.e[1].evpid, t[5].evps[0].evpid);
	assert_int_equal(c.e[1].next_try, 175);
	assert_int_equal(c.e[1].state, EVP_DEFERRED);
	assert_string_equal(c.e[1].last_error, "451 try later");
	/* The two envelopes of t[3] tie on next_try: evpid order, as the
	 * signed 64-bit integers SQLite stores. */
	assert_int_equal(c.e[2].next_try, 200);
	assert_int_equal(c.e[3].next_try, 200);
	assert_true((int64_t)c.e[2].evpid < (int64_t)c.e[3].evpid);
	assert_int_equal(c.e[2].msgid, t[3].msg.msgid);
	assert_int_equal(c.e[3].msgid, t[3].msg.msgid);
	assert_string_equal(c.e[0].sender, "s1@example.org");

	memset(&c, 0, sizeof(c));
	assert_int_equal(queue_db_due(f->db, 250, 2, collect_cb, &c), 2);
	assert_int_equal(c.e[0].next_try, 50);
	assert_int_equal(c.e[1].next_try, 175);
	assert_int_equal(queue_db_due(f->db, 250, 0, collect_cb, &c), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(queue_db_due(f->db, 49, 10, collect_cb, &c), 0);
	assert_int_equal(queue_db_due(f->db, 1000, 10, collect_cb, &c), 5);
	assert_int_equal(c.e[4].next_try, 300);
}

static int
stop_after_two(void *arg, const struct queue_envelope *e)
{
	return ++*(int *)arg == 2 ? -1 : 0;
}

/* The callback may mark each envelope INFLIGHT while due iterates. */
static void
test_due_marks_inflight(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t;
	struct collect	 c;
	size_t		 i, j, cnt[4], msgs;
	int64_t		 oldest;
	int		 calls = 0;

	for (i = 0; i < 20; i++) {
		testmsg_init(&t, i, 2, 1000 - (int64_t)i * 10, NULL, 0);
		add_one(f->db, &t);
		if (i % 2)
			assert_int_equal(queue_db_defer(f->db,
			    t.evps[1].evpid, 0, 500 + i, "x"), 1);
	}
	assert_int_equal(queue_db_due(f->db, 5000, 10, stop_after_two,
	    &calls), 2);

	/* Outside a transaction: each mark is its own commit. */
	memset(&c, 0, sizeof(c));
	c.db = f->db;
	c.now = 6000;
	assert_int_equal(queue_db_due(f->db, 5000, 15, collect_cb, &c), 15);
	/* Inside one: a single commit for the rest. */
	assert_int_equal(queue_db_begin(f->db), 0);
	assert_int_equal(queue_db_due(f->db, 5000, 64, collect_cb, &c), 25);
	assert_int_equal(queue_db_commit(f->db), 0);
	assert_int_equal(c.n, 40);
	for (i = 0; i < c.n; i++) {
		for (j = i + 1; j < c.n; j++)
			assert_int_not_equal(c.e[i].evpid, c.e[j].evpid);
		if (i > 0)
			assert_true(c.e[i - 1].next_try <= c.e[i].next_try);
	}
	assert_int_equal(queue_db_due(f->db, 5000, 64, collect_cb, &c), 0);
	counts(f->db, cnt, &msgs, &oldest);
	assert_int_equal(cnt[EVP_INFLIGHT], 40);
	assert_int_equal(msgs, 20);
	assert_int_equal(oldest, 810);
}

static int
remove_cb(void *arg, const struct queue_envelope *e)
{
	struct queue_db	*db = arg;

	assert_int_equal(queue_db_remove_envelope(db, e->evpid), 1);
	return 0;
}

/* The callback may also remove what it is given (delivered, expired). */
static void
test_due_removes(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t;
	size_t		 i, cnt[4], msgs;
	int64_t		 oldest;
	uint8_t		*body = make_body(5000, 6);
	char		 err[256];

	for (i = 0; i < 12; i++) {
		testmsg_init(&t, i, 1 + i % 2, 100 + i, body, 5000);
		add_one(f->db, &t);
	}
	assert_int_equal(queue_db_due(f->db, 1000, 100, remove_cb, f->db), 18);
	counts(f->db, cnt, &msgs, &oldest);
	assert_int_equal(cnt[EVP_PENDING], 0);
	assert_int_equal(msgs, 0);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM chunk"), 0);
	assert_int_equal(queue_db_check(f->db, err, sizeof(err)), 0);
	free(body);
}

/* Defer records the failure; next_wakeup follows the earliest next_try. */
static void
test_defer_next_wakeup(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t;
	struct queue_envelope e;
	char		 longerr[QUEUE_DB_ERROR_SIZE + 1];
	int64_t		 when = -1;
	uint64_t	 evpid;

	assert_int_equal(queue_db_next_wakeup(f->db, &when), 0);
	assert_int_equal(when, -1);
	testmsg_init(&t, 1, 1, 1000, NULL, 0);
	add_one(f->db, &t);
	evpid = t.evps[0].evpid;
	assert_int_equal(queue_db_next_wakeup(f->db, &when), 1);
	assert_int_equal(when, 1000);

	assert_int_equal(queue_db_set_inflight(f->db, evpid, 1005), 1);
	assert_int_equal(queue_db_set_inflight(f->db, evpid, 1005), 0);
	assert_int_equal(queue_db_next_wakeup(f->db, &when), 0);
	assert_int_equal(queue_db_envelope(f->db, evpid, &e), 1);
	assert_int_equal(e.state, EVP_INFLIGHT);
	assert_int_equal(e.last_try, 1005);

	assert_int_equal(queue_db_defer(f->db, evpid, 1010, 1610,
	    "421 4.4.2 mx.example.net: timeout"), 1);
	assert_int_equal(queue_db_envelope(f->db, evpid, &e), 1);
	assert_int_equal(e.state, EVP_DEFERRED);
	assert_int_equal(e.attempts, 1);
	assert_int_equal(e.last_try, 1010);
	assert_int_equal(e.next_try, 1610);
	assert_string_equal(e.last_error, "421 4.4.2 mx.example.net: timeout");
	assert_int_equal(queue_db_next_wakeup(f->db, &when), 1);
	assert_int_equal(when, 1610);

	/* A second message due earlier moves the wakeup. */
	testmsg_init(&t, 2, 1, 1200, NULL, 0);
	add_one(f->db, &t);
	assert_int_equal(queue_db_next_wakeup(f->db, &when), 1);
	assert_int_equal(when, 1200);

	assert_int_equal(queue_db_defer(f->db, evpid, 1700, 3000, "450 busy"),
	    1);
	assert_int_equal(queue_db_envelope(f->db, evpid, &e), 1);
	assert_int_equal(e.attempts, 2);
	assert_string_equal(e.last_error, "450 busy");

	/* The error text is bounded, not truncated. */
	memset(longerr, 'x', sizeof(longerr));
	longerr[QUEUE_DB_ERROR_SIZE] = '\0';
	assert_int_equal(queue_db_defer(f->db, evpid, 1, 2, longerr), -1);
	assert_int_equal(queue_db_defer(f->db, evpid, 1, 2, NULL), -1);
	longerr[QUEUE_DB_ERROR_SIZE - 1] = '\0';
	assert_int_equal(queue_db_defer(f->db, evpid, 1800, 4000, longerr), 1);
	assert_int_equal(queue_db_envelope(f->db, evpid, &e), 1);
	assert_int_equal(strlen(e.last_error), QUEUE_DB_ERROR_SIZE - 1);
	assert_int_equal(e.attempts, 3);

	/* A held envelope is not deferred, an unknown one neither. */
	assert_int_equal(queue_db_hold(f->db, evpid, 1), 1);
	assert_int_equal(queue_db_defer(f->db, evpid, 1, 2, "x"), 0);
	assert_int_equal(queue_db_defer(f->db, 99, 1, 2, "x"), 0);
}

/* INFLIGHT envelopes survive a restart and become PENDING again. */
static void
test_recover_inflight(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t;
	struct queue_envelope e;
	struct collect	 c;

	testmsg_init(&t, 1, 3, 100, NULL, 0);
	add_one(f->db, &t);
	assert_int_equal(queue_db_set_inflight(f->db, t.evps[0].evpid, 200), 1);
	assert_int_equal(queue_db_set_inflight(f->db, t.evps[2].evpid, 200), 1);
	memset(&c, 0, sizeof(c));
	assert_int_equal(queue_db_due(f->db, 1000, 10, collect_cb, &c), 1);
	assert_int_equal(c.e[0].evpid, t.evps[1].evpid);

	reopen(f);
	assert_int_equal(queue_db_recover(f->db, 5000), 2);
	assert_int_equal(queue_db_envelope(f->db, t.evps[0].evpid, &e), 1);
	assert_int_equal(e.state, EVP_PENDING);
	assert_int_equal(e.next_try, 5000);
	assert_int_equal(e.last_try, 200);
	assert_int_equal(queue_db_envelope(f->db, t.evps[2].evpid, &e), 1);
	assert_int_equal(e.state, EVP_PENDING);
	assert_int_equal(e.next_try, 5000);
	assert_int_equal(queue_db_envelope(f->db, t.evps[1].evpid, &e), 1);
	assert_int_equal(e.next_try, 100);
	assert_int_equal(queue_db_recover(f->db, 6000), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(queue_db_due(f->db, 5000, 10, collect_cb, &c), 3);
}

/* Removing the last envelope removes the message and its chunks. */
static void
test_remove_last_envelope(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t, keep;
	struct queue_message qm;
	size_t		 len = 3 * CHUNK - 5, cnt[4], msgs;
	uint8_t		*body = make_body(len, 3);
	uint64_t	 id;
	int64_t		 oldest;
	char		 err[256];

	testmsg_init(&keep, 9, 1, 10, body, 100);
	add_one(f->db, &keep);
	testmsg_init(&t, 1, 2, 20, body, len);
	id = add_one(f->db, &t);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM chunk"), 4);

	assert_int_equal(queue_db_set_inflight(f->db, t.evps[0].evpid, 30), 1);
	assert_int_equal(queue_db_remove_envelope(f->db, t.evps[0].evpid), 1);
	assert_int_equal(queue_db_message(f->db, id, &qm), 1);
	assert_int_equal(qm.nevps, 1);
	check_body_file(f, id, body, len);

	assert_int_equal(queue_db_remove_envelope(f->db, t.evps[1].evpid), 1);
	assert_int_equal(queue_db_message(f->db, id, &qm), 0);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM chunk"), 1);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM message"), 1);
	errno = 0;
	assert_int_equal(queue_db_write_body(f->db, id, 1), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(queue_db_remove_envelope(f->db, t.evps[1].evpid), 0);
	assert_int_equal(queue_db_remove_envelope(f->db, 0), 0);

	/* Inside a caller's transaction it is part of that transaction. */
	assert_int_equal(queue_db_begin(f->db), 0);
	assert_int_equal(queue_db_remove_envelope(f->db, keep.evps[0].evpid),
	    1);
	assert_int_equal(queue_db_rollback(f->db), 0);
	counts(f->db, cnt, &msgs, &oldest);
	assert_int_equal(msgs, 1);
	assert_int_equal(cnt[EVP_PENDING], 1);
	assert_int_equal(oldest, 10);
	check_body_file(f, keep.msg.msgid, body, 100);
	assert_int_equal(queue_db_check(f->db, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	free(body);
}

/* Hold/release and schedule, one by one and all at once. */
static void
test_hold_schedule(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t, u;
	struct queue_envelope e;
	struct collect	 c;
	uint64_t	 evpid;
	int64_t		 when, before, after;
	size_t		 cnt[4], msgs;

	testmsg_init(&t, 1, 1, 100, NULL, 0);
	add_one(f->db, &t);
	evpid = t.evps[0].evpid;

	assert_int_equal(queue_db_hold(f->db, evpid, 1), 1);
	assert_int_equal(queue_db_hold(f->db, evpid, 1), 0);
	assert_int_equal(queue_db_envelope(f->db, evpid, &e), 1);
	assert_int_equal(e.state, EVP_HELD);
	memset(&c, 0, sizeof(c));
	assert_int_equal(queue_db_due(f->db, 10000, 10, collect_cb, &c), 0);
	assert_int_equal(queue_db_next_wakeup(f->db, &when), 0);
	assert_int_equal(queue_db_schedule(f->db, evpid, 50), 0);
	assert_int_equal(queue_db_set_inflight(f->db, evpid, 50), 0);

	before = time(NULL);
	assert_int_equal(queue_db_hold(f->db, evpid, 0), 1);
	after = time(NULL);
	assert_int_equal(queue_db_hold(f->db, evpid, 0), 0);
	assert_int_equal(queue_db_envelope(f->db, evpid, &e), 1);
	assert_int_equal(e.state, EVP_PENDING);
	assert_true(e.next_try >= before && e.next_try <= after);

	assert_int_equal(queue_db_defer(f->db, evpid, 200, 9999, "451"), 1);
	assert_int_equal(queue_db_schedule(f->db, evpid, 500), 1);
	assert_int_equal(queue_db_envelope(f->db, evpid, &e), 1);
	assert_int_equal(e.next_try, 500);
	assert_int_equal(e.state, EVP_DEFERRED);
	/* Never pushed later. */
	assert_int_equal(queue_db_schedule(f->db, evpid, 600), 0);
	assert_int_equal(queue_db_envelope(f->db, evpid, &e), 1);
	assert_int_equal(e.next_try, 500);

	/* An envelope in flight is neither held nor rescheduled. */
	assert_int_equal(queue_db_set_inflight(f->db, evpid, 700), 1);
	assert_int_equal(queue_db_hold(f->db, evpid, 1), 0);
	assert_int_equal(queue_db_schedule(f->db, evpid, 10), 0);
	assert_int_equal(queue_db_hold(f->db, 4242, 1), 0);

	testmsg_init(&u, 2, 3, 8000, NULL, 0);
	add_one(f->db, &u);
	assert_int_equal(queue_db_hold_all(f->db, 1, 0), 3);
	counts(f->db, cnt, &msgs, &when);
	assert_int_equal(cnt[EVP_HELD], 3);
	assert_int_equal(cnt[EVP_INFLIGHT], 1);
	assert_int_equal(queue_db_hold_all(f->db, 0, 7000), 3);
	assert_int_equal(queue_db_envelope(f->db, u.evps[2].evpid, &e), 1);
	assert_int_equal(e.state, EVP_PENDING);
	assert_int_equal(e.next_try, 7000);
	assert_int_equal(queue_db_schedule_all(f->db, 6500), 3);
	assert_int_equal(queue_db_schedule_all(f->db, 6500), 0);
	assert_int_equal(queue_db_next_wakeup(f->db, &when), 1);
	assert_int_equal(when, 6500);
}

/* Fill a string of exactly len 'a's (len < sz). */
static char *
fill(char *buf, size_t sz, size_t len)
{
	assert_true(len < sz);
	memset(buf, 'a', len);
	buf[len] = '\0';
	return buf;
}

/* Every string must fit its field: the limit is accepted, one more is
 * refused, and a refusal leaves the transaction usable. */
static void
test_refuse_overlong_strings(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t;
	struct queue_envelope e;
	struct queue_message qm;
	char		 big[2048];
	size_t		 cnt[4], msgs, i;
	int64_t		 oldest;
	int		 accepted = 0;
	struct {
		const char	**field;
		size_t		  size;
	} cases[] = {
		{ &t.msg.sender, QUEUE_DB_ADDR_SIZE },
		{ &t.msg.envid, QUEUE_DB_ADDR_SIZE },
		{ &t.msg.helo, QUEUE_DB_ADDR_SIZE },
		{ &t.msg.client, QUEUE_DB_ADDR_SIZE },
		{ &t.evps[1].rcpt, QUEUE_DB_ADDR_SIZE },
		{ &t.evps[1].orig_rcpt, QUEUE_DB_ADDR_SIZE },
		{ &t.evps[1].action, QUEUE_DB_ACTION_SIZE },
		{ &t.evps[1].mailbox, QUEUE_DB_ADDR_SIZE },
		{ &t.evps[1].orcpt, QUEUE_DB_ORCPT_SIZE },
	};

	/* Outside a transaction: refused. */
	testmsg_init(&t, 0, 2, 10, NULL, 0);
	assert_int_equal(queue_db_add_message(f->db, &t.msg), -1);

	assert_int_equal(queue_db_begin(f->db), 0);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		testmsg_init(&t, i, 2, 10, NULL, 0);
		*cases[i].field = fill(big, sizeof(big), cases[i].size);
		assert_int_equal(queue_db_add_message(f->db, &t.msg), -1);
		*cases[i].field = NULL;
		assert_int_equal(queue_db_add_message(f->db, &t.msg), -1);
		*cases[i].field = fill(big, sizeof(big), cases[i].size - 1);
		assert_int_equal(queue_db_add_message(f->db, &t.msg), 0);
		accepted++;
		assert_int_equal(queue_db_envelope(f->db, t.evps[1].evpid, &e),
		    1);
		assert_int_equal(queue_db_message(f->db, t.msg.msgid, &qm), 1);
		switch (i) {
		case 0:
			assert_string_equal(e.sender, big);
			break;
		case 1:
			assert_string_equal(qm.envid, big);
			break;
		case 2:
			assert_string_equal(qm.helo, big);
			break;
		case 3:
			assert_string_equal(qm.client, big);
			break;
		case 4:
			assert_string_equal(e.rcpt, big);
			break;
		case 5:
			assert_string_equal(e.orig_rcpt, big);
			break;
		case 6:
			assert_string_equal(e.action, big);
			break;
		case 7:
			assert_string_equal(e.mailbox, big);
			break;
		case 8:
			assert_string_equal(e.orcpt, big);
			break;
		}
	}
	testmsg_init(&t, 100, 1, 10, NULL, 0);
	t.msg.dsn_ret = 3;
	assert_int_equal(queue_db_add_message(f->db, &t.msg), -1);
	t.msg.dsn_ret = -1;
	assert_int_equal(queue_db_add_message(f->db, &t.msg), -1);
	t.msg.dsn_ret = 1;
	t.msg.nevps = 0;
	assert_int_equal(queue_db_add_message(f->db, &t.msg), -1);
	t.msg.nevps = 1;
	t.msg.bodylen = 10;		/* with body == NULL */
	assert_int_equal(queue_db_add_message(f->db, &t.msg), -1);
	assert_int_equal(queue_db_commit(f->db), 0);

	counts(f->db, cnt, &msgs, &oldest);
	assert_int_equal(msgs, accepted);
	assert_int_equal(cnt[EVP_PENDING], 2 * accepted);
}

/* A stored string damaged behind our back (NUL inside, too long) is an
 * error on lookup and skipped by the iterators, never truncated. */
static void
test_damaged_row(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t;
	struct queue_envelope e;
	char		 sql[256];
	size_t		 n = 0;

	testmsg_init(&t, 1, 3, 10, NULL, 0);
	add_one(f->db, &t);
	snprintf(sql, sizeof(sql), "UPDATE envelope SET rcpt = "
	    "CAST(x'61006200' AS TEXT) WHERE evpid = %" PRId64,
	    (int64_t)t.evps[0].evpid);
	raw_exec(f, sql);
	snprintf(sql, sizeof(sql), "UPDATE envelope SET action = "
	    "replace(hex(zeroblob(32)), '0', 'x') WHERE evpid = %" PRId64,
	    (int64_t)t.evps[1].evpid);
	raw_exec(f, sql);
	assert_int_equal(queue_db_envelope(f->db, t.evps[0].evpid, &e), -1);
	assert_int_equal(queue_db_envelope(f->db, t.evps[1].evpid, &e), -1);
	assert_int_equal(queue_db_envelope(f->db, t.evps[2].evpid, &e), 1);
	assert_int_equal(queue_db_list(f->db, count_cb, &n), 1);
	assert_int_equal(n, 1);
}

/*
 * A commit is atomic and durable: after kill -9 at a random moment, every
 * message the child reported as committed is there, whole, and no message
 * is partial.  Three rounds on the same database, so recovery of a
 * killed writer's WAL is itself recovered from.
 */
#define CRASH_ROUNDS	3
#define CRASH_SPAN	100000	/* message numbers per round */
#define CRASH_MAX	20000	/* messages a child would write */

struct crash_rec {
	uint64_t	 msgid;
	uint32_t	 n;
};

static size_t
crash_nevps(uint32_t n)
{
	return 1 + n % 3;
}

static size_t
crash_bodylen(uint32_t n)
{
	n %= CRASH_SPAN;
	return n % 7 == 0 ? CHUNK + 3 * n : 4096 + 13 * n;
}

static void
crash_child(const char *dir, int wfd, uint32_t base)
{
	struct queue_db		*db;
	struct testmsg		 t[5];
	struct crash_rec	 rec[5];
	uint8_t			*body;
	char			 err[256];
	uint32_t		 n = base;
	size_t			 j;

	memset(rec, 0, sizeof(rec));		/* padding too */
	body = make_body(CHUNK + 3 * CRASH_MAX, 0);
	if (queue_db_open(&db, dir, err, sizeof(err)) == -1)
		_exit(2);
	while (n < base + CRASH_MAX) {
		if (queue_db_begin(db) == -1)
			_exit(3);
		for (j = 0; j < 5; j++, n++) {
			testmsg_init(&t[j], n, crash_nevps(n), n, body,
			    crash_bodylen(n));
			if (queue_db_add_message(db, &t[j].msg) == -1)
				_exit(4);
			rec[j].msgid = t[j].msg.msgid;
			rec[j].n = n;
		}
		if (queue_db_commit(db) == -1)
			_exit(5);
		/* Reported only once durable, as smtpd would send 250. */
		if (write(wfd, rec, sizeof(rec)) != sizeof(rec))
			_exit(6);
	}
	_exit(0);
}

/* State of the pass over every envelope after the crashes. */
struct crash_scan {
	struct queue_db	*db;
	const uint8_t	*body;
	size_t		 envelopes;
	size_t		 per_round[CRASH_ROUNDS];	/* envelopes */
	int		 bad;
};

static int
body_cmp_cb(void *arg, const uint8_t *buf, size_t len)
{
	const uint8_t	**want = arg;

	if (memcmp(*want, buf, len) != 0)
		return -1;
	*want += len;
	return 0;
}

/* Check that the message of e is complete: envelopes, size, bytes. */
static int
crash_scan_cb(void *arg, const struct queue_envelope *e)
{
	struct crash_scan	*cs = arg;
	struct queue_message	 qm;
	const uint8_t		*want = cs->body;
	unsigned		 n;

	cs->envelopes++;
	if (sscanf(e->sender, "s%u@", &n) != 1 ||
	    n / CRASH_SPAN >= CRASH_ROUNDS ||
	    queue_db_message(cs->db, e->msgid, &qm) != 1 ||
	    qm.nevps != crash_nevps(n) || qm.size != crash_bodylen(n) ||
	    e->state != EVP_PENDING ||
	    queue_db_read_body(cs->db, e->msgid, body_cmp_cb, &want) !=
	    (ssize_t)qm.size) {
		cs->bad++;
		return 0;
	}
	cs->per_round[n / CRASH_SPAN]++;
	return 0;
}

static void
test_crash_kill9(void **state)
{
	struct fixture		*f = *state;
	struct crash_rec	*recs;
	struct queue_message	 qm;
	struct crash_scan	 cs;
	size_t			 nrec = 0, cap = CRASH_ROUNDS * CRASH_MAX;
	size_t			 first, i, j, want, extra;
	const uint8_t		*wantp;
	uint8_t			*body;
	char			 err[256], sender[64];
	ssize_t			 n;
	pid_t			 pid;
	int			 p[2], status, killed, round;

	queue_db_close(f->db);		/* the children open their own */
	f->db = NULL;
	recs = calloc(cap, sizeof(*recs));
	assert_non_null(recs);
	for (round = 0; round < CRASH_ROUNDS; round++) {
		assert_int_equal(pipe(p), 0);
		if ((pid = fork()) == 0) {
			close(p[0]);
			crash_child(f->dir, p[1], round * CRASH_SPAN);
		}
		assert_true(pid > 0);
		close(p[1]);
		first = nrec;
		killed = 0;
		while ((n = read(p[0], recs + nrec, (cap - nrec) *
		    sizeof(*recs))) > 0) {
			assert_int_equal(n % sizeof(*recs), 0);
			nrec += n / sizeof(*recs);
			if (!killed && nrec - first >= 50) {
				/* Somewhere in a transaction, a commit
				 * or a checkpoint. */
				usleep(arc4random_uniform(30000));
				assert_int_equal(kill(pid, SIGKILL), 0);
				killed = 1;
			}
		}
		close(p[0]);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
		assert_true(nrec - first >= 50);
	}

	reopen(f);
	assert_int_equal(queue_db_check(f->db, err, sizeof(err)), 0);
	assert_int_equal(queue_db_recover(f->db, 0), 0);
	body = make_body(CHUNK + 3 * CRASH_MAX, 0);
	for (i = 0; i < nrec; i++) {
		assert_int_equal(queue_db_message(f->db, recs[i].msgid, &qm),
		    1);
		snprintf(sender, sizeof(sender), "s%u@example.org",
		    recs[i].n);
		assert_string_equal(qm.sender, sender);
		assert_int_equal(qm.nevps, crash_nevps(recs[i].n));
		assert_int_equal(qm.size, crash_bodylen(recs[i].n));
		wantp = body;
		assert_int_equal(queue_db_read_body(f->db, recs[i].msgid,
		    body_cmp_cb, &wantp), (ssize_t)qm.size);
	}

	/* Every message is whole, reported or not, and each round holds
	 * a prefix of its sequence: at most one unreported batch more. */
	memset(&cs, 0, sizeof(cs));
	cs.db = f->db;
	cs.body = body;
	n = queue_db_list(f->db, crash_scan_cb, &cs);
	assert_int_equal(n, cs.envelopes);
	assert_int_equal(cs.bad, 0);
	for (round = 0, i = 0; round < CRASH_ROUNDS; round++) {
		for (j = 0; i < nrec && recs[i].n / CRASH_SPAN ==
		    (unsigned)round; i++, j++)
			;
		for (want = 0, n = 0; n < (ssize_t)j; n++)
			want += crash_nevps(round * CRASH_SPAN + n);
		extra = 0;
		if (cs.per_round[round] != want) {
			/* One more committed batch, not yet reported. */
			for (n = j; n < (ssize_t)j + 5; n++)
				want += crash_nevps(round * CRASH_SPAN + n);
			assert_int_equal(cs.per_round[round], want);
			extra = 5;
		}
		print_message("[ info     ] crash round %d: %zu messages "
		    "reported, %zu stored\n", round, j, j + extra);
	}
	free(body);
	free(recs);
}

/* Disk full (a size cap): the message that does not fit is refused and
 * nothing committed before is lost. */
static void
test_database_full(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 a, b, c;
	struct queue_message qm;
	size_t		 len = 4 * CHUNK;
	uint8_t		*body = make_body(len, 5);
	char		 err[256];
	uint64_t	 kept;
	int64_t		 pages, pagesz;

	testmsg_init(&a, 1, 2, 10, body, 5000);
	kept = add_one(f->db, &a);
	pages = raw_int(f, "PRAGMA page_count");
	pagesz = raw_int(f, "PRAGMA page_size");
	assert_int_equal(queue_db_set_max_size(f->db,
	    (uint64_t)(pages + 64) * pagesz), 0);

	assert_int_equal(queue_db_begin(f->db), 0);
	testmsg_init(&b, 2, 1, 20, body, 1000);
	assert_int_equal(queue_db_add_message(f->db, &b.msg), 0);
	testmsg_init(&c, 3, 1, 30, body, len);
	assert_int_equal(queue_db_add_message(f->db, &c.msg), -1);
	/* Either the transaction survived without c, or it is gone whole. */
	if (queue_db_commit(f->db) == 0) {
		assert_int_equal(queue_db_message(f->db, b.msg.msgid, &qm), 1);
	} else {
		assert_int_equal(queue_db_rollback(f->db), 0);
		assert_int_equal(queue_db_message(f->db, b.msg.msgid, &qm), 0);
	}
	assert_int_equal(queue_db_message(f->db, c.msg.msgid, &qm), 0);
	assert_int_equal(queue_db_message(f->db, kept, &qm), 1);
	check_body_file(f, kept, body, 5000);
	assert_int_equal(queue_db_check(f->db, err, sizeof(err)), 0);

	assert_int_equal(queue_db_set_max_size(f->db, 0), 0);
	testmsg_init(&c, 3, 1, 30, body, len);
	add_one(f->db, &c);
	check_body_file(f, c.msg.msgid, body, len);
	free(body);
}

static const uint64_t	 idseq[] = { 7, 7, 7, 7, 0, 9, 11 };
static size_t		 idpos;

static uint64_t
seq_ids(void)
{
	return idseq[idpos < 7 ? idpos++ : 6];
}

/* 50, then 51 for ever. */
static uint64_t
stuck_ids(void)
{
	return idpos++ == 0 ? 50 : 51;
}

/* A colliding random id is drawn again; endless collisions fail cleanly
 * and undo the part of the message already stored. */
static void
test_id_collision(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t1, t2, t3;
	struct queue_message qm;
	size_t		 cnt[4], msgs;
	int64_t		 oldest;

	idpos = 0;
	queue_db_set_id_generator(seq_ids);
	testmsg_init(&t1, 1, 1, 10, NULL, 0);
	add_one(f->db, &t1);
	assert_int_equal(t1.msg.msgid, 7);
	assert_int_equal(t1.evps[0].evpid, 7);	/* other table: no clash */
	testmsg_init(&t2, 2, 1, 10, NULL, 0);
	add_one(f->db, &t2);
	assert_int_equal(t2.msg.msgid, 9);
	assert_int_equal(t2.evps[0].evpid, 11);

	/* Message 50 and envelope 51 go in, the second envelope finds no
	 * free id: nothing of the message stays, the transaction does. */
	idpos = 0;
	queue_db_set_id_generator(stuck_ids);
	assert_int_equal(queue_db_begin(f->db), 0);
	testmsg_init(&t3, 3, 2, 10, NULL, 0);
	assert_int_equal(queue_db_add_message(f->db, &t3.msg), -1);
	queue_db_set_id_generator(NULL);
	testmsg_init(&t3, 4, 1, 10, NULL, 0);
	assert_int_equal(queue_db_add_message(f->db, &t3.msg), 0);
	assert_int_equal(queue_db_commit(f->db), 0);
	assert_int_equal(queue_db_message(f->db, 50, &qm), 0);
	counts(f->db, cnt, &msgs, &oldest);
	assert_int_equal(msgs, 3);
	assert_int_equal(cnt[EVP_PENDING], 3);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM envelope WHERE "
	    "evpid = 51"), 0);
}

/* The hot statements search indexes: no table scan, no sort. */
static void
test_query_plans(void **state)
{
	struct fixture	*f = *state;
	char		 err[512] = "unset";

	if (queue_db_check_plans(f->db, err, sizeof(err)) == -1)
		fail_msg("plan: %s", err);
	assert_string_equal(err, "");

	/* Without the (state, next_try) index the check must notice. */
	queue_db_close(f->db);
	f->db = NULL;
	raw_exec(f, "DROP INDEX envelope_due");
	reopen(f);
	assert_int_equal(queue_db_check_plans(f->db, err, sizeof(err)), -1);
	assert_string_equal(err, "SCAN envelope: UPDATE envelope SET "
	    "state = 0, next_try = ?1 WHERE state = 1");
}

/* Throughput of the durable store: 4 KiB messages, 1 envelope, 20 per
 * commit.  Printed, not asserted. */
static void
test_bench_group_commit(void **state)
{
	struct fixture	*f = *state;
	struct testmsg	 t;
	struct timespec	 t0, t1;
	uint8_t		*body = make_body(4096, 4);
	const char	*env;
	double		 secs;
	long		 total = 4000, i, j;

	if ((env = getenv("QUEUE_DB_BENCH_N")) != NULL && atol(env) >= 20)
		total = atol(env);
	total -= total % 20;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < total; i += 20) {
		assert_int_equal(queue_db_begin(f->db), 0);
		for (j = 0; j < 20; j++) {
			testmsg_init(&t, i + j, 1, 10, body, 4096);
			assert_int_equal(queue_db_add_message(f->db, &t.msg),
			    0);
		}
		assert_int_equal(queue_db_commit(f->db), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("[ bench    ] %ld messages of 4 KiB, 20 per commit: "
	    "%.3f s, %.0f messages/s\n", total, secs, total / secs);
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name)	cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_open_reopen_keeps_data),
		T(test_schema_version),
		T(test_newer_version_refused),
		T(test_foreign_database_refused),
		T(test_open_refusals),
		T(test_group_commit_50),
		T(test_rollback),
		T(test_body_round_trip),
		T(test_body_pipe),
		T(test_due_ordering_and_max),
		T(test_due_marks_inflight),
		T(test_due_removes),
		T(test_defer_next_wakeup),
		T(test_recover_inflight),
		T(test_remove_last_envelope),
		T(test_hold_schedule),
		T(test_refuse_overlong_strings),
		T(test_damaged_row),
		T(test_crash_kill9),
		T(test_database_full),
		T(test_id_collision),
		T(test_query_plans),
		T(test_bench_group_commit),
#undef T
	};

	log_init("test_queue_db", 1, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
