// The small services' text: daytime lines, the chargen stream, line reversal.
#include <gtest/gtest.h>

#include <cstring>
#include <ctime>
#include <random>
#include <string>

#include <sys/socket.h>
#include <unistd.h>

#include "echod/service.h"
#include "echod/stats.h"
#include "echod/worker.h"

namespace
{

std::string Daytime(time_t t)
{
	char buf[SVC_DAYTIME_MAX];
	size_t n = svc_daytime(t, buf, sizeof(buf));
	return std::string(buf, n);
}

// The same line through the C library, as an independent reference.
std::string Reference(time_t t)
{
	struct tm tm;
	char buf[128];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%A, %B %-d, %Y %H:%M:%S-UTC\r\n", &tm);
	return buf;
}

TEST(Daytime, KnownInstants)
{
	EXPECT_EQ(Daytime(0), "Thursday, January 1, 1970 00:00:00-UTC\r\n");
	EXPECT_EQ(Daytime(951782400), "Tuesday, February 29, 2000 00:00:00-UTC\r\n");
	EXPECT_EQ(Daytime(-1), "Wednesday, December 31, 1969 23:59:59-UTC\r\n");
	EXPECT_EQ(Daytime(4102444799), "Thursday, December 31, 2099 23:59:59-UTC\r\n");
}

TEST(Daytime, AgreesWithTheCLibraryOverCenturies)
{
	std::mt19937_64 rng(3);
	for (int i = 0; i < 20000; i++) {
		time_t t = time_t(rng() % (uint64_t(1) << 36)) - (time_t(1) << 34);
		ASSERT_EQ(Daytime(t), Reference(t)) << t;
	}
}

TEST(Daytime, TooSmallABufferGivesNothing)
{
	char buf[10];
	EXPECT_EQ(svc_daytime(0, buf, sizeof(buf)), 0u);
}

// Line k of RFC 864's pattern: 72 characters from the k-th printable one, CRLF.
std::string ChargenLine(unsigned k)
{
	std::string line;
	for (unsigned j = 0; j < 72; j++)
		line += char(' ' + (k + j) % 95);
	return line + "\r\n";
}

TEST(Chargen, ManyLinesFollowThePattern)
{
	std::string stream(SVC_CHARGEN_LINE * 300, '\0');
	uint32_t pos = 0;
	svc_chargen(&pos, &stream[0], stream.size());
	for (unsigned k = 0; k < 300; k++)
		ASSERT_EQ(stream.substr(k * SVC_CHARGEN_LINE, SVC_CHARGEN_LINE), ChargenLine(k))
		    << "line " << k;
	EXPECT_EQ(pos, (300 * SVC_CHARGEN_LINE) % SVC_CHARGEN_PERIOD);
	EXPECT_EQ(ChargenLine(95), ChargenLine(0));
}

TEST(Chargen, AnyChunkingGivesTheSameStream)
{
	const size_t total = 3 * SVC_CHARGEN_PERIOD + 123;
	std::string whole(total, '\0'), pieces;
	uint32_t pos = 0;
	svc_chargen(&pos, &whole[0], total);
	std::mt19937 rng(5);
	pos = 0;
	while (pieces.size() < total) {
		std::string part(std::min<size_t>(total - pieces.size(), 1 + rng() % 200), '\0');
		svc_chargen(&pos, &part[0], part.size());
		pieces += part;
	}
	EXPECT_EQ(pieces, whole);
}

class Reverse : public ::testing::Test
{
      protected:
	// Feeds the chunks; returns the output, or "ERROR" when a line was too long.
	std::string Feed(const std::vector<std::string> &chunks)
	{
		std::string out;
		for (const std::string &c : chunks) {
			std::string o(c.size() + line.len, '\0');
			ssize_t n = svc_reverse_feed(&line, c.data(), c.size(), &o[0]);
			if (n < 0)
				return "ERROR";
			out += o.substr(0, size_t(n));
		}
		return out;
	}
	std::string Flush()
	{
		std::string o(SVC_LINE_MAX, '\0');
		o.resize(svc_reverse_flush(&line, &o[0]));
		return o;
	}
	char buf[SVC_LINE_MAX];
	svc_line line{buf, 0};
};

TEST_F(Reverse, LinesComeBackReversedKeepingTheirEnding)
{
	EXPECT_EQ(Feed({"hello\nworld\r\n"}), "olleh\ndlrow\r\n");
	EXPECT_EQ(line.len, 0u);
}

TEST_F(Reverse, EmptyLinesStayEmpty)
{
	EXPECT_EQ(Feed({"\n\r\n\n"}), "\n\r\n\n");
}

TEST_F(Reverse, LinesSplitAcrossReadsAnywhere)
{
	EXPECT_EQ(Feed({"ab", "c", "d\r", "\nxy", "z\n", "tail"}), "dcba\r\nzyx\n");
	EXPECT_EQ(Flush(), "liat");
	EXPECT_EQ(line.len, 0u);
}

TEST_F(Reverse, ACarriageReturnAloneInTheMiddleIsReversedLikeAnyByte)
{
	EXPECT_EQ(Feed({"a\rb\n"}), "b\ra\n");
}

TEST_F(Reverse, TheLongestLineFitsAndOneMoreByteDoesNot)
{
	std::string longest(SVC_LINE_MAX - 1, 'x');
	longest[0] = 'A';
	std::string want(longest.rbegin(), longest.rend());
	EXPECT_EQ(Feed({longest.substr(0, 1000), longest.substr(1000), "\n"}), want + "\n");
	EXPECT_EQ(Feed({std::string(SVC_LINE_MAX, 'y')}), "ERROR");
}

TEST_F(Reverse, TooLongAcrossReads)
{
	EXPECT_EQ(Feed({std::string(3000, 'a'), std::string(1095, 'b')}), "");
	EXPECT_EQ(Feed({"c"}), "ERROR");
}

// svc_reverse_text: by code points when the text is well-formed UTF-8, else by bytes.
std::string ReverseText(const std::string &in)
{
	std::string out(in.size(), '\0');
	svc_reverse_text(in.data(), in.size(), &out[0]);
	return out;
}

std::string Bytewise(const std::string &s)
{
	return std::string(s.rbegin(), s.rend());
}

TEST(ReverseText, AsciiAndEmpty)
{
	EXPECT_EQ(ReverseText(""), "");
	EXPECT_EQ(ReverseText("a"), "a");
	EXPECT_EQ(ReverseText("hello"), "olleh");
}

TEST(ReverseText, MultiByteCharactersKeepTheirBytesInOrder)
{
	// 2, 3 and 4 bytes: é U+00E9, € U+20AC, 😀 U+1F600; the edges of each length too.
	EXPECT_EQ(ReverseText("h\xc3\xa9llo"), "oll\xc3\xa9h");
	EXPECT_EQ(ReverseText("\xe2\x82\xac" "5"), "5\xe2\x82\xac");
	EXPECT_EQ(ReverseText("a\xf0\x9f\x98\x80" "b"), "b\xf0\x9f\x98\x80" "a");
	EXPECT_EQ(ReverseText("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
		  "\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9");
	EXPECT_EQ(ReverseText("\xc2\x80" "x\xdf\xbf"), "\xdf\xbf" "x\xc2\x80"); // U+0080, U+07FF
	EXPECT_EQ(ReverseText("\xe0\xa0\x80" "x\xef\xbf\xbf"), "\xef\xbf\xbf" "x\xe0\xa0\x80");
	EXPECT_EQ(ReverseText("\xed\x9f\xbf" "x\xee\x80\x80"), "\xee\x80\x80" "x\xed\x9f\xbf");
	EXPECT_EQ(ReverseText("\xf0\x90\x80\x80" "x\xf4\x8f\xbf\xbf"),
		  "\xf4\x8f\xbf\xbf" "x\xf0\x90\x80\x80"); // U+10000, U+10FFFF
	// Code points, not grapheme clusters: a combining accent moves before its letter.
	EXPECT_EQ(ReverseText("e\xcc\x81" "a"), "a\xcc\x81" "e");
}

TEST(ReverseText, AnyIllFormedSequenceMakesTheWholeLineBytewise)
{
	const std::vector<std::string> bad = {
	    "caf\xc3",			// truncated at the end
	    "\xc3" "a",			// lead byte, then no continuation
	    "\xe2\x82" "x",		// 3-byte sequence cut short
	    "a\x80" "b",		// stray continuation byte
	    "\xff\xfe",			// never in UTF-8
	    "\xc0\xaf",			// overlong '/'
	    "\xc1\xbf",			// overlong
	    "\xe0\x80\xaf",		// overlong, 3 bytes
	    "\xe0\x9f\xbf",		// overlong U+07FF
	    "\xf0\x80\x80\xaf",		// overlong, 4 bytes
	    "\xf0\x8f\xbf\xbf",		// overlong U+FFFF
	    "\xed\xa0\x80",		// surrogate U+D800
	    "\xed\xbf\xbf",		// surrogate U+DFFF
	    "\xed\xa0\xbd\xed\xb8\x80", // a surrogate pair (CESU-8)
	    "\xf4\x90\x80\x80",		// U+110000
	    "\xf5\x80\x80\x80",		// lead byte over F4
	    "\xf8\x88\x80\x80\x80",	// 5-byte form
	};
	for (const std::string &b : bad) {
		std::string line = "h\xc3\xa9" + b + "\xe2\x82\xac";
		EXPECT_EQ(ReverseText(line), Bytewise(line)) << ::testing::PrintToString(b);
	}
}

TEST_F(Reverse, Utf8LinesByCharactersOthersByBytes)
{
	EXPECT_EQ(Feed({"h\xc3\xa9llo w\xc3\xb6rld\r\n\xe2\x9c\x93\n"}),
		  "dlr\xc3\xb6w oll\xc3\xa9h\r\n\xe2\x9c\x93\n");
	EXPECT_EQ(Feed({"a\xff" "b\xc3\xa9\n"}), "\xa9\xc3" "b\xff" "a\n");
}

// The service holds a partial line between reads: a character split by the read
// boundary is still reversed as one, wherever the boundary falls.
TEST_F(Reverse, ACharacterSplitAcrossReads)
{
	const std::string line = "a\xf0\x9f\x98\x80" "b\xe2\x82\xac" "c\xc3\xa9";
	const std::string want = "\xc3\xa9" "c\xe2\x82\xac" "b\xf0\x9f\x98\x80" "a\r\n";
	for (size_t cut = 0; cut <= line.size(); cut++) {
		EXPECT_EQ(Feed({line.substr(0, cut), line.substr(cut) + "\r", "\n"}), want)
		    << "cut at " << cut;
		for (size_t cut2 = cut; cut2 <= line.size(); cut2++)
			EXPECT_EQ(Feed({line.substr(0, cut), line.substr(cut, cut2 - cut),
					line.substr(cut2) + "\r\n"}),
				  want)
			    << "cuts at " << cut << ", " << cut2;
	}
	EXPECT_EQ(Feed({"x\xc3"}), "");
	EXPECT_EQ(Feed({"\xa9"}), "");
	EXPECT_EQ(Flush(), "\xc3\xa9x") << "the last line, at the FIN, too";
	EXPECT_EQ(Feed({"x\xc3"}), "");
	EXPECT_EQ(Flush(), "\xc3x") << "cut short by the FIN: bytes";
}

TEST_F(Reverse, TheLongestUtf8Line)
{
	std::string line, want;
	for (size_t i = 0; i < (SVC_LINE_MAX - 1) / 3; i++)
		line += "\xe2\x82\xac";
	line += std::string(SVC_LINE_MAX - 1 - line.size(), 'x');
	want = std::string(SVC_LINE_MAX - 1 - (SVC_LINE_MAX - 1) / 3 * 3, 'x');
	for (size_t i = 0; i < (SVC_LINE_MAX - 1) / 3; i++)
		want += "\xe2\x82\xac";
	EXPECT_EQ(Feed({line.substr(0, 1001), line.substr(1001), "\n"}), want + "\n");
}

TEST(ServiceUdp, Answers)
{
	char buf[1024] = "ping";
	uint32_t pos = 0;
	EXPECT_EQ(svc_udp_answer(SERVICE_ECHO, &pos, buf, 4, sizeof(buf)), 4);
	EXPECT_EQ(svc_udp_answer(SERVICE_DISCARD, &pos, buf, 4, sizeof(buf)), -1);
	ssize_t n = svc_udp_answer(SERVICE_CHARGEN, &pos, buf, 4, sizeof(buf));
	ASSERT_EQ(n, ssize_t(SVC_CHARGEN_UDP));
	EXPECT_EQ(std::string(buf, SVC_CHARGEN_LINE), ChargenLine(0));
	n = svc_udp_answer(SERVICE_CHARGEN, &pos, buf, 4, sizeof(buf));
	EXPECT_EQ(std::string(buf, SVC_CHARGEN_LINE), ChargenLine(6)) << "the next answer goes on";
	n = svc_udp_answer(SERVICE_DAYTIME, &pos, buf, 4, sizeof(buf));
	ASSERT_GT(n, 0);
	EXPECT_NE(std::string(buf, size_t(n)).find("-UTC\r\n"), std::string::npos);
}

} // namespace

// The TCP state machine of the services, without a backend: the test plays the
// edge-triggered readiness over a socket pair.
namespace
{

class SvcConn : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		cfg.idle_timeout = 300;
		w.cfg = &cfg;
		w.stats = &slot;
		w.limits.total = &total;
		w.limits.open = &slot.c[STAT_open];
		ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
		ASSERT_EQ(svc_init(&set, &w, nullptr, nullptr), 0);
	}
	void TearDown() override
	{
		svc_fini(&set);
		close(sv[1]);
	}
	svc_conn *Accept(enum listen_service service)
	{
		svc_conn *c = svc_accept(&set, sv[0], 0, nullptr, service, 1000);
		EXPECT_NE(c, nullptr);
		return c;
	}
	std::string Drain()
	{
		std::string out;
		char buf[65536];
		ssize_t n;
		while ((n = read(sv[1], buf, sizeof(buf))) > 0)
			out.append(buf, size_t(n));
		return out;
	}
	config cfg{};
	stats_slot slot{};
	uint64_t total = 0;
	worker w{};
	svc_set set{};
	int sv[2] = {-1, -1};
};

