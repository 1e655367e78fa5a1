/*
 * Coding of the snapshot formats (FORMAT.md section 8): one strict decoder
 * per structure, and a check of every rule shared by the encoder (which
 * refuses to write a broken manifest) and the decoder (which refuses one).
 */
#include <stdlib.h>
#include <string.h>

#include "atrest/store.h"
#include "buf.h"
#include "manifest.h"

static const uint8_t MANIFEST_MAGIC[8] = {0x89, 'A', 'T', 'S', 'N', 'A', 'P', 1};
static const uint8_t LEASE_MAGIC[8] = {0x89, 'A', 'T', 'L', 'E', 'A', 'S', 1};
static const uint8_t MARKER_MAGIC[8] = {0x89, 'A', 'T', 'G', 'C', 'M', 'K', 1};
static const uint8_t SEQ_MAGIC[8] = {0x89, 'A', 'T', 'S', 'E', 'Q', 'N', 1};

#define HEAD_FIXED 44 /* magic, flags, seq, created, writer */
#define OBJ_LEN 64    /* writer, index, dek, size, commitment */
#define ENT_MIN 25    /* type, path length, mode, uid, gid, mtime, xattr count */

int atrest__snap_ref_cmp(const atrest__snap_ref *a, const atrest__snap_ref *b)
{
	int c = memcmp(a->writer, b->writer, ATREST__SNAP_ID_LEN);

	if (c)
		return c;
	return a->index < b->index ? -1 : a->index > b->index;
}

int atrest__snap_path_cmp(const char *a, const char *b)
{
	return strcmp(a, b);
}

static int bad(const char *what)
{
	return atrest__error(ATREST_EINTEGRITY, "snapshot manifest malformed: %s", what);
}

int atrest__snap_path_check(const char *path, size_t len)
{
	size_t start = 0;

	if (len == 0)
		return 0;
	if (len > ATREST__SNAP_PATH_MAX)
		return bad("a path is longer than 4095 bytes");
	for (size_t i = 0; i <= len; i++) {
		size_t n = i - start;
		if (i < len && path[i] == '\0')
			return bad("a path holds a NUL byte");
		if (i < len && path[i] != '/')
			continue;
		if (n == 0 || n > 255)
			return bad("a path has an empty or over-long component");
		if ((n == 1 && path[start] == '.') ||
			(n == 2 && path[start] == '.' && path[start + 1] == '.'))
			return bad("a path has a \".\" or \"..\" component");
		start = i + 1;
	}
	return 0;
}

static int ent_key(const void *key, const void *e)
{
	return atrest__snap_path_cmp(key, ((const atrest__snap_ent *)e)->path);
}

long atrest__manifest_find(const atrest__manifest *m, const char *path)
{
	const atrest__snap_ent *e = m->nent
		? bsearch(path, m->ents, m->nent, sizeof(*m->ents), ent_key)
		: NULL;

	return e ? e - m->ents : -1;
}

/* The parent directory of entry i must be an earlier DIR entry. */
static int check_parent(const atrest__manifest *m, size_t i)
{
	const char *p = m->ents[i].path, *slash = strrchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : 0;
	char buf[ATREST__SNAP_PATH_MAX + 1];
	long j;

	memcpy(buf, p, n);
	buf[n] = '\0';
	j = atrest__manifest_find(m, buf);
	if (j < 0 || m->ents[j].type != ATREST__SNAP_DIR)
		return bad("an entry's parent is not a directory of the snapshot");
	return 0;
}

static int check_xattrs(const atrest__snap_ent *e)
{
	ENSURE(e->nxattr <= ATREST__SNAP_XATTRS_MAX, ATREST_EINTEGRITY,
		"snapshot manifest malformed: too many extended attributes");
	for (size_t k = 0; k < e->nxattr; k++) {
		size_t n = strlen(e->xattrs[k].name);
		if (n == 0 || n > ATREST__SNAP_XNAME_MAX ||
			e->xattrs[k].len > ATREST__SNAP_XVALUE_MAX)
			return bad("an extended attribute is empty or too long");
		if (k > 0 && strcmp(e->xattrs[k - 1].name, e->xattrs[k].name) >= 0)
			return bad("extended attributes out of order or repeated");
	}
	return 0;
}

