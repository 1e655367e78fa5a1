/*
 * The object format: committed test vectors for every cipher and size class
 * (tests/vectors/objects.txt), and the promise that any change to any byte,
 * truncation, extension or reordering is an integrity failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "helpers.h"

#define SEG 1024

static const int CIPHERS[] = {ATREST_CIPHER_AES_256_GCM, ATREST_CIPHER_CHACHA20_POLY1305,
	ATREST_CIPHER_AES_256_CBC_HMAC_SHA256};
static const size_t SIZES[] = {0, 1, SEG - 1, SEG, 3 * SEG + 500};

static void fill_hdr(atrest__hdr *h, int cipher, uint64_t seed)
{
	memset(h, 0, sizeof(*h));
	h->form = ATREST__FORM_OBJECT;
	h->cipher = (uint8_t)cipher;
	h->segment_size = SEG;
	h->dek_id = 1;
	th_fill(h->salt, sizeof(h->salt), seed);
	th_fill(h->store_id, sizeof(h->store_id), 7);
	strcpy(h->tenant, "acme");
	strcpy(h->name, "job-42/chk-17/part-3");
}

static uint8_t *seal(size_t *len, int cipher, const uint8_t *dek, const uint8_t *pt,
	size_t pt_len, uint64_t seed)
{
	atrest__hdr h;
	uint8_t *obj;

	fill_hdr(&h, cipher, seed);
	assert_int_equal(atrest__obj_seal_buf(&obj, len, &h, dek, (const uint8_t *)"\0\0",
				 2, pt, pt_len),
		0);
	return obj;
}

static int open_rc(const uint8_t *obj, size_t len, const uint8_t *dek)
{
	atrest__hdr h;
	uint8_t *pt = NULL;
	size_t n;
	int rc = atrest__obj_open_buf(&pt, &n, &h, obj, len, dek);

	free(pt);
	return rc;
}

static void test_round_trip_edges(void **state)
{
	uint8_t dek[32], *pt = malloc(5 * SEG), *obj, *back;
	size_t sizes[] = {0, 1, 15, 16, 17, SEG - 1, SEG, SEG + 1, 2 * SEG - 1, 2 * SEG,
		2 * SEG + 1, 5 * SEG};
	atrest__hdr h;

	(void)state;
	th_fill(dek, 32, 1);
	th_fill(pt, 5 * SEG, 2);
	for (size_t c = 0; c < 3; c++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t len, n;
			obj = seal(&len, CIPHERS[c], dek, pt, sizes[i], i);
			assert_int_equal(
				atrest__obj_open_buf(&back, &n, &h, obj, len, dek), 0);
			assert_int_equal(n, sizes[i]);
			assert_memory_equal(back, pt, n);
			free(back);
			free(obj);
		}
	free(pt);
}

/* Every single-byte change anywhere (header included) is EINTEGRITY. */
static void test_every_byte(void **state)
{
	uint8_t dek[32], pt[SEG + 100];

	(void)state;
	th_fill(dek, 32, 3);
	th_fill(pt, sizeof(pt), 4);
	for (size_t c = 0; c < 3; c++) {
		size_t len;
		uint8_t *obj = seal(&len, CIPHERS[c], dek, pt, sizeof(pt), 9);
		for (size_t i = 0; i < len; i++)
			for (int bit = 0; bit < 8; bit += 7) {
				obj[i] ^= (uint8_t)(1u << bit);
				assert_int_equal(
					open_rc(obj, len, dek), ATREST_EINTEGRITY);
				obj[i] ^= (uint8_t)(1u << bit);
			}
		assert_int_equal(open_rc(obj, len, dek), 0);
		free(obj);
	}
}

