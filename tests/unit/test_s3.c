/*
 * Unit tests of the S3 backend against the in-memory S3 server of s3d.c
 * (signatures checked): the backend contract suite; locations; one PUT up
 * to a part, multipart above with parts in flight at once; a failed or
 * aborted put aborts its upload; retries (5xx, SlowDown, dropped and cut
 * answers); conditional puts with RGW's bare If-Match, lost answers and
 * 409s, spooled when larger than a part; reads that fetch only what they
 * need and fail on a replaced object; a server that ignores conditions
 * refused; listing pages around .atrest/;
 * batch deletes; cleanup of old uploads; errors; threads.  The same code
 * runs against Ceph RGW in tests/service/test_s3_*.sh.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/atrest.h"
#include "atrest/sys/backend.h"
#include "backend_suite.h"
#include "helpers.h"
#include "s3d.h"
#include "upload_suite.h"
#include "store/s3_int.h"

#define MIB (1024u * 1024u)

static s3d *D;
static int SEQ;

static const char *last_msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e ? e->message : "";
}

static void env_for(const s3d *d)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDUNITTEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "unit-test-secret", 1);
	setenv("AWS_REGION", "us-east-1", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	setenv("AWS_ENDPOINT_URL", s3d_endpoint(d), 1);
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("ATREST_S3_TIMEOUT");
	unsetenv("AWS_CA_BUNDLE");
}

/* A prepared backend on a location of the test server. */
static atrest_backend *open_at(const char *loc)
{
	atrest_backend *b;

	if (atrest_backend_open(&b, loc) != 0)
		fail_msg("open %s: %s", loc, last_msg());
	if (b->prepare(b, 1) != 0)
		fail_msg("prepare %s: %s", loc, last_msg());
	return b;
}

static atrest_backend *fresh(const char *params)
{
	char loc[512];

	snprintf(loc, sizeof(loc), "s3://unit/t%d%s%s", ++SEQ, params ? "?" : "",
		params ? params : "");
	return open_at(loc);
}

/* Write buf in pieces of odd sizes. */
static int put_odd(atrest_backend *b, const char *key, const uint8_t *buf, size_t n,
	unsigned int flags, const char *etag)
{
	atrest_backend_writer *w;
	size_t off = 0, step = 70001;
	int rc = b->open_write(b, &w, key, flags, etag);

	if (rc)
		return rc;
	while (rc == 0 && off < n) {
		size_t k = n - off < step ? n - off : step;
		rc = w->write(w, buf + off, k);
		off += k;
		step = step * 3 % 1000003 + 1;
	}
	if (rc) {
		w->abort(w);
		return rc;
	}
	return w->commit(w);
}

static void expect_object(
	atrest_backend *b, const char *key, const uint8_t *want, size_t n)
{
	size_t len = 0;
	int rc;
	char *got = bs_get(b, key, &len, &rc, NULL);

	if (rc != 0)
		fail_msg("get %s: %s", key, last_msg());
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
	free(got);
}

/* ---- the contract suite */

struct suite_ctx {
	char loc[128];
};

static int suite_create(void *ctx)
{
	snprintf(((struct suite_ctx *)ctx)->loc, 128, "s3://unit/suite%d", ++SEQ);
	return 0;
}

static atrest_backend *suite_open(void *ctx)
{
	return open_at(((struct suite_ctx *)ctx)->loc);
}

static void suite_destroy(void *ctx)
{
	(void)ctx;
}

/* ---- locations */

