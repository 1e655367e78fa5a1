/*
 * Unit tests of the helpers the cloud providers share: secret JSON members
 * taken out in locked memory (json_secret.c), text buffers and base64
 * (buf.c), the AAD encodings and bindings, the token cache, key ids, URI
 * parameters, CRC32C and the wrapped-key formats (keyprov/cloud.c and the
 * providers' blob parsers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "helpers.h"
#include "json_secret.h"
#include "keyprov/cloud.h"
#include "keyring.h"

static void take_ok(
	const char *json, const char *const *path, const char *want, const char *left)
{
	char *s = strdup(json);
	atrest__secret *sec;

	assert_int_equal(atrest__json_take(&sec, s, strlen(s), path), 0);
	assert_int_equal(sec->len, strlen(want));
	assert_memory_equal(sec->data, want, sec->len + 1);
	assert_string_equal(s, left);
	atrest__secret_free(sec);
	free(s);
}

static int take_rc(const char *json, const char *const *path)
{
	char *s = strdup(json);
	atrest__secret *sec = NULL;
	int rc = atrest__json_take(&sec, s, strlen(s), path);

	if (rc == 0)
		atrest__secret_free(sec);
	else
		assert_null(sec);
	free(s);
	return rc;
}

static void test_json_take(void **state)
{
	static const char *const top[] = {"k", NULL};
	static const char *const nested[] = {"data", "k", NULL};

	(void)state;
	take_ok("{\"k\":\"abc\"}", top, "abc", "{\"k\":\"xxx\"}");
	take_ok(" { \"a\" : [1, {\"k\":\"no\"}], \"k\" : \"s\\/e\\\\c\\\"r\\n\" } ", top,
		"s/e\\c\"r\n",
		" { \"a\" : [1, {\"k\":\"no\"}], \"k\" : \"xxxxxxxxxxxx\" } ");
	take_ok("{\"k\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}", top,
		"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
		"{\"k\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}");
	take_ok("{\"k\":1,\"data\":{\"x\":null,\"k\":\"tok\"},\"z\":true}", nested, "tok",
		"{\"k\":1,\"data\":{\"x\":null,\"k\":\"xxx\"},\"z\":true}");
	take_ok("{\"k\":\"\"}", top, "", "{\"k\":\"\"}");
	assert_int_equal(take_rc("{\"k\":1}", top), ATREST_ENOTFOUND);
	assert_int_equal(take_rc("{\"data\":{\"j\":\"x\"}}", nested), ATREST_ENOTFOUND);
	assert_int_equal(take_rc("{\"k\":\"a\",\"k\":\"b\"}", top), ATREST_EINVAL);
	assert_int_equal(take_rc("{\"k\":\"a\"", top), ATREST_EINVAL);
	assert_int_equal(take_rc("{\"k\":\"a\"} x", top), ATREST_EINVAL);
	assert_int_equal(take_rc("{\"k\":\"\\x\"}", top), ATREST_EINVAL);
	assert_int_equal(take_rc("{\"k\":\"\\ud83d\"}", top), ATREST_EINVAL);
	assert_int_equal(take_rc("{\"k\":\"\\ude00\"}", top), ATREST_EINVAL);
	assert_int_equal(take_rc("{\"k\":\"a\nb\"}", top), ATREST_EINVAL);
	assert_int_equal(take_rc("[\"k\"]", top), ATREST_ENOTFOUND);
	{
		char deep[200];
		memset(deep, '[', 100);
		memset(deep + 100, ']', 99);
		deep[199] = '\0';
		assert_int_equal(take_rc(deep, top), ATREST_EINVAL);
	}
}

static void test_json_take_b64(void **state)
{
	static const char *const top[] = {"v", NULL};
	char ok[] = "{\"v\":\"AAECAw==\"}", url[] = "{\"v\":\"-_8\"}",
	     bad[] = "{\"v\":\"AA$=\"}";
	char big[] = "{\"v\":\"AAECAwQ=\"}";
	atrest__secret *s;

	(void)state;
	assert_int_equal(atrest__json_take_b64(&s, ok, strlen(ok), top, 4), 0);
	assert_int_equal(s->len, 4);
	assert_memory_equal(s->data, "\0\1\2\3", 4);
	atrest__secret_free(s);
	assert_int_equal(atrest__json_take_b64(&s, url, strlen(url), top, 4), 0);
	assert_memory_equal(s->data, "\xfb\xff", 2);
	atrest__secret_free(s);
	assert_int_equal(
		atrest__json_take_b64(&s, bad, strlen(bad), top, 4), ATREST_EINVAL);
	assert_int_equal(
		atrest__json_take_b64(&s, big, strlen(big), top, 4), ATREST_EINVAL);
}

static void test_b64_and_buf(void **state)
{
	atrest__buf b = ATREST__BUF_LOCKED, p = ATREST__BUF_INIT;
	uint8_t out[16];
	size_t n;

	(void)state;
	for (int i = 0; i < 2000; i++) /* grows through several locked secrets */
		atrest__buf_putc(&b, (char)('a' + i % 26));
	assert_int_equal(atrest__buf_check(&b), 0);
	assert_int_equal(b.len, 2000);
	assert_non_null(b.sec);
	assert_int_equal(b.data[2000], '\0');
	atrest__buf_free(&b);
	atrest__buf_urlenc(&p, "a b/~é", strlen("a b/~é"), 0);
	atrest__buf_putc(&p, '|');
	atrest__buf_urlenc(&p, "a/b", 3, 1);
	atrest__buf_putc(&p, '|');
	atrest__buf_json_str(&p, "q\"\\\x01", 4);
	atrest__buf_putc(&p, '|');
	atrest__buf_b64(&p, (const uint8_t *)"\xfb\xff", 2, 1);
	atrest__buf_putc(&p, '|');
	atrest__buf_b64(&p, (const uint8_t *)"\xfb\xff", 2, 0);
	assert_int_equal(atrest__buf_check(&p), 0);
	assert_string_equal(p.data, "a%20b%2F~%C3%A9|a/b|\"q\\\"\\\\\\u0001\"|-_8|+/8=");
	atrest__buf_free(&p);
	assert_int_equal(atrest__b64_decode(out, sizeof(out), &n, "AAE", 3), 0);
	assert_int_equal(n, 2);
	assert_int_equal(
		atrest__b64_decode(out, sizeof(out), &n, "AAF=", 4), ATREST_EINVAL);
	assert_int_equal(atrest__b64_decode(out, sizeof(out), &n, "A", 1), ATREST_EINVAL);
	assert_int_equal(
		atrest__b64_decode(out, sizeof(out), &n, "AA=", 3), ATREST_EINVAL);
	assert_int_equal(atrest__b64_decode(out, 1, &n, "AAE=", 4), ATREST_EINVAL);
}

