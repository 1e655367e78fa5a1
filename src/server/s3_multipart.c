/*
 * S3 multipart uploads on the library's uploads (atrest/upload.h): each
 * part sealed as it streams in (its MD5 kept with it as its ETag), the
 * completion checked as S3 checks it (order, ETags, sizes) and published
 * with the S3 ETag md5(part MD5s)-N, no byte copied.  The metadata given
 * at creation is kept, sealed, in a marker object ".s3/uploads/ID" until
 * the upload completes or is aborted; srv_s3_sweep removes the markers of
 * uploads that ended otherwise (atrest upload cleanup).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "s3_int.h"
#include "s3_xml.h"

#define UPLOADS ".s3/uploads/"
#define PART_MIN (5u << 20) /* bytes of every part but the last */
#define COMPLETE_BODY_MAX (4u << 20)
#define LIST_MAX 1000

void s3_no_such_upload(struct http_req *req)
{
	http_error(req, 404, "NoSuchUpload",
		"The specified upload does not exist. The upload ID may be invalid, "
		"or the upload may have been aborted or completed.");
}

/* An upload id as the library makes them: 1-64 of [A-Za-z0-9_-]. */
static int upload_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
			    (id[i] >= '0' && id[i] <= '9') || id[i] == '_' ||
			    id[i] == '-'))
			return 0;
	return 1;
}

/* Name, bucket and ?uploadId of an upload request; 0, or -1 after answering. */
static int upload_target(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const char *id = http_target_param(&req->target, "uploadId");

	if (s3_object_name(req) < 0 || s3_bucket_check(req) < 0)
		return -1;
	if (!upload_id_ok(id)) {
		s3_no_such_upload(req);
		return -1;
	}
	if (!(sr->upload_id = strdup(id))) {
		http_error(req, 500, "InternalError", "out of memory");
		return -1;
	}
	return 0;
}

static void marker_of(char out[96], const char *id)
{
	snprintf(out, 96, UPLOADS "%s", id);
}

void s3_upload_create(struct http_req *req)
{
	struct s3_req *sr = req->app;
	struct s3_meta m = {.n = 0};
	struct srv_buf b = {0};
	char *id = NULL, marker[96];
	atrest_meta am;
	int rc;

	if (s3_object_name(req) < 0 || s3_bucket_check(req) < 0 ||
		s3_headers_supported(req) < 0 || s3_meta_collect(req, &m) < 0)
		return;
	am = s3_meta_of(&m);
	rc = atrest_upload_create(&id, sr->st, sr->name, &am);
	if (rc == 0) {
		marker_of(marker, id);
		rc = atrest_put(sr->st, marker, "", 0, &am);
		if (rc < 0)
			atrest_upload_abort(sr->st, sr->name, id);
	}
	s3_meta_free(&m);
	if (rc < 0) {
		atrest_free(id);
		s3_lib_error(req, rc, "create upload");
		return;
	}
	s3_xml_open(&b, "InitiateMultipartUploadResult");
	s3_xml_elem(&b, "Bucket", sr->bucket);
	s3_xml_elem(&b, "Key", sr->key);
	s3_xml_elem(&b, "UploadId", id);
	srv_buf_printf(&b, "</InitiateMultipartUploadResult>");
	atrest_free(id);
	s3_respond_xml(req, &b);
}

void s3_upload_part(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const char *pn = http_target_param(&req->target, "partNumber");
	char *end;
	unsigned long n = strtoul(pn, &end, 10);

	if (!*pn || *end || pn[0] == '-' || n < 1 || n > ATREST_UPLOAD_MAX_PARTS) {
		http_error(req, 400, "InvalidArgument",
			"Part number must be an integer between 1 and 10000, inclusive");
		return;
	}
	if (upload_target(req) < 0)
		return;
	sr->part = (uint32_t)n;
	s3_put_body(req);
}

/* ---- the parts uploaded ---- */

struct part_info {
	uint64_t size;
	int64_t mtime;
	char etag[48];
	int present;
};

