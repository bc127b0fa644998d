// Test support for echo-bench; see support.h.
#include "support.h"

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace ebtest
{

namespace
{

int listen_on_loopback(bool ipv6, int backlog, int *port)
{
	int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sockaddr_storage ss{};
	socklen_t len;
	if (ipv6) {
		auto *s6 = reinterpret_cast<sockaddr_in6 *>(&ss);
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		len = sizeof(*s6);
	} else {
		auto *s4 = reinterpret_cast<sockaddr_in *>(&ss);
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s4);
	}
	if (bind(fd, reinterpret_cast<sockaddr *>(&ss), len) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, reinterpret_cast<sockaddr *>(&ss), &len) < 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port
			   : reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
	return fd;
}

bool send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= static_cast<size_t>(r);
	}
	return true;
}

} // namespace

TestServer::TestServer(Behavior b, bool ipv6) : behavior_(b), ipv6_(ipv6)
{
	bool slow = b == Behavior::SlowAccept || b == Behavior::CloseAtOnce;
	lfd_ = listen_on_loopback(ipv6, slow ? 4 : 1024, &port_);
	if (lfd_ >= 0)
		thread_ = std::thread([this] { run(); });
}

TestServer::~TestServer()
{
	stop_ = true;
	if (thread_.joinable())
		thread_.join();
	if (lfd_ >= 0)
		close(lfd_);
}

std::string TestServer::target() const
{
	return (ipv6_ ? "[::1]:" : "127.0.0.1:") + std::to_string(port_);
}

void TestServer::accept_one(std::vector<Client> &clients)
{
	int fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (behavior_ == Behavior::CloseAtOnce) {
		close(fd);
		return;
	}
	// Blocking sends, but never forever: a test must not hang on a stuck client.
	timeval tv{2, 0};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	bool silent = behavior_ == Behavior::EchoHalf && accepted_++ % 2 == 1;
	clients.push_back(Client{fd, 0, false, silent});
}

// Chargen: the next stretch of the pattern, as much as the socket takes now.
static bool send_chargen(int fd, uint64_t *off)
{
	char buf[7400];
	for (size_t i = 0; i < sizeof(buf); i++) {
		uint64_t p = *off + i, line = p / 74, col = p % 74;
		buf[i] = col == 72 ? '\r' : col == 73 ? '\n' : char(' ' + (line + col) % 95);
	}
	ssize_t n = send(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0)
		*off += uint64_t(n);
	return n >= 0 || errno == EAGAIN || errno == EINTR;
}

bool TestServer::serve(Client &c)
{
	static thread_local char buf[65536];
	if (behavior_ == Behavior::Chargen && !send_chargen(c.fd, &c.seen))
		return false;
	ssize_t n = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	size_t len = static_cast<size_t>(n);
	if (c.silent)
		return true;
	switch (behavior_) {
	case Behavior::Echo:
	case Behavior::SlowAccept:
	case Behavior::EchoHalf:
		return send_all(c.fd, buf, len);
	case Behavior::Corrupt:
		if (c.seen <= 5 && 5 < c.seen + len)
			buf[5 - c.seen] ^= 0x20;
		c.seen += len;
		return send_all(c.fd, buf, len);
	case Behavior::DropClose:
		if (!c.shut) {
			send_all(c.fd, buf, len / 2);
			shutdown(c.fd, SHUT_WR);
			c.shut = true;
		}
		return true;
	case Behavior::Reset: {
		linger l{1, 0};
		setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		return false;
	}
	case Behavior::Silent:
	case Behavior::Chargen:
	case Behavior::CloseAtOnce:
		return true;
	}
	return false;
}

void TestServer::run()
{
	std::vector<Client> clients;

	while (!stop_) {
		std::vector<pollfd> pfds{{lfd_, POLLIN, 0}};
		short ev = behavior_ == Behavior::Chargen ? POLLIN | POLLOUT : POLLIN;
		for (const Client &c : clients)
			pfds.push_back({c.fd, ev, 0});
		if (poll(pfds.data(), pfds.size(), 20) <= 0)
			continue;
		if (pfds[0].revents & POLLIN)
			accept_one(clients);
		if (behavior_ == Behavior::SlowAccept || behavior_ == Behavior::CloseAtOnce) {
			timespec nap{0, 10 * 1000 * 1000};
			nanosleep(&nap, nullptr);
		}
		for (size_t i = 1; i < pfds.size(); i++) {
			Client &c = clients[i - 1];
			if (pfds[i].revents != 0 && !serve(c)) {
				close(c.fd);
				c.fd = -1;
			}
		}
		std::vector<Client> alive;
		for (const Client &c : clients)
			if (c.fd >= 0)
				alive.push_back(c);
		clients.swap(alive);
	}
	for (const Client &c : clients)
		close(c.fd);
}

