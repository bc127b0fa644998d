/*
 * config: the option table and everything it drives.
 *
 * One row per option: its names, type, bounds, default and help. The command line,
 * the config file, --help and --check-config all walk this table, so an option
 * exists in all four places or in none. Values are checked by one setter whose
 * messages the callers prefix with "--name: " or "FILE:LINE: name: ".
 */
#include "echod/config.h"
#include "echod/priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum opt_type {
	OPT_LISTEN,   /* repeatable listen spec */
	OPT_ACL,      /* repeatable CIDR rule of an access list; empty: the list emptied */
	OPT_UINT,     /* unsigned integer within [min, max] */
	OPT_BACKEND,  /* auto | epoll | io_uring */
	OPT_OFFLOAD,  /* off | sockmap | auto */
	OPT_TEXT,     /* free text, at most CONFIG_TEXT_MAX - 1 bytes */
	OPT_ENDPOINT, /* [HOST]:PORT or PORT, kept as text; empty: off */
	OPT_USER,     /* USER[:GROUP] that exists here, kept as text; empty: off */
	OPT_BOOL,     /* parse_bool's words, on the command line too (--seccomp=off) */
	OPT_VERBOSE,  /* flag: command line -v, file "verbose = true" */
	OPT_QUIET,
	OPT_ACTION,   /* command line only: help, version, check-config */
};

#define OPTF_CMDLINE 0x1 /* command line only */

struct option_def {
	const char *name;
	char short_name;
	enum opt_type type;
	unsigned min, max;
	const char *def;      /* default, parsed by the same setter; NULL: none */
	size_t off;           /* field in struct config */
	const char *metavar;
	const char *help;
	unsigned flags;
	enum config_action action;
};

#define F(field) offsetof(struct config, field)