static void t_locations(void **state)
{
	static const char *bad[] = {"s3://ab", "s3://bucket/a//b", "s3://bucket/a/../b",
		"s3://bucket/p?colour=red", "s3://bucket/p?part-size=1M",
		"s3://bucket/p?part-size=2G", "s3://bucket/p?uploads=0",
		"s3://bucket/p?timeout=x", "s3://bucket/p?path-style=yes",
		"s3://bu*ket/p", "s3://bucket/p?endpoint=ftp://x",
		"s3://bucket/p?endpoint=https://host/path",
		"s3://bucket/p?endpoint=http://example.com:9000"};
	atrest_backend *b;
	atrest__s3 *s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atrest_error_clear();
		assert_int_equal(atrest_backend_open(&b, bad[i]), ATREST_EINVAL);
		assert_non_null(strstr(last_msg(), "S3"));
	}
	/* AWS: virtual-hosted in the region; dotted buckets path-style over TLS. */
	unsetenv("AWS_ENDPOINT_URL");
	setenv("AWS_REGION", "eu-west-1", 1);
	assert_int_equal(atrest_backend_open(&b, "s3://my-bucket/a/b/"), 0);
	s = (atrest__s3 *)b;
	assert_string_equal(s->base, "https://my-bucket.s3.eu-west-1.amazonaws.com");
	assert_string_equal(s->host, "my-bucket.s3.eu-west-1.amazonaws.com");
	assert_string_equal(s->prefix, "a/b/");
	b->free(b);
	assert_int_equal(atrest_backend_open(&b, "s3://my.bucket?region=us-west-2"), 0);
	s = (atrest__s3 *)b;
	assert_string_equal(s->base, "https://s3.us-west-2.amazonaws.com/my.bucket");
	assert_string_equal(s->prefix, "");
	b->free(b);
	assert_int_equal(
		atrest_backend_open(
			&b, "s3://bkt/p%20q?endpoint=https%3A%2F%2Fminio.lan%3A443%2F"),
		0);
	s = (atrest__s3 *)b;
	assert_string_equal(s->base, "https://bkt.minio.lan");
	assert_string_equal(s->prefix, "p q/");
	b->free(b);
	assert_int_equal(
		atrest_backend_open(&b,
			"s3://bkt/p?endpoint=http://minio.lan:9000&allow-http=true&"
			"path-style=true&part-size=16M&uploads=5&timeout=2m&abort-after=2d"),
		0);
	s = (atrest__s3 *)b;
	assert_string_equal(s->base, "http://minio.lan:9000/bkt");
	assert_int_equal(s->part_size, 16 * MIB);
	assert_int_equal(s->uploads, 5);
	assert_int_equal(s->timeout_ms, 120000);
	assert_int_equal(s->abort_after, 2 * 86400);
	b->free(b);
	/* An IP address is path-style by itself. */
	assert_int_equal(
		atrest_backend_open(&b, "s3://bkt?endpoint=http://127.0.0.1:1"), 0);
	assert_string_equal(((atrest__s3 *)b)->base, "http://127.0.0.1:1/bkt");
	b->free(b);
	env_for(D);
}

/* ---- puts */

static void t_one_put_up_to_a_part(void **state)
{
	atrest_backend *b = fresh("part-size=5M");
	size_t sizes[] = {0, 1, 65536, 5 * MIB - 1, 5 * MIB};
	uint8_t *buf = malloc(5 * MIB);
	long creates = s3d_calls(D, "CreateMultipartUpload");
	char key[32];

	(void)state;
	th_fill(buf, 5 * MIB, 3);
	for (size_t i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "one/%zu", sizes[i]);
		assert_int_equal(put_odd(b, key, buf, sizes[i], 0, NULL), 0);
		expect_object(b, key, buf, sizes[i]);
	}
	assert_int_equal(s3d_calls(D, "CreateMultipartUpload"), creates);
	free(buf);
	b->free(b);
}

static void t_multipart(void **state)
{
	atrest_backend *b = fresh("part-size=5M&uploads=3");
	size_t n = 21 * MIB + 7;
	uint8_t *buf = malloc(n);
	long parts = s3d_calls(D, "UploadPart");

	(void)state;
	th_fill(buf, n, 4);
	s3d_delay(D, 30); /* parts overlap on the server */
	assert_int_equal(put_odd(b, "mp/a", buf, n, 0, NULL), 0);
	s3d_delay(D, 0);
	assert_int_equal(s3d_calls(D, "UploadPart") - parts, 5);
	assert_true(s3d_most_at_once(D, "UploadPart") >= 2);
	assert_int_equal(s3d_uploads(D), 0);
	expect_object(b, "mp/a", buf, n);
	assert_int_equal(put_odd(b, "mp/b", buf, 5 * MIB + 1, 0, NULL), 0);
	expect_object(b, "mp/b", buf, 5 * MIB + 1);
	free(buf);
	b->free(b);
}

