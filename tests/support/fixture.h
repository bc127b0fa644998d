// The value-parametrised fixture every daemon-driving test uses: the parameter
// is the backend ("epoll" or "io_uring"), or "offload" (the epoll backend with
// --offload=sockmap: echo in the kernel). io_uring and offload are skipped, with
// the reason, when they are not built in or cannot run on this machine.
#ifndef ECHOD_TESTS_FIXTURE_H
#define ECHOD_TESTS_FIXTURE_H

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon.h"
#include "net.h"

namespace e2e
{

constexpr const char *kLoopback = "127.0.0.1";

// The pseudo-backend of the offload suites: -b epoll --offload=sockmap.
constexpr const char *kOffload = "offload";

// The options that select a backend: {"-b", NAME}, or for "offload"
// {"-b", "epoll", "--offload=sockmap"}.
std::vector<std::string> BackendArgs(const std::string &backend);

// Whether echod can echo in the kernel here, probed once: echod -V must say
// "offload: sockmap" and `echod -b epoll --offload=sockmap` must start (exit 71
// is the kernel or the privileges refusing). skip: a reason to skip, not a failure.
struct OffloadProbe {
	bool available = false;
	bool skip = false;
	std::string why;
};
const OffloadProbe &ProbeOffload();

class BackendTest : public ::testing::TestWithParam<std::string>
{
      protected:
	void SetUp() override;
	void TearDown() override;

	// Starts echod BackendArgs() -w workers -l SPEC... extra...; returns nullptr
	// (after recording a failure with the daemon's stderr) when it did not start.
	Daemon *StartDaemon(const std::vector<std::string> &extra = {}, int workers = 2,
			    const std::vector<std::string> &listen = {"127.0.0.1:0"});
	const std::string &backend() const
	{
		return GetParam();
	}

      private:
	std::vector<std::unique_ptr<Daemon>> daemons_;
};

std::string BackendName(const ::testing::TestParamInfo<std::string> &info);

// A connection to the loopback's port, or an invalid Fd after a non-fatal failure
// naming the error (the caller checks valid() before using it).
Fd MustConnect(int port, int timeout_ms);

} // namespace e2e

// Runs the suite (a `using Suite = e2e::BackendTest;` alias) once per backend.
#define ECHOD_INSTANTIATE_BACKENDS(Suite)                                                          \
	INSTANTIATE_TEST_SUITE_P(Backends, Suite, ::testing::Values("epoll", "io_uring"),          \
				 ::e2e::BackendName)
// Runs the suite in offload mode only (skipped where offload cannot run).
#define ECHOD_INSTANTIATE_OFFLOAD(Suite)                                                           \
	INSTANTIATE_TEST_SUITE_P(Offload, Suite, ::testing::Values(::e2e::kOffload),               \
				 ::e2e::BackendName)

#endif
