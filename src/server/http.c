/*
 * Listeners on libmicrohttpd, one thread per connection (library calls
 * block: fsync at commit), bounded by a connection limit; a sweep closes
 * connections whose request head or body is too slow.  Requests are routed
 * here and handed to the API's handlers; bodies flow to their sinks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "events.h"
#include "http.h"
#include "metrics.h"
#include "tls.h"

/* Where a connection is, for the sweep. */
enum { CONN_WAIT_HEAD, CONN_BUSY, CONN_BODY, CONN_OVERFLOW };
/* Where a request body is. */
enum { BODY_NONE, BODY_OPEN, BODY_DISCARD, BODY_DONE };

/* A body must average min_body_rate once it has taken this long. */
#define BODY_RATE_AFTER_NS (30 * 1000000000LL)

struct http_conn {
	struct http_listener *l;
	int fd;
	int state;
	int64_t since; /* entering the state, ns */
	uint64_t body_bytes;
	int cut; /* shut down by the sweep */
	void *tls_ref;
	struct http_conn *prev, *next;
};

struct http_listener {
	struct MHD_Daemon *d;
	const struct http_api *api;
	struct http_limits lim;
	pthread_mutex_t mu; /* conns, states, busy */
	struct http_conn *conns;
	unsigned busy;
	int draining;
	uint16_t port;
};

static struct http_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void conn_state(struct http_req *req, int state)
{
	struct http_conn *c = conn_of(req->conn);

	if (!c)
		return;
	pthread_mutex_lock(&req->listener->mu);
	c->state = state;
	c->since = http_now_ns();
	c->body_bytes = 0;
	pthread_mutex_unlock(&req->listener->mu);
}

void http_conn_hold_tls(struct MHD_Connection *mc, void *ref)
{
	struct http_conn *c = conn_of(mc);

	if (c && !c->tls_ref)
		c->tls_ref = ref;
	else
		srv_tls_conn_closed(ref);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
	enum MHD_ConnectionNotificationCode code)
{
	struct http_listener *l = cls;
	struct http_conn *c = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);

		if (!(c = calloc(1, sizeof(*c))))
			return;
		c->l = l;
		c->fd = ci ? ci->connect_fd : -1;
		c->since = http_now_ns();
		pthread_mutex_lock(&l->mu);
		c->next = l->conns;
		if (l->conns)
			l->conns->prev = c;
		l->conns = c;
		pthread_mutex_unlock(&l->mu);
		*socket_context = c;
		srv_metrics_connection(1);
		return;
	}
	if (!c)
		return;
	/* Unlinked before libmicrohttpd closes the socket: the sweep never
	 * shuts down a descriptor number that was reused. */
	pthread_mutex_lock(&l->mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&l->mu);
	if (c->tls_ref)
		srv_tls_conn_closed(c->tls_ref);
	free(c);
	*socket_context = NULL;
	srv_metrics_connection(-1);
}

/* The first thing known of a request: its raw target, before any decoding. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct http_listener *l = cls;
	struct http_req *req = calloc(1, sizeof(*req));
	const char *why;

	if (!req)
		return NULL;
	req->conn = mc;
	req->listener = l;
	req->api = l->api;
	req->start_ns = http_now_ns();
	req->body_state = BODY_NONE;
	req->raw_target = strdup(uri ? uri : "");
	if (http_target_parse(&req->target, uri ? uri : "", &why) < 0)
		snprintf(req->fail_msg, sizeof(req->fail_msg), "%s", why);
	pthread_mutex_lock(&l->mu);
	l->busy++;
	pthread_mutex_unlock(&l->mu);
	srv_metrics_request_begin();
	return req;
}

static const char *method_label(enum http_method m)
{
	switch (m) {
	case HTTP_GET:
		return "GET";
	case HTTP_HEAD:
		return "HEAD";
	case HTTP_PUT:
		return "PUT";
	case HTTP_POST:
		return "POST";
	case HTTP_DELETE:
		return "DELETE";
	default:
		return "OTHER";
	}
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
	enum MHD_RequestTerminationCode toe)
{
	struct http_listener *l = cls;
	struct http_req *req = *con_cls;

	if (!req)
		return;
	if (req->sink && req->body_state != BODY_DONE && req->sink->abort)
		req->sink->abort(req);
	if (req->app_free)
		req->app_free(req->app);
	if (req->hold_release)
		req->hold_release(req->hold);
	if (!req->status) {
		/* Answered by the library itself (400, 431) or not at all (0). */
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_HTTP_STATUS);

		req->status = ci ? ci->http_status : 0;
	}
	srv_metrics_request_end(l->api->name, req->route ? req->route->label : "none",
		req->method_name ? method_label(req->method) : "none", req->status,
		(double)(http_now_ns() - req->start_ns) / 1e9, req->bytes_in,
		req->bytes_out);
	srv_principal_set(NULL);
	http_target_free(&req->target);
	free(req->raw_target);
	conn_state(req, CONN_WAIT_HEAD);
	pthread_mutex_lock(&l->mu);
	l->busy--;
	pthread_mutex_unlock(&l->mu);
	free(req);
	*con_cls = NULL;
}

