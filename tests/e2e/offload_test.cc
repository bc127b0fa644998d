// --offload=sockmap (issue 17): the kernel echoes TCP echo connections (an eBPF
// SOCKHASH), and everything around the echo keeps working: byte-exact streams and
// half-closes, the banner first, accept limits, the idle timeout and the drain on
// TERM from tcp_info's counters, resets, socket activation. A peer that does not read
// is reset once it owes more than --offload-budget (there is no backpressure in this
// mode), counted, and what the kernel held for it is freed.
//
// Every test is skipped, with the reason, where offload cannot run: echod built
// without BPF (echod -V: "offload: no") or the kernel or the privileges refusing
// (exit 71); see ProbeOffload in tests/support/fixture.cc.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <cstring>
#include <iostream>
#include <thread>

#include "activation.h"
#include "checks.h"
#include "diag.h"
#include "fixture.h"
#include "http.h"
#include "udp.h"

namespace e2e
{
namespace
{

using OffloadTest = BackendTest;
ECHOD_INSTANTIATE_OFFLOAD(OffloadTest);

constexpr int kTimeoutMs = 10000;
constexpr size_t kMiB = 1 << 20;

// The tutorials' client: sends everything without reading, SHUT_WR, then reads to
// EOF. "" or what went wrong.
std::string SendShutReadToEof(int port, const std::string &data, const std::string &banner = "")
{
	std::string error, back;
	Fd fd = Connect(kLoopback, port, kTimeoutMs, &error);
	if (!fd.valid())
		return error;
	if (!SendAll(fd.get(), data, kTimeoutMs))
		return "send failed";
	if (shutdown(fd.get(), SHUT_WR) < 0)
		return std::string("shutdown: ") + strerror(errno);
	size_t want = banner.size() + data.size();
	RecvStatus st = RecvExact(fd.get(), &back, want, kTimeoutMs);
	if (st != RecvStatus::kOk)
		return std::string("read ") + ToString(st) + " after " + std::to_string(back.size()) +
		       " of " + std::to_string(want) + " bytes";
	if (back != banner + data)
		return "echoed bytes differ";
	st = WaitClosed(fd.get(), kTimeoutMs);
	return st == RecvStatus::kEof ? "" : std::string("then ") + ToString(st) + ", not EOF";
}

// The worker of a one-worker echod, stopped (SIGSTOP) while the test makes the kernel
// queue connections it has not accepted yet, and continued on Resume or destruction.
class StoppedWorker
{
      public:
	explicit StoppedWorker(Daemon *d)
	{
		std::vector<pid_t> w = d->Workers();
		if (w.size() == 1 && kill(w[0], SIGSTOP) == 0)
			pid_ = w[0];
	}
	~StoppedWorker()
	{
		Resume();
	}
	bool stopped() const
	{
		return pid_ > 0;
	}
	void Resume()
	{
		if (pid_ > 0)
			kill(pid_, SIGCONT);
		pid_ = -1;
	}

