/*
 * uring_kernel: the io_uring backend's calls into the kernel (see uring_kernel.h).
 *
 * Debian 12 ships liburing 2.3: constants newer than its headers are defined here,
 * the batched wait enters the kernel itself, and features are probed, never assumed.
 */
#include "echod/uring_kernel.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "echod/log.h"
#include "echod/timer.h"
#include "echod/worker.h"

#define URK_SQ_ENTRIES   1024
#define URK_CQ_ENTRIES   16384
#define URK_BATCH_WAIT   50   /* µs a batched wait may gather CQEs for */
#define URK_SUBMIT_TRIES 1000 /* failed submissions in a row before the worker gives up */
#define URK_PROBE_BGID   15   /* the probes' own buffer group */

/* Newer than Debian 12's liburing 2.3 headers. */
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif

/* struct io_uring_getevents_arg as kernels since 6.12 read it: `pad` became min_wait_usec. */
struct urk_getevents_arg {
	uint64_t sigmask;
	uint32_t sigmask_sz;
	uint32_t min_wait_usec;
	uint64_t ts;
};

static int urk_ring_create(struct io_uring *ring)
{
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int rc = -EINVAL;

	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = flag_sets[i] | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
		p.cq_entries = URK_CQ_ENTRIES;
		rc = io_uring_queue_init_params(URK_SQ_ENTRIES, ring, &p);
		if (rc == 0)
			return 0;
		if (rc != -EINVAL)
			return rc; /* ENOSYS, EPERM, ENOMEM: no other flags will help */
	}
	return rc;
}

/*
 * Arms one multishot recv (with a byte limit when asked) on a socketpair through a
 * two-buffer ring of the probes' own group, sends it a byte and reads the first
 * completion: 0 when it delivered that byte through the ring, else -errno. Consumes
 * every completion it caused and unregisters the group.
 */
static int urk_try_recv(struct io_uring *ring, unsigned limit)
{
	struct io_uring_buf_reg reg;
	struct io_uring_buf_ring *br;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	char buf[64];
	int sv[2], rc, more = 1;

	br = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED)
		return -errno;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = 2;
	reg.bgid = URK_PROBE_BGID;
	rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc < 0) {
		munmap(br, 4096);
		return rc;
	}
	io_uring_buf_ring_init(br);
	for (int i = 0; i < 2; i++)
		io_uring_buf_ring_add(br, buf + 32 * i, 32, (unsigned short)i, io_uring_buf_ring_mask(2),
				      i);
	io_uring_buf_ring_advance(br, 2);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		goto out;
	}
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = URK_PROBE_BGID;
	sqe->file_index = limit; /* sqe->optlen in newer headers: the byte limit */
	rc = write(sv[1], "x", 1) == 1 ? io_uring_submit_and_wait(ring, 1) : -errno;
	if (rc >= 0 && (rc = io_uring_peek_cqe(ring, &cqe)) == 0) {
		rc = cqe->res == 1 ? 0 : cqe->res < 0 ? cqe->res : -EINVAL;
		if (cqe->res == 1 && !(cqe->flags & IORING_CQE_F_MORE) && limit == 0)
			rc = -EINVAL; /* single shot only: no multishot recv here */
		more = (cqe->flags & IORING_CQE_F_MORE) != 0;
		io_uring_cqe_seen(ring, cqe);
	}
	close(sv[1]); /* EOF ends the multishot */
	while (rc == 0 && more && io_uring_wait_cqe(ring, &cqe) == 0) {
		more = (cqe->flags & IORING_CQE_F_MORE) != 0;
		io_uring_cqe_seen(ring, cqe);
	}
	close(sv[0]);
out:
	io_uring_unregister_buf_ring(ring, URK_PROBE_BGID);
	munmap(br, 4096);
	return rc;
}

int urk_ring_init(struct io_uring *ring, struct urk_caps *caps)
{
	struct io_uring_probe *probe;
	int rc = urk_ring_create(ring);

	memset(caps, 0, sizeof(*caps));
	if (rc < 0)
		return rc;
	/* The registered ring fd saves an fdget per enter where it works. */
	caps->registered = io_uring_register_ring_fd(ring) == 1;
	caps->min_wait = (ring->features & IORING_FEAT_MIN_TIMEOUT) != 0;
	probe = io_uring_get_probe_ring(ring);
	caps->zc = probe != NULL && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
	io_uring_free_probe(probe);
	caps->mshot_limit = urk_try_recv(ring, 4096) == 0;
	caps->bundle = (ring->features & IORING_FEAT_RECVSEND_BUNDLE) != 0;
	return 0;
}

