// echod-torture: a seeded, randomized adversarial client for the real echod.
//
// It starts build/echod on ephemeral loopback ports with an option set drawn from
// the seed, attacks every listener for --seconds (verified echoes of 1 B to 4 MiB,
// 1-byte writes, half-closes, resets at chosen moments, stalls, slow readers,
// abandoned connections, churn, every TCP service, UDP of every size and a flood),
// signals the supervisor meanwhile (HUP, USR1, SIGKILL of one worker), then checks
// that echod settled (counters, descriptors), stops on TERM in time and logged no
// sanitizer report and no unplanned worker death. Exit 0 pass, 1 fail (saying why,
// with the seed and the command line), 77 when the backend cannot run here.
//
// --backend offload is the epoll backend with --offload=sockmap (issue 17): the kernel
// echoes, and a peer that owes more than --offload-budget (drawn from the seed) is
// reset. Such a reset is excused only for a connection that was, at some moment,
// that far ahead of its echo: what it sent minus what it read, which is never less
// than what echod counts (received, not yet acknowledged).
//
// Verdicts never rest on timing figures: every wait is bounded and generous, and a
// connection without progress for kStallMs while echod owes it something is a stall.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef ECHOD_BIN
#define ECHOD_BIN "build/echod"
#endif

namespace
{

constexpr int64_t kStallMs = 10000;   // no progress while echod owes us: a stall
constexpr int64_t kConnectMs = 10000; // a connect that takes longer: a stall
constexpr int kDrainTimeout = 2;      // echod's --drain-timeout
constexpr int64_t kTermMarginMs = 5000;
constexpr int64_t kSettleMs = 6000; // counters and descriptors back to the baseline
constexpr size_t kMaxEcho = 4u << 20;
constexpr size_t kUdpMax = 65507;

// ---- small helpers ----

int64_t NowMs()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void SleepMs(int64_t ms)
{
	if (ms > 0)
		usleep(useconds_t(ms * 1000));
}

// echod -V says "offload: sockmap": built with the BPF offload.
bool OffloadBuilt(const std::string &echod)
{
	std::string cmd = "'" + echod + "' -V 2>/dev/null", out;
	FILE *p = popen(cmd.c_str(), "r");
	if (p == nullptr)
		return false;
	char buf[256];
	while (fgets(buf, sizeof buf, p) != nullptr)
		out += buf;
	pclose(p);
	return out.find("\noffload: sockmap") != std::string::npos;
}

uint64_t Mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

// A seeded generator (splitmix64): every choice of a run comes from one of these.
class Rng
{
      public:
	explicit Rng(uint64_t seed) : s_(seed)
	{
	}
	uint64_t Next()
	{
		s_ += 0x9E3779B97F4A7C15ull;
		return Mix(s_);
	}
	// Uniform in [lo, hi].
	uint64_t Range(uint64_t lo, uint64_t hi)
	{
		return lo + Next() % (hi - lo + 1);
	}
	bool Chance(double p)
	{
		return double(Next() >> 11) / double(1ull << 53) < p;
	}
	// Log-uniform in [lo, hi]: small sizes as often as big ones.
	uint64_t LogRange(uint64_t lo, uint64_t hi)
	{
		int bits_lo = 63 - __builtin_clzll(lo), bits_hi = 63 - __builtin_clzll(hi);
		int b = int(Range(uint64_t(bits_lo), uint64_t(bits_hi)));
		uint64_t a = std::max(lo, uint64_t(1) << b);
		uint64_t z = std::min(hi, (uint64_t(1) << (b + 1)) - 1);
		return Range(a, z);
	}

      private:
	uint64_t s_;
};

// The payload of stream `key` at offset off, random access: derived from the seed.
void FillPayload(uint64_t key, uint64_t off, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t o = off + i;
		uint64_t w = Mix(key ^ ((o >> 3) * 0xD6E8FEB86659FD93ull));
		out[i] = uint8_t(w >> ((o & 7) * 8));
	}
}

// RFC 864's TCP stream from its start, as echod's service.c writes it.
char ChargenAt(uint64_t off)
{
	uint64_t p = off % (95 * 74), line = p / 74, col = p % 74;
	if (col < 72)
		return char(' ' + (line + col) % 95);
	return col == 72 ? '\r' : '\n';
}

std::string ReadFile(const std::string &path)
{
	std::string s;
	FILE *f = fopen(path.c_str(), "r");
	if (f == nullptr)
		return s;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		s.append(buf, n);
	fclose(f);
	return s;
}

bool AllDigits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

pid_t ParentOf(pid_t pid)
{
	std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
	size_t close = stat.rfind(')');
	if (close == std::string::npos)
		return -1;
	std::istringstream rest(stat.substr(close + 1));
	std::string state;
	pid_t ppid = -1;
	rest >> state >> ppid;
	return ppid;
}

std::string Comm(pid_t pid)
{
	std::string c = ReadFile("/proc/" + std::to_string(pid) + "/comm");
	if (!c.empty() && c.back() == '\n')
		c.pop_back();
	return c;
}

// Worker pid -> slot, from the children of the supervisor named "echod: worker N".
std::map<pid_t, int> Workers(pid_t sup)
{
	std::map<pid_t, int> out;
	DIR *dir = opendir("/proc");
	if (dir == nullptr)
		return out;
	while (struct dirent *e = readdir(dir)) {
		if (!AllDigits(e->d_name))
			continue;
		pid_t pid = pid_t(atoi(e->d_name));
		if (ParentOf(pid) != sup)
			continue;
		std::string c = Comm(pid);
		if (c.rfind("echod: worker ", 0) == 0)
			out[pid] = atoi(c.c_str() + 14);
	}
	closedir(dir);
	return out;
}

int CountFds(pid_t pid)
{
	DIR *dir = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
	if (dir == nullptr)
		return -1;
	int n = 0;
	while (struct dirent *e = readdir(dir))
		n += AllDigits(e->d_name) ? 1 : 0;
	closedir(dir);
	return n;
}

// ---- the run's shared state ----

struct Target {
	std::string proto; // "tcp" or "udp"
	std::string service;
	bool v6 = false;
	int port = 0;
};

struct Options {
	std::string backend;
	std::string echod = ECHOD_BIN;
	int seconds = 20;
	uint64_t seed = 0;
	bool seed_given = false;
	int seeds = 1;
	bool verbose = false;
	bool print_options = false;	 /* print each seed's echod command line, run nothing */
	std::set<std::string> scenarios; // --scenarios: only these TCP plans
};

class Run;

// Failures go here from any thread; the first one stops the load.
class Verdict
{
      public:
	void Fail(const std::string &why)
	{
		std::lock_guard<std::mutex> lock(mu_);
		if (fails_.size() < 20 &&
		    std::find(fails_.begin(), fails_.end(), why) == fails_.end())
			fails_.push_back(why);
		failed_ = true;
	}
	bool Failed() const
	{
		return failed_;
	}
	std::vector<std::string> Fails()
	{
		std::lock_guard<std::mutex> lock(mu_);
		return fails_;
	}

      private:
	std::mutex mu_;
	std::vector<std::string> fails_;
	std::atomic<bool> failed_{false};
};

// echod as a child: its stderr is collected by a thread.
class Echod
{
      public:
	~Echod()
	{
		Kill();
	}
	bool Start(const std::vector<std::string> &argv, std::string *err);
	std::string Log()
	{
		std::lock_guard<std::mutex> lock(mu_);
		return log_;
	}
	size_t LogSize()
	{
		std::lock_guard<std::mutex> lock(mu_);
		return log_.size();
	}
	// Waits for the process; -1 while it runs after timeout_ms.
	int WaitExit(int64_t timeout_ms);
	pid_t pid() const
	{
		return pid_;
	}
	void Kill();

      private:
	void Reader(int fd);
	std::atomic<bool> stop_{false}, reader_done_{false};
	pid_t pid_ = -1;
	int status_ = -1;
	std::thread reader_;
	std::mutex mu_;
	std::string log_;
};

bool Echod::Start(const std::vector<std::string> &argv, std::string *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		*err = std::string("pipe2: ") + strerror(errno);
		return false;
	}
	std::vector<char *> av;
	for (const std::string &a : argv)
		av.push_back(const_cast<char *>(a.c_str()));
	av.push_back(nullptr);
	pid_t parent = getpid();
	pid_ = fork();
	if (pid_ == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(p[1], 2);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, nullptr);
		signal(SIGPIPE, SIG_DFL);
		execv(av[0], av.data());
		_exit(127);
	}
	close(p[1]);
	if (pid_ < 0) {
		close(p[0]);
		*err = std::string("fork: ") + strerror(errno);
		return false;
	}
	reader_ = std::thread(&Echod::Reader, this, p[0]);
	return true;
}

void Echod::Reader(int fd)
{
	char buf[8192];
	while (!stop_) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) == 0)
			continue;
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		std::lock_guard<std::mutex> lock(mu_);
		log_.append(buf, size_t(n));
	}
	close(fd);
	reader_done_ = true;
}

