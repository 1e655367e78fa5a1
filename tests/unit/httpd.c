/*
 * The unit tests' HTTP/1.1 server (httpd.h).  Test-only code: simple,
 * strict enough for the client under test, never exposed beyond loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "httpd.h"

#define MAX_CONNS 256

struct th_httpd {
	int lfd, port;
	th_httpd_fn fn;
	void *arg;
	pthread_t accept_thread;
	pthread_mutex_t mu;
	pthread_t threads[MAX_CONNS];
	int fds[MAX_CONNS];
	int nconn, nreq, stopping;
};

struct conn {
	th_httpd *d;
	int fd, no;
};

/* Read until the buffer holds "\r\n\r\n"; returns the header length or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap, size_t *have)
{
	for (;;) {
		char *end = NULL;
		ssize_t n;

		if (*have >= 4)
			end = memmem(buf, *have, "\r\n\r\n", 4);
		if (end)
			return end - buf + 4;
		if (*have >= cap)
			return -1;
		n = read(fd, buf + *have, cap - *have);
		if (n <= 0)
			return -1;
		*have += (size_t)n;
	}
}

/* Exactly n more bytes into out, first from the leftover buffer. */
static int read_exact(int fd, char *buf, size_t *have, size_t *off, char *out, size_t n)
{
	size_t got = 0;

	while (got < n) {
		if (*off < *have) {
			size_t k = *have - *off < n - got ? *have - *off : n - got;
			memcpy(out + got, buf + *off, k);
			*off += k;
			got += k;
			continue;
		}
		ssize_t r = read(fd, out + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* One line ending in CRLF from the buffered stream. */
static int read_line(int fd, char *buf, size_t *have, size_t *off, char *line, size_t cap)
{
	size_t k = 0;

	for (;;) {
		char c;
		if (read_exact(fd, buf, have, off, &c, 1) < 0 || k + 1 >= cap)
			return -1;
		line[k++] = c;
		if (k >= 2 && line[k - 2] == '\r' && line[k - 1] == '\n') {
			line[k - 2] = '\0';
			return 0;
		}
	}
}

static int read_chunked(int fd, char *buf, size_t *have, size_t *off, th_http_req *r)
{
	char line[64];

	for (;;) {
		size_t n;
		if (read_line(fd, buf, have, off, line, sizeof(line)) < 0)
			return -1;
		n = strtoul(line, NULL, 16);
		if (n == 0)
			return read_line(fd, buf, have, off, line, sizeof(line));
		r->body = realloc(r->body, r->body_len + n + 1);
		if (read_exact(fd, buf, have, off, r->body + r->body_len, n) < 0)
			return -1;
		r->body_len += n;
		if (read_line(fd, buf, have, off, line, sizeof(line)) < 0)
			return -1;
	}
}

const char *th_http_header(
	const th_http_req *req, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);

	for (const char *p = req->headers; *p;) {
		const char *e = strstr(p, "\r\n");
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			snprintf(out, cap, "%.*s", (int)(p + len - v), v);
			return out;
		}
		p += len + (e ? 2 : 0);
	}
	return NULL;
}

/* Parse one request from the connection; 0, or -1 at end or on error. */
static int read_request(int fd, char *buf, size_t cap, size_t *have, th_http_req *r)
{
	ssize_t head = read_head(fd, buf, cap, have);
	size_t off, cl = 0;
	char v[64], *sp;

	if (head < 0)
		return -1;
	sp = memchr(buf, ' ', (size_t)head);
	if (!sp)
		return -1;
	snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp - buf), buf);
	snprintf(r->target, sizeof(r->target), "%.*s", (int)strcspn(sp + 1, " "), sp + 1);
	off = strstr(buf, "\r\n") - buf + 2;
	snprintf(r->headers, sizeof(r->headers), "%.*s", (int)((size_t)head - off - 2),
		buf + off);
	off = (size_t)head;
	if (th_http_header(r, "Transfer-Encoding", v, sizeof(v)) &&
		strcasecmp(v, "chunked") == 0) {
		if (read_chunked(fd, buf, have, &off, r) < 0)
			return -1;
	} else if (th_http_header(r, "Content-Length", v, sizeof(v))) {
		cl = strtoul(v, NULL, 10);
		r->body = malloc(cl + 1);
		if (read_exact(fd, buf, have, &off, r->body, cl) < 0)
			return -1;
		r->body_len = cl;
	}
	if (!r->body)
		r->body = calloc(1, 1);
	else
		r->body[r->body_len] = '\0';
	memmove(buf, buf + off, *have - off);
	*have -= off;
	return 0;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		p += k;
		n -= (size_t)k;
	}
}

