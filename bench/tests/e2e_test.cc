// echo-bench against echo servers run inside the test, good and deliberately broken.
#include "support.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

namespace
{

using ebtest::Behavior;
using ebtest::TestServer;
using Json = std::map<std::string, std::string>;

const char *const kErrorKinds[] = {"mismatch", "reset", "timeout", "short", "connect"};

// Runs echo-bench with --json against target; the JSON must parse.
Json bench_json(const std::string &target, std::vector<std::string> args, int *status)
{
	args.push_back("--json");
	args.push_back(target);
	ebtest::BenchRun r = ebtest::run_bench(args);
	Json j;
	*status = r.status;
	EXPECT_TRUE(ebtest::parse_json(r.out, &j)) << "stdout: " << r.out << "\nstderr: " << r.err;
	return j;
}

double err(const Json &j, const char *kind)
{
	return ebtest::json_num(j, std::string("errors.") + kind);
}

// Exactly the named kind is non-zero (at least once) and the total agrees.
void expect_only_error(const Json &j, const char *kind)
{
	double total = 0;
	for (const char *k : kErrorKinds) {
		double n = err(j, k);
		total += n;
		if (std::string(k) == kind)
			EXPECT_GE(n, 1) << k;
		else
			EXPECT_EQ(n, 0) << k;
	}
	EXPECT_EQ(ebtest::json_num(j, "errors.total"), total);
}

void expect_clean(const Json &j)
{
	for (const char *k : kErrorKinds)
		EXPECT_EQ(err(j, k), 0) << k;
	EXPECT_EQ(ebtest::json_num(j, "errors.total"), 0);
}

// Every connection opened before the window, and stayed open through it.
void expect_all_open(const Json &j, int conns)
{
	EXPECT_EQ(j.at("open.complete"), "true");
	EXPECT_EQ(ebtest::json_num(j, "open.requested"), conns);
	EXPECT_EQ(ebtest::json_num(j, "open.opened"), conns);
	EXPECT_EQ(ebtest::json_num(j, "open.window_min"), conns);
	EXPECT_EQ(ebtest::json_num(j, "open.window_max"), conns);
	EXPECT_EQ(ebtest::json_num(j, "open.whole_window"), conns);
	EXPECT_GE(ebtest::json_num(j, "open.open_s"), 0);
	EXPECT_GE(ebtest::json_num(j, "drain_s"), 0);
}

// A loopback listener that never accepts: its queue holds backlog + 1 connections, and
// every later SYN is dropped until the listener closes. Closes on destruction.
class NeverAccepts
{
      public:
	explicit NeverAccepts(int backlog)
	{
		fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		sockaddr_in sa{};
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(sa);
		if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr *>(&sa), len) < 0 ||
		    listen(fd_, backlog) < 0 ||
		    getsockname(fd_, reinterpret_cast<sockaddr *>(&sa), &len) < 0)
			return;
		target_ = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
	}
	~NeverAccepts()
	{
		if (fd_ >= 0)
			close(fd_);
	}
	NeverAccepts(const NeverAccepts &) = delete;
	NeverAccepts &operator=(const NeverAccepts &) = delete;
	const std::string &target() const
	{
		return target_;
	}

      private:
	int fd_ = -1;
	std::string target_;
};

TEST(EchoBench, PingpongAgainstCorrectEcho)
{
	TestServer srv(Behavior::Echo);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j =
	    bench_json(srv.target(), {"-t", "2", "-c", "4", "-d", "1", "--depth", "2"}, &status);
	EXPECT_EQ(status, 0);
	expect_clean(j);
	EXPECT_EQ(j["mode"], "pingpong");
	EXPECT_EQ(j["request_unit"], "msgs");
	EXPECT_GT(ebtest::json_num(j, "requests"), 0);
	EXPECT_GT(ebtest::json_num(j, "requests_per_sec"), 0);
	EXPECT_GE(ebtest::json_num(j, "bytes_sent"), ebtest::json_num(j, "bytes_received"));
	EXPECT_GT(ebtest::json_num(j, "latency_us.count"), 0);
	EXPECT_LE(ebtest::json_num(j, "latency_us.p50"), ebtest::json_num(j, "latency_us.p99"));
	EXPECT_LE(ebtest::json_num(j, "latency_us.p99_9"), ebtest::json_num(j, "latency_us.max"));
	EXPECT_GT(ebtest::json_num(j, "fairness.min"), 0);
	EXPECT_EQ(j["fairness.unit"], "msgs");
	EXPECT_EQ(ebtest::json_num(j, "fairness.connections"), 4);
	EXPECT_EQ(ebtest::json_num(j, "fairness.unserved"), 0);
	EXPECT_GE(ebtest::json_num(j, "fairness.max_min_ratio"), 1);
	EXPECT_EQ(j["idle"], "null");
	expect_all_open(j, 4);
}

