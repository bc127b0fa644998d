/*
 * uring-echo: the io_uring peer of bench/compare, written the way liburing's
 * documentation teaches: one multishot accept, one multishot recv per
 * connection into a ring of provided buffers, one send per received buffer,
 * and the buffer handed back to the ring when its send has completed.
 *
 * Correctness beyond the textbook loop:
 * - ordering and short sends: a connection has at most one send in flight; the
 *   buffers it received wait in order behind it, and a short send is resent
 *   from where it stopped before the next buffer goes;
 * - backpressure: a connection owing more than OWED_HIGH bytes has its recv
 *   cancelled, and it is armed again once the debt is under OWED_LOW, so a
 *   peer that never reads is pushed back by TCP instead of draining the ring;
 * - an empty buffer ring (ENOBUFS) ends a connection's recv; it is armed again
 *   once a send has handed buffers back;
 * - half-close: on the peer's FIN whatever is owed goes out, then the socket
 *   is closed.
 *
 *   uring-echo PORT [BUFFER-SIZE [BUFFERS]]   listens on 127.0.0.1:PORT
 *                                             (default 16384 bytes x 1024)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif

#define BGID      1
#define OWED_HIGH (1u << 20) /* stop receiving above this many unsent bytes */
#define OWED_LOW  (256u << 10)

enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CANCEL };

struct pending { /* a received buffer waiting for (or in) its send */
	uint16_t bid;
	uint32_t off, len;
};

struct conn {
	int fd;
	bool recv_armed, sending, eof, dead, starved;
	bool cancelling; /* a cancel of its recv is on its way */
	bool throttled;  /* its recv was stopped for owing too much */
	unsigned inflight;     /* operations the kernel still holds for it */
	size_t owed;           /* bytes received and not yet sent */
	struct pending *q;     /* ring of pending buffers, in arrival order */
	unsigned qhead, qlen, qcap;
	struct conn *next_starved;
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static unsigned buf_size = 16384, nbufs = 1024;
static int listen_fd;
static struct conn *starved_head;
static unsigned recycled; /* buffers handed back since starved ones were re-armed */

static uint64_t tag(struct conn *c, enum op op)
{
	return (uint64_t)(uintptr_t)c | (uint64_t)op;
}

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	while (sqe == NULL) { /* the submission queue is full: hand it over */
		int r = io_uring_submit(&ring);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			fprintf(stderr, "uring-echo: submit: %s\n", strerror(-r));
			exit(1);
		}
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

static void arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, tag(c, OP_RECV));
	c->recv_armed = true;
	c->throttled = false;
	c->inflight++;
}

static void cancel_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_cancel64(sqe, tag(c, OP_RECV), 0);
	io_uring_sqe_set_data64(sqe, tag(c, OP_CANCEL));
	c->cancelling = true;
	c->inflight++;
}

static void send_head(struct conn *c)
{
	struct pending *p = &c->q[c->qhead];
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_send(sqe, c->fd, bufs + (size_t)p->bid * buf_size + p->off, p->len - p->off,
	                   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, tag(c, OP_SEND));
	c->sending = true;
	c->inflight++;
}

static void recycle(uint16_t bid)
{
	io_uring_buf_ring_add(br, bufs + (size_t)bid * buf_size, buf_size, bid,
	                      io_uring_buf_ring_mask(nbufs), 0);
	io_uring_buf_ring_advance(br, 1);
	recycled++;
}

/* Arms the recv again when the connection wants one: not after FIN or an error,
 * not while starved of buffers, and when throttled only once under OWED_LOW. */
static void rearm_if_wanted(struct conn *c)
{
	if (!c->recv_armed && !c->dead && !c->eof && !c->starved &&
	    (!c->throttled || c->owed <= OWED_LOW))
		arm_recv(c);
}

/* Closes and frees the connection once the kernel holds nothing of it. */
static void maybe_finish(struct conn *c)
{
	if (!c->dead && !(c->eof && c->qlen == 0))
		return;
	if (c->recv_armed) { /* an error with recv still armed: stop it first */
		if (!c->cancelling)
			cancel_recv(c);
		return;
	}
	if (c->starved) { /* on the starved list: rearm_starved frees it, soon */
		recycled++;
		return;
	}
	if (c->inflight > 0)
		return;
	while (c->qlen > 0) {
		recycle(c->q[c->qhead].bid);
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
	}
	close(c->fd);
	free(c->q);
	free(c);
}

static void on_accept(struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_accept();
	if (cqe->res < 0)
		return; /* EMFILE and the like: this connection is lost, not the server */
	int one = 1;
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL || setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		free(c);
		close(cqe->res);
		return;
	}
	c->fd = cqe->res;
	arm_recv(c);
}