static const struct option_def options[] = {
	{"listen", 'l', OPT_LISTEN, 0, 0, NULL, F(listen), "SPEC",
	 "listen on [tcp:|udp:][HOST]:PORT[/SERVICE] or PORT; repeatable (default tcp::7)", 0, 0},
	{"workers", 'w', OPT_UINT, 1, CONFIG_WORKERS_MAX, NULL, F(workers), "N",
	 "worker processes (default: online CPUs)", 0, 0},
	{"backend", 'b', OPT_BACKEND, 0, 0, "auto", F(backend), "NAME",
	 "auto | epoll | io_uring", 0, 0},
	{"max-conns", 0, OPT_UINT, 0, 100000000, "0", F(max_conns), "N",
	 "open TCP connections in total, all workers together (0: descriptors only)", 0, 0},
	{"max-conns-per-ip", 0, OPT_UINT, 0, 1000000, "0", F(max_conns_per_ip), "N",
	 "open TCP connections per client address, IPv6 per /64 (0: no limit)", 0, 0},
	{"conn-rate", 0, OPT_UINT, 0, 1000000, "0", F(conn_rate), "N",
	 "new TCP connections a second per client address, IPv6 per /64, bursts of N; "
	 "all workers together (0: no limit)", 0, 0},
	{"allow", 0, OPT_ACL, 0, 0, NULL, F(allow), "CIDR",
	 "serve only clients in CIDR (IPv4 or IPv6, an address alone: one host); repeatable "
	 "(default: every client)", 0, 0},
	{"deny", 0, OPT_ACL, 0, 0, NULL, F(deny), "CIDR",
	 "refuse clients in CIDR, unless a longer --allow prefix matches them; repeatable "
	 "(default: none)", 0, 0},
	{"idle-timeout", 0, OPT_UINT, 0, 86400 * 365, "300", F(idle_timeout), "SECS",
	 "close a connection that moved no byte for SECS (0: never)", 0, 0},
	{"drain-timeout", 0, OPT_UINT, 0, 86400, "10", F(drain_timeout), "SECS",
	 "on TERM, how long open connections may go on being echoed", 0, 0},
	{"backlog", 0, OPT_UINT, 1, 1 << 20, "4096", F(backlog), "N",
	 "listen backlog (the kernel caps it at net.core.somaxconn)", 0, 0},
	{"user", 0, OPT_USER, 0, 0, "", F(user), "USER[:GROUP]",
	 "run as USER (and GROUP) once the sockets are bound", 0, 0},
	{"metrics", 0, OPT_ENDPOINT, 0, 0, "", F(metrics), "[HOST]:PORT",
	 "serve Prometheus text on /metrics (127.0.0.1 unless HOST is given; off by default)", 0,
	 0},
	{"udp-rate", 0, OPT_UINT, 0, 1000000, "10000", F(udp_rate), "N",
	 "UDP datagrams answered per second per source address, IPv6 per /64; an answer "
	 "K times its request's size counts K (0: no limit)", 0, 0},
	{"banner", 0, OPT_TEXT, 0, 0, "", F(banner), "TEXT",
	 "a line sent first on every TCP echo connection", 0, 0},
	{"zerocopy-threshold", 0, OPT_UINT, 0, 1 << 30, "0", F(zerocopy_threshold), "BYTES",
	 "io_uring SEND_ZC for sends at least this big (0: off)", 0, 0},
	{"ring-buffers", 0, OPT_UINT, 1, 32768, "512", F(ring_buffers), "N",
	 "io_uring: provided buffers per worker (rounded up to a power of two)", 0, 0},
	{"ring-buffer-size", 0, OPT_UINT, 64, 1 << 20, "8192", F(ring_buffer_size), "BYTES",
	 "io_uring: size of each provided buffer", 0, 0},
	{"offload", 0, OPT_OFFLOAD, 0, 0, "off", F(offload), "MODE",
	 "off | sockmap | auto: echo TCP echo listeners in the kernel (eBPF sockmap, epoll "
	 "backend); auto falls back to user space", 0, 0},
	{"offload-budget", 0, OPT_UINT, 65536, 1073741824, "4194304", F(offload_budget), "BYTES",
	 "offload: bytes a peer may owe (sent, not yet echoed) before it is reset", 0, 0},
	{"seccomp", 0, OPT_BOOL, 0, 0, ECHOD_SECCOMP_DEFAULT, F(seccomp), "BOOL",
	 "workers run under a system call allow-list (where built with libseccomp)", 0, 0},
	{"config", 0, OPT_TEXT, 0, 0, "", F(config_file), "FILE",
	 "read \"name = value\" lines; the command line wins", OPTF_CMDLINE, 0},
	{"check-config", 't', OPT_ACTION, 0, 0, NULL, 0, NULL,
	 "validate everything, print the effective configuration, exit", OPTF_CMDLINE, CONFIG_CHECK},
	{"verbose", 'v', OPT_VERBOSE, 0, 0, NULL, F(verbosity), NULL,
	 "log more (twice: debug)", 0, 0},
	{"quiet", 'q', OPT_QUIET, 0, 0, NULL, F(verbosity), NULL, "log warnings and errors only",
	 0, 0},
	{"version", 'V', OPT_ACTION, 0, 0, NULL, 0, NULL, "print the version and exit",
	 OPTF_CMDLINE, CONFIG_VERSION},
	{"help", 'h', OPT_ACTION, 0, 0, NULL, 0, NULL, "print this help and exit", OPTF_CMDLINE,
	 CONFIG_HELP},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const char *const backend_names[] = {"auto", "epoll", "io_uring"};
static const char *const offload_names[] = {"off", "sockmap", "auto"};

const char *config_backend_name(enum backend_kind kind)
{
	return backend_names[kind];
}

const char *config_offload_name(enum offload_mode mode)
{
	return offload_names[mode];
}

static int set_error(struct config_error *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_error(struct config_error *err, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->status = status;
	return status;
}

static const struct option_def *find_long(const char *name, size_t len)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
			return &options[i];
	return NULL;
}

static const struct option_def *find_short(char c)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].short_name == c)
			return &options[i];
	return NULL;
}

