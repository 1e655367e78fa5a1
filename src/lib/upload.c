/*
 * Multipart uploads (include/atrest/upload.h): each upload is a sealed
 * record and sealed parts under .atrest/uploads/<id>/; completion writes a
 * multipart object (a part list) under the name, one header read per part.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "names.h"
#include "store_int.h"
#include "upload_int.h"

#define RECORD "record"
#define NAME_MAX_ ATREST__PART_NAME_MAX

/* ---- the upload's directory ---- */

static int rec_name(char *out, size_t cap, const char *id)
{
	int n = snprintf(out, cap, ATREST__UPLOAD_DIR "%s/" RECORD, id);

	ENSURE(n > 0 && (size_t)n < cap, ATREST_EINVAL, "upload id too long");
	return 0;
}

/* One key of the upload area, as the name of the library's own object. */
typedef int (*key_fn)(const char *name, uint64_t size, int64_t mtime, void *payload);

typedef struct walk {
	size_t skip; /* the backend key of ATREST__UPLOAD_DIR */
	key_fn fn;
	void *payload;
} walk;

static int walk_one(const char *key, uint64_t size, int64_t mtime, void *p)
{
	walk *w = p;
	char name[NAME_MAX_];
	int n = snprintf(name, sizeof(name), ATREST__UPLOAD_DIR "%s", key + w->skip);

	if (n < 0 || (size_t)n >= sizeof(name))
		return 0; /* nothing of ours is that long */
	return w->fn(name, size, mtime, w->payload);
}

/* Every key under ATREST__UPLOAD_DIR + sub (this handle's tenant only). */
static int walk_keys(atrest_store *st, const char *sub, key_fn fn, void *payload)
{
	char key[ATREST__STORE_KEY_MAX], base[ATREST__STORE_KEY_MAX], dir[NAME_MAX_];
	walk w = {0, fn, payload};

	snprintf(dir, sizeof(dir), ATREST__UPLOAD_DIR "%s", sub);
	GUARD(atrest__store_key(base, sizeof(base), st, ATREST__UPLOAD_DIR));
	GUARD(atrest__store_key(key, sizeof(key), st, dir));
	w.skip = strlen(base);
	return atrest__b_list(st->b, key, walk_one, &w);
}

/* A growing list of names. */
typedef struct names {
	char **v;
	int64_t *mtime;
	size_t n, cap;
} names;

static int names_add(const char *name, uint64_t size, int64_t mtime, void *p)
{
	names *l = p;

	(void)size;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **v = realloc(l->v, cap * sizeof(*v));
		int64_t *t = v ? realloc(l->mtime, cap * sizeof(*t)) : NULL;
		if (v)
			l->v = v;
		ENSURE(v && t, ATREST_ERROR, "out of memory");
		l->mtime = t;
		l->cap = cap;
	}
	ENSURE((l->v[l->n] = strdup(name)) != NULL, ATREST_ERROR, "out of memory");
	l->mtime[l->n++] = mtime;
	return 0;
}

static void names_free(names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->mtime);
	memset(l, 0, sizeof(*l));
}

/* The keys of upload id's directory. */
static int dir_names(names *l, atrest_store *st, const char *id)
{
	char sub[ATREST__UPLOAD_ID_MAX + 2];
	int rc;

	memset(l, 0, sizeof(*l));
	snprintf(sub, sizeof(sub), "%s/", id);
	rc = walk_keys(st, sub, names_add, l);
	if (rc < 0)
		names_free(l);
	return rc;
}

/* The part number of a key of the directory (0: not a part's). */
static uint32_t part_number(const char *name)
{
	const char *base = strrchr(name, '/');
	char *end;
	unsigned long n;

	if (!base || strlen(base + 1) != 22 || base[6] != '-')
		return 0;
	n = strtoul(base + 1, &end, 10);
	return end == base + 6 && n >= 1 && n <= ATREST_UPLOAD_MAX_PARTS ? (uint32_t)n
									 : 0;
}

/*
 * Remove upload id: its parts (except keep[0..nkeep), strictly
 * increasing), then, when all goes, its record last.
 */
