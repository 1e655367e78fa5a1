/*
 * A directory tree into a snapshot: walk it (nothing followed), compare
 * with the parent, confirm look-alike files by their keyed hash, then read,
 * hash, seal and write the rest on the store's pool: large files one object
 * each, small ones packed a few MiB to an object.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "snap_int.h"

#define LARGE_FILE (1u << 20) /* an object of its own from this size */
#define PACK_MIN (1u << 20)
#define PACK_MAXB (16u << 20)
#define READ_BUF (1u << 20)
#define RACY_NS 2000000000LL /* mtimes this close to the parent's time */

enum { ACT_NONE, ACT_EMPTY, ACT_SHARE, ACT_CONFIRM, ACT_WRITE };

typedef struct titem {
	char *path;
	struct stat sb;
	char *target; /* SYMLINK */
	atrest__snap_xattr *xa;
	uint16_t nxa;
	int type;         /* ATREST__SNAP_*, 0: skipped */
	const char *link; /* HARDLINK: its file's path */
	long pi;          /* the parent's entry at this path, or -1 */
	int act;
} titem;

typedef struct tunit {
	size_t *items;
	size_t n;
	uint64_t bytes;
} tunit;

typedef struct tree {
	atrest_snap *s;
	int root;
	const char *rootpath;
	unsigned flags;
	titem *v;
	size_t n, cap;
	size_t *pass; /* items of the current pass */
	size_t npass;
	tunit *units;
	size_t nunits;
	atrest__snap_prog prog;
	pthread_mutex_t mu; /* guards st */
	atrest_snap_stats st;
} tree;

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* ---- the walk ---- */

static int read_xattrs(titem *it, const char *full)
{
	char names[65536];
	ssize_t n = llistxattr(full, names, sizeof(names));
	size_t count = 0;

	if (n < 0)
		return errno == ENOTSUP
			? 0
			: atrest__error_os(ATREST_ERROR, errno,
				  "listing extended attributes of '%s'", it->path);
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
		count++;
	ENSURE(count <= ATREST__SNAP_XATTRS_MAX, ATREST_ETOOBIG,
		"'%s' has too many extended attributes", it->path);
	it->xa = calloc(count ? count : 1, sizeof(*it->xa));
	ENSURE(it->xa, ATREST_ERROR, "out of memory");
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
		atrest__snap_xattr *x = &it->xa[it->nxa];
		ssize_t vl = lgetxattr(full, names + i, NULL, 0);
		uint8_t *v;
		if (vl < 0 && errno == ENODATA)
			continue;
		ENSURE(vl >= 0 && vl <= ATREST__SNAP_XVALUE_MAX &&
				strlen(names + i) <= 255,
			ATREST_ERROR,
			"extended attribute %s of '%s' unreadable or too large",
			names + i, it->path);
		v = malloc(vl ? (size_t)vl : 1);
		x->name = strdup(names + i);
		it->nxa++;
		x->value = v;
		ENSURE(v && x->name, ATREST_ERROR, "out of memory");
		vl = lgetxattr(full, names + i, v, (size_t)vl);
		ENSURE(vl >= 0, ATREST_ERROR, "extended attribute %s of '%s' changed",
			names + i, it->path);
		x->len = (uint32_t)vl;
	}
	return 0;
}

