#include "net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

namespace e2e
{
namespace
{

using Clock = std::chrono::steady_clock;

class Deadline
{
      public:
	explicit Deadline(int timeout_ms)
	    : end_(Clock::now() + std::chrono::milliseconds(timeout_ms))
	{
	}
	int Left() const
	{
		auto left =
		    std::chrono::duration_cast<std::chrono::milliseconds>(end_ - Clock::now());
		return int(std::max<long long>(0, left.count()));
	}
	bool Passed() const
	{
		return Clock::now() >= end_;
	}

      private:
	Clock::time_point end_;
};

// Polls one fd; returns revents, 0 on timeout, -1 on error.
int PollOne(int fd, short events, int timeout_ms)
{
	struct pollfd p = {fd, events, 0};
	int r;
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	return r > 0 ? p.revents : r;
}

bool ParseAddr(const std::string &host, int port, sockaddr_storage *ss, socklen_t *len)
{
	std::string h = host;
	if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
		h = h.substr(1, h.size() - 2);
	memset(ss, 0, sizeof *ss);
	auto *v4 = reinterpret_cast<sockaddr_in *>(ss);
	auto *v6 = reinterpret_cast<sockaddr_in6 *>(ss);
	if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(uint16_t(port));
		*len = sizeof *v4;
		return true;
	}
	if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(uint16_t(port));
		*len = sizeof *v6;
		return true;
	}
	return false;
}

Fd NewSocket(const std::string &host, int port, sockaddr_storage *ss, socklen_t *len)
{
	if (!ParseAddr(host, port, ss, len)) {
		errno = EINVAL;
		return Fd();
	}
	return Fd(socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

bool BindTo(int fd, const std::string &host, int port)
{
	sockaddr_storage ss;
	socklen_t len;
	if (!ParseAddr(host, port, &ss, &len)) {
		errno = EINVAL;
		return false;
	}
	return bind(fd, reinterpret_cast<sockaddr *>(&ss), len) == 0;
}

bool IsReset(int err)
{
	return err == ECONNRESET || err == EPIPE || err == ECONNABORTED;
}

} // namespace

Fd &Fd::operator=(Fd &&o) noexcept
{
	if (this != &o) {
		Reset();
		fd_ = o.Release();
	}
	return *this;
}

Fd::~Fd()
{
	Reset();
}

int Fd::Release()
{
	int fd = fd_;
	fd_ = -1;
	return fd;
}

void Fd::Reset()
{
	if (fd_ >= 0)
		close(fd_);
	fd_ = -1;
}

Fd Connect(const std::string &host, int port, int timeout_ms, std::string *error,
	   const std::string &src)
{
	sockaddr_storage ss;
	socklen_t len;
	Fd fd = NewSocket(host, port, &ss, &len);
	int err = fd.valid() ? 0 : errno;
	if (err == 0 && !src.empty() && !BindTo(fd.get(), src, 0))
		err = errno;
	if (err == 0 && connect(fd.get(), reinterpret_cast<sockaddr *>(&ss), len) < 0)
		err = errno;
	if (err == EINPROGRESS) {
		socklen_t elen = sizeof err;
		if (PollOne(fd.get(), POLLOUT, timeout_ms) <= 0)
			err = ETIMEDOUT;
		else if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
	}
	if (err == 0)
		return fd;
	*error = "connect " + host + ":" + std::to_string(port) + ": " + strerror(err);
	return Fd();
}

Fd ListenTcp(const std::string &host, int *port)
{
	sockaddr_storage ss;
	socklen_t len;
	Fd fd = NewSocket(host, 0, &ss, &len);
	if (!fd.valid() || bind(fd.get(), reinterpret_cast<sockaddr *>(&ss), len) < 0 ||
	    listen(fd.get(), 16) < 0 ||
	    getsockname(fd.get(), reinterpret_cast<sockaddr *>(&ss), &len) < 0)
		return Fd();
	*port = ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in *>(&ss)->sin_port
					      : reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
	return fd;
}

bool CanBind(const std::string &host)
{
	int port = 0;
	return ListenTcp(host, &port).valid();
}

bool SendAll(int fd, const void *data, size_t len, int timeout_ms)
{
	Deadline deadline(timeout_ms);
	const char *p = static_cast<const char *>(data);
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= size_t(n);
		} else if (errno == EAGAIN) {
			if (PollOne(fd, POLLOUT, deadline.Left()) <= 0)
				return false;
		} else if (errno != EINTR) {
			return false;
		}
	}
	return true;
}

