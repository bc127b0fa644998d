// Pattern checker: detects a flipped byte, a shifted stream, accepts any split.
#include "pattern.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace
{

std::vector<unsigned char> stream(uint64_t seed, uint64_t off, size_t len)
{
	std::vector<unsigned char> v(len);
	pattern_fill(seed, off, v.data(), len);
	return v;
}

TEST(Pattern, FillAgreesWithByteAtAnyAlignment)
{
	const uint64_t seed = pattern_seed(3, 1);
	for (uint64_t off = 0; off < 20; off++) {
		auto v = stream(seed, off, 37);
		for (size_t i = 0; i < v.size(); i++)
			ASSERT_EQ(v[i], pattern_byte(seed, off + i)) << off << "+" << i;
	}
}

TEST(Pattern, CorrectStreamPasses)
{
	const uint64_t seed = pattern_seed(0, 1);
	auto v = stream(seed, 1000, 5000);
	EXPECT_EQ(pattern_check(seed, 1000, v.data(), v.size()), v.size());
}

TEST(Pattern, DetectsAFlippedByteAnywhere)
{
	const uint64_t seed = pattern_seed(7, 2);
	auto good = stream(seed, 0, 3000);
	for (size_t pos :
	     {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{511}, size_t{512}, size_t{2999}}) {
		auto v = good;
		v[pos] ^= 0x01;
		EXPECT_EQ(pattern_check(seed, 0, v.data(), v.size()), pos);
	}
}

TEST(Pattern, DetectsShiftedStreams)
{
	const uint64_t seed = pattern_seed(1, 1);
	// A lost byte, a duplicated byte, and shifts a counter pattern would miss.
	for (uint64_t shift : {1, 8, 256, 4096}) {
		auto ahead = stream(seed, shift, 1024);
		EXPECT_LT(pattern_check(seed, 0, ahead.data(), ahead.size()), size_t{16}) << shift;
		auto behind = stream(seed, 0, 1024);
		EXPECT_LT(pattern_check(seed, shift, behind.data(), behind.size()), size_t{16})
		    << shift;
	}
}

TEST(Pattern, AcceptsCorrectStreamSplitAtRandomBoundaries)
{
	std::mt19937_64 rng(42);
	const uint64_t seed = pattern_seed(5, 9);
	auto whole = stream(seed, 0, 1 << 20);
	size_t off = 0;
	while (off < whole.size()) {
		size_t n = std::min<size_t>(whole.size() - off, 1 + rng() % 3000);
		ASSERT_EQ(pattern_check(seed, off, whole.data() + off, n), n) << off;
		off += n;
	}
}

TEST(Pattern, StreamsDifferPerConnectionAndGeneration)
{
	auto a = stream(pattern_seed(1, 1), 0, 64), b = stream(pattern_seed(2, 1), 0, 64),
	     c = stream(pattern_seed(1, 2), 0, 64);
	EXPECT_NE(a, b);
	EXPECT_NE(a, c);
	EXPECT_LT(pattern_check(pattern_seed(1, 2), 0, a.data(), a.size()), size_t{16});
}

// RFC 864 written out by hand: line k is 72 characters from the k-th printable one.
TEST(Chargen, StreamIsTheRfc864Pattern)
{
	std::string want;
	for (int k = 0; k < 200; k++) {
		for (int j = 0; j < 72; j++)
			want += char(' ' + (k + j) % 95);
		want += "\r\n";
	}
	for (size_t i = 0; i < want.size(); i++)
		ASSERT_EQ(chargen_byte(i), uint8_t(want[i])) << i;
	EXPECT_EQ(chargen_check(0, want.data(), want.size()), want.size());
	EXPECT_EQ(chargen_check(74 * 95, want.data(), want.size()), want.size()) << "95-line period";
}

TEST(Chargen, CheckFindsTheFirstWrongByte)
{
	std::string s;
	for (uint64_t i = 1000; i < 2000; i++)
		s += char(chargen_byte(i));
	EXPECT_EQ(chargen_check(1000, s.data(), s.size()), s.size());
	s[333] ^= 1;
	EXPECT_EQ(chargen_check(1000, s.data(), s.size()), 333u);
	EXPECT_EQ(chargen_check(1001, s.data(), s.size()), 0u) << "shifted by one";
}

} // namespace
