/*
 * Unit tests of the crypto layer (src/lib/crypto.c, secret.c): known
 * answers from tests/vectors/, round trips of every cipher, tampering,
 * truncation, length rules, locked secrets and FIPS mode's refusal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <argon2.h>

#include "atrest/keys.h"
#include "atrest/store.h"
#include "crypto.h"
#include "helpers.h"
#include "secret.h"

#define GCM ATREST_CIPHER_AES_256_GCM
#define CHACHA ATREST_CIPHER_CHACHA20_POLY1305
#define CBC ATREST_CIPHER_AES_256_CBC_HMAC_SHA256
#define VEC_FIELDS 16

static const int all_ciphers[] = {GCM, CHACHA, CBC};
static const char *self_path; /* argv[0], to re-run this program */

/* ---- vector files: blocks of "Name = hex" lines, blank-line separated */

struct vec {
	int n;
	char name[VEC_FIELDS][24];
	char val[VEC_FIELDS][2048];
};

static FILE *vec_open(const char *file)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", ATREST_VECTORS_DIR, file);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open vector file %s", path);
	return f;
}

static void vec_add(struct vec *v, char *line)
{
	char *eq = strchr(line, '='), *val, *end;

	assert_non_null(eq);
	assert_true(v->n < VEC_FIELDS);
	*eq = '\0';
	for (end = eq; end > line && end[-1] == ' '; end--)
		end[-1] = '\0';
	for (val = eq + 1; *val == ' '; val++)
		;
	val[strcspn(val, " \r\n")] = '\0';
	assert_true(strlen(line) < sizeof(v->name[0]));
	assert_true(strlen(val) < sizeof(v->val[0]));
	memcpy(v->name[v->n], line, strlen(line) + 1);
	memcpy(v->val[v->n], val, strlen(val) + 1);
	v->n++;
}

/* Next block of f into v; 0 at end of file. */
static int vec_next(FILE *f, struct vec *v)
{
	char line[4096];

	v->n = 0;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#')
			continue;
		if (line[strspn(line, " \r\n")] == '\0') {
			if (v->n)
				return 1;
			continue;
		}
		vec_add(v, line);
	}
	return v->n > 0;
}

static const char *vget(const struct vec *v, const char *name)
{
	for (int i = 0; i < v->n; i++)
		if (strcmp(v->name[i], name) == 0)
			return v->val[i];
	fail_msg("vector block lacks %s", name);
	return NULL;
}

static uint8_t *vhex(const struct vec *v, const char *name, size_t *len)
{
	return th_unhex(vget(v, name), len);
}

/* ---- known answers */

static void check_aead_case(int cipher, const struct vec *v)
{
	size_t kl, nl, al, pl, cl, tl, outl;
	uint8_t *key = vhex(v, "Key", &kl), *nonce = vhex(v, "IV", &nl);
	uint8_t *aad = vhex(v, "AAD", &al), *pt = vhex(v, "PT", &pl);
	uint8_t *ct = vhex(v, "CT", &cl), *tag = vhex(v, "Tag", &tl);
	size_t total = cl + tl;
	uint8_t *out = malloc(total + 1), *back = malloc(total + 1);
	atrest__aead *a;

	assert_int_equal(nl, ATREST_NONCE_LEN);
	assert_int_equal(atrest__aead_new(&a, cipher, key, kl), 0);
	assert_int_equal(atrest__cipher_ctlen(cipher, pl), total);
	/* Twice on one context: re-nonced state must not leak across calls. */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(atrest__aead_seal(a, out, nonce, aad, al, pt, pl), 0);
		assert_memory_equal(out, ct, cl);
		assert_memory_equal(out + cl, tag, tl);
	}
	assert_int_equal(
		atrest__aead_open(a, back, &outl, nonce, aad, al, out, total), 0);
	assert_int_equal(outl, pl);
	if (pl)
		assert_memory_equal(back, pt, pl);
	atrest__aead_free(a);
	free(key), free(nonce), free(aad), free(pt), free(ct), free(tag);
	free(out), free(back);
}

static void run_aead_file(const char *file, int cipher, int min_cases)
{
	FILE *f = vec_open(file);
	struct vec v;
	int cases = 0;

	while (vec_next(f, &v)) {
		check_aead_case(cipher, &v);
		cases++;
	}
	fclose(f);
	assert_true(cases >= min_cases);
}

