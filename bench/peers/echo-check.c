/*
 * echo-check: the correctness column of bench/compare, one echo server at a time.
 *
 *   echo-check wait PORT MS            connect to 127.0.0.1:PORT until it works (or MS pass)
 *   echo-check halfclose PORT          send, shutdown(SHUT_WR), read to EOF, compare:
 *                                      a 64-byte message, then 1 MiB
 *   echo-check backpressure PORT [MB]  send MB (default 32) without reading until the
 *                                      server pushes back, then read everything back
 *
 * Prints one line, "ok: ..." or "FAIL: ...", and exits 0 or 1 (64: usage).
 * Every step has a deadline: a check never takes more than about a minute.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK	    65536
#define CONNECT_MS  5000  /* a connect that has not completed by then failed */
#define STEP_MS	    20000 /* the deadline of one exchange */
#define STALL_MS    1000  /* no send progress for this long: the server pushes back */
#define EOF_WAIT_MS 5000  /* for the server's FIN once everything came back */

static char fail_msg[256];

static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The byte expected at stream offset i: cheap, and no two nearby chunks alike. */
static unsigned char pattern(uint64_t i)
{
	return (unsigned char)((i * 131) ^ (i >> 9) ^ (i >> 17));
}

/* A nonblocking socket connected to 127.0.0.1:port within timeout_ms, or -1 (errno set). */
static int connect_port(int port, int timeout_ms)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int err = 0;
	socklen_t len = sizeof(err);

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto bad;
	if (poll(&p, 1, timeout_ms) <= 0) {
		errno = ETIMEDOUT;
		goto bad;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		goto bad;
	if (err == 0)
		return fd;
	errno = err;
bad:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

struct xfer {
	int fd;
	uint64_t total; /* bytes to send */
	uint64_t sent;	/* sent so far */
	uint64_t got;	/* echoed and verified so far */
	bool eof;	/* the server closed its side */
};

/* Sends what the socket takes right now; -1 on an error. */
static int send_some(struct xfer *x)
{
	unsigned char buf[CHUNK];

	while (x->sent < x->total) {
		size_t n = x->total - x->sent < CHUNK ? (size_t)(x->total - x->sent) : CHUNK;
		ssize_t w;

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(x->sent + i);
		w = send(x->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0)
			return errno == EAGAIN ? 0 : fail("send: %s", strerror(errno));
		x->sent += (uint64_t)w;
	}
	return 0;
}

/* Reads what is there and checks it; -1 on an error or a wrong byte. */
static int recv_some(struct xfer *x)
{
	unsigned char buf[CHUNK];

	for (;;) {
		ssize_t r = recv(x->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (r == 0) {
			x->eof = true;
			return 0;
		}
		if (r < 0)
			return errno == EAGAIN ? 0 : fail("recv: %s", strerror(errno));
		if (x->got + (uint64_t)r > x->sent)
			return fail("%llu bytes came back, only %llu were sent",
				    (unsigned long long)(x->got + (uint64_t)r),
				    (unsigned long long)x->sent);
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pattern(x->got + (uint64_t)i))
				return fail("wrong byte at offset %llu",
					    (unsigned long long)(x->got + (uint64_t)i));
		x->got += (uint64_t)r;
	}
}

/* Sends the rest while reading until everything came back, or the deadline. With
 * shut, the sending side is shut down as soon as the last byte is sent. */
static int exchange(struct xfer *x, bool shut, int64_t deadline)
{
	bool shut_done = false;

	while (x->got < x->total && !x->eof) {
		struct pollfd p = {.fd = x->fd, .events = POLLIN};
		int64_t left = deadline - now_ms();

		if (shut && !shut_done && x->sent == x->total) {
			if (shutdown(x->fd, SHUT_WR) < 0)
				return fail("shutdown: %s", strerror(errno));
			shut_done = true;
		}
		if (x->sent < x->total)
			p.events |= POLLOUT;
		if (left <= 0)
			return fail("timed out: %llu of %llu bytes sent, %llu echoed",
				    (unsigned long long)x->sent, (unsigned long long)x->total,
				    (unsigned long long)x->got);
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return fail("poll: %s", strerror(errno));
		if (send_some(x) < 0 || recv_some(x) < 0)
			return -1;
	}
	if (x->got < x->total)
		return fail("connection closed after %llu of %llu bytes echoed",
			    (unsigned long long)x->got, (unsigned long long)x->total);
	if (shut && !shut_done && shutdown(x->fd, SHUT_WR) < 0)
		return fail("shutdown: %s", strerror(errno));
	return 0;
}

/* After SHUT_WR and every byte back: the server must close its side too, and
 * send nothing more. */
static int expect_eof(struct xfer *x)
{
	int64_t deadline = now_ms() + EOF_WAIT_MS;

	while (!x->eof) {
		struct pollfd p = {.fd = x->fd, .events = POLLIN};
		int64_t left = deadline - now_ms();

		if (left <= 0)
			return fail("no EOF within %d ms after everything was echoed", EOF_WAIT_MS);
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return fail("poll: %s", strerror(errno));
		if (recv_some(x) < 0)
			return -1;
	}
	return 0;
}

/* n bytes sent (while reading), SHUT_WR right after the last one, all back, then EOF. */
static int halfclose_once(int port, uint64_t n)
{
	struct xfer x = {.total = n};
	int rc;

	x.fd = connect_port(port, CONNECT_MS);
	if (x.fd < 0)
		return fail("connect: %s", strerror(errno));
	rc = exchange(&x, true, now_ms() + STEP_MS);
	if (rc == 0)
		rc = expect_eof(&x);
	close(x.fd);
	return rc;
}

static int check_halfclose(int port)
{
	if (halfclose_once(port, 64) < 0) {
		printf("FAIL: 64 B then SHUT_WR: %s\n", fail_msg);
		return 1;
	}
	if (halfclose_once(port, 1 << 20) < 0) {
		printf("FAIL: 1 MiB then SHUT_WR: %s\n", fail_msg);
		return 1;
	}
	printf("ok: 64 B and 1 MiB sent, SHUT_WR, all echoed, then EOF\n");
	return 0;
}

/* Sends without reading until no byte goes out for STALL_MS (or all of it went, or
 * STEP_MS passed). */
static int fill_without_reading(struct xfer *x)
{
	int64_t last_progress = now_ms(), deadline = last_progress + STEP_MS;

	while (x->sent < x->total && now_ms() - last_progress < STALL_MS && now_ms() < deadline) {
		struct pollfd p = {.fd = x->fd, .events = POLLOUT};
		uint64_t before = x->sent;

		if (poll(&p, 1, 50) < 0 && errno != EINTR)
			return fail("poll: %s", strerror(errno));
		if (send_some(x) < 0)
			return -1;
		if (x->sent != before)
			last_progress = now_ms();
	}
	return 0;
}

static int check_backpressure(int port, unsigned mb)
{
	struct xfer x = {.total = (uint64_t)mb << 20};
	int rc;

	x.fd = connect_port(port, CONNECT_MS);
	if (x.fd < 0) {
		printf("FAIL: connect: %s\n", strerror(errno));
		return 1;
	}
	rc = fill_without_reading(&x);
	if (rc == 0) {
		uint64_t accepted = x.sent;

		rc = exchange(&x, true, now_ms() + STEP_MS);
		if (rc == 0)
			rc = expect_eof(&x);
		if (rc == 0)
			printf("ok: %u MiB echoed intact; %.1f MiB taken before the first read%s\n",
			       mb, (double)accepted / (1 << 20),
			       accepted == x.total ? " (all of it: no pushback seen)" : "");
	}
	if (rc < 0)
		printf("FAIL: %s\n", fail_msg);
	close(x.fd);
	return rc < 0;
}

static int check_wait(int port, long ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		int64_t left = deadline - now_ms();
		int fd = connect_port(port, left < 10 ? 10 : (int)left);

		if (fd >= 0) {
			close(fd);
			printf("ok: 127.0.0.1:%d accepts\n", port);
			return 0;
		}
		if (now_ms() >= deadline) {
			printf("FAIL: 127.0.0.1:%d: %s after %ld ms\n", port, strerror(errno), ms);
			return 1;
		}
		usleep(20000);
	}
}

static long number(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	return v;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: echo-check wait PORT MS | halfclose PORT | backpressure PORT [MB]\n");
	return 64;
}

int main(int argc, char **argv)
{
	long port, arg = -1;

	if (argc < 3 || argc > 4)
		return usage();
	port = number(argv[2], 1, 65535);
	if (argc == 4)
		arg = number(argv[3], 1, strcmp(argv[1], "wait") == 0 ? 600000 : 1024);
	if (port < 0 || (argc == 4 && arg < 0))
		return usage();
	if (strcmp(argv[1], "wait") == 0 && argc == 4)
		return check_wait((int)port, arg);
	if (strcmp(argv[1], "halfclose") == 0 && argc == 3)
		return check_halfclose((int)port);
	if (strcmp(argv[1], "backpressure") == 0)
		return check_backpressure((int)port, argc == 4 ? (unsigned)arg : 32);
	return usage();
}
