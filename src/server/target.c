/*
 * Request targets, parsed by hand because the HTTP library's own decoding
 * would let "%00" cut a name short: path and query split, strict
 * percent-decoding ('+' is a space in the query only), NUL refused.
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode s[0..n) into a new string; NULL on a bad escape, a NUL or no memory. */
static char *decode(const char *s, size_t n, int plus_is_space)
{
	char *out = malloc(n + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 ||
				(lo = hexval(s[i + 2])) < 0)
				goto bad;
			c = hi * 16 + lo;
			i += 2;
		} else if (c == '+' && plus_is_space)
			c = ' ';
		if (c == 0)
			goto bad;
		*o++ = (char)c;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Skip "scheme://authority" of an absolute-form target. */
static const char *origin_form(const char *raw)
{
	const char *p = strstr(raw, "://");

	if (raw[0] == '/' || !p || strcspn(raw, "/?") < (size_t)(p - raw))
		return raw;
	p += 3;
	p += strcspn(p, "/?");
	return *p == '/' ? p : NULL;
}

static int parse_query(struct http_target *t, const char *q, const char **why)
{
	while (*q) {
		size_t n = strcspn(q, "&"), k = strcspn(q, "=&");
		struct http_param *p;

		if (n == 0) {
			q++;
			continue;
		}
		if (t->nparams == HTTP_PARAMS_MAX) {
			*why = "too many query parameters";
			return -1;
		}
		p = &t->params[t->nparams];
		p->key = decode(q, k, 1);
		p->value = k < n ? decode(q + k + 1, n - k - 1, 1) : decode("", 0, 1);
		if (!p->key || !p->value) {
			free(p->key);
			free(p->value);
			*why = "bad escape or NUL in the query";
			return -1;
		}
		t->nparams++;
		q += n;
	}
	return 0;
}

int http_target_parse(struct http_target *out, const char *raw, const char **why)
{
	const char *p = origin_form(raw);
	size_t n;

	memset(out, 0, sizeof(*out));
	*why = "request target is not a path";
	if (!p || p[0] != '/')
		return -1;
	n = strcspn(p, "?#");
	out->path = decode(p, n, 0);
	if (!out->path) {
		*why = "bad escape or NUL in the path";
		return -1;
	}
	if (p[n] == '?') {
		size_t qn = strcspn(p + n + 1, "#");
		char *q = strndup(p + n + 1, qn);

		if (!q || parse_query(out, q, why) < 0) {
			free(q);
			http_target_free(out);
			if (!q)
				*why = "out of memory";
			return -1;
		}
		free(q);
	}
	return 0;
}

void http_target_free(struct http_target *t)
{
	size_t i;

	for (i = 0; i < t->nparams; i++) {
		free(t->params[i].key);
		free(t->params[i].value);
	}
	free(t->path);
	memset(t, 0, sizeof(*t));
}

const char *http_target_param(const struct http_target *t, const char *key)
{
	size_t i;

	for (i = 0; i < t->nparams; i++)
		if (!strcmp(t->params[i].key, key))
			return t->params[i].value;
	return NULL;
}
