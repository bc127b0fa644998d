/*
 * metrics: Prometheus text format on /metrics, served by the supervisor from the
 * summed per-worker counters. Off unless --metrics is given or systemd passes a
 * socket named "metrics" (FileDescriptorName=metrics, see echod-metrics.socket);
 * loopback unless an address is given.
 *
 * The responder is HTTP/1.0, one request per connection. A scrape slot cannot be
 * held by a peer that sends nothing, garbage or half a request: a request must be
 * complete within METRICS_REQUEST_MS and METRICS_REQUEST_MAX bytes, garbage is
 * answered 400 as soon as it is seen, and when every slot is taken a new connection
 * evicts the oldest one still sending its request.
 *
 * metrics_text.c holds the pure parts (request routing, the text format, /proc
 * parsing) that the unit tests drive; metrics.c the sockets.
 */
#ifndef ECHOD_METRICS_H
#define ECHOD_METRICS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "echod/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

#define METRICS_CLIENTS     16
#define METRICS_LISTENERS   4     /* listening sockets: own, or named "metrics" by systemd */
#define METRICS_REQUEST_MAX 2048  /* request line and headers */
#define METRICS_REQUEST_MS  3000  /* from accept to the end of the headers */
#define METRICS_SEND_MS     10000 /* from then to the last byte of the answer */

/* ---- pure: metrics_text.c ---- */

/* What to answer the bytes received so far: 0 while the request may still be
 * valid and is incomplete, else the status (200, 400, 404, 405). *head is 1 for a
 * HEAD request (headers only). Garbage is 400 as soon as it is seen; a buffer of
 * METRICS_REQUEST_MAX - 1 bytes without the end of the headers is 400 too. */
int metrics_route(const char *in, size_t len, int *head);

/* The whole answer (status line, headers, body unless head) for status with body
 * (NULL: the short text of the status). Returns a malloc'd buffer and its length
 * in *len, NULL when out of memory. */
char *metrics_http_answer(int status, const char *body, int head, size_t *len);

/* A label value in the text format: backslash, double quote and newline escaped. */
void metrics_escape(const char *in, char *out, size_t outlen);

/* Resource use of the supervisor and its workers together (the process_* series). */
struct metrics_process {
	double cpu_seconds;          /* user + system, including reaped workers */
	uint64_t rss_bytes;          /* sum of the processes' resident sets */
	long open_fds;               /* sum of their descriptors, -1: not readable */
	long max_fds;                /* the supervisor's soft RLIMIT_NOFILE, -1: unknown */
	double start_time;           /* unix time the supervisor started */
};

struct metrics_build {
	const char *version, *backend, *sd, *seccomp;
};

/* One listener's counters, summed over the workers (the listener label). */
struct metrics_listener {
	char name[80];               /* "tcp 127.0.0.1:7"; the last row may be "other" */
	const char *service;         /* "echo", ...; "" for "other" */
	int udp;                     /* datagrams: udp_in/udp_out, no accepted */
	uint64_t v[LSTAT_COUNT];
};

/* Everything a scrape shows. per_worker[w][c] for w < nworkers (listener slots). */
struct metrics_snapshot {
	const uint64_t (*per_worker)[STAT_COUNT];
	unsigned nworkers;
	const struct metrics_listener *listeners;
	unsigned nlisteners;
	unsigned live_workers;
	struct metrics_build build;
	struct metrics_process proc;
};

/* The body in the text format, version 0.0.4. Returns a malloc'd string or NULL. */
char *metrics_render(const struct metrics_snapshot *s);

/* /proc/PID/stat text: utime + stime, and cutime + cstime (the children it has
 * reaped), in clock ticks. 0 or -EINVAL. */
int metrics_parse_stat(const char *text, uint64_t *ticks, uint64_t *child_ticks);
/* /proc/PID/statm text: resident pages. 0 or -EINVAL. */
int metrics_parse_statm(const char *text, uint64_t *pages);

/* ---- the server: metrics.c ---- */

struct metrics_client {
	int fd;                      /* -1: free */
	uint64_t accepted;           /* ms: the oldest incomplete request is evicted first */
	uint64_t deadline;           /* ms */
	size_t in_len;
	char in[METRICS_REQUEST_MAX];
	char *out;                   /* the answer, once the request is read */
	size_t out_len, out_off;
};

struct metrics_server {
	int fds[METRICS_LISTENERS];  /* listening sockets */
	unsigned nfds;
	int passed;                  /* the sockets came from systemd */
	char names[METRICS_LISTENERS][80]; /* their addresses: "127.0.0.1:9100" */
	struct metrics_client clients[METRICS_CLIENTS];
};

/* Off: no socket, no clients. */
void metrics_init(struct metrics_server *m);
/* spec: [HOST]:PORT or PORT; an empty host means 127.0.0.1, "*" all interfaces.
 * Returns 0 or, as listen_open_all, LISTEN_ERR_USAGE / LISTEN_ERR_SYSTEM with why. */
int metrics_open(struct metrics_server *m, const char *spec, int backlog, char *why,
		 size_t whylen);
/* Takes a listening stream socket systemd passed (named "metrics"). Returns 0, or
 * -1 with why (not a stream socket, too many). */
int metrics_adopt(struct metrics_server *m, int fd, int type, char *why, size_t whylen);
/* 1 when this network namespace has no interface but loopback, as under
 * PrivateNetwork=yes: a socket echod opens itself is reachable only from inside. */
int metrics_netns_isolated(void);
void metrics_close(struct metrics_server *m);
/* Adds the descriptors to poll to p (room for METRICS_LISTENERS + METRICS_CLIENTS);
 * returns how many. */
int metrics_pollfds(const struct metrics_server *m, struct pollfd *p);
/* Serves what poll reported and ends clients past their deadline; body() renders
 * the page when a complete request asks for it. */
void metrics_serve(struct metrics_server *m, const struct pollfd *p, int n, uint64_t now,
		   char *(*body)(void *arg), void *arg);

/* One process as /proc shows it. */
struct metrics_proc_sample {
	uint64_t ticks;              /* utime + stime */
	uint64_t child_ticks;        /* of the children it has reaped */
	uint64_t pages;              /* resident */
	long fds;                    /* open descriptors, -1 when /proc/PID/fd is not readable */
};

/* Reads /proc for pid (0: this process). 0 or -errno (stat or statm unreadable). */
int metrics_proc_read(pid_t pid, struct metrics_proc_sample *out);

#ifdef __cplusplus
}
#endif
#endif
