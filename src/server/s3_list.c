/*
 * ListObjectsV2 and ListObjects (V1) of a bucket: the real key names and
 * plaintext sizes (each entry's header authenticated by a stat), prefix,
 * delimiter with CommonPrefixes, max-keys, continuation-token, start-after
 * and marker, encoding-type=url.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_int.h"

#define KEYS_MAX 1000

struct listing {
	struct http_req *req;
	struct srv_buf items; /* Contents and CommonPrefixes */
	size_t strip;         /* strlen("bucket/") */
	const char *prefix, *delim, *after;
	int url;
	size_t max, count;
	char last_prefix[1100]; /* the last CommonPrefix added */
	char *last;             /* the last key or prefix returned */
	int truncated, failed;
};

/* Percent-encode as S3 does for encoding-type=url ('/' kept). */
static void put_text(struct srv_buf *b, const char *s, int url)
{
	if (!url) {
		s3_xml_escape(b, s);
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || strchr("-_.~/", c))
			srv_buf_printf(b, "%c", c);
		else
			srv_buf_printf(b, "%%%02X", c);
	}
}

static void text_elem(struct srv_buf *b, const char *tag, const char *s, int url)
{
	srv_buf_printf(b, "<%s>", tag);
	put_text(b, s, url);
	srv_buf_printf(b, "</%s>", tag);
}

static int remember(struct listing *l, const char *s)
{
	free(l->last);
	l->last = strdup(s);
	return l->last ? 0 : -1;
}

static int add_object(struct listing *l, const char *key)
{
	struct s3_req *sr = l->req->app;
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	char when[32], etag[80];
	const char *e = NULL;
	int rc = atrest_stat(&si, sr->st, key - l->strip);

	if (rc == ATREST_ENOTFOUND)
		return 0; /* deleted meanwhile */
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < si.meta_count; i++)
		if (!strcmp(si.meta[i].key, S3_META_ETAG))
			e = si.meta[i].value;
	if (e && strlen(e) < 70)
		snprintf(etag, sizeof(etag), "\"%s\"", e);
	else
		snprintf(etag, sizeof(etag), "\"%llx%llx-1\"",
			(unsigned long long)si.mtime, (unsigned long long)si.stored_size);
	s3_time(when, si.mtime);
	srv_buf_printf(&l->items, "<Contents>");
	text_elem(&l->items, "Key", key, l->url);
	s3_xml_elem(&l->items, "LastModified", when);
	s3_xml_elem(&l->items, "ETag", etag);
	srv_buf_printf(&l->items,
		"<Size>%llu</Size><StorageClass>STANDARD</StorageClass>"
		"</Contents>",
		(unsigned long long)si.size);
	atrest_stat_info_clear(&si);
	return 0;
}

static int entry(const atrest_list_entry *e, void *payload)
{
	struct listing *l = payload;
	const char *key = e->name + l->strip, *d;
	size_t plen = strlen(l->prefix);
	int rc;

	if (l->after && strcmp(key, l->after) <= 0)
		return 0;
	d = l->delim[0] ? strstr(key + plen, l->delim) : NULL;
	if (d) {
		size_t n = (size_t)(d - key) + strlen(l->delim);

		if (n >= sizeof(l->last_prefix))
			return 0;
		if (strlen(l->last_prefix) == n && !strncmp(l->last_prefix, key, n))
			return 0; /* already listed */
		if (l->after && strncmp(key, l->after, n) == 0 && strlen(l->after) == n)
			return 0; /* the page before ended on this prefix */
		if (l->count == l->max) {
			l->truncated = 1;
			return 1;
		}
		memcpy(l->last_prefix, key, n);
		l->last_prefix[n] = '\0';
		srv_buf_printf(&l->items, "<CommonPrefixes>");
		text_elem(&l->items, "Prefix", l->last_prefix, l->url);
		srv_buf_printf(&l->items, "</CommonPrefixes>");
		l->count++;
		return remember(l, l->last_prefix) < 0 ? -1 : 0;
	}
	if (l->count == l->max) {
		l->truncated = 1;
		return 1;
	}
	if ((rc = add_object(l, key)) < 0) {
		l->failed = rc;
		return 1;
	}
	l->count++;
	return remember(l, key) < 0 ? -1 : 0;
}

