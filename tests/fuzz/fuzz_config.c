/*
 * fuzz_config.c: libFuzzer target for common/config.c: arbitrary bytes
 * as postern.conf, with one command-line macro and a loader that serves
 * a fixed table text for every path (or fails for paths with "fail").
 * Checks that an accepted configuration holds its invariants and that an
 * error names the file.
 * SECURITY: test code.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "table.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char fuzz_table_text[] =
    "# table\nroot: alice\nalice:$2b$10$hash\nstaff: a,\n  b\n::1\n"
    "10.0.0.0/8\nexample.org\n";

static int
fuzz_loader(void *arg, const char *path, char **text, size_t *len,
    char *err, size_t errsz)
{
	if (strstr(path, "fail") != NULL) {
		snprintf(err, errsz, "%s: No such file or directory", path);
		return -1;
	}
	if ((*text = strdup(fuzz_table_text)) == NULL)
		return -1;
	*len = strlen(fuzz_table_text);
	return 0;
}

/* Every field is a terminated string that fits; names resolve. */
static void
fuzz_config_check(const struct postern_conf *c)
{
	const struct listen_conf	*l;
	const struct action_conf	*a;
	const struct match_conf		*m;
	const struct table		*t;

	if (strnlen(c->hostname, sizeof(c->hostname)) == 0 ||
	    strnlen(c->hostname, sizeof(c->hostname)) == sizeof(c->hostname) ||
	    c->spool[0] != '/' || c->max_message_size == 0 ||
	    c->max_recipients == 0 || c->timeout == 0)
		abort();
	TAILQ_FOREACH(l, &c->listeners, entry) {
		if (l->is_socket && l->path[0] != '/')
			abort();
		if (!l->is_socket && l->port == 0)
			abort();
		if (l->tls != LISTEN_PLAIN && config_pki(c, l->pki) == NULL)
			abort();
		if (l->auth[0] != '\0' && config_table(c, l->auth) == NULL)
			abort();
	}
	TAILQ_FOREACH(a, &c->actions, entry) {
		if (a->alias[0] != '\0' && config_table(c, a->alias) == NULL)
			abort();
		if (a->virtual[0] != '\0' && (a->user[0] == '\0' ||
		    config_table(c, a->virtual) == NULL))
			abort();
		if ((a->kind == ACTION_MAILDIR || a->kind == ACTION_MBOX) &&
		    a->path[0] != '/' && a->path[0] != '~')
			abort();
	}
	TAILQ_FOREACH(m, &c->matches, entry) {
		if (!m->reject && (m->act == NULL ||
		    config_action(c, m->action) != m->act))
			abort();
		if (m->from_table[0] != '\0' &&
		    config_table(c, m->from_table) == NULL)
			abort();
		if (m->for_table[0] != '\0' &&
		    config_table(c, m->for_table) == NULL)
			abort();
		if (m->mail_from[0] != '\0' &&
		    config_table(c, m->mail_from) == NULL)
			abort();
	}
	TAILQ_FOREACH(t, &c->tables, entry)
		if (t->count == 0 && t->source == TABLE_INLINE)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct conf_macro macros[] = {
		{ "rundir", "/run/postern" },
		{ "host", "mx.example.org" },
	};
	struct postern_conf	*c;
	char			 err[CONF_ERRLEN];
	char			*copy;

	/* An exact-size copy, so that a read past size is caught. */
	if ((copy = malloc(size == 0 ? 1 : size)) == NULL)
		return 0;
	memcpy(copy, data, size);
	err[0] = '\0';
	c = config_parse("fuzz.conf", copy, size, macros, 2, fuzz_loader,
	    NULL, err, sizeof(err));
	free(copy);
	if (c == NULL) {
		if (strncmp(err, "fuzz.conf:", 10) != 0)
			abort();
		return 0;
	}
	fuzz_config_check(c);
	config_free(c);
	return 0;
}