static enum http_method method_of(const char *m)
{
	static const struct {
		const char *name;
		enum http_method m;
	} t[] = {{"GET", HTTP_GET}, {"HEAD", HTTP_HEAD}, {"PUT", HTTP_PUT},
		{"POST", HTTP_POST}, {"DELETE", HTTP_DELETE}};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(m, t[i].name))
			return t[i].m;
	return HTTP_OTHER;
}

static int route_matches(const struct http_route *r, const char *path, const char **rest)
{
	size_t n = strlen(r->path);

	if (n && r->path[n - 1] == '*') {
		if (strncmp(path, r->path, n - 1) != 0)
			return 0;
		*rest = path + n - 1;
		return 1;
	}
	*rest = NULL;
	return !strcmp(path, r->path);
}

static void allow_list(char *out, size_t cap, unsigned methods)
{
	static const char *names[] = {"GET", "HEAD", "PUT", "POST", "DELETE"};
	size_t i, n = 0;

	out[0] = '\0';
	for (i = 0; i < 5; i++)
		if (methods & (1u << i))
			n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s",
				n ? ", " : "", names[i]);
}

static void respond_error_with(struct http_req *req, unsigned status, const char *code,
	const char *msg, const struct http_header_kv *extra, size_t nextra)
{
	struct MHD_Response *resp = req->api->render_error(req, status, code, msg);
	size_t i;

	if (resp && status == 503)
		http_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "5");
	for (i = 0; resp && i < nextra; i++)
		http_response_header(resp, extra[i].name, extra[i].value);
	http_respond(req, status, resp);
}

static void respond_error(struct http_req *req, unsigned status, const char *code,
	const char *msg, const char *allow)
{
	struct http_header_kv h = {MHD_HTTP_HEADER_ALLOW, allow};

	respond_error_with(req, status, code, msg, &h, allow ? 1 : 0);
}

/* The table's route for req; NULL after answering 404 or 405. */
static const struct http_route *table_route(struct http_req *req)
{
	const struct http_route *r;
	unsigned allowed = 0;
	const char *rest;
	char allow[64];

	for (r = req->api->routes; r && r->path; r++) {
		if (!route_matches(r, req->target.path, &rest))
			continue;
		if (r->methods & req->method) {
			req->rest = rest;
			return r;
		}
		allowed |= r->methods;
	}
	if (!allowed) {
		http_error(req, 404, "not_found", "no such route");
		return NULL;
	}
	allow_list(allow, sizeof(allow), allowed);
	respond_error(req, 405, "method_not_allowed", "method not allowed on this route",
		allow);
	return NULL;
}

static void head_phase(struct http_req *req, const char *method)
{
	const struct http_route *r;

	req->method_name = method;
	req->method = method_of(method);
	conn_state(req, CONN_BUSY);
	if (!req->target.path) {
		http_error(req, 400, "bad_request", "%s", req->fail_msg);
		return;
	}
	r = req->api->route ? req->api->route(req) : table_route(req);
	if (!r)
		return;
	req->route = r;
	if (r->need && req->api->authenticate(req, r->need) < 0)
		return;
	srv_principal_set(&req->principal);
	r->handler(req);
	if (!req->responded && !req->sink)
		http_error(req, 500, "internal_error", "the handler gave no response");
}

/* Past the limit, or failed: drop the rest of the body for a while. */
static void body_discard(struct http_req *req)
{
	req->body_state = BODY_DISCARD;
	if (req->sink && req->sink->abort)
		req->sink->abort(req);
	req->sink = NULL;
	conn_state(req, CONN_OVERFLOW);
}

