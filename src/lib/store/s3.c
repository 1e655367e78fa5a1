/*
 * The S3 store backend (s3://BUCKET/PREFIX?...): object "a/b" is the key
 * PREFIX/a/b of the bucket, reached over libcurl with SigV4-signed requests
 * (AWS S3, MinIO, Ceph RGW).  This file holds the handle, its settings,
 * signing and errors, listing, removal and the cleanup of dead uploads;
 * puts are in s3_write.c, reads in s3_read.c, XML answers in s3_xml.c.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "buf.h"
#include "crypto.h"
#include "plugins.h"
#include "s3_int.h"
#include "sigv4.h"

#define TIMEOUT_DEFAULT_MS 30000
#define PART_DEFAULT (8u << 20)
#define UPLOADS_DEFAULT 3
#define ABORT_AFTER_DEFAULT 86400 /* seconds: an upload a day old is dead */
#define MIN_RATE (256u << 10)     /* bytes/s a transfer is given time for */
#define DELETE_BATCH 1000

/* ---- keys and etags */

/* Length of the UTF-8 sequence at p (0: invalid). */
static size_t utf8_len(const unsigned char *p)
{
	size_t n = p[0] < 0x80                ? 1
		: p[0] >= 0xc2 && p[0] < 0xe0 ? 2
		: p[0] >= 0xe0 && p[0] < 0xf0 ? 3
		: p[0] >= 0xf0 && p[0] < 0xf5 ? 4
					      : 0;

	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) ||
		(n == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
		(n == 4 && p[0] == 0xf0 && p[1] < 0x90) ||
		(n == 4 && p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return n;
}

static int utf8_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = utf8_len(p);
		if (n == 0)
			return 0;
		p += n;
	}
	return 1;
}

