/*
 * proto.c: encoders and strict decoders for every inter-process message.
 * SECURITY: decoders check each field and reject trailing bytes; they are
 * the only code that reads a payload.
 */
#include <ctype.h>
#include <string.h>

#include "proto.h"

#define GET(x)		do { if ((x) == -1) return -1; } while (0)
#define GETSTR(m, f)	GET(imsg_get_string((m), (f), sizeof(f)))

void
proto_enc_conf_blob(struct imsg_payload *p, const struct msg_conf_blob *b)
{
	imsg_add_u8(p, b->kind);
	imsg_add_string(p, b->path);
	imsg_add_data(p, b->data, b->len);
}

int
proto_dec_conf_blob(struct imsg *m, struct msg_conf_blob *b)
{
	GET(imsg_get_u8(m, &b->kind));
	if (b->kind > 1)
		return -1;
	GETSTR(m, b->path);
	GET(imsg_get_data(m, &b->data, &b->len));
	return imsg_end(m);
}

void
proto_enc_conf_user(struct imsg_payload *p, const struct msg_conf_user *u)
{
	imsg_add_string(p, u->name);
	imsg_add_u32(p, u->uid);
	imsg_add_u32(p, u->gid);
	imsg_add_string(p, u->home);
}

int
proto_dec_conf_user(struct imsg *m, struct msg_conf_user *u)
{
	GETSTR(m, u->name);
	GET(imsg_get_u32(m, &u->uid));
	GET(imsg_get_u32(m, &u->gid));
	GETSTR(m, u->home);
	if (u->name[0] == '\0')
		return -1;
	return imsg_end(m);
}

void
proto_enc_conf_end(struct imsg_payload *p, const struct msg_conf_end *e)
{
	uint32_t	 i;

	imsg_add_u32(p, e->nmacros);
	for (i = 0; i < e->nmacros && i < PROTO_MAXMACROS; i++) {
		imsg_add_string(p, e->name[i]);
		imsg_add_string(p, e->value[i]);
	}
}

int
proto_dec_conf_end(struct imsg *m, struct msg_conf_end *e)
{
	uint32_t	 i;

	GET(imsg_get_u32(m, &e->nmacros));
	if (e->nmacros > PROTO_MAXMACROS)
		return -1;
	for (i = 0; i < e->nmacros; i++) {
		GETSTR(m, e->name[i]);
		GETSTR(m, e->value[i]);
	}
	return imsg_end(m);
}

void
proto_enc_listener_fd(struct imsg_payload *p, const struct msg_listener_fd *l)
{
	imsg_add_u32(p, l->index);
}

int
proto_dec_listener_fd(struct imsg *m, struct msg_listener_fd *l)
{
	GET(imsg_get_u32(m, &l->index));
	return imsg_end(m);
}

void
proto_enc_smtp_mail(struct imsg_payload *p, const struct msg_smtp_mail *s)
{
	imsg_add_u8(p, s->local);
	imsg_add_string(p, s->client);
	imsg_add_string(p, s->helo);
	imsg_add_string(p, s->auth_user);
	imsg_add_string(p, s->sender);
	imsg_add_u8(p, s->smtputf8);
	imsg_add_u8(p, s->body);
	imsg_add_u64(p, s->size);
	imsg_add_i64(p, s->owner);
}

int
proto_dec_smtp_mail(struct imsg *m, struct msg_smtp_mail *s)
{
	GET(imsg_get_u8(m, &s->local));
	GETSTR(m, s->client);
	GETSTR(m, s->helo);
	GETSTR(m, s->auth_user);
	GETSTR(m, s->sender);
	GET(imsg_get_u8(m, &s->smtputf8));
	GET(imsg_get_u8(m, &s->body));
	GET(imsg_get_u64(m, &s->size));
	GET(imsg_get_i64(m, &s->owner));
	if (s->local > 1 || s->smtputf8 > 1 || s->body > 2 ||
	    s->owner < -1 || s->owner > UINT32_MAX)
		return -1;
	return imsg_end(m);
}

void
proto_enc_smtp_result(struct imsg_payload *p, const struct msg_smtp_result *r)
{
	imsg_add_u8(p, r->ok);
	imsg_add_u64(p, r->msgid);
	imsg_add_string(p, r->reply);
}

