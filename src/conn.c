/* conn: shared connection policy, see conn.h. */
#include "echod/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echod/net.h"

void pending_hold(struct pending *p, char *buf, uint32_t off, uint32_t len)
{
	p->buf = buf;
	p->off = off;
	p->len = len;
}

int pending_advance(struct pending *p, uint32_t n)
{
	if (n > p->len)
		n = p->len;
	p->off += n;
	p->len -= n;
	return p->len == 0;
}

char *pending_release(struct pending *p)
{
	char *buf = p->buf;

	p->buf = NULL;
	p->off = p->len = 0;
	return buf;
}

int bufpool_init(struct bufpool *pool, size_t size, unsigned spare)
{
	pool->free = calloc(spare ? spare : 1, sizeof(void *));
	if (pool->free == NULL)
		return -ENOMEM;
	pool->nfree = 0;
	pool->spare = spare;
	pool->size = size;
	pool->outstanding = 0;
	return 0;
}

void bufpool_fini(struct bufpool *pool)
{
	while (pool->nfree > 0)
		free(pool->free[--pool->nfree]);
	free(pool->free);
	pool->free = NULL;
}

void *bufpool_get(struct bufpool *pool)
{
	void *buf = pool->nfree > 0 ? pool->free[--pool->nfree] : malloc(pool->size);

	if (buf != NULL)
		pool->outstanding++;
	return buf;
}

void bufpool_put(struct bufpool *pool, void *buf)
{
	if (buf == NULL)
		return;
	pool->outstanding--;
	if (pool->nfree < pool->spare)
		pool->free[pool->nfree++] = buf;
	else
		free(buf);
}

void conn_log_start(struct conn_log *l, const struct sockaddr *peer, unsigned listener,
		    uint64_t now)
{
	l->start = now;
	l->listener = (uint8_t)listener;
	l->family = 0;
	if (peer == NULL)
		return;
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)peer;

		memset(l->addr, 0, 10);
		l->addr[10] = l->addr[11] = 0xff;
		memcpy(l->addr + 12, &in->sin_addr, 4);
		l->port = ntohs(in->sin_port);
		l->family = AF_INET;
	} else if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)peer;

		memcpy(l->addr, &in6->sin6_addr, 16);
		l->port = ntohs(in6->sin6_port);
		l->family = AF_INET6;
	}
}

static size_t clamp(int n, size_t cap)
{
	if (n < 0 || cap == 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t conn_log_where(const struct conn_log *l, const char *listener, const char *service,
		      char *out, size_t cap)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
	char peer[64] = "unknown";

	if (l->family != 0) {
		/* net_format_addr prints an IPv4-mapped address as IPv4 */
		memcpy(&sa.sin6_addr, l->addr, 16);
		sa.sin6_port = htons(l->port);
		net_format_addr((const struct sockaddr *)&sa, sizeof(sa), peer, sizeof(peer));
	}
	return clamp(snprintf(out, cap, "peer=%s listener=%s service=%s", peer, listener, service),
		     cap);
}

size_t conn_log_totals(const struct conn_log *l, uint64_t now, char *out, size_t cap)
{
	uint64_t ms = now > l->start ? now - l->start : 0;

	return clamp(snprintf(out, cap, "in=%llu out=%llu duration=%llu.%03llus",
			      (unsigned long long)l->bytes_in, (unsigned long long)l->bytes_out,
			      (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000)),
		     cap);
}

static const char *const reason_names[] = {"eof",   "reset", "error",
					   "idle",  "drain", "offload-overrun"};
static const enum stats_counter reason_counters[] = {
    STAT_closed_eof,  STAT_closed_reset, STAT_closed_error,
    STAT_closed_idle, STAT_closed_drain, STAT_offload_overruns};

const char *conn_reason_name(enum conn_close_reason why)
{
	return reason_names[why];
}

enum stats_counter conn_reason_counter(enum conn_close_reason why)
{
	return reason_counters[why];
}

enum conn_close_reason conn_errno_reason(int err)
{
	return err == ECONNRESET || err == EPIPE || err == ETIMEDOUT ? CLOSE_RESET : CLOSE_ERROR;
}