/* '/'-separated, no empty, "." or ".." component, no control character. */
static int path_ok(const char *s)
{
	const char *c = s, *p;

	if (!*s || *s == '/')
		return 0;
	for (const char *q = s; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return 0;
	for (;; c = p + 1) {
		p = strchrnul(c, '/');
		if (p == c || (p - c == 1 && c[0] == '.') ||
			(p - c == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		if (!*p)
			return 1;
	}
}

int atrest__s3_check_key(const atrest__s3 *s, const char *key)
{
	size_t n = key ? strlen(key) : 0;

	ENSURE(key && n <= 1200 && path_ok(key) && utf8_ok(key), ATREST_EINVAL,
		"S3: refusing a key that is empty, too long, absolute, not UTF-8, or "
		"has an empty, \".\" or \"..\" component");
	ENSURE(s->prefix_len + n <= ATREST__S3_KEY_MAX, ATREST_EINVAL,
		"S3: key '%s%.64s...' is longer than S3's 1024 bytes", s->prefix, key);
	return 0;
}

int atrest__s3_nonce(char out[ATREST__S3_NONCE_LEN + 1])
{
	uint8_t r[ATREST__S3_NONCE_LEN / 2];

	GUARD(atrest__rand(r, sizeof(r)));
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

void atrest__s3_etag_clean(char out[ATREST__S3_ETAG_MAX], const char *value)
{
	size_t n;

	out[0] = '\0';
	if (!value)
		return;
	if (strncmp(value, "W/", 2) == 0)
		value += 2;
	if (*value == '"')
		value++;
	n = strcspn(value, "\"\r\n");
	if (n < ATREST__S3_ETAG_MAX) {
		memcpy(out, value, n);
		out[n] = '\0';
	}
}

void atrest__s3_etag_join(
	char out[ATREST_BACKEND_ETAG_MAX], const char *etag, const char *nonce)
{
	snprintf(out, ATREST_BACKEND_ETAG_MAX, "%s%s%s", etag, *nonce ? ":" : "", nonce);
}

int atrest__s3_etag_split(char etag[ATREST__S3_ETAG_MAX],
	char nonce[ATREST__S3_NONCE_LEN + 1], const char *joined)
{
	const char *colon = strchr(joined, ':');
	size_t n = colon ? (size_t)(colon - joined) : strlen(joined);

	ENSURE(n > 0 && n < ATREST__S3_ETAG_MAX &&
			(!colon || strlen(colon + 1) == ATREST__S3_NONCE_LEN),
		ATREST_EINVAL, "S3: not an etag of this backend");
	memcpy(etag, joined, n);
	etag[n] = '\0';
	snprintf(nonce, ATREST__S3_NONCE_LEN + 1, "%s", colon ? colon + 1 : "");
	return 0;
}

/* ---- signed requests */

void atrest__s3_hdr(atrest__s3_req *r, const char *name, const char *value)
{
	if (r->nh < (int)(sizeof(r->hname) / sizeof(r->hname[0]))) {
		r->hname[r->nh] = name;
		r->hvalue[r->nh++] = value;
	}
}

long atrest__s3_time_for(const atrest__s3 *s, uint64_t n)
{
	uint64_t extra = n / MIN_RATE * 1000;

	return s->timeout_ms + (long)(extra < 86400000 ? extra : 86400000);
}

struct signer {
	atrest__s3 *s;
	atrest__s3_req *r;
	const char *path; /* as on the wire */
	const char *hash; /* x-amz-content-sha256 */
	const atrest__aws_keys *keys;
};

/* Sign again before every attempt: a fresh X-Amz-Date. */
static int sign(atrest__http_req *req, void *arg)
{
	struct signer *g = arg;
	const atrest__aws_keys *k = g->keys;
	atrest__sigv4_hdr hd[12];
	char date[17], *auth = NULL;
	size_t n = 0;
	atrest__sigv4_msg m = {req->method, g->path, g->r->query, hd, 0, g->hash};
	atrest__sigv4_creds cr = {k->access_key, k->secret->data, k->secret->len,
		k->token ? (const char *)k->token->data : NULL};

	GUARD(atrest__sigv4_amz_date(date, (int64_t)time(NULL)));
	hd[n++] = (atrest__sigv4_hdr){"Host", g->s->host};
	hd[n++] = (atrest__sigv4_hdr){"x-amz-content-sha256", g->hash};
	hd[n++] = (atrest__sigv4_hdr){"x-amz-date", date};
	if (k->token)
		hd[n++] = (atrest__sigv4_hdr){"x-amz-security-token", cr.token};
	for (int i = 0; i < g->r->nh; i++)
		hd[n++] = (atrest__sigv4_hdr){g->r->hname[i], g->r->hvalue[i]};
	m.nheaders = n;
	GUARD(atrest__sigv4_authorization(
		&auth, &m, &cr, date, g->s->region, "s3", ATREST__SIGV4_S3));
	atrest__http_hdrs_free(&req->headers);
	for (size_t i = 1; i < n; i++) /* curl sends Host itself */
		atrest__http_hdrs_add(&req->headers, hd[i].name, "%s", hd[i].value);
	atrest__http_hdrs_add(&req->headers, "Authorization", "%s", auth);
	free(auth);
	return 0;
}

/* The URL of r into b, and where its path starts. */
static void url_of(
	atrest__buf *b, size_t *path_at, const atrest__s3 *s, const atrest__s3_req *r)
{
	atrest__buf_puts(b, s->base);
	*path_at = s->base_path;
	if (r->key) {
		atrest__buf_putc(b, '/');
		atrest__buf_urlenc(b, s->prefix, s->prefix_len, 1);
		atrest__buf_urlenc(b, r->key, strlen(r->key), 1);
	} else if (s->base_path == strlen(s->base)) {
		atrest__buf_putc(b, '/'); /* virtual-hosted: the bucket is "/" */
	}
	if (r->query)
		atrest__buf_printf(b, "?%s", r->query);
}

/* The hex SHA-256 of a body in memory, or UNSIGNED-PAYLOAD over TLS. */
static int payload_hash(char out[65], const atrest__s3 *s, const atrest__s3_req *r)
{
	uint8_t h[32];

	if (r->body_len > 0 && !s->plain_http) {
		strcpy(out, ATREST__SIGV4_UNSIGNED);
		return 0;
	}
	GUARD(atrest__sha256(h, r->body ? r->body : "", r->body_len));
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
	return 0;
}

static int expired(const atrest__http_resp *resp)
{
	return strcmp(resp->code, "ExpiredToken") == 0 ||
		strcmp(resp->code, "TokenRefreshRequired") == 0 ||
		strcmp(resp->code, "RequestExpired") == 0;
}

/* One attempt with one set of credentials. */
static int call_with(atrest__s3 *s, atrest__s3_req *r, atrest__http_resp *resp,
	const atrest__aws_keys *keys, const char *hash)
{
	atrest__buf url = ATREST__BUF_INIT;
	size_t path_at = 0;
	struct signer g = {s, r, NULL, hash, keys};
	atrest__http_req req = {.method = r->method,
		.what = r->what,
		.body = r->body,
		.body_len = r->body_len,
		.read = r->read,
		.rewind = r->rewind,
		.read_len = r->read_len,
		.read_arg = r->read_arg,
		.write = r->write,
		.write_arg = r->write_arg,
		.write_rewind = r->write_rewind,
		.prepare = sign,
		.prepare_arg = &g,
		.plain_http = s->plain_http,
		.time_ms = r->time_ms};
	int rc;

	url_of(&url, &path_at, s, r);
	rc = atrest__buf_check(&url);
	if (rc == 0) {
		/* The path as signed stops at the query. */
		char *q = strchr(url.data + path_at, '?');
		size_t plen = q ? (size_t)(q - url.data - path_at) : url.len - path_at;
		char *path = strndup(url.data + path_at, plen);
		g.path = path;
		req.url = url.data;
		rc = path ? atrest__http_do(s->http, &req, resp)
			  : atrest__error(ATREST_ERROR, "out of memory");
		free(path);
	}
	atrest__http_hdrs_free(&req.headers);
	atrest__buf_free(&url);
	return rc;
}

int atrest__s3_call(atrest__s3 *s, atrest__s3_req *r, atrest__http_resp *resp,
	char *keys_source, size_t cap)
{
	char hash[65];
	int rc = 0;

	snprintf(r->what, sizeof(r->what), "%s s3://%s%s%s%s", r->op, s->bucket,
		r->key ? "/" : "", r->key ? s->prefix : "", r->key ? r->key : "");
	if (r->payload_hash)
		snprintf(hash, sizeof(hash), "%s", r->payload_hash);
	else
		GUARD(payload_hash(hash, s, r));
	memset(resp, 0, sizeof(*resp));
	for (int round = 0; round < 2; round++) {
		atrest__aws_keys keys;

		GUARD(atrest__awscred_get(s->cred, &keys, round > 0));
		if (keys_source)
			snprintf(keys_source, cap, "%s", keys.source);
		atrest__http_resp_free(resp);
		rc = call_with(s, r, resp, &keys, hash);
		atrest__aws_keys_clear(&keys);
		if (rc < 0 || !expired(resp) || r->read)
			break;
	}
	if (rc < 0) /* nothing for the caller to free */
		atrest__http_resp_free(resp);
	return rc;
}

/* ---- errors */

static const struct {
	const char *code;
	int rc;
	const char *fix;
} s3_errors[] = {
	{"NoSuchKey", ATREST_ENOTFOUND, NULL},
	{"NoSuchBucket", ATREST_ENOTFOUND,
		"create the bucket, or check the endpoint (AWS_ENDPOINT_URL) and region"},
	{"AccessDenied", ATREST_EUNAVAILABLE,
		"allow these credentials s3:GetObject, PutObject, DeleteObject and ListBucket "
		"on the bucket and prefix (docs/OPERATIONS.md)"},
	{"SignatureDoesNotMatch", ATREST_EUNAVAILABLE,
		"the secret access key does not match the access key, or the clock is off"},
	{"InvalidAccessKeyId", ATREST_EUNAVAILABLE,
		"this endpoint does not know the access key"},
	{"ExpiredToken", ATREST_EUNAVAILABLE, "the session credentials expired"},
	{"InvalidToken", ATREST_EUNAVAILABLE, "the session token is not valid"},
	{"RequestTimeTooSkewed", ATREST_EUNAVAILABLE, "this host's clock is off"},
	{"AuthorizationHeaderMalformed", ATREST_EUNAVAILABLE,
		"check the region (AWS_REGION or ?region=)"},
	{"PermanentRedirect", ATREST_EUNAVAILABLE,
		"the bucket is in another region: set AWS_REGION or ?region="},
	{"QuotaExceeded", ATREST_ENOSPC, "the bucket or user quota is full"},
	{"EntityTooLarge", ATREST_ETOOBIG, NULL},
	{"InvalidBucketName", ATREST_EINVAL, NULL},
	{"PreconditionFailed", ATREST_ECONFLICT, NULL},
};

/* A code for a body-less answer (HEAD). */
static void code_from_status(atrest__http_resp *resp, const atrest__s3_req *r)
{
	if (*resp->code)
		return;
	snprintf(resp->code, sizeof(resp->code), "%s",
		resp->status == 404           ? (r->key ? "NoSuchKey" : "NoSuchBucket")
			: resp->status == 403 ? "AccessDenied"
			: resp->status == 412 ? "PreconditionFailed"
			: resp->status == 301 ? "PermanentRedirect"
					      : "");
}

int atrest__s3_fail(atrest__s3 *s, const atrest__s3_req *r, const atrest__http_resp *resp,
	const char *keys_source)
{
	atrest__http_resp c = *resp;
	atrest__http_req req = {.method = r->method, .what = r->what};
	const char *region = atrest__http_hdrs_get(&resp->headers, "x-amz-bucket-region");
	char fix[400];

	code_from_status(&c, r);
	for (size_t i = 0; i < sizeof(s3_errors) / sizeof(s3_errors[0]); i++) {
		if (strcmp(c.code, s3_errors[i].code) != 0)
			continue;
		snprintf(fix, sizeof(fix), "%s%s%s%s%s",
			s3_errors[i].fix ? s3_errors[i].fix : "",
			region ? "; the bucket is in " : "", region ? region : "",
			s3_errors[i].rc == ATREST_EUNAVAILABLE && keys_source
				? "; credentials from "
				: "",
			s3_errors[i].rc == ATREST_EUNAVAILABLE && keys_source
				? keys_source
				: "");
		return atrest__http_fail(s->http, &req, &c, s3_errors[i].rc,
			*fix ? fix + (fix[0] == ';' ? 2 : 0) : NULL);
	}
	return atrest__http_fail(s->http, &req, &c,
		c.status >= 500 ? ATREST_EUNAVAILABLE : ATREST_ERROR, NULL);
}

/* ---- HEAD, listing, removal */

int atrest__s3_absent(atrest__s3 *s, const char *key)
{
	atrest__buf q = ATREST__BUF_INIT;
	atrest__s3_req r = {.method = "GET", .op = "ListObjectsV2"};
	atrest__http_resp resp;
	atrest__s3_list page = {0};
	atrest__saved_error keep;
	int absent = 0;

	atrest__error_save(&keep);
	memset(&resp, 0, sizeof(resp));
	atrest__buf_puts(&q, "encoding-type=url&list-type=2&max-keys=1&prefix=");
	atrest__buf_urlenc(&q, s->prefix, s->prefix_len, 0);
	atrest__buf_urlenc(&q, key, strlen(key), 0);
	r.query = q.data;
	if (atrest__buf_check(&q) == 0 && atrest__s3_call(s, &r, &resp, NULL, 0) == 0 &&
		atrest__http_ok(&resp) &&
		atrest__s3_parse_list(&page, resp.body.data, resp.body.len) == 0)
		absent = page.n == 0 ||
			strncmp(page.v[0].key, s->prefix, s->prefix_len) != 0 ||
			strcmp(page.v[0].key + s->prefix_len, key) != 0;
	atrest__s3_list_free(&page);
	atrest__http_resp_free(&resp);
	atrest__buf_free(&q);
	atrest__error_restore(&keep);
	return absent;
}

int atrest__s3_head(atrest__s3 *s, const char *key, char etag[ATREST__S3_ETAG_MAX],
	char nonce[ATREST__S3_NONCE_LEN + 1])
{
	atrest__s3_req r = {.method = "HEAD", .op = "HeadObject", .key = key};
	atrest__http_resp resp;
	char src[96];
	const char *v;
	int rc = atrest__s3_call(s, &r, &resp, src, sizeof(src));

	etag[0] = nonce[0] = '\0';
	if (rc == 0 &&
		(resp.status == 404 ||
			(resp.status == 403 && atrest__s3_absent(s, key)))) {
		rc = 0;
	} else if (rc == 0 && atrest__http_ok(&resp)) {
		atrest__s3_etag_clean(etag, atrest__http_hdrs_get(&resp.headers, "ETag"));
		v = atrest__http_hdrs_get(&resp.headers, ATREST__S3_NONCE_HDR);
		if (v && strlen(v) == ATREST__S3_NONCE_LEN)
			strcpy(nonce, v);
		rc = 1;
	} else if (rc == 0) {
		rc = atrest__s3_fail(s, &r, &resp, src);
	}
	atrest__http_resp_free(&resp);
	return rc;
}

struct lister {
	atrest__s3 *s;
	const char *prefix; /* the backend's, not the bucket's */
	int internal;       /* the prefix asks for ".atrest/" */
	atrest_backend_list_cb cb;
	void *payload;
	int in_hidden; /* the page ended inside ".atrest/" */
};

/* The listing's query: one page from token, or after start_after. */
static int list_query(atrest__buf *q, const struct lister *l, const char *token,
	const char *start_after)
{
	if (token) {
		atrest__buf_puts(q, "continuation-token=");
		atrest__buf_urlenc(q, token, strlen(token), 0);
		atrest__buf_putc(q, '&');
	}
	atrest__buf_puts(q, "encoding-type=url&list-type=2&prefix=");
	atrest__buf_urlenc(q, l->s->prefix, l->s->prefix_len, 0);
	atrest__buf_urlenc(q, l->prefix, strlen(l->prefix), 0);
	if (start_after) {
		atrest__buf_puts(q, "&start-after=");
		atrest__buf_urlenc(q, start_after, strlen(start_after), 0);
	}
	return atrest__buf_check(q);
}

/* Hand each key of a page to the callback; the store's own are hidden. */
static int list_page(struct lister *l, const atrest__s3_list *page)
{
	size_t pl = l->s->prefix_len;

	l->in_hidden = 0;
	for (size_t i = 0; i < page->n; i++) {
		const char *key = page->v[i].key;
		int rc;
		if (strncmp(key, l->s->prefix, pl) != 0)
			continue;
		key += pl;
		l->in_hidden = !l->internal && strncmp(key, ".atrest/", 8) == 0;
		/* Directory markers and other tools' odd keys are not objects. */
		if (l->in_hidden || atrest__s3_check_key(l->s, key) < 0 ||
			strncmp(key, l->prefix, strlen(l->prefix)) != 0) {
			atrest_error_clear();
			continue;
		}
		rc = l->cb(key, page->v[i].size, page->v[i].mtime, l->payload);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int list_one(struct lister *l, char **token, const char *start_after, int *more)
{
	atrest__buf q = ATREST__BUF_INIT;
	atrest__s3_req r = {.method = "GET", .op = "ListObjectsV2"};
	atrest__http_resp resp;
	atrest__s3_list page = {0};
	char src[96];
	int rc = list_query(&q, l, *token, start_after);

	memset(&resp, 0, sizeof(resp));
	GUARD_OUT(rc);
	r.query = q.data;
	GUARD_OUT(atrest__s3_call(l->s, &r, &resp, src, sizeof(src)));
	if (!atrest__http_ok(&resp))
		GUARD_OUT(atrest__s3_fail(l->s, &r, &resp, src));
	GUARD_OUT(atrest__s3_parse_list(&page, resp.body.data, resp.body.len));
	rc = list_page(l, &page);
	*more = page.truncated;
	free(*token);
	*token = page.next_token;
	page.next_token = NULL;
out:
	atrest__s3_list_free(&page);
	atrest__http_resp_free(&resp);
	atrest__buf_free(&q);
	return rc;
}

static int s3_list(
	atrest_backend *b, const char *prefix, atrest_backend_list_cb cb, void *payload)
{
	atrest__s3 *s = (atrest__s3 *)b;
	struct lister l = {s, prefix ? prefix : "", 0, cb, payload, 0};
	/* Past every key under ".atrest/": U+10FFFF sorts after any of ours. */
	char skip[ATREST__S3_KEY_MAX + 16];
	char *token = NULL;
	int more = 1, rc = 0, jump = 0;

	l.internal = strncmp(l.prefix, ".atrest/", 8) == 0;
	snprintf(skip, sizeof(skip), "%s.atrest/\xf4\x8f\xbf\xbf", s->prefix);
	while (rc == 0 && more) {
		rc = list_one(&l, &token, jump ? skip : NULL, &more);
		/* A page that ends among the store's own keys: jump over them. */
		jump = l.in_hidden && more;
		if (jump) {
			free(token);
			token = NULL;
		}
	}
	free(token);
	return rc;
}

int atrest__s3_delete(atrest__s3 *s, const char *key)
{
	atrest__s3_req r = {.method = "DELETE", .op = "DeleteObject", .key = key};
	atrest__http_resp resp;
	char src[96];
	int rc = atrest__s3_call(s, &r, &resp, src, sizeof(src));

	if (rc == 0 && !atrest__http_ok(&resp) && resp.status != 404)
		rc = atrest__s3_fail(s, &r, &resp, src);
	atrest__http_resp_free(&resp);
	return rc;
}

/* DeleteObject answers 204 for a missing key: a HEAD tells first. */
static int s3_remove(atrest_backend *b, const char *key)
{
	atrest__s3 *s = (atrest__s3 *)b;
	char etag[ATREST__S3_ETAG_MAX], nonce[ATREST__S3_NONCE_LEN + 1];
	int rc;

	GUARD(atrest__s3_check_key(s, key));
	GUARD(rc = atrest__s3_head(s, key, etag, nonce));
	ENSURE(rc == 1, ATREST_ENOTFOUND, "S3: no object s3://%s/%s%s", s->bucket,
		s->prefix, key);
	return atrest__s3_delete(s, key);
}

/* XML text: the five entities (keys hold no control characters). */
static void xml_escape(atrest__buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			atrest__buf_puts(b, "&amp;");
			break;
		case '<':
			atrest__buf_puts(b, "&lt;");
			break;
		case '>':
			atrest__buf_puts(b, "&gt;");
			break;
		case '"':
			atrest__buf_puts(b, "&quot;");
			break;
		case '\'':
			atrest__buf_puts(b, "&apos;");
			break;
		default:
			atrest__buf_putc(b, *s);
		}
	}
}

/* Content-MD5 (not in FIPS mode) and x-amz-checksum-sha256 of a body. */
static int body_digests(
	char md5[32], char sha[48], const atrest__buf *body, atrest__s3_req *r)
{
	uint8_t d[32];
	atrest__buf b = ATREST__BUF_INIT;
	unsigned int n = 0;

	GUARD(atrest__sha256(d, body->data, body->len));
	atrest__buf_b64(&b, d, 32, 0);
	GUARD(atrest__buf_check(&b));
	snprintf(sha, 48, "%s", b.data);
	atrest__buf_free(&b);
	atrest__s3_hdr(r, "x-amz-checksum-sha256", sha);
	if (atrest__fips_mode() ||
		EVP_Digest(body->data, body->len, d, &n, EVP_md5(), NULL) != 1) {
		ERR_clear_error();
		return 0;
	}
	atrest__buf_b64(&b, d, n, 0);
	GUARD(atrest__buf_check(&b));
	snprintf(md5, 32, "%s", b.data);
	atrest__buf_free(&b);
	atrest__s3_hdr(r, "Content-MD5", md5);
	return 0;
}

/* One DeleteObjects request for up to 1000 keys. */
static int delete_batch(atrest__s3 *s, const char *const *keys, size_t n)
{
	atrest__buf body = ATREST__BUF_INIT;
	atrest__s3_req r = {.method = "POST", .op = "DeleteObjects", .query = "delete"};
	atrest__http_resp resp;
	char md5[32], sha[48], src[96], ekey[ATREST__S3_KEY_MAX + 1], code[96];
	size_t errors = 0;
	int rc;

	memset(&resp, 0, sizeof(resp));
	atrest__buf_puts(&body, "<Delete><Quiet>true</Quiet>");
	for (size_t i = 0; i < n; i++) {
		atrest__buf_puts(&body, "<Object><Key>");
		xml_escape(&body, s->prefix);
		xml_escape(&body, keys[i]);
		atrest__buf_puts(&body, "</Key></Object>");
	}
	atrest__buf_puts(&body, "</Delete>");
	GUARD_OUT(atrest__buf_check(&body));
	GUARD_OUT(body_digests(md5, sha, &body, &r));
	r.body = body.data;
	r.body_len = body.len;
	GUARD_OUT(atrest__s3_call(s, &r, &resp, src, sizeof(src)));
	if (!atrest__http_ok(&resp))
		GUARD_OUT(atrest__s3_fail(s, &r, &resp, src));
	GUARD_OUT(atrest__s3_parse_delete(&errors, ekey, sizeof(ekey), code, sizeof(code),
		resp.body.data, resp.body.len));
	ENSURE_OUT(errors == 0,
		strcmp(code, "AccessDenied") == 0 ? ATREST_EUNAVAILABLE : ATREST_ERROR,
		"S3 DeleteObjects s3://%s/%s: %zu of %zu keys not removed (%s: %s)",
		s->bucket, s->prefix, errors, n, ekey, code);
out:
	atrest__http_resp_free(&resp);
	atrest__buf_free(&body);
	return rc;
}

static int s3_remove_many(atrest_backend *b, const char *const *keys, size_t n)
{
	atrest__s3 *s = (atrest__s3 *)b;

	for (size_t i = 0; i < n; i++)
		GUARD(atrest__s3_check_key(s, keys[i]));
	for (size_t i = 0; i < n; i += DELETE_BATCH)
		GUARD(delete_batch(
			s, keys + i, n - i < DELETE_BATCH ? n - i : DELETE_BATCH));
	return 0;
}

/* ---- uploads of writers that died */

static int abort_upload(atrest__s3 *s, const atrest__s3_upload *u)
{
	atrest__buf q = ATREST__BUF_INIT;
	atrest__s3_req r = {.method = "DELETE", .op = "AbortMultipartUpload"};
	atrest__http_resp resp;
	char src[96];
	int rc;

	memset(&resp, 0, sizeof(resp));
	atrest__buf_puts(&q, "uploadId=");
	atrest__buf_urlenc(&q, u->upload_id, strlen(u->upload_id), 0);
	GUARD_OUT(atrest__buf_check(&q));
	r.query = q.data;
	r.key = u->key + s->prefix_len;
	GUARD_OUT(atrest__s3_call(s, &r, &resp, src, sizeof(src)));
	if (!atrest__http_ok(&resp) && resp.status != 404)
		rc = atrest__s3_fail(s, &r, &resp, src);
out:
	atrest__http_resp_free(&resp);
	atrest__buf_free(&q);
	return rc;
}

static int uploads_page(atrest__s3 *s, atrest__s3_uploads *page, const char *key_marker,
	const char *id_marker)
{
	atrest__buf q = ATREST__BUF_INIT;
	atrest__s3_req r = {.method = "GET", .op = "ListMultipartUploads"};
	atrest__http_resp resp;
	char src[96];
	int rc;

	memset(&resp, 0, sizeof(resp));
	atrest__buf_puts(&q, "encoding-type=url");
	if (key_marker) {
		atrest__buf_puts(&q, "&key-marker=");
		atrest__buf_urlenc(&q, key_marker, strlen(key_marker), 0);
	}
	atrest__buf_puts(&q, "&prefix=");
	atrest__buf_urlenc(&q, s->prefix, s->prefix_len, 0);
	if (id_marker) {
		atrest__buf_puts(&q, "&upload-id-marker=");
		atrest__buf_urlenc(&q, id_marker, strlen(id_marker), 0);
	}
	atrest__buf_puts(&q, "&uploads=");
	GUARD_OUT(atrest__buf_check(&q));
	r.query = q.data;
	GUARD_OUT(atrest__s3_call(s, &r, &resp, src, sizeof(src)));
	if (!atrest__http_ok(&resp))
		GUARD_OUT(atrest__s3_fail(s, &r, &resp, src));
	rc = atrest__s3_parse_uploads(page, resp.body.data, resp.body.len);
out:
	atrest__http_resp_free(&resp);
	atrest__buf_free(&q);
	return rc;
}

int atrest__s3_cleanup(atrest_backend *b, uint64_t older_than, uint64_t *count)
{
	atrest__s3 *s = (atrest__s3 *)b;
	int64_t cut = (int64_t)time(NULL) -
		(int64_t)(older_than < INT32_MAX ? older_than : INT32_MAX);
	char *key = NULL, *id = NULL;
	int rc = 0, more = 1;

	*count = 0;
	while (rc == 0 && more) {
		atrest__s3_uploads page;
		rc = uploads_page(s, &page, key, id);
		if (rc < 0)
			break;
		for (size_t i = 0; rc == 0 && i < page.n; i++)
			if (page.v[i].initiated <= cut &&
				strncmp(page.v[i].key, s->prefix, s->prefix_len) == 0 &&
				(rc = abort_upload(s, &page.v[i])) == 0)
				(*count)++;
		more = page.truncated;
		free(key);
		free(id);
		key = page.next_key;
		id = page.next_upload_id;
		page.next_key = page.next_upload_id = NULL;
		atrest__s3_uploads_free(&page);
	}
	free(key);
	free(id);
	return rc;
}

static void *sweep_main(void *arg)
{
	atrest__s3 *s = arg;
	uint64_t n;

	(void)atrest__s3_cleanup(&s->parent, s->abort_after, &n);
	return NULL;
}

/* The first writer of a handle aborts what dead writers left (in the
 * background: it only costs a listing). */
static int s3_open_write(atrest_backend *b, atrest_backend_writer **out, const char *key,
	unsigned int flags, const char *etag)
{
	atrest__s3 *s = (atrest__s3 *)b;

	if (s->abort_after && !__atomic_load_n(&s->sweeping, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&s->mu);
		if (!s->sweeping && pthread_create(&s->sweeper, NULL, sweep_main, s) == 0)
			__atomic_store_n(&s->sweeping, 1, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&s->mu);
	}
	return atrest__s3_open_write(b, out, key, flags, etag);
}

/* ---- the bucket */

static int create_bucket(atrest__s3 *s, int aws)
{
	atrest__buf body = ATREST__BUF_INIT;
	atrest__s3_req r = {.method = "PUT", .op = "CreateBucket"};
	atrest__http_resp resp;
	char src[96];
	int rc;

	memset(&resp, 0, sizeof(resp));
	if (aws && strcmp(s->region, "us-east-1") != 0)
		atrest__buf_printf(&body,
			"<CreateBucketConfiguration><LocationConstraint>%s"
			"</LocationConstraint></CreateBucketConfiguration>",
			s->region);
	GUARD_OUT(atrest__buf_check(&body));
	r.body = body.data;
	r.body_len = body.len;
	GUARD_OUT(atrest__s3_call(s, &r, &resp, src, sizeof(src)));
	if (!atrest__http_ok(&resp) && strcmp(resp.code, "BucketAlreadyOwnedByYou") != 0)
		rc = atrest__s3_fail(s, &r, &resp, src);
out:
	atrest__http_resp_free(&resp);
	atrest__buf_free(&body);
	return rc;
}

/* The bucket must exist (with create, it is made).  A 403 cannot tell:
 * credentials limited to a prefix go on, and the first object request
 * says what is wrong. */
static int s3_prepare(atrest_backend *b, int create)
{
	atrest__s3 *s = (atrest__s3 *)b;
	atrest__s3_req r = {.method = "HEAD", .op = "HeadBucket"};
	atrest__http_resp resp;
	char src[96];
	int rc = atrest__s3_call(s, &r, &resp, src, sizeof(src));

	if (rc == 0 && resp.status == 404 && create)
		rc = create_bucket(s, strstr(s->host, ".amazonaws.com") != NULL);
	else if (rc == 0 && resp.status == 404)
		rc = atrest__error(ATREST_ENOTFOUND,
			"S3 HeadBucket s3://%s: HTTP 404 NoSuchBucket (no bucket '%s' at %.*s: "
			"create it, or check the endpoint and region)",
			s->bucket, s->bucket, (int)s->base_path, s->base);
	else if (rc == 0 && !atrest__http_ok(&resp) && resp.status != 403)
		rc = atrest__s3_fail(s, &r, &resp, src);
	atrest__http_resp_free(&resp);
	return rc;
}

static void s3_free(atrest_backend *b)
{
	atrest__s3 *s = (atrest__s3 *)b;

	if (!s)
		return;
	if (s->sweeping)
		pthread_join(s->sweeper, NULL);
	atrest__http_free(s->http);
	atrest__awscred_free(s->cred);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static const atrest_backend s3_vtable = {
	.version = ATREST_BACKEND_VERSION,
	.name = "s3",
	.prepare = s3_prepare,
	.open_write = s3_open_write,
	.open_read = atrest__s3_open_read,
	.list = s3_list,
	.remove = s3_remove,
	.free = s3_free,
	.remove_many = s3_remove_many,
	.cleanup = atrest__s3_cleanup,
};

/* ---- the location: s3://BUCKET[/PREFIX][?name=value&...] */

struct loc {
	char endpoint[512];
	char region[64];
	char profile[128];
	int path_style; /* -1: from the endpoint */
	int allow_http;
};

static int bad_loc(const char *why)
{
	return atrest__error(
		ATREST_EINVAL, "S3 store location: %s (s3://BUCKET/PREFIX?...)", why);
}

/* %XX-decode n bytes of s into out (cap bytes); -1 when it does not fit. */
static int pct_decode(char *out, size_t cap, const char *s, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];
		if (s[i] == '%' && i + 2 < n && atrest__unhex_n(&c, 1, s + i + 1) == 0)
			i += 2;
		if (c == 0 || k + 1 >= cap)
			return -1;
		out[k++] = (char)c;
	}
	out[k] = '\0';
	atrest_error_clear();
	return 0;
}

/* "8M", "5242880", "64k", "1g"; 0 or -1. */
static int parse_scaled(
	uint64_t *out, const char *v, const char *units, const uint64_t *mult)
{
	char *end;
	unsigned long long n;
	const char *u;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *v == '-')
		return -1;
	if (*end) {
		u = strchr(units, tolower((unsigned char)*end));
		if (!u || end[1])
			return -1;
		n *= mult[u - units];
	}
	*out = n;
	return 0;
}

static int set_param(atrest__s3 *s, struct loc *l, const char *name, const char *v)
{
	static const uint64_t bytes[] = {1, 1u << 10, 1u << 20, 1u << 30};
	static const uint64_t secs[] = {1, 60, 3600, 86400};
	uint64_t n;

	if (!strcmp(name, "endpoint"))
		ENSURE(strlen(v) < sizeof(l->endpoint), ATREST_EINVAL,
			"S3: endpoint too long");
	if (!strcmp(name, "endpoint"))
		strcpy(l->endpoint, v);
	else if (!strcmp(name, "region") && strlen(v) < sizeof(l->region) && *v)
		strcpy(l->region, v);
	else if (!strcmp(name, "profile") && strlen(v) < sizeof(l->profile) && *v)
		strcpy(l->profile, v);
	else if (!strcmp(name, "path-style") &&
		(!strcmp(v, "true") || !strcmp(v, "false")))
		l->path_style = !strcmp(v, "true");
	else if (!strcmp(name, "allow-http") &&
		(!strcmp(v, "true") || !strcmp(v, "false")))
		l->allow_http = !strcmp(v, "true");
	else if (!strcmp(name, "part-size") && parse_scaled(&n, v, "bkmg", bytes) == 0 &&
		n >= ATREST__S3_PART_MIN && n <= (1u << 30))
		s->part_size = (size_t)n;
	else if (!strcmp(name, "uploads") && parse_scaled(&n, v, "", bytes) == 0 &&
		n >= 1 && n <= 16)
		s->uploads = (unsigned int)n;
	else if (!strcmp(name, "timeout") && parse_scaled(&n, v, "smhd", secs) == 0 &&
		n >= 1 && n <= 86400)
		s->timeout_ms = (long)n * 1000;
	else if (!strcmp(name, "abort-after") && parse_scaled(&n, v, "smhd", secs) == 0)
		s->abort_after = n;
	else
		return atrest__error(ATREST_EINVAL,
			"S3 store location: bad parameter '%s' or value (known: endpoint, "
			"region, profile, path-style, allow-http, part-size (5M to 1G), "
			"uploads (1 to 16), timeout, abort-after)",
			name);
	return 0;
}

static int parse_params(atrest__s3 *s, struct loc *l, const char *q)
{
	char name[32], value[600];

	while (q && *q) {
		size_t len = strcspn(q, "&"), nl = strcspn(q, "=&");
		if (len > 0) {
			ENSURE(nl < len && nl < sizeof(name), ATREST_EINVAL,
				"S3 store location: parameters are name=value");
			memcpy(name, q, nl);
			name[nl] = '\0';
			ENSURE(pct_decode(value, sizeof(value), q + nl + 1,
				       len - nl - 1) == 0,
				ATREST_EINVAL,
				"S3 store location: parameter %s is too long", name);
			GUARD(set_param(s, l, name, value));
		}
		q += len + (q[len] == '&');
	}
	return 0;
}

static int parse_bucket_prefix(atrest__s3 *s, const char *p, size_t n)
{
	size_t bn = strcspn(p, "/");
	char prefix[ATREST__S3_KEY_MAX + 1];

	bn = bn < n ? bn : n;
	ENSURE(bn >= 3 && bn <= ATREST__S3_BUCKET_MAX, ATREST_EINVAL,
		"S3 store location: a bucket name has 3 to 63 characters");
	for (size_t i = 0; i < bn; i++)
		ENSURE(isalnum((unsigned char)p[i]) || strchr(".-_", p[i]), ATREST_EINVAL,
			"S3 store location: the bucket name '%.*s' has characters S3 does not "
			"allow",
			(int)bn, p);
	memcpy(s->bucket, p, bn);
	s->bucket[bn] = '\0';
	p += bn;
	n -= bn;
	while (n && *p == '/')
		p++, n--;
	while (n && p[n - 1] == '/')
		n--;
	if (n == 0)
		return 0;
	if (pct_decode(prefix, sizeof(prefix) - 1, p, n) < 0 || !path_ok(prefix) ||
		!utf8_ok(prefix))
		return bad_loc("the prefix must be UTF-8 '/'-separated names, without "
			       "'.', '..' or empty ones");
	s->prefix_len = strlen(prefix);
	memcpy(s->prefix, prefix, s->prefix_len);
	s->prefix[s->prefix_len++] = '/';
	s->prefix[s->prefix_len] = '\0';
	return 0;
}

/* An IP address or localhost: no bucket subdomain can be made of it. */
static int host_is_ip(const char *host, size_t n)
{
	if (n && host[0] == '[')
		return 1;
	if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)host[i]) && host[i] != '.')
			return 0;
	return n > 0;
}

