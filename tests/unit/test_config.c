/*
 * test_config.c: unit tests for common/config.c: the DESIGN.md example
 * and other good files checked field by field, macros, sizes and
 * durations, file loading, and bad files checked by their exact
 * "file:line:col: message".
 * SECURITY: test code; the text is copied to an exact-size heap buffer
 * without a NUL so that ASan catches any read past the given length.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "table.h"

/* Table files the fake loader knows. */
static const struct {
	const char	*path;
	const char	*text;
} test_files[] = {
	{ "/etc/aliases", "# aliases\nroot: alice\npostmaster: root\n"
	    "staff: alice,\n  bob\n" },
	{ "/etc/postern/users", "alice:$2b$10$abcdefghij\nbob:$6$salt$hash\n" },
	{ "/etc/postern/secrets", "relay alice:secret\n" },
	{ "/etc/dup", "a 1\nb 2\nA 3\n" },
	{ "/etc/with nul", "a\0b\n" },
};

static int	test_loads;

/* Loader for tests: serves test_files, ENOENT for anything else. */
static int
test_loader(void *arg, const char *path, char **text, size_t *len,
    char *err, size_t errsz)
{
	size_t	 i, n;

	test_loads++;
	for (i = 0; i < sizeof(test_files) / sizeof(test_files[0]); i++) {
		if (strcmp(path, test_files[i].path) != 0)
			continue;
		n = strcmp(path, "/etc/with nul") == 0 ? 4 :
		    strlen(test_files[i].text);
		*text = malloc(n + 1);
		assert_non_null(*text);
		memcpy(*text, test_files[i].text, n + 1);
		*len = n;
		return 0;
	}
	snprintf(err, errsz, "%s: %s", path, strerror(ENOENT));
	return -1;
}

/* Parse text (from an exact-size copy) with optional macros. */
static struct postern_conf *
parse_m(const char *text, const struct conf_macro *m, size_t nm, char *err,
    size_t errsz)
{
	struct postern_conf	*conf;
	size_t			 n = strlen(text);
	char			*copy = malloc(n == 0 ? 1 : n);

	assert_non_null(copy);
	memcpy(copy, text, n);
	conf = config_parse("t.conf", copy, n, m, nm, test_loader, NULL, err,
	    errsz);
	free(copy);
	return conf;
}

static struct postern_conf *
parse_ok(const char *text)
{
	struct postern_conf	*conf;
	char			 err[CONF_ERRLEN];

	conf = parse_m(text, NULL, 0, err, sizeof(err));
	if (conf == NULL)
		fail_msg("unexpected error: %s", err);
	return conf;
}

static void
expect_err_m(const char *text, const struct conf_macro *m, size_t nm,
    const char *want)
{
	struct postern_conf	*conf;
	char			 err[CONF_ERRLEN];

	conf = parse_m(text, m, nm, err, sizeof(err));
	if (conf != NULL) {
		config_free(conf);
		fail_msg("accepted: %s", text);
	}
	assert_string_equal(err, want);
}

static void
expect_err(const char *text, const char *want)
{
	expect_err_m(text, NULL, 0, want);
}

static const char design_conf[] =
"hostname \"mx.example.org\"\n"
"queue \"/var/spool/postern\"\n"
"max-message-size 35M\n"
"\n"
"pki \"mx.example.org\" cert \"/etc/postern/tls/mx.crt\" key \"/etc/postern/tls/mx.key\"\n"
"\n"
"table aliases file:/etc/aliases\n"
"table users   file:/etc/postern/users        # name:crypt(3)-hash per line\n"
"table secrets file:/etc/postern/secrets\n"
"table domains { \"example.org\", \"example.net\" }\n"
"\n"
"listen on 0.0.0.0 port 25  tls pki \"mx.example.org\"             # STARTTLS offered\n"
"listen on 0.0.0.0 port 465 smtps pki \"mx.example.org\" auth <users>\n"
"listen on 0.0.0.0 port 587 tls-require pki \"mx.example.org\" auth <users>\n"
"listen on socket                                                 # local enqueue\n"
"\n"
"action \"local\" maildir \"~/Maildir\" alias <aliases>\n"
"action \"lmtp\"  lmtp \"/run/dovecot/lmtp\"\n"
"action \"out\"   relay                                             # MX delivery\n"
"action \"smart\" relay host \"smtp+tls://smtp.example.net:587\" auth <secrets>\n"
"action \"sink\"  relay host \"smtp://127.0.0.1:2600\"\n"
"\n"
"match from any for domain <domains> action \"local\"\n"
"match from local for any action \"out\"\n"
"match auth from any for any action \"out\"\n";

