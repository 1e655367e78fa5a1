/*
 * The tenant table: counted references to open store handles under one
 * mutex, all sharing one pool.  Handles are opened outside the lock (a
 * passphrase costs one Argon2id derivation, a key service a round trip), so
 * one slow open never blocks the requests of tenants already open.  A
 * handle replaced or refused after a registry check leaves the table at
 * once and is closed by whoever releases it last.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/tenant.h"
#include "http.h"
#include "tenants.h"

#define CHECK_NS 1000000000LL /* registry checks of one tenant: 1 a second */

struct srv_tenant {
	struct srv_tenants *owner;
	char name[ATREST_TENANT_MAX + 1];
	char id[33]; /* its keyring's id when opened */
	atrest_store *st;
	unsigned refs;   /* the table's own while listed, and each holder's */
	int64_t checked; /* monotonic ns of the last registry check */
};

struct srv_tenants {
	struct srv_store_config cfg;
	char *path, *state_dir, *audit;
	atrest_pool *pool;
	pthread_mutex_t mu;
	struct srv_tenant **v;
	size_t n, cap;
	unsigned long changes; /* tenants seen gone or replaced (under mu) */
};

/* Open tenant's handle with the shared pool and the server's state dir. */
static int open_handle(atrest_store **out, struct srv_tenants *t, const char *tenant)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_keyprov *key = NULL, *old = NULL;
	int rc;

	/*
	 * The store's master key, as the CLI takes it: it authenticates the
	 * registry, which names the tenant's own key (URI or key file) when
	 * it has one; the library opens that one itself.
	 */
	rc = atrest_keyprov_from_env(&key, 0);
	if (rc < 0)
		return rc == ATREST_ENOTFOUND ? ATREST_EKEY : rc;
	rc = atrest_keyprov_from_env(&old, 1);
	if (rc < 0 && rc != ATREST_ENOTFOUND) {
		atrest_keyprov_free(key);
		return rc;
	}
	o.path = t->cfg.path;
	o.tenant = tenant;
	o.key = key;
	o.old_key = old;
	o.create = tenant[0] == '\0';
	o.flags = t->cfg.flags;
	o.allow_plaintext = t->cfg.allow_plaintext;
	o.pool = t->pool;
	o.state_dir = t->state_dir;
	o.audit = t->audit;
	return atrest_store_open(out, &o);
}

static int new_entry(struct srv_tenant **out, struct srv_tenants *t, const char *tenant)
{
	struct srv_tenant *e = calloc(1, sizeof(*e));
	int rc;

	*out = NULL;
	if (!e)
		return ATREST_ERROR;
	rc = open_handle(&e->st, t, tenant);
	if (rc == 0)
		rc = atrest_store_id(e->id, e->st);
	if (rc < 0) {
		atrest_store_close(e->st);
		free(e);
		return rc;
	}
	e->owner = t;
	strncpy(e->name, tenant, ATREST_TENANT_MAX);
	e->refs = 1;
	e->checked = http_now_ns();
	*out = e;
	return 0;
}

static void entry_close(struct srv_tenant *e)
{
	if (e) {
		atrest_store_close(e->st);
		free(e);
	}
}

static ssize_t find(struct srv_tenants *t, const char *tenant)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i]->name, tenant))
			return (ssize_t)i;
	return -1;
}

/* List e (mu held); 0 or ATREST_ERROR. */
static int list_entry(struct srv_tenants *t, struct srv_tenant *e)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		struct srv_tenant **v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return ATREST_ERROR;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = e;
	return 0;
}

/* Take e out of the table (mu held); returns it when nobody holds it. */
static struct srv_tenant *unlist(struct srv_tenants *t, size_t i)
{
	struct srv_tenant *e = t->v[i];

	t->v[i] = t->v[--t->n];
	return --e->refs == 0 ? e : NULL;
}