/* A bucket that can be a DNS label of a TLS certificate's wildcard. */
static int dns_bucket(const char *b, int https)
{
	size_t n = strlen(b);

	if (b[0] == '-' || b[n - 1] == '-' || (https && strchr(b, '.')) ||
		strstr(b, ".."))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) ||
			    b[i] == '.' || b[i] == '-'))
			return 0;
	return 1;
}

/* scheme://host[:port] (a trailing "/" allowed) into base and host. */
static int set_endpoint(atrest__s3 *s, const struct loc *l)
{
	const char *ep = l->endpoint, *h;
	size_t n = strlen(ep), hn, pn;
	int https = strncasecmp(ep, "https://", 8) == 0;
	char port[8] = "";

	while (n > 0 && ep[n - 1] == '/')
		n--;
	ENSURE(https || strncasecmp(ep, "http://", 7) == 0, ATREST_EINVAL,
		"S3 endpoint must be http:// or https://");
	h = ep + (https ? 8 : 7);
	hn = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/?#@");
	ENSURE(hn > 0 && h + hn <= ep + n, ATREST_EINVAL, "S3 endpoint has no host");
	pn = (size_t)(ep + n - (h + hn));
	ENSURE(pn == 0 ||
			(h[hn] == ':' && pn >= 2 && pn <= 6 &&
				strspn(h + hn + 1, "0123456789") == pn - 1),
		ATREST_EINVAL,
		"S3 endpoint must be a base URL like https://HOST[:PORT] (no path)");
	for (size_t i = 0; i < hn; i++)
		ENSURE((unsigned char)h[i] > 0x20 && (unsigned char)h[i] < 0x7f,
			ATREST_EINVAL, "S3 endpoint: bad host");
	if (pn && !(https && !strncmp(h + hn, ":443", pn)) &&
		!(!https && !strncmp(h + hn, ":80", pn)))
		snprintf(port, sizeof(port), "%.*s", (int)pn, h + hn);
	s->plain_http = !https;
	if (!https && !l->allow_http && !atrest__http_is_loopback(ep))
		return bad_loc(
			"a plain http:// endpoint other than loopback needs "
			"?allow-http=true (names, sizes and session tokens travel in "
			"clear)");
	if (l->path_style == 1 || (l->path_style == -1 && host_is_ip(h, hn)) ||
		!dns_bucket(s->bucket, https)) {
		snprintf(s->host, sizeof(s->host), "%.*s%s", (int)hn, h, port);
		snprintf(s->base, sizeof(s->base), "%s://%s/%s", https ? "https" : "http",
			s->host, s->bucket);
		s->base_path = strlen(s->base) - strlen(s->bucket) - 1;
	} else {
		snprintf(s->host, sizeof(s->host), "%s.%.*s%s", s->bucket, (int)hn, h,
			port);
		snprintf(s->base, sizeof(s->base), "%s://%s", https ? "https" : "http",
			s->host);
		s->base_path = strlen(s->base);
	}
	return 0;
}

