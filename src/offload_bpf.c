/*
 * offload_bpf: --offload=sockmap with libbpf, see offload.h. The program is
 * src/bpf/echo_sockmap.bpf.c, compiled by clang -target bpf at build time and embedded
 * as echo_sockmap_bpf[] (cmake/embed.cmake): nothing to install beside echod.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "echod/log.h"
#include "echod/offload.h"

extern const unsigned char echo_sockmap_bpf[];
extern const size_t echo_sockmap_bpf_len;

int offload_built(void)
{
	return 1;
}

/* libbpf's own chatter goes to the debug log (-vv), never to plain stderr. */
static int offload_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	if (level == LIBBPF_DEBUG || !log_enabled(LOG_LVL_DEBUG))
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n > 0 && line[n - 1] == '\n')
		line[n - 1] = '\0';
	log_debug("libbpf: %s", line);
	return 0;
}

static int offload_fail(int err, const char *what, char *why, size_t whylen)
{
	if (err == EPERM || err == EACCES)
		snprintf(why, whylen, "%s: %s (needs CAP_BPF and CAP_NET_ADMIN)", what,
			 strerror(err));
	else
		snprintf(why, whylen, "%s: %s", what, strerror(err));
	return -err;
}

/* The loaded object: it stays for the life of the process (the workers inherit the
 * maps' descriptors; the program is held by its attachment to the map). Kept here,
 * not dropped, so that it is never a leak and offload_unload can close it. */
static struct bpf_object *loaded;

/* A shared, writable mapping of an mmapable array of n uint64_t. */
static size_t array_len(unsigned n)
{
	return ((size_t)n * sizeof(uint64_t) + 4095) & ~(size_t)4095;
}

static uint64_t *map_array(int fd, unsigned n)
{
	void *mem = mmap(NULL, array_len(n), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return mem == MAP_FAILED ? NULL : mem;
}

/* One ring buffer per worker table entry, in the program's echo_wake. */
static int make_rings(struct offload_maps *m, int outer_fd, unsigned nrings, char *why,
		      size_t whylen)
{
	m->rings = calloc(nrings, sizeof(*m->rings));
	if (m->rings == NULL)
		return offload_fail(ENOMEM, "ring buffers", why, whylen);
	for (unsigned i = 0; i < nrings; i++) {
		int fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "echo_ring", 0, 0, 65536, NULL);

		if (fd < 0 || bpf_map_update_elem(outer_fd, &i, &fd, BPF_ANY) < 0)
			return offload_fail(errno, "ring buffer", why, whylen);
		m->rings[i] = fd;
		m->nrings = i + 1;
	}
	return 0;
}

int offload_load(struct offload_maps *m, unsigned max_socks, unsigned nslots, unsigned nrings,
		 char *why, size_t whylen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "echo_sockmap");
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map, *slots, *rx, *segs, *mark, *wake;
	int err, map_fd;

	libbpf_set_print(offload_libbpf_print);
	obj = bpf_object__open_mem(echo_sockmap_bpf, echo_sockmap_bpf_len, &opts);
	if (obj == NULL)
		return offload_fail(errno ? errno : EINVAL, "bpf object", why, whylen);
	prog = bpf_object__find_program_by_name(obj, "echo_verdict");
	map = bpf_object__find_map_by_name(obj, "echo_socks");
	slots = bpf_object__find_map_by_name(obj, "echo_slots");
	rx = bpf_object__find_map_by_name(obj, "echo_rx");
	segs = bpf_object__find_map_by_name(obj, "echo_segs");
	mark = bpf_object__find_map_by_name(obj, "echo_mark");
	wake = bpf_object__find_map_by_name(obj, "echo_wake");
	if (prog == NULL || map == NULL || slots == NULL || rx == NULL || segs == NULL ||
	    mark == NULL || wake == NULL) {
		bpf_object__close(obj);
		return offload_fail(ENOENT, "bpf object", why, whylen);
	}
	/* libbpf 1.1 knows no section name for this attach type: "sk_skb" plus this. */
	bpf_program__set_type(prog, BPF_PROG_TYPE_SK_SKB);
	bpf_program__set_expected_attach_type(prog, BPF_SK_SKB_STREAM_VERDICT);
	bpf_map__set_max_entries(map, max_socks);
	bpf_map__set_max_entries(slots, max_socks);
	bpf_map__set_max_entries(rx, nslots);
	bpf_map__set_max_entries(segs, nslots);
	bpf_map__set_max_entries(mark, nslots);
	bpf_map__set_max_entries(wake, nrings);
	err = bpf_object__load(obj);
	if (err < 0) {
		bpf_object__close(obj);
		return offload_fail(-err, "bpf", why, whylen);
	}
	map_fd = bpf_map__fd(map);
	if (bpf_prog_attach(bpf_program__fd(prog), map_fd, BPF_SK_SKB_STREAM_VERDICT, 0) < 0) {
		err = errno;
		bpf_object__close(obj);
		return offload_fail(err, "bpf attach (sk_skb stream verdict)", why, whylen);
	}
	/* The counters and marks, shared with the program and, across fork, with every
	 * worker. */
	m->rx = map_array(bpf_map__fd(rx), nslots);
	m->segs = map_array(bpf_map__fd(segs), nslots);
	m->mark = map_array(bpf_map__fd(mark), nslots);
	if (m->rx == NULL || m->segs == NULL || m->mark == NULL) {
		err = errno;
		bpf_object__close(obj);
		return offload_fail(err, "mmap(echo_rx, echo_segs, echo_mark)", why, whylen);
	}
	err = make_rings(m, bpf_map__fd(wake), nrings, why, whylen);
	if (err < 0) {
		bpf_object__close(obj);
		return err;
	}
	loaded = obj;
	m->socks_fd = map_fd;
	m->slots_fd = bpf_map__fd(slots);
	m->nslots = nslots;
	return 0;
}

