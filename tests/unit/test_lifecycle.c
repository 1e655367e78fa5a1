/*
 * Key lifecycle through the library: rotation and its policy, rewrap with
 * old keys, two handles as two processes, expose, destroy, re-encryption,
 * migration, and the data-key cache through a provider outage (a counting
 * fake provider wrapping a real one).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "atrest/sys/keyprov.h"
#include "helpers.h"
#include "keyring.h"

static uint8_t KA[32], KB[32];

/* The shared helpers, under this file's short names. */
#define raw th_raw_key
#define open_with th_store_open

static uint32_t key_of(atrest_store *st, const char *name)
{
	uint32_t id;

	assert_int_equal(atrest_object_key_id(&id, st, name), 0);
	return id;
}

/* The data keys, oldest first (ids are random: tests go by position). */
typedef struct keyset {
	atrest_key_info v[32];
	uint32_t id[32];
	int n;
} keyset;

static int add_key(const atrest_key_info *k, void *p)
{
	keyset *ks = p;

	assert_true(ks->n < 32);
	ks->v[ks->n] = *k;
	ks->id[ks->n++] = k->id;
	return 0;
}

static keyset keys_of(atrest_store *st, int usage)
{
	keyset ks;

	memset(&ks, 0, sizeof(ks));
	assert_int_equal(atrest_keys_list(st, usage, add_key, &ks), 0);
	return ks;
}

static void test_rotate(void **state)
{
	char dir[256];
	atrest_store *st;
	uint32_t id;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), 0);
	assert_int_equal(atrest_put(st, "old", "one", 3, NULL), 0);
	assert_int_equal(atrest_rotate(&id, st), 0);
	keyset ks = keys_of(st, 0);
	assert_int_equal(ks.n, 2);
	assert_int_equal(id, ks.id[1]);
	assert_int_not_equal(ks.id[0], ks.id[1]);
	assert_int_equal(atrest_put(st, "new", "two", 3, NULL), 0);
	assert_int_equal(key_of(st, "old"), ks.id[0]);
	assert_int_equal(key_of(st, "new"), id);
	th_expect_object(st, "old", "one");
	atrest_store_close(st);
	/* The rotation is durable. */
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), 0);
	assert_int_equal(atrest_put(st, "newer", "3", 1, NULL), 0);
	assert_int_equal(key_of(st, "newer"), id);
	atrest_store_close(st);
	th_rmrf(dir);
}

static void test_policy(void **state)
{
	char dir[256];
	atrest_store *st;
	atrest_settings s = ATREST_SETTINGS_INIT;
	int rotated;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), 0);
	assert_int_equal(atrest_maintain(st, &rotated), 0);
	assert_false(rotated);
	assert_int_equal(atrest_store_settings(&s, st), 0);
	assert_int_equal(s.rotate_days, 30);
	atrest__clock_offset(31 * 86400);
	assert_int_equal(atrest_maintain(st, &rotated), 0);
	assert_true(rotated);
	assert_int_equal(atrest_maintain(st, &rotated), 0);
	assert_false(rotated);
	/* Writers apply the policy themselves. */
	atrest__clock_offset(62 * 86400 + 120);
	assert_int_equal(atrest_put(st, "x", "y", 1, NULL), 0);
	assert_int_equal(key_of(st, "x"), keys_of(st, 0).id[2]);
	atrest__clock_offset(0);
	atrest_store_close(st);
	th_rmrf(dir);
}

static void sha_of_objects(const char *dir, char *out, size_t cap)
{
	char cmd[512];
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		"cd %s && find . -path ./.atrest -prune -o -type f "
		"-print0 | sort -z | xargs -0 sha256sum | sha256sum",
		dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(out, (int)cap, p));
	pclose(p);
}

static void test_rewrap_with_old_key(void **state)
{
	char dir[256], before[128], after[128];
	atrest_store *st;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), 0);
	for (int i = 0; i < 50; i++) {
		char name[32];
		snprintf(name, sizeof(name), "o/%d", i);
		assert_int_equal(atrest_put(st, name, "data", 4, NULL), 0);
	}
	assert_int_equal(atrest_rotate(NULL, st), 0);
	atrest_store_close(st);
	sha_of_objects(dir, before, sizeof(before));
	/* B alone is a wrong key; B with old A rewraps on open. */
	assert_int_equal(open_with(&st, dir, raw(KB), NULL), ATREST_EKEY);
	assert_int_equal(open_with(&st, dir, raw(KB), raw(KA)), 0);
	th_expect_object(st, "o/7", "data");
	atrest_store_close(st);
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), ATREST_EKEY);
	assert_int_equal(open_with(&st, dir, raw(KB), NULL), 0);
	th_expect_object(st, "o/49", "data");
	/* Explicit rewrap to a new provider object, back to A. */
	assert_int_equal(atrest_rewrap(st, raw(KA)), 0);
	assert_int_equal(atrest_put(st, "after", "z", 1, NULL), 0);
	atrest_store_close(st);
	assert_int_equal(open_with(&st, dir, raw(KB), NULL), ATREST_EKEY);
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), 0);
	atrest_store_close(st);
	sha_of_objects(dir, after, sizeof(after));
	/* Only "after" was added: remove it and the objects are untouched. */
	char p[512];
	snprintf(p, sizeof(p), "%s/after", dir);
	unlink(p);
	sha_of_objects(dir, after, sizeof(after));
	assert_string_equal(before, after);
	th_rmrf(dir);
}

/* Two handles on one store stand for two processes. */
static void test_two_handles(void **state)
{
	char dir[256];
	atrest_store *a, *b;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(open_with(&a, dir, raw(KA), NULL), 0);
	assert_int_equal(open_with(&b, dir, raw(KA), NULL), 0);
	assert_int_equal(atrest_rotate(NULL, a), 0);
	assert_int_equal(atrest_put(a, "by-a", "A", 1, NULL), 0);
	/* b has not seen key 2 yet: reading re-reads the keyring. */
	th_expect_object(b, "by-a", "A");
	/* Both rotate: the keyring keeps every key (no lost update). */
	assert_int_equal(atrest_rotate(NULL, b), 0);
	assert_int_equal(atrest_rotate(NULL, a), 0);
	/* b picks up a's rotation within a second, or at once on a refresh. */
	keyset ks = keys_of(b, 0);
	assert_int_equal(ks.n, 4);
	assert_int_equal(atrest_put(b, "by-b", "B", 1, NULL), 0);
	assert_int_equal(key_of(b, "by-b"), ks.id[3]);
	th_expect_object(a, "by-b", "B");
	/* a rewraps to B; b (holding only A) keeps working with its keys. */
	assert_int_equal(atrest_rewrap(a, raw(KB)), 0);
	assert_int_equal(atrest_put(b, "still-b", "S", 1, NULL), 0);
	th_expect_object(b, "by-a", "A");
	th_expect_object(a, "still-b", "S");
	/* A key made after the rewrap is a clear key error for b. */
	assert_int_equal(atrest_rotate(NULL, a), 0);
	assert_int_equal(atrest_put(a, "k5", "5", 1, NULL), 0);
	void *out;
	size_t n;
	assert_int_equal(atrest_get(&out, &n, b, "k5"), ATREST_EKEY);
	assert_non_null(strstr(atrest_error_last()->message, "restart"));
	atrest_store_close(a);
	atrest_store_close(b);
	th_rmrf(dir);
}

static void test_expose_reencrypt_destroy(void **state)
{
	char dir[256];
	atrest_store *st;
	keyset ks;
	uint32_t k1, k2, k3;
	atrest_job_stats js;
	atrest_meta_entry me[] = {{"job", "9"}};
	atrest_meta m = {me, 1};
	atrest_stat_info si = ATREST_STAT_INFO_INIT;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), 0);
	for (int i = 0; i < 20; i++) {
		char name[32];
		snprintf(name, sizeof(name), "r/%02d", i);
		assert_int_equal(
			atrest_put(st, name, "payload", 7, i == 3 ? &m : NULL), 0);
	}
	k1 = keys_of(st, 0).id[0];
	assert_int_equal(atrest_key_expose(st, k1), 0);
	ks = keys_of(st, 1);
	k2 = ks.id[1];
	assert_string_equal(ks.v[0].status, "exposed");
	assert_string_equal(ks.v[1].status, "active");
	assert_int_equal(ks.v[0].objects, 20);
	assert_int_equal(ks.v[0].bytes, 140);
	assert_int_equal(atrest_key_destroy(st, k1, 0), ATREST_EEXISTS);
	assert_int_equal(atrest_key_destroy(st, k2, 1), ATREST_ERROR);
	assert_int_equal(atrest_reencrypt(&js, st, k2, "", NULL, NULL), ATREST_ERROR);
	assert_int_equal(atrest_reencrypt(&js, st, k1, "", NULL, NULL), 0);
	assert_int_equal(js.done, 20);
	assert_int_equal(js.failed, 0);
	assert_int_equal(key_of(st, "r/05"), k2);
	th_expect_object(st, "r/05", "payload");
	assert_int_equal(atrest_stat(&si, st, "r/03"), 0);
	assert_int_equal(si.meta_count, 1);
	assert_string_equal(si.meta[0].value, "9");
	atrest_stat_info_clear(&si);
	/* Resumable: a second run has nothing left to do. */
	assert_int_equal(atrest_reencrypt(&js, st, k1, "", NULL, NULL), 0);
	assert_int_equal(js.done, 0);
	assert_int_equal(atrest_key_destroy(st, k1, 0), 0);
	assert_string_equal(keys_of(st, 0).v[0].status, "destroyed");
	/* Crypto-shredding: an object under a destroyed key is a key error. */
	assert_int_equal(atrest_rotate(&k3, st), 0);
	assert_int_equal(atrest_put(st, "shred", "gone", 4, NULL), 0);
	assert_int_equal(atrest_rotate(NULL, st), 0);
	assert_int_equal(atrest_key_destroy(st, k3, 1), 0);
	void *out;
	size_t n;
	char want[32];
	assert_int_equal(atrest_get(&out, &n, st, "shred"), ATREST_EKEY);
	snprintf(want, sizeof(want), "data key %u", k3);
	assert_non_null(strstr(atrest_error_last()->message, want));
	atrest_store_close(st);
	/* Still so after reopening: the key is gone from the keyring file. */
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), 0);
	assert_int_equal(atrest_get(&out, &n, st, "shred"), ATREST_EKEY);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* Usage counts are exact for CBC-HMAC too (its padding is not counted). */
