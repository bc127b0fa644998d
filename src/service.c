/* service: daytime, discard, chargen and reverse; see service.h. */
#include "echod/service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echod/log.h"
#include "echod/worker.h"

#define SVC_BUDGET     16 /* reads or sends per connection per turn */
#define SVC_SPARE_BUFS 16
#define SVC_REVERSE_IN (CONN_BUF_SIZE - SVC_LINE_MAX) /* so the output fits one buffer */

/* ---- daytime ---- */

static const char *const wdays[] = {"Sunday",	"Monday", "Tuesday", "Wednesday",
				    "Thursday", "Friday", "Saturday"};
static const char *const months[] = {"January",	  "February", "March",	  "April",
				     "May",	  "June",     "July",	  "August",
				     "September", "October",  "November", "December"};

/* Proleptic Gregorian date of a day count since 1970-01-01, with no time-zone files:
 * workers run under seccomp and must not open /etc/localtime. */
static void civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

size_t svc_daytime(time_t t, char *out, size_t cap)
{
	int64_t days = (int64_t)t / 86400, secs = (int64_t)t % 86400, y;
	unsigned m, d;
	int n;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	civil(days, &y, &m, &d);
	n = snprintf(out, cap, "%s, %s %u, %lld %02d:%02d:%02d-UTC\r\n",
		     wdays[((days % 7) + 11) % 7], months[m - 1], d, (long long)y,
		     (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* ---- chargen ---- */

void svc_chargen(uint32_t *pos, char *out, size_t len)
{
	static const char crlf[] = "\r\n";
	uint32_t p = *pos;

	while (len > 0) {
		uint32_t line = p / SVC_CHARGEN_LINE, col = p % SVC_CHARGEN_LINE;
		size_t take;

		if (col < 72) {
			take = 72 - col < len ? 72 - col : len;
			for (size_t i = 0; i < take; i++)
				out[i] = (char)(' ' + (line + col + i) % 95);
		} else {
			take = SVC_CHARGEN_LINE - col < len ? SVC_CHARGEN_LINE - col : len;
			memcpy(out, crlf + (col - 72), take);
		}
		out += take;
		len -= take;
		p = (uint32_t)((p + take) % SVC_CHARGEN_PERIOD);
	}
	*pos = p;
}

/* ---- reverse ---- */

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong form, no
 * surrogate, nothing above U+10FFFF), 0 when there is none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0; /* a continuation byte, C0, C1 (overlong) or F5 to FF */
	if (s[0] == 0xe0)
		lo = 0xa0; /* below: overlong */
	else if (s[0] == 0xed)
		hi = 0x9f; /* above: surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90; /* below: overlong */
	else if (s[0] == 0xf4)
		hi = 0x8f; /* above: over U+10FFFF */
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

void svc_reverse_text(const char *s, size_t n, char *out)
{
	size_t i, k;

	for (i = 0; i < n; i += k) {
		k = utf8_len((const unsigned char *)s + i, n - i);
		if (k == 0)
			break;
		memcpy(out + n - i - k, s + i, k);
	}
	if (i == n)
		return;
	for (i = 0; i < n; i++) /* not UTF-8: byte by byte */
		out[n - 1 - i] = s[i];
}

/* The line held in l followed by b (its newline already cut off), reversed into out;
 * a final '\r' stays last. The line is made whole in l->buf first, so a character
 * split between two reads is reversed as one. Empties l. */
static char *put_line(char *out, struct svc_line *l, const char *b, size_t blen, int nl)
{
	const char *s = b;
	size_t n = blen;
	int cr;

	if (l->len > 0) {
		if (blen > 0)
			memcpy(l->buf + l->len, b, blen); /* fits: checked by the caller */
		s = l->buf;
		n = l->len + blen;
	}
	cr = n > 0 && s[n - 1] == '\r';
	n -= (size_t)cr;
	svc_reverse_text(s, n, out);
	out += n;
	if (cr)
		*out++ = '\r';
	if (nl)
		*out++ = '\n';
	l->len = 0;
	return out;
}

ssize_t svc_reverse_feed(struct svc_line *l, const char *in, size_t n, char *out)
{
	char *o = out;
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(in + i, '\n', n - i);
		size_t seg = nl != NULL ? (size_t)(nl - (in + i)) : n - i;

		if ((size_t)l->len + seg + 1 > SVC_LINE_MAX)
			return -1; /* even with its newline next, the line is too long */
		if (nl == NULL) {
			memcpy(l->buf + l->len, in + i, seg);
			l->len += (uint32_t)seg;
			break;
		}
		o = put_line(o, l, in + i, seg, 1);
		i += seg + 1;
	}
	return o - out;
}

size_t svc_reverse_flush(struct svc_line *l, char *out)
{
	return (size_t)(put_line(out, l, NULL, 0, 0) - out);
}

/* ---- UDP ---- */

ssize_t svc_udp_answer(enum listen_service service, uint32_t *chargen_pos, char *buf, size_t len,
		       size_t cap)
{
	switch (service) {
	case SERVICE_ECHO:
		return (ssize_t)len;
	case SERVICE_DAYTIME:
		return (ssize_t)svc_daytime(time(NULL), buf, cap);
	case SERVICE_CHARGEN:
		if (cap < SVC_CHARGEN_UDP)
			return -1;
		svc_chargen(chargen_pos, buf, SVC_CHARGEN_UDP);
		return SVC_CHARGEN_UDP;
	case SERVICE_DISCARD:
	case SERVICE_REVERSE: /* TCP only: refused by the configuration */
		break;
	}
	return -1;
}

/* ---- TCP connections ---- */

static struct svc_conn *svc_of(struct timer_node *node)
{
	return (struct svc_conn *)((char *)node - offsetof(struct svc_conn, idle));
}

static void svc_stat(struct svc_set *s, enum stats_counter c, uint64_t n)
{
	stats_add(s->w->stats, c, n);
}

int svc_init(struct svc_set *s, struct worker *w, void (*closing)(void *, struct svc_conn *),
	     void *arg)
{
	memset(s, 0, sizeof(*s));
	s->w = w;
	s->closing = closing;
	s->arg = arg;
	s->ready_tail = &s->ready;
	timer_init(&s->idle, (uint64_t)w->cfg->idle_timeout * 1000);
	if (bufpool_init(&s->pool, CONN_BUF_SIZE, SVC_SPARE_BUFS) < 0 ||
	    (s->in = bufpool_get(&s->pool)) == NULL)
		return -ENOMEM;
	return 0;
}

/* The only way a service connection goes away: gives back, counts, says why. */
static void svc_close(struct svc_set *s, struct svc_conn *c, enum conn_close_reason why)
{
	if (c->flags & SVC_CLOSED)
		return;
	log_debug("%s connection %d closed: %s", listen_service_name(c->service), c->fd,
		  conn_reason_name(why));
	c->flags |= SVC_CLOSED;
	if (c->out.buf != NULL) {
		bufpool_put(&s->pool, pending_release(&c->out));
		svc_stat(s, STAT_buffers_held, (uint64_t)-1);
	}
	bufpool_put(&s->pool, c->line.buf);
	c->line.buf = NULL;
	limits_release(&s->w->limits, &c->ticket);
	svc_stat(s, conn_reason_counter(why), 1);
	timer_remove(&c->idle);
	s->nconns--;
	s->nzombies++;
	if (s->closing != NULL)
		s->closing(s->arg, c);
	/* The descriptor goes with the struct (svc_sweep), once no request names it. */
	c->znext = s->zombies;
	s->zombies = c;
}

void svc_fail(struct svc_set *s, struct svc_conn *c, int err)
{
	svc_close(s, c, conn_errno_reason(err));
}

static void svc_ready(struct svc_set *s, struct svc_conn *c)
{
	if (c->flags & (SVC_READY | SVC_CLOSED))
		return;
	c->flags |= SVC_READY;
	c->next = NULL;
	*s->ready_tail = c;
	s->ready_tail = &c->next;
}

/* One recv: n > 0, 0 at EOF (the peer's FIN), -1 when there is nothing now (the
 * edge is used up) or the connection was closed. */
static ssize_t svc_recv(struct svc_set *s, struct svc_conn *c, size_t max, uint64_t now)
{
	ssize_t n;

	do
		n = recv(c->fd, s->in, max, MSG_DONTWAIT); /* nonblocking, whoever accepted it */
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		stats_add2(s->w->stats, STAT_bytes_in, c->listener, LSTAT_bytes_in, (uint64_t)n);
		svc_stat(s, STAT_msgs, 1);
		timer_touch(&s->idle, &c->idle, now);
		/* A short read emptied the socket, unless the FIN is queued behind it. */
		if ((size_t)n < max && !(c->flags & SVC_RDHUP))
			c->flags &= ~SVC_READABLE;
		return n;
	}
	if (n == 0)
		return 0;
	if (errno == EAGAIN)
		c->flags &= ~SVC_READABLE;
	else
		svc_fail(s, c, errno);
	return -1;
}

