/*
 * limits: admission of new TCP connections against --max-conns (all workers
 * together), --max-conns-per-ip and --conn-rate, lock-free over the shared mapping.
 *
 * A client is its address key (limits_key): an IPv4 address, the IPv4 address of an
 * IPv4-mapped peer, or the /64 of an IPv6 address, since one host owns a /64 and may
 * hop inside it.
 *
 * Per address, a count-min sketch: two distinct buckets per address, each counting
 * every address hashed to it; an address is admitted while either of its buckets is
 * within the limit after the increment. Each bucket counts at least the address's own
 * connections, so the limit is never exceeded; a collision can only refuse early, and
 * the seed is random. Each
 * process also records its own increments, so the supervisor can take back the
 * share of a worker that died without closing its connections.
 *
 * Per address rate (--conn-rate=N), the same two-bucket sketch over leaky buckets:
 * each cell holds a level (milli-connections) that drains at N a second and a stamp,
 * packed in one 64-bit word updated by compare-and-swap, so every worker shares it.
 * A new connection adds one to both cells and is admitted while either level stays
 * within N (a burst of N, then N a second); a refused one takes its addition back,
 * so a client over the rate still gets N a second through. Each cell drains at least
 * as much as the client's own connections added, so its own rate never exceeds N;
 * collisions can only refuse early. Nothing to reap: levels drain by themselves.
 */
#ifndef ECHOD_LIMITS_H
#define ECHOD_LIMITS_H

#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

enum limits_verdict { LIMITS_OK, LIMITS_MAX_CONNS, LIMITS_PER_IP, LIMITS_CONN_RATE };

#define LIMITS_RATE_CELLS 65536u /* --conn-rate cells in the shared mapping */

struct limits {
	unsigned max_conns;        /* 0: none */
	unsigned max_per_ip;       /* 0: none */
	uint64_t *total;           /* shared: open connections of all workers */
	uint64_t *open;            /* this process's open gauge (single writer) */
	uint32_t *ip_global;       /* shared buckets, NULL when max_per_ip is 0 */
	uint32_t *ip_local;        /* this process's share of each bucket */
	uint32_t ip_mask;          /* buckets - 1 */
	uint32_t seed;
	unsigned conn_rate;        /* 0: none */
	uint64_t *rate_cells;      /* shared: LIMITS_RATE_CELLS, NULL when none */
};

/* What a connection must give back when it closes. */
struct limits_ticket {
	uint32_t b1, b2;
	uint32_t admitted;
};

/* The client key of every per-address limit, from the peer's address. */
void limits_key(const struct sockaddr *peer, uint8_t key[16]);
/* --conn-rate: LIMITS_OK or LIMITS_CONN_RATE for a new connection at now_ms (a
 * monotonic clock all workers share). */
enum limits_verdict limits_rate(const struct limits *l, const uint8_t key[16], uint64_t now_ms);
/* Buckets for a given per-address limit setting (0 when off). */
unsigned limits_buckets(unsigned max_per_ip);
enum limits_verdict limits_admit(const struct limits *l, const uint8_t key[16],
				 struct limits_ticket *t);
void limits_release(const struct limits *l, struct limits_ticket *t);
/* Supervisor, after reaping a process: subtract what it still held. */
void limits_reap(uint64_t *total, uint64_t open, uint32_t *ip_global, uint32_t *ip_local,
		 unsigned buckets);

#ifdef __cplusplus
}
#endif
#endif
