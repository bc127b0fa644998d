// Client-side socket helpers for the end-to-end tests. Every socket is
// nonblocking and close-on-exec; every wait is bounded by a timeout in ms.
#ifndef ECHOD_TESTS_NET_H
#define ECHOD_TESTS_NET_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace e2e
{

// Owns one file descriptor.
class Fd
{
      public:
	Fd() = default;
	explicit Fd(int fd) : fd_(fd)
	{
	}
	Fd(Fd &&o) noexcept : fd_(o.Release())
	{
	}
	Fd &operator=(Fd &&o) noexcept;
	~Fd();
	int get() const
	{
		return fd_;
	}
	bool valid() const
	{
		return fd_ >= 0;
	}
	int Release();
	void Reset();

      private:
	int fd_ = -1;
};

// Connects to host:port (IPv4 or IPv6 literal), optionally from source
// address src. Returns an invalid Fd and sets *error (errno text) on failure.
Fd Connect(const std::string &host, int port, int timeout_ms, std::string *error,
	   const std::string &src = "");

// Binds (and listens on) a TCP socket without SO_REUSEPORT; *port gets the port.
Fd ListenTcp(const std::string &host, int *port);
bool CanBind(const std::string &host);

bool SendAll(int fd, const void *data, size_t len, int timeout_ms);
bool SendAll(int fd, const std::string &data, int timeout_ms);

enum class RecvStatus { kOk, kEof, kReset, kTimeout, kError };
const char *ToString(RecvStatus s);

// Reads exactly len bytes into buf (timeout for the whole read). *got, when
// given, receives the number of bytes read.
RecvStatus RecvExact(int fd, void *buf, size_t len, int timeout_ms, size_t *got = nullptr);
RecvStatus RecvExact(int fd, std::string *out, size_t len, int timeout_ms);
// Waits for the peer's close: kEof or kReset when it came, kOk if data came first.
RecvStatus WaitClosed(int fd, int timeout_ms);
// Without reading: waits until the peer closed or reset (POLLRDHUP/HUP/ERR).
bool WaitPeerGone(int fd, int timeout_ms);

// Sends msg and expects it echoed back exactly.
bool EchoOnce(int fd, const std::string &msg, int timeout_ms, std::string *error);
// Connects, echoes msg once and closes; *error says what went wrong.
bool ConnectAndEcho(const std::string &host, int port, const std::string &msg, int timeout_ms,
		    std::string *error);

std::string RandomBytes(size_t len, uint64_t seed);

struct StreamOptions {
	size_t max_chunk = 65536; // sends and reads use random sizes in [1, max_chunk]
	uint64_t seed = 1;
	bool shutdown_and_eof = true; // SHUT_WR after the data, then expect EOF
	int timeout_ms = 30000;	      // for the whole stream
	size_t pause_at = 0;	      // when nonzero, on_pause runs once this much is sent
	std::function<void()> on_pause;
};

// Sends data and reads the echo concurrently (one poll loop), checks every byte,
// and optionally shuts down and waits for EOF. Returns "" or what went wrong.
std::string StreamEcho(int fd, const std::string &data, const StreamOptions &opt);

enum class FillStatus { kStalled, kClosed, kCapReached, kTimeout };
const char *ToString(FillStatus s);
// Sends without ever reading until sending makes no progress for stall_ms,
// the peer closes, cap bytes were sent, or timeout_ms passes.
FillStatus FillUntilStalled(int fd, size_t cap, int stall_ms, int timeout_ms, size_t *sent);

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
uint64_t RaiseFdLimit();

} // namespace e2e

#endif
