/*
 * stats: per-worker counters in a mapping shared by the supervisor and its workers.
 * Each process slot owns its cache lines and is their only writer, so the hot path
 * takes no lock and no locked instruction; the supervisor sums the slots on demand.
 */
#ifndef ECHOD_STATS_H
#define ECHOD_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STATS_COUNTERS(X)                                                                          \
	X(accepted)                                                                                \
	X(open)                                                                                    \
	X(closed_eof)                                                                              \
	X(closed_reset)                                                                            \
	X(closed_error)                                                                            \
	X(closed_idle)                                                                             \
	X(closed_drain)                                                                            \
	X(rejected_max_conns)                                                                      \
	X(rejected_per_ip)                                                                         \
	X(rejected_nomem)                                                                          \
	X(rejected_acl)                                                                            \
	X(rejected_conn_rate)                                                                      \
	X(accept_paused)                                                                           \
	X(bytes_in)                                                                                \
	X(bytes_out)                                                                               \
	X(msgs)                                                                                    \
	X(short_sends)                                                                             \
	X(buffers_held)                                                                            \
	X(ring_enobufs)                                                                            \
	X(rearms)                                                                                  \
	X(zc_sends)                                                                                \
	X(ring_trims)                                                                              \
	X(udp_in)                                                                                  \
	X(udp_out)                                                                                 \
	X(udp_refused_port)                                                                        \
	X(udp_refused_addr)                                                                        \
	X(udp_refused_rate)                                                                        \
	X(udp_refused_acl)                                                                         \
	X(udp_dropped)                                                                             \
	X(workers_stuck)                                                                            \
	X(offloaded)                                                                               \
	X(offload_fallbacks)                                                                       \
	X(offload_overruns)

enum stats_counter {
#define STATS_ENUM(name) STAT_##name,
	STATS_COUNTERS(STATS_ENUM)
#undef STATS_ENUM
	STAT_COUNT
};

/*
 * Per listener (the listener="tcp 127.0.0.1:7" label on /metrics): what one
 * listener's connections and datagrams add, beside the worker's totals above. A
 * slot keeps STATS_LISTENERS rows, so the mapping stays bounded; listeners past the
 * last share the last row (shown as listener="other").
 */
#define STATS_LISTENERS 16
#define STATS_LISTENER_COUNTERS(X)                                                                 \
	X(accepted)                                                                                \
	X(bytes_in)                                                                                \
	X(bytes_out)                                                                               \
	X(udp_in)                                                                                  \
	X(udp_out)

enum stats_lcounter {
#define STATS_LENUM(name) LSTAT_##name,
	STATS_LISTENER_COUNTERS(STATS_LENUM)
#undef STATS_LENUM
	LSTAT_COUNT
};

/* STARTING until the worker's loop runs (READY), EXITING once the loop has ended. Only a
 * READY worker owes the supervisor a heartbeat. */
enum stats_slot_state { SLOT_FREE, SLOT_STARTING, SLOT_READY, SLOT_EXITING };

struct stats_slot {
	uint64_t c[STAT_COUNT];   /* workers_stuck: kept by the supervisor, 0 here */
	uint64_t l[STATS_LISTENERS][LSTAT_COUNT]; /* per listener index */
	uint64_t heartbeat;       /* ms, monotonic: the worker's loop last turned */
	int32_t pid;
	uint32_t state;           /* enum stats_slot_state; the worker sets READY, EXITING */
	/* Set by a worker's SIGSYS handler as it dies: the call outside the seccomp
	 * allow-list and its AUDIT_ARCH_* (never 0, so 0 means none). */
	int32_t seccomp_syscall;
	uint32_t seccomp_arch;
} __attribute__((aligned(64)));

struct stats_shared {
	uint64_t open_total;      /* open TCP connections of all workers: --max-conns */
	uint32_t nslots;
	uint32_t ip_buckets;      /* per-address counting buckets, 0 when off */
	uint32_t seed;            /* hashes client addresses; random per run */
	uint32_t pad[11];
	/* then: ip_global[ip_buckets], ip_local[nslots][ip_buckets], and the --conn-rate
	 * cells, uint64_t[LIMITS_RATE_CELLS], always there (touched only when the rate is
	 * set, so a reload can set it) */
	struct stats_slot slots[];
};

/* Maps the shared region before fork. ip_buckets must be 0 or a power of two. */
struct stats_shared *stats_create(unsigned nslots, unsigned ip_buckets);
void stats_destroy(struct stats_shared *sh);
uint32_t *stats_ip_global(struct stats_shared *sh);
uint32_t *stats_ip_local(struct stats_shared *sh, unsigned slot);
uint64_t *stats_rate_cells(struct stats_shared *sh);
const char *stats_name(enum stats_counter c);
const char *stats_lname(enum stats_lcounter c);
/* The worker counter a listener counter is a share of (LSTAT_bytes_in: STAT_bytes_in). */
enum stats_counter stats_lbase(enum stats_lcounter c);

/* Single-writer update: a relaxed load and store, never a locked add. */
static inline void stats_add(struct stats_slot *s, enum stats_counter c, uint64_t n)
{
	__atomic_store_n(&s->c[c], __atomic_load_n(&s->c[c], __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

/* The row of listener index i (listen_fds order). */
static inline unsigned stats_lrow(unsigned i)
{
	return i < STATS_LISTENERS ? i : STATS_LISTENERS - 1;
}

/* stats_add for the worker's total c and listener i's row at once. */
static inline void stats_add2(struct stats_slot *s, enum stats_counter c, unsigned i,
			      enum stats_lcounter lc, uint64_t n)
{
	uint64_t *l = &s->l[stats_lrow(i)][lc];

	stats_add(s, c, n);
	__atomic_store_n(l, __atomic_load_n(l, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline uint64_t stats_lget(const struct stats_slot *s, unsigned row, enum stats_lcounter c)
{
	return __atomic_load_n(&s->l[row][c], __ATOMIC_RELAXED);
}

/* Each turn of a worker's loop: the supervisor's watchdog sees it alive. */
static inline void stats_heartbeat(struct stats_slot *s, uint64_t now_ms)
{
	__atomic_store_n(&s->heartbeat, now_ms, __ATOMIC_RELAXED);
}

static inline uint64_t stats_get(const struct stats_slot *s, enum stats_counter c)
{
	return __atomic_load_n(&s->c[c], __ATOMIC_RELAXED);
}

/* Adds every live slot and the retired totals into out[STAT_COUNT]. */
void stats_sum(const struct stats_shared *sh, const uint64_t *retired, uint64_t *out);
/* "accepted=1 open=0 ..." for the USR1 line. */
void stats_format(const uint64_t *v, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
