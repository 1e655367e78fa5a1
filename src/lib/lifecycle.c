/*
 * The key lifecycle (include/atrest/lifecycle.h): rotation and its policy,
 * rewrap, expose and destroy as keyring updates under the store lock, and
 * the re-encryption and migration jobs, one atomic put per object.
 */
#include <stdlib.h>
#include <string.h>

#include "atrest/lifecycle.h"
#include "names.h"
#include "store_int.h"
#include "upload_int.h"

#define DAY 86400
#define POLICY_EVERY 60 /* seconds between policy checks of one handle */

static int rotate_op(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	(void)st;
	GUARD(atrest__keyring_rotate(kr, *kp));
	if (arg)
		*(uint32_t *)arg = kr->active;
	return 0;
}

int atrest_rotate(uint32_t *new_id, atrest_store *st)
{
	uint32_t id = 0;
	atrest__op op;
	int rc;

	atrest__op_begin(&op, st, ATREST_OP_ROTATE, NULL);
	rc = atrest__store_update(st, rotate_op, &id);
	op.dek = id;
	if (new_id && rc == 0)
		*new_id = id;
	return atrest__op_end(&op, rc);
}

/* Age of the active key (0 for a shredded tenant: nothing to rotate). */
static int64_t active_age(atrest_store *st)
{
	const atrest__dek *d;
	int64_t age;

	pthread_mutex_lock(&st->mu);
	d = atrest__keyring_find(st->kr, st->kr->active);
	age = d ? atrest__now() - d->created : 0;
	pthread_mutex_unlock(&st->mu);
	return age;
}

/* Rotate only if the key is still old once the lock is held: two processes
 * applying the policy at once rotate once. */
static int policy_op(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	atrest__dek *d = atrest__keyring_find(kr, kr->active);

	(void)st;
	if (!d || atrest__now() - d->created < (int64_t)kr->settings.rotate_days * DAY)
		return 0;
	*(int *)arg = 1;
	return atrest__keyring_rotate(kr, *kp);
}

static int maintain(atrest_store *st, int *rotated)
{
	int did = 0, rc = 0;
	atrest_settings set = ATREST_SETTINGS_INIT;

	GUARD(atrest_store_settings(&set, st)); /* a consistent copy */
	int64_t rotate_at = (int64_t)set.rotate_days * DAY;
	int64_t force_at = (int64_t)set.force_days * DAY;

	if (active_age(st) >= rotate_at)
		rc = atrest__store_update(st, policy_op, &did);
	if (rotated)
		*rotated = did;
	if (rc < 0 && active_age(st) >= force_at) {
		atrest__error_prefix("active data key is past force-days (%u) and "
				     "cannot be rotated",
			set.force_days);
		return rc == ATREST_EUNAVAILABLE ? rc : ATREST_EKEY;
	}
	/* Below force-days a failed rotation must not stop writers. */
	return active_age(st) >= force_at ? rc : 0;
}

/* A rotate event when the policy rotated, or failed to. */
int atrest_maintain(atrest_store *st, int *rotated)
{
	atrest__op op;
	int did = 0, rc;

	atrest__op_begin(&op, st, ATREST_OP_ROTATE, NULL);
	op.name = "policy";
	rc = maintain(st, &did);
	if (rotated)
		*rotated = did;
	if (rc == 0 && !did)
		atrest__op_drop(&op);
	return atrest__op_end(&op, rc);
}

int atrest__store_policy(atrest_store *st)
{
	int64_t now = atrest__now();
	int64_t last = __atomic_load_n(&st->last_maintain, __ATOMIC_RELAXED);

	if (now - last < POLICY_EVERY)
		return 0;
	__atomic_store_n(&st->last_maintain, now, __ATOMIC_RELAXED);
	return atrest_maintain(st, NULL);
}

/*
 * The store's keyring and every tenant keyring wrapped by the store's
 * master key move together (tenant.c); a tenant's handle cannot change
 * the store's master key.
 */
