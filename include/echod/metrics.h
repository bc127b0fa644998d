/*
 * metrics: Prometheus text format on /metrics, served by the supervisor from the
 * summed per-worker counters. Off unless --metrics is given; loopback unless an
 * address is. A handful of clients at a time, each bounded in time and size.
 */
#ifndef ECHOD_METRICS_H
#define ECHOD_METRICS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "echod/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

#define METRICS_CLIENTS 8

struct metrics_client {
	int fd;                      /* -1: free */
	uint64_t deadline;           /* ms */
	size_t in_len;
	char in[1024];
	char *out;                   /* the response, once the request is read */
	size_t out_len, out_off;
};

struct metrics_server {
	int fd;                      /* listening socket, -1 when off */
	char name[80];               /* "127.0.0.1:9100" */
	struct metrics_client clients[METRICS_CLIENTS];
};

/* The body: one family per counter, one sample per worker slot plus echod_workers.
 * Returns a malloc'd string. */
char *metrics_render(const uint64_t (*per_worker)[STAT_COUNT], unsigned nworkers,
		     unsigned live_workers);

/* Off: no socket, no clients. */
void metrics_init(struct metrics_server *m);
/* spec: [HOST]:PORT or PORT; an empty host means 127.0.0.1, "*" all interfaces.
 * Returns 0 or, as listen_open_all, LISTEN_ERR_USAGE / LISTEN_ERR_SYSTEM with why. */
int metrics_open(struct metrics_server *m, const char *spec, int backlog, char *why,
		 size_t whylen);
void metrics_close(struct metrics_server *m);
/* Adds the descriptors to poll to p; returns how many. */
int metrics_pollfds(const struct metrics_server *m, struct pollfd *p);
/* Serves what poll reported; body() renders the page when a request is complete. */
void metrics_serve(struct metrics_server *m, const struct pollfd *p, int n, uint64_t now,
		   char *(*body)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
