/*
 * A snapshot back on disk: built in a private directory beside the target
 * (locked, so that a later restore can tell a dead one's leftovers), every
 * entry created beneath it without following any link, files written and
 * checked in parallel, metadata set deepest first; only a tree that fully
 * verified is flushed and renamed to the target.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "snap_int.h"

#define RESTORE_BUF (1u << 20)
#define TMP_TAG ".atrest-"

typedef struct rctx {
	atrest_snapshot *s;
	int tmp; /* the private directory */
	int owners, xattrs;
	atrest__snap_prog prog;
	pthread_mutex_t mu;
	atrest_snap_stats st;
} rctx;

static int os_err(int err, const char *what, const char *path)
{
	return atrest__error_os(
		atrest__errno_code(err), err, "%s '%s'", what, *path ? path : ".");
}

static void ts_of(struct timespec ts[2], int64_t ns)
{
	ts[0].tv_sec = (time_t)(ns / 1000000000);
	ts[0].tv_nsec = (long)(ns % 1000000000);
	if (ts[0].tv_nsec < 0) {
		ts[0].tv_nsec += 1000000000;
		ts[0].tv_sec--;
	}
	ts[1] = ts[0];
}

/* Owner, extended attributes, mode and mtime, in the order that keeps
 * each (a chown clears set-id bits and capabilities). */
static int set_meta(rctx *c, int fd, const atrest__snap_ent *e)
{
	struct timespec ts[2];

	if (c->owners && fchown(fd, e->uid, e->gid) != 0)
		return os_err(errno, "setting the owner of", e->path);
	for (size_t k = 0; c->xattrs && k < e->nxattr; k++)
		if (fsetxattr(fd, e->xattrs[k].name, e->xattrs[k].value, e->xattrs[k].len,
			    0) != 0)
			atrest__snap_prog_note(&c->prog, e->path,
				"extended attribute %s not restored: %s",
				e->xattrs[k].name, strerror(errno));
	if (fchmod(fd, e->mode) != 0)
		return os_err(errno, "setting the mode of", e->path);
	ts_of(ts, e->mtime);
	if (futimens(fd, ts) != 0)
		return os_err(errno, "setting the time of", e->path);
	return 0;
}

/* ---- files ---- */

