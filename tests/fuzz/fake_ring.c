/*
 * fake_ring: io_uring's kernel side for the completion-level fuzzer, behind the
 * uring_kernel seam. Linked in place of src/uring_kernel.c (it defines all of its
 * symbols, so the archive's copy is never pulled in).
 *
 * The ring is plain memory of the fake's: the loop writes SQEs and reads CQEs with
 * liburing's inline helpers as it would on the kernel's shared pages. urk_wait is
 * the kernel's turn: it takes the submitted SQEs into a table of requests in flight,
 * then runs the script's actions for this turn, which post CQEs consistent with what
 * is in flight, and moves the clock that urk_now_ms reads. The provided-buffer rings
 * (group 0: TCP, group 1: UDP) are read as the kernel reads them: entries taken in
 * ring order from the fake's head up to the tail the loop publishes.
 *
 * Modelled (by opcode and flags; user_data is opaque except as a cancel's key):
 * multishot accept (a connection is one end of a socketpair whose peer the fake
 * keeps; errors with and without IORING_CQE_F_MORE), multishot recv from group 0
 * (one buffer per CQE, or a bundle of consecutive entries when ioprio asks for one;
 * the byte limit of sqe->file_index; -ENOBUFS when the group is empty; EOF, errors),
 * send and sendmsg (full, short, error; an echo's bytes are checked against what was
 * received), SEND_ZC (a result with F_MORE, later a F_NOTIF), async cancel (by
 * user_data, or by fd with ALL: the targets end with -ECANCELED when the script or
 * the wind-down says, possibly after more CQEs of their own; the cancel's own CQE
 * carries the count or -ENOENT), multishot poll (res = the descriptor's real poll
 * mask), multishot recvmsg from group 1 (struct io_uring_recvmsg_out, the name, the
 * control data, the payload) and its sendmsg answers. No CQE ever follows a request's
 * final one.
 *
 * The script, after fuzz_uring.c's header: actions, one byte each (op % 7, bit 7:
 * another action in the same turn, at most FK_PER_TURN) and its arguments:
 *   0 connect [a]: the accept (a & 127) % n completes with a new connection, final
 *     if a & 128;
 *   1 complete [index, mode, arg]: the request index % n completes as mode says;
 *   2 datagrams [sock, k, len, src]: k datagrams of 1 + 4 * len bytes for the UDP
 *     receive sock % n; src picks the source (port, family, control data);
 *   3 clock [t]: t * 10 ms pass;
 *   4 TERM: a signalfd_siginfo with SIGTERM in the loop's sigfd (a pipe);
 *   5 nothing: a turn without CQEs (the clock moves by the loop's timeout);
 *   6 service peer [which, how]: a small service's peer writes, reads, shuts down or
 *     closes, and its poll fires.
 * A turn that posts nothing moves the clock by the wait's timeout. When the script
 * ends, the wind-down: TERM, then every request completes as it naturally would
 * (recvs see EOF, sends complete, cancels land) and the clock moves FK_WIND_STEP per
 * turn; the loop must return within FK_WIND_TURNS turns. A slow wind-down (the
 * header says) first lets FK_WIND_SLOW ms pass with only the cancels landing, so
 * the drain deadline closes whatever is still open.
 *
 * Checks (none depends on loop_uring's internals): an SQE naming a descriptor the
 * loop closed, one it does not own, or one of the wrong kind (an accept on a UDP
 * socket); a buffer put in its ring while still there
 * (a double recycle), a ring offering more entries than it has; a UDP socket open
 * whose last recvmsg found the group empty (-ENOBUFS), with no recvmsg in flight at
 * the end of a turn while its group has free buffers (starved beside its siblings); an echo that is not the bytes received, in order;
 * a drain that never ends; descriptors given to the loop still open once it returns.
 */
#include "fake_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echod/worker.h"

#define FK_SQ_ENTRIES 64 /* small: the loop's "queue full, submit first" path runs too */
#define FK_CQ_ENTRIES 8192
#define FK_REQS	      1024
#define FK_FILES      512
#define FK_FDMAX      4096
#define FK_BIDS	      1024
#define FK_CONNS_MAX  64 /* connections one input may open; then accept says EMFILE */
#define FK_PER_TURN   8
#define FK_WIND_TURNS 10000
#define FK_WIND_STEP  100  /* ms per wind-down turn */
#define FK_WIND_SLOW  4000 /* ms a slow wind-down's peers stay still: past any drain deadline */
#define FK_START_MS   1000000

#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif

enum fk_kind { K_ACCEPT, K_RECV, K_SEND, K_SENDMSG, K_SEND_ZC, K_POLL, K_RECVMSG, K_CANCEL };

static const char *const kind_name[] = {"accept",  "recv", "send",    "sendmsg",
					"send_zc", "poll", "recvmsg", "cancel"};
static const char *const fd_kind_name[] = {"listener",	 "service listener",   "UDP socket",
					   "connection", "service connection", "sigfd"};

/* A request in flight. */
struct fk_req {
	uint64_t ud;
	enum fk_kind kind;
	int fd;
	unsigned file; /* files[]: what fd was when the SQE was consumed */
	int multi, bundle;
	uint16_t bgid;
	uint32_t limit, got; /* a multishot recv's byte limit and bytes so far */
	uint64_t addr;	     /* send: the bytes; sendmsg, recvmsg: the msghdr */
	uint32_t len;
	uint32_t events; /* poll */
	int doomed;	 /* a cancel found it: it ends with -ECANCELED when told */
	int notif;	 /* SEND_ZC: only the notification is due */
	int res;	 /* a cancel's result */
};