static int rewrap(atrest_store *st, atrest_keyprov *new_key)
{
	atrest_keyprov *to = new_key ? new_key : st->kp;
	int rc = st->tenant[0] ? atrest__error(ATREST_EINVAL,
					 "rewrap the store, not tenant '%s': the "
					 "store's rewrap moves every tenant wrapped "
					 "by its master key",
					 st->tenant)
			       : atrest__store_rewrap_all(st, to);

	if (rc < 0) {
		if (new_key)
			atrest_keyprov_free(new_key);
		return rc;
	}
	pthread_mutex_lock(&st->mu);
	if (new_key) {
		atrest_keyprov *old = st->old_kp;
		st->old_kp = st->kp;
		st->kp = new_key;
		pthread_mutex_unlock(&st->mu);
		atrest__store_retire(st, old);
		return 0;
	}
	pthread_mutex_unlock(&st->mu);
	return 0;
}

int atrest_rewrap(atrest_store *st, atrest_keyprov *new_key)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_REWRAP, NULL);
	return atrest__op_end(&op, rewrap(st, new_key));
}

static int expose_op(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	(void)st;
	return atrest__keyring_expose(kr, *kp, *(uint32_t *)arg);
}

int atrest_key_expose(atrest_store *st, uint32_t id)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_EXPOSE, NULL);
	op.dek = id;
	return atrest__op_end(&op, atrest__store_update(st, expose_op, &id));
}

/* ---- scanning objects ---- */

typedef struct name_list {
	char **names;
	size_t n, cap;
} name_list;

static int collect(const atrest_list_entry *e, void *p)
{
	name_list *l = p;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		char **names = realloc(l->names, cap * sizeof(*names));
		if (!names)
			return atrest__error(ATREST_ERROR, "out of memory");
		l->names = names;
		l->cap = cap;
	}
	l->names[l->n] = strdup(e->name);
	if (!l->names[l->n])
		return atrest__error(ATREST_ERROR, "out of memory");
	l->n++;
	return 0;
}

static void names_free(name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
}

static int names_of(name_list *l, atrest_store *st, const char *prefix)
{
	int rc;

	memset(l, 0, sizeof(*l));
	rc = atrest_list(st, prefix, collect, l);
	if (rc < 0)
		names_free(l);
	return rc;
}

typedef atrest__usage_row usage;

static void count_usage(usage *u, size_t n, const atrest__object_facts_t *f)
{
	for (size_t i = 0; i < n; i++)
		if (u[i].id == f->dek_id) {
			u[i].objects++;
			u[i].bytes += f->size;
		}
}

typedef struct usage_ctx {
	atrest_store *st;
	usage *u;
	size_t n;
} usage_ctx;

static int usage_one(const char *name, void *p)
{
	usage_ctx *c = p;
	atrest__object_facts_t f;

	if (atrest__object_facts(&f, c->st, name) == 0 && !f.plaintext)
		count_usage(c->u, c->n, &f);
	return 0;
}

/* Objects, upload parts and the objects of snapshots (manifests, files'
 * contents). */
static int scan_usage(atrest_store *st, usage *u, size_t n)
{
	usage_ctx c = {st, u, n};
	name_list l;

	GUARD(names_of(&l, st, ""));
	for (size_t i = 0; i < l.n; i++)
		(void)usage_one(l.names[i], &c);
	names_free(&l);
	GUARD(atrest__upload_each_object(st, usage_one, &c));
	return atrest__snap_each_object(st, usage_one, &c);
}

/*
 * Usage per key: the store's counts (kept by every put and delete), or a
 * scan of every header that then replaces them (docs/AUDIT.md).
 */
