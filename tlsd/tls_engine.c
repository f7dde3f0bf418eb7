/*
 * tls_engine.c: TLS sessions over byte buffers.  BearSSL's engine state
 * drives the I/O: ciphertext moves with the recvrec/sendrec buf/ack
 * calls, cleartext with recvapp/sendapp, never through br_sslio.  Also
 * the server policy (SNI to pki, ECDSA or RSA, signing with the pki's
 * key) and the error texts.
 * SECURITY: runs in the sandboxed tlsd; every byte fed to a session is
 * hostile.  Errors end that session (TLS_STATE_FAILED), never tlsd.
 * Session buffers hold cleartext mail and are wiped when freed.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bearssl.h>

#include "log.h"
#include "tls_local.h"

#define TLS_MIN(a, b)	((a) < (b) ? (a) : (b))

static int	tls_policy_choose(const br_ssl_server_policy_class **,
		    const br_ssl_server_context *, br_ssl_server_choices *);
static uint32_t	tls_policy_keyx(const br_ssl_server_policy_class **,
		    unsigned char *, size_t *);
static size_t	tls_policy_sign(const br_ssl_server_policy_class **,
		    unsigned, unsigned char *, size_t, size_t);
static int	tls_hash_pick(uint32_t);
static void	tls_session_update(struct tls_session *);
static int	tls_session_dead(struct tls_session *);
static const char *tls_alert_name(int);
static int	tls_copyout(char *, size_t, const char *);

static const br_ssl_server_policy_class tls_policy_vtable = {
	sizeof(struct tls_policy),
	tls_policy_choose,
	tls_policy_keyx,
	tls_policy_sign
};

/*
 * Server preference order: AES-GCM (hardware AES is common), then
 * ChaCha20; ECDSA and RSA alternate because choose() picks the key type
 * first and the suite second.
 */
static const uint16_t tls_suites_default[] = {
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
};

/* COMPAT: the above, then ECDHE with CBC, then RSA key exchange. */
static const uint16_t tls_suites_compat[] = {
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	BR_TLS_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_RSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_RSA_WITH_AES_128_CBC_SHA256,
	BR_TLS_RSA_WITH_AES_256_CBC_SHA256,
	BR_TLS_RSA_WITH_AES_128_CBC_SHA,
	BR_TLS_RSA_WITH_AES_256_CBC_SHA
};

/* Suite names as OpenSSL spells them (what mail logs show). */
static const struct {
	uint16_t	 id;
	const char	*name;
} tls_suite_names[] = {
	{ BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	    "ECDHE-ECDSA-AES128-GCM-SHA256" },
	{ BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	    "ECDHE-RSA-AES128-GCM-SHA256" },
	{ BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	    "ECDHE-ECDSA-AES256-GCM-SHA384" },
	{ BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	    "ECDHE-RSA-AES256-GCM-SHA384" },
	{ BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	    "ECDHE-ECDSA-CHACHA20-POLY1305" },
	{ BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	    "ECDHE-RSA-CHACHA20-POLY1305" },
	{ BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	    "ECDHE-ECDSA-AES128-SHA256" },
	{ BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	    "ECDHE-RSA-AES128-SHA256" },
	{ BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
	    "ECDHE-ECDSA-AES256-SHA384" },
	{ BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
	    "ECDHE-RSA-AES256-SHA384" },
	{ BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "ECDHE-ECDSA-AES128-SHA" },
	{ BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "ECDHE-RSA-AES128-SHA" },
	{ BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "ECDHE-ECDSA-AES256-SHA" },
	{ BR_TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "ECDHE-RSA-AES256-SHA" },
	{ BR_TLS_RSA_WITH_AES_128_GCM_SHA256, "AES128-GCM-SHA256" },
	{ BR_TLS_RSA_WITH_AES_256_GCM_SHA384, "AES256-GCM-SHA384" },
	{ BR_TLS_RSA_WITH_AES_128_CBC_SHA256, "AES128-SHA256" },
	{ BR_TLS_RSA_WITH_AES_256_CBC_SHA256, "AES256-SHA256" },
	{ BR_TLS_RSA_WITH_AES_128_CBC_SHA, "AES128-SHA" },
	{ BR_TLS_RSA_WITH_AES_256_CBC_SHA, "AES256-SHA" }
};