int
proto_dec_smtp_result(struct imsg *m, struct msg_smtp_result *r)
{
	GET(imsg_get_u8(m, &r->ok));
	GET(imsg_get_u64(m, &r->msgid));
	GETSTR(m, r->reply);
	if (r->ok > 1)
		return -1;
	/* A refusal must carry a well-formed reply line: "NNN text". */
	if (!r->ok && (strlen(r->reply) < 4 || r->reply[0] < '4' ||
	    r->reply[0] > '5' || r->reply[3] != ' ' ||
	    strpbrk(r->reply, "\r\n") != NULL))
		return -1;
	return imsg_end(m);
}

void
proto_enc_smtp_rcpt(struct imsg_payload *p, const struct msg_smtp_rcpt *r)
{
	imsg_add_u64(p, r->msgid);
	imsg_add_string(p, r->rcpt);
	imsg_add_u32(p, r->notify);
	imsg_add_string(p, r->orcpt);
}

int
proto_dec_smtp_rcpt(struct imsg *m, struct msg_smtp_rcpt *r)
{
	GET(imsg_get_u64(m, &r->msgid));
	GETSTR(m, r->rcpt);
	GET(imsg_get_u32(m, &r->notify));
	GETSTR(m, r->orcpt);
	if (r->rcpt[0] == '\0' || r->notify > 0x0f)
		return -1;
	return imsg_end(m);
}

void
proto_enc_smtp_data(struct imsg_payload *p, const struct msg_smtp_data *d)
{
	imsg_add_u64(p, d->msgid);
	imsg_add_data(p, d->data, d->len);
}

int
proto_dec_smtp_data(struct imsg *m, struct msg_smtp_data *d)
{
	GET(imsg_get_u64(m, &d->msgid));
	GET(imsg_get_data(m, &d->data, &d->len));
	return imsg_end(m);
}

void
proto_enc_smtp_commit(struct imsg_payload *p, const struct msg_smtp_commit *c)
{
	imsg_add_u64(p, c->msgid);
	imsg_add_u8(p, c->refuse);
}

int
proto_dec_smtp_commit(struct imsg *m, struct msg_smtp_commit *c)
{
	GET(imsg_get_u64(m, &c->msgid));
	GET(imsg_get_u8(m, &c->refuse));
	if (c->refuse > 1)
		return -1;
	return imsg_end(m);
}

void
proto_enc_deliver_local(struct imsg_payload *p,
    const struct msg_deliver_local *d)
{
	imsg_add_string(p, d->action);
	imsg_add_string(p, d->mailbox);
	imsg_add_string(p, d->sender);
	imsg_add_string(p, d->rcpt);
	imsg_add_i64(p, d->ctime);
	imsg_add_u8(p, d->retry);
}

int
proto_dec_deliver_local(struct imsg *m, struct msg_deliver_local *d)
{
	GETSTR(m, d->action);
	GETSTR(m, d->mailbox);
	GETSTR(m, d->sender);
	GETSTR(m, d->rcpt);
	GET(imsg_get_i64(m, &d->ctime));
	GET(imsg_get_u8(m, &d->retry));
	if (d->action[0] == '\0' || d->mailbox[0] == '\0' ||
	    d->rcpt[0] == '\0' || d->retry > 1)
		return -1;
	return imsg_end(m);
}

void
proto_enc_deliver_result(struct imsg_payload *p,
    const struct msg_deliver_result *r)
{
	imsg_add_u32(p, r->status);
	imsg_add_string(p, r->text);
}

int
proto_dec_deliver_result(struct imsg *m, struct msg_deliver_result *r)
{
	GET(imsg_get_u32(m, &r->status));
	GETSTR(m, r->text);
	if (r->status > DELIVER_PERMFAIL)
		return -1;
	return imsg_end(m);
}

void
proto_enc_tls_setup(struct imsg_payload *p, const struct msg_tls_setup *t)
{
	imsg_add_u8(p, t->ciphers);
	imsg_add_u64(p, t->cache_bytes);
}

int
proto_dec_tls_setup(struct imsg *m, struct msg_tls_setup *t)
{
	GET(imsg_get_u8(m, &t->ciphers));
	GET(imsg_get_u64(m, &t->cache_bytes));
	if (t->ciphers > 1 || t->cache_bytes > 1024 * 1024 * 1024)
		return -1;
	return imsg_end(m);
}

void
proto_enc_tls_pki(struct imsg_payload *p, const struct msg_tls_pki *k)
{
	imsg_add_string(p, k->name);
	imsg_add_data(p, k->cert, k->certlen);
	imsg_add_data(p, k->key, k->keylen);
}

