/*
 * Internals of the S3 backend shared by its files: the handle and its
 * settings (s3.c), signed requests and their one-line errors, the writer
 * (s3_write.c), the reader (s3_read.c) and the XML answers (s3_xml.c).
 */
#ifndef ATREST_S3_INT_H
#define ATREST_S3_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "atrest/sys/backend.h"
#include "awscred.h"
#include "http.h"

#define ATREST__S3_KEY_MAX 1024 /* bytes of an S3 key, the prefix included */
#define ATREST__S3_BUCKET_MAX 63
#define ATREST__S3_ETAG_MAX 80  /* bytes of an S3 ETag kept, quotes removed */
#define ATREST__S3_NONCE_LEN 32 /* hex digits of a put's random tag */
/* The user metadata header that tags every put with a random nonce. */
#define ATREST__S3_NONCE_HDR "x-amz-meta-atrest-put"
/* Largest single PUT (S3's limit), so largest conditional put. */
#define ATREST__S3_SINGLE_MAX (5ull << 30)
#define ATREST__S3_PARTS_MAX 10000
#define ATREST__S3_PART_MIN (5u << 20)

typedef struct atrest__s3 {
	atrest_backend parent; /* first */
	atrest__http *http;
	atrest__awscred *cred;
	char bucket[ATREST__S3_BUCKET_MAX + 1];
	char prefix[ATREST__S3_KEY_MAX + 1]; /* "" or "a/b/" */
	size_t prefix_len;
	char region[64];
	char base[600];   /* scheme://host[:port][/bucket]: the start of every URL */
	char host[300];   /* the Host header (signed) */
	size_t base_path; /* where the path starts in base ("" or "/bucket") */
	int plain_http;
	char location[ATREST__S3_KEY_MAX + 80]; /* "s3://bucket/prefix", for messages */
	size_t part_size;     /* bytes of a multipart part (the first thousand) */
	unsigned int uploads; /* parts uploaded at once by one writer */
	long timeout_ms;      /* a small request, retries included */
	uint64_t abort_after; /* seconds after which open aborts an upload (0: never) */
	int if_match_bare;    /* (atomic) the server wants If-Match without quotes */
	int cond_checked;     /* (atomic) the server was seen to honour conditions */
	pthread_mutex_t mu;   /* guards the sweep below */
	pthread_t sweeper;
	int sweeping; /* a sweeper thread was started (joined by free) */
} atrest__s3;

/* One signed request. */
typedef struct atrest__s3_req {
	const char *method;
	const char *op;    /* "PutObject": names the request in messages */
	const char *key;   /* the backend key, NULL for the bucket */
	const char *query; /* already encoded, or NULL */
	/* Extra headers (signed): names and values, up to 6. */
	const char *hname[6];
	const char *hvalue[6];
	int nh;
	/* The body, from memory... */
	const void *body;
	size_t body_len;
	/* ...or streamed (payload_hash then says what was hashed). */
	atrest__http_read_fn read;
	atrest__http_rewind_fn rewind;
	int64_t read_len;
	void *read_arg;
	const char *payload_hash; /* hex SHA-256 or UNSIGNED-PAYLOAD; NULL: computed */
	/* A 2xx body to a callback (with its rewind for retries). */
	atrest__http_write_fn write;
	atrest__http_rewind_fn write_rewind;
	void *write_arg;
	long time_ms;                        /* 0: the handle's timeout */
	char what[ATREST__S3_KEY_MAX + 200]; /* filled: "PutObject s3://bucket/key" */
} atrest__s3_req;

/* Add a signed header to r. */
void atrest__s3_hdr(atrest__s3_req *r, const char *name, const char *value);

/*
 * Sign and send r; resp gets the final answer whatever its status (free it
 * with atrest__http_resp_free).  Expired credentials are fetched again
 * once.  Fails only when no answer came (ATREST_EUNAVAILABLE, one line
 * naming the request); resp is then empty.  keys_source (may be NULL) receives where the
 * credentials came from, for messages.
 */
int atrest__s3_call(atrest__s3 *s, atrest__s3_req *r, atrest__http_resp *resp,
	char *keys_source, size_t cap);

/*
 * The error of an answer that is not the one wanted, as one line naming
 * the request, bucket, key, HTTP status and S3 error code, with the code
 * it maps to (ENOTFOUND for NoSuchKey and NoSuchBucket, EUNAVAILABLE for
 * refused credentials, ENOSPC for quotas...).
 */
int atrest__s3_fail(atrest__s3 *s, const atrest__s3_req *r, const atrest__http_resp *resp,
	const char *keys_source);

