/*
 * The in-memory store backend of the tests (mem_backend.h): a sorted array
 * of objects behind one mutex, conditional puts checked at commit, readers
 * on a snapshot, every call counted, failures and lies on demand.  Written
 * against the public plug-in interface only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/errors.h"
#include "mem_backend.h"

struct obj {
	char *key;
	uint8_t *data;
	size_t len;
	int64_t mtime;
	uint64_t gen;
};

struct mem_location {
	pthread_mutex_t mu;
	struct obj *v;
	size_t n, cap;
	uint64_t gen;
	atomic_ulong calls[MEM_CALLS];
	atomic_int lie;
	int fail_m, fail_after, fail_count, fail_code, fail_silent;
};

struct mem_backend {
	atrest_backend parent;
	mem_location *loc;
};

struct mem_writer {
	atrest_backend_writer parent;
	mem_location *loc;
	unsigned int flags;
	char etag[ATREST_BACKEND_ETAG_MAX];
	uint8_t *data;
	size_t len, cap;
	char key[];
};

struct mem_reader {
	atrest_backend_reader parent;
	mem_location *loc;
	uint8_t *data;
	size_t len;
};

mem_location *mem_location_new(void)
{
	mem_location *loc = calloc(1, sizeof(*loc));

	if (loc)
		pthread_mutex_init(&loc->mu, NULL);
	return loc;
}

void mem_location_free(mem_location *loc)
{
	if (!loc)
		return;
	for (size_t i = 0; i < loc->n; i++) {
		free(loc->v[i].key);
		free(loc->v[i].data);
	}
	free(loc->v);
	pthread_mutex_destroy(&loc->mu);
	free(loc);
}

unsigned long mem_calls(mem_location *loc, int m)
{
	return atomic_load(&loc->calls[m]);
}

void mem_calls_reset(mem_location *loc)
{
	for (int i = 0; i < MEM_CALLS; i++)
		atomic_store(&loc->calls[i], 0);
}

void mem_lie(mem_location *loc, int how)
{
	atomic_store(&loc->lie, how);
}

void mem_fail(mem_location *loc, int m, int after, int count, int code, int silent)
{
	pthread_mutex_lock(&loc->mu);
	loc->fail_m = m;
	loc->fail_after = after;
	loc->fail_count = count;
	loc->fail_code = code;
	loc->fail_silent = silent;
	pthread_mutex_unlock(&loc->mu);
}

/* Count a call of m; a failure code when one is armed for it, else 0. */
static int enter(mem_location *loc, int m)
{
	int rc = 0, silent = 0;

	atomic_fetch_add(&loc->calls[m], 1);
	pthread_mutex_lock(&loc->mu);
	if (loc->fail_count > 0 && loc->fail_m == m) {
		if (loc->fail_after > 0) {
			loc->fail_after--;
		} else {
			loc->fail_count--;
			rc = loc->fail_code;
			silent = loc->fail_silent;
		}
	}
	pthread_mutex_unlock(&loc->mu);
	if (rc && !silent)
		atrest_error_set(rc, "mem: injected failure");
	return rc;
}

/* Index of key, or where it would go (*found 0). */
static size_t find(const mem_location *loc, const char *key, int *found)
{
	size_t lo = 0, hi = loc->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(loc->v[mid].key, key);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static int bad_key(const char *key)
{
	const char *c = key, *p;

	if (!key || !*key || *key == '/' || strlen(key) > 1200)
		return 1;
	for (;; c = p + 1) {
		p = strchr(c, '/');
		size_t n = p ? (size_t)(p - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && !strncmp(c, "..", 2)))
			return 1;
		if (!p)
			return 0;
	}
}

static int check_key(const char *key)
{
	if (bad_key(key))
		return atrest_error_set(ATREST_EINVAL, "mem: bad key");
	return 0;
}

static void etag_of(char out[ATREST_BACKEND_ETAG_MAX], uint64_t gen)
{
	snprintf(out, ATREST_BACKEND_ETAG_MAX, "\"g%llu\"", (unsigned long long)gen);
}

/* ---- writer ---- */

static int mw_write(atrest_backend_writer *bw, const void *buf, size_t len)
{
	struct mem_writer *w = (struct mem_writer *)bw;
	int rc = enter(w->loc, MEM_WRITE);

	if (rc || len == 0)
		return rc;
	if (w->len + len > w->cap) {
		size_t cap = (w->len + len) * 2 + 64;
		uint8_t *d = realloc(w->data, cap);
		if (!d)
			return atrest_error_set(ATREST_ERROR, "mem: out of memory");
		w->data = d;
		w->cap = cap;
	}
	memcpy(w->data + w->len, buf, len);
	w->len += len;
	return 0;
}

static int mw_sync(atrest_backend_writer *bw)
{
	struct mem_writer *w = (struct mem_writer *)bw;

	return enter(w->loc, MEM_SYNC);
}

