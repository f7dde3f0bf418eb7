/*
 * queue_db.c: the SQLite message store of the queue process.  Every
 * statement is prepared once at open and reused; the schema is versioned in
 * PRAGMA user_version and brought up to date by the migrations below.
 * SECURITY: runs unprivileged in the queue process, chrooted to the spool;
 * peer strings are bound as parameters and bounded before they are stored.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "queue_db.h"

#ifndef nitems
#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#define QDB_BUSY_TIMEOUT_MS	5000
#define QDB_AUTOCHECKPOINT	1000		/* pages, SQLite's default */
#define QDB_JOURNAL_LIMIT	(64 * 1024 * 1024)	/* WAL size kept */
#define QDB_ID_TRIES		16		/* fresh ids on a collision */
#define QDB_SAVEPOINT		"queue_db"

/*
 * The schema, one entry per version: migrations[i] takes user_version i
 * to i + 1.  Never edit an entry that has shipped; append a new one.
 * envelope.ctime copies message.ctime so that "show queue" and the oldest
 * age are read in index order without a sort.
 */
static const char *const qdb_migrations[] = {
	/* 1: initial schema */
	"PRAGMA application_id = 1347638354;"
	"CREATE TABLE message ("
	"  msgid    INTEGER PRIMARY KEY,"
	"  sender   TEXT NOT NULL,"
	"  envid    TEXT NOT NULL,"
	"  dsn_ret  INTEGER NOT NULL,"
	"  helo     TEXT NOT NULL,"
	"  client   TEXT NOT NULL,"
	"  ctime    INTEGER NOT NULL,"
	"  size     INTEGER NOT NULL"
	");"
	"CREATE TABLE chunk ("
	"  msgid    INTEGER NOT NULL REFERENCES message (msgid),"
	"  seq      INTEGER NOT NULL,"
	"  data     BLOB NOT NULL,"
	"  PRIMARY KEY (msgid, seq)"
	");"
	"CREATE TABLE envelope ("
	"  evpid      INTEGER PRIMARY KEY,"
	"  msgid      INTEGER NOT NULL REFERENCES message (msgid),"
	"  ctime      INTEGER NOT NULL,"
	"  rcpt       TEXT NOT NULL,"
	"  orig_rcpt  TEXT NOT NULL,"
	"  action     TEXT NOT NULL,"
	"  mailbox    TEXT NOT NULL,"
	"  dsn_notify INTEGER NOT NULL,"
	"  orcpt      TEXT NOT NULL,"
	"  state      INTEGER NOT NULL,"
	"  next_try   INTEGER NOT NULL,"
	"  last_try   INTEGER NOT NULL,"
	"  attempts   INTEGER NOT NULL,"
	"  last_error TEXT NOT NULL"
	");"
	"CREATE INDEX envelope_due ON envelope (state, next_try);"
	"CREATE INDEX envelope_msgid ON envelope (msgid);"
	"CREATE INDEX envelope_ctime ON envelope (ctime);",
	/* 2: the local user who submitted a message (-1: from the network) */
	"ALTER TABLE message ADD COLUMN owner INTEGER NOT NULL DEFAULT -1;",
};

_Static_assert(nitems(qdb_migrations) == QUEUE_DB_SCHEMA_VERSION,
    "QUEUE_DB_SCHEMA_VERSION must equal the number of migrations");
_Static_assert(QUEUE_DB_APPLICATION_ID == 1347638354,
    "application_id in migration 1 must match the header");

/* Columns read into a struct queue_envelope by qdb_row_envelope(). */
#define QDB_EVP_COLS \
	"e.evpid, e.msgid, m.sender, e.rcpt, e.orig_rcpt, e.action, " \
	"e.mailbox, e.last_error, e.ctime, e.next_try, e.last_try, " \
	"e.attempts, e.state, e.dsn_notify, m.size, e.orcpt, m.owner"
#define QDB_EVP_FROM \
	" FROM envelope e JOIN message m ON m.msgid = e.msgid"

enum qdb_stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_ROLLBACK_TO,
	STMT_MSG_INSERT,
	STMT_CHUNK_INSERT,
	STMT_EVP_INSERT,
	STMT_RECOVER,
	STMT_DUE,
	STMT_WAKEUP,
	STMT_INFLIGHT,
	STMT_EVP_MSGID,
	STMT_EVP_DELETE,
	STMT_CHUNK_GC,
	STMT_MSG_GC,
	STMT_DEFER,
	STMT_HOLD,
	STMT_UNHOLD,
	STMT_HOLD_ALL,
	STMT_UNHOLD_ALL,
	STMT_SCHEDULE,
	STMT_SCHEDULE_ALL,
	STMT_EVP_GET,
	STMT_LIST,
	STMT_MSG_GET,
	STMT_MSG_EVPS,
	STMT_MSG_SIZE,
	STMT_CHUNKS,
	STMT_COUNT_STATES,
	STMT_COUNT_MSGS,
	STMT_MAX
};

