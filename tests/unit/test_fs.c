/*
 * Tests of the local directory backend (store/fs.c) beyond the backend
 * contract (test_backend.c), and of name checks (names.c): files and modes,
 * listing order, links never followed, private temp dirs and their
 * cleanup, read-only stores, injected faults, crashes by SIGKILL, threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend_suite.h"
#include "helpers.h"

#include "atrest/errors.h"
#include "atrest/store.h"
#include "atrest/sys/backend.h"
#include "names.h"
#include "store/fs_int.h"

struct fx {
	char dir[512]; /* short, so paths built from it fit in PATH_MAX */
	atrest_backend *b;
};

/* ---- helpers ---- */

static int put(atrest_backend *b, const char *key, const void *buf, size_t len,
	unsigned int flags)
{
	return bs_put(b, key, buf, len, flags, NULL);
}

static int put_str(atrest_backend *b, const char *key, const char *s)
{
	return put(b, key, s, strlen(s), 0);
}

/* The whole object, NUL-terminated, or NULL with *rc set. */
static char *get(atrest_backend *b, const char *key, size_t *len, int *rc)
{
	return bs_get(b, key, len, rc, NULL);
}

static void assert_content(atrest_backend *b, const char *key, const char *s)
{
	int rc;
	char *got = get(b, key, NULL, &rc);

	assert_int_equal(rc, 0);
	assert_string_equal(got, s);
	free(got);
}

static int path_exists(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

/* Files other than "lock" in all temp dirs of the store. */
static int count_temp_files(const char *dir)
{
	char tmp[PATH_MAX], sub[PATH_MAX * 2];
	struct dirent *de, *fe;
	DIR *d, *s;
	int n = 0;

	snprintf(tmp, sizeof(tmp), "%s/.atrest/tmp", dir);
	d = opendir(tmp);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", tmp, de->d_name);
		if ((s = opendir(sub)) == NULL)
			continue;
		while ((fe = readdir(s)) != NULL)
			if (fe->d_name[0] != '.' && strcmp(fe->d_name, "lock"))
				n++;
		closedir(s);
	}
	closedir(d);
	return n;
}

/* Entries of .atrest/tmp: temp dirs only, or with their lock files. */
static int count_tmp(const char *dir, int dirs_only)
{
	char tmp[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(tmp, sizeof(tmp), "%s/.atrest/tmp", dir);
	d = opendir(tmp);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.' && (!dirs_only || de->d_type == DT_DIR);
	closedir(d);
	return n;
}

static int count_temp_dirs(const char *dir)
{
	return count_tmp(dir, 1);
}

static int count_temp_entries(const char *dir)
{
	return count_tmp(dir, 0);
}

static const char *last_msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e && e->message ? e->message : "";
}

static atrest_backend *open_fs(const char *dir, int create)
{
	atrest_backend *b;

	assert_int_equal(atrest_backend_fs(&b, dir), 0);
	assert_int_equal(b->prepare(b, create), 0);
	return b;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	th_tmpdir(f->dir, sizeof(f->dir));
	f->b = open_fs(f->dir, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->b)
		f->b->free(f->b);
	th_rmrf(f->dir);
	free(f);
	return 0;
}

/* ---- basic operations ---- */

static void test_roundtrip(void **state)
{
	struct fx *f = *state;
	size_t len = 300000, got_len;
	uint8_t *buf = malloc(len);
	char *got;
	int rc;

	th_fill(buf, len, 1);
	assert_int_equal(put(f->b, "obj", buf, len, 0), 0);
	got = get(f->b, "obj", &got_len, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, buf, len);
	free(got);
	free(buf);
	/* The object is the plain file <root>/obj, mode 0600. */
	assert_true(path_exists(f->dir, "obj"));
	assert_int_equal(count_temp_files(f->dir), 0);
	assert_int_equal(put(f->b, "empty", "", 0, 0), 0);
	assert_content(f->b, "empty", "");
}

static void test_nested(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX];
	struct stat st;
	size_t len;
	uint8_t *raw;

	assert_int_equal(put_str(f->b, "job-42/chk-17/part-3", "deep"), 0);
	assert_content(f->b, "job-42/chk-17/part-3", "deep");
	snprintf(p, sizeof(p), "%s/job-42/chk-17", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(p, sizeof(p), "%s/job-42/chk-17/part-3", f->dir);
	raw = th_read_file(p, &len);
	assert_non_null(raw);
	assert_memory_equal(raw, "deep", 4);
	free(raw);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* A parent that is an object, and a key that is a directory. */
	assert_int_equal(put_str(f->b, "job-42/chk-17/part-3/x", "no"), ATREST_EINVAL);
	assert_int_equal(put_str(f->b, "job-42/chk-17", "no"), ATREST_EINVAL);
	assert_int_equal(count_temp_files(f->dir), 0);
}

