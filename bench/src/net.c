/* net: see net.h. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int net_connect(const struct sockaddr *sa, socklen_t len, int *fd, int *in_progress)
{
	int one = 1, s;

	*in_progress = 0;
	s = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (s < 0)
		return -errno;
	/* Small pingpong messages must not wait for Nagle. */
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s, sa, len) < 0) {
		int e = errno;

		if (e != EINPROGRESS) {
			close(s);
			return -e;
		}
		*in_progress = 1;
	}
	*fd = s;
	return 0;
}

int net_socket_error(int fd)
{
	int e = 0;
	socklen_t l = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
		return errno;
	return e;
}

/* A blocking-style connect bounded by timeout_ns; 0 or an errno value. */
static int probe(const struct sockaddr *sa, socklen_t len, uint64_t timeout_ns)
{
	struct pollfd pfd;
	int fd, inprog, rc;

	rc = net_connect(sa, len, &fd, &inprog);
	if (rc < 0)
		return -rc;
	rc = 0;
	if (inprog) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do {
			rc = poll(&pfd, 1, (int)(timeout_ns / 1000000ULL) + 1);
		} while (rc < 0 && errno == EINTR);
		rc = rc == 0 ? ETIMEDOUT : rc < 0 ? errno : net_socket_error(fd);
	}
	close(fd);
	return rc;
}

int net_pick_address(const char *host, const char *port, uint64_t timeout_ns,
		     struct sockaddr_storage *ss, socklen_t *len, char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	int rc, last = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		last = probe(ai->ai_addr, ai->ai_addrlen, timeout_ns);
		if (last == 0) {
			memcpy(ss, ai->ai_addr, ai->ai_addrlen);
			*len = ai->ai_addrlen;
			freeaddrinfo(res);
			return 0;
		}
	}
	freeaddrinfo(res);
	snprintf(err, errlen, "cannot connect to %s port %s: %s", host, port, strerror(last));
	return -1;
}

void net_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	}
}