static void test_gcm_kat(void **state)
{
	(void)state;
	run_aead_file("gcm_nist.txt", GCM, 4);
}

static void test_chacha_kat(void **state)
{
	(void)state;
	run_aead_file("rfc8439.txt", CHACHA, 1);
}

static void test_cbc_hmac_kat(void **state)
{
	(void)state;
	run_aead_file("cbc_hmac.txt", CBC, 4);
}

static void test_hkdf_kat(void **state)
{
	FILE *f = vec_open("rfc5869.txt");
	struct vec v;
	int cases = 0;

	(void)state;
	while (vec_next(f, &v)) {
		size_t il, sl, nl, ol, len = strtoul(vget(&v, "L"), NULL, 10);
		uint8_t *ikm = vhex(&v, "IKM", &il);
		uint8_t *salt = vhex(&v, "Salt", &sl);
		uint8_t *info = vhex(&v, "Info", &nl);
		uint8_t *okm = vhex(&v, "OKM", &ol);
		uint8_t out[128];

		assert_int_equal(ol, len);
		assert_int_equal(atrest__hkdf(out, len, salt, sl, ikm, il, info, nl), 0);
		assert_memory_equal(out, okm, len);
		free(ikm), free(salt), free(info), free(okm);
		cases++;
	}
	fclose(f);
	assert_int_equal(cases, 3);
}

static void test_argon2id_kat(void **state)
{
	FILE *f = vec_open("rfc9106.txt");
	struct vec v;
	size_t pl, sl, kl, al, tl;
	uint8_t out[32];
	argon2_context c;

	(void)state;
	assert_true(vec_next(f, &v));
	fclose(f);
	memset(&c, 0, sizeof(c));
	c.pwd = vhex(&v, "Password", &pl);
	c.salt = vhex(&v, "Salt", &sl);
	c.secret = vhex(&v, "Secret", &kl);
	c.ad = vhex(&v, "AD", &al);
	c.pwdlen = (uint32_t)pl, c.saltlen = (uint32_t)sl;
	c.secretlen = (uint32_t)kl, c.adlen = (uint32_t)al;
	c.out = out, c.outlen = sizeof(out);
	c.t_cost = (uint32_t)atoi(vget(&v, "T"));
	c.m_cost = (uint32_t)atoi(vget(&v, "M"));
	c.lanes = c.threads = (uint32_t)atoi(vget(&v, "P"));
	c.version = ARGON2_VERSION_13;
	assert_int_equal(argon2_ctx(&c, Argon2_id), ARGON2_OK);
	{
		uint8_t *tag = vhex(&v, "Tag", &tl);
		assert_memory_equal(out, tag, tl);
		free(tag);
	}
	/* atrest__argon2id is the same function without secret and ad. */
	{
		uint8_t ours[32], ref[32];
		assert_int_equal(
			atrest__argon2id(ours, 32, c.pwd, pl, c.salt, sl, 3, 32, 4), 0);
		assert_int_equal(
			argon2id_hash_raw(3, 32, 4, c.pwd, pl, c.salt, sl, ref, 32),
			ARGON2_OK);
		assert_memory_equal(ours, ref, 32);
		assert_int_not_equal(
			atrest__argon2id(ours, 32, c.pwd, pl, c.salt, 4, 3, 32, 4),
			0); /* salt below argon2's 8 */
	}
	free(c.pwd), free(c.salt), free(c.secret), free(c.ad);
}

static void test_pbkdf2_kat(void **state)
{
	FILE *f = vec_open("pbkdf2_sha256.txt");
	struct vec v;
	int cases = 0;

	(void)state;
	while (vec_next(f, &v)) {
		size_t pl, sl, dl;
		uint8_t *p = vhex(&v, "Password", &pl);
		uint8_t *s = vhex(&v, "Salt", &sl);
		uint8_t *dk = vhex(&v, "DK", &dl), out[64];
		uint32_t iter = (uint32_t)strtoul(vget(&v, "Iter"), NULL, 10);

		assert_int_equal(atrest__pbkdf2_sha256(out, dl, p, pl, s, sl, iter), 0);
		assert_memory_equal(out, dk, dl);
		free(p), free(s), free(dk);
		cases++;
	}
	fclose(f);
	assert_int_equal(cases, 2);
}