static void test_read_missing(void **state)
{
	struct fx *f = *state;
	atrest_backend_reader *r = (void *)1;
	char p[PATH_MAX], t[PATH_MAX];

	assert_int_equal(f->b->open_read(f->b, &r, "nope"), ATREST_ENOTFOUND);
	assert_null(r);
	assert_int_equal(f->b->open_read(f->b, &r, "no/such/dir"), ATREST_ENOTFOUND);
	assert_int_equal(put_str(f->b, "d/x", "x"), 0);
	assert_int_equal(f->b->open_read(f->b, &r, "d"), ATREST_ENOTFOUND);
	assert_int_equal(f->b->open_read(f->b, &r, "d/x/y"), ATREST_ENOTFOUND);
	/* A symlink is never followed; a FIFO is not an object (no hang). */
	snprintf(p, sizeof(p), "%s/link", f->dir);
	snprintf(t, sizeof(t), "%s/d/x", f->dir);
	assert_int_equal(symlink(t, p), 0);
	assert_int_equal(f->b->open_read(f->b, &r, "link"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "'link' in store"));
	snprintf(p, sizeof(p), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(f->b->open_read(f->b, &r, "fifo"), ATREST_ENOTFOUND);
}

static void test_pread_edges(void **state)
{
	struct fx *f = *state;
	atrest_backend_reader *r;
	uint8_t data[1000], buf[2000];
	size_t got;

	th_fill(data, sizeof(data), 7);
	assert_int_equal(put(f->b, "r", data, sizeof(data), 0), 0);
	assert_int_equal(f->b->open_read(f->b, &r, "r"), 0);
	assert_int_equal(r->size, 1000);
	assert_true(r->mtime > 1600000000);
	assert_int_equal(r->pread(r, buf, 1000, 0, &got), 0);
	assert_int_equal(got, 1000);
	assert_memory_equal(buf, data, 1000);
	assert_int_equal(r->pread(r, buf, 20, 990, &got), 0);
	assert_int_equal(got, 10);
	assert_memory_equal(buf, data + 990, 10);
	assert_int_equal(r->pread(r, buf, 1, 999, &got), 0);
	assert_int_equal(got, 1);
	assert_int_equal(buf[0], data[999]);
	assert_int_equal(r->pread(r, buf, 10, 1000, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(r->pread(r, buf, 10, 5000, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(r->pread(r, buf, 0, 0, &got), 0);
	assert_int_equal(got, 0);
	assert_int_equal(r->pread(r, buf, 2000, 0, &got), 0);
	assert_int_equal(got, 1000);
	assert_int_equal(r->pread(r, buf, 10, UINT64_MAX - 5, &got), ATREST_EINVAL);
	r->close(r);
}

static void test_abort(void **state)
{
	struct fx *f = *state;
	atrest_backend_writer *w;

	assert_int_equal(f->b->open_write(f->b, &w, "a/b", 0, NULL), 0);
	assert_int_equal(w->write(w, "partial", 7), 0);
	assert_int_equal(count_temp_files(f->dir), 1);
	w->abort(w);
	assert_false(path_exists(f->dir, "a/b"));
	assert_false(path_exists(f->dir, "a"));
	assert_int_equal(count_temp_files(f->dir), 0);
	/* Nothing is visible before commit. */
	assert_int_equal(f->b->open_write(f->b, &w, "a", 0, NULL), 0);
	assert_int_equal(w->write(w, "x", 1), 0);
	assert_false(path_exists(f->dir, "a"));
	assert_int_equal(w->commit(w), 0);
	assert_content(f->b, "a", "x");
}

static void test_remove(void **state)
{
	struct fx *f = *state;

	assert_int_equal(put_str(f->b, "r/s/t", "1"), 0);
	assert_int_equal(put_str(f->b, "r/u/v", "2"), 0);
	assert_int_equal(f->b->remove(f->b, "r/s/t"), 0);
	assert_false(path_exists(f->dir, "r/s"));
	assert_true(path_exists(f->dir, "r/u/v"));
	assert_int_equal(f->b->remove(f->b, "r/s/t"), ATREST_ENOTFOUND);
	assert_int_equal(f->b->remove(f->b, "r/u"), ATREST_ENOTFOUND);
	assert_int_equal(f->b->remove(f->b, "r/u/v"), 0);
	assert_false(path_exists(f->dir, "r"));
	assert_true(path_exists(f->dir, ".atrest/tmp"));
	/* The store's own files: .atrest itself is never pruned. */
	assert_int_equal(put_str(f->b, ".atrest/keyring", "k"), 0);
	assert_int_equal(f->b->remove(f->b, ".atrest/keyring"), 0);
	assert_true(path_exists(f->dir, ".atrest"));
	assert_true(path_exists(f->dir, ""));
}

static void test_bad_keys(void **state)
{
	static const char *bad[] = {
		"",
		"/abs",
		"../x",
		"a/../b",
		"a/..",
		"..",
		".",
		"a/./b",
		"a//b",
		"a/",
		".atrest",
		".atrest/tmp",
		".atrest/tmp/x/y",
		".atrest/lock",
	};
	struct fx *f = *state;
	atrest_backend_writer *w;
	atrest_backend_reader *r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
			f->b->open_write(f->b, &w, bad[i], 0, NULL), ATREST_EINVAL);
		assert_int_equal(f->b->open_read(f->b, &r, bad[i]), ATREST_EINVAL);
		assert_int_equal(f->b->remove(f->b, bad[i]), ATREST_EINVAL);
	}
	assert_int_equal(f->b->open_write(f->b, &w, NULL, 0, NULL), ATREST_EINVAL);
	/* A condition on a version needs the version. */
	assert_int_equal(f->b->open_write(f->b, &w, "k", ATREST_BACKEND_IF_MATCH, NULL),
		ATREST_EINVAL);
	assert_int_equal(count_temp_files(f->dir), 0);
}

/* ---- listing ---- */

#define seen bs_seen
#define collect bs_collect
#define expect_list bs_expect_list

static const char *const list_keys[] = {
	".hidden",
	"B",
	"a!",
	"a.txt",
	"a/b",
	"a/c/d",
	"a/c0",
	"a0",
	"b/x",
	"z/y/x/w",
};
#define N_LIST_KEYS ((int)(sizeof(list_keys) / sizeof(list_keys[0])))

static void make_list_tree(struct fx *f)
{
	char p[PATH_MAX], t[PATH_MAX];

	/* Put in reverse so that order cannot come from creation. */
	for (int i = N_LIST_KEYS - 1; i >= 0; i--)
		assert_int_equal(put_str(f->b, list_keys[i], list_keys[i]), 0);
	assert_int_equal(put_str(f->b, ".atrest/keyring", ".atrest/keyring"), 0);
	snprintf(p, sizeof(p), "%s/lnk", f->dir);
	snprintf(t, sizeof(t), "%s/a", f->dir);
	assert_int_equal(symlink(t, p), 0);
	snprintf(p, sizeof(p), "%s/dirlink", f->dir);
	snprintf(t, sizeof(t), "%s/z", f->dir);
	assert_int_equal(symlink(t, p), 0);
	snprintf(p, sizeof(p), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0600), 0);
}

static void test_list_order(void **state)
{
	static const char *const a[] = {"a!", "a.txt", "a/b", "a/c/d", "a/c0", "a0"};
	static const char *const a_slash[] = {"a/b", "a/c/d", "a/c0"};
	static const char *const a_c[] = {"a/c/d", "a/c0"};
	static const char *const z[] = {"z/y/x/w"};
	static const char *const internal[] = {".atrest/keyring"};
	struct fx *f = *state;
	struct seen s = {.stop_after = 3};

	make_list_tree(f);
	expect_list(f->b, "", list_keys, N_LIST_KEYS);
	expect_list(f->b, NULL, list_keys, N_LIST_KEYS);
	expect_list(f->b, "a", a, 6);
	expect_list(f->b, "a/", a_slash, 3);
	expect_list(f->b, "a/c", a_c, 2);
	expect_list(f->b, "z/y/x/", z, 1);
	expect_list(f->b, "z/y/x/w", z, 1);
	expect_list(f->b, "z/y/x/w/", NULL, 0);
	expect_list(f->b, "zz", NULL, 0);
	/* The store's own files only when asked for, never tmp or lock. */
	expect_list(f->b, ".atrest/", internal, 1);
	expect_list(f->b, ".atrest", NULL, 0);
	/* A non-zero return of the callback stops the walk and is returned. */
	assert_int_equal(f->b->list(f->b, "", collect, &s), 7);
	assert_int_equal(s.n, 3);
}

static atomic_int opendir_calls;
static char resolved_log[32][PATH_MAX];
static atomic_int resolved;

static DIR *counting_fdopendir(int fd)
{
	atomic_fetch_add(&opendir_calls, 1);
	return fdopendir(fd);
}

static long logging_openat2(int dirfd, const char *path, struct open_how *how, size_t n)
{
	int i = atomic_fetch_add(&resolved, 1);

	if (i < 32)
		snprintf(resolved_log[i], PATH_MAX, "%s", path);
	return syscall(SYS_openat2, dirfd, path, how, n);
}

static void test_list_prunes(void **state)
{
	static const char *const a_c[] = {"a/c/d", "a/c0"};
	struct fx *f = *state;

	make_list_tree(f);
	atomic_store(&opendir_calls, 0);
	atomic_store(&resolved, 0);
	assert_int_equal(
		atrest__fs_set_syscall("fdopendir", (void *)counting_fdopendir), 0);
	assert_int_equal(atrest__fs_set_syscall("openat2", (void *)logging_openat2), 0);
	expect_list(f->b, "a/c", a_c, 2);
	atrest__fs_set_syscall("fdopendir", NULL);
	atrest__fs_set_syscall("openat2", NULL);
	/* The root, a/ and a/c/: never b/, z/ or .atrest/. */
	assert_int_equal(atomic_load(&opendir_calls), 3);
	assert_int_equal(atomic_load(&resolved), 2);
	assert_string_equal(resolved_log[0], "a");
	assert_string_equal(resolved_log[1], "a/c");
	assert_int_equal(atrest__fs_set_syscall("nosuch", NULL), ATREST_EINVAL);
}

static int strcmp_p(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct order {
	char **want;
	int n, i, bad;
};

static int check_order(const char *key, uint64_t size, int64_t mtime, void *p)
{
	struct order *o = p;

	(void)size;
	(void)mtime;
	if (o->i >= o->n || strcmp(key, o->want[o->i]) != 0)
		o->bad++;
	o->i++;
	return 0;
}

static int known(char **keys, int n, const char *k)
{
	for (int i = 0; i < n; i++)
		if (strcmp(keys[i], k) == 0)
			return 1;
	return 0;
}

/* Random names over an alphabet rich in bytes around "/": order = strcmp. */
static void test_list_random(void **state)
{
	static const char alpha[] = "-./0aAz~\x80\xff";
	struct fx *f = *state;
	struct order o = {.n = 0};
	char **keys = calloc(400, sizeof(*keys));
	uint64_t x = 12345;

	for (int i = 0; i < 400; i++) {
		char k[16];
		int len;
		do {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			len = 1 + (int)((x >> 33) % 8);
			for (int j = 0; j < len; j++)
				k[j] = alpha[(x >> (8 + 3 * j)) % 10];
			k[len] = '\0';
		} while (atrest_name_check(k) != 0 || known(keys, o.n, k) ||
			put_str(f->b, k, k) != 0); /* "x" vs "x/y": retry */
		keys[o.n++] = strdup(k);
	}
	qsort(keys, (size_t)o.n, sizeof(*keys), strcmp_p);
	o.want = keys;
	assert_int_equal(f->b->list(f->b, "", check_order, &o), 0);
	assert_int_equal(o.bad, 0);
	assert_int_equal(o.i, o.n);
	for (int i = 0; i < o.n; i++)
		free(keys[i]);
	free(keys);
}

/* ---- prepare, temp dirs of other handles ---- */

static void test_prepare(void **state)
{
	struct fx *f = *state;
	atrest_backend *b;
	atrest_backend_writer *w;
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s/new/store", f->dir);
	assert_int_equal(atrest_backend_fs(&b, p), 0);
	assert_string_equal(b->name, "fs");
	assert_int_equal(b->version, ATREST_BACKEND_VERSION);
	assert_int_equal(b->prepare(b, 0), ATREST_ENOTFOUND);
	assert_false(path_exists(f->dir, "new"));
	b->free(b);
	/* An existing directory: readers create nothing, a writer its tmp. */
	snprintf(p, sizeof(p), "%s/plain", f->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(atrest_backend_fs(&b, p), 0);
	assert_int_equal(b->prepare(b, 0), 0);
	assert_false(path_exists(f->dir, "plain/.atrest"));
	assert_int_equal(b->list(b, "", NULL, NULL), 0);
	assert_false(path_exists(f->dir, "plain/.atrest"));
	assert_int_equal(b->open_write(b, &w, "x", 0, NULL), 0);
	assert_true(path_exists(f->dir, "plain/.atrest/tmp"));
	w->abort(w);
	/* prepare(1) is harmless on a store. */
	assert_int_equal(b->prepare(b, 1), 0);
	assert_int_equal(b->prepare(b, 1), 0);
	assert_int_equal(count_temp_dirs(p), 1);
	assert_int_equal(put_str(b, "x", "x"), 0);
	b->free(b);
	/* Only the store's own directory is made (0700; trailing slashes are
	 * fine): a missing parent is a typo, refused with nothing made. */
	snprintf(p, sizeof(p), "%s/n1/n2/n3//", f->dir);
	assert_int_equal(atrest_backend_fs(&b, p), 0);
	assert_int_equal(b->prepare(b, 1), ATREST_ENOTFOUND);
	assert_non_null(strstr(atrest_error_last()->message, "parent"));
	b->free(b);
	assert_false(path_exists(f->dir, "n1"));
	snprintf(p, sizeof(p), "%s/n1//", f->dir);
	assert_int_equal(atrest_backend_fs(&b, p), 0);
	assert_int_equal(b->prepare(b, 1), 0);
	snprintf(p, sizeof(p), "%s/n1/.atrest/tmp", f->dir);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	b->free(b);
	/* A file is not a store. */
	snprintf(p, sizeof(p), "%s/file", f->dir);
	assert_int_equal(th_write_file(p, "x", 1), 0);
	assert_int_equal(atrest_backend_fs(&b, p), 0);
	assert_int_equal(b->prepare(b, 1), ATREST_EINVAL);
	b->free(b);
	assert_int_equal(atrest_backend_fs(&b, ""), ATREST_EINVAL);
}

/* A temp dir "name" with a leftover file, and optionally its lock file
 * (not locked: its owner is gone). */
static void make_temp_dir(const char *dir, const char *name, int lock)
{
	char p[PATH_MAX * 2], q[PATH_MAX * 3];

	snprintf(p, sizeof(p), "%s/.atrest/tmp/%s", dir, name);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(q, sizeof(q), "%s/w3", p);
	assert_int_equal(th_write_file(q, "leftover", 8), 0);
	if (lock) {
		snprintf(q, sizeof(q), "%s.lock", p);
		assert_int_equal(th_write_file(q, "", 0), 0);
	}
}

static void test_stale_cleaned(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX * 2];
	atrest_backend *b;

	/* Unlocked lock file: its owner died, whatever its age. */
	make_temp_dir(f->dir, "00000000deadbeef", 1);
	/* A dir without a lock file: its lock is made first, so dead too. */
	make_temp_dir(f->dir, "00000000000000a1", 0);
	/* A lock file alone: killed between the lock and the dir. */
	snprintf(p, sizeof(p), "%s/.atrest/tmp/00000000000000a2.lock", f->dir);
	assert_int_equal(th_write_file(p, "", 0), 0);
	assert_int_equal(count_temp_dirs(f->dir), 3);
	/* A reader cleans nothing (it may not be allowed to); a writer does. */
	b = open_fs(f->dir, 0);
	assert_int_equal(count_temp_dirs(f->dir), 3);
	b->free(b);
	b = open_fs(f->dir, 1);
	assert_false(path_exists(f->dir, ".atrest/tmp/00000000deadbeef"));
	assert_false(path_exists(f->dir, ".atrest/tmp/00000000deadbeef.lock"));
	assert_false(path_exists(f->dir, ".atrest/tmp/00000000000000a1"));
	assert_false(path_exists(f->dir, ".atrest/tmp/00000000000000a2.lock"));
	/* The fixture's handle and b are alive: a dir and a lock each. */
	assert_int_equal(count_temp_dirs(f->dir), 2);
	assert_int_equal(count_temp_entries(f->dir), 4);
	b->free(b);
	assert_int_equal(count_temp_entries(f->dir), 2);
}

static void test_live_not_cleaned(void **state)
{
	struct fx *f = *state;
	atrest_backend *b2, *b3;

	b2 = open_fs(f->dir, 1);
	b3 = open_fs(f->dir, 1);
	assert_int_equal(count_temp_dirs(f->dir), 3);
	/* Every handle still writes through its own temp dir. */
	assert_int_equal(put_str(f->b, "k1", "1"), 0);
	assert_int_equal(put_str(b2, "k2", "2"), 0);
	assert_int_equal(put_str(b3, "k3", "3"), 0);
	assert_content(b2, "k1", "1");
	b2->free(b2);
	assert_int_equal(count_temp_dirs(f->dir), 2);
	b3->free(b3);
	assert_int_equal(count_temp_dirs(f->dir), 1);
	assert_int_equal(put_str(f->b, "k4", "4"), 0);
}

/* ---- links are never followed ---- */

/* A directory outside the store holding files "keep" and "y". */
static void make_victim(char *dir, size_t cap)
{
	char p[PATH_MAX];

	th_tmpdir(dir, cap);
	snprintf(p, sizeof(p), "%s/keep", dir);
	assert_int_equal(th_write_file(p, "precious", 8), 0);
	snprintf(p, sizeof(p), "%s/y", dir);
	assert_int_equal(th_write_file(p, "outside", 7), 0);
}

static void assert_victim_intact(const char *v)
{
	assert_true(path_exists(v, "keep"));
	assert_true(path_exists(v, "y"));
	assert_false(path_exists(v, "x"));
}

static void plant(const char *dir, const char *rel, const char *target)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	assert_int_equal(symlink(target, p), 0);
}

/*
 * Links planted in .atrest/tmp, or .atrest/tmp or .atrest being a link:
 * the cleanup of stale temp files never deletes anything outside.
 */
static void test_links_in_tmp(void **state)
{
	struct fx *f = *state;
	char v[256], s2[PATH_MAX], p[PATH_MAX + 16];
	atrest_backend *b;
	atrest_backend_reader *r;

	make_victim(v, sizeof(v));
	plant(f->dir, ".atrest/tmp/00000000deadbeef", v);
	snprintf(p, sizeof(p), "%s/.atrest/tmp/00000000deadbeef.lock", f->dir);
	assert_int_equal(th_write_file(p, "", 0), 0);
	plant(f->dir, ".atrest/tmp/00000000000000a1", v);
	snprintf(p, sizeof(p), "%s/keep", v);
	plant(f->dir, ".atrest/tmp/00000000000000a2.lock", p);
	b = open_fs(f->dir, 1); /* a writer: it cleans */
	assert_victim_intact(v);
	assert_false(path_exists(f->dir, ".atrest/tmp/00000000deadbeef"));
	assert_false(path_exists(f->dir, ".atrest/tmp/00000000000000a1"));
	assert_false(path_exists(f->dir, ".atrest/tmp/00000000000000a2.lock"));
	b->free(b);
	/* .atrest/tmp, then .atrest, a link: refused, nothing deleted. */
	snprintf(s2, sizeof(s2), "%s/s2", f->dir);
	assert_int_equal(mkdir(s2, 0700), 0);
	snprintf(p, sizeof(p), "%s/.atrest", s2);
	assert_int_equal(mkdir(p, 0700), 0);
	plant(s2, ".atrest/tmp", v);
	assert_int_equal(atrest_backend_fs(&b, s2), 0);
	assert_int_equal(b->prepare(b, 1), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "not a directory"));
	b->free(b);
	assert_victim_intact(v);
	th_rmrf(p);
	plant(s2, ".atrest", v);
	assert_int_equal(atrest_backend_fs(&b, s2), 0);
	assert_int_equal(b->prepare(b, 0), 0); /* a reader of a directory... */
	assert_int_equal(b->open_read(b, &r, ".atrest/keep"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "'.atrest' in store"));
	assert_int_equal(b->prepare(b, 1), ATREST_ERROR); /* ...never a writer */
	b->free(b);
	assert_victim_intact(v);
	th_rmrf(v);
}

/*
 * A link to a directory outside, on the way to an object: put, rm, get and
 * prune refuse it by name; a listing never enters it.
 */
static void check_links_in_objects(struct fx *f)
{
	char v[256], p[PATH_MAX];
	atrest_backend_reader *r;
	struct seen s = {.n = 0};

	make_victim(v, sizeof(v));
	plant(f->dir, "a", v);
	assert_int_equal(put_str(f->b, "a/x", "a/x"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "'a' in store"));
	assert_int_equal(f->b->remove(f->b, "a/y"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "'a' in store"));
	assert_int_equal(f->b->open_read(f->b, &r, "a/y"), ATREST_ERROR);
	assert_int_equal(f->b->open_read(f->b, &r, "a/keep"), ATREST_ERROR);
	/* Deeper: d/e is the link. */
	snprintf(p, sizeof(p), "%s/d", f->dir);
	assert_int_equal(mkdir(p, 0700), 0);
	plant(f->dir, "d/e", v);
	assert_int_equal(put_str(f->b, "d/e/x", "d/e/x"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "'d/e' in store"));
	assert_int_equal(f->b->remove(f->b, "d/e/y"), ATREST_ERROR);
	/* The object itself a link: never read; removing drops the link. */
	snprintf(p, sizeof(p), "%s/y", v);
	plant(f->dir, "l", p);
	assert_int_equal(f->b->open_read(f->b, &r, "l"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "'l' in store"));
	assert_int_equal(f->b->remove(f->b, "l"), 0);
	assert_false(path_exists(f->dir, "l"));
	/* A put next to the links works, and its prune stops at them. */
	assert_int_equal(put_str(f->b, "d/ok", "d/ok"), 0);
	assert_int_equal(f->b->remove(f->b, "d/ok"), 0);
	assert_true(path_exists(f->dir, "d/e"));
	assert_int_equal(f->b->list(f->b, "", collect, &s), 0);
	assert_int_equal(s.n, 0);
	assert_victim_intact(v);
	snprintf(p, sizeof(p), "%s/a", f->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/d", f->dir);
	th_rmrf(p);
	th_rmrf(v);
}

static void test_links_in_objects(void **state)
{
	check_links_in_objects(*state);
}

static long no_openat2(int d, const char *p, struct open_how *how, size_t n)
{
	(void)d;
	(void)p;
	(void)how;
	(void)n;
	errno = ENOSYS;
	return -1;
}

/* Kernels without openat2: the same rules, one component at a time. */
static void test_without_openat2(void **state)
{
	struct fx *f = *state;

	assert_int_equal(atrest__fs_set_syscall("openat2", (void *)no_openat2), 0);
	check_links_in_objects(f);
	assert_int_equal(put_str(f->b, "n/e/s/t", "deep"), 0);
	assert_content(f->b, "n/e/s/t", "deep");
	assert_int_equal(f->b->remove(f->b, "n/e/s/t"), 0);
	assert_false(path_exists(f->dir, "n"));
	atrest__fs_set_syscall("openat2", NULL);
}

/* .atrest/tmp of another user, or writable by others: writers refuse. */
static void test_private_dirs(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX];
	atrest_backend *b;
	atrest_backend_reader *r;

	assert_int_equal(put_str(f->b, "obj", "obj"), 0);
	snprintf(p, sizeof(p), "%s/.atrest/tmp", f->dir);
	assert_int_equal(chmod(p, 0777), 0);
	assert_int_equal(atrest_backend_fs(&b, f->dir), 0);
	assert_int_equal(b->prepare(b, 1), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "writable by others"));
	/* Reading needs none of it. */
	assert_int_equal(b->open_read(b, &r, "obj"), 0);
	r->close(r);
	b->free(b);
	assert_int_equal(chmod(p, 0700), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(p, 65534, 65534), 0);
		assert_int_equal(atrest_backend_fs(&b, f->dir), 0);
		assert_int_equal(b->prepare(b, 1), ATREST_ERROR);
		assert_non_null(strstr(last_msg(), "owned by another user"));
		b->free(b);
		assert_int_equal(chown(p, 0, 0), 0);
	} else {
		print_message("not root: the other-owner case needs chown\n");
	}
	b = open_fs(f->dir, 1);
	b->free(b);
}

