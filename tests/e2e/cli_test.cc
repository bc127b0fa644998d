// The command line and config file contract: usage errors exit 64 naming the
// option and the value, config-file errors exit 78 naming FILE:LINE:, -t
// prints the effective configuration, -V lists the compiled-in backends.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>

#include <gtest/gtest.h>

#include "daemon.h"

namespace e2e
{
namespace
{

// Keeps bad options that echod might accept by mistake off port 7.
const std::vector<std::string> kSafeListen = {"-l", "127.0.0.1:0"};
constexpr int kRunTimeoutMs = 5000;

std::vector<std::string> Join(std::vector<std::string> a, const std::vector<std::string> &b)
{
	a.insert(a.end(), b.begin(), b.end());
	return a;
}

struct BadUsage {
	const char *name;
	std::vector<std::string> args;
	std::string option;		 // must appear in the message ("" for a stray argument)
	std::vector<std::string> values; // one of them quoted in the message: the
					 // whole value or the offending part of it
};

bool QuotesOneOf(const std::string &text, const std::vector<std::string> &values)
{
	return std::any_of(values.begin(), values.end(), [&](const std::string &v) {
		return text.find("'" + v + "'") != std::string::npos;
	});
}

void PrintTo(const BadUsage &c, std::ostream *os)
{
	*os << c.name;
}

class UsageErrorTest : public ::testing::TestWithParam<BadUsage>
{
};

TEST_P(UsageErrorTest, Exits64NamingOptionAndValue)
{
	const BadUsage &c = GetParam();
	RunResult r = RunEchod(Join(kSafeListen, c.args), kRunTimeoutMs);
	EXPECT_EQ(r.status, 64) << r.err;
	EXPECT_EQ(r.err.rfind("echod: ", 0), 0u) << r.err;
	EXPECT_NE(r.err.find(c.option), std::string::npos) << "option not named: " << r.err;
	EXPECT_TRUE(QuotesOneOf(r.err, c.values)) << "value not quoted: " << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Cli, UsageErrorTest,
    ::testing::Values(
	BadUsage{"UnknownOption", {"--bogus"}, "--bogus", {"--bogus"}},
	BadUsage{"WorkersZero", {"-w", "0"}, "--workers", {"0"}},
	BadUsage{"WorkersNotNumber", {"-w", "abc"}, "--workers", {"abc"}},
	BadUsage{"BadBackend", {"-b", "foo"}, "--backend", {"foo"}},
	BadUsage{"NegativeMaxConns", {"--max-conns=-1"}, "--max-conns", {"-1"}},
	BadUsage{"BadIdleTimeout", {"--idle-timeout=x"}, "--idle-timeout", {"x"}},
	BadUsage{"PortTooBig", {"-l", "127.0.0.1:99999"}, "--listen", {"127.0.0.1:99999", "99999"}},
	BadUsage{"BadAddress", {"-l", "1.2.3.4.5:7"}, "--listen", {"1.2.3.4.5:7", "1.2.3.4.5"}},
	BadUsage{"UdpReverse", {"-l", "udp::7/reverse"}, "--listen", {"udp::7/reverse", "reverse"}},
	BadUsage{"UnknownService", {"-l", ":7/bogus"}, "--listen", {":7/bogus", "bogus", "/bogus"}},
	BadUsage{"BadAllow", {"--allow=10.0.0.0/33"}, "--allow", {"10.0.0.0/33"}},
	BadUsage{"AllowHostBits", {"--allow=10.1.2.3/8"}, "--allow", {"10.1.2.3/8"}},
	BadUsage{"BadDeny", {"--deny=2001:db8::/129"}, "--deny", {"2001:db8::/129"}},
	BadUsage{"DenyName", {"--deny=localhost"}, "--deny", {"localhost"}},
	BadUsage{"BadConnRate", {"--conn-rate=fast"}, "--conn-rate", {"fast"}},
	BadUsage{"StrayArgument", {"stray"}, "", {"stray"}}),
    [](const ::testing::TestParamInfo<BadUsage> &info) { return info.param.name; });

// A scratch folder for config files, removed at the end of the test.
class ConfigFileTest : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		char tmpl[] = "/tmp/echod-e2e-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir_ = tmpl;
	}
	void TearDown() override
	{
		for (const std::string &f : files_)
			unlink(f.c_str());
		rmdir(dir_.c_str());
	}
	std::string Write(const std::string &text)
	{
		std::string path = dir_ + "/echod" + std::to_string(files_.size()) + ".conf";
		std::ofstream(path) << text;
		files_.push_back(path);
		return path;
	}
	// Runs echod --config=FILE(text) extra... and expects 78 naming FILE:line:.
	void ExpectConfigError(const std::string &text, int line,
			       const std::vector<std::string> &extra = kSafeListen)
	{
		std::string path = Write(text);
		RunResult r = RunEchod(Join({"--config=" + path}, extra), kRunTimeoutMs);
		EXPECT_EQ(r.status, 78) << r.err;
		std::string where = path + ":" + std::to_string(line) + ":";
		EXPECT_NE(r.err.find(where), std::string::npos)
		    << "no " << where << " in: " << r.err;
	}

