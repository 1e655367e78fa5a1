/*
 * The libcurl client of http.h: a pool of easy handles per service, TLS
 * verified against the system CAs plus the bundles the environment names,
 * a retry loop with capped exponential backoff and jitter, and error
 * decoding into one line.  libcurl's own global state is set up once.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "http.h"

#define POOL_MAX 16 /* idle easy handles kept (one connection each) */
#define HDRS_MAX 200

struct atrest__http {
	atrest__http_opts o;
	char *service;
	char *ca_env_name;          /* for messages about untrusted certificates */
	STACK_OF(X509) * extra_cas; /* from ATREST_CA_BUNDLE, ca_env, ca_file */
	pthread_mutex_t lock;
	CURL *pool[POOL_MAX];
	int npool;
};

/* ---- headers */

/* Take ownership of a malloc'd line. */
static void hdrs_push(atrest__http_hdrs *h, char *line)
{
	if (!line || h->failed || h->n >= HDRS_MAX) {
		if (line)
			atrest__wipe(line, strlen(line));
		free(line);
		h->failed = 1;
		return;
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 8;
		char **v = realloc(h->v, cap * sizeof(*v));
		if (!v) {
			atrest__wipe(line, strlen(line));
			free(line);
			h->failed = 1;
			return;
		}
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = line;
}

void atrest__http_hdrs_add(atrest__http_hdrs *h, const char *name, const char *fmt, ...)
{
	atrest__buf b = ATREST__BUF_INIT;
	va_list ap;
	char *value = NULL;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n >= 0 && (value = malloc((size_t)n + 1)) != NULL) {
		va_start(ap, fmt);
		vsnprintf(value, (size_t)n + 1, fmt, ap);
		va_end(ap);
		atrest__buf_printf(&b, "%s: %s", name, value);
		atrest__wipe(value, (size_t)n);
		free(value);
	} else {
		b.failed = 1;
	}
	hdrs_push(h, atrest__buf_take(&b));
	atrest__buf_free(&b);
}

void atrest__http_hdrs_add_line(atrest__http_hdrs *h, const char *line)
{
	hdrs_push(h, strdup(line));
}

void atrest__http_hdrs_copy(atrest__http_hdrs *dst, const atrest__http_hdrs *src)
{
	for (size_t i = 0; i < src->n; i++)
		atrest__http_hdrs_add_line(dst, src->v[i]);
	dst->failed |= src->failed;
}

const char *atrest__http_hdrs_get(const atrest__http_hdrs *h, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < h->n; i++)
		if (strncasecmp(h->v[i], name, n) == 0 && h->v[i][n] == ':') {
			const char *v = h->v[i] + n + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
	return NULL;
}

void atrest__http_hdrs_free(atrest__http_hdrs *h)
{
	for (size_t i = 0; i < h->n; i++) {
		atrest__wipe(h->v[i], strlen(h->v[i]));
		free(h->v[i]);
	}
	free(h->v);
	memset(h, 0, sizeof(*h));
}

/* ---- TLS: extra CA bundles added to the system's */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Every certificate of a PEM bundle file; a named variable in messages. */
static int load_bundle(STACK_OF(X509) * out, const char *path, const char *from)
{
	BIO *bio = BIO_new_file(path, "r");
	X509 *x;
	int n = 0;

	if (!bio)
		return atrest__error(ATREST_EINVAL,
			"%s names a CA bundle that cannot be read: %s", from, path);
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(out, x)) {
			X509_free(x);
			BIO_free(bio);
			return atrest__error(ATREST_ERROR, "out of memory");
		}
		n++;
	}
	ERR_clear_error();
	BIO_free(bio);
	ENSURE(n > 0, ATREST_EINVAL, "%s names a file without PEM certificates: %s", from,
		path);
	return 0;
}

