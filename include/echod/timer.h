/*
 * timer: idle timeouts, O(1) per connection.
 *
 * Every connection has the same timeout, so one list ordered by the time of each
 * node's last (re)insertion is a complete timer: touch moves a node to the tail,
 * expiry pops from the head. To keep the hot path cheap a touch only moves the node
 * once per granule; expiry waits one granule more, so a connection is closed after
 * at least `timeout` and at most `timeout + granule` without activity.
 *
 * The list also holds every connection when the timeout is 0 (never): it is then the
 * worker's list of open connections, walked on drain.
 */
#ifndef ECHOD_TIMER_H
#define ECHOD_TIMER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct timer_node {
	struct timer_node *prev, *next;
	uint64_t stamp;            /* ms, monotonic: last insertion */
};

struct timer_list {
	struct timer_node head;    /* sentinel */
	uint64_t timeout;          /* ms, 0: never expire */
	uint64_t granule;          /* ms */
};

void timer_init(struct timer_list *list, uint64_t timeout_ms);
void timer_insert(struct timer_list *list, struct timer_node *node, uint64_t now);
/* Activity: moves the node to the tail at most once per granule. */
void timer_touch(struct timer_list *list, struct timer_node *node, uint64_t now);
void timer_remove(struct timer_node *node);
/* The oldest node whose timeout has passed, or NULL. The caller removes it. */
struct timer_node *timer_expired(struct timer_list *list, uint64_t now);
/* ms until the next expiry, -1 when none is due (for epoll_wait). */
int timer_next_ms(const struct timer_list *list, uint64_t now);
int timer_empty(const struct timer_list *list);
/* The oldest node, or NULL: for walking the list while closing everything. */
struct timer_node *timer_first(struct timer_list *list);

/* Monotonic milliseconds (vDSO, no system call). */
uint64_t timer_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
