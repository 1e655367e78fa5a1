/*
 * Compact records: API round trips and tampering, the 32-byte overhead, and
 * the record construction of docs/FORMAT.md section 3 computed here by hand
 * (tests/vectors/records.txt), checked against record.c in both directions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/atrest.h"
#include "crypto.h"
#include "helpers.h"
#include "store_int.h"

static uint8_t KEY[32];

static atrest_store *open_store(const char *dir, int cipher)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;

	o.path = dir;
	o.create = 1;
	o.cipher = cipher;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	return st;
}

/*
 * FORMAT.md section 3, from the primitives: version 2 (form 0xC0, the
 * cipher in the key derivation) or version 1 (form 0xB0, read only).
 */
static void spec_seal(uint8_t *out, int version, int cipher, const uint8_t *dek,
	uint32_t id, const uint8_t *store_id, const char *ns, const uint8_t *nonce,
	const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t len)
{
	uint8_t info[300], key[32], aad[16 + 64];
	size_t il = 16;
	atrest__aead *a;

	memcpy(info, version == 2 ? "atrest/v2 record" : "atrest/v1 record", 16);
	if (version == 2)
		info[il++] = (uint8_t)cipher;
	memcpy(info + il, ns, strlen(ns));
	il += strlen(ns);
	assert_int_equal(atrest__hkdf(key, 32, store_id, 16, dek, 32, info, il), 0);
	out[0] = (uint8_t)((version == 2 ? 0xC0 : 0xB0) | cipher);
	out[1] = (uint8_t)id;
	out[2] = (uint8_t)(id >> 8);
	out[3] = (uint8_t)(id >> 16);
	memcpy(out + 4, nonce, 12);
	memcpy(aad, out, 16);
	memcpy(aad + 16, ad, ad_len);
	assert_int_equal(atrest__aead_new(&a, cipher, key, 32), 0);
	assert_int_equal(
		atrest__aead_seal(a, out + 16, nonce, aad, 16 + ad_len, pt, len), 0);
	atrest__aead_free(a);
}

static void test_round_trip_and_overhead(void **state)
{
	char dir[256];
	uint8_t pt[1024], rec[1024 + 32], back[1024 + 32];
	size_t sizes[] = {0, 1, 64, 100, 512, 1024}, n, m;

	(void)state;
	th_fill(pt, sizeof(pt), 1);
	for (int c = 1; c <= 3; c++) {
		th_tmpdir(dir, sizeof(dir));
		atrest_store *st = open_store(dir, c);
		atrest_recorder *r;
		assert_int_equal(atrest_recorder_open(&r, st, "orders"), 0);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			assert_int_equal(atrest_record_seal(r, rec, sizeof(rec), &n, pt,
						 sizes[i], "k1", 2),
				0);
			assert_int_equal(n, sizes[i] + ATREST_RECORD_OVERHEAD);
			assert_int_equal(atrest_record_open(r, back, sizeof(back), &m,
						 rec, n, "k1", 2),
				0);
			assert_int_equal(m, sizes[i]);
			assert_memory_equal(back, pt, m);
		}
		atrest_recorder_close(r);
		atrest_store_close(st);
		th_rmrf(dir);
	}
}

