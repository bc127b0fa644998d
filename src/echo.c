/*
 * echo: the TCP echo path of the epoll backend, see echo.h.
 *
 * Edges only set flags; a flag is cleared on EAGAIN, on a short read or a partial
 * send, never otherwise, so no edge is lost. The echo copies nothing: bytes are
 * received into the worker's read buffer and sent from it. Should the kernel take
 * only part, the connection keeps that very buffer with the unsent tail and reads
 * nothing more until it is flushed (backpressure: the TCP window then pushes back on
 * the sender); the worker takes a fresh read buffer from the pool. An idle
 * connection holds no buffer. Reads stop after a budget and the connection goes on
 * the ready list, so one fast peer cannot starve the others.
 */
#include "echod/echo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "echod/log.h"
#include "echod/worker.h"

static void echo_stat(struct echo_ctx *e, enum stats_counter c, uint64_t n)
{
	stats_add(e->stats, c, n);
}

static struct conn *conn_of(struct timer_node *node)
{
	return (struct conn *)((char *)node - offsetof(struct conn, idle));
}

static void ready_push(struct echo_ctx *e, struct conn *c)
{
	if (c->flags & CONN_READY)
		return;
	c->flags |= CONN_READY;
	c->next = NULL;
	*e->ready_tail = c;
	e->ready_tail = &c->next;
}

static void conn_free(struct echo_ctx *e, struct conn *c)
{
	if (e->nspare >= e->max_spare) {
		free(c);
		return;
	}
	c->next = e->spare;
	e->spare = c;
	e->nspare++;
}

struct conn *echo_open(struct echo_ctx *e, int fd, const struct limits_ticket *ticket)
{
	struct conn *c = e->spare;

