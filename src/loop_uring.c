/*
 * loop_uring: the io_uring backend.
 *
 * One ring per worker, made after fork (SINGLE_ISSUER|DEFER_TASKRUN where the kernel
 * has them). Multishot accept on the worker's listeners; one multishot recv per
 * connection into a provided-buffer ring shared by the worker's connections. Each
 * received buffer is queued on its connection and sent back as it is, no copy; one
 * send per connection is in flight at a time so echoes stay in order, several queued
 * buffers going out together as one sendmsg. A buffer returns to the ring when its
 * send completes, and only when the CQE said one was used (IORING_CQE_F_BUFFER).
 *
 * Backpressure: a connection holding `cap` buffers has its multishot recv cancelled;
 * it is re-armed once its queue drained to half, so one peer that stops reading
 * holds a bounded share of the ring and the TCP window pushes back on it. -ENOBUFS
 * parks the connection until buffers come back, never closes it.
 *
 * Lifetime, the one rule: a connection's memory is freed in one place, ur_release(),
 * reached only from ur_reap() at the end of a turn, and only when the connection is
 * closed, no request of it is in flight (c->inflight counts every request whose last
 * CQE is still due, cancels and SEND_ZC notifications included) and it is on no
 * list but lp->closed. ur_close() never frees: it takes the connection off every
 * other list (idle timers, starved), cancels what is in flight and parks it on
 * lp->closed. So a handler may use its connection until it returns, whatever it
 * called, and a CQE never names freed memory. Its descriptor is closed at the same
 * moment, never while an SQE may still name it. UDP sockets (udp_uring.c) and the
 * other services' connections (service.c) follow the same rule.
 *
 * Every socket is nonblocking, whatever accepted it: service.c reads with recv().
 * Debug and sanitizer builds (ECHOD_CHECK_INVARIANTS) check the loop's invariants
 * after every turn: ur_check().
 *
 * Debian 12 ships liburing 2.3: the buffer ring is set up by hand, and constants newer
 * than its headers are defined below. Kernel features are probed (uring_kernel.c).
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echod/conn.h"
#include "echod/log.h"
#include "echod/service.h"
#include "echod/udp_uring.h"
#include "echod/uring_kernel.h"
#include "echod/worker.h"

#define UR_BGID         0
#define UR_CAP_MAX      8     /* buffers a connection may hold before its recv stops */
#define UR_BURST        4     /* a multishot recv takes at most this many caps' worth, */
#define UR_BURST_SHARE  4     /* and at most 1/this of the ring */
#define UR_NO_BID       0xffff
#define UR_SEND_IOV     8     /* queued buffers sent by one sendmsg */
#define UR_ACCEPT_PAUSE 100   /* ms without accepting after a multishot accept failed */
#define UR_SIGNAL_PAUSE 1000  /* ms before the signalfd's poll is re-armed after an error */
#define UR_SPARE_CTX    64
#define UR_LEVEL_MIN    32    /* buffers kept in the ring at the least */
#define UR_LEVEL_HOLD   1024  /* turns the level holds after the ring ran dry */
#define UR_BATCH_MAX    64    /* CQEs a busy turn waits to gather (within the min-wait) */
#define UR_BATCH_CONNS  16    /* connections from which every wait is batched ... */
#define UR_BATCH_FEW    4     /* ... below which a turn of fewer CQEs waits plainly */
#define UR_TRIM_IDLE    2000  /* ms without connections before the buffers' pages go back */

/* Newer than Debian 12's liburing 2.3 headers (kernel 6.10). */
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_RECVSEND_POLL_FIRST
#define IORING_RECVSEND_POLL_FIRST (1U << 0)
#endif

/* What a CQE is about: the low 3 bits of user_data, beside an 8-aligned pointer. */
enum ur_op { UR_ACCEPT = 1, UR_RECV, UR_SEND, UR_CANCEL, UR_SIGNAL, UR_IGNORE,
	     UR_EXT = UDP_URING_OP /* UDP and the small services: their own files */ };

/* Connection flags (ur_conn.uflags). */
#define UR_RECV_ARMED 0x01  /* a multishot recv is in flight */
#define UR_SEND_BUSY  0x02  /* a send is in flight */
#define UR_STARVED    0x04  /* recv ended with -ENOBUFS: re-arm when buffers return */
#define UR_CANCELLING 0x08  /* its recv is being cancelled for backpressure */
#define UR_ZC_WAIT    0x10  /* a SEND_ZC notification is due for buffer zc_bid */
#define UR_ZC_OUT     0x20  /* zc_bid left the queue: the notification recycles it */
#define UR_POLL_FIRST 0x40  /* the last send said EAGAIN: the next waits for room */
#define UR_RECV_WAIT  0x80  /* the last recv said EAGAIN: the next waits for data */

struct ur_listener {
	uint64_t fd;        /* 64-bit so the array stays 8-aligned for user_data */
	int armed;
	int closed;
	int service;        /* enum listen_service; not echo: service.c's connection */
};

/* The iovecs of a multi-buffer sendmsg, alive while it is in flight. */
struct ur_sendctx {
	struct ur_sendctx *next_free;
	struct iovec iov[UR_SEND_IOV];
	struct msghdr msg;
};

/*
 * A connection's queue of received, not yet echoed buffers is a list linked through
 * the worker's per-buffer arrays (bnext, blen), so it costs the connection four
 * fields and can never overflow: it is bounded by the ring itself.
 */
struct ur_conn {
	struct conn base;    /* fd, state, idle timer, limits ticket */
	struct ur_sendctx *ctx;
	TAILQ_ENTRY(ur_conn) link; /* lp->starved while UR_STARVED; lp->closed once closed */
	uint32_t head_off;   /* bytes of the head buffer already sent */
	uint16_t qhead, qtail, qcount;
	uint16_t in_send;    /* buffers covered by the send in flight */
	uint16_t inflight;   /* requests whose last CQE is still due */
	uint16_t uflags;
	uint16_t zc_bid;
};

TAILQ_HEAD(ur_conn_list, ur_conn);

/* An idle connection costs under 256 bytes of user space, malloc's header included. */
_Static_assert(sizeof(struct ur_conn) + 16 <= 192, "struct ur_conn outgrew its budget");