/* The keyring's AAD for a role, store id 00..0f and key number id. */
static size_t keyring_aad(uint8_t *aad, const char *role, uint32_t id)
{
	size_t rl = strlen(role);

	memcpy(aad, role, rl);
	for (int i = 0; i < 16; i++)
		aad[rl + i] = (uint8_t)i;
	aad[rl + 16] = (uint8_t)id;
	aad[rl + 17] = (uint8_t)(id >> 8);
	aad[rl + 18] = aad[rl + 19] = 0;
	return rl + 20;
}

static void context_is(const uint8_t *aad, size_t n, const char *want)
{
	atrest__buf b = ATREST__BUF_INIT;

	atrest__aad_context(&b, aad, n);
	assert_int_equal(atrest__buf_check(&b), 0);
	assert_string_equal(b.data, want);
	atrest__buf_free(&b);
}

static void test_aad(void **state)
{
	uint8_t aad[64], bound[64], out[64];
	size_t n = keyring_aad(aad, "atrest/v1 dek", 258), ol;
	const uint8_t key[32] = {1, 2, 3};

	(void)state;
	context_is(aad, n,
		"{\"atrest-role\":\"atrest/v1 dek\",\"atrest-store-id\":"
		"\"000102030405060708090a0b0c0d0e0f\",\"atrest-key-id\":\"258\"}");
	n = keyring_aad(aad, "atrest/v1 check", 0);
	context_is(aad, n,
		"{\"atrest-role\":\"atrest/v1 check\",\"atrest-store-id\":"
		"\"000102030405060708090a0b0c0d0e0f\",\"atrest-key-id\":\"0\"}");
	context_is((const uint8_t *)"atrest/v1 fileABCDEFGHIJKLMNOPQRSTUVWXYZ012345", 46,
		"{\"atrest-aad\":\"YXRyZXN0L3YxIGZpbGVBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWjAxMjM0NQ==\"}");
	context_is((const uint8_t *)"", 0, "{\"atrest-aad\":\"\"}");
	/* bound plaintexts: the digest must match the AAD */
	n = keyring_aad(aad, "atrest/v1 dek", 1);
	assert_int_equal(atrest__aad_bind(bound, key, 32, aad, n), 0);
	assert_int_equal(
		atrest__aad_unbind(out, sizeof(out), &ol, bound, 64, aad, n, "T"), 0);
	assert_int_equal(ol, 32);
	assert_memory_equal(out, key, 32);
	aad[n - 4] = 2; /* another data key number */
	assert_int_equal(
		atrest__aad_unbind(out, sizeof(out), &ol, bound, 64, aad, n, "T"),
		ATREST_EKEY);
	assert_int_equal(
		atrest__aad_unbind(out, sizeof(out), &ol, bound, 63, aad, n, "T"),
		ATREST_EKEY);
	assert_int_equal(atrest__aad_bind(bound, key, 31, aad, n), ATREST_EINVAL);
}