static void t_failed_put_aborts(void **state)
{
	atrest_backend *b = fresh("part-size=5M&uploads=2");
	size_t n = 16 * MIB;
	uint8_t *buf = malloc(n);
	atrest_backend_writer *w;
	atrest_backend_reader *r;
	long aborts = s3d_calls(D, "AbortMultipartUpload");

	(void)state;
	th_fill(buf, n, 5);
	s3d_fail(D, "UploadPart", 1, 403, "AccessDenied");
	atrest_error_clear();
	assert_int_equal(put_odd(b, "f/a", buf, n, 0, NULL), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(last_msg(), "UploadPart s3://unit/"));
	assert_non_null(strstr(last_msg(), "HTTP 403 AccessDenied"));
	assert_int_equal(s3d_calls(D, "AbortMultipartUpload"), aborts + 1);
	assert_int_equal(s3d_uploads(D), 0);
	assert_int_equal(b->open_read(b, &r, "f/a"), ATREST_ENOTFOUND);
	/* An aborted put: its upload goes too, nothing is visible. */
	assert_int_equal(b->open_write(b, &w, "f/b", 0, NULL), 0);
	assert_int_equal(w->write(w, buf, 12 * MIB), 0);
	assert_int_equal(s3d_uploads(D), 1);
	w->abort(w);
	assert_int_equal(s3d_uploads(D), 0);
	assert_int_equal(b->open_read(b, &r, "f/b"), ATREST_ENOTFOUND);
	/* A failed completion aborts as well. */
	s3d_fail(D, "CompleteMultipartUpload", 1, 400, "InvalidPart");
	assert_true(put_odd(b, "f/c", buf, n, 0, NULL) < 0);
	assert_non_null(strstr(last_msg(), "CompleteMultipartUpload"));
	assert_int_equal(s3d_uploads(D), 0);
	free(buf);
	b->free(b);
}

static void t_retries(void **state)
{
	atrest_backend *b = fresh("part-size=5M");
	size_t n = 11 * MIB;
	uint8_t *buf = malloc(n), out[100];
	atrest_backend_reader *r;
	long puts = s3d_calls(D, "PutObject");
	size_t got;

	(void)state;
	th_fill(buf, n, 6);
	s3d_fail(D, "PutObject", 2, 503, "SlowDown");
	assert_int_equal(put_odd(b, "r/small", buf, 1000, 0, NULL), 0);
	assert_int_equal(s3d_calls(D, "PutObject") - puts, 3);
	s3d_fail(D, "UploadPart", 1, 500, "InternalError");
	s3d_drop(D, "UploadPart", 1, 0);
	assert_int_equal(put_odd(b, "r/big", buf, n, 0, NULL), 0);
	s3d_drop(D, "GetObject", 1, 0);
	expect_object(b, "r/small", buf, 1000);
	/* An answer cut in the middle is fetched again from its start. */
	s3d_cut(D, "GetObject", 2, 30000);
	expect_object(b, "r/big", buf, n);
	assert_int_equal(b->open_read(b, &r, "r/big"), 0);
	s3d_cut(D, "GetObject", 1, 10);
	assert_int_equal(r->pread(r, out, 100, 9 * MIB, &got), 0);
	assert_memory_equal(out, buf + 9 * MIB, 100);
	r->close(r);
	/* Other 4xx are never retried. */
	puts = s3d_calls(D, "PutObject");
	s3d_fail(D, "PutObject", 1, 400, "InvalidArgument");
	assert_int_equal(put_odd(b, "r/x", buf, 10, 0, NULL), ATREST_ERROR);
	assert_int_equal(s3d_calls(D, "PutObject") - puts, 1);
	assert_non_null(strstr(last_msg(), "PutObject s3://unit/t"));
	assert_non_null(strstr(last_msg(), "/r/x: HTTP 400 InvalidArgument"));
	free(buf);
	b->free(b);
}

/* ---- conditional puts */

