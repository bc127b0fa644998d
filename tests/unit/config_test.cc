// config: the command line, the config file, config_print and config_usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "echod/config.h"

namespace
{

// argv for config_load: "echod" followed by the given arguments.
class Argv
{
      public:
	explicit Argv(const std::vector<std::string> &args) : store_(args)
	{
		store_.insert(store_.begin(), "echod");
		for (std::string &s : store_)
			ptrs_.push_back(s.data());
		ptrs_.push_back(nullptr);
	}
	int argc() const
	{
		return static_cast<int>(store_.size());
	}
	char *const *argv() const
	{
		return ptrs_.data();
	}

      private:
	std::vector<std::string> store_;
	std::vector<char *> ptrs_;
};

struct Loaded {
	int rc;
	struct config cfg;
	struct config_error err;

	bool Says(const std::string &text) const
	{
		return strstr(err.msg, text.c_str()) != nullptr;
	}
};

Loaded Load(const std::vector<std::string> &args)
{
	Argv a(args);
	Loaded l;

	l.rc = config_load(&l.cfg, a.argc(), a.argv(), &l.err);
	return l;
}

// A file in /tmp holding `text`, removed when it goes out of scope.
class TempFile
{
      public:
	explicit TempFile(const std::string &text)
	{
		char tmpl[] = "/tmp/echod-unit-XXXXXX";
		int fd = mkstemp(tmpl);

		if (fd < 0)
			ADD_FAILURE() << "mkstemp: " << strerror(errno);
		else if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
			ADD_FAILURE() << "write: " << strerror(errno);
		if (fd >= 0)
			close(fd);
		path_ = tmpl;
	}
	~TempFile()
	{
		unlink(path_.c_str());
	}
	const std::string &path() const
	{
		return path_;
	}
	// path:line: as the messages of config file errors start.
	std::string At(unsigned line) const
	{
		return path_ + ":" + std::to_string(line) + ":";
	}

      private:
	std::string path_;
};

// The defaults with no listener, as config_load has them when it reads the file.
struct config EmptyDefaults()
{
	Loaded l = Load({});

	EXPECT_EQ(l.rc, 0) << l.err.msg;
	l.cfg.nlisten = 0;
	return l.cfg;
}

// config_parse_file over in-memory text (non-empty).
int ParseText(const std::string &text, struct config *cfg, struct config_error *err)
{
	std::string buf = text;
	FILE *f = fmemopen(buf.data(), buf.size(), "r");
	int rc;

	if (f == nullptr) {
		ADD_FAILURE() << "fmemopen: " << strerror(errno);
		return -1;
	}
	err->status = 0;
	err->msg[0] = '\0';
	rc = config_parse_file(cfg, f, "mem.conf", err);
	fclose(f);
	return rc;
}

std::string Spec(const struct listen_spec &spec)
{
	char out[LISTEN_HOST_MAX + 32];

	listen_format(&spec, out, sizeof(out));
	return out;
}

std::vector<std::string> Specs(const struct config &cfg)
{
	std::vector<std::string> v;

	for (unsigned i = 0; i < cfg.nlisten; i++)
		v.push_back(Spec(cfg.listen[i]));
	return v;
}

std::string Usage()
{
	char *text = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	config_usage(f);
	fclose(f);
	std::string s(text, len);
	free(text);
	return s;
}

std::vector<std::string> Rules(const struct acl_list &l)
{
	std::vector<std::string> v;
	char out[64];

	for (unsigned i = 0; i < l.n; i++) {
		acl_format(&l.v[i], out, sizeof(out));
		v.push_back(out);
	}
	return v;
}

std::string Printed(const struct config &cfg)
{
	char *text = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	config_print(&cfg, f);
	fclose(f);
	std::string s(text, len);
	free(text);
	return s;
}

void ExpectSameConfig(const struct config &a, const struct config &b)
{
	EXPECT_EQ(Specs(a), Specs(b));
	for (unsigned i = 0; i < a.nlisten && i < b.nlisten; i++)
		EXPECT_EQ(a.listen[i].any, b.listen[i].any) << Spec(a.listen[i]);
	EXPECT_EQ(a.workers, b.workers);
	EXPECT_EQ(a.backend, b.backend);
	EXPECT_EQ(a.max_conns, b.max_conns);
	EXPECT_EQ(a.max_conns_per_ip, b.max_conns_per_ip);
	EXPECT_EQ(a.idle_timeout, b.idle_timeout);
	EXPECT_EQ(a.drain_timeout, b.drain_timeout);
	EXPECT_EQ(a.backlog, b.backlog);
	EXPECT_EQ(a.udp_rate, b.udp_rate);
	EXPECT_EQ(a.zerocopy_threshold, b.zerocopy_threshold);
	EXPECT_EQ(a.ring_buffers, b.ring_buffers);
	EXPECT_EQ(a.ring_buffer_size, b.ring_buffer_size);
	EXPECT_EQ(a.seccomp, b.seccomp);
	EXPECT_EQ(a.conn_rate, b.conn_rate);
	EXPECT_EQ(Rules(a.allow), Rules(b.allow));
	EXPECT_EQ(Rules(a.deny), Rules(b.deny));
	EXPECT_STREQ(a.banner, b.banner);
	EXPECT_STREQ(a.user, b.user);
	EXPECT_STREQ(a.metrics, b.metrics);
	EXPECT_EQ(a.verbosity, b.verbosity);
}

// config_print, then config_parse_file of what it printed into the defaults.
void ExpectRoundTrip(const struct config &cfg)
{
	FILE *f = tmpfile();
	struct config back = EmptyDefaults();
	struct config_error err;

	ASSERT_NE(f, nullptr);
	config_print(&cfg, f);
	rewind(f);
	EXPECT_EQ(config_parse_file(&back, f, "printed", &err), 0) << err.msg;
	fclose(f);
	ExpectSameConfig(cfg, back);
}

unsigned OnlineCpus()
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > CONFIG_WORKERS_MAX ? CONFIG_WORKERS_MAX : static_cast<unsigned>(n);
}