static void
test_design_example(void **state)
{
	struct postern_conf	*c;
	struct listen_conf	*l;
	struct action_conf	*a;
	struct match_conf	*m;
	struct pki_conf		*pki;
	struct table		*t;

	c = parse_ok(design_conf);
	assert_string_equal(c->hostname, "mx.example.org");
	assert_string_equal(c->spool, "/var/spool/postern");
	assert_int_equal(c->max_message_size, 35 * 1024 * 1024);
	assert_int_equal(c->max_recipients, CONF_DEFAULT_MAXRCPT);
	assert_int_equal(c->max_errors, CONF_DEFAULT_MAXERRORS);
	assert_int_equal(c->timeout, CONF_DEFAULT_TIMEOUT);
	assert_int_equal(c->queue_expire, CONF_DEFAULT_EXPIRE);
	assert_int_equal(c->queue_warn, CONF_DEFAULT_WARN);
	assert_int_equal(c->queue_retry_min, CONF_DEFAULT_RETRY_MIN);
	assert_int_equal(c->queue_retry_max, CONF_DEFAULT_RETRY_MAX);

	pki = config_pki(c, "mx.example.org");
	assert_non_null(pki);
	assert_string_equal(pki->cert, "/etc/postern/tls/mx.crt");
	assert_string_equal(pki->key, "/etc/postern/tls/mx.key");

	t = config_table(c, "aliases");
	assert_non_null(t);
	assert_int_equal(t->source, TABLE_FILE);
	assert_string_equal(t->path, "/etc/aliases");
	assert_int_equal(t->count, 3);
	assert_string_equal(table_lookup(t, "ROOT"), "alice");
	assert_string_equal(table_lookup(t, "staff"), "alice, bob");
	t = config_table(c, "users");
	assert_string_equal(table_lookup(t, "bob"), "$6$salt$hash");
	t = config_table(c, "domains");
	assert_int_equal(t->source, TABLE_INLINE);
	assert_int_equal(t->count, 2);
	assert_string_equal(table_lookup(t, "Example.NET"), "");
	assert_null(table_lookup(t, "example.com"));

	l = TAILQ_FIRST(&c->listeners);
	assert_int_equal(l->is_socket, 0);
	assert_string_equal(l->addr, "0.0.0.0");
	assert_int_equal(l->port, 25);
	assert_int_equal(l->tls, LISTEN_STARTTLS);
	assert_string_equal(l->pki, "mx.example.org");
	assert_string_equal(l->auth, "");
	assert_int_equal(l->line, 12);
	l = TAILQ_NEXT(l, entry);
	assert_int_equal(l->port, 465);
	assert_int_equal(l->tls, LISTEN_SMTPS);
	assert_string_equal(l->auth, "users");
	assert_int_equal(l->auth_insecure, 0);
	l = TAILQ_NEXT(l, entry);
	assert_int_equal(l->port, 587);
	assert_int_equal(l->tls, LISTEN_STARTTLS_REQUIRE);
	l = TAILQ_NEXT(l, entry);
	assert_int_equal(l->is_socket, 1);
	assert_string_equal(l->path, CONF_DEFAULT_SOCKET);
	assert_int_equal(l->tls, LISTEN_PLAIN);
	assert_null(TAILQ_NEXT(l, entry));

	a = config_action(c, "local");
	assert_int_equal(a->kind, ACTION_MAILDIR);
	assert_string_equal(a->path, "~/Maildir");
	assert_string_equal(a->alias, "aliases");
	assert_string_equal(a->user, "");
	a = config_action(c, "lmtp");
	assert_int_equal(a->kind, ACTION_LMTP);
	assert_string_equal(a->path, "/run/dovecot/lmtp");
	a = config_action(c, "out");
	assert_int_equal(a->kind, ACTION_RELAY);
	assert_string_equal(a->path, "");
	a = config_action(c, "smart");
	assert_string_equal(a->path, "smtp+tls://smtp.example.net:587");
	assert_string_equal(a->auth, "secrets");
	assert_int_equal(a->line, 20);
	assert_null(config_action(c, "nosuch"));

	m = TAILQ_FIRST(&c->matches);
	assert_int_equal(m->from, MATCH_FROM_ANY);
	assert_int_equal(m->for_, MATCH_FOR_DOMAIN);
	assert_string_equal(m->for_table, "domains");
	assert_string_equal(m->action, "local");
	assert_ptr_equal(m->act, config_action(c, "local"));
	assert_int_equal(m->reject, 0);
	assert_int_equal(m->line, 23);
	m = TAILQ_NEXT(m, entry);
	assert_int_equal(m->from, MATCH_FROM_LOCAL);
	assert_int_equal(m->for_, MATCH_FOR_ANY);
	assert_ptr_equal(m->act, config_action(c, "out"));
	m = TAILQ_NEXT(m, entry);
	assert_int_equal(m->from, MATCH_FROM_AUTH);
	assert_int_equal(m->from_neg, 0);
	assert_string_equal(m->from_table, "");
	assert_int_equal(m->for_, MATCH_FOR_ANY);
	assert_null(TAILQ_NEXT(m, entry));
	config_free(c);
}

static void
test_defaults(void **state)
{
	struct postern_conf	*c;
	struct action_conf	*a;
	char			 host[CONF_HOSTLEN + 1];

	c = parse_ok("# nothing but a comment\n\n");
	memset(host, 0, sizeof(host));
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	assert_string_equal(c->hostname, host);
	assert_string_equal(c->spool, CONF_DEFAULT_SPOOL);
	assert_int_equal(c->max_message_size, CONF_DEFAULT_MAXSIZE);
	assert_true(TAILQ_EMPTY(&c->listeners));
	assert_true(TAILQ_EMPTY(&c->matches));
	config_free(c);

	c = parse_ok("");
	config_free(c);

	c = parse_ok("action mb mbox\naction md maildir user vmail "
	    "virtual <v>\ntable v { \"a\" }\n"
	    "listen on ::1 smtps pki p\npki p key /k cert /c\n");
	a = config_action(c, "mb");
	assert_string_equal(a->path, "/var/mail/%{user}");
	a = config_action(c, "md");
	assert_string_equal(a->path, "~/Maildir");
	assert_string_equal(a->user, "vmail");
	assert_string_equal(a->virtual, "v");
	assert_int_equal(TAILQ_FIRST(&c->listeners)->port, 465);
	assert_string_equal(TAILQ_FIRST(&c->listeners)->addr, "::1");
	config_free(c);
}