int
proto_dec_tls_pki(struct imsg *m, struct msg_tls_pki *k)
{
	GETSTR(m, k->name);
	GET(imsg_get_data(m, &k->cert, &k->certlen));
	GET(imsg_get_data(m, &k->key, &k->keylen));
	if (k->name[0] == '\0' || k->certlen == 0 || k->keylen == 0)
		return -1;
	return imsg_end(m);
}

void
proto_enc_tls_bytes(struct imsg_payload *p, const struct msg_tls_bytes *b)
{
	imsg_add_data(p, b->data, b->len);
}

int
proto_compose_bytes(struct imsgbuf *ib, uint16_t type, uint64_t id,
    const void *data, size_t len)
{
	struct imsg_payload	 p;
	struct msg_tls_bytes	 b;
	int			 rv;

	b.data = data;
	b.len = len;
	imsg_payload_init(&p);
	proto_enc_tls_bytes(&p, &b);
	rv = imsg_compose_payload(ib, type, id, -1, &p);
	imsg_payload_free(&p);
	return rv;
}

int
proto_dec_tls_bytes(struct imsg *m, struct msg_tls_bytes *b)
{
	GET(imsg_get_data(m, &b->data, &b->len));
	return imsg_end(m);
}

void
proto_enc_tls_worker_fd(struct imsg_payload *p,
    const struct msg_tls_worker_fd *w)
{
	imsg_add_u32(p, w->index);
}

int
proto_dec_tls_worker_fd(struct imsg *m, struct msg_tls_worker_fd *w)
{
	GET(imsg_get_u32(m, &w->index));
	if (w->index >= 64)
		return -1;
	return imsg_end(m);
}

void
proto_enc_tls_open(struct imsg_payload *p, const struct msg_tls_open *o)
{
	imsg_add_u8(p, o->mode);
	imsg_add_string(p, o->name);
}

int
proto_dec_tls_open(struct imsg *m, struct msg_tls_open *o)
{
	GET(imsg_get_u8(m, &o->mode));
	GETSTR(m, o->name);
	if (o->mode != TLS_OPEN_SERVER && o->mode != TLS_OPEN_CLIENT)
		return -1;
	return imsg_end(m);
}

void
proto_enc_tls_handshake(struct imsg_payload *p,
    const struct msg_tls_handshake *h)
{
	imsg_add_string(p, h->version);
	imsg_add_string(p, h->suite);
	imsg_add_string(p, h->sni);
	imsg_add_u8(p, h->resumed);
	imsg_add_u8(p, h->verified);
	imsg_add_string(p, h->why);
}

int
proto_dec_tls_handshake(struct imsg *m, struct msg_tls_handshake *h)
{
	const char	*c;

	GETSTR(m, h->version);
	GETSTR(m, h->suite);
	GETSTR(m, h->sni);
	GET(imsg_get_u8(m, &h->resumed));
	GET(imsg_get_u8(m, &h->verified));
	GETSTR(m, h->why);
	if (h->resumed > 1 || h->verified > 1)
		return -1;
	/* These go into a Received: header: letters, digits, "-._" only. */
	for (c = h->version; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && strchr("-._", *c) == NULL)
			return -1;
	for (c = h->suite; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && strchr("-._", *c) == NULL)
			return -1;
	return imsg_end(m);
}

void
proto_enc_tls_close(struct imsg_payload *p, const struct msg_tls_close *c)
{
	imsg_add_u8(p, c->how);
}

int
proto_dec_tls_close(struct imsg *m, struct msg_tls_close *c)
{
	GET(imsg_get_u8(m, &c->how));
	if (c->how != TLS_CLOSE_NOTIFY && c->how != TLS_CLOSE_FORGET)
		return -1;
	return imsg_end(m);
}

void
proto_enc_tls_closed(struct imsg_payload *p, const struct msg_tls_closed *c)
{
	imsg_add_u8(p, c->failed);
	imsg_add_string(p, c->reason);
}

int
proto_dec_tls_closed(struct imsg *m, struct msg_tls_closed *c)
{
	GET(imsg_get_u8(m, &c->failed));
	GETSTR(m, c->reason);
	if (c->failed > 1)
		return -1;
	return imsg_end(m);
}

