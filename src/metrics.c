/* metrics: the HTTP/1.0 responder for Prometheus scrapes, see metrics.h. */
#include "echod/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echod/listen.h"
#include "echod/log.h"
#include "echod/net.h"

#define METRICS_ACCEPT_BURST 16   /* connections taken per wakeup */

void metrics_init(struct metrics_server *m)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < METRICS_LISTENERS; i++)
		m->fds[i] = -1;
	for (int i = 0; i < METRICS_CLIENTS; i++)
		m->clients[i].fd = -1;
}

int metrics_open(struct metrics_server *m, const char *spec, int backlog, char *why,
		 size_t whylen)
{
	struct listener_set set;
	struct listen_spec ls;
	int rc;

	if (listen_parse(spec, &ls, why, whylen) < 0)
		return LISTEN_ERR_USAGE;
	if (ls.any && strchr(spec, '*') == NULL) {
		ls.any = 0; /* no host given: loopback only */
		strcpy(ls.host, "127.0.0.1");
	}
	rc = listen_open_all(&set, &ls, 1, 1, backlog, why, whylen);
	if (rc < 0) {
		listen_close_all(&set);
		return rc;
	}
	m->fds[0] = set.v[0].fds[0];
	m->nfds = 1;
	snprintf(m->names[0], sizeof(m->names[0]), "%s", set.v[0].name + 4);
	set.v[0].fds[0] = -1;
	for (unsigned i = 1; i < set.n; i++) /* a name with several addresses: the first */
		log_warnx("metrics: serving on %s only, not %s", m->names[0], set.v[i].name);
	listen_close_all(&set);
	return 0;
}

int metrics_adopt(struct metrics_server *m, int fd, int type, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (type != SOCK_STREAM) {
		snprintf(why, whylen, "socket %d from systemd is named 'metrics' but is not a "
				      "stream socket (ListenStream= expected)", fd);
		return -1;
	}
	if (m->nfds == METRICS_LISTENERS) {
		snprintf(why, whylen, "more than %d sockets from systemd are named 'metrics'",
			 METRICS_LISTENERS);
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		snprintf(why, whylen, "getsockname(%d): %s", fd, strerror(errno));
		return -1;
	}
	net_format_addr((struct sockaddr *)&ss, len, m->names[m->nfds], sizeof(m->names[0]));
	m->fds[m->nfds++] = fd;
	m->passed = 1;
	return 0;
}

int metrics_netns_isolated(void)
{
	FILE *f = fopen("/proc/self/net/dev", "re");
	char line[256], name[64];
	int others = 0, lines = 0;

	if (f == NULL)
		return 0; /* cannot tell: claim nothing */
	while (fgets(line, sizeof(line), f) != NULL)
		if (++lines > 2 && sscanf(line, " %63[^:]:", name) == 1 && strcmp(name, "lo") != 0)
			others++;
	fclose(f);
	return lines > 2 && others == 0;
}

