// conn: the pending-bytes bookkeeping, the buffer pool and the close reasons.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "echod/conn.h"
#include "echod/service.h"

namespace
{

// --- pending ---

TEST(Pending, PartialAdvancesThenDone)
{
	char buf[64];
	struct pending p = {};

	EXPECT_TRUE(pending_empty(&p));
	pending_hold(&p, buf, 10, 30);
	EXPECT_FALSE(pending_empty(&p));
	EXPECT_EQ(pending_advance(&p, 5), 0);
	EXPECT_EQ(p.off, 15u);
	EXPECT_EQ(p.len, 25u);
	EXPECT_EQ(pending_advance(&p, 0), 0);
	EXPECT_EQ(p.off, 15u);
	EXPECT_EQ(pending_advance(&p, 25), 1);
	EXPECT_EQ(p.off, 40u);
	EXPECT_EQ(p.len, 0u);
	EXPECT_TRUE(pending_empty(&p));
	EXPECT_EQ(p.buf, buf) << "the buffer stays held until released";
}

TEST(Pending, OverAdvanceClamps)
{
	char buf[16];
	struct pending p = {};

	pending_hold(&p, buf, 4, 8);
	EXPECT_EQ(pending_advance(&p, 100), 1);
	EXPECT_EQ(p.off, 12u);
	EXPECT_EQ(p.len, 0u);
	EXPECT_EQ(pending_advance(&p, 1), 1) << "nothing owed stays nothing owed";
	EXPECT_EQ(p.off, 12u);
}

TEST(Pending, ReleaseGivesTheBufferBackOnce)
{
	char buf[16];
	struct pending p = {};

	EXPECT_EQ(pending_release(&p), nullptr);
	pending_hold(&p, buf, 0, 16);
	EXPECT_EQ(pending_release(&p), buf);
	EXPECT_EQ(p.buf, nullptr);
	EXPECT_EQ(p.off, 0u);
	EXPECT_EQ(p.len, 0u);
	EXPECT_TRUE(pending_empty(&p));
	EXPECT_EQ(pending_release(&p), nullptr);
}

// --- bufpool ---

class Bufpool : public ::testing::Test
{
      protected:
	void TearDown() override
	{
		for (void *b : held_)
			bufpool_put(&pool_, b);
		bufpool_fini(&pool_);
	}
	void Init(unsigned spare)
	{
		ASSERT_EQ(bufpool_init(&pool_, 128, spare), 0);
	}
	void Get(unsigned n)
	{
		for (unsigned i = 0; i < n; i++) {
			void *b = bufpool_get(&pool_);

			ASSERT_NE(b, nullptr);
			static_cast<char *>(b)[127] = 'x'; // the whole size is usable
			held_.push_back(b);
		}
	}
	void Put(unsigned n)
	{
		for (unsigned i = 0; i < n && !held_.empty(); i++) {
			bufpool_put(&pool_, held_.back());
			held_.pop_back();
		}
	}

