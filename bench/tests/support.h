// Test support for echo-bench: misbehaving echo servers, a runner for the binary,
// and a small JSON reader for its --json output.
#ifndef ECHO_BENCH_TESTS_SUPPORT_H
#define ECHO_BENCH_TESTS_SUPPORT_H

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace ebtest
{

enum class Behavior {
	Echo,	     // a correct echo
	Corrupt,     // flips stream byte 5 of every connection
	DropClose,   // echoes half of the first chunk, then FIN; keeps reading
	Reset,	     // closes with SO_LINGER 0 (RST) once data arrives
	Silent,	     // reads and discards: never answers (a discard server)
	Chargen,     // sends RFC 864's pattern as fast as it is read; drops what comes in
	CloseAtOnce, // as SlowAccept, but closes each connection at once (over its limit)
	SlowAccept,  // a listen backlog of 4 and one accept() every 10 ms; echoes correctly
	EchoHalf,    // echoes on every other connection it accepts; silent on the rest
};

// A single thread with a poll() loop on 127.0.0.1 (or ::1), ephemeral port.
class TestServer
{
      public:
	explicit TestServer(Behavior b, bool ipv6 = false);
	~TestServer();
	TestServer(const TestServer &) = delete;
	TestServer &operator=(const TestServer &) = delete;

	bool ok() const
	{
		return lfd_ >= 0;
	}
	int port() const
	{
		return port_;
	}
	std::string target() const;

      private:
	struct Client {
		int fd;
		uint64_t seen;
		bool shut;
		bool silent;
	};
	void run();
	void accept_one(std::vector<Client> &clients);
	bool serve(Client &c);

	Behavior behavior_;
	bool ipv6_;
	int lfd_ = -1;
	int port_ = 0;
	unsigned long accepted_ = 0;
	std::atomic<bool> stop_{false};
	std::thread thread_;
};

struct BenchRun {
	int status = -1; // exit status; -1 if killed or not exited normally
	std::string out, err;
};

// Runs the echo-bench binary with args, killing it after timeout_s. A non-zero
// fd_soft/fd_hard sets its RLIMIT_NOFILE (soft, hard) first.
BenchRun run_bench(const std::vector<std::string> &args, int timeout_s = 20,
		   unsigned long fd_soft = 0, unsigned long fd_hard = 0);

// Flattens a JSON document into "a.b.c" -> scalar text ("null", "12.5", unquoted strings).
// Objects map to "{}". Returns false on a syntax error.
bool parse_json(const std::string &text, std::map<std::string, std::string> *out);

// The numeric value of a flattened field, or -1 when it is missing or not a number.
double json_num(const std::map<std::string, std::string> &j, const std::string &key);

} // namespace ebtest

#endif