struct uring_loop {
	struct worker *w;
	struct io_uring ring;
	int ring_ok;
	struct io_uring_buf_ring *br;
	size_t br_size;
	char *bufs;
	size_t bufs_size;
	unsigned nbufs, buf_size, cap;
	unsigned burst;             /* buffers one arm of a multishot recv may fill */
	unsigned br_added;          /* buffers added to the ring, not yet published */
	/* A bundle's CQE names its first buffer only; the others are the ring entries
	 * after it, which hold whatever the spare stack gave: these say which. An entry
	 * is not written again before its CQE is handled (see buf_publish's level). */
	uint16_t *slot_bid;         /* per ring entry: the buffer last put there */
	uint16_t *bid_slot;         /* per buffer: the ring entry it was put in */
	int have_bundle;            /* a receive may fill several buffers (6.10) */
	unsigned bufs_out;          /* buffers the kernel gave us and we hold */
	uint16_t *spare;            /* free buffers outside the ring, the latest freed on top */
	unsigned nspare;
	unsigned level;             /* how many free buffers the ring should offer */
	unsigned taken;             /* buffers the kernel filled this turn */
	unsigned fed;               /* starved connections re-armed at the end of this turn */
	int dry;                    /* a receive found the ring empty this turn */
	unsigned level_hold;        /* turns before the level may decay again */
	uint16_t *bnext;            /* per buffer: the next in its connection's queue */
	uint32_t *blen;             /* per buffer: bytes received into it */
	struct urk_caps caps;       /* what the kernel can do */
	unsigned batch;             /* CQEs the next turn waits for, within UR_BATCH_WAIT */
	struct ur_listener *listeners;
	unsigned nlisten;
	uint64_t sig_tag;           /* 8-aligned address for the signal poll's user_data */
	int sig_armed;
	struct timer_list idle;
	struct ur_conn_list starved; /* recv ended with ENOBUFS: first come, first fed */
	struct ur_conn_list closed;  /* closed, waiting for their last CQEs */
	uint8_t *check_mark;        /* ur_check's per-buffer marks */
	struct ur_sendctx *spare_ctx;
	unsigned nspare_ctx;
	unsigned long nconns;       /* open connections */
	unsigned long nzombies;     /* on lp->closed */
	uint64_t idle_since;        /* ms; when the last connection's requests ended */
	int trimmed;                /* the buffers' pages were given back since */
	uint64_t now;
	uint64_t accept_resume;
	uint64_t signal_resume;     /* the signal poll failed: re-armed then */
	int draining;
	uint64_t drain_deadline;
	int connlog;                /* -v: a line per closed connection */
	struct udp_uring *udp;      /* NULL without UDP listeners */
	struct svc_set svc;         /* TCP connections of the other services */
};

static uint64_t ud_pack(enum ur_op op, const void *ptr)
{
	return (uint64_t)(uintptr_t)ptr | (uint64_t)op;
}

static enum ur_op ud_op(uint64_t ud)
{
	return (enum ur_op)(ud & 7);
}

static void *ud_ptr(uint64_t ud)
{
	return (void *)(uintptr_t)(ud & ~(uint64_t)7);
}

static void ur_stat(struct uring_loop *lp, enum stats_counter c, uint64_t n)
{
	stats_add(lp->w->stats, c, n);
}

/* An SQE, submitting first when the queue is full. */
static struct io_uring_sqe *ur_sqe(struct uring_loop *lp, enum ur_op op, const void *ptr)
{
	struct io_uring_sqe *sqe = urk_get_sqe(&lp->ring);

	io_uring_sqe_set_data64(sqe, ud_pack(op, ptr));
	return sqe;
}

/* ---- the provided-buffer ring ---- */

static char *buf_addr(struct uring_loop *lp, unsigned bid)
{
	return lp->bufs + (size_t)bid * lp->buf_size;
}

/*
 * The kernel takes ring entries in order, so a ring holding every free buffer would
 * cycle through all of them and every recv would land in memory long gone from the
 * cache. Free buffers wait on a stack instead, and the ring is topped up from its top
 * (the ones freed last, still warm) to `level`, which follows the demand: twice what
 * a turn took, decaying slowly, doubled when the ring ran dry.
 */
static void buf_recycle(struct uring_loop *lp, unsigned bid)
{
	lp->spare[lp->nspare++] = (uint16_t)bid;
	lp->bufs_out--;
}

static void buf_publish(struct uring_loop *lp)
{
	unsigned in_ring = lp->nbufs - lp->bufs_out - lp->nspare;

	for (; in_ring < lp->level && lp->nspare > 0; in_ring++) {
		unsigned bid = lp->spare[--lp->nspare];

		unsigned slot = (lp->br->tail + lp->br_added) & io_uring_buf_ring_mask(lp->nbufs);

		lp->slot_bid[slot] = (uint16_t)bid;
		lp->bid_slot[bid] = (uint16_t)slot;
		io_uring_buf_ring_add(lp->br, buf_addr(lp, bid), lp->buf_size, (unsigned short)bid,
				      io_uring_buf_ring_mask(lp->nbufs), (int)lp->br_added++);
	}
	if (lp->br_added == 0)
		return;
	io_uring_buf_ring_advance(lp->br, (int)lp->br_added);
	lp->br_added = 0;
}

/* The i-th buffer of a completion that named buffer first: a bundle's buffers are
 * the ring entries after first's. */
static unsigned cqe_buf(const struct uring_loop *lp, unsigned first, unsigned i)
{
	return lp->slot_bid[(lp->bid_slot[first] + i) & io_uring_buf_ring_mask(lp->nbufs)];
}

/* End of a turn: the ring's level follows what the kernel took. After the ring ran
 * dry it holds for UR_LEVEL_HOLD turns before it decays: an -ENOBUFS costs a
 * connection its receive and a re-arm, far more than a colder buffer. */
static void buf_level_update(struct uring_loop *lp)
{
	unsigned want = 2 * lp->taken, decayed = lp->level - lp->level / 64;

	if (lp->level_hold > 0) {
		lp->level_hold--;
		decayed = lp->level;
	}

	lp->level = want > decayed ? want : decayed;
	if (lp->level < UR_LEVEL_MIN)
		lp->level = UR_LEVEL_MIN;
	if (lp->level > lp->nbufs)
		lp->level = lp->nbufs;
	lp->taken = 0;
}

static int buf_ring_setup(struct uring_loop *lp)
{
	struct io_uring_buf_reg reg;
	int rc;

	lp->br_size = lp->nbufs * sizeof(struct io_uring_buf);
	lp->br = mmap(NULL, lp->br_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1,
		      0);
	if (lp->br == MAP_FAILED) {
		lp->br = NULL;
		return -errno;
	}
	lp->bnext = calloc(lp->nbufs, sizeof(*lp->bnext));
	lp->blen = calloc(lp->nbufs, sizeof(*lp->blen));
	lp->spare = calloc(lp->nbufs, sizeof(*lp->spare));
	lp->slot_bid = calloc(lp->nbufs, sizeof(*lp->slot_bid));
	lp->bid_slot = calloc(lp->nbufs, sizeof(*lp->bid_slot));
	if (lp->bnext == NULL || lp->blen == NULL || lp->spare == NULL || lp->slot_bid == NULL ||
	    lp->bid_slot == NULL)
		return -ENOMEM;
	lp->bufs_size = (size_t)lp->nbufs * lp->buf_size;
	lp->bufs = mmap(NULL, lp->bufs_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE,
			-1, 0);
	if (lp->bufs == MAP_FAILED) {
		lp->bufs = NULL;
		return -errno;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)lp->br;
	reg.ring_entries = lp->nbufs;
	reg.bgid = UR_BGID;
	rc = urk_register_buf_ring(&lp->ring, &reg);
	if (rc < 0)
		return rc;
	io_uring_buf_ring_init(lp->br);
	lp->bufs_out = lp->nbufs;
	lp->level = UR_LEVEL_MIN < lp->nbufs ? UR_LEVEL_MIN : lp->nbufs;
	for (unsigned b = lp->nbufs; b-- > 0;)
		buf_recycle(lp, b);
	buf_publish(lp);
	lp->trimmed = 1; /* untouched so far */
	return 0;
}

