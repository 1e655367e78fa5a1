/*
 * A small in-memory S3 server for the unit tests of the S3 backend, on
 * tests/unit/httpd.c: path-style buckets, objects with ETags (MD5) and
 * user metadata, ranges, ListObjectsV2 (url encoding, continuation tokens,
 * start-after, a page size of choice), conditional puts, multipart uploads,
 * DeleteObjects and ListMultipartUploads; every request's SigV4 signature
 * and payload hash checked.  Knobs inject what real servers do: RGW's
 * bare If-Match, 5xx and throttling, dropped and cut answers, delays.
 */
#ifndef ATREST_TEST_S3D_H
#define ATREST_TEST_S3D_H

#include <stddef.h>
#include <stdint.h>

typedef struct s3d s3d;

/* Start on a free port with one user (access key, secret). */
s3d *s3d_start(const char *access_key, const char *secret);
void s3d_stop(s3d *d);
/* "http://127.0.0.1:PORT". */
const char *s3d_endpoint(const s3d *d);

/* Keys per ListObjectsV2 and ListMultipartUploads page (default 1000). */
void s3d_page(s3d *d, int n);
/* Refuse If-Match with a quoted ETag, as Ceph RGW 16 does. */
void s3d_bare_if_match(s3d *d, int on);
/* Ignore If-Match and If-None-Match, as servers without conditional
 * writes do. */
void s3d_ignore_conditions(s3d *d, int on);
/* Answer 403 to a GET or HEAD of a missing key, as S3 does to credentials
 * that may list only a prefix of the bucket. */
void s3d_deny_missing(s3d *d, int on);
/*
 * The next count requests of op ("PutObject", "UploadPart", "GetObject",
 * ...; "*" for any) answer status with code; with status 0 the connection
 * is dropped instead (after the request took effect when applied is set:
 * a lost answer), and with cut > 0 only cut bytes of the body are sent.
 */
void s3d_fail(s3d *d, const char *op, int count, int status, const char *code);
void s3d_drop(s3d *d, const char *op, int count, int applied);
void s3d_cut(s3d *d, const char *op, int count, size_t cut);
/* Wait ms before every answer. */
void s3d_delay(s3d *d, int ms);

/* Requests of op so far ("*": all), and the most at once. */
long s3d_calls(s3d *d, const char *op);
int s3d_most_at_once(s3d *d, const char *op);
/* Bytes of object data sent by GETs so far. */
uint64_t s3d_bytes_out(s3d *d);
/* Unfinished multipart uploads; make them all older by secs. */
int s3d_uploads(s3d *d);
void s3d_age_uploads(s3d *d, long secs);
/* Put or read an object directly (as another client would). */
void s3d_poke(s3d *d, const char *bucket, const char *key, const void *p, size_t n);
uint8_t *s3d_peek(s3d *d, const char *bucket, const char *key, size_t *n);
/* The last request's header name (NULL when absent; copied into out). */
const char *s3d_last_header(
	s3d *d, const char *op, const char *name, char *out, size_t cap);

#endif