static int drop_parts(atrest_store *st, const char *id, const uint32_t *keep,
	size_t nkeep, int with_record)
{
	char rec[NAME_MAX_];
	names l;
	size_t k = 0;
	int rc = 0;

	GUARD(rec_name(rec, sizeof(rec), id));
	GUARD(dir_names(&l, st, id));
	for (size_t i = 0; i < l.n && rc == 0; i++) {
		uint32_t n = part_number(l.v[i]);
		while (k < nkeep && keep[k] < n)
			k++;
		if (strcmp(l.v[i], rec) == 0 || (n && k < nkeep && keep[k] == n))
			continue;
		rc = atrest__object_remove(st, l.v[i], 1);
		if (rc == ATREST_ENOTFOUND)
			rc = 0;
	}
	names_free(&l);
	if (rc == 0 && with_record) {
		rc = atrest__object_remove(st, rec, 1);
		rc = rc == ATREST_ENOTFOUND ? 0 : rc;
	}
	return rc;
}

void atrest__upload_release(atrest_store *st, const char *id)
{
	atrest__saved_error before;

	atrest__error_save(&before);
	(void)drop_parts(st, id, NULL, 0, 1);
	atrest__error_restore(&before);
}

/* ---- the record ---- */

typedef struct upload {
	atrest__up_rec rec;
	atrest__part_facts f; /* its etag and the object's metadata */
} upload;

static void upload_free(upload *u)
{
	free(u->f.meta);
	u->f.meta = NULL;
}

static int rec_read(upload *u, atrest_store *st, const char *id)
{
	char rec[NAME_MAX_];
	uint8_t *buf;
	size_t len;
	int rc;

	memset(u, 0, sizeof(*u));
	GUARD(rec_name(rec, sizeof(rec), id));
	GUARD(atrest__internal_read(&buf, &len, &u->f, st, rec, ATREST__UP_REC_MAX));
	rc = atrest__up_rec_parse(&u->rec, buf, len);
	free(buf);
	if (rc < 0)
		upload_free(u);
	return rc;
}

/* The record of an upload of name in state want, else ATREST_ENOTFOUND. */
static int rec_get(
	upload *u, atrest_store *st, const char *name, const char *id, uint8_t want)
{
	int rc;

	GUARD(atrest_name_check(name));
	GUARD(atrest__upload_id_check(id));
	rc = rec_read(u, st, id);
	if (rc == ATREST_ENOTFOUND || (rc == 0 && strcmp(u->rec.name, name) != 0))
		rc = atrest__error(ATREST_ENOTFOUND, "no upload '%s' of '%s'", id, name);
	GUARD(rc);
	if (u->rec.state == want)
		return 0;
	rc = u->rec.state == ATREST__UP_COMPLETING
		? atrest__error(ATREST_ECONFLICT, "upload '%s' is being completed", id)
		: atrest__error(ATREST_ENOTFOUND, "upload '%s' of '%s' is %s", id, name,
			  u->rec.state == ATREST__UP_COMPLETED ? "completed" : "aborted");
	upload_free(u);
	return rc;
}

/* Write the record (flags: a condition on the version etag). */
static int rec_write(atrest_store *st, const char *id, const upload *u, uint8_t state,
	unsigned int flags)
{
	atrest_meta meta = {u->f.meta, u->f.meta_count};
	uint8_t buf[ATREST__UP_REC_MAX];
	char rec[NAME_MAX_];
	atrest__up_rec r = u->rec;
	atrest_writer *w;
	size_t len;
	int rc;

	r.state = state;
	GUARD(rec_name(rec, sizeof(rec), id));
	GUARD(atrest__up_rec_encode(buf, sizeof(buf), &len, &r));
	GUARD(atrest__writer_open_upload(&w, st, rec, &meta, flags,
		flags & ATREST_BACKEND_IF_MATCH ? u->f.etag : NULL, ATREST__W_QUIET));
	rc = atrest_writer_write(w, buf, len);
	if (rc < 0) {
		atrest_writer_abort(w);
		return rc;
	}
	return atrest_writer_commit(w);
}

/* ---- the public calls ---- */

static int create(char **upload_id, atrest_store *st, const char *name,
	const atrest_meta *meta, char *id)
{
	uint8_t raw[16];
	upload u;

	GUARD(atrest_name_check(name));
	GUARD(atrest__rand(raw, sizeof(raw)));
	atrest__hex(id, raw, sizeof(raw));
	memset(&u, 0, sizeof(u));
	u.rec.initiated = atrest__now();
	strcpy(u.rec.name, name);
	if (meta) {
		u.f.meta = (atrest_meta_entry *)meta->entries;
		u.f.meta_count = meta->count;
	}
	GUARD(rec_write(st, id, &u, ATREST__UP_OPEN, ATREST_BACKEND_IF_ABSENT));
	*upload_id = strdup(id);
	ENSURE(*upload_id, ATREST_ERROR, "out of memory");
	return 0;
}

