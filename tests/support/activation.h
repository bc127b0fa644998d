// Socket activation for the end-to-end tests: the test makes the sockets and runs
// echod under tests/tools/sd-launch, which passes them the way systemd does.
#ifndef ECHOD_TESTS_ACTIVATION_H
#define ECHOD_TESTS_ACTIVATION_H

#include <memory>
#include <string>
#include <vector>

#include "daemon.h"
#include "net.h"

namespace e2e
{

// The sockets of specs ("tcp" listening or "udp", on 127.0.0.1 and a port of the
// kernel's choosing, "=NAME" for its FileDescriptorName=), inheritable, and the
// sd-launch options that pass them in that order; false with *error on failure.
// ports, when given, receives each TCP socket's port (0 for UDP).
bool MakeSockets(const std::vector<std::string> &specs, std::vector<Fd> *fds,
		 std::vector<std::string> *launch, std::string *error,
		 std::vector<int> *ports = nullptr);

// echod BackendArgs(backend) -w 2 [extra...] under sd-launch with a socket per spec
// (see MakeSockets), waiting for `listeners` listening lines (default: one per
// spec). The test's copies of the sockets close on return: echod holds its own.
std::unique_ptr<Daemon> StartActivated(const std::string &backend,
				       const std::vector<std::string> &specs, std::string *error,
				       const std::vector<std::string> &extra = {},
				       int listeners = -1, std::vector<int> *ports = nullptr);

} // namespace e2e

#endif
