/*
 * The aws-chunked decoder (s3_chunked.h): a small state machine over the
 * bytes as they arrive, so a body of any size needs one line of memory;
 * chunk and trailer signatures checked with the project's SigV4 code.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "s3_chunked.h"
#include "secret.h"
#include "sigv4.h"

enum { ST_SIZE, ST_DATA, ST_DATA_CR, ST_DATA_LF, ST_TRAILER, ST_DONE, ST_FAILED };

#define CHUNK_MAX (1ull << 40)

static uint32_t crc_table[2][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	static const uint32_t poly[2] = {0xEDB88320u, 0x82F63B78u};

	for (int t = 0; t < 2; t++)
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? poly[t] ^ (c >> 1) : c >> 1;
			crc_table[t][i] = c;
		}
}

static uint32_t crc_run(int t, uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[t][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t s3_crc32(uint32_t crc, const void *buf, size_t len)
{
	return crc_run(0, crc, buf, len);
}

uint32_t s3_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc_run(1, crc, buf, len);
}

static int fail(struct s3_chunked *c, unsigned status, const char *code, const char *why)
{
	c->state = ST_FAILED;
	c->status = status;
	c->code = code;
	c->why = why;
	return -1;
}

int s3_chunked_init(struct s3_chunked *c, const uint8_t *key, const char *amz_date,
	const char *scope, const char *seed, const char *trailer, s3_chunked_emit emit,
	void *payload)
{
	memset(c, 0, sizeof(*c));
	c->emit = emit;
	c->payload = payload;
	if (trailer)
		snprintf(c->trailer_name, sizeof(c->trailer_name), "%s", trailer);
	if (!key)
		return 0;
	c->sign = 1;
	memcpy(c->key, key, 32);
	snprintf(c->amz_date, sizeof(c->amz_date), "%s", amz_date);
	snprintf(c->scope, sizeof(c->scope), "%s", scope);
	snprintf(c->prev, sizeof(c->prev), "%s", seed);
	c->md = EVP_MD_CTX_new();
	if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1)
		return -1;
	return 0;
}

void s3_chunked_free(struct s3_chunked *c)
{
	EVP_MD_CTX_free(c->md);
	c->md = NULL;
	atrest__wipe(c->key, sizeof(c->key));
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* "SIZE" or "SIZE;chunk-signature=SIG" (the line without CRLF). */
static int size_line(struct s3_chunked *c)
{
	static const char ext[] = ";chunk-signature=";
	const char *l = c->line, *semi = strchr(l, ';');
	size_t digits = semi ? (size_t)(semi - l) : strlen(l);
	uint64_t v = 0;

	if (digits == 0 || digits > 11)
		return fail(c, 400, "IncompleteBody", "malformed chunk size");
	for (size_t i = 0; i < digits; i++) {
		int d = (l[i] >= '0' && l[i] <= '9')   ? l[i] - '0'
			: (l[i] >= 'a' && l[i] <= 'f') ? l[i] - 'a' + 10
			: (l[i] >= 'A' && l[i] <= 'F') ? l[i] - 'A' + 10
						       : -1;
		if (d < 0)
			return fail(c, 400, "IncompleteBody", "malformed chunk size");
		v = v << 4 | (uint64_t)d;
	}
	if (v > CHUNK_MAX)
		return fail(c, 400, "IncompleteBody", "chunk too large");
	if (c->sign) {
		if (!semi || strncmp(semi, ext, sizeof(ext) - 1) != 0 ||
			strlen(semi + sizeof(ext) - 1) != 64 ||
			!is_hex(semi + sizeof(ext) - 1, 64))
			return fail(c, 403, "SignatureDoesNotMatch",
				"a chunk has no valid chunk-signature");
		memcpy(c->claimed, semi + sizeof(ext) - 1, 65);
	} else if (semi)
		return fail(c, 400, "InvalidRequest", "unexpected chunk extension");
	c->left = v;
	c->final_seen = v == 0;
	return 0;
}

/* The chunk just ended: check its signature and chain it. */
static int chunk_end(struct s3_chunked *c)
{
	uint8_t d[32];
	unsigned int n = 32;
	char hex[65], sig[65];

	if (!c->sign)
		return 0;
	if (EVP_DigestFinal_ex(c->md, d, &n) != 1 ||
		EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1)
		return fail(c, 500, "InternalError", "digest failed");
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	if (atrest__sigv4_chunk_signature(
		    sig, c->key, c->amz_date, c->scope, c->prev, hex) < 0 ||
		!atrest__sigv4_equal(sig, c->claimed))
		return fail(c, 403, "SignatureDoesNotMatch",
			"a chunk's signature does not match");
	memcpy(c->prev, sig, 65);
	return 0;
}