// --- the command line ---

TEST(ConfigDefaults, MatchTheContract)
{
	Loaded l = Load({});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(l.err.status, 0);
	EXPECT_EQ(l.cfg.action, CONFIG_RUN);
	ASSERT_EQ(l.cfg.nlisten, 1u);
	EXPECT_EQ(l.cfg.listen[0].proto, LISTEN_TCP);
	EXPECT_EQ(l.cfg.listen[0].service, SERVICE_ECHO);
	EXPECT_EQ(l.cfg.listen[0].any, 1);
	EXPECT_EQ(l.cfg.listen[0].port, 7);
	EXPECT_EQ(l.cfg.backend, BACKEND_AUTO);
	EXPECT_GE(l.cfg.workers, 1u);
	EXPECT_EQ(l.cfg.workers, OnlineCpus());
	EXPECT_EQ(l.cfg.idle_timeout, 300u);
	EXPECT_EQ(l.cfg.drain_timeout, 10u);
	EXPECT_EQ(l.cfg.backlog, 4096u);
	EXPECT_EQ(l.cfg.max_conns, 0u);
	EXPECT_EQ(l.cfg.max_conns_per_ip, 0u);
	EXPECT_EQ(l.cfg.udp_rate, 10000u);
	EXPECT_EQ(l.cfg.zerocopy_threshold, 0u);
	EXPECT_EQ(l.cfg.ring_buffers, 512u);
	EXPECT_EQ(l.cfg.ring_buffer_size, 8192u);
	EXPECT_EQ(l.cfg.seccomp, strcmp(ECHOD_SECCOMP_DEFAULT, "true") == 0 ? 1 : 0);
	EXPECT_STREQ(l.cfg.banner, "");
	EXPECT_STREQ(l.cfg.user, "");
	EXPECT_STREQ(l.cfg.metrics, "");
	EXPECT_STREQ(l.cfg.config_file, "");
	EXPECT_EQ(l.cfg.verbosity, 0);
}

TEST(ConfigArgs, EveryServiceOverTcpAndUdp)
{
	Loaded l = Load({"-l", ":7007", "-l", "udp::7007", "-l", "tcp::9/discard", "-l",
			 "udp::9/discard", "-l", ":19/chargen", "-l", "udp::19/chargen", "-l",
			 ":13/daytime", "-l", "udp::13/daytime", "-l", ":7014/reverse"});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	ASSERT_EQ(l.cfg.nlisten, 9u);
	EXPECT_EQ(l.cfg.listen[1].proto, LISTEN_UDP);
	EXPECT_EQ(l.cfg.listen[1].service, SERVICE_ECHO);
	EXPECT_EQ(l.cfg.listen[5].proto, LISTEN_UDP);
	EXPECT_EQ(l.cfg.listen[5].service, SERVICE_CHARGEN);
	EXPECT_EQ(l.cfg.listen[8].service, SERVICE_REVERSE);
}

class WorkersSpelling : public ::testing::TestWithParam<std::vector<std::string>>
{
};

TEST_P(WorkersSpelling, SetsFour)
{
	Loaded l = Load(GetParam());

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(l.cfg.workers, 4u);
}

INSTANTIATE_TEST_SUITE_P(Config, WorkersSpelling,
			 ::testing::Values(std::vector<std::string>{"--workers=4"},
					   std::vector<std::string>{"--workers", "4"},
					   std::vector<std::string>{"-w4"},
					   std::vector<std::string>{"-w", "4"}));

TEST(ConfigArgs, WorkersBounds)
{
	EXPECT_EQ(Load({"-w", "1"}).cfg.workers, 1u);
	EXPECT_EQ(Load({"-w", "1024"}).cfg.workers, 1024u);
}

TEST(ConfigArgs, BundledFlagsAddUp)
{
	EXPECT_EQ(Load({"-vv"}).cfg.verbosity, 2);
	EXPECT_EQ(Load({"-v", "--verbose"}).cfg.verbosity, 2);
	EXPECT_EQ(Load({"-q"}).cfg.verbosity, -1);
	EXPECT_EQ(Load({"-qq"}).cfg.verbosity, -1) << "warnings and errors, however many";
	EXPECT_EQ(Load({"-vvv"}).cfg.verbosity, 2) << "debug is the most";
	EXPECT_EQ(Load({"-tv"}).cfg.action, CONFIG_CHECK);
}

// verbose and quiet are one setting: both at once is a usage error, never quiet.
TEST(ConfigArgs, VerboseWithQuietIs64)
{
	for (const std::vector<std::string> &args :
	     {std::vector<std::string>{"-vq"}, {"-qv"}, {"-v", "-q"}, {"-q", "--verbose"},
	      {"--quiet", "-vv"}, {"-tvq"}}) {
		Loaded l = Load(args);
		EXPECT_EQ(l.rc, EXIT_USAGE) << args[0];
		EXPECT_TRUE(l.Says("cannot be combined with")) << l.err.msg;
	}
	EXPECT_TRUE(Load({"-v", "-q"}).Says("--quiet: cannot be combined with -v/--verbose"));
	EXPECT_TRUE(Load({"-q", "-v"}).Says("--verbose: cannot be combined with -q/--quiet"));
}