static int s3_configure(atrest__s3 *s, const char *location)
{
	const char *p = location + 5; /* after "s3://" */
	size_t n = strcspn(p, "?");
	struct loc l = {.path_style = -1};
	const char *t = getenv("ATREST_S3_TIMEOUT");
	int rc;

	s->part_size = PART_DEFAULT;
	s->uploads = UPLOADS_DEFAULT;
	s->abort_after = ABORT_AFTER_DEFAULT;
	s->timeout_ms = t && atoi(t) > 0 && atoi(t) <= 86400 ? atoi(t) * 1000L
							     : TIMEOUT_DEFAULT_MS;
	GUARD(parse_bucket_prefix(s, p, n));
	GUARD(parse_params(s, &l, p[n] == '?' ? p + n + 1 : NULL));
	if (*l.region)
		snprintf(s->region, sizeof(s->region), "%s", l.region);
	else if (atrest__aws_region(
			 s->region, sizeof(s->region), *l.profile ? l.profile : NULL) < 0)
		strcpy(s->region, "us-east-1");
	atrest_error_clear();
	if (!*l.endpoint) {
		GUARD(rc = atrest__aws_endpoint(l.endpoint, sizeof(l.endpoint), "S3",
			      *l.profile ? l.profile : NULL));
		if (rc == 0)
			snprintf(l.endpoint, sizeof(l.endpoint),
				"https://s3.%s.amazonaws.com%s", s->region,
				strncmp(s->region, "cn-", 3) == 0 ? ".cn" : "");
	}
	GUARD(set_endpoint(s, &l));
	snprintf(s->location, sizeof(s->location), "s3://%s/%s", s->bucket, s->prefix);
	return atrest__awscred_new(&s->cred, *l.profile ? l.profile : NULL);
}

int atrest__backend_s3(atrest_backend **out, const char *location, unsigned int flags)
{
	atrest__http_opts ho = {.service = "S3",
		.ca_env = "AWS_CA_BUNDLE",
		.max_attempts = 5,
		.max_response = 16u << 20,
		.parse_error = atrest__s3_parse_error};
	atrest__s3 *s;
	int rc;

	(void)flags;
	*out = NULL;
	ENSURE(location && strncasecmp(location, "s3://", 5) == 0, ATREST_EINVAL,
		"not an S3 location");
	GUARD(atrest__crypto_init());
	s = calloc(1, sizeof(*s));
	ENSURE(s, ATREST_ERROR, "out of memory");
	s->parent = s3_vtable;
	pthread_mutex_init(&s->mu, NULL);
	GUARD_OUT(s3_configure(s, location));
	ho.total_ms = s->timeout_ms;
	ho.attempt_ms = s->timeout_ms / 2 > 1000 ? s->timeout_ms / 2 : 1000;
	ho.connect_ms = ho.attempt_ms < 10000 ? ho.attempt_ms : 10000;
	GUARD_OUT(atrest__http_new(&s->http, &ho));
	*out = &s->parent;
	return 0;
out:
	s3_free(&s->parent);
	return rc;
}
