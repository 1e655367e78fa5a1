/*
 * The local directory backend: object "a/b/c" is the file <root>/a/b/c and
 * the store's own files live under <root>/.atrest/.  A put is a temp file in
 * this handle's private dir, fsync, rename, fsync of the directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atrest/sys/backend.h"
#include "common.h"
#include "fs_int.h"

#define PLACE_TRIES 8 /* renames racing a delete of an empty parent */
#define AGAIN 1       /* internal: a parent dir vanished, retry */

/*
 * Every system call goes through this table so that tests can make any one
 * of them fail (SQLite os_unix.c aSyscall).
 */
typedef void (*fs_fn)(void);

enum {
	SYS_OPEN,
	SYS_CLOSE,
	SYS_PREAD,
	SYS_WRITE,
	SYS_FSYNC,
	SYS_FSTAT,
	SYS_FSTATAT,
	SYS_MKDIR,
	SYS_RMDIR,
	SYS_UNLINK,
	SYS_RENAME,
	SYS_LINK,
	SYS_FLOCK,
	SYS_GETRANDOM,
	SYS_OPENDIR,
	SYS_READDIR,
	SYS_CLOSEDIR,
	SYS_COUNT
};

#define SC(f)                          \
	{                              \
#f, (fs_fn)f, (fs_fn)f \
	}
static struct {
	const char *name;
	fs_fn fn;
	fs_fn dflt;
} fs_syscalls[SYS_COUNT] = {
	[SYS_OPEN] = SC(open),
	[SYS_CLOSE] = SC(close),
	[SYS_PREAD] = SC(pread),
	[SYS_WRITE] = SC(write),
	[SYS_FSYNC] = SC(fsync),
	[SYS_FSTAT] = SC(fstat),
	[SYS_FSTATAT] = SC(fstatat),
	[SYS_MKDIR] = SC(mkdir),
	[SYS_RMDIR] = SC(rmdir),
	[SYS_UNLINK] = SC(unlink),
	[SYS_RENAME] = SC(rename),
	[SYS_LINK] = SC(link),
	[SYS_FLOCK] = SC(flock),
	[SYS_GETRANDOM] = SC(getrandom),
	[SYS_OPENDIR] = SC(opendir),
	[SYS_READDIR] = SC(readdir),
	[SYS_CLOSEDIR] = SC(closedir),
};

#define SYS(id, type) ((type)fs_syscalls[id].fn)
#define sys_open SYS(SYS_OPEN, int (*)(const char *, int, ...))
#define sys_close SYS(SYS_CLOSE, int (*)(int))
#define sys_pread SYS(SYS_PREAD, ssize_t (*)(int, void *, size_t, off_t))
#define sys_write SYS(SYS_WRITE, ssize_t (*)(int, const void *, size_t))
#define sys_fsync SYS(SYS_FSYNC, int (*)(int))
#define sys_fstat SYS(SYS_FSTAT, int (*)(int, struct stat *))
#define sys_fstatat SYS(SYS_FSTATAT, int (*)(int, const char *, struct stat *, int))
#define sys_mkdir SYS(SYS_MKDIR, int (*)(const char *, mode_t))
#define sys_rmdir SYS(SYS_RMDIR, int (*)(const char *))
#define sys_unlink SYS(SYS_UNLINK, int (*)(const char *))
#define sys_rename SYS(SYS_RENAME, int (*)(const char *, const char *))
#define sys_link SYS(SYS_LINK, int (*)(const char *, const char *))
#define sys_flock SYS(SYS_FLOCK, int (*)(int, int))
#define sys_getrandom SYS(SYS_GETRANDOM, ssize_t (*)(void *, size_t, unsigned int))
#define sys_opendir SYS(SYS_OPENDIR, DIR *(*)(const char *))
#define sys_readdir SYS(SYS_READDIR, struct dirent *(*)(DIR *))
#define sys_closedir SYS(SYS_CLOSEDIR, int (*)(DIR *))

#ifdef ATREST_TEST_HOOKS
int atrest__fs_set_syscall(const char *name, void *fn)
{
	for (int i = 0; i < SYS_COUNT; i++) {
		if (strcmp(fs_syscalls[i].name, name) != 0)
			continue;
		fs_syscalls[i].fn = fn ? (fs_fn)fn : fs_syscalls[i].dflt;
		return 0;
	}
	return atrest__error(ATREST_EINVAL, "fs: no system call %s", name);
}
#endif

