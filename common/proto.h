/*
 * proto.h: the messages between Postern processes, and their one encoder
 * and one strict decoder each.  A decoder returns -1 on any short,
 * oversized or trailing payload; the receiver then treats the peer as
 * broken (fatalx).  The id in the frame header is the session id
 * (smtpd <-> queue), the envelope id (queue <-> parent) or 0.
 * SECURITY: decoders trust nothing; they bound every string.
 */
#ifndef POSTERN_PROTO_H
#define POSTERN_PROTO_H

#include <sys/types.h>
#include <stdint.h>

#include "imsg.h"

#define PROTO_ADDRLEN	600	/* formatted mail address, with quotes */
#define PROTO_HOSTLEN	256
#define PROTO_IPLEN	64
#define PROTO_REPLYLEN	512
#define PROTO_NAMELEN	64

enum imsg_type {
	/* parent -> smtpd, queue: configuration, in this order */
	IMSG_CONF_BLOB = 1,	/* a piece of the config or of a table file */
	IMSG_CONF_USER,		/* one system user (to queue only) */
	IMSG_CONF_END,		/* parse what came; macros ride along */
	IMSG_LISTENER_FD,	/* parent -> smtpd: a listening socket */

	/* smtpd -> queue, and the replies */
	IMSG_SMTP_MAIL = 20,
	IMSG_SMTP_MAIL_RESULT,
	IMSG_SMTP_RCPT,
	IMSG_SMTP_RCPT_RESULT,
	IMSG_SMTP_DATA,		/* message bytes, no reply */
	IMSG_SMTP_COMMIT,
	IMSG_SMTP_COMMIT_RESULT,
	IMSG_SMTP_ROLLBACK,	/* no reply */

	/* queue -> parent: local delivery, and the result */
	IMSG_DELIVER_LOCAL = 40,
	IMSG_DELIVER_RESULT,

	/* parent -> tlsd: keys and settings, then READY; parent -> smtpd:
	 * the pipe to one tlsd worker */
	IMSG_TLS_SETUP = 60,
	IMSG_TLS_PKI,
	IMSG_TLS_CA,		/* a piece of the CA bundle */
	IMSG_TLS_SETUP_END,
	IMSG_TLS_WORKER_FD,

	/* smtpd <-> tlsd, id = session id */
	IMSG_TLS_OPEN = 70,	/* smtpd: start a session */
	IMSG_TLS_CIPHER,	/* ciphertext, both ways */
	IMSG_TLS_CLEAR,		/* cleartext, both ways */
	IMSG_TLS_HANDSHAKE,	/* tlsd: the handshake is done */
	IMSG_TLS_CLOSE,		/* smtpd: close_notify, or forget */
	IMSG_TLS_CLOSED,	/* tlsd: the session is over */

	/* parent -> queue: an accepted control connection (fd attached) */
	IMSG_CTL_CONN = 90,
	/* posternctl -> queue over the control socket, and the replies */
	IMSG_CTL_SHOW_QUEUE = 100,
	IMSG_CTL_SHOW_MESSAGE,	/* msg_ctl_id */
	IMSG_CTL_SHOW_STATS,
	IMSG_CTL_SCHEDULE,	/* msg_ctl_id, 0 = all */
	IMSG_CTL_REMOVE,
	IMSG_CTL_HOLD,
	IMSG_CTL_RELEASE,
	IMSG_CTL_PAUSE,		/* msg_ctl_what */
	IMSG_CTL_RESUME,
	IMSG_CTL_RELOAD,
	IMSG_CTL_LOG,		/* msg_ctl_what: 1 verbose, 0 brief */
	IMSG_CTL_ENVELOPE = 120,/* one queued envelope */
	IMSG_CTL_HEADERS,	/* the headers of a message (show message) */
	IMSG_CTL_STAT,		/* one counter or gauge */
	IMSG_CTL_END,		/* the end of a reply */
	/* queue -> parent */
	IMSG_CTL_PARENT_RELOAD = 130,
	/* smtpd and parent -> queue: a gauge or counter for show stats */
	IMSG_STATS_SET = 140,	/* msg_ctl_stat */
};

/* IMSG_CONF_BLOB: kind 0 = the configuration, 1 = a table file. */
struct msg_conf_blob {
	uint8_t		 kind;
	char		 path[4096];
	const uint8_t	*data;		/* points into the imsg */
	size_t		 len;
};

struct msg_conf_user {
	char		 name[PROTO_NAMELEN];
	uint32_t	 uid;
	uint32_t	 gid;
	char		 home[4096];
};

#define PROTO_MAXMACROS	64
struct msg_conf_end {
	uint32_t	 nmacros;
	char		 name[PROTO_MAXMACROS][PROTO_NAMELEN];
	char		 value[PROTO_MAXMACROS][1024];
};

struct msg_listener_fd {
	uint32_t	 index;		/* position of the listen statement */
};

