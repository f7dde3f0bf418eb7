/*
 * fuzz_tls_pem.c: libFuzzer target for tlsd/tls_pki.c.  The input is a
 * certificate chain and a private key, both PEM, separated by the first
 * NUL byte (without one, the whole input is both).  It goes through
 * tls_config_add_pki(), and the whole input through tls_config_add_cas()
 * as a CA bundle.  Checks that a refusal always says why, that an
 * accepted pki serves a server session, and that nothing leaks.
 * SECURITY: test code.
 */
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../tlsd/tls_engine.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_config	*conf;
	struct tls_session	*s;
	const char		*text = (const char *)data;
	const char		*cert, *key;
	const uint8_t		*nul;
	size_t			 certlen, keylen, ncas;
	char			 err[256];
	int			 rv;

	if ((conf = tls_config_new(TLS_CIPHERS_DEFAULT, 0)) == NULL)
		abort();
	if ((nul = memchr(data, '\0', size)) != NULL) {
		cert = text;
		certlen = (size_t)(nul - data);
		key = text + certlen + 1;
		keylen = size - certlen - 1;
	} else {
		cert = key = text;
		certlen = keylen = size;
	}

	memset(err, 'x', sizeof(err));
	rv = tls_config_add_pki(conf, "fuzz.test", cert, certlen, key, keylen,
	    err, sizeof(err));
	if (rv == -1) {
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
			abort();
	} else if (rv == 0) {
		if ((s = tls_session_server(conf, "fuzz.test")) == NULL)
			abort();
		tls_session_free(s);
	} else
		abort();

	memset(err, 'x', sizeof(err));
	rv = tls_config_add_cas(conf, text, size, err, sizeof(err));
	ncas = tls_config_ncas(conf);
	if (rv == -1) {
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0' ||
		    ncas != 0)
			abort();
	} else if (rv != 0 || ncas == 0)
		abort();
	tls_config_free(conf);
	return 0;
}
