/*
 * fuzz_tls_server.c: libFuzzer target for the server side of
 * tlsd/tls_engine.c.  The first byte picks the cipher policy (DEFAULT or
 * COMPAT) and a chunking pattern; the rest is fed as ciphertext from a
 * client (ClientHello, records, anything), with the session's output
 * drained and its cleartext read after each piece, as tlsd does.
 * Checks the I/O contract (no call takes or returns more than it may)
 * and that a failed session explains itself.
 * SECURITY: test code; the embedded keys are throw-away test keys.
 */
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../tlsd/tls_engine.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Self-signed test.postern (EC P-256 and RSA 2048), other.test (P-384). */
static const char EC256_CRT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBnzCCAUSgAwIBAgIUFu/Ck5Ru6LxYMX6oHzDPFTbdIGswCgYIKoZIzj0EAwIw\n"
    "FzEVMBMGA1UEAwwMdGVzdC5wb3N0ZXJuMCAXDTI2MTEyOTEyMzUzMVoYDzIxMjYx\n"
    "MTA1MTIzNTMxWjAXMRUwEwYDVQQDDAx0ZXN0LnBvc3Rlcm4wWTATBgcqhkjOPQIB\n"
    "BggqhkjOPQMBBwNCAARYbjDH4pI5YLrJbeQhUo11yX7zmuaJB+j44JYpxZUiPGey\n"
    "0d4yrE/beeGJMyoAeOtd1qDVCidnq9v79W8NKRzEo2wwajAdBgNVHQ4EFgQU+RXi\n"
    "614gsxcQcv6gaVay6xDdQNswHwYDVR0jBBgwFoAU+RXi614gsxcQcv6gaVay6xDd\n"
    "QNswDwYDVR0TAQH/BAUwAwEB/zAXBgNVHREEEDAOggx0ZXN0LnBvc3Rlcm4wCgYI\n"
    "KoZIzj0EAwIDSQAwRgIhAO61HhWIZIO5LEN8e2oSM6iPP4xCtWHw84GQj3mcgqZs\n"
    "AiEA0BoEjn3sDbWkrTTOP5ommO5WOMgip4VZjf2KAFK2fe4=\n"
    "-----END CERTIFICATE-----\n";

static const char EC256_KEY[] =
    "-----BEGIN EC PARAMETERS-----\n"
    "BggqhkjOPQMBBw==\n"
    "-----END EC PARAMETERS-----\n"
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEINhLm/v+MtBj/1zq6hWIm+4OUosO+6QXvnfuaAxDO+P6oAoGCCqGSM49\n"
    "AwEHoUQDQgAEWG4wx+KSOWC6yW3kIVKNdcl+85rmiQfo+OCWKcWVIjxnstHeMqxP\n"
    "23nhiTMqAHjrXdag1QonZ6vb+/VvDSkcxA==\n"
    "-----END EC PRIVATE KEY-----\n";

