/*
 * supervisor: the one process that owns the listeners and the workers.
 *
 * It opens one SO_REUSEPORT listener per worker slot and keeps them all, so no
 * connection attempt fails while a worker restarts: the slot's queue waits for the
 * replacement. Signals are taken synchronously with sigtimedwait; the loop is a tick
 * that reaps, respawns, advances a rolling restart and watches readiness.
 */
#include "echod/supervisor.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "echod/diag.h"
#include "echod/limits.h"
#include "echod/log.h"
#include "echod/metrics.h"
#include "echod/net.h"
#include "echod/offload.h"
#include "echod/priv.h"
#include "echod/sandbox.h"
#include "echod/sd.h"
#include "echod/stats.h"
#include "echod/timer.h"
#include "echod/worker.h"

#define SV_TICK_MS        50
#define SV_IDLE_TICK_MS   1000
#define SV_BACKOFF_MAX_MS 10000
#define SV_QUICK_DEATH_MS 1000    /* dying sooner than this counts as failing to start */
#define SV_ROLL_WAIT_MS   10000   /* a new worker not ready by then: go on anyway */
#define SV_KILL_GRACE_MS  5000    /* after drain-timeout, SIGKILL what is left */
#define SV_STOP_NOW_MS    2000    /* after a stop now, SIGKILL what is left */
#define SV_STATUS_MS      2000    /* STATUS= to systemd */
#define SV_STALE_MS       (3 * WORKER_HEARTBEAT_MS) /* a worker silent longer is hung */
#define SV_STUCK_MS       (5 * WORKER_HEARTBEAT_MS) /* ... and killed, then replaced */

struct proc {
	pid_t pid;                /* 0: entry free */
	unsigned lslot;           /* listener slot it serves */
	int retiring;             /* told to stop: not respawned */
	int stuck;                /* SIGKILLed for not turning its loop */
	uint64_t started;
};

struct lslot {
	unsigned fails;           /* quick deaths in a row */
	uint64_t respawn_at;      /* 0: no respawn due */
	int due;
};

struct supervisor {
	struct config cfg;
	int argc;
	char **argv;
	enum backend_kind backend;
	int offload;              /* --offload: on, with these maps the workers insert into */
	struct offload_maps offload_maps;
	uint32_t offload_per_proc; /* counter slots per worker table entry */
	struct listener_set ls;
	struct stats_shared *sh;
	uint64_t (*retired)[STAT_COUNT]; /* per listener slot: counters of dead workers */
	uint64_t lretired[STATS_LISTENERS][LSTAT_COUNT]; /* per listener: of dead workers */
	struct metrics_listener *lrows; /* per listener stats row, named at start-up */
	unsigned nlrows;
	struct proc *procs;       /* index = stats slot */
	unsigned nprocs;
	struct lslot *slots;
	char banner[CONFIG_TEXT_MAX + 2];
	uint64_t now;
	uint64_t awake_since;     /* the supervisor itself was last stopped until then */
	int ready_logged;
	int stopping;             /* 1: draining, 2: stopping now */
	uint64_t stop_deadline;
	int rolling, reload_pending;
	unsigned roll_slot;
	int roll_new;             /* proc index of the slot's new worker, -1: none yet */
	uint64_t roll_deadline;
	int sigfd;
	struct metrics_server metrics;
	double start_time;        /* unix time, for process_start_time_seconds */
	uint64_t watchdog_ms;     /* WATCHDOG=1 period, 0: off */
	uint64_t next_watchdog, next_status;
	uint64_t last_status, last_bytes, last_msgs;
};

/* The SOCKHASH's room: every connection --max-conns allows, else this many (a full map
 * only means more connections echoed in user space, counted as offload_fallbacks).
 * Each worker table entry gets its own range of counter slots: a worker's share of the
 * sockets, at least SV_OFFLOAD_MIN_SHARE. */
#define SV_OFFLOAD_ENTRIES     65536u
#define SV_OFFLOAD_ENTRIES_MAX (1u << 24)
#define SV_OFFLOAD_MIN_SHARE   1024u
#define SV_OFFLOAD_SLOTS_MAX   (1u << 22)

/*
 * --offload: loads the BPF program and makes the map now, while the supervisor still
 * has its privileges; the workers inherit the map and only insert sockets into it.
 * Returns 0, or -1 when offload is off (logged once when it was asked for with auto);
 * --offload=sockmap that cannot be had is exit 71.
 */
static int resolve_offload(struct supervisor *sv, const struct config *cfg, unsigned nprocs)
{
	char why[256] = "";
	unsigned entries = cfg->max_conns == 0 ? SV_OFFLOAD_ENTRIES
			   : cfg->max_conns > SV_OFFLOAD_ENTRIES_MAX ? SV_OFFLOAD_ENTRIES_MAX
								    : cfg->max_conns;
	unsigned share = (entries + cfg->workers - 1) / cfg->workers;
	int rc;

	if (share < SV_OFFLOAD_MIN_SHARE)
		share = SV_OFFLOAD_MIN_SHARE;
	if ((unsigned long long)share * nprocs > SV_OFFLOAD_SLOTS_MAX)
		share = SV_OFFLOAD_SLOTS_MAX / nprocs;
	if (cfg->offload == OFFLOAD_OFF)
		return -1;
	if (cfg->backend == BACKEND_IO_URING) { /* offload = auto: sockmap is a usage error */
		log_msg(LOG_LVL_NOTICE, "offload: sockmap unavailable (it runs on the epoll "
					"backend and -b io_uring was asked for); echoing in user space");
		return -1;
	}
	rc = offload_load(&sv->offload_maps, entries, share * nprocs, nprocs, why, sizeof(why));
	if (rc == 0) {
		sv->offload_per_proc = share;
		return 0;
	}
	if (cfg->offload == OFFLOAD_SOCKMAP)
		fatalx(EXIT_OSERR, "--offload=sockmap: %s", why);
	log_msg(LOG_LVL_NOTICE, "offload: sockmap unavailable (%s); echoing in user space", why);
	return -1;
}