static const char *part_etag(const atrest_upload_part *p)
{
	for (size_t i = 0; i < p->meta_count; i++)
		if (!strcmp(p->meta[i].key, S3_META_ETAG))
			return p->meta[i].value;
	return "";
}

static int note_part(const atrest_upload_part *p, void *payload)
{
	struct part_info *all = payload;

	if (p->number < 1 || p->number > ATREST_UPLOAD_MAX_PARTS)
		return 0;
	all[p->number].size = p->size;
	all[p->number].mtime = p->mtime;
	snprintf(all[p->number].etag, sizeof(all[p->number].etag), "%s", part_etag(p));
	all[p->number].present = 1;
	return 0;
}

/* ---- CompleteMultipartUpload ---- */

struct completion {
	uint32_t *numbers;
	char (*etags)[48];
	size_t n;
	int out_of_order;
};

static int listed_part(uint32_t number, const char *etag, void *payload)
{
	struct completion *c = payload;

	if (c->n && number <= c->numbers[c->n - 1])
		c->out_of_order = 1;
	c->numbers[c->n] = number;
	snprintf(c->etags[c->n], sizeof(c->etags[0]), "%s", etag);
	c->n++;
	return 0;
}

/* The S3 ETag of a multipart object: md5 of the parts' MD5s, "-N". */
static void multipart_etag(char out[48], struct completion *c)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t d[16];
	unsigned int len = 16;

	EVP_DigestInit_ex(md, EVP_md5(), NULL);
	for (size_t i = 0; i < c->n; i++) {
		uint8_t bin[16];
		const char *e = c->etags[i];
		int ok = strlen(e) == 32;

		for (int j = 0; ok && j < 16; j++) {
			unsigned v;

			ok = sscanf(e + 2 * j, "%2x", &v) == 1;
			bin[j] = (uint8_t)v;
		}
		if (!ok)
			EVP_Digest(e, strlen(e), bin, &len, EVP_md5(), NULL);
		EVP_DigestUpdate(md, bin, 16);
	}
	EVP_DigestFinal_ex(md, d, &len);
	EVP_MD_CTX_free(md);
	s3_hex(out, d, 16);
	snprintf(out + 32, 16, "-%zu", c->n);
}

/* S3's checks of a completion; 0, or -1 after answering. */
static int completion_ok(
	struct http_req *req, struct completion *c, const struct part_info *have)
{
	if (c->out_of_order) {
		http_error(req, 400, "InvalidPartOrder",
			"The list of parts was not in ascending order. Parts must be "
			"ordered by part number.");
		return -1;
	}
	for (size_t i = 0; i < c->n; i++) {
		const struct part_info *p = &have[c->numbers[i]];

		if (!p->present || strcmp(p->etag, c->etags[i]) != 0) {
			http_error(req, 400, "InvalidPart",
				"One or more of the specified parts could not be found. "
				"The part may not have been uploaded, or the specified "
				"entity tag may not match the part's entity tag.");
			return -1;
		}
		if (i + 1 < c->n && p->size < PART_MIN) {
			http_error(req, 400, "EntityTooSmall",
				"Your proposed upload is smaller than the minimum allowed "
				"object size.");
			return -1;
		}
	}
	return 0;
}

/* Publish: the creation metadata (from the marker) and the ETag. */
static int publish(struct http_req *req, struct completion *c, const char *etag)
{
	struct s3_req *sr = req->app;
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	atrest_write_options wo = ATREST_WRITE_OPTIONS_INIT;
	struct s3_meta m = {.n = 0};
	char marker[96];
	atrest_meta am;
	int rc;

	marker_of(marker, sr->upload_id);
	if (atrest_stat(&si, sr->st, marker) == 0)
		for (size_t i = 0; i < si.meta_count; i++)
			if (strcmp(si.meta[i].key, S3_META_ETAG) != 0)
				s3_meta_add(&m, strdup(si.meta[i].key), si.meta[i].value);
	s3_meta_add(&m, strdup(S3_META_ETAG), etag);
	am = s3_meta_of(&m);
	wo.flags = sr->create_only ? ATREST_WRITE_IF_ABSENT : 0;
	rc = m.bad ? ATREST_ERROR
		   : atrest_upload_complete(
			     sr->st, sr->name, sr->upload_id, c->numbers, c->n, &am, &wo);
	s3_meta_free(&m);
	atrest_stat_info_clear(&si);
	if (rc == 0)
		atrest_delete(sr->st, marker);
	return rc;
}

