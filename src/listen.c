/*
 * listen: listen specs and the listening sockets.
 *
 * Standalone, the supervisor opens one SO_REUSEPORT socket per worker slot for each
 * address and keeps them all: a worker that dies loses only its own connections and
 * its replacement takes over the slot's accept queue.
 */
#include "echod/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "echod/net.h"
#include "echod/sd.h"
#include "echod/udp.h"

static const char *const service_names[] = {"echo", "discard", "chargen", "daytime", "reverse"};

const char *listen_service_name(enum listen_service service)
{
	return service_names[service];
}

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -1;
	}
	*port = (uint16_t)v;
	return 0;
}

static int parse_service(const char *name, enum listen_service *service)
{
	for (size_t i = 0; i < sizeof(service_names) / sizeof(service_names[0]); i++) {
		if (strcmp(name, service_names[i]) == 0) {
			*service = (enum listen_service)i;
			return 0;
		}
	}
	return -1;
}

/* Splits "HOST:PORT", "[V6]:PORT" or "PORT" (in place) into host and port text. */
static int split_host_port(char *s, char **host, char **port, char *why, size_t whylen)
{
	char *colon;

	if (strspn(s, "0123456789") == strlen(s)) {
		*host = s + strlen(s);
		*port = s;
		return 0;
	}
	if (s[0] == '[') {
		char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':') {
			snprintf(why, whylen, "expected [IPv6]:PORT");
			return -1;
		}
		*close = '\0';
		*host = s + 1;
		*port = close + 2;
		return 0;
	}
	colon = strrchr(s, ':');
	if (colon == NULL) {
		snprintf(why, whylen, "expected [HOST]:PORT or PORT");
		return -1;
	}
	*colon = '\0';
	if (strchr(s, ':') != NULL) {
		snprintf(why, whylen, "an IPv6 address must be in brackets: [ADDRESS]:PORT");
		return -1;
	}
	*host = s;
	*port = colon + 1;
	return 0;
}

static int check_ipv4_like(const char *host, char *why, size_t whylen);

static int check_host(const char *host, char *why, size_t whylen)
{
	size_t len = strlen(host);

	if (len >= LISTEN_HOST_MAX) {
		snprintf(why, whylen, "host name too long");
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char c = host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_' || c == ':' || c == '%')) {
			snprintf(why, whylen, "invalid character in host '%s'", host);
			return -1;
		}
	}
	return 0;
}

int listen_parse(const char *text, struct listen_spec *spec, char *why, size_t whylen)
{
	char buf[LISTEN_HOST_MAX + 64], *s = buf, *slash, *host, *port;

	memset(spec, 0, sizeof(*spec));
	if (strlen(text) >= sizeof(buf)) {
		snprintf(why, whylen, "listen spec too long");
		return -1;
	}
	strcpy(buf, text);
	if (strncmp(s, "tcp:", 4) == 0) {
		s += 4;
	} else if (strncmp(s, "udp:", 4) == 0) {
		spec->proto = LISTEN_UDP;
		s += 4;
	}
	slash = strchr(s, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (parse_service(slash + 1, &spec->service) < 0) {
			snprintf(why, whylen,
				 "unknown service '%s' (echo, discard, chargen, daytime, reverse)",
				 slash + 1);
			return -1;
		}
	}
	if (split_host_port(s, &host, &port, why, whylen) < 0)
		return -1;
	if (parse_port(port, &spec->port) < 0) {
		snprintf(why, whylen, "invalid port '%s' (expected 0 to 65535)", port);
		return -1;
	}
	if (*host == '\0' || strcmp(host, "*") == 0) {
		spec->any = 1;
		return 0;
	}
	if (check_host(host, why, whylen) < 0 || check_ipv4_like(host, why, whylen) < 0)
		return -1;
	strcpy(spec->host, host);
	return 0;
}

/* Digits and dots only: meant as an IPv4 literal, so it must be one (no resolver
 * lookup for "1.2.3.4.5"). */
static int check_ipv4_like(const char *host, char *why, size_t whylen)
{
	struct in_addr a;

	if (strspn(host, "0123456789.") != strlen(host) || inet_pton(AF_INET, host, &a) == 1)
		return 0;
	snprintf(why, whylen, "invalid IPv4 address '%s'", host);
	return -1;
}

