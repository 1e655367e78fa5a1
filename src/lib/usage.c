/*
 * Per-data-key usage kept without a scan: every committed put and delete
 * adds to this handle's deltas, which the flusher merges at most once a
 * second (and at close) into the store's counts file, .atrest/usage.json,
 * under the store lock.  A full header scan rewrites it (docs/AUDIT.md).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "obs.h"
#include "store_int.h"

#define USAGE_NAME ".atrest/usage.json"
#define USAGE_MAX (16u << 20)
#define USAGE_KEYS 100000

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
			"%s is damaged (a scan rewrites it: "
			"'atrest keys --scan')",
			USAGE_NAME);
	}
	*n = k;
	return 0;
}

static int usage_load(atrest__usage_row **rows, size_t *n, atrest_store *st)
{
	char *text;
	size_t len;
	int rc;

	GUARD(atrest__store_read_file(st->b, USAGE_NAME, &text, &len, USAGE_MAX));
	rc = atrest__usage_parse(rows, n, text, len);
	free(text);
	return rc;
}

static int usage_save(atrest_store *st, const atrest__usage_row *rows, size_t n)
{
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
	rc = atrest__store_write_file(st->b, USAGE_NAME, text, strlen(text), 0);
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

static int merge_locked(atrest_store *st, const delta *d, size_t nd)
{
	atrest__usage_row *rows = NULL, *big;
	size_t n = 0;
	int rc = usage_load(&rows, &n, st);

	if (rc == ATREST_ENOTFOUND) /* no counts yet: a scan makes them */
		return 0;
	GUARD(rc);
	big = realloc(rows, (n + nd + 1) * sizeof(*rows));
	if (!big) {
		free(rows);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	apply(big, &n, d, nd);
	rc = usage_save(st, big, n);
	free(big);
	return rc;
}

int atrest__usage_flush(atrest_store *st)
{
	atrest__usage *u = atrest__obs_usage(st);
	atrest_backend_lock *lock;
	delta *d = NULL;
	size_t nd = 0;
	int rc;

	if (!u || !take(u, &d, &nd)) {
		free(d);
		return 0;
	}
	rc = st->b->lock(st->b, &lock);
	if (rc == 0) {
		rc = merge_locked(st, d, nd);
		st->b->unlock(st->b, lock);
	}
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
	GUARD(usage_load(rows, n, st));
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

int atrest__usage_write(atrest_store *st, const atrest__usage_row *rows, size_t n)
{
	atrest__usage *u = atrest__obs_usage(st);
	atrest_backend_lock *lock;
	delta *d = NULL;
	size_t nd;
	int rc;

	GUARD(st->b->lock(st->b, &lock));
	take(u, &d, &nd); /* the scan saw what they counted */
	free(d);
	rc = usage_save(st, rows, n);
	st->b->unlock(st->b, lock);
	return rc;
}

static int found_one(const char *key, uint64_t size, int64_t mtime, void *p)
{
	(void)key, (void)size, (void)mtime, (void)p;
	return 1;
}

int atrest__usage_init(atrest_store *st)
{
	atrest__usage_row *rows = NULL;
	size_t n = 0;
	int rc = usage_load(&rows, &n, st);

	free(rows);
	if (rc != ATREST_ENOTFOUND)
		return 0; /* there, or damaged: a scan rewrites it */
	rc = st->b->list(st->b, "", found_one, NULL);
	return rc == 0 ? atrest__usage_write(st, NULL, 0) : 0;
}