static void test_usage_cbc(void **state)
{
	char dir[256];
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	o.path = dir;
	o.create = 1;
	o.cipher = ATREST_CIPHER_AES_256_CBC_HMAC_SHA256;
	o.key = raw(KA);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_put(st, "a", "1234567", 7, NULL), 0);
	assert_int_equal(atrest_put(st, "b", "", 0, NULL), 0);
	assert_int_equal(atrest_put(st, "c", "0123456789abcdefX", 17, NULL), 0);
	keyset ks = keys_of(st, 1);
	assert_int_equal(ks.v[0].objects, 3);
	assert_int_equal(ks.v[0].bytes, 24);
	atrest_store_close(st);
	th_rmrf(dir);
}

static void test_migrate(void **state)
{
	char dir[256], p[512];
	atrest_store *st;
	atrest_job_stats js;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	snprintf(p, sizeof(p), "%s/a", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/a/plain1", dir);
	assert_int_equal(th_write_file(p, "secret one", 10), 0);
	snprintf(p, sizeof(p), "%s/b", dir);
	assert_int_equal(th_write_file(p, "secret two", 10), 0);
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), 0);
	assert_int_equal(atrest_put(st, "enc", "already", 7, NULL), 0);
	assert_int_equal(atrest_migrate(&js, st, "a/", NULL, NULL), 0);
	assert_int_equal(js.done, 1);
	assert_int_equal(atrest_migrate(&js, st, "", NULL, NULL), 0);
	assert_int_equal(js.done, 1);
	assert_int_equal(js.scanned, 3);
	assert_int_equal(atrest_migrate(&js, st, "", NULL, NULL), 0);
	assert_int_equal(js.done, 0);
	th_expect_object(st, "a/plain1", "secret one");
	th_expect_object(st, "b", "secret two");
	size_t n;
	uint8_t *raw_b = th_read_file(p, &n);
	assert_null(memmem(raw_b, n, "secret", 6));
	free(raw_b);
	atrest_store_close(st);
	th_rmrf(dir);
}

struct hot {
	atrest_store *st;
	int last; /* the last version committed */
	int stop;
};