int Echod::WaitExit(int64_t timeout_ms)
{
	int64_t end = NowMs() + timeout_ms;
	while (status_ < 0 && pid_ > 0) {
		int st;
		pid_t r = waitpid(pid_, &st, WNOHANG);
		if (r == pid_) {
			status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
		if (NowMs() >= end)
			return -1;
		SleepMs(5);
	}
	return status_;
}

void Echod::Kill()
{
	if (pid_ > 0 && status_ < 0) {
		kill(pid_, SIGSTOP); // no respawn between the snapshot and the kill
		for (const auto &w : Workers(pid_))
			kill(w.first, SIGKILL);
		kill(pid_, SIGKILL);
		WaitExit(5000);
	}
	// Workers that outlive the supervisor hold the pipe: do not wait for them forever.
	for (int i = 0; i < 200 && !reader_done_; i++)
		SleepMs(10);
	stop_ = true;
	if (reader_.joinable())
		reader_.join();
}

// ---- the TCP client: one epoll loop drives every connection ----

enum class OpKind {
	kSend,	      // send until n bytes are sent (reading if reading is on)
	kShutWr,      // shutdown(SHUT_WR)
	kWaitRecv,    // until n bytes came back
	kWaitEof,     // until echod's FIN; what came back must be all that is owed
	kPause,	      // do nothing for n ms (a stall, quiet time)
	kReadOn,      // read (and verify) from now on
	kReadOff,     // stop reading
	kSlowOn,      // read a little, sleep a little
	kWaitBlocked, // send up to n bytes without reading until the send blocks for 300 ms
	kRst,	      // SO_LINGER {1,0} and close: a reset
	kClose,	      // close
	kExpectClose, // echod must close (idle timeout, an overlong line) within n ms
};

struct Op {
	OpKind k;
	uint64_t n;
};

enum class Kind { kEcho, kDiscard, kChargen, kDaytime, kReverse };

struct Conn {
	uint64_t id = 0;
	std::string what; // the scenario, for messages
	Kind kind = Kind::kEcho;
	const Target *tgt = nullptr;
	int fd = -1;
	bool connecting = true, registered = false, done = false, eof = false;
	bool shut = false; // we sent our FIN
	uint32_t mask = 0;
	std::vector<Op> ops;
	size_t op = 0;
	// sending
	uint64_t key = 0;	 // payload stream
	std::string text;	 // the payload when it is not the key's stream (reverse)
	uint64_t send_limit = 0; // may send up to here now
	uint64_t sent = 0;
	size_t chunk_max = 65536;
	// receiving
	bool reading = false, slow = false;
	std::string expect;	    // what echod must send, when it is a string (banner, reverse)
	bool expect_stream = false; // echo: expect = banner, then the payload
	uint64_t recvd = 0;
	std::string daytime;
	// timing
	int64_t started = 0, last_progress = 0, max_gap = 0, pause_until = 0;
	int64_t read_pause_until = 0, blocked_since = 0, deadline = 0;
	// echod is idle for --idle-timeout when it neither reads nor writes: while we
	// only send, the kernel's buffers take our bytes but echod may move none.
	int64_t last_recv = 0, max_recv_gap = 0;
	// It let the kernel's buffers fill (a full send queue, a slow reader): echod may
	// then see no byte move for a while even as we read what the kernel holds.
	bool backlogged = false;
	bool big = false; // a transfer over 256 KiB: at most 4 at once
	// The most it was ever owed and had not read (sent + banner - received), and the
	// most that was ever charged against the offload budget for it: the owed bytes
	// plus 1 KiB (OFFLOAD_SEG_CHARGE) for each segment they may have come in. In
	// offload mode, over the budget it may be reset.
	uint64_t max_ahead = 0, max_charge = 0;
	uint64_t sends = 0; // successful send() calls: with sent / 16 KiB, a bound on segments
	unsigned gen = 0; // disruptions (HUP, kill) when it opened
};

struct Stats {
	std::map<std::string, uint64_t> scenarios;
	uint64_t excused = 0, rejected = 0, idle_closed = 0, overruns = 0, bytes_verified = 0;
};

class TcpLoop
{
      public:
	TcpLoop(Run *run, uint64_t seed) : run_(run), rng_(seed), io_rng_(Mix(seed))
	{
	}
	void Main(int64_t load_end);
	Stats stats;

      private:
	void Spawn();
	Conn *NewConn(const Target *t, Kind kind, const std::string &what);
	void Build(Conn *c);
	void BuildEcho(Conn *c);
	void BuildService(Conn *c);
	void Handle(Conn *c, uint32_t ev);
	void Advance(Conn *c);
	void DoSend(Conn *c);
	void DoRead(Conn *c);
	void Verify(Conn *c, const uint8_t *p, size_t n);
	void ServerClosed(Conn *c, const std::string &how);
	bool Excused(Conn *c, std::string *why);
	void Finish(Conn *c, bool rst);
	void Bad(Conn *c, const std::string &why);
	void Rearm(Conn *c);
	void Tick();
	uint64_t Owed(const Conn *c) const;

	Run *run_;
	Rng rng_;    // the plans: the k-th connection of a seed always gets the same
	Rng io_rng_; // choices that depend on timing (slow reads)
	int ep_ = -1;
	uint64_t next_id_ = 1;
	std::vector<std::unique_ptr<Conn>> conns_;
	int64_t now_ = 0;
	size_t target_conns_ = 64;
	size_t big_ = 0; // transfers over 256 KiB in flight
};

class Run
{
      public:
	Run(const Options &o, uint64_t seed) : opt(o), seed(seed), rng(seed)
	{
	}
	int Go(); // 0 pass, 1 fail (printed), 77 skip
	void Note(const std::string &s)
	{
		if (opt.verbose) {
			std::lock_guard<std::mutex> lock(print_mu);
			fprintf(stderr, "torture: %s\n", s.c_str());
		}
	}

	const Options &opt;
	uint64_t seed;
	Rng rng;
	Verdict verdict;
	std::atomic<unsigned> gen{0}; // HUPs and kills so far
	// Connections started before this may land on a worker a HUP retires.
	std::atomic<int64_t> disrupt_until{0};
	std::atomic<bool> stop_load{false}; // no new connections
	std::atomic<bool> abort_all{false}; // a failure: wind down at once
	std::vector<Target> targets;
	std::string banner;
	int workers = 1, idle_timeout = 0, max_conns = 0, max_per_ip = 0;
	bool offload = false;	   // --backend offload: -b epoll --offload=sockmap
	uint64_t offload_budget = 0; // its --offload-budget
	bool have_v6 = false;
	std::mutex print_mu;
	std::vector<std::string> argv;
	Echod echod;
	std::set<pid_t> planned_kills;
	std::mutex kills_mu;

	std::vector<const Target *> Find(const std::string &proto, const std::string &svc)
	{
		std::vector<const Target *> v;
		for (const Target &t : targets)
			if (t.proto == proto && t.service == svc)
				v.push_back(&t);
		return v;
	}

      private:
	void ChooseOptions();
	bool StartEchod(int *skip);
	bool ParseListeners(const std::string &log);
	void Signals(int64_t load_end);
	void CheckLog(bool final);
	size_t CountLines(const std::string &needle);
	bool FinalEchoProbe();
	bool Settle(const std::map<int, int> &baseline);
	bool StatsZero(std::string *line);
	void Udp(int64_t load_end, uint64_t s);
	bool UdpProbe(const Target *t, Rng &r, size_t size, std::string *why);
	void UdpFlood(const Target *t, Rng &r);
	bool TermWithOpenConns();
	void Report();
	std::string CommandLine() const;
};

Conn *TcpLoop::NewConn(const Target *t, Kind kind, const std::string &what)
{
	auto c = std::make_unique<Conn>();
	c->id = next_id_++;
	c->kind = kind;
	c->tgt = t;
	c->what = what;
	c->key = Mix(run_->seed ^ (c->id * 0x2545F4914F6CDD1Dull));
	c->started = c->last_progress = c->last_recv = now_;
	c->gen = run_->gen.load();
	c->fd = socket(t->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		run_->verdict.Fail(std::string("socket: ") + strerror(errno));
		return nullptr;
	}
	struct sockaddr_storage ss = {};
	socklen_t len;
	if (t->v6) {
		auto *a = reinterpret_cast<struct sockaddr_in6 *>(&ss);
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(uint16_t(t->port));
		len = sizeof *a;
	} else {
		auto *a = reinterpret_cast<struct sockaddr_in *>(&ss);
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(uint16_t(t->port));
		len = sizeof *a;
	}
	if (connect(c->fd, reinterpret_cast<struct sockaddr *>(&ss), len) < 0 &&
	    errno != EINPROGRESS) {
		run_->verdict.Fail("connect to " + t->proto + " port " + std::to_string(t->port) +
				   ": " + strerror(errno));
		close(c->fd);
		return nullptr;
	}
	run_->Note("conn " + std::to_string(c->id) + ": " + what + " -> " + t->service + " " +
		   (t->v6 ? "[::1]:" : "127.0.0.1:") + std::to_string(t->port));
	stats.scenarios[what]++;
	conns_.push_back(std::move(c));
	return conns_.back().get();
}

// What echod owes a connection in all, or UINT64_MAX when unbounded (chargen).
uint64_t TcpLoop::Owed(const Conn *c) const
{
	switch (c->kind) {
	case Kind::kEcho:
		return c->expect.size() + c->sent;
	case Kind::kChargen:
		return UINT64_MAX;
	case Kind::kDaytime:
		return UINT64_MAX;
	default:
		return c->expect.size();
	}
}

void TcpLoop::BuildEcho(Conn *c)
{
	const uint64_t b = run_->banner.size();
	c->expect = run_->banner;
	c->expect_stream = true;
	uint64_t size = rng_.LogRange(1, kMaxEcho);
	if (size > 256 * 1024 && big_ >= 4)
		size = size % (256 * 1024) + 1; // four big transfers at once are enough
	c->chunk_max = rng_.Chance(0.5) ? 65536 : size_t(rng_.Range(1, 4096));
	auto &o = c->ops;
	const std::string &w = c->what;
	if (w == "echo") {
		o = {{OpKind::kReadOn, 0}, {OpKind::kSend, size}};
		if (rng_.Chance(0.5))
			o.insert(o.end(), {{OpKind::kShutWr, 0}, {OpKind::kWaitEof, 0}});
		else
			o.push_back({OpKind::kWaitRecv, b + size});
		o.push_back({rng_.Chance(0.3) ? OpKind::kRst : OpKind::kClose, 0});
	} else if (w == "echo-1byte") {
		size = rng_.Range(1, 3000);
		c->chunk_max = 1;
		o = {{OpKind::kReadOn, 0},
		     {OpKind::kSend, size},
		     {OpKind::kShutWr, 0},
		     {OpKind::kWaitEof, 0},
		     {OpKind::kClose, 0}};
	} else if (w == "rst-before-send") {
		o = {{OpKind::kPause, rng_.Range(0, 200)}, {OpKind::kRst, 0}};
	} else if (w == "rst-mid-send") {
		o = {{OpKind::kReadOn, 0}, {OpKind::kSend, rng_.Range(0, size)}, {OpKind::kRst, 0}};
	} else if (w == "rst-send-queue-full" || w == "send-queue-full-drain") {
		uint64_t cap = rng_.Range(2, 8) << 20;
		o = {{OpKind::kReadOff, 0}, {OpKind::kWaitBlocked, cap}};
		// Offload never pushes back: the send goes on to the cap, in big chunks (a
		// few MiB in tiny ones would take minutes; see offload_test.cc for those).
		if (run_->offload)
			c->chunk_max = 65536;
		if (w == "rst-send-queue-full")
			o.push_back({OpKind::kRst, 0});
		else
			o.insert(o.end(), {{OpKind::kReadOn, 0},
					   {OpKind::kShutWr, 0},
					   {OpKind::kWaitEof, 0},
					   {OpKind::kClose, 0}});
	} else if (w == "rst-after-shutwr") {
		o = {{OpKind::kReadOn, 0},
		     {OpKind::kSend, size},
		     {OpKind::kShutWr, 0},
		     {OpKind::kPause, rng_.Range(0, 20)},
		     {OpKind::kRst, 0}};
	} else if (w == "stall-then-rst" || w == "stall-then-fin") {
		uint64_t first = std::min<uint64_t>(size, 65536);
		o = {{OpKind::kReadOn, 0},
		     {OpKind::kSend, first},
		     {OpKind::kWaitRecv, b + first},
		     {OpKind::kPause, rng_.Range(300, 3000)}};
		if (w == "stall-then-rst")
			o.push_back({OpKind::kRst, 0});
		else
			o.insert(
			    o.end(),
			    {{OpKind::kShutWr, 0}, {OpKind::kWaitEof, 0}, {OpKind::kClose, 0}});
	} else if (w == "slow-reader") {
		size = std::min<uint64_t>(size, 128 * 1024);
		o = {{OpKind::kSlowOn, 0},
		     {OpKind::kSend, size},
		     {OpKind::kShutWr, 0},
		     {OpKind::kWaitEof, 0},
		     {OpKind::kClose, 0}};
	} else if (w == "abandon") {
		if (run_->idle_timeout > 0 && rng_.Chance(0.5)) {
			c->what = w + "-until-idle";
			o = {{OpKind::kReadOn, 0},
			     {OpKind::kExpectClose, uint64_t(run_->idle_timeout) * 1000 + 5000}};
		} else {
			o = {{OpKind::kPause, rng_.Range(0, 3000)},
			     {rng_.Chance(0.5) ? OpKind::kRst : OpKind::kClose, 0}};
		}
	} else { // churn
		size = rng_.Range(1, 200);
		o = {{OpKind::kReadOn, 0},
		     {OpKind::kSend, size},
		     {OpKind::kWaitRecv, b + size},
		     {rng_.Chance(0.2) ? OpKind::kRst : OpKind::kClose, 0}};
	}
	c->big =
	    size > 256 * 1024 && (w == "echo" || w == "rst-mid-send" || w == "rst-after-shutwr");
	big_ += c->big ? 1 : 0;
}

std::string RandomLine(Rng &r, size_t len)
{
	std::string s(len, ' ');
	for (char &ch : s)
		ch = char(r.Range(0x20, 0x7e));
	return s;
}

void TcpLoop::BuildService(Conn *c)
{
	auto &o = c->ops;
	const std::string &w = c->what;
	if (w == "discard") {
		uint64_t n = rng_.LogRange(1, 1 << 20);
		o = {{OpKind::kReadOn, 0},
		     {OpKind::kSend, n},
		     {OpKind::kShutWr, 0},
		     {OpKind::kWaitEof, 0},
		     {OpKind::kClose, 0}};
	} else if (w == "discard-16384-quiet") {
		o = {{OpKind::kReadOn, 0},
		     {OpKind::kSend, 16384},
		     {OpKind::kPause, rng_.Range(1000, 3000)},
		     {OpKind::kShutWr, 0},
		     {OpKind::kWaitEof, 0},
		     {rng_.Chance(0.5) ? OpKind::kRst : OpKind::kClose, 0}};
	} else if (w == "chargen") {
		uint64_t n = rng_.LogRange(1, 1 << 20);
		o = {{OpKind::kReadOn, 0}, {OpKind::kWaitRecv, n}};
		if (rng_.Chance(0.5))
			o.insert(o.end(), {{OpKind::kShutWr, 0}, {OpKind::kWaitEof, 0}});
		o.push_back({rng_.Chance(0.5) ? OpKind::kRst : OpKind::kClose, 0});
	} else if (w == "chargen-16384-quiet") {
		o = {{OpKind::kReadOff, 0},
		     {OpKind::kSend, 16384},
		     {OpKind::kPause, rng_.Range(1000, 3000)},
		     {OpKind::kReadOn, 0},
		     {OpKind::kWaitRecv, rng_.Range(1, 200000)},
		     {rng_.Chance(0.5) ? OpKind::kRst : OpKind::kClose, 0}};
	} else if (w == "daytime") {
		o = {{OpKind::kReadOn, 0}, {OpKind::kWaitEof, 0}, {OpKind::kClose, 0}};
	} else if (w == "reverse" || w == "reverse-12288-quiet") {
		size_t lines = w == "reverse" ? rng_.Range(1, 12) : 3;
		for (size_t i = 0; i < lines; i++) {
			bool crlf = w == "reverse" && rng_.Chance(0.3);
			size_t len = w == "reverse" ? rng_.LogRange(1, 4096) - 1 : 4095;
			if (crlf && len == 4095)
				len--;
			std::string line = RandomLine(rng_, len);
			c->text += line + (crlf ? "\r\n" : "\n");
			std::reverse(line.begin(), line.end());
			c->expect += line + (crlf ? "\r\n" : "\n");
		}
		bool tail = w == "reverse" && rng_.Chance(0.3);
		if (tail) { // reversed at the FIN
			std::string line = RandomLine(rng_, rng_.Range(1, 100));
			c->text += line;
			std::reverse(line.begin(), line.end());
			c->expect += line;
		}
		o = {{OpKind::kReadOn, 0}, {OpKind::kSend, c->text.size()}};
		if (w != "reverse") {
			o.insert(o.begin(), {OpKind::kReadOff, 0});
			o.push_back({OpKind::kPause, rng_.Range(1000, 3000)});
			o.push_back({OpKind::kReadOn, 0});
		}
		if (tail || rng_.Chance(0.5))
			o.insert(o.end(), {{OpKind::kShutWr, 0}, {OpKind::kWaitEof, 0}});
		else
			o.push_back({OpKind::kWaitRecv, c->expect.size()});
		o.push_back({OpKind::kClose, 0});
	} else { // reverse-overlong: a line over the bound closes the connection
		c->text = RandomLine(rng_, rng_.Range(4097, 9000));
		o = {{OpKind::kReadOn, 0},
		     {OpKind::kSend, c->text.size()},
		     {OpKind::kExpectClose, 10000},
		     {OpKind::kClose, 0}};
	}
}

// The connection plans, drawn with these weights (a name twice: twice as often).
const char *const echo_kinds[] = {"echo",
				  "echo",
				  "echo-1byte",
				  "rst-before-send",
				  "rst-mid-send",
				  "rst-send-queue-full",
				  "send-queue-full-drain",
				  "rst-after-shutwr",
				  "stall-then-rst",
				  "stall-then-fin",
				  "slow-reader",
				  "abandon",
				  "churn",
				  "churn",
				  "churn",
				  "churn"};
const char *const svc_kinds[] = {
    "discard", "discard-16384-quiet", "chargen",	 "chargen-16384-quiet", "daytime",
    "reverse", "reverse-12288-quiet", "reverse-overlong"};

void TcpLoop::Spawn()
{
	auto echo = run_->Find("tcp", "echo");
	const Target *t = nullptr;
	std::string what;
	bool on_echo = false;
	// --scenarios: draw until an allowed plan comes (the draws stay the seed's).
	for (int tries = 0; tries < 100000; tries++) {
		on_echo = rng_.Chance(0.7);
		if (on_echo) {
			t = echo[rng_.Range(0, echo.size() - 1)];
			what = echo_kinds[rng_.Range(0, std::size(echo_kinds) - 1)];
		} else {
			what = svc_kinds[rng_.Range(0, std::size(svc_kinds) - 1)];
		}
		if (run_->opt.scenarios.empty() || run_->opt.scenarios.count(what) != 0)
			break;
	}
	Conn *c;
	if (on_echo) {
		if ((c = NewConn(t, Kind::kEcho, what)) == nullptr)
			return;
		BuildEcho(c);
	} else {
		std::string svc = what.substr(0, what.find('-'));
		auto ts = run_->Find("tcp", svc);
		Kind k = svc == "discard"   ? Kind::kDiscard
			 : svc == "chargen" ? Kind::kChargen
			 : svc == "daytime" ? Kind::kDaytime
					    : Kind::kReverse;
		if ((c = NewConn(ts[0], k, what)) == nullptr)
			return;
		BuildService(c);
	}
	Rearm(c);
}

void TcpLoop::Bad(Conn *c, const std::string &why)
{
	std::ostringstream s;
	s << "connection " << c->id << " (" << c->what << " to " << c->tgt->service << " "
	  << (c->tgt->v6 ? "[::1]:" : "127.0.0.1:") << c->tgt->port << ", "
	  << (NowMs() - c->started) << " ms old, sent " << c->sent << ", received " << c->recvd
	  << "): " << why;
	run_->verdict.Fail(s.str());
	Finish(c, true);
}

void TcpLoop::Finish(Conn *c, bool rst)
{
	if (c->done)
		return;
	if (rst) {
		struct linger l = {1, 0};
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	}
	close(c->fd);
	c->fd = -1;
	c->done = true;
	if (c->big)
		big_--;
}

// Interest follows the state: nothing while paused, so a peer's close waits for us.
void TcpLoop::Rearm(Conn *c)
{
	if (c->done)
		return;
	bool paused = c->pause_until > now_;
	uint32_t m = 0;
	if (!paused) {
		if (c->connecting)
			m = EPOLLOUT;
		else {
			if (c->reading && c->read_pause_until <= now_)
				m |= EPOLLIN | EPOLLRDHUP;
			if (c->sent < c->send_limit)
				m |= EPOLLOUT;
		}
	}
	if (m == 0) {
		if (c->registered)
			epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
		c->registered = false;
		c->mask = 0;
		return;
	}
	if (c->registered && m == c->mask)
		return;
	struct epoll_event ev = {};
	ev.events = m;
	ev.data.ptr = c;
	if (epoll_ctl(ep_, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		run_->verdict.Fail(std::string("epoll_ctl: ") + strerror(errno));
		return;
	}
	c->registered = true;
	c->mask = m;
}

bool TcpLoop::Excused(Conn *c, std::string *why)
{
	if (run_->gen.load() != c->gen || c->started < run_->disrupt_until.load()) {
		*why = "open across a HUP or the planned kill";
		return true;
	}
	// A fresh clock, not the loop's now_: a batch of events that took this client
	// longer than the idle timeout (big transfers verified byte by byte) leaves now_
	// behind while echod rightly closes what moved nothing meanwhile.
	int64_t gap = std::max(c->max_recv_gap, NowMs() - c->last_recv);
	if (run_->idle_timeout > 0 && (gap >= run_->idle_timeout * 1000 - 200 || c->backlogged)) {
		stats.idle_closed++;
		*why = "idle for " + std::to_string(gap) + " ms";
		return true;
	}
	if (run_->offload && c->kind == Kind::kEcho && c->max_charge > run_->offload_budget) {
		stats.overruns++;
		*why = "owed " + std::to_string(c->max_ahead) + " bytes (charged up to " +
		       std::to_string(c->max_charge) + " with its segments), over the offload budget";
		return true;
	}
	if ((run_->max_conns > 0 || run_->max_per_ip > 0) && c->recvd == 0) {
		stats.rejected++;
		*why = "refused by a connection limit";
		return true;
	}
	return false;
}

// echod closed (FIN or RST) where the plan did not expect it.
void TcpLoop::ServerClosed(Conn *c, const std::string &how)
{
	std::string why;
	for (size_t i = c->op; i < c->ops.size(); i++) {
		if (c->ops[i].k == OpKind::kExpectClose) { // an overlong line, say
			Finish(c, false);
			return;
		}
	}
	if (Excused(c, &why)) {
		stats.excused++;
		run_->Note("conn " + std::to_string(c->id) + ": " + how + ", excused: " + why);
		Finish(c, false);
		return;
	}
	Bad(c, "echod closed the connection (" + how + ") while it owed " +
		   (Owed(c) == UINT64_MAX ? std::string("more")
					  : std::to_string(Owed(c) - c->recvd) + " bytes"));
}

void TcpLoop::Verify(Conn *c, const uint8_t *p, size_t n)
{
	uint8_t want[65536];
	if (c->kind == Kind::kDaytime) {
		c->daytime.append(reinterpret_cast<const char *>(p), n);
		if (c->daytime.size() > 200)
			Bad(c, "daytime line longer than 200 bytes");
		c->recvd += n;
		return;
	}
	if (c->kind == Kind::kChargen) {
		for (size_t i = 0; i < n; i++)
			want[i] = uint8_t(ChargenAt(c->recvd + i));
	} else {
		uint64_t owed = Owed(c);
		if (c->recvd + n > owed) {
			Bad(c, "echod sent " + std::to_string(c->recvd + n - owed) +
				   " bytes more than it owed (" + std::to_string(owed) + ")");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t off = c->recvd + i;
			if (off < c->expect.size())
				want[i] = uint8_t(c->expect[off]);
			else
				FillPayload(c->key, off - c->expect.size(), &want[i], 1);
		}
	}
	if (memcmp(want, p, n) != 0) {
		size_t i = 0;
		while (want[i] == p[i])
			i++;
		char buf[160];
		snprintf(buf, sizeof buf, "WRONG BYTE at offset %llu: got 0x%02x, want 0x%02x",
			 (unsigned long long)(c->recvd + i), p[i], want[i]);
		Bad(c, buf);
		return;
	}
	c->recvd += n;
	stats.bytes_verified += n;
}

void TcpLoop::DoRead(Conn *c)
{
	uint8_t buf[65536];
	for (int turns = 0; turns < 8 && !c->done; turns++) {
		size_t want = c->slow ? size_t(io_rng_.Range(1, 4096)) : sizeof buf;
		ssize_t n = recv(c->fd, buf, want, 0);
		if (n > 0) {
			c->max_gap = std::max(c->max_gap, now_ - c->last_progress);
			c->last_progress = now_;
			c->max_recv_gap = std::max(c->max_recv_gap, now_ - c->last_recv);
			c->last_recv = now_;
			Verify(c, buf, size_t(n));
			if (c->slow) {
				c->read_pause_until = now_ + int64_t(io_rng_.Range(1, 30));
				return;
			}
			continue;
		}
		if (n == 0) {
			c->eof = true;
			return;
		}
		if (errno == EAGAIN || errno == EINTR)
			return;
		ServerClosed(c, std::string("recv: ") + strerror(errno));
		return;
	}
}

void TcpLoop::DoSend(Conn *c)
{
	uint8_t buf[65536];
	// At most 64 sends a turn: where nothing pushes back (offload: the kernel takes
	// every byte), tiny chunks would otherwise hold this one loop for a minute.
	for (int turns = 0; turns < 64 && !c->done && c->sent < c->send_limit; turns++) {
		size_t n = size_t(std::min<uint64_t>(c->send_limit - c->sent, c->chunk_max));
		n = std::min(n, sizeof buf);
		if (!c->text.empty())
			memcpy(buf, c->text.data() + c->sent, n);
		else
			FillPayload(c->key, c->sent, buf, n);
		ssize_t k = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (k > 0) {
			c->max_gap = std::max(c->max_gap, now_ - c->last_progress);
			c->last_progress = now_;
			c->sent += uint64_t(k);
			c->blocked_since = 0;
			c->sends++;
			if (c->kind == Kind::kEcho) {
				uint64_t ahead = Owed(c) - c->recvd;
				uint64_t segs = std::min(ahead, c->sends + c->sent / 16384);
				c->max_ahead = std::max(c->max_ahead, ahead);
				c->max_charge = std::max(c->max_charge, ahead + segs * 1024);
			}
			continue;
		}
		if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (c->blocked_since == 0)
				c->blocked_since = now_;
			return;
		}
		ServerClosed(c, std::string("send: ") + strerror(errno));
		return;
	}
}

// Runs the plan as far as it can go now.
void TcpLoop::Advance(Conn *c)
{
	while (!c->done && c->op < c->ops.size()) {
		const Op &o = c->ops[c->op];
		if (c->pause_until > now_)
			break;
		bool next = true;
		switch (o.k) {
		case OpKind::kSend:
			c->send_limit = std::max(c->send_limit, o.n);
			DoSend(c);
			next = c->sent >= o.n;
			break;
		case OpKind::kWaitBlocked:
			c->backlogged = true;
			c->send_limit = o.n;
			DoSend(c);
			next = c->sent >= o.n ||
			       (c->blocked_since != 0 && now_ - c->blocked_since >= 300);
			if (next)
				c->send_limit = c->sent;
			break;
		case OpKind::kShutWr:
			shutdown(c->fd, SHUT_WR);
			c->shut = true;
			break;
		case OpKind::kWaitRecv:
			next = c->recvd >= o.n;
			if (!next && c->eof)
				ServerClosed(c, "EOF");
			break;
		case OpKind::kWaitEof:
			next = c->eof;
			if (next && c->kind == Kind::kDaytime && c->daytime.size() < 20)
				ServerClosed(c, "EOF after " + std::to_string(c->recvd) +
						    " bytes of the daytime line");
			else if (next && c->kind == Kind::kDaytime &&
				 (c->daytime.find(", ") == std::string::npos ||
				  c->daytime.size() < 6 ||
				  c->daytime.compare(c->daytime.size() - 6, 6, "-UTC\r\n") != 0))
				Bad(c, "malformed daytime line '" + c->daytime + "'");
			else if (next && Owed(c) != UINT64_MAX && c->recvd != Owed(c))
				ServerClosed(c, "EOF");
			break;
		case OpKind::kPause:
			c->pause_until = now_ + int64_t(o.n);
			c->op++;
			Rearm(c);
			return;
		case OpKind::kReadOn:
			c->reading = true;
			break;
		case OpKind::kReadOff:
			c->reading = false;
			break;
		case OpKind::kSlowOn:
			c->reading = c->slow = c->backlogged = true;
			break;
		case OpKind::kRst:
		case OpKind::kClose:
			c->op++;
			Finish(c, o.k == OpKind::kRst);
			return;
		case OpKind::kExpectClose:
			if (c->deadline == 0)
				c->deadline = now_ + int64_t(o.n);
			next = c->eof;
			if (next)
				Finish(c, false);
			break;
		}
		if (!next || c->done)
			break;
		c->op++;
	}
	if (!c->done && c->op >= c->ops.size())
		Finish(c, false);
	Rearm(c);
}

void TcpLoop::Handle(Conn *c, uint32_t ev)
{
	if (c->done)
		return;
	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			Bad(c, std::string("connect: ") + strerror(err));
			return;
		}
		c->connecting = false;
		c->last_progress = now_;
		Advance(c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		// A close or an error: read what is left (verifying it) before judging.
		bool was = c->reading;
		if (ev & (EPOLLHUP | EPOLLERR))
			c->reading = true;
		if (c->reading)
			DoRead(c);
		c->reading = was || c->reading;
		// echod's FIN after ours, with everything owed: the plan goes on (to a reset).
		bool settled = c->shut && Owed(c) != UINT64_MAX && c->recvd == Owed(c);
		if (!c->done && c->eof && !settled && c->op < c->ops.size() &&
		    c->ops[c->op].k != OpKind::kWaitEof &&
		    c->ops[c->op].k != OpKind::kExpectClose && c->ops[c->op].k != OpKind::kWaitRecv)
			ServerClosed(c, "EOF");
	}
	if (!c->done)
		Advance(c);
}