static int answer(int fd, const th_http_resp *a, const th_http_req *r)
{
	char head[4096];
	size_t len = a->big ? a->big : a->body_len ? a->body_len : strlen(a->body);
	int n;

	if (a->delay_ms) {
		struct timespec ts = {
			a->delay_ms / 1000, (a->delay_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (a->drop)
		return -1;
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n",
		a->status ? a->status : 200, len, a->headers);
	send_all(fd, head, (size_t)n);
	if (strcmp(r->method, "HEAD") == 0)
		return 0;
	if (a->big) {
		char *x = malloc(a->big);
		memset(x, 'x', a->big);
		send_all(fd, x, a->big);
		free(x);
	} else {
		send_all(fd, a->heap ? a->heap : a->body,
			a->cut && a->cut < len ? a->cut : len);
	}
	return a->cut && a->cut < len ? -1 : 0;
}

static void *conn_main(void *p)
{
	struct conn *c = p;
	size_t cap = 1 << 16, have = 0;
	char *buf = malloc(cap);

	for (;;) {
		th_http_req *r = calloc(1, sizeof(*r));
		th_http_resp *a = calloc(1, sizeof(*a));
		int rc = read_request(c->fd, buf, cap, &have, r);

		if (rc == 0) {
			r->conn = c->no;
			c->d->fn(r, a, c->d->arg);
			pthread_mutex_lock(&c->d->mu);
			c->d->nreq++;
			pthread_mutex_unlock(&c->d->mu);
			rc = answer(c->fd, a, r);
		}
		free(r->body);
		free(r);
		free(a->heap);
		free(a);
		if (rc < 0)
			break;
	}
	shutdown(c->fd, SHUT_RDWR);
	free(buf);
	free(c);
	return NULL;
}

static void *accept_main(void *p)
{
	th_httpd *d = p;

	for (;;) {
		struct pollfd pf = {d->lfd, POLLIN, 0};
		struct conn *c;
		int fd;

		if (poll(&pf, 1, 50) <= 0) {
			if (__atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE))
				return NULL;
			continue;
		}
		fd = accept(d->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&d->mu);
		if (d->nconn >= MAX_CONNS || d->stopping) {
			pthread_mutex_unlock(&d->mu);
			close(fd);
			continue;
		}
		c = malloc(sizeof(*c));
		c->d = d;
		c->fd = fd;
		c->no = d->nconn + 1;
		d->fds[d->nconn] = fd;
		pthread_create(&d->threads[d->nconn], NULL, conn_main, c);
		d->nconn++;
		pthread_mutex_unlock(&d->mu);
	}
}

th_httpd *th_httpd_start(th_httpd_fn fn, void *arg)
{
	th_httpd *d = calloc(1, sizeof(*d));
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t sl = sizeof(sa);

	assert_non_null(d);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(d->lfd >= 0);
	assert_int_equal(bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(d->lfd, 64), 0);
	assert_int_equal(getsockname(d->lfd, (struct sockaddr *)&sa, &sl), 0);
	d->port = ntohs(sa.sin_port);
	d->fn = fn;
	d->arg = arg;
	pthread_mutex_init(&d->mu, NULL);
	assert_int_equal(pthread_create(&d->accept_thread, NULL, accept_main, d), 0);
	return d;
}

int th_httpd_port(const th_httpd *d)
{
	return d->port;
}

void th_httpd_url(char *out, size_t cap, const th_httpd *d, const char *path)
{
	snprintf(out, cap, "http://127.0.0.1:%d%s", d->port, path);
}

int th_httpd_requests(th_httpd *d)
{
	int n;

	pthread_mutex_lock(&d->mu);
	n = d->nreq;
	pthread_mutex_unlock(&d->mu);
	return n;
}

int th_httpd_connections(th_httpd *d)
{
	int n;

	pthread_mutex_lock(&d->mu);
	n = d->nconn;
	pthread_mutex_unlock(&d->mu);
	return n;
}

void th_httpd_stop(th_httpd *d)
{
	__atomic_store_n(&d->stopping, 1, __ATOMIC_RELEASE);
	pthread_join(d->accept_thread, NULL);
	close(d->lfd);
	for (int i = 0; i < d->nconn; i++)
		shutdown(d->fds[i], SHUT_RDWR);
	for (int i = 0; i < d->nconn; i++) {
		pthread_join(d->threads[i], NULL);
		close(d->fds[i]);
	}
	pthread_mutex_destroy(&d->mu);
	free(d);
}
