/*
 * Multipart uploads: parts in any order and from threads, re-uploads,
 * empty parts, refused part lists, ranges across parts, every tampering
 * of a part named, abort, cleanup by age, create-only races, delete and
 * overwrite removing parts, re-encryption, events, and crashes (the fs
 * system-call hook) that leave the object readable or absent.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "helpers.h"
#include "keyring.h"
#include "store/fs_int.h"
#include "upload_int.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static uint8_t KEY[32];

typedef struct fx {
	char dir[PATH_MAX];
	atrest_store *st;
} fx;

static const char *msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e && e->message ? e->message : "";
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	th_tmpdir(f->dir, sizeof(f->dir));
	memset(KEY, 0x5a, sizeof(KEY));
	f->st = th_store_with(f->dir, KEY, 0, 4096, 2);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	atrest_store_close(f->st);
	th_rmrf(f->dir);
	free(f);
	atrest__clock_offset(0);
	return 0;
}

static void upload_part(atrest_store *st, const char *name, const char *id, uint32_t n,
	const void *buf, size_t len)
{
	atrest_meta_entry e = {"etag", "x"};
	atrest_meta m = {&e, 1};
	atrest_writer *w;

	assert_int_equal(atrest_upload_part_open(&w, st, name, id, n, &m), 0);
	assert_int_equal(atrest_writer_write(w, buf, len), 0);
	assert_int_equal(atrest_writer_commit(w), 0);
}

/* Data of a part: sizes chosen to cross segment boundaries oddly. */
static uint8_t *part_data(uint32_t n, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);

	th_fill(b, len, 1000 + n);
	return b;
}

static void expect_bytes(
	atrest_store *st, const char *name, const uint8_t *want, size_t len)
{
	void *got;
	size_t got_len;

	assert_int_equal(atrest_get(&got, &got_len, st, name), 0);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, want, len);
	atrest_free(got);
}

/* Upload parts sizes[0..n) numbered 1..n (in the order given by order),
 * complete, and return the whole plaintext. */
static uint8_t *make_object(
	atrest_store *st, const char *name, const size_t *sizes, size_t n, char **id_out)
{
	size_t total = 0, off = 0;
	uint32_t nums[16];
	uint8_t *all;
	char *id;

	for (size_t i = 0; i < n; i++)
		total += sizes[i];
	all = malloc(total ? total : 1);
	assert_int_equal(atrest_upload_create(&id, st, name, NULL), 0);
	for (size_t k = n; k-- > 0;) { /* last part first */
		uint8_t *d = part_data((uint32_t)k + 1, sizes[k]);
		upload_part(st, name, id, (uint32_t)k + 1, d, sizes[k]);
		free(d);
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t *d = part_data((uint32_t)i + 1, sizes[i]);
		memcpy(all + off, d, sizes[i]);
		off += sizes[i];
		free(d);
		nums[i] = (uint32_t)i + 1;
	}
	assert_int_equal(atrest_upload_complete(st, name, id, nums, n, NULL, NULL), 0);
	if (id_out)
		*id_out = id;
	else
		atrest_free(id);
	return all;
}

static int count_cb(const atrest_list_entry *e, void *p)
{
	(void)e;
	(*(int *)p)++;
	return 0;
}

static int upload_count_cb(const atrest_upload_entry *e, void *p)
{
	(void)e;
	(*(int *)p)++;
	return 0;
}

/* Files under dir/.atrest/uploads (recursively). */
static int count_files(const char *dir)
{
	char p[PATH_MAX];
	struct dirent *d;
	DIR *dh;
	int n = 0;

	if (!(dh = opendir(dir)))
		return 0;
	while ((d = readdir(dh))) {
		struct stat sb;
		if (d->d_name[0] == '.' && (!d->d_name[1] || d->d_name[1] == '.'))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, d->d_name);
		if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
			n += count_files(p);
		else if (strstr(d->d_name, ".tmp") == NULL)
			n++;
	}
	closedir(dh);
	return n;
}

static int upload_files(const fx *f)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/.atrest/uploads", f->dir);
	return count_files(p);
}

/* The file of part n of upload id of name. */
static void part_path(
	char *out, const fx *f, const char *id, uint32_t n, const char *name)
{
	char pn[ATREST__PART_NAME_MAX];

	assert_int_equal(atrest__upload_part_name(pn, sizeof(pn), id, n, name), 0);
	snprintf(out, PATH_MAX, "%s/%s", f->dir, pn);
}