/* A descriptor given to the loop. Entries are never reused within a run. */
struct fk_file {
	int fd;
	int peer; /* the fake's end of a connection, else -1 */
	enum fake_fd_kind kind;
	int open;
	int starved;     /* a UDP socket whose last recvmsg ended with -ENOBUFS */
	int stopped;     /* the loop cancelled its recvmsg: it stops receiving (drain) */
	uint64_t recv_ud; /* user_data of its latest recvmsg */
	uint64_t rx, tx; /* an echo connection: bytes delivered, bytes echoed */
};

struct fk_group {
	struct io_uring_buf_ring *br;
	unsigned entries;
	uint16_t head, seen; /* the kernel's head; entries read up to seen */
	uint8_t in_ring[FK_BIDS], lent[FK_BIDS];
	uint64_t addr[FK_BIDS];
};

static struct fake {
	struct io_uring *ring;
	unsigned sq_khead, sq_ktail, sq_kflags, sq_kdropped, sq_mask, sq_entries;
	unsigned sq_array[FK_SQ_ENTRIES];
	struct io_uring_sqe sqes[FK_SQ_ENTRIES];
	unsigned cq_khead, cq_ktail, cq_kflags, cq_koverflow, cq_mask, cq_entries;
	struct io_uring_cqe cqes[FK_CQ_ENTRIES];
	struct urk_caps caps;
	struct fk_req reqs[FK_REQS];
	unsigned nreqs;
	struct fk_file files[FK_FILES];
	unsigned nfiles;
	int byfd[FK_FDMAX]; /* files index + 1 of an open descriptor, 0: none */
	struct fk_group groups[2];
	const uint8_t *in;
	size_t left;
	uint64_t now;
	int sig_w;
	int winding, term_sent, slow_wind;
	uint64_t wind_start;
	unsigned wound, conns, posted;
	int trace;
} fk;

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void trace(const char *fmt, ...)
{
	va_list ap;

	if (!fk.trace)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "fake %llu: ", (unsigned long long)fk.now);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz_uring: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static unsigned next_byte(void)
{
	if (fk.left == 0)
		return 0;
	fk.left--;
	return *fk.in++;
}

static int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

/* ---- descriptors ---- */

static struct fk_file *file_of(int fd)
{
	if (fd < 0 || fd >= FK_FDMAX || fk.byfd[fd] == 0)
		return NULL;
	return &fk.files[fk.byfd[fd] - 1];
}

static unsigned file_add(int fd, int peer, enum fake_fd_kind kind)
{
	if (fd < 0 || fd >= FK_FDMAX || fk.nfiles == FK_FILES)
		fail("descriptor %d beyond the fake's tables", fd);
	fk.files[fk.nfiles] = (struct fk_file){.fd = fd, .peer = peer, .kind = kind, .open = 1};
	fk.byfd[fd] = (int)++fk.nfiles;
	return fk.nfiles - 1;
}

/* Notes which of its descriptors the loop closed since; their peers go too. Runs
 * before the fake makes a descriptor, so a number the loop freed is never mistaken
 * for the loop's when the fake takes it. */
static void sweep(void)
{
	for (unsigned i = 0; i < fk.nfiles; i++) {
		struct fk_file *f = &fk.files[i];

		if (!f->open || f->kind == FAKE_SIG || fd_is_open(f->fd))
			continue;
		trace("the loop closed fd %d (%s)", f->fd, fd_kind_name[f->kind]);
		f->open = 0;
		fk.byfd[f->fd] = 0;
		if (f->peer >= 0)
			close(f->peer);
		f->peer = -1;
	}
}

/* ---- the requests in flight ---- */

static struct fk_req *req_new(const struct io_uring_sqe *sqe, enum fk_kind kind, unsigned file)
{
	struct fk_req *r;

	if (fk.nreqs == FK_REQS)
		fail("more than %d requests in flight", FK_REQS);
	r = &fk.reqs[fk.nreqs++];
	memset(r, 0, sizeof(*r));
	r->ud = sqe->user_data;
	r->kind = kind;
	r->fd = sqe->fd;
	r->file = file;
	return r;
}

static void post(struct fk_req *r, int res, unsigned flags)
{
	struct io_uring_cqe *cqe;

	if (fk.cq_ktail - fk.cq_khead >= FK_CQ_ENTRIES)
		fail("the fake's CQ overflowed");
	cqe = &fk.cqes[fk.cq_ktail & (FK_CQ_ENTRIES - 1)];
	cqe->user_data = r->ud;
	cqe->res = res;
	cqe->flags = flags;
	io_uring_smp_store_release(&fk.cq_ktail, fk.cq_ktail + 1);
	fk.posted++;
	trace("cqe %s fd %d user_data %#llx res %d flags %#x%s", kind_name[r->kind], r->fd,
	      (unsigned long long)r->ud, res, flags,
	      flags & (IORING_CQE_F_MORE | IORING_CQE_F_NOTIF) ? "" : " (final)");
}

/* The request's last CQE: it leaves the table (the last entry takes its place). */
static void post_final(struct fk_req *r, int res, unsigned flags)
{
	post(r, res, flags & ~IORING_CQE_F_MORE);
	*r = fk.reqs[--fk.nreqs];
}

/* ---- provided buffers ---- */

static struct fk_group *group_of(unsigned bgid)
{
	if (bgid > 1 || fk.groups[bgid].br == NULL)
		fail("buffer group %u is not registered", bgid);
	return &fk.groups[bgid];
}

