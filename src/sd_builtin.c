/*
 * sd_builtin: the sd-daemon protocols written out, for builds without libsystemd.
 * Both are small and stable: systemd's sd_listen_fds(3) and sd_notify(3) define them.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "echod/sd.h"

/* A variable holding a decimal number; -1 when absent or malformed. */
static long long env_number(const char *name)
{
	const char *s = getenv(name);
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	return errno != 0 || *end != '\0' || v < 0 ? -1 : v;
}

static char **split_names(const char *s, int n)
{
	char **names = calloc((size_t)n + 1, sizeof(char *));

	for (int i = 0; names != NULL && s != NULL && i < n; i++) {
		size_t len = strcspn(s, ":");

		names[i] = strndup(s, len);
		s = s[len] == ':' ? s + len + 1 : NULL;
	}
	return names;
}

int sd_proto_listen_fds(char ***names)
{
	long long pid = env_number("LISTEN_PID"), n = env_number("LISTEN_FDS");
	int rc = 0;

	*names = NULL;
	if (pid == (long long)getpid() && n > 0 && n < 4096) {
		*names = split_names(getenv("LISTEN_FDNAMES"), (int)n);
		rc = *names != NULL ? (int)n : -ENOMEM;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

int sd_proto_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t len;
	ssize_t sent;
	int fd;

	if (path == NULL || path[0] == '\0')
		return 0;
	if ((path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sun.sun_path))
		return -EINVAL;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len);
	if (sent < 0)
		sent = -errno;
	close(fd);
	return sent < 0 ? (int)sent : 0;
}

uint64_t sd_proto_watchdog_usec(void)
{
	long long usec = env_number("WATCHDOG_USEC"), pid = env_number("WATCHDOG_PID");

	if (usec <= 0 || (pid >= 0 && pid != (long long)getpid()))
		return 0;
	return (uint64_t)usec;
}

const char *sd_proto_name(void)
{
	return "built-in";
}