static const char RSA_CRT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDKjCCAhKgAwIBAgIUFnL/vWXRFyDx1ziX8/e+qJ4JmRwwDQYJKoZIhvcNAQEL\n"
    "BQAwFzEVMBMGA1UEAwwMdGVzdC5wb3N0ZXJuMCAXDTI2MTEyOTEyMzUzMVoYDzIx\n"
    "MjYxMTA1MTIzNTMxWjAXMRUwEwYDVQQDDAx0ZXN0LnBvc3Rlcm4wggEiMA0GCSqG\n"
    "SIb3DQEBAQUAA4IBDwAwggEKAoIBAQC2SqasYcKh12uAaABQzp8khV8nqkdZaltq\n"
    "dwo5YQcG3DaRq+HRifG3tSk8iOHzrxgneLF3zBJipzepEP2/r63b9EuwHe8tRPe2\n"
    "bSrvoHzyTYhzHazHXjZcjS/EBiryCDmelumTbe4qHr0KrapQ+aBszelQcei1pmk4\n"
    "gBNIDSD58h40arHYsBh5MGSTpUywpVwhEOZT0Vt7iFEr2HacXQzgJpMB1EhBIdJb\n"
    "6y1ujCzB3O0jUAXlovmvAXS21H8PMEDWtKkQGBQ6B2V5o57V4FuEz/T+1H8qSHU6\n"
    "pCS7u6HrfIKBd38jWb1nhUwwuQh6dRm62psRD0L1mZmFNL3cET/xAgMBAAGjbDBq\n"
    "MB0GA1UdDgQWBBTswBfGFxZ49VNAuZg6aEjfmJK1KzAfBgNVHSMEGDAWgBTswBfG\n"
    "FxZ49VNAuZg6aEjfmJK1KzAPBgNVHRMBAf8EBTADAQH/MBcGA1UdEQQQMA6CDHRl\n"
    "c3QucG9zdGVybjANBgkqhkiG9w0BAQsFAAOCAQEAtOcVgXES8U3+npmUqbDuCcY3\n"
    "jJkMt6L/9xPjhZkC8uQ+IyXcS0gaXyeM5GdZapTYlVfH+0IVfuBL/nuPRXZfdRgR\n"
    "wQ9OSInqdXvdymzTjCAlErC8cKkFZsKo7ILixx84606C7HwiRs1ZawhOxCMaGE85\n"
    "+pWtt9WwJcSoM93zQkHtpT+Iv1DhWUUkV5Xc9UqZBokLD6gwQkqvMnxkd5JGLP7/\n"
    "7Abcu0yym/+z30W/xuIhlVdldNVFKs3QhZ5MThXYt0JO0hYuPDfKgFDhYRpq/q5I\n"
    "xqANlr3AcovOljtWJLOhzMeLZPYvKxMsuPZtBOe9xeXejCyIwVzhKK/3VJ1djQ==\n"
    "-----END CERTIFICATE-----\n";

