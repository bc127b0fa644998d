// offload: the tcp_info arithmetic of --offload=sockmap (offload_policy.c) and its
// two options (config.c).
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "echod/config.h"
#include "echod/offload.h"

namespace
{

struct offload_sample Sample(uint64_t rx, uint64_t acked, uint64_t outq, int fin)
{
	struct offload_sample s;

	s.rx = rx;
	s.acked = acked;
	s.outq = outq;
	s.fin = fin;
	return s;
}

TEST(OffloadPolicy, TheFinCountsOneInButIsNoData)
{
	struct offload_sample s = Sample(101, 0, 0, 1);
	EXPECT_EQ(offload_bytes_in(&s), 100u);
	s.fin = 0;
	EXPECT_EQ(offload_bytes_in(&s), 101u);
	s = Sample(0, 0, 0, 1); // never underflows
	EXPECT_EQ(offload_bytes_in(&s), 0u);
}

TEST(OffloadPolicy, TheBannerIsNotAnEchoedByte)
{
	struct offload_sample s = Sample(10, 14, 0, 0);
	EXPECT_EQ(offload_bytes_out(&s, 4), 10u);
	s.acked = 3; // only part of the banner acknowledged yet
	EXPECT_EQ(offload_bytes_out(&s, 4), 0u);
	EXPECT_EQ(offload_owed(&s, 4), 10u);
}

TEST(OffloadPolicy, DrainedOnlyOnceEveryByteIsInTheSendQueue)
{
	// 1000 bytes and the FIN in; 600 acknowledged, 300 in the send queue: 100 still
	// wait in the redirect queue, where SIOCOUTQ does not see them.
	struct offload_sample s = Sample(1001, 600, 300, 1);
	EXPECT_FALSE(offload_drained(&s, 0));
	s.outq = 400;
	EXPECT_TRUE(offload_drained(&s, 0));
	// SIOCOUTQ == 0 is not enough on its own.
	s = Sample(1001, 600, 0, 1);
	EXPECT_FALSE(offload_drained(&s, 0));
	// With a 4-byte banner, it must be covered too.
	s = Sample(1001, 1000, 0, 1);
	EXPECT_FALSE(offload_drained(&s, 4));
	s.acked = 1004;
	EXPECT_TRUE(offload_drained(&s, 4));
}

TEST(OffloadPolicy, NeverDrainedBeforeTheFin)
{
	struct offload_sample s = Sample(1000, 1000, 0, 0);
	EXPECT_FALSE(offload_drained(&s, 0));
	s = Sample(0, 0, 0, 0);
	EXPECT_FALSE(offload_drained(&s, 0));
	s.fin = 1; // a FIN and nothing else: nothing owed
	EXPECT_TRUE(offload_drained(&s, 0));
}

TEST(OffloadPolicy, OverBudgetIsStrictlyMoreThanTheBudgetOwed)
{
	const uint64_t budget = 65536;
	struct offload_sample s = Sample(budget + 100, 100, 0, 0);
	EXPECT_EQ(offload_owed(&s, 0), budget);
	EXPECT_FALSE(offload_over_budget(&s, 0, 0, budget));
	s.rx++;
	EXPECT_TRUE(offload_over_budget(&s, 0, 0, budget));
	// Acknowledged bytes (in the peer's own buffer) are not owed.
	s.acked = s.rx;
	EXPECT_FALSE(offload_over_budget(&s, 0, 0, budget));
	// More acknowledged than received (the banner, counted by the caller): never owed.
	s = Sample(10, 50, 0, 0);
	EXPECT_EQ(offload_owed(&s, 0), 0u);
}

TEST(OffloadPolicy, EachOwedSegmentIsChargedTheKernelsOverhead)
{
	const uint64_t budget = 65536;
	// 1000 bytes owed in 1000 one-byte segments cost about a megabyte, not a kilobyte.
	struct offload_sample s = Sample(1000, 0, 0, 0);
	EXPECT_TRUE(offload_over_budget(&s, 0, 1000, budget));
	EXPECT_FALSE(offload_over_budget(&s, 0, 1, budget));
	// The charge is exact at the edge: owed + segments x OFFLOAD_SEG_CHARGE.
	const uint64_t segs = (budget - 1000) / OFFLOAD_SEG_CHARGE;
	EXPECT_FALSE(offload_over_budget(&s, 0, segs, 1000 + segs * OFFLOAD_SEG_CHARGE));
	EXPECT_TRUE(offload_over_budget(&s, 0, segs + 1, 1000 + segs * OFFLOAD_SEG_CHARGE));
	// No overflow with absurd counts.
	EXPECT_TRUE(offload_over_budget(&s, 0, UINT64_MAX, budget));
}

TEST(OffloadPolicy, OwedSegmentsComeFromTheWindowsTheOwedBytesSpan)
{
	struct offload_window none = {0, 0};
	// Owed bytes within the current window: all of its segments, never more than bytes.
	EXPECT_EQ(offload_owed_segs(100, {1000, 10}, none), 10u);
	EXPECT_EQ(offload_owed_segs(5, {1000, 10}, none), 5u);
	EXPECT_EQ(offload_owed_segs(0, {1000, 10}, none), 0u);
	// Older owed bytes at the previous window's density (rounded up).
	EXPECT_EQ(offload_owed_segs(3000, {1000, 10}, {4000, 4}), 12u);
	EXPECT_EQ(offload_owed_segs(1001, {1000, 10}, {4000, 4}), 11u);
	// A bulk stream long echoed: one window of 64 KiB segments, little owed.
	EXPECT_EQ(offload_owed_segs(131072, {1048576, 16}, {1048576, 16}), 16u);
	// A peer of one-byte segments: every owed byte is a segment.
	EXPECT_EQ(offload_owed_segs(5000, {1000, 1000}, {1000, 1000}), 5000u);
	// No window before: the current one's density.
	EXPECT_EQ(offload_owed_segs(3000, {1000, 1000}, none), 3000u);
	// Nothing counted yet (bytes not yet through the program): none.
	EXPECT_EQ(offload_owed_segs(3000, none, none), 0u);
	// Huge windows do not overflow.
	EXPECT_EQ(offload_owed_segs(UINT64_MAX / 2, {1, 1}, {UINT64_MAX / 4, UINT64_MAX / 4}),
		  UINT64_MAX / 2);
}

TEST(OffloadPolicy, TheNextMarkIsAQuarterBudgetOn)
{
	EXPECT_EQ(offload_next_mark(1000, 4096), 2024u);
	EXPECT_EQ(offload_next_mark(0, 4194304), 1048576u);
	// Never the "fired" value, never wraps.
	EXPECT_EQ(offload_next_mark(UINT64_MAX - 10, 4096), UINT64_MAX - 1);
}

TEST(OffloadPolicy, RecheckAtTheMarkOrOnceFired)
{
	EXPECT_FALSE(offload_recheck_due(2023, 2024));
	EXPECT_TRUE(offload_recheck_due(2024, 2024));
	EXPECT_TRUE(offload_recheck_due(0, UINT64_MAX)); // the program fired, awaits a mark
}

// ---- the options ----

struct Loaded {
	int rc;
	struct config cfg;
	struct config_error err;
};

Loaded Load(std::vector<std::string> args)
{
	std::vector<char *> argv;
	Loaded l;

	args.insert(args.begin(), "echod");
	for (std::string &s : args)
		argv.push_back(s.data());
	argv.push_back(nullptr);
	l.rc = config_load(&l.cfg, static_cast<int>(args.size()), argv.data(), &l.err);
	return l;
}

TEST(OffloadConfig, DefaultsOffWithAFourMebibyteBudget)
{
	Loaded l = Load({});
	ASSERT_EQ(l.rc, 0) << l.err.msg;
	EXPECT_EQ(l.cfg.offload, OFFLOAD_OFF);
	EXPECT_EQ(l.cfg.offload_budget, 4194304u);
}

TEST(OffloadConfig, ModesAndBudgetBounds)
{
	EXPECT_EQ(Load({"--offload=sockmap"}).cfg.offload, OFFLOAD_SOCKMAP);
	EXPECT_EQ(Load({"--offload", "auto"}).cfg.offload, OFFLOAD_AUTO);
	EXPECT_EQ(Load({"--offload=off"}).cfg.offload, OFFLOAD_OFF);
	Loaded l = Load({"--offload=on"});
	EXPECT_EQ(l.rc, EXIT_USAGE);
	EXPECT_STREQ(l.err.msg, "--offload: invalid value 'on' (expected off, sockmap or auto)");
	EXPECT_EQ(Load({"--offload-budget=65536"}).cfg.offload_budget, 65536u);
	EXPECT_EQ(Load({"--offload-budget=1073741824"}).cfg.offload_budget, 1073741824u);
	EXPECT_EQ(Load({"--offload-budget=65535"}).rc, EXIT_USAGE);
	EXPECT_EQ(Load({"--offload-budget=1073741825"}).rc, EXIT_USAGE);
	EXPECT_EQ(Load({"--offload-budget=4M"}).rc, EXIT_USAGE);
}

TEST(OffloadConfig, SockmapWithIoUringIsAUsageErrorNamingBoth)
{
	Loaded l = Load({"--offload=sockmap", "-b", "io_uring"});
	EXPECT_EQ(l.rc, EXIT_USAGE);
	EXPECT_NE(strstr(l.err.msg, "--offload=sockmap"), nullptr) << l.err.msg;
	EXPECT_NE(strstr(l.err.msg, "--backend=io_uring"), nullptr) << l.err.msg;
	// auto gives way instead (logged at start); epoll and auto backends are fine.
	EXPECT_EQ(Load({"--offload=auto", "-b", "io_uring"}).rc, 0);
	EXPECT_EQ(Load({"--offload=sockmap", "-b", "epoll"}).rc, 0);
	EXPECT_EQ(Load({"--offload=sockmap", "-b", "auto"}).rc, 0);
}

TEST(OffloadConfig, TheFileNamesTheLine)
{
	std::string text = "offload = sockmap\nworkers = 2\nbackend = io_uring\n";
	struct config cfg = Load({}).cfg;
	struct config_error err = {};
	FILE *f = fmemopen(text.data(), text.size(), "r");
	ASSERT_NE(f, nullptr);
	int rc = config_parse_file(&cfg, f, "echod.conf", &err);
	fclose(f);
	EXPECT_EQ(rc, EXIT_CONFIG);
	EXPECT_NE(strstr(err.msg, "echod.conf:3:"), nullptr) << err.msg;
	EXPECT_NE(strstr(err.msg, "offload = sockmap"), nullptr) << err.msg;
	EXPECT_NE(strstr(err.msg, "backend = io_uring"), nullptr) << err.msg;
}

TEST(OffloadConfig, PrintedAndReadBack)
{
	Loaded l = Load({"--offload=auto", "--offload-budget=123456"});
	ASSERT_EQ(l.rc, 0) << l.err.msg;
	char *buf = nullptr;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	ASSERT_NE(out, nullptr);
	config_print(&l.cfg, out);
	fclose(out);
	std::string text(buf, len);
	free(buf);
	EXPECT_NE(text.find("offload = auto\n"), std::string::npos) << text;
	EXPECT_NE(text.find("offload-budget = 123456\n"), std::string::npos) << text;
	struct config back = Load({}).cfg;
	struct config_error err = {};
	FILE *in = fmemopen(text.data(), text.size(), "r");
	ASSERT_NE(in, nullptr);
	EXPECT_EQ(config_parse_file(&back, in, "printed", &err), 0) << err.msg;
	fclose(in);
	EXPECT_EQ(back.offload, OFFLOAD_AUTO);
	EXPECT_EQ(back.offload_budget, 123456u);
}

} // namespace