      private:
	pid_t pid_ = -1;
};

// SO_ERROR of fd (ECONNRESET once a reset came), or -1.
int SocketError(int fd)
{
	int err = 0;
	socklen_t len = sizeof err;
	return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 ? err : -1;
}

// ---- start-up: what is offloaded and what is not ----

TEST_P(OffloadTest, OnlyTcpEchoListenersAreOffloaded)
{
	Daemon *d = StartDaemon({}, 1,
				{"127.0.0.1:0", "127.0.0.1:0/discard", "127.0.0.1:0/reverse",
				 "udp:127.0.0.1:0"});
	ASSERT_NE(d, nullptr);
	std::string log = d->Log();
	std::string echo = LineWith(log, "127.0.0.1:" + std::to_string(d->port(0)) + " ");
	EXPECT_NE(echo.find(" backend=epoll"), std::string::npos) << echo;
	EXPECT_NE(echo.find(" offload=sockmap"), std::string::npos) << echo;
	for (size_t i = 1; i < 4; i++) {
		std::string line = LineWith(log, ":" + std::to_string(d->port(i)) + " ");
		EXPECT_EQ(line.find("offload="), std::string::npos) << line;
	}
	std::string error, back;
	EXPECT_TRUE(ConnectAndEcho(kLoopback, d->port(0), "in the kernel\n", kTimeoutMs, &error))
	    << error;
	Fd rev = MustConnect(d->port(2), kTimeoutMs);
	ASSERT_TRUE(rev.valid());
	ASSERT_TRUE(SendAll(rev.get(), "kernel\n", kTimeoutMs));
	ASSERT_EQ(RecvExact(rev.get(), &back, 7, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(back, "lenrek\n");
	Fd udp = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(udp.valid()) << error;
	ASSERT_TRUE(UdpSendTo(udp.get(), kLoopback, d->port(3), "datagram"));
	ASSERT_EQ(UdpRecv(udp.get(), &back, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(back, "datagram");
	auto c = Counters(d, kTimeoutMs);
	EXPECT_EQ(c["offloaded"], 1u) << d->Log();
	EXPECT_EQ(c["offload_fallbacks"], 0u) << d->Log();
	EXPECT_EQ(c.count("offload_overruns"), 1u) << d->Log();
}

// ---- the echo itself ----

TEST_P(OffloadTest, ConcurrentRandomSizedStreamsAreByteExact)
{
	constexpr int kConns = 20;
	Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	std::vector<std::string> errors = ConcurrentStreams(d->port(), kConns, kMiB);
	for (int i = 0; i < kConns; i++)
		EXPECT_EQ(errors[size_t(i)], "") << "connection " << i;
	EXPECT_EQ(WaitCounter(d, "offloaded", kConns, kTimeoutMs), uint64_t(kConns)) << d->Log();
}

// A client may run ahead of the echo by up to the budget: 64 MiB here, so that this
// 32 MiB stream is never reset whatever the scheduling.
TEST_P(OffloadTest, LargeStreamThenShutdownGetsEverythingThenEof)
{
	Daemon *d = StartDaemon({"--offload-budget=" + std::to_string(64 * kMiB)});
	ASSERT_NE(d, nullptr);
	StreamOptions opt;
	opt.seed = 42;
	opt.max_chunk = 256 * 1024;
	EXPECT_EQ(StreamOverNewConnection(d->port(), RandomBytes(32 * kMiB, opt.seed), opt), "");
}

// Send everything, SHUT_WR, read to EOF: the FIN rides behind the data (and, for
// one byte, on it), and every byte comes back before echod's FIN.
TEST_P(OffloadTest, HalfCloseAfterSendingEverythingIsByteExact)
{
	Daemon *d = StartDaemon({}, 1);
	ASSERT_NE(d, nullptr);
	for (size_t size : {size_t(1), size_t(1000), size_t(65536), size_t(100 * 1024)})
		for (uint64_t run = 0; run < 10; run++)
			ASSERT_EQ(SendShutReadToEof(d->port(), RandomBytes(size, run + size)), "")
			    << size << " bytes, run " << run << "\n"
			    << d->Log();
	// A FIN that came before the accept keeps a socket out of the map (it is echoed
	// in user space): every connection is one or the other.
	auto c = Counters(d, kTimeoutMs);
	EXPECT_EQ(c["offloaded"] + c["offload_fallbacks"], 40u) << d->Log();
	EXPECT_EQ(c["open"], 0u) << d->Log();
}

// The FIN alone, after the echo came back: an empty skb, redirected like data.
TEST_P(OffloadTest, HalfCloseAfterTheEchoGetsEof)
{
	Daemon *d = StartDaemon({}, 1);
	ASSERT_NE(d, nullptr);
	for (int run = 0; run < 20; run++) {
		std::string error, data = RandomBytes(100 * 1024, uint64_t(run));
		Fd fd = MustConnect(d->port(), kTimeoutMs);
		ASSERT_TRUE(fd.valid());
		ASSERT_TRUE(EchoOnce(fd.get(), data, kTimeoutMs, &error)) << error;
		ASSERT_EQ(shutdown(fd.get(), SHUT_WR), 0);
		ASSERT_EQ(WaitClosed(fd.get(), kTimeoutMs), RecvStatus::kEof) << "run " << run;
	}
}

// Bytes that arrive before echod accepted the socket (and so before it is in the
// map) are echoed too: the worker is stopped while the clients connect and send.
TEST_P(OffloadTest, BytesSentBeforeTheAcceptAreEchoed)
{
	Daemon *d = StartDaemon({}, 1);
	ASSERT_NE(d, nullptr);
	std::vector<Fd> fds;
	std::vector<std::string> msgs;
	{
		StoppedWorker stopped(d);
		ASSERT_TRUE(stopped.stopped()) << d->Log();
		for (int i = 0; i < 20; i++) {
			fds.push_back(MustConnect(d->port(), kTimeoutMs));
			ASSERT_TRUE(fds.back().valid());
			msgs.push_back(RandomBytes(size_t(1) << (i % 17), uint64_t(i)));
			ASSERT_TRUE(SendAll(fds.back().get(), msgs.back(), kTimeoutMs));
		}
	}
	for (size_t i = 0; i < fds.size(); i++) {
		std::string back;
		ASSERT_EQ(RecvExact(fds[i].get(), &back, msgs[i].size(), kTimeoutMs), RecvStatus::kOk)
		    << "connection " << i;
		EXPECT_TRUE(back == msgs[i]) << "connection " << i;
		// And the kernel echoes what comes after.
		std::string error;
		EXPECT_TRUE(EchoOnce(fds[i].get(), "and then\n", kTimeoutMs, &error)) << error;
	}
	EXPECT_EQ(Counters(d, kTimeoutMs)["offloaded"], 20u) << d->Log();
}

// A socket whose FIN came before the accept cannot go into the map: it is echoed
// in user space, completely, and counted as a fallback.
TEST_P(OffloadTest, FinBeforeTheAcceptIsEchoedInUserSpaceAndCounted)
{
	Daemon *d = StartDaemon({"--banner=first"}, 1);
	ASSERT_NE(d, nullptr);
	std::string data = RandomBytes(50000, 5), back;
	Fd fd;
	{
		StoppedWorker stopped(d);
		ASSERT_TRUE(stopped.stopped()) << d->Log();
		fd = MustConnect(d->port(), kTimeoutMs);
		ASSERT_TRUE(fd.valid());
		ASSERT_TRUE(SendAll(fd.get(), data, kTimeoutMs));
		ASSERT_EQ(shutdown(fd.get(), SHUT_WR), 0);
	}
	ASSERT_EQ(RecvExact(fd.get(), &back, 7 + data.size(), kTimeoutMs), RecvStatus::kOk)
	    << back.size() << " bytes\n"
	    << d->Log();
	EXPECT_TRUE(back == "first\r\n" + data);
	EXPECT_EQ(WaitClosed(fd.get(), kTimeoutMs), RecvStatus::kEof);
	auto c = Counters(d, kTimeoutMs);
	EXPECT_EQ(c["offload_fallbacks"], 1u) << d->Log();
	EXPECT_EQ(c["offloaded"], 0u) << d->Log();
}

// ---- the banner: sent by echod before the socket goes into the map ----

TEST_P(OffloadTest, BannerComesFirstEvenWhenTheClientSpeaksFirst)
{
	Daemon *d = StartDaemon({"--banner=hi"}, 1);
	ASSERT_NE(d, nullptr);
	for (int i = 0; i < 50; i++) {
		std::string back, msg = "client first " + std::to_string(i) + "\n";
		Fd fd = MustConnect(d->port(), kTimeoutMs);
		ASSERT_TRUE(fd.valid());
		ASSERT_TRUE(SendAll(fd.get(), msg, kTimeoutMs));
		ASSERT_EQ(RecvExact(fd.get(), &back, 4 + msg.size(), kTimeoutMs), RecvStatus::kOk)
		    << "connection " << i << ": " << back;
		ASSERT_EQ(back, "hi\r\n" + msg) << "connection " << i;
	}
	// Data already queued when the worker accepts: still the banner first.
	std::vector<Fd> fds;
	{
		StoppedWorker stopped(d);
		ASSERT_TRUE(stopped.stopped()) << d->Log();
		for (int i = 0; i < 10; i++) {
			fds.push_back(MustConnect(d->port(), kTimeoutMs));
			ASSERT_TRUE(fds.back().valid());
			ASSERT_TRUE(SendAll(fds.back().get(), std::string(1000, char('a' + i)),
					    kTimeoutMs));
		}
	}
	for (int i = 0; i < 10; i++) {
		std::string back;
		ASSERT_EQ(RecvExact(fds[size_t(i)].get(), &back, 1004, kTimeoutMs), RecvStatus::kOk)
		    << "queued connection " << i;
		EXPECT_EQ(back, "hi\r\n" + std::string(1000, char('a' + i))) << "queued " << i;
	}
}

// ---- the counters and the per-connection log, from tcp_info ----

TEST_P(OffloadTest, BytesAreCountedAndLoggedFromTcpInfo)
{
	Daemon *d = StartDaemon({"-v", "--banner=hello"}, 1);
	ASSERT_NE(d, nullptr);
	std::string data = RandomBytes(300000, 9), back;
	Fd fd = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(fd.valid());
	int me = LocalPort(fd.get());
	ASSERT_TRUE(SendAll(fd.get(), data, kTimeoutMs));
	ASSERT_EQ(shutdown(fd.get(), SHUT_WR), 0);
	ASSERT_EQ(RecvExact(fd.get(), &back, 7 + data.size(), kTimeoutMs), RecvStatus::kOk);
	EXPECT_TRUE(back == "hello\r\n" + data);
	EXPECT_EQ(WaitClosed(fd.get(), kTimeoutMs), RecvStatus::kEof);
	std::string where = "connection closed: peer=127.0.0.1:" + std::to_string(me) + " ";
	ASSERT_TRUE(d->WaitForLog(where, kTimeoutMs)) << d->Log();
	// The banner is not echoed bytes.
	std::string line = LineWith(d->Log(), where);
	EXPECT_NE(line.find(" in=300000 out=300000 "), std::string::npos) << line;
	EXPECT_NE(line.find(" reason=eof"), std::string::npos) << line;
	auto c = Counters(d, kTimeoutMs);
	EXPECT_EQ(c["bytes_in"], 300000u) << d->Log();
	EXPECT_EQ(c["bytes_out"], 300000u) << d->Log();
	EXPECT_EQ(c["offloaded"], 1u) << d->Log();
}

TEST_P(OffloadTest, MetricsCountOffloadedConnectionsAndTheirBytes)
{
	Daemon *d = StartDaemon({"--metrics=127.0.0.1:0"}, 1);
	ASSERT_NE(d, nullptr);
	int mport = MetricsPort(*d, kTimeoutMs);
	ASSERT_GT(mport, 0) << d->Log();
	ASSERT_EQ(SendShutReadToEof(d->port(), RandomBytes(5000, 1)), "");
	std::string body, error;
	auto has = [&](const std::string &line) { // one worker: worker="0"
		std::string sample = line.substr(0, line.find(' ')) + "{worker=\"0\"}" +
				     line.substr(line.find(' '));
		return body.find("\n" + sample + "\n") != std::string::npos;
	};
	EXPECT_TRUE(WaitUntil(
	    [&] {
		    body = HttpSplit(HttpGet(mport, "/metrics", kTimeoutMs, &error)).body;
		    return has("echod_closed_eof_total 1");
	    },
	    kTimeoutMs, 50))
	    << error << body;
	EXPECT_TRUE(has("echod_offloaded_total 1") ||
		    has("echod_offload_fallbacks_total 1")) // a FIN before the accept
	    << body;
	EXPECT_TRUE(has("echod_offload_overruns_total 0")) << body;
	EXPECT_TRUE(has("echod_bytes_in_total 5000")) << body;
	EXPECT_TRUE(has("echod_bytes_out_total 5000")) << body;
}

// ---- no backpressure: a peer that does not read is reset over the budget ----

// The budget is what the peer may owe: received and not yet acknowledged. Under
// it nothing happens; over it the peer is reset, counted and logged, and echod's
// side of the connection is gone at once (a reset, no lingering socket holding the
// queue). Deterministic: the client sends a fixed amount and then waits; the kernel
// can never hold more for it than it sent. (/proc/net/sockstat's TCP "mem" would not
// do: the redirect queue is not charged to it, and it is global to the machine.)
TEST_P(OffloadTest, PeerOverTheBudgetIsResetCountedAndFreed)
{
	constexpr size_t kBudget = kMiB;
	Daemon *d = StartDaemon({"-v", "--offload-budget=" + std::to_string(kBudget)}, 1);
	ASSERT_NE(d, nullptr);
	Fd fd = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(fd.valid());
	int rcvbuf = 65536; // the client's receive buffer holds little of what it owes
	ASSERT_EQ(setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
	int me = LocalPort(fd.get());
	std::string error;
	ASSERT_TRUE(EchoOnce(fd.get(), "offloaded\n", kTimeoutMs, &error)) << error;

	// Half the budget, not read: owed, held, and no reset.
	size_t sent = 0, more = 0;
	ASSERT_EQ(FillUntilStalled(fd.get(), kBudget / 2, 2000, kTimeoutMs, &sent),
		  FillStatus::kCapReached)
	    << sent;
	EXPECT_FALSE(WaitPeerGone(fd.get(), 500)) << "reset under the budget:\n" << d->Log();
	TcpDiag server;
	ASSERT_TRUE(DiagTcp(d->port(), me, &server, &error)) << error;
	ASSERT_TRUE(server.found);
	EXPECT_LE(server.bytes_received - server.bytes_acked, kBudget);

	// Past it: the client stops sending, and is reset all the same.
	FillStatus st = FillUntilStalled(fd.get(), kBudget + 2 * kMiB, 2000, kTimeoutMs, &more);
	EXPECT_TRUE(st == FillStatus::kCapReached || st == FillStatus::kClosed) << ToString(st);
	EXPECT_TRUE(WaitPeerGone(fd.get(), kTimeoutMs)) << "not reset:\n" << d->Log();
	if (st != FillStatus::kClosed) { // a failed send has taken the error already
		EXPECT_EQ(SocketError(fd.get()), ECONNRESET) << "closed, not reset";
	}
	ASSERT_TRUE(WaitUntil(
	    [&] { return DiagTcp(d->port(), me, &server, &error) && !server.found; }, kTimeoutMs))
	    << "echod's side still exists: state " << server.state << ", received "
	    << server.bytes_received << ", acked " << server.bytes_acked << " " << error;
	EXPECT_EQ(WaitCounter(d, "offload_overruns", 1, kTimeoutMs), 1u) << d->Log();
	std::string where = "connection closed: peer=127.0.0.1:" + std::to_string(me) + " ";
	ASSERT_TRUE(d->WaitForLog(where, kTimeoutMs)) << d->Log();
	EXPECT_NE(LineWith(d->Log(), where).find(" reason=offload-overrun"), std::string::npos)
	    << d->Log();
	// Everybody else is served.
	EXPECT_TRUE(ConnectAndEcho(kLoopback, d->port(), "next\n", kTimeoutMs, &error)) << error;
}

// A peer that sends at loopback line rate and never reads: reset, with what it
// pushed in before the reset (all the kernel can hold for it) a bounded multiple of
// the budget. The bound is loose on purpose (echod looks at its connections every
// millisecond or so; a loaded machine delays it; measured: 2-5 MiB past the budget
// at loopback line rate, see the README). What it rules out is the unbounded queue
// (hundreds of MiB for one peer) that the redirect would otherwise build.
TEST_P(OffloadTest, PeerAtLineRateThatNeverReadsIsResetBoundedly)
{
	constexpr size_t kBudget = kMiB, kCap = 256 * kMiB;
	Daemon *d = StartDaemon({"--offload-budget=" + std::to_string(kBudget)}, 1);
	ASSERT_NE(d, nullptr);
	Fd fd = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(fd.valid());
	int me = LocalPort(fd.get());
	size_t sent = 0;
	FillStatus st = FillUntilStalled(fd.get(), kCap, 5000, 30000, &sent);
	ASSERT_EQ(st, FillStatus::kClosed) << ToString(st) << " after " << sent << " bytes";
	RecordProperty("sent_past_budget", std::to_string(sent - std::min(sent, kBudget)));
	std::cout << "[ offload  ] a peer at line rate sent " << sent << " bytes, "
		  << (sent - std::min(sent, kBudget)) << " past a budget of " << kBudget
		  << ", before its reset\n";
	TcpDiag server;
	std::string error;
	EXPECT_TRUE(WaitUntil(
	    [&] { return DiagTcp(d->port(), me, &server, &error) && !server.found; }, kTimeoutMs))
	    << error;
	EXPECT_EQ(WaitCounter(d, "offload_overruns", 1, kTimeoutMs), 1u) << d->Log();
}

// The budget must bound memory, not only bytes: every skb the kernel queues costs
// about a kilobyte beside its payload, so a peer that sends one byte per segment
// (TCP_NODELAY) could otherwise make it hold a thousand times the budget (1.4 GiB of
// slab for a 1 MiB budget when this was written; 40 to 95 times the budget here).
// The kernel's slab is the machine's, so the bound is loose, 16 times the budget, and
// the peak is sampled while the peer sends.
TEST_P(OffloadTest, TinySegmentsCannotMakeTheKernelHoldMoreThanTheBudgetAllows)
{
	constexpr size_t kBudget = 512 * 1024;
	constexpr long kBoundKb = 16 * kBudget / 1024;
	Daemon *d = StartDaemon({"--offload-budget=" + std::to_string(kBudget)}, 1);
	ASSERT_NE(d, nullptr);
	Fd fd = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(fd.valid());
	int one = 1;
	ASSERT_EQ(setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
	std::string error;
	ASSERT_TRUE(EchoOnce(fd.get(), "x", kTimeoutMs, &error)) << error;
	auto slab_kb = [] {
		std::ifstream in("/proc/meminfo");
		for (std::string line; std::getline(in, line);)
			if (line.rfind("Slab:", 0) == 0)
				return std::stol(line.substr(5));
		return 0L;
	};
	long base = slab_kb(), peak = 0;
	size_t sent = 0;
	bool reset = false;
	// Until the peer is reset, or it has sent twice the budget, or the kernel pushed
	// back for 2 s (then nothing more can pile up): each bounds what is held.
	using Clock = std::chrono::steady_clock;
	auto deadline = Clock::now() + std::chrono::seconds(30), progress = Clock::now();
	while (sent < 2 * kBudget && !reset && Clock::now() < deadline &&
	       Clock::now() - progress < std::chrono::seconds(2)) {
		ssize_t n = send(fd.get(), "y", 1, MSG_NOSIGNAL);
		if (n == 1) {
			sent++;
			progress = Clock::now();
		} else if (errno != EAGAIN && errno != EINTR) {
			reset = true;
		} else {
			WaitPeerGone(fd.get(), 1); // a full send queue: let it drain
		}
		if (sent % 4096 == 0)
			peak = std::max(peak, slab_kb() - base);
	}
	peak = std::max(peak, slab_kb() - base);
	std::cout << "[ offload  ] 1-byte segments: sent " << sent << " bytes, "
		  << (reset ? "reset" : "not reset") << ", slab peak +" << peak << " KiB\n";
	EXPECT_LT(peak, kBoundKb) << "the kernel's slab grew by " << peak << " KiB while a peer "
				  << "sent " << sent << " bytes in 1-byte segments (budget "
				  << kBudget << (reset ? ", then it was reset)" : ")");
}

// ---- resets ----

// Resets mid-stream and with bytes owed cost only their own connection: the worker
// survives, the others stream on, and later connections echo.
TEST_P(OffloadTest, ResetMidStreamCostsOnlyThatConnection)
{
	Daemon *d = StartDaemon({"--offload-budget=" + std::to_string(64 * kMiB)}, 1);
	ASSERT_NE(d, nullptr);
	std::vector<pid_t> workers = d->Workers();
	constexpr int kStreams = 4, kResets = 20;
	std::vector<std::string> errors(kStreams);
	std::vector<std::thread> threads;
	for (int i = 0; i < kStreams; i++) {
		threads.emplace_back([&, i] {
			StreamOptions opt;
			opt.seed = uint64_t(i) + 77;
			errors[size_t(i)] =
			    StreamOverNewConnection(d->port(), RandomBytes(8 * kMiB, opt.seed), opt);
		});
	}
	for (int i = 0; i < kResets; i++) {
		Fd fd = MustConnect(d->port(), kTimeoutMs);
		ASSERT_TRUE(fd.valid());
		size_t sent = 0;
		// Half read back, half owed; every other one owes several MiB when it goes.
		FillUntilStalled(fd.get(), i % 2 ? 4 * kMiB : 100000, 1000, kTimeoutMs, &sent);
		std::string back;
		RecvExact(fd.get(), &back, 1000, kTimeoutMs);
		linger lg = {1, 0};
		ASSERT_EQ(setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	}
	for (auto &t : threads)
		t.join();
	for (int i = 0; i < kStreams; i++)
		EXPECT_EQ(errors[size_t(i)], "") << "stream " << i;
	std::string error;
	EXPECT_TRUE(ConnectAndEcho(kLoopback, d->port(), "after\n", kTimeoutMs, &error)) << error;
	EXPECT_EQ(d->Workers(), workers) << d->Log();
	EXPECT_EQ(WaitCounter(d, "closed_reset", kResets, kTimeoutMs), uint64_t(kResets))
	    << d->Log();
	EXPECT_TRUE(WaitUntil([&] { return Counters(d, 2000)["open"] == 0; }, kTimeoutMs))
	    << d->Log();
}

// ---- drain on TERM ----

// Connections open at TERM: every byte owed arrives, then echod's FIN after the
// client's, and echod exits 0.
TEST_P(OffloadTest, TermDrainsOwedBytesThenEofThenExitsZero)
{
	constexpr int kConns = 10;
	Daemon *d = StartDaemon({"--drain-timeout=30"}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<Fd> fds;
	std::vector<std::string> data;
	for (int i = 0; i < kConns; i++) {
		fds.push_back(MustConnect(d->port(), kTimeoutMs));
		ASSERT_TRUE(fds.back().valid());
		data.push_back(RandomBytes(size_t(i + 1) * 200000, uint64_t(i) + 300));
		// Sent, not read: echod owes each of them its bytes at TERM.
		ASSERT_TRUE(SendAll(fds.back().get(), data.back(), kTimeoutMs));
	}
	ASSERT_TRUE(d->Signal(SIGTERM));
	ASSERT_TRUE(d->WaitForLog("stopping: draining", kTimeoutMs)) << d->Log();
	for (int i = 0; i < kConns; i++) {
		std::string back, more = "while draining " + std::to_string(i);
		ASSERT_TRUE(SendAll(fds[size_t(i)].get(), more, kTimeoutMs));
		ASSERT_EQ(shutdown(fds[size_t(i)].get(), SHUT_WR), 0);
		size_t want = data[size_t(i)].size() + more.size();
		ASSERT_EQ(RecvExact(fds[size_t(i)].get(), &back, want, kTimeoutMs), RecvStatus::kOk)
		    << "connection " << i << ": " << back.size() << " of " << want;
		EXPECT_TRUE(back == data[size_t(i)] + more) << "connection " << i;
		EXPECT_EQ(WaitClosed(fds[size_t(i)].get(), kTimeoutMs), RecvStatus::kEof)
		    << "connection " << i;
	}
	std::optional<int> status = d->WaitExit(kTimeoutMs);
	ASSERT_TRUE(status.has_value()) << "echod still running after the drain:\n" << d->Log();
	EXPECT_EQ(*status, 0) << d->Log();
}

// A connection still open when --drain-timeout ends is closed, and echod exits 0.
TEST_P(OffloadTest, DrainTimeoutClosesWhatIsLeft)
{
	Daemon *d = StartDaemon({"--drain-timeout=1"}, 1);
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd fd = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(fd.valid() && EchoOnce(fd.get(), "hold\n", kTimeoutMs, &error)) << error;
	ASSERT_TRUE(d->Signal(SIGTERM));
	std::optional<int> status = d->WaitExit(kTimeoutMs);
	ASSERT_TRUE(status.has_value()) << d->Log();
	EXPECT_EQ(*status, 0) << d->Log();
	RecvStatus st = WaitClosed(fd.get(), kTimeoutMs);
	EXPECT_TRUE(st == RecvStatus::kEof || st == RecvStatus::kReset) << ToString(st);
}

// ---- the idle timeout, from tcp_info's counters ----

// The ticking connection's bytes never reach echod: only tcp_info tells that it is
// active. The idle one is closed.
TEST_P(OffloadTest, IdleTimeoutClosesIdleButNotActivePeers)
{
	Daemon *d = StartDaemon({"--idle-timeout=1"});
	ASSERT_NE(d, nullptr);
	Fd idle = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(idle.valid());
	std::string error;
	ASSERT_TRUE(EchoOnce(idle.get(), "then quiet\n", kTimeoutMs, &error)) << error;
	bool starved = true;
	for (int attempt = 0; attempt < 3 && starved; attempt++)
		error = KeepTicking(d->port(), &starved);
	EXPECT_EQ(error, "") << d->Log();
	EXPECT_FALSE(starved) << "this process never got to send every 300 ms";
	RecvStatus closed = WaitClosed(idle.get(), kTimeoutMs);
	EXPECT_TRUE(closed == RecvStatus::kEof || closed == RecvStatus::kReset)
	    << "idle connection: " << ToString(closed);
	EXPECT_GE(WaitCounter(d, "closed_idle", 1, kTimeoutMs), 1u) << d->Log();
}

// ---- limits: admission happens before the socket goes to the kernel ----

TEST_P(OffloadTest, MaxConnsStillRefuses)
{
	Daemon *d = StartDaemon({"--max-conns=5"}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<Fd> fds;
	ASSERT_NO_FATAL_FAILURE(OpenEchoing(d->port(), 5, "127.0.0.1", &fds));
	ASSERT_NO_FATAL_FAILURE(ExpectRejected(d->port(), "127.0.0.1"));
	EXPECT_EQ(WaitCounter(d, "rejected_max_conns", 1, kTimeoutMs), 1u) << d->Log();
	fds.pop_back(); // a freed slot (seen through the kernel's echo) can be used again
	std::string error;
	EXPECT_TRUE(WaitUntil(
	    [&] { return ConnectAndEcho(kLoopback, d->port(), "again\n", 1000, &error); },
	    kTimeoutMs, 50))
	    << "a freed slot was not reused: " << error;
	EXPECT_EQ(Counters(d, kTimeoutMs)["offloaded"], 6u) << d->Log();
}

TEST_P(OffloadTest, MaxConnsPerIpStillRefuses)
{
	Daemon *d = StartDaemon({"--max-conns-per-ip=3"}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<Fd> fds;
	ASSERT_NO_FATAL_FAILURE(OpenEchoing(d->port(), 3, "127.0.0.1", &fds));
	ASSERT_NO_FATAL_FAILURE(ExpectRejected(d->port(), "127.0.0.1"));
	ASSERT_NO_FATAL_FAILURE(OpenEchoing(d->port(), 1, "127.0.0.2", &fds));
	EXPECT_EQ(WaitCounter(d, "rejected_per_ip", 1, kTimeoutMs), 1u) << d->Log();
}

// ---- socket activation ----

TEST_P(OffloadTest, ActivatedStreamSocketIsOffloaded)
{
	std::string error, back;
	auto d = StartActivated(backend(), {"tcp", "udp", "tcp=daytime"}, &error);
	ASSERT_NE(d, nullptr) << error;
	std::string echo = LineWith(d->Log(), "listening on tcp 127.0.0.1:" +
						  std::to_string(d->port(0)) + " ");
	EXPECT_NE(echo.find(" offload=sockmap"), std::string::npos) << d->Log();
	EXPECT_EQ(LineWith(d->Log(), "service=daytime").find("offload="), std::string::npos)
	    << d->Log();
	StreamOptions opt;
	opt.seed = 3;
	EXPECT_EQ(StreamOverNewConnection(d->port(0), RandomBytes(2 * kMiB, opt.seed), opt), "");
	Fd udp = UdpSocket(kLoopback, 0, &error);
	ASSERT_TRUE(udp.valid()) << error;
	ASSERT_TRUE(UdpSendTo(udp.get(), kLoopback, d->port(1), "datagram"));
	ASSERT_EQ(UdpRecv(udp.get(), &back, kTimeoutMs), RecvStatus::kOk);
	EXPECT_EQ(back, "datagram");
	Fd day = MustConnect(d->port(2), kTimeoutMs);
	ASSERT_TRUE(day.valid());
	EXPECT_EQ(WaitClosed(day.get(), kTimeoutMs), RecvStatus::kOk); // the line, not EOF first
	EXPECT_EQ(WaitCounter(d.get(), "offloaded", 1, kTimeoutMs), 1u) << d->Log();
	d->Stop();
	EXPECT_EQ(d->StopProblem(), "") << d->Log();
}

// ---- options (the rest, and the fallbacks under deny-bpf: offload_smoke_test.cc) ----

TEST(OffloadOptions, BudgetOverTheRangeOrWithAUnitIsAUsageError)
{
	for (const char *b : {"1073741825", "4MiB", "-1"}) {
		RunResult r = RunEchod({"--offload-budget", b, "-t"});
		EXPECT_EQ(r.status, 64) << b << ": " << r.err;
		EXPECT_NE(r.err.find("offload-budget"), std::string::npos) << b << ": " << r.err;
	}
	RunResult r = RunEchod({"--offload-budget=1073741824", "--offload=auto", "-t"});
	EXPECT_EQ(r.status, 0) << r.err;
}

// -b auto with offload picks epoll and says why.
TEST(OffloadOptions, AutoBackendPicksEpollForOffload)
{
	const OffloadProbe &p = ProbeOffload();
	if (!p.available)
		GTEST_SKIP() << p.why;
	Daemon d;
	std::string error;
	ASSERT_TRUE(
	    d.Start({"-b", "auto", "-w", "1", "-l", "127.0.0.1:0", "--offload=sockmap"}, 1, &error))
	    << error;
	std::string line = LineWith(d.Log(), "listening on");
	EXPECT_NE(line.find(" backend=epoll"), std::string::npos) << d.Log();
	EXPECT_NE(line.find(" offload=sockmap"), std::string::npos) << d.Log();
	d.Stop();
	EXPECT_EQ(d.StopProblem(), "") << d.Log();
}

} // namespace
} // namespace e2e
