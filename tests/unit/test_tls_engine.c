/*
 * test_tls_engine.c: unit tests for the tlsd BearSSL layer
 * (tlsd/tls_pki.c, tls_engine.c, tls_client.c): pki loading and its
 * refusals, in-memory handshakes between our client and server sessions
 * (and a raw BearSSL client for suites and versions our client does not
 * offer), SNI and key type selection, resumption, data transfer,
 * close_notify, hostile input, and certificate verification.
 * SECURITY: test code; the keys below are throw-away test keys made for
 * this file (openssl, 100 years), never used anywhere else.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <bearssl.h>

#include "../../tlsd/tls_engine.h"

/*
 * Test certificates.  RSA_* and EC256_* are self-signed for
 * test.postern, EC384_* for other.test; LEAF_* is signed by CA_CRT for
 * leaf.test and *.wild.test; RSA1024_* is too weak; RSA2_KEY matches no
 * certificate.
 */
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

static const char CA_CRT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBmzCCAUGgAwIBAgIUKgKt4Km5nKWuMvLxw863lXKy8EkwCgYIKoZIzj0EAwIw\n"
    "GjEYMBYGA1UEAwwPUG9zdGVybiBUZXN0IENBMCAXDTI2MTEyOTEyMzUzMVoYDzIx\n"
    "MjYxMTA1MTIzNTMxWjAaMRgwFgYDVQQDDA9Qb3N0ZXJuIFRlc3QgQ0EwWTATBgcq\n"
    "hkjOPQIBBggqhkjOPQMBBwNCAAQgE7QzEWARzVE96TcnghdEjmL3ch8w2cYqy6oa\n"
    "YaR5vxht2vA9aR5cjNVtneSlot0GJf5djAFba9TAOJadCVcFo2MwYTAdBgNVHQ4E\n"
    "FgQUaMwyigYOPgpZJVETIWA4F4uTCL4wHwYDVR0jBBgwFoAUaMwyigYOPgpZJVET\n"
    "IWA4F4uTCL4wDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZI\n"
    "zj0EAwIDSAAwRQIhAKgXG6R7STm1RG4gvZQW51daDGrN0Z7etvRR+Bgv6ni+AiBS\n"
    "TnMa2VH8AqB+eogslLE0P3cWvTjSvVGuk82uKF19wQ==\n"
    "-----END CERTIFICATE-----\n";

static const char LEAF_CRT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIByjCCAW+gAwIBAgIUPYZ7U1b/36dcPXVk+4inmOZy5W8wCgYIKoZIzj0EAwIw\n"
    "GjEYMBYGA1UEAwwPUG9zdGVybiBUZXN0IENBMCAXDTI2MTEyOTEyMzUzMVoYDzIx\n"
    "MjYxMTA1MTIzNTMxWjAUMRIwEAYDVQQDDAlsZWFmLnRlc3QwWTATBgcqhkjOPQIB\n"
    "BggqhkjOPQMBBwNCAATmWfPIAIFa7eYGSOeTzlqHuMY5JSeVaL2OZ6ISf3z9/qSA\n"
    "yfIjyUxiRbUYOd1RbHNOucvB+XCtseJ0o7YUkH3So4GWMIGTMCEGA1UdEQQaMBiC\n"
    "CWxlYWYudGVzdIILKi53aWxkLnRlc3QwCQYDVR0TBAIwADAOBgNVHQ8BAf8EBAMC\n"
    "B4AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFAnhAD15DANbe7geA7Y2\n"
    "XLa8SEZcMB8GA1UdIwQYMBaAFGjMMooGDj4KWSVREyFgOBeLkwi+MAoGCCqGSM49\n"
    "BAMCA0kAMEYCIQCtOMisbqJl0rplIlDlXHKXVRdxszCxrhVfSLGCBzz6dQIhAP4Z\n"
    "egig1UPkXy+qLypYNIBhK47VNGksuaO46Ndwasun\n"
    "-----END CERTIFICATE-----\n";

static const char LEAF_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgr+jqgSfrMBXNe1qo\n"
    "Xi7SafQ0Jsebbg+5UM/+S5qcXIGhRANCAATmWfPIAIFa7eYGSOeTzlqHuMY5JSeV\n"
    "aL2OZ6ISf3z9/qSAyfIjyUxiRbUYOd1RbHNOucvB+XCtseJ0o7YUkH3S\n"
    "-----END PRIVATE KEY-----\n";