static void
test_globals(void **state)
{
	struct postern_conf	*c;

	c = parse_ok("hostname mail.example.com\nqueue /srv/q\n"
	    "queue expire 2d\nqueue warn 90m\nmax-message-size 512K\n"
	    "queue retry-min 10s\nqueue retry-max 2h\n"
	    "max-recipients 100000\nmax-errors 3\ntimeout 1h\n");
	assert_string_equal(c->hostname, "mail.example.com");
	assert_string_equal(c->spool, "/srv/q");
	assert_int_equal(c->queue_expire, 2 * 86400);
	assert_int_equal(c->queue_warn, 90 * 60);
	assert_int_equal(c->queue_retry_min, 10);
	assert_int_equal(c->queue_retry_max, 2 * 3600);
	assert_int_equal(c->max_message_size, 512 * 1024);
	assert_int_equal(c->max_recipients, 100000);
	assert_int_equal(c->max_errors, 3);
	assert_int_equal(c->timeout, 3600);
	config_free(c);

	/* CRLF line ends, continuation lines, no final newline. */
	c = parse_ok("hostname \\\r\n  a.b\r\ntimeout 30");
	assert_string_equal(c->hostname, "a.b");
	assert_int_equal(c->timeout, 30);
	config_free(c);
}

static void
test_listen(void **state)
{
	struct postern_conf	*c;
	struct listen_conf	*l;

	c = parse_ok("listen on 127.0.0.1 port 2525 auth <u> auth-insecure "
	    "hostname smtp.example.org\n"
	    "listen on socket path \"/tmp/x.sock\" hostname h\n"
	    "listen on localhost port 587 tls pki p auth <u>\n"
	    "listen on any\n"
	    "table u { \"alice\" = \"hash\" }\n"
	    "pki p cert \"/c\" key \"/k\"\n");
	l = TAILQ_FIRST(&c->listeners);
	assert_string_equal(l->addr, "127.0.0.1");
	assert_int_equal(l->port, 2525);
	assert_int_equal(l->tls, LISTEN_PLAIN);
	assert_string_equal(l->auth, "u");
	assert_int_equal(l->auth_insecure, 1);
	assert_string_equal(l->hostname, "smtp.example.org");
	l = TAILQ_NEXT(l, entry);
	assert_int_equal(l->is_socket, 1);
	assert_string_equal(l->path, "/tmp/x.sock");
	assert_string_equal(l->hostname, "h");
	l = TAILQ_NEXT(l, entry);
	assert_string_equal(l->addr, "localhost");
	assert_int_equal(l->tls, LISTEN_STARTTLS);
	l = TAILQ_NEXT(l, entry);
	assert_string_equal(l->addr, "any");
	assert_int_equal(l->port, 25);
	assert_string_equal(l->hostname, "");
	assert_string_equal(table_lookup(config_table(c, "u"), "ALICE"),
	    "hash");
	config_free(c);
}

static void
test_actions(void **state)
{
	struct postern_conf	*c;
	struct action_conf	*a;

	c = parse_ok("table t { \"a\" = \"b\" }\n"
	    "action v maildir user vmail \"/var/vmail/%{rcpt.domain}/%{user}\""
	    " virtual <t> alias <t>\n"
	    "action m mbox /var/mail/%{user} user nobody\n"
	    "action l lmtp 127.0.0.1:24\n"
	    "action l6 lmtp \"[::1]:24\"\n"
	    "action d mda \"/usr/bin/procmail -f -\" alias <t>\n"
	    "action r relay auth <t> host \"smtps://label@[2001:db8::1]:465\"\n"
	    "action p maildir \"~/Mail/%%x\"\n");
	a = config_action(c, "v");
	assert_int_equal(a->kind, ACTION_MAILDIR);
	assert_string_equal(a->path, "/var/vmail/%{rcpt.domain}/%{user}");
	assert_string_equal(a->user, "vmail");
	assert_string_equal(a->virtual, "t");
	assert_string_equal(a->alias, "t");
	a = config_action(c, "m");
	assert_string_equal(a->path, "/var/mail/%{user}");
	assert_string_equal(a->user, "nobody");
	assert_string_equal(config_action(c, "l")->path, "127.0.0.1:24");
	assert_string_equal(config_action(c, "l6")->path, "[::1]:24");
	a = config_action(c, "d");
	assert_int_equal(a->kind, ACTION_MDA);
	assert_string_equal(a->path, "/usr/bin/procmail -f -");
	a = config_action(c, "r");
	assert_string_equal(a->path, "smtps://label@[2001:db8::1]:465");
	assert_string_equal(a->auth, "t");
	assert_string_equal(config_action(c, "p")->path, "~/Mail/%%x");
	config_free(c);
}

