/*
 * Writing a snapshot: begin (parent, lease, gc markers seen), files and
 * entries added from any thread, commit (wait out live gc runs, check that
 * what is shared with the parent is still there, take a sequence number,
 * publish the manifest once with a create-only put, drop the lease), abort.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

/* Files of at least this size get an object of their own. */
#define PACK_FILE_MAX (1u << 20)
/* A pack of small files (add_buffer) is closed past this size. */
#define PACK_MAX (8u << 20)
#define SEQ_TRIES 64

typedef struct atrest__snap_pack {
	atrest_writer *w;
	atrest__mac *mac;
	uint32_t obj; /* its index in s->objs */
} snap_pack;

struct atrest_snap_file {
	atrest_snap *s;
	atrest_writer *w;
	atrest__snap_obj o;
	atrest__mac *mac;
	atrest__went w_ent; /* the entry, its strings copied */
	int failed;
};

/* ---- entries and objects ---- */

void atrest__snap_next_ref(atrest_snap *s, atrest__snap_ref *out)
{
	pthread_mutex_lock(&s->mu);
	memcpy(out->writer, s->writer, ATREST__SNAP_ID_LEN);
	out->index = s->next_index++;
	pthread_mutex_unlock(&s->mu);
}

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*v, n * size);
	ENSURE(p, ATREST_ERROR, "out of memory");
	*v = p;
	*cap = n;
	return 0;
}

static int add_obj_locked(atrest_snap *s, const atrest__snap_obj *o, uint32_t *obj)
{
	GUARD(grow((void **)&s->objs, &s->obj_cap, s->nobj + 1, sizeof(*s->objs)));
	ENSURE(s->nobj < ATREST__SNAP_NOOBJ - 1, ATREST_ETOOBIG, "too many objects");
	s->objs[s->nobj] = *o;
	*obj = (uint32_t)s->nobj++;
	return 0;
}

int atrest__snap_add_obj(atrest_snap *s, const atrest__snap_obj *o, uint32_t *obj)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = add_obj_locked(s, o, obj);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static void ent_free(atrest__went *w)
{
	free((char *)w->e.path);
	free((char *)w->e.target);
	for (size_t k = 0; k < w->e.nxattr; k++) {
		free((char *)w->e.xattrs[k].name);
		free((uint8_t *)w->e.xattrs[k].value);
	}
	free((atrest__snap_xattr *)w->e.xattrs);
	free(w->link_path);
}

static int xattr_cmp(const void *a, const void *b)
{
	return strcmp(((const atrest__snap_xattr *)a)->name,
		((const atrest__snap_xattr *)b)->name);
}