	std::string dir_;
	std::vector<std::string> files_;
};

TEST_F(ConfigFileTest, UnknownKeyIs78WithFileAndLine)
{
	ExpectConfigError("# a comment\nworkers = 2\nbogus = 1\n", 3);
}

TEST_F(ConfigFileTest, BadValueIs78WithFileAndLine)
{
	ExpectConfigError("workers = 2\nidle-timeout = soon\n", 2);
}

TEST_F(ConfigFileTest, MissingEqualsIs78WithFileAndLine)
{
	ExpectConfigError("workers 3\n", 1);
}

TEST_F(ConfigFileTest, CheckConfigWithBadFileIs78)
{
	ExpectConfigError("\n# fine so far\nworkers = many\n", 3, {"-t"});
}

TEST_F(ConfigFileTest, MissingFileIs78NamingIt)
{
	std::string path = dir_ + "/does-not-exist.conf";
	RunResult r = RunEchod({"--config=" + path, "-l", "127.0.0.1:0"}, kRunTimeoutMs);
	EXPECT_EQ(r.status, 78) << r.err;
	EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
}

TEST_F(ConfigFileTest, CheckConfigPrintsEffectiveConfig)
{
	std::string path =
	    Write("# echod\nworkers = 3\n\nmax-conns = 100\nlisten = 127.0.0.1:7007\n");
	RunResult r = RunEchod({"-t", "--config=" + path}, kRunTimeoutMs);
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("workers = 3\n"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("max-conns = 100\n"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("127.0.0.1:7007"), std::string::npos) << r.out;
}

TEST_F(ConfigFileTest, CommandLineBeatsFile)
{
	std::string path = Write("workers = 3\nidle-timeout = 10\n");
	RunResult r = RunEchod({"--config=" + path, "-w", "5", "--check-config"}, kRunTimeoutMs);
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("workers = 5\n"), std::string::npos) << r.out;
	EXPECT_EQ(r.out.find("workers = 3\n"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("idle-timeout = 10\n"), std::string::npos) << r.out;
}

// The io_uring buffer ring of a worker is at most 1 GiB: past it its mmap fails and the
// worker would be respawned forever. Refused before anything starts, naming both.
TEST(RingBoundTest, Over1GiBIsAUsageError)
{
	RunResult r =
	    RunEchod(Join(kSafeListen, {"--ring-buffers=32768", "--ring-buffer-size=1048576"}),
		     kRunTimeoutMs);
	EXPECT_EQ(r.status, 64) << r.err;
	EXPECT_NE(r.err.find("--ring-buffers x --ring-buffer-size"), std::string::npos) << r.err;
	RunResult ok =
	    RunEchod({"-t", "--ring-buffers=32768", "--ring-buffer-size=32768"}, kRunTimeoutMs);
	EXPECT_EQ(ok.status, 0) << ok.err;
}

TEST_F(ConfigFileTest, RingOver1GiBIs78WithFileAndLine)
{
	ExpectConfigError("ring-buffer-size = 1048576\n\nring-buffers = 2048\n", 3);
}

TEST_F(ConfigFileTest, BadAllowIs78WithFileAndLine)
{
	ExpectConfigError("allow = 127.0.0.1\nallow = 127.0.0.0/7\n", 2);
}

// -t prints the effective access lists, one rule a line; the command line's list
// replaces the file's.
TEST_F(ConfigFileTest, CheckConfigPrintsTheAccessLists)
{
	std::string path = Write("allow = 10.0.0.0/8\ndeny = 10.6.0.0/16\n");
	RunResult file = RunEchod({"-t", "--config=" + path}, kRunTimeoutMs);
	EXPECT_EQ(file.status, 0) << file.err;
	EXPECT_NE(file.out.find("allow = 10.0.0.0/8\ndeny = 10.6.0.0/16\n"), std::string::npos)
	    << file.out;
	RunResult both =
	    RunEchod({"-t", "--config=" + path, "--allow=127.0.0.1", "--allow=::1"}, kRunTimeoutMs);
	EXPECT_EQ(both.status, 0) << both.err;
	EXPECT_NE(both.out.find("allow = 127.0.0.1/32\nallow = ::1/128\ndeny = 10.6.0.0/16\n"),
		  std::string::npos)
	    << both.out;
	RunResult none = RunEchod({"-t"}, kRunTimeoutMs);
	EXPECT_NE(none.out.find("allow = \"\"\ndeny = \"\"\n"), std::string::npos) << none.out;
}

// Quotes wrap a whole value; an unterminated one is refused, under -t too, rather
// than taken for a value that starts with a quote.
TEST_F(ConfigFileTest, UnterminatedQuoteIs78WithFileAndLine)
{
	ExpectConfigError("workers = 2\nbanner = \"unterminated\n", 2);
	ExpectConfigError("workers = 2\nbanner = \"unterminated\n", 2, {"-t"});
	ExpectConfigError("banner = \"closed\" and more\n", 1, {"-t"});
	ExpectConfigError("banner = say \"hi\"\n", 1, {"-t"});
	ExpectConfigError("banner = \"tab \\t\"\n", 1, {"-t"});
}

// What -t prints, given back as the config file, reads as the same configuration:
// -t prints it again byte for byte, a banner with quotes, backslashes and spaces
// included.
TEST_F(ConfigFileTest, CheckConfigOutputRoundTrips)
{
	const std::string banner = "  say \"hi\" to C:\\temp\\ # \"\" \\\\\" ";
	std::string path = Write("banner = \"  say \\\"hi\\\" to C:\\\\temp\\\\ # \\\"\\\" "
				 "\\\\\\\\\\\" \"\nseccomp = Off\nverbose = YES\n");
	RunResult first = RunEchod({"-t", "--config=" + path, "-l", "127.0.0.1:0"}, kRunTimeoutMs);
	ASSERT_EQ(first.status, 0) << first.err;
	EXPECT_NE(first.out.find("banner = \"  say \\\"hi\\\" to C:\\\\temp\\\\ # \\\"\\\" "
				 "\\\\\\\\\\\" \"\n"),
		  std::string::npos)
	    << first.out;
	EXPECT_NE(first.out.find("seccomp = false\n"), std::string::npos) << first.out;
	EXPECT_NE(first.out.find("verbose = true\n"), std::string::npos) << first.out;
	RunResult again = RunEchod({"-t", "--config=" + Write(first.out)}, kRunTimeoutMs);
	ASSERT_EQ(again.status, 0) << again.err;
	EXPECT_EQ(again.out, first.out);
	// The same banner from the command line prints the same line.
	RunResult cli = RunEchod({"-t", "-l", "127.0.0.1:0", "--banner=" + banner, "--seccomp=no",
				  "-v"},
				 kRunTimeoutMs);
	ASSERT_EQ(cli.status, 0) << cli.err;
	EXPECT_EQ(cli.out, first.out);
	RunResult debug = RunEchod({"-t", "-vv"}, kRunTimeoutMs);
	ASSERT_EQ(debug.status, 0) << debug.err;
	EXPECT_NE(debug.out.find("verbose = 2\n"), std::string::npos) << debug.out;
	RunResult debug2 = RunEchod({"-t", "--config=" + Write(debug.out)}, kRunTimeoutMs);
	EXPECT_EQ(debug2.out, debug.out);
}

// One setting under two names: both at once within the command line or within the
// file is refused; across the two the command line wins.
TEST_F(ConfigFileTest, VerboseWithQuietIsRefused)
{
	for (const std::vector<std::string> &args :
	     {std::vector<std::string>{"-v", "-q"}, {"-q", "--verbose"}, {"-vq"}, {"-qvt"}}) {
		RunResult r = RunEchod(Join(kSafeListen, args), kRunTimeoutMs);
		EXPECT_EQ(r.status, 64) << args[0] << ": " << r.err;
		EXPECT_NE(r.err.find("--"), std::string::npos) << r.err;
	}
	ExpectConfigError("verbose = true\nworkers = 2\nquiet = on\n", 3, {"-t"});
	ExpectConfigError("quiet = 1\nverbose = 2\n", 2, {"-t"});
	for (const auto &[text, arg, printed] : std::vector<std::array<std::string, 3>>{
		 {"verbose = yes\n", "-q", "quiet = true\n"},
		 {"quiet = TRUE\n", "-v", "verbose = true\n"}}) {
		RunResult r = RunEchod({"-t", "--config=" + Write(text), arg}, kRunTimeoutMs);
		EXPECT_EQ(r.status, 0) << text << arg << ": " << r.err;
		EXPECT_NE(r.out.find(printed), std::string::npos) << text << arg << ": " << r.out;
	}
	// Turned off, the other is free: the later line wins, as for any setting.
	RunResult r = RunEchod({"-t", "--config=" + Write("verbose = on\nverbose = off\nquiet = on\n")},
			       kRunTimeoutMs);
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("quiet = true\n"), std::string::npos) << r.out;
}

