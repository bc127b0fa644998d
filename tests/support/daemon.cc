#include "daemon.h"

#include <dirent.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
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

} // namespace

bool Daemon::Start(const std::vector<std::string> &args, int listeners, std::string *error)
{
	return StartWrapped({}, args, listeners, error);
}

bool Daemon::StartWrapped(const std::vector<std::string> &wrapper,
			  const std::vector<std::string> &args, int listeners, std::string *error)
{
	std::vector<std::string> full(wrapper.begin() + (wrapper.empty() ? 0 : 1), wrapper.end());
	if (!wrapper.empty())
		full.push_back(ECHOD_BIN);
	full.insert(full.end(), args.begin(), args.end());
	if (!proc_.Start(wrapper.empty() ? ECHOD_BIN : wrapper[0], full, "", error))
		return false;
	int seen = proc_.WaitForStderrLines(kListening, listeners, kStartTimeoutMs);
	if (seen != listeners) {
		*error = "expected " + std::to_string(listeners) + " '" + kListening +
			 "' lines, saw " + std::to_string(seen);
	} else if (!proc_.WaitForStderr("echod: ready", kStartTimeoutMs)) {
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
	if (!proc_.WaitExit(grace_ms)) {
		kill(pid(), SIGSTOP); // no respawn between the snapshot and the kill
		std::vector<pid_t> now = Workers();
		workers.insert(workers.end(), now.begin(), now.end());
		kill(pid(), SIGKILL);
	}
	KillAll(workers); // workers a dead supervisor may have left behind
	proc_.Stop(0);
}

RunResult RunEchod(const std::vector<std::string> &args, int timeout_ms)
{
	return RunProgram(ECHOD_BIN, args, "", timeout_ms);
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
