/*
 * Fuzz target: what the server parses by hand from the network, the
 * request target (path and query, percent-decoding) and the Range header,
 * with the properties that a decoded path holds no NUL before its end and
 * that an accepted range lies inside the object.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/http.h"
#include "fuzz.h"

static void target(const char *s)
{
	struct http_target t;
	const char *why;
	size_t i;

	if (http_target_parse(&t, s, &why) < 0) {
		if (!why || !*why)
			abort();
		return;
	}
	if (!t.path || t.path[0] != '/' || strlen(t.path) > strlen(s))
		abort();
	for (i = 0; i < t.nparams; i++)
		if (!t.params[i].key || !t.params[i].value ||
			http_target_param(&t, t.params[i].key) == NULL)
			abort();
	http_target_free(&t);
}

static void range(const char *s, uint64_t size)
{
	uint64_t first = UINT64_MAX, len = UINT64_MAX;
	int rc = http_range_parse(s, size, &first, &len);

	if (rc == HTTP_RANGE_OK && (len == 0 || first >= size || len > size - first))
		abort();
	if (rc != HTTP_RANGE_OK && rc != HTTP_RANGE_IGNORE &&
		rc != HTTP_RANGE_UNSATISFIABLE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	uint64_t obj = 0;
	size_t i;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	target(s);
	for (i = 0; i < size && i < 8; i++)
		obj = obj << 8 | data[i];
	range(s, size);
	range(s, obj);
	range(s, 0);
	free(s);
	return 0;
}
