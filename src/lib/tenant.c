/*
 * Tenants (include/atrest/tenant.h): the registry kept in the store's own
 * keyring (under its MAC), adding a tenant with a keyring of its own,
 * crypto-shredding one, and the store-wide rewrap that moves every tenant
 * keyring wrapped by the store's master key.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/tenant.h"
#include "names.h"
#include "store_int.h"

#define SHRED_PASSES 3 /* listings of a shredded tenant's objects */

/* Tenants are managed through a handle on the store itself. */
static int store_handle(atrest_store *st)
{
	ENSURE(!st->tenant[0], ATREST_EINVAL,
		"tenants are managed through the store, not through tenant '%s'",
		st->tenant);
	return atrest__store_refresh(st, 0);
}

/* A copy of the registry (names and references), taken under the mutex. */
typedef struct roster {
	atrest__tenant *v;
	size_t n;
} roster;

static void roster_free(roster *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].key_uri);
		free(r->v[i].key_file);
	}
	free(r->v);
}

static int roster_take(roster *r, atrest_store *st)
{
	int bad = 0;

	pthread_mutex_lock(&st->mu);
	r->n = st->kr->ntenants;
	r->v = calloc(r->n ? r->n : 1, sizeof(*r->v));
	for (size_t i = 0; r->v && i < r->n; i++) {
		const atrest__tenant *t = &st->kr->tenants[i];
		r->v[i] = *t;
		r->v[i].key_uri = t->key_uri ? strdup(t->key_uri) : NULL;
		r->v[i].key_file = t->key_file ? strdup(t->key_file) : NULL;
		bad |= (t->key_uri && !r->v[i].key_uri) ||
			(t->key_file && !r->v[i].key_file);
	}
	pthread_mutex_unlock(&st->mu);
	if (!r->v || bad) {
		if (!r->v)
			r->n = 0;
		roster_free(r);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	return 0;
}

/* ---- add ---- */

static int register_op(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	(void)st;
	(void)kp;
	return atrest__keyring_tenant_add(kr, arg);
}

/* The tenant's own master key (from opts), or NULL for the store's. */
static int own_key(
	atrest__tenant *t, atrest_keyprov **out, const atrest_tenant_options *o)
{
	const char *uri = o && o->key_uri && *o->key_uri ? o->key_uri : NULL;
	const char *file = o && o->key_file && *o->key_file ? o->key_file : NULL;
	char abs[PATH_MAX];

	*out = NULL;
	if (o)
		GUARD(atrest__check_version(o->version, ATREST_TENANT_OPTIONS_VERSION,
			"atrest_tenant_options"));
	ENSURE(!(uri && file), ATREST_EINVAL,
		"give a tenant a key URI or a key file, not both");
	/* Never echo the URI: it may carry a secret. */
	ENSURE(!uri || !strstr(uri, "pin-value"), ATREST_EINVAL,
		"the tenant's key URI holds a PIN (pin-value), which would be kept "
		"in the store's keyring: use pin-source (a file) instead");
	if (uri) {
		GUARD(atrest_keyprov_from_uri(out, uri));
		t->key_uri = strdup(uri);
		ENSURE(t->key_uri, ATREST_ERROR, "out of memory");
	} else if (file) {
		ENSURE(realpath(file, abs), ATREST_EKEY, "tenant key file %s not found",
			file);
		GUARD(atrest_keyprov_file(out, abs));
		t->key_file = strdup(abs);
		ENSURE(t->key_file, ATREST_ERROR, "out of memory");
	}
	return 0;
}

/* The tenant's keyring, created exclusively where the registry says. */
static int tenant_keyring(atrest_store *st, atrest__keyring *kr, const char *name)
{
	char key[ATREST__KEY_PREFIX_MAX], *text = NULL;
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), ATREST__TENANTS_DIR "%s/keyring", name);
	GUARD(atrest__keyring_serialize(&text, &len, kr));
	rc = atrest__store_write_file(
		st->b, key, text, len, ATREST_BACKEND_IF_ABSENT, NULL);
	free(text);
	if (rc == ATREST_EEXISTS)
		return atrest__error(ATREST_EINTEGRITY,
			"a keyring of tenant '%s' from elsewhere is in the way (%s): "
			"run 'atrest tenant shred %s', then add it again",
			name, key, name);
	return rc;
}

