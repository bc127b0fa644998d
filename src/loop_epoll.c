/*
 * loop_epoll: the edge-triggered epoll backend.
 *
 * A connection is registered once, EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, and never
 * modified. Each edge only becomes a flag for the echo path (echo.c), which clears
 * it on EAGAIN, on a short read or a partial send, never otherwise, so no edge is
 * lost. That path reads, echoes from the same buffer, holds back what the kernel
 * refused and stops reading meanwhile, and puts a connection whose read budget ran
 * out on the ready list, served again after the batch.
 *
 * Listeners are level-triggered: an accept budget left unfinished is simply
 * reported again.
 *
 * --offload=sockmap: an admitted echo connection is put into the kernel's SOCKHASH
 * (offload.h) and from then on echoed by the kernel; it leaves the echo path
 * (CONN_OFFLOADED) and is registered EPOLLRDHUP|EPOLLET only (EPOLLERR and EPOLLHUP
 * come anyway): data never queues on it, so EPOLLIN would never fire. Nothing tells
 * user space when the kernel has sent what it owes, nor how much a peer that does not
 * read has made it hold, so the loop samples each offloaded socket's tcp_info on a
 * timer (ep_off_sweep): its byte counters give the counts, the idle time, the budget
 * check (a peer over --offload-budget is reset) and, once the peer's FIN came, the
 * moment everything owed went out and the socket may close.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h> /* struct tcp_info with the byte counters (glibc's lacks them) */
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echod/echo.h"
#include "echod/log.h"
#include "echod/offload.h"
#include "echod/service.h"
#include "echod/udp.h"
#include "echod/worker.h"

#define EP_EVENTS        512
#define EP_ACCEPT_BUDGET 64   /* accepts per listener per turn */
#define EP_ACCEPT_PAUSE  100  /* ms without accepting after EMFILE and kin */
#define EP_SPARE_BUFS    64
#define EP_SPARE_CONNS   256
/* Offload: the offloaded connections are looked at every EP_OFF_SWEEP_MS (see
 * ep_off_sweep), and tcp_info asked of each at least every EP_OFF_REFRESH sweeps. */
#define EP_OFF_SWEEP_MS       1
#define EP_OFF_IDLE_MS        10
#define EP_OFF_REFRESH        100
/* tcpi_state values (include/net/tcp_states.h; not in the uapi headers). */
#define EP_TCP_ESTABLISHED    1
#define EP_TCP_CLOSE          7
#define EP_TCP_CLOSE_WAIT     8

struct ep_listener {
	int kind;                   /* EV_LISTENER */
	int fd;
	enum listen_service service; /* not echo: the connection is service.c's */
};

struct epoll_loop {
	struct worker *w;
	int epfd;
	int sig_kind;               /* EV_SIGNAL: the signalfd's event data */
	struct ep_listener *listeners;
	unsigned nlisten;
	struct echo_ctx echo;       /* the TCP connections */
	uint64_t now;
	uint64_t accept_resume;     /* ms; 0 while accepting */
	int draining;
	uint64_t drain_deadline;
	int connlog;                /* -v: a line per closed connection */
	struct udp_worker udp;      /* UDP listeners: see ep_udp_setup */
	struct udp_sock *udps;
	unsigned nudp;
	struct svc_set svc;         /* TCP connections of the other services */
	const struct offload_maps *om; /* --offload: the kernel's maps; NULL: off */
	uint32_t *free_slots;       /* this worker's free counter slots */
	uint32_t nfree;
	struct ep_slot {            /* per slot of this worker's (slot - offload_base) */
		uint64_t cookie;        /* its socket's */
		struct conn *c;         /* NULL: free */
		/* The program's counts where the current window began, and the window
		 * before it (offload_owed_segs): what the budget charges per segment. */
		struct offload_window start, prev;
	} *slots;
	uint32_t slot_base;
	int ring_kind;              /* EV_OFFLOAD: the ring's event data */
	struct offload_ring *ring;  /* the program's wake-ups: slots to look at now */
	uint64_t next_sweep;        /* ms: the next look at the offloaded connections; 0: none */
	uint64_t sweeps;
};

