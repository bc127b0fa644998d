/* report: see report.h. Rates are over the measured window, never over warmup or drain. */
#include "report.h"

#include "net.h"

#include <stdlib.h>
#include <string.h>

static const char *const request_units[] = {"msgs",   "blocks", "cycles",
					    "echoes", "blocks", "blocks"};
static const char *const fair_units[] = {"msgs", "bytes", "cycles", "echoes", "bytes", "bytes"};

/* The bytes that measure the transfer: sent ones for a send-only run. */
static uint64_t moved(const struct bench_args *a, const struct bench_result *r)
{
	return a->mode == MODE_SEND ? r->tx : r->rx;
}

/*
 * Idle mode holds connections rather than loading them, so it has no fairness figure.
 * Fairness is judged over the connections open for the whole window: one that opened
 * late or broke could not have had its share. Churn's connections never last a
 * window: its figure is over the slots, each a loop of connections.
 */
static void collect_fairness(struct bench_result *r, const struct bench_args *a,
			     const struct run_shared *sh)
{
	const unsigned char *whole = a->mode == MODE_CHURN ? NULL : sh->conn_whole;

	for (unsigned long i = 0; i < a->conns; i++)
		r->whole += sh->conn_whole[i];
	r->fair =
	    a->mode != MODE_IDLE && fair_compute(sh->conn_count, whole, a->conns, &r->fr) == 0;
}

/* The threads' marks over the window, and what the opening got to. */
static void collect_open(struct bench_result *r, const struct run_plan *plan,
			 const struct run_shared *sh, uint64_t end)
{
	const struct bench_args *a = plan->args;
	uint64_t go = atomic_load(&sh->go);

	for (unsigned i = 0; i < sh->nstats; i++) {
		const struct thread_stats *s = &sh->stats[i];
		int e = atomic_load(&s->open_errno);

		r->retries += atomic_load(&s->retries);
		r->open_errno = e ? e : r->open_errno;
		r->win_min += s->win_seen ? s->win_min : 0;
		r->win_max += s->win_seen ? s->win_max : 0;
	}
	if (a->mode == MODE_IDLE) {
		uint64_t hold = atomic_load(&sh->hold_start);

		r->open_ok = hold != 0;
		r->opened = r->held;
		r->open_s = hold ? (double)(hold - plan->t_start) / 1e9 : 0.0;
		return;
	}
	r->open_ok = go != 0 && go != GO_FAILED;
	r->opened = r->open_ok ? a->conns : atomic_load(&sh->opened);
	if (r->open_ok)
		r->open_s = (double)(go - plan->t_start) / 1e9;
	else
		r->open_s =
		    (double)((go == GO_FAILED ? plan->t_open_deadline : end) - plan->t_start) / 1e9;
	/* The connections that never opened are connect errors: nothing was measured. */
	if (!r->open_ok)
		r->errors[ERR_CONNECT] += a->conns - r->opened;
}

static void add_stats(struct bench_result *r, const struct thread_stats *s)
{
	r->msgs += atomic_load(&s->msgs);
	r->rx += atomic_load(&s->rx_bytes);
	r->tx += atomic_load(&s->tx_bytes);
	r->held += atomic_load(&s->held);
	r->verified += atomic_load(&s->verified);
	for (int k = 0; k < ERR_KINDS; k++)
		r->errors[k] += atomic_load(&s->errors[k]);
	hist_merge(&r->lat, &s->lat);
}

