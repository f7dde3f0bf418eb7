/*
 * queue_rule.c: the match rules of postern.conf, applied to one
 * recipient, with alias expansion and the local mailbox check.
 * SECURITY: input is a recipient address that smtpd parsed, re-parsed
 * here; no expansion can run away (depth and fan-out are bounded).
 */
#include <sys/types.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "queue.h"
#include "table.h"

struct rule_run {
	const struct postern_conf	*conf;
	const struct queue_user_tree	*users;
	const struct rule_ctx		*ctx;
	struct rule_target		*targets;
	size_t				 max;
	size_t				 n;
	char				*reply;
	size_t				 replysz;
	const char			*orig;	/* the RCPT as given */
};

static int	rule_addr(struct rule_run *, const struct mailaddr *, int,
		    int);
static int	rule_local(struct rule_run *, const struct action_conf *,
		    const char *, const char *, int);

RB_GENERATE(queue_user_tree, queue_user, node, queue_user_cmp);

int
queue_user_cmp(struct queue_user *a, struct queue_user *b)
{
	return strcmp(a->name, b->name);
}

const struct queue_user *
queue_user_lookup(const struct queue_user_tree *t, const char *name)
{
	struct queue_user	 key;

	if (strlcpy(key.name, name, sizeof(key.name)) >= sizeof(key.name))
		return NULL;
	return RB_FIND(queue_user_tree, (struct queue_user_tree *)t, &key);
}

void
queue_users_free(struct queue_user_tree *t)
{
	struct queue_user	*u, *next;

	RB_FOREACH_SAFE(u, queue_user_tree, t, next) {
		RB_REMOVE(queue_user_tree, t, u);
		free(u);
	}
}

/* Is the client address in a table of addresses or networks? */
static int
rule_src_in(const struct table *t, const char *client)
{
	struct table_entry	*e;
	unsigned char		 a[16], net[16];
	char			 buf[128], *slash;
	int			 af, len, bits, i;

	if (t == NULL || client[0] == '\0')
		return 0;
	if (table_contains(t, client))
		return 1;
	af = strchr(client, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(af, client, a) != 1)
		return 0;
	len = af == AF_INET ? 4 : 16;
	RB_FOREACH(e, table_tree, (struct table_tree *)&t->entries) {
		if (strlcpy(buf, e->key, sizeof(buf)) >= sizeof(buf) ||
		    (slash = strchr(buf, '/')) == NULL)
			continue;
		*slash = '\0';
		if (inet_pton(af, buf, net) != 1)
			continue;
		bits = strtonum(slash + 1, 0, len * 8, NULL);
		if (bits == 0 && strcmp(slash + 1, "0") != 0)
			continue;
		for (i = 0; i < len && bits > 0; i++, bits -= 8) {
			unsigned char	 mask = bits >= 8 ? 0xff :
			    (unsigned char)(0xff << (8 - bits));

			if ((a[i] & mask) != (net[i] & mask))
				break;
		}
		if (bits <= 0)
			return 1;
	}
	return 0;
}

static int
rule_from(struct rule_run *r, const struct match_conf *m)
{
	const struct table	*t = NULL;
	int			 ok = 0;

	if (m->from_table[0] != '\0')
		t = config_table(r->conf, m->from_table);
	switch (m->from) {
	case MATCH_FROM_ANY:
		ok = 1;
		break;
	case MATCH_FROM_LOCAL:
		ok = r->ctx->local;
		break;
	case MATCH_FROM_AUTH:
		ok = r->ctx->auth_user[0] != '\0' &&
		    (t == NULL || table_contains(t, r->ctx->auth_user));
		break;
	case MATCH_FROM_SRC:
		ok = rule_src_in(t, r->ctx->client);
		break;
	case MATCH_FROM_RDNS:
		ok = 0;		/* no confirmed reverse DNS yet */
		break;
	}
	return m->from_neg ? !ok : ok;
}

static int
rule_for(struct rule_run *r, const struct match_conf *m,
    const struct mailaddr *a, const char *full)
{
	const struct table	*t = NULL;
	int			 ok = 0;

	if (m->for_table[0] != '\0')
		t = config_table(r->conf, m->for_table);
	switch (m->for_) {
	case MATCH_FOR_ANY:
		ok = 1;
		break;
	case MATCH_FOR_LOCAL:
		ok = strcasecmp(a->domain, r->conf->hostname) == 0 ||
		    strcasecmp(a->domain, "localhost") == 0;
		break;
	case MATCH_FOR_DOMAIN:
		ok = t != NULL && table_contains(t, a->domain);
		break;
	case MATCH_FOR_RCPT:
		ok = t != NULL && table_contains(t, full);
		break;
	}
	return m->for_neg ? !ok : ok;
}