/* FIPS 180-2 "abc" and RFC 4231 test case 2: short enough to keep here. */
static void test_sha256_hmac(void **state)
{
	size_t n;
	uint8_t out[32];
	uint8_t *want = th_unhex("ba7816bf8f01cfea414140de5dae2223"
				 "b00361a396177a9cb410ff61f20015ad",
		&n);
	uint8_t *mac = th_unhex("5bdcc146bf60754e6a042426089575c7"
				"5a003f089d2739839dec58b964ec3843",
		&n);
	const char *data = "what do ya want for nothing?";

	(void)state;
	assert_int_equal(atrest__sha256(out, "abc", 3), 0);
	assert_memory_equal(out, want, 32);
	assert_int_equal(
		atrest__hmac_sha256(out, (const uint8_t *)"Jefe", 4, data, strlen(data)),
		0);
	assert_memory_equal(out, mac, 32);
	free(want), free(mac);
}

/* ---- behaviour */

static atrest__aead *new_aead(int cipher, uint64_t seed, uint8_t *key_out)
{
	uint8_t key[ATREST_CIPHER_KEY_MAX];
	size_t kl = atrest__cipher_keylen(cipher);
	atrest__aead *a;

	th_fill(key, kl, seed);
	if (key_out)
		memcpy(key_out, key, kl);
	assert_int_equal(atrest__aead_new(&a, cipher, key, kl), 0);
	return a;
}

/* Additional data a cipher takes: none for CBC-HMAC (FORMAT.md section 1). */
static size_t aad_room(int cipher, size_t want)
{
	return cipher == CBC ? 0 : want;
}

static void roundtrip_one(atrest__aead *a, int cipher, size_t len)
{
	size_t ctl = atrest__cipher_ctlen(cipher, len), got = 1234, pl;
	uint8_t *pt = malloc(len + 1), *ct = malloc(ctl), *back = malloc(ctl);
	uint8_t nonce[ATREST_NONCE_LEN], aad[13];

	size_t al = aad_room(cipher, sizeof(aad));

	th_fill(pt, len, len + 1);
	th_fill(nonce, sizeof(nonce), len + 2);
	th_fill(aad, sizeof(aad), len + 3);
	assert_int_equal(atrest__aead_seal(a, ct, nonce, aad, al, pt, len), 0);
	assert_int_equal(atrest__cipher_ptlen(cipher, ct, ctl, &pl), 0);
	assert_int_equal(pl, len);
	assert_int_equal(atrest__aead_open(a, back, &got, nonce, aad, al, ct, ctl), 0);
	assert_int_equal(got, len);
	if (len)
		assert_memory_equal(back, pt, len);
	if (cipher != CBC) { /* in place is allowed for the AEADs */
		memcpy(back, pt, len);
		assert_int_equal(
			atrest__aead_seal(a, back, nonce, aad, al, back, len), 0);
		assert_memory_equal(back, ct, ctl);
	}
	free(pt), free(ct), free(back);
}

static void test_roundtrip(void **state)
{
	static const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 65, 1024, 65536};

	(void)state;
	for (size_t c = 0; c < 3; c++) {
		atrest__aead *a = new_aead(all_ciphers[c], c, NULL);

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			roundtrip_one(a, all_ciphers[c], lens[i]);
		assert_int_equal(atrest__cipher_ctlen(all_ciphers[c], 65536),
			all_ciphers[c] == CBC ? 65536 + 33 : 65536 + 16);
		atrest__aead_free(a);
	}
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Open must fail with EINTEGRITY and leave out all zero. */
static void expect_reject(atrest__aead *a, const uint8_t *nonce, const uint8_t *aad,
	size_t al, const uint8_t *ct, size_t cl)
{
	uint8_t *out = malloc(cl + 1);
	size_t got = 99;

	memset(out, 0xAA, cl + 1);
	assert_int_equal(atrest__aead_open(a, out, &got, nonce, aad, al, ct, cl),
		ATREST_EINTEGRITY);
	assert_true(all_zero(out, cl));
	assert_int_equal(got, 0);
	free(out);
}

