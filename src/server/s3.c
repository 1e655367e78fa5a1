/*
 * The S3 API's table and everything around the objects: routing by
 * bucket, key and subresource (path style, and virtual-host style under a
 * configured domain), SigV4 authentication with S3 access keys, S3 XML
 * errors, and the bucket operations (buckets are markers plus a prefix).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "apikeys.h"
#include "events.h"
#include "s3_int.h"
#include "secret.h"
#include "sigv4.h"

#define SKEW_MAX 900 /* seconds: S3's 15 minutes */
#define HDRS_MAX 128

/* ---- XML ---- */

void s3_xml_escape(struct srv_buf *b, const char *t)
{
	for (; *t; t++) {
		switch (*t) {
		case '&':
			srv_buf_printf(b, "&amp;");
			break;
		case '<':
			srv_buf_printf(b, "&lt;");
			break;
		case '>':
			srv_buf_printf(b, "&gt;");
			break;
		case '"':
			srv_buf_printf(b, "&quot;");
			break;
		default:
			if ((unsigned char)*t < 0x20 && *t != '\t' && *t != '\n')
				srv_buf_printf(b, "&#x%x;", (unsigned char)*t);
			else
				srv_buf_printf(b, "%c", *t);
		}
	}
}

void s3_xml_open(struct srv_buf *b, const char *root)
{
	srv_buf_printf(b,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%s "
		"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
		root);
}

void s3_xml_elem(struct srv_buf *b, const char *tag, const char *text)
{
	srv_buf_printf(b, "<%s>", tag);
	s3_xml_escape(b, text);
	srv_buf_printf(b, "</%s>", tag);
}

void s3_xml_elemf(struct srv_buf *b, const char *tag, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	s3_xml_elem(b, tag, text);
}

void s3_respond_xml(struct http_req *req, struct srv_buf *b)
{
	if (b->oom)
		http_error(req, 500, "InternalError", "out of memory");
	else
		http_respond_text(req, 200, "application/xml", b->p, b->len);
	srv_buf_free(b);
}

