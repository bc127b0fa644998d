/*
 * Fuzz target: the io_uring backend (src/loop_uring.c, src/udp_uring.c) at the level
 * of completions, against a fake kernel (fake_ring.c) behind the uring_kernel seam.
 *
 * A worker is built by hand around real listening sockets and the whole loop runs
 * inside loop_uring_run; the fake posts the completions the input chooses, in any
 * order a kernel may, and checks what it can see from the kernel's side (fake_ring.c
 * lists it). ASan, UBSan and LeakSanitizer watch the loop's memory; the backend's own
 * invariant checker is compiled in (ECHOD_CHECK_INVARIANTS). Every input ends with a
 * wind-down (TERM, then everything completes) and loop_uring_run must return.
 *
 * The input: a header of 7 bytes (0 once it runs out), then the fake's script.
 *   0 ring buffers 2 << (n % 6)        1 buffer size 64 << (n % 5)
 *   2 kernel: bit 0 SEND_ZC, 1 multishot byte limit, 2 bundles, 3 min-wait
 *   3 zero-copy threshold (n >> 1) * 8 when n is even, else off
 *   4 idle timeout n % 3 s, drain timeout (n / 3) % 4 s
 *   5 max-conns n % 8 (0: none); bit 7: a slow wind-down (the peers stay still until
 *     the drain deadline has passed)
 *   6 listeners: TCP echo, then (n % 3) none / discard / chargen, then (n / 3) % 3 UDP
 * FUZZ_TRACE=1 prints the fake's every step and the loop's debug log.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echod/config.h"
#include "echod/log.h"
#include "echod/worker.h"
#include "fake_ring.h"
#include "fuzz.h"

#define HEADER	   7
#define MAX_LISTEN 4

static int open_listener(int type)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fuzz_check(fd >= 0, "socket", strerror(errno));
	fuzz_check(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0, "bind 127.0.0.1:0",
		   strerror(errno));
	fuzz_check(type != SOCK_STREAM || listen(fd, 8) == 0, "listen", strerror(errno));
	return fd;
}

static void add_listener(struct worker *w, struct listen_spec *specs, int *fds,
			 enum listen_proto proto, enum listen_service service)
{
	unsigned i = w->nlisten++;

	memset(&specs[i], 0, sizeof(specs[i]));
	specs[i].proto = proto;
	specs[i].service = service;
	fds[i] = open_listener(proto == LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM);
	fake_give_fd(fds[i], proto == LISTEN_UDP       ? FAKE_UDP
			     : service == SERVICE_ECHO ? FAKE_LISTEN
						       : FAKE_LISTEN_SVC);
}

static const struct config *base_config(void)
{
	static struct config base;
	static int loaded;
	char *argv[] = {"echod", NULL};
	struct config_error err;

	if (!loaded) {
		fuzz_check(config_load(&base, 1, argv, &err) == 0, "default configuration",
			   err.msg);
		loaded = 1;
	}
	return &base;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static struct stats_slot slot;
	static const enum listen_service svcs[] = {SERVICE_ECHO, SERVICE_DISCARD, SERVICE_CHARGEN};
	struct listen_spec specs[MAX_LISTEN];
	int fds[MAX_LISTEN], trace = getenv("FUZZ_TRACE") != NULL;
	uint64_t total = 0, open_gauge = 0;
	uint8_t h[HEADER] = {0};
	struct urk_caps caps;
	struct worker w;
	int rc;

	/* As a worker does (worker.c): a peer's write to a connection the loop closed
	 * must not end the process. */
	signal(SIGPIPE, SIG_IGN);

	memcpy(h, data, size < HEADER ? size : HEADER);
	log_init(trace ? 2 : -1);
	cfg = *base_config();
	cfg.ring_buffers = 2u << (h[0] % 6);
	cfg.ring_buffer_size = 64u << (h[1] % 5);
	cfg.zerocopy_threshold = h[3] & 1 ? 0 : (h[3] >> 1) * 8u;
	cfg.idle_timeout = h[4] % 3;
	cfg.drain_timeout = (h[4] / 3) % 4;
	cfg.max_conns = h[5] % 8;
	cfg.max_conns_per_ip = 0;
	cfg.udp_rate = 0;
	cfg.banner[0] = '\0';
	cfg.seccomp = 0; /* worker_ready would filter the fuzzer's own system calls */
	memset(&caps, 0, sizeof(caps));
	caps.zc = h[2] & 1;
	caps.mshot_limit = (h[2] >> 1) & 1;
	caps.bundle = (h[2] >> 2) & 1;
	caps.min_wait = (h[2] >> 3) & 1;
	memset(&slot, 0, sizeof(slot));
	memset(&w, 0, sizeof(w));
	w.cfg = &cfg;
	w.backend = BACKEND_IO_URING;
	w.stats = &slot;
	w.limits.max_conns = cfg.max_conns;
	w.limits.total = &total;
	w.limits.open = &open_gauge;
	w.listen_fds = fds;
	w.listen_specs = specs;
	w.supervisor = getpid();
	w.sigfd = fake_begin(&caps, data + (size < HEADER ? size : HEADER),
			     size < HEADER ? 0 : size - HEADER, h[5] >> 7, trace);
	add_listener(&w, specs, fds, LISTEN_TCP, SERVICE_ECHO);
	if (h[6] % 3 != 0)
		add_listener(&w, specs, fds, LISTEN_TCP, svcs[h[6] % 3]);
	for (unsigned i = 0; i < (h[6] / 3u) % 3; i++)
		add_listener(&w, specs, fds, LISTEN_UDP, SERVICE_ECHO);
	rc = loop_uring_run(&w);
	fuzz_check(rc == 0, "loop_uring_run did not return 0", NULL);
	fake_end();
	fuzz_check(total == 0, "the limits' count of open connections is not 0 after the drain",
		   NULL);
	return 0;
}