static void client_close(struct metrics_client *cl)
{
	char sink[512];

	/* Unread input would turn the close into a reset that can destroy the answer. */
	for (int i = 0; i < 32 && recv(cl->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	close(cl->fd);
	free(cl->out);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

void metrics_close(struct metrics_server *m)
{
	for (int i = 0; i < METRICS_CLIENTS; i++)
		if (m->clients[i].fd >= 0)
			client_close(&m->clients[i]);
	for (unsigned i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	metrics_init(m);
}

int metrics_pollfds(const struct metrics_server *m, struct pollfd *p)
{
	int n = 0;

	for (unsigned i = 0; i < m->nfds; i++)
		p[n++] = (struct pollfd){.fd = m->fds[i], .events = POLLIN};
	for (int i = 0; i < METRICS_CLIENTS; i++)
		if (m->clients[i].fd >= 0)
			p[n++] = (struct pollfd){.fd = m->clients[i].fd,
						 .events = m->clients[i].out ? POLLOUT : POLLIN};
	return n;
}

/* A free slot; when all are taken, the oldest still sending its request is evicted
 * (a scraper sends its request at once), else the oldest of all. */
static struct metrics_client *client_slot(struct metrics_server *m)
{
	struct metrics_client *oldest = NULL, *oldest_reading = NULL;

	for (int i = 0; i < METRICS_CLIENTS; i++) {
		struct metrics_client *cl = &m->clients[i];

		if (cl->fd < 0)
			return cl;
		if (oldest == NULL || cl->accepted < oldest->accepted)
			oldest = cl;
		if (cl->out == NULL && (oldest_reading == NULL ||
					cl->accepted < oldest_reading->accepted))
			oldest_reading = cl;
	}
	oldest = oldest_reading != NULL ? oldest_reading : oldest;
	log_debug("metrics: all %d slots busy; closing the oldest client", METRICS_CLIENTS);
	client_close(oldest);
	return oldest;
}

static int answer(struct metrics_client *cl, int status, int head, char *(*body)(void *),
		  void *arg, uint64_t now)
{
	char *page = status == 200 ? body(arg) : NULL;

	if (status == 200 && page == NULL)
		status = 500;
	cl->out = metrics_http_answer(status, page, head, &cl->out_len);
	free(page);
	cl->deadline = now + METRICS_SEND_MS;
	return cl->out != NULL ? 0 : -1;
}

/* Returns -1 when the client is done or failed. */
static int client_io(struct metrics_client *cl, char *(*body)(void *), void *arg, uint64_t now)
{
	ssize_t r;
	int status, head;

	if (cl->out == NULL) {
		r = recv(cl->fd, cl->in + cl->in_len, sizeof(cl->in) - 1 - cl->in_len, 0);
		if (r <= 0)
			return r < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
		cl->in_len += (size_t)r;
		cl->in[cl->in_len] = '\0';
		status = metrics_route(cl->in, cl->in_len, &head);
		if (status == 0)
			return 0;
		if (answer(cl, status, head, body, arg, now) < 0)
			return -1;
	}
	r = send(cl->fd, cl->out + cl->out_off, cl->out_len - cl->out_off, MSG_NOSIGNAL);
	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	cl->out_off += (size_t)r;
	return cl->out_off == cl->out_len ? -1 : 0;
}

static void accept_clients(struct metrics_server *m, int lfd, uint64_t now,
			   char *(*body)(void *), void *arg)
{
	for (int i = 0; i < METRICS_ACCEPT_BURST; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct metrics_client *cl;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_debug("metrics: accept: %s", strerror(errno));
			return;
		}
		cl = client_slot(m);
		cl->fd = fd;
		cl->accepted = now;
		cl->deadline = now + METRICS_REQUEST_MS;
		/* The request often came with the connection: answer it now. */
		if (client_io(cl, body, arg, now) < 0)
			client_close(cl);
	}
}

static int is_listener(const struct metrics_server *m, int fd)
{
	for (unsigned i = 0; i < m->nfds; i++)
		if (m->fds[i] == fd)
			return 1;
	return 0;
}

void metrics_serve(struct metrics_server *m, const struct pollfd *p, int n, uint64_t now,
		   char *(*body)(void *arg), void *arg)
{
	for (int i = 0; i < n; i++) {
		if (p[i].revents == 0)
			continue;
		if (is_listener(m, p[i].fd)) {
			accept_clients(m, p[i].fd, now, body, arg);
			continue;
		}
		for (int k = 0; k < METRICS_CLIENTS; k++)
			if (m->clients[k].fd == p[i].fd &&
			    client_io(&m->clients[k], body, arg, now) < 0)
				client_close(&m->clients[k]);
	}
	for (int k = 0; k < METRICS_CLIENTS; k++)
		if (m->clients[k].fd >= 0 && now >= m->clients[k].deadline)
			client_close(&m->clients[k]);
}

static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	return 0;
}

static long count_fds(const char *dir, int self)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return self ? n - 1 : n; /* our own count includes the directory's descriptor */
}

int metrics_proc_read(pid_t pid, struct metrics_proc_sample *out)
{
	char base[32], path[48], buf[1024];
	int rc;

	if (pid == 0)
		snprintf(base, sizeof(base), "/proc/self");
	else
		snprintf(base, sizeof(base), "/proc/%d", (int)pid);
	snprintf(path, sizeof(path), "%s/stat", base);
	if ((rc = read_small(path, buf, sizeof(buf))) < 0 ||
	    (rc = metrics_parse_stat(buf, &out->ticks, &out->child_ticks)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/statm", base);
	if ((rc = read_small(path, buf, sizeof(buf))) < 0 ||
	    (rc = metrics_parse_statm(buf, &out->pages)) < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/fd", base);
	out->fds = count_fds(path, pid == 0);
	return 0;
}