void s3_time(char out[32], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* ---- errors ---- */

/* S3's code for a status the HTTP layer or body.c chose in its own words. */
static const char *s3_code(unsigned status, const char *code)
{
	if (code && code[0] >= 'A' && code[0] <= 'Z')
		return code;
	switch (status) {
	case 400:
		return "InvalidRequest";
	case 401:
	case 403:
		return "AccessDenied";
	case 404:
		return "NoSuchKey";
	case 405:
		return "MethodNotAllowed";
	case 409:
		return "OperationAborted";
	case 411:
		return "MissingContentLength";
	case 412:
		return "PreconditionFailed";
	case 413:
		return "EntityTooLarge";
	case 416:
		return "InvalidRange";
	case 422:
		return "IntegrityCheckFailed";
	case 501:
		return "NotImplemented";
	case 503:
		return "SlowDown";
	default:
		return "InternalError";
	}
}

static struct MHD_Response *render_error(
	struct http_req *req, unsigned status, const char *code, const char *message)
{
	struct s3_req *sr = req->app;
	struct srv_buf b = {0};
	struct MHD_Response *resp = NULL;

	srv_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
	s3_xml_elem(&b, "Code", s3_code(status, code));
	s3_xml_elem(&b, "Message", message);
	if (sr && sr->bucket[0])
		s3_xml_elem(&b, "BucketName", sr->bucket);
	if (sr && sr->key)
		s3_xml_elem(&b, "Key", sr->key);
	s3_xml_elem(&b, "Resource", req->target.path ? req->target.path : "/");
	srv_buf_printf(&b, "</Error>\n");
	if (!b.oom)
		resp = http_response_buffer(b.p, b.len);
	if (resp)
		http_response_header(
			resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/xml");
	srv_buf_free(&b);
	return resp;
}

void s3_lib_error(struct http_req *req, int code, const char *what)
{
	struct http_status s = http_status_of(code);
	const atrest_error *e = atrest_error_last();

	if (s.status >= 500 || s.status == 422)
		srv_event("store_error", "api=s3 what=%s status=%u reason=\"%s\"", what,
			s.status,
			e && e->code == code ? e->message : atrest_strerror(code));
	if (code == ATREST_ENOTFOUND)
		http_error(req, 404, "NoSuchKey", "The specified key does not exist.");
	else if (code == ATREST_EINVAL && e && e->code == code)
		http_error(req, 400, "InvalidArgument", "%s", e->message);
	else
		http_error(req, s.status, s3_code(s.status, NULL), "%s",
			http_public_message(code));
}

/* ---- the tenant's store and buckets ---- */

static void release_tenant(void *ref)
{
	srv_tenant_release(ref);
}

int s3_store(struct http_req *req)
{
	struct srv_s3 *s = req->api->ctx;
	struct s3_req *sr = req->app;
	struct srv_tenant *ref;
	int rc;

	if (req->hold) {
		sr->st = srv_tenant_store(req->hold);
		return 0;
	}
	rc = srv_tenants_acquire(&sr->st, &ref, s->tenants, req->principal.tenant);
	if (rc == ATREST_ENOTFOUND) {
		srv_audit(ATREST_OP_AUTH, ATREST_ENOTFOUND, NULL, req->principal.tenant,
			req->route->label, "the key's tenant is not in the store");
		http_error(req, 403, "AccessDenied",
			"this key's tenant is not (or no longer) in the store");
		return -1;
	}
	if (rc < 0) {
		s3_lib_error(req, rc, "open tenant store");
		return -1;
	}
	req->hold = ref;
	req->hold_release = release_tenant;
	return 0;
}

static void marker_name(char *out, size_t cap, const char *bucket)
{
	snprintf(out, cap, S3_MARKERS "%s", bucket);
}

/* 1 when the bucket's marker exists, 0 when not, or an atrest code. */
static int bucket_exists(atrest_store *st, const char *bucket)
{
	char m[128];
	uint32_t id;
	int rc;

	marker_name(m, sizeof(m), bucket);
	rc = atrest_object_key_id(&id, st, m);
	return rc == ATREST_ENOTFOUND ? 0 : rc < 0 ? rc : 1;
}

int s3_bucket_check(struct http_req *req)
{
	struct s3_req *sr = req->app;
	int rc;

	if (s3_store(req) < 0)
		return -1;
	rc = bucket_exists(sr->st, sr->bucket);
	if (rc == 1)
		return 0;
	if (rc == 0)
		http_error(
			req, 404, "NoSuchBucket", "The specified bucket does not exist");
	else
		s3_lib_error(req, rc, "bucket");
	return -1;
}

/* S3's rules for new bucket names (DNS-compatible). */
static int bucket_name_ok(const char *b)
{
	size_t n = strlen(b), i;
	int digits_dots = 1;

	if (n < 3 || n > S3_BUCKET_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = b[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			    c == '-'))
			return 0;
		if (c != '.' && !(c >= '0' && c <= '9'))
			digits_dots = 0;
	}
	if (b[0] == '.' || b[0] == '-' || b[n - 1] == '.' || b[n - 1] == '-' ||
		strstr(b, "..") || strstr(b, ".-") || strstr(b, "-.") || digits_dots)
		return 0;
	return 1;
}

static void respond_empty(struct http_req *req, unsigned status)
{
	http_respond(req, status, http_response_buffer("", 0));
}

static void bucket_create_now(struct http_req *req)
{
	struct s3_req *sr = req->app;
	atrest_write_options wo = ATREST_WRITE_OPTIONS_INIT;
	atrest_writer *w;
	char m[128], loc[80];
	struct MHD_Response *resp;
	int rc;

	marker_name(m, sizeof(m), sr->bucket);
	wo.flags = ATREST_WRITE_IF_ABSENT;
	rc = atrest_writer_open_ex(&w, sr->st, m, NULL, &wo);
	if (rc == 0)
		rc = atrest_writer_commit(w);
	if (rc == ATREST_EEXISTS) {
		http_error(req, 409, "BucketAlreadyOwnedByYou",
			"Your previous request to create the named bucket succeeded "
			"and you already own it.");
		return;
	}
	if (rc < 0) {
		s3_lib_error(req, rc, "create bucket");
		return;
	}
	snprintf(loc, sizeof(loc), "/%s", sr->bucket);
	resp = http_response_buffer("", 0);
	if (resp)
		http_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
	http_respond(req, 200, resp);
}

/* A CreateBucketConfiguration body is read and ignored (one region). */
static int ignore_write(struct http_req *req, const void *buf, size_t len)
{
	(void)req;
	(void)buf;
	(void)len;
	return 0;
}

static const struct http_body_sink ignore_sink = {ignore_write, bucket_create_now, NULL};

static void bucket_create(struct http_req *req)
{
	struct s3_req *sr = req->app;

	if (!bucket_name_ok(sr->bucket)) {
		http_error(req, 400, "InvalidBucketName",
			"The specified bucket is not valid.");
		return;
	}
	if (s3_store(req) < 0)
		return;
	http_body_begin(req, &ignore_sink, 64 << 10);
}

static int first_object(const atrest_list_entry *e, void *payload)
{
	(void)e;
	(void)payload;
	return 1;
}

static void bucket_delete(struct http_req *req)
{
	struct s3_req *sr = req->app;
	char prefix[S3_BUCKET_MAX + 2], m[128];
	int rc;

	if (s3_bucket_check(req) < 0)
		return;
	snprintf(prefix, sizeof(prefix), "%s/", sr->bucket);
	rc = atrest_list(sr->st, prefix, first_object, NULL);
	if (rc == 1) {
		http_error(req, 409, "BucketNotEmpty",
			"The bucket you tried to delete is not empty");
		return;
	}
	marker_name(m, sizeof(m), sr->bucket);
	if (rc == 0)
		rc = atrest_delete(sr->st, m);
	if (rc < 0 && rc != ATREST_ENOTFOUND) {
		s3_lib_error(req, rc, "delete bucket");
		return;
	}
	respond_empty(req, 204);
}

static void bucket_head(struct http_req *req)
{
	struct srv_s3 *s = req->api->ctx;
	struct MHD_Response *resp;

	if (s3_bucket_check(req) < 0)
		return;
	resp = http_response_buffer("", 0);
	if (resp)
		http_response_header(resp, "x-amz-bucket-region", s->region);
	http_respond(req, 200, resp);
}

static void bucket_location(struct http_req *req)
{
	struct srv_s3 *s = req->api->ctx;
	struct srv_buf b = {0};

	if (s3_bucket_check(req) < 0)
		return;
	srv_buf_printf(&b,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<LocationConstraint "
		"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	if (strcmp(s->region, "us-east-1") != 0)
		s3_xml_escape(&b, s->region);
	srv_buf_printf(&b, "</LocationConstraint>");
	s3_respond_xml(req, &b);
}

struct buckets {
	struct srv_buf *b;
};

static int bucket_row(const atrest_list_entry *e, void *payload)
{
	struct srv_buf *b = payload;
	const char *name = e->name + strlen(S3_MARKERS);
	char when[32];

	if (!bucket_name_ok(name))
		return 0;
	s3_time(when, e->mtime);
	srv_buf_printf(b, "<Bucket>");
	s3_xml_elem(b, "Name", name);
	s3_xml_elem(b, "CreationDate", when);
	srv_buf_printf(b, "</Bucket>");
	return 0;
}

void s3_list_buckets(struct http_req *req)
{
	struct s3_req *sr = req->app;
	struct srv_buf b = {0};
	int rc;

	if (s3_store(req) < 0)
		return;
	s3_xml_open(&b, "ListAllMyBucketsResult");
	srv_buf_printf(&b, "<Owner>");
	s3_xml_elem(
		&b, "ID", req->principal.tenant[0] ? req->principal.tenant : "default");
	s3_xml_elem(&b, "DisplayName",
		req->principal.tenant[0] ? req->principal.tenant : "default");
	srv_buf_printf(&b, "</Owner><Buckets>");
	rc = atrest_list(sr->st, S3_MARKERS, bucket_row, &b);
	if (rc < 0) {
		srv_buf_free(&b);
		s3_lib_error(req, rc, "list buckets");
		return;
	}
	srv_buf_printf(&b, "</Buckets></ListAllMyBucketsResult>");
	s3_respond_xml(req, &b);
}

static void not_implemented(struct http_req *req)
{
	http_error(req, 501, "NotImplemented",
		"A header or query you provided implies functionality that is not "
		"implemented.");
}

/* ---- routing ---- */

enum {
	R_SERVICE,
	R_BUCKET_GET,
	R_BUCKET_HEAD,
	R_BUCKET_PUT,
	R_BUCKET_DELETE,
	R_BUCKET_LOCATION,
	R_BUCKET_UPLOADS,
	R_UPLOAD_CREATE,
	R_UPLOAD_PART,
	R_UPLOAD_COMPLETE,
	R_UPLOAD_ABORT,
	R_UPLOAD_PARTS,
	R_BUCKET_DELETE_OBJECTS,
	R_OBJECT_GET,
	R_OBJECT_PUT,
	R_OBJECT_DELETE,
	R_NOT_IMPLEMENTED,
	R_COUNT
};

static const struct http_route routes[R_COUNT + 1] = {
	[R_SERVICE] = {"/", HTTP_GET, "ListBuckets", SRV_ROLE_READER, s3_list_buckets},
	[R_BUCKET_GET] = {"/*", HTTP_GET, "ListObjects", SRV_ROLE_READER,
		s3_list_objects},
	[R_BUCKET_HEAD] = {"/*", HTTP_HEAD, "HeadBucket", SRV_ROLE_READER, bucket_head},
	[R_BUCKET_PUT] = {"/*", HTTP_PUT, "CreateBucket", SRV_ROLE_WRITER, bucket_create},
	[R_BUCKET_DELETE] = {"/*", HTTP_DELETE, "DeleteBucket", SRV_ROLE_WRITER,
		bucket_delete},
	[R_BUCKET_LOCATION] = {"/*", HTTP_GET, "GetBucketLocation", SRV_ROLE_READER,
		bucket_location},
	[R_BUCKET_DELETE_OBJECTS] = {"/*", HTTP_POST, "DeleteObjects", SRV_ROLE_WRITER,
		s3_objects_delete},
	[R_BUCKET_UPLOADS] = {"/*", HTTP_GET, "ListMultipartUploads", SRV_ROLE_READER,
		s3_uploads_list},
	[R_UPLOAD_CREATE] = {"/*", HTTP_POST, "CreateMultipartUpload", SRV_ROLE_WRITER,
		s3_upload_create},
	[R_UPLOAD_PART] = {"/*", HTTP_PUT, "UploadPart", SRV_ROLE_WRITER, s3_upload_part},
	[R_UPLOAD_COMPLETE] = {"/*", HTTP_POST, "CompleteMultipartUpload",
		SRV_ROLE_WRITER, s3_upload_complete},
	[R_UPLOAD_ABORT] = {"/*", HTTP_DELETE, "AbortMultipartUpload", SRV_ROLE_WRITER,
		s3_upload_abort},
	[R_UPLOAD_PARTS] = {"/*", HTTP_GET, "ListParts", SRV_ROLE_READER,
		s3_upload_parts},
	[R_OBJECT_GET] = {"/*", HTTP_GET | HTTP_HEAD, "GetObject", SRV_ROLE_READER,
		s3_object_get},
	[R_OBJECT_PUT] = {"/*", HTTP_PUT, "PutObject", SRV_ROLE_WRITER, s3_object_put},
	[R_OBJECT_DELETE] = {"/*", HTTP_DELETE, "DeleteObject", SRV_ROLE_WRITER,
		s3_object_delete},
	[R_NOT_IMPLEMENTED] = {"/*", 0x3f, "NotImplemented", SRV_ROLE_READER,
		not_implemented},
	[R_COUNT] = {NULL, 0, NULL, 0, NULL},
};

/* Query parameters that name a subresource this API does not serve. */
static int unsupported_subresource(const struct http_target *t)
{
	static const char *const names[] = {"acl", "policy", "cors", "lifecycle",
		"versioning", "tagging", "website", "logging", "notification",
		"replication", "encryption", "object-lock", "versions", "restore",
		"select", "torrent", "accelerate", "requestPayment", "analytics",
		"metrics", "inventory", "intelligent-tiering", "ownershipControls",
		"publicAccessBlock", "retention", "legal-hold", "attributes",
		"policyStatus", "versionId", NULL};

	for (size_t i = 0; names[i]; i++)
		if (http_target_param(t, names[i]))
			return 1;
	return 0;
}

static void s3_req_free(void *app)
{
	struct s3_req *sr = app;

	if (!sr)
		return;
	free(sr->key);
	free(sr->name);
	free(sr->upload_id);
	EVP_MD_CTX_free(sr->md5);
	EVP_MD_CTX_free(sr->sha256);
	EVP_MD_CTX_free(sr->sum_sha);
	s3_chunked_free(&sr->dec);
	if (sr->buf)
		atrest__wipe(sr->buf, sr->buf_len);
	free(sr->buf);
	s3_budget_give(sr);
	atrest__wipe(sr->sigkey, sizeof(sr->sigkey));
	free(sr);
}

/* The bucket of a virtual-host style request (Host: BUCKET.DOMAIN[:port]). */
static int host_bucket(char *out, size_t cap, struct http_req *req)
{
	struct srv_s3 *s = req->api->ctx;
	const char *host = http_header(req, MHD_HTTP_HEADER_HOST);
	size_t n, d;
	const char *colon;

	if (!s->domain || !host)
		return 0;
	colon = strrchr(host, ':');
	n = colon && !strchr(host, ']') ? (size_t)(colon - host) : strlen(host);
	d = strlen(s->domain);
	if (n <= d + 1 || host[n - d - 1] != '.' ||
		strncasecmp(host + n - d, s->domain, d) != 0 || n - d - 1 >= cap)
		return 0;
	memcpy(out, host, n - d - 1);
	out[n - d - 1] = '\0';
	return 1;
}

/* Bucket and key of the request into sr; 0, or -1 (bad request). */
static int split_target(struct http_req *req, struct s3_req *sr)
{
	const char *p = req->target.path, *slash;
	char vbucket[S3_BUCKET_MAX + 2];
	size_t n;

	if (*p == '/')
		p++;
	if (host_bucket(vbucket, sizeof(vbucket), req)) {
		if (strlen(vbucket) > S3_BUCKET_MAX)
			return -1;
		strcpy(sr->bucket, vbucket);
		if (*p && !(sr->key = strdup(p)))
			return -1;
		return 0;
	}
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n > S3_BUCKET_MAX)
		return -1;
	memcpy(sr->bucket, p, n);
	sr->bucket[n] = '\0';
	if (slash && slash[1] && !(sr->key = strdup(slash + 1)))
		return -1;
	return 0;
}

static int pick_bucket_route(struct http_req *req)
{
	const struct http_target *t = &req->target;

	switch (req->method) {
	case HTTP_GET:
		if (http_target_param(t, "uploads"))
			return R_BUCKET_UPLOADS;
		return http_target_param(t, "location") ? R_BUCKET_LOCATION
							: R_BUCKET_GET;
	case HTTP_HEAD:
		return R_BUCKET_HEAD;
	case HTTP_PUT:
		return R_BUCKET_PUT;
	case HTTP_DELETE:
		return R_BUCKET_DELETE;
	case HTTP_POST:
		return http_target_param(t, "delete") ? R_BUCKET_DELETE_OBJECTS
						      : R_NOT_IMPLEMENTED;
	default:
		return R_NOT_IMPLEMENTED;
	}
}

/* Multipart: ?uploads, ?uploadId (with ?partNumber for a part). */
static int pick_upload_route(struct http_req *req)
{
	const struct http_target *t = &req->target;
	int id = http_target_param(t, "uploadId") != NULL;

	if (req->method == HTTP_POST && http_target_param(t, "uploads") && !id)
		return R_UPLOAD_CREATE;
	if (!id)
		return R_NOT_IMPLEMENTED;
	switch (req->method) {
	case HTTP_PUT:
		return http_target_param(t, "partNumber") &&
				!http_header(req, "x-amz-copy-source")
			? R_UPLOAD_PART
			: R_NOT_IMPLEMENTED;
	case HTTP_POST:
		return R_UPLOAD_COMPLETE;
	case HTTP_DELETE:
		return R_UPLOAD_ABORT;
	case HTTP_GET:
		return R_UPLOAD_PARTS;
	default:
		return R_NOT_IMPLEMENTED;
	}
}

static int pick_object_route(struct http_req *req)
{
	if (http_target_param(&req->target, "uploads") ||
		http_target_param(&req->target, "uploadId"))
		return pick_upload_route(req);
	switch (req->method) {
	case HTTP_GET:
	case HTTP_HEAD:
		return R_OBJECT_GET;
	case HTTP_PUT:
		return R_OBJECT_PUT;
	case HTTP_DELETE:
		return R_OBJECT_DELETE;
	default:
		return R_NOT_IMPLEMENTED;
	}
}

static const struct http_route *route(struct http_req *req)
{
	struct s3_req *sr = calloc(1, sizeof(*sr));
	int r;

	if (!sr) {
		http_error(req, 500, "InternalError", "out of memory");
		return NULL;
	}
	req->app = sr;
	req->app_free = s3_req_free;
	if (split_target(req, sr) < 0) {
		http_error(req, 400, "InvalidURI", "Couldn't parse the specified URI.");
		return NULL;
	}
	if (!sr->bucket[0])
		r = req->method == HTTP_GET ? R_SERVICE : R_NOT_IMPLEMENTED;
	else if (unsupported_subresource(&req->target))
		r = R_NOT_IMPLEMENTED;
	else if (!sr->key)
		r = pick_bucket_route(req);
	else
		r = pick_object_route(req);
	return &routes[r];
}

/* ---- SigV4 ---- */

struct hdrs {
	atrest__sigv4_hdr h[HDRS_MAX];
	size_t n;
};

static int collect_hdr(const char *name, const char *value, void *payload)
{
	struct hdrs *h = payload;

	if (h->n == HDRS_MAX)
		return 1;
	h->h[h->n].name = name;
	h->h[h->n].value = value;
	h->n++;
	return 0;
}

/* An authentication failure: counted, logged, audited; answered as S3 does. */
static int auth_fail(struct http_req *req, unsigned status, const char *code,
	const char *reason, const char *who, const char *msg)
{
	char note[160];

	srv_metrics_auth_failure("s3", reason);
	srv_event("auth_failure", "api=s3 reason=%s access_key=%s route=%s", reason,
		who ? who : "none", req->route->label);
	snprintf(note, sizeof(note), "s3 %s", reason);
	srv_audit(ATREST_OP_AUTH, ATREST_EKEY, who ? who : "unauthenticated", NULL,
		req->route->label, note);
	http_error(req, status, code, "%s", msg);
	return -1;
}

/* Path and query as sent, from the raw request target. */
static int raw_parts(struct http_req *req, char **path, char **query)
{
	char *t = req->raw_target, *q;

	if (!t)
		return -1;
	if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
		t = strchr(strchr(t, ':') + 3, '/');
		if (!t)
			return -1;
	}
	*path = t;
	q = strchr(t, '?');
	*query = q ? q + 1 : NULL;
	if (q)
		*q = '\0'; /* raw_target is only read here */
	return 0;
}

