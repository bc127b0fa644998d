/* args: command-line parsing for echo-bench, kept free of I/O so it can be unit-tested. */
#ifndef ECHO_BENCH_ARGS_H
#define ECHO_BENCH_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit status for usage errors (sysexits.h EX_USAGE). */
#define BENCH_EXIT_USAGE 64

#define BENCH_MAX_CPUS	  1024 /* CPU_SETSIZE on glibc */
#define BENCH_MAX_THREADS 256
#define BENCH_MAX_CONNS	  1000000UL
#define BENCH_MAX_SIZE	  (16UL << 20)
#define BENCH_MAX_DEPTH	  1024

/* send: write only (a discard server's load); recv: read only, checking RFC 864's
 * chargen pattern (a chargen server's load). */
enum bench_mode { MODE_PINGPONG, MODE_STREAM, MODE_CHURN, MODE_IDLE, MODE_SEND, MODE_RECV };

struct bench_args {
	unsigned threads;
	unsigned long conns;
	uint64_t duration_ns;
	uint64_t warmup_ns;
	uint64_t timeout_ns;
	uint64_t size;
	unsigned depth;
	enum bench_mode mode;
	bool latency;
	bool json;
	bool help;
	int ncpus;
	int cpus[BENCH_MAX_CPUS];
	char host[256];
	char port[8];
	char target[300];
};

void bench_args_defaults(struct bench_args *a);

/*
 * Fills *a from argv (argv[0] is the program name). Returns 0, or -1 with a
 * one-line message naming the offending option or value in err.
 */
int bench_args_parse(struct bench_args *a, int argc, char *const argv[], char *err, size_t errlen);

/* "10", "10s", "500ms", "250us", "2m", "1h", "1.5s"; seconds when no unit. */
int bench_parse_duration(const char *s, uint64_t *ns);
/* "64", "4k", "1KiB", "2m", "1MB"; units are binary (1k = 1024). */
int bench_parse_size(const char *s, uint64_t *bytes);
/* "1", "0-3", "0,2,4-7" in the given order. */
int bench_parse_cpus(const char *s, int *cpus, int max, int *n);
/* "1.2.3.4:7", "[::1]:7", "name:7"; the port must be numeric 1..65535. */
int bench_parse_target(const char *s, char *host, size_t hostlen, char *port, size_t portlen);

const char *bench_mode_name(enum bench_mode m);

extern const char bench_usage[];

#ifdef __cplusplus
}
#endif

#endif
