/* config: one option table drives the command line, the config file, --help and
 * --check-config. The result is one validated, read-only struct. */
#ifndef ECHOD_CONFIG_H
#define ECHOD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "echod/acl.h"
#include "echod/listen.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CONFIG_LISTEN_MAX 32
#define CONFIG_TEXT_MAX   256
#define CONFIG_WORKERS_MAX 1024
/* --ring-buffers (rounded up to a power of two) x --ring-buffer-size, per worker */
#define CONFIG_RING_BYTES_MAX (1ull << 30)

enum backend_kind { BACKEND_AUTO, BACKEND_EPOLL, BACKEND_IO_URING };

/* --offload: echo TCP in the kernel (eBPF sockmap), see offload.h. */
enum offload_mode { OFFLOAD_OFF, OFFLOAD_SOCKMAP, OFFLOAD_AUTO };

enum config_action { CONFIG_RUN, CONFIG_HELP, CONFIG_VERSION, CONFIG_CHECK };

/* Exit statuses of the contract (sysexits.h values). */
enum { EXIT_USAGE = 64, EXIT_OSERR = 71, EXIT_CONFIG = 78 };

struct config {
	struct listen_spec listen[CONFIG_LISTEN_MAX];
	unsigned nlisten;
	unsigned workers;
	enum backend_kind backend;
	unsigned max_conns;          /* 0: bounded only by descriptors */
	unsigned max_conns_per_ip;   /* 0: no per-address limit */
	unsigned idle_timeout;       /* seconds, 0: never */
	unsigned drain_timeout;      /* seconds */
	unsigned backlog;
	unsigned udp_rate;           /* per source: see udp.h for what an answer costs */
	unsigned conn_rate;          /* new TCP connections a second per client, 0: off */
	unsigned zerocopy_threshold;
	unsigned ring_buffers;       /* io_uring provided buffers per worker */
	unsigned ring_buffer_size;
	int seccomp;                 /* workers enter the system call allow-list */
	enum offload_mode offload;
	unsigned offload_budget;     /* bytes a peer may owe in offload mode before reset */
	struct acl_list allow, deny; /* --allow / --deny */
	char banner[CONFIG_TEXT_MAX];
	char user[CONFIG_TEXT_MAX];
	char metrics[CONFIG_TEXT_MAX];
	char config_file[CONFIG_TEXT_MAX];
	int verbosity;
	enum config_action action;
};

struct config_error {
	int status;                  /* 0, EXIT_USAGE or EXIT_CONFIG */
	char msg[512];
};

/* Defaults, then the file named by --config, then the command line on top.
 * Returns 0 or the exit status, with the message in err. */
int config_load(struct config *cfg, int argc, char *const argv[], struct config_error *err);
/* Parses "name = value" lines; lineno-carrying messages. Used by config_load. */
int config_parse_file(struct config *cfg, FILE *f, const char *path, struct config_error *err);
/* Prints the effective configuration as config-file lines. */
void config_print(const struct config *cfg, FILE *out);
void config_usage(FILE *out);
const char *config_backend_name(enum backend_kind kind);
const char *config_offload_name(enum offload_mode mode);

#ifdef __cplusplus
}
#endif
#endif