struct fs_backend {
	atrest_backend parent;
	pthread_mutex_t mu; /* guards tmp and lock_fd (prepare, free) */
	atomic_ulong seq;   /* names of temp files */
	int lock_fd;        /* flock'ed for the handle's life, or -1 */
	int nosync;         /* ATREST_STORE_NO_SYNC: puts skip fsync */
	char tmp[PATH_MAX]; /* <root>/.atrest/tmp/<hex>, "" until prepared */
	char root[];        /* without trailing "/" */
};

struct fs_writer {
	atrest_backend_writer parent;
	int fd;
	int failed;
	int synced; /* fsync'ed by fs_sync since the last write */
	int nosync; /* the handle's ATREST_STORE_NO_SYNC */
	unsigned int flags;
	size_t root_len; /* dest[root_len] is the "/" before the key */
	const char *key;
	const char *dest;
	char tmp[]; /* followed by dest and key */
};

struct fs_reader {
	atrest_backend_reader parent;
	int fd;
	char key[];
};

struct fs_lock {
	int fd;
};

/* ---- small helpers: paths, retries, directories ---- */

/* out = a b c, or ATREST_EINVAL when that does not fit in PATH_MAX. */
static int cat3(char out[PATH_MAX], const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);

	if (la + lb + lc >= PATH_MAX)
		return atrest__error(
			ATREST_EINVAL, "fs: path too long: %s%s%.64s", a, b, c);
	memcpy(out, a, la);
	memcpy(out + la, b, lb);
	memcpy(out + la + lb, c, lc + 1);
	return 0;
}

static int join(char out[PATH_MAX], const char *dir, const char *rel)
{
	return cat3(out, dir, "/", rel);
}

/*
 * Defence in depth: the core validated key already, but whatever reaches
 * here must never name a path outside root nor the handles' temp files.
 */
static int check_key(const char *key)
{
	const char *c = key, *p;

	if (!key || !*key || *key == '/')
		goto bad;
	for (;; c = p + 1) {
		p = strchrnul(c, '/');
		if (p == c || (p - c == 1 && c[0] == '.') ||
			(p - c == 2 && c[0] == '.' && c[1] == '.'))
			goto bad;
		if (!*p)
			break;
	}
	if (strcmp(key, ".atrest") == 0 || strcmp(key, ".atrest/lock") == 0 ||
		strcmp(key, ".atrest/tmp") == 0 || strncmp(key, ".atrest/tmp/", 12) == 0)
		goto bad;
	return 0;
bad:
	return atrest__error(ATREST_EINVAL,
		"fs: refusing a key that is empty, "
		"absolute, has an empty, \".\" or \"..\" component, or names "
		"the store's internals");
}

static int fsync_fd(int fd)
{
	int rc;

	while ((rc = sys_fsync(fd)) != 0 && errno == EINTR)
		;
	return rc;
}

/* fsync the directory holding path; 0 or an errno value. */
static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	int fd, e = 0;

	if (n == 0) {
		strcpy(dir, slash ? "/" : ".");
	} else {
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = sys_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fsync_fd(fd) != 0)
		e = errno;
	sys_close(fd);
	return e;
}

/*
 * mkdir -p of path for the components after path[from], each 0700; the
 * parent of every dir made is fsync'ed so the new entry is durable.
 * 0 or an errno value.
 */
static int mkdirs(char *path, size_t from)
{
	size_t len = strlen(path);

	for (size_t i = from + 1; i <= len; i++) {
		int e = 0;
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (sys_mkdir(path, 0700) == 0)
			e = fsync_parent(path);
		else if (errno != EEXIST)
			e = errno;
		path[i] = i < len ? '/' : '\0';
		if (e)
			return e;
	}
	return 0;
}

/* Remove a flat temp dir and the files in it; best effort. */
static void remove_temp_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d = sys_opendir(dir);

	if (!d)
		return;
	while ((de = sys_readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (join(path, dir, n) == 0)
			sys_unlink(path);
	}
	sys_closedir(d);
	sys_rmdir(dir);
}

/* ---- prepare: the store's dirs, this handle's temp dir, stale cleanup ---- */