void result_collect(struct bench_result *r, const struct run_plan *plan,
		    const struct run_shared *sh, unsigned nprocs)
{
	uint64_t start = run_window_start(plan, sh), end = 0, loop_end = 0;

	memset(r, 0, sizeof(*r));
	hist_init(&r->lat);
	r->nprocs = nprocs;
	for (unsigned i = 0; i < sh->nstats; i++) {
		add_stats(r, &sh->stats[i]);
		if (sh->stats[i].measure_end_ns > end)
			end = sh->stats[i].measure_end_ns;
		if (sh->stats[i].loop_end_ns > loop_end)
			loop_end = sh->stats[i].loop_end_ns;
	}
	collect_open(r, plan, sh, end ? end : now_ns());
	for (int k = 0; k < ERR_KINDS; k++)
		r->err_total += r->errors[k];
	/* Zero when interrupted before the window opened. */
	r->elapsed_s = start && end > start ? (double)(end - start) / 1e9 : 0.0;
	r->drain_s = r->elapsed_s > 0 && loop_end > end ? (double)(loop_end - end) / 1e9 : 0.0;
	collect_fairness(r, plan->args, sh);
	net_format_addr((const struct sockaddr *)&plan->addr, r->address, sizeof(r->address));
}

static double per_sec(uint64_t n, double secs)
{
	return secs > 0 ? (double)n / secs : 0.0;
}

static const char *fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1e6)
		snprintf(buf, len, "%.2fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.2fms", ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", ns / 1e9);
	return buf;
}

/* Decimal units: MB here is 10^6 bytes, the same as in MB/s. */
static const char *fmt_bytes(char *buf, size_t len, double b)
{
	if (b >= 1e9)
		snprintf(buf, len, "%.2fGB", b / 1e9);
	else if (b >= 1e6)
		snprintf(buf, len, "%.2fMB", b / 1e6);
	else if (b >= 1e3)
		snprintf(buf, len, "%.2fKB", b / 1e3);
	else
		snprintf(buf, len, "%.0fB", b);
	return buf;
}

static bool has_latency(const struct bench_args *a)
{
	return a->mode == MODE_PINGPONG || a->mode == MODE_CHURN;
}

void report_header(FILE *f, const struct bench_args *a, const struct bench_result *r)
{
	char d[32], s[32];

	fprintf(f, "Running %s %s test @ %s\n", fmt_ns(d, sizeof(d), (double)a->duration_ns),
		bench_mode_name(a->mode), a->target);
	fprintf(f, "  %u threads and %lu connections", a->threads, a->conns);
	if (r->nprocs > 1)
		fprintf(f, " in %u processes", r->nprocs);
	fprintf(f, ", %s %s", fmt_bytes(s, sizeof(s), (double)a->size),
		a->mode == MODE_STREAM || a->mode == MODE_SEND || a->mode == MODE_RECV
		    ? "blocks"
		    : "messages");
	if (a->mode == MODE_PINGPONG)
		fprintf(f, ", depth %u", a->depth);
	if (a->warmup_ns)
		fprintf(f, ", warmup %s", fmt_ns(d, sizeof(d), (double)a->warmup_ns));
	fprintf(f, "\n");
	fflush(f);
}

static const double pct_points[] = {50, 75, 90, 99, 99.9};
static const char *const pct_labels[] = {"50%", "75%", "90%", "99%", "99.9%"};

static void text_latency(FILE *f, const struct bench_args *a, const struct hist *h)
{
	char b1[32], b2[32], b3[32];

	fprintf(f, "  Latency %9s %10s %10s\n", "Avg", "Stdev", "Max");
	fprintf(f, "          %9s %10s %10s\n", fmt_ns(b1, sizeof(b1), hist_mean(h)),
		fmt_ns(b2, sizeof(b2), hist_stdev(h)), fmt_ns(b3, sizeof(b3), (double)hist_max(h)));
	if (!a->latency)
		return;
	fprintf(f, "  Latency Distribution\n");
	for (size_t i = 0; i < sizeof(pct_points) / sizeof(pct_points[0]); i++)
		fprintf(f, "  %7s %10s\n", pct_labels[i],
			fmt_ns(b1, sizeof(b1), (double)hist_percentile(h, pct_points[i])));
	fprintf(f, "  %7s %10s\n", "max", fmt_ns(b1, sizeof(b1), (double)hist_max(h)));
}