static void
test_match(void **state)
{
	struct postern_conf	*c;
	struct match_conf	*m;
	struct table		*t;

	c = parse_ok("action a relay\n"
	    "match !from src { \"10.0.0.1\",\n \"::1\", } for domain "
	    "Example.ORG !mail-from <s> reject\n"
	    "match from auth <u> !for rcpt-to \"x@y\" action a\n"
	    "match for local action \"a\"\n"
	    "match !auth from any mail-from \"b@x\" action a\n"
	    "match from rdns for domain { a.org, b.org } action a\n"
	    "match action a\n"
	    "table s { \"bad@spam.example\" }\ntable u { alice, bob }\n");
	m = TAILQ_FIRST(&c->matches);
	assert_int_equal(m->from, MATCH_FROM_SRC);
	assert_int_equal(m->from_neg, 1);
	assert_string_equal(m->from_table, "@2:17");
	t = config_table(c, "@2:17");
	assert_non_null(t);
	assert_int_equal(t->count, 2);
	assert_true(table_contains(t, "::1"));
	assert_int_equal(m->for_, MATCH_FOR_DOMAIN);
	assert_int_equal(m->for_neg, 0);
	assert_string_equal(m->for_table, "@3:22");
	assert_true(table_contains(config_table(c, "@3:22"), "example.org"));
	assert_int_equal(m->mail_from_neg, 1);
	assert_string_equal(m->mail_from, "s");
	assert_int_equal(m->reject, 1);
	assert_null(m->act);
	assert_int_equal(m->line, 2);
	m = TAILQ_NEXT(m, entry);
	assert_int_equal(m->from, MATCH_FROM_AUTH);
	assert_string_equal(m->from_table, "u");
	assert_int_equal(m->for_, MATCH_FOR_RCPT);
	assert_int_equal(m->for_neg, 1);
	assert_string_equal(m->for_table, "@4:34");
	assert_ptr_equal(m->act, config_action(c, "a"));
	m = TAILQ_NEXT(m, entry);
	assert_int_equal(m->from, MATCH_FROM_ANY);
	assert_int_equal(m->for_, MATCH_FOR_LOCAL);
	m = TAILQ_NEXT(m, entry);
	assert_int_equal(m->from, MATCH_FROM_AUTH);
	assert_int_equal(m->from_neg, 1);
	assert_int_equal(m->for_, MATCH_FOR_ANY);
	assert_int_equal(m->mail_from_neg, 0);
	assert_string_equal(m->mail_from, "@6:32");
	m = TAILQ_NEXT(m, entry);
	assert_int_equal(m->from, MATCH_FROM_RDNS);
	t = config_table(c, m->for_table);
	assert_true(table_contains(t, "b.org"));
	m = TAILQ_NEXT(m, entry);
	assert_int_equal(m->from, MATCH_FROM_ANY);
	assert_int_equal(m->for_, MATCH_FOR_ANY);
	assert_ptr_equal(m->act, config_action(c, "a"));
	config_free(c);
}

static void
test_macros(void **state)
{
	static const struct conf_macro cm[] = {
		{ "rundir", "/run/postern-test" },
		{ "port", "2525" },
	};
	struct postern_conf	*c;
	char			 err[CONF_ERRLEN];

	c = parse_m("rundir = \"/ignored\"\n"
	    "name = mx\n"
	    "dom = \"$name.example.org\"\n"
	    "hostname $dom\n"
	    "queue \"$rundir/spool\"\n"
	    "listen on 127.0.0.1 port $port\n"
	    "listen on socket path \"${rundir}/sock\"\n"
	    "action a maildir $rundir/${name}/%{user}\n"
	    "table t { \"\\$6\\$x\" = \"cost $5 \\\\ \\\"q\\\"\" }\n",
	    cm, 2, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->hostname, "mx.example.org");
	assert_string_equal(c->spool, "/run/postern-test/spool");
	assert_int_equal(TAILQ_FIRST(&c->listeners)->port, 2525);
	assert_string_equal(TAILQ_LAST(&c->listeners, listen_list)->path,
	    "/run/postern-test/sock");
	assert_string_equal(config_action(c, "a")->path,
	    "/run/postern-test/mx/%{user}");
	assert_string_equal(table_lookup(config_table(c, "t"), "$6$x"),
	    "cost $5 \\ \"q\"");
	config_free(c);

	/* A file macro may be redefined by the file. */
	c = parse_ok("h = a.org\nh = b.org\nhostname $h\n");
	assert_string_equal(c->hostname, "b.org");
	config_free(c);

	expect_err_m("", (const struct conf_macro[]){ { "1x", "v" } }, 1,
	    "t.conf: invalid macro name '1x' on the command line");
	expect_err_m("", (const struct conf_macro[]){ { "x", "a\nb" } }, 1,
	    "t.conf: invalid value for macro 'x' on the command line");
	/* A macro value is text, never a keyword. */
	expect_err("k = hostname\n$k x.org\n",
	    "t.conf:2:1: expected a keyword, found \"hostname\"");
}

