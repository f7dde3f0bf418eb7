/*
 * parent_deliver.c: local delivery into a maildir or an mbox, and the
 * expansion of action path templates.
 * SECURITY: runs in a short-lived child of the parent after it switched to
 * the recipient's uid/gid; trusts neither the message bytes, nor the values
 * substituted into a path (they come from the network), nor the mailbox
 * directory, where another local user may have planted links or FIFOs.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "parent_deliver.h"

#ifndef HOST_NAME_MAX
#define HOST_NAME_MAX	255
#endif

/* The output of one delivery: a block buffer in front of the mailbox. */
struct deliver_out {
	int		 fd;
	size_t		 len;		/* bytes waiting in buf */
	long long	 total;		/* bytes put so far */
	int		 last;		/* last byte put, -1 before any */
	unsigned char	 buf[DELIVER_BLOCK];
};

/* Buffers of one delivery, allocated together off the stack. */
struct deliver_io {
	struct deliver_out	 out;
	unsigned char		 in[DELIVER_BLOCK];
};

/* State of the CRLF to LF conversion and of the mboxrd quoting. */
struct deliver_conv {
	int		 cr;		/* a CR is held back */
	int		 mboxrd;	/* quote ^>*From  lines */
	int		 bol;		/* within the ">*" prefix of a line */
	size_t		 held;		/* bytes of "From " held back */
};

static const char deliver_from[] = "From ";

static unsigned int	deliver_counter;
static unsigned int	deliver_lock_timeout = DELIVER_LOCK_TIMEOUT_MS;

static int	deliver_fail(char *, size_t, int, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
static int	deliver_errno_status(int);
static const char *deliver_value_refusal(const char *, size_t);
static int	deliver_append(char *, size_t, size_t *, const char *, size_t);
static int	deliver_has_ctl(const char *);
static int	deliver_check_headers(const char *, const char *, char *,
		    size_t);
static struct deliver_io *deliver_io_new(int);
static int	deliver_write(int, const void *, size_t);
static int	deliver_flush(struct deliver_out *);
static int	deliver_puts(struct deliver_out *, const void *, size_t);
static int	deliver_line_byte(struct deliver_out *, struct deliver_conv *,
		    unsigned char);
static int	deliver_convert(struct deliver_out *, struct deliver_conv *,
		    const unsigned char *, size_t);
static int	deliver_convert_end(struct deliver_out *,
		    struct deliver_conv *);
static int	deliver_copy(int, struct deliver_io *, int, char *, size_t);
static int	deliver_headers(struct deliver_out *, const char *,
		    const char *);
static int	deliver_mkdirs(const char *, int *, char *, size_t);
static void	deliver_sync_parent(const char *);
static int	deliver_opensub(int, const char *, char *, size_t);
static long long deliver_now_ms(void);
static void	deliver_sleep_ms(unsigned int);
static int	deliver_dotlock(const char *, char *, size_t, int *, char *,
		    size_t);
static int	deliver_fcntl_lock(int, char *, size_t);
static int	deliver_asctime(time_t, char *, size_t);

/* Set err to a formatted one-line reason and return status. */
static int
deliver_fail(char *err, size_t errsz, int status, const char *fmt, ...)
{
	va_list	 ap;
	char	*p;

	if (err == NULL || errsz == 0)
		return status;
	va_start(ap, fmt);
	if (vsnprintf(err, errsz, fmt, ap) < 0)
		strlcpy(err, "error", errsz);
	va_end(ap);
	for (p = err; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return status;
}

/* Classify a filesystem errno: what the admin must fix, or what may pass. */
static int
deliver_errno_status(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case ENOENT:
	case ENOTDIR:
	case EISDIR:
	case ELOOP:
	case ENAMETOOLONG:
	case EMLINK:
		return EX_CANTCREAT;
	default:
		return EX_TEMPFAIL;
	}
}

void
parent_deliver_set_lock_timeout(unsigned int msec)
{
	deliver_lock_timeout = msec;
}

/* ---------------------------------------------------------- expansion */

/* Why a network-supplied value cannot be one path component, or NULL. */
static const char *
deliver_value_refusal(const char *v, size_t len)
{
	size_t		 i;
	unsigned char	 c;

	if (v == NULL)
		return "is not set";
	if (len == 0)
		return "is empty";
	if (v[0] == '.')
		return "starts with '.'";
	for (i = 0; i < len; i++) {
		c = (unsigned char)v[i];
		if (c == '/')
			return "contains '/'";
		if (c < 0x20 || c == 0x7f)
			return "contains a control character";
	}
	return NULL;
}

/* Append len bytes at *pos, keeping room for the NUL; -1 if they do not fit. */
static int
deliver_append(char *out, size_t outsz, size_t *pos, const char *s,
    size_t len)
{
	if (len >= outsz - *pos)
		return -1;
	memcpy(out + *pos, s, len);
	*pos += len;
	return 0;
}

/* Whether s holds a control byte. */
static int
deliver_has_ctl(const char *s)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 1;
	return 0;
}

