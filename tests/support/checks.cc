#include "checks.h"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "fixture.h"

namespace e2e
{
namespace
{
constexpr int kTimeoutMs = 5000;
constexpr int kStreamTimeoutMs = 10000; // the suites' own, for a stream's connect
} // namespace

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

std::string KeepTicking(int port, bool *starved)
{
	using Clock = std::chrono::steady_clock;
	Fd fd = MustConnect(port, 2 * kTimeoutMs);
	std::string error;
	auto last = Clock::now();
	*starved = false;
	for (int i = 0; i < 9 && fd.valid(); i++) {
		auto gap = Clock::now() - last;
		if (!EchoOnce(fd.get(), "tick\n", 2000, &error)) {
			*starved = gap > std::chrono::milliseconds(800);
			return "active connection closed at tick " + std::to_string(i) + ": " +
			       error;
		}
		last = Clock::now();
		usleep(300 * 1000);
	}
	return fd.valid() ? "" : "cannot connect";
}

std::string StreamOverNewConnection(int port, const std::string &data, const StreamOptions &opt)
{
	std::string error;
	Fd fd = Connect(kLoopback, port, kStreamTimeoutMs, &error);
	return fd.valid() ? StreamEcho(fd.get(), data, opt) : error;
}

std::vector<std::string> ConcurrentStreams(int port, int conns, size_t bytes)
{
	std::vector<std::string> errors(static_cast<size_t>(conns));
	std::vector<std::thread> threads;
	for (int i = 0; i < conns; i++) {
		threads.emplace_back([&, i] {
			StreamOptions opt;
			opt.seed = uint64_t(i) + 1;
			opt.max_chunk = 32768;
			errors[size_t(i)] =
			    StreamOverNewConnection(port, RandomBytes(bytes, opt.seed), opt);
		});
	}
	for (auto &t : threads)
		t.join();
	return errors;
}

// The line of log holding needle, "" when none does.
std::string LineWith(const std::string &log, const std::string &needle)
{
	size_t at = log.find(needle);
	if (at == std::string::npos)
		return "";
	size_t from = log.rfind('\n', at);
	from = from == std::string::npos ? 0 : from + 1;
	return log.substr(from, log.find('\n', at) - from);
}

} // namespace e2e
