// UDP helpers for the end-to-end tests: datagram sockets on the loopback, a raw
// socket to forge a source address (the tests run as root), and the daemon's
// counters read through SIGUSR1.
#ifndef ECHOD_TESTS_UDP_H
#define ECHOD_TESTS_UDP_H

#include <cstdint>
#include <map>
#include <string>

#include "daemon.h"
#include "net.h"

namespace e2e
{

// A nonblocking IPv4 datagram socket bound to host:port (port 0: any).
Fd UdpSocket(const std::string &host, int port, std::string *error);
// One datagram to host:port (IPv4 literal); false when the kernel refused it.
bool UdpSendTo(int fd, const std::string &host, int port, const std::string &data);
// Waits (bounded) for one datagram; kOk with it in *out, or kTimeout.
RecvStatus UdpRecv(int fd, std::string *out, int timeout_ms);
// A datagram that does not wait: true when one was queued (into *out).
bool UdpPoll(int fd, std::string *out);
// Sends one UDP datagram with a forged IPv4 source through a raw socket.
bool SendForgedUdp(const std::string &src, int src_port, const std::string &dst, int dst_port,
		   const std::string &payload, std::string *error);

// The counters of a fresh "stats:" line (SIGUSR1), name -> value; empty on timeout.
std::map<std::string, uint64_t> Counters(Daemon *d, int timeout_ms);
// Polls the counters until name reaches at least value; returns the last value seen.
uint64_t WaitCounter(Daemon *d, const std::string &name, uint64_t value, int timeout_ms);

} // namespace e2e

#endif