/* What the request claims: the parsed credential and its time. */
static int claimed(struct http_req *req, atrest__sigv4_auth *a, const char *query,
	int *presigned, int64_t *t)
{
	const char *h = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *date;
	int64_t now = (int64_t)time(NULL);

	*presigned = query && strstr(query, "X-Amz-Signature=") != NULL;
	if (*presigned) {
		if (atrest__sigv4_parse_presigned(a, query) < 0)
			return auth_fail(req, 400, "AuthorizationQueryParametersError",
				"malformed", NULL,
				"The presigned URL's X-Amz-* parameters are malformed.");
		if (atrest__sigv4_parse_amz_date(t, a->amz_date) < 0)
			return auth_fail(req, 400, "AuthorizationQueryParametersError",
				"malformed", NULL, "X-Amz-Date is malformed.");
		if (now > *t + a->expires || *t > now + SKEW_MAX)
			return auth_fail(req, 403, "AccessDenied", "expired",
				a->access_key, "Request has expired");
		return 0;
	}
	if (!h || !*h)
		return auth_fail(req, 403, "AccessDenied", "missing", NULL,
			"Anonymous access is not allowed: sign requests with SigV4.");
	if (strncmp(h, "AWS4-HMAC-SHA256 ", 17) != 0)
		return auth_fail(req, 400, "InvalidRequest", "algorithm", NULL,
			"Only AWS4-HMAC-SHA256 (Signature Version 4) is supported.");
	if (atrest__sigv4_parse_authorization(a, h) < 0)
		return auth_fail(req, 400, "AuthorizationHeaderMalformed", "malformed",
			NULL, "The authorization header is malformed.");
	date = http_header(req, "x-amz-date");
	if (!date || atrest__sigv4_parse_amz_date(t, date) < 0)
		return auth_fail(req, 403, "AccessDenied", "date", a->access_key,
			"A valid x-amz-date header is required.");
	snprintf(a->amz_date, sizeof(a->amz_date), "%s", date);
	if (*t > now + SKEW_MAX || *t < now - SKEW_MAX)
		return auth_fail(req, 403, "RequestTimeTooSkewed", "skew", a->access_key,
			"The difference between the request time and the current time is "
			"too large.");
	return 0;
}