/* must_search: queue_db_check_plans() insists on an index search. */
static const struct {
	const char	*sql;
	int		 must_search;
} qdb_sql[STMT_MAX] = {
	[STMT_BEGIN] = { "BEGIN IMMEDIATE", 0 },
	[STMT_COMMIT] = { "COMMIT", 0 },
	[STMT_ROLLBACK] = { "ROLLBACK", 0 },
	[STMT_SAVEPOINT] = { "SAVEPOINT " QDB_SAVEPOINT, 0 },
	[STMT_RELEASE] = { "RELEASE " QDB_SAVEPOINT, 0 },
	[STMT_ROLLBACK_TO] = { "ROLLBACK TO " QDB_SAVEPOINT, 0 },
	[STMT_MSG_INSERT] = { "INSERT INTO message (msgid, sender, envid, "
	    "dsn_ret, helo, client, ctime, size, owner) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", 0 },
	[STMT_CHUNK_INSERT] = { "INSERT INTO chunk (msgid, seq, data) "
	    "VALUES (?1, ?2, ?3)", 0 },
	[STMT_EVP_INSERT] = { "INSERT INTO envelope (evpid, msgid, ctime, "
	    "rcpt, orig_rcpt, action, mailbox, dsn_notify, orcpt, state, "
	    "next_try, last_try, attempts, last_error) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?3, 0, 0, '')", 0 },
	[STMT_RECOVER] = { "UPDATE envelope SET state = 0, next_try = ?1 "
	    "WHERE state = 1", 1 },
	/*
	 * Two index ranges merged in order: with "state IN (0, 2)" SQLite
	 * would sort every due row before applying the LIMIT.
	 */
	[STMT_DUE] = { "SELECT " QDB_EVP_COLS QDB_EVP_FROM
	    " WHERE e.state = 0 AND e.next_try <= ?1"
	    " UNION ALL SELECT " QDB_EVP_COLS QDB_EVP_FROM
	    " WHERE e.state = 2 AND e.next_try <= ?1"
	    " ORDER BY 10, 1 LIMIT ?2", 1 },
	[STMT_WAKEUP] = { "SELECT min(t) FROM ("
	    "SELECT (SELECT min(next_try) FROM envelope WHERE state = 0) AS t"
	    " UNION ALL "
	    "SELECT (SELECT min(next_try) FROM envelope WHERE state = 2))", 1 },
	[STMT_INFLIGHT] = { "UPDATE envelope SET state = 1, last_try = ?2 "
	    "WHERE evpid = ?1 AND state IN (0, 2)", 1 },
	[STMT_EVP_MSGID] = { "SELECT msgid FROM envelope WHERE evpid = ?1",
	    1 },
	[STMT_EVP_DELETE] = { "DELETE FROM envelope WHERE evpid = ?1", 1 },
	[STMT_CHUNK_GC] = { "DELETE FROM chunk WHERE msgid = ?1 AND NOT "
	    "EXISTS (SELECT 1 FROM envelope WHERE msgid = ?1)", 1 },
	[STMT_MSG_GC] = { "DELETE FROM message WHERE msgid = ?1 AND NOT "
	    "EXISTS (SELECT 1 FROM envelope WHERE msgid = ?1)", 1 },
	[STMT_DEFER] = { "UPDATE envelope SET state = 2, "
	    "attempts = attempts + 1, next_try = ?3, last_try = ?2, "
	    "last_error = ?4 WHERE evpid = ?1 AND state IN (0, 1, 2)", 1 },
	[STMT_HOLD] = { "UPDATE envelope SET state = 3 "
	    "WHERE evpid = ?1 AND state IN (0, 2)", 1 },
	[STMT_UNHOLD] = { "UPDATE envelope SET state = 0, next_try = ?2 "
	    "WHERE evpid = ?1 AND state = 3", 1 },
	[STMT_HOLD_ALL] = { "UPDATE envelope SET state = 3 "
	    "WHERE state IN (0, 2)", 1 },
	[STMT_UNHOLD_ALL] = { "UPDATE envelope SET state = 0, next_try = ?1 "
	    "WHERE state = 3", 1 },
	[STMT_SCHEDULE] = { "UPDATE envelope SET next_try = ?2 "
	    "WHERE evpid = ?1 AND state IN (0, 2) AND next_try > ?2", 1 },
	[STMT_SCHEDULE_ALL] = { "UPDATE envelope SET next_try = ?1 "
	    "WHERE state IN (0, 2) AND next_try > ?1", 1 },
	[STMT_EVP_GET] = { "SELECT " QDB_EVP_COLS QDB_EVP_FROM
	    " WHERE e.evpid = ?1", 1 },
	[STMT_LIST] = { "SELECT " QDB_EVP_COLS QDB_EVP_FROM
	    " ORDER BY e.ctime, e.evpid", 0 },
	[STMT_MSG_GET] = { "SELECT msgid, sender, envid, dsn_ret, helo, "
	    "client, ctime, size, "
	    "(SELECT count(*) FROM envelope WHERE msgid = ?1) "
	    "FROM message WHERE msgid = ?1", 1 },
	[STMT_MSG_EVPS] = { "SELECT " QDB_EVP_COLS QDB_EVP_FROM
	    " WHERE e.msgid = ?1 ORDER BY e.evpid", 1 },
	[STMT_MSG_SIZE] = { "SELECT size FROM message WHERE msgid = ?1", 1 },
	[STMT_CHUNKS] = { "SELECT seq, data FROM chunk WHERE msgid = ?1 "
	    "ORDER BY seq", 1 },
	[STMT_COUNT_STATES] = { "SELECT state, count(*) FROM envelope "
	    "GROUP BY state", 0 },
	[STMT_COUNT_MSGS] = { "SELECT (SELECT count(*) FROM message), "
	    "(SELECT min(ctime) FROM envelope)", 0 },
};

struct queue_db {
	sqlite3		*sqlite;
	sqlite3_stmt	*stmt[STMT_MAX];
	char		 path[PATH_MAX];
};

typedef int (*qdb_evp_cb)(void *, const struct queue_envelope *);

static uint64_t	(*qdb_idgen)(void);

