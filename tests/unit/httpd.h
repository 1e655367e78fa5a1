/*
 * A tiny HTTP/1.1 server for unit tests of the HTTP client and the modules
 * above it: plain TCP on 127.0.0.1, a thread per connection, keep-alive,
 * Content-Length and chunked request bodies, and a handler callback that
 * scripts each answer (status, headers, body, delay, dropped connection).
 */
#ifndef ATREST_TEST_HTTPD_H
#define ATREST_TEST_HTTPD_H

#include <stddef.h>

typedef struct th_http_req {
	char method[16];
	char target[2048];  /* path and query */
	char headers[8192]; /* "Name: value\r\n" lines as received */
	char *body;
	size_t body_len;
	int conn; /* connection number, from 1 */
} th_http_req;

typedef struct th_http_resp {
	int status;         /* 0: 200 */
	char headers[2048]; /* extra "Name: value\r\n" lines */
	char body[65536];
	size_t body_len; /* 0: strlen(body) */
	size_t big;      /* send this many 'x' bytes as the body instead */
	int delay_ms;    /* wait before answering */
	int drop;        /* close the connection without answering */
	char *heap;      /* a malloc'd body of body_len bytes instead (freed) */
	size_t cut;      /* close after this many body bytes (0: send all) */
} th_http_resp;

typedef void (*th_httpd_fn)(const th_http_req *req, th_http_resp *resp, void *arg);

typedef struct th_httpd th_httpd;

/* Start on a free port; the handler runs on connection threads. */
th_httpd *th_httpd_start(th_httpd_fn fn, void *arg);
int th_httpd_port(const th_httpd *d);
/* "http://127.0.0.1:PORT" + path. */
void th_httpd_url(char *out, size_t cap, const th_httpd *d, const char *path);
/* Requests answered so far, connections accepted so far. */
int th_httpd_requests(th_httpd *d);
int th_httpd_connections(th_httpd *d);
void th_httpd_stop(th_httpd *d);
/* The value of a header of a request, or NULL (copied into out). */
const char *th_http_header(
	const th_http_req *req, const char *name, char *out, size_t cap);

#endif
