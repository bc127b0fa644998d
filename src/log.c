/* log: stderr lines with sd-daemon priority prefixes for the journal, else timestamps. */
#include "echod/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int log_verbosity;
static int log_journal;    /* stderr is the journal: use "<N>" prefixes */
static int log_worker = -1;

/* JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected to stderr. */
static int log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(int verbosity)
{
	log_verbosity = verbosity;
	log_journal = log_stderr_is_journal();
}

void log_set_worker(int index)
{
	log_worker = index;
}

int log_enabled(enum log_level level)
{
	return (int)level <= LOG_LVL_NOTICE + log_verbosity;
}

/* Days since 1970-01-01 to a civil date (the inverse of H. Hinnant's days_from_civil). */
static void log_civil(long long days, long long *y, unsigned *m, unsigned *d)
{
	long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (long long)yoe + era * 400 + (*m <= 2);
}

/* width decimal digits of v, zero-padded. */
static char *put_digits(char *p, unsigned long long v, int width)
{
	for (int i = width - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + width;
}

size_t log_format_time(long long sec, long nsec, char *out, size_t outlen)
{
	long long days = (sec >= 0 ? sec : sec - 86399) / 86400, rem = sec - days * 86400, y;
	char buf[LOG_TIME_LEN + 1], *p = buf;
	unsigned m, d;
	size_t n;

	log_civil(days, &y, &m, &d);
	if (y < 0 || y > 9999 || outlen == 0)
		y = 0;
	p = put_digits(p, (unsigned long long)y, 4);
	*p++ = '-';
	p = put_digits(p, m, 2);
	*p++ = '-';
	p = put_digits(p, d, 2);
	*p++ = 'T';
	p = put_digits(p, (unsigned long long)rem / 3600, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned long long)rem / 60 % 60, 2);
	*p++ = ':';
	p = put_digits(p, (unsigned long long)rem % 60, 2);
	*p++ = '.';
	p = put_digits(p, (unsigned long long)nsec / 1000000 % 1000, 3);
	*p++ = 'Z';
	n = (size_t)(p - buf);
	if (outlen == 0)
		return 0;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, buf, n);
	out[n] = '\0';
	return n;
}

size_t log_stamp(char *out, size_t outlen)
{
	struct timespec ts;
	size_t n;

	if (outlen > 0)
		out[0] = '\0';
	if (log_journal || outlen < LOG_TIME_LEN + 2 || clock_gettime(CLOCK_REALTIME, &ts) < 0)
		return 0;
	n = log_format_time((long long)ts.tv_sec, ts.tv_nsec, out, outlen);
	out[n++] = ' ';
	out[n] = '\0';
	return n;
}

size_t log_prefix(enum log_level level, char *out, size_t outlen)
{
	int n = 0;

	if (log_journal)
		n = snprintf(out, outlen, "<%d>", (int)level);
	n += snprintf(out + n, outlen - (size_t)n, "echod: ");
	if (log_worker >= 0)
		n += snprintf(out + n, outlen - (size_t)n, "worker %d: ", log_worker);
	return (size_t)n < outlen ? (size_t)n : outlen - 1;
}

static void log_vemit(enum log_level level, const char *fmt, va_list ap, const char *err)
{
	char line[1024];
	int n = 0;

	if (!log_enabled(level))
		return;
	n = (int)log_stamp(line, sizeof(line));
	n += (int)log_prefix(level, line + n, sizeof(line) - (size_t)n);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (n >= (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	if (err != NULL)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", err);
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line so lines from several processes never interleave. */
	while (write(STDERR_FILENO, line, (size_t)n) < 0 && errno == EINTR)
		;
}

#define LOG_FORWARD(level, err)                                                                    \
	do {                                                                                       \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vemit(level, fmt, ap, err);                                                    \
		va_end(ap);                                                                        \
	} while (0)

void log_msg(enum log_level level, const char *fmt, ...)
{
	LOG_FORWARD(level, NULL);
}

void log_warn(const char *fmt, ...)
{
	const char *err = strerror(errno);

	LOG_FORWARD(LOG_LVL_WARN, err);
}

void log_warnx(const char *fmt, ...)
{
	LOG_FORWARD(LOG_LVL_WARN, NULL);
}

void log_info(const char *fmt, ...)
{
	LOG_FORWARD(LOG_LVL_INFO, NULL);
}

void log_debug(const char *fmt, ...)
{
	LOG_FORWARD(LOG_LVL_DEBUG, NULL);
}

void fatalx(int status, const char *fmt, ...)
{
	LOG_FORWARD(LOG_LVL_ERR, NULL);
	exit(status);
}
