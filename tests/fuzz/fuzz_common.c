/* What the fuzz targets share, see fuzz.h. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_check(int cond, const char *what, const char *detail)
{
	if (cond)
		return;
	fprintf(stderr, "fuzz: %s\n", what);
	if (detail != NULL)
		fprintf(stderr, "%s\n", detail);
	abort();
}

/* The configuration as config-file lines, in a malloc'd string. */
static char *print_config(const struct config *cfg, size_t *len)
{
	char *text = NULL;
	FILE *out = open_memstream(&text, len);

	fuzz_check(out != NULL, "open_memstream", NULL);
	config_print(cfg, out);
	fuzz_check(fclose(out) == 0, "fclose(open_memstream)", NULL);
	return text;
}

void fuzz_config_roundtrip(const struct config *cfg)
{
	static struct config back;
	struct config_error err = {0};
	size_t len, len2;
	char *text = print_config(cfg, &len), *again;
	FILE *in;

	memset(&back, 0, sizeof(back));
	in = fmemopen(text, len, "r");
	fuzz_check(in != NULL, "fmemopen", NULL);
	fuzz_check(config_parse_file(&back, in, "printed", &err) == 0,
		   "the printed configuration does not parse", err.msg);
	fclose(in);
	again = print_config(&back, &len2);
	fuzz_check(len == len2 && memcmp(text, again, len) == 0,
		   "the printed configuration reads back different", again);
	free(text);
	free(again);
}
