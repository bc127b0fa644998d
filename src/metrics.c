/* metrics: a minimal HTTP/1.0 responder for Prometheus scrapes. */
#include "echod/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echod/listen.h"
#include "echod/log.h"
#include "echod/net.h"

#define METRICS_TIMEOUT_MS 5000

/* Gauges are levels, the rest only grow: counters get the _total suffix. */
static int is_gauge(enum stats_counter c)
{
	return c == STAT_open || c == STAT_buffers_held;
}

static const char *help_of(enum stats_counter c)
{
	static const char *const help[STAT_COUNT] = {
		[STAT_accepted] = "TCP connections accepted and admitted.",
		[STAT_open] = "TCP connections open now.",
		[STAT_closed_eof] = "Connections closed after the peer's FIN, all bytes echoed.",
		[STAT_closed_reset] = "Connections closed by a reset from the peer.",
		[STAT_closed_error] = "Connections closed on another error.",
		[STAT_closed_idle] = "Connections closed by the idle timeout.",
		[STAT_closed_drain] = "Connections closed when the drain timeout passed.",
		[STAT_rejected_max_conns] = "Connections refused by --max-conns.",
		[STAT_rejected_per_ip] = "Connections refused by --max-conns-per-ip.",
		[STAT_rejected_nomem] = "Connections refused for lack of memory.",
		[STAT_rejected_acl] = "Connections refused by --allow / --deny.",
		[STAT_rejected_conn_rate] = "Connections refused by --conn-rate.",
		[STAT_accept_paused] = "Times accepting paused for lack of descriptors or memory.",
		[STAT_bytes_in] = "Bytes received.",
		[STAT_bytes_out] = "Bytes echoed.",
		[STAT_msgs] = "Receives that returned data.",
		[STAT_short_sends] = "Sends the kernel took only part of.",
		[STAT_buffers_held] = "Buffers held by connections that owe bytes.",
		[STAT_ring_enobufs] = "io_uring: receives that found the buffer ring empty.",
		[STAT_rearms] = "io_uring: multishot receives armed again.",
		[STAT_zc_sends] = "io_uring: zero-copy sends.",
		[STAT_ring_trims] = "io_uring: idle spells in which the receive buffers' pages were given back.",
		[STAT_udp_in] = "UDP datagrams received.",
		[STAT_udp_out] = "UDP datagrams sent in answer.",
		[STAT_udp_refused_port] = "UDP datagrams not answered: source port below 1024.",
		[STAT_udp_refused_addr] =
		    "UDP datagrams not answered: broadcast, multicast or unspecified source.",
		[STAT_udp_refused_rate] = "UDP datagrams not answered: over --udp-rate.",
		[STAT_udp_refused_acl] = "UDP datagrams not answered: refused by --allow / --deny.",
		[STAT_udp_dropped] = "UDP answers the kernel refused (full buffer, unreachable).",
		[STAT_workers_stuck] =
		    "Workers the supervisor killed because their loop had not turned for 5 s.",
	};
	return help[c];
}

char *metrics_render(const uint64_t (*per_worker)[STAT_COUNT], unsigned nworkers,
		     unsigned live_workers)
{
	size_t cap = 512 + (size_t)STAT_COUNT * (200 + (size_t)nworkers * 80), n = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return NULL;
	n += (size_t)snprintf(buf + n, cap - n,
			      "# HELP echod_workers Worker processes running.\n"
			      "# TYPE echod_workers gauge\nechod_workers %u\n",
			      live_workers);
	for (int c = 0; c < STAT_COUNT; c++) {
		const char *suffix = is_gauge((enum stats_counter)c) ? "" : "_total";
		const char *name = stats_name((enum stats_counter)c);

		n += (size_t)snprintf(buf + n, cap - n, "# HELP echod_%s%s %s\n# TYPE echod_%s%s %s\n",
				      name, suffix, help_of((enum stats_counter)c), name, suffix,
				      is_gauge((enum stats_counter)c) ? "gauge" : "counter");
		for (unsigned w = 0; w < nworkers; w++)
			n += (size_t)snprintf(buf + n, cap - n, "echod_%s%s{worker=\"%u\"} %llu\n",
					      name, suffix, w,
					      (unsigned long long)per_worker[w][c]);
	}
	return buf;
}

void metrics_init(struct metrics_server *m)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	for (int i = 0; i < METRICS_CLIENTS; i++)
		m->clients[i].fd = -1;
}

int metrics_open(struct metrics_server *m, const char *spec, int backlog, char *why,
		 size_t whylen)
{
	struct listener_set set;
	struct listen_spec ls;
	int rc;

	metrics_init(m);
	if (listen_parse(spec, &ls, why, whylen) < 0)
		return LISTEN_ERR_USAGE;
	if (ls.any && strchr(spec, '*') == NULL) {
		ls.any = 0; /* no host given: loopback only */
		strcpy(ls.host, "127.0.0.1");
	}
	rc = listen_open_all(&set, &ls, 1, 1, backlog, why, whylen);
	if (rc < 0) {
		listen_close_all(&set);
		return rc;
	}
	m->fd = set.v[0].fds[0];
	snprintf(m->name, sizeof(m->name), "%s", set.v[0].name + 4);
	set.v[0].fds[0] = -1;
	for (unsigned i = 1; i < set.n; i++) /* a name with several addresses: the first */
		log_warnx("metrics: serving on %s only, not %s", m->name, set.v[i].name);
	listen_close_all(&set);
	return 0;
}

static void client_close(struct metrics_client *cl)
{
	close(cl->fd);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

void metrics_close(struct metrics_server *m)
{
	for (int i = 0; i < METRICS_CLIENTS; i++)
		if (m->clients[i].fd >= 0)
			client_close(&m->clients[i]);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

int metrics_pollfds(const struct metrics_server *m, struct pollfd *p)
{
	int n = 0;

	if (m->fd < 0)
		return 0;
	p[n++] = (struct pollfd){.fd = m->fd, .events = POLLIN};
	for (int i = 0; i < METRICS_CLIENTS; i++)
		if (m->clients[i].fd >= 0)
			p[n++] = (struct pollfd){.fd = m->clients[i].fd,
						 .events = m->clients[i].out ? POLLOUT : POLLIN};
	return n;
}

static void accept_client(struct metrics_server *m, uint64_t now)
{
	int fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < METRICS_CLIENTS; i++) {
		if (m->clients[i].fd < 0) {
			m->clients[i].fd = fd;
			m->clients[i].deadline = now + METRICS_TIMEOUT_MS;
			return;
		}
	}
	close(fd); /* busy: the scraper retries */
}

static void respond(struct metrics_client *cl, char *(*body)(void *), void *arg)
{
	const char *status = "404 Not Found", *type = "text/plain";
	char *page = NULL, head[256];
	size_t hlen, blen;

	if (strncmp(cl->in, "GET /metrics ", 13) == 0 || strncmp(cl->in, "GET /metrics?", 13) == 0) {
		page = body(arg);
		status = page ? "200 OK" : "500 Internal Server Error";
		type = "text/plain; version=0.0.4; charset=utf-8";
	} else if (strncmp(cl->in, "GET ", 4) != 0) {
		status = "405 Method Not Allowed";
	}
	blen = page ? strlen(page) : strlen(status) + 1;
	hlen = (size_t)snprintf(head, sizeof(head),
				"HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
				"Connection: close\r\n\r\n",
				status, type, blen);
	cl->out = malloc(hlen + blen + 1);
	if (cl->out != NULL) {
		memcpy(cl->out, head, hlen);
		if (page != NULL)
			memcpy(cl->out + hlen, page, blen);
		else
			snprintf(cl->out + hlen, blen + 1, "%s\n", status);
		cl->out_len = hlen + blen;
	}
	free(page);
}

/* Returns -1 when the client is done or failed. */
static int client_io(struct metrics_client *cl, char *(*body)(void *), void *arg)
{
	ssize_t r;

	if (cl->out == NULL) {
		r = recv(cl->fd, cl->in + cl->in_len, sizeof(cl->in) - 1 - cl->in_len, 0);
		if (r <= 0)
			return r < 0 && errno == EAGAIN ? 0 : -1;
		cl->in_len += (size_t)r;
		cl->in[cl->in_len] = '\0';
		if (strstr(cl->in, "\r\n\r\n") == NULL && strstr(cl->in, "\n\n") == NULL)
			return cl->in_len + 1 < sizeof(cl->in) ? 0 : -1;
		respond(cl, body, arg);
		if (cl->out == NULL)
			return -1;
	}
	r = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off, MSG_NOSIGNAL);
	if (r < 0)
		return errno == EAGAIN ? 0 : -1;
	cl->out_off += (size_t)r;
	return cl->out_off == cl->out_len ? -1 : 0;
}

void metrics_serve(struct metrics_server *m, const struct pollfd *p, int n, uint64_t now,
		   char *(*body)(void *arg), void *arg)
{
	for (int i = 0; i < n; i++) {
		if (p[i].revents == 0)
			continue;
		if (p[i].fd == m->fd) {
			accept_client(m, now);
			continue;
		}
		for (int k = 0; k < METRICS_CLIENTS; k++)
			if (m->clients[k].fd == p[i].fd && client_io(&m->clients[k], body, arg) < 0)
				client_close(&m->clients[k]);
	}
	for (int k = 0; k < METRICS_CLIENTS; k++)
		if (m->clients[k].fd >= 0 && now >= m->clients[k].deadline)
			client_close(&m->clients[k]);
}