TEST(SvcSet, NeverSetUpIsHarmless)
{
	svc_set s{};
	svc_tick(&s, 1000, 1);
	EXPECT_EQ(svc_next_ms(&s, 1000), -1);
	EXPECT_EQ(svc_busy(&s), 0u);
	svc_fini(&s);
}

TEST_F(SvcConn, ReverseAnswersLinesAndClosesAtFin)
{
	svc_conn *c = Accept(SERVICE_REVERSE);
	ASSERT_NE(c, nullptr);
	ASSERT_EQ(write(sv[1], "abc\nde", 6), 6);
	svc_event(&set, c, 1, 1, 0, 1001);
	EXPECT_EQ(Drain(), "cba\n");
	ASSERT_EQ(shutdown(sv[1], SHUT_WR), 0);
	svc_event(&set, c, 1, 0, 1, 1002);
	EXPECT_EQ(Drain(), "ed");
	EXPECT_TRUE(c->flags & SVC_CLOSED);
	EXPECT_EQ(slot.c[STAT_closed_eof], 1u);
	EXPECT_EQ(total, 0u) << "the limits got their ticket back";
	svc_tick(&set, 1003, 0);
	EXPECT_EQ(svc_busy(&set), 0u);
}

// The kernel's buffers fill, chargen stops (its writable edge used up) holding
// nothing, and goes on exactly where it was at the next edge.
TEST_F(SvcConn, ChargenStopsAtAFullSocketAndResumesWithoutAGap)
{
	svc_conn *c = Accept(SERVICE_CHARGEN);
	ASSERT_NE(c, nullptr);
	std::string got;
	for (int round = 0; round < 3; round++) {
		for (int turn = 0; turn < 100 && (c->flags & SVC_WRITABLE || turn == 0); turn++) {
			if (turn == 0)
				svc_event(&set, c, 0, 1, 0, 1001);
			else
				svc_tick(&set, 1001, 0);
		}
		EXPECT_FALSE(c->flags & SVC_WRITABLE) << "the socket never filled";
		EXPECT_EQ(slot.c[STAT_buffers_held], 0u);
		got += Drain();
	}
	std::string want(got.size(), '\0');
	uint32_t pos = 0;
	svc_chargen(&pos, &want[0], want.size());
	EXPECT_GT(got.size(), 3u * SVC_CHARGEN_LINE);
	EXPECT_TRUE(got == want);
	EXPECT_EQ(slot.c[STAT_bytes_out], got.size());
}

TEST_F(SvcConn, DaytimeSendsItsLineAndKeepsNothing)
{
	EXPECT_EQ(svc_accept(&set, sv[0], 0, nullptr, SERVICE_DAYTIME, 1000), nullptr);
	std::string line = Drain();
	EXPECT_NE(line.find("-UTC\r\n"), std::string::npos) << line;
	EXPECT_EQ(slot.c[STAT_closed_eof], 1u);
	EXPECT_EQ(svc_busy(&set), 0u);
	EXPECT_EQ(total, 0u);
}

} // namespace