static const char RSA1024_CRT[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIICBjCCAW+gAwIBAgIUSjT420R1CjwAxIH0DDVbwJ5AUO0wDQYJKoZIhvcNAQEL\n"
    "BQAwFDESMBAGA1UEAwwJd2Vhay50ZXN0MCAXDTI2MTEyOTEyMzUzMVoYDzIxMjYx\n"
    "MTA1MTIzNTMxWjAUMRIwEAYDVQQDDAl3ZWFrLnRlc3QwgZ8wDQYJKoZIhvcNAQEB\n"
    "BQADgY0AMIGJAoGBAK4zJluK0dUSODmUrlCdNxIihC0ZOqTmCnOpwI3b7Pe1MzoG\n"
    "y77eviKg0Q5KdmLpHdrcdCJXcfhBuKfa0HDJ7C+z0T7sZammiUGSyQbCIyabD6fZ\n"
    "xNyWuc54RNQUUuWiWyzjUvqiSxMeOeP8CgDTJ8TzQP5C5DIahmuA/JgayVdVAgMB\n"
    "AAGjUzBRMB0GA1UdDgQWBBREnE1qsecyq+Am5rBs8csR2n6RMDAfBgNVHSMEGDAW\n"
    "gBREnE1qsecyq+Am5rBs8csR2n6RMDAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3\n"
    "DQEBCwUAA4GBAJHmN9kdrf1LLsgomBOrsFu3fQq0oFFOLP1MmYj/2GWRtbo1K/jl\n"
    "Rv76zJDjQczmMp9tGIE/d1i8Cwct6fEUT1PTmnDHf90ubJ0CglIf5UGIAFeYCY45\n"
    "G5+JLu0dkQksIV5nojyOwplkG2kJ1xFFZpixIzfmSVE0hU2Nfy5Y5r8L\n"
    "-----END CERTIFICATE-----\n";

static const char RSA1024_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBAK4zJluK0dUSODmU\n"
    "rlCdNxIihC0ZOqTmCnOpwI3b7Pe1MzoGy77eviKg0Q5KdmLpHdrcdCJXcfhBuKfa\n"
    "0HDJ7C+z0T7sZammiUGSyQbCIyabD6fZxNyWuc54RNQUUuWiWyzjUvqiSxMeOeP8\n"
    "CgDTJ8TzQP5C5DIahmuA/JgayVdVAgMBAAECgYBEUntw2/mAgCzdKJtVstOuoSsG\n"
    "JScDFdZzltiWyvMeFEuLLq8qpWIdYsWbvUjBcnzrIhvKfFGO9Pffncqy8f9X8J/g\n"
    "51xCDvnaw/HGrUbmEvMRnjIzylK2RrMS6l+uszXFg+WhWGvo1vo2JZSo8sOMWNNY\n"
    "5ai+FciMjdMzsIA44QJBANPrEnkmvBxYW5LSXEN9SrQ0WodcEu/kHOTyESiWXHpe\n"
    "tNWGEOdI3afRuiTnES18MWAU4bxZe6AnuxhYQFQ3wocCQQDSb4U3mLV+wiGKPIQZ\n"
    "pHibT+cVqG3mMTxbiVLXeQoLLbOimr6QulQHi/d8rQeirWr54MzW1tiYGk20vDsO\n"
    "KKJDAkA6pNq/3BBCZ9EvmDcgFhQOOk6zFq/G4wF7+eD1smZ1FrBERo1285sjTc6N\n"
    "V8RRKgUf6aduT/T+JQCJhCKJK8URAkB8MjNmj6s2Z67R3kt8stQ3nd3dq21JOW/M\n"
    "+mw5HYeu90cYxcmIs1+aoKHtJFXoTf9gAKwEdAKbKpMIAzu7bIHvAkB5N00Dj5/1\n"
    "YC1U7jSabzQWDhlVqGZLzIYljCEIEf8Y0+yOs0plUUfmSci00vWkqupgeq96LM01\n"
    "nWizteVYQ0Yj\n"
    "-----END PRIVATE KEY-----\n";

static const char RSA2_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDJnljcxmZm7cxo\n"
    "NoQz94nTMpNrcu+23g12ZLk5Rj21S2oieCBcw73HnmG8Rw+kAMw6z/7IBTbxrZ1D\n"
    "cSbwZOFmcevyK0IIGwMVS388EMZyICjL88XizuIybFoZ1OoxCu+toSOFt5YyV6bL\n"
    "AJqg9E07CWBYE+A6cDTvnHFfUdok17z9ImGLUwqsUDs4xY+AU/Ui3MEwlibQbdxT\n"
    "2IPReqyaxRn71hR9X2Cl9VoRoE1z+6zqKnJMK9Dik/3kxH4uUU2NqELRUsqNX6x2\n"
    "Dv1h9ZkPSn3QZWI7DLUjjtbydFLx8vU7cQu0q6fHe+Qe66CwFNWoDhze20HN1h6c\n"
    "+ipxzdEdAgMBAAECggEABczQXEmOLe0usYYf936/hZvcMdMfTPDGYl7eFTpivBHB\n"
    "/ovbd8+0aJxdzhTH6706Itb+SrLGXzLSELFIoCccH4kCHfgF8PBrU57Vt4dOrinO\n"
    "rU9YpKsJnCRnKHxqNaRNkNPPOcw2PeyCQoTEmKzD1qxGYUJGc71BSJivikEd4sFk\n"
    "9Hxv7mzsGK9prYsH1lR+X0PRSZOeeKREVascF1uJAl7sTWR5GyFnYH5eVhiRExUS\n"
    "oQc9DCBeVXOybK2vTycDSF4f9XBuOe9wIqr/uVvWQGCUi8xgmRbhJnl/egTrrSAe\n"
    "Tke6M5YBZH6a31QwVAoqSdYsLohdP7T7+MpLq4PNAQKBgQD1vwqKnfkIymljCYel\n"
    "nzZVS7KQV6tZi92OvVR04crRPLV+u9gU9mFbijdkYNiCcx9h0l4o+XuUzKc35VW+\n"
    "1N4sGig33qDWZW3GilcLbGGog3t22THlk1r6YZXlI+cG7E33+fgIjUA9es6KS/ZH\n"
    "qW4/MmDJJ06f4DsSXjd0rJKAiQKBgQDSB/PBLMh3KdgKNGVgGWBV0z8eAp2rYG9m\n"
    "q/RuMaN+9LNz64TmmMGSbeGaj53nHP5HXicSMKPzmdAvUOOGNL56P4eaNxPyBjms\n"
    "bI9tkMtkkWYTaAyCEX8YLMrf8uNtDostRP+lSLQ+gkRuBQ4EQ943DD7Lp7lhd0KP\n"
    "Q1dJcJLe9QKBgQCu3mm25+CtM7O4aLCg12GHYp1G/0uMJe3bw7gUkBONvsB71VlW\n"
    "2VfAFuOBxzRp51e+eT7Ns3IQGW0oZkYUzE7oXRifYQlcZsKt1AVKuK3pht5VXQqX\n"
    "jbrgjo5mhpzAHWkB+1tXYoQC+597Y8B1kAhGaifbG+Bj/eCrGmYl3SNG2QKBgQCE\n"
    "YFK33Fv1D0CFHgUPDq9zKJPNfGSX0U4lbhe/JDYiHGTGmRjIplrKycq5ue8R7Wou\n"
    "3R7PDi0nqjhWuirNOY0cS9JR1okRr+7FyB6WNf6bwjCN5rSLfi+WsxSjFdlVsSbz\n"
    "P1vJdwtzonMyzKjK82OpWmRxw6LJ1Xr0BMONHBDVyQKBgG+knkY5zBTef+lBzUIC\n"
    "sYhX9b3D291frrVw33571KBI3rI/f5iRVIMSLcvX+c/hNZ/hz9cjcDljK3T8niD+\n"
    "jSpEbmyjGUnM6aBILvS7ib1DbJWRvKIfhooahmG5NwLtzx5dObF62DehtKf1fqJt\n"
    "qfp4e/zerQcHnBhzzlfu4hc2\n"
    "-----END PRIVATE KEY-----\n";

/* SHA-256 of the certificates above (openssl x509 -fingerprint). */
#define FP_EC256 \
	"d248380398a2413a68901285f84c407644ee244169ebe8649c38b8a4ca37f85d"
#define FP_EC384 \
	"3b08246c7d661dc626ba68935decc48715df4d85151c3418e87700ddb80bd810"
#define FP_LEAF \
	"9b875a4502b3248603b3117c62056aef83344e78c4c7fc2b2ad1d4f5d6863a26"
#define FP_RSA \
	"67f8f5ecade92ceb2303554ffc65d8d5b19a91251f537b3b37f487c779a5a8c6"

/* One side of a connection: our session, or a raw BearSSL engine. */
struct peer {
	struct tls_session	*s;
	br_ssl_engine_context	*eng;
};

/* An X.509 engine for the raw client: accepts any chain, keeps the
 * leaf's key type. */
struct anyx509 {
	const br_x509_class	*vtable;
	br_x509_decoder_context	 dc;
	int			 n;
	int			 keytype;
};

/* A raw BearSSL client, for suites and versions ours never offers. */
struct raw_client {
	br_ssl_client_context	 cc;
	br_x509_minimal_context	 xm;
	struct anyx509		 x;
	unsigned char		 buf[BR_SSL_BUFSIZE_BIDI];
};

static char	errbuf[256];

static void
any_start_chain(const br_x509_class **ctx, const char *name)
{
	struct anyx509	*x = (struct anyx509 *)(void *)ctx;

	x->n = 0;
	x->keytype = 0;
}

static void
any_start_cert(const br_x509_class **ctx, uint32_t len)
{
	struct anyx509	*x = (struct anyx509 *)(void *)ctx;

	if (x->n == 0)
		br_x509_decoder_init(&x->dc, NULL, NULL);
}

static void
any_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
	struct anyx509	*x = (struct anyx509 *)(void *)ctx;

	if (x->n == 0)
		br_x509_decoder_push(&x->dc, buf, len);
}