/* Reads the entries the loop published since the last look. */
static void scan(struct fk_group *g)
{
	uint16_t tail = io_uring_smp_load_acquire(&g->br->tail);
	unsigned gid = (unsigned)(g - fk.groups);

	if ((uint16_t)(tail - g->head) > g->entries)
		fail("group %u offers %u buffers in a ring of %u: entries overwritten before the "
		     "kernel took them",
		     gid, (uint16_t)(tail - g->head), g->entries);
	for (; g->seen != tail; g->seen++) {
		const struct io_uring_buf *e = &g->br->bufs[g->seen & (g->entries - 1)];
		unsigned bid = e->bid;

		if (bid >= g->entries)
			fail("group %u: buffer id %u in a ring of %u", gid, bid, g->entries);
		if (g->in_ring[bid])
			fail("double recycle: buffer %u of group %u is put in the ring while it is "
			     "still there",
			     bid, gid);
		if (g->addr[bid] != 0 && g->addr[bid] != e->addr)
			fail("group %u: buffer %u comes back at another address", gid, bid);
		g->addr[bid] = e->addr;
		g->in_ring[bid] = 1;
		g->lent[bid] = 0;
	}
}

static unsigned group_free(struct fk_group *g)
{
	scan(g);
	return (uint16_t)(g->seen - g->head);
}

/* The next buffer of the ring, lent to the loop; -1 when the group is empty. */
static int take(struct fk_group *g, unsigned *bid, char **addr, uint32_t *len)
{
	const struct io_uring_buf *e;

	if (group_free(g) == 0)
		return -1;
	e = &g->br->bufs[g->head & (g->entries - 1)];
	if (e->bid >= g->entries || !g->in_ring[e->bid])
		fail("ring entry %u names buffer %u, which is not in the ring", g->head, e->bid);
	if (e->len == 0)
		fail("buffer %u offered with length 0", e->bid);
	*bid = e->bid;
	*addr = (char *)(uintptr_t)e->addr;
	*len = e->len;
	g->in_ring[e->bid] = 0;
	g->lent[e->bid] = 1;
	g->head++;
	return 0;
}

/* ---- consuming SQEs ---- */

static unsigned sqe_file(const struct io_uring_sqe *sqe, const char *what)
{
	struct fk_file *f = file_of(sqe->fd);

	if (!fd_is_open(sqe->fd))
		fail("%s SQE (user_data %#llx) names fd %d, which the loop has closed", what,
		     (unsigned long long)sqe->user_data, sqe->fd);
	if (f == NULL || !f->open)
		fail("%s SQE (user_data %#llx) names fd %d, which the loop was never given", what,
		     (unsigned long long)sqe->user_data, sqe->fd);
	return (unsigned)(f - fk.files);
}

static void consume_cancel(const struct io_uring_sqe *sqe)
{
	unsigned cf = sqe->cancel_flags, file = 0;
	int by_fd = (cf & IORING_ASYNC_CANCEL_FD) != 0, all = (cf & IORING_ASYNC_CANCEL_ALL) != 0;
	struct fk_req *c;
	int n = 0;

	if (cf & ~(IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL))
		fail("cancel flags %#x: the fake models FD and ALL only", cf);
	if (by_fd)
		file = sqe_file(sqe, "cancel");
	/* Cancelling a UDP socket's receive, in flight or already ended, says the loop
	 * stops receiving on it. */
	for (unsigned i = 0; i < fk.nfiles && !by_fd; i++)
		if (fk.files[i].kind == FAKE_UDP && fk.files[i].recv_ud == sqe->addr)
			fk.files[i].stopped = 1;
	for (unsigned i = 0; i < fk.nreqs && (all || n == 0); i++) {
		struct fk_req *r = &fk.reqs[i];

		if (r->kind == K_CANCEL || r->notif || r->doomed)
			continue;
		if (by_fd ? r->file != file : r->ud != sqe->addr)
			continue;
		r->doomed = 1;
		n++;
	}
	c = req_new(sqe, K_CANCEL, 0);
	c->fd = by_fd ? sqe->fd : -1;
	c->res = n > 0 ? n : -ENOENT;
	trace("sqe cancel %s %#llx: %d found", by_fd ? "fd" : "user_data",
	      by_fd ? (unsigned long long)sqe->fd : (unsigned long long)sqe->addr, n);
}

