/*
 * Keyring persistence: a keyring change is published only after its write
 * succeeded (the rotation race), concurrent rotations lose nothing,
 * settings live in the keyring (authenticated, seen by other processes),
 * no lock is held while a provider works, rollbacks are reported, data-key
 * ids are random and never re-issued, and version 1 keyrings upgrade.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "atrest/sys/keyprov.h"
#include "helpers.h"
#include "keyring.h"
#include "store/fs_int.h"

static uint8_t KEY[32];

static atrest_store *open_dir(const char *dir, int create)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st = NULL;

	o.path = dir;
	o.create = create;
	o.threads = 1;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	return st;
}

static int open_rc(const char *dir)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st = NULL;
	int rc;

	o.path = dir;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	rc = atrest_store_open(&st, &o);
	atrest_store_close(st);
	return rc;
}

static const char *last_msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e && e->message ? e->message : "";
}

/* ---- the rotation race: a keyring write that fails ---- */

#define PUTTERS 3
#define ROTATIONS 150

static _Thread_local int fsync_fails; /* this thread's fsyncs fail */

static int flaky_fsync(int fd)
{
	if (fsync_fails) {
		errno = EIO;
		return -1;
	}
	return fsync(fd);
}

struct race {
	atrest_store *st;
	atomic_int rotating; /* the rotator has not finished */
	int id;
	int committed; /* objects put by this putter */
	int rotate_ok; /* rotations that claimed success */
};

static void *putter(void *p)
{
	struct race *r = p;
	char name[64];

	while (atomic_load(&r[-r->id].rotating) || r->committed < 20) {
		snprintf(name, sizeof(name), "p%d/%05d", r->id, r->committed);
		if (atrest_put(r->st, name, name, strlen(name), NULL) != 0)
			break;
		r->committed++;
	}
	return NULL;
}

static void *rotator(void *p)
{
	struct race *r = p;
	uint32_t id;

	fsync_fails = 1; /* only the keyring's writes, on this thread */
	for (int i = 0; i < ROTATIONS; i++)
		r->rotate_ok += atrest_rotate(&id, r->st) == 0;
	atomic_store(&r->rotating, 0);
	return NULL;
}

/*
 * Every rotation fails to write the keyring while other threads put.  No
 * object may be sealed under a key that was never saved: after reopening,
 * every committed object reads.
 */
static void test_rotation_write_fails(void **state)
{
	struct race r[PUTTERS + 1];
	pthread_t th[PUTTERS + 1];
	char dir[256], name[64];
	atrest_store *st;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_dir(dir, 1);
	memset(r, 0, sizeof(r));
	atomic_init(&r[0].rotating, 1);
	assert_int_equal(atrest__fs_set_syscall("fsync", (void *)flaky_fsync), 0);
	for (int i = 0; i <= PUTTERS; i++) {
		r[i].st = st;
		r[i].id = i;
		assert_int_equal(
			pthread_create(&th[i], NULL, i ? putter : rotator, &r[i]), 0);
	}
	for (int i = 0; i <= PUTTERS; i++)
		pthread_join(th[i], NULL);
	atrest__fs_set_syscall("fsync", NULL);
	assert_int_equal(r[0].rotate_ok, 0);
	atrest_store_close(st);
	st = open_dir(dir, 0);
	for (int i = 1; i <= PUTTERS; i++) {
		assert_true(r[i].committed >= 20);
		for (int k = 0; k < r[i].committed; k++) {
			snprintf(name, sizeof(name), "p%d/%05d", i, k);
			if (atrest_get(&out, &n, st, name) != 0)
				fail_msg("%s does not read after reopening: %s", name,
					last_msg());
			assert_int_equal(n, strlen(name));
			atrest_free(out);
		}
	}
	atrest_store_close(st);
	th_rmrf(dir);
}

/* ---- concurrent rotations from two handles (two processes) ---- */

struct rot {
	atrest_store *st;
	uint32_t ids[20];
	int fails;
};

static void *rotate_many(void *p)
{
	struct rot *r = p;

	for (int i = 0; i < 20; i++)
		r->fails += atrest_rotate(&r->ids[i], r->st) != 0;
	return NULL;
}

static int collect_ids(const atrest_key_info *k, void *p)
{
	uint32_t *v = p;

	v[++v[0]] = k->id;
	return 0;
}