static void test_any_order(void **state)
{
	fx *f = *state;
	size_t sizes[] = {10000, 4096, 1, 9000};
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	atrest_meta_entry e = {"content-type", "text/x"};
	atrest_meta m = {&e, 1};
	uint32_t nums[] = {1, 2, 3, 4};
	int listed = 0, uploads = 0;
	uint8_t *all;
	char *id;

	assert_int_equal(atrest_upload_create(&id, f->st, "d/obj", &m), 0);
	assert_true(strlen(id) >= 16 && strlen(id) <= 64);
	atrest_upload_list(f->st, "", upload_count_cb, &uploads);
	assert_int_equal(uploads, 1);
	for (int k = 3; k >= 0; k--) {
		uint8_t *d = part_data((uint32_t)k + 1, sizes[k]);
		upload_part(f->st, "d/obj", id, (uint32_t)k + 1, d, sizes[k]);
		free(d);
	}
	/* nothing visible before completion */
	assert_int_equal(atrest_stat(&si, f->st, "d/obj"), ATREST_ENOTFOUND);
	assert_int_equal(
		atrest_upload_complete(f->st, "d/obj", id, nums, 4, NULL, NULL), 0);
	atrest_free(id);
	all = make_object(f->st, "d/again", sizes, 4, NULL);
	expect_bytes(f->st, "d/again", all, 10000 + 4096 + 1 + 9000);
	expect_bytes(f->st, "d/obj", all, 10000 + 4096 + 1 + 9000);
	assert_int_equal(atrest_stat(&si, f->st, "d/obj"), 0);
	assert_int_equal(si.size, 23097);
	assert_true(si.stored_size > si.size);
	assert_int_equal(si.meta_count, 1);
	assert_string_equal(si.meta[0].value, "text/x");
	atrest_stat_info_clear(&si);
	assert_int_equal(atrest_list(f->st, "", count_cb, &listed), 0);
	assert_int_equal(listed, 2);
	uploads = 0;
	assert_int_equal(atrest_upload_list(f->st, NULL, upload_count_cb, &uploads), 0);
	assert_int_equal(uploads, 0);
	free(all);
}

typedef struct pjob {
	atrest_store *st;
	const char *id;
	uint32_t first, step, last;
} pjob;

static void *part_thread(void *p)
{
	pjob *j = p;

	for (uint32_t n = j->first; n <= j->last; n += j->step) {
		uint8_t *d = part_data(n, 5000 + n * 333);
		atrest_writer *w;
		int rc = atrest_upload_part_open(&w, j->st, "par", j->id, n, NULL);
		if (rc == 0 && atrest_writer_write(w, d, 5000 + n * 333) == 0)
			rc = atrest_writer_commit(w);
		free(d);
		if (rc < 0)
			return (void *)1;
	}
	return NULL;
}

