/*
 * proctitle: rewrite argv in place so ps shows "echod: worker 3".
 *
 * The kernel reports the command line from the memory argv[] points into; after
 * moving environ to the heap, argv and environ strings together are one block
 * the title may fill.
 */
#include "echod/proctitle.h"

#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

extern char **environ;

static char *title_start;
static size_t title_room;
/* The environment moved to the heap, kept for the life of the process. Held here as
 * well as in environ: glibc's exit-time clean-up (which valgrind runs) clears
 * environ, and the block would then look lost. */
static char **title_env;

void proctitle_init(int argc, char **argv)
{
	char *end;
	size_t nenv = 0;
	char **env;

	if (argc < 1 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc && argv[i] == end; i++)
		end = argv[i] + strlen(argv[i]) + 1;
	while (environ[nenv] != NULL)
		nenv++;
	env = malloc((nenv + 1) * sizeof(char *));
	if (env != NULL) {
		for (size_t i = 0; i < nenv; i++) {
			if (environ[i] == end)
				end = environ[i] + strlen(environ[i]) + 1;
			env[i] = strdup(environ[i]);
		}
		env[nenv] = NULL;
		environ = title_env = env;
	}
	title_start = argv[0];
	title_room = (size_t)(end - argv[0]);
}

void proctitle_set(const char *title)
{
	size_t len = strlen(title);

	prctl(PR_SET_NAME, title, 0, 0, 0);
	if (title_start == NULL || title_room < 2)
		return;
	if (len >= title_room)
		len = title_room - 1;
	memcpy(title_start, title, len);
	memset(title_start + len, 0, title_room - len);
}
