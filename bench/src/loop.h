/*
 * loop: the event loop's connection slots and worker, shared by loop.c (traffic,
 * timeouts, phases) and open.c (the open phase before any traffic). Private to them.
 */
#ifndef ECHO_BENCH_LOOP_H
#define ECHO_BENCH_LOOP_H

#include "run.h"

#include <stdbool.h>
#include <stdint.h>

enum conn_state { C_CLOSED, C_CONNECTING, C_OPEN, C_SHUT, C_DONE, C_DEAD };
enum idle_phase { IDLE_FIRST, IDLE_HOLD, IDLE_FINAL };

struct conn {
	int fd;
	uint8_t state;
	uint8_t phase;
	uint8_t tries;	 /* open phase: this slot's failed attempts so far */
	uint32_t events; /* registered with epoll; 0 when not registered */
	uint32_t gen;	 /* bumps on each connect: tags epoll events to spot stale ones */
	bool ramped;	 /* this slot's server answered once: reconnects skip the ramp */
	bool in_ramp;	 /* counted in worker.ramping */
	bool whole;	 /* open, without a break, since the measured window began */
	unsigned long idx;
	uint64_t seed;
	uint64_t send_off, recv_off, limit;
	uint64_t done_msgs;
	uint64_t started; /* connect start: churn cycles are timed from here */
	uint64_t last_progress;
	uint64_t retry_at;
	uint64_t *ts; /* pingpong: queue time of message k at ts[k % depth] */
};

struct worker {
	const struct run_plan *plan;
	const struct bench_args *a;
	struct thread_stats *st;
	struct run_shared *sh;
	struct conn *conns;
	unsigned long n;
	uint64_t *ts_pool;
	unsigned char *tx, *rx;
	int ep;
	uint64_t now, next_hk, drain_end;
	uint64_t t_measure, t_stop; /* known once the open phase (idle: the open) is over */
	bool holding;		    /* idle: the open phase is over */
	bool opening;		    /* loaded modes: the open phase is not over */
	unsigned open_cap;	    /* open phase: connects in flight at most */
	unsigned long parked;	    /* open phase: this worker's connections open and waiting */
	unsigned long live;	    /* slots not yet DONE or DEAD */
	unsigned connecting;
	unsigned ramping;
	unsigned long cursor; /* where the next scan for slots to connect starts */
	uint64_t next_pump;   /* no slot is ready to connect before this time */
	bool measuring, stopping;
};

/* loop.c, for open.c */
void loop_set_events(struct worker *w, struct conn *c, uint32_t ev);
void loop_want_pump(struct worker *w, uint64_t at);
void loop_close(struct worker *w, struct conn *c);
void loop_finish(struct worker *w, struct conn *c, enum conn_state final);
void loop_start_traffic(struct worker *w, struct conn *c);
void loop_stat_add(_Atomic uint64_t *c, uint64_t v);

/* open.c */
void open_init(struct worker *w);
/* A connect failed (err: an errno value) or an open connection closed before go. */
void open_retry(struct worker *w, struct conn *c, int err);
/* c's connect completed during the open phase: it waits, silent, for go. */
void open_parked(struct worker *w, struct conn *c);
/* One pass of the open phase: connects' timeouts, the deadline, and go. */
void open_housekeeping(struct worker *w);
/* Once go is set, ends the phase: starts the traffic everywhere, or gives up. */
void open_check_go(struct worker *w);
/* Ends the phase with nothing measured (interrupted, or it gave up): closes every slot. */
void open_abort(struct worker *w);

#endif
