/*
 * offload: --offload=sockmap, the echo done by the kernel (issue 17).
 *
 * The supervisor, before it drops privileges, loads the BPF program embedded in echod
 * (src/bpf/echo_sockmap.bpf.c), creates its SOCKHASH and attaches the program to the
 * map as its stream verdict (offload_load). Workers inherit the map's descriptor and
 * only ever insert a socket into it (offload_insert: BPF_MAP_UPDATE_ELEM on a
 * descriptor they hold, which needs no capability). Closing a socket takes it out of
 * the map. offload_bpf.c with libbpf, offload_none.c without.
 *
 * Once inserted, the bytes a socket receives never reach user space: the kernel
 * redirects each skb to the same socket's egress. User space sees only what tcp_info
 * tells: the pure arithmetic on those counters is offload_policy.c's.
 */
#ifndef ECHOD_OFFLOAD_H
#define ECHOD_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "echod/offload_charge.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What offload_load made; the workers inherit it all across fork. */
struct offload_maps {
	int socks_fd;                 /* SOCKHASH: cookie -> socket */
	int slots_fd;                 /* HASH: cookie -> counter slot and worker */
	uint64_t *rx;                 /* echo_rx, mapped: bytes received, per slot */
	uint64_t *segs;               /* echo_segs, mapped: segments received, per slot */
	uint64_t *mark;               /* echo_mark, mapped: wake the worker at this charge */
	unsigned nslots;
	int *rings;                   /* per worker table entry: its wake-up ring buffer */
	unsigned nrings;
};

/* 1 when this echod was built with the BPF offload (echod -V: "offload: sockmap"). */
int offload_built(void);
/* Loads the program, creates the maps (room for max_socks sockets, nslots counters,
 * nrings wake-up rings: one per worker table entry) and attaches the program to the
 * SOCKHASH. Returns 0, or -errno with the reason in why (e.g. "bpf: Operation not
 * permitted (needs CAP_BPF and CAP_NET_ADMIN)"). */
int offload_load(struct offload_maps *m, unsigned max_socks, unsigned nslots, unsigned nrings,
		 char *why, size_t whylen);
/* The supervisor, at its exit: closes what offload_load made (workers leave it be:
 * it is the supervisor's, they only inherited it). */
void offload_unload(struct offload_maps *m);
/* Gives the established socket fd counter `slot` (zeroed here, its mark at `mark`)
 * owned by worker table entry `ring`, then puts it into the SOCKHASH: from now on the
 * kernel echoes it. Returns 0 with its cookie, or -errno (-EOPNOTSUPP: its FIN came
 * already; -ENOSPC/-E2BIG: a map is full). */
int offload_insert(const struct offload_maps *m, int fd, uint32_t slot, uint32_t ring,
		   uint64_t mark, uint64_t *cookie);
/* The ring buffer of worker table entry `ring`: each record is a uint32_t slot whose
 * counter reached its mark. The fd polls readable while records wait. Returns an
 * opaque handle for offload_ring_consume, or NULL. */
struct offload_ring *offload_ring_open(const struct offload_maps *m, unsigned ring,
				       void (*fn)(void *arg, uint32_t slot), void *arg);
int offload_ring_fd(const struct offload_maps *m, unsigned ring);
/* Calls fn for each waiting record (no system call). */
void offload_ring_consume(struct offload_ring *r);
void offload_ring_close(struct offload_ring *r);
/* Sets slot's mark: the program wakes the worker once its counter reaches it. */
static inline void offload_set_mark(const struct offload_maps *m, uint32_t slot, uint64_t mark)
{
	__atomic_store_n(&m->mark[slot], mark, __ATOMIC_RELEASE);
}
static inline uint64_t offload_mark(const struct offload_maps *m, uint32_t slot)
{
	return __atomic_load_n(&m->mark[slot], __ATOMIC_ACQUIRE);
}
/* Takes the cookie's counter slot back (the socket leaves the SOCKHASH when it
 * closes). Returns 0 or -errno. */
