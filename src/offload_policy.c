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

int offload_over_budget(const struct offload_sample *s, uint64_t banner_len, uint64_t budget)
{
	return offload_owed(s, banner_len) > budget;
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
