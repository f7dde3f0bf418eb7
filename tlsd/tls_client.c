/*
 * tls_client.c: client sessions for outbound delivery.  The server chain
 * goes through BearSSL's "minimal" X.509 validator, wrapped so that a
 * failed validation is recorded instead of aborting the handshake: SMTP
 * between MTAs is mostly opportunistic TLS, and the caller decides what
 * an unverified peer may receive.  Also session saving for resumption.
 * SECURITY: runs in the sandboxed tlsd; the server's certificates are
 * hostile input, decoded only by BearSSL.  A saved session holds a
 * master secret and is wiped by whoever drops it.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bearssl.h>

#include "log.h"
#include "tls_local.h"

#define TLS_RESUME_MAGIC	0x504f5354U	/* "POST" */

/*
 * The validator wrapper.  vtable must be first: BearSSL calls the
 * methods with a pointer to it.
 */
struct tls_x509 {
	const br_x509_class	*vtable;
	br_x509_minimal_context	 minimal;
	br_x509_decoder_context	 leaf;		/* the leaf's key, always */
	br_sha256_context	 leaf_hash;
	unsigned		 ncerts;
	int			 chain_seen;	/* not in a resumed session */
	unsigned		 result;	/* 0: trusted, or BR_ERR_X509 */
	int			 have_fingerprint;
	unsigned char		 fingerprint[32];
};

/* What tls_session_save() stores inside struct tls_resume. */
struct tls_resume_data {
	uint32_t			magic;
	br_ssl_session_parameters	params;
	char				server_name[TLS_NAMELEN];
	unsigned			result;
	int				have_fingerprint;
	unsigned char			fingerprint[32];
};

_Static_assert(sizeof(struct tls_resume_data) <= TLS_RESUME_SIZE,
    "TLS_RESUME_SIZE too small");

static void	tls_x509_start_chain(const br_x509_class **, const char *);
static void	tls_x509_start_cert(const br_x509_class **, uint32_t);
static void	tls_x509_append(const br_x509_class **, const unsigned char *,
		    size_t);
static void	tls_x509_end_cert(const br_x509_class **);
static unsigned	tls_x509_end_chain(const br_x509_class **);
static const br_x509_pkey *tls_x509_get_pkey(const br_x509_class *const *,
		    unsigned *);
static struct tls_session *tls_client_new(struct tls_config *, const char *,
		    const struct tls_resume_data *);

static const br_x509_class tls_x509_vtable = {
	sizeof(struct tls_x509),
	tls_x509_start_chain,
	tls_x509_start_cert,
	tls_x509_append,
	tls_x509_end_cert,
	tls_x509_end_chain,
	tls_x509_get_pkey
};

/*
 * The five chain methods forward to the minimal validator; for the
 * leaf they also decode its key and hash it for the fingerprint.
 */
static void
tls_x509_start_chain(const br_x509_class **ctx, const char *server_name)
{
	struct tls_x509	*x = (struct tls_x509 *)(void *)ctx;

	x->chain_seen = 1;
	x->ncerts = 0;
	x->result = BR_ERR_X509_EMPTY_CHAIN;
	x->have_fingerprint = 0;
	x->minimal.vtable->start_chain(&x->minimal.vtable, server_name);
}

static void
tls_x509_start_cert(const br_x509_class **ctx, uint32_t length)
{
	struct tls_x509	*x = (struct tls_x509 *)(void *)ctx;

	x->minimal.vtable->start_cert(&x->minimal.vtable, length);
	if (x->ncerts == 0) {
		br_x509_decoder_init(&x->leaf, NULL, NULL);
		br_sha256_init(&x->leaf_hash);
	}
}

static void
tls_x509_append(const br_x509_class **ctx, const unsigned char *buf,
    size_t len)
{
	struct tls_x509	*x = (struct tls_x509 *)(void *)ctx;

	x->minimal.vtable->append(&x->minimal.vtable, buf, len);
	if (x->ncerts == 0) {
		br_x509_decoder_push(&x->leaf, buf, len);
		br_sha256_update(&x->leaf_hash, buf, len);
	}
}

static void
tls_x509_end_cert(const br_x509_class **ctx)
{
	struct tls_x509	*x = (struct tls_x509 *)(void *)ctx;

	x->minimal.vtable->end_cert(&x->minimal.vtable);
	if (x->ncerts == 0) {
		br_sha256_out(&x->leaf_hash, x->fingerprint);
		x->have_fingerprint = 1;
	}
	x->ncerts++;
}

/* Record BearSSL's verdict, and let the handshake go on regardless. */
static unsigned
tls_x509_end_chain(const br_x509_class **ctx)
{
	struct tls_x509	*x = (struct tls_x509 *)(void *)ctx;

	x->result = x->minimal.vtable->end_chain(&x->minimal.vtable);
	return 0;
}

/*
 * The leaf's key: the validator's when the chain is trusted (with the
 * usages it validated), else the one decoded on the side.  NULL if the
 * leaf cannot be decoded at all, which fails the handshake.
 */
static const br_x509_pkey *
tls_x509_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	struct tls_x509	*x = (struct tls_x509 *)(uintptr_t)ctx;

	if (x->result == 0)
		return x->minimal.vtable->get_pkey(&x->minimal.vtable, usages);
	if (usages != NULL)
		*usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
	return br_x509_decoder_get_pkey(&x->leaf);
}

void
tls_x509_free(struct tls_x509 *x)
{
	free(x);
}

int
tls_x509_chain_seen(const struct tls_x509 *x)
{
	return x != NULL && x->chain_seen;
}