TEST(EchoBench, StreamAgainstCorrectEcho)
{
	TestServer srv(Behavior::Echo);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"--mode", "stream", "-c", "2", "-s", "4k", "-d", "1"},
			    &status);
	EXPECT_EQ(status, 0);
	expect_clean(j);
	EXPECT_EQ(j["request_unit"], "blocks");
	EXPECT_GT(ebtest::json_num(j, "bytes_received"), 4096);
	EXPECT_GT(ebtest::json_num(j, "transfer_mb_per_sec"), 0);
	EXPECT_EQ(j["latency_us"], "null");
	EXPECT_EQ(j["fairness.unit"], "bytes");
	EXPECT_EQ(ebtest::json_num(j, "fairness.connections"), 2);
	expect_all_open(j, 2);
}

TEST(EchoBench, ChurnAgainstCorrectEcho)
{
	TestServer srv(Behavior::Echo);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"--mode", "churn", "-c", "4", "-s", "100", "-d", "1"},
			    &status);
	EXPECT_EQ(status, 0);
	expect_clean(j);
	EXPECT_EQ(j["request_unit"], "cycles");
	EXPECT_GT(ebtest::json_num(j, "requests"), 0);
	EXPECT_GT(ebtest::json_num(j, "latency_us.count"), 0);
	// Churn's connections never last the window: its fairness is over the slots.
	EXPECT_EQ(ebtest::json_num(j, "fairness.connections"), 4);
	EXPECT_EQ(j["open.complete"], "true");
	EXPECT_EQ(ebtest::json_num(j, "open.opened"), 4);
	EXPECT_LE(ebtest::json_num(j, "open.window_min"), ebtest::json_num(j, "open.window_max"));
	EXPECT_LE(ebtest::json_num(j, "open.window_max"), 4);
}

TEST(EchoBench, IdleAgainstCorrectEcho)
{
	TestServer srv(Behavior::Echo);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"--mode", "idle", "-c", "50", "-d", "1"}, &status);
	EXPECT_EQ(status, 0);
	expect_clean(j);
	EXPECT_EQ(ebtest::json_num(j, "idle.held"), 50);
	EXPECT_EQ(ebtest::json_num(j, "idle.verified"), 50);
	EXPECT_EQ(ebtest::json_num(j, "requests"), 100);
	EXPECT_EQ(j["fairness"], "null");
	expect_all_open(j, 50);
}

TEST(EchoBench, SendModeAgainstADiscardServer)
{
	TestServer srv(Behavior::Silent);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j =
	    bench_json(srv.target(), {"--mode", "send", "-c", "3", "-s", "4k", "-d", "1"}, &status);
	EXPECT_EQ(status, 0);
	expect_clean(j);
	EXPECT_EQ(j["request_unit"], "blocks");
	EXPECT_GT(ebtest::json_num(j, "bytes_sent"), 4096);
	EXPECT_EQ(ebtest::json_num(j, "bytes_received"), 0);
	EXPECT_GT(ebtest::json_num(j, "transfer_mb_per_sec"), 0);
	EXPECT_GT(ebtest::json_num(j, "fairness.min"), 0) << "every connection sent";
}

TEST(EchoBench, SendModeFlagsAServerThatAnswers)
{
	TestServer srv(Behavior::Echo);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"--mode", "send", "-c", "1", "-d", "500ms"}, &status);
	EXPECT_EQ(status, 1);
	expect_only_error(j, "mismatch");
}

TEST(EchoBench, RecvModeAgainstAChargenServer)
{
	TestServer srv(Behavior::Chargen);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j =
	    bench_json(srv.target(), {"--mode", "recv", "-c", "3", "-s", "4k", "-d", "1"}, &status);
	EXPECT_EQ(status, 0);
	expect_clean(j);
	EXPECT_EQ(ebtest::json_num(j, "bytes_sent"), 0);
	EXPECT_GT(ebtest::json_num(j, "bytes_received"), 74 * 95);
	EXPECT_GT(ebtest::json_num(j, "transfer_mb_per_sec"), 0);
}

TEST(EchoBench, RecvModeFlagsASilentServer)
{
	TestServer srv(Behavior::Silent);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j =
	    bench_json(srv.target(),
		       {"--mode", "recv", "-c", "1", "-d", "300ms", "--timeout", "200ms"}, &status);
	EXPECT_EQ(status, 1);
	expect_only_error(j, "timeout");
}

