/*
 * The object reader against hostile input: a store backend that lies about
 * what it read, and crafted objects that are authentic but break a rule of
 * docs/FORMAT.md (short cipher-3 segments, malformed metadata).  Every
 * reader (get, ranges, streaming as verify does, stat) must refuse them.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "format.h"
#include "helpers.h"
#include "keyring.h"
#include "store_int.h"

#define SEG 1024

static uint8_t KEY[32];

/* ---- a backend that lies: the fs backend with a lying open_read */

enum lie { LIE_NONE, LIE_LONG_HEAD, LIE_SHRUNK, LIE_LONG_READ };

static enum lie g_lie;
static int (*g_real_open_read)(atrest_backend *, atrest_backend_reader **, const char *);

struct liar {
	atrest_backend_reader r;
	atrest_backend_reader *inner;
};

static int liar_pread(
	atrest_backend_reader *r, void *buf, size_t len, uint64_t off, size_t *got)
{
	struct liar *l = (struct liar *)r;
	int rc = l->inner->pread(l->inner, buf, len, off, got);

	if (rc < 0)
		return rc;
	if (g_lie == LIE_LONG_HEAD && off == 0)
		*got = len + 1; /* claims more than it was asked for */
	else if (g_lie == LIE_LONG_READ && off > 0)
		*got = len + 7;
	else if (g_lie == LIE_SHRUNK)
		*got = off < 100 ? (*got < 100 - off ? *got : 100 - off) : 0;
	return 0;
}

static void liar_close(atrest_backend_reader *r)
{
	struct liar *l = (struct liar *)r;

	l->inner->close(l->inner);
	free(l);
}

/* Objects (not the store's own files) are read through a liar. */
static int liar_open_read(atrest_backend *b, atrest_backend_reader **out, const char *key)
{
	struct liar *l;
	int rc = g_real_open_read(b, out, key);

	if (rc < 0 || strncmp(key, ".atrest/", 8) == 0 || g_lie == LIE_NONE)
		return rc;
	l = calloc(1, sizeof(*l));
	assert_non_null(l);
	l->inner = *out;
	l->r.version = l->inner->version;
	memcpy(l->r.etag, l->inner->etag, sizeof(l->r.etag));
	l->r.size = l->inner->size;
	l->r.mtime = l->inner->mtime;
	l->r.pread = liar_pread;
	l->r.close = liar_close;
	*out = &l->r;
	return 0;
}

static atrest_store *open_liar_store(const char *dir, int allow_plaintext)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st = NULL;

	assert_int_equal(atrest_backend_fs(&o.backend, dir), 0);
	g_real_open_read = o.backend->open_read;
	o.backend->open_read = liar_open_read;
	o.create = 1;
	o.allow_plaintext = allow_plaintext;
	o.segment_size = SEG;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	return st;
}

static void write_at(const char *dir, const char *name, const void *buf, size_t len)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(th_write_file(p, buf, len), 0);
}

/* A backend claiming to have read more than it was asked is refused. */
static void test_backend_long_reads(void **state)
{
	char dir[256];
	uint8_t data[5000];
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	atrest_store *st;
	uint32_t id;
	void *out;
	size_t n;

	(void)state;
	th_fill(data, sizeof(data), 3);
	th_tmpdir(dir, sizeof(dir));
	st = open_liar_store(dir, 1);
	assert_int_equal(atrest_put(st, "obj", data, sizeof(data), NULL), 0);
	write_at(dir, "plain", data, sizeof(data));
	g_lie = LIE_LONG_HEAD;
	assert_int_equal(atrest_get(&out, &n, st, "obj"), ATREST_ERROR);
	assert_non_null(strstr(atrest_error_last()->message, "faulty backend"));
	assert_int_equal(atrest_get(&out, &n, st, "plain"), ATREST_ERROR);
	assert_int_equal(atrest_stat(&si, st, "obj"), ATREST_ERROR);
	assert_int_equal(atrest_object_key_id(&id, st, "obj"), ATREST_ERROR);
	/* Past the head: the plaintext pass-through reads are checked too. */
	g_lie = LIE_LONG_READ;
	{
		atrest_reader *r;
		uint8_t buf[64];
		assert_int_equal(atrest_reader_open(&r, st, "plain"), 0);
		assert_int_equal(atrest_reader_seek(r, 10), 0);
		assert_int_equal(
			atrest_reader_read(r, buf, sizeof(buf), &n), ATREST_ERROR);
		atrest_reader_close(r);
	}
	assert_int_equal(atrest_get(&out, &n, st, "obj"), ATREST_ERROR);
	g_lie = LIE_NONE;
	assert_int_equal(atrest_get(&out, &n, st, "obj"), 0);
	assert_int_equal(n, sizeof(data));
	atrest_free(out);
	atrest_store_close(st);
	th_rmrf(dir);
}

