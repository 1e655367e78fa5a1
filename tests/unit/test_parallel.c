/*
 * Parallel sealing and opening: round trips across thread counts, ciphers
 * and segment edges, agreement with the sequential format code, failures
 * mid-pipeline, tampering, concurrent callers and bounded streaming memory.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "format.h"
#include "helpers.h"
#include "store/fs_int.h"
#include "store_int.h"

static uint8_t KEY[32];

static atrest_store *open_store(
	const char *dir, int cipher, uint32_t seg, unsigned threads)
{
	return th_store_with(dir, KEY, cipher, seg, threads);
}

static void check_get(atrest_store *st, const char *name, const uint8_t *want, size_t len)
{
	void *out;
	size_t n;

	assert_int_equal(atrest_get(&out, &n, st, name), 0);
	assert_int_equal(n, len);
	if (len)
		assert_memory_equal(out, want, len);
	atrest_free(out);
}

/* A range that starts mid-segment and crosses several. */
static void check_range(
	atrest_store *st, const char *name, const uint8_t *want, size_t len)
{
	size_t off = len / 3 + 1, cap = len / 2 + 7, got;
	uint8_t *buf = malloc(cap);

	assert_non_null(buf);
	if (off > len)
		off = len;
	assert_int_equal(atrest_get_range(st, name, off, buf, cap, &got), 0);
	assert_int_equal(got, len - off < cap ? len - off : cap);
	if (got)
		assert_memory_equal(buf, want + off, got);
	free(buf);
}

/* Sizes around segment (1024) and stage boundaries (1, 2, 4 … segments). */
static const size_t SIZES[] = {0, 1, 1023, 1024, 1025, 2048, 2049, 3071, 4096, 5121, 8192,
	9215, 16384, 16385, 40960, 40961, 1048576, 1048577, 3 * 1048576 + 5};

static void round_trips(unsigned threads, int cipher, const uint8_t *data)
{
	char dir[256];
	atrest_store *st;

	th_tmpdir(dir, sizeof(dir));
	st = open_store(dir, cipher, 1024, threads);
	for (size_t i = 0; i < sizeof(SIZES) / sizeof(SIZES[0]); i++) {
		assert_int_equal(atrest_put(st, "p/obj", data, SIZES[i], NULL), 0);
		check_get(st, "p/obj", data, SIZES[i]);
		check_range(st, "p/obj", data, SIZES[i]);
	}
	atrest_store_close(st);
	th_rmrf(dir);
}

static void test_round_trip_threads(void **state)
{
	size_t max = 3 * 1048576 + 5;
	uint8_t *data = malloc(max);
	static const unsigned threads[] = {1, 2, 4};

	(void)state;
	assert_non_null(data);
	th_fill(data, max, 11);
	for (int c = 1; c <= 3; c++)
		for (int t = 0; t < 3; t++)
			round_trips(threads[t], c, data);
	free(data);
}

/* Objects written with one thread count read with another. */
static void test_cross_thread_counts(void **state)
{
	size_t len = 700 * 1024 + 333;
	uint8_t *data = malloc(len);
	char dir[256];

	(void)state;
	assert_non_null(data);
	th_fill(data, len, 12);
	for (int c = 1; c <= 3; c++) {
		th_tmpdir(dir, sizeof(dir));
		atrest_store *one = open_store(dir, c, 1024, 1);
		atrest_store *four = open_store(dir, c, 1024, 4);
		assert_int_equal(atrest_put(four, "by4", data, len, NULL), 0);
		assert_int_equal(atrest_put(one, "by1", data, len, NULL), 0);
		check_get(one, "by4", data, len);
		check_get(four, "by1", data, len);
		atrest_store_close(one);
		atrest_store_close(four);
		th_rmrf(dir);
	}
	free(data);
}

/* The sequential in-memory opener of format.c reads what the pool sealed. */
static void open_with_format(atrest_store *st, const char *dir, const char *name,
	const uint8_t *want, size_t len)
{
	char path[512];
	size_t n, out_len;
	uint8_t dek[32], *file, *out;
	atrest__hdr h;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	file = th_read_file(path, &n);
	assert_non_null(file);
	assert_int_equal(atrest__hdr_parse(&h, file, n), 0);
	assert_int_equal(atrest__store_dek(st, h.dek_id, dek), 0);
	assert_int_equal(atrest__obj_open_buf(&out, &out_len, &h, file, n, dek), 0);
	assert_int_equal(out_len, len);
	assert_memory_equal(out, want, len);
	free(out);
	free(file);
}