/* BearSSL error codes: symbolic name and what it means to a reader. */
static const struct {
	int		 code;
	const char	*name;
	const char	*text;
} tls_errors[] = {
	{ BR_ERR_OK, "BR_ERR_OK", "no error" },
	{ BR_ERR_BAD_PARAM, "BR_ERR_BAD_PARAM", "bad parameter" },
	{ BR_ERR_BAD_STATE, "BR_ERR_BAD_STATE", "bad engine state" },
	{ BR_ERR_UNSUPPORTED_VERSION, "BR_ERR_UNSUPPORTED_VERSION",
	    "unsupported protocol version" },
	{ BR_ERR_BAD_VERSION, "BR_ERR_BAD_VERSION",
	    "unexpected record version" },
	{ BR_ERR_BAD_LENGTH, "BR_ERR_BAD_LENGTH", "bad record length" },
	{ BR_ERR_TOO_LARGE, "BR_ERR_TOO_LARGE", "record too large" },
	{ BR_ERR_BAD_MAC, "BR_ERR_BAD_MAC", "bad record MAC" },
	{ BR_ERR_NO_RANDOM, "BR_ERR_NO_RANDOM", "no entropy" },
	{ BR_ERR_UNKNOWN_TYPE, "BR_ERR_UNKNOWN_TYPE", "unknown record type" },
	{ BR_ERR_UNEXPECTED, "BR_ERR_UNEXPECTED", "unexpected message" },
	{ BR_ERR_BAD_CCS, "BR_ERR_BAD_CCS", "bad ChangeCipherSpec" },
	{ BR_ERR_BAD_ALERT, "BR_ERR_BAD_ALERT", "bad alert" },
	{ BR_ERR_BAD_HANDSHAKE, "BR_ERR_BAD_HANDSHAKE",
	    "malformed handshake message" },
	{ BR_ERR_OVERSIZED_ID, "BR_ERR_OVERSIZED_ID", "oversized session ID" },
	{ BR_ERR_BAD_CIPHER_SUITE, "BR_ERR_BAD_CIPHER_SUITE",
	    "cipher suite not offered" },
	{ BR_ERR_BAD_COMPRESSION, "BR_ERR_BAD_COMPRESSION",
	    "bad compression method" },
	{ BR_ERR_BAD_FRAGLEN, "BR_ERR_BAD_FRAGLEN", "bad fragment length" },
	{ BR_ERR_BAD_SECRENEG, "BR_ERR_BAD_SECRENEG",
	    "bad secure renegotiation" },
	{ BR_ERR_EXTRA_EXTENSION, "BR_ERR_EXTRA_EXTENSION",
	    "unexpected extension" },
	{ BR_ERR_BAD_SNI, "BR_ERR_BAD_SNI", "bad server name" },
	{ BR_ERR_BAD_HELLO_DONE, "BR_ERR_BAD_HELLO_DONE",
	    "bad ServerHelloDone" },
	{ BR_ERR_LIMIT_EXCEEDED, "BR_ERR_LIMIT_EXCEEDED",
	    "internal limit exceeded" },
	{ BR_ERR_BAD_FINISHED, "BR_ERR_BAD_FINISHED", "bad Finished message" },
	{ BR_ERR_RESUME_MISMATCH, "BR_ERR_RESUME_MISMATCH",
	    "session resumption mismatch" },
	{ BR_ERR_INVALID_ALGORITHM, "BR_ERR_INVALID_ALGORITHM",
	    "unsupported algorithm" },
	{ BR_ERR_BAD_SIGNATURE, "BR_ERR_BAD_SIGNATURE", "bad signature" },
	{ BR_ERR_WRONG_KEY_USAGE, "BR_ERR_WRONG_KEY_USAGE",
	    "wrong key usage" },
	{ BR_ERR_NO_CLIENT_AUTH, "BR_ERR_NO_CLIENT_AUTH",
	    "no client certificate" },
	{ BR_ERR_IO, "BR_ERR_IO", "I/O error" },
	{ BR_ERR_X509_OK, "BR_ERR_X509_OK", "certificate valid" },
	{ BR_ERR_X509_INVALID_VALUE, "BR_ERR_X509_INVALID_VALUE",
	    "invalid value in certificate" },
	{ BR_ERR_X509_TRUNCATED, "BR_ERR_X509_TRUNCATED",
	    "truncated certificate" },
	{ BR_ERR_X509_EMPTY_CHAIN, "BR_ERR_X509_EMPTY_CHAIN",
	    "empty certificate chain" },
	{ BR_ERR_X509_INNER_TRUNC, "BR_ERR_X509_INNER_TRUNC",
	    "truncated certificate element" },
	{ BR_ERR_X509_BAD_TAG_CLASS, "BR_ERR_X509_BAD_TAG_CLASS",
	    "bad ASN.1 tag class" },
	{ BR_ERR_X509_BAD_TAG_VALUE, "BR_ERR_X509_BAD_TAG_VALUE",
	    "bad ASN.1 tag" },
	{ BR_ERR_X509_INDEFINITE_LENGTH, "BR_ERR_X509_INDEFINITE_LENGTH",
	    "indefinite ASN.1 length" },
	{ BR_ERR_X509_EXTRA_ELEMENT, "BR_ERR_X509_EXTRA_ELEMENT",
	    "extra element in certificate" },
	{ BR_ERR_X509_UNEXPECTED, "BR_ERR_X509_UNEXPECTED",
	    "unexpected element in certificate" },
	{ BR_ERR_X509_NOT_CONSTRUCTED, "BR_ERR_X509_NOT_CONSTRUCTED",
	    "ASN.1 element not constructed" },
	{ BR_ERR_X509_NOT_PRIMITIVE, "BR_ERR_X509_NOT_PRIMITIVE",
	    "ASN.1 element not primitive" },
	{ BR_ERR_X509_PARTIAL_BYTE, "BR_ERR_X509_PARTIAL_BYTE",
	    "partial byte in BIT STRING" },
	{ BR_ERR_X509_BAD_BOOLEAN, "BR_ERR_X509_BAD_BOOLEAN",
	    "bad BOOLEAN" },
	{ BR_ERR_X509_OVERFLOW, "BR_ERR_X509_OVERFLOW",
	    "ASN.1 value overflow" },
	{ BR_ERR_X509_BAD_DN, "BR_ERR_X509_BAD_DN",
	    "bad distinguished name" },
	{ BR_ERR_X509_BAD_TIME, "BR_ERR_X509_BAD_TIME",
	    "bad time in certificate" },
	{ BR_ERR_X509_UNSUPPORTED, "BR_ERR_X509_UNSUPPORTED",
	    "unsupported certificate feature" },
	{ BR_ERR_X509_LIMIT_EXCEEDED, "BR_ERR_X509_LIMIT_EXCEEDED",
	    "certificate limit exceeded" },
	{ BR_ERR_X509_WRONG_KEY_TYPE, "BR_ERR_X509_WRONG_KEY_TYPE",
	    "wrong key type" },
	{ BR_ERR_X509_BAD_SIGNATURE, "BR_ERR_X509_BAD_SIGNATURE",
	    "bad certificate signature" },
	{ BR_ERR_X509_TIME_UNKNOWN, "BR_ERR_X509_TIME_UNKNOWN",
	    "current time unknown" },
	{ BR_ERR_X509_EXPIRED, "BR_ERR_X509_EXPIRED",
	    "certificate expired or not yet valid" },
	{ BR_ERR_X509_DN_MISMATCH, "BR_ERR_X509_DN_MISMATCH",
	    "issuer name mismatch" },
	{ BR_ERR_X509_BAD_SERVER_NAME, "BR_ERR_X509_BAD_SERVER_NAME",
	    "server name mismatch" },
	{ BR_ERR_X509_CRITICAL_EXTENSION, "BR_ERR_X509_CRITICAL_EXTENSION",
	    "unsupported critical extension" },
	{ BR_ERR_X509_NOT_CA, "BR_ERR_X509_NOT_CA", "issuer is not a CA" },
	{ BR_ERR_X509_FORBIDDEN_KEY_USAGE, "BR_ERR_X509_FORBIDDEN_KEY_USAGE",
	    "forbidden key usage" },
	{ BR_ERR_X509_WEAK_PUBLIC_KEY, "BR_ERR_X509_WEAK_PUBLIC_KEY",
	    "weak public key" },
	{ BR_ERR_X509_NOT_TRUSTED, "BR_ERR_X509_NOT_TRUSTED",
	    "certificate not trusted" }
};

