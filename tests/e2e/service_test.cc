// The small services on every backend: daytime (RFC 867), discard (RFC 863),
// chargen (RFC 864), reverse, over TCP and UDP; the banner only on echo.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <regex>
#include <thread>

#include "fixture.h"
#include "udp.h"

namespace e2e
{
namespace
{

using ServiceTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(ServiceTest);

constexpr int kTimeoutMs = 10000;

// Everything until the peer closes (or the timeout); *closed says whether it did.
std::string ReadToEof(int fd, int timeout_ms, bool *closed)
{
	std::string out;
	char buf[65536];
	auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
	*closed = false;
	while (std::chrono::steady_clock::now() < end) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			out.append(buf, size_t(n));
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			*closed = true;
			break;
		}
		pollfd p = {fd, POLLIN, 0};
		poll(&p, 1, 50);
	}
	return out;
}

std::string DaytimeAt(time_t t)
{
	struct tm tm;
	char buf[128];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%A, %B %-d, %Y %H:%M:%S-UTC\r\n", &tm);
	return buf;
}

// The RFC 867 line of some second in [before, after].
bool IsDaytimeBetween(const std::string &line, time_t before, time_t after)
{
	for (time_t t = before; t <= after; t++)
		if (line == DaytimeAt(t))
			return true;
	return false;
}

// Line k of RFC 864's pattern.
std::string ChargenLine(size_t k)
{
	std::string line;
	for (size_t j = 0; j < 72; j++)
		line += char(' ' + (k + j) % 95);
	return line + "\r\n";
}

// The chargen stream from its start, n bytes.
std::string ChargenStream(size_t n)
{
	std::string s;
	for (size_t k = 0; s.size() < n; k++)
		s += ChargenLine(k);
	return s.substr(0, n);
}

TEST_P(ServiceTest, DaytimeOverTcpIsOneLineThenClose)
{
	Daemon *d = StartDaemon({}, 2, {"127.0.0.1:0/daytime"});
	ASSERT_NE(d, nullptr);
	for (int i = 0; i < 5; i++) {
		std::string error;
		time_t before = time(nullptr);
		Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
		ASSERT_TRUE(fd.valid()) << error;
		bool closed;
		std::string line = ReadToEof(fd.get(), kTimeoutMs, &closed);
		EXPECT_TRUE(closed);
		EXPECT_TRUE(IsDaytimeBetween(line, before, time(nullptr))) << "'" << line << "'";
	}
	EXPECT_EQ(WaitCounter(d, "closed_eof", 5, kTimeoutMs), 5u);
}

TEST_P(ServiceTest, DaytimeOverUdpIsOneDatagramPerDatagram)
{
	Daemon *d = StartDaemon({}, 2, {"udp:127.0.0.1:0/daytime"});
	ASSERT_NE(d, nullptr);
	std::string error, back;
	Fd fd = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(fd.valid()) << error;
	time_t before = time(nullptr);
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(UdpSendTo(fd.get(), kLoopback, d->port(), i == 0 ? "" : "what time?"));
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(UdpRecv(fd.get(), &back, kTimeoutMs), RecvStatus::kOk) << i;
		EXPECT_TRUE(IsDaytimeBetween(back, before, time(nullptr))) << "'" << back << "'";
	}
	EXPECT_EQ(UdpRecv(fd.get(), &back, 200), RecvStatus::kTimeout) << "one answer each";
}

TEST_P(ServiceTest, DiscardDropsEverythingAndClosesOnFin)
{
	constexpr size_t kBytes = 8 << 20;
	Daemon *d = StartDaemon({}, 1, {"127.0.0.1:0/discard"});
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(fd.valid()) << error;
	ASSERT_TRUE(SendAll(fd.get(), RandomBytes(kBytes, 9), kTimeoutMs));
	ASSERT_EQ(shutdown(fd.get(), SHUT_WR), 0);
	bool closed;
	EXPECT_EQ(ReadToEof(fd.get(), kTimeoutMs, &closed), "") << "discard answers nothing";
	EXPECT_TRUE(closed);
	auto c = Counters(d, kTimeoutMs);
	EXPECT_EQ(c["bytes_in"], kBytes);
	EXPECT_EQ(c["bytes_out"], 0u);
	EXPECT_EQ(c["buffers_held"], 0u);
}