/* format.c seals an object sequentially; the parallel reader opens it. */
static void seal_with_format(atrest_store *st, const char *dir, const char *name,
	const uint8_t *data, size_t len)
{
	char path[512];
	uint8_t dek[32], *obj;
	size_t obj_len;
	atrest__hdr h;
	int cipher;

	memset(&h, 0, sizeof(h));
	assert_int_equal(
		atrest__store_active_dek(st, &h.dek_id, dek, &cipher, &h.segment_size),
		0);
	h.form = ATREST__FORM_OBJECT;
	h.cipher = (uint8_t)cipher;
	memcpy(h.store_id, st->kr->store_id, ATREST__STORE_ID_LEN);
	strcpy(h.name, name);
	th_fill(h.salt, sizeof(h.salt), len);
	assert_int_equal(atrest__obj_seal_buf(&obj, &obj_len, &h, dek,
				 (const uint8_t *)"\0\0", 2, data, len),
		0);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(th_write_file(path, obj, obj_len), 0);
	free(obj);
}

static void test_agrees_with_format(void **state)
{
	static const size_t sizes[] = {0, 1024, 5000, 40960, 1048576 + 1};
	uint8_t *data = malloc(1048577);
	char dir[256];

	(void)state;
	assert_non_null(data);
	th_fill(data, 1048577, 13);
	for (int c = 1; c <= 3; c++) {
		th_tmpdir(dir, sizeof(dir));
		atrest_store *st = open_store(dir, c, 1024, 4);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			assert_int_equal(atrest_put(st, "new", data, sizes[i], NULL), 0);
			open_with_format(st, dir, "new", data, sizes[i]);
			seal_with_format(st, dir, "old", data, sizes[i]);
			check_get(st, "old", data, sizes[i]);
		}
		atrest_store_close(st);
		th_rmrf(dir);
	}
	free(data);
}

static void stream_odd(atrest_store *st, const uint8_t *data, size_t len)
{
	static const size_t chunks[] = {1, 7, 1000, 1023, 4097, 65537, 300000};
	atrest_writer *w;
	atrest_reader *r;
	uint8_t *back = malloc(len);
	size_t off = 0, got;

	assert_non_null(back);
	assert_int_equal(atrest_writer_open(&w, st, "s/odd", NULL), 0);
	for (size_t k = 0; off < len; k++) {
		size_t n = chunks[k % 7] < len - off ? chunks[k % 7] : len - off;
		assert_int_equal(atrest_writer_write(w, data + off, n), 0);
		off += n;
	}
	assert_int_equal(atrest_writer_commit(w), 0);
	assert_int_equal(atrest_reader_open(&r, st, "s/odd"), 0);
	assert_int_equal(atrest_reader_size(r), len);
	for (size_t k = 0, pos = 0; pos < len; k++) {
		size_t want = chunks[(k + 3) % 7];
		assert_int_equal(atrest_reader_read(r, back + pos,
					 want < len - pos ? want : len - pos, &got),
			0);
		assert_true(got > 0);
		pos += got;
	}
	assert_int_equal(atrest_reader_read(r, back, 1, &got), 0);
	assert_int_equal(got, 0);
	atrest_reader_close(r);
	assert_memory_equal(back, data, len);
	free(back);
}

static void test_stream_odd_chunks(void **state)
{
	size_t len = 2621440 + 4321;
	uint8_t *data = malloc(len);
	static const uint32_t segs[] = {1024, 65536};

	(void)state;
	assert_non_null(data);
	th_fill(data, len, 14);
	for (unsigned t = 1; t <= 4; t *= 2) {
		for (int s = 0; s < 2; s++) {
			char dir[256];
			th_tmpdir(dir, sizeof(dir));
			atrest_store *st = open_store(dir, 0, segs[s], t);
			stream_odd(st, data, len);
			atrest_store_close(st);
			th_rmrf(dir);
		}
	}
	free(data);
}

