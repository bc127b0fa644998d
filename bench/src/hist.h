/*
 * hist: log-linear latency histogram in the spirit of HdrHistogram. Values below
 * 128 get exact buckets; above, each power of two is split into 64 linear
 * sub-buckets, so any recorded value is known to within 1/64 (1.6%) while the
 * whole uint64_t range fits in a fixed 30 KiB array that merges by addition.
 */
#ifndef ECHO_BENCH_HIST_H
#define ECHO_BENCH_HIST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HIST_SUB_BITS  6
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)
#define HIST_BUCKETS   ((2u + 63u - HIST_SUB_BITS) * HIST_SUB_COUNT)

struct hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	double sum;
	double sumsq;
	uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
void hist_merge(struct hist *dst, const struct hist *src);
/* p in [0, 100]; the highest value equivalent to the bucket holding that rank. 0 if empty. */
uint64_t hist_percentile(const struct hist *h, double p);
double hist_mean(const struct hist *h);
double hist_stdev(const struct hist *h);
/* 0 when empty. */
uint64_t hist_min(const struct hist *h);
uint64_t hist_max(const struct hist *h);

unsigned hist_bucket_of(uint64_t v);
uint64_t hist_bucket_low(unsigned idx);
uint64_t hist_bucket_high(unsigned idx);

#ifdef __cplusplus
}
#endif

#endif
