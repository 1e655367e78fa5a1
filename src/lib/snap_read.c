/*
 * Reading a snapshot: open (the manifest read whole and checked, a minimum
 * sequence enforced), entries, one file's reader, and verification of every
 * object, byte and hash.  Each object is opened through one check: there,
 * the version the manifest pins, the size it records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snap_int.h"

static int public_xattrs(atrest_snapshot *s);

static int snapshot_open(atrest_snapshot **out, atrest_store *st, const char *name,
	const atrest_snapshot_open_options *opts)
{
	atrest_snapshot *s;
	int rc;

	*out = NULL;
	if (opts)
		GUARD(atrest__check_version(opts->version,
			ATREST_SNAPSHOT_OPEN_OPTIONS_VERSION,
			"atrest_snapshot_open_options"));
	GUARD(atrest__snap_name_check(name));
	s = calloc(1, sizeof(*s));
	ENSURE(s, ATREST_ERROR, "out of memory");
	s->st = st;
	atrest__snap_hkeys_init(&s->hk);
	rc = atrest__snap_load(&s->m, s->etag, st, name);
	if (rc == 0)
		rc = public_xattrs(s);
	if (rc == 0 && opts && s->m->seq < opts->min_seq)
		rc = atrest__error(ATREST_EINTEGRITY,
			"snapshot '%s' has sequence %llu, older than the %llu required "
			"(the store was rolled back, or this is not the newest snapshot)",
			name, (unsigned long long)s->m->seq,
			(unsigned long long)opts->min_seq);
	if (rc < 0) {
		atrest_snapshot_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* An event only when it fails (what is then read records its own). */
int atrest_snapshot_open(atrest_snapshot **out, atrest_store *st, const char *name,
	const atrest_snapshot_open_options *opts)
{
	atrest__op op;
	int rc;

	atrest__op_begin(&op, st, ATREST_OP_SNAPSHOT_OPEN, name);
	rc = snapshot_open(out, st, name, opts);
	if (rc == 0)
		atrest__op_drop(&op);
	return atrest__op_end(&op, rc);
}

void atrest_snapshot_close(atrest_snapshot *s)
{
	if (!s)
		return;
	atrest__manifest_free(s->m);
	atrest__snap_hkeys_free(&s->hk);
	free(s->order);
	free(s->start);
	free(s->xattrs);
	free(s->xoff);
	free(s);
}

/* Extended attributes in the public layout, for atrest_snapshot_entry. */
static int public_xattrs(atrest_snapshot *s)
{
	size_t total = 0;

	s->xoff = calloc(s->m->nent, sizeof(*s->xoff));
	ENSURE(s->xoff, ATREST_ERROR, "out of memory");
	for (size_t i = 0; i < s->m->nent; i++) {
		s->xoff[i] = total;
		total += s->m->ents[i].nxattr;
	}
	s->xattrs = calloc(total ? total : 1, sizeof(*s->xattrs));
	ENSURE(s->xattrs, ATREST_ERROR, "out of memory");
	for (size_t i = 0; i < s->m->nent; i++)
		for (size_t k = 0; k < s->m->ents[i].nxattr; k++) {
			atrest_snap_xattr *x = &s->xattrs[s->xoff[i] + k];
			x->name = s->m->ents[i].xattrs[k].name;
			x->value = s->m->ents[i].xattrs[k].value;
			x->len = s->m->ents[i].xattrs[k].len;
		}
	return 0;
}

int atrest_snapshot_info_get(atrest_snapshot_info *out, const atrest_snapshot *s)
{
	const atrest__manifest *m = s->m;

	GUARD(atrest__check_version(
		out->version, ATREST_SNAPSHOT_INFO_VERSION, "atrest_snapshot_info"));
	memset(out, 0, sizeof(*out));
	out->version = ATREST_SNAPSHOT_INFO_VERSION;
	out->name = m->name;
	out->parent = m->parent;
	out->seq = m->seq;
	out->created_ns = m->created;
	out->entries = m->nent;
	out->objects = m->nobj;
	for (size_t i = 0; i < m->nent; i++)
		if (m->ents[i].type == ATREST__SNAP_FILE) {
			out->files++;
			out->bytes += m->ents[i].size;
		}
	return 0;
}

size_t atrest_snapshot_count(const atrest_snapshot *s)
{
	return s->m->nent;
}