static int load_cas(atrest__http *h)
{
	const char *v;

	h->extra_cas = sk_X509_new_null();
	ENSURE(h->extra_cas, ATREST_ERROR, "out of memory");
	if ((v = getenv("ATREST_CA_BUNDLE")) && *v)
		GUARD(load_bundle(h->extra_cas, v, "ATREST_CA_BUNDLE"));
	if (h->o.ca_env && (v = getenv(h->o.ca_env)) && *v)
		GUARD(load_bundle(h->extra_cas, v, h->o.ca_env));
	if (h->o.ca_file && *h->o.ca_file)
		GUARD(load_bundle(h->extra_cas, h->o.ca_file, "the key URI"));
	return 0;
}

/* curl calls this with the SSL_CTX after loading the system CAs. */
static CURLcode add_cas(CURL *c, void *ssl_ctx, void *arg)
{
	atrest__http *h = arg;
	X509_STORE *store = SSL_CTX_get_cert_store(ssl_ctx);

	(void)c;
	for (int i = 0; i < sk_X509_num(h->extra_cas); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(h->extra_cas, i)) != 1) {
			ERR_clear_error(); /* already there */
		}
	return CURLE_OK;
}

/* ---- the client */

static long env_ms(const char *name, long def)
{
	const char *v = getenv(name);
	char *end;
	double s;

	if (!v || !*v)
		return def;
	errno = 0;
	s = strtod(v, &end);
	if (errno || *end || s < 0.1 || s > 3600)
		return def;
	return (long)(s * 1000);
}

static void set_defaults(atrest__http_opts *o)
{
	o->connect_ms = o->connect_ms > 0 ? o->connect_ms : 3000;
	o->attempt_ms = o->attempt_ms > 0 ? o->attempt_ms : 10000;
	o->total_ms = o->total_ms > 0 ? o->total_ms : env_ms("ATREST_KMS_TIMEOUT", 10000);
	o->max_attempts = o->max_attempts > 0 ? o->max_attempts : 4;
	o->backoff_ms = o->backoff_ms > 0 ? o->backoff_ms : 100;
	o->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 2000;
	o->max_response = o->max_response > 0 ? o->max_response : 1 << 20;
	if (!o->parse_error)
		o->parse_error = atrest__http_parse_error_json;
}

int atrest__http_new(atrest__http **out, const atrest__http_opts *opts)
{
	atrest__http *h;
	int rc = 0;

	*out = NULL;
	pthread_once(&curl_once, curl_init);
	ENSURE(curl_init_rc == CURLE_OK, ATREST_ERROR, "libcurl failed to start: %s",
		curl_easy_strerror(curl_init_rc));
	h = calloc(1, sizeof(*h));
	ENSURE(h, ATREST_ERROR, "out of memory");
	pthread_mutex_init(&h->lock, NULL);
	h->o = *opts;
	set_defaults(&h->o);
	h->service = strdup(opts->service ? opts->service : "HTTP");
	ENSURE_OUT(h->service, ATREST_ERROR, "out of memory");
	h->o.service = h->service;
	if (opts->ca_env && !(h->ca_env_name = strdup(opts->ca_env)))
		rc = atrest__error(ATREST_ERROR, "out of memory");
	GUARD_OUT(rc);
	GUARD_OUT(load_cas(h)); /* reads o.ca_env and o.ca_file, not kept after */
	h->o.ca_env = NULL;
	h->o.ca_file = NULL;
	*out = h;
	return 0;
out:
	atrest__http_free(h);
	return rc;
}

void atrest__http_free(atrest__http *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->npool; i++)
		curl_easy_cleanup(h->pool[i]);
	sk_X509_pop_free(h->extra_cas, X509_free);
	pthread_mutex_destroy(&h->lock);
	free(h->service);
	free(h->ca_env_name);
	free(h);
}

const char *atrest__http_service(const atrest__http *h)
{
	return h->service;
}

static CURL *take_handle(atrest__http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->lock);
	if (h->npool > 0)
		c = h->pool[--h->npool];
	pthread_mutex_unlock(&h->lock);
	return c ? c : curl_easy_init();
}

