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