/* ---- send queues ---- */

static struct ur_sendctx *ctx_get(struct uring_loop *lp)
{
	struct ur_sendctx *x = lp->spare_ctx;

	if (x == NULL)
		return malloc(sizeof(*x));
	lp->spare_ctx = x->next_free;
	lp->nspare_ctx--;
	return x;
}

static void ctx_put(struct uring_loop *lp, struct ur_sendctx *x)
{
	if (x == NULL)
		return;
	if (lp->nspare_ctx >= UR_SPARE_CTX) {
		free(x);
		return;
	}
	x->next_free = lp->spare_ctx;
	lp->spare_ctx = x;
	lp->nspare_ctx++;
}

static void q_push(struct uring_loop *lp, struct ur_conn *c, unsigned bid, uint32_t len)
{
	lp->blen[bid] = len;
	lp->bnext[bid] = UR_NO_BID;
	if (c->qcount == 0)
		c->qhead = (uint16_t)bid;
	else
		lp->bnext[c->qtail] = (uint16_t)bid;
	c->qtail = (uint16_t)bid;
	c->qcount++;
	ur_stat(lp, STAT_buffers_held, 1);
}

/* Takes the head buffer off the queue and returns its id. */
static unsigned q_pop(struct uring_loop *lp, struct ur_conn *c)
{
	unsigned bid = c->qhead;

	c->qhead = lp->bnext[bid];
	c->qcount--;
	c->head_off = 0;
	ur_stat(lp, STAT_buffers_held, (uint64_t)-1);
	return bid;
}

static unsigned q_count(const struct ur_conn *c)
{
	return c->qcount;
}

/* Returns every queued buffer to the ring. */
static void q_drop(struct uring_loop *lp, struct ur_conn *c)
{
	while (c->qcount > 0)
		buf_recycle(lp, q_pop(lp, c));
}

/* ---- connections ---- */

static struct ur_conn *uconn_of(struct timer_node *node)
{
	return (struct ur_conn *)((char *)node - offsetof(struct ur_conn, base.idle));
}

/* The one place a connection's memory goes (the lifetime rule, at the top). */
static void ur_release(struct uring_loop *lp, struct ur_conn *c)
{
	TAILQ_REMOVE(&lp->closed, c, link);
	q_drop(lp, c);
	ctx_put(lp, c->ctx);
	if (c->uflags & UR_ZC_OUT)
		buf_recycle(lp, c->zc_bid);
	close(c->base.fd);
	lp->nzombies--;
	free(c);
	if (lp->nconns == 0 && lp->nzombies == 0)
		lp->idle_since = lp->now;
}

/* End of a turn: closed connections whose last CQE came go. */
static void ur_reap(struct uring_loop *lp)
{
	struct ur_conn *c = TAILQ_FIRST(&lp->closed), *next;

	for (; c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->inflight == 0)
			ur_release(lp, c);
	}
}

/* The only way a connection goes away: counts it, says why, cancels what is in flight,
 * and leaves it on lp->closed for ur_reap. Never frees. */
static void ur_close(struct uring_loop *lp, struct ur_conn *c, enum conn_close_reason why)
{
	struct io_uring_sqe *sqe;

	if (c->base.state == CONN_CLOSED)
		return;
	if (lp->connlog)
		worker_conn_closed(lp->w, &c->base.log, conn_reason_name(why));
	if (c->uflags & UR_STARVED) {
		TAILQ_REMOVE(&lp->starved, c, link);
		c->uflags &= ~UR_STARVED;
	}
	TAILQ_INSERT_TAIL(&lp->closed, c, link);
	c->base.state = CONN_CLOSED;
	timer_remove(&c->base.idle);
	limits_release(&lp->w->limits, &c->base.ticket);
	ur_stat(lp, conn_reason_counter(why), 1);
	lp->nconns--;
	lp->nzombies++;
	if (c->inflight > 0) {
		sqe = ur_sqe(lp, UR_CANCEL, c);
		io_uring_prep_cancel_fd(sqe, c->base.fd, IORING_ASYNC_CANCEL_ALL);
		c->inflight++;
	}
}