	struct bufpool pool_ = {};
	std::vector<void *> held_;
};

TEST_F(Bufpool, KeepsAtMostSpare)
{
	Init(2);
	Get(5);
	EXPECT_EQ(pool_.outstanding, 5u);
	EXPECT_EQ(pool_.nfree, 0u);
	Put(4);
	EXPECT_EQ(pool_.outstanding, 1u);
	EXPECT_EQ(pool_.nfree, 2u);
	Put(1);
	EXPECT_EQ(pool_.outstanding, 0u);
	EXPECT_EQ(pool_.nfree, 2u);
}

TEST_F(Bufpool, ReusesSpareBuffers)
{
	Init(1);
	Get(1);
	void *first = held_[0];
	Put(1);
	Get(1);
	EXPECT_EQ(held_[0], first);
	EXPECT_EQ(pool_.nfree, 0u);
	EXPECT_EQ(pool_.outstanding, 1u);
}

TEST_F(Bufpool, NoSpareFreesEverything)
{
	Init(0);
	Get(3);
	Put(3);
	EXPECT_EQ(pool_.nfree, 0u);
	EXPECT_EQ(pool_.outstanding, 0u);
}

TEST_F(Bufpool, PutNullIsANoOp)
{
	Init(1);
	Get(1);
	bufpool_put(&pool_, nullptr);
	EXPECT_EQ(pool_.outstanding, 1u);
	EXPECT_EQ(pool_.nfree, 0u);
}

// --- close reasons ---

TEST(ConnReason, ResetsAreThePeers)
{
	EXPECT_EQ(conn_errno_reason(ECONNRESET), CLOSE_RESET);
	EXPECT_EQ(conn_errno_reason(EPIPE), CLOSE_RESET);
	EXPECT_EQ(conn_errno_reason(ETIMEDOUT), CLOSE_RESET);
	for (int err : {0, EIO, ENOMEM, EBADF, EINVAL, ENOBUFS, EHOSTUNREACH})
		EXPECT_EQ(conn_errno_reason(err), CLOSE_ERROR) << err;
}

TEST(ConnReason, NamesAndCounters)
{
	struct {
		enum conn_close_reason why;
		const char *name;
		enum stats_counter counter;
	} const cases[] = {{CLOSE_EOF, "eof", STAT_closed_eof},
			   {CLOSE_RESET, "reset", STAT_closed_reset},
			   {CLOSE_ERROR, "error", STAT_closed_error},
			   {CLOSE_IDLE, "idle", STAT_closed_idle},
			   {CLOSE_DRAIN, "drain", STAT_closed_drain}};

	for (const auto &c : cases) {
		EXPECT_STREQ(conn_reason_name(c.why), c.name);
		EXPECT_EQ(conn_reason_counter(c.why), c.counter) << c.name;
		EXPECT_EQ(std::string("closed_") + c.name, stats_name(c.counter));
	}
}

// The -v connection log's line, as pure formatting.
std::string Where(const conn_log &l, const char *listener = "127.0.0.1:7", const char *svc = "echo")
{
	char out[256];
	size_t n = conn_log_where(&l, listener, svc, out, sizeof(out));
	EXPECT_EQ(n, strlen(out));
	return out;
}

TEST(ConnLog, PeerIpv4AndIpv6)
{
	conn_log l{};
	sockaddr_in in{};
	in.sin_family = AF_INET;
	in.sin_port = htons(40000);
	inet_pton(AF_INET, "192.0.2.7", &in.sin_addr);
	conn_log_start(&l, reinterpret_cast<sockaddr *>(&in), 3, 1000);
	EXPECT_EQ(l.listener, 3u);
	EXPECT_EQ(l.start, 1000u);
	EXPECT_EQ(Where(l), "peer=192.0.2.7:40000 listener=127.0.0.1:7 service=echo");

	sockaddr_in6 in6{};
	in6.sin6_family = AF_INET6;
	in6.sin6_port = htons(7);
	inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
	conn_log_start(&l, reinterpret_cast<sockaddr *>(&in6), 0, 0);
	EXPECT_EQ(Where(l, "[::]:13", "daytime"),
		  "peer=[2001:db8::1]:7 listener=[::]:13 service=daytime");

	// A dual-stack listener's IPv4 peer comes IPv4-mapped: printed as IPv4.
	inet_pton(AF_INET6, "::ffff:198.51.100.1", &in6.sin6_addr);
	conn_log_start(&l, reinterpret_cast<sockaddr *>(&in6), 0, 0);
	EXPECT_EQ(Where(l, "[::]:7"), "peer=198.51.100.1:7 listener=[::]:7 service=echo");

	conn_log_start(&l, nullptr, 0, 0);
	EXPECT_EQ(Where(l), "peer=unknown listener=127.0.0.1:7 service=echo");
}

TEST(ConnLog, Totals)
{
	conn_log l{};
	l.start = 5000;
	l.bytes_in = 12;
	l.bytes_out = 7;
	char out[96];
	conn_log_totals(&l, 5000 + 61042, out, sizeof(out));
	EXPECT_STREQ(out, "in=12 out=7 duration=61.042s");
	conn_log_totals(&l, 4000, out, sizeof(out)); // a clock that went back: 0, not huge
	EXPECT_STREQ(out, "in=12 out=7 duration=0.000s");
	char small[8];
	EXPECT_EQ(conn_log_totals(&l, 5000, small, sizeof(small)), 7u);
	EXPECT_STREQ(small, "in=12 o");
}

// An idle connection costs under 256 bytes of user-space memory (the design's
// budget), malloc's header (16 bytes) included; the io_uring connection adds its
// own fields to struct conn and is checked where it is defined.
TEST(ConnLog, IdleConnectionsStaySmall)
{
	EXPECT_LE(sizeof(conn) + 16, 160u);
	EXPECT_LE(sizeof(svc_conn) + 16, 192u);
	EXPECT_LE(sizeof(conn_log), 48u);
}

} // namespace
