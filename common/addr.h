/*
 * addr.h: parsing, validation and formatting of mail addresses
 * (RFC 5321 paths and mailboxes, RFC 6531 UTF-8 addresses).
 * SECURITY: input is untrusted peer or table text; every function is pure
 * (no I/O, no allocation), never reads past the given length and rejects
 * rather than truncates.
 */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX  64   /* RFC 5321 4.5.3.1.1 octets */
#define ADDR_DOMAIN_MAX 255
/* longest addr_format() result: quotes and one escape per local octet */
#define ADDR_MAX (ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX + 2 /* quotes */ + \
	ADDR_LOCAL_MAX /* escapes */)

struct mailaddr {
	/* unquoted form: "a b"@x gives a b; "" for the null path */
	char local[ADDR_LOCAL_MAX + 1];
	/* lowercased if ASCII; "" for <> and for <postmaster> */
	char domain[ADDR_DOMAIN_MAX + 1];
};

/* "<>" is accepted (MAIL FROM) */
#define ADDR_ALLOW_NULL       0x01
/* "<postmaster>" without domain (RCPT TO, RFC 5321 4.1.1.3) */
#define ADDR_ALLOW_POSTMASTER 0x02
/* SMTPUTF8 session: UTF-8 (validated, no overlongs/surrogates) in local
 * part and domain */
#define ADDR_UTF8             0x04

/*
 * The reasons stored in *why.  They are static strings, so callers may
 * compare the pointers or build fixed replies ("Invalid address: "
 * ADDR_ERR_DOMAIN).
 */
#define ADDR_ERR_NOBRACKET	"missing '<'"
#define ADDR_ERR_NOCLOSE	"missing '>'"
#define ADDR_ERR_EMPTY		"empty address"
#define ADDR_ERR_ROUTE		"invalid source route"
#define ADDR_ERR_LOCALEMPTY	"empty local part"
#define ADDR_ERR_LOCALLONG	"local part too long"
#define ADDR_ERR_LOCALCHAR	"invalid character in local part"
#define ADDR_ERR_LOCALDOT	"invalid dot in local part"
#define ADDR_ERR_QUOTE		"unbalanced quote"
#define ADDR_ERR_UTF8		"invalid UTF-8"
#define ADDR_ERR_NODOMAIN	"missing domain"
#define ADDR_ERR_DOMAIN		"invalid domain"
#define ADDR_ERR_DOMAINLONG	"domain too long"
#define ADDR_ERR_LITERAL	"invalid address literal"
#define ADDR_ERR_TRAILING	"trailing characters after address"

/*
 * Parse a reverse/forward path "<...>" at s (len bytes, not NUL-terminated);
 * source routes "@a,@b:" are accepted and dropped; quoted local parts,
 * dot-atom local parts, domains of LDH labels (each 1..63, no leading/
 * trailing '-', total <= 255, no trailing dot, no empty label) or address
 * literals "[1.2.3.4]" / "[IPv6:...]" (validated with inet_pton).  Stores
 * the number of bytes consumed (through '>') in *used.  Returns 0, or -1
 * with *why set to one of the ADDR_ERR_* strings.  Never reads past len.
 *
 * Details: the 64-octet limit applies to the unquoted local part (what is
 * stored).  <postmaster> (any case, unquoted, with ADDR_ALLOW_POSTMASTER)
 * gives local "postmaster" and domain "".  Address literals are stored
 * with their brackets: "[1.2.3.4]", "[IPv6:2001:db8::1]" (tag in this
 * case, hex digits lowercased).  ASCII letters of the domain are always
 * lowercased, also in a UTF-8 domain.  Without ADDR_UTF8 any byte >= 0x80
 * is refused; with it, only well-formed UTF-8 is accepted.  a is only
 * written on success.
 */
int	addr_parse_path(const char *s, size_t len, int flags,
	    struct mailaddr *a, size_t *used, const char **why);

/*
 * Parse a bare mailbox "local@domain" (no brackets) such as an alias
 * target or a table entry; same checks; the whole of len must be the
 * mailbox.  With ADDR_ALLOW_NULL an empty string is the null path; with
 * ADDR_ALLOW_POSTMASTER a bare "postmaster" is accepted.  No source route.
 */
int	addr_parse_mailbox(const char *s, size_t len, int flags,
	    struct mailaddr *a, const char **why);

/*
 * Format as local@domain, quoting the local part when it is not a
 * dot-atom (escape " and \).  "" for the null path, "postmaster" alone for
 * <postmaster>.  Returns 0, or -1 if it does not fit (no truncation; buf
 * then holds "" if bufsz > 0) or if a was not made by the parsers and
 * holds ASCII control characters.  A buffer of ADDR_MAX + 1 always fits.
 */
int	addr_format(const struct mailaddr *a, char *buf, size_t bufsz);

/* 1 if the local part or domain has bytes >= 0x80. */
int	addr_is_utf8(const struct mailaddr *a);

/*
 * 1 if domain (NUL-terminated) is a valid domain name (LDH labels, rules
 * above; with utf8, well-formed UTF-8 is also allowed in labels), else 0.
 * Address literals are not domains: see addr_literal_valid().  For
 * HELO/EHLO arguments and configuration.
 */
int	addr_domain_valid(const char *domain, int utf8);

/*
 * 1 if s (len bytes, brackets included) is an address literal
 * "[IPv4]" or "[IPv6:...]" accepted by inet_pton, else 0.
 */
int	addr_literal_valid(const char *s, size_t len);

/*
 * Length (1 to 4) of the well-formed UTF-8 sequence at s (at most len
 * bytes), or 0 if it is not one (overlong forms, surrogates, code points
 * above U+10FFFF, truncated or stray bytes).
 */
size_t	addr_utf8_seqlen(const unsigned char *s, size_t len);

#endif