// Across the file and the command line, the command line wins as for every setting:
// its first -v or -q replaces the file's verbose/quiet. A file setting turned off
// again frees the other.
TEST(ConfigFile, VerboseOrQuietOnTheCommandLineReplacesTheFiles)
{
	TempFile verbose("verbose = yes\n"), quiet("quiet = on\n"),
	    off("verbose = true\nverbose = false\n");

	EXPECT_EQ(Load({"--config=" + verbose.path(), "-q"}).cfg.verbosity, -1);
	EXPECT_EQ(Load({"-v", "--config=" + quiet.path()}).cfg.verbosity, 1);
	EXPECT_EQ(Load({"--config=" + verbose.path(), "-v"}).cfg.verbosity, 1);
	EXPECT_EQ(Load({"--config=" + verbose.path()}).cfg.verbosity, 1);
	EXPECT_EQ(Load({"--config=" + quiet.path(), "-q"}).cfg.verbosity, -1);
	EXPECT_EQ(Load({"--config=" + off.path(), "-q"}).cfg.verbosity, -1);
	Loaded both = Load({"--config=" + verbose.path(), "-q", "-v"});
	EXPECT_EQ(both.rc, EXIT_USAGE) << "both on the command line";
	EXPECT_TRUE(both.Says("--verbose: cannot be combined with -q/--quiet")) << both.err.msg;
}

class BoolSpelling : public ::testing::TestWithParam<std::pair<const char *, int>>
{
};

TEST_P(BoolSpelling, SameOnTheCommandLineAndInTheFile)
{
	const auto &[word, value] = GetParam();
	Loaded cli = Load({std::string("--seccomp=") + word});
	ASSERT_EQ(cli.rc, 0) << cli.err.msg;
	EXPECT_EQ(cli.cfg.seccomp, value);
	TempFile f(std::string("seccomp = ") + word + "\n");
	Loaded file = Load({"--config=" + f.path()});
	ASSERT_EQ(file.rc, 0) << file.err.msg;
	EXPECT_EQ(file.cfg.seccomp, value);
}

INSTANTIATE_TEST_SUITE_P(
    Config, BoolSpelling,
    ::testing::Values(std::make_pair("true", 1), std::make_pair("TRUE", 1),
		      std::make_pair("yes", 1), std::make_pair("Yes", 1), std::make_pair("on", 1),
		      std::make_pair("ON", 1), std::make_pair("1", 1), std::make_pair("false", 0),
		      std::make_pair("False", 0), std::make_pair("no", 0), std::make_pair("NO", 0),
		      std::make_pair("off", 0), std::make_pair("oFf", 0), std::make_pair("0", 0)),
    [](const ::testing::TestParamInfo<std::pair<const char *, int>> &info) {
	    return "P" + std::to_string(info.index);
    });

TEST(ConfigArgs, ActionsAndBackends)
{
	EXPECT_EQ(Load({"-t"}).cfg.action, CONFIG_CHECK);
	EXPECT_EQ(Load({"--check-config"}).cfg.action, CONFIG_CHECK);
	EXPECT_EQ(Load({"-h"}).cfg.action, CONFIG_HELP);
	EXPECT_EQ(Load({"--version"}).cfg.action, CONFIG_VERSION);
	EXPECT_EQ(Load({"-b", "epoll"}).cfg.backend, BACKEND_EPOLL);
	EXPECT_EQ(Load({"-bio_uring"}).cfg.backend, BACKEND_IO_URING);
	EXPECT_EQ(Load({"--backend=auto"}).cfg.backend, BACKEND_AUTO);
	EXPECT_STREQ(config_backend_name(BACKEND_IO_URING), "io_uring");
}

TEST(ConfigArgs, EveryValueOption)
{
	Loaded l =
	    Load({"--max-conns=5", "--max-conns-per-ip", "2", "--idle-timeout=0",
		  "--drain-timeout=3", "--backlog=16", "--udp-rate=9", "--banner=hi there",
		  "--zerocopy-threshold=4096", "--ring-buffers=64", "--ring-buffer-size=1024",
		  "--seccomp=false", "--metrics=127.0.0.1:9100", "--user=nobody"});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(l.cfg.max_conns, 5u);
	EXPECT_EQ(l.cfg.max_conns_per_ip, 2u);
	EXPECT_EQ(l.cfg.idle_timeout, 0u);
	EXPECT_EQ(l.cfg.drain_timeout, 3u);
	EXPECT_EQ(l.cfg.backlog, 16u);
	EXPECT_EQ(l.cfg.udp_rate, 9u);
	EXPECT_STREQ(l.cfg.banner, "hi there");
	EXPECT_EQ(l.cfg.zerocopy_threshold, 4096u);
	EXPECT_EQ(l.cfg.ring_buffers, 64u);
	EXPECT_EQ(l.cfg.ring_buffer_size, 1024u);
	EXPECT_EQ(l.cfg.seccomp, 0);
	EXPECT_STREQ(l.cfg.metrics, "127.0.0.1:9100");
	EXPECT_STREQ(l.cfg.user, "nobody");
}

TEST(ConfigArgs, ListenRepeats)
{
	Loaded l = Load({"-l", "127.0.0.1:7007", "--listen=[::1]:8", "-l9"});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(Specs(l.cfg), (std::vector<std::string>{"tcp:127.0.0.1:7007/echo",
							  "tcp:[::1]:8/echo", "tcp:*:9/echo"}));
}

TEST(ConfigArgs, DoubleDashEndsOptions)
{
	Loaded l = Load({"-w", "2", "--"});

	EXPECT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(l.cfg.workers, 2u);
}

struct BadArgs {
	const char *name;
	std::vector<std::string> args;
	std::vector<std::string> says; // every one of them in the message
};