static void
any_end_cert(const br_x509_class **ctx)
{
	struct anyx509	*x = (struct anyx509 *)(void *)ctx;

	x->n++;
}

static unsigned
any_end_chain(const br_x509_class **ctx)
{
	struct anyx509	*x = (struct anyx509 *)(void *)ctx;
	br_x509_pkey	*pk;

	if ((pk = br_x509_decoder_get_pkey(&x->dc)) == NULL)
		return BR_ERR_X509_INVALID_VALUE;
	x->keytype = pk->key_type;
	return 0;
}

static const br_x509_pkey *
any_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
	struct anyx509	*x = (struct anyx509 *)(uintptr_t)ctx;

	if (usages != NULL)
		*usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN;
	return br_x509_decoder_get_pkey(&x->dc);
}

static const br_x509_class anyx509_vtable = {
	sizeof(struct anyx509), any_start_chain, any_start_cert, any_append,
	any_end_cert, any_end_chain, any_get_pkey
};

static struct raw_client *
raw_client_new(const uint16_t *suites, size_t nsuites, unsigned vmin,
    unsigned vmax, const char *sni)
{
	struct raw_client	*r;

	r = calloc(1, sizeof(*r));
	assert_non_null(r);
	br_ssl_client_init_full(&r->cc, &r->xm, NULL, 0);
	r->x.vtable = &anyx509_vtable;
	br_ssl_engine_set_x509(&r->cc.eng, &r->x.vtable);
	br_ssl_engine_set_suites(&r->cc.eng, suites, nsuites);
	br_ssl_engine_set_versions(&r->cc.eng, vmin, vmax);
	br_ssl_engine_set_buffer(&r->cc.eng, r->buf, sizeof(r->buf), 1);
	assert_int_equal(br_ssl_client_reset(&r->cc, sni, 0), 1);
	return r;
}

static const uint8_t *
peer_pending(struct peer *p, size_t *len)
{
	const uint8_t	*b;

	if (p->s != NULL)
		return tls_session_pending(p->s, len);
	if ((b = br_ssl_engine_sendrec_buf(p->eng, len)) == NULL)
		*len = 0;
	return b;
}

static void
peer_sent(struct peer *p, size_t n)
{
	if (p->s != NULL)
		tls_session_sent(p->s, n);
	else
		br_ssl_engine_sendrec_ack(p->eng, n);
}

static ssize_t
peer_feed(struct peer *p, const uint8_t *buf, size_t len)
{
	unsigned char	*b;
	size_t		 avail;

	if (p->s != NULL)
		return tls_session_feed(p->s, buf, len);
	if (br_ssl_engine_current_state(p->eng) & BR_SSL_CLOSED)
		return -1;
	if ((b = br_ssl_engine_recvrec_buf(p->eng, &avail)) == NULL)
		return 0;
	if (avail > len)
		avail = len;
	memcpy(b, buf, avail);
	br_ssl_engine_recvrec_ack(p->eng, avail);
	return (ssize_t)avail;
}

/*
 * Move ciphertext from one side to the other; whether any moved.  Like
 * a socket, a closed receiver swallows what is sent to it.
 */
static int
move(struct peer *from, struct peer *to)
{
	const uint8_t	*b;
	size_t		 len;
	ssize_t		 n;
	int		 moved = 0;

	while ((b = peer_pending(from, &len)) != NULL && len > 0) {
		if ((n = peer_feed(to, b, len)) == 0)
			break;
		peer_sent(from, n == -1 ? len : (size_t)n);
		moved = 1;
	}
	return moved;
}

/* Shuttle ciphertext both ways until neither side has any to give. */
static void
shuttle(struct peer *a, struct peer *b)
{
	int	progress, rounds = 0;

	do {
		progress = move(a, b);
		progress |= move(b, a);
		assert_true(++rounds < 100000);
	} while (progress);
}

static void
shuttle2(struct tls_session *a, struct tls_session *b)
{
	struct peer	pa = { a, NULL }, pb = { b, NULL };

	shuttle(&pa, &pb);
}

/* Handshake between our client and server; both must end OPEN. */
static void
handshake(struct tls_session *c, struct tls_session *s)
{
	shuttle2(c, s);
	assert_int_equal(tls_session_state(c), TLS_STATE_OPEN);
	assert_int_equal(tls_session_state(s), TLS_STATE_OPEN);
}

static void
add_pki(struct tls_config *conf, const char *name, const char *crt,
    const char *key)
{
	char	err[256];

	err[0] = '\0';
	if (tls_config_add_pki(conf, name, crt, strlen(crt), key,
	    strlen(key), err, sizeof(err)) != 0)
		fail_msg("add_pki %s: %s", name, err);
}

static int
add_pki_err(struct tls_config *conf, const char *name, const char *crt,
    const char *key)
{
	return tls_config_add_pki(conf, name, crt, strlen(crt), key,
	    strlen(key), errbuf, sizeof(errbuf));
}

/* A server config: test.postern (RSA+EC256, the default), other.test
 * (EC384), *.wild.test and leaf.test (CA-signed leaf with its chain). */
