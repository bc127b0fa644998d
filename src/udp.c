/* udp: the loop and reflection guard, the rate table, and the epoll batch. */
#include "echod/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "echod/limits.h"
#include "echod/log.h"
#include "echod/net.h"
#include "echod/service.h"
#include "echod/stats.h"
#include "echod/worker.h"

#define UDP_LOG_EVERY_MS 1000

static const char *const verdict_names[] = {"answered", "source port below 1024",
					    "broadcast, multicast or unspecified source",
					    "over --udp-rate", "refused by --allow / --deny"};

const char *udp_verdict_name(enum udp_verdict v)
{
	return verdict_names[v];
}

/* 0.0.0.0/8 (this network), 224.0.0.0/4 (multicast) and 240.0.0.0/4 (reserved,
 * with 255.255.255.255, the limited broadcast). Host byte order. */
static int bad_ipv4(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 28) == 0xe || (a >> 28) == 0xf;
}

enum udp_verdict udp_guard(const struct sockaddr *src, socklen_t len)
{
	if (src->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)src;

		if (bad_ipv4(ntohl(in->sin_addr.s_addr)))
			return UDP_REFUSED_ADDR;
		return ntohs(in->sin_port) < 1024 ? UDP_REFUSED_PORT : UDP_ANSWER;
	}
	if (src->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)src;
		const struct in6_addr *a = &in6->sin6_addr;
		uint32_t v4;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(&v4, &a->s6_addr[12], 4);
			if (bad_ipv4(ntohl(v4)))
				return UDP_REFUSED_ADDR;
		} else if (IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_MULTICAST(a)) {
			return UDP_REFUSED_ADDR;
		}
		return ntohs(in6->sin6_port) < 1024 ? UDP_REFUSED_PORT : UDP_ANSWER;
	}
	return UDP_REFUSED_ADDR; /* no usable source address: nobody to answer */
}

/* ---- the rate table ---- */

int udp_rate_init(struct udp_ratelimit *r, unsigned rate, unsigned entries, uint32_t seed)
{
	memset(r, 0, sizeof(*r));
	r->rate = rate;
	r->seed = seed;
	if (rate == 0)
		return 0;
	r->v = calloc(entries, sizeof(*r->v));
	if (r->v == NULL)
		return -ENOMEM;
	r->mask = entries - 1;
	return 0;
}

void udp_rate_fini(struct udp_ratelimit *r)
{
	free(r->v);
	r->v = NULL;
}

static uint32_t key_hash(const uint8_t key[16], uint32_t seed)
{
	uint64_t a, b, h;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	h = (a ^ seed) * 0x9e3779b97f4a7c15ull;
	h = (h ^ (h >> 29) ^ b) * 0xbf58476d1ce4e5b9ull;
	return (uint32_t)(h ^ (h >> 32));
}

/* The source's slot: its own, a free one, or the stalest of the window (forgotten). */
static struct udp_rate_entry *rate_slot(struct udp_ratelimit *r, const uint8_t key[16], int *fresh)
{
	uint32_t h = key_hash(key, r->seed);
	struct udp_rate_entry *stalest = NULL;

	for (uint32_t i = 0; i < UDP_RATE_PROBE; i++) {
		struct udp_rate_entry *e = &r->v[(h + i) & r->mask];

		if (e->stamp != 0 && memcmp(e->key, key, 16) == 0) {
			*fresh = 0;
			return e;
		}
		if (stalest == NULL || e->stamp < stalest->stamp)
			stalest = e;
	}
	*fresh = 1;
	return stalest;
}

unsigned udp_answer_cost(size_t req, size_t ans)
{
	size_t base = req > 0 ? req : 1;

	return ans <= base ? 1 : (unsigned)((ans + base - 1) / base);
}

