/* sd: checks on passed sockets and notification formatting, shared by both backends. */
#include "echod/sd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "echod/log.h"

static int sd_check(struct sd_socket *s, char *why, size_t whylen)
{
	socklen_t len = sizeof(s->type);
	int listening = 0, flags;

	if (getsockopt(s->fd, SOL_SOCKET, SO_TYPE, &s->type, &len) < 0) {
		snprintf(why, whylen, "descriptor %d from systemd is not a socket: %s", s->fd,
			 strerror(errno));
		return -1;
	}
	len = sizeof(listening);
	if (s->type == SOCK_STREAM &&
	    (getsockopt(s->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening)) {
		snprintf(why, whylen, "stream socket %d from systemd is not listening (Accept=yes "
				      "is not supported; use Accept=no)", s->fd);
		return -1;
	}
	if (s->type != SOCK_STREAM && s->type != SOCK_DGRAM) {
		snprintf(why, whylen, "socket %d from systemd has type %d; stream or datagram expected",
			 s->fd, s->type);
		return -1;
	}
	flags = fcntl(s->fd, F_GETFL);
	if (flags < 0 || fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(s->fd, F_SETFD, FD_CLOEXEC) < 0) {
		snprintf(why, whylen, "socket %d from systemd: fcntl: %s", s->fd, strerror(errno));
		return -1;
	}
	return 0;
}

int sd_take_sockets(struct sd_socket **out, char *why, size_t whylen)
{
	char **names = NULL;
	int n = sd_proto_listen_fds(&names), rc = 0;
	struct sd_socket *v;

	*out = NULL;
	if (n <= 0) {
		if (n < 0)
			snprintf(why, whylen, "socket activation: %s", strerror(-n));
		return n < 0 ? -1 : 0;
	}
	v = calloc((size_t)n, sizeof(*v));
	for (int i = 0; i < n && v != NULL && rc == 0; i++) {
		v[i].fd = SD_FDS_START + i;
		if (names != NULL && names[i] != NULL)
			snprintf(v[i].name, sizeof(v[i].name), "%s", names[i]);
		rc = sd_check(&v[i], why, whylen);
	}
	for (int i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
	if (v == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (rc < 0) {
		free(v);
		return -1;
	}
	*out = v;
	return n;
}

void sd_notify_state(const char *fmt, ...)
{
	static int warned;
	char state[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	rc = sd_proto_notify(state);
	if (rc < 0 && !warned) {
		warned = 1;
		log_warnx("sd_notify: %s", strerror(-rc));
	}
}