/* A FIFO as a temp lock or as the store's lock hangs nothing. */
static void test_fifos(void **state)
{
	struct fx *f = *state;
	char p[PATH_MAX];
	atrest_backend *b;

	alarm(120); /* a blocking open would hang: fail instead */
	snprintf(p, sizeof(p), "%s/.atrest/tmp/0123456789abcdef.lock", f->dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	b = open_fs(f->dir, 1);
	assert_false(path_exists(f->dir, ".atrest/tmp/0123456789abcdef.lock"));
	b->free(b);
	snprintf(p, sizeof(p), "%s/.atrest/lock", f->dir);
	unlink(p);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(put_str(f->b, "k", "v"), ATREST_ERROR);
	assert_non_null(strstr(last_msg(), "not a regular file"));
	alarm(0);
}

/* In a child that can no longer write the store: 0, or what failed. */
static int reader_child(const char *dir)
{
	atrest_backend *b;
	atrest_backend_reader *r;
	atrest_backend_writer *w;
	struct seen s = {.n = 0};
	char buf[16];
	size_t got = 0;

	if (geteuid() == 0 &&
		(setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0 ||
			geteuid() == 0))
		return 10;
	if (atrest_backend_fs(&b, dir) != 0 || b->prepare(b, 0) != 0)
		return 11;
	if (b->open_read(b, &r, "ro/obj") != 0)
		return 12;
	if (r->pread(r, buf, sizeof(buf), 0, &got) != 0 || got != 6 ||
		memcmp(buf, "ro/obj", 6) != 0)
		return 13;
	r->close(r);
	if (b->list(b, "", collect, &s) != 0 || s.n != 1)
		return 14;
	if (b->open_write(b, &w, "ro/new", 0, NULL) != ATREST_ERROR)
		return 15;
	b->free(b);
	return 0;
}

/*
 * Readers of a store they may not write need no temp dir and no lock:
 * the read runs as another user (nobody), or in a read-only tree.
 */
static void test_readonly_reader(void **state)
{
	struct fx *f = *state;
	char cmd[PATH_MAX + 64];
	int before, status;
	pid_t pid;

	assert_int_equal(put_str(f->b, "ro/obj", "ro/obj"), 0);
	snprintf(cmd, sizeof(cmd), "chmod -R go+rX %s && chmod -R %s %s", f->dir,
		geteuid() == 0 ? "go-w" : "a-w", f->dir);
	assert_int_equal(system(cmd), 0);
	before = count_temp_entries(f->dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(reader_child(f->dir));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(count_temp_entries(f->dir), before);
	snprintf(cmd, sizeof(cmd), "chmod -R u+w %s", f->dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- names ---- */

static void test_names(void **state)
{
	static const char *good[] = {
		"a",
		"a/b/c",
		"job-42/chk-17/part-3",
		".hidden",
		"..x",
		"x..",
		"a/.b",
		".atrest2",
		"x/.atrest",
		"a b",
		"~",
		"\xc3\xa9t\xc3\xa9",
	};
	static const char *bad[] = {
		"",
		"/a",
		"a/",
		"a//b",
		".",
		"..",
		"a/./b",
		"a/../b",
		"a/..",
		"./a",
		".atrest",
		".atrest/keyring",
		"a\nb",
		"a\tb",
		"a\x7f",
		"\x01",
		"/",
	};
	char big[ATREST_NAME_MAX + 2], comp[300];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(atrest_name_check(good[i]), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(atrest_name_check(bad[i]), ATREST_EINVAL);
		assert_non_null(strstr(last_msg(), "invalid name"));
		for (const char *m = last_msg(); *m; m++)
			assert_true((unsigned char)*m >= 0x20);
	}
	assert_int_equal(atrest_name_check(NULL), ATREST_EINVAL);
	assert_int_equal(atrest_name_check("a/b\n"), ATREST_EINVAL);
	assert_non_null(strstr(last_msg(), "\"a/b?\""));
	memset(big, 'a', sizeof(big));
	for (int i = 100; i < ATREST_NAME_MAX; i += 100)
		big[i] = '/';
	big[ATREST_NAME_MAX] = '\0';
	assert_int_equal(atrest_name_check(big), 0);
	big[ATREST_NAME_MAX] = 'a';
	big[ATREST_NAME_MAX + 1] = '\0';
	assert_int_equal(atrest_name_check(big), ATREST_EINVAL);
	memset(comp, 'c', sizeof(comp));
	comp[255] = '\0';
	assert_int_equal(atrest_name_check(comp), 0);
	comp[255] = 'c';
	comp[256] = '\0';
	assert_int_equal(atrest_name_check(comp), ATREST_EINVAL);
}

static void test_prefixes(void **state)
{
	static const char *good[] = {
		"",
		"a",
		"a/",
		"a/b",
		"job-4",
		".",
		"..",
		".atr",
		".atrest",
		"a/.",
		"a/..",
	};
	static const char *bad[] = {
		"/",
		"/a",
		"a//",
		"a//b",
		"./",
		"../",
		"a/../",
		".atrest/",
		".atrest/x",
		"a\n",
	};

	(void)state;
	assert_int_equal(atrest__name_check_prefix(NULL), 0);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(atrest__name_check_prefix(good[i]), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(atrest__name_check_prefix(bad[i]), ATREST_EINVAL);
		assert_non_null(strstr(last_msg(), "invalid prefix"));
	}
}

/* ---- injected faults ---- */

static int fault_left; /* fail the fault_left-th call from now (once) */
static int fault_errno;
static int fault_hit;

static int fault_now(void)
{
	if (fault_left <= 0 || --fault_left != 0)
		return 0;
	fault_hit = 1;
	errno = fault_errno;
	return 1;
}

static int f_openat(int d, const char *p, int fl, ...)
{
	mode_t m = 0;
	va_list ap;

	if (fl & O_CREAT) {
		va_start(ap, fl);
		m = va_arg(ap, mode_t);
		va_end(ap);
	}
	return fault_now() ? -1 : openat(d, p, fl, m);
}

static ssize_t f_write(int fd, const void *b, size_t n)
{
	return fault_now() ? -1 : write(fd, b, n);
}

static int f_fsync(int fd)
{
	return fault_now() ? -1 : fsync(fd);
}

/* Like Linux, a failing close still closes. */
static int f_close(int fd)
{
	int rc = close(fd);

	return fault_now() ? -1 : rc;
}

static int f_mkdirat(int d, const char *p, mode_t m)
{
	return fault_now() ? -1 : mkdirat(d, p, m);
}

static int f_renameat(int d1, const char *a, int d2, const char *b)
{
	return fault_now() ? -1 : renameat(d1, a, d2, b);
}

static int f_linkat(int d1, const char *a, int d2, const char *b, int fl)
{
	return fault_now() ? -1 : linkat(d1, a, d2, b, fl);
}

static long f_openat2(int d, const char *p, struct open_how *how, size_t n)
{
	return fault_now() ? -1 : syscall(SYS_openat2, d, p, how, n);
}

static int f_fstat(int fd, struct stat *st)
{
	return fault_now() ? -1 : fstat(fd, st);
}

static const struct {
	const char *name;
	void *fn;
} put_fakes[] = {
	{"openat", (void *)f_openat},
	{"write", (void *)f_write},
	{"fsync", (void *)f_fsync},
	{"close", (void *)f_close},
	{"mkdirat", (void *)f_mkdirat},
	{"renameat", (void *)f_renameat},
	{"linkat", (void *)f_linkat},
	{"fstat", (void *)f_fstat},
};

enum { OVERWRITE, NESTED, EXCL_NESTED };

static void reset_scenario(struct fx *f, int scen)
{
	char p[PATH_MAX];

	if (scen == OVERWRITE) {
		assert_int_equal(put_str(f->b, "f/old", "OLD"), 0);
		return;
	}
	snprintf(p, sizeof(p), "%s/g", f->dir);
	th_rmrf(p);
}

/* One failed put: a clear error, no temp file, old or absent content. */
static void check_failed_put(struct fx *f, int scen, const char *name, int rc, int err)
{
	const char *key = scen == OVERWRITE ? "f/old" : "g/h/i";
	char *got;
	int grc;

	assert_int_equal(count_temp_files(f->dir), 0);
	got = get(f->b, key, NULL, &grc);
	if (rc == 0) { /* only closing a directory's fd is not checked */
		assert_string_equal(name, "close");
		assert_string_equal(got, "NEW");
		free(got);
		return;
	}
	assert_non_null(strstr(last_msg(), key));
	if (err == ENOSPC || err == EDQUOT)
		assert_int_equal(rc, ATREST_ENOSPC);
	if (scen == OVERWRITE)
		assert_non_null(got);
	if (got && strcmp(got, "NEW") == 0) /* fsync of the dir after rename */
		assert_true(!strcmp(name, "fsync"));
	else if (got)
		assert_string_equal(got, "OLD");
	else
		assert_int_equal(grc, ATREST_ENOTFOUND);
	free(got);
}

/* Fail the 1st, 2nd, ... call of name in a put until one put is clean. */
static int fault_every_call(struct fx *f, int scen, int fake, int err)
{
	const char *key = scen == OVERWRITE ? "f/old" : "g/h/i";
	unsigned int flags = scen == EXCL_NESTED ? ATREST_BACKEND_IF_ABSENT : 0;
	const char *name = put_fakes[fake].name;
	int hits = 0, rc;

	for (int k = 1; k < 50; k++) {
		reset_scenario(f, scen);
		fault_left = k;
		fault_hit = 0;
		fault_errno = err;
		assert_int_equal(atrest__fs_set_syscall(name, put_fakes[fake].fn), 0);
		rc = put(f->b, key, "NEW", 3, flags);
		atrest__fs_set_syscall(name, NULL);
		fault_left = 0;
		if (!fault_hit) {
			assert_int_equal(rc, 0);
			assert_content(f->b, key, "NEW");
			return hits;
		}
		hits++;
		check_failed_put(f, scen, name, rc, err);
	}
	fail_msg("%s kept failing", name);
	return hits;
}

static void test_faults_put(void **state)
{
	struct fx *f = *state;
	int n = (int)(sizeof(put_fakes) / sizeof(put_fakes[0]));

	for (int scen = OVERWRITE; scen <= EXCL_NESTED; scen++) {
		for (int i = 0; i < n; i++) {
			const char *name = put_fakes[i].name;
			int hits = fault_every_call(f, scen, i, EIO);
			/* linkat is the IF_ABSENT put's renameat; an existing
			 * parent is opened, not made. */
			int excl = scen == EXCL_NESTED;
			int used = strcmp(name, excl ? "renameat" : "linkat") != 0 &&
				!(scen == OVERWRITE && !strcmp(name, "mkdirat"));
			if ((hits > 0) != used)
				fail_msg("%s in scenario %d: %d hits", name, scen, hits);
		}
	}
}

static void test_faults_enospc(void **state)
{
	static const int errs[] = {ENOSPC, EDQUOT};
	struct fx *f = *state;

	for (int i = 0; i < 2; i++) {
		for (int fake = 0; fake < 5; fake++) {
			if (strcmp(put_fakes[fake].name, "close") == 0)
				continue;
			fault_every_call(f, NESTED, fake, errs[i]);
		}
		fault_left = 1;
		fault_errno = errs[i];
		atrest__fs_set_syscall("write", (void *)f_write);
		assert_int_equal(put_str(f->b, "full", "data"), ATREST_ENOSPC);
		atrest__fs_set_syscall("write", NULL);
		assert_non_null(strstr(last_msg(), "disk or quota full"));
		assert_false(path_exists(f->dir, "full"));
		assert_int_equal(count_temp_files(f->dir), 0);
	}
}

static ssize_t f_pread(int fd, void *b, size_t n, off_t off)
{
	return fault_now() ? -1 : pread(fd, b, n, off);
}

static struct dirent *f_readdir(DIR *d)
{
	return fault_now() ? NULL : readdir(d);
}

static ssize_t f_getrandom(void *b, size_t n, unsigned int fl)
{
	(void)b;
	(void)n;
	(void)fl;
	return fault_now() ? -1 : (ssize_t)n;
}

static int f_flock(int fd, int op)
{
	return fault_now() ? -1 : flock(fd, op);
}

/* Faults outside put: reads, listing, setting up a handle. */
static void test_faults_other(void **state)
{
	struct fx *f = *state;
	atrest_backend_reader *r;
	atrest_backend *b;
	struct seen s = {.n = 0};
	char buf[8];
	size_t got;

	assert_int_equal(put_str(f->b, "p", "pp"), 0);
	assert_int_equal(f->b->open_read(f->b, &r, "p"), 0);
	fault_left = 1;
	fault_errno = EIO;
	atrest__fs_set_syscall("pread", (void *)f_pread);
	assert_int_equal(r->pread(r, buf, 2, 0, &got), ATREST_ERROR);
	atrest__fs_set_syscall("pread", NULL);
	r->close(r);
	fault_left = 2; /* the root's readdir, after one entry */
	atrest__fs_set_syscall("readdir", (void *)f_readdir);
	assert_int_equal(f->b->list(f->b, "", collect, &s), ATREST_ERROR);
	atrest__fs_set_syscall("readdir", NULL);
	fault_left = 1;
	atrest__fs_set_syscall("getrandom", (void *)f_getrandom);
	assert_int_equal(atrest_backend_fs(&b, f->dir), 0);
	assert_int_equal(b->prepare(b, 1), ATREST_ERROR);
	atrest__fs_set_syscall("getrandom", NULL);
	fault_left = 1;
	atrest__fs_set_syscall("flock", (void *)f_flock);
	assert_int_equal(b->prepare(b, 1), ATREST_ERROR);
	atrest__fs_set_syscall("flock", NULL);
	assert_int_equal(count_temp_dirs(f->dir), 1);
	assert_int_equal(b->prepare(b, 1), 0);
	b->free(b);
	/* Resolving a path: an error, never a path followed elsewhere. */
	fault_left = 1;
	atrest__fs_set_syscall("openat2", (void *)f_openat2);
	assert_int_equal(f->b->open_read(f->b, &r, "p"), ATREST_ERROR);
	atrest__fs_set_syscall("openat2", NULL);
}

/* ---- crashes: SIGKILL a writer at random instants ---- */

#define CRASH_OBJS 20
#define CRASH_HDR 32
#define CRASH_BODY_MAX 65536

static uint64_t fnv64(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* A self-identifying version: magic, object, version, length, checksum. */
static size_t version_make(uint8_t *buf, uint32_t obj, uint64_t ver)
{
	uint64_t body = 1 + (ver * 7919 + obj * 104729) % CRASH_BODY_MAX;
	uint64_t sum;

	th_fill(buf + CRASH_HDR, (size_t)body, ver * 1000 + obj);
	sum = fnv64(buf + CRASH_HDR, (size_t)body);
	memcpy(buf, "ATRC", 4);
	memcpy(buf + 4, &obj, 4);
	memcpy(buf + 8, &ver, 8);
	memcpy(buf + 16, &body, 8);
	memcpy(buf + 24, &sum, 8);
	return CRASH_HDR + (size_t)body;
}

static int version_ok(const uint8_t *buf, size_t len, uint32_t obj)
{
	uint64_t body, sum;
	uint32_t o;

	if (len < CRASH_HDR || memcmp(buf, "ATRC", 4) != 0)
		return 0;
	memcpy(&o, buf + 4, 4);
	memcpy(&body, buf + 16, 8);
	memcpy(&sum, buf + 24, 8);
	return o == obj && body == len - CRASH_HDR &&
		sum == fnv64(buf + CRASH_HDR, (size_t)body);
}

static void crash_key(char *k, size_t cap, int obj)
{
	snprintf(k, cap, "crash/d%d/o%02d", obj % 4, obj);
}

/* Rewrites every object, forever; says so on ready after its first put. */
static void crash_child(const char *dir, uint64_t base, int ready)
{
	uint8_t *buf = malloc(CRASH_HDR + CRASH_BODY_MAX);
	atrest_backend *b;
	char k[64];

	if (!buf || atrest_backend_fs(&b, dir) != 0 || b->prepare(b, 0) != 0)
		_exit(2);
	for (uint64_t v = base;; v++) {
		for (int i = 0; i < CRASH_OBJS; i++) {
			crash_key(k, sizeof(k), i);
			if (put(b, k, buf, version_make(buf, (uint32_t)i, v), 0) != 0)
				_exit(3);
			if (ready >= 0) {
				if (write(ready, "r", 1) != 1)
					_exit(4);
				close(ready);
				ready = -1;
			}
		}
	}
}

/* Block until the child committed its first put (or died): 0 or -1. */
static int wait_ready(int fd)
{
	char c;
	ssize_t n;

	while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	return n == 1 ? 0 : -1;
}

/* Every object is one whole version; returns how many were rewritten. */
static int crash_check_all(atrest_backend *b)
{
	char k[64];
	uint8_t *got;
	uint64_t ver;
	size_t len;
	int rc, newer = 0;

	for (int i = 0; i < CRASH_OBJS; i++) {
		crash_key(k, sizeof(k), i);
		got = (uint8_t *)get(b, k, &len, &rc);
		assert_int_equal(rc, 0);
		assert_true(version_ok(got, len, (uint32_t)i));
		memcpy(&ver, got + 8, 8);
		newer += ver != 0;
		free(got);
	}
	return newer;
}

/* Temp dirs other than those still being born ("<hex>.new"). */
static void test_crash(void **state)
{
	struct fx *f = *state;
	uint8_t *buf = malloc(CRASH_HDR + CRASH_BODY_MAX);
	unsigned int seed = (unsigned int)time(NULL);
	char k[64];
	int newer = 0, mid_put = 0;

	print_message("crash seed %u\n", seed);
	for (int i = 0; i < CRASH_OBJS; i++) {
		crash_key(k, sizeof(k), i);
		assert_int_equal(
			put(f->b, k, buf, version_make(buf, (uint32_t)i, 0), 0), 0);
	}
	for (int it = 0; it < 25; it++) {
		int status, ready[2];
		pid_t pid;
		atrest_backend *b2;

		assert_int_equal(pipe(ready), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(ready[0]);
			crash_child(f->dir, (uint64_t)(it + 1) << 32, ready[1]);
		}
		close(ready[1]);
		/* The kill lands after a committed put, however slow the machine:
		 * the check below then sees at least one rewritten object. */
		assert_int_equal(wait_ready(ready[0]), 0);
		close(ready[0]);
		usleep(2000 + (unsigned int)(rand_r(&seed) % 40000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		newer += crash_check_all(f->b);
		mid_put += count_temp_files(f->dir) > 0;
		b2 = open_fs(f->dir, 1);
		/* The dead child's temp dir and lock went: ours and b2's remain. */
		assert_int_equal(count_temp_entries(f->dir), 4);
		b2->free(b2);
	}
	print_message(
		"%d kills left a temp file; %d objects rewritten\n", mid_put, newer);
	assert_true(newer > 0);
	free(buf);
}

/* ---- threads sharing one handle ---- */

#define THREADS 4
#define THREAD_ITERS 60

struct thr {
	atrest_backend *b;
	int id;
	atomic_int *fails;
};

static void thr_fail(struct thr *t, const char *what, int rc)
{
	fprintf(stderr, "thread %d: %s: %d %s\n", t->id, what, rc, last_msg());
	atomic_fetch_add(t->fails, 1);
}

static void thr_step(struct thr *t, int j, uint8_t *buf)
{
	uint32_t own = (uint32_t)(t->id * 10 + j % 5);
	uint64_t ver = (uint64_t)t->id << 32 | (uint64_t)j;
	size_t n = version_make(buf, own, ver), len;
	char k[64];
	uint8_t *got;
	int rc;

	snprintf(k, sizeof(k), "t%d/k%u", t->id, own);
	if ((rc = put(t->b, k, buf, n, 0)) != 0)
		return thr_fail(t, "put own", rc);
	got = (uint8_t *)get(t->b, k, &len, &rc);
	if (!got || len != n || memcmp(got, buf, n) != 0)
		thr_fail(t, "read own", rc);
	free(got);
	snprintf(k, sizeof(k), "shared/k%d", j % 3);
	if ((rc = put(t->b, k, buf, version_make(buf, 900 + j % 3, ver), 0)))
		return thr_fail(t, "put shared", rc);
	snprintf(k, sizeof(k), "shared/k%d", (j + 1) % 3);
	got = (uint8_t *)get(t->b, k, &len, &rc);
	if (rc != ATREST_ENOTFOUND &&
		(!got || !version_ok(got, len, 900 + (uint32_t)((j + 1) % 3))))
		thr_fail(t, "read shared", rc);
	free(got);
	/* Siblings' deletes prune race/d while this put needs it. */
	snprintf(k, sizeof(k), "race/d/%d", t->id);
	if ((rc = put_str(t->b, k, "r")) != 0)
		return thr_fail(t, "put race", rc);
	if ((rc = t->b->remove(t->b, k)) != 0)
		thr_fail(t, "remove race", rc);
}

static void *thr_main(void *p)
{
	struct thr *t = p;
	uint8_t *buf = malloc(CRASH_HDR + CRASH_BODY_MAX);

	for (int j = 0; buf && j < THREAD_ITERS; j++)
		thr_step(t, j, buf);
	free(buf);
	return NULL;
}

static void test_threads(void **state)
{
	struct fx *f = *state;
	pthread_t th[THREADS];
	struct thr t[THREADS];
	atomic_int fails = 0;

	for (int i = 0; i < THREADS; i++) {
		t[i] = (struct thr){f->b, i, &fails};
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&fails), 0);
	assert_int_equal(count_temp_files(f->dir), 0);
	assert_false(path_exists(f->dir, "race"));
}

/* ---- scale ---- */

struct many {
	char prev[64];
	long n;
	int bad;
};

static int count_sorted(const char *key, uint64_t size, int64_t mtime, void *p)
{
	struct many *m = p;

	(void)size;
	(void)mtime;
	if (m->n > 0 && strcmp(m->prev, key) >= 0)
		m->bad++;
	snprintf(m->prev, sizeof(m->prev), "%s", key);
	m->n++;
	return 0;
}

static void test_list_many(void **state)
{
	struct fx *f = *state;
	struct many m = {.n = 0};
	struct timespec t0, t1;
	char p[PATH_MAX];

	/*
	 * 100,000 files, made directly: puts would fsync for minutes, and
	 * even plain creates can be slow on a busy disk, so each dir holds
	 * one file and 999 hard links to it.
	 */
	for (int d = 0; d < 100; d++) {
		char first[PATH_MAX];
		snprintf(p, sizeof(p), "%s/d%03d", f->dir, 99 - d);
		assert_int_equal(mkdir(p, 0700), 0);
		snprintf(first, sizeof(first), "%s/d%03d/f999", f->dir, 99 - d);
		assert_int_equal(th_write_file(first, "", 0), 0);
		for (int i = 1; i < 1000; i++) {
			snprintf(p, sizeof(p), "%s/d%03d/f%d", f->dir, 99 - d, 999 - i);
			assert_int_equal(link(first, p), 0);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(f->b->list(f->b, "", count_sorted, &m), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(m.n, 100000);
	assert_int_equal(m.bad, 0);
	print_message("listed 100000 keys in %.2f s\n",
		(double)(t1.tv_sec - t0.tv_sec) +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	m.n = 0;
	assert_int_equal(f->b->list(f->b, "d042/f99", count_sorted, &m), 0);
	assert_int_equal(m.n, 11); /* f99, f990..f999 */
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_roundtrip),
		T(test_nested),
		T(test_read_missing),
		T(test_pread_edges),
		T(test_abort),
		T(test_remove),
		T(test_bad_keys),
		T(test_list_order),
		T(test_list_prunes),
		T(test_list_random),
		T(test_prepare),
		T(test_stale_cleaned),
		T(test_live_not_cleaned),
		T(test_links_in_tmp),
		T(test_links_in_objects),
		T(test_without_openat2),
		T(test_private_dirs),
		T(test_fifos),
		T(test_readonly_reader),
		T(test_names),
		T(test_prefixes),
		T(test_faults_put),
		T(test_faults_enospc),
		T(test_faults_other),
		T(test_crash),
		T(test_threads),
		T(test_list_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