static void mw_free(struct mem_writer *w)
{
	free(w->data);
	free(w);
}

/* The condition and the publication under one lock: exact. */
static int publish(struct mem_writer *w)
{
	mem_location *loc = w->loc;
	char now[ATREST_BACKEND_ETAG_MAX];
	int found;
	size_t i = find(loc, w->key, &found);

	if ((w->flags & ATREST_BACKEND_IF_ABSENT) && found)
		return atrest_error_set(ATREST_EEXISTS, "mem: '%s' exists", w->key);
	if (w->flags & ATREST_BACKEND_IF_MATCH) {
		if (found)
			etag_of(now, loc->v[i].gen);
		if (!found || strcmp(now, w->etag) != 0)
			return atrest_error_set(
				ATREST_ECONFLICT, "mem: '%s' changed meanwhile", w->key);
	}
	if (!found) {
		if (loc->n == loc->cap) {
			size_t cap = loc->cap ? 2 * loc->cap : 16;
			struct obj *v = realloc(loc->v, cap * sizeof(*v));
			if (!v)
				return atrest_error_set(
					ATREST_ERROR, "mem: out of memory");
			loc->v = v;
			loc->cap = cap;
		}
		memmove(&loc->v[i + 1], &loc->v[i], (loc->n - i) * sizeof(*loc->v));
		loc->n++;
		loc->v[i].key = strdup(w->key);
	} else {
		free(loc->v[i].data);
	}
	loc->v[i].data = w->data;
	loc->v[i].len = w->len;
	loc->v[i].mtime = (int64_t)time(NULL);
	loc->v[i].gen = ++loc->gen;
	w->data = NULL;
	return 0;
}

static int mw_commit(atrest_backend_writer *bw)
{
	struct mem_writer *w = (struct mem_writer *)bw;
	int rc = enter(w->loc, MEM_COMMIT);

	if (rc == 0) {
		pthread_mutex_lock(&w->loc->mu);
		rc = publish(w);
		pthread_mutex_unlock(&w->loc->mu);
	}
	mw_free(w);
	return rc;
}

static void mw_abort(atrest_backend_writer *bw)
{
	struct mem_writer *w = (struct mem_writer *)bw;

	enter(w->loc, MEM_ABORT);
	mw_free(w);
}

static int mem_open_write(atrest_backend *b, atrest_backend_writer **out, const char *key,
	unsigned int flags, const char *etag)
{
	mem_location *loc = ((struct mem_backend *)b)->loc;
	struct mem_writer *w;
	int rc = enter(loc, MEM_OPEN_WRITE);

	*out = NULL;
	if (rc || (rc = check_key(key)))
		return rc;
	w = calloc(1, sizeof(*w) + strlen(key) + 1);
	if (!w)
		return atrest_error_set(ATREST_ERROR, "mem: out of memory");
	w->parent = (atrest_backend_writer)ATREST_BACKEND_WRITER_INIT;
	w->parent.write = mw_write;
	w->parent.commit = mw_commit;
	w->parent.abort = mw_abort;
	w->parent.sync = mw_sync;
	w->loc = loc;
	w->flags = flags;
	if (etag)
		snprintf(w->etag, sizeof(w->etag), "%s", etag);
	strcpy(w->key, key);
	*out = &w->parent;
	return 0;
}

/* ---- reader: a snapshot of the version opened ---- */

static int mr_pread(
	atrest_backend_reader *br, void *buf, size_t len, uint64_t off, size_t *got)
{
	struct mem_reader *r = (struct mem_reader *)br;
	int lie = atomic_load(&r->loc->lie), rc = enter(r->loc, MEM_PREAD);
	size_t n = 0;

	*got = 0;
	if (rc)
		return rc;
	if (off < r->len)
		n = r->len - off < len ? r->len - off : len;
	memcpy(buf, r->data + (off < r->len ? off : 0), n);
	if (lie == MEM_LIE_LONG)
		n = len + 16;
	else if (lie == MEM_LIE_SHORT && n == len && len > 1)
		n = len / 2;
	*got = n;
	return 0;
}

static void mr_close(atrest_backend_reader *br)
{
	struct mem_reader *r = (struct mem_reader *)br;

	enter(r->loc, MEM_CLOSE);
	free(r->data);
	free(r);
}

