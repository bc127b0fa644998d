/* timer: the idle list, see timer.h. */
#include "echod/timer.h"

#include <stddef.h>
#include <time.h>

void timer_init(struct timer_list *list, uint64_t timeout_ms)
{
	list->head.prev = list->head.next = &list->head;
	list->timeout = timeout_ms;
	/* Fine enough to be exact to a tenth, coarse enough to move a busy node rarely. */
	list->granule = timeout_ms / 10 < 100 ? timeout_ms / 10 : 100;
	if (list->granule == 0)
		list->granule = 1;
}

void timer_insert(struct timer_list *list, struct timer_node *node, uint64_t now)
{
	node->stamp = now;
	node->prev = list->head.prev;
	node->next = &list->head;
	list->head.prev->next = node;
	list->head.prev = node;
}

void timer_remove(struct timer_node *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = node;
}

void timer_touch(struct timer_list *list, struct timer_node *node, uint64_t now)
{
	if (list->timeout == 0 || now - node->stamp < list->granule)
		return;
	timer_remove(node);
	timer_insert(list, node, now);
}

static uint64_t deadline(const struct timer_list *list, const struct timer_node *node)
{
	return node->stamp + list->timeout + list->granule;
}

struct timer_node *timer_expired(struct timer_list *list, uint64_t now)
{
	struct timer_node *first = list->head.next;

	if (list->timeout == 0 || first == &list->head || deadline(list, first) > now)
		return NULL;
	return first;
}

int timer_next_ms(const struct timer_list *list, uint64_t now)
{
	const struct timer_node *first = list->head.next;
	uint64_t d;

	if (list->timeout == 0 || first == &list->head)
		return -1;
	d = deadline(list, first);
	if (d <= now)
		return 0;
	return d - now > 60000 ? 60000 : (int)(d - now);
}

int timer_empty(const struct timer_list *list)
{
	return list->head.next == &list->head;
}

struct timer_node *timer_first(struct timer_list *list)
{
	return timer_empty(list) ? NULL : list->head.next;
}

uint64_t timer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
