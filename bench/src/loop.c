/*
 * loop: one epoll event loop driving a slice of the connection slots.
 *
 * Every slot carries one byte stream at a time: send_off bytes written, recv_off
 * bytes echoed and verified, limit the point the mode currently allows sending
 * up to. Modes differ only in how they move limit and what ends a stream.
 * Timeouts, (re)connects and phase changes are handled by a housekeeping pass
 * every few milliseconds rather than with per-connection timers. Before any of
 * that, the loaded modes open every connection (open.c).
 */
#include "loop.h"
#include "net.h"
#include "pattern.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define IO_BUF		(64 * 1024)
#define MAX_EVENTS	256
#define READS_PER_EVENT 8
#define SEND_BUDGET	16 /* send mode: sends per connection per turn */
#define MAX_CONNECTING	256
/*
 * Slots connecting, or connected but not yet answered, per thread, once traffic
 * runs (idle mode's opening, and reconnects after an error). A connect completes on
 * the client before the server accept()s, so a burst of hundreds of connects against
 * a small listen backlog (socat's is 5) gets handshakes dropped, and those
 * connections then sit in retransmission backoff for seconds. So connections open a
 * few at a time, the next one as soon as one is answered. Releasing slots on a timer
 * instead, or growing the window like TCP slow start, overflowed socat's backlog
 * again (it forks and execs a cat per connection). The open phase of the loaded
 * modes needs no answer and retries instead (open.c): waiting for answers while
 * other connections already streamed starved the opening.
 */
#define MAX_RAMPING 4
/* A thread whose connections are all open looks this often for the others' to be. */
#define GO_POLL_NS   (1000000ULL)
#define HOUSEKEEP_NS (10ULL * 1000000ULL)
#define RETRY_NS     (100ULL * 1000000ULL) /* after an error, so a dead server is not hammered */
#define GEN_BITS     24

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Single writer per counter: a plain load and store is enough and avoids a locked add. */
void loop_stat_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

/* Idle has no rate to protect from warmup: its bytes always count. */
static bool counting_bytes(const struct worker *w)
{
	return w->measuring || w->a->mode == MODE_IDLE;
}

/* Work the connection still waits on: bytes to send, echoes to come back; a receive-only
 * connection always waits for more. */
static bool outstanding(const struct worker *w, const struct conn *c)
{
	if (w->a->mode == MODE_SEND)
		return c->send_off < c->limit;
	if (w->a->mode == MODE_RECV)
		return true;
	return c->send_off < c->limit || c->recv_off < c->send_off;
}

void loop_set_events(struct worker *w, struct conn *c, uint32_t ev)
{
	struct epoll_event e;

	if (ev == c->events)
		return;
	e.events = ev;
	e.data.u64 = ((uint64_t)(c - w->conns) << GEN_BITS) | (c->gen & ((1u << GEN_BITS) - 1));
	if (epoll_ctl(w->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) == 0)
		c->events = ev;
}

static void update_events(struct worker *w, struct conn *c)
{
	loop_set_events(w, c, EPOLLIN | (c->send_off < c->limit ? EPOLLOUT : 0));
}

void loop_want_pump(struct worker *w, uint64_t at)
{
	if (at < w->next_pump)
		w->next_pump = at;
}

static void leave_ramp(struct worker *w, struct conn *c, bool answered)
{
	if (!c->in_ramp)
		return;
	c->in_ramp = false;
	w->ramping--;
	c->ramped = answered;
}

/*
 * The one place a connection's open count goes up (count_open(w, 1) where it becomes
 * C_OPEN) has its one place to go down: loop_close. While the window runs, each
 * change also moves this thread's low and high marks.
 */
static void count_open(struct worker *w, int delta)
{
	uint64_t v = atomic_load_explicit(&w->st->open_now, memory_order_relaxed);

	v = delta > 0 ? v + 1 : v - 1;
	atomic_store_explicit(&w->st->open_now, v, memory_order_relaxed);
	if (!w->measuring)
		return;
	if (v < w->st->win_min)
		w->st->win_min = v;
	if (v > w->st->win_max)
		w->st->win_max = v;
}

