/*
 * sd-launch [OPTION]... [--] PROGRAM [ARG...]
 *
 * Runs PROGRAM the way systemd's service manager would as far as the sd-daemon
 * protocols go, with descriptors and sockets the test made itself:
 *   -f FD[:NAME]  pass the inherited descriptor FD as the next socket (3, 4, ...):
 *                 LISTEN_FDS, LISTEN_FDNAMES (when any NAME is given) and
 *                 LISTEN_PID (this process, which PROGRAM replaces)
 *   -p PID        LISTEN_PID=PID instead, to check that PROGRAM ignores sockets
 *                 meant for another process
 *   -W USEC       WATCHDOG_USEC=USEC and WATCHDOG_PID (this process)
 *   -j            JOURNAL_STREAM naming this process's standard error, as systemd
 *                 sets it when stderr is connected to the journal
 *   -e NAME=VALUE set an environment variable (NOTIFY_SOCKET=..., say)
 * Exit status: PROGRAM's, or 64 usage, 71 a descriptor could not be moved, 127
 * PROGRAM could not be run.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FDS	   16
#define FIRST_FD   3
#define PARKING_FD 100 /* above every target, so moving one never clobbers another */

struct passed {
	int fd;
	const char *name;
};

static int usage(void)
{
	fprintf(stderr, "usage: sd-launch [-f FD[:NAME]]... [-p PID] [-W USEC] [-j] "
			"[-e NAME=VALUE]... [--] PROGRAM [ARG...]\n");
	return 64;
}

static int set_number(const char *name, long long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", value);
	return setenv(name, buf, 1);
}

/* Moves the passed descriptors to 3, 4, ... (clearing FD_CLOEXEC on the way). */
static int move_fds(struct passed *v, int n)
{
	for (int i = 0; i < n; i++) {
		int parked = fcntl(v[i].fd, F_DUPFD_CLOEXEC, PARKING_FD);

		if (parked < 0)
			return -1;
		v[i].fd = parked;
	}
	for (int i = 0; i < n; i++) {
		if (dup2(v[i].fd, FIRST_FD + i) < 0)
			return -1;
		close(v[i].fd);
	}
	return 0;
}

static int set_names(const struct passed *v, int n)
{
	char names[MAX_FDS * 64] = "";
	int any = 0;

	for (int i = 0; i < n; i++) {
		any |= v[i].name != NULL;
		if (i > 0)
			strcat(names, ":");
		strncat(names, v[i].name ? v[i].name : "unknown", 63);
	}
	return any ? setenv("LISTEN_FDNAMES", names, 1) : 0;
}

static int journal_stream(void)
{
	struct stat st;
	char buf[64];

	if (fstat(STDERR_FILENO, &st) < 0)
		return -1;
	snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	return setenv("JOURNAL_STREAM", buf, 1);
}

int main(int argc, char **argv)
{
	struct passed fds[MAX_FDS];
	long long listen_pid = getpid();
	int nfds = 0, opt;
	char *colon, *end;

	while ((opt = getopt(argc, argv, "+f:p:W:je:")) != -1) {
		switch (opt) {
		case 'f':
			if (nfds == MAX_FDS)
				return usage();
			fds[nfds].fd = (int)strtol(optarg, &end, 10);
			colon = strchr(optarg, ':');
			if (end == optarg || (*end != '\0' && end != colon))
				return usage();
			fds[nfds++].name = colon ? colon + 1 : NULL;
			break;
		case 'p':
			listen_pid = strtoll(optarg, NULL, 10);
			break;
		case 'W':
			if (setenv("WATCHDOG_USEC", optarg, 1) < 0 ||
			    set_number("WATCHDOG_PID", getpid()) < 0)
				return 71;
			break;
		case 'j':
			if (journal_stream() < 0)
				return 71;
			break;
		case 'e':
			if (strchr(optarg, '=') == NULL || putenv(optarg) != 0)
				return usage();
			break;
		default:
			return usage();
		}
	}
	if (optind >= argc)
		return usage();
	if (nfds > 0) {
		if (move_fds(fds, nfds) < 0) {
			fprintf(stderr, "sd-launch: cannot move descriptors: %s\n",
				strerror(errno));
			return 71;
		}
		if (set_number("LISTEN_FDS", nfds) < 0 ||
		    set_number("LISTEN_PID", listen_pid) < 0 || set_names(fds, nfds) < 0)
			return 71;
	}
	execv(argv[optind], argv + optind);
	fprintf(stderr, "sd-launch: %s: %s\n", argv[optind], strerror(errno));
	return 127;
}
