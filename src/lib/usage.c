/*
 * Per-data-key usage kept without a scan: every committed put and delete
 * adds to this handle's deltas, which the flusher merges at most once a
 * second (and at close) into the keyring's counts file (.atrest/usage.json,
 * a tenant's beside its keyring) by read, merge and conditional put.  A
 * full header scan rewrites it (docs/AUDIT.md).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "obs.h"
#include "store_int.h"

#define USAGE_NAME "usage.json"
#define USAGE_MAX (16u << 20)
#define USAGE_KEYS 100000
#define USAGE_TRIES 50 /* lost races before a merge gives up (and retries later) */

typedef struct delta {
	uint32_t id;
	int64_t objects, bytes;
} delta;

struct atrest__usage {
	pthread_mutex_t mu;
	delta *d;
	size_t n, cap;
};

int atrest__usage_new(atrest__usage **out)
{
	*out = calloc(1, sizeof(**out));
	ENSURE(*out, ATREST_ERROR, "out of memory");
	pthread_mutex_init(&(*out)->mu, NULL);
	return 0;
}

void atrest__usage_free(atrest__usage *u)
{
	if (!u)
		return;
	pthread_mutex_destroy(&u->mu);
	free(u->d);
	free(u);
}

void atrest__usage_add(atrest__usage *u, uint32_t dek, uint64_t bytes, int sign)
{
	size_t i;

	if (!u || !dek)
		return;
	pthread_mutex_lock(&u->mu);
	for (i = 0; i < u->n && u->d[i].id != dek; i++)
		;
	if (i == u->n && u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 8;
		delta *d = realloc(u->d, cap * sizeof(*d));
		if (!d) { /* counted as drift; a scan repairs it */
			pthread_mutex_unlock(&u->mu);
			return;
		}
		u->d = d;
		u->cap = cap;
	}
	if (i == u->n)
		u->d[u->n++] = (delta){dek, 0, 0};
	u->d[i].objects += sign;
	u->d[i].bytes += sign * (int64_t)bytes;
	pthread_mutex_unlock(&u->mu);
}

void atrest__usage_put(atrest_store *st, uint32_t old_dek, uint64_t old_bytes,
	uint32_t dek, uint64_t bytes)
{
	atrest__usage *u = atrest__obs_usage(st);

	atrest__usage_add(u, old_dek, old_bytes, -1);
	atrest__usage_add(u, dek, bytes, 1);
}

/* Parse the counts file; ATREST_EINTEGRITY when malformed. */
int atrest__usage_parse(atrest__usage_row **rows, size_t *n, const char *text, size_t len)
{
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *keys = json_object_get(root, "keys"), *e;
	const char *fmt = json_string_value(json_object_get(root, "format"));
	size_t i, k = json_array_size(keys);
	int ok = fmt && strcmp(fmt, "atrest-usage") == 0 && json_is_array(keys) &&
		k <= USAGE_KEYS;

	*rows = ok ? calloc(k ? k : 1, sizeof(**rows)) : NULL;
	ok = ok && *rows;
	json_array_foreach(keys, i, e)
	{
		json_int_t id, o, b;
		if (!ok || json_unpack(e, "[I,I,I]", &id, &o, &b) != 0 || id < 1 ||
			id >= 0xFFFFFF || o < 0 || b < 0) {
			ok = 0;
			break;
		}
		(*rows)[i] = (atrest__usage_row){(uint32_t)id, (uint64_t)o, (uint64_t)b};
	}
	json_decref(root);
	if (!ok) {
		free(*rows);
		*rows = NULL;
		return atrest__error(ATREST_EINTEGRITY,
			"the usage counts (%s) are damaged (a scan rewrites them: "
			"'atrest keys --scan')",
			USAGE_NAME);
	}
	*n = k;
	return 0;
}

