/* report: turns the per-thread figures into wrk-style text or one JSON object. */
#ifndef ECHO_BENCH_REPORT_H
#define ECHO_BENCH_REPORT_H

#include "fair.h"
#include "run.h"

#include <stdio.h>

struct bench_result {
	uint64_t msgs, rx, tx, held, verified;
	uint64_t errors[ERR_KINDS];
	uint64_t err_total;
	double elapsed_s; /* the measured window actually run (idle: the hold) */
	double drain_s;	  /* from its end until the last thread's drain was over */
	double open_s;	  /* from start until every connection was open (or the opening ended) */
	bool open_ok;	  /* every connection opened, so a window was run */
	uint64_t opened;  /* connections open when the opening ended (idle: held) */
	uint64_t retries; /* connect attempts retried while opening */
	int open_errno;	  /* why the latest retried attempt failed; 0 if none did */
	/* Connections open in the window: the fewest and the most (summed over the threads'
	 * own marks, so bounds: exact while none closes), and those open all through it. */
	uint64_t win_min, win_max, whole;
	unsigned nprocs;
	bool fair; /* per-connection figures exist for this mode */
	struct fair_result fr;
	char address[80]; /* the address that answered, e.g. [::1]:7 */
	struct hist lat;
};

void result_collect(struct bench_result *r, const struct run_plan *plan,
		    const struct run_shared *sh, unsigned nprocs);
void report_header(FILE *f, const struct bench_args *a, const struct bench_result *r);
void report_text(FILE *f, const struct bench_args *a, const struct bench_result *r);
void report_json(FILE *f, const struct bench_args *a, const struct bench_result *r);

#endif
