/*
 * Unit tests of the local master-key providers (src/lib/keyprov/local.c):
 * key text and key file forms, wrapping, fingerprints, passphrases and
 * their keyring parameters, and the choice from the environment.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "atrest/keys.h"
#include "atrest/store.h"
#include "atrest/sys/keyprov.h"
#include "crypto.h"
#include "helpers.h"

#define HEX_KEY                            \
	"000102030405060708090a0b0c0d0e0f" \
	"101112131415161718191a1b1c1d1e1f"
#define HEX_KEY_UP                         \
	"000102030405060708090A0B0C0D0E0F" \
	"101112131415161718191A1B1C1D1E1F"
#define B64_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static const char *const all_env[] = {"ATREST_KEY", "ATREST_KEY_FILE",
	"ATREST_PASSPHRASE", "ATREST_KEY_URI", "ATREST_OLD_KEY", "ATREST_OLD_KEY_FILE",
	"ATREST_OLD_PASSPHRASE", "ATREST_OLD_KEY_URI"};

static const char *last_msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e ? e->message : "";
}

static void key_id(atrest_keyprov *kp, char out[32])
{
	assert_int_equal(kp->key_id(kp, out, 32), 0);
}

/* The key id of a provider made from text; "" when the text is refused. */
static void text_id(const char *text, char out[32])
{
	atrest_keyprov *kp;

	out[0] = '\0';
	if (atrest_keyprov_text(&kp, text, strlen(text)) != 0) {
		assert_null(kp);
		return;
	}
	key_id(kp, out);
	atrest_keyprov_free(kp);
}

/* What the documented derivation says the id of master must be. */
static void expected_id(const uint8_t master[32], char out[32])
{
	uint8_t fp[8];

	assert_int_equal(atrest__hkdf(fp, 8, NULL, 0, master, 32,
				 (const uint8_t *)"atrest/v1 key id", 16),
		0);
	strcpy(out, "fp:");
	for (int i = 0; i < 8; i++)
		sprintf(out + 3 + 2 * i, "%02x", fp[i]);
}

static void test_text_forms(void **state)
{
	char want[32], got[32];
	size_t n;
	uint8_t *master = th_unhex(HEX_KEY, &n);

	(void)state;
	expected_id(master, want);
	text_id(HEX_KEY, got);
	assert_string_equal(got, want);
	text_id(HEX_KEY_UP, got);
	assert_string_equal(got, want);
	text_id(B64_KEY, got);
	assert_string_equal(got, want);
	text_id(" \t\n" HEX_KEY "\r\n", got);
	assert_string_equal(got, want);
	text_id("\n" B64_KEY "\n\n", got);
	assert_string_equal(got, want);
	{
		atrest_keyprov *kp;
		assert_int_equal(atrest_keyprov_raw(&kp, master, 32), 0);
		assert_string_equal(atrest_keyprov_kind(kp), "key");
		key_id(kp, got);
		assert_string_equal(got, want);
		atrest_keyprov_free(kp);
		assert_int_equal(atrest_keyprov_raw(&kp, master, 31), ATREST_EINVAL);
	}
	free(master);
}

static void test_text_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"   \n",
		HEX_KEY "0",
		HEX_KEY "00",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eg1",
		"000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",  /* unpadded */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", /* 31 bytes */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g", /* 33 bytes */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd*h8=",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh=8",
		"correct horse battery staple, the secret one",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atrest_keyprov *kp = (atrest_keyprov *)&kp;

		assert_int_equal(
			atrest_keyprov_text(&kp, bad[i], strlen(bad[i])), ATREST_EKEY);
		assert_null(kp);
		assert_non_null(strstr(last_msg(), "64 hex digits"));
		if (strlen(bad[i]) > 8)
			assert_null(strstr(last_msg(), bad[i]));
	}
	assert_null(strstr(last_msg(), "secret one"));
}

/* ---- key files */

