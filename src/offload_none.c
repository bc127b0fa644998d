/* offload_none: builds without clang's BPF target or libbpf have no kernel offload. */
#include <errno.h>
#include <stdio.h>

#include "echod/offload.h"

int offload_built(void)
{
	return 0;
}

int offload_load(struct offload_maps *m, unsigned max_socks, unsigned nslots, unsigned nrings,
		 char *why, size_t whylen)
{
	(void)m;
	(void)max_socks;
	(void)nslots;
	(void)nrings;
	snprintf(why, whylen, "this echod was built without BPF support");
	return -ENOSYS;
}

void offload_unload(struct offload_maps *m)
{
	(void)m;
}

int offload_insert(const struct offload_maps *m, int fd, uint32_t slot, uint32_t ring,
		   uint64_t mark, uint64_t *cookie)
{
	(void)m;
	(void)fd;
	(void)slot;
	(void)ring;
	(void)mark;
	(void)cookie;
	return -ENOSYS;
}

struct offload_ring *offload_ring_open(const struct offload_maps *m, unsigned ring,
				       void (*fn)(void *arg, uint32_t slot), void *arg)
{
	(void)m;
	(void)ring;
	(void)fn;
	(void)arg;
	return NULL;
}

int offload_ring_fd(const struct offload_maps *m, unsigned ring)
{
	(void)m;
	(void)ring;
	return -1;
}

void offload_ring_consume(struct offload_ring *r)
{
	(void)r;
}

void offload_ring_close(struct offload_ring *r)
{
	(void)r;
}

int offload_forget(const struct offload_maps *m, uint64_t cookie)
{
	(void)m;
	(void)cookie;
	return -ENOSYS;
}

int offload_forget_range(const struct offload_maps *m, uint32_t lo, uint32_t hi)
{
	(void)m;
	(void)lo;
	(void)hi;
	return -ENOSYS;
}
