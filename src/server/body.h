/*
 * Request bodies into an atrest_writer and responses out of an
 * atrest_reader (body.c): the pieces every API that stores objects uses.
 */
#ifndef ATREST_SERVER_BODY_H
#define ATREST_SERVER_BODY_H

#include "http.h"

/*
 * A streamed upload into w (opened by the handler).  on_data (may be NULL)
 * sees every byte first (an S3 API computes its MD5 there); before_commit
 * (may be NULL) may refuse at the last moment (0, or -1 after http_error);
 * done answers once the object is durable and visible.  The handler sets
 * req->app_free to free the struct; the writer itself is aborted by this
 * module when the request ends any other way.
 */
struct http_put {
	atrest_writer *w;
	void (*on_data)(struct http_req *req, const void *buf, size_t len);
	int (*before_commit)(struct http_req *req);
	/*
	 * May be NULL: answer a failed commit the API's own way (0), or leave
	 * it to the generic answer (-1), e.g. a create-only commit's
	 * ATREST_EEXISTS as 412.
	 */
	int (*commit_failed)(struct http_req *req, int code);
	void (*done)(struct http_req *req);
	/*
	 * May be NULL: the body as sent is not the object (S3's aws-chunked
	 * encoding); decode gets the raw bytes and passes the object's on to
	 * http_put_data.  0, or -1 after http_fail.
	 */
	int (*decode)(struct http_req *req, const void *buf, size_t len);
};

/* Bytes of the object into the writer (on_data first); 0, or -1 after http_fail. */
int http_put_data(struct http_req *req, const void *buf, size_t len);

/* req->app becomes p; the body (at most limit bytes, 0: no limit) goes to p->w. */
void http_body_to_writer(struct http_req *req, struct http_put *p, uint64_t limit);

/*
 * Stream plaintext from an open reader: len bytes from first, as status
 * (200, or 206 with the caller's Content-Range among extra).  The first
 * 256 KiB are read and authenticated before anything is sent, so a damaged
 * start is answered 422; damage found later cuts the connection so the
 * client sees a failed transfer, never a complete one.  Takes r over, and
 * the request's hold (released after r closes).  r NULL: a HEAD (the
 * headers of len bytes, no body).
 */
void http_respond_reader(struct http_req *req, unsigned status, atrest_reader *r,
	uint64_t first, uint64_t len, const struct http_header_kv *extra, size_t nextra);

/*
 * Serve r (an object of size bytes; NULL for a HEAD) as the request's Range
 * header asks (GET only): 206 with Content-Range, reading only the range
 * (the reader's one audit event records it), 200 for the whole object, or
 * an error 416 with unsat_code and "bytes *\/SIZE".  extra (n headers) must
 * have room for one more.  Takes r over, as http_respond_reader.
 */
void http_respond_ranged(struct http_req *req, atrest_reader *r, uint64_t size,
	struct http_header_kv *extra, size_t n, const char *unsat_code);

/* What a client is told for a library error (no paths, no other tenants). */
const char *http_public_message(int code);

#endif