static struct tls_config *
server_config(enum tls_ciphers ciphers, size_t cache)
{
	struct tls_config	*conf;
	char			 chain[4096];

	conf = tls_config_new(ciphers, cache);
	assert_non_null(conf);
	add_pki(conf, "test.postern", RSA_CRT, RSA_KEY);
	add_pki(conf, "test.postern", EC256_CRT, EC256_KEY);
	add_pki(conf, "other.test", EC384_CRT, EC384_KEY);
	snprintf(chain, sizeof(chain), "%s%s", LEAF_CRT, CA_CRT);
	add_pki(conf, "*.wild.test", chain, LEAF_KEY);
	add_pki(conf, "Leaf.Test", chain, LEAF_KEY);
	return conf;
}

/* A client config trusting CA_CRT. */
static struct tls_config *
client_config(enum tls_ciphers ciphers)
{
	struct tls_config	*conf;
	char			 err[256];

	conf = tls_config_new(ciphers, 0);
	assert_non_null(conf);
	assert_int_equal(tls_config_add_cas(conf, CA_CRT, strlen(CA_CRT), err,
	    sizeof(err)), 0);
	assert_int_equal(tls_config_ncas(conf), 1);
	return conf;
}

/* Check the negotiated parameters as seen by one side. */
static void
check_info(struct tls_session *s, const char *version, const char *suite,
    const char *sni, int resumed)
{
	char	v[16], su[64], n[TLS_NAMELEN];
	int	r = -1;

	assert_int_equal(tls_session_info(s, v, sizeof(v), su, sizeof(su), n,
	    sizeof(n), &r), 0);
	assert_string_equal(v, version);
	assert_string_equal(su, suite);
	assert_string_equal(n, sni);
	assert_int_equal(r, resumed);
}

