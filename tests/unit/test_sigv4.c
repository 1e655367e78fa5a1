/*
 * Unit tests of AWS Signature Version 4 (src/lib/sigv4.c): AWS's published
 * SigV4 test suite (tests/vectors/sigv4/v4, header and presigned forms),
 * the S3 examples of the S3 SigV4 documentation (tests/vectors/sigv4/s3.txt),
 * verification of what was signed, and tampering.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "helpers.h"
#include "sigv4.h"

#define SUITE ATREST_VECTORS_DIR "/sigv4/v4"
#define MAX_HDRS 32

/* One parsed request.txt of the suite, and its context.json. */
struct vreq {
	char method[16];
	char path[1536];
	char query[1536];
	char *names[MAX_HDRS], *values[MAX_HDRS];
	atrest__sigv4_hdr h[MAX_HDRS + 4];
	size_t nh;
	char *body;
	size_t body_len;
	char access[64], secret[128], token[1024], region[32], service[32];
	char amz_date[17];
	int normalize, sign_body, omit_token;
	long expires;
};

static char *slurp(const char *dir, const char *name)
{
	char path[1024];
	size_t n;
	char *s;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	s = (char *)th_read_file(path, &n);
	assert_non_null(s);
	s = realloc(s, n + 1);
	s[n] = '\0';
	return s;
}

static void add_hdr(struct vreq *r, const char *name, const char *value)
{
	assert_true(r->nh < MAX_HDRS);
	r->names[r->nh] = strdup(name);
	r->values[r->nh] = strdup(value);
	r->h[r->nh].name = r->names[r->nh];
	r->h[r->nh].value = r->values[r->nh];
	r->nh++;
}

/* The request line: METHOD TARGET HTTP/1.1, where TARGET may hold spaces. */
static void parse_request_line(struct vreq *r, const char *line, size_t n)
{
	const char *sp1 = memchr(line, ' ', n), *sp2 = line + n;
	char target[1536];

	while (sp2 > sp1 && *sp2 != ' ')
		sp2--;
	assert_true(sp1 && sp2 > sp1);
	snprintf(r->method, sizeof(r->method), "%.*s", (int)(sp1 - line), line);
	snprintf(target, sizeof(target), "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
	char *q = strchr(target, '?');
	if (q)
		*q++ = '\0';
	snprintf(r->path, sizeof(r->path), "%s", target);
	snprintf(r->query, sizeof(r->query), "%s", q ? q : "");
}

static void parse_request(struct vreq *r, char *text)
{
	char *line = text, *nl = strchr(line, '\n');

	parse_request_line(r, line, (size_t)(nl - line));
	line = nl + 1;
	while (*line && *line != '\n') {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line == ' ' ||
			*line == '\t') { /* folded: continues the last value */
			char *v = r->values[r->nh - 1];
			size_t n = strlen(v) + strlen(line) + 2;
			v = realloc(v, n);
			strcat(strcat(v, " "), line);
			r->values[r->nh - 1] = v;
			r->h[r->nh - 1].value = v;
		} else {
			char *colon = strchr(line, ':');
			assert_non_null(colon);
			*colon = '\0';
			add_hdr(r, line, colon + 1);
		}
		line = nl ? nl + 1 : line + strlen(line);
	}
	if (*line == '\n')
		line++;
	r->body = line;
	r->body_len = strlen(line);
}

static void parse_context(struct vreq *r, const char *dir)
{
	char *text = slurp(dir, "context.json");
	json_t *j = json_loads(text, 0, NULL), *c = json_object_get(j, "credentials");
	const char *ts = json_string_value(json_object_get(j, "timestamp")), *tok;

	assert_non_null(c);
	snprintf(r->access, sizeof(r->access), "%s",
		json_string_value(json_object_get(c, "access_key_id")));
	snprintf(r->secret, sizeof(r->secret), "%s",
		json_string_value(json_object_get(c, "secret_access_key")));
	tok = json_string_value(json_object_get(c, "token"));
	snprintf(r->token, sizeof(r->token), "%s", tok ? tok : "");
	snprintf(r->region, sizeof(r->region), "%s",
		json_string_value(json_object_get(j, "region")));
	snprintf(r->service, sizeof(r->service), "%s",
		json_string_value(json_object_get(j, "service")));
	/* "2015-08-30T12:36:00Z" -> "20150830T123600Z" */
	snprintf(r->amz_date, sizeof(r->amz_date), "%.4s%.2s%.2sT%.2s%.2s%.2sZ", ts,
		ts + 5, ts + 8, ts + 11, ts + 14, ts + 17);
	r->normalize = json_is_true(json_object_get(j, "normalize"));
	r->sign_body = json_is_true(json_object_get(j, "sign_body"));
	r->omit_token = json_is_true(json_object_get(j, "omit_session_token"));
	r->expires =
		(long)json_integer_value(json_object_get(j, "expiration_in_seconds"));
	json_decref(j);
	free(text);
}

