/*
 * offload_charge: what one queued segment costs against --offload-budget, shared by
 * the BPF program (src/bpf/echo_sockmap.bpf.c) and echod (offload.h).
 *
 * The kernel holds a redirected skb whole until it is sent: its sk_buff, shared info
 * and head cost about a kilobyte whatever its payload. A peer sending one-byte segments
 * would otherwise make the kernel hold a thousand times its budget. So each segment is
 * charged its payload plus this.
 */
#ifndef ECHOD_OFFLOAD_CHARGE_H
#define ECHOD_OFFLOAD_CHARGE_H

#define OFFLOAD_SEG_CHARGE 1024

#endif