static void give_handle(atrest__http *h, CURL *c)
{
	pthread_mutex_lock(&h->lock);
	if (h->npool < POOL_MAX) {
		h->pool[h->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	if (c)
		curl_easy_cleanup(c);
}

/* ---- one transfer */

struct xfer {
	atrest__http *h;
	atrest__http_req *req;
	atrest__http_resp *resp;
	CURL *c;
	size_t body_off; /* of a body in memory */
	int read_failed, too_big, write_failed;
	size_t delivered; /* bytes given to req->write */
	int read_any;     /* the read callback was used */
};

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t cap = size * n;
	long got;

	if (!x->req->read) {
		size_t left = x->req->body_len - x->body_off;
		size_t k = left < cap ? left : cap;
		memcpy(buf, (const char *)x->req->body + x->body_off, k);
		x->body_off += k;
		return k;
	}
	x->read_any = 1;
	got = x->req->read(buf, cap, x->req->read_arg);
	if (got < 0 || (size_t)got > cap) {
		x->read_failed = 1;
		return CURL_READFUNC_ABORT;
	}
	return (size_t)got;
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &status);
	if (x->req->write && status >= 200 && status < 300) {
		if (x->req->write(p, len, x->req->write_arg) < 0) {
			x->write_failed = 1;
			return 0;
		}
		x->delivered += len;
		return len;
	}
	if (x->resp->body.len + len > x->h->o.max_response) {
		x->too_big = 1;
		return 0;
	}
	atrest__buf_put(&x->resp->body, p, len);
	return x->resp->body.failed ? 0 : len;
}

/* Keep the header lines of the last response (a new status line resets). */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	const char *colon, *v;
	atrest__buf b = ATREST__BUF_INIT;

	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		atrest__http_hdrs_free(&x->resp->headers);
		return len;
	}
	while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
		len--;
	colon = memchr(p, ':', len);
	if (!colon || colon == p || len > 8192)
		return size * n;
	for (v = colon + 1; v < p + len && (*v == ' ' || *v == '\t');)
		v++;
	atrest__buf_put(&b, p, (size_t)(colon - p));
	atrest__buf_puts(&b, ": ");
	atrest__buf_put(&b, v, (size_t)(p + len - v));
	hdrs_push(&x->resp->headers, atrest__buf_take(&b));
	atrest__buf_free(&b);
	return size * n;
}

static struct curl_slist *slist_add(struct curl_slist *sl, const char *s, int *oom)
{
	struct curl_slist *t = *oom ? NULL : curl_slist_append(sl, s);

	if (!t)
		*oom = 1;
	return t ? t : sl;
}

/* The request's headers; NULL when out of memory. */
static struct curl_slist *build_headers(const atrest__http_req *req)
{
	struct curl_slist *sl = NULL;
	int oom = 0;

	for (size_t i = 0; i < req->headers.n; i++)
		sl = slist_add(sl, req->headers.v[i], &oom);
	/* No 100-continue round trip; no form content type curl would invent. */
	if (!atrest__http_hdrs_get(&req->headers, "Expect"))
		sl = slist_add(sl, "Expect:", &oom);
	if (!atrest__http_hdrs_get(&req->headers, "Content-Type"))
		sl = slist_add(sl, "Content-Type:", &oom);
	if (oom) {
		curl_slist_free_all(sl);
		return NULL;
	}
	return sl;
}

static void free_headers(struct curl_slist *sl)
{
	for (struct curl_slist *p = sl; p; p = p->next)
		atrest__wipe(p->data, strlen(p->data));
	curl_slist_free_all(sl);
}

static int has_body(const atrest__http_req *req)
{
	return req->read || req->body || strcmp(req->method, "POST") == 0 ||
		strcmp(req->method, "PUT") == 0;
}