static int add_item(tree *t, int dfd, const char *name, const char *path)
{
	titem *it;

	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 1024;
		titem *v = realloc(t->v, cap * sizeof(*v));
		ENSURE(v, ATREST_ERROR, "out of memory");
		t->v = v;
		t->cap = cap;
	}
	it = &t->v[t->n];
	memset(it, 0, sizeof(*it));
	it->pi = -1;
	it->path = strdup(path);
	ENSURE(it->path, ATREST_ERROR, "out of memory");
	t->n++;
	if (fstatat(dfd, name, &it->sb, AT_SYMLINK_NOFOLLOW) != 0)
		return atrest__error_os(ATREST_ERROR, errno, "'%s'", path);
	if (S_ISLNK(it->sb.st_mode)) {
		char buf[ATREST__SNAP_TARGET_MAX + 2];
		ssize_t n = readlinkat(dfd, name, buf, sizeof(buf));
		ENSURE(n > 0 && n <= ATREST__SNAP_TARGET_MAX, ATREST_ERROR,
			"symbolic link '%s' unreadable or its target too long", path);
		it->target = strndup(buf, (size_t)n);
		ENSURE(it->target, ATREST_ERROR, "out of memory");
	}
	if (t->flags & ATREST_SNAP_TREE_XATTRS) {
		size_t need = strlen(t->rootpath) + strlen(path) + 2;
		char *full = malloc(need);
		int rc;
		ENSURE(full, ATREST_ERROR, "out of memory");
		snprintf(full, need, "%s/%s", t->rootpath, path);
		rc = read_xattrs(it, full);
		free(full);
		GUARD(rc);
	}
	return 0;
}

static int scan_dir(tree *t, int dfd, const char *rel);

static int scan_entry(tree *t, int dfd, const char *rel, const char *name)
{
	size_t len = strlen(rel) + strlen(name) + 2;
	char *path = malloc(len);
	int rc, sub;

	ENSURE(path, ATREST_ERROR, "out of memory");
	snprintf(path, len, "%s%s%s", rel, *rel ? "/" : "", name);
	rc = strlen(path) > ATREST__SNAP_PATH_MAX
		? atrest__error(ATREST_ETOOBIG, "path too long: '%.64s...'", path)
		: add_item(t, dfd, name, path);
	if (rc == 0 && S_ISDIR(t->v[t->n - 1].sb.st_mode)) {
		sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		rc = sub < 0 ? atrest__error_os(ATREST_ERROR, errno, "'%s'", path)
			     : scan_dir(t, sub, path);
	}
	free(path);
	return rc;
}

/* The names in directory dfd (left open for the caller). */
static int read_names(char ***out, size_t *count, int dfd, const char *rel)
{
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	*out = NULL;
	*count = 0;
	if (!d) {
		rc = atrest__error_os(ATREST_ERROR, errno, "'%s'", *rel ? rel : ".");
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **v =
				realloc(names, (cap = cap ? 2 * cap : 64) * sizeof(*v));
			if (!v)
				rc = atrest__error(ATREST_ERROR, "out of memory");
			else
				names = v;
		}
		if (rc == 0 && !(names[n++] = strdup(de->d_name)))
			rc = atrest__error(ATREST_ERROR, "out of memory");
	}
	if (rc == 0 && errno)
		rc = atrest__error_os(ATREST_ERROR, errno, "reading directory '%s'", rel);
	closedir(d);
	*out = names;
	*count = n;
	return rc;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Directory dfd (taken over): one fd per level stays open. */
static int scan_dir(tree *t, int dfd, const char *rel)
{
	char **names;
	size_t n;
	int rc = read_names(&names, &n, dfd, rel);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = scan_entry(t, dfd, rel, names[i]);
	free_names(names, n);
	close(dfd);
	return rc;
}

/* The root's entries are scanned in parallel, each into a tree of its own. */
typedef struct scan_job {
	tree *subs;
	char **names;
} scan_job;

static int scan_one(void *ctx, size_t i, unsigned slot)
{
	scan_job *j = ctx;

	(void)slot;
	return scan_entry(&j->subs[i], j->subs[i].root, "", j->names[i]);
}