static void
check_fingerprint(struct tls_session *c, const char *fp)
{
	char	buf[TLS_FINGERPRINT_LEN];

	assert_int_equal(tls_session_peer_fingerprint(c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, fp);
}

/* Write all of buf on from and read it all back on to. */
static void
transfer(struct tls_session *from, struct tls_session *to,
    const uint8_t *buf, size_t len)
{
	uint8_t		*got;
	const uint8_t	*r;
	size_t		 off = 0, glen = 0, rlen;
	ssize_t		 n;
	int		 rounds = 0;

	got = malloc(len);
	assert_non_null(got);
	while (glen < len) {
		assert_true(++rounds < 100000);
		if (off < len) {
			n = tls_session_write(from, buf + off, len - off);
			assert_true(n >= 0);
			off += (size_t)n;
			if (off == len)
				tls_session_flush(from);
		}
		shuttle2(from, to);
		while ((r = tls_session_read(to, &rlen)) != NULL && rlen > 0) {
			assert_true(glen + rlen <= len);
			memcpy(got + glen, r, rlen);
			glen += rlen;
			tls_session_consumed(to, rlen);
			shuttle2(from, to);
		}
	}
	assert_memory_equal(got, buf, len);
	free(got);
}

static void
test_pki_load(void **state)
{
	struct tls_config	*conf;

	conf = server_config(TLS_CIPHERS_DEFAULT, 0);
	tls_config_free(conf);
	tls_config_free(NULL);
}

static void
test_pki_refused(void **state)
{
	struct tls_config	*conf;
	char			 buf[8192];
	size_t			 n;

	conf = tls_config_new(TLS_CIPHERS_DEFAULT, 0);
	assert_non_null(conf);

	/* Key and certificate of different pairs. */
	assert_int_equal(add_pki_err(conf, "a.test", EC256_CRT, LEAF_KEY), -1);
	assert_string_equal(errbuf, "key does not match certificate");
	assert_int_equal(add_pki_err(conf, "a.test", RSA_CRT, RSA2_KEY), -1);
	assert_string_equal(errbuf, "key does not match certificate");
	assert_int_equal(add_pki_err(conf, "a.test", RSA_CRT, EC256_KEY), -1);
	assert_string_equal(errbuf, "key does not match certificate");
	assert_int_equal(add_pki_err(conf, "a.test", EC256_CRT, EC384_KEY),
	    -1);
	assert_string_equal(errbuf, "key does not match certificate");
	/* RSA 1024. */
	assert_int_equal(add_pki_err(conf, "a.test", RSA1024_CRT,
	    RSA1024_KEY), -1);
	assert_string_equal(errbuf, "unsupported key");
	/* A second key of the same kind. */
	assert_int_equal(add_pki_err(conf, "a.test", RSA_CRT, RSA_KEY), 0);
	assert_int_equal(add_pki_err(conf, "A.TEST", RSA_CRT, RSA_KEY), -1);
	assert_string_equal(errbuf, "pki a.test already has an RSA key");
	assert_int_equal(add_pki_err(conf, "a.test", EC256_CRT, EC256_KEY), 0);
	assert_int_equal(add_pki_err(conf, "a.test", EC384_CRT, EC384_KEY),
	    -1);
	assert_string_equal(errbuf, "pki a.test already has an EC key");
	/* Names. */
	assert_int_equal(add_pki_err(conf, "", RSA_CRT, RSA_KEY), -1);
	assert_string_equal(errbuf, "invalid pki name");
	assert_int_equal(add_pki_err(conf, "a..test", RSA_CRT, RSA_KEY), -1);
	assert_string_equal(errbuf, "invalid pki name");
	assert_int_equal(add_pki_err(conf, "*.", RSA_CRT, RSA_KEY), -1);
	assert_string_equal(errbuf, "invalid pki name");
	assert_int_equal(add_pki_err(conf, "a.*.test", RSA_CRT, RSA_KEY), -1);
	assert_string_equal(errbuf, "invalid pki name");
	assert_int_equal(add_pki_err(conf, "a test", RSA_CRT, RSA_KEY), -1);
	assert_string_equal(errbuf, "invalid pki name");
	/* PEM problems. */
	assert_int_equal(add_pki_err(conf, "b.test", "", RSA_KEY), -1);
	assert_string_equal(errbuf, "no certificate found");
	assert_int_equal(add_pki_err(conf, "b.test", RSA_CRT, "junk\n"), -1);
	assert_string_equal(errbuf, "no private key found");
	assert_int_equal(add_pki_err(conf, "b.test", RSA_KEY, RSA_KEY), -1);
	assert_string_equal(errbuf,
	    "unexpected PEM object in certificate: RSA PRIVATE KEY");
	assert_int_equal(add_pki_err(conf, "b.test", RSA_CRT, RSA_CRT), -1);
	assert_string_equal(errbuf,
	    "unexpected PEM object in key: CERTIFICATE");
	/* Cut after a whole line, then inside a line. */
	n = strlen(RSA_CRT) - strlen("-----END CERTIFICATE-----\n");
	memcpy(buf, RSA_CRT, n);
	buf[n] = '\0';
	assert_int_equal(add_pki_err(conf, "b.test", buf, RSA_KEY), -1);
	assert_string_equal(errbuf, "truncated PEM");
	buf[n - 10] = '\0';
	assert_int_equal(add_pki_err(conf, "b.test", buf, RSA_KEY), -1);
	assert_string_equal(errbuf, "malformed PEM");
	snprintf(buf, sizeof(buf), "%s%s", EC256_KEY, LEAF_KEY);
	assert_int_equal(add_pki_err(conf, "b.test", EC256_CRT, buf), -1);
	assert_string_equal(errbuf, "more than one private key");
	assert_int_equal(add_pki_err(conf, "b.test", EC256_CRT,
	    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
	    "-----END ENCRYPTED PRIVATE KEY-----\n"), -1);
	assert_string_equal(errbuf, "encrypted private keys are not supported");
	assert_int_equal(add_pki_err(conf, "b.test",
	    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	    EC256_KEY), -1);
	assert_string_equal(errbuf, "bad certificate (BR_ERR_X509_UNEXPECTED)");
	assert_int_equal(add_pki_err(conf, "b.test", EC256_CRT,
	    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
	    -1);
	assert_string_equal(errbuf, "bad private key (BR_ERR_X509_UNEXPECTED)");
	assert_int_equal(add_pki_err(conf, "b.test",
	    "-----BEGIN CERTIFICATE-----\nA*AA\n-----END CERTIFICATE-----\n",
	    EC256_KEY), -1);
	assert_string_equal(errbuf, "malformed PEM");
	/* Too many certificates. */
	buf[0] = '\0';
	for (n = 0; n < 11; n++)
		strlcat(buf, EC256_CRT, sizeof(buf));
	assert_int_equal(add_pki_err(conf, "b.test", buf, EC256_KEY), -1);
	assert_string_equal(errbuf, "too many certificates in chain");
	/* A key with EC PARAMETERS and no trailing newline is fine. */
	n = strlen(EC256_KEY) - 1;
	memcpy(buf, EC256_KEY, n);
	buf[n] = '\0';
	assert_int_equal(add_pki_err(conf, "c.test", EC256_CRT, buf), 0);
	/* Wildcards are names too. */
	assert_int_equal(add_pki_err(conf, "*.d.test", EC256_CRT, EC256_KEY),
	    0);
	tls_config_free(conf);
}

static void
test_config_in_use(void **state)
{
	struct tls_config	*conf;
	struct tls_session	*s;

	conf = server_config(TLS_CIPHERS_DEFAULT, 0);
	assert_null(tls_session_server(conf, "nosuch.test"));
	assert_null(tls_session_server(conf, NULL));
	s = tls_session_server(conf, "test.postern");
	assert_non_null(s);
	assert_int_equal(add_pki_err(conf, "e.test", EC256_CRT, EC256_KEY),
	    -1);
	assert_string_equal(errbuf, "configuration in use");
	assert_int_equal(tls_config_add_cas(conf, CA_CRT, strlen(CA_CRT),
	    errbuf, sizeof(errbuf)), -1);
	assert_string_equal(errbuf, "configuration in use");
	tls_session_free(s);
	assert_int_equal(add_pki_err(conf, "e.test", EC256_CRT, EC256_KEY), 0);
	tls_config_free(conf);
}

static void
test_cas(void **state)
{
	struct tls_config	*conf;
	char			 buf[8192];

	conf = tls_config_new(TLS_CIPHERS_DEFAULT, 0);
	assert_int_equal(tls_config_add_cas(conf, "", 0, errbuf,
	    sizeof(errbuf)), -1);
	assert_string_equal(errbuf, "no usable certificate in bundle");
	assert_int_equal(tls_config_add_cas(conf, RSA_KEY, strlen(RSA_KEY),
	    errbuf, sizeof(errbuf)), -1);
	assert_string_equal(errbuf,
	    "unexpected PEM object in CA bundle: RSA PRIVATE KEY");
	/* An undecodable certificate is skipped, the others kept. */
	snprintf(buf, sizeof(buf), "%s-----BEGIN CERTIFICATE-----\nAAAA\n"
	    "-----END CERTIFICATE-----\n%s", CA_CRT, RSA_CRT);
	assert_int_equal(tls_config_add_cas(conf, buf, strlen(buf), errbuf,
	    sizeof(errbuf)), 0);
	assert_int_equal(tls_config_ncas(conf), 2);
	/* All or nothing on a PEM error. */
	snprintf(buf, sizeof(buf), "%s-----BEGIN CERTIFICATE-----\nA", CA_CRT);
	assert_int_equal(tls_config_add_cas(conf, buf, strlen(buf), errbuf,
	    sizeof(errbuf)), -1);
	assert_string_equal(errbuf, "malformed PEM");
	assert_int_equal(tls_config_ncas(conf), 2);
	tls_config_free(conf);
}

static void
test_ecdsa_only(void **state)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;

	sconf = tls_config_new(TLS_CIPHERS_DEFAULT, 0);
	add_pki(sconf, "test.postern", EC256_CRT, EC256_KEY);
	cconf = client_config(TLS_CIPHERS_DEFAULT);
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "test.postern");
	assert_non_null(s);
	assert_non_null(c);
	assert_int_equal(tls_session_state(c), TLS_STATE_HANDSHAKE);
	assert_int_equal(tls_session_state(s), TLS_STATE_HANDSHAKE);
	handshake(c, s);
	check_info(s, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "test.postern", 0);
	check_info(c, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "test.postern", 0);
	check_fingerprint(c, FP_EC256);
	assert_string_equal(tls_session_pki(s), "test.postern");
	assert_null(tls_session_pki(c));
	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

static void
test_rsa_only(void **state)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;

	sconf = tls_config_new(TLS_CIPHERS_DEFAULT, 0);
	add_pki(sconf, "test.postern", RSA_CRT, RSA_KEY);
	cconf = client_config(TLS_CIPHERS_DEFAULT);
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "test.postern");
	handshake(c, s);
	check_info(s, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256",
	    "test.postern", 0);
	check_fingerprint(c, FP_RSA);
	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

