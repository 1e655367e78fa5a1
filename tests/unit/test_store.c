/*
 * The store API end to end on the local directory backend: round trips,
 * ranges, metadata, wrong and missing keys, damaged keyrings, moved objects,
 * plaintext pass-through, threads, kill -9 during puts, and create-only
 * writers racing in threads and processes.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "helpers.h"

static uint8_t KEY[32], OTHER[32];

static atrest_store *open_store(
	const char *dir, const uint8_t *key, int cipher, uint32_t seg, int *rc_out)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st = NULL;
	int rc;

	o.path = dir;
	o.create = 1;
	o.cipher = cipher;
	o.segment_size = seg;
	assert_int_equal(atrest_keyprov_raw(&o.key, key, 32), 0);
	rc = atrest_store_open(&st, &o);
	if (rc_out)
		*rc_out = rc;
	else
		assert_int_equal(rc, 0);
	return st;
}

static void path_of(char *out, size_t cap, const char *dir, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static void test_round_trip_ciphers(void **state)
{
	static const size_t sizes[] = {0, 1, 1023, 1024, 1025, 4096, 70000};
	uint8_t *data = malloc(70000);

	(void)state;
	th_fill(data, 70000, 1);
	for (int c = 1; c <= 3; c++) {
		char dir[256];
		th_tmpdir(dir, sizeof(dir));
		atrest_store *st = open_store(dir, KEY, c, 1024, NULL);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			void *out;
			size_t n;
			assert_int_equal(
				atrest_put(st, "job/chk", data, sizes[i], NULL), 0);
			assert_int_equal(atrest_get(&out, &n, st, "job/chk"), 0);
			assert_int_equal(n, sizes[i]);
			assert_memory_equal(out, data, n);
			atrest_free(out);
		}
		atrest_store_close(st);
		th_rmrf(dir);
	}
	free(data);
}

static void test_stream_and_range(void **state)
{
	char dir[256];
	size_t total = 5 * 1024 + 77, got;
	uint8_t *data = malloc(total), buf[3000];
	atrest_writer *w;
	atrest_reader *r;

	(void)state;
	th_fill(data, total, 2);
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, KEY, 0, 1024, NULL);
	assert_int_equal(atrest_writer_open(&w, st, "s/obj", NULL), 0);
	for (size_t off = 0; off < total; off += 333)
		assert_int_equal(atrest_writer_write(w, data + off,
					 total - off < 333 ? total - off : 333),
			0);
	/* Not visible before commit. */
	assert_int_equal(atrest_reader_open(&r, st, "s/obj"), ATREST_ENOTFOUND);
	assert_int_equal(atrest_writer_commit(w), 0);
	uint64_t offs[] = {0, 1, 1023, 1024, 1025, 2047, 5000, total - 1, total};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		assert_int_equal(
			atrest_get_range(st, "s/obj", offs[i], buf, sizeof(buf), &got),
			0);
		size_t want =
			total - offs[i] < sizeof(buf) ? total - offs[i] : sizeof(buf);
		assert_int_equal(got, want);
		assert_memory_equal(buf, data + offs[i], got);
	}
	assert_int_equal(
		atrest_get_range(st, "s/obj", total + 1, buf, 1, &got), ATREST_EINVAL);
	assert_int_equal(atrest_reader_open(&r, st, "s/obj"), 0);
	assert_int_equal(atrest_reader_size(r), total);
	atrest_reader_close(r);
	/* An aborted writer leaves nothing. */
	assert_int_equal(atrest_writer_open(&w, st, "s/aborted", NULL), 0);
	assert_int_equal(atrest_writer_write(w, data, 4000), 0);
	atrest_writer_abort(w);
	assert_int_equal(atrest_reader_open(&r, st, "s/aborted"), ATREST_ENOTFOUND);
	atrest_store_close(st);
	th_rmrf(dir);
	free(data);
}