static enum backend_kind resolve_backend(const struct config *cfg, int offload)
{
	char why[256] = "";

	if (cfg->backend == BACKEND_EPOLL)
		return BACKEND_EPOLL;
	if (offload && cfg->backend == BACKEND_AUTO) {
		log_msg(LOG_LVL_NOTICE, "backend auto: using epoll, which the kernel offload "
					"(--offload) runs on");
		return BACKEND_EPOLL;
	}
	if (loop_uring_probe(why, sizeof(why)) == 0)
		return BACKEND_IO_URING;
	if (cfg->backend == BACKEND_IO_URING)
		fatalx(EXIT_OSERR, "io_uring backend unavailable: %s", why);
	log_msg(LOG_LVL_NOTICE, "io_uring unavailable (%s); using epoll", why);
	return BACKEND_EPOLL;
}

static void sv_worker_limits(struct supervisor *sv, unsigned idx, struct limits *l)
{
	struct stats_shared *sh = sv->sh;

	memset(l, 0, sizeof(*l));
	l->max_conns = sv->cfg.max_conns;
	l->max_per_ip = sh->ip_buckets ? sv->cfg.max_conns_per_ip : 0;
	l->total = &sh->open_total;
	l->open = &sh->slots[idx].c[STAT_open];
	if (sh->ip_buckets > 0) {
		l->ip_global = stats_ip_global(sh);
		l->ip_local = stats_ip_local(sh, idx);
		l->ip_mask = sh->ip_buckets - 1;
	}
	l->seed = sh->seed;
	l->conn_rate = sv->cfg.conn_rate;
	l->rate_cells = stats_rate_cells(sh);
}

/* In the child: never returns. */
static void __attribute__((noreturn)) sv_child(struct supervisor *sv, unsigned idx,
					       unsigned lslot)
{
	struct worker w;
	int *fds = calloc(sv->ls.n ? sv->ls.n : 1, sizeof(int));
	struct listen_spec *specs = calloc(sv->ls.n ? sv->ls.n : 1, sizeof(*specs));
	const char **names = calloc(sv->ls.n ? sv->ls.n : 1, sizeof(*names));

	if (fds == NULL || specs == NULL || names == NULL)
		_exit(EXIT_OSERR);
	close(sv->sigfd);
	metrics_close(&sv->metrics);
	memset(&w, 0, sizeof(w));
	listen_keep_slot(&sv->ls, lslot);
	for (unsigned i = 0; i < sv->ls.n; i++) {
		fds[i] = listen_slot_fd(&sv->ls, i, lslot);
		specs[i] = sv->ls.v[i].spec;
		names[i] = sv->ls.v[i].name;
	}
	w.shared_listeners = sv->ls.shared;
	w.cfg = &sv->cfg;
	w.backend = sv->backend;
	w.index = lslot;
	w.stats = &sv->sh->slots[idx];
	sv_worker_limits(sv, idx, &w.limits);
	w.listen_fds = fds;
	w.listen_specs = specs;
	w.listen_names = names;
	w.nlisten = sv->ls.n;
	w.supervisor = getppid();
	if (sv->banner[0] != '\0') {
		w.banner = sv->banner;
		w.banner_len = strlen(sv->banner);
	}
	w.offload = sv->offload;
	w.offload_maps = &sv->offload_maps;
	w.offload_base = idx * sv->offload_per_proc;
	w.offload_count = sv->offload_per_proc;
	w.offload_ring = idx;
	_exit(worker_main(&w));
}

static int sv_spawn(struct supervisor *sv, unsigned lslot)
{
	unsigned idx;
	pid_t pid;

	for (idx = 0; idx < sv->nprocs && sv->procs[idx].pid != 0; idx++)
		;
	if (idx == sv->nprocs)
		return -1; /* every entry is still draining: try again next tick */
	memset(&sv->sh->slots[idx], 0, sizeof(sv->sh->slots[idx]));
	sv->sh->slots[idx].state = SLOT_STARTING;
	pid = fork();
	if (pid < 0) {
		log_warn("fork (worker %u)", lslot);
		return -1;
	}
	if (pid == 0)
		sv_child(sv, idx, lslot);
	sv->procs[idx] = (struct proc){.pid = pid, .lslot = lslot, .started = sv->now};
	sv->sh->slots[idx].pid = pid;
	log_info("worker %u started (pid %d)", lslot, (int)pid);
	return (int)idx;
}

