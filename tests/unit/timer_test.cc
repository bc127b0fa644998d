// timer: the idle list, driven by a hand-held clock.
#include <stdint.h>

#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "echod/timer.h"

namespace
{

constexpr uint64_t kTimeout = 1000; // ms; its granule is 100 ms
constexpr uint64_t kGranule = 100;

class Timer : public ::testing::Test
{
      protected:
	void SetUp() override
	{
		timer_init(&list_, kTimeout);
	}
	// Pops every node expired at `now`, in order.
	std::vector<struct timer_node *> Expire(uint64_t now)
	{
		std::vector<struct timer_node *> out;
		struct timer_node *n;

		while ((n = timer_expired(&list_, now)) != nullptr) {
			timer_remove(n);
			out.push_back(n);
		}
		return out;
	}
	std::vector<struct timer_node *> Walk()
	{
		std::vector<struct timer_node *> out;

		for (struct timer_node *n = timer_first(&list_); n != nullptr;
		     n = n->next == &list_.head ? nullptr : n->next)
			out.push_back(n);
		return out;
	}

	struct timer_list list_;
	struct timer_node a_, b_, c_;
};

using Nodes = std::vector<struct timer_node *>;

TEST_F(Timer, GranuleIsATenthCappedAt100)
{
	EXPECT_EQ(list_.granule, kGranule);
	timer_init(&list_, 500);
	EXPECT_EQ(list_.granule, 50u);
	timer_init(&list_, 300000);
	EXPECT_EQ(list_.granule, 100u);
	timer_init(&list_, 5);
	EXPECT_EQ(list_.granule, 1u);
	timer_init(&list_, 0);
	EXPECT_EQ(list_.granule, 1u);
}

TEST_F(Timer, ExpiresInInsertionOrder)
{
	timer_insert(&list_, &a_, 0);
	timer_insert(&list_, &b_, 10);
	timer_insert(&list_, &c_, 20);
	EXPECT_EQ(Expire(kTimeout + kGranule - 1), Nodes{});
	EXPECT_EQ(Expire(kTimeout + kGranule + 10), (Nodes{&a_, &b_}));
	EXPECT_EQ(Expire(kTimeout + kGranule + 100), Nodes{&c_});
	EXPECT_TRUE(timer_empty(&list_));
}

TEST_F(Timer, TouchWithinAGranuleDoesNotMove)
{
	timer_insert(&list_, &a_, 0);
	timer_insert(&list_, &b_, 0);
	timer_touch(&list_, &a_, kGranule - 1);
	EXPECT_EQ(a_.stamp, 0u);
	EXPECT_EQ(Walk(), (Nodes{&a_, &b_}));
}

TEST_F(Timer, TouchAfterAGranuleMovesToTheTail)
{
	timer_insert(&list_, &a_, 0);
	timer_insert(&list_, &b_, 0);
	timer_touch(&list_, &a_, kGranule);
	EXPECT_EQ(a_.stamp, kGranule);
	EXPECT_EQ(Walk(), (Nodes{&b_, &a_}));
	EXPECT_EQ(Expire(kTimeout + kGranule), Nodes{&b_});
	EXPECT_EQ(Expire(kTimeout + 2 * kGranule), Nodes{&a_});
}

// A node expires no earlier than `timeout` after its last activity and no later than
// timeout + granule, whatever the pattern of activity before.
TEST_F(Timer, ExpiryWithinTimeoutAndTimeoutPlusGranule)
{
	std::mt19937 rng(862);
	std::uniform_int_distribution<uint64_t> gap(0, 3 * kGranule);

	uint64_t now = 0;

	for (int round = 0; round < 200; round++) {
		uint64_t last = now;

		timer_insert(&list_, &a_, now);
		for (int i = 0; i < 20; i++) {
			now += gap(rng);
			timer_touch(&list_, &a_, now);
			last = now;
		}
		while (timer_expired(&list_, now) == nullptr)
			now++;
		timer_remove(&a_);
		EXPECT_GE(now - last, kTimeout) << "round " << round;
		EXPECT_LE(now - last, kTimeout + kGranule) << "round " << round;
	}
}

TEST_F(Timer, TimeoutZeroNeverExpiresButKeepsEveryNode)
{
	timer_init(&list_, 0);
	timer_insert(&list_, &a_, 0);
	timer_insert(&list_, &b_, 1);
	timer_insert(&list_, &c_, 2);
	timer_touch(&list_, &a_, 1000000);
	EXPECT_EQ(timer_expired(&list_, UINT64_MAX / 2), nullptr);
	EXPECT_EQ(timer_next_ms(&list_, 1000000), -1);
	EXPECT_FALSE(timer_empty(&list_));
	EXPECT_EQ(Walk(), (Nodes{&a_, &b_, &c_}));
}

TEST_F(Timer, NextMs)
{
	EXPECT_EQ(timer_next_ms(&list_, 0), -1);
	timer_insert(&list_, &a_, 0);
	EXPECT_EQ(timer_next_ms(&list_, 0), static_cast<int>(kTimeout + kGranule));
	EXPECT_EQ(timer_next_ms(&list_, 1000), static_cast<int>(kGranule));
	EXPECT_EQ(timer_next_ms(&list_, kTimeout + kGranule), 0);
	EXPECT_EQ(timer_next_ms(&list_, 10 * kTimeout), 0);
}

TEST_F(Timer, NextMsIsCappedAtAMinute)
{
	timer_init(&list_, 3600 * 1000);
	timer_insert(&list_, &a_, 0);
	EXPECT_EQ(timer_next_ms(&list_, 0), 60000);
	EXPECT_EQ(timer_next_ms(&list_, 3600 * 1000 + 100 - 59999), 59999);
}

TEST_F(Timer, RemoveFromTheMiddle)
{
	timer_insert(&list_, &a_, 0);
	timer_insert(&list_, &b_, 1);
	timer_insert(&list_, &c_, 2);
	timer_remove(&b_);
	EXPECT_EQ(Walk(), (Nodes{&a_, &c_}));
	timer_remove(&b_); // a removed node is self-linked: removing it again is harmless
	EXPECT_EQ(Walk(), (Nodes{&a_, &c_}));
	EXPECT_EQ(Expire(kTimeout + kGranule + 2), (Nodes{&a_, &c_}));
	EXPECT_EQ(timer_first(&list_), nullptr);
}

TEST(TimerClock, Monotonic)
{
	uint64_t a = timer_now_ms(), b = timer_now_ms();

	EXPECT_GT(a, 0u);
	EXPECT_LE(a, b);
}

} // namespace
