// The CI smoke of the benchmark tools: the real echod (each backend; io_uring is
// skipped with the reason where it is not built or cannot run) on an ephemeral
// loopback port, echo-bench about a second in each loaded mode, and bench/compare's
// correctness helper. Only exit statuses and error counts are asserted, never a
// rate or a latency: CI machines are too noisy for timing figures.
#include "fixture.h" // tests/support
#include "support.h" // bench/tests: the JSON reader

#include <map>
#include <string>
#include <vector>

namespace
{

using BenchSmokeTest = e2e::BackendTest;
ECHOD_INSTANTIATE_BACKENDS(BenchSmokeTest);

constexpr int kRunTimeoutMs = 60000;

// Runs echo-bench --json with args against port; it must exit 0 with zero errors
// of every kind and have echoed something.
void ExpectCleanRun(int port, std::vector<std::string> args)
{
	args.push_back("--json");
	args.push_back(std::string(e2e::kLoopback) + ":" + std::to_string(port));
	e2e::RunResult r = e2e::RunProgram(ECHO_BENCH_BIN, args, "", kRunTimeoutMs);
	ASSERT_EQ(r.status, 0) << "stdout: " << r.out << "\nstderr: " << r.err;
	std::map<std::string, std::string> j;
	ASSERT_TRUE(ebtest::parse_json(r.out, &j)) << r.out;
	EXPECT_EQ(ebtest::json_num(j, "errors.total"), 0) << r.out;
	EXPECT_GT(ebtest::json_num(j, "requests"), 0) << r.out;
}

TEST_P(BenchSmokeTest, PingPongHasNoErrors)
{
	e2e::Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	ExpectCleanRun(d->port(), {"--mode", "pingpong", "-t", "2", "-c", "50", "-s", "64",
				   "--depth", "2", "-d", "1s"});
}

TEST_P(BenchSmokeTest, StreamHasNoErrors)
{
	e2e::Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	ExpectCleanRun(d->port(),
		       {"--mode", "stream", "-t", "2", "-c", "8", "-s", "16k", "-d", "1s"});
}

TEST_P(BenchSmokeTest, ChurnHasNoErrors)
{
	e2e::Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	ExpectCleanRun(d->port(), {"--mode", "churn", "-t", "2", "-c", "10", "-d", "500ms"});
}

// bench/compare's correctness column, against the server it must pass on.
TEST_P(BenchSmokeTest, EchoCheckPassesHalfCloseAndBackpressure)
{
	e2e::Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	std::string port = std::to_string(d->port());
	for (const std::vector<std::string> &args :
	     {std::vector<std::string>{"halfclose", port},
	      std::vector<std::string>{"backpressure", port}}) {
		e2e::RunResult r = e2e::RunProgram(ECHO_CHECK_BIN, args, "", kRunTimeoutMs);
		EXPECT_EQ(r.status, 0) << args[0] << ": " << r.out << r.err;
		EXPECT_EQ(r.out.rfind("ok: ", 0), 0u) << args[0] << ": " << r.out;
	}
}

} // namespace