static void free_vreq(struct vreq *r, char *text)
{
	for (size_t i = 0; i < r->nh; i++) {
		free(r->names[i]);
		free(r->values[i]);
	}
	free(text);
}

static void body_hash(char out[65], const struct vreq *r)
{
	uint8_t h[32];
	char *hex;

	assert_int_equal(atrest__sha256(h, r->body, r->body_len), 0);
	hex = th_hex(h, 32);
	memcpy(out, hex, 65);
	free(hex);
}

/* Strip one trailing newline a vector file may or may not have. */
static char *expect(const char *dir, const char *name)
{
	char *s = slurp(dir, name);
	size_t n = strlen(s);

	while (n && s[n - 1] == '\n')
		s[--n] = '\0';
	return s;
}

static void assert_file_eq(const char *dir, const char *name, const char *got)
{
	char *want = expect(dir, name);

	if (strcmp(want, got) != 0)
		fail_msg("%s/%s:\n--- want\n%s\n--- got\n%s", dir, name, want, got);
	free(want);
}

/* The Authorization line of a signed-request file. */
static char *auth_line(const char *dir, const char *name)
{
	char *s = slurp(dir, name), *a = strstr(s, "\nAuthorization:"), *nl;

	assert_non_null(a);
	a += strlen("\nAuthorization:");
	nl = strchr(a, '\n');
	if (nl)
		*nl = '\0';
	memmove(s, a, strlen(a) + 1);
	return s;
}

static atrest__sigv4_msg vreq_msg(struct vreq *r, const char *payload)
{
	atrest__sigv4_msg m = {.method = r->method,
		.path = r->path,
		.query = r->query,
		.headers = r->h,
		.nheaders = r->nh,
		.payload_hash = payload};
	return m;
}

static atrest__sigv4_creds vreq_creds(const struct vreq *r, int with_token)
{
	atrest__sigv4_creds c = {.access_key = r->access,
		.secret = (const uint8_t *)r->secret,
		.secret_len = strlen(r->secret),
		.token = with_token && r->token[0] ? r->token : NULL};
	return c;
}

/* Header form: canonical request, string to sign, signature, Authorization. */
static void check_header_form(const char *dir, struct vreq *r)
{
	char hash[65], scope[128], *creq, *sts, *auth, *want_auth;
	int flags = r->normalize ? 0 : ATREST__SIGV4_NO_NORMALIZE;
	atrest__sigv4_creds c;
	atrest__sigv4_msg m;
	atrest__sigv4_auth a;

	body_hash(hash, r);
	add_hdr(r, "X-Amz-Date", r->amz_date);
	if (r->token[0] && !r->omit_token)
		add_hdr(r, "X-Amz-Security-Token", r->token);
	if (r->sign_body)
		add_hdr(r, "x-amz-content-sha256", hash);
	m = vreq_msg(r, hash);
	c = vreq_creds(r, !r->omit_token);
	assert_int_equal(
		atrest__sigv4_canonical_request(&creq, NULL, &m, NULL, flags), 0);
	assert_file_eq(dir, "header-canonical-request.txt", creq);
	assert_int_equal(atrest__sigv4_scope(scope, sizeof(scope), r->amz_date, r->region,
				 r->service),
		0);
	assert_int_equal(atrest__sigv4_string_to_sign(&sts, r->amz_date, scope, creq), 0);
	assert_file_eq(dir, "header-string-to-sign.txt", sts);
	assert_int_equal(atrest__sigv4_authorization(&auth, &m, &c, r->amz_date,
				 r->region, r->service, flags),
		0);
	want_auth = auth_line(dir, "header-signed-request.txt");
	assert_string_equal(auth, want_auth);
	/* The server side accepts exactly this, and only with the secret. */
	assert_int_equal(atrest__sigv4_parse_authorization(&a, auth), 0);
	assert_file_eq(dir, "header-signature.txt", a.signature);
	assert_int_equal(atrest__sigv4_verify(
				 &m, &a, r->amz_date, c.secret, c.secret_len, 0, flags),
		0);
	assert_int_equal(atrest__sigv4_verify(
				 &m, &a, r->amz_date, (const uint8_t *)"x", 1, 0, flags),
		ATREST_EKEY);
	free(creq);
	free(sts);
	free(auth);
	free(want_auth);
}