static int takes_value(const struct option_def *o)
{
	return o->type != OPT_VERBOSE && o->type != OPT_QUIET && o->type != OPT_ACTION;
}

/* Strict decimal: digits only, within [min, max]. */
static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return -1;
	}
	if (v < min)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* The usual spellings, in any case: true/false, yes/no, on/off, 1/0. */
static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
			*out = strcasecmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return -1;
}

#define BOOL_WORDS "true or false, yes or no, on or off, 1 or 0"

static int set_listen(struct config *cfg, const char *value, char *why, size_t whylen)
{
	struct listen_spec spec;
	char reason[300];

	if (listen_parse(value, &spec, reason, sizeof(reason)) < 0)
		goto bad;
	if (spec.proto == LISTEN_UDP && spec.service == SERVICE_REVERSE) {
		snprintf(reason, sizeof(reason),
			 "the reverse service is TCP only (it works on lines)");
		goto bad;
	}
	if (cfg->nlisten == CONFIG_LISTEN_MAX) {
		snprintf(reason, sizeof(reason), "too many listeners (at most %d)",
			 CONFIG_LISTEN_MAX);
		goto bad;
	}
	cfg->listen[cfg->nlisten++] = spec;
	return 0;
bad:
	snprintf(why, whylen, "invalid value '%.80s': %s", value, reason);
	return -1;
}

static int check_endpoint(const char *value, char *why, size_t whylen)
{
	struct listen_spec spec;

	if (strchr(value, '/') != NULL || strncmp(value, "udp:", 4) == 0) {
		snprintf(why, whylen, "invalid value '%s' (expected [HOST]:PORT)", value);
		return -1;
	}
	return listen_parse(value, &spec, why, whylen);
}

static int check_user(const char *value, char *why, size_t whylen)
{
	struct priv_ids ids;
	int n = snprintf(why, whylen, "invalid value '%.80s': ", value);

	/* The prefix goes first; priv_resolve writes its reason after it. */
	if (n < 0 || (size_t)n >= whylen)
		return -1;
	return priv_resolve(value, &ids, why + n, whylen - (size_t)n) == 0 ? 0 : -1;
}

/*
 * verbose and quiet, one setting under two names. On the command line each -v adds
 * a level (debug, 2, is the most) and -q means warnings and errors; in the file
 * "verbose" is a boolean or 2 (debug: what -t prints for -vv) and "quiet" a boolean,
 * the later line winning. Both at once within one source is refused: which one the
 * user meant cannot be guessed. Across sources the command line wins, as for every
 * setting: its first -v or -q replaces what the file said (walk_args).
 */
static int set_verbosity(struct config *cfg, int verbose, const char *value, int from_file,
			 char *why, size_t whylen)
{
	int on = 1, level = 2;

	if (from_file && !(verbose && strcmp(value, "2") == 0)) {
		if (parse_bool(value, &on) < 0) {
			snprintf(why, whylen, "invalid value '%s' (expected %s%s)", value,
				 BOOL_WORDS, verbose ? ", or 2 for debug" : "");
			return -1;
		}
		level = 1;
	}
	if (!on) {
		if (verbose ? cfg->verbosity > 0 : cfg->verbosity < 0)
			cfg->verbosity = 0;
		return 0;
	}
	if (verbose ? cfg->verbosity < 0 : cfg->verbosity > 0) {
		if (from_file)
			snprintf(why, whylen, "cannot be combined with '%s = true' above",
				 verbose ? "quiet" : "verbose");
		else
			snprintf(why, whylen, "cannot be combined with %s",
				 verbose ? "-q/--quiet" : "-v/--verbose");
		return -1;
	}
	if (!verbose)
		cfg->verbosity = -1;
	else if (from_file)
		cfg->verbosity = level;
	else if (cfg->verbosity < 2)
		cfg->verbosity++;
	return 0;
}

