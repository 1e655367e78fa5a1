/*
 * Store backends as plug-ins: the contract suite against the local
 * directory backend and the in-memory one; the core's checked wrappers
 * against backends that lie, fail silently or are too old; the location
 * registry; and what the core asks of a backend, counted.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/atrest.h"
#include "atrest/sys/backend.h"
#include "backend_suite.h"
#include "helpers.h"
#include "mem_backend.h"

/* obs.h (test hook): calls are counted with no flusher thread merging
 * usage counts in between. */
void atrest__obs_flusher_off(int off);

static uint8_t KEY[32];

/* ---- factories ---- */

struct fs_ctx {
	char dir[512];
};

static int fs_create(void *ctx)
{
	struct fs_ctx *c = ctx;

	th_tmpdir(c->dir, sizeof(c->dir));
	return 0;
}

static atrest_backend *fs_open(void *ctx)
{
	struct fs_ctx *c = ctx;
	atrest_backend *b;

	if (atrest_backend_fs(&b, c->dir) != 0)
		return NULL;
	if (b->prepare(b, 1) != 0) {
		b->free(b);
		return NULL;
	}
	return b;
}

static void fs_destroy(void *ctx)
{
	th_rmrf(((struct fs_ctx *)ctx)->dir);
}

static int mem_create(void *ctx)
{
	*(mem_location **)ctx = mem_location_new();
	return *(mem_location **)ctx ? 0 : -1;
}

static atrest_backend *mem_open(void *ctx)
{
	return mem_backend(*(mem_location **)ctx);
}

static void mem_destroy(void *ctx)
{
	mem_location_free(*(mem_location **)ctx);
}

/* ---- the core against a backend that misbehaves ---- */

static mem_location *LOC;

static int loc_setup(void **state)
{
	(void)state;
	LOC = mem_location_new();
	return LOC ? 0 : -1;
}

static int loc_teardown(void **state)
{
	(void)state;
	mem_location_free(LOC);
	return 0;
}

static atrest_store *open_mem(int create, int plaintext, int *rc_out)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st = NULL;
	int rc;

	o.backend = mem_backend(LOC);
	o.create = create;
	o.allow_plaintext = plaintext;
	o.state_dir = "";
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	rc = atrest_store_open(&st, &o);
	if (rc_out)
		*rc_out = rc;
	else
		assert_int_equal(rc, 0);
	return st;
}

static const char *last_msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e && e->message ? e->message : "";
}

/* A backend that returns more bytes than asked is refused, not trusted. */
static void test_lie_long(void **state)
{
	atrest_store *st = open_mem(1, 1, NULL);
	void *out = NULL;
	size_t n = 0;
	uint8_t buf[64];

	(void)state;
	assert_int_equal(atrest_put(st, "obj", "hello world", 11, NULL), 0);
	assert_int_equal(mem_poke(LOC, "plain", "plaintext!", 10), 0);
	mem_lie(LOC, MEM_LIE_LONG);
	assert_int_equal(atrest_get(&out, &n, st, "obj"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "bytes for a read of"));
	assert_null(out);
	assert_int_equal(atrest_get(&out, &n, st, "plain"), ATREST_ERROR);
	assert_null(out);
	assert_int_equal(
		atrest_get_range(st, "obj", 0, buf, sizeof(buf), &n), ATREST_ERROR);
	mem_lie(LOC, MEM_HONEST);
	assert_int_equal(atrest_get(&out, &n, st, "obj"), 0);
	assert_int_equal(n, 11);
	atrest_free(out);
	atrest_store_close(st);
}

/* A short read in the middle: a sealed object is truncated, a plaintext
 * file changed under us; neither returns unread (uninitialised) bytes. */
