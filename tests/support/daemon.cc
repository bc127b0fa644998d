#include "daemon.h"

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace e2e
{
namespace
{

const char kListening[] = "listening on";

bool AllDigits(const std::string &s)
{
	return !s.empty() && std::all_of(s.begin(), s.end(),
					 [](unsigned char c) { return std::isdigit(c) != 0; });
}

// The port in "... listening on tcp 127.0.0.1:41234 workers=2 ...", or -1.
int PortOfLine(const std::string &line)
{
	std::istringstream words(line.substr(line.find(kListening) + sizeof kListening - 1));
	std::string w;
	while (words >> w) {
		size_t colon = w.rfind(':');
		if (colon != std::string::npos && AllDigits(w.substr(colon + 1)))
			return std::stoi(w.substr(colon + 1));
	}
	return -1;
}

std::string ReadFile(const std::string &path)
{
	std::ifstream f(path);
	std::stringstream ss;
	ss << f.rdbuf();
	return ss.str();
}

// ppid from /proc/PID/stat (the comm field may hold spaces and parentheses).
pid_t ParentOf(pid_t pid)
{
	std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
	size_t close = stat.rfind(')');
	if (close == std::string::npos)
		return -1;
	std::istringstream rest(stat.substr(close + 1));
	std::string state;
	pid_t ppid = -1;
	rest >> state >> ppid;
	return ppid;
}

void KillAll(const std::vector<pid_t> &pids)
{
	for (pid_t p : pids)
		if (Comm(p).rfind("echod", 0) == 0)
			kill(p, SIGKILL);
}

// The program to exec and its arguments: echod's, under the wrapper if there is one.
std::vector<std::string> EchodCommand(const std::vector<std::string> &args)
{
	std::vector<std::string> cmd = TestWrapper();
	if (!cmd.empty() && cmd[0].find('/') == std::string::npos)
		cmd[0] = FindProgram(cmd[0]);
	cmd.push_back(ECHOD_BIN);
	if (!TestWrapper().empty())
		cmd.push_back("--seccomp=false");
	cmd.insert(cmd.end(), args.begin(), args.end());
	return cmd;
}

} // namespace

const std::vector<std::string> &TestWrapper()
{
	static const std::vector<std::string> words = [] {
		std::vector<std::string> w;
		const char *env = getenv("ECHOD_TEST_WRAPPER");
		std::istringstream in(env ? env : "");
		for (std::string word; in >> word;)
			w.push_back(word);
		return w;
	}();
	return words;
}

int Scaled(int ms)
{
	static const double scale = [] {
		const char *env = getenv("ECHOD_TEST_TIMEOUT_SCALE");
		double v = env ? atof(env) : 1.0;
		return v >= 1.0 ? v : 1.0;
	}();
	return int(ms * scale);
}

bool Daemon::Start(const std::vector<std::string> &args, int listeners, std::string *error)
{
	return StartWrapped({}, args, listeners, error);
}

// wrapper (sd-launch and its options, say) runs first; ECHOD_TEST_WRAPPER's
// command, if any, comes between it and echod.
bool Daemon::StartWrapped(const std::vector<std::string> &wrapper,
			  const std::vector<std::string> &args, int listeners, std::string *error)
{
	std::vector<std::string> cmd = wrapper;
	std::vector<std::string> echod = EchodCommand(args);
	cmd.insert(cmd.end(), echod.begin(), echod.end());
	if (!proc_.Start(cmd[0], std::vector<std::string>(cmd.begin() + 1, cmd.end()), "", error))
		return false;
	int seen = proc_.WaitForStderrLines(kListening, listeners, Scaled(kStartTimeoutMs));
	if (seen != listeners) {
		*error = "expected " + std::to_string(listeners) + " '" + kListening +
			 "' lines, saw " + std::to_string(seen);
	} else if (!proc_.WaitForStderr("echod: ready", Scaled(kStartTimeoutMs))) {
		*error = "no 'echod: ready' line";
	} else if (ParsePorts(error)) {
		return true;
	}
	*error += "; echod stderr:\n" + proc_.Stderr();
	return false;
}

bool Daemon::ParsePorts(std::string *error)
{
	std::istringstream lines(proc_.Stderr());
	std::string line;
	ports_.clear();
	while (std::getline(lines, line)) {
		if (line.find(kListening) == std::string::npos)
			continue;
		ports_.push_back(PortOfLine(line));
		if (ports_.back() <= 0) {
			*error = "no port in line: " + line;
			return false;
		}
	}
	return true;
}

std::vector<pid_t> Daemon::Workers() const
{
	return Children(pid(), "echod: worker");
}

long Daemon::WorkersRssKb() const
{
	long sum = 0;
	for (pid_t w : Workers())
		sum += RssKb(w);
	return sum;
}

void Daemon::Stop(int grace_ms)
{
	if (!proc_.Running()) {
		proc_.Stop(0);
		return;
	}
	std::vector<pid_t> workers = Workers();
	proc_.Signal(SIGTERM);
	if (!proc_.WaitExit(Scaled(grace_ms))) {
		killed_ = true;
		kill(pid(), SIGSTOP); // no respawn between the snapshot and the kill
		std::vector<pid_t> now = Workers();
		workers.insert(workers.end(), now.begin(), now.end());
		kill(pid(), SIGKILL);
	}
	KillAll(workers); // workers a dead supervisor may have left behind
	proc_.Stop(0);
}

std::string Daemon::StopProblem()
{
	if (proc_.pid() <= 0)
		return "";
	if (killed_)
		return "echod did not stop on SIGTERM; it was killed";
	std::optional<int> status = proc_.WaitExit(0);
	if (!status)
		return "echod is still running";
	if (*status != 0)
		return "echod exited with status " + std::to_string(*status);
	std::istringstream lines(proc_.Stderr());
	for (std::string line; std::getline(lines, line);)
		if (line.find(") exited with status ") != std::string::npos)
			return line;
	return "";
}

RunResult RunEchod(const std::vector<std::string> &args, int timeout_ms)
{
	std::vector<std::string> cmd = EchodCommand(args);
	return RunProgram(cmd[0], std::vector<std::string>(cmd.begin() + 1, cmd.end()), "",
			  Scaled(timeout_ms));
}

std::vector<std::string> BuiltBackends(std::string *error)
{
	RunResult r = RunEchod({"-V"});
	std::istringstream lines(r.out);
	std::string line;
	while (std::getline(lines, line)) {
		if (line.rfind("backends:", 0) != 0)
			continue;
		std::istringstream words(line.substr(sizeof "backends:" - 1));
		std::vector<std::string> names;
		for (std::string w; words >> w;)
			names.push_back(w);
		return names;
	}
	*error = "no 'backends:' line in echod -V (exit " + std::to_string(r.status) +
		 "): " + r.out + r.err;
	return {};
}

std::string Comm(pid_t pid)
{
	std::string comm = ReadFile("/proc/" + std::to_string(pid) + "/comm");
	if (!comm.empty() && comm.back() == '\n')
		comm.pop_back();
	return comm;
}

std::vector<pid_t> Children(pid_t parent, const std::string &comm_prefix)
{
	std::vector<pid_t> pids;
	DIR *dir = opendir("/proc");
	if (dir == nullptr)
		return pids;
	while (struct dirent *e = readdir(dir)) {
		if (!AllDigits(e->d_name))
			continue;
		pid_t pid = std::stoi(e->d_name);
		if (ParentOf(pid) == parent && Comm(pid).rfind(comm_prefix, 0) == 0)
			pids.push_back(pid);
	}
	closedir(dir);
	std::sort(pids.begin(), pids.end());
	return pids;
}

long RssKb(pid_t pid)
{
	std::istringstream status(ReadFile("/proc/" + std::to_string(pid) + "/status"));
	std::string line;
	while (std::getline(status, line))
		if (line.rfind("VmRSS:", 0) == 0)
			return std::stol(line.substr(6));
	return 0;
}

} // namespace e2e
