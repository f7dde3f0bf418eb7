/*
 * tls_pki.c: the tlsd configuration: certificate chains and private keys
 * (PEM, checked against each other), trust anchors for client sessions,
 * the server session cache, and pki lookup by SNI.
 * SECURITY: runs in tlsd before and after the sandbox; the PEM text
 * comes from the parent (root-owned files) and is parsed defensively
 * anyway (it is fuzzed).  Private key bytes live only in struct tls_key
 * and in buffers that are wiped before they are freed.
 */
#include <sys/types.h>
#include <sys/queue.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bearssl.h>

#include "log.h"
#include "tls_local.h"

/* Largest DER object inside a PEM file. */
#define TLS_DER_MAX		(64 * 1024)
/* Largest subject DN kept for a trust anchor. */
#define TLS_DN_MAX		(8 * 1024)

/* A growable byte buffer; secret ones are wiped on growth and free. */
struct tls_buf {
	unsigned char	*data;
	size_t		 len;
	size_t		 cap;
	size_t		 max;
	int		 secret;
	int		 failed;	/* too large or out of memory */
};

/* Called for each complete PEM object; returns 0 or -1 with err set. */
typedef int (*tls_pem_cb)(void *arg, const char *name,
    const unsigned char *der, size_t len, char *err, size_t errsz);

/* What the certificate-file callback collects. */
struct tls_certs {
	br_x509_certificate	chain[TLS_CHAIN_MAX];
	size_t			n;
};

/* What the key-file callback collects. */
struct tls_keyder {
	struct tls_buf	der;
	size_t		n;
};

static void	tls_buf_append(void *, const void *, size_t);
static void	tls_buf_free(struct tls_buf *);
static int	tls_pem_parse(const char *, size_t, int, tls_pem_cb, void *,
		    char *, size_t);
static int	tls_name_normalize(const char *, char *, size_t);
static int	tls_certs_cb(void *, const char *, const unsigned char *,
		    size_t, char *, size_t);
static int	tls_keyder_cb(void *, const char *, const unsigned char *,
		    size_t, char *, size_t);
static int	tls_cas_cb(void *, const char *, const unsigned char *,
		    size_t, char *, size_t);
static void	tls_certs_free(br_x509_certificate *, size_t);
static struct tls_key *tls_key_decode(const unsigned char *, size_t,
		    char *, size_t);
static void	tls_key_free(struct tls_key *);
static int	tls_key_match(struct tls_key *, const br_x509_pkey *,
		    char *, size_t);
static int	tls_rsa_match(const br_rsa_private_key *,
		    const br_rsa_public_key *);
static int	tls_ec_match(const br_ec_private_key *,
		    const br_ec_public_key *);
static const unsigned char *tls_strip0(const unsigned char *, size_t *);
static unsigned	tls_bitlen(const unsigned char *, size_t);
static void	tls_anchor_free(br_x509_trust_anchor *);
static char	*tls_printable(const char *, char *, size_t);

int
tls_seterr(char *err, size_t errsz, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errsz > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return -1;
}

struct tls_config *
tls_config_new(enum tls_ciphers ciphers, size_t session_cache_bytes)
{
	struct tls_config	*conf;

	if (ciphers != TLS_CIPHERS_DEFAULT && ciphers != TLS_CIPHERS_COMPAT)
		return NULL;
	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		return NULL;
	conf->ciphers = ciphers;
	TAILQ_INIT(&conf->pkis);
	if (session_cache_bytes > 0) {
		if (session_cache_bytes > UINT32_MAX ||
		    (conf->cache_store = calloc(1, session_cache_bytes)) ==
		    NULL) {
			free(conf);
			return NULL;
		}
		conf->cache_len = session_cache_bytes;
		br_ssl_session_cache_lru_init(&conf->cache, conf->cache_store,
		    conf->cache_len);
	}
	conf->ec = *br_ec_get_default();
	conf->ec.supported_curves &= (1U << BR_EC_curve25519) |
	    (1U << BR_EC_secp256r1) | (1U << BR_EC_secp384r1);
	return conf;
}