int udp_rate_take(struct udp_ratelimit *r, const uint8_t key[16], uint64_t now_ms, unsigned cost)
{
	int64_t full;
	uint64_t elapsed;
	struct udp_rate_entry *e;
	int fresh;

	if (r->v == NULL)
		return 1;
	full = (int64_t)r->rate * 1000;
	e = rate_slot(r, key, &fresh);
	if (fresh) {
		memcpy(e->key, key, 16);
		e->milli = full;
	} else {
		/* rate tokens a second are rate milli-tokens a millisecond; the largest debt
		 * (a 64 KiB answer) is paid off within a day at rate 1 */
		elapsed = now_ms > e->stamp ? now_ms - e->stamp : 0;
		e->milli = elapsed >= 86400000 || e->milli + (int64_t)(elapsed * r->rate) >= full
			       ? full
			       : e->milli + (int64_t)(elapsed * r->rate);
	}
	e->stamp = now_ms;
	if (e->milli < 1000)
		return 0;
	e->milli -= (int64_t)cost * 1000;
	return 1;
}

/* ---- the worker's UDP state ---- */

int udp_socket_options(int fd, int family)
{
	int on = 1;

	if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)) < 0)
		return -errno;
	if (family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) < 0)
		return -errno;
	return 0;
}

static int batch_init(struct udp_worker *u)
{
	u->bufs = mmap(NULL, (size_t)UDP_BATCH * UDP_BUF_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->bufs == MAP_FAILED) {
		u->bufs = NULL;
		return -errno;
	}
	u->in = calloc(UDP_BATCH, sizeof(*u->in));
	u->out = calloc(UDP_BATCH, sizeof(*u->out));
	u->iov_in = calloc(UDP_BATCH, sizeof(*u->iov_in));
	u->iov_out = calloc(UDP_BATCH, sizeof(*u->iov_out));
	u->src = calloc(UDP_BATCH, sizeof(*u->src));
	u->ctl_in = calloc(UDP_BATCH, sizeof(*u->ctl_in));
	u->ctl_out = calloc(UDP_BATCH, sizeof(*u->ctl_out));
	if (u->in == NULL || u->out == NULL || u->iov_in == NULL || u->iov_out == NULL ||
	    u->src == NULL || u->ctl_in == NULL || u->ctl_out == NULL)
		return -ENOMEM;
	return 0;
}

int udp_worker_init(struct udp_worker *u, struct worker *w, int with_batch)
{
	int rc;

	memset(u, 0, sizeof(*u));
	u->w = w;
	rc = udp_rate_init(&u->rate, w->cfg->udp_rate, UDP_RATE_ENTRIES, w->limits.seed);
	if (rc == 0 && with_batch)
		rc = batch_init(u);
	return rc;
}

void udp_worker_fini(struct udp_worker *u)
{
	udp_rate_fini(&u->rate);
	if (u->bufs != NULL)
		munmap(u->bufs, (size_t)UDP_BATCH * UDP_BUF_SIZE);
	free(u->in);
	free(u->out);
	free(u->iov_in);
	free(u->iov_out);
	free(u->src);
	free(u->ctl_in);
	free(u->ctl_out);
	memset(u, 0, sizeof(*u));
}

/* Counted always; logged at most once a second, with what was refused meanwhile. */
static void udp_refuse(struct udp_worker *u, enum udp_verdict v, const struct sockaddr *src,
		       socklen_t srclen, uint64_t now)
{
	static const enum stats_counter counter[] = {STAT_udp_out, STAT_udp_refused_port,
						     STAT_udp_refused_addr, STAT_udp_refused_rate,
						     STAT_udp_refused_acl};
	char addr[64];

	stats_add(u->w->stats, counter[v], 1);
	u->since[v]++;
	if (now < u->next_log)
		return;
	net_format_addr(src, srclen, addr, sizeof(addr));
	log_warnx("udp: not answered since the last report: %llu for a source port below 1024, "
		  "%llu for a broadcast, multicast or unspecified source, %llu over --udp-rate, "
		  "%llu refused by --allow / --deny; the latest from %s (%s)",
		  (unsigned long long)u->since[UDP_REFUSED_PORT],
		  (unsigned long long)u->since[UDP_REFUSED_ADDR],
		  (unsigned long long)u->since[UDP_REFUSED_RATE],
		  (unsigned long long)u->since[UDP_REFUSED_ACL], addr, udp_verdict_name(v));
	memset(u->since, 0, sizeof(u->since));
	u->next_log = now + UDP_LOG_EVERY_MS;
}