/* TLS alert descriptions (RFC 5246 7.2 and later registrations). */
static const struct {
	int		 code;
	const char	*name;
} tls_alerts[] = {
	{ 0, "close_notify" }, { 10, "unexpected_message" },
	{ 20, "bad_record_mac" }, { 21, "decryption_failed" },
	{ 22, "record_overflow" }, { 30, "decompression_failure" },
	{ 40, "handshake_failure" }, { 41, "no_certificate" },
	{ 42, "bad_certificate" }, { 43, "unsupported_certificate" },
	{ 44, "certificate_revoked" }, { 45, "certificate_expired" },
	{ 46, "certificate_unknown" }, { 47, "illegal_parameter" },
	{ 48, "unknown_ca" }, { 49, "access_denied" },
	{ 50, "decode_error" }, { 51, "decrypt_error" },
	{ 60, "export_restriction" }, { 70, "protocol_version" },
	{ 71, "insufficient_security" }, { 80, "internal_error" },
	{ 86, "inappropriate_fallback" }, { 90, "user_canceled" },
	{ 100, "no_renegotiation" }, { 110, "unsupported_extension" },
	{ 112, "unrecognized_name" }, { 115, "unknown_psk_identity" },
	{ 120, "no_application_protocol" }
};

#define TLS_NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* The symbolic name of a BearSSL error, into buf. */
const char *
tls_engine_errname(int err, char *buf, size_t bufsz)
{
	size_t	i;

	if (err >= BR_ERR_RECV_FATAL_ALERT &&
	    err < BR_ERR_RECV_FATAL_ALERT + 256)
		(void)snprintf(buf, bufsz, "BR_ERR_RECV_FATAL_ALERT+%d",
		    err - BR_ERR_RECV_FATAL_ALERT);
	else if (err >= BR_ERR_SEND_FATAL_ALERT &&
	    err < BR_ERR_SEND_FATAL_ALERT + 256)
		(void)snprintf(buf, bufsz, "BR_ERR_SEND_FATAL_ALERT+%d",
		    err - BR_ERR_SEND_FATAL_ALERT);
	else {
		for (i = 0; i < TLS_NITEMS(tls_errors); i++)
			if (tls_errors[i].code == err) {
				(void)strlcpy(buf, tls_errors[i].name, bufsz);
				return buf;
			}
		(void)snprintf(buf, bufsz, "BR_ERR_%d", err);
	}
	return buf;
}