// Timers: pauses that end, slow readers that read again, stalls, deadlines.
void TcpLoop::Tick()
{
	for (auto &p : conns_) {
		Conn *c = p.get();
		if (c->done)
			continue;
		if (c->pause_until != 0 && c->pause_until <= now_) {
			c->pause_until = 0;
			c->max_gap = std::max(c->max_gap, now_ - c->last_progress);
			c->last_progress = now_;
			Advance(c);
			continue;
		}
		if (c->pause_until > now_)
			continue;
		if (c->read_pause_until != 0 && c->read_pause_until <= now_) {
			c->read_pause_until = 0;
			Rearm(c);
		}
		if (c->connecting && now_ - c->started > kConnectMs) {
			Bad(c, "connect did not complete in " + std::to_string(kConnectMs) + " ms");
			continue;
		}
		OpKind k = c->op < c->ops.size() ? c->ops[c->op].k : OpKind::kClose;
		if (k == OpKind::kWaitBlocked) {
			Advance(c);
			if (!c->done && now_ - c->started > 30000)
				Bad(c, "sending without reading never blocked in 30 s");
			continue;
		}
		if (k == OpKind::kExpectClose) {
			if (c->deadline != 0 && now_ > c->deadline)
				Bad(c, "echod did not close it within " +
					   std::to_string(c->ops[c->op].n) + " ms");
			continue;
		}
		bool owed = k == OpKind::kSend || k == OpKind::kWaitRecv || k == OpKind::kWaitEof;
		if (owed && now_ - c->last_progress > kStallMs)
			Bad(c, "STALLED: no progress for " +
				   std::to_string(now_ - c->last_progress) +
				   " ms while echod owed it bytes or had to take them");
	}
}