static int create_file(rctx *c, atrest__snap_dirc *dc, const atrest__snap_ent *e, int *fd)
{
	const char *base;
	int dir = atrest__snap_dirc_parent(dc, c->tmp, e->path, &base);

	if (dir < 0)
		return os_err(errno,
			"refusing to create (a link or no directory on the way)",
			e->path);
	*fd = openat(
		dir, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	return *fd < 0 ? os_err(errno, "creating", e->path) : 0;
}

/* One file of object r: its bytes, checked, then its metadata. */
static int restore_file(rctx *c, atrest__snap_dirc *dc, atrest_reader *r,
	atrest__mac *mac, const atrest__snap_ent *e, uint8_t *buf)
{
	int fd = -1, rc;

	GUARD(create_file(c, dc, e, &fd));
	rc = atrest_reader_seek(r, e->off);
	if (rc == 0)
		rc = atrest__mac_reset(mac);
	if (rc == 0)
		rc = atrest__snap_copy(r, e->size, mac, fd, buf, RESTORE_BUF, e->path);
	if (rc == 0)
		rc = atrest__snap_check_hash(mac, e);
	if (rc == 0)
		rc = set_meta(c, fd, e);
	close(fd);
	if (rc == 0)
		atrest__snap_prog_add(&c->prog, 1, e->size);
	return rc;
}

static int restore_obj(void *ctx, size_t k, unsigned slot)
{
	rctx *c = ctx;
	atrest_snapshot *s = c->s;
	uint8_t *buf = malloc(RESTORE_BUF);
	atrest_reader *r = NULL;
	atrest__mac *mac = NULL;
	atrest__snap_dirc dc;
	int rc;

	(void)slot;
	atrest__snap_dirc_init(&dc);
	ENSURE(buf, ATREST_ERROR, "out of memory");
	rc = atrest__snapshot_obj_open(
		&r, s, (uint32_t)k, s->m->ents[s->order[s->start[k]]].path);
	if (rc == 0)
		rc = atrest__snap_mac(&mac, &s->hk, s->st, s->m->objs[k].dek);
	for (size_t j = s->start[k]; rc == 0 && j < s->start[k + 1]; j++)
		rc = restore_file(c, &dc, r, mac, &s->m->ents[s->order[j]], buf);
	atrest__snap_dirc_close(&dc);
	atrest_reader_close(r);
	atrest__mac_free(mac);
	free(buf);
	return rc;
}

/* ---- everything else ---- */

static int make_dir(rctx *c, atrest__snap_dirc *dc, const atrest__snap_ent *e)
{
	const char *base;
	int dir = atrest__snap_dirc_parent(dc, c->tmp, e->path, &base);

	if (dir < 0 || mkdirat(dir, base, 0700) != 0)
		return os_err(errno, "creating directory", e->path);
	return 0;
}

static int make_link(rctx *c, atrest__snap_dirc *dc, const atrest__snap_ent *e)
{
	const atrest__snap_ent *f = &c->s->m->ents[e->link];
	const char *fbase, *base;
	atrest__snap_dirc fc;
	int fdir, dir, rc = 0;

	atrest__snap_dirc_init(&fc);
	fdir = atrest__snap_dirc_parent(&fc, c->tmp, f->path, &fbase);
	dir = atrest__snap_dirc_parent(dc, c->tmp, e->path, &base);
	if (fdir < 0 || dir < 0 || linkat(fdir, fbase, dir, base, 0) != 0)
		rc = os_err(errno, "creating hard link", e->path);
	atrest__snap_dirc_close(&fc);
	return rc;
}

/* Symbolic links: owner and time set on the link itself. */
static int make_symlink(rctx *c, atrest__snap_dirc *dc, const atrest__snap_ent *e)
{
	struct timespec ts[2];
	const char *base;
	int dir = atrest__snap_dirc_parent(dc, c->tmp, e->path, &base);

	if (dir < 0 || symlinkat(e->target, dir, base) != 0)
		return os_err(errno, "creating symbolic link", e->path);
	if (c->owners && fchownat(dir, base, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) != 0)
		return os_err(errno, "setting the owner of", e->path);
	for (size_t k = 0; c->xattrs && k < e->nxattr; k++) {
		char p[64 + 256];
		/* The link itself (l*), reached through its directory's fd. */
		snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dir, base);
		if (lsetxattr(p, e->xattrs[k].name, e->xattrs[k].value, e->xattrs[k].len,
			    0))
			atrest__snap_prog_note(&c->prog, e->path,
				"extended attribute %s not restored: %s",
				e->xattrs[k].name, strerror(errno));
	}
	ts_of(ts, e->mtime);
	if (utimensat(dir, base, ts, AT_SYMLINK_NOFOLLOW) != 0)
		return os_err(errno, "setting the time of", e->path);
	return 0;
}

