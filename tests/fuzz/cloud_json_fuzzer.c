/*
 * Fuzz target: what the cloud providers parse from service answers and
 * keyrings: secret members taken out of JSON (with the property that the
 * text left is still the same length and the secret is gone from it),
 * base64, the error shapes of every service, Retry-After, and the Azure
 * and Vault wrapped-key formats.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "http.h"
#include "json_secret.h"
#include "keyprov/cloud.h"

static void take(const uint8_t *data, size_t size, const char *const *path)
{
	char *s = malloc(size + 1);
	atrest__secret *sec = NULL;

	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (atrest__json_take(&sec, s, size, path) == 0) {
		if (sec->data[sec->len] != '\0' || sec->len > size)
			abort();
		atrest__secret_free(sec);
	}
	memcpy(s, data, size);
	if (atrest__json_take_b64(&sec, s, size, path, 64) == 0)
		atrest__secret_free(sec);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const p1[] = {"Plaintext", NULL};
	static const char *const p2[] = {"data", "plaintext", NULL};
	static const char *const p3[] = {"auth", "client_token", NULL};
	atrest__http_resp resp;
	const uint8_t *ct;
	uint8_t out[256];
	char version[ATREST__AZURE_VERSION_MAX + 1], *s;
	size_t n, ct_len;
	int format;

	take(data, size, p1);
	take(data, size, p2);
	take(data, size, p3);
	(void)atrest__b64_decode(out, sizeof(out), &n, (const char *)data, size);
	memset(&resp, 0, sizeof(resp));
	atrest__buf_put(&resp.body, data, size);
	atrest__http_hdrs_add(&resp.headers, "x-amzn-ErrorType", "%.*s",
		(int)(size < 64 ? size : 64), (const char *)data);
	atrest__http_parse_error_json(&resp);
	if (strlen(resp.code) >= sizeof(resp.code) ||
		strlen(resp.msg) >= sizeof(resp.msg))
		abort();
	atrest__http_resp_free(&resp);
	if ((s = malloc(size + 1)) != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
		(void)atrest__http_retry_after(s);
		(void)atrest__http_is_loopback(s);
		free(s);
	}
	if (atrest__azure_blob_parse(data, size, &format, version, &ct, &ct_len) == 0 &&
		(ct < data || ct + ct_len != data + size))
		abort();
	(void)atrest__vault_blob_check(data, size);
	return 0;
}