static int ensure_root(struct fs_backend *fs, int create)
{
	char path[PATH_MAX];
	struct stat st;
	int e;

	if (sys_fstatat(AT_FDCWD, fs->root, &st, 0) == 0) {
		ENSURE(S_ISDIR(st.st_mode), ATREST_EINVAL,
			"fs: store path %s is not a directory", fs->root);
		return 0;
	}
	e = errno;
	if (e != ENOENT)
		return atrest__error_os(
			ATREST_ERROR, e, "fs: cannot open store %s", fs->root);
	ENSURE(create, ATREST_ENOTFOUND, "fs: no store at %s", fs->root);
	strcpy(path, fs->root);
	e = mkdirs(path, 0);
	if (e)
		return atrest__error_os(
			e == ENOSPC || e == EDQUOT ? ATREST_ENOSPC : ATREST_ERROR, e,
			"fs: cannot create store %s", fs->root);
	return 0;
}

/* 0 when <root>/.atrest/tmp is there (made if need be), 1 for no store. */
static int ensure_meta(struct fs_backend *fs, int create)
{
	char path[PATH_MAX];
	struct stat st;
	int e;

	GUARD(join(path, fs->root, ".atrest"));
	if (sys_fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
		ENSURE(S_ISDIR(st.st_mode), ATREST_EINVAL, "fs: %s is not a directory",
			path);
	else if (errno != ENOENT)
		return atrest__error_os(ATREST_ERROR, errno, "fs: cannot open %s", path);
	else if (!create)
		return 1;
	GUARD(join(path, fs->root, ".atrest/tmp"));
	e = mkdirs(path, strlen(fs->root));
	if (e)
		return atrest__error_os(
			e == ENOSPC || e == EDQUOT ? ATREST_ENOSPC : ATREST_ERROR, e,
			"fs: cannot create %s", path);
	return 0;
}

static int random_hex(char out[17])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char r[8];
	ssize_t n;

	while ((n = sys_getrandom(r, sizeof(r), 0)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(r))
		return atrest__error_os(
			ATREST_ERROR, n < 0 ? errno : EIO, "fs: getrandom");
	for (int i = 0; i < 8; i++) {
		out[2 * i] = digits[r[i] >> 4];
		out[2 * i + 1] = digits[r[i] & 15];
	}
	out[16] = '\0';
	return 0;
}

/*
 * Take <root>/.atrest/tmp/<hex>.lock: created exclusively and flock'ed.  A
 * cleaner may have taken it between our open and our flock (it looks
 * abandoned for that instant) and removed it; then the path is gone or is
 * another inode, and we start again with a new name.
 */
static int take_lock(const char *lock)
{
	struct stat a, b;
	int fd = sys_open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), e;

	if (fd < 0)
		return errno == EEXIST ? -EAGAIN : -errno;
	if (sys_flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno; /* EWOULDBLOCK: a cleaner has it, it will remove it */
		sys_close(fd);
		if (e != EWOULDBLOCK)
			sys_unlink(lock);
		return e == EWOULDBLOCK ? -EAGAIN : -e;
	}
	if (fstat(fd, &a) == 0 &&
		sys_fstatat(AT_FDCWD, lock, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return fd;
	sys_close(fd);
	return -EAGAIN;
}

/*
 * This handle's temp dir <root>/.atrest/tmp/<hex>/, made only once
 * <hex>.lock is held, so a temp dir without its lock file always belongs to
 * a dead process, and a lock file whose flock can be taken too.
 */
static int make_private_tmp(struct fs_backend *fs)
{
	char hex[17], dir[PATH_MAX], lock[PATH_MAX];
	int fd = -EAGAIN;

	for (int tries = 0; fd == -EAGAIN && tries < 8; tries++) {
		GUARD(random_hex(hex));
		GUARD(cat3(dir, fs->root, "/.atrest/tmp/", hex));
		GUARD(cat3(lock, dir, ".lock", ""));
		fd = take_lock(lock);
	}
	if (fd < 0)
		return atrest__error_os(
			ATREST_ERROR, -fd, "fs: cannot create temp lock %s", lock);
	if (sys_mkdir(dir, 0700) != 0) {
		int e = errno;
		sys_unlink(lock);
		sys_close(fd);
		return atrest__error_os(
			ATREST_ERROR, e, "fs: cannot create temp dir %s", dir);
	}
	fs->lock_fd = fd;
	strcpy(fs->tmp, dir);
	return 0;
}

/* Remove <sub> (a temp dir, or a lock file and its dir) when its owner is
 * gone. */
static void clean_one(const char *sub)
{
	char dir[PATH_MAX], lock[PATH_MAX];
	size_t n = strlen(sub);
	int fd;

	if (n > 5 && strcmp(sub + n - 5, ".lock") == 0) {
		fd = sys_open(sub, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return;
		if (sys_flock(fd, LOCK_EX | LOCK_NB) == 0) {
			memcpy(dir, sub, n - 5);
			dir[n - 5] = '\0';
			remove_temp_dir(dir);
			sys_unlink(sub);
		}
		sys_close(fd);
		return;
	}
	/* A dir is made after its lock and removed before it. */
	if (cat3(lock, sub, ".lock", "") == 0 &&
		sys_fstatat(AT_FDCWD, lock, &(struct stat){0}, AT_SYMLINK_NOFOLLOW) !=
			0 &&
		errno == ENOENT)
		remove_temp_dir(sub);
}

static void clean_stale(struct fs_backend *fs)
{
	char dir[PATH_MAX], sub[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (join(dir, fs->root, ".atrest/tmp") != 0 || (d = sys_opendir(dir)) == NULL)
		return;
	while ((de = sys_readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || join(sub, dir, de->d_name) != 0 ||
			strcmp(sub, fs->tmp) == 0)
			continue;
		clean_one(sub);
	}
	sys_closedir(d);
}

static int prepare_locked(struct fs_backend *fs, int create)
{
	int rc;

	GUARD(ensure_root(fs, create));
	/* No store here (1): create nothing, the core finds no keyring. */
	rc = ensure_meta(fs, create);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (fs->lock_fd < 0)
		GUARD(make_private_tmp(fs));
	clean_stale(fs);
	return 0;
}

static int fs_prepare(atrest_backend *b, int create)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	int rc;

	pthread_mutex_lock(&fs->mu);
	rc = prepare_locked(fs, create);
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

/* ---- writing: temp file, fsync, rename (or link), fsync of the dir ---- */

/* An OS error while storing key; a full disk has its own code. */
static int put_err(int e, const char *key, const char *step)
{
	int code = atrest__errno_code(e);

	if (code == ATREST_ENOSPC)
		return atrest__error_os(code, e,
			"fs: cannot store '%s': disk or quota full (%s)", key, step);
	if (code == ATREST_ENOTFOUND || code == ATREST_EEXISTS)
		code = ATREST_ERROR;
	return atrest__error_os(code, e, "fs: cannot store '%s': %s failed", key, step);
}

static int fs_write(atrest_backend_writer *bw, const void *buf, size_t len)
{
	struct fs_writer *w = (struct fs_writer *)bw;
	const char *p = buf;

	ENSURE(!w->failed, ATREST_ERROR, "fs: cannot store '%s': an earlier write failed",
		w->key);
	w->synced = 0;
	while (len > 0) {
		ssize_t n = sys_write(w->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			w->failed = 1;
			return put_err(n < 0 ? errno : EIO, w->key, "write");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Make the parents of dest; AGAIN when one vanished under a delete. */
static int make_parents(struct fs_writer *w)
{
	char dir[PATH_MAX];
	size_t n = (size_t)(strrchr(w->dest, '/') - w->dest);
	int e;

	if (n == w->root_len)
		return 0;
	memcpy(dir, w->dest, n);
	dir[n] = '\0';
	e = mkdirs(dir, w->root_len);
	if (e == ENOENT)
		return AGAIN;
	if (e == ENOTDIR || e == EEXIST)
		return atrest__error(ATREST_EINVAL,
			"fs: cannot store '%s': a parent of it is an object", w->key);
	return e ? put_err(e, w->key, "creating its directories") : 0;
}

/* Publish the temp file under dest; AGAIN when a parent vanished. */
static int place(struct fs_writer *w)
{
	int excl = (w->flags & ATREST_BACKEND_EXCL) != 0, e;

	if (!excl && sys_rename(w->tmp, w->dest) == 0)
		return 0;
	if (excl && sys_link(w->tmp, w->dest) == 0) {
		sys_unlink(w->tmp);
		return 0;
	}
	e = errno;
	if (e == ENOENT)
		return AGAIN;
	ENSURE(!(excl && e == EEXIST), ATREST_EEXISTS,
		"fs: cannot store '%s': it already exists", w->key);
	ENSURE(e != EISDIR && e != EEXIST && e != ENOTEMPTY, ATREST_EINVAL,
		"fs: cannot store '%s': a directory of that name exists", w->key);
	ENSURE(e != ENOTDIR, ATREST_EINVAL,
		"fs: cannot store '%s': a parent of it is an object", w->key);
	return put_err(e, w->key, excl ? "link" : "rename");
}

static int finish(struct fs_writer *w)
{
	int rc = AGAIN, e;

	ENSURE(!w->failed, ATREST_ERROR, "fs: cannot store '%s': an earlier write failed",
		w->key);
	if (!w->synced && !w->nosync && fsync_fd(w->fd) != 0)
		return put_err(errno, w->key, "fsync");
	e = sys_close(w->fd);
	w->fd = -1;
	if (e != 0)
		return put_err(errno, w->key, "close");
	for (int i = 0; i < PLACE_TRIES && rc == AGAIN; i++) {
		rc = make_parents(w);
		if (rc == 0)
			rc = place(w);
	}
	ENSURE(rc != AGAIN, ATREST_ERROR,
		"fs: cannot store '%s': its directory keeps vanishing", w->key);
	if (rc < 0)
		return rc;
	/* ENOENT: a delete of the same key won the race and pruned the dir. */
	e = w->nosync ? 0 : fsync_parent(w->dest);
	return e && e != ENOENT ? put_err(e, w->key, "fsync of the directory") : 0;
}

static int fs_sync(atrest_backend_writer *bw)
{
	struct fs_writer *w = (struct fs_writer *)bw;

	ENSURE(!w->failed, ATREST_ERROR, "fs: cannot store '%s': an earlier write failed",
		w->key);
	if (fsync_fd(w->fd) != 0) {
		w->failed = 1;
		return put_err(errno, w->key, "fsync");
	}
	w->synced = 1;
	return 0;
}

/* The temp file goes on any failure; the writer is freed either way. */
static int fs_commit(atrest_backend_writer *bw)
{
	struct fs_writer *w = (struct fs_writer *)bw;
	int rc = finish(w);

	if (w->fd >= 0)
		sys_close(w->fd);
	if (rc < 0)
		sys_unlink(w->tmp);
	free(w);
	return rc;
}

static void fs_abort(atrest_backend_writer *bw)
{
	struct fs_writer *w = (struct fs_writer *)bw;

	if (w->fd >= 0)
		sys_close(w->fd);
	sys_unlink(w->tmp);
	free(w);
}

static int temp_name(struct fs_backend *fs, char out[PATH_MAX])
{
	char name[32];
	int rc;

	snprintf(name, sizeof(name), "w%lu", atomic_fetch_add(&fs->seq, 1));
	pthread_mutex_lock(&fs->mu);
	if (fs->lock_fd < 0)
		rc = atrest__error(
			ATREST_ENOTFOUND, "fs: no store at %s (not prepared)", fs->root);
	else
		rc = join(out, fs->tmp, name);
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

static int fs_open_write(atrest_backend *b, atrest_backend_writer **out, const char *key,
	unsigned int flags)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	char tmp[PATH_MAX], dest[PATH_MAX];
	size_t tl, dl;
	struct fs_writer *w;

	*out = NULL;
	GUARD(check_key(key));
	GUARD(join(dest, fs->root, key));
	GUARD(temp_name(fs, tmp));
	tl = strlen(tmp) + 1;
	dl = strlen(dest) + 1;
	w = calloc(1, sizeof(*w) + tl + dl + strlen(key) + 1);
	ENSURE(w, ATREST_ERROR, "fs: out of memory");
	memcpy(w->tmp, tmp, tl);
	w->dest = memcpy(w->tmp + tl, dest, dl);
	w->key = strcpy(w->tmp + tl + dl, key);
	w->root_len = strlen(fs->root);
	w->flags = flags;
	w->nosync = fs->nosync;
	w->fd = sys_open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int rc = put_err(errno, key, "creating a temp file");
		free(w);
		return rc;
	}
	w->parent.write = fs_write;
	w->parent.commit = fs_commit;
	w->parent.abort = fs_abort;
	w->parent.sync = fs_sync;
	*out = &w->parent;
	return 0;
}

/* ---- reading ---- */

static int fs_pread(
	atrest_backend_reader *br, void *buf, size_t len, uint64_t off, size_t *got)
{
	struct fs_reader *r = (struct fs_reader *)br;
	size_t done = 0;

	*got = 0;
	ENSURE(len <= INT64_MAX && off <= INT64_MAX - len, ATREST_EINVAL,
		"fs: read of '%s' past the largest offset", r->key);
	while (done < len) {
		ssize_t n = sys_pread(
			r->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return atrest__error_os(
				ATREST_ERROR, errno, "fs: cannot read '%s'", r->key);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static void fs_close(atrest_backend_reader *br)
{
	struct fs_reader *r = (struct fs_reader *)br;

	sys_close(r->fd);
	free(r);
}

/*
 * O_NOFOLLOW: a symlink is not an object (list skips them too); O_NONBLOCK
 * so that a FIFO planted in the store cannot hang the open.
 */
static int open_object(const char *path, const char *key, struct stat *st)
{
	int fd = sys_open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	int e;

	if (fd < 0) {
		e = errno;
		if (e == ENOENT || e == ENOTDIR || e == ELOOP)
			return atrest__error(ATREST_ENOTFOUND, "fs: no object '%s'", key);
		return atrest__error_os(ATREST_ERROR, e, "fs: cannot open '%s'", key);
	}
	if (sys_fstat(fd, st) != 0) {
		e = errno;
		sys_close(fd);
		return atrest__error_os(ATREST_ERROR, e, "fs: cannot stat '%s'", key);
	}
	if (!S_ISREG(st->st_mode)) {
		sys_close(fd);
		return atrest__error(
			ATREST_ENOTFOUND, "fs: no object '%s' (not a regular file)", key);
	}
	return fd;
}

static int fs_open_read(atrest_backend *b, atrest_backend_reader **out, const char *key)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	char path[PATH_MAX];
	struct fs_reader *r;
	struct stat st;
	int fd;

	*out = NULL;
	GUARD(check_key(key));
	GUARD(join(path, fs->root, key));
	GUARD(fd = open_object(path, key, &st));
	r = calloc(1, sizeof(*r) + strlen(key) + 1);
	if (!r) {
		sys_close(fd);
		return atrest__error(ATREST_ERROR, "fs: out of memory");
	}
	strcpy(r->key, key);
	r->fd = fd;
	r->parent.size = (uint64_t)st.st_size;
	r->parent.mtime = (int64_t)st.st_mtime;
	r->parent.pread = fs_pread;
	r->parent.close = fs_close;
	*out = &r->parent;
	return 0;
}

/* ---- listing: a sorted, pruned walk of the tree ---- */

struct ent {
	char *name;
	int dir;
	uint64_t size;
	int64_t mtime;
};

struct walk {
	const char *prefix;
	size_t plen;
	atrest_backend_list_cb cb;
	void *payload;
	size_t rlen;         /* path + rlen is the key (dir keys end in "/") */
	char path[PATH_MAX]; /* <root>/<key so far> */
	struct ent *v;       /* entries being read, of one dir */
	size_t n, cap;
};

/*
 * Byte order of full keys: every key under dir D starts "D/", so D sorts
 * as if its name ended in "/" ("a.txt" < "a/x" < "a0").
 */
static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	const unsigned char *p = (const unsigned char *)x->name;
	const unsigned char *q = (const unsigned char *)y->name;

	for (;; p++, q++) {
		int c = *p ? *p : (x->dir ? '/' : 0);
		int d = *q ? *q : (y->dir ? '/' : 0);
		if (c != d)
			return c - d;
		if (!*p)
			return 0;
	}
}

/* Can name (a file, or a dir as "name/") hold keys starting with prefix? */
static int wanted(const struct walk *w, const char *name, int dir)
{
	size_t base = strlen(w->path + w->rlen), nl = strlen(name);
	const char *rem = w->prefix + base;
	size_t rl;

	if (base >= w->plen)
		return 1;
	rl = w->plen - base;
	if (!dir)
		return nl >= rl && memcmp(name, rem, rl) == 0;
	for (size_t i = 0; i < rl && i <= nl; i++)
		if ((i < nl ? name[i] : '/') != rem[i])
			return 0;
	return 1;
}

static int add_entry(struct walk *w, DIR *d, const struct dirent *de)
{
	struct ent e = {0};
	struct stat st;
	int top = w->path[w->rlen] == '\0';

	if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		(top && strcmp(de->d_name, ".atrest") == 0))
		return 0;
	if (de->d_type == DT_DIR)
		e.dir = 1;
	else if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
		return 0; /* symlinks, devices, FIFOs are not objects */
	if (!wanted(w, de->d_name, e.dir) && de->d_type != DT_UNKNOWN)
		return 0;
	if (!e.dir) {
		if (sys_fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			return 0; /* removed meanwhile */
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			return 0;
		e.dir = S_ISDIR(st.st_mode);
		if (!wanted(w, de->d_name, e.dir))
			return 0;
		e.size = (uint64_t)st.st_size;
		e.mtime = (int64_t)st.st_mtime;
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct ent *v = realloc(w->v, cap * sizeof(*v));
		ENSURE(v, ATREST_ERROR, "fs: out of memory");
		w->v = v;
		w->cap = cap;
	}
	e.name = strdup(de->d_name);
	ENSURE(e.name, ATREST_ERROR, "fs: out of memory");
	w->v[w->n++] = e;
	return 0;
}

/* Read the wanted entries of the dir at w->path into w->v. */
static int read_dir(struct walk *w)
{
	struct dirent *de;
	int rc = 0, e;
	DIR *d = sys_opendir(w->path);

	if (!d) {
		e = errno;
		if (w->path[w->rlen] && (e == ENOENT || e == ENOTDIR))
			return 0; /* removed while we walked */
		return atrest__error_os(e == ENOENT ? ATREST_ENOTFOUND : ATREST_ERROR, e,
			"fs: cannot list %s", w->path);
	}
	for (errno = 0; rc == 0 && (de = sys_readdir(d)) != NULL; errno = 0)
		rc = add_entry(w, d, de);
	if (rc == 0 && errno != 0)
		rc = atrest__error_os(ATREST_ERROR, errno, "fs: cannot list %s", w->path);
	sys_closedir(d);
	return rc;
}

static int walk_dir(struct walk *w);

static int visit(struct walk *w, const struct ent *e)
{
	size_t len = strlen(w->path), nl = strlen(e->name);
	int rc;

	if (len + nl + 2 > sizeof(w->path))
		return 0; /* deeper than any key can be */
	memcpy(w->path + len, e->name, nl + 1);
	if (e->dir) {
		strcpy(w->path + len + nl, "/");
		rc = walk_dir(w);
	} else {
		rc = w->cb(w->path + w->rlen, e->size, e->mtime, w->payload);
	}
	w->path[len] = '\0';
	return rc;
}

/*
 * The dir's entries are read, sorted, and its fd closed before any child
 * is visited: open fds stay bounded however deep the tree is.
 */
static int walk_dir(struct walk *w)
{
	struct ent *v;
	size_t n;
	int rc;

	w->v = NULL;
	w->n = w->cap = 0;
	rc = read_dir(w);
	v = w->v;
	n = w->n;
	w->v = NULL;
	if (rc == 0 && n > 1)
		qsort(v, n, sizeof(*v), ent_cmp);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = visit(w, &v[i]);
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	return rc;
}

static int fs_list(
	atrest_backend *b, const char *prefix, atrest_backend_list_cb cb, void *payload)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	struct walk *w = calloc(1, sizeof(*w));
	int rc;

	ENSURE(w, ATREST_ERROR, "fs: out of memory");
	w->prefix = prefix ? prefix : "";
	w->plen = strlen(w->prefix);
	w->cb = cb;
	w->payload = payload;
	rc = join(w->path, fs->root, "");
	w->rlen = strlen(w->path);
	if (rc == 0)
		rc = walk_dir(w);
	free(w);
	return rc;
}

/* ---- remove, lock, free ---- */

/* rmdir the now empty parents of path, up to (not including) root. */
static void prune_parents(struct fs_backend *fs, char *path)
{
	size_t rl = strlen(fs->root);
	char *slash;

	while ((slash = strrchr(path, '/')) != NULL && (size_t)(slash - path) > rl) {
		*slash = '\0';
		/* ENOTEMPTY or EEXIST (not empty) end it, as does any error. */
		if (strcmp(path + rl, "/.atrest") == 0 || sys_rmdir(path) != 0)
			return;
	}
}

static int fs_remove(atrest_backend *b, const char *key)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	char path[PATH_MAX];
	int e;

	GUARD(check_key(key));
	GUARD(join(path, fs->root, key));
	if (sys_unlink(path) != 0) {
		e = errno;
		if (e == ENOENT || e == ENOTDIR || e == EISDIR || e == EPERM)
			return atrest__error(ATREST_ENOTFOUND, "fs: no object '%s'", key);
		return atrest__error_os(ATREST_ERROR, e, "fs: cannot delete '%s'", key);
	}
	e = fsync_parent(path);
	if (e && e != ENOENT) /* ENOENT: a sibling's delete pruned the dir */
		return atrest__error_os(ATREST_ERROR, e,
			"fs: deleted '%s' but fsync of its directory failed", key);
	prune_parents(fs, path);
	return 0;
}

static int fs_lock(atrest_backend *b, atrest_backend_lock **out)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	char path[PATH_MAX];
	struct fs_lock *l;
	int fd, e;

	*out = NULL;
	GUARD(join(path, fs->root, ".atrest/lock"));
	fd = sys_open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return atrest__error_os(errno == ENOENT ? ATREST_ENOTFOUND : ATREST_ERROR,
			errno, "fs: cannot open %s", path);
	while ((e = sys_flock(fd, LOCK_EX)) != 0 && errno == EINTR)
		;
	if (e != 0 || (l = malloc(sizeof(*l))) == NULL) {
		e = e ? errno : ENOMEM;
		sys_close(fd);
		return atrest__error_os(ATREST_ERROR, e, "fs: cannot lock %s", path);
	}
	l->fd = fd;
	*out = (atrest_backend_lock *)l;
	return 0;
}

static void fs_unlock(atrest_backend *b, atrest_backend_lock *bl)
{
	struct fs_lock *l = (struct fs_lock *)bl;

	(void)b;
	if (!l)
		return;
	sys_flock(l->fd, LOCK_UN);
	sys_close(l->fd);
	free(l);
}

/* The temp dir goes first, the lock after: no cleaner races our unlinks. */
static void fs_free(atrest_backend *b)
{
	struct fs_backend *fs = (struct fs_backend *)b;

	if (!fs)
		return;
	if (fs->lock_fd >= 0) {
		char lock[PATH_MAX];
		remove_temp_dir(fs->tmp);
		if (cat3(lock, fs->tmp, ".lock", "") == 0)
			sys_unlink(lock);
		sys_close(fs->lock_fd);
	}
	pthread_mutex_destroy(&fs->mu);
	free(fs);
}

static const atrest_backend fs_vtable = {
	.version = ATREST_BACKEND_VERSION,
	.name = "fs",
	.prepare = fs_prepare,
	.open_write = fs_open_write,
	.open_read = fs_open_read,
	.list = fs_list,
	.remove = fs_remove,
	.lock = fs_lock,
	.unlock = fs_unlock,
	.free = fs_free,
};

int atrest_backend_fs(atrest_backend **out, const char *root)
{
	return atrest__backend_fs_new(out, root, 0);
}

int atrest__backend_fs_new(atrest_backend **out, const char *root, int nosync)
{
	struct fs_backend *fs;
	size_t n;

	ENSURE(out, ATREST_EINVAL, "fs: no place for the backend");
	*out = NULL;
	ENSURE(root && *root, ATREST_EINVAL, "fs: empty store path");
	n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	/* Room for the longest internal path plus a key of 1024 bytes. */
	ENSURE(n < PATH_MAX - 1100, ATREST_EINVAL, "fs: store path too long");
	fs = calloc(1, sizeof(*fs) + n + 1);
	ENSURE(fs, ATREST_ERROR, "fs: out of memory");
	memcpy(fs->root, root, n);
	fs->parent = fs_vtable;
	fs->lock_fd = -1;
	fs->nosync = nosync;
	atomic_init(&fs->seq, 0);
	pthread_mutex_init(&fs->mu, NULL);
	*out = &fs->parent;
	return 0;
}
