/*
 * service: the small services besides echo, per listener (-l :13/daytime ...).
 *
 *   daytime (RFC 867)  TCP: one line, then close. UDP: one datagram per datagram.
 *   discard (RFC 863)  read and drop; nothing is held, reads are budgeted per turn.
 *   chargen (RFC 864)  the rotating 72-character pattern, sent only while the kernel
 *                      takes it (backpressure: a slow reader slows chargen, nothing
 *                      piles up); what the peer sends is dropped. UDP: 6 lines
 *                      (444 bytes) per datagram, behind the UDP guard.
 *   reverse            TCP only: each newline-terminated line comes back reversed
 *                      (a "\r\n" or "\n" ending stays at the end): by characters
 *                      when the line is valid UTF-8, by bytes otherwise. A line longer than
 *                      SVC_LINE_MAX bytes closes the connection (counted closed_error);
 *                      a last line without a newline is reversed when the peer closes.
 *
 * The text generators are pure and unit-tested. TCP connections of these services
 * are readiness-driven (edge-triggered epoll, or io_uring multishot poll) and live
 * in a svc_set per worker, apart from the echo path, which they do not touch.
 */
#ifndef ECHOD_SERVICE_H
#define ECHOD_SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "echod/conn.h"
#include "echod/listen.h"
#include "echod/timer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SVC_LINE_MAX	   4096u		    /* reverse: longest line, newline included */
#define SVC_CHARGEN_LINE   74u			    /* 72 characters and CRLF */
#define SVC_CHARGEN_PERIOD (95u * SVC_CHARGEN_LINE) /* the pattern repeats after 95 lines */
#define SVC_CHARGEN_UDP	   (6u * SVC_CHARGEN_LINE)  /* under RFC 864's 512 bytes */
#define SVC_DAYTIME_MAX	   64u

/* ---- pure ---- */

/* "Monday, November 23, 2026 09:02:35-UTC\r\n" (RFC 867's example format, in UTC).
 * Returns its length (at most SVC_DAYTIME_MAX - 1), 0 when out is too small. */
size_t svc_daytime(time_t t, char *out, size_t cap);
/* Writes len bytes of the chargen stream from *pos (0 <= *pos < SVC_CHARGEN_PERIOD)
 * and advances *pos. */
void svc_chargen(uint32_t *pos, char *out, size_t len);

struct svc_line {
	char *buf; /* SVC_LINE_MAX bytes, held while a partial line is */
	uint32_t len;
};

/* s[0, n) reversed into out (n bytes): by code points when s is well-formed UTF-8
 * (RFC 3629: ASCII, and no overlong form, surrogate or code point over U+10FFFF), so
 * "h\xc3\xa9" gives "\xc3\xa9h"; byte by byte otherwise. */
void svc_reverse_text(const char *s, size_t n, char *out);
/* Feeds n bytes: every complete line goes to out reversed, the partial rest stays in
 * l. out must hold n + l->len bytes. Returns the bytes written to out, or -1 when a
 * line grew to SVC_LINE_MAX bytes without its newline. */
ssize_t svc_reverse_feed(struct svc_line *l, const char *in, size_t n, char *out);
/* The peer closed: the partial line reversed into out (SVC_LINE_MAX), l emptied. */
size_t svc_reverse_flush(struct svc_line *l, char *out);

/* ---- TCP connections of the services ---- */

struct worker;

#define SVC_READABLE 0x01
#define SVC_WRITABLE 0x02
#define SVC_RDHUP    0x04
#define SVC_READY    0x08 /* on the ready list: its budget ran out */
#define SVC_FIN	     0x10 /* the peer closed: flush what is owed, then close */
#define SVC_CLOSED   0x20

struct svc_conn {
	int kind; /* EV_SVC: first, as in every event-data struct */
	int fd;
	uint8_t service; /* enum listen_service */
	uint8_t flags;
	uint16_t refs; /* backend requests in flight (io_uring's poll) */
	uint32_t pos;  /* chargen: the next byte of the pattern */
	uint16_t listener; /* its listener's stats row (stats_lrow) */
	struct timer_node idle;
	struct limits_ticket ticket;
	struct pending out;	/* reverse: output the kernel did not take yet */
	struct svc_line line;	/* reverse: the partial line */
	struct svc_conn *next;	/* ready list */
	struct svc_conn *znext; /* closed, waiting to be freed */
};

struct svc_set {
	struct worker *w;
	struct timer_list idle;
	struct bufpool pool; /* CONN_BUF_SIZE buffers */
	char *in;	     /* the read buffer */
	struct svc_conn *ready, **ready_tail;
	struct svc_conn *zombies;
	unsigned long nconns; /* open */
	unsigned long nzombies;
	/* The backend, when a connection closes: cancel what it has in flight. */
	void (*closing)(void *arg, struct svc_conn *c);
	void *arg;
};

int svc_init(struct svc_set *s, struct worker *w, void (*closing)(void *, struct svc_conn *),
	     void *arg);
/* Frees everything, in flight or not: after the backend's last completion. */
void svc_fini(struct svc_set *s);
/* A connection accepted on listener index li, of `service` (not echo): admitted
 * against the limits and counted; daytime is answered and closed here. Returns the
 * connection the backend must watch for readiness, or NULL when there is none. */
struct svc_conn *svc_accept(struct svc_set *s, int fd, unsigned li, const struct sockaddr *peer,
			    enum listen_service service, uint64_t now);
/* Readiness from the backend (edge-triggered). */
void svc_event(struct svc_set *s, struct svc_conn *c, int readable, int writable, int rdhup,
	       uint64_t now);
/* The backend could not watch it (errno err). */
void svc_fail(struct svc_set *s, struct svc_conn *c, int err);
/* Once per loop turn: ready connections, idle timeouts, all closed when close_all
 * (the drain deadline), closed connections freed once their refs are 0. */
void svc_tick(struct svc_set *s, uint64_t now, int close_all);
/* ms until svc_tick has work (0: ready connections wait), -1 when none. */
int svc_next_ms(const struct svc_set *s, uint64_t now);
/* Connections open or waiting for their backend requests to end. */
unsigned long svc_busy(const struct svc_set *s);

/* UDP: the answer to a datagram in buf (capacity cap, len received) for service;
 * -1: none. Echo is the datagram itself. */
ssize_t svc_udp_answer(enum listen_service service, uint32_t *chargen_pos, char *buf, size_t len,
		       size_t cap);

#ifdef __cplusplus
}
#endif
#endif