TEST(EchoBench, Ipv6Literal)
{
	TestServer srv(Behavior::Echo, true);
	if (!srv.ok())
		GTEST_SKIP() << "no IPv6 loopback";
	int status;
	Json j = bench_json(srv.target(), {"-c", "2", "-d", "500ms"}, &status);
	EXPECT_EQ(status, 0);
	expect_clean(j);
	EXPECT_EQ(j["address"], srv.target());
}

TEST(EchoBench, HostNameIsResolved)
{
	TestServer srv(Behavior::Echo);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json("localhost:" + std::to_string(srv.port()), {"-c", "2", "-d", "500ms"},
			    &status);
	EXPECT_EQ(status, 0);
	expect_clean(j);
	EXPECT_EQ(j["address"], srv.target());
}

TEST(EchoBench, WarmupIsNotCounted)
{
	TestServer srv(Behavior::Echo);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"-c", "2", "-d", "500ms", "--warmup", "300ms"}, &status);
	EXPECT_EQ(status, 0);
	EXPECT_EQ(ebtest::json_num(j, "warmup_s"), 0.3);
	EXPECT_EQ(ebtest::json_num(j, "duration_s"), 0.5);
	EXPECT_EQ(ebtest::json_num(j, "elapsed_s"), 0.5);
}

TEST(EchoBench, CorruptedByteIsAMismatch)
{
	TestServer srv(Behavior::Corrupt);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"-c", "2", "-d", "1"}, &status);
	EXPECT_EQ(status, 1);
	expect_only_error(j, "mismatch");
}

TEST(EchoBench, DroppedBytesThenCloseIsShort)
{
	TestServer srv(Behavior::DropClose);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"-c", "2", "-d", "1"}, &status);
	EXPECT_EQ(status, 1);
	expect_only_error(j, "short");
}

TEST(EchoBench, LingerZeroCloseIsAReset)
{
	TestServer srv(Behavior::Reset);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"-c", "2", "-d", "1"}, &status);
	EXPECT_EQ(status, 1);
	expect_only_error(j, "reset");
}

TEST(EchoBench, SilentServerIsATimeout)
{
	TestServer srv(Behavior::Silent);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"-c", "2", "-d", "1", "--timeout", "1"}, &status);
	EXPECT_EQ(status, 1);
	expect_only_error(j, "timeout");
	EXPECT_EQ(ebtest::json_num(j, "requests"), 0);
}

TEST(EchoBench, ChurnSeesShortAndResetToo)
{
	for (Behavior b : {Behavior::DropClose, Behavior::Reset}) {
		TestServer srv(b);
		ASSERT_TRUE(srv.ok());
		int status;
		Json j = bench_json(srv.target(), {"--mode", "churn", "-c", "2", "-d", "500ms"},
				    &status);
		EXPECT_EQ(status, 1);
		expect_only_error(j, b == Behavior::Reset ? "reset" : "short");
	}
}

TEST(EchoBench, IdleDetectsASilentServer)
{
	TestServer srv(Behavior::Silent);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j =
	    bench_json(srv.target(),
		       {"--mode", "idle", "-c", "5", "-d", "500ms", "--timeout", "500ms"}, &status);
	EXPECT_EQ(status, 1);
	EXPECT_EQ(err(j, "timeout"), 5);
	EXPECT_EQ(ebtest::json_num(j, "idle.held"), 0);
}

// A port that is bound but not listening refuses connections, deterministically.
TEST(EchoBench, UnreachableTargetIsReportedAndExits1)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ASSERT_GE(fd, 0);
	sockaddr_in sa{};
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&sa), len), 0);
	ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len), 0);
	ebtest::BenchRun r =
	    ebtest::run_bench({"-d", "1", "127.0.0.1:" + std::to_string(ntohs(sa.sin_port))});
	close(fd);
	EXPECT_EQ(r.status, 1);
	EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
}

TEST(EchoBench, TextReportLooksLikeWrk)
{
	TestServer srv(Behavior::Echo);
	ASSERT_TRUE(srv.ok());
	ebtest::BenchRun r =
	    ebtest::run_bench({"-c", "2", "-d", "500ms", "--latency", srv.target()});
	EXPECT_EQ(r.status, 0) << r.err;
	for (const char *s :
	     {"Running 500.00ms pingpong test @ ", "2 threads and 2 connections",
	      "Connections: 2 of 2 open after ", "; open in the window: min 2, max 2",
	      "Latency Distribution", "99.9%", "Requests/sec:", "Transfer/sec:",
	      "Errors: 0 (mismatch 0, reset 0, timeout 0, short 0, connect 0)",
	      "Fairness (msgs/conn): min ",
	      ", unserved 0 (over the 2 connections open for the whole window)"})
		EXPECT_NE(r.out.find(s), std::string::npos) << "missing '" << s << "' in\n"
							    << r.out;
}