static void t_conditional(void **state)
{
	atrest_backend *b = fresh("part-size=5M");
	char e1[ATREST_BACKEND_ETAG_MAX], hdr[128];
	uint8_t *big = malloc(12 * MIB);
	long puts, heads;
	int rc;

	(void)state;
	th_fill(big, 12 * MIB, 7);
	assert_int_equal(bs_put(b, "c/k", "v1", 2, 0, NULL), 0);
	free(bs_get(b, "c/k", NULL, &rc, e1));
	/* RGW 16: a quoted If-Match always fails; the backend finds out. */
	s3d_bare_if_match(D, 1);
	assert_int_equal(bs_put(b, "c/k", "v2", 2, ATREST_BACKEND_IF_MATCH, e1), 0);
	assert_true(__atomic_load_n(&((atrest__s3 *)b)->if_match_bare, __ATOMIC_RELAXED));
	assert_non_null(s3d_last_header(D, "PutObject", "If-Match", hdr, sizeof(hdr)));
	assert_true(hdr[0] != '"');
	free(bs_get(b, "c/k", NULL, &rc, e1));
	puts = s3d_calls(D, "PutObject");
	assert_int_equal(bs_put(b, "c/k", "v3", 2, ATREST_BACKEND_IF_MATCH, e1), 0);
	assert_int_equal(s3d_calls(D, "PutObject") - puts, 1);
	assert_int_equal(
		bs_put(b, "c/k", "v4", 2, ATREST_BACKEND_IF_MATCH, e1), ATREST_ECONFLICT);
	s3d_bare_if_match(D, 0);
	/* A lost answer to a put that took effect: the nonce says it was ours. */
	s3d_drop(D, "PutObject", 1, 1);
	assert_int_equal(bs_put(b, "c/new", "x", 1, ATREST_BACKEND_IF_ABSENT, NULL), 0);
	heads = s3d_calls(D, "HeadObject");
	assert_int_equal(bs_put(b, "c/new", "y", 1, ATREST_BACKEND_IF_ABSENT, NULL),
		ATREST_EEXISTS);
	assert_int_equal(s3d_calls(D, "HeadObject"), heads);
	/* 409 ConditionalRequestConflict: tried again. */
	s3d_fail(D, "PutObject", 1, 409, "ConditionalRequestConflict");
	assert_int_equal(bs_put(b, "c/other", "z", 1, ATREST_BACKEND_IF_ABSENT, NULL), 0);
	/* Larger than a part: still one conditional PUT, from a temp file. */
	puts = s3d_calls(D, "PutObject");
	long creates = s3d_calls(D, "CreateMultipartUpload");
	assert_int_equal(
		put_odd(b, "c/big", big, 12 * MIB, ATREST_BACKEND_IF_ABSENT, NULL), 0);
	assert_int_equal(s3d_calls(D, "PutObject") - puts, 1);
	assert_int_equal(s3d_calls(D, "CreateMultipartUpload"), creates);
	expect_object(b, "c/big", big, 12 * MIB);
	free(bs_get(b, "c/big", NULL, &rc, e1));
	th_fill(big, 12 * MIB, 8);
	assert_int_equal(
		put_odd(b, "c/big", big, 12 * MIB, ATREST_BACKEND_IF_MATCH, e1), 0);
	expect_object(b, "c/big", big, 12 * MIB);
	assert_int_equal(put_odd(b, "c/big", big, 7 * MIB, ATREST_BACKEND_IF_MATCH, e1),
		ATREST_ECONFLICT);
	free(big);
	b->free(b);
	/* A server that ignores conditions is found out before the first. */
	b = fresh(NULL);
	s3d_ignore_conditions(D, 1);
	atrest_error_clear();
	assert_int_equal(bs_put(b, "c/k", "v", 1, ATREST_BACKEND_IF_ABSENT, NULL),
		ATREST_EUNAVAILABLE);
	assert_non_null(strstr(last_msg(), "ignores If-None-Match"));
	s3d_ignore_conditions(D, 0);
	assert_int_equal(bs_put(b, "c/k", "v", 1, ATREST_BACKEND_IF_ABSENT, NULL), 0);
	assert_int_equal(
		bs_put(b, "c/k", "v", 1, ATREST_BACKEND_IF_ABSENT, NULL), ATREST_EEXISTS);
	b->free(b);
}