int atrest_snapshot_entry(atrest_snap_entry *out, const atrest_snapshot *s, size_t i)
{
	const atrest__snap_ent *e;

	GUARD(atrest__check_version(
		out->version, ATREST_SNAP_ENTRY_VERSION, "atrest_snap_entry"));
	ENSURE(i < s->m->nent, ATREST_EINVAL, "no entry %zu", i);
	e = &s->m->ents[i];
	memset(out, 0, sizeof(*out));
	out->version = ATREST_SNAP_ENTRY_VERSION;
	out->path = e->path;
	out->type = e->type;
	out->mode = e->mode;
	out->uid = e->uid;
	out->gid = e->gid;
	out->mtime_ns = e->mtime;
	out->size = e->type == ATREST__SNAP_FILE ? e->size : 0;
	out->target =
		e->type == ATREST__SNAP_HARDLINK ? s->m->ents[e->link].path : e->target;
	out->rdev = e->rdev;
	out->xattrs = e->nxattr ? s->xattrs + s->xoff[i] : NULL;
	out->xattr_count = e->nxattr;
	return 0;
}

int atrest_snapshot_find(size_t *out, const atrest_snapshot *s, const char *path)
{
	long i = atrest__manifest_find(s->m, path);

	ENSURE(i >= 0, ATREST_ENOTFOUND, "no '%s' in snapshot '%s'", path, s->m->name);
	*out = (size_t)i;
	return 0;
}

/* ---- objects ---- */

/* A missing object: the snapshot itself may have been removed meanwhile. */
static int missing(atrest_snapshot *s, const char *oname, const char *file)
{
	char mname[SNAP_NAME_MAX];

	if (atrest__snap_mname(mname, s->m->name) == 0 &&
		atrest__snap_version(NULL, NULL, s->st, mname) == ATREST_ENOTFOUND)
		return atrest__error(ATREST_ENOTFOUND,
			"snapshot '%s' was removed while being read", s->m->name);
	return atrest__error(ATREST_EINTEGRITY,
		"file '%s': its object %s is missing (deleted or renamed)", file, oname);
}

int atrest__snapshot_obj_open(
	atrest_reader **out, atrest_snapshot *s, uint32_t k, const char *file)
{
	const atrest__snap_obj *o = &s->m->objs[k];
	char name[SNAP_NAME_MAX];
	uint8_t commit[32];
	const char *etag;
	uint32_t dek;
	int64_t mtime;
	int rc;

	atrest__snap_dname(name, &o->ref);
	rc = atrest__reader_open_internal(out, s->st, name);
	if (rc == ATREST_ENOTFOUND)
		return missing(s, name, file);
	if (rc == ATREST_EINTEGRITY)
		atrest__error_prefix("file '%s': object %s", file, name);
	GUARD(rc);
	atrest__reader_facts(*out, commit, &dek, &etag, &mtime);
	if (!atrest__ct_equal(commit, o->commit, sizeof(commit)) || dek != o->dek)
		rc = atrest__error(ATREST_EINTEGRITY,
			"file '%s': object %s is not the version the snapshot recorded "
			"(replaced, or rolled back to an older one)",
			file, name);
	else if (atrest_reader_size(*out) != o->size)
		rc = atrest__error(ATREST_EINTEGRITY,
			"file '%s': object %s has %llu bytes, the snapshot recorded %llu",
			file, name, (unsigned long long)atrest_reader_size(*out),
			(unsigned long long)o->size);
	if (rc < 0) {
		atrest_reader_close(*out);
		*out = NULL;
	}
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n, const char *file)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return atrest__error_os(
				atrest__errno_code(errno), errno, "writing '%s'", file);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int atrest__snap_copy(atrest_reader *r, uint64_t len, atrest__mac *mac, int fd,
	uint8_t *buf, size_t cap, const char *file)
{
	size_t got;

	while (len > 0) {
		size_t want = len < cap ? (size_t)len : cap;
		int rc = atrest_reader_read(r, buf, want, &got);
		if (rc < 0) {
			atrest__error_prefix("file '%s'", file);
			return rc;
		}
		ENSURE(got > 0, ATREST_EINTEGRITY, "file '%s': its object ends too soon",
			file);
		if (mac)
			GUARD(atrest__mac_update(mac, buf, got));
		if (fd >= 0)
			GUARD(write_all(fd, buf, got, file));
		len -= got;
	}
	return 0;
}