struct msg_smtp_mail {
	uint8_t		 local;		/* local socket */
	char		 client[PROTO_IPLEN];
	char		 helo[PROTO_HOSTLEN];
	char		 auth_user[PROTO_HOSTLEN];
	char		 sender[PROTO_ADDRLEN];
	uint8_t		 smtputf8;
	uint8_t		 body;		/* enum smtp_body */
	uint64_t	 size;		/* SIZE= declared, 0 if none */
	int64_t		 owner;		/* local socket: caller's uid, else -1 */
};

struct msg_smtp_result {		/* MAIL, RCPT and COMMIT results */
	uint8_t		 ok;
	uint64_t	 msgid;		/* MAIL and COMMIT */
	char		 reply[PROTO_REPLYLEN];	/* full reply line if !ok */
};

struct msg_smtp_rcpt {
	uint64_t	 msgid;
	char		 rcpt[PROTO_ADDRLEN];
	uint32_t	 notify;
	char		 orcpt[PROTO_ADDRLEN + 16];
};

struct msg_smtp_data {
	uint64_t	 msgid;
	const uint8_t	*data;		/* points into the imsg */
	size_t		 len;
};

struct msg_smtp_commit {		/* COMMIT and ROLLBACK */
	uint64_t	 msgid;
	uint8_t		 refuse;	/* smtpd already knows it is bad */
};

struct msg_deliver_local {
	char		 action[PROTO_NAMELEN];
	char		 mailbox[PROTO_HOSTLEN];	/* user or mailbox name */
	char		 sender[PROTO_ADDRLEN];
	char		 rcpt[PROTO_ADDRLEN];
	int64_t		 ctime;
	uint8_t		 retry;		/* tried before: maybe delivered */
};

enum deliver_status {
	DELIVER_OK = 0,
	DELIVER_TEMPFAIL = 1,
	DELIVER_PERMFAIL = 2,
};

struct msg_deliver_result {
	uint32_t	 status;	/* enum deliver_status */
	char		 text[PROTO_REPLYLEN];
};

struct msg_tls_setup {
	uint8_t		 ciphers;	/* enum conf_tls_ciphers */
	uint64_t	 cache_bytes;	/* session cache size */
};

struct msg_tls_pki {
	char		 name[PROTO_HOSTLEN];
	const uint8_t	*cert;		/* PEM chain, points into the imsg */
	size_t		 certlen;
	const uint8_t	*key;		/* PEM key, points into the imsg */
	size_t		 keylen;
};

struct msg_tls_worker_fd {
	uint32_t	 index;
};

#define TLS_OPEN_SERVER	1
#define TLS_OPEN_CLIENT	2
struct msg_tls_open {
	uint8_t		 mode;		/* TLS_OPEN_SERVER or _CLIENT */
	char		 name[PROTO_HOSTLEN];	/* pki, or server name */
};

struct msg_tls_bytes {			/* CIPHER and CLEAR */
	const uint8_t	*data;		/* points into the imsg */
	size_t		 len;
};

struct msg_tls_handshake {
	char		 version[16];
	char		 suite[64];
	char		 sni[PROTO_HOSTLEN];
	uint8_t		 resumed;
	uint8_t		 verified;	/* client sessions */
	char		 why[PROTO_REPLYLEN];
};

#define TLS_CLOSE_NOTIFY	1	/* send close_notify, then CLOSED */
#define TLS_CLOSE_FORGET	2	/* the client is gone: just free */
struct msg_tls_close {
	uint8_t		 how;
};

struct msg_tls_closed {
	uint8_t		 failed;
	char		 reason[PROTO_REPLYLEN];
};

struct msg_ctl_conn {
	uint32_t	 uid;
	uint32_t	 gid;
	uint8_t		 admin;		/* may change anything */
	uint8_t		 monitor;	/* may read everything */
};

struct msg_ctl_id {
	uint64_t	 id;		/* envelope or message id, 0 = all */
};

#define CTL_WHAT_SMTP		1
#define CTL_WHAT_DELIVERY	2
struct msg_ctl_what {
	uint8_t		 what;		/* CTL_WHAT_*, or 0/1 for LOG */
};

/* Envelope states as posternctl shows them. */
#define CTL_STATE_PENDING	0
#define CTL_STATE_INFLIGHT	1
#define CTL_STATE_DEFERRED	2
#define CTL_STATE_HELD		3
struct msg_ctl_envelope {
	uint64_t	 evpid;
	uint64_t	 msgid;
	char		 sender[PROTO_ADDRLEN];
	char		 rcpt[PROTO_ADDRLEN];
	uint8_t		 state;
	uint32_t	 attempts;
	int64_t		 ctime;
	int64_t		 next_try;
	uint64_t	 size;
	char		 last_error[1024];
};

struct msg_ctl_stat {
	char		 name[PROTO_NAMELEN];
	int64_t		 value;
};

struct msg_ctl_end {
	uint8_t		 ok;
	uint64_t	 count;		/* envelopes affected, or listed */
	char		 error[PROTO_REPLYLEN];	/* one line, if !ok */
};

