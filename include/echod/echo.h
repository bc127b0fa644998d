/*
 * echo: the TCP echo path of the epoll backend, one connection at a time, with the
 * socket calls behind struct echo_io. The epoll loop plugs in recv(2), send(2) and
 * close(2) themselves; the fuzzer (tests/fuzz/fuzz_conn.c) a fake network that
 * returns any size, EAGAIN, EINTR, a FIN or a reset at any moment.
 *
 * The loop owns readiness: it turns each edge into CONN_READABLE / CONN_WRITABLE /
 * CONN_RDHUP and calls echo_event. Everything a connection does from there on
 * happens here, and only here: its states, its buffer, its close.
 *
 * Contract for the loop:
 *   - a turn is: the batch of events, then echo_run_ready, then echo_expire and
 *     echo_reclaim; echo_has_ready() means the next wait must not block;
 *   - a connection closed during the batch stays allocated (state CONN_CLOSED, its
 *     events ignored) until the batch ends: echo_run_ready or echo_reclaim frees
 *     it, so no event may reach it after echo_run_ready;
 *   - the fd passed to echo_open belongs to the connection: io.close is called on
 *     it exactly once, when the connection closes.
 */
#ifndef ECHOD_ECHO_H
#define ECHOD_ECHO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "echod/conn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads per connection per turn before it yields to the others (the ready list). */
#define ECHO_READ_BUDGET 16

/* The socket calls, with the signatures and errno conventions of recv(2), send(2) and
 * close(2), so the epoll loop plugs in the C library's own: no wrapper on the hot path. */
struct echo_io {
	ssize_t (*recv)(int fd, void *buf, size_t len, int flags);
	ssize_t (*send)(int fd, const void *buf, size_t len, int flags);
	int (*close)(int fd);
};

struct echo_setup {
	struct echo_io io;
	struct stats_slot *stats;
	const struct limits *limits;  /* each connection's ticket is given back here */
	uint64_t idle_timeout_ms;     /* 0: never */
	size_t buf_size;              /* read buffer; CONN_BUF_SIZE in echod */
	unsigned spare_bufs;          /* buffers kept for reuse */
	unsigned spare_conns;         /* connection structs kept for reuse */
	/* Told of each close before the descriptor goes (the -v connection log); NULL: none. */
	void (*on_close)(void *arg, const struct conn *c, enum conn_close_reason why);
	void *on_close_arg;
	/* Told when an offloaded connection closes, before the descriptor goes. */
	void (*on_offload_close)(void *arg, struct conn *c);
	void *offload_arg;
};

/* The echo path of one worker. */
struct echo_ctx {
	struct echo_io io;
	struct stats_slot *stats;
	const struct limits *limits;
	struct timer_list idle;       /* every open connection, oldest activity first */
	struct bufpool bufs;
	char *rbuf;                   /* the read buffer, until a connection keeps it */
	struct conn *ready;           /* read budget ran out: served again next turn */
	struct conn **ready_tail;
	struct conn *closed;          /* closed this turn, freed at its end */
	struct conn *spare;           /* freed structs for reuse */
	unsigned nspare, max_spare;
	unsigned long nconns;         /* open connections */
	struct conn *offloaded;       /* CONN_OFFLOADED ones, through next and off.prev */
	unsigned long noffloaded;
	uint64_t now;                 /* ms, monotonic; the loop sets it every turn */
	void (*on_close)(void *arg, const struct conn *c, enum conn_close_reason why);
	void *on_close_arg;
	void (*on_offload_close)(void *arg, struct conn *c);
	void *offload_arg;
};

/* Returns 0 or -ENOMEM. now is the current time (ms). */
int echo_init(struct echo_ctx *e, const struct echo_setup *setup, uint64_t now);
/* Closes every connection (CLOSE_DRAIN) and frees everything. */
void echo_fini(struct echo_ctx *e);

/* A new connection on fd (nonblocking), echoing; NULL when out of memory (fd and
 * ticket stay the caller's then). */
struct conn *echo_open(struct echo_ctx *e, int fd, const struct limits_ticket *ticket);
/* Readiness: flags (CONN_READABLE, CONN_WRITABLE, CONN_RDHUP) are added to the
 * connection's, then it reads, echoes and flushes as far as they allow. */
void echo_event(struct echo_ctx *e, struct conn *c, uint32_t flags);
/* The kernel echoes c from now on (--offload=sockmap): it leaves the echo path for the
 * offloaded list, which the loop watches; echo_close still ends it. */
void echo_offload(struct echo_ctx *e, struct conn *c);
/* The only way a connection goes away: closes, gives back, counts, says why. A closed
 * connection is left alone. */
void echo_close(struct echo_ctx *e, struct conn *c, enum conn_close_reason why);
/* One more read budget for each connection that used up its last one. */
void echo_run_ready(struct echo_ctx *e);
/* Closes the connections idle for longer than the timeout (CLOSE_IDLE). */
void echo_expire(struct echo_ctx *e);
void echo_close_all(struct echo_ctx *e, enum conn_close_reason why);
/* End of the turn: frees the structs of the connections closed in it. */
void echo_reclaim(struct echo_ctx *e);
/* ms until the next idle timeout is due, -1 when none is. */
int echo_next_timeout_ms(const struct echo_ctx *e);

static inline int echo_has_ready(const struct echo_ctx *e)
{
	return e->ready != NULL;
}

#ifdef __cplusplus
}
#endif
#endif