static void test_lie_short(void **state)
{
	atrest_store *st = open_mem(1, 1, NULL);
	uint8_t big[5000];
	void *out = NULL;
	size_t n = 0;

	(void)state;
	th_fill(big, sizeof(big), 3);
	assert_int_equal(atrest_put(st, "obj", big, sizeof(big), NULL), 0);
	assert_int_equal(mem_poke(LOC, "plain", big, sizeof(big)), 0);
	mem_lie(LOC, MEM_LIE_SHORT);
	assert_true(atrest_get(&out, &n, st, "obj") < 0);
	assert_null(out);
	assert_int_equal(atrest_get(&out, &n, st, "plain"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "changed while being read"));
	assert_null(out);
	mem_lie(LOC, MEM_HONEST);
	assert_int_equal(atrest_get(&out, &n, st, "plain"), 0);
	assert_int_equal(n, sizeof(big));
	assert_memory_equal(out, big, n);
	atrest_free(out);
	atrest_store_close(st);
}

/* A failing method that sets no error still yields a message. */
static void test_silent_failure(void **state)
{
	atrest_store *st = open_mem(1, 0, NULL);
	void *out = NULL;
	size_t n;

	(void)state;
	assert_int_equal(atrest_put(st, "obj", "x", 1, NULL), 0);
	atrest_error_clear();
	mem_fail(LOC, MEM_OPEN_READ, 0, 1, ATREST_EUNAVAILABLE, 1);
	assert_int_equal(atrest_get(&out, &n, st, "obj"), ATREST_EUNAVAILABLE);
	assert_non_null(
		strstr(last_msg(), "store backend 'mem' failed to open an object"));
	mem_fail(LOC, MEM_COMMIT, 0, 1, ATREST_ENOSPC, 1);
	assert_int_equal(atrest_put(st, "obj2", "x", 1, NULL), ATREST_ENOSPC);
	assert_non_null(strstr(last_msg(), "commit"));
	/* A code outside the list is not passed on as if it were one. */
	mem_fail(LOC, MEM_REMOVE, 0, 1, 42, 1);
	assert_int_equal(atrest_delete(st, "obj"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "not an atrest error code"));
	atrest_store_close(st);
}

static int nop_prepare(atrest_backend *b, int create)
{
	(void)b;
	(void)create;
	return 0;
}

static void nop_free(atrest_backend *b)
{
	(void)b;
}

/* Old or incomplete tables are refused before any call. */
static void test_interface_checked(void **state)
{
	static atrest_backend old = {.version = 1, .name = "old"};
	static atrest_backend partial = {.version = 2, .name = "partial"};
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;

	(void)state;
	old.free = nop_free;
	partial.prepare = nop_prepare;
	partial.free = nop_free;
	o.backend = &old;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), ATREST_EINVAL);
	assert_non_null(strstr(last_msg(), "interface version 1"));
	o.backend = &partial;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), ATREST_EINVAL);
	assert_non_null(strstr(last_msg(), "lacks a required method"));
}

/*
 * What the core asks: a get reads, never writes; a put is one write, and
 * one read of the header of the object it replaces (for the usage counts).
 */
static void test_calls_counted(void **state)
{
	atrest_store *st = open_mem(1, 0, NULL);
	void *out;
	size_t n;

	(void)state;
	assert_int_equal(atrest_put(st, "obj", "hello", 5, NULL), 0);
	mem_calls_reset(LOC);
	assert_int_equal(atrest_get(&out, &n, st, "obj"), 0);
	atrest_free(out);
	assert_int_equal(mem_calls(LOC, MEM_OPEN_READ), 1);
	assert_int_equal(mem_calls(LOC, MEM_PREAD), 2); /* the head, a segment */
	assert_int_equal(mem_calls(LOC, MEM_CLOSE), 1);
	assert_int_equal(mem_calls(LOC, MEM_OPEN_WRITE), 0);
	assert_int_equal(mem_calls(LOC, MEM_REMOVE), 0);
	mem_calls_reset(LOC);
	assert_int_equal(atrest_put(st, "obj", "hello", 5, NULL), 0);
	assert_int_equal(mem_calls(LOC, MEM_OPEN_WRITE), 1);
	assert_int_equal(mem_calls(LOC, MEM_WRITE), 1); /* header joined */
	assert_int_equal(mem_calls(LOC, MEM_COMMIT), 1);
	assert_int_equal(mem_calls(LOC, MEM_OPEN_READ), 1);
	atrest_store_close(st);
}

/* A lost conditional put (another writer won) is retried from a fresh
 * read; nothing is published in between. */
