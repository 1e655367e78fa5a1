/*
 * Unit tests of KMIP's TTLV codec (src/lib/keyprov/ttlv.c): the encodings
 * given as examples in the KMIP 1.4 specification (section 9.1.2), round
 * trips, the response checker, and the decoder's refusals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/errors.h"
#include "helpers.h"

#ifdef ATREST_WITH_KMIP
#include "keyprov/ttlv.h"

static void expect_bytes(atrest__ttlv_enc *e, const char *hex)
{
	size_t n = strlen(hex) / 2;
	uint8_t *want = malloc(n);

	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &want[i]);
	assert_int_equal(atrest__ttlv_finish(e), 0);
	assert_int_equal(e->len, n);
	assert_memory_equal(e->b, want, n);
	free(want);
	atrest__ttlv_enc_free(e);
}

/* The specification's examples, tag 0x420020 throughout. */
static void test_spec_encodings(void **state)
{
	atrest__ttlv_enc e = {0};
	static const uint8_t big[] = {
		0x03, 0xFD, 0x35, 0xEB, 0x6B, 0xC2, 0xDF, 0x46, 0x18, 0x08, 0x00, 0x00};
	static const uint8_t bytes[] = {1, 2, 3};

	(void)state;
	atrest__ttlv_int(&e, 0x420020, 8);
	expect_bytes(&e, "42002002000000040000000800000000");
	atrest__ttlv_long(&e, 0x420020, 123456789000000000LL);
	expect_bytes(&e, "420020030000000801B69B4BA5749200");
	atrest__ttlv_bigint(&e, 0x420020, big, sizeof(big));
	expect_bytes(&e, "42002004000000100000000003FD35EB6BC2DF4618080000");
	atrest__ttlv_enum(&e, 0x420020, 255);
	expect_bytes(&e, "4200200500000004000000FF00000000");
	atrest__ttlv_bool(&e, 0x420020, 1);
	expect_bytes(&e, "42002006000000080000000000000001");
	atrest__ttlv_text(&e, 0x420020, "Hello World", 11);
	expect_bytes(&e, "420020070000000B48656C6C6F20576F726C640000000000");
	atrest__ttlv_bytes(&e, 0x420020, bytes, 3);
	expect_bytes(&e, "42002008000000030102030000000000");
	atrest__ttlv_datetime(&e, 0x420020, 0x47DA67F8);
	expect_bytes(&e, "42002009000000080000000047DA67F8");
	atrest__ttlv_interval(&e, 0x420020, 864000);
	expect_bytes(&e, "4200200A00000004000D2F0000000000");
	atrest__ttlv_begin(&e, 0x420020);
	atrest__ttlv_enum(&e, 0x420004, 254);
	atrest__ttlv_int(&e, 0x420005, 255);
	atrest__ttlv_end(&e);
	expect_bytes(&e,
		"42002001000000204200040500000004000000FE000000004200050200000004"
		"000000FF00000000");
}