static void ur_arm_recv(struct uring_loop *lp, struct ur_conn *c)
{
	struct io_uring_sqe *sqe = ur_sqe(lp, UR_RECV, c);

	io_uring_prep_recv_multishot(sqe, c->base.fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	if (lp->have_bundle)
		sqe->ioprio |= IORING_RECVSEND_BUNDLE;
	sqe->buf_group = UR_BGID;
	/* Newer kernels end a multishot recv after this many bytes (sqe->optlen, which
	 * liburing 2.3 calls file_index): a flood then takes at most `burst` buffers per
	 * arm before our cancel can land. Not one cap: a steady stream would pay a re-arm
	 * every few buffers. */
	if (lp->caps.mshot_limit)
		sqe->file_index = lp->burst * lp->buf_size;
	if (c->uflags & UR_RECV_WAIT)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	c->inflight++;
	c->uflags = (uint16_t)((c->uflags | UR_RECV_ARMED) & ~UR_RECV_WAIT);
}

/* Re-arms the recv where nothing holds it back: not blocked, not starved, not at EOF. */
static void ur_maybe_rearm(struct uring_loop *lp, struct ur_conn *c)
{
	if (c->uflags & (UR_RECV_ARMED | UR_STARVED))
		return;
	if (c->base.state == CONN_BLOCKED && q_count(c) <= lp->cap / 2)
		c->base.state = CONN_ECHOING;
	if (c->base.state == CONN_ECHOING)
		ur_arm_recv(lp, c);
}

/* Backpressure: stop the recv of a connection holding its share of the ring. */
static void ur_block(struct uring_loop *lp, struct ur_conn *c)
{
	struct io_uring_sqe *sqe;

	c->base.state = CONN_BLOCKED;
	if (!(c->uflags & UR_RECV_ARMED) || (c->uflags & UR_CANCELLING))
		return;
	sqe = ur_sqe(lp, UR_CANCEL, c);
	io_uring_prep_cancel64(sqe, ud_pack(UR_RECV, c), 0);
	c->inflight++;
	c->uflags |= UR_CANCELLING;
}

static void ur_prep_sendmsg(struct uring_loop *lp, struct ur_conn *c, struct io_uring_sqe *sqe,
			    unsigned n)
{
	struct ur_sendctx *x = c->ctx;
	unsigned bid = c->qhead;

	for (unsigned i = 0; i < n; i++, bid = lp->bnext[bid]) {
		size_t off = i == 0 ? c->head_off : 0;

		x->iov[i].iov_base = buf_addr(lp, bid) + off;
		x->iov[i].iov_len = lp->blen[bid] - off;
	}
	memset(&x->msg, 0, sizeof(x->msg));
	x->msg.msg_iov = x->iov;
	x->msg.msg_iovlen = n;
	io_uring_prep_sendmsg(sqe, c->base.fd, &x->msg, MSG_NOSIGNAL);
}

static void ur_send_next(struct uring_loop *lp, struct ur_conn *c)
{
	const struct config *cfg = lp->w->cfg;
	struct io_uring_sqe *sqe;
	unsigned n;
	char *p;
	size_t len;

	if ((c->uflags & UR_SEND_BUSY) || c->qcount == 0)
		return;
	n = c->qcount < UR_SEND_IOV ? c->qcount : UR_SEND_IOV;
	if (n > 1 && c->ctx == NULL && (c->ctx = ctx_get(lp)) == NULL)
		n = 1;
	p = buf_addr(lp, c->qhead) + c->head_off;
	len = lp->blen[c->qhead] - c->head_off;
	sqe = ur_sqe(lp, UR_SEND, c);
	if (n > 1) {
		ur_prep_sendmsg(lp, c, sqe, n);
	} else if (lp->caps.zc && cfg->zerocopy_threshold > 0 && len >= cfg->zerocopy_threshold &&
		   !(c->uflags & UR_ZC_WAIT)) {
		io_uring_prep_send_zc(sqe, c->base.fd, p, len, MSG_NOSIGNAL, 0);
		ur_stat(lp, STAT_zc_sends, 1);
	} else {
		io_uring_prep_send(sqe, c->base.fd, p, len, MSG_NOSIGNAL);
	}
	if (c->uflags & UR_POLL_FIRST)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	c->uflags &= ~UR_POLL_FIRST;
	c->in_send = (uint16_t)n;
	c->inflight++;
	c->uflags |= UR_SEND_BUSY;
}

/* The bytes of a completed send leave the queue; their buffers go back to the ring,
 * or, for a zero-copy send, wait for its notification. */
static void ur_consume(struct uring_loop *lp, struct ur_conn *c, size_t sent)
{
	while (sent > 0 && c->qcount > 0) {
		size_t left = lp->blen[c->qhead] - c->head_off;
		unsigned bid;

		if (sent < left) {
			c->head_off += (uint32_t)sent;
			return;
		}
		sent -= left;
		bid = q_pop(lp, c);
		/* The kernel may still read a zero-copy buffer until its notification. */
		if ((c->uflags & UR_ZC_WAIT) && c->zc_bid == bid)
			c->uflags |= UR_ZC_OUT;
		else
			buf_recycle(lp, bid);
	}
}

static void on_send(struct uring_loop *lp, struct ur_conn *c, struct io_uring_cqe *cqe)
{
	int zc_result = (cqe->flags & IORING_CQE_F_MORE) != 0;
	size_t wanted = 0;

	if (cqe->flags & IORING_CQE_F_NOTIF) {
		/* The kernel let go of a zero-copy buffer. */
		c->inflight--;
		if (c->uflags & UR_ZC_OUT)
			buf_recycle(lp, c->zc_bid);
		c->uflags &= ~(UR_ZC_WAIT | UR_ZC_OUT);
		if (c->base.state != CONN_CLOSED)
			ur_send_next(lp, c);
		return;
	}
	if (!zc_result)
		c->inflight--;
	c->uflags &= ~UR_SEND_BUSY;
	if (c->base.state == CONN_CLOSED)
		return;
	if (cqe->res == -EAGAIN || cqe->res == -EINTR) {
		/* Not an error: send the same again once the socket has room. */
		c->uflags |= UR_POLL_FIRST;
		ur_send_next(lp, c);
		return;
	}
	if (cqe->res < 0) {
		ur_close(lp, c, conn_errno_reason(-cqe->res));
		return;
	}
	for (unsigned i = 0, bid = c->qhead; i < c->in_send; i++, bid = lp->bnext[bid])
		wanted += lp->blen[bid] - (i == 0 ? c->head_off : 0);
	if ((size_t)cqe->res < wanted)
		ur_stat(lp, STAT_short_sends, 1);
	stats_add2(lp->w->stats, STAT_bytes_out, c->base.listener, LSTAT_bytes_out,
		   (uint64_t)cqe->res);
	c->base.log.bytes_out += (uint64_t)cqe->res;
	timer_touch(&lp->idle, &c->base.idle, lp->now);
	if (zc_result) {
		c->zc_bid = c->qhead;
		c->uflags |= UR_ZC_WAIT;
	}
	ur_consume(lp, c, (size_t)cqe->res);
	if (c->qcount == 0) {
		ctx_put(lp, c->ctx);
		c->ctx = NULL;
	}
	ur_send_next(lp, c);
	if (q_count(c) == 0 && c->base.state == CONN_FLUSHING && !(c->uflags & UR_SEND_BUSY)) {
		ur_close(lp, c, CLOSE_EOF);
		return;
	}
	ur_maybe_rearm(lp, c);
}

static void on_recv_data(struct uring_loop *lp, struct ur_conn *c, unsigned bid, int res)
{
	stats_add2(lp->w->stats, STAT_bytes_in, c->base.listener, LSTAT_bytes_in, (uint64_t)res);
	ur_stat(lp, STAT_msgs, 1);
	c->base.log.bytes_in += (uint64_t)res;
	timer_touch(&lp->idle, &c->base.idle, lp->now);
	/* A bundle fills its buffers in order, each but the last in full. */
	for (uint32_t left = (uint32_t)res, i = 0; left > 0; i++) {
		uint32_t len = left < lp->buf_size ? left : lp->buf_size;

		q_push(lp, c, cqe_buf(lp, bid, i), len);
		left -= len;
	}
	ur_send_next(lp, c);
	if (q_count(c) >= lp->cap)
		ur_block(lp, c);
}

static void on_recv_error(struct uring_loop *lp, struct ur_conn *c, int err)
{
	switch (err) {
	case ENOBUFS:
		/* The ring ran dry: wait for buffers to come back, then re-arm. */
		ur_stat(lp, STAT_ring_enobufs, 1);
		lp->dry = 1;
		lp->level_hold = UR_LEVEL_HOLD;
		lp->level = 2 * lp->level < lp->nbufs ? 2 * lp->level : lp->nbufs;
		c->uflags |= UR_STARVED;
		TAILQ_INSERT_TAIL(&lp->starved, c, link);
		break;
	case ECANCELED:
		break; /* our backpressure cancel; re-armed once the queue drains */
	case EAGAIN:
	case EINTR:
		/* A state, not an error: re-armed to wait for data first, so it cannot spin. */
		c->uflags |= UR_RECV_WAIT;
		break;
	default:
		ur_close(lp, c, conn_errno_reason(err));
	}
}

static void on_recv(struct uring_loop *lp, struct ur_conn *c, struct io_uring_cqe *cqe)
{
	int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
	unsigned nb = 0; /* buffers the completion used: more than one for a bundle */

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		nb = cqe->res > 0 ? ((unsigned)cqe->res + lp->buf_size - 1) / lp->buf_size : 1;
		lp->bufs_out += nb;
		lp->taken += nb;
	}
	if (!more) {
		c->inflight--;
		c->uflags &= ~(UR_RECV_ARMED | UR_CANCELLING);
	}
	if (c->base.state == CONN_CLOSED) {
		for (unsigned i = 0; i < nb; i++)
			buf_recycle(lp, cqe_buf(lp, cqe->flags >> IORING_CQE_BUFFER_SHIFT, i));
		return;
	}
	if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
		on_recv_data(lp, c, cqe->flags >> IORING_CQE_BUFFER_SHIFT, cqe->res);
	} else if (cqe->res == 0) {
		/* The peer's FIN: send what is owed, then close. */
		c->base.state = CONN_FLUSHING;
		if (q_count(c) == 0 && !(c->uflags & UR_SEND_BUSY))
			ur_close(lp, c, CLOSE_EOF);
		return;
	} else if (cqe->res < 0) {
		on_recv_error(lp, c, -cqe->res);
	}
	if (!more && c->base.state != CONN_CLOSED) {
		if (cqe->res > 0)
			ur_stat(lp, STAT_rearms, 1);
		ur_maybe_rearm(lp, c);
	}
}

