/*
 * conn: the connection, its states and the policy every backend shares: the
 * buffer a connection holds only while it owes bytes (backpressure), the buffer
 * pool, the reasons a connection ends and how each is counted.
 */
#ifndef ECHOD_CONN_H
#define ECHOD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "echod/limits.h"
#include "echod/stats.h"
#include "echod/timer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read and echo buffers: one per connection at most, and only while it owes bytes. */
#define CONN_BUF_SIZE 16384u

enum conn_state {
	CONN_ECHOING,   /* reading and echoing; holds no buffer */
	CONN_BLOCKED,   /* owes bytes the kernel refused; holds one buffer, reads nothing */
	CONN_FLUSHING,  /* the peer sent FIN; sending what is owed, then close */
	CONN_CLOSED,    /* descriptor closed; the struct waits for the end of the batch */
};

enum conn_close_reason { CLOSE_EOF, CLOSE_RESET, CLOSE_ERROR, CLOSE_IDLE, CLOSE_DRAIN };

/* Bytes received but not yet echoed, in a buffer the connection holds meanwhile. */
struct pending {
	char *buf;
	uint32_t off, len;
};

/* Takes over buf with its unsent tail [off, off + len). */
void pending_hold(struct pending *p, char *buf, uint32_t off, uint32_t len);
/* n more bytes were sent; returns 1 when nothing is owed any more. */
int pending_advance(struct pending *p, uint32_t n);
/* Gives the buffer back (NULL when none is held). */
char *pending_release(struct pending *p);
static inline int pending_empty(const struct pending *p)
{
	return p->len == 0;
}

/* Fixed-size buffers, kept for reuse up to `spare`, the rest given back to malloc. */
struct bufpool {
	void **free;
	unsigned nfree, spare;
	size_t size;
	unsigned long outstanding;  /* handed out and not yet put back */
};

int bufpool_init(struct bufpool *pool, size_t size, unsigned spare);
void bufpool_fini(struct bufpool *pool);
void *bufpool_get(struct bufpool *pool);
void bufpool_put(struct bufpool *pool, void *buf);

#define CONN_READABLE 0x1  /* edge seen, not yet read to EAGAIN */
#define CONN_WRITABLE 0x2
#define CONN_RDHUP    0x4  /* the peer's FIN is queued: read on to EOF */
#define CONN_READY    0x8  /* on the ready list: read budget ran out */

struct conn {
	int kind;                  /* first: tells a conn from a listener in event data */
	int fd;
	enum conn_state state;
	uint16_t flags;
	uint16_t listener;         /* its listener's stats row (stats_lrow); 0 from echo_open */
	struct timer_node idle;
	struct pending pending;
	struct limits_ticket ticket;
	struct conn *next;         /* ready list, or the batch's closed list */
};

const char *conn_reason_name(enum conn_close_reason why);
enum stats_counter conn_reason_counter(enum conn_close_reason why);
/* A failed recv/send: a reset is the peer's doing, anything else an error. */
enum conn_close_reason conn_errno_reason(int err);

#ifdef __cplusplus
}
#endif
#endif