void urk_ring_exit(struct io_uring *ring)
{
	io_uring_queue_exit(ring); /* cancels and waits for whatever is left */
}

int urk_register_buf_ring(struct io_uring *ring, struct io_uring_buf_reg *reg)
{
	return io_uring_register_buf_ring(ring, reg, 0);
}

struct io_uring_sqe *urk_get_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe;
	int rc = 0;

	for (unsigned tries = 0; (sqe = io_uring_get_sqe(ring)) == NULL; tries++) {
		if (tries == URK_SUBMIT_TRIES) {
			log_warnx("io_uring: the ring takes no submission (%s); the worker stops",
				  strerror(rc < 0 ? -rc : EAGAIN));
			exit(EXIT_OSERR);
		}
		rc = io_uring_submit(ring);
	}
	return sqe;
}

int urk_submit(struct io_uring *ring)
{
	int rc = io_uring_submit(ring);

	return rc < 0 ? rc : 0;
}

/*
 * The batched wait: the CQEs of what is submitted plus `batch` more, but no longer
 * than URK_BATCH_WAIT µs for more than one, or until ts. This is the kernel's
 * min-wait (6.12); liburing 2.3 has no call for it, so the queue is flushed here as
 * io_uring_submit() does (publish the local SQ tail) and entered with the argument.
 */
static int urk_wait_batch(struct io_uring *ring, const struct urk_caps *caps, unsigned batch,
			  struct __kernel_timespec *ts)
{
	struct io_uring_sq *sq = &ring->sq;
	struct urk_getevents_arg arg = {
		.min_wait_usec = URK_BATCH_WAIT,
		.ts = (uint64_t)(uintptr_t)ts,
	};
	unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
	int fd = ring->ring_fd;
	unsigned to_submit;
	long rc;

	if (sq->sqe_head != sq->sqe_tail) {
		sq->sqe_head = sq->sqe_tail;
		io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
	}
	to_submit = sq->sqe_tail - *sq->khead;
	if (caps->registered) {
		flags |= IORING_ENTER_REGISTERED_RING;
		fd = ring->enter_ring_fd;
	}
	rc = syscall(__NR_io_uring_enter, fd, to_submit, to_submit + batch, flags, &arg,
		     sizeof(arg));
	return rc < 0 ? -errno : 0;
}

int urk_wait(struct io_uring *ring, const struct urk_caps *caps, unsigned batch, int timeout_ms)
{
	struct __kernel_timespec ts, *tsp = NULL;
	struct io_uring_cqe *cqe;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
		tsp = &ts;
	}
	if (batch > 0 && caps->min_wait)
		return urk_wait_batch(ring, caps, batch, tsp);
	return io_uring_submit_and_wait_timeout(ring, &cqe, 1, tsp, NULL);
}

uint64_t urk_now_ms(void)
{
	return timer_now_ms();
}

/*
 * Before forking: can this kernel, under this seccomp profile and sysctl, run what
 * the backend needs? A multishot recv through a provided-buffer ring on a socketpair
 * answers for io_uring_setup, buffer rings (5.19) and multishot recv (6.0) at once.
 */
int loop_uring_probe(char *why, size_t whylen)
{
	struct io_uring ring;
	int rc = urk_ring_create(&ring);

	if (rc < 0) {
		snprintf(why, whylen, "io_uring_setup: %s%s", strerror(-rc),
			 rc == -EPERM ? " (kernel.io_uring_disabled or a seccomp filter)" : "");
		return rc;
	}
	rc = urk_try_recv(&ring, 0);
	if (rc < 0)
		snprintf(why, whylen, "multishot recv on a buffer ring: %s (kernel 6.0 or later needed)",
			 strerror(-rc));
	io_uring_queue_exit(&ring);
	return rc < 0 ? rc : 0;
}
