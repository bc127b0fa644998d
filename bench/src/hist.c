/* hist: see hist.h for the bucket layout. */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

/*
 * With shift = max(0, msb - 6) the top seven significant bits (v >> shift) lie in
 * [64, 128) for large values, so shift * 64 + (v >> shift) is monotonic in v and
 * degenerates to v itself below 128.
 */
unsigned hist_bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * HIST_SUB_COUNT)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return shift * HIST_SUB_COUNT + (unsigned)(v >> shift);
}

uint64_t hist_bucket_low(unsigned idx)
{
	unsigned shift;

	if (idx < 2 * HIST_SUB_COUNT)
		return idx;
	shift = idx / HIST_SUB_COUNT - 1;
	return (uint64_t)(idx - shift * HIST_SUB_COUNT) << shift;
}

uint64_t hist_bucket_high(unsigned idx)
{
	unsigned shift = idx < 2 * HIST_SUB_COUNT ? 0 : idx / HIST_SUB_COUNT - 1;

	return hist_bucket_low(idx) + ((uint64_t)1 << shift) - 1;
}

void hist_record(struct hist *h, uint64_t v)
{
	h->buckets[hist_bucket_of(v)]++;
	h->count++;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->sum += (double)v;
	h->sumsq += (double)v * (double)v;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	dst->sumsq += src->sumsq;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* Clamped so that a percentile never claims more than what was actually seen. */
static uint64_t clamp_seen(const struct hist *h, uint64_t v)
{
	if (v > h->max)
		return h->max;
	if (v < h->min)
		return h->min;
	return v;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (p >= 100.0)
		return h->max;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			return clamp_seen(h, hist_bucket_high(i));
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}

double hist_stdev(const struct hist *h)
{
	double mean, var;

	if (h->count < 2)
		return 0.0;
	mean = hist_mean(h);
	var = h->sumsq / (double)h->count - mean * mean;
	return var > 0.0 ? sqrt(var) : 0.0;
}

uint64_t hist_min(const struct hist *h)
{
	return h->count ? h->min : 0;
}

uint64_t hist_max(const struct hist *h)
{
	return h->max;
}
