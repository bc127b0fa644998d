// Hostile peers, each at the moment that once broke the io_uring backend (issue 13):
// a reset while a receive is armed, or while echod is blocked on a full send queue;
// connections starved of ring buffers and then closed by the idle timer or the
// drain deadline; a small service read of exactly its buffer's size followed by
// silence; one UDP socket's flood beside a quiet sibling. Every case runs on both
// backends, and every case ends by checking that the workers neither crashed nor
// tripped a sanitizer or an invariant check, and that TERM still stops echod.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "fixture.h"
#include "udp.h"

namespace e2e
{
namespace
{

using HostileTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(HostileTest);

constexpr int kTimeoutMs = 10000;
constexpr size_t kFillCap = 64u << 20; // a peer that pushes back stalls long before this
constexpr int kStallMs = 300;	       // no send progress for this long = stalled

// Closes with a reset (RST), as a peer that vanishes with unread data does.
void Reset(Fd *fd)
{
	struct linger lg = {1, 0};
	(void)setsockopt(fd->get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	fd->Reset();
}

// n peers that push without reading until echod stops reading from them.
void StallPeers(Daemon *d, int n, std::vector<Fd> *out)
{
	for (int i = 0; i < n; i++) {
		Fd fd = MustConnect(d->port(), kTimeoutMs);
		ASSERT_TRUE(fd.valid());
		size_t sent = 0;
		FillStatus st = FillUntilStalled(fd.get(), kFillCap, kStallMs, kTimeoutMs, &sent);
		ASSERT_EQ(st, FillStatus::kStalled) << ToString(st);
		out->push_back(std::move(fd));
	}
}

// "" when the log shows no crashed worker, sanitizer report or broken invariant.
std::string LogProblem(const std::string &log)
{
	for (const char *bad : {"killed by signal", ") exited with status", "AddressSanitizer",
				"runtime error:", "LeakSanitizer", "invariant broken"}) {
		size_t at = log.find(bad);
		if (at != std::string::npos) {
			size_t from = log.rfind('\n', at);
			return log.substr(from == std::string::npos ? 0 : from + 1, 300);
		}
	}
	return "";
}

// A fresh connection echoes, the log is clean, and TERM stops echod cleanly.
void ExpectHealthyThenStop(Daemon *d, int port)
{
	std::string error;
	EXPECT_TRUE(ConnectAndEcho(kLoopback, port, "still here\n", kTimeoutMs, &error)) << error;
	EXPECT_EQ(LogProblem(d->Log()), "") << d->Log();
	d->Stop(Scaled(15000));
	EXPECT_EQ(d->StopProblem(), "") << d->Log();
	EXPECT_EQ(LogProblem(d->Log()), "") << d->Log();
}

TEST_P(HostileTest, ResetWhileReceiveIsArmedCostsOnlyThatConnection)
{
	// io_uring: the receive's last CQE carries ECONNRESET; closing the connection
	// there must not free it under the handler still reading it.
	Daemon *d = StartDaemon({"--drain-timeout=1"}, 1);
	ASSERT_NE(d, nullptr);
	Fd good = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(good.valid());
	std::string error;
	for (int i = 0; i < 20; i++) {
		Fd fd = MustConnect(d->port(), kTimeoutMs);
		ASSERT_TRUE(fd.valid());
		if (i % 2 == 0) { // an echo first: the receive is armed again and idle
			ASSERT_TRUE(EchoOnce(fd.get(), std::string(1024, 'r'), kTimeoutMs, &error))
			    << error;
		}
		Reset(&fd);
		ASSERT_TRUE(EchoOnce(good.get(), "ping\n", kTimeoutMs, &error)) << error;
	}
	ExpectHealthyThenStop(d, d->port());
}

TEST_P(HostileTest, ResetWhileBlockedOnAFullSendQueue)
{
	// Peers push without reading until echod stops reading from them, then reset:
	// data unread on both sides, a send and a receive (or its cancel) in flight.
	Daemon *d = StartDaemon({"--drain-timeout=1"}, 1);
	ASSERT_NE(d, nullptr);
	Fd good = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(good.valid());
	std::vector<Fd> pushers;
	StallPeers(d, 8, &pushers);
	if (HasFatalFailure())
		return;
	std::string error;
	for (auto &fd : pushers) {
		Reset(&fd);
		ASSERT_TRUE(EchoOnce(good.get(), std::string(1024, 'g'), kTimeoutMs, &error))
		    << error;
	}
	ExpectHealthyThenStop(d, d->port());
}

// Two peers that never read pin a 2-buffer ring; four more then send a little and
// find it empty (io_uring: their receives end with ENOBUFS and wait, starved).
struct Starved {
	std::vector<Fd> pushers, starved;
};

void Starve(Daemon *d, Starved *s, bool uring)
{
	StallPeers(d, 2, &s->pushers);
	if (::testing::Test::HasFatalFailure())
		return;
	uint64_t before = Counters(d, kTimeoutMs)["ring_enobufs"];
	for (int i = 0; i < 4; i++) {
		Fd fd = MustConnect(d->port(), kTimeoutMs);
		ASSERT_TRUE(fd.valid());
		ASSERT_TRUE(SendAll(fd.get(), std::string(100, 's'), kTimeoutMs));
		s->starved.push_back(std::move(fd));
	}
	if (uring) {
		ASSERT_GT(WaitCounter(d, "ring_enobufs", before + 1, kTimeoutMs), before)
		    << "no receive found the ring empty" << d->Log();
	}
}

TEST_P(HostileTest, StarvedConnectionsClosedByTheDrainDeadline)
{
	Daemon *d = StartDaemon({"--ring-buffers=2", "--drain-timeout=1"}, 1);
	ASSERT_NE(d, nullptr);
	Starved s;
	Starve(d, &s, backend() == "io_uring");
	if (HasFatalFailure())
		return;
	ASSERT_TRUE(d->Signal(SIGTERM));
	// The drain deadline closes the starved and the stalled alike; echod exits 0.
	ASSERT_TRUE(d->WaitExit(kTimeoutMs).has_value()) << d->Log();
	EXPECT_EQ(d->StopProblem(), "") << d->Log();
	EXPECT_EQ(LogProblem(d->Log()), "") << d->Log();
}

TEST_P(HostileTest, StarvedConnectionsClosedByTheIdleTimer)
{
	Daemon *d = StartDaemon({"--ring-buffers=2", "--idle-timeout=1", "--drain-timeout=1"}, 1);
	ASSERT_NE(d, nullptr);
	Starved s;
	Starve(d, &s, backend() == "io_uring");
	if (HasFatalFailure())
		return;
	// Stalled and starved peers move no byte: the idle timer closes all six.
	for (auto *v : {&s.pushers, &s.starved})
		for (auto &fd : *v)
			EXPECT_TRUE(WaitPeerGone(fd.get(), kTimeoutMs)) << d->Log();
	ExpectHealthyThenStop(d, d->port());
}

TEST_P(HostileTest, ServiceReadOfExactlyItsBufferThenSilenceBlocksNothing)
{
	// A read that fills service.c's buffer exactly is followed by another; on a
	// blocking socket that one would wait for the quiet peer, and the worker with it.
	Daemon *d = StartDaemon(
	    {"--drain-timeout=1"}, 1,
	    {"127.0.0.1:0", "127.0.0.1:0/discard", "127.0.0.1:0/chargen", "127.0.0.1:0/reverse"});
	ASSERT_NE(d, nullptr);
	std::string lines;
	for (int i = 0; i < 3; i++)
		lines += std::string(4095, 'a' + i) + "\n"; // 12288 bytes, no line too long
	const std::pair<int, std::string> quiet[] = {
	    {1, std::string(16384, 'd')}, {2, std::string(16384, 'c')}, {3, lines}};
	std::vector<Fd> peers;
	std::string error;
	Fd echo = MustConnect(d->port(0), kTimeoutMs);
	ASSERT_TRUE(echo.valid());
	for (const auto &[listener, data] : quiet) {
		Fd fd = MustConnect(d->port(listener), kTimeoutMs);
		ASSERT_TRUE(fd.valid());
		ASSERT_TRUE(SendAll(fd.get(), data, kTimeoutMs));
		peers.push_back(std::move(fd));
		for (int i = 0; i < 3; i++)
			ASSERT_TRUE(EchoOnce(echo.get(), "after " + std::to_string(listener) + "\n",
					     kTimeoutMs, &error))
			    << "listener " << listener << ": " << error << d->Log();
	}
	ExpectHealthyThenStop(d, d->port(0));
}

TEST_P(HostileTest, UdpFloodOnOneSocketLeavesItsSiblingAnswering)
{
	// io_uring: the worker's UDP sockets share one buffer group. Many sources flood
	// A without reading the answers while B is asked now and then: B's receive may
	// find the group empty, and must be fed again when A's answers give buffers back.
	Daemon *d = StartDaemon({"--udp-rate=0", "--drain-timeout=1"}, 1,
				{"udp:127.0.0.1:0", "udp:127.0.0.1:0"});
	ASSERT_NE(d, nullptr);
	const int a = d->port(0), b = d->port(1);
	std::string error;
	std::vector<Fd> sources;
	for (int i = 0; i < 250; i++) {
		sources.push_back(UdpSocket(kLoopback, 0, &error));
		ASSERT_TRUE(sources.back().valid()) << error;
	}
	Fd asker = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(asker.valid()) << error;
	const std::string payload(512, 'u');
	for (int round = 0; round < 80; round++) {
		for (auto &fd : sources)
			(void)UdpSendTo(fd.get(), kLoopback, a, payload);
		(void)UdpSendTo(asker.get(), kLoopback, b, "b?");
	}
	// B answers: asked again until it does (UDP may drop a datagram or two).
	std::string back;
	bool answered = false;
	for (int i = 0; i < 50 && !answered; i++) {
		std::string ignored;
		while (UdpPoll(asker.get(), &ignored)) // answers from the flood
			;
		ASSERT_TRUE(UdpSendTo(asker.get(), kLoopback, b, "are you there?"));
		answered =
		    UdpRecv(asker.get(), &back, 200) == RecvStatus::kOk && back == "are you there?";
	}
	EXPECT_TRUE(answered) << "B went silent after A's flood" << d->Log();
	EXPECT_EQ(LogProblem(d->Log()), "") << d->Log();
	d->Stop(Scaled(15000));
	EXPECT_EQ(d->StopProblem(), "") << d->Log();
}

} // namespace
} // namespace e2e
