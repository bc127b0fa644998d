// metrics: request routing, the HTTP answers, the Prometheus text format (HELP and
// TYPE before every sample, _total on counters only, label escaping) and the /proc
// parsers, without a socket.
#include <stdlib.h>
#include <string.h>

#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "echod/metrics.h"

namespace
{

int Route(const std::string &in, int *head = nullptr)
{
	int h = -1;
	int status = metrics_route(in.c_str(), in.size(), &h);
	if (head != nullptr)
		*head = h;
	return status;
}

TEST(MetricsRoute, ScrapesAreAnsweredOnceTheHeadersEnd)
{
	int head = -1;
	EXPECT_EQ(Route("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", &head), 200);
	EXPECT_EQ(head, 0);
	EXPECT_EQ(Route("GET /metrics HTTP/1.0\r\n\r\n"), 200);
	EXPECT_EQ(Route("GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), 200);
	EXPECT_EQ(Route("GET /metrics HTTP/1.1\n\n"), 200); // bare line feeds
	EXPECT_EQ(Route("HEAD /metrics HTTP/1.1\r\n\r\n", &head), 200);
	EXPECT_EQ(head, 1);
}

TEST(MetricsRoute, IncompleteRequestsWait)
{
	EXPECT_EQ(Route(""), 0);
	EXPECT_EQ(Route("G"), 0);
	EXPECT_EQ(Route("GET"), 0);
	EXPECT_EQ(Route("GET /metr"), 0);
	EXPECT_EQ(Route("GET /metrics HTTP/1.1\r\n"), 0);
	EXPECT_EQ(Route("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0);
	EXPECT_EQ(Route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r"), 0);
}

TEST(MetricsRoute, OtherPathsAndMethods)
{
	EXPECT_EQ(Route("GET / HTTP/1.1\r\n\r\n"), 404);
	EXPECT_EQ(Route("GET /metricsx HTTP/1.1\r\n\r\n"), 404);
	EXPECT_EQ(Route("GET /favicon.ico HTTP/1.1\r\n\r\n"), 404);
	EXPECT_EQ(Route("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 405);
	EXPECT_EQ(Route("DELETE / HTTP/1.1\r\n\r\n"), 405);
}

TEST(MetricsRoute, GarbageIsRefusedAsSoonAsItIsSeen)
{
	EXPECT_EQ(Route("\x16\x03\x01\x02"), 400);  // a TLS ClientHello
	EXPECT_EQ(Route("get /metrics"), 400);      // methods are upper case
	EXPECT_EQ(Route(" GET /metrics"), 400);
	EXPECT_EQ(Route("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 400); // no method is that long
	EXPECT_EQ(Route("hello\n"), 400);
	EXPECT_EQ(Route("GET metrics HTTP/1.1\r\n"), 400);        // target without '/'
	EXPECT_EQ(Route("GET /metrics\r\n\r\n"), 400);            // HTTP/0.9
	EXPECT_EQ(Route("GET /metrics HTTP/2.0\r\n\r\n"), 400);
	EXPECT_EQ(Route("GET /metrics HTTP/1.1 x\r\n\r\n"), 400);
	EXPECT_EQ(Route("GET /met\x01rics HTTP/1.1\r\n"), 400);
	EXPECT_EQ(Route(std::string("GET /me\0trics HTTP/1.1\r\n", 24)), 400);
}

TEST(MetricsRoute, AFullBufferWithoutTheEndIsRefused)
{
	std::string req = "GET /metrics HTTP/1.1\r\n";
	while (req.size() < METRICS_REQUEST_MAX - 1)
		req += "X-Padding: yyyyyyyyyyyyyyyyyyyyyyyy\r\n";
	req.resize(METRICS_REQUEST_MAX - 1);
	EXPECT_EQ(Route(req), 400);
	EXPECT_EQ(Route(req.substr(0, METRICS_REQUEST_MAX - 2)), 0);
	std::string line = "GET /" + std::string(METRICS_REQUEST_MAX, 'a');
	line.resize(METRICS_REQUEST_MAX - 1);
	EXPECT_EQ(Route(line), 400);
}

std::string Answer(int status, const char *body, int head)
{
	size_t len = 0;
	char *out = metrics_http_answer(status, body, head, &len);
	EXPECT_NE(out, nullptr);
	std::string s(out, len);
	free(out);
	return s;
}

TEST(MetricsAnswer, HeadersBodyAndHead)
{
	std::string ok = Answer(200, "a 1\n", 0);
	EXPECT_EQ(ok, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		      "Content-Length: 4\r\nConnection: close\r\n\r\na 1\n");
	std::string head = Answer(200, "a 1\n", 1);
	EXPECT_EQ(head, ok.substr(0, ok.size() - 4)); // the same headers, no body

	std::string nf = Answer(404, nullptr, 0);
	EXPECT_EQ(nf.rfind("HTTP/1.0 404 Not Found\r\n", 0), 0u) << nf;
	std::string body = nf.substr(nf.find("\r\n\r\n") + 4);
	EXPECT_FALSE(body.empty());
	EXPECT_NE(nf.find("Content-Length: " + std::to_string(body.size()) + "\r\n"),
		  std::string::npos)
	    << nf;

	std::string na = Answer(405, nullptr, 0);
	EXPECT_EQ(na.rfind("HTTP/1.0 405 Method Not Allowed\r\n", 0), 0u) << na;
	EXPECT_NE(na.find("Allow: GET, HEAD\r\n"), std::string::npos) << na;
	EXPECT_EQ(Answer(400, nullptr, 0).rfind("HTTP/1.0 400 Bad Request\r\n", 0), 0u);
	EXPECT_EQ(Answer(500, nullptr, 0).rfind("HTTP/1.0 500 ", 0), 0u);
}

std::string Escape(const std::string &in, size_t outlen = 256)
{
	std::string out(outlen, '\xff');
	metrics_escape(in.c_str(), out.data(), outlen);
	EXPECT_LT(strlen(out.c_str()), outlen);
	return out.c_str();
}

TEST(MetricsEscape, BackslashQuoteAndNewline)
{
	EXPECT_EQ(Escape("plain 1.2-3"), "plain 1.2-3");
	EXPECT_EQ(Escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
	// Cut short, never in the middle of an escape, always terminated.
	EXPECT_EQ(Escape("ab\"", 4), "ab");
	EXPECT_EQ(Escape("\"\"\"", 6), "\\\"\\\"");
	EXPECT_EQ(Escape("x", 1), "");
}

struct Family {
	std::string type;
	bool help = false;
	std::vector<std::string> samples;
};

// Checks the text format line by line: every sample's family has HELP and TYPE
// before it, counters and only counters end in _total, label values are quoted
// with their escapes, and no family appears twice.
std::map<std::string, Family> Parse(const std::string &body, std::string *problems)
{
	std::map<std::string, Family> families;
	std::set<std::string> closed;
	std::string current;
	std::istringstream lines(body);
	std::string line;
	const std::regex help("# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+");
	const std::regex type("# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)");
	const std::regex sample("([a-zA-Z_:][a-zA-Z0-9_:]*)"
				"(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\"\\\\n])*\""
				"(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\"\\\\n])*\")*\\})?"
				" -?[0-9]+(\\.[0-9]+)?");
	std::smatch m;
	if (body.empty() || body.back() != '\n')
		*problems += "the body does not end with a line feed\n";
	while (std::getline(lines, line)) {
		if (std::regex_match(line, m, help)) {
			if (families.count(m[1]) != 0)
				*problems += "family twice: " + std::string(m[1]) + "\n";
			if (!current.empty())
				closed.insert(current);
			current = m[1];
			families[current].help = true;
		} else if (std::regex_match(line, m, type)) {
			if (m[1] != current)
				*problems += "TYPE without its HELP: " + line + "\n";
			families[current].type = m[2];
		} else if (std::regex_match(line, m, sample)) {
			if (m[1] != current || families[current].type.empty())
				*problems += "sample outside its family: " + line + "\n";
			families[current].samples.push_back(line);
		} else {
			*problems += "bad line: '" + line + "'\n";
		}
	}
	for (const auto &[name, f] : families) {
		bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
		if ((f.type == "counter") != total)
			*problems += name + " is a " + f.type + ": _total marks counters only\n";
		if (f.samples.empty())
			*problems += name + " has no sample\n";
	}
	return families;
}

struct Rendered {
	std::string body;
	std::map<std::string, Family> families;
	std::string problems;
};

Rendered Render(const metrics_snapshot &snap)
{
	Rendered r;
	char *text = metrics_render(&snap);
	EXPECT_NE(text, nullptr);
	if (text == nullptr)
		return r;
	r.body = text;
	free(text);
	r.families = Parse(r.body, &r.problems);
	return r;
}

metrics_snapshot Snapshot(const uint64_t (*per)[STAT_COUNT], unsigned nworkers)
{
	metrics_snapshot s = {};
	s.per_worker = per;
	s.nworkers = nworkers;
	s.live_workers = nworkers;
	s.build = {"0.1.0", "io_uring", "libsystemd", "on"};
	s.proc = {12.5, 7340032, 31, 1048576, 1764633600.25};
	return s;
}

TEST(MetricsRender, EveryFamilyValidWithItsSamples)
{
	uint64_t per[3][STAT_COUNT] = {};
	per[0][STAT_accepted] = 5;
	per[2][STAT_accepted] = 7;
	per[1][STAT_open] = 2;
	Rendered r = Render(Snapshot(per, 3));
	EXPECT_EQ(r.problems, "") << r.body;
	EXPECT_EQ(r.families["echod_accepted_total"].type, "counter");
	EXPECT_EQ(r.families["echod_accepted_total"].samples,
		  (std::vector<std::string>{"echod_accepted_total{worker=\"0\"} 5",
					    "echod_accepted_total{worker=\"1\"} 0",
					    "echod_accepted_total{worker=\"2\"} 7"}));
	EXPECT_EQ(r.families["echod_open"].type, "gauge");
	EXPECT_EQ(r.families["echod_open"].samples[1], "echod_open{worker=\"1\"} 2");
	EXPECT_EQ(r.families["echod_workers"].samples,
		  (std::vector<std::string>{"echod_workers 3"}));
	for (int c = 0; c < STAT_COUNT; c++) {
		std::string name = std::string("echod_") + stats_name(stats_counter(c));
		EXPECT_TRUE(r.families.count(name) + r.families.count(name + "_total") == 1) << name;
	}
}

TEST(MetricsRender, BuildInfoAndProcessSeries)
{
	uint64_t per[1][STAT_COUNT] = {};
	Rendered r = Render(Snapshot(per, 1));
	EXPECT_EQ(r.problems, "") << r.body;
	EXPECT_EQ(r.families["echod_build_info"].type, "gauge");
	EXPECT_EQ(r.families["echod_build_info"].samples,
		  (std::vector<std::string>{"echod_build_info{version=\"0.1.0\",backend=\"io_uring\","
					    "sd_daemon=\"libsystemd\",seccomp=\"on\"} 1"}));
	EXPECT_EQ(r.families["process_cpu_seconds_total"].samples,
		  (std::vector<std::string>{"process_cpu_seconds_total 12.50"}));
	EXPECT_EQ(r.families["process_resident_memory_bytes"].samples,
		  (std::vector<std::string>{"process_resident_memory_bytes 7340032"}));
	EXPECT_EQ(r.families["process_open_fds"].samples,
		  (std::vector<std::string>{"process_open_fds 31"}));
	EXPECT_EQ(r.families["process_max_fds"].samples,
		  (std::vector<std::string>{"process_max_fds 1048576"}));
	EXPECT_EQ(r.families["process_start_time_seconds"].samples,
		  (std::vector<std::string>{"process_start_time_seconds 1764633600.250"}));
}

TEST(MetricsRender, UnknownProcessFiguresAreLeftOut)
{
	uint64_t per[1][STAT_COUNT] = {};
	metrics_snapshot s = Snapshot(per, 1);
	s.proc.cpu_seconds = -1;
	s.proc.rss_bytes = 0;
	s.proc.open_fds = -1;
	s.proc.max_fds = -1;
	Rendered r = Render(s);
	EXPECT_EQ(r.problems, "") << r.body;
	EXPECT_EQ(r.families.count("process_cpu_seconds_total"), 0u);
	EXPECT_EQ(r.families.count("process_resident_memory_bytes"), 0u);
	EXPECT_EQ(r.families.count("process_open_fds"), 0u);
	EXPECT_EQ(r.families.count("process_max_fds"), 0u);
	EXPECT_EQ(r.families.count("process_start_time_seconds"), 1u);
}

TEST(MetricsRender, LabelValuesAreEscaped)
{
	uint64_t per[1][STAT_COUNT] = {};
	metrics_snapshot s = Snapshot(per, 1);
	s.build.version = "1.0 \"rc\\1\"\nx";
	Rendered r = Render(s);
	EXPECT_EQ(r.problems, "") << r.body;
	EXPECT_NE(r.body.find("version=\"1.0 \\\"rc\\\\1\\\"\\nx\""), std::string::npos) << r.body;
}

TEST(MetricsRender, ManyWorkers)
{
	const unsigned n = 512;
	std::vector<uint64_t> storage(size_t(n) * STAT_COUNT, UINT64_MAX);
	auto per = reinterpret_cast<const uint64_t(*)[STAT_COUNT]>(storage.data());
	Rendered r = Render(Snapshot(per, n));
	EXPECT_EQ(r.problems, "");
	EXPECT_EQ(r.families["echod_bytes_out_total"].samples.size(), n);
	EXPECT_EQ(r.families["echod_bytes_out_total"].samples[n - 1],
		  "echod_bytes_out_total{worker=\"511\"} 18446744073709551615");
}

TEST(MetricsProc, StatFieldsAfterTheName)
{
	uint64_t ticks = 0, child = 0;
	// The name may hold spaces and parentheses: the fields start after the last ')'.
	const char *stat = "4242 (echod: wo) (1)) S 1 4242 4242 0 -1 4194560 120 0 0 0 "
			   "150 37 9 4 20 0 1 0 12345 1000000 200 18446744073709551615";
	ASSERT_EQ(metrics_parse_stat(stat, &ticks, &child), 0);
	EXPECT_EQ(ticks, 187u);
	EXPECT_EQ(child, 13u);
	EXPECT_EQ(metrics_parse_stat("4242 (echod) S 1 2", &ticks, &child), -EINVAL);
	EXPECT_EQ(metrics_parse_stat("no parenthesis", &ticks, &child), -EINVAL);

	uint64_t pages = 0;
	ASSERT_EQ(metrics_parse_statm("2966 1792 1536 115 0 279 0\n", &pages), 0);
	EXPECT_EQ(pages, 1792u);
	EXPECT_EQ(metrics_parse_statm("", &pages), -EINVAL);
}

TEST(MetricsProc, ThisProcess)
{
	metrics_proc_sample s = {};
	ASSERT_EQ(metrics_proc_read(0, &s), 0);
	EXPECT_GT(s.pages, 0u);
	EXPECT_GE(s.fds, 3); // at least stdin, stdout and stderr
}

} // namespace

namespace
{

metrics_listener Listener(const char *name, const char *service, int udp,
			  std::vector<uint64_t> v)
{
	metrics_listener l = {};
	snprintf(l.name, sizeof(l.name), "%s", name);
	l.service = service;
	l.udp = udp;
	for (size_t i = 0; i < v.size() && i < LSTAT_COUNT; i++)
		l.v[i] = v[i];
	return l;
}

TEST(MetricsRender, PerListenerFamilies)
{
	uint64_t per[1][STAT_COUNT] = {};
	metrics_listener ls[] = {
	    Listener("tcp 127.0.0.1:7", "echo", 0, {3, 300, 300, 0, 0}),
	    Listener("udp [::1]:7", "echo", 1, {0, 20, 20, 2, 2}),
	    Listener("tcp \"odd\\name\"", "reverse", 0, {1, 4, 4, 0, 0}),
	};
	metrics_snapshot s = Snapshot(per, 1);
	s.listeners = ls;
	s.nlisteners = 3;
	Rendered r = Render(s);
	EXPECT_EQ(r.problems, "") << r.body;
	// accepted: TCP listeners only; datagrams: UDP only; bytes: every listener.
	EXPECT_EQ(r.families["echod_listener_accepted_total"].samples,
		  (std::vector<std::string>{
		      "echod_listener_accepted_total{listener=\"tcp 127.0.0.1:7\",service=\"echo\"} 3",
		      "echod_listener_accepted_total{listener=\"tcp \\\"odd\\\\name\\\"\","
		      "service=\"reverse\"} 1"}));
	EXPECT_EQ(r.families["echod_listener_udp_in_total"].samples,
		  (std::vector<std::string>{
		      "echod_listener_udp_in_total{listener=\"udp [::1]:7\",service=\"echo\"} 2"}));
	EXPECT_EQ(r.families["echod_listener_bytes_in_total"].samples.size(), 3u);
	EXPECT_EQ(r.families["echod_listener_bytes_out_total"].type, "counter");
}

TEST(MetricsRender, NoFamilyWithoutASample)
{
	uint64_t per[1][STAT_COUNT] = {};
	metrics_listener ls[] = {Listener("tcp 127.0.0.1:7", "echo", 0, {})};
	metrics_snapshot s = Snapshot(per, 1);
	s.listeners = ls;
	s.nlisteners = 1;
	Rendered r = Render(s);
	EXPECT_EQ(r.problems, "") << r.body;
	EXPECT_EQ(r.families.count("echod_listener_udp_in_total"), 0u);
	EXPECT_EQ(r.families.count("echod_listener_accepted_total"), 1u);
	// The shared last row ("other") may hold both kinds: every family shows it.
	ls[0] = Listener("other", "", 0, {});
	r = Render(s);
	EXPECT_EQ(r.problems, "") << r.body;
	EXPECT_EQ(r.families["echod_listener_udp_in_total"].samples,
		  (std::vector<std::string>{
		      "echod_listener_udp_in_total{listener=\"other\",service=\"\"} 0"}));
}

} // namespace