void
tls_config_free(struct tls_config *conf)
{
	struct tls_pki	*pki;
	size_t		 i;

	if (conf == NULL)
		return;
	if (conf->nsessions != 0)
		fatalx("tls_config_free: %zu sessions still open",
		    conf->nsessions);
	while ((pki = TAILQ_FIRST(&conf->pkis)) != NULL) {
		TAILQ_REMOVE(&conf->pkis, pki, entry);
		tls_key_free(pki->rsa);
		tls_key_free(pki->ec);
		free(pki);
	}
	for (i = 0; i < conf->ntas; i++)
		tls_anchor_free(&conf->tas[i]);
	free(conf->tas);
	if (conf->cache_store != NULL)
		freezero(conf->cache_store, conf->cache_len);
	freezero(conf, sizeof(*conf));
}

size_t
tls_config_ncas(const struct tls_config *conf)
{
	return conf->ntas;
}

/* Appends to a tls_buf; the br_pem/br_x509 "dest" callback. */
static void
tls_buf_append(void *arg, const void *src, size_t len)
{
	struct tls_buf	*b = arg;
	unsigned char	*n;
	size_t		 ncap;

	if (b->failed || len == 0)
		return;
	if (len > b->max - b->len) {
		b->failed = 1;
		return;
	}
	if (b->len + len > b->cap) {
		ncap = b->cap == 0 ? 2048 : b->cap;
		while (ncap < b->len + len)
			ncap *= 2;
		if (ncap > b->max)
			ncap = b->max;
		if ((n = malloc(ncap)) == NULL) {
			b->failed = 1;
			return;
		}
		if (b->len > 0)
			memcpy(n, b->data, b->len);
		if (b->data != NULL) {
			if (b->secret)
				explicit_bzero(b->data, b->cap);
			free(b->data);
		}
		b->data = n;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, src, len);
	b->len += len;
}

