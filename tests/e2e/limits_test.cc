// --max-conns, --max-conns-per-ip and --conn-rate: connections over the limit are
// accepted and closed at once; a slot freed by a close can be used again.
#include <signal.h>

#include <chrono>

#include "checks.h"
#include "fixture.h"
#include "udp.h"

namespace e2e
{
namespace
{

using LimitsTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(LimitsTest);

constexpr int kTimeoutMs = 5000;

// SIGUSR1 logs the counters; token is e.g. "rejected_max_conns=1".
void ExpectCounter(Daemon *d, const std::string &token)
{
	ASSERT_TRUE(d->Signal(SIGUSR1));
	EXPECT_TRUE(d->WaitForLog(" " + token, kTimeoutMs)) << "no " << token << " in:\n"
							    << d->Log();
}

// Closes are asynchronous: retry until a new connection echoes (bounded).
bool EventuallyEchoes(int port)
{
	std::string error;
	return WaitUntil([&] { return ConnectAndEcho(kLoopback, port, "again\n", 1000, &error); },
			 kTimeoutMs, 50);
}

TEST_P(LimitsTest, MaxConnsCountsAllWorkers)
{
	Daemon *d = StartDaemon({"--max-conns=5"}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<Fd> fds;
	ASSERT_NO_FATAL_FAILURE(OpenEchoing(d->port(), 5, "127.0.0.1", &fds));
	ASSERT_NO_FATAL_FAILURE(ExpectRejected(d->port(), "127.0.0.1"));
	ExpectCounter(d, "rejected_max_conns=1");
	fds.pop_back();
	EXPECT_TRUE(EventuallyEchoes(d->port())) << "a freed slot was not reused";
}

TEST_P(LimitsTest, MaxConnsPerIpCountsEachSourceAddress)
{
	Daemon *d = StartDaemon({"--max-conns-per-ip=3"}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<Fd> fds;
	ASSERT_NO_FATAL_FAILURE(OpenEchoing(d->port(), 3, "127.0.0.1", &fds));
	ASSERT_NO_FATAL_FAILURE(ExpectRejected(d->port(), "127.0.0.1"));
	ASSERT_NO_FATAL_FAILURE(OpenEchoing(d->port(), 1, "127.0.0.2", &fds));
	ExpectCounter(d, "rejected_per_ip=1");
}

// A connection either echoes (admitted) or reads EOF or a reset (refused); true if admitted.
bool AdmittedOnce(int port, const std::string &src)
{
	std::string error;
	Fd fd = Connect(kLoopback, port, kTimeoutMs, &error, src);
	EXPECT_TRUE(fd.valid()) << error;
	if (!fd.valid())
		return false;
	if (EchoOnce(fd.get(), "ping\n", kTimeoutMs, &error))
		return true;
	RecvStatus st = WaitClosed(fd.get(), kTimeoutMs);
	EXPECT_TRUE(st == RecvStatus::kEof || st == RecvStatus::kReset) << ToString(st);
	return false;
}

// --conn-rate=N: a burst of N, then N a second, per client and for all workers together
// (two workers here: a per-worker rate would let up to twice as many through). The
// bound is measured against the time the attempts took, so a slow machine only loosens it.
TEST_P(LimitsTest, ConnRateHoldsPerClientAcrossWorkers)
{
	constexpr int kRate = 2, kAttempts = 20;
	Daemon *d = StartDaemon({"--conn-rate=" + std::to_string(kRate)}, 2);
	ASSERT_NE(d, nullptr);
	auto start = std::chrono::steady_clock::now();
	int admitted = 0;
	for (int i = 0; i < kAttempts; i++)
		admitted += AdmittedOnce(d->port(), "127.0.0.1");
	double secs =
	    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	EXPECT_GE(admitted, kRate) << "the burst";
	EXPECT_LE(double(admitted), kRate + kRate * secs + 1) << "in " << secs << " s";
	EXPECT_EQ(WaitCounter(d, "rejected_conn_rate", uint64_t(kAttempts - admitted), kTimeoutMs),
		  uint64_t(kAttempts - admitted))
	    << d->Log();
	// Another client has its own rate.
	EXPECT_TRUE(AdmittedOnce(d->port(), "127.0.0.2"));
}

TEST_P(LimitsTest, ConnRateZeroIsOff)
{
	Daemon *d = StartDaemon({"--conn-rate=0"}, 1);
	ASSERT_NE(d, nullptr);
	for (int i = 0; i < 50; i++)
		ASSERT_TRUE(AdmittedOnce(d->port(), "127.0.0.1")) << "connection " << i;
	EXPECT_EQ(Counters(d, kTimeoutMs)["rejected_conn_rate"], 0u);
}

} // namespace
} // namespace e2e
