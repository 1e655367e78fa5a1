/*
 * The HTTP layer of atrest server, shared by every API it serves (the REST
 * API now, the S3-compatible API on its own listener next): listeners on
 * libmicrohttpd with limits and timeouts, routing by method and path, header
 * access, streamed bodies both ways, a per-request principal, and errors
 * rendered by each API in its own format.
 */
#ifndef ATREST_SERVER_HTTP_H
#define ATREST_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "atrest/atrest.h"

/* Methods, as bits so that a route can accept several. */
enum http_method {
	HTTP_GET = 1,
	HTTP_HEAD = 2,
	HTTP_PUT = 4,
	HTTP_POST = 8,
	HTTP_DELETE = 16,
	HTTP_OTHER = 32
};

/* Who sent a request, once the API authenticated it. */
struct http_principal {
	char key_id[64]; /* the credential's non-secret id; "" when none */
	char tenant[ATREST_TENANT_MAX + 1];
	int role; /* the API's own scale; 0: unauthenticated */
};

/* One decoded query parameter (?key=value; a bare ?key has value ""). */
struct http_param {
	char *key;
	char *value;
};

#define HTTP_PARAMS_MAX 32

/*
 * A request target split and percent-decoded (target.c): path without the
 * query, parameters in order.  A path or parameter holding an invalid
 * escape or a NUL byte is refused, so a name can never be cut short.
 */
struct http_target {
	char *path;
	struct http_param params[HTTP_PARAMS_MAX];
	size_t nparams;
};

/*
 * Parse raw (origin form "/p?q", or absolute form "http://h/p?q").
 * 0, or -1 with *why set to a static reason.  Free with http_target_free.
 */
int http_target_parse(struct http_target *out, const char *raw, const char **why);
void http_target_free(struct http_target *t);
/* The decoded value of parameter key, or NULL. */
const char *http_target_param(const struct http_target *t, const char *key);

/*
 * A "Range: bytes=..." value against an object of size bytes (range.c).
 * Only a single range is served; HTTP_RANGE_IGNORE means serve the whole
 * object (a syntax this parser does not take, or several ranges, which
 * RFC 9110 allows a server to ignore).
 */
enum http_range_result { HTTP_RANGE_OK, HTTP_RANGE_IGNORE, HTTP_RANGE_UNSATISFIABLE };
int http_range_parse(const char *value, uint64_t size, uint64_t *first, uint64_t *len);

struct http_req;
struct http_listener;

/*
 * A route handler, called once the request head is in, the route matched
 * and the API authorized it.  It must either queue a response (http_respond
 * or http_error), or start a request body with http_body_begin.
 */
typedef void (*http_handler)(struct http_req *req);

struct http_route {
	/* An exact path, or a prefix when it ends in '*' (the rest of the path
	 * is then in req->rest). */
	const char *path;
	unsigned methods;  /* enum http_method bits */
	const char *label; /* for metrics: a fixed name, never a user's path */
	int need;          /* the API's role needed; 0: no authentication */
	http_handler handler;
};

/* An API served on a listener. */
struct http_api {
	const char *name; /* "rest", "s3": a metrics label */
	/* Routes, ended by an entry with path NULL. */
	const struct http_route *routes;
	/*
	 * Optional: pick the route for req (S3: by bucket, key and query
	 * subresources).  Return NULL after http_error.  Without it the table
	 * is searched: an unknown path is 404, a known one with another
	 * method 405.
	 */
	const struct http_route *(*route)(struct http_req *req);
	/*
	 * Fill req->principal from the request's credentials and check that
	 * its role reaches need; 0, or -1 after http_error (401, 403).
	 */
	int (*authenticate)(struct http_req *req, int need);
	/*
	 * An error response in the API's format (JSON, S3 XML): body and
	 * Content-Type; the HTTP layer adds Allow (405) and Retry-After (503)
	 * and queues it.  NULL when out of memory.
	 */
	struct MHD_Response *(*render_error)(struct http_req *req, unsigned status,
		const char *code, const char *message);
	void *ctx; /* the API's state, for handlers: req->api->ctx */
};

/*
 * A request body consumer, set by a handler with http_body_begin.  write
 * gets the body as it arrives; finish is called once it all arrived and
 * queues the response; abort when the request ends otherwise (client gone,
 * timeout, shutdown, or a failure already answered).
 */
struct http_body_sink {
	/* 0, or -1 after http_fail (the rest of the body is then discarded). */
	int (*write)(struct http_req *req, const void *buf, size_t len);
	void (*finish)(struct http_req *req);
	void (*abort)(struct http_req *req);
};

