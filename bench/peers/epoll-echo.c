/*
 * epoll-echo: the floor reference of bench/compare, the smallest correct
 * edge-triggered epoll echo server we could write. One thread, one shared read
 * buffer; a connection owns memory only while the kernel refuses part of an
 * echo (the unsent tail is copied out, and the connection stops reading until
 * it is flushed, so a peer that never reads is pushed back by TCP). On the
 * peer's FIN whatever is owed goes out first, then the socket is closed.
 *
 *   epoll-echo PORT        listens on 127.0.0.1:PORT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF      65536
#define READS_PER_OWN 16 /* reads per connection per turn, then it waits its turn */
#define MAX_EVENTS    256

struct conn {
	int fd;
	bool eof;    /* the peer sent FIN */
	bool queued; /* on the ready list: readable bytes left after its budget */
	char *tail;  /* unsent bytes, or NULL */
	size_t tail_off, tail_len;
	struct conn *next; /* ready list */
};

static char rbuf[READ_BUF];
static struct conn *ready_head;

static void conn_close(struct conn *c)
{
	close(c->fd); /* removes it from the epoll set */
	free(c->tail);
	c->fd = -1;
}

/* Sends the unsent tail; true when nothing is owed any more. */
static bool flush_tail(struct conn *c)
{
	while (c->tail_off < c->tail_len) {
		ssize_t n =
		    send(c->fd, c->tail + c->tail_off, c->tail_len - c->tail_off, MSG_NOSIGNAL);
		if (n < 0)
			return false;
		c->tail_off += (size_t)n;
	}
	free(c->tail);
	c->tail = NULL;
	return true;
}

/* Echoes n bytes of rbuf; keeps what the kernel refused. -1 on a send error. */
static int echo(struct conn *c, size_t n)
{
	ssize_t sent = send(c->fd, rbuf, n, MSG_NOSIGNAL);

	if (sent < 0 && errno != EAGAIN)
		return -1;
	if (sent < 0)
		sent = 0;
	if ((size_t)sent == n)
		return 0;
	c->tail_len = n - (size_t)sent;
	c->tail_off = 0;
	c->tail = malloc(c->tail_len);
	if (c->tail == NULL)
		return -1;
	memcpy(c->tail, rbuf + sent, c->tail_len);
	return 0;
}

/* Reads and echoes until EAGAIN, EOF, a refused send or the budget. -1: close it. */
static int read_some(struct conn *c)
{
	for (int i = 0; i < READS_PER_OWN; i++) {
		ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), 0);

		if (n == 0) {
			c->eof = true;
			return 0;
		}
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (echo(c, (size_t)n) < 0)
			return -1;
		if (c->tail != NULL)
			return 0;
	}
	if (!c->queued) {
		c->queued = true;
		c->next = ready_head;
		ready_head = c;
	}
	return 0;
}

static void serve(struct conn *c, uint32_t ev)
{
	if (c->fd < 0)
		return;
	if (ev & EPOLLERR)
		goto bad;
	if (c->tail != NULL && !flush_tail(c)) {
		if (errno == EAGAIN)
			return;
		goto bad;
	}
	if (!c->eof && read_some(c) < 0)
		goto bad;
	if (c->eof && c->tail == NULL)
		goto bad;
	return;
bad:
	conn_close(c);
	if (!c->queued)
		free(c);
}

static void accept_some(int ep, int lfd)
{
	static const int one = 1;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
		struct conn *c;

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
		}
	}
}

/* Connections that used up their read budget get another turn. */
static void run_ready(void)
{
	struct conn *list = ready_head;

	ready_head = NULL;
	while (list != NULL) {
		struct conn *c = list;

		list = c->next;
		c->queued = false;
		if (c->fd < 0)
			free(c);
		else
			serve(c, 0);
	}
}

static int listen_on(const char *port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	char *end;
	long p = strtol(port, &end, 10);
	int one = 1;
	int fd;

	if (*port == '\0' || *end != '\0' || p < 1 || p > 65535)
		return -1;
	sin.sin_port = htons((uint16_t)p);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 4096) < 0)
		return -1;
	return fd;
}

int main(int argc, char **argv)
{
	static struct epoll_event evs[MAX_EVENTS];
	struct epoll_event lev = {.events = EPOLLIN};
	int lfd, ep;

	if (argc != 2) {
		fprintf(stderr, "usage: epoll-echo PORT\n");
		return 64;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(argv[1]);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		fprintf(stderr, "epoll-echo: cannot listen on 127.0.0.1:%s: %s\n", argv[1],
			strerror(errno));
		return 71;
	}
	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, ready_head != NULL ? 0 : -1);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				accept_some(ep, lfd);
			else
				serve(evs[i].data.ptr, evs[i].events);
		}
		run_ready();
	}
}
