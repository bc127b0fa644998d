// sandbox: a call outside the seccomp allow-list names itself and kills by SIGSYS;
// abort() still works under the filter. diag: the supervisor's lines for a dead or
// stuck worker.
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "echod/diag.h"
#include "echod/sandbox.h"
#include "echod/stats.h"

namespace
{

struct StatsDeleter {
	void operator()(struct stats_shared *sh) const
	{
		stats_destroy(sh);
	}
};

// What a forked child that entered the sandbox and then ran `body` left behind.
struct ChildResult {
	int status = 0;
	std::string err; // its stderr
};

// Forks a child whose stderr is a pipe; it enters the epoll allow-list (recording
// into slot, shared with us) and runs body, which must not return.
template <typename Body> ChildResult RunSandboxed(struct stats_slot *slot, Body body)
{
	ChildResult r;
	int fds[2];

	if (pipe(fds) != 0) {
		ADD_FAILURE() << "pipe: " << strerror(errno);
		return r;
	}
	pid_t pid = fork();
	if (pid == 0) {
		char why[256];

		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		if (sandbox_enter(BACKEND_EPOLL, slot, why, sizeof(why)) < 0) {
			(void)!write(STDERR_FILENO, why, strlen(why));
			_exit(90);
		}
		body();
		_exit(91); // survived the forbidden call
	}
	close(fds[1]);
	char buf[512];
	ssize_t n;
	while ((n = read(fds[0], buf, sizeof(buf))) > 0)
		r.err.append(buf, size_t(n));
	close(fds[0]);
	EXPECT_EQ(waitpid(pid, &r.status, 0), pid);
	return r;
}

std::string Describe(int status)
{
	if (WIFSIGNALED(status))
		return "killed by signal " + std::to_string(WTERMSIG(status));
	return "exited with status " + std::to_string(WEXITSTATUS(status));
}

class Sandbox : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		if (!sandbox_available())
			GTEST_SKIP() << "built without libseccomp: no system call filter";
		sh_.reset(stats_create(1, 0));
		ASSERT_NE(sh_, nullptr);
	}
	struct stats_slot *slot()
	{
		return &sh_->slots[0];
	}

      private:
	std::unique_ptr<struct stats_shared, StatsDeleter> sh_;
};

TEST_F(Sandbox, ForbiddenCallIsNamedAndKillsBySigsys)
{
	ChildResult r = RunSandboxed(slot(), [] {
		char cwd[256];
		syscall(SYS_getcwd, cwd, sizeof(cwd)); // no worker needs its directory
	});
	ASSERT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSYS)
	    << Describe(r.status) << "; stderr: " << r.err;
	EXPECT_NE(r.err.find("seccomp: system call " + std::to_string(SYS_getcwd) +
			     " not in the allow-list\n"),
		  std::string::npos)
	    << r.err;
	EXPECT_EQ(slot()->seccomp_syscall, SYS_getcwd);
	EXPECT_NE(slot()->seccomp_arch, 0u);
	char name[64];
	ASSERT_NE(
	    sandbox_syscall_name(slot()->seccomp_arch, slot()->seccomp_syscall, name, sizeof(name)),
	    nullptr);
	EXPECT_STREQ(name, "getcwd");
}

TEST_F(Sandbox, TgkillOnlyAtItself)
{
	pid_t parent = getpid();
	ChildResult r = RunSandboxed(slot(), [parent] {
		syscall(SYS_tgkill, long(parent), long(parent), 0L); // signal 0: harmless
	});
	ASSERT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSYS)
	    << Describe(r.status) << "; stderr: " << r.err;
	EXPECT_EQ(slot()->seccomp_syscall, SYS_tgkill) << r.err;
}

TEST_F(Sandbox, AbortDiesOfSigabrt)
{
	if (ECHOD_SANITIZED[0] != '\0')
		GTEST_SKIP() << "sanitizer build: its runtime makes calls of its own on the way to "
				"SIGABRT (sigaltstack), which no worker's allow-list has";
	ChildResult r = RunSandboxed(slot(), [] { abort(); });
	EXPECT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT)
	    << Describe(r.status) << "; stderr: " << r.err;
	EXPECT_EQ(slot()->seccomp_arch, 0u) << "nothing was refused: " << r.err;
}

TEST_F(Sandbox, DoubleFreeShowsGlibcsMessage)
{
	if (ECHOD_SANITIZED[0] != '\0')
		GTEST_SKIP()
		    << "sanitizer build: ASan reports a double free itself, and its report "
		       "needs calls (open, readlink) no worker makes";
	ChildResult r = RunSandboxed(slot(), [] {
		void *volatile p = malloc(64);
		free(p);
		free(p);
	});
	EXPECT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT)
	    << Describe(r.status) << "; stderr: " << r.err;
	EXPECT_NE(r.err.find("double free"), std::string::npos) << r.err;
}