static void complete_answer(struct http_req *req, const char *etag)
{
	struct s3_req *sr = req->app;
	struct srv_buf b = {0};
	char q[64];

	snprintf(q, sizeof(q), "\"%s\"", etag);
	s3_xml_open(&b, "CompleteMultipartUploadResult");
	srv_buf_printf(&b, "<Location>/");
	s3_xml_escape(&b, sr->bucket);
	srv_buf_printf(&b, "/");
	s3_xml_escape(&b, sr->key);
	srv_buf_printf(&b, "</Location>");
	s3_xml_elem(&b, "Bucket", sr->bucket);
	s3_xml_elem(&b, "Key", sr->key);
	s3_xml_elem(&b, "ETag", q);
	srv_buf_printf(&b, "</CompleteMultipartUploadResult>");
	s3_respond_xml(req, &b);
}

static void complete_parsed(struct http_req *req)
{
	struct s3_req *sr = req->app;
	struct completion c = {0};
	struct part_info *have = calloc(ATREST_UPLOAD_MAX_PARTS + 1, sizeof(*have));
	char etag[48];
	int rc;

	c.numbers = calloc(S3_XML_PARTS_MAX, sizeof(*c.numbers));
	c.etags = calloc(S3_XML_PARTS_MAX, sizeof(*c.etags));
	if (!have || !c.numbers || !c.etags) {
		http_error(req, 500, "InternalError", "out of memory");
		goto out;
	}
	if (s3_xml_complete((const char *)sr->buf, sr->buf_len, listed_part, &c) < 0) {
		http_error(req, 400, "MalformedXML",
			"The XML you provided was not well-formed or did not validate "
			"against our published schema");
		goto out;
	}
	rc = atrest_upload_parts(sr->st, sr->name, sr->upload_id, note_part, have);
	if (rc == ATREST_ENOTFOUND) {
		s3_no_such_upload(req);
		goto out;
	}
	if (rc < 0) {
		s3_lib_error(req, rc, "list parts");
		goto out;
	}
	if (completion_ok(req, &c, have) < 0)
		goto out;
	multipart_etag(etag, &c);
	rc = publish(req, &c, etag);
	if (rc == ATREST_EEXISTS)
		http_error(req, 412, "PreconditionFailed",
			"At least one of the pre-conditions you specified did not hold");
	else if (rc == ATREST_ENOTFOUND)
		s3_no_such_upload(req);
	else if (rc < 0)
		s3_lib_error(req, rc, "complete upload");
	else
		complete_answer(req, etag);
out:
	free(have);
	free(c.numbers);
	free(c.etags);
}

void s3_upload_complete(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const char *inm = http_header(req, "if-none-match");
	const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long n = cl ? strtoull(cl, NULL, 10) : COMPLETE_BODY_MAX;

	if (upload_target(req) < 0)
		return;
	if (inm && strcmp(inm, "*") != 0) {
		http_error(req, 501, "NotImplemented",
			"A completion takes only 'If-None-Match: *'.");
		return;
	}
	sr->create_only = inm != NULL;
	if (s3_body_checks(req) < 0)
		return;
	s3_body_collect_or_slow_down(req,
		n < COMPLETE_BODY_MAX ? (size_t)n : COMPLETE_BODY_MAX, complete_parsed);
}

void s3_upload_abort(struct http_req *req)
{
	struct s3_req *sr = req->app;
	char marker[96];
	int rc;

	if (upload_target(req) < 0)
		return;
	rc = atrest_upload_abort(sr->st, sr->name, sr->upload_id);
	if (rc == ATREST_ENOTFOUND) {
		s3_no_such_upload(req);
		return;
	}
	if (rc < 0) {
		s3_lib_error(req, rc, "abort upload");
		return;
	}
	marker_of(marker, sr->upload_id);
	atrest_delete(sr->st, marker);
	http_respond(req, 204, http_response_buffer("", 0));
}

