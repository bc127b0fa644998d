/*
 * Fuzz target: the command line (config_load). The input is argv[1..], each argument
 * ended by a NUL byte. Any command line is accepted, or refused with status 64 and
 * a message that names the option or the stray argument; an accepted one
 * round-trips through the printer. --config is left out: reading files is the
 * config target's business (and /dev/stdin would block).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#define MAX_ARGS 64

static int names_the_option(const char *msg)
{
	return strncmp(msg, "--", 2) == 0 || strncmp(msg, "unknown option '", 16) == 0 ||
	       strncmp(msg, "unexpected argument '", 21) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static char arg0[] = "echod";
	char *argv[MAX_ARGS + 2], *text = malloc(size + 1);
	struct config_error err = {0};
	int argc = 0, rc;

	fuzz_check(text != NULL, "malloc", NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	argv[argc++] = arg0;
	for (char *p = text; p < text + size; p += strlen(p) + 1) {
		if (argc > MAX_ARGS || strncmp(p, "--config", 8) == 0)
			goto out;
		argv[argc++] = p;
	}
	argv[argc] = NULL;
	rc = config_load(&cfg, argc, argv, &err);
	if (rc != 0) {
		fuzz_check(rc == EXIT_USAGE && err.status == EXIT_USAGE, "status is not 64",
			   err.msg);
		fuzz_check(names_the_option(err.msg), "message names no option", err.msg);
	} else if (cfg.action == CONFIG_RUN || cfg.action == CONFIG_CHECK) {
		fuzz_check(cfg.nlisten > 0 && cfg.workers > 0, "nothing to run", NULL);
		fuzz_config_roundtrip(&cfg);
	}
out:
	free(text);
	return 0;
}