static int	qdb_fail(struct queue_db *, const char *);
static void	qdb_errf(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	qdb_exec1(struct queue_db *, enum qdb_stmt);
static int	qdb_int_pragma(sqlite3 *, const char *, int64_t *);
static int	qdb_set_pragma(sqlite3 *, const char *, int64_t);
static int	qdb_identify(struct queue_db *, int64_t *, char *, size_t);
static int	qdb_setup(struct queue_db *, char *, size_t);
static int	qdb_migrate(struct queue_db *, char *, size_t);
static int	qdb_prepare(struct queue_db *, char *, size_t);
static void	qdb_sync_dir(const char *);
static uint64_t	qdb_new_id(void);
static int	qdb_text_ok(const char *, const char *, size_t);
static int	qdb_message_ok(const struct queue_message_new *);
static int	qdb_insert_id(struct queue_db *, sqlite3_stmt *, uint64_t *,
		    const char *);
static int	qdb_store_message(struct queue_db *,
		    struct queue_message_new *);
static int	qdb_savepoint(struct queue_db *);
static int	qdb_savepoint_end(struct queue_db *, int);
static int	qdb_col_text(sqlite3_stmt *, int, char *, size_t);
static int	qdb_row_envelope(sqlite3_stmt *, struct queue_envelope *);
static int	qdb_iterate(struct queue_db *, sqlite3_stmt *, qdb_evp_cb,
		    void *, const char *);
static int	qdb_update(struct queue_db *, enum qdb_stmt, uint64_t, int,
		    int64_t, int64_t, const char *);
static int	qdb_write_cb(void *, const uint8_t *, size_t);
static int	qdb_plan_ok(struct queue_db *, const char *, char *, size_t);

/* Log the connection's last error for operation op; returns -1. */
static int
qdb_fail(struct queue_db *db, const char *op)
{
	log_warnx("queue_db op=%s error=\"%s\" code=%d", op,
	    sqlite3_errmsg(db->sqlite), sqlite3_extended_errcode(db->sqlite));
	return -1;
}

/* Format an error for the caller's buffer (it may be NULL). */
static void
qdb_errf(char *err, size_t errsz, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(err, errsz, fmt, ap) < 0)
		strlcpy(err, "queue_db: error", errsz);
	va_end(ap);
}

/* Step a parameterless prepared statement once to completion. */
static int
qdb_exec1(struct queue_db *db, enum qdb_stmt s)
{
	sqlite3_stmt	*st = db->stmt[s];
	int		 rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	return 0;
}

