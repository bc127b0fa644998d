// limits: admission against --max-conns, --max-conns-per-ip and --conn-rate over a fake
// shared area, and the client key of every per-address limit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "echod/limits.h"
#include "echod/net.h"

namespace
{

using Key = std::array<uint8_t, 16>;

constexpr uint32_t kSeed = 0x5eed862u;

// What the supervisor maps: the total and the global buckets.
struct Shared {
	explicit Shared(unsigned per_ip) : global(limits_buckets(per_ip))
	{
	}
	uint64_t total = 0;
	std::vector<uint32_t> global;
};

// One worker process: its open gauge, its share of each bucket, its view of the limits.
struct Process {
	Process(Shared &sh, unsigned max_conns, unsigned per_ip) : local(sh.global.size())
	{
		l.max_conns = max_conns;
		l.max_per_ip = per_ip;
		l.total = &sh.total;
		l.open = &open;
		l.ip_global = sh.global.empty() ? nullptr : sh.global.data();
		l.ip_local = local.empty() ? nullptr : local.data();
		l.ip_mask = sh.global.empty() ? 0 : static_cast<uint32_t>(sh.global.size() - 1);
		l.seed = kSeed;
	}
	Process(const Process &) = delete;
	Process &operator=(const Process &) = delete;
	enum limits_verdict Admit(const Key &k, struct limits_ticket *t)
	{
		return limits_admit(&l, k.data(), t);
	}
	void Release(struct limits_ticket *t)
	{
		limits_release(&l, t);
	}