/* The secret of the claimed key; principal filled.  0 or -1 after answering. */
static int secret_of(struct http_req *req, const atrest__sigv4_auth *a, char *secret)
{
	struct srv_s3 *s = req->api->ctx;
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = s->rec ? srv_auth_s3(s->keys, a->access_key, s->rec, &req->principal, secret)
		    : -2;
	pthread_mutex_unlock(&s->mu);
	if (rc == -1)
		return auth_fail(req, 403, "InvalidAccessKeyId", "unknown_key",
			a->access_key,
			"The AWS Access Key Id you provided does not exist in our records.");
	if (rc < 0) {
		srv_event("s3key_unseal_failed", "access_key=%s", a->access_key);
		return auth_fail(req, 500, "InternalError", "unseal", a->access_key,
			"The key's secret could not be opened.");
	}
	return 0;
}

/* Check the signature; keep what a streamed body needs. */
static int check_signature(struct http_req *req, const atrest__sigv4_auth *a, char *path,
	char *query, int presigned, const char *secret)
{
	struct s3_req *sr = req->app;
	struct hdrs h = {.n = 0};
	const char *ph = http_header(req, "x-amz-content-sha256");
	atrest__sigv4_msg m;
	int rc;

	if (presigned)
		ph = ATREST__SIGV4_UNSIGNED;
	else if (!ph)
		return auth_fail(req, 400, "InvalidRequest", "no_payload_hash",
			a->access_key,
			"Missing required header for this request: x-amz-content-sha256");
	snprintf(sr->payload, sizeof(sr->payload), "%s", ph);
	http_headers_each(req, collect_hdr, &h);
	m.method = req->method_name;
	m.path = path;
	m.query = query;
	m.headers = h.h;
	m.nheaders = h.n;
	m.payload_hash = ph;
	rc = atrest__sigv4_verify(&m, a, a->amz_date, (const uint8_t *)secret,
		SRV_S3KEY_SECRET_LEN, presigned, ATREST__SIGV4_S3);
	if (rc < 0)
		return auth_fail(req, 403, "SignatureDoesNotMatch", "signature",
			a->access_key,
			"The request signature we calculated does not match the "
			"signature you provided.");
	snprintf(sr->amz_date, sizeof(sr->amz_date), "%s", a->amz_date);
	snprintf(sr->seed, sizeof(sr->seed), "%s", a->signature);
	if (atrest__sigv4_scope(sr->scope, sizeof(sr->scope), a->amz_date, a->region,
		    a->service) < 0 ||
		atrest__sigv4_signing_key(sr->sigkey, (const uint8_t *)secret,
			SRV_S3KEY_SECRET_LEN, a->date, a->region, a->service) < 0)
		return auth_fail(req, 500, "InternalError", "signing_key", a->access_key,
			"internal error");
	return 0;
}

