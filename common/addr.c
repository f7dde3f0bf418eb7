/*
 * addr.c: RFC 5321 / RFC 6531 address parsing, validation, formatting.
 * Used on untrusted SMTP input (smtpd) and on configuration tables.
 * SECURITY: pure functions on bounded buffers; no I/O, no allocation;
 * everything not explicitly allowed by the grammar is refused.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <string.h>
#include <strings.h>

#include "addr.h"

#define ADDR_LITERAL_MAX	(1 + 5 + INET6_ADDRSTRLEN + 1)

static int	addr_isatext(unsigned char);
static int	addr_isalnum(unsigned char);
static unsigned char addr_lower(unsigned char);
static int	addr_domain_check(const unsigned char *, size_t, int,
		    const char **);
static int	addr_literal_parse(const unsigned char *, size_t, char *,
		    size_t);
static int	addr_parse_local(const unsigned char *, size_t, size_t *, int,
		    char *, size_t *, int *, const char **);
static int	addr_parse_domain(const unsigned char *, size_t, size_t *, int,
		    char *, int *, const char **);
static int	addr_local_is_dotatom(const char *);
static int	addr_has_ctl(const char *);

/* RFC 5322 atext. */
static int
addr_isatext(unsigned char c)
{
	if (addr_isalnum(c))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Locale-independent ASCII letter or digit. */
static int
addr_isalnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* Locale-independent ASCII lowercase. */
static unsigned char
addr_lower(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 'a';
	return c;
}

size_t
addr_utf8_seqlen(const unsigned char *s, size_t len)
{
	unsigned char	lo = 0x80, hi = 0xbf;
	size_t		n, i;

	if (len == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	if (len < n)
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* Check n bytes as a domain name; 0 or -1 with *why. */
static int
addr_domain_check(const unsigned char *d, size_t n, int utf8,
    const char **why)
{
	size_t	i, label = 0, k;

	if (n == 0) {
		*why = ADDR_ERR_NODOMAIN;
		return -1;
	}
	if (n > ADDR_DOMAIN_MAX) {
		*why = ADDR_ERR_DOMAINLONG;
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (d[i] == '.') {
			if (label == 0 || d[i - 1] == '-')
				goto bad;
			label = 0;
			continue;
		}
		if (d[i] == '-') {
			if (label == 0)
				goto bad;
		} else if (d[i] >= 0x80) {
			if (!utf8)
				goto bad;
			if ((k = addr_utf8_seqlen(d + i, n - i)) == 0) {
				*why = ADDR_ERR_UTF8;
				return -1;
			}
			label += k - 1;
			i += k - 1;
		} else if (!addr_isalnum(d[i]))
			goto bad;
		if (++label > 63)
			goto bad;
	}
	if (label == 0 || d[n - 1] == '-')
		goto bad;
	return 0;
 bad:
	*why = ADDR_ERR_DOMAIN;
	return -1;
}

int
addr_domain_valid(const char *domain, int utf8)
{
	const char	*why;

	if (domain == NULL)
		return 0;
	return addr_domain_check((const unsigned char *)domain,
	    strnlen(domain, ADDR_DOMAIN_MAX + 1), utf8, &why) == 0;
}

/*
 * Validate the address literal s[0..n) (brackets included) and write its
 * canonical form to out; 0 or -1.
 */
static int
addr_literal_parse(const unsigned char *s, size_t n, char *out, size_t outsz)
{
	char		 ip[INET6_ADDRSTRLEN];
	unsigned char	 a6[sizeof(struct in6_addr)];
	const unsigned char *p;
	size_t		 plen, i;
	int		 v6 = 0;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return -1;
	p = s + 1;
	plen = n - 2;
	if (plen > 5 && strncasecmp((const char *)p, "IPv6:", 5) == 0) {
		v6 = 1;
		p += 5;
		plen -= 5;
	}
	if (plen == 0 || plen >= sizeof(ip))
		return -1;
	/* Only the characters inet_pton needs: no NUL sneaks through. */
	for (i = 0; i < plen; i++) {
		if (p[i] >= '0' && p[i] <= '9')
			ip[i] = p[i];
		else if (p[i] == '.')
			ip[i] = p[i];
		else if (v6 && (p[i] == ':' ||
		    (addr_lower(p[i]) >= 'a' && addr_lower(p[i]) <= 'f')))
			ip[i] = addr_lower(p[i]);
		else
			return -1;
	}
	ip[plen] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, ip, a6) != 1)
		return -1;
	if (out == NULL)
		return 0;
	if (v6) {
		if (plen + 8 > outsz)
			return -1;
		memcpy(out, "[IPv6:", 6);
		memcpy(out + 6, ip, plen);
		out[6 + plen] = ']';
		out[7 + plen] = '\0';
	} else {
		if (plen + 3 > outsz)
			return -1;
		out[0] = '[';
		memcpy(out + 1, ip, plen);
		out[1 + plen] = ']';
		out[2 + plen] = '\0';
	}
	return 0;
}

int
addr_literal_valid(const char *s, size_t len)
{
	if (s == NULL)
		return 0;
	return addr_literal_parse((const unsigned char *)s, len, NULL, 0) == 0;
}

/*
 * Parse a local part at s[*pos], quoted or dot-atom, into out (unquoted,
 * NUL-terminated, at most ADDR_LOCAL_MAX bytes).  Stops at the first byte
 * that cannot continue it, without judging that byte.  An empty unquoted
 * local part is returned as such; the caller knows the context.
 */
static int
addr_parse_local(const unsigned char *s, size_t len, size_t *pos, int flags,
    char *out, size_t *outlen, int *quoted, const char **why)
{
	size_t	i = *pos, o = 0, k;

	*quoted = 0;
	if (i < len && s[i] == '"') {
		*quoted = 1;
		for (i++;; ) {
			if (i >= len) {
				*why = ADDR_ERR_QUOTE;
				return -1;
			}
			if (s[i] == '"') {
				i++;
				break;
			}
			if (s[i] == '\\') {
				if (i + 1 >= len) {
					*why = ADDR_ERR_QUOTE;
					return -1;
				}
				/* quoted-pairSMTP is %d92 %d32-126 */
				if (s[i + 1] < 32 || s[i + 1] > 126) {
					*why = ADDR_ERR_LOCALCHAR;
					return -1;
				}
				i++;
				k = 1;
			} else if (s[i] >= 0x80) {
				if (!(flags & ADDR_UTF8)) {
					*why = ADDR_ERR_LOCALCHAR;
					return -1;
				}
				k = addr_utf8_seqlen(s + i, len - i);
				if (k == 0) {
					*why = ADDR_ERR_UTF8;
					return -1;
				}
			} else if (s[i] < 32 || s[i] == 127) {
				*why = ADDR_ERR_LOCALCHAR;
				return -1;
			} else
				k = 1;
			if (o + k > ADDR_LOCAL_MAX) {
				*why = ADDR_ERR_LOCALLONG;
				return -1;
			}
			memcpy(out + o, s + i, k);
			o += k;
			i += k;
		}
		if (o == 0) {
			*why = ADDR_ERR_LOCALEMPTY;
			return -1;
		}
	} else {
		while (i < len) {
			if (s[i] == '.') {
				if (o == 0 || out[o - 1] == '.') {
					*why = ADDR_ERR_LOCALDOT;
					return -1;
				}
				k = 1;
			} else if (s[i] >= 0x80) {
				if (!(flags & ADDR_UTF8)) {
					*why = ADDR_ERR_LOCALCHAR;
					return -1;
				}
				k = addr_utf8_seqlen(s + i, len - i);
				if (k == 0) {
					*why = ADDR_ERR_UTF8;
					return -1;
				}
			} else if (addr_isatext(s[i]))
				k = 1;
			else
				break;
			if (o + k > ADDR_LOCAL_MAX) {
				*why = ADDR_ERR_LOCALLONG;
				return -1;
			}
			memcpy(out + o, s + i, k);
			o += k;
			i += k;
		}
		if (o > 0 && out[o - 1] == '.') {
			*why = ADDR_ERR_LOCALDOT;
			return -1;
		}
	}
	out[o] = '\0';
	*outlen = o;
	*pos = i;
	return 0;
}

/*
 * Parse a domain or address literal at s[*pos] into out (canonical form,
 * ADDR_DOMAIN_MAX + 1 bytes).  *literal tells which one it was.  Stops at
 * the first byte that cannot be part of it.
 */
static int
addr_parse_domain(const unsigned char *s, size_t len, size_t *pos, int flags,
    char *out, int *literal, const char **why)
{
	size_t	i = *pos, start = *pos, k;

	*literal = 0;
	if (i < len && s[i] == '[') {
		*literal = 1;
		while (i < len && s[i] != ']' && i - start < ADDR_LITERAL_MAX)
			i++;
		if (i >= len || s[i] != ']' ||
		    addr_literal_parse(s + start, i + 1 - start, out,
		    ADDR_DOMAIN_MAX + 1) == -1) {
			*why = ADDR_ERR_LITERAL;
			return -1;
		}
		*pos = i + 1;
		return 0;
	}
	while (i < len && (addr_isalnum(s[i]) || s[i] == '-' || s[i] == '.' ||
	    s[i] >= 0x80))
		i++;
	if (addr_domain_check(s + start, i - start, flags & ADDR_UTF8,
	    why) == -1)
		return -1;
	for (k = start; k < i; k++)
		out[k - start] = addr_lower(s[k]);
	out[i - start] = '\0';
	*pos = i;
	return 0;
}

int
addr_parse_path(const char *str, size_t len, int flags, struct mailaddr *a,
    size_t *used, const char **why)
{
	const unsigned char	*s = (const unsigned char *)str;
	struct mailaddr		 t;
	char			 route[ADDR_DOMAIN_MAX + 1];
	size_t			 pos = 0, llen;
	int			 quoted, literal, routed = 0;
	const char		*dummy;

	if (why == NULL)
		why = &dummy;
	if (len == 0 || s[0] != '<') {
		*why = ADDR_ERR_NOBRACKET;
		return -1;
	}
	pos = 1;
	if (pos < len && s[pos] == '>') {
		if (!(flags & ADDR_ALLOW_NULL)) {
			*why = ADDR_ERR_EMPTY;
			return -1;
		}
		memset(a, 0, sizeof(*a));
		*used = 2;
		return 0;
	}

	/* A source route "@a,@b:" is parsed and dropped (RFC 5321 4.1.2). */
	while (pos < len && s[pos] == '@') {
		routed = 1;
		pos++;
		if (addr_parse_domain(s, len, &pos, flags, route, &literal,
		    why) == -1 || pos >= len) {
			*why = ADDR_ERR_ROUTE;
			return -1;
		}
		if (s[pos] == ':') {
			pos++;
			break;
		}
		if (s[pos] != ',' || pos + 1 >= len || s[pos + 1] != '@') {
			*why = ADDR_ERR_ROUTE;
			return -1;
		}
		pos++;
	}

	memset(&t, 0, sizeof(t));
	if (addr_parse_local(s, len, &pos, flags, t.local, &llen, &quoted,
	    why) == -1)
		return -1;
	if (pos >= len) {
		*why = ADDR_ERR_NOCLOSE;
		return -1;
	}
	if (s[pos] == '@') {
		if (llen == 0) {
			*why = ADDR_ERR_LOCALEMPTY;
			return -1;
		}
		pos++;
		if (addr_parse_domain(s, len, &pos, flags, t.domain, &literal,
		    why) == -1)
			return -1;
		if (pos >= len) {
			*why = ADDR_ERR_NOCLOSE;
			return -1;
		}
		if (s[pos] != '>') {
			*why = literal ? ADDR_ERR_NOCLOSE : ADDR_ERR_DOMAIN;
			return -1;
		}
	} else if (s[pos] == '>' && llen > 0) {
		if (!(flags & ADDR_ALLOW_POSTMASTER) || quoted || routed ||
		    strcasecmp(t.local, "postmaster") != 0) {
			*why = ADDR_ERR_NODOMAIN;
			return -1;
		}
		strlcpy(t.local, "postmaster", sizeof(t.local));
	} else {
		*why = ADDR_ERR_LOCALCHAR;
		return -1;
	}
	*used = pos + 1;
	memcpy(a, &t, sizeof(*a));
	return 0;
}

int
addr_parse_mailbox(const char *str, size_t len, int flags,
    struct mailaddr *a, const char **why)
{
	const unsigned char	*s = (const unsigned char *)str;
	struct mailaddr		 t;
	size_t			 pos = 0, llen;
	int			 quoted, literal;
	const char		*dummy;

	if (why == NULL)
		why = &dummy;
	if (len == 0) {
		if (!(flags & ADDR_ALLOW_NULL)) {
			*why = ADDR_ERR_EMPTY;
			return -1;
		}
		memset(a, 0, sizeof(*a));
		return 0;
	}
	memset(&t, 0, sizeof(t));
	if (addr_parse_local(s, len, &pos, flags, t.local, &llen, &quoted,
	    why) == -1)
		return -1;
	if (pos >= len) {
		if (llen > 0 && (flags & ADDR_ALLOW_POSTMASTER) && !quoted &&
		    strcasecmp(t.local, "postmaster") == 0) {
			strlcpy(t.local, "postmaster", sizeof(t.local));
			memcpy(a, &t, sizeof(*a));
			return 0;
		}
		*why = ADDR_ERR_NODOMAIN;
		return -1;
	}
	if (s[pos] != '@') {
		*why = ADDR_ERR_LOCALCHAR;
		return -1;
	}
	if (llen == 0) {
		*why = ADDR_ERR_LOCALEMPTY;
		return -1;
	}
	pos++;
	if (addr_parse_domain(s, len, &pos, flags, t.domain, &literal,
	    why) == -1)
		return -1;
	if (pos != len) {
		*why = literal ? ADDR_ERR_TRAILING : ADDR_ERR_DOMAIN;
		return -1;
	}
	memcpy(a, &t, sizeof(*a));
	return 0;
}

/* 1 if the local part can be written without quotes. */
static int
addr_local_is_dotatom(const char *l)
{
	const unsigned char	*s = (const unsigned char *)l;
	size_t			 i;

	if (s[0] == '\0' || s[0] == '.')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.' || s[i + 1] == '\0')
				return 0;
		} else if (s[i] < 0x80 && !addr_isatext(s[i]))
			return 0;
	}
	return 1;
}