static void *overwrite_hot(void *p)
{
	struct hot *h = p;
	char v[32];

	for (int i = 1; i <= 300 && !__atomic_load_n(&h->stop, __ATOMIC_RELAXED); i++) {
		snprintf(v, sizeof(v), "version %d", i);
		if (atrest_put(h->st, "hot", v, strlen(v), NULL) != 0)
			break;
		__atomic_store_n(&h->last, i, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * An engine overwrites a name while it is re-encrypted: the re-encrypted
 * copy is published only over the version it was made from, so the last
 * version written always survives.
 */
static void test_reencrypt_races_overwrites(void **state)
{
	char dir[256], want[32];
	atrest_store *st, *st2;
	struct hot h = {0};
	atrest_job_stats js;
	pthread_t th;
	uint32_t old;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(open_with(&st, dir, raw(KA), NULL), 0);
	assert_int_equal(open_with(&st2, dir, raw(KA), NULL), 0);
	assert_int_equal(atrest_put(st, "hot", "version 0", 9, NULL), 0);
	h.st = st2;
	assert_int_equal(pthread_create(&th, NULL, overwrite_hot, &h), 0);
	for (int i = 0; i < 20; i++) {
		old = keys_of(st, 0).id[i];
		assert_int_equal(atrest_rotate(NULL, st), 0);
		assert_int_equal(atrest_reencrypt(&js, st, old, "", NULL, NULL), 0);
	}
	__atomic_store_n(&h.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	snprintf(want, sizeof(want), "version %d", h.last);
	th_expect_object(st, "hot", want);
	atrest_store_close(st2);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* ---- a provider that counts calls and can be switched off ---- */

static th_kp FAKE;
static int FAKE_DOWN;

static int fake_down(th_kp *k, int unwrap)
{
	(void)k;
	(void)unwrap;
	return FAKE_DOWN ? ATREST_EUNAVAILABLE : 0;
}

static void fake_init(void)
{
	th_kp_init(&FAKE, "fake", raw(KA));
	FAKE.hook = fake_down;
	FAKE_DOWN = 0;
}

static void test_key_cache_outage(void **state)
{
	char dir[256];
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	fake_init();
	o.path = dir;
	o.create = 1;
	o.key = &FAKE.parent;
	o.key_cache_ttl = 100;
	o.key_cache_grace = 1000;
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_put(st, "a", "1", 1, NULL), 0);
	atrest_store_close(st);
	o.key = &FAKE.parent;
	assert_int_equal(atrest_store_open(&st, &o), 0);
	int base = FAKE.unwraps;
	for (int i = 0; i < 10; i++)
		th_expect_object(st, "a", "1");
	assert_int_equal(FAKE.unwraps, base + 1); /* cached after the first */
	/* The provider goes down: cached keys keep working, in and past TTL. */
	FAKE_DOWN = 1;
	th_expect_object(st, "a", "1");
	assert_int_equal(atrest_put(st, "b", "2", 1, NULL), 0);
	atrest__clock_offset(500);
	th_expect_object(st, "a", "1");
	assert_int_equal(atrest_put(st, "c", "3", 1, NULL), 0);
	/* Past TTL + grace the key is dropped and the outage shows. */
	atrest__clock_offset(2000);
	void *out;
	size_t n;
	assert_int_equal(atrest_get(&out, &n, st, "a"), ATREST_EUNAVAILABLE);
	/* Back up: fresh unwrap, and working again. */
	FAKE_DOWN = 0;
	th_expect_object(st, "c", "3");
	atrest__clock_offset(0);
	atrest_store_close(st);
	FAKE.real->free(FAKE.real);
	th_rmrf(dir);
}

/* Rotation needs the provider (to wrap the new key): while it is down,
 * writers go on with the old key until force-days, then stop. */
static void test_force_days(void **state)
{
	char dir[256];
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	fake_init();
	o.path = dir;
	o.create = 1;
	o.key = &FAKE.parent;
	o.key_cache_grace = 200 * 86400; /* the cached key outlives the test */
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_put(st, "a", "1", 1, NULL), 0);
	FAKE_DOWN = 1;
	atrest__clock_offset(31 * 86400);
	assert_int_equal(atrest_put(st, "b", "2", 1, NULL), 0);
	assert_int_equal(key_of(st, "b"), key_of(st, "a")); /* rotation failed */
	atrest__clock_offset(91 * 86400);
	assert_int_equal(atrest_put(st, "c", "3", 1, NULL), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(atrest_error_last()->message, "force-days"));
	/* The fake says nothing itself: the checked wrapper names it. */
	assert_non_null(strstr(atrest_error_last()->message, "key provider 'fake'"));
	assert_int_equal(atrest_get(&out, &n, st, "c"), ATREST_ENOTFOUND);
	th_expect_object(st, "b", "2"); /* reading goes on */
	FAKE_DOWN = 0;
	atrest__clock_offset(91 * 86400 + 120);
	assert_int_equal(atrest_put(st, "c", "3", 1, NULL), 0);
	assert_int_equal(key_of(st, "c"), keys_of(st, 0).id[1]);
	atrest__clock_offset(0);
	atrest_store_close(st);
	FAKE.real->free(FAKE.real);
	th_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotate),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_rewrap_with_old_key),
		cmocka_unit_test(test_two_handles),
		cmocka_unit_test(test_expose_reencrypt_destroy),
		cmocka_unit_test(test_usage_cbc),
		cmocka_unit_test(test_migrate),
		cmocka_unit_test(test_reencrypt_races_overwrites),
		cmocka_unit_test(test_key_cache_outage),
		cmocka_unit_test(test_force_days),
	};

	th_fill(KA, 32, 1);
	th_fill(KB, 32, 2);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