static int check_file(const atrest__manifest *m, const atrest__snap_ent *e, uint8_t *used)
{
	static const uint8_t zero[ATREST__SNAP_HASH_LEN];
	const atrest__snap_obj *o;

	if (e->size == 0) {
		if (e->obj != ATREST__SNAP_NOOBJ || e->off != 0 ||
			memcmp(e->hash, zero, sizeof(zero)) != 0)
			return bad("an empty file names an object");
		return 0;
	}
	if (e->obj >= m->nobj)
		return bad("a file names an object not in the table");
	o = &m->objs[e->obj];
	if (e->off > o->size || e->size > o->size - e->off)
		return bad("a file's bytes run past the end of its object");
	used[e->obj] = 1;
	return 0;
}

static int check_entry(const atrest__manifest *m, size_t i, uint8_t *used)
{
	const atrest__snap_ent *e = &m->ents[i];

	GUARD(atrest__snap_path_check(e->path, strlen(e->path)));
	if (i == 0) {
		ENSURE(e->path[0] == '\0' && e->type == ATREST__SNAP_DIR,
			ATREST_EINTEGRITY,
			"snapshot manifest malformed: the first entry is not the root "
			"directory");
	} else {
		if (atrest__snap_path_cmp(m->ents[i - 1].path, e->path) >= 0)
			return bad("entries out of order or repeated");
		GUARD(check_parent(m, i));
	}
	if (e->mode & ~ATREST__SNAP_MODE_MASK)
		return bad("a mode has bits beyond 07777");
	GUARD(check_xattrs(e));
	switch (e->type) {
	case ATREST__SNAP_DIR:
	case ATREST__SNAP_FIFO:
	case ATREST__SNAP_CHAR:
	case ATREST__SNAP_BLOCK:
		return 0;
	case ATREST__SNAP_FILE:
		return check_file(m, e, used);
	case ATREST__SNAP_SYMLINK: {
		size_t n = e->target ? strlen(e->target) : 0;
		if (n == 0 || n > ATREST__SNAP_TARGET_MAX)
			return bad("a symbolic link's target is empty or too long");
		return 0;
	}
	case ATREST__SNAP_HARDLINK:
		if (e->link >= i || m->ents[e->link].type != ATREST__SNAP_FILE)
			return bad("a hard link does not name an earlier file");
		return 0;
	default:
		return bad("unknown entry type");
	}
}

static int check_name(const char *name, int may_be_empty)
{
	size_t n = strlen(name);

	if (n == 0 && may_be_empty)
		return 0;
	if (n > ATREST__SNAP_NAME_MAX || atrest_name_check(name) < 0)
		return bad("invalid snapshot name");
	return 0;
}

int atrest__manifest_check(const atrest__manifest *m)
{
	uint8_t *used;
	int rc = 0;

	ENSURE(m->seq >= 1, ATREST_EINTEGRITY, "snapshot manifest malformed: sequence 0");
	GUARD(check_name(m->name, 0));
	GUARD(check_name(m->parent, 1));
	ENSURE(m->nent >= 1, ATREST_EINTEGRITY, "snapshot manifest malformed: no root");
	for (size_t k = 0; k < m->nobj; k++) {
		if (k > 0 &&
			atrest__snap_ref_cmp(&m->objs[k - 1].ref, &m->objs[k].ref) >= 0)
			return bad("objects out of order or repeated");
		if (m->objs[k].size == 0 || m->objs[k].dek == 0)
			return bad("an object is empty or has no data key");
	}
	used = calloc(m->nobj ? m->nobj : 1, 1);
	ENSURE(used, ATREST_ERROR, "out of memory");
	for (size_t i = 0; i < m->nent && rc == 0; i++)
		rc = check_entry(m, i, used);
	for (size_t k = 0; k < m->nobj && rc == 0; k++)
		if (!used[k])
			rc = bad("an object no file uses");
	free(used);
	return rc;
}

/* ---- encoding ---- */

static void put16(atrest__buf *b, uint16_t v)
{
	uint8_t x[2];

	atrest__put_le16(x, v);
	atrest__buf_put(b, x, 2);
}

static void put32(atrest__buf *b, uint32_t v)
{
	uint8_t x[4];

	atrest__put_le32(x, v);
	atrest__buf_put(b, x, 4);
}

static void put64(atrest__buf *b, uint64_t v)
{
	uint8_t x[8];

	atrest__put_le64(x, v);
	atrest__buf_put(b, x, 8);
}