static void
tls_buf_free(struct tls_buf *b)
{
	if (b->data != NULL) {
		if (b->secret)
			explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = NULL;
	b->len = b->cap = 0;
}

/* A short, printable copy of untrusted text for an error message. */
static char *
tls_printable(const char *s, char *buf, size_t bufsz)
{
	(void)log_escape(buf, bufsz, s, strlen(s));
	return buf;
}

/*
 * Decode every PEM object of text[0..len) and hand each one to cb.
 * Text outside objects is ignored, as PEM allows; a malformed or
 * unterminated object rejects the whole input.
 */
static int
tls_pem_parse(const char *text, size_t len, int secret, tls_pem_cb cb,
    void *arg, char *err, size_t errsz)
{
	br_pem_decoder_context	 pc;
	struct tls_buf		 obj;
	const unsigned char	*p = (const unsigned char *)text;
	static const unsigned char nl = '\n';
	char			 name[sizeof(pc.name)];
	size_t			 off = 0, n;
	int			 ev, inobj = 0, final = 0, rv = -1;

	memset(&obj, 0, sizeof(obj));
	obj.secret = secret;
	obj.max = TLS_DER_MAX;
	br_pem_decoder_init(&pc);
	for (;;) {
		if (off < len) {
			n = br_pem_decoder_push(&pc, p + off, len - off);
			off += n;
		} else if (!final) {
			/* End the last line, in case the text does not. */
			n = br_pem_decoder_push(&pc, &nl, 1);
			if (n == 1)
				final = 1;
		} else
			n = 0;
		ev = br_pem_decoder_event(&pc);
		if (ev == BR_PEM_BEGIN_OBJ) {
			if (inobj) {
				tls_seterr(err, errsz, "malformed PEM");
				goto done;
			}
			inobj = 1;
			strlcpy(name, br_pem_decoder_name(&pc), sizeof(name));
			obj.len = 0;
			obj.failed = 0;
			br_pem_decoder_setdest(&pc, tls_buf_append, &obj);
		} else if (ev == BR_PEM_END_OBJ) {
			inobj = 0;
			br_pem_decoder_setdest(&pc, NULL, NULL);
			if (obj.failed) {
				tls_seterr(err, errsz, "PEM object too large");
				goto done;
			}
			if (cb(arg, name, obj.data, obj.len, err, errsz) == -1)
				goto done;
			if (obj.data != NULL && secret)
				explicit_bzero(obj.data, obj.len);
			obj.len = 0;
		} else if (ev == BR_PEM_ERROR) {
			tls_seterr(err, errsz, "malformed PEM");
			goto done;
		} else if (ev == 0 && n == 0) {
			if (off < len || !final) {
				/* No progress and no event: impossible. */
				tls_seterr(err, errsz, "malformed PEM");
				goto done;
			}
			break;
		}
	}
	if (inobj) {
		tls_seterr(err, errsz, "truncated PEM");
		goto done;
	}
	rv = 0;
 done:
	tls_buf_free(&obj);
	explicit_bzero(&pc, sizeof(pc));
	return rv;
}

/*
 * Check a pki name (host name or "*." wildcard, letters, digits, '-'
 * and '_', labels of 1 to 63 characters) and store it in lowercase.
 */
static int
tls_name_normalize(const char *name, char *out, size_t outsz)
{
	const char	*s;
	size_t		 len, label = 0, i;

	if (name == NULL)
		return -1;
	len = strnlen(name, TLS_NAMELEN);
	if (len == 0 || len >= TLS_NAMELEN || len >= outsz)
		return -1;
	s = name;
	if (s[0] == '*') {
		if (s[1] != '.' || s[2] == '\0')
			return -1;
		s += 2;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum((unsigned char)s[i]) || s[i] == '-' ||
		    s[i] == '_') {
			if (++label > 63)
				return -1;
		} else
			return -1;
	}
	if (label == 0)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = tolower((unsigned char)name[i]);
	out[len] = '\0';
	return 0;
}

struct tls_pki *
tls_pki_find(const struct tls_config *conf, const char *name)
{
	struct tls_pki	*pki;

	TAILQ_FOREACH(pki, &conf->pkis, entry)
		if (strcasecmp(pki->name, name) == 0)
			return pki;
	return NULL;
}

/*
 * The pki for a client's SNI: the exact name, then the wildcard for
 * its first label, else fallback.
 */
struct tls_pki *
tls_pki_select(const struct tls_config *conf, const char *sni,
    struct tls_pki *fallback)
{
	struct tls_pki	*pki;
	char		 name[TLS_NAMELEN + 1];
	const char	*dot;
	size_t		 len;

	len = strnlen(sni, TLS_NAMELEN);
	if (len == 0 || len >= TLS_NAMELEN)
		return fallback;
	memcpy(name, sni, len);
	name[len] = '\0';
	if (name[len - 1] == '.')
		name[--len] = '\0';
	if (len == 0 || name[0] == '*')
		return fallback;
	if ((pki = tls_pki_find(conf, name)) != NULL)
		return pki;
	if ((dot = strchr(name, '.')) == NULL || dot == name ||
	    dot[1] == '\0')
		return fallback;
	/* "*" + ".rest" fits: it is shorter than name. */
	name[0] = '*';
	memmove(name + 1, dot, strlen(dot) + 1);
	if ((pki = tls_pki_find(conf, name)) != NULL)
		return pki;
	return fallback;
}

