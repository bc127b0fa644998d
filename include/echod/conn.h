/*
 * conn: the connection, its states and the policy every backend shares: the
 * buffer a connection holds only while it owes bytes (backpressure), the buffer
 * pool, the reasons a connection ends and how each is counted.
 */
#ifndef ECHOD_CONN_H
#define ECHOD_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

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
	CONN_OFFLOADED, /* the kernel echoes it (--offload=sockmap); holds no buffer */
};

/* CLOSE_OVERRUN: an offloaded peer owed more than --offload-budget; it is reset. */
enum conn_close_reason { CLOSE_EOF, CLOSE_RESET, CLOSE_ERROR, CLOSE_IDLE, CLOSE_DRAIN,
			 CLOSE_OVERRUN };

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

/*
 * What the -v connection log says of a connection when it closes. The byte counts
 * are kept always (one addition per transfer, on a line the transfer touches
 * anyway); the rest is filled only while the log is on.
 */
struct conn_log {
	uint64_t bytes_in, bytes_out;
	uint64_t start;      /* ms, monotonic: when it was accepted */
	uint8_t addr[16];    /* the peer: IPv6, or IPv4 as ::ffff:a.b.c.d */
	uint16_t port;       /* the peer's, host order */
	uint8_t family;      /* AF_INET or AF_INET6; 0: the peer is unknown */
	uint8_t listener;    /* index of the worker's listener it came from */
};

/* Fills in the peer (NULL: unknown), the listener and the start. */
void conn_log_start(struct conn_log *l, const struct sockaddr *peer, unsigned listener,
		    uint64_t now);
/* "peer=127.0.0.1:40000 listener=127.0.0.1:7 service=echo"; listener is the
 * listening address ("[::]:7"), service its service's name. Returns the length. */
size_t conn_log_where(const struct conn_log *l, const char *listener, const char *service,
		      char *out, size_t cap);
/* "in=5 out=5 duration=0.012s" at now (ms, monotonic). Returns the length. */
size_t conn_log_totals(const struct conn_log *l, uint64_t now, char *out, size_t cap);

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
	union {
		struct pending pending;    /* echoed in user space */
		struct {                   /* CONN_OFFLOADED: on the echo_ctx's offloaded
					    * list, through next and this */
			struct conn **prev;
		} off;
	};
	struct limits_ticket ticket;
	uint32_t oslot;            /* CONN_OFFLOADED: its counter slot (in what was padding) */
	struct conn *next;         /* ready list, the batch's closed list, or offloaded list */
	struct conn_log log;
};

const char *conn_reason_name(enum conn_close_reason why);
enum stats_counter conn_reason_counter(enum conn_close_reason why);
/* A failed recv/send: a reset is the peer's doing, anything else an error. */
enum conn_close_reason conn_errno_reason(int err);

#ifdef __cplusplus
}
#endif
#endif
