/*
 * Unit tests of the libcurl client (src/lib/http.c) against the in-process
 * server of httpd.c: bodies both ways (memory and streamed), retries with
 * backoff on 5xx, 429 and throttling codes but not on other 4xx, the time
 * budget, outages, size caps, error lines, connection reuse and threads.
 * TLS trust is exercised by the service tests (tests/service/).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "http.h"
#include "httpd.h"

static const char *last_msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e ? e->message : "";
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- scripted answers */

struct script {
	pthread_mutex_t mu;
	int fail_first; /* answer this many requests with fail_status */
	int fail_status;
	const char *fail_body;
	const char *fail_headers;
	int calls;
	char last_body[65536];
	char last_auth[256];
	size_t last_len;
	int drop_first; /* drop this many connections first */
	int delay_ms;   /* delay every answer */
	size_t big;     /* a big body */
};

static void scripted(const th_http_req *req, th_http_resp *resp, void *arg)
{
	struct script *s = arg;
	int n;

	pthread_mutex_lock(&s->mu);
	n = ++s->calls;
	s->last_len = req->body_len < sizeof(s->last_body) - 1 ? req->body_len : 0;
	memcpy(s->last_body, req->body, s->last_len);
	s->last_body[s->last_len] = '\0';
	if (!th_http_header(req, "Authorization", s->last_auth, sizeof(s->last_auth)))
		s->last_auth[0] = '\0';
	resp->delay_ms = s->delay_ms;
	resp->big = s->big;
	if (n <= s->drop_first) {
		resp->drop = 1;
	} else if (n <= s->fail_first) {
		resp->status = s->fail_status;
		resp->big = 0;
		snprintf(resp->body, sizeof(resp->body), "%s",
			s->fail_body ? s->fail_body : "");
		snprintf(resp->headers, sizeof(resp->headers), "%s",
			s->fail_headers ? s->fail_headers : "");
	}
	pthread_mutex_unlock(&s->mu);
	if (resp->drop || resp->status)
		return;
	snprintf(resp->headers, sizeof(resp->headers), "X-Echo-Len: %zu\r\n",
		req->body_len);
	snprintf(resp->body, sizeof(resp->body), "{\"method\":\"%s\",\"target\":\"%s\"}",
		req->method, req->target);
}