void offload_unload(struct offload_maps *m)
{
	size_t len = array_len(m->nslots);

	if (loaded == NULL)
		return;
	for (unsigned i = 0; i < m->nrings; i++)
		close(m->rings[i]);
	free(m->rings);
	(void)munmap(m->rx, len);
	(void)munmap(m->segs, len);
	(void)munmap(m->mark, len);
	bpf_object__close(loaded);
	loaded = NULL;
	*m = (struct offload_maps){.socks_fd = -1, .slots_fd = -1};
}

int offload_insert(const struct offload_maps *m, int fd, uint32_t slot, uint32_t ring,
		   uint64_t mark, uint64_t *cookie)
{
	uint32_t where[2] = {slot, ring}; /* struct echo_slot */
	uint64_t value = (uint64_t)fd;
	socklen_t len = sizeof(*cookie);
	int err;

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) < 0)
		return -errno;
	__atomic_store_n(&m->rx[slot], 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->segs[slot], 0, __ATOMIC_RELAXED);
	offload_set_mark(m, slot, mark);
	if (bpf_map_update_elem(m->slots_fd, cookie, where, BPF_ANY) < 0)
		return -errno;
	if (bpf_map_update_elem(m->socks_fd, cookie, &value, BPF_NOEXIST) < 0) {
		err = errno;
		(void)bpf_map_delete_elem(m->slots_fd, cookie);
		return -err;
	}
	return 0;
}

int offload_forget(const struct offload_maps *m, uint64_t cookie)
{
	return bpf_map_delete_elem(m->slots_fd, &cookie) < 0 ? -errno : 0;
}

int offload_forget_range(const struct offload_maps *m, uint32_t lo, uint32_t hi)
{
	uint64_t key, next;
	uint32_t where[2];
	int n = 0, first = 1;

	/* Deleting the entry a walk stands on restarts it from the first key: walk from
	 * the previous key that was kept instead. */
	while (bpf_map_get_next_key(m->slots_fd, first ? NULL : &key, &next) == 0) {
		if (bpf_map_lookup_elem(m->slots_fd, &next, where) == 0 && where[0] >= lo &&
		    where[0] < hi && bpf_map_delete_elem(m->slots_fd, &next) == 0) {
			n++;
			continue; /* key stays: the walk goes on after it */
		}
		key = next;
		first = 0;
	}
	return errno == ENOENT ? n : -errno;
}

struct offload_ring {
	struct ring_buffer *rb;
	void (*fn)(void *arg, uint32_t slot);
	void *arg;
};

static int ring_record(void *ctx, void *data, size_t size)
{
	struct offload_ring *r = ctx;
	uint32_t slot;

	if (size >= sizeof(slot)) {
		memcpy(&slot, data, sizeof(slot));
		r->fn(r->arg, slot);
	}
	return 0;
}

struct offload_ring *offload_ring_open(const struct offload_maps *m, unsigned ring,
				       void (*fn)(void *arg, uint32_t slot), void *arg)
{
	struct offload_ring *r;

	if (ring >= m->nrings || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->fn = fn;
	r->arg = arg;
	r->rb = ring_buffer__new(m->rings[ring], ring_record, r, NULL);
	if (r->rb == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

int offload_ring_fd(const struct offload_maps *m, unsigned ring)
{
	return ring < m->nrings ? m->rings[ring] : -1;
}

void offload_ring_consume(struct offload_ring *r)
{
	(void)ring_buffer__consume(r->rb);
}

void offload_ring_close(struct offload_ring *r)
{
	if (r == NULL)
		return;
	ring_buffer__free(r->rb);
	free(r);
}