static void test_metadata_stat(void **state)
{
	char dir[256];
	atrest_meta_entry e[] = {{"job", "42"}, {"ts", "2026-11-22T10:00:00Z"}};
	atrest_meta m = {e, 2};
	atrest_stat_info si = ATREST_STAT_INFO_INIT;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, KEY, ATREST_CIPHER_CHACHA20_POLY1305, 0, NULL);
	assert_int_equal(atrest_put(st, "m", "hello", 5, &m), 0);
	assert_int_equal(atrest_stat(&si, st, "m"), 0);
	assert_int_equal(si.size, 5);
	assert_int_equal(si.cipher, ATREST_CIPHER_CHACHA20_POLY1305);
	assert_int_equal(si.segment_size, ATREST_SEGMENT_SIZE_DEFAULT);
	/* Data key ids are random 24-bit numbers (never re-issued). */
	assert_true(si.data_key_id >= 1 && si.data_key_id <= 0xFFFFFE);
	assert_int_equal(si.meta_count, 2);
	assert_string_equal(si.meta[0].key, "job");
	assert_string_equal(si.meta[1].value, "2026-11-22T10:00:00Z");
	atrest_stat_info_clear(&si);
	/* The metadata is not stored in clear. */
	char p[512];
	size_t n;
	path_of(p, sizeof(p), dir, "m");
	uint8_t *raw = th_read_file(p, &n);
	assert_null(memmem(raw, n, "2026-11-22", 10));
	assert_null(memmem(raw, n, "hello", 5));
	free(raw);
	atrest_store_close(st);
	th_rmrf(dir);
}

static void test_wrong_missing_malformed_key(void **state)
{
	char dir[256];
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;
	int rc;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_store(dir, KEY, 0, 0, NULL);
	assert_int_equal(atrest_put(st, "a", "x", 1, NULL), 0);
	atrest_store_close(st);
	st = open_store(dir, OTHER, 0, 0, &rc);
	assert_int_equal(rc, ATREST_EKEY);
	assert_null(st);
	assert_non_null(strstr(atrest_error_last()->message, "wrong master key"));
	/* No key at all. */
	unsetenv("ATREST_KEY");
	unsetenv("ATREST_KEY_FILE");
	unsetenv("ATREST_PASSPHRASE");
	unsetenv("ATREST_KEY_URI");
	o.path = dir;
	assert_int_equal(atrest_store_open(&st, &o), ATREST_EKEY);
	/* The same key by another route (text instead of raw) opens the store. */
	char hex[65];
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02X", KEY[i]);
	o.create = 0;
	assert_int_equal(atrest_keyprov_text(&o.key, hex, 64), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	atrest_store_close(st);
	/* Malformed keys are key errors too. */
	const char *bad[] = {"abc", "zz", "0011", "not base64 !!!"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(
			atrest_keyprov_text(&o.key, bad[i], strlen(bad[i])), ATREST_EKEY);
	th_rmrf(dir);
}

static void corrupt_keyring(const char *dir, const char *from, const char *to)
{
	char p[512];
	size_t n;

	path_of(p, sizeof(p), dir, ".atrest/keyring");
	char *text = (char *)th_read_file(p, &n);
	text = realloc(text, n + 1);
	text[n] = '\0';
	char *at = strstr(text, from);
	assert_non_null(at);
	memcpy(at, to, strlen(to));
	assert_int_equal(th_write_file(p, text, n), 0);
	free(text);
}

static void test_keyring_damage(void **state)
{
	char dir[256], p[512];
	int rc;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, KEY, 0, 0, NULL);
	assert_int_equal(atrest_put(st, "a", "x", 1, NULL), 0);
	atrest_store_close(st);
	/* An edited field: the MAC catches it. */
	corrupt_keyring(dir, "\"generation\": 0", "\"generation\": 7");
	st = open_store(dir, KEY, 0, 0, &rc);
	assert_int_equal(rc, ATREST_EINTEGRITY);
	corrupt_keyring(dir, "\"generation\": 7", "\"generation\": 0");
	st = open_store(dir, KEY, 0, 0, &rc);
	assert_int_equal(rc, 0);
	atrest_store_close(st);
	/* An empty keyring is damage, never a new store. */
	path_of(p, sizeof(p), dir, ".atrest/keyring");
	size_t n;
	uint8_t *saved = th_read_file(p, &n);
	assert_int_equal(th_write_file(p, "", 0), 0);
	st = open_store(dir, KEY, 0, 0, &rc);
	assert_int_equal(rc, ATREST_EINTEGRITY);
	/* A missing keyring beside objects is refused, too. */
	unlink(p);
	st = open_store(dir, KEY, 0, 0, &rc);
	assert_int_equal(rc, ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "keyring"));
	assert_int_equal(th_write_file(p, saved, n), 0);
	st = open_store(dir, KEY, 0, 0, &rc);
	assert_int_equal(rc, 0);
	atrest_store_close(st);
	free(saved);
	th_rmrf(dir);
}