/* Read a PRAGMA (or any one-integer query) into *v. */
static int
qdb_int_pragma(sqlite3 *h, const char *sql, int64_t *v)
{
	sqlite3_stmt	*st;
	int		 rc;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Set a numeric PRAGMA that answers with its new value; check it. */
static int
qdb_set_pragma(sqlite3 *h, const char *name, int64_t value)
{
	char	 sql[128];
	int64_t	 got;
	int	 n;

	n = snprintf(sql, sizeof(sql), "PRAGMA %s = %" PRId64, name, value);
	if (n < 0 || (size_t)n >= sizeof(sql))
		return -1;
	if (qdb_int_pragma(h, sql, &got) == -1 || got != value)
		return -1;
	return 0;
}

/* Read the schema version; -1 with err set if the file is not ours. */
static int
qdb_identify(struct queue_db *db, int64_t *version, char *err, size_t errsz)
{
	sqlite3		*h = db->sqlite;
	int64_t		 appid, nobjects;

	if (qdb_int_pragma(h, "PRAGMA user_version", version) == -1 ||
	    qdb_int_pragma(h, "PRAGMA application_id", &appid) == -1 ||
	    qdb_int_pragma(h, "SELECT count(*) FROM sqlite_schema",
	    &nobjects) == -1) {
		qdb_errf(err, errsz, "%s: %s", db->path, sqlite3_errmsg(h));
		return -1;
	}
	if (*version == 0 ? nobjects != 0 :
	    appid != QUEUE_DB_APPLICATION_ID) {
		qdb_errf(err, errsz, "%s: not a Postern queue database",
		    db->path);
		return -1;
	}
	if (*version > QUEUE_DB_SCHEMA_VERSION) {
		qdb_errf(err, errsz, "%s: schema version %" PRId64 " is newer "
		    "than this program supports (%d)", db->path, *version,
		    QUEUE_DB_SCHEMA_VERSION);
		return -1;
	}
	if (*version < 0) {
		qdb_errf(err, errsz, "%s: invalid schema version %" PRId64,
		    db->path, *version);
		return -1;
	}
	return 0;
}

/* Connection settings: hardening, WAL, full sync; checked, not assumed. */
static int
qdb_setup(struct queue_db *db, char *err, size_t errsz)
{
	sqlite3		*h = db->sqlite;
	sqlite3_stmt	*st;
	char		 mode[16] = "";
	int64_t		 v;
	int		 rc;

	sqlite3_extended_result_codes(h, 1);
	if (sqlite3_db_config(h, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) !=
	    SQLITE_OK ||
	    sqlite3_db_config(h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL) !=
	    SQLITE_OK ||
	    sqlite3_db_config(h, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0,
	    NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_busy_timeout(h, QDB_BUSY_TIMEOUT_MS) != SQLITE_OK)
		goto fail;
	/* Change nothing in a file that is not ours. */
	if (qdb_identify(db, &v, err, errsz) == -1)
		return -1;

	if (sqlite3_prepare_v2(h, "PRAGMA journal_mode = WAL", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		strlcpy(mode, (const char *)sqlite3_column_text(st, 0),
		    sizeof(mode));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		goto fail;
	if (strcmp(mode, "wal") != 0) {
		qdb_errf(err, errsz, "%s: cannot enable WAL (journal mode %s)",
		    db->path, mode);
		return -1;
	}

	if (sqlite3_exec(h,
	    "PRAGMA synchronous = FULL;"
	    "PRAGMA foreign_keys = ON;"
	    "PRAGMA temp_store = MEMORY;"
	    "PRAGMA trusted_schema = OFF;", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (qdb_set_pragma(h, "wal_autocheckpoint", QDB_AUTOCHECKPOINT) ==
	    -1 ||
	    qdb_set_pragma(h, "journal_size_limit", QDB_JOURNAL_LIMIT) == -1)
		goto fail;

	if (qdb_int_pragma(h, "PRAGMA synchronous", &v) == -1 || v != 2) {
		qdb_errf(err, errsz, "%s: cannot set synchronous=FULL",
		    db->path);
		return -1;
	}
	if (qdb_int_pragma(h, "PRAGMA foreign_keys", &v) == -1 || v != 1) {
		qdb_errf(err, errsz, "%s: cannot enable foreign keys",
		    db->path);
		return -1;
	}
	return 0;
 fail:
	qdb_errf(err, errsz, "%s: %s", db->path, sqlite3_errmsg(h));
	return -1;
}

/* Bring the schema to QUEUE_DB_SCHEMA_VERSION in one transaction. */
static int
qdb_migrate(struct queue_db *db, char *err, size_t errsz)
{
	sqlite3		*h = db->sqlite;
	int64_t		 version;
	char		 sql[64];
	int		 n;

	if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	/* Again, now that no other connection can change it. */
	if (qdb_identify(db, &version, err, errsz) == -1)
		goto out;
	for (; version < QUEUE_DB_SCHEMA_VERSION; version++) {
		if (sqlite3_exec(h, qdb_migrations[version], NULL, NULL,
		    NULL) != SQLITE_OK)
			goto fail;
		n = snprintf(sql, sizeof(sql), "PRAGMA user_version = %" PRId64,
		    version + 1);
		if (n < 0 || (size_t)n >= sizeof(sql))
			goto fail;
		if (sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto fail;
		log_info("queue_db op=migrate path=%s version=%" PRId64,
		    db->path, version + 1);
	}
	if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
 fail:
	qdb_errf(err, errsz, "%s: schema: %s", db->path, sqlite3_errmsg(h));
 out:
	if (!sqlite3_get_autocommit(h))
		sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Prepare every statement once, for the life of the connection. */
static int
qdb_prepare(struct queue_db *db, char *err, size_t errsz)
{
	size_t	 i;

	for (i = 0; i < STMT_MAX; i++) {
		if (sqlite3_prepare_v3(db->sqlite, qdb_sql[i].sql, -1,
		    SQLITE_PREPARE_PERSISTENT, &db->stmt[i], NULL) !=
		    SQLITE_OK) {
			qdb_errf(err, errsz, "%s: prepare statement %zu: %s",
			    db->path, i, sqlite3_errmsg(db->sqlite));
			return -1;
		}
	}
	return 0;
}

/* Make the new database's directory entry durable. */
static void
qdb_sync_dir(const char *dir)
{
	int	 fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		log_warn("queue_db op=open-dir path=%s", dir);
		return;
	}
	if (fsync(fd) == -1)
		log_warn("queue_db op=fsync-dir path=%s", dir);
	close(fd);
}

int
queue_db_open(struct queue_db **dbp, const char *spool_dir, char *err,
    size_t errsz)
{
	struct queue_db	*db;
	struct stat	 sb;
	int		 fd, n, rc;

	*dbp = NULL;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if ((db = calloc(1, sizeof(*db))) == NULL) {
		qdb_errf(err, errsz, "queue_db: %s", strerror(errno));
		return -1;
	}
	n = snprintf(db->path, sizeof(db->path), "%s/%s", spool_dir,
	    QUEUE_DB_FILE);
	if (n < 0 || (size_t)n >= sizeof(db->path)) {
		qdb_errf(err, errsz, "queue_db: spool path too long");
		free(db);
		return -1;
	}

	/* Create it ourselves: mode 0600 (SQLite copies it to -wal and
	 * -shm), and never through a symlink. */
	fd = open(db->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 || fstat(fd, &sb) == -1) {
		qdb_errf(err, errsz, "%s: %s", db->path, strerror(errno));
		if (fd != -1)
			close(fd);
		free(db);
		return -1;
	}
	close(fd);
	if (!S_ISREG(sb.st_mode)) {
		qdb_errf(err, errsz, "%s: not a regular file", db->path);
		free(db);
		return -1;
	}

	rc = sqlite3_open_v2(db->path, &db->sqlite, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		qdb_errf(err, errsz, "%s: %s", db->path, db->sqlite != NULL ?
		    sqlite3_errmsg(db->sqlite) : sqlite3_errstr(rc));
		goto fail;
	}
	if (qdb_setup(db, err, errsz) == -1 ||
	    qdb_migrate(db, err, errsz) == -1 ||
	    qdb_prepare(db, err, errsz) == -1)
		goto fail;
	qdb_sync_dir(spool_dir);
	*dbp = db;
	return 0;
 fail:
	queue_db_close(db);
	return -1;
}

void
queue_db_close(struct queue_db *db)
{
	size_t	 i;

	if (db == NULL)
		return;
	for (i = 0; i < STMT_MAX; i++)
		sqlite3_finalize(db->stmt[i]);
	if (db->sqlite != NULL && sqlite3_close(db->sqlite) != SQLITE_OK)
		log_warnx("queue_db op=close error=\"%s\"",
		    sqlite3_errmsg(db->sqlite));
	free(db);
}

int
queue_db_begin(struct queue_db *db)
{
	if (!sqlite3_get_autocommit(db->sqlite)) {
		log_warnx("queue_db op=begin error=\"transaction already "
		    "open\"");
		return -1;
	}
	if (qdb_exec1(db, STMT_BEGIN) == -1)
		return qdb_fail(db, "begin");
	return 0;
}

int
queue_db_commit(struct queue_db *db)
{
	if (qdb_exec1(db, STMT_COMMIT) == -1)
		return qdb_fail(db, "commit");
	return 0;
}

int
queue_db_rollback(struct queue_db *db)
{
	if (sqlite3_get_autocommit(db->sqlite))
		return 0;
	if (qdb_exec1(db, STMT_ROLLBACK) == -1)
		return qdb_fail(db, "rollback");
	return 0;
}

void
queue_db_set_id_generator(uint64_t (*gen)(void))
{
	qdb_idgen = gen;
}

/* A random nonzero id. */
static uint64_t
qdb_new_id(void)
{
	uint64_t	 id;

	do {
		if (qdb_idgen != NULL)
			id = qdb_idgen();
		else
			arc4random_buf(&id, sizeof(id));
	} while (id == 0);
	return id;
}

/* Whether s is a string shorter than size; logs the refusal. */
static int
qdb_text_ok(const char *what, const char *s, size_t size)
{
	if (s == NULL) {
		log_warnx("queue_db op=add error=\"%s is NULL\"", what);
		return 0;
	}
	if (strnlen(s, size) >= size) {
		log_warnx("queue_db op=add error=\"%s longer than %zu bytes\"",
		    what, size - 1);
		return 0;
	}
	return 1;
}

/* Validate a whole message before anything is written. */
static int
qdb_message_ok(const struct queue_message_new *msg)
{
	const struct queue_envelope_new	*e;
	size_t				 i;

	if (!qdb_text_ok("sender", msg->sender, QUEUE_DB_ADDR_SIZE) ||
	    !qdb_text_ok("envid", msg->envid, QUEUE_DB_ADDR_SIZE) ||
	    !qdb_text_ok("helo", msg->helo, QUEUE_DB_ADDR_SIZE) ||
	    !qdb_text_ok("client", msg->client, QUEUE_DB_ADDR_SIZE))
		return 0;
	if (msg->dsn_ret < 0 || msg->dsn_ret > 2) {
		log_warnx("queue_db op=add error=\"dsn_ret %d\"", msg->dsn_ret);
		return 0;
	}
	if (msg->body == NULL && msg->bodylen != 0) {
		log_warnx("queue_db op=add error=\"no body\"");
		return 0;
	}
	if (msg->bodylen > INT64_MAX) {
		log_warnx("queue_db op=add error=\"body too large\"");
		return 0;
	}
	if (msg->nevps == 0 || msg->evps == NULL) {
		log_warnx("queue_db op=add error=\"no envelope\"");
		return 0;
	}
	for (i = 0; i < msg->nevps; i++) {
		e = &msg->evps[i];
		if (!qdb_text_ok("rcpt", e->rcpt, QUEUE_DB_ADDR_SIZE) ||
		    !qdb_text_ok("orig_rcpt", e->orig_rcpt,
		    QUEUE_DB_ADDR_SIZE) ||
		    !qdb_text_ok("action", e->action, QUEUE_DB_ACTION_SIZE) ||
		    !qdb_text_ok("mailbox", e->mailbox, QUEUE_DB_ADDR_SIZE) ||
		    !qdb_text_ok("orcpt", e->orcpt, QUEUE_DB_ORCPT_SIZE))
			return 0;
	}
	return 1;
}

/*
 * Step an INSERT whose ?1 is a fresh random id (other parameters already
 * bound), drawing a new id while it collides with an existing one.
 */
static int
qdb_insert_id(struct queue_db *db, sqlite3_stmt *st, uint64_t *id,
    const char *op)
{
	int	 i, rc, preset = *id != 0;

	for (i = 0; i < QDB_ID_TRIES; i++) {
		/* A preset id (announced already) is tried once only. */
		if (!preset)
			*id = qdb_new_id();
		else if (i > 0)
			break;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)*id);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_CONSTRAINT_PRIMARYKEY)
			return qdb_fail(db, op);
		log_debug("queue_db op=%s id=%016" PRIx64 " collision", op,
		    *id);
	}
	log_warnx("queue_db op=%s error=\"no free id after %d tries\"", op,
	    QDB_ID_TRIES);
	return -1;
}

/* The inserts of queue_db_add_message(), inside its savepoint. */
static int
qdb_store_message(struct queue_db *db, struct queue_message_new *msg)
{
	sqlite3_stmt			*st;
	struct queue_envelope_new	*e;
	size_t				 i, off, len;
	int64_t				 seq;
	int				 rc;

	st = db->stmt[STMT_MSG_INSERT];
	sqlite3_bind_text(st, 2, msg->sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, msg->envid, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, msg->dsn_ret);
	sqlite3_bind_text(st, 5, msg->helo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, msg->client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, msg->ctime);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)msg->bodylen);
	sqlite3_bind_int64(st, 9, msg->owner);
	rc = qdb_insert_id(db, st, &msg->msgid, "add-message");
	sqlite3_clear_bindings(st);
	if (rc == -1)
		return -1;

	st = db->stmt[STMT_CHUNK_INSERT];
	for (off = 0, seq = 0; off < msg->bodylen; off += len, seq++) {
		len = msg->bodylen - off;
		if (len > QUEUE_DB_CHUNK_SIZE)
			len = QUEUE_DB_CHUNK_SIZE;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)msg->msgid);
		sqlite3_bind_int64(st, 2, seq);
		sqlite3_bind_blob64(st, 3, msg->body + off, len,
		    SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc != SQLITE_DONE)
			return qdb_fail(db, "add-chunk");
	}

	st = db->stmt[STMT_EVP_INSERT];
	for (i = 0; i < msg->nevps; i++) {
		e = &msg->evps[i];
		sqlite3_bind_int64(st, 2, (sqlite3_int64)msg->msgid);
		sqlite3_bind_int64(st, 3, msg->ctime);
		sqlite3_bind_text(st, 4, e->rcpt, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, e->orig_rcpt, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, e->action, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, e->mailbox, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 8, e->dsn_notify);
		sqlite3_bind_text(st, 9, e->orcpt, -1, SQLITE_STATIC);
		rc = qdb_insert_id(db, st, &e->evpid, "add-envelope");
		sqlite3_clear_bindings(st);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/* Open a savepoint: nested in the caller's transaction or its own one. */
static int
qdb_savepoint(struct queue_db *db)
{
	if (qdb_exec1(db, STMT_SAVEPOINT) == -1)
		return qdb_fail(db, "savepoint");
	return 0;
}

/*
 * Close the savepoint: release it when ok, else undo what it covered.  If
 * SQLite already abandoned the whole transaction there is nothing left to
 * undo.  Returns 0 if the work is kept, -1 otherwise.
 */
static int
qdb_savepoint_end(struct queue_db *db, int ok)
{
	if (ok) {
		if (qdb_exec1(db, STMT_RELEASE) == 0)
			return 0;
		qdb_fail(db, "release");
		/* A failed outermost RELEASE is a failed COMMIT. */
	}
	if (sqlite3_get_autocommit(db->sqlite))
		return -1;
	if (qdb_exec1(db, STMT_ROLLBACK_TO) == -1 ||
	    qdb_exec1(db, STMT_RELEASE) == -1)
		qdb_fail(db, "rollback-to");
	return -1;
}

int
queue_db_add_message(struct queue_db *db, struct queue_message_new *msg)
{
	if (sqlite3_get_autocommit(db->sqlite)) {
		log_warnx("queue_db op=add error=\"not inside a transaction\"");
		return -1;
	}
	if (!qdb_message_ok(msg))
		return -1;
	if (qdb_savepoint(db) == -1)
		return -1;
	return qdb_savepoint_end(db, qdb_store_message(db, msg) == 0);
}

int
queue_db_recover(struct queue_db *db, int64_t now)
{
	sqlite3_stmt	*st = db->stmt[STMT_RECOVER];
	int		 rc;

	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return qdb_fail(db, "recover");
	return sqlite3_changes(db->sqlite);
}

/* Copy a TEXT column into dst; -1 if NULL, too long or holding a NUL. */
static int
qdb_col_text(sqlite3_stmt *st, int col, char *dst, size_t dstsz)
{
	const unsigned char	*s;
	int			 n;

	if (sqlite3_column_type(st, col) != SQLITE_TEXT)
		return -1;
	s = sqlite3_column_text(st, col);
	n = sqlite3_column_bytes(st, col);
	if (s == NULL || n < 0 || (size_t)n >= dstsz ||
	    memchr(s, '\0', n) != NULL)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* Read a QDB_EVP_COLS row; -1 (and a log line) if it is malformed. */
static int
qdb_row_envelope(sqlite3_stmt *st, struct queue_envelope *e)
{
	int64_t	 attempts, state, notify, size;

	memset(e, 0, sizeof(*e));
	e->evpid = (uint64_t)sqlite3_column_int64(st, 0);
	e->msgid = (uint64_t)sqlite3_column_int64(st, 1);
	e->ctime = sqlite3_column_int64(st, 8);
	e->next_try = sqlite3_column_int64(st, 9);
	e->last_try = sqlite3_column_int64(st, 10);
	attempts = sqlite3_column_int64(st, 11);
	state = sqlite3_column_int64(st, 12);
	notify = sqlite3_column_int64(st, 13);
	size = sqlite3_column_int64(st, 14);
	e->owner = sqlite3_column_int64(st, 16);
	if (qdb_col_text(st, 2, e->sender, sizeof(e->sender)) == -1 ||
	    qdb_col_text(st, 3, e->rcpt, sizeof(e->rcpt)) == -1 ||
	    qdb_col_text(st, 4, e->orig_rcpt, sizeof(e->orig_rcpt)) == -1 ||
	    qdb_col_text(st, 5, e->action, sizeof(e->action)) == -1 ||
	    qdb_col_text(st, 6, e->mailbox, sizeof(e->mailbox)) == -1 ||
	    qdb_col_text(st, 7, e->last_error, sizeof(e->last_error)) == -1 ||
	    qdb_col_text(st, 15, e->orcpt, sizeof(e->orcpt)) == -1 ||
	    attempts < 0 || attempts > UINT32_MAX ||
	    state < EVP_PENDING || state > EVP_HELD ||
	    notify < 0 || notify > UINT32_MAX ||
	    size < 0 || (uint64_t)size > SIZE_MAX) {
		log_warnx("queue_db op=read evpid=%016" PRIx64 " error=\"bad "
		    "row\"", e->evpid);
		return -1;
	}
	e->attempts = (uint32_t)attempts;
	e->state = (int)state;
	e->dsn_notify = (uint32_t)notify;
	e->size = (size_t)size;
	return 0;
}

/*
 * Run a bound envelope query and pass each row to cb.  A malformed row is
 * logged and skipped, so that one damaged envelope cannot stop the queue.
 */
static int
qdb_iterate(struct queue_db *db, sqlite3_stmt *st, qdb_evp_cb cb, void *arg,
    const char *op)
{
	struct queue_envelope	 e;
	int			 rc, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (qdb_row_envelope(st, &e) == -1)
			continue;
		n++;
		if (cb(arg, &e) == -1) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		qdb_fail(db, op);
		n = -1;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return n;
}

int
queue_db_due(struct queue_db *db, int64_t now, size_t max, qdb_evp_cb cb,
    void *arg)
{
	sqlite3_stmt	*st = db->stmt[STMT_DUE];

	if (max == 0)
		return 0;
	if (max > INT_MAX)
		max = INT_MAX;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	return qdb_iterate(db, st, cb, arg, "due");
}

int
queue_db_next_wakeup(struct queue_db *db, int64_t *when)
{
	sqlite3_stmt	*st = db->stmt[STMT_WAKEUP];
	int		 rc, found = 0;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*when = sqlite3_column_int64(st, 0);
		found = 1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return qdb_fail(db, "next-wakeup");
	return found;
}

/*
 * Run one single-row UPDATE keyed by evpid (?1), with up to two integer
 * parameters (?2, ?3, nint of them) and a text one (?4 if text != NULL).
 * Returns 1 if the row changed, 0 if none matched, -1 on error.
 */
static int
qdb_update(struct queue_db *db, enum qdb_stmt s, uint64_t evpid, int nint,
    int64_t a, int64_t b, const char *text)
{
	sqlite3_stmt	*st = db->stmt[s];
	int		 rc;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)evpid);
	if (nint >= 1)
		sqlite3_bind_int64(st, 2, a);
	if (nint >= 2)
		sqlite3_bind_int64(st, 3, b);
	if (text != NULL)
		sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return qdb_fail(db, "update");
	return sqlite3_changes(db->sqlite) > 0 ? 1 : 0;
}

int
queue_db_set_inflight(struct queue_db *db, uint64_t evpid, int64_t now)
{
	return qdb_update(db, STMT_INFLIGHT, evpid, 1, now, 0, NULL);
}

int
queue_db_remove_envelope(struct queue_db *db, uint64_t evpid)
{
	sqlite3_stmt	*st;
	uint64_t	 msgid = 0;
	int		 rc, found = 0, ok = 0;
	enum qdb_stmt	 gc[] = { STMT_CHUNK_GC, STMT_MSG_GC };
	size_t		 i;

	if (qdb_savepoint(db) == -1)
		return -1;

	st = db->stmt[STMT_EVP_MSGID];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)evpid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		msgid = (uint64_t)sqlite3_column_int64(st, 0);
		found = 1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		qdb_fail(db, "remove");
		goto out;
	}
	if (!found) {
		ok = 1;
		goto out;
	}
	if (qdb_update(db, STMT_EVP_DELETE, evpid, 0, 0, 0, NULL) == -1)
		goto out;
	/* The chunks and the message go with the last envelope. */
	for (i = 0; i < nitems(gc); i++)
		if (qdb_update(db, gc[i], msgid, 0, 0, 0, NULL) == -1)
			goto out;
	ok = 1;
 out:
	if (qdb_savepoint_end(db, ok) == -1)
		return -1;
	return found;
}

