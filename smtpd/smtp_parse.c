/*
 * smtp_parse.c: SMTP command line and argument parsers for smtpd.
 * The session state machine calls these on each received line; they
 * only decode and validate, policy is decided by the caller.
 * SECURITY: hostile input in the unprivileged smtpd process; pure
 * functions on bounded buffers, output written only on success, replies
 * are static strings.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "smtp_parse.h"

struct smtp_param {
	const char	*key;
	size_t		 keylen;
	const char	*val;		/* NULL if no '=' */
	size_t		 vallen;
};

struct smtp_addr_reason {
	const char	*why;
	const char	*text;
};

#define SMTP_REASON(r)	{ r, "Invalid address: " r }
static const struct smtp_addr_reason smtp_addr_reasons[] = {
	SMTP_REASON(ADDR_ERR_NOBRACKET),
	SMTP_REASON(ADDR_ERR_NOCLOSE),
	SMTP_REASON(ADDR_ERR_EMPTY),
	SMTP_REASON(ADDR_ERR_ROUTE),
	SMTP_REASON(ADDR_ERR_LOCALEMPTY),
	SMTP_REASON(ADDR_ERR_LOCALLONG),
	SMTP_REASON(ADDR_ERR_LOCALCHAR),
	SMTP_REASON(ADDR_ERR_LOCALDOT),
	SMTP_REASON(ADDR_ERR_QUOTE),
	SMTP_REASON(ADDR_ERR_UTF8),
	SMTP_REASON(ADDR_ERR_NODOMAIN),
	SMTP_REASON(ADDR_ERR_DOMAIN),
	SMTP_REASON(ADDR_ERR_DOMAINLONG),
	SMTP_REASON(ADDR_ERR_LITERAL),
	SMTP_REASON(ADDR_ERR_TRAILING),
};

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} smtp_verbs[] = {
	{ "HELO",	SMTP_CMD_HELO },
	{ "EHLO",	SMTP_CMD_EHLO },
	{ "MAIL",	SMTP_CMD_MAIL },
	{ "RCPT",	SMTP_CMD_RCPT },
	{ "DATA",	SMTP_CMD_DATA },
	{ "BDAT",	SMTP_CMD_BDAT },
	{ "RSET",	SMTP_CMD_RSET },
	{ "NOOP",	SMTP_CMD_NOOP },
	{ "QUIT",	SMTP_CMD_QUIT },
	{ "HELP",	SMTP_CMD_HELP },
	{ "VRFY",	SMTP_CMD_VRFY },
	{ "EXPN",	SMTP_CMD_EXPN },
	{ "STARTTLS",	SMTP_CMD_STARTTLS },
	{ "AUTH",	SMTP_CMD_AUTH },
};

#define SMTP_ERR_PARAMS		"Syntax error in parameters"

static int	smtp_fail(struct smtp_error *, int, const char *, const char *);
static const char *smtp_addr_text(const char *, const char *);
static int	smtp_is_key(const struct smtp_param *, const char *);
static int	smtp_val_is(const struct smtp_param *, const char *);
static int	smtp_param_next(const char *, size_t, size_t *,
		    struct smtp_param *);
static int	smtp_parse_size(const char *, size_t, size_t *);
static int	smtp_hexval(unsigned char);
static int	smtp_printable(const char *);
static int	smtp_parse_notify(const char *, size_t, int *);
static int	smtp_parse_orcpt(const char *, size_t, char *, size_t);

/* Fill err and return -1, so that callers can "return smtp_fail(...)". */
static int
smtp_fail(struct smtp_error *err, int code, const char *enhanced,
    const char *text)
{
	err->code = code;
	err->enhanced = enhanced;
	err->text = text;
	return -1;
}

/* The fixed reply text for an addr_parse_* reason. */
static const char *
smtp_addr_text(const char *why, const char *fallback)
{
	size_t	i;

	for (i = 0; i < sizeof(smtp_addr_reasons) /
	    sizeof(smtp_addr_reasons[0]); i++)
		if (why != NULL && strcmp(why, smtp_addr_reasons[i].why) == 0)
			return smtp_addr_reasons[i].text;
	return fallback;
}

int
smtp_parse_command(const char *line, size_t len, struct smtp_command *cmd,
    struct smtp_error *err)
{
	size_t	n, i;