/*
 * Buffers came back: starved connections may read again, as many as there are free
 * buffers, first come first fed. Re-arming them all would cost each one more
 * -ENOBUFS, and a re-arm, every turn until it got a buffer: with more connections
 * sending than the ring has buffers (1000 ping-pong peers, 512 buffers), that churn
 * was two wasted receives per echo. The others wait on the list at no cost.
 */
static void ur_feed_starved(struct uring_loop *lp)
{
	struct ur_conn *c;

	lp->fed = 0;
	while ((c = TAILQ_FIRST(&lp->starved)) != NULL && lp->fed < lp->nbufs - lp->bufs_out) {
		TAILQ_REMOVE(&lp->starved, c, link);
		c->uflags &= ~UR_STARVED;
		ur_stat(lp, STAT_rearms, 1);
		ur_maybe_rearm(lp, c);
		if (c->uflags & UR_RECV_ARMED)
			lp->fed++;
	}
}

/* ---- the other services: service.c's connections, driven by multishot poll ---- */

static void ur_svc_arm(struct uring_loop *lp, struct svc_conn *c)
{
	struct io_uring_sqe *sqe = ur_sqe(lp, UR_EXT, c);

	/* Edge-triggered, as service.c expects: a CQE per wake-up of the socket. */
	io_uring_prep_poll_multishot(sqe, c->fd, POLLIN | POLLOUT | POLLRDHUP);
	c->refs++;
}

/* service.c closes a connection: its poll must end before the struct is freed. */
static void ur_svc_closing(void *arg, struct svc_conn *c)
{
	struct uring_loop *lp = arg;

	if (c->refs > 0)
		io_uring_prep_cancel64(ur_sqe(lp, UR_IGNORE, NULL), ud_pack(UR_EXT, c), 0);
}

static void on_svc_poll(struct uring_loop *lp, struct svc_conn *c, struct io_uring_cqe *cqe)
{
	int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
	unsigned ev = cqe->res > 0 ? (unsigned)cqe->res : 0;

	if (!more)
		c->refs--;
	if (c->flags & SVC_CLOSED)
		return; /* freed by svc_tick once refs is 0 */
	if (cqe->res < 0 && cqe->res != -ECANCELED) {
		svc_fail(&lp->svc, c, -cqe->res);
		return;
	}
	svc_event(&lp->svc, c, ev & (POLLIN | POLLRDHUP | POLLHUP | POLLERR),
		  ev & (POLLOUT | POLLHUP | POLLERR), ev & POLLRDHUP, lp->now);
	if (!more && !(c->flags & SVC_CLOSED))
		ur_svc_arm(lp, c);
}

static void ur_svc_admit(struct uring_loop *lp, int fd, unsigned li, int service)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr *peer = NULL;
	struct svc_conn *c;

	if ((worker_wants_peer(lp->w) || lp->connlog) &&
	    getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		peer = (const struct sockaddr *)&ss;
	c = svc_accept(&lp->svc, fd, li, peer, (enum listen_service)service, lp->now);
	if (c != NULL)
		ur_svc_arm(lp, c);
}

static void on_ext(struct uring_loop *lp, void *ptr, struct io_uring_cqe *cqe)
{
	if (*(int *)ptr == EV_SVC)
		on_svc_poll(lp, ptr, cqe);
	else
		udp_uring_complete(lp->udp, ptr, cqe, lp->now);
}

/* ---- accepting ---- */