/*
 * A plaintext file that shrank between open and read: get fails rather
 * than hand back the bytes it never read (uninitialised heap).
 */
static void test_backend_shrunk_plaintext(void **state)
{
	char dir[256];
	uint8_t data[5000];
	atrest_store *st;
	void *out = NULL;
	size_t n = 0;

	(void)state;
	th_fill(data, sizeof(data), 4);
	th_tmpdir(dir, sizeof(dir));
	st = open_liar_store(dir, 1);
	write_at(dir, "plain", data, sizeof(data));
	g_lie = LIE_SHRUNK;
	assert_int_equal(atrest_get(&out, &n, st, "plain"), ATREST_ERROR);
	assert_null(out);
	assert_int_equal(n, 0);
	assert_non_null(strstr(atrest_error_last()->message, "changed while being read"));
	g_lie = LIE_NONE;
	assert_int_equal(atrest_get(&out, &n, st, "plain"), 0);
	assert_int_equal(n, sizeof(data));
	assert_memory_equal(out, data, n);
	atrest_free(out);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* ---- crafted objects: authentic (sealed with the store's data key), malformed */

/* One segment as a writer sealed it: its plaintext and nonce flag. */
struct seg {
	size_t len;
	int last;
};

/* Seal an object by hand under st's active data key into dir/name. */
static void craft(const char *dir, atrest_store *st, const char *name, int cipher,
	const uint8_t *meta, size_t ml, const struct seg *segs, size_t n)
{
	uint8_t hb[ATREST__HDR_MAX], dek[32], pt[SEG], *buf;
	char sid[33];
	size_t total, off;
	atrest__hdr h;
	atrest__obj o;
	uint32_t id;

	assert_int_equal(atrest_put(st, name, "x", 1, NULL), 0);
	assert_int_equal(atrest_object_key_id(&id, st, name), 0);
	memset(&h, 0, sizeof(h));
	h.form = ATREST__FORM_OBJECT;
	h.cipher = (uint8_t)cipher;
	h.segment_size = SEG;
	h.dek_id = id;
	assert_int_equal(atrest_store_id(sid, st), 0);
	assert_int_equal(atrest__unhex(h.store_id, 16, sid), 0);
	strcpy(h.name, name);
	th_fill(h.salt, sizeof(h.salt), 5);
	h.meta_len = (uint32_t)atrest__cipher_ctlen(cipher, ml);
	assert_int_equal(atrest__hdr_encode(hb, sizeof(hb), &h), 0);
	assert_int_equal(atrest__store_dek(st, id, dek), 0);
	assert_int_equal(atrest__obj_init(&o, &h, hb, dek, 32, 0), 0);
	total = h.len + h.meta_len;
	for (size_t i = 0; i < n; i++)
		total += atrest__cipher_ctlen(cipher, segs[i].len);
	buf = malloc(total);
	assert_non_null(buf);
	memcpy(buf, hb, h.len);
	assert_int_equal(atrest__meta_seal(&o, buf + h.len, meta, ml), 0);
	off = o.data_off;
	for (size_t i = 0; i < n; i++) {
		th_fill(pt, segs[i].len, i + 1);
		assert_int_equal(
			atrest__seg_seal(&o, buf + off, i, segs[i].last, pt, segs[i].len),
			0);
		off += atrest__cipher_ctlen(cipher, segs[i].len);
	}
	write_at(dir, name, buf, total);
	atrest__obj_cleanup(&o);
	free(buf);
}

/* Stream the whole object as 'atrest verify' does. */
static int read_through(atrest_store *st, const char *name)
{
	uint8_t buf[700];
	atrest_reader *r;
	size_t got = 1;
	int rc = atrest_reader_open(&r, st, name);

	while (rc == 0 && got)
		rc = atrest_reader_read(r, buf, sizeof(buf), &got);
	if (r)
		atrest_reader_close(r);
	return rc;
}

/* Whole, streamed, and a range that covers segment 0. */
static void expect_unreadable(atrest_store *st, const char *name)
{
	uint8_t buf[64];
	void *out = NULL;
	size_t n;

	assert_int_equal(atrest_get(&out, &n, st, name), ATREST_EINTEGRITY);
	assert_null(out);
	assert_int_equal(read_through(st, name), ATREST_EINTEGRITY);
	assert_int_equal(
		atrest_get_range(st, name, 0, buf, sizeof(buf), &n), ATREST_EINTEGRITY);
	assert_int_equal(atrest_get_range(st, name, SEG - 8, buf, sizeof(buf), &n),
		ATREST_EINTEGRITY);
}

static atrest_store *open_plain_store(const char *dir, int cipher, unsigned threads)
{
	return th_store_with(dir, KEY, cipher, SEG, threads);
}

static const uint8_t NO_META[] = {0, 0};

/*
 * CBC-HMAC: a segment that is not last opens to fewer than S bytes (a valid
 * MAC over a pad count).  Refused by every reader, serial and parallel.
 */
static void test_cbc_short_segment(void **state)
{
	/* S - 5 bytes pad to S: the same ciphertext length as a full segment. */
	const struct seg first[] = {{SEG - 5, 0}, {100, 1}};
	const struct seg middle[] = {{SEG, 0}, {SEG, 0}, {SEG - 1, 0}, {SEG, 0}, {7, 1}};
	const struct seg fine[] = {{SEG, 0}, {SEG, 0}, {SEG, 0}, {SEG, 0}, {7, 1}};
	char dir[256];

	(void)state;
	for (unsigned threads = 1; threads <= 4; threads += 3) {
		th_tmpdir(dir, sizeof(dir));
		atrest_store *st = open_plain_store(
			dir, ATREST_CIPHER_AES_256_CBC_HMAC_SHA256, threads);
		craft(dir, st, "short-first", ATREST_CIPHER_AES_256_CBC_HMAC_SHA256,
			NO_META, 2, first, 2);
		expect_unreadable(st, "short-first");
		craft(dir, st, "short-middle", ATREST_CIPHER_AES_256_CBC_HMAC_SHA256,
			NO_META, 2, middle, 5);
		void *out = NULL;
		size_t n;
		assert_int_equal(
			atrest_get(&out, &n, st, "short-middle"), ATREST_EINTEGRITY);
		assert_int_equal(read_through(st, "short-middle"), ATREST_EINTEGRITY);
		/* The crafting itself is sound: the same with full segments reads. */
		craft(dir, st, "fine", ATREST_CIPHER_AES_256_CBC_HMAC_SHA256, NO_META, 2,
			fine, 5);
		assert_int_equal(atrest_get(&out, &n, st, "fine"), 0);
		assert_int_equal(n, 4 * SEG + 7);
		atrest_free(out);
		assert_int_equal(read_through(st, "fine"), 0);
		atrest_store_close(st);
		th_rmrf(dir);
	}
}

/* The in-memory reader of the format layer (vectors, fuzzing) agrees. */
static void test_cbc_short_segment_buf(void **state)
{
	const struct seg first[] = {{SEG - 5, 0}, {100, 1}};
	uint8_t *obj, *out = NULL, dek[32];
	char dir[256], p[512];
	atrest__hdr h;
	size_t len, n;
	uint32_t id;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st =
		open_plain_store(dir, ATREST_CIPHER_AES_256_CBC_HMAC_SHA256, 1);
	craft(dir, st, "o", ATREST_CIPHER_AES_256_CBC_HMAC_SHA256, NO_META, 2, first, 2);
	assert_int_equal(atrest_object_key_id(&id, st, "o"), 0);
	assert_int_equal(atrest__store_dek(st, id, dek), 0);
	snprintf(p, sizeof(p), "%s/o", dir);
	obj = th_read_file(p, &len);
	assert_non_null(obj);
	assert_int_equal(
		atrest__obj_open_buf(&out, &n, &h, obj, len, dek), ATREST_EINTEGRITY);
	assert_null(out);
	free(obj);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* Encoded metadata that breaks a rule of FORMAT.md 2.4, and why. */
static const struct bad_meta {
	const char *why;
	uint8_t bytes[24];
	size_t len;
} BAD_META[] = {
	{"trailing byte", {0, 0, 0xff}, 3},
	{"empty key", {1, 0, 0, 0, 1, 0, 0, 0, 'v'}, 9},
	{"NUL in key", {1, 0, 2, 0, 'k', 0, 1, 0, 0, 0, 'v'}, 11},
	{"NUL in value", {1, 0, 1, 0, 'k', 2, 0, 0, 0, 'v', 0}, 11},
	{"count larger than entries", {2, 0, 1, 0, 'k', 1, 0, 0, 0, 'v'}, 10},
	{"value length past the end", {1, 0, 1, 0, 'k', 9, 0, 0, 0, 'v'}, 10},
	{"entry after the count",
		{1, 0, 1, 0, 'k', 1, 0, 0, 0, 'v', 1, 0, 'j', 0, 0, 0, 0}, 17},
	{"no count", {0}, 1},
	{"empty", {0}, 0},
};

static void test_bad_metadata(void **state)
{
	const struct seg one[] = {{10, 1}};
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	char dir[256];
	void *out = NULL;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_plain_store(dir, 0, 1);
	for (size_t i = 0; i < sizeof(BAD_META) / sizeof(BAD_META[0]); i++) {
		const struct bad_meta *b = &BAD_META[i];
		print_message("metadata: %s\n", b->why);
		craft(dir, st, "m", ATREST_CIPHER_AES_256_GCM, b->bytes, b->len, one, 1);
		assert_int_equal(atrest_get(&out, &n, st, "m"), ATREST_EINTEGRITY);
		assert_int_equal(read_through(st, "m"), ATREST_EINTEGRITY);
		assert_int_equal(atrest_stat(&si, st, "m"), ATREST_EINTEGRITY);
		assert_null(si.meta);
	}
	/* Duplicate keys are allowed, and kept in order. */
	{
		const uint8_t dup[] = {
			2, 0, 1, 0, 'k', 1, 0, 0, 0, 'a', 1, 0, 'k', 1, 0, 0, 0, 'b'};
		craft(dir, st, "m", ATREST_CIPHER_AES_256_GCM, dup, sizeof(dup), one, 1);
		assert_int_equal(atrest_stat(&si, st, "m"), 0);
		assert_int_equal(si.meta_count, 2);
		assert_string_equal(si.meta[1].value, "b");
		atrest_stat_info_clear(&si);
		assert_int_equal(read_through(st, "m"), 0);
	}
	atrest_store_close(st);
	th_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_long_reads),
		cmocka_unit_test(test_backend_shrunk_plaintext),
		cmocka_unit_test(test_cbc_short_segment),
		cmocka_unit_test(test_cbc_short_segment_buf),
		cmocka_unit_test(test_bad_metadata),
	};

	th_fill(KEY, sizeof(KEY), 99);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
