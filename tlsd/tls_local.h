/*
 * tls_local.h: structures shared by the files of the tlsd BearSSL layer
 * (tls_pki.c, tls_engine.c, tls_client.c).  Nothing outside tlsd/tls_*
 * includes this; the contract is tls_engine.h.
 * SECURITY: struct tls_key holds private key material; it is only freed
 * through tls_pki_free(), which wipes it.
 */
#ifndef POSTERN_TLS_LOCAL_H
#define POSTERN_TLS_LOCAL_H

#include <sys/queue.h>

#include <bearssl.h>

#include "tls_engine.h"

/* Engine buffers: full-size input (a peer may send 16 KiB records). */
#define TLS_IBUF_SIZE		BR_SSL_BUFSIZE_INPUT
/* Server output: 4 KiB records keep idle sessions small. */
#define TLS_OBUF_SERVER		(4096 + 85)
/*
 * Client output: full size, because a smaller one makes BearSSL ask the
 * server for the max_fragment_length extension, which some servers
 * mishandle.
 */
#define TLS_OBUF_CLIENT		BR_SSL_BUFSIZE_OUTPUT

/* One certificate chain and its private key. */
struct tls_key {
	int			 type;		/* BR_KEYTYPE_RSA or _EC */
	unsigned		 bits;		/* modulus or curve size */
	br_x509_certificate	*chain;
	size_t			 chain_len;
	union {
		br_rsa_private_key	rsa;
		br_ec_private_key	ec;
	} sk;
	unsigned char		*keydata;	/* sk points into this */
	size_t			 keylen;
};

/* A named pki: at most one RSA and one EC pair. */
struct tls_pki {
	TAILQ_ENTRY(tls_pki)	 entry;
	char			 name[TLS_NAMELEN];	/* lowercase */
	struct tls_key		*rsa;
	struct tls_key		*ec;
};

struct tls_config {
	enum tls_ciphers	 ciphers;
	TAILQ_HEAD(, tls_pki)	 pkis;
	br_x509_trust_anchor	*tas;
	size_t			 ntas;
	size_t			 tas_cap;
	unsigned char		*cache_store;
	size_t			 cache_len;
	br_ssl_session_cache_lru cache;
	/* BearSSL's default EC code limited to x25519, P-256, P-384. */
	br_ec_impl		 ec;
	size_t			 nsessions;
};

/*
 * The server policy handler: BearSSL calls choose() with a pointer to
 * vtable; sess leads back to the session.
 */
struct tls_policy {
	const br_ssl_server_policy_class	*vtable;
	struct tls_session			*sess;
};

struct tls_x509;		/* tls_client.c */

struct tls_session {
	union {
		br_ssl_server_context	 server;
		br_ssl_client_context	 client;
	} u;
	br_ssl_engine_context	*eng;
	struct tls_config	*conf;
	int			 client;
	int			 open;		/* handshake completed */
	int			 closing;	/* close_notify queued */
	unsigned char		*ibuf;
	size_t			 ibuf_len;
	unsigned char		*obuf;
	size_t			 obuf_len;
	char			 errbuf[192];

	/* Server sessions. */
	struct tls_policy	 policy;
	struct tls_pki		*default_pki;
	struct tls_pki		*pki;		/* chosen by a full handshake */
	const struct tls_key	*key;

	/* Client sessions. */
	struct tls_x509		*x509;
	char			 server_name[TLS_NAMELEN];
};

/* tls_pki.c */
struct tls_pki	*tls_pki_find(const struct tls_config *, const char *name);
struct tls_pki	*tls_pki_select(const struct tls_config *, const char *sni,
		    struct tls_pki *fallback);

/* tls_engine.c: helpers the client side shares. */
struct tls_session *tls_session_alloc(struct tls_config *, size_t obuf_len);
void		 tls_engine_setup(br_ssl_engine_context *,
		    const struct tls_config *);
void		 tls_engine_seed(br_ssl_engine_context *);
const char	*tls_engine_errname(int err, char *buf, size_t bufsz);
const char	*tls_engine_errtext(int err);

/* Formats err/errsz like snprintf; always returns -1. */
int		 tls_seterr(char *err, size_t errsz, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));

/* tls_client.c */
void		 tls_x509_free(struct tls_x509 *);
int		 tls_x509_chain_seen(const struct tls_x509 *);

#endif
