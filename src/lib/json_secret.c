/*
 * Lifting secret strings out of JSON text held in locked memory
 * (json_secret.h): a small scanner finds the member, its escapes are
 * decoded into a new secret, and the text is overwritten in place.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json_secret.h"

struct jscan {
	const char *s;
	size_t n, i;
	int depth;
	const char *const *path;
	size_t start, end; /* contents of the string found */
	int found, dup;
};

static void skip_ws(struct jscan *j)
{
	while (j->i < j->n &&
		(j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
			j->s[j->i] == '\r'))
		j->i++;
}

static int is_hex4(const char *p)
{
	for (int k = 0; k < 4; k++)
		if (!isxdigit((unsigned char)p[k]))
			return 0;
	return 1;
}

/* A string at j->i; its contents are [*start, *end). */
static int scan_string(struct jscan *j, size_t *start, size_t *end)
{
	if (j->i >= j->n || j->s[j->i] != '"')
		return -1;
	*start = ++j->i;
	while (j->i < j->n) {
		unsigned char c = (unsigned char)j->s[j->i];

		if (c == '"') {
			*end = j->i++;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c == '\\') {
			if (j->i + 1 >= j->n)
				return -1;
			c = (unsigned char)j->s[j->i + 1];
			if (c == 'u') {
				if (j->i + 6 > j->n || !is_hex4(j->s + j->i + 2))
					return -1;
				j->i += 4;
			} else if (!strchr("\"\\/bfnrt", c)) {
				return -1;
			}
			j->i++;
		}
		j->i++;
	}
	return -1;
}

/* Numbers, true, false, null: checked by the JSON parser later. */
static int scan_literal(struct jscan *j)
{
	size_t i0 = j->i;

	while (j->i < j->n &&
		(isalnum((unsigned char)j->s[j->i]) || j->s[j->i] == '-' ||
			j->s[j->i] == '+' || j->s[j->i] == '.'))
		j->i++;
	return j->i > i0 ? 0 : -1;
}

static int scan_value(struct jscan *j, int level);

static int key_is(const struct jscan *j, size_t ks, size_t ke, const char *name)
{
	size_t n = strlen(name);

	return ke - ks == n && memcmp(j->s + ks, name, n) == 0;
}

/* One "key": value of an object on (level >= 0) or off the path. */
static int scan_member(struct jscan *j, int level)
{
	size_t ks, ke, vs, ve;
	int match;

	skip_ws(j);
	if (scan_string(j, &ks, &ke) < 0)
		return -1;
	skip_ws(j);
	if (j->i >= j->n || j->s[j->i] != ':')
		return -1;
	j->i++;
	match = level >= 0 && key_is(j, ks, ke, j->path[level]);
	if (!match || j->path[level + 1])
		return scan_value(j, match ? level + 1 : -1);
	skip_ws(j);
	if (j->i < j->n && j->s[j->i] == '"') {
		if (scan_string(j, &vs, &ve) < 0)
			return -1;
		j->dup |= j->found;
		j->found = 1;
		j->start = vs;
		j->end = ve;
		return 0;
	}
	return scan_value(j, -1);
}

static int scan_object(struct jscan *j, int level)
{
	j->i++;
	skip_ws(j);
	if (j->i < j->n && j->s[j->i] == '}') {
		j->i++;
		return 0;
	}
	for (;;) {
		if (scan_member(j, level) < 0)
			return -1;
		skip_ws(j);
		if (j->i >= j->n)
			return -1;
		if (j->s[j->i++] == '}')
			return 0;
		if (j->s[j->i - 1] != ',')
			return -1;
	}
}

static int scan_array(struct jscan *j)
{
	j->i++;
	skip_ws(j);
	if (j->i < j->n && j->s[j->i] == ']') {
		j->i++;
		return 0;
	}
	for (;;) {
		if (scan_value(j, -1) < 0)
			return -1;
		skip_ws(j);
		if (j->i >= j->n)
			return -1;
		if (j->s[j->i++] == ']')
			return 0;
		if (j->s[j->i - 1] != ',')
			return -1;
	}
}

