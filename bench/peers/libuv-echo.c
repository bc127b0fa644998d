/*
 * libuv-echo: an echo server as the libuv guide teaches it (uv_listen,
 * uv_read_start, one uv_write per read, the buffer freed in the write
 * callback), plus the two things a correct one needs: on EOF, uv_shutdown()
 * so queued writes finish before the close, and reading stops while too much
 * is queued for a peer that does not read.
 *
 *   libuv-echo PORT        listens on 127.0.0.1:PORT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define QUEUE_HIGH (256 * 1024) /* stop reading above this many unsent bytes */
#define QUEUE_LOW  (64 * 1024)	/* and read again below this */

struct conn {
	uv_tcp_t tcp; /* first: the handle pointer is the conn pointer */
	size_t queued;
	int reading;
	int eof;
};

struct write_req {
	uv_write_t req;
	uv_buf_t buf;
};

static void on_closed(uv_handle_t *h)
{
	free(h);
}

static void conn_close(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	buf->base = malloc(suggested);
	buf->len = buf->base != NULL ? suggested : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct conn *c = (struct conn *)req->handle;

	c->queued -= w->buf.len;
	free(w->buf.base);
	free(w);
	if (status < 0) {
		conn_close(c);
	} else if (!c->reading && !c->eof && c->queued < QUEUE_LOW) {
		c->reading = 1;
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	}
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	conn_close((struct conn *)req->handle);
	free(req);
}

static void on_eof(struct conn *c)
{
	uv_shutdown_t *req = malloc(sizeof(*req));

	c->eof = 1;
	if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
		free(req);
		conn_close(c);
	}
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = (struct conn *)s;
	struct write_req *w;

	if (n <= 0) {
		free(buf->base);
		if (n == UV_EOF)
			on_eof(c);
		else if (n < 0)
			conn_close(c);
		return;
	}
	w = malloc(sizeof(*w));
	if (w == NULL) {
		free(buf->base);
		conn_close(c);
		return;
	}
	w->buf = uv_buf_init(buf->base, (unsigned)n);
	if (uv_write(&w->req, s, &w->buf, 1, on_written) < 0) {
		free(buf->base);
		free(w);
		conn_close(c);
		return;
	}
	c->queued += (size_t)n;
	if (c->queued > QUEUE_HIGH) {
		c->reading = 0;
		uv_read_stop(s);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	uv_tcp_init(server->loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->reading = 1;
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int main(int argc, char **argv)
{
	uv_loop_t *loop = uv_default_loop();
	struct sockaddr_in addr;
	uv_tcp_t server;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: libuv-echo PORT\n");
		return 64;
	}
	signal(SIGPIPE, SIG_IGN); /* libuv writes with write(2) */
	uv_tcp_init(loop, &server);
	err = uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
	if (err == 0)
		err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
	if (err == 0)
		err = uv_listen((uv_stream_t *)&server, 4096, on_connection);
	if (err != 0) {
		fprintf(stderr, "libuv-echo: cannot listen on 127.0.0.1:%s: %s\n", argv[1],
			uv_strerror(err));
		return 71;
	}
	return uv_run(loop, UV_RUN_DEFAULT);
}
