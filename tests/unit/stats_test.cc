// stats: the shared counter mapping; net: address formatting.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "echod/net.h"
#include "echod/stats.h"

namespace
{

struct StatsDeleter {
	void operator()(struct stats_shared *sh) const
	{
		stats_destroy(sh);
	}
};
using Stats = std::unique_ptr<struct stats_shared, StatsDeleter>;

Stats Create(unsigned nslots, unsigned ip_buckets)
{
	Stats sh(stats_create(nslots, ip_buckets));

	EXPECT_NE(sh, nullptr);
	return sh;
}

std::string Format(const uint64_t *v, size_t outlen = 1024)
{
	std::string out(outlen, '\xff');

	stats_format(v, out.data(), outlen);
	EXPECT_LT(strlen(out.c_str()), outlen);
	return out.c_str();
}

// --- stats ---

TEST(Stats, SlotsOwnTheirCacheLines)
{
	EXPECT_EQ(sizeof(struct stats_slot) % 64, 0u);
	EXPECT_EQ(sizeof(struct stats_shared) % 64, 0u);
	for (unsigned buckets : {0u, 1024u}) {
		Stats sh = Create(3, buckets);

		ASSERT_NE(sh, nullptr);
		EXPECT_EQ(sh->nslots, 3u);
		EXPECT_EQ(sh->ip_buckets, buckets);
		for (unsigned s = 0; s < 3; s++) {
			EXPECT_EQ(reinterpret_cast<uintptr_t>(&sh->slots[s]) % 64, 0u) << s;
			EXPECT_EQ(sh->slots[s].state, SLOT_FREE);
			EXPECT_EQ(stats_get(&sh->slots[s], STAT_accepted), 0u);
		}
	}
}

TEST(Stats, AddGetAndHeartbeat)
{
	Stats sh = Create(2, 0);
	struct stats_slot *s = &sh->slots[1];

	stats_add(s, STAT_accepted, 1);
	stats_add(s, STAT_accepted, 2);
	stats_add(s, STAT_bytes_in, 1u << 20);
	EXPECT_EQ(stats_get(s, STAT_accepted), 3u);
	EXPECT_EQ(stats_get(s, STAT_bytes_in), 1u << 20);
	EXPECT_EQ(stats_get(&sh->slots[0], STAT_accepted), 0u) << "slots are separate";
	stats_heartbeat(s, 1234);
	EXPECT_EQ(s->heartbeat, 1234u);
}

// A listener's row counts beside the worker's total; listeners past the last row
// share it, so the mapping stays bounded whatever LISTEN_FDS holds.
TEST(Stats, PerListenerRows)
{
	Stats sh = Create(1, 0);
	struct stats_slot *s = &sh->slots[0];

	EXPECT_LE(sizeof(struct stats_slot), 1024u);
	stats_add2(s, STAT_accepted, 0, LSTAT_accepted, 1);
	stats_add2(s, STAT_accepted, 2, LSTAT_accepted, 1);
	stats_add2(s, STAT_bytes_in, 2, LSTAT_bytes_in, 100);
	stats_add2(s, STAT_bytes_in, STATS_LISTENERS + 5, LSTAT_bytes_in, 7);
	EXPECT_EQ(stats_get(s, STAT_accepted), 2u);
	EXPECT_EQ(stats_get(s, STAT_bytes_in), 107u);
	EXPECT_EQ(stats_lget(s, 0, LSTAT_accepted), 1u);
	EXPECT_EQ(stats_lget(s, 2, LSTAT_accepted), 1u);
	EXPECT_EQ(stats_lget(s, 2, LSTAT_bytes_in), 100u);
	EXPECT_EQ(stats_lget(s, STATS_LISTENERS - 1, LSTAT_bytes_in), 7u);
	EXPECT_EQ(stats_lrow(STATS_LISTENERS), unsigned(STATS_LISTENERS - 1));
	for (int c = 0; c < LSTAT_COUNT; c++)
		EXPECT_STREQ(stats_lname(stats_lcounter(c)),
			     stats_name(stats_lbase(stats_lcounter(c))));
}

TEST(Stats, SumAddsSlotsAndRetired)
{
	Stats sh = Create(3, 0);
	uint64_t retired[STAT_COUNT] = {}, out[STAT_COUNT];

	for (unsigned s = 0; s < 3; s++)
		stats_add(&sh->slots[s], STAT_accepted, s + 1);
	stats_add(&sh->slots[2], STAT_zc_sends, 7);
	stats_sum(sh.get(), nullptr, out);
	EXPECT_EQ(out[STAT_accepted], 6u);
	EXPECT_EQ(out[STAT_zc_sends], 7u);
	EXPECT_EQ(out[STAT_open], 0u);

	retired[STAT_accepted] = 100;
	retired[STAT_closed_eof] = 5;
	stats_sum(sh.get(), retired, out);
	EXPECT_EQ(out[STAT_accepted], 106u);
	EXPECT_EQ(out[STAT_closed_eof], 5u);
	EXPECT_EQ(out[STAT_zc_sends], 7u);
}

TEST(Stats, FormatNamesEveryCounter)
{
	uint64_t v[STAT_COUNT] = {};

	v[STAT_accepted] = 12;
	v[STAT_zc_sends] = 18446744073709551615ull;
	std::string text = Format(v);
	EXPECT_EQ(text.rfind("accepted=12 open=0 closed_eof=0 ", 0), 0u) << text;
	EXPECT_NE(text.find(" zc_sends=18446744073709551615"), std::string::npos) << text;
	for (int c = 0; c < STAT_COUNT; c++)
		EXPECT_NE(
		    text.find(std::string(stats_name(static_cast<enum stats_counter>(c))) + "="),
		    std::string::npos)
		    << c;
	EXPECT_NE(text.back(), ' ') << "no trailing space";
}

TEST(Stats, FormatTruncatesSafely)
{
	uint64_t v[STAT_COUNT] = {};

	EXPECT_EQ(Format(v, 12), "accepted=0 ");
	EXPECT_EQ(Format(v, 1), "");
}

TEST(Stats, IpBucketsDoNotOverlap)
{
	constexpr unsigned kSlots = 3, kBuckets = 1024;
	Stats sh = Create(kSlots, kBuckets);
	uint32_t *global = stats_ip_global(sh.get());

	EXPECT_GE(reinterpret_cast<char *>(global),
		  reinterpret_cast<char *>(&sh->slots[kSlots - 1] + 1));
	EXPECT_EQ(stats_ip_local(sh.get(), 0), global + kBuckets);
	for (unsigned s = 1; s < kSlots; s++)
		EXPECT_EQ(stats_ip_local(sh.get(), s), stats_ip_local(sh.get(), s - 1) + kBuckets);
	// Every bucket of every array is mapped and distinct: write them all, read back.
	global[kBuckets - 1] = 0xfffffffe;
	for (unsigned s = 0; s < kSlots; s++) {
		stats_ip_local(sh.get(), s)[0] = s + 1;
		stats_ip_local(sh.get(), s)[kBuckets - 1] = s + 100;
	}
	EXPECT_EQ(global[kBuckets - 1], 0xfffffffeu);
	for (unsigned s = 0; s < kSlots; s++) {
		EXPECT_EQ(stats_ip_local(sh.get(), s)[0], s + 1);
		EXPECT_EQ(stats_ip_local(sh.get(), s)[kBuckets - 1], s + 100);
	}
	EXPECT_EQ(stats_get(&sh->slots[kSlots - 1], STAT_zc_sends), 0u);
}

// --- net_format_addr ---

std::string FormatAddr(const struct sockaddr *sa, socklen_t len)
{
	char out[INET6_ADDRSTRLEN + 16];

	net_format_addr(sa, len, out, sizeof(out));
	return out;
}

std::string V4(const char *addr, uint16_t port)
{
	struct sockaddr_in in = {};

	in.sin_family = AF_INET;
	in.sin_port = htons(port);
	EXPECT_EQ(inet_pton(AF_INET, addr, &in.sin_addr), 1);
	return FormatAddr(reinterpret_cast<struct sockaddr *>(&in), sizeof(in));
}

std::string V6(const char *addr, uint16_t port)
{
	struct sockaddr_in6 in6 = {};

	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(port);
	EXPECT_EQ(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
	return FormatAddr(reinterpret_cast<struct sockaddr *>(&in6), sizeof(in6));
}

TEST(NetFormatAddr, Families)
{
	EXPECT_EQ(V4("127.0.0.1", 7), "127.0.0.1:7");
	EXPECT_EQ(V4("0.0.0.0", 65535), "0.0.0.0:65535");
	EXPECT_EQ(V6("::1", 7), "[::1]:7");
	EXPECT_EQ(V6("::", 0), "[::]:0");
	EXPECT_EQ(V6("2001:db8::1:2", 8080), "[2001:db8::1:2]:8080");
	EXPECT_EQ(V6("::ffff:10.1.2.3", 9), "10.1.2.3:9");

	struct sockaddr un = {};
	un.sa_family = AF_UNIX;
	EXPECT_EQ(FormatAddr(&un, sizeof(un)), "(family 1)");
}

} // namespace
