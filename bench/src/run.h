/* run: what the event-loop threads share with the process that reports on them. */
#ifndef ECHO_BENCH_RUN_H
#define ECHO_BENCH_RUN_H

#include "args.h"
#include "hist.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum err_kind { ERR_MISMATCH, ERR_RESET, ERR_TIMEOUT, ERR_SHORT, ERR_CONNECT, ERR_KINDS };

extern const char *const err_kind_names[ERR_KINDS];

/*
 * One per event-loop thread. Counters are atomics with a single writer so that the
 * progress line can read them live; they live in MAP_SHARED memory so that forked
 * idle-mode children report in place.
 */
struct thread_stats {
	_Atomic uint64_t msgs;	   /* messages, blocks, cycles or idle echoes completed */
	_Atomic uint64_t rx_bytes; /* verified echo bytes, inside the measured window */
	_Atomic uint64_t tx_bytes;
	_Atomic uint64_t live_msgs; /* as msgs and rx_bytes, but warmup and drain too: */
	_Atomic uint64_t live_rx;   /* for the progress line */
	_Atomic uint64_t errors[ERR_KINDS];
	_Atomic uint64_t held;	      /* idle: connections whose first echo verified */
	_Atomic uint64_t verified;    /* idle: connections whose final echo verified */
	_Atomic uint64_t open_failed; /* idle: slots that failed before their first echo */
	_Atomic uint64_t open_now;    /* connections open (connected, not yet closed) now */
	_Atomic uint64_t retries; /* open phase: connect attempts that failed and were retried */
	_Atomic int open_errno;	  /* open phase: why the latest attempt failed */
	_Atomic int done;
	_Atomic int fatal;
	uint64_t measure_end_ns; /* t_stop, or earlier after SIGINT */
	uint64_t loop_end_ns;	 /* the drain is over: every echo back, or given up */
	/* This thread's open_now over its measured window; win_seen once the window began. */
	uint64_t win_min, win_max;
	bool win_seen;
	struct hist lat; /* nanoseconds */
};

/*
 * Every mode opens all its connections before any measured time starts. Idle does it
 * its own way (each connection's first echo, then the hold); the loaded modes in an
 * open phase: connects bounded in number, failures retried with a backoff, and no
 * byte sent until every connection of every thread is open. The window then runs
 * from run_shared.go, so its times are known only once the opening is over.
 */
struct run_plan {
	const struct bench_args *args;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t t_start;	  /* CLOCK_MONOTONIC ns; shared by forked children */
	uint64_t t_open_deadline; /* connections not open by then: the run fails (idle: the slot) */
	uint64_t t_stop;	  /* the latest the measured window can end */
	uint64_t stream_window;
};

/* run_shared.go once the open phase gave up: not every connection opened in time. */
#define GO_FAILED UINT64_MAX

struct run_shared {
	_Atomic int interrupted;
	/*
	 * Loaded modes: 0 while connections open, then the time the last one opened
	 * (warmup, then the window, start there), or GO_FAILED. Set once, by a CAS.
	 */
	_Atomic uint64_t go;
	_Atomic uint64_t opened; /* loaded modes: connections open and waiting for go */
	/*
	 * Idle: set once every slot in every process is open (or failed), or at the open
	 * deadline; the hold is measured from here so that all connections overlap.
	 */
	_Atomic uint64_t hold_start;
	size_t len;
	unsigned nstats;
	struct thread_stats *stats;
	uint64_t *conn_count;	   /* per connection slot: msgs, bytes (stream) or cycles */
	unsigned char *conn_whole; /* per slot: its connection was open for the whole window */
};

struct worker_spec {
	const struct run_plan *plan;
	struct run_shared *shared;
	struct thread_stats *stats;
	unsigned long first; /* global index of the first connection slot */
	unsigned long count;
	int cpu; /* -1: not pinned */
};

/* Runs one event loop to the end of its drain; returns 0, or -1 on a setup failure. */
int worker_run(const struct worker_spec *w);

uint64_t now_ns(void);

/* When the measured window starts: go (or the hold's start) plus warmup; 0 if not yet. */
uint64_t run_window_start(const struct run_plan *plan, const struct run_shared *sh);

/* Grace after the drain timeout before a worker gives up on stragglers. */
#define DRAIN_GRACE_NS (250ULL * 1000000ULL)

/* Shared (MAP_SHARED) so that forked children write their figures where the parent reads. */
struct run_shared *run_shared_alloc(unsigned nstats, unsigned long conns);
void run_shared_free(struct run_shared *sh);

/* Event-loop threads over all processes: each process runs min(threads, its conns). */
unsigned run_stat_slots(const struct bench_args *a, unsigned nprocs);

/* Runs the workers to completion, with the progress line if asked; 0, or -1 after saying why. */
int run_bench(const struct run_plan *plan, struct run_shared *sh, unsigned nprocs, bool progress);

#endif
