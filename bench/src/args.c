/* args: echo-bench's option grammar. No I/O: errors come back as strings. */
#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char bench_usage[] =
    "usage: echo-bench [options] HOST:PORT\n"
    "  -t, --threads N       event-loop threads (default 2, at most 256)\n"
    "  -c, --connections N   connections (default 10)\n"
    "  -d, --duration T      measured time: 10, 10s, 500ms, 2m (default 10s)\n"
    "  -s, --size BYTES      message/block size: 64, 4k, 1m (default 64)\n"
    "      --mode M          pingpong | stream | churn | idle | send | recv\n"
    "                        (default pingpong; send: write only, for a discard\n"
    "                        server; recv: read only, checking RFC 864's chargen\n"
    "                        pattern, for a chargen server)\n"
    "      --depth N         pingpong messages in flight per connection (default 1)\n"
    "      --warmup T        run T first without counting it (default 0; not idle)\n"
    "      --latency         print the latency percentile table\n"
    "      --json            print one JSON object instead of text\n"
    "      --cpu LIST        pin threads to CPUs, e.g. 1 or 0-3 or 0,2\n"
    "      --timeout T       no-progress limit per connection, and the time all\n"
    "                        connections get to open before the run (default 5s)\n"
    "  -h, --help            this text\n"
    "HOST is an IPv4 literal, a [IPv6] literal or a name. Every connection opens\n"
    "before the measured time. Exit status: 0 no errors, 1 errors seen, target\n"
    "unreachable or not every connection open in time, 64 usage error.\n";

enum opt_id {
	OPT_THREADS,
	OPT_CONNS,
	OPT_DURATION,
	OPT_SIZE,
	OPT_MODE,
	OPT_DEPTH,
	OPT_WARMUP,
	OPT_LATENCY,
	OPT_JSON,
	OPT_CPU,
	OPT_TIMEOUT,
	OPT_HELP,
};

struct opt_def {
	char short_name; /* 0: long only */
	const char *long_name;
	bool has_value;
	enum opt_id id;
};

static const struct opt_def opt_defs[] = {
    {'t', "threads", true, OPT_THREADS},   {'c', "connections", true, OPT_CONNS},
    {'d', "duration", true, OPT_DURATION}, {'s', "size", true, OPT_SIZE},
    {0, "mode", true, OPT_MODE},	   {0, "depth", true, OPT_DEPTH},
    {0, "warmup", true, OPT_WARMUP},	   {0, "latency", false, OPT_LATENCY},
    {0, "json", false, OPT_JSON},	   {0, "cpu", true, OPT_CPU},
    {0, "timeout", true, OPT_TIMEOUT},	   {'h', "help", false, OPT_HELP},
};

static const char *const mode_names[] = {"pingpong", "stream", "churn", "idle", "send", "recv"};

const char *bench_mode_name(enum bench_mode m)
{
	return mode_names[m];
}

void bench_args_defaults(struct bench_args *a)
{
	memset(a, 0, sizeof(*a));
	a->threads = 2;
	a->conns = 10;
	a->duration_ns = 10ULL * 1000000000ULL;
	a->timeout_ns = 5ULL * 1000000000ULL;
	a->size = 64;
	a->depth = 1;
	a->mode = MODE_PINGPONG;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* strtoull alone accepts signs, spaces and hex; only plain decimal digits are wanted. */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
	char *e;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	*out = strtoull(s, &e, 10);
	if (errno != 0)
		return -1;
	*end = e;
	return 0;
}

static int parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *end;

	if (parse_u64(s, &end, out) < 0 || *end != '\0')
		return -1;
	return *out >= min && *out <= max ? 0 : -1;
}

struct unit {
	const char *name;
	uint64_t scale;
};

static const struct unit duration_units[] = {
    {"", 1000000000ULL}, {"s", 1000000000ULL},	{"ms", 1000000ULL},	 {"us", 1000ULL},
    {"ns", 1ULL},	 {"m", 60000000000ULL}, {"h", 3600000000000ULL},
};

static const struct unit size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1ULL << 10},
    {"kb", 1ULL << 10},
    {"kib", 1ULL << 10},
    {"m", 1ULL << 20},
    {"mb", 1ULL << 20},
    {"mib", 1ULL << 20},
    {"g", 1ULL << 30},
    {"gb", 1ULL << 30},
    {"gib", 1ULL << 30},
};

static int find_unit(const struct unit *units, size_t n, const char *suffix, uint64_t *scale)
{
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(units[i].name, suffix) == 0) {
			*scale = units[i].scale;
			return 0;
		}
	}
	return -1;
}

/* A day is far beyond any sensible benchmark and keeps the ns arithmetic far from overflow. */
#define MAX_DURATION_NS (86400ULL * 1000000000ULL)