static void test_truncate_extend(void **state)
{
	uint8_t dek[32], pt[3 * SEG];

	(void)state;
	th_fill(dek, 32, 5);
	th_fill(pt, sizeof(pt), 6);
	for (size_t c = 0; c < 3; c++) {
		size_t len;
		uint8_t *obj = seal(&len, CIPHERS[c], dek, pt, sizeof(pt), 1);
		uint8_t *big = calloc(1, len + 200);
		for (size_t cut = 0; cut < len; cut++)
			assert_int_equal(open_rc(obj, cut, dek), ATREST_EINTEGRITY);
		memcpy(big, obj, len);
		for (size_t ext = 1; ext <= 200; ext++)
			assert_int_equal(open_rc(big, len + ext, dek), ATREST_EINTEGRITY);
		free(big);
		free(obj);
	}
}

static void test_reorder_and_swap(void **state)
{
	uint8_t dek[32], pt[4 * SEG + 10], tmp[2 * SEG];
	atrest__hdr h;

	(void)state;
	th_fill(dek, 32, 7);
	th_fill(pt, sizeof(pt), 8);
	for (size_t c = 0; c < 3; c++) {
		size_t len, ct = atrest__cipher_ctlen(CIPHERS[c], SEG);
		uint8_t *obj = seal(&len, CIPHERS[c], dek, pt, sizeof(pt), 2);
		assert_int_equal(atrest__hdr_parse(&h, obj, len), 0);
		uint8_t *s0 = obj + h.len + h.meta_len, *s1 = s0 + ct;
		memcpy(tmp, s0, ct);
		memcpy(s0, s1, ct);
		memcpy(s1, tmp, ct);
		assert_int_equal(open_rc(obj, len, dek), ATREST_EINTEGRITY);
		memcpy(s1, s0, ct);
		memcpy(s0, tmp, ct);
		assert_int_equal(open_rc(obj, len, dek), 0);
		/* Drop a whole middle segment. */
		memmove(s1, s1 + ct, len - (size_t)(s1 + ct - obj));
		assert_int_equal(open_rc(obj, len - ct, dek), ATREST_EINTEGRITY);
		free(obj);
	}
}

/* A segment from another object under the same data key does not open. */
static void test_cross_object_splice(void **state)
{
	uint8_t dek[32], pt[2 * SEG];
	atrest__hdr h;

	(void)state;
	th_fill(dek, 32, 10);
	th_fill(pt, sizeof(pt), 11);
	size_t la, lb;
	uint8_t *a = seal(&la, ATREST_CIPHER_AES_256_GCM, dek, pt, sizeof(pt), 20);
	uint8_t *b = seal(&lb, ATREST_CIPHER_AES_256_GCM, dek, pt, sizeof(pt), 21);
	assert_int_equal(la, lb);
	assert_int_equal(atrest__hdr_parse(&h, a, la), 0);
	memcpy(a + h.len + h.meta_len, b + h.len + h.meta_len, SEG + 16);
	assert_int_equal(open_rc(a, la, dek), ATREST_EINTEGRITY);
	free(a);
	free(b);
}

static void test_wrong_dek(void **state)
{
	uint8_t dek[32], other[32], pt[10];
	size_t len;

	(void)state;
	th_fill(dek, 32, 12);
	memcpy(other, dek, 32);
	other[31] ^= 1;
	th_fill(pt, sizeof(pt), 13);
	uint8_t *obj = seal(&len, ATREST_CIPHER_AES_256_GCM, dek, pt, sizeof(pt), 3);
	assert_int_equal(open_rc(obj, len, other), ATREST_EINTEGRITY);
	free(obj);
}