static void test_concurrent_rotations(void **state)
{
	char dir[256];
	struct rot a = {0}, b = {0};
	pthread_t ta, tb;
	uint32_t ids[64] = {0};

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	a.st = open_dir(dir, 1);
	b.st = open_dir(dir, 0);
	assert_int_equal(pthread_create(&ta, NULL, rotate_many, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, rotate_many, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(a.fails + b.fails, 0);
	/* 1 + 40 keys, all different: no update was lost. */
	assert_int_equal(atrest_keys_list(a.st, 0, collect_ids, ids), 0);
	assert_int_equal(ids[0], 41);
	for (int i = 1; i <= 41; i++)
		for (int j = 1; j < i; j++)
			assert_int_not_equal(ids[i], ids[j]);
	for (int i = 0; i < 20; i++) {
		int found = 0;
		for (int k = 1; k <= 41; k++)
			found += ids[k] == a.ids[i] || ids[k] == b.ids[i];
		assert_int_equal(found, 2);
	}
	atrest_store_close(a.st);
	atrest_store_close(b.st);
	th_rmrf(dir);
}

/* ---- settings ---- */

static void test_settings_other_process(void **state)
{
	char dir[256];
	atrest_store *a, *b;
	atrest_settings s = ATREST_SETTINGS_INIT;
	atrest_stat_info si = ATREST_STAT_INFO_INIT;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	a = open_dir(dir, 1);
	b = open_dir(dir, 0);
	assert_int_equal(atrest_store_settings(&s, b), 0);
	s.cipher = ATREST_CIPHER_CHACHA20_POLY1305;
	s.segment_size = 4096;
	assert_int_equal(atrest_store_set_settings(b, &s), 0);
	/* a re-reads the keyring (at most once a second) and so the settings. */
	atrest__clock_offset(2);
	assert_int_equal(atrest_put(a, "x", "data", 4, NULL), 0);
	assert_int_equal(atrest_stat(&si, a, "x"), 0);
	assert_int_equal(si.cipher, ATREST_CIPHER_CHACHA20_POLY1305);
	assert_int_equal(si.segment_size, 4096);
	atrest_stat_info_clear(&si);
	memset(&s, 0, sizeof(s));
	s.version = ATREST_SETTINGS_VERSION;
	assert_int_equal(atrest_store_settings(&s, a), 0);
	assert_int_equal(s.segment_size, 4096);
	atrest__clock_offset(0);
	/* Shown without a key, as written. */
	memset(&s, 0, sizeof(s));
	s.version = ATREST_SETTINGS_VERSION;
	assert_int_equal(atrest_settings_peek(&s, dir, NULL), 0);
	assert_int_equal(s.cipher, ATREST_CIPHER_CHACHA20_POLY1305);
	assert_int_equal(atrest_settings_peek(&s, dir, "nobody"), ATREST_ENOTFOUND);
	atrest_store_close(a);
	atrest_store_close(b);
	th_rmrf(dir);
}

/* Replace the first from with to in dir/rel. */
static void edit_file(const char *dir, const char *rel, const char *from, const char *to)
{
	char p[512];
	size_t n;
	char *buf, *hit, *out;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	buf = (char *)th_read_file(p, &n);
	assert_non_null(buf);
	buf = realloc(buf, n + 1);
	buf[n] = '\0';
	hit = strstr(buf, from);
	assert_non_null(hit);
	out = malloc(n + strlen(to) + 1);
	memcpy(out, buf, (size_t)(hit - buf));
	strcpy(out + (hit - buf), to);
	strcat(out, hit + strlen(from));
	assert_int_equal(th_write_file(p, out, strlen(out)), 0);
	free(buf);
	free(out);
}

/*
 * Whoever can write the store cannot switch the cipher or segment size
 * silently: the settings are under the keyring's MAC, and a settings.json
 * beside a version 2 keyring is not read.
 */
static void test_settings_authenticated(void **state)
{
	char dir[256], p[512];
	atrest_store *st;
	atrest_stat_info si = ATREST_STAT_INFO_INIT;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_dir(dir, 1);
	atrest_store_close(st);
	snprintf(p, sizeof(p), "%s/.atrest/settings.json", dir);
	static const char forged[] = "{\"cipher\": \"chacha20-poly1305\", "
				     "\"segment_size\": 1024, \"rotate_days\": 1, "
				     "\"force_days\": 1}";
	assert_int_equal(th_write_file(p, forged, strlen(forged)), 0);
	st = open_dir(dir, 0);
	assert_int_equal(atrest_put(st, "x", "data", 4, NULL), 0);
	assert_int_equal(atrest_stat(&si, st, "x"), 0);
	assert_int_equal(si.cipher, ATREST_CIPHER_AES_256_GCM);
	assert_int_equal(si.segment_size, ATREST_SEGMENT_SIZE_DEFAULT);
	atrest_stat_info_clear(&si);
	atrest_store_close(st);
	edit_file(dir, ".atrest/keyring", "\"aes-256-gcm\"", "\"chacha20-poly1305\"");
	assert_int_equal(open_rc(dir), ATREST_EINTEGRITY);
	assert_non_null(strstr(last_msg(), "MAC"));
	edit_file(dir, ".atrest/keyring", "\"chacha20-poly1305\"", "\"aes-256-gcm\"");
	edit_file(dir, ".atrest/keyring", "\"segment_size\": 65536",
		"\"segment_size\": 1024");
	assert_int_equal(open_rc(dir), ATREST_EINTEGRITY);
	th_rmrf(dir);
}

/*
 * A store made by the previous release (keyring version 1, settings.json):
 * read as it is; its first keyring update folds the settings into the
 * keyring (version 2) and removes settings.json.
 */
static void test_v1_keyring_upgrade(void **state)
{
	char dir[256], cmd[1024], p[512], state_dir[300];
	uint8_t *kr, *key;
	size_t n, klen;
	void *out;
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;
	atrest_settings s = ATREST_SETTINGS_INIT;
	struct stat sb;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	snprintf(cmd, sizeof(cmd), "cp -a %s/store-v1/. %s/", ATREST_VECTORS_DIR, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(p, sizeof(p), "%s/store-v1.key", ATREST_VECTORS_DIR);
	key = th_read_file(p, &klen);
	assert_non_null(key);
	o.path = dir;
	/* The fixture's store id is fixed: its floor must not outlive a run. */
	snprintf(state_dir, sizeof(state_dir), "%s/state", dir);
	o.state_dir = state_dir;
	assert_int_equal(atrest_keyprov_text(&o.key, (const char *)key, klen), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_get(&out, &n, st, "old/object"), 0);
	assert_int_equal(n, 23);
	assert_memory_equal(out, "made by atrest 0.1.0 v1", 23);
	atrest_free(out);
	assert_int_equal(atrest_store_settings(&s, st), 0);
	assert_int_equal(s.cipher, ATREST_CIPHER_CHACHA20_POLY1305);
	assert_int_equal(s.segment_size, 4096);
	assert_int_equal(atrest_rotate(NULL, st), 0);
	atrest_store_close(st);
	snprintf(p, sizeof(p), "%s/.atrest/settings.json", dir);
	assert_int_not_equal(stat(p, &sb), 0);
	snprintf(p, sizeof(p), "%s/.atrest/keyring", dir);
	kr = th_read_file(p, &n);
	assert_non_null(memmem(kr, n, "\"version\": 2", 12));
	assert_non_null(memmem(kr, n, "chacha20-poly1305", 17));
	free(kr);
	assert_int_equal(atrest_keyprov_text(&o.key, (const char *)key, klen), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_get(&out, &n, st, "old/object"), 0);
	atrest_free(out);
	atrest_store_close(st);
	free(key);
	th_rmrf(dir);
}

/* ---- no lock across a provider call ---- */

/* Unwraps wait while block is set; waiting tells that one does. */
static struct slow {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int block;
	int waiting;
} SLOW = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static int slow_unwrap(th_kp *k, int unwrap)
{
	(void)k;
	if (!unwrap)
		return 0;
	pthread_mutex_lock(&SLOW.mu);
	while (SLOW.block) {
		SLOW.waiting = 1;
		pthread_cond_broadcast(&SLOW.cv);
		pthread_cond_wait(&SLOW.cv, &SLOW.mu);
	}
	pthread_mutex_unlock(&SLOW.mu);
	return 0;
}

static void *get_old(void *p)
{
	void *out;
	size_t n;

	if (atrest_get(&out, &n, p, "old") == 0)
		atrest_free(out);
	return NULL;
}

/*
 * While one thread waits for the provider (a slow KMS) to unwrap a key,
 * another reads an object under a cached key without waiting.
 */
static void test_no_lock_across_unwrap(void **state)
{
	char dir[256];
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_keyprov *real;
	atrest_store *st;
	th_kp slow;
	pthread_t th;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	assert_int_equal(atrest_keyprov_raw(&real, KEY, 32), 0);
	th_kp_init(&slow, "slow", real);
	slow.hook = slow_unwrap;
	o.path = dir;
	o.create = 1;
	o.threads = 1;
	o.key = &slow.parent;
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_put(st, "old", "1", 1, NULL), 0);
	atrest_store_close(st);
	o.create = 0;
	o.key = &slow.parent;
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_rotate(NULL, st), 0); /* the new key is cached */
	assert_int_equal(atrest_put(st, "new", "2", 1, NULL), 0);
	pthread_mutex_lock(&SLOW.mu);
	SLOW.block = 1;
	SLOW.waiting = 0;
	pthread_mutex_unlock(&SLOW.mu);
	alarm(120); /* a lock held across the unwrap would hang here: fail */
	assert_int_equal(pthread_create(&th, NULL, get_old, st), 0);
	pthread_mutex_lock(&SLOW.mu);
	while (!SLOW.waiting)
		pthread_cond_wait(&SLOW.cv, &SLOW.mu);
	pthread_mutex_unlock(&SLOW.mu);
	/* The other thread is inside the provider: this must not wait. */
	assert_int_equal(atrest_get(&out, &n, st, "new"), 0);
	atrest_free(out);
	assert_int_equal(atrest_put(st, "newer", "3", 1, NULL), 0);
	pthread_mutex_lock(&SLOW.mu);
	SLOW.block = 0;
	pthread_cond_broadcast(&SLOW.cv);
	pthread_mutex_unlock(&SLOW.mu);
	pthread_join(th, NULL);
	alarm(0);
	atrest_store_close(st);
	real->free(real);
	th_rmrf(dir);
}

/* ---- rollback and data-key ids ---- */

static void copy_file(const char *dir, const char *from, const char *to)
{
	char a[512], b[512];
	size_t n;
	uint8_t *buf;

	snprintf(a, sizeof(a), "%s/%s", dir, from);
	snprintf(b, sizeof(b), "%s/%s", dir, to);
	buf = th_read_file(a, &n);
	assert_non_null(buf);
	assert_int_equal(th_write_file(b, buf, n), 0);
	free(buf);
}

/*
 * A keyring replaced by an older copy: reported by a handle that holds the
 * newer one, and by any later open on this host (the generation floor kept
 * outside the store), until the floor is removed on purpose.
 */
static void test_rollback_reported(void **state)
{
	char dir[256], state_dir[256], cmd[600];
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st, *live;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	th_tmpdir(state_dir, sizeof(state_dir));
	o.path = dir;
	o.create = 1;
	o.state_dir = state_dir;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&live, &o), 0);
	assert_int_equal(atrest_put(live, "a", "1", 1, NULL), 0);
	copy_file(dir, ".atrest/keyring", "keyring.old");
	assert_int_equal(atrest_rotate(NULL, live), 0);
	assert_int_equal(atrest_put(live, "b", "2", 1, NULL), 0);
	copy_file(dir, "keyring.old", ".atrest/keyring");
	/* The live handle sees its keyring go back. */
	atrest__clock_offset(2);
	assert_int_equal(atrest_put(live, "c", "3", 1, NULL), ATREST_EINTEGRITY);
	assert_non_null(strstr(last_msg(), "older copy"));
	atrest__clock_offset(0);
	atrest_store_close(live);
	/* A new open on this host too, naming the floor to remove. */
	o.create = 0;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), ATREST_EINTEGRITY);
	assert_non_null(strstr(last_msg(), "rolled back"));
	assert_non_null(strstr(last_msg(), state_dir));
	/* Another host (no floor) cannot tell: the object under the lost key
	 * is then "not in this keyring". */
	o.state_dir = "";
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_get(&out, &n, st, "b"), ATREST_EINTEGRITY);
	atrest_store_close(st);
	/* A deliberate rollback: remove the floor. */
	snprintf(cmd, sizeof(cmd), "rm -rf %s/generations", state_dir);
	assert_int_equal(system(cmd), 0);
	o.state_dir = state_dir;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	atrest_store_close(st);
	th_rmrf(dir);
	th_rmrf(state_dir);
}

