/*
 * Fuzz target: what the S3 backend reads from a server (the XML answers of
 * ListObjectsV2, ListMultipartUploads, CreateMultipartUpload,
 * CompleteMultipartUpload, DeleteObjects and errors, url-encoded keys,
 * ETag headers) and from its user (s3:// locations), with the properties
 * that every listed entry has a key and a decoded key is never longer
 * than its encoding.
 */
#include <stdlib.h>
#include <string.h>

#include "atrest/sys/backend.h"
#include "fuzz.h"
#include "http.h"
#include "store/s3_int.h"

static void answers(const char *s, size_t n)
{
	atrest__s3_list l;
	atrest__s3_uploads u;
	atrest__http_resp resp;
	char *id, code[96], msg[240], key[1100];
	size_t errors;

	if (atrest__s3_parse_list(&l, s, n) == 0) {
		for (size_t i = 0; i < l.n; i++)
			if (!l.v[i].key)
				abort();
		atrest__s3_list_free(&l);
	}
	if (atrest__s3_parse_uploads(&u, s, n) == 0) {
		for (size_t i = 0; i < u.n; i++)
			if (!u.v[i].key || !u.v[i].upload_id)
				abort();
		atrest__s3_uploads_free(&u);
	}
	if (atrest__s3_parse_upload_id(&id, s, n) == 0)
		free(id);
	(void)atrest__s3_parse_complete(code, sizeof(code), msg, sizeof(msg), s, n);
	(void)atrest__s3_parse_delete(
		&errors, key, sizeof(key), code, sizeof(code), s, n);
	memset(&resp, 0, sizeof(resp));
	atrest__buf_put(&resp.body, s, n);
	atrest__s3_parse_error(&resp);
	atrest__http_resp_free(&resp);
}

static void strings(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1), etag[ATREST__S3_ETAG_MAX];
	char e2[ATREST__S3_ETAG_MAX], nonce[ATREST__S3_NONCE_LEN + 1];
	atrest_backend *b;

	if (d && atrest__s3_url_decode(d, n + 1, s) == 0 && strlen(d) > n)
		abort();
	free(d);
	atrest__s3_etag_clean(etag, s);
	(void)atrest__s3_etag_split(e2, nonce, s);
	if (n < 2048 && strncmp(s, "s3://", 5) == 0 && atrest_backend_open(&b, s) == 0)
		b->free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	answers(s, size);
	strings(s);
	atrest_error_clear();
	free(s);
	return 0;
}