/*
 * The one setter. from_file selects the flag syntax ("verbose = true"). Returns 0, or
 * -1 with a reason in why that the caller prefixes with where the value came from.
 */
static int set_value(struct config *cfg, const struct option_def *o, const char *value,
		     int from_file, char *why, size_t whylen)
{
	char *field = (char *)cfg + o->off;
	unsigned u;
	int b;

	switch (o->type) {
	case OPT_LISTEN:
		return set_listen(cfg, value, why, whylen);
	case OPT_ACL:
		return acl_add((struct acl_list *)field, value, why, whylen);
	case OPT_UINT:
		if (parse_uint(value, o->min, o->max, &u) < 0) {
			snprintf(why, whylen, "invalid value '%s' (expected an integer from %u to %u)",
				 value, o->min, o->max);
			return -1;
		}
		memcpy(field, &u, sizeof(u));
		return 0;
	case OPT_BACKEND:
		for (int k = 0; k < 3; k++) {
			if (strcmp(value, backend_names[k]) == 0) {
				cfg->backend = (enum backend_kind)k;
				return 0;
			}
		}
		snprintf(why, whylen, "invalid value '%s' (expected auto, epoll or io_uring)", value);
		return -1;
	case OPT_OFFLOAD:
		for (int k = 0; k < 3; k++) {
			if (strcmp(value, offload_names[k]) == 0) {
				cfg->offload = (enum offload_mode)k;
				return 0;
			}
		}
		snprintf(why, whylen, "invalid value '%s' (expected off, sockmap or auto)", value);
		return -1;
	case OPT_ENDPOINT:
		if (*value != '\0' && check_endpoint(value, why, whylen) < 0)
			return -1;
		goto text;
	case OPT_USER:
		if (*value != '\0' && check_user(value, why, whylen) < 0)
			return -1;
		goto text;
	case OPT_TEXT:
	text:
		if (strlen(value) >= CONFIG_TEXT_MAX || strpbrk(value, "\r\n") != NULL) {
			snprintf(why, whylen, "invalid value '%.40s' (one line of at most %d bytes)",
				 value, CONFIG_TEXT_MAX - 1);
			return -1;
		}
		strcpy(field, value);
		return 0;
	case OPT_BOOL:
		if (parse_bool(value, &b) < 0) {
			snprintf(why, whylen, "invalid value '%s' (expected %s)", value, BOOL_WORDS);
			return -1;
		}
		memcpy(field, &b, sizeof(b));
		return 0;
	case OPT_VERBOSE:
	case OPT_QUIET:
		return set_verbosity(cfg, o->type == OPT_VERBOSE, value, from_file, why, whylen);
	case OPT_ACTION:
		cfg->action = o->action;
		return 0;
	}
	return -1;
}

static void config_defaults(struct config *cfg)
{
	char why[128];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].def != NULL)
			set_value(cfg, &options[i], options[i].def, 1, why, sizeof(why));
	/* The one default that is not a constant. */
	cfg->workers = cpus < 1 ? 1 : cpus > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : (unsigned)cpus;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

/*
 * A value in the file, in place. Unquoted, it is taken as it stands and may not hold
 * a double quote. Quoted, the quotes wrap the whole value, and inside them \" is a
 * quote and \\ a backslash; no other escape exists. config_print writes this form.
 */