static void
test_sizes(void **state)
{
	size_t		 sz;
	unsigned int	 d;

	assert_int_equal(config_parse_size("100", &sz), 0);
	assert_int_equal(sz, 100);
	assert_int_equal(config_parse_size("512K", &sz), 0);
	assert_int_equal(sz, 512 * 1024);
	assert_int_equal(config_parse_size("35m", &sz), 0);
	assert_int_equal(sz, 35 * 1024 * 1024);
	assert_int_equal(config_parse_size("1G", &sz), 0);
	assert_int_equal(sz, 1024 * 1024 * 1024);
	assert_int_equal(config_parse_size("17179869184G", &sz), -1);
	assert_int_equal(config_parse_size("18446744073709551615", &sz), 0);
	assert_int_equal(sz, SIZE_MAX);
	assert_int_equal(config_parse_size("18446744073709551616", &sz), -1);
	assert_int_equal(config_parse_size("0", &sz), -1);
	assert_int_equal(config_parse_size("0K", &sz), -1);
	assert_int_equal(config_parse_size("", &sz), -1);
	assert_int_equal(config_parse_size("M", &sz), -1);
	assert_int_equal(config_parse_size("-1", &sz), -1);
	assert_int_equal(config_parse_size("+1", &sz), -1);
	assert_int_equal(config_parse_size(" 1", &sz), -1);
	assert_int_equal(config_parse_size("1 ", &sz), -1);
	assert_int_equal(config_parse_size("1KB", &sz), -1);
	assert_int_equal(config_parse_size("1T", &sz), -1);
	assert_int_equal(config_parse_size("0x10", &sz), -1);

	assert_int_equal(config_parse_duration("300", &d), 0);
	assert_int_equal(d, 300);
	assert_int_equal(config_parse_duration("30s", &d), 0);
	assert_int_equal(d, 30);
	assert_int_equal(config_parse_duration("5m", &d), 0);
	assert_int_equal(d, 300);
	assert_int_equal(config_parse_duration("4h", &d), 0);
	assert_int_equal(d, 4 * 3600);
	assert_int_equal(config_parse_duration("5d", &d), 0);
	assert_int_equal(d, 5 * 86400);
	assert_int_equal(config_parse_duration("4294967295", &d), 0);
	assert_int_equal(d, UINT_MAX);
	assert_int_equal(config_parse_duration("4294967296", &d), -1);
	assert_int_equal(config_parse_duration("49711d", &d), -1);
	assert_int_equal(config_parse_duration("0", &d), -1);
	assert_int_equal(config_parse_duration("", &d), -1);
	assert_int_equal(config_parse_duration("5w", &d), -1);
	assert_int_equal(config_parse_duration("5D", &d), -1);
	assert_int_equal(config_parse_duration("1h30m", &d), -1);
	assert_int_equal(config_parse_duration("-5", &d), -1);
}