static void
test_both_key_types(void **state)
{
	static const uint16_t	 rsa_suites[] = {
		BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
	};
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;
	struct raw_client	*r;
	struct peer		 ps, pr;

	sconf = server_config(TLS_CIPHERS_DEFAULT, 0);
	cconf = client_config(TLS_CIPHERS_DEFAULT);

	/* Our client offers ECDSA: it gets the EC certificate. */
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "test.postern");
	handshake(c, s);
	check_info(c, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "test.postern", 0);
	check_fingerprint(c, FP_EC256);
	tls_session_free(c);
	tls_session_free(s);

	/* A client with RSA suites only gets the RSA certificate, and the
	 * server's preference among those (AES-256-GCM before ChaCha20). */
	s = tls_session_server(sconf, "test.postern");
	r = raw_client_new(rsa_suites, 2, BR_TLS12, BR_TLS12, "test.postern");
	ps.s = s;
	ps.eng = NULL;
	pr.s = NULL;
	pr.eng = &r->cc.eng;
	shuttle(&pr, &ps);
	assert_int_equal(tls_session_state(s), TLS_STATE_OPEN);
	assert_true(br_ssl_engine_current_state(&r->cc.eng) & BR_SSL_SENDAPP);
	assert_int_equal(r->x.keytype, BR_KEYTYPE_RSA);
	check_info(s, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384",
	    "test.postern", 0);
	tls_session_free(s);
	free(r);

	tls_config_free(sconf);
	tls_config_free(cconf);
}

/* Handshake with SNI sni against server_config(); check pki and cert. */
static void
sni_case(const char *sni, const char *pki, const char *fp)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;
	char			 n[TLS_NAMELEN];

	sconf = server_config(TLS_CIPHERS_DEFAULT, 0);
	cconf = client_config(TLS_CIPHERS_DEFAULT);
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, sni);
	assert_string_equal(tls_session_pki(s), "");
	handshake(c, s);
	assert_string_equal(tls_session_pki(s), pki);
	check_fingerprint(c, fp);
	assert_int_equal(tls_session_info(s, NULL, 0, NULL, 0, n, sizeof(n),
	    NULL), 0);
	assert_string_equal(n, sni);
	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

static void
test_sni(void **state)
{
	sni_case("other.test", "other.test", FP_EC384);
	sni_case("OTHER.Test", "other.test", FP_EC384);
	sni_case("leaf.test", "leaf.test", FP_LEAF);
	sni_case("unknown.example", "test.postern", FP_EC256);
	sni_case("", "test.postern", FP_EC256);
	sni_case("a.wild.test", "*.wild.test", FP_LEAF);
	sni_case("Mx.WILD.test", "*.wild.test", FP_LEAF);
	/* The wildcard covers exactly one label. */
	sni_case("b.a.wild.test", "test.postern", FP_EC256);
	sni_case("wild.test", "test.postern", FP_EC256);
}

static void
test_resumption(void **state)
{
	struct tls_config	*sconf, *cconf, *nocache;
	struct tls_session	*s, *c;
	struct tls_resume	 saved, other;
	char			 why[128];

	sconf = server_config(TLS_CIPHERS_DEFAULT, 100 * 100);
	cconf = client_config(TLS_CIPHERS_DEFAULT);

	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "leaf.test");
	assert_int_equal(tls_session_save(c, &saved), -1);
	assert_int_equal(tls_session_save(s, &saved), -1);
	handshake(c, s);
	check_info(c, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "leaf.test", 0);
	assert_int_equal(tls_session_verified(c, why, sizeof(why)), 1);
	assert_int_equal(tls_session_save(c, &saved), 0);
	tls_session_free(c);
	tls_session_free(s);

	/* Same name: resumed on both sides, verification carried over. */
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client_resume(cconf, "leaf.test", &saved);
	handshake(c, s);
	check_info(c, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "leaf.test", 1);
	check_info(s, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "leaf.test", 1);
	assert_string_equal(tls_session_pki(s), "leaf.test");
	assert_int_equal(tls_session_verified(c, why, sizeof(why)), 1);
	assert_string_equal(why, "verified");
	check_fingerprint(c, FP_LEAF);
	transfer(c, s, (const uint8_t *)"EHLO x\r\n", 8);
	assert_int_equal(tls_session_save(c, &other), 0);
	tls_session_free(c);
	tls_session_free(s);

	/* Another name: full handshake. */
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client_resume(cconf, "other.test", &saved);
	handshake(c, s);
	check_info(c, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "other.test", 0);
	check_fingerprint(c, FP_EC384);
	tls_session_free(c);
	tls_session_free(s);

	/* A server without a cache: full handshake. */
	nocache = server_config(TLS_CIPHERS_DEFAULT, 0);
	s = tls_session_server(nocache, "test.postern");
	c = tls_session_client_resume(cconf, "leaf.test", &saved);
	handshake(c, s);
	check_info(c, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "leaf.test", 0);
	check_info(s, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "leaf.test", 0);
	tls_session_free(c);
	tls_session_free(s);

	/* Garbage as a saved session: full handshake. */
	memset(&other, 0xa5, sizeof(other));
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client_resume(cconf, "leaf.test", &other);
	handshake(c, s);
	check_info(c, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "leaf.test", 0);
	tls_session_free(c);
	tls_session_free(s);

	explicit_bzero(&saved, sizeof(saved));
	tls_config_free(nocache);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

static void
test_data_roundtrip(void **state)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;
	uint8_t			*big;
	size_t			 i, len;
	const uint8_t		*r;

	sconf = server_config(TLS_CIPHERS_DEFAULT, 0);
	cconf = client_config(TLS_CIPHERS_DEFAULT);
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "test.postern");

	/* No cleartext during the handshake. */
	assert_int_equal(tls_session_write(c, (const uint8_t *)"x", 1), 0);
	assert_null(tls_session_read(s, &len));
	assert_int_equal(len, 0);
	handshake(c, s);

	transfer(s, c, (const uint8_t *)"220 test.postern ESMTP\r\n", 24);
	transfer(c, s, (const uint8_t *)"EHLO client\r\n", 13);
	transfer(s, c, (const uint8_t *)"250 ok\r\n", 8);

	/* Nothing is left over. */
	assert_null(tls_session_read(s, &len));
	assert_null(tls_session_read(c, &len));

	/* 1 MiB both ways. */
	len = 1024 * 1024;
	big = malloc(len);
	assert_non_null(big);
	for (i = 0; i < len; i++)
		big[i] = (uint8_t)(i * 7 + (i >> 11));
	transfer(c, s, big, len);
	transfer(s, c, big, len);
	free(big);

	/* A partial read leaves the rest. */
	assert_int_equal(tls_session_write(c, (const uint8_t *)"QUIT\r\n", 6),
	    6);
	tls_session_flush(c);
	shuttle2(c, s);
	r = tls_session_read(s, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(r, "QUIT\r\n", 6);
	tls_session_consumed(s, 4);
	r = tls_session_read(s, &len);
	assert_int_equal(len, 2);
	assert_memory_equal(r, "\r\n", 2);
	tls_session_consumed(s, 2);

	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

static void
test_close_notify(void **state)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;
	size_t			 len;

	sconf = server_config(TLS_CIPHERS_DEFAULT, 0);
	cconf = client_config(TLS_CIPHERS_DEFAULT);
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "test.postern");
	handshake(c, s);
	transfer(c, s, (const uint8_t *)"QUIT\r\n", 6);
	tls_session_close(s);
	assert_int_equal(tls_session_write(s, (const uint8_t *)"x", 1), -1);
	shuttle2(c, s);
	assert_int_equal(tls_session_state(s), TLS_STATE_CLOSED);
	assert_int_equal(tls_session_state(c), TLS_STATE_CLOSED);
	assert_string_equal(tls_session_error(s), "no error");
	assert_int_equal(tls_session_feed(s, (const uint8_t *)"x", 1), -1);
	assert_int_equal(tls_session_write(c, (const uint8_t *)"x", 1), -1);
	assert_null(tls_session_pending(s, &len));
	assert_int_equal(len, 0);
	/* The handshake results stay readable. */
	check_info(c, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "test.postern", 0);
	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