/* ---- ListParts ---- */

static int number_param(struct http_req *req, const char *name, unsigned long dflt,
	unsigned long max, unsigned long *out)
{
	const char *s = http_target_param(&req->target, name);
	char *end;

	*out = dflt;
	if (!s)
		return 0;
	*out = strtoul(s, &end, 10);
	if (!*s || *end || s[0] == '-') {
		http_error(req, 400, "InvalidArgument", "%s must be a number", name);
		return -1;
	}
	if (*out > max)
		*out = max;
	return 0;
}

void s3_upload_parts(struct http_req *req)
{
	struct s3_req *sr = req->app;
	struct part_info *have = calloc(ATREST_UPLOAD_MAX_PARTS + 1, sizeof(*have));
	struct srv_buf b = {0};
	unsigned long max, marker, shown = 0, last = 0, i;
	char when[32];
	int rc;

	if (!have) {
		http_error(req, 500, "InternalError", "out of memory");
		return;
	}
	if (upload_target(req) < 0 ||
		number_param(req, "max-parts", LIST_MAX, LIST_MAX, &max) < 0 ||
		number_param(req, "part-number-marker", 0, ATREST_UPLOAD_MAX_PARTS,
			&marker) < 0) {
		free(have);
		return;
	}
	rc = atrest_upload_parts(sr->st, sr->name, sr->upload_id, note_part, have);
	if (rc < 0) {
		free(have);
		if (rc == ATREST_ENOTFOUND)
			s3_no_such_upload(req);
		else
			s3_lib_error(req, rc, "list parts");
		return;
	}
	s3_xml_open(&b, "ListPartsResult");
	s3_xml_elem(&b, "Bucket", sr->bucket);
	s3_xml_elem(&b, "Key", sr->key);
	s3_xml_elem(&b, "UploadId", sr->upload_id);
	srv_buf_printf(&b,
		"<PartNumberMarker>%lu</PartNumberMarker><MaxParts>%lu</MaxParts>"
		"<StorageClass>STANDARD</StorageClass>",
		marker, max);
	for (i = marker + 1; i <= ATREST_UPLOAD_MAX_PARTS; i++) {
		if (!have[i].present)
			continue;
		if (shown == max)
			break;
		s3_time(when, have[i].mtime);
		srv_buf_printf(&b, "<Part><PartNumber>%lu</PartNumber>", i);
		s3_xml_elem(&b, "LastModified", when);
		s3_xml_elemf(&b, "ETag", "\"%s\"", have[i].etag);
		srv_buf_printf(
			&b, "<Size>%llu</Size></Part>", (unsigned long long)have[i].size);
		shown++;
		last = i;
	}
	srv_buf_printf(&b,
		"<NextPartNumberMarker>%lu</NextPartNumberMarker>"
		"<IsTruncated>%s</IsTruncated></ListPartsResult>",
		last, i <= ATREST_UPLOAD_MAX_PARTS ? "true" : "false");
	free(have);
	s3_respond_xml(req, &b);
}

/* ---- ListMultipartUploads ---- */

struct uploads {
	struct srv_buf *b;
	size_t strip, max, n;
	const char *key_marker, *id_marker;
	int truncated;
	char next_key[1100], next_id[80];
};

static int upload_row(const atrest_upload_entry *e, void *payload)
{
	struct uploads *u = payload;
	const char *key = e->name + u->strip;
	char when[32];
	int c = u->key_marker ? strcmp(key, u->key_marker) : 1;

	if (c < 0 ||
		(c == 0 && (!u->id_marker || strcmp(e->upload_id, u->id_marker) <= 0)))
		return 0;
	if (u->n == u->max) {
		u->truncated = 1;
		return 1;
	}
	s3_time(when, e->initiated);
	srv_buf_printf(u->b, "<Upload>");
	s3_xml_elem(u->b, "Key", key);
	s3_xml_elem(u->b, "UploadId", e->upload_id);
	s3_xml_elem(u->b, "StorageClass", "STANDARD");
	s3_xml_elem(u->b, "Initiated", when);
	srv_buf_printf(u->b, "</Upload>");
	snprintf(u->next_key, sizeof(u->next_key), "%s", key);
	snprintf(u->next_id, sizeof(u->next_id), "%s", e->upload_id);
	u->n++;
	return 0;
}

