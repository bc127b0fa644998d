/* supervisor: listeners, worker processes, signals. */
#ifndef ECHOD_SUPERVISOR_H
#define ECHOD_SUPERVISOR_H

#include "echod/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Runs until TERM/INT have drained the workers. argv is kept for HUP's re-read.
 * Returns the exit status; start-up failures exit 71 from inside. */
int supervisor_run(const struct config *cfg, int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
