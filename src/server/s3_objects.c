/*
 * S3 objects: PutObject (streamed, or collected when small so its ETag is
 * the MD5 of the plaintext, kept encrypted in the object's metadata with
 * x-amz-meta-* and Content-Type), GetObject and HeadObject (conditions,
 * a single Range, response-* overrides), DeleteObject, DeleteObjects
 * (libxml2, entities off) and CopyObject (re-sealed under the new name).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "events.h"
#include "s3_int.h"
#include "s3_xml.h"

#define META_PREFIX "x-amz-meta-"
/* Bodies up to this size are collected first: their ETag is their MD5. */
#define COLLECT_MAX (16u << 20)
#define DELETE_BODY_MAX (2u << 20)

/* Headers kept with the object, as ':'-prefixed metadata keys. */
static const char *const kept_headers[] = {"content-type", "content-encoding",
	"content-disposition", "content-language", "cache-control", "expires", NULL};

/* ---- names and metadata ---- */

/* sr->name = "bucket/key", checked; 0, or -1 after answering. */
int s3_object_name(struct http_req *req)
{
	struct s3_req *sr = req->app;
	int rc;

	if (asprintf(&sr->name, "%s/%s", sr->bucket, sr->key) < 0) {
		sr->name = NULL;
		http_error(req, 500, "InternalError", "out of memory");
		return -1;
	}
	rc = atrest_name_check(sr->name);
	if (rc < 0) {
		const atrest_error *e = atrest_error_last();

		http_error(req, 400, "InvalidArgument",
			"This server cannot store the key: %s",
			e && e->code == rc ? e->message : "invalid name");
		return -1;
	}
	return 0;
}

void s3_meta_free(struct s3_meta *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->own[i]);
	m->n = 0;
}

void s3_meta_add(struct s3_meta *m, char *key, const char *value)
{
	if (!key || m->n == S3_META_MAX + 7) {
		free(key);
		m->bad = "too many metadata headers";
		return;
	}
	m->own[m->n] = key;
	m->e[m->n].key = key;
	m->e[m->n].value = value;
	m->n++;
}

static char *lower_dup(const char *prefix, const char *s)
{
	char *out;

	if (asprintf(&out, "%s%s", prefix, s) < 0)
		return NULL;
	for (char *p = out; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	return out;
}

static int meta_header(const char *name, const char *value, void *payload)
{
	struct s3_meta *m = payload;
	size_t plen = strlen(META_PREFIX);

	if (strncasecmp(name, META_PREFIX, plen) == 0 && name[plen])
		s3_meta_add(m, lower_dup("", name + plen), value);
	for (size_t i = 0; kept_headers[i]; i++)
		if (!strcasecmp(name, kept_headers[i]) &&
			!(i == 1 && !strcasecmp(value, "aws-chunked")))
			s3_meta_add(m, lower_dup(":", name), value);
	return m->bad != NULL;
}

atrest_meta s3_meta_of(struct s3_meta *m)
{
	atrest_meta out = {m->e, m->n};

	return out;
}

int s3_meta_collect(struct http_req *req, struct s3_meta *m)
{
	http_headers_each(req, meta_header, m);
	if (!m->bad)
		return 0;
	s3_meta_free(m);
	http_error(req, 400, "MetadataTooLarge", "%s", m->bad);
	return -1;
}

/* A header asking for something this API does not do (SSE-C or SSE-KMS,
 * tags, object lock, redirects, a storage class or ACL other than the
 * default): 1. */
static int unsupported_header(const char *name, const char *value, void *payload)
{
	static const char *const never[] = {"x-amz-tagging", "x-amz-object-lock-",
		"x-amz-website-redirect-location", "x-amz-server-side-encryption-",
		"x-amz-grant-", "x-amz-copy-source-range", NULL};

	for (size_t i = 0; never[i]; i++)
		if (!strncasecmp(name, never[i], strlen(never[i]))) {
			*(const char **)payload = never[i];
			return 1;
		}
	if ((!strcasecmp(name, "x-amz-server-side-encryption") &&
		    strcmp(value, "AES256") != 0) ||
		(!strcasecmp(name, "x-amz-storage-class") &&
			strcmp(value, "STANDARD") != 0) ||
		(!strcasecmp(name, "x-amz-acl") && strcmp(value, "private") != 0)) {
		*(const char **)payload = name;
		return 1;
	}
	return 0;
}

int s3_headers_supported(struct http_req *req)
{
	const char *what = NULL;

	http_headers_each(req, unsupported_header, &what);
	if (!what)
		return 0;
	http_error(req, 501, "NotImplemented",
		"A header you provided implies functionality that is not implemented: "
		"%.64s",
		what);
	return -1;
}

/* ---- reading ---- */

static const char *meta_get(const atrest_stat_info *si, const char *key)
{
	for (size_t i = 0; i < si->meta_count; i++)
		if (!strcmp(si->meta[i].key, key))
			return si->meta[i].value;
	return NULL;
}

void s3_etag_of(char out[80], const atrest_stat_info *si)
{
	const char *e = meta_get(si, S3_META_ETAG);

	if (e && strlen(e) < 70)
		snprintf(out, 80, "\"%s\"", e);
	else
		snprintf(out, 80, "\"%llx%llx-1\"", (unsigned long long)si->mtime,
			(unsigned long long)si->stored_size);
}

/* Does an If-Match / If-None-Match list hold etag (or "*")? */
static int etag_in(const char *list, const char *etag)
{
	const char *bare = etag + 1; /* without the quotes */
	size_t n = strlen(bare) - 1;

	if (!strcmp(list, "*"))
		return 1;
	for (const char *p = list; (p = strstr(p, bare)) != NULL; p++)
		if ((p == list || p[-1] == '"' || p[-1] == ' ' || p[-1] == ',') &&
			(p[n] == '"' || p[n] == ',' || p[n] == ' ' || !p[n]))
			return 1;
	return 0;
}

static int http_date(int64_t *out, const char *s)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);

	if (!end || *end)
		return -1;
	*out = (int64_t)timegm(&tm);
	return 0;
}

