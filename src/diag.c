/* diag: the supervisor's words for a worker's death or hang. */
#include "echod/diag.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "echod/sandbox.h"

enum log_level diag_exit_line(const struct diag_exit *e, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "worker %u (pid %d) ", e->lslot, (int)e->pid);
	int sig = WIFSIGNALED(e->status) ? WTERMSIG(e->status) : 0;
	char name[64];

	if (n < 0 || (size_t)n >= outlen)
		return LOG_LVL_WARN;
	out += n;
	outlen -= (size_t)n;
	if (e->stuck && sig == SIGKILL) {
		snprintf(out, outlen, "killed as stuck (its loop had stopped turning)");
		return LOG_LVL_WARN;
	}
	if (WIFEXITED(e->status) && WEXITSTATUS(e->status) == 0 && e->retiring) {
		snprintf(out, outlen, "stopped");
		return LOG_LVL_INFO;
	}
	if (sig == 0) {
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(e->status));
		return LOG_LVL_WARN;
	}
	n = snprintf(out, outlen, "killed by signal %d (%s)", sig, strsignal(sig));
	if (n < 0 || (size_t)n >= outlen || sig != SIGSYS || e->seccomp_arch == 0)
		return LOG_LVL_WARN;
	if (sandbox_syscall_name(e->seccomp_arch, e->seccomp_syscall, name, sizeof(name)) != NULL)
		snprintf(out + n, outlen - (size_t)n,
			 ": system call %d (%s) is not in the seccomp allow-list",
			 (int)e->seccomp_syscall, name);
	else
		snprintf(out + n, outlen - (size_t)n,
			 ": system call %d is not in the seccomp allow-list",
			 (int)e->seccomp_syscall);
	return LOG_LVL_WARN;
}

static const char *state_words(char state)
{
	switch (state) {
	case 'R':
		return "running: spinning";
	case 'S':
		return "sleeping: blocked";
	case 'D':
		return "uninterruptible sleep: blocked in the kernel";
	case 'T':
		return "stopped by a signal";
	case 't':
		return "stopped by a tracer";
	case 'Z':
		return "zombie";
	default:
		return "unusual";
	}
}

/* Appends one part, ", " between parts; returns the new length (clamped). */
static size_t __attribute__((format(printf, 4, 5)))
add(char *out, size_t n, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (n + 1 >= outlen)
		return n;
	if (n > 0) {
		k = snprintf(out + n, outlen - n, ", ");
		n += (size_t)k < outlen - n ? (size_t)k : outlen - n - 1;
	}
	va_start(ap, fmt);
	k = vsnprintf(out + n, outlen - n, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += (size_t)k < outlen - n ? (size_t)k : outlen - n - 1;
	return n;
}

static size_t describe_syscall(const char *sc, char *out, size_t n, size_t outlen)
{
	char name[64];
	char *end;
	long nr;

	if (strncmp(sc, "running", 7) == 0)
		return add(out, n, outlen, "on a CPU, not in a system call");
	nr = strtol(sc, &end, 10);
	if (end == sc)
		return n;
	if (nr < 0)
		return add(out, n, outlen, "not in a system call");
	if (sandbox_syscall_name(0, (int)nr, name, sizeof(name)) != NULL)
		return add(out, n, outlen, "in system call %ld (%s)", nr, name);
	return add(out, n, outlen, "in system call %ld", nr);
}

void diag_proc_describe(const char *stat, const char *syscall, const char *wchan, char *out,
			size_t outlen)
{
	const char *paren = stat != NULL ? strrchr(stat, ')') : NULL;
	size_t n = 0;

	out[0] = '\0';
	if (outlen < 2)
		return;
	/* "PID (COMM) S ...": the name may hold anything, so the state follows the last ')' */
	if (paren != NULL && paren[1] == ' ' && paren[2] != '\0') {
		n = add(out, n, outlen, "state %c (%s)", paren[2], state_words(paren[2]));
	}
	if (syscall != NULL)
		n = describe_syscall(syscall, out, n, outlen);
	if (wchan != NULL && wchan[0] != '\0' && strcmp(wchan, "0") != 0) {
		n = add(out, n, outlen, "wchan %.*s", (int)strcspn(wchan, "\n"), wchan);
	}
	if (n == 0)
		snprintf(out, outlen, "nothing known from /proc");
}

/* The text of a small /proc file, or NULL. */
static const char *read_small(pid_t pid, const char *what, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

void diag_proc(pid_t pid, char *out, size_t outlen)
{
	char stat[512], sc[256], wchan[128];

	diag_proc_describe(read_small(pid, "stat", stat, sizeof(stat)),
			   read_small(pid, "syscall", sc, sizeof(sc)),
			   read_small(pid, "wchan", wchan, sizeof(wchan)), out, outlen);
}
