// listen: spec parsing and formatting, and the SO_REUSEPORT listening sockets.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "echod/listen.h"

namespace
{

struct Parsed {
	int rc;
	struct listen_spec spec;
	std::string why;
};

Parsed Parse(const std::string &text)
{
	Parsed p;
	char why[256] = "";

	p.rc = listen_parse(text.c_str(), &p.spec, why, sizeof(why));
	p.why = why;
	return p;
}

std::string Format(const struct listen_spec &spec)
{
	char out[LISTEN_HOST_MAX + 32];

	listen_format(&spec, out, sizeof(out));
	return out;
}

void ExpectSameSpec(const struct listen_spec &a, const struct listen_spec &b)
{
	EXPECT_EQ(a.proto, b.proto);
	EXPECT_EQ(a.service, b.service);
	EXPECT_EQ(a.any, b.any);
	EXPECT_STREQ(a.host, b.host);
	EXPECT_EQ(a.port, b.port);
}

// --- listen_parse ---

struct GoodSpec {
	const char *text;
	enum listen_proto proto;
	enum listen_service service;
	int any;
	const char *host;
	uint16_t port;
};

void PrintTo(const GoodSpec &c, std::ostream *os)
{
	*os << '"' << c.text << '"';
}

class ListenParse : public ::testing::TestWithParam<GoodSpec>
{
};

TEST_P(ListenParse, Fields)
{
	const GoodSpec &c = GetParam();
	Parsed p = Parse(c.text);

	ASSERT_EQ(p.rc, 0) << p.why;
	EXPECT_EQ(p.spec.proto, c.proto);
	EXPECT_EQ(p.spec.service, c.service);
	EXPECT_EQ(p.spec.any, c.any);
	EXPECT_STREQ(p.spec.host, c.host);
	EXPECT_EQ(p.spec.port, c.port);
}

INSTANTIATE_TEST_SUITE_P(
    Listen, ListenParse,
    ::testing::Values(GoodSpec{"7", LISTEN_TCP, SERVICE_ECHO, 1, "", 7},
		      GoodSpec{":7", LISTEN_TCP, SERVICE_ECHO, 1, "", 7},
		      GoodSpec{"*:7", LISTEN_TCP, SERVICE_ECHO, 1, "", 7},
		      GoodSpec{"tcp::7", LISTEN_TCP, SERVICE_ECHO, 1, "", 7},
		      GoodSpec{"udp::7", LISTEN_UDP, SERVICE_ECHO, 1, "", 7},
		      GoodSpec{"udp:7", LISTEN_UDP, SERVICE_ECHO, 1, "", 7},
		      GoodSpec{"127.0.0.1:7007", LISTEN_TCP, SERVICE_ECHO, 0, "127.0.0.1", 7007},
		      GoodSpec{"[::1]:7", LISTEN_TCP, SERVICE_ECHO, 0, "::1", 7},
		      GoodSpec{"[fe80::1%lo]:7", LISTEN_TCP, SERVICE_ECHO, 0, "fe80::1%lo", 7},
		      GoodSpec{"localhost:7", LISTEN_TCP, SERVICE_ECHO, 0, "localhost", 7},
		      GoodSpec{":7/daytime", LISTEN_TCP, SERVICE_DAYTIME, 1, "", 7},
		      GoodSpec{"*:7/reverse", LISTEN_TCP, SERVICE_REVERSE, 1, "", 7},
		      GoodSpec{"tcp:[::1]:9/discard", LISTEN_TCP, SERVICE_DISCARD, 0, "::1", 9},
		      GoodSpec{"udp:127.0.0.1:19/chargen", LISTEN_UDP, SERVICE_CHARGEN, 0,
			       "127.0.0.1", 19},
		      GoodSpec{"7/echo", LISTEN_TCP, SERVICE_ECHO, 1, "", 7},
		      GoodSpec{":0", LISTEN_TCP, SERVICE_ECHO, 1, "", 0},
		      GoodSpec{"65535", LISTEN_TCP, SERVICE_ECHO, 1, "", 65535},
		      GoodSpec{"007", LISTEN_TCP, SERVICE_ECHO, 1, "", 7}));

struct BadSpec {
	const char *name;
	std::string text;
	const char *why; // a part of the reason
};

void PrintTo(const BadSpec &c, std::ostream *os)
{
	*os << c.name;
}

class ListenParseError : public ::testing::TestWithParam<BadSpec>
{
};

TEST_P(ListenParseError, SaysWhy)
{
	Parsed p = Parse(GetParam().text);

	EXPECT_EQ(p.rc, -1);
	EXPECT_NE(p.why.find(GetParam().why), std::string::npos) << p.why;
}

const BadSpec kBadSpecs[] = {
    BadSpec{"Ipv6WithoutBrackets", "::1:7", "brackets"},
    BadSpec{"PortTooBig", "1.2.3.4:99999", "'99999'"},
    BadSpec{"PortJustTooBig", "65536", "'65536'"},
    BadSpec{"NegativePort", ":-1", "'-1'"},
    BadSpec{"PortWithSign", ":+7", "'+7'"},
    BadSpec{"ColonOnly", ":", "invalid port ''"},
    BadSpec{"Empty", "", "invalid port ''"},
    BadSpec{"ProtoOnly", "tcp:", "invalid port ''"},
    BadSpec{"NoColonAfterBracket", "[::1]7", "[IPv6]:PORT"},
    BadSpec{"UnclosedBracket", "[::1:7", "[IPv6]:PORT"},
    BadSpec{"NoPort", "host", "[HOST]:PORT"},
    BadSpec{"UnknownService", "host:7/bogus", "unknown service 'bogus'"},
    BadSpec{"EmptyService", ":7/", "unknown service ''"},
    BadSpec{"BadCharacter", "bad host!:7", "invalid character"},
    BadSpec{"FiveOctets", "1.2.3.4.5:7", "invalid IPv4 address '1.2.3.4.5'"},
    BadSpec{"OctetTooBig", "256.1.1.1:7", "invalid IPv4"},
    BadSpec{"HostTooLong", std::string(LISTEN_HOST_MAX, 'h') + ":7", "too long"},
    BadSpec{"SpecTooLong", std::string(2 * LISTEN_HOST_MAX, 'h') + ":7", "too long"},
};

INSTANTIATE_TEST_SUITE_P(Listen, ListenParseError, ::testing::ValuesIn(kBadSpecs),
			 [](const ::testing::TestParamInfo<BadSpec> &info) {
				 return info.param.name;
			 });

TEST(ListenParse, LongestHostFits)
{
	std::string host(LISTEN_HOST_MAX - 1, 'h');
	Parsed p = Parse(host + ":7");

	ASSERT_EQ(p.rc, 0) << p.why;
	EXPECT_EQ(p.spec.host, host);
}

// --- listen_format ---

TEST(ListenFormat, CanonicalForms)
{
	EXPECT_EQ(Format(Parse("7").spec), "tcp:*:7/echo");
	EXPECT_EQ(Format(Parse("udp:*:7/discard").spec), "udp:*:7/discard");
	EXPECT_EQ(Format(Parse("127.0.0.1:7007").spec), "tcp:127.0.0.1:7007/echo");
	EXPECT_EQ(Format(Parse("tcp:[::1]:9/discard").spec), "tcp:[::1]:9/discard");
	EXPECT_EQ(Format(Parse("localhost:0/reverse").spec), "tcp:localhost:0/reverse");
}

TEST(ListenFormat, ServiceNames)
{
	EXPECT_STREQ(listen_service_name(SERVICE_ECHO), "echo");
	EXPECT_STREQ(listen_service_name(SERVICE_DISCARD), "discard");
	EXPECT_STREQ(listen_service_name(SERVICE_CHARGEN), "chargen");
	EXPECT_STREQ(listen_service_name(SERVICE_DAYTIME), "daytime");
	EXPECT_STREQ(listen_service_name(SERVICE_REVERSE), "reverse");
}

class ListenRoundTrip : public ::testing::TestWithParam<const char *>
{
};

// What --check-config prints must read back as the same listener.
TEST_P(ListenRoundTrip, FormatThenParseGivesTheSameSpec)
{
	Parsed first = Parse(GetParam());
	ASSERT_EQ(first.rc, 0) << first.why;
	std::string text = Format(first.spec);
	Parsed again = Parse(text);

	ASSERT_EQ(again.rc, 0) << text << ": " << again.why;
	ExpectSameSpec(first.spec, again.spec);
	EXPECT_EQ(Format(again.spec), text);
}

INSTANTIATE_TEST_SUITE_P(Listen, ListenRoundTrip,
			 ::testing::Values("127.0.0.1:7007", "[::1]:7", "udp:localhost:9/daytime",
					   "tcp:[fe80::1%lo]:0/chargen"));

// The all-interfaces (dual-stack) listener prints as "tcp:[::]:7/echo"; read back,
// that must still mean all interfaces, not an IPv6-only "::" socket.
TEST(ListenRoundTripAll, AllInterfacesStaysAllInterfaces)
{
	Parsed first = Parse(":7");
	ASSERT_EQ(first.rc, 0) << first.why;
	Parsed again = Parse(Format(first.spec));

	ASSERT_EQ(again.rc, 0) << again.why;
	EXPECT_EQ(again.spec.any, 1)
	    << Format(first.spec) << " read back as host '" << again.spec.host << "'";
}

// --- the listening sockets ---

int IntOption(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	EXPECT_EQ(getsockopt(fd, level, name, &v, &len), 0) << strerror(errno);
	return v;
}

uint16_t LocalPort(int fd)
{
	struct sockaddr_in a = {};
	socklen_t len = sizeof(a);

	EXPECT_EQ(getsockname(fd, reinterpret_cast<struct sockaddr *>(&a), &len), 0);
	EXPECT_EQ(a.sin_family, AF_INET);
	EXPECT_EQ(ntohl(a.sin_addr.s_addr), INADDR_LOOPBACK);
	return ntohs(a.sin_port);
}

bool IsOpen(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

bool IsClosed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

class ListenOpen : public ::testing::Test
{
      protected:
	void TearDown() override
	{
		listen_close_all(&set_);
		if (plain_ >= 0)
			close(plain_);
	}
	int Open(const std::string &text, unsigned nslots)
	{
		Parsed p = Parse(text);
		char why[256] = "";

		EXPECT_EQ(p.rc, 0) << p.why;
		int rc = listen_open_all(&set_, &p.spec, 1, nslots, 16, why, sizeof(why));
		why_ = why;
		return rc;
	}
	// A plain listening socket (no SO_REUSEADDR/PORT) on 127.0.0.1; returns its port.
	uint16_t ListenPlain()
	{
		struct sockaddr_in a = {};

		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		plain_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		EXPECT_GE(plain_, 0);
		EXPECT_EQ(bind(plain_, reinterpret_cast<struct sockaddr *>(&a), sizeof(a)), 0);
		EXPECT_EQ(listen(plain_, 1), 0);
		return LocalPort(plain_);
	}
	std::vector<int> Fds() const
	{
		return std::vector<int>(set_.v[0].fds, set_.v[0].fds + set_.nslots);
	}

	struct listener_set set_ = {};
	std::string why_;
	int plain_ = -1;
};

TEST_F(ListenOpen, OneReuseportSocketPerSlotOnOnePort)
{
	ASSERT_EQ(Open("127.0.0.1:0", 3), 0) << why_;
	ASSERT_EQ(set_.n, 1u);
	EXPECT_EQ(set_.nslots, 3u);
	EXPECT_EQ(set_.shared, 0);
	uint16_t port = LocalPort(set_.v[0].fds[0]);

	EXPECT_NE(port, 0);
	for (unsigned s = 0; s < 3; s++) {
		int fd = set_.v[0].fds[s];

		ASSERT_GE(fd, 0);
		EXPECT_EQ(listen_slot_fd(&set_, 0, s), fd);
		EXPECT_EQ(LocalPort(fd), port);
		EXPECT_EQ(IntOption(fd, SOL_SOCKET, SO_REUSEPORT), 1);
		EXPECT_EQ(IntOption(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
		EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
		EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	}
	EXPECT_NE(set_.v[0].fds[0], set_.v[0].fds[1]);
	EXPECT_NE(set_.v[0].fds[1], set_.v[0].fds[2]);
	EXPECT_STREQ(set_.v[0].name, ("tcp 127.0.0.1:" + std::to_string(port)).c_str());
	EXPECT_EQ(set_.v[0].spec.port, 0) << "the spec stays as given";
}

TEST_F(ListenOpen, AddressInUseFailsNamingIt)
{
	uint16_t port = ListenPlain();
	std::string addr = "127.0.0.1:" + std::to_string(port);

	EXPECT_EQ(Open(addr, 2), LISTEN_ERR_SYSTEM);
	EXPECT_NE(why_.find("Address already in use"), std::string::npos) << why_;
	EXPECT_NE(why_.find(addr), std::string::npos) << why_;
}

TEST_F(ListenOpen, KeepSlotClosesTheOthers)
{
	ASSERT_EQ(Open("127.0.0.1:0", 3), 0) << why_;
	std::vector<int> fds = Fds();

	listen_keep_slot(&set_, 1);
	EXPECT_EQ(set_.v[0].fds[0], -1);
	EXPECT_EQ(set_.v[0].fds[1], fds[1]);
	EXPECT_EQ(set_.v[0].fds[2], -1);
	EXPECT_TRUE(IsClosed(fds[0]));
	EXPECT_TRUE(IsOpen(fds[1]));
	EXPECT_TRUE(IsClosed(fds[2]));
	EXPECT_EQ(listen_slot_fd(&set_, 0, 1), fds[1]);
}

TEST_F(ListenOpen, CloseAllClosesEverythingAndEmptiesTheSet)
{
	ASSERT_EQ(Open("127.0.0.1:0", 2), 0) << why_;
	std::vector<int> fds = Fds();

	listen_close_all(&set_);
	EXPECT_EQ(set_.v, nullptr);
	EXPECT_EQ(set_.n, 0u);
	for (int fd : fds)
		EXPECT_TRUE(IsClosed(fd)) << fd;
}

TEST(ListenResolveCheck, NumericAddressResolves)
{
	Parsed p = Parse("127.0.0.1:0");
	char why[256] = "";

	ASSERT_EQ(p.rc, 0);
	EXPECT_EQ(listen_resolve_check(&p.spec, 1, why, sizeof(why)), 0) << why;
}

} // namespace