static void consume(const struct io_uring_sqe *sqe)
{
	static const enum fk_kind kinds[] = {
	    [IORING_OP_ACCEPT] = K_ACCEPT,   [IORING_OP_RECV] = K_RECV,
	    [IORING_OP_SEND] = K_SEND,	     [IORING_OP_SENDMSG] = K_SENDMSG,
	    [IORING_OP_SEND_ZC] = K_SEND_ZC, [IORING_OP_POLL_ADD] = K_POLL,
	    [IORING_OP_RECVMSG] = K_RECVMSG,
	};
	/* Which descriptors each request may name. */
	static const unsigned fits[] = {
	    [K_ACCEPT] = 1u << FAKE_LISTEN | 1u << FAKE_LISTEN_SVC,
	    [K_RECV] = 1u << FAKE_CONN,
	    [K_SEND] = 1u << FAKE_CONN,
	    [K_SENDMSG] = 1u << FAKE_CONN | 1u << FAKE_UDP,
	    [K_SEND_ZC] = 1u << FAKE_CONN,
	    [K_POLL] = 1u << FAKE_SIG | 1u << FAKE_SVC,
	    [K_RECVMSG] = 1u << FAKE_UDP,
	};
	unsigned op = sqe->opcode, select = (sqe->flags & IOSQE_BUFFER_SELECT) != 0;
	enum fk_kind kind;
	struct fk_req *r;

	if (op == IORING_OP_ASYNC_CANCEL) {
		consume_cancel(sqe);
		return;
	}
	if (op >= sizeof(kinds) / sizeof(kinds[0]) ||
	    (kinds[op] == K_ACCEPT && op != IORING_OP_ACCEPT))
		fail("SQE opcode %u: not one the backend uses", op);
	kind = kinds[op];
	if (sqe->flags & ~IOSQE_BUFFER_SELECT)
		fail("SQE flags %#x: the fake models IOSQE_BUFFER_SELECT only", sqe->flags);
	if (select != (kind == K_RECV || kind == K_RECVMSG))
		fail("%s SQE %s a provided buffer", kind_name[kind], select ? "with" : "without");
	if (kind == K_SEND_ZC && !fk.caps.zc)
		fail("SEND_ZC on a kernel that has none");
	r = req_new(sqe, kind, sqe_file(sqe, kind_name[kind]));
	if (!(fits[kind] & 1u << fk.files[r->file].kind))
		fail("%s SQE (user_data %#llx) on fd %d, a %s", kind_name[kind],
		     (unsigned long long)r->ud, r->fd, fd_kind_name[fk.files[r->file].kind]);
	r->addr = sqe->addr;
	r->len = sqe->len;
	if (kind == K_ACCEPT)
		r->multi = (sqe->ioprio & IORING_ACCEPT_MULTISHOT) != 0;
	if (kind == K_RECV || kind == K_RECVMSG) {
		r->multi = (sqe->ioprio & IORING_RECV_MULTISHOT) != 0;
		r->bundle = kind == K_RECV && (sqe->ioprio & IORING_RECVSEND_BUNDLE) != 0;
		r->bgid = sqe->buf_group;
		if (kind == K_RECVMSG) {
			fk.files[r->file].starved = 0;
			fk.files[r->file].recv_ud = r->ud;
		}
		r->limit = kind == K_RECV && fk.caps.mshot_limit ? sqe->file_index : 0;
		(void)group_of(r->bgid);
		if (r->bundle && !fk.caps.bundle)
			fail("a recv bundle on a kernel without bundles");
	}
	if (kind == K_POLL) {
		r->events = sqe->poll32_events;
		r->multi = (sqe->len & IORING_POLL_ADD_MULTI) != 0;
	}
	trace("sqe %s fd %d user_data %#llx%s%s", kind_name[kind], r->fd, (unsigned long long)r->ud,
	      r->multi ? " multishot" : "", r->bundle ? " bundle" : "");
}

/* The kernel takes what the loop queued (its local tail: the fake is both sides). */
static void submit(void)
{
	struct io_uring_sq *sq = &fk.ring->sq;

	while (fk.sq_khead != sq->sqe_tail) {
		consume(&fk.sqes[fk.sq_khead & (FK_SQ_ENTRIES - 1)]);
		io_uring_smp_store_release(&fk.sq_khead, fk.sq_khead + 1);
	}
	sq->sqe_head = sq->sqe_tail;
	fk.sq_ktail = sq->sqe_tail;
}

/* ---- completions ---- */

static uint8_t pattern(unsigned file, uint64_t k)
{
	return (uint8_t)(k * 131 + (k >> 8) + file * 29);
}

/* n bytes arrive for recv r, through the ring. Returns 1 when r ended. */
static int recv_data(struct fk_req *r, uint32_t n, int final)
{
	struct fk_group *g = group_of(r->bgid);
	struct fk_file *f = &fk.files[r->file];

	if (r->limit > 0 && n > r->limit - r->got)
		n = r->limit - r->got;
	while (n > 0) {
		unsigned first, bid, flags;
		uint32_t total = 0, blen, k;
		char *p;

		if (take(g, &first, &p, &blen) < 0) {
			post_final(r, -ENOBUFS, 0);
			return 1;
		}
		for (;;) {
			k = n < blen ? n : blen;
			for (uint32_t i = 0; i < k; i++)
				p[i] = (char)pattern(r->file, f->rx + i);
			f->rx += k;
			total += k;
			n -= k;
			/* A bundle: the next entries, each but the last full. */
			if (!r->bundle || n == 0 || k < blen || take(g, &bid, &p, &blen) < 0)
				break;
		}
		r->got += total;
		flags = IORING_CQE_F_BUFFER | first << IORING_CQE_BUFFER_SHIFT;
		if (!r->multi || (r->limit > 0 && r->got >= r->limit) || (final && n == 0)) {
			post_final(r, (int)total, flags);
			return 1;
		}
		post(r, (int)total, flags | IORING_CQE_F_MORE);
	}
	return 0;
}

/* One datagram for recvmsg r: header, name, control data, payload. Returns 1 when r
 * ended. src: bits 0-2 the source port (0: port 7, below 1024), bit 3 IPv6, bit 4
 * an IP_PKTINFO message. */
