// A minimal HTTP client for the metrics endpoint: one request per connection,
// the answer read to the server's close. Every wait is bounded.
#ifndef ECHOD_TESTS_HTTP_H
#define ECHOD_TESTS_HTTP_H

#include <string>

namespace e2e
{

// Sends request as it is to 127.0.0.1:port and returns everything read until
// the server closes (or timeout_ms passes); "" with *error when it cannot connect
// or send.
std::string HttpRaw(int port, const std::string &request, int timeout_ms, std::string *error);
// "METHOD PATH HTTP/1.1" with a Host header.
std::string HttpRequest(int port, const std::string &method, const std::string &path,
			int timeout_ms, std::string *error);
std::string HttpGet(int port, const std::string &path, int timeout_ms, std::string *error);

// The parts of an answer: the status line, the headers and the body.
struct HttpAnswer {
	std::string status;  // "HTTP/1.0 200 OK"
	std::string headers; // the header lines, each ending in "\r\n"
	std::string body;
	bool complete = false; // the head ended ("\r\n\r\n")
};
HttpAnswer HttpSplit(const std::string &raw);

class Daemon;
// The port of d's own metrics endpoint, from its "metrics on
// http://127.0.0.1:PORT/metrics" line (waited for), or -1.
int MetricsPort(const Daemon &d, int timeout_ms);

} // namespace e2e

#endif
