/*
 * log.c: syslog/stderr logging shared by all Postern processes.
 * SECURITY: formats only what callers pass; peer text must already be
 * escaped with log_escape().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <vis.h>

#include "log.h"

static const char	*log_name = "postern";
static int		 log_foreground = 1;
static int		 log_verbose;

static void	log_vline(int, const char *, va_list)
		    __attribute__((format(printf, 2, 0)));

void
log_init(const char *name, int foreground, int verbose)
{
	log_name = name;
	log_foreground = foreground;
	log_verbose = verbose;
	if (!foreground)
		openlog(name, LOG_PID | LOG_NDELAY, LOG_MAIL);
	tzset();
}

void
log_procname(const char *name)
{
	log_name = name;
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return log_verbose;
}

/* Write one line; stderr lines carry a timestamp and the process name. */
static void
log_vline(int pri, const char *fmt, va_list ap)
{
	char		 line[4096];
	int		 saved = errno;

	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		strlcpy(line, "log: format error", sizeof(line));
	if (log_foreground) {
		struct timespec	 ts;
		struct tm	 tm;
		char		 stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s[%d]: %s\n", stamp,
		    ts.tv_nsec / 1000000, log_name, (int)getpid(), line);
		fflush(stderr);
	} else
		syslog(pri, "%s", line);
	errno = saved;
}

#define LOG_BODY(pri) do {			\
	va_list ap;				\
	va_start(ap, fmt);			\
	log_vline((pri), fmt, ap);		\
	va_end(ap);				\
} while (0)

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING);
}

void
log_debug(const char *fmt, ...)
{
	if (log_verbose)
		LOG_BODY(LOG_DEBUG);
}

/* log_warn: like log_warnx with ": strerror(errno)" appended. */
void
log_warn(const char *fmt, ...)
{
	char	 buf[2048];
	int	 saved = errno;
	va_list	 ap;

	va_start(ap, fmt);
	if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
		buf[0] = '\0';
	va_end(ap);
	log_warnx("%s: %s", buf, strerror(saved));
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	char	 buf[2048];
	int	 saved = errno;
	va_list	 ap;

	va_start(ap, fmt);
	if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
		buf[0] = '\0';
	va_end(ap);
	log_warnx("fatal: %s: %s", buf, strerror(saved));
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	char	 buf[2048];
	va_list	 ap;

	va_start(ap, fmt);
	if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
		buf[0] = '\0';
	va_end(ap);
	log_warnx("fatal: %s", buf);
	exit(1);
}

const char *
log_escape(char *dst, size_t dstsz, const char *src, size_t len)
{
	char	 enc[8];
	size_t	 i, o = 0, n;

	if (dstsz == 0)
		return dst;
	dst[0] = '\0';
	for (i = 0; i < len; i++) {
		/* Encode byte by byte so that NUL is shown, not cut at. */
		vis(enc, (unsigned char)src[i], VIS_SAFE | VIS_CSTYLE | VIS_NL |
		    VIS_TAB | VIS_OCTAL, i + 1 < len ? src[i + 1] : '\0');
		n = strlen(enc);
		if (o + n + 4 > dstsz) {
			if (o + 4 <= dstsz)
				memcpy(dst + o, "...", 4);
			return dst;
		}
		memcpy(dst + o, enc, n + 1);
		o += n;
	}
	return dst;
}