static void ep_stat(struct epoll_loop *lp, enum stats_counter c, uint64_t n)
{
	stats_add(lp->w->stats, c, n);
}

static void ep_off_event(struct epoll_loop *lp, struct conn *c, uint32_t ev);

static void conn_event(struct epoll_loop *lp, struct conn *c, uint32_t ev)
{
	uint32_t flags = 0;

	if (c->state == CONN_OFFLOADED) {
		ep_off_event(lp, c, ev);
		return;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		flags |= CONN_READABLE;
	if (ev & EPOLLRDHUP)
		flags |= CONN_RDHUP;
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		flags |= CONN_WRITABLE;
	echo_event(&lp->echo, c, flags);
}

/* The -v connection log of an echo connection. */
static void ep_conn_closed(void *arg, const struct conn *c, enum conn_close_reason why)
{
	worker_conn_closed(arg, &c->log, conn_reason_name(why));
}

/* ---- offload (--offload=sockmap) ---- */

static struct ep_slot *ep_slot(struct epoll_loop *lp, const struct conn *c)
{
	return &lp->slots[c->oslot - lp->slot_base];
}

/* The peer's counts from tcp_info, kept in the connection log (and the counters). */
static void ep_off_count(struct epoll_loop *lp, struct conn *c, uint64_t in, uint64_t out)
{
	if (in < c->log.bytes_in)
		in = c->log.bytes_in; /* the program's counter ran ahead of tcp_info */
	if (in == c->log.bytes_in && out <= c->log.bytes_out)
		return;
	stats_add2(lp->w->stats, STAT_bytes_in, c->listener, LSTAT_bytes_in, in - c->log.bytes_in);
	if (out > c->log.bytes_out)
		stats_add2(lp->w->stats, STAT_bytes_out, c->listener, LSTAT_bytes_out,
			   out - c->log.bytes_out);
	c->log.bytes_in = in;
	if (out > c->log.bytes_out)
		c->log.bytes_out = out;
	timer_touch(&lp->echo.idle, &c->idle, lp->now);
}

/* Asks tcp_info about an offloaded connection: its counts, the budget, and once the
 * peer's FIN came, whether everything owed went out (then it closes). */
static void ep_off_check(struct epoll_loop *lp, struct conn *c)
{
	struct offload_sample s = {0};
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	uint64_t banner = lp->w->banner_len;
	int outq = 0;

	struct ep_slot *es = ep_slot(lp, c);
	struct offload_window cur;
	uint64_t rx, nsegs, owed_segs, budget = lp->w->cfg->offload_budget;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) {
		echo_close(&lp->echo, c, conn_errno_reason(errno));
		return;
	}
	if (ti.tcpi_state == EP_TCP_CLOSE) { /* reset by the peer */
		echo_close(&lp->echo, c, CLOSE_RESET);
		return;
	}
	if (ti.tcpi_state == EP_TCP_CLOSE_WAIT)
		c->flags |= CONN_RDHUP; /* the peer's FIN came */
	s.rx = ti.tcpi_bytes_received;
	s.acked = ti.tcpi_bytes_acked;
	s.fin = (c->flags & CONN_RDHUP) != 0;
	/* The program's counts after tcp_info's: they never run behind it by more than
	 * what it is passing on right now. */
	rx = offload_rx(lp->om, c->oslot);
	nsegs = offload_segs(lp->om, c->oslot);
	cur = (struct offload_window){rx - es->start.bytes, nsegs - es->start.segs};
	ep_off_count(lp, c, offload_bytes_in(&s), offload_bytes_out(&s, banner));
	offload_set_mark(lp->om, c->oslot,
			 offload_next_mark(rx + nsegs * OFFLOAD_SEG_CHARGE, budget));
	owed_segs = offload_owed_segs(offload_owed(&s, banner), cur, es->prev);
	if (cur.bytes + cur.segs * OFFLOAD_SEG_CHARGE >= budget / 4) {
		/* A new window: so the one before always covers at least a quarter budget. */
		es->prev = cur;
		es->start = (struct offload_window){rx, nsegs};
	}
	if (offload_over_budget(&s, banner, owed_segs, budget)) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		log_debug("offload: a peer owes %llu bytes in about %llu segments, over the budget "
			  "of %llu: resetting it",
			  (unsigned long long)offload_owed(&s, banner), (unsigned long long)owed_segs,
			  (unsigned long long)budget);
		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		echo_close(&lp->echo, c, CLOSE_OVERRUN);
		return;
	}
	if (!s.fin)
		return;
	if (ioctl(c->fd, SIOCOUTQ, &outq) < 0) {
		echo_close(&lp->echo, c, conn_errno_reason(errno));
		return;
	}
	s.outq = outq > 0 ? (uint64_t)outq : 0;
	if (offload_drained(&s, banner)) {
		/* All of it is in the send queue: the close sends it, then our FIN. */
		ep_off_count(lp, c, offload_bytes_in(&s), offload_bytes_in(&s));
		echo_close(&lp->echo, c, CLOSE_EOF);
	}
}