/* Each bad file and its exact message. */
static const struct {
	const char	*text;
	const char	*err;
} bad_files[] = {
	{ "frobnicate yes\n", "t.conf:1:1: unknown keyword 'frobnicate'" },
	{ "\n  \"hostname\" x\n",
	    "t.conf:2:3: expected a keyword, found \"hostname\"" },
	{ "hostname\n", "t.conf:1:9: missing host name" },
	{ "hostname a..b\n", "t.conf:1:10: invalid host name 'a..b'" },
	{ "hostname a.b\nhostname c.d\n", "t.conf:2:1: duplicate 'hostname'" },
	{ "hostname a.b c\n", "t.conf:1:14: unexpected 'c'" },
	{ "hostname { x }\n", "t.conf:1:10: expected host name, found '{'" },
	{ "queue spool\n", "t.conf:1:7: unknown queue setting 'spool'" },
	{ "queue \"spool\"\n", "t.conf:1:7: queue path must be absolute" },
	{ "queue retry-min 1h\nqueue retry-max 10m\n",
	    "t.conf:2:1: queue retry-min is longer than queue retry-max" },
	{ "queue retry-max 1s\nqueue retry-max 1s\n",
	    "t.conf:2:7: duplicate 'queue retry-max'" },
	{ "queue /a\nqueue /b\n", "t.conf:2:1: duplicate 'queue'" },
	{ "queue expire 5d\nqueue expire 6d\n",
	    "t.conf:2:7: duplicate 'queue expire'" },
	{ "queue warn 400d\n", "t.conf:1:12: queue warn must be at most 365d" },
	{ "max-message-size 0\n", "t.conf:1:18: invalid size '0'" },
	{ "max-message-size 10X\n", "t.conf:1:18: invalid size '10X'" },
	{ "max-message-size 2G\n",
	    "t.conf:1:18: max-message-size must be at most 1G" },
	{ "max-recipients 0\n",
	    "t.conf:1:16: max-recipients must be between 1 and 100000" },
	{ "max-recipients 100001\n",
	    "t.conf:1:16: max-recipients must be between 1 and 100000" },
	{ "max-errors ten\n", "t.conf:1:12: invalid max-errors 'ten'" },
	{ "timeout 5x\n", "t.conf:1:9: invalid duration '5x'" },
	{ "timeout 2d\n", "t.conf:1:9: timeout must be at most 1d" },
	{ "hostname $nope\n", "t.conf:1:10: undefined macro 'nope'" },
	{ "queue \"/a/${x\"\n", "t.conf:1:11: invalid macro reference" },
	{ "x = a\n\nqueue \"/q/$x/$y\"\n",
	    "t.conf:3:14: undefined macro 'y'" },
	{ "hostname \"abc\n", "t.conf:1:10: unterminated string" },
	{ "hostname \"abc", "t.conf:1:10: unterminated string" },
	{ "hostname \"a\\nb\"\n", "t.conf:1:12: invalid escape in string" },
	{ "hostname \"a\tb\001\"\n",
	    "t.conf:1:14: invalid character 0x01 in string" },
	{ "hostname a.b;\n", "t.conf:1:13: unexpected character ';'" },
	{ "hostname a\rb\n", "t.conf:1:11: unexpected character 0x0d" },
	{ "pki p cert /c\n", "t.conf:1:1: pki 'p' needs a key" },
	{ "pki p key /k\n", "t.conf:1:1: pki 'p' needs a cert" },
	{ "pki p cert /c key /k\npki p cert /c key /k\n"
	    "pki p cert /c key /k\n",
	    "t.conf:3:5: pki 'p' given more than twice (one RSA and one "
	    "ECDSA pair at most)" },
	{ "tls ciphers weak\n",
	    "t.conf:1:13: unknown cipher policy 'weak' (default or compat)" },
	{ "tls workers 0\n", "t.conf:1:13: tls workers must be between 1 "
	    "and 64" },
	{ "tls ca relative\n", "t.conf:1:8: tls ca path must be absolute" },
	{ "tls frobnicate\n", "t.conf:1:5: unknown tls setting 'frobnicate'" },
	{ "control admin-group wheel\ncontrol admin-group staff\n",
	    "t.conf:2:9: duplicate 'control admin-group'" },
	{ "control relative.sock\n",
	    "t.conf:1:9: control path must be absolute" },
	{ "tls ciphers compat\ntls ciphers default\n",
	    "t.conf:2:5: duplicate 'tls ciphers'" },
	{ "pki p cert c key /k\n", "t.conf:1:12: cert path must be absolute" },
	{ "pki p cert /c cert /d\n", "t.conf:1:15: duplicate 'cert'" },
	{ "pki \"a b\" cert /c key /k\n", "t.conf:1:5: invalid pki name 'a b'" },
	{ "table t { a }\ntable t { b }\n", "t.conf:2:7: duplicate table 't'" },
	{ "table a.b { x }\n", "t.conf:1:7: invalid table name 'a.b'" },
	{ "table "
	    "t234567890123456789012345678901234567890123456789012345678901234"
	    " { x }\n", "t.conf:1:7: table name too long (max 63 bytes)" },
	{ "table t file:/nonexistent\n",
	    "t.conf:1:9: table 't': /nonexistent: No such file or directory" },
	{ "table t file:/etc/dup\n",
	    "t.conf:1:9: table 't': /etc/dup: line 3: duplicate key 'a'" },
	{ "table t \"file:/etc/with nul\"\n",
	    "t.conf:1:9: table 't': /etc/with nul: line 1: NUL byte" },
	{ "table t db:/etc/x\n", "t.conf:1:9: unsupported table type 'db'" },
	{ "table t file:etc/x\n", "t.conf:1:9: table path must be absolute" },
	{ "table t\n", "t.conf:1:8: missing table source" },
	{ "table t { }\n", "t.conf:1:11: empty table" },
	{ "table t { a, b = c }\n", "t.conf:1:16: mixed list and map entries" },
	{ "table t { a = b, c }\n", "t.conf:1:18: mixed list and map entries" },
	{ "table t { a = b, A = c }\n", "t.conf:1:18: duplicate key 'a'" },
	{ "table t { a b }\n", "t.conf:1:13: expected ',' or '}', found 'b'" },
	{ "table t { a,\n", "t.conf:2:1: expected a table entry, "
	    "found end of file" },
	{ "listen on 0.0.0.0 tls\n", "t.conf:1:1: listener needs a pki" },
	{ "listen on 0.0.0.0 smtps pki nope\n",
	    "t.conf:1:29: unknown pki 'nope'" },
	{ "listen on 0.0.0.0 auth <nope>\n",
	    "t.conf:1:24: unknown table 'nope'" },
	{ "listen on 0.0.0.0 auth-insecure\n",
	    "t.conf:1:1: auth-insecure needs auth" },
	{ "listen on 1.2.3\n", "t.conf:1:11: invalid listen address '1.2.3'" },
	{ "listen on any port 70000\n",
	    "t.conf:1:20: port must be between 1 and 65535" },
	{ "listen on any port 25 port 26\n", "t.conf:1:23: duplicate 'port'" },
	{ "listen on any tls smtps pki p\n",
	    "t.conf:1:19: only one of tls, tls-require and smtps" },
	{ "listen on any pki p\npki p cert /c key /k\n",
	    "t.conf:1:1: pki needs tls, tls-require or smtps" },
	{ "listen on any auth users\n",
	    "t.conf:1:20: auth needs a table <name>, found 'users'" },
	{ "listen on socket port 25\n",
	    "t.conf:1:18: 'port' is not valid on a socket listener" },
	{ "listen on any path /x\n",
	    "t.conf:1:15: 'path' is only valid on a socket listener" },
	{ "listen on any fast\n", "t.conf:1:15: unknown listen option 'fast'" },
	{ "listen 0.0.0.0\n", "t.conf:1:8: expected 'on', found '0.0.0.0'" },
	{ "listen on any\nlisten on any port 25\n",
	    "t.conf:2:1: listener duplicates the one on line 1" },
	{ "action a teleport\n", "t.conf:1:10: unknown action type 'teleport'" },
	{ "action a\n", "t.conf:1:9: missing action type" },
	{ "action a relay\naction a relay\n",
	    "t.conf:2:8: duplicate action 'a'" },
	{ "action a maildir virtual <v>\ntable v { x }\n",
	    "t.conf:1:1: virtual needs user" },
	{ "action a maildir alias <t> alias <t>\ntable t { x }\n",
	    "t.conf:1:28: duplicate 'alias'" },
	{ "action a mbox virtual <t>\n",
	    "t.conf:1:15: 'virtual' is not valid for mbox actions" },
	{ "action a lmtp\n", "t.conf:1:1: lmtp needs a destination" },
	{ "action a lmtp \"host\"\n",
	    "t.conf:1:15: invalid lmtp destination 'host'" },
	{ "action a mda\n", "t.conf:1:1: mda needs a command" },
	{ "action a mda \"/bin/x %{rcpt}\"\n",
	    "t.conf:1:14: mda commands take no %{...} variables" },
	{ "action a maildir user root\n",
	    "t.conf:1:23: refusing to deliver as root" },
	{ "action a maildir \"Maildir\"\n",
	    "t.conf:1:18: invalid path template: must start with '/' or '~/'" },
	{ "action a maildir \"/m/%{home}\"\n",
	    "t.conf:1:18: invalid path template: unknown variable '%{home}'" },
	{ "action a maildir \"/m/~x\"\n", "t.conf:1:18: invalid path "
	    "template: '~' is only allowed at the start" },
	{ "action a relay host \"mx.example.org\"\n",
	    "t.conf:1:21: invalid relay host 'mx.example.org'" },
	{ "action a relay auth <t>\ntable t { a = b }\n",
	    "t.conf:1:1: relay auth needs host" },
	{ "action a relay fast\n", "t.conf:1:16: unknown relay option 'fast'" },
	{ "action a maildir alias <nope>\n",
	    "t.conf:1:24: unknown table 'nope'" },
	{ "match from any for any action \"nope\"\n",
	    "t.conf:1:31: unknown action 'nope'" },
	{ "match from any for any\n", "t.conf:1:23: missing action or reject" },
	{ "match for any from any reject\n", "t.conf:1:15: misplaced 'from' "
	    "(the order is auth, from, for, mail-from, then action or reject)" },
	{ "match from anywhere reject\n", "t.conf:1:12: unknown 'from' source "
	    "'anywhere' (any, local, auth, src or rdns)" },
	{ "match !from any reject\n",
	    "t.conf:1:8: 'from any' cannot be negated" },
	{ "match ! reject\n", "t.conf:1:9: expected auth, from, for or "
	    "mail-from after '!', found 'reject'" },
	{ "match auth from local reject\n",
	    "t.conf:1:17: 'auth' can only be combined with 'from any'" },
	{ "match for domain\n", "t.conf:1:17: missing domain table" },
	{ "match for domain reject\n",
	    "t.conf:1:24: missing action or reject" },
	{ "match for domain { } reject\n", "t.conf:1:20: empty table" },
	{ "match from src { a = b } reject\n",
	    "t.conf:1:20: expected a list, not a map" },
	{ "match for rcpt-to <x> reject\n", "t.conf:1:19: unknown table 'x'" },
	{ "match reject now\n", "t.conf:1:14: unexpected 'now'" },
	{ "hostname <a.b>\n", "t.conf:1:10: invalid table reference" },
	{ "action a relay auth <"
	    "t234567890123456789012345678901234567890123456789012345678901234"
	    ">\n", "t.conf:1:21: table name too long (max 63 bytes)" },
	{ "action "
	    "a2345678901234567890123456789012345678901234567890123456789012345"
	    " relay\n", "t.conf:1:8: action name too long (max 63 bytes)" },
	{ "1x = y\n", "t.conf:1:1: invalid macro name '1x'" },
};