static void tamper_cipher(int cipher, size_t len)
{
	atrest__aead *a = new_aead(cipher, 7, NULL);
	size_t cl = atrest__cipher_ctlen(cipher, len);
	uint8_t pt[64], nonce[ATREST_NONCE_LEN], aad[8], *ct = malloc(cl);
	size_t al = aad_room(cipher, sizeof(aad));

	th_fill(pt, len, 1), th_fill(nonce, sizeof(nonce), 2);
	th_fill(aad, sizeof(aad), 3);
	assert_int_equal(atrest__aead_seal(a, ct, nonce, aad, al, pt, len), 0);
	for (size_t i = 0; i < cl; i++) {
		ct[i] ^= 0x01;
		expect_reject(a, nonce, aad, al, ct, cl);
		ct[i] ^= 0x01;
	}
	for (size_t i = 0; i < sizeof(nonce); i++) {
		nonce[i] ^= 0x80;
		expect_reject(a, nonce, aad, al, ct, cl);
		nonce[i] ^= 0x80;
	}
	for (size_t i = 0; i < al; i++) {
		aad[i] ^= 0x10;
		expect_reject(a, nonce, aad, al, ct, cl);
		aad[i] ^= 0x10;
	}
	/* Other additional data (for CBC-HMAC: any at all). */
	expect_reject(a, nonce, aad, al ? al - 1 : sizeof(aad), ct, cl);
	if (al)
		expect_reject(a, nonce, NULL, 0, ct, cl);
	/* Truncated and extended ciphertexts. */
	for (size_t cut = 1; cut <= cl; cut++)
		expect_reject(a, nonce, aad, al, ct, cl - cut);
	free(ct);
	atrest__aead_free(a);
}

/*
 * CBC-HMAC's MAC input nonce || A || C || pad has no length of A, so it
 * takes none: sealing with any is refused, and so is opening.
 */
static void test_cbc_no_aad(void **state)
{
	atrest__aead *a = new_aead(CBC, 9, NULL);
	uint8_t nonce[ATREST_NONCE_LEN] = {1}, pt[32] = {2}, ct[32 + 33], out[32 + 33];
	size_t got;

	(void)state;
	assert_int_equal(
		atrest__aead_seal(a, ct, nonce, pt, 16, pt + 16, 16), ATREST_EINVAL);
	assert_int_equal(atrest__aead_seal(a, ct, nonce, NULL, 0, pt, 32), 0);
	assert_int_equal(
		atrest__aead_open(a, out, &got, nonce, NULL, 0, ct, sizeof(ct)), 0);
	/* The same bytes read as (A = first block, C = the rest) do not open. */
	expect_reject(a, nonce, ct, 16, ct + 16, sizeof(ct) - 16);
	expect_reject(a, nonce, pt, 1, ct, sizeof(ct));
	atrest__aead_free(a);
}

static void test_tamper(void **state)
{
	static const size_t lens[] = {0, 1, 17, 64};

	(void)state;
	for (size_t c = 0; c < 3; c++)
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			tamper_cipher(all_ciphers[c], lens[i]);
}

static void test_extended(void **state)
{
	(void)state;
	for (size_t c = 0; c < 3; c++) {
		atrest__aead *a = new_aead(all_ciphers[c], 3, NULL);
		size_t cl = atrest__cipher_ctlen(all_ciphers[c], 20);
		uint8_t pt[20] = {1}, nonce[ATREST_NONCE_LEN] = {0};
		uint8_t ct[128] = {0};

		assert_int_equal(
			atrest__aead_seal(a, ct, nonce, NULL, 0, pt, sizeof(pt)), 0);
		expect_reject(a, nonce, NULL, 0, ct, cl + 1);
		expect_reject(a, nonce, NULL, 0, ct, cl + 16);
		atrest__aead_free(a);
	}
}

static void test_wrong_key(void **state)
{
	(void)state;
	for (size_t c = 0; c < 3; c++) {
		atrest__aead *a = new_aead(all_ciphers[c], 100, NULL);
		atrest__aead *b = new_aead(all_ciphers[c], 101, NULL);
		size_t cl = atrest__cipher_ctlen(all_ciphers[c], 40);
		uint8_t pt[40], nonce[ATREST_NONCE_LEN] = {9}, ct[128];

		th_fill(pt, sizeof(pt), 5);
		assert_int_equal(
			atrest__aead_seal(a, ct, nonce, NULL, 0, pt, sizeof(pt)), 0);
		expect_reject(b, nonce, NULL, 0, ct, cl);
		atrest__aead_free(a);
		atrest__aead_free(b);
	}
}