static int recv_datagram(struct fk_req *r, uint32_t plen, unsigned src, int final)
{
	const struct msghdr *tmpl = (const struct msghdr *)(uintptr_t)r->addr;
	size_t head =
	    sizeof(struct io_uring_recvmsg_out) + tmpl->msg_namelen + tmpl->msg_controllen;
	uint16_t port = (src & 7) == 0 ? 7 : (uint16_t)(1024 + (src & 7) * 4099);
	struct io_uring_recvmsg_out *o;
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	unsigned bid, flags;
	char *p, *name, *ctl;
	uint32_t blen;
	int res;

	if (take(group_of(r->bgid), &bid, &p, &blen) < 0) {
		fk.files[r->file].starved = 1;
		post_final(r, -ENOBUFS, 0);
		return 1;
	}
	if (blen <= head)
		fail("a UDP buffer of %u bytes cannot hold a datagram's %zu bytes of header", blen,
		     head);
	if (plen > blen - head)
		plen = (uint32_t)(blen - head);
	o = (struct io_uring_recvmsg_out *)(void *)p;
	memset(o, 0, sizeof(*o));
	name = (char *)io_uring_recvmsg_name(o);
	memset(name, 0, tmpl->msg_namelen);
	if (src & 8) {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(port);
		sin6.sin6_addr = in6addr_loopback;
		o->namelen = sizeof(sin6);
		memcpy(name, &sin6,
		       o->namelen < tmpl->msg_namelen ? o->namelen : tmpl->msg_namelen);
	} else {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		o->namelen = sizeof(sin);
		memcpy(name, &sin, o->namelen < tmpl->msg_namelen ? o->namelen : tmpl->msg_namelen);
	}
	ctl = name + tmpl->msg_namelen;
	if ((src & 16) && tmpl->msg_controllen >= CMSG_SPACE(sizeof(struct in_pktinfo))) {
		struct cmsghdr *c = (struct cmsghdr *)(void *)ctl;
		struct in_pktinfo pi = {.ipi_ifindex = 1};

		pi.ipi_spec_dst.s_addr = htonl(INADDR_LOOPBACK);
		pi.ipi_addr.s_addr = htonl(INADDR_LOOPBACK);
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		o->controllen = CMSG_SPACE(sizeof(pi));
	}
	for (uint32_t i = 0; i < plen; i++)
		ctl[tmpl->msg_controllen + i] = (char)pattern(r->file, i);
	o->payloadlen = plen;
	res = (int)(head + plen);
	flags = IORING_CQE_F_BUFFER | bid << IORING_CQE_BUFFER_SHIFT;
	if (!r->multi || final) {
		post_final(r, res, flags);
		return 1;
	}
	post(r, res, flags | IORING_CQE_F_MORE);
	return 0;
}

static uint32_t send_len(const struct fk_req *r)
{
	const struct msghdr *m = (const struct msghdr *)(uintptr_t)r->addr;
	uint32_t n = 0;

	if (r->kind != K_SENDMSG)
		return r->len;
	for (size_t i = 0; i < m->msg_iovlen; i++)
		n += (uint32_t)m->msg_iov[i].iov_len;
	return n;
}

/* What an echo connection sends back must be the next bytes it received. */
static void check_echo(const struct fk_req *r, uint32_t n)
{
	const struct msghdr *m = (const struct msghdr *)(uintptr_t)r->addr;
	struct iovec one = {.iov_base = (void *)(uintptr_t)r->addr, .iov_len = r->len};
	const struct iovec *iov = r->kind == K_SENDMSG ? m->msg_iov : &one;
	size_t niov = r->kind == K_SENDMSG ? m->msg_iovlen : 1;
	struct fk_file *f = &fk.files[r->file];

	if (f->kind != FAKE_CONN)
		return;
	for (size_t i = 0; i < niov && n > 0; i++) {
		const uint8_t *p = iov[i].iov_base;

		for (size_t j = 0; j < iov[i].iov_len && n > 0; j++, n--, f->tx++) {
			if (f->tx >= f->rx)
				fail("fd %d echoes more than the %llu bytes it received", f->fd,
				     (unsigned long long)f->rx);
			if (p[j] != pattern(r->file, f->tx))
				fail("fd %d echoes %#x as byte %llu, %#x was received there", f->fd,
				     p[j], (unsigned long long)f->tx, pattern(r->file, f->tx));
		}
	}
}

/* mode % 4: 0, 1 all of it, 2 short, 3 an error; a doomed one with mode & 4: -ECANCELED.
 * Returns 1 when r ended. */
static int complete_send(struct fk_req *r, unsigned mode, unsigned arg)
{
	static const int errs[] = {EPIPE, ECONNRESET, ETIMEDOUT, ENOMEM};
	uint32_t want;
	int res;

	if (r->notif) {
		post_final(r, 0, IORING_CQE_F_NOTIF);
		return 1;
	}
	want = send_len(r);
	if (r->doomed && (mode & 4))
		res = -ECANCELED;
	else if (mode % 4 == 3)
		res = -errs[arg % 4];
	else if (mode % 4 == 2 && want > 1 && fk.files[r->file].kind == FAKE_CONN)
		res = (int)(1 + arg % (want - 1));
	else
		res = (int)want;
	if (res > 0)
		check_echo(r, (uint32_t)res);
	if (r->kind == K_SEND_ZC) {
		post(r, res, IORING_CQE_F_MORE); /* the notification follows, always */
		r->notif = 1;
		return 0;
	}
	post_final(r, res, 0);
	return 1;
}

/* A new connection on the listener of accept r. Returns 1 when r ended. */
static int accept_conn(struct fk_req *r, int final)
{
	enum fake_fd_kind kind = fk.files[r->file].kind == FAKE_LISTEN_SVC ? FAKE_SVC : FAKE_CONN;
	int sv[2];

	final = final || !r->multi;
	if (fk.conns >= FK_CONNS_MAX) {
		if (final)
			post_final(r, -EMFILE, 0);
		else
			post(r, -EMFILE, IORING_CQE_F_MORE);
		return final;
	}
	sweep();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		fail("socketpair: %s", strerror(errno));
	file_add(sv[0], sv[1], kind);
	fk.conns++;
	if (final)
		post_final(r, sv[0], 0);
	else
		post(r, sv[0], IORING_CQE_F_MORE);
	return final;
}

