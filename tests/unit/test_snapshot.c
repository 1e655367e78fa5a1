/*
 * Snapshots through the library: trees round trip exactly, the writer API
 * (buffers, streaming files from several threads, shared files, hard
 * links, missing directories), incremental snapshots writing only what
 * changed, every tampering case detected and named, sequence numbers and
 * the newest snapshot, the gc protocol (leases, markers, stale writers,
 * grace) and gc racing writers and removals, a full disk, a restore that
 * never leaves anything at its target unless it verified, tenants, and
 * data-key usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "helpers.h"
#include "buf.h"
#include "manifest.h"
#include "obs.h"
#include "snap_int.h"
#include "store/fs_int.h"

/* The test's paths are short: none of its formatted paths is cut. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static uint8_t KEY[32];
static char T[PATH_MAX];

static const char *msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e && e->message ? e->message : "";
}

static void path_of(char *out, const char *a, const char *b)
{
	snprintf(out, PATH_MAX, "%s/%s", a, b);
}

static atrest_store *store(const char *name, unsigned threads)
{
	char p[PATH_MAX];

	path_of(p, T, name);
	return th_store_with(p, KEY, 0, 0, threads);
}

static void put_file(const char *root, const char *rel, const void *buf, size_t len)
{
	char p[PATH_MAX];

	path_of(p, root, rel);
	assert_int_equal(th_write_file(p, buf, len), 0);
}

static void mkdir_in(const char *root, const char *rel, mode_t mode)
{
	char p[PATH_MAX];

	path_of(p, root, rel);
	assert_int_equal(mkdir(p, mode), 0);
}

/* A tree with every kind of entry, large and small files, odd modes. */
static void make_tree(const char *root)
{
	static uint8_t big[3 << 20];
	char p[PATH_MAX], q[PATH_MAX];
	struct timespec ts[2] = {{1600000000, 123456789}, {1600000000, 123456789}};

	assert_int_equal(mkdir(root, 0750), 0);
	mkdir_in(root, "base", 0700);
	mkdir_in(root, "base/1", 0700);
	mkdir_in(root, "empty", 0755);
	mkdir_in(root, "ro", 0555 | 0200);
	th_fill(big, sizeof(big), 1);
	put_file(root, "base/1/big", big, sizeof(big));
	for (int i = 0; i < 40; i++) {
		char rel[64];
		snprintf(rel, sizeof(rel), "base/1/f%02d", i);
		put_file(root, rel, big + i * 1000, (size_t)(100 + i * 50));
	}
	put_file(root, "PG_VERSION", "15\n", 3);
	put_file(root, "zero", "", 0);
	put_file(root, "ro/file", "read only\n", 10);
	path_of(p, root, "ro/file");
	chmod(p, 0400);
	path_of(p, root, "ro");
	chmod(p, 0555);
	path_of(p, root, "setuid");
	assert_int_equal(th_write_file(p, "#!/bin/sh\n", 10), 0);
	chmod(p, 04755);
	path_of(p, root, "link");
	assert_int_equal(symlink("../outside/target", p), 0);
	path_of(q, root, "PG_VERSION");
	path_of(p, root, "hard");
	assert_int_equal(link(q, p), 0);
	path_of(p, root, "fifo");
	assert_int_equal(mkfifo(p, 0640), 0);
	path_of(p, root, "base/1/f07");
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* ---- comparing trees ---- */

static const char *cmp_other;
static size_t cmp_root_len, cmp_count;

static int cmp_one(const char *p, const struct stat *a, int flag, struct FTW *f)
{
	char q[PATH_MAX];
	struct stat b;

	(void)flag;
	(void)f;
	snprintf(q, sizeof(q), "%s%s", cmp_other, p + cmp_root_len);
	assert_int_equal(lstat(q, &b), 0);
	assert_int_equal(a->st_mode, b.st_mode);
	if (!S_ISLNK(a->st_mode)) {
		assert_true(a->st_mtim.tv_sec == b.st_mtim.tv_sec);
		assert_true(a->st_mtim.tv_nsec == b.st_mtim.tv_nsec);
	}
	assert_int_equal(a->st_uid, b.st_uid);
	if (S_ISREG(a->st_mode)) {
		size_t la, lb;
		uint8_t *x = th_read_file(p, &la), *y = th_read_file(q, &lb);
		assert_int_equal(la, lb);
		assert_int_equal(a->st_nlink, b.st_nlink);
		if (la)
			assert_memory_equal(x, y, la);
		free(x);
		free(y);
	} else if (S_ISLNK(a->st_mode)) {
		char la[256] = "", lb[256] = "";
		assert_true(readlink(p, la, sizeof(la)) > 0);
		assert_true(readlink(q, lb, sizeof(lb)) > 0);
		assert_string_equal(la, lb);
	}
	cmp_count++;
	return 0;
}

static size_t count_tree(const char *root)
{
	cmp_other = root;
	cmp_root_len = strlen(root);
	cmp_count = 0;
	return (size_t)nftw(root, cmp_one, 16, FTW_PHYS) == 0 ? cmp_count : 0;
}

/* Same entries, types, modes, owners, mtimes, contents and links. */
static void same_tree(const char *a, const char *b)
{
	size_t n;

	cmp_other = b;
	cmp_root_len = strlen(a);
	cmp_count = 0;
	assert_int_equal(nftw(a, cmp_one, 16, FTW_PHYS), 0);
	n = cmp_count;
	assert_int_equal(count_tree(b), n);
}

static int exists(const char *root, const char *rel)
{
	char p[PATH_MAX];
	struct stat sb;

	path_of(p, root, rel);
	return lstat(p, &sb) == 0;
}

static size_t nfiles;

static int count_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)p;
	(void)sb;
	(void)f;
	nfiles += flag == FTW_F;
	return 0;
}

/* Files under a store's snapshot area sub ("d", "l", "g", "m"). */
static size_t count_area(const char *st, const char *sub)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s/%s/.atrest/snap/%s", T, st, sub);
	nfiles = 0;
	nftw(p, count_one, 16, FTW_PHYS);
	return nfiles;
}

/* ---- helpers over the API ---- */

static int put_tree(atrest_snap_stats *st_out, atrest_store *st, const char *name,
	const char *dir, const char *parent, unsigned flags)
{
	atrest_snap_options o = ATREST_SNAP_OPTIONS_INIT;
	atrest_snap_tree_options to = ATREST_SNAP_TREE_OPTIONS_INIT;
	atrest_snap *s;
	int rc;

	o.parent = parent;
	o.flags = parent ? 0 : ATREST_SNAP_AUTO_PARENT;
	to.flags = flags;
	rc = atrest_snap_begin(&s, st, name, &o);
	if (rc < 0)
		return rc;
	rc = atrest_snap_add_tree(st_out, s, dir, &to, NULL, NULL);
	if (rc < 0) {
		atrest_snap_abort(s);
		return rc;
	}
	return atrest_snap_commit(NULL, s);
}

static int restore(atrest_store *st, const char *name, const char *dir, uint64_t min_seq)
{
	atrest_snapshot_open_options oo = ATREST_SNAPSHOT_OPEN_OPTIONS_INIT;
	atrest_snapshot *s;
	int rc;

	oo.min_seq = min_seq;
	rc = atrest_snapshot_open(&s, st, name, &oo);
	if (rc < 0)
		return rc;
	rc = atrest_snapshot_restore(NULL, s, dir, NULL, NULL, NULL);
	atrest_snapshot_close(s);
	return rc;
}