/* What a BearSSL error (not an alert) means. */
const char *
tls_engine_errtext(int err)
{
	size_t	i;

	for (i = 0; i < TLS_NITEMS(tls_errors); i++)
		if (tls_errors[i].code == err)
			return tls_errors[i].text;
	return "unknown error";
}

static const char *
tls_alert_name(int alert)
{
	size_t	i;

	for (i = 0; i < TLS_NITEMS(tls_alerts); i++)
		if (tls_alerts[i].code == alert)
			return tls_alerts[i].name;
	return "unknown";
}

/* Versions, suites, algorithms and flags common to both sides. */
void
tls_engine_setup(br_ssl_engine_context *eng, const struct tls_config *conf)
{
	int	compat = conf->ciphers == TLS_CIPHERS_COMPAT;

	br_ssl_engine_set_versions(eng, compat ? BR_TLS10 : BR_TLS12,
	    BR_TLS12);
	if (compat)
		br_ssl_engine_set_suites(eng, tls_suites_compat,
		    TLS_NITEMS(tls_suites_compat));
	else
		br_ssl_engine_set_suites(eng, tls_suites_default,
		    TLS_NITEMS(tls_suites_default));
	if (compat)
		br_ssl_engine_set_hash(eng, br_md5_ID, &br_md5_vtable);
	br_ssl_engine_set_hash(eng, br_sha1_ID, &br_sha1_vtable);
	br_ssl_engine_set_hash(eng, br_sha224_ID, &br_sha224_vtable);
	br_ssl_engine_set_hash(eng, br_sha256_ID, &br_sha256_vtable);
	br_ssl_engine_set_hash(eng, br_sha384_ID, &br_sha384_vtable);
	br_ssl_engine_set_hash(eng, br_sha512_ID, &br_sha512_vtable);
	if (compat)
		br_ssl_engine_set_prf10(eng, &br_tls10_prf);
	br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_gcm(eng);
	br_ssl_engine_set_default_chapol(eng);
	if (compat)
		br_ssl_engine_set_default_aes_cbc(eng);
	br_ssl_engine_set_ec(eng, &conf->ec);
	br_ssl_engine_set_rsavrfy(eng, br_rsa_pkcs1_vrfy_get_default());
	br_ssl_engine_set_ecdsa(eng, br_ecdsa_vrfy_asn1_get_default());
	br_ssl_engine_add_flags(eng, BR_OPT_ENFORCE_SERVER_PREFERENCES |
	    BR_OPT_NO_RENEGOTIATION);
}