static int scan_root(tree *t)
{
	scan_job j = {NULL, NULL};
	size_t n = 0;
	int rc = read_names(&j.names, &n, t->root, "");

	if (rc == 0 && !(j.subs = calloc(n + 1, sizeof(*j.subs))))
		rc = atrest__error(ATREST_ERROR, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		j.subs[i] = *t;
		j.subs[i].v = NULL;
		j.subs[i].n = j.subs[i].cap = 0;
	}
	if (rc == 0)
		rc = atrest__pool_run(atrest__store_pool(t->s->st), scan_one, &j, n);
	for (size_t i = 0; j.subs && i < n; i++) {
		tree *sub = &j.subs[i];
		for (size_t k = 0; k < sub->n; k++) {
			if (rc == 0 && t->n == t->cap) {
				size_t cap = 2 * t->cap + 1024;
				titem *v = realloc(t->v, cap * sizeof(*v));
				if (!v)
					rc = atrest__error(ATREST_ERROR, "out of memory");
				else
					t->v = v, t->cap = cap;
			}
			if (rc == 0)
				t->v[t->n++] = sub->v[k];
			else
				free(sub->v[k].path), free(sub->v[k].target),
					free(sub->v[k].xa);
		}
		free(sub->v);
	}
	free(j.subs);
	free_names(j.names, n);
	return rc;
}

static int item_cmp(const void *a, const void *b)
{
	return atrest__snap_path_cmp(((const titem *)a)->path, ((const titem *)b)->path);
}

/* ---- classification ---- */

typedef struct inode_ref {
	dev_t dev;
	ino_t ino;
	size_t idx;
} inode_ref;

static int inode_cmp(const void *a, const void *b)
{
	const inode_ref *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Files with several names: the first path (byte order) holds the bytes. */
static int find_hardlinks(tree *t)
{
	inode_ref *r = malloc((t->n + 1) * sizeof(*r));
	size_t n = 0;

	ENSURE(r, ATREST_ERROR, "out of memory");
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].type == ATREST__SNAP_FILE && t->v[i].sb.st_nlink > 1)
			r[n++] = (inode_ref){t->v[i].sb.st_dev, t->v[i].sb.st_ino, i};
	qsort(r, n, sizeof(*r), inode_cmp);
	for (size_t k = 1; k < n; k++) {
		size_t first = k;
		while (first > 0 && r[first - 1].dev == r[k].dev &&
			r[first - 1].ino == r[k].ino)
			first--;
		if (first == k)
			continue;
		t->v[r[k].idx].type = ATREST__SNAP_HARDLINK;
		t->v[r[k].idx].link = t->v[r[first].idx].path;
	}
	free(r);
	return 0;
}

static void classify_file(tree *t, titem *it)
{
	const atrest__manifest *p = t->s->parent;
	const atrest__snap_ent *pe;
	int64_t mt = ns_of(&it->sb.st_mtim);

	it->act = it->sb.st_size == 0 ? ACT_EMPTY : ACT_WRITE;
	if (!p || it->sb.st_size == 0 ||
		(it->pi = atrest__manifest_find(p, it->path)) < 0)
		return;
	pe = &p->ents[it->pi];
	if (pe->type != ATREST__SNAP_FILE || pe->size != (uint64_t)it->sb.st_size)
		return;
	if (pe->mtime == mt && mt < p->created - RACY_NS &&
		!(t->flags & ATREST_SNAP_TREE_CHECKSUM))
		it->act = ACT_SHARE;
	else
		it->act = ACT_CONFIRM;
}

static void classify(tree *t, titem *it)
{
	mode_t m = it->sb.st_mode;

	if (S_ISDIR(m))
		it->type = ATREST__SNAP_DIR;
	else if (S_ISREG(m))
		it->type = ATREST__SNAP_FILE;
	else if (S_ISLNK(m))
		it->type = ATREST__SNAP_SYMLINK;
	else if (S_ISFIFO(m))
		it->type = ATREST__SNAP_FIFO;
	else if (S_ISCHR(m))
		it->type = ATREST__SNAP_CHAR;
	else if (S_ISBLK(m))
		it->type = ATREST__SNAP_BLOCK;
	else
		it->type = 0;
	(void)t;
}