int
parent_deliver_expand(const char *tmpl, const char *home, const char *user,
    const char *rcpt, char *out, size_t outsz, char *err, size_t errsz)
{
	const char	*p, *end, *name, *value, *at, *why;
	char		 shown[40];
	size_t		 pos = 0, hlen, namelen, vlen;

	if (out == NULL || outsz == 0)
		return deliver_fail(err, errsz, -1, "no room for the path");
	out[0] = '\0';
	if (tmpl == NULL)
		return deliver_fail(err, errsz, -1, "no template");
	if (deliver_has_ctl(tmpl))
		return deliver_fail(err, errsz, -1,
		    "template contains a control character");

	p = tmpl;
	if (p[0] == '~') {
		if (p[1] != '\0' && p[1] != '/')
			return deliver_fail(err, errsz, -1,
			    "~user is not supported in template");
		if (home == NULL || home[0] != '/')
			return deliver_fail(err, errsz, -1,
			    "home directory is not an absolute path");
		if (deliver_has_ctl(home))
			return deliver_fail(err, errsz, -1,
			    "home directory contains a control character");
		hlen = strlen(home);
		while (hlen > 1 && home[hlen - 1] == '/')
			hlen--;
		if (deliver_append(out, outsz, &pos, home, hlen) == -1)
			goto toolong;
		p++;
		/* A home of "/" must not give "//Maildir". */
		if (out[pos - 1] == '/' && *p == '/')
			p++;
	}

	while (*p != '\0') {
		if (*p != '%') {
			end = strchr(p, '%');
			if (end == NULL)
				end = p + strlen(p);
			if (deliver_append(out, outsz, &pos, p, end - p) == -1)
				goto toolong;
			p = end;
			continue;
		}
		if (p[1] == '%') {
			if (deliver_append(out, outsz, &pos, "%", 1) == -1)
				goto toolong;
			p += 2;
			continue;
		}
		if (p[1] != '{') {
			out[0] = '\0';
			return deliver_fail(err, errsz, -1,
			    "lone '%%' in template");
		}
		name = p + 2;
		if ((end = strchr(name, '}')) == NULL) {
			out[0] = '\0';
			return deliver_fail(err, errsz, -1,
			    "unterminated %%{ in template");
		}
		namelen = end - name;
		value = NULL;
		vlen = 0;
		if (namelen == 4 && strncmp(name, "user", 4) == 0) {
			if ((value = user) != NULL)
				vlen = strlen(user);
		} else if (namelen == 4 && strncmp(name, "rcpt", 4) == 0) {
			if ((value = rcpt) != NULL)
				vlen = strlen(rcpt);
		} else if (namelen == 9 && strncmp(name, "rcpt.user", 9) == 0) {
			if ((value = rcpt) != NULL) {
				at = strrchr(rcpt, '@');
				vlen = at != NULL ? (size_t)(at - rcpt) :
				    strlen(rcpt);
			}
		} else if (namelen == 11 &&
		    strncmp(name, "rcpt.domain", 11) == 0) {
			if (rcpt != NULL) {
				at = strrchr(rcpt, '@');
				value = at != NULL ? at + 1 :
				    rcpt + strlen(rcpt);
				vlen = strlen(value);
			}
		} else {
			out[0] = '\0';
			log_escape(shown, sizeof(shown), name, namelen);
			return deliver_fail(err, errsz, -1,
			    "unknown variable %%{%s} in template", shown);
		}
		if ((why = deliver_value_refusal(value, vlen)) != NULL) {
			out[0] = '\0';
			return deliver_fail(err, errsz, -1,
			    "%%{%.*s} value refused: %s", (int)namelen, name,
			    why);
		}
		if (deliver_append(out, outsz, &pos, value, vlen) == -1)
			goto toolong;
		p = end + 1;
	}
	out[pos] = '\0';
	if (out[0] != '/') {
		out[0] = '\0';
		return deliver_fail(err, errsz, -1,
		    "expanded path is not absolute");
	}
	return 0;

 toolong:
	out[0] = '\0';
	return deliver_fail(err, errsz, -1, "expanded path is too long");
}

/* ---------------------------------------------------------- output */