static void test_parallel(void **state)
{
	fx *f = *state;
	pthread_t t[4];
	pjob j[4];
	uint32_t nums[12];
	size_t total = 0, off = 0;
	uint8_t *all;
	char *id;

	assert_int_equal(atrest_upload_create(&id, f->st, "par", NULL), 0);
	for (int i = 0; i < 4; i++) {
		j[i] = (pjob){f->st, id, (uint32_t)i + 1, 4, 12};
		assert_int_equal(pthread_create(&t[i], NULL, part_thread, &j[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		assert_null(r);
	}
	for (uint32_t n = 1; n <= 12; n++) {
		nums[n - 1] = n;
		total += 5000 + n * 333;
	}
	all = malloc(total);
	for (uint32_t n = 1; n <= 12; n++) {
		uint8_t *d = part_data(n, 5000 + n * 333);
		memcpy(all + off, d, 5000 + n * 333);
		off += 5000 + n * 333;
		free(d);
	}
	assert_int_equal(
		atrest_upload_complete(f->st, "par", id, nums, 12, NULL, NULL), 0);
	expect_bytes(f->st, "par", all, total);
	free(all);
	atrest_free(id);
}

typedef struct seen {
	uint32_t n[8];
	uint64_t size[8];
	int count;
} seen;

static int part_cb(const atrest_upload_part *p, void *payload)
{
	seen *s = payload;

	assert_int_equal(p->meta_count, 1);
	assert_string_equal(p->meta[0].key, "etag");
	s->n[s->count] = p->number;
	s->size[s->count++] = p->size;
	return 0;
}

static void test_reupload_and_empty(void **state)
{
	fx *f = *state;
	uint32_t nums[] = {1, 2, 3};
	seen s = {0};
	char *id;

	assert_int_equal(atrest_upload_create(&id, f->st, "re", NULL), 0);
	upload_part(f->st, "re", id, 2, "old old old", 11);
	upload_part(f->st, "re", id, 2, "new", 3);
	upload_part(f->st, "re", id, 1, "", 0);
	upload_part(f->st, "re", id, 3, "", 0);
	assert_int_equal(atrest_upload_parts(f->st, "re", id, part_cb, &s), 0);
	assert_int_equal(s.count, 3);
	assert_int_equal(s.n[1], 2);
	assert_int_equal(s.size[1], 3);
	assert_int_equal(atrest_upload_complete(f->st, "re", id, nums, 3, NULL, NULL), 0);
	th_expect_object(f->st, "re", "new");
	atrest_free(id);

	/* a 0-byte object of one empty part */
	assert_int_equal(atrest_upload_create(&id, f->st, "zero", NULL), 0);
	upload_part(f->st, "zero", id, 1, "", 0);
	assert_int_equal(
		atrest_upload_complete(f->st, "zero", id, nums, 1, NULL, NULL), 0);
	th_expect_object(f->st, "zero", "");
	atrest_free(id);
}

static void test_bad_lists(void **state)
{
	fx *f = *state;
	uint32_t none[] = {0}, down[] = {2, 1}, dup[] = {1, 1}, missing[] = {1, 5},
		 big[] = {ATREST_UPLOAD_MAX_PARTS + 1}, ok[] = {1, 2};
	atrest_writer *w;
	char *id;

	assert_int_equal(atrest_upload_create(&id, f->st, "bad", NULL), 0);
	upload_part(f->st, "bad", id, 1, "a", 1);
	upload_part(f->st, "bad", id, 2, "b", 1);
	assert_int_equal(atrest_upload_complete(f->st, "bad", id, ok, 0, NULL, NULL),
		ATREST_EINVAL);
	assert_int_equal(atrest_upload_complete(f->st, "bad", id, none, 1, NULL, NULL),
		ATREST_EINVAL);
	assert_int_equal(atrest_upload_complete(f->st, "bad", id, down, 2, NULL, NULL),
		ATREST_EINVAL);
	assert_non_null(strstr(msg(), "part 1 (position 2)"));
	assert_int_equal(atrest_upload_complete(f->st, "bad", id, dup, 2, NULL, NULL),
		ATREST_EINVAL);
	assert_int_equal(atrest_upload_complete(f->st, "bad", id, big, 1, NULL, NULL),
		ATREST_EINVAL);
	assert_int_equal(atrest_upload_complete(f->st, "bad", id, missing, 2, NULL, NULL),
		ATREST_ENOTFOUND);
	assert_non_null(strstr(msg(), "part 5"));
	assert_int_equal(
		atrest_upload_part_open(&w, f->st, "bad", id, 0, NULL), ATREST_EINVAL);
	assert_int_equal(atrest_upload_part_open(&w, f->st, "other", id, 1, NULL),
		ATREST_ENOTFOUND);
	assert_int_equal(atrest_upload_part_open(&w, f->st, "bad", "no/such", 1, NULL),
		ATREST_EINVAL);
	assert_int_equal(atrest_upload_part_open(&w, f->st, "bad", "nosuch", 1, NULL),
		ATREST_ENOTFOUND);
	/* still open: the right list completes it */
	assert_int_equal(atrest_upload_complete(f->st, "bad", id, ok, 2, NULL, NULL), 0);
	th_expect_object(f->st, "bad", "ab");
	assert_int_equal(atrest_upload_complete(f->st, "bad", id, ok, 2, NULL, NULL),
		ATREST_ENOTFOUND);
	assert_int_equal(
		atrest_upload_part_open(&w, f->st, "bad", id, 1, NULL), ATREST_ENOTFOUND);
	atrest_free(id);
}

static void test_ranges(void **state)
{
	fx *f = *state;
	size_t sizes[] = {5000, 0, 4096, 8193, 7};
	size_t total = 5000 + 4096 + 8193 + 7;
	uint8_t *all = make_object(f->st, "rng", sizes, 5, NULL), buf[20000];
	atrest_reader *r;
	size_t got;

	for (uint64_t seed = 1; seed < 200; seed++) {
		uint64_t off = (seed * 7919) % total, len = (seed * 104729) % 9000;
		assert_int_equal(atrest_get_range(f->st, "rng", off, buf, len, &got), 0);
		assert_int_equal(got, len < total - off ? len : total - off);
		assert_memory_equal(buf, all + off, got);
	}
	assert_int_equal(atrest_reader_open(&r, f->st, "rng"), 0);
	assert_int_equal(atrest_reader_size(r), total);
	assert_int_equal(atrest_reader_seek(r, 9095), 0);
	assert_int_equal(atrest_reader_read(r, buf, 10, &got), 0);
	assert_memory_equal(buf, all + 9095, 10);
	assert_int_equal(atrest_reader_seek(r, 100), 0);
	assert_int_equal(atrest_reader_read(r, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, total - 100);
	assert_memory_equal(buf, all + 100, got);
	assert_int_equal(atrest_reader_read(r, buf, 10, &got), 0);
	assert_int_equal(got, 0);
	atrest_reader_close(r);
	free(all);
}

static void expect_integrity(fx *f, const char *name, const char *part)
{
	void *got;
	size_t len;

	assert_int_equal(atrest_get(&got, &len, f->st, name), ATREST_EINTEGRITY);
	if (!strstr(msg(), part))
		fail_msg("message '%s' does not name '%s'", msg(), part);
}

static void test_tamper(void **state)
{
	fx *f = *state;
	size_t sizes[] = {5000, 5000, 5000, 0};
	char p2[PATH_MAX], p3[PATH_MAX], p4[PATH_MAX], tmp[PATH_MAX];
	uint8_t *all, *file;
	size_t flen;
	char *id;

	all = make_object(f->st, "t", sizes, 4, &id);
	part_path(p2, f, id, 2, "t");
	part_path(p3, f, id, 3, "t");
	part_path(p4, f, id, 4, "t");
	/* flip a byte of part 2's data */
	file = th_read_file(p2, &flen);
	file[flen - 20] ^= 1;
	assert_int_equal(th_write_file(p2, file, flen), 0);
	expect_integrity(f, "t", "part 2");
	file[flen - 20] ^= 1;
	/* truncate part 2 */
	assert_int_equal(th_write_file(p2, file, flen - 100), 0);
	expect_integrity(f, "t", "part 2");
	assert_int_equal(th_write_file(p2, file, flen), 0);
	expect_bytes(f->st, "t", all, 15000);
	/* swap parts 2 and 3 */
	snprintf(tmp, sizeof(tmp), "%s.x", p2);
	assert_int_equal(rename(p2, tmp), 0);
	assert_int_equal(rename(p3, p2), 0);
	assert_int_equal(rename(tmp, p3), 0);
	expect_integrity(f, "t", "part 2");
	assert_int_equal(rename(p2, tmp), 0);
	assert_int_equal(rename(p3, p2), 0);
	assert_int_equal(rename(tmp, p3), 0);
	expect_bytes(f->st, "t", all, 15000);
	/* remove part 3, then the empty part 4 at the end */
	assert_int_equal(rename(p3, tmp), 0);
	expect_integrity(f, "t", "part 3 is missing");
	assert_int_equal(rename(tmp, p3), 0);
	assert_int_equal(rename(p4, tmp), 0);
	expect_integrity(f, "t", "part 4 is missing");
	assert_int_equal(rename(tmp, p4), 0);
	expect_bytes(f->st, "t", all, 15000);
	free(file);
	free(all);
	atrest_free(id);
}

static void test_replay(void **state)
{
	fx *f = *state;
	uint32_t nums[] = {1};
	char p1[PATH_MAX];
	uint8_t *old;
	size_t len;
	char *id;

	assert_int_equal(atrest_upload_create(&id, f->st, "rp", NULL), 0);
	upload_part(f->st, "rp", id, 1, "first", 5);
	part_path(p1, f, id, 1, "rp");
	old = th_read_file(p1, &len);
	upload_part(f->st, "rp", id, 1, "later", 5);
	assert_int_equal(atrest_upload_complete(f->st, "rp", id, nums, 1, NULL, NULL), 0);
	th_expect_object(f->st, "rp", "later");
	assert_int_equal(th_write_file(p1, old, len), 0);
	expect_integrity(f, "rp", "part 1 is not the one completed");
	free(old);
	atrest_free(id);
}

static void test_abort(void **state)
{
	fx *f = *state;
	uint32_t nums[] = {1};
	atrest_writer *w;
	char *id;

	assert_int_equal(atrest_upload_create(&id, f->st, "ab", NULL), 0);
	upload_part(f->st, "ab", id, 1, "x", 1);
	upload_part(f->st, "ab", id, 2, "y", 1);
	assert_true(upload_files(f) == 3);
	assert_int_equal(atrest_upload_abort(f->st, "ab", id), 0);
	assert_int_equal(upload_files(f), 0);
	assert_int_equal(atrest_upload_abort(f->st, "ab", id), ATREST_ENOTFOUND);
	assert_int_equal(
		atrest_upload_part_open(&w, f->st, "ab", id, 1, NULL), ATREST_ENOTFOUND);
	assert_int_equal(atrest_upload_complete(f->st, "ab", id, nums, 1, NULL, NULL),
		ATREST_ENOTFOUND);
	atrest_free(id);
}

static void test_cleanup_age(void **state)
{
	fx *f = *state;
	char *a, *b, *c, rec[PATH_MAX];
	size_t n;
	int left = 0;
	uint64_t cnt;

	assert_int_equal(atrest_upload_create(&a, f->st, "old1", NULL), 0);
	assert_int_equal(atrest_upload_create(&b, f->st, "old2", NULL), 0);
	upload_part(f->st, "old1", a, 1, "x", 1);
	atrest__clock_offset(7200);
	assert_int_equal(atrest_upload_create(&c, f->st, "new", NULL), 0);
	upload_part(f->st, "new", c, 1, "x", 1);
	assert_int_equal(atrest_upload_cleanup(&n, f->st, 3600), 0);
	assert_int_equal(n, 2);
	assert_int_equal(atrest_upload_list(f->st, "", upload_count_cb, &left), 0);
	assert_int_equal(left, 1);
	assert_int_equal(upload_files(f), 2);
	assert_int_equal(atrest_upload_cleanup(&n, f->st, 3600), 0);
	assert_int_equal(n, 0);
	/* the store's cleanup (and so snapshot gc) leaves uploads in
	 * progress alone, and removes orphans: parts without a record */
	atrest__clock_offset(86400 * 3);
	assert_int_equal(atrest_store_cleanup(&cnt, f->st, 3600), 0);
	assert_int_equal(cnt, 0);
	assert_int_equal(upload_files(f), 2);
	assert_int_equal(atrest_snapshot_gc(NULL, f->st, NULL), 0);
	assert_int_equal(upload_files(f), 2);
	snprintf(rec, sizeof(rec), "%s/.atrest/uploads/%s/record", f->dir, c);
	assert_int_equal(unlink(rec), 0);
	assert_int_equal(atrest_store_cleanup(&cnt, f->st, 3600), 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(upload_files(f), 0);
	assert_int_equal(atrest_upload_cleanup(&n, f->st, -1), ATREST_EINVAL);
	atrest_free(a);
	atrest_free(b);
	atrest_free(c);
}

typedef struct race {
	atrest_store *st;
	char *id;
	int rc;
} race;

static void *race_thread(void *p)
{
	race *r = p;
	atrest_write_options o = ATREST_WRITE_OPTIONS_INIT;
	uint32_t nums[] = {1};

	o.flags = ATREST_WRITE_IF_ABSENT;
	r->rc = atrest_upload_complete(r->st, "once", r->id, nums, 1, NULL, &o);
	return NULL;
}

static void test_if_absent_race(void **state)
{
	fx *f = *state;
	atrest_write_options o = ATREST_WRITE_OPTIONS_INIT;
	uint32_t nums[] = {1};
	pthread_t t[2];
	race r[2];
	int open = 0;

	for (int i = 0; i < 2; i++) {
		r[i].st = f->st;
		assert_int_equal(atrest_upload_create(&r[i].id, f->st, "once", NULL), 0);
		upload_part(f->st, "once", r[i].id, 1, i ? "B" : "A", 1);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_true((r[0].rc == 0) != (r[1].rc == 0));
	assert_int_equal(r[0].rc + r[1].rc, ATREST_EEXISTS);
	th_expect_object(f->st, "once", r[0].rc == 0 ? "A" : "B");
	/* the loser is still open, and can be aborted */
	assert_int_equal(atrest_upload_list(f->st, "", upload_count_cb, &open), 0);
	assert_int_equal(open, 1);
	assert_int_equal(atrest_upload_abort(f->st, "once", r[r[0].rc == 0].id), 0);
	/* create-only over a plain object */
	assert_int_equal(atrest_put(f->st, "plain", "p", 1, NULL), 0);
	o.flags = ATREST_WRITE_IF_ABSENT;
	atrest_free(r[0].id);
	assert_int_equal(atrest_upload_create(&r[0].id, f->st, "plain", NULL), 0);
	upload_part(f->st, "plain", r[0].id, 1, "q", 1);
	assert_int_equal(
		atrest_upload_complete(f->st, "plain", r[0].id, nums, 1, NULL, &o),
		ATREST_EEXISTS);
	th_expect_object(f->st, "plain", "p");
	atrest_free(r[0].id);
	atrest_free(r[1].id);
}

static void test_delete_overwrite(void **state)
{
	fx *f = *state;
	size_t sizes[] = {3000, 3000};
	uint8_t *all;

	all = make_object(f->st, "del", sizes, 2, NULL);
	free(all);
	assert_int_equal(upload_files(f), 3); /* 2 parts and the record */
	assert_int_equal(atrest_delete(f->st, "del"), 0);
	assert_int_equal(upload_files(f), 0);
	/* an overwrite by a put, and by another multipart object */
	all = make_object(f->st, "ow", sizes, 2, NULL);
	free(all);
	all = make_object(f->st, "ow", sizes, 2, NULL);
	assert_int_equal(upload_files(f), 3);
	expect_bytes(f->st, "ow", all, 6000);
	free(all);
	assert_int_equal(atrest_put(f->st, "ow", "flat", 4, NULL), 0);
	assert_int_equal(upload_files(f), 0);
	th_expect_object(f->st, "ow", "flat");
}

typedef struct usage_row {
	uint32_t id;
	uint64_t objects;
} usage_row;

static int key_cb(const atrest_key_info *k, void *p)
{
	usage_row *u = p;

	if (k->id == u->id)
		u->objects = k->objects;
	return 0;
}

static void test_reencrypt(void **state)
{
	fx *f = *state;
	size_t sizes[] = {5000, 7000};
	atrest_job_stats js;
	uint32_t old, now;
	usage_row u;
	uint8_t *all;

	all = make_object(f->st, "re", sizes, 2, NULL);
	assert_int_equal(atrest_object_key_id(&old, f->st, "re"), 0);
	u = (usage_row){old, 0};
	assert_int_equal(atrest_keys_list(f->st, ATREST_KEYS_SCAN, key_cb, &u), 0);
	assert_int_equal(u.objects, 4); /* the object, its record, its parts */
	assert_int_equal(atrest_rotate(&now, f->st), 0);
	assert_int_equal(atrest_reencrypt(&js, f->st, old, NULL, NULL, NULL), 0);
	assert_int_equal(js.done, 1);
	expect_bytes(f->st, "re", all, 12000);
	assert_int_equal(upload_files(f), 0); /* rewritten as one object */
	u = (usage_row){old, 0};
	assert_int_equal(atrest_keys_list(f->st, ATREST_KEYS_SCAN, key_cb, &u), 0);
	assert_int_equal(u.objects, 0);
	free(all);
}

/* Parts sealed under an older key are found by the re-encryption too. */
static void test_reencrypt_part_key(void **state)
{
	fx *f = *state;
	uint32_t nums[] = {1, 2}, old;
	atrest_job_stats js;
	char *id;

	assert_int_equal(atrest_upload_create(&id, f->st, "mix", NULL), 0);
	upload_part(f->st, "mix", id, 1, "old-", 4);
	assert_int_equal(atrest_put(f->st, "ref", "r", 1, NULL), 0);
	assert_int_equal(atrest_object_key_id(&old, f->st, "ref"), 0);
	assert_int_equal(atrest_rotate(NULL, f->st), 0);
	upload_part(f->st, "mix", id, 2, "new", 3);
	assert_int_equal(
		atrest_upload_complete(f->st, "mix", id, nums, 2, NULL, NULL), 0);
	assert_int_equal(atrest_reencrypt(&js, f->st, old, NULL, NULL, NULL), 0);
	assert_int_equal(js.done, 2); /* ref, and mix for its part 1 */
	th_expect_object(f->st, "mix", "old-new");
	assert_int_equal(upload_files(f), 0);
	atrest_free(id);
}

typedef struct evs {
	int create, part, complete, abort_;
	pthread_mutex_t mu;
} evs;

static void on_event(const atrest_event *ev, void *p)
{
	evs *e = p;

	pthread_mutex_lock(&e->mu);
	if (ev->op == ATREST_OP_UPLOAD_CREATE && ev->outcome == 0)
		e->create++;
	if (ev->op == ATREST_OP_UPLOAD_PART && ev->outcome == 0) {
		assert_string_equal(ev->name, "ev");
		e->part++;
	}
	if (ev->op == ATREST_OP_UPLOAD_COMPLETE && ev->outcome == 0) {
		assert_string_equal(ev->name, "ev");
		e->complete++;
	}
	if (ev->op == ATREST_OP_UPLOAD_ABORT && ev->outcome == 0)
		e->abort_++;
	pthread_mutex_unlock(&e->mu);
}

static void test_events(void **state)
{
	fx *f = *state;
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_observer ob = ATREST_OBSERVER_INIT;
	uint32_t nums[] = {1};
	evs e = {0};
	atrest_store *st;
	char *id, *id2;

	pthread_mutex_init(&e.mu, NULL);
	ob.on_event = on_event;
	ob.payload = &e;
	o.path = f->dir;
	o.key = th_raw_key(KEY);
	o.observer = &ob;
	o.audit = "off";
	assert_int_equal(atrest_store_open(&st, &o), 0);
	assert_int_equal(atrest_upload_create(&id, st, "ev", NULL), 0);
	upload_part(st, "ev", id, 1, "e", 1);
	assert_int_equal(atrest_upload_complete(st, "ev", id, nums, 1, NULL, NULL), 0);
	assert_int_equal(atrest_upload_create(&id2, st, "ev", NULL), 0);
	assert_int_equal(atrest_upload_abort(st, "ev", id2), 0);
	atrest_store_close(st);
	assert_int_equal(e.create, 2);
	assert_int_equal(e.part, 1);
	assert_int_equal(e.complete, 1);
	assert_int_equal(e.abort_, 1);
	pthread_mutex_destroy(&e.mu);
	atrest_free(id);
	atrest_free(id2);
}

/* ---- crashes: after the k-th publication or removal, nothing more
 * reaches the disk (the process is gone) ---- */

static int crash_left; /* calls before the crash; -1: crashed */

static int crashed(void)
{
	if (crash_left < 0)
		return 1;
	if (crash_left > 0 && --crash_left == 0) {
		crash_left = -1;
		return 1;
	}
	return 0;
}

static int c_renameat(int d1, const char *a, int d2, const char *b)
{
	if (crashed()) {
		errno = EIO;
		return -1;
	}
	return renameat(d1, a, d2, b);
}

static int c_linkat(int d1, const char *a, int d2, const char *b, int fl)
{
	if (crashed()) {
		errno = EIO;
		return -1;
	}
	return linkat(d1, a, d2, b, fl);
}

static int c_unlinkat(int d, const char *p, int fl)
{
	if (crashed()) {
		errno = EIO;
		return -1;
	}
	return unlinkat(d, p, fl);
}

static void crash_hooks(int on)
{
	atrest__fs_set_syscall("renameat", on ? (void *)c_renameat : NULL);
	atrest__fs_set_syscall("linkat", on ? (void *)c_linkat : NULL);
	atrest__fs_set_syscall("unlinkat", on ? (void *)c_unlinkat : NULL);
}

/* The object is the old content, the new one, or absent: never another. */
static void readable_or_absent(atrest_store *st, const char *name, const uint8_t *a,
	size_t alen, const uint8_t *b, size_t blen)
{
	void *got;
	size_t len;
	int rc = atrest_get(&got, &len, st, name);

	if (rc == ATREST_ENOTFOUND)
		return;
	if (rc != 0)
		fail_msg("after a crash: %d %s", rc, msg());
	assert_true((a && len == alen && memcmp(got, a, len) == 0) ||
		(b && len == blen && memcmp(got, b, len) == 0));
	atrest_free(got);
}

static void test_crash(void **state)
{
	fx *f = *state;
	uint32_t nums[] = {1, 2};
	uint8_t *p1 = part_data(1, 5000), *p2 = part_data(2, 3000), all[8000];
	int done_complete = 0, done_delete = 0;

	memcpy(all, p1, 5000);
	memcpy(all + 5000, p2, 3000);
	for (int k = 1; k < 60 && !(done_complete && done_delete); k++) {
		char *id;
		size_t n;
		int rc;
		assert_int_equal(atrest_upload_create(&id, f->st, "cr", NULL), 0);
		upload_part(f->st, "cr", id, 1, p1, 5000);
		upload_part(f->st, "cr", id, 2, p2, 3000);
		upload_part(f->st, "cr", id, 3, "unlisted", 8);
		crash_left = k;
		crash_hooks(1);
		rc = atrest_upload_complete(f->st, "cr", id, nums, 2, NULL, NULL);
		if (crash_left >= 0)
			done_complete = 1;
		crash_left = 0;
		crash_hooks(0);
		(void)rc;
		readable_or_absent(f->st, "cr", all, 8000, NULL, 0);
		/* a later sweep settles it either way */
		atrest__clock_offset(86400 * k);
		assert_int_equal(atrest_upload_cleanup(&n, f->st, 3600), 0);
		readable_or_absent(f->st, "cr", all, 8000, NULL, 0);
		if (atrest_get(&(void *){NULL}, &n, f->st, "cr") == 0) {
			/* every part not named is gone, the named ones stay */
			assert_int_equal(upload_files(f), 3);
			crash_left = k;
			crash_hooks(1);
			(void)atrest_delete(f->st, "cr");
			if (crash_left >= 0)
				done_delete = 1;
			crash_left = 0;
			crash_hooks(0);
			readable_or_absent(f->st, "cr", all, 8000, NULL, 0);
		}
		atrest_error_clear();
		(void)atrest_delete(f->st, "cr");
		assert_int_equal(atrest_upload_cleanup(&n, f->st, 3600), 0);
		assert_int_equal(upload_files(f), 0);
		atrest_free(id);
	}
	assert_true(done_complete && done_delete);
	free(p1);
	free(p2);
}

/* The upload's parts are bound to the name: another name's upload id, or
 * a part copied from another upload, does not read. */
static void test_binding(void **state)
{
	fx *f = *state;
	size_t sizes[] = {100};
	char pa[PATH_MAX], pb[PATH_MAX];
	uint8_t *a, *b, *file;
	size_t len;
	char *ida, *idb;

	a = make_object(f->st, "A", sizes, 1, &ida);
	b = make_object(f->st, "B", sizes, 1, &idb);
	part_path(pa, f, ida, 1, "A");
	part_path(pb, f, idb, 1, "B");
	file = th_read_file(pa, &len);
	assert_int_equal(th_write_file(pb, file, len), 0);
	expect_integrity(f, "B", "part 1");
	free(file);
	free(a);
	free(b);
	atrest_free(ida);
	atrest_free(idb);
}

/* The vectors of docs/FORMAT.md section 9 (made by an independent
 * encoder, in Python, from the byte layout). */
static void test_vectors(void **state)
{
	static const char rec_hex[] = "415550520101809b2a69000000000700636b70742f3432";
	static const char list_hex[] =
		"414d505501203066316532643363346235613639373838373936613562346333"
		"643265316630020000000100000005000000000000004c040000000000000700"
		"0000000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d"
		"1e1f030000000000000000000000240400000000000008000000202122232425"
		"262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
	atrest__up_rec r = {ATREST__UP_OPEN, 1764400000, "ckpt/42"}, back;
	atrest__mpu_part parts[2] = {{1, 5, 1100, 7, {0}, 0}, {3, 0, 1060, 8, {0}, 0}};
	atrest__mpu m = {"0f1e2d3c4b5a69788796a5b4c3d2e1f0", 2, parts, 0, 0}, got;
	char pn[ATREST__PART_NAME_MAX];
	uint8_t buf[ATREST__UP_REC_MAX], *enc;
	size_t len, vlen;
	uint8_t *v;

	(void)state;
	for (int i = 0; i < 32; i++) {
		parts[0].commit[i] = (uint8_t)i;
		parts[1].commit[i] = (uint8_t)(32 + i);
	}
	v = th_unhex(rec_hex, &vlen);
	assert_int_equal(atrest__up_rec_encode(buf, sizeof(buf), &len, &r), 0);
	assert_int_equal(len, vlen);
	assert_memory_equal(buf, v, len);
	assert_int_equal(atrest__up_rec_parse(&back, v, vlen), 0);
	assert_string_equal(back.name, "ckpt/42");
	free(v);
	v = th_unhex(list_hex, &vlen);
	assert_int_equal(atrest__mpu_encode(&enc, &len, &m), 0);
	assert_int_equal(len, vlen);
	assert_memory_equal(enc, v, len);
	assert_int_equal(atrest__mpu_parse(&got, v, vlen), 0);
	assert_int_equal(got.size, 5);
	assert_int_equal(got.stored, 2160);
	assert_int_equal(got.parts[1].start, 5);
	atrest__mpu_free(&got);
	free(enc);
	free(v);
	assert_int_equal(atrest__upload_part_name(pn, sizeof(pn), m.id, 3, "ckpt/42"), 0);
	assert_string_equal(pn,
		".atrest/uploads/0f1e2d3c4b5a69788796a5b4c3d2e1f0/"
		"00003-dff049677ec8c16f");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test_setup_teardown(test_any_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reupload_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_if_absent_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_overwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reencrypt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reencrypt_part_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binding, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