/* One send of len bytes; returns what the kernel took (0: none now), -1 when closed.
 * A partial send means the socket buffer is full: wait for the next writable edge. */
static ssize_t svc_send(struct svc_set *s, struct svc_conn *c, const char *buf, size_t len,
			uint64_t now)
{
	ssize_t n;

	do
		n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN) {
		svc_fail(s, c, errno);
		return -1;
	}
	if (n < 0)
		n = 0;
	if ((size_t)n < len)
		c->flags &= ~SVC_WRITABLE;
	if (n > 0) {
		stats_add2(s->w->stats, STAT_bytes_out, c->listener, LSTAT_bytes_out, (uint64_t)n);
		timer_touch(&s->idle, &c->idle, now);
	}
	return n;
}

/* discard, and what a chargen peer sends: read and drop. Returns 1 when the budget
 * ran out with more to read. */
static int svc_drop_input(struct svc_set *s, struct svc_conn *c, uint64_t now)
{
	for (int budget = SVC_BUDGET; budget > 0; budget--) {
		ssize_t n;

		if (!(c->flags & SVC_READABLE))
			return 0;
		n = svc_recv(s, c, CONN_BUF_SIZE, now);
		if (n == 0)
			svc_close(s, c, CLOSE_EOF);
		if (n <= 0)
			return 0;
	}
	return 1;
}

