/*
 * The growable text buffer of buf.h: plain heap storage, or locked secret
 * memory grown by copying into a larger secret (the old one is wiped).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"

static int grow_locked(atrest__buf *b, size_t cap)
{
	atrest__secret *s;

	if (atrest__secret_new(&s, cap) < 0)
		return -1;
	if (b->sec) {
		memcpy(s->data, b->sec->data, b->len + 1);
		atrest__secret_free(b->sec);
	}
	b->sec = s;
	b->data = (char *)s->data;
	return 0;
}

static int grow_heap(atrest__buf *b, size_t cap)
{
	char *p = malloc(cap);

	if (!p)
		return -1;
	if (b->data) {
		memcpy(p, b->data, b->len + 1);
		atrest__wipe(b->data, b->cap);
		free(b->data);
	}
	b->data = p;
	return 0;
}

/* Room for n more bytes and the terminator. */
static int reserve(atrest__buf *b, size_t n)
{
	size_t cap;

	if (b->failed)
		return -1;
	if (b->data && b->len + n + 1 <= b->cap)
		return 0;
	if (n > SIZE_MAX / 4 - b->len) {
		b->failed = 1;
		return -1;
	}
	cap = (b->len + n + 1) * 2;
	cap = cap < 256 ? 256 : cap;
	if ((b->locked ? grow_locked(b, cap) : grow_heap(b, cap)) < 0) {
		b->failed = 1;
		return -1;
	}
	if (b->cap == 0)
		b->data[0] = '\0';
	b->cap = cap;
	return 0;
}

void atrest__buf_put(atrest__buf *b, const void *p, size_t n)
{
	if (reserve(b, n) < 0)
		return;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void atrest__buf_puts(atrest__buf *b, const char *s)
{
	atrest__buf_put(b, s, strlen(s));
}

void atrest__buf_putc(atrest__buf *b, char c)
{
	atrest__buf_put(b, &c, 1);
}

void atrest__buf_printf(atrest__buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(b, (size_t)n) < 0) {
		b->failed = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void atrest__buf_hex(atrest__buf *b, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	if (reserve(b, 2 * n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		b->data[b->len++] = digits[p[i] >> 4];
		b->data[b->len++] = digits[p[i] & 15];
	}
	b->data[b->len] = '\0';
}

void atrest__buf_b64(atrest__buf *b, const uint8_t *p, size_t n, int url)
{
	size_t start = b->len, out;

	if (n > (size_t)(INT32_MAX / 4 * 3) || reserve(b, 4 * ((n + 2) / 3)) < 0) {
		b->failed = 1;
		return;
	}
	out = (size_t)EVP_EncodeBlock(
		(unsigned char *)b->data + start, (const unsigned char *)p, (int)n);
	b->len = start + out;
	if (url) {
		while (b->len > start && b->data[b->len - 1] == '=')
			b->len--;
		for (size_t i = start; i < b->len; i++)
			b->data[i] = b->data[i] == '+' ? '-'
				: b->data[i] == '/'    ? '_'
						       : b->data[i];
	}
	b->data[b->len] = '\0';
}

static int unreserved(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

void atrest__buf_urlenc(atrest__buf *b, const void *p, size_t n, int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	const uint8_t *s = p;

	if (reserve(b, 3 * n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (unreserved(s[i]) || (keep_slash && s[i] == '/')) {
			b->data[b->len++] = (char)s[i];
			continue;
		}
		b->data[b->len++] = '%';
		b->data[b->len++] = digits[s[i] >> 4];
		b->data[b->len++] = digits[s[i] & 15];
	}
	b->data[b->len] = '\0';
}

void atrest__buf_json_str(atrest__buf *b, const char *s, size_t n)
{
	atrest__buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			atrest__buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			atrest__buf_printf(b, "\\u%04x", c);
		else
			atrest__buf_putc(b, (char)c);
	}
	atrest__buf_putc(b, '"');
}

int atrest__buf_check(atrest__buf *b)
{
	ENSURE(!b->failed, ATREST_ERROR, "out of memory");
	if (!b->data)
		atrest__buf_put(b, "", 0);
	ENSURE(!b->failed, ATREST_ERROR, "out of memory");
	return 0;
}

char *atrest__buf_take(atrest__buf *b)
{
	char *s;

	if (atrest__buf_check(b) < 0)
		return NULL;
	if (!b->locked) {
		s = b->data;
		memset(b, 0, sizeof(*b));
		return s;
	}
	s = strdup(b->data);
	atrest__buf_free(b);
	b->locked = 1;
	return s;
}

void atrest__buf_reset(atrest__buf *b)
{
	if (b->data)
		atrest__wipe(b->data, b->len);
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
	b->failed = 0;
}

void atrest__buf_free(atrest__buf *b)
{
	int locked = b->locked;

	if (b->sec)
		atrest__secret_free(b->sec);
	else if (b->data) {
		atrest__wipe(b->data, b->cap);
		free(b->data);
	}
	memset(b, 0, sizeof(*b));
	b->locked = locked;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int atrest__b64_decode(uint8_t *out, size_t cap, size_t *out_len, const char *s, size_t n)
{
	uint32_t acc = 0;
	size_t got = 0, bits = 0, pad = 0;

	*out_len = 0;
	while (pad < 2 && n > 0 && s[n - 1] == '=')
		n--, pad++;
	if ((n + pad) % 4 && pad)
		return ATREST_EINVAL;
	if (n % 4 == 1)
		return ATREST_EINVAL;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);

		if (v < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (got == cap)
				goto bad;
			out[got++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero (one encoding per byte string). */
	if (acc & ((1u << bits) - 1))
		goto bad;
	*out_len = got;
	return 0;
bad:
	atrest__wipe(out, got);
	return ATREST_EINVAL;
}
