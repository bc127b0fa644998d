/*
 * limits: admission of new TCP connections against --max-conns (all workers
 * together) and --max-conns-per-ip, lock-free over the shared mapping.
 *
 * Per address, a count-min sketch: two distinct buckets per address, each counting
 * every address hashed to it; an address is admitted while either of its buckets is
 * within the limit after the increment. Each bucket counts at least the address's own
 * connections, so the limit is never exceeded; a collision can only refuse early, and
 * the seed is random. Each
 * process also records its own increments, so the supervisor can take back the
 * share of a worker that died without closing its connections.
 */
#ifndef ECHOD_LIMITS_H
#define ECHOD_LIMITS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum limits_verdict { LIMITS_OK, LIMITS_MAX_CONNS, LIMITS_PER_IP };

struct limits {
	unsigned max_conns;        /* 0: none */
	unsigned max_per_ip;       /* 0: none */
	uint64_t *total;           /* shared: open connections of all workers */
	uint64_t *open;            /* this process's open gauge (single writer) */
	uint32_t *ip_global;       /* shared buckets, NULL when max_per_ip is 0 */
	uint32_t *ip_local;        /* this process's share of each bucket */
	uint32_t ip_mask;          /* buckets - 1 */
	uint32_t seed;
};

/* What a connection must give back when it closes. */
struct limits_ticket {
	uint32_t b1, b2;
	uint32_t admitted;
};

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