void PrintTo(const BadArgs &c, std::ostream *os)
{
	*os << c.name;
}

class UsageError : public ::testing::TestWithParam<BadArgs>
{
};

TEST_P(UsageError, Is64AndSaysWhy)
{
	Loaded l = Load(GetParam().args);

	EXPECT_EQ(l.rc, EXIT_USAGE) << l.err.msg;
	EXPECT_EQ(l.err.status, EXIT_USAGE);
	for (const std::string &s : GetParam().says)
		EXPECT_TRUE(l.Says(s)) << "no \"" << s << "\" in: " << l.err.msg;
}

INSTANTIATE_TEST_SUITE_P(
    Config, UsageError,
    ::testing::Values(
	BadArgs{"UnknownLong", {"--bogus"}, {"unknown option", "'--bogus'"}},
	BadArgs{"UnknownLongWithValue", {"--bogus=3"}, {"unknown option", "'--bogus'"}},
	BadArgs{"UnknownShort", {"-x"}, {"unknown option", "'-x'"}},
	BadArgs{"UnknownInBundle", {"-vx"}, {"'-x'", "'-vx'"}},
	BadArgs{"MissingValueLong", {"--workers"}, {"--workers", "missing value"}},
	BadArgs{"MissingValueShort", {"-l"}, {"--listen", "missing value"}},
	BadArgs{"WorkersZero", {"-w", "0"}, {"--workers", "'0'"}},
	BadArgs{"WorkersTooMany", {"-w", "1025"}, {"--workers", "'1025'"}},
	BadArgs{"WorkersNotNumber", {"-w", "abc"}, {"--workers", "'abc'"}},
	BadArgs{"WorkersNegative", {"-w", "-1"}, {"--workers", "'-1'"}},
	BadArgs{"WorkersEmpty", {"-w", ""}, {"--workers", "''"}},
	BadArgs{"WorkersEmptyAfterEquals", {"--workers="}, {"--workers", "''"}},
	BadArgs{"WorkersHuge", {"-w", "99999999999999999999999"}, {"--workers"}},
	BadArgs{"BadBackend", {"-b", "kqueue"}, {"--backend", "'kqueue'"}},
	BadArgs{"MaxConnsNotNumber", {"--max-conns=x"}, {"--max-conns", "'x'"}},
	BadArgs{"BacklogZero", {"--backlog=0"}, {"--backlog", "'0'"}},
	BadArgs{"BadBool", {"--seccomp=maybe"}, {"--seccomp", "'maybe'", "yes or no, on or off"}},
	BadArgs{"BoolNotAPrefix", {"--seccomp=y"}, {"--seccomp", "'y'"}},
	BadArgs{"BoolNotTwo", {"--seccomp=2"}, {"--seccomp", "'2'"}},
	BadArgs{"BoolEmpty", {"--seccomp="}, {"--seccomp", "''"}},
	BadArgs{"StrayArgument", {"stray"}, {"unexpected argument 'stray'"}},
	BadArgs{"LoneDash", {"-"}, {"unexpected argument '-'"}},
	BadArgs{"ArgumentAfterDoubleDash", {"--", "stray"}, {"unexpected argument 'stray'"}},
	BadArgs{"UdpReverse", {"-l", "udp::7/reverse"}, {"--listen", "'udp::7/reverse'", "TCP only"}},
	BadArgs{"BadListenPort", {"-l", "127.0.0.1:99999"}, {"--listen", "'127.0.0.1:99999'"}},
	BadArgs{"EmptyListen", {"--listen="}, {"--listen", "''"}},
	BadArgs{"UnknownUser", {"--user=x"}, {"--user", "'x'"}},
	BadArgs{"UnknownGroup", {"--user=nobody:no-such-group"}, {"--user", "no-such-group"}},
	BadArgs{"MetricsWithService", {"--metrics=:9100/echo"}, {"--metrics", "':9100/echo'"}},
	BadArgs{"MetricsUdp", {"--metrics=udp::9100"}, {"--metrics", "'udp::9100'"}},
	BadArgs{"VersionTakesNoValue", {"--version=1"}, {"--version", "takes no value"}},
	BadArgs{"VerboseTakesNoValue", {"--verbose=true"}, {"--verbose", "takes no value"}},
	BadArgs{"BannerTooLong", {"--banner=" + std::string(CONFIG_TEXT_MAX, 'b')}, {"--banner"}}),
    [](const ::testing::TestParamInfo<BadArgs> &info) { return info.param.name; });

TEST(ConfigArgs, TooManyListeners)
{
	std::vector<std::string> args;

	for (unsigned i = 0; i <= CONFIG_LISTEN_MAX; i++)
		args.insert(args.end(), {"-l", std::to_string(1000 + i)});
	Loaded l = Load(args);
	EXPECT_EQ(l.rc, EXIT_USAGE);
	EXPECT_TRUE(l.Says("too many listeners")) << l.err.msg;
	args.resize(2 * CONFIG_LISTEN_MAX);
	EXPECT_EQ(Load(args).cfg.nlisten, CONFIG_LISTEN_MAX);
}

TEST(ConfigArgs, HelpAndVersionWinOverBrokenConfigFile)
{
	TempFile broken("workers = many\n");

	const std::pair<const char *, enum config_action> actions[] = {
	    {"-h", CONFIG_HELP},
	    {"--help", CONFIG_HELP},
	    {"-V", CONFIG_VERSION},
	    {"--version", CONFIG_VERSION}};

	for (const auto &[arg, action] : actions) {
		for (const std::string &file :
		     {broken.path(), std::string("/nonexistent/echod.conf")}) {
			Loaded l = Load({"--config=" + file, arg});

			EXPECT_EQ(l.rc, 0) << arg << " " << file << ": " << l.err.msg;
			EXPECT_EQ(l.cfg.action, action) << arg;
		}
	}
}