static void test_tamper_ad_namespace(void **state)
{
	char dir[256];
	uint8_t pt[200], rec[232], back[232];
	size_t n, m;
	atrest_recorder *r, *other;

	(void)state;
	th_fill(pt, sizeof(pt), 2);
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, 0);
	assert_int_equal(atrest_recorder_open(&r, st, "orders"), 0);
	assert_int_equal(atrest_recorder_open(&other, st, "users"), 0);
	assert_int_equal(
		atrest_record_seal(r, rec, sizeof(rec), &n, pt, sizeof(pt), "row-7", 5),
		0);
	/* Any bit of form, nonce, ciphertext or tag: integrity failure. */
	for (size_t i = 0; i < n; i++) {
		if (i >= 1 && i < 4)
			continue;
		rec[i] ^= 0x01;
		assert_int_equal(
			atrest_record_open(r, back, sizeof(back), &m, rec, n, "row-7", 5),
			ATREST_EINTEGRITY);
		rec[i] ^= 0x01;
	}
	/* The key id names a key this store does not have: never a success. */
	for (size_t i = 1; i < 4; i++) {
		rec[i] ^= 0x01;
		assert_true(atrest_record_open(
				    r, back, sizeof(back), &m, rec, n, "row-7", 5) < 0);
		rec[i] ^= 0x01;
	}
	assert_int_equal(
		atrest_record_open(r, back, sizeof(back), &m, rec, n, "row-8", 5),
		ATREST_EINTEGRITY);
	assert_int_equal(
		atrest_record_open(other, back, sizeof(back), &m, rec, n, "row-7", 5),
		ATREST_EINTEGRITY);
	for (size_t cut = 0; cut < n; cut++)
		assert_true(atrest_record_open(
				    r, back, sizeof(back), &m, rec, cut, "row-7", 5) < 0);
	/* Output is wiped when authentication fails. */
	memset(back, 0xAA, sizeof(back));
	rec[n - 1] ^= 1;
	assert_int_equal(
		atrest_record_open(r, back, sizeof(back), &m, rec, n, "row-7", 5),
		ATREST_EINTEGRITY);
	for (size_t i = 0; i < sizeof(pt); i++)
		assert_int_equal(back[i], 0);
	assert_int_equal(m, 0);
	atrest_recorder_close(r);
	atrest_recorder_close(other);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* Nonces of one recorder never repeat. */
static void test_nonces_distinct(void **state)
{
	char dir[256];
	uint8_t rec[64 + 32], first[12];
	size_t n;
	atrest_recorder *r;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, 0);
	assert_int_equal(atrest_recorder_open(&r, st, "t"), 0);
	assert_int_equal(atrest_record_seal(r, rec, sizeof(rec), &n, "x", 1, NULL, 0), 0);
	memcpy(first, rec + 4, 12);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(
			atrest_record_seal(r, rec, sizeof(rec), &n, "x", 1, NULL, 0), 0);
		assert_memory_not_equal(rec + 4, first, 12);
	}
	atrest_recorder_close(r);
	atrest_store_close(st);
	th_rmrf(dir);
}

/*
 * record.c agrees with the construction of FORMAT.md, both ways: it writes
 * version 2 and opens both versions.
 */
static void test_matches_spec(void **state)
{
	char dir[256];
	uint8_t pt[100], rec[132], spec[132], back[132];
	uint8_t dek[32];
	size_t n, m;
	atrest_recorder *r;

	(void)state;
	th_fill(pt, sizeof(pt), 3);
	for (int c = 1; c <= 2; c++) {
		th_tmpdir(dir, sizeof(dir));
		atrest_store *st = open_store(dir, c);
		uint32_t id;
		assert_int_equal(atrest_recorder_open(&r, st, "ns"), 0);
		assert_int_equal(atrest_record_seal(r, rec, sizeof(rec), &n, pt,
					 sizeof(pt), "ad", 2),
			0);
		id = (uint32_t)rec[1] | (uint32_t)rec[2] << 8 | (uint32_t)rec[3] << 16;
		assert_int_equal(atrest__store_dek(st, id, dek), 0);
		spec_seal(spec, 2, c, dek, id, st->store_id, "ns", rec + 4,
			(const uint8_t *)"ad", 2, pt, sizeof(pt));
		assert_memory_equal(spec, rec, n);
		for (int v = 1; v <= 2; v++) {
			spec[20] ^= 0xFF; /* a new nonce: spec-built records open */
			spec_seal(spec, v, c, dek, id, st->store_id, "ns", spec + 4,
				(const uint8_t *)"ad", 2, pt, sizeof(pt));
			memset(back, 0, sizeof(back));
			assert_int_equal(atrest_record_open(r, back, sizeof(back), &m,
						 spec, n, "ad", 2),
				0);
			assert_memory_equal(back, pt, sizeof(pt));
		}
		atrest_recorder_close(r);
		atrest_store_close(st);
		th_rmrf(dir);
	}
}

/*
 * New records are version 2 (form 0xC0: the cipher is in the key
 * derivation).  A record relabelled to the other version or cipher does
 * not open, nor does any other form nibble.
 */