	if (len > SMTP_LINE_MAX - 2)
		return smtp_fail(err, 500, "5.5.2", "Line too long");
	if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) !=
	    NULL || memchr(line, '\n', len) != NULL)
		return smtp_fail(err, 500, "5.5.2",
		    "Invalid character in command");

	for (n = 0; n < len && ((line[n] >= 'a' && line[n] <= 'z') ||
	    (line[n] >= 'A' && line[n] <= 'Z')); n++)
		;
	cmd->verb = SMTP_CMD_UNKNOWN;
	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++) {
		if (strlen(smtp_verbs[i].name) == n &&
		    strncasecmp(line, smtp_verbs[i].name, n) == 0) {
			cmd->verb = smtp_verbs[i].verb;
			break;
		}
	}
	cmd->args = "";
	cmd->arglen = 0;
	if (n == len || n == 0)
		return 0;
	if (line[n] != ' ') {
		if (cmd->verb == SMTP_CMD_UNKNOWN)
			return 0;
		return smtp_fail(err, 500, "5.5.2", "Syntax error");
	}
	if (n + 1 < len) {
		cmd->args = line + n + 1;
		cmd->arglen = len - n - 1;
	}
	return 0;
}

/* Case-insensitive match of the parameter keyword. */
static int
smtp_is_key(const struct smtp_param *p, const char *name)
{
	return p->keylen == strlen(name) &&
	    strncasecmp(p->key, name, p->keylen) == 0;
}

/* Case-insensitive match of the parameter value. */
static int
smtp_val_is(const struct smtp_param *p, const char *v)
{
	return p->val != NULL && p->vallen == strlen(v) &&
	    strncasecmp(p->val, v, p->vallen) == 0;
}

/*
 * Next "keyword[=value]" of an esmtp parameter list at s[*pos]; spaces
 * before it are skipped.  1 with p set, 0 at the end, -1 on bad syntax
 * (RFC 5321 esmtp-keyword and esmtp-value).
 */
static int
smtp_param_next(const char *str, size_t len, size_t *pos, struct smtp_param *p)
{
	const unsigned char	*s = (const unsigned char *)str;
	size_t			 i = *pos;

	while (i < len && s[i] == ' ')
		i++;
	if (i >= len) {
		*pos = i;
		return 0;
	}
	p->key = str + i;
	p->val = NULL;
	p->vallen = 0;
	for (; i < len && s[i] != ' ' && s[i] != '='; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    (s[i] == '-' && str + i != p->key)))
			return -1;
	}
	p->keylen = str + i - p->key;
	if (p->keylen == 0)
		return -1;
	if (i < len && s[i] == '=') {
		i++;
		p->val = str + i;
		for (; i < len && s[i] != ' '; i++)
			if (s[i] < 33 || s[i] > 126 || s[i] == '=')
				return -1;
		p->vallen = str + i - p->val;
		if (p->vallen == 0)
			return -1;
	}
	*pos = i;
	return 1;
}

