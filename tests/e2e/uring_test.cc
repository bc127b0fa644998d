// io_uring specifics: a buffer ring far smaller than the load, a stalled reader
// beside a fast one on a small ring, sends the kernel can only take in part, and
// the fallback to epoll when io_uring is refused (a seccomp filter installed
// before exec, as a container profile would).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <sys/socket.h>

#include <algorithm>
#include <thread>

#include "fixture.h"
#include "udp.h" // Counters, WaitCounter

namespace e2e
{
namespace
{

constexpr int kTimeoutMs = 20000;

// Every io_uring case: skipped, with the reason, where io_uring cannot run here.
using UringTest = BackendTest;
INSTANTIATE_TEST_SUITE_P(Backends, UringTest, ::testing::Values("io_uring"), BackendName);

// Streams data on n connections at once, each from its own thread; "" or the first error.
std::string StreamMany(int port, size_t n, size_t bytes, const StreamOptions &base)
{
	std::vector<std::string> errors(n);
	std::vector<std::thread> threads;
	for (size_t i = 0; i < n; i++) {
		threads.emplace_back([&, i] {
			std::string error;
			Fd fd = Connect(kLoopback, port, kTimeoutMs, &error);
			if (!fd.valid()) {
				errors[i] = error;
				return;
			}
			StreamOptions opt = base;
			opt.seed = 1000 + i;
			errors[i] = StreamEcho(fd.get(), RandomBytes(bytes, opt.seed), opt);
		});
	}
	for (auto &t : threads)
		t.join();
	for (size_t i = 0; i < n; i++)
		if (!errors[i].empty())
			return "connection " + std::to_string(i) + ": " + errors[i];
	return "";
}

TEST_P(UringTest, RingOfFewBuffersServesManyStreamsLosingNothing)
{
	// 16 buffers of 1 KiB for 24 connections streaming at once: the ring runs dry
	// over and over; receives re-arm as buffers come back and every byte arrives.
	Daemon *d = StartDaemon({"--ring-buffers=16", "--ring-buffer-size=1024"}, 1);
	ASSERT_NE(d, nullptr);
	StreamOptions opt;
	opt.max_chunk = 16384;
	opt.timeout_ms = kTimeoutMs;
	EXPECT_EQ(StreamMany(d->port(), 24, 512 * 1024, opt), "");
}

TEST_P(UringTest, StalledReaderOnSmallRingDoesNotStallOthers)
{
	Daemon *d = StartDaemon({"--ring-buffers=32", "--ring-buffer-size=4096"}, 1);
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd stalled = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(stalled.valid()) << error;
	size_t sent = 0;
	FillStatus st = FillUntilStalled(stalled.get(), 64 << 20, 500, kTimeoutMs, &sent);
	ASSERT_EQ(st, FillStatus::kStalled) << ToString(st) << " after " << sent << " bytes";
	// The stalled peer holds at most its share of the ring; the others still echo.
	StreamOptions opt;
	opt.max_chunk = 8192;
	opt.timeout_ms = kTimeoutMs;
	EXPECT_EQ(StreamMany(d->port(), 8, 256 * 1024, opt), "");
	for (int i = 0; i < 50; i++)
		ASSERT_TRUE(ConnectAndEcho(kLoopback, d->port(), "ping\n", 5000, &error)) << error;
}

TEST_P(UringTest, IdleWorkerGivesItsBufferPagesBackAndStillEchoes)
{
	// A stream touches the ring's buffers; once the worker has had no connection
	// for a while their pages go back (ring_trims counts it), and buffers the
	// kernel fills afterwards fault in fresh pages: the next echo is still exact.
	Daemon *d = StartDaemon({}, 1);
	ASSERT_NE(d, nullptr);
	StreamOptions opt;
	opt.max_chunk = 16384;
	opt.timeout_ms = kTimeoutMs;
	ASSERT_EQ(StreamMany(d->port(), 2, 1 << 20, opt), "");
	EXPECT_GE(WaitCounter(d, "ring_trims", 1, kTimeoutMs), 1u) << d->Log();
	EXPECT_EQ(StreamMany(d->port(), 2, 1 << 20, opt), "");
	EXPECT_GE(WaitCounter(d, "ring_trims", 2, kTimeoutMs), 2u) << d->Log();
}

// A nonblocking loopback connection whose receive buffer is set before connect(), so
// the window it advertises is small from the first segment on.
Fd ConnectSmallWindow(int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {};
	sin.sin_family = AF_INET;
	sin.sin_port = htons(uint16_t(port));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0 ||
	    connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) < 0 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		if (fd >= 0)
			close(fd);
		return Fd();
	}
	return Fd(fd);
}

TEST_P(UringTest, SendsTheKernelTakesInPartAreCompleted)
{
	// A receiver with a tiny window that reads in small bites makes echod's sends
	// wait and complete in pieces; the echo must still be exact and in order.
	Daemon *d = StartDaemon({}, 1);
	ASSERT_NE(d, nullptr);
	Fd conn = ConnectSmallWindow(d->port(), 4096);
	ASSERT_TRUE(conn.valid()) << strerror(errno);
	StreamOptions opt;
	opt.max_chunk = 512;
	opt.timeout_ms = kTimeoutMs;
	EXPECT_EQ(StreamEcho(conn.get(), RandomBytes(4 << 20, 7), opt), "");
	ASSERT_TRUE(d->Signal(SIGUSR1));
	EXPECT_TRUE(d->WaitForLog("bytes_out=4194304", 5000)) << d->Log();
}

// The fallback cases run echod under tests/tools/deny-io-uring.
RunResult RunDenied(const std::vector<std::string> &args)
{
	std::vector<std::string> full = {ECHOD_BIN};
	full.insert(full.end(), args.begin(), args.end());
	return RunProgram(DENY_IO_URING_BIN, full, "", 10000);
}

bool UringBuilt()
{
	std::string error;
	auto backends = BuiltBackends(&error);
	return std::find(backends.begin(), backends.end(), "io_uring") != backends.end();
}

TEST(UringFallback, ExplicitIoUringRefusedExits71SayingWhy)
{
	RunResult r = RunDenied({"-b", "io_uring", "-l", "127.0.0.1:0", "-w", "1"});
	EXPECT_EQ(r.status, 71) << r.err;
	EXPECT_NE(r.err.find("io_uring backend unavailable"), std::string::npos) << r.err;
	if (UringBuilt()) {
		EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
	}
}

TEST(UringFallback, AutoFallsBackToEpollWithOneLineWhy)
{
	Process p;
	std::string error;
	ASSERT_TRUE(p.Start(DENY_IO_URING_BIN,
			    {ECHOD_BIN, "-b", "auto", "-l", "127.0.0.1:0", "-w", "1"}, "", &error))
	    << error;
	ASSERT_TRUE(p.WaitForStderr("echod: ready", 10000)) << p.Stderr();
	std::string log = p.Stderr();
	EXPECT_NE(log.find("backend=epoll"), std::string::npos) << log;
	if (UringBuilt()) {
		EXPECT_NE(log.find("io_uring unavailable (io_uring_setup: Operation not permitted"),
			  std::string::npos)
		    << log;
	}
	size_t at = log.find("127.0.0.1:");
	ASSERT_NE(at, std::string::npos) << log;
	int port = std::stoi(log.substr(at + 10));
	EXPECT_TRUE(ConnectAndEcho(kLoopback, port, "still echoes\n", 5000, &error)) << error;
	p.Stop(3000);
}

} // namespace
} // namespace e2e