static int scan_value(struct jscan *j, int level)
{
	size_t a, b;
	int rc;

	if (++j->depth > 64)
		return -1;
	skip_ws(j);
	if (j->i >= j->n)
		rc = -1;
	else if (j->s[j->i] == '{')
		rc = scan_object(j, level);
	else if (j->s[j->i] == '[')
		rc = scan_array(j);
	else if (j->s[j->i] == '"')
		rc = scan_string(j, &a, &b);
	else
		rc = scan_literal(j);
	j->depth--;
	return rc;
}

static void put_utf8(uint8_t *o, size_t *k, uint32_t cp)
{
	if (cp < 0x80) {
		o[(*k)++] = (uint8_t)cp;
	} else if (cp < 0x800) {
		o[(*k)++] = (uint8_t)(0xC0 | cp >> 6);
		o[(*k)++] = (uint8_t)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		o[(*k)++] = (uint8_t)(0xE0 | cp >> 12);
		o[(*k)++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		o[(*k)++] = (uint8_t)(0x80 | (cp & 0x3F));
	} else {
		o[(*k)++] = (uint8_t)(0xF0 | cp >> 18);
		o[(*k)++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
		o[(*k)++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		o[(*k)++] = (uint8_t)(0x80 | (cp & 0x3F));
	}
}

/* \uXXXX at p (already checked to be 6 characters). */
static uint32_t hex4(const char *p)
{
	return (uint32_t)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
}

/* The escapes of a scanned string (n bytes at s) decoded into o; -1 for a bad surrogate. */
static int unescape(uint8_t *o, size_t *k, const char *s, size_t n)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

	*k = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t cp;

		if (s[i] != '\\') {
			o[(*k)++] = (uint8_t)s[i];
			continue;
		}
		if (s[i + 1] != 'u') {
			o[(*k)++] = (uint8_t)to[strchr(from, s[i + 1]) - from];
			i++;
			continue;
		}
		cp = hex4(s + i);
		i += 5;
		if (cp >= 0xDC00 && cp < 0xE000)
			return -1;
		if (cp >= 0xD800 && cp < 0xDC00) {
			uint32_t lo;
			if (i + 6 >= n || s[i + 1] != '\\' || s[i + 2] != 'u')
				return -1;
			lo = hex4(s + i + 1);
			if (lo < 0xDC00 || lo >= 0xE000)
				return -1;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			i += 6;
		}
		put_utf8(o, k, cp);
	}
	return 0;
}

int atrest__json_take(
	atrest__secret **out, char *json, size_t len, const char *const *path)
{
	struct jscan j = {.s = json, .n = len, .path = path};
	atrest__secret *s;
	size_t k = 0;

	*out = NULL;
	if (scan_value(&j, path[0] ? 0 : -1) < 0 || (skip_ws(&j), j.i != j.n) || j.dup)
		return ATREST_EINVAL;
	if (!j.found)
		return ATREST_ENOTFOUND;
	GUARD(atrest__secret_new(&s, j.end - j.start + 1));
	if (unescape(s->data, &k, json + j.start, j.end - j.start) < 0) {
		atrest__secret_free(s);
		return ATREST_EINVAL;
	}
	s->data[k] = '\0';
	s->len = k;
	memset(json + j.start, 'x', j.end - j.start);
	*out = s;
	return 0;
}

int atrest__json_take_b64(
	atrest__secret **out, char *json, size_t len, const char *const *path, size_t cap)
{
	atrest__secret *txt, *bin;
	int rc;

	*out = NULL;
	GUARD(atrest__json_take(&txt, json, len, path));
	rc = atrest__secret_new(&bin, cap ? cap : 1);
	if (rc == 0 &&
		atrest__b64_decode(bin->data, bin->cap, &bin->len,
			(const char *)txt->data, txt->len) < 0) {
		atrest__secret_free(bin);
		rc = ATREST_EINVAL;
	}
	atrest__secret_free(txt);
	if (rc == 0)
		*out = bin;
	return rc;
}