/* EPOLLRDHUP (a FIN with data), EPOLLERR (a FIN alone: SO_ERROR EPIPE once the kernel
 * passed it on; or a reset), EPOLLHUP. */
static void ep_off_event(struct epoll_loop *lp, struct conn *c, uint32_t ev)
{
	if (ev & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0 && err != EPIPE) {
			echo_close(&lp->echo, c, conn_errno_reason(err));
			return;
		}
	}
	if (ev & (EPOLLRDHUP | EPOLLERR | EPOLLHUP))
		c->flags |= CONN_RDHUP;
	ep_off_check(lp, c);
}

/*
 * While any connection is offloaded: every EP_OFF_SWEEP_MS while one of them is busy
 * (bytes came in, or its FIN did and it is draining), else every EP_OFF_IDLE_MS.
 * Reading each socket's counter costs no system call; tcp_info is asked of a socket
 * whose FIN came (until all is sent), of one past its mark whose wake-up was missed
 * (a full ring), and of each once every EP_OFF_REFRESH sweeps (the bytes it sent back,
 * for the counters and the idle timer). The budget is the wake-ups' business
 * (ep_off_wake): they come the moment a socket reaches its mark.
 */
static void ep_off_sweep(struct epoll_loop *lp)
{
	struct conn *c, *next;
	int busy = 0;

	if (lp->echo.noffloaded == 0) {
		lp->next_sweep = 0;
		return;
	}
	if (lp->now < lp->next_sweep)
		return;
	lp->sweeps++;
	for (c = lp->echo.offloaded; c != NULL; c = next) {
		uint64_t rx = offload_rx(lp->om, c->oslot);
		int due = offload_recheck_due(offload_charge(lp->om, c->oslot),
					      offload_mark(lp->om, c->oslot));

		next = c->next; /* c may close here, and leave the list */
		if ((c->flags & CONN_RDHUP) || rx > c->log.bytes_in || due)
			busy = 1;
		if ((c->flags & CONN_RDHUP) || due ||
		    (lp->sweeps + c->oslot) % EP_OFF_REFRESH == 0)
			ep_off_check(lp, c);
		else if (rx > c->log.bytes_in)
			ep_off_count(lp, c, rx, c->log.bytes_out);
	}
	lp->next_sweep = lp->now + (busy ? EP_OFF_SWEEP_MS : EP_OFF_IDLE_MS);
}

/* The program says: slot's counter reached its mark. */
static void ep_off_wake(void *arg, uint32_t slot)
{
	struct epoll_loop *lp = arg;
	struct conn *c;

	if (slot - lp->slot_base >= lp->w->offload_count)
		return;
	c = lp->slots[slot - lp->slot_base].c;
	if (c != NULL && c->state == CONN_OFFLOADED)
		ep_off_check(lp, c);
}