/* Collects the certificates of a chain file. */
static int
tls_certs_cb(void *arg, const char *name, const unsigned char *der,
    size_t len, char *err, size_t errsz)
{
	struct tls_certs	*c = arg;
	char			 pname[48];

	if (strcmp(name, "CERTIFICATE") != 0 &&
	    strcmp(name, "X509 CERTIFICATE") != 0)
		return tls_seterr(err, errsz,
		    "unexpected PEM object in certificate: %s",
		    tls_printable(name, pname, sizeof(pname)));
	if (c->n == TLS_CHAIN_MAX)
		return tls_seterr(err, errsz, "too many certificates in chain");
	if (len == 0)
		return tls_seterr(err, errsz, "bad certificate (empty)");
	if ((c->chain[c->n].data = malloc(len)) == NULL)
		return tls_seterr(err, errsz, "out of memory");
	memcpy(c->chain[c->n].data, der, len);
	c->chain[c->n].data_len = len;
	c->n++;
	return 0;
}

/* Collects the one private key of a key file. */
static int
tls_keyder_cb(void *arg, const char *name, const unsigned char *der,
    size_t len, char *err, size_t errsz)
{
	struct tls_keyder	*k = arg;
	char			 pname[48];

	if (strcmp(name, "EC PARAMETERS") == 0)
		return 0;
	if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0)
		return tls_seterr(err, errsz,
		    "encrypted private keys are not supported");
	if (strcmp(name, "PRIVATE KEY") != 0 &&
	    strcmp(name, "RSA PRIVATE KEY") != 0 &&
	    strcmp(name, "EC PRIVATE KEY") != 0)
		return tls_seterr(err, errsz,
		    "unexpected PEM object in key: %s",
		    tls_printable(name, pname, sizeof(pname)));
	if (k->n++ > 0)
		return tls_seterr(err, errsz, "more than one private key");
	tls_buf_append(&k->der, der, len);
	if (k->der.failed)
		return tls_seterr(err, errsz, "out of memory");
	return 0;
}

static void
tls_certs_free(br_x509_certificate *chain, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(chain[i].data);
}

/* Strip leading zero bytes of a big-endian integer. */
static const unsigned char *
tls_strip0(const unsigned char *p, size_t *len)
{
	while (*len > 0 && *p == 0) {
		p++;
		(*len)--;
	}
	return p;
}

/* Bit length of a big-endian integer. */
static unsigned
tls_bitlen(const unsigned char *p, size_t len)
{
	unsigned	bits;
	unsigned char	top;

	p = tls_strip0(p, &len);
	if (len == 0)
		return 0;
	bits = (unsigned)(len - 1) * 8;
	for (top = p[0]; top != 0; top >>= 1)
		bits++;
	return bits;
}

/*
 * Decode a DER private key (raw or PKCS#8) into a struct tls_key of
 * our own storage, and check that BearSSL can use it safely: RSA 2048
 * to 4096 bits with odd factors whose product has the announced size,
 * EC P-256/P-384 with 0 < x < order.
 */
