// --allow / --deny on every backend: a refused TCP peer is closed before any byte (the
// banner included) and counted as rejected_acl; a refused UDP datagram is dropped and
// counted as udp_refused_acl; IPv4-mapped peers of a dual-stack socket match IPv4
// rules. 127.0.0.2 stands for a second host: the loopback is all of 127/8 on Linux.
#include "fixture.h"
#include "udp.h"

namespace e2e
{
namespace
{

using AccessTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(AccessTest);

constexpr int kTimeoutMs = 5000;
constexpr int kQuietMs = 300; // how long "no answer" is waited for, after the count says so
const std::string kBanner = "hello from echod";

// Served: the banner (when given) and then the echo.
void ExpectServed(const std::string &host, int port, const std::string &src, bool banner)
{
	std::string error, got;
	Fd fd = Connect(host, port, kTimeoutMs, &error, src);
	ASSERT_TRUE(fd.valid()) << error;
	if (banner) {
		ASSERT_EQ(RecvExact(fd.get(), &got, kBanner.size() + 2, kTimeoutMs),
			  RecvStatus::kOk)
		    << "from " << src << " to " << host;
		EXPECT_EQ(got, kBanner + "\r\n");
	}
	EXPECT_TRUE(EchoOnce(fd.get(), "ping\n", kTimeoutMs, &error))
	    << "from " << src << " to " << host << ": " << error;
}

// Refused: closed at once, not one byte read, not even the banner.
void ExpectRefused(const std::string &host, int port, const std::string &src)
{
	std::string error;
	Fd fd = Connect(host, port, kTimeoutMs, &error, src);
	ASSERT_TRUE(fd.valid()) << error; // the kernel completes the handshake
	RecvStatus st = WaitClosed(fd.get(), kTimeoutMs);
	EXPECT_TRUE(st == RecvStatus::kEof || st == RecvStatus::kReset)
	    << "from " << src << " to " << host << ": " << ToString(st);
}

TEST_P(AccessTest, AnAllowListClosesEveryoneElseBeforeTheBanner)
{
	Daemon *d = StartDaemon({"--allow=127.0.0.1", "--banner=" + kBanner}, 2);
	ASSERT_NE(d, nullptr);
	ASSERT_NO_FATAL_FAILURE(ExpectRefused(kLoopback, d->port(), "127.0.0.2"));
	ASSERT_NO_FATAL_FAILURE(ExpectServed(kLoopback, d->port(), "127.0.0.1", true));
	ASSERT_NO_FATAL_FAILURE(ExpectRefused(kLoopback, d->port(), "127.0.0.3"));
	EXPECT_EQ(WaitCounter(d, "rejected_acl", 2, kTimeoutMs), 2u) << d->Log();
	EXPECT_EQ(Counters(d, kTimeoutMs)["accepted"], 1u);
}

// xinetd's rule: matched by both lists, the longer prefix decides.
TEST_P(AccessTest, TheMoreSpecificRuleWins)
{
	Daemon *d = StartDaemon({"--deny=127.0.0.0/8", "--allow=127.0.0.2", "--deny=127.0.0.3"}, 1);
	ASSERT_NE(d, nullptr);
	ASSERT_NO_FATAL_FAILURE(ExpectRefused(kLoopback, d->port(), "127.0.0.1"));
	ASSERT_NO_FATAL_FAILURE(ExpectServed(kLoopback, d->port(), "127.0.0.2", false));
	ASSERT_NO_FATAL_FAILURE(ExpectRefused(kLoopback, d->port(), "127.0.0.3"));
	EXPECT_EQ(WaitCounter(d, "rejected_acl", 2, kTimeoutMs), 2u) << d->Log();
}

// On a dual-stack listener IPv4 peers arrive as ::ffff:a.b.c.d: IPv4 rules hold for them,
// and IPv6 rules only for IPv6 peers.
TEST_P(AccessTest, MappedPeersOfADualStackSocketMatchIpv4Rules)
{
	if (!CanBind("::1"))
		GTEST_SKIP() << "::1 is not configured on this machine";
	Daemon *d = StartDaemon({"--allow=127.0.0.1", "--deny=::/0"}, 2, {":0"});
	ASSERT_NE(d, nullptr);
	ASSERT_NO_FATAL_FAILURE(ExpectServed(kLoopback, d->port(), "127.0.0.1", false));
	ASSERT_NO_FATAL_FAILURE(ExpectRefused(kLoopback, d->port(), "127.0.0.2"));
	ASSERT_NO_FATAL_FAILURE(ExpectRefused("::1", d->port(), ""));
	EXPECT_EQ(WaitCounter(d, "rejected_acl", 2, kTimeoutMs), 2u) << d->Log();
}

TEST_P(AccessTest, Ipv6RulesMatchIpv6Peers)
{
	if (!CanBind("::1"))
		GTEST_SKIP() << "::1 is not configured on this machine";
	Daemon *d = StartDaemon({"--allow=::1/128"}, 1, {":0"});
	ASSERT_NE(d, nullptr);
	ASSERT_NO_FATAL_FAILURE(ExpectServed("::1", d->port(), "", false));
	ASSERT_NO_FATAL_FAILURE(ExpectRefused(kLoopback, d->port(), "127.0.0.1"));
	EXPECT_EQ(WaitCounter(d, "rejected_acl", 1, kTimeoutMs), 1u) << d->Log();
}

// The other services go through the same admission.
TEST_P(AccessTest, OtherServicesAreRefusedToo)
{
	Daemon *d = StartDaemon({"--deny=127.0.0.2"}, 1, {"127.0.0.1:0/daytime"});
	ASSERT_NE(d, nullptr);
	ASSERT_NO_FATAL_FAILURE(ExpectRefused(kLoopback, d->port(), "127.0.0.2"));
	EXPECT_EQ(WaitCounter(d, "rejected_acl", 1, kTimeoutMs), 1u) << d->Log();
}

TEST_P(AccessTest, RefusedDatagramsAreDroppedAndCounted)
{
	Daemon *d = StartDaemon({"--allow=127.0.0.1/32"}, 1, {"udp:127.0.0.1:0"});
	ASSERT_NE(d, nullptr);
	std::string error, back;
	Fd other = UdpSocket("127.0.0.2", 0, &error);
	ASSERT_TRUE(other.valid()) << error;
	ASSERT_TRUE(UdpSendTo(other.get(), kLoopback, d->port(), "let me in"));
	EXPECT_EQ(WaitCounter(d, "udp_refused_acl", 1, kTimeoutMs), 1u) << d->Log();
	EXPECT_EQ(UdpRecv(other.get(), &back, kQuietMs), RecvStatus::kTimeout) << back;
	Fd fd = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(fd.valid()) << error;
	ASSERT_TRUE(UdpSendTo(fd.get(), kLoopback, d->port(), "allowed"));
	ASSERT_EQ(UdpRecv(fd.get(), &back, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(back, "allowed");
	EXPECT_TRUE(d->WaitForLog("refused by --allow / --deny", kTimeoutMs)) << d->Log();
}

} // namespace
} // namespace e2e