/* FIFOs, devices (as root) and empty files; their metadata. */
static int make_node(rctx *c, atrest__snap_dirc *dc, const atrest__snap_ent *e)
{
	const char *base;
	int dir = atrest__snap_dirc_parent(dc, c->tmp, e->path, &base), fd, rc;
	mode_t kind = e->type == ATREST__SNAP_FIFO ? S_IFIFO
		: e->type == ATREST__SNAP_CHAR     ? S_IFCHR
		: e->type == ATREST__SNAP_BLOCK    ? S_IFBLK
						   : S_IFREG;

	if (dir < 0)
		return os_err(errno,
			"refusing to create (a link or no directory on the way)",
			e->path);
	if (kind != S_IFREG && mknodat(dir, base, kind | 0600, (dev_t)e->rdev) != 0) {
		if (errno == EPERM && kind != S_IFIFO) {
			atrest__snap_prog_note(&c->prog, e->path,
				"device not restored (only root may create devices)");
			return 0;
		}
		return os_err(errno, "creating", e->path);
	}
	fd = openat(dir, base,
		(kind == S_IFREG ? O_WRONLY | O_CREAT | O_EXCL : O_PATH) | O_NOFOLLOW |
			O_CLOEXEC,
		0600);
	if (fd < 0)
		return os_err(errno, "creating", e->path);
	if (kind == S_IFREG) {
		rc = set_meta(c, fd, e);
	} else { /* O_PATH: through the directory instead */
		struct timespec ts[2];
		ts_of(ts, e->mtime);
		rc = (c->owners &&
			     fchownat(dir, base, e->uid, e->gid, AT_SYMLINK_NOFOLLOW)) ||
				fchmodat(dir, base, e->mode, 0) ||
				utimensat(dir, base, ts, AT_SYMLINK_NOFOLLOW)
			? os_err(errno, "setting the metadata of", e->path)
			: 0;
	}
	close(fd);
	return rc;
}

/* Directories first, in path order (parents before children). */
static int make_dirs(rctx *c)
{
	const atrest__manifest *m = c->s->m;
	atrest__snap_dirc dc;
	int rc = 0;

	atrest__snap_dirc_init(&dc);
	for (size_t i = 1; i < m->nent && rc == 0; i++)
		if (m->ents[i].type == ATREST__SNAP_DIR) {
			rc = make_dir(c, &dc, &m->ents[i]);
			c->st.dirs++;
		}
	atrest__snap_dirc_close(&dc);
	return rc;
}

static int make_others(rctx *c)
{
	const atrest__manifest *m = c->s->m;
	atrest__snap_dirc dc;
	int rc = 0;

	atrest__snap_dirc_init(&dc);
	for (size_t i = 1; i < m->nent && rc == 0; i++) {
		const atrest__snap_ent *e = &m->ents[i];
		switch (e->type) {
		case ATREST__SNAP_FILE:
			if (e->size == 0) {
				rc = make_node(c, &dc, e);
				atrest__snap_prog_add(&c->prog, 1, 0);
			}
			break;
		case ATREST__SNAP_HARDLINK:
			rc = make_link(c, &dc, e);
			c->st.hardlinks++;
			break;
		case ATREST__SNAP_SYMLINK:
			rc = make_symlink(c, &dc, e);
			c->st.symlinks++;
			break;
		case ATREST__SNAP_DIR:
			break;
		default:
			rc = make_node(c, &dc, e);
			c->st.specials++;
		}
	}
	atrest__snap_dirc_close(&dc);
	return rc;
}

/* Directories' metadata last, deepest first, the root's on tmp itself. */
static int dir_meta(rctx *c)
{
	const atrest__manifest *m = c->s->m;

	for (size_t i = m->nent; i-- > 0;) {
		const atrest__snap_ent *e = &m->ents[i];
		int fd, rc;
		if (e->type != ATREST__SNAP_DIR)
			continue;
		fd = atrest__snap_openat(c->tmp, e->path, O_RDONLY | O_DIRECTORY, 0);
		if (fd < 0)
			return os_err(errno, "opening directory", e->path);
		rc = set_meta(c, fd, e);
		close(fd);
		GUARD(rc);
	}
	return 0;
}

static void first_extra(const char *name, void *payload)
{
	char *first = payload;

	if (!*first)
		snprintf(first, SNAP_NAME_MAX, "%s", name);
}