static bool enqueue(struct conn *c, uint16_t bid, uint32_t len)
{
	if (c->qlen == c->qcap) {
		unsigned cap = c->qcap ? c->qcap * 2 : 8;
		struct pending *q = malloc(cap * sizeof(*q));
		if (q == NULL)
			return false;
		for (unsigned i = 0; i < c->qlen; i++)
			q[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = q;
		c->qhead = 0;
		c->qcap = cap;
	}
	c->q[(c->qhead + c->qlen) % c->qcap] = (struct pending){bid, 0, len};
	c->qlen++;
	c->owed += len;
	return true;
}

static void on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE)) { /* this recv is over */
		c->recv_armed = false;
		c->cancelling = false;
		c->inflight--;
	}
	if (cqe->res > 0) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		if (c->dead || !enqueue(c, bid, (uint32_t)cqe->res)) {
			recycle(bid);
			c->dead = true;
		} else if (!c->sending) {
			send_head(c);
		}
		if (!c->dead && c->recv_armed && !c->cancelling && c->owed > OWED_HIGH) {
			c->throttled = true; /* backpressure: receive no more until it is sent */
			cancel_recv(c);
		}
	} else if (cqe->res == 0) {
		c->eof = true;
	} else if (cqe->res == -ENOBUFS) {
		if (!c->dead && !c->starved) { /* the ring is empty: wait for a recycle */
			c->starved = true;
			c->next_starved = starved_head;
			starved_head = c;
		}
	} else if (cqe->res != -ECANCELED) {
		c->dead = true;
	}
	rearm_if_wanted(c);
	maybe_finish(c);
}

static void on_send(struct conn *c, struct io_uring_cqe *cqe)
{
	struct pending *p = &c->q[c->qhead];

	c->sending = false;
	c->inflight--;
	if (cqe->res <= 0) {
		c->dead = true; /* 0 for a non-empty send would only repeat */
	} else {
		p->off += (uint32_t)cqe->res;
		c->owed -= (size_t)cqe->res;
		if (p->off == p->len) { /* this buffer is echoed: back to the ring */
			recycle(p->bid);
			c->qhead = (c->qhead + 1) % c->qcap;
			c->qlen--;
		}
		if (c->qlen > 0)
			send_head(c); /* the next buffer, or the rest of a short send */
	}
	rearm_if_wanted(c);
	maybe_finish(c);
}

/* Connections whose recv ended for want of buffers get it back. */
static void rearm_starved(void)
{
	struct conn *c = starved_head;

	starved_head = NULL;
	recycled = 0;
	while (c != NULL) {
		struct conn *next = c->next_starved;
		c->starved = false;
		rearm_if_wanted(c);
		maybe_finish(c);
		c = next;
	}
}

static void setup_buffers(void)
{
	size_t ring_bytes = nbufs * sizeof(struct io_uring_buf);
	struct io_uring_buf_reg reg = {0};
	int r;

	br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	bufs = malloc((size_t)nbufs * buf_size);
	if (br == MAP_FAILED || bufs == NULL) {
		fprintf(stderr, "uring-echo: out of memory for %u buffers\n", nbufs);
		exit(1);
	}
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = nbufs;
	reg.bgid = BGID;
	r = io_uring_register_buf_ring(&ring, &reg, 0);
	if (r < 0) {
		fprintf(stderr, "uring-echo: io_uring_register_buf_ring: %s\n", strerror(-r));
		exit(1);
	}
	io_uring_buf_ring_init(br);
	for (unsigned i = 0; i < nbufs; i++)
		io_uring_buf_ring_add(br, bufs + (size_t)i * buf_size, buf_size, (uint16_t)i,
		                      io_uring_buf_ring_mask(nbufs), (int)i);
	io_uring_buf_ring_advance(br, (int)nbufs);
}

static int listen_on(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0) {
		perror("uring-echo: listen");
		exit(1);
	}
	return fd;
}

static unsigned arg(const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "usage: uring-echo PORT [BUFFER-SIZE [BUFFERS (power of 2)]]\n");
		exit(64);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	struct io_uring_params p = {0};
	int r;

	if (argc < 2 || argc > 4)
		arg("", 1, 0);
	listen_fd = listen_on((int)arg(argv[1], 1, 65535));
	if (argc > 2)
		buf_size = arg(argv[2], 512, 1u << 20);
	if (argc > 3)
		nbufs = arg(argv[3], 1, 32768);
	if (nbufs & (nbufs - 1))
		arg("", 1, 0);
	signal(SIGPIPE, SIG_IGN);

	/* One thread submits and reaps: task work runs when it waits (kernel 6.1). */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	r = io_uring_queue_init_params(4096, &ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_COOP_TASKRUN;
		r = io_uring_queue_init_params(4096, &ring, &p);
	}
	if (r < 0) {
		fprintf(stderr, "uring-echo: io_uring_queue_init: %s\n", strerror(-r));
		return 1;
	}
	setup_buffers();
	arm_accept();

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;

		r = io_uring_submit_and_wait(&ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			fprintf(stderr, "uring-echo: wait: %s\n", strerror(-r));
			return 1;
		}
		io_uring_for_each_cqe(&ring, head, cqe)
		{
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			struct conn *c = (struct conn *)(uintptr_t)(ud & ~(uint64_t)7);

			seen++;
			switch (ud & 7) {
			case OP_ACCEPT:
				on_accept(cqe);
				break;
			case OP_RECV:
				on_recv(c, cqe);
				break;
			case OP_SEND:
				on_send(c, cqe);
				break;
			case OP_CANCEL:
				c->inflight--;
				maybe_finish(c);
				break;
			}
		}
		io_uring_cq_advance(&ring, seen);
		if (starved_head != NULL && recycled > 0)
			rearm_starved();
	}
}