int
queue_db_defer(struct queue_db *db, uint64_t evpid, int64_t now,
    int64_t next_try, const char *error)
{
	if (error == NULL || strnlen(error, QUEUE_DB_ERROR_SIZE) >=
	    QUEUE_DB_ERROR_SIZE) {
		log_warnx("queue_db op=defer evpid=%016" PRIx64 " error=\"bad "
		    "error text\"", evpid);
		return -1;
	}
	return qdb_update(db, STMT_DEFER, evpid, 2, now, next_try, error);
}

int
queue_db_hold(struct queue_db *db, uint64_t evpid, int hold)
{
	if (hold)
		return qdb_update(db, STMT_HOLD, evpid, 0, 0, 0, NULL);
	return qdb_update(db, STMT_UNHOLD, evpid, 1, (int64_t)time(NULL), 0,
	    NULL);
}

int
queue_db_schedule(struct queue_db *db, uint64_t evpid, int64_t now)
{
	return qdb_update(db, STMT_SCHEDULE, evpid, 1, now, 0, NULL);
}

int
queue_db_hold_all(struct queue_db *db, int hold, int64_t now)
{
	sqlite3_stmt	*st;
	int		 rc;

	st = db->stmt[hold ? STMT_HOLD_ALL : STMT_UNHOLD_ALL];
	if (!hold)
		sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return qdb_fail(db, "hold-all");
	return sqlite3_changes(db->sqlite);
}

