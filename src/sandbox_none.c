/* sandbox_none: builds without libseccomp have no system call filter. */
#include <errno.h>
#include <stdio.h>

#include "echod/sandbox.h"

int sandbox_available(void)
{
	return 0;
}

void sandbox_allow_offload(void)
{
}

int sandbox_enter(enum backend_kind backend, struct stats_slot *slot, char *why, size_t whylen)
{
	(void)backend;
	(void)slot;
	snprintf(why, whylen, "this echod was built without libseccomp");
	return -ENOSYS;
}

const char *sandbox_syscall_name(uint32_t arch, int nr, char *out, size_t outlen)
{
	(void)arch;
	(void)nr;
	(void)out;
	(void)outlen;
	return NULL;
}
