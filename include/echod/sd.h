/*
 * sd: systemd's socket activation and readiness protocols.
 *
 * The protocol backend is one of two files chosen by CMake: sd_libsystemd.c (the
 * sd-daemon API) or sd_builtin.c (the same stable protocol written out: LISTEN_PID,
 * LISTEN_FDS, LISTEN_FDNAMES; one datagram to $NOTIFY_SOCKET), so an echod built
 * without libsystemd still works under systemd. sd.c holds what both share.
 */
#ifndef ECHOD_SD_H
#define ECHOD_SD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SD_FDS_START 3
/* FileDescriptorName= of a socket that serves /metrics, not echo (echod-metrics.socket). */
#define SD_NAME_METRICS "metrics"

struct sd_socket {
	int fd;
	int type;           /* SOCK_STREAM or SOCK_DGRAM */
	char name[64];      /* FileDescriptorName=, "" when none */
};

/* --- the protocol backend (sd_libsystemd.c or sd_builtin.c) --- */

/* Passed descriptors for this pid, with names (NULL entries where none); unsets the
 * variables. Returns the count, 0 when not socket-activated, or -errno. */
int sd_proto_listen_fds(char ***names);
/* Sends one state string ("READY=1\nSTATUS=..."). 0 sent or no $NOTIFY_SOCKET, -errno. */
int sd_proto_notify(const char *state);
/* The watchdog interval for this pid in microseconds, 0 when off. */
uint64_t sd_proto_watchdog_usec(void);
/* "libsystemd" or "built-in". */
const char *sd_proto_name(void);

/* --- shared --- */

/* Takes the passed sockets, checks each is a socket of a usable kind (a listening
 * stream, or a datagram socket) and makes it nonblocking. Returns the count (0 when
 * not activated), or -1 with the reason in why. *out is malloc'd. */
int sd_take_sockets(struct sd_socket **out, char *why, size_t whylen);
/* printf-style sd_proto_notify; failures are logged once, never fatal. */
void sd_notify_state(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif
#endif
