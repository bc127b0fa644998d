/* offload_none: builds without clang's BPF target or libbpf have no kernel offload. */
#include <errno.h>
#include <stdio.h>

#include "echod/offload.h"

int offload_built(void)
{
	return 0;
}

int offload_load(unsigned max_entries, char *why, size_t whylen)
{
	(void)max_entries;
	snprintf(why, whylen, "this echod was built without BPF support");
	return -ENOSYS;
}

int offload_insert(int map_fd, int fd)
{
	(void)map_fd;
	(void)fd;
	return -ENOSYS;
}
