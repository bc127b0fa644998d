/*
 * Fuzz target: the TCP echo state machine (src/echo.c) against a fake network.
 *
 * The input is a script: connections open, peers write, read, stop reading, send a
 * FIN or a reset, recv calls come back short, EINTR and socket errors are injected,
 * edges are delivered in batches, time passes, connections are closed from outside.
 * The fake plays the kernel faithfully enough that a correct echo path always
 * finishes: it raises an edge where epoll would (data or a FIN arriving, send space
 * opening, a short read that left data behind), and recv/send return only what a
 * nonblocking TCP socket may.
 *
 * Checked after every step:
 *   - every byte sent back is the next byte its peer sent (in order, unchanged, on
 *     the right connection), and each send offers exactly what is owed;
 *   - the server holds exactly the bytes it owes, in the connection's one buffer
 *     (received - echoed == the tail in struct pending), and nothing else;
 *   - it reads nothing while it holds a tail (backpressure), receives into its read
 *     buffer and sends from that same memory (no copy), always with MSG_NOSIGNAL;
 *   - buffers, connections, the ready list, counters and limit tickets add up;
 *   - no call on a closed descriptor, no close twice, a close only for a reason;
 *   - an idle close comes between timeout and timeout + granule of inactivity.
 * At the end the network turns perfect and every connection must settle: its echo
 * complete (bytes out == bytes in), a peer's FIN answered by a close after the last
 * byte, a reset or a socket error by a close.
 *
 * The script, byte by byte (0 once it runs out): buffer size 8 << (n % 6), idle
 * timeout n * 10 ms, spare buffers n % 3, spare structs n % 3; then steps, the
 * opcode n % 14: 0 open [window / 8]; peer steps [peer, arg]: 1 write [arg, n: 1 +
 * (arg << 8 | n) % (4 * size) bytes], 2 read [arg bytes, 255: all], 3 window [arg
 * * 8], 4 FIN, 5 reset, 6 EINTR [odd arg: for the next send, else the next call],
 * 7 a socket error [arg % 5: which, arg / 5 odd: for the next send], 8 short recv
 * [cap - 1], 9 spurious edge [flags]; 10, 11 turn [rotation of the batch]; 12 time
 * passes [arg * 5 ms]; 13 close from outside [peer, 4: all]. FUZZ_TRACE=1 prints
 * every step and call.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "echod/echo.h"
#include "echod/worker.h"
#include "fuzz.h"

#define NPEERS	     4
#define FD_BASE	     1000
#define START_MS     1000
#define SETTLE_TURNS 100000

enum force { FORCE_NONE, FORCE_IDLE, FORCE_OTHER };

/* One connection as its client and the kernel between see it. */
struct peer {
	int fd;		   /* 0: slot free */
	struct conn *c;	   /* the server's struct, until it is reclaimed */
	int open;	   /* the server has not closed fd */
	uint64_t sent;	   /* bytes the peer wrote */
	uint64_t received; /* of those, bytes the server received */
	uint64_t echoed;   /* bytes the server sent back */
	uint64_t read;	   /* of those, bytes the peer read */
	uint64_t window;   /* echoed - read may not grow beyond it */
	uint64_t active;   /* ms: the last byte moved, or the open */
	uint32_t edge;	   /* CONN_* raised since the last wait */
	uint32_t recv_cap; /* the next recv returns at most this; 0: no cap */
	int fault;	   /* errno for the next recv or send; 0: none */
	int fault_send;	   /* ... for the next send only: it came after a recv */
	int fin, reset, reset_told, failed;
};

static struct net {
	struct echo_ctx echo;
	struct stats_slot stats;
	struct limits limits;
	uint64_t total, open_gauge; /* the limits' counters */
	struct peer peers[NPEERS];
	int next_fd;
	enum force forcing; /* a close decided outside the connection */
	uint64_t opened, closed, bytes_in, bytes_out;
	size_t buf_size;
	uint64_t timeout;
	const uint8_t *in; /* the rest of the script */
	size_t left;
	int trace; /* FUZZ_TRACE set: print each step (to read a crash) */
} net;

#define TRACE(...)                                                                                 \
	do {                                                                                       \
		if (net.trace)                                                                     \
			fprintf(stderr, __VA_ARGS__);                                              \
	} while (0)