/* The descriptor's real readiness. Returns 1 when r ended; nothing happens when
 * the descriptor is not ready. */
static int fire_poll(struct fk_req *r, int final)
{
	struct pollfd p = {.fd = r->fd, .events = (short)r->events};

	if (fk.byfd[r->fd] != (int)r->file + 1 || poll(&p, 1, 0) <= 0 || p.revents == 0)
		return 0;
	if (final || !r->multi) {
		post_final(r, p.revents, 0);
		return 1;
	}
	post(r, p.revents, IORING_CQE_F_MORE);
	return 0;
}

/* Request r completes as mode and arg say. */
static void complete(struct fk_req *r, unsigned mode, unsigned arg)
{
	static const int recv_errs[] = {ECONNRESET, EPIPE,    ETIMEDOUT,
					EINVAL,	    ENOTCONN, EHOSTUNREACH};
	static const int accept_errs[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED, EINVAL};
	static const int recvmsg_errs[] = {EINVAL, ECONNREFUSED, ENOMEM};

	if (r->doomed && (mode & 0x80)) {
		if (r->kind == K_SEND_ZC) {
			post(r, -ECANCELED, IORING_CQE_F_MORE);
			r->notif = 1;
		} else {
			post_final(r, -ECANCELED, 0);
		}
		return;
	}
	switch (r->kind) {
	case K_ACCEPT:
		if (mode % 4 < 2)
			accept_conn(r, mode % 4 == 1);
		else if (mode % 4 == 2 && r->multi)
			post(r, -accept_errs[arg % 6], IORING_CQE_F_MORE);
		else
			post_final(r, -accept_errs[arg % 6], 0);
		break;
	case K_RECV:
		if (mode % 8 == 4)
			post_final(r, 0, 0);
		else if (mode % 8 == 5)
			post_final(r, -recv_errs[arg % 6], 0);
		else
			recv_data(r, mode % 8 == 7 ? 1 + arg * 64 : 1 + arg * 4, mode % 8 == 3);
		break;
	case K_SEND:
	case K_SENDMSG:
	case K_SEND_ZC:
		complete_send(r, mode, arg);
		break;
	case K_POLL:
		fire_poll(r, mode & 1);
		break;
	case K_RECVMSG:
		if (mode % 4 == 1)
			post_final(r, -recvmsg_errs[arg % 3], 0);
		else
			recv_datagram(r, 1 + arg * 4, mode >> 2, mode % 4 == 3);
		break;
	case K_CANCEL:
		post_final(r, r->res, 0);
		break;
	}
}

/* ---- the script ---- */

/* The n-th request of a kind (n modulo their count), or NULL. */
static struct fk_req *pick(enum fk_kind kind, unsigned n, int doomed_too)
{
	unsigned count = 0;

	for (unsigned i = 0; i < fk.nreqs; i++)
		count += fk.reqs[i].kind == kind && (doomed_too || !fk.reqs[i].doomed);
	if (count == 0)
		return NULL;
	n %= count;
	for (unsigned i = 0; i < fk.nreqs; i++)
		if (fk.reqs[i].kind == kind && (doomed_too || !fk.reqs[i].doomed) && n-- == 0)
			return &fk.reqs[i];
	return NULL;
}

/* The signalfd's poll sees what is in the pipe. */
static void fire_signal(void)
{
	for (unsigned i = 0; i < fk.nreqs; i++)
		if (fk.reqs[i].kind == K_POLL && fk.files[fk.reqs[i].file].kind == FAKE_SIG &&
		    !fk.reqs[i].doomed && fire_poll(&fk.reqs[i], 0))
			break;
}

static void term(void)
{
	struct signalfd_siginfo si;

	memset(&si, 0, sizeof(si));
	si.ssi_signo = SIGTERM;
	if (write(fk.sig_w, &si, sizeof(si)) != (ssize_t)sizeof(si))
		fail("write(sigfd pipe): %s", strerror(errno));
	fk.term_sent = 1;
	fire_signal(); /* its CQE comes before those of the turn's later actions */
}

static void act_datagrams(void)
{
	unsigned s = next_byte(), k = next_byte(), len = next_byte(), src = next_byte();
	struct fk_req *r = pick(K_RECVMSG, s, 0);

	trace("action: %u datagrams of %u bytes, source %#x", k, 1 + len * 4, src);
	for (unsigned i = 0; r != NULL && i < k; i++)
		if (recv_datagram(r, 1 + len * 4, src, 0))
			break;
}

/* A small service's peer does something, then its poll fires. */
static void act_service(void)
{
	unsigned which = next_byte(), how = next_byte(), n = 0;
	struct fk_file *f = NULL;
	char buf[4096];

	for (unsigned i = 0; i < fk.nfiles; i++)
		n += fk.files[i].kind == FAKE_SVC && fk.files[i].peer >= 0;
	for (unsigned i = 0, k = n ? which % n : 0; n > 0 && i < fk.nfiles; i++)
		if (fk.files[i].kind == FAKE_SVC && fk.files[i].peer >= 0 && k-- == 0)
			f = &fk.files[i];
	if (f == NULL)
		return;
	trace("action: service peer of fd %d: %u", f->fd, how % 4);
	switch (how % 4) {
	case 0:
		memset(buf, 'x', sizeof(buf));
		(void)!write(f->peer, buf, 1 + (how >> 2) * 64);
		break;
	case 1:
		while (read(f->peer, buf, sizeof(buf)) > 0)
			;
		break;
	case 2:
		shutdown(f->peer, SHUT_WR);
		break;
	case 3:
		close(f->peer);
		f->peer = -1;
		break;
	}
	for (unsigned i = 0; i < fk.nreqs; i++)
		if (fk.reqs[i].kind == K_POLL && fk.reqs[i].file == (unsigned)(f - fk.files) &&
		    fire_poll(&fk.reqs[i], 0))
			break;
}

