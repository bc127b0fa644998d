#include "diag.h"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace e2e
{
namespace
{

void Parse(const inet_diag_msg *m, size_t len, TcpDiag *out)
{
	out->found = true;
	out->state = m->idiag_state;
	const size_t head = NLMSG_ALIGN(sizeof *m);
	if (len < head)
		return;
	auto *a = reinterpret_cast<const rtattr *>(reinterpret_cast<const char *>(m) + head);
	size_t left = len - head;
	for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
		size_t n = RTA_PAYLOAD(a);
		if (a->rta_type == INET_DIAG_INFO) {
			tcp_info ti{};
			memcpy(&ti, RTA_DATA(a), std::min(n, sizeof ti));
			out->bytes_received = ti.tcpi_bytes_received;
			out->bytes_acked = ti.tcpi_bytes_acked;
		} else if (a->rta_type == INET_DIAG_SKMEMINFO && n >= SK_MEMINFO_VARS * 4) {
			auto *v = static_cast<const uint32_t *>(RTA_DATA(a));
			out->rmem = v[SK_MEMINFO_RMEM_ALLOC];
			out->wmem_alloc = v[SK_MEMINFO_WMEM_ALLOC];
			out->wmem_queued = v[SK_MEMINFO_WMEM_QUEUED];
		}
	}
}

} // namespace

bool DiagTcp(int local_port, int remote_port, TcpDiag *out, std::string *error)
{
	*out = TcpDiag();
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0) {
		*error = std::string("socket(NETLINK_SOCK_DIAG): ") + strerror(errno);
		return false;
	}
	struct {
		nlmsghdr nh;
		inet_diag_req_v2 req;
	} q{};
	q.nh.nlmsg_len = sizeof q;
	q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.req.sdiag_family = AF_INET;
	q.req.sdiag_protocol = IPPROTO_TCP;
	q.req.idiag_states = ~0u;
	q.req.idiag_ext = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_SKMEMINFO - 1));
	if (send(fd, &q, sizeof q, 0) != ssize_t(sizeof q)) {
		*error = std::string("sock_diag request: ") + strerror(errno);
		close(fd);
		return false;
	}
	std::vector<char> buf(1 << 16);
	for (;;) {
		ssize_t n = recv(fd, buf.data(), buf.size(), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error = std::string("sock_diag answer: ") + (n < 0 ? strerror(errno) : "EOF");
			close(fd);
			return false;
		}
		size_t left = size_t(n);
		for (auto *h = reinterpret_cast<nlmsghdr *>(buf.data()); NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				close(fd);
				return true;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				*error = "sock_diag: error answer";
				close(fd);
				return false;
			}
			auto *m = static_cast<const inet_diag_msg *>(NLMSG_DATA(h));
			if (ntohs(m->id.idiag_sport) == local_port &&
			    ntohs(m->id.idiag_dport) == remote_port)
				Parse(m, h->nlmsg_len - NLMSG_LENGTH(0), out);
		}
	}
}

int LocalPort(int fd)
{
	sockaddr_in sa{};
	socklen_t len = sizeof sa;
	if (getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len) < 0)
		return -1;
	return ntohs(sa.sin_port);
}

} // namespace e2e
