/*
 * S3's aws-chunked request bodies: "SIZE[;chunk-signature=SIG]\r\n DATA\r\n"
 * chunks, a final empty chunk, optional trailing headers (a checksum and
 * its trailer signature) and a blank line.  A streaming decoder that passes
 * the data on and checks every chunk's signature as it ends; plus the
 * CRC-32 and CRC-32C of the x-amz-checksum-* headers.
 */
#ifndef ATREST_SERVER_S3_CHUNKED_H
#define ATREST_SERVER_S3_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* Data out of the decoder; 0, or -1 to stop (the decoder then fails). */
typedef int (*s3_chunked_emit)(void *payload, const void *buf, size_t len);

struct s3_chunked {
	int state;
	char line[512];
	size_t line_len;
	uint64_t left;    /* data bytes left in this chunk */
	uint64_t decoded; /* data bytes passed on */
	int final_seen;
	/* Signed chunks: the signing key, scope and the chain of signatures. */
	int sign;
	uint8_t key[32];
	char amz_date[17];
	char scope[160];
	char prev[65];
	char claimed[65];
	EVP_MD_CTX *md; /* SHA-256 of the chunk's data */
	/* Trailing headers. */
	char trailer_name[48];  /* the one expected (x-amz-trailer), lowercase */
	char trailer_value[96]; /* its value once seen */
	char trailer_sig[65];   /* x-amz-trailer-signature, when signed */
	s3_chunked_emit emit;
	void *payload;
	/* Why it failed: an S3 error code and its HTTP status. */
	const char *code;
	unsigned status;
	const char *why;
};

/*
 * Start decoding.  key (NULL: chunks are not signed) with amz_date, scope
 * and the request's seed signature; trailer: the lowercase name announced
 * by x-amz-trailer, or NULL.  0 or -1 (no memory).
 */
int s3_chunked_init(struct s3_chunked *c, const uint8_t *key, const char *amz_date,
	const char *scope, const char *seed, const char *trailer, s3_chunked_emit emit,
	void *payload);
/* Decode len more bytes; 0, or -1 with code, status and why set. */
int s3_chunked_feed(struct s3_chunked *c, const void *buf, size_t len);
/* The body ended: was it complete (and the trailer signature right)? */
int s3_chunked_finish(struct s3_chunked *c);
void s3_chunked_free(struct s3_chunked *c);

/* CRC-32 (ISO-HDLC, as zlib) and CRC-32C (Castagnoli), running. */
uint32_t s3_crc32(uint32_t crc, const void *buf, size_t len);
uint32_t s3_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