static void test_ptlen(void **state)
{
	uint8_t ct[81] = {0};
	size_t pl;

	(void)state;
	assert_int_equal(atrest__cipher_ptlen(GCM, ct, 15, &pl), ATREST_EINTEGRITY);
	assert_int_equal(atrest__cipher_ptlen(CHACHA, ct, 0, &pl), ATREST_EINTEGRITY);
	assert_int_equal(atrest__cipher_ptlen(GCM, ct, 16, &pl), 0);
	assert_int_equal(pl, 0);
	assert_int_equal(atrest__cipher_ptlen(CHACHA, ct, 81, &pl), 0);
	assert_int_equal(pl, 65);
	/* CBC: 33 + 16k bytes, pad count byte at ct_len - 33. */
	for (size_t bad = 0; bad < 81; bad++)
		if (bad < 33 || (bad - 33) % 16 != 0)
			assert_int_equal(atrest__cipher_ptlen(CBC, ct, bad, &pl),
				ATREST_EINTEGRITY);
	assert_int_equal(atrest__cipher_ptlen(CBC, ct, 33, &pl), 0);
	assert_int_equal(pl, 0);
	ct[0] = 1; /* no body, yet one pad byte */
	assert_int_equal(atrest__cipher_ptlen(CBC, ct, 33, &pl), ATREST_EINTEGRITY);
	ct[16] = 15;
	assert_int_equal(atrest__cipher_ptlen(CBC, ct, 49, &pl), 0);
	assert_int_equal(pl, 1);
	ct[16] = 16;
	assert_int_equal(atrest__cipher_ptlen(CBC, ct, 49, &pl), ATREST_EINTEGRITY);
	ct[16] = 0xff;
	assert_int_equal(atrest__cipher_ptlen(CBC, ct, 49, &pl), ATREST_EINTEGRITY);
	ct[32] = 0;
	assert_int_equal(atrest__cipher_ptlen(CBC, ct, 65, &pl), 0);
	assert_int_equal(pl, 32);
	assert_int_equal(atrest__cipher_ptlen(0, ct, 65, &pl), ATREST_EINVAL);
}

/* Give body || padcount a valid tag under mac_key, as a key holder could. */
static void cbc_retag(
	uint8_t *ct, size_t body, const uint8_t *mac_key, const uint8_t *nonce)
{
	uint8_t buf[ATREST_NONCE_LEN + 64];

	memcpy(buf, nonce, ATREST_NONCE_LEN);
	memcpy(buf + ATREST_NONCE_LEN, ct, body + 1);
	assert_int_equal(atrest__hmac_sha256(ct + body + 1, mac_key, 32, buf,
				 ATREST_NONCE_LEN + body + 1),
		0);
}

/* The checks after the MAC: pad count <= 15, <= body, pad bytes zero. */
static void test_cbc_pad_checks(void **state)
{
	uint8_t key[64], nonce[ATREST_NONCE_LEN] = {4}, pt[16], ct[64];
	uint8_t out[64];
	atrest__aead *a = new_aead(CBC, 55, key);
	size_t got;

	(void)state;
	th_fill(pt, sizeof(pt), 8);
	assert_int_equal(atrest__aead_seal(a, ct, nonce, NULL, 0, pt, 16), 0);
	ct[16] = 16;
	cbc_retag(ct, 16, key + 32, nonce);
	expect_reject(a, nonce, NULL, 0, ct, 49);
	ct[16] = 3; /* the last 3 plaintext bytes are not zero */
	cbc_retag(ct, 16, key + 32, nonce);
	expect_reject(a, nonce, NULL, 0, ct, 49);
	memset(pt + 13, 0, 3); /* now they are: a 13-byte plaintext */
	assert_int_equal(atrest__aead_seal(a, ct, nonce, NULL, 0, pt, 16), 0);
	ct[16] = 3;
	cbc_retag(ct, 16, key + 32, nonce);
	assert_int_equal(atrest__aead_open(a, out, &got, nonce, NULL, 0, ct, 49), 0);
	assert_int_equal(got, 13);
	assert_memory_equal(out, pt, 13);
	assert_int_equal(atrest__aead_seal(a, ct, nonce, NULL, 0, pt, 0), 0);
	ct[0] = 1; /* empty body with a pad count */
	cbc_retag(ct, 0, key + 32, nonce);
	expect_reject(a, nonce, NULL, 0, ct, 33);
	atrest__aead_free(a);
}