static int usage_counts(atrest_store *st, usage *u, size_t n, int scan)
{
	atrest__usage_row *rows = NULL;
	size_t nr = 0;
	atrest__op op;
	int rc = scan ? ATREST_ENOTFOUND : atrest__usage_read(&rows, &nr, st);

	for (size_t i = 0; rc == 0 && i < n; i++)
		for (size_t j = 0; j < nr; j++)
			if (rows[j].id == u[i].id)
				u[i] = rows[j];
	free(rows);
	if (rc != ATREST_ENOTFOUND && rc != ATREST_EINTEGRITY)
		return rc;
	atrest__op_begin(&op, st, ATREST_OP_RECOUNT, NULL);
	rc = scan_usage(st, u, n);
	for (size_t i = 0; i < n; i++)
		op.count += u[i].objects;
	/* The scan's answer stands even where the counts cannot be saved (a
	 * read-only store): the next scan tries again. */
	if (rc == 0 && atrest__usage_write(st, u, n) < 0) {
		atrest_error_clear();
		op.note = "counts not saved";
	}
	return atrest__op_end(&op, rc);
}

/* A snapshot of the keyring's key list, taken under the mutex. */
static int key_snapshot(atrest_store *st, atrest_key_info **out, usage **u, size_t *n)
{
	pthread_mutex_lock(&st->mu);
	*n = st->kr->nkeys;
	*out = calloc(*n, sizeof(**out));
	*u = calloc(*n, sizeof(**u));
	for (size_t i = 0; *out && *u && i < *n; i++) {
		const atrest__dek *d = &st->kr->keys[i];
		(*out)[i].id = d->id;
		(*out)[i].status = atrest__dek_status_name(d->status);
		(*out)[i].created = d->created;
		(*u)[i].id = d->id;
	}
	pthread_mutex_unlock(&st->mu);
	if (!*out || !*u) {
		free(*out);
		free(*u);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	return 0;
}

int atrest_keys_list(atrest_store *st, int with_usage, atrest_key_cb cb, void *payload)
{
	atrest_key_info *keys;
	usage *u;
	size_t n;
	int rc = 0;

	GUARD(atrest__store_refresh(st, 1));
	GUARD(key_snapshot(st, &keys, &u, &n));
	if (with_usage)
		rc = usage_counts(st, u, n, with_usage == ATREST_KEYS_SCAN);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		keys[i].objects = u[i].objects;
		keys[i].bytes = u[i].bytes;
		rc = cb(&keys[i], payload);
	}
	free(keys);
	free(u);
	return rc;
}

static int destroy_op(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	(void)st;
	(void)kp;
	return atrest__keyring_destroy(kr, *(uint32_t *)arg);
}

static int key_destroy(atrest_store *st, uint32_t id, int force)
{
	usage u = {id, 0, 0};

	GUARD(atrest__store_refresh(st, 1));
	pthread_mutex_lock(&st->mu);
	int known = atrest__keyring_find(st->kr, id) != NULL;
	pthread_mutex_unlock(&st->mu);
	ENSURE(known, ATREST_ENOTFOUND, "no data key %u in this store", id);
	if (!force) {
		GUARD(scan_usage(st, &u, 1));
		ENSURE(u.objects == 0, ATREST_EEXISTS,
			"data key %u still seals %llu objects: run 'atrest reencrypt "
			"--data-key %u' first, or destroy with --force to shred them",
			id, (unsigned long long)u.objects, id);
	}
	return atrest__store_update(st, destroy_op, &id);
}

int atrest_key_destroy(atrest_store *st, uint32_t id, int force)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_DESTROY, force ? "forced" : NULL);
	op.dek = id;
	return atrest__op_end(&op, key_destroy(st, id, force));
}

int atrest_object_key_id(uint32_t *out, atrest_store *st, const char *name)
{
	atrest__object_facts_t f;

	GUARD(atrest_name_check(name));
	GUARD(atrest__object_facts(&f, st, name));
	*out = f.plaintext ? 0 : f.dek_id;
	return 0;
}

/* ---- jobs ---- */

typedef int (*job_pick)(const atrest__object_facts_t *f, uint32_t dek);

static int pick_dek(const atrest__object_facts_t *f, uint32_t dek)
{
	return !f->plaintext && f->dek_id == dek;
}

static int pick_plain(const atrest__object_facts_t *f, uint32_t dek)
{
	(void)dek;
	return f->plaintext;
}