static void text_fairness(FILE *f, const struct bench_args *a, const struct bench_result *r)
{
	double ratio;

	if (r->fr.conns == 0) {
		fprintf(f, "  Fairness (%s/conn): no connection was open for the whole window\n",
			fair_units[a->mode]);
		return;
	}
	fprintf(f, "  Fairness (%s/conn): min %llu, median %llu, max %llu, max/min ",
		fair_units[a->mode], (unsigned long long)r->fr.min,
		(unsigned long long)r->fr.median, (unsigned long long)r->fr.max);
	if (fair_ratio(&r->fr, &ratio))
		fprintf(f, "%.2f", ratio);
	else
		fprintf(f, "inf");
	fprintf(f, ", unserved %llu (over the %llu %s)\n", (unsigned long long)r->fr.unserved,
		(unsigned long long)r->fr.conns,
		a->mode == MODE_CHURN ? "slots" : "connections open for the whole window");
}

static void text_open(FILE *f, const struct bench_args *a, const struct bench_result *r)
{
	fprintf(f, "  Connections: %llu of %lu open after %.2fs, %llu retries",
		(unsigned long long)r->opened, a->conns, r->open_s, (unsigned long long)r->retries);
	if (r->open_ok)
		fprintf(f, "; open in the window: min %llu, max %llu\n",
			(unsigned long long)r->win_min, (unsigned long long)r->win_max);
	else
		fprintf(f, "; not all, so nothing was measured\n");
}

static void text_errors(FILE *f, const struct bench_result *r)
{
	fprintf(f, "  Errors: %llu", (unsigned long long)r->err_total);
	for (int k = 0; k < ERR_KINDS; k++)
		fprintf(f, "%s%s %llu", k ? ", " : " (", err_kind_names[k],
			(unsigned long long)r->errors[k]);
	fprintf(f, ")\n");
}

void report_text(FILE *f, const struct bench_args *a, const struct bench_result *r)
{
	char b1[32], b2[32];

	text_open(f, a, r);
	if (!r->open_ok && a->mode != MODE_IDLE) {
		text_errors(f, r);
		return;
	}
	if (has_latency(a))
		text_latency(f, a, &r->lat);
	if (a->mode == MODE_IDLE)
		fprintf(f,
			"  Idle: %llu of %lu connections open and echoing after %.2fs, %llu still "
			"echoing after the hold\n",
			(unsigned long long)r->held, a->conns, r->open_s,
			(unsigned long long)r->verified);
	fprintf(f, "  %llu %s in %.2fs, %s %s (%s sent)\n", (unsigned long long)r->msgs,
		request_units[a->mode], r->elapsed_s, fmt_bytes(b1, sizeof(b1), (double)r->rx),
		a->mode == MODE_RECV || a->mode == MODE_SEND ? "received" : "echoed",
		fmt_bytes(b2, sizeof(b2), (double)r->tx));
	if (a->mode != MODE_IDLE) {
		fprintf(f, "  Requests/sec: %12.2f\n", per_sec(r->msgs, r->elapsed_s));
		fprintf(f, "  Transfer/sec: %12s\n",
			fmt_bytes(b1, sizeof(b1), per_sec(moved(a, r), r->elapsed_s)));
	}
	text_errors(f, r);
	if (r->fair)
		text_fairness(f, a, r);
}

