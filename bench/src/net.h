/* net: address resolution and nonblocking client sockets. */
#ifndef ECHO_BENCH_NET_H
#define ECHO_BENCH_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Resolves host:port and returns the first address that accepts a connection
 * within timeout_ns. -1 with a message in err when none does.
 */
int net_pick_address(const char *host, const char *port, uint64_t timeout_ns,
		     struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errlen);

/* Starts a nonblocking TCP_NODELAY connect; 0 or -errno. *in_progress set on EINPROGRESS. */
int net_connect(const struct sockaddr *sa, socklen_t len, int *fd, int *in_progress);

/* The pending error of a connecting socket (0 when connected). */
int net_socket_error(int fd);

void net_format_addr(const struct sockaddr *sa, char *buf, size_t len);

#endif
