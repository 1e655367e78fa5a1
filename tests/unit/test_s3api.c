/*
 * Unit tests of the S3 API's body decoding and request XML (src/server):
 * aws-chunked bodies with chunk signatures made by the project's SigV4
 * signer (decoded whole and byte by byte; a changed byte, a broken chain,
 * a truncation refused), unsigned bodies with a checksum trailer, the
 * CRC-32 and CRC-32C check values, and the DeleteObjects and
 * CompleteMultipartUpload parsers (entities never expanded, DTDs refused).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/s3_chunked.h"
#include "../../src/server/s3_xml.h"
#include "helpers.h"
#include "sigv4.h"

#define DATE "20130524T000000Z"
#define SCOPE "20130524/us-east-1/s3/aws4_request"
#define SEED "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"

static const uint8_t key[32] = {7, 1, 2, 3};

struct out {
	uint8_t buf[70000];
	size_t n;
};

static int collect(void *payload, const void *buf, size_t len)
{
	struct out *o = payload;

	if (o->n + len > sizeof(o->buf))
		return -1;
	memcpy(o->buf + o->n, buf, len);
	o->n += len;
	return 0;
}

static void hex_sha256(char out[65], const uint8_t *p, size_t n)
{
	uint8_t d[32];
	unsigned int len = 32;

	assert_int_equal(EVP_Digest(p, n, d, &len, EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* An aws-chunked body of data in pieces of size, signed from SEED. */
static size_t signed_body(char *body, const uint8_t *data, size_t n, size_t size)
{
	char prev[65] = SEED, sig[65], h[65];
	size_t off = 0, len = 0;

	for (;;) {
		size_t m = n - off < size ? n - off : size;

		hex_sha256(h, data + off, m);
		assert_int_equal(
			atrest__sigv4_chunk_signature(sig, key, DATE, SCOPE, prev, h), 0);
		memcpy(prev, sig, 65);
		len += (size_t)sprintf(body + len, "%zx;chunk-signature=%s\r\n", m, sig);
		memcpy(body + len, data + off, m);
		len += m;
		memcpy(body + len, "\r\n", 2);
		len += 2;
		off += m;
		if (m == 0)
			return len;
	}
}

static int decode(struct out *o, const char *body, size_t len, size_t step,
	const uint8_t *k, const char *trailer, const char **code)
{
	struct s3_chunked c;
	int rc = 0;

	o->n = 0;
	assert_int_equal(
		s3_chunked_init(&c, k, DATE, SCOPE, SEED, trailer, collect, o), 0);
	for (size_t i = 0; i < len && rc == 0; i += step)
		rc = s3_chunked_feed(&c, body + i, len - i < step ? len - i : step);
	if (rc == 0)
		rc = s3_chunked_finish(&c);
	*code = c.code;
	s3_chunked_free(&c);
	return rc;
}

static void test_signed_chunks(void **state)
{
	static uint8_t data[66560];
	static char body[70000];
	struct out *o = malloc(sizeof(*o));
	const char *code;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	len = signed_body(body, data, sizeof(data), 65536);
	assert_int_equal(decode(o, body, len, len, key, NULL, &code), 0);
	assert_int_equal(o->n, sizeof(data));
	assert_memory_equal(o->buf, data, sizeof(data));
	assert_int_equal(decode(o, body, len, 1, key, NULL, &code), 0);
	assert_memory_equal(o->buf, data, sizeof(data));
	/* A changed data byte breaks that chunk's signature. */
	body[len / 2] ^= 1;
	assert_int_equal(decode(o, body, len, 4096, key, NULL, &code), -1);
	assert_string_equal(code, "SignatureDoesNotMatch");
	body[len / 2] ^= 1;
	/* Another key; a truncated body; unsigned decoding of a signed body. */
	assert_int_equal(
		decode(o, body, len, len,
			(const uint8_t *)"other key of 32 bytes..........", NULL, &code),
		-1);
	assert_string_equal(code, "SignatureDoesNotMatch");
	assert_int_equal(decode(o, body, len - 3, len, key, NULL, &code), -1);
	assert_string_equal(code, "IncompleteBody");
	assert_int_equal(decode(o, body, len, len, NULL, NULL, &code), -1);
	free(o);
}

static void test_chunk_chain(void **state)
{
	static uint8_t data[300];
	static char a[2000], b[2000];
	struct out o;
	const char *code;
	size_t la, lb;
	char *sa, *sb;

	(void)state;
	memset(data, 'x', sizeof(data));
	la = signed_body(a, data, sizeof(data), 100);
	lb = signed_body(b, data, sizeof(data), 150);
	/* Chunks reordered or spliced from another body fail the chain. */
	sa = strstr(a + 1, "64;chunk-signature=");
	sb = strstr(b, "96;chunk-signature=");
	assert_non_null(sa);
	assert_non_null(sb);
	memcpy(sa + 19, sb + 19, 64);
	assert_int_equal(decode(&o, a, la, 7, key, NULL, &code), -1);
	assert_string_equal(code, "SignatureDoesNotMatch");
	(void)lb;
}

