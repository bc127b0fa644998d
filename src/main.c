/* echod: the command line, then the supervisor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echod/config.h"
#include "echod/log.h"
#include "echod/offload.h"
#include "echod/proctitle.h"
#include "echod/sandbox.h"
#include "echod/sd.h"
#include "echod/supervisor.h"
#include "echod/worker.h"

static void print_version(void)
{
	char why[128];

	printf("echod %s\n", ECHOD_VERSION);
	printf("backends: epoll%s\n", loop_uring_probe(why, sizeof(why)) != -ENOSYS ? " io_uring"
										 : "");
	printf("sd-daemon: %s\n", sd_proto_name());
	printf("seccomp: %s\n", sandbox_available() ? "yes" : "no");
	printf("offload: %s\n", offload_built() ? "sockmap" : "no");
	if (ECHOD_SANITIZED[0] != '\0')
		printf("sanitizers: %s (seccomp off by default)\n", ECHOD_SANITIZED);
}

int main(int argc, char **argv)
{
	static struct config cfg;
	struct config_error err;
	int rc;

	proctitle_init(argc, argv);
	rc = config_load(&cfg, argc, argv, &err);
	if (rc != 0) {
		fprintf(stderr, "echod: %s\n", err.msg);
		return rc;
	}
	log_init(cfg.verbosity);
	switch (cfg.action) {
	case CONFIG_HELP:
		config_usage(stdout);
		return 0;
	case CONFIG_VERSION:
		print_version();
		return 0;
	case CONFIG_CHECK: {
		char why[512];
		int rc = listen_resolve_check(cfg.listen, cfg.nlisten, why, sizeof(why));

		if (rc != 0) {
			fprintf(stderr, "echod: %s%s\n", rc == LISTEN_ERR_USAGE ? "--listen: " : "", why);
			return -rc;
		}
		config_print(&cfg, stdout);
		return 0;
	}
	case CONFIG_RUN:
		break;
	}
	return supervisor_run(&cfg, argc, argv);
}
