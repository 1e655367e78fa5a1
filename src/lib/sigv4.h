/*
 * AWS Signature Version 4, written in the project: the canonical request,
 * string to sign, signing key and signature, for signing client requests
 * (headers or presigned URLs) and for verifying signed requests on the
 * server side, including the per-chunk and trailer signatures of
 * aws-chunked uploads.  No I/O; strings in, strings out.
 */
#ifndef ATREST_SIGV4_H
#define ATREST_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define ATREST__SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define ATREST__SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"
#define ATREST__SIGV4_STREAMING "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define ATREST__SIGV4_STREAMING_TRAILER "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
/* The hex SHA-256 of nothing (a request without a body). */
#define ATREST__SIGV4_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Flags of the canonical URI. */
enum {
	/*
	 * S3: the path is percent-decoded and encoded once, and never
	 * normalized (object keys may hold "//" or ".." literally).
	 */
	ATREST__SIGV4_S3 = 1,
	/*
	 * Other services, without path normalization: the path as sent is
	 * encoded again ("double encoding"), dot segments and repeated
	 * slashes kept.  The default removes them first.
	 */
	ATREST__SIGV4_NO_NORMALIZE = 2,
};

/* One request header; the same name may appear more than once. */
typedef struct atrest__sigv4_hdr {
	const char *name;  /* any case */
	const char *value; /* as sent; trimmed and folded for signing */
} atrest__sigv4_hdr;

/* A request as it travels. */
typedef struct atrest__sigv4_msg {
	const char *method;
	const char *path;  /* as on the wire, without the query ("" is "/") */
	const char *query; /* as on the wire after '?', or NULL */
	const atrest__sigv4_hdr *headers;
	size_t nheaders;
	/* Hex SHA-256 of the body, UNSIGNED-PAYLOAD or a STREAMING-... value. */
	const char *payload_hash;
} atrest__sigv4_msg;

/* The signer's credentials; secret is the secret access key. */
typedef struct atrest__sigv4_creds {
	const char *access_key;
	const uint8_t *secret;
	size_t secret_len;
	const char *token; /* session token, or NULL */
} atrest__sigv4_creds;

/* What a signed request claims: parsed Authorization or X-Amz-* query. */
typedef struct atrest__sigv4_auth {
	char access_key[129];
	char date[9]; /* YYYYMMDD of the credential scope */
	char region[64];
	char service[64];
	char signed_headers[1024]; /* "host;x-amz-date", lowercase, sorted */
	char signature[65];        /* lowercase hex */
	/* Presigned URLs only: */
	char amz_date[17]; /* X-Amz-Date */
	long expires;      /* X-Amz-Expires, seconds (1..604800) */
	char token[2048];  /* X-Amz-Security-Token, "" when absent (not secret) */
} atrest__sigv4_auth;

/* "YYYYMMDDTHHMMSSZ" of a time in seconds since the epoch (UTC). */
int atrest__sigv4_amz_date(char out[17], int64_t t);
/* That time again; ATREST_EINVAL for anything but the exact form. */
int atrest__sigv4_parse_amz_date(int64_t *out, const char *s);

/* "YYYYMMDD/region/service/aws4_request" for an amz_date. */
int atrest__sigv4_scope(char *out, size_t cap, const char *amz_date, const char *region,
	const char *service);

/* The canonical URI of a path as sent (flags above). */
int atrest__sigv4_canonical_uri(char **out, const char *path, int flags);
/*
 * The canonical query of a query string as sent: parameters decoded and
 * encoded again, sorted by name then value; a parameter named skip (e.g.
 * "X-Amz-Signature" when verifying a presigned URL) is left out.  '+' is
 * a literal plus (SigV4 clients encode a space as %20).
 */
int atrest__sigv4_canonical_query(char **out, const char *query, const char *skip);
/*
 * The canonical headers block (each "name:value\n") and the signed-header
 * list.  With signed == NULL every header of m is signed; otherwise
 * exactly the ones signed names (lowercase, sorted, ';'-separated), each
 * of which must be present (ATREST_EKEY otherwise).
 */
int atrest__sigv4_canonical_headers(char **out, char **signed_out,
	const atrest__sigv4_hdr *h, size_t n, const char *signed_list);
/* The whole canonical request (and the signed-header list when asked). */
int atrest__sigv4_canonical_request(char **out, char **signed_out,
	const atrest__sigv4_msg *m, const char *signed_list, int flags);
int atrest__sigv4_string_to_sign(char **out, const char *amz_date, const char *scope,
	const char *canonical_request);

/*
 * The signing key HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region),
 * service), "aws4_request").  Callers keep it in locked memory.
 */
int atrest__sigv4_signing_key(uint8_t out[32], const uint8_t *secret, size_t secret_len,
	const char *date8, const char *region, const char *service);
/* Lowercase hex HMAC-SHA256 of a string to sign. */
int atrest__sigv4_signature(
	char out[65], const uint8_t key[32], const char *string_to_sign);

/*
 * aws-chunked uploads: the signature of one chunk (chunk_hash = hex
 * SHA-256 of its data; the empty hash for the final chunk) chained from
 * the previous signature (the seed signature first), and of the trailing
 * headers (trailer_hash = hex SHA-256 of "name:value\n" lines).
 */
int atrest__sigv4_chunk_signature(char out[65], const uint8_t key[32],
	const char *amz_date, const char *scope, const char *prev_signature,
	const char *chunk_hash);
int atrest__sigv4_trailer_signature(char out[65], const uint8_t key[32],
	const char *amz_date, const char *scope, const char *prev_signature,
	const char *trailer_hash);

/*
 * Sign a client request: the value of its Authorization header.  m must
 * already carry every header to be signed, x-amz-date (= amz_date) and,
 * with a session token, x-amz-security-token among them.
 */
int atrest__sigv4_authorization(char **out, const atrest__sigv4_msg *m,
	const atrest__sigv4_creds *c, const char *amz_date, const char *region,
	const char *service, int flags);
/*
 * A presigned URL's query: m's own query, then X-Amz-Algorithm,
 * -Credential, -Date, -Expires, -SignedHeaders (and -Security-Token), and
 * X-Amz-Signature last.  m's headers (at least host) are the signed ones.
 */
int atrest__sigv4_presign(char **query_out, const atrest__sigv4_msg *m,
	const atrest__sigv4_creds *c, const char *amz_date, const char *region,
	const char *service, long expires, int flags);

/* Parse "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...". */
int atrest__sigv4_parse_authorization(atrest__sigv4_auth *out, const char *value);
/* Parse the X-Amz-* parameters of a presigned URL's query. */
int atrest__sigv4_parse_presigned(atrest__sigv4_auth *out, const char *query);

/*
 * Verify a signed request against the secret of a.access_key: recompute
 * the signature over m with a's signed headers and scope, and compare in
 * constant time.  amz_date is the request's X-Amz-Date (header, or the
 * presigned parameter); presigned leaves X-Amz-Signature out of the query.
 * 0 when it matches (the signature, then also the seed of an aws-chunked
 * body, is a.signature); ATREST_EKEY when it does not; ATREST_EINVAL for
 * a request that cannot be checked (scope date not amz_date's, signed
 * headers without host or missing from the request).  Clock skew and
 * expiry are the caller's policy.
 */
int atrest__sigv4_verify(const atrest__sigv4_msg *m, const atrest__sigv4_auth *a,
	const char *amz_date, const uint8_t *secret, size_t secret_len, int presigned,
	int flags);

/* 1 when two hex signatures are equal (constant time in their contents). */
int atrest__sigv4_equal(const char *a, const char *b);

#endif