	uint64_t open = 0;
	std::vector<uint32_t> local;
	struct limits l = {};
};

Key V4(const char *addr)
{
	struct sockaddr_in in = {};
	Key k;

	in.sin_family = AF_INET;
	EXPECT_EQ(inet_pton(AF_INET, addr, &in.sin_addr), 1) << addr;
	net_addr_key(reinterpret_cast<struct sockaddr *>(&in), k.data());
	return k;
}

Key V6(const char *addr)
{
	struct sockaddr_in6 in6 = {};
	Key k;

	in6.sin6_family = AF_INET6;
	EXPECT_EQ(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1) << addr;
	net_addr_key(reinterpret_cast<struct sockaddr *>(&in6), k.data());
	return k;
}

Key V4(uint32_t host_order)
{
	struct in_addr a;
	char text[INET_ADDRSTRLEN];

	a.s_addr = htonl(host_order);
	inet_ntop(AF_INET, &a, text, sizeof(text));
	return V4(text);
}

// Admits until refused; returns the tickets admitted and the verdict that stopped it.
std::vector<struct limits_ticket> AdmitAll(Process &p, const Key &k, enum limits_verdict *stop)
{
	std::vector<struct limits_ticket> admitted;
	struct limits_ticket t;

	for (int i = 0; i < 1000; i++) {
		*stop = p.Admit(k, &t);
		if (*stop != LIMITS_OK)
			break;
		EXPECT_EQ(t.admitted, 1u);
		admitted.push_back(t);
	}
	return admitted;
}

bool AllZero(const std::vector<uint32_t> &v)
{
	return std::all_of(v.begin(), v.end(), [](uint32_t x) { return x == 0; });
}

TEST(Limits, BucketsOnlyWithAPerAddressLimit)
{
	EXPECT_EQ(limits_buckets(0), 0u);
	unsigned n = limits_buckets(5);
	EXPECT_GT(n, 0u);
	EXPECT_EQ(n & (n - 1), 0u) << "a power of two";
}

TEST(Limits, MaxConnsAdmitsExactlyN)
{
	Shared sh(0);
	Process p(sh, 3, 0);
	enum limits_verdict stop;
	std::vector<struct limits_ticket> tickets = AdmitAll(p, V4("10.0.0.1"), &stop);

	EXPECT_EQ(tickets.size(), 3u);
	EXPECT_EQ(stop, LIMITS_MAX_CONNS);
	EXPECT_EQ(sh.total, 3u);
	EXPECT_EQ(p.open, 3u);

	struct limits_ticket t;
	EXPECT_EQ(p.Admit(V4("10.0.0.2"), &t), LIMITS_MAX_CONNS);
	EXPECT_EQ(t.admitted, 0u);
	p.Release(&tickets[0]);
	EXPECT_EQ(tickets[0].admitted, 0u);
	EXPECT_EQ(sh.total, 2u);
	EXPECT_EQ(p.Admit(V4("10.0.0.2"), &t), LIMITS_OK);
	EXPECT_EQ(sh.total, 3u);
}

TEST(Limits, PerAddressAdmitsNThenRefuses)
{
	Shared sh(2);
	Process p(sh, 0, 2);
	enum limits_verdict stop;
	std::vector<struct limits_ticket> a = AdmitAll(p, V4("10.0.0.1"), &stop);

	EXPECT_EQ(a.size(), 2u);
	EXPECT_EQ(stop, LIMITS_PER_IP);
	EXPECT_EQ(sh.total, 2u) << "a refusal gives its count back";
	EXPECT_EQ(p.open, 2u);

	struct limits_ticket t;
	EXPECT_EQ(p.Admit(V4("10.0.0.2"), &t), LIMITS_OK) << "another address";
	p.Release(&t);
	p.Release(&a[1]);
	EXPECT_EQ(p.Admit(V4("10.0.0.1"), &t), LIMITS_OK) << "a release makes room";
	EXPECT_EQ(p.Admit(V4("10.0.0.1"), &t), LIMITS_PER_IP);
}

TEST(Limits, BothLimitsTogether)
{
	Shared sh(2);
	Process p(sh, 3, 2);
	struct limits_ticket t;

	EXPECT_EQ(p.Admit(V4("10.0.0.1"), &t), LIMITS_OK);
	EXPECT_EQ(p.Admit(V4("10.0.0.1"), &t), LIMITS_OK);
	EXPECT_EQ(p.Admit(V4("10.0.0.1"), &t), LIMITS_PER_IP);
	EXPECT_EQ(p.Admit(V4("10.0.0.2"), &t), LIMITS_OK);
	EXPECT_EQ(p.Admit(V4("10.0.0.2"), &t), LIMITS_MAX_CONNS);
	EXPECT_EQ(sh.total, 3u);
}

TEST(Limits, Ipv4AndMappedIpv6AreOneAddress)
{
	EXPECT_EQ(V4("192.0.2.7"), V6("::ffff:192.0.2.7"));
	EXPECT_NE(V4("192.0.2.7"), V6("::192.0.2.7"));
	EXPECT_NE(V6("::1"), V6("::2"));

	Shared sh(1);
	Process p(sh, 0, 1);
	struct limits_ticket t;

	EXPECT_EQ(p.Admit(V4("192.0.2.7"), &t), LIMITS_OK);
	EXPECT_EQ(p.Admit(V6("::ffff:192.0.2.7"), &t), LIMITS_PER_IP);
	EXPECT_EQ(p.Admit(V6("2001:db8::7"), &t), LIMITS_OK);
}

TEST(Limits, ProcessesShareThePerAddressLimit)
{
	Shared sh(3);
	Process a(sh, 0, 3), b(sh, 0, 3);
	Key k = V4("10.9.8.7");
	struct limits_ticket ta1, ta2, tb1, tb2;

	EXPECT_EQ(a.Admit(k, &ta1), LIMITS_OK);
	EXPECT_EQ(a.Admit(k, &ta2), LIMITS_OK);
	EXPECT_EQ(b.Admit(k, &tb1), LIMITS_OK);
	EXPECT_EQ(b.Admit(k, &tb2), LIMITS_PER_IP);
	a.Release(&ta1);
	EXPECT_EQ(b.Admit(k, &tb2), LIMITS_OK);
	EXPECT_EQ(sh.total, 3u);
	EXPECT_EQ(a.open, 1u);
	EXPECT_EQ(b.open, 2u);
}

TEST(Limits, ReapGivesBackExactlyTheDeadProcessShare)
{
	Shared sh(100);
	Process a(sh, 0, 100), b(sh, 0, 100);
	struct limits_ticket ta, tb;

	for (uint32_t i = 0; i < 50; i++) {
		EXPECT_EQ(a.Admit(V4(0x0a000000u + i % 7), &ta), LIMITS_OK);
		if (i % 3 == 0) {
			EXPECT_EQ(b.Admit(V4(0x0a000000u + i % 5), &tb), LIMITS_OK);
		}
		if (i % 4 == 0)
			a.Release(&ta);
	}
	ASSERT_GT(a.open, 0u);
	ASSERT_GT(b.open, 0u);
	limits_reap(&sh.total, a.open, sh.global.data(), a.local.data(),
		    static_cast<unsigned>(sh.global.size()));
	EXPECT_EQ(sh.total, b.open);
	EXPECT_EQ(sh.global, b.local);
	EXPECT_TRUE(AllZero(a.local));
}

TEST(Limits, ReleasingANonAdmittedTicketIsANoOp)
{
	Shared sh(1);
	Process p(sh, 0, 1);
	Key k = V4("10.0.0.1");
	struct limits_ticket ok, refused, zero = {};

	ASSERT_EQ(p.Admit(k, &ok), LIMITS_OK);
	ASSERT_EQ(p.Admit(k, &refused), LIMITS_PER_IP);
	EXPECT_EQ(refused.admitted, 0u);
	p.Release(&refused);
	p.Release(&zero);
	EXPECT_EQ(sh.total, 1u);
	EXPECT_EQ(p.open, 1u);
	p.Release(&ok);
	p.Release(&ok); // twice: the second is a no-op
	EXPECT_EQ(sh.total, 0u);
	EXPECT_EQ(p.open, 0u);
	EXPECT_TRUE(AllZero(sh.global));
	EXPECT_TRUE(AllZero(p.local));
}

// Were both buckets of an address the same one, each admission would count twice and
// the address would get N / 2. Over 200000 addresses (about three hash collisions
// expected) the buckets always differ, and every address gets its N.
TEST(Limits, AnAddressAlwaysHasTwoDistinctBucketsAndGetsN)
{
	Shared sh(4);
	Process p(sh, 0, 4);
	struct limits_ticket t;

	for (uint32_t a = 0x0a000000u; a < 0x0a000000u + 200000u; a++) {
		ASSERT_EQ(p.Admit(V4(a), &t), LIMITS_OK);
		ASSERT_NE(t.b1, t.b2) << "address " << a;
		p.Release(&t);
	}
	for (uint32_t a = 0x0a000000u; a < 0x0a000000u + 64u; a++) {
		enum limits_verdict stop;
		std::vector<struct limits_ticket> held = AdmitAll(p, V4(a), &stop);

		EXPECT_EQ(held.size(), 4u) << "address " << a;
		EXPECT_EQ(stop, LIMITS_PER_IP);
		for (struct limits_ticket &h : held)
			p.Release(&h);
	}
}

// Four workers admitting and releasing one address at once never hold more than N.
TEST(Limits, ConcurrentAdmissionsNeverExceedTheLimit)
{
	constexpr unsigned kLimit = 3, kThreads = 4, kRounds = 10000;
	Shared sh(kLimit);
	std::vector<std::unique_ptr<Process>> procs;
	std::atomic<unsigned> held{0}, most{0};
	std::atomic<unsigned long> admitted{0};
	std::vector<std::thread> threads;
	Key k = V4("10.1.1.1");

	for (unsigned i = 0; i < kThreads; i++)
		procs.push_back(std::make_unique<Process>(sh, 0, kLimit));
	for (const std::unique_ptr<Process> &p : procs) {
		threads.emplace_back([&, pp = p.get()] {
			struct limits_ticket t;

			for (unsigned i = 0; i < kRounds; i++) {
				if (pp->Admit(k, &t) != LIMITS_OK)
					continue;
				unsigned now = held.fetch_add(1) + 1;
				unsigned seen = most.load();

				while (now > seen && !most.compare_exchange_weak(seen, now)) {
				}
				admitted++;
				held.fetch_sub(1);
				pp->Release(&t);
			}
		});
	}
	for (std::thread &th : threads)
		th.join();
	EXPECT_LE(most.load(), kLimit);
	EXPECT_GT(admitted.load(), 0u);
	EXPECT_EQ(held.load(), 0u);
	EXPECT_EQ(sh.total, 0u);
	EXPECT_TRUE(AllZero(sh.global));
	for (const std::unique_ptr<Process> &p : procs) {
		EXPECT_EQ(p->open, 0u);
		EXPECT_TRUE(AllZero(p->local));
	}
}

// --- the client key: IPv4 address, IPv4-mapped as IPv4, IPv6 by its /64 ---

Key ClientV4(const char *addr)
{
	struct sockaddr_in in = {};
	Key k;

	in.sin_family = AF_INET;
	EXPECT_EQ(inet_pton(AF_INET, addr, &in.sin_addr), 1) << addr;
	limits_key(reinterpret_cast<struct sockaddr *>(&in), k.data());
	return k;
}

Key ClientV6(const char *addr)
{
	struct sockaddr_in6 in6 = {};
	Key k;

	in6.sin6_family = AF_INET6;
	EXPECT_EQ(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1) << addr;
	limits_key(reinterpret_cast<struct sockaddr *>(&in6), k.data());
	return k;
}

TEST(LimitsKey, Ipv6ClientsAreTheirSlash64)
{
	EXPECT_EQ(ClientV6("2001:db8:1:2::1"), ClientV6("2001:db8:1:2:ffff:ffff:ffff:ffff"));
	EXPECT_EQ(ClientV6("2001:db8:1:2::1"), ClientV6("2001:db8:1:2::"));
	EXPECT_NE(ClientV6("2001:db8:1:2::1"), ClientV6("2001:db8:1:3::1"));
	EXPECT_NE(ClientV6("2001:db8:1:2::1"), ClientV6("2001:db9:1:2::1"));
	EXPECT_EQ(ClientV6("::1"), ClientV6("::2")) << "::/64 is one client too";
}

TEST(LimitsKey, Ipv4IsTheWholeAddressMappedOrNot)
{
	EXPECT_EQ(ClientV4("192.0.2.7"), ClientV6("::ffff:192.0.2.7"));
	EXPECT_NE(ClientV4("192.0.2.7"), ClientV4("192.0.2.8"));
	EXPECT_NE(ClientV6("::ffff:192.0.2.7"), ClientV6("::ffff:192.0.2.8"));
	EXPECT_EQ(ClientV4("192.0.2.7"), V4("192.0.2.7"));
}

TEST(LimitsKey, PerAddressLimitHoldsAcrossA64)
{
	Shared sh(2);
	Process p(sh, 0, 2);
	struct limits_ticket t;

	EXPECT_EQ(p.Admit(ClientV6("2001:db8::1"), &t), LIMITS_OK);
	EXPECT_EQ(p.Admit(ClientV6("2001:db8::2"), &t), LIMITS_OK);
	EXPECT_EQ(p.Admit(ClientV6("2001:db8::3"), &t), LIMITS_PER_IP) << "hopping inside a /64";
	EXPECT_EQ(p.Admit(ClientV6("2001:db8:0:1::1"), &t), LIMITS_OK) << "the next /64";
}

// --- --conn-rate: shared leaky buckets ---

struct RateArea {
	std::vector<uint64_t> cells = std::vector<uint64_t>(LIMITS_RATE_CELLS);
};

struct limits RateLimits(RateArea &area, unsigned rate)
{
	struct limits l = {};

