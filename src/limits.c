/* limits: connection admission, see limits.h for the scheme. */
#include "echod/limits.h"

#include <string.h>

#include "echod/net.h"

#define LIMITS_BUCKETS 65536u
#define RATE_SALT      0x9e3779b9u /* the rate cells hash apart from the per-IP buckets */
#define MILLI	       1000u
#define RATE_SKEW_MS   60000 /* how far apart two workers' clock reads can be */

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

void limits_key(const struct sockaddr *peer, uint8_t key[16])
{
	static const uint8_t v4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	net_addr_key(peer, key);
	if (memcmp(key, v4, sizeof(v4)) != 0)
		memset(key + 8, 0, 8); /* IPv6: the /64 */
}

/* Two distinct buckets of mask + 1, or the address would get half of the one. */
static void key_buckets(const uint8_t key[16], uint32_t seed, uint32_t mask, uint32_t *b1,
			uint32_t *b2)
{
	uint64_t h = key_hash(key, seed);

	*b1 = (uint32_t)h & mask;
	*b2 = (uint32_t)(h >> 32) & mask;
	if (*b2 == *b1)
		*b2 = *b1 ^ 1;
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
	key_buckets(key, l->seed, l->ip_mask, &t->b1, &t->b2);
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

/*
 * A rate cell's stamp a little ahead of now: another worker read the clock a moment
 * later. Much further off, the cell was idle for weeks (the ms stamp wraps in 49 days).
 */
static int stamp_ahead(uint32_t now, uint32_t stamp)
{
	int32_t elapsed = (int32_t)(now - stamp);

	return elapsed < 0 && elapsed > -RATE_SKEW_MS;
}

/* Milli-connections a cell has drained since its stamp: all of it after weeks idle. */
static uint64_t drained(uint32_t now, uint32_t stamp, uint64_t rate)
{
	int32_t elapsed = (int32_t)(now - stamp);

	if (stamp_ahead(now, stamp))
		return 0;
	return elapsed >= 0 ? (uint64_t)elapsed * rate : UINT64_MAX;
}

/*
 * One rate cell: drains it to now at rate milli-connections a millisecond, adds delta
 * (milli-connections, negative to take back), returns the new level.
 */
static uint32_t cell_add(uint64_t *cell, uint32_t now, uint64_t rate, int64_t delta)
{
	uint64_t old = __atomic_load_n(cell, __ATOMIC_RELAXED), next;
	uint32_t level;

	do {
		uint32_t stamp = (uint32_t)(old >> 32);
		uint64_t d = drained(now, stamp, rate);
		int64_t v = (int64_t)(uint32_t)old;

		v = d >= (uint64_t)v ? 0 : v - (int64_t)d;
		v += delta;
		level = v < 0 ? 0 : v > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
		next = (uint64_t)(stamp_ahead(now, stamp) ? stamp : now) << 32 | level;
	} while (
	    !__atomic_compare_exchange_n(cell, &old, next, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return level;
}

enum limits_verdict limits_rate(const struct limits *l, const uint8_t key[16], uint64_t now_ms)
{
	uint64_t cap = (uint64_t)l->conn_rate * MILLI;
	uint32_t b1, b2, now = (uint32_t)now_ms;
	int ok;

	if (l->conn_rate == 0 || l->rate_cells == NULL)
		return LIMITS_OK;
	key_buckets(key, l->seed ^ RATE_SALT, LIMITS_RATE_CELLS - 1, &b1, &b2);
	/* Both cells count it, then both are read: judged on levels that hold every
	 * connection of this client still counted, as another worker's may be in flight. */
	cell_add(&l->rate_cells[b1], now, l->conn_rate, MILLI);
	cell_add(&l->rate_cells[b2], now, l->conn_rate, MILLI);
	ok = cell_add(&l->rate_cells[b1], now, l->conn_rate, 0) <= cap ||
	     cell_add(&l->rate_cells[b2], now, l->conn_rate, 0) <= cap;
	if (ok)
		return LIMITS_OK;
	cell_add(&l->rate_cells[b1], now, l->conn_rate, -(int64_t)MILLI);
	cell_add(&l->rate_cells[b2], now, l->conn_rate, -(int64_t)MILLI);
	return LIMITS_CONN_RATE;
}
