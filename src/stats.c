/* stats: the shared counter mapping. */
#include "echod/stats.h"
#include "echod/limits.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char *const names[] = {
#define STATS_NAME(name) #name,
	STATS_COUNTERS(STATS_NAME)
#undef STATS_NAME
};

const char *stats_name(enum stats_counter c)
{
	return names[c];
}

/* Where the rate cells start: after the per-address buckets, 8-byte aligned. */
static size_t rate_offset(unsigned nslots, unsigned ip_buckets)
{
	size_t off = sizeof(struct stats_shared) + nslots * sizeof(struct stats_slot) +
		     (size_t)ip_buckets * sizeof(uint32_t) * (1 + nslots);

	return (off + 7) & ~(size_t)7;
}

static const char *const lnames[] = {
#define STATS_LNAME(name) #name,
	STATS_LISTENER_COUNTERS(STATS_LNAME)
#undef STATS_LNAME
};

static const enum stats_counter lbase[] = {
#define STATS_LBASE(name) STAT_##name,
	STATS_LISTENER_COUNTERS(STATS_LBASE)
#undef STATS_LBASE
};

const char *stats_lname(enum stats_lcounter c)
{
	return lnames[c];
}

enum stats_counter stats_lbase(enum stats_lcounter c)
{
	return lbase[c];
}

static size_t stats_size(unsigned nslots, unsigned ip_buckets)
{
	return rate_offset(nslots, ip_buckets) + (size_t)LIMITS_RATE_CELLS * sizeof(uint64_t);
}

struct stats_shared *stats_create(unsigned nslots, unsigned ip_buckets)
{
	struct stats_shared *sh;

	sh = mmap(NULL, stats_size(nslots, ip_buckets), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return NULL;
	sh->nslots = nslots;
	sh->ip_buckets = ip_buckets;
	/* An attacker who cannot guess the seed cannot aim addresses at one bucket. */
	if (getrandom(&sh->seed, sizeof(sh->seed), GRND_NONBLOCK) != sizeof(sh->seed))
		sh->seed = (uint32_t)time(NULL) ^ (uint32_t)getpid() * 2654435761u;
	return sh;
}

void stats_destroy(struct stats_shared *sh)
{
	if (sh != NULL)
		munmap(sh, stats_size(sh->nslots, sh->ip_buckets));
}

uint32_t *stats_ip_global(struct stats_shared *sh)
{
	return (uint32_t *)(sh->slots + sh->nslots);
}

uint32_t *stats_ip_local(struct stats_shared *sh, unsigned slot)
{
	return stats_ip_global(sh) + (size_t)sh->ip_buckets * (1 + slot);
}

uint64_t *stats_rate_cells(struct stats_shared *sh)
{
	return (uint64_t *)((char *)sh + rate_offset(sh->nslots, sh->ip_buckets));
}

void stats_sum(const struct stats_shared *sh, const uint64_t *retired, uint64_t *out)
{
	for (int c = 0; c < STAT_COUNT; c++)
		out[c] = retired != NULL ? retired[c] : 0;
	for (unsigned s = 0; s < sh->nslots; s++)
		for (int c = 0; c < STAT_COUNT; c++)
			out[c] += stats_get(&sh->slots[s], (enum stats_counter)c);
}

void stats_format(const uint64_t *v, char *out, size_t outlen)
{
	size_t n = 0;

	out[0] = '\0';
	for (int c = 0; c < STAT_COUNT && n < outlen; c++)
		n += (size_t)snprintf(out + n, outlen - n, "%s%s=%llu", c ? " " : "", names[c],
				      (unsigned long long)v[c]);
}