struct fixture {
	struct script s;
	th_httpd *d;
	atrest__http *h;
	char url[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	atrest__http_opts o = {
		.service = "Test KMS", .backoff_ms = 10, .backoff_max_ms = 40};

	pthread_mutex_init(&f->s.mu, NULL);
	f->d = th_httpd_start(scripted, &f->s);
	th_httpd_url(f->url, sizeof(f->url), f->d, "/v1/thing?x=1");
	assert_int_equal(atrest__http_new(&f->h, &o), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	atrest__http_free(f->h);
	th_httpd_stop(f->d);
	pthread_mutex_destroy(&f->s.mu);
	free(f);
	return 0;
}

static atrest__http_req get_req(struct fixture *f)
{
	atrest__http_req r = {
		.method = "GET", .url = f->url, .what = "Probe", .plain_http = 1};
	return r;
}

static void test_get(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_true(atrest__http_ok(&resp));
	assert_string_equal(
		resp.body.data, "{\"method\":\"GET\",\"target\":\"/v1/thing?x=1\"}");
	assert_string_equal(atrest__http_hdrs_get(&resp.headers, "x-echo-len"), "0");
	assert_int_equal(resp.attempts, 1);
	assert_null(resp.body.sec);
	atrest__http_resp_free(&resp);
}

static void test_post_memory_and_locked(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	r.method = "POST";
	r.body = "{\"a\":1}";
	r.body_len = 7;
	r.secret_response = 1;
	atrest__http_hdrs_add(&r.headers, "Content-Type", "application/json");
	atrest__http_hdrs_add(&r.headers, "Authorization", "Bearer %s", "tok-123");
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	assert_string_equal(f->s.last_body, "{\"a\":1}");
	assert_string_equal(f->s.last_auth, "Bearer tok-123");
	pthread_mutex_unlock(&f->s.mu);
	assert_non_null(resp.body.sec); /* the answer is in locked memory */
	assert_string_equal(atrest__http_hdrs_get(&resp.headers, "X-Echo-Len"), "7");
	atrest__http_resp_free(&resp);
	atrest__http_hdrs_free(&r.headers);
	/* PUT with no body at all sends Content-Length: 0 */
	r.method = "PUT";
	r.body = NULL;
	r.body_len = 0;
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	assert_int_equal(f->s.last_len, 0);
	pthread_mutex_unlock(&f->s.mu);
	assert_string_equal(
		resp.body.data, "{\"method\":\"PUT\",\"target\":\"/v1/thing?x=1\"}");
	atrest__http_resp_free(&resp);
}

/* A body read in small pieces, with a rewind for retries. */
struct stream {
	size_t off, total;
	int rewinds;
};

static long stream_read(void *buf, size_t cap, void *arg)
{
	struct stream *s = arg;
	size_t k = s->total - s->off < cap ? s->total - s->off : cap;

	k = k > 1000 ? 1000 : k;
	for (size_t i = 0; i < k; i++)
		((char *)buf)[i] = (char)('a' + (s->off + i) % 26);
	s->off += k;
	return (long)k;
}

static int stream_rewind(void *arg)
{
	struct stream *s = arg;

	s->off = 0;
	s->rewinds++;
	return 0;
}

struct sink {
	size_t got;
	int fail;
};

static int sink_write(const void *p, size_t n, void *arg)
{
	struct sink *k = arg;

	(void)p;
	k->got += n;
	return k->fail ? -1 : 0;
}

static void test_streams(void **state)
{
	struct fixture *f = *state;
	struct stream st = {.total = 30000};
	struct sink sk = {0};
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	r.method = "PUT";
	r.read = stream_read;
	r.rewind = stream_rewind;
	r.read_arg = &st;
	r.read_len = -1;              /* chunked */
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.fail_first = 1;
	f->s.fail_status = 503;
	pthread_mutex_unlock(&f->s.mu);
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	assert_int_equal(resp.attempts, 2);
	assert_int_equal(st.rewinds, 1);
	assert_string_equal(atrest__http_hdrs_get(&resp.headers, "X-Echo-Len"), "30000");
	atrest__http_resp_free(&resp);
	/* Known length; a download to a callback. */
	st.off = 0;
	r.read_len = 30000;
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.big = 200000;
	pthread_mutex_unlock(&f->s.mu);
	r.write = sink_write;
	r.write_arg = &sk;
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	assert_int_equal(sk.got, 200000);
	assert_int_equal(resp.body.len, 0);
	atrest__http_resp_free(&resp);
	/* A sink that fails ends the call. */
	sk.fail = 1;
	st.off = 0;
	assert_int_equal(atrest__http_do(f->h, &r, &resp), ATREST_ERROR);
	atrest__http_resp_free(&resp);
	/* Without a rewind a streamed body is not sent twice. */
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.big = 0;
	f->s.calls = 0;
	f->s.fail_first = 5;
	pthread_mutex_unlock(&f->s.mu);
	r.write = NULL;
	r.rewind = NULL;
	st.off = 0;
	assert_int_equal(atrest__http_do(f->h, &r, &resp), ATREST_EUNAVAILABLE);
	assert_int_equal(resp.attempts, 1);
	atrest__http_resp_free(&resp);
}

static void test_retry_5xx_then_ok(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.fail_first = 2;
	f->s.fail_status = 500;
	pthread_mutex_unlock(&f->s.mu);
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.attempts, 3);
	atrest__http_resp_free(&resp);
}

static void test_throttle_codes(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	/* AWS throttling is a 400 with a code: retried. */
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.fail_first = 1;
	f->s.fail_status = 400;
	f->s.fail_body =
		"{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}";
	pthread_mutex_unlock(&f->s.mu);
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	assert_int_equal(resp.attempts, 2);
	atrest__http_resp_free(&resp);
	/* 429 with Retry-After: retried. */
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.calls = 0;
	f->s.fail_status = 429;
	f->s.fail_body = "";
	f->s.fail_headers = "Retry-After: 0\r\n";
	pthread_mutex_unlock(&f->s.mu);
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	assert_int_equal(resp.attempts, 2);
	atrest__http_resp_free(&resp);
}

static void test_no_retry_4xx(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.fail_first = 3;
	f->s.fail_status = 400;
	f->s.fail_body =
		"{\"__type\":\"com.amazonaws.kms#AccessDeniedException\",\"Message\":\"no\\u0001 way\"}";
	pthread_mutex_unlock(&f->s.mu);
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	assert_int_equal(resp.attempts, 1);
	assert_int_equal(resp.status, 400);
	assert_string_equal(resp.code, "AccessDeniedException");
	assert_string_equal(resp.msg, "no  way");
	assert_int_equal(
		atrest__http_fail(f->h, &r, &resp, ATREST_EKEY, "fix it"), ATREST_EKEY);
	assert_string_equal(last_msg(),
		"Test KMS Probe: HTTP 400 AccessDeniedException: no  way (fix it)");
	atrest__http_resp_free(&resp);
}

static void test_gives_up(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.fail_first = 100;
	f->s.fail_status = 503;
	f->s.fail_body =
		"{\"error\":{\"code\":503,\"status\":\"UNAVAILABLE\",\"message\":\"down\"}}";
	pthread_mutex_unlock(&f->s.mu);
	atrest__http_hdrs_add(&r.headers, "Authorization", "Bearer %s", "sEcReT-token");
	assert_int_equal(atrest__http_do(f->h, &r, &resp), ATREST_EUNAVAILABLE);
	assert_int_equal(resp.attempts, 4);
	assert_string_equal(resp.code, "UNAVAILABLE");
	assert_non_null(strstr(last_msg(),
		"Test KMS Probe: HTTP 503 UNAVAILABLE: down (gave up after 4 attempts"));
	assert_null(strstr(last_msg(), "sEcReT"));
	atrest__http_resp_free(&resp);
	atrest__http_hdrs_free(&r.headers);
}

static void test_dropped_connections(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.drop_first = 2;
	pthread_mutex_unlock(&f->s.mu);
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	assert_int_equal(resp.attempts, 3);
	atrest__http_resp_free(&resp);
}

static void test_refused(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;
	double t0 = now_s();

	r.url = "http://127.0.0.1:1/nothing";
	assert_int_equal(atrest__http_do(f->h, &r, &resp), ATREST_EUNAVAILABLE);
	assert_int_equal(resp.attempts, 4);
	assert_non_null(strstr(last_msg(), "Test KMS Probe: cannot reach 127.0.0.1:1: "));
	assert_true(now_s() - t0 < 5);
	atrest__http_resp_free(&resp);
}

static void test_time_budget(void **state)
{
	struct fixture *f = *state;
	atrest__http_opts o = {.service = "Slow", .total_ms = 1200, .attempt_ms = 500};
	atrest__http *h;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;
	double t0 = now_s();

	assert_int_equal(atrest__http_new(&h, &o), 0);
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.delay_ms = 2000;
	pthread_mutex_unlock(&f->s.mu);
	assert_int_equal(atrest__http_do(h, &r, &resp), ATREST_EUNAVAILABLE);
	assert_true(now_s() - t0 < 1.9);
	assert_true(resp.attempts >= 1 && resp.attempts <= 3);
	atrest__http_resp_free(&resp);
	atrest__http_free(h);
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.delay_ms = 0;
	pthread_mutex_unlock(&f->s.mu);
}

static void test_too_big(void **state)
{
	struct fixture *f = *state;
	atrest__http_opts o = {.service = "Small", .max_response = 1000};
	atrest__http *h;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	assert_int_equal(atrest__http_new(&h, &o), 0);
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.big = 5000;
	pthread_mutex_unlock(&f->s.mu);
	assert_int_equal(atrest__http_do(h, &r, &resp), ATREST_ETOOBIG);
	assert_int_equal(resp.attempts, 1);
	atrest__http_resp_free(&resp);
	atrest__http_free(h);
}

static void test_https_only(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;

	r.plain_http = 0;
	assert_int_equal(atrest__http_do(f->h, &r, &resp), ATREST_EINVAL);
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	assert_int_equal(f->s.calls, 0);
	pthread_mutex_unlock(&f->s.mu);
	r.url = "ftp://127.0.0.1/x";
	r.plain_http = 1;
	assert_int_equal(atrest__http_do(f->h, &r, &resp), ATREST_EINVAL);
	atrest__http_resp_free(&resp);
}

static int count_prepare(atrest__http_req *req, void *arg)
{
	int *n = arg;

	(*n)++;
	atrest__http_hdrs_free(&req->headers);
	atrest__http_hdrs_add(&req->headers, "Authorization", "try-%d", *n);
	return 0;
}

static void test_prepare_each_attempt_and_reuse(void **state)
{
	struct fixture *f = *state;
	atrest__http_req r = get_req(f);
	atrest__http_resp resp;
	int n = 0;

	r.prepare = count_prepare;
	r.prepare_arg = &n;
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	f->s.fail_first = 1;
	f->s.fail_status = 502;
	pthread_mutex_unlock(&f->s.mu);
	assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
	assert_int_equal(n, 2);
	pthread_mutex_lock(&f->s.mu); /* server threads read it */
	assert_string_equal(f->s.last_auth, "try-2");
	pthread_mutex_unlock(&f->s.mu);
	atrest__http_resp_free(&resp);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atrest__http_do(f->h, &r, &resp), 0);
		atrest__http_resp_free(&resp);
	}
	assert_int_equal(th_httpd_connections(f->d), 1); /* kept alive */
	atrest__http_hdrs_free(&r.headers);
}