/* Ids are random, unique, and a destroyed one is never issued again. */
static void test_ids_never_reissued(void **state)
{
	char dir[256];
	atrest_store *st;
	uint32_t ids[128] = {0}, id;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_dir(dir, 1);
	for (int i = 0; i < 30; i++)
		assert_int_equal(atrest_rotate(&id, st), 0);
	assert_int_equal(atrest_keys_list(st, 0, collect_ids, ids), 0);
	for (uint32_t i = 1; i < ids[0]; i += 2)
		assert_int_equal(atrest_key_destroy(st, ids[i], 1), 0);
	for (int i = 0; i < 30; i++)
		assert_int_equal(atrest_rotate(&id, st), 0);
	memset(ids, 0, sizeof(ids));
	assert_int_equal(atrest_keys_list(st, 0, collect_ids, ids), 0);
	assert_int_equal(ids[0], 61);
	for (uint32_t i = 1; i <= ids[0]; i++) {
		assert_true(ids[i] >= 1 && ids[i] <= ATREST__DEK_ID_MAX);
		for (uint32_t j = 1; j < i; j++)
			assert_int_not_equal(ids[i], ids[j]);
	}
	atrest_store_close(st);
	th_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotation_write_fails),
		cmocka_unit_test(test_concurrent_rotations),
		cmocka_unit_test(test_settings_other_process),
		cmocka_unit_test(test_settings_authenticated),
		cmocka_unit_test(test_v1_keyring_upgrade),
		cmocka_unit_test(test_no_lock_across_unwrap),
		cmocka_unit_test(test_rollback_reported),
		cmocka_unit_test(test_ids_never_reissued),
	};

	th_fill(KEY, sizeof(KEY), 5);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
