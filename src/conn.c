/* conn: shared connection policy, see conn.h. */
#include "echod/conn.h"

#include <errno.h>
#include <stdlib.h>

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

static const char *const reason_names[] = {"eof", "reset", "error", "idle", "drain"};
static const enum stats_counter reason_counters[] = {STAT_closed_eof, STAT_closed_reset,
						     STAT_closed_error, STAT_closed_idle,
						     STAT_closed_drain};

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