	l.conn_rate = rate;
	l.rate_cells = area.cells.data();
	l.seed = kSeed;
	return l;
}

int Connects(const struct limits &l, const Key &k, uint64_t at, int times)
{
	int ok = 0;

	for (int i = 0; i < times; i++)
		ok += limits_rate(&l, k.data(), at) == LIMITS_OK;
	return ok;
}

TEST(LimitsRate, ZeroIsOff)
{
	RateArea area;
	struct limits l = RateLimits(area, 0);

	EXPECT_EQ(Connects(l, V4("10.0.0.1"), 5, 100000), 100000);
	l.conn_rate = 5;
	l.rate_cells = nullptr;
	EXPECT_EQ(Connects(l, V4("10.0.0.1"), 5, 1000), 1000);
}

TEST(LimitsRate, ABurstOfNThenNASecond)
{
	RateArea area;
	struct limits l = RateLimits(area, 10);
	Key k = V4("10.0.0.1");

	EXPECT_EQ(Connects(l, k, 1000, 30), 10);
	EXPECT_EQ(Connects(l, k, 1099, 1), 0);	  // 0.99 of a connection drained
	EXPECT_EQ(Connects(l, k, 1100, 5), 1);	  // one after 100 ms
	EXPECT_EQ(Connects(l, k, 1600, 10), 5);	  // five after 500 ms more
	EXPECT_EQ(Connects(l, k, 60000, 30), 10); // never more than the burst
}

// A refused connection takes its count back: a client over the rate still gets the
// rate through, not nothing.
TEST(LimitsRate, RefusalsDoNotCount)
{
	RateArea area;
	struct limits l = RateLimits(area, 10);
	Key k = V4("10.0.0.1");
	int ok = 0;

	for (uint64_t ms = 1; ms <= 10000; ms += 10)
		ok += Connects(l, k, ms, 5); // 500 attempts a second for 10 s
	EXPECT_GE(ok, 10 * 10);
	EXPECT_LE(ok, 10 * 10 + 10);
}

TEST(LimitsRate, ClientsHaveTheirOwnRateAndV6IsPer64)
{
	RateArea area;
	struct limits l = RateLimits(area, 3);

	EXPECT_EQ(Connects(l, V4("10.0.0.1"), 10, 5), 3);
	EXPECT_EQ(Connects(l, V4("10.0.0.2"), 10, 5), 3);
	EXPECT_EQ(Connects(l, ClientV6("2001:db8::1"), 10, 2), 2);
	EXPECT_EQ(Connects(l, ClientV6("2001:db8::ffff"), 10, 5), 1) << "the same /64";
	EXPECT_EQ(Connects(l, V4("10.0.0.1"), 10, 1), 0);
}

// Two workers share the cells: the rate is per client, all workers together.
TEST(LimitsRate, WorkersShareTheRate)
{
	RateArea area;
	struct limits a = RateLimits(area, 4), b = RateLimits(area, 4);
	Key k = V4("10.9.8.7");

	EXPECT_EQ(Connects(a, k, 100, 3), 3);
	EXPECT_EQ(Connects(b, k, 100, 3), 1);
	EXPECT_EQ(Connects(a, k, 100, 1), 0);
	EXPECT_EQ(Connects(b, k, 350, 3), 1) << "one drained in 250 ms";
}

// Another worker may read the clock a moment later and stamp a cell ahead of us; a
// cell idle for longer than the 32-bit ms stamp spans is drained, not stuck full.
TEST(LimitsRate, ClockSkewAndStampWrap)
{
	RateArea area;
	struct limits l = RateLimits(area, 2);
	Key k = V4("10.0.0.9");

	EXPECT_EQ(Connects(l, k, 5000, 1), 1);
	EXPECT_EQ(Connects(l, k, 4990, 1), 1) << "10 ms behind: no drain, no harm";
	EXPECT_EQ(Connects(l, k, 4995, 1), 0);
	uint64_t later = 5000 + (uint64_t(1) << 31) + 12345; // ~25 days idle
	EXPECT_EQ(Connects(l, k, later, 3), 2);
}

TEST(LimitsRate, ConcurrentWorkersNeverExceedTheBurst)
{
	constexpr unsigned kRate = 50, kThreads = 4;
	RateArea area;
	std::atomic<unsigned> ok{0};
	std::vector<std::thread> threads;
	Key k = V4("10.1.1.1");

	for (unsigned i = 0; i < kThreads; i++)
		threads.emplace_back([&] {
			struct limits l = RateLimits(area, kRate);
			ok += static_cast<unsigned>(Connects(l, k, 777, 1000));
		});
	for (std::thread &th : threads)
		th.join();
	// The same instant: at most the burst (a race may refuse early, never admit more).
	EXPECT_LE(ok.load(), kRate);
	EXPECT_GT(ok.load(), 0u);
}

} // namespace
