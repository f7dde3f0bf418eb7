/*
 * queue_db.h: the durable message store of the queue process, one SQLite
 * database (QUEUE_DB_FILE) in the spool: messages, their bodies in chunks
 * of at most 1 MiB, and one envelope per recipient with its delivery state.
 * SECURITY: runs in the queue process only (unprivileged, chrooted to the
 * spool); the only process linked against SQLite.  Strings from peers are
 * bound as parameters, never spliced into SQL, and bounded on the way in.
 */
#ifndef POSTERN_QUEUE_DB_H
#define POSTERN_QUEUE_DB_H

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_DB_FILE		"queue.db"
#define QUEUE_DB_SCHEMA_VERSION	2	/* PRAGMA user_version written */
#define QUEUE_DB_APPLICATION_ID	0x50535452	/* "PSTR" */
#define QUEUE_DB_CHUNK_SIZE	(1024 * 1024)	/* body bytes per chunk row */

/*
 * Buffer sizes, NUL included: a string must be strictly shorter than its
 * size, or queue_db_add_message() refuses the whole message (never
 * truncates).  Callers must bound what they pass accordingly.
 */
#define QUEUE_DB_ADDR_SIZE	600	/* sender, rcpt, orig_rcpt, mailbox,
					   envid, helo, client */
#define QUEUE_DB_ORCPT_SIZE	616	/* "rfc822;" + address, as proto.h */
#define QUEUE_DB_ACTION_SIZE	64
#define QUEUE_DB_ERROR_SIZE	1024	/* last_error */

struct queue_db;

enum envelope_state {
	EVP_PENDING = 0,	/* waiting for next_try */
	EVP_INFLIGHT = 1,	/* being delivered; PENDING after a restart */
	EVP_DEFERRED = 2,	/* temporary failure, waiting for next_try */
	EVP_HELD = 3,		/* frozen by the administrator */
};

struct queue_envelope_new {
	const char	*rcpt;		/* final recipient (after aliases) */
	const char	*orig_rcpt;	/* as given at RCPT TO */
	const char	*action;	/* action name from the config */
	const char	*mailbox;	/* local mailbox or user, "" = relay */
	uint32_t	 dsn_notify;	/* bit mask, 0 = default */
	const char	*orcpt;		/* DSN ORCPT, "" if none */
	uint64_t	 evpid;		/* out: random, nonzero, unique */
};

struct queue_message_new {
	uint64_t	 msgid;		/* in: 0, or an id already announced;
				   out: random, nonzero, unique */
	const char	*sender;	/* "" for the null sender */
	const char	*envid;		/* DSN ENVID, "" if none */
	int		 dsn_ret;	/* 0 none, 1 FULL, 2 HDRS */
	const char	*helo;
	const char	*client;
	int64_t		 owner;		/* submitting local uid, -1 if none */
	int64_t		 ctime;		/* arrival, unix seconds */
	const uint8_t	*body;		/* whole message, CRLF form */
	size_t		 bodylen;
	struct queue_envelope_new *evps;
	size_t		 nevps;		/* at least 1 */
};

struct queue_envelope {
	uint64_t	 evpid, msgid;
	char		 sender[QUEUE_DB_ADDR_SIZE];
	char		 rcpt[QUEUE_DB_ADDR_SIZE];
	char		 orig_rcpt[QUEUE_DB_ADDR_SIZE];
	char		 action[QUEUE_DB_ACTION_SIZE];
	char		 mailbox[QUEUE_DB_ADDR_SIZE];
	char		 last_error[QUEUE_DB_ERROR_SIZE];
	int64_t		 ctime, next_try, last_try;
	uint32_t	 attempts;
	int		 state;		/* enum envelope_state */
	uint32_t	 dsn_notify;
	size_t		 size;		/* message body bytes */
	char		 orcpt[QUEUE_DB_ORCPT_SIZE];	/* for DSNs */
	int64_t		 owner;		/* submitting local uid, -1 if none */
};

