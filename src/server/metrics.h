/*
 * The server's own metrics (requests by API, route, method and status, a
 * latency histogram, requests in flight, connections), rendered as
 * Prometheus text with any sections registered after them.
 */
#ifndef ATREST_SERVER_METRICS_H
#define ATREST_SERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* A growing text buffer; oom is set (and appends stop) when memory runs out. */
struct srv_buf {
	char *p;
	size_t len, cap;
	int oom;
};
void srv_buf_printf(struct srv_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void srv_buf_free(struct srv_buf *b);

void srv_metrics_connection(int delta);
/* A connection closed by the server for reason (header_timeout, ...). */
void srv_metrics_cut(const char *reason);
void srv_metrics_request_begin(void);
void srv_metrics_request_end(const char *api, const char *route, const char *method,
	unsigned status, double seconds, uint64_t bytes_in, uint64_t bytes_out);
void srv_metrics_auth_failure(const char *api, const char *reason);
/* Counted events: "apikeys_reload", "tls_reload" with result ok/failed. */
void srv_metrics_reload(const char *what, int ok);

/*
 * Another section of /metrics (the library's metrics, say): append
 * Prometheus text to b; 0 or -1.  At most 8 sections.
 */
typedef int (*srv_metrics_section)(struct srv_buf *b, void *payload);
int srv_metrics_add_section(srv_metrics_section fn, void *payload);
/* Forget every section (before what they render is freed). */
void srv_metrics_clear_sections(void);

/* Everything as Prometheus text (version 0.0.4); 0 or -1 (no memory). */
int srv_metrics_render(struct srv_buf *out);

#endif
