/* priv: --user and the no-new-privileges bit. */
#include "echod/priv.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno != 0 || *end != '\0' || *out >= (unsigned long)(uid_t)-1 ? -1 : 0;
}

static int resolve_group(const char *name, gid_t *gid, char *why, size_t whylen)
{
	struct group *gr;
	unsigned long id;

	if (parse_id(name, &id) == 0) {
		*gid = (gid_t)id;
		return 0;
	}
	gr = getgrnam(name);
	if (gr == NULL) {
		snprintf(why, whylen, "unknown group '%s'", name);
		return -1;
	}
	*gid = gr->gr_gid;
	return 0;
}

int priv_resolve(const char *spec, struct priv_ids *ids, char *why, size_t whylen)
{
	char user[256];
	const char *colon = strchr(spec, ':');
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
	struct passwd *pw;
	unsigned long id;

	if (len == 0 || len >= sizeof(user) || (colon != NULL && colon[1] == '\0')) {
		snprintf(why, whylen, "expected USER[:GROUP]");
		return -1;
	}
	memcpy(user, spec, len);
	user[len] = '\0';
	pw = getpwnam(user);
	if (pw != NULL) {
		ids->uid = pw->pw_uid;
		ids->gid = pw->pw_gid;
	} else if (parse_id(user, &id) == 0) {
		ids->uid = (uid_t)id;
		ids->gid = (gid_t)id; /* a bare number: the same number as group, unless given */
	} else {
		snprintf(why, whylen, "unknown user '%s'", user);
		return -1;
	}
	return colon != NULL ? resolve_group(colon + 1, &ids->gid, why, whylen) : 0;
}

int priv_drop(const struct priv_ids *ids, char *why, size_t whylen)
{
	const char *step = NULL;

	if (getuid() == 0 && setgroups(0, NULL) < 0)
		step = "setgroups";
	else if (setresgid(ids->gid, ids->gid, ids->gid) < 0)
		step = "setresgid";
	else if (setresuid(ids->uid, ids->uid, ids->uid) < 0)
		step = "setresuid";
	if (step != NULL) {
		int err = errno;

		snprintf(why, whylen, "%s(%lu:%lu): %s", step, (unsigned long)ids->uid,
			 (unsigned long)ids->gid, strerror(err));
		return -err;
	}
	if (ids->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(why, whylen, "root privileges could be regained after dropping them");
		return -EPERM;
	}
	return 0;
}

int priv_no_new_privs(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
}
