// Signals to the supervisor: TERM drains (a second TERM or INT stops at once),
// HUP restarts the workers, USR1 logs the counters, and a worker killed by
// anything is respawned.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "fixture.h"

namespace e2e
{
namespace
{

using SignalsTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(SignalsTest);

constexpr int kTimeoutMs = 10000;

// What went wrong for a ConnectLoop.
struct LoopFailures {
	int refused = 0;    // connect() failed
	int lost = 0;	    // connected, then a reset or EOF instead of the echo
	int unanswered = 0; // connected, and no echo came in time
	std::string detail; // one line per failure
	int total() const
	{
		return refused + lost + unanswered;
	}
};

// A client thread that opens connections back to back, each echoing a few
// bytes, and counts what went wrong.
class ConnectLoop
{
      public:
	explicit ConnectLoop(int port) : port_(port), thread_([this] { Run(); })
	{
	}
	~ConnectLoop()
	{
		Finish();
	}
	// Stops the loop and returns its failures.
	LoopFailures Finish()
	{
		stop_ = true;
		if (thread_.joinable())
			thread_.join();
		return failures_;
	}
	// Waits for n more attempts (bounded).
	bool WaitAttempts(int n)
	{
		int target = attempts_ + n;
		return WaitUntil([&] { return attempts_ >= target || stop_; }, kTimeoutMs);
	}

      private:
	void Run()
	{
		for (int i = 0; !stop_; i++, attempts_++) {
			std::string error, msg = "conn " + std::to_string(i) + "\n";
			Fd fd = Connect(kLoopback, port_, 5000, &error);
			if (!fd.valid())
				failures_.refused++;
			else if (EchoOnce(fd.get(), msg, 5000, &error))
				continue;
			else if (error.find("timeout") != std::string::npos)
				failures_.unanswered++;
			else
				failures_.lost++;
			failures_.detail += "attempt " + std::to_string(i) + ": " + error + "\n";
		}
	}