static struct tls_key *
tls_key_decode(const unsigned char *der, size_t len, char *err,
    size_t errsz)
{
	br_skey_decoder_context		 dc;
	const br_rsa_private_key	*rsa;
	const br_ec_private_key		*ec;
	const unsigned char		*order, *x;
	struct tls_key			*key = NULL;
	unsigned char			 n[1024], *d;
	size_t				 olen, xlen, nlen;
	int				 e;

	br_skey_decoder_init(&dc);
	br_skey_decoder_push(&dc, der, len);
	if ((e = br_skey_decoder_last_error(&dc)) != 0) {
		char	ename[48];

		tls_seterr(err, errsz, "bad private key (%s)",
		    tls_engine_errname(e, ename, sizeof(ename)));
		goto fail;
	}
	if ((key = calloc(1, sizeof(*key))) == NULL) {
		tls_seterr(err, errsz, "out of memory");
		goto fail;
	}
	switch (br_skey_decoder_key_type(&dc)) {
	case BR_KEYTYPE_RSA:
		rsa = br_skey_decoder_get_rsa(&dc);
		if (rsa->n_bitlen < 2048 || rsa->n_bitlen > 4096) {
			tls_seterr(err, errsz, "unsupported key");
			goto fail;
		}
		if (rsa->plen == 0 || rsa->qlen == 0 ||
		    (rsa->p[rsa->plen - 1] & 1) == 0 ||
		    (rsa->q[rsa->qlen - 1] & 1) == 0 ||
		    tls_bitlen(rsa->p, rsa->plen) < 2 ||
		    tls_bitlen(rsa->q, rsa->qlen) < 2 ||
		    rsa->plen > 512 || rsa->qlen > 512 ||
		    rsa->dplen > 512 || rsa->dqlen > 512 ||
		    rsa->iqlen > 512) {
			tls_seterr(err, errsz, "bad private key (RSA factors)");
			goto fail;
		}
		key->type = BR_KEYTYPE_RSA;
		key->keylen = rsa->plen + rsa->qlen + rsa->dplen +
		    rsa->dqlen + rsa->iqlen;
		if ((key->keydata = malloc(key->keylen)) == NULL) {
			tls_seterr(err, errsz, "out of memory");
			goto fail;
		}
		d = key->keydata;
		key->sk.rsa.n_bitlen = rsa->n_bitlen;
#define TLS_KEYCOPY(f) do {						\
	memcpy(d, rsa->f, rsa->f##len);					\
	key->sk.rsa.f = d;						\
	key->sk.rsa.f##len = rsa->f##len;				\
	d += rsa->f##len;						\
} while (0)
		TLS_KEYCOPY(p);
		TLS_KEYCOPY(q);
		TLS_KEYCOPY(dp);
		TLS_KEYCOPY(dq);
		TLS_KEYCOPY(iq);
#undef TLS_KEYCOPY
		/* The product of the factors must have the announced size. */
		nlen = br_rsa_compute_modulus_get_default()(NULL, &key->sk.rsa);
		if (nlen == 0 || nlen > sizeof(n) ||
		    (nlen = br_rsa_compute_modulus_get_default()(n,
		    &key->sk.rsa)) == 0 || nlen > sizeof(n) ||
		    tls_bitlen(n, nlen) != rsa->n_bitlen) {
			tls_seterr(err, errsz, "bad private key (RSA modulus)");
			goto fail;
		}
		key->bits = rsa->n_bitlen;
		break;
	case BR_KEYTYPE_EC:
		ec = br_skey_decoder_get_ec(&dc);
		if (ec->curve == BR_EC_secp256r1)
			key->bits = 256;
		else if (ec->curve == BR_EC_secp384r1)
			key->bits = 384;
		else {
			tls_seterr(err, errsz, "unsupported key");
			goto fail;
		}
		order = br_ec_get_default()->order(ec->curve, &olen);
		xlen = ec->xlen;
		x = tls_strip0(ec->x, &xlen);
		if (xlen == 0 || xlen > olen || (xlen == olen &&
		    memcmp(x, order, olen) >= 0)) {
			tls_seterr(err, errsz, "bad private key (EC scalar)");
			goto fail;
		}
		key->type = BR_KEYTYPE_EC;
		/* Keep the scalar at the full order length. */
		key->keylen = olen;
		if ((key->keydata = calloc(1, olen)) == NULL) {
			tls_seterr(err, errsz, "out of memory");
			goto fail;
		}
		memcpy(key->keydata + (olen - xlen), x, xlen);
		key->sk.ec.curve = ec->curve;
		key->sk.ec.x = key->keydata;
		key->sk.ec.xlen = olen;
		break;
	default:
		tls_seterr(err, errsz, "unsupported key");
		goto fail;
	}
	explicit_bzero(&dc, sizeof(dc));
	return key;
 fail:
	explicit_bzero(&dc, sizeof(dc));
	tls_key_free(key);
	return NULL;
}

/* Free a key and its chain, wiping the private part. */
static void
tls_key_free(struct tls_key *key)
{
	if (key == NULL)
		return;
	if (key->keydata != NULL)
		freezero(key->keydata, key->keylen);
	if (key->chain != NULL) {
		tls_certs_free(key->chain, key->chain_len);
		free(key->chain);
	}
	freezero(key, sizeof(*key));
}

