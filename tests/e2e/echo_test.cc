// Echo correctness: byte-exact streams, a large stream with SHUT_WR, many
// concurrent connections, and the banner line.
#include <sys/socket.h>

#include <thread>

#include "checks.h"
#include "fixture.h"

namespace e2e
{
namespace
{

using EchoTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(EchoTest);

constexpr int kTimeoutMs = 10000;

TEST_P(EchoTest, ConcurrentRandomSizedStreamsAreByteExact)
{
	constexpr int kConns = 20;
	constexpr size_t kBytes = 1 << 20;
	Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	std::vector<std::string> errors = ConcurrentStreams(d->port(), kConns, kBytes);
	for (int i = 0; i < kConns; i++)
		EXPECT_EQ(errors[size_t(i)], "") << "connection " << i;
}

TEST_P(EchoTest, LargeStreamThenShutdownGetsEverythingThenEof)
{
	Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	StreamOptions opt; // sends and receives concurrently, then SHUT_WR and EOF
	opt.seed = 42;
	opt.max_chunk = 256 * 1024;
	EXPECT_EQ(StreamOverNewConnection(d->port(), RandomBytes(32 << 20, opt.seed), opt), "");
}

TEST_P(EchoTest, TwoThousandConcurrentConnections)
{
	constexpr size_t kConns = 2000;
	ASSERT_GE(RaiseFdLimit(), kConns + 100) << "RLIMIT_NOFILE hard limit too low";
	Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	std::vector<Fd> fds;
	std::string error;
	for (size_t i = 0; i < kConns; i++) {
		fds.push_back(Connect(kLoopback, d->port(), kTimeoutMs, &error));
		ASSERT_TRUE(fds.back().valid()) << "connection " << i << ": " << error;
	}
	auto msg = [](size_t i) { return "hello " + std::to_string(i) + "\n"; };
	for (size_t i = 0; i < kConns; i++)
		ASSERT_TRUE(SendAll(fds[i].get(), msg(i), kTimeoutMs)) << "connection " << i;
	for (size_t i = 0; i < kConns; i++) {
		std::string back;
		RecvStatus st = RecvExact(fds[i].get(), &back, msg(i).size(), kTimeoutMs);
		ASSERT_EQ(st, RecvStatus::kOk) << "connection " << i << ": " << ToString(st);
		ASSERT_EQ(back, msg(i)) << "connection " << i;
	}
}

TEST_P(EchoTest, BannerLineComesFirstThenEcho)
{
	Daemon *d = StartDaemon({"--banner=hi"});
	ASSERT_NE(d, nullptr);
	std::string error, banner;
	Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(fd.valid()) << error;
	ASSERT_EQ(RecvExact(fd.get(), &banner, 4, kTimeoutMs), RecvStatus::kOk) << banner;
	EXPECT_EQ(banner, "hi\r\n");
	EXPECT_TRUE(EchoOnce(fd.get(), "after the banner\n", kTimeoutMs, &error)) << error;
}

} // namespace
} // namespace e2e
