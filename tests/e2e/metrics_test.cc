// The metrics endpoint of the real daemon: the text format and the values after
// known traffic (per worker and per listener), echod_build_info and the process_*
// series, HEAD and the short
// error answers, scrape slots that garbage and half-sent requests cannot hold, and
// the warning instead of a URL when echod's own socket is in a loopback-only
// network namespace (PrivateNetwork=yes). The socket systemd passes named
// "metrics" is in activation_test.cc.
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <sstream>
#include <vector>

#include "fixture.h"
#include "http.h"
#include "udp.h"

namespace e2e
{
namespace
{

constexpr int kIoMs = 5000;

// Waits on the daemon stretch under a wrapper (ECHOD_TEST_TIMEOUT_SCALE, valgrind).
int IoMs()
{
	return Scaled(kIoMs);
}

using MetricsTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(MetricsTest);

// Sums, per metric name, the samples of every series; checks that each sample
// follows its family's HELP and TYPE and that _total marks the counters.
std::map<std::string, double> ParseMetrics(const std::string &body, std::string *problems)
{
	std::map<std::string, double> sums;
	std::map<std::string, std::string> types;
	std::istringstream lines(body);
	std::string line;
	const std::regex help("# HELP ((echod|process)_[a-z_]+) .+");
	const std::regex type("# TYPE ((echod|process)_[a-z_]+) (counter|gauge)");
	const std::regex sample("((echod|process)_[a-z_]+)(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? "
				"([0-9]+(\\.[0-9]+)?)");
	std::smatch m;
	while (std::getline(lines, line)) {
		if (std::regex_match(line, m, help))
			continue;
		if (std::regex_match(line, m, type)) {
			types[m[1]] = m[3];
			continue;
		}
		if (!std::regex_match(line, m, sample)) {
			*problems += "bad line: '" + line + "'\n";
			continue;
		}
		const std::string name = m[1];
		if (!types.count(name))
			*problems += "no # TYPE before " + name + "\n";
		else if ((types[name] == "counter") !=
			 (name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0))
			*problems += name + " is a " + types[name] + ": _total must mark counters\n";
		sums[name] += std::stod(m[5]);
	}
	return sums;
}

TEST_P(MetricsTest, FormatAndValuesAfterKnownTraffic)
{
	Daemon *d = StartDaemon({"--metrics=127.0.0.1:0"});
	ASSERT_NE(d, nullptr);
	int mport = MetricsPort(*d, IoMs());
	ASSERT_GT(mport, 0) << d->Log();

	const int conns = 10;
	const std::string msg = RandomBytes(3000, 7);
	std::string error;
	for (int i = 0; i < conns; i++)
		ASSERT_TRUE(ConnectAndEcho(kLoopback, d->port(), msg, IoMs(), &error)) << error;

	std::map<std::string, double> m;
	HttpAnswer a;
	std::string problems;
	// The closes are counted once echod has seen them: poll a little.
	bool settled = WaitUntil(
	    [&] {
		    a = HttpSplit(HttpGet(mport, "/metrics", IoMs(), &error));
		    if (!a.complete)
			    return false;
		    problems.clear();
		    m = ParseMetrics(a.body, &problems);
		    return m["echod_closed_eof_total"] == conns && m["echod_open"] == 0;
	    },
	    5000, 100);
	EXPECT_TRUE(settled) << a.body;
	EXPECT_EQ(a.status, "HTTP/1.0 200 OK");
	EXPECT_NE(a.headers.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
	EXPECT_NE(a.headers.find("Content-Length: " + std::to_string(a.body.size()) + "\r\n"),
		  std::string::npos)
	    << a.headers;
	EXPECT_EQ(problems, "") << a.body;
	EXPECT_EQ(m["echod_accepted_total"], conns) << a.body;
	EXPECT_EQ(m["echod_closed_eof_total"], conns) << a.body;
	EXPECT_EQ(m["echod_bytes_in_total"], double(conns) * double(msg.size())) << a.body;
	EXPECT_EQ(m["echod_bytes_out_total"], double(conns) * double(msg.size())) << a.body;
	EXPECT_GE(m["echod_msgs_total"], conns) << a.body;
	EXPECT_EQ(m["echod_open"], 0) << a.body;
	EXPECT_EQ(m["echod_workers"], 2) << a.body;
	EXPECT_EQ(m["echod_closed_reset_total"] + m["echod_closed_error_total"], 0) << a.body;
	// One series per worker slot.
	EXPECT_NE(a.body.find("echod_accepted_total{worker=\"0\"}"), std::string::npos) << a.body;
	EXPECT_NE(a.body.find("echod_accepted_total{worker=\"1\"}"), std::string::npos) << a.body;
	EXPECT_NE(a.body.find("# HELP echod_bytes_out_total "), std::string::npos) << a.body;
	EXPECT_NE(a.body.find("# TYPE echod_bytes_out_total counter"), std::string::npos) << a.body;
	EXPECT_NE(a.body.find("# TYPE echod_open gauge"), std::string::npos) << a.body;
}

// The value of one series, -1 when it is not there.
double Sample(const std::string &body, const std::string &series)
{
	size_t at = body.find("\n" + series + " ");
	if (at == std::string::npos)
		return -1;
	return std::stod(body.substr(at + series.size() + 2));
}

// Counters per listener (label listener="tcp 127.0.0.1:PORT", service=...), summed
// over the workers, and kept when a worker dies.
TEST_P(MetricsTest, PerListenerCounters)
{
	Daemon *d = StartDaemon({"--metrics=127.0.0.1:0"}, 2,
				{"127.0.0.1:0", "udp:127.0.0.1:0", "127.0.0.1:0/reverse"});
	ASSERT_NE(d, nullptr);
	int mport = MetricsPort(*d, IoMs());
	ASSERT_GT(mport, 0) << d->Log();
	const std::string tcp = "listener=\"tcp 127.0.0.1:" + std::to_string(d->port(0)) +
				"\",service=\"echo\"}",
			  udp = "listener=\"udp 127.0.0.1:" + std::to_string(d->port(1)) +
				"\",service=\"echo\"}",
			  rev = "listener=\"tcp 127.0.0.1:" + std::to_string(d->port(2)) +
				"\",service=\"reverse\"}";
	std::string error, back;
	for (int i = 0; i < 3; i++)
		ASSERT_TRUE(ConnectAndEcho(kLoopback, d->port(0), std::string(100, 'x'), IoMs(), &error))
		    << error;
	Fd u = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(u.valid()) << error;
	for (int i = 0; i < 2; i++) {
		ASSERT_TRUE(UdpSendTo(u.get(), kLoopback, d->port(1), std::string(10, 'u')));
		ASSERT_EQ(UdpRecv(u.get(), &back, IoMs()), RecvStatus::kOk);
	}
	Fd r = Connect(kLoopback, d->port(2), IoMs(), &error);
	ASSERT_TRUE(r.valid()) << error;
	ASSERT_TRUE(SendAll(r.get(), "abc\n", IoMs()));
	ASSERT_EQ(RecvExact(r.get(), &back, 4, IoMs()), RecvStatus::kOk);
	r.Reset();

	auto expect_counts = [&](const std::string &when) {
		HttpAnswer a;
		std::string problems;
		bool settled = WaitUntil(
		    [&] {
			    a = HttpSplit(HttpGet(mport, "/metrics", IoMs(), &error));
			    return Sample(a.body, "echod_listener_bytes_out_total{" + tcp) == 300 &&
				   Sample(a.body, "echod_listener_bytes_out_total{" + rev) == 4;
		    },
		    IoMs(), 50);
		EXPECT_TRUE(settled) << when << "\n" << a.body;
		std::map<std::string, double> m = ParseMetrics(a.body, &problems);
		EXPECT_EQ(problems, "") << a.body;
		EXPECT_EQ(Sample(a.body, "echod_listener_accepted_total{" + tcp), 3) << when;
		EXPECT_EQ(Sample(a.body, "echod_listener_accepted_total{" + rev), 1) << when;
		EXPECT_EQ(Sample(a.body, "echod_listener_accepted_total{" + udp), -1) << when;
		EXPECT_EQ(Sample(a.body, "echod_listener_bytes_in_total{" + tcp), 300) << when;
		EXPECT_EQ(Sample(a.body, "echod_listener_bytes_in_total{" + udp), 20) << when;
		EXPECT_EQ(Sample(a.body, "echod_listener_bytes_out_total{" + udp), 20) << when;
		EXPECT_EQ(Sample(a.body, "echod_listener_udp_in_total{" + udp), 2) << when;
		EXPECT_EQ(Sample(a.body, "echod_listener_udp_out_total{" + udp), 2) << when;
		EXPECT_EQ(Sample(a.body, "echod_listener_udp_in_total{" + tcp), -1) << when;
		// The listeners' shares add up to the workers' totals.
		EXPECT_EQ(m["echod_listener_accepted_total"], m["echod_accepted_total"]) << when;
		EXPECT_EQ(m["echod_listener_bytes_in_total"], m["echod_bytes_in_total"]) << when;
		EXPECT_EQ(m["echod_listener_bytes_out_total"], m["echod_bytes_out_total"]) << when;
		EXPECT_EQ(m["echod_listener_udp_in_total"], m["echod_udp_in_total"]) << when;
	};
	expect_counts("before a worker dies");
	std::vector<pid_t> workers = d->Workers();
	ASSERT_EQ(workers.size(), 2u);
	kill(workers[0], SIGKILL);
	kill(workers[1], SIGKILL);
	ASSERT_TRUE(WaitUntil(
	    [&] {
		    std::vector<pid_t> now = d->Workers();
		    return now.size() == 2 && now[0] != workers[0] && now[0] != workers[1] &&
			   now[1] != workers[0] && now[1] != workers[1];
	    },
	    IoMs()));
	expect_counts("after both workers were replaced");
}

TEST_P(MetricsTest, BuildInfoAndProcessSeries)
{
	Daemon *d = StartDaemon({"--metrics=127.0.0.1:0"});
	ASSERT_NE(d, nullptr);
	int mport = MetricsPort(*d, IoMs());
	ASSERT_GT(mport, 0) << d->Log();
	std::string error, problems;
	HttpAnswer a = HttpSplit(HttpGet(mport, "/metrics", IoMs(), &error));
	ASSERT_TRUE(a.complete) << error;
	std::map<std::string, double> m = ParseMetrics(a.body, &problems);
	EXPECT_EQ(problems, "") << a.body;

	std::smatch info;
	ASSERT_TRUE(std::regex_search(a.body, info,
				      std::regex("\nechod_build_info\\{version=\"([^\"]+)\","
						 "backend=\"([a-z_]+)\",sd_daemon=\"[^\"]+\","
						 "seccomp=\"(on|off)\"\\} 1\n")))
	    << a.body;
	EXPECT_EQ(info[2], backend());
	RunResult v = RunEchod({"-V"});
	EXPECT_NE(v.out.find("echod " + std::string(info[1])), std::string::npos) << v.out;

	// The supervisor and its two workers: each holds descriptors and memory.
	EXPECT_GE(m["process_open_fds"], 3 * 3) << a.body;
	EXPECT_GT(m["process_resident_memory_bytes"], 3 * 4096) << a.body;
	EXPECT_GE(m["process_max_fds"], m["process_open_fds"]) << a.body;
	EXPECT_EQ(m.count("process_cpu_seconds_total"), 1u) << a.body;
	double start = m["process_start_time_seconds"], now = double(time(nullptr));
	EXPECT_GT(start, now - 3600) << a.body;
	EXPECT_LE(start, now + 1) << a.body;

	// A worker that dies keeps its CPU time in the counter: it never goes back.
	double cpu = m["process_cpu_seconds_total"];
	std::vector<pid_t> workers = d->Workers();
	ASSERT_EQ(workers.size(), 2u);
	kill(workers[0], SIGKILL);
	ASSERT_TRUE(WaitUntil([&] { return d->Workers().size() == 2 && d->Workers() != workers; },
			      IoMs()));
	a = HttpSplit(HttpGet(mport, "/metrics", IoMs(), &error));
	m = ParseMetrics(a.body, &problems);
	EXPECT_GE(m["process_cpu_seconds_total"], cpu) << a.body;
}

TEST_P(MetricsTest, HeadAndShortErrorAnswers)
{
	Daemon *d = StartDaemon({"--metrics=127.0.0.1:0"}, 1);
	ASSERT_NE(d, nullptr);
	int mport = MetricsPort(*d, IoMs());
	ASSERT_GT(mport, 0) << d->Log();
	std::string error;

	HttpAnswer head = HttpSplit(HttpRequest(mport, "HEAD", "/metrics", IoMs(), &error));
	ASSERT_TRUE(head.complete) << error;
	EXPECT_EQ(head.status, "HTTP/1.0 200 OK");
	EXPECT_EQ(head.body, "");
	std::smatch len;
	ASSERT_TRUE(std::regex_search(head.headers, len, std::regex("Content-Length: ([0-9]+)\r\n")))
	    << head.headers;
	EXPECT_GT(std::stoul(len[1]), 1000u);

	struct Case {
		std::string request, status;
	} cases[] = {
	    {"GET /other HTTP/1.1\r\n\r\n", "HTTP/1.0 404 Not Found"},
	    {"GET / HTTP/1.0\r\n\r\n", "HTTP/1.0 404 Not Found"},
	    {"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.0 405 Method Not Allowed"},
	    {"hello echod\r\n\r\n", "HTTP/1.0 400 Bad Request"},
	    {"\x16\x03\x01\x00\x05hello", "HTTP/1.0 400 Bad Request"},
	};
	for (const Case &c : cases) {
		HttpAnswer a = HttpSplit(HttpRaw(mport, c.request, IoMs(), &error));
		ASSERT_TRUE(a.complete) << c.request << ": " << error;
		EXPECT_EQ(a.status, c.status) << c.request;
		EXPECT_FALSE(a.body.empty()) << c.request;
		EXPECT_LT(a.body.size(), 200u) << c.request;
		EXPECT_NE(a.headers.find("Content-Length: " + std::to_string(a.body.size()) + "\r\n"),
			  std::string::npos)
		    << a.headers;
		if (c.status.find("405") != std::string::npos) {
			EXPECT_NE(a.headers.find("Allow: GET, HEAD\r\n"), std::string::npos);
		}
	}
}

TEST_P(MetricsTest, RequestInPiecesIsAnswered)
{
	Daemon *d = StartDaemon({"--metrics=127.0.0.1:0"}, 1);
	ASSERT_NE(d, nullptr);
	int mport = MetricsPort(*d, IoMs());
	ASSERT_GT(mport, 0) << d->Log();
	std::string error;
	Fd fd = Connect(kLoopback, mport, IoMs(), &error);
	ASSERT_TRUE(fd.valid()) << error;
	for (const char *piece : {"GE", "T /met", "rics HTTP/1.1\r", "\nHost: x\r\n", "\r\n"}) {
		ASSERT_TRUE(SendAll(fd.get(), piece, IoMs()));
		usleep(20 * 1000);
	}
	std::string head;
	ASSERT_EQ(RecvExact(fd.get(), &head, 17, IoMs()), RecvStatus::kOk);
	EXPECT_EQ(head, "HTTP/1.0 200 OK\r\n");
}

// Every slot taken by peers that send nothing, half a request or garbage that
// could still be a method: a real scrape is still answered (the oldest incomplete
// request gives way), and a half-sent request is closed at its deadline.
TEST_P(MetricsTest, HalfSentRequestsAndGarbageCannotHoldEverySlot)
{
	Daemon *d = StartDaemon({"--metrics=127.0.0.1:0"}, 1);
	ASSERT_NE(d, nullptr);
	int mport = MetricsPort(*d, IoMs());
	ASSERT_GT(mport, 0) << d->Log();
	std::string error;
	const char *partial[] = {"", "GET /metr", "GET /metrics HTTP/1.1\r\nHost: x\r\n", "AAAAAA"};
	std::vector<Fd> hogs;
	for (int i = 0; i < 64; i++) {
		Fd fd = Connect(kLoopback, mport, IoMs(), &error);
		ASSERT_TRUE(fd.valid()) << i << ": " << error;
		ASSERT_TRUE(SendAll(fd.get(), partial[i % 4], IoMs()));
		hogs.push_back(std::move(fd));
	}
	for (int round = 0; round < 3; round++) {
		HttpAnswer a = HttpSplit(HttpGet(mport, "/metrics", IoMs(), &error));
		ASSERT_TRUE(a.complete) << "round " << round << ": " << error;
		EXPECT_EQ(a.status, "HTTP/1.0 200 OK");
		EXPECT_NE(a.body.find("echod_workers 1\n"), std::string::npos);
	}
	// The newest hog still holds a slot until its request deadline: then it goes.
	EXPECT_TRUE(WaitPeerGone(hogs.back().get(), 4 * IoMs()));
	// And the endpoint still answers afterwards.
	HttpAnswer a = HttpSplit(HttpGet(mport, "/metrics", IoMs(), &error));
	EXPECT_EQ(a.status, "HTTP/1.0 200 OK") << error;
}

// PrivateNetwork=yes: echod's own socket is in a namespace with only loopback.
// It must not be logged as a URL anyone could scrape.
TEST(MetricsNamespace, LoopbackOnlyNamespaceIsNotLoggedAsReachable)
{
	std::string unshare = FindProgram("unshare"), ip = FindProgram("ip");
	if (unshare.empty() || ip.empty())
		GTEST_SKIP() << "unshare or ip not found";
	RunResult probe = RunProgram(unshare, {"-rn", ip, "link", "set", "lo", "up"});
	if (probe.status != 0)
		GTEST_SKIP() << "cannot make a network namespace here: " << probe.err;
	Process p;
	std::string error;
	ASSERT_TRUE(p.Start(unshare,
			    {"-rn", "sh", "-c", ip + " link set lo up && exec \"$0\" \"$@\"", ECHOD_BIN,
			     "-b", "epoll", "-w", "1", "-l", "127.0.0.1:0", "--metrics=127.0.0.1:0"},
			    "", &error))
	    << error;
	ASSERT_TRUE(p.WaitForStderr("echod: ready", kStartTimeoutMs)) << p.Stderr();
	std::string log = p.Stderr();
	EXPECT_NE(log.find("nothing outside it can reach them"), std::string::npos) << log;
	EXPECT_NE(log.find("echod-metrics.socket"), std::string::npos) << log;
	EXPECT_EQ(log.find("metrics on http://"), std::string::npos) << log;
	p.Signal(SIGTERM);
	EXPECT_EQ(p.WaitExit(kStartTimeoutMs), std::optional<int>(0)) << p.Stderr();
}

} // namespace
} // namespace e2e