static void test_hdr_parse_hostile(void **state)
{
	uint8_t buf[ATREST__HDR_MAX + 64];
	atrest__hdr h;

	(void)state;
	fill_hdr(&h, ATREST_CIPHER_AES_256_GCM, 1);
	h.meta_len = 18;
	assert_int_equal(atrest__hdr_encode(buf, sizeof(buf), &h), 0);
	/* Bad segment sizes, ciphers, forms (3 is a multipart object), versions,
	 * flags. */
	uint8_t bad[][3] = {{12, 0, 0}, {9, 0, 0}, {9, 4, 0}, {8, 4, 0}, {7, 2, 0},
		{10, 1, 0}, {15, 0xFF, 0}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t copy[sizeof(buf)];
		memcpy(copy, buf, sizeof(buf));
		copy[bad[i][0]] = bad[i][1];
		if (bad[i][0] == 12)
			memset(copy + 12, 0, 4);
		assert_int_equal(
			atrest__hdr_parse(&h, copy, sizeof(copy)), ATREST_EINTEGRITY);
	}
	assert_int_equal(atrest__hdr_parse(&h, buf, 10), ATREST_EINTEGRITY);
	assert_int_equal(atrest__hdr_parse(&h, (const uint8_t *)"plain text here", 15),
		ATREST_EINTEGRITY);
}

static void test_meta_codec(void **state)
{
	atrest_meta_entry e[] = {
		{"job", "42"}, {"ts", "2026-11-22T10:00:00Z"}, {"empty", ""}};
	atrest_meta m = {e, 3}, *none = NULL;
	atrest_meta_entry *out;
	uint8_t *buf;
	size_t len, n;

	(void)state;
	assert_int_equal(atrest__meta_encode(&buf, &len, &m), 0);
	assert_int_equal(atrest__meta_decode(&out, &n, buf, len), 0);
	assert_int_equal(n, 3);
	assert_string_equal(out[1].key, "ts");
	assert_string_equal(out[1].value, "2026-11-22T10:00:00Z");
	assert_string_equal(out[2].value, "");
	free(out);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(
			atrest__meta_decode(&out, &n, buf, cut), ATREST_EINTEGRITY);
	free(buf);
	assert_int_equal(atrest__meta_encode(&buf, &len, none), 0);
	assert_int_equal(len, 2);
	free(buf);
}

/* ---- committed vectors ---- */

typedef struct vec {
	int cipher;
	uint32_t seg;
	char dek[65], salt[65], store[33], tenant[65], name[128];
	char *meta, *pt, *obj;
} vec;

/* Writes tests/vectors/objects.txt; run with ATREST_GEN_VECTORS=1. */
static void generate(const char *path)
{
	FILE *f = fopen(path, "w");
	uint8_t dek[32], pt[3 * SEG + 500];
	static const uint8_t meta[] = {1, 0, 3, 0, 'j', 'o', 'b', 2, 0, 0, 0, '4', '2'};

	assert_non_null(f);
	fprintf(f,
		"# atrest object test vectors (docs/FORMAT.md). One blank-line-"
		"separated record each.\n# Generated once; never regenerate for a "
		"released format version.\n\n");
	th_fill(dek, 32, 100);
	th_fill(pt, sizeof(pt), 101);
	for (size_t c = 0; c < 3; c++)
		for (size_t i = 0; i < sizeof(SIZES) / sizeof(SIZES[0]); i++) {
			atrest__hdr h;
			uint8_t *obj;
			size_t len, ml = (i == 2) ? sizeof(meta) : 2;
			fill_hdr(&h, CIPHERS[c], 200 + i);
			assert_int_equal(atrest__obj_seal_buf(&obj, &len, &h, dek,
						 i == 2 ? meta : (const uint8_t *)"\0\0",
						 ml, pt, SIZES[i]),
				0);
			char *d = th_hex(dek, 32), *s = th_hex(h.salt, 32),
			     *sid = th_hex(h.store_id, 16);
			char *m = th_hex(i == 2 ? meta : (const uint8_t *)"\0\0", ml);
			char *p = th_hex(pt, SIZES[i]), *o = th_hex(obj, len);
			fprintf(f,
				"cipher = %s\nsegment_size = %u\ndata_key = %s\nsalt = %s\n"
				"store_id = %s\ntenant = %s\nname = %s\nmetadata = %s\n"
				"plaintext = %s\nobject = %s\n\n",
				atrest_cipher_name(CIPHERS[c]), SEG, d, s, sid, h.tenant,
				h.name, m, p, o);
			free(d), free(s), free(sid), free(m), free(p), free(o), free(obj);
		}
	fclose(f);
}