int srv_tenants_new(struct srv_tenants **out, const struct srv_store_config *cfg)
{
	struct srv_tenants *t = calloc(1, sizeof(*t));
	struct srv_tenant *root;
	int rc;

	*out = NULL;
	if (!t)
		return ATREST_ERROR;
	pthread_mutex_init(&t->mu, NULL);
	t->cfg = *cfg;
	t->path = strdup(cfg->path);
	t->state_dir = cfg->state_dir ? strdup(cfg->state_dir) : NULL;
	t->audit = cfg->audit ? strdup(cfg->audit) : NULL;
	rc = !t->path || (cfg->state_dir && !t->state_dir) || (cfg->audit && !t->audit)
		? ATREST_ERROR
		: 0;
	if (rc == 0)
		rc = atrest_pool_new(&t->pool, cfg->threads);
	if (rc == 0)
		rc = new_entry(&root, t, "");
	if (rc == 0 && list_entry(t, root) < 0) {
		entry_close(root);
		rc = ATREST_ERROR;
	}
	if (rc < 0) {
		srv_tenants_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

atrest_store *srv_tenants_root(struct srv_tenants *t)
{
	return t->v[0]->st; /* listed first, never unlisted */
}

struct registry_find {
	const char *name;
	char id[33];
};

static int registry_one(const atrest_tenant_info *info, void *payload)
{
	struct registry_find *f = payload;

	if (strcmp(info->name, f->name) != 0)
		return 0;
	memcpy(f->id, info->keyring_id, sizeof(f->id));
	return 1;
}

/*
 * Is e still the tenant the registry names?  1 yes (or the registry
 * cannot be read now and not strict: keep serving), 0 replaced (shredded
 * and added again; or unreadable and strict), ATREST_ENOTFOUND gone.
 */
static int registry_check(struct srv_tenants *t, struct srv_tenant *e, int strict)
{
	struct registry_find f = {e->name, ""};
	int rc = atrest_tenant_list(srv_tenants_root(t), registry_one, &f);

	if (rc < 0)
		return strict ? 0 : 1;
	if (rc == 0)
		return ATREST_ENOTFOUND;
	return strcmp(f.id, e->id) == 0;
}

/*
 * Check a listed non-default entry once a second (held by us): 1 keep it,
 * 0 replace it, or ATREST_ENOTFOUND.  A failing check unlists it.
 */
static int recheck(struct srv_tenants *t, struct srv_tenant *e)
{
	struct srv_tenant *drop = NULL;
	int64_t now = http_now_ns();
	ssize_t i;
	int rc;

	if (!e->name[0] ||
		now - __atomic_load_n(&e->checked, __ATOMIC_RELAXED) < CHECK_NS)
		return 1;
	__atomic_store_n(&e->checked, now, __ATOMIC_RELAXED);
	rc = registry_check(t, e, 0);
	if (rc == 1)
		return 1;
	pthread_mutex_lock(&t->mu);
	t->changes++;
	if ((i = find(t, e->name)) >= 0 && t->v[i] == e)
		drop = unlist(t, (size_t)i);
	pthread_mutex_unlock(&t->mu);
	entry_close(drop); /* NULL: still held, by us at least */
	return rc;
}

/* The listed entry of tenant, held; NULL when none. */
static struct srv_tenant *hold_listed(struct srv_tenants *t, const char *tenant)
{
	struct srv_tenant *e = NULL;
	ssize_t i;

	pthread_mutex_lock(&t->mu);
	if ((i = find(t, tenant)) >= 0) {
		e = t->v[i];
		e->refs++;
	}
	pthread_mutex_unlock(&t->mu);
	return e;
}

static unsigned long changes(struct srv_tenants *t)
{
	unsigned long c;

	pthread_mutex_lock(&t->mu);
	c = t->changes;
	pthread_mutex_unlock(&t->mu);
	return c;
}

/*
 * Open tenant and list it, unless another request listed it first: 0, 1
 * when the tenant was replaced while we opened it (try again), or an
 * error.  A handle opened before a shred that another request has already
 * noticed is never listed: when the table saw a change meanwhile, the
 * handle is checked against the registry again first.
 */
static int open_listed(struct srv_tenant **out, struct srv_tenants *t, const char *tenant)
{
	struct srv_tenant *mine, *e;
	unsigned long seen = changes(t);
	ssize_t i;
	int rc = new_entry(&mine, t, tenant);

	*out = NULL;
	if (rc < 0) {
		if (rc == ATREST_ENOTFOUND) {
			pthread_mutex_lock(&t->mu);
			t->changes++;
			pthread_mutex_unlock(&t->mu);
		}
		return rc;
	}
	for (;;) {
		pthread_mutex_lock(&t->mu);
		if ((i = find(t, tenant)) >= 0 || t->changes == seen)
			break;
		seen = t->changes;
		pthread_mutex_unlock(&t->mu);
		if ((rc = registry_check(t, mine, 1)) != 1) {
			entry_close(mine);
			return rc == 0 ? 1 : rc;
		}
	}
	if (i >= 0)
		e = t->v[i];
	else if (list_entry(t, mine) == 0)
		e = mine, mine = NULL;
	else
		e = NULL;
	if (e)
		e->refs++;
	pthread_mutex_unlock(&t->mu);
	entry_close(mine); /* another request opened it first, or no memory */
	*out = e;
	return e ? 0 : ATREST_ERROR;
}

int srv_tenants_acquire(atrest_store **out, struct srv_tenant **ref,
	struct srv_tenants *t, const char *tenant)
{
	struct srv_tenant *e;
	int rc;

	*out = NULL;
	*ref = NULL;
	for (int tries = 0; tries < 3; tries++) {
		e = hold_listed(t, tenant);
		if (!e && (rc = open_listed(&e, t, tenant)) < 0)
			return rc;
		if (!e)
			continue; /* replaced while we opened it */
		rc = recheck(t, e);
		if (rc == 1) {
			*out = e->st;
			*ref = e;
			return 0;
		}
		srv_tenant_release(e);
		if (rc < 0)
			break;
	}
	return atrest_error_set(ATREST_ENOTFOUND, "no tenant '%s' in the store", tenant);
}

void srv_tenant_release(struct srv_tenant *ref)
{
	struct srv_tenants *t;
	int last;

	if (!ref)
		return;
	t = ref->owner;
	pthread_mutex_lock(&t->mu);
	last = --ref->refs == 0;
	pthread_mutex_unlock(&t->mu);
	if (last)
		entry_close(ref);
}

atrest_store *srv_tenant_store(const struct srv_tenant *ref)
{
	return ref->st;
}

const char *srv_tenant_name(const struct srv_tenant *ref)
{
	return ref->name;
}

int srv_tenants_all(struct srv_tenant ***out, size_t *n, struct srv_tenants *t)
{
	struct srv_tenant **v;

	pthread_mutex_lock(&t->mu);
	v = malloc((t->n ? t->n : 1) * sizeof(*v));
	*n = v ? t->n : 0;
	for (size_t i = 0; i < *n; i++) {
		v[i] = t->v[i];
		v[i]->refs++;
	}
	pthread_mutex_unlock(&t->mu);
	*out = v;
	return v ? 0 : ATREST_ERROR;
}

void srv_tenants_release_all(struct srv_tenant **refs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		srv_tenant_release(refs[i]);
	free(refs);
}

int srv_tenants_metrics(char **out, size_t *len, struct srv_tenants *t, const char *only)
{
	struct srv_tenant **refs;
	atrest_store **v;
	size_t n, m = 0;
	int rc;

	*out = NULL;
	*len = 0;
	if (srv_tenants_all(&refs, &n, t) < 0)
		return ATREST_ERROR;
	v = malloc((n ? n : 1) * sizeof(*v));
	for (size_t i = 0; v && i < n; i++)
		if (!only || !strcmp(only, refs[i]->name))
			v[m++] = refs[i]->st;
	rc = !v ? ATREST_ERROR : m ? atrest_metrics_write_many(out, len, v, m) : 0;
	free(v);
	srv_tenants_release_all(refs, n);
	return rc;
}

void srv_tenants_free(struct srv_tenants *t)
{
	if (!t)
		return;
	while (t->n > 0)
		entry_close(unlist(t, t->n - 1));
	atrest_pool_free(t->pool);
	pthread_mutex_destroy(&t->mu);
	free(t->v);
	free(t->path);
	free(t->state_dir);
	free(t->audit);
	free(t);
}