void
proto_enc_ctl_conn(struct imsg_payload *p, const struct msg_ctl_conn *c)
{
	imsg_add_u32(p, c->uid);
	imsg_add_u32(p, c->gid);
	imsg_add_u8(p, c->admin);
	imsg_add_u8(p, c->monitor);
}

int
proto_dec_ctl_conn(struct imsg *m, struct msg_ctl_conn *c)
{
	GET(imsg_get_u32(m, &c->uid));
	GET(imsg_get_u32(m, &c->gid));
	GET(imsg_get_u8(m, &c->admin));
	GET(imsg_get_u8(m, &c->monitor));
	if (c->admin > 1 || c->monitor > 1)
		return -1;
	return imsg_end(m);
}

void
proto_enc_ctl_id(struct imsg_payload *p, const struct msg_ctl_id *c)
{
	imsg_add_u64(p, c->id);
}

int
proto_dec_ctl_id(struct imsg *m, struct msg_ctl_id *c)
{
	GET(imsg_get_u64(m, &c->id));
	return imsg_end(m);
}

void
proto_enc_ctl_what(struct imsg_payload *p, const struct msg_ctl_what *c)
{
	imsg_add_u8(p, c->what);
}

int
proto_dec_ctl_what(struct imsg *m, struct msg_ctl_what *c)
{
	GET(imsg_get_u8(m, &c->what));
	if (c->what > CTL_WHAT_DELIVERY)
		return -1;
	return imsg_end(m);
}

void
proto_enc_ctl_envelope(struct imsg_payload *p,
    const struct msg_ctl_envelope *e)
{
	imsg_add_u64(p, e->evpid);
	imsg_add_u64(p, e->msgid);
	imsg_add_string(p, e->sender);
	imsg_add_string(p, e->rcpt);
	imsg_add_u8(p, e->state);
	imsg_add_u32(p, e->attempts);
	imsg_add_i64(p, e->ctime);
	imsg_add_i64(p, e->next_try);
	imsg_add_u64(p, e->size);
	imsg_add_string(p, e->last_error);
}

int
proto_dec_ctl_envelope(struct imsg *m, struct msg_ctl_envelope *e)
{
	GET(imsg_get_u64(m, &e->evpid));
	GET(imsg_get_u64(m, &e->msgid));
	GETSTR(m, e->sender);
	GETSTR(m, e->rcpt);
	GET(imsg_get_u8(m, &e->state));
	GET(imsg_get_u32(m, &e->attempts));
	GET(imsg_get_i64(m, &e->ctime));
	GET(imsg_get_i64(m, &e->next_try));
	GET(imsg_get_u64(m, &e->size));
	GETSTR(m, e->last_error);
	if (e->state > CTL_STATE_HELD)
		return -1;
	return imsg_end(m);
}

void
proto_enc_ctl_stat(struct imsg_payload *p, const struct msg_ctl_stat *st)
{
	imsg_add_string(p, st->name);
	imsg_add_i64(p, st->value);
}

int
proto_dec_ctl_stat(struct imsg *m, struct msg_ctl_stat *st)
{
	const char	*c;

	GETSTR(m, st->name);
	GET(imsg_get_i64(m, &st->value));
	/* Names become JSON keys and metric names: [a-z0-9_] only. */
	if (st->name[0] == '\0')
		return -1;
	for (c = st->name; *c != '\0'; c++)
		if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) ||
		    *c == '_'))
			return -1;
	return imsg_end(m);
}

void
proto_enc_ctl_end(struct imsg_payload *p, const struct msg_ctl_end *e)
{
	imsg_add_u8(p, e->ok);
	imsg_add_u64(p, e->count);
	imsg_add_string(p, e->error);
}

int
proto_dec_ctl_end(struct imsg *m, struct msg_ctl_end *e)
{
	GET(imsg_get_u8(m, &e->ok));
	GET(imsg_get_u64(m, &e->count));
	GETSTR(m, e->error);
	if (e->ok > 1 || strpbrk(e->error, "\r\n") != NULL)
		return -1;
	return imsg_end(m);
}

