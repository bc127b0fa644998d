// Fairness: the spread over the connections open for the whole window, unserved ones shown.
#include "fair.h"

#include <gtest/gtest.h>

#include <vector>

namespace
{

TEST(Fair, EverySlotWithoutAMask)
{
	std::vector<uint64_t> counts = {5, 1, 9, 3, 7};
	fair_result r;
	ASSERT_EQ(fair_compute(counts.data(), nullptr, counts.size(), &r), 0);
	EXPECT_EQ(r.conns, 5u);
	EXPECT_EQ(r.min, 1u);
	EXPECT_EQ(r.median, 5u);
	EXPECT_EQ(r.max, 9u);
	EXPECT_EQ(r.unserved, 0u);
	double ratio = 0;
	ASSERT_TRUE(fair_ratio(&r, &ratio));
	EXPECT_DOUBLE_EQ(ratio, 9.0);
}

TEST(Fair, OnlyConnectionsOpenForTheWholeWindowCount)
{
	// Slots 1 and 3 opened late or broke: their small counts say nothing of the server.
	std::vector<uint64_t> counts = {10, 0, 20, 1, 15};
	std::vector<unsigned char> whole = {1, 0, 1, 0, 1};
	fair_result r;
	ASSERT_EQ(fair_compute(counts.data(), whole.data(), counts.size(), &r), 0);
	EXPECT_EQ(r.conns, 3u);
	EXPECT_EQ(r.min, 10u);
	EXPECT_EQ(r.median, 15u);
	EXPECT_EQ(r.max, 20u);
	EXPECT_EQ(r.unserved, 0u);
	double ratio = 0;
	ASSERT_TRUE(fair_ratio(&r, &ratio));
	EXPECT_DOUBLE_EQ(ratio, 2.0);
}

TEST(Fair, UnservedConnectionsCountAndShow)
{
	// Open all through the window, never served: they are the server's doing.
	std::vector<uint64_t> counts = {0, 8, 0, 4, 6, 0};
	std::vector<unsigned char> whole(counts.size(), 1);
	fair_result r;
	ASSERT_EQ(fair_compute(counts.data(), whole.data(), counts.size(), &r), 0);
	EXPECT_EQ(r.conns, 6u);
	EXPECT_EQ(r.unserved, 3u);
	EXPECT_EQ(r.min, 0u);
	EXPECT_EQ(r.median, 0u); // the lower median of 0 0 0 4 6 8
	EXPECT_EQ(r.max, 8u);
	double ratio = -1;
	EXPECT_FALSE(fair_ratio(&r, &ratio)) << "max/min has no finite value when min is 0";
	EXPECT_EQ(ratio, -1);
}

TEST(Fair, NoConnectionOpenForTheWholeWindow)
{
	std::vector<uint64_t> counts = {3, 4};
	std::vector<unsigned char> whole = {0, 0};
	fair_result r;
	ASSERT_EQ(fair_compute(counts.data(), whole.data(), counts.size(), &r), 0);
	EXPECT_EQ(r.conns, 0u);
	EXPECT_EQ(r.min, 0u);
	EXPECT_EQ(r.max, 0u);
	EXPECT_EQ(r.unserved, 0u);
	double ratio;
	EXPECT_FALSE(fair_ratio(&r, &ratio));
	ASSERT_EQ(fair_compute(counts.data(), nullptr, 0, &r), 0);
	EXPECT_EQ(r.conns, 0u);
}

TEST(Fair, OneConnection)
{
	uint64_t count = 42;
	unsigned char whole = 1;
	fair_result r;
	ASSERT_EQ(fair_compute(&count, &whole, 1, &r), 0);
	EXPECT_EQ(r.conns, 1u);
	EXPECT_EQ(r.min, 42u);
	EXPECT_EQ(r.median, 42u);
	EXPECT_EQ(r.max, 42u);
	double ratio;
	ASSERT_TRUE(fair_ratio(&r, &ratio));
	EXPECT_DOUBLE_EQ(ratio, 1.0);
}

} // namespace