struct fetcher {
	int calls;
	int64_t life;
	int fail;
};

static int fetch(void *arg, atrest__secret **tok, int64_t *life)
{
	struct fetcher *f = arg;
	char s[16];

	if (f->fail)
		return atrest__error(ATREST_EUNAVAILABLE, "no token");
	snprintf(s, sizeof(s), "tok-%d", ++f->calls);
	GUARD(atrest__secret_dup(tok, s, strlen(s) + 1));
	(*tok)->len = strlen(s);
	*life = f->life;
	return 0;
}

static void test_token_cache(void **state)
{
	struct fetcher f = {0, 3600, 0};
	atrest__token t;
	atrest__secret *c;

	(void)state;
	atrest__token_init(&t);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atrest__token_get(&t, &c, 0, fetch, &f), 0);
		assert_string_equal((char *)c->data, "tok-1");
		atrest__secret_free(c);
	}
	assert_int_equal(atrest__token_get(&t, &c, 1, fetch, &f), 0); /* refused: again */
	assert_string_equal((char *)c->data, "tok-2");
	atrest__secret_free(c);
	atrest__clock_offset(3600 - 299); /* less than 5 minutes left */
	assert_int_equal(atrest__token_get(&t, &c, 0, fetch, &f), 0);
	assert_string_equal((char *)c->data, "tok-3");
	atrest__secret_free(c);
	f.life = 10; /* short tokens: refreshed after half their life */
	assert_int_equal(atrest__token_get(&t, &c, 1, fetch, &f), 0);
	atrest__secret_free(c);
	atrest__clock_offset(3600 - 299 + 4);
	assert_int_equal(atrest__token_get(&t, &c, 0, fetch, &f), 0);
	assert_string_equal((char *)c->data, "tok-4");
	atrest__secret_free(c);
	atrest__clock_offset(3600 - 299 + 6);
	assert_int_equal(atrest__token_get(&t, &c, 0, fetch, &f), 0);
	assert_string_equal((char *)c->data, "tok-5");
	atrest__secret_free(c);
	f.fail = 1;
	assert_int_equal(atrest__token_get(&t, &c, 1, fetch, &f), ATREST_EUNAVAILABLE);
	assert_null(c);
	assert_int_equal(t.fetches, 5);
	atrest__clock_offset(0);
	atrest__token_clear(&t);
}