void listen_format(const struct listen_spec *spec, char *out, size_t outlen)
{
	const char *proto = spec->proto == LISTEN_UDP ? "udp" : "tcp";
	const char *svc = service_names[spec->service];

	if (spec->any)
		snprintf(out, outlen, "%s:*:%u/%s", proto, spec->port, svc);
	else if (strchr(spec->host, ':') != NULL)
		snprintf(out, outlen, "%s:[%s]:%u/%s", proto, spec->host, spec->port, svc);
	else
		snprintf(out, outlen, "%s:%s:%u/%s", proto, spec->host, spec->port, svc);
}

/* Resolves one spec to its addresses: [::] for all interfaces, every address of a name. */
static int resolve(const struct listen_spec *spec, struct addrinfo **res, char *why,
		   size_t whylen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	char port[8];
	int err;

	snprintf(port, sizeof(port), "%u", spec->port);
	if (spec->any) {
		hints.ai_family = net_ipv6_available() ? AF_INET6 : AF_INET;
		err = getaddrinfo(NULL, port, &hints, res);
	} else {
		err = getaddrinfo(spec->host, port, &hints, res);
	}
	if (err != 0) {
		snprintf(why, whylen, "cannot resolve '%s': %s", spec->any ? "*" : spec->host,
			 err == EAI_SYSTEM ? strerror(errno) : gai_strerror(err));
		/* A name that does not exist is the user's; a resolver that fails is the system's. */
		return err == EAI_NONAME || err == EAI_FAIL || err == EAI_NODATA ||
				       err == EAI_ADDRFAMILY
			       ? LISTEN_ERR_USAGE
			       : LISTEN_ERR_SYSTEM;
	}
	return 0;
}

/*
 * Binds one socket of a slot. SO_REUSEPORT lets the slots share the address; the
 * first slot is bound after a probe without it, so that an address some other
 * process already listens on fails with EADDRINUSE instead of being shared.
 */