/* An offloaded connection closes: its last counts, and its counter slot comes back. */
static void ep_off_closed(void *arg, struct conn *c)
{
	struct epoll_loop *lp = arg;
	struct offload_sample s = {0};
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int rc;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
		s.rx = ti.tcpi_bytes_received;
		s.acked = ti.tcpi_bytes_acked;
		s.fin = (c->flags & CONN_RDHUP) != 0 || ti.tcpi_state == EP_TCP_CLOSE_WAIT;
		ep_off_count(lp, c, offload_bytes_in(&s), offload_bytes_out(&s, lp->w->banner_len));
	}
	rc = offload_forget(lp->om, ep_slot(lp, c)->cookie);
	if (rc < 0)
		log_debug("offload: forgetting a socket: %s", strerror(-rc));
	ep_slot(lp, c)->c = NULL;
	lp->free_slots[lp->nfree++] = c->oslot;
}

/* Hands c to the kernel. Returns 0 when it is offloaded (or closed), -1 when the kernel
 * refused it and it is to be echoed in user space (counted). */
static int ep_offload(struct epoll_loop *lp, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.ptr = c};
	uint64_t cookie = 0;
	uint32_t slot;
	int rc = -ENOSPC;
	char b;

	if (lp->nfree > 0) {
		slot = lp->free_slots[--lp->nfree];
		rc = offload_insert(lp->om, c->fd, slot, lp->w->offload_ring,
				    offload_next_mark(0, lp->w->cfg->offload_budget), &cookie);
		if (rc < 0)
			lp->free_slots[lp->nfree++] = slot;
	}
	if (rc < 0) {
		ep_stat(lp, STAT_offload_fallbacks, 1);
		log_debug("offload: the kernel refused a socket (%s); echoing it in user space",
			  strerror(-rc));
		return -1;
	}
	echo_offload(&lp->echo, c);
	c->oslot = slot;
	ep_slot(lp, c)->cookie = cookie;
	ep_slot(lp, c)->c = c;
	ep_slot(lp, c)->start = ep_slot(lp, c)->prev = (struct offload_window){0, 0};
	ep_stat(lp, STAT_offloaded, 1);
	if (lp->next_sweep == 0)
		lp->next_sweep = lp->now + EP_OFF_SWEEP_MS;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		echo_close(&lp->echo, c, conn_errno_reason(errno));
		return 0;
	}
	/* Bytes that came before the insert wait in the receive queue until something wakes
	 * the socket: a peek does, and takes nothing. */
	(void)recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return 0;
}

/* The worker's share of the counter slots, all free. */
static int ep_off_setup(struct epoll_loop *lp, struct echo_setup *echo)
{
	struct worker *w = lp->w;

	if (!w->offload || w->offload_count == 0)
		return 0;
	lp->free_slots = calloc(w->offload_count, sizeof(*lp->free_slots));
	lp->slots = calloc(w->offload_count, sizeof(*lp->slots));
	if (lp->free_slots == NULL || lp->slots == NULL)
		return -ENOMEM;
	lp->slot_base = w->offload_base;
	for (uint32_t i = w->offload_count; i > 0; i--)
		lp->free_slots[lp->nfree++] = w->offload_base + i - 1;
	lp->om = w->offload_maps;
	lp->ring_kind = EV_OFFLOAD;
	lp->ring = offload_ring_open(lp->om, w->offload_ring, ep_off_wake, lp);
	if (lp->ring == NULL)
		return -ENOMEM;
	echo->on_offload_close = ep_off_closed;
	echo->offload_arg = lp;
	return 0;
}

static void ep_admit(struct epoll_loop *lp, int fd, unsigned li, const struct sockaddr_storage *ss)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	struct limits_ticket ticket;
	struct conn *c;

	if (worker_admit(lp->w, fd, li, (const struct sockaddr *)ss, &ticket) < 0)
		return;
	c = echo_open(&lp->echo, fd, &ticket);
	if (c == NULL) {
		worker_refuse_nomem(lp->w, fd, &ticket);
		return;
	}
	c->listener = (uint16_t)stats_lrow(li);
	if (lp->connlog)
		worker_conn_open(lp->w, &c->log, (const struct sockaddr *)ss, li);
	if (lp->om != NULL && ep_offload(lp, c) == 0)
		return;
	ev.data.ptr = c;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		echo_close(&lp->echo, c, conn_errno_reason(errno));
}

