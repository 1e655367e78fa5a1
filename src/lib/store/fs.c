/*
 * The local directory backend: object "a/b/c" is the file <root>/a/b/c and
 * the store's own files live under <root>/.atrest/.  Every path inside the
 * store is resolved beneath the root without following links; a put is a
 * temp file in this handle's private dir, fsync, rename, fsync of the dir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atrest/sys/backend.h"
#include "common.h"
#include "fs_int.h"

#define PLACE_TRIES 8  /* renames racing a delete of an empty parent */
#define ETAG_HEAD 4096 /* bytes of an object hashed into its etag */
#define COMP_MAX 255   /* bytes of one path component */

static long raw_openat2(int dirfd, const char *path, struct open_how *how, size_t size)
{
	return syscall(SYS_openat2, dirfd, path, how, size);
}

/*
 * Every system call goes through this table so that tests can make any one
 * of them fail (SQLite os_unix.c aSyscall).
 */
typedef void (*fs_fn)(void);

enum {
	SYS_OPENAT,
	SYS_OPENAT2,
	SYS_CLOSE,
	SYS_PREAD,
	SYS_WRITE,
	SYS_FSYNC,
	SYS_FSTAT,
	SYS_FSTATAT,
	SYS_MKDIR,
	SYS_MKDIRAT,
	SYS_UNLINKAT,
	SYS_RENAMEAT,
	SYS_LINKAT,
	SYS_FLOCK,
	SYS_GETRANDOM,
	SYS_FDOPENDIR,
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
	[SYS_OPENAT] = SC(openat),
	[SYS_OPENAT2] = {"openat2", (fs_fn)raw_openat2, (fs_fn)raw_openat2},
	[SYS_CLOSE] = SC(close),
	[SYS_PREAD] = SC(pread),
	[SYS_WRITE] = SC(write),
	[SYS_FSYNC] = SC(fsync),
	[SYS_FSTAT] = SC(fstat),
	[SYS_FSTATAT] = SC(fstatat),
	[SYS_MKDIR] = SC(mkdir),
	[SYS_MKDIRAT] = SC(mkdirat),
	[SYS_UNLINKAT] = SC(unlinkat),
	[SYS_RENAMEAT] = SC(renameat),
	[SYS_LINKAT] = SC(linkat),
	[SYS_FLOCK] = SC(flock),
	[SYS_GETRANDOM] = SC(getrandom),
	[SYS_FDOPENDIR] = SC(fdopendir),
	[SYS_READDIR] = SC(readdir),
	[SYS_CLOSEDIR] = SC(closedir),
};

/* Atomic: a test may swap an entry while a background thread (the
 * flusher of usage counts and audit) calls it. */
#define SYS(id, type) ((type)__atomic_load_n(&fs_syscalls[id].fn, __ATOMIC_ACQUIRE))
#define sys_openat SYS(SYS_OPENAT, int (*)(int, const char *, int, ...))
#define sys_openat2 \
	SYS(SYS_OPENAT2, long (*)(int, const char *, struct open_how *, size_t))
#define sys_close SYS(SYS_CLOSE, int (*)(int))
#define sys_pread SYS(SYS_PREAD, ssize_t (*)(int, void *, size_t, off_t))
#define sys_write SYS(SYS_WRITE, ssize_t (*)(int, const void *, size_t))
#define sys_fsync SYS(SYS_FSYNC, int (*)(int))
#define sys_fstat SYS(SYS_FSTAT, int (*)(int, struct stat *))
#define sys_fstatat SYS(SYS_FSTATAT, int (*)(int, const char *, struct stat *, int))
#define sys_mkdir SYS(SYS_MKDIR, int (*)(const char *, mode_t))
#define sys_mkdirat SYS(SYS_MKDIRAT, int (*)(int, const char *, mode_t))
#define sys_unlinkat SYS(SYS_UNLINKAT, int (*)(int, const char *, int))
#define sys_renameat SYS(SYS_RENAMEAT, int (*)(int, const char *, int, const char *))
#define sys_linkat SYS(SYS_LINKAT, int (*)(int, const char *, int, const char *, int))
#define sys_flock SYS(SYS_FLOCK, int (*)(int, int))
#define sys_getrandom SYS(SYS_GETRANDOM, ssize_t (*)(void *, size_t, unsigned int))
#define sys_fdopendir SYS(SYS_FDOPENDIR, DIR *(*)(int))
#define sys_readdir SYS(SYS_READDIR, struct dirent *(*)(DIR *))
#define sys_closedir SYS(SYS_CLOSEDIR, int (*)(DIR *))

#ifdef ATREST_TEST_HOOKS
int atrest__fs_set_syscall(const char *name, void *fn)
{
	for (int i = 0; i < SYS_COUNT; i++) {
		if (strcmp(fs_syscalls[i].name, name) != 0)
			continue;
		__atomic_store_n(&fs_syscalls[i].fn, fn ? (fs_fn)fn : fs_syscalls[i].dflt,
			__ATOMIC_RELEASE);
		return 0;
	}
	return atrest__error(ATREST_EINVAL, "no system call %s", name);
}
#endif

struct fs_backend {
	atrest_backend parent;
	pthread_mutex_t mu; /* guards the writer state below (made on first use) */
	atomic_ulong seq;   /* names of temp files */
	int root_fd;        /* the store's directory, from prepare on */
	int meta_fd;        /* <root>/.atrest, writers only, or -1 */
	int tmp_fd;         /* <root>/.atrest/tmp, writers only, or -1 */
	int own_fd;         /* <root>/.atrest/tmp/<hex>, writers only, or -1 */
	int lock_fd;        /* <hex>.lock, flock'ed for the handle's life */
	int nosync;         /* ATREST_STORE_NO_SYNC: puts skip fsync */
	char own[24];       /* <hex> */
	char root[];        /* without trailing "/" */
};