void loop_close(struct worker *w, struct conn *c)
{
	leave_ramp(w, c, false);
	if (c->fd < 0)
		return;
	if (c->state == C_CONNECTING)
		w->connecting--;
	if (c->state == C_OPEN || c->state == C_SHUT)
		count_open(w, -1);
	close(c->fd);
	c->fd = -1;
	c->events = 0;
	c->whole = false;
}

void loop_finish(struct worker *w, struct conn *c, enum conn_state final)
{
	loop_close(w, c);
	c->state = (uint8_t) final;
	w->live--;
}

/* Idle connections are a census, not a load: one that fails stays failed. */
static void fail_conn(struct worker *w, struct conn *c, enum err_kind kind)
{
	loop_stat_add(&w->st->errors[kind], 1);
	if (w->a->mode == MODE_IDLE && c->phase == IDLE_FIRST)
		loop_stat_add(&w->st->open_failed, 1);
	if (w->a->mode == MODE_IDLE || w->stopping) {
		loop_finish(w, c, C_DEAD);
		return;
	}
	loop_close(w, c);
	c->state = C_CLOSED;
	c->ramped = false;
	c->retry_at = w->now + RETRY_NS;
	loop_want_pump(w, c->retry_at);
}

/* Completions always show on the progress line, but count only inside the window. */
static void completed(struct worker *w, const struct conn *c, uint64_t n, uint64_t fair_units)
{
	loop_stat_add(&w->st->live_msgs, n);
	if (!w->measuring)
		return;
	loop_stat_add(&w->st->msgs, n);
	w->sh->conn_count[c->idx] += fair_units;
}

static bool do_write(struct worker *w, struct conn *c)
{
	/* Send mode has no end to reach: a fast sink would keep this loop forever. The
	 * EPOLLOUT interest stays (level-triggered), so the rest goes next turn. */
	int budget = w->a->mode == MODE_SEND ? SEND_BUDGET : -1;

	while (c->send_off < c->limit && budget-- != 0) {
		uint64_t left = c->limit - c->send_off;
		size_t n = left < IO_BUF ? (size_t)left : IO_BUF;
		ssize_t r;

		pattern_fill(c->seed, c->send_off, w->tx, n);
		r = send(c->fd, w->tx, n, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			fail_conn(w, c, ERR_RESET);
			return false;
		}
		c->send_off += (uint64_t)r;
		c->last_progress = w->now;
		if (counting_bytes(w))
			loop_stat_add(&w->st->tx_bytes, (uint64_t)r);
		if (w->a->mode == MODE_SEND)
			leave_ramp(w, c, true); /* a sink's taking bytes is its only answer */
		if (w->a->mode == MODE_SEND)
			completed(w, c,
				  c->send_off / w->a->size -
				      (c->send_off - (uint64_t)r) / w->a->size,
				  (uint64_t)r);
		if ((size_t)r < n)
			break;
	}
	/* Churn: the half-close is the request's end; the server's EOF answers it. */
	if (w->a->mode == MODE_CHURN && c->state == C_OPEN && c->send_off == c->limit) {
		shutdown(c->fd, SHUT_WR);
		c->state = C_SHUT;
	}
	update_events(w, c);
	return true;
}

/* The mode's first move on a connection just opened (or, after the open phase, parked). */
void loop_start_traffic(struct worker *w, struct conn *c)
{
	const struct bench_args *a = w->a;

	c->last_progress = w->now;
	switch (a->mode) {
	case MODE_PINGPONG:
		for (unsigned i = 0; i < a->depth; i++)
			c->ts[i] = w->now;
		c->limit = (uint64_t)a->depth * a->size;
		break;
	case MODE_STREAM:
		c->limit = w->plan->stream_window;
		break;
	case MODE_SEND:
		c->limit = UINT64_MAX; /* as fast as the server reads */
		break;
	case MODE_RECV:
		c->limit = 0; /* nothing is sent; the server's bytes are awaited */
		update_events(w, c);
		return;
	default:
		c->limit = a->size;
		break;
	}
	do_write(w, c);
}

static void on_connected(struct worker *w, struct conn *c)
{
	c->state = C_OPEN;
	c->last_progress = w->now;
	count_open(w, 1);
	if (w->stopping && w->a->mode != MODE_IDLE) {
		loop_finish(w, c, C_DONE);
		return;
	}
	if (w->opening) {
		open_parked(w, c);
		return;
	}
	loop_start_traffic(w, c);
}