// A flood into discard holds no memory and, read in budgets, does not starve the
// worker's other connections: an echo on the same worker keeps answering.
TEST_P(ServiceTest, DiscardFloodHoldsNothingAndStarvesNoOne)
{
	Daemon *d = StartDaemon({}, 1, {"127.0.0.1:0/discard", "127.0.0.1:0"});
	ASSERT_NE(d, nullptr);
	long rss_before = d->WorkersRssKb();
	std::string error;
	std::atomic<bool> stop{false};
	std::thread flood([&] {
		std::string err;
		Fd fd = Connect(kLoopback, d->port(0), kTimeoutMs, &err);
		std::string chunk = RandomBytes(1 << 20, 4);
		for (int i = 0; i < 256 && !stop && fd.valid(); i++)
			SendAll(fd.get(), chunk, kTimeoutMs);
	});
	ASSERT_GE(WaitCounter(d, "bytes_in", 16 << 20, kTimeoutMs), uint64_t(16 << 20));
	Fd echo = Connect(kLoopback, d->port(1), kTimeoutMs, &error);
	ASSERT_TRUE(echo.valid()) << error;
	for (int i = 0; i < 50; i++)
		ASSERT_TRUE(EchoOnce(echo.get(), "still here " + std::to_string(i) + "\n",
				     kTimeoutMs, &error))
		    << error;
	stop = true;
	flood.join();
	EXPECT_LT(d->WorkersRssKb() - rss_before, 4096) << "KiB grown under the flood";
	EXPECT_EQ(Counters(d, kTimeoutMs)["buffers_held"], 0u);
}

TEST_P(ServiceTest, DiscardOverUdpAnswersNothing)
{
	Daemon *d = StartDaemon({}, 1, {"udp:127.0.0.1:0/discard"});
	ASSERT_NE(d, nullptr);
	std::string error, back;
	Fd fd = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(fd.valid()) << error;
	for (int i = 0; i < 10; i++)
		ASSERT_TRUE(UdpSendTo(fd.get(), kLoopback, d->port(), "into the void"));
	EXPECT_EQ(WaitCounter(d, "udp_in", 10, kTimeoutMs), 10u);
	EXPECT_FALSE(UdpPoll(fd.get(), &back)) << back;
	EXPECT_EQ(Counters(d, kTimeoutMs)["udp_out"], 0u);
}

TEST_P(ServiceTest, ChargenPatternOverManyLines)
{
	constexpr size_t kLines = 5000; // the pattern's 95-line period, many times over
	Daemon *d = StartDaemon({"--banner=not for chargen"}, 2, {"127.0.0.1:0/chargen"});
	ASSERT_NE(d, nullptr);
	std::string error, got;
	Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(fd.valid()) << error;
	ASSERT_EQ(RecvExact(fd.get(), &got, kLines * 74, kTimeoutMs), RecvStatus::kOk);
	std::string want = ChargenStream(kLines * 74);
	for (size_t k = 0; k < kLines; k++)
		ASSERT_EQ(got.substr(k * 74, 74), want.substr(k * 74, 74)) << "line " << k;
}

// A reader that pauses stops chargen (the kernel's buffers fill, then nothing more
// is sent: bytes_out stands still), and the stream then goes on exactly where it was.
TEST_P(ServiceTest, ChargenWaitsForASlowReaderAndLosesNothing)
{
	Daemon *d = StartDaemon({}, 1, {"127.0.0.1:0/chargen"});
	ASSERT_NE(d, nullptr);
	std::string error, got, part;
	Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(fd.valid()) << error;
	for (int pause = 0; pause < 3; pause++) {
		uint64_t last = ~0ull, now = 0;
		ASSERT_TRUE(WaitUntil(
		    [&] {
			    now = Counters(d, 2000)["bytes_out"];
			    bool still = now == last;
			    last = now;
			    return still;
		    },
		    kTimeoutMs, 100))
		    << "chargen kept sending to a reader that reads nothing";
		EXPECT_LT(now, got.size() + (64u << 20)) << "bounded by the socket buffers";
		EXPECT_EQ(Counters(d, 2000)["buffers_held"], 0u);
		for (int i = 0; i < 20; i++) {
			ASSERT_EQ(RecvExact(fd.get(), &part, 1000 + size_t(i) * 37, kTimeoutMs),
				  RecvStatus::kOk);
			got += part;
		}
	}
	EXPECT_TRUE(got == ChargenStream(got.size())) << "the stream skipped or repeated bytes";
}

