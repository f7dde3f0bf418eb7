/*
 * table.h: lookup tables for postern.conf: inline lists and maps, and
 * files in the "key: value" / "key value" / "key" line formats (which
 * covers /etc/aliases and name:crypt-hash credential files).
 * SECURITY: table text is parsed strictly and bounded; lookups never
 * allocate.
 */
#ifndef POSTERN_TABLE_H
#define POSTERN_TABLE_H

#include <sys/queue.h>
#include <sys/tree.h>
#include <limits.h>
#include <stddef.h>

#define TABLE_NAMELEN		64
#define TABLE_KEYMAX		1024	/* longest key */
#define TABLE_VALUEMAX		8192	/* longest value (aliases lists) */
#define TABLE_MAXENTRIES	1000000

struct table_entry {
	RB_ENTRY(table_entry)	 node;
	char			*key;	/* lowercased */
	char			*value;	/* NULL in a list */
};
RB_HEAD(table_tree, table_entry);
/* Entries are ordered by key, so RB_FOREACH walks a table in key order. */
int	table_entry_cmp(struct table_entry *, struct table_entry *);
RB_PROTOTYPE(table_tree, table_entry, node, table_entry_cmp);

enum table_source {
	TABLE_INLINE,
	TABLE_FILE,
};

struct table {
	TAILQ_ENTRY(table)	 entry;
	char			 name[TABLE_NAMELEN];
	enum table_source	 source;
	char			 path[PATH_MAX];	/* TABLE_FILE */
	struct table_tree	 entries;
	size_t			 count;
};
TAILQ_HEAD(table_list, table);

struct table	*table_new(const char *name, enum table_source, const char *path);
void		 table_free(struct table *);
void		 table_clear(struct table *);
/* table_add: add key (and value, may be NULL).  -1 on duplicate, bad or
 * oversized input, or past TABLE_MAXENTRIES, with a message in err. */
int		 table_add(struct table *, const char *key, const char *value,
		    char *err, size_t errsz);
/* table_lookup: value for key (case-insensitive), "" for a list entry,
 * NULL if absent. */
const char	*table_lookup(const struct table *, const char *key);
int		 table_contains(const struct table *, const char *key);

/*
 * table_parse_text: fill t from a file's bytes.  Lines: "#" comments and
 * blank lines are skipped; "key: value", "key value" or "key"; a line that
 * starts with white space continues the previous value (aliases(5)),
 * joined with one space.  A first word that is an IPv6 address or prefix
 * is a whole key ("::1"), otherwise the first ':' ends the key
 * ("name:hash").  LF or CRLF line ends; NUL bytes, lines longer than
 * TABLE_KEYMAX + TABLE_VALUEMAX + 16 and duplicate keys are errors.
 * Returns 0 with the old entries replaced, or -1 with "line N: message"
 * in err and t unchanged.
 */
int		 table_parse_text(struct table *, const char *text, size_t len,
		    char *err, size_t errsz);

#endif
