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
		assert_int_equal(atrest_reader_read(r, buf, sizeof(buf), &n), ATREST_ERROR);
		atrest_reader_close(r);
	}
	assert_int_equal(atrest_get(&out, &n, st, "obj"), ATREST_EINTEGRITY);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_long_reads),
		cmocka_unit_test(test_backend_shrunk_plaintext),
	};

	th_fill(KEY, sizeof(KEY), 99);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