bool SendAll(int fd, const std::string &data, int timeout_ms)
{
	return SendAll(fd, data.data(), data.size(), timeout_ms);
}

const char *ToString(RecvStatus s)
{
	switch (s) {
	case RecvStatus::kOk:
		return "data";
	case RecvStatus::kEof:
		return "EOF";
	case RecvStatus::kReset:
		return "reset";
	case RecvStatus::kTimeout:
		return "timeout";
	case RecvStatus::kError:
		break;
	}
	return "error";
}

RecvStatus RecvExact(int fd, void *buf, size_t len, int timeout_ms, size_t *got)
{
	Deadline deadline(timeout_ms);
	char *p = static_cast<char *>(buf);
	size_t done = 0;
	RecvStatus st = RecvStatus::kOk;
	while (done < len && st == RecvStatus::kOk) {
		ssize_t n = recv(fd, p + done, len - done, 0);
		if (n > 0)
			done += size_t(n);
		else if (n == 0)
			st = RecvStatus::kEof;
		else if (errno == EAGAIN && PollOne(fd, POLLIN, deadline.Left()) <= 0)
			st = RecvStatus::kTimeout;
		else if (errno != EAGAIN && errno != EINTR)
			st = IsReset(errno) ? RecvStatus::kReset : RecvStatus::kError;
	}
	if (got)
		*got = done;
	return st;
}

RecvStatus RecvExact(int fd, std::string *out, size_t len, int timeout_ms)
{
	out->assign(len, '\0');
	size_t got = 0;
	RecvStatus st = RecvExact(fd, out->data(), len, timeout_ms, &got);
	out->resize(got);
	return st;
}

RecvStatus WaitClosed(int fd, int timeout_ms)
{
	char c;
	return RecvExact(fd, &c, 1, timeout_ms);
}