/* chargen: as much of the pattern as the kernel takes, regenerated each time, so
 * nothing is held whatever the reader's pace. Returns 1 when the budget ran out. */
static int svc_chargen_out(struct svc_set *s, struct svc_conn *c, uint64_t now)
{
	for (int budget = SVC_BUDGET; budget > 0; budget--) {
		uint32_t p = c->pos;
		ssize_t n;

		if (!(c->flags & SVC_WRITABLE) || (c->flags & SVC_CLOSED))
			return 0;
		svc_chargen(&p, s->in, CONN_BUF_SIZE);
		n = svc_send(s, c, s->in, CONN_BUF_SIZE, now);
		if (n <= 0)
			return 0;
		c->pos = (uint32_t)((c->pos + (uint64_t)n) % SVC_CHARGEN_PERIOD);
	}
	return 1;
}

/* reverse: sends out[0, len) and keeps the tail the kernel did not take (then reads
 * nothing more until it is flushed). Returns -1 when the connection must stop. */
static int svc_reverse_send(struct svc_set *s, struct svc_conn *c, char *out, size_t len,
			    uint64_t now)
{
	ssize_t n = len > 0 ? svc_send(s, c, out, len, now) : 0;

	if (n < 0) {
		bufpool_put(&s->pool, out);
		return -1;
	}
	if ((size_t)n == len) {
		bufpool_put(&s->pool, out);
		return 0;
	}
	pending_hold(&c->out, out, (uint32_t)n, (uint32_t)(len - (size_t)n));
	svc_stat(s, STAT_short_sends, 1);
	svc_stat(s, STAT_buffers_held, 1);
	return -1;
}

/* Flushes held output; returns 0 when nothing is owed any more. */
static int svc_reverse_flush_out(struct svc_set *s, struct svc_conn *c, uint64_t now)
{
	ssize_t n;

	if (c->out.len == 0)
		return 0;
	if (!(c->flags & SVC_WRITABLE))
		return -1;
	n = svc_send(s, c, c->out.buf + c->out.off, c->out.len, now);
	if (n < 0 || !pending_advance(&c->out, (uint32_t)n))
		return -1;
	bufpool_put(&s->pool, pending_release(&c->out));
	svc_stat(s, STAT_buffers_held, (uint64_t)-1);
	return 0;
}

/* One read's worth of lines; -1 when the connection stopped reading for now. */
static int svc_reverse_read(struct svc_set *s, struct svc_conn *c, uint64_t now)
{
	char *out;
	ssize_t n, k;

	if (c->line.buf == NULL && (c->line.buf = bufpool_get(&s->pool)) == NULL) {
		svc_close(s, c, CLOSE_ERROR);
		return -1;
	}
	n = svc_recv(s, c, SVC_REVERSE_IN, now);
	if (n < 0)
		return -1;
	if ((out = bufpool_get(&s->pool)) == NULL) {
		svc_close(s, c, CLOSE_ERROR);
		return -1;
	}
	if (n == 0) {
		c->flags |= SVC_FIN; /* the last line, without its newline, then close */
		k = (ssize_t)svc_reverse_flush(&c->line, out);
	} else if ((k = svc_reverse_feed(&c->line, s->in, (size_t)n, out)) < 0) {
		log_debug("reverse connection %d: line over %u bytes", c->fd, SVC_LINE_MAX);
		bufpool_put(&s->pool, out);
		svc_close(s, c, CLOSE_ERROR);
		return -1;
	}
	if (c->line.len == 0) {
		bufpool_put(&s->pool, c->line.buf);
		c->line.buf = NULL;
	}
	return svc_reverse_send(s, c, out, (size_t)k, now) < 0 || n == 0 ? -1 : 0;
}

