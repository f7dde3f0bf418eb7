/*
 * config.c: the postern.conf(5) parser: a lexer with macro expansion, one
 * function per statement, then the resolution of names used before they
 * were defined, then defaults.
 * SECURITY: runs in every process on root's text (children get it from
 * the parent); still every token and field is bounded, over-long input is
 * rejected, never cut, and every field is validated before any default is
 * applied.  No I/O except through the table loader.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "table.h"

#define CONF_FILEMAX	(64 * 1024 * 1024)	/* config, table files */
#define CONF_TOKMAX	(TABLE_VALUEMAX + 1)	/* longest token + NUL */
#define CONF_MACROLEN	64		/* longest macro name + NUL */
#define CONF_SHOWMAX	64		/* text shown in a message */
#define CONF_MAXSIZE	((size_t)1024 * 1024 * 1024)	/* 1G */
#define CONF_MAXRCPT	100000
#define CONF_MAXERRORS	1000
#define CONF_MAXTLSWORKERS	64
#define CONF_MAXTIMEOUT	(24 * 3600)
#define CONF_MAXEXPIRE	(365 * 24 * 3600)

enum conf_tok {
	TOK_EOF,
	TOK_NL,
	TOK_WORD,	/* bare word, no macro in it: may be a keyword */
	TOK_STRING,	/* quoted string, or a word with a macro in it */
	TOK_TABLE,	/* <name> */
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_COMMA,
	TOK_EQUAL,
	TOK_BANG,
};

struct conf_token {
	enum conf_tok	 type;
	int		 line;
	int		 col;
	size_t		 len;
	char		 str[CONF_TOKMAX];
};

struct conf_pos {
	int		 line;
	int		 col;
};

struct conf_macro_def {
	TAILQ_ENTRY(conf_macro_def) entry;
	int		 cmdline;
	char		 name[CONF_MACROLEN];
	char		*value;
};

enum conf_ref_kind {
	REF_TABLE,
	REF_PKI,
	REF_ACTION,
};

/* A name used before the end of the file, checked once it is all read. */
struct conf_ref {
	TAILQ_ENTRY(conf_ref) entry;
	enum conf_ref_kind	 kind;
	char			 name[CONF_HOSTLEN];
	struct conf_pos		 pos;
	struct match_conf	*match;		/* REF_ACTION */
};

struct conf_parser {
	const char		*fname;
	const unsigned char	*text;
	size_t			 len;
	size_t			 off;
	int			 line;
	int			 col;
	struct conf_token	 tok[2];
	int			 cur;
	int			 peeked;
	int			 failed;
	char			*err;
	size_t			 errsz;
	conf_loader		 loader;
	void			*loader_arg;
	struct postern_conf	*conf;
	TAILQ_HEAD(, conf_macro_def) macros;
	TAILQ_HEAD(, conf_ref)	 refs;
	/* Which global settings the file made, to catch duplicates. */
	int			 set_hostname;
	int			 set_spool;
	int			 set_size;
	int			 set_rcpt;
	int			 set_errors;
	int			 set_timeout;
	int			 set_expire;
	int			 set_warn;
	int			 set_retry_min;
	int			 set_retry_max;
	int			 set_tls_ciphers;
	int			 set_tls_workers;
	int			 set_tls_ca;
	int			 set_control;
	int			 set_control_admin;
	int			 set_control_monitor;
};

