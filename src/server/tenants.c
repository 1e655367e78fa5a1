/*
 * The tenant table: a short list of open store handles under a mutex.
 * Handles are opened outside the lock (a passphrase costs one Argon2id
 * derivation, a KMS a round trip), so one slow open never blocks the
 * requests of tenants already open.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tenants.h"

struct tenant {
	char name[ATREST_TENANT_MAX + 1];
	atrest_store *st;
};

struct srv_tenants {
	struct srv_store_config cfg;
	char *path;
	pthread_mutex_t mu;
	struct tenant *v;
	size_t n, cap;
};

int srv_tenants_new(struct srv_tenants **out, const struct srv_store_config *cfg)
{
	struct srv_tenants *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t || !(t->path = strdup(cfg->path))) {
		free(t);
		return ATREST_ERROR;
	}
	t->cfg = *cfg;
	t->cfg.path = t->path;
	pthread_mutex_init(&t->mu, NULL);
	*out = t;
	return 0;
}

static atrest_store *lookup(struct srv_tenants *t, const char *tenant)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].name, tenant))
			return t->v[i].st;
	return NULL;
}

/*
 * The master key of a tenant: the process's (ATREST_KEY, _FILE,
 * _PASSPHRASE, _KEY_URI, and the ATREST_OLD_* forms), as the CLI takes it.
 */
static int open_tenant(atrest_store **out, struct srv_tenants *t, const char *tenant)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_keyprov *key = NULL, *old = NULL;
	int rc;

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
	o.threads = t->cfg.threads;
	o.flags = t->cfg.flags;
	o.allow_plaintext = t->cfg.allow_plaintext;
	return atrest_store_open(out, &o);
}

int srv_tenants_get(atrest_store **out, struct srv_tenants *t, const char *tenant)
{
	atrest_store *st, *mine;
	int rc;

	pthread_mutex_lock(&t->mu);
	st = lookup(t, tenant);
	pthread_mutex_unlock(&t->mu);
	if ((*out = st))
		return 0;
	rc = open_tenant(&mine, t, tenant);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&t->mu);
	if (!(st = lookup(t, tenant))) {
		if (t->n == t->cap) {
			size_t cap = t->cap ? 2 * t->cap : 8;
			struct tenant *v = realloc(t->v, cap * sizeof(*v));

			if (!v) {
				pthread_mutex_unlock(&t->mu);
				atrest_store_close(mine);
				return ATREST_ERROR;
			}
			t->v = v;
			t->cap = cap;
		}
		memset(&t->v[t->n], 0, sizeof(t->v[0]));
		strncpy(t->v[t->n].name, tenant, ATREST_TENANT_MAX);
		t->v[t->n].st = mine;
		t->n++;
		st = mine;
		mine = NULL;
	}
	pthread_mutex_unlock(&t->mu);
	if (mine)
		atrest_store_close(mine); /* another request opened it first */
	*out = st;
	return 0;
}

void srv_tenants_free(struct srv_tenants *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		atrest_store_close(t->v[i].st);
	pthread_mutex_destroy(&t->mu);
	free(t->v);
	free(t->path);
	free(t);
}
