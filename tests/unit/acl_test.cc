// acl: CIDR parsing and formatting, the longest-prefix match, and xinetd's verdict
// (only_from / no_access) over the 16-byte address keys the workers use.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <array>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "echod/acl.h"
#include "echod/net.h"

namespace
{

using Key = std::array<uint8_t, 16>;

// The key of a peer, as the worker makes it from the accepted address.
Key Peer(const std::string &addr)
{
	struct sockaddr_storage ss = {};
	Key k;

	if (addr.find(':') == std::string::npos) {
		auto *in = reinterpret_cast<struct sockaddr_in *>(&ss);
		in->sin_family = AF_INET;
		EXPECT_EQ(inet_pton(AF_INET, addr.c_str(), &in->sin_addr), 1) << addr;
	} else {
		auto *in6 = reinterpret_cast<struct sockaddr_in6 *>(&ss);
		in6->sin6_family = AF_INET6;
		EXPECT_EQ(inet_pton(AF_INET6, addr.c_str(), &in6->sin6_addr), 1) << addr;
	}
	net_addr_key(reinterpret_cast<struct sockaddr *>(&ss), k.data());
	return k;
}

struct Lists {
	struct acl_list allow = {}, deny = {};

	Lists(const std::vector<std::string> &a, const std::vector<std::string> &d)
	{
		char why[256];

		for (const std::string &r : a)
			EXPECT_EQ(acl_add(&allow, r.c_str(), why, sizeof(why)), 0)
			    << r << ": " << why;
		for (const std::string &r : d)
			EXPECT_EQ(acl_add(&deny, r.c_str(), why, sizeof(why)), 0)
			    << r << ": " << why;
	}
	bool Permits(const std::string &addr) const
	{
		return acl_permits(&allow, &deny, Peer(addr).data()) == 1;
	}
};

std::string Canonical(const std::string &text)
{
	struct acl_rule r;
	char why[256], out[64];

	if (acl_parse(text.c_str(), &r, why, sizeof(why)) < 0)
		return std::string("error: ") + why;
	acl_format(&r, out, sizeof(out));
	return out;
}

TEST(AclParse, AcceptsCidrsAndBareAddresses)
{
	EXPECT_EQ(Canonical("192.0.2.0/24"), "192.0.2.0/24");
	EXPECT_EQ(Canonical("192.0.2.7"), "192.0.2.7/32");
	EXPECT_EQ(Canonical("0.0.0.0/0"), "0.0.0.0/0");
	EXPECT_EQ(Canonical("10.0.0.0/08"), "10.0.0.0/8");
	EXPECT_EQ(Canonical("2001:db8::/32"), "2001:db8::/32");
	EXPECT_EQ(Canonical("2001:DB8::1"), "2001:db8::1/128");
	EXPECT_EQ(Canonical("[2001:db8::1]"), "2001:db8::1/128");
	EXPECT_EQ(Canonical("[2001:db8::]/48"), "2001:db8::/48");
	EXPECT_EQ(Canonical("::/0"), "::/0");
	EXPECT_EQ(Canonical("::1"), "::1/128");
	// IPv4-mapped rules are IPv4 rules.
	EXPECT_EQ(Canonical("::ffff:10.0.0.0/104"), "10.0.0.0/8");
	EXPECT_EQ(Canonical("::ffff:192.0.2.7"), "192.0.2.7/32");
}

TEST(AclParse, RefusesWhatIsNotACidrSayingWhy)
{
	struct acl_rule r;
	char why[256];

	for (const char *bad : {"",
				"/",
				"/24",
				"10.0.0.0/",
				"10.0.0.0/33",
				"10.0.0.0/-1",
				"10.0.0.0/+8",
				"10.0.0.0/8/8",
				"10.0.0",
				"10.0.0.256",
				"300.0.0.0/8",
				"localhost",
				"10.0.0.0/ 8",
				" 10.0.0.0",
				"2001:db8::/129",
				"2001:db8:::/32",
				"[10.0.0.0/8]",
				"::ffff:0:0/95",
				"10.0.0.0/0008",
				"*"}) {
		EXPECT_EQ(acl_parse(bad, &r, why, sizeof(why)), -1) << "'" << bad << "'";
		EXPECT_NE(strstr(why, "invalid value"), nullptr) << why;
	}
}

// A prefix with host bits is a typo more often than a wish: refused, with the network
// it probably meant.
TEST(AclParse, HostBitsPastThePrefixAreRefused)
{
	EXPECT_EQ(Canonical("10.1.2.3/8"),
		  "error: invalid value '10.1.2.3/8' (bits set past the prefix; 10.0.0.0/8?)");
	EXPECT_EQ(
	    Canonical("2001:db8::1/64"),
	    "error: invalid value '2001:db8::1/64' (bits set past the prefix; 2001:db8::/64?)");
	EXPECT_EQ(Canonical("0.0.0.1/0"), "error: invalid value '0.0.0.1/0' (bits set past the "
					  "prefix; 0.0.0.0/0?)");
}

TEST(AclAdd, BoundedAndEmptiedByAnEmptyValue)
{
	struct acl_list l = {};
	char why[256];

	for (unsigned i = 0; i < ACL_MAX; i++) {
		std::string rule =
		    "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24";
		ASSERT_EQ(acl_add(&l, rule.c_str(), why, sizeof(why)), 0) << why;
	}
	EXPECT_EQ(acl_add(&l, "192.0.2.0/24", why, sizeof(why)), -1);
	EXPECT_NE(strstr(why, "too many rules (at most 256)"), nullptr) << why;
	EXPECT_EQ(l.n, unsigned(ACL_MAX));
	EXPECT_EQ(acl_add(&l, "", why, sizeof(why)), 0);
	EXPECT_EQ(l.n, 0u);
	EXPECT_EQ(acl_add(&l, "bogus", why, sizeof(why)), -1);
	EXPECT_EQ(l.n, 0u) << "a bad rule is not added";
}

TEST(AclMatch, LongestPrefixWins)
{
	Lists l({"10.0.0.0/8", "10.1.0.0/16", "10.1.2.3", "2001:db8::/32", "2001:db8:1::/48"}, {});

	EXPECT_EQ(acl_match(&l.allow, Peer("10.9.9.9").data()), 96 + 8);
	EXPECT_EQ(acl_match(&l.allow, Peer("10.1.9.9").data()), 96 + 16);
	EXPECT_EQ(acl_match(&l.allow, Peer("10.1.2.3").data()), 128);
	EXPECT_EQ(acl_match(&l.allow, Peer("11.0.0.1").data()), -1);
	EXPECT_EQ(acl_match(&l.allow, Peer("2001:db8:1::5").data()), 48);
	EXPECT_EQ(acl_match(&l.allow, Peer("2001:db8:2::5").data()), 32);
	EXPECT_EQ(acl_match(&l.allow, Peer("2001:db9::5").data()), -1);
}

TEST(AclMatch, OddPrefixLengthsCutInsideAByte)
{
	Lists l({"192.0.2.64/26", "2001:db8:8000::/33"}, {});

	EXPECT_EQ(acl_match(&l.allow, Peer("192.0.2.63").data()), -1);
	EXPECT_EQ(acl_match(&l.allow, Peer("192.0.2.64").data()), 96 + 26);
	EXPECT_EQ(acl_match(&l.allow, Peer("192.0.2.127").data()), 96 + 26);
	EXPECT_EQ(acl_match(&l.allow, Peer("192.0.2.128").data()), -1);
	EXPECT_EQ(acl_match(&l.allow, Peer("2001:db8:7fff::1").data()), -1);
	EXPECT_EQ(acl_match(&l.allow, Peer("2001:db8:8000::1").data()), 33);
	EXPECT_EQ(acl_match(&l.allow, Peer("2001:db8:ffff::1").data()), 33);
}

// The families stay apart: IPv4 rules match IPv4 peers, the IPv4-mapped peers of a
// dual-stack socket included; IPv6 rules, ::/0 included, match only IPv6 peers.
TEST(AclMatch, FamiliesStayApartAndMappedPeersAreIpv4)
{
	Lists v4({"127.0.0.1"}, {}), v6({"::/0"}, {});

	EXPECT_TRUE(v4.Permits("127.0.0.1"));
	EXPECT_TRUE(v4.Permits("::ffff:127.0.0.1"));
	EXPECT_FALSE(v4.Permits("::1"));
	EXPECT_FALSE(v4.Permits("::127.0.0.1")) << "IPv4-compatible is not IPv4-mapped";
	EXPECT_TRUE(v6.Permits("::1"));
	EXPECT_TRUE(v6.Permits("2001:db8::1"));
	EXPECT_FALSE(v6.Permits("127.0.0.1"));
	EXPECT_FALSE(v6.Permits("::ffff:127.0.0.1"));
}

TEST(AclPermits, NoListsLetEveryoneIn)
{
	Lists l({}, {});

	EXPECT_TRUE(l.Permits("10.0.0.1"));
	EXPECT_TRUE(l.Permits("::1"));
	EXPECT_FALSE(acl_active(&l.allow, &l.deny));
}

TEST(AclPermits, AnAllowListKeepsOutEveryoneElse)
{
	Lists l({"127.0.0.1", "::1"}, {});

	EXPECT_TRUE(acl_active(&l.allow, &l.deny));
	EXPECT_TRUE(l.Permits("127.0.0.1"));
	EXPECT_TRUE(l.Permits("::ffff:127.0.0.1"));
	EXPECT_TRUE(l.Permits("::1"));
	EXPECT_FALSE(l.Permits("127.0.0.2"));
	EXPECT_FALSE(l.Permits("::2"));
}

TEST(AclPermits, ADenyListKeepsOutOnlyItself)
{
	Lists l({}, {"127.0.0.2", "2001:db8::/32"});

	EXPECT_TRUE(l.Permits("127.0.0.1"));
	EXPECT_FALSE(l.Permits("127.0.0.2"));
	EXPECT_FALSE(l.Permits("::ffff:127.0.0.2"));
	EXPECT_FALSE(l.Permits("2001:db8:5::1"));
	EXPECT_TRUE(l.Permits("2001:db9::1"));
}

// xinetd: matched by both lists, the more specific match decides; equally specific,
// the peer is refused.
TEST(AclPermits, TheMoreSpecificMatchWinsAndDenyWinsATie)
{
	Lists open_hole({"10.1.0.0/16"}, {"0.0.0.0/0"});
	EXPECT_TRUE(open_hole.Permits("10.1.2.3"));
	EXPECT_FALSE(open_hole.Permits("10.2.0.1"));
	EXPECT_FALSE(open_hole.Permits("192.0.2.1"));
	EXPECT_FALSE(open_hole.Permits("::1")) << "not on the allow list";

	Lists punch({"10.0.0.0/8"}, {"10.6.6.0/24"});
	EXPECT_TRUE(punch.Permits("10.6.7.1"));
	EXPECT_FALSE(punch.Permits("10.6.6.1"));

	Lists tie({"10.0.0.0/8"}, {"10.0.0.0/8"});
	EXPECT_FALSE(tie.Permits("10.0.0.1"));

	Lists host_over_net({"10.6.6.6"}, {"10.6.6.0/24"});
	EXPECT_TRUE(host_over_net.Permits("10.6.6.6"));
	EXPECT_FALSE(host_over_net.Permits("10.6.6.7"));
}

// With an allow list of one family only, the other family is refused: an allow list
// is a complete list of who may come.
TEST(AclPermits, AnIpv4AllowListRefusesIpv6Peers)
{
	Lists l({"10.0.0.0/8"}, {});

	EXPECT_FALSE(l.Permits("::1"));
	EXPECT_FALSE(l.Permits("2001:db8::1"));
}

} // namespace