/* A client session, resuming rd if not NULL. */
static struct tls_session *
tls_client_new(struct tls_config *conf, const char *server_name,
    const struct tls_resume_data *rd)
{
	struct tls_session	*s;
	struct tls_x509		*x;
	br_ssl_client_context	*cc;
	size_t			 len;

	if (server_name == NULL)
		server_name = "";
	if ((len = strnlen(server_name, TLS_NAMELEN)) >= TLS_NAMELEN)
		return NULL;
	if ((s = tls_session_alloc(conf, TLS_OBUF_CLIENT)) == NULL)
		return NULL;
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		free(s);
		return NULL;
	}
	s->client = 1;
	s->x509 = x;
	memcpy(s->server_name, server_name, len);
	s->server_name[len] = '\0';

	x->vtable = &tls_x509_vtable;
	x->result = BR_ERR_X509_EMPTY_CHAIN;
	br_x509_minimal_init_full(&x->minimal, conf->tas, conf->ntas);

	cc = &s->u.client;
	s->eng = &cc->eng;
	br_ssl_client_zero(cc);
	tls_engine_setup(s->eng, conf);
	/*
	 * All of BearSSL's curves, P-521 included: the server's ECDSA
	 * signature is checked with this code too, and an outbound
	 * connection should not fail on an unusual certificate.
	 */
	br_ssl_engine_set_ec(s->eng, br_ec_get_default());
	if (conf->ciphers == TLS_CIPHERS_COMPAT)
		br_ssl_client_set_default_rsapub(cc);
	br_ssl_engine_set_x509(s->eng, &x->vtable);
	br_ssl_engine_set_buffers_bidi(s->eng, s->ibuf, s->ibuf_len, s->obuf,
	    s->obuf_len);
	tls_engine_seed(s->eng);
	if (rd != NULL) {
		br_ssl_engine_set_session_parameters(s->eng, &rd->params);
		/* Kept if the server resumes; replaced by a full handshake. */
		x->result = rd->result;
		x->have_fingerprint = rd->have_fingerprint;
		memcpy(x->fingerprint, rd->fingerprint,
		    sizeof(x->fingerprint));
	}
	if (!br_ssl_client_reset(cc, len > 0 ? s->server_name : NULL,
	    rd != NULL)) {
		free(x);
		freezero(s, sizeof(*s) + s->ibuf_len + s->obuf_len);
		return NULL;
	}
	conf->nsessions++;
	return s;
}

struct tls_session *
tls_session_client(struct tls_config *conf, const char *server_name)
{
	return tls_client_new(conf, server_name, NULL);
}

struct tls_session *
tls_session_client_resume(struct tls_config *conf, const char *server_name,
    const struct tls_resume *saved)
{
	struct tls_resume_data	 rd;
	struct tls_session	*s;
	int			 use = 0;

	if (saved != NULL) {
		memcpy(&rd, saved->opaque, sizeof(rd));
		use = rd.magic == TLS_RESUME_MAGIC &&
		    rd.params.session_id_len > 0 &&
		    rd.params.session_id_len <= sizeof(rd.params.session_id) &&
		    memchr(rd.server_name, '\0', sizeof(rd.server_name)) !=
		    NULL && server_name != NULL &&
		    strcasecmp(rd.server_name, server_name) == 0;
	}
	s = tls_client_new(conf, server_name, use ? &rd : NULL);
	explicit_bzero(&rd, sizeof(rd));
	return s;
}

int
tls_session_save(struct tls_session *s, struct tls_resume *out)
{
	struct tls_resume_data	rd;

	if (!s->client || tls_session_state(s) == TLS_STATE_FAILED ||
	    !s->open)
		return -1;
	memset(&rd, 0, sizeof(rd));
	br_ssl_engine_get_session_parameters(s->eng, &rd.params);
	if (rd.params.session_id_len == 0) {
		explicit_bzero(&rd, sizeof(rd));
		return -1;
	}
	rd.magic = TLS_RESUME_MAGIC;
	strlcpy(rd.server_name, s->server_name, sizeof(rd.server_name));
	rd.result = s->x509->result;
	rd.have_fingerprint = s->x509->have_fingerprint;
	memcpy(rd.fingerprint, s->x509->fingerprint, sizeof(rd.fingerprint));
	memset(out, 0, sizeof(*out));
	memcpy(out->opaque, &rd, sizeof(rd));
	explicit_bzero(&rd, sizeof(rd));
	return 0;
}

int
tls_session_verified(struct tls_session *s, char *why, size_t whysz)
{
	char	name[48];

	if (!s->client) {
		tls_seterr(why, whysz, "not a client session");
		return 0;
	}
	(void)tls_session_state(s);
	if (!s->open) {
		tls_seterr(why, whysz, "handshake not done");
		return 0;
	}
	if (s->server_name[0] == '\0') {
		tls_seterr(why, whysz, "no server name to verify");
		return 0;
	}
	if (s->x509->result != 0) {
		tls_seterr(why, whysz, "%s (%s)",
		    tls_engine_errtext((int)s->x509->result),
		    tls_engine_errname((int)s->x509->result, name,
		    sizeof(name)));
		return 0;
	}
	if (why != NULL && whysz > 0)
		strlcpy(why, "verified", whysz);
	return 1;
}

int
tls_session_peer_fingerprint(struct tls_session *s, char *buf,
    size_t bufsz)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i;

	if (!s->client)
		return -1;
	(void)tls_session_state(s);
	if (!s->open || !s->x509->have_fingerprint ||
	    bufsz < TLS_FINGERPRINT_LEN)
		return -1;
	for (i = 0; i < sizeof(s->x509->fingerprint); i++) {
		buf[2 * i] = hex[s->x509->fingerprint[i] >> 4];
		buf[2 * i + 1] = hex[s->x509->fingerprint[i] & 0xf];
	}
	buf[2 * i] = '\0';
	return 0;
}