static CURLcode setup(struct xfer *x, struct curl_slist *sl, long timeout_ms, char *err)
{
	CURL *c = x->c;
	const atrest__http_req *req = x->req;
	CURLcode r = CURLE_OK;

#define SET(opt, val)                                      \
	do {                                               \
		if (r == CURLE_OK)                         \
			r = curl_easy_setopt(c, opt, val); \
	} while (0)
	curl_easy_reset(c);
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, req->plain_http ? "http,https" : "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, x->h->o.connect_ms);
	SET(CURLOPT_TIMEOUT_MS, timeout_ms);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (sk_X509_num(x->h->extra_cas) > 0) {
		SET(CURLOPT_SSL_CTX_FUNCTION, add_cas);
		SET(CURLOPT_SSL_CTX_DATA, x->h);
	}
	if (req->no_proxy)
		SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_USERAGENT, "atrest/0.1 libcurl");
	SET(CURLOPT_ERRORBUFFER, err);
	SET(CURLOPT_HTTPHEADER, sl);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	if (strcmp(req->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (has_body(req)) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, x);
		SET(CURLOPT_POSTFIELDSIZE_LARGE,
			(curl_off_t)(req->read ? req->read_len : (int64_t)req->body_len));
		if (strcmp(req->method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, req->method);
	} else if (strcmp(req->method, "GET") != 0) {
		SET(CURLOPT_CUSTOMREQUEST, req->method);
	}
#undef SET
	return r;
}

/* ---- the retry loop */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Errors a retry cannot fix: configuration, TLS trust, our own aborts. */
static int fatal_curl(CURLcode r)
{
	switch (r) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_WRITE_ERROR:
	case CURLE_READ_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		return 1;
	default:
		return 0;
	}
}

static int retryable_status(const atrest__http *h, const atrest__http_resp *resp)
{
	long s = resp->status;

	return (s >= 500 && s != 501 && s != 505) || s == 429 ||
		(s >= 400 && atrest__http_is_throttle(resp->code, h->o.throttle_codes));
}

/* Backoff before attempt n+1 (n >= 1): capped doubling, then jitter in [d/2, d]. */
static int64_t backoff(const atrest__http *h, int n, const atrest__http_resp *resp)
{
	int64_t d = h->o.backoff_ms;
	uint32_t r = 0;
	const char *ra = atrest__http_hdrs_get(&resp->headers, "Retry-After");
	long secs = ra ? atrest__http_retry_after(ra) : -1;

	for (int i = 1; i < n && d < h->o.backoff_max_ms; i++)
		d *= 2;
	d = d > h->o.backoff_max_ms ? h->o.backoff_max_ms : d;
	(void)atrest__rand(&r, sizeof(r));
	d = d / 2 + (int64_t)(r % (uint32_t)(d / 2 + 1));
	if (secs >= 0 && secs * 1000 > d)
		d = secs * 1000;
	return d;
}

static void reset_resp(atrest__http_resp *resp, int locked)
{
	atrest__buf_free(&resp->body);
	resp->body.locked = locked;
	atrest__http_hdrs_free(&resp->headers);
	resp->status = 0;
	resp->code[0] = resp->msg[0] = '\0';
}

/* Printable ASCII only, at most cap-1 bytes, "..." when cut. */
static void clean_text(char *out, size_t cap, const char *s, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		out[k++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
	}
	out[k] = '\0';
	if (k + 1 == cap && n > k && cap > 4)
		memcpy(out + cap - 4, "...", 4);
}

