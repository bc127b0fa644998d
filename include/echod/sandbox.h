/*
 * sandbox: the seccomp allow-list a worker enters once its backend is set up. It
 * allows exactly the system calls the running backend makes from then on; any other
 * kills the worker (SECCOMP_RET_KILL_PROCESS), which the supervisor logs and
 * respawns. sandbox_seccomp.c with libseccomp, sandbox_none.c without.
 */
#ifndef ECHOD_SANDBOX_H
#define ECHOD_SANDBOX_H

#include <stddef.h>

#include "echod/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build can filter system calls. */
int sandbox_available(void);
/* Loads the filter for backend. Returns 0, or -errno with the reason in why. */
int sandbox_enter(enum backend_kind backend, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