struct worker {
	struct fixture *f;
	int ok;
};

static void *worker_main(void *p)
{
	struct worker *w = p;

	for (int i = 0; i < 25; i++) {
		atrest__http_req r = get_req(w->f);
		atrest__http_resp resp;

		r.method = "POST";
		r.body = "ping";
		r.body_len = 4;
		if (atrest__http_do(w->f->h, &r, &resp) == 0 && resp.status == 200)
			w->ok++;
		atrest__http_resp_free(&resp);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t t[8];
	struct worker w[8];

	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){f, 0};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, 25);
	}
	assert_int_equal(th_httpd_requests(f->d), 200);
	assert_true(th_httpd_connections(f->d) <= 16);
}

static void decode(const char *body, const char *hdr, const char *code, const char *msg)
{
	atrest__http_resp r;

	memset(&r, 0, sizeof(r));
	atrest__buf_puts(&r.body, body);
	if (hdr)
		atrest__http_hdrs_add(&r.headers, "x-amzn-ErrorType", "%s", hdr);
	atrest__http_parse_error_json(&r);
	assert_string_equal(r.code, code);
	assert_string_equal(r.msg, msg);
	atrest__http_resp_free(&r);
}

static void test_error_shapes(void **state)
{
	(void)state;
	decode("{\"__type\":\"InvalidCiphertextException\"}", NULL,
		"InvalidCiphertextException", "");
	decode("", "ThrottlingException:http://internal.amazon.com/coral/",
		"ThrottlingException", "");
	decode("{\"error\":{\"code\":403,\"message\":\"Permission denied\",\"status\":\"PERMISSION_DENIED\"}}",
		NULL, "PERMISSION_DENIED", "Permission denied");
	decode("{\"error\":{\"code\":\"Forbidden\",\"message\":\"no\",\"innererror\":{\"code\":\"AccessDenied\"}}}",
		NULL, "Forbidden/AccessDenied", "no");
	decode("{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret\"}",
		NULL, "invalid_client", "AADSTS7000215: Invalid client secret");
	decode("{\"errors\":[\"permission denied\",\"1 error occurred\"]}", NULL, "",
		"permission denied; 1 error occurred");
	decode("not json at all", NULL, "", "");
	decode("[1,2,3]", NULL, "", "");
	assert_true(atrest__http_is_throttle("ThrottlingException", NULL));
	assert_true(atrest__http_is_throttle("RESOURCE_EXHAUSTED", NULL));
	assert_false(atrest__http_is_throttle("AccessDeniedException", NULL));
	assert_true(
		atrest__http_is_throttle("Mine", (const char *const[]){"Mine", NULL}));
	assert_int_equal(atrest__http_retry_after("12"), 12);
	assert_int_equal(atrest__http_retry_after(" 3 "), 3);
	assert_int_equal(atrest__http_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
	assert_int_equal(atrest__http_retry_after("99999999999"), 86400);
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(atrest__http_is_loopback("http://127.0.0.1:8200/v1"));
	assert_true(atrest__http_is_loopback("http://127.1.2.3"));
	assert_true(atrest__http_is_loopback("http://localhost:80/"));
	assert_true(atrest__http_is_loopback("http://[::1]:8200/"));
	assert_false(atrest__http_is_loopback("http://127.0.0.1.evil.com/"));
	assert_false(atrest__http_is_loopback("http://10.0.0.1/"));
	assert_false(atrest__http_is_loopback("http://[::2]/"));
	assert_false(atrest__http_is_loopback("http://localhost.localdomain/"));
}

static void test_ca_bundle_errors(void **state)
{
	atrest__http_opts o = {.service = "X", .ca_env = "TEST_CA_BUNDLE"};
	atrest__http *h;
	char dir[512], path[600];

	(void)state;
	setenv("TEST_CA_BUNDLE", "/nonexistent/ca.pem", 1);
	assert_int_equal(atrest__http_new(&h, &o), ATREST_EINVAL);
	assert_non_null(strstr(last_msg(), "TEST_CA_BUNDLE"));
	th_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/empty.pem", dir);
	assert_int_equal(th_write_file(path, "no certs here\n", 14), 0);
	setenv("TEST_CA_BUNDLE", path, 1);
	assert_int_equal(atrest__http_new(&h, &o), ATREST_EINVAL);
	assert_non_null(strstr(last_msg(), "without PEM certificates"));
	unsetenv("TEST_CA_BUNDLE");
	th_rmrf(dir);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_get),
		T(test_post_memory_and_locked),
		T(test_streams),
		T(test_retry_5xx_then_ok),
		T(test_throttle_codes),
		T(test_no_retry_4xx),
		T(test_gives_up),
		T(test_dropped_connections),
		T(test_refused),
		T(test_time_budget),
		T(test_too_big),
		T(test_https_only),
		T(test_prepare_each_attempt_and_reuse),
		T(test_threads),
		cmocka_unit_test(test_error_shapes),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_ca_bundle_errors),
	};

	unsetenv("ATREST_CA_BUNDLE");
	unsetenv("ATREST_KMS_TIMEOUT");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