/*
 * Registered first, keyring second: a crash in between leaves a tenant
 * without a keyring, which opening reports and shred finishes.
 */
static int tenant_add(
	atrest_store *st, const char *name, const atrest_tenant_options *opts)
{
	atrest__tenant t;
	atrest_keyprov *own = NULL;
	atrest__keyring *kr = NULL;
	int rc;

	int exists;

	memset(&t, 0, sizeof(t));
	GUARD(store_handle(st));
	GUARD(atrest__tenant_check(name));
	pthread_mutex_lock(&st->mu);
	exists = atrest__keyring_tenant(st->kr, name) != NULL;
	pthread_mutex_unlock(&st->mu);
	ENSURE(!exists, ATREST_EEXISTS, "tenant '%s' already exists", name);
	GUARD_OUT(own_key(&t, &own, opts));
	GUARD_OUT(atrest__keyring_create(&kr, own ? own : st->kp));
	pthread_mutex_lock(&st->mu);
	kr->settings = st->kr->settings; /* it starts with the store's */
	pthread_mutex_unlock(&st->mu);
	snprintf(kr->tenant, sizeof(kr->tenant), "%s", name);
	snprintf(t.name, sizeof(t.name), "%s", name);
	memcpy(t.id, kr->store_id, 16);
	GUARD_OUT(atrest__store_update(st, register_op, &t));
	rc = tenant_keyring(st, kr, name);
out:
	atrest__keyring_free(kr);
	atrest_keyprov_free(own);
	free(t.key_uri);
	free(t.key_file);
	return rc;
}

int atrest_tenant_add(
	atrest_store *st, const char *name, const atrest_tenant_options *opts)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_TENANT_ADD, name);
	op.note = opts &&
			((opts->key_uri && *opts->key_uri) ||
				(opts->key_file && *opts->key_file))
		? "own master key"
		: NULL;
	return atrest__op_end(&op, tenant_add(st, name, opts));
}

/* ---- list ---- */

int atrest_tenant_list(atrest_store *st, atrest_tenant_cb cb, void *payload)
{
	atrest_tenant_info info;
	roster r;
	int rc = 0;

	GUARD(store_handle(st));
	GUARD(roster_take(&r, st));
	for (size_t i = 0; rc == 0 && i < r.n; i++) {
		memset(&info, 0, sizeof(info));
		info.name = r.v[i].name;
		info.key_uri = r.v[i].key_uri;
		info.key_file = r.v[i].key_file;
		atrest__hex(info.keyring_id, r.v[i].id, 16);
		rc = cb(&info, payload);
	}
	roster_free(&r);
	return rc;
}

/* ---- shred ---- */

static int shred_op(atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	(void)st;
	(void)kp;
	(void)arg;
	atrest__keyring_shred(kr);
	return 0;
}

static int unregister_op(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	(void)st;
	(void)kp;
	atrest__keyring_tenant_remove(kr, arg);
	return 0;
}

/*
 * Destroy every data key: a keyring update when its master key answers
 * (other processes then see destroyed keys), else the keyring goes (its
 * wrapped keys with it).
 */
static int destroy_keys(atrest_store *st, const char *name, const char *kr_key)
{
	const char *was = atrest__op_tenant(name); /* its key_unwrap events */
	atrest_store *t;
	int rc = atrest__store_tenant(&t, st, name);

	if (rc == 0) {
		rc = atrest__store_update(t, shred_op, NULL);
		atrest_store_close(t);
	}
	atrest__op_tenant(was);
	if (rc == 0)
		return 0;
	rc = atrest__b_remove(st->b, kr_key);
	return rc == ATREST_ENOTFOUND ? 0 : rc;
}

typedef struct key_list {
	char **v;
	size_t n, cap;
} key_list;