/* Whether an RSA private key is the one of public key pk. */
static int
tls_rsa_match(const br_rsa_private_key *sk, const br_rsa_public_key *pk)
{
	static const char	 msg[] = "postern key check";
	br_sha256_context	 h;
	unsigned char		 hash[32], out[32], sig[512], n[1024];
	const unsigned char	*pn;
	size_t			 nlen, pnlen = pk->nlen, siglen;
	int			 ok = 0;

	/* Same modulus first: cheap, and gives a precise answer. */
	nlen = br_rsa_compute_modulus_get_default()(NULL, sk);
	if (nlen == 0 || nlen > sizeof(n) ||
	    br_rsa_compute_modulus_get_default()(n, sk) != nlen)
		return 0;
	pn = tls_strip0(pk->n, &pnlen);
	if (nlen != pnlen || memcmp(n, pn, nlen) != 0)
		return 0;
	/* Then a signature that the public key verifies (checks e, CRT). */
	siglen = (sk->n_bitlen + 7) / 8;
	if (siglen > sizeof(sig))
		return 0;
	br_sha256_init(&h);
	br_sha256_update(&h, msg, sizeof(msg) - 1);
	br_sha256_out(&h, hash);
	if (br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, hash,
	    sizeof(hash), sk, sig) == 1 &&
	    br_rsa_pkcs1_vrfy_get_default()(sig, siglen, BR_HASH_OID_SHA256,
	    sizeof(out), pk, out) == 1 &&
	    memcmp(out, hash, sizeof(hash)) == 0)
		ok = 1;
	explicit_bzero(sig, sizeof(sig));
	return ok;
}

/* Whether an EC private key is the one of public key pk. */
static int
tls_ec_match(const br_ec_private_key *sk, const br_ec_public_key *pk)
{
	br_ec_public_key	pub;
	unsigned char		q[BR_EC_KBUF_PUB_MAX_SIZE];
	size_t			qlen;

	if (sk->curve != pk->curve)
		return 0;
	qlen = br_ec_compute_pub(br_ec_get_default(), &pub, q, sk);
	return qlen != 0 && qlen == pk->qlen &&
	    memcmp(q, pk->q, qlen) == 0;
}

/* Check key against the leaf certificate's public key. */
static int
tls_key_match(struct tls_key *key, const br_x509_pkey *pk, char *err,
    size_t errsz)
{
	if (key->type == BR_KEYTYPE_RSA && pk->key_type == BR_KEYTYPE_RSA &&
	    tls_rsa_match(&key->sk.rsa, &pk->key.rsa))
		return 0;
	if (key->type == BR_KEYTYPE_EC && pk->key_type == BR_KEYTYPE_EC &&
	    tls_ec_match(&key->sk.ec, &pk->key.ec))
		return 0;
	return tls_seterr(err, errsz, "key does not match certificate");
}