/* 1 if s has an ASCII control character. */
static int
addr_has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

int
addr_format(const struct mailaddr *a, char *buf, size_t bufsz)
{
	const char	*l;
	size_t		 o = 0, dlen;
	int		 quote;

	if (bufsz == 0)
		return -1;
	buf[0] = '\0';
	if (a->local[0] == '\0' && a->domain[0] == '\0')
		return 0;
	/* never emit CR, LF or other controls into a line format */
	if (addr_has_ctl(a->local) || addr_has_ctl(a->domain))
		return -1;
	quote = !addr_local_is_dotatom(a->local);
	if (quote)
		buf[o++] = '"';
	for (l = a->local; *l != '\0'; l++) {
		if (quote && (*l == '"' || *l == '\\')) {
			if (o + 1 >= bufsz)
				goto full;
			buf[o++] = '\\';
		}
		if (o + 1 >= bufsz)
			goto full;
		buf[o++] = *l;
	}
	if (quote) {
		if (o + 1 >= bufsz)
			goto full;
		buf[o++] = '"';
	}
	if (a->domain[0] != '\0') {
		dlen = strlen(a->domain);
		if (o + 1 + dlen >= bufsz)
			goto full;
		buf[o++] = '@';
		memcpy(buf + o, a->domain, dlen);
		o += dlen;
	}
	buf[o] = '\0';
	return 0;
 full:
	buf[0] = '\0';
	return -1;
}

int
addr_is_utf8(const struct mailaddr *a)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)a->local; *p != '\0'; p++)
		if (*p >= 0x80)
			return 1;
	for (p = (const unsigned char *)a->domain; *p != '\0'; p++)
		if (*p >= 0x80)
			return 1;
	return 0;
}