int atrest__snap_check_hash(atrest__mac *mac, const atrest__snap_ent *e)
{
	uint8_t h[ATREST__SNAP_HASH_LEN];

	GUARD(atrest__mac_final(mac, h));
	ENSURE(atrest__ct_equal(h, e->hash, sizeof(h)), ATREST_EINTEGRITY,
		"file '%s': its bytes do not match the hash the snapshot recorded",
		e->path);
	return 0;
}

/* ---- one file ---- */

struct atrest_snap_reader {
	atrest_snapshot *s;
	const atrest__snap_ent *e;
	atrest_reader *r;
	atrest__mac *mac;
	uint64_t left;
	int failed;
};

int atrest_snapshot_entry_open(atrest_snap_reader **out, atrest_snapshot *s, size_t i)
{
	const atrest__snap_ent *e;
	atrest_snap_reader *r;
	int rc = 0;

	*out = NULL;
	ENSURE(i < s->m->nent, ATREST_EINVAL, "no entry %zu", i);
	e = &s->m->ents[i];
	if (e->type == ATREST__SNAP_HARDLINK)
		e = &s->m->ents[e->link];
	ENSURE(e->type == ATREST__SNAP_FILE, ATREST_EINVAL, "'%s' is not a file",
		e->path);
	r = calloc(1, sizeof(*r));
	ENSURE(r, ATREST_ERROR, "out of memory");
	r->s = s;
	r->e = e;
	r->left = e->size;
	if (e->size) {
		rc = atrest__snapshot_obj_open(&r->r, s, e->obj, e->path);
		if (rc == 0)
			rc = atrest_reader_seek(r->r, e->off);
		if (rc == 0)
			rc = atrest__snap_mac(
				&r->mac, &s->hk, s->st, s->m->objs[e->obj].dek);
	}
	if (rc < 0) {
		atrest_snap_reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int atrest_snap_reader_read(atrest_snap_reader *r, void *buf, size_t len, size_t *got)
{
	size_t want = len < r->left ? len : (size_t)r->left, n;
	int rc;

	*got = 0;
	ENSURE(!r->failed, ATREST_EINVAL, "reader already failed");
	if (want == 0)
		return 0;
	rc = atrest_reader_read(r->r, buf, want, &n);
	if (rc == 0 && n == 0)
		rc = atrest__error(ATREST_EINTEGRITY,
			"file '%s': its object ends too soon", r->e->path);
	if (rc == 0)
		rc = atrest__mac_update(r->mac, buf, n);
	if (rc == 0 && (r->left -= n) == 0)
		rc = atrest__snap_check_hash(r->mac, r->e);
	if (rc < 0) {
		atrest__wipe(buf, want);
		r->failed = 1;
		return rc;
	}
	*got = n;
	return 0;
}

void atrest_snap_reader_close(atrest_snap_reader *r)
{
	if (!r)
		return;
	atrest_reader_close(r->r);
	atrest__mac_free(r->mac);
	free(r);
}

/* ---- the snapshot's own set ---- */

typedef struct extra_ctx {
	atrest_snapshot *s;
	size_t n;
	void (*cb)(const char *name, void *payload);
	void *payload;
} extra_ctx;

static int obj_known(const atrest__manifest *m, const atrest__snap_ref *r)
{
	size_t lo = 0, hi = m->nobj;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = atrest__snap_ref_cmp(&m->objs[mid].ref, r);
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int extra_one(const char *rel, uint64_t size, int64_t mtime, void *p)
{
	extra_ctx *c = p;
	atrest__snap_ref r;
	char name[SNAP_NAME_MAX];

	(void)size;
	(void)mtime;
	if (atrest__snap_parse_dref(&r, rel + 2) == 0 && obj_known(c->s->m, &r))
		return 0;
	snprintf(name, sizeof(name), SNAP_ROOT "%s", rel);
	c->n++;
	if (c->cb)
		c->cb(name, c->payload);
	return 0;
}

int atrest__snapshot_extra(atrest_snapshot *s, size_t *n,
	void (*cb)(const char *name, void *payload), void *payload)
{
	extra_ctx c = {s, 0, cb, payload};
	atrest__snap_ref r = {{0}, 0};
	char sub[SNAP_NAME_MAX];

	memcpy(r.writer, s->m->writer, sizeof(r.writer));
	atrest__snap_dname(sub, &r); /* .atrest/snap/d/<hex>/0 */
	strrchr(sub, '/')[1] = '\0';
	GUARD(atrest__snap_list(s->st, sub + sizeof(SNAP_ROOT) - 1, extra_one, &c));
	*n = c.n;
	return 0;
}