/* ---- reads */

static void t_reads(void **state)
{
	atrest_backend *b = fresh(NULL);
	size_t n = 30 * MIB, got;
	uint8_t *buf = malloc(n), *out = malloc(n);
	atrest_backend_reader *r;
	uint64_t before;

	(void)state;
	th_fill(buf, n, 9);
	assert_int_equal(put_odd(b, "rd/a", buf, n, 0, NULL), 0);
	/* A small read far in: the first 64 KiB at open, then just that. */
	before = s3d_bytes_out(D);
	assert_int_equal(b->open_read(b, &r, "rd/a"), 0);
	assert_int_equal(r->size, n);
	assert_int_equal(r->pread(r, out, 100, 20 * MIB, &got), 0);
	assert_int_equal(got, 100);
	assert_memory_equal(out, buf + 20 * MIB, 100);
	assert_int_equal(s3d_bytes_out(D) - before, 65536 + 100);
	/* Reading on from there fetches ahead no more than was read. */
	before = s3d_bytes_out(D);
	assert_int_equal(r->pread(r, out, 1000, 20 * MIB + 100, &got), 0);
	assert_true(s3d_bytes_out(D) - before <= 1000 + 1100);
	r->close(r);
	/* A whole read from the start, in pieces like the core's. */
	assert_int_equal(b->open_read(b, &r, "rd/a"), 0);
	for (size_t off = 0; off < n; off += got) {
		assert_int_equal(r->pread(r, out + off, 262144, off, &got), 0);
		assert_true(got > 0);
	}
	assert_memory_equal(out, buf, n);
	assert_int_equal(r->pread(r, out, 10, n, &got), 0);
	assert_int_equal(got, 0);
	r->close(r);
	/* Replaced while being read: a conflict, never a mix. */
	assert_int_equal(b->open_read(b, &r, "rd/a"), 0);
	assert_int_equal(r->pread(r, out, 100, 0, &got), 0);
	{
		char key[2048];
		snprintf(key, sizeof(key), "%srd/a", ((atrest__s3 *)b)->prefix);
		s3d_poke(D, "unit", key, buf + 1, n - 1);
	}
	atrest_error_clear();
	assert_int_equal(r->pread(r, out, 100, 10 * MIB, &got), ATREST_ECONFLICT);
	assert_non_null(strstr(last_msg(), "replaced"));
	r->close(r);
	/* Gone: not found. */
	assert_int_equal(b->open_read(b, &r, "rd/none"), ATREST_ENOTFOUND);
	free(buf);
	free(out);
	b->free(b);
}

/* ---- listings, batches, cleanup */

static void t_list_pages(void **state)
{
	atrest_backend *b = fresh(NULL);
	static const char *names[] = {"+a", ".a", ".b", "0", "k/1", "k/2", "k/3", "k/4"};
	static const char *under_k[] = {"k/1", "k/2", "k/3", "k/4"};
	char key[64];
	long lists;

	(void)state;
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(
			bs_put(b, names[i], names[i], strlen(names[i]), 0, NULL), 0);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), ".atrest/f/%02d", i);
		assert_int_equal(bs_put(b, key, key, strlen(key), 0, NULL), 0);
	}
	s3d_page(D, 3);
	lists = s3d_calls(D, "ListObjectsV2");
	bs_expect_list(b, "", names, 8);
	/* Pages: "+a .a .atrest/f/00", then a jump past .atrest/, then 2 more. */
	assert_true(s3d_calls(D, "ListObjectsV2") - lists <= 4);
	bs_expect_list(b, "k/", under_k, 4);
	s3d_page(D, 1000);
	b->free(b);
}

static void t_list_internal(void **state)
{
	atrest_backend *b = fresh(NULL);
	struct bs_seen s = {.n = 0};
	char key[64];

	(void)state;
	for (int i = 0; i < 7; i++) {
		snprintf(key, sizeof(key), ".atrest/f/%02d", i);
		assert_int_equal(bs_put(b, key, key, strlen(key), 0, NULL), 0);
	}
	s3d_page(D, 2);
	assert_int_equal(b->list(b, ".atrest/f/", bs_collect, &s), 0);
	assert_int_equal(s.n, 7);
	s3d_page(D, 1000);
	b->free(b);
}