static void	conf_err(struct conf_parser *, int, int, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
static void	conf_terr(struct conf_parser *, const struct conf_token *,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
static const char *conf_show(char *, size_t, const char *);
static const char *conf_desc(char *, size_t, const struct conf_token *);
static int	conf_valid_macro_name(const char *, size_t);
static struct conf_macro_def *conf_macro_find(struct conf_parser *,
		    const char *);
static int	conf_macro_define(struct conf_parser *, const char *,
		    const char *, int);
static int	conf_is_namec(int, int);
static int	conf_is_wordc(int);
static int	conf_peekc(struct conf_parser *, size_t);
static void	conf_advance(struct conf_parser *);
static int	conf_append(struct conf_parser *, struct conf_token *,
		    const char *, size_t);
static int	conf_expand(struct conf_parser *, struct conf_token *, int);
static int	conf_lex_string(struct conf_parser *, struct conf_token *);
static int	conf_lex_table(struct conf_parser *, struct conf_token *);
static int	conf_lex_word(struct conf_parser *, struct conf_token *);
static int	conf_lex(struct conf_parser *, struct conf_token *);
static struct conf_token *conf_next(struct conf_parser *);
static struct conf_token *conf_peek(struct conf_parser *);
static struct conf_token *conf_next_nonl(struct conf_parser *);
static int	conf_is_kw(const struct conf_token *, const char *);
static int	conf_is_value(const struct conf_token *);
static int	conf_is_end(const struct conf_token *);
static int	conf_eol(struct conf_parser *);
static struct conf_token *conf_value(struct conf_parser *, const char *);
static int	conf_copy(struct conf_parser *, const struct conf_token *,
		    const char *, char *, size_t);
static int	conf_ref_add(struct conf_parser *, enum conf_ref_kind,
		    const char *, const struct conf_token *,
		    struct match_conf *);
static int	conf_valid_chars(const char *, const char *);
static int	conf_valid_hostname(const char *);
static int	conf_valid_hostport(const char *, int);
static int	conf_valid_relay_url(const char *);
static int	conf_check_template(const char *, char *, size_t);
static int	conf_number(struct conf_parser *, const char *, long long,
		    long long, long long *);
static int	conf_duration(struct conf_parser *, const char *,
		    unsigned int, unsigned int *);
static int	conf_abspath(struct conf_parser *, const char *, char *,
		    size_t);
static int	conf_table_name(struct conf_parser *,
		    const struct conf_token *, char *);
static int	conf_inline(struct conf_parser *, struct table *, int);
static int	conf_tableish(struct conf_parser *, const char *, char *,
		    size_t);
static int	conf_table_ref(struct conf_parser *, const char *, char *,
		    size_t);
static int	conf_st_macro(struct conf_parser *, const char *,
		    struct conf_pos);
static int	conf_st_hostname(struct conf_parser *, struct conf_pos);
static int	conf_st_queue(struct conf_parser *, struct conf_pos);
static int	conf_st_size(struct conf_parser *, struct conf_pos);
static int	conf_st_count(struct conf_parser *, struct conf_pos,
		    const char *);
static int	conf_st_timeout(struct conf_parser *, struct conf_pos);
static int	conf_st_pki(struct conf_parser *, struct conf_pos);
static int	conf_st_tls(struct conf_parser *, struct conf_pos);
static int	conf_st_control(struct conf_parser *, struct conf_pos);
static int	conf_st_table(struct conf_parser *, struct conf_pos);
static int	conf_st_listen(struct conf_parser *, struct conf_pos);
static int	conf_st_action(struct conf_parser *, struct conf_pos);
static int	conf_st_match(struct conf_parser *, struct conf_pos);
static int	conf_resolve(struct conf_parser *);
static int	conf_defaults(struct conf_parser *);
static void	conf_parser_free(struct conf_parser *);
static int	config_parse_scaled(const char *, const char *,
		    const unsigned long long *, unsigned long long,
		    unsigned long long *);

/* ------------------------------------------------------------ errors */

/* Record the first error as "fname:line:col: message". */
static void
conf_err(struct conf_parser *p, int line, int col, const char *fmt, ...)
{
	char	 msg[CONF_ERRLEN];
	va_list	 ap;

	if (p->failed)
		return;
	p->failed = 1;
	if (p->err == NULL || p->errsz == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	if (line > 0)
		snprintf(p->err, p->errsz, "%s:%d:%d: %s", p->fname, line, col,
		    msg);
	else
		snprintf(p->err, p->errsz, "%s: %s", p->fname, msg);
}

/* Error at a token. */
static void
conf_terr(struct conf_parser *p, const struct conf_token *t,
    const char *fmt, ...)
{
	char	 msg[CONF_ERRLEN];
	va_list	 ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	conf_err(p, t->line, t->col, "%s", msg);
}

/* Text from the file, escaped and shortened for a message. */
static const char *
conf_show(char *buf, size_t bufsz, const char *s)
{
	return log_escape(buf, bufsz, s, strlen(s));
}

/* What a token is, for "expected X, found Y". */
static const char *
conf_desc(char *buf, size_t bufsz, const struct conf_token *t)
{
	char	 show[CONF_SHOWMAX];

	switch (t->type) {
	case TOK_EOF:
		return "end of file";
	case TOK_NL:
		return "end of line";
	case TOK_WORD:
		snprintf(buf, bufsz, "'%s'", conf_show(show, sizeof(show),
		    t->str));
		return buf;
	case TOK_STRING:
		snprintf(buf, bufsz, "\"%s\"", conf_show(show, sizeof(show),
		    t->str));
		return buf;
	case TOK_TABLE:
		snprintf(buf, bufsz, "<%s>", conf_show(show, sizeof(show),
		    t->str));
		return buf;
	case TOK_LBRACE:
		return "'{'";
	case TOK_RBRACE:
		return "'}'";
	case TOK_COMMA:
		return "','";
	case TOK_EQUAL:
		return "'='";
	case TOK_BANG:
		return "'!'";
	}
	return "?";
}

/* ------------------------------------------------------------ macros */

static int
conf_valid_macro_name(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len >= CONF_MACROLEN)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z'))
			continue;
		if (i > 0 && s[i] >= '0' && s[i] <= '9')
			continue;
		return 0;
	}
	return 1;
}

static struct conf_macro_def *
conf_macro_find(struct conf_parser *p, const char *name)
{
	struct conf_macro_def	*m;

	TAILQ_FOREACH(m, &p->macros, entry)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

/*
 * Define or redefine a macro.  One from the command line wins over the
 * file's definition, silently: overriding the file is what -D is for.
 */
static int
conf_macro_define(struct conf_parser *p, const char *name,
    const char *value, int cmdline)
{
	struct conf_macro_def	*m;
	char			*v;

	if ((m = conf_macro_find(p, name)) != NULL) {
		if (m->cmdline && !cmdline)
			return 0;
		if ((v = strdup(value)) == NULL)
			return -1;
		free(m->value);
		m->value = v;
		m->cmdline = cmdline;
		return 0;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -1;
	if ((m->value = strdup(value)) == NULL) {
		free(m);
		return -1;
	}
	strlcpy(m->name, name, sizeof(m->name));
	m->cmdline = cmdline;
	TAILQ_INSERT_TAIL(&p->macros, m, entry);
	return 0;
}

/* ------------------------------------------------------------ lexer */

/* The byte n ahead, or -1 at the end. */
static int
conf_peekc(struct conf_parser *p, size_t n)
{
	if (p->off + n >= p->len)
		return -1;
	return p->text[p->off + n];
}

static void
conf_advance(struct conf_parser *p)
{
	if (p->off >= p->len)
		return;
	if (p->text[p->off] == '\n') {
		p->line++;
		p->col = 1;
	} else
		p->col++;
	p->off++;
}

/* Append to a token; a token that would not fit is an error. */
static int
conf_append(struct conf_parser *p, struct conf_token *t, const char *s,
    size_t n)
{
	if (n >= sizeof(t->str) - t->len) {
		conf_terr(p, t, "%s too long (max %zu bytes)",
		    t->type == TOK_WORD ? "word" : "string",
		    sizeof(t->str) - 1);
		return -1;
	}
	memcpy(t->str + t->len, s, n);
	t->len += n;
	t->str[t->len] = '\0';
	return 0;
}

/* A character of a macro name (or of a table name, with '-'). */
static int
conf_is_namec(int c, int first)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (!first && c >= '0' && c <= '9');
}

/* A character of a bare word, besides "%{...}" and $macros. */
static int
conf_is_wordc(int c)
{
	return conf_is_namec(c, 0) || (c != '\0' && c != -1 &&
	    strchr(".:/@%~+-", c) != NULL);
}

/*
 * At a '$': expand "$name" or "${name}" into t.  In a quoted string a
 * '$' that starts no name is kept as it is (instring); in a word it is an
 * error.  Returns 1 if expanded, 0 if kept, -1 on error.
 */
static int
conf_expand(struct conf_parser *p, struct conf_token *t, int instring)
{
	struct conf_macro_def	*m;
	char			 name[CONF_MACROLEN], show[CONF_SHOWMAX];
	int			 line = p->line, col = p->col, c;
	size_t			 n = 0, skip;
	int			 brace;

	brace = conf_peekc(p, 1) == '{';
	skip = brace ? 2 : 1;
	while ((c = conf_peekc(p, skip + n)) != -1 &&
	    conf_is_namec(c, n == 0)) {
		if (n + 1 >= sizeof(name)) {
			conf_err(p, line, col, "macro name too long");
			return -1;
		}
		name[n++] = c;
	}
	name[n] = '\0';
	if (n == 0 || (brace && c != '}')) {
		if (instring && !brace) {
			conf_advance(p);
			return conf_append(p, t, "$", 1) == -1 ? -1 : 0;
		}
		conf_err(p, line, col, "invalid macro reference");
		return -1;
	}
	if ((m = conf_macro_find(p, name)) == NULL) {
		conf_err(p, line, col, "undefined macro '%s'",
		    conf_show(show, sizeof(show), name));
		return -1;
	}
	for (skip += n + (brace ? 1 : 0); skip > 0; skip--)
		conf_advance(p);
	if (conf_append(p, t, m->value, strlen(m->value)) == -1)
		return -1;
	return 1;
}

/* A quoted string: escapes \" \\ \$, macros, no line end inside. */
static int
conf_lex_string(struct conf_parser *p, struct conf_token *t)
{
	int	 c;
	char	 ch;

	t->type = TOK_STRING;
	conf_advance(p);
	for (;;) {
		c = conf_peekc(p, 0);
		if (c == -1 || c == '\n' ||
		    (c == '\r' && conf_peekc(p, 1) == '\n')) {
			conf_terr(p, t, "unterminated string");
			return -1;
		}
		if (c == '"') {
			conf_advance(p);
			return 0;
		}
		if (c == '\\') {
			c = conf_peekc(p, 1);
			if (c != '"' && c != '\\' && c != '$') {
				conf_err(p, p->line, p->col,
				    "invalid escape in string");
				return -1;
			}
			conf_advance(p);
			conf_advance(p);
			ch = c;
			if (conf_append(p, t, &ch, 1) == -1)
				return -1;
			continue;
		}
		if (c == '$') {
			if (conf_expand(p, t, 1) == -1)
				return -1;
			continue;
		}
		if (c < 0x20 && c != '\t') {
			conf_err(p, p->line, p->col, "invalid character 0x%02x "
			    "in string", c);
			return -1;
		}
		if (c == 0x7f) {
			conf_err(p, p->line, p->col, "invalid character 0x7f "
			    "in string");
			return -1;
		}
		ch = c;
		conf_advance(p);
		if (conf_append(p, t, &ch, 1) == -1)
			return -1;
	}
}

/* A table reference: <name>. */
static int
conf_lex_table(struct conf_parser *p, struct conf_token *t)
{
	int	 c;
	char	 ch;

	t->type = TOK_TABLE;
	conf_advance(p);
	while ((c = conf_peekc(p, 0)) != -1 && c != '>') {
		if (!(conf_is_namec(c, 0) || c == '-'))
			break;
		if (t->len >= TABLE_NAMELEN - 1) {
			conf_terr(p, t, "table name too long (max %d bytes)",
			    TABLE_NAMELEN - 1);
			return -1;
		}
		ch = c;
		conf_advance(p);
		conf_append(p, t, &ch, 1);
	}
	if (c != '>' || t->len == 0) {
		conf_terr(p, t, "invalid table reference");
		return -1;
	}
	conf_advance(p);
	return 0;
}

/*
 * A bare word: letters, digits and _ . : / @ % ~ + -, with "%{...}"
 * template variables and $macros in it.
 */
static int
conf_lex_word(struct conf_parser *p, struct conf_token *t)
{
	int	 c, open = 0, prev = 0, rv;
	char	 ch;

	t->type = TOK_WORD;
	while ((c = conf_peekc(p, 0)) != -1) {
		if (c == '$') {
			if ((rv = conf_expand(p, t, 0)) == -1)
				return -1;
			t->type = TOK_STRING;
			prev = '$';
			continue;
		}
		if (conf_is_wordc(c))
			;
		else if (c == '{' && prev == '%')
			open = 1;
		else if (c == '}' && open)
			open = 0;
		else
			break;
		ch = c;
		conf_advance(p);
		if (conf_append(p, t, &ch, 1) == -1)
			return -1;
		prev = c;
	}
	return 0;
}

/* Read the next token into t. */
static int
conf_lex(struct conf_parser *p, struct conf_token *t)
{
	int	 c;

	for (;;) {
		c = conf_peekc(p, 0);
		if (c == ' ' || c == '\t')
			conf_advance(p);
		else if (c == '#') {
			while ((c = conf_peekc(p, 0)) != -1 && c != '\n')
				conf_advance(p);
		} else if (c == '\\' && conf_peekc(p, 1) == '\n') {
			conf_advance(p);
			conf_advance(p);
		} else if (c == '\\' && conf_peekc(p, 1) == '\r' &&
		    conf_peekc(p, 2) == '\n') {
			conf_advance(p);
			conf_advance(p);
			conf_advance(p);
		} else
			break;
	}
	t->line = p->line;
	t->col = p->col;
	t->len = 0;
	t->str[0] = '\0';
	switch (c) {
	case -1:
		t->type = TOK_EOF;
		return 0;
	case '\n':
		t->type = TOK_NL;
		conf_advance(p);
		return 0;
	case '\r':
		if (conf_peekc(p, 1) != '\n')
			break;
		t->type = TOK_NL;
		conf_advance(p);
		conf_advance(p);
		return 0;
	case '"':
		return conf_lex_string(p, t);
	case '<':
		return conf_lex_table(p, t);
	case '{':
		t->type = TOK_LBRACE;
		conf_advance(p);
		return 0;
	case '}':
		t->type = TOK_RBRACE;
		conf_advance(p);
		return 0;
	case ',':
		t->type = TOK_COMMA;
		conf_advance(p);
		return 0;
	case '=':
		t->type = TOK_EQUAL;
		conf_advance(p);
		return 0;
	case '!':
		t->type = TOK_BANG;
		conf_advance(p);
		return 0;
	default:
		if (c == '$' || conf_is_wordc(c))
			return conf_lex_word(p, t);
		break;
	}
	if (c > 0x20 && c < 0x7f)
		conf_terr(p, t, "unexpected character '%c'", c);
	else
		conf_terr(p, t, "unexpected character 0x%02x", c);
	return -1;
}

/*
 * The next token.  It stays valid until the second call after this one,
 * so the previous token can still be read after a conf_next().
 */
static struct conf_token *
conf_next(struct conf_parser *p)
{
	if (!p->peeked && conf_lex(p, &p->tok[p->cur ^ 1]) == -1)
		return NULL;
	p->peeked = 0;
	p->cur ^= 1;
	return &p->tok[p->cur];
}

static struct conf_token *
conf_peek(struct conf_parser *p)
{
	if (!p->peeked) {
		if (conf_lex(p, &p->tok[p->cur ^ 1]) == -1)
			return NULL;
		p->peeked = 1;
	}
	return &p->tok[p->cur ^ 1];
}

/* The next token that is not a line end (inside braces). */
static struct conf_token *
conf_next_nonl(struct conf_parser *p)
{
	struct conf_token	*t;

	while ((t = conf_next(p)) != NULL && t->type == TOK_NL)
		;
	return t;
}

/* ------------------------------------------------------------ helpers */

static int
conf_is_kw(const struct conf_token *t, const char *kw)
{
	return t->type == TOK_WORD && strcmp(t->str, kw) == 0;
}

static int
conf_is_value(const struct conf_token *t)
{
	return t->type == TOK_WORD || t->type == TOK_STRING;
}

static int
conf_is_end(const struct conf_token *t)
{
	return t->type == TOK_NL || t->type == TOK_EOF;
}

/* The statement must end here. */
static int
conf_eol(struct conf_parser *p)
{
	struct conf_token	*t;
	char			 d[CONF_SHOWMAX + 8];

	if ((t = conf_next(p)) == NULL)
		return -1;
	if (!conf_is_end(t)) {
		conf_terr(p, t, "unexpected %s", conf_desc(d, sizeof(d), t));
		return -1;
	}
	return 0;
}

/* The next token, which must be a word or a string: the value of what. */
static struct conf_token *
conf_value(struct conf_parser *p, const char *what)
{
	struct conf_token	*t;
	char			 d[CONF_SHOWMAX + 8];

	if ((t = conf_next(p)) == NULL)
		return NULL;
	if (conf_is_end(t)) {
		conf_terr(p, t, "missing %s", what);
		return NULL;
	}
	if (!conf_is_value(t)) {
		conf_terr(p, t, "expected %s, found %s", what,
		    conf_desc(d, sizeof(d), t));
		return NULL;
	}
	return t;
}

/* Copy a token's text into a field; one that does not fit is an error. */
static int
conf_copy(struct conf_parser *p, const struct conf_token *t,
    const char *what, char *dst, size_t dstsz)
{
	if (t->len == 0) {
		conf_terr(p, t, "empty %s", what);
		return -1;
	}
	if (t->len >= dstsz) {
		conf_terr(p, t, "%s too long (max %zu bytes)", what, dstsz - 1);
		return -1;
	}
	memcpy(dst, t->str, t->len + 1);
	return 0;
}

/* Remember a name to check once the whole file is read. */
static int
conf_ref_add(struct conf_parser *p, enum conf_ref_kind kind,
    const char *name, const struct conf_token *t, struct match_conf *m)
{
	struct conf_ref	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		conf_terr(p, t, "out of memory");
		return -1;
	}
	r->kind = kind;
	strlcpy(r->name, name, sizeof(r->name));
	r->pos.line = t->line;
	r->pos.col = t->col;
	r->match = m;
	TAILQ_INSERT_TAIL(&p->refs, r, entry);
	return 0;
}

/* Only letters, digits and the characters of extra, at least one. */
static int
conf_valid_chars(const char *s, const char *extra)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!conf_is_namec((unsigned char)*s, 0) &&
		    strchr(extra, *s) == NULL)
			return 0;
	return 1;
}

