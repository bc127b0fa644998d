/*
 * echo-bench: a wrk-style load generator for RFC 862 echo servers.
 *
 * main() only validates what depends on the machine (CPUs, descriptor limits,
 * whether the target answers), lays out the run and hands it to run.c; the
 * per-connection work is in loop.c and the figures are printed by report.c.
 */
#include "args.h"
#include "net.h"
#include "report.h"
#include "run.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Far enough under the 20000 hard cap to leave room for threads, epoll and stdio. */
#define FDS_PER_PROC_MAX 15000UL
#define FD_RESERVE	 64UL
#define STREAM_WINDOW	 (256ULL * 1024)

static void usage_error(const char *msg)
{
	fprintf(stderr, "echo-bench: %s\nTry 'echo-bench --help' for usage.\n", msg);
	exit(BENCH_EXIT_USAGE);
}

static int check_cpus(const struct bench_args *a, char *err, size_t len)
{
	cpu_set_t allowed;

	if (a->ncpus == 0)
		return 0;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
		CPU_ZERO(&allowed);
	for (int i = 0; i < a->ncpus; i++) {
		if (!CPU_ISSET(a->cpus[i], &allowed)) {
			snprintf(err, len, "invalid value for --cpu: CPU %d is not available",
				 a->cpus[i]);
			return -1;
		}
	}
	return 0;
}

/*
 * Raises the soft descriptor limit to the hard one (a failure leaves the soft one,
 * which then sets the cap) and returns the descriptor limit, RLIM_INFINITY if none.
 */
static rlim_t raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return RLIM_INFINITY; /* cannot say: the connects will, one by one */
	if (rl.rlim_cur != rl.rlim_max) {
		struct rlimit want = {rl.rlim_max, rl.rlim_max};

		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl.rlim_cur = rl.rlim_max;
		else
			fprintf(stderr,
				"echo-bench: cannot raise the descriptor limit to %llu: %s\n",
				(unsigned long long)rl.rlim_max, strerror(errno));
	}
	return rl.rlim_cur;
}

/* Raises the descriptor limit and says how many processes the connections need. */
static unsigned plan_processes(const struct bench_args *a, char *err, size_t len)
{
	rlim_t lim = raise_fd_limit();
	unsigned long cap = FDS_PER_PROC_MAX;

	if (lim != RLIM_INFINITY && lim < cap + FD_RESERVE + a->threads)
		cap = lim > FD_RESERVE + a->threads ? (unsigned long)lim - FD_RESERVE - a->threads
						    : 1;
	if (a->conns <= cap)
		return 1;
	if (a->mode != MODE_IDLE) {
		snprintf(err, len,
			 "invalid value '%lu' for -c: more than %lu connections in one process "
			 "(descriptor limit %llu; only --mode idle splits over processes)",
			 a->conns, cap, (unsigned long long)lim);
		return 0;
	}
	return (unsigned)((a->conns + cap - 1) / cap);
}

/* The window's times are known once every connection is open (run.h); these are bounds. */
static void plan_run(struct run_plan *plan, const struct bench_args *a)
{
	plan->args = a;
	plan->stream_window = a->size * 4 > STREAM_WINDOW ? a->size * 4 : STREAM_WINDOW;
	plan->t_start = now_ns();
	plan->t_open_deadline = plan->t_start + a->timeout_ns;
	plan->t_stop = plan->t_open_deadline + a->warmup_ns + a->duration_ns;
	if (a->mode == MODE_IDLE) {
		/* Opening may take a while at scale, but not forever: 1 ms a connection. */
		plan->t_open_deadline = plan->t_start + a->timeout_ns + a->conns * 1000000ULL;
		plan->t_stop = plan->t_open_deadline + a->duration_ns;
	}
}

/* The loaded modes measure nothing unless every connection opened: say so, and why. */
static void report_open_failure(const struct bench_args *a, const struct bench_result *r)
{
	if (r->open_ok || a->mode == MODE_IDLE)
		return;
	fprintf(stderr, "echo-bench: only %llu of %lu connections open after %.2fs%s",
		(unsigned long long)r->opened, a->conns, r->open_s,
		r->open_s * 1e9 >= (double)a->timeout_ns ? " (--timeout)" : " (interrupted)");
	if (r->open_errno)
		fprintf(stderr, "; last error: %s", strerror(r->open_errno));
	fprintf(stderr, "\n");
}

int main(int argc, char **argv)
{
	static struct bench_args a;
	static struct run_plan plan;
	static struct bench_result r;
	struct run_shared *sh;
	unsigned nprocs;
	char err[512];
	int rc;

	if (bench_args_parse(&a, argc, argv, err, sizeof(err)) < 0)
		usage_error(err);
	if (a.help) {
		fputs(bench_usage, stdout);
		return 0;
	}
	if (check_cpus(&a, err, sizeof(err)) < 0)
		usage_error(err);
	nprocs = plan_processes(&a, err, sizeof(err));
	if (nprocs == 0)
		usage_error(err);
	signal(SIGPIPE, SIG_IGN);
	if (net_pick_address(a.host, a.port, a.timeout_ns, &plan.addr, &plan.addrlen, err,
			     sizeof(err)) < 0) {
		fprintf(stderr, "echo-bench: %s\n", err);
		return 1;
	}
	sh = run_shared_alloc(run_stat_slots(&a, nprocs), a.conns);
	if (sh == NULL) {
		perror("echo-bench: mmap");
		return 1;
	}
	r.nprocs = nprocs;
	if (!a.json)
		report_header(stdout, &a, &r);
	plan_run(&plan, &a);
	rc = run_bench(&plan, sh, nprocs, !a.json && isatty(STDOUT_FILENO));
	if (rc < 0)
		return 1;
	result_collect(&r, &plan, sh, nprocs);
	report_open_failure(&a, &r);
	if (a.json)
		report_json(stdout, &a, &r);
	else
		report_text(stdout, &a, &r);
	run_shared_free(sh);
	return r.err_total ? 1 : 0;
}