TEST_P(ServiceTest, ChargenOverUdpIsSixLinesAndKeepsTheGuard)
{
	Daemon *d = StartDaemon({}, 1, {"udp:127.0.0.1:0/chargen"});
	ASSERT_NE(d, nullptr);
	std::string error, back;
	Fd fd = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(fd.valid()) << error;
	ASSERT_TRUE(UdpSendTo(fd.get(), kLoopback, d->port(), "x"));
	ASSERT_EQ(UdpRecv(fd.get(), &back, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(back, ChargenStream(6 * 74));
	// The echo/chargen loop of the inetds: a chargen answering a server port is refused.
	Fd low;
	for (int host = 1; host < 64 && !low.valid(); host++)
		low = UdpSocket("127.0.0." + std::to_string(host), 19, &error);
	ASSERT_TRUE(low.valid()) << error;
	ASSERT_TRUE(UdpSendTo(low.get(), kLoopback, d->port(), "x"));
	EXPECT_EQ(WaitCounter(d, "udp_refused_port", 1, kTimeoutMs), 1u);
	EXPECT_FALSE(UdpPoll(low.get(), &back));
}

TEST_P(ServiceTest, ReverseLongAndEmptyLines)
{
	Daemon *d = StartDaemon({"--banner=echo only"}, 2, {"127.0.0.1:0/reverse"});
	ASSERT_NE(d, nullptr);
	std::string longest = RandomBytes(4095, 3);
	for (char &c : longest)
		if (c == '\n' || c == '\r')
			c = '.';
	// Both long lines are 4096 bytes with their LF or CRLF: at the bound, still served.
	std::string want =
	    "\n" + std::string(longest.rbegin(), longest.rend()) + "\nba\r\n\r\n\ndlrow olleh\n";
	std::string third = longest.substr(0, 4094);
	std::string in = "\n" + longest + "\nab\r\n\r\n\nhello world\n" + third + "\r\nlast";
	want += std::string(third.rbegin(), third.rend()) + "\r\ntsal";
	std::string error;
	Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(fd.valid()) << error;
	for (size_t at = 0; at < in.size(); at += 777) // lines split across reads
		ASSERT_TRUE(SendAll(fd.get(), in.substr(at, 777), kTimeoutMs));
	ASSERT_EQ(shutdown(fd.get(), SHUT_WR), 0);
	bool closed;
	std::string got = ReadToEof(fd.get(), kTimeoutMs, &closed);
	EXPECT_TRUE(closed);
	EXPECT_TRUE(got == want) << "got " << got.size() << " bytes, want " << want.size();
}

// A line of valid UTF-8 comes back reversed by characters, any other line by
// bytes; a character split between two sends (two reads, if the kernel keeps them
// apart) is still reversed as one.
TEST_P(ServiceTest, ReverseUtf8ByCharactersElseByBytes)
{
	Daemon *d = StartDaemon({}, 1, {"127.0.0.1:0/reverse"});
	ASSERT_NE(d, nullptr);
	const std::string utf8 = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80";
	const std::string invalid = "caf\xc3\xa9 \xed\xa0\x80 \xc0\xaf";
	const std::string split = "\xe2\x9c\x93 ok \xf0\x9f\x98\x80";
	std::string want = std::string("\xf0\x9f\x98\x80 \xe2\x82\xac dlr\xc3\xb6w oll\xc3\xa9h") +
			   "\r\n" + std::string(invalid.rbegin(), invalid.rend()) + "\n" +
			   "\xf0\x9f\x98\x80 ko \xe2\x9c\x93\n";
	std::string error;
	Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(fd.valid()) << error;
	ASSERT_TRUE(SendAll(fd.get(), utf8 + "\r\n" + invalid + "\n" + split.substr(0, 2),
			    kTimeoutMs));
	std::string got;
	ASSERT_EQ(RecvExact(fd.get(), &got, utf8.size() + invalid.size() + 3, kTimeoutMs),
		  RecvStatus::kOk);
	ASSERT_TRUE(SendAll(fd.get(), split.substr(2) + "\n", kTimeoutMs));
	ASSERT_EQ(shutdown(fd.get(), SHUT_WR), 0);
	bool closed;
	got += ReadToEof(fd.get(), kTimeoutMs, &closed);
	EXPECT_TRUE(closed);
	EXPECT_EQ(got, want);
}

TEST_P(ServiceTest, ReverseClosesOnALineOverTheBound)
{
	Daemon *d = StartDaemon({}, 1, {"127.0.0.1:0/reverse"});
	ASSERT_NE(d, nullptr);
	std::string error, back;
	Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(fd.valid()) << error;
	ASSERT_TRUE(EchoOnce(fd.get(), "\n", kTimeoutMs, &error)) << error; // empty line: "\n"
	SendAll(fd.get(), std::string(5000, 'x'), kTimeoutMs); // no newline in 4096 bytes
	RecvStatus st = WaitClosed(fd.get(), kTimeoutMs);
	EXPECT_TRUE(st == RecvStatus::kEof || st == RecvStatus::kReset) << ToString(st);
	EXPECT_EQ(WaitCounter(d, "closed_error", 1, kTimeoutMs), 1u);
}

TEST_P(ServiceTest, BannerOnlyOnEcho)
{
	Daemon *d = StartDaemon({"--banner=hello from server"}, 2,
				{"127.0.0.1:0", "127.0.0.1:0/reverse", "127.0.0.1:0/daytime"});
	ASSERT_NE(d, nullptr);
	std::string error, got;
	Fd echo = Connect(kLoopback, d->port(0), kTimeoutMs, &error);
	ASSERT_TRUE(echo.valid()) << error;
	ASSERT_EQ(RecvExact(echo.get(), &got, 19, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(got, "hello from server\r\n");
	EXPECT_TRUE(EchoOnce(echo.get(), "then echo\n", kTimeoutMs, &error)) << error;
	Fd rev = Connect(kLoopback, d->port(1), kTimeoutMs, &error);
	ASSERT_TRUE(rev.valid()) << error;
	ASSERT_TRUE(SendAll(rev.get(), "abc\n", kTimeoutMs));
	ASSERT_EQ(RecvExact(rev.get(), &got, 4, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(got, "cba\n");
	Fd day = Connect(kLoopback, d->port(2), kTimeoutMs, &error);
	ASSERT_TRUE(day.valid()) << error;
	bool closed;
	EXPECT_EQ(ReadToEof(day.get(), kTimeoutMs, &closed).find("hello"), std::string::npos);
}

TEST_P(ServiceTest, ServicesDrainOnTerm)
{
	Daemon *d = StartDaemon({"--drain-timeout=1"}, 1, {"127.0.0.1:0/chargen"});
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(fd.valid()) << error;
	std::string got;
	ASSERT_EQ(RecvExact(fd.get(), &got, 740, kTimeoutMs), RecvStatus::kOk);
	ASSERT_TRUE(d->Signal(SIGTERM));
	auto status = d->WaitExit(kTimeoutMs);
	ASSERT_TRUE(status.has_value()) << "still running after TERM and the drain timeout";
	EXPECT_EQ(*status, 0);
}

// echo-bench drives the sink and the source: send-only into discard, receive-only
// from chargen (checking every byte against RFC 864's pattern).
TEST_P(ServiceTest, EchoBenchDrivesDiscardAndChargen)
{
	Daemon *d = StartDaemon({}, 2, {"127.0.0.1:0/discard", "127.0.0.1:0/chargen"});
	ASSERT_NE(d, nullptr);
	for (int i = 0; i < 2; i++) {
		std::string target = "127.0.0.1:" + std::to_string(d->port(size_t(i)));
		RunResult r = RunProgram(ECHO_BENCH_BIN,
					 {"--mode", i == 0 ? "send" : "recv", "-c", "4", "-s",
					  "16k", "-d", "500ms", "--json", target},
					 "", 20000);
		EXPECT_EQ(r.status, 0) << r.out << r.err;
		EXPECT_NE(r.out.find("\"errors\":{\"total\":0,"), std::string::npos) << r.out;
		EXPECT_EQ(r.out.find(i == 0 ? "\"bytes_sent\":0," : "\"bytes_received\":0,"),
			  std::string::npos)
		    << r.out;
	}
}

} // namespace
} // namespace e2e
