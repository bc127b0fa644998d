#include "fixture.h"

#include <algorithm>

namespace e2e
{

void BackendTest::SetUp()
{
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
	std::vector<std::string> args = {"-b", backend(), "-w", std::to_string(workers)};
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
