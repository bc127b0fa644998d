/*
 * run: starts the event-loop threads (in forked children when idle mode needs more
 * descriptors than one process may hold), prints progress, and enforces the hard
 * deadline that guarantees echo-bench never hangs.
 */
#include "run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S       1000000000ULL
#define WATCH_SLEEP_NS (20ULL * 1000000ULL)
/* Beyond every worker's own drain deadline; reaching it means something is wrong. */
#define HARD_SLACK_NS (2ULL * NS_PER_S)

const char *const err_kind_names[ERR_KINDS] = {"mismatch", "reset", "timeout", "short", "connect"};

struct proc_slice {
	unsigned long first, count;
	unsigned threads, stat_base;
};

struct launch {
	unsigned n;
	pthread_t *tids;
	struct worker_spec *specs;
};

static struct run_shared *sigint_target;

static size_t align64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

struct run_shared *run_shared_alloc(unsigned nstats, unsigned long conns)
{
	size_t head = align64(sizeof(struct run_shared));
	size_t stats = align64(nstats * sizeof(struct thread_stats));
	size_t counts = conns * sizeof(uint64_t);
	size_t len = head + stats + counts + conns;
	char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct run_shared *sh;

	if (base == MAP_FAILED)
		return NULL;
	sh = (struct run_shared *)base;
	sh->len = len;
	sh->nstats = nstats;
	sh->stats = (struct thread_stats *)(base + head);
	sh->conn_count = (uint64_t *)(base + head + stats);
	sh->conn_whole = (unsigned char *)(base + head + stats + counts);
	for (unsigned i = 0; i < nstats; i++)
		hist_init(&sh->stats[i].lat);
	return sh;
}

void run_shared_free(struct run_shared *sh)
{
	munmap(sh, sh->len);
}

static unsigned long slice_start(const struct bench_args *a, unsigned nprocs, unsigned p)
{
	return (unsigned long)((unsigned long long)a->conns * p / nprocs);
}

static struct proc_slice proc_slice(const struct bench_args *a, unsigned nprocs, unsigned p)
{
	struct proc_slice s = {0, 0, 0, 0};

	for (unsigned q = 0; q <= p; q++) {
		s.stat_base += s.threads;
		s.first = slice_start(a, nprocs, q);
		s.count = slice_start(a, nprocs, q + 1) - s.first;
		s.threads = s.count < a->threads ? (unsigned)s.count : a->threads;
	}
	return s;
}

unsigned run_stat_slots(const struct bench_args *a, unsigned nprocs)
{
	struct proc_slice s = proc_slice(a, nprocs, nprocs - 1);

	return s.stat_base + s.threads;
}

static void *thread_main(void *arg)
{
	worker_run(arg);
	return NULL;
}

static int start_threads(const struct run_plan *plan, struct run_shared *sh,
			 const struct proc_slice *s, struct launch *l)
{
	const struct bench_args *a = plan->args;

	l->n = 0;
	l->tids = calloc(s->threads, sizeof(*l->tids));
	l->specs = calloc(s->threads, sizeof(*l->specs));
	if (!l->tids || !l->specs)
		return -1;
	for (unsigned i = 0; i < s->threads; i++) {
		struct worker_spec *w = &l->specs[i];
		unsigned long lo = s->count * i / s->threads, hi = s->count * (i + 1) / s->threads;

		w->plan = plan;
		w->shared = sh;
		w->stats = &sh->stats[s->stat_base + i];
		w->first = s->first + lo;
		w->count = hi - lo;
		w->cpu = a->ncpus ? a->cpus[(s->stat_base + i) % (unsigned)a->ncpus] : -1;
		if (pthread_create(&l->tids[i], NULL, thread_main, w) != 0)
			return -1;
		l->n++;
	}
	return 0;
}

static void join_threads(struct launch *l)
{
	for (unsigned i = 0; i < l->n; i++)
		pthread_join(l->tids[i], NULL);
	free(l->tids);
	free(l->specs);
}

static bool any_fatal(const struct run_shared *sh)
{
	for (unsigned i = 0; i < sh->nstats; i++) {
		if (atomic_load(&sh->stats[i].fatal))
			return true;
	}
	return false;
}

static bool all_done(const struct run_shared *sh)
{
	for (unsigned i = 0; i < sh->nstats; i++) {
		if (!atomic_load(&sh->stats[i].done))
			return false;
	}
	return true;
}

uint64_t run_window_start(const struct run_plan *plan, const struct run_shared *sh)
{
	uint64_t go;

	if (plan->args->mode == MODE_IDLE)
		return atomic_load(&sh->hold_start);
	go = atomic_load(&sh->go);
	return go == 0 || go == GO_FAILED ? 0 : go + plan->args->warmup_ns;
}

struct totals {
	uint64_t msgs, rx, errors, held, open, retries;
};

static struct totals sum_live(const struct run_shared *sh)
{
	struct totals t = {0, 0, 0, 0, 0, 0};

	for (unsigned i = 0; i < sh->nstats; i++) {
		const struct thread_stats *s = &sh->stats[i];

		t.msgs += atomic_load_explicit(&s->live_msgs, memory_order_relaxed);
		t.rx += atomic_load_explicit(&s->live_rx, memory_order_relaxed);
		t.held += atomic_load_explicit(&s->held, memory_order_relaxed);
		t.open += atomic_load_explicit(&s->open_now, memory_order_relaxed);
		t.retries += atomic_load_explicit(&s->retries, memory_order_relaxed);
		for (int k = 0; k < ERR_KINDS; k++)
			t.errors += atomic_load_explicit(&s->errors[k], memory_order_relaxed);
	}
	return t;
}