static int svc_reverse_run(struct svc_set *s, struct svc_conn *c, uint64_t now)
{
	int budget;

	if (svc_reverse_flush_out(s, c, now) < 0)
		return 0;
	for (budget = SVC_BUDGET; budget > 0; budget--) {
		if ((c->flags & (SVC_FIN | SVC_CLOSED)) || !(c->flags & SVC_READABLE) ||
		    svc_reverse_read(s, c, now) < 0)
			break;
	}
	if ((c->flags & SVC_FIN) && !(c->flags & SVC_CLOSED) && c->out.len == 0)
		svc_close(s, c, CLOSE_EOF);
	return budget == 0;
}

static void svc_run(struct svc_set *s, struct svc_conn *c, uint64_t now)
{
	int more = 0;

	switch (c->service) {
	case SERVICE_DISCARD:
		more = svc_drop_input(s, c, now);
		break;
	case SERVICE_CHARGEN:
		more = svc_drop_input(s, c, now);
		more |= svc_chargen_out(s, c, now);
		break;
	case SERVICE_REVERSE:
		more = svc_reverse_run(s, c, now);
		break;
	default:
		break;
	}
	if (more)
		svc_ready(s, c);
}

void svc_event(struct svc_set *s, struct svc_conn *c, int readable, int writable, int rdhup,
	       uint64_t now)
{
	if (c->flags & SVC_CLOSED)
		return;
	if (readable)
		c->flags |= SVC_READABLE;
	if (writable)
		c->flags |= SVC_WRITABLE;
	if (rdhup)
		c->flags |= SVC_RDHUP;
	svc_run(s, c, now);
}

/* daytime over TCP: the line, then close; no state is kept. */
static void svc_daytime_once(struct svc_set *s, int fd, unsigned li, struct limits_ticket *ticket)
{
	char line[SVC_DAYTIME_MAX];
	size_t len = svc_daytime(time(NULL), line, sizeof(line));
	ssize_t n = send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);

	limits_release(&s->w->limits, ticket);
	if (n > 0)
		stats_add2(s->w->stats, STAT_bytes_out, li, LSTAT_bytes_out, (uint64_t)n);
	/* A fresh socket's buffer takes a line this short whole. */
	svc_stat(s, n == (ssize_t)len ? STAT_closed_eof : STAT_closed_error, 1);
	close(fd);
}

struct svc_conn *svc_accept(struct svc_set *s, int fd, unsigned li, const struct sockaddr *peer,
			    enum listen_service service, uint64_t now)
{
	struct limits_ticket ticket;
	struct svc_conn *c;

	if (worker_admit_plain(s->w, fd, li, peer, &ticket) < 0)
		return NULL;
	if (service == SERVICE_DAYTIME) {
		svc_daytime_once(s, fd, li, &ticket);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		worker_refuse_nomem(s->w, fd, &ticket);
		return NULL;
	}
	c->kind = EV_SVC;
	c->fd = fd;
	c->service = (uint8_t)service;
	c->listener = (uint16_t)stats_lrow(li);
	c->ticket = ticket;
	timer_insert(&s->idle, &c->idle, now);
	s->nconns++;
	return c;
}

static void svc_sweep(struct svc_set *s, int all)
{
	struct svc_conn **pp = &s->zombies, *c;

	while ((c = *pp) != NULL) {
		if (!all && (c->refs > 0 || (c->flags & SVC_READY))) {
			pp = &c->znext;
			continue;
		}
		*pp = c->znext;
		s->nzombies--;
		close(c->fd);
		free(c);
	}
}

void svc_tick(struct svc_set *s, uint64_t now, int close_all)
{
	struct svc_conn *c = s->ready, *next;
	struct timer_node *node;

	if (s->w == NULL)
		return; /* never set up: a backend tearing down after a failed set-up */
	s->ready = NULL;
	s->ready_tail = &s->ready;
	for (; c != NULL; c = next) {
		next = c->next;
		c->flags &= ~SVC_READY;
		if (!(c->flags & SVC_CLOSED))
			svc_run(s, c, now);
	}
	while ((node = timer_expired(&s->idle, now)) != NULL)
		svc_close(s, svc_of(node), CLOSE_IDLE);
	while (close_all && (node = timer_first(&s->idle)) != NULL)
		svc_close(s, svc_of(node), CLOSE_DRAIN);
	svc_sweep(s, 0);
}

int svc_next_ms(const struct svc_set *s, uint64_t now)
{
	if (s->w == NULL)
		return -1;
	return s->ready != NULL ? 0 : timer_next_ms(&s->idle, now);
}

unsigned long svc_busy(const struct svc_set *s)
{
	return s->nconns + s->nzombies;
}

void svc_fini(struct svc_set *s)
{
	struct timer_node *node;

	if (s->w == NULL)
		return;
	s->closing = NULL; /* the backend is gone */
	while ((node = timer_first(&s->idle)) != NULL)
		svc_close(s, svc_of(node), CLOSE_DRAIN);
	svc_sweep(s, 1);
	bufpool_put(&s->pool, s->in);
	s->in = NULL;
	bufpool_fini(&s->pool);
}