void TcpLoop::Main(int64_t load_end)
{
	ep_ = epoll_create1(EPOLL_CLOEXEC);
	Rng r(rng_.Next());
	target_conns_ = size_t(r.Range(16, 160));
	run_->Note("tcp: up to " + std::to_string(target_conns_) + " connections at once");
	int64_t last_tick = 0, hard_end = load_end + 90000;
	std::vector<struct epoll_event> evs(256);
	for (;;) {
		now_ = NowMs();
		if (run_->abort_all)
			break;
		bool load = now_ < load_end && !run_->stop_load;
		size_t live = conns_.size();
		for (int i = 0; load && live < target_conns_ && i < 16; i++, live++)
			Spawn();
		if (!load && conns_.empty())
			break;
		if (now_ > hard_end) {
			run_->verdict.Fail(std::to_string(conns_.size()) +
					   " client connections still running 90 s after the load");
			break;
		}
		int n = epoll_wait(ep_, evs.data(), int(evs.size()), 10);
		now_ = NowMs();
		for (int i = 0; i < n; i++)
			Handle(static_cast<Conn *>(evs[i].data.ptr), evs[i].events);
		if (now_ - last_tick >= 10) {
			last_tick = now_;
			Tick();
		}
		conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
					    [](const std::unique_ptr<Conn> &c) { return c->done; }),
			     conns_.end());
	}
	for (auto &c : conns_)
		if (!c->done)
			Finish(c.get(), true);
	conns_.clear();
	close(ep_);
}

