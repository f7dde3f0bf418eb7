/*
 * parent_tls.c: the parent reads the certificates and private keys named
 * by pki statements and hands them to each tlsd worker; nothing else ever
 * holds key bytes, and the parent wipes its copies once they are queued.
 * SECURITY: runs as root.  A key file that group or others can read is
 * refused: the daemon does not start with a key that has leaked.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "parent.h"
#include "proto.h"

#define TLS_CACHE_BYTES		(1024 * 1024)	/* session cache per worker */
#define TLS_CA_CHUNK		(128 * 1024)

/* Read a pki file; keys must be private to their owner. */
static char *
parent_tls_read(const char *pki, const char *what, const char *path,
    int secret, size_t *len)
{
	struct stat	 st;
	char		*data, err[CONF_ERRLEN];

	if (stat(path, &st) == -1) {
		log_warn("pki %s: %s file %s", pki, what, path);
		return NULL;
	}
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		log_warnx("pki %s: key file %s is readable by others "
		    "(chmod 600 it)", pki, path);
		return NULL;
	}
	if (config_load_file(NULL, path, &data, len, err, sizeof(err)) == -1) {
		log_warnx("pki %s: %s", pki, err);
		return NULL;
	}
	return data;
}

int
parent_tls_ship(struct postern_conf *conf, struct imsgbuf *ib)
{
	struct imsg_payload	 p;
	struct msg_tls_setup	 setup;
	struct msg_tls_pki	 k;
	struct pki_conf		*pki;
	char			*cert, *key, *ca, err[CONF_ERRLEN];
	size_t			 certlen, keylen, calen, off, len;
	int			 rv;

	memset(&setup, 0, sizeof(setup));
	setup.ciphers = conf->tls_ciphers;
	setup.cache_bytes = TLS_CACHE_BYTES;
	imsg_payload_init(&p);
	proto_enc_tls_setup(&p, &setup);
	rv = imsg_compose_payload(ib, IMSG_TLS_SETUP, 0, -1, &p);
	imsg_payload_free(&p);
	if (rv == -1)
		return -1;

	TAILQ_FOREACH(pki, &conf->pkis, entry) {
		if ((cert = parent_tls_read(pki->name, "certificate",
		    pki->cert, 0, &certlen)) == NULL)
			return -1;
		if ((key = parent_tls_read(pki->name, "key", pki->key, 1,
		    &keylen)) == NULL) {
			free(cert);
			return -1;
		}
		memset(&k, 0, sizeof(k));
		strlcpy(k.name, pki->name, sizeof(k.name));
		k.cert = (const uint8_t *)cert;
		k.certlen = certlen;
		k.key = (const uint8_t *)key;
		k.keylen = keylen;
		imsg_payload_init(&p);
		proto_enc_tls_pki(&p, &k);
		rv = imsg_compose_payload(ib, IMSG_TLS_PKI, 0, -1, &p);
		explicit_bzero(p.buf, p.cap);
		imsg_payload_free(&p);
		explicit_bzero(key, keylen);
		free(key);
		free(cert);
		if (rv == -1) {
			log_warnx("pki %s: certificate and key too large",
			    pki->name);
			return -1;
		}
	}

	/* Trust anchors for outbound verification; optional. */
	if (config_load_file(NULL, conf->tls_ca, &ca, &calen, err,
	    sizeof(err)) == -1)
		log_debug("tls ca: %s: outbound TLS will not verify", err);
	else {
		for (off = 0; off < calen; off += len) {
			len = calen - off > TLS_CA_CHUNK ? TLS_CA_CHUNK :
			    calen - off;
			if (proto_compose_bytes(ib, IMSG_TLS_CA, 0, ca + off,
			    len) == -1) {
				free(ca);
				return -1;
			}
		}
		free(ca);
	}
	return imsg_compose(ib, IMSG_TLS_SETUP_END, 0, -1, NULL, 0);
}