static int unquote(char *value, char *why, size_t whylen)
{
	const char *in = value + 1;
	char *out = value;

	if (*value != '"') {
		if (strchr(value, '"') == NULL)
			return 0;
		snprintf(why, whylen, "a double quote inside an unquoted value (quote the "
				      "whole value, with \\\" for a quote inside)");
		return -1;
	}
	for (;;) {
		char c = *in++;

		if (c == '"')
			break;
		if (c == '\\' && *in != '\0') {
			c = *in++;
			if (c != '"' && c != '\\') {
				snprintf(why, whylen, "unknown escape '\\%c' in a quoted value "
						      "(only \\\" and \\\\)", c);
				return -1;
			}
		} else if (c == '\0' || c == '\\') {
			snprintf(why, whylen, "no closing double quote");
			return -1;
		}
		*out++ = c;
	}
	if (*in != '\0') {
		snprintf(why, whylen, "'%.40s' after the closing double quote", in);
		return -1;
	}
	*out = '\0';
	return 0;
}

/* Applies one "name = value" line; returns 0 or EXIT_CONFIG. */
static int file_line(struct config *cfg, char *line, const char *path, unsigned lineno,
		     struct config_error *err)
{
	char why[400];
	char *eq, *name, *value;
	const struct option_def *o;

	name = trim(line);
	if (*name == '\0' || *name == '#')
		return 0;
	eq = strchr(name, '=');
	if (eq == NULL)
		return set_error(err, EXIT_CONFIG, "%s:%u: expected \"name = value\"", path, lineno);
	*eq = '\0';
	name = trim(name);
	value = trim(eq + 1);
	o = find_long(name, strlen(name));
	if (o == NULL)
		return set_error(err, EXIT_CONFIG, "%s:%u: unknown option '%s'", path, lineno, name);
	if (o->flags & OPTF_CMDLINE)
		return set_error(err, EXIT_CONFIG, "%s:%u: %s: allowed on the command line only",
				 path, lineno, name);
	if (unquote(value, why, sizeof(why)) < 0 ||
	    set_value(cfg, o, value, 1, why, sizeof(why)) < 0)
		return set_error(err, EXIT_CONFIG, "%s:%u: %s: %s", path, lineno, name, why);
	return 0;
}

/*
 * The rules between options, checked once all of a source is read (so no order of
 * lines or arguments matters). prefix: "--" on the command line, "" in the file.
 * Returns 0, or -1 with the reason in why.
 */
static int check_across(const struct config *cfg, const char *prefix, char *why, size_t whylen)
{
	unsigned long long n = 1, bytes;

	/* Bounded so that the mapping always fits: past it a worker's mmap fails and the
	 * supervisor would respawn it forever. */
	while (n < cfg->ring_buffers)
		n <<= 1;
	bytes = n * cfg->ring_buffer_size;
	/* The kernel offload runs on the epoll backend; auto gives way instead. */
	if (cfg->offload == OFFLOAD_SOCKMAP && cfg->backend == BACKEND_IO_URING) {
		snprintf(why, whylen,
			 "%soffload%ssockmap runs on the epoll backend: it cannot be combined "
			 "with %sbackend%sio_uring",
			 prefix, *prefix ? "=" : " = ", prefix, *prefix ? "=" : " = ");
		return -1;
	}
	if (bytes > CONFIG_RING_BYTES_MAX) {
		snprintf(why, whylen,
			 "%sring-buffers x %sring-buffer-size: %u (rounded up to %llu) x %u bytes "
			 "is %llu MiB a worker, more than %llu MiB",
			 prefix, prefix, cfg->ring_buffers, n, cfg->ring_buffer_size, bytes >> 20,
			 CONFIG_RING_BYTES_MAX >> 20);
		return -1;
	}
	return 0;
}