static void entry_of(atrest__snap_ent *e, const titem *it)
{
	memset(e, 0, sizeof(*e));
	e->type = (uint8_t)it->type;
	e->path = it->path;
	e->mode = it->sb.st_mode & ATREST__SNAP_MODE_MASK;
	e->uid = (uint32_t)it->sb.st_uid;
	e->gid = (uint32_t)it->sb.st_gid;
	e->mtime = ns_of(&it->sb.st_mtim);
	e->size = it->type == ATREST__SNAP_FILE ? (uint64_t)it->sb.st_size : 0;
	e->obj = ATREST__SNAP_NOOBJ;
	e->target = it->target;
	e->rdev = (uint64_t)it->sb.st_rdev;
	e->xattrs = it->xa;
	e->nxattr = it->nxa;
}

static void count(tree *t, int type, uint64_t bytes, int shared)
{
	pthread_mutex_lock(&t->mu);
	switch (type) {
	case ATREST__SNAP_DIR:
		t->st.dirs++;
		break;
	case ATREST__SNAP_FILE:
		t->st.files++;
		t->st.bytes += bytes;
		t->st.shared_files += shared != 0;
		t->st.shared_bytes += shared ? bytes : 0;
		break;
	case ATREST__SNAP_SYMLINK:
		t->st.symlinks++;
		break;
	case ATREST__SNAP_HARDLINK:
		t->st.hardlinks++;
		break;
	case 0:
		t->st.skipped++;
		break;
	default:
		t->st.specials++;
	}
	pthread_mutex_unlock(&t->mu);
}

/* ---- reading files ---- */

/*
 * Read item it (hashing into mac, writing into w when set); *n gets the
 * bytes read and *sb the file's state as opened.  A file that is no longer
 * a regular file fails; one whose size changed is stored as read, with a
 * note.
 */