int offload_forget(const struct offload_maps *m, uint64_t cookie);
/* The supervisor, for a worker that died with sockets offloaded (their sockets left the
 * SOCKHASH as they closed, but not their entries in echo_slots): forgets every cookie
 * whose slot is in [lo, hi). Returns how many, or -errno. */
int offload_forget_range(const struct offload_maps *m, uint32_t lo, uint32_t hi);
/* Bytes the program passed on for slot so far. */
static inline uint64_t offload_rx(const struct offload_maps *m, uint32_t slot)
{
	return __atomic_load_n(&m->rx[slot], __ATOMIC_RELAXED);
}
/* Segments (skbs) the program passed on for slot so far. */
static inline uint64_t offload_segs(const struct offload_maps *m, uint32_t slot)
{
	return __atomic_load_n(&m->segs[slot], __ATOMIC_RELAXED);
}
/* What slot's socket has cost so far: its bytes plus OFFLOAD_SEG_CHARGE per segment,
 * the unit of its mark (the program compares the same sum). */
static inline uint64_t offload_charge(const struct offload_maps *m, uint32_t slot)
{
	return offload_rx(m, slot) + offload_segs(m, slot) * OFFLOAD_SEG_CHARGE;
}

/*
 * The arithmetic on tcp_info's byte counters (offload_policy.c, pure). rx is
 * tcpi_bytes_received (the peer's FIN, once in, counts one), acked tcpi_bytes_acked
 * (includes the banner, which the echo never sent), outq SIOCOUTQ (written, not yet
 * acknowledged).
 */
struct offload_sample {
	uint64_t rx, acked, outq;
	int fin;                      /* the peer's FIN has come */
};

/* Bytes the peer sent (without its FIN). */
uint64_t offload_bytes_in(const struct offload_sample *s);
/* Echoed bytes the peer acknowledged (without the banner). */
uint64_t offload_bytes_out(const struct offload_sample *s, uint64_t banner_len);
/* Bytes echod owes the peer and holds in the kernel for it: received and not yet
 * acknowledged, i.e. what waits in the redirect queue plus our send queue. Bytes in the
 * peer's own receive buffer are acknowledged and are not ours. */
uint64_t offload_owed(const struct offload_sample *s, uint64_t banner_len);
/* 1 when the socket may be closed without losing a byte: the peer's FIN came and every
 * received byte was written to the send queue (acked + outq covers banner + data).
 * outq == 0 alone is not enough: bytes may still wait in the redirect queue. */
int offload_drained(const struct offload_sample *s, uint64_t banner_len);
/*
 * What the kernel holds for a peer is its owed bytes plus about OFFLOAD_SEG_CHARGE per
 * owed segment. Which segments are owed is not known, only the counts the program kept:
 * a worker keeps them per window (a window closes once it was charged a quarter
 * budget) for the current window and the one before.
 */
struct offload_window {
	uint64_t bytes, segs;
};
/* Segments among the last `owed` bytes received: all of the current window's when the
 * owed bytes fit in it, and for the older rest as many as the previous window had per
 * byte (the current one's when there is none before). Never more than one per byte. */
uint64_t offload_owed_segs(uint64_t owed, struct offload_window cur, struct offload_window prev);
/* 1 when what the peer owes, its bytes plus OFFLOAD_SEG_CHARGE per segment in
 * owed_segs, is over budget: it is reset. */
int offload_over_budget(const struct offload_sample *s, uint64_t banner_len, uint64_t owed_segs,
			uint64_t budget);
/* The mark to set for a socket whose charge read rx when tcp_info was last asked: a
 * quarter of the budget further. The program wakes the worker when the charge
 * reaches it, so between two asks a peer adds at most that (plus what comes in while
 * the worker wakes up): it is reset before it owes 1.25 budgets and that share. */
uint64_t offload_next_mark(uint64_t rx, uint64_t budget);
/* 1 when a socket whose charge reads rx must be asked again: it reached its mark
 * (or the program fired and awaits a new one, mark = UINT64_MAX). */
int offload_recheck_due(uint64_t rx, uint64_t mark);

#ifdef __cplusplus
}
#endif
#endif