/* Refuse header values that would break the header block or mbox line. */
static int
deliver_check_headers(const char *return_path, const char *delivered_to,
    char *err, size_t errsz)
{
	if (return_path == NULL || delivered_to == NULL)
		return deliver_fail(err, errsz, EX_SOFTWARE,
		    "missing return path or recipient");
	if (deliver_has_ctl(return_path))
		return deliver_fail(err, errsz, EX_DATAERR,
		    "Return-Path contains a control character");
	if (deliver_has_ctl(delivered_to))
		return deliver_fail(err, errsz, EX_DATAERR,
		    "Delivered-To contains a control character");
	return EX_OK;
}

/* Allocate the buffers of one delivery writing to fd. */
static struct deliver_io *
deliver_io_new(int fd)
{
	struct deliver_io	*io;

	if ((io = malloc(sizeof(*io))) == NULL)
		return NULL;
	io->out.fd = fd;
	io->out.len = 0;
	io->out.total = 0;
	io->out.last = -1;
	return io;
}

/* write(2) all of buf, retrying short writes and EINTR. */
static int
deliver_write(int fd, const void *buf, size_t len)
{
	const unsigned char	*p = buf;
	ssize_t			 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* Write out what the buffer holds. */
static int
deliver_flush(struct deliver_out *o)
{
	if (o->len == 0)
		return 0;
	if (deliver_write(o->fd, o->buf, o->len) == -1)
		return -1;
	o->len = 0;
	return 0;
}

/* Put len bytes into the buffer, flushing whole blocks as it fills. */
static int
deliver_puts(struct deliver_out *o, const void *s, size_t len)
{
	const unsigned char	*p = s;
	size_t			 n;

	if (len == 0)
		return 0;
	o->total += len;
	o->last = p[len - 1];
	while (len > 0) {
		if (o->len == sizeof(o->buf) && deliver_flush(o) == -1)
			return -1;
		n = sizeof(o->buf) - o->len;
		if (n > len)
			n = len;
		memcpy(o->buf + o->len, p, n);
		o->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Put one byte of the LF-converted message, quoting mboxrd-style: a line
 * that matches ^>*From  gets one more '>'.  Adding it after the leading
 * '>' run gives the same bytes as adding it before, so the '>' are passed
 * on at once and only a partial "From " is held back.
 */
static int
deliver_line_byte(struct deliver_out *o, struct deliver_conv *cv,
    unsigned char c)
{
	if (cv->bol) {
		if (cv->held == 0 && c == '>')
			return deliver_puts(o, &c, 1);
		if (c == (unsigned char)deliver_from[cv->held]) {
			if (++cv->held < sizeof(deliver_from) - 1)
				return 0;
			cv->bol = 0;
			cv->held = 0;
			return deliver_puts(o, ">From ", 6);
		}
		cv->bol = 0;
		if (deliver_puts(o, deliver_from, cv->held) == -1)
			return -1;
		cv->held = 0;
	}
	if (deliver_puts(o, &c, 1) == -1)
		return -1;
	if (c == '\n' && cv->mboxrd)
		cv->bol = 1;
	return 0;
}

/* Convert one block of wire-form message: CRLF becomes LF, across blocks. */
static int
deliver_convert(struct deliver_out *o, struct deliver_conv *cv,
    const unsigned char *in, size_t n)
{
	const unsigned char	*p = in, *end = in + n, *cr;
	unsigned char		 c;

	while (p < end) {
		if (!cv->cr && !cv->bol) {
			/* Fast path: copy the run up to the next CR. */
			if (cv->mboxrd) {
				for (cr = p; cr < end && *cr != '\r' &&
				    *cr != '\n'; cr++)
					;
				if (cr < end && *cr == '\n')
					cr++;
			} else if ((cr = memchr(p, '\r', end - p)) == NULL)
				cr = end;
			if (cr > p) {
				if (deliver_puts(o, p, cr - p) == -1)
					return -1;
				if (cv->mboxrd && cr[-1] == '\n')
					cv->bol = 1;
				p = cr;
				continue;
			}
		}
		c = *p++;
		if (cv->cr) {
			cv->cr = 0;
			if (c == '\n') {
				if (deliver_line_byte(o, cv, '\n') == -1)
					return -1;
				continue;
			}
			if (deliver_line_byte(o, cv, '\r') == -1)
				return -1;
		}
		if (c == '\r') {
			cv->cr = 1;
			continue;
		}
		if (deliver_line_byte(o, cv, c) == -1)
			return -1;
	}
	return 0;
}

/* Put what the converter still holds at the end of the message. */
static int
deliver_convert_end(struct deliver_out *o, struct deliver_conv *cv)
{
	if (cv->cr) {
		cv->cr = 0;
		if (deliver_line_byte(o, cv, '\r') == -1)
			return -1;
	}
	if (cv->bol && cv->held > 0) {
		if (deliver_puts(o, deliver_from, cv->held) == -1)
			return -1;
		cv->held = 0;
	}
	return 0;
}

/* Read msgfd from offset 0 to EOF, converting it into the output buffer. */
static int
deliver_copy(int msgfd, struct deliver_io *io, int mboxrd, char *err,
    size_t errsz)
{
	struct deliver_conv	 cv;
	off_t			 off = 0;
	ssize_t			 n;
	int			 seekable = 1;

	memset(&cv, 0, sizeof(cv));
	cv.mboxrd = mboxrd;
	cv.bol = mboxrd;
	for (;;) {
		if (seekable)
			n = pread(msgfd, io->in, sizeof(io->in), off);
		else
			n = read(msgfd, io->in, sizeof(io->in));
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == ESPIPE && seekable && off == 0) {
				/* A pipe: read it as it comes. */
				seekable = 0;
				continue;
			}
			return deliver_fail(err, errsz, EX_TEMPFAIL,
			    "read message: %s", strerror(errno));
		}
		if (n == 0)
			break;
		off += n;
		if (deliver_convert(&io->out, &cv, io->in, n) == -1)
			goto fail;
	}
	if (deliver_convert_end(&io->out, &cv) == -1)
		goto fail;
	return EX_OK;

 fail:
	return deliver_fail(err, errsz, EX_TEMPFAIL, "write: %s",
	    strerror(errno));
}

/* Put the two header lines that every local delivery prepends. */
static int
deliver_headers(struct deliver_out *o, const char *return_path,
    const char *delivered_to)
{
	if (deliver_puts(o, "Return-Path: <", 14) == -1 ||
	    deliver_puts(o, return_path, strlen(return_path)) == -1 ||
	    deliver_puts(o, ">\nDelivered-To: ", 16) == -1 ||
	    deliver_puts(o, delivered_to, strlen(delivered_to)) == -1 ||
	    deliver_puts(o, "\n", 1) == -1)
		return -1;
	return 0;
}

/* ---------------------------------------------------------- maildir */

/* The host name as it may stand in a maildir file name ('/' and ':'
 * escaped, as the maildir convention does). */
static int
deliver_maildir_host(char *esc, size_t escsz, const char *host)
{
	char		 hostbuf[HOST_NAME_MAX + 1];
	const char	*h;
	size_t		 j = 0;

	if (host == NULL) {
		if (gethostname(hostbuf, sizeof(hostbuf)) == -1)
			hostbuf[0] = '\0';
		hostbuf[sizeof(hostbuf) - 1] = '\0';
		host = hostbuf[0] != '\0' ? hostbuf : "localhost";
	}
	for (h = host; *h != '\0'; h++) {
		if (j + 5 > escsz)
			return -1;
		if (*h == '/') {
			memcpy(esc + j, "\\057", 4);
			j += 4;
		} else if (*h == ':') {
			memcpy(esc + j, "\\072", 4);
			j += 4;
		} else
			esc[j++] = *h;
	}
	esc[j] = '\0';
	return 0;
}

int
parent_deliver_maildir_unique(char *buf, size_t bufsz, time_t sec,
    long usec, const char *host)
{
	char		 esc[4 * (HOST_NAME_MAX + 1)];
	int		 n;

	if (deliver_maildir_host(esc, sizeof(esc), host) == -1)
		return -1;
	n = snprintf(buf, bufsz, "%lld.M%ldP%ldQ%u.%s", (long long)sec, usec,
	    (long)getpid(), ++deliver_counter, esc);
	if (n < 0 || (size_t)n >= bufsz)
		return -1;
	return 0;
}

int
parent_deliver_maildir_tagged(char *buf, size_t bufsz, time_t arrival,
    const char *tag, const char *host)
{
	char		 esc[4 * (HOST_NAME_MAX + 1)];
	const char	*t;
	int		 n;

	/* The tag names a file: letters and digits only. */
	if (tag == NULL || tag[0] == '\0')
		return -1;
	for (t = tag; *t != '\0'; t++)
		if (!isalnum((unsigned char)*t))
			return -1;
	if (deliver_maildir_host(esc, sizeof(esc), host) == -1)
		return -1;
	n = snprintf(buf, bufsz, "%lld.E%s.%s", (long long)arrival, tag, esc);
	if (n < 0 || (size_t)n >= bufsz)
		return -1;
	return 0;
}

/* Is a message named name (with any ",S=" or ":2," suffix) in new/ or
 * cur/ already?  Only asked on a retry, so a scan is affordable. */
static int
deliver_maildir_has(int dfd, const char *name)
{
	static const char	*subs[] = { "new", "cur" };
	struct dirent		*de;
	DIR			*d;
	size_t			 i, len = strlen(name);
	int			 fd, found = 0;

	for (i = 0; i < 2 && !found; i++) {
		if ((fd = openat(dfd, subs[i], O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			continue;
		if ((d = fdopendir(fd)) == NULL) {
			close(fd);
			continue;
		}
		while ((de = readdir(d)) != NULL)
			if (strncmp(de->d_name, name, len) == 0 &&
			    (de->d_name[len] == '\0' ||
			    de->d_name[len] == ',' || de->d_name[len] == ':')) {
				found = 1;
				break;
			}
		closedir(d);
	}
	return found;
}

/* Create dir and any missing parent (0700); *created when dir was made. */
static int
deliver_mkdirs(const char *dir, int *created, char *err, size_t errsz)
{
	char	 path[PATH_MAX];
	char	*p;

	*created = 0;
	if (strlcpy(path, dir, sizeof(path)) >= sizeof(path))
		return deliver_fail(err, errsz, EX_CANTCREAT,
		    "maildir path too long");
	if (mkdir(path, 0700) == 0) {
		*created = 1;
		return EX_OK;
	}
	if (errno == EEXIST)
		return EX_OK;
	if (errno != ENOENT)
		goto fail;
	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(path, 0700) == -1) {
		if (errno != EEXIST)
			goto fail;
	} else
		*created = 1;
	return EX_OK;

 fail:
	return deliver_fail(err, errsz, deliver_errno_status(errno),
	    "maildir mkdir: %s", strerror(errno));
}

/* Make a new directory entry for path durable: fsync its parent. */
static void
deliver_sync_parent(const char *path)
{
	char	 parent[PATH_MAX];
	char	*slash;
	int	 fd;

	if (strlcpy(parent, path, sizeof(parent)) >= sizeof(parent))
		return;
	while ((slash = strrchr(parent, '/')) != NULL && slash[1] == '\0' &&
	    slash != parent)
		*slash = '\0';
	if ((slash = strrchr(parent, '/')) == NULL)
		return;
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	if ((fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if (fsync(fd) == -1)
		log_warn("event=maildir-fsync-parent-failed");
	close(fd);
}

/* Open dir/name, which must be a real directory and not a symlink. */
static int
deliver_opensub(int dfd, const char *name, char *err, size_t errsz)
{
	struct stat	 st;
	int		 fd;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd != -1)
		return fd;
	/* Linux says ENOTDIR for a symlink opened O_DIRECTORY|O_NOFOLLOW. */
	if (errno == ELOOP || (errno == ENOTDIR &&
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode)))
		deliver_fail(err, errsz, EX_CANTCREAT,
		    "maildir %s is a symbolic link", name);
	else if (errno == ENOTDIR)
		deliver_fail(err, errsz, EX_CANTCREAT,
		    "maildir %s is not a directory", name);
	else
		deliver_fail(err, errsz, EX_CANTCREAT, "maildir %s: %s", name,
		    strerror(errno));
	return -1;
}

int
parent_deliver_maildir(const char *dir, int msgfd, const char *return_path,
    const char *delivered_to, const char *tag, time_t arrival, int retry,
    char *err, size_t errsz)
{
	static const char	*subdirs[] = { "tmp", "new", "cur" };
	struct deliver_io	*io = NULL;
	struct timespec		 ts;
	struct stat		 st;
	char			 name[NAME_MAX + 1], newname[NAME_MAX + 1];
	size_t			 i;
	int			 dfd = -1, tmpfd = -1, newfd = -1, fd = -1;
	int			 created, created_sub = 0, in_tmp = 0;
	int			 in_new = 0, status, saved, tries;

	if (dir == NULL || dir[0] == '\0')
		return deliver_fail(err, errsz, EX_SOFTWARE, "no maildir");
	if ((status = deliver_check_headers(return_path, delivered_to, err,
	    errsz)) != EX_OK)
		return status;
	if ((status = deliver_mkdirs(dir, &created, err, errsz)) != EX_OK)
		return status;
	if (created)
		deliver_sync_parent(dir);

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		status = deliver_fail(err, errsz, deliver_errno_status(errno),
		    "maildir open: %s", strerror(errno));
		goto done;
	}
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if (mkdirat(dfd, subdirs[i], 0700) == 0)
			created_sub = 1;
		else if (errno != EEXIST) {
			status = deliver_fail(err, errsz,
			    deliver_errno_status(errno), "maildir mkdir %s: %s",
			    subdirs[i], strerror(errno));
			goto done;
		}
	}
	status = EX_CANTCREAT;
	if ((tmpfd = deliver_opensub(dfd, "tmp", err, errsz)) == -1 ||
	    (newfd = deliver_opensub(dfd, "new", err, errsz)) == -1)
		goto done;
	if (fstatat(dfd, "cur", &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISDIR(st.st_mode)) {
		deliver_fail(err, errsz, EX_CANTCREAT,
		    "maildir cur is not a directory");
		goto done;
	}
	status = EX_TEMPFAIL;
	if (created_sub && fsync(dfd) == -1) {
		deliver_fail(err, errsz, status, "fsync: %s", strerror(errno));
		goto done;
	}

	if (tag != NULL) {
		/*
		 * One name per envelope: a delivery retried after a crash
		 * finds its earlier copy and stops (exactly once).
		 */
		if (parent_deliver_maildir_tagged(name, sizeof(name), arrival,
		    tag, NULL) == -1) {
			status = deliver_fail(err, errsz, EX_CANTCREAT,
			    "maildir file name too long");
			goto done;
		}
		if (retry && deliver_maildir_has(dfd, name)) {
			status = EX_OK;
			goto done;
		}
		/* A copy in tmp/ is what a crash left: start over. */
		if (unlinkat(tmpfd, name, 0) == -1 && errno != ENOENT) {
			status = deliver_fail(err, errsz,
			    deliver_errno_status(errno), "maildir unlink: %s",
			    strerror(errno));
			goto done;
		}
		fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
	} else for (tries = 0; tries < 8; tries++) {
		clock_gettime(CLOCK_REALTIME, &ts);
		if (parent_deliver_maildir_unique(name, sizeof(name),
		    ts.tv_sec, ts.tv_nsec / 1000, NULL) == -1) {
			status = deliver_fail(err, errsz, EX_CANTCREAT,
			    "maildir file name too long");
			goto done;
		}
		fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd != -1 || errno != EEXIST)
			break;
	}
	if (fd == -1) {
		status = deliver_fail(err, errsz, errno == EEXIST ?
		    EX_TEMPFAIL : deliver_errno_status(errno),
		    "maildir create: %s", strerror(errno));
		goto done;
	}
	in_tmp = 1;

	if ((io = deliver_io_new(fd)) == NULL) {
		deliver_fail(err, errsz, status, "out of memory");
		goto done;
	}
	if (deliver_headers(&io->out, return_path, delivered_to) == -1) {
		deliver_fail(err, errsz, status, "write: %s", strerror(errno));
		goto done;
	}
	if ((status = deliver_copy(msgfd, io, 0, err, errsz)) != EX_OK)
		goto done;
	status = EX_TEMPFAIL;
	if (deliver_flush(&io->out) == -1) {
		deliver_fail(err, errsz, status, "write: %s", strerror(errno));
		goto done;
	}
	if (fsync(fd) == -1) {
		deliver_fail(err, errsz, status, "fsync: %s", strerror(errno));
		goto done;
	}
	saved = close(fd);
	fd = -1;
	if (saved == -1) {
		deliver_fail(err, errsz, status, "close: %s", strerror(errno));
		goto done;
	}

	saved = snprintf(newname, sizeof(newname), "%s,S=%lld", name,
	    io->out.total);
	if (saved < 0 || (size_t)saved >= sizeof(newname)) {
		status = deliver_fail(err, errsz, EX_CANTCREAT,
		    "maildir file name too long");
		goto done;
	}
	if (linkat(tmpfd, name, newfd, newname, 0) == 0)
		in_new = 1;
	else if (errno == EEXIST && tag != NULL) {
		/* Delivered before a crash; this copy is not needed. */
		if (unlinkat(tmpfd, name, 0) == -1)
			log_warn("event=maildir-tmp-unlink-failed");
		in_tmp = 0;
		status = EX_OK;
		goto done;
	} else if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS) {
		/* No hard links here (some FUSE and network filesystems). */
		if (renameat(tmpfd, name, newfd, newname) == -1) {
			deliver_fail(err, errsz, status, "maildir rename: %s",
			    strerror(errno));
			goto done;
		}
		in_tmp = 0;
		in_new = 1;
	} else {
		deliver_fail(err, errsz, status, "maildir link: %s",
		    strerror(errno));
		goto done;
	}
	if (fsync(newfd) == -1) {
		deliver_fail(err, errsz, status, "fsync: %s", strerror(errno));
		goto done;
	}
	if (in_tmp && unlinkat(tmpfd, name, 0) == -1)
		log_warn("event=maildir-tmp-unlink-failed");
	in_tmp = 0;
	status = EX_OK;

 done:
	saved = errno;
	if (fd != -1)
		close(fd);
	if (status != EX_OK) {
		if (in_new)
			unlinkat(newfd, newname, 0);
		if (in_tmp)
			unlinkat(tmpfd, name, 0);
	}
	if (newfd != -1)
		close(newfd);
	if (tmpfd != -1)
		close(tmpfd);
	if (dfd != -1)
		close(dfd);
	free(io);
	errno = saved;
	return status;
}

