/*
 * worker: one process of the pool. Sets its name, blocks its signals into a
 * signalfd, then runs one backend until it has drained.
 */
#ifndef ECHOD_WORKER_H
#define ECHOD_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "echod/config.h"
#include "echod/limits.h"
#include "echod/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A worker's loop turns at least this often, writing its heartbeat. */
#define WORKER_HEARTBEAT_MS 1000

/* First int of whatever a backend keeps in its event data. */
enum { EV_CONN = 1, EV_LISTENER, EV_SIGNAL, EV_UDP, EV_UDP_SEND, EV_SVC };

struct worker {
	const struct config *cfg;
	enum backend_kind backend;   /* resolved: epoll or io_uring */
	unsigned index;              /* listener slot: "echod: worker N" */
	struct stats_slot *stats;
	struct limits limits;
	int *listen_fds;
	const struct listen_spec *listen_specs; /* per listener: protocol and service */
	unsigned nlisten;
	int shared_listeners;        /* sockets shared by all workers: EPOLLEXCLUSIVE */
	int sigfd;                   /* TERM/INT: drain */
	pid_t supervisor;            /* exit when it is gone */
	const char *banner;          /* "TEXT\r\n", or NULL */
	size_t banner_len;
};

/* Runs in the child after fork; returns the process's exit status. */
int worker_main(struct worker *w);
/* The backend accepts now: the supervisor may say READY. */
void worker_ready(struct worker *w);
/* 1 when admission needs the peer's address: an access list or a per-address limit
 * is set. Otherwise the backends may skip getpeername(). */
int worker_wants_peer(const struct worker *w);
/* A new connection on listener index `listener` (listen_fds order): checks the access
 * lists and the limits, sets it up and sends the banner. Returns 0, or -1 when it was
 * refused (closed at once, before any byte, and counted). peer may be NULL only when
 * worker_wants_peer() is 0. */
int worker_admit(struct worker *w, int fd, unsigned listener, const struct sockaddr *peer,
		 struct limits_ticket *ticket);
/* The same without the banner: the connections of the services other than echo. */
int worker_admit_plain(struct worker *w, int fd, unsigned listener, const struct sockaddr *peer,
		       struct limits_ticket *ticket);
/* An admitted connection the backend has no memory for: gives back, counts, closes. */
void worker_refuse_nomem(struct worker *w, int fd, struct limits_ticket *ticket);
/* Reads the signalfd; returns 1 when the worker must drain and stop. */
int worker_signal(struct worker *w);

/* The backends. Each returns 0 once drained, or an exit status. */
int loop_epoll_run(struct worker *w);
int loop_uring_run(struct worker *w);
/* 0 when io_uring can run here, else -errno with the reason in why. */
int loop_uring_probe(char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif
