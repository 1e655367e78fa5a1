/*
 * The keyring's cryptography (src/lib/keyring.c): what an attacker holding
 * an old master key and an old copy of the keyring can still do after a
 * rewrap (nothing the store accepts), and how an edited store id or check
 * is reported (damage, not a wrong key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/atrest.h"
#include "helpers.h"
#include "keyring.h"

static uint8_t KA[32], KB[32];

/* The keyring file as a NUL-terminated string. */
static char *keyring_text(const char *dir, size_t *len)
{
	char p[512], *t;
	uint8_t *b;

	snprintf(p, sizeof(p), "%s/.atrest/keyring", dir);
	b = th_read_file(p, len);
	assert_non_null(b);
	t = malloc(*len + 1);
	assert_non_null(t);
	memcpy(t, b, *len);
	t[*len] = '\0';
	free(b);
	return t;
}

static void keyring_write(const char *dir, const char *text)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/.atrest/keyring", dir);
	assert_int_equal(th_write_file(p, text, strlen(text)), 0);
}

/* A parsed keyring, unlocked by kp (which is freed). */
static atrest__keyring *unlocked(const char *text, size_t len, atrest_keyprov *kp)
{
	atrest__keyring *kr;

	assert_int_equal(atrest__keyring_parse(&kr, text, len), 0);
	assert_int_equal(atrest__keyring_unlock(kr, kp), 0);
	atrest_keyprov_free(kp);
	return kr;
}

/*
 * The attack of a stolen old master key: the current keyring, edited to
 * make data key id active again, MAC'd with the MAC key of the old copy
 * (its check unwraps under the old master key).
 */
static char *forge(
	const char *current, size_t len, const atrest__keyring *old, uint32_t id)
{
	atrest__keyring *kr;
	char *text;
	size_t n;

	assert_int_equal(atrest__keyring_parse(&kr, current, len), 0);
	for (size_t i = 0; i < kr->nkeys; i++)
		if (kr->keys[i].status == ATREST__DEK_ACTIVE)
			kr->keys[i].status = ATREST__DEK_RETIRED;
	atrest__keyring_find(kr, id)->status = ATREST__DEK_ACTIVE;
	kr->active = id;
	kr->generation++;
	assert_int_equal(atrest__secret_dup(&kr->mac_key, old->mac_key->data, 32), 0);
	assert_int_equal(atrest__keyring_serialize(&text, &n, kr), 0);
	atrest__keyring_free(kr);
	return text;
}

/*
 * Rewrap, expose and re-encrypt (the incident response to a leaked master
 * key): the old master key with an old copy of the keyring can no longer
 * produce a keyring the store accepts.
 */
static void test_rewrap_forgery(void **state)
{
	char dir[256], *old_text, *cur_text, *forged;
	size_t old_len, cur_len;
	atrest__keyring *old;
	atrest_job_stats js;
	atrest_store *st;
	uint32_t k1;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KA), NULL), 0);
	assert_int_equal(atrest_put(st, "a", "secret", 6, NULL), 0);
	assert_int_equal(atrest_object_key_id(&k1, st, "a"), 0);
	atrest_store_close(st);
	old_text = keyring_text(dir, &old_len);
	/* Incident response: B replaces A, key 1 exposed, objects moved off. */
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KB), th_raw_key(KA)), 0);
	assert_int_equal(atrest_rewrap(st, NULL), 0);
	assert_int_equal(atrest_key_expose(st, k1), 0);
	assert_int_equal(atrest_reencrypt(&js, st, k1, "", NULL, NULL), 0);
	assert_int_equal(js.done, 1);
	atrest_store_close(st);
	/* The attacker: A and the old copy give the old MAC key. */
	old = unlocked(old_text, old_len, th_raw_key(KA));
	cur_text = keyring_text(dir, &cur_len);
	forged = forge(cur_text, cur_len, old, k1);
	keyring_write(dir, forged);
	assert_int_equal(
		th_store_open(&st, dir, th_raw_key(KB), NULL), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "MAC"));
	/* Nor does the old check with the old MAC key open under B. */
	keyring_write(dir, cur_text);
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KB), NULL), 0);
	atrest_store_close(st);
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KA), NULL), ATREST_EKEY);
	free(forged);
	free(cur_text);
	free(old_text);
	atrest__keyring_free(old);
	th_rmrf(dir);
}

/* Rewrap to the same master key also changes the check and the MAC key. */
static void test_rewrap_new_check(void **state)
{
	char dir[256], *before, *after;
	size_t bl, al;
	atrest__keyring *a, *b;
	atrest_store *st;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KA), NULL), 0);
	atrest_store_close(st);
	before = keyring_text(dir, &bl);
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KA), NULL), 0);
	assert_int_equal(atrest_rewrap(st, NULL), 0);
	assert_int_equal(atrest_put(st, "x", "1", 1, NULL), 0);
	atrest_store_close(st);
	after = keyring_text(dir, &al);
	a = unlocked(before, bl, th_raw_key(KA));
	b = unlocked(after, al, th_raw_key(KA));
	assert_int_not_equal(memcmp(a->check_secret->data, b->check_secret->data, 32), 0);
	assert_int_not_equal(memcmp(a->mac_key->data, b->mac_key->data, 32), 0);
	atrest__keyring_free(a);
	atrest__keyring_free(b);
	free(before);
	free(after);
	th_rmrf(dir);
}

/* Replace the first occurrence of from in the keyring file by to. */
static void edit_keyring(const char *dir, const char *from, const char *to)
{
	size_t len;
	char *t = keyring_text(dir, &len), *at = strstr(t, from), *out;

	assert_non_null(at);
	out = malloc(len + strlen(to) + 1);
	assert_non_null(out);
	sprintf(out, "%.*s%s%s", (int)(at - t), t, to, at + strlen(from));
	keyring_write(dir, out);
	free(out);
	free(t);
}

/* The value of "field": "..." in the keyring (the first one). */
static void field_value(char *out, size_t cap, const char *dir, const char *field)
{
	char pat[64], *t, *v;
	size_t len, n;

	t = keyring_text(dir, &len);
	snprintf(pat, sizeof(pat), "\"%s\": \"", field);
	v = strstr(t, pat);
	assert_non_null(v);
	v += strlen(pat);
	n = strcspn(v, "\"");
	assert_true(n < cap);
	memcpy(out, v, n);
	out[n] = '\0';
	free(t);
}

/*
 * An edited store id or check, opened with the very key the keyring
 * names, is damage (integrity), not a wrong key; another key stays a key
 * error.
 */
static void test_edited_check_is_damage(void **state)
{
	static const char *fields[] = {"store_id", "check"};
	char dir[256], val[256], bad[256];
	atrest_store *st;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KA), NULL), 0);
	atrest_store_close(st);
	for (int f = 0; f < 2; f++) {
		field_value(val, sizeof(val), dir, fields[f]);
		snprintf(bad, sizeof(bad), "%s", val);
		bad[4] = bad[4] == 'a' ? 'b' : 'a';
		edit_keyring(dir, val, bad);
		assert_int_equal(
			th_store_open(&st, dir, th_raw_key(KA), NULL), ATREST_EINTEGRITY);
		assert_non_null(strstr(atrest_error_last()->message, "keyring damaged"));
		assert_null(strstr(atrest_error_last()->message, "wrong master key"));
		assert_int_equal(
			th_store_open(&st, dir, th_raw_key(KB), NULL), ATREST_EKEY);
		edit_keyring(dir, bad, val);
		assert_int_equal(th_store_open(&st, dir, th_raw_key(KA), NULL), 0);
		atrest_store_close(st);
	}
	th_rmrf(dir);
}

/*
 * A keyring whose passphrase parameters were edited to ask for 1 GiB and
 * 16 passes is refused at once (before the MAC can be checked, nothing
 * is derived), and the message names the keyring.
 */
static void test_costly_params_refused(void **state)
{
	char dir[256];
	atrest_keyprov *kp;
	atrest_store *st;

	(void)state;
	setenv("ATREST_ARGON2_TEST_MEMORY_KIB", "8192", 1);
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(atrest_keyprov_passphrase(&kp, "pw", 2), 0);
	assert_int_equal(th_store_open(&st, dir, kp, NULL), 0);
	atrest_store_close(st);
	edit_keyring(dir, "\\\"t\\\":3,\\\"m\\\":8192", "\\\"t\\\":16,\\\"m\\\":1048576");
	assert_int_equal(atrest_keyprov_passphrase(&kp, "pw", 2), 0);
	/* ETOOBIG: refused by the limit, not by a failed 1 GiB allocation. */
	assert_int_equal(th_store_open(&st, dir, kp, NULL), ATREST_ETOOBIG);
	assert_non_null(strstr(atrest_error_last()->message, "keyring: "));
	assert_non_null(strstr(atrest_error_last()->message, "ATREST_KDF_ALLOW_COSTLY"));
	unsetenv("ATREST_ARGON2_TEST_MEMORY_KIB");
	th_rmrf(dir);
}

/* Members of the wrong type are damage, not "absent" (the MAC is blind
 * to the difference). */
static void test_parse_types(void **state)
{
	static const char *const edits[][2] = {
		{"\"params\": null", "\"params\": 5"},
		{"\"status\": \"destroyed\"",
			"\"status\": \"destroyed\", \"wrapped\": null"},
	};
	char dir[256];
	atrest_store *st;
	uint32_t k1;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KA), NULL), 0);
	assert_int_equal(atrest_put(st, "a", "x", 1, NULL), 0);
	assert_int_equal(atrest_object_key_id(&k1, st, "a"), 0);
	assert_int_equal(atrest_rotate(NULL, st), 0);
	assert_int_equal(atrest_key_destroy(st, k1, 1), 0);
	atrest_store_close(st);
	for (int i = 0; i < 2; i++) {
		edit_keyring(dir, edits[i][0], edits[i][1]);
		assert_int_equal(
			th_store_open(&st, dir, th_raw_key(KA), NULL), ATREST_EINTEGRITY);
		edit_keyring(dir, edits[i][1], edits[i][0]);
		assert_int_equal(th_store_open(&st, dir, th_raw_key(KA), NULL), 0);
		atrest_store_close(st);
	}
	th_rmrf(dir);
}

/*
 * The audit key: under the MAC (an edited or removed member is damage), and
 * a rewrap to another master key wraps the same seed under it with the new
 * check secret (same public key; the old master key unwraps it no more).
 */
static void test_audit_key(void **state)
{
	char dir[256], pub[65], bad[65];
	atrest__secret *seed = NULL;
	atrest__keyring *a, *b;
	atrest_keyprov *kp;
	atrest_store *st;
	char *text;
	size_t len;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KA), NULL), 0);
	atrest_store_close(st);
	field_value(pub, sizeof(pub), dir, "public");
	snprintf(bad, sizeof(bad), "%s", pub);
	bad[7] = bad[7] == 'a' ? 'b' : 'a';
	edit_keyring(dir, pub, bad);
	assert_int_equal(
		th_store_open(&st, dir, th_raw_key(KA), NULL), ATREST_EINTEGRITY);
	edit_keyring(dir, bad, pub);
	text = keyring_text(dir, &len);
	a = unlocked(text, len, th_raw_key(KA));
	free(text);
	edit_keyring(dir, "\"audit\": {", "\"audit_gone\": {");
	assert_int_equal(
		th_store_open(&st, dir, th_raw_key(KA), NULL), ATREST_EINTEGRITY);
	edit_keyring(dir, "\"audit_gone\": {", "\"audit\": {");
	/* Opened with KB and the old KA: rewrapped to KB. */
	assert_int_equal(th_store_open(&st, dir, th_raw_key(KB), th_raw_key(KA)), 0);
	atrest_store_close(st);
	text = keyring_text(dir, &len);
	b = unlocked(text, len, th_raw_key(KB));
	free(text);
	assert_memory_equal(a->audit_pub, b->audit_pub, 32);
	assert_int_not_equal(memcmp(a->mac_key->data, b->mac_key->data, 32), 0);
	kp = th_raw_key(KB);
	assert_int_equal(atrest__keyring_audit_seed(&seed, b, kp), 0);
	atrest_keyprov_free(kp);
	atrest__secret_free(seed);
	atrest__secret_free(b->audit_seed);
	b->audit_seed = NULL;
	kp = th_raw_key(KA);
	assert_int_not_equal(atrest__keyring_audit_seed(&seed, b, kp), 0);
	atrest_keyprov_free(kp);
	atrest__keyring_free(a);
	atrest__keyring_free(b);
	th_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_audit_key),
		cmocka_unit_test(test_rewrap_forgery),
		cmocka_unit_test(test_rewrap_new_check),
		cmocka_unit_test(test_edited_check_is_damage),
		cmocka_unit_test(test_costly_params_refused),
		cmocka_unit_test(test_parse_types),
	};

	th_fill(KA, sizeof(KA), 11);
	th_fill(KB, sizeof(KB), 12);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