/* Feed bytes to a new server session, drain it; it must fail. */
static void
garbage_case(const uint8_t *buf, size_t len, const char *error)
{
	struct tls_config	*sconf;
	struct tls_session	*s;
	const uint8_t		*p;
	size_t			 off = 0, plen;
	ssize_t			 n;

	sconf = server_config(TLS_CIPHERS_DEFAULT, 0);
	s = tls_session_server(sconf, "test.postern");
	while (off < len) {
		if ((n = tls_session_feed(s, buf + off, len - off)) == -1)
			break;
		off += (size_t)n;
		while ((p = tls_session_pending(s, &plen)) != NULL)
			tls_session_sent(s, plen);
		if (n == 0 && tls_session_state(s) == TLS_STATE_FAILED)
			break;
	}
	while ((p = tls_session_pending(s, &plen)) != NULL)
		tls_session_sent(s, plen);
	assert_int_equal(tls_session_state(s), TLS_STATE_FAILED);
	assert_string_equal(tls_session_error(s), error);
	assert_int_equal(tls_session_feed(s, buf, len), -1);
	assert_int_equal(tls_session_write(s, buf, len), -1);
	assert_int_equal(tls_session_info(s, NULL, 0, NULL, 0, NULL, 0, NULL),
	    -1);
	tls_session_free(s);
	tls_config_free(sconf);
}

static void
test_garbage(void **state)
{
	static const uint8_t	 http[] = "GET / HTTP/1.0\r\n\r\n";
	static const uint8_t	 smtp[] = "EHLO x\r\n";
	static const uint8_t	 bad_len[] = {
		0x16, 0x03, 0x01, 0xff, 0xff, 0x01
	};
	static const uint8_t	 bad_hello[] = {
		0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03
	};
	uint8_t			 zeros[64];

	memset(zeros, 0, sizeof(zeros));
	garbage_case(http, sizeof(http) - 1,
	    "handshake failure: unsupported protocol version "
	    "(BR_ERR_UNSUPPORTED_VERSION)");
	garbage_case(smtp, sizeof(smtp) - 1,
	    "handshake failure: unsupported protocol version "
	    "(BR_ERR_UNSUPPORTED_VERSION)");
	garbage_case(bad_len, sizeof(bad_len),
	    "handshake failure: bad record length (BR_ERR_BAD_LENGTH)");
	garbage_case(bad_hello, sizeof(bad_hello),
	    "handshake failure: bad parameter "
	    "(BR_ERR_BAD_PARAM)");
	garbage_case(zeros, sizeof(zeros),
	    "handshake failure: unsupported protocol version "
	    "(BR_ERR_UNSUPPORTED_VERSION)");
}

static void
test_corrupt_record(void **state)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;
	const uint8_t		*p;
	uint8_t			 rec[256];
	size_t			 len;

	sconf = server_config(TLS_CIPHERS_DEFAULT, 0);
	cconf = client_config(TLS_CIPHERS_DEFAULT);
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "test.postern");
	handshake(c, s);
	assert_int_equal(tls_session_write(c, (const uint8_t *)"MAIL\r\n", 6),
	    6);
	tls_session_flush(c);
	p = tls_session_pending(c, &len);
	assert_true(len > 10 && len <= sizeof(rec));
	memcpy(rec, p, len);
	tls_session_sent(c, len);
	rec[len - 1] ^= 1;
	assert_int_equal(tls_session_feed(s, rec, len), -1);
	assert_int_equal(tls_session_state(s), TLS_STATE_FAILED);
	assert_string_equal(tls_session_error(s),
	    "TLS failure: bad record MAC (BR_ERR_BAD_MAC)");
	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

/* A raw client against a server config; returns the server session. */
static struct tls_session *
raw_case(struct tls_config *sconf, const uint16_t *suites, size_t n,
    unsigned vmin, unsigned vmax, int *keytype)
{
	struct tls_session	*s;
	struct raw_client	*r;
	struct peer		 ps, pr;

	s = tls_session_server(sconf, "test.postern");
	r = raw_client_new(suites, n, vmin, vmax, "test.postern");
	ps.s = s;
	ps.eng = NULL;
	pr.s = NULL;
	pr.eng = &r->cc.eng;
	shuttle(&pr, &ps);
	*keytype = r->x.keytype;
	free(r);
	return s;
}

