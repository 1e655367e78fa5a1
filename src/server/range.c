/*
 * "Range: bytes=..." (RFC 9110 section 14): one range of an object of known
 * size, as first byte and length.  Several ranges or another unit are
 * ignored (the whole object is served), as the RFC allows.
 */
#include <stdint.h>
#include <string.h>

#include "http.h"

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Digits into *v (saturating at UINT64_MAX); the end, or NULL if none. */
static const char *number(const char *p, uint64_t *v)
{
	const char *start = p;

	*v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		*v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
	}
	return p == start ? NULL : p;
}

int http_range_parse(const char *value, uint64_t size, uint64_t *first, uint64_t *len)
{
	const char *p = skip_ows(value);
	uint64_t a = 0, b = UINT64_MAX;
	int suffix = 0;

	if (strncmp(p, "bytes=", 6) != 0)
		return HTTP_RANGE_IGNORE;
	p = skip_ows(p + 6);
	if (*p == '-') {
		suffix = 1;
		if (!(p = number(p + 1, &b)))
			return HTTP_RANGE_IGNORE;
	} else {
		if (!(p = number(p, &a)) || *p++ != '-')
			return HTTP_RANGE_IGNORE;
		if (*p >= '0' && *p <= '9') {
			p = number(p, &b);
			if (b < a)
				return HTTP_RANGE_IGNORE;
		}
	}
	if (*skip_ows(p) != '\0')
		return HTTP_RANGE_IGNORE; /* several ranges, or junk */
	if (suffix) {
		if (b == 0 || size == 0)
			return HTTP_RANGE_UNSATISFIABLE;
		*len = b < size ? b : size;
		*first = size - *len;
		return HTTP_RANGE_OK;
	}
	if (a >= size)
		return HTTP_RANGE_UNSATISFIABLE;
	if (b >= size)
		b = size - 1;
	*first = a;
	*len = b - a + 1;
	return HTTP_RANGE_OK;
}