static void put_str16(atrest__buf *b, const char *s)
{
	size_t n = strlen(s);

	put16(b, (uint16_t)n);
	atrest__buf_put(b, s, n);
}

static void put_ref(atrest__buf *b, const atrest__snap_ref *r)
{
	atrest__buf_put(b, r->writer, ATREST__SNAP_ID_LEN);
	put32(b, r->index);
}

static void put_entry(atrest__buf *b, const atrest__snap_ent *e)
{
	atrest__buf_putc(b, (char)e->type);
	put_str16(b, e->path);
	put32(b, e->mode);
	put32(b, e->uid);
	put32(b, e->gid);
	put64(b, (uint64_t)e->mtime);
	if (e->type == ATREST__SNAP_FILE) {
		put64(b, e->size);
		put32(b, e->obj);
		put64(b, e->off);
		atrest__buf_put(b, e->hash, ATREST__SNAP_HASH_LEN);
	} else if (e->type == ATREST__SNAP_SYMLINK) {
		put_str16(b, e->target);
	} else if (e->type == ATREST__SNAP_HARDLINK) {
		put32(b, e->link);
	} else if (e->type == ATREST__SNAP_CHAR || e->type == ATREST__SNAP_BLOCK) {
		put64(b, e->rdev);
	}
	put16(b, e->nxattr);
	for (size_t k = 0; k < e->nxattr; k++) {
		size_t n = strlen(e->xattrs[k].name);
		atrest__buf_putc(b, (char)n);
		atrest__buf_put(b, e->xattrs[k].name, n);
		put32(b, e->xattrs[k].len);
		atrest__buf_put(b, e->xattrs[k].value, e->xattrs[k].len);
	}
}

int atrest__manifest_encode(uint8_t **out, size_t *out_len, const atrest__manifest *m)
{
	atrest__buf b = ATREST__BUF_INIT;
	atrest__saved_error why;
	int rc = atrest__manifest_check(m);

	*out = NULL;
	*out_len = 0;
	if (rc == ATREST_EINTEGRITY) {
		atrest__error_save(&why);
		return atrest__error(ATREST_EINVAL, "%s", why.message);
	}
	GUARD(rc);
	ENSURE(m->nobj <= UINT32_MAX && m->nent <= UINT32_MAX, ATREST_EINVAL,
		"snapshot too large");
	atrest__buf_put(&b, MANIFEST_MAGIC, sizeof(MANIFEST_MAGIC));
	put32(&b, 0);
	put64(&b, m->seq);
	put64(&b, (uint64_t)m->created);
	atrest__buf_put(&b, m->writer, ATREST__SNAP_ID_LEN);
	put_str16(&b, m->name);
	put_str16(&b, m->parent);
	put32(&b, (uint32_t)m->nobj);
	put32(&b, (uint32_t)m->nent);
	for (size_t k = 0; k < m->nobj; k++) {
		put_ref(&b, &m->objs[k].ref);
		put32(&b, m->objs[k].dek);
		put64(&b, m->objs[k].size);
		atrest__buf_put(&b, m->objs[k].commit, 32);
	}
	for (size_t i = 0; i < m->nent; i++)
		put_entry(&b, &m->ents[i]);
	if (atrest__buf_check(&b) < 0) {
		atrest__buf_free(&b);
		return ATREST_ERROR;
	}
	*out_len = b.len;
	*out = (uint8_t *)atrest__buf_take(&b);
	return 0;
}

/* ---- decoding ---- */

typedef struct cursor {
	const uint8_t *p;
	size_t left;
	int short_; /* ran past the end */
} cursor;

static const uint8_t *take(cursor *c, size_t n)
{
	const uint8_t *p = c->p;

	if (c->short_ || n > c->left) {
		c->short_ = 1;
		return NULL;
	}
	c->p += n;
	c->left -= n;
	return p;
}

static uint8_t get8(cursor *c)
{
	const uint8_t *p = take(c, 1);
	return p ? p[0] : 0;
}

static uint16_t get16(cursor *c)
{
	const uint8_t *p = take(c, 2);
	return p ? atrest__le16(p) : 0;
}

static uint32_t get32(cursor *c)
{
	const uint8_t *p = take(c, 4);
	return p ? atrest__le32(p) : 0;
}

static uint64_t get64(cursor *c)
{
	const uint8_t *p = take(c, 8);
	return p ? atrest__le64(p) : 0;
}

