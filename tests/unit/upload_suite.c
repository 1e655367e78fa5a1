/*
 * The multipart-upload scenario shared by the backends' tests
 * (upload_suite.h): only the public API, plus raw backend calls to count
 * and replace what the upload left in the store's own area.
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "upload_int.h"
#include "upload_suite.h"

static int count_key(const char *key, uint64_t size, int64_t mtime, void *p)
{
	(void)key, (void)size, (void)mtime;
	(*(int *)p)++;
	return 0;
}

static int upload_keys(atrest_backend *raw)
{
	int n = 0;

	assert_int_equal(raw->list(raw, ATREST__UPLOAD_DIR, count_key, &n), 0);
	return n;
}

static uint8_t *raw_get(atrest_backend *raw, const char *key, size_t *len)
{
	atrest_backend_reader *r;
	uint8_t *buf;
	size_t got = 0;

	assert_int_equal(raw->open_read(raw, &r, key), 0);
	*len = (size_t)r->size;
	buf = malloc(*len ? *len : 1);
	assert_int_equal(r->pread(r, buf, *len, 0, &got), 0);
	assert_int_equal(got, *len);
	r->close(r);
	return buf;
}

static void raw_put(atrest_backend *raw, const char *key, const uint8_t *buf, size_t len)
{
	atrest_backend_writer *w;

	assert_int_equal(raw->open_write(raw, &w, key, 0, NULL), 0);
	assert_int_equal(w->write(w, buf, len), 0);
	assert_int_equal(w->commit(w), 0);
}

static void put_part(
	atrest_store *st, const char *id, uint32_t n, const uint8_t *buf, size_t len)
{
	atrest_writer *w;

	assert_int_equal(atrest_upload_part_open(&w, st, "mp/x", id, n, NULL), 0);
	assert_int_equal(atrest_writer_write(w, buf, len), 0);
	assert_int_equal(atrest_writer_commit(w), 0);
}

static int count_obj(const atrest_list_entry *e, void *p)
{
	(void)e;
	(*(int *)p)++;
	return 0;
}

static void check_tamper(atrest_store *st, atrest_backend *raw, const char *id)
{
	char k1[ATREST__PART_NAME_MAX], k2[ATREST__PART_NAME_MAX];
	uint8_t *one, *two;
	size_t l1, l2, len;
	void *out;

	assert_int_equal(atrest__upload_part_name(k1, sizeof(k1), id, 1, "mp/x"), 0);
	assert_int_equal(atrest__upload_part_name(k2, sizeof(k2), id, 2, "mp/x"), 0);
	one = raw_get(raw, k1, &l1);
	two = raw_get(raw, k2, &l2);
	raw_put(raw, k2, one, l1); /* part 1's bytes as part 2 */
	assert_int_equal(atrest_get(&out, &len, st, "mp/x"), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "part 2"));
	raw_put(raw, k2, two, l2);
	free(one);
	free(two);
}

void upload_suite_run(atrest_store *st, atrest_backend *raw)
{
	const size_t sizes[3] = {300000, 70001, 5};
	atrest_write_options o = ATREST_WRITE_OPTIONS_INIT;
	uint32_t nums[] = {1, 2, 3};
	uint8_t *all = malloc(370006), buf[1000];
	char *id, *loser;
	size_t off = 0, len, got;
	void *out;
	int listed = 0;

	o.flags = ATREST_WRITE_IF_ABSENT;
	th_fill(all, 370006, 77);
	assert_int_equal(atrest_upload_create(&id, st, "mp/x", NULL), 0);
	assert_int_equal(atrest_upload_create(&loser, st, "mp/x", NULL), 0);
	for (int i = 2; i >= 0; i--) {
		off = i == 0 ? 0 : i == 1 ? sizes[0] : sizes[0] + sizes[1];
		put_part(st, id, (uint32_t)i + 1, all + off, sizes[i]);
	}
	put_part(st, loser, 1, all, 10);
	assert_int_equal(atrest_upload_complete(st, "mp/x", id, nums, 3, NULL, &o), 0);
	assert_int_equal(atrest_upload_complete(st, "mp/x", loser, nums, 1, NULL, &o),
		ATREST_EEXISTS);
	if (atrest_upload_abort(st, "mp/x", loser) != 0)
		fail_msg("abort: %s", atrest_error_last()->message);
	assert_int_equal(atrest_get(&out, &len, st, "mp/x"), 0);
	assert_int_equal(len, 370006);
	assert_memory_equal(out, all, len);
	atrest_free(out);
	assert_int_equal(atrest_get_range(st, "mp/x", 299500, buf, 1000, &got), 0);
	assert_int_equal(got, 1000);
	assert_memory_equal(buf, all + 299500, 1000);
	assert_int_equal(atrest_list(st, "mp/", count_obj, &listed), 0);
	assert_int_equal(listed, 1);
	assert_int_equal(upload_keys(raw), 4); /* 3 parts, 1 record */
	check_tamper(st, raw, id);
	assert_int_equal(atrest_delete(st, "mp/x"), 0);
	assert_int_equal(upload_keys(raw), 0);
	assert_int_equal(atrest_get(&out, &len, st, "mp/x"), ATREST_ENOTFOUND);
	atrest_free(id);
	atrest_free(loser);
	free(all);
}