/* The counts file beside the handle's keyring (a tenant has its own). */
static int usage_key(char out[ATREST__KEY_PREFIX_MAX], const char *kr_key)
{
	const char *slash = strrchr(kr_key, '/');
	int n = (int)(slash ? slash - kr_key + 1 : 0);

	n = snprintf(out, ATREST__KEY_PREFIX_MAX, "%.*s%s", n, kr_key, USAGE_NAME);
	ENSURE(n > 0 && n < (int)ATREST__KEY_PREFIX_MAX, ATREST_ERROR,
		"usage counts key too long");
	return 0;
}

static int usage_load(atrest__usage_row **rows, size_t *n, atrest_store *st, char *etag)
{
	char key[ATREST__KEY_PREFIX_MAX], *text;
	size_t len;
	int rc;

	GUARD(usage_key(key, st->kr_key));
	GUARD(atrest__store_read_file(st->b, key, &text, &len, USAGE_MAX, etag));
	rc = atrest__usage_parse(rows, n, text, len);
	free(text);
	return rc;
}

/* Write the counts: flags and etag as atrest__store_write_file's. */
static int usage_save(atrest_store *st, const atrest__usage_row *rows, size_t n,
	unsigned int flags, const char *etag)
{
	char key[ATREST__KEY_PREFIX_MAX];
	json_t *keys = json_array(), *root;
	char *text;
	int rc;

	for (size_t i = 0; keys && i < n; i++)
		if (rows[i].objects || rows[i].bytes)
			json_array_append_new(keys,
				json_pack("[I,I,I]", (json_int_t)rows[i].id,
					(json_int_t)rows[i].objects,
					(json_int_t)rows[i].bytes));
	root = keys ? json_pack("{s:s, s:i, s:o}", "format", "atrest-usage", "version", 1,
			      "keys", keys)
		    : NULL;
	text = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(root);
	ENSURE(text, ATREST_ERROR, "out of memory");
	rc = usage_key(key, st->kr_key);
	if (rc == 0)
		rc = atrest__store_write_file(
			st->b, key, text, strlen(text), flags, etag);
	free(text);
	return rc;
}

/* rows (n of them, room for n + nd) plus the deltas d. */
static void apply(atrest__usage_row *rows, size_t *n, const delta *d, size_t nd)
{
	for (size_t j = 0; j < nd; j++) {
		size_t i;
		for (i = 0; i < *n && rows[i].id != d[j].id; i++)
			;
		if (i == *n)
			rows[(*n)++] = (atrest__usage_row){d[j].id, 0, 0};
		rows[i].objects = (int64_t)rows[i].objects + d[j].objects > 0
			? rows[i].objects + (uint64_t)d[j].objects
			: 0;
		rows[i].bytes = (int64_t)rows[i].bytes + d[j].bytes > 0
			? rows[i].bytes + (uint64_t)d[j].bytes
			: 0;
	}
}

/* The deltas, taken out (a copy, or put back on failure). */
static int take(atrest__usage *u, delta **out, size_t *n)
{
	pthread_mutex_lock(&u->mu);
	*out = u->d;
	*n = u->n;
	u->d = NULL;
	u->n = u->cap = 0;
	pthread_mutex_unlock(&u->mu);
	return *n > 0;
}

static void put_back(atrest__usage *u, const delta *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		atrest__usage_add(u, d[i].id, 0, 0); /* makes its entry */
		pthread_mutex_lock(&u->mu);
		for (size_t j = 0; j < u->n; j++)
			if (u->d[j].id == d[i].id) {
				u->d[j].objects += d[i].objects;
				u->d[j].bytes += d[i].bytes;
			}
		pthread_mutex_unlock(&u->mu);
	}
}

