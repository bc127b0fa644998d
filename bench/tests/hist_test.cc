// Histogram: percentiles within bucket precision, merge, max, empty.
#include "hist.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>

namespace
{

// Relative precision promised by 64 linear sub-buckets per power of two.
constexpr double kPrecision = 1.0 / 64;

std::unique_ptr<hist> make()
{
	auto h = std::make_unique<hist>();
	hist_init(h.get());
	return h;
}

void expect_near_rel(uint64_t got, double want)
{
	EXPECT_GE(static_cast<double>(got), want * (1 - kPrecision)) << "want " << want;
	EXPECT_LE(static_cast<double>(got), want * (1 + kPrecision)) << "want " << want;
}

TEST(Hist, EmptyReportsZeros)
{
	auto h = make();
	EXPECT_EQ(h->count, 0u);
	EXPECT_EQ(hist_percentile(h.get(), 50), 0u);
	EXPECT_EQ(hist_percentile(h.get(), 100), 0u);
	EXPECT_EQ(hist_min(h.get()), 0u);
	EXPECT_EQ(hist_max(h.get()), 0u);
	EXPECT_EQ(hist_mean(h.get()), 0.0);
	EXPECT_EQ(hist_stdev(h.get()), 0.0);
}

TEST(Hist, SmallValuesAreExact)
{
	auto h = make();
	for (uint64_t v = 1; v <= 100; v++)
		hist_record(h.get(), v);
	EXPECT_EQ(hist_percentile(h.get(), 50), 50u);
	EXPECT_EQ(hist_percentile(h.get(), 90), 90u);
	EXPECT_EQ(hist_percentile(h.get(), 99), 99u);
	EXPECT_EQ(hist_percentile(h.get(), 100), 100u);
	EXPECT_EQ(hist_min(h.get()), 1u);
	EXPECT_DOUBLE_EQ(hist_mean(h.get()), 50.5);
}

TEST(Hist, UniformDistributionWithinBucketPrecision)
{
	auto h = make();
	for (uint64_t v = 1; v <= 1000000; v++)
		hist_record(h.get(), v);
	expect_near_rel(hist_percentile(h.get(), 50), 500000);
	expect_near_rel(hist_percentile(h.get(), 75), 750000);
	expect_near_rel(hist_percentile(h.get(), 90), 900000);
	expect_near_rel(hist_percentile(h.get(), 99), 990000);
	expect_near_rel(hist_percentile(h.get(), 99.9), 999000);
	EXPECT_EQ(hist_max(h.get()), 1000000u);
	EXPECT_NEAR(hist_stdev(h.get()), 1000000 / std::sqrt(12.0), 10.0);
}

TEST(Hist, LogUniformDistributionWithinBucketPrecision)
{
	// Values 1000 * 1.01^i for i < 1000 span four decades.
	auto h = make();
	for (int i = 0; i < 1000; i++)
		hist_record(h.get(), static_cast<uint64_t>(1000 * std::pow(1.01, i)));
	expect_near_rel(hist_percentile(h.get(), 50), 1000 * std::pow(1.01, 499));
	expect_near_rel(hist_percentile(h.get(), 90), 1000 * std::pow(1.01, 899));
	expect_near_rel(hist_percentile(h.get(), 99), 1000 * std::pow(1.01, 989));
}

TEST(Hist, BucketsCoverTheirValuesTightly)
{
	for (uint64_t v = 1; v < (UINT64_C(1) << 62); v = v * 3 + 1) {
		unsigned idx = hist_bucket_of(v);
		ASSERT_LT(idx, HIST_BUCKETS);
		EXPECT_LE(hist_bucket_low(idx), v);
		EXPECT_GE(hist_bucket_high(idx), v);
		double width =
		    static_cast<double>(hist_bucket_high(idx) - hist_bucket_low(idx) + 1);
		if (v < 2 * HIST_SUB_COUNT)
			EXPECT_EQ(width, 1.0) << v;
		else
			EXPECT_LE(width / static_cast<double>(hist_bucket_low(idx)), kPrecision)
			    << v;
	}
	EXPECT_EQ(hist_bucket_of(UINT64_MAX), HIST_BUCKETS - 1);
	EXPECT_EQ(hist_bucket_high(HIST_BUCKETS - 1), UINT64_MAX);
}

TEST(Hist, MaxIsExactAndBoundsPercentiles)
{
	auto h = make();
	const uint64_t big = (UINT64_C(1) << 40) + 12345;
	hist_record(h.get(), 10);
	hist_record(h.get(), big);
	EXPECT_EQ(hist_max(h.get()), big);
	EXPECT_EQ(hist_percentile(h.get(), 100), big);
	EXPECT_EQ(hist_percentile(h.get(), 99.9), big);
	EXPECT_EQ(hist_percentile(h.get(), 50), 10u);
}

TEST(Hist, MergeEqualsRecordingEverythingInOne)
{
	auto a = make(), b = make(), all = make();
	for (uint64_t v = 1; v <= 200000; v += 7) {
		hist_record(v % 2 ? a.get() : b.get(), v * 13);
		hist_record(all.get(), v * 13);
	}
	hist_merge(a.get(), b.get());
	EXPECT_EQ(a->count, all->count);
	EXPECT_EQ(hist_min(a.get()), hist_min(all.get()));
	EXPECT_EQ(hist_max(a.get()), hist_max(all.get()));
	for (double p : {50.0, 75.0, 90.0, 99.0, 99.9})
		EXPECT_EQ(hist_percentile(a.get(), p), hist_percentile(all.get(), p)) << p;
	EXPECT_DOUBLE_EQ(hist_mean(a.get()), hist_mean(all.get()));
}

TEST(Hist, MergeIntoEmptyAndFromEmpty)
{
	auto a = make(), empty = make();
	hist_record(a.get(), 500);
	hist_merge(a.get(), empty.get());
	EXPECT_EQ(hist_min(a.get()), 500u);
	EXPECT_EQ(a->count, 1u);
	hist_merge(empty.get(), a.get());
	EXPECT_EQ(hist_min(empty.get()), 500u);
	EXPECT_EQ(hist_max(empty.get()), 500u);
}

} // namespace