/* A disk that fills up after budget bytes. */
static atomic_long budget;

static ssize_t short_write(int fd, const void *buf, size_t len)
{
	if (atomic_fetch_sub(&budget, (long)len) < (long)len) {
		errno = ENOSPC;
		return -1;
	}
	return write(fd, buf, len);
}

/* Nothing but the handle's lock file is left under .atrest/tmp. */
static void assert_no_temp_files(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd),
		"test -z \"$(find %s/.atrest/tmp -type f ! -name '*.lock')\"", dir);
	assert_int_equal(system(cmd), 0);
}

static void failing_stream(
	atrest_store *st, const char *name, const uint8_t *data, size_t len)
{
	atrest_writer *w;
	int rc = atrest_writer_open(&w, st, name, NULL);

	if (rc < 0) /* the header did not fit */
		return;
	for (size_t off = 0; off < len && rc == 0; off += 100000)
		rc = atrest_writer_write(
			w, data + off, len - off < 100000 ? len - off : 100000);
	if (rc == 0)
		rc = atrest_writer_commit(w);
	else
		atrest_writer_abort(w);
	assert_true(rc < 0);
}

static void test_write_failure_mid_pipeline(void **state)
{
	size_t len = 6 * 1048576 + 99;
	uint8_t *data = malloc(len);
	static const long budgets[] = {0, 5000, 1048576, 3 * 1048576 + 17};
	char dir[256];
	void *out;
	size_t n;

	(void)state;
	assert_non_null(data);
	th_fill(data, len, 15);
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, 0, 4096, 4);
	assert_int_equal(atrest_put(st, "f/obj", data, 1000, NULL), 0);
	for (size_t i = 0; i < 4; i++) {
		atomic_store(&budget, budgets[i]);
		assert_int_equal(atrest__fs_set_syscall("write", (void *)short_write), 0);
		assert_int_equal(atrest_put(st, "f/obj", data, len, NULL), ATREST_ENOSPC);
		atomic_store(&budget, budgets[i]);
		failing_stream(st, "f/obj", data, len);
		atomic_store(&budget, budgets[i]);
		failing_stream(st, "f/new", data, len);
		atrest__fs_set_syscall("write", NULL);
		check_get(st, "f/obj", data, 1000); /* the old object, untouched */
		assert_int_equal(atrest_get(&out, &n, st, "f/new"), ATREST_ENOTFOUND);
		assert_no_temp_files(dir);
	}
	assert_int_equal(atrest_put(st, "f/obj", data, len, NULL), 0);
	check_get(st, "f/obj", data, len);
	atrest_store_close(st);
	th_rmrf(dir);
	free(data);
}

static void flip_byte(const char *dir, const char *name, size_t off)
{
	char path[512];
	size_t n;
	uint8_t *file;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	file = th_read_file(path, &n);
	assert_non_null(file);
	assert_true(off < n);
	file[off] ^= 0x20;
	assert_int_equal(th_write_file(path, file, n), 0);
	free(file);
}

static void tamper_one(int cipher, const uint8_t *data)
{
	char dir[256];
	uint8_t buf[4096];
	void *out = (void *)1;
	size_t n = 99, got, ct = atrest__cipher_ctlen(cipher, 1024);
	atrest_stat_info info = ATREST_STAT_INFO_INIT;

	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, cipher, 1024, 4);
	assert_int_equal(atrest_put(st, "t/obj", data, 40 * 1024, NULL), 0);
	assert_int_equal(atrest_stat(&info, st, "t/obj"), 0);
	/* A byte inside segment 20: past header and metadata, then 20 segments. */
	flip_byte(dir, "t/obj", (size_t)(info.stored_size - 40 * ct + 20 * ct + 100));
	atrest_stat_info_clear(&info);
	assert_int_equal(atrest_get(&out, &n, st, "t/obj"), ATREST_EINTEGRITY);
	assert_null(out);
	assert_int_equal(n, 0);
	assert_int_equal(atrest_get_range(st, "t/obj", 19 * 1024, buf, 3000, &got),
		ATREST_EINTEGRITY);
	assert_int_equal(atrest_get_range(st, "t/obj", 0, buf, 4096, &got), 0);
	assert_memory_equal(buf, data, 4096);
	atrest_store_close(st);
	th_rmrf(dir);
}

