// Listeners: dual stack on all interfaces (and an explicit [::], IPv6 only), a
// specific address only, the socket's owner as ss(8) shows it, a port already in
// use, and a privileged port refused with a hint.
#include <unistd.h>

#include <fstream>

#include "fixture.h"

namespace e2e
{
namespace
{

using ListenTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(ListenTest);

constexpr int kTimeoutMs = 5000;

TEST_P(ListenTest, AllInterfacesIsDualStack)
{
	Daemon *d = StartDaemon({}, 2, {":0"});
	ASSERT_NE(d, nullptr);
	std::string port = std::to_string(d->port()), error;
	EXPECT_TRUE(d->WaitForLog("listening on tcp [::]:" + port + " (dual-stack) workers=2", 0))
	    << d->Log();
	EXPECT_TRUE(ConnectAndEcho("127.0.0.1", d->port(), "v4\n", kTimeoutMs, &error)) << error;
	if (!CanBind("::1"))
		GTEST_SKIP() << "::1 is not configured on this machine; IPv6 half not tested";
	EXPECT_TRUE(ConnectAndEcho("::1", d->port(), "v6\n", kTimeoutMs, &error)) << error;
}

TEST_P(ListenTest, ExplicitIpv6AnyIsIpv6Only)
{
	if (!CanBind("::1"))
		GTEST_SKIP() << "no IPv6 on this machine";
	Daemon *d = StartDaemon({}, 2, {"[::]:0"});
	ASSERT_NE(d, nullptr);
	std::string port = std::to_string(d->port()), error;
	EXPECT_TRUE(d->WaitForLog("listening on tcp [::]:" + port + " (IPv6 only) workers=2", 0))
	    << d->Log();
	EXPECT_TRUE(ConnectAndEcho("::1", d->port(), "v6\n", kTimeoutMs, &error)) << error;
	Fd fd = Connect("127.0.0.1", d->port(), kTimeoutMs, &error);
	EXPECT_FALSE(fd.valid()) << "an IPv6-only listener accepted IPv4";
}

TEST_P(ListenTest, SpecificAddressIsNotReachableOnAnother)
{
	Daemon *d = StartDaemon({}, 2, {"127.0.0.1:0"});
	ASSERT_NE(d, nullptr);
	std::string port = std::to_string(d->port()), error;
	EXPECT_TRUE(d->WaitForLog("listening on tcp 127.0.0.1:" + port + " workers=2", 0))
	    << d->Log();
	EXPECT_TRUE(ConnectAndEcho("127.0.0.1", d->port(), "here\n", kTimeoutMs, &error)) << error;
	Fd fd = Connect("127.0.0.2", d->port(), kTimeoutMs, &error);
	EXPECT_FALSE(fd.valid()) << "127.0.0.2:" << port << " accepted a connection";
	EXPECT_NE(error.find("Connection refused"), std::string::npos) << error;
}

TEST_P(ListenTest, SsShowsTheListenerOwnedByEchod)
{
	std::string ss = FindProgram("ss");
	if (ss.empty())
		GTEST_SKIP() << "ss (iproute2) is not installed";
	Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	RunResult r = RunProgram(ss, {"-ltnp"});
	ASSERT_EQ(r.status, 0) << r.err;
	std::string addr = "127.0.0.1:" + std::to_string(d->port()) + " ";
	size_t at = r.out.find(addr);
	ASSERT_NE(at, std::string::npos) << addr << "not in ss -ltnp:\n" << r.out;
	std::string line = r.out.substr(at, r.out.find('\n', at) - at);
	EXPECT_NE(line.find("\"echod"), std::string::npos) << "owner is not echod: " << line;
}

TEST_P(ListenTest, PortInUseExits71)
{
	int port = 0;
	Fd taken = ListenTcp("127.0.0.1", &port); // no SO_REUSEPORT: echod cannot share it
	ASSERT_TRUE(taken.valid());
	std::string addr = "127.0.0.1:" + std::to_string(port);
	RunResult r = RunEchod({"-b", backend(), "-w", "2", "-l", addr});
	EXPECT_EQ(r.status, 71) << r.err;
	EXPECT_NE(r.err.find("echod: cannot bind tcp " + addr + ": Address already in use"),
		  std::string::npos)
	    << r.err;
}

// EACCES on a port below 1024 says what would allow it. As root, echod runs without
// CAP_NET_BIND_SERVICE (setpriv drops it from the bounding set).
TEST_P(ListenTest, PrivilegedPortRefusedWithAHint)
{
	int start = 1024;
	std::ifstream("/proc/sys/net/ipv4/ip_unprivileged_port_start") >> start;
	if (start <= 7)
		GTEST_SKIP() << "net.ipv4.ip_unprivileged_port_start is " << start
			     << ": port 7 needs no privilege here";
	std::vector<std::string> args = {"-b", backend(), "-w", "1", "-l", "127.0.0.1:7"};
	RunResult r;
	if (geteuid() == 0) {
		std::string setpriv = FindProgram("setpriv");
		if (setpriv.empty())
			GTEST_SKIP() << "running as root and setpriv (util-linux) is not installed";
		std::vector<std::string> argv = {"--bounding-set=-net_bind_service",
						 "--inh-caps=-net_bind_service", "--", ECHOD_BIN};
		argv.insert(argv.end(), args.begin(), args.end());
		r = RunProgram(setpriv, argv);
	} else {
		r = RunEchod(args);
	}
	EXPECT_EQ(r.status, 71) << r.err;
	EXPECT_NE(r.err.find("cannot bind tcp 127.0.0.1:7: Permission denied"), std::string::npos)
	    << r.err;
	EXPECT_NE(r.err.find("CAP_NET_BIND_SERVICE"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("1024"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("ip_unprivileged_port_start"), std::string::npos) << r.err;
}

} // namespace
} // namespace e2e