static int verify(atrest_store *st, const char *name)
{
	atrest_snapshot *s;
	int rc = atrest_snapshot_open(&s, st, name, NULL);

	if (rc < 0)
		return rc;
	rc = atrest_snapshot_verify(NULL, s, NULL, NULL);
	atrest_snapshot_close(s);
	return rc;
}

static int setup(void **state)
{
	(void)state;
	th_tmpdir(T, sizeof(T));
	th_fill(KEY, sizeof(KEY), 99);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_rmrf(T);
	return 0;
}

/* ---- round trips ---- */

static void test_tree_round_trip(void **state)
{
	char src[PATH_MAX], out[PATH_MAX];
	atrest_store *st = store("st", 0);
	atrest_snap_stats s;
	atrest_snapshot_info info = ATREST_SNAPSHOT_INFO_INIT;
	atrest_snap_entry e = ATREST_SNAP_ENTRY_INIT;
	atrest_snapshot *snap;
	size_t i;

	(void)state;
	path_of(src, T, "src");
	path_of(out, T, "out");
	make_tree(src);
	assert_int_equal(put_tree(&s, st, "t/1", src, NULL, 0), 0);
	assert_int_equal(s.files, 45);
	assert_int_equal(s.hardlinks, 1);
	assert_int_equal(s.symlinks, 1);
	assert_int_equal(s.specials, 1);
	assert_int_equal(s.dirs, 5);
	assert_int_equal(s.shared_files, 0);
	assert_true(s.objects >= 2); /* the large file alone, the small packed */
	assert_true(s.objects < 10);
	assert_int_equal(restore(st, "t/1", out, 0), 0);
	same_tree(src, out);

	assert_int_equal(atrest_snapshot_open(&snap, st, "t/1", NULL), 0);
	assert_int_equal(atrest_snapshot_info_get(&info, snap), 0);
	assert_string_equal(info.name, "t/1");
	assert_string_equal(info.parent, "");
	assert_int_equal(info.seq, 1);
	assert_int_equal(info.files, 45);
	assert_int_equal(atrest_snapshot_find(&i, snap, "hard"), 0);
	assert_int_equal(atrest_snapshot_entry(&e, snap, i), 0);
	assert_int_equal(e.type, ATREST_SNAP_HARDLINK);
	assert_string_equal(e.target, "PG_VERSION");
	assert_int_equal(atrest_snapshot_find(&i, snap, "link"), 0);
	assert_int_equal(atrest_snapshot_entry(&e, snap, i), 0);
	assert_string_equal(e.target, "../outside/target");
	assert_int_equal(atrest_snapshot_find(&i, snap, "base/1/f07"), 0);
	assert_int_equal(atrest_snapshot_entry(&e, snap, i), 0);
	assert_true(e.mtime_ns == 1600000000123456789LL);
	assert_int_equal(atrest_snapshot_find(&i, snap, "nothing"), ATREST_ENOTFOUND);
	assert_int_equal(atrest_snapshot_entry(&e, snap, 0), 0);
	assert_string_equal(e.path, "");
	assert_int_equal(e.type, ATREST_SNAP_DIR);
	assert_int_equal(e.mode, 0750);
	atrest_snapshot_close(snap);
	assert_int_equal(verify(st, "t/1"), 0);
	/* The target now exists: refused, untouched. */
	assert_int_equal(restore(st, "t/1", out, 0), ATREST_EEXISTS);
	assert_int_equal(restore(st, "t/none", out, 0), ATREST_ENOTFOUND);
	atrest_store_close(st);
}