static void test_version_and_cipher(void **state)
{
	uint8_t pt[64] = {4}, gcm[96], back[96];
	char dir[256];
	size_t m;
	atrest_recorder *r;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, 1);
	assert_int_equal(atrest_recorder_open(&r, st, "ns"), 0);
	assert_int_equal(
		atrest_record_seal(r, gcm, sizeof(gcm), &m, pt, sizeof(pt), NULL, 0), 0);
	assert_int_equal(gcm[0], 0xC1);
	for (int form = 0xB0; form <= 0xC0; form += 0x10)
		for (int c = 1; c <= 2; c++) {
			uint8_t tweaked[96];
			memcpy(tweaked, gcm, m);
			tweaked[0] = (uint8_t)(form | c);
			assert_int_equal(atrest_record_open(r, back, sizeof(back), &m,
						 tweaked, sizeof(pt) + 32, NULL, 0),
				form == 0xC0 && c == 1 ? 0 : ATREST_EINTEGRITY);
			m = sizeof(pt) + 32;
		}
	/* Other form nibbles are not records. */
	gcm[0] = 0xD1;
	assert_int_equal(atrest_record_open(r, back, sizeof(back), &m, gcm,
				 sizeof(pt) + 32, NULL, 0),
		ATREST_EINTEGRITY);
	atrest_recorder_close(r);
	atrest_store_close(st);
	th_rmrf(dir);
}

static void hexline(FILE *f, const char *k, const uint8_t *b, size_t n)
{
	fprintf(f, "%s = ", k);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
	fputc('\n', f);
}

/* The committed vectors: regenerated only with ATREST_GEN_VECTORS=1. */
static void test_vectors(void **state)
{
	char path[512];
	static const size_t sizes[] = {0, 64, 200};
	uint8_t dek[32], sid[16], nonce[12], pt[200], rec[232];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/records.txt", ATREST_VECTORS_DIR);
	th_fill(dek, 32, 300);
	th_fill(sid, 16, 301);
	th_fill(pt, sizeof(pt), 302);
	if (getenv("ATREST_GEN_VECTORS")) {
		f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f,
			"# atrest compact record vectors (docs/FORMAT.md section 3): "
			"version 2 (written\n# today) and version 1 (still read). One "
			"blank-line-separated record each.\n\n");
		for (int v = 2; v >= 1; v--)
			for (int c = 1; c <= 2; c++)
				for (size_t i = 0; i < 3; i++) {
					th_fill(nonce, 12, 400 + i);
					spec_seal(rec, v, c, dek, 5, sid, "orders", nonce,
						(const uint8_t *)"row-7", 5, pt,
						sizes[i]);
					fprintf(f,
						"version = %d\ncipher = %s\n"
						"data_key_id = 5\n",
						v, atrest_cipher_name(c));
					hexline(f, "data_key", dek, 32);
					hexline(f, "store_id", sid, 16);
					fprintf(f,
						"namespace = orders\nad = "
						"726f772d37\n");
					hexline(f, "plaintext", pt, sizes[i]);
					hexline(f, "record", rec, sizes[i] + 32);
					fputc('\n', f);
				}
		fclose(f);
	}
	/* Each committed record must equal the construction recomputed now. */
	size_t len;
	char *text = (char *)th_read_file(path, &len);
	assert_non_null(text);
	int count = 0;
	for (int v = 1; v <= 2; v++)
		for (int c = 1; c <= 2; c++)
			for (size_t i = 0; i < 3; i++) {
				char want[600] = "record = ";
				th_fill(nonce, 12, 400 + i);
				spec_seal(rec, v, c, dek, 5, sid, "orders", nonce,
					(const uint8_t *)"row-7", 5, pt, sizes[i]);
				for (size_t k = 0; k < sizes[i] + 32; k++)
					sprintf(want + 9 + 2 * k, "%02x", rec[k]);
				assert_non_null(memmem(text, len, want, strlen(want)));
				count++;
			}
	assert_int_equal(count, 12);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_overhead),
		cmocka_unit_test(test_tamper_ad_namespace),
		cmocka_unit_test(test_nonces_distinct),
		cmocka_unit_test(test_matches_spec),
		cmocka_unit_test(test_version_and_cipher),
		cmocka_unit_test(test_vectors),
	};

	th_fill(KEY, 32, 77);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