TEST(ConfigArgs, CheckConfigStillReadsTheFile)
{
	Loaded l = Load({"-t", "--config", "/nonexistent/echod.conf"});

	EXPECT_EQ(l.rc, EXIT_CONFIG);
}

// --- the config file ---

TEST(ConfigFile, CommentsBlankLinesQuotesAndSpaces)
{
	TempFile f("# echod\n\n   \n\t# indented comment\nworkers=3\n  idle-timeout   =   7  \r\n"
		   "banner = \"  two  words \"\nbackend = \"epoll\"\nverbose = true\n"
		   "seccomp = no\n");
	Loaded l = Load({"--config=" + f.path()});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_STREQ(l.cfg.config_file, f.path().c_str());
	EXPECT_EQ(l.cfg.workers, 3u);
	EXPECT_EQ(l.cfg.idle_timeout, 7u);
	EXPECT_STREQ(l.cfg.banner, "  two  words ");
	EXPECT_EQ(l.cfg.backend, BACKEND_EPOLL);
	EXPECT_EQ(l.cfg.verbosity, 1);
	EXPECT_EQ(l.cfg.seccomp, 0);
	EXPECT_EQ(l.cfg.drain_timeout, 10u) << "untouched options keep their defaults";
}

// Quotes wrap the whole value; inside them \" is a quote and \\ a backslash. An
// unquoted value is taken as it stands (a backslash is a backslash).
TEST(ConfigFile, QuotingGrammar)
{
	const std::pair<std::string, std::string> cases[] = {
	    {"banner = \"\"", ""},
	    {"banner = \"a\"", "a"},
	    {"banner = \"  spaced  \"   ", "  spaced  "},
	    {"banner = \"say \\\"hi\\\"\"", "say \"hi\""},
	    {"banner = \"C:\\\\temp\\\\\"", "C:\\temp\\"},
	    {"banner = \"\\\\\\\"\"", "\\\""},
	    {"banner = \"# not a comment = x\"", "# not a comment = x"},
	    {"banner = C:\\temp\\", "C:\\temp\\"},
	    {"banner = a = b", "a = b"},
	    {"banner = \"\t tab\"", "\t tab"},
	};
	for (const auto &[line, want] : cases) {
		struct config cfg = EmptyDefaults();
		struct config_error err;

		EXPECT_EQ(ParseText(line + "\n", &cfg, &err), 0) << line << ": " << err.msg;
		EXPECT_EQ(std::string(cfg.banner), want) << line;
	}
}

TEST(ConfigFile, ListenRepeatsAndReplacesTheDefault)
{
	TempFile f("listen = 127.0.0.1:1\nlisten = \"[::1]:2\"\n");
	Loaded l = Load({"--config", f.path()});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(Specs(l.cfg),
		  (std::vector<std::string>{"tcp:127.0.0.1:1/echo", "tcp:[::1]:2/echo"}));
}

TEST(ConfigFile, CommandLineWins)
{
	TempFile f("workers = 3\nidle-timeout = 7\n");
	Loaded l = Load({"-w", "5", "--config=" + f.path()});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(l.cfg.workers, 5u);
	EXPECT_EQ(l.cfg.idle_timeout, 7u);
}

TEST(ConfigFile, CommandLineListenReplacesTheFiles)
{
	TempFile f("listen = :1\nlisten = :2\n");
	Loaded l = Load({"-l", ":3", "--config=" + f.path(), "-l", ":4"});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(Specs(l.cfg), (std::vector<std::string>{"tcp:*:3/echo", "tcp:*:4/echo"}));
}

struct BadFile {
	const char *name;
	std::string text;
	unsigned line;
	std::vector<std::string> says;
};

void PrintTo(const BadFile &c, std::ostream *os)
{
	*os << c.name;
}

class ConfigFileError : public ::testing::TestWithParam<BadFile>
{
};

TEST_P(ConfigFileError, Is78WithPathAndLine)
{
	TempFile f(GetParam().text);
	Loaded l = Load({"--config=" + f.path(), "-w", "2"});

	EXPECT_EQ(l.rc, EXIT_CONFIG) << l.err.msg;
	EXPECT_EQ(l.err.status, EXIT_CONFIG);
	EXPECT_TRUE(l.Says(f.At(GetParam().line))) << l.err.msg;
	for (const std::string &s : GetParam().says)
		EXPECT_TRUE(l.Says(s)) << "no \"" << s << "\" in: " << l.err.msg;
}

