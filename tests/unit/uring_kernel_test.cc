// uring_kernel: the io_uring backend's calls into the kernel. What is checked here
// is what a fake ring cannot show: a ring that refuses every submission ends the
// worker with a log line instead of spinning in urk_get_sqe forever.
#include <gtest/gtest.h>

#include <cstring>
#include <unistd.h>

#ifdef ECHOD_HAVE_IO_URING
#include <liburing.h>

#include "echod/uring_kernel.h"
#endif

namespace
{

TEST(UringKernel, RingThatTakesNoSubmissionEndsTheWorkerSayingWhy)
{
#ifndef ECHOD_HAVE_IO_URING
	GTEST_SKIP() << "built without io_uring";
#else
	struct io_uring ring;
	struct urk_caps caps;
	int rc = urk_ring_init(&ring, &caps);
	if (rc < 0)
		GTEST_SKIP() << "io_uring cannot run here: " << strerror(-rc);
	// The ring's descriptor gone, every submission fails (EBADF): once the queue is
	// full, urk_get_sqe must give up, not loop.
	EXPECT_EXIT(
	    {
		    io_uring_unregister_ring_fd(&ring);
		    close(ring.ring_fd);
		    for (;;)
			    io_uring_prep_nop(urk_get_sqe(&ring));
	    },
	    ::testing::ExitedWithCode(71), "the ring takes no submission");
	urk_ring_exit(&ring);
#endif
}

} // namespace