/* ep_admit for a descriptor accepted without its address. */
static void ep_admit_peer(struct epoll_loop *lp, int fd, unsigned li)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		memset(&ss, 0, sizeof(ss));
	ep_admit(lp, fd, li, &ss);
}

/* A connection for another service than echo: service.c runs it, on the same edges. */
static void ep_svc_admit(struct epoll_loop *lp, int fd, unsigned li,
			 const struct sockaddr_storage *ss, enum listen_service service)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	struct svc_conn *c;

	if (ss == NULL) {
		if (getpeername(fd, (struct sockaddr *)&peer, &len) < 0)
			memset(&peer, 0, sizeof(peer));
		ss = &peer;
	}
	c = svc_accept(&lp->svc, fd, li, (const struct sockaddr *)ss, service, lp->now);
	if (c == NULL)
		return;
	ev.data.ptr = c;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		svc_fail(&lp->svc, c, errno);
}

static void ep_listeners_arm(struct epoll_loop *lp, int on)
{
	for (unsigned i = 0; i < lp->nlisten; i++) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lp->listeners[i]};

		if (lp->listeners[i].fd < 0)
			continue;
		if (lp->w->shared_listeners)
			ev.events |= EPOLLEXCLUSIVE;
		if (epoll_ctl(lp->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, lp->listeners[i].fd,
			      &ev) < 0)
			log_warn("epoll_ctl(listener %d)", lp->listeners[i].fd);
	}
}

/* Out of descriptors or memory: stop accepting for a moment rather than spin. */
static void ep_pause_accept(struct epoll_loop *lp, int err)
{
	if (lp->accept_resume != 0)
		return;
	log_warnx("accept: %s; pausing accepts for %d ms (%lu connection%s open)", strerror(err),
		  EP_ACCEPT_PAUSE, lp->echo.nconns, log_plural(lp->echo.nconns));
	ep_stat(lp, STAT_accept_paused, 1);
	ep_listeners_arm(lp, 0);
	lp->accept_resume = lp->now + EP_ACCEPT_PAUSE;
}

static void ep_accept(struct epoll_loop *lp, struct ep_listener *l)
{
	for (int budget = EP_ACCEPT_BUDGET; budget > 0 && lp->accept_resume == 0; budget--) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			unsigned li = (unsigned)(l - lp->listeners);

			if (l->service != SERVICE_ECHO)
				ep_svc_admit(lp, fd, li, &ss, l->service);
			else
				ep_admit(lp, fd, li, &ss);
			continue;
		}
		switch (errno) {
		case EAGAIN:
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			ep_pause_accept(lp, errno);
			return;
		default:
			log_warn("accept");
			return;
		}
	}
}

/* UDP sockets: level-triggered (a budget left unfinished is simply reported again),
 * exclusive when every worker shares them. Nothing to drain: closed on TERM. */
static int ep_udp_setup(struct epoll_loop *lp)
{
	struct worker *w = lp->w;
	unsigned n = 0;

	for (unsigned i = 0; i < w->nlisten; i++)
		n += w->listen_specs[i].proto == LISTEN_UDP;
	if (n == 0)
		return 0;
	lp->udps = calloc(n, sizeof(*lp->udps));
	if (lp->udps == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < w->nlisten; i++) {
		struct udp_sock *u = &lp->udps[lp->nudp];
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = u};

		if (w->listen_specs[i].proto != LISTEN_UDP)
			continue;
		*u = (struct udp_sock){EV_UDP, w->listen_fds[i], w->listen_specs[i].service, i};
		lp->nudp++;
		if (w->shared_listeners)
			ev.events |= EPOLLEXCLUSIVE;
		if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, u->fd, &ev) < 0)
			return -errno;
	}
	return udp_worker_init(&lp->udp, w, 1);
}

static void ep_udp_close(struct epoll_loop *lp)
{
	for (unsigned i = 0; i < lp->nudp; i++) {
		if (lp->udps[i].fd >= 0)
			close(lp->udps[i].fd);
		lp->udps[i].fd = -1;
	}
}