// ---- UDP ----

int UdpSocket(const Target *t, struct sockaddr_storage *to, socklen_t *len)
{
	int fd = socket(t->v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(to, 0, sizeof *to);
	if (t->v6) {
		auto *a = reinterpret_cast<struct sockaddr_in6 *>(to);
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		a->sin6_port = htons(uint16_t(t->port));
		*len = sizeof *a;
	} else {
		auto *a = reinterpret_cast<struct sockaddr_in *>(to);
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a->sin_port = htons(uint16_t(t->port));
		*len = sizeof *a;
	}
	int big = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	return fd;
}

std::string Where(const Target *t)
{
	return t->proto + " " + (t->v6 ? "[::1]:" : "127.0.0.1:") + std::to_string(t->port);
}

// One datagram of `size` bytes, answered identically within 5 tries of 2 s. A wrong
// answer fails at once; a lost one is tried again (UDP may drop under a flood).
bool Run::UdpProbe(const Target *t, Rng &r, size_t size, std::string *why)
{
	struct sockaddr_storage to;
	socklen_t len;
	int fd = UdpSocket(t, &to, &len);
	if (fd < 0) {
		*why = std::string("socket: ") + strerror(errno);
		return false;
	}
	std::vector<uint8_t> msg(size), got(kUdpMax + 1);
	FillPayload(r.Next(), 0, msg.data(), size);
	bool ok = false;
	for (int attempt = 0; attempt < 5 && !ok && !abort_all; attempt++) {
		if (sendto(fd, msg.data(), size, 0, reinterpret_cast<struct sockaddr *>(&to),
			   len) != ssize_t(size)) {
			*why = std::string("sendto: ") + strerror(errno);
			continue;
		}
		int64_t end = NowMs() + 2000;
		while (!ok && NowMs() < end) {
			struct pollfd p = {fd, POLLIN, 0};
			if (poll(&p, 1, int(std::max<int64_t>(1, end - NowMs()))) <= 0)
				continue;
			ssize_t n = recv(fd, got.data(), got.size(), MSG_DONTWAIT);
			if (n < 0)
				continue;
			if (size_t(n) != size || memcmp(got.data(), msg.data(), size) != 0) {
				*why = "WRONG UDP ANSWER from " + Where(t) + ": sent " +
				       std::to_string(size) + " bytes, got " + std::to_string(n);
				close(fd);
				verdict.Fail(*why);
				return false;
			}
			ok = true;
		}
		if (!ok)
			*why = "no answer from " + Where(t) + " to a " + std::to_string(size) +
			       "-byte datagram in 5 tries of 2 s";
	}
	close(fd);
	return ok || abort_all; // winding down after another failure: no verdict here
}

// 250 bursts of 80 datagrams at one listener, never reading the answers.
void Run::UdpFlood(const Target *t, Rng &r)
{
	struct sockaddr_storage to;
	socklen_t len;
	int fds[4];
	for (int &fd : fds)
		fd = UdpSocket(t, &to, &len);
	std::vector<uint8_t> msg(1400);
	FillPayload(r.Next(), 0, msg.data(), msg.size());
	for (int burst = 0; burst < 250 && !abort_all; burst++) {
		for (int i = 0; i < 80; i++)
			sendto(fds[i % 4], msg.data(), size_t(r.Range(1, msg.size())), MSG_DONTWAIT,
			       reinterpret_cast<struct sockaddr *>(&to), len);
		if (burst % 50 == 0)
			SleepMs(1);
	}
	for (int fd : fds)
		close(fd);
}

void Run::Udp(int64_t load_end, uint64_t s)
{
	Rng r(s);
	auto udp = Find("udp", "echo");
	uint64_t probes = 0, floods = 0;
	while (NowMs() < load_end && !stop_load && !abort_all) {
		if (udp.size() >= 2 && r.Chance(0.1)) {
			// Flood the first; its sibling must go on answering meanwhile.
			const Target *a = udp[0], *b = udp[1];
			floods++;
			Rng pr(r.Next()), fr(r.Next());
			std::thread flood([&] { UdpFlood(a, fr); });
			std::string why;
			bool ok = UdpProbe(b, pr, size_t(pr.LogRange(1, 2000)), &why);
			flood.join();
			if (!ok) {
				verdict.Fail("UDP " + Where(b) + " while " + Where(a) +
					     " was flooded: " + why);
				return;
			}
			if (!UdpProbe(a, pr, 100, &why)) {
				verdict.Fail("UDP after a flood: " + why);
				return;
			}
			continue;
		}
		const Target *t = udp[r.Range(0, udp.size() - 1)];
		size_t size =
		    r.Chance(0.1) ? (r.Chance(0.5) ? 1 : kUdpMax) : size_t(r.LogRange(1, kUdpMax));
		std::string why;
		probes++;
		if (!UdpProbe(t, r, size, &why)) {
			verdict.Fail("UDP: " + why);
			return;
		}
		SleepMs(int64_t(r.Range(0, 20)));
	}
	Note("udp: " + std::to_string(probes) + " probes, " + std::to_string(floods) + " floods");
}

// ---- echod: options, start, signals, settling, stop ----

void Run::ChooseOptions()
{
	static const unsigned ring_counts[] = {2, 4, 8, 16, 64, 512};
	workers = int(rng.Range(1, 2));
	offload = opt.backend == "offload";
	argv = {opt.echod,
		"-b",
		offload ? "epoll" : opt.backend,
		"-w",
		std::to_string(workers),
		"--drain-timeout",
		std::to_string(kDrainTimeout),
		"--udp-rate",
		"0"};
	auto add = [&](const std::string &o, const std::string &v) {
		argv.push_back(o);
		argv.push_back(v);
	};
	add("--ring-buffers", std::to_string(ring_counts[rng.Range(0, 5)]));
	add("--ring-buffer-size",
	    std::to_string(rng.Chance(0.5) ? rng.LogRange(512, 65536) : 512u << rng.Range(0, 7)));
	if (rng.Chance(0.3))
		add("--zerocopy-threshold", "1");
	if (rng.Chance(0.25)) {
		idle_timeout = 1;
		add("--idle-timeout", "1");
	}
	if (rng.Chance(0.2)) {
		max_conns = int(rng.Range(20, 200));
		add("--max-conns", std::to_string(max_conns));
	}
	if (rng.Chance(0.2)) {
		max_per_ip = int(rng.Range(10, 100));
		add("--max-conns-per-ip", std::to_string(max_per_ip));
	}
	if (rng.Chance(0.5)) {
		banner = "torture " + std::to_string(seed);
		add("--banner", banner);
		banner += "\r\n";
	}
	if (offload) { // drawn last: the other backends' draws stay as they were
		offload_budget = rng.LogRange(65536, 16u << 20);
		argv.push_back("--offload=sockmap");
		add("--offload-budget", std::to_string(offload_budget));
	}
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 a = {};
	a.sin6_family = AF_INET6;
	a.sin6_addr = in6addr_loopback;
	have_v6 = fd >= 0 && bind(fd, reinterpret_cast<struct sockaddr *>(&a), sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	for (const char *l :
	     {"127.0.0.1:0", "127.0.0.1:0/discard", "127.0.0.1:0/chargen", "127.0.0.1:0/daytime",
	      "127.0.0.1:0/reverse", "udp:127.0.0.1:0", "udp:127.0.0.1:0"})
		add("-l", l);
	if (have_v6) {
		add("-l", "[::1]:0");
		add("-l", "udp:[::1]:0");
	}
}

std::string Run::CommandLine() const
{
	std::string s;
	for (const std::string &a : argv) {
		bool quote = a.find(' ') != std::string::npos || a.empty();
		s += (s.empty() ? "" : " ") + (quote ? "'" + a + "'" : a);
	}
	return s;
}

// "echod: listening on tcp 127.0.0.1:41234 service=discard workers=2 backend=epoll"
bool Run::ParseListeners(const std::string &log)
{
	std::istringstream lines(log);
	targets.clear();
	for (std::string line; std::getline(lines, line);) {
		size_t at = line.find("listening on ");
		if (at == std::string::npos)
			continue;
		std::istringstream words(line.substr(at + 13));
		Target t;
		std::string addr, w;
		words >> t.proto >> addr;
		t.service = "echo";
		bool offloaded = false;
		while (words >> w) {
			if (w.rfind("service=", 0) == 0)
				t.service = w.substr(8);
			offloaded = offloaded || w == "offload=sockmap";
		}
		// Offload is for TCP echo listeners, all of them, and nothing else.
		if (offloaded != (offload && t.proto == "tcp" && t.service == "echo")) {
			verdict.Fail("listening line with" + std::string(offloaded ? "" : "out") +
				     " offload=sockmap: " + line);
			return false;
		}
		size_t colon = addr.rfind(':');
		if (colon == std::string::npos)
			return false;
		t.port = atoi(addr.c_str() + colon + 1);
		t.v6 = addr[0] == '[';
		if (t.port <= 0)
			return false;
		targets.push_back(t);
	}
	return true;
}

bool Run::StartEchod(int *skip)
{
	std::string err;
	if (!echod.Start(argv, &err)) {
		verdict.Fail("cannot start echod: " + err);
		return false;
	}
	int64_t end = NowMs() + 20000;
	while (NowMs() < end && echod.Log().find("echod: ready") == std::string::npos) {
		int st = echod.WaitExit(0);
		if (st >= 0) {
			SleepMs(100);
			if (st == 71 && (opt.backend == "io_uring" || offload)) {
				*skip = 1;
				fprintf(stderr, "torture: skip: echod %s cannot run here:\n%s",
					offload ? "--offload=sockmap" : "-b io_uring",
					echod.Log().c_str());
				return false;
			}
			verdict.Fail("echod exited with status " + std::to_string(st) +
				     " at start");
			return false;
		}
		SleepMs(20);
	}
	if (echod.Log().find("echod: ready") == std::string::npos) {
		verdict.Fail("no 'echod: ready' line within 20 s");
		return false;
	}
	size_t want = have_v6 ? 9 : 7;
	if (!ParseListeners(echod.Log()) || targets.size() != want) {
		verdict.Fail("expected " + std::to_string(want) + " 'listening on' lines");
		return false;
	}
	return true;
}

// Sanitizer reports and worker deaths that were not the planned SIGKILL.
void Run::CheckLog(bool final)
{
	std::string log = echod.Log();
	static const char *const bad[] = {
	    "ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer", "ERROR: ThreadSanitizer"};
	for (const char *b : bad) {
		size_t at = log.find(b);
		if (at != std::string::npos) {
			size_t start = log.rfind('\n', at), end = log.find('\n', at);
			start = start == std::string::npos ? 0 : start + 1;
			if (end == std::string::npos)
				return; // the next look sees the whole line
			verdict.Fail("sanitizer report in echod's stderr: " +
				     log.substr(start, end - start));
			return;
		}
	}
	std::istringstream lines(log);
	for (std::string line; std::getline(lines, line);) {
		bool killed = line.find(") killed by signal ") != std::string::npos;
		bool exited = line.find(") exited with status ") != std::string::npos;
		if (!killed && !exited)
			continue;
		size_t p = line.find("(pid ");
		pid_t pid = p == std::string::npos ? -1 : pid_t(atoi(line.c_str() + p + 5));
		std::lock_guard<std::mutex> lock(kills_mu);
		if (killed && planned_kills.count(pid) != 0 &&
		    line.find("killed by signal 9 ") != std::string::npos)
			continue;
		verdict.Fail("unplanned worker death: " + line);
		return;
	}
	(void) final;
}

size_t Run::CountLines(const std::string &needle)
{
	std::string log = echod.Log();
	size_t n = 0;
	for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1))
		n++;
	return n;
}

