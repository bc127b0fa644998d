/*
 * Fuzz target: the listen-spec parser (listen_parse) and its printer.
 *
 * Any text is accepted or refused with a reason, never a crash; an accepted spec is
 * consistent, and printed as --check-config prints it (in a buffer of the size
 * config.c uses) it parses back to the very same spec.
 */
#include <string.h>

#include "echod/listen.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[1024], why[256] = "", out[LISTEN_HOST_MAX + 32];
	struct listen_spec spec, back;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (listen_parse(text, &spec, why, sizeof(why)) < 0) {
		fuzz_check(why[0] != '\0', "refused without a reason", text);
		return 0;
	}
	fuzz_check(spec.proto <= LISTEN_UDP && spec.service <= SERVICE_REVERSE, "enum out of range",
		   text);
	fuzz_check(spec.any == (spec.host[0] == '\0'), "all interfaces iff no host", text);
	fuzz_check(memchr(spec.host, '\0', sizeof(spec.host)) != NULL, "host not terminated", text);
	listen_format(&spec, out, sizeof(out));
	fuzz_check(listen_parse(out, &back, why, sizeof(why)) == 0,
		   "the printed spec does not parse", out);
	fuzz_check(memcmp(&spec, &back, sizeof(spec)) == 0, "the printed spec reads back different",
		   out);
	return 0;
}
