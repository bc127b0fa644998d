/* priv: dropping privileges after the sockets are bound. */
#ifndef ECHOD_PRIV_H
#define ECHOD_PRIV_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct priv_ids {
	uid_t uid;
	gid_t gid;
};

/* "USER[:GROUP]" (names or numbers) to ids; the group defaults to the user's primary
 * group. Returns 0, or -1 with the reason in why. */
int priv_resolve(const char *spec, struct priv_ids *ids, char *why, size_t whylen);
/* Drops the supplementary groups, then gid, then uid, and checks root cannot come back.
 * Returns 0, or -errno with the failing step in why. */
int priv_drop(const struct priv_ids *ids, char *why, size_t whylen);
/* PR_SET_NO_NEW_PRIVS: no exec can ever gain privileges. */
int priv_no_new_privs(void);

#ifdef __cplusplus
}
#endif
#endif
