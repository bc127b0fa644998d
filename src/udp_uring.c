/*
 * udp_uring: multishot recvmsg into provided buffers, answers sent from them.
 *
 * The worker's UDP sockets share one buffer group. A receive that found it empty
 * (-ENOBUFS) waits, starved, until a buffer comes back, whichever socket's answer
 * freed it: uu_feed() re-arms every starved socket once one is free.
 *
 * Lifetime (loop_uring.c's rule): a socket's struct lives as long as the worker's
 * ring; its descriptor is closed only when no request of it is in flight (s->inflight:
 * the receive and every answer), never while an SQE may still name it.
 */
#include "echod/udp_uring.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "echod/log.h"
#include "echod/stats.h"
#include "echod/udp.h"
#include "echod/uring_kernel.h"
#include "echod/worker.h"

/* The kernel writes io_uring_recvmsg_out, the source address (room for IPv6) and the
 * control data before the payload; what is left holds any datagram whole. The name's
 * room is rounded up so that the control messages after it are aligned for cmsghdr. */
#define UU_NAMELEN  ((unsigned)(sizeof(struct sockaddr_in6) + 7) & ~7u)
#define UU_HEADROOM 128u
#define UU_BUF_SIZE (UDP_BUF_SIZE + UU_HEADROOM)
#define UU_ERR_PAUSE 100 /* ms before re-arming a receive that failed twice running */

_Static_assert(sizeof(struct io_uring_recvmsg_out) % 8 == 0,
	       "control messages in a provided buffer must stay 8-aligned");

struct uu_sock {
	int kind; /* EV_UDP */
	int fd;   /* -1 once closed */
	enum listen_service service;
	unsigned listener;  /* listener index, for its stats row */
	int armed, closed, starved;
	unsigned inflight;  /* the receive and the answers in flight */
	unsigned errors;    /* receives ended by an error since the last datagram */
	uint64_t resume_at; /* ms; re-armed then after repeated errors (0: not paused) */
	struct msghdr tmpl; /* name and control lengths of the multishot recvmsg */
};

/* One per buffer: the answer's sendmsg, alive while it is in flight. */
struct uu_slot {
	int kind; /* EV_UDP_SEND */
	uint16_t bid;
	struct uu_sock *sock; /* while the answer is in flight, else NULL */
	struct msghdr msg;
	struct iovec iov;
	char ctl[UDP_CTL_SIZE];
};

struct udp_uring {
	struct io_uring *ring;
	struct worker *w;
	struct udp_worker u;
	struct io_uring_buf_ring *br;
	char *bufs;
	struct uu_slot *slots;
	struct uu_sock *socks;
	unsigned nsocks;
	unsigned lent; /* buffers the kernel filled and we hold: answers in flight */
};

static struct io_uring_sqe *uu_sqe(struct udp_uring *uu, const void *ptr)
{
	struct io_uring_sqe *sqe = urk_get_sqe(uu->ring);

	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)ptr | UDP_URING_OP);
	return sqe;
}

static char *uu_buf(struct udp_uring *uu, unsigned bid)
{
	return uu->bufs + (size_t)bid * UU_BUF_SIZE;
}

/* Back to the kernel at once: a starved receive may go on (uu_feed). */
static void uu_recycle(struct udp_uring *uu, unsigned bid)
{
	io_uring_buf_ring_add(uu->br, uu_buf(uu, bid), UU_BUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(UDP_URING_BUFS), 0);
	io_uring_buf_ring_advance(uu->br, 1);
	uu->lent--;
}

