// Logs: the -v connection log (one line per closed connection: peer, listener,
// service, bytes each way, duration, why it closed), -vv's accepted line, and
// nothing of it at the default level.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <string>

#include "checks.h"
#include "diag.h"
#include "fixture.h"

namespace e2e
{
namespace
{

using LogTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(LogTest);

constexpr int kTimeoutMs = 5000;

// "connection closed: peer=127.0.0.1:CLIENT listener=127.0.0.1:PORT service=SVC"
std::string Where(int client_port, int listen_port, const std::string &service)
{
	return "connection closed: peer=127.0.0.1:" + std::to_string(client_port) +
	       " listener=127.0.0.1:" + std::to_string(listen_port) + " service=" + service + " ";
}

TEST_P(LogTest, ClosedEchoConnectionIsOneLineWithPeerListenerBytesDurationReason)
{
	Daemon *d = StartDaemon({"-v"}, 1);
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd fd = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(fd.valid());
	int me = LocalPort(fd.get());
	ASSERT_TRUE(EchoOnce(fd.get(), "hello\n", kTimeoutMs, &error)) << error;
	ASSERT_TRUE(EchoOnce(fd.get(), "again\n", kTimeoutMs, &error)) << error;
	ASSERT_EQ(shutdown(fd.get(), SHUT_WR), 0);
	EXPECT_EQ(WaitClosed(fd.get(), kTimeoutMs), RecvStatus::kEof);
	std::string where = Where(me, d->port(), "echo");
	ASSERT_TRUE(d->WaitForLog(where, kTimeoutMs)) << d->Log();
	std::string line = LineWith(d->Log(), where);
	EXPECT_TRUE(std::regex_search(
	    line, std::regex(" in=12 out=12 duration=[0-9]+\\.[0-9]{3}s reason=eof$")))
	    << line;
	// At -v, not -vv: no accepted line.
	EXPECT_EQ(d->Log().find("connection accepted"), std::string::npos) << d->Log();
}

TEST_P(LogTest, ResetAndIdleSayWhy)
{
	Daemon *d = StartDaemon({"-v", "--idle-timeout=1"}, 1);
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd reset = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(reset.valid());
	int reset_port = LocalPort(reset.get());
	ASSERT_TRUE(EchoOnce(reset.get(), "abc", kTimeoutMs, &error)) << error;
	linger lg = {1, 0}; // close with a RST
	ASSERT_EQ(setsockopt(reset.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	reset.Reset();
	std::string where = Where(reset_port, d->port(), "echo");
	ASSERT_TRUE(d->WaitForLog(where, kTimeoutMs)) << d->Log();
	EXPECT_NE(LineWith(d->Log(), where).find(" in=3 out=3 "), std::string::npos) << d->Log();
	EXPECT_NE(LineWith(d->Log(), where).find(" reason=reset"), std::string::npos) << d->Log();

	Fd idle = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(idle.valid());
	where = Where(LocalPort(idle.get()), d->port(), "echo");
	EXPECT_EQ(WaitClosed(idle.get(), Scaled(kTimeoutMs)), RecvStatus::kEof);
	ASSERT_TRUE(d->WaitForLog(where, kTimeoutMs)) << d->Log();
	std::string line = LineWith(d->Log(), where);
	EXPECT_NE(line.find(" in=0 out=0 duration=1."), std::string::npos) << line;
	EXPECT_NE(line.find(" reason=idle"), std::string::npos) << line;
}

// The small services log their connections too; -vv adds the accepted line.
TEST_P(LogTest, ServicesAndAcceptedAtDebug)
{
	Daemon *d = StartDaemon({"-vv"}, 1, {"127.0.0.1:0/daytime", "127.0.0.1:0/discard"});
	ASSERT_NE(d, nullptr);
	Fd day = MustConnect(d->port(0), kTimeoutMs);
	ASSERT_TRUE(day.valid());
	int day_port = LocalPort(day.get());
	EXPECT_EQ(WaitClosed(day.get(), kTimeoutMs), RecvStatus::kOk); // the line, then EOF
	std::string where = Where(day_port, d->port(0), "daytime");
	ASSERT_TRUE(d->WaitForLog(where, kTimeoutMs)) << d->Log();
	EXPECT_TRUE(
	    std::regex_search(LineWith(d->Log(), where),
			      std::regex(" in=0 out=[1-9][0-9]* duration=[0-9.]+s reason=eof$")))
	    << d->Log();

	Fd sink = MustConnect(d->port(1), kTimeoutMs);
	ASSERT_TRUE(sink.valid());
	int sink_port = LocalPort(sink.get());
	ASSERT_TRUE(SendAll(sink.get(), std::string(1000, 'x'), kTimeoutMs));
	ASSERT_EQ(shutdown(sink.get(), SHUT_WR), 0);
	EXPECT_EQ(WaitClosed(sink.get(), kTimeoutMs), RecvStatus::kEof);
	where = Where(sink_port, d->port(1), "discard");
	ASSERT_TRUE(d->WaitForLog(where, kTimeoutMs)) << d->Log();
	EXPECT_NE(LineWith(d->Log(), where).find(" in=1000 out=0 "), std::string::npos) << d->Log();
	EXPECT_NE(d->Log().find("connection accepted: peer=127.0.0.1:" + std::to_string(sink_port) +
				" listener=127.0.0.1:" + std::to_string(d->port(1)) +
				" service=discard"),
		  std::string::npos)
	    << d->Log();
}

// Connections drained by TERM say so.
TEST_P(LogTest, DrainedConnectionSaysDrain)
{
	Daemon *d = StartDaemon({"-v", "--drain-timeout=0"}, 1);
	ASSERT_NE(d, nullptr);
	std::string error;
	Fd fd = MustConnect(d->port(), kTimeoutMs);
	ASSERT_TRUE(fd.valid());
	ASSERT_TRUE(EchoOnce(fd.get(), "x", kTimeoutMs, &error)) << error;
	std::string where = Where(LocalPort(fd.get()), d->port(), "echo");
	ASSERT_TRUE(d->Signal(SIGTERM));
	ASSERT_TRUE(d->WaitForLog(where, kTimeoutMs)) << d->Log();
	EXPECT_NE(LineWith(d->Log(), where).find(" reason=drain"), std::string::npos) << d->Log();
	EXPECT_EQ(d->WaitExit(kTimeoutMs), std::optional<int>(0)) << d->Log();
}

TEST_P(LogTest, NoConnectionLinesByDefault)
{
	Daemon *d = StartDaemon({}, 1);
	ASSERT_NE(d, nullptr);
	std::string error;
	EXPECT_TRUE(ConnectAndEcho(kLoopback, d->port(), "quiet\n", kTimeoutMs, &error)) << error;
	// A -v line would have come by the time a second connection is echoed.
	EXPECT_TRUE(ConnectAndEcho(kLoopback, d->port(), "quiet\n", kTimeoutMs, &error)) << error;
	usleep(100 * 1000);
	EXPECT_EQ(d->Log().find("connection "), std::string::npos) << d->Log();
}

} // namespace
} // namespace e2e
