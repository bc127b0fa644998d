// Peers that never read: echod stops reading from them (bounded memory), keeps
// serving everybody else, and --idle-timeout closes idle and stalled peers.
#include <signal.h>
#include <unistd.h>

#include "checks.h"
#include "fixture.h"

namespace e2e
{
namespace
{

using BackpressureTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(BackpressureTest);

constexpr int kTimeoutMs = 10000;
constexpr size_t kFillCap = 64u << 20; // a peer that pushes back stalls long before this
constexpr int kStallMs = 500;	       // no send progress for this long = stalled

void EchoMessages(int port, int count)
{
	Fd fd = MustConnect(port, kTimeoutMs);
	ASSERT_TRUE(fd.valid());
	std::string error;
	for (int i = 0; i < count; i++) {
		std::string msg = "message " + std::to_string(i) + "\n";
		ASSERT_TRUE(EchoOnce(fd.get(), msg, 2000, &error))
		    << "message " << i << ": " << error;
	}
}

// The daemon's log after a SIGUSR1, for failure messages.
std::string StatsNow(Daemon *d)
{
	d->Signal(SIGUSR1);
	d->WaitForLog("stats:", 2000);
	usleep(100 * 1000);
	return "\nechod log:\n" + d->Log();
}

TEST_P(BackpressureTest, PeerThatNeverReadsDoesNotHurtOthersOrMemory)
{
	Daemon *d = StartDaemon({}, 1); // one worker: both peers share it
	ASSERT_NE(d, nullptr);
	ASSERT_NO_FATAL_FAILURE(EchoMessages(d->port(), 10)); // warm up buffers
	long baseline_kb = d->WorkersRssKb();
	ASSERT_GT(baseline_kb, 0) << "no worker found in /proc";

	Fd greedy = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(greedy.valid());
	size_t sent = 0;
	FillStatus st = FillUntilStalled(greedy.get(), kFillCap, kStallMs, kTimeoutMs, &sent);
	ASSERT_EQ(st, FillStatus::kStalled) << ToString(st) << " after " << sent << " bytes";

	ASSERT_NO_FATAL_FAILURE(EchoMessages(d->port(), 100));
	// Bound: the stalled peer may cost the workers at most 4 MiB of resident
	// memory over the baseline (a per-connection cap on unsent bytes, not the
	// megabytes the peer has pushed into the kernel's buffers).
	long rss_kb = d->WorkersRssKb();
	EXPECT_LT(rss_kb, baseline_kb + 4 * 1024)
	    << "baseline " << baseline_kb << " KiB; peer sent " << sent << " bytes";
}

TEST_P(BackpressureTest, IdleTimeoutClosesIdleAndStalledButNotActivePeers)
{
	Daemon *d = StartDaemon({"--idle-timeout=1"});
	ASSERT_NE(d, nullptr);
	Fd idle = MustConnect(d->port(), kTimeoutMs);
	Fd stalled = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(idle.valid() && stalled.valid());
	size_t sent = 0;
	FillStatus st = FillUntilStalled(stalled.get(), kFillCap, kStallMs, kTimeoutMs, &sent);
	ASSERT_TRUE(st == FillStatus::kStalled || st == FillStatus::kClosed)
	    << ToString(st) << " after " << sent << " bytes";

	std::string error;
	bool starved = true;
	for (int attempt = 0; attempt < 3 && starved; attempt++)
		error = KeepTicking(d->port(), &starved);
	EXPECT_EQ(error, "") << StatsNow(d);
	EXPECT_FALSE(starved) << "this process never got to send every 300 ms";
	RecvStatus closed = WaitClosed(idle.get(), kTimeoutMs);
	EXPECT_TRUE(closed == RecvStatus::kEof || closed == RecvStatus::kReset)
	    << "idle connection: " << ToString(closed);
	EXPECT_TRUE(st == FillStatus::kClosed || WaitPeerGone(stalled.get(), kTimeoutMs))
	    << "the peer that never reads was not closed";
}

} // namespace
} // namespace e2e
