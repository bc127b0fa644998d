/*
 * offload_bpf: --offload=sockmap with libbpf, see offload.h. The program is
 * src/bpf/echo_sockmap.bpf.c, compiled by clang -target bpf at build time and embedded
 * as echo_sockmap_bpf[] (cmake/embed.cmake): nothing to install beside echod.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

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

int offload_load(struct offload_maps *m, unsigned max_socks, unsigned nslots, char *why,
		 size_t whylen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "echo_sockmap");
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *map, *slots, *rx;
	size_t rx_len;
	void *mem;
	int err, map_fd;

	libbpf_set_print(offload_libbpf_print);
	obj = bpf_object__open_mem(echo_sockmap_bpf, echo_sockmap_bpf_len, &opts);
	if (obj == NULL)
		return offload_fail(errno ? errno : EINVAL, "bpf object", why, whylen);
	prog = bpf_object__find_program_by_name(obj, "echo_verdict");
	map = bpf_object__find_map_by_name(obj, "echo_socks");
	slots = bpf_object__find_map_by_name(obj, "echo_slots");
	rx = bpf_object__find_map_by_name(obj, "echo_rx");
	if (prog == NULL || map == NULL || slots == NULL || rx == NULL) {
		bpf_object__close(obj);
		return offload_fail(ENOENT, "bpf object", why, whylen);
	}
	/* libbpf 1.1 knows no section name for this attach type: "sk_skb" plus this. */
	bpf_program__set_type(prog, BPF_PROG_TYPE_SK_SKB);
	bpf_program__set_expected_attach_type(prog, BPF_SK_SKB_STREAM_VERDICT);
	bpf_map__set_max_entries(map, max_socks);
	bpf_map__set_max_entries(slots, max_socks);
	bpf_map__set_max_entries(rx, nslots);
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
	/* The counters, shared with the program and, across fork, with every worker. */
	rx_len = ((size_t)nslots * sizeof(uint64_t) + 4095) & ~(size_t)4095;
	mem = mmap(NULL, rx_len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(rx), 0);
	if (mem == MAP_FAILED) {
		err = errno;
		bpf_object__close(obj);
		return offload_fail(err, "mmap(echo_rx)", why, whylen);
	}
	/* The object stays loaded for the life of the process (the workers inherit the
	 * maps' descriptors; the program is held by its attachment to the map). */
	m->socks_fd = map_fd;
	m->slots_fd = bpf_map__fd(slots);
	m->rx = mem;
	m->nslots = nslots;
	return 0;
}

int offload_insert(const struct offload_maps *m, int fd, uint32_t slot, uint64_t *cookie)
{
	uint64_t value = (uint64_t)fd;
	socklen_t len = sizeof(*cookie);
	int err;

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) < 0)
		return -errno;
	__atomic_store_n(&m->rx[slot], 0, __ATOMIC_RELAXED);
	if (bpf_map_update_elem(m->slots_fd, cookie, &slot, BPF_ANY) < 0)
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
