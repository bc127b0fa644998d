/* fair: how evenly the connections were served, kept free of I/O so it can be unit-tested. */
#ifndef ECHO_BENCH_FAIR_H
#define ECHO_BENCH_FAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fair_result {
	uint64_t conns; /* the connections the figures are over */
	uint64_t min, median, max;
	uint64_t unserved; /* of those, the ones that got nothing done at all */
};

/*
 * The spread of counts[i] over the slots i < n whose whole[i] is set (every slot when
 * whole is NULL). A slot left out is one whose connection was not open for the whole
 * window: it could not have been served all of it. All zero when no slot counts.
 * Returns 0, or -ENOMEM.
 */
int fair_compute(const uint64_t *counts, const unsigned char *whole, size_t n,
		 struct fair_result *r);

/* max/min into *ratio; false when it has no finite value (no connection, or min 0). */
bool fair_ratio(const struct fair_result *r, double *ratio);

#ifdef __cplusplus
}
#endif

#endif