static void test_round_trip(void **state)
{
	atrest__ttlv_enc e = {0};
	atrest__ttlv_doc doc;
	const atrest__ttlv *s, *n;
	const uint8_t *p;
	const char *t;
	size_t len;
	int32_t v;
	int64_t l;
	uint32_t en;
	int b;

	(void)state;
	atrest__ttlv_begin(&e, 0x420001);
	atrest__ttlv_int(&e, 0x420002, -5);
	atrest__ttlv_long(&e, 0x420003, -7);
	atrest__ttlv_enum(&e, 0x420004, 9);
	atrest__ttlv_bool(&e, 0x420005, 1);
	atrest__ttlv_text(&e, 0x420006, "abc", 3);
	atrest__ttlv_bytes(&e, 0x420007, (const uint8_t *)"\0\1", 2);
	atrest__ttlv_end(&e);
	assert_int_equal(atrest__ttlv_finish(&e), 0);
	assert_int_equal(atrest__ttlv_parse(&doc, e.b, e.len), 0);
	s = &doc.n[0];
	assert_int_equal(
		atrest__ttlv_get_int(atrest__ttlv_child(&doc, s, 0x420002), &v), 0);
	assert_int_equal(v, -5);
	assert_int_equal(
		atrest__ttlv_get_long(atrest__ttlv_child(&doc, s, 0x420003), &l), 0);
	assert_int_equal(l, -7);
	assert_int_equal(
		atrest__ttlv_get_enum(atrest__ttlv_child(&doc, s, 0x420004), &en), 0);
	assert_int_equal(en, 9);
	assert_int_equal(
		atrest__ttlv_get_bool(atrest__ttlv_child(&doc, s, 0x420005), &b), 0);
	assert_int_equal(b, 1);
	n = atrest__ttlv_child(&doc, s, 0x420006);
	assert_int_equal(atrest__ttlv_get_text(n, &t, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(t, "abc", 3);
	/* A reader of the wrong type refuses. */
	assert_int_equal(atrest__ttlv_get_bytes(n, &p, &len), -1);
	assert_null(atrest__ttlv_child(&doc, s, 0x420099));
	atrest__ttlv_doc_free(&doc);
	atrest__ttlv_enc_free(&e);
}

static int parse_hex(const char *hex)
{
	uint8_t buf[256];
	size_t n = strlen(hex) / 2;
	atrest__ttlv_doc doc;
	int rc;

	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &buf[i]);
	rc = atrest__ttlv_parse(&doc, buf, n);
	if (rc == 0)
		atrest__ttlv_doc_free(&doc);
	return rc;
}

static void test_refusals(void **state)
{
	(void)state;
	assert_int_equal(parse_hex("42002002000000040000000800000000"), 0);
	/* Integer of length 8, boolean 2, unknown type, trailing bytes. */
	assert_int_equal(
		parse_hex("42002002000000080000000800000000"), ATREST_EINTEGRITY);
	assert_int_equal(
		parse_hex("42002006000000080000000000000002"), ATREST_EINTEGRITY);
	assert_int_equal(
		parse_hex("42002011000000040000000800000000"), ATREST_EINTEGRITY);
	assert_int_equal(
		parse_hex("4200200200000004000000080000000000"), ATREST_EINTEGRITY);
	/* Truncated, a length past the end, a structure past its parent. */
	assert_int_equal(parse_hex("420020020000000400000008"), ATREST_EINTEGRITY);
	assert_int_equal(parse_hex("42002008000000FF01020300000000"), ATREST_EINTEGRITY);
	assert_int_equal(parse_hex("420020010000000842000402000000040000000100000000"),
		ATREST_EINTEGRITY);
	/* A tag outside KMIP's ranges, an unaligned structure. */
	assert_int_equal(
		parse_hex("10002002000000040000000800000000"), ATREST_EINTEGRITY);
	assert_int_equal(parse_hex("42002001000000044200"), ATREST_EINTEGRITY);
	assert_int_equal(parse_hex(""), ATREST_EINTEGRITY);
}

static void test_depth(void **state)
{
	atrest__ttlv_enc e = {0};
	uint8_t buf[8 * 40];
	atrest__ttlv_doc doc;

	(void)state;
	/* The encoder refuses to nest deeper than the decoder accepts. */
	for (int i = 0; i < TTLV_MAX_DEPTH + 1; i++)
		atrest__ttlv_begin(&e, 0x420001);
	assert_int_not_equal(atrest__ttlv_finish(&e), 0);
	atrest__ttlv_enc_free(&e);
	/* 40 nested structures, each claiming the rest. */
	for (int i = 0; i < 40; i++) {
		uint32_t len = (uint32_t)(8 * (39 - i));
		uint8_t *p = buf + 8 * i;
		p[0] = 0x42, p[1] = 0, p[2] = 1, p[3] = TTLV_STRUCT;
		p[4] = (uint8_t)(len >> 24), p[5] = (uint8_t)(len >> 16);
		p[6] = (uint8_t)(len >> 8), p[7] = (uint8_t)len;
	}
	assert_int_equal(atrest__ttlv_parse(&doc, buf, sizeof(buf)), ATREST_EINTEGRITY);
}

/* A response in the shape PyKMIP sends, and ones the checker refuses. */
static void test_response(void **state)
{
	atrest__ttlv_enc e = {0};
	atrest__kmip_result res;
	atrest__ttlv_doc doc;

	(void)state;
	atrest__ttlv_begin(&e, KMIP_TAG_RESPONSE_MESSAGE);
	atrest__ttlv_begin(&e, KMIP_TAG_RESPONSE_HEADER);
	atrest__ttlv_int(&e, KMIP_TAG_BATCH_COUNT, 1);
	atrest__ttlv_end(&e);
	atrest__ttlv_begin(&e, KMIP_TAG_BATCH_ITEM);
	atrest__ttlv_enum(&e, KMIP_TAG_OPERATION, KMIP_OP_DECRYPT);
	atrest__ttlv_enum(&e, KMIP_TAG_RESULT_STATUS, 1);
	atrest__ttlv_enum(&e, KMIP_TAG_RESULT_REASON, KMIP_REASON_PERMISSION_DENIED);
	atrest__ttlv_text(&e, KMIP_TAG_RESULT_MESSAGE, "no\n", 3);
	atrest__ttlv_end(&e);
	atrest__ttlv_end(&e);
	assert_int_equal(atrest__ttlv_finish(&e), 0);
	assert_int_equal(atrest__ttlv_parse(&doc, e.b, e.len), 0);
	assert_int_equal(atrest__kmip_response(&res, &doc, KMIP_OP_DECRYPT), 0);
	assert_int_equal(res.status, 1);
	assert_int_equal(res.reason, KMIP_REASON_PERMISSION_DENIED);
	assert_string_equal(res.message, "no?");
	assert_null(res.payload);
	/* An answer to another operation is refused. */
	assert_int_equal(
		atrest__kmip_response(&res, &doc, KMIP_OP_ENCRYPT), ATREST_EINTEGRITY);
	atrest__ttlv_doc_free(&doc);
	atrest__ttlv_enc_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_encodings),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_response),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void)
{
	puts("KMIP is not built in (ATREST_WITH_KMIP=OFF): no codec to test");
	return 0;
}
#endif
