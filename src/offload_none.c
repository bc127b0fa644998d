/* offload_none: builds without clang's BPF target or libbpf have no kernel offload. */
#include <errno.h>
#include <stdio.h>

#include "echod/offload.h"

int offload_built(void)
{
	return 0;
}

int offload_load(struct offload_maps *m, unsigned max_socks, unsigned nslots, char *why,
		 size_t whylen)
{
	(void)m;
	(void)max_socks;
	(void)nslots;
	snprintf(why, whylen, "this echod was built without BPF support");
	return -ENOSYS;
}

int offload_insert(const struct offload_maps *m, int fd, uint32_t slot, uint64_t *cookie)
{
	(void)m;
	(void)fd;
	(void)slot;
	(void)cookie;
	return -ENOSYS;
}

int offload_forget(const struct offload_maps *m, uint64_t cookie)
{
	(void)m;
	(void)cookie;
	return -ENOSYS;
}