static void test_names(void **state)
{
	char id[128], long_name[400], v[16];

	(void)state;
	atrest__cloud_key_id(id, sizeof(id), "gcp-kms:", "projects/p/keyRings/r");
	assert_string_equal(id, "gcp-kms:projects/p/keyRings/r");
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	atrest__cloud_key_id(id, sizeof(id), "gcp-kms:", long_name);
	assert_int_equal(strlen(id), 127);
	assert_int_equal(id[127 - 17], '~');
	assert_int_equal(
		atrest__uri_param(v, sizeof(v), "x://a?b=1&region=eu%2Dwest&c", "region"),
		1);
	assert_string_equal(v, "eu-west");
	assert_int_equal(atrest__uri_param(v, sizeof(v), "x://a?regionx=1", "region"), 0);
	assert_int_equal(
		atrest__uri_param(v, sizeof(v), "x://a?region=1&region=2", "region"),
		ATREST_EKEY);
	assert_int_equal(atrest__uri_param(v, sizeof(v), "x://a?region=%00", "region"),
		ATREST_EKEY);
	assert_int_equal(
		atrest__uri_param(v, 4, "x://a?region=long", "region"), ATREST_EKEY);
	assert_int_equal(atrest__uri_params_known("x://a?region=1&profile=p",
				 (const char *const[]){"region", "profile", NULL}, "T"),
		0);
	assert_int_equal(atrest__uri_params_known("x://a?region=1&pin=1234",
				 (const char *const[]){"region", NULL}, "T"),
		ATREST_EKEY);
	assert_null(strstr(atrest_error_last()->message, "1234"));
	assert_int_equal(atrest__crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
	assert_int_equal(atrest__crc32c((const uint8_t *)"", 0), 0);
}

static void test_blobs(void **state)
{
	const uint8_t good[] = "\001\004abcdCIPHERTEXT";
	char version[ATREST__AZURE_VERSION_MAX + 1];
	const uint8_t *ct;
	size_t ct_len;
	int format;

	(void)state;
	assert_int_equal(atrest__azure_blob_parse(
				 good, sizeof(good) - 1, &format, version, &ct, &ct_len),
		0);
	assert_int_equal(format, 1);
	assert_string_equal(version, "abcd");
	assert_int_equal(ct_len, 10);
	assert_int_equal(atrest__azure_blob_parse((const uint8_t *)"\003\001aX", 4,
				 &format, version, &ct, &ct_len),
		ATREST_EKEY);
	assert_int_equal(atrest__azure_blob_parse((const uint8_t *)"\001\004abcd", 6,
				 &format, version, &ct, &ct_len),
		ATREST_EKEY);
	assert_int_equal(atrest__azure_blob_parse((const uint8_t *)"\001\002a/X", 5,
				 &format, version, &ct, &ct_len),
		ATREST_EKEY);
	assert_int_equal(
		atrest__vault_blob_check((const uint8_t *)"vault:v12:AAEC+/==", 18), 0);
	assert_int_equal(atrest__vault_blob_check((const uint8_t *)"vault:v:AAEC", 12),
		ATREST_EKEY);
	assert_int_equal(atrest__vault_blob_check((const uint8_t *)"vault:v1:AA\"C", 13),
		ATREST_EKEY);
	assert_int_equal(
		atrest__vault_blob_check((const uint8_t *)"vault:v1", 8), ATREST_EKEY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_take),
		cmocka_unit_test(test_json_take_b64),
		cmocka_unit_test(test_b64_and_buf),
		cmocka_unit_test(test_aad),
		cmocka_unit_test(test_token_cache),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_blobs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
