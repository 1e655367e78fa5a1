/*
 * Bodies to and from the store: a request body streamed into an
 * atrest_writer (nothing visible until commit; aborted when the client
 * goes), and a response streamed from an atrest_reader, range included,
 * cut rather than completed when an integrity failure shows up mid-body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "events.h"

/*
 * Bodies up to WHOLE bytes are read and authenticated whole before the
 * status line, and sent from that buffer (no copy, and no response buffer
 * of libmicrohttpd's); of larger ones PREREAD bytes are, and the rest is
 * streamed through libmicrohttpd's buffer of BLOCK bytes.
 */
#define WHOLE (1u << 20)
#define PREREAD (256u << 10)
#define BLOCK (256u << 10)
/* Beyond a whole body: its last segment is opened in place, not copied. */
#define SLACK 256

struct reader_body {
	atrest_reader *r;
	uint64_t first, len; /* the range served */
	uint8_t *pre;        /* bytes read before answering */
	size_t pre_len;
	struct http_req *req; /* only for counting; valid while queued */
	uint64_t *bytes_out;
	void *hold; /* the request's hold, released after the reader */
	void (*hold_release)(void *hold);
	/* Who read: the reader's event (at close) is recorded for it, even
	 * when the response outlives the request. */
	struct http_principal who;
};

static void reader_body_free(void *cls)
{
	struct reader_body *b = cls;
	const struct http_principal *was = srv_principal();

	srv_principal_set(&b->who);
	atrest_reader_close(b->r);
	srv_principal_set(was);
	if (b->hold_release)
		b->hold_release(b->hold);
	free(b->pre);
	free(b);
}

/*
 * Read want bytes, or until the object (or range) ends, into buf of room
 * bytes (room > want only when want is all that is left); 0 or an atrest
 * code.
 */
static int read_full(
	atrest_reader *r, uint8_t *buf, size_t want, size_t room, size_t *got)
{
	size_t n;
	int rc;

	*got = 0;
	while (*got < want) {
		rc = atrest_reader_read(r, buf + *got, room - *got, &n);
		if (rc < 0)
			return rc;
		if (n == 0)
			break;
		*got += n;
	}
	return 0;
}