/*
 * Our own entropy, so the engine works in the chroot where BearSSL's
 * /dev/urandom fallback cannot open anything.
 */
void
tls_engine_seed(br_ssl_engine_context *eng)
{
	unsigned char	seed[32];

	arc4random_buf(seed, sizeof(seed));
	br_ssl_engine_inject_entropy(eng, seed, sizeof(seed));
	explicit_bzero(seed, sizeof(seed));
	/*
	 * That was the OS's randomness (getrandom via arc4random): tell
	 * the engine so, or it tries its own seeder, which on a CPU without
	 * RDRAND opens /dev/urandom -- a call tlsd's filter kills.
	 */
	eng->rng_os_rand_done = 1;
}

/* A zeroed session with its engine buffers in the same allocation. */
struct tls_session *
tls_session_alloc(struct tls_config *conf, size_t obuf_len)
{
	struct tls_session	*s;

	if ((s = malloc(sizeof(*s) + TLS_IBUF_SIZE + obuf_len)) == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->conf = conf;
	s->ibuf = (unsigned char *)(s + 1);
	s->ibuf_len = TLS_IBUF_SIZE;
	s->obuf = s->ibuf + TLS_IBUF_SIZE;
	s->obuf_len = obuf_len;
	return s;
}

size_t
tls_session_memory(void)
{
	return sizeof(struct tls_session) + TLS_IBUF_SIZE + TLS_OBUF_SERVER;
}

struct tls_session *
tls_session_server(struct tls_config *conf, const char *default_pki)
{
	struct tls_session	*s;
	struct tls_pki		*pki;
	br_ssl_server_context	*sc;

	if (default_pki == NULL ||
	    (pki = tls_pki_find(conf, default_pki)) == NULL)
		return NULL;
	if ((s = tls_session_alloc(conf, TLS_OBUF_SERVER)) == NULL)
		return NULL;
	s->default_pki = pki;
	sc = &s->u.server;
	s->eng = &sc->eng;
	br_ssl_server_zero(sc);
	tls_engine_setup(s->eng, conf);
	s->policy.vtable = &tls_policy_vtable;
	s->policy.sess = s;
	br_ssl_server_set_policy(sc, &s->policy.vtable);
	if (conf->cache_store != NULL)
		br_ssl_server_set_cache(sc, &conf->cache.vtable);
	br_ssl_engine_set_buffers_bidi(s->eng, s->ibuf, s->ibuf_len, s->obuf,
	    s->obuf_len);
	tls_engine_seed(s->eng);
	if (!br_ssl_server_reset(sc)) {
		freezero(s, sizeof(*s) + s->ibuf_len + s->obuf_len);
		return NULL;
	}
	conf->nsessions++;
	return s;
}

void
tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	if (s->conf->nsessions == 0)
		fatalx("tls_session_free: session count underflow");
	s->conf->nsessions--;
	tls_x509_free(s->x509);
	freezero(s, sizeof(*s) + s->ibuf_len + s->obuf_len);
}

/*
 * The preferred hash among those in a client's bit mask (bit n set for
 * hash id n): SHA-256, SHA-384, SHA-512, SHA-224, then SHA-1.
 */
static int
tls_hash_pick(uint32_t mask)
{
	static const int	pref[] = {
		br_sha256_ID, br_sha384_ID, br_sha512_ID, br_sha224_ID,
		br_sha1_ID
	};
	size_t			i;

	for (i = 0; i < TLS_NITEMS(pref); i++)
		if (mask & (1U << pref[i]))
			return pref[i];
	return 0;
}