/* The access lists, for a source the guard can read (it refuses the others). */
static int udp_acl_refuses(const struct config *cfg, const struct sockaddr *src, socklen_t len)
{
	uint8_t key[16];

	if (!acl_active(&cfg->allow, &cfg->deny))
		return 0;
	if (!(src->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) &&
	    !(src->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)))
		return 0;
	net_addr_key(src, key);
	return !acl_permits(&cfg->allow, &cfg->deny, key);
}

ssize_t udp_handle(struct udp_worker *u, enum listen_service service, unsigned li,
		   const struct sockaddr *src, socklen_t srclen, char *buf, size_t len, size_t cap,
		   uint64_t now_ms)
{
	enum udp_verdict v;
	uint8_t key[16];
	ssize_t ans;

	stats_add2(u->w->stats, STAT_udp_in, li, LSTAT_udp_in, 1);
	stats_add(u->w->stats, STAT_msgs, 1);
	stats_add2(u->w->stats, STAT_bytes_in, li, LSTAT_bytes_in, len);
	v = udp_acl_refuses(u->w->cfg, src, srclen) ? UDP_REFUSED_ACL : UDP_ANSWER;
	if (v == UDP_ANSWER && service == SERVICE_DISCARD)
		return -1; /* nothing goes out: nothing to guard */
	if (v == UDP_ANSWER)
		v = udp_guard(src, srclen);
	if (v != UDP_ANSWER) {
		udp_refuse(u, v, src, srclen, now_ms);
		return -1;
	}
	/* The answer first: what it costs depends on its size. */
	ans = svc_udp_answer(service, &u->chargen_pos, buf, len, cap);
	if (ans < 0)
		return -1;
	limits_key(src, key);
	if (!udp_rate_take(&u->rate, key, now_ms, udp_answer_cost(len, (size_t)ans))) {
		udp_refuse(u, UDP_REFUSED_RATE, src, srclen, now_ms);
		return -1;
	}
	return ans;
}

size_t udp_reply_control(const void *ctl, size_t ctllen, void *out, size_t outcap)
{
	struct msghdr in = {.msg_control = (void *)ctl, .msg_controllen = ctllen};
	struct msghdr o = {.msg_control = out, .msg_controllen = outcap};
	struct cmsghdr *c, *oc = CMSG_FIRSTHDR(&o);

	for (c = CMSG_FIRSTHDR(&in); c != NULL && oc != NULL; c = CMSG_NXTHDR(&in, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
		    outcap >= CMSG_SPACE(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			pi.ipi_ifindex = 0;	/* routing picks the interface */
			pi.ipi_addr.s_addr = 0; /* ipi_spec_dst: the request's local address */
			oc->cmsg_level = IPPROTO_IP;
			oc->cmsg_type = IP_PKTINFO;
			oc->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
			return CMSG_SPACE(sizeof(pi));
		}
		if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
		    outcap >= CMSG_SPACE(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			if (IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr))
				return 0; /* no multicast source: the kernel picks one */
			pi.ipi6_ifindex = 0;
			oc->cmsg_level = IPPROTO_IPV6;
			oc->cmsg_type = IPV6_PKTINFO;
			oc->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(oc), &pi, sizeof(pi));
			return CMSG_SPACE(sizeof(pi));
		}
	}
	return 0;
}

/* ---- epoll: recvmmsg, decide, sendmmsg ---- */