/* One attempt; *res is curl's result.  Returns 0 or an error to stop with. */
static int attempt(struct xfer *x, long timeout_ms, CURLcode *res, char *err)
{
	struct curl_slist *sl;
	int rc = 0;

	if (x->req->prepare)
		GUARD(x->req->prepare(x->req, x->req->prepare_arg));
	ENSURE(!x->req->headers.failed, ATREST_ERROR, "out of memory");
	if (x->req->rewind && x->read_any)
		GUARD(x->req->rewind(x->req->read_arg));
	x->body_off = 0;
	x->read_any = 0;
	sl = build_headers(x->req);
	ENSURE(sl, ATREST_ERROR, "out of memory");
	err[0] = '\0';
	*res = setup(x, sl, timeout_ms, err);
	if (*res == CURLE_OK)
		*res = curl_easy_perform(x->c);
	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &x->resp->status);
	if (*res != CURLE_OK)
		x->resp->status = 0;
	free_headers(sl);
	x->resp->attempts++;
	if (x->read_failed)
		rc = atrest__error(ATREST_ERROR, "%s %s: reading the request body failed",
			x->h->service, x->req->what ? x->req->what : x->req->method);
	else if (x->write_failed)
		rc = atrest__error(ATREST_ERROR, "%s %s: writing the response failed",
			x->h->service, x->req->what ? x->req->what : x->req->method);
	else if (x->too_big)
		rc = atrest__error(ATREST_ETOOBIG,
			"%s %s: response larger than %zu bytes", x->h->service,
			x->req->what ? x->req->what : x->req->method,
			x->h->o.max_response);
	else if (x->resp->body.failed)
		rc = atrest__error(ATREST_ERROR, "out of memory");
	return rc;
}

/* "host[:port]" of a URL, for messages (never its path or query). */
static void url_host(char *out, size_t cap, const char *url)
{
	const char *p = strstr(url, "://"), *e;

	p = p ? p + 3 : url;
	e = p + strcspn(p, "/?#");
	{
		const char *at = memchr(p, '@', (size_t)(e - p));
		if (at) /* never user:password@ */
			p = at + 1;
	}
	clean_text(out, cap, p, (size_t)(e - p));
}

static const char *what(const atrest__http_req *req)
{
	return req->what ? req->what : req->method;
}

static int transport_error(
	const struct xfer *x, CURLcode r, const char *err, int64_t start, int gave_up)
{
	char host[128], msg[256];

	url_host(host, sizeof(host), x->req->url);
	clean_text(msg, sizeof(msg), *err ? err : curl_easy_strerror(r),
		strlen(*err ? err : curl_easy_strerror(r)));
	snprintf(x->resp->msg, sizeof(x->resp->msg), "%s", msg);
	if (r == CURLE_PEER_FAILED_VERIFICATION || r == CURLE_SSL_CACERT_BADFILE)
		return atrest__error(ATREST_EUNAVAILABLE,
			"%s %s: the TLS certificate of %s is not trusted: %s (add its CA "
			"with ATREST_CA_BUNDLE%s%s)",
			x->h->service, what(x->req), host, msg,
			x->h->ca_env_name ? " or " : "",
			x->h->ca_env_name ? x->h->ca_env_name : "");
	return atrest__error(ATREST_EUNAVAILABLE,
		"%s %s: cannot reach %s: %s (%s%d attempt%s in %.1f s)", x->h->service,
		what(x->req), host, msg, gave_up ? "gave up after " : "",
		x->resp->attempts, x->resp->attempts == 1 ? "" : "s",
		(double)(now_ms() - start) / 1000);
}

static int check_url(const atrest__http *h, const atrest__http_req *req)
{
	int https = strncasecmp(req->url, "https://", 8) == 0;
	int http = strncasecmp(req->url, "http://", 7) == 0;

	ENSURE(https || (http && req->plain_http), ATREST_EINVAL,
		"%s: only https:// endpoints are allowed%s", h->service,
		http ? " (plain http is for loopback and metadata services)" : "");
	return 0;
}

