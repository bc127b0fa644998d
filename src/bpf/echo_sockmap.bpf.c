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
 * program also adds each skb's length to the socket's counter in `echo_rx`, an array
 * user space maps into its memory: a worker sees every offloaded socket's received
 * bytes without a system call, and asks tcp_info how much was acknowledged only when
 * a socket received a good part of its budget since it last asked. `echo_slots` maps
 * a cookie to the socket's counter; a socket without one is echoed all the same.
 *
 * Built with clang -O2 -target bpf and embedded in echod (src/offload_bpf.c loads it
 * from memory). libbpf 1.1 has no section name for BPF_SK_SKB_VERDICT-style programs
 * that it can attach by itself: the section is plain "sk_skb" and echod sets the
 * attach type (BPF_SK_SKB_STREAM_VERDICT) before loading.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} echo_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} echo_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} echo_rx SEC(".maps");

SEC("sk_skb")
int echo_verdict(struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	__u32 *slot = bpf_map_lookup_elem(&echo_slots, &cookie);

	if (slot != NULL) {
		__u64 *rx = bpf_map_lookup_elem(&echo_rx, slot);

		if (rx != NULL)
			__sync_fetch_and_add(rx, skb->len);
	}

	return bpf_sk_redirect_hash(skb, &echo_socks, &cookie, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
