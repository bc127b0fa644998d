/*
 * sd-activate SPEC... -- PROGRAM [ARG...]
 *
 * Socket activation as systemd does it, for the tests: binds one socket per SPEC
 * ("tcp:127.0.0.1:0" listening, "udp:127.0.0.1:0" datagram; "=NAME" appended sets its
 * FileDescriptorName=), places them at descriptors 3, 4, ... and executes PROGRAM
 * with LISTEN_PID (its own pid, which exec keeps), LISTEN_FDS and LISTEN_FDNAMES.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int open_spec(const char *spec, char *name, size_t namelen)
{
	char buf[256], *host, *port, *eq;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int udp = strncmp(spec, "udp:", 4) == 0, fd, on = 1;

	if (!udp && strncmp(spec, "tcp:", 4) != 0)
		return -1;
	snprintf(buf, sizeof(buf), "%s", spec + 4);
	eq = strchr(buf, '=');
	snprintf(name, namelen, "%s", eq != NULL ? eq + 1 : (udp ? "udp" : "tcp"));
	if (eq != NULL)
		*eq = '\0';
	host = buf;
	port = strrchr(buf, ':');
	if (port == NULL)
		return -1;
	*port++ = '\0';
	sin.sin_port = htons((unsigned short)atoi(port));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || (!udp && listen(fd, 128) < 0)) {
		perror(spec);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	char names[1024] = "", name[128], env[64];
	int i, n = 0, fds[32];

	for (i = 1; i < argc && strcmp(argv[i], "--") != 0 && n < 32; i++, n++) {
		fds[n] = open_spec(argv[i], name, sizeof(name));
		if (fds[n] < 0) {
			fprintf(stderr, "sd-activate: bad spec '%s'\n", argv[i]);
			return 64;
		}
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", n ? ":" : "",
			 name);
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "usage: sd-activate SPEC... -- PROGRAM [ARG...]\n");
		return 64;
	}
	/* Above every target first, so that no dup2 overwrites a socket still to move. */
	for (int k = 0; k < n; k++) {
		int high = fcntl(fds[k], F_DUPFD, 3 + n);

		close(fds[k]);
		fds[k] = high;
	}
	for (int k = 0; k < n; k++) {
		if (dup2(fds[k], 3 + k) < 0)
			return 71;
		close(fds[k]);
	}
	snprintf(env, sizeof(env), "%d", (int)getpid());
	setenv("LISTEN_PID", env, 1);
	snprintf(env, sizeof(env), "%d", n);
	setenv("LISTEN_FDS", env, 1);
	setenv("LISTEN_FDNAMES", names, 1);
	execv(argv[i + 1], argv + i + 1);
	perror(argv[i + 1]);
	return 71;
}