INSTANTIATE_TEST_SUITE_P(
    Config, ConfigFileError,
    ::testing::Values(
	BadFile{"UnknownKey", "# ok\nworkers = 2\nbogus = 1\n", 3, {"'bogus'"}},
	BadFile{"BadValue", "workers = 2\nidle-timeout = soon\n", 2, {"idle-timeout", "'soon'"}},
	BadFile{"MissingEquals", "\nworkers 3\n", 2, {"name = value"}},
	BadFile{"HelpIsCommandLineOnly", "help = true\n", 1, {"help", "command line only"}},
	BadFile{"ConfigIsCommandLineOnly", "config = /etc/x\n", 1, {"config", "command line"}},
	BadFile{"UdpReverse", "listen = udp::7/reverse\n", 1, {"listen", "TCP only"}},
	BadFile{"VerboseNotBool", "verbose = loud\n", 1, {"verbose", "'loud'", "2 for debug"}},
	BadFile{"VerboseNotThree", "verbose = 3\n", 1, {"verbose", "'3'"}},
	BadFile{"QuietNotTwo", "quiet = 2\n", 1, {"quiet", "'2'"}},
	BadFile{"VerboseThenQuiet", "verbose = true\nworkers = 2\nquiet = yes\n", 3,
		{"quiet: cannot be combined with 'verbose = true' above"}},
	BadFile{"QuietThenDebug", "quiet = on\nverbose = 2\n", 2,
		{"verbose: cannot be combined with 'quiet = true' above"}},
	BadFile{"BoolWord", "seccomp = enabled\n", 1, {"seccomp", "'enabled'", "on or off"}},
	BadFile{"UnterminatedQuote", "workers = 2\nbanner = \"unterminated\n", 2,
		{"banner", "no closing double quote"}},
	BadFile{"LoneQuote", "banner = \"\n", 1, {"banner", "no closing double quote"}},
	BadFile{"EscapedClosingQuote", "banner = \"a\\\"\n", 1, {"no closing double quote"}},
	BadFile{"BackslashAtTheEnd", "banner = \"a\\\n", 1, {"no closing double quote"}},
	BadFile{"TextAfterTheQuote", "banner = \"a\" b\n", 1,
		{"banner", "' b' after the closing double quote"}},
	BadFile{"CommentAfterTheQuote", "banner = \"a\" # no\n", 1, {"after the closing"}},
	BadFile{"TwoQuotedValues", "listen = \":7\" \":8\"\n", 1, {"listen", "after the closing"}},
	BadFile{"QuoteInsideUnquoted", "banner = say \"hi\"\n", 1,
		{"banner", "double quote inside an unquoted value"}},
	BadFile{"QuoteAtTheEndOnly", "workers = 2\"\n", 1, {"workers", "unquoted"}},
	BadFile{"UnknownEscape", "banner = \"a\\tb\"\n", 1, {"banner", "unknown escape '\\t'"}},
	BadFile{"LineTooLong", "workers = 2\n#" + std::string(2000, 'x') + "\n", 2, {"too long"}}),
    [](const ::testing::TestParamInfo<BadFile> &info) { return info.param.name; });

TEST(ConfigFile, MissingFileIs78NamingIt)
{
	Loaded l = Load({"--config=/nonexistent/echod.conf"});

	EXPECT_EQ(l.rc, EXIT_CONFIG);
	EXPECT_TRUE(l.Says("/nonexistent/echod.conf")) << l.err.msg;
}

TEST(ConfigParseFile, ReadsFromAnyStream)
{
	struct config cfg = EmptyDefaults();
	struct config_error err;

	ASSERT_EQ(ParseText("listen = :8\nmax-conns = 10\nquiet = true\n", &cfg, &err), 0)
	    << err.msg;
	EXPECT_EQ(Specs(cfg), std::vector<std::string>{"tcp:*:8/echo"});
	EXPECT_EQ(cfg.max_conns, 10u);
	EXPECT_EQ(cfg.verbosity, -1);
}

TEST(ConfigParseFile, LastLineNeedsNoNewline)
{
	struct config cfg = EmptyDefaults();
	struct config_error err;

	ASSERT_EQ(ParseText("backlog = 12", &cfg, &err), 0) << err.msg;
	EXPECT_EQ(cfg.backlog, 12u);
}

TEST(ConfigParseFile, ErrorsUseTheGivenPath)
{
	struct config cfg = EmptyDefaults();
	struct config_error err;

	EXPECT_EQ(ParseText("\n\nworkers = 0\n", &cfg, &err), EXIT_CONFIG);
	EXPECT_EQ(err.status, EXIT_CONFIG);
	EXPECT_NE(strstr(err.msg, "mem.conf:3: workers: invalid value '0'"), nullptr) << err.msg;
}

// --- config_print and config_usage ---

TEST(ConfigPrint, RoundTripsEveryOption)
{
	Loaded l = Load({"--listen=127.0.0.1:7007",
			 "--listen=[::1]:8",
			 "--listen=localhost:9",
			 "-w3",
			 "-bepoll",
			 "--max-conns=5",
			 "--max-conns-per-ip=2",
			 "--idle-timeout=0",
			 "--drain-timeout=4",
			 "--backlog=16",
			 "--udp-rate=7",
			 "--banner=say \"hi\" # twice ",
			 "--zerocopy-threshold=4096",
			 "--ring-buffers=64",
			 "--ring-buffer-size=1024",
			 "--seccomp=false",
			 "--metrics=127.0.0.1:9100",
			 "--user=nobody",
			 "-q",
			 "--allow=10.0.0.0/8",
			 "--allow=::1",
			 "--deny=10.9.0.0/16",
			 "--conn-rate=3"});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	ExpectRoundTrip(l.cfg);
}

// config_print's text, parsed again, prints the same text again and gives the same
// configuration: quotes, backslashes and spaces in the text options, debug level.
TEST(ConfigPrint, RoundTripsQuotesBackslashesAndSpaces)
{
	const std::string banner = " \"quoted\" \\back\\slash\\ \\\" # x = y \"\" ";
	Loaded l = Load({"--banner=" + banner, "-vv", "--seccomp=ON"});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	ASSERT_EQ(std::string(l.cfg.banner), banner);
	ExpectRoundTrip(l.cfg);

	char *text = nullptr;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	config_print(&l.cfg, f);
	fclose(f);
	std::string printed(text, len);
	free(text);
	EXPECT_NE(printed.find("banner = \" \\\"quoted\\\" \\\\back\\\\slash\\\\ "
			       "\\\\\\\" # x = y \\\"\\\" \"\n"),
		  std::string::npos)
	    << printed;
	EXPECT_NE(printed.find("verbose = 2\n"), std::string::npos) << printed;

	struct config back = EmptyDefaults();
	struct config_error err;
	ASSERT_EQ(ParseText(printed, &back, &err), 0) << err.msg;
	EXPECT_EQ(back.verbosity, 2);
	FILE *g = open_memstream(&text, &len);
	config_print(&back, g);
	fclose(g);
	EXPECT_EQ(std::string(text, len), printed);
	free(text);
}