static void start_connect(struct worker *w, struct conn *c)
{
	int fd = -1, inprog, rc;

	c->gen++;
	c->seed = pattern_seed(c->idx, c->gen);
	c->send_off = c->recv_off = c->limit = c->done_msgs = 0;
	c->phase = IDLE_FIRST;
	c->started = c->last_progress = w->now;
	if (!c->ramped && !w->opening) {
		c->in_ramp = true;
		w->ramping++;
	}
	rc = net_connect((const struct sockaddr *)&w->plan->addr, w->plan->addrlen, &fd, &inprog);
	if (rc < 0) {
		c->state = C_CLOSED;
		if (w->opening)
			open_retry(w, c, -rc);
		else
			fail_conn(w, c, ERR_CONNECT);
		return;
	}
	c->fd = fd;
	c->events = 0;
	if (inprog) {
		c->state = C_CONNECTING;
		w->connecting++;
		loop_set_events(w, c, EPOLLOUT);
		return;
	}
	on_connected(w, c);
}

static void finish_connect(struct worker *w, struct conn *c)
{
	int err = net_socket_error(c->fd);

	if (err != 0 && w->opening) {
		open_retry(w, c, err);
		return;
	}
	if (err != 0) {
		fail_conn(w, c, ERR_CONNECT);
		return;
	}
	w->connecting--;
	on_connected(w, c);
}

static bool pingpong_data(struct worker *w, struct conn *c)
{
	const struct bench_args *a = w->a;

	while (c->recv_off >= (c->done_msgs + 1) * a->size) {
		uint64_t queued_at = c->ts[c->done_msgs % a->depth];

		c->done_msgs++;
		if (w->measuring)
			hist_record(&w->st->lat, w->now - queued_at);
		completed(w, c, 1, 1);
		if (!w->stopping) {
			c->ts[(c->done_msgs + a->depth - 1) % a->depth] = w->now;
			c->limit += a->size;
		}
	}
	if (w->stopping && !outstanding(w, c)) {
		loop_finish(w, c, C_DONE);
		return false;
	}
	return do_write(w, c);
}

static bool stream_data(struct worker *w, struct conn *c, uint64_t before)
{
	completed(w, c, c->recv_off / w->a->size - before / w->a->size, c->recv_off - before);
	if (!w->stopping) {
		c->limit = c->recv_off + w->plan->stream_window;
		return do_write(w, c);
	}
	if (!outstanding(w, c)) {
		loop_finish(w, c, C_DONE);
		return false;
	}
	return true;
}

static bool start_final(struct worker *w, struct conn *c)
{
	c->phase = IDLE_FINAL;
	c->limit += w->a->size;
	c->last_progress = w->now;
	return do_write(w, c);
}

static bool idle_data(struct worker *w, struct conn *c)
{
	if (c->recv_off < c->limit)
		return true;
	loop_stat_add(&w->st->live_msgs, 1);
	loop_stat_add(&w->st->msgs, 1);
	if (c->phase == IDLE_FIRST) {
		loop_stat_add(&w->st->held, 1);
		c->phase = IDLE_HOLD;
		return w->stopping ? start_final(w, c) : true;
	}
	loop_stat_add(&w->st->verified, 1);
	loop_finish(w, c, C_DONE);
	return false;
}

/* n verified bytes came in on c. */
static void took_bytes(struct worker *w, struct conn *c, size_t n)
{
	c->recv_off += n;
	c->last_progress = w->now;
	leave_ramp(w, c, true);
	loop_stat_add(&w->st->live_rx, n);
	if (counting_bytes(w))
		loop_stat_add(&w->st->rx_bytes, n);
}

/* recv: every byte must be the chargen stream's next one. */
static bool recv_data(struct worker *w, struct conn *c, size_t n)
{
	uint64_t before = c->recv_off;

	if (chargen_check(c->recv_off, w->rx, n) != n) {
		fail_conn(w, c, ERR_MISMATCH);
		return false;
	}
	took_bytes(w, c, n);
	completed(w, c, c->recv_off / w->a->size - before / w->a->size, n);
	if (w->stopping) {
		loop_finish(w, c, C_DONE);
		return false;
	}
	return true;
}