int config_parse_file(struct config *cfg, FILE *f, const char *path, struct config_error *err)
{
	char line[1024], why[300];
	unsigned lineno = 0, ring_line = 0;
	unsigned rb = cfg->ring_buffers, rs = cfg->ring_buffer_size;
	enum backend_kind bk = cfg->backend;
	enum offload_mode om = cfg->offload;

	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f))
			return set_error(err, EXIT_CONFIG, "%s:%u: line too long", path, lineno);
		if (file_line(cfg, line, path, lineno, err) != 0)
			return err->status;
		if (cfg->ring_buffers != rb || cfg->ring_buffer_size != rs) {
			ring_line = lineno; /* a cross-option error names the last line that set one */
			rb = cfg->ring_buffers;
			rs = cfg->ring_buffer_size;
		}
		if (cfg->backend != bk || cfg->offload != om) {
			ring_line = lineno; /* backend x offload: the same rule */
			bk = cfg->backend;
			om = cfg->offload;
		}
	}
	if (ferror(f))
		return set_error(err, EXIT_CONFIG, "%s: read error: %s", path, strerror(errno));
	if (ring_line > 0 && check_across(cfg, "", why, sizeof(why)) < 0)
		return set_error(err, EXIT_CONFIG, "%s:%u: %s", path, ring_line, why);
	return 0;
}

static int load_file(struct config *cfg, const char *path, struct config_error *err)
{
	FILE *f = fopen(path, "re");
	int rc;

	if (f == NULL)
		return set_error(err, EXIT_CONFIG, "cannot read config file %s: %s", path,
				 strerror(errno));
	rc = config_parse_file(cfg, f, path, err);
	fclose(f);
	return rc;
}

/*
 * Walks argv. With apply == 0 it only finds --config, --help and --version (so a
 * broken file never hides --help); with apply == 1 it sets every option, the first
 * --listen (--allow, --deny) replacing the file's listeners (rules).
 */
/*
 * One value from the command line. The command line replaces the file's listeners,
 * access lists and verbose/quiet as a whole (the first --listen, --allow, --deny, -v
 * or -q clears them) rather than adding to them.
 */
static int set_arg(struct config *cfg, const struct option_def *o, const char *value,
		   unsigned *replaced, char *why, size_t whylen)
{
	enum { LISTEN_REPLACED = 1, VERBOSITY_REPLACED = 2, ALLOW_REPLACED = 4, DENY_REPLACED = 8 };
	unsigned acl_bit = o->off == F(allow) ? ALLOW_REPLACED : DENY_REPLACED;

	if (o->type == OPT_LISTEN && !(*replaced & LISTEN_REPLACED)) {
		cfg->nlisten = 0;
		*replaced |= LISTEN_REPLACED;
	}
	if (o->type == OPT_ACL && !(*replaced & acl_bit)) {
		((struct acl_list *)((char *)cfg + o->off))->n = 0;
		*replaced |= acl_bit;
	}
	if ((o->type == OPT_VERBOSE || o->type == OPT_QUIET) && !(*replaced & VERBOSITY_REPLACED)) {
		cfg->verbosity = 0;
		*replaced |= VERBOSITY_REPLACED;
	}
	return set_value(cfg, o, value, 0, why, whylen);
}

static int walk_args(struct config *cfg, int argc, char *const argv[], int apply,
		     struct config_error *err)
{
	unsigned replaced = 0; /* set_arg's bits */

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;
		const struct option_def *o;
		char why[400], label[64];