int atrest_upload_create(
	char **upload_id, atrest_store *st, const char *name, const atrest_meta *meta)
{
	char id[33] = "";
	atrest__op op;

	*upload_id = NULL;
	atrest__op_begin(&op, st, ATREST_OP_UPLOAD_CREATE, name);
	op.note = id;
	return atrest__op_end(&op, create(upload_id, st, name, meta, id));
}

static int part_open(atrest_writer **out, atrest_store *st, const char *name,
	const char *upload_id, uint32_t number, const atrest_meta *meta)
{
	char pname[NAME_MAX_];
	upload u;

	GUARD(atrest__upload_part_name(pname, sizeof(pname), upload_id, number, name));
	GUARD(rec_get(&u, st, name, upload_id, ATREST__UP_OPEN));
	upload_free(&u);
	return atrest__writer_open_upload(out, st, pname, meta, 0, NULL, 0);
}

int atrest_upload_part_open(atrest_writer **out, atrest_store *st, const char *name,
	const char *upload_id, uint32_t part_number, const atrest_meta *meta)
{
	atrest__op op;
	int rc;

	*out = NULL;
	atrest__op_begin(&op, st, ATREST_OP_UPLOAD_PART, name);
	op.count = part_number;
	rc = part_open(out, st, name, upload_id, part_number, meta);
	if (rc < 0)
		return atrest__op_end(&op, rc);
	atrest__writer_set_op(*out, &op);
	return 0;
}

/* The committed part numbers of an upload of name, increasing. */
static int part_numbers(
	uint32_t **out, size_t *n, atrest_store *st, const char *name, const char *id)
{
	char pname[NAME_MAX_];
	names l;

	*out = NULL;
	*n = 0;
	GUARD(dir_names(&l, st, id));
	*out = malloc((l.n ? l.n : 1) * sizeof(**out));
	for (size_t i = 0; *out && i < l.n; i++) {
		uint32_t k = part_number(l.v[i]);
		/* a key that is not this name's part of that number is not one */
		if (k &&
			atrest__upload_part_name(pname, sizeof(pname), id, k, name) ==
				0 &&
			strcmp(pname, l.v[i]) == 0)
			(*out)[(*n)++] = k;
	}
	names_free(&l);
	ENSURE(*out, ATREST_ERROR, "out of memory");
	return 0;
}

static int parts(atrest_store *st, const char *name, const char *id,
	atrest_upload_part_cb cb, void *payload)
{
	char pname[NAME_MAX_];
	uint32_t *nums;
	size_t n;
	upload u;
	int rc = 0;

	GUARD(rec_get(&u, st, name, id, ATREST__UP_OPEN));
	upload_free(&u);
	GUARD(part_numbers(&nums, &n, st, name, id));
	for (size_t i = 0; i < n && rc == 0; i++) {
		atrest__part_facts f;
		atrest_upload_part p;
		(void)atrest__upload_part_name(pname, sizeof(pname), id, nums[i], name);
		rc = atrest__internal_facts(&f, st, pname, 1);
		if (rc == ATREST_ENOTFOUND) { /* replaced or aborted meanwhile */
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		p = (atrest_upload_part){
			nums[i], f.size, f.stored, f.mtime, f.meta, f.meta_count};
		rc = cb(&p, payload);
		free(f.meta);
	}
	free(nums);
	return rc;
}

int atrest_upload_parts(atrest_store *st, const char *name, const char *upload_id,
	atrest_upload_part_cb cb, void *payload)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_LIST, name);
	return atrest__op_end(&op, parts(st, name, upload_id, cb, payload));
}

/* Part numbers strictly increasing, each in range. */
static int check_numbers(const uint32_t *parts, size_t count)
{
	ENSURE(count >= 1, ATREST_EINVAL, "a multipart upload needs at least one part");
	ENSURE(count <= ATREST_UPLOAD_MAX_PARTS, ATREST_EINVAL, "more than %u parts",
		ATREST_UPLOAD_MAX_PARTS);
	for (size_t i = 0; i < count; i++) {
		ENSURE(parts[i] >= 1 && parts[i] <= ATREST_UPLOAD_MAX_PARTS,
			ATREST_EINVAL, "part number %u (position %zu) is not in 1..%u",
			parts[i], i + 1, ATREST_UPLOAD_MAX_PARTS);
		ENSURE(i == 0 || parts[i] > parts[i - 1], ATREST_EINVAL,
			"part %u (position %zu) does not follow part %u: part numbers "
			"must increase",
			parts[i], i + 1, parts[i - 1]);
	}
	return 0;
}

