/*
 * Fuzz target: what SigV4 parses from requests (Authorization headers,
 * presigned-URL queries, paths and queries to canonicalize), with the
 * property that a parsed Authorization signs a request without crashing
 * and a canonical query is a fixed point.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sigv4.h"

static void canonical_forms(const char *s)
{
	char *a = NULL, *b = NULL;

	for (int flags = 0; flags <= ATREST__SIGV4_NO_NORMALIZE; flags++)
		if (atrest__sigv4_canonical_uri(&a, s, flags) == 0)
			free(a);
	if (atrest__sigv4_canonical_query(&a, s, "X-Amz-Signature") == 0) {
		if (atrest__sigv4_canonical_query(&b, a, NULL) != 0 || strcmp(a, b) != 0)
			abort();
		free(b);
		free(a);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	atrest__sigv4_auth a;
	int64_t t;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (atrest__sigv4_parse_authorization(&a, s) == 0 ||
		atrest__sigv4_parse_presigned(&a, s) == 0) {
		atrest__sigv4_hdr h[] = {
			{"Host", "example.com"}, {"x-amz-date", "20130524T000000Z"}};
		atrest__sigv4_msg m = {"GET", "/", s, h, 2, ATREST__SIGV4_UNSIGNED};
		(void)atrest__sigv4_verify(
			&m, &a, "20130524T000000Z", (const uint8_t *)"k", 1, 1, 0);
	}
	canonical_forms(s);
	(void)atrest__sigv4_parse_amz_date(&t, s);
	free(s);
	return 0;
}