static void body_data(struct http_req *req, const char *data, size_t n)
{
	struct http_conn *c = conn_of(req->conn);

	req->bytes_in += n;
	if (c) {
		pthread_mutex_lock(&req->listener->mu);
		c->body_bytes += n;
		pthread_mutex_unlock(&req->listener->mu);
	}
	if (req->body_state != BODY_OPEN)
		return;
	if (req->body_limit && req->bytes_in > req->body_limit) {
		http_fail(req, 413, "too_large", "the body is larger than %llu bytes",
			(unsigned long long)req->body_limit);
		return;
	}
	if (req->sink->write(req, data, n) < 0 && req->body_state == BODY_OPEN)
		http_fail(req, 500, "internal_error", "the body could not be stored");
}

static void body_end(struct http_req *req)
{
	if (req->body_state == BODY_DISCARD) {
		respond_error(req, req->fail_status, req->fail_code, req->fail_msg, NULL);
		return;
	}
	req->body_state = BODY_DONE;
	conn_state(req, CONN_BUSY);
	req->sink->finish(req);
	if (!req->responded)
		http_error(req, 500, "internal_error", "the handler gave no response");
}

static int has_body(struct http_req *req)
{
	const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
		(cl && strtoull(cl, NULL, 10) > 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
	const char *method, const char *version, const char *upload_data,
	size_t *upload_data_size, void **con_cls)
{
	struct http_req *req = *con_cls;

	if (!req)
		return MHD_NO; /* out of memory when the request began */
	if (!req->method_name) {
		/*
		 * A response queued before the body was read makes the library
		 * close the connection afterwards: right for a refused upload,
		 * wasteful for a GET.  So a request without a body is handled
		 * at the second call, when the library knows it is complete.
		 */
		if (!req->deferred && !has_body(req)) {
			req->deferred = 1;
			return MHD_YES;
		}
		head_phase(req, method);
		if (req->deferred && req->sink && !req->responded)
			body_end(req); /* an empty body: already complete */
		return MHD_YES;
	}
	if (*upload_data_size) {
		body_data(req, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!req->responded)
		body_end(req);
	return MHD_YES;
}

const char *http_header(struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

struct each_ctx {
	http_header_cb cb;
	void *payload;
};

static enum MHD_Result each_header(
	void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct each_ctx *e = cls;

	return e->cb(key, value ? value : "", e->payload) ? MHD_NO : MHD_YES;
}

void http_headers_each(struct http_req *req, http_header_cb cb, void *payload)
{
	struct each_ctx e = {cb, payload};

	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, each_header, &e);
}

struct MHD_Response *http_response_buffer(const void *buf, size_t len)
{
	return MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_MUST_COPY);
}

int http_response_header(struct MHD_Response *resp, const char *name, const char *value)
{
	return MHD_add_response_header(resp, name, value) == MHD_YES ? 0 : -1;
}

void http_respond(struct http_req *req, unsigned status, struct MHD_Response *resp)
{
	if (!resp) {
		/* Out of memory: closing the connection is all that is left. */
		req->responded = 1;
		req->status = 500;
		return;
	}
	if (req->listener->draining)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (MHD_queue_response(req->conn, status, resp) == MHD_YES) {
		req->responded = 1;
		req->status = status;
	}
	MHD_destroy_response(resp);
}

void http_respond_text(struct http_req *req, unsigned status, const char *type,
	const char *body, size_t len)
{
	struct MHD_Response *resp = http_response_buffer(body, len);

	if (resp)
		http_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	req->bytes_out += len;
	http_respond(req, status, resp);
}

void http_error(
	struct http_req *req, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	respond_error(req, status, code, msg, NULL);
}

void http_error_with(struct http_req *req, unsigned status, const char *code,
	const struct http_header_kv *extra, size_t nextra, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	respond_error_with(req, status, code, msg, extra, nextra);
}

int http_fail(
	struct http_req *req, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req->fail_msg, sizeof(req->fail_msg), fmt, ap);
	va_end(ap);
	snprintf(req->fail_code, sizeof(req->fail_code), "%s", code);
	req->fail_status = status;
	if (req->body_state == BODY_OPEN)
		body_discard(req);
	else if (!req->responded)
		respond_error(req, status, code, req->fail_msg, NULL);
	return -1;
}

void http_body_begin(
	struct http_req *req, const struct http_body_sink *sink, uint64_t limit)
{
	const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);

	req->body_limit = limit;
	if (limit && cl && strtoull(cl, NULL, 10) > limit) {
		/* Answered before the body is read; the library then closes
		 * the connection instead of reading it. */
		if (sink->abort)
			sink->abort(req);
		http_error(req, 413, "too_large", "the body is larger than %llu bytes",
			(unsigned long long)limit);
		return;
	}
	req->sink = sink;
	req->body_state = BODY_OPEN;
	conn_state(req, CONN_BODY);
}

