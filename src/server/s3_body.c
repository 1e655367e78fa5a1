/*
 * S3 request bodies: aws-chunked decoding, and every check S3 makes of a
 * body (the signed SHA-256, Content-MD5, x-amz-checksum-* in a header or
 * a trailer), computed as the bytes stream; small bodies can be collected
 * whole (their MD5 is then known before the object is sealed).
 */
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "events.h"
#include "s3_int.h"
#include "sigv4.h"

/* Bytes all collected bodies may hold together. */
#define BUDGET (256ull << 20)

static _Atomic uint64_t budget_used;

int s3_budget_take(struct s3_req *sr, size_t n)
{
	uint64_t was = atomic_fetch_add(&budget_used, n);

	if (was + n > BUDGET) {
		atomic_fetch_sub(&budget_used, n);
		return -1;
	}
	sr->budget = n;
	return 0;
}

void s3_budget_give(struct s3_req *sr)
{
	atomic_fetch_sub(&budget_used, sr->budget);
	sr->budget = 0;
}

void s3_hex(char *out, const uint8_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static int is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* Plaintext of the object: digests, then the buffer or the writer. */
static int plain(struct http_req *req, const void *buf, size_t len)
{
	struct s3_req *sr = req->app;

	if (sr->md5)
		EVP_DigestUpdate(sr->md5, buf, len);
	if (sr->sha256 && !sr->chunked)
		EVP_DigestUpdate(sr->sha256, buf, len);
	if (sr->sum == S3_SUM_CRC32)
		sr->crc = s3_crc32(sr->crc, buf, len);
	else if (sr->sum == S3_SUM_CRC32C)
		sr->crc = s3_crc32c(sr->crc, buf, len);
	else if (sr->sum_sha)
		EVP_DigestUpdate(sr->sum_sha, buf, len);
	if (!sr->buffering)
		return http_put_data(req, buf, len);
	if (sr->buf_len + len > sr->buf_cap)
		return http_fail(req, 400, "IncompleteBody",
			"The body is longer than its declared length.");
	memcpy(sr->buf + sr->buf_len, buf, len);
	sr->buf_len += len;
	return 0;
}

static int emit(void *payload, const void *buf, size_t len)
{
	return plain(payload, buf, len);
}

int s3_body_feed(struct http_req *req, const void *buf, size_t len)
{
	struct s3_req *sr = req->app;

	if (!sr->chunked)
		return plain(req, buf, len);
	if (s3_chunked_feed(&sr->dec, buf, len) == 0)
		return 0;
	if (req->fail_status || req->responded)
		return -1; /* already answered (the writer failed) */
	return http_fail(req, sr->dec.status ? sr->dec.status : 500,
		sr->dec.code ? sr->dec.code : "InternalError", "%s",
		sr->dec.why ? sr->dec.why : "the body could not be stored");
}

static const struct {
	const char *name;
	enum s3_sum sum;
} algs[] = {{"x-amz-checksum-crc32", S3_SUM_CRC32},
	{"x-amz-checksum-crc32c", S3_SUM_CRC32C}, {"x-amz-checksum-sha1", S3_SUM_SHA1},
	{"x-amz-checksum-sha256", S3_SUM_SHA256}};

/* A checksum header of an algorithm not served (crc64nvme, ...). */
static int unknown_checksum(const char *name, const char *value, void *payload)
{
	(void)value;
	if (strncasecmp(name, "x-amz-checksum-", 15) != 0 ||
		!strcasecmp(name, "x-amz-checksum-mode") ||
		!strcasecmp(name, "x-amz-checksum-type"))
		return 0;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (!strcasecmp(name, algs[i].name))
			return 0;
	*(int *)payload = 1;
	return 1;
}

/* Which x-amz-checksum-* the request carries, as a header or a trailer. */
static int checksum_setup(struct http_req *req, const char *trailer)
{
	struct s3_req *sr = req->app;
	int unknown = 0;

	http_headers_each(req, unknown_checksum, &unknown);
	if (trailer)
		unknown_checksum(trailer, "", &unknown);
	if (unknown) {
		http_error(req, 501, "NotImplemented",
			"Only the crc32, crc32c, sha1 and sha256 checksums are supported.");
		return -1;
	}
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		const char *v = http_header(req, algs[i].name);
		int in_trailer = trailer && !strcasecmp(trailer, algs[i].name);

		if (!v && !in_trailer)
			continue;
		if (v && strlen(v) >= sizeof(sr->sum_expect)) {
			http_error(req, 400, "InvalidRequest", "Malformed %s.",
				algs[i].name);
			return -1;
		}
		sr->sum = algs[i].sum;
		snprintf(sr->sum_header, sizeof(sr->sum_header), "%s", algs[i].name);
		if (v)
			snprintf(sr->sum_expect, sizeof(sr->sum_expect), "%s", v);
		if ((sr->sum == S3_SUM_SHA1 || sr->sum == S3_SUM_SHA256) &&
			(!(sr->sum_sha = EVP_MD_CTX_new()) ||
				EVP_DigestInit_ex(sr->sum_sha,
					sr->sum == S3_SUM_SHA1 ? EVP_sha1()
							       : EVP_sha256(),
					NULL) != 1)) {
			http_error(req, 500, "InternalError", "out of memory");
			return -1;
		}
		return 0;
	}
	return 0;
}