static void sv_schedule_respawn(struct supervisor *sv, unsigned lslot, uint64_t lived)
{
	struct lslot *s = &sv->slots[lslot];
	uint64_t delay = 0;

	s->fails = lived < SV_QUICK_DEATH_MS ? s->fails + 1 : 0;
	if (s->fails > 0) {
		unsigned shift = s->fails - 1 < 7 ? s->fails - 1 : 7;

		delay = 100u << shift;
		if (delay > SV_BACKOFF_MAX_MS)
			delay = SV_BACKOFF_MAX_MS;
	}
	s->due = 1;
	s->respawn_at = sv->now + delay;
	if (delay > 0)
		log_warnx("worker %u keeps dying; respawning in %llu ms", lslot,
			  (unsigned long long)delay);
}

/* Folds a dead process's counters into the retired totals and frees its entry. */
static void sv_retire_slot(struct supervisor *sv, unsigned idx)
{
	struct stats_slot *slot = &sv->sh->slots[idx];

	for (int c = 0; c < STAT_COUNT; c++)
		if (c != STAT_open && c != STAT_buffers_held)
			sv->retired[sv->procs[idx].lslot][c] += slot->c[c];
	for (unsigned r = 0; r < STATS_LISTENERS; r++)
		for (int c = 0; c < LSTAT_COUNT; c++)
			sv->lretired[r][c] += slot->l[r][c];
	limits_reap(&sv->sh->open_total, slot->c[STAT_open],
		    sv->sh->ip_buckets ? stats_ip_global(sv->sh) : NULL,
		    sv->sh->ip_buckets ? stats_ip_local(sv->sh, idx) : NULL, sv->sh->ip_buckets);
	memset(slot, 0, sizeof(*slot));
	sv->procs[idx].pid = 0;
}

/* Before its slot is cleared: a seccomp death's system call is recorded there. */
static void sv_log_exit(const struct proc *p, const struct stats_slot *slot, int status)
{
	struct diag_exit e = {
		.lslot = p->lslot,
		.pid = p->pid,
		.status = status,
		.retiring = p->retiring,
		.stuck = p->stuck,
		.seccomp_syscall = __atomic_load_n(&slot->seccomp_syscall, __ATOMIC_RELAXED),
		.seccomp_arch = __atomic_load_n(&slot->seccomp_arch, __ATOMIC_ACQUIRE),
	};
	char line[256];

	log_msg(diag_exit_line(&e, line, sizeof(line)), "%s", line);
}

static void sv_reload(struct supervisor *sv);
static void sv_status(struct supervisor *sv, const char *prefix);

/* The rolling restart is over, done or aborted: systemd hears READY=1 after every
 * RELOADING=1, whatever happened in between. */
static void sv_roll_end(struct supervisor *sv, const char *how)
{
	sv->rolling = 0;
	sv->roll_new = -1;
	log_msg(LOG_LVL_NOTICE, "reload: %s", how);
	sv_status(sv, "READY=1\n");
	if (sv->reload_pending) {
		sv->reload_pending = 0;
		sv_reload(sv);
	}
}

/* A worker that died with sockets offloaded left their cookies in the map. */
static void sv_offload_forget(struct supervisor *sv, unsigned idx)
{
	uint32_t lo = idx * sv->offload_per_proc;
	int n = offload_forget_range(&sv->offload_maps, lo, lo + sv->offload_per_proc);

	if (n < 0)
		log_warnx("offload: forgetting worker table entry %u's sockets: %s", idx,
			  strerror(-n));
	else if (n > 0)
		log_debug("offload: forgot %d socket%s of worker table entry %u", n,
			  log_plural((unsigned)n), idx);
}

static void sv_reap(struct supervisor *sv)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned idx = 0; idx < sv->nprocs; idx++) {
			struct proc p = sv->procs[idx];

			if (p.pid != pid)
				continue;
			sv_log_exit(&p, &sv->sh->slots[idx], status);
			sv_retire_slot(sv, idx);
			if (sv->offload && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
				sv_offload_forget(sv, idx);
			if ((int)idx == sv->roll_new && sv->rolling) {
				log_warnx("reload: the new worker %u died; keeping the old one",
					  p.lslot);
				sv_roll_end(sv, "aborted");
			} else if (!sv->stopping && !p.retiring) {
				/* A hang is not a failure to start: no backoff for it. */
				sv_schedule_respawn(sv, p.lslot,
						    p.stuck ? SV_QUICK_DEATH_MS : sv->now - p.started);
			}
			break;
		}
	}
}

static void sv_respawn_due(struct supervisor *sv)
{
	for (unsigned s = 0; s < sv->cfg.workers; s++) {
		if (sv->slots[s].due && sv->now >= sv->slots[s].respawn_at &&
		    sv_spawn(sv, s) >= 0)
			sv->slots[s].due = 0;
	}
}

static unsigned sv_ready_count(const struct supervisor *sv)
{
	unsigned n = 0;

	for (unsigned idx = 0; idx < sv->nprocs; idx++)
		if (sv->procs[idx].pid != 0 && !sv->procs[idx].retiring &&
		    __atomic_load_n(&sv->sh->slots[idx].state, __ATOMIC_ACQUIRE) == SLOT_READY)
			n++;
	return n;
}

/* Counters of one listener slot (every process that served it), or of all: -1. */
static void sv_counters(const struct supervisor *sv, int lslot, uint64_t *out)
{
	memset(out, 0, STAT_COUNT * sizeof(*out));
	for (unsigned s = 0; s < sv->cfg.workers; s++) {
		if (lslot >= 0 && (unsigned)lslot != s)
			continue;
		for (int c = 0; c < STAT_COUNT; c++)
			out[c] += sv->retired[s][c];
	}
	for (unsigned idx = 0; idx < sv->nprocs; idx++) {
		if (sv->procs[idx].pid == 0 || (lslot >= 0 && sv->procs[idx].lslot != (unsigned)lslot))
			continue;
		for (int c = 0; c < STAT_COUNT; c++)
			out[c] += stats_get(&sv->sh->slots[idx], (enum stats_counter)c);
	}
}

