/*
 * The contract every store backend keeps (backend_suite.h): whole-object
 * puts invisible until commit, ranged and short reads, sorted listing
 * around the store's own keys, conditional puts that are exact under
 * contention, and an error set by every failure.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend_suite.h"
#include "helpers.h"

#include "atrest/errors.h"

struct fx {
	const backend_factory *f;
	atrest_backend *b;
};

/* The failure's code must be the one returned, with a message. */
static void assert_error(int rc, int want)
{
	const atrest_error *e = atrest_error_last();

	assert_int_equal(rc, want);
	assert_non_null(e);
	assert_int_equal(e->code, want);
	assert_true(e->message && *e->message);
}

int bs_put(atrest_backend *b, const char *key, const void *buf, size_t len,
	unsigned int flags, const char *etag)
{
	atrest_backend_writer *w;
	size_t half = len / 2;
	int rc = b->open_write(b, &w, key, flags, etag);

	if (rc < 0)
		return rc;
	assert_true(w->version >= 1);
	/* Two writes: the writer must append, not replace. */
	rc = w->write(w, buf, half);
	if (rc == 0)
		rc = w->write(w, (const char *)buf + half, len - half);
	if (rc < 0) {
		w->abort(w);
		return rc;
	}
	return w->commit(w);
}

#define put bs_put
#define get bs_get

static int put_str(atrest_backend *b, const char *key, const char *s)
{
	return put(b, key, s, strlen(s), 0, NULL);
}

char *bs_get(atrest_backend *b, const char *key, size_t *len, int *rc, char *etag)
{
	atrest_backend_reader *r;
	size_t got = 0;
	char *buf;

	*rc = b->open_read(b, &r, key);
	if (*rc < 0)
		return NULL;
	assert_true(r->version >= 1);
	assert_non_null(memchr(r->etag, '\0', sizeof(r->etag)));
	assert_true(r->etag[0] != '\0');
	buf = malloc(r->size + 1);
	assert_non_null(buf);
	assert_int_equal(r->pread(r, buf, r->size, 0, &got), 0);
	assert_int_equal(got, r->size);
	buf[got] = '\0';
	if (len)
		*len = got;
	if (etag)
		strcpy(etag, r->etag);
	r->close(r);
	return buf;
}

static void assert_content(atrest_backend *b, const char *key, const char *s)
{
	int rc;
	char *got = get(b, key, NULL, &rc, NULL);

	assert_int_equal(rc, 0);
	assert_string_equal(got, s);
	free(got);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->f = *state;
	assert_int_equal(fx->f->create(fx->f->ctx), 0);
	fx->b = fx->f->open(fx->f->ctx);
	assert_non_null(fx->b);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	fx->b->free(fx->b);
	fx->f->destroy(fx->f->ctx);
	free(fx);
	return 0;
}

static void t_interface(void **state)
{
	struct fx *fx = *state;
	atrest_backend *b = fx->b;

	assert_true(b->version >= 2);
	assert_non_null(b->name);
	assert_true(b->prepare && b->open_write && b->open_read && b->list && b->remove &&
		b->free);
	assert_int_equal(b->prepare(b, 0), 0);
}