/* TERM: accept nothing more, go on echoing until every peer closed or time is up. */
static void ep_drain_start(struct epoll_loop *lp)
{
	if (lp->draining)
		return;
	lp->draining = 1;
	lp->drain_deadline = lp->now + (uint64_t)lp->w->cfg->drain_timeout * 1000;
	if (lp->accept_resume == 0)
		ep_listeners_arm(lp, 0);
	/* Take what is queued before closing our copy: with EPOLLEXCLUSIVE (shared sockets)
	 * a wake-up we consumed would leave a connection no other worker hears of. */
	for (unsigned i = 0; i < lp->nlisten; i++) {
		int fd;

		if (lp->listeners[i].fd < 0)
			continue;
		while ((fd = accept4(lp->listeners[i].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
		       0) {
			if (lp->listeners[i].service != SERVICE_ECHO)
				ep_svc_admit(lp, fd, i, NULL, lp->listeners[i].service);
			else
				ep_admit_peer(lp, fd, i);
		}
		close(lp->listeners[i].fd);
		lp->listeners[i].fd = -1;
	}
	ep_udp_close(lp);
	log_info("draining %lu connection%s", lp->echo.nconns, log_plural(lp->echo.nconns));
}

static void ep_signal(struct epoll_loop *lp, int what)
{
	if (what == WORKER_SIG_NONE)
		return;
	ep_drain_start(lp);
	/* Stop now: the drain's deadline is this turn's end (ep_timers closes the rest). */
	if (what == WORKER_SIG_STOP && lp->drain_deadline > lp->now) {
		log_info("stopping now: closing %lu connection%s", lp->echo.nconns,
			 log_plural(lp->echo.nconns));
		lp->drain_deadline = lp->now;
	}
}

static void ep_dispatch(struct epoll_loop *lp, struct epoll_event *ev)
{
	int kind = *(int *)ev->data.ptr;

	switch (kind) {
	case EV_CONN:
		conn_event(lp, ev->data.ptr, ev->events);
		break;
	case EV_LISTENER:
		if (!lp->draining)
			ep_accept(lp, ev->data.ptr);
		break;
	case EV_SIGNAL:
		ep_signal(lp, worker_signal(lp->w));
		break;
	case EV_UDP: /* level-triggered: a budget left unfinished is reported again */
		udp_serve(&lp->udp, ev->data.ptr, lp->now);
		break;
	case EV_OFFLOAD:
		offload_ring_consume(lp->ring);
		break;
	case EV_SVC:
		svc_event(&lp->svc, ev->data.ptr,
			  ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR),
			  ev->events & (EPOLLOUT | EPOLLHUP | EPOLLERR), ev->events & EPOLLRDHUP,
			  lp->now);
		break;
	}
}

static void ep_timers(struct epoll_loop *lp)
{
	ep_off_sweep(lp);
	echo_expire(&lp->echo);
	if (lp->accept_resume != 0 && lp->now >= lp->accept_resume && !lp->draining) {
		lp->accept_resume = 0;
		ep_listeners_arm(lp, 1);
	}
	if (lp->draining && lp->now >= lp->drain_deadline)
		echo_close_all(&lp->echo, CLOSE_DRAIN);
	svc_tick(&lp->svc, lp->now, lp->draining && lp->now >= lp->drain_deadline);
	echo_reclaim(&lp->echo);
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int ep_timeout(const struct epoll_loop *lp)
{
	int t;

	if (echo_has_ready(&lp->echo))
		return 0;
	/* At least once a second, so the heartbeat shows the supervisor we are alive. */
	t = min_timeout(echo_next_timeout_ms(&lp->echo), WORKER_HEARTBEAT_MS);
	t = min_timeout(t, svc_next_ms(&lp->svc, lp->now));
	if (lp->accept_resume != 0)
		t = min_timeout(t, lp->accept_resume > lp->now ? (int)(lp->accept_resume - lp->now)
							       : 0);
	if (lp->next_sweep != 0)
		t = min_timeout(t, lp->next_sweep > lp->now ? (int)(lp->next_sweep - lp->now) : 0);
	if (lp->draining)
		t = min_timeout(t, lp->drain_deadline > lp->now
					   ? (int)(lp->drain_deadline - lp->now)
					   : 0);
	return t;
}

static int ep_setup(struct epoll_loop *lp, struct worker *w)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lp->sig_kind};
	struct echo_setup echo = {
	    .io = {.recv = recv, .send = send, .close = close},
	    .stats = w->stats,
	    .limits = &w->limits,
	    .idle_timeout_ms = (uint64_t)w->cfg->idle_timeout * 1000,
	    .buf_size = CONN_BUF_SIZE,
	    .spare_bufs = EP_SPARE_BUFS,
	    .spare_conns = EP_SPARE_CONNS,
	};

	memset(lp, 0, sizeof(*lp));
	lp->connlog = log_enabled(LOG_LVL_INFO);
	if (lp->connlog) {
		echo.on_close = ep_conn_closed;
		echo.on_close_arg = w;
	}
	lp->epfd = -1;
	lp->w = w;
	lp->sig_kind = EV_SIGNAL;
	lp->now = timer_now_ms();
	if (ep_off_setup(lp, &echo) < 0)
		return -ENOMEM;
	if (echo_init(&lp->echo, &echo, lp->now) < 0)
		return -ENOMEM;
	lp->listeners = calloc(w->nlisten, sizeof(*lp->listeners));
	if (lp->listeners == NULL)
		return -ENOMEM;
	lp->nlisten = w->nlisten;
	for (unsigned i = 0; i < w->nlisten; i++) {
		lp->listeners[i].kind = EV_LISTENER;
		lp->listeners[i].fd =
		    w->listen_specs[i].proto == LISTEN_TCP ? w->listen_fds[i] : -1;
		lp->listeners[i].service = w->listen_specs[i].service;
	}
	if (svc_init(&lp->svc, w, NULL, NULL) < 0)
		return -ENOMEM;
	lp->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (lp->epfd < 0)
		return -errno;
	if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, w->sigfd, &ev) < 0)
		return -errno;
	if (lp->ring != NULL) {
		struct epoll_event rev = {.events = EPOLLIN, .data.ptr = &lp->ring_kind};

		if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, offload_ring_fd(lp->om, w->offload_ring),
			      &rev) < 0)
			return -errno;
	}
	ep_listeners_arm(lp, 1);
	return ep_udp_setup(lp);
}

