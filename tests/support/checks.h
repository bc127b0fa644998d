// Checks that several end-to-end suites make the same way (connection limits,
// the idle timeout), so that each mode (backend, offload) is held to one standard.
#ifndef ECHOD_TESTS_CHECKS_H
#define ECHOD_TESTS_CHECKS_H

#include <string>
#include <vector>

#include "net.h"

namespace e2e
{

// Opens n connections from src and checks that each one echoes (fatal failures).
void OpenEchoing(int port, size_t n, const std::string &src, std::vector<Fd> *fds);
// A connection over a limit reads EOF or a reset, never the echo.
void ExpectRejected(int port, const std::string &src);

// Sends a tick every 300 ms for 2.7 s on a new connection; each must echo.
// Returns "" or what went wrong. *starved tells that this process itself slept
// for most of an idle timeout of 1 s between two ticks (an overloaded machine):
// then a close proves nothing and the caller tries again.
std::string KeepTicking(int port, bool *starved);

// Streams data over one new connection; "" or what went wrong.
std::string StreamOverNewConnection(int port, const std::string &data, const StreamOptions &opt);

// conns connections at once, each streaming `bytes` random bytes (its own seed, chunks
// of up to 32 KiB) and reading them back. Returns each connection's "" or what went
// wrong.
std::vector<std::string> ConcurrentStreams(int port, int conns, size_t bytes);

// The line of log holding needle, "" when none does.
std::string LineWith(const std::string &log, const std::string &needle);

} // namespace e2e

#endif