/* Decimal size_t without sign or overflow; 0 or -1. */
static int
smtp_parse_size(const char *s, size_t len, size_t *out)
{
	size_t	v = 0, i, d;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = s[i] - '0';
		if (v > (SIZE_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Value of a hex digit, either case, or -1. */
static int
smtp_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
smtp_xtext_decode(const char *in, size_t len, char *out, size_t outsz)
{
	const unsigned char	*s = (const unsigned char *)in;
	size_t			 i, o = 0;
	int			 hi, lo;
	unsigned char		 c;

	if (outsz == 0)
		return -1;
	out[0] = '\0';
	for (i = 0; i < len; i++) {
		c = s[i];
		if (c < 33 || c > 126 || c == '=')
			goto bad;
		if (c == '+') {
			if (len - i < 3)
				goto bad;
			if ((hi = smtp_hexval(s[i + 1])) == -1 ||
			    (lo = smtp_hexval(s[i + 2])) == -1)
				goto bad;
			c = hi << 4 | lo;
			if (c == '\0')
				goto bad;
			i += 2;
		}
		if (o + 1 >= outsz)
			goto bad;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
 bad:
	out[0] = '\0';
	return -1;
}

/* 1 if s holds only printable ASCII (SP included). */
static int
smtp_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 32 || *s > 126)
			return 0;
	return 1;
}

int
smtp_parse_mail(const char *args, size_t len, struct smtp_mail_args *m,
    struct smtp_error *err)
{
	struct smtp_mail_args	 t;
	struct smtp_param	 p;
	const char		*why = NULL;
	size_t			 pos, used;
	unsigned int		 seen = 0, bit;
	int			 r;
	char			 scratch[SMTP_LINE_MAX];

	if (len < 5 || strncasecmp(args, "FROM:", 5) != 0)
		goto syntax;
	pos = 5;
	if (pos < len && args[pos] == ' ')
		pos++;
	if (pos >= len || args[pos] != '<')
		goto syntax;

	memset(&t, 0, sizeof(t));
	if (addr_parse_path(args + pos, len - pos, ADDR_ALLOW_NULL | ADDR_UTF8,
	    &t.from, &used, &why) == -1)
		return smtp_fail(err, 553, "5.1.7",
		    smtp_addr_text(why, "Bad sender address syntax"));
	pos += used;
	if (pos < len && args[pos] != ' ')
		return smtp_fail(err, 501, "5.5.4", SMTP_ERR_PARAMS);

	while ((r = smtp_param_next(args, len, &pos, &p)) == 1) {
		if (smtp_is_key(&p, "SIZE")) {
			bit = 0x01;
			if (seen & bit)
				goto dup;
			if (p.val == NULL ||
			    smtp_parse_size(p.val, p.vallen, &t.size) == -1)
				return smtp_fail(err, 501, "5.5.4",
				    "Invalid SIZE parameter");
		} else if (smtp_is_key(&p, "BODY")) {
			bit = 0x02;
			if (seen & bit)
				goto dup;
			if (smtp_val_is(&p, "7BIT"))
				t.body = SMTP_BODY_7BIT;
			else if (smtp_val_is(&p, "8BITMIME"))
				t.body = SMTP_BODY_8BITMIME;
			else
				return smtp_fail(err, 501, "5.5.4",
				    "Invalid BODY parameter");
		} else if (smtp_is_key(&p, "SMTPUTF8")) {
			bit = 0x04;
			if (seen & bit)
				goto dup;
			if (p.val != NULL)
				return smtp_fail(err, 501, "5.5.4",
				    "Invalid SMTPUTF8 parameter");
			t.smtputf8 = 1;
		} else if (smtp_is_key(&p, "RET")) {
			bit = 0x08;
			if (seen & bit)
				goto dup;
			if (smtp_val_is(&p, "FULL"))
				t.ret = SMTP_RET_FULL;
			else if (smtp_val_is(&p, "HDRS"))
				t.ret = SMTP_RET_HDRS;
			else
				return smtp_fail(err, 501, "5.5.4",
				    "Invalid RET parameter");
		} else if (smtp_is_key(&p, "ENVID")) {
			bit = 0x10;
			if (seen & bit)
				goto dup;
			if (p.val == NULL || smtp_xtext_decode(p.val, p.vallen,
			    t.envid, sizeof(t.envid)) == -1 ||
			    !smtp_printable(t.envid))
				return smtp_fail(err, 501, "5.5.4",
				    "Invalid ENVID parameter");
		} else if (smtp_is_key(&p, "AUTH")) {
			/* RFC 4954 5: we may ignore it; check it is xtext. */
			bit = 0x20;
			if (seen & bit)
				goto dup;
			if (p.val == NULL || smtp_xtext_decode(p.val, p.vallen,
			    scratch, sizeof(scratch)) == -1)
				return smtp_fail(err, 501, "5.5.4",
				    "Invalid AUTH parameter");
		} else
			return smtp_fail(err, 555, "5.5.4",
			    "Unsupported parameter");
		seen |= bit;
	}
	if (r == -1)
		return smtp_fail(err, 501, "5.5.4", SMTP_ERR_PARAMS);
	if (!t.smtputf8 && addr_is_utf8(&t.from))
		return smtp_fail(err, 553, "5.6.7", "Address needs SMTPUTF8");
	memcpy(m, &t, sizeof(*m));
	return 0;
 dup:
	return smtp_fail(err, 501, "5.5.4", "Duplicate parameter");
 syntax:
	return smtp_fail(err, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
}

/* NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1). */
static int
smtp_parse_notify(const char *v, size_t len, int *notify)
{
	struct smtp_param	 item;
	size_t			 i = 0, j;
	int			 n = 0, bit;

	if (len == 0)
		return -1;
	while (i <= len) {
		for (j = i; j < len && v[j] != ','; j++)
			;
		item.val = v + i;
		item.vallen = j - i;
		if (smtp_val_is(&item, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (smtp_val_is(&item, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (smtp_val_is(&item, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (smtp_val_is(&item, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return -1;
		n |= bit;
		i = j + 1;
	}
	if ((n & SMTP_NOTIFY_NEVER) && n != SMTP_NOTIFY_NEVER)
		return -1;
	*notify = n;
	return 0;
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2) into out as "type;decoded". */
static int
smtp_parse_orcpt(const char *v, size_t len, char *out, size_t outsz)
{
	const char	*semi;
	size_t		 tlen, i;
	char		 c;

	if ((semi = memchr(v, ';', len)) == NULL)
		return -1;
	tlen = semi - v;
	if (tlen == 0 || tlen + 2 > outsz || semi + 1 == v + len)
		return -1;
	for (i = 0; i < tlen; i++) {
		c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return -1;
	}
	memcpy(out, v, tlen + 1);
	if (smtp_xtext_decode(semi + 1, len - tlen - 1, out + tlen + 1,
	    outsz - tlen - 1) == -1 || !smtp_printable(out + tlen + 1)) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

int
smtp_parse_rcpt(const char *args, size_t len, int utf8,
    struct smtp_rcpt_args *r, struct smtp_error *err)
{
	struct smtp_rcpt_args	 t;
	struct smtp_param	 p;
	const char		*why = NULL;
	size_t			 pos, used;
	unsigned int		 seen = 0;
	int			 rv;

	if (len < 3 || strncasecmp(args, "TO:", 3) != 0)
		goto syntax;
	pos = 3;
	if (pos < len && args[pos] == ' ')
		pos++;
	if (pos >= len || args[pos] != '<')
		goto syntax;

	memset(&t, 0, sizeof(t));
	if (addr_parse_path(args + pos, len - pos,
	    ADDR_ALLOW_POSTMASTER | ADDR_UTF8, &t.to, &used, &why) == -1)
		return smtp_fail(err, 553, "5.1.3",
		    smtp_addr_text(why, "Bad recipient address syntax"));
	pos += used;
	if (pos < len && args[pos] != ' ')
		return smtp_fail(err, 501, "5.5.4", SMTP_ERR_PARAMS);

	while ((rv = smtp_param_next(args, len, &pos, &p)) == 1) {
		if (smtp_is_key(&p, "NOTIFY")) {
			if (seen & 0x01)
				goto dup;
			seen |= 0x01;
			if (p.val == NULL ||
			    smtp_parse_notify(p.val, p.vallen, &t.notify) == -1)
				return smtp_fail(err, 501, "5.5.4",
				    "Invalid NOTIFY parameter");
		} else if (smtp_is_key(&p, "ORCPT")) {
			if (seen & 0x02)
				goto dup;
			seen |= 0x02;
			if (p.val == NULL || smtp_parse_orcpt(p.val, p.vallen,
			    t.orcpt, sizeof(t.orcpt)) == -1)
				return smtp_fail(err, 501, "5.5.4",
				    "Invalid ORCPT parameter");
		} else
			return smtp_fail(err, 555, "5.5.4",
			    "Unsupported parameter");
	}
	if (rv == -1)
		return smtp_fail(err, 501, "5.5.4", SMTP_ERR_PARAMS);
	if (!utf8 && addr_is_utf8(&t.to))
		return smtp_fail(err, 553, "5.6.7", "Address needs SMTPUTF8");
	memcpy(r, &t, sizeof(*r));
	return 0;
 dup:
	return smtp_fail(err, 501, "5.5.4", "Duplicate parameter");
 syntax:
	return smtp_fail(err, 501, "5.5.4", "Syntax: RCPT TO:<address>");
}

int
smtp_parse_bdat(const char *args, size_t len, size_t *chunk, int *last,
    struct smtp_error *err)
{
	size_t	i, v;
	int	l = 0;

	for (i = 0; i < len && args[i] >= '0' && args[i] <= '9'; i++)
		;
	if (i == 0)
		goto syntax;
	if (i < len) {
		if (len - i != 5 || args[i] != ' ' ||
		    strncasecmp(args + i + 1, "LAST", 4) != 0)
			goto syntax;
		l = 1;
	}
	if (smtp_parse_size(args, i, &v) == -1 || v > SIZE_MAX / 2)
		return smtp_fail(err, 501, "5.5.4", "Chunk size too large");
	*chunk = v;
	*last = l;
	return 0;
 syntax:
	return smtp_fail(err, 501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
}

int
smtp_parse_helo(const char *args, size_t len, char *out, size_t outsz,
    struct smtp_error *err)
{
	char	 name[ADDR_DOMAIN_MAX + 1];
	size_t	 i = 0, n;

	while (i < len && args[i] == ' ')
		i++;
	for (n = 0; i + n < len && args[i + n] != ' '; n++)
		;
	if (n == 0)
		return smtp_fail(err, 501, "5.5.4", "Syntax: EHLO hostname");
	if (n > ADDR_DOMAIN_MAX || memchr(args + i, '\0', n) != NULL)
		goto invalid;
	memcpy(name, args + i, n);
	name[n] = '\0';
	if (name[0] == '[') {
		if (!addr_literal_valid(name, n))
			goto invalid;
	} else if (!addr_domain_valid(name, 0))
		goto invalid;
	if (n >= outsz)
		return smtp_fail(err, 501, "5.5.4", "Domain name too long");
	memcpy(out, name, n + 1);
	return 0;
 invalid:
	return smtp_fail(err, 501, "5.5.4", "Invalid domain name");
}