static int chunked_setup(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const char *trailer = http_header(req, "x-amz-trailer");
	char lower[48];
	int sign;

	if (!strcmp(sr->payload, ATREST__SIGV4_STREAMING) ||
		!strcmp(sr->payload, ATREST__SIGV4_STREAMING_TRAILER))
		sign = 1;
	else if (!strcmp(sr->payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"))
		sign = 0;
	else {
		http_error(req, 400, "InvalidArgument",
			"x-amz-content-sha256 must be a SHA-256, UNSIGNED-PAYLOAD or "
			"a STREAMING-* value.");
		return -1;
	}
	if (trailer && strlen(trailer) >= sizeof(lower)) {
		http_error(req, 400, "InvalidRequest", "Malformed x-amz-trailer.");
		return -1;
	}
	if (trailer) {
		size_t i;

		for (i = 0; trailer[i]; i++)
			lower[i] = (char)(trailer[i] >= 'A' && trailer[i] <= 'Z'
					? trailer[i] + 32
					: trailer[i]);
		lower[i] = '\0';
	}
	if (checksum_setup(req, trailer ? lower : NULL) < 0)
		return -1;
	sr->chunked = 1;
	if (s3_chunked_init(&sr->dec, sign ? sr->sigkey : NULL, sr->amz_date, sr->scope,
		    sr->seed, trailer ? lower : NULL, emit, req) < 0) {
		http_error(req, 500, "InternalError", "out of memory");
		return -1;
	}
	return 0;
}

int s3_body_checks(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const char *md5 = http_header(req, "content-md5");

	if (!(sr->md5 = EVP_MD_CTX_new()) ||
		EVP_DigestInit_ex(sr->md5, EVP_md5(), NULL) != 1) {
		http_error(req, 500, "InternalError", "out of memory");
		return -1;
	}
	if (md5) {
		if (strlen(md5) != 24) {
			http_error(req, 400, "InvalidDigest",
				"The Content-MD5 you specified was invalid.");
			return -1;
		}
		memcpy(sr->content_md5, md5, 25);
	}
	if (!strncmp(sr->payload, "STREAMING-", 10))
		return chunked_setup(req);
	if (is_hex64(sr->payload) &&
		(!(sr->sha256 = EVP_MD_CTX_new()) ||
			EVP_DigestInit_ex(sr->sha256, EVP_sha256(), NULL) != 1)) {
		http_error(req, 500, "InternalError", "out of memory");
		return -1;
	}
	if (!is_hex64(sr->payload) && strcmp(sr->payload, ATREST__SIGV4_UNSIGNED) != 0) {
		http_error(req, 400, "InvalidArgument",
			"x-amz-content-sha256 must be a SHA-256, UNSIGNED-PAYLOAD or a "
			"STREAMING-* value.");
		return -1;
	}
	return checksum_setup(req, NULL);
}

static void b64(char *out, const uint8_t *in, size_t n)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* The checksum computed, base64 as S3 writes it. */
static void checksum_value(struct s3_req *sr, char out[64])
{
	uint8_t d[32];
	unsigned int n = 32;

	if (sr->sum_sha) {
		EVP_DigestFinal_ex(sr->sum_sha, d, &n);
		b64(out, d, n);
		return;
	}
	d[0] = (uint8_t)(sr->crc >> 24);
	d[1] = (uint8_t)(sr->crc >> 16);
	d[2] = (uint8_t)(sr->crc >> 8);
	d[3] = (uint8_t)sr->crc;
	b64(out, d, 4);
}

static int verify_digests(struct http_req *req)
{
	struct s3_req *sr = req->app;
	uint8_t d[32];
	unsigned int n = 32;
	char hex[65], b[64];

	if (sr->sha256) {
		EVP_DigestFinal_ex(sr->sha256, d, &n);
		s3_hex(hex, d, 32);
		if (!atrest__sigv4_equal(hex, sr->payload)) {
			http_error(req, 400, "XAmzContentSHA256Mismatch",
				"The provided 'x-amz-content-sha256' header does not "
				"match what was computed.");
			return -1;
		}
	}
	EVP_DigestFinal_ex(sr->md5, d, &n);
	s3_hex(sr->etag, d, 16);
	b64(b, d, 16);
	if (sr->content_md5[0] && strcmp(b, sr->content_md5) != 0) {
		http_error(req, 400, "BadDigest",
			"The Content-MD5 you specified did not match what we received.");
		return -1;
	}
	if (sr->sum != S3_SUM_NONE) {
		const char *want = sr->chunked && !sr->sum_expect[0]
			? sr->dec.trailer_value
			: sr->sum_expect;

		checksum_value(sr, b);
		if (strcmp(b, want) != 0) {
			http_error(req, 400, "BadDigest",
				"The %s you specified did not match the calculated "
				"checksum.",
				sr->sum_header);
			return -1;
		}
	}
	return 0;
}

int s3_body_verify(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const char *dl = http_header(req, "x-amz-decoded-content-length");

	if (sr->chunked && s3_chunked_finish(&sr->dec) < 0) {
		http_error(req, sr->dec.status, sr->dec.code, "%s", sr->dec.why);
		return -1;
	}
	if (sr->chunked && dl && strtoull(dl, NULL, 10) != sr->dec.decoded) {
		http_error(req, 400, "IncompleteBody",
			"The body's length is not x-amz-decoded-content-length.");
		return -1;
	}
	return verify_digests(req);
}

/* ---- collected bodies ---- */

static int collect_write(struct http_req *req, const void *buf, size_t len)
{
	return s3_body_feed(req, buf, len);
}

static void collect_finish(struct http_req *req)
{
	struct s3_req *sr = req->app;

	if (s3_body_verify(req) < 0)
		return;
	sr->then(req);
}

static const struct http_body_sink collect_sink = {collect_write, collect_finish, NULL};

int s3_body_collect(struct http_req *req, size_t cap, void (*then)(struct http_req *))
{
	struct s3_req *sr = req->app;

	if (s3_budget_take(sr, cap) < 0)
		return -1;
	if (!(sr->buf = malloc(cap ? cap : 1))) {
		http_error(req, 500, "InternalError", "out of memory");
		return 0;
	}
	sr->buf_cap = cap;
	sr->buffering = 1;
	sr->then = then;
	http_body_begin(req, &collect_sink, sr->chunked ? 0 : cap);
	return 0;
}

void s3_body_collect_or_slow_down(
	struct http_req *req, size_t cap, void (*then)(struct http_req *))
{
	if (s3_body_collect(req, cap, then) < 0)
		http_error(req, 503, "SlowDown", "Please reduce your request rate.");
}