static void test_params(void **state)
{
	uint8_t key[64] = {0};
	atrest__aead *a = (atrest__aead *)&a;

	(void)state;
	assert_int_equal(atrest__cipher_keylen(GCM), 32);
	assert_int_equal(atrest__cipher_keylen(CHACHA), 32);
	assert_int_equal(atrest__cipher_keylen(CBC), 64);
	assert_int_equal(atrest__cipher_keylen(0), 0);
	assert_int_equal(atrest__cipher_overhead(GCM), 16);
	assert_int_equal(atrest__cipher_overhead(CBC), 33);
	assert_int_equal(atrest__cipher_ctlen(CBC, 1), 49);
	assert_int_equal(atrest__cipher_ctlen(CBC, 16), 49);
	assert_int_equal(atrest__cipher_ctlen(CBC, 17), 65);
	assert_int_equal(atrest__aead_new(&a, 0, key, 32), ATREST_EINVAL);
	assert_null(a);
	assert_int_equal(atrest__aead_new(&a, 4, key, 32), ATREST_EINVAL);
	assert_int_equal(atrest__aead_new(&a, GCM, key, 64), ATREST_EINVAL);
	assert_int_equal(atrest__aead_new(&a, CBC, key, 32), ATREST_EINVAL);
	assert_int_equal(atrest__cipher_allowed(GCM), 0);
	assert_int_equal(atrest__cipher_allowed(CHACHA), 0);
	assert_int_equal(atrest__cipher_allowed(9), ATREST_EINVAL);
	assert_int_equal(atrest__fips_mode(), 0);
	atrest__aead_free(NULL);
}

