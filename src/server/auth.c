/*
 * The key set in use, behind a read-write lock: requests check under the
 * read lock, a reload parses the new file first and swaps it in under the
 * write lock, so a bad edit of the file never locks anyone out.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "apikeys.h"
#include "auth.h"
#include "events.h"
#include "metrics.h"

struct srv_auth {
	char *path;
	pthread_rwlock_t lock;
	struct srv_apikeys keys;
	struct stat seen; /* of the file loaded; st_ino 0 when none */
	int have_env;
	uint8_t env_hash[32]; /* SHA-256 of the admin key */
};

static int sha256(uint8_t out[32], const char *s)
{
	unsigned int n = 32;

	return EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

int srv_auth_new(struct srv_auth **out, const char *keys_file, const char *env_key)
{
	struct srv_auth *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a || !(a->path = strdup(keys_file))) {
		free(a);
		return -1;
	}
	pthread_rwlock_init(&a->lock, NULL);
	if (env_key && *env_key) {
		a->have_env = 1;
		if (sha256(a->env_hash, env_key) < 0) {
			srv_auth_free(a);
			return -1;
		}
	}
	if (srv_auth_reload(a, 1) < 0) {
		srv_auth_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
		a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
		a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
		a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
		a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int srv_auth_reload(struct srv_auth *a, int force)
{
	struct srv_apikeys fresh, old;
	struct stat sb;
	char why[512];

	if (stat(a->path, &sb) < 0)
		memset(&sb, 0, sizeof(sb));
	if (!force && same_file(&sb, &a->seen))
		return 0;
	if (srv_apikeys_load(&fresh, a->path, why, sizeof(why)) < 0) {
		a->seen = sb; /* reported once per change of the file */
		srv_event("apikeys_reload", "result=failed keys_in_use=%zu reason=\"%s\"",
			a->keys.n, why);
		srv_metrics_reload("apikeys", 0);
		srv_audit(ATREST_OP_SERVER, ATREST_EINVAL, NULL, NULL, "apikeys_reload",
			why);
		return -1;
	}
	pthread_rwlock_wrlock(&a->lock);
	old = a->keys;
	a->keys = fresh;
	a->seen = sb;
	pthread_rwlock_unlock(&a->lock);
	srv_apikeys_free(&old);
	srv_event("apikeys_reload", "result=ok keys=%zu file=%s", fresh.n, a->path);
	srv_metrics_reload("apikeys", 1);
	snprintf(why, sizeof(why), "%zu keys", fresh.n);
	srv_audit(ATREST_OP_SERVER, 0, NULL, NULL, "apikeys_reload", why);
	return 1;
}

int srv_auth_check(struct srv_auth *a, const char *token, struct http_principal *out)
{
	const struct srv_apikey *k;
	uint8_t h[32];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (a->have_env && sha256(h, token) == 0 &&
		CRYPTO_memcmp(h, a->env_hash, sizeof(h)) == 0) {
		snprintf(out->key_id, sizeof(out->key_id), "admin-key");
		out->role = SRV_ROLE_ADMIN;
		return 0;
	}
	pthread_rwlock_rdlock(&a->lock);
	if ((k = srv_apikeys_check(&a->keys, token)) != NULL) {
		snprintf(out->key_id, sizeof(out->key_id), "%s", k->id);
		snprintf(out->tenant, sizeof(out->tenant), "%s", k->tenant);
		out->role = k->role;
		rc = 0;
	}
	pthread_rwlock_unlock(&a->lock);
	return rc;
}

int srv_auth_s3(struct srv_auth *a, const char *id, atrest_recorder *rec,
	struct http_principal *out, char *secret)
{
	const struct srv_apikey *k;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&a->lock);
	if ((k = srv_s3keys_find(&a->keys, id)) != NULL) {
		rc = srv_s3key_secret(secret, k, rec) == 0 ? 0 : -2;
		snprintf(out->key_id, sizeof(out->key_id), "%s", k->id);
		snprintf(out->tenant, sizeof(out->tenant), "%s", k->tenant);
		out->role = rc == 0 ? k->role : 0;
	}
	pthread_rwlock_unlock(&a->lock);
	return rc;
}

size_t srv_auth_count(struct srv_auth *a)
{
	size_t n;

	pthread_rwlock_rdlock(&a->lock);
	n = a->keys.n + (a->have_env ? 1 : 0);
	pthread_rwlock_unlock(&a->lock);
	return n;
}

void srv_auth_free(struct srv_auth *a)
{
	if (!a)
		return;
	srv_apikeys_free(&a->keys);
	pthread_rwlock_destroy(&a->lock);
	OPENSSL_cleanse(a->env_hash, sizeof(a->env_hash));
	free(a->path);
	free(a);
}
