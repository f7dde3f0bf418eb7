/*
 * ctl_drop.c: sendmail's offline drop (see drop.h): when posternd is not
 * running, the message is written into SPOOL/offline for queue to import
 * when it starts.  Also the one place posternctl's setgid bit is used.
 * SECURITY: posternctl may be installed setgid _postern_drop (as Postfix's
 * postdrop); ctl_drop_init() drops that group first thing, and it is
 * raised again only around the openat() that creates the drop file and
 * the renameat() that publishes it, in the one directory it can write.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "drop.h"

static gid_t	 drop_saved_egid;
static int	 drop_inited;

static void	 drop_raise(void);
static void	 drop_lower(void);
static int	 drop_fail(char *, size_t, const char *, const char *);

void
ctl_drop_init(void)
{
	drop_saved_egid = getegid();
	drop_inited = 1;
	drop_lower();
}

/* Take the saved group back (a no-op when the binary is not setgid). */
static void
drop_raise(void)
{
	if (!drop_inited || drop_saved_egid == getgid())
		return;
	if (setegid(drop_saved_egid) == -1) {
		/* Harmless: the create then fails with EACCES. */
		return;
	}
}

/* Back to the real group; running on with the other one is no option. */
static void
drop_lower(void)
{
	if (getegid() == getgid())
		return;
	if (setegid(getgid()) == -1 || getegid() != getgid()) {
		fprintf(stderr, "posternctl: cannot drop group privilege: "
		    "%s\n", strerror(errno));
		_exit(71);	/* EX_OSERR */
	}
}

/* 1 if s may be a drop file ADDRESS: as drop_parse() checks it. */
static int
drop_addr_ok(const char *s)
{
	size_t	 i, len = strlen(s);

	if (len >= DROP_ADDRMAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char	 c = (unsigned char)s[i];

		if (c <= ' ' || c == 0x7f || c == '<' || c == '>')
			return 0;
	}
	return 1;
}

void
ctl_drop_unstuff(struct ctl_buf *b, const char *wire, size_t len)
{
	size_t	 off = 0, n;
	const char	*lf;

	while (off < len) {
		lf = memchr(wire + off, '\n', len - off);
		n = lf != NULL ? (size_t)(lf - (wire + off)) + 1 : len - off;
		if (wire[off] == '.')
			ctl_buf_add(b, wire + off + 1, n - 1);
		else
			ctl_buf_add(b, wire + off, n);
		off += n;
	}
}

int
ctl_drop_format(struct ctl_buf *b, const char *sender,
    const struct ctl_mail_rcpts *r, const char *body, size_t len,
    char *err, size_t errsz)
{
	size_t	 i;

	if (!drop_addr_ok(sender)) {
		snprintf(err, errsz, "sender not allowed in a drop file");
		return -1;
	}
	if (r->n == 0 || r->n > DROP_MAXRCPT) {
		snprintf(err, errsz, "%s (1 to %d in a drop file)",
		    r->n == 0 ? "no recipient" : "too many recipients",
		    DROP_MAXRCPT);
		return -1;
	}
	for (i = 0; i < r->n; i++)
		if (r->addr[i][0] == '\0' || !drop_addr_ok(r->addr[i])) {
			snprintf(err, errsz, "recipient not allowed in a "
			    "drop file");
			return -1;
		}
	for (i = 0; i < len; i++) {
		if (body[i] == '\r' && (i + 1 == len || body[i + 1] != '\n')) {
			snprintf(err, errsz, "bare CR in the message");
			return -1;
		}
		if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) {
			snprintf(err, errsz, "bare LF in the message");
			return -1;
		}
	}
	ctl_buf_puts(b, DROP_MAGIC);
	/* The null sender is a bare "sender" line (see drop_parse). */
	if (sender[0] == '\0')
		ctl_buf_puts(b, "sender\n");
	else
		ctl_buf_printf(b, "sender %s\n", sender);
	for (i = 0; i < r->n; i++)
		ctl_buf_printf(b, "rcpt %s\n", r->addr[i]);
	ctl_buf_add(b, "\n", 1);
	ctl_buf_add(b, body, len);
	if (b->failed) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	return 0;
}

/* Say why into err; -1 with errno kept. */
static int
drop_fail(char *err, size_t errsz, const char *what, const char *path)
{
	int	 saved = errno;

	snprintf(err, errsz, "%s %s: %s", what, path, strerror(saved));
	errno = saved;
	return -1;
}

int
ctl_drop_write(const char *dir, const char *data, size_t len, char *name,
    size_t namesz, char *err, size_t errsz)
{
	unsigned char	 rnd[8];
	char		 hex[sizeof(rnd) * 2 + 1], tname[sizeof(hex) + 1];
	char		 mname[sizeof(hex) + 1];
	size_t		 i, off = 0;
	ssize_t		 n;
	int		 dfd, fd, rv = -1, published = 0, saved;

	arc4random_buf(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(hex + i * 2, 3, "%02x", rnd[i]);
	snprintf(tname, sizeof(tname), "t%s", hex);
	snprintf(mname, sizeof(mname), "m%s", hex);
	if (strlcpy(name, mname, namesz) >= namesz) {
		errno = ENAMETOOLONG;
		return drop_fail(err, errsz, "name buffer for", dir);
	}

	/* Pin the directory: O_PATH needs no right on it, only search. */
	if ((dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return drop_fail(err, errsz, "cannot open", dir);
	drop_raise();
	fd = openat(dfd, tname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	saved = errno;
	drop_lower();
	errno = saved;
	if (fd == -1) {
		drop_fail(err, errsz, "cannot create a file in", dir);
		goto done;
	}
	/* Whatever the caller's umask: queue must be able to read it. */
	if (fchmod(fd, 0644) == -1) {
		drop_fail(err, errsz, "cannot set the mode of a file in", dir);
		goto fail;
	}
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			drop_fail(err, errsz, "cannot write a file in", dir);
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) == -1) {
		drop_fail(err, errsz, "cannot sync a file in", dir);
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		drop_fail(err, errsz, "cannot write a file in", dir);
		goto fail;
	}
	fd = -1;
	/* Renaming in the directory needs its group write right again. */
	drop_raise();
	published = renameat(dfd, tname, dfd, mname) == 0;
	saved = errno;
	drop_lower();
	errno = saved;
	if (!published) {
		drop_fail(err, errsz, "cannot rename a file in", dir);
		goto fail;
	}
	rv = 0;
	goto done;
 fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	drop_raise();
	(void)unlinkat(dfd, tname, 0);
	drop_lower();
	errno = saved;
 done:
	close(dfd);
	return rv;
}