static int authenticate(struct http_req *req, int need)
{
	struct srv_s3 *s = req->api->ctx;
	atrest__sigv4_auth *a = calloc(1, sizeof(*a));
	char secret[SRV_S3KEY_SECRET_LEN + 1], *path, *query;
	int presigned, rc = -1;
	int64_t t;

	if (!a) {
		http_error(req, 500, "InternalError", "out of memory");
		return -1;
	}
	if (raw_parts(req, &path, &query) < 0)
		auth_fail(req, 400, "InvalidURI", "target", NULL,
			"Couldn't parse the URI.");
	else if (claimed(req, a, query, &presigned, &t) < 0)
		;
	else if (strcmp(a->service, "s3") != 0 || strcmp(a->region, s->region) != 0)
		auth_fail(req, 400, "AuthorizationHeaderMalformed", "scope",
			a->access_key,
			strcmp(a->service, "s3")
				? "The credential scope's service must be 's3'."
				: "The authorization header's region is wrong "
				  "for this server.");
	else if (secret_of(req, a, secret) == 0) {
		rc = check_signature(req, a, path, query, presigned, secret);
		atrest__wipe(secret, sizeof(secret));
	}
	free(a);
	if (rc < 0)
		return -1;
	if (req->principal.role < need) {
		srv_principal_set(&req->principal);
		return auth_fail(req, 403, "AccessDenied", "role", req->principal.key_id,
			"Access Denied: this access key's role may not do this.");
	}
	return 0;
}