static ssize_t reader_body_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct reader_body *b = cls;
	uint64_t left = b->len - pos;
	size_t want = max < left ? max : (size_t)left, got;
	int rc;

	if (left == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (!b->r) /* a HEAD has no body to send */
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (pos < b->pre_len) {
		size_t n =
			b->pre_len - (size_t)pos < want ? b->pre_len - (size_t)pos : want;

		memcpy(buf, b->pre + pos, n);
		*b->bytes_out += n;
		return (ssize_t)n;
	}
	rc = read_full(b->r, (uint8_t *)buf, want, want, &got);
	if (rc < 0 || got == 0) {
		/* Never let a client take a short or damaged body for the whole
		 * object: the connection is closed mid-body. */
		srv_event("body_cut", "reason=%s at=%llu",
			rc < 0 ? atrest_strerror(rc) : "object shorter than its size",
			(unsigned long long)(b->first + pos));
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	*b->bytes_out += got;
	return (ssize_t)got;
}

void http_respond_reader(struct http_req *req, unsigned status, atrest_reader *r,
	uint64_t first, uint64_t len, const struct http_header_kv *extra, size_t nextra)
{
	struct reader_body *b = calloc(1, sizeof(*b));
	struct MHD_Response *resp;
	size_t i;
	int rc;

	if (!b) {
		atrest_reader_close(r);
		http_error(req, 500, "internal_error", "out of memory");
		return;
	}
	b->r = r;
	b->who = req->principal;
	b->hold = req->hold;
	b->hold_release = req->hold_release;
	req->hold = NULL;
	req->hold_release = NULL;
	b->first = first;
	b->len = len;
	b->bytes_out = &req->bytes_out;
	rc = r ? atrest_reader_seek(r, first) : 0;
	if (rc == 0 && r && len) {
		size_t want = len <= WHOLE ? (size_t)len : PREREAD;
		size_t room = want == len ? want + SLACK : want;

		if (!(b->pre = malloc(room)))
			rc = ATREST_ERROR;
		else
			rc = read_full(r, b->pre, want, room, &b->pre_len);
		if (rc == 0 && b->pre_len < want)
			rc = ATREST_EINTEGRITY; /* shorter than its header says */
	}
	if (rc < 0) {
		struct http_status s = http_status_of(rc);

		srv_event("read_failed", "status=%u reason=%s", s.status,
			atrest_error_last() ? atrest_error_last()->message
					    : atrest_strerror(rc));
		reader_body_free(b);
		http_error(req, s.status, s.code, "%s", http_public_message(rc));
		return;
	}
	if (r && len && b->pre_len == len) { /* all read: sent as it is */
		resp = MHD_create_response_from_buffer_with_free_callback_cls(
			(size_t)len, b->pre, reader_body_free, b);
		if (resp)
			*b->bytes_out += len;
	} else {
		resp = MHD_create_response_from_callback(
			len, r ? BLOCK : 4096, reader_body_cb, b, reader_body_free);
	}
	if (!resp) {
		reader_body_free(b);
		http_respond(req, 500, NULL);
		return;
	}
	for (i = 0; i < nextra; i++)
		http_response_header(resp, extra[i].name, extra[i].value);
	http_respond(req, status, resp);
}

void http_respond_ranged(struct http_req *req, atrest_reader *r, uint64_t size,
	struct http_header_kv *extra, size_t n, const char *unsat_code)
{
	const char *range = http_header(req, MHD_HTTP_HEADER_RANGE);
	uint64_t first = 0, len = size;
	int how = HTTP_RANGE_IGNORE, rc;
	char cr[96];

	if (range && req->method == HTTP_GET)
		how = http_range_parse(range, size, &first, &len);
	if (how == HTTP_RANGE_UNSATISFIABLE) {
		struct http_header_kv h = {MHD_HTTP_HEADER_CONTENT_RANGE, cr};

		snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
		atrest_reader_close(r);
		http_error_with(req, 416, unsat_code, &h, 1,
			"the range starts past the end of the object (%llu bytes)",
			(unsigned long long)size);
		return;
	}
	if (how == HTTP_RANGE_OK) {
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu",
			(unsigned long long)first, (unsigned long long)(first + len - 1),
			(unsigned long long)size);
		extra[n].name = MHD_HTTP_HEADER_CONTENT_RANGE;
		extra[n++].value = cr;
		if (r && (rc = atrest_reader_range(r, first, len)) < 0) {
			struct http_status s = http_status_of(rc);

			atrest_reader_close(r);
			http_error(req, s.status, s.code, "%s", http_public_message(rc));
			return;
		}
	}
	http_respond_reader(
		req, how == HTTP_RANGE_OK ? 206 : 200, r, first, len, extra, n);
}

/* The writer sink: every byte of the body (decoded, when it must be) into p->w. */
static int put_write(struct http_req *req, const void *buf, size_t len)
{
	struct http_put *p = req->app;

	return p->decode ? p->decode(req, buf, len) : http_put_data(req, buf, len);
}

int http_put_data(struct http_req *req, const void *buf, size_t len)
{
	struct http_put *p = req->app;
	int rc;

	if (p->on_data)
		p->on_data(req, buf, len);
	rc = atrest_writer_write(p->w, buf, len);
	if (rc < 0) {
		struct http_status s = http_status_of(rc);

		srv_event("put_failed", "status=%u reason=%s", s.status,
			atrest_error_last() ? atrest_error_last()->message
					    : atrest_strerror(rc));
		return http_fail(req, s.status, s.code, "%s", http_public_message(rc));
	}
	return 0;
}

static void put_finish(struct http_req *req)
{
	struct http_put *p = req->app;
	atrest_writer *w = p->w;
	int rc;

	if (p->before_commit && p->before_commit(req) < 0) {
		atrest_writer_abort(w);
		p->w = NULL;
		return;
	}
	p->w = NULL;
	rc = atrest_writer_commit(w);
	if (rc < 0 && p->commit_failed && p->commit_failed(req, rc) == 0)
		return;
	if (rc < 0) {
		struct http_status s = http_status_of(rc);

		srv_event("put_failed", "status=%u reason=%s", s.status,
			atrest_error_last() ? atrest_error_last()->message
					    : atrest_strerror(rc));
		http_error(req, s.status, s.code, "%s", http_public_message(rc));
		return;
	}
	p->done(req);
}

static void put_abort(struct http_req *req)
{
	struct http_put *p = req->app;

	if (p && p->w) {
		atrest_writer_abort(p->w);
		p->w = NULL;
	}
}

static const struct http_body_sink put_sink = {put_write, put_finish, put_abort};

void http_body_to_writer(struct http_req *req, struct http_put *p, uint64_t limit)
{
	req->app = p;
	http_body_begin(req, &put_sink, limit);
}