static void write_mode(const char *path, const void *buf, size_t len, mode_t mode)
{
	assert_int_equal(th_write_file(path, buf, len), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static int file_id(const char *path, char out[32])
{
	atrest_keyprov *kp;
	int rc = atrest_keyprov_file(&kp, path);

	if (rc == 0) {
		assert_string_equal(atrest_keyprov_kind(kp), "key-file");
		key_id(kp, out);
		atrest_keyprov_free(kp);
	} else {
		assert_null(kp);
	}
	return rc;
}

static void test_file_text_forms(void **state)
{
	char dir[4096], path[4200], link[4200], want[32], got[32];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	text_id(HEX_KEY, want);
	snprintf(path, sizeof(path), "%s/hex.key", dir);
	write_mode(path, HEX_KEY "\n", 65, 0600);
	assert_int_equal(file_id(path, got), 0);
	assert_string_equal(got, want);
	snprintf(link, sizeof(link), "%s/link.key", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(file_id(link, got), 0);
	assert_string_equal(got, want);
	snprintf(path, sizeof(path), "%s/b64.key", dir);
	write_mode(path, B64_KEY "\n", strlen(B64_KEY) + 1, 0400);
	assert_int_equal(file_id(path, got), 0);
	assert_string_equal(got, want);
	th_rmrf(dir);
}

static void test_file_raw(void **state)
{
	char dir[4096], path[4200], want[32], got[32];
	uint8_t raw[64], master[32];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	th_fill(raw, sizeof(raw), 77);
	raw[0] = 0xff; /* certainly not text */
	snprintf(path, sizeof(path), "%s/raw.key", dir);
	write_mode(path, raw, sizeof(raw), 0600);
	assert_int_equal(file_id(path, got), 0);
	assert_int_equal(atrest__hkdf(master, 32, NULL, 0, raw, sizeof(raw),
				 (const uint8_t *)"atrest/v1 key file", 18),
		0);
	expected_id(master, want);
	assert_string_equal(got, want);
	write_mode(path, raw, 32, 0600); /* exactly 32 is enough */
	assert_int_equal(file_id(path, got), 0);
	assert_string_not_equal(got, want);
	write_mode(path, raw, 31, 0600);
	assert_int_equal(file_id(path, got), ATREST_EKEY);
	assert_non_null(strstr(last_msg(), "at least 32 bytes"));
	write_mode(path, "", 0, 0600);
	assert_int_equal(file_id(path, got), ATREST_EKEY);
	/* A mistyped text key is refused, not hashed into another key. */
	write_mode(path, HEX_KEY "0\n", 66, 0600);
	assert_int_equal(file_id(path, got), ATREST_EKEY);
	assert_non_null(strstr(last_msg(), "looks like a key"));
	write_mode(path, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZQ==\n", 45, 0600);
	assert_int_equal(file_id(path, got), ATREST_EKEY);
	th_rmrf(dir);
}

static void test_file_refused(void **state)
{
	char dir[4096], path[4200], got[32], *msg;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/open.key", dir);
	write_mode(path, HEX_KEY "\n", 65, 0644);
	assert_int_equal(file_id(path, got), ATREST_EKEY);
	msg = strdup(last_msg());
	assert_non_null(strstr(msg, "readable by group or others"));
	assert_non_null(strstr(msg, "0644"));
	assert_non_null(strstr(msg, "chmod 600"));
	assert_non_null(strstr(msg, path));
	assert_null(strstr(msg, HEX_KEY));
	free(msg);
	assert_int_equal(chmod(path, 0620), 0);
	assert_int_equal(file_id(path, got), ATREST_EKEY);
	assert_non_null(strstr(last_msg(), "chmod 600"));
	snprintf(path, sizeof(path), "%s/missing.key", dir);
	assert_int_equal(file_id(path, got), ATREST_EKEY);
	assert_non_null(strstr(last_msg(), "missing.key"));
	chmod(dir, 0700);
	assert_int_equal(file_id(dir, got), ATREST_EKEY);
	assert_int_equal(file_id("", got), ATREST_EINVAL);
	th_rmrf(dir);
}

/*
 * A FIFO (or device) as key file is refused at once: opening a FIFO waits
 * for a writer, so the check runs in a child with an alarm that would end
 * a hanging open.
 */
static void test_file_fifo(void **state)
{
	char dir[4096], path[4200], link[4200], got[32];
	int status;
	pid_t pid;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/fifo.key", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(link, sizeof(link), "%s/to-fifo.key", dir);
	assert_int_equal(symlink(path, link), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);
		_exit(file_id(path, got) == ATREST_EKEY &&
					strstr(last_msg(), "not a regular file") &&
					file_id(link, got) == ATREST_EKEY &&
					file_id("/dev/zero", got) == ATREST_EKEY
				? 0
				: 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	th_rmrf(dir);
}

/* ---- wrapping */

static atrest_keyprov *text_kp(const char *text)
{
	atrest_keyprov *kp;

	assert_int_equal(atrest_keyprov_text(&kp, text, strlen(text)), 0);
	return kp;
}

/* The wrapped form is nonce || AES-256-GCM(HKDF(master, "atrest/v1 kek")). */
static void check_wrap_format(
	const uint8_t *blob, const uint8_t dek[32], const uint8_t *aad, size_t al)
{
	size_t n;
	uint8_t *master = th_unhex(HEX_KEY, &n), kek[32], out[48];
	atrest__aead *a;

	assert_int_equal(atrest__hkdf(kek, 32, NULL, 0, master, 32,
				 (const uint8_t *)"atrest/v1 kek", 13),
		0);
	assert_int_equal(atrest__aead_new(&a, ATREST_CIPHER_AES_256_GCM, kek, 32), 0);
	assert_int_equal(atrest__aead_open(a, out, &n, blob, aad, al, blob + 12, 48), 0);
	assert_int_equal(n, 32);
	assert_memory_equal(out, dek, 32);
	atrest__aead_free(a);
	free(master);
}

static void test_wrap_roundtrip(void **state)
{
	atrest_keyprov *kp = text_kp(HEX_KEY);
	uint8_t dek[32], blob[ATREST_WRAPPED_MAX], blob2[128], out[32];
	const uint8_t aad[] = "store=s1 dek=7";
	size_t bl, bl2, ol;

	(void)state;
	th_fill(dek, sizeof(dek), 3);
	assert_int_equal(
		kp->wrap(kp, blob, sizeof(blob), &bl, dek, 32, aad, sizeof(aad)), 0);
	assert_int_equal(bl, 60);
	check_wrap_format(blob, dek, aad, sizeof(aad));
	assert_int_equal(
		kp->wrap(kp, blob2, sizeof(blob2), &bl2, dek, 32, aad, sizeof(aad)), 0);
	assert_memory_not_equal(blob, blob2, 60); /* fresh nonce each time */
	assert_int_equal(
		kp->unwrap(kp, out, sizeof(out), &ol, blob, bl, aad, sizeof(aad)), 0);
	assert_int_equal(ol, 32);
	assert_memory_equal(out, dek, 32);
	assert_int_equal(
		kp->wrap(kp, blob, 59, &bl, dek, 32, aad, sizeof(aad)), ATREST_EINVAL);
	assert_int_equal(
		kp->wrap(kp, blob, sizeof(blob), &bl, dek, 0, NULL, 0), ATREST_EINVAL);
	assert_int_equal(kp->unwrap(kp, out, 31, &ol, blob2, bl2, aad, sizeof(aad)),
		ATREST_EINVAL);
	atrest_keyprov_free(kp);
}

static void test_unwrap_refused(void **state)
{
	atrest_keyprov *kp = text_kp(HEX_KEY), *other = text_kp(B64_KEY);
	atrest_keyprov *wrong = text_kp("ff02030405060708090a0b0c0d0e0f10"
					"101112131415161718191a1b1c1d1e1f");
	uint8_t dek[32] = {1}, blob[60], out[64];
	size_t bl, ol;

	(void)state;
	assert_int_equal(kp->wrap(kp, blob, sizeof(blob), &bl, dek, 32, NULL, 0), 0);
	/* Same key in another text form unwraps; another key does not. */
	assert_int_equal(other->unwrap(other, out, 32, &ol, blob, bl, NULL, 0), 0);
	assert_int_equal(
		wrong->unwrap(wrong, out, 32, &ol, blob, bl, NULL, 0), ATREST_EKEY);
	assert_non_null(strstr(last_msg(), "wrong master key"));
	for (size_t i = 0; i < bl; i++) {
		blob[i] ^= 0x04;
		assert_int_equal(
			kp->unwrap(kp, out, 32, &ol, blob, bl, NULL, 0), ATREST_EKEY);
		blob[i] ^= 0x04;
	}
	assert_int_equal(kp->unwrap(kp, out, 32, &ol, blob, bl, (const uint8_t *)"x", 1),
		ATREST_EKEY);
	assert_int_equal(
		kp->unwrap(kp, out, 32, &ol, blob, bl - 1, NULL, 0), ATREST_EKEY);
	assert_int_equal(kp->unwrap(kp, out, 32, &ol, blob, 28, NULL, 0), ATREST_EKEY);
	assert_int_equal(kp->unwrap(kp, out, 32, &ol, blob, 0, NULL, 0), ATREST_EKEY);
	atrest_keyprov_free(kp);
	atrest_keyprov_free(other);
	atrest_keyprov_free(wrong);
}

static void test_key_id(void **state)
{
	char a[32], b[32], c[32], small[8];
	atrest_keyprov *kp = text_kp(HEX_KEY);

	(void)state;
	text_id(HEX_KEY, a);
	text_id(HEX_KEY, b);
	text_id("1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100", c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), 19);
	assert_int_equal(strncmp(a, "fp:", 3), 0);
	assert_int_equal(strspn(a + 3, "0123456789abcdef"), 16);
	assert_int_equal(kp->key_id(kp, small, sizeof(small)), ATREST_EINVAL);
	assert_int_equal(kp->bind(kp, NULL, NULL), 0);
	atrest_keyprov_free(kp);
	atrest_keyprov_free(NULL);
	assert_null(atrest_keyprov_kind(NULL));
}

/* ---- passphrases */

static atrest_keyprov *pass_kp(const char *pass)
{
	atrest_keyprov *kp;

	assert_int_equal(atrest_keyprov_passphrase(&kp, pass, strlen(pass)), 0);
	assert_string_equal(atrest_keyprov_kind(kp), "passphrase");
	return kp;
}

static void test_pass_unbound(void **state)
{
	atrest_keyprov *kp = pass_kp("pw"), *k2 = text_kp(HEX_KEY);
	uint8_t dek[32] = {0}, blob[60], out[32];
	char id[32], *po = (char *)1;
	size_t n;

	(void)state;
	assert_int_equal(kp->key_id(kp, id, sizeof(id)), ATREST_EINVAL);
	assert_int_equal(
		kp->wrap(kp, blob, sizeof(blob), &n, dek, 32, NULL, 0), ATREST_EINVAL);
	assert_int_equal(k2->wrap(k2, blob, sizeof(blob), &n, dek, 32, NULL, 0), 0);
	assert_int_equal(kp->unwrap(kp, out, 32, &n, blob, 60, NULL, 0), ATREST_EINVAL);
	assert_int_equal(kp->bind(kp, NULL, NULL), ATREST_EINVAL);
	assert_int_equal(k2->bind(k2, "{\"kdf\":\"argon2id\"}", &po), 0);
	assert_null(po);
	atrest_keyprov_free(k2);
	assert_int_equal(atrest_keyprov_passphrase(&k2, "", 0), ATREST_EINVAL);
	assert_null(k2);
	atrest_keyprov_free(kp);
}

/* The fields of new parameters, checked with jansson. */
static void check_new_params(const char *json, uint8_t salt[16])
{
	json_error_t err;
	json_t *o = json_loads(json, 0, &err);
	const char *s;

	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "kdf")), "argon2id");
	assert_int_equal(json_integer_value(json_object_get(o, "t")), 3);
	assert_int_equal(json_integer_value(json_object_get(o, "m")), 8192);
	assert_int_equal(json_integer_value(json_object_get(o, "p")), 4);
	s = json_string_value(json_object_get(o, "salt"));
	assert_non_null(s);
	assert_int_equal(strlen(s), 24);
	assert_int_equal(EVP_DecodeBlock(salt, (const uint8_t *)s, 24), 18);
	json_decref(o);
}

static void test_pass_bind(void **state)
{
	atrest_keyprov *a = pass_kp("correct horse"), *b, *w;
	char *params = NULL, *again = (char *)1, ida[32], idb[32], want[32];
	uint8_t dek[32], blob[60], out[32], salt[18], master[32];
	size_t n;

	(void)state;
	setenv("ATREST_ARGON2_TEST_MEMORY_KIB", "8192", 1);
	assert_int_equal(a->bind(a, NULL, &params), 0);
	assert_non_null(params);
	check_new_params(params, salt);
	key_id(a, ida);
	assert_int_equal(
		atrest__argon2id(master, 32, "correct horse", 13, salt, 16, 3, 8192, 4),
		0);
	expected_id(master, want);
	assert_string_equal(ida, want);
	th_fill(dek, 32, 9);
	assert_int_equal(a->wrap(a, blob, sizeof(blob), &n, dek, 32, NULL, 0), 0);
	b = pass_kp("correct horse");
	assert_int_equal(b->bind(b, params, &again), 0);
	assert_null(again);
	key_id(b, idb);
	assert_string_equal(ida, idb);
	assert_int_equal(b->unwrap(b, out, 32, &n, blob, 60, NULL, 0), 0);
	assert_memory_equal(out, dek, 32);
	w = pass_kp("correct horse!");
	assert_int_equal(w->bind(w, params, NULL), 0);
	key_id(w, idb);
	assert_string_not_equal(ida, idb);
	assert_int_equal(w->unwrap(w, out, 32, &n, blob, 60, NULL, 0), ATREST_EKEY);
	/* Another new keyring: another salt, another master key. */
	free(params);
	assert_int_equal(a->bind(a, NULL, &params), 0);
	key_id(a, idb);
	assert_string_not_equal(ida, idb);
	free(params);
	atrest_keyprov_free(a), atrest_keyprov_free(b), atrest_keyprov_free(w);
	setenv("ATREST_ARGON2_TEST_MEMORY_KIB", "100", 1);
	a = pass_kp("x");
	assert_int_equal(a->bind(a, NULL, &params), ATREST_EINVAL);
	assert_null(params);
	atrest_keyprov_free(a);
	unsetenv("ATREST_ARGON2_TEST_MEMORY_KIB");
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Binding again to the same parameters must not stretch again. */
static void test_pass_cached(void **state)
{
	const char *params = "{\"kdf\":\"argon2id\",\"salt\":"
			     "\"c29tZSBzYWx0IGZvciB0ZXN0\",\"t\":3,\"m\":32768,\"p\":1}";
	atrest_keyprov *kp = pass_kp("pw");
	char id1[32], id2[32];
	double t0, t1, t2;

	(void)state;
	t0 = now();
	assert_int_equal(kp->bind(kp, params, NULL), 0);
	t1 = now();
	key_id(kp, id1);
	assert_int_equal(kp->bind(kp, params, NULL), 0);
	t2 = now();
	key_id(kp, id2);
	assert_string_equal(id1, id2);
	assert_true(t2 - t1 < (t1 - t0) / 4);
	atrest_keyprov_free(kp);
}

static void test_pass_pbkdf2(void **state)
{
	const char *params = "{\"kdf\":\"pbkdf2-sha256\",\"salt\":"
			     "\"c29tZSBzYWx0IGZvciB0ZXN0\",\"iter\":10000}";
	atrest_keyprov *kp = pass_kp("pw");
	uint8_t master[32];
	char id[32], want[32];

	(void)state;
	assert_int_equal(kp->bind(kp, params, NULL), 0);
	key_id(kp, id);
	assert_int_equal(atrest__pbkdf2_sha256(master, 32, "pw", 2,
				 (const uint8_t *)"some salt for test", 18, 10000),
		0);
	expected_id(master, want);
	assert_string_equal(id, want);
	atrest_keyprov_free(kp);
}

static void test_pass_params_refused(void **state)
{
#define SALT "\"salt\":\"c29tZSBzYWx0IGZvciB0ZXN0\""
#define A2(rest) "{\"kdf\":\"argon2id\"," SALT rest "}"
	static const char *const bad[] = {
		"",
		"[]",
		"{}",
		"not json",
		"{\"kdf\":\"argon2id\"",
		"{\"kdf\":\"scrypt\"," SALT ",\"t\":3,\"m\":8192,\"p\":1}",
		"{\"kdf\":\"argon2id\",\"salt\":\"c2FsdHNhbHQ=\",\"t\":3,"
		"\"m\":8192,\"p\":1}",              /* 8-byte salt */
		"{\"kdf\":\"argon2id\",\"salt\":\"" /* 66-byte salt */
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"t\":3,\"m\":8192,\"p\":1}",
		"{\"kdf\":\"argon2id\",\"salt\":\"c29tZSBzYWx0IGZvciB0ZXN0!\","
		"\"t\":3,\"m\":8192,\"p\":1}",
		"{\"kdf\":\"argon2id\",\"salt\":16,\"t\":3,\"m\":8192,\"p\":1}",
		A2(",\"t\":3,\"m\":4096,\"p\":1"),
		A2(",\"t\":3,\"m\":4194305,\"p\":1"),
		A2(",\"t\":0,\"m\":8192,\"p\":1"),
		A2(",\"t\":17,\"m\":8192,\"p\":1"),
		A2(",\"t\":3,\"m\":8192,\"p\":0"),
		A2(",\"t\":3,\"m\":8192,\"p\":17"),
		A2(",\"t\":3,\"m\":8192"),
		A2(",\"t\":\"3\",\"m\":8192,\"p\":1"),
		A2(",\"t\":3,\"m\":8192.5,\"p\":1"),
		A2(",\"t\":3,\"m\":8192,\"p\":1,\"pepper\":1"),
		A2(",\"t\":3,\"m\":8192,\"p\":1,\"iter\":10000"),
		A2(",\"t\":3,\"t\":3,\"m\":8192,\"p\":1"),
		"{\"kdf\":\"pbkdf2-sha256\"," SALT ",\"iter\":9999}",
		"{\"kdf\":\"pbkdf2-sha256\"," SALT ",\"iter\":10000001}",
		"{\"kdf\":\"pbkdf2-sha256\"," SALT "}",
		"{\"kdf\":\"pbkdf2-sha256\"," SALT ",\"iter\":10000,\"t\":3}",
	};
	atrest_keyprov *kp = pass_kp("pw");
	char id[32];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *po = (char *)1;

		assert_int_equal(kp->bind(kp, bad[i], &po), ATREST_EINTEGRITY);
		assert_null(po);
	}
	assert_int_equal(kp->key_id(kp, id, sizeof(id)), ATREST_EINVAL);
	atrest_keyprov_free(kp);
#undef A2
#undef SALT
}

/*
 * Parameters costlier than atrest ever writes are refused before any
 * work (a hostile keyring or file asking for 1 GiB and 16 passes), unless
 * ATREST_KDF_ALLOW_COSTLY=1.
 */
static void test_pass_params_capped(void **state)
{
#define SALT "\"salt\":\"c29tZSBzYWx0IGZvciB0ZXN0\""
#define A2(rest) "{\"kdf\":\"argon2id\"," SALT rest "}"
	static const char *const costly[] = {
		A2(",\"t\":16,\"m\":1048576,\"p\":4"),
		A2(",\"t\":4,\"m\":8192,\"p\":1"),
		A2(",\"t\":3,\"m\":65537,\"p\":1"),
		A2(",\"t\":1,\"m\":8192,\"p\":5"),
		"{\"kdf\":\"pbkdf2-sha256\"," SALT ",\"iter\":600001}",
	};
	atrest_keyprov *kp = pass_kp("pw");

	(void)state;
	unsetenv("ATREST_KDF_ALLOW_COSTLY");
	for (size_t i = 0; i < sizeof(costly) / sizeof(costly[0]); i++) {
		char *po = (char *)1;

		assert_int_equal(kp->bind(kp, costly[i], &po), ATREST_ETOOBIG);
		assert_null(po);
		assert_non_null(strstr(last_msg(), "ATREST_KDF_ALLOW_COSTLY=1"));
		assert_null(strstr(last_msg(), "keyring"));
	}
	/* Exactly what atrest writes is accepted; more when allowed. */
	assert_int_equal(kp->bind(kp, A2(",\"t\":3,\"m\":8192,\"p\":4"), NULL), 0);
	setenv("ATREST_KDF_ALLOW_COSTLY", "1", 1);
	assert_int_equal(kp->bind(kp, costly[1], NULL), 0);
	assert_int_equal(kp->bind(kp, A2(",\"t\":17,\"m\":8192,\"p\":1"), NULL),
		ATREST_EINTEGRITY);
	unsetenv("ATREST_KDF_ALLOW_COSTLY");
	atrest_keyprov_free(kp);
#undef A2
#undef SALT
}

/* ---- the environment */

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(all_env) / sizeof(all_env[0]); i++)
		unsetenv(all_env[i]);
}

