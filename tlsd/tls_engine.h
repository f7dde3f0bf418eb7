/*
 * tls_engine.h: the BearSSL layer of tlsd.  Certificates and keys are
 * loaded into a tls_config; each TLS connection is a tls_session driven
 * entirely by byte buffers: ciphertext in (feed) and out (pending/sent),
 * cleartext in (write) and out (read/consumed).  No socket, no file,
 * no clock other than BearSSL's certificate time check.
 * SECURITY: runs inside tlsd (unprivileged, chrooted, seccomp); holds
 * the private keys, which are wiped when the config is freed.  Bytes
 * fed to a session come from an untrusted peer: any error costs that
 * session only (TLS_STATE_FAILED), never the process.
 */
#ifndef POSTERN_TLS_ENGINE_H
#define POSTERN_TLS_ENGINE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

/* Longest host name (pki name, SNI, server name) plus its NUL. */
#define TLS_NAMELEN		256
/* Largest PEM text accepted by tls_config_add_pki (cert or key). */
#define TLS_PEM_MAX		(1024 * 1024)
/* Largest CA bundle accepted by tls_config_add_cas. */
#define TLS_CAS_MAX		(8 * 1024 * 1024)
/* Most certificates in one chain (leaf included). */
#define TLS_CHAIN_MAX		10
/* Size of a saved client session (struct tls_resume). */
#define TLS_RESUME_SIZE		512
/* Room for tls_session_peer_fingerprint(): 64 hex digits and NUL. */
#define TLS_FINGERPRINT_LEN	65

struct tls_config;
struct tls_session;

enum tls_state {
	TLS_STATE_HANDSHAKE,	/* handshake in progress */
	TLS_STATE_OPEN,		/* handshake done, application data flows */
	TLS_STATE_CLOSED,	/* close_notify exchanged, no error */
	TLS_STATE_FAILED	/* error: see tls_session_error() */
};

enum tls_ciphers {
	/* TLS 1.2, ECDHE with AES-GCM and ChaCha20-Poly1305 only. */
	TLS_CIPHERS_DEFAULT,
	/* Adds TLS 1.0/1.1, ECDHE with AES-CBC, and RSA key exchange. */
	TLS_CIPHERS_COMPAT
};

/*
 * A saved client session, for resumption of a later connection to the
 * same server name.  Opaque; it holds the master secret, so wipe it with
 * explicit_bzero() when it is dropped.
 */
struct tls_resume {
	uint8_t	opaque[TLS_RESUME_SIZE];
};

/*
 * tls_config_new: an empty configuration.  session_cache_bytes is the
 * size of the server session cache shared by all server sessions of
 * this config (about 100 bytes per session; 0 disables resumption).
 * Returns NULL if memory is exhausted.
 *
 * A config must be complete (all tls_config_add_* calls done) before
 * its first session is created, and must outlive all its sessions:
 * tls_config_add_* refuse while sessions exist ("configuration in use").
 */
struct tls_config *tls_config_new(enum tls_ciphers, size_t session_cache_bytes);

/*
 * tls_config_free: free everything, wiping private keys and the session
 * cache with explicit_bzero() first.  NULL is ignored.  Freeing a config
 * that still has sessions is a programming error (fatalx).
 */
void	tls_config_free(struct tls_config *);

