/*
 * libevent-echo: an echo server on libevent 2 bufferevents, the way its book
 * suggests: an evconnlistener, and a read callback that moves the input
 * buffer into the output buffer (chains are moved, bytes are not copied).
 * Correctness additions: reading is disabled while the output holds more than
 * OUT_HIGH (the write watermark wakes us when it drained), and on EOF the
 * connection closes only once its output is flushed.
 *
 *   libevent-echo PORT     listens on 127.0.0.1:PORT
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OUT_HIGH (256 * 1024)
#define OUT_LOW	 (64 * 1024)

static void on_read(struct bufferevent *bev, void *arg)
{
	struct evbuffer *out = bufferevent_get_output(bev);

	(void)arg;
	evbuffer_add_buffer(out, bufferevent_get_input(bev));
	if (evbuffer_get_length(out) > OUT_HIGH) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(bev, EV_WRITE, OUT_LOW, 0);
	}
}

/* Runs when the output drained to the write low watermark. */
static void on_drained(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (!(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(bev, EV_READ);
	}
}

/* After the peer's FIN: close once everything owed is sent. */
static void on_drained_then_close(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_setcb(bev, NULL, on_drained_then_close, on_event, NULL);
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct bufferevent *bev;
	int one = 1;

	(void)sa;
	(void)len;
	(void)arg;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		return;
	}
	bufferevent_setcb(bev, on_read, on_drained, on_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	struct event_base *base;
	struct evconnlistener *l;

	if (argc != 2) {
		fprintf(stderr, "usage: libevent-echo PORT\n");
		return 64;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	base = event_base_new();
	l = base == NULL ? NULL
			 : evconnlistener_new_bind(base, on_accept, NULL,
						   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
						   (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL) {
		fprintf(stderr, "libevent-echo: cannot listen on 127.0.0.1:%s\n", argv[1]);
		return 71;
	}
	return event_base_dispatch(base) < 0 ? 1 : 0;
}