/* Strings of a decoded manifest are copied, NUL-terminated, into one arena. */
typedef struct arena {
	char *base;
	size_t used, cap;
} arena;

/* n bytes of c as a string; NULL when short or holding a NUL byte. */
static const char *get_str(cursor *c, arena *a, size_t n)
{
	const uint8_t *p = take(c, n);
	char *s;

	if (!p || memchr(p, '\0', n) || a->used + n + 1 > a->cap)
		return NULL;
	s = a->base + a->used;
	memcpy(s, p, n);
	s[n] = '\0';
	a->used += n + 1;
	return s;
}

/* n bytes of c copied into the arena (they outlive the input). */
static const uint8_t *get_blob(cursor *c, arena *a, size_t n)
{
	const uint8_t *p = take(c, n);
	char *s;

	if (!p || a->used + n + 1 > a->cap)
		return NULL;
	s = a->base + a->used;
	memcpy(s, p, n);
	a->used += n + 1;
	return (const uint8_t *)s;
}

typedef struct mstore {
	atrest__manifest m;
	atrest__snap_obj *objs;
	atrest__snap_ent *ents;
	atrest__snap_xattr *xattrs;
	size_t nxattr, xcap;
	arena ar;
} mstore;

static int get_xattrs(cursor *c, mstore *s, atrest__snap_ent *e)
{
	size_t start = s->nxattr;

	e->nxattr = get16(c);
	if (c->short_)
		return bad("cut short inside an entry");
	ENSURE(e->nxattr <= ATREST__SNAP_XATTRS_MAX && (size_t)e->nxattr * 5 <= c->left,
		ATREST_EINTEGRITY,
		"snapshot manifest malformed: too many extended "
		"attributes");
	if (s->nxattr + e->nxattr > s->xcap) {
		size_t cap = (s->xcap + e->nxattr) * 2;
		atrest__snap_xattr *x = realloc(s->xattrs, cap * sizeof(*x));
		ENSURE(x, ATREST_ERROR, "out of memory");
		s->xattrs = x;
		s->xcap = cap;
	}
	for (size_t k = 0; k < e->nxattr; k++) {
		atrest__snap_xattr *x = &s->xattrs[s->nxattr++];
		x->name = get_str(c, &s->ar, get8(c));
		x->len = get32(c);
		x->value = x->len <= ATREST__SNAP_XVALUE_MAX ? get_blob(c, &s->ar, x->len)
							     : NULL;
		if (!x->name || (!x->value && x->len))
			return bad("an extended attribute is cut or malformed");
	}
	/* Pointers are fixed once every entry is read (the array may move). */
	e->xattrs = (const atrest__snap_xattr *)(uintptr_t)start;
	return 0;
}

static int get_entry(cursor *c, mstore *s, atrest__snap_ent *e)
{
	e->type = get8(c);
	e->path = get_str(c, &s->ar, get16(c));
	e->mode = get32(c);
	e->uid = get32(c);
	e->gid = get32(c);
	e->mtime = (int64_t)get64(c);
	e->obj = ATREST__SNAP_NOOBJ;
	if (e->type == ATREST__SNAP_FILE) {
		const uint8_t *h;
		e->size = get64(c);
		e->obj = get32(c);
		e->off = get64(c);
		if ((h = take(c, ATREST__SNAP_HASH_LEN)) != NULL)
			memcpy(e->hash, h, ATREST__SNAP_HASH_LEN);
	} else if (e->type == ATREST__SNAP_SYMLINK) {
		e->target = get_str(c, &s->ar, get16(c));
		if (!e->target && !c->short_)
			return bad("a symbolic link's target holds a NUL byte");
	} else if (e->type == ATREST__SNAP_HARDLINK) {
		e->link = get32(c);
	} else if (e->type == ATREST__SNAP_CHAR || e->type == ATREST__SNAP_BLOCK) {
		e->rdev = get64(c);
	}
	if (c->short_)
		return bad("cut short inside an entry");
	if (!e->path)
		return bad("a path holds a NUL byte");
	return get_xattrs(c, s, e);
}