static int build(rctx *c)
{
	atrest_snapshot *s = c->s;
	char extra[SNAP_NAME_MAX] = "";
	size_t n = 0;

	GUARD(make_dirs(c));
	GUARD(atrest__snapshot_plan(s));
	GUARD(atrest__pool_run(atrest__store_pool(s->st), restore_obj, c, s->m->nobj));
	GUARD(make_others(c));
	GUARD(dir_meta(c));
	/* Last, so that an object renamed is reported as the file it held. */
	GUARD(atrest__snapshot_extra(s, &n, first_extra, extra));
	ENSURE(n == 0, ATREST_EINTEGRITY,
		"object %s is not part of snapshot '%s' (added to its set, or renamed)",
		extra, s->m->name);
	return 0;
}

/* ---- the private directory and the rename ---- */

/* dir as a parent directory path and a last component. */
static int split(char **parent, char **base, const char *dir)
{
	size_t n = strlen(dir);
	char *copy, *sl;

	while (n > 1 && dir[n - 1] == '/')
		n--;
	copy = strndup(dir, n);
	ENSURE(copy, ATREST_ERROR, "out of memory");
	sl = strrchr(copy, '/');
	if (!sl) {
		*parent = strdup(".");
		*base = copy;
	} else {
		*base = strdup(sl + 1);
		sl[sl == copy ? 1 : 0] = '\0';
		*parent = copy;
	}
	if (!*parent || !*base || !**base || !strcmp(*base, ".") ||
		!strcmp(*base, "..") || !strcmp(*base, "/")) {
		int bad = *parent && *base;
		free(*parent);
		free(*base);
		*parent = *base = NULL;
		return bad
			? atrest__error(ATREST_EINVAL, "'%s' cannot be restored to", dir)
			: atrest__error(ATREST_ERROR, "out of memory");
	}
	return 0;
}

/* The target may be missing, or an empty directory (replaced). */
static int target_free(int pfd, const char *base, const char *dir, int *exists)
{
	struct stat sb;
	int fd, err;
	DIR *d;
	struct dirent *de;
	int empty = 1;

	*exists = 0;
	if (fstatat(pfd, base, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : os_err(errno, "checking", dir);
	ENSURE(S_ISDIR(sb.st_mode), ATREST_EEXISTS, "'%s' exists", dir);
	fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		err = errno;
		if (fd >= 0)
			close(fd);
		return os_err(err, "checking", dir);
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(d);
	ENSURE(empty, ATREST_EEXISTS, "'%s' exists and is not empty", dir);
	*exists = 1;
	return 0;
}

/* Private directories of restores to the same target whose process is
 * gone (their lock can be taken) are removed. */
static void remove_leftovers(int pfd, const char *base)
{
	size_t n = strlen(base);
	struct dirent *de;
	int fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		const char *x = de->d_name;
		int lf;
		if (x[0] != '.' || strncmp(x + 1, base, n) ||
			strncmp(x + 1 + n, TMP_TAG, 8))
			continue;
		lf = openat(pfd, x, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (lf >= 0 && flock(lf, LOCK_EX | LOCK_NB) == 0)
			(void)atrest__snap_rmtree(pfd, x);
		if (lf >= 0)
			close(lf);
	}
	closedir(d);
}

static int make_tmp(rctx *c, int pfd, const char *base, char *name, size_t cap)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t r[6];

	for (int tries = 0; tries < 16; tries++) {
		GUARD(atrest__rand(r, sizeof(r)));
		snprintf(name, cap, ".%s" TMP_TAG "%c%c%c%c%c%c", base, chars[r[0] % 36],
			chars[r[1] % 36], chars[r[2] % 36], chars[r[3] % 36],
			chars[r[4] % 36], chars[r[5] % 36]);
		if (mkdirat(pfd, name, 0700) == 0)
			break;
		if (errno != EEXIST)
			return os_err(errno, "creating a directory beside", base);
	}
	c->tmp = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->tmp < 0 || flock(c->tmp, LOCK_EX) != 0)
		return os_err(errno, "opening", name);
	return 0;
}