/*
 * Server policy: pick the pki from the SNI, then the key type (EC if
 * the client offers an ECDHE_ECDSA suite we share and the pki has an
 * EC key, else RSA), then the first suite in server order for that key,
 * and the hash for the ServerKeyExchange signature.  BearSSL already
 * dropped the suites that lack a common curve or hash.
 */
static int
tls_policy_choose(const br_ssl_server_policy_class **pctx,
    const br_ssl_server_context *sc, br_ssl_server_choices *choices)
{
	struct tls_session		*s = ((const struct tls_policy *)
					    (const void *)pctx)->sess;
	const br_suite_translated	*st;
	const struct tls_key		*key;
	struct tls_pki			*pki;
	uint32_t			 hashes;
	size_t				 n, i;
	unsigned			 keyx;
	int				 tls12, pass, hash;

	pki = tls_pki_select(s->conf, br_ssl_engine_get_server_name(&sc->eng),
	    s->default_pki);
	s->pki = pki;
	st = br_ssl_server_get_client_suites(sc, &n);
	hashes = br_ssl_server_get_client_hashes(sc);
	tls12 = br_ssl_engine_get_version(&sc->eng) >= BR_TLS12;
	for (pass = 0; pass < 2; pass++) {
		key = pass == 0 ? pki->ec : pki->rsa;
		if (key == NULL)
			continue;
		for (i = 0; i < n; i++) {
			keyx = st[i][1] >> 12;
			if (pass == 0 && keyx == BR_SSLKEYX_ECDHE_ECDSA) {
				hash = tls12 ? tls_hash_pick((hashes >> 8) &
				    0xFF) : br_sha1_ID;
				if (hash == 0)
					continue;
				choices->algo_id = 0xFF00 + hash;
			} else if (pass == 1 && keyx == BR_SSLKEYX_ECDHE_RSA) {
				/* TLS 1.0/1.1 sign MD5+SHA-1 (id 0). */
				hash = tls12 ? tls_hash_pick(hashes & 0xFF) : 0;
				if (tls12 && hash == 0)
					continue;
				choices->algo_id = 0xFF00 + hash;
			} else if (pass == 1 && keyx == BR_SSLKEYX_RSA) {
				choices->algo_id = 0;
			} else
				continue;
			choices->cipher_suite = st[i][0];
			choices->chain = key->chain;
			choices->chain_len = key->chain_len;
			s->key = key;
			return 1;
		}
	}
	return 0;
}

/* RSA key exchange: decrypt the premaster secret in place. */
static uint32_t
tls_policy_keyx(const br_ssl_server_policy_class **pctx,
    unsigned char *data, size_t *len)
{
	struct tls_session	*s = ((const struct tls_policy *)
				    (const void *)pctx)->sess;

	if (s->key == NULL || s->key->type != BR_KEYTYPE_RSA)
		return 0;
	return br_rsa_ssl_decrypt(br_rsa_private_get_default(),
	    &s->key->sk.rsa, data, *len);
}

/*
 * Sign the ServerKeyExchange hash (algo_id 0xFF00 + hash id, as chosen
 * above) with the chosen key; the signature replaces the hash in data.
 */
static size_t
tls_policy_sign(const br_ssl_server_policy_class **pctx, unsigned algo_id,
    unsigned char *data, size_t hv_len, size_t len)
{
	struct tls_session	*s = ((const struct tls_policy *)
				    (const void *)pctx)->sess;
	const struct tls_key	*key = s->key;
	const br_hash_class	*hf;
	const unsigned char	*oid;
	unsigned char		 hv[64], sig[160];
	size_t			 siglen = 0;
	int			 id;

	if (key == NULL || algo_id < 0xFF00 || hv_len > sizeof(hv))
		return 0;
	id = algo_id & 0xFF;
	memcpy(hv, data, hv_len);
	if (key->type == BR_KEYTYPE_RSA) {
		switch (id) {
		case 0:
			oid = NULL;	/* MD5+SHA-1, TLS 1.0/1.1 */
			break;
		case br_sha1_ID:
			oid = BR_HASH_OID_SHA1;
			break;
		case br_sha224_ID:
			oid = BR_HASH_OID_SHA224;
			break;
		case br_sha256_ID:
			oid = BR_HASH_OID_SHA256;
			break;
		case br_sha384_ID:
			oid = BR_HASH_OID_SHA384;
			break;
		case br_sha512_ID:
			oid = BR_HASH_OID_SHA512;
			break;
		default:
			return 0;
		}
		siglen = (key->sk.rsa.n_bitlen + 7) / 8;
		if (siglen > len || br_rsa_pkcs1_sign_get_default()(oid, hv,
		    hv_len, &key->sk.rsa, data) != 1)
			siglen = 0;
	} else {
		switch (id) {
		case br_sha1_ID:
			hf = &br_sha1_vtable;
			break;
		case br_sha224_ID:
			hf = &br_sha224_vtable;
			break;
		case br_sha256_ID:
			hf = &br_sha256_vtable;
			break;
		case br_sha384_ID:
			hf = &br_sha384_vtable;
			break;
		case br_sha512_ID:
			hf = &br_sha512_vtable;
			break;
		default:
			return 0;
		}
		siglen = br_ecdsa_sign_asn1_get_default()(br_ec_get_default(),
		    hf, hv, &key->sk.ec, sig);
		if (siglen == 0 || siglen > len)
			siglen = 0;
		else
			memcpy(data, sig, siglen);
	}
	explicit_bzero(hv, sizeof(hv));
	return siglen;
}