static void fail(const struct peer *p, const char *what)
{
	fprintf(stderr, "fuzz_conn: %s", what);
	if (p != NULL)
		fprintf(stderr,
			" (fd %d: sent %llu received %llu echoed %llu read %llu window %llu, "
			"fin %d reset %d failed %d)",
			p->fd, (unsigned long long)p->sent, (unsigned long long)p->received,
			(unsigned long long)p->echoed, (unsigned long long)p->read,
			(unsigned long long)p->window, p->fin, p->reset, p->failed);
	fprintf(stderr, "\n");
	abort();
}

#define CHECK(p, cond, what)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail(p, what);                                                             \
	} while (0)

static unsigned take(void)
{
	if (net.left == 0)
		return 0;
	net.left--;
	return *net.in++;
}

/* Byte k of what the peer on fd writes: a hash, so a shifted, repeated or foreign
 * byte shows. */
static uint8_t pattern(int fd, uint64_t k)
{
	uint64_t x = (k + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)fd * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 31;
	return (uint8_t)(x * 0x94d049bb133111ebull >> 56);
}

static struct peer *peer_of(int fd, const char *call)
{
	for (int i = 0; i < NPEERS; i++)
		if (net.peers[i].fd == fd && net.peers[i].open)
			return &net.peers[i];
	fprintf(stderr, "fuzz_conn: %s on fd %d, which is not open\n", call, fd);
	abort();
}

static ssize_t traced(const char *call, const struct peer *p, size_t len, ssize_t n)
{
	int err = errno;

	TRACE("    %s fd %d, %zu bytes: %zd%s%s\n", call, p->fd, len, n, n < 0 ? " " : "",
	      n < 0 ? strerror(err) : "");
	errno = err;
	return n;
}

/* An injected failure: EINTR, or the socket's pending error. */
static ssize_t inject(struct peer *p)
{
	errno = p->fault;
	p->fault_send = 0;
	if (p->fault != EINTR)
		p->failed = 1;
	p->fault = 0;
	return -1;
}