		if (strcmp(arg, "--") == 0) {
			if (i + 1 < argc)
				return set_error(err, EXIT_USAGE, "unexpected argument '%s'",
						 argv[i + 1]);
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0')
			return set_error(err, EXIT_USAGE, "unexpected argument '%s'", arg);
		if (arg[1] == '-') {
			const char *eq = strchr(arg + 2, '=');
			size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);

			o = find_long(arg + 2, len);
			if (o == NULL)
				return set_error(err, EXIT_USAGE,
						 "unknown option '%.*s' (see echod --help)",
						 (int)(len + 2), arg);
			if (eq != NULL && !takes_value(o))
				return set_error(err, EXIT_USAGE, "--%s: takes no value", o->name);
			if (eq != NULL)
				value = eq + 1;
		} else {
			o = find_short(arg[1]);
			if (o == NULL)
				return set_error(err, EXIT_USAGE,
						 "unknown option '-%c' (see echod --help)", arg[1]);
			if (arg[2] != '\0' && takes_value(o)) {
				value = arg + 2;
			} else if (arg[2] != '\0') {
				/* bundled flags, the last may take a value: -vv, -tq, -vw4 */
				const char *p = arg + 1;

				for (; o != NULL && !takes_value(o) && *p != '\0';
				     o = find_short(*++p))
					if ((apply || o->type == OPT_ACTION) &&
					    set_arg(cfg, o, "", &replaced, why, sizeof(why)) < 0)
						return set_error(err, EXIT_USAGE, "--%s: %s",
								 o->name, why);
				if (*p == '\0')
					continue;
				if (o == NULL)
					return set_error(err, EXIT_USAGE,
							 "unknown option '-%c' in '%s'", *p, arg);
				if (p[1] != '\0')
					value = p + 1;
			}
		}
		if (takes_value(o) && value == NULL) {
			if (i + 1 >= argc)
				return set_error(err, EXIT_USAGE, "--%s: missing value", o->name);
			value = argv[++i];
		}
		if (!apply && o->type != OPT_ACTION && o->off != F(config_file))
			continue;
		snprintf(label, sizeof(label), "--%s", o->name);
		if (set_arg(cfg, o, value ? value : "", &replaced, why, sizeof(why)) < 0)
			return set_error(err, EXIT_USAGE, "%s: %s", label, why);
	}
	return 0;
}

int config_load(struct config *cfg, int argc, char *const argv[], struct config_error *err)
{
	struct config pre;
	int rc;

	err->status = 0;
	err->msg[0] = '\0';
	config_defaults(cfg);
	/* First pass: --config, --help, --version. Errors surface in the second pass. */
	config_defaults(&pre);
	rc = walk_args(&pre, argc, argv, 0, err);
	if (rc != 0)
		return rc; /* a usage error comes before anything a file could say */
	if (pre.action == CONFIG_HELP || pre.action == CONFIG_VERSION) {
		cfg->action = pre.action;
		return 0;
	}
	if (pre.config_file[0] != '\0') {
		rc = load_file(cfg, pre.config_file, err);
		if (rc != 0)
			return rc;
	}
	rc = walk_args(cfg, argc, argv, 1, err);
	if (rc != 0)
		return rc;
	/* The file passed on its own: what fails now, the command line made fail. */
	if (check_across(cfg, "--", err->msg, sizeof(err->msg)) < 0)
		return err->status = EXIT_USAGE;
	if (cfg->nlisten == 0)
		set_listen(cfg, "tcp::7", err->msg, sizeof(err->msg));
	return 0;
}

/* One line a rule; an empty list as the empty value that reads back as one. */
static void print_acl(const struct acl_list *l, const char *name, FILE *out)
{
	char rule[INET6_ADDRSTRLEN + 8];

	if (l->n == 0)
		fprintf(out, "%s = \"\"\n", name);
	for (unsigned i = 0; i < l->n; i++) {
		acl_format(&l->v[i], rule, sizeof(rule));
		fprintf(out, "%s = %s\n", name, rule);
	}
}

/* name = "text", in the form unquote reads back. */
static void print_quoted(FILE *out, const char *name, const char *text)
{
	fprintf(out, "%s = \"", name);
	for (; *text != '\0'; text++) {
		if (*text == '"' || *text == '\\')
			fputc('\\', out);
		fputc(*text, out);
	}
	fputs("\"\n", out);
}