/* ---------------------------------------------------------- mbox */

/* Milliseconds on the monotonic clock. */
static long long
deliver_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep msec milliseconds (an early wake-up is harmless). */
static void
deliver_sleep_ms(unsigned int msec)
{
	struct timespec	 ts;

	ts.tv_sec = msec / 1000;
	ts.tv_nsec = (long)(msec % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

/*
 * Take the dotlock "<path>.lock"; *locked tells whether we own one.  A
 * directory that is not writable for us (EACCES) means no dotlock, as
 * with /var/mail owned by group mail: the fcntl lock still applies.
 */
static int
deliver_dotlock(const char *path, char *lockpath, size_t lsz, int *locked,
    char *err, size_t errsz)
{
	struct stat	 st;
	long long	 deadline;
	int		 fd, n;

	*locked = 0;
	n = snprintf(lockpath, lsz, "%s.lock", path);
	if (n < 0 || (size_t)n >= lsz)
		return deliver_fail(err, errsz, EX_CANTCREAT,
		    "mbox dotlock path too long");
	deadline = deliver_now_ms() + deliver_lock_timeout;
	for (;;) {
		fd = open(lockpath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd != -1) {
			close(fd);
			*locked = 1;
			return EX_OK;
		}
		if (errno == EACCES)
			return EX_OK;
		if (errno != EEXIST && errno != EINTR)
			return deliver_fail(err, errsz, EX_TEMPFAIL,
			    "mbox dotlock: %s", strerror(errno));
		if (errno == EEXIST && lstat(lockpath, &st) == 0 &&
		    time(NULL) - st.st_mtime > DELIVER_DOTLOCK_STALE) {
			if (unlink(lockpath) == 0) {
				log_info("event=mbox-stale-dotlock-removed "
				    "age=%llds",
				    (long long)(time(NULL) - st.st_mtime));
				continue;
			}
			if (errno == EACCES)
				return EX_OK;
		}
		if (deliver_now_ms() >= deadline)
			return deliver_fail(err, errsz, EX_TEMPFAIL,
			    "mbox dotlock busy");
		deliver_sleep_ms(100);
	}
}

/* Take an fcntl write lock on the whole file, waiting a bounded time. */
static int
deliver_fcntl_lock(int fd, char *err, size_t errsz)
{
	struct flock	 fl;
	long long	 deadline;

	deadline = deliver_now_ms() + deliver_lock_timeout;
	for (;;) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_SETLK, &fl) == 0)
			return EX_OK;
		if (errno != EINTR && errno != EAGAIN && errno != EACCES)
			return deliver_fail(err, errsz, EX_TEMPFAIL,
			    "mbox lock: %s", strerror(errno));
		if (deliver_now_ms() >= deadline)
			return deliver_fail(err, errsz, EX_TEMPFAIL,
			    "mbox lock busy");
		deliver_sleep_ms(50);
	}
}

