/* log: one line per event on stderr, "echod: " first, sd-daemon "<N>" priority
 * prefixes when stderr is the journal (JOURNAL_STREAM names it), else a UTC timestamp
 * first ("2026-11-23T09:02:35.123Z echod: ..."): the journal keeps its own.
 * fatal() exists only for start-up. */
#ifndef ECHOD_LOG_H
#define ECHOD_LOG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_NOTICE = 5, LOG_LVL_INFO = 6,
		 LOG_LVL_DEBUG = 7 };

/* verbosity: 0 = warnings and the start-up lines, 1 = info (-v), 2 = debug (-vv), -1 = errors. */
void log_init(int verbosity);
/* Workers prefix their lines with "worker N: ". */
void log_set_worker(int index);
int log_enabled(enum log_level level);
/* What starts a line at level: "<N>" for the journal, "echod: ", "worker N: ".
 * Returns its length (outlen > 40 holds it whole). */
size_t log_prefix(enum log_level level, char *out, size_t outlen);

/* "2026-11-23T09:02:35.123Z": UTC with milliseconds, from the time since the epoch.
 * Pure and async-signal-safe (no time zone file, no locale, no stdio). Returns its
 * length, LOG_TIME_LEN when outlen > LOG_TIME_LEN. */
#define LOG_TIME_LEN 24
size_t log_format_time(long long sec, long nsec, char *out, size_t outlen);
/* What goes before the prefix: the current time and a space, or nothing when stderr is
 * the journal. Async-signal-safe (the seccomp trap writes it). Returns its length. */
size_t log_stamp(char *out, size_t outlen);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "s" unless n is 1: "%lu connection%s", n, log_plural(n). */
static inline const char *log_plural(unsigned long long n)
{
	return n == 1 ? "" : "s";
}

/* Prints the message and exits with status (64, 71, 78...). */
void fatalx(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#ifdef __cplusplus
}
#endif
#endif