static void t_roundtrip(void **state)
{
	struct fx *fx = *state;
	size_t n = 300000, len;
	uint8_t *data = malloc(n), buf[100];
	atrest_backend_reader *r;
	size_t got;
	int rc;

	th_fill(data, n, 7);
	assert_int_equal(put(fx->b, "job/chk", data, n, 0, NULL), 0);
	char *back = get(fx->b, "job/chk", &len, &rc, NULL);
	assert_int_equal(rc, 0);
	assert_int_equal(len, n);
	assert_memory_equal(back, data, n);
	free(back);
	assert_int_equal(fx->b->open_read(fx->b, &r, "job/chk"), 0);
	assert_int_equal(r->size, n);
	assert_true(r->mtime > (int64_t)time(NULL) - 86400 &&
		r->mtime < (int64_t)time(NULL) + 86400);
	assert_int_equal(r->pread(r, buf, 100, 1000, &got), 0);
	assert_int_equal(got, 100);
	assert_memory_equal(buf, data + 1000, 100);
	/* Short only at the end; nothing past it. */
	assert_int_equal(r->pread(r, buf, 100, n - 30, &got), 0);
	assert_int_equal(got, 30);
	assert_memory_equal(buf, data + n - 30, 30);
	assert_int_equal(r->pread(r, buf, 100, n, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(r->pread(r, buf, 100, n + 1000, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(r->pread(r, buf, 0, 0, &got), 0);
	assert_int_equal(got, 0);
	r->close(r);
	/* An empty object is an object. */
	assert_int_equal(put(fx->b, "empty", "", 0, 0, NULL), 0);
	assert_content(fx->b, "empty", "");
	free(data);
}

static void t_overwrite(void **state)
{
	struct fx *fx = *state;
	char e1[ATREST_BACKEND_ETAG_MAX], e2[ATREST_BACKEND_ETAG_MAX];
	int rc;

	assert_int_equal(put_str(fx->b, "a/old", "old"), 0);
	free(get(fx->b, "a/old", NULL, &rc, e1));
	assert_int_equal(put_str(fx->b, "a/old", "old"), 0);
	free(get(fx->b, "a/old", NULL, &rc, e2));
	/* Every put is a new version, even with the same bytes. */
	assert_string_not_equal(e1, e2);
	assert_int_equal(put_str(fx->b, "a/old", "new!"), 0);
	assert_content(fx->b, "a/old", "new!");
}

static int count_cb(const char *key, uint64_t size, int64_t mtime, void *p)
{
	(void)key;
	(void)size;
	(void)mtime;
	(*(int *)p)++;
	return 0;
}

static void t_invisible_until_commit(void **state)
{
	struct fx *fx = *state;
	atrest_backend_writer *w;
	atrest_backend_reader *r;
	int n = 0;

	assert_int_equal(fx->b->open_write(fx->b, &w, "x/y", 0, NULL), 0);
	assert_int_equal(w->write(w, "data", 4), 0);
	assert_error(fx->b->open_read(fx->b, &r, "x/y"), ATREST_ENOTFOUND);
	assert_int_equal(fx->b->list(fx->b, "", count_cb, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(w->commit(w), 0);
	assert_content(fx->b, "x/y", "data");
	/* An aborted put leaves nothing, and the old version stays. */
	assert_int_equal(fx->b->open_write(fx->b, &w, "x/y", 0, NULL), 0);
	assert_int_equal(w->write(w, "other", 5), 0);
	w->abort(w);
	assert_content(fx->b, "x/y", "data");
	assert_int_equal(fx->b->open_write(fx->b, &w, "x/z", 0, NULL), 0);
	w->abort(w);
	assert_error(fx->b->open_read(fx->b, &r, "x/z"), ATREST_ENOTFOUND);
}

static void t_missing(void **state)
{
	struct fx *fx = *state;
	atrest_backend_reader *r;

	atrest_error_clear();
	assert_error(fx->b->open_read(fx->b, &r, "nope"), ATREST_ENOTFOUND);
	atrest_error_clear();
	assert_error(fx->b->open_read(fx->b, &r, "no/such/dir"), ATREST_ENOTFOUND);
	atrest_error_clear();
	assert_error(fx->b->remove(fx->b, "nope"), ATREST_ENOTFOUND);
	assert_int_equal(put_str(fx->b, "gone", "x"), 0);
	assert_int_equal(fx->b->remove(fx->b, "gone"), 0);
	assert_error(fx->b->remove(fx->b, "gone"), ATREST_ENOTFOUND);
	assert_error(fx->b->open_read(fx->b, &r, "gone"), ATREST_ENOTFOUND);
}

static void t_if_absent(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(
		put(fx->b, "once", "first", 5, ATREST_BACKEND_IF_ABSENT, NULL), 0);
	atrest_error_clear();
	assert_error(put(fx->b, "once", "second", 6, ATREST_BACKEND_IF_ABSENT, NULL),
		ATREST_EEXISTS);
	assert_content(fx->b, "once", "first");
	assert_int_equal(
		put(fx->b, "deep/er/once", "x", 1, ATREST_BACKEND_IF_ABSENT, NULL), 0);
}

static void t_if_match(void **state)
{
	struct fx *fx = *state;
	char e1[ATREST_BACKEND_ETAG_MAX], e2[ATREST_BACKEND_ETAG_MAX];
	int rc;

	assert_int_equal(put_str(fx->b, "k", "v1"), 0);
	free(get(fx->b, "k", NULL, &rc, e1));
	assert_int_equal(put(fx->b, "k", "v2", 2, ATREST_BACKEND_IF_MATCH, e1), 0);
	free(get(fx->b, "k", NULL, &rc, e2));
	assert_string_not_equal(e1, e2);
	/* The version read is gone: the condition fails, nothing changes. */
	atrest_error_clear();
	assert_error(
		put(fx->b, "k", "v3", 2, ATREST_BACKEND_IF_MATCH, e1), ATREST_ECONFLICT);
	assert_content(fx->b, "k", "v2");
	/* A plain put in between also makes the etag stale. */
	assert_int_equal(put_str(fx->b, "k", "v2"), 0);
	assert_error(
		put(fx->b, "k", "v4", 2, ATREST_BACKEND_IF_MATCH, e2), ATREST_ECONFLICT);
	/* Deleted meanwhile: a conflict too, and no object appears. */
	free(get(fx->b, "k", NULL, &rc, e2));
	assert_int_equal(fx->b->remove(fx->b, "k"), 0);
	assert_error(
		put(fx->b, "k", "v5", 2, ATREST_BACKEND_IF_MATCH, e2), ATREST_ECONFLICT);
	free(get(fx->b, "k", NULL, &rc, NULL));
	assert_int_equal(rc, ATREST_ENOTFOUND);
}

/* A reader keeps the version it opened: never a mix of two. */
static void t_reader_snapshot(void **state)
{
	struct fx *fx = *state;
	atrest_backend_reader *r;
	char buf[32];
	size_t got = 0;
	int rc;

	assert_int_equal(put_str(fx->b, "snap", "version-one"), 0);
	assert_int_equal(fx->b->open_read(fx->b, &r, "snap"), 0);
	assert_int_equal(put_str(fx->b, "snap", "2"), 0);
	rc = r->pread(r, buf, sizeof(buf), 0, &got);
	if (rc == 0) {
		assert_int_equal(got, 11);
		assert_memory_equal(buf, "version-one", 11);
	} else {
		assert_error(rc, ATREST_ECONFLICT);
	}
	r->close(r);
}

int bs_collect(const char *key, uint64_t size, int64_t mtime, void *p)
{
	struct bs_seen *s = p;

	(void)mtime;
	assert_true(s->n < 64);
	assert_int_equal(size, strlen(key)); /* each object holds its key */
	snprintf(s->keys[s->n++], sizeof(s->keys[0]), "%s", key);
	return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

void bs_expect_list(atrest_backend *b, const char *prefix, const char *const *want, int n)
{
	struct bs_seen s = {.n = 0};

	assert_int_equal(b->list(b, prefix, bs_collect, &s), 0);
	assert_int_equal(s.n, n);
	for (int i = 0; i < n; i++)
		assert_string_equal(s.keys[i], want[i]);
}

#define collect bs_collect
#define expect_list bs_expect_list

static void t_list(void **state)
{
	static const char *keys[] = {"b", "a/c/d", ".hidden", "a0", "a/b", "a.txt",
		".atrest/keyring", ".atrest/tenants/t/objects/x"};
	static const char *all[] = {".hidden", "a.txt", "a/b", "a/c/d", "a0", "b"};
	static const char *under_a[] = {"a/b", "a/c/d"};
	static const char *starting_a[] = {"a.txt", "a/b", "a/c/d", "a0"};
	static const char *internal[] = {
		".atrest/keyring", ".atrest/tenants/t/objects/x"};
	static const char *tenant[] = {".atrest/tenants/t/objects/x"};
	struct fx *fx = *state;
	struct bs_seen s = {.n = 0, .stop_after = 2};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_int_equal(put_str(fx->b, keys[i], keys[i]), 0);
	expect_list(fx->b, "", all, 6);
	expect_list(fx->b, "a/", under_a, 2);
	expect_list(fx->b, "a", starting_a, 4);
	expect_list(fx->b, "zzz", NULL, 0);
	expect_list(fx->b, ".atrest/", internal, 2);
	expect_list(fx->b, ".atrest/tenants/t/objects/", tenant, 1);
	/* A non-zero return of the callback stops the walk and comes back. */
	assert_int_equal(fx->b->list(fx->b, "", collect, &s), 7);
	assert_int_equal(s.n, 2);
}

static void t_bad_keys(void **state)
{
	static const char *bad[] = {
		"", "/abs", "../x", "a/../b", "a/..", "..", ".", "a/./b", "a//b", "a/"};
	struct fx *fx = *state;
	atrest_backend_writer *w;
	atrest_backend_reader *r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atrest_error_clear();
		assert_error(
			fx->b->open_write(fx->b, &w, bad[i], 0, NULL), ATREST_EINVAL);
		assert_error(fx->b->open_read(fx->b, &r, bad[i]), ATREST_EINVAL);
		assert_error(fx->b->remove(fx->b, bad[i]), ATREST_EINVAL);
	}
}

/* Version 3's optional methods, when the backend has them. */
static void t_remove_many(void **state)
{
	static const char *keys[] = {"m/1", "m/2", "m/3", "m/4"};
	static const char *gone[] = {"m/1", "m/3", "m/never"};
	static const char *left[] = {"m/2", "m/4"};
	struct fx *fx = *state;

	if (fx->b->version < 3 || !fx->b->remove_many)
		return;
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(put_str(fx->b, keys[i], keys[i]), 0);
	assert_int_equal(fx->b->remove_many(fx->b, gone, 3), 0);
	expect_list(fx->b, "m/", left, 2);
	assert_int_equal(fx->b->remove_many(fx->b, gone, 0), 0);
	atrest_error_clear();
	assert_error(fx->b->remove_many(fx->b, (const char *[]){"m/2", "../x"}, 2),
		ATREST_EINVAL);
}

static void t_cleanup(void **state)
{
	struct fx *fx = *state;
	uint64_t n = 99;

	if (fx->b->version < 3 || !fx->b->cleanup)
		return;
	assert_int_equal(put_str(fx->b, "c/1", "c/1"), 0);
	/* Nothing of a live handle goes, whatever the age asked. */
	assert_int_equal(fx->b->cleanup(fx->b, 0, &n), 0);
	assert_int_equal(n, 0);
	assert_content(fx->b, "c/1", "c/1");
}

/* ---- conditional puts under contention ---- */

#define RACERS 4
#define INCREMENTS 20

struct racer {
	atrest_backend *b;
	atomic_int *created;
	int failures;
};

/* Read, add one, put back only if unchanged; start over when it was. */
static int increment(atrest_backend *b)
{
	char etag[ATREST_BACKEND_ETAG_MAX], text[32];
	int rc;

	for (int tries = 0; tries < 100000; tries++) {
		char *cur = get(b, "counter", NULL, &rc, etag);
		if (!cur)
			return rc;
		snprintf(text, sizeof(text), "%ld", atol(cur) + 1);
		free(cur);
		rc = put(b, "counter", text, strlen(text), ATREST_BACKEND_IF_MATCH, etag);
		if (rc != ATREST_ECONFLICT)
			return rc;
	}
	return ATREST_ECONFLICT;
}

static void *racer_main(void *p)
{
	struct racer *r = p;

	if (put(r->b, "first", "x", 1, ATREST_BACKEND_IF_ABSENT, NULL) == 0)
		atomic_fetch_add(r->created, 1);
	for (int i = 0; i < INCREMENTS; i++)
		if (increment(r->b) != 0)
			r->failures++;
	return NULL;
}

/* Half the racers share a handle, half have their own (as processes). */
static void t_conditional_race(void **state)
{
	struct fx *fx = *state;
	struct racer r[RACERS];
	pthread_t th[RACERS];
	atomic_int created = 0;
	atrest_backend *other[RACERS] = {NULL};

	assert_int_equal(put_str(fx->b, "counter", "0"), 0);
	for (int i = 0; i < RACERS; i++) {
		other[i] = i % 2 ? fx->f->open(fx->f->ctx) : NULL;
		r[i] = (struct racer){other[i] ? other[i] : fx->b, &created, 0};
		assert_int_equal(pthread_create(&th[i], NULL, racer_main, &r[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].failures, 0);
		if (other[i])
			other[i]->free(other[i]);
	}
	assert_int_equal(atomic_load(&created), 1);
	char want[16];
	snprintf(want, sizeof(want), "%d", RACERS * INCREMENTS);
	assert_content(fx->b, "counter", want);
}

#define T(name, f) cmocka_unit_test_prestate_setup_teardown(name, setup, teardown, f)

int backend_suite_run(const backend_factory *f)
{
	void *fp = (void *)f;
	const struct CMUnitTest tests[] = {
		T(t_interface, fp),
		T(t_roundtrip, fp),
		T(t_overwrite, fp),
		T(t_invisible_until_commit, fp),
		T(t_missing, fp),
		T(t_if_absent, fp),
		T(t_if_match, fp),
		T(t_reader_snapshot, fp),
		T(t_list, fp),
		T(t_bad_keys, fp),
		T(t_remove_many, fp),
		T(t_cleanup, fp),
		T(t_conditional_race, fp),
	};

	return _cmocka_run_group_tests(
		f->name, tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
}