/* Host names come from the command line; escape what JSON requires. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_latency(FILE *f, const struct hist *h)
{
	fprintf(f, "\"latency_us\":{\"count\":%llu,\"min\":%.3f,\"mean\":%.3f,\"stdev\":%.3f",
		(unsigned long long)h->count, (double)hist_min(h) / 1e3, hist_mean(h) / 1e3,
		hist_stdev(h) / 1e3);
	fprintf(f, ",\"p50\":%.3f,\"p75\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f",
		(double)hist_percentile(h, 50) / 1e3, (double)hist_percentile(h, 75) / 1e3,
		(double)hist_percentile(h, 90) / 1e3, (double)hist_percentile(h, 99) / 1e3,
		(double)hist_percentile(h, 99.9) / 1e3);
	fprintf(f, ",\"max\":%.3f}", (double)hist_max(h) / 1e3);
}

static void json_fairness(FILE *f, const struct bench_args *a, const struct bench_result *r)
{
	double ratio;

	fprintf(f, "\"fairness\":{\"unit\":\"%s\",\"min\":%llu,\"median\":%llu,\"max\":%llu,",
		fair_units[a->mode], (unsigned long long)r->fr.min,
		(unsigned long long)r->fr.median, (unsigned long long)r->fr.max);
	if (fair_ratio(&r->fr, &ratio))
		fprintf(f, "\"max_min_ratio\":%.4f", ratio);
	else
		fprintf(f, "\"max_min_ratio\":null");
	fprintf(f, ",\"connections\":%llu,\"unserved\":%llu}", (unsigned long long)r->fr.conns,
		(unsigned long long)r->fr.unserved);
}

static void json_open(FILE *f, const struct bench_args *a, const struct bench_result *r)
{
	fprintf(f, "\"open\":{\"requested\":%lu,\"opened\":%llu,\"complete\":%s", a->conns,
		(unsigned long long)r->opened, r->open_ok ? "true" : "false");
	fprintf(f, ",\"open_s\":%.3f,\"retries\":%llu,\"window_min\":%llu,\"window_max\":%llu",
		r->open_s, (unsigned long long)r->retries, (unsigned long long)r->win_min,
		(unsigned long long)r->win_max);
	fprintf(f, ",\"whole_window\":%llu}", (unsigned long long)r->whole);
}

static void json_errors(FILE *f, const struct bench_result *r)
{
	fprintf(f, "\"errors\":{\"total\":%llu", (unsigned long long)r->err_total);
	for (int k = 0; k < ERR_KINDS; k++)
		fprintf(f, ",\"%s\":%llu", err_kind_names[k], (unsigned long long)r->errors[k]);
	fprintf(f, "}");
}

static void json_config(FILE *f, const struct bench_args *a, const struct bench_result *r)
{
	fprintf(f, "{\"target\":");
	json_string(f, a->target);
	fprintf(f, ",\"address\":");
	json_string(f, r->address);
	fprintf(f, ",\"mode\":\"%s\",\"threads\":%u,\"connections\":%lu,\"processes\":%u",
		bench_mode_name(a->mode), a->threads, a->conns, r->nprocs);
	fprintf(f, ",\"size\":%llu,\"depth\":%u,\"duration_s\":%.3f,\"warmup_s\":%.3f",
		(unsigned long long)a->size, a->depth, (double)a->duration_ns / 1e9,
		(double)a->warmup_ns / 1e9);
	fprintf(f, ",\"timeout_s\":%.3f", (double)a->timeout_ns / 1e9);
}

void report_json(FILE *f, const struct bench_args *a, const struct bench_result *r)
{
	json_config(f, a, r);
	fprintf(f, ",\"elapsed_s\":%.3f,\"drain_s\":%.3f", r->elapsed_s, r->drain_s);
	fprintf(f, ",\"request_unit\":\"%s\",\"requests\":%llu", request_units[a->mode],
		(unsigned long long)r->msgs);
	fprintf(f, ",\"requests_per_sec\":%.2f,\"bytes_sent\":%llu,\"bytes_received\":%llu",
		per_sec(r->msgs, r->elapsed_s), (unsigned long long)r->tx,
		(unsigned long long)r->rx);
	fprintf(f, ",\"transfer_mb_per_sec\":%.3f,", per_sec(moved(a, r), r->elapsed_s) / 1e6);
	json_errors(f, r);
	fprintf(f, ",");
	json_open(f, a, r);
	fprintf(f, ",");
	if (has_latency(a))
		json_latency(f, &r->lat);
	else
		fprintf(f, "\"latency_us\":null");
	fprintf(f, ",");
	if (r->fair)
		json_fairness(f, a, r);
	else
		fprintf(f, "\"fairness\":null");
	if (a->mode == MODE_IDLE)
		fprintf(f, ",\"idle\":{\"held\":%llu,\"verified\":%llu,\"open_s\":%.3f}}\n",
			(unsigned long long)r->held, (unsigned long long)r->verified, r->open_s);
	else
		fprintf(f, ",\"idle\":null}\n");
}
