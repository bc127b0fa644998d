/*
 * udp_uring: UDP for the io_uring backend (built only with liburing).
 *
 * Each UDP socket has one multishot recvmsg on a provided-buffer ring of its own
 * group (buffers big enough for any datagram: none is ever cut). The answer is built
 * in the buffer the datagram arrived in and sent from it with sendmsg, to the source
 * address the kernel wrote into that same buffer; the buffer returns to the ring when
 * the send completes. The worker's sends in flight are thus bounded by the ring;
 * when it runs dry the receive waits for a buffer (counted in ring_enobufs).
 *
 * The requests carry loop_uring's user_data, UDP_URING_OP in the low bits beside an
 * 8-aligned pointer whose first int is EV_UDP (a socket) or EV_UDP_SEND (a buffer).
 */
#ifndef ECHOD_UDP_URING_H
#define ECHOD_UDP_URING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UDP_URING_OP   7  /* loop_uring's UR_EXT */
#define UDP_URING_BGID 1  /* loop_uring's TCP ring is group 0 */
#define UDP_URING_BUFS 64 /* per worker, a power of two */

struct io_uring;
struct io_uring_cqe;
struct worker;
struct udp_uring;

/* Sets up the worker's UDP sockets (those of w->listen_specs) and arms their
 * receives; *out stays NULL when the worker has none. 0 or -errno. */
int udp_uring_setup(struct udp_uring **out, struct io_uring *ring, struct worker *w);
/* A completion whose user_data carried UDP_URING_OP and ptr. */
void udp_uring_complete(struct udp_uring *uu, void *ptr, const struct io_uring_cqe *cqe,
			uint64_t now_ms);
/* Once per loop turn: receives paused after repeated errors are re-armed. */
void udp_uring_tick(struct udp_uring *uu, uint64_t now_ms);
/* When udp_uring_tick has work next (ms, UINT64_MAX: none). */
uint64_t udp_uring_next(const struct udp_uring *uu);
/* TERM: stop receiving and close the sockets (nothing to drain for UDP); each
 * descriptor is closed once no request of it is in flight. */
void udp_uring_close(struct udp_uring *uu);
/* Debug and sanitizer builds (ECHOD_CHECK_INVARIANTS): aborts, saying why, when the
 * UDP side's invariants do not hold. */
void udp_uring_check(const struct udp_uring *uu);
/* After the ring is gone. */
void udp_uring_free(struct udp_uring *uu);

#ifdef __cplusplus
}
#endif
#endif