/* Note when the handshake has completed: application data may flow. */
static void
tls_session_update(struct tls_session *s)
{
	unsigned	st;

	if (s->open)
		return;
	st = br_ssl_engine_current_state(s->eng);
	if (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))
		s->open = 1;
}

/* Whether the engine has stopped for good (closed or failed). */
static int
tls_session_dead(struct tls_session *s)
{
	return (br_ssl_engine_current_state(s->eng) & BR_SSL_CLOSED) != 0;
}

ssize_t
tls_session_feed(struct tls_session *s, const uint8_t *buf, size_t len)
{
	unsigned char	*p;
	size_t		 avail, n, done = 0;

	if (tls_session_dead(s))
		return -1;
	while (done < len) {
		if ((p = br_ssl_engine_recvrec_buf(s->eng, &avail)) == NULL ||
		    avail == 0)
			break;
		n = TLS_MIN(avail, len - done);
		memcpy(p, buf + done, n);
		br_ssl_engine_recvrec_ack(s->eng, n);
		done += n;
	}
	tls_session_update(s);
	if (tls_session_dead(s))
		return -1;
	return (ssize_t)done;
}

const uint8_t *
tls_session_pending(struct tls_session *s, size_t *len)
{
	unsigned char	*p;

	if ((p = br_ssl_engine_sendrec_buf(s->eng, len)) == NULL)
		*len = 0;
	return p;
}

void
tls_session_sent(struct tls_session *s, size_t n)
{
	size_t	avail;

	if (n == 0)
		return;
	if (br_ssl_engine_sendrec_buf(s->eng, &avail) == NULL || n > avail)
		fatalx("tls_session_sent: %zu bytes acknowledged, %zu pending",
		    n, avail);
	br_ssl_engine_sendrec_ack(s->eng, n);
	tls_session_update(s);
}

const uint8_t *
tls_session_read(struct tls_session *s, size_t *len)
{
	unsigned char	*p;

	if ((p = br_ssl_engine_recvapp_buf(s->eng, len)) == NULL)
		*len = 0;
	return p;
}

void
tls_session_consumed(struct tls_session *s, size_t n)
{
	size_t	avail;

	if (n == 0)
		return;
	if (br_ssl_engine_recvapp_buf(s->eng, &avail) == NULL || n > avail)
		fatalx("tls_session_consumed: %zu bytes consumed, %zu "
		    "available", n, avail);
	br_ssl_engine_recvapp_ack(s->eng, n);
	tls_session_update(s);
}

ssize_t
tls_session_write(struct tls_session *s, const uint8_t *buf, size_t len)
{
	unsigned char	*p;
	size_t		 avail, n, done = 0;

	if (tls_session_dead(s) || s->closing)
		return -1;
	while (done < len) {
		if ((p = br_ssl_engine_sendapp_buf(s->eng, &avail)) == NULL ||
		    avail == 0)
			break;
		n = TLS_MIN(avail, len - done);
		memcpy(p, buf + done, n);
		br_ssl_engine_sendapp_ack(s->eng, n);
		done += n;
	}
	tls_session_update(s);
	return (ssize_t)done;
}

void
tls_session_flush(struct tls_session *s)
{
	br_ssl_engine_flush(s->eng, 0);
}

