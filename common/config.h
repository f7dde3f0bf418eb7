/*
 * config.h: postern.conf(5), parsed into plain structures.
 * The same parser runs in the parent (from the file) and in the children
 * (from the text the parent ships them), so every process sees the same
 * configuration.  Table files are read through a loader callback so that
 * children, which cannot open files, get the bytes the parent read.
 * SECURITY: the text is trusted as root's, but is still parsed strictly:
 * every field is bounded and every error names file:line:col.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <sys/types.h>
#include <sys/queue.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "table.h"

#define CONF_NAMELEN		64	/* names of tables, actions, pki */
#define CONF_HOSTLEN		256
#define CONF_ERRLEN		512

#define CONF_DEFAULT_SPOOL	"/var/spool/postern"
#define CONF_DEFAULT_SOCKET	"/run/postern/postern.sock"
#define CONF_DEFAULT_CONTROL	"/run/postern/control.sock"
#define CONF_DEFAULT_MAXSIZE	(35 * 1024 * 1024)
#define CONF_DEFAULT_MAXRCPT	1000
#define CONF_DEFAULT_MAXERRORS	10
#define CONF_DEFAULT_TIMEOUT	300	/* seconds, RFC 5321 4.5.3.2.7 */
#define CONF_DEFAULT_EXPIRE	(5 * 24 * 3600)
#define CONF_DEFAULT_WARN	(4 * 3600)
#define CONF_DEFAULT_RETRY_MIN	300
#define CONF_DEFAULT_RETRY_MAX	(4 * 3600)
#define CONF_DEFAULT_TLS_CA	"/etc/ssl/certs/ca-certificates.crt"

enum conf_tls_ciphers {
	CONF_TLS_CIPHERS_DEFAULT,	/* TLS 1.2, ECDHE + AEAD only */
	CONF_TLS_CIPHERS_COMPAT,	/* also TLS 1.0/1.1, CBC, RSA kx */
};

struct pki_conf {
	TAILQ_ENTRY(pki_conf)	 entry;
	char			 name[CONF_HOSTLEN];
	char			 cert[PATH_MAX];
	char			 key[PATH_MAX];
};

enum listen_tls {
	LISTEN_PLAIN,		/* no TLS */
	LISTEN_STARTTLS,	/* "tls": STARTTLS offered */
	LISTEN_STARTTLS_REQUIRE,/* "tls-require": no MAIL before STARTTLS */
	LISTEN_SMTPS,		/* "smtps": implicit TLS, RFC 8314 */
};

struct listen_conf {
	TAILQ_ENTRY(listen_conf) entry;
	int			 is_socket;	/* "listen on socket" */
	char			 addr[CONF_HOSTLEN];	/* "127.0.0.1", "::1",
						   "0.0.0.0", "::", "localhost", "any" */
	uint16_t		 port;		/* default 25 (465 for smtps) */
	char			 path[PATH_MAX];/* socket path, is_socket only */
	enum listen_tls		 tls;
	char			 pki[CONF_HOSTLEN];	/* "" = none */
	char			 auth[CONF_NAMELEN];	/* table name, "" = no AUTH */
	int			 auth_insecure;		/* AUTH without TLS */
	char			 hostname[CONF_HOSTLEN];/* "" = global hostname */
	int			 line;
};

enum action_kind {
	ACTION_MAILDIR,
	ACTION_MBOX,
	ACTION_LMTP,
	ACTION_MDA,
	ACTION_RELAY,
};

struct action_conf {
	TAILQ_ENTRY(action_conf) entry;
	char			 name[CONF_NAMELEN];
	enum action_kind	 kind;
	/*
	 * maildir: path template, default "~/Maildir"; mbox: path template,
	 * default "/var/mail/%{user}"; lmtp: socket path or host:port;
	 * mda: command line; relay: "" or the "host" URL.
	 */
	char			 path[PATH_MAX];
	char			 alias[CONF_NAMELEN];	/* "alias <t>" or "" */
	char			 virtual[CONF_NAMELEN];	/* "virtual <t>" or "" */
	char			 user[CONF_NAMELEN];	/* "user NAME" or "" */
	char			 auth[CONF_NAMELEN];	/* relay "auth <t>" or "" */
	int			 line;
};

enum match_from {
	MATCH_FROM_ANY,
	MATCH_FROM_LOCAL,	/* local socket or a loopback address */
	MATCH_FROM_AUTH,	/* authenticated, optionally user in table */
	MATCH_FROM_SRC,		/* client address in table */
	MATCH_FROM_RDNS,	/* client has a forward-confirmed rDNS */
};