struct http_req {
	struct MHD_Connection *conn;
	struct http_listener *listener;
	const struct http_api *api;
	const struct http_route *route; /* NULL until routed */
	enum http_method method;
	const char *method_name;
	struct http_target target;
	char *raw_target; /* as sent (SigV4 signs it); NULL when out of memory */
	const char *rest; /* what a prefix route's '*' matched (decoded) */
	struct http_principal principal;
	int64_t start_ns; /* monotonic */
	unsigned status;  /* the status queued, for logs and metrics */
	uint64_t bytes_in, bytes_out;
	/* Body. */
	const struct http_body_sink *sink;
	uint64_t body_limit;  /* bytes; 0: none */
	int body_state;       /* BODY_* in http.c */
	unsigned fail_status; /* set by http_fail: answered after the body */
	char fail_code[32];
	char fail_msg[256];
	/* The handler's state and how to free it (after abort or finish). */
	void *app;
	void (*app_free)(void *app);
	/*
	 * A reference the request holds (its tenant's store handle): released
	 * once neither the request nor its response needs it, after app_free
	 * or, for a response streamed from a reader, after the reader closed.
	 */
	void *hold;
	void (*hold_release)(void *hold);
	int deferred; /* no body: handled when the request is complete */
	int responded;
};

/* The value of request header name (case-insensitive), or NULL. */
const char *http_header(struct http_req *req, const char *name);
/* Call cb for every request header; a non-zero return stops. */
typedef int (*http_header_cb)(const char *name, const char *value, void *payload);
void http_headers_each(struct http_req *req, http_header_cb cb, void *payload);

/* A response with headers, queued by http_respond. */
/* Body from memory (copied). */
struct MHD_Response *http_response_buffer(const void *buf, size_t len);
int http_response_header(struct MHD_Response *resp, const char *name, const char *value);
/* Queue resp (and drop our reference); records the status. */
void http_respond(struct http_req *req, unsigned status, struct MHD_Response *resp);
/* A small body of a content type. */
void http_respond_text(struct http_req *req, unsigned status, const char *type,
	const char *body, size_t len);
/* An error through the API's renderer; the printf-style message is shown
 * to the client, so it must not hold paths, secrets or other tenants. */
void http_error(struct http_req *req, unsigned status, const char *code, const char *fmt,
	...) __attribute__((format(printf, 4, 5)));
/* The same with extra response headers (WWW-Authenticate, Content-Range). */
struct http_header_kv;
void http_error_with(struct http_req *req, unsigned status, const char *code,
	const struct http_header_kv *extra, size_t nextra, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/*
 * Accept a body of at most limit bytes (0: no limit) into sink.  A
 * Content-Length over the limit is answered 413 at once, before any byte
 * is read; an unknown-length body passing it fails as soon as it does.
 */
void http_body_begin(
	struct http_req *req, const struct http_body_sink *sink, uint64_t limit);
/*
 * From sink->write or a handler: the request failed with status; the rest
 * of the body is discarded (for a few seconds at most, then the connection
 * is cut) and the error is answered once the body ended.
 */
int http_fail(struct http_req *req, unsigned status, const char *code, const char *fmt,
	...) __attribute__((format(printf, 4, 5)));

/* A response header, for lists of them. */
struct http_header_kv {
	const char *name;
	const char *value;
};

/* The status and error code that answer a library error code. */
struct http_status {
	unsigned status;
	const char *code;
};
struct http_status http_status_of(int atrest_code);

/* Limits and timeouts of a listener. */
struct http_limits {
	unsigned max_connections; /* open connections */
	unsigned max_per_ip;      /* 0: no per-address limit */
	unsigned idle_timeout;    /* seconds without progress */
	unsigned header_timeout;  /* seconds for a request head to arrive */
	unsigned min_body_rate;   /* bytes/s a body must average after 30 s */
	unsigned overflow_grace;  /* seconds to discard after a failed body */
	size_t connection_memory; /* libmicrohttpd's per-connection pool */
	size_t thread_stack;      /* bytes of each connection thread's stack */
};

struct srv_tls;

struct http_listener_config {
	const char *addr;    /* numeric IPv4 or IPv6 */
	uint16_t port;       /* 0: any free port (see http_listener_port) */
	struct srv_tls *tls; /* NULL: plain HTTP */
	const struct http_limits *limits;
	const struct http_api *api;
};

/* 0, or -1 with the reason printed on stderr. */
int http_listener_start(
	struct http_listener **out, const struct http_listener_config *cfg);
uint16_t http_listener_port(const struct http_listener *l);
/* Stop accepting; requests in flight go on. */
void http_listener_quiesce(struct http_listener *l);
/* Requests being served now. */
unsigned http_listener_busy(struct http_listener *l);
/* Close connections that are too slow (called about every 250 ms). */
void http_listener_sweep(struct http_listener *l);
/* Close everything and free l. */
void http_listener_stop(struct http_listener *l);
/* Make responses of every later request close their connection (drain). */
void http_listener_draining(struct http_listener *l);

/* tls.c: keep ref (released by srv_tls_conn_closed) until mc closes. */
void http_conn_hold_tls(struct MHD_Connection *mc, void *ref);

/* Monotonic nanoseconds (events.c). */
int64_t http_now_ns(void);

#endif
