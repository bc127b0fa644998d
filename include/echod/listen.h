/* listen: listen-spec parsing (pure) and opening the listeners. */
#ifndef ECHOD_LISTEN_H
#define ECHOD_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

enum listen_proto { LISTEN_TCP, LISTEN_UDP };
enum listen_service { SERVICE_ECHO, SERVICE_DISCARD, SERVICE_CHARGEN, SERVICE_DAYTIME,
		      SERVICE_REVERSE };

#define LISTEN_HOST_MAX 256

/* [tcp:|udp:][HOST]:PORT[/SERVICE] or PORT. An empty host or "*" means all interfaces. */
struct listen_spec {
	enum listen_proto proto;
	enum listen_service service;
	int any;                     /* all interfaces: dual-stack [::]; an explicit [::] is
					IPv6 only */
	char host[LISTEN_HOST_MAX];  /* literal or name, without brackets */
	uint16_t port;               /* 0: the kernel picks one */
};

/* Returns 0, or -1 with a reason ("port out of range 0..65535") in why. */
int listen_parse(const char *text, struct listen_spec *spec, char *why, size_t whylen);
/* Canonical text of a spec, as --check-config prints it: "tcp:*:7/echo" for all
 * interfaces (dual-stack), "tcp:[::]:7/echo" for IPv6 only. */
void listen_format(const struct listen_spec *spec, char *out, size_t outlen);
const char *listen_service_name(enum listen_service service);

/* One resolved address with one SO_REUSEPORT socket per worker slot. */
struct listener {
	struct listen_spec spec;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char name[80];               /* "tcp [::]:7" as the logs show it */
	int v6only;                  /* the IPv6 wildcard [::]: 1 IPv6 only, 0 dual-stack
					(IPV6_V6ONLY); -1 for any other address */
	int *fds;                    /* nslots descriptors */
};

struct listener_set {
	struct listener *v;
	unsigned n;
	unsigned nslots;             /* descriptors per listener */
	int shared;                  /* from systemd: one socket all workers share */
};

struct sd_socket;

enum { LISTEN_ERR_USAGE = -64, LISTEN_ERR_SYSTEM = -71 };

/* Resolves every spec and opens nslots listening sockets for each address. Returns 0,
 * LISTEN_ERR_USAGE (a name that does not resolve) or LISTEN_ERR_SYSTEM (bind, the
 * resolver), with the option or address and the errno text in why. */
int listen_open_all(struct listener_set *set, const struct listen_spec *specs, unsigned nspecs,
		    unsigned nslots, int backlog, char *why, size_t whylen);
/* Resolves every spec without binding (for --check-config). Same returns. */
int listen_resolve_check(const struct listen_spec *specs, unsigned nspecs, char *why,
			 size_t whylen);
/* Socket activation: takes the sockets systemd passed (one shared descriptor each).
 * Returns 0, or -1 with the reason in why (a kind of socket not served yet). */
int listen_adopt(struct listener_set *set, const struct sd_socket *socks, unsigned n, char *why,
		 size_t whylen);
/* " (dual-stack)" or " (IPv6 only)" for the IPv6 wildcard, "" for any other address. */
const char *listen_stack_note(const struct listener *l);
/* The descriptor worker slot `slot` accepts on for listener i. */
int listen_slot_fd(const struct listener_set *set, unsigned i, unsigned slot);
/* Closes every descriptor of the set (the supervisor's copies) and frees it. */
void listen_close_all(struct listener_set *set);
/* In a worker: closes the descriptors of every slot but its own. */
void listen_keep_slot(struct listener_set *set, unsigned slot);

#ifdef __cplusplus
}
#endif
#endif
