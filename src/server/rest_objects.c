/*
 * Checkpoints over REST: PUT streams into a writer (metadata from
 * X-Atrest-Meta-* headers, If-None-Match: * as a create-only writer), GET and HEAD
 * stream from a reader (single ranges, ETag, metadata back as headers),
 * DELETE, and the paginated JSON listing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "apikeys.h"
#include "body.h"
#include "events.h"
#include "rest_int.h"

#define META_PREFIX "X-Atrest-Meta-"
#define META_MAX 64 /* entries */
#define META_KEY_MAX 128
/* The server's own metadata: ':' cannot start a header-borne key. */
#define META_ETAG ":etag"
#define LIST_MAX 1000

/* A metadata key from a header: lowercase token characters. */
static int meta_key_ok(const char *k)
{
	size_t i, n = strlen(k);

	if (n == 0 || n > META_KEY_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
			    k[i] == '-' || k[i] == '_' || k[i] == '.'))
			return 0;
	return 1;
}

/* A value a header can carry as it is: printable ASCII and tabs. */
static int meta_value_ok(const char *v)
{
	for (; *v; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || (unsigned char)*v >= 0x7f)
			return 0;
	return 1;
}

struct meta_in {
	atrest_meta_entry e[META_MAX + 1];
	char *keys[META_MAX];
	size_t n;
	const char *bad; /* why the headers were refused */
};

static int collect_meta(const char *name, const char *value, void *payload)
{
	struct meta_in *m = payload;
	size_t plen = strlen(META_PREFIX), i;
	char *k;

	if (strncasecmp(name, META_PREFIX, plen) != 0)
		return 0;
	if (m->n == META_MAX) {
		m->bad = "more than 64 X-Atrest-Meta- headers";
		return 1;
	}
	if (!(k = strdup(name + plen))) {
		m->bad = "out of memory";
		return 1;
	}
	for (i = 0; k[i]; i++)
		k[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
	m->keys[m->n] = k;
	m->e[m->n].key = k;
	m->e[m->n].value = value;
	m->n++;
	if (!meta_key_ok(k) || !meta_value_ok(value)) {
		m->bad = "a metadata header name or value has characters outside "
			 "[a-z0-9._-] (names) or printable ASCII (values)";
		return 1;
	}
	for (i = 0; i + 1 < m->n; i++)
		if (!strcmp(m->e[i].key, k)) {
			m->bad = "a metadata key appears twice";
			return 1;
		}
	return 0;
}

static void meta_in_free(struct meta_in *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->keys[i]);
}

/* The name of the request (the route's '*'); NULL after answering 400. */
static const char *object_name(struct http_req *req)
{
	int rc = atrest_name_check(req->rest);

	if (rc < 0) {
		rest_lib_error(req, rc, "name");
		return NULL;
	}
	return req->rest;
}

static void etag_of(char out[80], const atrest_stat_info *si)
{
	size_t i;

	for (i = 0; i < si->meta_count; i++)
		if (!strcmp(si->meta[i].key, META_ETAG) &&
			strlen(si->meta[i].value) < 64) {
			snprintf(out, 80, "\"%s\"", si->meta[i].value);
			return;
		}
	/* Written without the server: weak, from the facts that change. */
	snprintf(out, 80, "W/\"%llx-%llx-%llx-%x\"", (unsigned long long)si->size,
		(unsigned long long)si->stored_size, (unsigned long long)si->mtime,
		si->data_key_id);
}

