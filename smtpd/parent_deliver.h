/*
 * parent_deliver.h: local delivery primitives (maildir, mbox) and the
 * expansion of an action's path template.
 * The parent forks a short-lived child, switches it to the recipient's
 * uid/gid, and only then calls parent_deliver_maildir() or
 * parent_deliver_mbox() in it.
 * SECURITY: runs as the recipient user; trusts neither the message nor the
 * layout of the mailbox directory (another local user may have planted
 * symlinks or hard links); substituted template values come from the
 * network and are refused unless they are one plain path component.
 */
#ifndef POSTERN_PARENT_DELIVER_H
#define POSTERN_PARENT_DELIVER_H

#include <sys/types.h>
#include <stddef.h>
#include <sysexits.h>
#include <time.h>

/*
 * Results are sysexits(3) codes: EX_OK on success; EX_TEMPFAIL for
 * anything that may work later (disk full, quota, lock busy, I/O error,
 * a read error on the message); EX_CANTCREAT when the mailbox cannot be
 * used as it stands (a symlink, a hard link, not a regular file, owned by
 * someone else, permission denied, missing directory); EX_DATAERR when a
 * header value is unusable; EX_SOFTWARE when called with a NULL argument.
 * On failure err (when not NULL and errsz > 0) gets a one-line reason
 * without newlines, which never contains the path or message bytes.
 */

/* The default time given to a busy lock (fcntl or dotlock), in ms. */
#define DELIVER_LOCK_TIMEOUT_MS		10000
/* A dotlock older than this is stale and removed, in seconds. */
#define DELIVER_DOTLOCK_STALE		300
/* Size of a read and of an output block. */
#define DELIVER_BLOCK			(64 * 1024)

/*
 * parent_deliver_expand: expand an action path template into out.
 *   "~/" or "~" alone at the start	home (must be absolute)
 *   %{user}				user (the mailbox name)
 *   %{rcpt}				rcpt (the full recipient address)
 *   %{rcpt.user}, %{rcpt.domain}	rcpt split at its last '@'
 *   %%					a literal '%'
 * Any other %{...}, "~name", or a lone '%' is an error.  A substituted
 * value is refused when it is NULL, empty, contains '/', starts with '.'
 * (so "." and ".." too), or contains a control byte (< 0x20 or 0x7f):
 * it comes from the network, and may only be one plain path component.
 * The template and home are trusted but must not contain control bytes.
 * The result must be an absolute path shorter than outsz.
 * Returns 0, or -1 with err set and out set to "" (never a truncated or
 * partial path).
 */
int	parent_deliver_expand(const char *tmpl, const char *home,
	    const char *user, const char *rcpt, char *out, size_t outsz,
	    char *err, size_t errsz);

/*
 * parent_deliver_maildir: deliver the message read from msgfd (from
 * offset 0 to EOF, in SMTP wire form with CRLF line ends, already
 * dot-unstuffed) into the maildir dir.
 * Creates dir (and missing parents) and dir/tmp, dir/new, dir/cur with
 * mode 0700 when missing; tmp and new must be real directories, not
 * symlinks (dir itself may be one: it is the user's own choice).  Writes
 * tmp/<unique> (O_CREAT|O_EXCL|O_NOFOLLOW, 0600) with
 *   "Return-Path: <" return_path ">\n"
 *   "Delivered-To: " delivered_to "\n"
 * then the message with every CRLF turned into LF (a bare CR or LF is
 * kept), fsyncs it, links it into new/<unique>,S=<size> (rename when the
 * filesystem has no hard links), fsyncs new/ and removes the tmp name.
 * return_path is the bare reverse path without angle brackets ("" for
 * the null sender); neither header value may contain a control byte.
 * On failure nothing is left in tmp/ or new/.
 *
 * With a tag (the envelope id, letters and digits), the file is named
 * "<arrival>.E<tag>.<host>" instead of a fresh unique name, so delivery is
 * idempotent: a link into new/ that finds the name taken means an earlier
 * attempt got there (success), and when retry is set (an earlier attempt
 * may have finished before a crash) new/ and cur/ are searched for the
 * name first.  tag NULL: a fresh unique name, arrival and retry unused.
 */
int	parent_deliver_maildir(const char *dir, int msgfd,
	    const char *return_path, const char *delivered_to,
	    const char *tag, time_t arrival, int retry, char *err,
	    size_t errsz);
/* The idempotent name for tag, as above; -1 if tag is not alphanumeric
 * or the result does not fit. */
int	parent_deliver_maildir_tagged(char *buf, size_t bufsz, time_t arrival,
	    const char *tag, const char *host);

/*
 * parent_deliver_mbox: append the message read from msgfd (as for
 * parent_deliver_maildir) to the mbox file path.
 * Opens it O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW (0600, non-blocking so a
 * FIFO cannot hang us), refuses anything but a regular file with one link
 * owned by the effective uid, takes a dotlock "<path>.lock" (O_EXCL; one
 * older than DELIVER_DOTLOCK_STALE is removed; skipped silently when the
 * directory is not writable for us, EACCES) and an fcntl write lock, each
 * waiting at most the lock timeout (then EX_TEMPFAIL), and checks that
 * path still names the opened file.  Appends
 *   "From " (return_path or "MAILER-DAEMON") " " asctime(arrival) "\n"
 *   "Return-Path: <" return_path ">\n"
 *   "Delivered-To: " delivered_to "\n"
 * then the message with CRLF turned into LF and mboxrd quoting (a line
 * matching ^>*From  gets one more '>'), a newline if the message did not
 * end with one, and an empty line; then fsyncs.  The date is the local
 * time of arrival in the asctime(3) format, written with English names
 * whatever the locale.  On any failure after the locks are taken the
 * file is truncated back to its original size.
 */
int	parent_deliver_mbox(const char *path, int msgfd,
	    const char *return_path, const char *delivered_to, time_t arrival,
	    char *err, size_t errsz);

/*
 * parent_deliver_maildir_unique: write the unique part of a maildir file
 * name, "<sec>.M<usec>P<pid>Q<counter>.<host>", into buf; the counter is
 * per process and increases on every call, so two calls in the same
 * microsecond differ.  host NULL means gethostname(); in it '/' becomes
 * "\057" and ':' becomes "\072".  Returns 0, or -1 if buf is too small.
 */
int	parent_deliver_maildir_unique(char *buf, size_t bufsz, time_t sec,
	    long usec, const char *host);

/*
 * parent_deliver_set_lock_timeout: change how long the mbox locks are
 * waited for (msec, default DELIVER_LOCK_TIMEOUT_MS).  For tests.
 */
void	parent_deliver_set_lock_timeout(unsigned int msec);

#endif