/* One message as stored (for "show message" and bounces). */
struct queue_message {
	uint64_t	 msgid;
	char		 sender[QUEUE_DB_ADDR_SIZE];
	char		 envid[QUEUE_DB_ADDR_SIZE];
	int		 dsn_ret;
	char		 helo[QUEUE_DB_ADDR_SIZE];
	char		 client[QUEUE_DB_ADDR_SIZE];
	int64_t		 ctime;
	size_t		 size;		/* body bytes */
	size_t		 nevps;		/* envelopes still queued */
};

/*
 * Conventions.  Functions returning int return -1 on a database error
 * (logged with log_warnx).  Mutators taking an evpid return 1 when the
 * envelope changed and 0 when there is no such envelope or it is not in a
 * state the operation applies to.  Outside a transaction each mutator is
 * its own durable commit (one fsync); callers that change many envelopes
 * should bracket them with queue_db_begin()/queue_db_commit().
 * A struct queue_db is not shared between threads and must not be used
 * across fork(): open it again in the child.
 */

/*
 * Open or create spool_dir/queue.db (mode 0600, never through a symlink):
 * WAL, synchronous=FULL, foreign keys, busy timeout, temp store in memory;
 * the schema is brought to QUEUE_DB_SCHEMA_VERSION by migrations applied
 * in order in one transaction.  Refuses a database written by a newer
 * version, or one that is not a Postern queue.  On failure returns -1,
 * *db is NULL and err holds a message naming the file.
 */
int	queue_db_open(struct queue_db **db, const char *spool_dir, char *err,
	    size_t errsz);
void	queue_db_close(struct queue_db *);

/* BEGIN IMMEDIATE.  -1 if a transaction is already open. */
int	queue_db_begin(struct queue_db *);
/*
 * COMMIT: when it returns 0, everything since begin is on disk (WAL with
 * synchronous=FULL) and may be acknowledged.  On -1 nothing may be
 * acknowledged; call queue_db_rollback().
 */
int	queue_db_commit(struct queue_db *);
/* ROLLBACK; 0 also when SQLite already rolled the transaction back. */
int	queue_db_rollback(struct queue_db *);

/*
 * Inside a transaction: validate every field, then store the message (body
 * split into chunks of at most QUEUE_DB_CHUNK_SIZE bytes) and one PENDING
 * envelope per recipient with next_try = ctime; fills msg->msgid and each
 * evps[i].evpid.  On -1 nothing of this message is stored and the
 * transaction still holds the other messages, unless SQLite itself had to
 * abandon it (disk full, I/O error): then queue_db_commit() fails too.
 * Refuses (-1) a NULL or over-long string, dsn_ret outside 0..2, no
 * envelope, or being called outside a transaction.
 */
int	queue_db_add_message(struct queue_db *, struct queue_message_new *);

/* On start: every INFLIGHT envelope becomes PENDING with next_try = now.
 * Returns the number recovered or -1. */
int	queue_db_recover(struct queue_db *, int64_t now);

/*
 * Call cb for the PENDING and DEFERRED envelopes with next_try <= now, in
 * next_try order (ties by evpid taken as a signed 64-bit integer, as
 * stored), at most max of them; an index range, never a table scan.  cb returns 0 to go on, -1 to stop; it may call the
 * mutators (typically queue_db_set_inflight) on the envelope it got, but
 * not queue_db_due() itself.  Returns the number passed to cb, or -1.
 */
int	queue_db_due(struct queue_db *, int64_t now, size_t max,
	    int (*cb)(void *, const struct queue_envelope *), void *arg);

/* Earliest next_try of PENDING/DEFERRED envelopes: 1 and *when set, 0 if
 * there is none, -1 on error. */
int	queue_db_next_wakeup(struct queue_db *, int64_t *when);

/* PENDING/DEFERRED -> INFLIGHT, last_try = now. */
int	queue_db_set_inflight(struct queue_db *, uint64_t evpid, int64_t now);