static bool on_data(struct worker *w, struct conn *c, size_t n)
{
	uint64_t before = c->recv_off;

	if (w->a->mode == MODE_RECV)
		return recv_data(w, c, n);
	/* More echo than was sent cannot be an echo at all (and send mode expects none). */
	if (w->a->mode == MODE_SEND || n > c->send_off - c->recv_off ||
	    pattern_check(c->seed, c->recv_off, w->rx, n) != n) {
		fail_conn(w, c, ERR_MISMATCH);
		return false;
	}
	took_bytes(w, c, n);
	switch (w->a->mode) {
	case MODE_PINGPONG:
		return pingpong_data(w, c);
	case MODE_STREAM:
		return stream_data(w, c, before);
	case MODE_IDLE:
		return idle_data(w, c);
	default:
		return true;
	}
}

static void churn_cycle_done(struct worker *w, struct conn *c)
{
	if (w->measuring)
		hist_record(&w->st->lat, w->now - c->started);
	completed(w, c, 1, 1);
	loop_close(w, c);
	if (w->stopping) {
		loop_finish(w, c, C_DONE);
	} else if (w->connecting < MAX_CONNECTING) {
		start_connect(w, c);
	} else {
		c->state = C_CLOSED;
		c->retry_at = 0;
		loop_want_pump(w, 0);
	}
}

static void on_eof(struct worker *w, struct conn *c)
{
	if (w->a->mode == MODE_CHURN && c->state == C_SHUT && c->recv_off == c->limit)
		churn_cycle_done(w, c);
	else
		fail_conn(w, c, ERR_SHORT);
}

static bool do_read(struct worker *w, struct conn *c)
{
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t r = recv(c->fd, w->rx, IO_BUF, 0);

		if (r > 0) {
			/* The echo of what this very loop sent may already be here. */
			w->now = now_ns();
			if (!on_data(w, c, (size_t)r))
				return false;
			continue;
		}
		if (r == 0) {
			on_eof(w, c);
			return false;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return true;
		fail_conn(w, c, ERR_RESET);
		return false;
	}
	return true;
}

static void on_event(struct worker *w, const struct epoll_event *ev)
{
	struct conn *c = &w->conns[ev->data.u64 >> GEN_BITS];
	uint32_t gen = (uint32_t)(ev->data.u64 & ((1u << GEN_BITS) - 1));

	/* An event queued for a socket that was closed (and maybe replaced) in this batch. */
	if (c->fd < 0 || gen != (c->gen & ((1u << GEN_BITS) - 1)))
		return;
	w->now = now_ns();
	if (c->state == C_CONNECTING) {
		finish_connect(w, c);
		return;
	}
	/* A parked connection listens for nothing but its end: the server closed it. */
	if (w->opening) {
		int err = net_socket_error(c->fd);

		open_retry(w, c, err ? err : ECONNRESET);
		return;
	}
	if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		if (!do_read(w, c))
			return;
	}
	if ((ev->events & EPOLLOUT) && c->state == C_OPEN)
		do_write(w, c);
}

static void check_conn(struct worker *w, struct conn *c)
{
	uint64_t timeout = w->a->timeout_ns;

	switch (c->state) {
	case C_CONNECTING:
		if (w->now - c->started >= timeout)
			fail_conn(w, c, ERR_CONNECT);
		break;
	case C_OPEN:
	case C_SHUT:
		if ((c->state == C_SHUT || outstanding(w, c)) &&
		    w->now - c->last_progress >= timeout)
			fail_conn(w, c, ERR_TIMEOUT);
		break;
	default:
		break;
	}
}

static bool may_connect(const struct worker *w, const struct conn *c)
{
	if (w->opening)
		return w->connecting < w->open_cap;
	return w->connecting < MAX_CONNECTING && (c->ramped || w->ramping < MAX_RAMPING);
}

/* Starts the slots that may connect now, resuming where the last scan stopped. */
static void pump_connects(struct worker *w)
{
	if (w->stopping || w->now < w->next_pump)
		return;
	w->next_pump = UINT64_MAX;
	for (unsigned long k = 0; k < w->n; k++) {
		struct conn *c = &w->conns[w->cursor];

		if (c->state == C_CLOSED && c->retry_at > w->now) {
			loop_want_pump(w, c->retry_at);
		} else if (c->state == C_CLOSED) {
			if (!may_connect(w, c)) {
				loop_want_pump(w, 0);
				return;
			}
			start_connect(w, c);
		}
		w->cursor = (w->cursor + 1) % w->n;
	}
}

