/* What the fuzz targets share: a check that aborts with a message, and the
 * configuration round trip. */
#ifndef ECHOD_FUZZ_H
#define ECHOD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "echod/config.h"

/* libFuzzer's entry point, also called by the replay runner. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with "fuzz: what" (and detail when not NULL) unless cond holds. */
void fuzz_check(int cond, const char *what, const char *detail);

/* An accepted configuration printed as a config file (what --check-config shows),
 * read back and printed again must print the same: printer and parser agree. */
void fuzz_config_roundtrip(const struct config *cfg);

#endif