/* Presigned form: the signature and the canonical request it covers. */
static void check_query_form(const char *dir, struct vreq *r)
{
	char hash[65], *q, *creq;
	int flags = r->normalize ? 0 : ATREST__SIGV4_NO_NORMALIZE;
	atrest__sigv4_creds c = vreq_creds(r, !r->omit_token);
	atrest__sigv4_msg m;
	atrest__sigv4_auth a;

	body_hash(hash, r);
	m = vreq_msg(r, hash);
	assert_int_equal(atrest__sigv4_presign(&q, &m, &c, r->amz_date, r->region,
				 r->service, r->expires, flags),
		0);
	assert_int_equal(atrest__sigv4_parse_presigned(&a, q), 0);
	assert_file_eq(dir, "query-signature.txt", a.signature);
	m.query = q;
	assert_int_equal(atrest__sigv4_canonical_query(&creq, q, "X-Amz-Signature"), 0);
	m.query = creq;
	{
		char *full;
		assert_int_equal(
			atrest__sigv4_canonical_request(&full, NULL, &m, NULL, flags), 0);
		assert_file_eq(dir, "query-canonical-request.txt", full);
		free(full);
	}
	m.query = q;
	assert_int_equal(atrest__sigv4_verify(
				 &m, &a, a.amz_date, c.secret, c.secret_len, 1, flags),
		0);
	assert_int_equal(atrest__sigv4_verify(
				 &m, &a, a.amz_date, (const uint8_t *)"y", 1, 1, flags),
		ATREST_EKEY);
	free(creq);
	free(q);
}

static int run_vector(const char *name, int query_form)
{
	char dir[1024], *text;
	struct vreq r;

	memset(&r, 0, sizeof(r));
	snprintf(dir, sizeof(dir), "%s/%s", SUITE, name);
	parse_context(&r, dir);
	text = slurp(dir, "request.txt");
	parse_request(&r, text);
	if (query_form)
		check_query_form(dir, &r);
	else
		check_header_form(dir, &r);
	free_vreq(&r, text);
	return 1;
}

static int for_each_vector(int query_form)
{
	DIR *d = opendir(SUITE);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n += run_vector(e->d_name, query_form);
	closedir(d);
	return n;
}

static void test_suite_headers(void **state)
{
	(void)state;
	assert_int_equal(for_each_vector(0), 38);
}

static void test_suite_presigned(void **state)
{
	(void)state;
	assert_int_equal(for_each_vector(1), 38);
}

/*
 * The examples of the Amazon S3 API Reference, "Authenticating Requests
 * (AWS Signature Version 4)": single-chunk header signing (GET Object with
 * a range, PUT Object, GET Bucket Lifecycle, GET Bucket / list objects),
 * the presigned URL example, and the chunked-upload (aws-chunked) seed and
 * chunk signatures.  Example credentials and time of those pages.
 */
#define S3_AK "AKIAIOSFODNN7EXAMPLE"
#define S3_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define S3_DATE "20130524T000000Z"
#define S3_EMPTY ATREST__SIGV4_EMPTY_SHA256

static const atrest__sigv4_creds s3_creds = {
	S3_AK, (const uint8_t *)S3_SECRET, sizeof(S3_SECRET) - 1, NULL};

struct s3_example {
	const char *method, *path, *query, *payload, *signature;
	atrest__sigv4_hdr h[8];
	size_t nh;
};