static ssize_t do_recv(struct peer *p, int fd, void *buf, size_t len, int flags)
{
	uint64_t avail = p->sent - p->received;
	size_t n;

	CHECK(p, flags == 0 && buf == net.echo.rbuf && len == net.buf_size,
	      "recv not into the read buffer");
	CHECK(p, p->c->pending.buf == NULL, "recv while holding unsent bytes");
	if (p->fault != 0 && !p->fault_send)
		return inject(p);
	if (p->reset) {
		if (p->reset_told)
			return 0;
		p->reset_told = 1;
		errno = ECONNRESET;
		return -1;
	}
	if (avail == 0) {
		if (p->fin)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	n = avail < len ? (size_t)avail : len;
	if (p->recv_cap != 0 && n > p->recv_cap)
		n = p->recv_cap;
	p->recv_cap = 0;
	for (size_t i = 0; i < n; i++)
		((uint8_t *)buf)[i] = pattern(fd, p->received + i);
	p->received += n;
	net.bytes_in += n;
	p->active = net.echo.now;
	/* A short read that left bytes behind: they arrived after it, with a new edge. */
	if (n < len && p->received < p->sent)
		p->edge |= CONN_READABLE;
	return (ssize_t)n;
}

static ssize_t do_send(struct peer *p, int fd, const void *buf, size_t len, int flags)
{
	const struct pending *tail = &p->c->pending;
	const uint8_t *b = buf;
	uint64_t inflight = p->echoed - p->read, space;
	size_t n;

	CHECK(p, flags & MSG_NOSIGNAL, "send without MSG_NOSIGNAL");
	/* No copy: an echo goes out of the read buffer, a flush out of the very buffer
	 * the connection kept, and either offers exactly what is owed. */
	if (tail->buf != NULL)
		CHECK(p, buf == tail->buf + tail->off && len == tail->len,
		      "flush is not the tail held");
	else
		CHECK(p, buf == net.echo.rbuf && len > 0 && len <= net.buf_size,
		      "echo not from the read buffer");
	CHECK(p, p->echoed + len == p->received, "send does not offer exactly what is owed");
	if (p->fault != 0)
		return inject(p);
	if (p->reset) {
		errno = p->reset_told ? EPIPE : ECONNRESET;
		p->reset_told = 1;
		return -1;
	}
	space = p->window > inflight ? p->window - inflight : 0;
	if (space == 0) {
		errno = EAGAIN;
		return -1;
	}
	n = space < len ? (size_t)space : len;
	for (size_t i = 0; i < n; i++)
		CHECK(p, b[i] == pattern(fd, p->echoed + i), "echo out of order or corrupted");
	p->echoed += n;
	net.bytes_out += n;
	p->active = net.echo.now;
	return (ssize_t)n;
}

static ssize_t fake_recv(int fd, void *buf, size_t len, int flags)
{
	struct peer *p = peer_of(fd, "recv");

	return traced("recv", p, len, do_recv(p, fd, buf, len, flags));
}

static ssize_t fake_send(int fd, const void *buf, size_t len, int flags)
{
	struct peer *p = peer_of(fd, "send");

	return traced("send", p, len, do_send(p, fd, buf, len, flags));
}

static int fake_close(int fd)
{
	struct peer *p = peer_of(fd, "close");

	if (net.forcing == FORCE_IDLE)
		CHECK(p, net.echo.now - p->active >= net.timeout, "idle close too early");
	if (net.forcing == FORCE_NONE && !p->reset && !p->failed) {
		CHECK(p, p->fin, "closed although the peer did not close");
		CHECK(p, p->echoed == p->sent, "closed on the peer's FIN with bytes still owed");
	}
	TRACE("    close fd %d\n", fd);
	p->open = 0;
	net.closed++;
	return 0;
}

static int on_ready_list(const struct conn *c)
{
	unsigned n = 0;

	for (const struct conn *r = net.echo.ready; r != NULL; r = r->next) {
		CHECK(NULL, ++n <= 2 * NPEERS, "ready list too long, or a cycle");
		CHECK(NULL, r->flags & CONN_READY, "on the ready list without CONN_READY");
		if (r == c)
			return 1;
	}
	return 0;
}

static void check_peer(const struct peer *p, unsigned *held)
{
	const struct conn *c = p->c;

	if (!p->open) {
		CHECK(p, c == NULL || (c->state == CONN_CLOSED && c->fd == -1),
		      "closed descriptor, open struct");
		return;
	}
	CHECK(p, c != NULL && c->kind == EV_CONN && c->fd == p->fd && c->state != CONN_CLOSED,
	      "open descriptor, closed struct");
	CHECK(p, p->received - p->echoed == c->pending.len, "owes bytes it does not hold");
	CHECK(p, (c->state == CONN_BLOCKED) == (c->pending.buf != NULL),
	      "holds a buffer iff blocked");
	CHECK(p, c->pending.buf != NULL || c->pending.len == 0, "a tail without a buffer");
	CHECK(p, c->pending.off + c->pending.len <= net.buf_size, "tail beyond its buffer");
	CHECK(p, ((c->flags & CONN_READY) != 0) == on_ready_list(c), "CONN_READY out of step");
	*held += c->pending.buf != NULL;
}

static uint64_t counter(enum stats_counter c)
{
	return stats_get(&net.stats, c);
}

static void check_all(void)
{
	unsigned long open = 0;
	unsigned held = 0;
	uint64_t closed = 0;

	for (int i = 0; i < NPEERS; i++) {
		if (net.peers[i].fd == 0)
			continue;
		check_peer(&net.peers[i], &held);
		open += net.peers[i].open;
	}
	on_ready_list(NULL);
	CHECK(NULL, net.echo.nconns == open, "nconns");
	CHECK(NULL, net.total == open && net.open_gauge == open, "limit tickets");
	CHECK(NULL, net.echo.bufs.outstanding == held + (net.echo.rbuf != NULL),
	      "buffers outstanding beyond one per blocked connection and the read buffer");
	CHECK(NULL, net.echo.nspare <= net.echo.max_spare, "spare structs");
	CHECK(NULL, counter(STAT_buffers_held) == held, "buffers_held gauge");
	CHECK(NULL, counter(STAT_bytes_in) == net.bytes_in, "bytes_in counter");
	CHECK(NULL, counter(STAT_bytes_out) == net.bytes_out, "bytes_out counter");
	for (int r = STAT_closed_eof; r <= STAT_closed_drain; r++)
		closed += counter((enum stats_counter)r);
	CHECK(NULL, closed == net.closed, "closed counters");
}

/* After an idle sweep, nobody open has been idle for timeout + granule. */
static void check_idle_bounds(void)
{
	for (int i = 0; i < NPEERS; i++) {
		const struct peer *p = &net.peers[i];

		if (p->open && net.timeout > 0)
			CHECK(p, net.echo.now - p->active < net.timeout + net.echo.idle.granule,
			      "idle for longer than the timeout, still open");
	}
}

/* Closed connections whose struct the echo path may have freed: no more events. */
static void forget_closed(void)
{
	for (int i = 0; i < NPEERS; i++)
		if (!net.peers[i].open)
			net.peers[i].c = NULL;
}

/* One turn of the loop: a batch of edges (starting at peer rot), the ready list,
 * the idle sweep, the reclaim. */
static void turn(unsigned rot)
{
	struct conn *batch[NPEERS];
	uint32_t flags[NPEERS];
	int n = 0;

	for (int k = 0; k < NPEERS; k++) {
		struct peer *p = &net.peers[(k + (int)rot) % NPEERS];

		if (p->c != NULL && p->edge != 0) {
			batch[n] = p->c;
			flags[n++] = p->edge;
			p->edge = 0;
		}
	}
	TRACE("turn: %d edges, now %llu\n", n, (unsigned long long)net.echo.now);
	for (int i = 0; i < n; i++) {
		TRACE("  event fd %d flags %#x\n", batch[i]->fd, (unsigned)flags[i]);
		echo_event(&net.echo, batch[i], flags[i]);
		check_all();
	}
	echo_run_ready(&net.echo);
	forget_closed(); /* the ready walk frees what was closed on the ready list */
	check_all();
	net.forcing = FORCE_IDLE;
	echo_expire(&net.echo);
	net.forcing = FORCE_NONE;
	check_idle_bounds();
	CHECK(NULL, echo_next_timeout_ms(&net.echo) != 0, "a timeout due right after the sweep");
	CHECK(NULL, net.timeout > 0 || echo_next_timeout_ms(&net.echo) == -1,
	      "a timeout without an idle timeout");
	echo_reclaim(&net.echo);
	for (int i = 0; i < NPEERS; i++)
		if (net.peers[i].fd != 0 && !net.peers[i].open)
			memset(&net.peers[i], 0, sizeof(net.peers[i])); /* gone: no more events */
	check_all();
}

static void op_open(void)
{
	struct limits_ticket ticket;
	uint8_t key[16] = {0};
	struct peer *p = NULL;

	for (int i = 0; i < NPEERS && p == NULL; i++)
		if (net.peers[i].fd == 0)
			p = &net.peers[i];
	if (p == NULL)
		return;
	CHECK(NULL, limits_admit(&net.limits, key, &ticket) == LIMITS_OK, "admit");
	p->fd = net.next_fd++;
	p->open = 1;
	p->window = 8u * take();
	p->active = net.echo.now;
	p->edge = CONN_WRITABLE; /* a new socket is writable */
	p->c = echo_open(&net.echo, p->fd, &ticket);
	CHECK(p, p->c != NULL, "echo_open");
	net.opened++;
	TRACE("open fd %d, window %llu\n", p->fd, (unsigned long long)p->window);
}

/* Peer actions on connection i; nothing happens to a connection the server closed. */
static void op_peer(unsigned op, struct peer *p)
{
	unsigned arg = take();
	uint64_t had;

	if (!p->open)
		return;
	TRACE("fd %d: %s %u\n", p->fd,
	      (const char *[]){"write", "read", "window", "fin", "reset", "eintr", "error",
			       "short recv", "spurious edge"}[op],
	      arg);
	switch (op) {
	case 0: /* write */
		if (!p->fin && !p->reset) {
			p->sent +=
			    1 + (arg << 8 | take()) % (4 * net.buf_size); /* big-endian 16 bits */
			p->edge |= CONN_READABLE;
		}
		break;
	case 1: /* read: space opens */
		had = p->read;
		p->read += arg == 255 ? p->echoed - p->read
				      : (arg < p->echoed - p->read ? arg : p->echoed - p->read);
		if (p->read > had)
			p->edge |= CONN_WRITABLE;
		break;
	case 2: /* the window changes */
		if (8u * arg > p->window)
			p->edge |= CONN_WRITABLE;
		p->window = 8u * arg;
		break;
	case 3:
		if (!p->fin && !p->reset) {
			p->fin = 1;
			p->edge |= CONN_READABLE | CONN_RDHUP;
		}
		break;
	case 4:
		p->reset = 1;
		p->edge |= CONN_READABLE | CONN_WRITABLE | CONN_RDHUP;
		break;
	case 5:
		if (p->fault == 0) { /* a socket error stays until it is reported */
			p->fault = EINTR;
			p->fault_send = arg & 1;
		}
		break;
	case 6: { /* a socket error, reported with an edge; or one that comes in between
		   * a recv and its echo, reported by the send */
		static const int errs[] = {ECONNRESET, EPIPE, ETIMEDOUT, EHOSTUNREACH, ENOBUFS};

		p->fault = errs[arg % 5];
		p->fault_send = arg / 5 & 1;
		p->edge |= CONN_READABLE | CONN_WRITABLE;
		break;
	}
	case 7:
		p->recv_cap = 1 + arg;
		break;
	case 8: /* epoll may report readiness that is gone by the time of the call */
		p->edge |= arg & (CONN_READABLE | CONN_WRITABLE);
		break;
	}
}

/* Closes from outside: the idle sweep is part of each turn; this is a drain deadline
 * (all of them) or a failed epoll_ctl (one). */
static void op_close(unsigned which)
{
	TRACE("close %u from outside\n", which);
	net.forcing = FORCE_OTHER;
	if (which >= NPEERS)
		echo_close_all(&net.echo, CLOSE_DRAIN);
	else if (net.peers[which].c != NULL)
		echo_close(&net.echo, net.peers[which].c, CLOSE_ERROR);
	net.forcing = FORCE_NONE;
}

static void step(void)
{
	unsigned op = take() % 14;

	if (op == 0)
		op_open();
	else if (op <= 9)
		op_peer(op - 1, &net.peers[take() % NPEERS]);
	else if (op <= 11)
		turn(take());
	else if (op == 12)
		net.echo.now += 5u * take(); /* time passes; the next turn sweeps */
	else
		op_close(take() % (NPEERS + 1));
	check_all();
}

/* The network turns perfect: peers read everything, nothing fails. Every connection
 * must come to rest with its echo complete, or closed if its peer closed. */
static void settle(void)
{
	TRACE("settle\n");
	for (int turns = 0;; turns++) {
		int busy = echo_has_ready(&net.echo);

		for (int i = 0; i < NPEERS; i++) {
			struct peer *p = &net.peers[i];

			if (p->fd == 0)
				continue;
			p->recv_cap = 0;
			if (p->open && (p->echoed > p->read || p->window < net.buf_size))
				p->edge |= CONN_WRITABLE;
			p->read = p->echoed;
			if (p->window < net.buf_size)
				p->window = net.buf_size;
			busy |= p->edge != 0;
		}
		if (!busy)
			break;
		CHECK(NULL, turns < SETTLE_TURNS, "does not settle");
		turn(0);
	}
	for (int i = 0; i < NPEERS; i++) {
		const struct peer *p = &net.peers[i];

		if (!p->open)
			continue;
		CHECK(p, !p->fin, "the peer's FIN was not answered with a close");
		CHECK(p, !p->reset && !p->failed, "a reset or socket error was not answered");
		CHECK(p, p->echoed == p->sent, "echo incomplete: bytes out != bytes in");
	}
}

static void setup(const uint8_t *data, size_t size)
{
	struct echo_setup s = {
	    .io = {.recv = fake_recv, .send = fake_send, .close = fake_close},
	    .stats = &net.stats,
	    .limits = &net.limits,
	};

	memset(&net, 0, sizeof(net));
	net.trace = getenv("FUZZ_TRACE") != NULL;
	net.in = data;
	net.left = size;
	net.limits.total = &net.total;
	net.limits.open = &net.open_gauge;
	net.next_fd = FD_BASE;
	net.buf_size = (size_t)8 << take() % 6; /* 8 to 256: full reads are common */
	net.timeout = 10u * take();
	s.buf_size = net.buf_size;
	s.idle_timeout_ms = net.timeout;
	s.spare_bufs = take() % 3;
	s.spare_conns = take() % 3;
	TRACE("buffers of %zu bytes, idle timeout %llu ms\n", net.buf_size,
	      (unsigned long long)net.timeout);
	CHECK(NULL, echo_init(&net.echo, &s, START_MS) == 0, "echo_init");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup(data, size);
	while (net.left > 0)
		step();
	settle();
	net.forcing = FORCE_OTHER;
	echo_fini(&net.echo);
	for (int i = 0; i < NPEERS; i++)
		CHECK(&net.peers[i], !net.peers[i].open, "still open after echo_fini");
	CHECK(NULL, net.total == 0 && net.open_gauge == 0, "limit tickets not all given back");
	CHECK(NULL, net.closed == net.opened, "closed != opened");
	return 0;
}
