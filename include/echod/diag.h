/*
 * diag: what the supervisor says about a worker: why a reaped one died (signal,
 * status, the system call seccomp refused, or a hang the supervisor ended) and what
 * a stuck one was doing, from /proc. Formatting is pure, for the unit tests.
 */
#ifndef ECHOD_DIAG_H
#define ECHOD_DIAG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "echod/log.h"

#ifdef __cplusplus
extern "C" {
#endif

struct diag_exit {
	unsigned lslot; /* worker N */
	pid_t pid;
	int status;		 /* from waitpid */
	int retiring;		 /* told to stop: exit 0 is expected */
	int stuck;		 /* SIGKILLed by the supervisor: its loop stopped turning */
	int32_t seccomp_syscall; /* the call outside the allow-list, where */
	uint32_t seccomp_arch;	 /*   seccomp_arch != 0 (the worker's SIGSYS handler) */
};

/* The log line for a reaped worker, without "echod: "; returns the level for it. */
enum log_level diag_exit_line(const struct diag_exit *e, char *out, size_t outlen);

/* "state S (sleeping: blocked), in system call 232 (epoll_wait), wchan ep_poll" from
 * the texts of /proc/PID/stat, /proc/PID/syscall and /proc/PID/wchan; each may be NULL
 * (unreadable), and its part is then left out ("nothing known" when all are). */
void diag_proc_describe(const char *stat, const char *syscall, const char *wchan, char *out,
			size_t outlen);
/* The same for a live process: reads its /proc files. */
void diag_proc(pid_t pid, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
