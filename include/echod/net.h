/* net: small socket helpers shared by the supervisor, workers and backends. */
#ifndef ECHOD_NET_H
#define ECHOD_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "127.0.0.1:7", "[::1]:7"; IPv4-mapped IPv6 addresses print as IPv4. */
void net_format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen);
/* 1 when an AF_INET6 socket can be made (the kernel has IPv6). */
int net_ipv6_available(void);
/* The peer address as 16 bytes (IPv4 as ::ffff:a.b.c.d): what the access lists match;
 * limits_key narrows it to the client of the per-address limits (an IPv6 /64). */
void net_addr_key(const struct sockaddr *sa, uint8_t key[16]);
/* Raises the descriptor soft limit to the hard limit; returns the new soft limit. */
long net_raise_nofile(void);

#ifdef __cplusplus
}
#endif
#endif