int
proto_decode_any(struct imsg *m)
{
	union {
		struct msg_conf_blob		b;
		struct msg_conf_user		u;
		struct msg_conf_end		e;
		struct msg_listener_fd		l;
		struct msg_smtp_mail		sm;
		struct msg_smtp_result		sr;
		struct msg_smtp_rcpt		rc;
		struct msg_smtp_data		d;
		struct msg_smtp_commit		c;
		struct msg_deliver_local	dl;
		struct msg_deliver_result	dr;
		struct msg_tls_setup		ts;
		struct msg_tls_pki		tp;
		struct msg_tls_bytes		tb;
		struct msg_tls_worker_fd	tw;
		struct msg_tls_open		to;
		struct msg_tls_handshake	th;
		struct msg_tls_close		tc;
		struct msg_tls_closed		tcd;
		struct msg_ctl_conn		cc;
		struct msg_ctl_id		ci;
		struct msg_ctl_what		cw;
		struct msg_ctl_envelope		ce;
		struct msg_ctl_stat		cs;
		struct msg_ctl_end		cend;
	} u;

	m->rpos = 0;
	switch (m->hdr.type) {
	case IMSG_CONF_BLOB:
		return proto_dec_conf_blob(m, &u.b);
	case IMSG_CONF_USER:
		return proto_dec_conf_user(m, &u.u);
	case IMSG_CONF_END:
		return proto_dec_conf_end(m, &u.e);
	case IMSG_LISTENER_FD:
		return proto_dec_listener_fd(m, &u.l);
	case IMSG_SMTP_MAIL:
		return proto_dec_smtp_mail(m, &u.sm);
	case IMSG_SMTP_MAIL_RESULT:
	case IMSG_SMTP_RCPT_RESULT:
	case IMSG_SMTP_COMMIT_RESULT:
		return proto_dec_smtp_result(m, &u.sr);
	case IMSG_SMTP_RCPT:
		return proto_dec_smtp_rcpt(m, &u.rc);
	case IMSG_SMTP_DATA:
		return proto_dec_smtp_data(m, &u.d);
	case IMSG_SMTP_COMMIT:
	case IMSG_SMTP_ROLLBACK:
		return proto_dec_smtp_commit(m, &u.c);
	case IMSG_DELIVER_LOCAL:
		return proto_dec_deliver_local(m, &u.dl);
	case IMSG_DELIVER_RESULT:
		return proto_dec_deliver_result(m, &u.dr);
	case IMSG_TLS_SETUP:
		return proto_dec_tls_setup(m, &u.ts);
	case IMSG_TLS_PKI:
		return proto_dec_tls_pki(m, &u.tp);
	case IMSG_TLS_CA:
	case IMSG_TLS_CIPHER:
	case IMSG_TLS_CLEAR:
		return proto_dec_tls_bytes(m, &u.tb);
	case IMSG_TLS_SETUP_END:
		return imsg_end(m);
	case IMSG_TLS_WORKER_FD:
		return proto_dec_tls_worker_fd(m, &u.tw);
	case IMSG_TLS_OPEN:
		return proto_dec_tls_open(m, &u.to);
	case IMSG_TLS_HANDSHAKE:
		return proto_dec_tls_handshake(m, &u.th);
	case IMSG_TLS_CLOSE:
		return proto_dec_tls_close(m, &u.tc);
	case IMSG_TLS_CLOSED:
		return proto_dec_tls_closed(m, &u.tcd);
	case IMSG_CTL_CONN:
		return proto_dec_ctl_conn(m, &u.cc);
	case IMSG_CTL_SHOW_QUEUE:
	case IMSG_CTL_SHOW_STATS:
	case IMSG_CTL_RELOAD:
	case IMSG_CTL_PARENT_RELOAD:
		return imsg_end(m);
	case IMSG_CTL_SHOW_MESSAGE:
	case IMSG_CTL_SCHEDULE:
	case IMSG_CTL_REMOVE:
	case IMSG_CTL_HOLD:
	case IMSG_CTL_RELEASE:
		return proto_dec_ctl_id(m, &u.ci);
	case IMSG_CTL_PAUSE:
	case IMSG_CTL_RESUME:
	case IMSG_CTL_LOG:
		return proto_dec_ctl_what(m, &u.cw);
	case IMSG_CTL_ENVELOPE:
		return proto_dec_ctl_envelope(m, &u.ce);
	case IMSG_CTL_HEADERS:
		return proto_dec_tls_bytes(m, &u.tb);
	case IMSG_CTL_STAT:
	case IMSG_STATS_SET:
		return proto_dec_ctl_stat(m, &u.cs);
	case IMSG_CTL_END:
		return proto_dec_ctl_end(m, &u.cend);
	}
	return -1;
}
