/*
 * sandbox: the seccomp allow-list a worker enters once its backend is set up. It
 * allows exactly the system calls the running backend makes from then on, and what
 * abort() needs (so a failed assertion or heap check dies of SIGABRT, saying why).
 * Any other call is not made: it raises SIGSYS (SECCOMP_RET_TRAP), whose handler
 * writes "echod: worker N: seccomp: system call NR not in the allow-list" to stderr,
 * records NR in the worker's stats slot and dies of SIGSYS, which the supervisor
 * logs with the call's name and respawns. sandbox_seccomp.c with libseccomp,
 * sandbox_none.c without.
 */
#ifndef ECHOD_SANDBOX_H
#define ECHOD_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include "echod/config.h"
#include "echod/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build can filter system calls. */
int sandbox_available(void);
/* The filter sandbox_enter loads will also allow what an offloading worker calls:
 * bpf(BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM) and ioctl(SIOCOUTQ), with only those
 * arguments. */
void sandbox_allow_offload(void);
/* Installs the SIGSYS handler (it records a forbidden call in slot, which may be
 * NULL), then loads the filter for backend. Returns 0, or -errno with the reason in
 * why. The filter is the process's for good: call it in the worker, after fork. */
int sandbox_enter(enum backend_kind backend, struct stats_slot *slot, char *why, size_t whylen);
/* The name of system call nr of arch (an AUDIT_ARCH_* value, 0: this machine's), or
 * NULL when unknown or the build has no libseccomp to ask. Not for a sandboxed
 * process (it allocates); out holds the name. */
const char *sandbox_syscall_name(uint32_t arch, int nr, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
