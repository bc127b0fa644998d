/*
 * udp: UDP echo (RFC 862) and the datagram side of the small services, shared by
 * both backends.
 *
 * Every datagram passes the access lists (--allow / --deny) and the loop and
 * reflection guard before it is answered: no answer to a source port below 1024 (the
 * BSD inetd rule that stops echo/chargen loops between servers), nor to a broadcast,
 * multicast or unspecified source, nor to a source over its --udp-rate token bucket.
 * Refusals are counted by reason and logged at most once a second per worker.
 *
 * What --udp-rate guards against is amplification and loops, not traffic: an answer
 * costs one token, or K tokens when it is K times the size of its request (chargen's
 * and daytime's answers to short requests). So echo, whose answer is its request,
 * gets N datagrams a second per source (a ping-pong client is never held back at the
 * default), while chargen to 1-byte requests gets N / 444 answers a second. A source
 * key is its IPv4 address or its IPv6 /64 (limits_key).
 *
 * The guard and the token-bucket table are pure and unit-tested; the epoll batch
 * (recvmmsg/sendmmsg) lives here too, as plain socket calls; the io_uring path is
 * udp_uring.c.
 */
#ifndef ECHOD_UDP_H
#define ECHOD_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "echod/listen.h"

#ifdef __cplusplus
extern "C" {
#endif

#define UDP_PAYLOAD_MAX	 65507u /* the largest UDP payload over IPv4 */
#define UDP_BUF_SIZE	 65536u /* one datagram buffer: any payload fits, none is cut */
#define UDP_BATCH	 32	/* datagrams per recvmmsg/sendmmsg */
#define UDP_BUDGET	 4	/* batches per socket per loop turn */
#define UDP_RATE_ENTRIES 4096	/* sources remembered per worker (power of two) */
#define UDP_RATE_PROBE	 8	/* slots looked at per source */
#define UDP_CTL_SIZE	 64	/* room for one IP_PKTINFO or IPV6_PKTINFO message */

enum udp_verdict {
	UDP_ANSWER,
	UDP_REFUSED_PORT,
	UDP_REFUSED_ADDR,
	UDP_REFUSED_RATE,
	UDP_REFUSED_ACL,
	UDP_VERDICTS
};

/* The source checks of the guard, without the rate: port below 1024, then a
 * broadcast, multicast, unspecified or reserved address (IPv4, IPv4-mapped IPv6,
 * IPv6). */
enum udp_verdict udp_guard(const struct sockaddr *src, socklen_t len);
const char *udp_verdict_name(enum udp_verdict v);

/* Per-source token buckets in a fixed table: `rate` tokens a second, at most `rate`
 * held (a quiet source may send a burst of `rate` at once). An answer is allowed
 * while the bucket holds a whole token, and takes its cost, which may leave a debt
 * that the refill pays first (so a costly answer is possible even when its cost is
 * over the bucket's size, just rarely). A source is looked for in UDP_RATE_PROBE
 * slots; when all are taken by others the stalest is forgotten (it starts again with
 * a full bucket when it comes back). Memory: fixed at init. */
struct udp_rate_entry {
	uint8_t key[16];
	uint64_t stamp; /* ms of the last refill, 0: free */
	int64_t milli;	/* tokens x 1000; below 0: a debt */
};

struct udp_ratelimit {
	struct udp_rate_entry *v; /* NULL when off (rate 0) */
	uint32_t mask;
	uint32_t seed;
	uint64_t rate; /* tokens per second */
};

/* rate 0: off (every source allowed). entries: a power of two. 0 or -ENOMEM. */
int udp_rate_init(struct udp_ratelimit *r, unsigned rate, unsigned entries, uint32_t seed);
void udp_rate_fini(struct udp_ratelimit *r);
/* Takes cost tokens for key at now_ms (> 0); returns 1 when the datagram may be
 * answered. */
int udp_rate_take(struct udp_ratelimit *r, const uint8_t key[16], uint64_t now_ms, unsigned cost);
/* Tokens an answer of ans bytes to a request of req bytes costs: 1, or ans / req
 * rounded up when the answer is larger (an empty request counts as one byte). */
unsigned udp_answer_cost(size_t req, size_t ans);

/* A worker's UDP state, for either backend. */
struct worker;

struct udp_sock {
	int kind; /* EV_UDP: first, as in every event-data struct */
	int fd;
	enum listen_service service;
	unsigned listener;   /* listener index, for its stats row */
};

struct udp_worker {
	struct worker *w;
	struct udp_ratelimit rate;
	uint64_t since[UDP_VERDICTS]; /* refusals by verdict since the last log line */
	uint64_t next_log;    /* ms */
	uint32_t chargen_pos; /* where the next chargen answer starts */
	/* The epoll batch, NULL for io_uring. The buffers are one anonymous mapping:
	 * a page costs memory only once a datagram that long has used it. */
	char *bufs;
	struct mmsghdr *in, *out;
	struct iovec *iov_in, *iov_out;
	struct sockaddr_storage *src;
	char (*ctl_in)[UDP_CTL_SIZE], (*ctl_out)[UDP_CTL_SIZE];
};

/* with_batch: set up the recvmmsg/sendmmsg arrays (epoll). 0 or -errno. */
int udp_worker_init(struct udp_worker *u, struct worker *w, int with_batch);
void udp_worker_fini(struct udp_worker *u);

/* Options every UDP socket gets: the local address of each datagram (IP_PKTINFO,
 * IPV6_RECVPKTINFO) so the answer leaves from the address the request reached. */
int udp_socket_options(int fd, int family);

/* Decides about one datagram of len bytes in buf (capacity cap) from src, and builds
 * the answer in place. Returns the answer's length, or -1: no answer (counted and,
 * at most once a second, logged). */
ssize_t udp_handle(struct udp_worker *u, enum listen_service service, unsigned li,
		   const struct sockaddr *src, socklen_t srclen, char *buf, size_t len, size_t cap,
		   uint64_t now_ms);

/* Turns the control data of a received datagram into the control data of its
 * answer (the same local address as source). Returns the length written to out. */
size_t udp_reply_control(const void *ctl, size_t ctllen, void *out, size_t outcap);

/* epoll: serves a readable socket, at most UDP_BUDGET batches. Returns 1 when the
 * budget ran out with datagrams perhaps still queued, 0 when the socket is empty. */
int udp_serve(struct udp_worker *u, struct udp_sock *s, uint64_t now_ms);

#ifdef __cplusplus
}
#endif
#endif