/* One trailing header line (lowercase name), or the blank end. */
static int trailer_line(struct s3_chunked *c)
{
	char *colon = strchr(c->line, ':');
	const char *v;

	if (c->line_len == 0) {
		c->state = ST_DONE;
		return 0;
	}
	if (!colon)
		return fail(c, 400, "IncompleteBody", "malformed trailer");
	*colon = '\0';
	for (v = colon + 1; *v == ' '; v++)
		;
	if (!strcasecmp(c->line, "x-amz-trailer-signature")) {
		if (!c->sign || strlen(v) != 64 || !is_hex(v, 64))
			return fail(c, 403, "SignatureDoesNotMatch",
				"malformed trailer signature");
		memcpy(c->trailer_sig, v, 65);
		return 0;
	}
	if (!c->trailer_name[0] || strcasecmp(c->line, c->trailer_name) != 0 ||
		c->trailer_value[0] || strlen(v) >= sizeof(c->trailer_value) || !*v)
		return fail(c, 400, "InvalidRequest",
			"a trailing header that x-amz-trailer did not announce");
	snprintf(c->trailer_value, sizeof(c->trailer_value), "%s", v);
	return 0;
}

/* Bytes of a line (size or trailer) up to LF. */
static int line_byte(struct s3_chunked *c, char ch)
{
	if (ch != '\n') {
		if (c->line_len + 1 >= sizeof(c->line))
			return fail(c, 400, "IncompleteBody", "line too long");
		c->line[c->line_len++] = ch;
		return 0;
	}
	if (c->line_len == 0 || c->line[c->line_len - 1] != '\r') {
		if (c->state == ST_TRAILER && c->line_len == 0)
			return fail(c, 400, "IncompleteBody", "bare LF");
		return fail(c, 400, "IncompleteBody", "line without CRLF");
	}
	c->line[--c->line_len] = '\0';
	if (c->state == ST_TRAILER) {
		int rc = trailer_line(c);

		c->line_len = 0;
		return rc;
	}
	c->line_len = 0;
	if (size_line(c) < 0)
		return -1;
	if (c->left)
		c->state = ST_DATA;
	else if (chunk_end(c) < 0)
		return -1;
	else
		c->state = ST_TRAILER;
	return 0;
}

static int data(struct s3_chunked *c, const uint8_t *p, size_t n)
{
	if (c->sign && EVP_DigestUpdate(c->md, p, n) != 1)
		return fail(c, 500, "InternalError", "digest failed");
	c->left -= n;
	c->decoded += n;
	if (c->emit(c->payload, p, n) < 0)
		return fail(c, 500, "InternalError", "the data could not be stored");
	if (c->left == 0)
		c->state = ST_DATA_CR;
	return 0;
}

int s3_chunked_feed(struct s3_chunked *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t i = 0;

	while (i < len) {
		switch (c->state) {
		case ST_SIZE:
		case ST_TRAILER:
			if (line_byte(c, (char)p[i++]) < 0)
				return -1;
			break;
		case ST_DATA: {
			size_t n = len - i < c->left ? len - i : (size_t)c->left;

			if (data(c, p + i, n) < 0)
				return -1;
			i += n;
			break;
		}
		case ST_DATA_CR:
			if (p[i++] != '\r')
				return fail(
					c, 400, "IncompleteBody", "chunk without CRLF");
			c->state = ST_DATA_LF;
			break;
		case ST_DATA_LF:
			if (p[i++] != '\n')
				return fail(
					c, 400, "IncompleteBody", "chunk without CRLF");
			if (chunk_end(c) < 0)
				return -1;
			c->state = ST_SIZE;
			break;
		case ST_DONE:
			return fail(
				c, 400, "IncompleteBody", "bytes after the last chunk");
		default:
			return -1;
		}
	}
	return 0;
}

/* The trailer signature over "name:value\n". */
static int trailer_signature_ok(struct s3_chunked *c)
{
	char text[160], hex[65], sig[65];
	uint8_t d[32];
	unsigned int n = 32;
	int len;

	if (!c->trailer_sig[0])
		return 0;
	len = snprintf(text, sizeof(text), "%s:%s\n", c->trailer_name, c->trailer_value);
	if (len < 0 || (size_t)len >= sizeof(text) ||
		EVP_Digest(text, (size_t)len, d, &n, EVP_sha256(), NULL) != 1)
		return 0;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	return atrest__sigv4_trailer_signature(
		       sig, c->key, c->amz_date, c->scope, c->prev, hex) == 0 &&
		atrest__sigv4_equal(sig, c->trailer_sig);
}

int s3_chunked_finish(struct s3_chunked *c)
{
	/* A trailer-less body may end right after the final chunk's CRLF pair,
	 * or without the blank line some clients leave out. */
	if (c->state == ST_TRAILER && c->line_len == 0 && !c->trailer_value[0])
		c->state = ST_DONE;
	if (c->state == ST_FAILED)
		return -1;
	if (c->state != ST_DONE || !c->final_seen)
		return fail(
			c, 400, "IncompleteBody", "the body ended before its last chunk");
	if (c->trailer_name[0] && !c->trailer_value[0])
		return fail(c, 400, "InvalidRequest", "the announced trailer is missing");
	if (c->sign && c->trailer_name[0] && !trailer_signature_ok(c))
		return fail(c, 403, "SignatureDoesNotMatch",
			"the trailer's signature does not match");
	return 0;
}