static void job_one(atrest_store *st, const char *name, job_pick pick, uint32_t dek,
	atrest_job_stats *s, int *first_rc)
{
	atrest__object_facts_t f;
	uint64_t bytes = 0;
	int rc = atrest__object_facts(&f, st, name);

	s->scanned++;
	/* A multipart object is picked by its own key or any of its parts',
	 * and rewritten as one ordinary object. */
	if (rc == 0 && f.multipart && !pick(&f, dek) && pick == pick_dek) {
		rc = atrest__multipart_uses(st, name, dek);
		if (rc > 0)
			f.dek_id = dek;
		rc = rc > 0 ? 0 : rc;
	}
	if (rc == ATREST_ENOTFOUND || (rc == 0 && !pick(&f, dek)))
		return;
	if (rc == 0)
		rc = atrest__object_rewrite(st, name, &f, &bytes);
	if (rc == 0) {
		s->done++;
		s->bytes += bytes;
	} else if (rc != ATREST_EEXISTS) { /* replaced meanwhile: not ours */
		s->failed++;
		if (*first_rc == 0) {
			*first_rc = rc;
			atrest__error_prefix("%s", name);
		}
	}
}

static int run_job(atrest_store *st, const char *prefix, job_pick pick, uint32_t dek,
	atrest_progress_cb cb, void *payload, atrest_job_stats *out)
{
	atrest_job_stats s = {0};
	int first_rc = 0;
	name_list l;

	GUARD(names_of(&l, st, prefix));
	for (size_t i = 0; i < l.n; i++) {
		job_one(st, l.names[i], pick, dek, &s, &first_rc);
		if (cb)
			cb(&s, l.n, l.names[i], payload);
	}
	names_free(&l);
	if (out)
		*out = s;
	return first_rc;
}

static int reencrypt(atrest_job_stats *out, atrest_store *st, uint32_t dek_id,
	const char *prefix, atrest_progress_cb cb, void *payload)
{
	GUARD(atrest__store_refresh(st, 1));
	pthread_mutex_lock(&st->mu);
	const atrest__dek *d = atrest__keyring_find(st->kr, dek_id);
	int active = st->kr->active == dek_id,
	    destroyed = d && d->status == ATREST__DEK_DESTROYED;
	pthread_mutex_unlock(&st->mu);
	ENSURE(d, ATREST_ENOTFOUND, "no data key %u in this store", dek_id);
	ENSURE(!destroyed, ATREST_EKEY,
		"data key %u was destroyed: its objects "
		"cannot be read, so they cannot be re-encrypted",
		dek_id);
	ENSURE(!active, ATREST_ERROR,
		"data key %u is the active key: rotate first "
		"('atrest rotate'), then re-encrypt",
		dek_id);
	return run_job(st, prefix, pick_dek, dek_id, cb, payload, out);
}

/* A job's event (detail "job") closes the events of its objects. */
static int job_end(
	atrest__op *op, atrest_job_stats *out, const atrest_job_stats *s, int rc)
{
	op->bytes = s->bytes;
	op->count = s->done;
	op->note = "job";
	if (out)
		*out = *s;
	return atrest__op_end(op, rc);
}

int atrest_reencrypt(atrest_job_stats *out, atrest_store *st, uint32_t dek_id,
	const char *prefix, atrest_progress_cb cb, void *payload)
{
	atrest_job_stats s = {0};
	atrest__op op;
	int rc;

	atrest__op_begin(&op, st, ATREST_OP_REENCRYPT, prefix ? prefix : "");
	rc = reencrypt(&s, st, dek_id, prefix, cb, payload);
	op.dek = dek_id;
	return job_end(&op, out, &s, rc);
}

int atrest_migrate(atrest_job_stats *out, atrest_store *st, const char *prefix,
	atrest_progress_cb cb, void *payload)
{
	atrest_job_stats s = {0};
	atrest__op op;
	int rc;

	atrest__op_begin(&op, st, ATREST_OP_MIGRATE, prefix ? prefix : "");
	rc = run_job(st, prefix, pick_plain, 0, cb, payload, &s);
	return job_end(&op, out, &s, rc);
}