int
queue_db_schedule_all(struct queue_db *db, int64_t now)
{
	sqlite3_stmt	*st = db->stmt[STMT_SCHEDULE_ALL];
	int		 rc;

	sqlite3_bind_int64(st, 1, now);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return qdb_fail(db, "schedule-all");
	return sqlite3_changes(db->sqlite);
}

int
queue_db_envelope(struct queue_db *db, uint64_t evpid,
    struct queue_envelope *out)
{
	sqlite3_stmt	*st = db->stmt[STMT_EVP_GET];
	int		 rc, ret;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)evpid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ret = qdb_row_envelope(st, out) == 0 ? 1 : -1;
	else if (rc == SQLITE_DONE)
		ret = 0;
	else
		ret = qdb_fail(db, "envelope");
	sqlite3_reset(st);
	return ret;
}

int
queue_db_message(struct queue_db *db, uint64_t msgid,
    struct queue_message *out)
{
	sqlite3_stmt	*st = db->stmt[STMT_MSG_GET];
	int64_t		 dsn_ret, size, nevps;
	int		 rc, ret = 0;

	sqlite3_bind_int64(st, 1, (sqlite3_int64)msgid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		out->msgid = (uint64_t)sqlite3_column_int64(st, 0);
		dsn_ret = sqlite3_column_int64(st, 3);
		out->ctime = sqlite3_column_int64(st, 6);
		size = sqlite3_column_int64(st, 7);
		nevps = sqlite3_column_int64(st, 8);
		ret = 1;
		if (qdb_col_text(st, 1, out->sender, sizeof(out->sender)) ||
		    qdb_col_text(st, 2, out->envid, sizeof(out->envid)) ||
		    qdb_col_text(st, 4, out->helo, sizeof(out->helo)) ||
		    qdb_col_text(st, 5, out->client, sizeof(out->client)) ||
		    dsn_ret < 0 || dsn_ret > 2 || size < 0 ||
		    (uint64_t)size > SIZE_MAX || nevps < 0) {
			log_warnx("queue_db op=message msgid=%016" PRIx64
			    " error=\"bad row\"", msgid);
			ret = -1;
		} else {
			out->dsn_ret = (int)dsn_ret;
			out->size = (size_t)size;
			out->nevps = (size_t)nevps;
		}
	} else if (rc != SQLITE_DONE)
		ret = qdb_fail(db, "message");
	sqlite3_reset(st);
	return ret;
}

