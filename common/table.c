/*
 * table.c: lookup tables: a red-black tree of lowercased keys, filled
 * from the inline lists and maps of postern.conf or from table files.
 * SECURITY: table files are root's but may hold credentials and alias
 * lists; they are still parsed strictly: every key, value and line is
 * bounded, CR, LF and NUL never enter a key or value, and a failed parse
 * leaves the table as it was.  Lookups never allocate.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "table.h"

/* A line holds at most a key, a separator and a value. */
#define TABLE_LINEMAX	(TABLE_KEYMAX + TABLE_VALUEMAX + 16)
/* How much of a key an error message shows. */
#define TABLE_SHOWMAX	64

struct table_pending {
	int		 active;
	size_t		 line;		/* line of the key */
	int		 colon;		/* "key:": needs a value */
	int		 has_value;
	size_t		 klen;
	size_t		 vlen;
	char		 key[TABLE_KEYMAX + 1];
	char		 value[TABLE_VALUEMAX + 1];
};

static void	table_err(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static void	table_lower(char *, const char *, size_t);
static int	table_is_ipv6(const char *, size_t);
static void	table_tree_free(struct table_tree *);
static int	table_flush(struct table *, struct table_pending *, char *,
		    size_t);
static int	table_parse_line(struct table *, struct table_pending *,
		    const char *, size_t, size_t, char *, size_t);

RB_GENERATE(table_tree, table_entry, node, table_entry_cmp);

int
table_entry_cmp(struct table_entry *a, struct table_entry *b)
{
	return strcmp(a->key, b->key);
}

/* Write an error message, if the caller gave a buffer. */
static void
table_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(err, errsz, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
}

/* ASCII lowercase, independent of the locale: keys are protocol data. */
static void
table_lower(char *dst, const char *src, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ?
		    src[i] - 'A' + 'a' : src[i];
	dst[len] = '\0';
}

struct table *
table_new(const char *name, enum table_source source, const char *path)
{
	struct table	*t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (strlcpy(t->name, name, sizeof(t->name)) >= sizeof(t->name) ||
	    (path != NULL &&
	    strlcpy(t->path, path, sizeof(t->path)) >= sizeof(t->path))) {
		free(t);
		return NULL;
	}
	t->source = source;
	RB_INIT(&t->entries);
	return t;
}

/* Free every entry of a tree. */
static void
table_tree_free(struct table_tree *tree)
{
	struct table_entry	*e;

	while ((e = RB_MIN(table_tree, tree)) != NULL) {
		RB_REMOVE(table_tree, tree, e);
		free(e->key);
		free(e->value);
		free(e);
	}
}

void
table_clear(struct table *t)
{
	table_tree_free(&t->entries);
	t->count = 0;
}

void
table_free(struct table *t)
{
	if (t == NULL)
		return;
	table_clear(t);
	free(t);
}

int
table_add(struct table *t, const char *key, const char *value, char *err,
    size_t errsz)
{
	struct table_entry	*e, find;
	char			 lkey[TABLE_KEYMAX + 1];
	char			 show[TABLE_SHOWMAX];
	size_t			 klen, vlen = 0;

	klen = strnlen(key, TABLE_KEYMAX + 1);
	if (klen == 0) {
		table_err(err, errsz, "empty key");
		return -1;
	}
	if (klen > TABLE_KEYMAX) {
		table_err(err, errsz, "key too long (max %d bytes)",
		    TABLE_KEYMAX);
		return -1;
	}
	if (strpbrk(key, "\r\n") != NULL) {
		table_err(err, errsz, "key contains CR or LF");
		return -1;
	}
	if (value != NULL) {
		vlen = strnlen(value, TABLE_VALUEMAX + 1);
		if (vlen > TABLE_VALUEMAX) {
			table_err(err, errsz, "value too long (max %d bytes)",
			    TABLE_VALUEMAX);
			return -1;
		}
		if (strpbrk(value, "\r\n") != NULL) {
			table_err(err, errsz, "value contains CR or LF");
			return -1;
		}
	}
	table_lower(lkey, key, klen);
	find.key = lkey;
	if (RB_FIND(table_tree, &t->entries, &find) != NULL) {
		table_err(err, errsz, "duplicate key '%s'",
		    log_escape(show, sizeof(show), lkey, klen));
		return -1;
	}
	if (t->count >= TABLE_MAXENTRIES) {
		table_err(err, errsz, "too many entries (max %d)",
		    TABLE_MAXENTRIES);
		return -1;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (e->key = strdup(lkey)) == NULL ||
	    (value != NULL && (e->value = strdup(value)) == NULL)) {
		if (e != NULL) {
			free(e->key);
			free(e);
		}
		table_err(err, errsz, "out of memory");
		return -1;
	}
	RB_INSERT(table_tree, &t->entries, e);
	t->count++;
	return 0;
}

const char *
table_lookup(const struct table *t, const char *key)
{
	struct table_entry	*e, find;
	char			 lkey[TABLE_KEYMAX + 1];
	size_t			 klen;

	if (t == NULL || key == NULL)
		return NULL;
	klen = strnlen(key, TABLE_KEYMAX + 1);
	if (klen == 0 || klen > TABLE_KEYMAX)
		return NULL;
	table_lower(lkey, key, klen);
	find.key = lkey;
	/* RB_FIND does not modify the tree; its prototype is not const. */
	e = RB_FIND(table_tree, (struct table_tree *)&t->entries, &find);
	if (e == NULL)
		return NULL;
	return e->value != NULL ? e->value : "";
}

int
table_contains(const struct table *t, const char *key)
{
	return table_lookup(t, key) != NULL;
}

/* Is s (len bytes) an IPv6 address or prefix ("2001:db8::/32")? */
static int
table_is_ipv6(const char *s, size_t len)
{
	struct in6_addr	 a6;
	char		 buf[INET6_ADDRSTRLEN + 8];
	const char	*slash, *errstr;

	if (len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if ((slash = strchr(buf, '/')) != NULL) {
		strtonum(slash + 1, 0, 128, &errstr);
		if (errstr != NULL || slash[1] == '\0')
			return 0;
		buf[slash - buf] = '\0';
	}
	return inet_pton(AF_INET6, buf, &a6) == 1;
}

/* Add the pending entry (the last key and its value so far) to t. */
static int
table_flush(struct table *t, struct table_pending *pe, char *err,
    size_t errsz)
{
	char	 terr[128], show[TABLE_SHOWMAX];

	if (!pe->active)
		return 0;
	pe->active = 0;
	if (pe->colon && pe->vlen == 0) {
		table_err(err, errsz, "line %zu: missing value for '%s'",
		    pe->line, log_escape(show, sizeof(show), pe->key,
		    pe->klen));
		return -1;
	}
	if (table_add(t, pe->key, pe->has_value ? pe->value : NULL, terr,
	    sizeof(terr)) == -1) {
		table_err(err, errsz, "line %zu: %s", pe->line, terr);
		return -1;
	}
	return 0;
}

/*
 * Parse one line (without its line end).  A new key flushes the pending
 * entry; a continuation line extends its value.
 */
static int
table_parse_line(struct table *t, struct table_pending *pe, const char *s,
    size_t len, size_t lineno, char *err, size_t errsz)
{
	size_t	 i, w, ks, ke, vs, ve;

	if (memchr(s, '\0', len) != NULL) {
		table_err(err, errsz, "line %zu: NUL byte", lineno);
		return -1;
	}
	if (memchr(s, '\r', len) != NULL) {
		table_err(err, errsz, "line %zu: stray carriage return",
		    lineno);
		return -1;
	}
	if (len > TABLE_LINEMAX) {
		table_err(err, errsz, "line %zu: line too long (max %d bytes)",
		    lineno, TABLE_LINEMAX);
		return -1;
	}
	for (i = 0; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
		;
	if (i == len || s[i] == '#')
		return 0;		/* blank line or comment */
	ve = len;
	while (ve > i && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
		ve--;

	if (i > 0) {
		/* Continuation: append to the value with one space. */
		if (!pe->active) {
			table_err(err, errsz, "line %zu: continuation line "
			    "without a key", lineno);
			return -1;
		}
		if (pe->vlen + (pe->vlen > 0) + (ve - i) > TABLE_VALUEMAX) {
			table_err(err, errsz, "line %zu: value too long "
			    "(max %d bytes)", lineno, TABLE_VALUEMAX);
			return -1;
		}
		if (pe->vlen > 0)
			pe->value[pe->vlen++] = ' ';
		memcpy(pe->value + pe->vlen, s + i, ve - i);
		pe->vlen += ve - i;
		pe->value[pe->vlen] = '\0';
		pe->has_value = 1;
		return 0;
	}

	if (table_flush(t, pe, err, errsz) == -1)
		return -1;

	/* The first word; "key:" splits at the colon unless it is IPv6. */
	for (w = 0; w < len && s[w] != ' ' && s[w] != '\t'; w++)
		;
	ks = 0;
	pe->colon = 0;
	if (memchr(s, ':', w) != NULL && !table_is_ipv6(s, w)) {
		ke = (const char *)memchr(s, ':', w) - s;
		vs = ke + 1;
		pe->colon = 1;
	} else {
		ke = w;
		vs = w;
	}
	if (ke == ks) {
		table_err(err, errsz, "line %zu: empty key", lineno);
		return -1;
	}
	if (ke - ks > TABLE_KEYMAX) {
		table_err(err, errsz, "line %zu: key too long (max %d bytes)",
		    lineno, TABLE_KEYMAX);
		return -1;
	}
	while (vs < ve && (s[vs] == ' ' || s[vs] == '\t'))
		vs++;
	if (vs > ve)
		vs = ve;
	if (ve - vs > TABLE_VALUEMAX) {
		table_err(err, errsz, "line %zu: value too long (max %d bytes)",
		    lineno, TABLE_VALUEMAX);
		return -1;
	}
	pe->active = 1;
	pe->line = lineno;
	pe->klen = ke - ks;
	memcpy(pe->key, s + ks, pe->klen);
	pe->key[pe->klen] = '\0';
	pe->vlen = ve - vs;
	memcpy(pe->value, s + vs, pe->vlen);
	pe->value[pe->vlen] = '\0';
	pe->has_value = pe->colon || pe->vlen > 0;
	return 0;
}

int
table_parse_text(struct table *t, const char *text, size_t len, char *err,
    size_t errsz)
{
	struct table		 tmp;
	struct table_pending	*pe;
	const char		*nl;
	size_t			 off = 0, llen, lineno = 0;

	if ((pe = calloc(1, sizeof(*pe))) == NULL) {
		table_err(err, errsz, "out of memory");
		return -1;
	}
	memset(&tmp, 0, sizeof(tmp));
	RB_INIT(&tmp.entries);
	while (off < len) {
		lineno++;
		nl = memchr(text + off, '\n', len - off);
		llen = (nl != NULL ? (size_t)(nl - (text + off)) : len - off);
		if (llen > 0 && text[off + llen - 1] == '\r')
			llen--;		/* CRLF */
		if (table_parse_line(&tmp, pe, text + off, llen, lineno, err,
		    errsz) == -1)
			goto fail;
		off = (nl != NULL) ? (size_t)(nl - text) + 1 : len;
	}
	if (table_flush(&tmp, pe, err, errsz) == -1)
		goto fail;
	free(pe);
	table_clear(t);
	t->entries = tmp.entries;
	t->count = tmp.count;
	return 0;
 fail:
	free(pe);
	table_tree_free(&tmp.entries);
	return -1;
}
