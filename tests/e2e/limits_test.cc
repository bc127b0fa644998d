// --max-conns and --max-conns-per-ip: connections over the limit are accepted
// and closed at once; a slot freed by a close can be used again.
#include <signal.h>

#include "fixture.h"

namespace e2e
{
namespace
{

using LimitsTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(LimitsTest);

constexpr int kTimeoutMs = 5000;

// Opens n connections from src and checks that each one echoes.
void OpenEchoing(int port, size_t n, const std::string &src, std::vector<Fd> *fds)
{
	std::string error;
	for (size_t i = 0; i < n; i++) {
		fds->push_back(Connect(kLoopback, port, kTimeoutMs, &error, src));
		ASSERT_TRUE(fds->back().valid()) << error;
		ASSERT_TRUE(EchoOnce(fds->back().get(), "ping\n", kTimeoutMs, &error))
		    << "connection " << i << " from " << src << ": " << error;
	}
}

// A connection over the limit reads EOF or a reset, never the echo.
void ExpectRejected(int port, const std::string &src)
{
	std::string error;
	Fd fd = Connect(kLoopback, port, kTimeoutMs, &error, src);
	ASSERT_TRUE(fd.valid()) << error;
	SendAll(fd.get(), "ping\n", kTimeoutMs); // may fail once echod closed it
	RecvStatus st = WaitClosed(fd.get(), kTimeoutMs);
	EXPECT_TRUE(st == RecvStatus::kEof || st == RecvStatus::kReset)
	    << "connection over the limit from " << src << ": " << ToString(st);
}

// SIGUSR1 logs the counters; token is e.g. "rejected_max_conns=1".
void ExpectCounter(Daemon *d, const std::string &token)
{
	ASSERT_TRUE(d->Signal(SIGUSR1));
	EXPECT_TRUE(d->WaitForLog(" " + token, kTimeoutMs)) << "no " << token << " in:\n"
							    << d->Log();
}

// Closes are asynchronous: retry until a new connection echoes (bounded).
bool EventuallyEchoes(int port)
{
	std::string error;
	return WaitUntil([&] { return ConnectAndEcho(kLoopback, port, "again\n", 1000, &error); },
			 kTimeoutMs, 50);
}

TEST_P(LimitsTest, MaxConnsCountsAllWorkers)
{
	Daemon *d = StartDaemon({"--max-conns=5"}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<Fd> fds;
	ASSERT_NO_FATAL_FAILURE(OpenEchoing(d->port(), 5, "127.0.0.1", &fds));
	ASSERT_NO_FATAL_FAILURE(ExpectRejected(d->port(), "127.0.0.1"));
	ExpectCounter(d, "rejected_max_conns=1");
	fds.pop_back();
	EXPECT_TRUE(EventuallyEchoes(d->port())) << "a freed slot was not reused";
}

TEST_P(LimitsTest, MaxConnsPerIpCountsEachSourceAddress)
{
	Daemon *d = StartDaemon({"--max-conns-per-ip=3"}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<Fd> fds;
	ASSERT_NO_FATAL_FAILURE(OpenEchoing(d->port(), 3, "127.0.0.1", &fds));
	ASSERT_NO_FATAL_FAILURE(ExpectRejected(d->port(), "127.0.0.1"));
	ASSERT_NO_FATAL_FAILURE(OpenEchoing(d->port(), 1, "127.0.0.2", &fds));
	ExpectCounter(d, "rejected_per_ip=1");
}

} // namespace
} // namespace e2e