static uint64_t idle_resolved(const struct run_shared *sh)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < sh->nstats; i++)
		n += atomic_load_explicit(&sh->stats[i].held, memory_order_relaxed) +
		     atomic_load_explicit(&sh->stats[i].open_failed, memory_order_relaxed);
	return n;
}

/* Slots still opening when the hold begins (only after the open deadline) have failed. */
static void begin_hold(struct worker *w, uint64_t hold_start)
{
	w->holding = true;
	w->t_measure = hold_start;
	w->t_stop = hold_start + w->a->duration_ns;
	for (unsigned long i = 0; i < w->n; i++) {
		struct conn *c = &w->conns[i];

		if (c->state == C_CLOSED || c->state == C_CONNECTING)
			fail_conn(w, c, ERR_CONNECT);
		else if (c->state == C_OPEN && c->phase == IDLE_FIRST)
			fail_conn(w, c, ERR_TIMEOUT);
	}
}

/* The first worker, in any process, to see every slot resolved starts everyone's hold. */
static void idle_check_open(struct worker *w)
{
	uint64_t hold_start = atomic_load(&w->sh->hold_start);

	if (hold_start == 0 &&
	    (w->now >= w->plan->t_open_deadline || idle_resolved(w->sh) >= w->a->conns)) {
		uint64_t expected = 0;

		hold_start = w->now;
		if (!atomic_compare_exchange_strong(&w->sh->hold_start, &expected, hold_start))
			hold_start = expected;
	}
	if (hold_start != 0)
		begin_hold(w, hold_start);
}

static void housekeeping(struct worker *w)
{
	if (w->opening)
		open_housekeeping(w);
	for (unsigned long i = 0; i < w->n && !w->opening; i++)
		check_conn(w, &w->conns[i]);
	if (w->a->mode == MODE_IDLE && !w->holding && !w->stopping)
		idle_check_open(w);
	w->next_hk = w->now + HOUSEKEEP_NS;
}

/* At the end of the window: no new work, but what is in flight must still come back. */
static void stop_conn(struct worker *w, struct conn *c)
{
	enum bench_mode mode = w->a->mode;

	if (c->state == C_CLOSED) {
		if (mode == MODE_IDLE)
			fail_conn(w, c, ERR_CONNECT);
		else
			loop_finish(w, c, C_DONE);
	} else if (c->state == C_CONNECTING) {
		if (mode != MODE_IDLE)
			loop_finish(w, c, C_DONE);
	} else if (c->state == C_OPEN || c->state == C_SHUT) {
		if (mode == MODE_STREAM)
			c->limit = c->send_off;
		if (mode == MODE_SEND || mode == MODE_RECV)
			loop_finish(w, c, C_DONE); /* nothing comes back to wait for */
		else if (mode == MODE_IDLE && c->phase == IDLE_HOLD)
			start_final(w, c);
		else if ((mode == MODE_PINGPONG || mode == MODE_STREAM) && !outstanding(w, c))
			loop_finish(w, c, C_DONE);
		else if (mode == MODE_STREAM)
			update_events(w, c);
	}
}

/* The window begins: the connections open now are the ones it may judge for fairness. */
static void begin_window(struct worker *w)
{
	uint64_t open = atomic_load_explicit(&w->st->open_now, memory_order_relaxed);

	w->measuring = true;
	w->st->win_min = w->st->win_max = open;
	w->st->win_seen = true;
	for (unsigned long i = 0; i < w->n; i++) {
		struct conn *c = &w->conns[i];

		c->whole = c->state == C_OPEN || c->state == C_SHUT;
	}
}

static void begin_stop(struct worker *w)
{
	uint64_t t_stop = w->t_stop;

	w->stopping = true;
	w->measuring = false;
	w->st->measure_end_ns = w->now < t_stop ? w->now : t_stop;
	w->drain_end = w->now + w->a->timeout_ns + DRAIN_GRACE_NS;
	for (unsigned long i = 0; i < w->n; i++)
		w->sh->conn_whole[w->conns[i].idx] = w->conns[i].whole;
	if (w->opening) {
		open_abort(w);
		return;
	}
	for (unsigned long i = 0; i < w->n; i++)
		stop_conn(w, &w->conns[i]);
}

