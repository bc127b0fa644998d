/* sandbox_seccomp: the workers' allow-list, with libseccomp. */
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>

#include "echod/sandbox.h"

/* What every worker does after set-up: its loop, its sockets, memory, logging, exit. */
static const char *const common_calls[] = {
	"accept4", "brk", "clock_gettime", "clock_nanosleep", "close", "exit", "exit_group",
	"fcntl", "fstat", "futex", "getpeername", "getpid", "getppid", "getrandom",
	"getsockname", "getsockopt", "gettid", "madvise", "mmap", "mprotect", "mremap", "munmap",
	"newfstatat", "read", "recvfrom", "recvmmsg", "recvmsg", "restart_syscall",
	"rt_sigprocmask", "rt_sigreturn", "sendmmsg", "sendmsg", "sendto", "setsockopt",
	"shutdown", "write", "writev",
};

static const char *const epoll_calls[] = {"epoll_ctl", "epoll_pwait", "epoll_pwait2",
					  "epoll_wait"};
static const char *const uring_calls[] = {"io_uring_enter", "io_uring_register"};

int sandbox_available(void)
{
	return 1;
}

static int allow(scmp_filter_ctx ctx, const char *const *names, size_t n, char *why,
		 size_t whylen)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		int rc;

		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0) {
			snprintf(why, whylen, "seccomp_rule_add(%s): %s", names[i], strerror(-rc));
			return rc;
		}
	}
	return 0;
}

int sandbox_enter(enum backend_kind backend, char *why, size_t whylen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc;

	if (ctx == NULL) {
		snprintf(why, whylen, "seccomp_init failed");
		return -ENOMEM;
	}
	rc = allow(ctx, common_calls, sizeof(common_calls) / sizeof(common_calls[0]), why, whylen);
	if (rc == 0 && backend == BACKEND_IO_URING)
		rc = allow(ctx, uring_calls, sizeof(uring_calls) / sizeof(uring_calls[0]), why,
			   whylen);
	else if (rc == 0)
		rc = allow(ctx, epoll_calls, sizeof(epoll_calls) / sizeof(epoll_calls[0]), why,
			   whylen);
	if (rc == 0) {
		rc = seccomp_load(ctx);
		if (rc < 0)
			snprintf(why, whylen, "seccomp_load: %s", strerror(-rc));
	}
	seccomp_release(ctx);
	return rc;
}
