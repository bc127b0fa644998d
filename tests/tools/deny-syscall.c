/*
 * deny-io-uring PROGRAM [ARG...]   (built with DENY_NR=__NR_io_uring_setup)
 * deny-bpf PROGRAM [ARG...]        (built with DENY_NR=__NR_bpf)
 *
 * Runs PROGRAM under a seccomp filter that makes one system call, DENY_NR, fail with
 * EPERM, as a container's seccomp profile would (or kernel.io_uring_disabled=2, or a
 * missing CAP_BPF). The tests use deny-io-uring to check that echod -b auto falls
 * back to epoll and -b io_uring exits 71; deny-bpf, that --offload=auto falls back to
 * the user-space echo (saying why, once) and --offload=sockmap exits 71.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(DENY_NR) || !defined(DENY_NAME)
#error "deny-syscall: build it with DENY_NR and DENY_NAME defined"
#endif

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "deny-syscall: unknown architecture"
#endif

int main(int argc, char **argv)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DENY_NR, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PROGRAM [ARG...]\n", DENY_NAME);
		return 64;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		fprintf(stderr, "%s: seccomp: %s\n", DENY_NAME, strerror(errno));
		return 71;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "%s: exec %s: %s\n", DENY_NAME, argv[1], strerror(errno));
	return 127;
}
