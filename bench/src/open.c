/*
 * open: the loaded modes' open phase. Every connection is opened before a byte is
 * sent on any of them, so that the measured window sees all of them from its start
 * and the opening is not starved by traffic (it once was: connections waited for an
 * answer from a server already busy streaming to the others, and most never opened).
 *
 * Connects are bounded in number (OPEN_INFLIGHT over all threads); one that fails
 * (refused, reset, no free port, the server closing it) or takes too long (a SYN
 * dropped by a full accept queue) is retried on a fresh socket after a short backoff,
 * as wrk reconnects. A connection that opened waits silent, listening only for its
 * end. The thread whose connection makes the count complete sets go; if the count is
 * not complete by --timeout, the first thread to see it sets GO_FAILED instead.
 */
#include "loop.h"

#include <errno.h>
#include <sys/epoll.h>

#define OPEN_INFLIGHT 128		    /* connects in flight at once, over all threads */
#define ATTEMPT_NS    (200ULL * 1000000ULL) /* a first attempt's limit; doubles, to 1.6 s */
#define ATTEMPT_MAX   3
#define BACKOFF_NS    (10ULL * 1000000ULL) /* the first retry's delay; doubles, to 160 ms */
#define BACKOFF_MAX   4

void open_init(struct worker *w)
{
	unsigned cap = OPEN_INFLIGHT / w->a->threads;

	w->opening = w->a->mode != MODE_IDLE;
	w->open_cap = cap ? cap : 1;
}

static uint64_t attempt_ns(const struct conn *c)
{
	return ATTEMPT_NS << (c->tries < ATTEMPT_MAX ? c->tries : ATTEMPT_MAX);
}

static uint64_t backoff_ns(const struct conn *c)
{
	unsigned k = c->tries > 0 ? c->tries - 1u : 0u;

	return BACKOFF_NS << (k < BACKOFF_MAX ? k : BACKOFF_MAX);
}

void open_retry(struct worker *w, struct conn *c, int err)
{
	if (c->state == C_OPEN) {
		w->parked--;
		atomic_fetch_sub(&w->sh->opened, 1);
	}
	loop_close(w, c);
	c->state = C_CLOSED;
	if (c->tries < UINT8_MAX)
		c->tries++;
	c->retry_at = w->now + backoff_ns(c);
	loop_want_pump(w, c->retry_at);
	loop_stat_add(&w->st->retries, 1);
	atomic_store_explicit(&w->st->open_errno, err, memory_order_relaxed);
}

void open_parked(struct worker *w, struct conn *c)
{
	uint64_t expected = 0;

	/* Not EPOLLIN: a server that talks first (chargen, a banner) must wait too. */
	loop_set_events(w, c, EPOLLRDHUP);
	w->parked++;
	if (atomic_fetch_add(&w->sh->opened, 1) + 1 == w->a->conns)
		atomic_compare_exchange_strong(&w->sh->go, &expected, w->now);
}

void open_housekeeping(struct worker *w)
{
	uint64_t expected = 0;

	if (w->now >= w->plan->t_open_deadline)
		atomic_compare_exchange_strong(&w->sh->go, &expected, GO_FAILED);
	for (unsigned long i = 0; i < w->n; i++) {
		struct conn *c = &w->conns[i];

		if (c->state == C_CONNECTING && w->now - c->started >= attempt_ns(c))
			open_retry(w, c, ETIMEDOUT);
	}
}

void open_abort(struct worker *w)
{
	w->opening = false;
	for (unsigned long i = 0; i < w->n; i++) {
		struct conn *c = &w->conns[i];

		if (c->state != C_DONE && c->state != C_DEAD)
			loop_finish(w, c, C_DONE);
	}
}

/* The window's times follow from go; churn's first cycle is timed from here, not from
 * its connect, which happened in the open phase. */
static void open_start(struct worker *w, uint64_t go)
{
	w->opening = false;
	w->t_measure = go + w->a->warmup_ns;
	w->t_stop = w->t_measure + w->a->duration_ns;
	w->next_pump = 0;
	for (unsigned long i = 0; i < w->n; i++) {
		struct conn *c = &w->conns[i];

		c->tries = 0;
		c->ramped = true;
		if (c->state == C_OPEN) {
			c->started = w->now;
			loop_start_traffic(w, c);
		}
	}
}

void open_check_go(struct worker *w)
{
	uint64_t go = atomic_load(&w->sh->go);

	if (go == 0)
		return;
	if (go != GO_FAILED) {
		open_start(w, go);
		return;
	}
	w->stopping = true;
	w->drain_end = w->now;
	open_abort(w);
}
