// The UDP loop and reflection guard and the per-source token buckets: pure logic.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "echod/udp.h"

namespace
{

sockaddr_storage V4(const char *addr, int port)
{
	sockaddr_storage ss{};
	auto *in = reinterpret_cast<sockaddr_in *>(&ss);
	in->sin_family = AF_INET;
	in->sin_port = htons(uint16_t(port));
	EXPECT_EQ(inet_pton(AF_INET, addr, &in->sin_addr), 1) << addr;
	return ss;
}

sockaddr_storage V6(const char *addr, int port)
{
	sockaddr_storage ss{};
	auto *in6 = reinterpret_cast<sockaddr_in6 *>(&ss);
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(uint16_t(port));
	EXPECT_EQ(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1) << addr;
	return ss;
}

enum udp_verdict Guard(const sockaddr_storage &ss)
{
	socklen_t len = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
	return udp_guard(reinterpret_cast<const sockaddr *>(&ss), len);
}

struct GuardCase {
	const char *name;
	sockaddr_storage src;
	enum udp_verdict want;
};

class UdpGuard : public ::testing::TestWithParam<GuardCase>
{
};

TEST_P(UdpGuard, Verdict)
{
	EXPECT_EQ(Guard(GetParam().src), GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Udp, UdpGuard,
    ::testing::Values(GuardCase{"Ordinary", V4("192.0.2.1", 40000), UDP_ANSWER},
		      GuardCase{"Port1024IsAnswered", V4("192.0.2.1", 1024), UDP_ANSWER},
		      GuardCase{"Port1023", V4("192.0.2.1", 1023), UDP_REFUSED_PORT},
		      GuardCase{"EchoPort", V4("192.0.2.1", 7), UDP_REFUSED_PORT},
		      GuardCase{"ChargenPort", V4("192.0.2.1", 19), UDP_REFUSED_PORT},
		      GuardCase{"PortZero", V4("192.0.2.1", 0), UDP_REFUSED_PORT},
		      GuardCase{"LimitedBroadcast", V4("255.255.255.255", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"Multicast", V4("224.0.0.1", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"MulticastTop", V4("239.255.255.255", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"Reserved", V4("240.0.0.1", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"Unspecified", V4("0.0.0.0", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"ThisNetwork", V4("0.1.2.3", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"LastUnicast", V4("223.255.255.254", 40000), UDP_ANSWER},
		      GuardCase{"AddressBeforePort", V4("255.255.255.255", 7), UDP_REFUSED_ADDR},
		      GuardCase{"V6Ordinary", V6("2001:db8::1", 40000), UDP_ANSWER},
		      GuardCase{"V6LowPort", V6("2001:db8::1", 53), UDP_REFUSED_PORT},
		      GuardCase{"V6Unspecified", V6("::", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"V6Multicast", V6("ff02::1", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"V6Loopback", V6("::1", 40000), UDP_ANSWER},
		      GuardCase{"MappedOrdinary", V6("::ffff:192.0.2.1", 40000), UDP_ANSWER},
		      GuardCase{"MappedBroadcast", V6("::ffff:255.255.255.255", 40000),
				UDP_REFUSED_ADDR},
		      GuardCase{"MappedMulticast", V6("::ffff:224.0.0.9", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"MappedUnspecified", V6("::ffff:0.0.0.0", 40000), UDP_REFUSED_ADDR},
		      GuardCase{"MappedLowPort", V6("::ffff:192.0.2.1", 19), UDP_REFUSED_PORT}),
    [](const ::testing::TestParamInfo<GuardCase> &info) { return std::string(info.param.name); });

TEST(UdpGuard, NoAddressIsRefused)
{
	sockaddr_storage ss{};
	ss.ss_family = AF_UNIX;
	EXPECT_EQ(udp_guard(reinterpret_cast<const sockaddr *>(&ss), sizeof(ss)), UDP_REFUSED_ADDR);
	ss.ss_family = AF_INET;
	EXPECT_EQ(udp_guard(reinterpret_cast<const sockaddr *>(&ss), 4), UDP_REFUSED_ADDR);
}

struct Key {
	uint8_t b[16];
	explicit Key(unsigned n)
	{
		memset(b, 0, sizeof(b));
		memcpy(b + 12, &n, sizeof(n));
	}
};

class UdpRate : public ::testing::Test
{
      protected:
	void TearDown() override
	{
		udp_rate_fini(&r);
	}
	int Take(unsigned who, uint64_t at, int times, unsigned cost = 1)
	{
		int ok = 0;
		Key k(who);
		for (int i = 0; i < times; i++)
			ok += udp_rate_take(&r, k.b, at, cost);
		return ok;
	}
	udp_ratelimit r{};
};

TEST_F(UdpRate, ABurstGetsTheBucketThenNothing)
{
	ASSERT_EQ(udp_rate_init(&r, 10, 64, 1), 0);
	EXPECT_EQ(Take(1, 1000, 30), 10);
	EXPECT_EQ(Take(1, 1000, 5), 0);
}

TEST_F(UdpRate, RefillsAtTheRate)
{
	ASSERT_EQ(udp_rate_init(&r, 10, 64, 1), 0);
	EXPECT_EQ(Take(1, 1000, 10), 10);
	EXPECT_EQ(Take(1, 1099, 1), 0);	  // 0.99 of a token
	EXPECT_EQ(Take(1, 1100, 1), 1);	  // one token after 100 ms
	EXPECT_EQ(Take(1, 1600, 10), 5);  // five after 500 ms more
	EXPECT_EQ(Take(1, 9000, 30), 10); // never more than the bucket holds
}

TEST_F(UdpRate, ThreeTimesTheRateInOneSecondGetsAtMostRatePlusBurst)
{
	constexpr int kRate = 50;
	ASSERT_EQ(udp_rate_init(&r, kRate, 64, 1), 0);
	int ok = 0;
	for (int i = 0; i < 3 * kRate; i++)
		ok += Take(7, 1 + uint64_t(i) * 1000 / (3 * kRate), 1);
	EXPECT_LE(ok, 2 * kRate);
	EXPECT_GE(ok, kRate);
}

TEST_F(UdpRate, SourcesHaveTheirOwnBuckets)
{
	ASSERT_EQ(udp_rate_init(&r, 3, 64, 1), 0);
	EXPECT_EQ(Take(1, 10, 5), 3);
	EXPECT_EQ(Take(2, 10, 5), 3);
	EXPECT_EQ(Take(1, 10, 1), 0);
}

TEST_F(UdpRate, ZeroIsOff)
{
	ASSERT_EQ(udp_rate_init(&r, 0, 64, 1), 0);
	EXPECT_EQ(Take(1, 10, 100000), 100000);
}

TEST_F(UdpRate, TheTableIsBoundedAndForgetsTheStalest)
{
	constexpr unsigned kEntries = 16;
	ASSERT_EQ(udp_rate_init(&r, 2, kEntries, 1), 0);
	EXPECT_EQ(Take(1, 10, 2), 2);
	// Many more sources than slots, all more recent than source 1.
	for (unsigned who = 100; who < 100 + 20 * kEntries; who++)
		EXPECT_EQ(Take(who, 20, 1), 1);
	// Forgotten, source 1 starts again with a full bucket; no memory was added.
	EXPECT_EQ(Take(1, 30, 5), 2);
	EXPECT_EQ(r.mask, kEntries - 1);
}

// An answer K times its request's size costs K: amplification is what the rate caps.
TEST(UdpAnswerCost, IsTheAmplificationRoundedUp)
{
	EXPECT_EQ(udp_answer_cost(5, 5), 1u); // echo
	EXPECT_EQ(udp_answer_cost(0, 0), 1u); // an empty echo
	EXPECT_EQ(udp_answer_cost(65507, 65507), 1u);
	EXPECT_EQ(udp_answer_cost(1000, 10), 1u); // smaller answers cost one too
	EXPECT_EQ(udp_answer_cost(1, 444), 444u); // chargen to one byte
	EXPECT_EQ(udp_answer_cost(0, 444), 444u); // an empty request counts as one byte
	EXPECT_EQ(udp_answer_cost(100, 444), 5u); // 4.44, rounded up
	EXPECT_EQ(udp_answer_cost(444, 444), 1u); // chargen to a request its size
	EXPECT_EQ(udp_answer_cost(0, 26), 26u);	  // daytime
}

TEST_F(UdpRate, CostlyAnswersTakeTheirCostAndLeaveADebt)
{
	ASSERT_EQ(udp_rate_init(&r, 10, 64, 1), 0);
	EXPECT_EQ(Take(1, 1000, 2, 5), 2); // 10 -> 5 -> 0
	EXPECT_EQ(Take(1, 1000, 1, 5), 0);
	EXPECT_EQ(Take(1, 1100, 1, 5), 1); // one token back: allowed, now 4 in debt
	EXPECT_EQ(Take(1, 1550, 1, 1), 0); // 0.5 token: the debt is not paid yet
	EXPECT_EQ(Take(1, 1600, 1, 1), 1); // 500 ms after: 1 token
}

TEST_F(UdpRate, AnAnswerCostingMoreThanTheBucketIsRareNotImpossible)
{
	ASSERT_EQ(udp_rate_init(&r, 10, 64, 1), 0);
	EXPECT_EQ(Take(1, 1000, 1, 444), 1); // 10 - 444 = -434
	EXPECT_EQ(Take(1, 1000 + 43400, 1, 444), 0);
	EXPECT_EQ(Take(1, 1000 + 43500, 1, 444), 1); // 435 tokens later
	EXPECT_EQ(Take(1, 1000 + 43500, 1, 1), 0);
}

TEST_F(UdpRate, LargeRatesDoNotOverflow)
{
	ASSERT_EQ(udp_rate_init(&r, 1000000, 64, 1), 0);
	EXPECT_EQ(Take(1, 1, 1000000), 1000000);
	EXPECT_EQ(Take(1, 1, 1), 0);
	EXPECT_EQ(Take(1, uint64_t(1) << 60, 1), 1);
}

} // namespace