static int env_kp(int old, const char **kind)
{
	atrest_keyprov *kp = (atrest_keyprov *)&kp;
	int rc = atrest_keyprov_from_env(&kp, old);

	*kind = rc == 0 ? atrest_keyprov_kind(kp) : NULL;
	if (rc == 0)
		atrest_keyprov_free(kp);
	else
		assert_null(kp);
	return rc;
}

static void test_env_none_or_many(void **state)
{
	const char *kind;

	(void)state;
	clear_env();
	assert_int_equal(env_kp(0, &kind), ATREST_ENOTFOUND);
	assert_non_null(strstr(last_msg(), "ATREST_KEY"));
	assert_non_null(strstr(last_msg(), "ATREST_PASSPHRASE"));
	assert_int_equal(env_kp(1, &kind), ATREST_ENOTFOUND);
	assert_non_null(strstr(last_msg(), "ATREST_OLD_KEY_FILE"));
	setenv("ATREST_KEY", "", 1); /* empty counts as unset */
	assert_int_equal(env_kp(0, &kind), ATREST_ENOTFOUND);
	setenv("ATREST_KEY", HEX_KEY, 1);
	setenv("ATREST_PASSPHRASE", "pw", 1);
	assert_int_equal(env_kp(0, &kind), ATREST_EINVAL);
	assert_non_null(strstr(last_msg(), "ATREST_KEY"));
	assert_non_null(strstr(last_msg(), "ATREST_PASSPHRASE"));
	assert_null(strstr(last_msg(), HEX_KEY));
	/* The old set is separate from the current one. */
	assert_int_equal(env_kp(1, &kind), ATREST_ENOTFOUND);
	setenv("ATREST_OLD_KEY", B64_KEY, 1);
	setenv("ATREST_OLD_KEY_URI", "pkcs11:token=a", 1);
	assert_int_equal(env_kp(1, &kind), ATREST_EINVAL);
	assert_non_null(strstr(last_msg(), "ATREST_OLD_KEY_URI"));
	clear_env();
}