namespace
{

std::string slurp_and_unlink(const char *path)
{
	std::string s;
	FILE *f = fopen(path, "r");
	if (f != nullptr) {
		char buf[4096];
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			s.append(buf, n);
		fclose(f);
	}
	unlink(path);
	return s;
}

int wait_bounded(pid_t pid, int timeout_s)
{
	timespec nap{0, 10 * 1000 * 1000};
	int status;

	for (int waited_ms = 0; waited_ms < timeout_s * 1000; waited_ms += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		nanosleep(&nap, nullptr);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

} // namespace

BenchRun run_bench(const std::vector<std::string> &args, int timeout_s, unsigned long fd_soft,
		   unsigned long fd_hard)
{
	char out_path[] = "/tmp/echo-bench-test-out.XXXXXX";
	char err_path[] = "/tmp/echo-bench-test-err.XXXXXX";
	int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
	std::vector<char *> argv;
	BenchRun r;

	argv.push_back(const_cast<char *>(ECHO_BENCH_BIN));
	for (const std::string &a : args)
		argv.push_back(const_cast<char *>(a.c_str()));
	argv.push_back(nullptr);
	pid_t pid = fork();
	if (pid == 0) {
		rlimit rl{fd_soft, fd_hard};
		if (fd_hard != 0 && setrlimit(RLIMIT_NOFILE, &rl) < 0)
			_exit(126);
		dup2(out_fd, STDOUT_FILENO);
		dup2(err_fd, STDERR_FILENO);
		execv(argv[0], argv.data());
		_exit(127);
	}
	close(out_fd);
	close(err_fd);
	r.status = pid > 0 ? wait_bounded(pid, timeout_s) : -1;
	r.out = slurp_and_unlink(out_path);
	r.err = slurp_and_unlink(err_path);
	return r;
}

namespace
{

class JsonReader
{
      public:
	JsonReader(const std::string &s, std::map<std::string, std::string> *out) : s_(s), out_(out)
	{
	}
	bool document()
	{
		if (!value(""))
			return false;
		ws();
		return i_ == s_.size();
	}

      private:
	void ws()
	{
		while (i_ < s_.size() && isspace(static_cast<unsigned char>(s_[i_])))
			i_++;
	}
	bool eat(char c)
	{
		ws();
		if (i_ < s_.size() && s_[i_] == c) {
			i_++;
			return true;
		}
		return false;
	}
	bool string(std::string *v)
	{
		if (!eat('"'))
			return false;
		v->clear();
		while (i_ < s_.size() && s_[i_] != '"') {
			if (s_[i_] == '\\' && ++i_ >= s_.size())
				return false;
			v->push_back(s_[i_++]);
		}
		return eat('"');
	}
	bool object(const std::string &path)
	{
		(*out_)[path] = "{}";
		if (eat('}'))
			return true;
		do {
			std::string key;
			if (!string(&key) || !eat(':'))
				return false;
			if (!value(path.empty() ? key : path + "." + key))
				return false;
		} while (eat(','));
		return eat('}');
	}
	bool array(const std::string &path)
	{
		(*out_)[path] = "[]";
		if (eat(']'))
			return true;
		int n = 0;
		do {
			if (!value(path + "." + std::to_string(n++)))
				return false;
		} while (eat(','));
		return eat(']');
	}
	bool scalar(const std::string &path)
	{
		size_t start = i_;
		while (i_ < s_.size() && (isalnum(static_cast<unsigned char>(s_[i_])) ||
					  s_[i_] == '.' || s_[i_] == '-' || s_[i_] == '+'))
			i_++;
		if (i_ == start)
			return false;
		std::string tok = s_.substr(start, i_ - start);
		char *end = nullptr;
		strtod(tok.c_str(), &end);
		if (*end != '\0' && tok != "null" && tok != "true" && tok != "false")
			return false;
		(*out_)[path] = tok;
		return true;
	}
	bool value(const std::string &path)
	{
		ws();
		if (eat('{'))
			return object(path);
		if (eat('['))
			return array(path);
		if (i_ < s_.size() && s_[i_] == '"') {
			std::string v;
			if (!string(&v))
				return false;
			(*out_)[path] = v;
			return true;
		}
		return scalar(path);
	}

	const std::string &s_;
	std::map<std::string, std::string> *out_;
	size_t i_ = 0;
};

} // namespace

bool parse_json(const std::string &text, std::map<std::string, std::string> *out)
{
	out->clear();
	return JsonReader(text, out).document();
}

double json_num(const std::map<std::string, std::string> &j, const std::string &key)
{
	auto it = j.find(key);
	if (it == j.end())
		return -1;
	char *end = nullptr;
	double v = strtod(it->second.c_str(), &end);
	return (end != it->second.c_str() && *end == '\0') ? v : -1;
}

} // namespace ebtest
