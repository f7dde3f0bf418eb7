/*
 * log.h: logging for every Postern process.
 * Lines go to syslog (facility mail) or, in foreground mode, to stderr.
 * Each line is "key=value" fields; text that came from a peer must be
 * passed through log_escape() first.
 * SECURITY: no privilege needed; never log AUTH data or key material.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>
#include <stddef.h>

#ifndef __dead
#define __dead	__attribute__((__noreturn__))
#endif

/* log_init: name is the process name shown in every line ("smtpd"). */
void	log_init(const char *name, int foreground, int verbose);
void	log_setverbose(int);
int	log_getverbose(void);
void	log_procname(const char *);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2)))
	    __attribute__((noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2)))
	    __attribute__((noreturn));

/*
 * log_escape: make untrusted bytes safe for a log line.  Writes at most
 * dstsz-1 characters plus NUL into dst using strnvis(VIS_SAFE|VIS_CSTYLE|
 * VIS_NL|VIS_TAB|VIS_OCTAL); longer input is cut and ends in "...".
 * Returns dst.
 */
const char *log_escape(char *dst, size_t dstsz, const char *src, size_t len);

#endif
