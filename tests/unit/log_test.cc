// log: the timestamp formatter (pure, async-signal-safe).
#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "echod/log.h"

namespace
{

std::string Stamp(long long sec, long nsec)
{
	char out[64];
	size_t n = log_format_time(sec, nsec, out, sizeof(out));
	EXPECT_EQ(n, std::string(out).size());
	return out;
}

TEST(LogTime, EpochAndKnownDates)
{
	EXPECT_EQ(Stamp(0, 0), "1970-01-01T00:00:00.000Z");
	EXPECT_EQ(Stamp(951782400, 999999999),
		  "2000-02-29T00:00:00.999Z"); // leap day, 400-year rule
	EXPECT_EQ(Stamp(4107542399LL, 1000000), "2100-02-28T23:59:59.001Z"); // 2100 is no leap year
	EXPECT_EQ(Stamp(1795425755LL, 123456789), "2026-11-23T09:22:35.123Z");
	EXPECT_EQ(Stamp(-1, 0), "1969-12-31T23:59:59.000Z");
}

TEST(LogTime, AgreesWithGmtimeOverManyDays)
{
	// Every 7919 s (a prime, so every time of day comes round) over 130 years.
	for (long long t = 0; t < 130LL * 366 * 86400; t += 7919 * 97) {
		time_t tt = (time_t)t;
		struct tm tm;
		char want[64];
		ASSERT_NE(gmtime_r(&tt, &tm), nullptr);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
		ASSERT_EQ(Stamp(t, 0), want) << t;
	}
}

TEST(LogTime, Length)
{
	char out[LOG_TIME_LEN + 1];
	EXPECT_EQ(log_format_time(0, 0, out, sizeof(out)), (size_t)LOG_TIME_LEN);
	char small[5];
	EXPECT_EQ(log_format_time(0, 0, small, sizeof(small)), 4u);
	EXPECT_STREQ(small, "1970");
}

} // namespace