int atrest__http_do(atrest__http *h, atrest__http_req *req, atrest__http_resp *resp)
{
	struct xfer x = {.h = h, .req = req, .resp = resp};
	long total = req->time_ms > 0 ? req->time_ms : h->o.total_ms;
	long per_attempt = req->time_ms > 0 ? req->time_ms : h->o.attempt_ms;
	int64_t start = now_ms(), deadline = start + total;
	char err[CURL_ERROR_SIZE];
	CURLcode r = CURLE_OK;
	int rc = 0, n;

	memset(resp, 0, sizeof(*resp));
	GUARD(check_url(h, req));
	x.c = take_handle(h);
	ENSURE(x.c, ATREST_ERROR, "libcurl: out of memory");
	for (n = 1;; n++) {
		int64_t left = deadline - now_ms(), pause;
		int again;

		reset_resp(resp, req->secret_response);
		GUARD_OUT(attempt(
			&x, (long)(left < per_attempt ? left : per_attempt), &r, err));
		if (r == CURLE_OK && resp->status >= 200 && resp->status < 300)
			break;
		if (r == CURLE_OK)
			h->o.parse_error(resp);
		again = r == CURLE_OK ? retryable_status(h, resp) : !fatal_curl(r);
		if (!again)
			break;
		/* A streamed body that cannot be replayed, or was already delivered. */
		if ((x.read_any && !req->rewind) || (x.delivered && !req->write_rewind) ||
			n >= h->o.max_attempts)
			goto gave_up;
		pause = backoff(h, n, resp);
		if (now_ms() + pause + 50 >= deadline)
			goto gave_up;
		sleep_ms(pause);
		if (x.delivered) {
			GUARD_OUT(req->write_rewind(req->write_arg));
			x.delivered = 0;
		}
	}
	if (r != CURLE_OK)
		rc = transport_error(&x, r, err, start, 0);
	goto out;
gave_up:
	if (r != CURLE_OK)
		rc = transport_error(&x, r, err, start, 1);
	else
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"%s %s: HTTP %ld%s%s%s%s (gave up after %d attempt%s in %.1f s)",
			h->service, what(req), resp->status, *resp->code ? " " : "",
			resp->code, *resp->msg ? ": " : "", resp->msg, resp->attempts,
			resp->attempts == 1 ? "" : "s",
			(double)(now_ms() - start) / 1000);
out:
	resp->ms = (double)(now_ms() - start);
	give_handle(h, x.c);
	return rc;
}

void atrest__http_resp_free(atrest__http_resp *resp)
{
	atrest__buf_free(&resp->body);
	atrest__http_hdrs_free(&resp->headers);
	memset(resp, 0, sizeof(*resp));
}

int atrest__http_ok(const atrest__http_resp *resp)
{
	return resp->status >= 200 && resp->status < 300;
}

int atrest__http_fail(const atrest__http *h, const atrest__http_req *req,
	const atrest__http_resp *resp, int code, const char *fix)
{
	return atrest__error(code, "%s %s: HTTP %ld%s%s%s%s%s%s%s", h->service, what(req),
		resp->status, *resp->code ? " " : "", resp->code, *resp->msg ? ": " : "",
		resp->msg, fix ? " (" : "", fix ? fix : "", fix ? ")" : "");
}

/* ---- error decoding */

static const char *const aws_throttle_codes[] = {"Throttling", "ThrottlingException",
	"ThrottledException", "RequestThrottledException", "TooManyRequestsException",
	"ProvisionedThroughputExceededException", "TransactionInProgressException",
	"RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException",
	"RequestThrottled", "SlowDown", "PriorRequestNotComplete",
	"EC2ThrottledException", "RESOURCE_EXHAUSTED", "TooManyRequests", "Throttled",
	NULL};

int atrest__http_is_throttle(const char *code, const char *const *extra)
{
	if (!code || !*code)
		return 0;
	for (const char *const *c = aws_throttle_codes; *c; c++)
		if (strcmp(*c, code) == 0)
			return 1;
	for (const char *const *c = extra; c && *c; c++)
		if (strcmp(*c, code) == 0)
			return 1;
	return 0;
}