/* max-keys: 0 to 1000 (more is served as 1000). */
static int max_keys(struct http_req *req, size_t *out)
{
	const char *s = http_target_param(&req->target, "max-keys");
	char *end;
	long v;

	*out = KEYS_MAX;
	if (!s)
		return 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || v < 0) {
		http_error(req, 400, "InvalidArgument", "max-keys must be a number >= 0");
		return -1;
	}
	*out = v > KEYS_MAX ? KEYS_MAX : (size_t)v;
	return 0;
}

static void render(struct http_req *req, struct listing *l, int v2)
{
	struct s3_req *sr = req->app;
	const struct http_target *t = &req->target;
	const char *tok = http_target_param(t, "continuation-token");
	const char *sa = http_target_param(t, "start-after");
	const char *marker = http_target_param(t, "marker");
	struct srv_buf b = {0};

	s3_xml_open(&b, "ListBucketResult");
	s3_xml_elem(&b, "Name", sr->bucket);
	text_elem(&b, "Prefix", l->prefix, l->url);
	if (l->delim[0])
		text_elem(&b, "Delimiter", l->delim, l->url);
	srv_buf_printf(&b, "<MaxKeys>%zu</MaxKeys>", l->max);
	if (l->url)
		s3_xml_elem(&b, "EncodingType", "url");
	srv_buf_printf(
		&b, "<IsTruncated>%s</IsTruncated>", l->truncated ? "true" : "false");
	if (v2) {
		srv_buf_printf(&b, "<KeyCount>%zu</KeyCount>", l->count);
		if (tok)
			s3_xml_elem(&b, "ContinuationToken", tok);
		if (sa)
			text_elem(&b, "StartAfter", sa, l->url);
		if (l->truncated && l->last)
			s3_xml_elem(&b, "NextContinuationToken", l->last);
	} else {
		text_elem(&b, "Marker", marker ? marker : "", l->url);
		if (l->truncated && l->last)
			text_elem(&b, "NextMarker", l->last, l->url);
	}
	srv_buf_printf(&b, "%.*s</ListBucketResult>", (int)l->items.len,
		l->items.p ? l->items.p : "");
	if (l->items.oom)
		b.oom = 1;
	s3_respond_xml(req, &b);
}

void s3_list_objects(struct http_req *req)
{
	struct s3_req *sr = req->app;
	const struct http_target *t = &req->target;
	const char *lt = http_target_param(t, "list-type");
	const char *enc = http_target_param(t, "encoding-type");
	int v2 = lt && !strcmp(lt, "2");
	struct listing l;
	char *full;
	int rc;

	memset(&l, 0, sizeof(l));
	l.req = req;
	l.prefix = http_target_param(t, "prefix");
	l.prefix = l.prefix ? l.prefix : "";
	l.delim = http_target_param(t, "delimiter");
	l.delim = l.delim ? l.delim : "";
	if (enc && strcmp(enc, "url") != 0) {
		http_error(
			req, 400, "InvalidArgument", "Invalid Encoding Method specified");
		return;
	}
	l.url = enc != NULL;
	if (lt && !v2) {
		http_error(req, 400, "InvalidArgument", "list-type must be 2");
		return;
	}
	if (max_keys(req, &l.max) < 0 || s3_bucket_check(req) < 0)
		return;
	l.after = v2 ? http_target_param(t, "continuation-token") : NULL;
	if (v2 && !l.after)
		l.after = http_target_param(t, "start-after");
	if (!v2)
		l.after = http_target_param(t, "marker");
	if (l.after && !*l.after)
		l.after = NULL;
	l.strip = strlen(sr->bucket) + 1;
	if (asprintf(&full, "%s/%s", sr->bucket, l.prefix) < 0) {
		http_error(req, 500, "InternalError", "out of memory");
		return;
	}
	rc = l.max ? atrest_list(sr->st, full, entry, &l) : 0;
	free(full);
	if (rc < 0 || l.failed < 0) {
		srv_buf_free(&l.items);
		free(l.last);
		s3_lib_error(req, rc < 0 ? rc : l.failed, "list");
		return;
	}
	render(req, &l, v2);
	srv_buf_free(&l.items);
	free(l.last);
}
