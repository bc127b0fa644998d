/* sd_libsystemd: the sd-daemon protocols through libsystemd. */
#include <systemd/sd-daemon.h>

#include "echod/sd.h"

int sd_proto_listen_fds(char ***names)
{
	return sd_listen_fds_with_names(1, names);
}

int sd_proto_notify(const char *state)
{
	int rc = sd_notify(0, state);

	return rc < 0 ? rc : 0;
}

uint64_t sd_proto_watchdog_usec(void)
{
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

const char *sd_proto_name(void)
{
	return "libsystemd";
}