/* Cut one connection: the client sees it closed. */
static void cut(struct http_conn *c, const char *why)
{
	if (c->cut || c->fd < 0)
		return;
	c->cut = 1;
	shutdown(c->fd, SHUT_RDWR);
	srv_metrics_cut(why);
}

void http_listener_sweep(struct http_listener *l)
{
	int64_t now = http_now_ns(), head = (int64_t)l->lim.header_timeout * 1000000000LL,
		grace = (int64_t)l->lim.overflow_grace * 1000000000LL;
	struct http_conn *c;

	pthread_mutex_lock(&l->mu);
	for (c = l->conns; c; c = c->next) {
		int64_t age = now - c->since;

		if (c->state == CONN_WAIT_HEAD && age > head)
			cut(c, "header_timeout");
		else if (c->state == CONN_OVERFLOW && age > grace)
			cut(c, "body_rejected");
		else if (c->state == CONN_BODY && age > BODY_RATE_AFTER_NS &&
			c->body_bytes < (uint64_t)l->lim.min_body_rate *
					(uint64_t)(age / 1000000000LL))
			cut(c, "slow_body");
	}
	pthread_mutex_unlock(&l->mu);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	/* The library's messages are about clients' mistakes (bad requests,
	 * failed handshakes): counted by their effects, not logged. */
	(void)cls;
	(void)fmt;
	(void)ap;
}

/* A numeric address and port as a socket address; 0 or -1. */
static int sock_addr(
	struct sockaddr_storage *ss, socklen_t *len, const char *addr, uint16_t port)
{
	struct addrinfo hints, *ai = NULL;
	char ps[8];

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(addr, ps, &hints, &ai) != 0 || !ai)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static size_t unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
	/* Targets are decoded by target.c, from the raw form. */
	return strlen(s);
}

int http_listener_start(
	struct http_listener **out, const struct http_listener_config *cfg)
{
	struct http_listener *l;
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;

	*out = NULL;
	if (sock_addr(&ss, &sl, cfg->addr, cfg->port) < 0) {
		srv_log("cannot listen on '%s': not a numeric IPv4 or IPv6 address",
			cfg->addr);
		return -1;
	}
	if (!(l = calloc(1, sizeof(*l))))
		return -1;
	pthread_mutex_init(&l->mu, NULL);
	l->api = cfg->api;
	l->lim = *cfg->limits;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (cfg->tls)
		flags |= MHD_USE_TLS;
	l->d = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, l,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
		l->lim.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		l->lim.max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, l->lim.idle_timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, l->lim.connection_memory,
		MHD_OPTION_THREAD_STACK_SIZE, l->lim.thread_stack,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_STRICT_FOR_CLIENT, 1,
		MHD_OPTION_SIGPIPE_HANDLED_BY_APP, 1, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
		l, MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, l, MHD_OPTION_NOTIFY_COMPLETED,
		on_completed, l, MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
		cfg->tls ? MHD_OPTION_HTTPS_PRIORITIES : MHD_OPTION_END,
		srv_tls_priority(), MHD_OPTION_HTTPS_CERT_CALLBACK,
		srv_tls_cert_callback(), MHD_OPTION_END);
	if (!l->d) {
		srv_log("cannot listen on %s port %u: %s", cfg->addr, cfg->port,
			errno ? strerror(errno) : "the HTTP library refused");
		pthread_mutex_destroy(&l->mu);
		free(l);
		return -1;
	}
	di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_BIND_PORT);
	l->port = di ? di->port : cfg->port;
	*out = l;
	return 0;
}

uint16_t http_listener_port(const struct http_listener *l)
{
	return l->port;
}

void http_listener_quiesce(struct http_listener *l)
{
	MHD_socket s = MHD_quiesce_daemon(l->d);

	if (s != MHD_INVALID_SOCKET)
		close(s);
}

void http_listener_draining(struct http_listener *l)
{
	l->draining = 1;
}

unsigned http_listener_busy(struct http_listener *l)
{
	unsigned n;

	pthread_mutex_lock(&l->mu);
	n = l->busy;
	pthread_mutex_unlock(&l->mu);
	return n;
}

void http_listener_stop(struct http_listener *l)
{
	if (!l)
		return;
	MHD_stop_daemon(l->d);
	pthread_mutex_destroy(&l->mu);
	free(l);
}