static int batch_recv(struct udp_worker *u, int fd)
{
	int n;

	for (unsigned i = 0; i < UDP_BATCH; i++) {
		u->iov_in[i].iov_base = u->bufs + (size_t)i * UDP_BUF_SIZE;
		u->iov_in[i].iov_len = UDP_BUF_SIZE;
		u->in[i].msg_hdr = (struct msghdr){.msg_name = &u->src[i],
						   .msg_namelen = sizeof(u->src[i]),
						   .msg_iov = &u->iov_in[i],
						   .msg_iovlen = 1,
						   .msg_control = u->ctl_in[i],
						   .msg_controllen = UDP_CTL_SIZE};
	}
	do
		n = recvmmsg(fd, u->in, UDP_BATCH, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Sends out[0..n); a message the kernel refuses is dropped and counted, the rest go on. */
static void batch_send(struct udp_worker *u, int fd, unsigned li, unsigned n)
{
	unsigned done = 0;

	while (done < n) {
		int s = sendmmsg(fd, u->out + done, n - done, MSG_DONTWAIT);

		if (s < 0 && errno == EINTR)
			continue;
		if (s < 0 && errno == EAGAIN) {
			/* The send buffer is full: UDP may drop, and holding would be unbounded. */
			stats_add(u->w->stats, STAT_udp_dropped, n - done);
			return;
		}
		if (s < 0) {
			log_debug("udp: sendmmsg: %s", strerror(errno));
			stats_add(u->w->stats, STAT_udp_dropped, 1);
			done++;
			continue;
		}
		for (int i = 0; i < s; i++) {
			stats_add2(u->w->stats, STAT_udp_out, li, LSTAT_udp_out, 1);
			stats_add2(u->w->stats, STAT_bytes_out, li, LSTAT_bytes_out,
				   u->out[done + (unsigned)i].msg_len);
		}
		done += (unsigned)s;
	}
}

/* Builds out[] from the n datagrams received; returns how many are answered. */
static unsigned batch_answers(struct udp_worker *u, struct udp_sock *s, int n, uint64_t now)
{
	unsigned k = 0;

	for (int i = 0; i < n; i++) {
		struct msghdr *h = &u->in[i].msg_hdr;
		char *buf = u->iov_in[i].iov_base;
		ssize_t len;

		if (h->msg_flags & MSG_TRUNC) {
			stats_add(u->w->stats, STAT_udp_dropped, 1); /* cannot happen at 64 KiB */
			continue;
		}
		len = udp_handle(u, s->service, s->listener, h->msg_name, h->msg_namelen, buf,
				 u->in[i].msg_len, UDP_BUF_SIZE, now);
		if (len < 0)
			continue;
		u->iov_out[k] = (struct iovec){.iov_base = buf, .iov_len = (size_t)len};
		u->out[k].msg_hdr = (struct msghdr){.msg_name = h->msg_name,
						    .msg_namelen = h->msg_namelen,
						    .msg_iov = &u->iov_out[k],
						    .msg_iovlen = 1};
		u->out[k].msg_hdr.msg_controllen = udp_reply_control(
		    h->msg_control, h->msg_controllen, u->ctl_out[k], UDP_CTL_SIZE);
		if (u->out[k].msg_hdr.msg_controllen > 0)
			u->out[k].msg_hdr.msg_control = u->ctl_out[k];
		k++;
	}
	return k;
}

int udp_serve(struct udp_worker *u, struct udp_sock *s, uint64_t now_ms)
{
	for (int budget = UDP_BUDGET; budget > 0; budget--) {
		int n = batch_recv(u, s->fd);
		unsigned k;

		if (n == -EAGAIN)
			return 0;
		if (n < 0) {
			/* ICMP errors of earlier answers surface here; they cost nothing. */
			if (n != -ECONNREFUSED && n != -EHOSTUNREACH && n != -ENETUNREACH)
				log_debug("udp: recvmmsg: %s", strerror(-n));
			continue;
		}
		k = batch_answers(u, s, n, now_ms);
		if (k > 0)
			batch_send(u, s->fd, s->listener, k);
		if (n < UDP_BATCH)
			return 0;
	}
	return 1;
}
