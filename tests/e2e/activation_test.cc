// Socket activation: the sockets systemd passes (LISTEN_FDS) are served by what
// they are: a stream socket is TCP, a datagram socket UDP; FileDescriptorName=
// (LISTEN_FDNAMES) may name the service. The test makes the sockets and runs echod
// under tests/tools/sd-launch, which passes them the way systemd does. A socket
// named "metrics" serves /metrics instead of echo.
#include <sys/socket.h>

#include "activation.h"
#include "fixture.h"
#include "http.h"
#include "udp.h"

namespace e2e
{
namespace
{

using ActivationTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(ActivationTest);

constexpr int kTimeoutMs = 10000;

TEST_P(ActivationTest, DatagramSocketIsUdpEchoBesideStreamSocket)
{
	std::string error, back;
	auto d = StartActivated(backend(), {"udp", "tcp"}, &error);
	ASSERT_NE(d, nullptr) << error;
	EXPECT_NE(d->Log().find("listening on udp 127.0.0.1:"), std::string::npos) << d->Log();
	EXPECT_NE(d->Log().find("(socket activation)"), std::string::npos) << d->Log();
	Fd udp = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(udp.valid()) << error;
	for (int i = 0; i < 20; i++) {
		std::string msg = RandomBytes(1 + size_t(i) * 997, uint64_t(i));
		ASSERT_TRUE(UdpSendTo(udp.get(), kLoopback, d->port(0), msg));
		ASSERT_EQ(UdpRecv(udp.get(), &back, kTimeoutMs), RecvStatus::kOk) << i;
		ASSERT_TRUE(back == msg) << i;
	}
	EXPECT_TRUE(ConnectAndEcho(kLoopback, d->port(1), "stream too\n", kTimeoutMs, &error))
	    << error;
}

TEST_P(ActivationTest, DatagramSocketKeepsTheGuard)
{
	std::string error, back;
	auto d = StartActivated(backend(), {"udp"}, &error);
	ASSERT_NE(d, nullptr) << error;
	ASSERT_TRUE(SendForgedUdp("255.255.255.255", 40000, kLoopback, d->port(), "x", &error))
	    << error;
	EXPECT_EQ(WaitCounter(d.get(), "udp_refused_addr", 1, kTimeoutMs), 1u) << d->Log();
}

// FileDescriptorName= names the service; any other name (the unit's) means echo.
TEST_P(ActivationTest, SocketNamePicksTheService)
{
	std::string error, back;
	auto d = StartActivated(
	    backend(),
	    {"tcp=daytime", "udp=chargen", "tcp=reverse", "tcp=echod.socket", "udp=discard"},
	    &error);
	ASSERT_NE(d, nullptr) << error;
	EXPECT_NE(d->Log().find("service=daytime"), std::string::npos) << d->Log();
	Fd day = Connect(kLoopback, d->port(0), kTimeoutMs, &error);
	ASSERT_TRUE(day.valid()) << error;
	ASSERT_EQ(RecvExact(day.get(), &back, 12, kTimeoutMs), RecvStatus::kOk);
	EXPECT_NE(back.find("day, "), std::string::npos) << back; // "Monday, N" ... "Sunday, N"

	Fd udp = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(udp.valid()) << error;
	ASSERT_TRUE(UdpSendTo(udp.get(), kLoopback, d->port(1), "x"));
	ASSERT_EQ(UdpRecv(udp.get(), &back, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(back.size(), 444u);
	EXPECT_EQ(back.substr(0, 10), " !\"#$%&'()");

	Fd rev = Connect(kLoopback, d->port(2), kTimeoutMs, &error);
	ASSERT_TRUE(rev.valid()) << error;
	ASSERT_TRUE(SendAll(rev.get(), "systemd\n", kTimeoutMs));
	ASSERT_EQ(RecvExact(rev.get(), &back, 8, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(back, "dmetsys\n");

	EXPECT_TRUE(ConnectAndEcho(kLoopback, d->port(3), "echo\n", kTimeoutMs, &error)) << error;

	ASSERT_TRUE(UdpSendTo(udp.get(), kLoopback, d->port(4), "dropped"));
	EXPECT_EQ(WaitCounter(d.get(), "udp_in", 2, kTimeoutMs), 2u);
	EXPECT_FALSE(UdpPoll(udp.get(), &back));
}

// echod-metrics.socket: FileDescriptorName=metrics. That socket serves /metrics, not
// echo, and wins over --metrics (which would bind inside PrivateNetwork=yes).
TEST_P(ActivationTest, SocketNamedMetricsServesMetrics)
{
	std::string error;
	std::vector<int> ports;
	auto d = StartActivated(backend(), {"tcp=echo", "tcp=metrics"}, &error,
				{"--metrics=127.0.0.1:0"}, 1, &ports);
	ASSERT_NE(d, nullptr) << error;
	ASSERT_EQ(ports.size(), 2u);
	std::string log = d->Log();
	EXPECT_NE(log.find("metrics on the socket passed by systemd (fd 4, 127.0.0.1:" +
			   std::to_string(ports[1]) + ")"),
		  std::string::npos)
	    << log;
	EXPECT_NE(log.find("--metrics=127.0.0.1:0 ignored"), std::string::npos) << log;
	EXPECT_EQ(log.find("metrics on http://"), std::string::npos) << log;
	EXPECT_EQ(d->port(0), ports[0]);

	HttpAnswer a = HttpSplit(HttpGet(ports[1], "/metrics", kTimeoutMs, &error));
	ASSERT_TRUE(a.complete) << error;
	EXPECT_EQ(a.status, "HTTP/1.0 200 OK");
	EXPECT_NE(a.body.find("echod_build_info{"), std::string::npos) << a.body;
	EXPECT_NE(a.body.find("echod_workers 2\n"), std::string::npos) << a.body;
	EXPECT_TRUE(ConnectAndEcho(kLoopback, ports[0], "echo\n", kTimeoutMs, &error)) << error;
	// Echo bytes sent to the metrics socket are not echoed: they are a bad request.
	a = HttpSplit(HttpRaw(ports[1], "echo me\n", kTimeoutMs, &error));
	EXPECT_EQ(a.status, "HTTP/1.0 400 Bad Request") << error;
	// Counted as echo traffic: only the one echo connection.
	EXPECT_EQ(WaitCounter(d.get(), "accepted", 1, kTimeoutMs), 1u) << d->Log();
}

TEST(Activation, OnlyAMetricsSocketIsRefused)
{
	std::vector<Fd> fds;
	std::vector<std::string> argv;
	std::string error;
	ASSERT_TRUE(MakeSockets({"tcp=metrics"}, &fds, &argv, &error)) << error;
	argv.insert(argv.end(), {"--", ECHOD_BIN, "-b", "epoll", "-w", "1"});
	RunResult r = RunProgram(SD_LAUNCH_BIN, argv);
	EXPECT_EQ(r.status, 78) << r.err;
	EXPECT_NE(r.err.find("none to echo on"), std::string::npos) << r.err;
}

TEST(Activation, DatagramSocketNamedMetricsIsRefused)
{
	std::vector<Fd> fds;
	std::vector<std::string> argv;
	std::string error;
	ASSERT_TRUE(MakeSockets({"tcp", "udp=metrics"}, &fds, &argv, &error)) << error;
	argv.insert(argv.end(), {"--", ECHOD_BIN, "-b", "epoll", "-w", "1"});
	RunResult r = RunProgram(SD_LAUNCH_BIN, argv);
	EXPECT_EQ(r.status, 78) << r.err;
	EXPECT_NE(r.err.find("not a stream socket"), std::string::npos) << r.err;
}

TEST(Activation, DatagramSocketNamedReverseIsRefused)
{
	std::vector<Fd> fds;
	std::vector<std::string> argv;
	std::string error;
	ASSERT_TRUE(MakeSockets({"udp=reverse"}, &fds, &argv, &error)) << error;
	argv.insert(argv.end(), {"--", ECHOD_BIN, "-b", "epoll", "-w", "1"});
	RunResult r = RunProgram(SD_LAUNCH_BIN, argv);
	EXPECT_EQ(r.status, 78) << r.err;
	EXPECT_NE(r.err.find("TCP only"), std::string::npos) << r.err;
}

} // namespace
} // namespace e2e
