#include "fixture.h"

#include <algorithm>

namespace e2e
{

std::vector<std::string> BackendArgs(const std::string &backend)
{
	if (backend == kOffload)
		return {"-b", "epoll", "--offload=sockmap"};
	return {"-b", backend};
}

namespace
{

OffloadProbe Probe()
{
	OffloadProbe p;
	RunResult v = RunEchod({"-V"});
	size_t at = v.out.find("\noffload:");
	if (v.status != 0) {
		p.why = "echod -V exited " + std::to_string(v.status) + ": " + v.out + v.err;
		return p;
	}
	p.skip = true;
	if (at == std::string::npos) {
		p.why = "echod built without offload support (no 'offload:' line in echod -V)";
		return p;
	}
	std::string line = v.out.substr(at + 1, v.out.find('\n', at + 1) - at - 1);
	if (line.find("sockmap") == std::string::npos) {
		p.why = "echod built without BPF (echod -V: '" + line + "')";
		return p;
	}
	Daemon probe;
	std::string error;
	if (probe.Start({"-b", "epoll", "-w", "1", "-l", "127.0.0.1:0", "--offload=sockmap"}, 1,
			&error)) {
		p.available = true;
		p.skip = false;
		return p;
	}
	std::optional<int> status = probe.WaitExit(kStartTimeoutMs);
	if (status && *status == 71) {
		p.why = "the kernel or the privileges refuse offload here: " + probe.Log();
		return p;
	}
	p.skip = false;
	p.why = "echod -b epoll --offload=sockmap did not start: " + error;
	return p;
}

} // namespace

const OffloadProbe &ProbeOffload()
{
	static const OffloadProbe probe = Probe();
	return probe;
}

void BackendTest::SetUp()
{
	if (backend() == kOffload) {
		const OffloadProbe &p = ProbeOffload();
		if (p.available)
			return;
		if (p.skip)
			GTEST_SKIP() << p.why;
		FAIL() << p.why;
	}
	if (backend() != "io_uring")
		return;
	std::string error;
	std::vector<std::string> built = BuiltBackends(&error);
	ASSERT_TRUE(error.empty()) << error;
	if (std::find(built.begin(), built.end(), "io_uring") == built.end())
		GTEST_SKIP() << "io_uring backend not built";
	Daemon probe;
	if (probe.Start({"-b", "io_uring", "-w", "1", "-l", "127.0.0.1:0"}, 1, &error))
		return;
	std::optional<int> status = probe.WaitExit(kStartTimeoutMs);
	if (status && *status == 71)
		GTEST_SKIP() << "io_uring cannot run here: " << probe.Log();
	FAIL() << "echod -b io_uring did not start: " << error;
}

void BackendTest::TearDown()
{
	// Each daemon must stop on TERM, exit 0, and none of its workers exit non-zero:
	// that is where a sanitizer's or valgrind's verdict shows.
	for (auto &d : daemons_) {
		d->Stop();
		EXPECT_EQ(d->StopProblem(), "") << d->Log();
	}
	daemons_.clear();
}

Daemon *BackendTest::StartDaemon(const std::vector<std::string> &extra, int workers,
				 const std::vector<std::string> &listen)
{
	std::vector<std::string> args = BackendArgs(backend());
	args.push_back("-w");
	args.push_back(std::to_string(workers));
	for (const std::string &spec : listen) {
		args.push_back("-l");
		args.push_back(spec);
	}
	args.insert(args.end(), extra.begin(), extra.end());
	auto d = std::make_unique<Daemon>();
	std::string error;
	if (!d->Start(args, int(listen.size()), &error)) {
		ADD_FAILURE() << "echod did not start: " << error;
		return nullptr;
	}
	daemons_.push_back(std::move(d));
	return daemons_.back().get();
}

Fd MustConnect(int port, int timeout_ms)
{
	std::string error;
	Fd fd = Connect(kLoopback, port, timeout_ms, &error);
	EXPECT_TRUE(fd.valid()) << error;
	return fd;
}

std::string BackendName(const ::testing::TestParamInfo<std::string> &info)
{
	return info.param;
}

} // namespace e2e