static const char *phase_label(const struct run_plan *plan, const struct run_shared *sh,
			       uint64_t now)
{
	uint64_t start = run_window_start(plan, sh);

	if (start == 0)
		return " (opening)";
	if (plan->args->mode == MODE_IDLE)
		return now < start + plan->args->duration_ns ? " (holding)" : " (verifying)";
	if (now < start)
		return " (warmup)";
	return now < start + plan->args->duration_ns ? "" : " (draining)";
}

/* One line a second, with rates over that second, labelled by the phase it was mostly in. */
static void print_progress(const struct run_plan *plan, const struct run_shared *sh,
			   struct totals *prev, uint64_t now)
{
	struct totals t = sum_live(sh);
	double secs = (double)(now - plan->t_start) / 1e9;

	if (plan->args->mode == MODE_IDLE)
		printf("  %6.1fs  held %llu/%lu  errors %llu%s\n", secs, (unsigned long long)t.held,
		       plan->args->conns, (unsigned long long)t.errors, phase_label(plan, sh, now));
	else if (atomic_load(&sh->go) == 0)
		printf("  %6.1fs  open %llu/%lu  retries %llu%s\n", secs,
		       (unsigned long long)t.open, plan->args->conns, (unsigned long long)t.retries,
		       phase_label(plan, sh, now));
	else
		printf("  %6.1fs  %12.1f req/s  %10.2f MB/s  open %llu  errors %llu%s\n", secs,
		       (double)(t.msgs - prev->msgs), (double)(t.rx - prev->rx) / 1e6,
		       (unsigned long long)t.open, (unsigned long long)t.errors,
		       phase_label(plan, sh, now - NS_PER_S / 2));
	fflush(stdout);
	*prev = t;
}

static void nap(void)
{
	struct timespec ts = {0, (long)WATCH_SLEEP_NS};

	nanosleep(&ts, NULL);
}

/* Children count as finished once reaped; a child that crashes never marks its stats done. */
static bool children_done(pid_t *pids, unsigned n, int *failed)
{
	bool done = true;

	for (unsigned i = 0; i < n; i++) {
		int status;

		if (pids[i] <= 0)
			continue;
		if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
				*failed = 1;
			pids[i] = 0;
		} else {
			done = false;
		}
	}
	return done;
}

static int watch(const struct run_plan *plan, struct run_shared *sh, bool progress, pid_t *pids,
		 unsigned npids)
{
	uint64_t deadline = plan->t_stop + plan->args->timeout_ns + DRAIN_GRACE_NS + HARD_SLACK_NS;
	uint64_t tick = plan->t_start + NS_PER_S;
	struct totals prev = {0, 0, 0, 0, 0, 0};
	int failed = 0;

	for (;;) {
		uint64_t now = now_ns();
		bool done = npids ? children_done(pids, npids, &failed) : all_done(sh);

		if (done)
			return failed ? -1 : 0;
		if (now >= deadline) {
			fprintf(stderr, "echo-bench: workers overran the hard deadline\n");
			return -1;
		}
		if (progress && now >= tick) {
			print_progress(plan, sh, &prev, now);
			tick += NS_PER_S;
		}
		nap();
	}
}

static void on_sigint(int sig)
{
	(void)sig;
	if (sigint_target)
		atomic_store(&sigint_target->interrupted, 1);
}

/* The first ^C ends the measured window early and still reports; a second one kills. */
static void catch_sigint(struct run_shared *sh)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigint_target = sh;
	sigaction(SIGINT, &sa, NULL);
}

static int run_in_threads(const struct run_plan *plan, struct run_shared *sh, bool progress)
{
	struct proc_slice s = proc_slice(plan->args, 1, 0);
	struct launch l;
	int rc;

	if (start_threads(plan, sh, &s, &l) < 0) {
		fprintf(stderr, "echo-bench: cannot start threads: %s\n", strerror(errno));
		/* Threads already started stop on their own at t_stop. */
		atomic_store(&sh->interrupted, 1);
		join_threads(&l);
		return -1;
	}
	rc = watch(plan, sh, progress, NULL, 0);
	if (rc < 0)
		return rc;
	join_threads(&l);
	return any_fatal(sh) ? -1 : 0;
}

static void child_main(const struct run_plan *plan, struct run_shared *sh, unsigned nprocs,
		       unsigned p)
{
	struct proc_slice s = proc_slice(plan->args, nprocs, p);
	struct launch l;
	int rc = start_threads(plan, sh, &s, &l);

	join_threads(&l);
	_exit(rc < 0 || any_fatal(sh) ? 1 : 0);
}

static void kill_children(pid_t *pids, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (pids[i] > 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
	}
}

static int run_in_processes(const struct run_plan *plan, struct run_shared *sh, unsigned nprocs,
			    bool progress)
{
	pid_t *pids = calloc(nprocs, sizeof(*pids));
	int rc = 0;

	if (pids == NULL)
		return -1;
	fflush(NULL); /* or children would inherit and repeat buffered output */
	for (unsigned p = 0; p < nprocs && rc == 0; p++) {
		pids[p] = fork();
		if (pids[p] == 0)
			child_main(plan, sh, nprocs, p);
		if (pids[p] < 0) {
			fprintf(stderr, "echo-bench: fork: %s\n", strerror(errno));
			rc = -1;
		}
	}
	if (rc == 0)
		rc = watch(plan, sh, progress, pids, nprocs);
	kill_children(pids, nprocs);
	free(pids);
	return rc;
}

int run_bench(const struct run_plan *plan, struct run_shared *sh, unsigned nprocs, bool progress)
{
	catch_sigint(sh);
	if (nprocs <= 1)
		return run_in_threads(plan, sh, progress);
	return run_in_processes(plan, sh, nprocs, progress);
}