static void test_update_retries(void **state)
{
	atrest_store *st = open_mem(1, 0, NULL);
	uint32_t id = 0;

	(void)state;
	mem_calls_reset(LOC);
	mem_fail(LOC, MEM_COMMIT, 0, 3, ATREST_ECONFLICT, 0);
	assert_int_equal(atrest_rotate(&id, st), 0);
	assert_int_equal(mem_calls(LOC, MEM_COMMIT), 4);
	assert_int_equal(mem_calls(LOC, MEM_OPEN_READ), 4);
	assert_int_equal(atrest_put(st, "after", "x", 1, NULL), 0);
	atrest_store_close(st);
	st = open_mem(0, 0, NULL);
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	assert_int_equal(atrest_stat(&si, st, "after"), 0);
	assert_int_equal(si.data_key_id, id);
	atrest_stat_info_clear(&si);
	atrest_store_close(st);
}

/* Location registry: file:// URIs and plain paths are the fs backend. */
static void test_locations(void **state)
{
	char dir[512], uri[600];
	atrest_backend *b;
	const char *const *s = atrest_backend_schemes();

	(void)state;
	assert_string_equal(s[0], "file");
	th_tmpdir(dir, sizeof(dir));
	snprintf(uri, sizeof(uri), "file://%s", dir);
	assert_int_equal(atrest_backend_open(&b, uri), 0);
	assert_string_equal(b->name, "fs");
	assert_int_equal(b->prepare(b, 0), 0);
	b->free(b);
	snprintf(uri, sizeof(uri), "file://localhost%s", dir);
	assert_int_equal(atrest_backend_open(&b, uri), 0);
	assert_int_equal(b->prepare(b, 0), 0);
	b->free(b);
	assert_int_equal(atrest_backend_open(&b, dir), 0);
	b->free(b);
	assert_int_equal(atrest_backend_open(&b, "file:relative"), 0); /* a path */
	b->free(b);
	assert_int_equal(atrest_backend_open(&b, "file://relative/x"), ATREST_EINVAL);
	assert_int_equal(atrest_backend_open(&b, "nosuch://bucket"), ATREST_EINVAL);
	assert_non_null(strstr(last_msg(), "unknown scheme"));
	assert_null(strstr(last_msg(), "bucket"));
	assert_int_equal(atrest_backend_open(&b, ""), ATREST_EINVAL);
	th_rmrf(dir);
}

/* A store opened by URI, with %-escapes. */
static void test_store_by_uri(void **state)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	char dir[512], path[600], uri[700];
	atrest_store *st;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/with space", dir);
	snprintf(uri, sizeof(uri), "file://%s/with%%20space", dir);
	o.path = uri;
	o.create = 1;
	o.state_dir = "";
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_put(st, "a", "b", 1, NULL), 0);
	atrest_store_close(st);
	o.path = path;
	o.create = 0;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_get(&out, &n, st, "a"), 0);
	atrest_free(out);
	atrest_store_close(st);
	th_rmrf(dir);
}

#define L(name) cmocka_unit_test_setup_teardown(name, loc_setup, loc_teardown)

int main(void)
{
	struct fs_ctx fs_ctx;
	mem_location *mem_ctx = NULL;
	const backend_factory fs = {
		"backend contract: fs", fs_create, fs_open, fs_destroy, &fs_ctx};
	const backend_factory mem = {
		"backend contract: memory", mem_create, mem_open, mem_destroy, &mem_ctx};
	const struct CMUnitTest core[] = {
		L(test_lie_long),
		L(test_lie_short),
		L(test_silent_failure),
		L(test_interface_checked),
		L(test_calls_counted),
		L(test_update_retries),
		cmocka_unit_test(test_locations),
		cmocka_unit_test(test_store_by_uri),
	};
	int failed = 0;

	th_fill(KEY, sizeof(KEY), 99);
	atrest__obs_flusher_off(1);
	failed += backend_suite_run(&fs);
	failed += backend_suite_run(&mem);
	failed += cmocka_run_group_tests_name("core and backends", core, NULL, NULL);
	return failed;
}