/* Time for a request carrying or fetching n bytes. */
long atrest__s3_time_for(const atrest__s3 *s, uint64_t n);

/* 0 when key is one this backend stores (backend.h rules, UTF-8, S3's
 * length with the prefix), else ATREST_EINVAL. */
int atrest__s3_check_key(const atrest__s3 *s, const char *key);

/* A new random nonce for a put (ATREST__S3_NONCE_LEN hex digits). */
int atrest__s3_nonce(char out[ATREST__S3_NONCE_LEN + 1]);

/*
 * The current version of key: its ETag (quotes removed) and nonce ("" when
 * none).  1 found, 0 absent, or an error.
 */
int atrest__s3_head(atrest__s3 *s, const char *key, char etag[ATREST__S3_ETAG_MAX],
	char nonce[ATREST__S3_NONCE_LEN + 1]);

/*
 * 1 when a listing shows key is not there.  S3 answers 403, not 404, to a
 * GET or HEAD of a missing key when the credentials may list only a
 * prefix of the bucket (s3:ListBucket with an s3:prefix condition); such
 * a 403 is told apart by listing that very key.
 */
int atrest__s3_absent(atrest__s3 *s, const char *key);

/* DeleteObject of key (a missing key is no error). */
int atrest__s3_delete(atrest__s3 *s, const char *key);

/* The etag the core sees: "ETAG" or "ETAG:NONCE"; and back. */
void atrest__s3_etag_join(
	char out[ATREST_BACKEND_ETAG_MAX], const char *etag, const char *nonce);
int atrest__s3_etag_split(char etag[ATREST__S3_ETAG_MAX],
	char nonce[ATREST__S3_NONCE_LEN + 1], const char *joined);
/* An ETag header value without its quotes (and W/ prefix). */
void atrest__s3_etag_clean(char out[ATREST__S3_ETAG_MAX], const char *value);

/* Abort every multipart upload under the prefix started more than
 * older_than seconds ago; *count gets how many. */
int atrest__s3_cleanup(atrest_backend *b, uint64_t older_than, uint64_t *count);

/* The writer and the reader (s3_write.c, s3_read.c). */
int atrest__s3_open_write(atrest_backend *b, atrest_backend_writer **out, const char *key,
	unsigned int flags, const char *etag);
int atrest__s3_open_read(atrest_backend *b, atrest_backend_reader **out, const char *key);

/* ---- XML answers (s3_xml.c): libxml2, no network, no DTD, no entities */

/* One key of a listing. */
typedef struct atrest__s3_object {
	char *key; /* decoded */
	uint64_t size;
	int64_t mtime;
} atrest__s3_object;

typedef struct atrest__s3_list {
	atrest__s3_object *v;
	size_t n;
	int truncated;
	char *next_token; /* NextContinuationToken, or NULL */
} atrest__s3_list;

/* ListObjectsV2 (keys decoded when the answer says EncodingType url). */
int atrest__s3_parse_list(atrest__s3_list *out, const char *xml, size_t len);
void atrest__s3_list_free(atrest__s3_list *l);

typedef struct atrest__s3_upload {
	char *key;
	char *upload_id;
	int64_t initiated;
} atrest__s3_upload;

typedef struct atrest__s3_uploads {
	atrest__s3_upload *v;
	size_t n;
	int truncated;
	char *next_key;       /* NextKeyMarker */
	char *next_upload_id; /* NextUploadIdMarker */
} atrest__s3_uploads;

/* ListMultipartUploads. */
int atrest__s3_parse_uploads(atrest__s3_uploads *out, const char *xml, size_t len);
void atrest__s3_uploads_free(atrest__s3_uploads *u);

/* InitiateMultipartUploadResult's UploadId (malloc'd). */
int atrest__s3_parse_upload_id(char **out, const char *xml, size_t len);

/*
 * A CompleteMultipartUpload answer (200 even when it failed): 0 for a
 * CompleteMultipartUploadResult, 1 with code and message for an Error.
 */
int atrest__s3_parse_complete(char *code, size_t code_cap, char *msg, size_t msg_cap,
	const char *xml, size_t len);

/*
 * A DeleteObjects answer: how many Error entries, and the key and code of
 * the first one.
 */
int atrest__s3_parse_delete(size_t *errors, char *key, size_t key_cap, char *code,
	size_t code_cap, const char *xml, size_t len);

/* The Code and Message of an S3 error body into resp (atrest__http_opts'
 * parse_error). */
void atrest__s3_parse_error(atrest__http_resp *resp);

/* Percent-decoding of an encoding-type=url value ('+' is a space). */
int atrest__s3_url_decode(char *out, size_t cap, const char *s);

#endif