// After the load every worker must still echo: a few connections at once, each
// verified (they spread over the workers by the kernel's hash).
bool Run::FinalEchoProbe()
{
	std::vector<int> fds;
	for (const Target *t : Find("tcp", "echo")) {
		for (int i = 0; i < 4 * workers; i++) {
			int fd = socket(t->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			struct sockaddr_storage to;
			socklen_t len;
			close(UdpSocket(t, &to, &len)); // the same address, as a sockaddr
			struct timeval tv = {10, 0};
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
			if (connect(fd, reinterpret_cast<struct sockaddr *>(&to), len) < 0) {
				verdict.Fail("final probe: connect to " + Where(t) + ": " +
					     strerror(errno));
				close(fd);
				return false;
			}
			fds.push_back(fd);
		}
	}
	std::string msg(1000, 'x');
	for (size_t i = 0; i < msg.size(); i++)
		msg[i] = char('a' + (seed + i) % 26);
	for (int fd : fds)
		send(fd, msg.data(), msg.size(), MSG_NOSIGNAL);
	bool ok = true;
	for (int fd : fds) {
		std::string got;
		char buf[4096];
		while (got.size() < banner.size() + msg.size()) {
			ssize_t n = recv(fd, buf, sizeof buf, 0);
			if (n <= 0)
				break;
			got.append(buf, size_t(n));
		}
		if (ok && got != banner + msg) {
			verdict.Fail("final probe: a fresh echo connection got " +
				     std::to_string(got.size()) + " of " +
				     std::to_string(banner.size() + msg.size()) +
				     " bytes right within 10 s (a worker stopped echoing?)");
			ok = false;
		}
		close(fd);
	}
	return ok;
}

// HUP, USR1 and one SIGKILL of a worker at times drawn from the seed.
void Run::Signals(int64_t load_end)
{
	int64_t start = NowMs(), span = load_end - start;
	std::vector<std::pair<int64_t, int>> plan;
	for (uint64_t i = 0, n = rng.Range(0, 2); i < n; i++)
		plan.push_back({start + int64_t(rng.Range(1, 9)) * span / 10, SIGHUP});
	for (uint64_t i = 0, n = rng.Range(1, 3); i < n; i++)
		plan.push_back({start + int64_t(rng.Range(1, 9)) * span / 10, SIGUSR1});
	if (rng.Chance(0.6))
		plan.push_back({start + int64_t(rng.Range(1, 9)) * span / 10, SIGKILL});
	std::sort(plan.begin(), plan.end());
	size_t next = 0, hups = 0;
	pid_t killed = 0;
	while (NowMs() < load_end && !abort_all) {
		CheckLog(false);
		if (verdict.Failed())
			break;
		// A disruption lasts until every old worker stopped accepting ("reload: done")
		// and the killed one is reaped: a worker accepts until it is gone.
		if (disrupt_until == INT64_MAX && CountLines("reload: done") >= hups &&
		    (killed == 0 ||
		     CountLines("(pid " + std::to_string(killed) + ") killed by signal") > 0))
			disrupt_until = NowMs() + 1000;
		if (next < plan.size() && NowMs() >= plan[next].first) {
			int sig = plan[next++].second;
			if (sig == SIGKILL) {
				auto ws = Workers(echod.pid());
				if (!ws.empty()) {
					auto it = ws.begin();
					std::advance(it, rng.Range(0, ws.size() - 1));
					{
						std::lock_guard<std::mutex> lock(kills_mu);
						planned_kills.insert(it->first);
					}
					gen++;
					killed = it->first;
					disrupt_until = INT64_MAX;
					kill(it->first, SIGKILL);
					Note("SIGKILL worker " + std::to_string(it->second) +
					     " (pid " + std::to_string(it->first) + ")");
				}
			} else {
				if (sig == SIGHUP) {
					gen++;
					hups++;
					disrupt_until = INT64_MAX;
				}
				kill(echod.pid(), sig);
				Note(std::string("sent ") + strsignal(sig));
			}
		}
		SleepMs(50);
	}
}

// Sends USR1 and reads the next "stats:" line; true when open and buffers_held are 0.
bool Run::StatsZero(std::string *line)
{
	size_t before = echod.LogSize();
	kill(echod.pid(), SIGUSR1);
	int64_t end = NowMs() + 1000;
	while (NowMs() < end) {
		std::string log = echod.Log();
		size_t at = log.find("stats: workers=", before);
		size_t nl = at == std::string::npos ? at : log.find('\n', at);
		if (nl != std::string::npos) {
			*line = log.substr(at, nl - at);
			return line->find(" open=0 ") != std::string::npos &&
			       line->find(" buffers_held=0 ") != std::string::npos;
		}
		SleepMs(20);
	}
	*line = "(no stats line after USR1 within 1 s)";
	return false;
}

// After the load: counters back to 0, workers back to their start-up descriptors.
bool Run::Settle(const std::map<int, int> &baseline)
{
	int64_t end = NowMs() + kSettleMs + kDrainTimeout * 1000;
	std::string line, fds;
	bool stats_ok = false, fds_ok = false;
	while (NowMs() < end && !(stats_ok && fds_ok)) {
		if (!stats_ok)
			stats_ok = StatsZero(&line);
		auto ws = Workers(echod.pid());
		fds.clear();
		fds_ok = ws.size() == size_t(workers);
		for (const auto &w : ws) {
			int n = CountFds(w.first);
			auto b = baseline.find(w.second);
			fds += " worker " + std::to_string(w.second) + " (pid " +
			       std::to_string(w.first) + "): " + std::to_string(n) + " fds, " +
			       (b == baseline.end() ? std::string("no baseline")
						    : std::to_string(b->second) + " at start") +
			       ";";
			if (b == baseline.end() || n != b->second)
				fds_ok = false;
		}
		if (!(stats_ok && fds_ok))
			SleepMs(250);
	}
	if (!stats_ok)
		verdict.Fail("counters not back to 0 after the load: " + line);
	if (!fds_ok)
		verdict.Fail("workers not back to their descriptors at start (" +
			     std::to_string(workers) + " expected):" + fds);
	Note("settled: " + line);
	return stats_ok && fds_ok;
}

// TERM with two connections open: they are still echoed, then echod exits 0 in time.
bool Run::TermWithOpenConns()
{
	auto echo = Find("tcp", "echo");
	std::vector<int> fds;
	for (int i = 0; i < 2; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons(uint16_t(echo[0]->port));
		struct timeval tv = {5, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if (connect(fd, reinterpret_cast<struct sockaddr *>(&a), sizeof a) < 0) {
			verdict.Fail(std::string("connect before TERM: ") + strerror(errno));
			close(fd);
			continue;
		}
		fds.push_back(fd);
	}
	// Each has its banner (if any) before TERM: the worker accepted it.
	for (int fd : fds) {
		std::string got;
		char buf[256];
		while (got.size() < banner.size()) {
			ssize_t n = recv(fd, buf, sizeof buf, 0);
			if (n <= 0)
				break;
			got.append(buf, size_t(n));
		}
	}
	int64_t t0 = NowMs();
	kill(echod.pid(), SIGTERM);
	SleepMs(100);
	for (int fd : fds) {
		const char msg[] = "still echoed while draining\n";
		std::string got;
		char buf[256];
		send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
		while (got.size() < sizeof msg - 1) {
			ssize_t n = recv(fd, buf, sizeof buf, 0);
			if (n <= 0)
				break;
			got.append(buf, size_t(n));
		}
		if (got != msg && idle_timeout == 0)
			verdict.Fail(
			    "a connection open at TERM was not echoed while draining: got '" + got +
			    "'");
		close(fd);
	}
	int st = echod.WaitExit(kDrainTimeout * 1000 + kTermMarginMs - (NowMs() - t0));
	if (st < 0) {
		verdict.Fail("echod did not exit within --drain-timeout " +
			     std::to_string(kDrainTimeout) + " s + " +
			     std::to_string(kTermMarginMs) + " ms after TERM");
		return false;
	}
	if (st != 0)
		verdict.Fail("echod exited with status " + std::to_string(st) + " after TERM");
	return st == 0;
}

void Run::Report()
{
	std::lock_guard<std::mutex> lock(print_mu);
	fprintf(stderr, "torture: FAIL: seed %llu, backend %s\n", (unsigned long long)seed,
		opt.backend.c_str());
	for (const std::string &f : verdict.Fails())
		fprintf(stderr, "torture:   %s\n", f.c_str());
	fprintf(stderr, "torture: echod command line: %s\n", CommandLine().c_str());
	std::string log = echod.Log();
	size_t start = log.size() > 12000 ? log.find('\n', log.size() - 12000) + 1 : 0;
	size_t asan = log.find("ERROR: AddressSanitizer");
	if (asan == std::string::npos)
		asan = log.find("runtime error:");
	if (asan != std::string::npos && asan < start)
		start = log.rfind('\n', asan) + 1;
	fprintf(stderr, "torture: echod's log%s:\n%s\n", start ? " (tail)" : "",
		log.substr(start, 16000).c_str());
	fprintf(stderr, "torture: reproduce: echod-torture --backend %s --seed %llu --seconds %d\n",
		opt.backend.c_str(), (unsigned long long)seed, opt.seconds);
}

int Run::Go()
{
	ChooseOptions();
	if (opt.print_options) {
		printf("%llu %s\n", (unsigned long long)seed, CommandLine().c_str());
		return 0;
	}
	fprintf(stderr, "torture: seed %llu, backend %s, %d s%s\ntorture: %s\n",
		(unsigned long long)seed, opt.backend.c_str(), opt.seconds,
		have_v6 ? "" : " (IPv6: ::1 unavailable, skipped)", CommandLine().c_str());
	int skip = 0;
	if (offload && !OffloadBuilt(opt.echod)) {
		fprintf(stderr, "torture: skip: %s was built without BPF (echod -V: no "
				"'offload: sockmap')\n",
			opt.echod.c_str());
		return 77;
	}
	if (!StartEchod(&skip)) {
		if (skip)
			return 77;
		Report();
		return 1;
	}
	std::map<int, int> baseline;
	for (const auto &w : Workers(echod.pid()))
		baseline[w.second] = CountFds(w.first);
	int64_t load_end = NowMs() + int64_t(opt.seconds) * 1000;
	TcpLoop tcp(this, rng.Next());
	uint64_t udp_seed = rng.Next();
	std::thread tcp_thread([&] { tcp.Main(load_end); });
	std::thread udp_thread([&] { Udp(load_end, udp_seed); });
	Signals(load_end);
	stop_load = true;
	CheckLog(false);
	if (verdict.Failed())
		abort_all = true;
	udp_thread.join();
	// The TCP clients end by themselves (bounded); watch the log meanwhile.
	std::atomic<bool> tcp_done{false};
	std::thread watcher([&] {
		while (!tcp_done) {
			CheckLog(false);
			if (verdict.Failed())
				abort_all = true;
			SleepMs(100);
		}
	});
	tcp_thread.join();
	tcp_done = true;
	watcher.join();
	if (!verdict.Failed()) {
		// Liveness: every UDP listener still answers after the load.
		Rng r(rng.Next());
		std::string why;
		for (const Target *t : Find("udp", "echo"))
			if (!UdpProbe(t, r, 512, &why))
				verdict.Fail("UDP after the load: " + why);
	}
	if (!verdict.Failed())
		FinalEchoProbe();
	CheckLog(false);
	if (!verdict.Failed())
		Settle(baseline);
	if (!verdict.Failed())
		TermWithOpenConns();
	CheckLog(true);
	if (verdict.Failed()) {
		// A sanitizer's report (symbolized) takes a while: let the log go quiet.
		size_t size = 0;
		for (int i = 0; i < 100 && echod.LogSize() != size; i++) {
			size = echod.LogSize();
			SleepMs(300);
		}
		echod.Kill();
		Report();
		return 1;
	}
	const Stats &s = tcp.stats;
	uint64_t total = 0;
	std::string kinds;
	for (const auto &k : s.scenarios) {
		total += k.second;
		kinds += " " + k.first + "=" + std::to_string(k.second);
	}
	fprintf(stderr,
		"torture: seed %llu PASS: %llu connections, %.1f MiB verified, %llu excused "
		"(%llu idle, %llu refused by limits, %llu over the offload budget), %zu planned "
		"kills\n",
		(unsigned long long)seed, (unsigned long long)total,
		double(s.bytes_verified) / 1048576.0, (unsigned long long)s.excused,
		(unsigned long long)s.idle_closed, (unsigned long long)s.rejected,
		(unsigned long long)s.overruns, planned_kills.size());
	Note("scenarios:" + kinds);
	Note("echod's log:\n" + echod.Log());
	return 0;
}

[[noreturn]] void Usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: echod-torture --backend epoll|io_uring|offload [--seconds N] [--seed N] "
		"[--seeds K] [--echod PATH] [--scenarios PLAN,...] [--print-options] [--verbose]\n"
		"Starts echod on loopback ports and attacks it for N seconds per seed (default "
		"20);\n"
		"--backend offload: -b epoll --offload=sockmap (a budget drawn from the seed).\n"
		"exit 0 pass, 1 fail (with the seed and echod's command line), 77 skip.\n"
		"--print-options prints each seed's echod command line and runs nothing.\n"
		"--scenarios limits the TCP plans to some of:");
	const char *prev = "";
	for (const char *k : echo_kinds) {
		if (strcmp(k, prev) != 0)
			fprintf(status ? stderr : stdout, " %s", k);
		prev = k;
	}
	for (const char *k : svc_kinds)
		fprintf(status ? stderr : stdout, " %s", k);
	fprintf(status ? stderr : stdout, "\n");
	exit(status);
}

