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

#ifdef __cplusplus
extern "C" {
#endif

/* What offload_load made; the workers inherit it all across fork. */
struct offload_maps {
	int socks_fd;                 /* SOCKHASH: cookie -> socket */
	int slots_fd;                 /* HASH: cookie -> counter slot */
	uint64_t *rx;                 /* echo_rx, mapped: bytes received, per slot */
	unsigned nslots;
};

/* 1 when this echod was built with the BPF offload (echod -V: "offload: sockmap"). */
int offload_built(void);
/* Loads the program, creates the maps (room for max_socks sockets, nslots counters)
 * and attaches the program to the SOCKHASH. Returns 0, or -errno with the reason in
 * why (e.g. "bpf: Operation not permitted (needs CAP_BPF and CAP_NET_ADMIN)"). */
int offload_load(struct offload_maps *m, unsigned max_socks, unsigned nslots, char *why,
		 size_t whylen);
/* Gives the established socket fd counter `slot` (zeroed here), then puts it into the
 * SOCKHASH: from now on the kernel echoes it. Returns 0 with its cookie, or -errno
 * (-EOPNOTSUPP: its FIN came already; -ENOSPC/-E2BIG: a map is full). */
int offload_insert(const struct offload_maps *m, int fd, uint32_t slot, uint64_t *cookie);
/* Takes the cookie's counter slot back (the socket leaves the SOCKHASH when it
 * closes). Returns 0 or -errno. */
int offload_forget(const struct offload_maps *m, uint64_t cookie);
/* Bytes the program passed on for slot so far. */
static inline uint64_t offload_rx(const struct offload_maps *m, uint32_t slot)
{
	return __atomic_load_n(&m->rx[slot], __ATOMIC_RELAXED);
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
/* 1 when the peer owes more than budget bytes: it is reset. */
int offload_over_budget(const struct offload_sample *s, uint64_t banner_len, uint64_t budget);
/* 1 when a socket whose counter reads rx, and read rx_checked when tcp_info was last
 * asked, must be asked again: it received a quarter of the budget since. Between two
 * asks a peer can add at most that (plus what one sweep lets through), so it is reset
 * before it owes 1.25 budgets and the sweep's share. */
int offload_recheck_due(uint64_t rx, uint64_t rx_checked, uint64_t budget);

#ifdef __cplusplus
}
#endif
#endif