void	proto_enc_ctl_conn(struct imsg_payload *, const struct msg_ctl_conn *);
int	proto_dec_ctl_conn(struct imsg *, struct msg_ctl_conn *);
void	proto_enc_ctl_id(struct imsg_payload *, const struct msg_ctl_id *);
int	proto_dec_ctl_id(struct imsg *, struct msg_ctl_id *);
void	proto_enc_ctl_what(struct imsg_payload *, const struct msg_ctl_what *);
int	proto_dec_ctl_what(struct imsg *, struct msg_ctl_what *);
void	proto_enc_ctl_envelope(struct imsg_payload *,
	    const struct msg_ctl_envelope *);
int	proto_dec_ctl_envelope(struct imsg *, struct msg_ctl_envelope *);
void	proto_enc_ctl_stat(struct imsg_payload *, const struct msg_ctl_stat *);
int	proto_dec_ctl_stat(struct imsg *, struct msg_ctl_stat *);
void	proto_enc_ctl_end(struct imsg_payload *, const struct msg_ctl_end *);
int	proto_dec_ctl_end(struct imsg *, struct msg_ctl_end *);

void	proto_enc_tls_setup(struct imsg_payload *, const struct msg_tls_setup *);
int	proto_dec_tls_setup(struct imsg *, struct msg_tls_setup *);
void	proto_enc_tls_pki(struct imsg_payload *, const struct msg_tls_pki *);
int	proto_dec_tls_pki(struct imsg *, struct msg_tls_pki *);
/* Compose one frame carrying bytes (TLS_CIPHER/CLEAR, TLS_CA, CTL_HEADERS). */
int	proto_compose_bytes(struct imsgbuf *, uint16_t type, uint64_t id,
	    const void *, size_t);
void	proto_enc_tls_bytes(struct imsg_payload *, const struct msg_tls_bytes *);
int	proto_dec_tls_bytes(struct imsg *, struct msg_tls_bytes *);
void	proto_enc_tls_worker_fd(struct imsg_payload *,
	    const struct msg_tls_worker_fd *);
int	proto_dec_tls_worker_fd(struct imsg *, struct msg_tls_worker_fd *);
void	proto_enc_tls_open(struct imsg_payload *, const struct msg_tls_open *);
int	proto_dec_tls_open(struct imsg *, struct msg_tls_open *);
void	proto_enc_tls_handshake(struct imsg_payload *,
	    const struct msg_tls_handshake *);
int	proto_dec_tls_handshake(struct imsg *, struct msg_tls_handshake *);
void	proto_enc_tls_close(struct imsg_payload *, const struct msg_tls_close *);
int	proto_dec_tls_close(struct imsg *, struct msg_tls_close *);
void	proto_enc_tls_closed(struct imsg_payload *,
	    const struct msg_tls_closed *);
int	proto_dec_tls_closed(struct imsg *, struct msg_tls_closed *);

void	proto_enc_conf_blob(struct imsg_payload *, const struct msg_conf_blob *);
int	proto_dec_conf_blob(struct imsg *, struct msg_conf_blob *);
void	proto_enc_conf_user(struct imsg_payload *, const struct msg_conf_user *);
int	proto_dec_conf_user(struct imsg *, struct msg_conf_user *);
void	proto_enc_conf_end(struct imsg_payload *, const struct msg_conf_end *);
int	proto_dec_conf_end(struct imsg *, struct msg_conf_end *);
void	proto_enc_listener_fd(struct imsg_payload *,
	    const struct msg_listener_fd *);
int	proto_dec_listener_fd(struct imsg *, struct msg_listener_fd *);
void	proto_enc_smtp_mail(struct imsg_payload *, const struct msg_smtp_mail *);
int	proto_dec_smtp_mail(struct imsg *, struct msg_smtp_mail *);
void	proto_enc_smtp_result(struct imsg_payload *,
	    const struct msg_smtp_result *);
int	proto_dec_smtp_result(struct imsg *, struct msg_smtp_result *);
void	proto_enc_smtp_rcpt(struct imsg_payload *, const struct msg_smtp_rcpt *);
int	proto_dec_smtp_rcpt(struct imsg *, struct msg_smtp_rcpt *);
void	proto_enc_smtp_data(struct imsg_payload *, const struct msg_smtp_data *);
int	proto_dec_smtp_data(struct imsg *, struct msg_smtp_data *);
void	proto_enc_smtp_commit(struct imsg_payload *,
	    const struct msg_smtp_commit *);
int	proto_dec_smtp_commit(struct imsg *, struct msg_smtp_commit *);
void	proto_enc_deliver_local(struct imsg_payload *,
	    const struct msg_deliver_local *);
int	proto_dec_deliver_local(struct imsg *, struct msg_deliver_local *);
void	proto_enc_deliver_result(struct imsg_payload *,
	    const struct msg_deliver_result *);
int	proto_dec_deliver_result(struct imsg *, struct msg_deliver_result *);

/* proto_decode_any: run the decoder of m's type (for the fuzzer); -1 if
 * the type is unknown or the payload is malformed. */
int	proto_decode_any(struct imsg *);

#endif