// --- diag ---

std::string ExitLine(const struct diag_exit &e, enum log_level *level = nullptr)
{
	char out[256];
	enum log_level l = diag_exit_line(&e, out, sizeof(out));

	if (level != nullptr)
		*level = l;
	return out;
}

int Signaled(int sig)
{
	return sig; // a wait status for "killed by sig", without a core
}

TEST(DiagExit, SeccompDeathNamesTheCall)
{
	struct diag_exit e = {};
	e.lslot = 2;
	e.pid = 4242;
	e.status = Signaled(SIGSYS);
	e.seccomp_syscall = 62;
	e.seccomp_arch = 0xc000003e; // AUDIT_ARCH_X86_64
	std::string line = ExitLine(e);
	std::string head =
	    "worker 2 (pid 4242) killed by signal 31 (Bad system call): system call 62";
	EXPECT_EQ(line.rfind(head, 0), 0u) << line;
	EXPECT_NE(line.find("is not in the seccomp allow-list"), std::string::npos) << line;
#if defined(__x86_64__)
	if (sandbox_available()) {
		EXPECT_EQ(line, head + " (kill) is not in the seccomp allow-list");
	} else {
		EXPECT_EQ(line, head + " is not in the seccomp allow-list");
	}
#endif
	e.seccomp_arch = 0; // nothing recorded: the plain line
	EXPECT_EQ(ExitLine(e), "worker 2 (pid 4242) killed by signal 31 (Bad system call)");
}

TEST(DiagExit, StuckStoppedAndOthers)
{
	struct diag_exit e = {};
	enum log_level level;
	e.lslot = 0;
	e.pid = 7;
	e.status = Signaled(SIGKILL);
	e.stuck = 1;
	EXPECT_EQ(ExitLine(e, &level),
		  "worker 0 (pid 7) killed as stuck (its loop had stopped turning)");
	EXPECT_EQ(level, LOG_LVL_WARN);
	e.stuck = 0;
	EXPECT_EQ(ExitLine(e), "worker 0 (pid 7) killed by signal 9 (Killed)");
	e.status = 0;
	e.retiring = 1;
	EXPECT_EQ(ExitLine(e, &level), "worker 0 (pid 7) stopped");
	EXPECT_EQ(level, LOG_LVL_INFO);
	e.status = 71 << 8;
	EXPECT_EQ(ExitLine(e, &level), "worker 0 (pid 7) exited with status 71");
	EXPECT_EQ(level, LOG_LVL_WARN);
	e.stuck = 1; // found stuck, but exited by itself before the SIGKILL landed
	EXPECT_EQ(ExitLine(e), "worker 0 (pid 7) exited with status 71");
}

std::string Proc(const char *stat, const char *sc, const char *wchan, size_t outlen = 256)
{
	std::string out(outlen, '\xff');

	diag_proc_describe(stat, sc, wchan, out.data(), outlen);
	EXPECT_LT(strlen(out.c_str()), outlen);
	return out.c_str();
}

TEST(DiagProc, DescribesWhatTheWorkerDoes)
{
	std::string blocked =
	    Proc("123 (echod: worker 0) S 1 1 1 0 -1 4194560 ...\n",
		 "232 0x5 0x7ffd 0x40 0x3e8 0x0 0x0 0x7ffd 0x7f00\n", "ep_poll\n");
	EXPECT_EQ(blocked.rfind("state S (sleeping: blocked), in system call 232", 0), 0u)
	    << blocked;
	EXPECT_EQ(blocked.substr(blocked.size() - 15), ", wchan ep_poll") << blocked;
	if (sandbox_available()) {
		EXPECT_NE(blocked.find("232 (epoll_wait)"), std::string::npos) << blocked;
	}
	// A name with ") " in it: the state follows the last ')'.
	EXPECT_EQ(Proc("9 (a) R (b)) R 1 ...", "running\n", "0"),
		  "state R (running: spinning), on a CPU, not in a system call");
	EXPECT_EQ(Proc("9 (x) D 1", "-1 0x7ffd 0x7f00\n", nullptr),
		  "state D (uninterruptible sleep: blocked in the kernel), not in a system call");
	EXPECT_EQ(Proc(nullptr, nullptr, "do_signal_stop"), "wchan do_signal_stop");
	EXPECT_EQ(Proc(nullptr, nullptr, nullptr), "nothing known from /proc");
	EXPECT_EQ(Proc("garbage", "", ""), "nothing known from /proc");
	EXPECT_EQ(Proc("9 (x) T 1", nullptr, nullptr, 12), "state T (st");
}

} // namespace
