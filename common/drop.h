/*
 * drop.h: the offline drop file that sendmail writes into SPOOL/offline
 * when posternd is not running, and that queue imports when it starts.
 *
 *   "POSTERN-DROP 1\n"
 *   "sender " ADDRESS "\n"          ("sender\n" or "sender \n": the null sender)
 *   "rcpt " ADDRESS "\n"            (1 to DROP_MAXRCPT lines)
 *   "\n"
 *   the message in SMTP wire form: CRLF line ends, not dot-stuffed
 *
 * An ADDRESS is local@domain or a bare local name (qualified by queue).
 * The submitting user is the file's owner, never a field of the file.
 * SECURITY: the file comes from any local user; drop_parse() checks every
 * byte and bound, and refuses a bare CR or LF in the message.
 */
#ifndef POSTERN_DROP_H
#define POSTERN_DROP_H

#include <stddef.h>

#define DROP_MAGIC	"POSTERN-DROP 1\n"
#define DROP_ADDRMAX	600
#define DROP_MAXRCPT	1000
#define DROP_DIR	"offline"	/* under the spool */

struct drop_msg {
	char		 sender[DROP_ADDRMAX];
	char		(*rcpts)[DROP_ADDRMAX];	/* nrcpts entries, malloc'd */
	size_t		 nrcpts;
	const char	*body;			/* points into the buffer */
	size_t		 bodylen;
};

/* Parse len bytes; 0 and *m filled (free with drop_free), or -1 with a
 * reason in err. */
int	drop_parse(const char *buf, size_t len, struct drop_msg *m, char *err,
	    size_t errsz);
void	drop_free(struct drop_msg *);

#endif