static unsigned sv_live(const struct supervisor *sv)
{
	unsigned n = 0;

	for (unsigned idx = 0; idx < sv->nprocs; idx++)
		n += sv->procs[idx].pid != 0;
	return n;
}

static void sv_log_stats(struct supervisor *sv)
{
	uint64_t v[STAT_COUNT];
	char line[1536];

	sv_counters(sv, -1, v);
	stats_format(v, line, sizeof(line));
	log_msg(LOG_LVL_NOTICE, "stats: workers=%u %s", sv_live(sv), line);
}

/* STATUS= for systemctl status: workers, connections, echo rates since the last one. */
static void sv_status(struct supervisor *sv, const char *prefix)
{
	uint64_t v[STAT_COUNT], dt;

	sv_counters(sv, -1, v);
	dt = sv->now > sv->last_status ? sv->now - sv->last_status : 1;
	sd_notify_state("%sSTATUS=%u worker%s, %llu connection%s, %.1f MB/s, %llu msgs/s echoed",
			prefix, sv_live(sv), log_plural(sv_live(sv)),
			(unsigned long long)v[STAT_open], log_plural(v[STAT_open]),
			(double)(v[STAT_bytes_out] - sv->last_bytes) * 1000.0 / 1e6 / (double)dt,
			(unsigned long long)((v[STAT_msgs] - sv->last_msgs) * 1000 / dt));
	sv->last_status = sv->now;
	sv->last_bytes = v[STAT_bytes_out];
	sv->last_msgs = v[STAT_msgs];
	sv->next_status = sv->now + SV_STATUS_MS;
}

/* WATCHDOG=1 only while every worker's loop keeps turning. */
static void sv_watchdog(struct supervisor *sv)
{
	if (sv->watchdog_ms == 0 || sv->now < sv->next_watchdog)
		return;
	sv->next_watchdog = sv->now + sv->watchdog_ms;
	for (unsigned idx = 0; idx < sv->nprocs; idx++) {
		const struct stats_slot *slot = &sv->sh->slots[idx];
		uint64_t beat = __atomic_load_n(&slot->heartbeat, __ATOMIC_RELAXED);

		if (sv->procs[idx].pid != 0 && slot->state == SLOT_READY &&
		    sv->now > beat + SV_STALE_MS) {
			log_warnx("worker %u (pid %d) has not turned its loop for %llu ms",
				  sv->procs[idx].lslot, (int)sv->procs[idx].pid,
				  (unsigned long long)(sv->now - beat));
			return;
		}
	}
	sd_notify_state("WATCHDOG=1");
}

/*
 * A READY worker whose loop has not turned for SV_STUCK_MS is blocked or spinning: say
 * what it was doing, SIGKILL it and let the reaper replace it (a draining or retiring
 * one is not replaced). Silence is measured from when the supervisor itself last ran
 * without a gap, so a whole stopped process group (^Z, then fg) does not look stuck.
 */
static void sv_check_stuck(struct supervisor *sv)
{
	for (unsigned idx = 0; idx < sv->nprocs; idx++) {
		const struct stats_slot *slot = &sv->sh->slots[idx];
		struct proc *p = &sv->procs[idx];
		uint64_t beat = __atomic_load_n(&slot->heartbeat, __ATOMIC_RELAXED);
		char what[256];

		if (p->pid == 0 || p->stuck ||
		    __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) != SLOT_READY)
			continue;
		if (beat < sv->awake_since)
			beat = sv->awake_since;
		if (sv->now <= beat + SV_STUCK_MS)
			continue;
		diag_proc(p->pid, what, sizeof(what));
		log_warnx("worker %u (pid %d) is stuck: its loop has not turned for %llu ms (%s); "
			  "killing it",
			  p->lslot, (int)p->pid, (unsigned long long)(sv->now - beat), what);
		p->stuck = 1;
		sv->retired[p->lslot][STAT_workers_stuck]++;
		kill(p->pid, SIGKILL);
	}
}

static void sv_signal_slot(struct supervisor *sv, unsigned lslot, int keep, int sig)
{
	for (unsigned idx = 0; idx < sv->nprocs; idx++) {
		struct proc *p = &sv->procs[idx];

		if (p->pid != 0 && (int)idx != keep && (lslot == (unsigned)-1 || p->lslot == lslot) &&
		    !p->retiring) {
			p->retiring = 1;
			kill(p->pid, sig);
		}
	}
}

static void sv_stop(struct supervisor *sv)
{
	if (sv->stopping)
		return;
	sv->stopping = 1;
	sv->rolling = 0;
	sv->stop_deadline = sv->now + (uint64_t)sv->cfg.drain_timeout * 1000 + SV_KILL_GRACE_MS;
	log_msg(LOG_LVL_NOTICE, "stopping: draining connections for up to %u s",
		sv->cfg.drain_timeout);
	sd_notify_state("STOPPING=1\nSTATUS=draining connections");
	/* Our copies closed, the workers' closed as they start draining: new SYNs are refused. */
	listen_close_all(&sv->ls);
	sv_signal_slot(sv, (unsigned)-1, -1, SIGTERM);
}