/* A host name: dot-separated labels of letters, digits, '-' and '_'. */
static int
conf_valid_hostname(const char *s)
{
	size_t	 len = strlen(s), label = 0, i;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!conf_is_namec((unsigned char)s[i], 0) && s[i] != '-')
			return 0;
		if (label == 0 && s[i] == '-')
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && s[len - 1] != '-';
}

/* "host:port", "[v6]:port", or with port optional "host", "[v6]". */
static int
conf_valid_hostport(const char *s, int need_port)
{
	char		 host[CONF_HOSTLEN];
	struct in6_addr	 a6;
	const char	*port = NULL, *errstr, *end;
	size_t		 hlen;

	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL)
			return 0;
		hlen = end - s - 1;
		if (hlen == 0 || hlen >= sizeof(host))
			return 0;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return 0;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return 0;
	} else {
		end = strchr(s, ':');
		hlen = end != NULL ? (size_t)(end - s) : strlen(s);
		if (hlen == 0 || hlen >= sizeof(host))
			return 0;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (!conf_valid_hostname(host))
			return 0;
		if (end != NULL)
			port = end + 1;
	}
	if (port == NULL)
		return !need_port;
	if (*port < '0' || *port > '9')
		return 0;
	strtonum(port, 1, 65535, &errstr);
	return errstr == NULL;
}

/* scheme://[label@]host[:port], scheme smtp, smtp+tls, smtp+notls, smtps */
static int
conf_valid_relay_url(const char *s)
{
	static const char *const schemes[] = {
		"smtp://", "smtp+tls://", "smtp+notls://", "smtps://",
	};
	char		 label[CONF_NAMELEN];
	const char	*rest = NULL, *at;
	size_t		 i;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncmp(s, schemes[i], strlen(schemes[i])) == 0)
			rest = s + strlen(schemes[i]);
	if (rest == NULL)
		return 0;
	if ((at = strchr(rest, '@')) != NULL) {
		if ((size_t)(at - rest) >= sizeof(label))
			return 0;
		memcpy(label, rest, at - rest);
		label[at - rest] = '\0';
		if (!conf_valid_chars(label, "._-"))
			return 0;
		rest = at + 1;
	}
	return conf_valid_hostport(rest, 0);
}

/*
 * A maildir or mbox path template: absolute or starting with "~" or
 * "~/"; '%' starts %{user}, %{rcpt}, %{rcpt.user}, %{rcpt.domain} or is
 * "%%".  The same rules as the expansion in the delivery child.
 */
static int
conf_check_template(const char *s, char *why, size_t whysz)
{
	static const char *const vars[] = {
		"%{user}", "%{rcpt}", "%{rcpt.user}", "%{rcpt.domain}",
	};
	char		 show[CONF_SHOWMAX];
	const char	*q, *end;
	size_t		 i;

	if (s[0] != '/' && strcmp(s, "~") != 0 && strncmp(s, "~/", 2) != 0) {
		snprintf(why, whysz, "must start with '/' or '~/'");
		return -1;
	}
	for (q = s; *q != '\0'; q++) {
		if (*q == '~' && q != s) {
			snprintf(why, whysz, "'~' is only allowed at the "
			    "start");
			return -1;
		}
		if (*q != '%')
			continue;
		if (q[1] == '%') {
			q++;
			continue;
		}
		if (q[1] != '{' || (end = strchr(q, '}')) == NULL) {
			snprintf(why, whysz, "'%%' must start a variable such "
			    "as %%{user} (or be doubled)");
			return -1;
		}
		for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
			if (strlen(vars[i]) == (size_t)(end - q + 1) &&
			    strncmp(q, vars[i], end - q + 1) == 0)
				break;
		if (i == sizeof(vars) / sizeof(vars[0])) {
			snprintf(why, whysz, "unknown variable '%s'",
			    log_escape(show, sizeof(show), q, end - q + 1));
			return -1;
		}
		q = end;
	}
	return 0;
}

