// The sd-daemon protocols with descriptors the test makes (tests/tools/sd-launch
// runs echod the way the service manager would): socket activation with one and
// with several named sockets, and what echod refuses; NOTIFY_SOCKET receiving
// READY/STATUS/STOPPING and WATCHDOG pings, from the main process only;
// JOURNAL_STREAM priority prefixes; and the real systemd-socket-activate tool
// starting echod. (The metrics endpoint: metrics_test.cc.)
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "fixture.h"

namespace e2e
{
namespace
{

constexpr int kIoMs = 5000;

// The descriptor stays open in the test (as systemd keeps its sockets) and is
// inherited by the next process started, until the guard goes.
class Inheritable
{
      public:
	explicit Inheritable(int fd) : fd_(fd)
	{
		fcntl(fd_, F_SETFD, 0);
	}
	~Inheritable()
	{
		fcntl(fd_, F_SETFD, FD_CLOEXEC);
	}
	Inheritable(const Inheritable &) = delete;
	Inheritable &operator=(const Inheritable &) = delete;

      private:
	int fd_;
};

// Starts echod under sd-launch with launch options and echod arguments. The
// descriptors named by -f options must be inheritable (see Inheritable).
bool Launch(Process *p, const std::vector<std::string> &launch,
	    const std::vector<std::string> &args, std::string *error)
{
	std::vector<std::string> argv = launch;
	argv.push_back("--");
	argv.push_back(ECHOD_BIN);
	argv.insert(argv.end(), args.begin(), args.end());
	return p->Start(SD_LAUNCH_BIN, argv, "", error);
}

// The lines of text that contain needle.
std::vector<std::string> LinesWith(const std::string &text, const std::string &needle)
{
	std::vector<std::string> out;
	std::istringstream in(text);
	std::string line;
	while (std::getline(in, line))
		if (line.find(needle) != std::string::npos)
			out.push_back(line);
	return out;
}

std::vector<pid_t> WorkersOf(pid_t pid)
{
	return Children(pid, "echod: worker");
}

// The receiving end of NOTIFY_SOCKET: a datagram socket on a path of its own,
// with SO_PASSCRED so that each message carries the sender's pid.
class NotifySocket
{
      public:
	struct Message {
		std::string text;
		pid_t pid = -1;
	};

	bool Open(std::string *error)
	{
		char tmpl[] = "/tmp/echod-notify-XXXXXX";
		if (mkdtemp(tmpl) == nullptr) {
			*error = std::string("mkdtemp: ") + strerror(errno);
			return false;
		}
		dir_ = tmpl;
		path_ = dir_ + "/notify";
		fd_ = Fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
		sockaddr_un sa{};
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path_.c_str());
		int on = 1;
		if (!fd_.valid() ||
		    bind(fd_.get(), reinterpret_cast<sockaddr *>(&sa), sizeof sa) < 0 ||
		    setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) {
			*error = std::string("notify socket: ") + strerror(errno);
			return false;
		}
		return true;
	}
	~NotifySocket()
	{
		fd_.Reset();
		if (!path_.empty())
			unlink(path_.c_str());
		if (!dir_.empty())
			rmdir(dir_.c_str());
	}
	const std::string &path() const
	{
		return path_;
	}

	// The next message, or nullopt after timeout_ms.
	std::optional<Message> Receive(int timeout_ms)
	{
		pollfd p = {fd_.get(), POLLIN, 0};
		if (poll(&p, 1, timeout_ms) <= 0)
			return std::nullopt;
		char buf[4096];
		alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(ucred))];
		iovec iov = {buf, sizeof buf - 1};
		msghdr mh{};
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl;
		mh.msg_controllen = sizeof ctl;
		ssize_t n = recvmsg(fd_.get(), &mh, 0);
		if (n < 0)
			return std::nullopt;
		Message m;
		m.text.assign(buf, size_t(n));
		for (cmsghdr *c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				ucred cred;
				memcpy(&cred, CMSG_DATA(c), sizeof cred);
				m.pid = cred.pid;
			}
		}
		return m;
	}

	// Receives until a message holds needle (returned) or timeout_ms passes.
	std::optional<Message> WaitFor(const std::string &needle, int timeout_ms)
	{
		auto deadline =
		    std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
		for (;;) {
			int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
					   deadline - std::chrono::steady_clock::now())
					   .count());
			if (left <= 0)
				return std::nullopt;
			std::optional<Message> m = Receive(left);
			if (m && m->text.find(needle) != std::string::npos)
				return m;
		}
	}

	// Counts the messages holding needle that arrive within ms; each sender pid
	// goes into *pids.
	int Count(const std::string &needle, int ms, std::vector<pid_t> *pids = nullptr)
	{
		int n = 0;
		auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
		for (;;) {
			int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(
					   deadline - std::chrono::steady_clock::now())
					   .count());
			if (left <= 0)
				return n;
			std::optional<Message> m = Receive(left);
			if (m && m->text.find(needle) != std::string::npos) {
				n++;
				if (pids)
					pids->push_back(m->pid);
			}
		}
	}

      private:
	Fd fd_;
	std::string dir_, path_;
};

