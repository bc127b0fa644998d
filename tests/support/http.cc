#include "http.h"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <regex>

#include "daemon.h"
#include "net.h"

namespace e2e
{

std::string HttpRaw(int port, const std::string &request, int timeout_ms, std::string *error)
{
	Fd fd = Connect("127.0.0.1", port, timeout_ms, error);
	if (!fd.valid())
		return "";
	if (!SendAll(fd.get(), request, timeout_ms)) {
		*error = "send failed";
		return "";
	}
	std::string out;
	auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
	while (std::chrono::steady_clock::now() < deadline) {
		pollfd p = {fd.get(), POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		char buf[8192];
		ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
		if (n <= 0)
			break;
		out.append(buf, size_t(n));
	}
	return out;
}

std::string HttpRequest(int port, const std::string &method, const std::string &path,
			int timeout_ms, std::string *error)
{
	return HttpRaw(port,
		       method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n",
		       timeout_ms, error);
}

std::string HttpGet(int port, const std::string &path, int timeout_ms, std::string *error)
{
	return HttpRequest(port, "GET", path, timeout_ms, error);
}

HttpAnswer HttpSplit(const std::string &raw)
{
	HttpAnswer a;
	size_t eol = raw.find("\r\n"), end = raw.find("\r\n\r\n");
	if (eol == std::string::npos || end == std::string::npos)
		return a;
	a.status = raw.substr(0, eol);
	a.headers = raw.substr(eol + 2, end + 2 - (eol + 2));
	a.body = raw.substr(end + 4);
	a.complete = true;
	return a;
}

int MetricsPort(const Daemon &d, int timeout_ms)
{
	if (!d.WaitForLog("metrics on http://127.0.0.1:", timeout_ms))
		return -1;
	std::smatch m;
	std::string log = d.Log();
	if (!std::regex_search(log, m, std::regex("metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics")))
		return -1;
	return std::stoi(m[1]);
}

} // namespace e2e
