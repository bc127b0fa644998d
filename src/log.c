/* log: stderr lines with optional sd-daemon priority prefixes. */
#include "echod/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	n = (int)log_prefix(level, line, sizeof(line));
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
