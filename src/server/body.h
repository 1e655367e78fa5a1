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
};

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

/* What a client is told for a library error (no paths, no other tenants). */
const char *http_public_message(int code);

#endif