static void test_ct_equal_rand(void **state)
{
	uint8_t a[32], b[32];

	(void)state;
	assert_int_equal(atrest__rand(a, sizeof(a)), 0);
	assert_int_equal(atrest__rand(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_true(atrest__ct_equal(a, a, sizeof(a)));
	assert_false(atrest__ct_equal(a, b, sizeof(a)));
	memcpy(b, a, sizeof(a));
	b[31] ^= 1;
	assert_false(atrest__ct_equal(a, b, sizeof(a)));
	assert_true(atrest__ct_equal(a, b, 31));
	assert_true(atrest__ct_equal(a, b, 0));
}

/* Can a page still be locked (a capability, or an mlock that cannot fail)? */
static int mlock_works(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE,
		MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ok = p != MAP_FAILED && mlock(p, (size_t)pg) == 0;

	if (p != MAP_FAILED)
		munmap(p, (size_t)pg);
	return ok;
}

/*
 * With no lockable memory (RLIMIT_MEMLOCK 0 and, for root, CAP_IPC_LOCK
 * dropped) secrets still work, and atrest_secure_memory_status says how
 * many are unlocked.  In a child: the limit and capability stay there.
 */
static void test_secret_unlocked(void **state)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct caps[2];
	struct rlimit none = {0, 0};
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(atrest_secure_memory_status(), atrest__secret_unlocked());
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		atrest__secret *s;
		unsigned long before = atrest_secure_memory_status();

		if (syscall(SYS_capget, &h, caps) == 0) {
			caps[0].effective &= ~(1u << CAP_IPC_LOCK);
			caps[0].permitted &= ~(1u << CAP_IPC_LOCK);
			(void)syscall(SYS_capset, &h, caps);
		}
		if (setrlimit(RLIMIT_MEMLOCK, &none) != 0)
			_exit(2);
		if (mlock_works())
			_exit(77);
		if (atrest__secret_new(&s, 32) != 0)
			_exit(2);
		memset(s->data, 1, 32);
		atrest__secret_free(s);
		_exit(atrest_secure_memory_status() == before + 1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	/* 77: the sanitizer runtimes turn mlock into a no-op that succeeds. */
	if (WEXITSTATUS(status) == 77)
		print_message("mlock cannot fail in this build (sanitizer runtime): "
			      "checked by the release build\n");
	else
		assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_secret(void **state)
{
	atrest__secret *s, *d, *big;
	unsigned long before = atrest__secret_unlocked();

	(void)state;
	assert_int_equal(atrest__secret_new(&s, 32), 0);
	assert_int_equal(s->len, 32);
	assert_int_equal(s->cap, 32);
	assert_true(all_zero(s->data, 32));
	memset(s->data, 0x5c, 32);
	assert_int_equal(atrest__secret_dup(&d, s->data, 32), 0);
	assert_memory_equal(d->data, s->data, 32);
	assert_ptr_not_equal(d->data, s->data);
	atrest__secret_free(s);
	atrest__secret_free(d);
	atrest__secret_free(NULL);
	assert_int_equal(atrest__secret_new(&big, 3 << 20), 0);
	memset(big->data, 1, big->cap);
	atrest__secret_free(big);
	assert_int_equal(atrest__secret_new(&s, 0), 0);
	assert_int_equal(s->len, 0);
	atrest__secret_free(s);
	assert_true(atrest__secret_unlocked() >= before);
	assert_int_equal(atrest__secret_new(&s, SIZE_MAX), ATREST_EINVAL);
	assert_null(s);
	{
		uint8_t w[8];
		memset(w, 7, sizeof(w));
		atrest__wipe(w, sizeof(w));
		assert_true(all_zero(w, sizeof(w)));
		atrest__wipe(NULL, 0);
	}
}

/*
 * FIPS mode is decided once per process, so the check runs in a fresh
 * copy of this program (re-executed with ATREST_FIPS=1).  Exit 0: refused
 * as it must be; 77: this OpenSSL has a FIPS provider after all, and FIPS
 * mode was checked to refuse ChaCha20 instead.
 */
static int fips_child(void)
{
	const atrest_error *e;
	atrest__aead *a;
	uint8_t key[32] = {0};
	int rc = atrest__crypto_init();

	if (rc == 0 && atrest__fips_mode())
		return atrest__cipher_allowed(CHACHA) == ATREST_EINVAL ? 77 : 5;
	e = atrest_error_last();
	if (rc != ATREST_EUNAVAILABLE || !e || !strstr(e->message, "FIPS"))
		return 1;
	fprintf(stderr, "fips child: %s\n", e->message);
	atrest_error_clear();
	if (atrest__crypto_init() != ATREST_EUNAVAILABLE || !atrest_error_last() ||
		!strstr(atrest_error_last()->message, "ATREST_FIPS=1"))
		return 2;
	if (atrest__aead_new(&a, GCM, key, 32) != ATREST_EUNAVAILABLE)
		return 3;
	if (atrest__hkdf(key, 32, NULL, 0, key, 32, NULL, 0) >= 0)
		return 4;
	return 0;
}

static void test_fips_unavailable(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("ATREST_FIPS", "1", 1);
		setenv("ATREST_TEST_FIPS_CHILD", "1", 1);
		execlp(self_path, self_path, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	/* 77: a FIPS provider is installed and FIPS mode refused ChaCha20 as
	 * it must; 0: none is, and asking for FIPS mode failed clearly. */
	if (WEXITSTATUS(status) == 77)
		print_message("FIPS provider present: FIPS mode checked instead\n");
	else
		assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gcm_kat),
		cmocka_unit_test(test_chacha_kat),
		cmocka_unit_test(test_cbc_hmac_kat),
		cmocka_unit_test(test_hkdf_kat),
		cmocka_unit_test(test_argon2id_kat),
		cmocka_unit_test(test_pbkdf2_kat),
		cmocka_unit_test(test_sha256_hmac),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_cbc_no_aad),
		cmocka_unit_test(test_extended),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_ptlen),
		cmocka_unit_test(test_cbc_pad_checks),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_ct_equal_rand),
		cmocka_unit_test(test_secret),
		cmocka_unit_test(test_secret_unlocked),
		cmocka_unit_test(test_fips_unavailable),
	};

	(void)argc;
	self_path = argv[0];
	if (getenv("ATREST_TEST_FIPS_CHILD"))
		return fips_child();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
