/* fair: see fair.h. */
#include "fair.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

int fair_compute(const uint64_t *counts, const unsigned char *whole, size_t n,
		 struct fair_result *r)
{
	uint64_t *sorted = malloc((n ? n : 1) * sizeof(*sorted));
	size_t k = 0;

	memset(r, 0, sizeof(*r));
	if (sorted == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (whole == NULL || whole[i])
			sorted[k++] = counts[i];
	}
	if (k > 0) {
		qsort(sorted, k, sizeof(*sorted), cmp_u64);
		r->conns = k;
		r->min = sorted[0];
		r->median = sorted[(k - 1) / 2];
		r->max = sorted[k - 1];
		for (size_t i = 0; i < k && sorted[i] == 0; i++)
			r->unserved++;
	}
	free(sorted);
	return 0;
}

bool fair_ratio(const struct fair_result *r, double *ratio)
{
	if (r->conns == 0 || r->min == 0)
		return false;
	*ratio = (double)r->max / (double)r->min;
	return true;
}