bool WaitPeerGone(int fd, int timeout_ms)
{
	int ev = PollOne(fd, POLLRDHUP, timeout_ms);
	return ev > 0 && (ev & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool EchoOnce(int fd, const std::string &msg, int timeout_ms, std::string *error)
{
	Deadline deadline(timeout_ms);
	std::string back;
	if (!SendAll(fd, msg, deadline.Left())) {
		*error = std::string("send: ") + strerror(errno);
		return false;
	}
	RecvStatus st = RecvExact(fd, &back, msg.size(), deadline.Left());
	if (st == RecvStatus::kOk && back == msg)
		return true;
	*error = std::string("echo: ") + ToString(st) + " after " + std::to_string(back.size()) +
		 " of " + std::to_string(msg.size()) + " bytes" +
		 (st == RecvStatus::kOk ? " (bytes differ)" : "");
	return false;
}

bool ConnectAndEcho(const std::string &host, int port, const std::string &msg, int timeout_ms,
		    std::string *error)
{
	Deadline deadline(timeout_ms);
	Fd fd = Connect(host, port, deadline.Left(), error);
	return fd.valid() && EchoOnce(fd.get(), msg, deadline.Left(), error);
}

std::string RandomBytes(size_t len, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::string s(len, '\0');
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng();
		memcpy(&s[i], &v, std::min<size_t>(8, len - i));
	}
	return s;
}

namespace
{

// The state of one StreamEcho call.
class Streamer
{
      public:
	Streamer(int fd, const std::string &data, const StreamOptions &opt)
	    : fd_(fd), data_(data), opt_(opt), rng_(opt.seed), buf_(opt.max_chunk, '\0')
	{
	}

	std::string Run()
	{
		Deadline deadline(int(opt_.timeout_ms));
		while (error_.empty() && !done_) {
			short events = POLLIN | (sent_ < data_.size() ? POLLOUT : 0);
			int ev = PollOne(fd_, events, deadline.Left());
			if (ev <= 0)
				return Where(ev == 0 ? "timed out" : "poll failed");
			if (ev & POLLOUT)
				Send();
			if (error_.empty())
				Receive();
		}
		return error_;
	}

      private:
	size_t Chunk()
	{
		return std::uniform_int_distribution<size_t>(1, opt_.max_chunk)(rng_);
	}

	std::string Where(const std::string &what) const
	{
		return what + " (sent " + std::to_string(sent_) + ", received " +
		       std::to_string(received_) + " of " + std::to_string(data_.size()) + ")";
	}

	void Send()
	{
		size_t len = std::min(Chunk(), data_.size() - sent_);
		ssize_t n = send(fd_, data_.data() + sent_, len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			error_ = Where(std::string("send: ") + strerror(errno));
		sent_ += n > 0 ? size_t(n) : 0;
		if (opt_.pause_at != 0 && !paused_ && sent_ >= opt_.pause_at) {
			paused_ = true;
			opt_.on_pause();
		}
		if (sent_ == data_.size() && opt_.shutdown_and_eof && shutdown(fd_, SHUT_WR) < 0)
			error_ = Where(std::string("shutdown: ") + strerror(errno));
	}

	void Receive()
	{
		ssize_t n = recv(fd_, buf_.data(), Chunk(), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n < 0)
			error_ = Where(std::string("recv: ") + strerror(errno));
		else if (n == 0)
			Eof();
		else
			Check(size_t(n));
	}

	void Eof()
	{
		if (received_ == data_.size() && opt_.shutdown_and_eof)
			done_ = true;
		else
			error_ = Where("early EOF");
	}

	void Check(size_t n)
	{
		if (received_ + n > data_.size())
			error_ = Where("more bytes than sent");
		else if (memcmp(buf_.data(), data_.data() + received_, n) != 0)
			error_ = Where("echoed bytes differ");
		received_ += n;
		if (received_ == data_.size() && !opt_.shutdown_and_eof)
			done_ = true;
	}

	int fd_;
	const std::string &data_;
	const StreamOptions &opt_;
	std::mt19937_64 rng_;
	std::string buf_;
	size_t sent_ = 0, received_ = 0;
	bool paused_ = false, done_ = false;
	std::string error_;
};

} // namespace

std::string StreamEcho(int fd, const std::string &data, const StreamOptions &opt)
{
	return Streamer(fd, data, opt).Run();
}

const char *ToString(FillStatus s)
{
	switch (s) {
	case FillStatus::kStalled:
		return "stalled";
	case FillStatus::kClosed:
		return "closed by peer";
	case FillStatus::kCapReached:
		return "cap reached without stalling";
	case FillStatus::kTimeout:
		break;
	}
	return "timed out";
}

FillStatus FillUntilStalled(int fd, size_t cap, int stall_ms, int timeout_ms, size_t *sent)
{
	static const std::string chunk = RandomBytes(65536, 7);
	Deadline deadline(timeout_ms);
	*sent = 0;
	while (*sent < cap && !deadline.Passed()) {
		ssize_t n =
		    send(fd, chunk.data(), std::min(chunk.size(), cap - *sent), MSG_NOSIGNAL);
		if (n > 0) {
			*sent += size_t(n);
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return FillStatus::kClosed;
		int ev = PollOne(fd, POLLOUT, std::min(stall_ms, deadline.Left()));
		if (ev == 0 && !deadline.Passed())
			return FillStatus::kStalled;
		if (ev & (POLLERR | POLLHUP))
			return FillStatus::kClosed;
	}
	return *sent >= cap ? FillStatus::kCapReached : FillStatus::kTimeout;
}

uint64_t RaiseFdLimit()
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur;
}

} // namespace e2e
