/*
 * uring_kernel: every way the io_uring backend reaches the kernel's io_uring.
 *
 * loop_uring.c and udp_uring.c prepare SQEs and read CQEs through liburing's inline
 * helpers on the ring's shared memory; the few calls that enter or configure the
 * kernel are these, and nothing else. src/uring_kernel.c is the real kernel. The
 * completion-level fuzzer (tests/fuzz/fuzz_uring.c) links a fake ring in its place
 * that plays the kernel: it takes the submitted SQEs and posts the completions its
 * input chooses, on a clock of its own.
 */
#ifndef ECHOD_URING_KERNEL_H
#define ECHOD_URING_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct io_uring;
struct io_uring_sqe;
struct io_uring_buf_reg;

/* What this kernel can do beyond multishot recv on a buffer ring (6.0). */
struct urk_caps {
	int zc;          /* IORING_OP_SEND_ZC (6.0) */
	int mshot_limit; /* a multishot recv takes a byte limit (newer kernels; probed) */
	int bundle;      /* recv bundles (6.10) */
	int min_wait;    /* the wait takes a min-wait bound (6.12) */
	int registered;  /* the ring's fd is registered: enter without an fdget */
};

/* A worker's ring (SINGLE_ISSUER|DEFER_TASKRUN where the kernel has them) and what
 * it can do. 0 or -errno. */
int urk_ring_init(struct io_uring *ring, struct urk_caps *caps);
void urk_ring_exit(struct io_uring *ring);
int urk_register_buf_ring(struct io_uring *ring, struct io_uring_buf_reg *reg);
/* An SQE. When the queue is full it submits what is queued first; a ring that
 * refuses every submission is beyond saving: the worker logs it and exits (the
 * supervisor replaces it). Never NULL. */
struct io_uring_sqe *urk_get_sqe(struct io_uring *ring);
/* Submits what is queued without waiting, and without running the ring's deferred
 * completions (DEFER_TASKRUN): only what completes inside the submission posts its
 * CQE. 0 or -errno. */
int urk_submit(struct io_uring *ring);
/* Submits what is queued and waits for one CQE, or with batch > 0 (and
 * caps->min_wait) for batch CQEs within the min-wait bound, but no longer than
 * timeout_ms (-1: no limit). 0, -ETIME, -EINTR... or -errno. */
int urk_wait(struct io_uring *ring, const struct urk_caps *caps, unsigned batch, int timeout_ms);
/* The clock of the loop's timers, in ms (monotonic). */
uint64_t urk_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