/* One file's reader: bytes, hard links, empty files, errors. */
static void test_entry_reader(void **state)
{
	char src[PATH_MAX];
	atrest_store *st = store("st", 1);
	atrest_snapshot *snap;
	atrest_snap_reader *r;
	uint8_t buf[4096], want[150];
	size_t i, got, total = 0;

	(void)state;
	path_of(src, T, "src");
	make_tree(src);
	assert_int_equal(put_tree(NULL, st, "t", src, NULL, 0), 0);
	assert_int_equal(atrest_snapshot_open(&snap, st, "t", NULL), 0);
	assert_int_equal(atrest_snapshot_find(&i, snap, "base/1/f01"), 0);
	assert_int_equal(atrest_snapshot_entry_open(&r, snap, i), 0);
	while (atrest_snap_reader_read(r, buf + total, 7, &got) == 0 && got)
		total += got;
	atrest_snap_reader_close(r);
	th_fill(want, sizeof(want), 0);
	{
		static uint8_t big[3 << 20];
		th_fill(big, sizeof(big), 1);
		assert_int_equal(total, 150);
		assert_memory_equal(buf, big + 1000, 150);
	}
	assert_int_equal(atrest_snapshot_find(&i, snap, "hard"), 0);
	assert_int_equal(atrest_snapshot_entry_open(&r, snap, i), 0);
	assert_int_equal(atrest_snap_reader_read(r, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "15\n", 3);
	assert_int_equal(atrest_snap_reader_read(r, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 0);
	atrest_snap_reader_close(r);
	assert_int_equal(atrest_snapshot_find(&i, snap, "zero"), 0);
	assert_int_equal(atrest_snapshot_entry_open(&r, snap, i), 0);
	assert_int_equal(atrest_snap_reader_read(r, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 0);
	atrest_snap_reader_close(r);
	assert_int_equal(atrest_snapshot_find(&i, snap, "base"), 0);
	assert_int_equal(atrest_snapshot_entry_open(&r, snap, i), ATREST_EINVAL);
	atrest_snapshot_close(snap);
	atrest_store_close(st);
}

/* ---- the writer API ---- */

typedef struct wjob {
	atrest_snap *s;
	int idx;
} wjob;

static void *stream_files(void *p)
{
	wjob *j = p;
	atrest_snap_entry e = ATREST_SNAP_ENTRY_INIT;
	static uint8_t chunk[100000];
	char path[64];

	for (int k = 0; k < 4; k++) {
		atrest_snap_file *f;
		snprintf(path, sizeof(path), "sst/%d-%d.sst", j->idx, k);
		e.path = path;
		e.type = ATREST_SNAP_FILE;
		e.mode = 0644;
		e.mtime_ns = 1000;
		assert_int_equal(atrest_snap_add_file(&f, j->s, &e), 0);
		for (int w = 0; w < 3; w++)
			assert_int_equal(
				atrest_snap_file_write(f, chunk, sizeof(chunk)), 0);
		assert_int_equal(atrest_snap_file_commit(f), 0);
	}
	return NULL;
}

static void add_simple(atrest_snap *s, const char *path, int type, const char *target)
{
	atrest_snap_entry e = ATREST_SNAP_ENTRY_INIT;

	e.path = path;
	e.type = type;
	e.mode = type == ATREST_SNAP_DIR ? 0755 : 0644;
	e.uid = (uint32_t)getuid();
	e.gid = (uint32_t)getgid();
	e.mtime_ns = 1700000000000000001LL;
	e.target = target;
	assert_int_equal(atrest_snap_add(s, &e), 0);
}

static int add_buf(atrest_snap *s, const char *path, const void *buf, size_t len)
{
	atrest_snap_entry e = ATREST_SNAP_ENTRY_INIT;
	atrest_snap_xattr x = {"user.k", "v", 1};

	e.path = path;
	e.type = ATREST_SNAP_FILE;
	e.mode = 0600;
	e.uid = (uint32_t)getuid();
	e.gid = (uint32_t)getgid();
	e.mtime_ns = 1700000000000000002LL;
	e.xattrs = &x;
	e.xattr_count = 1;
	return atrest_snap_add_buffer(s, &e, buf, len);
}

static void test_writer_api(void **state)
{
	static uint8_t large[2 << 20];
	atrest_store *st = store("st", 0);
	atrest_snap_entry e = ATREST_SNAP_ENTRY_INIT;
	pthread_t th[2];
	wjob jobs[2];
	atrest_snapshot *snap;
	atrest_snap *s, *s2;
	uint64_t seq = 0;
	size_t i;
	char out[PATH_MAX], p[PATH_MAX];

	(void)state;
	assert_int_equal(atrest_snap_begin(&s, st, "api", NULL), 0);
	assert_null(atrest_snap_parent(s));
	for (int k = 0; k < 2; k++) {
		jobs[k] = (wjob){s, k};
		assert_int_equal(pthread_create(&th[k], NULL, stream_files, &jobs[k]), 0);
	}
	assert_int_equal(add_buf(s, "meta/CURRENT", "MANIFEST-000007\n", 16), 0);
	assert_int_equal(add_buf(s, "meta/empty", "", 0), 0);
	th_fill(large, sizeof(large), 5);
	assert_int_equal(add_buf(s, "meta/large", large, sizeof(large)), 0);
	add_simple(s, "meta", ATREST_SNAP_DIR, NULL);
	add_simple(s, "meta/CURRENT.lnk", ATREST_SNAP_SYMLINK, "CURRENT");
	add_simple(s, "meta/LATEST", ATREST_SNAP_HARDLINK, "meta/CURRENT");
	/* A hard link to a later path, a file by add(), a bad path: refused. */
	e.path = "../x";
	e.type = ATREST_SNAP_DIR;
	assert_int_equal(atrest_snap_add(s, &e), ATREST_EINVAL);
	e.path = "f";
	e.type = ATREST_SNAP_FILE;
	assert_int_equal(atrest_snap_add(s, &e), ATREST_EINVAL);
	e.type = 42;
	assert_int_equal(atrest_snap_add(s, &e), ATREST_EINVAL);
	for (int k = 0; k < 2; k++)
		pthread_join(th[k], NULL);
	/* A second writer of the same name: the first to commit wins. */
	assert_int_equal(atrest_snap_begin(&s2, st, "api", NULL), 0);
	assert_int_equal(add_buf(s2, "x", "y", 1), 0);
	if (atrest_snap_commit(&seq, s) != 0)
		fail_msg("commit: %s", msg());
	assert_int_equal(seq, 1);
	assert_int_equal(atrest_snap_commit(&seq, s2), ATREST_EEXISTS);
	assert_int_equal(atrest_snap_begin(&s2, st, "api", NULL), ATREST_EEXISTS);
	assert_int_equal(count_area("st", "l"), 0);

	assert_int_equal(atrest_snapshot_open(&snap, st, "api", NULL), 0);
	assert_int_equal(atrest_snapshot_find(&i, snap, "sst"), 0); /* added at commit */
	assert_int_equal(atrest_snapshot_entry(&e, snap, i), 0);
	assert_int_equal(e.type, ATREST_SNAP_DIR);
	assert_int_equal(e.mode, 0700);
	assert_int_equal(atrest_snapshot_find(&i, snap, "sst/1-3.sst"), 0);
	assert_int_equal(atrest_snapshot_entry(&e, snap, i), 0);
	assert_int_equal(e.size, 300000);
	assert_int_equal(atrest_snapshot_find(&i, snap, "meta/CURRENT"), 0);
	assert_int_equal(atrest_snapshot_entry(&e, snap, i), 0);
	assert_int_equal(e.xattr_count, 1);
	assert_string_equal(e.xattrs[0].name, "user.k");
	assert_int_equal(atrest_snapshot_verify(NULL, snap, NULL, NULL), 0);
	atrest_snapshot_close(snap);
	path_of(out, T, "api-out");
	assert_int_equal(restore(st, "api", out, 0), 0);
	path_of(p, out, "meta/large");
	{
		size_t n;
		uint8_t *b = th_read_file(p, &n);
		assert_int_equal(n, sizeof(large));
		assert_memory_equal(b, large, n);
		free(b);
	}
	assert_true(exists(out, "meta/LATEST"));
	assert_true(exists(out, "meta/CURRENT.lnk"));

	/* A duplicate path, a hard link forward: commit refused, nothing left. */
	assert_int_equal(atrest_snap_begin(&s, st, "dup", NULL), 0);
	assert_int_equal(add_buf(s, "a", "1", 1), 0);
	assert_int_equal(add_buf(s, "a", "2", 1), 0);
	assert_int_equal(atrest_snap_commit(NULL, s), ATREST_EINVAL);
	assert_non_null(strstr(msg(), "'a' was added twice"));
	assert_int_equal(atrest_snap_begin(&s, st, "fwd", NULL), 0);
	add_simple(s, "a", ATREST_SNAP_HARDLINK, "b");
	assert_int_equal(add_buf(s, "b", "2", 1), 0);
	assert_int_equal(atrest_snap_commit(NULL, s), ATREST_EINVAL);
	assert_int_equal(atrest_snapshot_open(&snap, st, "dup", NULL), ATREST_ENOTFOUND);
	/* Abort: no manifest, no lease, no objects of its own. */
	assert_int_equal(atrest_snap_begin(&s, st, "aborted", NULL), 0);
	assert_int_equal(add_buf(s, "big", large, sizeof(large)), 0);
	atrest_snap_abort(s);
	assert_int_equal(count_area("st", "l"), 0);
	assert_int_equal(count_area("st", "m"), 1);
	assert_int_equal(
		atrest_snapshot_open(&snap, st, "aborted", NULL), ATREST_ENOTFOUND);
	{
		atrest_snap_stats gs;
		atrest_gc_options go = ATREST_GC_OPTIONS_INIT;
		go.grace = 0;
		assert_int_equal(atrest_snapshot_gc(&gs, st, &go), 0);
		assert_int_equal(gs.objects, 0); /* nothing was left behind */
	}
	atrest_store_close(st);
}

/* ---- incremental snapshots ---- */

static void touch(const char *root, const char *rel, long sec)
{
	char p[PATH_MAX];
	struct timespec ts[2] = {{sec, 0}, {sec, 0}};

	path_of(p, root, rel);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* Files old enough to be trusted by mtime (not racy with the snapshot). */
static void age_tree(const char *root)
{
	char rel[64];

	for (int i = 0; i < 40; i++) {
		snprintf(rel, sizeof(rel), "base/1/f%02d", i);
		touch(root, rel, 1500000000 + i);
	}
	touch(root, "base/1/big", 1500000000);
	touch(root, "PG_VERSION", 1500000000);
	touch(root, "setuid", 1500000000);
}

static void test_incremental(void **state)
{
	char src[PATH_MAX], out[PATH_MAX], p[PATH_MAX];
	atrest_store *st = store("st", 0);
	atrest_snap_stats a, b, c;
	size_t before;

	(void)state;
	path_of(src, T, "src");
	make_tree(src);
	age_tree(src);
	assert_int_equal(put_tree(&a, st, "db/1", src, NULL, 0), 0);
	before = count_area("st", "d");
	assert_int_equal(before, a.objects);
	/* One file changed (same size), one touched only, one added. */
	put_file(src, "base/1/f03", "CHANGED!!", 9); /* was 250 bytes */
	touch(src, "base/1/f05", 1600000005);        /* same bytes, new mtime */
	put_file(src, "new", "new file", 8);
	path_of(p, src, "base/1/f10");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(put_tree(&b, st, "db/2", src, NULL, 0), 0);
	assert_int_equal(b.files, 45);
	/* Rewritten: f03, new (one pack); the big file and the rest shared. */
	assert_int_equal(b.objects, 1);
	assert_int_equal(b.stored_bytes, 9 + 8);
	assert_int_equal(b.shared_files, 45 - 2 - 1); /* zero has no bytes */
	assert_int_equal(count_area("st", "d"), before + 1);
	path_of(out, T, "out2");
	assert_int_equal(restore(st, "db/2", out, 0), 0);
	same_tree(src, out);
	/* --checksum: every look-alike hashed; still nothing to write. */
	assert_int_equal(
		put_tree(&c, st, "db/3", src, NULL, ATREST_SNAP_TREE_CHECKSUM), 0);
	assert_int_equal(c.objects, 0);
	assert_int_equal(c.shared_files, 44);
	/* An explicit parent, and none: a full snapshot writes everything. */
	assert_int_equal(put_tree(&c, st, "other", src, "db/1", 0), 0);
	assert_int_equal(c.objects, 1);
	{
		atrest_snap_options o = ATREST_SNAP_OPTIONS_INIT;
		atrest_snap *s;
		o.parent = "db/missing";
		assert_int_equal(atrest_snap_begin(&s, st, "x", &o), ATREST_ENOTFOUND);
	}
	/* Removing the parent never breaks the child. */
	{
		atrest_snap_stats r;
		assert_int_equal(atrest_snapshot_remove(&r, st, "db/1"), 0);
		assert_true(r.kept > 0);
		assert_int_equal(
			atrest_snapshot_remove(&r, st, "db/1"), ATREST_ENOTFOUND);
	}
	assert_int_equal(verify(st, "db/2"), 0);
	assert_int_equal(verify(st, "db/3"), 0);
	path_of(out, T, "out3");
	assert_int_equal(restore(st, "db/3", out, 0), 0);
	same_tree(src, out);
	atrest_store_close(st);
}

/* ---- tampering ---- */

static char obj_path[PATH_MAX];

static int find_obj(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)f;
	if (flag == FTW_F && sb->st_size > (3 << 20))
		snprintf(obj_path, sizeof(obj_path), "%s", p);
	return 0;
}

/* The data object holding the large file of the tree. */
static void large_object(char *out, const char *stdir)
{
	char d[PATH_MAX];

	snprintf(d, sizeof(d), "%s/%s/.atrest/snap/d", T, stdir);
	obj_path[0] = '\0';
	nftw(d, find_obj, 16, FTW_PHYS);
	assert_true(obj_path[0] != '\0');
	snprintf(out, PATH_MAX, "%s", obj_path);
}

/* A restore that fails: EINTEGRITY naming what, nothing at the target. */
static void restore_fails(atrest_store *st, const char *what)
{
	char out[PATH_MAX];
	DIR *d;
	struct dirent *de;

	path_of(out, T, "bad-out");
	assert_int_equal(restore(st, "t", out, 0), ATREST_EINTEGRITY);
	if (!strstr(msg(), what))
		fail_msg("'%s' does not name %s", msg(), what);
	assert_false(exists(T, "bad-out"));
	d = opendir(T);
	while ((de = readdir(d)) != NULL)
		assert_null(strstr(de->d_name, ".atrest-"));
	closedir(d);
	assert_int_equal(verify(st, "t"), ATREST_EINTEGRITY);
}

static void test_tamper(void **state)
{
	char src[PATH_MAX], big[PATH_MAX], other[PATH_MAX], p[PATH_MAX];
	atrest_store *st = store("st", 0);
	size_t len;
	uint8_t *save;

	(void)state;
	path_of(src, T, "src");
	make_tree(src);
	assert_int_equal(put_tree(NULL, st, "t", src, NULL, 0), 0);
	large_object(big, "st");
	save = th_read_file(big, &len);

	/* Missing. */
	assert_int_equal(unlink(big), 0);
	restore_fails(st, "file 'base/1/big': its object");
	/* Renamed (missing, and an object that is not the snapshot's). */
	snprintf(other, sizeof(other), "%s.9", big);
	*strrchr(other, '/') = '\0';
	strcat(other, "/99");
	assert_int_equal(th_write_file(other, save, len), 0);
	restore_fails(st, "file 'base/1/big'");
	/* Extra: an object added to the snapshot's set. */
	assert_int_equal(th_write_file(big, save, len), 0);
	assert_int_equal(verify(st, "t"), ATREST_EINTEGRITY);
	restore_fails(st, "is not part of snapshot 't'");
	assert_int_equal(unlink(other), 0);
	assert_int_equal(verify(st, "t"), 0);
	/* Swapped: another object of the set in its place. */
	{
		char small[PATH_MAX];
		size_t sl;
		uint8_t *sb;
		snprintf(small, sizeof(small), "%s", big);
		*strrchr(small, '/') = '\0';
		DIR *d = opendir(small);
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			path_of(p, small, de->d_name);
			if (de->d_name[0] != '.' && strcmp(p, big))
				break;
		}
		closedir(d);
		sb = th_read_file(p, &sl);
		assert_int_equal(th_write_file(big, sb, sl), 0);
		restore_fails(st, "moved or copied");
		free(sb);
	}
	/* A flipped byte inside. */
	assert_int_equal(th_write_file(big, save, len), 0);
	save[len / 2] ^= 1;
	assert_int_equal(th_write_file(big, save, len), 0);
	restore_fails(st, "file 'base/1/big'");
	save[len / 2] ^= 1;
	assert_int_equal(th_write_file(big, save, len), 0);
	assert_int_equal(verify(st, "t"), 0);
	free(save);
	atrest_store_close(st);
}

/*
 * An object rolled back to an older version of itself: its name and
 * context are right, only the commitment the manifest pins tells.
 */
static void test_rollback(void **state)
{
	char src[PATH_MAX], big[PATH_MAX];
	atrest_store *st = store("st", 0);
	atrest__manifest *m;
	atrest__snap_obj *objs;
	uint8_t *old, *content, *enc;
	size_t len, clen, enc_len;
	char etag[ATREST_BACKEND_ETAG_MAX], name[SNAP_NAME_MAX];
	atrest_writer *w;
	atrest_reader *r;
	size_t got;

	(void)state;
	path_of(src, T, "src");
	make_tree(src);
	assert_int_equal(put_tree(NULL, st, "t", src, NULL, 0), 0);
	large_object(big, "st");
	old = th_read_file(big, &len);
	/* A newer version of that object (same bytes, new salt), and the
	 * manifest made to pin it, as a re-encryption would. */
	assert_int_equal(atrest__snap_load(&m, etag, st, "t"), 0);
	objs = malloc(m->nobj * sizeof(*objs));
	memcpy(objs, m->objs, m->nobj * sizeof(*objs));
	for (size_t k = 0; k < m->nobj; k++) {
		atrest__snap_dname(name, &objs[k].ref);
		if (!strstr(big, name + sizeof(SNAP_ROOT) - 1))
			continue;
		assert_int_equal(atrest__reader_open_internal(&r, st, name), 0);
		clen = (size_t)atrest_reader_size(r);
		content = malloc(clen);
		assert_int_equal(atrest_reader_read(r, content, clen, &got), 0);
		atrest_reader_close(r);
		assert_int_equal(atrest__writer_open_internal(&w, st, name, 0, NULL), 0);
		atrest__writer_facts(w, objs[k].commit, &objs[k].dek);
		assert_int_equal(atrest_writer_write(w, content, clen), 0);
		assert_int_equal(atrest_writer_commit(w), 0);
		free(content);
	}
	{
		atrest__manifest n = *m;
		n.objs = objs;
		assert_int_equal(atrest__manifest_encode(&enc, &enc_len, &n), 0);
		assert_int_equal(atrest__snap_mname(name, "t"), 0);
		assert_int_equal(atrest__snap_put_small(st, name, enc, enc_len,
					 ATREST_BACKEND_IF_MATCH, etag),
			0);
		free(enc);
	}
	assert_int_equal(verify(st, "t"), 0);
	/* Now the old version is put back: refused, naming the file. */
	assert_int_equal(th_write_file(big, old, len), 0);
	restore_fails(st, "file 'base/1/big'");
	assert_non_null(strstr(msg(), "not the version the snapshot recorded"));
	free(old);
	free(objs);
	atrest__manifest_free(m);
	atrest_store_close(st);
}

/* A manifest changed, or moved under another name: refused. */
static void test_manifest_tamper(void **state)
{
	char src[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	atrest_store *st = store("st", 1);
	atrest_snapshot *s;
	size_t len;
	uint8_t *m;

	(void)state;
	path_of(src, T, "src");
	make_tree(src);
	assert_int_equal(put_tree(NULL, st, "a", src, NULL, 0), 0);
	assert_int_equal(put_tree(NULL, st, "b", src, NULL, 0), 0);
	snprintf(a, sizeof(a), "%s/st/.atrest/snap/m/a", T);
	snprintf(b, sizeof(b), "%s/st/.atrest/snap/m/b", T);
	m = th_read_file(a, &len);
	assert_int_equal(th_write_file(b, m, len), 0);
	assert_int_equal(atrest_snapshot_open(&s, st, "b", NULL), ATREST_EINTEGRITY);
	assert_non_null(strstr(msg(), "moved or copied"));
	m[len - 5] ^= 0x40;
	assert_int_equal(th_write_file(a, m, len), 0);
	assert_int_equal(atrest_snapshot_open(&s, st, "a", NULL), ATREST_EINTEGRITY);
	free(m);
	/* A plain object cannot pose as a manifest. */
	assert_int_equal(atrest_put(st, "c", "x", 1, NULL), 0);
	snprintf(a, sizeof(a), "%s/st/c", T);
	m = th_read_file(a, &len);
	snprintf(b, sizeof(b), "%s/st/.atrest/snap/m/c", T);
	assert_int_equal(th_write_file(b, m, len), 0);
	assert_int_equal(atrest_snapshot_open(&s, st, "c", NULL), ATREST_EINTEGRITY);
	free(m);
	atrest_store_close(st);
}

/* ---- sequence numbers ---- */

static void test_sequence(void **state)
{
	char src[PATH_MAX];
	atrest_store *st = store("st", 1);
	char *name;
	uint64_t seq;

	(void)state;
	path_of(src, T, "src");
	mkdir(src, 0700);
	put_file(src, "f", "x", 1);
	assert_int_equal(put_tree(NULL, st, "a/1", src, NULL, 0), 0);
	assert_int_equal(put_tree(NULL, st, "b/1", src, NULL, 0), 0);
	assert_int_equal(put_tree(NULL, st, "a/2", src, NULL, 0), 0);
	assert_int_equal(atrest_snapshot_latest(&name, &seq, st, "a/", 0), 0);
	assert_string_equal(name, "a/2");
	assert_int_equal(seq, 3);
	atrest_free(name);
	assert_int_equal(atrest_snapshot_latest(&name, &seq, st, "a/", 3), 0);
	atrest_free(name);
	assert_int_equal(
		atrest_snapshot_latest(&name, &seq, st, "c/", 0), ATREST_ENOTFOUND);
	/* The newest removed (or the store rolled back): a reader that
	 * remembers sequence 3 is not handed a/1. */
	assert_int_equal(atrest_snapshot_remove(NULL, st, "a/2"), 0);
	assert_int_equal(
		atrest_snapshot_latest(&name, &seq, st, "a/", 3), ATREST_EINTEGRITY);
	assert_non_null(strstr(msg(), "older than the 3 required"));
	assert_int_equal(restore(st, "a/1", T, 3), ATREST_EINTEGRITY);
	/* Numbers never go back, even after removals. */
	assert_int_equal(put_tree(NULL, st, "a/3", src, NULL, 0), 0);
	assert_int_equal(atrest_snapshot_latest(&name, &seq, st, "", 0), 0);
	assert_string_equal(name, "a/3");
	assert_int_equal(seq, 4);
	atrest_free(name);
	atrest_store_close(st);
}

/* ---- the gc protocol ---- */

static atrest_snap *begin(atrest_store *st, const char *name, uint32_t ttl)
{
	atrest_snap_options o = ATREST_SNAP_OPTIONS_INIT;
	atrest_snap *s;

	o.flags = ATREST_SNAP_AUTO_PARENT;
	o.lease_ttl = ttl;
	assert_int_equal(atrest_snap_begin(&s, st, name, &o), 0);
	return s;
}

static void share(atrest_snap *s, const char *path, uint64_t size)
{
	atrest_snap_entry e = ATREST_SNAP_ENTRY_INIT;

	e.path = path;
	e.type = ATREST_SNAP_FILE;
	e.mode = 0600;
	e.size = size;
	if (atrest_snap_add_unchanged(s, &e, NULL) != 0)
		fail_msg("add_unchanged %s: %s", path, msg());
}

static atrest_snap_stats gc(atrest_store *st, int64_t grace)
{
	atrest_gc_options o = ATREST_GC_OPTIONS_INIT;
	atrest_snap_stats s;

	o.grace = grace;
	o.ttl = 5;
	assert_int_equal(atrest_snapshot_gc(&s, st, &o), 0);
	return s;
}

/* A writer's lease keeps the parent's objects it may share, through the
 * parent's removal and any gc, until its own manifest references them. */
static void test_lease_keeps_parent(void **state)
{
	static uint8_t big[1 << 20];
	atrest_store *st = store("st", 1);
	atrest_snap_stats r;
	atrest_snap *s;

	(void)state;
	th_fill(big, sizeof(big), 3);
	s = begin(st, "p/1", 0);
	assert_int_equal(add_buf(s, "big", big, sizeof(big)), 0);
	assert_int_equal(add_buf(s, "small", "abc", 3), 0);
	assert_int_equal(atrest_snap_commit(NULL, s), 0);
	assert_int_equal(count_area("st", "d"), 2);
	s = begin(st, "p/2", 0);
	assert_string_equal(atrest_snap_parent(s), "p/1");
	assert_int_equal(atrest_snapshot_remove(&r, st, "p/1"), 0);
	assert_int_equal(r.objects, 0);
	assert_int_equal(r.kept, 2);
	r = gc(st, 0);
	assert_int_equal(r.objects, 0);
	assert_int_equal(count_area("st", "d"), 2);
	share(s, "big", sizeof(big));
	assert_int_equal(add_buf(s, "small", "abd", 3), 0);
	assert_int_equal(atrest_snap_commit(NULL, s), 0);
	assert_int_equal(verify(st, "p/2"), 0);
	r = gc(st, 0); /* p/1's small file: no one's now */
	assert_int_equal(r.objects, 1);
	assert_int_equal(verify(st, "p/2"), 0);

	/* With the parent kept, the objects it shares survive every gc. */
	s = begin(st, "q/1", 0);
	assert_int_equal(add_buf(s, "big", big, sizeof(big)), 0);
	assert_int_equal(atrest_snap_commit(NULL, s), 0);
	s = begin(st, "q/2", 0);
	r = gc(st, 0);
	assert_int_equal(r.objects, 0);
	share(s, "big", sizeof(big));
	assert_int_equal(atrest_snap_commit(NULL, s), 0);
	assert_int_equal(atrest_snapshot_remove(&r, st, "q/1"), 0);
	assert_int_equal(r.kept, 1);
	r = gc(st, 0);
	assert_int_equal(r.objects, 0);
	assert_int_equal(verify(st, "q/2"), 0);
	atrest_store_close(st);
}

/* A gc that was running when the writer began (it may not have seen the
 * writer's lease): the writer waits for it, then re-checks its parent. */
static void test_marker_wait(void **state)
{
	uint8_t id[16], enc[ATREST__SNAP_MARKER_LEN];
	char g[SNAP_NAME_MAX], name[SNAP_NAME_MAX];
	atrest_store *st = store("st", 1);
	atrest__manifest *m;
	atrest_snap *s;
	double t0;

	(void)state;
	s = begin(st, "p/1", 0);
	assert_int_equal(add_buf(s, "f", "abc", 3), 0);
	assert_int_equal(atrest_snap_commit(NULL, s), 0);
	th_fill(id, sizeof(id), 7);
	atrest__snap_gname(g, id);
	atrest__marker_encode(enc, 60, 0);
	assert_int_equal(atrest__snap_put_small(st, g, enc, sizeof(enc), 0, NULL), 0);
	s = begin(st, "p/2", 0);
	share(s, "f", 3);
	/* That gc removes p/1 and its objects without seeing the lease. */
	assert_int_equal(atrest__snap_load(&m, NULL, st, "p/1"), 0);
	assert_int_equal(atrest__snap_mname(name, "p/1"), 0);
	assert_int_equal(atrest__snap_remove(st, name), 0);
	for (size_t k = 0; k < m->nobj; k++) {
		atrest__snap_dname(name, &m->objs[k].ref);
		assert_int_equal(atrest__snap_remove(st, name), 0);
	}
	atrest__manifest_free(m);
	assert_int_equal(atrest__snap_remove(st, g), 0); /* it ends */
	assert_int_equal(atrest_snap_commit(NULL, s), ATREST_ECONFLICT);
	assert_non_null(strstr(msg(), "shared with parent snapshot 'p/1', was removed"));
	assert_int_equal(count_area("st", "m"), 0);
	assert_int_equal(count_area("st", "l"), 0);
	assert_int_equal(count_area("st", "d"), 0);

	/* A gc killed with its marker left: waited out (ttl 1 s), not forever. */
	s = begin(st, "p/1", 0);
	assert_int_equal(add_buf(s, "f", "abc", 3), 0);
	assert_int_equal(atrest_snap_commit(NULL, s), 0);
	atrest__marker_encode(enc, 1, 0);
	assert_int_equal(atrest__snap_put_small(st, g, enc, sizeof(enc), 0, NULL), 0);
	s = begin(st, "p/2", 0);
	share(s, "f", 3);
	t0 = atrest__snap_clock();
	assert_int_equal(atrest_snap_commit(NULL, s), 0);
	assert_true(atrest__snap_clock() - t0 >= 1.0);
	assert_int_equal(verify(st, "p/2"), 0);
	/* The next gc removes the dead marker. */
	sleep(3);
	(void)gc(st, 0);
	assert_int_equal(count_area("st", "g"), 0);
	atrest_store_close(st);
}

/* Writers that died: their leases go stale and gc takes what they wrote;
 * one that only paused past its lease fails at commit. */
static void test_stale_writers(void **state)
{
	atrest_store *st = store("st", 1);
	atrest_snap_stats r;
	atrest_snap *s;
	atrest__snap_lease l = {1, 0, 0, NULL};
	uint8_t w[16], *enc;
	char name[SNAP_NAME_MAX];
	atrest__snap_ref ref;
	size_t len;

	(void)state;
	/* A dead writer: its lease (ttl 1 s) and one object of its own. */
	th_fill(w, sizeof(w), 11);
	assert_int_equal(atrest__lease_encode(&enc, &len, &l), 0);
	atrest__snap_lname(name, w);
	assert_int_equal(atrest__snap_put_small(st, name, enc, len, 0, NULL), 0);
	free(enc);
	memcpy(ref.writer, w, 16);
	ref.index = 1;
	atrest__snap_dname(name, &ref);
	assert_int_equal(atrest__snap_put_small(st, name, "data", 4, 0, NULL), 0);
	r = gc(st, 0); /* its lease is live: kept */
	assert_int_equal(r.objects, 0);
	assert_int_equal(r.kept, 1);
	sleep(3);
	r = gc(st, 3600); /* stale, but younger than the grace age */
	assert_int_equal(r.objects, 0);
	assert_int_equal(r.leases_removed, 1);
	r = gc(st, 0);
	assert_int_equal(r.objects, 1);
	assert_int_equal(count_area("st", "d"), 0);
	assert_int_equal(count_area("st", "l"), 0);

	/* A writer idle past its lease: gc takes its objects, commit fails. */
	s = begin(st, "slow", 1);
	{
		static uint8_t big[1 << 20];
		assert_int_equal(add_buf(s, "f", big, sizeof(big)), 0);
	}
	sleep(3);
	r = gc(st, 0);
	assert_int_equal(r.leases_removed, 1);
	assert_int_equal(r.objects, 1);
	assert_int_equal(atrest_snap_commit(NULL, s), ATREST_ECONFLICT);
	assert_non_null(strstr(msg(), "lease was removed by gc"));
	assert_int_equal(count_area("st", "m"), 0);
	atrest_store_close(st);
}

/* ---- gc racing writers and removals ---- */

#define RACE_ROUNDS 12

typedef struct race {
	atrest_store *st;
	int writer;
	volatile int *done;
	int published;
} race;

static void *race_writer(void *p)
{
	race *r = p;
	char name[32], body[32];

	for (int i = 0; i < RACE_ROUNDS; i++) {
		atrest_snap *s;
		int rc;
		snprintf(name, sizeof(name), "w%d/%03d", r->writer, i);
		s = begin(r->st, name, 0);
		if (atrest_snap_parent(s)) {
			atrest_snap_entry e = ATREST_SNAP_ENTRY_INIT;
			e.path = "stable";
			e.type = ATREST_SNAP_FILE;
			e.mode = 0600;
			e.size = 6;
			rc = atrest_snap_add_unchanged(s, &e, NULL);
			assert_true(rc == 0);
		} else {
			assert_int_equal(add_buf(s, "stable", "stable", 6), 0);
		}
		snprintf(body, sizeof(body), "round %d of %d", i, r->writer);
		assert_int_equal(add_buf(s, "changing", body, strlen(body)), 0);
		rc = atrest_snap_commit(NULL, s);
		assert_true(rc == 0 || rc == ATREST_ECONFLICT);
		r->published += rc == 0;
	}
	__atomic_add_fetch(r->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

typedef struct names {
	char v[64][32];
	int n;
} names;

static int collect_name(const atrest_snapshot_list_entry *e, void *p)
{
	names *l = p;

	if (l->n < 64)
		snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", e->name);
	return 0;
}

/* Keep the newest snapshot of each writer, remove the rest, collect. */
static void *race_remover(void *p)
{
	race *r = p;
	atrest_gc_options o = ATREST_GC_OPTIONS_INIT;

	o.grace = 0;
	o.ttl = 5;
	while (__atomic_load_n(r->done, __ATOMIC_SEQ_CST) < 2) {
		names l = {.n = 0};
		assert_int_equal(atrest_snapshot_list(r->st, "", collect_name, &l), 0);
		for (int i = 0; i + 1 < l.n; i++)
			if (!strncmp(l.v[i], l.v[i + 1], 3)) {
				int rc = atrest_snapshot_remove(NULL, r->st, l.v[i]);
				assert_true(rc == 0 || rc == ATREST_ENOTFOUND);
			}
		assert_int_equal(atrest_snapshot_gc(NULL, r->st, &o), 0);
	}
	return NULL;
}

static void test_gc_race(void **state)
{
	atrest_store *st = store("st", 2);
	volatile int done = 0;
	race w[2] = {{st, 0, &done, 0}, {st, 1, &done, 0}}, rm = {st, 9, &done, 0};
	pthread_t t[3];
	names l = {.n = 0};
	size_t refs = 0;

	(void)state;
	assert_int_equal(pthread_create(&t[0], NULL, race_writer, &w[0]), 0);
	assert_int_equal(pthread_create(&t[1], NULL, race_writer, &w[1]), 0);
	assert_int_equal(pthread_create(&t[2], NULL, race_remover, &rm), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_true(w[0].published + w[1].published > 0);
	(void)gc(st, 0);
	assert_int_equal(atrest_snapshot_list(st, "", collect_name, &l), 0);
	assert_true(l.n >= 2);
	for (int i = 0; i < l.n; i++) {
		atrest__manifest *m;
		if (verify(st, l.v[i]) != 0)
			fail_msg("%s: %s", l.v[i], msg());
		assert_int_equal(atrest__snap_load(&m, NULL, st, l.v[i]), 0);
		refs += m->nobj;
		atrest__manifest_free(m);
	}
	/* Everything unreferenced went; shared objects are counted per snapshot. */
	assert_true(count_area("st", "d") <= refs);
	assert_int_equal(count_area("st", "l"), 0);
	assert_int_equal(count_area("st", "g"), 0);
	atrest_store_close(st);
}

/* ---- a full disk ---- */

static int writes_left = -1; /* atomic: the pool's threads write too */

static ssize_t full_write(int fd, const void *buf, size_t n)
{
	int left = __atomic_load_n(&writes_left, __ATOMIC_ACQUIRE);

	while (left > 0 &&
		!__atomic_compare_exchange_n(&writes_left, &left, left - 1, 0,
			__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
	if (left == 0) {
		errno = ENOSPC;
		return -1;
	}
	return write(fd, buf, n);
}

static void test_full_disk(void **state)
{
	char src[PATH_MAX], dst[PATH_MAX];
	atrest_store *st;
	int failed = 0;

	(void)state;
	atrest__obs_flusher_off(1); /* only the puts meet the full disk */
	st = store("st", 1);
	path_of(src, T, "src");
	make_tree(src);
	assert_int_equal(put_tree(NULL, st, "t/1", src, NULL, 0), 0);
	assert_int_equal(atrest__fs_set_syscall("write", (void *)full_write), 0);
	for (int after = 0; after < 40; after += 3) {
		char name[32];
		int rc;
		atrest_snapshot *s;
		snprintf(name, sizeof(name), "full-%d", after);
		__atomic_store_n(&writes_left, after, __ATOMIC_RELEASE);
		rc = put_tree(NULL, st, name, src, NULL, 0);
		__atomic_store_n(&writes_left, -1, __ATOMIC_RELEASE);
		assert_int_equal(count_area("st", "l"), 0);
		if (rc == 0)
			continue;
		failed++;
		assert_int_equal(rc, ATREST_ENOSPC);
		assert_int_equal(
			atrest_snapshot_open(&s, st, name, NULL), ATREST_ENOTFOUND);
	}
	atrest__fs_set_syscall("write", NULL);
	assert_true(failed > 3);
	assert_int_equal(verify(st, "t/1"), 0);
	path_of(dst, T, "out");
	assert_int_equal(restore(st, "t/1", dst, 0), 0);
	same_tree(src, dst);
	assert_int_equal(gc(st, 0).objects, 0);
	atrest_store_close(st);
	atrest__obs_flusher_off(0);
}

/* ---- restoring safely ---- */

/* A manifest's bytes written by hand (no rule checked), entries of dirs,
 * symbolic links and empty files only. */
typedef struct raw_ent {
	int type;
	const char *path, *target;
} raw_ent;

static void raw_put(atrest__buf *b, const void *p, size_t n)
{
	atrest__buf_put(b, p, n);
}

static void raw16(atrest__buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	raw_put(b, x, 2);
}

static void raw32(atrest__buf *b, uint32_t v)
{
	uint8_t x[4];
	atrest__put_le32(x, v);
	raw_put(b, x, 4);
}

static void raw64(atrest__buf *b, uint64_t v)
{
	uint8_t x[8];
	atrest__put_le64(x, v);
	raw_put(b, x, 8);
}

static void raw_manifest(atrest_store *st, const char *name, const raw_ent *e, size_t n)
{
	static const uint8_t magic[8] = {0x89, 'A', 'T', 'S', 'N', 'A', 'P', 1};
	uint8_t zero[32] = {0};
	atrest__buf b = ATREST__BUF_INIT;
	char mname[SNAP_NAME_MAX];

	raw_put(&b, magic, 8);
	raw32(&b, 0);
	raw64(&b, 1);
	raw64(&b, 0);
	raw_put(&b, zero, 16);
	raw16(&b, (uint16_t)strlen(name));
	raw_put(&b, name, strlen(name));
	raw16(&b, 0);
	raw32(&b, 0);
	raw32(&b, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t t = (uint8_t)e[i].type;
		raw_put(&b, &t, 1);
		raw16(&b, (uint16_t)strlen(e[i].path));
		raw_put(&b, e[i].path, strlen(e[i].path));
		raw32(&b, 0700);
		raw32(&b, 0);
		raw32(&b, 0);
		raw64(&b, 0);
		if (t == ATREST__SNAP_FILE) {
			raw64(&b, 0);
			raw32(&b, ATREST__SNAP_NOOBJ);
			raw64(&b, 0);
			raw_put(&b, zero, 32);
		} else if (t == ATREST__SNAP_SYMLINK) {
			raw16(&b, (uint16_t)strlen(e[i].target));
			raw_put(&b, e[i].target, strlen(e[i].target));
		}
		raw16(&b, 0);
	}
	assert_int_equal(atrest__buf_check(&b), 0);
	assert_int_equal(atrest__snap_mname(mname, name), 0);
	assert_int_equal(atrest__snap_put_small(st, mname, b.data, b.len, 0, NULL), 0);
	atrest__buf_free(&b);
}

static void test_restore_refuses(void **state)
{
	const raw_ent ok[] = {{1, "", NULL}, {1, "d", NULL}, {2, "d/f", NULL}};
	const raw_ent dotdot[] = {{1, "", NULL}, {1, "..", NULL}, {2, "../f", NULL}};
	const raw_ent abs[] = {{1, "", NULL}, {2, "/etc/passwd", NULL}};
	const raw_ent under_link[] = {{1, "", NULL}, {3, "l", "/tmp"}, {2, "l/f", NULL}};
	const raw_ent in_dot[] = {{1, "", NULL}, {1, "a", NULL}, {2, "a/./f", NULL}};
	atrest_store *st = store("st", 1);
	char out[PATH_MAX];

	(void)state;
	path_of(out, T, "out");
	raw_manifest(st, "ok", ok, 3);
	raw_manifest(st, "dotdot", dotdot, 3);
	raw_manifest(st, "abs", abs, 2);
	raw_manifest(st, "link", under_link, 3);
	raw_manifest(st, "dot", in_dot, 3);
	assert_int_equal(restore(st, "ok", out, 0), 0);
	assert_true(exists(out, "d/f"));
	th_rmrf(out);
	assert_int_equal(restore(st, "dotdot", out, 0), ATREST_EINTEGRITY);
	assert_int_equal(restore(st, "abs", out, 0), ATREST_EINTEGRITY);
	assert_int_equal(restore(st, "link", out, 0), ATREST_EINTEGRITY);
	assert_non_null(strstr(msg(), "parent is not a directory"));
	assert_int_equal(restore(st, "dot", out, 0), ATREST_EINTEGRITY);
	assert_false(exists(T, "out"));
	assert_false(exists(T, "f"));
	atrest_store_close(st);
}

/* Nothing beneath the tree is reached through a link, even one planted
 * while it is being built. */
static void test_beneath(void **state)
{
	char root[PATH_MAX], p[PATH_MAX];
	atrest__snap_dirc dc;
	const char *base;
	int fd;

	(void)state;
	path_of(root, T, "tree");
	mkdir(root, 0700);
	mkdir_in(root, "a", 0700);
	path_of(p, root, "b");
	assert_int_equal(symlink(T, p), 0);
	fd = open(root, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_true(atrest__snap_openat(fd, "b/planted", O_WRONLY | O_CREAT, 0600) < 0);
	assert_true(atrest__snap_openat(fd, "b", O_RDONLY, 0) < 0);
	assert_true(atrest__snap_openat(fd, "a/../b/x", O_WRONLY | O_CREAT, 0600) < 0);
	assert_false(exists(T, "planted"));
	atrest__snap_dirc_init(&dc);
	assert_true(atrest__snap_dirc_parent(&dc, fd, "b/x", &base) < 0);
	assert_true(atrest__snap_dirc_parent(&dc, fd, "a/x", &base) >= 0);
	assert_string_equal(base, "x");
	atrest__snap_dirc_close(&dc);
	close(fd);
}

/* The target: missing or an empty directory; leftovers of dead restores
 * to it are removed, those of live ones kept. */
static void test_restore_target(void **state)
{
	char src[PATH_MAX], out[PATH_MAX], left[PATH_MAX], live[PATH_MAX];
	atrest_store *st = store("st", 1);
	int lk;

	(void)state;
	path_of(src, T, "src");
	mkdir(src, 0700);
	put_file(src, "f", "x", 1);
	assert_int_equal(put_tree(NULL, st, "t", src, NULL, 0), 0);
	path_of(out, T, "out");
	mkdir(out, 0700);
	assert_int_equal(restore(st, "t", out, 0), 0); /* an empty dir: replaced */
	assert_true(exists(out, "f"));
	assert_int_equal(restore(st, "t", out, 0), ATREST_EEXISTS);
	th_rmrf(out);
	assert_int_equal(symlink(src, out), 0);
	assert_int_equal(restore(st, "t", out, 0), ATREST_EEXISTS);
	unlink(out);
	path_of(left, T, ".out.atrest-dead00");
	mkdir(left, 0700);
	put_file(left, "plain", "secret", 6);
	path_of(live, T, ".out.atrest-live00");
	mkdir(live, 0700);
	lk = open(live, O_RDONLY | O_DIRECTORY);
	assert_int_equal(flock(lk, LOCK_EX), 0);
	assert_int_equal(restore(st, "t", out, 0), 0);
	assert_false(exists(T, ".out.atrest-dead00"));
	assert_true(exists(T, ".out.atrest-live00"));
	close(lk);
	/* A path that names no directory entry. */
	assert_int_equal(restore(st, "t", "/", 0), ATREST_EINVAL);
	atrest_store_close(st);
}

/* ---- tenants and data keys ---- */

static atrest_store *tenant(const char *t)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;
	char p[PATH_MAX];

	path_of(p, T, "st");
	o.path = p;
	o.tenant = t;
	o.threads = 1;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	return st;
}

static int count_list(const atrest_snapshot_list_entry *e, void *p)
{
	(void)e;
	(*(int *)p)++;
	return 0;
}

static void test_tenants(void **state)
{
	char src[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	atrest_store *st = store("st", 1), *ta, *tb;
	atrest_snapshot *s;
	uint8_t *m;
	size_t len;
	uint64_t removed;
	int n = 0;

	(void)state;
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	assert_int_equal(atrest_tenant_add(st, "beta", NULL), 0);
	ta = tenant("acme");
	tb = tenant("beta");
	path_of(src, T, "src");
	mkdir(src, 0700);
	put_file(src, "f", "x", 1);
	assert_int_equal(put_tree(NULL, ta, "t", src, NULL, 0), 0);
	assert_int_equal(atrest_snapshot_open(&s, st, "t", NULL), ATREST_ENOTFOUND);
	assert_int_equal(atrest_snapshot_open(&s, tb, "t", NULL), ATREST_ENOTFOUND);
	assert_int_equal(atrest_snapshot_list(tb, "", count_list, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(verify(ta, "t"), 0);
	snprintf(a, sizeof(a), "%s/st/.atrest/tenants/acme/snap/m/t", T);
	m = th_read_file(a, &len);
	assert_non_null(m);
	snprintf(b, sizeof(b), "%s/st/.atrest/tenants/beta/snap", T);
	mkdir(b, 0700);
	strcat(b, "/m");
	mkdir(b, 0700);
	strcat(b, "/t");
	assert_int_equal(th_write_file(b, m, len), 0);
	assert_int_equal(atrest_snapshot_open(&s, tb, "t", NULL), ATREST_EINTEGRITY);
	free(m);
	atrest_store_close(ta);
	atrest_store_close(tb);
	assert_int_equal(atrest_tenant_shred(&removed, st, "acme"), 0);
	assert_true(removed >= 3); /* manifest, data, counter */
	snprintf(a, sizeof(a), "%s/st/.atrest/tenants/acme/snap/m/t", T);
	assert_false(exists(a, "."));
	atrest_store_close(st);
}

static int key_objects(const atrest_key_info *k, void *p)
{
	if (!strcmp(k->status, "retired"))
		*(uint64_t *)p = k->objects;
	return 0;
}

static void test_key_usage(void **state)
{
	char src[PATH_MAX];
	atrest_store *st = store("st", 1);
	uint32_t old = 0, fresh;
	uint64_t objects = 0;

	(void)state;
	path_of(src, T, "src");
	mkdir(src, 0700);
	put_file(src, "f", "x", 1);
	assert_int_equal(put_tree(NULL, st, "t", src, NULL, 0), 0);
	assert_int_equal(
		atrest_object_key_id(&old, st, ".atrest/snap/m/t"), ATREST_EINVAL);
	assert_int_equal(atrest_rotate(&fresh, st), 0);
	assert_int_equal(atrest_keys_list(st, 1, key_objects, &objects), 0);
	assert_int_equal(objects, 3); /* the manifest, the data, the counter */
	{
		atrest__manifest *m;
		assert_int_equal(atrest__snap_load(&m, NULL, st, "t"), 0);
		old = m->objs[0].dek;
		atrest__manifest_free(m);
	}
	assert_int_equal(atrest_key_destroy(st, old, 0), ATREST_EEXISTS);
	assert_int_equal(verify(st, "t"), 0);
	atrest_store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tree_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_api, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_tamper, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_keeps_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_marker_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_beneath, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenants, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_usage, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
