// echo-bench's open phase against the real echod, each backend (io_uring is skipped,
// with the reason, where it is not built or cannot run): at 1000 streaming connections
// every one must be open through the whole measured window. Seen from the server side
// (echod's `open` counter, read through SIGUSR1 while echo-bench runs) and in
// echo-bench's own figures. No rate, latency or fairness figure is asserted.
#include "fixture.h" // tests/support
#include "process.h" // tests/support
#include "support.h" // bench/tests: the JSON reader
#include "udp.h"     // tests/support: Counters

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace
{

using BenchOpenTest = e2e::BackendTest;
ECHOD_INSTANTIATE_BACKENDS(BenchOpenTest);

// steady_clock is CLOCK_MONOTONIC, echo-bench's clock: instants compare across processes.
using Clock = std::chrono::steady_clock;

constexpr int kConns = 1000;
constexpr int kMaxSamples = 300; // bounds the sampling loop: 300 x (100 ms + a reading)
constexpr int kRunTimeoutMs = 60000;
constexpr double kMarginS = 0.01; // JSON figures are rounded to the millisecond

double SecondsSince(Clock::time_point t0)
{
	return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One reading of echod's `open` gauge, taken somewhere between sent and got
// (seconds since echo-bench was started).
struct Sample {
	double sent, got;
	uint64_t open;
};

std::string Describe(const std::vector<Sample> &samples, double lo, double hi)
{
	std::ostringstream s;
	s << "window certainly covers [" << lo << ", " << hi << "] s; samples:";
	for (const Sample &x : samples)
		s << " [" << x.sent << "," << x.got << "]=" << x.open;
	return s.str();
}

TEST_P(BenchOpenTest, EveryStreamConnectionIsOpenThroughTheWindow)
{
	// The subject is echo-bench; echod under valgrind would take minutes over the
	// quarter gigabyte these streams keep in flight, and its timeouts would fire.
	if (!e2e::TestWrapper().empty())
		GTEST_SKIP() << "echod runs under a wrapper (ECHOD_TEST_WRAPPER): too slow for "
				"1000 streaming connections";
	e2e::Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	std::string target = std::string(e2e::kLoopback) + ":" + std::to_string(d->port());
	e2e::Process bench;
	std::string error;
	Clock::time_point t0 = Clock::now();
	ASSERT_TRUE(bench.Start(ECHO_BENCH_BIN,
				{"--mode", "stream", "-s", "16k", "-t", "2", "-c",
				 std::to_string(kConns), "-d", "2s", "--json", target},
				"", &error))
	    << error;
	std::vector<Sample> samples;
	for (int i = 0; i < kMaxSamples && bench.Running(); i++) {
		double sent = SecondsSince(t0);
		std::map<std::string, uint64_t> c = e2e::Counters(d, 2000);
		double got = SecondsSince(t0);
		if (c.count("open"))
			samples.push_back({sent, got, c["open"]});
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
	}
	std::optional<int> status = bench.WaitExit(kRunTimeoutMs);
	double exited = SecondsSince(t0);
	ASSERT_EQ(status, std::optional<int>(0)) << bench.Stdout() << bench.Stderr();

	std::map<std::string, std::string> j;
	ASSERT_TRUE(ebtest::parse_json(bench.Stdout(), &j)) << bench.Stdout();
	EXPECT_EQ(ebtest::json_num(j, "errors.total"), 0) << bench.Stdout();
	EXPECT_EQ(j["open.complete"], "true") << bench.Stdout();
	EXPECT_EQ(ebtest::json_num(j, "open.requested"), kConns);
	EXPECT_EQ(ebtest::json_num(j, "open.opened"), kConns);
	EXPECT_EQ(ebtest::json_num(j, "open.window_min"), kConns) << bench.Stdout();
	EXPECT_EQ(ebtest::json_num(j, "open.window_max"), kConns) << bench.Stdout();
	EXPECT_EQ(ebtest::json_num(j, "open.whole_window"), kConns) << bench.Stdout();
	EXPECT_EQ(ebtest::json_num(j, "fairness.connections"), kConns) << bench.Stdout();

	// The window began open_s after echo-bench's start, which came after t0; it lasted
	// elapsed_s, and drain_s more passed before echo-bench exited, before `exited`.
	// So it certainly ran from exited - drain_s - elapsed_s until open_s + elapsed_s.
	double open_s = ebtest::json_num(j, "open.open_s");
	double elapsed = ebtest::json_num(j, "elapsed_s");
	double drain = ebtest::json_num(j, "drain_s");
	ASSERT_GE(open_s, 0);
	ASSERT_GT(elapsed, 1.9) << bench.Stdout();
	ASSERT_GE(drain, 0);
	double lo = exited - drain - elapsed + kMarginS, hi = open_s + elapsed - kMarginS;
	int inside = 0;
	for (const Sample &x : samples) {
		if (x.sent < lo || x.got > hi)
			continue;
		inside++;
		EXPECT_EQ(x.open, uint64_t(kConns)) << Describe(samples, lo, hi);
	}
	EXPECT_GE(inside, 3) << Describe(samples, lo, hi);
}

} // namespace