static void copy_file(const char *from, const char *to)
{
	size_t n;
	uint8_t *b = th_read_file(from, &n);

	assert_non_null(b);
	assert_int_equal(th_write_file(to, b, n), 0);
	free(b);
}

static void test_moved_objects(void **state)
{
	char d1[256], d2[256], a[512], b[512];
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(d1, sizeof(d1));
	th_tmpdir(d2, sizeof(d2));
	atrest_store *s1 = open_store(d1, KEY, 0, 0, NULL);
	atrest_store *s2 = open_store(d2, KEY, 0, 0, NULL);
	assert_int_equal(atrest_put(s1, "a", "payload", 7, NULL), 0);
	assert_int_equal(atrest_put(s1, "b", "other", 5, NULL), 0);
	/* Renamed within the store. */
	path_of(a, sizeof(a), d1, "a");
	path_of(b, sizeof(b), d1, "b");
	copy_file(a, b);
	assert_int_equal(atrest_get(&out, &n, s1, "b"), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "written as 'a'"));
	/* Copied into another store with the same master key. */
	path_of(b, sizeof(b), d2, "a");
	copy_file(a, b);
	assert_int_equal(atrest_get(&out, &n, s2, "a"), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "another store"));
	atrest_store_close(s1);
	atrest_store_close(s2);
	th_rmrf(d1);
	th_rmrf(d2);
}

static void test_tamper_store_object(void **state)
{
	char dir[256], p[512];
	uint8_t data[3000];
	void *out;
	size_t n;

	(void)state;
	th_fill(data, sizeof(data), 5);
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, KEY, 0, 1024, NULL);
	assert_int_equal(atrest_put(st, "t", data, sizeof(data), NULL), 0);
	path_of(p, sizeof(p), dir, "t");
	uint8_t *raw = th_read_file(p, &n);
	for (size_t i = 0; i < n; i++) {
		raw[i] ^= 0x40;
		assert_int_equal(th_write_file(p, raw, n), 0);
		size_t got;
		int rc = atrest_get(&out, &got, st, "t");
		assert_int_equal(rc, ATREST_EINTEGRITY);
		assert_null(out);
		raw[i] ^= 0x40;
	}
	assert_int_equal(th_write_file(p, raw, n), 0);
	assert_int_equal(atrest_get(&out, &n, st, "t"), 0);
	assert_int_equal(n, sizeof(data));
	atrest_free(out);
	free(raw);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* A large object (default 64 KiB segments): 400 sampled bytes, each
 * flipped alone, every one an integrity failure, through get and a range. */
static void test_tamper_large_sampled(void **state)
{
	char dir[256], p[512];
	size_t total = (1u << 20) + 12345, n, got;
	uint8_t *data = malloc(total), *raw, buf[100];
	unsigned int seed = 12345;
	void *out;

	(void)state;
	th_fill(data, total, 77);
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, KEY, 0, 0, NULL);
	assert_int_equal(atrest_put(st, "big", data, total, NULL), 0);
	path_of(p, sizeof(p), dir, "big");
	raw = th_read_file(p, &n);
	atrest_header_info hi = ATREST_HEADER_INFO_INIT;
	assert_int_equal(atrest_inspect_file(&hi, p), 0);
	size_t data_off = hi.header_size + hi.meta_size, seg_ct = 65536 + 16;
	for (int k = 0; k < 400; k++) {
		size_t i = k < 4 ? (size_t[]){0, 100, n / 2, n - 1}[k]
				 : (size_t)rand_r(&seed) % n;
		raw[i] ^= (uint8_t)(1u << (k % 8));
		assert_int_equal(th_write_file(p, raw, n), 0);
		assert_int_equal(atrest_get(&out, &got, st, "big"), ATREST_EINTEGRITY);
		assert_null(out);
		/* Header or metadata: nothing opens.  A segment: ranges inside it
		 * fail, ranges in another segment still read correctly. */
		if (i < data_off) {
			assert_int_equal(
				atrest_get_range(st, "big", 0, buf, sizeof(buf), &got),
				ATREST_EINTEGRITY);
		} else {
			uint64_t j = (i - data_off) / seg_ct, other = j ? 0 : 1;
			assert_int_equal(atrest_get_range(st, "big", j * 65536, buf,
						 sizeof(buf), &got),
				ATREST_EINTEGRITY);
			assert_int_equal(atrest_get_range(st, "big", other * 65536, buf,
						 sizeof(buf), &got),
				0);
			assert_memory_equal(buf, data + other * 65536, sizeof(buf));
		}
		raw[i] ^= (uint8_t)(1u << (k % 8));
	}
	assert_int_equal(th_write_file(p, raw, n), 0);
	assert_int_equal(atrest_get(&out, &got, st, "big"), 0);
	assert_int_equal(got, total);
	assert_memory_equal(out, data, total);
	atrest_free(out);
	free(raw);
	free(data);
	atrest_store_close(st);
	th_rmrf(dir);
}