// The usual boolean spellings, in any case, in the file and on the command line.
TEST_F(ConfigFileTest, BooleanSpellings)
{
	for (const auto &[word, value] : std::vector<std::pair<std::string, std::string>>{
		 {"true", "true"}, {"Yes", "true"}, {"ON", "true"}, {"1", "true"},
		 {"FALSE", "false"}, {"no", "false"}, {"Off", "false"}, {"0", "false"}}) {
		RunResult cli = RunEchod({"-t", "--seccomp=" + word}, kRunTimeoutMs);
		EXPECT_EQ(cli.status, 0) << word << ": " << cli.err;
		EXPECT_NE(cli.out.find("seccomp = " + value + "\n"), std::string::npos) << word;
		// quiet, not seccomp, in the file: a test wrapper (valgrind) passes
		// --seccomp=false, which wins over the file.
		RunResult file =
		    RunEchod({"-t", "--config=" + Write("quiet = " + word + "\n")}, kRunTimeoutMs);
		EXPECT_EQ(file.status, 0) << word << ": " << file.err;
		EXPECT_NE(file.out.find("quiet = " + value + "\n"), std::string::npos) << word;
	}
	RunResult bad = RunEchod(Join(kSafeListen, {"--seccomp=enabled"}), kRunTimeoutMs);
	EXPECT_EQ(bad.status, 64) << bad.err;
	EXPECT_NE(bad.err.find("yes or no"), std::string::npos) << bad.err;
	ExpectConfigError("seccomp = y\n", 1);
}

TEST(VersionTest, VersionAndBackends)
{
	RunResult r = RunEchod({"-V"}, kRunTimeoutMs);
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out.rfind("echod ", 0), 0u) << r.out;
	std::string error;
	std::vector<std::string> backends = BuiltBackends(&error);
	EXPECT_NE(std::find(backends.begin(), backends.end(), "epoll"), backends.end())
	    << error << r.out;
}

TEST(VersionTest, HelpExitsZero)
{
	RunResult r = RunEchod({"-h"}, kRunTimeoutMs);
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("--listen"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("(default: 300)"), std::string::npos) << "no defaults: " << r.out;
}

} // namespace
} // namespace e2e
