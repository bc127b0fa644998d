#include "udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

namespace e2e
{
namespace
{

sockaddr_in Ipv4(const std::string &host, int port)
{
	sockaddr_in sin{};
	sin.sin_family = AF_INET;
	sin.sin_port = htons(uint16_t(port));
	inet_pton(AF_INET, host.c_str(), &sin.sin_addr);
	return sin;
}

size_t CountOf(const std::string &hay, const std::string &needle)
{
	size_t n = 0;
	for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1))
		n++;
	return n;
}

// The complete last "stats:" line's tokens.
std::map<std::string, uint64_t> LastStats(const std::string &log)
{
	std::map<std::string, uint64_t> tokens;
	size_t at = log.rfind("stats:");
	size_t end = log.find('\n', at);
	if (at == std::string::npos || end == std::string::npos)
		return tokens;
	std::istringstream words(log.substr(at, end - at));
	for (std::string w; words >> w;) {
		size_t eq = w.find('=');
		if (eq != std::string::npos)
			tokens[w.substr(0, eq)] = std::stoull(w.substr(eq + 1));
	}
	return tokens;
}

} // namespace

Fd UdpSocket(const std::string &host, int port, std::string *error)
{
	Fd fd(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
	sockaddr_in sin = Ipv4(host, port);
	int big = 4 << 20;
	if (!fd.valid() || setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)) < 0 ||
	    bind(fd.get(), reinterpret_cast<sockaddr *>(&sin), sizeof(sin)) < 0) {
		*error = std::string("udp socket on ") + host + ":" + std::to_string(port) + ": " +
			 strerror(errno);
		return Fd();
	}
	return fd;
}

bool UdpSendTo(int fd, const std::string &host, int port, const std::string &data)
{
	sockaddr_in sin = Ipv4(host, port);
	for (int tries = 0; tries < 1000; tries++) {
		ssize_t n = sendto(fd, data.data(), data.size(), 0,
				   reinterpret_cast<sockaddr *>(&sin), sizeof(sin));
		if (n == ssize_t(data.size()))
			return true;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		pollfd p = {fd, POLLOUT, 0};
		poll(&p, 1, 10);
	}
	return false;
}

bool UdpPoll(int fd, std::string *out)
{
	std::string buf(70000, '\0');
	ssize_t n = recv(fd, &buf[0], buf.size(), MSG_DONTWAIT);
	if (n < 0)
		return false;
	buf.resize(size_t(n));
	*out = std::move(buf);
	return true;
}

RecvStatus UdpRecv(int fd, std::string *out, int timeout_ms)
{
	auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
	for (;;) {
		if (UdpPoll(fd, out))
			return RecvStatus::kOk;
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
				end - std::chrono::steady_clock::now())
				.count();
		if (left <= 0)
			return RecvStatus::kTimeout;
		pollfd p = {fd, POLLIN, 0};
		poll(&p, 1, int(left));
	}
}

bool SendForgedUdp(const std::string &src, int src_port, const std::string &dst, int dst_port,
		   const std::string &payload, std::string *error)
{
	Fd raw(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
	if (!raw.valid()) {
		*error = std::string("raw socket: ") + strerror(errno);
		return false;
	}
	std::string pkt(sizeof(iphdr) + sizeof(udphdr) + payload.size(), '\0');
	auto *ip = reinterpret_cast<iphdr *>(&pkt[0]);
	auto *udp = reinterpret_cast<udphdr *>(&pkt[sizeof(iphdr)]);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(uint16_t(pkt.size()));
	inet_pton(AF_INET, src.c_str(), &ip->saddr);
	inet_pton(AF_INET, dst.c_str(), &ip->daddr);
	udp->source = htons(uint16_t(src_port));
	udp->dest = htons(uint16_t(dst_port));
	udp->len = htons(uint16_t(sizeof(udphdr) + payload.size()));
	udp->check = 0; // none: allowed over IPv4
	memcpy(&pkt[sizeof(iphdr) + sizeof(udphdr)], payload.data(), payload.size());
	sockaddr_in to = Ipv4(dst, 0);
	if (sendto(raw.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr *>(&to),
		   sizeof(to)) != ssize_t(pkt.size())) {
		*error = std::string("raw sendto: ") + strerror(errno);
		return false;
	}
	return true;
}

std::map<std::string, uint64_t> Counters(Daemon *d, int timeout_ms)
{
	size_t before = CountOf(d->Log(), "stats:");
	if (!d->Signal(SIGUSR1))
		return {};
	std::map<std::string, uint64_t> out;
	WaitUntil(
	    [&] {
		    std::string log = d->Log();
		    if (CountOf(log, "stats:") <= before)
			    return false;
		    out = LastStats(log);
		    return !out.empty();
	    },
	    timeout_ms);
	return out;
}

uint64_t WaitCounter(Daemon *d, const std::string &name, uint64_t value, int timeout_ms)
{
	uint64_t last = 0;
	WaitUntil(
	    [&] {
		    auto c = Counters(d, 2000);
		    last = c.count(name) ? c[name] : 0;
		    return last >= value;
	    },
	    timeout_ms, 50);
	return last;
}

} // namespace e2e