static void act(unsigned op)
{
	struct fk_req *r;
	unsigned a, b, c;

	switch (op % 7) {
	case 0:
		a = next_byte();
		trace("action: connect %u", a);
		if ((r = pick(K_ACCEPT, a & 127, 1)) != NULL)
			accept_conn(r, a & 128);
		break;
	case 1:
		a = next_byte();
		b = next_byte();
		c = next_byte();
		trace("action: complete request %u of %u, mode %#x, arg %u",
		      fk.nreqs ? a % fk.nreqs : 0, fk.nreqs, b, c);
		if (fk.nreqs > 0)
			complete(&fk.reqs[a % fk.nreqs], b, c);
		break;
	case 2:
		act_datagrams();
		break;
	case 3:
		a = next_byte();
		trace("action: %u ms pass", a * 10);
		fk.now += a * 10;
		break;
	case 4:
		trace("action: TERM");
		term();
		break;
	case 5:
		trace("action: nothing");
		break;
	case 6:
		act_service();
		break;
	}
}

/* One request as it ends by itself once the peers go away. */
static void wind_one(struct fk_req *r)
{
	switch (r->kind) {
	case K_RECV:
		post_final(r, r->doomed ? -ECANCELED : 0, 0);
		break;
	case K_SEND:
	case K_SENDMSG:
		complete_send(r, 0, 0);
		break;
	case K_SEND_ZC:
		if (!r->notif)
			complete_send(r, 0, 0);
		post_final(r, 0, IORING_CQE_F_NOTIF);
		break;
	case K_CANCEL:
		post_final(r, r->res, 0);
		break;
	case K_POLL:
		if (!r->doomed) {
			fire_poll(r, 0);
			break;
		}
		/* fall through */
	case K_ACCEPT:
	case K_RECVMSG:
		if (r->doomed)
			post_final(r, -ECANCELED, 0);
		break;
	}
}

static void wind_turn(void)
{
	if (fk.wound == 0) {
		trace("wind-down: TERM, then everything completes%s",
		      fk.slow_wind ? " once the drain deadline has passed" : "");
		fk.wind_start = fk.now;
		term();
	}
	if (++fk.wound > FK_WIND_TURNS)
		fail("drain never finished: %u turns after TERM, %u requests in flight",
		     FK_WIND_TURNS, fk.nreqs);
	if (fk.slow_wind && fk.now < fk.wind_start + FK_WIND_SLOW) {
		/* The peers stay still; only the cancels land. */
		for (unsigned i = 0; i < fk.nreqs;) {
			unsigned before = fk.nreqs;

			if (fk.reqs[i].kind == K_CANCEL ||
			    (fk.reqs[i].doomed && !fk.reqs[i].notif &&
			     fk.reqs[i].kind != K_SEND_ZC))
				post_final(
				    &fk.reqs[i],
				    fk.reqs[i].kind == K_CANCEL ? fk.reqs[i].res : -ECANCELED, 0);
			if (fk.nreqs == before)
				i++;
		}
		fk.now += FK_WIND_STEP;
		return;
	}
	for (unsigned i = 0; i < fk.nfiles; i++)
		if (fk.files[i].kind == FAKE_SVC && fk.files[i].peer >= 0)
			shutdown(fk.files[i].peer, SHUT_WR);
	for (unsigned i = 0; i < fk.nreqs;) {
		unsigned before = fk.nreqs;

		wind_one(&fk.reqs[i]);
		if (fk.nreqs == before)
			i++; /* else the last entry took its place */
	}
	fk.now += FK_WIND_STEP;
}

/* End of the loop's turn: an open UDP socket whose receive found the group empty has
 * a receive in flight again, or the group still has no free buffer. (One that is
 * draining, or waits out an error, may go without a receive: not starved.) */
static void check_udp(void)
{
	struct fk_group *g = &fk.groups[1];
	unsigned nfree;

	if (g->br == NULL || (nfree = group_free(g)) == 0)
		return;
	for (unsigned i = 0; i < fk.nfiles; i++) {
		struct fk_file *f = &fk.files[i];
		int armed = 0;

		if (f->kind != FAKE_UDP || !f->open || !f->starved || f->stopped)
			continue;
		for (unsigned j = 0; j < fk.nreqs && !armed; j++)
			armed = fk.reqs[j].kind == K_RECVMSG && fk.reqs[j].file == i;
		if (!armed)
			fail("UDP socket fd %d has no recvmsg in flight at the end of a turn while "
			     "its buffer group holds %u free buffers: starved beside its siblings",
			     f->fd, nfree);
	}
}

/* ---- the seam ---- */