static const char RSA_KEY[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAtkqmrGHCoddrgGgAUM6fJIVfJ6pHWWpbancKOWEHBtw2kavh\n"
    "0Ynxt7UpPIjh868YJ3ixd8wSYqc3qRD9v6+t2/RLsB3vLUT3tm0q76B88k2Icx2s\n"
    "x142XI0vxAYq8gg5npbpk23uKh69Cq2qUPmgbM3pUHHotaZpOIATSA0g+fIeNGqx\n"
    "2LAYeTBkk6VMsKVcIRDmU9Fbe4hRK9h2nF0M4CaTAdRIQSHSW+stbowswdztI1AF\n"
    "5aL5rwF0ttR/DzBA1rSpEBgUOgdleaOe1eBbhM/0/tR/Kkh1OqQku7uh63yCgXd/\n"
    "I1m9Z4VMMLkIenUZutqbEQ9C9ZmZhTS93BE/8QIDAQABAoIBAE/gv09LGTvMxwUB\n"
    "zZ2bJL4emTcq1M/4HG23EupYu3kElv7XGAE3Fo2+2v51JrmesJFfQDiz2hyTlH7H\n"
    "fMF5rE/1KRNX0p3+GiO8i3NsWkPcuJ1k0/iarmx4y4T0hO4Ar6rwCxL4uUOIq6KZ\n"
    "vcd00xjKU+HVwDiU3oeNC6XnZttOwOlSq1+0Xt1/mIZ1c2Cmdp6eL71OXiY2L+Rj\n"
    "dJ97qu6Re/KWo3FtHtgI9YpVT9bsYBBqvGb1yx8rPcmMIxCEDTaJQDJnXEiMspok\n"
    "D/dXEBo/kC49nrk4BcPDt0bCdS0/bS+EQSklf45atbIaZCQSIhtjmCmF+S4+vqKI\n"
    "afP18AcCgYEA4luFyaHePLLMVpuuGmMi93d0LC3ognZakemGVZOx73+YaKxYSh/x\n"
    "tTTiluzeOxkACZ0xToJ5CPcUFIgB76qLat7SOeyCQjWtgiR7etCgq/5S7NsUuVX4\n"
    "krN+ZUNc6WBIJRq0iBDyel9AUuYiMxM5gBjpITLi1j2bihxmT0e52a8CgYEAzinZ\n"
    "jGD8vZ+Cy7YvsExg7jYeYBcVe4+JV4aTUfPK7lxCY14l/ZFEuLwLXBDAusafKleK\n"
    "GL+74vR2PUDshbuly+l7y7tUnTjcmVAq7zZahwmnXfXnbKjn0EXoS8UktfhaEs5W\n"
    "vOtlmhnOYn8ibmtxQ2zp/MsAeYkksSHmjfR0CF8CgYEAxlNkREcD3fDWomeiwtHr\n"
    "mCFccz0CBBTIxCF0ptRSScJk+glPDhsw/xDIG26MRAFijAnjYqNkgtthB6Am+iNW\n"
    "Jhv22/OCKZq4XFe0rOXQcQHTDF3jqYNO2NJVw0mjRYMrkv70AGfA3EFKrZefjVqh\n"
    "vb+Vu5XHM+kkt3ysk3gHuVcCgYB3qvEdO9rY0rMgPfM2eU82VnGRQzT0EOAezv3K\n"
    "byGW9DSQ60BQDDeAp55MZWkJwWr4L/H35atQ1KehbIMeKUrWrwNtwaIe1Levwkn5\n"
    "qmonwiHFN4yKlQxh54IsIRXrDmpyShUs+dJy/ZG/uJ4qy/Dlu12in875vPJwYwYp\n"
    "1gBYLwKBgAjjgD4DABo1NYGlDBpv6a6pBki3YlpVUD0xqUpcTP34OycSzIT897Pp\n"
    "h8sJaCcrU6Opk20sXSviy4k4MLgw4phRNNMw/9WFUBE7jA5YE7iGbPq/zPbcClBe\n"
    "F9pLtJOuawMjx/nWYRsEoyjN7+5xo29i8DSf8z3WB01OKz89SESL\n"
    "-----END RSA PRIVATE KEY-----\n";

static const char EC384_CRT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB1TCCAVugAwIBAgIUfFIKQ2AQNb02VEAc8HQJEnpvdn4wCgYIKoZIzj0EAwIw\n"
    "FTETMBEGA1UEAwwKb3RoZXIudGVzdDAgFw0yNjExMjkxMjM1MzFaGA8yMTI2MTEw\n"
    "NTEyMzUzMVowFTETMBEGA1UEAwwKb3RoZXIudGVzdDB2MBAGByqGSM49AgEGBSuB\n"
    "BAAiA2IABC3gzHHh5Vybir+GHCYJGBEIVQgr23gOZmT/sFMv6jZq856HpV90X17Y\n"
    "jhjW8MZJq1iFSzWZq046fnp8XxQcDBa2zWV9FDD3daVurobBxxKRToAz4ghN/S/U\n"
    "llWEemm0zKNqMGgwHQYDVR0OBBYEFMEq7haM3tu7Mu8Lcm0WO2icYK0zMB8GA1Ud\n"
    "IwQYMBaAFMEq7haM3tu7Mu8Lcm0WO2icYK0zMA8GA1UdEwEB/wQFMAMBAf8wFQYD\n"
    "VR0RBA4wDIIKb3RoZXIudGVzdDAKBggqhkjOPQQDAgNoADBlAjEAj8cYq8JcQU0J\n"
    "AZott/6AKuYno8wACrrpL4cGuFk5prZB9OyEBRbvy3JdyRNw2LubAjAWNh9TbUZB\n"
    "zUxccOU0b8qqMMhTBOT/+CBdgsR7UAfCF54HWREFdhnfTeu/wdUD5uo=\n"
    "-----END CERTIFICATE-----\n";

static const char EC384_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDXEWBq8jqCI1neSWkg\n"
    "eh/EOHuLYYApmeLjOdg0WtXvDvX90J6/+2Blvdkif6aLPJChZANiAAQt4Mxx4eVc\n"
    "m4q/hhwmCRgRCFUIK9t4DmZk/7BTL+o2avOeh6VfdF9e2I4Y1vDGSatYhUs1matO\n"
    "On56fF8UHAwWts1lfRQw93Wlbq6GwccSkU6AM+IITf0v1JZVhHpptMw=\n"
    "-----END PRIVATE KEY-----\n";

static struct tls_config	*fuzz_conf[2];

/* Both configurations, made once: loading keys is not what is fuzzed. */
static void
fuzz_tls_init(void)
{
	char	err[256];
	int	i;

	for (i = 0; i < 2; i++) {
		fuzz_conf[i] = tls_config_new(i == 0 ? TLS_CIPHERS_DEFAULT :
		    TLS_CIPHERS_COMPAT, 50 * 100);
		if (fuzz_conf[i] == NULL ||
		    tls_config_add_pki(fuzz_conf[i], "test.postern", EC256_CRT,
		    strlen(EC256_CRT), EC256_KEY, strlen(EC256_KEY), err,
		    sizeof(err)) != 0 ||
		    tls_config_add_pki(fuzz_conf[i], "test.postern", RSA_CRT,
		    strlen(RSA_CRT), RSA_KEY, strlen(RSA_KEY), err,
		    sizeof(err)) != 0 ||
		    tls_config_add_pki(fuzz_conf[i], "*.test", EC384_CRT,
		    strlen(EC384_CRT), EC384_KEY, strlen(EC384_KEY), err,
		    sizeof(err)) != 0)
			abort();
	}
}

/* Take everything the session has for the peer and for the reader. */
static void
fuzz_tls_drain(struct tls_session *s)
{
	const uint8_t	*p;
	size_t		 len;
	int		 rounds = 0;

	while ((p = tls_session_pending(s, &len)) != NULL) {
		if (len == 0 || len > 20000 || ++rounds > 1000)
			abort();
		tls_session_sent(s, len);
	}
	if (len != 0)
		abort();
	while ((p = tls_session_read(s, &len)) != NULL) {
		if (len == 0 || len > 17000 || ++rounds > 2000)
			abort();
		/* Echo some back, as a server answering would. */
		(void)tls_session_write(s, p, len > 16 ? 16 : len);
		tls_session_consumed(s, len);
		tls_session_flush(s);
		while ((p = tls_session_pending(s, &len)) != NULL)
			tls_session_sent(s, len);
	}
}

/* What a session reports must be consistent with its state. */
static void
fuzz_tls_check(struct tls_session *s)
{
	const char	*e;
	char		 v[16], su[64], sni[TLS_NAMELEN];
	int		 resumed;

	switch (tls_session_state(s)) {
	case TLS_STATE_FAILED:
		e = tls_session_error(s);
		if (strncmp(e, "handshake failure: ", 19) != 0 &&
		    strncmp(e, "TLS failure: ", 13) != 0)
			abort();
		break;
	case TLS_STATE_OPEN:
		if (tls_session_info(s, v, sizeof(v), su, sizeof(su), sni,
		    sizeof(sni), &resumed) != 0 ||
		    strncmp(v, "TLSv1", 5) != 0 ||
		    tls_session_pki(s)[0] == '\0')
			abort();
		break;
	case TLS_STATE_HANDSHAKE:
		if (tls_session_info(s, NULL, 0, NULL, 0, NULL, 0, NULL) !=
		    -1 || strcmp(tls_session_error(s), "no error") != 0)
			abort();
		break;
	case TLS_STATE_CLOSED:
		break;
	default:
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_session	*s;
	size_t			 off = 0, chunk, k = 0;
	ssize_t			 n;
	unsigned		 pattern;

	if (fuzz_conf[0] == NULL)
		fuzz_tls_init();
	if (size < 1)
		return 0;
	pattern = data[0] >> 1;
	if ((s = tls_session_server(fuzz_conf[data[0] & 1], "test.postern")) ==
	    NULL)
		abort();
	data++;
	size--;
	while (off < size) {
		if (pattern == 0)
			chunk = size - off;
		else
			chunk = 1 + ((pattern * 37 + k++ * 11) % 300);
		if (chunk > size - off)
			chunk = size - off;
		n = tls_session_feed(s, data + off, chunk);
		if (n == 0) {
			/* Drained, a live engine always takes input again. */
			fuzz_tls_drain(s);
			n = tls_session_feed(s, data + off, chunk);
			if (n == 0)
				abort();
		}
		if (n < -1 || n > (ssize_t)chunk)
			abort();
		fuzz_tls_check(s);
		if (n == -1)
			break;
		off += (size_t)n;
		fuzz_tls_drain(s);
	}
	fuzz_tls_drain(s);
	fuzz_tls_check(s);
	tls_session_close(s);
	fuzz_tls_drain(s);
	fuzz_tls_check(s);
	tls_session_free(s);
	return 0;
}