int
queue_db_list(struct queue_db *db, qdb_evp_cb cb, void *arg)
{
	return qdb_iterate(db, db->stmt[STMT_LIST], cb, arg, "list");
}

int
queue_db_message_envelopes(struct queue_db *db, uint64_t msgid,
    qdb_evp_cb cb, void *arg)
{
	sqlite3_stmt	*st = db->stmt[STMT_MSG_EVPS];

	sqlite3_bind_int64(st, 1, (sqlite3_int64)msgid);
	return qdb_iterate(db, st, cb, arg, "message-envelopes");
}

ssize_t
queue_db_read_body(struct queue_db *db, uint64_t msgid,
    int (*cb)(void *, const uint8_t *, size_t), void *arg)
{
	sqlite3_stmt	*st;
	const void	*data;
	int64_t		 size = -1, seq, total = 0;
	int		 rc, len;

	st = db->stmt[STMT_MSG_SIZE];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)msgid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		size = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		errno = ENOENT;
		return -1;
	}
	if (rc != SQLITE_ROW)
		return qdb_fail(db, "read-body");
	if (size < 0 || size > SSIZE_MAX)
		goto bad;

	st = db->stmt[STMT_CHUNKS];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)msgid);
	for (seq = 0; (rc = sqlite3_step(st)) == SQLITE_ROW; seq++) {
		data = sqlite3_column_blob(st, 1);
		len = sqlite3_column_bytes(st, 1);
		if (sqlite3_column_int64(st, 0) != seq || len <= 0 ||
		    len > QUEUE_DB_CHUNK_SIZE || len > size - total ||
		    data == NULL) {
			sqlite3_reset(st);
			goto bad;
		}
		total += len;
		if (cb(arg, data, (size_t)len) == -1) {
			sqlite3_reset(st);
			return -1;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return qdb_fail(db, "read-body");
	if (total != size)
		goto bad;
	return (ssize_t)total;
 bad:
	log_warnx("queue_db op=read-body msgid=%016" PRIx64 " error=\"chunks "
	    "do not match the message size\"", msgid);
	errno = EIO;
	return -1;
}

/* queue_db_read_body() callback: write all of a chunk to *(int *)arg. */
static int
qdb_write_cb(void *arg, const uint8_t *buf, size_t len)
{
	struct pollfd	 pfd;
	int		 fd = *(int *)arg;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				pfd.fd = fd;
				pfd.events = POLLOUT;
				if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
					return -1;
				continue;
			}
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t
queue_db_write_body(struct queue_db *db, uint64_t msgid, int fd)
{
	ssize_t	 n;

	n = queue_db_read_body(db, msgid, qdb_write_cb, &fd);
	if (n == -1 && errno != ENOENT)
		log_warn("queue_db op=write-body msgid=%016" PRIx64, msgid);
	return n;
}

int
queue_db_counts(struct queue_db *db, size_t counts[4], size_t *messages,
    int64_t *oldest)
{
	sqlite3_stmt	*st;
	int64_t		 state, n;
	int		 rc;

	memset(counts, 0, 4 * sizeof(counts[0]));
	st = db->stmt[STMT_COUNT_STATES];
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		state = sqlite3_column_int64(st, 0);
		n = sqlite3_column_int64(st, 1);
		if (state >= EVP_PENDING && state <= EVP_HELD && n >= 0)
			counts[state] = (size_t)n;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return qdb_fail(db, "counts");

	st = db->stmt[STMT_COUNT_MSGS];
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_int64(st, 0);
		*messages = n > 0 ? (size_t)n : 0;
		*oldest = sqlite3_column_int64(st, 1);	/* NULL reads as 0 */
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return qdb_fail(db, "counts");
	return 0;
}

int
queue_db_check(struct queue_db *db, char *err, size_t errsz)
{
	sqlite3_stmt		*st;
	const unsigned char	*s;
	int			 rc, clean = 1;

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (sqlite3_prepare_v2(db->sqlite, "PRAGMA integrity_check", -1, &st,
	    NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s = sqlite3_column_text(st, 0);
		if (s == NULL || strcmp((const char *)s, "ok") != 0) {
			if (clean)
				qdb_errf(err, errsz, "integrity_check: %s",
				    s != NULL ? (const char *)s : "?");
			clean = 0;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		goto fail;
	if (!clean)
		return -1;

	if (sqlite3_prepare_v2(db->sqlite, "PRAGMA foreign_key_check", -1,
	    &st, NULL) != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s = sqlite3_column_text(st, 0);
		qdb_errf(err, errsz, "foreign_key_check: orphan row %lld in %s",
		    (long long)sqlite3_column_int64(st, 1),
		    s != NULL ? (const char *)s : "?");
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return -1;
	if (rc != SQLITE_DONE)
		goto fail;
	return 0;
 fail:
	qdb_errf(err, errsz, "%s: %s", db->path, sqlite3_errmsg(db->sqlite));
	return -1;
}

/* Whether the plan of sql searches indexes only (no scan, no sort). */
static int
qdb_plan_ok(struct queue_db *db, const char *sql, char *err, size_t errsz)
{
	sqlite3_stmt	*st;
	char		 eqp[4096];
	const char	*d;
	int		 n, rc, ok = 1;

	n = snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
	if (n < 0 || (size_t)n >= sizeof(eqp)) {
		qdb_errf(err, errsz, "statement too long: %s", sql);
		return -1;
	}
	if (sqlite3_prepare_v2(db->sqlite, eqp, -1, &st, NULL) != SQLITE_OK) {
		qdb_errf(err, errsz, "%s", sqlite3_errmsg(db->sqlite));
		return -1;
	}
	/* Columns: id, parent, notused, detail. */
	while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((d = (const char *)sqlite3_column_text(st, 3)) == NULL)
			continue;
		if ((strncmp(d, "SCAN ", 5) == 0 &&
		    strcmp(d, "SCAN CONSTANT ROW") != 0 &&
		    strncmp(d, "SCAN (subquery", 14) != 0) ||
		    strstr(d, "TEMP B-TREE") != NULL) {
			qdb_errf(err, errsz, "%s: %s", d, sql);
			ok = 0;
		}
	}
	sqlite3_finalize(st);
	if (ok && rc != SQLITE_DONE) {
		qdb_errf(err, errsz, "%s", sqlite3_errmsg(db->sqlite));
		return -1;
	}
	return ok ? 0 : -1;
}

int
queue_db_check_plans(struct queue_db *db, char *err, size_t errsz)
{
	size_t	 i;

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	for (i = 0; i < STMT_MAX; i++)
		if (qdb_sql[i].must_search &&
		    qdb_plan_ok(db, qdb_sql[i].sql, err, errsz) == -1)
			return -1;
	return 0;
}

int
queue_db_set_max_size(struct queue_db *db, uint64_t max_bytes)
{
	char		 sql[64];
	int64_t		 pagesz, pages, got;
	int		 n;

	if (qdb_int_pragma(db->sqlite, "PRAGMA page_size", &pagesz) == -1 ||
	    pagesz <= 0)
		return qdb_fail(db, "max-size");
	if (max_bytes == 0 || max_bytes / (uint64_t)pagesz > UINT32_MAX - 1)
		pages = UINT32_MAX - 1;		/* SQLite's own maximum */
	else
		pages = (int64_t)(max_bytes / (uint64_t)pagesz);
	if (pages < 1)
		pages = 1;
	n = snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %" PRId64,
	    pages);
	if (n < 0 || (size_t)n >= sizeof(sql))
		return -1;
	if (qdb_int_pragma(db->sqlite, sql, &got) == -1)
		return qdb_fail(db, "max-size");
	return 0;
}
