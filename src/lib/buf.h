/*
 * A growable text buffer for building requests, canonical forms and JSON
 * bodies; a locked buffer keeps its bytes in atrest__secret memory (request
 * bodies and headers that carry keys or tokens).  Every release wipes.
 */
#ifndef ATREST_BUF_H
#define ATREST_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "secret.h"

typedef struct atrest__buf {
	char *data;          /* NUL-terminated after any append; NULL before */
	size_t len;          /* bytes, terminator excluded */
	size_t cap;          /* bytes available for data, terminator included */
	atrest__secret *sec; /* the storage of a locked buffer */
	int locked;          /* set before the first append: keep in locked memory */
	int failed;          /* an append ran out of memory (later appends do nothing) */
} atrest__buf;

#define ATREST__BUF_INIT \
	{                \
		0        \
	}
#define ATREST__BUF_LOCKED  \
	{                   \
		.locked = 1 \
	}

/*
 * Appends never return an error: a failure marks the buffer, and the
 * builder checks once with atrest__buf_check before using the result.
 */
void atrest__buf_put(atrest__buf *b, const void *p, size_t n);
void atrest__buf_puts(atrest__buf *b, const char *s);
void atrest__buf_putc(atrest__buf *b, char c);
void atrest__buf_printf(atrest__buf *b, const char *fmt, ...) ATREST__PRINTF(2, 3);
/* Lowercase hex of n bytes. */
void atrest__buf_hex(atrest__buf *b, const uint8_t *p, size_t n);
/* Standard base64 (padded), or base64url without padding when url. */
void atrest__buf_b64(atrest__buf *b, const uint8_t *p, size_t n, int url);
/*
 * RFC 3986 percent-encoding: unreserved characters (A-Z a-z 0-9 - . _ ~)
 * as they are, '/' too when keep_slash, every other byte as %XX (upper
 * case).  This is the encoding SigV4 and form bodies use.
 */
void atrest__buf_urlenc(atrest__buf *b, const void *p, size_t n, int keep_slash);
/* A JSON string literal (quotes included) of n bytes of UTF-8 text. */
void atrest__buf_json_str(atrest__buf *b, const char *s, size_t n);

/* 0, or ATREST_ERROR ("out of memory") when an append failed. */
int atrest__buf_check(atrest__buf *b);
/* The text as a malloc'd string owned by the caller (unlocked buffers). */
char *atrest__buf_take(atrest__buf *b);
/* Forget the contents (wiped) but keep the storage. */
void atrest__buf_reset(atrest__buf *b);
/* Wipe and release; the buffer may be used again from empty. */
void atrest__buf_free(atrest__buf *b);

/* Decode base64 (standard or url alphabet, padding optional) of n chars. */
int atrest__b64_decode(
	uint8_t *out, size_t cap, size_t *out_len, const char *s, size_t n);

#endif