static int open_socket(struct listener *l, int reuseport, int backlog)
{
	int fd, on = 1, v6only = !l->spec.any, udp = l->spec.proto == LISTEN_UDP;

	fd = socket(l->addr.ss_family,
		    (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0) ||
	    (l->addr.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) ||
	    (udp && udp_socket_options(fd, l->addr.ss_family) < 0) ||
	    bind(fd, (struct sockaddr *)&l->addr, l->addrlen) < 0 ||
	    (!udp && backlog > 0 && listen(fd, backlog) < 0)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* The probe: bindable without SO_REUSEPORT; also fixes the port when the spec says 0. */
static int probe_address(struct listener *l)
{
	int fd = open_socket(l, 0, 0);

	if (fd < 0)
		return fd;
	if (getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	return 0;
}

static int open_listener(struct listener *l, unsigned nslots, int backlog, char *why,
			 size_t whylen)
{
	int rc;

	l->fds = malloc(nslots * sizeof(int));
	if (l->fds == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (unsigned s = 0; s < nslots; s++)
		l->fds[s] = -1;
	rc = probe_address(l);
	for (unsigned s = 0; rc == 0 && s < nslots; s++) {
		rc = open_socket(l, 1, backlog);
		if (rc >= 0) {
			l->fds[s] = rc;
			rc = 0;
		}
	}
	net_format_addr((struct sockaddr *)&l->addr, l->addrlen, l->name + 4, sizeof(l->name) - 4);
	memcpy(l->name, l->spec.proto == LISTEN_UDP ? "udp " : "tcp ", 4);
	if (rc < 0) {
		snprintf(why, whylen, "cannot bind %s: %s", l->name, strerror(-rc));
		return -1;
	}
	return 0;
}

static int add_listener(struct listener_set *set, const struct listen_spec *spec,
			const struct addrinfo *ai)
{
	struct listener *v;

	for (unsigned i = 0; i < set->n; i++)
		if (set->v[i].spec.proto == spec->proto && set->v[i].addrlen == ai->ai_addrlen &&
		    memcmp(&set->v[i].addr, ai->ai_addr, ai->ai_addrlen) == 0)
			return 0; /* a name that resolves to one address twice */
	v = realloc(set->v, (set->n + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	set->v = v;
	memset(&v[set->n], 0, sizeof(v[set->n]));
	v[set->n].spec = *spec;
	memcpy(&v[set->n].addr, ai->ai_addr, ai->ai_addrlen);
	v[set->n].addrlen = ai->ai_addrlen;
	set->n++;
	return 0;
}

int listen_open_all(struct listener_set *set, const struct listen_spec *specs, unsigned nspecs,
		    unsigned nslots, int backlog, char *why, size_t whylen)
{
	memset(set, 0, sizeof(*set));
	set->nslots = nslots;
	for (unsigned i = 0; i < nspecs; i++) {
		struct addrinfo *res, *ai;
		unsigned first = set->n;

		int rc = resolve(&specs[i], &res, why, whylen);

		if (rc != 0)
			return rc;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			if (add_listener(set, &specs[i], ai) < 0) {
				freeaddrinfo(res);
				snprintf(why, whylen, "out of memory");
				return LISTEN_ERR_SYSTEM;
			}
		}
		freeaddrinfo(res);
		for (unsigned k = first; k < set->n; k++)
			if (open_listener(&set->v[k], nslots, backlog, why, whylen) < 0)
				return LISTEN_ERR_SYSTEM;
	}
	return 0;
}

int listen_resolve_check(const struct listen_spec *specs, unsigned nspecs, char *why,
			 size_t whylen)
{
	for (unsigned i = 0; i < nspecs; i++) {
		struct addrinfo *res;
		int rc = resolve(&specs[i], &res, why, whylen);

		if (rc != 0)
			return rc;
		freeaddrinfo(res);
	}
	return 0;
}

void listen_close_all(struct listener_set *set)
{
	for (unsigned i = 0; i < set->n; i++) {
		for (unsigned s = 0; set->v[i].fds != NULL && s < set->nslots; s++)
			if (set->v[i].fds[s] >= 0)
				close(set->v[i].fds[s]);
		free(set->v[i].fds);
	}
	free(set->v);
	memset(set, 0, sizeof(*set));
}

static int adopt_one(struct listener *l, const struct sd_socket *s, char *why, size_t whylen)
{
	enum listen_service service = SERVICE_ECHO;
	int rc;

	l->spec.proto = s->type == SOCK_DGRAM ? LISTEN_UDP : LISTEN_TCP;
	/* FileDescriptorName= may name a service; other names (the unit's) mean echo.
	 * Sockets named "metrics" never come here: the supervisor takes them first. */
	if (parse_service(s->name, &service) == 0 && service == SERVICE_REVERSE &&
	    l->spec.proto == LISTEN_UDP) {
		snprintf(why, whylen, "datagram socket %d from systemd is named 'reverse': the "
				      "reverse service is TCP only", s->fd);
		return -1;
	}
	l->spec.service = service;
	l->addrlen = sizeof(l->addr);
	if (getsockname(s->fd, (struct sockaddr *)&l->addr, &l->addrlen) < 0) {
		snprintf(why, whylen, "getsockname(%d): %s", s->fd, strerror(errno));
		return -1;
	}
	memcpy(l->name, l->spec.proto == LISTEN_UDP ? "udp " : "tcp ", 4);
	net_format_addr((struct sockaddr *)&l->addr, l->addrlen, l->name + 4, sizeof(l->name) - 4);
	if (l->spec.proto == LISTEN_UDP &&
	    (rc = udp_socket_options(s->fd, l->addr.ss_family)) < 0) {
		snprintf(why, whylen, "socket %d from systemd: %s", s->fd, strerror(-rc));
		return -1;
	}
	l->fds = malloc(sizeof(int));
	if (l->fds == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	l->fds[0] = s->fd;
	return 0;
}

int listen_adopt(struct listener_set *set, const struct sd_socket *socks, unsigned n, char *why,
		 size_t whylen)
{
	memset(set, 0, sizeof(*set));
	set->v = calloc(n, sizeof(*set->v));
	if (set->v == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	set->nslots = 1;
	set->shared = 1;
	for (; set->n < n; set->n++)
		if (adopt_one(&set->v[set->n], &socks[set->n], why, whylen) < 0)
			return -1;
	return 0;
}

int listen_slot_fd(const struct listener_set *set, unsigned i, unsigned slot)
{
	return set->v[i].fds[set->shared ? 0 : slot];
}

void listen_keep_slot(struct listener_set *set, unsigned slot)
{
	if (set->shared)
		return;
	for (unsigned i = 0; i < set->n; i++) {
		for (unsigned s = 0; s < set->nslots; s++) {
			if (s != slot && set->v[i].fds[s] >= 0) {
				close(set->v[i].fds[s]);
				set->v[i].fds[s] = -1;
			}
		}
	}
}