void
tls_session_close(struct tls_session *s)
{
	s->closing = 1;
	br_ssl_engine_close(s->eng);
}

enum tls_state
tls_session_state(struct tls_session *s)
{
	if (tls_session_dead(s))
		return br_ssl_engine_last_error(s->eng) == BR_ERR_OK ?
		    TLS_STATE_CLOSED : TLS_STATE_FAILED;
	tls_session_update(s);
	return s->open ? TLS_STATE_OPEN : TLS_STATE_HANDSHAKE;
}

const char *
tls_session_error(struct tls_session *s)
{
	const char	*phase, *what;
	char		 name[48];
	int		 err, alert;

	err = br_ssl_engine_last_error(s->eng);
	if (err == BR_ERR_OK)
		return "no error";
	phase = s->open ? "TLS failure" : "handshake failure";
	(void)tls_engine_errname(err, name, sizeof(name));
	if (err >= BR_ERR_RECV_FATAL_ALERT &&
	    err < BR_ERR_RECV_FATAL_ALERT + 256) {
		alert = err - BR_ERR_RECV_FATAL_ALERT;
		(void)snprintf(s->errbuf, sizeof(s->errbuf),
		    "%s: received alert %s (%s)", phase,
		    tls_alert_name(alert), name);
	} else if (err >= BR_ERR_SEND_FATAL_ALERT &&
	    err < BR_ERR_SEND_FATAL_ALERT + 256) {
		alert = err - BR_ERR_SEND_FATAL_ALERT;
		/* Say what a server's alert usually means. */
		if (!s->client && !s->open && alert == 40)
			what = "no shared cipher, ";
		else if (!s->client && !s->open && alert == 70)
			what = "unsupported protocol version, ";
		else
			what = "";
		(void)snprintf(s->errbuf, sizeof(s->errbuf),
		    "%s: %ssent alert %s (%s)", phase, what,
		    tls_alert_name(alert), name);
	} else
		(void)snprintf(s->errbuf, sizeof(s->errbuf), "%s: %s (%s)",
		    phase, tls_engine_errtext(err), name);
	return s->errbuf;
}

/* Copy src into dst, or fail rather than truncate. */
static int
tls_copyout(char *dst, size_t dstsz, const char *src)
{
	if (dst == NULL)
		return 0;
	if (strlcpy(dst, src, dstsz) >= dstsz)
		return -1;
	return 0;
}

int
tls_session_info(struct tls_session *s, char *version, size_t versionsz,
    char *suite, size_t suitesz, char *sni, size_t snisz, int *resumed)
{
	br_ssl_session_parameters	 params;
	const char			*v, *name = "unknown";
	size_t				 i;

	tls_session_update(s);
	if (!s->open)
		return -1;
	switch (br_ssl_engine_get_version(s->eng)) {
	case BR_TLS10:
		v = "TLSv1";
		break;
	case BR_TLS11:
		v = "TLSv1.1";
		break;
	case BR_TLS12:
		v = "TLSv1.2";
		break;
	default:
		v = "unknown";
		break;
	}
	br_ssl_engine_get_session_parameters(s->eng, &params);
	for (i = 0; i < TLS_NITEMS(tls_suite_names); i++)
		if (tls_suite_names[i].id == params.cipher_suite)
			name = tls_suite_names[i].name;
	explicit_bzero(&params, sizeof(params));
	if (tls_copyout(version, versionsz, v) == -1 ||
	    tls_copyout(suite, suitesz, name) == -1 ||
	    tls_copyout(sni, snisz, s->client ? s->server_name :
	    br_ssl_engine_get_server_name(s->eng)) == -1)
		return -1;
	if (resumed != NULL)
		*resumed = s->client ? !tls_x509_chain_seen(s->x509) :
		    s->pki == NULL;
	return 0;
}

const char *
tls_session_pki(struct tls_session *s)
{
	struct tls_pki	*pki;

	if (s->client)
		return NULL;
	tls_session_update(s);
	if (!s->open)
		return "";
	if (s->pki != NULL)
		return s->pki->name;
	/* Resumed: the pki this SNI selects now. */
	pki = tls_pki_select(s->conf, br_ssl_engine_get_server_name(s->eng),
	    s->default_pki);
	return pki->name;
}
