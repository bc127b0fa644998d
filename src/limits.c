/* limits: connection admission, see limits.h for the scheme. */
#include "echod/limits.h"

#include <string.h>

#define LIMITS_BUCKETS 65536u

unsigned limits_buckets(unsigned max_per_ip)
{
	return max_per_ip > 0 ? LIMITS_BUCKETS : 0;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint64_t key_hash(const uint8_t key[16], uint32_t seed)
{
	uint64_t a, b;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	return mix64(a ^ mix64(b ^ seed));
}

static void bucket_add(uint32_t *global, uint32_t *local, uint32_t b, int32_t delta)
{
	__atomic_add_fetch(&global[b], (uint32_t)delta, __ATOMIC_RELAXED);
	/* local is ours alone: a plain read-modify-write the supervisor reads after we die */
	__atomic_store_n(&local[b], local[b] + (uint32_t)delta, __ATOMIC_RELAXED);
}

static void gauge_add(uint64_t *g, int64_t delta)
{
	__atomic_store_n(g, *g + (uint64_t)delta, __ATOMIC_RELAXED);
}

enum limits_verdict limits_admit(const struct limits *l, const uint8_t key[16],
				 struct limits_ticket *t)
{
	uint64_t total;

	memset(t, 0, sizeof(*t));
	total = __atomic_add_fetch(l->total, 1, __ATOMIC_RELAXED);
	gauge_add(l->open, 1);
	if (l->max_conns > 0 && total > l->max_conns) {
		__atomic_sub_fetch(l->total, 1, __ATOMIC_RELAXED);
		gauge_add(l->open, -1);
		return LIMITS_MAX_CONNS;
	}
	t->admitted = 1;
	if (l->max_per_ip == 0 || l->ip_global == NULL)
		return LIMITS_OK;
	{
		uint64_t h = key_hash(key, l->seed);

		t->b1 = (uint32_t)h & l->ip_mask;
		t->b2 = (uint32_t)(h >> 32) & l->ip_mask;
		if (t->b2 == t->b1)
			t->b2 = t->b1 ^ 1; /* two distinct buckets, or the address gets half */
	}
	bucket_add(l->ip_global, l->ip_local, t->b1, 1);
	bucket_add(l->ip_global, l->ip_local, t->b2, 1);
	if (__atomic_load_n(&l->ip_global[t->b1], __ATOMIC_RELAXED) > l->max_per_ip &&
	    __atomic_load_n(&l->ip_global[t->b2], __ATOMIC_RELAXED) > l->max_per_ip) {
		limits_release(l, t);
		return LIMITS_PER_IP;
	}
	return LIMITS_OK;
}

void limits_release(const struct limits *l, struct limits_ticket *t)
{
	if (!t->admitted)
		return;
	if (l->max_per_ip > 0 && l->ip_global != NULL) {
		bucket_add(l->ip_global, l->ip_local, t->b1, -1);
		bucket_add(l->ip_global, l->ip_local, t->b2, -1);
	}
	__atomic_sub_fetch(l->total, 1, __ATOMIC_RELAXED);
	gauge_add(l->open, -1);
	t->admitted = 0;
}

void limits_reap(uint64_t *total, uint64_t open, uint32_t *ip_global, uint32_t *ip_local,
		 unsigned buckets)
{
	__atomic_sub_fetch(total, open, __ATOMIC_RELAXED);
	for (unsigned b = 0; b < buckets; b++) {
		if (ip_local[b] != 0) {
			__atomic_sub_fetch(&ip_global[b], ip_local[b], __ATOMIC_RELAXED);
			ip_local[b] = 0;
		}
	}
}