int bench_parse_duration(const char *s, uint64_t *ns)
{
	uint64_t whole, scale, frac = 0, frac_div = 1;
	const char *p;

	if (parse_u64(s, &p, &whole) < 0)
		return -1;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		for (; isdigit((unsigned char)*p); p++) {
			if (frac_div < 1000000000ULL) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_div *= 10;
			}
		}
	}
	if (find_unit(duration_units, sizeof(duration_units) / sizeof(duration_units[0]), p,
		      &scale) < 0)
		return -1;
	if (whole > MAX_DURATION_NS / scale)
		return -1;
	*ns = whole * scale + frac * scale / frac_div;
	return *ns <= MAX_DURATION_NS ? 0 : -1;
}

int bench_parse_size(const char *s, uint64_t *bytes)
{
	uint64_t n, scale;
	const char *p;

	if (parse_u64(s, &p, &n) < 0)
		return -1;
	if (find_unit(size_units, sizeof(size_units) / sizeof(size_units[0]), p, &scale) < 0)
		return -1;
	if (n > UINT64_MAX / scale)
		return -1;
	*bytes = n * scale;
	return 0;
}

static int parse_cpu_item(const char *s, const char **end, int max_cpu, int *lo, int *hi)
{
	uint64_t a, b;
	const char *p;

	if (parse_u64(s, &p, &a) < 0)
		return -1;
	b = a;
	if (*p == '-' && parse_u64(p + 1, &p, &b) < 0)
		return -1;
	if (a > b || b >= (uint64_t)max_cpu)
		return -1;
	*lo = (int)a;
	*hi = (int)b;
	*end = p;
	return 0;
}

int bench_parse_cpus(const char *s, int *cpus, int max, int *n)
{
	const char *p = s;
	int lo, hi;

	*n = 0;
	for (;;) {
		if (parse_cpu_item(p, &p, BENCH_MAX_CPUS, &lo, &hi) < 0)
			return -1;
		for (int c = lo; c <= hi; c++) {
			if (*n >= max)
				return -1;
			cpus[(*n)++] = c;
		}
		if (*p == '\0')
			return 0;
		if (*p++ != ',')
			return -1;
	}
}

static int copy_part(char *dst, size_t dstlen, const char *src, size_t len)
{
	if (len == 0 || len >= dstlen)
		return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

int bench_parse_target(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon, *close;
	uint64_t p;

	if (s[0] == '[') {
		close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		if (copy_part(host, hostlen, s + 1, (size_t)(close - s - 1)) < 0)
			return -1;
		colon = close + 1;
	} else {
		colon = strchr(s, ':');
		/* A second colon means an IPv6 literal without brackets: ambiguous. */
		if (colon == NULL || strchr(colon + 1, ':') != NULL)
			return -1;
		if (copy_part(host, hostlen, s, (size_t)(colon - s)) < 0)
			return -1;
	}
	if (parse_uint_range(colon + 1, 1, 65535, &p) < 0)
		return -1;
	snprintf(port, portlen, "%u", (unsigned)p);
	return 0;
}

/* One option occurrence: its definition, the spelling the user typed, and its value. */
struct opt_use {
	const struct opt_def *def;
	char name[64];
	const char *value;
};

static const struct opt_def *find_long(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++) {
		if (strlen(opt_defs[i].long_name) == len &&
		    strncmp(opt_defs[i].long_name, name, len) == 0)
			return &opt_defs[i];
	}
	return NULL;
}

static const struct opt_def *find_short(char c)
{
	for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++) {
		if (opt_defs[i].short_name == c)
			return &opt_defs[i];
	}
	return NULL;
}

/* Splits argv[*i] (and maybe argv[*i + 1]) into one option use; advances *i. */
static int take_option(struct opt_use *u, int argc, char *const argv[], int *i, char *err,
		       size_t errlen)
{
	const char *arg = argv[*i], *inline_value = NULL;

	if (arg[1] == '-') {
		const char *eq = strchr(arg + 2, '=');
		size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);

		u->def = find_long(arg + 2, len);
		snprintf(u->name, sizeof(u->name), "--%.*s", (int)len, arg + 2);
		inline_value = eq ? eq + 1 : NULL;
	} else {
		u->def = find_short(arg[1]);
		snprintf(u->name, sizeof(u->name), "-%c", arg[1]);
		inline_value = arg[2] != '\0' ? arg + 2 : NULL;
	}
	if (u->def == NULL)
		return fail(err, errlen, "unknown option '%s'", arg);
	if (!u->def->has_value) {
		if (inline_value != NULL)
			return fail(err, errlen, "option %s takes no value", u->name);
		u->value = NULL;
	} else if (inline_value != NULL) {
		u->value = inline_value;
	} else if (*i + 1 < argc) {
		u->value = argv[++*i];
	} else {
		return fail(err, errlen, "option %s requires a value", u->name);
	}
	(*i)++;
	return 0;
}

