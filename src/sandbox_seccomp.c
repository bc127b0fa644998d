/* sandbox_seccomp: the workers' allow-list, with libseccomp. */
#include <errno.h>
#include <linux/bpf.h>
#include <linux/sockios.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "echod/log.h"
#include "echod/sandbox.h"

/* What every worker does after set-up: its loop, its sockets, memory, logging, exit;
 * and glibc's abort() (rt_sigprocmask, gettid, getpid, then tgkill on itself, or
 * rt_sigaction back to SIG_DFL when SIGABRT was caught). */
static const char *const common_calls[] = {
	"accept4", "brk", "clock_gettime", "clock_nanosleep", "close", "exit", "exit_group",
	"fcntl", "fstat", "futex", "getpeername", "getpid", "getppid", "getrandom",
	"getsockname", "getsockopt", "gettid", "madvise", "mmap", "mprotect", "mremap", "munmap",
	"newfstatat", "read", "recvfrom", "recvmmsg", "recvmsg", "restart_syscall",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sendmmsg", "sendmsg", "sendto",
	"setsockopt", "shutdown", "write", "writev",
};

static const char *const epoll_calls[] = {"epoll_ctl", "epoll_pwait", "epoll_pwait2",
					  "epoll_wait"};
static const char *const uring_calls[] = {"io_uring_enter", "io_uring_register"};

/* --offload: the worker inserts sockets into the map and asks for SIOCOUTQ. */
static int allow_offload;

void sandbox_allow_offload(void)
{
	allow_offload = 1;
}

/* The SIGSYS handler's state, set before the filter is loaded. */
static struct stats_slot *trap_slot;
static char trap_prefix[96]; /* "<3>echod: worker N: seccomp: system call " */
static size_t trap_prefix_len;

int sandbox_available(void)
{
	return 1;
}

static size_t put_str(char *out, size_t n, size_t cap, const char *s, size_t len)
{
	if (len > cap - n)
		len = cap - n;
	memcpy(out + n, s, len);
	return n + len;
}

static size_t put_uint(char *out, size_t n, size_t cap, unsigned long v)
{
	char digits[24];
	size_t i = sizeof(digits);

	do
		digits[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return put_str(out, n, cap, digits + i, sizeof(digits) - i);
}

/* Async-signal-safe: says which call, records it, dies of SIGSYS (SA_RESETHAND made
 * this the last catch; tgkill on ourselves is in the allow-list). */
static void sandbox_sigsys(int sig, siginfo_t *si, void *uctx)
{
	static const char tail[] = " not in the allow-list\n";
	char line[LOG_TIME_LEN + 2 + sizeof(trap_prefix) + 64];
	size_t n = log_stamp(line, sizeof(line));
	ssize_t rc;

	(void)uctx;
	n = put_str(line, n, sizeof(line), trap_prefix, trap_prefix_len);
	n = put_uint(line, n, sizeof(line), (unsigned long)(unsigned)si->si_syscall);
	n = put_str(line, n, sizeof(line), tail, sizeof(tail) - 1);
	if (trap_slot != NULL) {
		__atomic_store_n(&trap_slot->seccomp_syscall, si->si_syscall, __ATOMIC_RELAXED);
		__atomic_store_n(&trap_slot->seccomp_arch, si->si_arch, __ATOMIC_RELEASE);
	}
	rc = write(STDERR_FILENO, line, n);
	(void)rc;
	syscall(SYS_tgkill, (long)getpid(), (long)gettid(), (long)sig);
}

static int install_trap(struct stats_slot *slot, char *why, size_t whylen)
{
	struct sigaction sa;
	sigset_t sys;

	trap_slot = slot;
	trap_prefix_len = log_prefix(LOG_LVL_ERR, trap_prefix, sizeof(trap_prefix));
	trap_prefix_len = put_str(trap_prefix, trap_prefix_len, sizeof(trap_prefix),
				  "seccomp: system call ", strlen("seccomp: system call "));
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sandbox_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	if (sigaction(SIGSYS, &sa, NULL) < 0 || sigprocmask(SIG_UNBLOCK, &sys, NULL) < 0) {
		snprintf(why, whylen, "SIGSYS handler: %s", strerror(errno));
		return -errno;
	}
	return 0;
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

/* tgkill only at ourselves: abort() and the SIGSYS handler signal their own thread. */
static int allow_tgkill_self(scmp_filter_ctx ctx, char *why, size_t whylen)
{
	/* Spelled out: SCMP_A0() leaves datum_b to the compiler, which clang warns about. */
	struct scmp_arg_cmp self = {
		.arg = 0, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)getpid(), .datum_b = 0};
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, self);

	if (rc < 0)
		snprintf(why, whylen, "seccomp_rule_add(tgkill): %s", strerror(-rc));
	return rc;
}

