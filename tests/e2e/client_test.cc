// The tutorials' client, tools/echo-client, against the real daemon.
#include "fixture.h"

namespace e2e
{
namespace
{

using ClientTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(ClientTest);

RunResult RunClient(const std::vector<std::string> &args, const std::string &stdin_data = "")
{
	return RunProgram(ECHO_CLIENT_BIN, args, stdin_data, 10000);
}

TEST_P(ClientTest, EchoesStandardInput)
{
	Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	RunResult r = RunClient({"127.0.0.1", std::to_string(d->port())}, "hello\n");
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "hello\n");
}

TEST_P(ClientTest, EchoesWordsJoinedBySpaces)
{
	Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	RunResult r = RunClient({"127.0.0.1", std::to_string(d->port()), "a", "b"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "a b\n");
}

TEST_P(ClientTest, ResolvesLocalhost)
{
	Daemon *d = StartDaemon();
	ASSERT_NE(d, nullptr);
	RunResult r = RunClient({"localhost", std::to_string(d->port()), "by", "name"});
	EXPECT_EQ(r.status, 0) << r.err;
	EXPECT_EQ(r.out, "by name\n");
}

} // namespace
} // namespace e2e