/* Conditions of a GET or HEAD: 0 serve, 304, 412. */
static unsigned conditions(struct http_req *req, const char *etag, int64_t mtime)
{
	const char *im = http_header(req, "if-match"),
		   *inm = http_header(req, "if-none-match");
	const char *ims = http_header(req, "if-modified-since");
	const char *ius = http_header(req, "if-unmodified-since");
	int64_t t;

	if (im && !etag_in(im, etag))
		return 412;
	if (!im && ius && http_date(&t, ius) == 0 && mtime > t)
		return 412;
	if (inm && etag_in(inm, etag))
		return 304;
	if (!inm && ims && http_date(&t, ims) == 0 && mtime <= t)
		return 304;
	return 0;
}

struct out_headers {
	struct http_header_kv kv[S3_META_MAX + 24];
	size_t n;
	char etag[80], modified[64], names[S3_META_MAX][160];
};

static void add(struct out_headers *h, const char *name, const char *value)
{
	if (h->n < sizeof(h->kv) / sizeof(h->kv[0])) {
		h->kv[h->n].name = name;
		h->kv[h->n].value = value;
		h->n++;
	}
}

static void object_headers(
	struct http_req *req, struct out_headers *h, const atrest_stat_info *si)
{
	static const char *const overrides[][2] = {
		{"response-content-type", "Content-Type"},
		{"response-content-language", "Content-Language"},
		{"response-expires", "Expires"},
		{"response-cache-control", "Cache-Control"},
		{"response-content-disposition", "Content-Disposition"},
		{"response-content-encoding", "Content-Encoding"}};
	time_t t = (time_t)si->mtime;
	struct tm tm;
	size_t i, m = 0;