static int
rule_mail_from(struct rule_run *r, const struct match_conf *m)
{
	const struct table	*t;
	int			 ok;

	if (m->mail_from[0] == '\0')
		return 1;
	t = config_table(r->conf, m->mail_from);
	ok = t != NULL && table_contains(t, r->ctx->sender);
	return m->mail_from_neg ? !ok : ok;
}

/* Add one final recipient, once. */
static int
rule_add(struct rule_run *r, const char *rcpt, const char *action,
    const char *mailbox)
{
	struct rule_target	*t;
	size_t			 i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->targets[i].action, action) == 0 &&
		    strcmp(r->targets[i].mailbox, mailbox) == 0 &&
		    (mailbox[0] != '\0' ||
		    strcmp(r->targets[i].rcpt, rcpt) == 0))
			return 0;
	if (r->n == r->max) {
		snprintf(r->reply, r->replysz, "550 5.7.0 <%s>: alias "
		    "expands to too many recipients", r->orig);
		return -1;
	}
	t = &r->targets[r->n];
	if (strlcpy(t->rcpt, rcpt, sizeof(t->rcpt)) >= sizeof(t->rcpt) ||
	    strlcpy(t->action, action, sizeof(t->action)) >=
	    sizeof(t->action) ||
	    strlcpy(t->mailbox, mailbox, sizeof(t->mailbox)) >=
	    sizeof(t->mailbox)) {
		snprintf(r->reply, r->replysz, "550 5.1.3 <%s>: recipient "
		    "too long", r->orig);
		return -1;
	}
	r->n++;
	return 0;
}

/* Lowercase copy of a local part for table and user lookups. */
static int
rule_lower(const char *in, char *out, size_t outsz)
{
	size_t	 i;

	for (i = 0; in[i] != '\0'; i++) {
		if (i + 1 >= outsz)
			return -1;
		out[i] = tolower((unsigned char)in[i]);
	}
	out[i] = '\0';
	return 0;
}

/*
 * A local part handled by a local action: aliases first, then the
 * mailbox must exist (a system user, or a virtual mailbox).
 */
static int
rule_local(struct rule_run *r, const struct action_conf *act,
    const char *local, const char *domain, int depth)
{
	const struct table	*alias, *virt;
	const char		*value;
	char			 key[ADDR_LOCAL_MAX + 1], rcpt[PROTO_ADDRLEN];
	char			*list, *item, *p;
	int			 rv = 0;

	if (rule_lower(local, key, sizeof(key)) == -1) {
		snprintf(r->reply, r->replysz, "550 5.1.1 <%s>: Recipient "
		    "address rejected: User unknown", r->orig);
		return -1;
	}
	alias = act->alias[0] ? config_table(r->conf, act->alias) : NULL;
	if (alias != NULL && (value = table_lookup(alias, key)) != NULL &&
	    value[0] != '\0') {
		if (depth >= RULE_MAXDEPTH) {
			snprintf(r->reply, r->replysz, "550 5.4.6 <%s>: alias "
			    "loop", r->orig);
			return -1;
		}
		if ((list = strdup(value)) == NULL)
			fatal("alias");
		p = list;
		while (rv == 0 && (item = strsep(&p, ",")) != NULL) {
			struct mailaddr	 a;
			const char	*why;
			size_t		 len;

			item += strspn(item, " \t");
			len = strcspn(item, "");
			while (len > 0 && (item[len - 1] == ' ' ||
			    item[len - 1] == '\t'))
				item[--len] = '\0';
			if (len >= 2 && item[0] == '"' &&
			    item[len - 1] == '"') {
				item[len - 1] = '\0';
				item++;
				len -= 2;
			}
			if (len == 0)
				continue;
			if (item[0] == '|' || item[0] == '/' ||
			    strncmp(item, ":include:", 9) == 0) {
				/* Kept in the queue, never dropped. */
				snprintf(r->reply, r->replysz, "451 4.3.5 "
				    "<%s>: alias target \"%.64s\" is not "
				    "supported", r->orig, item);
				rv = -1;
			} else if (strchr(item, '@') != NULL) {
				if (addr_parse_mailbox(item, len, ADDR_UTF8,
				    &a, &why) == -1) {
					snprintf(r->reply, r->replysz, "451 "
					    "4.3.5 <%s>: bad alias target: %s",
					    r->orig, why);
					rv = -1;
				} else
					rv = rule_addr(r, &a, depth + 1, 1);
			} else if (strcasecmp(item, key) == 0) {
				/* "alice: alice, ..." keeps a copy. */
				rv = rule_local(r, act, item, domain,
				    RULE_MAXDEPTH);
			} else
				rv = rule_local(r, act, item, domain,
				    depth + 1);
		}
		free(list);
		return rv;
	}

	if (act->user[0] != '\0') {
		virt = act->virtual[0] ? config_table(r->conf, act->virtual) :
		    NULL;
		if (act->virtual[0] != '\0' &&
		    (virt == NULL || !table_contains(virt, key)))
			goto unknown;
	} else if (queue_user_lookup(r->users, key) == NULL)
		goto unknown;
	if (snprintf(rcpt, sizeof(rcpt), "%s@%s", key, domain) >=
	    (int)sizeof(rcpt)) {
		snprintf(r->reply, r->replysz, "550 5.1.3 <%s>: recipient "
		    "too long", r->orig);
		return -1;
	}
	return rule_add(r, rcpt, act->name, key);
unknown:
	snprintf(r->reply, r->replysz, "550 5.1.1 <%s>: Recipient address "
	    "rejected: User unknown", r->orig);
	return -1;
}