/* Does an If-None-Match list name etag (or "*")? */
static int etag_listed(const char *list, const char *etag)
{
	const char *bare = strncmp(etag, "W/", 2) ? etag : etag + 2;
	size_t n = strlen(bare);
	const char *p;

	if (!strcmp(list, "*"))
		return 1;
	for (p = list; (p = strstr(p, bare)) != NULL; p += n)
		if ((p[n] == ',' || p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* Response headers of an object: ETag, dates, metadata. */
struct obj_headers {
	struct http_header_kv kv[META_MAX + 12];
	size_t n;
	char etag[80], modified[64], key_id[16], meta_names[META_MAX][160];
};

static void add_header(struct obj_headers *h, const char *name, const char *value)
{
	h->kv[h->n].name = name;
	h->kv[h->n].value = value;
	h->n++;
}

static void object_headers(struct obj_headers *h, const atrest_stat_info *si)
{
	time_t t = (time_t)si->mtime;
	struct tm tm;
	size_t i, m = 0;

	h->n = 0;
	etag_of(h->etag, si);
	gmtime_r(&t, &tm);
	strftime(h->modified, sizeof(h->modified), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(h->key_id, sizeof(h->key_id), "%u", si->data_key_id);
	add_header(h, MHD_HTTP_HEADER_ETAG, h->etag);
	add_header(h, MHD_HTTP_HEADER_LAST_MODIFIED, h->modified);
	add_header(h, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	add_header(h, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	add_header(h, "X-Atrest-Cipher", atrest_cipher_name(si->cipher));
	add_header(h, "X-Atrest-Data-Key", h->key_id);
	for (i = 0; i < si->meta_count && m < META_MAX; i++) {
		if (!meta_key_ok(si->meta[i].key) || !meta_value_ok(si->meta[i].value))
			continue; /* not carried by a header as it is (set by the CLI) */
		snprintf(h->meta_names[m], sizeof(h->meta_names[m]), META_PREFIX "%s",
			si->meta[i].key);
		add_header(h, h->meta_names[m++], si->meta[i].value);
	}
}

/*
 * Serve the reader (NULL for a HEAD: no body) as the request asks: 304,
 * 416, 206 or 200.  A range is given to the reader, so that its one event
 * records it.
 */
static void serve(struct http_req *req, atrest_reader *r, const atrest_stat_info *si)
{
	struct obj_headers *h = malloc(sizeof(*h));
	const char *inm = http_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);

	if (!h) {
		atrest_reader_close(r);
		http_error(req, 500, "internal_error", "out of memory");
		return;
	}
	object_headers(h, si);
	if (inm && etag_listed(inm, h->etag)) {
		struct MHD_Response *resp = http_response_buffer("", 0);

		atrest_reader_close(r);
		if (resp)
			http_response_header(resp, MHD_HTTP_HEADER_ETAG, h->etag);
		http_respond(req, 304, resp);
		free(h);
		return;
	}
	http_respond_ranged(req, r, si->size, h->kv, h->n, "range_not_satisfiable");
	free(h);
}

/* One library event per request: a GET's "get" (the object opened once),
 * a HEAD's "stat". */
void rest_object_get(struct http_req *req)
{
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	const char *name = object_name(req);
	atrest_reader *r = NULL;
	atrest_store *st;
	int rc;

	if (!name || rest_store(&st, req) < 0)
		return;
	if (req->method == HTTP_HEAD)
		rc = atrest_stat(&si, st, name);
	else if ((rc = atrest_reader_open(&r, st, name)) == 0 &&
		(rc = atrest_reader_stat(&si, r)) < 0)
		atrest_reader_close(r);
	if (rc < 0) {
		rest_lib_error(req, rc, "open object");
		return;
	}
	serve(req, r, &si);
	atrest_stat_info_clear(&si);
}

void rest_object_delete(struct http_req *req)
{
	const char *name = object_name(req);
	atrest_store *st;
	int rc;

	if (!name || rest_store(&st, req) < 0)
		return;
	rc = atrest_delete(st, name);
	if (rc < 0) {
		rest_lib_error(req, rc, "delete");
		return;
	}
	http_respond(req, 204, http_response_buffer("", 0));
}

/* A PUT in progress. */
struct put {
	struct http_put hp; /* first: req->app points here */
	atrest_store *st;
	char *name;
	char etag[33];
	int create_only, existed;
};

static void put_free(void *app)
{
	struct put *p = app;

	free(p->name);
	free(p);
}

/* 0: absent; 1: present; or an atrest code.  No key is needed. */
static int exists(atrest_store *st, const char *name)
{
	uint32_t id;
	int rc = atrest_object_key_id(&id, st, name);

	return rc == ATREST_ENOTFOUND ? 0 : rc < 0 ? rc : 1;
}

static void precondition_failed(struct http_req *req)
{
	http_error(req, 412, "precondition_failed", "the object already exists");
}

/* Create-only: the name appeared while the body streamed. */
static int put_commit_failed(struct http_req *req, int code)
{
	struct put *p = req->app;

	if (!p->create_only || code != ATREST_EEXISTS)
		return -1;
	precondition_failed(req);
	return 0;
}

static void put_done(struct http_req *req)
{
	struct put *p = req->app;
	struct MHD_Response *resp;
	char etag[40], *text;
	json_t *j;

	snprintf(etag, sizeof(etag), "\"%s\"", p->etag);
	j = json_pack("{s:s,s:s,s:I}", "name", p->name, "etag", etag, "size",
		(json_int_t)req->bytes_in);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	resp = text ? http_response_buffer(text, strlen(text)) : NULL;
	if (resp) {
		http_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
		http_response_header(
			resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	}
	free(text);
	http_respond(req, p->existed ? 200 : 201, resp);
}

/*
 * If-None-Match of a PUT (only "*" is meaningful: create only) and whether
 * the object exists (200 or 201).  A create-only PUT of an existing name is
 * refused here, before its body; one whose name appears meanwhile fails at
 * commit, atomically (atrest_writer_open_ex, ATREST_WRITE_IF_ABSENT).  0,
 * or -1 after answering.
 */
static int put_precondition(struct http_req *req, struct put *p)
{
	const char *inm = http_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
	int rc;

	if (inm && strcmp(inm, "*") != 0) {
		http_error(req, 400, "bad_request", "PUT takes only 'If-None-Match: *'");
		return -1;
	}
	p->create_only = inm != NULL;
	rc = exists(p->st, p->name);
	if (rc < 0) {
		rest_lib_error(req, rc, "check object");
		return -1;
	}
	p->existed = rc;
	if (p->existed && p->create_only) {
		precondition_failed(req);
		return -1;
	}
	return 0;
}

/* Open the writer with the request's metadata and a fresh ETag. */
static int put_open(struct http_req *req, struct put *p)
{
	atrest_write_options wo = ATREST_WRITE_OPTIONS_INIT;
	struct meta_in m = {.n = 0};
	atrest_meta meta;
	uint8_t rnd[16];
	int rc = 0;

	http_headers_each(req, collect_meta, &m);
	if (m.bad) {
		http_error(req, 400, "bad_request", "%s", m.bad);
		meta_in_free(&m);
		return -1;
	}
	if (atrest_random(rnd, sizeof(rnd)) == 0) {
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(p->etag + 2 * i, 3, "%02x", rnd[i]);
		m.e[m.n].key = META_ETAG;
		m.e[m.n].value = p->etag;
		meta.entries = m.e;
		meta.count = m.n + 1;
		wo.flags = p->create_only ? ATREST_WRITE_IF_ABSENT : 0;
		rc = atrest_writer_open_ex(&p->hp.w, p->st, p->name, &meta, &wo);
	} else
		rc = ATREST_ERROR;
	meta_in_free(&m);
	if (rc < 0) {
		rest_lib_error(req, rc, "open writer");
		return -1;
	}
	return 0;
}

void rest_object_put(struct http_req *req)
{
	struct srv_rest *r = req->api->ctx;
	const char *name = object_name(req);
	struct put *p;

	if (!name)
		return;
	if (!(p = calloc(1, sizeof(*p))) || !(p->name = strdup(name))) {
		free(p);
		http_error(req, 500, "internal_error", "out of memory");
		return;
	}
	req->app = p;
	req->app_free = put_free;
	if (rest_store(&p->st, req) < 0)
		return;
	if (put_precondition(req, p) < 0 || put_open(req, p) < 0)
		return;
	p->hp.commit_failed = put_commit_failed;
	p->hp.done = put_done;
	http_body_to_writer(req, &p->hp, r->max_object);
}

/* A page of the listing. */
struct page {
	json_t *objects;
	const char *after;
	size_t limit, n;
	int truncated;
};

static int list_one(const atrest_list_entry *e, void *payload)
{
	struct page *pg = payload;
	char when[32];

	if (pg->after && strcmp(e->name, pg->after) <= 0)
		return 0;
	if (pg->n == pg->limit) {
		pg->truncated = 1;
		return 1;
	}
	rest_iso_time(when, e->mtime);
	if (json_array_append_new(pg->objects,
		    json_pack("{s:s,s:I,s:s}", "name", e->name, "stored_size",
			    (json_int_t)e->stored_size, "mtime", when)) < 0)
		return -1;
	pg->n++;
	return 0;
}

/* With long=1: plaintext size, ETag, data key and cipher of each entry. */
static void list_details(atrest_store *st, json_t *objects)
{
	size_t i;

	for (i = 0; i < json_array_size(objects); i++) {
		json_t *o = json_array_get(objects, i);
		atrest_stat_info si = ATREST_STAT_INFO_INIT;
		char etag[80];
		int rc = atrest_stat(
			&si, st, json_string_value(json_object_get(o, "name")));

		if (rc < 0) {
			json_object_set_new(
				o, "error", json_string(http_status_of(rc).code));
			continue;
		}
		etag_of(etag, &si);
		json_object_set_new(o, "size", json_integer((json_int_t)si.size));
		json_object_set_new(o, "etag", json_string(etag));
		json_object_set_new(o, "data_key", json_integer(si.data_key_id));
		json_object_set_new(
			o, "cipher", json_string(atrest_cipher_name(si.cipher)));
		atrest_stat_info_clear(&si);
	}
}

/* limit=N: 1..1000 (default 1000); 0, or -1 after answering 400. */
static int list_limit(struct http_req *req, size_t *out)
{
	const char *s = http_target_param(&req->target, "limit");
	char *end;
	unsigned long v;

	*out = LIST_MAX;
	if (!s)
		return 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || s[0] == '-' || v < 1 || v > LIST_MAX) {
		http_error(req, 400, "bad_request", "limit must be a number from 1 to %d",
			LIST_MAX);
		return -1;
	}
	*out = v;
	return 0;
}

void rest_list(struct http_req *req)
{
	const char *prefix = http_target_param(&req->target, "prefix");
	const char *lng = http_target_param(&req->target, "long");
	struct page pg = {0};
	atrest_store *st;
	json_t *j;
	int rc;

	if (list_limit(req, &pg.limit) < 0 || rest_store(&st, req) < 0)
		return;
	pg.after = http_target_param(&req->target, "after");
	if (!(pg.objects = json_array())) {
		http_error(req, 500, "internal_error", "out of memory");
		return;
	}
	rc = atrest_list(st, prefix ? prefix : "", list_one, &pg);
	if (rc < 0) {
		json_decref(pg.objects);
		rest_lib_error(req, rc, "list");
		return;
	}
	if (lng && !strcmp(lng, "1"))
		list_details(st, pg.objects);
	j = json_pack("{s:o,s:b}", "objects", pg.objects, "truncated", pg.truncated);
	if (j && pg.truncated && pg.n)
		json_object_set(j, "next_after",
			json_object_get(json_array_get(pg.objects, pg.n - 1), "name"));
	rest_json(req, 200, j);
}