	s3_etag_of(h->etag, si);
	gmtime_r(&t, &tm);
	strftime(h->modified, sizeof(h->modified), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	add(h, MHD_HTTP_HEADER_ETAG, h->etag);
	add(h, MHD_HTTP_HEADER_LAST_MODIFIED, h->modified);
	add(h, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	for (i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
		const char *v = http_target_param(&req->target, overrides[i][0]);

		if (v)
			add(h, overrides[i][1], v);
	}
	for (i = 0; i < si->meta_count && m < S3_META_MAX; i++) {
		const char *k = si->meta[i].key;
		int overridden = 0;

		if (k[0] == ':') {
			for (size_t j = 0; j < sizeof(overrides) / sizeof(overrides[0]);
				j++)
				if (!strcasecmp(k + 1, overrides[j][1]) &&
					http_target_param(&req->target, overrides[j][0]))
					overridden = 1;
			for (size_t j = 0; kept_headers[j] && !overridden; j++)
				if (!strcmp(k + 1, kept_headers[j]))
					add(h, kept_headers[j], si->meta[i].value);
			continue;
		}
		snprintf(h->names[m], sizeof(h->names[m]), META_PREFIX "%s", k);
		add(h, h->names[m++], si->meta[i].value);
	}
	if (!meta_get(si, S3_META_TYPE) &&
		!http_target_param(&req->target, "response-content-type"))
		add(h, MHD_HTTP_HEADER_CONTENT_TYPE, "binary/octet-stream");
}

static void respond_status_only(struct http_req *req, unsigned status, const char *etag)
{
	struct MHD_Response *resp = http_response_buffer("", 0);

	if (resp && etag)
		http_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	http_respond(req, status, resp);
}

static void serve(struct http_req *req, atrest_reader *r, const atrest_stat_info *si)
{
	struct out_headers *h = calloc(1, sizeof(*h));
	const char *part = http_target_param(&req->target, "partNumber");
	unsigned cond;

	if (!h) {
		atrest_reader_close(r);
		http_error(req, 500, "InternalError", "out of memory");
		return;
	}
	object_headers(req, h, si);
	if ((cond = conditions(req, h->etag, si->mtime)) != 0) {
		atrest_reader_close(r);
		if (cond == 304)
			respond_status_only(req, 304, h->etag);
		else
			http_error(req, 412, "PreconditionFailed",
				"At least one of the pre-conditions you specified did "
				"not hold");
		free(h);
		return;
	}
	if (part && strchr(h->etag, '-')) { /* a multipart object's parts */
		atrest_reader_close(r);
		http_error(req, 501, "NotImplemented",
			"partNumber on a multipart object is not implemented.");
		free(h);
		return;
	}
	if (part && strcmp(part, "1") != 0) {
		atrest_reader_close(r);
		http_error(req, 416, "InvalidPartNumber",
			"The requested partnumber is not satisfiable");
		free(h);
		return;
	}
	http_respond_ranged(req, r, si->size, h->kv, h->n, "InvalidRange");
	free(h);
}

void s3_object_get(struct http_req *req)
{
	struct s3_req *sr = req->app;
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	atrest_reader *r;
	int rc;

	if (s3_object_name(req) < 0 || s3_bucket_check(req) < 0)
		return;
	rc = atrest_reader_open(&r, sr->st, sr->name);
	if (rc == 0 && (rc = atrest_stat(&si, sr->st, sr->name)) < 0)
		atrest_reader_close(r);
	if (rc < 0) {
		s3_lib_error(req, rc, "open object");
		return;
	}
	serve(req, r, &si);
	atrest_stat_info_clear(&si);
}

/* ---- writing ---- */

static void put_done(struct http_req *req)
{
	struct s3_req *sr = req->app;
	struct MHD_Response *resp = http_response_buffer("", 0);
	char etag[64], sum[100];

	snprintf(etag, sizeof(etag), "\"%s\"", sr->etag);
	if (resp) {
		http_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
		if (sr->sum != S3_SUM_NONE) {
			snprintf(sum, sizeof(sum), "%s",
				sr->sum_expect[0] ? sr->sum_expect
						  : sr->dec.trailer_value);
			http_response_header(resp, sr->sum_header, sum);
		}
	}
	http_respond(req, 200, resp);
}

static int put_commit_failed(struct http_req *req, int code)
{
	struct s3_req *sr = req->app;

	if (!sr->create_only || code != ATREST_EEXISTS)
		return -1;
	http_error(req, 412, "PreconditionFailed",
		"At least one of the pre-conditions you specified did not hold");
	return 0;
}

/* Open the writer with the request's metadata and ETag. */
static int open_writer(struct http_req *req, atrest_writer **w)
{
	struct s3_req *sr = req->app;
	atrest_write_options wo = ATREST_WRITE_OPTIONS_INIT;
	struct s3_meta m = {.n = 0};
	atrest_meta am;
	int rc;

	if (!sr->part && s3_meta_collect(req, &m) < 0)
		return -1;
	s3_meta_add(&m, strdup(S3_META_ETAG), sr->etag);
	am = s3_meta_of(&m);
	wo.flags = sr->create_only ? ATREST_WRITE_IF_ABSENT : 0;
	if (sr->part)
		rc = atrest_upload_part_open(
			w, sr->st, sr->name, sr->upload_id, sr->part, &am);
	else
		rc = atrest_writer_open_ex(w, sr->st, sr->name, &am, &wo);
	s3_meta_free(&m);
	if (rc == ATREST_ENOTFOUND && sr->part) {
		s3_no_such_upload(req);
		return -1;
	}
	if (rc < 0) {
		s3_lib_error(req, rc, "open writer");
		return -1;
	}
	return 0;
}

/* A collected body: its MD5 is known, so seal it now. */
static void put_collected(struct http_req *req)
{
	struct s3_req *sr = req->app;
	atrest_writer *w;
	int rc;

	if (open_writer(req, &w) < 0)
		return;
	rc = atrest_writer_write(w, sr->buf, sr->buf_len);
	if (rc < 0) {
		atrest_writer_abort(w);
		s3_lib_error(req, rc, "write");
		return;
	}
	rc = atrest_writer_commit(w);
	if (rc < 0 && put_commit_failed(req, rc) == 0)
		return;
	if (rc < 0) {
		s3_lib_error(req, rc, "commit");
		return;
	}
	put_done(req);
}

/* A streamed body: the ETag is the Content-MD5 when sent, else opaque. */
static void put_streamed(struct http_req *req)
{
	struct s3_req *sr = req->app;
	struct srv_s3 *s = req->api->ctx;
	uint8_t raw[16];

	if (sr->content_md5[0]) {
		unsigned char d[24];

		if (EVP_DecodeBlock(d, (const unsigned char *)sr->content_md5, 24) !=
			18) {
			http_error(req, 400, "InvalidDigest",
				"The Content-MD5 you specified was invalid.");
			return;
		}
		s3_hex(sr->etag, d, 16);
	} else {
		if (atrest_random(raw, sizeof(raw)) < 0) {
			http_error(req, 500, "InternalError", "no random bytes");
			return;
		}
		s3_hex(sr->etag, raw, 16);
		strcat(sr->etag, "-1");
	}
	if (open_writer(req, &sr->hp.w) < 0)
		return;
	sr->hp.decode = s3_body_feed;
	sr->hp.before_commit = s3_body_verify;
	sr->hp.commit_failed = put_commit_failed;
	sr->hp.done = put_done;
	http_body_to_writer(req, &sr->hp, sr->chunked ? 0 : s->max_object);
}

/* Does the object exist (1), not (0), or an atrest code. */
static int exists(atrest_store *st, const char *name)
{
	uint32_t id;
	int rc = atrest_object_key_id(&id, st, name);

	return rc == ATREST_ENOTFOUND ? 0 : rc < 0 ? rc : 1;
}

/* If-None-Match: * (create only) and If-Match on a PUT; 0 or -1 after answering. */
static int put_preconditions(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const char *inm = http_header(req, "if-none-match"),
		   *im = http_header(req, "if-match");
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	char etag[80];
	int rc;

	if (inm && strcmp(inm, "*") != 0) {
		http_error(req, 501, "NotImplemented",
			"A PUT takes only 'If-None-Match: *'.");
		return -1;
	}
	sr->create_only = inm != NULL;
	if (sr->create_only && (rc = exists(sr->st, sr->name)) != 0) {
		if (rc < 0)
			s3_lib_error(req, rc, "check object");
		else
			put_commit_failed(req, ATREST_EEXISTS);
		return -1;
	}
	if (!im)
		return 0;
	rc = atrest_stat(&si, sr->st, sr->name);
	if (rc < 0) {
		s3_lib_error(req, rc, "check object");
		return -1;
	}
	s3_etag_of(etag, &si);
	atrest_stat_info_clear(&si);
	if (!etag_in(im, etag)) {
		http_error(req, 412, "PreconditionFailed",
			"At least one of the pre-conditions you specified did not hold");
		return -1;
	}
	return 0;
}

static void copy_object(struct http_req *req);

void s3_object_put(struct http_req *req)
{
	if (s3_object_name(req) < 0 || s3_bucket_check(req) < 0 ||
		s3_headers_supported(req) < 0)
		return;
	if (http_header(req, "x-amz-copy-source")) {
		copy_object(req);
		return;
	}
	if (put_preconditions(req) < 0)
		return;
	s3_put_body(req);
}

void s3_put_body(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const char *dl = http_header(req, "x-amz-decoded-content-length");
	const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long size;

	if (s3_body_checks(req) < 0)
		return;
	if (!dl && sr->chunked) {
		http_error(req, 411, "MissingContentLength",
			"An aws-chunked body needs x-amz-decoded-content-length.");
		return;
	}
	size = strtoull(sr->chunked ? dl : cl ? cl : "", NULL, 10);
	if (!cl && !sr->chunked) {
		http_error(req, 411, "MissingContentLength",
			"You must provide the Content-Length HTTP header.");
		return;
	}
	/* Collected when small and the budget allows, else streamed. */
	if (sr->content_md5[0] || size > COLLECT_MAX ||
		s3_body_collect(req, (size_t)size, put_collected) < 0)
		put_streamed(req);
}

void s3_object_delete(struct http_req *req)
{
	struct s3_req *sr = req->app;
	int rc;

	if (s3_object_name(req) < 0 || s3_bucket_check(req) < 0)
		return;
	rc = atrest_delete(sr->st, sr->name);
	if (rc < 0 && rc != ATREST_ENOTFOUND) {
		s3_lib_error(req, rc, "delete");
		return;
	}
	http_respond(req, 204, http_response_buffer("", 0));
}

/* ---- CopyObject ---- */

/* "/bucket/key" or "bucket/key", percent-encoded; 0 or -1. */
static int copy_source(char **out, const char *v)
{
	char *dec = malloc(strlen(v) + 1), *d = dec;

	if (!dec)
		return -1;
	if (*v == '/')
		v++;
	for (; *v && *v != '?'; v++) {
		if (*v == '%' && v[1] && v[2]) {
			char hx[3] = {v[1], v[2], 0}, *end;
			long c = strtol(hx, &end, 16);

			if (*end || c == 0) {
				free(dec);
				return -1;
			}
			*d++ = (char)c;
			v += 2;
		} else
			*d++ = *v;
	}
	*d = '\0';
	if (*v == '?' || !strchr(dec, '/')) { /* versionId: not served */
		free(dec);
		return -1;
	}
	*out = dec;
	return 0;
}

/* Copy plaintext from r into w. */
static int pump(atrest_writer *w, atrest_reader *r)
{
	static const size_t block = 1u << 20;
	uint8_t *buf = malloc(block);
	size_t got;
	int rc = buf ? 0 : ATREST_ERROR;

	while (rc == 0 && (rc = atrest_reader_read(r, buf, block, &got)) == 0 && got)
		rc = atrest_writer_write(w, buf, got);
	free(buf);
	return rc;
}

/* The destination's metadata: the source's (COPY) or the request's (REPLACE). */
static int copy_meta(struct http_req *req, struct s3_meta *m, const atrest_stat_info *si)
{
	const char *dir = http_header(req, "x-amz-metadata-directive");

	if (dir && !strcmp(dir, "REPLACE")) {
		const char *e = meta_get(si, S3_META_ETAG);

		http_headers_each(req, meta_header, m);
		if (e)
			s3_meta_add(m, strdup(S3_META_ETAG), e);
		return m->bad ? -1 : 0;
	}
	if (dir && strcmp(dir, "COPY") != 0)
		return -1;
	for (size_t i = 0; i < si->meta_count; i++)
		s3_meta_add(m, strdup(si->meta[i].key), si->meta[i].value);
	return m->bad ? -1 : 0;
}

static void copy_done(struct http_req *req, const char *src)
{
	struct s3_req *sr = req->app;
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	struct srv_buf b = {0};
	char when[32], etag[80];

	(void)src;
	if (atrest_stat(&si, sr->st, sr->name) < 0) {
		s3_lib_error(req, ATREST_ERROR, "stat copy");
		return;
	}
	s3_time(when, si.mtime);
	s3_etag_of(etag, &si);
	atrest_stat_info_clear(&si);
	s3_xml_open(&b, "CopyObjectResult");
	s3_xml_elem(&b, "LastModified", when);
	s3_xml_elem(&b, "ETag", etag);
	srv_buf_printf(&b, "</CopyObjectResult>");
	s3_respond_xml(req, &b);
}

/* Open the source (its bucket must exist) for reading; 0 or -1 after answering. */
static int copy_open(
	struct http_req *req, const char *src, atrest_reader **r, atrest_stat_info *si)
{
	struct s3_req *sr = req->app;
	char mk[128];
	const char *slash = strchr(src, '/');
	uint32_t id;
	int rc;

	snprintf(mk, sizeof(mk), S3_MARKERS "%.*s", (int)(slash - src), src);
	if ((size_t)(slash - src) > S3_BUCKET_MAX ||
		atrest_object_key_id(&id, sr->st, mk) < 0) {
		http_error(req, 404, "NoSuchBucket", "The source bucket does not exist");
		return -1;
	}
	rc = atrest_name_check(src);
	if (rc == 0)
		rc = atrest_reader_open(r, sr->st, src);
	if (rc == 0 && (rc = atrest_stat(si, sr->st, src)) < 0)
		atrest_reader_close(*r);
	if (rc < 0) {
		s3_lib_error(req, rc, "open copy source");
		return -1;
	}
	return 0;
}

static void copy_object(struct http_req *req)
{
	struct s3_req *sr = req->app;
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	struct s3_meta m = {.n = 0};
	atrest_reader *r;
	atrest_writer *w;
	atrest_meta am;
	char *src;
	int rc;

	if (copy_source(&src, http_header(req, "x-amz-copy-source")) < 0) {
		http_error(req, 400, "InvalidArgument",
			"Copy Source must mention the source bucket and key: "
			"sourcebucket/sourcekey (versions are not served).");
		return;
	}
	if (http_header(req, "x-amz-copy-source-if-match") ||
		http_header(req, "x-amz-copy-source-if-none-match") ||
		http_header(req, "x-amz-copy-source-if-modified-since") ||
		http_header(req, "x-amz-copy-source-if-unmodified-since")) {
		free(src);
		http_error(req, 501, "NotImplemented",
			"Conditional copies are not implemented.");
		return;
	}
	if (copy_open(req, src, &r, &si) < 0) {
		free(src);
		return;
	}
	if (copy_meta(req, &m, &si) < 0) {
		http_error(req, 400, "InvalidArgument",
			"Bad x-amz-metadata-directive or metadata headers.");
		rc = 1;
	} else {
		am = s3_meta_of(&m);
		rc = atrest_writer_open(&w, sr->st, sr->name, &am);
		if (rc == 0 && (rc = pump(w, r)) < 0)
			atrest_writer_abort(w);
		else if (rc == 0)
			rc = atrest_writer_commit(w);
		if (rc < 0)
			s3_lib_error(req, rc, "copy");
	}
	atrest_reader_close(r);
	s3_meta_free(&m);
	atrest_stat_info_clear(&si);
	if (rc == 0)
		copy_done(req, src);
	free(src);
}

/* ---- DeleteObjects ---- */

struct deletes {
	struct http_req *req;
	struct srv_buf *b;
	int quiet;
};

static int delete_one(const char *key, void *payload)
{
	struct deletes *d = payload;
	struct s3_req *sr = d->req->app;
	struct srv_buf *b = d->b;
	char *name;
	int rc;

	if (asprintf(&name, "%s/%s", sr->bucket, key) < 0)
		return -2;
	rc = atrest_name_check(name);
	if (rc == 0)
		rc = atrest_delete(sr->st, name);
	free(name);
	if (rc == 0 || rc == ATREST_ENOTFOUND) {
		if (!d->quiet) {
			srv_buf_printf(b, "<Deleted>");
			s3_xml_elem(b, "Key", key);
			srv_buf_printf(b, "</Deleted>");
		}
		return 0;
	}
	srv_buf_printf(b, "<Error>");
	s3_xml_elem(b, "Key", key);
	s3_xml_elem(b, "Code", rc == ATREST_EINVAL ? "InvalidArgument" : "InternalError");
	s3_xml_elem(b, "Message", http_public_message(rc));
	srv_buf_printf(b, "</Error>");
	return 0;
}

/* A first pass checks the whole document: a malformed request deletes nothing. */
static int check_key(const char *key, void *payload)
{
	(void)key;
	(void)payload;
	return 0;
}

static void deletes_parsed(struct http_req *req)
{
	struct s3_req *sr = req->app;
	struct srv_buf b = {0};
	struct deletes d = {req, &b, 0};
	int rc;

	if (s3_xml_delete((const char *)sr->buf, sr->buf_len, &d.quiet, check_key, NULL) <
		0) {
		http_error(req, 400, "MalformedXML",
			"The XML you provided was not well-formed or did not validate "
			"against our published schema");
		return;
	}
	s3_xml_open(&b, "DeleteResult");
	rc = s3_xml_delete((const char *)sr->buf, sr->buf_len, &d.quiet, delete_one, &d);
	if (rc < 0) {
		srv_buf_free(&b);
		http_error(req, 500, "InternalError", "out of memory");
		return;
	}
	srv_buf_printf(&b, "</DeleteResult>");
	s3_respond_xml(req, &b);
}

void s3_objects_delete(struct http_req *req)
{
	const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long n = cl ? strtoull(cl, NULL, 10) : DELETE_BODY_MAX;

	if (s3_bucket_check(req) < 0 || s3_body_checks(req) < 0)
		return;
	s3_body_collect_or_slow_down(
		req, n < DELETE_BODY_MAX ? (size_t)n : DELETE_BODY_MAX, deletes_parsed);
}