/*
 * Delivered or permanently failed (the caller bounces first): delete the
 * envelope, and with its last envelope the message and its chunks, in one
 * atomic step.  Any state.
 */
int	queue_db_remove_envelope(struct queue_db *, uint64_t evpid);

/*
 * Temporary failure of a PENDING, INFLIGHT or DEFERRED envelope: DEFERRED,
 * attempts + 1, next_try, last_try = now, last_error = error (refused, -1,
 * if NULL or not shorter than QUEUE_DB_ERROR_SIZE).
 */
int	queue_db_defer(struct queue_db *, uint64_t evpid, int64_t now,
	    int64_t next_try, const char *error);

/* hold != 0: PENDING/DEFERRED -> HELD (an INFLIGHT envelope is not held:
 * 0).  hold == 0: HELD -> PENDING with next_try = the current time. */
int	queue_db_hold(struct queue_db *, uint64_t evpid, int hold);

/* PENDING/DEFERRED: next_try = now unless it is already earlier. */
int	queue_db_schedule(struct queue_db *, uint64_t evpid, int64_t now);

/* "all" forms of the two above; return the number changed or -1. */
int	queue_db_hold_all(struct queue_db *, int hold, int64_t now);
int	queue_db_schedule_all(struct queue_db *, int64_t now);

/* 1 and *out filled if found, 0 if not, -1 on error. */
int	queue_db_envelope(struct queue_db *, uint64_t evpid,
	    struct queue_envelope *out);
int	queue_db_message(struct queue_db *, uint64_t msgid,
	    struct queue_message *out);

/* Call cb for every envelope, in (ctime, evpid) order ("show queue"), or
 * for the envelopes of one message in evpid order (signed, as above).  cb
 * as for queue_db_due().  A damaged row is logged and skipped.  Return the
 * number passed to cb, or -1. */
int	queue_db_list(struct queue_db *,
	    int (*cb)(void *, const struct queue_envelope *), void *arg);
int	queue_db_message_envelopes(struct queue_db *, uint64_t msgid,
	    int (*cb)(void *, const struct queue_envelope *), void *arg);

/*
 * Pass the body of msgid to cb chunk by chunk, in order (cb returns 0 to
 * go on, -1 to abort).  Checks the chunks are contiguous and add up to the
 * stored size.  Returns the byte count, or -1 (errno ENOENT: no such
 * message).
 */
ssize_t	queue_db_read_body(struct queue_db *, uint64_t msgid,
	    int (*cb)(void *, const uint8_t *, size_t), void *arg);
/* Write the body to fd, looping on short writes, EINTR and EAGAIN (it
 * blocks until done).  Returns the bytes written or -1. */
ssize_t	queue_db_write_body(struct queue_db *, uint64_t msgid, int fd);

/* Envelopes per state (indexed by enum envelope_state), messages, and the
 * oldest ctime (0 if the queue is empty).  Costs a scan of an index. */
int	queue_db_counts(struct queue_db *, size_t counts[4], size_t *messages,
	    int64_t *oldest);

/* PRAGMA integrity_check and foreign_key_check: 0 if clean, else -1 with
 * the first problem in err. */
int	queue_db_check(struct queue_db *, char *err, size_t errsz);

/* Check that the hot statements (due, wakeup, per-envelope updates, body
 * reads) search an index and never scan a table or sort: 0 if so, else -1
 * with the offending plan line in err. */
int	queue_db_check_plans(struct queue_db *, char *err, size_t errsz);

/*
 * Cap the database at max_bytes, rounded down to pages (0 = no cap).  A
 * message that does not fit fails like a full disk (SQLITE_FULL): SQLite
 * abandons the whole transaction, so every message of that group commit
 * gets a temporary failure.  Returns 0 or -1.
 */
int	queue_db_set_max_size(struct queue_db *, uint64_t max_bytes);

/* Tests only: replace the id generator (NULL restores arc4random). */
void	queue_db_set_id_generator(uint64_t (*)(void));

#endif