static void test_env_each(void **state)
{
	char dir[4096], path[4200];
	const char *kind;

	(void)state;
	clear_env();
	setenv("ATREST_KEY", HEX_KEY, 1);
	assert_int_equal(env_kp(0, &kind), 0);
	assert_string_equal(kind, "key");
	clear_env();
	setenv("ATREST_PASSPHRASE", "a passphrase", 1);
	assert_int_equal(env_kp(0, &kind), 0);
	assert_string_equal(kind, "passphrase");
	clear_env();
	th_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/k", dir);
	write_mode(path, B64_KEY, strlen(B64_KEY), 0600);
	setenv("ATREST_OLD_KEY_FILE", path, 1);
	assert_int_equal(env_kp(1, &kind), 0);
	assert_string_equal(kind, "key-file");
	assert_int_equal(env_kp(0, &kind), ATREST_ENOTFOUND);
	clear_env();
	setenv("ATREST_OLD_PASSPHRASE", "old one", 1);
	assert_int_equal(env_kp(1, &kind), 0);
	assert_string_equal(kind, "passphrase");
	clear_env();
	setenv("ATREST_OLD_KEY", HEX_KEY_UP, 1);
	assert_int_equal(env_kp(1, &kind), 0);
	assert_string_equal(kind, "key");
	clear_env();
	th_rmrf(dir);
}