	if (c != NULL) {
		e->spare = c->next;
		e->nspare--;
	} else {
		c = malloc(sizeof(*c));
		if (c == NULL)
			return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->kind = EV_CONN;
	c->fd = fd;
	c->ticket = *ticket;
	c->state = CONN_ECHOING;
	timer_insert(&e->idle, &c->idle, e->now);
	e->nconns++;
	return c;
}

void echo_close(struct echo_ctx *e, struct conn *c, enum conn_close_reason why)
{
	if (c->state == CONN_CLOSED)
		return;
	/* First, so that the log line below has the kernel's last counts. */
	if (c->state == CONN_OFFLOADED) {
		*c->off.prev = c->next;
		if (c->next != NULL)
			c->next->off.prev = c->off.prev;
		e->noffloaded--;
		if (e->on_offload_close != NULL)
			e->on_offload_close(e->offload_arg, c);
	}
	if (e->on_close != NULL)
		e->on_close(e->on_close_arg, c, why);
	/* Accounted before the close, so a peer that sees the close sees the counters. */
	if (c->state != CONN_OFFLOADED && c->pending.buf != NULL) {
		bufpool_put(&e->bufs, pending_release(&c->pending));
		echo_stat(e, STAT_buffers_held, (uint64_t)-1);
	}
	limits_release(e->limits, &c->ticket);
	echo_stat(e, conn_reason_counter(why), 1);
	e->nconns--;
	if (e->io.close(c->fd) < 0)
		log_debug("close(%d): %s", c->fd, strerror(errno)); /* it is gone all the same */
	c->fd = -1;
	c->state = CONN_CLOSED;
	timer_remove(&c->idle);
	/* On the ready list it is freed by the ready walk; else at the end of the turn. */
	if (!(c->flags & CONN_READY)) {
		c->next = e->closed;
		e->closed = c;
	}
}

static void conn_fail(struct echo_ctx *e, struct conn *c, int err)
{
	echo_close(e, c, conn_errno_reason(err));
}

/* send(2), again on EINTR: the socket may well be writable, and then no edge would
 * come to say so. */
static ssize_t conn_send(struct echo_ctx *e, struct conn *c, const char *buf, size_t len)
{
	ssize_t n;

	do
		n = e->io.send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Sends what is owed. Returns -1 when the connection was closed. */
static int conn_flush(struct echo_ctx *e, struct conn *c)
{
	ssize_t n = conn_send(e, c, c->pending.buf + c->pending.off, c->pending.len);

	if (n < 0) {
		if (errno != EAGAIN) {
			conn_fail(e, c, errno);
			return -1;
		}
		c->flags &= ~CONN_WRITABLE;
		return 0;
	}
	stats_add2(e->stats, STAT_bytes_out, c->listener, LSTAT_bytes_out, (uint64_t)n);
	c->log.bytes_out += (uint64_t)n;
	timer_touch(&e->idle, &c->idle, e->now);
	if (!pending_advance(&c->pending, (uint32_t)n)) {
		c->flags &= ~CONN_WRITABLE; /* a partial send: the socket buffer is full */
		return 0;
	}
	bufpool_put(&e->bufs, pending_release(&c->pending));
	echo_stat(e, STAT_buffers_held, (uint64_t)-1);
	c->state = CONN_ECHOING;
	return 0;
}

/*
 * Echoes n bytes from the read buffer. Returns 0 when all went out, -1 when the
 * connection was closed or now holds the buffer (and so must stop reading).
 */
static int conn_echo(struct echo_ctx *e, struct conn *c, size_t n)
{
	ssize_t s = conn_send(e, c, e->rbuf, n);

	if (s < 0 && errno != EAGAIN) {
		conn_fail(e, c, errno);
		return -1;
	}
	if (s < 0)
		s = 0;
	stats_add2(e->stats, STAT_bytes_out, c->listener, LSTAT_bytes_out, (uint64_t)s);
	c->log.bytes_out += (uint64_t)s;
	if ((size_t)s == n)
		return 0;
	pending_hold(&c->pending, e->rbuf, (uint32_t)s, (uint32_t)(n - (size_t)s));
	e->rbuf = NULL;
	c->state = CONN_BLOCKED;
	c->flags &= ~CONN_WRITABLE;
	echo_stat(e, STAT_short_sends, 1);
	echo_stat(e, STAT_buffers_held, 1);
	return -1;
}

/* Reads and echoes until EAGAIN, a short read, backpressure or the budget's end. */
static void conn_read(struct echo_ctx *e, struct conn *c)
{
	for (int budget = ECHO_READ_BUDGET; budget > 0; budget--) {
		ssize_t n;

		if (e->rbuf == NULL && (e->rbuf = bufpool_get(&e->bufs)) == NULL) {
			echo_close(e, c, CLOSE_ERROR); /* out of memory: shed this one */
			return;
		}
		n = e->io.recv(c->fd, e->rbuf, e->bufs.size, 0);
		if (n > 0) {
			stats_add2(e->stats, STAT_bytes_in, c->listener, LSTAT_bytes_in, (uint64_t)n);
			echo_stat(e, STAT_msgs, 1);
			c->log.bytes_in += (uint64_t)n;
			timer_touch(&e->idle, &c->idle, e->now);
			if (conn_echo(e, c, (size_t)n) < 0)
				return;
			/* A short read emptied the socket; a later byte raises a new edge.
			 * With the FIN already queued no edge would come: read on to EOF. */
			if ((size_t)n < e->bufs.size && !(c->flags & CONN_RDHUP)) {
				c->flags &= ~CONN_READABLE;
				return;
			}
			continue;
		}
		if (n == 0) {
			echo_close(e, c, CLOSE_EOF); /* the peer's FIN, nothing owed */
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			c->flags &= ~CONN_READABLE;
			return;
		}
		conn_fail(e, c, errno);
		return;
	}
	ready_push(e, c);
}

/* The connection's state machine, run on every edge and every ready turn. */
static void conn_service(struct echo_ctx *e, struct conn *c)
{
	if (c->state == CONN_BLOCKED) {
		if (!(c->flags & CONN_WRITABLE) || conn_flush(e, c) < 0 || c->state == CONN_BLOCKED)
			return;
	}
	if (c->state == CONN_ECHOING && (c->flags & CONN_READABLE))
		conn_read(e, c);
}

void echo_offload(struct echo_ctx *e, struct conn *c)
{
	c->state = CONN_OFFLOADED;
	c->off.prev = &e->offloaded;
	c->next = e->offloaded;
	if (e->offloaded != NULL)
		e->offloaded->off.prev = &c->next;
	e->offloaded = c;
	e->noffloaded++;
}

void echo_event(struct echo_ctx *e, struct conn *c, uint32_t flags)
{
	if (c->state == CONN_CLOSED || c->state == CONN_OFFLOADED)
		return;
	c->flags |= flags & (CONN_READABLE | CONN_WRITABLE | CONN_RDHUP);
	conn_service(e, c);
}

void echo_run_ready(struct echo_ctx *e)
{
	struct conn *c = e->ready, *next;

	e->ready = NULL;
	e->ready_tail = &e->ready;
	for (; c != NULL; c = next) {
		next = c->next;
		c->flags &= ~CONN_READY;
		if (c->state == CONN_CLOSED)
			conn_free(e, c);
		else
			conn_service(e, c);
	}
}

void echo_expire(struct echo_ctx *e)
{
	struct timer_node *node;

	while ((node = timer_expired(&e->idle, e->now)) != NULL)
		echo_close(e, conn_of(node), CLOSE_IDLE);
}

void echo_close_all(struct echo_ctx *e, enum conn_close_reason why)
{
	struct timer_node *node;

	while ((node = timer_first(&e->idle)) != NULL)
		echo_close(e, conn_of(node), why);
}

void echo_reclaim(struct echo_ctx *e)
{
	struct conn *c;

	while ((c = e->closed) != NULL) {
		e->closed = c->next;
		conn_free(e, c);
	}
}

int echo_next_timeout_ms(const struct echo_ctx *e)
{
	return timer_next_ms(&e->idle, e->now);
}

int echo_init(struct echo_ctx *e, const struct echo_setup *setup, uint64_t now)
{
	memset(e, 0, sizeof(*e));
	e->io = setup->io;
	e->stats = setup->stats;
	e->limits = setup->limits;
	e->max_spare = setup->spare_conns;
	e->on_close = setup->on_close;
	e->on_close_arg = setup->on_close_arg;
	e->on_offload_close = setup->on_offload_close;
	e->offload_arg = setup->offload_arg;
	e->ready_tail = &e->ready;
	e->now = now;
	timer_init(&e->idle, setup->idle_timeout_ms);
	return bufpool_init(&e->bufs, setup->buf_size, setup->spare_bufs);
}

void echo_fini(struct echo_ctx *e)
{
	struct conn *c;

	if (e->bufs.free == NULL)
		return; /* echo_init failed */
	echo_close_all(e, CLOSE_DRAIN);
	echo_run_ready(e);
	echo_reclaim(e);
	while ((c = e->spare) != NULL) {
		e->spare = c->next;
		free(c);
	}
	bufpool_put(&e->bufs, e->rbuf);
	e->rbuf = NULL;
	bufpool_fini(&e->bufs);
}