enum match_for {
	MATCH_FOR_ANY,
	MATCH_FOR_LOCAL,	/* domain is the hostname or localhost */
	MATCH_FOR_DOMAIN,	/* domain in table */
	MATCH_FOR_RCPT,		/* whole address in table */
};

struct match_conf {
	TAILQ_ENTRY(match_conf)	 entry;
	int			 from_neg;
	enum match_from		 from;
	char			 from_table[CONF_NAMELEN];	/* "" = none */
	int			 for_neg;
	enum match_for		 for_;
	char			 for_table[CONF_NAMELEN];
	int			 mail_from_neg;
	char			 mail_from[CONF_NAMELEN];	/* "" = any sender */
	int			 reject;	/* "reject" instead of action */
	char			 action[CONF_NAMELEN];
	struct action_conf	*act;		/* resolved; NULL if reject */
	int			 line;
};

TAILQ_HEAD(pki_list, pki_conf);
TAILQ_HEAD(listen_list, listen_conf);
TAILQ_HEAD(action_list, action_conf);
TAILQ_HEAD(match_list, match_conf);

struct postern_conf {
	char			 hostname[CONF_HOSTLEN];	/* default: gethostname */
	char			 spool[PATH_MAX];
	size_t			 max_message_size;
	unsigned int		 max_recipients;	/* per message */
	unsigned int		 max_errors;		/* per session */
	unsigned int		 timeout;		/* idle seconds */
	unsigned int		 queue_expire;		/* seconds */
	unsigned int		 queue_warn;		/* seconds */
	unsigned int		 queue_retry_min;	/* first retry delay, s */
	unsigned int		 queue_retry_max;	/* longest retry delay, s */
	enum conf_tls_ciphers	 tls_ciphers;
	unsigned int		 tls_workers;		/* tlsd processes */
	char			 tls_ca[PATH_MAX];	/* CA bundle, outbound */
	char			 control[PATH_MAX];	/* posternctl's socket */
	char			 control_admin[CONF_NAMELEN];	/* group, "" */
	char			 control_monitor[CONF_NAMELEN];	/* group, "" */
	struct pki_list		 pkis;
	struct table_list	 tables;
	struct listen_list	 listeners;
	struct action_list	 actions;
	struct match_list	 matches;
};

/* One "-D name=value" macro. */
struct conf_macro {
	const char	*name;
	const char	*value;
};

/*
 * Reads a table file's bytes.  Returns 0 and a malloc'd buffer (NUL
 * terminated, len excludes the NUL), or -1 with a message that names the
 * path in err.  The default loader (config_load_file) opens the path,
 * refuses anything but a regular file and files over 64 MiB, and reports
 * "path: strerror".
 */
typedef int (*conf_loader)(void *arg, const char *path, char **text,
    size_t *len, char *err, size_t errsz);
int	config_load_file(void *, const char *, char **, size_t *, char *,
	    size_t);

/*
 * config_parse: parse len bytes of configuration named fname (for error
 * messages); text need not be NUL terminated.  Returns a new
 * configuration with every default applied and every name resolved, or
 * NULL with "fname:line:col: message" in err ("fname: message" for what
 * has no position).  Macros from the command line are defined before the
 * first line; a macro defined in the file may not redefine them (the
 * file's definition is ignored).  A NULL loader means config_load_file.
 * Inline lists in match rules become tables named "@line:col".
 */
struct postern_conf *config_parse(const char *fname, const char *text,
	    size_t len, const struct conf_macro *macros, size_t nmacros,
	    conf_loader, void *loader_arg, char *err, size_t errsz);
/* config_read_file: read fname then config_parse with config_load_file. */
struct postern_conf *config_read_file(const char *fname,
	    const struct conf_macro *, size_t, char *err, size_t errsz);
void	config_free(struct postern_conf *);

struct table		*config_table(const struct postern_conf *, const char *);
struct action_conf	*config_action(const struct postern_conf *, const char *);
struct pki_conf		*config_pki(const struct postern_conf *, const char *);

/*
 * config_parse_size: "35M", "512K", "1G", "100" -> bytes (K, M, G in
 * either case, base 1024); -1 if invalid, zero or overflowing.
 */
int	config_parse_size(const char *, size_t *);
/*
 * config_parse_duration: "30s", "5m", "4h", "5d", "300" -> seconds; -1 if
 * invalid, zero or more than UINT_MAX seconds.
 */
int	config_parse_duration(const char *, unsigned int *);

#endif
