#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace e2e
{
namespace
{

using Clock = std::chrono::steady_clock;

int CountLines(const std::string &text, const std::string &needle)
{
	int n = 0;
	size_t start = 0;
	while (start < text.size()) {
		size_t end = text.find('\n', start);
		if (end == std::string::npos)
			break; // only complete lines count
		if (text.substr(start, end - start).find(needle) != std::string::npos)
			n++;
		start = end + 1;
	}
	return n;
}

// In the child, after fork: only async-signal-safe calls.
[[noreturn]] void ExecChild(pid_t parent, int in_fd, int out_fd, int err_fd, char *const argv[])
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, nullptr);
	execv(argv[0], argv);
	_exit(127);
}

bool MakePipe(int fds[2], std::string *error)
{
	if (pipe2(fds, O_CLOEXEC) == 0)
		return true;
	*error = std::string("pipe2: ") + strerror(errno);
	return false;
}

void CloseAll(std::initializer_list<int> fds)
{
	for (int fd : fds)
		if (fd >= 0)
			close(fd);
}

} // namespace

Process::~Process()
{
	Stop(2000);
}

bool Process::Start(const std::string &path, const std::vector<std::string> &args,
		    const std::string &stdin_data, std::string *error)
{
	signal(SIGPIPE, SIG_IGN); // a child that exits early must not kill the test
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	if (stdin_data.empty()) {
		in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	} else if (!MakePipe(in, error)) {
		return false;
	}
	if (in[0] < 0 || !MakePipe(out, error) || !MakePipe(err, error)) {
		CloseAll({in[0], in[1], out[0], out[1], err[0], err[1]});
		if (error->empty())
			*error = "cannot open /dev/null";
		return false;
	}
	std::vector<std::string> argv_s{path};
	argv_s.insert(argv_s.end(), args.begin(), args.end());
	std::vector<char *> argv;
	for (auto &a : argv_s)
		argv.push_back(a.data());
	argv.push_back(nullptr);

	pid_t parent = getpid();
	pid_ = fork();
	if (pid_ == 0)
		ExecChild(parent, in[0], out[1], err[1], argv.data());
	CloseAll({in[0], out[1], err[1]});
	if (pid_ < 0) {
		*error = std::string("fork: ") + strerror(errno);
		CloseAll({in[1], out[0], err[0]});
		return false;
	}
	reader_ = std::thread(&Process::ReadLoop, this, in[1], out[0], err[0], stdin_data);
	return true;
}

void Process::ReadLoop(int in_fd, int out_fd, int err_fd, std::string stdin_data)
{
	size_t in_off = 0;
	struct pollfd p[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
	while ((p[0].fd >= 0 || p[1].fd >= 0) && !stop_reader_) {
		if (poll(p, 3, 100) < 0 && errno != EINTR)
			break;
		if (p[2].fd >= 0 && p[2].revents != 0) {
			ssize_t n =
			    write(in_fd, stdin_data.data() + in_off, stdin_data.size() - in_off);
			in_off += n > 0 ? size_t(n) : 0;
			if (n < 0 || in_off == stdin_data.size()) {
				close(in_fd);
				p[2].fd = -1;
			}
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			char buf[4096];
			ssize_t n = read(p[i].fd, buf, sizeof buf);
			if (n <= 0 && !(n < 0 && errno == EINTR)) {
				close(p[i].fd);
				p[i].fd = -1;
				continue;
			}
			std::lock_guard<std::mutex> lock(mu_);
			(i == 0 ? out_ : err_).append(buf, size_t(n > 0 ? n : 0));
			cv_.notify_all();
		}
	}
	CloseAll({p[0].fd, p[1].fd, p[2].fd});
	std::lock_guard<std::mutex> lock(mu_);
	streams_closed_ = true;
	cv_.notify_all();
}

std::string Process::Stdout() const
{
	std::lock_guard<std::mutex> lock(mu_);
	return out_;
}

std::string Process::Stderr() const
{
	std::lock_guard<std::mutex> lock(mu_);
	return err_;
}

bool Process::WaitForStderr(const std::string &needle, int timeout_ms) const
{
	std::unique_lock<std::mutex> lock(mu_);
	return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
			    [&] { return err_.find(needle) != std::string::npos; });
}

int Process::WaitForStderrLines(const std::string &needle, int count, int timeout_ms) const
{
	std::unique_lock<std::mutex> lock(mu_);
	cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
		     [&] { return streams_closed_ || CountLines(err_, needle) >= count; });
	return CountLines(err_, needle);
}

std::optional<int> Process::WaitExit(int timeout_ms)
{
	auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
	while (!status_ && pid_ > 0) {
		int st = 0;
		pid_t r = waitpid(pid_, &st, WNOHANG);
		if (r == pid_)
			status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		else if (r < 0 && errno != EINTR)
			status_ = -1;
		else if (Clock::now() >= deadline)
			break;
		else
			usleep(5000);
	}
	return status_;
}

bool Process::Running()
{
	return pid_ > 0 && !WaitExit(0);
}

bool Process::Signal(int sig)
{
	return Running() && kill(pid_, sig) == 0;
}

void Process::Stop(int grace_ms)
{
	if (Signal(SIGTERM) && !WaitExit(grace_ms)) {
		kill(pid_, SIGKILL);
		WaitExit(5000);
	}
	JoinReader();
}

void Process::JoinReader()
{
	if (!reader_.joinable())
		return;
	{
		// Descendants may hold the pipes open: give them a moment, then stop.
		std::unique_lock<std::mutex> lock(mu_);
		cv_.wait_for(lock, std::chrono::seconds(2), [&] { return streams_closed_; });
	}
	stop_reader_ = true;
	reader_.join();
	stop_reader_ = false;
}

bool WaitUntil(const std::function<bool()> &pred, int timeout_ms, int interval_ms)
{
	auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
	while (!pred()) {
		if (Clock::now() >= deadline)
			return false;
		usleep(useconds_t(interval_ms) * 1000);
	}
	return true;
}

std::string FindProgram(const std::string &name)
{
	const char *env = getenv("PATH");
	std::string dirs = std::string(env ? env : "") + ":/usr/sbin:/sbin:/usr/bin:/bin";
	size_t start = 0;
	while (start <= dirs.size()) {
		size_t end = std::min(dirs.find(':', start), dirs.size());
		std::string path = dirs.substr(start, end - start) + "/" + name;
		if (end > start && access(path.c_str(), X_OK) == 0)
			return path;
		start = end + 1;
	}
	return "";
}

RunResult RunProgram(const std::string &path, const std::vector<std::string> &args,
		     const std::string &stdin_data, int timeout_ms)
{
	RunResult r;
	Process p;
	if (!p.Start(path, args, stdin_data, &r.err))
		return r;
	std::optional<int> st = p.WaitExit(timeout_ms);
	p.Stop(0);
	r.status = st ? *st : -1;
	r.out = p.Stdout();
	r.err = p.Stderr();
	return r;
}

} // namespace e2e