static void update_phase(struct worker *w)
{
	if (w->stopping)
		return;
	if (w->now >= w->t_stop || atomic_load(&w->sh->interrupted)) {
		begin_stop(w);
		return;
	}
	if (!w->measuring && w->now >= w->t_measure)
		begin_window(w);
}

static int wait_ms(const struct worker *w)
{
	uint64_t next = w->next_hk;

	if (!w->stopping && !w->measuring && w->t_measure < next)
		next = w->t_measure;
	if (!w->stopping && w->t_stop < next)
		next = w->t_stop;
	/* A pump time already past means the caps are full: the next event frees them. */
	if (!w->stopping && w->next_pump > w->now && w->next_pump < next)
		next = w->next_pump;
	if (w->opening && w->parked == w->n && w->now + GO_POLL_NS < next)
		next = w->now + GO_POLL_NS;
	if (next <= w->now)
		return 0;
	return (int)((next - w->now + 999999) / 1000000);
}

/* Whatever is still open once the drain deadline passed never made it back. */
static void abandon_rest(struct worker *w)
{
	for (unsigned long i = 0; i < w->n; i++) {
		struct conn *c = &w->conns[i];

		if (c->state == C_DONE || c->state == C_DEAD)
			continue;
		loop_stat_add(&w->st->errors[c->state == C_CONNECTING ? ERR_CONNECT : ERR_TIMEOUT],
			      1);
		loop_finish(w, c, C_DEAD);
	}
}

static void pin_thread(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		fprintf(stderr, "echo-bench: cannot pin a thread to CPU %d: %s\n", cpu,
			strerror(errno));
}

static int worker_setup(struct worker *w, const struct worker_spec *spec)
{
	const struct bench_args *a = spec->plan->args;

	memset(w, 0, sizeof(*w));
	w->plan = spec->plan;
	w->a = a;
	w->st = spec->stats;
	w->sh = spec->shared;
	w->n = spec->count;
	w->live = spec->count;
	w->t_measure = UINT64_MAX;
	w->t_stop = UINT64_MAX;
	open_init(w);
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->conns = calloc(w->n ? w->n : 1, sizeof(*w->conns));
	w->tx = malloc(IO_BUF);
	w->rx = malloc(IO_BUF);
	if (a->mode == MODE_PINGPONG)
		w->ts_pool = calloc(w->n * a->depth + 1, sizeof(uint64_t));
	for (unsigned long i = 0; w->conns && i < w->n; i++) {
		w->conns[i].fd = -1;
		w->conns[i].idx = spec->first + i;
		w->conns[i].state = C_CLOSED;
		if (w->ts_pool)
			w->conns[i].ts = w->ts_pool + i * a->depth;
	}
	if (w->ep < 0 || !w->conns || !w->tx || !w->rx || (a->mode == MODE_PINGPONG && !w->ts_pool))
		return -1;
	return 0;
}

static void worker_teardown(struct worker *w)
{
	for (unsigned long i = 0; w->conns && i < w->n; i++)
		loop_close(w, &w->conns[i]);
	if (w->ep >= 0)
		close(w->ep);
	free(w->conns);
	free(w->ts_pool);
	free(w->tx);
	free(w->rx);
}

static void worker_loop(struct worker *w)
{
	struct epoll_event evs[MAX_EVENTS];

	for (;;) {
		w->now = now_ns();
		if (w->opening)
			open_check_go(w);
		update_phase(w);
		if (w->now >= w->next_hk)
			housekeeping(w);
		pump_connects(w);
		if (w->stopping && (w->live == 0 || w->now >= w->drain_end))
			break;
		int n = epoll_wait(w->ep, evs, MAX_EVENTS, wait_ms(w));
		for (int i = 0; i < n; i++)
			on_event(w, &evs[i]);
	}
	abandon_rest(w);
	w->st->loop_end_ns = now_ns();
}

int worker_run(const struct worker_spec *spec)
{
	struct worker w;
	int rc = 0;

	pin_thread(spec->cpu);
	if (worker_setup(&w, spec) < 0) {
		fprintf(stderr, "echo-bench: worker setup failed: %s\n", strerror(errno));
		atomic_store(&spec->stats->fatal, 1);
		rc = -1;
	} else {
		worker_loop(&w);
	}
	worker_teardown(&w);
	atomic_store(&spec->stats->done, 1);
	return rc;
}
