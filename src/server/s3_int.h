/*
 * Shared by the files of the S3 API: the per-request state (what the
 * signature established, the bucket and key, the upload in progress), XML
 * output, and the handlers.
 */
#ifndef ATREST_SERVER_S3_INT_H
#define ATREST_SERVER_S3_INT_H

#include <openssl/evp.h>

#include "body.h"
#include "metrics.h"
#include "s3.h"
#include "s3_chunked.h"

#define S3_BUCKET_MAX 63
/* Where bucket markers live: ".s3/buckets/NAME" (bucket names never start
 * with '.', so no bucket's objects can be there). */
#define S3_MARKERS ".s3/buckets/"
/* The server's own metadata keys (':' cannot come from a header). */
#define S3_META_ETAG ":etag"
#define S3_META_TYPE ":content-type"

/* Which checksum a PUT carries (x-amz-checksum-*). */
enum s3_sum { S3_SUM_NONE, S3_SUM_CRC32, S3_SUM_CRC32C, S3_SUM_SHA1, S3_SUM_SHA256 };

/* One S3 request: set up by authentication, used by the handlers. */
struct s3_req {
	struct http_put hp; /* first: body.c's req->app points here */
	char bucket[S3_BUCKET_MAX + 1];
	char *key;  /* decoded object key; NULL for bucket requests */
	char *name; /* "bucket/key" in the store */
	atrest_store *st;
	/* From the signature. */
	char payload[80]; /* x-amz-content-sha256 (UNSIGNED-PAYLOAD, ...) */
	char amz_date[17];
	char scope[160];
	char seed[65];      /* the request's signature */
	uint8_t sigkey[32]; /* signing key, for chunk signatures */
	/* Body checks. */
	EVP_MD_CTX *md5, *sha256;
	enum s3_sum sum;
	char sum_header[40]; /* x-amz-checksum-crc32 ... */
	char sum_expect[64]; /* base64, from a header or the trailer */
	uint32_t crc;
	EVP_MD_CTX *sum_sha;
	char content_md5[32];  /* base64 as sent; "" when none */
	struct s3_chunked dec; /* aws-chunked bodies */
	int chunked;
	/* PUT. */
	int create_only;
	uint8_t *buf; /* small bodies, held until their MD5 is known */
	size_t buf_len, buf_cap;
	int buffering;
	size_t budget;                      /* bytes of the shared buffer budget held */
	void (*then)(struct http_req *req); /* after a collected body */
	char etag[48];
	/* UploadPart: the upload and part number (0: a whole object). */
	char *upload_id;
	uint32_t part;
};

/* Object metadata from the request's x-amz-meta-* and content headers. */
#define S3_META_MAX 64
struct s3_meta {
	atrest_meta_entry e[S3_META_MAX + 8];
	char *own[S3_META_MAX + 8];
	size_t n;
	const char *bad;
};
/* 0, or -1 after answering 400. */
int s3_meta_collect(struct http_req *req, struct s3_meta *m);
/* Add an entry (key taken over, value borrowed). */
void s3_meta_add(struct s3_meta *m, char *key, const char *value);
atrest_meta s3_meta_of(struct s3_meta *m);
void s3_meta_free(struct s3_meta *m);

/* 0, or -1 after answering 501 for a header asking for what is not done
 * (SSE-C/KMS, tags, object lock, a non-default storage class or ACL). */
int s3_headers_supported(struct http_req *req);
/* sr->name = "bucket/key", checked; 0, or -1 after answering. */
int s3_object_name(struct http_req *req);
/* The ETag of an object, quoted. */
void s3_etag_of(char out[80], const atrest_stat_info *si);
/* The body of a PutObject or UploadPart (sr->part), checked and sealed. */
void s3_put_body(struct http_req *req);
/* Answer 404 NoSuchUpload. */
void s3_no_such_upload(struct http_req *req);

/* A growing XML document (srv_buf), text escaped. */
void s3_xml_open(struct srv_buf *b, const char *root);
void s3_xml_elem(struct srv_buf *b, const char *tag, const char *text);
void s3_xml_elemf(struct srv_buf *b, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void s3_xml_escape(struct srv_buf *b, const char *text);
/* Answer 200 with b (freed) as application/xml. */
void s3_respond_xml(struct http_req *req, struct srv_buf *b);
/* t as "2009-10-12T17:50:30.000Z". */
void s3_time(char out[32], int64_t t);
/* Answer a library failure as S3 would (NoSuchKey for a missing key). */
void s3_lib_error(struct http_req *req, int code, const char *what);
/* The tenant's store of the request into sr->st; 0, or -1 after answering. */
int s3_store(struct http_req *req);
/* Does bucket exist? 0 yes, -1 after answering NoSuchBucket or an error. */
int s3_bucket_check(struct http_req *req);

/* Handlers (s3_objects.c, s3_list.c). */
void s3_object_get(struct http_req *req);
void s3_object_put(struct http_req *req);
void s3_object_delete(struct http_req *req);
void s3_objects_delete(struct http_req *req);
void s3_list_objects(struct http_req *req);
void s3_list_buckets(struct http_req *req);
/* Multipart (s3_multipart.c). */
void s3_upload_create(struct http_req *req);
void s3_upload_part(struct http_req *req);
void s3_upload_complete(struct http_req *req);
void s3_upload_abort(struct http_req *req);
void s3_upload_parts(struct http_req *req);
void s3_uploads_list(struct http_req *req);

/* Request bodies (s3_body.c): checks set up from the headers (0, or -1
 * after answering); bytes as sent in; verification once they all came. */
int s3_body_checks(struct http_req *req);
int s3_body_feed(struct http_req *req, const void *buf, size_t len);
int s3_body_verify(struct http_req *req);
/*
 * Collect a body of at most cap bytes into sr->buf, checked, then call
 * then: 0 (started, or answered), or -1 with nothing answered when the
 * shared budget for collected bodies is spent; the second form answers
 * 503 SlowDown then.
 */
int s3_body_collect(struct http_req *req, size_t cap, void (*then)(struct http_req *));
void s3_body_collect_or_slow_down(
	struct http_req *req, size_t cap, void (*then)(struct http_req *));
/* Hold bytes of the shared budget for buffered bodies; 0, or -1 when spent. */
int s3_budget_take(struct s3_req *sr, size_t n);
void s3_budget_give(struct s3_req *sr);
/* Lowercase hex of n bytes. */
void s3_hex(char *out, const uint8_t *in, size_t n);

#endif