static int pump(tree *t, atrest__snap_dirc *dc, const titem *it, atrest__mac *mac,
	atrest_writer *w, uint8_t *buf, uint64_t *n, struct stat *sb)
{
	const char *base;
	int dir = atrest__snap_dirc_parent(dc, t->root, it->path, &base), rc = 0, fd;
	ssize_t got = 0;

	*n = 0;
	fd = dir < 0 ? -1 : openat(dir, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return atrest__error_os(ATREST_ERROR, errno, "'%s'", it->path);
	if (fstat(fd, sb) != 0 || !S_ISREG(sb->st_mode)) {
		close(fd);
		return atrest__error(
			ATREST_ERROR, "'%s' changed while being read", it->path);
	}
	/* The bytes it had when opened (as tar reads them): a file still
	 * being written is stored as long as it was then. */
	for (uint64_t left = (uint64_t)sb->st_size; left > 0;) {
		got = read(fd, buf, left < READ_BUF ? (size_t)left : READ_BUF);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		left -= (uint64_t)got;
		rc = atrest__mac_update(mac, buf, (size_t)got);
		if (rc == 0 && w)
			rc = atrest_writer_write(w, buf, (size_t)got);
		if (rc < 0)
			break;
		*n += (uint64_t)got;
		if (w)
			atrest__snap_prog_add(&t->prog, 0, (uint64_t)got);
	}
	if (rc == 0 && got < 0)
		rc = atrest__error_os(ATREST_ERROR, errno, "reading '%s'", it->path);

	close(fd);
	if (rc == 0 && (*n != (uint64_t)it->sb.st_size || *n != (uint64_t)sb->st_size))
		atrest__snap_prog_note(&t->prog, it->path,
			"changed while being read (%llu bytes stored, %llu listed)",
			(unsigned long long)*n, (unsigned long long)it->sb.st_size);
	return rc;
}

/* A look-alike of the parent's file: shared when its keyed hash is equal. */
static int confirm_one(void *ctx, size_t k, unsigned slot)
{
	tree *t = ctx;
	titem *it = &t->v[t->pass[k]];
	const atrest__manifest *p = t->s->parent;
	const atrest__snap_ent *pe = &p->ents[it->pi];
	uint8_t hash[ATREST__SNAP_HASH_LEN], *buf = malloc(READ_BUF);
	atrest__mac *mac = NULL;
	atrest__snap_dirc dc;
	struct stat sb;
	uint64_t n = 0;
	int rc;

	(void)slot;
	ENSURE(buf, ATREST_ERROR, "out of memory");
	atrest__snap_dirc_init(&dc);
	rc = atrest__snap_mac(&mac, &t->s->hk, t->s->st, p->objs[pe->obj].dek);
	if (rc == 0)
		rc = pump(t, &dc, it, mac, NULL, buf, &n, &sb);
	atrest__snap_dirc_close(&dc);
	if (rc == 0)
		rc = atrest__mac_final(mac, hash);
	if (rc == 0 && n == pe->size && atrest__ct_equal(hash, pe->hash, sizeof(hash))) {
		it->sb.st_mode = sb.st_mode;
		it->sb.st_mtim = sb.st_mtim;
		it->act = ACT_SHARE;
	} else if (rc == 0) {
		it->act = ACT_WRITE;
	}
	atrest__mac_free(mac);
	free(buf);
	return rc;
}

/* One file of a unit: its bytes appended to the object, its entry. */
static int fill_one(tree *t, atrest__snap_dirc *dc, const titem *it, atrest__snap_ent *e,
	atrest_writer *w, atrest__snap_obj *o, atrest__mac *mac, uint8_t *buf)
{
	struct stat sb;
	uint64_t n;

	entry_of(e, it);
	GUARD(atrest__mac_reset(mac));
	GUARD(pump(t, dc, it, mac, w, buf, &n, &sb));
	GUARD(atrest__mac_final(mac, e->hash));
	e->mode = sb.st_mode & ATREST__SNAP_MODE_MASK;
	e->uid = (uint32_t)sb.st_uid;
	e->gid = (uint32_t)sb.st_gid;
	e->mtime = ns_of(&sb.st_mtim);
	e->size = n;
	e->off = n ? o->size : 0;
	o->size += n;
	if (n == 0)
		memset(e->hash, 0, sizeof(e->hash));
	atrest__snap_prog_add(&t->prog, 1, 0);
	return 0;
}

/* Files of one unit, into one object; ents[i] gets item i's entry. */
static int fill_unit(tree *t, const tunit *un, atrest__snap_ent *ents, atrest_writer *w,
	atrest__snap_obj *o, atrest__mac *mac, uint8_t *buf)
{
	atrest__snap_dirc dc;
	int rc = 0;

	atrest__snap_dirc_init(&dc);
	for (size_t i = 0; i < un->n && rc == 0; i++)
		rc = fill_one(t, &dc, &t->v[un->items[i]], &ents[i], w, o, mac, buf);
	atrest__snap_dirc_close(&dc);
	return rc;
}

/* Publish the unit's object and add its entries. */
static int add_unit(tree *t, const tunit *un, atrest__snap_ent *ents, atrest_writer *w,
	atrest__snap_obj *o)
{
	uint32_t idx = ATREST__SNAP_NOOBJ;
	int rc = 0;

	if (o->size == 0) {
		atrest_writer_abort(w);
	} else {
		GUARD(atrest_writer_commit(w));
		GUARD(atrest__snap_add_obj(t->s, o, &idx));
	}
	pthread_mutex_lock(&t->s->mu);
	for (size_t i = 0; i < un->n && rc == 0; i++) {
		ents[i].obj = ents[i].size ? idx : ATREST__SNAP_NOOBJ;
		rc = atrest__snap_add_ent(t->s, &ents[i], NULL, 1);
	}
	pthread_mutex_unlock(&t->s->mu);
	for (size_t i = 0; i < un->n; i++)
		count(t, ATREST__SNAP_FILE, ents[i].size, 0);
	pthread_mutex_lock(&t->mu);
	t->st.objects += o->size != 0;
	t->st.stored_bytes += o->size;
	pthread_mutex_unlock(&t->mu);
	GUARD(rc);
	return atrest__snap_tick(t->s, 0);
}

static int run_unit(void *ctx, size_t u, unsigned slot)
{
	tree *t = ctx;
	const tunit *un = &t->units[u];
	atrest__snap_ent *ents = calloc(un->n, sizeof(*ents));
	uint8_t *buf = malloc(READ_BUF);
	atrest_writer *w = NULL;
	atrest__mac *mac = NULL;
	atrest__snap_obj o;
	int rc;

	(void)slot;
	rc = ents && buf ? atrest__snap_open_obj(&w, &o, t->s)
			 : atrest__error(ATREST_ERROR, "out of memory");
	if (rc == 0)
		rc = atrest__snap_mac(&mac, &t->s->hk, t->s->st, o.dek);
	if (rc == 0)
		rc = fill_unit(t, un, ents, w, &o, mac, buf);
	if (rc == 0) {
		rc = add_unit(t, un, ents, w, &o);
		w = NULL;
	}
	if (w)
		atrest_writer_abort(w);
	atrest__mac_free(mac);
	free(ents);
	free(buf);
	return rc;
}

/* ---- the passes ---- */

static int size_desc(const void *a, const void *b, void *ctx)
{
	const tree *t = ctx;
	off_t x = t->v[*(const size_t *)a].sb.st_size,
	      y = t->v[*(const size_t *)b].sb.st_size;

	return x > y ? -1 : x < y;
}

static int unit_add(tunit *u, size_t i, uint64_t sz)
{
	if ((u->n & (u->n - 1)) == 0) { /* 0, 1, 2, 4...: full */
		size_t *v = realloc(u->items, (u->n ? 2 * u->n : 1) * sizeof(*v));
		ENSURE(v, ATREST_ERROR, "out of memory");
		u->items = v;
	}
	u->items[u->n++] = i;
	u->bytes += sz;
	return 0;
}

/*
 * Units of work: large files alone (largest first, to balance threads),
 * then small ones in path order, packed up to a size that gives every
 * thread a few packs.
 */
static int make_units(tree *t, unsigned slots)
{
	uint64_t small = 0, target;
	size_t nlarge = 0, nsmall = 0, k = 0;

	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].type == ATREST__SNAP_FILE && t->v[i].act == ACT_WRITE)
			nlarge += (uint64_t)t->v[i].sb.st_size >= LARGE_FILE;
	for (size_t i = 0; i < t->n; i++) {
		uint64_t sz = (uint64_t)t->v[i].sb.st_size;
		if (t->v[i].type != ATREST__SNAP_FILE || t->v[i].act != ACT_WRITE)
			continue;
		if (sz >= LARGE_FILE) {
			t->pass[k++] = i;
		} else {
			t->pass[nlarge + nsmall++] = i;
			small += sz;
		}
	}
	qsort_r(t->pass, nlarge, sizeof(size_t), size_desc, t);
	t->units = calloc(nlarge + nsmall + 1, sizeof(*t->units));
	ENSURE(t->units, ATREST_ERROR, "out of memory");
	target = small / (2 * (uint64_t)slots);
	target = target < PACK_MIN ? PACK_MIN : target > PACK_MAXB ? PACK_MAXB : target;
	for (k = 0; k < nlarge + nsmall; k++) {
		size_t i = t->pass[k];
		uint64_t sz = (uint64_t)t->v[i].sb.st_size;
		tunit *last = t->nunits ? &t->units[t->nunits - 1] : NULL;
		if (k < nlarge || !last || last->bytes + sz > target ||
			(uint64_t)t->v[last->items[0]].sb.st_size >= LARGE_FILE)
			last = &t->units[t->nunits++];
		GUARD(unit_add(last, i, sz));
	}
	return 0;
}