/* ---- the table ---- */

int srv_s3_api(struct http_api *out, struct srv_s3 *s)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->name = "s3";
	out->routes = routes;
	out->route = route;
	out->authenticate = authenticate;
	out->render_error = render_error;
	out->ctx = s;
	pthread_mutex_init(&s->mu, NULL);
	rc = atrest_recorder_open(&s->rec, srv_tenants_root(s->tenants), SRV_S3KEY_NS);
	if (rc < 0) {
		srv_log("S3 API: cannot open the recorder of S3 secrets: %s",
			atrest_strerror(rc));
		return -1;
	}
	return 0;
}

size_t srv_s3_sweep(struct srv_s3 *s)
{
	struct srv_tenant **refs;
	size_t n, i, removed = 0;

	if (srv_tenants_all(&refs, &n, s->tenants) < 0)
		return 0;
	for (i = 0; i < n; i++)
		removed += srv_s3_sweep_store(srv_tenant_store(refs[i]));
	srv_tenants_release_all(refs, n);
	if (removed)
		srv_event("s3_sweep", "upload_markers_removed=%zu", removed);
	return removed;
}

void srv_s3_cleanup(struct srv_s3 *s)
{
	if (s->rec)
		atrest_recorder_close(s->rec);
	s->rec = NULL;
}
