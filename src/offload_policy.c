/* offload_policy: the tcp_info arithmetic of --offload=sockmap, see offload.h. */
#include "echod/offload.h"

uint64_t offload_bytes_in(const struct offload_sample *s)
{
	return s->fin && s->rx > 0 ? s->rx - 1 : s->rx;
}

uint64_t offload_bytes_out(const struct offload_sample *s, uint64_t banner_len)
{
	return s->acked > banner_len ? s->acked - banner_len : 0;
}

uint64_t offload_owed(const struct offload_sample *s, uint64_t banner_len)
{
	uint64_t in = offload_bytes_in(s), out = offload_bytes_out(s, banner_len);

	return in > out ? in - out : 0;
}

int offload_drained(const struct offload_sample *s, uint64_t banner_len)
{
	return s->fin && s->acked + s->outq >= banner_len + offload_bytes_in(s);
}

/* ceil(n * num / den) without overflow, for num <= den. */
static uint64_t scale(uint64_t n, uint64_t num, uint64_t den)
{
	while (den > UINT32_MAX) {
		den >>= 1;
		num >>= 1;
	}
	if (den == 0)
		return 0;
	return n / den * num + ((n % den) * num + den - 1) / den;
}

uint64_t offload_owed_segs(uint64_t owed, struct offload_window cur, struct offload_window prev)
{
	struct offload_window older = prev.bytes > 0 ? prev : cur;
	uint64_t segs = cur.segs;

	if (owed > cur.bytes && older.bytes > 0)
		segs += scale(owed - cur.bytes, older.segs < older.bytes ? older.segs : older.bytes,
			      older.bytes);
	return segs < owed ? segs : owed;
}

int offload_over_budget(const struct offload_sample *s, uint64_t banner_len, uint64_t owed_segs,
			uint64_t budget)
{
	uint64_t owed = offload_owed(s, banner_len);

	if (owed_segs > (UINT64_MAX - owed) / OFFLOAD_SEG_CHARGE)
		return 1;
	return owed + owed_segs * OFFLOAD_SEG_CHARGE > budget;
}

uint64_t offload_next_mark(uint64_t rx, uint64_t budget)
{
	uint64_t step = budget / 4 > 0 ? budget / 4 : 1;

	return rx > UINT64_MAX - 1 - step ? UINT64_MAX - 1 : rx + step;
}

int offload_recheck_due(uint64_t rx, uint64_t mark)
{
	return mark == UINT64_MAX || rx >= mark;
}