// Reads until the peer closes (bounded).
using SdActivationTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(SdActivationTest);

TEST_P(SdActivationTest, OneSocketIsServedAndListenIgnored)
{
	int port = 0;
	Fd lfd = ListenTcp(kLoopback, &port);
	ASSERT_TRUE(lfd.valid()) << strerror(errno);
	Process p;
	std::string error;
	{
		Inheritable keep(lfd.get());
		ASSERT_TRUE(Launch(&p, {"-f", std::to_string(lfd.get()) + ":echod.socket"},
				   {"-b", backend(), "-w", "2", "-v", "-l", "127.0.0.1:1"}, &error))
		    << error;
	}
	ASSERT_TRUE(p.WaitForStderr("echod: ready", kStartTimeoutMs)) << p.Stderr();
	std::string log = p.Stderr();
	EXPECT_NE(log.find("socket activation: 1 sockets from systemd"), std::string::npos) << log;
	EXPECT_NE(log.find("--listen is ignored"), std::string::npos) << log;
	std::vector<std::string> listening = LinesWith(log, "listening on");
	ASSERT_EQ(listening.size(), 1u) << log;
	EXPECT_NE(listening[0].find("127.0.0.1:" + std::to_string(port)), std::string::npos)
	    << listening[0];
	EXPECT_NE(listening[0].find("(socket activation)"), std::string::npos) << listening[0];
	EXPECT_NE(listening[0].find("backend=" + backend()), std::string::npos) << listening[0];
	for (int i = 0; i < 20; i++)
		ASSERT_TRUE(ConnectAndEcho(kLoopback, port, "activated " + std::to_string(i), kIoMs,
					   &error))
		    << error;
	EXPECT_EQ(WorkersOf(p.pid()).size(), 2u);
	// Its own --listen port was never opened.
	EXPECT_FALSE(Connect(kLoopback, 1, 500, &error).valid());
	p.Signal(SIGTERM);
	EXPECT_EQ(p.WaitExit(kStartTimeoutMs), std::optional<int>(0)) << p.Stderr();
	// The socket is still the test's: a new echod would serve it.
	EXPECT_TRUE(Connect(kLoopback, port, kIoMs, &error).valid()) << error;
}

TEST_P(SdActivationTest, SeveralNamedSocketsAreAllServed)
{
	std::vector<Fd> fds;
	std::vector<int> ports;
	std::vector<std::string> hosts = {kLoopback, kLoopback};
	if (CanBind("::1"))
		hosts.push_back("::1");
	for (const std::string &h : hosts) {
		int port = 0;
		fds.push_back(ListenTcp(h, &port));
		ASSERT_TRUE(fds.back().valid()) << h << ": " << strerror(errno);
		ports.push_back(port);
	}
	// FileDescriptorName=: "echo" names the service, any other name (the unit's)
	// means echo too.
	const char *names[] = {"echo", "echod.socket", "echo"};
	std::vector<std::string> launch;
	std::vector<std::unique_ptr<Inheritable>> keep;
	for (size_t i = 0; i < fds.size(); i++) {
		launch.push_back("-f");
		launch.push_back(std::to_string(fds[i].get()) + ":" + names[i]);
		keep.push_back(std::make_unique<Inheritable>(fds[i].get()));
	}
	Process p;
	std::string error;
	ASSERT_TRUE(Launch(&p, launch, {"-b", backend(), "-w", "2"}, &error)) << error;
	keep.clear();
	ASSERT_TRUE(p.WaitForStderr("echod: ready", kStartTimeoutMs)) << p.Stderr();
	EXPECT_EQ(LinesWith(p.Stderr(), "listening on").size(), fds.size()) << p.Stderr();
	for (size_t i = 0; i < fds.size(); i++)
		for (int k = 0; k < 5; k++)
			EXPECT_TRUE(ConnectAndEcho(hosts[i], ports[i],
						   "socket " + std::to_string(i), kIoMs, &error))
			    << hosts[i] << ":" << ports[i] << ": " << error;
	p.Signal(SIGTERM);
	EXPECT_EQ(p.WaitExit(kStartTimeoutMs), std::optional<int>(0)) << p.Stderr();
}