static int mem_open_read(atrest_backend *b, atrest_backend_reader **out, const char *key)
{
	mem_location *loc = ((struct mem_backend *)b)->loc;
	struct mem_reader *r;
	int found, rc = enter(loc, MEM_OPEN_READ);
	size_t i;

	*out = NULL;
	if (rc || (rc = check_key(key)))
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return atrest_error_set(ATREST_ERROR, "mem: out of memory");
	pthread_mutex_lock(&loc->mu);
	i = find(loc, key, &found);
	if (found) {
		r->len = loc->v[i].len;
		r->data = malloc(r->len ? r->len : 1);
		if (r->data && r->len)
			memcpy(r->data, loc->v[i].data, r->len);
		r->parent.mtime = loc->v[i].mtime;
		etag_of(r->parent.etag, loc->v[i].gen);
	}
	pthread_mutex_unlock(&loc->mu);
	if (!found || !r->data) {
		free(r->data);
		free(r);
		return found
			? atrest_error_set(ATREST_ERROR, "mem: out of memory")
			: atrest_error_set(ATREST_ENOTFOUND, "mem: no object '%s'", key);
	}
	r->parent.version = ATREST_BACKEND_READER_VERSION;
	r->parent.size = r->len;
	r->parent.pread = mr_pread;
	r->parent.close = mr_close;
	r->loc = loc;
	*out = &r->parent;
	return 0;
}

/* ---- list, remove, the rest ---- */

struct listed {
	char *key;
	uint64_t size;
	int64_t mtime;
};

/* The callback runs with the mutex released (it may call us back). */
static int mem_list(
	atrest_backend *b, const char *prefix, atrest_backend_list_cb cb, void *payload)
{
	mem_location *loc = ((struct mem_backend *)b)->loc;
	size_t pl = strlen(prefix ? prefix : ""), n = 0;
	int internal = strncmp(prefix ? prefix : "", ".atrest/", 8) == 0;
	struct listed *v;
	int rc = enter(loc, MEM_LIST);

	if (rc)
		return rc;
	pthread_mutex_lock(&loc->mu);
	v = calloc(loc->n + 1, sizeof(*v));
	for (size_t i = 0; v && i < loc->n; i++) {
		const struct obj *o = &loc->v[i];
		if (strncmp(o->key, prefix ? prefix : "", pl) != 0 ||
			(!internal && strncmp(o->key, ".atrest/", 8) == 0))
			continue;
		v[n].key = strdup(o->key);
		v[n].size = o->len;
		v[n++].mtime = o->mtime;
	}
	pthread_mutex_unlock(&loc->mu);
	if (!v)
		return atrest_error_set(ATREST_ERROR, "mem: out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = cb(v[i].key, v[i].size, v[i].mtime, payload);
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
	return rc;
}

static int mem_remove(atrest_backend *b, const char *key)
{
	mem_location *loc = ((struct mem_backend *)b)->loc;
	int found, rc = enter(loc, MEM_REMOVE);
	size_t i;

	if (rc || (rc = check_key(key)))
		return rc;
	pthread_mutex_lock(&loc->mu);
	i = find(loc, key, &found);
	if (found) {
		free(loc->v[i].key);
		free(loc->v[i].data);
		memmove(&loc->v[i], &loc->v[i + 1], (loc->n - i - 1) * sizeof(*loc->v));
		loc->n--;
	}
	pthread_mutex_unlock(&loc->mu);
	return found ? 0 : atrest_error_set(ATREST_ENOTFOUND, "mem: no object '%s'", key);
}

static int mem_prepare(atrest_backend *b, int create)
{
	(void)create;
	return enter(((struct mem_backend *)b)->loc, MEM_PREPARE);
}

static void mem_free(atrest_backend *b)
{
	free(b);
}

atrest_backend *mem_backend(mem_location *loc)
{
	struct mem_backend *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->parent = (atrest_backend)ATREST_BACKEND_INIT;
	m->parent.name = "mem";
	m->parent.prepare = mem_prepare;
	m->parent.open_write = mem_open_write;
	m->parent.open_read = mem_open_read;
	m->parent.list = mem_list;
	m->parent.remove = mem_remove;
	m->parent.free = mem_free;
	m->loc = loc;
	return &m->parent;
}

int mem_poke(mem_location *loc, const char *key, const void *buf, size_t len)
{
	struct mem_writer *w = calloc(1, sizeof(*w) + strlen(key) + 1);
	int rc;

	if (!w || !(w->data = malloc(len ? len : 1))) {
		free(w);
		return ATREST_ERROR;
	}
	memcpy(w->data, buf, len);
	w->len = len;
	w->loc = loc;
	strcpy(w->key, key);
	pthread_mutex_lock(&loc->mu);
	rc = publish(w);
	pthread_mutex_unlock(&loc->mu);
	mw_free(w);
	return rc;
}

uint8_t *mem_peek(mem_location *loc, const char *key, size_t *len)
{
	uint8_t *out = NULL;
	int found;
	size_t i;

	pthread_mutex_lock(&loc->mu);
	i = find(loc, key, &found);
	if (found && (out = malloc(loc->v[i].len ? loc->v[i].len : 1)) != NULL) {
		memcpy(out, loc->v[i].data, loc->v[i].len);
		*len = loc->v[i].len;
	}
	pthread_mutex_unlock(&loc->mu);
	return out;
}

size_t mem_count(mem_location *loc)
{
	size_t n;

	pthread_mutex_lock(&loc->mu);
	n = loc->n;
	pthread_mutex_unlock(&loc->mu);
	return n;
}