int urk_ring_init(struct io_uring *ring, struct urk_caps *caps)
{
	memset(ring, 0, sizeof(*ring));
	fk.sq_mask = FK_SQ_ENTRIES - 1;
	fk.sq_entries = FK_SQ_ENTRIES;
	fk.cq_mask = FK_CQ_ENTRIES - 1;
	fk.cq_entries = FK_CQ_ENTRIES;
	ring->sq.khead = &fk.sq_khead;
	ring->sq.ktail = &fk.sq_ktail;
	ring->sq.kring_mask = &fk.sq_mask;
	ring->sq.kring_entries = &fk.sq_entries;
	ring->sq.kflags = &fk.sq_kflags;
	ring->sq.kdropped = &fk.sq_kdropped;
	ring->sq.array = fk.sq_array;
	ring->sq.sqes = fk.sqes;
	ring->sq.ring_mask = FK_SQ_ENTRIES - 1;
	ring->sq.ring_entries = FK_SQ_ENTRIES;
	ring->cq.khead = &fk.cq_khead;
	ring->cq.ktail = &fk.cq_ktail;
	ring->cq.kring_mask = &fk.cq_mask;
	ring->cq.kring_entries = &fk.cq_entries;
	ring->cq.kflags = &fk.cq_kflags;
	ring->cq.koverflow = &fk.cq_koverflow;
	ring->cq.cqes = fk.cqes;
	ring->cq.ring_mask = FK_CQ_ENTRIES - 1;
	ring->cq.ring_entries = FK_CQ_ENTRIES;
	/* EXT_ARG: liburing's peek skips no "timeout" CQE of its own. */
	ring->features = IORING_FEAT_EXT_ARG | IORING_FEAT_NODROP;
	ring->ring_fd = -1;
	ring->enter_ring_fd = -1;
	fk.ring = ring;
	*caps = fk.caps;
	return 0;
}

void urk_ring_exit(struct io_uring *ring)
{
	if (ring != fk.ring)
		fail("urk_ring_exit on a ring the fake did not make");
	trace("ring exit: %u requests cancelled silently", fk.nreqs);
	fk.nreqs = 0;
	fk.ring = NULL;
	fk.groups[0].br = NULL; /* the loop unmaps them next */
	fk.groups[1].br = NULL;
}

int urk_register_buf_ring(struct io_uring *ring, struct io_uring_buf_reg *reg)
{
	struct fk_group *g;

	if (ring != fk.ring || reg->bgid > 1 || fk.groups[reg->bgid].br != NULL)
		fail("buffer group %u registered unexpectedly", reg->bgid);
	if (reg->ring_entries == 0 || reg->ring_entries > FK_BIDS ||
	    (reg->ring_entries & (reg->ring_entries - 1)) != 0)
		return -EINVAL;
	g = &fk.groups[reg->bgid];
	memset(g, 0, sizeof(*g));
	g->br = (struct io_uring_buf_ring *)(uintptr_t)reg->ring_addr;
	g->entries = reg->ring_entries;
	g->seen = g->head = g->br->tail;
	return 0;
}

struct io_uring_sqe *urk_get_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (sqe == NULL) {
		submit();
		sqe = io_uring_get_sqe(ring);
	}
	if (sqe == NULL)
		fail("no SQE after a submission");
	return sqe;
}

/* A submission without a wait: the requests are taken, nothing completes (the
 * script's actions are the kernel's, and they run in urk_wait). */
int urk_submit(struct io_uring *ring)
{
	if (ring != fk.ring)
		fail("urk_submit on a ring the fake did not make");
	submit();
	return 0;
}

int urk_wait(struct io_uring *ring, const struct urk_caps *caps, unsigned batch, int timeout_ms)
{
	(void)caps;
	(void)batch;
	if (ring != fk.ring)
		fail("urk_wait on a ring the fake did not make");
	submit();
	sweep();
	check_udp();
	trace("turn: %u requests in flight, timeout %d ms", fk.nreqs, timeout_ms);
	fk.posted = 0;
	fire_signal(); /* a TERM the loop has not read yet */
	for (unsigned i = 0; !fk.winding && i < FK_PER_TURN; i++) {
		unsigned op;

		if (fk.left == 0) {
			fk.winding = 1;
			break;
		}
		op = next_byte();
		act(op & 0x7f);
		if (!(op & 0x80))
			break;
	}
	if (fk.winding)
		wind_turn();
	if (fk.posted > 0)
		return 0;
	if (!fk.winding && timeout_ms > 0)
		fk.now += (uint64_t)timeout_ms; /* the kernel slept until the timeout */
	return -ETIME;
}

uint64_t urk_now_ms(void)
{
	return fk.now;
}

int loop_uring_probe(char *why, size_t whylen)
{
	(void)why;
	(void)whylen;
	return 0;
}

/* ---- the driver's side ---- */

int fake_begin(const struct urk_caps *caps, const uint8_t *script, size_t len, int slow_wind,
	       int trace_on)
{
	int p[2];

	memset(&fk, 0, sizeof(fk));
	fk.caps = *caps;
	fk.in = script;
	fk.left = len;
	fk.now = FK_START_MS;
	fk.trace = trace_on;
	fk.slow_wind = slow_wind;
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		fail("pipe2: %s", strerror(errno));
	fk.sig_w = p[1];
	file_add(p[0], -1, FAKE_SIG);
	return p[0];
}

void fake_give_fd(int fd, enum fake_fd_kind kind)
{
	file_add(fd, -1, kind);
}

void fake_end(void)
{
	int left = -1;

	if (!fk.term_sent)
		fail("loop_uring_run returned without a TERM");
	sweep();
	for (unsigned i = 0; i < fk.nfiles; i++) {
		struct fk_file *f = &fk.files[i];

		if (f->peer >= 0)
			close(f->peer);
		if (!f->open)
			continue;
		if (f->kind != FAKE_SIG && left < 0)
			left = (int)i;
		else
			close(f->fd);
	}
	close(fk.sig_w);
	if (left >= 0)
		fail("fd %d (%s) given to the loop is still open after loop_uring_run returned",
		     fk.files[left].fd, fd_kind_name[fk.files[left].kind]);
}