static int get_objects(cursor *c, mstore *s, uint32_t n)
{
	ENSURE((uint64_t)n * OBJ_LEN <= c->left, ATREST_EINTEGRITY,
		"snapshot manifest malformed: object table cut short");
	s->objs = calloc(n ? n : 1, sizeof(*s->objs));
	ENSURE(s->objs, ATREST_ERROR, "out of memory");
	for (uint32_t k = 0; k < n; k++) {
		atrest__snap_obj *o = &s->objs[k];
		memcpy(o->ref.writer, take(c, ATREST__SNAP_ID_LEN), ATREST__SNAP_ID_LEN);
		o->ref.index = get32(c);
		o->dek = get32(c);
		o->size = get64(c);
		memcpy(o->commit, take(c, 32), 32);
	}
	s->m.objs = s->objs;
	s->m.nobj = n;
	return 0;
}

static int get_entries(cursor *c, mstore *s, uint32_t n)
{
	ENSURE((uint64_t)n * ENT_MIN <= c->left, ATREST_EINTEGRITY,
		"snapshot manifest malformed: entries cut short");
	s->ents = calloc(n ? n : 1, sizeof(*s->ents));
	ENSURE(s->ents, ATREST_ERROR, "out of memory");
	s->m.ents = s->ents;
	for (uint32_t i = 0; i < n; i++) {
		GUARD(get_entry(c, s, &s->ents[i]));
		s->m.nent = i + 1;
	}
	for (uint32_t i = 0; i < n; i++)
		s->ents[i].xattrs = s->ents[i].nxattr
			? s->xattrs + (uintptr_t)s->ents[i].xattrs
			: NULL;
	return 0;
}

/* The fixed part and the two names. */
static int get_head(
	cursor *c, atrest__manifest *m, arena *ar, uint32_t *nobj, uint32_t *nent)
{
	const uint8_t *magic = take(c, sizeof(MANIFEST_MAGIC)), *w;

	ENSURE(magic && memcmp(magic, MANIFEST_MAGIC, 7) == 0, ATREST_EINTEGRITY,
		"not a snapshot manifest");
	ENSURE(magic[7] == 1, ATREST_EINTEGRITY,
		"snapshot manifest of unknown version %u", magic[7]);
	if (get32(c) != 0)
		return bad("unknown flags");
	m->seq = get64(c);
	m->created = (int64_t)get64(c);
	w = take(c, ATREST__SNAP_ID_LEN);
	if (w)
		memcpy(m->writer, w, ATREST__SNAP_ID_LEN);
	m->name = get_str(c, ar, get16(c));
	m->parent = get_str(c, ar, get16(c));
	*nobj = get32(c);
	*nent = get32(c);
	if (c->short_ || !m->name || !m->parent)
		return bad("cut short in its head, or a name holds a NUL byte");
	return 0;
}

void atrest__manifest_free(atrest__manifest *m)
{
	mstore *s = (mstore *)m;

	if (!m)
		return;
	free(s->objs);
	free(s->ents);
	free(s->xattrs);
	free(s->ar.base);
	free(s);
}

int atrest__manifest_decode(atrest__manifest **out, const uint8_t *buf, size_t len)
{
	cursor c = {buf, len, 0};
	uint32_t nobj = 0, nent = 0;
	mstore *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	ENSURE(s, ATREST_ERROR, "out of memory");
	s->m.store_ = s;
	s->ar.cap = 2 * len + 16; /* a string costs at least one length byte */
	s->ar.base = malloc(s->ar.cap);
	ENSURE_OUT(s->ar.base, ATREST_ERROR, "out of memory");
	GUARD_OUT(get_head(&c, &s->m, &s->ar, &nobj, &nent));
	GUARD_OUT(get_objects(&c, s, nobj));
	GUARD_OUT(get_entries(&c, s, nent));
	ENSURE_OUT(!c.short_ && c.left == 0, ATREST_EINTEGRITY,
		"snapshot manifest malformed: bytes after the last entry");
	GUARD_OUT(atrest__manifest_check(&s->m));
	*out = &s->m;
	return 0;
out:
	atrest__manifest_free(&s->m);
	return rc;
}

int atrest__manifest_head_decode(
	atrest__manifest_head *out, const uint8_t *buf, size_t len)
{
	char names[2 * (ATREST__SNAP_NAME_MAX + 1) + 8];
	arena ar = {names, 0, sizeof(names)};
	cursor c = {buf, len, 0};
	atrest__manifest m = {0};

	memset(out, 0, sizeof(*out));
	GUARD(get_head(&c, &m, &ar, &out->nobj, &out->nent));
	GUARD(check_name(m.name, 0));
	GUARD(check_name(m.parent, 1));
	ENSURE(m.seq >= 1, ATREST_EINTEGRITY, "snapshot manifest malformed: sequence 0");
	out->seq = m.seq;
	out->created = m.created;
	memcpy(out->writer, m.writer, sizeof(out->writer));
	strcpy(out->name, m.name);
	strcpy(out->parent, m.parent);
	return 0;
}

