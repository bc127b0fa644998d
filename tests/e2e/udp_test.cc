// UDP echo (RFC 862) on every backend: byte-exact answers of every size, the loop
// and reflection guard (low source ports, forged broadcast sources), the per-source
// rate limit, and many clients at once.
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "fixture.h"
#include "udp.h"

namespace e2e
{
namespace
{

using UdpTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(UdpTest);

constexpr int kTimeoutMs = 10000;
constexpr int kQuietMs = 300; // how long "no answer" is waited for, after the count says so

#define START_UDP(...) StartDaemon(__VA_ARGS__, {"udp:127.0.0.1:0"})

TEST_P(UdpTest, RandomSizesUpToTheMaximumAreAnsweredIdentically)
{
	Daemon *d = START_UDP({"--udp-rate=0"}, 2);
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd fd = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(fd.valid()) << error;
	std::mt19937_64 rng(7);
	std::vector<size_t> sizes = {1, 2, 65507, 65506, 1472, 1473, 8192, 8193};
	for (int i = 0; i < 120; i++)
		sizes.push_back(1 + rng() % 65507);
	for (size_t i = 0; i < sizes.size(); i++) {
		std::string msg = RandomBytes(sizes[i], i + 1), back;
		ASSERT_TRUE(UdpSendTo(fd.get(), kLoopback, d->port(), msg)) << sizes[i];
		ASSERT_EQ(UdpRecv(fd.get(), &back, kTimeoutMs), RecvStatus::kOk) << sizes[i];
		ASSERT_EQ(back.size(), msg.size());
		ASSERT_TRUE(back == msg)
		    << "datagram of " << sizes[i] << " bytes came back changed";
	}
	// io_uring counts an answer when its send completes, which may be after it arrived.
	EXPECT_EQ(WaitCounter(d, "udp_out", sizes.size(), kTimeoutMs), sizes.size());
	EXPECT_EQ(Counters(d, kTimeoutMs)["udp_in"], sizes.size());
}

TEST_P(UdpTest, SourcePortBelow1024IsNotAnsweredButCounted)
{
	Daemon *d = START_UDP({}, 1);
	ASSERT_NE(d, nullptr);
	std::string error, back;
	// Port 1023 on the first loopback address no test running beside this one holds.
	Fd low;
	for (int host = 1; host < 64 && !low.valid(); host++)
		low = UdpSocket("127.0.0." + std::to_string(host), 1023, &error);
	ASSERT_TRUE(low.valid()) << error;
	ASSERT_TRUE(UdpSendTo(low.get(), kLoopback, d->port(), "from a server port"));
	EXPECT_EQ(WaitCounter(d, "udp_refused_port", 1, kTimeoutMs), 1u) << d->Log();
	EXPECT_EQ(UdpRecv(low.get(), &back, kQuietMs), RecvStatus::kTimeout) << back;
	EXPECT_TRUE(d->WaitForLog("source port below 1024", kTimeoutMs)) << d->Log();
	// Everyone else is still answered.
	Fd fd = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(fd.valid()) << error;
	ASSERT_TRUE(UdpSendTo(fd.get(), kLoopback, d->port(), "ordinary"));
	ASSERT_EQ(UdpRecv(fd.get(), &back, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(back, "ordinary");
}

TEST_P(UdpTest, BroadcastAndMulticastSourcesAreNotAnsweredButCounted)
{
	Daemon *d = START_UDP({}, 1);
	ASSERT_NE(d, nullptr);
	std::string error;
	// (0.0.0.0 cannot be forged: the kernel fills in a raw socket's empty source.)
	for (const char *src : {"255.255.255.255", "224.0.0.251", "239.255.255.250"})
		ASSERT_TRUE(SendForgedUdp(src, 40000, kLoopback, d->port(), "forged", &error))
		    << error;
	EXPECT_EQ(WaitCounter(d, "udp_refused_addr", 3, kTimeoutMs), 3u) << d->Log();
	auto c = Counters(d, kTimeoutMs);
	EXPECT_EQ(c["udp_out"], 0u);
	EXPECT_EQ(c["udp_dropped"], 0u);
}

// Deterministic: a source that sends 3 x rate at once is answered for its bucket
// (rate) plus what refilled meanwhile (rate per second of the exchange), never more;
// the rest is refused and counted.
TEST_P(UdpTest, RateLimitHoldsForABurst)
{
	constexpr int kRate = 40, kSent = 3 * kRate;
	Daemon *d = START_UDP({"--udp-rate=" + std::to_string(kRate)}, 1);
	ASSERT_NE(d, nullptr);
	std::string error, back;
	Fd fd = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(fd.valid()) << error;
	auto start = std::chrono::steady_clock::now();
	for (int i = 0; i < kSent; i++)
		ASSERT_TRUE(
		    UdpSendTo(fd.get(), kLoopback, d->port(), "burst " + std::to_string(i)));
	// Every datagram is either answered or refused: wait for the counts to add up.
	uint64_t answered = 0, refused = 0;
	ASSERT_TRUE(WaitUntil(
	    [&] {
		    auto c = Counters(d, 2000);
		    answered = c["udp_out"];
		    refused = c["udp_refused_rate"];
		    return answered + refused == uint64_t(kSent);
	    },
	    kTimeoutMs, 20))
	    << answered << " answered, " << refused << " refused\n"
	    << d->Log();
	double secs =
	    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	int got = 0;
	while (UdpRecv(fd.get(), &back, got < int(answered) ? kTimeoutMs : kQuietMs) ==
	       RecvStatus::kOk)
		got++;
	EXPECT_EQ(uint64_t(got), answered);
	EXPECT_GE(answered, uint64_t(kRate)) << "the bucket starts full";
	EXPECT_LE(double(answered), kRate + kRate * secs + 1) << "over " << secs << " s";
	EXPECT_GE(refused, 1u);
}

// Echo amplifies nothing, so with the default options a client that sends its next
// datagram when the answer came (ping-style) is never held back by --udp-rate.
TEST_P(UdpTest, SequentialPingPongWithTheDefaultsLosesNothing)
{
	constexpr int kCount = 1000;
	Daemon *d = START_UDP({}, 2);
	ASSERT_NE(d, nullptr);
	std::string error, back;
	Fd fd = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(fd.valid()) << error;
	for (int i = 0; i < kCount; i++) {
		std::string msg =
		    "ping " + std::to_string(i) + " " + RandomBytes(i % 200, uint64_t(i));
		ASSERT_TRUE(UdpSendTo(fd.get(), kLoopback, d->port(), msg)) << i;
		ASSERT_EQ(UdpRecv(fd.get(), &back, kTimeoutMs), RecvStatus::kOk)
		    << "datagram " << i << " not answered\n"
		    << d->Log();
		ASSERT_EQ(back, msg) << i;
	}
	auto c = Counters(d, kTimeoutMs);
	EXPECT_EQ(c["udp_refused_rate"], 0u);
	EXPECT_EQ(c["udp_in"], uint64_t(kCount));
}

// Chargen answers a 1-byte request with 444 bytes: each answer costs 444 tokens, so the
// default rate lets a source have about 10000 / 444 of them a second, not 10000.
TEST_P(UdpTest, ChargenStaysStrictWithTheDefaults)
{
	constexpr int kSent = 200;
	Daemon *d = StartDaemon({}, 1, {"udp:127.0.0.1:0/chargen"});
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd fd = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(fd.valid()) << error;
	auto start = std::chrono::steady_clock::now();
	for (int i = 0; i < kSent; i++)
		ASSERT_TRUE(UdpSendTo(fd.get(), kLoopback, d->port(), "x"));
	uint64_t answered = 0, refused = 0;
	ASSERT_TRUE(WaitUntil(
	    [&] {
		    auto c = Counters(d, 2000);
		    answered = c["udp_out"];
		    refused = c["udp_refused_rate"];
		    return answered + refused + c["udp_dropped"] == uint64_t(kSent);
	    },
	    kTimeoutMs, 20))
	    << answered << " answered, " << refused << " refused\n"
	    << d->Log();
	double secs =
	    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	EXPECT_GE(answered, 1u);
	EXPECT_LE(double(answered), (10000 + 10000 * secs) / 444 + 2) << "over " << secs << " s";
	EXPECT_GE(refused, uint64_t(kSent) / 2);
}

// One datagram of a client that shares the daemon with many others: UDP may drop it
// (a worker slowed down, valgrind say, lets its receive queue overflow), so an
// unanswered datagram is sent again, up to kTries times in all. What is judged is
// the answers: each must be byte-identical to a datagram this client sent. A late
// answer to an earlier one is skipped; anything else came back changed.
std::string EchoOneOfMany(int fd, int port, const std::vector<std::string> &sent, int k)
{
	constexpr int kTries = 4;
	const std::string &msg = sent.back();
	for (int attempt = 0; attempt < kTries; attempt++) {
		if (!UdpSendTo(fd, kLoopback, port, msg))
			return "send failed";
		std::string back;
		while (UdpRecv(fd, &back, kTimeoutMs / kTries) == RecvStatus::kOk) {
			if (back == msg)
				return "";
			if (std::find(sent.begin(), sent.end(), back) == sent.end())
				return "datagram " + std::to_string(k) + " came back changed";
		}
	}
	return "no answer to datagram " + std::to_string(k) + " in " + std::to_string(kTries) +
	       " tries";
}

TEST_P(UdpTest, ManyClientsAtOnce)
{
	constexpr int kClients = 64, kEach = 25;
	Daemon *d = START_UDP({"--udp-rate=0"}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<std::string> errors(kClients);
	std::vector<std::thread> threads;
	for (int i = 0; i < kClients; i++) {
		threads.emplace_back([&, i] {
			std::string error;
			std::vector<std::string> sent;
			Fd fd = UdpSocket(kLoopback, 0, &error);
			for (int k = 0; fd.valid() && k < kEach && error.empty(); k++) {
				sent.push_back(
				    RandomBytes(1 + (size_t(i) * 131 + size_t(k) * 977) % 4000,
						uint64_t(i * kEach + k)));
				error = EchoOneOfMany(fd.get(), d->port(), sent, k);
			}
			errors[size_t(i)] = fd.valid() ? error : "no socket: " + error;
		});
	}
	for (auto &t : threads)
		t.join();
	for (int i = 0; i < kClients; i++)
		EXPECT_EQ(errors[size_t(i)], "") << "client " << i;
}

} // namespace
} // namespace e2e