static void uu_arm(struct udp_uring *uu, struct uu_sock *s)
{
	struct io_uring_sqe *sqe;

	if (s->armed || s->closed || s->resume_at != 0)
		return;
	sqe = uu_sqe(uu, s);
	io_uring_prep_recvmsg_multishot(sqe, s->fd, &s->tmpl, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = UDP_URING_BGID;
	s->armed = 1;
	s->starved = 0;
	s->inflight++;
}

/* A closed socket's descriptor goes once no request of it is in flight. */
static void uu_close_fd(struct uu_sock *s)
{
	if (s->closed && s->inflight == 0 && s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

/* A request of s ended. */
static void uu_done(struct uu_sock *s)
{
	s->inflight--;
	uu_close_fd(s);
}

/* Buffers are free: every starved socket may receive again, not only the one whose
 * answer freed them (one socket's flood must not silence its siblings). */
static void uu_feed(struct udp_uring *uu)
{
	for (unsigned i = 0; i < uu->nsocks && uu->lent < UDP_URING_BUFS; i++)
		if (uu->socks[i].starved)
			uu_arm(uu, &uu->socks[i]);
}

static int uu_ring_setup(struct udp_uring *uu)
{
	struct io_uring_buf_reg reg;
	size_t ring_size = UDP_URING_BUFS * sizeof(struct io_uring_buf);
	int rc;

	uu->br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (uu->br == MAP_FAILED) {
		uu->br = NULL;
		return -errno;
	}
	/* Untouched pages cost nothing: small datagrams use the first page of a buffer. */
	uu->bufs = mmap(NULL, (size_t)UDP_URING_BUFS * UU_BUF_SIZE, PROT_READ | PROT_WRITE,
			MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (uu->bufs == MAP_FAILED) {
		uu->bufs = NULL;
		return -errno;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)uu->br;
	reg.ring_entries = UDP_URING_BUFS;
	reg.bgid = UDP_URING_BGID;
	rc = urk_register_buf_ring(uu->ring, &reg);
	if (rc < 0)
		return rc;
	io_uring_buf_ring_init(uu->br);
	uu->lent = UDP_URING_BUFS; /* until they are all in the ring */
	for (unsigned b = 0; b < UDP_URING_BUFS; b++)
		uu_recycle(uu, b);
	return 0;
}

int udp_uring_setup(struct udp_uring **out, struct io_uring *ring, struct worker *w)
{
	struct udp_uring *uu;
	unsigned n = 0;
	int rc;

	*out = NULL;
	for (unsigned i = 0; i < w->nlisten; i++)
		n += w->listen_specs[i].proto == LISTEN_UDP;
	if (n == 0)
		return 0;
	uu = calloc(1, sizeof(*uu));
	if (uu == NULL)
		return -ENOMEM;
	*out = uu;
	uu->ring = ring;
	uu->w = w;
	uu->socks = calloc(n, sizeof(*uu->socks));
	uu->slots = calloc(UDP_URING_BUFS, sizeof(*uu->slots));
	if (uu->socks == NULL || uu->slots == NULL)
		return -ENOMEM;
	rc = udp_worker_init(&uu->u, w, 0);
	if (rc == 0)
		rc = uu_ring_setup(uu);
	if (rc < 0)
		return rc;
	for (unsigned b = 0; b < UDP_URING_BUFS; b++)
		uu->slots[b] = (struct uu_slot){.kind = EV_UDP_SEND, .bid = (uint16_t)b};
	for (unsigned i = 0; i < w->nlisten; i++) {
		struct uu_sock *s = &uu->socks[uu->nsocks];

		if (w->listen_specs[i].proto != LISTEN_UDP)
			continue;
		s->kind = EV_UDP;
		s->fd = w->listen_fds[i];
		s->service = w->listen_specs[i].service;
		s->listener = i;
		s->tmpl.msg_namelen = UU_NAMELEN;
		s->tmpl.msg_controllen = UDP_CTL_SIZE;
		uu->nsocks++;
		uu_arm(uu, s);
	}
	return 0;
}

/* One datagram in buffer bid: answer it from that buffer, or give the buffer back. */
static void uu_datagram(struct udp_uring *uu, struct uu_sock *s, unsigned bid, int len,
			uint64_t now)
{
	char *buf = uu_buf(uu, bid);
	struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, len, &s->tmpl);
	struct uu_slot *slot = &uu->slots[bid];
	char *payload;
	ssize_t ans;

	s->errors = 0;
	if (o == NULL || (o->flags & MSG_TRUNC) || o->namelen > UU_NAMELEN) {
		stats_add(uu->w->stats, STAT_udp_dropped, 1); /* cannot happen at this size */
		uu_recycle(uu, bid);
		return;
	}
	payload = io_uring_recvmsg_payload(o, &s->tmpl);
	ans = udp_handle(&uu->u, s->service, s->listener, io_uring_recvmsg_name(o), o->namelen,
			 payload, io_uring_recvmsg_payload_length(o, len, &s->tmpl),
			 (size_t)(buf + UU_BUF_SIZE - payload), now);
	if (ans < 0) {
		uu_recycle(uu, bid);
		return;
	}
	slot->sock = s;
	s->inflight++;
	slot->iov = (struct iovec){.iov_base = payload, .iov_len = (size_t)ans};
	slot->msg = (struct msghdr){.msg_name = io_uring_recvmsg_name(o),
				    .msg_namelen = o->namelen,
				    .msg_iov = &slot->iov,
				    .msg_iovlen = 1};
	slot->msg.msg_controllen = udp_reply_control((char *)io_uring_recvmsg_name(o) + UU_NAMELEN,
						     o->controllen, slot->ctl, sizeof(slot->ctl));
	if (slot->msg.msg_controllen > 0)
		slot->msg.msg_control = slot->ctl;
	io_uring_prep_sendmsg(uu_sqe(uu, slot), s->fd, &slot->msg, MSG_NOSIGNAL);
}

static void uu_on_recv(struct udp_uring *uu, struct uu_sock *s, const struct io_uring_cqe *cqe,
		       uint64_t now)
{
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		uu->lent++;
		if (s->closed || cqe->res <= 0)
			uu_recycle(uu, bid);
		else
			uu_datagram(uu, s, bid, cqe->res, now);
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		return;
	s->armed = 0;
	if (cqe->res == -ENOBUFS) {
		/* Every buffer carries an answer in flight: uu_feed re-arms when one is back. */
		stats_add(uu->w->stats, STAT_ring_enobufs, 1);
		s->starved = 1;
	} else if (cqe->res < 0 && cqe->res != -ECANCELED) {
		/* An ICMP error ends a receive now and then; one that persists must not spin. */
		log_debug("udp: recvmsg: %s", strerror(-cqe->res));
		if (++s->errors >= 2)
			s->resume_at = now + UU_ERR_PAUSE;
	}
	uu_arm(uu, s);
	uu_done(s);
}

static void uu_on_send(struct udp_uring *uu, struct uu_slot *slot, const struct io_uring_cqe *cqe)
{
	struct uu_sock *s = slot->sock;

	if (cqe->res >= 0) {
		stats_add2(uu->w->stats, STAT_udp_out, s->listener, LSTAT_udp_out, 1);
		stats_add2(uu->w->stats, STAT_bytes_out, s->listener, LSTAT_bytes_out,
			   (uint64_t)cqe->res);
	} else {
		log_debug("udp: sendmsg: %s", strerror(-cqe->res));
		stats_add(uu->w->stats, STAT_udp_dropped, 1);
	}
	slot->sock = NULL;
	uu_recycle(uu, slot->bid);
	uu_done(s);
}

void udp_uring_complete(struct udp_uring *uu, void *ptr, const struct io_uring_cqe *cqe,
			uint64_t now_ms)
{
	if (uu == NULL)
		return;
	if (*(int *)ptr == EV_UDP)
		uu_on_recv(uu, ptr, cqe, now_ms);
	else if (*(int *)ptr == EV_UDP_SEND)
		uu_on_send(uu, ptr, cqe);
	uu_feed(uu);
}

void udp_uring_tick(struct udp_uring *uu, uint64_t now_ms)
{
	for (unsigned i = 0; uu != NULL && i < uu->nsocks; i++) {
		struct uu_sock *s = &uu->socks[i];

		if (s->resume_at != 0 && now_ms >= s->resume_at) {
			s->resume_at = 0;
			uu_arm(uu, s);
		}
	}
}

uint64_t udp_uring_next(const struct udp_uring *uu)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; uu != NULL && i < uu->nsocks; i++)
		if (uu->socks[i].resume_at != 0 && uu->socks[i].resume_at < next)
			next = uu->socks[i].resume_at;
	return next;
}

void udp_uring_close(struct udp_uring *uu)
{
	for (unsigned i = 0; uu != NULL && i < uu->nsocks; i++) {
		struct uu_sock *s = &uu->socks[i];

		if (s->closed)
			continue;
		s->closed = 1;
		s->resume_at = 0;
		s->starved = 0;
		if (s->armed) {
			struct io_uring_sqe *sqe = urk_get_sqe(uu->ring);

			io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)s | UDP_URING_OP, 0);
			io_uring_sqe_set_data64(sqe, 0); /* its completion means nothing */
		}
		uu_close_fd(s);
	}
}