struct fs_writer {
	atrest_backend_writer parent;
	struct fs_backend *fs;
	int fd;
	int failed;
	int synced; /* fsync'ed by fs_sync since the last write */
	unsigned int flags;
	char etag[ATREST_BACKEND_ETAG_MAX];
	char tmp[32]; /* name in the handle's temp dir */
	char key[];
};

struct fs_reader {
	atrest_backend_reader parent;
	int fd;
	char key[];
};

/* ---- keys and path resolution beneath the root ---- */

/*
 * Defence in depth: the core validated key already, but whatever reaches
 * here must never name a path outside root nor the handles' temp files.
 */
static int check_key(const char *key)
{
	const char *c = key, *p;

	if (!key || !*key || *key == '/' || strlen(key) > 1200)
		goto bad;
	for (;; c = p + 1) {
		p = strchrnul(c, '/');
		if (p == c || p - c > COMP_MAX || (p - c == 1 && c[0] == '.') ||
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
		"refusing a key that is empty, too long, absolute, has an empty, "
		"\".\" or \"..\" component, or names the store's internals");
}

static int close_keep(int fd)
{
	int e = errno;

	if (fd >= 0)
		sys_close(fd);
	errno = e;
	return -1;
}

/*
 * One component at a time, each opened with O_NOFOLLOW relative to the
 * previous one (kernels without openat2).  rel is n bytes long.
 */
static int walk_beneath(int root, const char *rel, size_t n, int flags)
{
	char comp[COMP_MAX + 1];
	int cur = -1, next;
	size_t i = 0;

	for (;;) {
		const char *p = memchr(rel + i, '/', n - i);
		size_t len = p ? (size_t)(p - (rel + i)) : n - i;
		if (len == 0 || len > COMP_MAX) {
			close_keep(cur);
			errno = EINVAL;
			return -1;
		}
		memcpy(comp, rel + i, len);
		comp[len] = '\0';
		next = sys_openat(cur >= 0 ? cur : root, comp,
			(p ? O_RDONLY | O_DIRECTORY : flags) | O_NOFOLLOW | O_CLOEXEC);
		close_keep(cur);
		if (next < 0 || !p)
			return next;
		cur = next;
		i += len + 1;
	}
}

/*
 * Open the first n bytes of rel (n == 0: the root itself) beneath the root
 * without following any link: openat2 where the kernel has it, else one
 * component at a time.  An fd, or -1 with errno (ELOOP: a link on the way).
 */
static int open_beneath(struct fs_backend *fs, const char *rel, size_t n, int flags)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	char path[PATH_MAX];
	long fd = -1;

	if (n == 0)
		return sys_openat(fs->root_fd, ".", flags | O_CLOEXEC);
	if (n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, rel, n);
	path[n] = '\0';
	for (int tries = 0; tries < 8; tries++) {
		fd = sys_openat2(fs->root_fd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	if (fd < 0 && errno == ENOSYS)
		return walk_beneath(fs->root_fd, rel, n, flags);
	if (fd < 0 && errno == EXDEV)
		errno = ELOOP;
	return (int)fd;
}

/* Length of the first prefix of rel[0..n) that is a symbolic link, or 0. */
static size_t find_link(struct fs_backend *fs, const char *rel, size_t n)
{
	struct stat st;
	size_t i = 0;

	while (i < n) {
		const char *p = memchr(rel + i, '/', n - i);
		size_t end = p ? (size_t)(p - rel) : n;
		/* The dir holding this component: rel[0..i-1), no trailing "/". */
		int dir = end == i
			? -1
			: open_beneath(fs, rel, i ? i - 1 : 0, O_RDONLY | O_DIRECTORY);
		char comp[COMP_MAX + 1];
		int rc;

		if (dir < 0 || end - i > COMP_MAX) {
			close_keep(dir);
			return 0;
		}
		memcpy(comp, rel + i, end - i);
		comp[end - i] = '\0';
		rc = sys_fstatat(dir, comp, &st, AT_SYMLINK_NOFOLLOW);
		sys_close(dir);
		if (rc != 0)
			return 0;
		if (S_ISLNK(st.st_mode))
			return end;
		i = end + 1;
	}
	return 0;
}

/*
 * The error for a failed resolution of rel[0..n): a link on the way is
 * named; else ENOENT and ENOTDIR (a parent is a file) are "not found" for
 * readers (code < 0 given) and errors for writers.
 */
static int path_err(struct fs_backend *fs, const char *key, const char *rel, size_t n,
	int e, const char *what)
{
	size_t link = e == ELOOP || e == ENOTDIR ? find_link(fs, rel, n) : 0;

	if (link)
		return atrest__error(ATREST_ERROR,
			"cannot %s '%s': '%.*s' in store %s is a symbolic link, and "
			"links inside a store are never followed",
			what, key, (int)link, rel, fs->root);
	if (e == ENOENT || e == ENOTDIR || e == ELOOP)
		return atrest__error(
			ATREST_ENOTFOUND, "no object '%s' in store %s", key, fs->root);
	return atrest__error_os(
		atrest__errno_code(e) == ATREST_ENOSPC ? ATREST_ENOSPC : ATREST_ERROR, e,
		"cannot %s '%s'", what, key);
}

static int fsync_fd(int fd)
{
	int rc;

	while ((rc = sys_fsync(fd)) != 0 && errno == EINTR)
		;
	return rc;
}

/* mkdir of name in dir (0700), its entry made durable; 0 or an errno. */
static int mkdir_in(int dir, const char *name)
{
	if (sys_mkdirat(dir, name, 0700) != 0)
		return errno == EEXIST ? 0 : errno;
	return fsync_fd(dir) == 0 ? 0 : errno;
}

/*
 * Open (making what is missing) the directory rel[0..n) beneath the root,
 * one component at a time without following links.  An fd, or -1 with
 * errno.
 */
static int make_dirs(struct fs_backend *fs, const char *rel, size_t n)
{
	char comp[COMP_MAX + 1];
	int cur = -1, next, e;
	size_t i = 0;

	while (i < n) {
		const char *p = memchr(rel + i, '/', n - i);
		size_t len = p ? (size_t)(p - (rel + i)) : n - i;
		int at = cur >= 0 ? cur : fs->root_fd;
		memcpy(comp, rel + i, len);
		comp[len] = '\0';
		next = sys_openat(
			at, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT) {
			e = mkdir_in(at, comp);
			next = e ? (errno = e, -1)
				 : sys_openat(at, comp,
					   O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
						   O_CLOEXEC);
		}
		close_keep(cur);
		if (next < 0)
			return -1;
		cur = next;
		i += len + 1;
	}
	return cur >= 0 ? cur : sys_openat(fs->root_fd, ".", O_RDONLY | O_CLOEXEC);
}

/* The directory part of key: its length (0 at the top) and its basename. */
static size_t dir_len(const char *key, const char **base)
{
	const char *slash = strrchr(key, '/');

	*base = slash ? slash + 1 : key;
	return slash ? (size_t)(slash - key) : 0;
}

/* ---- etags: identity of the file plus a hash of its first bytes ---- */

static uint64_t hash_head(const uint8_t *p, size_t n)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		h = (h ^ v) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

/*
 * A rename leaves a new inode and ctime, but an inode number may be reused
 * within one clock tick: the hash of the head (an object's random salt, a
 * keyring's generation) tells such twins apart.
 */
static int make_etag(char out[ATREST_BACKEND_ETAG_MAX], int fd, const struct stat *st)
{
	uint8_t head[ETAG_HEAD];
	ssize_t n;

	while ((n = sys_pread(fd, head, sizeof(head), 0)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -1;
	snprintf(out, ATREST_BACKEND_ETAG_MAX,
		"%llx-%llx-%llx-%lld.%09ld-%lld.%09ld-%016llx",
		(unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
		(unsigned long long)st->st_size, (long long)st->st_mtim.tv_sec,
		st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec, st->st_ctim.tv_nsec,
		(unsigned long long)hash_head(head, (size_t)n));
	return 0;
}

/* ---- the writer's state: .atrest, .atrest/tmp, a private temp dir ---- */

/*
 * mkdir of the store's root path itself, the last directory only: a
 * missing parent is a typo to report, not a tree to make (ENOENT).  0 or
 * an errno value.
 */
static int mkdir_root(const char *root)
{
	char path[PATH_MAX];
	size_t len = strlen(root);

	if (len >= sizeof(path))
		return ENAMETOOLONG;
	memcpy(path, root, len + 1);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	if (sys_mkdir(path, 0700) != 0 && errno != EEXIST)
		return errno;
	return 0;
}

/*
 * Open (making it) dir name in at, which must be a real directory owned by
 * this user and writable by no one else: other users could plant links in
 * it for the cleanup of stale temp files to follow.
 */
static int private_dir(struct fs_backend *fs, int at, const char *name, const char *shown)
{
	struct stat st;
	int e = mkdir_in(at, name), fd;

	fd = e ? (errno = e, -1)
	       : sys_openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		return atrest__error(ATREST_ERROR,
			"%s/%s is not a directory (a link or a file): refusing to "
			"use the store",
			fs->root, shown);
	if (fd < 0)
		return atrest__error_os(
			e == ENOSPC || e == EDQUOT ? ATREST_ENOSPC : ATREST_ERROR, errno,
			"cannot write to store %s (%s)", fs->root, shown);
	if (sys_fstat(fd, &st) != 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
		sys_close(fd);
		return atrest__error(ATREST_ERROR,
			"%s/%s is owned by another user or writable by others: "
			"refusing to write to the store",
			fs->root, shown);
	}
	return fd;
}

static int random_hex(char out[17])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char r[8];
	ssize_t n;

	while ((n = sys_getrandom(r, sizeof(r), 0)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(r))
		return atrest__error_os(ATREST_ERROR, n < 0 ? errno : EIO, "getrandom");
	for (int i = 0; i < 8; i++) {
		out[2 * i] = digits[r[i] >> 4];
		out[2 * i + 1] = digits[r[i] & 15];
	}
	out[16] = '\0';
	return 0;
}

/*
 * Take tmp/<hex>.lock: created exclusively and flock'ed.  A cleaner may
 * have taken it between our open and our flock (it looks abandoned for
 * that instant) and removed it; then the name is gone or is another inode,
 * and we start again with a new name.
 */
static int take_lock(int tmp, const char *lock)
{
	struct stat a, b;
	int fd = sys_openat(
		tmp, lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int e;

	if (fd < 0)
		return errno == EEXIST ? -EAGAIN : -errno;
	if (sys_flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno; /* EWOULDBLOCK: a cleaner has it, it will remove it */
		sys_close(fd);
		if (e != EWOULDBLOCK)
			sys_unlinkat(tmp, lock, 0);
		return e == EWOULDBLOCK ? -EAGAIN : -e;
	}
	if (sys_fstat(fd, &a) == 0 &&
		sys_fstatat(tmp, lock, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return fd;
	sys_close(fd);
	return -EAGAIN;
}

/*
 * This handle's temp dir tmp/<hex>/, made only once <hex>.lock is held, so
 * a temp dir without its lock file always belongs to a dead process, and a
 * lock file whose flock can be taken too.
 */
static int make_own_tmp(struct fs_backend *fs, int *own)
{
	char hex[17], lock[24];
	int fd = -EAGAIN, e;

	for (int tries = 0; fd == -EAGAIN && tries < 8; tries++) {
		GUARD(random_hex(hex));
		snprintf(lock, sizeof(lock), "%s.lock", hex);
		fd = take_lock(fs->tmp_fd, lock);
	}
	if (fd < 0)
		return atrest__error_os(ATREST_ERROR, -fd,
			"cannot create a temp lock in %s/.atrest/tmp", fs->root);
	e = mkdir_in(fs->tmp_fd, hex);
	*own = e ? (errno = e, -1)
		 : sys_openat(fs->tmp_fd, hex,
			   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*own < 0) {
		e = errno;
		sys_unlinkat(fs->tmp_fd, lock, 0);
		sys_close(fd);
		return atrest__error_os(ATREST_ERROR, e,
			"cannot create a temp dir in %s/.atrest/tmp", fs->root);
	}
	fs->lock_fd = fd;
	strcpy(fs->own, hex);
	return 0;
}

/* Remove a flat temp dir (name in at) and its files; never follows links. */
static void remove_temp_dir(int at, const char *name)
{
	struct dirent *de;
	struct stat st;
	int fd = sys_openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			sys_unlinkat(at, name, 0); /* a planted link: only it goes */
		return;
	}
	if (sys_fstat(fd, &st) != 0 || st.st_uid != geteuid() ||
		(d = sys_fdopendir(fd)) == NULL) {
		sys_close(fd);
		return;
	}
	while ((de = sys_readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			sys_unlinkat(dirfd(d), de->d_name, 0);
	sys_closedir(d);
	sys_unlinkat(at, name, AT_REMOVEDIR);
}

/* Remove entry name of tmp when its owner is gone; 1 when it was. */
static int clean_one(int tmp, const char *name)
{
	size_t n = strlen(name);
	char dir[NAME_MAX + 1];
	struct stat st;
	int fd, dead;

	if (sys_fstatat(tmp, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
		sys_unlinkat(tmp, name, 0); /* links, FIFOs: never ours */
		return 1;
	}
	if (S_ISREG(st.st_mode) && n > 5 && strcmp(name + n - 5, ".lock") == 0) {
		/* O_NONBLOCK: a FIFO swapped in meanwhile cannot hang us. */
		fd = sys_openat(
			tmp, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return 0;
		dead = sys_fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			sys_flock(fd, LOCK_EX | LOCK_NB) == 0;
		if (dead) {
			memcpy(dir, name, n - 5);
			dir[n - 5] = '\0';
			remove_temp_dir(tmp, dir);
			sys_unlinkat(tmp, name, 0);
		}
		sys_close(fd);
		return dead;
	}
	/* A dir is made after its lock and removed before it. */
	if (S_ISDIR(st.st_mode) && n + 6 <= sizeof(dir)) {
		snprintf(dir, sizeof(dir), "%s.lock", name);
		if (sys_fstatat(tmp, dir, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
			errno == ENOENT) {
			remove_temp_dir(tmp, name);
			return 1;
		}
	}
	return 0;
}

/* The temp files of dead handles; how many entries went. */
static uint64_t clean_stale(struct fs_backend *fs)
{
	size_t ol = strlen(fs->own);
	struct dirent *de;
	int fd = sys_openat(fs->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? sys_fdopendir(fd) : NULL;
	uint64_t n = 0;

	if (!d) {
		close_keep(fd);
		return 0;
	}
	while ((de = sys_readdir(d)) != NULL) {
		if (de->d_name[0] == '.' ||
			(strncmp(de->d_name, fs->own, ol) == 0 &&
				(!de->d_name[ol] || !strcmp(de->d_name + ol, ".lock"))))
			continue;
		n += (uint64_t)clean_one(fs->tmp_fd, de->d_name);
	}
	sys_closedir(d);
	return n;
}

/*
 * What a writer needs, made on first need so that readers of a read-only
 * store need nothing: .atrest and .atrest/tmp (real directories of this
 * user), this handle's temp dir, and the removal of dead handles' ones.
 */
static int writable_locked(struct fs_backend *fs, uint64_t *cleaned)
{
	int fd, own = -1;
	uint64_t n;

	if (cleaned)
		*cleaned = 0;
	if (fs->own_fd >= 0)
		return 0;
	ENSURE(fs->root_fd >= 0, ATREST_ENOTFOUND, "no store at %s (not prepared)",
		fs->root);
	if (fs->meta_fd < 0) {
		GUARD(fd = private_dir(fs, fs->root_fd, ".atrest", ".atrest"));
		fs->meta_fd = fd;
	}
	if (fs->tmp_fd < 0) {
		GUARD(fd = private_dir(fs, fs->meta_fd, "tmp", ".atrest/tmp"));
		fs->tmp_fd = fd;
	}
	GUARD(make_own_tmp(fs, &own));
	n = clean_stale(fs);
	if (cleaned)
		*cleaned = n;
	/* Published last: writers that see it skip the mutex. */
	__atomic_store_n(&fs->own_fd, own, __ATOMIC_RELEASE);
	return 0;
}

static int writable(struct fs_backend *fs)
{
	int rc;

	if (__atomic_load_n(&fs->own_fd, __ATOMIC_ACQUIRE) >= 0)
		return 0;
	pthread_mutex_lock(&fs->mu);
	rc = writable_locked(fs, NULL);
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

/* An OS error while storing key; a full disk has its own code. */
static int put_err(int e, const char *key, const char *step)
{
	int code = atrest__errno_code(e);

	if (code == ATREST_ENOSPC)
		return atrest__error_os(
			code, e, "cannot store '%s': disk or quota full (%s)", key, step);
	if (code == ATREST_ENOTFOUND || code == ATREST_EEXISTS)
		code = ATREST_ERROR;
	return atrest__error_os(code, e, "cannot store '%s': %s failed", key, step);
}

/*
 * The store-wide lock that makes conditional puts exact: held exclusively
 * to check a condition and publish, shared by plain puts and removes.  A
 * fresh open file description each time, so threads exclude each other as
 * processes do.  An fd, or a negative code.
 */
static int publish_lock(struct fs_backend *fs, int op, const char *key)
{
	struct stat st;
	int fd = sys_openat(fs->meta_fd, "lock",
		O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	int e;

	if (fd < 0)
		return put_err(errno, key, "opening the store's lock");
	if (sys_fstat(fd, &st) != 0) {
		e = errno;
		sys_close(fd);
		return put_err(e, key, "checking the store's lock");
	}
	if (!S_ISREG(st.st_mode)) {
		sys_close(fd);
		return atrest__error(ATREST_ERROR,
			"cannot store '%s': %s/.atrest/lock is not a regular file", key,
			fs->root);
	}
	while ((e = sys_flock(fd, op)) != 0 && errno == EINTR)
		;
	if (e != 0) {
		e = errno;
		sys_close(fd);
		return put_err(e, key, "locking the store");
	}
	return fd;
}

static void publish_unlock(int fd)
{
	sys_flock(fd, LOCK_UN);
	sys_close(fd);
}

/* ---- prepare ---- */

static int prepare_locked(struct fs_backend *fs, int create)
{
	struct stat st;
	int fd, e;

	if (fs->root_fd >= 0)
		return create ? writable_locked(fs, NULL) : 0;
	fd = sys_openat(AT_FDCWD, fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		e = mkdir_root(fs->root);
		ENSURE(e != ENOENT, ATREST_ENOTFOUND,
			"cannot create store %s: its parent directory does not exist "
			"(only the store's own directory is made)",
			fs->root);
		if (e)
			return atrest__error_os(
				e == ENOSPC || e == EDQUOT ? ATREST_ENOSPC : ATREST_ERROR,
				e, "cannot create store %s", fs->root);
		fd = sys_openat(AT_FDCWD, fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0) {
		e = errno;
		ENSURE(e != ENOENT, ATREST_ENOTFOUND, "no store at %s", fs->root);
		ENSURE(e != ENOTDIR, ATREST_EINVAL, "store path %s is not a directory",
			fs->root);
		return atrest__error_os(
			ATREST_ERROR, e, "cannot open store %s", fs->root);
	}
	if (sys_fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		sys_close(fd);
		return atrest__error(
			ATREST_EINVAL, "store path %s is not a directory", fs->root);
	}
	fs->root_fd = fd;
	return create ? writable_locked(fs, NULL) : 0;
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

static int fs_write(atrest_backend_writer *bw, const void *buf, size_t len)
{
	struct fs_writer *w = (struct fs_writer *)bw;
	const char *p = buf;

	ENSURE(!w->failed, ATREST_ERROR, "cannot store '%s': an earlier write failed",
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

/* The etag of base in dir, or "" when it is not there. */
static int current_etag(int dir, const char *base, char out[ATREST_BACKEND_ETAG_MAX])
{
	struct stat st;
	int fd = sys_openat(dir, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	out[0] = '\0';
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? 0 : -1;
	if (sys_fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
		make_etag(out, fd, &st) != 0)
		out[0] = '\0';
	sys_close(fd);
	return 0;
}

/*
 * KEEP_ATTRS: the replaced file's owner, group, mode and times onto the
 * temp file, before it takes its place.  An owner this process may not
 * give (it is not root) stays its own, as for any write.
 */
static int keep_attrs(struct fs_writer *w, int dir, const char *base)
{
	int own = w->fs->own_fd;
	struct timespec t[2];
	struct stat old;

	if (sys_fstatat(dir, base, &old, AT_SYMLINK_NOFOLLOW) != 0)
		return put_err(errno, w->key, "reading the owner and mode it replaces");
	if (fchownat(own, w->tmp, old.st_uid, old.st_gid, AT_SYMLINK_NOFOLLOW) != 0 &&
		errno != EPERM)
		return put_err(errno, w->key, "keeping its owner");
	/* After chown, which may clear the set-id bits. */
	if (fchmodat(own, w->tmp, old.st_mode & 07777, 0) != 0)
		return put_err(errno, w->key, "keeping its mode");
	t[0] = old.st_atim;
	t[1] = old.st_mtim;
	if (utimensat(own, w->tmp, t, AT_SYMLINK_NOFOLLOW) != 0)
		return put_err(errno, w->key, "keeping its modification time");
	return 0;
}

/*
 * Publish the temp file as base in dir, under the publish lock; 1 when the
 * directory vanished under a delete (try again).
 */
static int place(struct fs_writer *w, int dir, const char *base)
{
	struct fs_backend *fs = w->fs;
	int cond = w->flags & (ATREST_BACKEND_IF_ABSENT | ATREST_BACKEND_IF_MATCH);
	char now[ATREST_BACKEND_ETAG_MAX];
	int lock = publish_lock(fs, cond ? LOCK_EX : LOCK_SH, w->key), rc = 0, e = 0;

	GUARD(lock);
	if (w->flags & ATREST_BACKEND_IF_MATCH) {
		if (current_etag(dir, base, now) != 0)
			rc = put_err(errno, w->key, "checking its version");
		else if (strcmp(now, w->etag) != 0)
			rc = atrest__error(ATREST_ECONFLICT,
				"'%s' was changed by someone else meanwhile", w->key);
		else if (w->flags & ATREST_BACKEND_KEEP_ATTRS)
			rc = keep_attrs(w, dir, base);
	}
	if (rc == 0 && (w->flags & ATREST_BACKEND_IF_ABSENT)) {
		if (sys_linkat(fs->own_fd, w->tmp, dir, base, 0) == 0)
			sys_unlinkat(fs->own_fd, w->tmp, 0);
		else
			e = errno;
	} else if (rc == 0 && sys_renameat(fs->own_fd, w->tmp, dir, base) != 0) {
		e = errno;
	}
	publish_unlock(lock);
	if (rc < 0 || e == 0)
		return rc;
	if (e == ENOENT)
		return 1;
	ENSURE(e != EEXIST || !(w->flags & ATREST_BACKEND_IF_ABSENT), ATREST_EEXISTS,
		"cannot store '%s': it already exists", w->key);
	ENSURE(e != EISDIR && e != EEXIST && e != ENOTEMPTY, ATREST_EINVAL,
		"cannot store '%s': a directory of that name exists", w->key);
	return put_err(
		e, w->key, (w->flags & ATREST_BACKEND_IF_ABSENT) ? "link" : "rename");
}

/* Open the destination's directory (making it) and publish there. */
static int place_in_dir(struct fs_writer *w, int *dir_out)
{
	const char *base;
	size_t n = dir_len(w->key, &base);
	int dir = make_dirs(w->fs, w->key, n), rc;

	*dir_out = -1;
	if (dir < 0) {
		int e = errno;
		if (e == ENOENT)
			return 1;
		if (e == ENOTDIR && !find_link(w->fs, w->key, n))
			return atrest__error(ATREST_EINVAL,
				"cannot store '%s': a parent of it is an object", w->key);
		if (e == ELOOP || e == ENOTDIR)
			return path_err(w->fs, w->key, w->key, n, e, "store");
		return put_err(e, w->key, "creating its directories");
	}
	rc = place(w, dir, base);
	if (rc != 0)
		sys_close(dir);
	else
		*dir_out = dir;
	return rc;
}

static int finish(struct fs_writer *w)
{
	int rc = 1, e, dir = -1;

	ENSURE(!w->failed, ATREST_ERROR, "cannot store '%s': an earlier write failed",
		w->key);
	if (!w->synced && !w->fs->nosync && fsync_fd(w->fd) != 0)
		return put_err(errno, w->key, "fsync");
	e = sys_close(w->fd);
	w->fd = -1;
	if (e != 0)
		return put_err(errno, w->key, "close");
	for (int i = 0; i < PLACE_TRIES && rc == 1; i++)
		rc = place_in_dir(w, &dir);
	ENSURE(rc != 1, ATREST_ERROR, "cannot store '%s': its directory keeps vanishing",
		w->key);
	if (rc < 0)
		return rc;
	e = w->fs->nosync || fsync_fd(dir) == 0 ? 0 : errno;
	sys_close(dir);
	return e ? put_err(e, w->key, "fsync of the directory") : 0;
}

static int fs_sync(atrest_backend_writer *bw)
{
	struct fs_writer *w = (struct fs_writer *)bw;

	ENSURE(!w->failed, ATREST_ERROR, "cannot store '%s': an earlier write failed",
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
		sys_unlinkat(w->fs->own_fd, w->tmp, 0);
	free(w);
	return rc;
}

static void fs_abort(atrest_backend_writer *bw)
{
	struct fs_writer *w = (struct fs_writer *)bw;

	if (w->fd >= 0)
		sys_close(w->fd);
	sys_unlinkat(w->fs->own_fd, w->tmp, 0);
	free(w);
}

static int fs_open_write(atrest_backend *b, atrest_backend_writer **out, const char *key,
	unsigned int flags, const char *etag)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	struct fs_writer *w;

	*out = NULL;
	GUARD(check_key(key));
	ENSURE(!(flags & ATREST_BACKEND_IF_MATCH) ||
			(etag && strlen(etag) < ATREST_BACKEND_ETAG_MAX),
		ATREST_EINVAL, "a conditional put of '%s' without an etag", key);
	GUARD(writable(fs));
	w = calloc(1, sizeof(*w) + strlen(key) + 1);
	ENSURE(w, ATREST_ERROR, "out of memory");
	strcpy(w->key, key);
	if (flags & ATREST_BACKEND_IF_MATCH)
		strcpy(w->etag, etag);
	w->fs = fs;
	w->flags = flags;
	snprintf(w->tmp, sizeof(w->tmp), "w%lu", atomic_fetch_add(&fs->seq, 1));
	w->fd = sys_openat(fs->own_fd, w->tmp,
		O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int rc = put_err(errno, key, "creating a temp file");
		free(w);
		return rc;
	}
	w->parent.version = ATREST_BACKEND_WRITER_VERSION;
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
		"read of '%s' past the largest offset", r->key);
	while (done < len) {
		ssize_t n = sys_pread(
			r->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return atrest__error_os(
				ATREST_ERROR, errno, "cannot read '%s'", r->key);
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

/* O_NONBLOCK: a FIFO planted in the store cannot hang the open. */
static int open_object(struct fs_backend *fs, const char *key, struct stat *st)
{
	int fd = open_beneath(fs, key, strlen(key), O_RDONLY | O_NONBLOCK), e;

	if (fd < 0)
		return path_err(fs, key, key, strlen(key), errno, "read");
	if (sys_fstat(fd, st) != 0) {
		e = errno;
		sys_close(fd);
		return atrest__error_os(ATREST_ERROR, e, "cannot stat '%s'", key);
	}
	if (!S_ISREG(st->st_mode)) {
		sys_close(fd);
		return atrest__error(ATREST_ENOTFOUND,
			"no object '%s' in store %s (not a regular file)", key, fs->root);
	}
	return fd;
}

static int fs_open_read(atrest_backend *b, atrest_backend_reader **out, const char *key)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	struct fs_reader *r;
	struct stat st;
	int fd;

	*out = NULL;
	GUARD(check_key(key));
	ENSURE(fs->root_fd >= 0, ATREST_ENOTFOUND, "no store at %s (not prepared)",
		fs->root);
	GUARD(fd = open_object(fs, key, &st));
	r = calloc(1, sizeof(*r) + strlen(key) + 1);
	if (!r || make_etag(r->parent.etag, fd, &st) != 0) {
		int e = r ? errno : ENOMEM;
		free(r);
		sys_close(fd);
		return atrest__error_os(ATREST_ERROR, e, "cannot read '%s'", key);
	}
	strcpy(r->key, key);
	r->fd = fd;
	r->parent.version = ATREST_BACKEND_READER_VERSION;
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
	struct fs_backend *fs;
	const char *prefix;
	size_t plen;
	int internal; /* the prefix is under .atrest/ */
	atrest_backend_list_cb cb;
	void *payload;
	char path[PATH_MAX]; /* the key so far (dirs end in "/") */
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
	size_t base = strlen(w->path), nl = strlen(name);
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

/* The store's internals: .atrest unless asked for, its tmp and lock. */
static int internal_name(const struct walk *w, const char *name)
{
	if (w->path[0] == '\0')
		return strcmp(name, ".atrest") == 0 && !w->internal;
	if (strcmp(w->path, ".atrest/") == 0)
		return strcmp(name, "tmp") == 0 || strcmp(name, "lock") == 0;
	return 0;
}

static int add_entry(struct walk *w, DIR *d, const struct dirent *de)
{
	struct ent e = {0};
	struct stat st;

	if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		internal_name(w, de->d_name))
		return 0;
	if (de->d_type == DT_DIR)
		e.dir = 1;
	else if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
		return 0; /* links, devices, FIFOs are not objects */
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
		ENSURE(v, ATREST_ERROR, "out of memory");
		w->v = v;
		w->cap = cap;
	}
	e.name = strdup(de->d_name);
	ENSURE(e.name, ATREST_ERROR, "out of memory");
	w->v[w->n++] = e;
	return 0;
}

/*
 * Read the wanted entries of the dir w->path into w->v.  The dir is
 * resolved from the root without following links: one that became a link
 * while we walked is skipped, as are links found in it.
 */
static int read_dir(struct walk *w)
{
	size_t len = strlen(w->path);
	struct dirent *de;
	int rc = 0, e;
	int fd = open_beneath(w->fs, w->path, len ? len - 1 : 0, O_RDONLY | O_DIRECTORY);
	DIR *d = fd >= 0 ? sys_fdopendir(fd) : NULL;

	if (!d) {
		e = errno;
		close_keep(fd);
		if (len && (e == ENOENT || e == ENOTDIR || e == ELOOP))
			return 0; /* removed (or replaced by a link) while we walked */
		return atrest__error_os(e == ENOENT ? ATREST_ENOTFOUND : ATREST_ERROR, e,
			"cannot list %s/%s", w->fs->root, w->path);
	}
	for (errno = 0; rc == 0 && (de = sys_readdir(d)) != NULL; errno = 0)
		rc = add_entry(w, d, de);
	if (rc == 0 && errno != 0)
		rc = atrest__error_os(
			ATREST_ERROR, errno, "cannot list %s/%s", w->fs->root, w->path);
	sys_closedir(d);
	return rc;
}

static int walk_dir(struct walk *w);

static int visit(struct walk *w, const struct ent *e)
{
	size_t len = strlen(w->path), nl = strlen(e->name);
	int rc;

	if (len + nl + 2 > sizeof(w->path) || len + nl > 1200)
		return 0; /* deeper than any key can be */
	memcpy(w->path + len, e->name, nl + 1);
	if (e->dir) {
		strcpy(w->path + len + nl, "/");
		rc = walk_dir(w);
	} else {
		rc = w->cb(w->path, e->size, e->mtime, w->payload);
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
	struct walk *w;
	int rc;

	ENSURE(fs->root_fd >= 0, ATREST_ENOTFOUND, "no store at %s (not prepared)",
		fs->root);
	w = calloc(1, sizeof(*w));
	ENSURE(w, ATREST_ERROR, "out of memory");
	w->fs = fs;
	w->prefix = prefix ? prefix : "";
	w->plen = strlen(w->prefix);
	w->internal = strncmp(w->prefix, ".atrest/", 8) == 0;
	w->cb = cb;
	w->payload = payload;
	rc = walk_dir(w);
	free(w);
	return rc;
}

/* ---- remove, free ---- */

/* rmdir the now empty parents of key (the first n bytes are its dir), up to
 * the root, never .atrest itself. */
static void prune_parents(struct fs_backend *fs, const char *key, size_t n)
{
	while (n > 0) {
		const char *slash = memrchr(key, '/', n);
		size_t up = slash ? (size_t)(slash - key) : 0;
		char name[COMP_MAX + 1];
		int dir;

		if ((n == 7 && memcmp(key, ".atrest", 7) == 0) || n - up > COMP_MAX + 1)
			return;
		dir = open_beneath(fs, key, up, O_RDONLY | O_DIRECTORY);
		if (dir < 0)
			return;
		memcpy(name, key + (slash ? up + 1 : 0), n - (slash ? up + 1 : 0));
		name[n - (slash ? up + 1 : 0)] = '\0';
		/* ENOTEMPTY or EEXIST (not empty) end it, as does any error. */
		if (sys_unlinkat(dir, name, AT_REMOVEDIR) != 0) {
			sys_close(dir);
			return;
		}
		fsync_fd(dir);
		sys_close(dir);
		n = up;
	}
}

static int fs_remove(atrest_backend *b, const char *key)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	const char *base;
	size_t n;
	int dir, lock, e = 0;

	GUARD(check_key(key));
	n = dir_len(key, &base);
	GUARD(writable(fs));
	dir = open_beneath(fs, key, n, O_RDONLY | O_DIRECTORY);
	if (dir < 0)
		return path_err(fs, key, key, n, errno, "delete");
	lock = publish_lock(fs, LOCK_SH, key);
	if (lock >= 0 && sys_unlinkat(dir, base, 0) != 0)
		e = errno;
	if (lock >= 0)
		publish_unlock(lock);
	if (lock >= 0 && e == 0 && fsync_fd(dir) != 0) {
		e = errno;
		sys_close(dir);
		return atrest__error_os(ATREST_ERROR, e,
			"deleted '%s' but fsync of its directory failed", key);
	}
	sys_close(dir);
	GUARD(lock);
	if (e == ENOENT || e == ENOTDIR || e == EISDIR || e == EPERM)
		return atrest__error(
			ATREST_ENOTFOUND, "no object '%s' in store %s", key, fs->root);
	if (e)
		return atrest__error_os(ATREST_ERROR, e, "cannot delete '%s'", key);
	prune_parents(fs, key, n);
	return 0;
}

/* The temp dir goes first, the lock after: no cleaner races our unlinks. */
static void fs_free(atrest_backend *b)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	char lock[32];

	if (!fs)
		return;
	if (fs->own_fd >= 0) {
		sys_close(fs->own_fd);
		remove_temp_dir(fs->tmp_fd, fs->own);
		snprintf(lock, sizeof(lock), "%s.lock", fs->own);
		sys_unlinkat(fs->tmp_fd, lock, 0);
		sys_close(fs->lock_fd);
	}
	if (fs->tmp_fd >= 0)
		sys_close(fs->tmp_fd);
	if (fs->meta_fd >= 0)
		sys_close(fs->meta_fd);
	if (fs->root_fd >= 0)
		sys_close(fs->root_fd);
	pthread_mutex_destroy(&fs->mu);
	free(fs);
}

/* Handles that died left their temp dirs: their locks tell, whatever
 * their age. */
static int fs_cleanup(atrest_backend *b, uint64_t older_than, uint64_t *count)
{
	struct fs_backend *fs = (struct fs_backend *)b;
	int rc;

	(void)older_than;
	*count = 0;
	pthread_mutex_lock(&fs->mu);
	rc = writable_locked(fs, count);
	if (rc == 0)
		*count += clean_stale(fs);
	pthread_mutex_unlock(&fs->mu);
	return rc;
}

static const atrest_backend fs_vtable = {
	.version = ATREST_BACKEND_VERSION,
	.name = "fs",
	.prepare = fs_prepare,
	.open_write = fs_open_write,
	.open_read = fs_open_read,
	.list = fs_list,
	.remove = fs_remove,
	.free = fs_free,
	.cleanup = fs_cleanup,
};

int atrest_backend_fs(atrest_backend **out, const char *root)
{
	return atrest__backend_fs_new(out, root, 0);
}

int atrest__backend_fs_new(atrest_backend **out, const char *root, int nosync)
{
	struct fs_backend *fs;
	size_t n;

	ENSURE(out, ATREST_EINVAL, "no place for the backend");
	*out = NULL;
	ENSURE(root && *root, ATREST_EINVAL, "empty store path");
	n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	ENSURE(n < PATH_MAX - 1, ATREST_EINVAL, "store path too long");
	fs = calloc(1, sizeof(*fs) + n + 1);
	ENSURE(fs, ATREST_ERROR, "out of memory");
	memcpy(fs->root, root, n);
	fs->parent = fs_vtable;
	fs->root_fd = fs->meta_fd = fs->tmp_fd = fs->own_fd = fs->lock_fd = -1;
	fs->nosync = nosync;
	atomic_init(&fs->seq, 0);
	pthread_mutex_init(&fs->mu, NULL);
	*out = &fs->parent;
	return 0;
}