// The opening gives up at --timeout: it says how many opened, measures nothing, exits 1.
TEST(EchoBench, OpeningGivesUpAtTheTimeoutAndSaysHowMany)
{
	for (const char *mode : {"pingpong", "stream", "churn", "send", "recv"}) {
		NeverAccepts srv(2); // a fresh queue each time: a closed connection stays in it
		ASSERT_FALSE(srv.target().empty());
		ebtest::BenchRun r =
		    ebtest::run_bench({"--mode", mode, "-c", "20", "-d", "1", "--timeout", "700ms",
				       "--json", srv.target()});
		Json j;
		ASSERT_TRUE(ebtest::parse_json(r.out, &j)) << r.out << r.err;
		EXPECT_EQ(r.status, 1) << mode;
		double opened = ebtest::json_num(j, "open.opened");
		EXPECT_LT(opened, 20) << mode;
		EXPECT_EQ(j["open.complete"], "false") << mode;
		EXPECT_EQ(err(j, "connect"), 20 - opened)
		    << mode << ": the unopened are connect errors";
		EXPECT_GT(ebtest::json_num(j, "open.retries"), 0) << mode;
		EXPECT_EQ(ebtest::json_num(j, "requests"), 0) << mode;
		EXPECT_EQ(ebtest::json_num(j, "elapsed_s"), 0) << mode;
		EXPECT_NE(
		    r.err.find("of 20 connections open after 0.70s (--timeout); last error: "),
		    std::string::npos)
		    << r.err;
	}
}

// A server that closes each connection once accepted (as one over its limit does), with
// a queue of 5, never lets 20 be open at once: each close is retried, the opening runs
// out of time, and the text report says nothing was measured.
TEST(EchoBench, ConnectionsClosedWhileOpeningAreRetriedNotMeasured)
{
	TestServer srv(Behavior::CloseAtOnce);
	ASSERT_TRUE(srv.ok());
	ebtest::BenchRun r = ebtest::run_bench(
	    {"--mode", "stream", "-c", "20", "-d", "1", "--timeout", "500ms", srv.target()});
	EXPECT_EQ(r.status, 1) << r.out << r.err;
	EXPECT_NE(r.out.find("Connections: "), std::string::npos) << r.out;
	EXPECT_NE(r.out.find("not all, so nothing was measured"), std::string::npos) << r.out;
	EXPECT_EQ(r.out.find("Requests/sec"), std::string::npos) << r.out;
	EXPECT_NE(r.err.find("of 20 connections open after 0.50s (--timeout)"), std::string::npos)
	    << r.err;
}

// A listen backlog of 4 and an accept every 10 ms: connects beyond the queue lose their
// SYN, time out and are retried until every one is in. The run then is clean.
TEST(EchoBench, ASlowAcceptingServerStillGetsEveryConnection)
{
	TestServer srv(Behavior::SlowAccept);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"-t", "1", "-c", "40", "-d", "300ms"}, &status);
	EXPECT_EQ(status, 0);
	expect_clean(j);
	expect_all_open(j, 40);
	EXPECT_GT(ebtest::json_num(j, "open.retries"), 0) << "40 connects cannot fit a queue of 5";
}

// Connections the server never serves stay in the fairness figure, as unserved.
TEST(EchoBench, UnservedConnectionsShowInTheFairness)
{
	TestServer srv(Behavior::EchoHalf);
	ASSERT_TRUE(srv.ok());
	int status;
	Json j = bench_json(srv.target(), {"-t", "1", "-c", "4", "-d", "500ms", "--timeout", "1s"},
			    &status);
	EXPECT_EQ(status, 1) << "the unanswered messages time out in the drain";
	expect_only_error(j, "timeout");
	expect_all_open(j, 4);
	EXPECT_EQ(ebtest::json_num(j, "fairness.connections"), 4);
	EXPECT_EQ(ebtest::json_num(j, "fairness.unserved"), 2);
	EXPECT_EQ(ebtest::json_num(j, "fairness.min"), 0);
	EXPECT_GT(ebtest::json_num(j, "fairness.max"), 0);
	EXPECT_EQ(j["fairness.max_min_ratio"], "null");
}

// The soft descriptor limit is raised to the hard one before the connections are counted.
TEST(EchoBench, SoftDescriptorLimitIsRaisedToTheHardOne)
{
	TestServer srv(Behavior::Echo);
	ASSERT_TRUE(srv.ok());
	ebtest::BenchRun r =
	    ebtest::run_bench({"-c", "200", "-d", "300ms", "--json", srv.target()}, 20, 64, 1024);
	EXPECT_EQ(r.status, 0) << r.out << r.err;
	Json j;
	ASSERT_TRUE(ebtest::parse_json(r.out, &j)) << r.out;
	expect_all_open(j, 200);
}

} // namespace