static int confirm_pass(tree *t)
{
	t->npass = 0;
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].type == ATREST__SNAP_FILE && t->v[i].act == ACT_CONFIRM)
			t->pass[t->npass++] = i;
	return atrest__pool_run(atrest__store_pool(t->s->st), confirm_one, t, t->npass);
}

static int write_pass(tree *t)
{
	atrest__pool *pool = atrest__store_pool(t->s->st);

	GUARD(make_units(t, atrest__pool_slots(pool)));
	return atrest__pool_run(pool, run_unit, t, t->nunits);
}

/* Everything that is not written: shared and empty files, the rest. */
static int add_others(tree *t)
{
	atrest__snap_ent e;

	for (size_t i = 0; i < t->n; i++) {
		const titem *it = &t->v[i];
		if (it->type == 0) {
			count(t, 0, 0, 0);
			continue;
		}
		if (it->type == ATREST__SNAP_FILE && it->act == ACT_WRITE)
			continue;
		entry_of(&e, it);
		if (it->type == ATREST__SNAP_FILE && it->act == ACT_SHARE) {
			GUARD(atrest__snap_share(t->s, &e, it->pi));
			atrest__snap_prog_add(&t->prog, 1, e.size);
		} else {
			GUARD(atrest__snap_add_ent(t->s, &e, it->link, 0));
			if (it->type == ATREST__SNAP_FILE)
				atrest__snap_prog_add(&t->prog, 1, 0);
		}
		count(t, it->type, e.size, it->act == ACT_SHARE);
	}
	return 0;
}

