/* metrics: the pure parts, see metrics.h: request routing, answers, the text format. */
#include "echod/metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METHOD_MAX 16

/* ---- requests ---- */

/* Length of the headers' end marker ("\n\n" or "\n\r\n") found in in, 0 if none. */
static int headers_complete(const char *in, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if (in[i] == '\n' && (in[i + 1] == '\n' || (in[i + 1] == '\r' && i + 2 < len &&
							      in[i + 2] == '\n')))
			return 1;
	return 0;
}

/* "METHOD SP /TARGET SP HTTP/1.N" without its line end; 0 when well formed. */
static int check_request_line(const char *line, size_t len)
{
	const char *sp1 = memchr(line, ' ', len), *sp2;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x21 && line[i] != ' ')
			return -1;
	if (sp1 == NULL || sp1[1] != '/')
		return -1;
	sp2 = memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line));
	if (sp2 == NULL || (size_t)(line + len - (sp2 + 1)) != 8 ||
	    memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] < '0' || sp2[8] > '9')
		return -1;
	return 0;
}

static int route_target(const char *target)
{
	if (strncmp(target, "/metrics", 8) == 0 && (target[8] == ' ' || target[8] == '?'))
		return 200;
	return 404;
}

int metrics_route(const char *in, size_t len, int *head)
{
	const char *eol;
	size_t mlen, llen;

	*head = 0;
	for (mlen = 0; mlen < len && in[mlen] != ' '; mlen++)
		if (in[mlen] < 'A' || in[mlen] > 'Z' || mlen == METHOD_MAX)
			return 400; /* not a method: garbage, answered now */
	if (mlen == len)
		return 0;
	if (mlen == 0)
		return 400;
	eol = memchr(in, '\n', len);
	if (eol == NULL)
		return len + 1 >= METRICS_REQUEST_MAX ? 400 : 0;
	llen = (size_t)(eol - in);
	if (llen > 0 && in[llen - 1] == '\r')
		llen--;
	if (check_request_line(in, llen) < 0)
		return 400;
	if (!headers_complete(in, len))
		return len + 1 >= METRICS_REQUEST_MAX ? 400 : 0;
	*head = mlen == 4 && memcmp(in, "HEAD", 4) == 0;
	if (!*head && !(mlen == 3 && memcmp(in, "GET", 3) == 0))
		return 405;
	return route_target(in + mlen + 1);
}

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "200 OK";
	case 400:
		return "400 Bad Request";
	case 404:
		return "404 Not Found";
	case 405:
		return "405 Method Not Allowed";
	default:
		return "500 Internal Server Error";
	}
}

static const char *status_body(int status)
{
	switch (status) {
	case 400:
		return "400 Bad Request: expected GET /metrics HTTP/1.1\n";
	case 404:
		return "404 Not Found: echod serves /metrics only\n";
	case 405:
		return "405 Method Not Allowed: GET or HEAD\n";
	default:
		return "500 Internal Server Error: out of memory\n";
	}
}

char *metrics_http_answer(int status, const char *body, int head, size_t *len)
{
	char hdr[320], *out;
	size_t blen, hlen;
	int n;

	if (body == NULL)
		body = status_body(status);
	blen = strlen(body);
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		     "Connection: close\r\n\r\n",
		     status_text(status),
		     status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
				   : "text/plain; charset=utf-8",
		     blen, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return NULL;
	hlen = (size_t)n;
	out = malloc(hlen + (head ? 0 : blen) + 1);
	if (out == NULL)
		return NULL;
	memcpy(out, hdr, hlen);
	if (!head)
		memcpy(out + hlen, body, blen);
	*len = hlen + (head ? 0 : blen);
	out[*len] = '\0';
	return out;
}

/* ---- the text format ---- */

void metrics_escape(const char *in, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *in != '\0' && n + 3 <= outlen; in++) {
		if (*in == '\\' || *in == '"' || *in == '\n') {
			out[n++] = '\\';
			out[n++] = *in == '\n' ? 'n' : *in;
		} else {
			out[n++] = *in;
		}
	}
	if (outlen > 0)
		out[n < outlen ? n : outlen - 1] = '\0';
}

/* A growing string; a failed append sets failed and the result is NULL. */
struct text {
	char *s;
	size_t len, cap;
	int failed;
};

static void __attribute__((format(printf, 2, 3))) put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int tries = 0; tries < 2 && !t->failed; tries++) {
		va_start(ap, fmt);
		n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = 1;
		} else if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		} else {
			size_t cap = (t->cap + (size_t)n) * 2;
			char *s = realloc(t->s, cap);

			if (s == NULL)
				t->failed = 1;
			else
				t->s = s, t->cap = cap;
		}
	}
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

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
		[STAT_offloaded] = "TCP connections echoed in the kernel (--offload=sockmap).",
		[STAT_offload_fallbacks] =
		    "Offload: connections echoed in user space because the kernel refused them.",
		[STAT_offload_overruns] =
		    "Offload: peers reset for owing more than --offload-budget bytes.",
	};
	return help[c] != NULL ? help[c] : "An echod counter.";
}