static void test_plaintext_passthrough(void **state)
{
	char dir[256], p[512];
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	path_of(p, sizeof(p), dir, "legacy.chk");
	assert_int_equal(th_write_file(p, "old plaintext checkpoint", 24), 0);
	st = open_store(dir, KEY, 0, 0, NULL);
	assert_int_equal(atrest_get(&out, &n, st, "legacy.chk"), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "not an atrest object"));
	atrest_store_close(st);
	o.path = dir;
	o.allow_plaintext = 1;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_get(&out, &n, st, "legacy.chk"), 0);
	assert_int_equal(n, 24);
	assert_memory_equal(out, "old plaintext checkpoint", 24);
	atrest_free(out);
	atrest_store_close(st);
	th_rmrf(dir);
}

static int count_cb(const atrest_list_entry *e, void *p)
{
	(void)e;
	(*(int *)p)++;
	return 0;
}

static int open_plain(
	atrest_store **st, const char *dir, int create, int plaintext, unsigned int flags)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;

	o.path = dir;
	o.create = create;
	o.allow_plaintext = plaintext;
	o.flags = flags;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	return atrest_store_open(st, &o);
}

/*
 * A directory of plaintext checkpoints that is not a store yet (no
 * keyring): with pass-through its files are returned as they are; without,
 * an existing file is "not an atrest object" and a missing one not found.
 * Nothing is created by reading; the first write (create) makes the store.
 */
static void test_passthrough_before_store(void **state)
{
	char dir[256], p[512];
	atrest_store *st;
	void *out;
	size_t n;
	int cnt = 0;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	path_of(p, sizeof(p), dir, "legacy.chk");
	assert_int_equal(th_write_file(p, "old plaintext checkpoint", 24), 0);
	assert_int_equal(open_plain(&st, dir, 0, 1, 0), 0);
	assert_int_equal(atrest_get(&out, &n, st, "legacy.chk"), 0);
	assert_int_equal(n, 24);
	atrest_free(out);
	assert_int_equal(atrest_get(&out, &n, st, "nope"), ATREST_ENOTFOUND);
	assert_int_equal(atrest_list(st, "", count_cb, &cnt), 0);
	assert_int_equal(cnt, 1);
	/* Writes need a keyring: this handle was not asked to create one. */
	assert_int_equal(atrest_put(st, "new", "x", 1, NULL), ATREST_ENOTFOUND);
	assert_int_equal(atrest_rotate(NULL, st), ATREST_ENOTFOUND);
	atrest_store_close(st);
	assert_int_equal(open_plain(&st, dir, 0, 0, 0), 0);
	assert_int_equal(atrest_get(&out, &n, st, "legacy.chk"), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "not an atrest object"));
	assert_int_equal(atrest_get(&out, &n, st, "nope"), ATREST_ENOTFOUND);
	atrest_store_close(st);
	path_of(p, sizeof(p), dir, ".atrest");
	assert_int_not_equal(access(p, F_OK), 0);
	/* The first write creates the store in place; files stay readable. */
	assert_int_equal(open_plain(&st, dir, 1, 1, 0), 0);
	assert_int_equal(atrest_put(st, "new", "x", 1, NULL), 0);
	assert_int_equal(atrest_get(&out, &n, st, "legacy.chk"), 0);
	atrest_free(out);
	atrest_store_close(st);
	/* A location that does not exist is no store at all. */
	path_of(p, sizeof(p), dir, "missing");
	assert_int_equal(open_plain(&st, p, 0, 1, 0), ATREST_ENOTFOUND);
	th_rmrf(dir);
}

