/*
 * worker: one process of the pool. Sets its name, blocks its signals into a
 * signalfd, then runs one backend until it has drained.
 */
#ifndef ECHOD_WORKER_H
#define ECHOD_WORKER_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "echod/config.h"
#include "echod/conn.h"
#include "echod/limits.h"
#include "echod/offload.h"
#include "echod/stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The supervisor's "stop now" to a worker (the second TERM/INT during a drain):
 * close every connection and exit. A real-time signal queues, so it cannot merge with
 * the TERM of the drain, and nobody sends it by mistake. TERM/INT themselves only
 * drain, however often they come: ^C reaches every process of the group. */
#define WORKER_STOP_SIGNAL (SIGRTMIN + 1)

/* What worker_signal saw. */
enum { WORKER_SIG_NONE, WORKER_SIG_DRAIN, WORKER_SIG_STOP };

/* A worker's loop turns at least this often, writing its heartbeat. */
#define WORKER_HEARTBEAT_MS 1000

/* First int of whatever a backend keeps in its event data. */
enum { EV_CONN = 1, EV_LISTENER, EV_SIGNAL, EV_UDP, EV_UDP_SEND, EV_SVC, EV_OFFLOAD };

struct worker {
	const struct config *cfg;
	enum backend_kind backend;   /* resolved: epoll or io_uring */
	unsigned index;              /* listener slot: "echod: worker N" */
	struct stats_slot *stats;
	struct limits limits;
	int *listen_fds;
	const struct listen_spec *listen_specs; /* per listener: protocol and service */
	const char *const *listen_names; /* per listener: "tcp [::]:7"; may be NULL */
	unsigned nlisten;
	int shared_listeners;        /* sockets shared by all workers: EPOLLEXCLUSIVE */
	int sigfd;                   /* TERM/INT: drain; WORKER_STOP_SIGNAL: stop now */
	pid_t supervisor;            /* exit when it is gone */
	const char *banner;          /* "TEXT\r\n", or NULL */
	size_t banner_len;
	int offload;                 /* --offload active: echo connections go to the kernel */
	const struct offload_maps *offload_maps; /* then: the supervisor's maps */
	uint32_t offload_base, offload_count; /* this worker's counter slots in them */
	uint32_t offload_ring;       /* and its wake-up ring */
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
/* The connection log (-v): conn_log_start, and "connection accepted: ..." at -vv. */
void worker_conn_open(struct worker *w, struct conn_log *l, const struct sockaddr *peer,
		      unsigned listener);
/* The connection log (-v): "connection closed: peer=... listener=... service=...
 * in=N out=N duration=S.sss reason=WHY". */
void worker_conn_closed(struct worker *w, const struct conn_log *l, const char *why);
/* An admitted connection the backend has no memory for: gives back, counts, closes. */
void worker_refuse_nomem(struct worker *w, int fd, struct limits_ticket *ticket);
/* Reads the signalfd: WORKER_SIG_DRAIN when the worker must drain and stop,
 * WORKER_SIG_STOP when it must close everything at once, else WORKER_SIG_NONE. */
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