static void render_build(struct text *t, const struct metrics_build *b)
{
	char v[4][96];

	metrics_escape(b->version ? b->version : "", v[0], sizeof(v[0]));
	metrics_escape(b->backend ? b->backend : "", v[1], sizeof(v[1]));
	metrics_escape(b->sd ? b->sd : "", v[2], sizeof(v[2]));
	metrics_escape(b->seccomp ? b->seccomp : "", v[3], sizeof(v[3]));
	family(t, "echod_build_info", "gauge",
	       "The running echod: version, backend in use, sd-daemon protocol, seccomp. "
	       "Always 1.");
	put(t, "echod_build_info{version=\"%s\",backend=\"%s\",sd_daemon=\"%s\",seccomp=\"%s\"} 1\n",
	    v[0], v[1], v[2], v[3]);
}

/* The standard process_* series, for the supervisor and its workers together. */
static void render_process(struct text *t, const struct metrics_process *p)
{
	if (p->cpu_seconds >= 0) {
		family(t, "process_cpu_seconds_total", "counter",
		       "User and system CPU time of the supervisor and its workers, in seconds.");
		put(t, "process_cpu_seconds_total %.2f\n", p->cpu_seconds);
	}
	if (p->rss_bytes > 0) {
		family(t, "process_resident_memory_bytes", "gauge",
		       "Resident memory of the supervisor and its workers, summed, in bytes.");
		put(t, "process_resident_memory_bytes %llu\n", (unsigned long long)p->rss_bytes);
	}
	if (p->open_fds >= 0) {
		family(t, "process_open_fds", "gauge",
		       "Open descriptors of the supervisor and its workers, summed.");
		put(t, "process_open_fds %ld\n", p->open_fds);
	}
	if (p->max_fds >= 0) {
		family(t, "process_max_fds", "gauge", "The descriptor limit of each process.");
		put(t, "process_max_fds %ld\n", p->max_fds);
	}
	family(t, "process_start_time_seconds", "gauge",
	       "When the supervisor started, in seconds since the epoch.");
	put(t, "process_start_time_seconds %.3f\n", p->start_time);
}

static void render_counters(struct text *t, const struct metrics_snapshot *s)
{
	char name[64];

	for (int c = 0; c < STAT_COUNT; c++) {
		int gauge = is_gauge((enum stats_counter)c);

		snprintf(name, sizeof(name), "echod_%s%s", stats_name((enum stats_counter)c),
			 gauge ? "" : "_total");
		family(t, name, gauge ? "gauge" : "counter", help_of((enum stats_counter)c));
		for (unsigned w = 0; w < s->nworkers; w++)
			put(t, "%s{worker=\"%u\"} %llu\n", name, w,
			    (unsigned long long)s->per_worker[w][c]);
	}
}

/* A counter that cannot move on a listener (accepted on UDP, datagrams on TCP) is
 * not shown for it; the "other" row (service "") may hold both kinds. */
static int applies(enum stats_lcounter c, const struct metrics_listener *l)
{
	if (l->service[0] == '\0')
		return 1;
	if (c == LSTAT_accepted)
		return !l->udp;
	return l->udp || (c != LSTAT_udp_in && c != LSTAT_udp_out);
}

/* echod_listener_*_total{listener,service}: the counters kept per listener. */
static void render_listeners(struct text *t, const struct metrics_snapshot *s)
{
	char name[64], lname[160], svc[48];

	for (int c = 0; c < LSTAT_COUNT; c++) {
		enum stats_counter base = stats_lbase((enum stats_lcounter)c);
		unsigned n = 0;

		for (unsigned i = 0; i < s->nlisteners; i++)
			n += applies((enum stats_lcounter)c, &s->listeners[i]);
		if (n == 0)
			continue;
		snprintf(name, sizeof(name), "echod_listener_%s_total",
			 stats_lname((enum stats_lcounter)c));
		put(t, "# HELP %s %s Per listener, all workers together.\n# TYPE %s counter\n",
		    name, help_of(base), name);
		for (unsigned i = 0; i < s->nlisteners; i++) {
			const struct metrics_listener *l = &s->listeners[i];

			if (!applies((enum stats_lcounter)c, l))
				continue;
			metrics_escape(l->name, lname, sizeof(lname));
			metrics_escape(l->service, svc, sizeof(svc));
			put(t, "%s{listener=\"%s\",service=\"%s\"} %llu\n", name, lname, svc,
			    (unsigned long long)l->v[c]);
		}
	}
}

char *metrics_render(const struct metrics_snapshot *s)
{
	struct text t = {.cap = 4096};

	t.s = malloc(t.cap);
	if (t.s == NULL)
		return NULL;
	render_build(&t, &s->build);
	render_process(&t, &s->proc);
	family(&t, "echod_workers", "gauge", "Worker processes running.");
	put(&t, "echod_workers %u\n", s->live_workers);
	render_counters(&t, s);
	render_listeners(&t, s);
	if (t.failed) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

/* ---- /proc ---- */

int metrics_parse_stat(const char *text, uint64_t *ticks, uint64_t *child_ticks)
{
	const char *rp = strrchr(text, ')'); /* the name may hold spaces and parentheses */
	unsigned long long ut, st;
	long long cut, cst;

	if (rp == NULL ||
	    sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &ut,
		   &st, &cut, &cst) != 4 ||
	    cut < 0 || cst < 0)
		return -EINVAL;
	*ticks = ut + st;
	*child_ticks = (uint64_t)cut + (uint64_t)cst;
	return 0;
}

int metrics_parse_statm(const char *text, uint64_t *pages)
{
	unsigned long long size, res;

	if (sscanf(text, "%llu %llu", &size, &res) != 2)
		return -EINVAL;
	*pages = res;
	return 0;
}