static void
test_bad_files(void **state)
{
	struct postern_conf	*conf;
	char			 err[CONF_ERRLEN];
	size_t			 i;
	int			 failed = 0;

	/* Report every mismatch, not just the first. */
	for (i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		err[0] = '\0';
		conf = parse_m(bad_files[i].text, NULL, 0, err, sizeof(err));
		if (conf != NULL) {
			config_free(conf);
			print_error("case %zu accepted\n", i);
			failed++;
		} else if (strcmp(err, bad_files[i].err) != 0) {
			print_error("case %zu:\n got  \"%s\"\n want \"%s\"\n",
			    i, err, bad_files[i].err);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
}

/* Anything that does not fit its field is rejected, never truncated. */
static void
test_overlong(void **state)
{
	char	*text, want[CONF_ERRLEN];
	size_t	 n;

	/* A path one byte longer than PATH_MAX - 1. */
	n = PATH_MAX + 32;
	text = malloc(n);
	assert_non_null(text);
	snprintf(text, n, "queue \"/%0*d\"\n", PATH_MAX - 1, 0);
	snprintf(want, sizeof(want),
	    "t.conf:1:7: queue path too long (max %d bytes)", PATH_MAX - 1);
	expect_err(text, want);
	/* Exactly PATH_MAX - 1 fits. */
	snprintf(text, n, "queue \"/%0*d\"\n", PATH_MAX - 2, 0);
	config_free(parse_ok(text));
	free(text);

	/* A string longer than any token. */
	n = CONF_DEFAULT_MAXSIZE / 1024;
	text = malloc(n + 32);
	assert_non_null(text);
	strlcpy(text, "hostname \"", n + 32);
	memset(text + 10, 'a', n);
	memcpy(text + 10 + n, "\"\n", 3);
	expect_err(text, "t.conf:1:10: string too long (max 8192 bytes)");
	/* The same as a bare word, and through a macro. */
	text[9] = 'a';
	expect_err(text, "t.conf:1:10: word too long (max 8192 bytes)");
	free(text);

	/* A host name is at most 253 bytes. */
	text = malloc(600);
	assert_non_null(text);
	strlcpy(text, "hostname ", 600);
	for (n = 0; n < 4; n++)
		strlcat(text, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaa.", 600);
	strlcat(text, "x\n", 600);
	expect_err(text, "t.conf:1:10: invalid host name "
	    "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");
	free(text);
}

/* Macros from the command line win over the file, silently. */
static void
test_cmdline_wins(void **state)
{
	static const struct conf_macro cm[] = { { "h", "cmd.example" } };
	struct postern_conf	*c;
	char			 err[CONF_ERRLEN];

	c = parse_m("h = file.example\nhostname $h\n", cm, 1, err,
	    sizeof(err));
	assert_non_null(c);
	assert_string_equal(c->hostname, "cmd.example");
	config_free(c);
}

/* Table files are read through the loader, once each. */
static void
test_loader_calls(void **state)
{
	struct postern_conf	*c;

	test_loads = 0;
	c = parse_ok(design_conf);
	assert_int_equal(test_loads, 3);
	config_free(c);
}

static void
test_load_file(void **state)
{
	char		 dir[] = "/tmp/test_config.XXXXXX", path[PATH_MAX];
	char		 err[CONF_ERRLEN], want[CONF_ERRLEN + PATH_MAX];
	char		*text;
	size_t		 len;
	int		 fd;
	struct postern_conf	*c;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/postern.conf", dir);

	/* Missing file. */
	assert_int_equal(config_load_file(NULL, path, &text, &len, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(err, want);
	assert_null(config_read_file(path, NULL, 0, err, sizeof(err)));
	assert_string_equal(err, want);

	/* A directory. */
	assert_int_equal(config_load_file(NULL, dir, &text, &len, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: not a regular file", dir);
	assert_string_equal(err, want);

	/* A good file, read whole, then parsed with file tables. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	dprintf(fd, "hostname f.example\ntable t file:%s/t\n", dir);
	close(fd);
	snprintf(want, sizeof(want), "%s/t", dir);
	fd = open(want, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	dprintf(fd, "k v\n");
	close(fd);
	assert_int_equal(config_load_file(NULL, want, &text, &len, err,
	    sizeof(err)), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(text, "k v\n", 4);
	free(text);
	c = config_read_file(path, NULL, 0, err, sizeof(err));
	if (c == NULL)
		fail_msg("%s", err);
	assert_string_equal(c->hostname, "f.example");
	assert_string_equal(table_lookup(config_table(c, "t"), "K"), "v");
	config_free(c);

	/* A table file that is missing: the message names the path. */
	unlink(want);
	assert_null(config_read_file(path, NULL, 0, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:2:9: table 't': %s/t: "
	    "No such file or directory", path, dir);
	assert_string_equal(err, want);

	/* Larger than 64 MiB (sparse). */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd != -1);
	assert_int_equal(ftruncate(fd, 64 * 1024 * 1024 + 1), 0);
	close(fd);
	assert_null(config_read_file(path, NULL, 0, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: file too large (max 64 MiB)", path);
	assert_string_equal(err, want);
	/* Exactly 64 MiB is read (and is all NUL bytes: a parse error). */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd != -1);
	assert_int_equal(ftruncate(fd, 64 * 1024 * 1024), 0);
	close(fd);
	assert_null(config_read_file(path, NULL, 0, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:1:1: unexpected character 0x00",
	    path);
	assert_string_equal(err, want);

	unlink(path);
	rmdir(dir);
}

/* The default loader is used when none is given. */
static void
test_null_loader(void **state)
{
	char			 err[CONF_ERRLEN];
	const char		*text = "table t file:/nonexistent/x\n";

	assert_null(config_parse("n.conf", text, strlen(text), NULL, 0, NULL,
	    NULL, err, sizeof(err)));
	assert_string_equal(err, "n.conf:1:9: table 't': /nonexistent/x: "
	    "No such file or directory");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_globals),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_macros),
		cmocka_unit_test(test_cmdline_wins),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_loader_calls),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_null_loader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
