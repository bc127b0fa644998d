/*
 * Fuzz target: the config-file parser (config_parse_file), on top of the defaults
 * as echod starts. It shares the option table and every setter with the command
 * line. Any file is accepted, or refused with status 78 and a message that starts
 * with the file's name; an accepted configuration round-trips through the printer.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static char arg0[] = "echod";
	char *argv[] = {arg0, NULL};
	struct config_error err = {0};
	FILE *f;
	int rc;

	fuzz_check(config_load(&cfg, 1, argv, &err) == 0, "the defaults do not load", err.msg);
	if (size == 0)
		return 0; /* fmemopen wants at least one byte */
	f = fmemopen((void *)data, size, "r");
	fuzz_check(f != NULL, "fmemopen", NULL);
	rc = config_parse_file(&cfg, f, "fuzz.conf", &err);
	fclose(f);
	if (rc != 0) {
		fuzz_check(rc == EXIT_CONFIG && err.status == EXIT_CONFIG, "status is not 78",
			   err.msg);
		fuzz_check(strncmp(err.msg, "fuzz.conf:", 10) == 0,
			   "message does not name the file", err.msg);
		return 0;
	}
	fuzz_config_roundtrip(&cfg);
	return 0;
}
