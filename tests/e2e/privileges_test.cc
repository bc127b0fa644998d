// Defence in depth: --user drops every worker (and the supervisor) to an
// unprivileged uid and gid with no supplementary groups and no way back; the
// seccomp filter kills a worker that makes a call outside its allow-list, and
// the supervisor logs that and respawns it.
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "fixture.h"

namespace e2e
{
namespace
{

using PrivilegesTest = BackendTest;
ECHOD_INSTANTIATE_BACKENDS(PrivilegesTest);

// The value of a "Key:" line of /proc/PID/status, e.g. "65534\t65534\t65534\t65534".
std::string StatusField(pid_t pid, const std::string &key)
{
	std::ifstream in("/proc/" + std::to_string(pid) + "/status");
	std::string line;
	while (std::getline(in, line))
		if (line.rfind(key + ":", 0) == 0) {
			size_t at = line.find_first_not_of(" \t", key.size() + 1);
			return at == std::string::npos ? "" : line.substr(at);
		}
	return "";
}

// "N\tN\tN\tN": real, effective, saved and filesystem ids all equal to id.
std::string AllIds(unsigned id)
{
	std::ostringstream s;
	s << id << '\t' << id << '\t' << id << '\t' << id;
	return s.str();
}

TEST_P(PrivilegesTest, UserDropsWorkersAndSupervisor)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to change user";
	struct passwd *pw = getpwnam("nobody");
	if (pw == nullptr)
		GTEST_SKIP() << "no user 'nobody' here";
	Daemon *d = StartDaemon({"--user=nobody"}, 2);
	ASSERT_NE(d, nullptr);
	std::vector<pid_t> pids = d->Workers();
	ASSERT_EQ(pids.size(), 2u);
	pids.push_back(d->pid());
	for (pid_t pid : pids) {
		EXPECT_EQ(StatusField(pid, "Uid"), AllIds(pw->pw_uid)) << "pid " << pid;
		EXPECT_EQ(StatusField(pid, "Gid"), AllIds(pw->pw_gid)) << "pid " << pid;
		EXPECT_EQ(StatusField(pid, "Groups"), "") << "pid " << pid;
		EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1") << "pid " << pid;
	}
	std::string error;
	EXPECT_TRUE(ConnectAndEcho(kLoopback, d->port(), "as nobody\n", 5000, &error)) << error;
}

TEST_P(PrivilegesTest, UnknownUserIsAUsageError)
{
	RunResult r = RunEchod({"-b", backend(), "--user=no-such-user-here"});
	EXPECT_EQ(r.status, 64) << r.err;
	EXPECT_NE(r.err.find("--user"), std::string::npos) << r.err;
	EXPECT_NE(r.err.find("'no-such-user-here'"), std::string::npos) << r.err;
}

// "" when the filter is on by default in this build, else why not.
std::string SeccompMissing()
{
	if (!TestWrapper().empty())
		return "echod runs under ECHOD_TEST_WRAPPER, with --seccomp=false";
	RunResult r = RunEchod({"-V"});
	if (r.out.find("seccomp: yes") == std::string::npos)
		return "echod built without libseccomp";
	if (r.out.find("sanitizers:") != std::string::npos)
		return "sanitizer builds run without the filter (their runtimes make other calls)";
	return "";
}

TEST_P(PrivilegesTest, ForbiddenCallKillsTheWorkerWhichIsRespawned)
{
	std::string missing = SeccompMissing();
	if (!missing.empty())
		GTEST_SKIP() << missing;
	std::string gdb = FindProgram("gdb");
	if (gdb.empty())
		GTEST_SKIP() << "gdb is needed to make the worker call uname(2)";
	Daemon *d = StartDaemon({}, 1);
	ASSERT_NE(d, nullptr);
	std::vector<pid_t> before = d->Workers();
	ASSERT_EQ(before.size(), 1u);
	EXPECT_EQ(StatusField(before[0], "Seccomp"), "2") << "the worker runs unfiltered";
	// uname(2) is outside every backend's allow-list.
	RunResult r = RunProgram(gdb, {"-p", std::to_string(before[0]), "-batch", "-ex",
				       "call (long)syscall(63, 0)"},
				 "", 30000);
	if (r.err.find("ptrace") != std::string::npos &&
	    r.err.find("Operation not permitted") != std::string::npos)
		GTEST_SKIP() << "ptrace is not permitted here: " << r.err;
	EXPECT_TRUE(d->WaitForLog("killed by signal 31 (Bad system call)", 10000)) << d->Log();
	// The worker's SIGSYS handler says which call, and the supervisor names it.
	EXPECT_TRUE(d->WaitForLog("worker 0: seccomp: system call 63 not in the allow-list", 1000))
	    << d->Log();
	EXPECT_TRUE(d->WaitForLog(": system call 63 (uname) is not in the seccomp allow-list", 1000))
	    << d->Log();
	EXPECT_TRUE(WaitUntil(
	    [&] {
		    auto now = d->Workers();
		    return now.size() == 1 && now[0] != before[0];
	    },
	    10000, 20))
	    << "no new worker: " << d->Log();
	std::string error;
	EXPECT_TRUE(WaitUntil([&] { return ConnectAndEcho(kLoopback, d->port(), "x\n", 1000, &error); },
			      10000, 50))
	    << error;
}

TEST_P(PrivilegesTest, SeccompCanBeTurnedOff)
{
	Daemon *d = StartDaemon({"--seccomp=false"}, 1);
	ASSERT_NE(d, nullptr);
	std::vector<pid_t> workers = d->Workers();
	ASSERT_EQ(workers.size(), 1u);
	EXPECT_EQ(StatusField(workers[0], "Seccomp"), "0");
}

} // namespace
} // namespace e2e