/* A second TERM/INT during the drain: every worker closes everything and exits now. */
static void sv_stop_now(struct supervisor *sv)
{
	uint64_t deadline = sv->now + SV_STOP_NOW_MS;
	union sigval none = {0};

	if (sv->stopping != 1)
		return;
	sv->stopping = 2;
	if (deadline < sv->stop_deadline)
		sv->stop_deadline = deadline;
	log_msg(LOG_LVL_NOTICE, "stopping now: closing every connection");
	sd_notify_state("STATUS=stopping now");
	for (unsigned idx = 0; idx < sv->nprocs; idx++)
		if (sv->procs[idx].pid != 0 &&
		    sigqueue(sv->procs[idx].pid, WORKER_STOP_SIGNAL, none) < 0 && errno != ESRCH)
			log_warn("sigqueue(worker %u)", sv->procs[idx].lslot);
}

static int same_listeners(const struct config *a, const struct config *b)
{
	return a->nlisten == b->nlisten &&
	       memcmp(a->listen, b->listen, a->nlisten * sizeof(a->listen[0])) == 0;
}

/* The restart-only settings a reload changed, by name. */
struct sv_changes {
	char names[160];
	unsigned count;
};

/* Notes name when differs; returns differs. */
static int sv_changed(struct sv_changes *c, const char *name, int differs)
{
	size_t len = strlen(c->names);

	if (differs) {
		snprintf(c->names + len, sizeof(c->names) - len, "%s%s", len > 0 ? ", " : "", name);
		c->count++;
	}
	return differs;
}

/*
 * What a HUP cannot change (the sockets, the worker table and the shared per-address
 * table are made once; the privileges are dropped for good) keeps its running value,
 * and the warning names each setting that was changed.
 */
static void sv_keep_restart_only(struct config *n, const struct config *o)
{
	struct sv_changes c = {.names = "", .count = 0};

	if (sv_changed(&c, "listen", !same_listeners(n, o))) {
		memcpy(n->listen, o->listen, sizeof(n->listen));
		n->nlisten = o->nlisten;
	}
	if (sv_changed(&c, "workers", n->workers != o->workers))
		n->workers = o->workers;
	if (sv_changed(&c, "backend", n->backend != o->backend))
		n->backend = o->backend;
	if (sv_changed(&c, "offload", n->offload != o->offload))
		n->offload = o->offload;
	if (sv_changed(&c, "max-conns-per-ip", n->max_conns_per_ip != o->max_conns_per_ip))
		n->max_conns_per_ip = o->max_conns_per_ip;
	if (sv_changed(&c, "backlog", n->backlog != o->backlog))
		n->backlog = o->backlog;
	if (sv_changed(&c, "user", strcmp(n->user, o->user) != 0))
		memcpy(n->user, o->user, sizeof(n->user));
	if (sv_changed(&c, "metrics", strcmp(n->metrics, o->metrics) != 0))
		memcpy(n->metrics, o->metrics, sizeof(n->metrics));
	if (c.count > 0)
		log_warnx("reload: %s change%s only on a restart; keeping the running value%s",
			  c.names, c.count == 1 ? "s" : "", log_plural(c.count));
}

static void sv_set_banner(struct supervisor *sv)
{
	sv->banner[0] = '\0';
	if (sv->cfg.banner[0] != '\0')
		snprintf(sv->banner, sizeof(sv->banner), "%s\r\n", sv->cfg.banner);
}

/* HUP: re-read the configuration, then replace the workers one slot at a time. */
static void sv_reload(struct supervisor *sv)
{
	struct config ncfg;
	struct config_error err;

	if (sv->rolling) {
		sv->reload_pending = 1;
		return;
	}
	if (config_load(&ncfg, sv->argc, sv->argv, &err) != 0) {
		log_warnx("reload: %s; keeping the running configuration", err.msg);
		return;
	}
	sv_keep_restart_only(&ncfg, &sv->cfg);
	sv->cfg = ncfg;
	log_init(sv->cfg.verbosity);
	sv_set_banner(sv);
	log_msg(LOG_LVL_NOTICE, "reload: rolling restart of %u worker%s", sv->cfg.workers,
		log_plural(sv->cfg.workers));
	sd_notify_state("RELOADING=1\nSTATUS=rolling restart of the workers");
	sv->rolling = 1;
	sv->roll_slot = 0;
	sv->roll_new = -1;
}

static void sv_roll_step(struct supervisor *sv)
{
	if (!sv->rolling)
		return;
	if (sv->roll_new < 0) {
		sv->roll_new = sv_spawn(sv, sv->roll_slot);
		sv->roll_deadline = sv->now + SV_ROLL_WAIT_MS;
		return;
	}
	if (__atomic_load_n(&sv->sh->slots[sv->roll_new].state, __ATOMIC_ACQUIRE) != SLOT_READY &&
	    sv->now < sv->roll_deadline)
		return;
	/* The new worker accepts on the slot's sockets: the old one may drain. */
	sv_signal_slot(sv, sv->roll_slot, sv->roll_new, SIGTERM);
	sv->roll_new = -1;
	if (++sv->roll_slot < sv->cfg.workers)
		return;
	sv_roll_end(sv, "done");
}

static void sv_signals(struct supervisor *sv);

