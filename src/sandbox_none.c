/* sandbox_none: builds without libseccomp have no system call filter. */
#include <errno.h>
#include <stdio.h>

#include "echod/sandbox.h"

int sandbox_available(void)
{
	return 0;
}

int sandbox_enter(enum backend_kind backend, char *why, size_t whylen)
{
	(void)backend;
	snprintf(why, whylen, "this echod was built without libseccomp");
	return -ENOSYS;
}