/* Deep copies of e's strings into w (sorted extended attributes). */
static int ent_copy(atrest__went *w, const atrest__snap_ent *e, const char *link_path)
{
	atrest__snap_xattr *xa = NULL;
	int ok;

	w->e = *e;
	w->e.xattrs = NULL;
	w->e.nxattr = 0;
	w->e.path = strdup(e->path);
	w->e.target = e->target ? strdup(e->target) : NULL;
	w->link_path = link_path ? strdup(link_path) : NULL;
	ok = w->e.path && (!e->target || w->e.target) && (!link_path || w->link_path);
	if (ok && e->nxattr) {
		ok = (xa = calloc(e->nxattr, sizeof(*xa))) != NULL;
		w->e.xattrs = xa;
		for (size_t k = 0; ok && k < e->nxattr; k++, w->e.nxattr++) {
			xa[k].len = e->xattrs[k].len;
			xa[k].name = strdup(e->xattrs[k].name);
			xa[k].value = malloc(xa[k].len ? xa[k].len : 1);
			ok = xa[k].name && xa[k].value;
			if (ok)
				memcpy((uint8_t *)xa[k].value, e->xattrs[k].value,
					xa[k].len);
		}
		if (ok)
			qsort(xa, e->nxattr, sizeof(*xa), xattr_cmp);
	}
	if (!ok) {
		ent_free(w);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	return 0;
}

int atrest__snap_add_ent(
	atrest_snap *s, const atrest__snap_ent *e, const char *link_path, int locked)
{
	atrest__went w;
	int rc;

	GUARD(ent_copy(&w, e, link_path));
	if (!locked)
		pthread_mutex_lock(&s->mu);
	rc = grow((void **)&s->ents, &s->ent_cap, s->nent + 1, sizeof(*s->ents));
	if (rc == 0)
		s->ents[s->nent++] = w;
	if (!locked)
		pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		ent_free(&w);
	return rc;
}

/* The index in s->objs of parent object k, added on first use. */
static int parent_obj(atrest_snap *s, uint32_t k, uint32_t *out)
{
	if (s->parent_map[k] == ATREST__SNAP_NOOBJ)
		GUARD(add_obj_locked(s, &s->parent->objs[k], &s->parent_map[k]));
	*out = s->parent_map[k];
	return 0;
}

int atrest__snap_share(atrest_snap *s, const atrest__snap_ent *e, long pi)
{
	const atrest__snap_ent *pe = &s->parent->ents[pi];
	atrest__snap_ent n = *e;
	int rc = 0;

	ENSURE(pe->type == ATREST__SNAP_FILE, ATREST_EINVAL,
		"'%s' is not a file in snapshot '%s'", pe->path, s->parent->name);
	ENSURE(e->size == pe->size, ATREST_EINVAL,
		"'%s' has %llu bytes in snapshot '%s', not %llu", pe->path,
		(unsigned long long)pe->size, s->parent->name,
		(unsigned long long)e->size);
	n.type = ATREST__SNAP_FILE;
	n.off = pe->off;
	n.obj = ATREST__SNAP_NOOBJ;
	memcpy(n.hash, pe->hash, sizeof(n.hash));
	pthread_mutex_lock(&s->mu);
	if (pe->obj != ATREST__SNAP_NOOBJ)
		rc = parent_obj(s, pe->obj, &n.obj);
	if (rc == 0)
		rc = atrest__snap_add_ent(s, &n, NULL, 1);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- the lease ---- */

static int lease_put(atrest_snap *s, unsigned int flags, const char *etag)
{
	char name[SNAP_NAME_MAX];
	atrest__snap_lease l = {s->lease_ttl, atrest__snap_now_ns(), 0, NULL};
	uint8_t *buf;
	size_t len;
	int rc;

	if (s->parent) {
		l.nref = s->parent->nobj;
		l.refs = calloc(l.nref ? l.nref : 1, sizeof(*l.refs));
		ENSURE(l.refs, ATREST_ERROR, "out of memory");
		for (size_t k = 0; k < l.nref; k++)
			l.refs[k] = s->parent->objs[k].ref;
	}
	rc = atrest__lease_encode(&buf, &len, &l);
	free(l.refs);
	GUARD(rc);
	atrest__snap_lname(name, s->writer);
	rc = atrest__snap_put_small(s->st, name, buf, len, flags, etag);
	free(buf);
	return rc;
}

/* Renewal: a conditional put on the version read, so that a lease gc
 * removed (judging this writer dead) is never brought back. */
static int lease_renew(atrest_snap *s)
{
	char name[SNAP_NAME_MAX], etag[ATREST_BACKEND_ETAG_MAX];
	int rc;

	atrest__snap_lname(name, s->writer);
	rc = atrest__snap_version(etag, NULL, s->st, name);
	if (rc == 0)
		rc = lease_put(s, ATREST_BACKEND_IF_MATCH, etag);
	if (rc == ATREST_ENOTFOUND || rc == ATREST_ECONFLICT)
		return atrest__error(ATREST_ECONFLICT,
			"snapshot '%s': this writer's lease was removed by gc (no "
			"renewal for %u s); take the snapshot again",
			s->name, s->lease_ttl);
	return rc;
}

/*
 * Renew the lease when ttl/4 has passed.  With force (at commit), a lease
 * renewed more recently is only checked to be still there: gc removes
 * leases not renewed for their whole ttl, so that one is this writer's.
 */
int atrest__snap_tick(atrest_snap *s, int force)
{
	char name[SNAP_NAME_MAX];
	double now = atrest__snap_clock();
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	if (now - s->renewed >= s->lease_ttl / 4.0) {
		rc = lease_renew(s);
		if (rc == 0)
			s->renewed = now;
	} else if (force) {
		atrest__snap_lname(name, s->writer);
		rc = atrest__snap_version(NULL, NULL, s->st, name);
		if (rc == ATREST_ENOTFOUND)
			rc = atrest__error(ATREST_ECONFLICT,
				"snapshot '%s': this writer's lease was removed",
				s->name);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- begin ---- */

static int seen_marker(const char *rel, uint64_t size, int64_t mtime, void *p)
{
	atrest_snap *s = p;
	atrest__snap_marker *v, *m;
	uint8_t *buf;
	size_t len;
	int64_t created;
	int rc;

	(void)size;
	(void)mtime;
	v = realloc(s->markers, (s->nmarkers + 1) * sizeof(*v));
	ENSURE(v, ATREST_ERROR, "out of memory");
	s->markers = v;
	m = &v[s->nmarkers];
	snprintf(m->name, sizeof(m->name), SNAP_ROOT "%s", rel);
	rc = atrest__snap_get_small(&buf, &len, m->etag, NULL, s->st, m->name, 64);
	if (rc == 0) {
		rc = atrest__marker_decode(&m->ttl, &created, buf, len);
		free(buf);
	}
	if (rc == ATREST_ENOTFOUND) /* gone meanwhile: that gc is over */
		return 0;
	if (rc < 0) {
		atrest__error_prefix("gc marker %s", m->name);
		return rc;
	}
	s->nmarkers++;
	return 0;
}

/* The parent: named, or the newest under NAME's prefix (AUTO_PARENT). */
static int find_parent(atrest_snap *s, const atrest_snap_options *o)
{
	const char *parent = o ? o->parent : NULL, *slash = strrchr(s->name, '/');
	char *auto_name = NULL, prefix[ATREST__SNAP_NAME_MAX + 1];
	uint64_t seq;
	int rc;

	if (!parent && o && (o->flags & ATREST_SNAP_AUTO_PARENT) && slash) {
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(slash - s->name + 1),
			s->name);
		rc = atrest_snapshot_latest(&auto_name, &seq, s->st, prefix, 0);
		if (rc == ATREST_ENOTFOUND)
			return 0;
		GUARD(rc);
		parent = auto_name;
	}
	if (!parent)
		return 0;
	rc = atrest__snap_load(&s->parent, s->parent_etag, s->st, parent);
	free(auto_name);
	GUARD(rc);
	s->parent_map =
		malloc((s->parent->nobj ? s->parent->nobj : 1) * sizeof(uint32_t));
	ENSURE(s->parent_map, ATREST_ERROR, "out of memory");
	memset(s->parent_map, 0xff,
		(s->parent->nobj ? s->parent->nobj : 1) * sizeof(uint32_t));
	return 0;
}

static int begin(atrest_snap *s, const atrest_snap_options *o)
{
	char mname[SNAP_NAME_MAX];
	int rc;

	GUARD(atrest__snap_mname(mname, s->name));
	rc = atrest__snap_version(NULL, NULL, s->st, mname);
	ENSURE(rc != 0, ATREST_EEXISTS, "snapshot '%s' already exists", s->name);
	if (rc != ATREST_ENOTFOUND)
		return rc;
	GUARD(find_parent(s, o));
	GUARD(atrest__rand(s->writer, sizeof(s->writer)));
	GUARD(lease_put(s, ATREST_BACKEND_IF_ABSENT, NULL));
	s->leased = 1;
	s->renewed = atrest__snap_clock();
	/* After the lease is visible: a gc not listed here will see it. */
	return atrest__snap_list(s->st, "g/", seen_marker, s);
}

static void snap_free(atrest_snap *s)
{
	for (size_t i = 0; i < s->nent; i++)
		ent_free(&s->ents[i]);
	free(s->ents);
	free(s->objs);
	free(s->markers);
	free(s->parent_map);
	atrest__manifest_free(s->parent);
	atrest__snap_hkeys_free(&s->hk);
	pthread_mutex_destroy(&s->mu);
	free(s->name);
	free(s);
}

static void discard(atrest_snap *s);

static int snap_begin(atrest_snap **out, atrest_store *st, const char *name,
	const atrest_snap_options *opts)
{
	atrest_snap *s;
	int rc;

	if (opts)
		GUARD(atrest__check_version(opts->version, ATREST_SNAP_OPTIONS_VERSION,
			"atrest_snap_options"));
	GUARD(atrest__snap_name_check(name));
	s = calloc(1, sizeof(*s));
	ENSURE(s, ATREST_ERROR, "out of memory");
	pthread_mutex_init(&s->mu, NULL);
	atrest__snap_hkeys_init(&s->hk);
	s->st = st;
	s->lease_ttl = opts && opts->lease_ttl ? opts->lease_ttl : SNAP_LEASE_TTL;
	s->next_index = 1;
	s->begun = atrest__snap_now_ns();
	s->name = strdup(name);
	rc = s->name ? begin(s, opts) : atrest__error(ATREST_ERROR, "out of memory");
	if (rc < 0) {
		discard(s);
		snap_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* One snapshot_put event from begin to commit or abort (obs.h). */
int atrest_snap_begin(atrest_snap **out, atrest_store *st, const char *name,
	const atrest_snap_options *opts)
{
	atrest__op op;
	int rc;

	*out = NULL;
	atrest__op_begin(&op, st, ATREST_OP_SNAPSHOT_PUT, name);
	rc = snap_begin(out, st, name, opts);
	if (rc < 0)
		return atrest__op_end(&op, rc);
	atrest__op_suspend(&op, &(*out)->op);
	return 0;
}

const char *atrest_snap_parent(const atrest_snap *s)
{
	return s->parent ? s->parent->name : NULL;
}

/* ---- entries from the caller ---- */

static int type_ok(int t)
{
	return t >= ATREST_SNAP_DIR && t <= ATREST_SNAP_BLOCK;
}

int atrest__snap_from_entry(
	atrest__snap_ent *e, atrest__snap_xattr *xa, const atrest_snap_entry *in)
{
	GUARD(atrest__check_version(
		in->version, ATREST_SNAP_ENTRY_VERSION, "atrest_snap_entry"));
	ENSURE(in->path && type_ok(in->type), ATREST_EINVAL,
		"entry without a path or type");
	ENSURE(atrest__snap_path_check(in->path, strlen(in->path)) == 0, ATREST_EINVAL,
		"invalid entry path");
	ENSURE(!(in->mode & ~ATREST__SNAP_MODE_MASK), ATREST_EINVAL,
		"'%s': mode has bits beyond 07777", in->path);
	ENSURE(in->type != ATREST_SNAP_SYMLINK ||
			(in->target && *in->target &&
				strlen(in->target) <= ATREST__SNAP_TARGET_MAX),
		ATREST_EINVAL, "'%s': a symbolic link needs a target of 1 to 4095 bytes",
		in->path);
	ENSURE(in->type != ATREST_SNAP_HARDLINK || in->target, ATREST_EINVAL,
		"'%s': a hard link needs the path of its file", in->path);
	ENSURE(in->xattr_count <= ATREST__SNAP_XATTRS_MAX, ATREST_EINVAL,
		"'%s': too many extended attributes", in->path);
	memset(e, 0, sizeof(*e));
	e->type = (uint8_t)in->type;
	e->path = in->path;
	e->mode = in->mode;
	e->uid = in->uid;
	e->gid = in->gid;
	e->mtime = in->mtime_ns;
	e->size = in->type == ATREST_SNAP_FILE ? in->size : 0;
	e->obj = ATREST__SNAP_NOOBJ;
	e->target = in->type == ATREST_SNAP_SYMLINK ? in->target : NULL;
	e->rdev = in->rdev;
	for (size_t k = 0; k < in->xattr_count; k++) {
		const atrest_snap_xattr *x = &in->xattrs[k];
		size_t n = x->name ? strlen(x->name) : 0;
		ENSURE(n >= 1 && n <= ATREST__SNAP_XNAME_MAX &&
				x->len <= ATREST__SNAP_XVALUE_MAX &&
				(x->value || !x->len),
			ATREST_EINVAL, "'%s': bad extended attribute", in->path);
		xa[k].name = x->name;
		xa[k].value = x->value;
		xa[k].len = (uint32_t)x->len;
	}
	e->xattrs = xa;
	e->nxattr = (uint16_t)in->xattr_count;
	return 0;
}

/* The caller's entry as ours: xa has room for its extended attributes. */
static int convert(
	atrest__snap_ent *e, atrest__snap_xattr **xa, const atrest_snap_entry *in)
{
	*xa = NULL;
	ENSURE(!in || in->xattr_count <= ATREST__SNAP_XATTRS_MAX, ATREST_EINVAL,
		"too many extended attributes");
	ENSURE(in, ATREST_EINVAL, "no entry");
	*xa = calloc(in->xattr_count ? in->xattr_count : 1, sizeof(**xa));
	ENSURE(*xa, ATREST_ERROR, "out of memory");
	return atrest__snap_from_entry(e, *xa, in);
}

/* The same for a FILE entry (ATREST_EINVAL for any other type). */
static int convert_file(
	atrest__snap_ent *e, atrest__snap_xattr **xa, const atrest_snap_entry *in)
{
	GUARD(convert(e, xa, in));
	ENSURE(e->type == ATREST__SNAP_FILE, ATREST_EINVAL, "'%s' is not a file entry",
		in->path);
	return 0;
}

static int usable(atrest_snap *s)
{
	ENSURE(!s->failed, ATREST_EINVAL, "snapshot '%s' already failed; abort it",
		s->name);
	return atrest__snap_tick(s, 0);
}

int atrest_snap_add(atrest_snap *s, const atrest_snap_entry *in)
{
	atrest__snap_xattr *xa;
	atrest__snap_ent e;
	int rc;

	GUARD(usable(s));
	rc = convert(&e, &xa, in);
	if (rc == 0 && e.type == ATREST__SNAP_FILE)
		rc = atrest__error(ATREST_EINVAL,
			"'%s': files are added with atrest_snap_add_file, _buffer or "
			"_unchanged",
			in->path);
	if (rc == 0)
		rc = atrest__snap_add_ent(
			s, &e, e.type == ATREST__SNAP_HARDLINK ? in->target : NULL, 0);
	free(xa);
	return rc;
}

/* Open the writer of data object o->ref. */
static int open_ref(atrest_writer **w, atrest__snap_obj *o, atrest_snap *s)
{
	char name[SNAP_NAME_MAX];

	atrest__snap_dname(name, &o->ref);
	GUARD(atrest__writer_open_internal(w, s->st, name, 0, NULL));
	atrest__writer_facts(*w, o->commit, &o->dek);
	return 0;
}

int atrest__snap_open_obj(atrest_writer **w, atrest__snap_obj *o, atrest_snap *s)
{
	memset(o, 0, sizeof(*o));
	atrest__snap_next_ref(s, &o->ref);
	return open_ref(w, o, s);
}

/* Move a finished entry into the snapshot (took over: w is emptied). */
static int push_went(atrest_snap *s, atrest__went *w)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = grow((void **)&s->ents, &s->ent_cap, s->nent + 1, sizeof(*s->ents));
	if (rc == 0)
		s->ents[s->nent++] = *w;
	pthread_mutex_unlock(&s->mu);
	if (rc < 0)
		ent_free(w);
	memset(w, 0, sizeof(*w));
	return rc;
}

static void file_free(atrest_snap_file *f)
{
	pthread_mutex_lock(&f->s->mu);
	f->s->open_files--;
	pthread_mutex_unlock(&f->s->mu);
	atrest__mac_free(f->mac);
	ent_free(&f->w_ent);
	free(f);
}

int atrest_snap_add_file(
	atrest_snap_file **out, atrest_snap *s, const atrest_snap_entry *in)
{
	atrest__snap_xattr *xa;
	atrest_snap_file *f;
	atrest__snap_ent e;
	int rc;

	*out = NULL;
	GUARD(usable(s));
	rc = convert_file(&e, &xa, in);
	f = rc == 0 ? calloc(1, sizeof(*f)) : NULL;
	if (rc == 0 && !f)
		rc = atrest__error(ATREST_ERROR, "out of memory");
	if (rc == 0)
		rc = ent_copy(&f->w_ent, &e, NULL);
	free(xa);
	if (rc < 0) {
		free(f);
		return rc;
	}
	f->s = s;
	pthread_mutex_lock(&s->mu);
	s->open_files++;
	pthread_mutex_unlock(&s->mu);
	rc = atrest__snap_open_obj(&f->w, &f->o, s);
	if (rc == 0)
		rc = atrest__snap_mac(&f->mac, &s->hk, s->st, f->o.dek);
	if (rc < 0) {
		atrest_writer_abort(f->w);
		file_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

int atrest_snap_file_write(atrest_snap_file *f, const void *buf, size_t len)
{
	int rc;

	ENSURE(!f->failed, ATREST_EINVAL, "file writer already failed; abort it");
	rc = atrest__mac_update(f->mac, buf, len);
	if (rc == 0)
		rc = atrest_writer_write(f->w, buf, len);
	if (rc < 0)
		f->failed = 1;
	else
		f->o.size += len;
	return rc;
}

/* An empty file has no object: its writer is dropped. */
static int file_finish(atrest_snap_file *f)
{
	atrest__snap_ent *e = &f->w_ent.e;
	atrest_writer *w = f->w;

	f->w = NULL;
	ENSURE(!f->failed, ATREST_EINVAL, "file writer already failed");
	e->size = f->o.size;
	if (f->o.size == 0) {
		atrest_writer_abort(w);
		return 0;
	}
	GUARD(atrest__mac_final(f->mac, e->hash));
	GUARD(atrest_writer_commit(w));
	GUARD(atrest__snap_add_obj(f->s, &f->o, &e->obj));
	return atrest__snap_tick(f->s, 0);
}

int atrest_snap_file_commit(atrest_snap_file *f)
{
	int rc = file_finish(f);

	if (f->w)
		atrest_writer_abort(f->w);
	if (rc == 0)
		rc = push_went(f->s, &f->w_ent);
	if (rc < 0) {
		pthread_mutex_lock(&f->s->mu);
		f->s->failed = 1;
		pthread_mutex_unlock(&f->s->mu);
	}
	file_free(f);
	return rc;
}

void atrest_snap_file_abort(atrest_snap_file *f)
{
	if (!f)
		return;
	atrest_writer_abort(f->w);
	file_free(f);
}

/* ---- buffers, packed ---- */

static int pack_close(atrest_snap *s)
{
	snap_pack *p = s->pack;
	int rc;

	if (!p)
		return 0;
	s->pack = NULL;
	rc = atrest_writer_commit(p->w);
	atrest__mac_free(p->mac);
	free(p);
	return rc;
}

static int pack_open(atrest_snap *s)
{
	snap_pack *p = calloc(1, sizeof(*p));
	atrest__snap_obj o;
	int rc;

	ENSURE(p, ATREST_ERROR, "out of memory");
	memset(&o, 0, sizeof(o));
	memcpy(o.ref.writer, s->writer, ATREST__SNAP_ID_LEN);
	o.ref.index = s->next_index++;
	rc = open_ref(&p->w, &o, s);
	if (rc == 0)
		rc = atrest__snap_mac(&p->mac, &s->hk, s->st, o.dek);
	if (rc == 0)
		rc = add_obj_locked(s, &o, &p->obj);
	if (rc < 0) {
		atrest_writer_abort(p->w);
		atrest__mac_free(p->mac);
		free(p);
		return rc;
	}
	s->pack = p;
	return 0;
}

/* Append buf to the open pack (s->mu held). */
static int pack_add(atrest_snap *s, atrest__snap_ent *e, const void *buf, size_t len)
{
	atrest__snap_obj *o;

	if (s->pack && s->objs[s->pack->obj].size + len > PACK_MAX)
		GUARD(pack_close(s));
	if (!s->pack)
		GUARD(pack_open(s));
	o = &s->objs[s->pack->obj];
	GUARD(atrest__mac_reset(s->pack->mac));
	GUARD(atrest__mac_update(s->pack->mac, buf, len));
	GUARD(atrest__mac_final(s->pack->mac, e->hash));
	GUARD(atrest_writer_write(s->pack->w, buf, len));
	e->obj = s->pack->obj;
	e->off = o->size;
	o->size += len;
	return atrest__snap_add_ent(s, e, NULL, 1);
}

/* A large buffer: an object of its own. */
static int put_alone(atrest_snap *s, atrest__snap_ent *e, const void *buf, size_t len)
{
	atrest__snap_obj o;
	atrest_writer *w;
	atrest__mac *mac;
	int rc;

	GUARD(atrest__snap_open_obj(&w, &o, s));
	rc = atrest__snap_mac(&mac, &s->hk, s->st, o.dek);
	if (rc == 0) {
		rc = atrest__mac_update(mac, buf, len);
		if (rc == 0)
			rc = atrest__mac_final(mac, e->hash);
		atrest__mac_free(mac);
	}
	if (rc == 0)
		rc = atrest_writer_write(w, buf, len);
	if (rc < 0) {
		atrest_writer_abort(w);
		return rc;
	}
	GUARD(atrest_writer_commit(w));
	o.size = len;
	GUARD(atrest__snap_add_obj(s, &o, &e->obj));
	return atrest__snap_add_ent(s, e, NULL, 0);
}

int atrest_snap_add_buffer(
	atrest_snap *s, const atrest_snap_entry *in, const void *buf, size_t len)
{
	atrest__snap_xattr *xa;
	atrest__snap_ent e;
	int rc;

	GUARD(usable(s));
	rc = convert_file(&e, &xa, in);
	e.size = len;
	if (rc == 0 && len == 0) {
		rc = atrest__snap_add_ent(s, &e, NULL, 0);
	} else if (rc == 0 && len >= PACK_FILE_MAX) {
		rc = put_alone(s, &e, buf, len);
	} else if (rc == 0) {
		pthread_mutex_lock(&s->mu);
		rc = pack_add(s, &e, buf, len);
		if (rc < 0)
			s->failed = 1;
		pthread_mutex_unlock(&s->mu);
	}
	free(xa);
	return rc;
}

int atrest_snap_add_unchanged(
	atrest_snap *s, const atrest_snap_entry *in, const char *parent_path)
{
	atrest__snap_xattr *xa;
	atrest__snap_ent e;
	long pi;
	int rc;

	GUARD(usable(s));
	ENSURE(s->parent, ATREST_EINVAL, "snapshot '%s' has no parent", s->name);
	rc = convert_file(&e, &xa, in);
	if (rc == 0) {
		pi = atrest__manifest_find(
			s->parent, parent_path ? parent_path : in->path);
		rc = pi < 0
			? atrest__error(ATREST_ENOTFOUND, "no '%s' in snapshot '%s'",
				  parent_path ? parent_path : in->path, s->parent->name)
			: atrest__snap_share(s, &e, pi);
	}
	free(xa);
	return rc;
}

/* ---- commit ---- */

static int went_cmp(const void *a, const void *b)
{
	return atrest__snap_path_cmp(
		((const atrest__went *)a)->e.path, ((const atrest__went *)b)->e.path);
}

static int went_key(const void *key, const void *w)
{
	return atrest__snap_path_cmp(key, ((const atrest__went *)w)->e.path);
}

static long went_find(const atrest_snap *s, const char *path)
{
	const atrest__went *w = s->nent
		? bsearch(path, s->ents, s->nent, sizeof(*s->ents), went_key)
		: NULL;

	return w ? w - s->ents : -1;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the missing directories of one level (*added counts them). */
static int add_parents(atrest_snap *s, size_t *added)
{
	char **miss = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	qsort(s->ents, s->nent, sizeof(*s->ents), went_cmp);
	for (size_t i = 0; i <= s->nent && rc == 0; i++) {
		const char *p = i < s->nent ? s->ents[i].e.path : NULL, *sl;
		char *dir;
		if (p && !*p)
			continue;
		sl = p ? strrchr(p, '/') : NULL;
		dir = p ? strndup(p, sl ? (size_t)(sl - p) : 0) : strdup("");
		if (!dir || grow((void **)&miss, &cap, n + 1, sizeof(*miss)) < 0) {
			free(dir);
			rc = atrest__error(ATREST_ERROR, "out of memory");
		} else if (went_find(s, dir) >= 0 || (n && !strcmp(miss[n - 1], dir))) {
			free(dir);
		} else {
			miss[n++] = dir;
		}
	}
	qsort(miss, n, sizeof(*miss), str_cmp);
	for (size_t i = 0; i < n; i++) {
		atrest__snap_ent d = {
			.type = ATREST__SNAP_DIR, .path = miss[i], .mode = 0700};
		d.uid = (uint32_t)geteuid();
		d.gid = (uint32_t)getegid();
		d.mtime = atrest__snap_now_ns();
		d.obj = ATREST__SNAP_NOOBJ;
		if (rc == 0 && (i == 0 || strcmp(miss[i - 1], miss[i]) != 0)) {
			rc = atrest__snap_add_ent(s, &d, NULL, 1);
			(*added)++;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(miss[i]);
	free(miss);
	return rc;
}

/* Sorted, complete, unique entries with hard links resolved. */
static int settle_entries(atrest_snap *s)
{
	size_t added;

	do {
		added = 0;
		GUARD(add_parents(s, &added));
	} while (added);
	qsort(s->ents, s->nent, sizeof(*s->ents), went_cmp);
	for (size_t i = 0; i < s->nent; i++) {
		atrest__went *w = &s->ents[i];
		long j;
		ENSURE(i == 0 || strcmp(s->ents[i - 1].e.path, w->e.path) != 0,
			ATREST_EINVAL, "'%s' was added twice", w->e.path);
		if (w->e.type != ATREST__SNAP_HARDLINK)
			continue;
		j = went_find(s, w->link_path);
		ENSURE(j >= 0 && j < (long)i && s->ents[j].e.type == ATREST__SNAP_FILE,
			ATREST_EINVAL,
			"hard link '%s': '%s' is not a file of the snapshot that sorts "
			"before it",
			w->e.path, w->link_path);
		w->e.link = (uint32_t)j;
	}
	return 0;
}

static int obj_order(const void *a, const void *b, void *ctx)
{
	const atrest__snap_obj *objs = ctx;

	return atrest__snap_ref_cmp(
		&objs[*(const uint32_t *)a].ref, &objs[*(const uint32_t *)b].ref);
}

/* The manifest of s; *ents and *objs are allocated for it. */
static int build(atrest__manifest *m, atrest__snap_ent **ents, atrest__snap_obj **objs,
	atrest_snap *s, uint64_t seq)
{
	uint32_t *perm, *newidx;

	GUARD(settle_entries(s));
	perm = malloc((s->nobj + 1) * sizeof(*perm));
	newidx = malloc((s->nobj + 1) * sizeof(*newidx));
	*ents = malloc(s->nent * sizeof(**ents));
	*objs = malloc((s->nobj + 1) * sizeof(**objs));
	if (!perm || !newidx || !*ents || !*objs) {
		free(perm);
		free(newidx);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	for (uint32_t k = 0; k < s->nobj; k++)
		perm[k] = k;
	qsort_r(perm, s->nobj, sizeof(*perm), obj_order, s->objs);
	for (uint32_t k = 0; k < s->nobj; k++) {
		newidx[perm[k]] = k;
		(*objs)[k] = s->objs[perm[k]];
	}
	for (size_t i = 0; i < s->nent; i++) {
		(*ents)[i] = s->ents[i].e;
		if ((*ents)[i].type == ATREST__SNAP_FILE &&
			(*ents)[i].obj != ATREST__SNAP_NOOBJ)
			(*ents)[i].obj = newidx[(*ents)[i].obj];
	}
	free(perm);
	free(newidx);
	memset(m, 0, sizeof(*m));
	m->seq = seq;
	m->created = s->begun;
	memcpy(m->writer, s->writer, sizeof(m->writer));
	m->name = s->name;
	m->parent = s->parent ? s->parent->name : "";
	m->nobj = s->nobj;
	m->nent = s->nent;
	m->objs = *objs;
	m->ents = *ents;
	return 0;
}

/*
 * A gc that was live when this writer began may not have seen its lease:
 * wait until it is over (its marker gone, or not renewed for its ttl), so
 * that the parent's re-check below comes after any removal it made.
 */
static int wait_markers(atrest_snap *s)
{
	char etag[ATREST_BACKEND_ETAG_MAX];

	for (size_t i = 0; i < s->nmarkers; i++) {
		atrest__snap_marker *m = &s->markers[i];
		double since = atrest__snap_clock();
		for (;;) {
			int rc = atrest__snap_version(etag, NULL, s->st, m->name);
			if (rc == ATREST_ENOTFOUND)
				break;
			GUARD(rc);
			if (strcmp(etag, m->etag) != 0) {
				memcpy(m->etag, etag, sizeof(etag));
				since = atrest__snap_clock();
			} else if (atrest__snap_clock() - since > m->ttl) {
				break;
			}
			GUARD(atrest__snap_tick(s, 0));
			atrest__snap_pause(100);
		}
	}
	return 0;
}

/*
 * Every object shared with the parent must still exist: a gc that ended
 * before this writer looked for markers, without having seen its lease,
 * may have removed them (the parent removed meanwhile).  From here on no
 * gc can: those that start see the lease, those that ran are over.
 */
static int check_shared(atrest_snap *s)
{
	char name[SNAP_NAME_MAX];
	int rc;

	for (size_t k = 0; s->parent && k < s->parent->nobj; k++) {
		if (s->parent_map[k] == ATREST__SNAP_NOOBJ)
			continue;
		atrest__snap_dname(name, &s->parent->objs[k].ref);
		rc = atrest__snap_version(NULL, NULL, s->st, name);
		if (rc == ATREST_ENOTFOUND)
			return atrest__error(ATREST_ECONFLICT,
				"%s, shared with parent snapshot '%s', was removed while "
				"'%s' was written; take the snapshot again",
				name, s->parent->name, s->name);
		GUARD(rc);
	}
	return 0;
}

/* One more than the counter and than floor, by a conditional put. */
static int next_seq(uint64_t *out, atrest_store *st, uint64_t floor)
{
	char etag[ATREST_BACKEND_ETAG_MAX];
	uint8_t enc[ATREST__SNAP_SEQ_LEN], *buf;
	uint64_t cur;
	size_t len;
	int rc = ATREST_ECONFLICT;

	for (int i = 0; i < SEQ_TRIES && (rc == ATREST_ECONFLICT || rc == ATREST_EEXISTS);
		i++) {
		if (i)
			atrest__snap_pause(5);
		cur = 0;
		rc = atrest__snap_get_small(
			&buf, &len, etag, NULL, st, SNAP_SEQ_NAME, 64);
		if (rc == 0) {
			rc = atrest__seqobj_decode(&cur, buf, len);
			free(buf);
		}
		if (rc < 0 && rc != ATREST_ENOTFOUND)
			return rc;
		*out = (cur > floor ? cur : floor) + 1;
		atrest__seqobj_encode(enc, *out);
		rc = atrest__snap_put_small(st, SNAP_SEQ_NAME, enc, sizeof(enc),
			rc == 0 ? ATREST_BACKEND_IF_MATCH : ATREST_BACKEND_IF_ABSENT,
			rc == 0 ? etag : NULL);
	}
	return rc;
}

/* After a failed put of the manifest: was it published anyway (a service
 * that timed out after storing it)?  1 when it is ours. */
static int published(atrest_snap *s)
{
	atrest__manifest_head h;
	atrest__saved_error e;
	int rc;

	atrest__error_save(&e);
	rc = atrest__snap_load_head(&h, s->st, s->name);
	atrest__error_restore(&e);
	return rc == 0 && memcmp(h.writer, s->writer, sizeof(h.writer)) == 0;
}

static int publish(atrest_snap *s, const uint8_t *buf, size_t len)
{
	char mname[SNAP_NAME_MAX];
	int rc;

	GUARD(atrest__snap_mname(mname, s->name));
	rc = atrest__snap_put_small(
		s->st, mname, buf, len, ATREST_BACKEND_IF_ABSENT, NULL);
	if (rc == ATREST_EEXISTS)
		return atrest__error(rc, "snapshot '%s' already exists", s->name);
	if (rc < 0 && published(s))
		return 0;
	return rc;
}

static int remove_own(const char *rel, uint64_t size, int64_t mtime, void *p)
{
	char name[SNAP_NAME_MAX];
	int rc;

	(void)size;
	(void)mtime;
	snprintf(name, sizeof(name), SNAP_ROOT "%s", rel);
	rc = atrest__snap_remove(p, name);
	return rc == ATREST_ENOTFOUND ? 0 : rc;
}

/* Remove what this writer wrote, then its lease (errors kept as they were). */
static void discard(atrest_snap *s)
{
	char sub[SNAP_NAME_MAX], name[SNAP_NAME_MAX];
	atrest__saved_error e;

	atrest__error_save(&e);
	if (s->pack) {
		atrest_writer_abort(s->pack->w);
		atrest__mac_free(s->pack->mac);
		free(s->pack);
		s->pack = NULL;
	}
	if (s->leased) {
		atrest__snap_lname(name, s->writer);
		snprintf(sub, sizeof(sub), "d/%s/", name + sizeof(SNAP_ROOT "l/") - 1);
		if (atrest__snap_list(s->st, sub, remove_own, s->st) == 0)
			(void)atrest__snap_remove(s->st, name);
	}
	atrest__error_restore(&e);
}

static int commit(uint64_t *seq, atrest_snap *s)
{
	atrest__snap_ent *ents = NULL;
	atrest__snap_obj *objs = NULL;
	atrest__manifest m;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	ENSURE(!s->failed, ATREST_EINVAL, "snapshot '%s' already failed", s->name);
	ENSURE(s->open_files == 0, ATREST_EINVAL, "snapshot '%s': %zu files still open",
		s->name, s->open_files);
	GUARD(pack_close(s));
	GUARD(wait_markers(s));
	GUARD(check_shared(s));
	GUARD(atrest__snap_tick(s, 1));
	GUARD(next_seq(seq, s->st, s->parent ? s->parent->seq : 0));
	rc = build(&m, &ents, &objs, s, *seq);
	if (rc == 0)
		rc = atrest__manifest_encode(&buf, &len, &m);
	free(ents);
	free(objs);
	if (rc == 0)
		rc = publish(s, buf, len);
	free(buf);
	return rc;
}

/* The files added and their bytes, for the snapshot's event. */
static void snap_count(atrest__op *op, atrest_snap *s)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->nent; i++)
		if (s->ents[i].e.type == ATREST__SNAP_FILE) {
			op->count++;
			op->bytes += s->ents[i].e.size;
		}
	pthread_mutex_unlock(&s->mu);
}

int atrest_snap_commit(uint64_t *seq, atrest_snap *s)
{
	char name[SNAP_NAME_MAX];
	uint64_t n = 0;
	atrest__op op;
	int rc;

	atrest__op_resume(&op, &s->op);
	snap_count(&op, s);
	rc = commit(&n, s);

	if (rc == 0) {
		atrest__snap_lname(name, s->writer);
		(void)atrest__snap_remove(s->st, name);
		atrest_error_clear();
		if (seq)
			*seq = n;
	} else {
		atrest__error_prefix("snapshot '%s'", s->name);
		discard(s);
	}
	snap_free(s);
	return atrest__op_end(&op, rc);
}

/* Most often a failure's cleanup: the caller's last error stays. */
void atrest_snap_abort(atrest_snap *s)
{
	atrest__saved_error why;
	atrest__op op;

	if (!s)
		return;
	atrest__error_save(&why);
	atrest__op_resume(&op, &s->op);
	snap_count(&op, s);
	discard(s);
	snap_free(s);
	atrest__op_end(&op, atrest__error(ATREST_ERROR, "aborted by the caller"));
	atrest__error_restore(&why);
}
