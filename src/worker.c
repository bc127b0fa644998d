/* worker: process set-up around one backend run. */
#include "echod/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "echod/log.h"
#include "echod/net.h"
#include "echod/proctitle.h"
#include "echod/sandbox.h"
#include "echod/timer.h"

static int worker_signals(struct worker *w)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);  /* the supervisor's business, also when sent to the group */
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, WORKER_STOP_SIGNAL);
	if (sigprocmask(SIG_SETMASK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	w->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	return w->sigfd < 0 ? -errno : 0;
}

int worker_signal(struct worker *w)
{
	struct signalfd_siginfo si;
	int what = WORKER_SIG_NONE;
	ssize_t n;

	while ((n = read(w->sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
		if ((int)si.ssi_signo == WORKER_STOP_SIGNAL)
			what = WORKER_SIG_STOP;
		else if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) &&
			 what == WORKER_SIG_NONE)
			what = WORKER_SIG_DRAIN;
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		log_warn("signalfd read");
	return what;
}

int worker_wants_peer(const struct worker *w)
{
	return w->limits.max_per_ip > 0 || w->limits.conn_rate > 0 ||
	       acl_active(&w->cfg->allow, &w->cfg->deny);
}

/*
 * The checks before a connection costs anything, cheapest and strictest first: the
 * access lists (an unknown peer is refused when they are set), the client's rate, then
 * the counts. A connection the rate refused does not count against the rate.
 */
static enum stats_counter admit_check(struct worker *w, const struct sockaddr *peer,
				      struct limits_ticket *ticket)
{
	uint8_t addr[16] = {0}, client[16] = {0};
	enum limits_verdict verdict;

	memset(ticket, 0, sizeof(*ticket));
	if (peer != NULL && peer->sa_family != AF_INET && peer->sa_family != AF_INET6)
		peer = NULL; /* getpeername failed: the peer is unknown */
	if (peer != NULL) {
		net_addr_key(peer, addr);
		limits_key(peer, client);
	}
	if (acl_active(&w->cfg->allow, &w->cfg->deny) &&
	    (peer == NULL || !acl_permits(&w->cfg->allow, &w->cfg->deny, addr)))
		return STAT_rejected_acl;
	if (w->limits.conn_rate > 0 && limits_rate(&w->limits, client, timer_now_ms()) != LIMITS_OK)
		return STAT_rejected_conn_rate;
	verdict = limits_admit(&w->limits, client, ticket);
	if (verdict == LIMITS_MAX_CONNS)
		return STAT_rejected_max_conns;
	if (verdict == LIMITS_PER_IP)
		return STAT_rejected_per_ip;
	return STAT_accepted;
}

/* The admission of every TCP connection; banner: echo's greeting line, if any. */
static int admit(struct worker *w, int fd, unsigned listener, const struct sockaddr *peer,
		 struct limits_ticket *ticket, const char *banner)
{
	enum stats_counter verdict = admit_check(w, peer, ticket);
	int on = 1;

	/* Counted before the close, so a peer that sees the close sees the count too. */
	if (verdict != STAT_accepted) {
		stats_add(w->stats, verdict, 1);
		close(fd);
		return -1;
	}
	/* Echoes are small and answered at once: never hold one back for an ACK. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	/* A fresh socket's buffer always takes a line this short whole. */
	if (banner != NULL && send(fd, banner, w->banner_len, MSG_NOSIGNAL | MSG_DONTWAIT) !=
				       (ssize_t)w->banner_len) {
		limits_release(&w->limits, ticket);
		stats_add(w->stats, STAT_closed_error, 1);
		close(fd);
		return -1;
	}
	stats_add2(w->stats, STAT_accepted, listener, LSTAT_accepted, 1);
	return 0;
}

int worker_admit(struct worker *w, int fd, unsigned listener, const struct sockaddr *peer,
		 struct limits_ticket *ticket)
{
	return admit(w, fd, listener, peer, ticket, w->banner);
}

int worker_admit_plain(struct worker *w, int fd, unsigned listener, const struct sockaddr *peer,
		       struct limits_ticket *ticket)
{
	return admit(w, fd, listener, peer, ticket, NULL);
}

/* The listener's address and service, for the connection log. */
static size_t conn_where(const struct worker *w, const struct conn_log *l, char *out, size_t cap)
{
	const char *addr = "unknown", *service = "echo";

	if (l->listener < w->nlisten) {
		service = listen_service_name(w->listen_specs[l->listener].service);
		if (w->listen_names != NULL && strlen(w->listen_names[l->listener]) > 4)
			addr = w->listen_names[l->listener] + 4; /* after "tcp " */
	}
	return conn_log_where(l, addr, service, out, cap);
}

void worker_conn_open(struct worker *w, struct conn_log *l, const struct sockaddr *peer,
		      unsigned listener)
{
	char where[192];

	conn_log_start(l, peer, listener, timer_now_ms());
	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	conn_where(w, l, where, sizeof(where));
	log_debug("connection accepted: %s", where);
}

void worker_conn_closed(struct worker *w, const struct conn_log *l, const char *why)
{
	char where[192], totals[96];

	conn_where(w, l, where, sizeof(where));
	conn_log_totals(l, timer_now_ms(), totals, sizeof(totals));
	log_info("connection closed: %s %s reason=%s", where, totals, why);
}

void worker_refuse_nomem(struct worker *w, int fd, struct limits_ticket *ticket)
{
	limits_release(&w->limits, ticket);
	stats_add(w->stats, STAT_rejected_nomem, 1);
	close(fd);
}

void worker_ready(struct worker *w)
{
	char why[256];

	/* Set-up is over: from here the backend only runs its loop. */
	if (w->offload)
		sandbox_allow_offload();
	if (w->cfg->seccomp && sandbox_available() &&
	    sandbox_enter(w->backend, w->stats, why, sizeof(why)) < 0)
		log_warnx("seccomp: %s; running without the system call filter", why);
	stats_heartbeat(w->stats, timer_now_ms());
	__atomic_store_n(&w->stats->state, SLOT_READY, __ATOMIC_RELEASE);
}

int worker_main(struct worker *w)
{
	char title[32];
	int rc;

	snprintf(title, sizeof(title), "echod: worker %u", w->index);
	proctitle_set(title);
	log_set_worker((int)w->index);
	/* A worker outliving its supervisor would hold the port forever: drain and go. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0)
		log_warn("prctl(PR_SET_PDEATHSIG)");
	if (getppid() != w->supervisor)
		return 0;
	rc = worker_signals(w);
	if (rc < 0) {
		log_warnx("signals: %s", strerror(-rc));
		return EXIT_OSERR;
	}
	if (w->backend == BACKEND_IO_URING)
		rc = loop_uring_run(w);
	else
		rc = loop_epoll_run(w);
	/* The loop is over: from here to exit (a sanitizer's leak check may take a while) no
	 * heartbeat is owed, and the supervisor must not take the silence for a hang. */
	__atomic_store_n(&w->stats->state, SLOT_EXITING, __ATOMIC_RELEASE);
	close(w->sigfd);
	return rc;
}