static void sv_tick(struct supervisor *sv)
{
	/* Signals first: a TERM or INT sent to the whole group is pending here before any
	 * worker can act on its own copy and exit, so it is seen before that exit is, and
	 * the exit is not taken for a death. */
	sv_signals(sv);
	sv_reap(sv);
	sv_check_stuck(sv);
	if (sv->stopping) {
		if (sv->now >= sv->stop_deadline)
			for (unsigned idx = 0; idx < sv->nprocs; idx++)
				if (sv->procs[idx].pid != 0)
					kill(sv->procs[idx].pid, SIGKILL);
		return;
	}
	sv_respawn_due(sv);
	sv_roll_step(sv);
	if (!sv->ready_logged && sv_ready_count(sv) >= sv->cfg.workers) {
		sv->ready_logged = 1;
		log_msg(LOG_LVL_NOTICE, "ready: %u worker%s accepting", sv->cfg.workers,
			log_plural(sv->cfg.workers));
		sv_status(sv, "READY=1\n");
	}
	if (sv->ready_logged && sv->now >= sv->next_status)
		sv_status(sv, "");
	sv_watchdog(sv);
}

static int sv_busy(const struct supervisor *sv)
{
	for (unsigned s = 0; s < sv->cfg.workers; s++)
		if (sv->slots[s].due)
			return 1;
	return !sv->ready_logged || sv->rolling || sv->stopping;
}

static void sv_handle(struct supervisor *sv, int sig)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		if (sv->stopping)
			sv_stop_now(sv);
		else
			sv_stop(sv);
		break;
	case SIGHUP:
		if (!sv->stopping)
			sv_reload(sv);
		break;
	case SIGUSR1:
		sv_log_stats(sv);
		break;
	default: /* SIGCHLD: the tick reaps */
		break;
	}
}

/*
 * process_* for the supervisor and every worker it has (a dead worker's CPU time
 * stays in the supervisor's cutime once reaped, so the counter never goes back).
 * A family /proc cannot show for every process is left out rather than wrong.
 */
static void sv_process(const struct supervisor *sv, struct metrics_process *p)
{
	struct metrics_proc_sample s;
	uint64_t ticks, pages;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), fds;
	struct rlimit rl;
	int ok = metrics_proc_read(0, &s) == 0;

	p->start_time = sv->start_time;
	p->max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
			     ? (long)rl.rlim_cur
			     : -1;
	ticks = s.ticks + s.child_ticks;
	pages = s.pages;
	fds = s.fds;
	for (unsigned idx = 0; ok && idx < sv->nprocs; idx++) {
		if (sv->procs[idx].pid == 0)
			continue;
		ok = metrics_proc_read(sv->procs[idx].pid, &s) == 0;
		ticks += s.ticks;
		pages += s.pages;
		fds = fds < 0 || s.fds < 0 ? -1 : fds + s.fds;
	}
	p->cpu_seconds = ok && hz > 0 ? (double)ticks / (double)hz : -1;
	p->rss_bytes = ok && page > 0 ? pages * (uint64_t)page : 0;
	p->open_fds = ok ? fds : -1;
}

/* The per-listener rows: the retired totals plus every live process's. */
static void sv_listener_counters(struct supervisor *sv)
{
	for (unsigned r = 0; r < sv->nlrows; r++) {
		memcpy(sv->lrows[r].v, sv->lretired[r], sizeof(sv->lrows[r].v));
		for (unsigned idx = 0; idx < sv->nprocs; idx++)
			for (int c = 0; sv->procs[idx].pid != 0 && c < LSTAT_COUNT; c++)
				sv->lrows[r].v[c] +=
				    stats_lget(&sv->sh->slots[idx], r, (enum stats_lcounter)c);
	}
}

/* Names the rows while the listener set exists (it is closed on TERM, while
 * metrics are still served). Listeners past the last row share it: "other". */
static void sv_name_listener_rows(struct supervisor *sv)
{
	unsigned n = sv->ls.n < STATS_LISTENERS ? sv->ls.n : STATS_LISTENERS;

	sv->lrows = calloc(n ? n : 1, sizeof(*sv->lrows));
	if (sv->lrows == NULL)
		fatalx(EXIT_OSERR, "cannot allocate the listener table: %s", strerror(errno));
	for (unsigned i = 0; i < n; i++) {
		const struct listener *l = &sv->ls.v[i];
		int other = i == STATS_LISTENERS - 1 && sv->ls.n > STATS_LISTENERS;

		snprintf(sv->lrows[i].name, sizeof(sv->lrows[i].name), "%s", other ? "other" : l->name);
		sv->lrows[i].service = other ? "" : listen_service_name(l->spec.service);
		sv->lrows[i].udp = !other && l->spec.proto == LISTEN_UDP;
	}
	sv->nlrows = n;
}

static char *sv_metrics_body(void *arg)
{
	struct supervisor *sv = arg;
	uint64_t (*per)[STAT_COUNT] = calloc(sv->cfg.workers, sizeof(*per));
	struct metrics_snapshot snap = {
		.nworkers = sv->cfg.workers,
		.live_workers = sv_live(sv),
		.build = {.version = ECHOD_VERSION,
			  .backend = config_backend_name(sv->backend),
			  .sd = sd_proto_name(),
			  .seccomp = sv->cfg.seccomp && sandbox_available() ? "on" : "off"},
	};
	char *body;

	if (per == NULL)
		return NULL;
	for (unsigned s = 0; s < sv->cfg.workers; s++)
		sv_counters(sv, (int)s, per[s]);
	snap.per_worker = (const uint64_t(*)[STAT_COUNT])per;
	sv_listener_counters(sv);
	snap.listeners = sv->lrows;
	snap.nlisteners = sv->nlrows;
	sv_process(sv, &snap.proc);
	body = metrics_render(&snap);
	free(per);
	return body;
}