static void t_remove_batches(void **state)
{
	atrest_backend *b = fresh(NULL);
	char **keys = calloc(2500, sizeof(*keys));
	long dels = s3d_calls(D, "DeleteObjects");
	struct bs_seen s = {.n = 0, .stop_after = 1};

	(void)state;
	for (int i = 0; i < 2500; i++) {
		keys[i] = malloc(32);
		snprintf(keys[i], 32, "many/%04d & <x>", i);
		if (i % 500 == 0)
			assert_int_equal(
				bs_put(b, keys[i], keys[i], strlen(keys[i]), 0, NULL), 0);
	}
	assert_int_equal(b->remove_many(b, (const char *const *)keys, 2500), 0);
	assert_int_equal(s3d_calls(D, "DeleteObjects") - dels, 3);
	assert_int_equal(b->list(b, "many/", bs_collect, &s), 0);
	assert_int_equal(s.n, 0);
	for (int i = 0; i < 2500; i++)
		free(keys[i]);
	free(keys);
	b->free(b);
}

static void t_cleanup_uploads(void **state)
{
	atrest_backend *b = fresh("part-size=5M");
	uint8_t *buf = malloc(11 * MIB);
	uint64_t n = 9;

	(void)state;
	th_fill(buf, 11 * MIB, 10);
	/* A put whose abort fails leaves its upload behind (as a dead one). */
	s3d_fail(D, "CompleteMultipartUpload", 1, 400, "InvalidPart");
	s3d_fail(D, "AbortMultipartUpload", 5, 500, "InternalError");
	assert_true(put_odd(b, "u/a", buf, 11 * MIB, 0, NULL) < 0);
	assert_int_equal(s3d_uploads(D), 1);
	assert_int_equal(b->cleanup(b, 3600, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(s3d_uploads(D), 1);
	s3d_age_uploads(D, 7200);
	assert_int_equal(b->cleanup(b, 3600, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s3d_uploads(D), 0);
	free(buf);
	b->free(b);
}

/* ---- errors and time */

static void t_errors(void **state)
{
	atrest_backend *b;
	atrest_backend_reader *r;
	int rc;
	double t0;
	struct timespec ts;

	(void)state;
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret", 1);
	assert_int_equal(atrest_backend_open(&b, "s3://unit/e"), 0);
	atrest_error_clear();
	assert_int_equal(b->open_read(b, &r, "k"), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(last_msg(),
		"S3 GetObject s3://unit/e/k: HTTP 403 SignatureDoesNotMatch"));
	assert_non_null(strstr(last_msg(), "credentials from environment"));
	assert_null(strstr(last_msg(), "wrong-secret"));
	b->free(b);
	env_for(D);
	assert_int_equal(atrest_backend_open(&b, "s3://nobucket/e"), 0);
	assert_int_equal(b->prepare(b, 0), ATREST_ENOTFOUND);
	assert_non_null(strstr(last_msg(), "HTTP 404 NoSuchBucket"));
	assert_int_equal(b->open_read(b, &r, "k"), ATREST_ENOTFOUND);
	assert_non_null(strstr(last_msg(), "NoSuchBucket"));
	assert_int_equal(b->prepare(b, 1), 0); /* made */
	assert_int_equal(b->prepare(b, 0), 0);
	b->free(b);
	/* A server that does not answer in time. */
	assert_int_equal(atrest_backend_open(&b, "s3://unit/e?timeout=1"), 0);
	s3d_delay(D, 2500);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec + ts.tv_nsec / 1e9;
	assert_int_equal(b->open_read(b, &r, "k"), ATREST_EUNAVAILABLE);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	assert_true(ts.tv_sec + ts.tv_nsec / 1e9 - t0 < 2.0);
	assert_non_null(strstr(last_msg(), "S3 GetObject s3://unit/e/k: cannot reach"));
	s3d_delay(D, 0);
	b->free(b);
	/* Credentials that may list only a prefix get 403 for a missing key:
	 * a listing of it tells. */
	b = fresh(NULL);
	assert_int_equal(bs_put(b, "there", "x", 1, 0, NULL), 0);
	s3d_deny_missing(D, 1);
	assert_int_equal(b->open_read(b, &r, "absent"), ATREST_ENOTFOUND);
	assert_int_equal(b->remove(b, "absent"), ATREST_ENOTFOUND);
	assert_int_equal(bs_put(b, "new", "y", 1, ATREST_BACKEND_IF_ABSENT, NULL), 0);
	free(bs_get(b, "there", NULL, &rc, NULL));
	assert_int_equal(rc, 0);
	s3d_deny_missing(D, 0);
	b->free(b);
	/* Keys S3 cannot hold. */
	b = fresh(NULL);
	char longkey[1100];
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	assert_int_equal(b->open_read(b, &r, longkey), ATREST_EINVAL);
	assert_int_equal(b->open_read(b, &r, "bad\xff utf8"), ATREST_EINVAL);
	b->free(b);
}

/* ---- threads: one backend, many writers and readers at once */

struct worker {
	atrest_backend *b;
	int id, failed;
};

static void *work(void *p)
{
	struct worker *w = p;
	size_t n = (size_t)(w->id % 2 ? 6 * MIB : 300000);
	uint8_t *buf = malloc(n);
	char key[32];
	int rc;

	th_fill(buf, n, (uint64_t)w->id);
	for (int i = 0; i < 3 && !w->failed; i++) {
		snprintf(key, sizeof(key), "th/%d/%d", w->id, i);
		char *got;
		size_t len;
		if (put_odd(w->b, key, buf, n, 0, NULL) != 0)
			w->failed = 1;
		got = bs_get(w->b, key, &len, &rc, NULL);
		if (!got || len != n || memcmp(got, buf, n))
			w->failed = 1;
		free(got);
	}
	free(buf);
	return NULL;
}

static void t_threads(void **state)
{
	atrest_backend *b = fresh("part-size=5M&uploads=2");
	struct worker w[6];
	pthread_t th[6];

	(void)state;
	for (int i = 0; i < 6; i++) {
		w[i] = (struct worker){b, i, 0};
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failed, 0);
	}
	b->free(b);
}

/* A store on the test server: multipart uploads through the backend. */
static void t_store_uploads(void **state)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	uint8_t key[32];
	char loc[128];
	atrest_store *st;
	atrest_backend *raw;

	(void)state;
	memset(key, 0x33, sizeof(key));
	snprintf(loc, sizeof(loc), "s3://unit/up%d", ++SEQ);
	o.path = loc;
	o.key = th_raw_key(key);
	o.create = 1;
	o.state_dir = "";
	o.audit = "off";
	if (atrest_store_open(&st, &o) != 0)
		fail_msg("open %s: %s", loc, last_msg());
	raw = open_at(loc);
	upload_suite_run(st, raw);
	raw->free(raw);
	atrest_store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_locations),
		cmocka_unit_test(t_one_put_up_to_a_part),
		cmocka_unit_test(t_multipart),
		cmocka_unit_test(t_failed_put_aborts),
		cmocka_unit_test(t_retries),
		cmocka_unit_test(t_conditional),
		cmocka_unit_test(t_reads),
		cmocka_unit_test(t_list_pages),
		cmocka_unit_test(t_list_internal),
		cmocka_unit_test(t_remove_batches),
		cmocka_unit_test(t_cleanup_uploads),
		cmocka_unit_test(t_errors),
		cmocka_unit_test(t_threads),
		cmocka_unit_test(t_store_uploads),
	};
	struct suite_ctx c;
	backend_factory f = {
		"s3 (test server)", suite_create, suite_open, suite_destroy, &c};
	int fails;

	D = s3d_start("AKIDUNITTEST", "unit-test-secret");
	env_for(D);
	fails = backend_suite_run(&f);
	fails += cmocka_run_group_tests(tests, NULL, NULL);
	s3d_stop(D);
	return fails ? 1 : 0;
}