void s3_uploads_list(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const char *prefix = http_target_param(&req->target, "prefix");
	struct srv_buf items = {0}, b = {0};
	struct uploads u = {.b = &items};
	unsigned long max;
	char *full;
	int rc;

	if (http_target_param(&req->target, "delimiter")) {
		http_error(req, 501, "NotImplemented",
			"ListMultipartUploads with a delimiter is not implemented.");
		return;
	}
	if (number_param(req, "max-uploads", LIST_MAX, LIST_MAX, &max) < 0 ||
		s3_bucket_check(req) < 0)
		return;
	u.max = max;
	u.key_marker = http_target_param(&req->target, "key-marker");
	u.id_marker = http_target_param(&req->target, "upload-id-marker");
	u.strip = strlen(sr->bucket) + 1;
	if (asprintf(&full, "%s/%s", sr->bucket, prefix ? prefix : "") < 0) {
		http_error(req, 500, "InternalError", "out of memory");
		return;
	}
	rc = u.max ? atrest_upload_list(sr->st, full, upload_row, &u) : 0;
	free(full);
	if (rc < 0) {
		srv_buf_free(&items);
		s3_lib_error(req, rc, "list uploads");
		return;
	}
	s3_xml_open(&b, "ListMultipartUploadsResult");
	s3_xml_elem(&b, "Bucket", sr->bucket);
	s3_xml_elem(&b, "KeyMarker", u.key_marker ? u.key_marker : "");
	s3_xml_elem(&b, "UploadIdMarker", u.id_marker ? u.id_marker : "");
	s3_xml_elem(&b, "NextKeyMarker", u.truncated ? u.next_key : "");
	s3_xml_elem(&b, "NextUploadIdMarker", u.truncated ? u.next_id : "");
	s3_xml_elem(&b, "Prefix", prefix ? prefix : "");
	srv_buf_printf(&b,
		"<MaxUploads>%zu</MaxUploads><IsTruncated>%s</IsTruncated>%.*s"
		"</ListMultipartUploadsResult>",
		u.max, u.truncated ? "true" : "false", (int)items.len,
		items.p ? items.p : "");
	if (items.oom)
		b.oom = 1;
	srv_buf_free(&items);
	s3_respond_xml(req, &b);
}

/* ---- leftover markers ---- */

struct sweep {
	char **ids;
	size_t n, cap;
	atrest_store *st;
	int64_t before;
	size_t removed;
};

static int live_upload(const atrest_upload_entry *e, void *payload)
{
	struct sweep *s = payload;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		char **v = realloc(s->ids, cap * sizeof(*v));

		if (!v)
			return -1;
		s->ids = v;
		s->cap = cap;
	}
	if (!(s->ids[s->n] = strdup(e->upload_id)))
		return -1;
	s->n++;
	return 0;
}

static int stale_marker(const atrest_list_entry *e, void *payload)
{
	struct sweep *s = payload;
	const char *id = e->name + strlen(UPLOADS);

	if (e->mtime >= s->before)
		return 0; /* made after the uploads were listed, maybe */
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->ids[i], id))
			return 0;
	if (atrest_delete(s->st, e->name) == 0)
		s->removed++;
	return 0;
}

size_t srv_s3_sweep_store(atrest_store *st)
{
	struct sweep s = {.st = st, .before = (int64_t)time(NULL) - 60};

	if (atrest_upload_list(st, "", live_upload, &s) == 0)
		atrest_list(st, UPLOADS, stale_marker, &s);
	for (size_t i = 0; i < s.n; i++)
		free(s.ids[i]);
	free(s.ids);
	return s.removed;
}
