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
/* The environment moved to the heap for the life of the process: the strings in one
 * block, and the array. Both are held here as well as through environ: unsetenv()
 * drops entries from environ (LISTEN_FDS and friends), and glibc's exit-time clean-up
 * (which valgrind runs) clears environ itself; neither may make them look lost. */
static char *env_block;
static char **env_array;

void proctitle_init(int argc, char **argv)
{
	char *end, *p;
	size_t nenv = 0, size = 0;
	char **env;

	if (argc < 1 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc && argv[i] == end; i++)
		end = argv[i] + strlen(argv[i]) + 1;
	for (; environ[nenv] != NULL; nenv++)
		size += strlen(environ[nenv]) + 1;
	env = malloc((nenv + 1) * sizeof(char *));
	env_block = malloc(size > 0 ? size : 1);
	if (env != NULL && env_block != NULL) {
		p = env_block;
		for (size_t i = 0; i < nenv; i++) {
			size_t len = strlen(environ[i]) + 1;

			if (environ[i] == end)
				end = environ[i] + len;
			env[i] = memcpy(p, environ[i], len);
			p += len;
		}
		env[nenv] = NULL;
		environ = env_array = env;
	} else {
		free(env);
		free(env_block);
		env_block = NULL;
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