Options ParseArgs(int argc, char **argv)
{
	Options o;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&]() -> std::string {
			if (i + 1 >= argc)
				Usage(64);
			return argv[++i];
		};
		if (a == "--backend" || a == "-b")
			o.backend = value();
		else if (a == "--seconds")
			o.seconds = atoi(value().c_str());
		else if (a == "--seed") {
			o.seed = strtoull(value().c_str(), nullptr, 10);
			o.seed_given = true;
		} else if (a == "--seeds")
			o.seeds = atoi(value().c_str());
		else if (a == "--echod")
			o.echod = value();
		else if (a == "--scenarios") {
			std::istringstream in(value());
			for (std::string w; std::getline(in, w, ',');) {
				bool known = false;
				for (const char *k : echo_kinds)
					known = known || w == k;
				for (const char *k : svc_kinds)
					known = known || w == k;
				if (!known) {
					fprintf(stderr,
						"echod-torture: --scenarios: unknown plan '%s'\n",
						w.c_str());
					Usage(64);
				}
				o.scenarios.insert(w);
			}
		} else if (a == "--verbose" || a == "-v")
			o.verbose = true;
		else if (a == "--print-options")
			o.print_options = true;
		else if (a == "--help" || a == "-h")
			Usage(0);
		else
			Usage(64);
	}
	if ((o.backend != "epoll" && o.backend != "io_uring" && o.backend != "offload") ||
	    o.seconds < 1 || o.seeds < 1)
		Usage(64);
	return o;
}

} // namespace

int main(int argc, char **argv)
{
	Options opt = ParseArgs(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max >= 4096) {
		rl.rlim_cur = 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!opt.seed_given) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		opt.seed =
		    Mix(uint64_t(ts.tv_sec) * 1000000007ull + uint64_t(ts.tv_nsec)) % 1000000000;
	}
	for (int k = 0; k < opt.seeds; k++) {
		Run run(opt, opt.seed + uint64_t(k));
		int rc = run.Go();
		if (rc != 0)
			return rc;
	}
	return 0;
}