int
tls_config_add_pki(struct tls_config *conf, const char *name,
    const char *cert_pem, size_t cert_len, const char *key_pem,
    size_t key_len, char *err, size_t errsz)
{
	br_x509_decoder_context	 xc;
	const br_x509_pkey	*pk;
	struct tls_certs	 certs;
	struct tls_keyder	 kd;
	struct tls_key		*key = NULL;
	struct tls_pki		*pki;
	char			 lname[TLS_NAMELEN], ename[48];
	int			 e, rv = -1;

	memset(&certs, 0, sizeof(certs));
	memset(&kd, 0, sizeof(kd));
	kd.der.secret = 1;
	kd.der.max = TLS_DER_MAX;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (tls_name_normalize(name, lname, sizeof(lname)) == -1)
		return tls_seterr(err, errsz, "invalid pki name");
	if (conf->nsessions != 0)
		return tls_seterr(err, errsz, "configuration in use");
	if (cert_len > TLS_PEM_MAX)
		return tls_seterr(err, errsz, "certificate too large");
	if (key_len > TLS_PEM_MAX)
		return tls_seterr(err, errsz, "key too large");

	if (tls_pem_parse(cert_pem, cert_len, 0, tls_certs_cb, &certs, err,
	    errsz) == -1)
		goto done;
	if (certs.n == 0) {
		tls_seterr(err, errsz, "no certificate found");
		goto done;
	}
	if (tls_pem_parse(key_pem, key_len, 1, tls_keyder_cb, &kd, err,
	    errsz) == -1)
		goto done;
	if (kd.n == 0) {
		tls_seterr(err, errsz, "no private key found");
		goto done;
	}
	if ((key = tls_key_decode(kd.der.data, kd.der.len, err, errsz)) ==
	    NULL)
		goto done;

	br_x509_decoder_init(&xc, NULL, NULL);
	br_x509_decoder_push(&xc, certs.chain[0].data,
	    certs.chain[0].data_len);
	if ((e = br_x509_decoder_last_error(&xc)) != 0 ||
	    (pk = br_x509_decoder_get_pkey(&xc)) == NULL) {
		tls_seterr(err, errsz, "bad certificate (%s)",
		    tls_engine_errname(e, ename, sizeof(ename)));
		goto done;
	}
	if (tls_key_match(key, pk, err, errsz) == -1)
		goto done;

	if ((pki = tls_pki_find(conf, lname)) != NULL) {
		if (key->type == BR_KEYTYPE_RSA && pki->rsa != NULL) {
			tls_seterr(err, errsz, "pki %s already has an RSA key",
			    lname);
			goto done;
		}
		if (key->type == BR_KEYTYPE_EC && pki->ec != NULL) {
			tls_seterr(err, errsz, "pki %s already has an EC key",
			    lname);
			goto done;
		}
	} else {
		if ((pki = calloc(1, sizeof(*pki))) == NULL) {
			tls_seterr(err, errsz, "out of memory");
			goto done;
		}
		strlcpy(pki->name, lname, sizeof(pki->name));
		TAILQ_INSERT_TAIL(&conf->pkis, pki, entry);
	}
	if ((key->chain = reallocarray(NULL, certs.n,
	    sizeof(*key->chain))) == NULL) {
		tls_seterr(err, errsz, "out of memory");
		if (pki->rsa == NULL && pki->ec == NULL) {
			TAILQ_REMOVE(&conf->pkis, pki, entry);
			free(pki);
		}
		goto done;
	}
	memcpy(key->chain, certs.chain, certs.n * sizeof(*key->chain));
	key->chain_len = certs.n;
	certs.n = 0;		/* now owned by key */
	if (key->type == BR_KEYTYPE_RSA)
		pki->rsa = key;
	else
		pki->ec = key;
	key = NULL;
	rv = 0;
 done:
	tls_certs_free(certs.chain, certs.n);
	tls_buf_free(&kd.der);
	tls_key_free(key);
	return rv;
}

/* Free what a trust anchor points to. */
static void
tls_anchor_free(br_x509_trust_anchor *ta)
{
	free(ta->dn.data);
	if (ta->pkey.key_type == BR_KEYTYPE_RSA) {
		free(ta->pkey.key.rsa.n);
		free(ta->pkey.key.rsa.e);
	} else if (ta->pkey.key_type == BR_KEYTYPE_EC)
		free(ta->pkey.key.ec.q);
	memset(ta, 0, sizeof(*ta));
}

/* State of tls_config_add_cas() across PEM objects. */
struct tls_cas {
	struct tls_config	*conf;
	size_t			 ncerts;
};

