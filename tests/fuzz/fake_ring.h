/*
 * fake_ring: the kernel side of io_uring, played by the completion-level fuzzer
 * (fuzz_uring.c). It defines every symbol of src/uring_kernel.c (the urk_* seam and
 * loop_uring_probe), so the real one is never linked; see fake_ring.c for what it
 * models and what it checks.
 */
#ifndef ECHOD_FAKE_RING_H
#define ECHOD_FAKE_RING_H

#include <stddef.h>
#include <stdint.h>

#include "echod/uring_kernel.h"

/* What a descriptor given to the loop is. */
enum fake_fd_kind { FAKE_LISTEN, FAKE_LISTEN_SVC, FAKE_UDP, FAKE_CONN, FAKE_SVC, FAKE_SIG };

/* Starts one run: the kernel's capabilities, the script of actions (see fake_ring.c),
 * whether the wind-down's peers wait past the drain deadline, and whether to trace.
 * Returns the read end of the pipe the loop takes as its signalfd. */
int fake_begin(const struct urk_caps *caps, const uint8_t *script, size_t len, int slow_wind,
	       int trace);
/* A descriptor the loop owns from now on (listeners, UDP sockets). */
void fake_give_fd(int fd, enum fake_fd_kind kind);
/* After loop_uring_run returned: checks that the loop closed what it was given,
 * releases every descriptor and byte the fake holds. */
void fake_end(void);

#endif