// The output of --check-config for the defaults must read back as the same
// configuration; the default listener is all interfaces, dual-stack.
TEST(ConfigPrint, RoundTripsTheDefaults)
{
	Loaded l = Load({});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	ExpectRoundTrip(l.cfg);
}

TEST(ConfigUsage, MentionsEveryOption)
{
	std::string usage = Usage();

	for (const char *name : {"-l, --listen=SPEC",
				 "-w, --workers=N",
				 "-b, --backend=NAME",
				 "--max-conns=N",
				 "--max-conns-per-ip=N",
				 "--idle-timeout=SECS",
				 "--drain-timeout=SECS",
				 "--backlog=N",
				 "--user=USER[:GROUP]",
				 "--metrics=[HOST]:PORT",
				 "--udp-rate=N",
				 "--banner=TEXT",
				 "--zerocopy-threshold=BYTES",
				 "--ring-buffers=N",
				 "--ring-buffer-size=BYTES",
				 "--seccomp=BOOL",
				 "--allow=CIDR",
				 "--deny=CIDR",
				 "--conn-rate=N",
				 "--config=FILE",
				 "-t, --check-config",
				 "-v, --verbose",
				 "-q, --quiet",
				 "-V, --version",
				 "-h, --help"})
		EXPECT_NE(usage.find(name), std::string::npos) << "no " << name << " in:\n"
							       << usage;
	EXPECT_NE(usage.find("64"), std::string::npos);
	EXPECT_NE(usage.find("78"), std::string::npos);
}

// --- access lists, --conn-rate, the ring's size, the defaults in --help ---

TEST(ConfigAcl, RulesRepeatOnTheCommandLine)
{
	Loaded l =
	    Load({"--allow=10.0.0.0/8", "--allow", "::1", "--deny=10.6.0.0/16", "--conn-rate=20"});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(Rules(l.cfg.allow), (std::vector<std::string>{"10.0.0.0/8", "::1/128"}));
	EXPECT_EQ(Rules(l.cfg.deny), (std::vector<std::string>{"10.6.0.0/16"}));
	EXPECT_EQ(l.cfg.conn_rate, 20u);
}

TEST(ConfigAcl, DefaultsAreEmptyListsAndNoRate)
{
	Loaded l = Load({});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(l.cfg.allow.n, 0u);
	EXPECT_EQ(l.cfg.deny.n, 0u);
	EXPECT_EQ(l.cfg.conn_rate, 0u);
	EXPECT_EQ(l.cfg.udp_rate, 10000u);
}

// As with --listen: the first --allow (--deny) on the command line replaces the file's
// allow (deny) list; the other list stays the file's.
TEST(ConfigAcl, TheCommandLineReplacesTheFilesList)
{
	TempFile f("allow = 10.0.0.0/8\nallow = \"192.0.2.0/24\"\ndeny = 10.6.0.0/16\n");
	Loaded file = Load({"--config=" + f.path()});
	Loaded both = Load({"--config=" + f.path(), "--allow=127.0.0.1", "--allow=::1"});

	ASSERT_EQ(file.rc, 0) << file.err.msg;
	EXPECT_EQ(Rules(file.cfg.allow), (std::vector<std::string>{"10.0.0.0/8", "192.0.2.0/24"}));
	ASSERT_EQ(both.rc, 0) << both.err.msg;
	EXPECT_EQ(Rules(both.cfg.allow), (std::vector<std::string>{"127.0.0.1/32", "::1/128"}));
	EXPECT_EQ(Rules(both.cfg.deny), (std::vector<std::string>{"10.6.0.0/16"}));
}

// An empty value empties a list (unlike xinetd's "only_from =", which shuts the
// service): how --check-config prints an empty list, and how the command line drops
// the file's.
TEST(ConfigAcl, AnEmptyValueEmptiesTheList)
{
	TempFile f("deny = 10.6.0.0/16\nallow = 10.0.0.0/8\nallow = \"\"\nallow = ::1\n");
	Loaded l = Load({"--config=" + f.path()});
	Loaded cleared = Load({"--config=" + f.path(), "--deny="});

	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(Rules(l.cfg.allow), (std::vector<std::string>{"::1/128"}));
	ASSERT_EQ(cleared.rc, 0) << cleared.err.msg;
	EXPECT_EQ(cleared.cfg.deny.n, 0u);
}

TEST(ConfigAcl, BadRulesAre64NamingOptionAndValue)
{
	Loaded a = Load({"--allow=10.0.0.0/33"});
	EXPECT_EQ(a.rc, EXIT_USAGE);
	EXPECT_TRUE(a.Says("--allow: invalid value '10.0.0.0/33'")) << a.err.msg;

	Loaded d = Load({"--deny=10.1.2.3/8"});
	EXPECT_EQ(d.rc, EXIT_USAGE);
	EXPECT_TRUE(d.Says("--deny: invalid value '10.1.2.3/8'")) << d.err.msg;
	EXPECT_TRUE(d.Says("10.0.0.0/8?")) << d.err.msg;

	Loaded h = Load({"--allow=localhost"});
	EXPECT_EQ(h.rc, EXIT_USAGE);
	EXPECT_TRUE(h.Says("--allow: invalid value 'localhost'")) << h.err.msg;
}