/* One CA certificate to a trust anchor; undecodable ones are skipped. */
static int
tls_cas_cb(void *arg, const char *name, const unsigned char *der,
    size_t len, char *err, size_t errsz)
{
	struct tls_cas		*cas = arg;
	struct tls_config	*conf = cas->conf;
	br_x509_decoder_context	 xc;
	br_x509_trust_anchor	 ta, *n;
	const br_x509_pkey	*pk;
	struct tls_buf		 dn;
	char			 pname[48];
	size_t			 ncap;

	if (strcmp(name, "CERTIFICATE") != 0 &&
	    strcmp(name, "X509 CERTIFICATE") != 0 &&
	    strcmp(name, "TRUSTED CERTIFICATE") != 0)
		return tls_seterr(err, errsz,
		    "unexpected PEM object in CA bundle: %s",
		    tls_printable(name, pname, sizeof(pname)));
	cas->ncerts++;
	memset(&dn, 0, sizeof(dn));
	dn.max = TLS_DN_MAX;
	memset(&ta, 0, sizeof(ta));
	br_x509_decoder_init(&xc, tls_buf_append, &dn);
	br_x509_decoder_push(&xc, der, len);
	if (br_x509_decoder_last_error(&xc) != 0 ||
	    (pk = br_x509_decoder_get_pkey(&xc)) == NULL || dn.failed ||
	    dn.len == 0) {
		log_debug("tls ca=%zu skipped reason=\"%s\"", cas->ncerts,
		    tls_engine_errtext(br_x509_decoder_last_error(&xc)));
		tls_buf_free(&dn);
		return 0;
	}
	ta.dn.data = dn.data;
	ta.dn.len = dn.len;
	ta.flags = br_x509_decoder_isCA(&xc) ? BR_X509_TA_CA : 0;
	ta.pkey.key_type = pk->key_type;
	if (pk->key_type == BR_KEYTYPE_RSA) {
		ta.pkey.key.rsa.nlen = pk->key.rsa.nlen;
		ta.pkey.key.rsa.elen = pk->key.rsa.elen;
		if ((ta.pkey.key.rsa.n = malloc(pk->key.rsa.nlen)) == NULL ||
		    (ta.pkey.key.rsa.e = malloc(pk->key.rsa.elen)) == NULL)
			goto oom;
		memcpy(ta.pkey.key.rsa.n, pk->key.rsa.n, pk->key.rsa.nlen);
		memcpy(ta.pkey.key.rsa.e, pk->key.rsa.e, pk->key.rsa.elen);
	} else if (pk->key_type == BR_KEYTYPE_EC) {
		ta.pkey.key.ec.curve = pk->key.ec.curve;
		ta.pkey.key.ec.qlen = pk->key.ec.qlen;
		if ((ta.pkey.key.ec.q = malloc(pk->key.ec.qlen)) == NULL)
			goto oom;
		memcpy(ta.pkey.key.ec.q, pk->key.ec.q, pk->key.ec.qlen);
	} else {
		tls_buf_free(&dn);
		return 0;
	}
	if (conf->ntas == conf->tas_cap) {
		ncap = conf->tas_cap == 0 ? 64 : conf->tas_cap * 2;
		if ((n = reallocarray(conf->tas, ncap, sizeof(*n))) == NULL)
			goto oom;
		conf->tas = n;
		conf->tas_cap = ncap;
	}
	conf->tas[conf->ntas++] = ta;
	return 0;
 oom:
	tls_anchor_free(&ta);
	return tls_seterr(err, errsz, "out of memory");
}

int
tls_config_add_cas(struct tls_config *conf, const char *pem, size_t len,
    char *err, size_t errsz)
{
	struct tls_cas	cas;
	size_t		before = conf->ntas, i;

	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (conf->nsessions != 0)
		return tls_seterr(err, errsz, "configuration in use");
	if (len > TLS_CAS_MAX)
		return tls_seterr(err, errsz, "CA bundle too large");
	cas.conf = conf;
	cas.ncerts = 0;
	if (tls_pem_parse(pem, len, 0, tls_cas_cb, &cas, err, errsz) == -1) {
		/* All or nothing. */
		for (i = before; i < conf->ntas; i++)
			tls_anchor_free(&conf->tas[i]);
		conf->ntas = before;
		return -1;
	}
	if (conf->ntas == before)
		return tls_seterr(err, errsz,
		    "no usable certificate in bundle");
	return 0;
}
