// The echod daemon under test: start it on ephemeral ports, read its log,
// find its workers in /proc, and always stop it (and them) in the end.
#ifndef ECHOD_TESTS_DAEMON_H
#define ECHOD_TESTS_DAEMON_H

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "process.h"

namespace e2e
{

constexpr int kStartTimeoutMs = 10000;

// ECHOD_TEST_WRAPPER: a command line (words split at spaces) that every echod the
// tests start runs under, e.g. "valgrind --error-exitcode=99 --log-file=DIR/%p".
// Its own system calls would trip the worker's filter, so echod gets
// --seccomp=false then. Empty when unset.
const std::vector<std::string> &TestWrapper();
// ECHOD_TEST_TIMEOUT_SCALE: waits on the daemon (start, stop, log lines, exit) last
// that many times longer, for a wrapper that slows echod down. Returns ms scaled.
int Scaled(int ms);

class Daemon
{
      public:
	Daemon() = default;
	~Daemon()
	{
		Stop();
	}
	Daemon(const Daemon &) = delete;
	Daemon &operator=(const Daemon &) = delete;

	// Starts echod with args and waits (bounded) for `listeners` "listening on"
	// lines and then "echod: ready". On failure returns false; *error holds the
	// reason and the daemon's stderr.
	bool Start(const std::vector<std::string> &args, int listeners, std::string *error);
	// The same, echod run by a wrapper program: wrapper[0] wrapper[1..] ECHOD args.
	// The wrapper must exec echod (the pid stays the daemon's).
	bool StartWrapped(const std::vector<std::string> &wrapper,
			  const std::vector<std::string> &args, int listeners, std::string *error);

	// The port of the i-th listening line.
	int port(size_t i = 0) const
	{
		return ports_.at(i);
	}
	pid_t pid() const
	{
		return proc_.pid();
	}
	std::string Log() const
	{
		return proc_.Stderr();
	}
	bool WaitForLog(const std::string &needle, int timeout_ms) const
	{
		return proc_.WaitForStderr(needle, Scaled(timeout_ms));
	}
	bool Signal(int sig)
	{
		return proc_.Signal(sig);
	}
	std::optional<int> WaitExit(int timeout_ms)
	{
		return proc_.WaitExit(Scaled(timeout_ms));
	}

	// Direct children named "echod: worker N", sorted.
	std::vector<pid_t> Workers() const;
	// Summed VmRSS of the workers, in KiB.
	long WorkersRssKb() const;
	// SIGTERM, a bounded wait, then SIGKILL for the supervisor and its workers.
	void Stop(int grace_ms = 3000);
	// After Stop: "" when echod stopped as it must, else what went wrong: it needed
	// SIGKILL, exited non-zero, or a worker did (a sanitizer's or valgrind's verdict
	// lands there, as --error-exitcode or LeakSanitizer's status).
	std::string StopProblem();

      private:
	bool ParsePorts(std::string *error);

	Process proc_;
	std::vector<int> ports_;
	bool killed_ = false;
};

// Runs echod to completion with args (killed after timeout_ms).
RunResult RunEchod(const std::vector<std::string> &args, int timeout_ms = 10000);
// The backend names on the "backends:" line of `echod -V`.
std::vector<std::string> BuiltBackends(std::string *error);

// /proc helpers.
std::string Comm(pid_t pid);
std::vector<pid_t> Children(pid_t parent, const std::string &comm_prefix);
long RssKb(pid_t pid);

} // namespace e2e

#endif