static int publish(rctx *c, int pfd, const char *tmp, const char *base, const char *dir,
	int sync, int exists)
{
	if (sync && syncfs(c->tmp) != 0)
		return os_err(errno, "flushing", dir);
	if (exists ? renameat(pfd, tmp, pfd, base) != 0
		   : renameat2(pfd, tmp, pfd, base, RENAME_NOREPLACE) != 0)
		return os_err(errno, "renaming the restored tree to", dir);
	if (sync && fsync(pfd) != 0)
		return os_err(errno, "flushing the directory of", dir);
	return 0;
}

static int restore(rctx *c, const char *dir, unsigned flags)
{
	char *parent = NULL, *base = NULL, tmp[300];
	int pfd = -1, exists, rc;

	tmp[0] = '\0';
	GUARD(split(&parent, &base, dir));
	ENSURE_OUT(strlen(base) < 255 - 16, ATREST_EINVAL, "'%s': name too long", dir);
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ENSURE_OUT(
		pfd >= 0, atrest__errno_code(errno), "%s: %s", parent, strerror(errno));
	GUARD_OUT(target_free(pfd, base, dir, &exists));
	remove_leftovers(pfd, base);
	GUARD_OUT(make_tmp(c, pfd, base, tmp, sizeof(tmp)));
	GUARD_OUT(build(c));
	GUARD_OUT(target_free(pfd, base, dir, &exists));
	GUARD_OUT(publish(
		c, pfd, tmp, base, dir, !(flags & ATREST_SNAP_RESTORE_NO_SYNC), exists));
	tmp[0] = '\0';
out:
	if (c->tmp >= 0)
		close(c->tmp);
	if (tmp[0])
		(void)atrest__snap_rmtree(pfd, tmp);
	if (pfd >= 0)
		close(pfd);
	free(parent);
	free(base);
	return rc;
}

static int snapshot_restore(atrest_snap_stats *out, atrest_snapshot *s, const char *dir,
	const atrest_snap_restore_options *opts, atrest_snap_progress_cb cb,
	void *payload)
{
	unsigned flags = opts ? opts->flags : 0;
	rctx c;
	int rc;

	if (opts)
		GUARD(atrest__check_version(opts->version,
			ATREST_SNAP_RESTORE_OPTIONS_VERSION,
			"atrest_snap_restore_options"));
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.tmp = -1;
	c.owners = (flags & ATREST_SNAP_RESTORE_OWNERS) ||
		(!(flags & ATREST_SNAP_RESTORE_NO_OWNERS) && geteuid() == 0);
	c.xattrs = !(flags & ATREST_SNAP_RESTORE_NO_XATTRS);
	pthread_mutex_init(&c.mu, NULL);
	atrest__snap_prog_init(&c.prog, cb, payload);
	for (size_t i = 0; i < s->m->nent; i++)
		if (s->m->ents[i].type == ATREST__SNAP_FILE) {
			c.st.files++;
			c.st.bytes += s->m->ents[i].size;
		}
	c.prog.p.files_total = c.st.files;
	c.prog.p.bytes_total = c.st.bytes;
	c.st.objects = s->m->nobj;
	rc = restore(&c, dir, flags);
	atrest__snap_prog_end(&c.prog);
	pthread_mutex_destroy(&c.mu);
	if (out)
		*out = c.st;
	return rc;
}

int atrest_snapshot_restore(atrest_snap_stats *out, atrest_snapshot *s, const char *dir,
	const atrest_snap_restore_options *opts, atrest_snap_progress_cb cb,
	void *payload)
{
	atrest_snap_stats st;
	atrest__op op;
	int rc;

	memset(&st, 0, sizeof(st));
	atrest__op_begin(&op, s->st, ATREST_OP_SNAPSHOT_GET, s->m->name);
	rc = snapshot_restore(&st, s, dir, opts, cb, payload);
	atrest__snap_op_stats(&op, &st);
	if (out)
		*out = st;
	return atrest__op_end(&op, rc);
}
