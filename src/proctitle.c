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
/* The environment's copies, owned here for the process's life: unsetenv (the socket
 * activation variables) drops them from environ, and they must stay reachable. */
static char **env_owned;

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
	env_owned = malloc((nenv + 1) * sizeof(char *));
	if (env != NULL && env_owned != NULL) {
		for (size_t i = 0; i < nenv; i++) {
			if (environ[i] == end)
				end = environ[i] + strlen(environ[i]) + 1;
			env[i] = env_owned[i] = strdup(environ[i]);
		}
		env[nenv] = env_owned[nenv] = NULL;
		environ = env;
	} else {
		free(env);
		free(env_owned);
		env_owned = NULL;
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