/* First matching rule decides; no match means no relaying. */
static int
rule_addr(struct rule_run *r, const struct mailaddr *a, int depth,
    int expanded)
{
	const struct match_conf	*m;
	struct rule_ctx		 lctx;
	const struct rule_ctx	*saved = r->ctx;
	char			 full[PROTO_ADDRLEN];
	int			 rv;

	if (addr_format(a, full, sizeof(full)) == -1) {
		snprintf(r->reply, r->replysz, "550 5.1.3 <%s>: recipient "
		    "too long", r->orig);
		return -1;
	}
	if (expanded) {
		/* The administrator wrote the alias: it is local mail. */
		lctx = *r->ctx;
		lctx.local = 1;
		r->ctx = &lctx;
	}
	rv = -1;
	TAILQ_FOREACH(m, &r->conf->matches, entry) {
		if (!rule_from(r, m) || !rule_for(r, m, a, full) ||
		    !rule_mail_from(r, m))
			continue;
		if (m->reject || m->act == NULL) {
			snprintf(r->reply, r->replysz, "550 5.7.1 <%s>: "
			    "Recipient address rejected by policy", r->orig);
			break;
		}
		if (m->act->kind == ACTION_RELAY ||
		    m->act->kind == ACTION_LMTP)
			rv = rule_add(r, full, m->act->name, "");
		else
			rv = rule_local(r, m->act, a->local, a->domain, depth);
		break;
	}
	if (m == NULL)
		snprintf(r->reply, r->replysz, "550 5.7.1 <%s>: Relay access "
		    "denied", r->orig);
	r->ctx = saved;
	return rv;
}

int
queue_rule_resolve(const struct postern_conf *conf,
    const struct queue_user_tree *users, const struct rule_ctx *ctx,
    const char *rcpt, struct rule_target *targets, size_t max, size_t *n,
    char *reply, size_t replysz)
{
	struct rule_run		 r;
	struct mailaddr		 a;
	const char		*why;

	memset(&r, 0, sizeof(r));
	r.conf = conf;
	r.users = users;
	r.ctx = ctx;
	r.targets = targets;
	r.max = max;
	r.reply = reply;
	r.replysz = replysz;
	r.orig = rcpt;
	*n = 0;
	if (addr_parse_mailbox(rcpt, strlen(rcpt), ADDR_UTF8, &a,
	    &why) == -1) {
		snprintf(reply, replysz, "553 5.1.3 <%s>: %s", rcpt, why);
		return -1;
	}
	if (rule_addr(&r, &a, 0, 0) == -1)
		return -1;
	*n = r.n;
	return 0;
}