static int collect_key(const char *key, uint64_t size, int64_t mtime, void *p)
{
	key_list *l = p;

	(void)size;
	(void)mtime;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **v = realloc(l->v, cap * sizeof(*v));
		ENSURE(v, ATREST_ERROR, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = strdup(key);
	ENSURE(l->v[l->n], ATREST_ERROR, "out of memory");
	l->n++;
	return 0;
}

/* Remove what one listing shows; *found counts it. */
static int remove_pass(
	atrest_store *st, const char *prefix, uint64_t *removed, size_t *found)
{
	key_list l = {NULL, 0, 0};
	int rc = atrest__b_list(st->b, prefix, collect_key, &l);

	*found = l.n;
	/* In batches where the backend has them (S3 DeleteObjects). */
	if (rc == 0)
		rc = atrest__b_remove_many(st->b, (const char *const *)l.v, l.n);
	if (rc == 0)
		*removed += l.n;
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	return rc;
}

/* A writer of another process may commit during the first pass. */
static int remove_objects(atrest_store *st, const char *name, uint64_t *removed)
{
	char prefix[ATREST__KEY_PREFIX_MAX];
	size_t found = 1;

	/* Its objects, then its snapshots' (manifests, contents, leases),
	 * then its multipart uploads' (records, parts). */
	static const char *const areas[] = {"objects", "snap", "uploads"};

	for (int area = 0; area < 3; area++) {
		snprintf(prefix, sizeof(prefix), ATREST__TENANTS_DIR "%s/%s/", name,
			areas[area]);
		found = 1;
		for (int pass = 0; found && pass < SHRED_PASSES; pass++)
			GUARD(remove_pass(st, prefix, removed, &found));
	}
	return 0;
}

static int tenant_shred(uint64_t *removed, atrest_store *st, const char *name)
{
	char kr_key[ATREST__KEY_PREFIX_MAX];
	uint64_t count = 0;
	int known, rc;

	if (removed)
		*removed = 0;
	GUARD(store_handle(st));
	GUARD(atrest__tenant_check(name));
	pthread_mutex_lock(&st->mu);
	known = atrest__keyring_tenant(st->kr, name) != NULL;
	pthread_mutex_unlock(&st->mu);
	ENSURE(known, ATREST_ENOTFOUND, "no tenant '%s' in store %s", name, st->location);
	snprintf(kr_key, sizeof(kr_key), ATREST__TENANTS_DIR "%s/keyring", name);
	GUARD(destroy_keys(st, name, kr_key));
	rc = remove_objects(st, name, &count);
	if (removed)
		*removed = count;
	GUARD(rc);
	GUARD(atrest__usage_remove(st->b, kr_key));
	rc = atrest__b_remove(st->b, kr_key);
	GUARD(rc == ATREST_ENOTFOUND ? 0 : rc);
	return atrest__store_update(st, unregister_op, (void *)name);
}

int atrest_tenant_shred(uint64_t *removed, atrest_store *st, const char *name)
{
	uint64_t count = 0;
	atrest__op op;
	int rc;

	atrest__op_begin(&op, st, ATREST_OP_TENANT_SHRED, name);
	rc = tenant_shred(&count, st, name);
	op.count = count;
	if (removed)
		*removed = count;
	return atrest__op_end(&op, rc);
}

/* ---- the store's rewrap ---- */

/*
 * Tenants first, the store's keyring last: an interrupted rewrap is found
 * and finished by the next open with both keys (ATREST_OLD_* beside the
 * new one), tenant by tenant.
 */
/* One tenant's keyring (its provider calls name it); gone: nothing to do. */
static int rewrap_tenant(atrest_store *st, const char *name, atrest_keyprov *to)
{
	const char *was = atrest__op_tenant(name);
	atrest_store *t;
	int rc = atrest__store_tenant(&t, st, name);

	if (rc == 0) {
		if (t->cur_kp != to)
			rc = atrest__store_rewrap_one(t, to);
		atrest_store_close(t);
	} else if (rc == ATREST_ENOTFOUND) { /* being added or shredded */
		rc = 0;
	}
	atrest__op_tenant(was);
	if (rc < 0)
		atrest__error_prefix("tenant '%s'", name);
	return rc;
}

int atrest__store_rewrap_all(atrest_store *st, atrest_keyprov *to)
{
	roster r;
	int rc = 0;

	GUARD(roster_take(&r, st));
	for (size_t i = 0; rc == 0 && i < r.n; i++)
		if (!r.v[i].key_uri && !r.v[i].key_file) /* else its own key wraps it */
			rc = rewrap_tenant(st, r.v[i].name, to);
	roster_free(&r);
	GUARD(rc);
	return atrest__store_rewrap_one(st, to);
}