static void test_trailer(void **state)
{
	const char ok[] = "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
	const char extra[] = "5\r\nhello\r\n0\r\nx-amz-checksum-sha256:AAAA\r\n\r\n";
	const char lf[] = "5\nhello\n0\n\n";
	struct out o;
	const char *code;
	struct s3_chunked c;

	(void)state;
	assert_int_equal(
		decode(&o, ok, sizeof(ok) - 1, 3, NULL, "x-amz-checksum-crc32", &code),
		0);
	assert_int_equal(o.n, 5);
	assert_int_equal(s3_crc32(0, "hello", 5), 0x3610a686u); /* NhCmhg== */
	assert_int_equal(decode(&o, extra, sizeof(extra) - 1, 64, NULL,
				 "x-amz-checksum-crc32", &code),
		-1);
	assert_int_equal(decode(&o, ok, sizeof(ok) - 1, 64, NULL, NULL, &code), -1);
	assert_int_equal(decode(&o, lf, sizeof(lf) - 1, 64, NULL, NULL, &code), -1);
	assert_string_equal(code, "IncompleteBody");
	/* The trailer's value is what the caller compares. */
	assert_int_equal(s3_chunked_init(&c, NULL, DATE, SCOPE, SEED,
				 "x-amz-checksum-crc32", collect, &o),
		0);
	o.n = 0;
	assert_int_equal(s3_chunked_feed(&c, ok, sizeof(ok) - 1), 0);
	assert_int_equal(s3_chunked_finish(&c), 0);
	assert_string_equal(c.trailer_value, "NhCmhg==");
	s3_chunked_free(&c);
}

static void test_crc(void **state)
{
	(void)state;
	/* The check values of the two CRCs: the CRC of "123456789". */
	assert_int_equal(s3_crc32(0, "123456789", 9), 0xCBF43926u);
	assert_int_equal(s3_crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(s3_crc32(s3_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

static int add_key(const char *k, void *payload)
{
	char *all = payload;

	strcat(all, k);
	strcat(all, "|");
	return 0;
}

static int add_part(uint32_t n, const char *etag, void *payload)
{
	char *all = payload;

	sprintf(all + strlen(all), "%u=%s|", n, etag);
	return 0;
}

static void test_xml(void **state)
{
	const char del[] =
		"<?xml version=\"1.0\"?><Delete xmlns=\"http://s3.amazonaws.com/"
		"doc/2006-03-01/\"><Quiet>true</Quiet><Object><Key>a b</Key>"
		"</Object><Object><Key>x&amp;y</Key></Object></Delete>";
	const char bomb[] = "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaa\">]>"
			    "<Delete><Object><Key>&a;</Key></Object></Delete>";
	const char cmp[] = "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber>"
			   "<ETag>\"abc\"</ETag></Part><Part><PartNumber>7</PartNumber>"
			   "<ETag>def</ETag></Part></CompleteMultipartUpload>";
	const char bad[] = "<CompleteMultipartUpload><Part><PartNumber>0</PartNumber>"
			   "<ETag>x</ETag></Part></CompleteMultipartUpload>";
	char all[256] = "";
	int quiet;

	(void)state;
	assert_int_equal(s3_xml_delete(del, sizeof(del) - 1, &quiet, add_key, all), 0);
	assert_true(quiet);
	assert_string_equal(all, "a b|x&y|");
	all[0] = '\0';
	assert_int_equal(s3_xml_delete(bomb, sizeof(bomb) - 1, &quiet, add_key, all), -1);
	assert_string_equal(all, "");
	assert_int_equal(s3_xml_delete("<Delete/>", 9, &quiet, add_key, all), -1);
	assert_int_equal(s3_xml_delete(cmp, sizeof(cmp) - 1, &quiet, add_key, all), -1);
	assert_int_equal(s3_xml_complete(cmp, sizeof(cmp) - 1, add_part, all), 0);
	assert_string_equal(all, "2=abc|7=def|");
	assert_int_equal(s3_xml_complete(bad, sizeof(bad) - 1, add_part, all), -1);
	assert_int_equal(s3_xml_complete("<x", 2, add_part, all), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signed_chunks),
		cmocka_unit_test(test_chunk_chain),
		cmocka_unit_test(test_trailer),
		cmocka_unit_test(test_crc),
		cmocka_unit_test(test_xml),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