static void test_env_refused(void **state)
{
	const char *kind;

	(void)state;
	clear_env();
	setenv("ATREST_KEY", "deadbeef-my-secret-key", 1);
	assert_int_equal(env_kp(0, &kind), ATREST_EKEY);
	assert_int_equal(strncmp(last_msg(), "ATREST_KEY: ", 12), 0);
	assert_null(strstr(last_msg(), "my-secret"));
	clear_env();
	setenv("ATREST_KEY_URI",
		"pkcs11:token=atrest;object=kek1"
		"?module-path=/x.so&pin-value=98761234",
		1);
	assert_int_equal(env_kp(0, &kind), ATREST_EKEY);
#ifdef ATREST_WITH_PKCS11
	assert_non_null(strstr(last_msg(), "pkcs11: cannot load module"));
#else
	assert_non_null(strstr(last_msg(),
		"unsupported key URI scheme "
		"'pkcs11:'"));
#endif
	assert_null(strstr(last_msg(), "98761234"));
	assert_null(strstr(last_msg(), "kek1"));
	setenv("ATREST_KEY_URI", "kmip://10.0.0.1:5696/abc?key=/k.pem", 1);
	assert_int_equal(env_kp(0, &kind), ATREST_EKEY);
#ifdef ATREST_WITH_KMIP
	assert_non_null(strstr(last_msg(), "kmip URI: a client certificate"));
#else
	assert_non_null(strstr(last_msg(), "'kmip:'"));
#endif
	assert_null(strstr(last_msg(), "10.0.0.1"));
	setenv("ATREST_KEY_URI", "/not/a/uri:secret", 1);
	assert_int_equal(env_kp(0, &kind), ATREST_EKEY);
	assert_null(strstr(last_msg(), "secret"));
	clear_env();
	setenv("ATREST_OLD_KEY_FILE", "/nonexistent/atrest.key", 1);
	assert_int_equal(env_kp(1, &kind), ATREST_EKEY);
	assert_int_equal(strncmp(last_msg(), "ATREST_OLD_KEY_FILE: ", 21), 0);
	clear_env();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_forms),
		cmocka_unit_test(test_text_refused),
		cmocka_unit_test(test_file_text_forms),
		cmocka_unit_test(test_file_raw),
		cmocka_unit_test(test_file_refused),
		cmocka_unit_test(test_file_fifo),
		cmocka_unit_test(test_wrap_roundtrip),
		cmocka_unit_test(test_unwrap_refused),
		cmocka_unit_test(test_key_id),
		cmocka_unit_test(test_pass_unbound),
		cmocka_unit_test(test_pass_bind),
		cmocka_unit_test(test_pass_cached),
		cmocka_unit_test(test_pass_pbkdf2),
		cmocka_unit_test(test_pass_params_refused),
		cmocka_unit_test(test_pass_params_capped),
		cmocka_unit_test(test_env_none_or_many),
		cmocka_unit_test(test_env_each),
		cmocka_unit_test(test_env_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