/* A decimal number in [min, max]; what names it in messages. */
static int
conf_number(struct conf_parser *p, const char *what, long long min,
    long long max, long long *out)
{
	struct conf_token	*t;
	const char		*errstr;
	char			 show[CONF_SHOWMAX];

	if ((t = conf_value(p, what)) == NULL)
		return -1;
	if (t->str[0] < '0' || t->str[0] > '9') {
		conf_terr(p, t, "invalid %s '%s'", what,
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}
	*out = strtonum(t->str, min, max, &errstr);
	if (errstr != NULL) {
		if (errno == EINVAL)
			conf_terr(p, t, "invalid %s '%s'", what,
			    conf_show(show, sizeof(show), t->str));
		else
			conf_terr(p, t, "%s must be between %lld and %lld",
			    what, min, max);
		return -1;
	}
	return 0;
}

/* A duration of at most max seconds. */
static int
conf_duration(struct conf_parser *p, const char *what, unsigned int max,
    unsigned int *out)
{
	struct conf_token	*t;
	char			 show[CONF_SHOWMAX];

	if ((t = conf_value(p, what)) == NULL)
		return -1;
	if (config_parse_duration(t->str, out) == -1) {
		conf_terr(p, t, "invalid duration '%s'",
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}
	if (*out > max) {
		conf_terr(p, t, "%s must be at most %ud", what,
		    max / (24 * 3600));
		return -1;
	}
	return 0;
}

/* An absolute path, the value of what. */
static int
conf_abspath(struct conf_parser *p, const char *what, char *dst,
    size_t dstsz)
{
	struct conf_token	*t;

	if ((t = conf_value(p, what)) == NULL)
		return -1;
	if (conf_copy(p, t, what, dst, dstsz) == -1)
		return -1;
	if (dst[0] != '/') {
		conf_terr(p, t, "%s must be absolute", what);
		return -1;
	}
	return 0;
}

/* A user-given table name: [A-Za-z0-9_-]+, shorter than TABLE_NAMELEN. */
static int
conf_table_name(struct conf_parser *p, const struct conf_token *t,
    char *dst)
{
	char	 show[CONF_SHOWMAX];

	if (t->len >= TABLE_NAMELEN) {
		conf_terr(p, t, "table name too long (max %d bytes)",
		    TABLE_NAMELEN - 1);
		return -1;
	}
	if (!conf_valid_chars(t->str, "-")) {
		conf_terr(p, t, "invalid table name '%s'",
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}
	memcpy(dst, t->str, t->len + 1);
	return 0;
}

/*
 * After '{' (at lb): a list { "a", "b" } or, if allow_map, a map
 * { "k" = "v", ... }.  Line ends inside are ignored; a trailing comma
 * is allowed.
 */
static int
conf_inline(struct conf_parser *p, struct table *tb, int allow_map)
{
	struct conf_token	*t;
	struct conf_pos		 kpos;
	char			 key[TABLE_KEYMAX + 1], terr[128];
	char			 d[CONF_SHOWMAX + 8];
	int			 map = -1;

	for (;;) {
		if ((t = conf_next_nonl(p)) == NULL)
			return -1;
		if (t->type == TOK_RBRACE) {
			if (tb->count == 0) {
				conf_terr(p, t, "empty table");
				return -1;
			}
			return 0;
		}
		if (!conf_is_value(t)) {
			conf_terr(p, t, "expected a table entry, found %s",
			    conf_desc(d, sizeof(d), t));
			return -1;
		}
		if (conf_copy(p, t, "key", key, sizeof(key)) == -1)
			return -1;
		kpos.line = t->line;
		kpos.col = t->col;
		if ((t = conf_next_nonl(p)) == NULL)
			return -1;
		if (t->type == TOK_EQUAL) {
			if (!allow_map) {
				conf_terr(p, t, "expected a list, not a map");
				return -1;
			}
			if (map == 0) {
				conf_terr(p, t, "mixed list and map entries");
				return -1;
			}
			map = 1;
			if ((t = conf_next_nonl(p)) == NULL)
				return -1;
			if (!conf_is_value(t)) {
				conf_terr(p, t, "expected a value, found %s",
				    conf_desc(d, sizeof(d), t));
				return -1;
			}
			if (table_add(tb, key, t->str, terr,
			    sizeof(terr)) == -1) {
				conf_err(p, kpos.line, kpos.col, "%s", terr);
				return -1;
			}
			if ((t = conf_next_nonl(p)) == NULL)
				return -1;
		} else {
			if (map == 1) {
				conf_err(p, kpos.line, kpos.col,
				    "mixed list and map entries");
				return -1;
			}
			map = 0;
			if (table_add(tb, key, NULL, terr,
			    sizeof(terr)) == -1) {
				conf_err(p, kpos.line, kpos.col, "%s", terr);
				return -1;
			}
		}
		if (t->type == TOK_RBRACE)
			return 0;
		if (t->type != TOK_COMMA) {
			conf_terr(p, t, "expected ',' or '}', found %s",
			    conf_desc(d, sizeof(d), t));
			return -1;
		}
	}
}

/*
 * What a match filter checks against: <name>, or a literal or { list }
 * that becomes an anonymous table "@line:col".  The table name goes to
 * dst.
 */
static int
conf_tableish(struct conf_parser *p, const char *what, char *dst,
    size_t dstsz)
{
	struct conf_token	*t;
	struct table		*tb;
	char			 name[TABLE_NAMELEN], terr[128];
	char			 d[CONF_SHOWMAX + 8];

	if ((t = conf_next(p)) == NULL)
		return -1;
	if (t->type == TOK_TABLE) {
		strlcpy(dst, t->str, dstsz);
		return conf_ref_add(p, REF_TABLE, t->str, t, NULL);
	}
	if (conf_is_end(t)) {
		conf_terr(p, t, "missing %s", what);
		return -1;
	}
	if (!conf_is_value(t) && t->type != TOK_LBRACE) {
		conf_terr(p, t, "expected %s, found %s", what,
		    conf_desc(d, sizeof(d), t));
		return -1;
	}
	snprintf(name, sizeof(name), "@%d:%d", t->line, t->col);
	if ((tb = table_new(name, TABLE_INLINE, NULL)) == NULL) {
		conf_terr(p, t, "out of memory");
		return -1;
	}
	TAILQ_INSERT_TAIL(&p->conf->tables, tb, entry);
	strlcpy(dst, name, dstsz);
	if (t->type == TOK_LBRACE)
		return conf_inline(p, tb, 0);
	if (table_add(tb, t->str, NULL, terr, sizeof(terr)) == -1) {
		conf_terr(p, t, "%s", terr);
		return -1;
	}
	return 0;
}

/* After a keyword such as "alias": a table reference <name>. */
static int
conf_table_ref(struct conf_parser *p, const char *kw, char *dst,
    size_t dstsz)
{
	struct conf_token	*t;
	char			 d[CONF_SHOWMAX + 8];

	if ((t = conf_next(p)) == NULL)
		return -1;
	if (t->type != TOK_TABLE) {
		conf_terr(p, t, "%s needs a table <name>, found %s", kw,
		    conf_desc(d, sizeof(d), t));
		return -1;
	}
	strlcpy(dst, t->str, dstsz);
	return conf_ref_add(p, REF_TABLE, t->str, t, NULL);
}

/* ------------------------------------------------------------ statements */

/* name = value */
static int
conf_st_macro(struct conf_parser *p, const char *name, struct conf_pos kw)
{
	struct conf_token	*t;
	char			 show[CONF_SHOWMAX];

	if (!conf_valid_macro_name(name, strlen(name))) {
		conf_err(p, kw.line, kw.col, "invalid macro name '%s'",
		    conf_show(show, sizeof(show), name));
		return -1;
	}
	if (conf_next(p) == NULL)		/* the '=' */
		return -1;
	if ((t = conf_value(p, "macro value")) == NULL)
		return -1;
	if (conf_macro_define(p, name, t->str, 0) == -1) {
		conf_terr(p, t, "out of memory");
		return -1;
	}
	return conf_eol(p);
}

/* hostname NAME */
static int
conf_st_hostname(struct conf_parser *p, struct conf_pos kw)
{
	struct conf_token	*t;
	char			 show[CONF_SHOWMAX];

	if (p->set_hostname) {
		conf_err(p, kw.line, kw.col, "duplicate 'hostname'");
		return -1;
	}
	p->set_hostname = 1;
	if ((t = conf_value(p, "host name")) == NULL)
		return -1;
	if (!conf_valid_hostname(t->str)) {
		conf_terr(p, t, "invalid host name '%s'",
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}
	strlcpy(p->conf->hostname, t->str, sizeof(p->conf->hostname));
	return conf_eol(p);
}

/*
 * queue PATH | queue expire DURATION | queue warn DURATION |
 * queue retry-min DURATION | queue retry-max DURATION
 */
static int
conf_st_queue(struct conf_parser *p, struct conf_pos kw)
{
	struct conf_token	*t;
	struct postern_conf	*c = p->conf;
	const struct {
		const char	*word;
		const char	*what;
		int		*set;
		unsigned int	*value;
	} subs[] = {
		{ "expire", "queue expire", &p->set_expire, &c->queue_expire },
		{ "warn", "queue warn", &p->set_warn, &c->queue_warn },
		{ "retry-min", "queue retry-min", &p->set_retry_min,
		    &c->queue_retry_min },
		{ "retry-max", "queue retry-max", &p->set_retry_max,
		    &c->queue_retry_max },
	};
	size_t			 i;

	if ((t = conf_peek(p)) == NULL)
		return -1;
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (!conf_is_kw(t, subs[i].word))
			continue;
		if (*subs[i].set) {
			conf_terr(p, t, "duplicate '%s'", subs[i].what);
			return -1;
		}
		*subs[i].set = 1;
		conf_next(p);
		if (conf_duration(p, subs[i].what, CONF_MAXEXPIRE,
		    subs[i].value) == -1)
			return -1;
		if (p->set_retry_min && p->set_retry_max &&
		    c->queue_retry_min > c->queue_retry_max) {
			conf_err(p, kw.line, kw.col, "queue retry-min is "
			    "longer than queue retry-max");
			return -1;
		}
		return conf_eol(p);
	}
	if (p->set_spool) {
		conf_err(p, kw.line, kw.col, "duplicate 'queue'");
		return -1;
	}
	p->set_spool = 1;
	if ((t = conf_peek(p)) == NULL)
		return -1;
	if (t->type == TOK_WORD && t->str[0] != '/') {
		conf_terr(p, t, "unknown queue setting '%s'", t->str);
		return -1;
	}
	if (conf_abspath(p, "queue path", c->spool, sizeof(c->spool)) == -1)
		return -1;
	return conf_eol(p);
}

/* max-message-size SIZE */
static int
conf_st_size(struct conf_parser *p, struct conf_pos kw)
{
	struct conf_token	*t;
	char			 show[CONF_SHOWMAX];

	if (p->set_size) {
		conf_err(p, kw.line, kw.col, "duplicate 'max-message-size'");
		return -1;
	}
	p->set_size = 1;
	if ((t = conf_value(p, "size")) == NULL)
		return -1;
	if (config_parse_size(t->str, &p->conf->max_message_size) == -1) {
		conf_terr(p, t, "invalid size '%s'",
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}
	if (p->conf->max_message_size > CONF_MAXSIZE) {
		conf_terr(p, t, "max-message-size must be at most 1G");
		return -1;
	}
	return conf_eol(p);
}

/* max-recipients N | max-errors N */
static int
conf_st_count(struct conf_parser *p, struct conf_pos kw, const char *what)
{
	long long	 n;
	int		 rcpt = strcmp(what, "max-recipients") == 0;
	int		*set = rcpt ? &p->set_rcpt : &p->set_errors;

	if (*set) {
		conf_err(p, kw.line, kw.col, "duplicate '%s'", what);
		return -1;
	}
	*set = 1;
	if (conf_number(p, what, 1, rcpt ? CONF_MAXRCPT : CONF_MAXERRORS,
	    &n) == -1)
		return -1;
	if (rcpt)
		p->conf->max_recipients = n;
	else
		p->conf->max_errors = n;
	return conf_eol(p);
}

/* timeout DURATION */
static int
conf_st_timeout(struct conf_parser *p, struct conf_pos kw)
{
	if (p->set_timeout) {
		conf_err(p, kw.line, kw.col, "duplicate 'timeout'");
		return -1;
	}
	p->set_timeout = 1;
	if (conf_duration(p, "timeout", CONF_MAXTIMEOUT,
	    &p->conf->timeout) == -1)
		return -1;
	return conf_eol(p);
}

/*
 * control PATH | control admin-group NAME | control monitor-group NAME:
 * the socket posternctl talks to, and who besides root may change
 * (admin) or read (monitor) the queue through it.
 */
static int
conf_st_control(struct conf_parser *p, struct conf_pos kw)
{
	struct conf_token	*t;
	char			*dst;
	int			*set;

	if ((t = conf_peek(p)) == NULL)
		return -1;
	if (conf_is_kw(t, "admin-group") || conf_is_kw(t, "monitor-group")) {
		int	 admin = conf_is_kw(t, "admin-group");

		dst = admin ? p->conf->control_admin : p->conf->control_monitor;
		set = admin ? &p->set_control_admin : &p->set_control_monitor;
		if (*set) {
			conf_terr(p, t, "duplicate 'control %s'", admin ?
			    "admin-group" : "monitor-group");
			return -1;
		}
		*set = 1;
		conf_next(p);
		if ((t = conf_value(p, "group name")) == NULL ||
		    conf_copy(p, t, "group name", dst,
		    sizeof(p->conf->control_admin)) == -1)
			return -1;
		return conf_eol(p);
	}
	if (p->set_control) {
		conf_err(p, kw.line, kw.col, "duplicate 'control'");
		return -1;
	}
	p->set_control = 1;
	if (conf_abspath(p, "control path", p->conf->control,
	    sizeof(p->conf->control)) == -1)
		return -1;
	return conf_eol(p);
}

/* tls ciphers default|compat | tls workers N | tls ca PATH */
static int
conf_st_tls(struct conf_parser *p, struct conf_pos kw)
{
	struct conf_token	*t;
	struct postern_conf	*c = p->conf;
	long long		 n;
	char			 show[CONF_SHOWMAX];

	if ((t = conf_value(p, "tls setting")) == NULL)
		return -1;
	if (conf_is_kw(t, "ciphers")) {
		if (p->set_tls_ciphers) {
			conf_terr(p, t, "duplicate 'tls ciphers'");
			return -1;
		}
		p->set_tls_ciphers = 1;
		if ((t = conf_value(p, "cipher policy")) == NULL)
			return -1;
		if (strcmp(t->str, "default") == 0)
			c->tls_ciphers = CONF_TLS_CIPHERS_DEFAULT;
		else if (strcmp(t->str, "compat") == 0)
			c->tls_ciphers = CONF_TLS_CIPHERS_COMPAT;
		else {
			conf_terr(p, t, "unknown cipher policy '%s' (default "
			    "or compat)", conf_show(show, sizeof(show),
			    t->str));
			return -1;
		}
	} else if (conf_is_kw(t, "workers")) {
		if (p->set_tls_workers) {
			conf_terr(p, t, "duplicate 'tls workers'");
			return -1;
		}
		p->set_tls_workers = 1;
		if (conf_number(p, "tls workers", 1, CONF_MAXTLSWORKERS,
		    &n) == -1)
			return -1;
		c->tls_workers = n;
	} else if (conf_is_kw(t, "ca")) {
		if (p->set_tls_ca) {
			conf_terr(p, t, "duplicate 'tls ca'");
			return -1;
		}
		p->set_tls_ca = 1;
		if (conf_abspath(p, "tls ca path", c->tls_ca,
		    sizeof(c->tls_ca)) == -1)
			return -1;
	} else {
		conf_terr(p, t, "unknown tls setting '%s'",
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}
	return conf_eol(p);
}

/* pki NAME cert PATH key PATH */
static int
conf_st_pki(struct conf_parser *p, struct conf_pos kw)
{
	struct pki_conf		*pki;
	struct conf_token	*t;
	char			 show[CONF_SHOWMAX], d[CONF_SHOWMAX + 8];

	if ((t = conf_value(p, "pki name")) == NULL)
		return -1;
	if (t->len >= sizeof(pki->name)) {
		conf_terr(p, t, "pki name too long (max %zu bytes)",
		    sizeof(pki->name) - 1);
		return -1;
	}
	if (!conf_valid_chars(t->str, "._-")) {
		conf_terr(p, t, "invalid pki name '%s'",
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}
	{
		struct pki_conf	*o;
		int		 n = 0;

		/* One RSA and one ECDSA pair may share a name. */
		TAILQ_FOREACH(o, &p->conf->pkis, entry)
			if (strcmp(o->name, t->str) == 0)
				n++;
		if (n >= 2) {
			conf_terr(p, t, "pki '%s' given more than twice (one "
			    "RSA and one ECDSA pair at most)", t->str);
			return -1;
		}
	}
	if (0) {
		return -1;
	}
	if ((pki = calloc(1, sizeof(*pki))) == NULL) {
		conf_terr(p, t, "out of memory");
		return -1;
	}
	strlcpy(pki->name, t->str, sizeof(pki->name));
	TAILQ_INSERT_TAIL(&p->conf->pkis, pki, entry);
	for (;;) {
		if ((t = conf_next(p)) == NULL)
			return -1;
		if (conf_is_end(t))
			break;
		if (conf_is_kw(t, "cert") || conf_is_kw(t, "key")) {
			int cert = conf_is_kw(t, "cert");
			char *dst = cert ? pki->cert : pki->key;

			if (dst[0] != '\0') {
				conf_terr(p, t, "duplicate '%s'",
				    cert ? "cert" : "key");
				return -1;
			}
			if (conf_abspath(p, cert ? "cert path" : "key path",
			    dst, sizeof(pki->cert)) == -1)
				return -1;
			continue;
		}
		conf_terr(p, t, "unexpected %s", conf_desc(d, sizeof(d), t));
		return -1;
	}
	if (pki->cert[0] == '\0' || pki->key[0] == '\0') {
		conf_err(p, kw.line, kw.col, "pki '%s' needs %s", pki->name,
		    pki->cert[0] == '\0' ? "a cert" : "a key");
		return -1;
	}
	return 0;
}

/* table NAME file:PATH | table NAME { ... } */
static int
conf_st_table(struct conf_parser *p, struct conf_pos kw)
{
	struct conf_token	*t;
	struct table		*tb;
	char			 name[TABLE_NAMELEN], path[PATH_MAX];
	char			 lerr[CONF_ERRLEN], show[CONF_SHOWMAX];
	char			 d[CONF_SHOWMAX + 8];
	const char		*src, *colon;
	char			*text;
	size_t			 len;
	struct conf_pos		 at;

	if ((t = conf_value(p, "table name")) == NULL)
		return -1;
	if (conf_table_name(p, t, name) == -1)
		return -1;
	if (config_table(p->conf, name) != NULL) {
		conf_terr(p, t, "duplicate table '%s'", name);
		return -1;
	}
	if ((t = conf_next(p)) == NULL)
		return -1;
	at.line = t->line;
	at.col = t->col;
	if (t->type == TOK_LBRACE) {
		if ((tb = table_new(name, TABLE_INLINE, NULL)) == NULL) {
			conf_terr(p, t, "out of memory");
			return -1;
		}
		TAILQ_INSERT_TAIL(&p->conf->tables, tb, entry);
		if (conf_inline(p, tb, 1) == -1)
			return -1;
		return conf_eol(p);
	}
	if (conf_is_end(t)) {
		conf_terr(p, t, "missing table source");
		return -1;
	}
	if (!conf_is_value(t)) {
		conf_terr(p, t, "expected file:PATH or '{', found %s",
		    conf_desc(d, sizeof(d), t));
		return -1;
	}
	/* file:/path, file: "path", "file:/path" or "/path". */
	if (conf_is_kw(t, "file:")) {
		if ((t = conf_value(p, "table path")) == NULL)
			return -1;
		src = t->str;
	} else if (strncmp(t->str, "file:", 5) == 0)
		src = t->str + 5;
	else if (t->str[0] == '/')
		src = t->str;
	else {
		for (colon = t->str; *colon >= 'a' && *colon <= 'z'; colon++)
			;
		if (*colon == ':' && colon != t->str) {
			conf_terr(p, t, "unsupported table type '%.*s'",
			    (int)(colon - t->str), t->str);
			return -1;
		}
		conf_terr(p, t, "expected file:PATH or '{', found %s",
		    conf_desc(d, sizeof(d), t));
		return -1;
	}
	if (*src == '\0') {
		conf_terr(p, t, "empty table path");
		return -1;
	}
	if (strlen(src) >= sizeof(path)) {
		conf_terr(p, t, "table path too long (max %zu bytes)",
		    sizeof(path) - 1);
		return -1;
	}
	strlcpy(path, src, sizeof(path));
	if (path[0] != '/') {
		conf_terr(p, t, "table path must be absolute");
		return -1;
	}
	if ((tb = table_new(name, TABLE_FILE, path)) == NULL) {
		conf_terr(p, t, "out of memory");
		return -1;
	}
	TAILQ_INSERT_TAIL(&p->conf->tables, tb, entry);
	text = NULL;
	len = 0;
	lerr[0] = '\0';
	if (p->loader(p->loader_arg, path, &text, &len, lerr,
	    sizeof(lerr)) == -1) {
		conf_err(p, at.line, at.col, "table '%s': %s", name,
		    lerr[0] != '\0' ? lerr : conf_show(show, sizeof(show),
		    path));
		return -1;
	}
	if (table_parse_text(tb, text, len, lerr, sizeof(lerr)) == -1) {
		conf_err(p, at.line, at.col, "table '%s': %s: %s", name,
		    conf_show(show, sizeof(show), path), lerr);
		free(text);
		return -1;
	}
	free(text);
	return conf_eol(p);
}

/*
 * listen on ADDRESS [port N] [tls | tls-require | smtps] [pki NAME]
 *     [auth <t>] [auth-insecure] [hostname NAME]
 * listen on socket [path PATH] [hostname NAME]
 */
static int
conf_st_listen(struct conf_parser *p, struct conf_pos kw)
{
	struct listen_conf	*l, *o;
	struct conf_token	*t;
	struct in_addr		 a4;
	struct in6_addr		 a6;
	long long		 n;
	int			 has_port = 0, has_tls = 0, has_host = 0;
	uint16_t		 port, oport;
	char			 show[CONF_SHOWMAX], d[CONF_SHOWMAX + 8];

	if ((t = conf_next(p)) == NULL)
		return -1;
	if (!conf_is_kw(t, "on")) {
		conf_terr(p, t, "expected 'on', found %s",
		    conf_desc(d, sizeof(d), t));
		return -1;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		conf_terr(p, t, "out of memory");
		return -1;
	}
	l->line = kw.line;
	TAILQ_INSERT_TAIL(&p->conf->listeners, l, entry);
	if ((t = conf_value(p, "listen address")) == NULL)
		return -1;
	if (conf_is_kw(t, "socket"))
		l->is_socket = 1;
	else if (strcmp(t->str, "localhost") == 0 ||
	    strcmp(t->str, "any") == 0 ||
	    inet_pton(AF_INET, t->str, &a4) == 1 ||
	    inet_pton(AF_INET6, t->str, &a6) == 1)
		strlcpy(l->addr, t->str, sizeof(l->addr));
	else {
		conf_terr(p, t, "invalid listen address '%s'",
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}

	for (;;) {
		if ((t = conf_next(p)) == NULL)
			return -1;
		if (conf_is_end(t))
			break;
		if (t->type != TOK_WORD) {
			conf_terr(p, t, "unexpected %s",
			    conf_desc(d, sizeof(d), t));
			return -1;
		}
		if (l->is_socket && !conf_is_kw(t, "path") &&
		    !conf_is_kw(t, "hostname") && (conf_is_kw(t, "port") ||
		    conf_is_kw(t, "tls") || conf_is_kw(t, "tls-require") ||
		    conf_is_kw(t, "smtps") || conf_is_kw(t, "pki") ||
		    conf_is_kw(t, "auth") || conf_is_kw(t, "auth-insecure"))) {
			conf_terr(p, t, "'%s' is not valid on a socket "
			    "listener", t->str);
			return -1;
		}
		if (conf_is_kw(t, "port")) {
			if (has_port++) {
				conf_terr(p, t, "duplicate 'port'");
				return -1;
			}
			if (conf_number(p, "port", 1, 65535, &n) == -1)
				return -1;
			l->port = n;
		} else if (conf_is_kw(t, "tls") ||
		    conf_is_kw(t, "tls-require") || conf_is_kw(t, "smtps")) {
			if (has_tls++) {
				conf_terr(p, t, "only one of tls, tls-require "
				    "and smtps");
				return -1;
			}
			l->tls = conf_is_kw(t, "tls") ? LISTEN_STARTTLS :
			    conf_is_kw(t, "smtps") ? LISTEN_SMTPS :
			    LISTEN_STARTTLS_REQUIRE;
		} else if (conf_is_kw(t, "pki")) {
			if (l->pki[0] != '\0') {
				conf_terr(p, t, "duplicate 'pki'");
				return -1;
			}
			if ((t = conf_value(p, "pki name")) == NULL ||
			    conf_copy(p, t, "pki name", l->pki,
			    sizeof(l->pki)) == -1 ||
			    conf_ref_add(p, REF_PKI, l->pki, t, NULL) == -1)
				return -1;
		} else if (conf_is_kw(t, "auth")) {
			if (l->auth[0] != '\0') {
				conf_terr(p, t, "duplicate 'auth'");
				return -1;
			}
			if (conf_table_ref(p, "auth", l->auth,
			    sizeof(l->auth)) == -1)
				return -1;
		} else if (conf_is_kw(t, "auth-insecure")) {
			if (l->auth_insecure++) {
				conf_terr(p, t, "duplicate 'auth-insecure'");
				return -1;
			}
		} else if (conf_is_kw(t, "hostname")) {
			if (has_host++) {
				conf_terr(p, t, "duplicate 'hostname'");
				return -1;
			}
			if ((t = conf_value(p, "host name")) == NULL)
				return -1;
			if (!conf_valid_hostname(t->str)) {
				conf_terr(p, t, "invalid host name '%s'",
				    conf_show(show, sizeof(show), t->str));
				return -1;
			}
			strlcpy(l->hostname, t->str, sizeof(l->hostname));
		} else if (conf_is_kw(t, "path")) {
			if (!l->is_socket) {
				conf_terr(p, t, "'path' is only valid on a "
				    "socket listener");
				return -1;
			}
			if (l->path[0] != '\0') {
				conf_terr(p, t, "duplicate 'path'");
				return -1;
			}
			if (conf_abspath(p, "socket path", l->path,
			    sizeof(l->path)) == -1)
				return -1;
		} else {
			conf_terr(p, t, "unknown listen option '%s'",
			    conf_show(show, sizeof(show), t->str));
			return -1;
		}
	}
	l->auth_insecure = l->auth_insecure != 0;

	if (l->tls != LISTEN_PLAIN && l->pki[0] == '\0') {
		conf_err(p, kw.line, kw.col, "listener needs a pki");
		return -1;
	}
	if (l->tls == LISTEN_PLAIN && l->pki[0] != '\0') {
		conf_err(p, kw.line, kw.col, "pki needs tls, tls-require or "
		    "smtps");
		return -1;
	}
	if (l->auth_insecure && l->auth[0] == '\0') {
		conf_err(p, kw.line, kw.col, "auth-insecure needs auth");
		return -1;
	}
	/* The same address and port, or socket path, twice. */
	port = l->port != 0 ? l->port : l->tls == LISTEN_SMTPS ? 465 : 25;
	TAILQ_FOREACH(o, &p->conf->listeners, entry) {
		if (o == l || o->is_socket != l->is_socket)
			continue;
		oport = o->port != 0 ? o->port : o->tls == LISTEN_SMTPS ?
		    465 : 25;
		if (l->is_socket ? strcmp(o->path, l->path) == 0 :
		    strcmp(o->addr, l->addr) == 0 && oport == port) {
			conf_err(p, kw.line, kw.col, "listener duplicates "
			    "the one on line %d", o->line);
			return -1;
		}
	}
	return 0;
}

/*
 * action NAME maildir [PATH] [alias <t>] [virtual <t>] [user NAME]
 * action NAME mbox [PATH] [alias <t>] [user NAME]
 * action NAME lmtp DEST
 * action NAME mda COMMAND [alias <t>] [user NAME]
 * action NAME relay [host URL] [auth <t>]
 */
static int
conf_st_action(struct conf_parser *p, struct conf_pos kw)
{
	static const char *const kinds[] = {
		[ACTION_MAILDIR] = "maildir", [ACTION_MBOX] = "mbox",
		[ACTION_LMTP] = "lmtp", [ACTION_MDA] = "mda",
		[ACTION_RELAY] = "relay",
	};
	static const char *const pathname[] = {
		[ACTION_MAILDIR] = "path", [ACTION_MBOX] = "path",
		[ACTION_LMTP] = "destination", [ACTION_MDA] = "command",
		[ACTION_RELAY] = NULL,
	};
	struct action_conf	*a;
	struct conf_token	*t;
	struct conf_pos		 ppos = { 0, 0 };
	char			 show[CONF_SHOWMAX], d[CONF_SHOWMAX + 8];
	char			 why[128];
	const char		*kind;
	size_t			 i;
	int			 has_path = 0, first = 1;

	if ((t = conf_value(p, "action name")) == NULL)
		return -1;
	if (t->len >= sizeof(a->name)) {
		conf_terr(p, t, "action name too long (max %zu bytes)",
		    sizeof(a->name) - 1);
		return -1;
	}
	if (!conf_valid_chars(t->str, "._-")) {
		conf_terr(p, t, "invalid action name '%s'",
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}
	if (config_action(p->conf, t->str) != NULL) {
		conf_terr(p, t, "duplicate action '%s'", t->str);
		return -1;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		conf_terr(p, t, "out of memory");
		return -1;
	}
	strlcpy(a->name, t->str, sizeof(a->name));
	a->line = kw.line;
	TAILQ_INSERT_TAIL(&p->conf->actions, a, entry);

	if ((t = conf_value(p, "action type")) == NULL)
		return -1;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (conf_is_kw(t, kinds[i]))
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0])) {
		conf_terr(p, t, "unknown action type '%s'",
		    conf_show(show, sizeof(show), t->str));
		return -1;
	}
	a->kind = i;
	kind = kinds[i];

	for (;;) {
		if ((t = conf_next(p)) == NULL)
			return -1;
		if (conf_is_end(t))
			break;
		/*
		 * The path (or destination, or command) is a string or a
		 * word that starts like a path; right after the type, any
		 * word that is not an option ("lmtp 127.0.0.1:24").
		 */
		if (t->type == TOK_STRING || (t->type == TOK_WORD &&
		    (t->str[0] == '/' || t->str[0] == '~')) ||
		    (first && t->type == TOK_WORD && !conf_is_kw(t, "alias") &&
		    !conf_is_kw(t, "virtual") && !conf_is_kw(t, "user") &&
		    !conf_is_kw(t, "host") && !conf_is_kw(t, "auth") &&
		    pathname[a->kind] != NULL)) {
			first = 0;
			if (pathname[a->kind] == NULL) {
				conf_terr(p, t, "unexpected %s",
				    conf_desc(d, sizeof(d), t));
				return -1;
			}
			if (has_path++) {
				conf_terr(p, t, "duplicate %s",
				    pathname[a->kind]);
				return -1;
			}
			if (conf_copy(p, t, pathname[a->kind], a->path,
			    sizeof(a->path)) == -1)
				return -1;
			ppos.line = t->line;
			ppos.col = t->col;
			continue;
		}
		first = 0;
		if (t->type != TOK_WORD) {
			conf_terr(p, t, "unexpected %s",
			    conf_desc(d, sizeof(d), t));
			return -1;
		}
		if (conf_is_kw(t, "alias") || conf_is_kw(t, "virtual") ||
		    conf_is_kw(t, "auth")) {
			char *dst = conf_is_kw(t, "alias") ? a->alias :
			    conf_is_kw(t, "virtual") ? a->virtual : a->auth;
			int ok = conf_is_kw(t, "alias") ?
			    (a->kind == ACTION_MAILDIR ||
			    a->kind == ACTION_MBOX || a->kind == ACTION_MDA) :
			    conf_is_kw(t, "virtual") ?
			    a->kind == ACTION_MAILDIR :
			    a->kind == ACTION_RELAY;

			if (!ok) {
				conf_terr(p, t, "'%s' is not valid for %s "
				    "actions", t->str, kind);
				return -1;
			}
			if (dst[0] != '\0') {
				conf_terr(p, t, "duplicate '%s'", t->str);
				return -1;
			}
			if (conf_table_ref(p, t->str, dst,
			    CONF_NAMELEN) == -1)
				return -1;
		} else if (conf_is_kw(t, "user")) {
			if (a->kind == ACTION_LMTP || a->kind == ACTION_RELAY) {
				conf_terr(p, t, "'user' is not valid for %s "
				    "actions", kind);
				return -1;
			}
			if (a->user[0] != '\0') {
				conf_terr(p, t, "duplicate 'user'");
				return -1;
			}
			if ((t = conf_value(p, "user name")) == NULL ||
			    conf_copy(p, t, "user name", a->user,
			    sizeof(a->user)) == -1)
				return -1;
			if (!conf_valid_chars(a->user, "._-") ||
			    a->user[0] == '-') {
				conf_terr(p, t, "invalid user name '%s'",
				    conf_show(show, sizeof(show), t->str));
				return -1;
			}
			if (strcmp(a->user, "root") == 0) {
				conf_terr(p, t, "refusing to deliver as root");
				return -1;
			}
		} else if (conf_is_kw(t, "host")) {
			if (a->kind != ACTION_RELAY) {
				conf_terr(p, t, "'host' is not valid for %s "
				    "actions", kind);
				return -1;
			}
			if (has_path++) {
				conf_terr(p, t, "duplicate 'host'");
				return -1;
			}
			if ((t = conf_value(p, "relay host")) == NULL ||
			    conf_copy(p, t, "relay host", a->path,
			    sizeof(a->path)) == -1)
				return -1;
			if (!conf_valid_relay_url(a->path)) {
				conf_terr(p, t, "invalid relay host '%s'",
				    conf_show(show, sizeof(show), t->str));
				return -1;
			}
		} else {
			conf_terr(p, t, "unknown %s option '%s'", kind,
			    conf_show(show, sizeof(show), t->str));
			return -1;
		}
	}

	switch (a->kind) {
	case ACTION_MAILDIR:
	case ACTION_MBOX:
		if (has_path &&
		    conf_check_template(a->path, why, sizeof(why)) == -1) {
			conf_err(p, ppos.line, ppos.col, "invalid path "
			    "template: %s", why);
			return -1;
		}
		break;
	case ACTION_LMTP:
		if (!has_path) {
			conf_err(p, kw.line, kw.col, "lmtp needs a "
			    "destination");
			return -1;
		}
		if (a->path[0] != '/' && !conf_valid_hostport(a->path, 1)) {
			conf_err(p, ppos.line, ppos.col, "invalid lmtp "
			    "destination '%s'", conf_show(show, sizeof(show),
			    a->path));
			return -1;
		}
		break;
	case ACTION_MDA:
		if (!has_path) {
			conf_err(p, kw.line, kw.col, "mda needs a command");
			return -1;
		}
		if (strstr(a->path, "%{") != NULL) {
			conf_err(p, ppos.line, ppos.col, "mda commands take "
			    "no %%{...} variables");
			return -1;
		}
		break;
	case ACTION_RELAY:
		if (a->auth[0] != '\0' && !has_path) {
			conf_err(p, kw.line, kw.col, "relay auth needs host");
			return -1;
		}
		break;
	}
	if (a->virtual[0] != '\0' && a->user[0] == '\0') {
		conf_err(p, kw.line, kw.col, "virtual needs user");
		return -1;
	}
	return 0;
}

enum conf_filter {
	FILTER_NONE,
	FILTER_AUTH,
	FILTER_FROM,
	FILTER_FOR,
	FILTER_MAIL_FROM,
};

/*
 * match [[!]auth [T]] [[!]from FROM] [[!]for FOR] [[!]mail-from T]
 *     (action NAME | reject)
 */
static int
conf_st_match(struct conf_parser *p, struct conf_pos kw)
{
	static const char *const fnames[] = {
		"", "auth", "from", "for", "mail-from",
	};
	struct match_conf	*m;
	struct conf_token	*t;
	enum conf_filter	 f, last = FILTER_NONE;
	struct conf_pos		 fpos = { 0, 0 };
	int			 neg, lead_auth = 0;
	char			 show[CONF_SHOWMAX], d[CONF_SHOWMAX + 8];

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		conf_err(p, kw.line, kw.col, "out of memory");
		return -1;
	}
	m->line = kw.line;
	TAILQ_INSERT_TAIL(&p->conf->matches, m, entry);

	for (;;) {
		if ((t = conf_next(p)) == NULL)
			return -1;
		neg = 0;
		if (t->type == TOK_BANG) {
			neg = 1;
			if ((t = conf_next(p)) == NULL)
				return -1;
		}
		f = conf_is_kw(t, "auth") ? FILTER_AUTH :
		    conf_is_kw(t, "from") ? FILTER_FROM :
		    conf_is_kw(t, "for") ? FILTER_FOR :
		    conf_is_kw(t, "mail-from") ? FILTER_MAIL_FROM :
		    FILTER_NONE;
		if (f == FILTER_NONE) {
			if (neg) {
				conf_terr(p, t, "expected auth, from, for or "
				    "mail-from after '!', found %s",
				    conf_desc(d, sizeof(d), t));
				return -1;
			}
			break;
		}
		if (f <= last) {
			conf_terr(p, t, "misplaced '%s' (the order is auth, "
			    "from, for, mail-from, then action or reject)",
			    fnames[f]);
			return -1;
		}
		last = f;
		fpos.line = t->line;
		fpos.col = t->col;

		switch (f) {
		case FILTER_AUTH:
			/* OpenSMTPD style "match auth from any". */
			lead_auth = 1;
			m->from = MATCH_FROM_AUTH;
			m->from_neg = neg;
			if ((t = conf_peek(p)) == NULL)
				return -1;
			if (t->type == TOK_TABLE || t->type == TOK_STRING ||
			    t->type == TOK_LBRACE) {
				if (conf_tableish(p, "user table",
				    m->from_table, sizeof(m->from_table)) == -1)
					return -1;
			}
			break;
		case FILTER_FROM:
			if ((t = conf_value(p, "'from' source")) == NULL)
				return -1;
			if (lead_auth) {
				if (!conf_is_kw(t, "any") || neg) {
					conf_terr(p, t, "'auth' can only be "
					    "combined with 'from any'");
					return -1;
				}
				break;
			}
			m->from_neg = neg;
			if (conf_is_kw(t, "any")) {
				if (neg) {
					conf_err(p, fpos.line, fpos.col,
					    "'from any' cannot be negated");
					return -1;
				}
				m->from = MATCH_FROM_ANY;
			} else if (conf_is_kw(t, "local"))
				m->from = MATCH_FROM_LOCAL;
			else if (conf_is_kw(t, "rdns"))
				m->from = MATCH_FROM_RDNS;
			else if (conf_is_kw(t, "src")) {
				m->from = MATCH_FROM_SRC;
				if (conf_tableish(p, "source table",
				    m->from_table, sizeof(m->from_table)) == -1)
					return -1;
			} else if (conf_is_kw(t, "auth")) {
				m->from = MATCH_FROM_AUTH;
				if ((t = conf_peek(p)) == NULL)
					return -1;
				if (t->type == TOK_TABLE ||
				    t->type == TOK_STRING ||
				    t->type == TOK_LBRACE) {
					if (conf_tableish(p, "user table",
					    m->from_table,
					    sizeof(m->from_table)) == -1)
						return -1;
				}
			} else {
				conf_terr(p, t, "unknown 'from' source '%s' "
				    "(any, local, auth, src or rdns)",
				    conf_show(show, sizeof(show), t->str));
				return -1;
			}
			break;
		case FILTER_FOR:
			if ((t = conf_value(p, "'for' destination")) == NULL)
				return -1;
			m->for_neg = neg;
			if (conf_is_kw(t, "any")) {
				if (neg) {
					conf_err(p, fpos.line, fpos.col,
					    "'for any' cannot be negated");
					return -1;
				}
				m->for_ = MATCH_FOR_ANY;
			} else if (conf_is_kw(t, "local"))
				m->for_ = MATCH_FOR_LOCAL;
			else if (conf_is_kw(t, "domain")) {
				m->for_ = MATCH_FOR_DOMAIN;
				if (conf_tableish(p, "domain table",
				    m->for_table, sizeof(m->for_table)) == -1)
					return -1;
			} else if (conf_is_kw(t, "rcpt-to")) {
				m->for_ = MATCH_FOR_RCPT;
				if (conf_tableish(p, "recipient table",
				    m->for_table, sizeof(m->for_table)) == -1)
					return -1;
			} else {
				conf_terr(p, t, "unknown 'for' destination "
				    "'%s' (any, local, domain or rcpt-to)",
				    conf_show(show, sizeof(show), t->str));
				return -1;
			}
			break;
		case FILTER_MAIL_FROM:
			m->mail_from_neg = neg;
			if (conf_tableish(p, "sender table", m->mail_from,
			    sizeof(m->mail_from)) == -1)
				return -1;
			break;
		case FILTER_NONE:
			break;
		}
	}

	if (conf_is_kw(t, "reject"))
		m->reject = 1;
	else if (conf_is_kw(t, "action")) {
		if ((t = conf_value(p, "action name")) == NULL ||
		    conf_copy(p, t, "action name", m->action,
		    sizeof(m->action)) == -1 ||
		    conf_ref_add(p, REF_ACTION, m->action, t, m) == -1)
			return -1;
	} else if (conf_is_end(t)) {
		conf_terr(p, t, "missing action or reject");
		return -1;
	} else {
		conf_terr(p, t, "expected action or reject, found %s",
		    conf_desc(d, sizeof(d), t));
		return -1;
	}
	return conf_eol(p);
}

/* ------------------------------------------------------------ driver */

/* Check every name that was used before the end of the file. */
static int
conf_resolve(struct conf_parser *p)
{
	struct conf_ref		*r;
	struct action_conf	*a;
	char			 show[CONF_SHOWMAX];

	TAILQ_FOREACH(r, &p->refs, entry) {
		switch (r->kind) {
		case REF_TABLE:
			if (config_table(p->conf, r->name) == NULL) {
				conf_err(p, r->pos.line, r->pos.col,
				    "unknown table '%s'",
				    conf_show(show, sizeof(show), r->name));
				return -1;
			}
			break;
		case REF_PKI:
			if (config_pki(p->conf, r->name) == NULL) {
				conf_err(p, r->pos.line, r->pos.col,
				    "unknown pki '%s'",
				    conf_show(show, sizeof(show), r->name));
				return -1;
			}
			break;
		case REF_ACTION:
			if ((a = config_action(p->conf, r->name)) == NULL) {
				conf_err(p, r->pos.line, r->pos.col,
				    "unknown action '%s'",
				    conf_show(show, sizeof(show), r->name));
				return -1;
			}
			r->match->act = a;
			break;
		}
	}
	return 0;
}

/* Defaults, once every field that was given is known to be valid. */
static int
conf_defaults(struct conf_parser *p)
{
	struct postern_conf	*c = p->conf;
	struct listen_conf	*l;
	struct action_conf	*a;
	char			 host[CONF_HOSTLEN + 1];

	if (!p->set_hostname) {
		memset(host, 0, sizeof(host));
		if (gethostname(host, sizeof(host) - 1) == -1 ||
		    !conf_valid_hostname(host)) {
			conf_err(p, 0, 0, "cannot use the system host name, "
			    "set 'hostname'");
			return -1;
		}
		strlcpy(c->hostname, host, sizeof(c->hostname));
	}
	if (!p->set_spool)
		strlcpy(c->spool, CONF_DEFAULT_SPOOL, sizeof(c->spool));
	if (!p->set_size)
		c->max_message_size = CONF_DEFAULT_MAXSIZE;
	if (!p->set_rcpt)
		c->max_recipients = CONF_DEFAULT_MAXRCPT;
	if (!p->set_errors)
		c->max_errors = CONF_DEFAULT_MAXERRORS;
	if (!p->set_timeout)
		c->timeout = CONF_DEFAULT_TIMEOUT;
	if (!p->set_expire)
		c->queue_expire = CONF_DEFAULT_EXPIRE;
	if (!p->set_warn)
		c->queue_warn = CONF_DEFAULT_WARN;
	if (!p->set_retry_min)
		c->queue_retry_min = CONF_DEFAULT_RETRY_MIN;
	if (!p->set_retry_max)
		c->queue_retry_max = CONF_DEFAULT_RETRY_MAX;
	if (!p->set_tls_ca)
		strlcpy(c->tls_ca, CONF_DEFAULT_TLS_CA, sizeof(c->tls_ca));
	if (!p->set_control)
		strlcpy(c->control, CONF_DEFAULT_CONTROL, sizeof(c->control));
	if (!p->set_tls_workers) {
		long	 n = sysconf(_SC_NPROCESSORS_ONLN);

		c->tls_workers = n < 1 ? 1 : n > CONF_MAXTLSWORKERS ?
		    CONF_MAXTLSWORKERS : (unsigned int)n;
	}
	TAILQ_FOREACH(l, &c->listeners, entry) {
		if (l->is_socket) {
			if (l->path[0] == '\0')
				strlcpy(l->path, CONF_DEFAULT_SOCKET,
				    sizeof(l->path));
		} else if (l->port == 0)
			l->port = l->tls == LISTEN_SMTPS ? 465 : 25;
	}
	TAILQ_FOREACH(a, &c->actions, entry) {
		if (a->kind == ACTION_MAILDIR && a->path[0] == '\0')
			strlcpy(a->path, "~/Maildir", sizeof(a->path));
		else if (a->kind == ACTION_MBOX && a->path[0] == '\0')
			strlcpy(a->path, "/var/mail/%{user}", sizeof(a->path));
	}
	return 0;
}

static void
conf_parser_free(struct conf_parser *p)
{
	struct conf_macro_def	*m;
	struct conf_ref		*r;

	while ((m = TAILQ_FIRST(&p->macros)) != NULL) {
		TAILQ_REMOVE(&p->macros, m, entry);
		freezero(m->value, strlen(m->value));
		free(m);
	}
	while ((r = TAILQ_FIRST(&p->refs)) != NULL) {
		TAILQ_REMOVE(&p->refs, r, entry);
		free(r);
	}
	free(p);
}

struct postern_conf *
config_parse(const char *fname, const char *text, size_t len,
    const struct conf_macro *macros, size_t nmacros, conf_loader loader,
    void *loader_arg, char *err, size_t errsz)
{
	struct conf_parser	*p;
	struct postern_conf	*conf;
	struct conf_token	*t;
	struct conf_pos		 kw;
	char			 word[CONF_MACROLEN], show[CONF_SHOWMAX];
	char			 d[CONF_SHOWMAX + 8];
	const char		*c;
	size_t			 i;
	int			 rv;

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (conf = calloc(1, sizeof(*conf))) == NULL) {
		free(p);
		if (err != NULL && errsz > 0)
			snprintf(err, errsz, "%s: out of memory", fname);
		return NULL;
	}
	TAILQ_INIT(&conf->pkis);
	TAILQ_INIT(&conf->tables);
	TAILQ_INIT(&conf->listeners);
	TAILQ_INIT(&conf->actions);
	TAILQ_INIT(&conf->matches);
	TAILQ_INIT(&p->macros);
	TAILQ_INIT(&p->refs);
	p->fname = fname;
	p->text = (const unsigned char *)text;
	p->len = text != NULL ? len : 0;
	p->line = 1;
	p->col = 1;
	p->err = err;
	p->errsz = errsz;
	p->loader = loader != NULL ? loader : config_load_file;
	p->loader_arg = loader_arg;
	p->conf = conf;

	for (i = 0; i < nmacros && !p->failed; i++) {
		if (!conf_valid_macro_name(macros[i].name,
		    strlen(macros[i].name))) {
			conf_err(p, 0, 0, "invalid macro name '%s' on the "
			    "command line", conf_show(show, sizeof(show),
			    macros[i].name));
			break;
		}
		for (c = macros[i].value; *c != '\0'; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				break;
		if (*c != '\0' || strlen(macros[i].value) >= CONF_TOKMAX) {
			conf_err(p, 0, 0, "invalid value for macro '%s' on "
			    "the command line", macros[i].name);
			break;
		}
		if (conf_macro_define(p, macros[i].name, macros[i].value,
		    1) == -1)
			conf_err(p, 0, 0, "out of memory");
	}

	while (!p->failed) {
		if ((t = conf_next(p)) == NULL)
			break;
		if (t->type == TOK_EOF)
			break;
		if (t->type == TOK_NL)
			continue;
		kw.line = t->line;
		kw.col = t->col;
		if (t->type != TOK_WORD) {
			conf_terr(p, t, "expected a keyword, found %s",
			    conf_desc(d, sizeof(d), t));
			break;
		}
		if (strlcpy(word, t->str, sizeof(word)) >= sizeof(word)) {
			conf_terr(p, t, "unknown keyword '%s'",
			    conf_show(show, sizeof(show), t->str));
			break;
		}
		if ((t = conf_peek(p)) == NULL)
			break;
		if (t->type == TOK_EQUAL)
			rv = conf_st_macro(p, word, kw);
		else if (strcmp(word, "hostname") == 0)
			rv = conf_st_hostname(p, kw);
		else if (strcmp(word, "queue") == 0)
			rv = conf_st_queue(p, kw);
		else if (strcmp(word, "max-message-size") == 0)
			rv = conf_st_size(p, kw);
		else if (strcmp(word, "max-recipients") == 0 ||
		    strcmp(word, "max-errors") == 0)
			rv = conf_st_count(p, kw, word);
		else if (strcmp(word, "timeout") == 0)
			rv = conf_st_timeout(p, kw);
		else if (strcmp(word, "pki") == 0)
			rv = conf_st_pki(p, kw);
		else if (strcmp(word, "tls") == 0)
			rv = conf_st_tls(p, kw);
		else if (strcmp(word, "control") == 0)
			rv = conf_st_control(p, kw);
		else if (strcmp(word, "table") == 0)
			rv = conf_st_table(p, kw);
		else if (strcmp(word, "listen") == 0)
			rv = conf_st_listen(p, kw);
		else if (strcmp(word, "action") == 0)
			rv = conf_st_action(p, kw);
		else if (strcmp(word, "match") == 0)
			rv = conf_st_match(p, kw);
		else {
			conf_err(p, kw.line, kw.col, "unknown keyword '%s'",
			    conf_show(show, sizeof(show), word));
			rv = -1;
		}
		if (rv == -1)
			break;
	}
	if (!p->failed)
		conf_resolve(p);
	if (!p->failed)
		conf_defaults(p);
	if (p->failed) {
		config_free(conf);
		conf = NULL;
	}
	conf_parser_free(p);
	return conf;
}

int
config_load_file(void *arg, const char *path, char **text, size_t *len,
    char *err, size_t errsz)
{
	struct stat	 st;
	char		*buf = NULL, *nbuf;
	size_t		 cap, n = 0;
	ssize_t		 r;
	int		 fd, saved;
	char		 probe;

	*text = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1)
		goto syserr;
	if (fstat(fd, &st) == -1)
		goto syserr;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s: not a regular file", path);
		goto fail;
	}
	if (st.st_size > CONF_FILEMAX) {
		snprintf(err, errsz, "%s: file too large (max 64 MiB)", path);
		goto fail;
	}
	cap = (size_t)st.st_size + 1;
	if ((buf = malloc(cap)) == NULL)
		goto syserr;
	for (;;) {
		if (n + 1 == cap) {
			/* Full: at the end of the file, or did it grow? */
			r = read(fd, &probe, 1);
			if (r == -1 && errno == EINTR)
				continue;
			if (r == -1)
				goto syserr;
			if (r == 0)
				break;
			if (n >= CONF_FILEMAX) {
				snprintf(err, errsz, "%s: file too large "
				    "(max 64 MiB)", path);
				goto fail;
			}
			cap = cap > CONF_FILEMAX / 2 ? CONF_FILEMAX + 1 :
			    cap * 2;
			if ((nbuf = realloc(buf, cap)) == NULL)
				goto syserr;
			buf = nbuf;
			buf[n++] = probe;
			continue;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			goto syserr;
		if (r == 0)
			break;
		n += r;
	}
	close(fd);
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
 syserr:
	saved = errno;
	snprintf(err, errsz, "%s: %s", path, strerror(saved));
 fail:
	if (fd != -1)
		close(fd);
	free(buf);
	return -1;
}

struct postern_conf *
config_read_file(const char *fname, const struct conf_macro *macros,
    size_t nmacros, char *err, size_t errsz)
{
	struct postern_conf	*conf;
	char			*text;
	size_t			 len;

	if (config_load_file(NULL, fname, &text, &len, err, errsz) == -1)
		return NULL;
	conf = config_parse(fname, text, len, macros, nmacros,
	    config_load_file, NULL, err, errsz);
	free(text);
	return conf;
}

void
config_free(struct postern_conf *conf)
{
	struct pki_conf		*pki;
	struct table		*t;
	struct listen_conf	*l;
	struct action_conf	*a;
	struct match_conf	*m;

	if (conf == NULL)
		return;
	while ((pki = TAILQ_FIRST(&conf->pkis)) != NULL) {
		TAILQ_REMOVE(&conf->pkis, pki, entry);
		free(pki);
	}
	while ((t = TAILQ_FIRST(&conf->tables)) != NULL) {
		TAILQ_REMOVE(&conf->tables, t, entry);
		table_free(t);
	}
	while ((l = TAILQ_FIRST(&conf->listeners)) != NULL) {
		TAILQ_REMOVE(&conf->listeners, l, entry);
		free(l);
	}
	while ((a = TAILQ_FIRST(&conf->actions)) != NULL) {
		TAILQ_REMOVE(&conf->actions, a, entry);
		free(a);
	}
	while ((m = TAILQ_FIRST(&conf->matches)) != NULL) {
		TAILQ_REMOVE(&conf->matches, m, entry);
		free(m);
	}
	free(conf);
}

struct table *
config_table(const struct postern_conf *conf, const char *name)
{
	struct table	*t;

	TAILQ_FOREACH(t, &conf->tables, entry)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

struct action_conf *
config_action(const struct postern_conf *conf, const char *name)
{
	struct action_conf	*a;

	TAILQ_FOREACH(a, &conf->actions, entry)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

struct pki_conf *
config_pki(const struct postern_conf *conf, const char *name)
{
	struct pki_conf	*pki;

	TAILQ_FOREACH(pki, &conf->pkis, entry)
		if (strcmp(pki->name, name) == 0)
			return pki;
	return NULL;
}

/* Digits with an optional suffix whose value is mult[i]; -1 if invalid. */
static int
config_parse_scaled(const char *s, const char *suffixes,
    const unsigned long long *mult, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long	 v = 0, m = 1;
	const char		*q;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	for (q = s; *q >= '0' && *q <= '9'; q++) {
		if (__builtin_mul_overflow(v, 10ULL, &v) ||
		    __builtin_add_overflow(v, (unsigned long long)(*q - '0'),
		    &v))
			return -1;
	}
	if (*q != '\0') {
		const char *sx = strchr(suffixes, *q);

		if (sx == NULL || q[1] != '\0')
			return -1;
		m = mult[sx - suffixes];
	}
	if (__builtin_mul_overflow(v, m, &v) || v == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

int
config_parse_size(const char *s, size_t *out)
{
	static const unsigned long long mult[] = {
		1024ULL, 1024ULL, 1024ULL * 1024, 1024ULL * 1024,
		1024ULL * 1024 * 1024, 1024ULL * 1024 * 1024,
	};
	unsigned long long	 v;

	if (config_parse_scaled(s, "KkMmGg", mult, SIZE_MAX, &v) == -1)
		return -1;
	*out = v;
	return 0;
}

int
config_parse_duration(const char *s, unsigned int *out)
{
	static const unsigned long long mult[] = {
		1, 60, 3600, 24 * 3600,
	};
	unsigned long long	 v;

	if (config_parse_scaled(s, "smhd", mult, UINT_MAX, &v) == -1)
		return -1;
	*out = v;
	return 0;
}