/* Format t as asctime(3) does, without the newline, in any locale. */
static int
deliver_asctime(time_t t, char *buf, size_t sz)
{
	static const char	 days[7][4] = { "Sun", "Mon", "Tue", "Wed",
				    "Thu", "Fri", "Sat" };
	static const char	 months[12][4] = { "Jan", "Feb", "Mar", "Apr",
				    "May", "Jun", "Jul", "Aug", "Sep", "Oct",
				    "Nov", "Dec" };
	struct tm		 tm;
	int			 n;

	if (localtime_r(&t, &tm) == NULL)
		return -1;
	if (tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11 || tm.tm_year < 1 - 1900 || tm.tm_year > 9999 - 1900)
		return -1;
	n = snprintf(buf, sz, "%s %s %2d %02d:%02d:%02d %d", days[tm.tm_wday],
	    months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    tm.tm_year + 1900);
	if (n < 0 || (size_t)n >= sz)
		return -1;
	return 0;
}

int
parent_deliver_mbox(const char *path, int msgfd, const char *return_path,
    const char *delivered_to, time_t arrival, char *err, size_t errsz)
{
	struct deliver_io	*io = NULL;
	struct stat		 st, lst;
	char			 lockpath[PATH_MAX], date[64];
	const char		*sender;
	off_t			 orig = -1;
	int			 fd = -1, dotlocked = 0, status, flags;

	if (path == NULL || path[0] == '\0')
		return deliver_fail(err, errsz, EX_SOFTWARE, "no mbox path");
	if ((status = deliver_check_headers(return_path, delivered_to, err,
	    errsz)) != EX_OK)
		return status;
	if (deliver_asctime(arrival, date, sizeof(date)) == -1)
		return deliver_fail(err, errsz, EX_DATAERR,
		    "arrival time out of range");
	sender = return_path[0] != '\0' ? return_path : "MAILER-DAEMON";

	/* O_NONBLOCK: opening a planted FIFO must fail, not hang. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW |
	    O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
	if (fd == -1) {
		if (errno == ELOOP)
			return deliver_fail(err, errsz, EX_CANTCREAT,
			    "mbox is a symbolic link");
		if (errno == ENXIO)
			return deliver_fail(err, errsz, EX_CANTCREAT,
			    "mbox is not a regular file");
		return deliver_fail(err, errsz, deliver_errno_status(errno),
		    "mbox open: %s", strerror(errno));
	}
	status = EX_CANTCREAT;
	if (fstat(fd, &st) == -1) {
		deliver_fail(err, errsz, EX_TEMPFAIL, "mbox fstat: %s",
		    strerror(errno));
		status = EX_TEMPFAIL;
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		deliver_fail(err, errsz, status, "mbox is not a regular file");
		goto done;
	}
	if (st.st_nlink != 1) {
		deliver_fail(err, errsz, status,
		    "mbox has more than one link");
		goto done;
	}
	if (st.st_uid != geteuid()) {
		deliver_fail(err, errsz, status,
		    "mbox is owned by another user");
		goto done;
	}
	status = EX_TEMPFAIL;
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		deliver_fail(err, errsz, status, "mbox fcntl: %s",
		    strerror(errno));
		goto done;
	}

	if ((status = deliver_dotlock(path, lockpath, sizeof(lockpath),
	    &dotlocked, err, errsz)) != EX_OK)
		goto done;
	if ((status = deliver_fcntl_lock(fd, err, errsz)) != EX_OK)
		goto done;
	status = EX_TEMPFAIL;
	/* A mail reader may have replaced the file while we waited. */
	if (lstat(path, &lst) == -1 || fstat(fd, &st) == -1 ||
	    lst.st_dev != st.st_dev || lst.st_ino != st.st_ino ||
	    st.st_nlink != 1) {
		deliver_fail(err, errsz, status,
		    "mbox was replaced while locking");
		goto done;
	}
	orig = st.st_size;

	if ((io = deliver_io_new(fd)) == NULL) {
		deliver_fail(err, errsz, status, "out of memory");
		goto done;
	}
	if (deliver_puts(&io->out, "From ", 5) == -1 ||
	    deliver_puts(&io->out, sender, strlen(sender)) == -1 ||
	    deliver_puts(&io->out, " ", 1) == -1 ||
	    deliver_puts(&io->out, date, strlen(date)) == -1 ||
	    deliver_puts(&io->out, "\n", 1) == -1 ||
	    deliver_headers(&io->out, return_path, delivered_to) == -1) {
		deliver_fail(err, errsz, status, "write: %s", strerror(errno));
		goto done;
	}
	if ((status = deliver_copy(msgfd, io, 1, err, errsz)) != EX_OK)
		goto done;
	status = EX_TEMPFAIL;
	if ((io->out.last != '\n' && deliver_puts(&io->out, "\n", 1) == -1) ||
	    deliver_puts(&io->out, "\n", 1) == -1 ||
	    deliver_flush(&io->out) == -1) {
		deliver_fail(err, errsz, status, "write: %s", strerror(errno));
		goto done;
	}
	if (fsync(fd) == -1) {
		deliver_fail(err, errsz, status, "fsync: %s", strerror(errno));
		goto done;
	}
	status = EX_OK;

 done:
	if (status != EX_OK && orig != -1) {
		if (ftruncate(fd, orig) == -1 || fsync(fd) == -1)
			log_warn("event=mbox-truncate-failed");
	}
	close(fd);		/* releases the fcntl lock */
	if (dotlocked && unlink(lockpath) == -1)
		log_warn("event=mbox-dotlock-unlink-failed");
	free(io);
	return status;
}