static void
test_versions_and_suites(void **state)
{
	static const uint16_t	 cbc_rsa[] = {
		BR_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
	};
	static const uint16_t	 cbc_ec[] = {
		BR_TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
	};
	static const uint16_t	 rsa_kx[] = {
		BR_TLS_RSA_WITH_AES_128_GCM_SHA256
	};
	static const uint16_t	 rsa_kx_cbc[] = {
		BR_TLS_RSA_WITH_AES_256_CBC_SHA
	};
	struct tls_config	*def, *compat;
	struct tls_session	*s;
	int			 kt;

	def = server_config(TLS_CIPHERS_DEFAULT, 0);
	compat = server_config(TLS_CIPHERS_COMPAT, 0);

	/* DEFAULT refuses TLS 1.0, CBC and RSA key exchange. */
	s = raw_case(def, cbc_rsa, 1, BR_TLS10, BR_TLS10, &kt);
	assert_int_equal(tls_session_state(s), TLS_STATE_FAILED);
	assert_string_equal(tls_session_error(s),
	    "handshake failure: unsupported protocol version, sent alert "
	    "protocol_version (BR_ERR_SEND_FATAL_ALERT+70)");
	tls_session_free(s);
	s = raw_case(def, cbc_rsa, 1, BR_TLS12, BR_TLS12, &kt);
	assert_int_equal(tls_session_state(s), TLS_STATE_FAILED);
	assert_string_equal(tls_session_error(s),
	    "handshake failure: no shared cipher, sent alert "
	    "handshake_failure (BR_ERR_SEND_FATAL_ALERT+40)");
	tls_session_free(s);
	s = raw_case(def, rsa_kx, 1, BR_TLS12, BR_TLS12, &kt);
	assert_int_equal(tls_session_state(s), TLS_STATE_FAILED);
	tls_session_free(s);

	/* COMPAT takes them. */
	s = raw_case(compat, cbc_rsa, 1, BR_TLS10, BR_TLS10, &kt);
	assert_int_equal(tls_session_state(s), TLS_STATE_OPEN);
	check_info(s, "TLSv1", "ECDHE-RSA-AES128-SHA", "test.postern", 0);
	assert_int_equal(kt, BR_KEYTYPE_RSA);
	tls_session_free(s);
	s = raw_case(compat, cbc_ec, 1, BR_TLS11, BR_TLS11, &kt);
	assert_int_equal(tls_session_state(s), TLS_STATE_OPEN);
	check_info(s, "TLSv1.1", "ECDHE-ECDSA-AES256-SHA", "test.postern", 0);
	assert_int_equal(kt, BR_KEYTYPE_EC);
	tls_session_free(s);
	s = raw_case(compat, rsa_kx, 1, BR_TLS10, BR_TLS12, &kt);
	assert_int_equal(tls_session_state(s), TLS_STATE_OPEN);
	check_info(s, "TLSv1.2", "AES128-GCM-SHA256", "test.postern", 0);
	tls_session_free(s);
	s = raw_case(compat, rsa_kx_cbc, 1, BR_TLS10, BR_TLS10, &kt);
	assert_int_equal(tls_session_state(s), TLS_STATE_OPEN);
	check_info(s, "TLSv1", "AES256-SHA", "test.postern", 0);
	tls_session_free(s);

	tls_config_free(def);
	tls_config_free(compat);
}

static void
test_compat_client(void **state)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;

	sconf = server_config(TLS_CIPHERS_COMPAT, 0);
	cconf = client_config(TLS_CIPHERS_COMPAT);
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "test.postern");
	handshake(c, s);
	check_info(c, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256",
	    "test.postern", 0);
	transfer(c, s, (const uint8_t *)"NOOP\r\n", 6);
	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

/* Client to server_config() with server_name; check verification. */
static void
verify_case(const char *default_pki, const char *server_name, int ok,
    const char *why)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;
	char			 w[128];

	sconf = server_config(TLS_CIPHERS_DEFAULT, 0);
	cconf = client_config(TLS_CIPHERS_DEFAULT);
	s = tls_session_server(sconf, default_pki);
	c = tls_session_client(cconf, server_name);
	assert_int_equal(tls_session_verified(c, w, sizeof(w)), 0);
	assert_string_equal(w, "handshake not done");
	handshake(c, s);
	assert_int_equal(tls_session_verified(c, w, sizeof(w)), ok);
	assert_string_equal(w, why);
	/* Unverified or not, the session works. */
	transfer(s, c, (const uint8_t *)"220 ok\r\n", 8);
	assert_int_equal(tls_session_verified(s, w, sizeof(w)), 0);
	assert_string_equal(w, "not a client session");
	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

static void
test_verify(void **state)
{
	verify_case("test.postern", "leaf.test", 1, "verified");
	verify_case("test.postern", "mx.wild.test", 1, "verified");
	verify_case("leaf.test", "wrong.test", 0,
	    "server name mismatch (BR_ERR_X509_BAD_SERVER_NAME)");
	verify_case("test.postern", "test.postern", 0,
	    "certificate not trusted (BR_ERR_X509_NOT_TRUSTED)");
	verify_case("leaf.test", "", 0, "no server name to verify");
}

static void
test_verify_no_cas(void **state)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;
	char			 w[128];

	sconf = server_config(TLS_CIPHERS_DEFAULT, 0);
	cconf = tls_config_new(TLS_CIPHERS_DEFAULT, 0);
	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "leaf.test");
	handshake(c, s);
	assert_int_equal(tls_session_verified(c, w, sizeof(w)), 0);
	assert_string_equal(w,
	    "certificate not trusted (BR_ERR_X509_NOT_TRUSTED)");
	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

static void
test_info_limits(void **state)
{
	struct tls_config	*sconf, *cconf;
	struct tls_session	*s, *c;
	char			 small[8], name[300];

	sconf = server_config(TLS_CIPHERS_DEFAULT, 0);
	cconf = client_config(TLS_CIPHERS_DEFAULT);
	memset(name, 'a', sizeof(name));
	name[TLS_NAMELEN] = '\0';
	assert_null(tls_session_client(cconf, name));
	name[TLS_NAMELEN - 1] = '\0';
	c = tls_session_client(cconf, name);
	assert_non_null(c);
	tls_session_free(c);

	s = tls_session_server(sconf, "test.postern");
	c = tls_session_client(cconf, "test.postern");
	assert_int_equal(tls_session_info(c, NULL, 0, NULL, 0, NULL, 0, NULL),
	    -1);
	assert_int_equal(tls_session_peer_fingerprint(c, name, sizeof(name)),
	    -1);
	handshake(c, s);
	assert_int_equal(tls_session_info(c, small, sizeof(small), NULL, 0,
	    NULL, 0, NULL), 0);
	assert_string_equal(small, "TLSv1.2");
	assert_int_equal(tls_session_info(c, NULL, 0, small, sizeof(small),
	    NULL, 0, NULL), -1);
	assert_int_equal(tls_session_peer_fingerprint(c, small,
	    sizeof(small)), -1);
	assert_int_equal(tls_session_peer_fingerprint(s, name, sizeof(name)),
	    -1);
	tls_session_free(c);
	tls_session_free(s);
	tls_config_free(sconf);
	tls_config_free(cconf);
}

static void
test_memory(void **state)
{
	size_t	m = tls_session_memory();

	assert_true(m > BR_SSL_BUFSIZE_INPUT);
	assert_true(m < 28 * 1024);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pki_load),
		cmocka_unit_test(test_pki_refused),
		cmocka_unit_test(test_config_in_use),
		cmocka_unit_test(test_cas),
		cmocka_unit_test(test_ecdsa_only),
		cmocka_unit_test(test_rsa_only),
		cmocka_unit_test(test_both_key_types),
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_resumption),
		cmocka_unit_test(test_data_roundtrip),
		cmocka_unit_test(test_close_notify),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_corrupt_record),
		cmocka_unit_test(test_versions_and_suites),
		cmocka_unit_test(test_compat_client),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_verify_no_cas),
		cmocka_unit_test(test_info_limits),
		cmocka_unit_test(test_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