/* The part list: one authenticated header read per part. */
static int gather(atrest__mpu *m, atrest_store *st, const char *name, const char *id,
	const uint32_t *parts, size_t count)
{
	char pname[NAME_MAX_];

	memset(m, 0, sizeof(*m));
	strcpy(m->id, id);
	m->parts = calloc(count, sizeof(*m->parts));
	ENSURE(m->parts, ATREST_ERROR, "out of memory");
	m->count = (uint32_t)count;
	for (size_t i = 0; i < count; i++) {
		atrest__mpu_part *p = &m->parts[i];
		atrest__part_facts f;
		int rc;
		GUARD(atrest__upload_part_name(pname, sizeof(pname), id, parts[i], name));
		rc = atrest__internal_facts(&f, st, pname, 0);
		ENSURE(rc != ATREST_ENOTFOUND, ATREST_ENOTFOUND,
			"part %u of upload '%s' was never uploaded", parts[i], id);
		GUARD(rc);
		p->number = parts[i];
		p->size = f.size;
		p->stored = f.stored;
		p->dek = f.dek;
		memcpy(p->commit, f.commit, sizeof(p->commit));
		m->size += f.size;
	}
	return 0;
}

/* Publish the part list under name as a multipart object. */
static int publish(atrest_store *st, const char *name, const atrest__mpu *m,
	const atrest_meta *meta, unsigned int flags)
{
	atrest_writer *w;
	uint8_t *buf;
	size_t len;
	int rc;

	GUARD(atrest__mpu_encode(&buf, &len, m));
	rc = atrest__writer_open_upload(
		&w, st, name, meta, flags, NULL, ATREST__W_MULTIPART);
	if (rc == 0 && (rc = atrest_writer_write(w, buf, len)) < 0)
		atrest_writer_abort(w);
	else if (rc == 0)
		rc = atrest_writer_commit(w);
	free(buf);
	return rc;
}

/*
 * The record goes to COMPLETING (a conditional put: one completer or
 * aborter wins), the object is published, the record marked COMPLETED and
 * the parts not listed removed.  A crash between leaves a COMPLETING
 * record that cleanup settles by looking at the object.
 */
static int complete(atrest_store *st, const char *name, const char *id,
	const uint32_t *parts, size_t count, const atrest_meta *meta,
	const atrest_write_options *opts, atrest__op *op)
{
	atrest_meta kept;
	unsigned int flags;
	atrest__mpu m = {0};
	upload u;
	int rc;

	GUARD(atrest__write_flags(&flags, opts));
	GUARD(check_numbers(parts, count));
	GUARD(rec_get(&u, st, name, id, ATREST__UP_OPEN));
	kept = (atrest_meta){u.f.meta, u.f.meta_count};
	rc = rec_write(st, id, &u, ATREST__UP_COMPLETING, ATREST_BACKEND_IF_MATCH);
	if (rc == ATREST_ECONFLICT)
		rc = atrest__error(ATREST_ECONFLICT,
			"upload '%s' is being completed or aborted by another caller",
			id);
	GUARD_OUT(rc);
	rc = gather(&m, st, name, id, parts, count);
	op->bytes = m.size;
	if (rc == 0)
		rc = publish(st, name, &m, meta ? meta : &kept, flags);
	if (rc < 0) { /* back to open: the caller may fix the list, or abort */
		atrest__saved_error why;
		atrest__error_save(&why);
		(void)rec_write(st, id, &u, ATREST__UP_OPEN, 0);
		atrest__error_restore(&why);
		goto out;
	}
	(void)rec_write(st, id, &u, ATREST__UP_COMPLETED, 0);
	(void)drop_parts(st, id, parts, count, 0);
	atrest_error_clear();
out:
	atrest__mpu_free(&m);
	upload_free(&u);
	return rc;
}