TEST(ConfigAcl, BadRulesInTheFileAre78WithTheLine)
{
	TempFile f("allow = 10.0.0.0/8\n\ndeny = 2001:db8::/129\n");
	Loaded l = Load({"--config=" + f.path()});

	EXPECT_EQ(l.rc, EXIT_CONFIG) << l.err.msg;
	EXPECT_TRUE(l.Says(f.At(3) + " deny: invalid value '2001:db8::/129'")) << l.err.msg;
}

TEST(ConfigAcl, ListsAreBounded)
{
	std::vector<std::string> args;

	for (unsigned i = 0; i <= ACL_MAX; i++)
		args.push_back("--deny=10.0." + std::to_string(i / 256) + "." +
			       std::to_string(i % 256));
	Loaded l = Load(args);
	EXPECT_EQ(l.rc, EXIT_USAGE);
	EXPECT_TRUE(l.Says("--deny: too many rules (at most 256)")) << l.err.msg;
	args.pop_back();
	EXPECT_EQ(Load(args).cfg.deny.n, unsigned(ACL_MAX));
}

// --check-config prints the effective lists, one rule a line, and they read back.
TEST(ConfigAcl, CheckConfigPrintsTheListsAndTheyReadBack)
{
	Loaded l = Load({"--allow=192.0.2.0/24", "--allow=[2001:db8::]/32", "--deny=192.0.2.66",
			 "--conn-rate=5"});
	ASSERT_EQ(l.rc, 0) << l.err.msg;
	std::string out = Printed(l.cfg);

	EXPECT_NE(out.find("allow = 192.0.2.0/24\nallow = 2001:db8::/32\n"), std::string::npos)
	    << out;
	EXPECT_NE(out.find("deny = 192.0.2.66/32\n"), std::string::npos) << out;
	EXPECT_NE(out.find("conn-rate = 5\n"), std::string::npos) << out;
	ExpectRoundTrip(l.cfg);

	std::string empty = Printed(Load({}).cfg);
	EXPECT_NE(empty.find("allow = \"\"\n"), std::string::npos) << empty;
	EXPECT_NE(empty.find("deny = \"\"\n"), std::string::npos) << empty;
}

// --ring-buffers (rounded up to a power of two) x --ring-buffer-size is at most 1 GiB
// a worker: beyond, the worker's mmap would fail and it would be respawned forever.
TEST(ConfigRing, TheProductIsBoundedOnTheCommandLine)
{
	EXPECT_EQ(Load({"--ring-buffers=32768", "--ring-buffer-size=32768"}).rc, 0) << "1 GiB";
	EXPECT_EQ(Load({"--ring-buffers=16385", "--ring-buffer-size=32768"}).rc, 0);

	Loaded l = Load({"--ring-buffers=32768", "--ring-buffer-size=1048576"});
	EXPECT_EQ(l.rc, EXIT_USAGE);
	EXPECT_TRUE(l.Says("--ring-buffers x --ring-buffer-size")) << l.err.msg;
	EXPECT_TRUE(l.Says("32768 MiB a worker, more than 1024 MiB")) << l.err.msg;

	Loaded r = Load({"--ring-buffer-size=65536", "--ring-buffers=16385"});
	EXPECT_EQ(r.rc, EXIT_USAGE);
	EXPECT_TRUE(r.Says("16385 (rounded up to 32768) x 65536 bytes")) << r.err.msg;
}

TEST(ConfigRing, TheProductIsBoundedInTheFileWithTheLine)
{
	TempFile f("ring-buffers = 32768\n# the size\nring-buffer-size = 65536\nworkers = 2\n");
	Loaded l = Load({"--config=" + f.path()});

	EXPECT_EQ(l.rc, EXIT_CONFIG) << l.err.msg;
	EXPECT_TRUE(l.Says(f.At(3) + " ring-buffers x ring-buffer-size:")) << l.err.msg;
}

// Judged once the source is read: no order of lines or arguments fails on the way.
TEST(ConfigRing, OnlyTheEndResultCounts)
{
	TempFile f("ring-buffer-size = 1048576\nring-buffers = 64\n");
	Loaded file = Load({"--config=" + f.path()});
	EXPECT_EQ(file.rc, 0) << file.err.msg;

	TempFile big("ring-buffers = 32768\nring-buffer-size = 16384\n");
	Loaded l =
	    Load({"--config=" + big.path(), "--ring-buffer-size=1048576", "--ring-buffers=64"});
	EXPECT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(l.cfg.ring_buffers * uint64_t(l.cfg.ring_buffer_size), 64u << 20);
}

// -h shows each option's default, from the table; wrapped lines never start with "-"
// (scripts/check-man takes such a line for an option).
TEST(ConfigUsage, ShowsEachDefault)
{
	std::string usage = Usage();

	for (const char *note :
	     {"auto | epoll | io_uring (default: auto)", "(default: 300)", "(default: 10000)",
	      "(default: 4096)", "(default: 512)", "(default: 8192)", "(default: every client)",
	      "(default tcp::7)", "(default: online CPUs)", "off by default"})
		EXPECT_NE(usage.find(note), std::string::npos) << "no " << note << " in:\n"
							       << usage;
	size_t start = 0;
	while (start < usage.size()) {
		size_t end = usage.find('\n', start);
		std::string line = usage.substr(start, end - start);
		size_t text = line.find_first_not_of(' ');

		if (text != std::string::npos && line[text] == '-') {
			EXPECT_LE(text, 6u) << "a wrapped line starts with '-': " << line;
		}
		EXPECT_LE(line.size(), 100u) << line;
		start = end == std::string::npos ? usage.size() : end + 1;
	}
}

} // namespace
