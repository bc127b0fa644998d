// Argument parsing: every option's forms, durations, sizes, CPU lists, targets, errors.
#include "args.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace
{

struct Parsed {
	int rc;
	std::string err;
	std::unique_ptr<bench_args> a;
};

Parsed parse(std::vector<std::string> words)
{
	words.insert(words.begin(), "echo-bench");
	std::vector<char *> argv;
	for (std::string &w : words)
		argv.push_back(&w[0]);
	argv.push_back(nullptr);
	Parsed p{0, "", std::make_unique<bench_args>()};
	char err[256] = "";
	p.rc = bench_args_parse(p.a.get(), static_cast<int>(words.size()), argv.data(), err,
				sizeof(err));
	p.err = err;
	return p;
}

constexpr uint64_t kMs = 1000000ULL;
constexpr uint64_t kSec = 1000 * kMs;

TEST(Args, Defaults)
{
	Parsed p = parse({"127.0.0.1:7"});
	ASSERT_EQ(p.rc, 0) << p.err;
	EXPECT_EQ(p.a->threads, 2u);
	EXPECT_EQ(p.a->conns, 10ul);
	EXPECT_EQ(p.a->duration_ns, 10 * kSec);
	EXPECT_EQ(p.a->timeout_ns, 5 * kSec);
	EXPECT_EQ(p.a->warmup_ns, 0u);
	EXPECT_EQ(p.a->size, 64u);
	EXPECT_EQ(p.a->depth, 1u);
	EXPECT_EQ(p.a->mode, MODE_PINGPONG);
	EXPECT_FALSE(p.a->latency);
	EXPECT_FALSE(p.a->json);
	EXPECT_EQ(p.a->ncpus, 0);
	EXPECT_STREQ(p.a->host, "127.0.0.1");
	EXPECT_STREQ(p.a->port, "7");
}

TEST(Args, AllOptionsInEveryForm)
{
	Parsed p = parse({"-t4", "--connections=100", "-d", "2m", "--size", "4k", "--mode=stream",
			  "--depth", "8", "--warmup", "500ms", "--latency", "--json", "--cpu",
			  "0-1", "--timeout=1.5s", "[::1]:9000"});
	ASSERT_EQ(p.rc, 0) << p.err;
	EXPECT_EQ(p.a->threads, 4u);
	EXPECT_EQ(p.a->conns, 100ul);
	EXPECT_EQ(p.a->duration_ns, 120 * kSec);
	EXPECT_EQ(p.a->size, 4096u);
	EXPECT_EQ(p.a->mode, MODE_STREAM);
	EXPECT_EQ(p.a->depth, 8u);
	EXPECT_EQ(p.a->warmup_ns, 500 * kMs);
	EXPECT_TRUE(p.a->latency);
	EXPECT_TRUE(p.a->json);
	ASSERT_EQ(p.a->ncpus, 2);
	EXPECT_EQ(p.a->cpus[0], 0);
	EXPECT_EQ(p.a->cpus[1], 1);
	EXPECT_EQ(p.a->timeout_ns, 1500 * kMs);
	EXPECT_STREQ(p.a->host, "::1");
	EXPECT_STREQ(p.a->port, "9000");
	EXPECT_STREQ(p.a->target, "[::1]:9000");
}

TEST(Args, ModesByName)
{
	const char *names[] = {"pingpong", "stream", "churn", "idle", "send", "recv"};
	for (int m = 0; m < 6; m++) {
		Parsed p = parse({"--mode", names[m], "h:1"});
		ASSERT_EQ(p.rc, 0) << p.err;
		EXPECT_EQ(p.a->mode, static_cast<bench_mode>(m));
		EXPECT_STREQ(bench_mode_name(p.a->mode), names[m]);
	}
}

TEST(Args, ThreadsAreCappedByConnections)
{
	Parsed p = parse({"-t", "8", "-c", "3", "h:1"});
	ASSERT_EQ(p.rc, 0) << p.err;
	EXPECT_EQ(p.a->threads, 3u);
}

TEST(Args, HelpNeedsNoTarget)
{
	Parsed p = parse({"--help"});
	EXPECT_EQ(p.rc, 0);
	EXPECT_TRUE(p.a->help);
}

TEST(Args, DurationsParse)
{
	struct {
		const char *s;
		uint64_t ns;
	} ok[] = {{"10", 10 * kSec},  {"10s", 10 * kSec},      {"500ms", 500 * kMs},
		  {"2m", 120 * kSec}, {"1h", 3600 * kSec},     {"1.5s", 1500 * kMs},
		  {"250us", 250000},  {"0.25", 250 * kMs},     {"0", 0},
		  {"3MS", 3 * kMs},   {"86400s", 86400 * kSec}};
	for (const auto &c : ok) {
		uint64_t ns = 1;
		EXPECT_EQ(bench_parse_duration(c.s, &ns), 0) << c.s;
		EXPECT_EQ(ns, c.ns) << c.s;
	}
	for (const char *bad : {"", "s", "-1", "+1", " 1", "10x", "1.", ".5", "0x10", "1e3", "nan",
				"inf", "10 s", "86401s", "99999999999999999999"}) {
		uint64_t ns;
		EXPECT_EQ(bench_parse_duration(bad, &ns), -1) << bad;
	}
}

TEST(Args, SizesParse)
{
	struct {
		const char *s;
		uint64_t b;
	} ok[] = {{"64", 64},	   {"64b", 64},	     {"4k", 4096},
		  {"4K", 4096},	   {"1KiB", 1024},   {"1kb", 1024},
		  {"2m", 2 << 20}, {"1MB", 1 << 20}, {"1g", 1ULL << 30}};
	for (const auto &c : ok) {
		uint64_t b = 0;
		EXPECT_EQ(bench_parse_size(c.s, &b), 0) << c.s;
		EXPECT_EQ(b, c.b) << c.s;
	}
	for (const char *bad : {"", "k", "-1", "1q", "1.5k", "0x10", "1 k"}) {
		uint64_t b;
		EXPECT_EQ(bench_parse_size(bad, &b), -1) << bad;
	}
}

TEST(Args, CpuListsParse)
{
	int cpus[16], n = 0;
	ASSERT_EQ(bench_parse_cpus("1", cpus, 16, &n), 0);
	EXPECT_EQ(n, 1);
	EXPECT_EQ(cpus[0], 1);
	ASSERT_EQ(bench_parse_cpus("0-3", cpus, 16, &n), 0);
	EXPECT_EQ(n, 4);
	EXPECT_EQ(cpus[3], 3);
	ASSERT_EQ(bench_parse_cpus("0,2,4-5", cpus, 16, &n), 0);
	ASSERT_EQ(n, 4);
	EXPECT_EQ(cpus[1], 2);
	EXPECT_EQ(cpus[3], 5);
	for (const char *bad : {"", "a", "3-1", "1,", ",1", "1-", "-1", "1024", "0-20", "1;2"})
		EXPECT_EQ(bench_parse_cpus(bad, cpus, 16, &n), -1) << bad;
}

TEST(Args, TargetsParse)
{
	char host[256], port[8];
	ASSERT_EQ(bench_parse_target("127.0.0.1:7", host, sizeof(host), port, sizeof(port)), 0);
	EXPECT_STREQ(host, "127.0.0.1");
	EXPECT_STREQ(port, "7");
	ASSERT_EQ(bench_parse_target("[fe80::1%lo]:65535", host, sizeof(host), port, sizeof(port)),
		  0);
	EXPECT_STREQ(host, "fe80::1%lo");
	EXPECT_STREQ(port, "65535");
	ASSERT_EQ(bench_parse_target("echo.example:07", host, sizeof(host), port, sizeof(port)), 0);
	EXPECT_STREQ(host, "echo.example");
	EXPECT_STREQ(port, "7");
	for (const char *bad : {"", "localhost", "::1:7", "[::1]", "[::1]7", "[]:7", "h:0",
				"h:65536", ":7", "h:", "h:7x", "h:-7"})
		EXPECT_EQ(bench_parse_target(bad, host, sizeof(host), port, sizeof(port)), -1)
		    << bad;
}

struct BadCase {
	std::vector<std::string> args;
	const char *must_mention;
};

TEST(Args, EachBadOptionIsRejectedWithItsName)
{
	const BadCase cases[] = {
	    {{"-t", "0", "h:1"}, "-t"},
	    {{"--threads=abc", "h:1"}, "--threads"},
	    {{"-t", "257", "h:1"}, "'257'"},
	    {{"-c", "0", "h:1"}, "-c"},
	    {{"--connections", "1000001", "h:1"}, "--connections"},
	    {{"-d", "0", "h:1"}, "-d"},
	    {{"-d", "5x", "h:1"}, "'5x'"},
	    {{"-s", "0", "h:1"}, "-s"},
	    {{"-s", "17m", "h:1"}, "'17m'"},
	    {{"--mode", "flood", "h:1"}, "--mode"},
	    {{"--depth", "0", "h:1"}, "--depth"},
	    {{"--depth", "1025", "h:1"}, "--depth"},
	    {{"--warmup", "-1", "h:1"}, "--warmup"},
	    {{"--cpu", "3-1", "h:1"}, "--cpu"},
	    {{"--timeout", "0", "h:1"}, "--timeout"},
	    {{"--timeout", "soon", "h:1"}, "'soon'"},
	    {{"--bogus", "h:1"}, "--bogus"},
	    {{"-x", "h:1"}, "-x"},
	    {{"--json=yes", "h:1"}, "--json"},
	    {{"h:1", "-t"}, "-t"},
	    {{}, "HOST:PORT"},
	    {{"localhost"}, "'localhost'"},
	    {{"::1:7"}, "'::1:7'"},
	    {{"h:1", "h:2"}, "'h:2'"},
	};
	for (const BadCase &c : cases) {
		Parsed p = parse(c.args);
		EXPECT_EQ(p.rc, -1) << c.must_mention;
		EXPECT_NE(p.err.find(c.must_mention), std::string::npos)
		    << "message '" << p.err << "' lacks " << c.must_mention;
	}
}

} // namespace