	int port_;
	std::atomic<bool> stop_{false};
	std::atomic<int> attempts_{0};
	LoopFailures failures_;
	std::thread thread_;
};

// True once there are n workers and none of them is in old.
bool WorkersReplaced(Daemon *d, const std::vector<pid_t> &old, size_t n)
{
	std::vector<pid_t> now = d->Workers();
	for (pid_t p : now)
		if (std::find(old.begin(), old.end(), p) != old.end())
			return false;
	return now.size() == n;
}

TEST_P(SignalsTest, KilledWorkerIsRespawnedWithoutFailedConnects)
{
	Daemon *d = StartDaemon({}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<pid_t> workers = d->Workers();
	ASSERT_EQ(workers.size(), 2u) << d->Log();
	ConnectLoop loop(d->port());
	ASSERT_TRUE(loop.WaitAttempts(100));
	ASSERT_EQ(kill(workers[0], SIGKILL), 0);
	EXPECT_TRUE(WaitUntil([&] { return WorkersReplaced(d, {workers[0]}, 2); }, kTimeoutMs))
	    << "worker " << workers[0] << " was not replaced:\n"
	    << d->Log();
	usleep(500 * 1000); // keep connecting for a while after the respawn
	EXPECT_TRUE(loop.WaitAttempts(100));
	LoopFailures f = loop.Finish();
	// The one connection in flight on the killed worker may be lost; no
	// connection attempt may fail or go unanswered.
	EXPECT_LE(f.lost, 1) << f.detail;
	EXPECT_EQ(f.refused + f.unanswered, 0) << f.detail << d->Log();
}

TEST_P(SignalsTest, HupRestartsWorkersWithoutFailures)
{
	Daemon *d = StartDaemon({}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<pid_t> old = d->Workers();
	ASSERT_EQ(old.size(), 2u) << d->Log();
	ConnectLoop loop(d->port());
	ASSERT_TRUE(loop.WaitAttempts(100));
	ASSERT_TRUE(d->Signal(SIGHUP));
	EXPECT_TRUE(WaitUntil([&] { return WorkersReplaced(d, old, 2); }, kTimeoutMs))
	    << "workers not replaced after SIGHUP:\n"
	    << d->Log();
	EXPECT_TRUE(loop.WaitAttempts(100));
	LoopFailures f = loop.Finish();
	EXPECT_EQ(f.total(), 0) << f.refused << " refused, " << f.lost << " lost, " << f.unanswered
				<< " unanswered:\n"
				<< f.detail << d->Log();
}

bool HasStatsLine(const std::string &log)
{
	size_t at = log.rfind("stats:");
	return at != std::string::npos && log.find('\n', at) != std::string::npos;
}

// The key=value tokens of the last "stats:" line.
std::map<std::string, std::string> StatsTokens(const std::string &log)
{
	size_t at = log.rfind("stats:");
	std::istringstream words(log.substr(at, log.find('\n', at) - at));
	std::map<std::string, std::string> tokens;
	for (std::string w; words >> w;)
		if (w.find('=') != std::string::npos)
			tokens[w.substr(0, w.find('='))] = w.substr(w.find('=') + 1);
	return tokens;
}

TEST_P(SignalsTest, Usr1LogsCounters)
{
	Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(fd.valid() && EchoOnce(fd.get(), "count me\n", kTimeoutMs, &error)) << error;
	ASSERT_TRUE(d->Signal(SIGUSR1));
	ASSERT_TRUE(WaitUntil([&] { return HasStatsLine(d->Log()); }, kTimeoutMs)) << d->Log();
	auto tokens = StatsTokens(d->Log());
	EXPECT_EQ(tokens["accepted"], "1") << d->Log();
	EXPECT_EQ(tokens["open"], "1") << d->Log();
	for (const char *key : {"rejected_max_conns", "rejected_per_ip", "closed_idle"})
		EXPECT_EQ(tokens.count(key), 1u) << key << " missing:\n" << d->Log();
}

// How many times needle occurs in text.
size_t Count(const std::string &text, const std::string &needle)
{
	size_t n = 0;
	for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
		n++;
	return n;
}

// A worker whose loop stops turning (SIGSTOP: its heartbeat goes stale) is found
// stuck after 5 s, killed and replaced, and counted in workers_stuck.
TEST_P(SignalsTest, StuckWorkerIsKilledAndReplaced)
{
	Daemon *d = StartDaemon({"-v"}, 1);
	ASSERT_NE(d, nullptr);
	std::vector<pid_t> before = d->Workers();
	ASSERT_EQ(before.size(), 1u) << d->Log();
	std::string pid = std::to_string(before[0]);
	ASSERT_EQ(kill(before[0], SIGSTOP), 0);
	EXPECT_TRUE(d->WaitForLog("worker 0 (pid " + pid + ") is stuck", 15000)) << d->Log();
	EXPECT_TRUE(d->WaitForLog("worker 0 (pid " + pid + ") killed as stuck", 5000)) << d->Log();
	EXPECT_TRUE(WaitUntil([&] { return WorkersReplaced(d, before, 1); }, Scaled(kTimeoutMs)))
	    << "the stuck worker was not replaced:\n"
	    << d->Log();
	std::string error;
	EXPECT_TRUE(WaitUntil([&] { return ConnectAndEcho(kLoopback, d->port(), "x\n", 1000, &error); },
			      Scaled(kTimeoutMs), 50))
	    << error << "\n"
	    << d->Log();
	ASSERT_TRUE(d->Signal(SIGUSR1));
	ASSERT_TRUE(WaitUntil([&] { return HasStatsLine(d->Log()); }, Scaled(kTimeoutMs))) << d->Log();
	EXPECT_EQ(StatsTokens(d->Log())["workers_stuck"], "1") << d->Log();
	// A hang is not a failure to start: no backoff, and not logged as a crash.
	EXPECT_EQ(d->Log().find("keeps dying"), std::string::npos) << d->Log();
	EXPECT_EQ(d->Log().find("killed by signal"), std::string::npos) << d->Log();
	EXPECT_EQ(Count(d->Log(), "worker 0 started"), 2u) << d->Log();
}

// During a drain a stuck worker is killed too (echod does not wait out
// --drain-timeout for it), and not replaced.
TEST_P(SignalsTest, StuckWorkerDuringDrainIsKilledNotReplaced)
{
	Daemon *d = StartDaemon({"-v", "--drain-timeout=60"}, 1);
	ASSERT_NE(d, nullptr);
	std::vector<pid_t> before = d->Workers();
	ASSERT_EQ(before.size(), 1u) << d->Log();
	ASSERT_EQ(kill(before[0], SIGSTOP), 0);
	ASSERT_TRUE(d->Signal(SIGTERM));
	std::optional<int> status = d->WaitExit(20000);
	ASSERT_TRUE(status.has_value()) << "echod still running:\n" << d->Log();
	EXPECT_EQ(*status, 0) << d->Log();
	EXPECT_NE(d->Log().find("(pid " + std::to_string(before[0]) + ") is stuck"),
		  std::string::npos)
	    << d->Log();
	EXPECT_EQ(Count(d->Log(), "worker 0 started"), 1u) << d->Log();
}

// Makes the streaming clients wait in the middle until the TERM has landed.
class Gate
{
      public:
	void Arrive()
	{
		std::unique_lock<std::mutex> lock(mu_);
		arrived_++;
		cv_.notify_all();
		cv_.wait_for(lock, std::chrono::milliseconds(kTimeoutMs), [&] { return open_; });
	}
	bool WaitArrived(int n)
	{
		std::unique_lock<std::mutex> lock(mu_);
		return cv_.wait_for(lock, std::chrono::milliseconds(kTimeoutMs),
				    [&] { return arrived_ >= n; });
	}
	void Open()
	{
		std::lock_guard<std::mutex> lock(mu_);
		open_ = true;
		cv_.notify_all();
	}

      private:
	std::mutex mu_;
	std::condition_variable cv_;
	int arrived_ = 0;
	bool open_ = false;
};

TEST_P(SignalsTest, TermDrainsStreamingConnectionsThenExitsZero)
{
	constexpr int kConns = 50;
	constexpr size_t kBytes = 2 << 20;
	Daemon *d = StartDaemon({"--drain-timeout=30"});
	ASSERT_NE(d, nullptr);
	Gate gate;
	std::vector<std::string> errors(kConns);
	std::vector<std::thread> threads;
	for (int i = 0; i < kConns; i++) {
		threads.emplace_back([&, i] {
			StreamOptions opt;
			opt.seed = uint64_t(i) + 100;
			opt.pause_at = kBytes / 2;
			opt.on_pause = [&] { gate.Arrive(); };
			std::string data = RandomBytes(kBytes, opt.seed),
				    &error = errors[size_t(i)];
			Fd fd = Connect(kLoopback, d->port(), kTimeoutMs, &error);
			if (fd.valid())
				error = StreamEcho(fd.get(), data, opt);
			else
				gate.Arrive();
		});
	}
	EXPECT_TRUE(gate.WaitArrived(kConns)) << "clients did not reach mid-stream";
	EXPECT_TRUE(d->Signal(SIGTERM));
	// Wait until echod has taken the TERM in: new connections go unanswered.
	std::string error;
	EXPECT_TRUE(WaitUntil(
	    [&] { return !ConnectAndEcho(kLoopback, d->port(), "x", 300, &error); }, kTimeoutMs))
	    << "still accepting after SIGTERM";
	gate.Open();
	for (auto &t : threads)
		t.join();
	for (int i = 0; i < kConns; i++)
		EXPECT_EQ(errors[size_t(i)], "") << "connection " << i;
	std::optional<int> status = d->WaitExit(kTimeoutMs);
	ASSERT_TRUE(status.has_value()) << "echod still running after the drain:\n" << d->Log();
	EXPECT_EQ(*status, 0) << d->Log();
}

// True once fd reads EOF or a reset (bounded): echod closed the connection.
bool ClosedByPeer(int fd, int timeout_ms)
{
	char buf[64];
	return WaitUntil(
	    [&] {
		    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		    return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
	    },
	    timeout_ms, 10);
}

// A second TERM or INT during the drain stops at once: the idle client that would
// have held the drain for 60 s is closed, and echod exits 0.
TEST_P(SignalsTest, SecondTermDuringDrainStopsAtOnce)
{
	Daemon *d = StartDaemon({"--drain-timeout=60"}, 2);
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd idle = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(idle.valid() && EchoOnce(idle.get(), "hold\n", kTimeoutMs, &error)) << error;
	ASSERT_TRUE(d->Signal(SIGTERM));
	ASSERT_TRUE(d->WaitForLog("stopping: draining", kTimeoutMs)) << d->Log();
	// The drain holds: the idle connection stays open.
	EXPECT_FALSE(d->WaitExit(300).has_value()) << d->Log();
	ASSERT_TRUE(d->Signal(SIGTERM));
	std::optional<int> status = d->WaitExit(5000);
	ASSERT_TRUE(status.has_value()) << "the second TERM did not stop echod:\n" << d->Log();
	EXPECT_EQ(*status, 0) << d->Log();
	EXPECT_TRUE(ClosedByPeer(idle.get(), kTimeoutMs));
	EXPECT_NE(d->Log().find("stopping now"), std::string::npos) << d->Log();
	EXPECT_EQ(d->Log().find("killed by signal"), std::string::npos) << d->Log();
}

// ^C twice: INT reaches the supervisor and every worker each time.
TEST_P(SignalsTest, SecondIntToTheGroupStopsAtOnce)
{
	Daemon *d = StartDaemon({"--drain-timeout=60"}, 2);
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd idle = Connect(kLoopback, d->port(), kTimeoutMs, &error);
	ASSERT_TRUE(idle.valid() && EchoOnce(idle.get(), "hold\n", kTimeoutMs, &error)) << error;
	std::vector<pid_t> group = d->Workers();
	group.push_back(d->pid());
	for (pid_t p : group)
		ASSERT_EQ(kill(p, SIGINT), 0);
	ASSERT_TRUE(d->WaitForLog("stopping: draining", kTimeoutMs)) << d->Log();
	// The first ^C only drains, though each worker got both INT and the TERM.
	EXPECT_FALSE(d->WaitExit(300).has_value()) << d->Log();
	for (pid_t p : group)
		kill(p, SIGINT); // a worker may be gone already
	std::optional<int> status = d->WaitExit(5000);
	ASSERT_TRUE(status.has_value()) << "the second INT did not stop echod:\n" << d->Log();
	EXPECT_EQ(*status, 0) << d->Log();
	EXPECT_TRUE(ClosedByPeer(idle.get(), kTimeoutMs));
}

// A reload names each restart-only setting the file changed, keeps those, and
// applies the rest.
TEST_P(SignalsTest, ReloadNamesTheRestartOnlySettingsChanged)
{
	char dir[] = "/tmp/echod-reload-XXXXXX";
	ASSERT_NE(mkdtemp(dir), nullptr);
	std::string path = std::string(dir) + "/echod.conf";
	std::ofstream(path) << "backlog = 100\nidle-timeout = 300\n";
	Daemon *d = StartDaemon({"--config=" + path}, 1);
	ASSERT_NE(d, nullptr);
	std::ofstream(path) << "backlog = 200\nmax-conns-per-ip = 5\nidle-timeout = 60\n";
	ASSERT_TRUE(d->Signal(SIGHUP));
	EXPECT_TRUE(d->WaitForLog("reload: done", kTimeoutMs)) << d->Log();
	EXPECT_NE(d->Log().find("reload: max-conns-per-ip, backlog change only on a restart; "
				"keeping the running values"),
		  std::string::npos)
	    << d->Log();
	EXPECT_NE(d->Log().find("rolling restart of 1 worker\n"), std::string::npos) << d->Log();
	// One setting: the singular.
	std::ofstream(path) << "backlog = 300\nmax-conns-per-ip = 0\n";
	ASSERT_TRUE(d->Signal(SIGHUP));
	EXPECT_TRUE(d->WaitForLog("reload: backlog changes only on a restart; keeping the running "
				  "value\n",
				  kTimeoutMs))
	    << d->Log();
	unlink(path.c_str());
	rmdir(dir);
}

} // namespace
} // namespace e2e