/* ---- lease, marker, counter ---- */

int atrest__lease_encode(uint8_t **out, size_t *out_len, const atrest__snap_lease *l)
{
	atrest__buf b = ATREST__BUF_INIT;

	*out = NULL;
	for (size_t k = 1; k < l->nref; k++)
		ENSURE(atrest__snap_ref_cmp(&l->refs[k - 1], &l->refs[k]) < 0,
			ATREST_EINVAL, "lease references out of order");
	ENSURE(l->nref <= UINT32_MAX, ATREST_EINVAL, "lease too large");
	atrest__buf_put(&b, LEASE_MAGIC, sizeof(LEASE_MAGIC));
	put32(&b, l->ttl);
	put64(&b, (uint64_t)l->created);
	put32(&b, (uint32_t)l->nref);
	for (size_t k = 0; k < l->nref; k++)
		put_ref(&b, &l->refs[k]);
	if (atrest__buf_check(&b) < 0) {
		atrest__buf_free(&b);
		return ATREST_ERROR;
	}
	*out_len = b.len;
	*out = (uint8_t *)atrest__buf_take(&b);
	return 0;
}

int atrest__lease_decode(atrest__snap_lease *out, const uint8_t *buf, size_t len)
{
	cursor c = {buf, len, 0};
	const uint8_t *magic = take(&c, sizeof(LEASE_MAGIC));
	uint32_t n;

	memset(out, 0, sizeof(*out));
	ENSURE(magic && memcmp(magic, LEASE_MAGIC, sizeof(LEASE_MAGIC)) == 0,
		ATREST_EINTEGRITY, "not a snapshot writer's lease");
	out->ttl = get32(&c);
	out->created = (int64_t)get64(&c);
	n = get32(&c);
	ENSURE(!c.short_ && out->ttl > 0 && (uint64_t)n * 20 == c.left, ATREST_EINTEGRITY,
		"snapshot writer's lease malformed");
	out->refs = calloc(n ? n : 1, sizeof(*out->refs));
	ENSURE(out->refs, ATREST_ERROR, "out of memory");
	for (uint32_t k = 0; k < n; k++) {
		memcpy(out->refs[k].writer, take(&c, ATREST__SNAP_ID_LEN),
			ATREST__SNAP_ID_LEN);
		out->refs[k].index = get32(&c);
		if (k > 0 &&
			atrest__snap_ref_cmp(&out->refs[k - 1], &out->refs[k]) >= 0) {
			free(out->refs);
			out->refs = NULL;
			return atrest__error(ATREST_EINTEGRITY,
				"snapshot writer's lease malformed: references out of order");
		}
	}
	out->nref = n;
	return 0;
}

void atrest__marker_encode(
	uint8_t out[ATREST__SNAP_MARKER_LEN], uint32_t ttl, int64_t created)
{
	memcpy(out, MARKER_MAGIC, 8);
	atrest__put_le32(out + 8, ttl);
	atrest__put_le64(out + 12, (uint64_t)created);
}

int atrest__marker_decode(uint32_t *ttl, int64_t *created, const uint8_t *buf, size_t len)
{
	ENSURE(len == ATREST__SNAP_MARKER_LEN && memcmp(buf, MARKER_MAGIC, 8) == 0 &&
			atrest__le32(buf + 8) > 0,
		ATREST_EINTEGRITY, "gc marker malformed");
	*ttl = atrest__le32(buf + 8);
	*created = (int64_t)atrest__le64(buf + 12);
	return 0;
}

void atrest__seqobj_encode(uint8_t out[ATREST__SNAP_SEQ_LEN], uint64_t seq)
{
	memcpy(out, SEQ_MAGIC, 8);
	atrest__put_le64(out + 8, seq);
}

int atrest__seqobj_decode(uint64_t *seq, const uint8_t *buf, size_t len)
{
	ENSURE(len == ATREST__SNAP_SEQ_LEN && memcmp(buf, SEQ_MAGIC, 8) == 0,
		ATREST_EINTEGRITY, "snapshot sequence counter malformed");
	*seq = atrest__le64(buf + 8);
	return 0;
}