static void ur_arm_accept(struct uring_loop *lp, struct ur_listener *l)
{
	struct io_uring_sqe *sqe = ur_sqe(lp, UR_ACCEPT, l);

	/* Nonblocking, like every socket of echod's: service.c reads with recv(). */
	io_uring_prep_multishot_accept(sqe, (int)l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	l->armed = 1;
}

static void ur_admit(struct uring_loop *lp, int fd, unsigned li)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr *peer = NULL;
	struct limits_ticket ticket;
	struct ur_conn *c;

	/* Multishot accept gives no address: asked for only where it is needed. */
	if ((worker_wants_peer(lp->w) || lp->connlog) &&
	    getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		peer = (const struct sockaddr *)&ss;
	if (worker_admit(lp->w, fd, li, peer, &ticket) < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		worker_refuse_nomem(lp->w, fd, &ticket);
		return;
	}
	c->base.kind = EV_CONN;
	c->base.fd = fd;
	c->base.listener = (uint16_t)stats_lrow(li);
	c->base.ticket = ticket;
	c->base.state = CONN_ECHOING;
	if (lp->connlog)
		worker_conn_open(lp->w, &c->base.log, peer, li);
	timer_insert(&lp->idle, &c->base.idle, lp->now);
	lp->nconns++;
	lp->trimmed = 0;
	ur_arm_recv(lp, c);
}

/*
 * A draining worker's accept is gone: take what is still queued on the socket before
 * closing our copy. Multishot accept waits exclusively, so a wake-up consumed by our
 * cancelled request would otherwise leave a connection that no other worker hears of.
 */
static void ur_close_listener(struct uring_loop *lp, struct ur_listener *l)
{
	int fd;

	if (l->closed)
		return;
	while ((fd = accept4((int)l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		if (l->service != SERVICE_ECHO)
			ur_svc_admit(lp, fd, (unsigned)(l - lp->listeners), l->service);
		else
			ur_admit(lp, fd, (unsigned)(l - lp->listeners));
	}
	close((int)l->fd);
	l->closed = 1;
}

/*
 * A failed accept pauses accepting for UR_ACCEPT_PAUSE: out of descriptors or memory,
 * retrying at once would spin, and so would an error that persists (EINVAL...).
 */
static void ur_accept_pause(struct uring_loop *lp, struct ur_listener *l, int err)
{
	if (lp->accept_resume == 0) {
		if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
			log_warnx("accept: %s; pausing accepts for %d ms (%lu connection%s open)",
				  strerror(err), UR_ACCEPT_PAUSE, lp->nconns,
				  log_plural(lp->nconns));
		else
			log_info("accept: %s; pausing accepts for %d ms", strerror(err),
				 UR_ACCEPT_PAUSE);
		ur_stat(lp, STAT_accept_paused, 1);
		lp->accept_resume = lp->now + UR_ACCEPT_PAUSE;
	}
	if (l->armed) {
		struct io_uring_sqe *sqe = ur_sqe(lp, UR_IGNORE, NULL);

		io_uring_prep_cancel64(sqe, ud_pack(UR_ACCEPT, l), 0);
	}
}

static void on_accept(struct uring_loop *lp, struct ur_listener *l, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		l->armed = 0;
	if (cqe->res >= 0 && l->service != SERVICE_ECHO)
		ur_svc_admit(lp, cqe->res, (unsigned)(l - lp->listeners), l->service);
	else if (cqe->res >= 0)
		ur_admit(lp, cqe->res, (unsigned)(l - lp->listeners)); /* accepted is accepted */
	else if (cqe->res != -ECANCELED && !lp->draining)
		ur_accept_pause(lp, l, -cqe->res);
	if (l->armed)
		return;
	/* Ended: by our cancel, an error or the kernel. Draining, the listener goes now
	 * (whatever ended it); else it is re-armed, at once or when the pause is over. */
	if (lp->draining)
		ur_close_listener(lp, l);
	else if (lp->accept_resume == 0)
		ur_arm_accept(lp, l);
}

/* ---- signals, timers, drain ---- */

static void ur_arm_signal(struct uring_loop *lp)
{
	struct io_uring_sqe *sqe = ur_sqe(lp, UR_SIGNAL, &lp->sig_tag);

	io_uring_prep_poll_multishot(sqe, lp->w->sigfd, POLLIN);
	lp->sig_armed = 1;
}

static void ur_drain_start(struct uring_loop *lp)
{
	if (lp->draining)
		return;
	lp->draining = 1;
	lp->drain_deadline = lp->now + (uint64_t)lp->w->cfg->drain_timeout * 1000;
	for (unsigned i = 0; i < lp->nlisten; i++) {
		struct ur_listener *l = &lp->listeners[i];

		if (l->armed) {
			struct io_uring_sqe *sqe = ur_sqe(lp, UR_IGNORE, NULL);

			io_uring_prep_cancel64(sqe, ud_pack(UR_ACCEPT, l), 0);
		} else {
			ur_close_listener(lp, l);
		}
	}
	udp_uring_close(lp->udp);
	log_info("draining %lu connection%s", lp->nconns, log_plural(lp->nconns));
}

static void on_signal(struct uring_loop *lp, struct io_uring_cqe *cqe)
{
	int what;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		lp->sig_armed = 0;
	what = worker_signal(lp->w);
	if (what != WORKER_SIG_NONE)
		ur_drain_start(lp);
	/* Stop now: the drain's deadline is this turn's end (ur_timers closes the rest). */
	if (what == WORKER_SIG_STOP && lp->drain_deadline > lp->now) {
		log_info("stopping now: closing %lu connection%s", lp->nconns,
			 log_plural(lp->nconns));
		lp->drain_deadline = lp->now;
	}
	if (lp->sig_armed)
		return;
	if (cqe->res < 0 && cqe->res != -ECANCELED) {
		/* Re-armed from the timers: an error that persists must not spin. */
		log_warnx("poll(signalfd): %s; retrying in %d ms", strerror(-cqe->res),
			  UR_SIGNAL_PAUSE);
		lp->signal_resume = lp->now + UR_SIGNAL_PAUSE;
		return;
	}
	ur_arm_signal(lp);
}

static void ur_close_all(struct uring_loop *lp, enum conn_close_reason why)
{
	struct timer_node *node;

	while ((node = timer_first(&lp->idle)) != NULL)
		ur_close(lp, uconn_of(node), why);
}

/*
 * A worker that has had no connection for a while gives the pages of its receive
 * buffers back, so a burst of traffic does not leave its RSS at the whole ring's size.
 * With no connection no receive is armed and every buffer is free (in the ring or on
 * the spare stack): their contents do not matter, and a buffer the kernel fills later
 * faults in a fresh page. Once per quiet spell: churn, where the count touches 0
 * between connections, does not pay for it.
 */
static void ur_trim(struct uring_loop *lp)
{
	if (lp->trimmed || lp->nconns > 0 || lp->nzombies > 0 || lp->bufs_out > 0 ||
	    lp->now - lp->idle_since < UR_TRIM_IDLE)
		return;
	lp->trimmed = 1;
	if (madvise(lp->bufs, lp->bufs_size, MADV_DONTNEED) < 0)
		log_debug("madvise(receive buffers): %s", strerror(errno));
	else
		ur_stat(lp, STAT_ring_trims, 1);
}

static void ur_timers(struct uring_loop *lp)
{
	struct timer_node *node;

	while ((node = timer_expired(&lp->idle, lp->now)) != NULL)
		ur_close(lp, uconn_of(node), CLOSE_IDLE);
	if (lp->accept_resume != 0 && lp->now >= lp->accept_resume) {
		lp->accept_resume = 0;
		for (unsigned i = 0; i < lp->nlisten && !lp->draining; i++)
			if (!lp->listeners[i].armed && !lp->listeners[i].closed) /* UDP: closed */
				ur_arm_accept(lp, &lp->listeners[i]);
	}
	if (!lp->sig_armed && lp->signal_resume != 0 && lp->now >= lp->signal_resume) {
		lp->signal_resume = 0;
		ur_arm_signal(lp);
	}
	if (lp->draining && lp->now >= lp->drain_deadline)
		ur_close_all(lp, CLOSE_DRAIN);
	svc_tick(&lp->svc, lp->now, lp->draining && lp->now >= lp->drain_deadline);
	udp_uring_tick(lp->udp, lp->now);
	ur_trim(lp);
}

static void ur_dispatch(struct uring_loop *lp, struct io_uring_cqe *cqe)
{
	void *ptr = ud_ptr(cqe->user_data);

	switch (ud_op(cqe->user_data)) {
	case UR_ACCEPT:
		on_accept(lp, ptr, cqe);
		break;
	case UR_RECV:
		on_recv(lp, ptr, cqe);
		break;
	case UR_SEND:
		on_send(lp, ptr, cqe);
		break;
	case UR_CANCEL: {
		struct ur_conn *c = ptr;

		c->inflight--;
		if (c->base.state != CONN_CLOSED)
			ur_maybe_rearm(lp, c);
		break;
	}
	case UR_SIGNAL:
		on_signal(lp, cqe);
		break;
	case UR_IGNORE:
		break;
	case UR_EXT:
		on_ext(lp, ptr, cqe);
		break;
	}
}

static int ur_timeout_ms(const struct uring_loop *lp)
{
	int t = timer_next_ms(&lp->idle, lp->now), st = svc_next_ms(&lp->svc, lp->now);
	uint64_t other = lp->now + WORKER_HEARTBEAT_MS; /* the supervisor's watchdog */
	uint64_t udp = udp_uring_next(lp->udp);

	if (st >= 0 && (t < 0 || st < t))
		t = st;
	if (lp->accept_resume != 0 && lp->accept_resume < other)
		other = lp->accept_resume;
	if (lp->signal_resume != 0 && lp->signal_resume < other)
		other = lp->signal_resume;
	if (udp < other)
		other = udp;
	if (lp->draining && lp->drain_deadline < other)
		other = lp->drain_deadline;
	{
		int o = other > lp->now ? (int)(other - lp->now) : 0;

		t = t < 0 || o < t ? o : t;
	}
	return t;
}

static int ur_done(const struct uring_loop *lp)
{
	if (!lp->draining || lp->nconns > 0 || lp->nzombies > 0 || svc_busy(&lp->svc) > 0)
		return 0;
	for (unsigned i = 0; i < lp->nlisten; i++)
		if (!lp->listeners[i].closed)
			return 0;
	return 1;
}

/* ---- set-up ---- */

static unsigned round_pow2(unsigned v)
{
	unsigned p = 1;

	while (p < v && p < 32768)
		p <<= 1;
	return p;
}

static int ur_setup(struct uring_loop *lp, struct worker *w)
{
	int rc;

	memset(lp, 0, sizeof(*lp));
	TAILQ_INIT(&lp->starved);
	TAILQ_INIT(&lp->closed);
	lp->w = w;
	lp->connlog = log_enabled(LOG_LVL_INFO);
	lp->now = urk_now_ms();
	timer_init(&lp->idle, (uint64_t)w->cfg->idle_timeout * 1000);
	lp->nbufs = round_pow2(w->cfg->ring_buffers);
	lp->buf_size = w->cfg->ring_buffer_size;
	lp->cap = lp->nbufs / 4 < UR_CAP_MAX ? (lp->nbufs / 4 ? lp->nbufs / 4 : 1) : UR_CAP_MAX;
	/* UR_BURST caps is all of a small ring (cap is a quarter of it there): one peer
	 * that stops reading would take every buffer before its cancel lands. */
	lp->burst = UR_BURST * lp->cap;
	if (lp->burst > lp->nbufs / UR_BURST_SHARE)
		lp->burst = lp->nbufs / UR_BURST_SHARE > lp->cap ? lp->nbufs / UR_BURST_SHARE : lp->cap;
	rc = urk_ring_init(&lp->ring, &lp->caps);
	if (rc < 0)
		return rc;
	lp->ring_ok = 1;
	lp->batch = 1;
	rc = buf_ring_setup(lp);
	if (rc < 0)
		return rc;
	/* Bundles only under the byte limit: without it one receive of a flood could
	 * take a large part of the ring at once. */
	lp->have_bundle = lp->caps.mshot_limit && lp->caps.bundle;
	log_debug("io_uring: %u buffers of %u bytes, cap %u per connection, zerocopy %s, "
		  "multishot limit %s, bundles %s, batched waits %s",
		  lp->nbufs, lp->buf_size, lp->cap, lp->caps.zc ? "yes" : "no",
		  lp->caps.mshot_limit ? "yes" : "no", lp->have_bundle ? "yes" : "no",
		  lp->caps.min_wait ? "yes" : "no");
	lp->listeners = calloc(w->nlisten ? w->nlisten : 1, sizeof(*lp->listeners));
	if (lp->listeners == NULL)
		return -ENOMEM;
	lp->nlisten = w->nlisten;
	if (svc_init(&lp->svc, w, ur_svc_closing, lp) < 0)
		return -ENOMEM;
	for (unsigned i = 0; i < w->nlisten; i++) {
		lp->listeners[i].fd = (uint64_t)w->listen_fds[i];
		lp->listeners[i].service = (int)w->listen_specs[i].service;
		if (w->listen_specs[i].proto == LISTEN_UDP)
			lp->listeners[i].closed = 1; /* udp_uring's */
		else
			ur_arm_accept(lp, &lp->listeners[i]);
	}
	ur_arm_signal(lp);
	return udp_uring_setup(&lp->udp, &lp->ring, w);
}

static void ur_teardown(struct uring_loop *lp)
{
	struct ur_sendctx *x;
	struct ur_conn *c;

	if (lp->ring_ok)
		urk_ring_exit(&lp->ring); /* cancels and waits for whatever is left */
	/* No CQE can come any more: what is in flight is over. */
	while ((c = TAILQ_FIRST(&lp->closed)) != NULL)
		ur_release(lp, c);
	udp_uring_free(lp->udp);
	lp->udp = NULL;
	svc_fini(&lp->svc);
	while ((x = lp->spare_ctx) != NULL) {
		lp->spare_ctx = x->next_free;
		free(x);
	}
	free(lp->bnext);
	free(lp->blen);
	free(lp->spare);
	free(lp->slot_bid);
	free(lp->bid_slot);
	if (lp->bufs != NULL)
		munmap(lp->bufs, lp->bufs_size);
	if (lp->br != NULL)
		munmap(lp->br, lp->br_size);
	free(lp->listeners);
	free(lp->check_mark);
}

/* ---- invariants (Debug and sanitizer builds) ---- */

#ifdef ECHOD_CHECK_INVARIANTS
static void __attribute__((noreturn, format(printf, 2, 3)))
ur_broken(const struct uring_loop *lp, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("io_uring invariant broken: %s (connections %lu open, %lu closed; buffers "
		  "%u lent, %u spare of %u)",
		  msg, lp->nconns, lp->nzombies, lp->bufs_out, lp->nspare, lp->nbufs);
	abort();
}

/* Marks buffer bid as seen where; each buffer is in one place at a time. */
static void ur_check_mark(struct uring_loop *lp, unsigned bid, const char *where)
{
	if (bid >= lp->nbufs)
		ur_broken(lp, "buffer %u (%s) out of range", bid, where);
	if (lp->check_mark[bid])
		ur_broken(lp, "buffer %u twice (%s)", bid, where);
	lp->check_mark[bid] = 1;
}

/* The buffers a connection holds: its queue, and the one a SEND_ZC still reads. */
static unsigned ur_check_conn(struct uring_loop *lp, struct ur_conn *c, int closed)
{
	unsigned held = 0, bid = c->qhead, due;

	if ((c->base.state == CONN_CLOSED) != closed)
		ur_broken(lp, "connection %d in state %d on the %s list", c->base.fd,
			  (int)c->base.state, closed ? "closed" : "open");
	for (unsigned i = 0; i < c->qcount; i++, bid = lp->bnext[bid], held++)
		ur_check_mark(lp, bid, "a connection's queue");
	if (c->uflags & UR_ZC_OUT) {
		ur_check_mark(lp, c->zc_bid, "awaiting a SEND_ZC notification");
		held++;
	}
	if ((c->uflags & UR_SEND_BUSY) && (c->in_send == 0 || c->in_send > c->qcount))
		ur_broken(lp, "connection %d sends %u of %u queued buffers", c->base.fd,
			  c->in_send, c->qcount);
	due = !!(c->uflags & UR_RECV_ARMED) + !!(c->uflags & UR_SEND_BUSY) +
	      !!(c->uflags & UR_ZC_WAIT);
	if (c->inflight < due)
		ur_broken(lp, "connection %d: %u requests in flight, %u known", c->base.fd,
			  c->inflight, due);
	/* Open, it waits for something: a receive, a send, buffers, or a cancel's end. */
	if (!closed && c->inflight == 0 && !(c->uflags & UR_STARVED))
		ur_broken(lp, "connection %d (state %d) waits for nothing", c->base.fd,
			  (int)c->base.state);
	if (closed && c->inflight == 0)
		ur_broken(lp, "connection %d closed with nothing in flight, not released",
			  c->base.fd);
	return held;
}

/*
 * After every turn: every provided buffer is in exactly one place (the ring, the
 * spare stack, a connection's queue, or awaiting a SEND_ZC notification), the lists
 * hold what the counts say and only connections in the matching state, and no
 * starved connection waits while more buffers are free than were re-armed for.
 */
static void ur_check(struct uring_loop *lp)
{
	unsigned long open = 0, closed = 0, starved = 0;
	unsigned held = 0;
	struct timer_node *node;
	struct ur_conn *c;

	if (lp->check_mark == NULL && (lp->check_mark = malloc(lp->nbufs)) == NULL)
		return;
	memset(lp->check_mark, 0, lp->nbufs);
	if (lp->nspare + lp->bufs_out > lp->nbufs)
		ur_broken(lp, "more buffers lent and spare than there are");
	for (unsigned i = 0; i < lp->nspare; i++)
		ur_check_mark(lp, lp->spare[i], "the spare stack");
	for (node = lp->idle.head.next; node != &lp->idle.head; node = node->next) {
		held += ur_check_conn(lp, uconn_of(node), 0);
		open++;
	}
	TAILQ_FOREACH(c, &lp->closed, link)
	{
		held += ur_check_conn(lp, c, 1);
		closed++;
	}
	TAILQ_FOREACH(c, &lp->starved, link)
	{
		if (!(c->uflags & UR_STARVED) || (c->uflags & UR_RECV_ARMED) ||
		    c->base.state == CONN_CLOSED)
			ur_broken(lp, "connection %d on the starved list (flags %#x, state %d)",
				  c->base.fd, c->uflags, (int)c->base.state);
		starved++;
	}
	if (open != lp->nconns || closed != lp->nzombies)
		ur_broken(lp, "lists hold %lu open and %lu closed connections", open, closed);
	if (held != lp->bufs_out)
		ur_broken(lp, "connections hold %u buffers", held);
	if (starved > 0 && lp->nbufs - lp->bufs_out > lp->fed)
		ur_broken(lp, "%lu connections starved while %u buffers are free for %u re-armed",
			  starved, lp->nbufs - lp->bufs_out, lp->fed);
	udp_uring_check(lp->udp);
}
#else
static void ur_check(struct uring_loop *lp)
{
	(void)lp;
}
#endif

/* Handles every CQE there is; how many. */
static unsigned ur_handle_cqes(struct uring_loop *lp)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	/* Each CQE goes back to the kernel once handled: a handler that must submit to
	 * find room for an SQE leaves the CQ room for what that submission completes. */
	io_uring_for_each_cqe(&lp->ring, head, cqe)
	{
		ur_dispatch(lp, cqe);
		io_uring_cq_advance(&lp->ring, 1);
		seen++;
	}
	return seen;
}

/*
 * One turn: submit, wait for CQEs or the next deadline, handle the batch. A busy
 * worker waits for a batch (the kernel's min-wait, where it has one): the CQEs of
 * what it submits (sends on the loopback complete inside the submit) plus `batch`
 * more, so it gathers a batch per system call while an idle one sleeps as before.
 */
static int ur_turn(struct uring_loop *lp)
{
	unsigned seen = 0;
	int rc, batched;

	/*
	 * The ring ran dry last turn: submit first, without waiting, and take back the
	 * buffers of the sends that completed inside the submission before the receives
	 * run. Without this, under DEFER_TASKRUN the wait runs the receives while the
	 * buffers of the sends it just completed are still ours: a saturated worker
	 * offered half its ring per turn, and the rest of its connections got -ENOBUFS
	 * and a re-arm. One more system call, only in turns that follow a dry one.
	 * Starved connections are fed from what came back, and the wait that follows
	 * does not sleep when this brought anything: what it started (a connection fed,
	 * a send queued) may be all there is to wait for, and the end of the turn (the
	 * feeding, the reaping) must see it.
	 */
	if (lp->dry) {
		lp->dry = 0;
		rc = urk_submit(&lp->ring);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			return rc;
		seen = ur_handle_cqes(lp);
		buf_publish(lp);
		ur_feed_starved(lp);
	}

	/* With few connections a turn that brought little waits for the next CQE and no
	 * more: a batched wait costs a lone connection twice the CPU of a plain one. */
	batched = lp->batch >= UR_BATCH_FEW || lp->nconns >= UR_BATCH_CONNS;
	rc = urk_wait(&lp->ring, &lp->caps, batched ? lp->batch : 0,
		      seen > 0 ? 0 : ur_timeout_ms(lp));
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		return rc;
	lp->now = urk_now_ms();
	stats_heartbeat(lp->w->stats, lp->now);
	seen += ur_handle_cqes(lp);
	/* Wait next for as many as this turn brought: under a steady load the batch grows
	 * until the min-wait bound ends the waits, and a turn gathers what arrives in about
	 * that bound. Waiting for fewer (half, say) lets any small batch sustain itself:
	 * the CQEs that come in while a turn runs are as many as the next awaits. */
	lp->batch = seen > UR_BATCH_MAX ? UR_BATCH_MAX : (seen ? seen : 1);
	buf_level_update(lp);
	ur_timers(lp);
	ur_reap(lp);
	buf_publish(lp);
	ur_feed_starved(lp);
	ur_check(lp);
	return 0;
}

int loop_uring_run(struct worker *w)
{
	static struct uring_loop lp;
	int rc = ur_setup(&lp, w);

	if (rc < 0) {
		log_warnx("io_uring set-up: %s", strerror(-rc));
		ur_teardown(&lp);
		return EXIT_OSERR;
	}
	worker_ready(w);
	while (!ur_done(&lp)) {
		rc = ur_turn(&lp);
		if (rc < 0) {
			log_warnx("io_uring_enter: %s", strerror(-rc));
			break;
		}
	}
	ur_close_all(&lp, CLOSE_DRAIN);
	ur_teardown(&lp);
	return rc < 0 ? EXIT_OSERR : 0;
}
