/*
 * echo-client HOST PORT [MESSAGE...]
 *
 * The tutorials' echo client: resolve HOST with getaddrinfo, try each address in
 * turn, send MESSAGE (the words joined by spaces, plus a newline) or all of standard
 * input, shutdown(SHUT_WR), then copy what comes back to standard output until EOF.
 * Sending and receiving are interleaved with poll() so that a large input never
 * deadlocks against the echo filling both socket buffers.
 *
 * Exit status: 0 done, 64 usage, 68 unknown host, 69 no address answered,
 * 74 I/O error on the connection, 124 timed out (-T).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct source {
	int fd;           /* stdin, or -1 when sending msg */
	const char *msg;  /* the joined words */
	size_t msg_len;
	size_t msg_off;
	char buf[65536];
	size_t off, len;  /* unsent bytes in buf */
	int eof;
};

static int timeout_ms = -1;

static void usage(FILE *out, int status)
{
	fprintf(out, "usage: echo-client [-T SECS] HOST PORT [MESSAGE...]\n"
		     "  Sends MESSAGE (or standard input) to the echo server at HOST PORT,\n"
		     "  shuts down its sending side and prints what comes back until EOF.\n");
	exit(status);
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res, *ai;
	int fd = -1, err, saved = 0;

	err = getaddrinfo(host, port, &hints, &res);
	if (err != 0) {
		fprintf(stderr, "echo-client: %s port %s: %s\n", host, port, gai_strerror(err));
		exit(68);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "echo-client: cannot connect to %s port %s: %s\n", host, port,
			strerror(saved));
		exit(69);
	}
	return fd;
}

/* Refill buf from the message or stdin; sets eof when there is nothing more. */
static void source_fill(struct source *src)
{
	ssize_t n;

	if (src->len > 0 || src->eof)
		return;
	src->off = 0;
	if (src->fd < 0) {
		size_t left = src->msg_len - src->msg_off;
		size_t take = left < sizeof(src->buf) ? left : sizeof(src->buf);

		memcpy(src->buf, src->msg + src->msg_off, take);
		src->msg_off += take;
		src->len = take;
		src->eof = take == 0;
		return;
	}
	do
		n = read(src->fd, src->buf, sizeof(src->buf));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		perror("echo-client: stdin");
		exit(74);
	}
	src->len = (size_t)n;
	src->eof = n == 0;
}

static char *join_words(int argc, char **argv, size_t *len)
{
	size_t total = 1;
	char *msg, *p;

	for (int i = 0; i < argc; i++)
		total += strlen(argv[i]) + 1;
	msg = malloc(total);
	if (msg == NULL) {
		perror("echo-client");
		exit(71);
	}
	p = msg;
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]);

		memcpy(p, argv[i], l);
		p += l;
		*p++ = i + 1 < argc ? ' ' : '\n';
	}
	*len = (size_t)(p - msg);
	return msg;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Returns 1 while the socket may still deliver, 0 at EOF. */
static int pump_in(int fd)
{
	char buf[65536];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);

	if (n < 0 && errno == EINTR)
		return 1;
	if (n < 0) {
		perror("echo-client: recv");
		exit(74);
	}
	if (n > 0 && write_all(STDOUT_FILENO, buf, (size_t)n) < 0) {
		perror("echo-client: stdout");
		exit(74);
	}
	return n > 0;
}

/* Sends what is buffered; once the source is exhausted, shuts down the sending side. */
static void pump_out(int fd, struct source *src, int *shut)
{
	ssize_t n;

	if (src->len == 0 && src->eof) {
		if (shutdown(fd, SHUT_WR) < 0) {
			perror("echo-client: shutdown");
			exit(74);
		}
		*shut = 1;
		return;
	}
	n = send(fd, src->buf + src->off, src->len, MSG_NOSIGNAL);
	if (n < 0 && errno == EINTR)
		return;
	if (n < 0) {
		perror("echo-client: send");
		exit(74);
	}
	src->off += (size_t)n;
	src->len -= (size_t)n;
}

int main(int argc, char **argv)
{
	static struct source src;
	int opt, fd, shut = 0, open = 1;

	while ((opt = getopt(argc, argv, "+hT:")) != -1) {
		switch (opt) {
		case 'T':
			timeout_ms = atoi(optarg) * 1000;
			if (timeout_ms <= 0)
				usage(stderr, 64);
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, 64);
		}
	}
	if (argc - optind < 2)
		usage(stderr, 64);
	signal(SIGPIPE, SIG_IGN);
	src.fd = STDIN_FILENO;
	if (argc - optind > 2) {
		src.fd = -1;
		src.msg = join_words(argc - optind - 2, argv + optind + 2, &src.msg_len);
	}
	fd = dial(argv[optind], argv[optind + 1]);
	while (open) {
		/* Never block on stdin while echoes wait to be printed (interactive use). */
		int want_in = !src.eof && src.len == 0;
		struct pollfd p[2] = {
			{.fd = fd, .events = POLLIN | (!shut && !want_in ? POLLOUT : 0)},
			{.fd = src.fd, .events = want_in ? POLLIN : 0},
		};
		int r;

		if (want_in && src.fd < 0)
			source_fill(&src);
		if (want_in && src.fd < 0)
			continue;
		r = poll(p, 2, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			perror("echo-client: poll");
			return 74;
		}
		if (r == 0) {
			fprintf(stderr, "echo-client: timed out\n");
			return 124;
		}
		if (p[1].revents)
			source_fill(&src);
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
			open = pump_in(fd);
		if (open && !shut && (p[0].revents & POLLOUT))
			pump_out(fd, &src, &shut);
	}
	close(fd);
	return 0;
}