int atrest_upload_complete(atrest_store *st, const char *name, const char *upload_id,
	const uint32_t *parts, size_t count, const atrest_meta *meta,
	const atrest_write_options *opts)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_UPLOAD_COMPLETE, name);
	op.count = count;
	op.note = upload_id;
	return atrest__op_end(
		&op, complete(st, name, upload_id, parts, count, meta, opts, &op));
}

static int abort_(atrest_store *st, const char *name, const char *id)
{
	upload u;
	int rc;

	GUARD(rec_get(&u, st, name, id, ATREST__UP_OPEN));
	rc = rec_write(st, id, &u, ATREST__UP_ABORTING, ATREST_BACKEND_IF_MATCH);
	upload_free(&u);
	ENSURE(rc != ATREST_ECONFLICT, ATREST_ECONFLICT,
		"upload '%s' is being completed or aborted by another caller", id);
	GUARD(rc);
	return drop_parts(st, id, NULL, 0, 1);
}

int atrest_upload_abort(atrest_store *st, const char *name, const char *upload_id)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_UPLOAD_ABORT, name);
	op.note = upload_id;
	return atrest__op_end(&op, abort_(st, name, upload_id));
}

/* ---- listing and sweeping ---- */

/* The ids of the upload area (one per record), in key order. */
static int ids_of(names *ids, names *all, atrest_store *st)
{
	memset(ids, 0, sizeof(*ids));
	memset(all, 0, sizeof(*all));
	GUARD(walk_keys(st, "", names_add, all));
	for (size_t i = 0; i < all->n; i++) {
		const char *id = all->v[i] + sizeof(ATREST__UPLOAD_DIR) - 1;
		const char *slash = strchr(id, '/');
		char one[ATREST__UPLOAD_ID_MAX + 1];
		size_t n = slash ? (size_t)(slash - id) : 0;
		if (n == 0 || n > ATREST__UPLOAD_ID_MAX)
			continue;
		memcpy(one, id, n);
		one[n] = '\0';
		if (ids->n && strcmp(ids->v[ids->n - 1], one) == 0) {
			if (all->mtime[i] > ids->mtime[ids->n - 1])
				ids->mtime[ids->n - 1] = all->mtime[i];
			continue;
		}
		GUARD(names_add(one, 0, all->mtime[i], ids));
	}
	return 0;
}

typedef struct entry {
	char *name;
	char id[ATREST__UPLOAD_ID_MAX + 1];
	int64_t initiated;
} entry;

static int entry_cmp(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->id, y->id);
}

static int list(atrest_store *st, const char *prefix, atrest_upload_list_cb cb,
	void *payload, uint64_t *count)
{
	names ids, all;
	entry *v = NULL;
	size_t n = 0;
	int rc;

	prefix = prefix ? prefix : "";
	GUARD(atrest__name_check_prefix(prefix));
	rc = ids_of(&ids, &all, st);
	names_free(&all);
	if (rc == 0 && ids.n && !(v = calloc(ids.n, sizeof(*v))))
		rc = atrest__error(ATREST_ERROR, "out of memory");
	for (size_t i = 0; rc == 0 && i < ids.n; i++) {
		upload u;
		if (atrest__upload_id_check(ids.v[i]) < 0 ||
			rec_read(&u, st, ids.v[i]) < 0) {
			atrest_error_clear(); /* a record gone, or not ours: not listed */
			continue;
		}
		if (u.rec.state == ATREST__UP_OPEN &&
			strncmp(u.rec.name, prefix, strlen(prefix)) == 0) {
			v[n].name = strdup(u.rec.name);
			strcpy(v[n].id, ids.v[i]);
			v[n].initiated = u.rec.initiated;
			rc = v[n].name ? 0 : atrest__error(ATREST_ERROR, "out of memory");
			n += v[n].name != NULL;
		}
		upload_free(&u);
	}
	if (n)
		qsort(v, n, sizeof(*v), entry_cmp);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		atrest_upload_entry e = {v[i].name, v[i].id, v[i].initiated};
		rc = cb(&e, payload);
	}
	*count = n;
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	names_free(&ids);
	return rc;
}

int atrest_upload_list(
	atrest_store *st, const char *prefix, atrest_upload_list_cb cb, void *payload)
{
	atrest__op op;
	int rc;

	atrest__op_begin(&op, st, ATREST_OP_LIST, prefix ? prefix : "");
	rc = list(st, prefix, cb, payload, &op.count);
	return atrest__op_end(&op, rc);
}

