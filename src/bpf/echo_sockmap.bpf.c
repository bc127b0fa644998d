// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * echo_sockmap: the in-kernel echo of --offload=sockmap.
 *
 * Every accepted echo socket is put into `echo_socks`, a SOCKHASH keyed by its socket
 * cookie; this stream-verdict program then sees each skb the socket receives and
 * redirects it to the egress (flags 0) of that same socket: the bytes go back out
 * without ever reaching user space. A FIN alone arrives as an empty skb and is
 * redirected like data. Nothing is parsed: every skb is passed whole.
 *
 * The kernel does not hold back a peer that sends without reading (the redirect
 * queue has no limit), so echod must notice one quickly and cheaply. For that the
 * program also adds each skb's length to the socket's counter in `echo_rx` and counts
 * the skb in `echo_segs`, arrays user space maps into its memory: a worker sees every
 * offloaded socket's received bytes and segments without a system call. When the
 * socket's charge (bytes plus OFFLOAD_SEG_CHARGE per segment: the kernel holds each
 * skb whole, so tiny segments cost far more than their bytes) reaches its mark in
 * `echo_mark` (set by the worker: a quarter budget past what it last looked at),
 * the program writes the slot into the owning worker's ring buffer (`echo_wake`),
 * which wakes that worker's epoll at once: it asks tcp_info how much was
 * acknowledged and resets the peer if it owes more than its budget. `echo_slots`
 * maps a cookie to the socket's counter and worker; a socket without one is echoed
 * all the same.
 *
 * Built with clang -O2 -target bpf and embedded in echod (src/offload_bpf.c loads it
 * from memory). libbpf 1.1 has no section name for BPF_SK_SKB_VERDICT-style programs
 * that it can attach by itself: the section is plain "sk_skb" and echod sets the
 * attach type (BPF_SK_SKB_STREAM_VERDICT) before loading.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "echod/offload_charge.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} echo_socks SEC(".maps");

/* What a worker put in echo_slots for a socket. */
struct echo_slot {
	__u32 slot;   /* its counter in echo_rx and echo_mark */
	__u32 worker; /* the worker's entry in echo_wake */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct echo_slot);
} echo_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} echo_mark SEC(".maps");

struct echo_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct echo_ring);
} echo_wake SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} echo_rx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} echo_segs SEC(".maps");

SEC("sk_skb")
int echo_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct echo_slot *s = bpf_map_lookup_elem(&echo_slots, &cookie);

	if (s != NULL) {
		__u32 slot = s->slot, worker = s->worker;
		__u64 *rx = bpf_map_lookup_elem(&echo_rx, &slot);
		__u64 *segs = bpf_map_lookup_elem(&echo_segs, &slot);
		__u64 *mark = bpf_map_lookup_elem(&echo_mark, &slot);

		if (rx != NULL && segs != NULL && mark != NULL) {
			__sync_fetch_and_add(rx, skb->len);
			__sync_fetch_and_add(segs, 1);
			if (*rx + *segs * OFFLOAD_SEG_CHARGE >= *mark) {
				void *ring = bpf_map_lookup_elem(&echo_wake, &worker);

				*mark = ~0ULL; /* once: the worker sets the next mark */
				if (ring != NULL)
					bpf_ringbuf_output(ring, &slot, sizeof(slot), 0);
			}
		}
	}

	return bpf_sk_redirect_hash(skb, &echo_socks, &cookie, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