/*
 * A new keyring is never made beside atrest objects (a lost keyring): the
 * way out is restoring it, or a deliberate FORCE_NEW.  EXCL refuses an
 * existing store.
 */
static void test_no_new_keyring_beside_objects(void **state)
{
	char dir[256], p[512], q[512];
	atrest_store *st;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_store(dir, KEY, 0, 0, NULL);
	assert_int_equal(atrest_put(st, "deep/obj", "x", 1, NULL), 0);
	atrest_store_close(st);
	assert_int_equal(open_plain(&st, dir, 1, 0, ATREST_STORE_EXCL), ATREST_EEXISTS);
	path_of(p, sizeof(p), dir, ".atrest/keyring");
	path_of(q, sizeof(q), dir, "keyring.saved");
	copy_file(p, q);
	path_of(p, sizeof(p), dir, ".atrest");
	th_rmrf(p); /* all of .atrest, as in the attack */
	assert_int_equal(open_plain(&st, dir, 1, 0, 0), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "deep/obj"));
	assert_non_null(strstr(atrest_error_last()->message, "--force"));
	/* Reading still reports the object as what it is. */
	assert_int_equal(open_plain(&st, dir, 0, 0, 0), 0);
	assert_int_equal(atrest_get(&out, &n, st, "deep/obj"), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "no keyring"));
	atrest_store_close(st);
	/* A deliberate new keyring: the old object is then unreadable. */
	assert_int_equal(open_plain(&st, dir, 1, 0, ATREST_STORE_FORCE_NEW), 0);
	assert_int_equal(atrest_get(&out, &n, st, "deep/obj"), ATREST_EINTEGRITY);
	atrest_store_close(st);
	th_rmrf(dir);
}

static void test_list_delete_names(void **state)
{
	char dir[256];
	int count = 0;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, KEY, 0, 0, NULL);
	const char *names[] = {"job-1/chk-1", "job-1/chk-2", "job-2/chk-1", "z"};
	for (int i = 0; i < 4; i++)
		assert_int_equal(atrest_put(st, names[i], "v", 1, NULL), 0);
	assert_int_equal(atrest_list(st, "job-1/", count_cb, &count), 0);
	assert_int_equal(count, 2);
	count = 0;
	assert_int_equal(atrest_list(st, "", count_cb, &count), 0);
	assert_int_equal(count, 4);
	assert_int_equal(atrest_delete(st, "job-1/chk-1"), 0);
	assert_int_equal(atrest_delete(st, "job-1/chk-1"), ATREST_ENOTFOUND);
	assert_int_equal(atrest_get(&out, &n, st, "job-1/chk-1"), ATREST_ENOTFOUND);
	const char *bad[] = {"", "../x", "/abs", "a//b", "a/../b", ".atrest/keyring",
		"trailing/", "ctl\x01"};
	for (int i = 0; i < 8; i++) {
		assert_int_equal(atrest_put(st, bad[i], "v", 1, NULL), ATREST_EINVAL);
		assert_int_equal(atrest_get(&out, &n, st, bad[i]), ATREST_EINVAL);
	}
	atrest_store_close(st);
	th_rmrf(dir);
}

typedef struct thr_arg {
	atrest_store *st;
	int id;
	int failures;
} thr_arg;

static void *worker(void *p)
{
	thr_arg *a = p;
	uint8_t data[5000];
	char name[64];

	for (int i = 0; i < 60; i++) {
		void *out;
		size_t n;
		snprintf(name, sizeof(name), "t%d/obj%d", a->id, i % 7);
		th_fill(data, sizeof(data), (uint64_t)(a->id * 1000 + i));
		if (atrest_put(a->st, name, data, sizeof(data), NULL) < 0)
			a->failures++;
		else if (atrest_get(&out, &n, a->st, name) < 0 || n != sizeof(data) ||
			memcmp(out, data, n))
			a->failures++;
		else
			atrest_free(out);
		/* Everyone also hammers one shared name. */
		if (atrest_put(a->st, "shared", data, 100 + (size_t)i, NULL) < 0)
			a->failures++;
		if (atrest_get(&out, &n, a->st, "shared") < 0)
			a->failures++;
		else
			atrest_free(out);
	}
	return NULL;
}

