// --offload (issue 17), the smoke cases: the options and their errors, the kernel
// echo itself, a peer that never reads reset and counted, and the fallbacks when
// bpf() is refused (deny-bpf, built from tests/tools/deny-syscall.c). The full matrix (half-close, drain, idle,
// limits, activation in offload mode) is tests/e2e/offload_test.cc.
// Skipped, with the reason, when echod was built without BPF or the kernel refuses.
#include <signal.h>
#include <unistd.h>

#include <sstream>

#include "fixture.h"
#include "udp.h" // Counters, WaitCounter

namespace e2e
{
namespace
{

constexpr int kTimeoutMs = 10000;

bool OffloadBuilt()
{
	RunResult r = RunEchod({"-V"});
	return r.out.find("offload: sockmap\n") != std::string::npos;
}

// Starts echod with --offload=sockmap; skips when it cannot have it here.
#define START_OFFLOADED(d, ...)                                                                   \
	do {                                                                                       \
		if (!OffloadBuilt())                                                               \
			GTEST_SKIP() << "echod was built without BPF (echod -V: offload: no)";   \
		std::string error_;                                                                \
		std::vector<std::string> args_ = {"--offload=sockmap", "-l", "127.0.0.1:0",        \
						  "-w", "1"};                                      \
		std::vector<std::string> extra_ = {__VA_ARGS__};                                    \
		args_.insert(args_.end(), extra_.begin(), extra_.end());                          \
		if (!(d).Start(args_, 1, &error_)) {                                               \
			if (error_.find("--offload=sockmap:") != std::string::npos)                \
				GTEST_SKIP() << "the kernel refuses the offload: " << error_;     \
			FAIL() << error_;                                                          \
		}                                                                                  \
	} while (0)

RunResult RunDenied(const std::vector<std::string> &args)
{
	std::vector<std::string> full = {ECHOD_BIN};
	full.insert(full.end(), args.begin(), args.end());
	return RunProgram(DENY_BPF_BIN, full, "", 10000);
}

TEST(OffloadOptions, VersionSaysWhetherItIsBuilt)
{
	RunResult r = RunEchod({"-V"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_TRUE(r.out.find("offload: sockmap\n") != std::string::npos ||
		    r.out.find("offload: no\n") != std::string::npos)
	    << r.out;
}

TEST(OffloadOptions, CheckConfigPrintsBothAndTheDefaults)
{
	RunResult r = RunEchod({"-t"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("offload = off\n"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("offload-budget = 4194304\n"), std::string::npos) << r.out;
	r = RunEchod({"-t", "--offload=auto", "--offload-budget=65536"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_NE(r.out.find("offload = auto\n"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("offload-budget = 65536\n"), std::string::npos) << r.out;
}

TEST(OffloadOptions, BadValuesAreUsageErrors)
{
	RunResult r = RunEchod({"-t", "--offload=kernel"});
	EXPECT_EQ(r.status, 64);
	EXPECT_NE(r.err.find("--offload: invalid value 'kernel'"), std::string::npos) << r.err;
	r = RunEchod({"-t", "--offload-budget=65535"});
	EXPECT_EQ(r.status, 64);
	EXPECT_NE(r.err.find("--offload-budget: invalid value '65535'"), std::string::npos)
	    << r.err;
	r = RunEchod({"-t", "--offload=sockmap", "-b", "io_uring"});
	EXPECT_EQ(r.status, 64);
	EXPECT_NE(r.err.find("--offload=sockmap"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("--backend=io_uring"), std::string::npos) << r.err;
}

TEST(OffloadOptions, HelpListsBoth)
{
	RunResult r = RunEchod({"-h"});
	EXPECT_EQ(r.status, 0);
	EXPECT_NE(r.out.find("--offload=MODE"), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("--offload-budget=BYTES"), std::string::npos) << r.out;
}

TEST(OffloadSmoke, EchoesInTheKernelWithBannerAndCounts)
{
	Daemon d;
	START_OFFLOADED(d, "--banner=hi", "-v");
	EXPECT_NE(d.Log().find("backend=epoll offload=sockmap"), std::string::npos) << d.Log();
	Fd fd = MustConnect(d.port(), kTimeoutMs);
	ASSERT_TRUE(fd.valid());
	std::string banner;
	ASSERT_EQ(RecvExact(fd.get(), &banner, 4, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(banner, "hi\r\n");
	StreamOptions opt;
	opt.timeout_ms = kTimeoutMs;
	std::string data = RandomBytes(1 << 20, 17);
	std::string error;
	EXPECT_TRUE(EchoOnce(fd.get(), "and a line\n", kTimeoutMs, &error)) << error;
	EXPECT_EQ(StreamEcho(fd.get(), data, opt), ""); // ends with a half-close
	fd = Fd();
	EXPECT_EQ(WaitCounter(&d, "offloaded", 1, kTimeoutMs), 1u) << d.Log();
	// The bytes come from tcp_info; the close line too.
	EXPECT_TRUE(d.WaitForLog("in=" + std::to_string(data.size() + 11), kTimeoutMs)) << d.Log();
	auto c = Counters(&d, kTimeoutMs);
	EXPECT_EQ(c["bytes_in"], data.size() + 11);
	EXPECT_EQ(c["offload_fallbacks"], 0u);
}

TEST(OffloadSmoke, HalfCloseGetsEveryByteBack)
{
	Daemon d;
	START_OFFLOADED(d);
	StreamOptions opt;
	opt.timeout_ms = kTimeoutMs;
	for (int i = 0; i < 5; i++) {
		Fd fd = MustConnect(d.port(), kTimeoutMs);
		ASSERT_TRUE(fd.valid());
		opt.seed = 30 + i;
		// StreamEcho sends it all, shuts its sending side down and reads to EOF.
		EXPECT_EQ(StreamEcho(fd.get(), RandomBytes(300001 + i, opt.seed), opt), "")
		    << "run " << i;
	}
	// A line and the FIN at once, through echo-client.
	RunResult r = RunProgram(ECHO_CLIENT_BIN, {"-T", "10", "127.0.0.1", std::to_string(d.port())},
				 "one line\n", 15000);
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "one line\n");
}

TEST(OffloadSmoke, PeerThatNeverReadsIsResetAndCounted)
{
	Daemon d;
	START_OFFLOADED(d, "--offload-budget=1048576", "-v");
	Fd fd = MustConnect(d.port(), kTimeoutMs);
	ASSERT_TRUE(fd.valid());
	size_t sent = 0;
	// Pushes without reading: long before 1 GiB the peer is reset, not stalled.
	FillStatus st = FillUntilStalled(fd.get(), 1u << 30, 3000, 20000, &sent);
	EXPECT_EQ(st, FillStatus::kClosed) << ToString(st) << " after " << sent << " bytes";
	EXPECT_EQ(WaitCounter(&d, "offload_overruns", 1, kTimeoutMs), 1u) << d.Log();
	EXPECT_TRUE(d.WaitForLog("reason=offload-overrun", kTimeoutMs)) << d.Log();
}

TEST(OffloadFallback, SockmapRefusedExits71SayingWhy)
{
	if (!OffloadBuilt()) {
		RunResult r = RunEchod({"--offload=sockmap", "-l", "127.0.0.1:0", "-w", "1"});
		EXPECT_EQ(r.status, 71) << r.err;
		EXPECT_NE(r.err.find("--offload=sockmap: this echod was built without BPF"),
			  std::string::npos)
		    << r.err;
		return;
	}
	RunResult r = RunDenied({"--offload=sockmap", "-l", "127.0.0.1:0", "-w", "1"});
	EXPECT_EQ(r.status, 71) << r.err;
	EXPECT_NE(r.err.find("echod: --offload=sockmap: "), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
}

TEST(OffloadFallback, AutoEchoesInUserSpaceAndSaysWhyOnce)
{
	Daemon d;
	std::string error;
	ASSERT_TRUE(d.StartWrapped({DENY_BPF_BIN},
				   {"--offload=auto", "-l", "127.0.0.1:0", "-w", "2"}, 1, &error))
	    << error;
	std::string log = d.Log();
	const std::string why = "offload: sockmap unavailable (";
	size_t at = log.find(why);
	ASSERT_NE(at, std::string::npos) << log;
	EXPECT_EQ(log.find(why, at + 1), std::string::npos) << "logged twice:\n" << log;
	EXPECT_NE(log.find("; echoing in user space"), std::string::npos) << log;
	EXPECT_EQ(log.find("offload=sockmap"), std::string::npos) << log;
	EXPECT_TRUE(ConnectAndEcho(kLoopback, d.port(), "still echoes\n", kTimeoutMs, &error))
	    << error;
	auto c = Counters(&d, kTimeoutMs);
	EXPECT_EQ(c["offloaded"], 0u);
}

} // namespace
} // namespace e2e