static char *field(char *line, const char *key)
{
	size_t kl = strlen(key);

	if (strncmp(line, key, kl) || strncmp(line + kl, " = ", 3))
		return NULL;
	line[strcspn(line, "\n")] = '\0';
	return line + kl + 3;
}

static void check_vector(const vec *v)
{
	size_t n, dl, sl, idl, ml, pl, ol, len;
	uint8_t *dek = th_unhex(v->dek, &dl), *salt = th_unhex(v->salt, &sl);
	uint8_t *sid = th_unhex(v->store, &idl), *meta = th_unhex(v->meta, &ml);
	uint8_t *pt = th_unhex(v->pt, &pl), *obj = th_unhex(v->obj, &ol), *out, *back;
	atrest__hdr h;

	memset(&h, 0, sizeof(h));
	h.form = ATREST__FORM_OBJECT;
	h.cipher = (uint8_t)v->cipher;
	h.segment_size = v->seg;
	h.dek_id = 1;
	memcpy(h.salt, salt, 32);
	memcpy(h.store_id, sid, 16);
	strcpy(h.tenant, v->tenant);
	strcpy(h.name, v->name);
	assert_int_equal(atrest__obj_seal_buf(&out, &len, &h, dek, meta, ml, pt, pl), 0);
	assert_int_equal(len, ol);
	assert_memory_equal(out, obj, ol);
	assert_int_equal(atrest__obj_open_buf(&back, &n, &h, obj, ol, dek), 0);
	assert_int_equal(n, pl);
	if (pl)
		assert_memory_equal(back, pt, pl);
	free(dek), free(salt), free(sid), free(meta), free(pt), free(obj);
	free(out), free(back);
}

static void test_vectors(void **state)
{
	static char line[1 << 17];
	char path[512];
	FILE *f;
	vec v;
	int count = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/objects.txt", ATREST_VECTORS_DIR);
	if (getenv("ATREST_GEN_VECTORS"))
		generate(path);
	f = fopen(path, "r");
	assert_non_null(f);
	memset(&v, 0, sizeof(v));
	while (fgets(line, sizeof(line), f)) {
		char *x;
		if ((x = field(line, "cipher")))
			v.cipher = atrest_cipher_from_name(x);
		else if ((x = field(line, "segment_size")))
			v.seg = (uint32_t)atoi(x);
		else if ((x = field(line, "data_key")))
			snprintf(v.dek, sizeof(v.dek), "%s", x);
		else if ((x = field(line, "salt")))
			snprintf(v.salt, sizeof(v.salt), "%s", x);
		else if ((x = field(line, "store_id")))
			snprintf(v.store, sizeof(v.store), "%s", x);
		else if ((x = field(line, "tenant")))
			snprintf(v.tenant, sizeof(v.tenant), "%s", x);
		else if ((x = field(line, "name")))
			snprintf(v.name, sizeof(v.name), "%s", x);
		else if ((x = field(line, "metadata")))
			v.meta = strdup(x);
		else if ((x = field(line, "plaintext")))
			v.pt = strdup(x);
		else if ((x = field(line, "object"))) {
			v.obj = strdup(x);
			check_vector(&v);
			free(v.meta), free(v.pt), free(v.obj);
			memset(&v, 0, sizeof(v));
			count++;
		}
	}
	fclose(f);
	assert_int_equal(count, 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_round_trip_edges),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_truncate_extend),
		cmocka_unit_test(test_reorder_and_swap),
		cmocka_unit_test(test_cross_object_splice),
		cmocka_unit_test(test_wrong_dek),
		cmocka_unit_test(test_hdr_parse_hostile),
		cmocka_unit_test(test_meta_codec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