long atrest__http_retry_after(const char *value)
{
	long n = 0;

	while (*value == ' ')
		value++;
	if (!isdigit((unsigned char)*value))
		return -1;
	for (; isdigit((unsigned char)*value); value++) {
		if (n > 86400)
			return 86400;
		n = n * 10 + (*value - '0');
	}
	while (*value == ' ')
		value++;
	return *value ? -1 : n;
}

static void set_code(atrest__http_resp *resp, const char *code)
{
	size_t n = strcspn(code, ":");           /* "Code:http://internal..." */
	const char *hash = memchr(code, '#', n); /* "namespace#Code" */

	if (hash) {
		n -= (size_t)(hash + 1 - code);
		code = hash + 1;
	}
	clean_text(resp->code, sizeof(resp->code), code, n);
}

static void set_msg(atrest__http_resp *resp, const char *msg)
{
	clean_text(resp->msg, sizeof(resp->msg), msg, strlen(msg));
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* {"error": {...}}: Google (status, message), Azure (code, innererror). */
static void error_object(atrest__http_resp *resp, json_t *e)
{
	json_t *inner = json_object_get(e, "innererror");
	const char *code = jstr(e, "status") ? jstr(e, "status") : jstr(e, "code");
	const char *ic = jstr(inner, "code");
	char both[96];

	if (code && ic) {
		snprintf(both, sizeof(both), "%s/%s", code, ic);
		set_code(resp, both);
	} else if (code || ic) {
		set_code(resp, code ? code : ic);
	}
	if (jstr(e, "message"))
		set_msg(resp, jstr(e, "message"));
}

/* {"errors": ["...", ...]}: Vault. */
static void error_list(atrest__http_resp *resp, json_t *errs)
{
	atrest__buf b = ATREST__BUF_INIT;
	size_t i;
	json_t *v;

	json_array_foreach(errs, i, v)
	{
		if (json_is_string(v))
			atrest__buf_printf(
				&b, "%s%s", b.len ? "; " : "", json_string_value(v));
	}
	if (atrest__buf_check(&b) == 0)
		set_msg(resp, b.data);
	atrest__buf_free(&b);
}

void atrest__http_parse_error_json(atrest__http_resp *resp)
{
	const char *hdr = atrest__http_hdrs_get(&resp->headers, "x-amzn-ErrorType");
	json_t *j = resp->body.len ? json_loadb(resp->body.data, resp->body.len,
					     JSON_DISABLE_EOF_CHECK, NULL)
				   : NULL;
	json_t *err = json_object_get(j, "error");

	if (hdr)
		set_code(resp, hdr);
	if (jstr(j, "__type"))
		set_code(resp, jstr(j, "__type"));
	if (jstr(j, "message") || jstr(j, "Message"))
		set_msg(resp,
			jstr(j, "message") ? jstr(j, "message") : jstr(j, "Message"));
	if (json_is_object(err))
		error_object(resp, err);
	else if (json_is_string(err)) /* OAuth 2.0 */
		set_code(resp, json_string_value(err));
	if (jstr(j, "error_description"))
		set_msg(resp, jstr(j, "error_description"));
	if (json_is_array(json_object_get(j, "errors")))
		error_list(resp, json_object_get(j, "errors"));
	json_decref(j);
}

int atrest__http_is_loopback(const char *url)
{
	const char *p = strstr(url, "://");
	char host[256];
	size_t n;

	p = p ? p + 3 : url;
	if (*p == '[') {
		n = strcspn(p + 1, "]");
		snprintf(host, sizeof(host), "%.*s", (int)(n < 255 ? n : 255), p + 1);
	} else {
		n = strcspn(p, ":/?#");
		snprintf(host, sizeof(host), "%.*s", (int)(n < 255 ? n : 255), p);
	}
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
		return 1;
	if (strncmp(host, "127.", 4) != 0)
		return 0;
	for (const char *c = host + 4; *c; c++)
		if (!isdigit((unsigned char)*c) && *c != '.')
			return 0;
	return 1;
}
