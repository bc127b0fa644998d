// The binary's usage errors: exit 64 with a message naming the option or value.
#include "support.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace
{

using ebtest::run_bench;

struct UsageCase {
	std::vector<std::string> args;
	const char *must_mention;
};

TEST(Cli, BadOptionsExit64NamingTheOption)
{
	const UsageCase cases[] = {
	    {{"-t", "0", "127.0.0.1:1"}, "-t"},
	    {{"-c", "x", "127.0.0.1:1"}, "-c"},
	    {{"-d", "10y", "127.0.0.1:1"}, "'10y'"},
	    {{"-s", "0", "127.0.0.1:1"}, "-s"},
	    {{"--mode", "flood", "127.0.0.1:1"}, "flood"},
	    {{"--depth", "0", "127.0.0.1:1"}, "--depth"},
	    {{"--warmup", "x", "127.0.0.1:1"}, "--warmup"},
	    {{"--cpu", "1-0", "127.0.0.1:1"}, "--cpu"},
	    {{"--timeout", "0", "127.0.0.1:1"}, "--timeout"},
	    {{"--frobnicate", "127.0.0.1:1"}, "--frobnicate"},
	    {{}, "HOST:PORT"},
	    {{"127.0.0.1"}, "127.0.0.1"},
	    {{"127.0.0.1:0"}, "127.0.0.1:0"},
	    // Valid syntax, but not possible here: still a usage error, checked before any traffic.
	    {{"--cpu", "1023", "127.0.0.1:1"}, "--cpu"},
	    {{"-c", "50000", "127.0.0.1:1"}, "-c"},
	};
	for (const UsageCase &c : cases) {
		ebtest::BenchRun r = run_bench(c.args);
		EXPECT_EQ(r.status, 64) << c.must_mention << ": " << r.err;
		EXPECT_NE(r.err.find(c.must_mention), std::string::npos)
		    << "stderr '" << r.err << "' lacks " << c.must_mention;
		EXPECT_TRUE(r.out.empty()) << r.out;
	}
}

// More connections than the descriptor limit allows: a usage error naming -c and the limit.
TEST(Cli, ConnectionsBeyondTheDescriptorLimitExit64)
{
	ebtest::BenchRun r = run_bench({"-c", "500", "127.0.0.1:1"}, 20, 100, 100);
	EXPECT_EQ(r.status, 64) << r.err;
	EXPECT_NE(r.err.find("-c"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("descriptor limit 100"), std::string::npos) << r.err;
	EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(Cli, HelpPrintsUsageAndExitsZero)
{
	ebtest::BenchRun r = run_bench({"--help"});
	EXPECT_EQ(r.status, 0);
	EXPECT_NE(r.out.find("usage: echo-bench"), std::string::npos);
	EXPECT_NE(r.out.find("--mode"), std::string::npos);
}

} // namespace