static const struct s3_example s3_examples[] = {
	{"GET", "/test.txt", "", S3_EMPTY,
		"f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		{{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"},
			{"x-amz-content-sha256", S3_EMPTY}, {"x-amz-date", S3_DATE}},
		4},
	{"PUT", "/test$file.text", "",
		"44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		"98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
		{{"Host", "examplebucket.s3.amazonaws.com"},
			{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
			{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
			{"x-amz-content-sha256",
				"44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
			{"x-amz-date", S3_DATE}},
		5},
	{"GET", "/", "lifecycle", S3_EMPTY,
		"fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
		{{"Host", "examplebucket.s3.amazonaws.com"},
			{"x-amz-content-sha256", S3_EMPTY}, {"x-amz-date", S3_DATE}},
		3},
	{"GET", "/", "max-keys=2&prefix=J", S3_EMPTY,
		"34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
		{{"Host", "examplebucket.s3.amazonaws.com"},
			{"x-amz-content-sha256", S3_EMPTY}, {"x-amz-date", S3_DATE}},
		3},
	{"PUT", "/examplebucket/chunkObject.txt", "", ATREST__SIGV4_STREAMING,
		"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
		{{"Host", "s3.amazonaws.com"}, {"x-amz-date", S3_DATE},
			{"x-amz-storage-class", "REDUCED_REDUNDANCY"},
			{"x-amz-content-sha256", ATREST__SIGV4_STREAMING},
			{"Content-Encoding", "aws-chunked"},
			{"x-amz-decoded-content-length", "66560"},
			{"Content-Length", "66824"}},
		7},
};

static atrest__sigv4_msg s3_msg(const struct s3_example *e)
{
	atrest__sigv4_msg m = {e->method, e->path, e->query, e->h, e->nh, e->payload};
	return m;
}

static void test_s3_examples(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(s3_examples) / sizeof(s3_examples[0]); i++) {
		const struct s3_example *e = &s3_examples[i];
		atrest__sigv4_msg m = s3_msg(e);
		atrest__sigv4_auth a;
		char *auth;

		assert_int_equal(atrest__sigv4_authorization(&auth, &m, &s3_creds,
					 S3_DATE, "us-east-1", "s3", ATREST__SIGV4_S3),
			0);
		assert_int_equal(atrest__sigv4_parse_authorization(&a, auth), 0);
		assert_string_equal(a.signature, e->signature);
		assert_int_equal(atrest__sigv4_verify(&m, &a, S3_DATE, s3_creds.secret,
					 s3_creds.secret_len, 0, ATREST__SIGV4_S3),
			0);
		free(auth);
	}
}

/* S3 keys are encoded once and never normalized; "$" is %24. */
static void test_s3_uri(void **state)
{
	char *u;

	(void)state;
	assert_int_equal(
		atrest__sigv4_canonical_uri(&u, "/test$file.text", ATREST__SIGV4_S3), 0);
	assert_string_equal(u, "/test%24file.text");
	free(u);
	assert_int_equal(
		atrest__sigv4_canonical_uri(&u, "/test%24file.text", ATREST__SIGV4_S3),
		0);
	assert_string_equal(u, "/test%24file.text");
	free(u);
	assert_int_equal(
		atrest__sigv4_canonical_uri(&u, "/a//b/../c%2", ATREST__SIGV4_S3), 0);
	assert_string_equal(u, "/a//b/../c%252");
	free(u);
	/* Other services encode the path as sent once more. */
	assert_int_equal(atrest__sigv4_canonical_uri(&u, "/a%20b/./c/..", 0), 0);
	assert_string_equal(u, "/a%2520b/");
	free(u);
}

static void test_s3_presigned(void **state)
{
	atrest__sigv4_hdr h[] = {{"Host", "examplebucket.s3.amazonaws.com"}};
	atrest__sigv4_msg m = {"GET", "/test.txt", "", h, 1, ATREST__SIGV4_UNSIGNED};
	atrest__sigv4_auth a;
	char *q;

	(void)state;
	assert_int_equal(atrest__sigv4_presign(&q, &m, &s3_creds, S3_DATE, "us-east-1",
				 "s3", 86400, ATREST__SIGV4_S3),
		0);
	assert_int_equal(atrest__sigv4_parse_presigned(&a, q), 0);
	assert_string_equal(a.signature,
		"aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
	assert_int_equal(a.expires, 86400);
	m.query = q;
	assert_int_equal(atrest__sigv4_verify(&m, &a, a.amz_date, s3_creds.secret,
				 s3_creds.secret_len, 1, ATREST__SIGV4_S3),
		0);
	/* Another object, same signature: refused. */
	m.path = "/test2.txt";
	assert_int_equal(atrest__sigv4_verify(&m, &a, a.amz_date, s3_creds.secret,
				 s3_creds.secret_len, 1, ATREST__SIGV4_S3),
		ATREST_EKEY);
	free(q);
}

/* 65 KiB of 'a' in 64 KiB chunks, chained from the seed signature. */
static void test_s3_chunks(void **state)
{
	static const char *want[] = {
		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"};
	size_t sizes[] = {65536, 1024, 0};
	char prev[65] =
		"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
	char scope[100], sig[65];
	uint8_t key[32], h[32], *data = malloc(65536);

	(void)state;
	memset(data, 'a', 65536);
	assert_int_equal(
		atrest__sigv4_scope(scope, sizeof(scope), S3_DATE, "us-east-1", "s3"), 0);
	assert_int_equal(atrest__sigv4_signing_key(key, s3_creds.secret,
				 s3_creds.secret_len, "20130524", "us-east-1", "s3"),
		0);
	for (int i = 0; i < 3; i++) {
		char *hex;

		assert_int_equal(atrest__sha256(h, data, sizes[i]), 0);
		hex = th_hex(h, 32);
		assert_int_equal(atrest__sigv4_chunk_signature(
					 sig, key, S3_DATE, scope, prev, hex),
			0);
		assert_string_equal(sig, want[i]);
		memcpy(prev, sig, 65);
		free(hex);
	}
	/*
	 * Trailer: checked against an independent computation (Python's hmac
	 * over the documented string-to-sign layout).
	 */
	assert_int_equal(atrest__sha256(h, "x-amz-checksum-crc32c:sOO8/Q==\n", 31), 0);
	{
		char *hex = th_hex(h, 32);
		assert_int_equal(atrest__sigv4_trailer_signature(
					 sig, key, S3_DATE, scope, want[2], hex),
			0);
		assert_string_equal(sig,
			"838d1eeafd0ec086f3e98ef47cfb73e3cf6fea3c489e22a61089fa643e8b4b61");
		free(hex);
	}
	free(data);
}

static void test_parse_authorization_bad(void **state)
{
	static const char *bad[] = {
		"",
		"AWS4-HMAC-SHA1 Credential=AK/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=host, Signature=" S3_EMPTY,
		"AWS4-HMAC-SHA256Credential=AK/20130524/us-east-1/s3/aws4_request",
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=host",
		"AWS4-HMAC-SHA256 Credential=AK/2013052/us-east-1/s3/aws4_request, "
		"SignedHeaders=host, Signature=" S3_EMPTY,
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_reques, "
		"SignedHeaders=host, Signature=" S3_EMPTY,
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/x/aws4_request, "
		"SignedHeaders=host, Signature=" S3_EMPTY,
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=x-amz-date;host, Signature=" S3_EMPTY,
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=x-amz-date, Signature=" S3_EMPTY,
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=Host, Signature=" S3_EMPTY,
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=host;;x, Signature=" S3_EMPTY,
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=host, Signature=E3b0c44298fc1c149afbf4c8996fb92427ae41e4649b93"
		"4ca495991b7852b855",
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=host, Signature=" S3_EMPTY ", Signature=" S3_EMPTY,
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, "
		"SignedHeaders=host, Signature=" S3_EMPTY ", Extra=1",
	};
	atrest__sigv4_auth a;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (atrest__sigv4_parse_authorization(&a, bad[i]) != ATREST_EINVAL)
			fail_msg("accepted: %s", bad[i]);
	assert_int_equal(
		atrest__sigv4_parse_authorization(&a,
			"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/"
			"aws4_request,SignedHeaders=host;x-amz-date,Signature=" S3_EMPTY),
		0);
	assert_string_equal(a.access_key, "AK");
	assert_string_equal(a.region, "us-east-1");
	assert_string_equal(a.service, "s3");
	assert_string_equal(a.signed_headers, "host;x-amz-date");
}

static void test_parse_presigned_bad(void **state)
{
	static const char *good =
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1"
		"%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
		"X-Amz-SignedHeaders=host&X-Amz-Signature=" S3_EMPTY;
	static const char *bad[] = {
		"",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1"
		"%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=604801&"
		"X-Amz-SignedHeaders=host&X-Amz-Signature=" S3_EMPTY,
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1"
		"%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000&X-Amz-Expires=86400&"
		"X-Amz-SignedHeaders=host&X-Amz-Signature=" S3_EMPTY,
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1"
		"%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
		"X-Amz-SignedHeaders=host&X-Amz-Signature=" S3_EMPTY
		"&X-Amz-Signature=" S3_EMPTY,
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1"
		"%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=-1&"
		"X-Amz-SignedHeaders=host&X-Amz-Signature=" S3_EMPTY,
	};
	atrest__sigv4_auth a;

	(void)state;
	assert_int_equal(atrest__sigv4_parse_presigned(&a, good), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (atrest__sigv4_parse_presigned(&a, bad[i]) != ATREST_EINVAL)
			fail_msg("accepted: %s", bad[i]);
}

/* Every signed part matters: change one and the signature fails. */
static void test_tamper(void **state)
{
	const struct s3_example *e = &s3_examples[1];
	atrest__sigv4_hdr h[8];
	atrest__sigv4_msg m;
	atrest__sigv4_auth a;
	char *auth;

	(void)state;
	memcpy(h, e->h, sizeof(h));
	m = s3_msg(e);
	m.headers = h;
	assert_int_equal(atrest__sigv4_authorization(&auth, &m, &s3_creds, S3_DATE,
				 "us-east-1", "s3", ATREST__SIGV4_S3),
		0);
	assert_int_equal(atrest__sigv4_parse_authorization(&a, auth), 0);
	free(auth);
#define VERIFY(mm, date)                                                               \
	atrest__sigv4_verify(&(mm), &a, date, s3_creds.secret, s3_creds.secret_len, 0, \
		ATREST__SIGV4_S3)
	assert_int_equal(VERIFY(m, S3_DATE), 0);
	/* a header value */
	h[2].value = "STANDARD";
	assert_int_equal(VERIFY(m, S3_DATE), ATREST_EKEY);
	h[2] = e->h[2];
	/* white space alone does not matter */
	h[2].value = "  REDUCED_REDUNDANCY ";
	assert_int_equal(VERIFY(m, S3_DATE), 0);
	h[2] = e->h[2];
	/* the method, the path, the query, the payload */
	m.method = "POST";
	assert_int_equal(VERIFY(m, S3_DATE), ATREST_EKEY);
	m = s3_msg(e);
	m.headers = h;
	m.path = "/test$file.txt";
	assert_int_equal(VERIFY(m, S3_DATE), ATREST_EKEY);
	m.path = e->path;
	m.query = "acl";
	assert_int_equal(VERIFY(m, S3_DATE), ATREST_EKEY);
	m.query = e->query;
	m.payload_hash = S3_EMPTY;
	assert_int_equal(VERIFY(m, S3_DATE), ATREST_EKEY);
	m.payload_hash = e->payload;
	/* a signed header missing, a date outside the scope */
	m.nheaders = 4;
	assert_int_equal(VERIFY(m, S3_DATE), ATREST_EINVAL);
	m.nheaders = e->nh;
	assert_int_equal(VERIFY(m, "20130525T000000Z"), ATREST_EINVAL);
	/* another region or service in the scope */
	snprintf(a.region, sizeof(a.region), "us-west-2");
	assert_int_equal(VERIFY(m, S3_DATE), ATREST_EKEY);
#undef VERIFY
}

static void test_amz_date(void **state)
{
	char d[17];
	int64_t t;

	(void)state;
	assert_int_equal(atrest__sigv4_amz_date(d, 1440938160), 0);
	assert_string_equal(d, "20150830T123600Z");
	assert_int_equal(atrest__sigv4_parse_amz_date(&t, d), 0);
	assert_int_equal(t, 1440938160);
	assert_int_equal(
		atrest__sigv4_parse_amz_date(&t, "20150830T123600"), ATREST_EINVAL);
	assert_int_equal(
		atrest__sigv4_parse_amz_date(&t, "2015083OT123600Z"), ATREST_EINVAL);
	assert_int_equal(
		atrest__sigv4_parse_amz_date(&t, "20151330T123600Z"), ATREST_EINVAL);
}

static void test_query_canonical(void **state)
{
	char *q;

	(void)state;
	assert_int_equal(
		atrest__sigv4_canonical_query(&q, "b=2&a=1&a=0&&c&d=%7e+x", NULL), 0);
	assert_string_equal(q, "a=0&a=1&b=2&c=&d=~%2Bx");
	free(q);
	assert_int_equal(atrest__sigv4_canonical_query(
				 &q, "X-Amz-Signature=1&a=1", "X-Amz-Signature"),
		0);
	assert_string_equal(q, "a=1");
	free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite_headers),
		cmocka_unit_test(test_suite_presigned),
		cmocka_unit_test(test_s3_examples),
		cmocka_unit_test(test_s3_uri),
		cmocka_unit_test(test_s3_presigned),
		cmocka_unit_test(test_s3_chunks),
		cmocka_unit_test(test_parse_authorization_bad),
		cmocka_unit_test(test_parse_presigned_bad),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_amz_date),
		cmocka_unit_test(test_query_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
