// A child process run with fork/exec: stdin fed from a string (or /dev/null),
// stdout and stderr drained by a background thread into buffers the test can
// search while the child runs. Every wait is bounded.
#ifndef ECHOD_TESTS_PROCESS_H
#define ECHOD_TESTS_PROCESS_H

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace e2e
{

class Process
{
      public:
	Process() = default;
	~Process();
	Process(const Process &) = delete;
	Process &operator=(const Process &) = delete;

	// Starts path with argv[1..] = args. stdin gets stdin_data then EOF, or
	// /dev/null when stdin_data is empty. Returns false (with *error) on failure.
	bool Start(const std::string &path, const std::vector<std::string> &args,
		   const std::string &stdin_data, std::string *error);

	pid_t pid() const
	{
		return pid_;
	}
	std::string Stdout() const;
	std::string Stderr() const;

	// Waits until stderr contains needle; false on timeout.
	bool WaitForStderr(const std::string &needle, int timeout_ms) const;
	// Waits until stderr holds at least count lines containing needle, or the
	// child has closed stderr. Returns the number of such lines seen.
	int WaitForStderrLines(const std::string &needle, int count, int timeout_ms) const;

	// Exit status: WEXITSTATUS, or 128 + signal number. nullopt while running.
	std::optional<int> WaitExit(int timeout_ms);
	bool Running();
	// Sends sig; false when the child is gone.
	bool Signal(int sig);
	// SIGTERM, a bounded wait, then SIGKILL; reaps the child and the reader thread.
	void Stop(int grace_ms);

      private:
	void ReadLoop(int in_fd, int out_fd, int err_fd, std::string stdin_data);
	void JoinReader();

	pid_t pid_ = -1;
	std::optional<int> status_;
	std::thread reader_;
	mutable std::mutex mu_;
	mutable std::condition_variable cv_;
	std::string out_, err_;
	bool streams_closed_ = false;
	std::atomic<bool> stop_reader_{false};
};

// Polls pred every interval_ms until it holds or timeout_ms passes.
bool WaitUntil(const std::function<bool()> &pred, int timeout_ms, int interval_ms = 10);

// The path of an executable found in $PATH (or a few sbin folders), or "".
std::string FindProgram(const std::string &name);

struct RunResult {
	int status = -1; // as Process::WaitExit; -1 when it did not finish in time
	std::string out, err;
};

// Runs a program to completion (killed after timeout_ms) and returns its output.
RunResult RunProgram(const std::string &path, const std::vector<std::string> &args,
		     const std::string &stdin_data = "", int timeout_ms = 10000);

} // namespace e2e

#endif