static void test_threads(void **state)
{
	char dir[256];
	pthread_t t[4];
	thr_arg a[4];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, KEY, 0, 1024, NULL);
	for (int i = 0; i < 4; i++) {
		a[i] = (thr_arg){st, i, 0};
		pthread_create(&t[i], NULL, worker, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	atrest_store_close(st);
	th_rmrf(dir);
}

/* A child overwrites objects forever; we kill -9 it and check each object. */
static void child_loop(const char *dir)
{
	atrest_store *st = open_store(dir, KEY, 0, 1024, NULL);
	uint8_t data[4096 + 8];

	for (uint64_t v = 1;; v++) {
		char name[32];
		snprintf(name, sizeof(name), "crash/o%d", (int)(v % 8));
		memcpy(data, &v, 8);
		th_fill(data + 8, sizeof(data) - 8, v);
		if (atrest_put(st, name, data, 8 + (size_t)(v % 4096), NULL) < 0)
			_exit(3);
	}
}

static void check_survivors(const char *dir)
{
	atrest_store *st = open_store(dir, KEY, 0, 1024, NULL);
	uint8_t want[4096 + 8];

	for (int i = 0; i < 8; i++) {
		char name[32];
		void *out;
		size_t n;
		uint64_t v;
		snprintf(name, sizeof(name), "crash/o%d", i);
		int rc = atrest_get(&out, &n, st, name);
		if (rc == ATREST_ENOTFOUND)
			continue;
		assert_int_equal(rc, 0);
		assert_true(n >= 8);
		memcpy(&v, out, 8);
		th_fill(want + 8, sizeof(want) - 8, v);
		assert_int_equal(n, 8 + v % 4096);
		assert_memory_equal((uint8_t *)out + 8, want + 8, n - 8);
		atrest_free(out);
	}
	atrest_store_close(st);
}

static void test_kill9_during_puts(void **state)
{
	char dir[256], tmp[512];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store_close(open_store(dir, KEY, 0, 1024, NULL));
	for (int round = 0; round < 25; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			child_loop(dir);
		usleep(2000 + (useconds_t)(rand() % 20000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		check_survivors(dir);
	}
	/* After the next open, no temp directory of a dead process is left. */
	atrest_store *st = open_store(dir, KEY, 0, 1024, NULL);
	snprintf(tmp, sizeof(tmp),
		"cd %s/.atrest/tmp && test $(find . -mindepth 1 "
		"-maxdepth 1 -type d | wc -l) -eq 1 && test $(ls | wc -l) -eq 2",
		dir);
	assert_int_equal(system(tmp), 0);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* Write data under name with a create-only writer; the commit's result. */
static int create_only(atrest_store *st, const char *name, const char *data)
{
	atrest_write_options wo = ATREST_WRITE_OPTIONS_INIT;
	atrest_writer *w;

	wo.flags = ATREST_WRITE_IF_ABSENT;
	assert_int_equal(atrest_writer_open_ex(&w, st, name, NULL, &wo), 0);
	assert_int_equal(atrest_writer_write(w, data, strlen(data)), 0);
	return atrest_writer_commit(w);
}

/*
 * A child (this program run again, "create-child DIR FD I": a fresh
 * process, as sanitizers want threads after a fork): open its own handle,
 * open a create-only writer, write, wait for the parent's go (every child
 * has written), commit.  Exit 0 when it created the object, 17 when it
 * existed, 1 otherwise.
 */
static void create_child(const char *dir, int go, int i)
{
	atrest_write_options wo = ATREST_WRITE_OPTIONS_INIT;
	atrest_store *st = open_store(dir, KEY, 0, 1024, NULL);
	atrest_writer *w;
	char data[32], c;
	int rc;

	wo.flags = ATREST_WRITE_IF_ABSENT;
	snprintf(data, sizeof(data), "child %d", i);
	if (atrest_writer_open_ex(&w, st, "race/once", NULL, &wo) < 0 ||
		atrest_writer_write(w, data, strlen(data)) < 0)
		_exit(1);
	if (read(go, &c, 1) != 0) /* EOF: the parent closed its end */
		_exit(1);
	rc = atrest_writer_commit(w);
	atrest_store_close(st);
	_exit(rc == 0 ? 0 : rc == ATREST_EEXISTS ? 17 : 1);
}

/* Create-only writers: exact in a handle, across handles and processes. */
static void test_create_only(void **state)
{
	enum { KIDS = 6 };
	atrest_write_options wo = ATREST_WRITE_OPTIONS_INIT;
	char dir[256], data[32];
	int created = 0, existed = 0, go[2], status;
	atrest_writer *w1, *w2;
	pid_t pid[KIDS];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, KEY, 0, 1024, NULL);
	atrest_store *other = open_store(dir, KEY, 0, 1024, NULL);
	assert_int_equal(create_only(st, "c/a", "first"), 0);
	assert_int_equal(create_only(other, "c/a", "second"), ATREST_EEXISTS);
	th_expect_object(st, "c/a", "first");
	/* Two writers open at once: the first commit wins. */
	wo.flags = ATREST_WRITE_IF_ABSENT;
	assert_int_equal(atrest_writer_open_ex(&w1, st, "c/b", NULL, &wo), 0);
	assert_int_equal(atrest_writer_open_ex(&w2, other, "c/b", NULL, &wo), 0);
	assert_int_equal(atrest_writer_write(w1, "one", 3), 0);
	assert_int_equal(atrest_writer_write(w2, "two", 3), 0);
	assert_int_equal(atrest_writer_commit(w2), 0);
	assert_int_equal(atrest_writer_commit(w1), ATREST_EEXISTS);
	th_expect_object(st, "c/b", "two");
	/* Without the flag (or options), a put replaces. */
	assert_int_equal(atrest_writer_open_ex(&w1, st, "c/a", NULL, NULL), 0);
	assert_int_equal(atrest_writer_write(w1, "third", 5), 0);
	assert_int_equal(atrest_writer_commit(w1), 0);
	th_expect_object(other, "c/a", "third");
	/* Bad options. */
	wo.flags = 0x80;
	assert_int_equal(atrest_writer_open_ex(&w1, st, "c/x", NULL, &wo), ATREST_EINVAL);
	assert_null(w1);
	wo.flags = ATREST_WRITE_IF_ABSENT;
	wo.version = 0;
	assert_int_equal(atrest_writer_open_ex(&w1, st, "c/x", NULL, &wo), ATREST_EINVAL);
	/* Processes racing, every writer open before any commits. */
	assert_int_equal(pipe(go), 0);
	for (int i = 0; i < KIDS; i++) {
		pid[i] = fork();
		assert_true(pid[i] >= 0);
		if (pid[i] == 0) {
			char fd[16], idx[16];

			close(go[1]);
			snprintf(fd, sizeof(fd), "%d", go[0]);
			snprintf(idx, sizeof(idx), "%d", i);
			execl("/proc/self/exe", "test_store", "create-child", dir, fd,
				idx, (char *)NULL);
			_exit(1);
		}
	}
	close(go[0]);
	sleep(1); /* let every child reach its read; the result holds either way */
	close(go[1]);
	for (int i = 0; i < KIDS; i++) {
		assert_int_equal(waitpid(pid[i], &status, 0), pid[i]);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) == 0) {
			created++;
			snprintf(data, sizeof(data), "child %d", i);
		} else {
			assert_int_equal(WEXITSTATUS(status), 17);
			existed++;
		}
	}
	assert_int_equal(created, 1);
	assert_int_equal(existed, KIDS - 1);
	th_expect_object(st, "race/once", data);
	atrest_store_close(other);
	atrest_store_close(st);
	th_rmrf(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_ciphers),
		cmocka_unit_test(test_stream_and_range),
		cmocka_unit_test(test_metadata_stat),
		cmocka_unit_test(test_wrong_missing_malformed_key),
		cmocka_unit_test(test_keyring_damage),
		cmocka_unit_test(test_moved_objects),
		cmocka_unit_test(test_tamper_store_object),
		cmocka_unit_test(test_tamper_large_sampled),
		cmocka_unit_test(test_plaintext_passthrough),
		cmocka_unit_test(test_passthrough_before_store),
		cmocka_unit_test(test_no_new_keyring_beside_objects),
		cmocka_unit_test(test_list_delete_names),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_kill9_during_puts),
		cmocka_unit_test(test_create_only),
	};

	th_fill(KEY, 32, 1000);
	th_fill(OTHER, 32, 1001);
	if (argc == 5 && !strcmp(argv[1], "create-child"))
		create_child(argv[2], atoi(argv[3]), atoi(argv[4]));
	srand((unsigned)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