static void sv_signals(struct supervisor *sv)
{
	struct signalfd_siginfo si;

	while (read(sv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		sv_handle(sv, (int)si.ssi_signo);
}

static void sv_loop(struct supervisor *sv)
{
	struct pollfd p[1 + METRICS_LISTENERS + METRICS_CLIENTS];

	while (!sv->stopping || sv_live(sv) > 0) {
		int ms = sv_busy(sv) ? SV_TICK_MS : SV_IDLE_TICK_MS, n = 1, r;
		uint64_t prev;

		if (sv->watchdog_ms > 0 && (uint64_t)ms > sv->watchdog_ms)
			ms = (int)sv->watchdog_ms;
		p[0] = (struct pollfd){.fd = sv->sigfd, .events = POLLIN};
		n += metrics_pollfds(&sv->metrics, p + 1);
		r = poll(p, (nfds_t)n, ms);
		if (r < 0 && errno != EINTR)
			log_warn("poll");
		prev = sv->now;
		sv->now = timer_now_ms();
		/* Polls last a second at most: a longer gap means we were stopped too. */
		if (sv->now - prev > SV_STUCK_MS / 2)
			sv->awake_since = sv->now;
		if (r > 0 && p[0].revents != 0)
			sv_signals(sv);
		metrics_serve(&sv->metrics, p + 1, r > 0 ? n - 1 : 0, sv->now, sv_metrics_body, sv);
		sv_tick(sv);
	}
}

/*
 * Socket activation: the sockets named "metrics" (FileDescriptorName=metrics) serve
 * /metrics, the others echo. Returns how many echo sockets are left at the start
 * of socks.
 */
static unsigned sv_take_metrics(struct supervisor *sv, struct sd_socket *socks, unsigned n)
{
	unsigned kept = 0;
	char why[256];

	for (unsigned i = 0; i < n; i++) {
		if (strcmp(socks[i].name, SD_NAME_METRICS) != 0) {
			socks[kept++] = socks[i];
			continue;
		}
		if (metrics_adopt(&sv->metrics, socks[i].fd, socks[i].type, why, sizeof(why)) < 0)
			fatalx(EXIT_CONFIG, "%s", why);
	}
	if (kept == 0)
		fatalx(EXIT_CONFIG, "socket activation: systemd passed only sockets named '%s', "
				    "none to echo on (is echod.socket running?)", SD_NAME_METRICS);
	return kept;
}

/* Our own metrics socket, unless systemd passed one (that one wins). */
static void sv_open_metrics(struct supervisor *sv)
{
	char why[512];
	int rc;

	if (sv->cfg.metrics[0] == '\0')
		return;
	if (sv->metrics.passed) {
		log_warnx("--metrics=%s ignored: metrics are served on the socket systemd passed",
			  sv->cfg.metrics);
		return;
	}
	rc = metrics_open(&sv->metrics, sv->cfg.metrics, (int)sv->cfg.backlog, why, sizeof(why));
	if (rc < 0)
		fatalx(-rc, "--metrics: %s", why);
}

/* Never an endpoint nothing can reach: a socket of our own in a namespace with only
 * loopback (PrivateNetwork=yes) is said to be unreachable from outside. */
static void sv_log_metrics(const struct supervisor *sv)
{
	const struct metrics_server *m = &sv->metrics;

	for (unsigned i = 0; m->passed && i < m->nfds; i++)
		log_msg(LOG_LVL_NOTICE, "metrics on the socket passed by systemd (fd %d, %s)",
			m->fds[i], m->names[i]);
	if (m->passed || m->nfds == 0)
		return;
	if (metrics_netns_isolated())
		log_warnx("metrics on %s inside a network namespace that has no interface but "
			  "loopback (PrivateNetwork=yes?): nothing outside it can reach them; "
			  "let systemd pass a socket named 'metrics' (echod-metrics.socket) instead",
			  m->names[0]);
	else
		log_msg(LOG_LVL_NOTICE, "metrics on http://%s/metrics", m->names[0]);
}

/* Listeners other than the default (tcp::7): someone asked for them. */
static int sv_listen_given(const struct config *cfg)
{
	struct listen_spec def;
	char why[64];

	if (cfg->nlisten != 1 || listen_parse("tcp::7", &def, why, sizeof(why)) < 0)
		return 1;
	return def.proto != cfg->listen[0].proto || def.service != cfg->listen[0].service ||
	       def.any != cfg->listen[0].any || def.port != cfg->listen[0].port ||
	       strcmp(def.host, cfg->listen[0].host) != 0;
}

/* Sockets from systemd when it passed any, else our own: one per worker slot. */
static void sv_open(struct supervisor *sv)
{
	struct sd_socket *socks;
	char why[512];
	int n = sd_take_sockets(&socks, why, sizeof(why));

	if (n < 0)
		fatalx(EXIT_CONFIG, "%s", why);
	if (n > 0) {
		unsigned echo = sv_take_metrics(sv, socks, (unsigned)n);

		if (listen_adopt(&sv->ls, socks, echo, why, sizeof(why)) < 0)
			fatalx(EXIT_CONFIG, "%s", why);
		free(socks);
		log_info("socket activation: %d socket%s from systemd (%s)", n,
			 log_plural((unsigned)n), sd_proto_name());
		if (sv_listen_given(&sv->cfg))
			log_warnx("socket activation: --listen / listen = is ignored; the sockets "
				  "come from systemd (the socket unit's ListenStream=, "
				  "ListenDatagram=)");
	} else if ((n = listen_open_all(&sv->ls, sv->cfg.listen, sv->cfg.nlisten, sv->cfg.workers,
					(int)sv->cfg.backlog, why, sizeof(why))) < 0) {
		fatalx(-n, "%s%s", n == LISTEN_ERR_USAGE ? "--listen: " : "", why);
	}
	sv_open_metrics(sv);
	sv_name_listener_rows(sv);
	for (unsigned i = 0; i < sv->ls.n; i++) {
		enum listen_service svc = sv->ls.v[i].spec.service;

		/* echo, the default, is not named: the line stays what it always was */
		int offloaded = sv->offload && svc == SERVICE_ECHO &&
				sv->ls.v[i].spec.proto == LISTEN_TCP;

		log_msg(LOG_LVL_NOTICE, "listening on %s%s%s%s workers=%u backend=%s%s%s",
			sv->ls.v[i].name, listen_stack_note(&sv->ls.v[i]),
			svc != SERVICE_ECHO ? " service=" : "",
			svc != SERVICE_ECHO ? listen_service_name(svc) : "", sv->cfg.workers,
			config_backend_name(sv->backend), offloaded ? " offload=sockmap" : "",
			sv->ls.shared ? " (socket activation)" : "");
	}
	sv_log_metrics(sv);
}

/* Once bound: nothing the supervisor or a worker does later needs privileges. */
static void sv_drop_privileges(struct supervisor *sv)
{
	struct priv_ids ids;
	char why[300];
	int rc;

	if (sv->cfg.user[0] != '\0') {
		if (priv_resolve(sv->cfg.user, &ids, why, sizeof(why)) < 0)
			fatalx(EXIT_USAGE, "--user: %s", why);
		if (priv_drop(&ids, why, sizeof(why)) < 0)
			fatalx(EXIT_OSERR, "--user: %s", why);
		log_info("running as uid %lu gid %lu", (unsigned long)ids.uid,
			 (unsigned long)ids.gid);
	}
	rc = priv_no_new_privs();
	if (rc < 0)
		log_warnx("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(-rc));
}

static void sv_init(struct supervisor *sv, const struct config *cfg, int argc, char **argv)
{
	long nofile = net_raise_nofile();
	struct timespec ts;

	memset(sv, 0, sizeof(*sv));
	sv->cfg = *cfg;
	sv->argc = argc;
	sv->argv = argv;
	sv->roll_new = -1;
	sv->now = timer_now_ms();
	metrics_init(&sv->metrics);
	if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
		sv->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (nofile < 0)
		log_warnx("cannot raise the descriptor limit: %s", strerror((int)-nofile));
	sv->offload = resolve_offload(sv, cfg, 3 * cfg->workers + 1) == 0;
	sv->backend = resolve_backend(cfg, sv->offload);
	sv_set_banner(sv);
	/* Room for a full set of workers, a set draining after a reload and one more. */
	sv->nprocs = 3 * cfg->workers + 1;
	sv->procs = calloc(sv->nprocs, sizeof(*sv->procs));
	sv->slots = calloc(cfg->workers, sizeof(*sv->slots));
	sv->retired = calloc(cfg->workers, sizeof(*sv->retired));
	sv->watchdog_ms = sd_proto_watchdog_usec() / 2000;
	sv->sh = stats_create(sv->nprocs, limits_buckets(cfg->max_conns_per_ip));
	if (sv->procs == NULL || sv->slots == NULL || sv->retired == NULL || sv->sh == NULL)
		fatalx(EXIT_OSERR, "cannot allocate the worker table: %s", strerror(errno));
}

int supervisor_run(const struct config *cfg, int argc, char **argv)
{
	static struct supervisor sv;
	sigset_t mask;

	sv_init(&sv, cfg, argc, argv);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGCHLD);
	/* Blocked, not read here: a worker inherits the mask, so a stop now that comes
	 * before it has its own signalfd waits for it instead of killing it. */
	sigaddset(&mask, WORKER_STOP_SIGNAL);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		fatalx(EXIT_OSERR, "sigprocmask: %s", strerror(errno));
	sigdelset(&mask, WORKER_STOP_SIGNAL);
	sv.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sv.sigfd < 0)
		fatalx(EXIT_OSERR, "signalfd: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	sv_open(&sv);
	sv_drop_privileges(&sv);
	for (unsigned s = 0; s < sv.cfg.workers; s++)
		if (sv_spawn(&sv, s) < 0)
			fatalx(EXIT_OSERR, "cannot start worker %u", s);
	sv_loop(&sv);
	metrics_close(&sv.metrics);
	close(sv.sigfd);
	log_msg(LOG_LVL_NOTICE, "stopped");
	offload_unload(&sv.offload_maps);
	stats_destroy(sv.sh);
	free(sv.procs);
	free(sv.slots);
	free(sv.retired);
	free(sv.lrows);
	return 0;
}