/*
 * tls_config_add_pki: add a certificate chain (PEM, leaf first, at most
 * TLS_CHAIN_MAX certificates) and its private key (PEM "PRIVATE KEY"
 * (PKCS#8), "RSA PRIVATE KEY" or "EC PRIVATE KEY"; an "EC PARAMETERS"
 * block is ignored) under name, a host name or a wildcard "*.example.org".
 * Names are case-insensitive.  RSA 2048 to 4096 bits and EC P-256/P-384
 * only.  The key must match the leaf's public key.  A name holds at most
 * one RSA and one EC pair.  The caller wipes its own PEM copies.
 * Returns 0, or -1 with a reason in err (always NUL-terminated if
 * errsz > 0), among them:
 *   "invalid pki name", "configuration in use", "certificate too large",
 *   "key too large", "malformed PEM", "truncated PEM",
 *   "PEM object too large" (over 64 KiB of DER),
 *   "no certificate found", "too many certificates in chain",
 *   "unexpected PEM object in certificate: NAME",
 *   "no private key found", "more than one private key",
 *   "encrypted private keys are not supported",
 *   "unexpected PEM object in key: NAME",
 *   "bad certificate (BR_ERR_X509_...)", "bad private key (...)",
 *   "unsupported key", "key does not match certificate",
 *   "pki NAME already has an RSA key", "pki NAME already has an EC key",
 *   "out of memory".
 */
int	tls_config_add_pki(struct tls_config *, const char *name,
	    const char *cert_pem, size_t cert_len, const char *key_pem,
	    size_t key_len, char *err, size_t errsz);

/*
 * tls_config_add_cas: add trust anchors for client sessions from a PEM
 * bundle of certificates (e.g. the content of
 * /etc/ssl/certs/ca-certificates.crt).  Certificates that BearSSL cannot
 * decode are skipped (tls_config_ncas() counts what was loaded).
 * Returns 0, or -1 with a reason in err ("malformed PEM", "no usable
 * certificate in bundle", ...).  May be called several times.
 */
int	tls_config_add_cas(struct tls_config *, const char *pem, size_t len,
	    char *err, size_t errsz);
/* Number of trust anchors loaded so far. */
size_t	tls_config_ncas(const struct tls_config *);

/*
 * tls_session_server: a server session.  default_pki names the pki used
 * when the client sends no SNI, or an SNI that matches no pki (first the
 * exact name, then "*.rest" where the wildcard stands for exactly one
 * label).  The ECDSA certificate is used when the client offers an
 * ECDHE_ECDSA suite and the chosen pki has an EC key, else the RSA one.
 * Returns NULL if default_pki is not a loaded pki or memory is exhausted.
 */
struct tls_session *tls_session_server(struct tls_config *,
	    const char *default_pki);

/*
 * tls_session_client: a client session for outbound delivery.  SNI is
 * server_name if it is not empty (and the name the certificate is
 * checked against).  The server chain is verified against the CAs and
 * the name, but a verification failure does NOT abort the handshake:
 * tls_session_verified() reports the result so the caller applies its
 * policy.  Returns NULL if server_name is TLS_NAMELEN or longer, or
 * memory is exhausted.
 */
struct tls_session *tls_session_client(struct tls_config *,
	    const char *server_name);

/*
 * tls_session_client_resume: like tls_session_client, but offer to
 * resume the session saved in *saved (see tls_session_save).  If saved
 * was made for another server name, or is not a valid saved session, a
 * full handshake is done.  A resumed session reports the verification
 * result and peer fingerprint of the session it resumes.
 */
struct tls_session *tls_session_client_resume(struct tls_config *,
	    const char *server_name, const struct tls_resume *saved);

/*
 * tls_session_save: after the handshake of a client session, save what
 * is needed to resume it.  Returns 0, or -1 if the session is not a
 * client session, is not open, or the server gave no session ID.
 */
int	tls_session_save(struct tls_session *, struct tls_resume *);

/* tls_session_free: free a session, wiping its buffers.  NULL ignored. */
void	tls_session_free(struct tls_session *);

/*
 * The I/O contract.  After any call, the caller drains both outputs:
 * tls_session_pending()/tls_session_sent() for ciphertext to the peer
 * and tls_session_read()/tls_session_consumed() for cleartext.  The
 * engine takes new ciphertext only once its cleartext output has been
 * consumed, and new cleartext only once its ciphertext output has been
 * sent, so a caller that does not drain sees feed/write return 0.
 */

