// Listeners: dual stack on all interfaces, a specific address only, the
// socket's owner as ss(8) shows it, and a port already in use.
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
	EXPECT_TRUE(d->WaitForLog("listening on tcp [::]:" + port, 0)) << d->Log();
	EXPECT_TRUE(ConnectAndEcho("127.0.0.1", d->port(), "v4\n", kTimeoutMs, &error)) << error;
	if (!CanBind("::1"))
		GTEST_SKIP() << "::1 is not configured on this machine; IPv6 half not tested";
	EXPECT_TRUE(ConnectAndEcho("::1", d->port(), "v6\n", kTimeoutMs, &error)) << error;
}

TEST_P(ListenTest, SpecificAddressIsNotReachableOnAnother)
{
	Daemon *d = StartDaemon({}, 2, {"127.0.0.1:0"});
	ASSERT_NE(d, nullptr);
	std::string port = std::to_string(d->port()), error;
	EXPECT_TRUE(d->WaitForLog("listening on tcp 127.0.0.1:" + port, 0)) << d->Log();
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

} // namespace
} // namespace e2e
