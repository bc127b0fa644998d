// Socket activation: the sockets systemd passes (LISTEN_FDS) are served by what
// they are: a stream socket is TCP, a datagram socket UDP; FileDescriptorName=
// (LISTEN_FDNAMES) may name the service. Run under tests/tools/sd-activate.
#include <sys/socket.h>

#include "fixture.h"
#include "udp.h"

namespace e2e
{
namespace
{

using ActivationTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(ActivationTest);

constexpr int kTimeoutMs = 10000;

// echod -b BACKEND -w 2 under sd-activate with the given socket specs.
std::unique_ptr<Daemon> StartActivated(const std::string &backend,
				       const std::vector<std::string> &specs, std::string *error)
{
	std::vector<std::string> wrapper = {SD_ACTIVATE_BIN};
	wrapper.insert(wrapper.end(), specs.begin(), specs.end());
	wrapper.push_back("--");
	auto d = std::make_unique<Daemon>();
	if (!d->StartWrapped(wrapper, {"-b", backend, "-w", "2"}, int(specs.size()), error))
		return nullptr;
	return d;
}

TEST_P(ActivationTest, DatagramSocketIsUdpEchoBesideStreamSocket)
{
	std::string error, back;
	auto d = StartActivated(backend(), {"udp:127.0.0.1:0", "tcp:127.0.0.1:0"}, &error);
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
	auto d = StartActivated(backend(), {"udp:127.0.0.1:0"}, &error);
	ASSERT_NE(d, nullptr) << error;
	ASSERT_TRUE(SendForgedUdp("255.255.255.255", 40000, kLoopback, d->port(), "x", &error))
	    << error;
	EXPECT_EQ(WaitCounter(d.get(), "udp_refused_addr", 1, kTimeoutMs), 1u) << d->Log();
}

} // namespace
} // namespace e2e