static int bad_value(const struct opt_use *u, const char *expected, char *err, size_t errlen)
{
	return fail(err, errlen, "invalid value '%s' for %s: expected %s", u->value, u->name,
		    expected);
}

static int parse_mode(const char *s, enum bench_mode *m)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (strcmp(s, mode_names[i]) == 0) {
			*m = (enum bench_mode)i;
			return 0;
		}
	}
	return -1;
}

static int apply_count(struct bench_args *a, const struct opt_use *u, char *err, size_t errlen)
{
	uint64_t v;

	switch (u->def->id) {
	case OPT_THREADS:
		if (parse_uint_range(u->value, 1, BENCH_MAX_THREADS, &v) < 0)
			return bad_value(u, "an integer from 1 to 256", err, errlen);
		a->threads = (unsigned)v;
		return 0;
	case OPT_CONNS:
		if (parse_uint_range(u->value, 1, BENCH_MAX_CONNS, &v) < 0)
			return bad_value(u, "an integer from 1 to 1000000", err, errlen);
		a->conns = (unsigned long)v;
		return 0;
	default:
		if (parse_uint_range(u->value, 1, BENCH_MAX_DEPTH, &v) < 0)
			return bad_value(u, "an integer from 1 to 1024", err, errlen);
		a->depth = (unsigned)v;
		return 0;
	}
}

static int apply_duration(struct bench_args *a, const struct opt_use *u, char *err, size_t errlen)
{
	uint64_t ns;

	if (bench_parse_duration(u->value, &ns) < 0)
		return bad_value(u, "a duration such as 10, 10s, 500ms or 2m (at most 24h)", err,
				 errlen);
	if (u->def->id == OPT_WARMUP) {
		a->warmup_ns = ns;
		return 0;
	}
	if (ns < 1000000)
		return bad_value(u, "a duration of at least 1ms", err, errlen);
	if (u->def->id == OPT_DURATION)
		a->duration_ns = ns;
	else
		a->timeout_ns = ns;
	return 0;
}

static int apply_option(struct bench_args *a, const struct opt_use *u, char *err, size_t errlen)
{
	switch (u->def->id) {
	case OPT_THREADS:
	case OPT_CONNS:
	case OPT_DEPTH:
		return apply_count(a, u, err, errlen);
	case OPT_DURATION:
	case OPT_WARMUP:
	case OPT_TIMEOUT:
		return apply_duration(a, u, err, errlen);
	case OPT_SIZE:
		if (bench_parse_size(u->value, &a->size) < 0 || a->size < 1 ||
		    a->size > BENCH_MAX_SIZE)
			return bad_value(u, "a size from 1 to 16m, such as 64 or 4k", err, errlen);
		return 0;
	case OPT_MODE:
		if (parse_mode(u->value, &a->mode) < 0)
			return bad_value(u, "pingpong, stream, churn, idle, send or recv", err,
					 errlen);
		return 0;
	case OPT_CPU:
		if (bench_parse_cpus(u->value, a->cpus, BENCH_MAX_CPUS, &a->ncpus) < 0)
			return bad_value(u, "a CPU list such as 1, 0-3 or 0,2 (CPUs below 1024)",
					 err, errlen);
		return 0;
	case OPT_LATENCY:
		a->latency = true;
		return 0;
	case OPT_JSON:
		a->json = true;
		return 0;
	case OPT_HELP:
		a->help = true;
		return 0;
	}
	return 0;
}

static int apply_target(struct bench_args *a, const char *s, char *err, size_t errlen)
{
	if (a->target[0] != '\0')
		return fail(err, errlen, "unexpected argument '%s' (one HOST:PORT only)", s);
	if (bench_parse_target(s, a->host, sizeof(a->host), a->port, sizeof(a->port)) < 0)
		return fail(err, errlen,
			    "invalid target '%s': expected HOST:PORT, [IPv6]:PORT, port 1..65535",
			    s);
	snprintf(a->target, sizeof(a->target), "%s", s);
	return 0;
}

int bench_args_parse(struct bench_args *a, int argc, char *const argv[], char *err, size_t errlen)
{
	bool options_done = false;
	struct opt_use u;
	int i = 1;

	bench_args_defaults(a);
	while (i < argc) {
		const char *arg = argv[i];

		if (!options_done && strcmp(arg, "--") == 0) {
			options_done = true;
			i++;
		} else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
			if (take_option(&u, argc, argv, &i, err, errlen) < 0 ||
			    apply_option(a, &u, err, errlen) < 0)
				return -1;
		} else {
			if (apply_target(a, arg, err, errlen) < 0)
				return -1;
			i++;
		}
	}
	if (a->help)
		return 0;
	if (a->target[0] == '\0')
		return fail(err, errlen, "missing HOST:PORT");
	/* More threads than connections would leave threads with nothing to do. */
	if (a->threads > a->conns)
		a->threads = (unsigned)a->conns;
	return 0;
}
