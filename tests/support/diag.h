// The kernel's own view of a TCP socket on this machine (sock_diag, what `ss -tmi`
// shows), for tests that must see the server's side of a connection: what the
// kernel holds for it, and whether it still exists.
#ifndef ECHOD_TESTS_DIAG_H
#define ECHOD_TESTS_DIAG_H

#include <cstdint>
#include <string>

namespace e2e
{

struct TcpDiag {
	bool found = false;	// a socket with these ports exists (any state)
	int state = 0;		// TCP_ESTABLISHED...
	uint64_t bytes_received = 0, bytes_acked = 0; // tcp_info
	uint32_t rmem = 0, wmem_queued = 0, wmem_alloc = 0; // skmem r, w, t
};

// The IPv4 TCP socket whose local port is local_port and remote port remote_port
// (say echod's side of a loopback connection: local = the listener's port, remote
// = the client's). false with *error when sock_diag itself fails.
bool DiagTcp(int local_port, int remote_port, TcpDiag *out, std::string *error);

// The local port of a connected or bound socket, or -1.
int LocalPort(int fd);

} // namespace e2e

#endif