static void ep_teardown(struct epoll_loop *lp)
{
	echo_fini(&lp->echo);
	ep_udp_close(lp);
	udp_worker_fini(&lp->udp);
	svc_fini(&lp->svc);
	free(lp->udps);
	free(lp->listeners);
	free(lp->free_slots);
	free(lp->slots);
	offload_ring_close(lp->ring);
	if (lp->epfd >= 0)
		close(lp->epfd);
}

int loop_epoll_run(struct worker *w)
{
	struct epoll_event events[EP_EVENTS];
	struct epoll_loop lp;
	int rc = ep_setup(&lp, w), status = 0;

	if (rc < 0) {
		log_warnx("epoll set-up: %s", strerror(-rc));
		ep_teardown(&lp);
		return EXIT_OSERR;
	}
	worker_ready(w);
	while (!lp.draining || lp.echo.nconns > 0 || svc_busy(&lp.svc) > 0) {
		int n = epoll_wait(lp.epfd, events, EP_EVENTS, ep_timeout(&lp));

		if (n < 0 && errno != EINTR) {
			log_warn("epoll_wait");
			status = EXIT_OSERR;
			break;
		}
		lp.now = timer_now_ms();
		lp.echo.now = lp.now;
		stats_heartbeat(w->stats, lp.now);
		for (int i = 0; i < n; i++)
			ep_dispatch(&lp, &events[i]);
		echo_run_ready(&lp.echo);
		ep_timers(&lp);
	}
	ep_teardown(&lp);
	return status;
}