/* One read, merge and conditional put (ATREST_ECONFLICT: lost a race). */
static int merge_once(atrest_store *st, const delta *d, size_t nd)
{
	char etag[ATREST_BACKEND_ETAG_MAX];
	atrest__usage_row *rows = NULL, *big;
	size_t n = 0;
	int rc = usage_load(&rows, &n, st, etag);

	if (rc == ATREST_ENOTFOUND) /* no counts yet: a scan makes them */
		return 0;
	GUARD(rc);
	big = realloc(rows, (n + nd + 1) * sizeof(*rows));
	if (!big) {
		free(rows);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	apply(big, &n, d, nd);
	rc = usage_save(st, big, n, ATREST_BACKEND_IF_MATCH, etag);
	free(big);
	return rc;
}

/* Another process merged (or a scan rewrote) meanwhile: read again. */
static int merge(atrest_store *st, const delta *d, size_t nd)
{
	int rc, tries = 0;

	while ((rc = merge_once(st, d, nd)) == ATREST_ECONFLICT && ++tries < USAGE_TRIES)
		atrest__store_backoff(tries);
	return rc;
}

int atrest__usage_flush(atrest_store *st)
{
	atrest__usage *u = atrest__obs_usage(st);
	delta *d = NULL;
	size_t nd = 0;
	int rc;

	if (!u || !take(u, &d, &nd)) {
		free(d);
		return 0;
	}
	rc = merge(st, d, nd);
	if (rc < 0)
		put_back(u, d, nd);
	free(d);
	return rc;
}

int atrest__usage_read(atrest__usage_row **rows, size_t *n, atrest_store *st)
{
	atrest__usage *u = atrest__obs_usage(st);
	atrest__usage_row *big;
	int rc;

	*rows = NULL;
	*n = 0;
	GUARD(usage_load(rows, n, st, NULL));
	pthread_mutex_lock(&u->mu);
	big = realloc(*rows, (*n + u->n + 1) * sizeof(**rows));
	if (big) {
		*rows = big;
		apply(big, n, u->d, u->n);
	}
	pthread_mutex_unlock(&u->mu);
	rc = big ? 0 : atrest__error(ATREST_ERROR, "out of memory");
	if (rc < 0) {
		free(*rows);
		*rows = NULL;
	}
	return rc;
}

/*
 * A scan's counts replace the file whatever it held (the scan is the
 * truth); the deltas it saw are dropped.  A merge racing it either lands
 * first (and is replaced) or finds the new version and merges into it.
 */
int atrest__usage_write(atrest_store *st, const atrest__usage_row *rows, size_t n)
{
	atrest__usage *u = atrest__obs_usage(st);
	delta *d = NULL;
	size_t nd;

	if (u)
		take(u, &d, &nd); /* the scan saw what they counted */
	free(d);
	return usage_save(st, rows, n, 0, NULL);
}

static int found_one(const char *key, uint64_t size, int64_t mtime, void *p)
{
	(void)key, (void)size, (void)mtime, (void)p;
	return 1;
}

/* A keyring with no objects yet starts its counts (empty): created only
 * if absent, so a process that made them first keeps its own. */
int atrest__usage_init(atrest_store *st)
{
	atrest__usage_row *rows = NULL;
	size_t n = 0;
	int rc = usage_load(&rows, &n, st, NULL);

	free(rows);
	if (rc != ATREST_ENOTFOUND)
		return 0; /* there, or damaged: a scan rewrites it */
	rc = atrest__b_list(st->b, st->prefix, found_one, NULL);
	if (rc != 0)
		return 0; /* objects, but no counts: a scan makes them */
	rc = usage_save(st, NULL, 0, ATREST_BACKEND_IF_ABSENT, NULL);
	return rc == ATREST_EEXISTS ? 0 : rc;
}

int atrest__usage_remove(atrest_backend *b, const char *kr_key)
{
	char key[ATREST__KEY_PREFIX_MAX];
	int rc;

	GUARD(usage_key(key, kr_key));
	rc = atrest__b_remove(b, key);
	return rc == ATREST_ENOTFOUND ? 0 : rc;
}