#ifdef ECHOD_CHECK_INVARIANTS
static void __attribute__((noreturn)) uu_broken(const char *what, unsigned a, unsigned b)
{
	log_warnx("io_uring invariant broken: udp: %s (%u, %u)", what, a, b);
	abort();
}

/* loop_uring's ur_check: buffers lent are the answers in flight; every open socket
 * receives, waits out an error pause, or is starved while no buffer is free. */
void udp_uring_check(const struct udp_uring *uu)
{
	unsigned sends = 0;

	if (uu == NULL)
		return;
	for (unsigned b = 0; b < UDP_URING_BUFS; b++)
		sends += uu->slots[b].sock != NULL;
	if (sends != uu->lent)
		uu_broken("answers in flight vs buffers lent", sends, uu->lent);
	for (unsigned i = 0; i < uu->nsocks; i++) {
		const struct uu_sock *s = &uu->socks[i];

		if (s->closed || s->armed || s->resume_at != 0)
			continue;
		if (!s->starved)
			uu_broken("socket neither receiving nor starved", i, (unsigned)s->fd);
		if (uu->lent < UDP_URING_BUFS)
			uu_broken("socket starved while buffers are free", i, uu->lent);
	}
}
#endif

void udp_uring_free(struct udp_uring *uu)
{
	if (uu == NULL)
		return;
	for (unsigned i = 0; i < uu->nsocks; i++) /* the ring is gone: nothing in flight */
		if (uu->socks[i].closed && uu->socks[i].fd >= 0)
			close(uu->socks[i].fd);
	udp_worker_fini(&uu->u);
	if (uu->bufs != NULL)
		munmap(uu->bufs, (size_t)UDP_URING_BUFS * UU_BUF_SIZE);
	if (uu->br != NULL)
		munmap(uu->br, UDP_URING_BUFS * sizeof(struct io_uring_buf));
	free(uu->slots);
	free(uu->socks);
	free(uu);
}