/* Does the object under name name upload id's parts? (-1: cannot tell) */
static int named_by(atrest_store *st, const char *name, const char *id)
{
	atrest__mpu m;
	int rc = atrest__multipart_load(&m, st, name), yes;

	if (rc == ATREST_ENOTFOUND || rc == 1)
		return 0;
	if (rc < 0)
		return -1;
	yes = strcmp(m.id, id) == 0;
	atrest__mpu_free(&m);
	return yes;
}

/* Finish a completion that stopped after publishing (or while removing
 * the parts it did not list). */
static int settle_completed(atrest_store *st, const char *id, upload *u)
{
	atrest__mpu m;
	uint32_t *keep;
	int rc = atrest__multipart_load(&m, st, u->rec.name);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	keep = malloc(m.count * sizeof(*keep));
	ENSURE_OUT(keep, ATREST_ERROR, "out of memory");
	for (uint32_t i = 0; i < m.count; i++)
		keep[i] = m.parts[i].number;
	if (u->rec.state != ATREST__UP_COMPLETED)
		rc = rec_write(st, id, u, ATREST__UP_COMPLETED, 0);
	if (rc == 0)
		rc = drop_parts(st, id, keep, m.count, 0);
	free(keep);
out:
	atrest__mpu_free(&m);
	return rc;
}

/*
 * One upload of the sweep: 1 when it was removed.  Uploads in progress go
 * only with abort_open (atrest_upload_cleanup); orphans always.
 */
static int sweep_one(
	atrest_store *st, const char *id, int64_t newest, int64_t age, int abort_open)
{
	int64_t now = atrest__now();
	int old, named;
	upload u;
	int rc = atrest__upload_id_check(id);

	if (rc == 0)
		rc = rec_read(&u, st, id);
	if (rc == ATREST_ENOTFOUND) /* parts without a record: an abort cut short */
		return now - newest > age ? (drop_parts(st, id, NULL, 0, 1) < 0 ? -1 : 1)
					  : 0;
	if (rc < 0)
		return -1; /* damaged or foreign: left for an operator to look at */
	old = now - u.rec.initiated > age;
	if ((u.rec.state != ATREST__UP_COMPLETED && !old) ||
		(u.rec.state == ATREST__UP_OPEN && !abort_open)) {
		upload_free(&u);
		return 0;
	}
	named = u.rec.state == ATREST__UP_ABORTING ? 0 : named_by(st, u.rec.name, id);
	if (named < 0)
		rc = -1;
	else if (named) /* and parts not listed that a crash left */
		rc = settle_completed(st, id, &u) < 0 ? -1 : 0;
	else
		rc = drop_parts(st, id, NULL, 0, 1) < 0 ? -1 : 1;
	upload_free(&u);
	return rc;
}

int atrest__upload_sweep(atrest_store *st, int64_t age, int abort_open, uint64_t *count)
{
	names ids, all;
	int rc;

	*count = 0;
	rc = ids_of(&ids, &all, st);
	names_free(&all);
	/* One upload that cannot be settled (damaged, unreachable) does not
	 * stop the others: it stays for the next sweep. */
	for (size_t i = 0; rc == 0 && i < ids.n; i++)
		if (sweep_one(st, ids.v[i], ids.mtime[i], age, abort_open) > 0)
			(*count)++;
	names_free(&ids);
	if (rc == 0)
		atrest_error_clear();
	return rc;
}

int atrest_upload_cleanup(size_t *aborted, atrest_store *st, int64_t age_seconds)
{
	uint64_t n = 0;
	atrest__op op;
	int rc;

	*aborted = 0;
	atrest__op_begin(&op, st, ATREST_OP_UPLOAD_ABORT, "cleanup");
	rc = age_seconds < 0 ? atrest__error(ATREST_EINVAL, "negative age")
			     : atrest__upload_sweep(st, age_seconds, 1, &n);
	*aborted = (size_t)n;
	op.count = n;
	return atrest__op_end(&op, rc);
}

typedef struct each {
	int (*fn)(const char *name, void *payload);
	void *payload;
} each;

static int each_one(const char *name, uint64_t size, int64_t mtime, void *p)
{
	each *e = p;

	(void)size;
	(void)mtime;
	return e->fn(name, e->payload);
}

int atrest__upload_each_object(
	atrest_store *st, int (*fn)(const char *name, void *payload), void *payload)
{
	each e = {fn, payload};

	return walk_keys(st, "", each_one, &e);
}
