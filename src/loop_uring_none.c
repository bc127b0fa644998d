/* loop_uring_none: stands in for the io_uring backend when liburing was not found. */
#include <errno.h>
#include <stdio.h>

#include "echod/worker.h"

int loop_uring_probe(char *why, size_t whylen)
{
	snprintf(why, whylen, "this echod was built without io_uring support");
	return -ENOSYS;
}

int loop_uring_run(struct worker *w)
{
	(void)w;
	return EXIT_OSERR;
}