/*
 * tls_session_feed: ciphertext from the peer.  Copies what the engine
 * can take now; returns the number of bytes taken (0..len), or -1 if
 * the session is failed or closed (also when this very call made it
 * fail).  A fatal alert for the peer may still be pending afterwards.
 */
ssize_t	tls_session_feed(struct tls_session *, const uint8_t *buf,
	    size_t len);

/*
 * tls_session_pending: ciphertext to send to the peer; *len gets its
 * length (0 and NULL if none).  The pointer is valid until the next call
 * on the session.  tls_session_sent(n) tells that the first n bytes were
 * taken (n <= *len; more is a programming error, fatalx).
 */
const uint8_t *tls_session_pending(struct tls_session *, size_t *len);
void	tls_session_sent(struct tls_session *, size_t n);

/*
 * tls_session_read: cleartext received from the peer, same rules as
 * tls_session_pending; tls_session_consumed(n) releases n bytes.
 */
const uint8_t *tls_session_read(struct tls_session *, size_t *len);
void	tls_session_consumed(struct tls_session *, size_t n);

/*
 * tls_session_write: cleartext to send.  Copies what fits now and
 * returns the number of bytes taken (0..len; 0 during the handshake or
 * while ciphertext waits to be sent), or -1 if the session is failed,
 * closed or closing.  A full record is sealed automatically; call
 * tls_session_flush() after a complete reply to seal a partial one.
 */
ssize_t	tls_session_write(struct tls_session *, const uint8_t *buf,
	    size_t len);
void	tls_session_flush(struct tls_session *);

/* tls_session_close: queue a close_notify (drain pending afterwards). */
void	tls_session_close(struct tls_session *);

enum tls_state tls_session_state(struct tls_session *);

/*
 * tls_session_error: why the session is TLS_STATE_FAILED, e.g.
 * "handshake failure: no shared cipher, sent alert handshake_failure
 * (BR_ERR_SEND_FATAL_ALERT+40)" or "TLS failure: bad record MAC
 * (BR_ERR_BAD_MAC)"; "no error" otherwise.  Valid until the next call
 * on the session.
 */
const char *tls_session_error(struct tls_session *);

/*
 * tls_session_info: after the handshake, the protocol version
 * ("TLSv1.2", "TLSv1.1", "TLSv1"), the suite in OpenSSL naming
 * ("ECDHE-ECDSA-AES128-GCM-SHA256"), the SNI ("" if none; for a server
 * session this is the client's untrusted text, escape it before
 * logging), and whether the session was resumed.  Any output may be
 * NULL (size 0).  Returns 0, or -1 if the handshake is not done or a
 * buffer is too small (no truncation).
 */
int	tls_session_info(struct tls_session *, char *version, size_t,
	    char *suite, size_t, char *sni, size_t, int *resumed);

/*
 * tls_session_pki: for a server session after the handshake, the name
 * of the pki that served it ("" before).  NULL for a client session.
 */
const char *tls_session_pki(struct tls_session *);

/*
 * tls_session_verified: for a client session after the handshake: 1 if
 * the chain validated against the CAs and matched server_name, else 0;
 * why gets "verified" or the reason ("certificate not trusted
 * (BR_ERR_X509_NOT_TRUSTED)", "server name mismatch
 * (BR_ERR_X509_BAD_SERVER_NAME)", "no server name to verify",
 * "handshake not done", "not a client session").
 */
int	tls_session_verified(struct tls_session *, char *why, size_t whysz);

/*
 * tls_session_peer_fingerprint: for a client session after the
 * handshake, the SHA-256 of the server's leaf certificate (DER) as 64
 * lowercase hex digits.  buf needs TLS_FINGERPRINT_LEN bytes.  Returns
 * 0, or -1 (not a client session, handshake not done, buffer too small).
 */
int	tls_session_peer_fingerprint(struct tls_session *, char *buf,
	    size_t bufsz);

/* tls_session_memory: approximate heap bytes of one idle server session. */
size_t	tls_session_memory(void);

#endif