static void print_value(const struct config *cfg, const struct option_def *o, FILE *out)
{
	const char *field = (const char *)cfg + o->off;
	char spec[LISTEN_HOST_MAX + 32];
	unsigned u;
	int b;

	switch (o->type) {
	case OPT_LISTEN:
		for (unsigned i = 0; i < cfg->nlisten; i++) {
			listen_format(&cfg->listen[i], spec, sizeof(spec));
			fprintf(out, "listen = %s\n", spec);
		}
		break;
	case OPT_ACL:
		print_acl((const struct acl_list *)field, o->name, out);
		break;
	case OPT_UINT:
		memcpy(&u, field, sizeof(u));
		fprintf(out, "%s = %u\n", o->name, u);
		break;
	case OPT_BACKEND:
		fprintf(out, "%s = %s\n", o->name, backend_names[cfg->backend]);
		break;
	case OPT_OFFLOAD:
		fprintf(out, "%s = %s\n", o->name, offload_names[cfg->offload]);
		break;
	case OPT_TEXT:
	case OPT_ENDPOINT:
	case OPT_USER:
		print_quoted(out, o->name, field);
		break;
	case OPT_BOOL:
		memcpy(&b, field, sizeof(b));
		fprintf(out, "%s = %s\n", o->name, b ? "true" : "false");
		break;
	case OPT_VERBOSE:
		fprintf(out, "verbose = %s\n",
			cfg->verbosity > 1 ? "2" : cfg->verbosity > 0 ? "true" : "false");
		break;
	case OPT_QUIET:
		fprintf(out, "quiet = %s\n", cfg->verbosity < 0 ? "true" : "false");
		break;
	case OPT_ACTION:
		break;
	}
}

void config_print(const struct config *cfg, FILE *out)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (!(options[i].flags & OPTF_CMDLINE))
			print_value(cfg, &options[i], out);
}

/* " (default: X)" from the table, unless the help already says what the default is. */
static const char *default_note(const struct option_def *o, char *buf, size_t buflen)
{
	if (o->def == NULL || strstr(o->help, "default") != NULL)
		return "";
	snprintf(buf, buflen, "(default: %s)", *o->def != '\0' ? o->def : "none");
	return buf;
}

/*
 * Help text from column USAGE_COL, words wrapped before USAGE_WIDTH, then the note as
 * one word. A line never starts with "-", so the option column is all that does
 * (scripts/check-man reads it).
 */
#define USAGE_COL   37
#define USAGE_WIDTH 100

static int print_word(const char *w, size_t len, int col, FILE *out)
{
	if (col > USAGE_COL && col + 1 + (int)len > USAGE_WIDTH && *w != '-') {
		fprintf(out, "\n%*s", USAGE_COL - 1, "");
		col = USAGE_COL - 1;
	}
	fprintf(out, " %.*s", (int)len, w);
	return col + 1 + (int)len;
}

static void print_wrapped(const char *text, const char *note, FILE *out)
{
	int col = USAGE_COL;

	while (*text != '\0') {
		size_t len = strcspn(text, " ");

		col = print_word(text, len, col, out);
		text += len;
		text += strspn(text, " ");
	}
	if (*note != '\0')
		print_word(note, strlen(note), col, out);
	fputc('\n', out);
}

void config_usage(FILE *out)
{
	fprintf(out, "usage: echod [OPTION]...\n"
		     "A high-performance echo server (RFC 862).\n\n");
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option_def *o = &options[i];
		char lhs[64], note[CONFIG_TEXT_MAX + 16];
		int n;

		if (o->short_name)
			n = snprintf(lhs, sizeof(lhs), "-%c, --%s", o->short_name, o->name);
		else
			n = snprintf(lhs, sizeof(lhs), "    --%s", o->name);
		if (o->metavar != NULL)
			snprintf(lhs + n, sizeof(lhs) - (size_t)n, "=%s", o->metavar);
		fprintf(out, "  %-34s", lhs);
		print_wrapped(o->help, default_note(o, note, sizeof(note)), out);
	}
	fprintf(out, "\nSignals: TERM/INT drain and stop, HUP rolling restart with the re-read\n"
		     "configuration, USR1 log the counters.\n"
		     "Exit status: 0 stopped, 64 usage error, 71 system refused, 78 config file "
		     "error.\n");
}