static void test_tamper_parallel_get(void **state)
{
	uint8_t *data = malloc(40 * 1024);

	(void)state;
	assert_non_null(data);
	th_fill(data, 40 * 1024, 16);
	for (int c = 1; c <= 3; c++)
		tamper_one(c, data);
	free(data);
}

typedef struct app {
	atrest_store *st;
	int id;
	int failures;
} app;

static void *app_main(void *arg)
{
	app *a = arg;
	size_t max = 300 * 1024;
	uint8_t *data = malloc(max);
	char name[32];

	snprintf(name, sizeof(name), "app/%d", a->id);
	for (int i = 0; i < 30 && data; i++) {
		size_t len = (size_t)(i * 10007 + a->id * 333) % max;
		void *out;
		size_t n;
		th_fill(data, len, (uint64_t)(a->id * 1000 + i));
		if (atrest_put(a->st, name, data, len, NULL) < 0 ||
			atrest_get(&out, &n, a->st, name) < 0) {
			a->failures++;
			continue;
		}
		if (n != len || (len && memcmp(out, data, len) != 0))
			a->failures++;
		atrest_free(out);
	}
	free(data);
	return NULL;
}

static void test_concurrent_callers(void **state)
{
	char dir[256];
	pthread_t t[4];
	app a[4];

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	atrest_store *st = open_store(dir, 0, 1024, 2);
	for (int i = 0; i < 4; i++) {
		a[i] = (app){st, i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, app_main, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
	atrest_store_close(st);
	th_rmrf(dir);
}

#define STREAM_BYTES (256ull << 20)
#define STREAM_CHUNK (1u << 20)

/* Every chunk is the same random block stamped with its index. */
static int stream_through(const char *dir)
{
	atrest_store *st = open_store(dir, 0, 0, 2);
	uint8_t *buf = malloc(STREAM_CHUNK), *back = malloc(STREAM_CHUNK);
	atrest_writer *w;
	atrest_reader *r;
	size_t got;
	int bad = 0;

	th_fill(buf, STREAM_CHUNK, 17);
	if (atrest_writer_open(&w, st, "big/stream", NULL) < 0)
		return 1;
	for (uint64_t i = 0; i < STREAM_BYTES / STREAM_CHUNK; i++) {
		memcpy(buf, &i, sizeof(i));
		if (atrest_writer_write(w, buf, STREAM_CHUNK) < 0)
			return 2;
	}
	if (atrest_writer_commit(w) < 0 || atrest_reader_open(&r, st, "big/stream") < 0)
		return 3;
	for (uint64_t i = 0; i < STREAM_BYTES / STREAM_CHUNK; i++) {
		memcpy(buf, &i, sizeof(i));
		if (atrest_reader_read(r, back, STREAM_CHUNK, &got) < 0 ||
			got != STREAM_CHUNK || memcmp(back, buf, STREAM_CHUNK) != 0)
			bad = 1;
	}
	atrest_reader_close(r);
	atrest_store_close(st);
	free(buf);
	free(back);
	return bad ? 4 : 0;
}

static void test_stream_memory_bounded(void **state)
{
	char dir[256];
	int status;
	pid_t pid;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rusage ru;
		int rc = stream_through(dir);
		getrusage(RUSAGE_SELF, &ru);
		if (rc == 0 && !SANITIZED && ru.ru_maxrss >= 64 * 1024)
			rc = 5;
		fprintf(stderr, "streamed 256 MiB: peak RSS %ld KiB\n", ru.ru_maxrss);
		_exit(rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	th_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First, while this process is small: its child inherits its RSS. */
		cmocka_unit_test(test_stream_memory_bounded),
		cmocka_unit_test(test_round_trip_threads),
		cmocka_unit_test(test_cross_thread_counts),
		cmocka_unit_test(test_agrees_with_format),
		cmocka_unit_test(test_stream_odd_chunks),
		cmocka_unit_test(test_write_failure_mid_pipeline),
		cmocka_unit_test(test_tamper_parallel_get),
		cmocka_unit_test(test_concurrent_callers),
	};

	th_fill(KEY, 32, 2024);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
