/* report: turns the per-thread figures into wrk-style text or one JSON object. */
#ifndef ECHO_BENCH_REPORT_H
#define ECHO_BENCH_REPORT_H

#include "run.h"

#include <stdio.h>

struct bench_result {
	uint64_t msgs, rx, tx, held, verified;
	uint64_t errors[ERR_KINDS];
	uint64_t err_total;
	double elapsed_s; /* the measured window actually run (idle: the hold) */
	double open_s;	  /* idle: from start until every connection was open */
	unsigned nprocs;
	bool fair; /* per-connection figures exist for this mode */
	uint64_t fair_min, fair_median, fair_max;
	char address[80]; /* the address that answered, e.g. [::1]:7 */
	struct hist lat;
};

void result_collect(struct bench_result *r, const struct run_plan *plan,
		    const struct run_shared *sh, unsigned nprocs);
void report_header(FILE *f, const struct bench_args *a, const struct bench_result *r);
void report_text(FILE *f, const struct bench_args *a, const struct bench_result *r);
void report_json(FILE *f, const struct bench_args *a, const struct bench_result *r);

#endif