static int prepare(tree *t)
{
	uint64_t files = 0, bytes = 0;

	qsort(t->v, t->n, sizeof(*t->v), item_cmp);
	for (size_t i = 0; i < t->n; i++)
		classify(t, &t->v[i]);
	GUARD(find_hardlinks(t));
	for (size_t i = 0; i < t->n; i++) {
		titem *it = &t->v[i];
		if (it->type == 0)
			atrest__snap_prog_note(&t->prog, it->path, "socket not stored");
		if (it->type != ATREST__SNAP_FILE)
			continue;
		classify_file(t, it);
		files++;
		bytes += (uint64_t)it->sb.st_size;
	}
	t->prog.p.files_total = files;
	t->prog.p.bytes_total = bytes;
	t->pass = malloc((t->n + 1) * sizeof(*t->pass));
	ENSURE(t->pass, ATREST_ERROR, "out of memory");
	return 0;
}

static void tree_free(tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		titem *it = &t->v[i];
		for (size_t k = 0; k < it->nxa; k++) {
			free((char *)it->xa[k].name);
			free((uint8_t *)it->xa[k].value);
		}
		free(it->xa);
		free(it->target);
		free(it->path);
	}
	for (size_t u = 0; u < t->nunits; u++)
		free(t->units[u].items);
	free(t->units);
	free(t->pass);
	free(t->v);
	if (t->root >= 0)
		close(t->root);
	pthread_mutex_destroy(&t->mu);
}

static int add_tree(tree *t)
{
	t->root = open(t->rootpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->root < 0)
		return atrest__error_os(
			atrest__errno_code(errno), errno, "%s", t->rootpath);
	GUARD(add_item(t, t->root, ".", ""));
	GUARD(scan_root(t));
	GUARD(prepare(t));
	GUARD(confirm_pass(t));
	GUARD(write_pass(t));
	return add_others(t);
}

int atrest_snap_add_tree(atrest_snap_stats *out, atrest_snap *s, const char *dir,
	const atrest_snap_tree_options *opts, atrest_snap_progress_cb cb, void *payload)
{
	tree t;
	int rc;

	if (opts)
		GUARD(atrest__check_version(opts->version,
			ATREST_SNAP_TREE_OPTIONS_VERSION, "atrest_snap_tree_options"));
	ENSURE(!s->failed, ATREST_EINVAL, "snapshot '%s' already failed; abort it",
		s->name);
	memset(&t, 0, sizeof(t));
	t.s = s;
	t.root = -1;
	t.rootpath = dir;
	t.flags = opts ? opts->flags : 0;
	pthread_mutex_init(&t.mu, NULL);
	atrest__snap_prog_init(&t.prog, cb, payload);
	rc = add_tree(&t);
	atrest__snap_prog_end(&t.prog);
	if (rc < 0) {
		pthread_mutex_lock(&s->mu);
		s->failed = 1;
		pthread_mutex_unlock(&s->mu);
	}
	if (out)
		*out = t.st;
	tree_free(&t);
	return rc;
}