// Runs echod with one passed descriptor and returns its exit status and stderr.
RunResult RunWithPassedFd(int fd, const std::string &name,
			  const std::vector<std::string> &extra = {})
{
	RunResult r;
	Process p;
	std::vector<std::string> launch = {"-f",
					   std::to_string(fd) + (name.empty() ? "" : ":" + name)};
	launch.insert(launch.end(), extra.begin(), extra.end());
	{
		Inheritable keep(fd);
		if (!Launch(&p, launch, {"-w", "1"}, &r.err))
			return r;
	}
	std::optional<int> status = p.WaitExit(kStartTimeoutMs);
	r.status = status ? *status : -1;
	p.Stop(0); // and read what stderr still holds
	r.err = p.Stderr();
	return r;
}

TEST(SdActivationRefusal, StreamSocketThatDoesNotListenExits78)
{
	Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	ASSERT_TRUE(fd.valid());
	RunResult r = RunWithPassedFd(fd.get(), "");
	EXPECT_EQ(r.status, 78) << r.err;
	EXPECT_NE(r.err.find("is not listening"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("Accept=no"), std::string::npos) << r.err;
}

TEST(SdActivationRefusal, NotASocketExits78)
{
	Fd fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
	ASSERT_TRUE(fd.valid());
	RunResult r = RunWithPassedFd(fd.get(), "");
	EXPECT_EQ(r.status, 78) << r.err;
	EXPECT_NE(r.err.find("is not a socket"), std::string::npos) << r.err;
}

// Datagram sockets and sockets named for another service are served now:
// activation_test.cc covers them.

TEST(SdActivationRefusal, SocketsForAnotherPidAreIgnored)
{
	int port = 0;
	Fd lfd = ListenTcp(kLoopback, &port);
	ASSERT_TRUE(lfd.valid());
	Process p;
	std::string error;
	{
		Inheritable keep(lfd.get());
		ASSERT_TRUE(Launch(&p, {"-f", std::to_string(lfd.get()), "-p", "1"},
				   {"-w", "1", "-l", "127.0.0.1:0"}, &error))
		    << error;
	}
	ASSERT_TRUE(p.WaitForStderr("echod: ready", kStartTimeoutMs)) << p.Stderr();
	std::vector<std::string> listening = LinesWith(p.Stderr(), "listening on");
	ASSERT_EQ(listening.size(), 1u) << p.Stderr();
	EXPECT_EQ(listening[0].find("socket activation"), std::string::npos) << listening[0];
	EXPECT_EQ(listening[0].find("127.0.0.1:" + std::to_string(port)), std::string::npos)
	    << listening[0];
	p.Signal(SIGTERM);
	EXPECT_EQ(p.WaitExit(kStartTimeoutMs), std::optional<int>(0)) << p.Stderr();
}

using SdNotifyTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(SdNotifyTest);

TEST_P(SdNotifyTest, ReadyStatusStoppingFromTheMainProcess)
{
	NotifySocket ns;
	std::string error;
	ASSERT_TRUE(ns.Open(&error)) << error;
	Process p;
	ASSERT_TRUE(Launch(&p, {"-e", "NOTIFY_SOCKET=" + ns.path()},
			   {"-b", backend(), "-w", "2", "-l", "127.0.0.1:0"}, &error))
	    << error;
	std::optional<NotifySocket::Message> ready = ns.WaitFor("READY=1", kStartTimeoutMs);
	ASSERT_TRUE(ready) << p.Stderr();
	EXPECT_EQ(ready->pid, p.pid()) << "READY=1 must come from the main process";
	// READY=1 means every worker accepts: a connection right now is echoed.
	// (The log lines were written before READY=1, but are read by another thread.)
	ASSERT_TRUE(p.WaitForStderr("echod: ready: 2 workers accepting", kIoMs)) << p.Stderr();
	std::smatch port_match;
	std::string log = p.Stderr();
	ASSERT_TRUE(std::regex_search(log, port_match,
				      std::regex("listening on tcp 127\\.0\\.0\\.1:([0-9]+) ")))
	    << log;
	int port = std::stoi(port_match[1]);
	EXPECT_TRUE(ConnectAndEcho(kLoopback, port, "ready means ready", kIoMs, &error)) << error;

	std::optional<NotifySocket::Message> status = ns.WaitFor("STATUS=", 5000);
	ASSERT_TRUE(status) << "no STATUS= within 5 s";
	EXPECT_EQ(status->pid, p.pid());
	EXPECT_TRUE(std::regex_search(
	    status->text, std::regex("STATUS=2 workers, [0-9]+ connections, [0-9.]+ MB/s, "
				     "[0-9]+ msgs/s echoed")))
	    << status->text;

	p.Signal(SIGTERM);
	std::optional<NotifySocket::Message> stopping = ns.WaitFor("STOPPING=1", kIoMs);
	ASSERT_TRUE(stopping) << p.Stderr();
	EXPECT_EQ(stopping->pid, p.pid());
	EXPECT_EQ(p.WaitExit(kStartTimeoutMs), std::optional<int>(0)) << p.Stderr();
}

TEST_P(SdNotifyTest, WatchdogPingsOnlyWhileEveryWorkerTurns)
{
	NotifySocket ns;
	std::string error;
	ASSERT_TRUE(ns.Open(&error)) << error;
	Process p;
	// WATCHDOG_USEC=400 ms: a ping every 200 ms.
	ASSERT_TRUE(Launch(&p, {"-e", "NOTIFY_SOCKET=" + ns.path(), "-W", "400000"},
			   {"-b", backend(), "-w", "2", "-l", "127.0.0.1:0"}, &error))
	    << error;
	ASSERT_TRUE(ns.WaitFor("READY=1", kStartTimeoutMs)) << p.Stderr();
	std::vector<pid_t> senders;
	int pings = ns.Count("WATCHDOG=1", 1500, &senders);
	EXPECT_GE(pings, 4) << "expected a ping every 200 ms";
	EXPECT_LE(pings, 10);
	for (pid_t s : senders)
		EXPECT_EQ(s, p.pid()) << "WATCHDOG=1 must come from the main process";

	// A worker whose loop stops turning stops the pings (after 3 s of silence).
	std::vector<pid_t> workers = WorkersOf(p.pid());
	ASSERT_EQ(workers.size(), 2u);
	ASSERT_EQ(kill(workers[0], SIGSTOP), 0);
	// Keep reading: a full notify socket would block echod's sends (systemd reads
	// at once).
	bool noticed = false;
	for (int i = 0; i < 80 && !noticed; i++) {
		ns.Count("", 100);
		noticed = p.Stderr().find("has not turned its loop") != std::string::npos;
	}
	int while_hung = noticed ? ns.Count("WATCHDOG=1", 1000) : -1;
	kill(workers[0], SIGCONT);
	EXPECT_TRUE(noticed) << p.Stderr();
	EXPECT_EQ(while_hung, 0) << "pings went on while a worker was stopped";
	EXPECT_TRUE(ns.WaitFor("WATCHDOG=1", 3000)) << "pings did not resume";
	p.Signal(SIGTERM);
	EXPECT_EQ(p.WaitExit(kStartTimeoutMs), std::optional<int>(0)) << p.Stderr();
}

TEST(SdJournalTest, PrefixesOnlyWhenStderrIsTheJournal)
{
	std::string error;
	Process journal;
	ASSERT_TRUE(Launch(&journal, {"-j"}, {"-w", "2", "-v", "-l", "127.0.0.1:0"}, &error))
	    << error;
	ASSERT_TRUE(journal.WaitForStderr("echod: ready", kStartTimeoutMs)) << journal.Stderr();
	std::vector<pid_t> workers = WorkersOf(journal.pid());
	ASSERT_FALSE(workers.empty());
	kill(workers[0], SIGKILL); // a warning, from the supervisor
	EXPECT_TRUE(journal.WaitForStderr("killed by signal 9", kIoMs)) << journal.Stderr();
	journal.Signal(SIGTERM);
	EXPECT_EQ(journal.WaitExit(kStartTimeoutMs), std::optional<int>(0));
	journal.Stop(0); // and read what stderr still holds
	std::string log = journal.Stderr();
	EXPECT_NE(log.find("<5>echod: listening on tcp 127.0.0.1:"), std::string::npos) << log;
	EXPECT_NE(log.find("<5>echod: ready: 2 workers accepting"), std::string::npos) << log;
	EXPECT_NE(log.find("<6>echod: worker 0 started"), std::string::npos) << log;
	EXPECT_TRUE(
	    std::regex_search(log, std::regex("<4>echod: worker [01] \\(pid [0-9]+\\) killed "
					      "by signal 9")))
	    << log;
	std::istringstream lines(log);
	std::string line;
	while (std::getline(lines, line))
		EXPECT_TRUE(std::regex_match(line, std::regex("<[0-7]>echod: .*"))) << line;

	// JOURNAL_STREAM naming something else: plain lines.
	Process plain;
	ASSERT_TRUE(
	    Launch(&plain, {"-e", "JOURNAL_STREAM=1:1"}, {"-w", "1", "-l", "127.0.0.1:0"}, &error))
	    << error;
	ASSERT_TRUE(plain.WaitForStderr("echod: ready", kStartTimeoutMs)) << plain.Stderr();
	plain.Signal(SIGTERM);
	EXPECT_EQ(plain.WaitExit(kStartTimeoutMs), std::optional<int>(0));
	plain.Stop(0);
	std::istringstream plain_lines(plain.Stderr());
	while (std::getline(plain_lines, line))
		EXPECT_EQ(line.rfind("echod: ", 0), 0u) << line;
	EXPECT_EQ(LinesWith(plain.Stderr(), "echod: listening on").size(), 1u) << plain.Stderr();
}

using SocketActivateToolTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(SocketActivateToolTest);

TEST_P(SocketActivateToolTest, StartsEchodOnItsSocket)
{
	std::string tool = FindProgram("systemd-socket-activate");
	if (tool.empty())
		GTEST_SKIP() << "systemd-socket-activate not found (it comes with systemd)";
	// A port that is free now (the tool binds it a moment later).
	int port = 0;
	ListenTcp(kLoopback, &port);
	ASSERT_GT(port, 0);
	Process p;
	std::string error;
	ASSERT_TRUE(p.Start(tool,
			    {"-l", "127.0.0.1:" + std::to_string(port), "--fdname=echo", ECHOD_BIN,
			     "-b", backend(), "-w", "2", "-l", "127.0.0.1:1"},
			    "", &error))
	    << error;
	// The tool listens, and starts echod on the first connection, which echod serves.
	ASSERT_TRUE(p.WaitForStderr("Listening on 127.0.0.1:" + std::to_string(port), kIoMs))
	    << p.Stderr();
	EXPECT_EQ(p.Stderr().find("listening on"), std::string::npos) << "echod started early";
	ASSERT_TRUE(ConnectAndEcho(kLoopback, port, "first connection", kStartTimeoutMs, &error))
	    << error << "\n"
	    << p.Stderr();
	ASSERT_TRUE(p.WaitForStderr("echod: ready", kStartTimeoutMs)) << p.Stderr();
	std::vector<std::string> listening = LinesWith(p.Stderr(), "listening on");
	ASSERT_EQ(listening.size(), 1u) << p.Stderr();
	EXPECT_NE(listening[0].find("tcp 127.0.0.1:" + std::to_string(port) + " "),
		  std::string::npos)
	    << listening[0];
	EXPECT_NE(listening[0].find("(socket activation)"), std::string::npos) << listening[0];
	for (int i = 0; i < 10; i++)
		ASSERT_TRUE(
		    ConnectAndEcho(kLoopback, port, "via systemd-socket-activate", kIoMs, &error))
		    << error;
	p.Signal(SIGTERM);
	EXPECT_EQ(p.WaitExit(kStartTimeoutMs), std::optional<int>(0)) << p.Stderr();
}

} // namespace
} // namespace e2e