/* bpf(BPF_MAP_UPDATE_ELEM or BPF_MAP_DELETE_ELEM, ...) and ioctl(fd, SIOCOUTQ, ...),
 * nothing else of either: a worker cannot load a program, make a map or read one. */
static int allow_offload_calls(scmp_filter_ctx ctx, char *why, size_t whylen)
{
	struct scmp_arg_cmp update = {
		.arg = 0, .op = SCMP_CMP_EQ, .datum_a = BPF_MAP_UPDATE_ELEM, .datum_b = 0};
	struct scmp_arg_cmp outq = {.arg = 1, .op = SCMP_CMP_EQ, .datum_a = SIOCOUTQ, .datum_b = 0};
	struct scmp_arg_cmp del = {
		.arg = 0, .op = SCMP_CMP_EQ, .datum_a = BPF_MAP_DELETE_ELEM, .datum_b = 0};
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(bpf), 1, update);

	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(bpf), 1, del);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, outq);
	if (rc < 0)
		snprintf(why, whylen, "seccomp_rule_add(bpf, ioctl): %s", strerror(-rc));
	return rc;
}

static int sandbox_rules(scmp_filter_ctx ctx, enum backend_kind backend, char *why,
			 size_t whylen)
{
	int rc;

	/* A call through another ABI (int 0x80, x32) traps too, and is named as such. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_TRAP);
	if (rc < 0) {
		snprintf(why, whylen, "seccomp_attr_set: %s", strerror(-rc));
		return rc;
	}
	rc = allow(ctx, common_calls, sizeof(common_calls) / sizeof(common_calls[0]), why, whylen);
	if (rc == 0)
		rc = allow_tgkill_self(ctx, why, whylen);
	if (rc == 0 && backend == BACKEND_IO_URING)
		rc = allow(ctx, uring_calls, sizeof(uring_calls) / sizeof(uring_calls[0]), why,
			   whylen);
	else if (rc == 0)
		rc = allow(ctx, epoll_calls, sizeof(epoll_calls) / sizeof(epoll_calls[0]), why,
			   whylen);
	if (rc == 0 && allow_offload)
		rc = allow_offload_calls(ctx, why, whylen);
	return rc;
}

int sandbox_enter(enum backend_kind backend, struct stats_slot *slot, char *why, size_t whylen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int rc;

	if (ctx == NULL) {
		snprintf(why, whylen, "seccomp_init failed");
		return -ENOMEM;
	}
	rc = sandbox_rules(ctx, backend, why, whylen);
	if (rc == 0)
		rc = install_trap(slot, why, whylen);
	if (rc == 0) {
		rc = seccomp_load(ctx);
		if (rc < 0)
			snprintf(why, whylen, "seccomp_load: %s", strerror(-rc));
	}
	seccomp_release(ctx);
	return rc;
}

const char *sandbox_syscall_name(uint32_t arch, int nr, char *out, size_t outlen)
{
	char *name = seccomp_syscall_resolve_num_arch(arch, nr);

	if (name == NULL)
		return NULL;
	snprintf(out, outlen, "%s", name);
	free(name);
	return out;
}
