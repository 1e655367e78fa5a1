/*
 * What the snapshot modules share: names of the library's own objects,
 * small sealed objects, listings of the snapshot area, manifests loaded and
 * checked, the content-hash keys, clocks and progress reporting.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "names.h"
#include "snap_int.h"

int atrest__snap_name_check(const char *name)
{
	GUARD(atrest_name_check(name));
	ENSURE(strlen(name) <= ATREST__SNAP_NAME_MAX, ATREST_EINVAL,
		"invalid snapshot name: longer than %d bytes", ATREST__SNAP_NAME_MAX);
	return 0;
}

static void hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int atrest__snap_mname(char out[SNAP_NAME_MAX], const char *name)
{
	GUARD(atrest__snap_name_check(name));
	snprintf(out, SNAP_NAME_MAX, SNAP_ROOT "m/%s", name);
	return 0;
}

void atrest__snap_dname(char out[SNAP_NAME_MAX], const atrest__snap_ref *r)
{
	char h[2 * ATREST__SNAP_ID_LEN + 1];

	hex(h, r->writer, ATREST__SNAP_ID_LEN);
	snprintf(out, SNAP_NAME_MAX, SNAP_ROOT "d/%s/%u", h, r->index);
}

void atrest__snap_lname(char out[SNAP_NAME_MAX], const uint8_t id[ATREST__SNAP_ID_LEN])
{
	char h[2 * ATREST__SNAP_ID_LEN + 1];

	hex(h, id, ATREST__SNAP_ID_LEN);
	snprintf(out, SNAP_NAME_MAX, SNAP_ROOT "l/%s", h);
}

void atrest__snap_gname(char out[SNAP_NAME_MAX], const uint8_t id[ATREST__SNAP_ID_LEN])
{
	char h[2 * ATREST__SNAP_ID_LEN + 1];

	hex(h, id, ATREST__SNAP_ID_LEN);
	snprintf(out, SNAP_NAME_MAX, SNAP_ROOT "g/%s", h);
}

int atrest__snap_parse_id(uint8_t out[ATREST__SNAP_ID_LEN], const char *h)
{
	for (size_t i = 0; i < 2 * ATREST__SNAP_ID_LEN; i++)
		if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
			return -1;
	if (h[2 * ATREST__SNAP_ID_LEN] != '\0' && h[2 * ATREST__SNAP_ID_LEN] != '/')
		return -1;
	return atrest__unhex_n(out, ATREST__SNAP_ID_LEN, h) == 0 ? 0 : -1;
}

/* Canonical decimal only ("7", never "07"), so one object has one name. */
int atrest__snap_parse_dref(atrest__snap_ref *out, const char *rel)
{
	const char *n = rel + 2 * ATREST__SNAP_ID_LEN + 1;
	uint64_t v = 0;

	if (atrest__snap_parse_id(out->writer, rel) < 0 ||
		rel[2 * ATREST__SNAP_ID_LEN] != '/')
		return -1;
	if (!*n || (n[0] == '0' && n[1]) || strlen(n) > 10)
		return -1;
	for (; *n; n++) {
		if (*n < '0' || *n > '9')
			return -1;
		v = v * 10 + (uint64_t)(*n - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	out->index = (uint32_t)v;
	return 0;
}

/* ---- small sealed objects ---- */

int atrest__snap_put_small(atrest_store *st, const char *name, const void *buf,
	size_t len, unsigned int flags, const char *etag)
{
	atrest_writer *w;
	int rc;

	GUARD(atrest__writer_open_internal(&w, st, name, flags, etag));
	rc = atrest_writer_write(w, buf, len);
	if (rc < 0) {
		atrest_writer_abort(w);
		return rc;
	}
	return atrest_writer_commit(w);
}

static int read_all(atrest_reader *r, uint8_t *buf, size_t len)
{
	size_t done = 0, got;

	while (done < len) {
		GUARD(atrest_reader_read(r, buf + done, len - done, &got));
		ENSURE(got > 0, ATREST_EINTEGRITY, "object shorter than its size");
		done += got;
	}
	return 0;
}

int atrest__snap_get_small(uint8_t **out, size_t *len, char *etag, int64_t *mtime,
	atrest_store *st, const char *name, size_t max)
{
	uint8_t commit[32];
	atrest_reader *r;
	const char *et;
	uint32_t dek;
	int64_t mt;
	uint64_t size;
	int rc;

	*out = NULL;
	*len = 0;
	GUARD(atrest__reader_open_internal(&r, st, name));
	size = atrest_reader_size(r);
	atrest__reader_facts(r, commit, &dek, &et, &mt);
	if (etag)
		snprintf(etag, ATREST_BACKEND_ETAG_MAX, "%s", et);
	if (mtime)
		*mtime = mt;
	ENSURE_OUT(size <= max, ATREST_ETOOBIG, "%s is larger than %zu bytes", name, max);
	*out = malloc(size ? (size_t)size : 1);
	ENSURE_OUT(*out, ATREST_ERROR, "out of memory");
	rc = read_all(r, *out, (size_t)size);
	if (rc < 0) {
		free(*out);
		*out = NULL;
	}
	*len = (size_t)size;
out:
	atrest_reader_close(r);
	return rc;
}

int atrest__snap_version(char *etag, int64_t *mtime, atrest_store *st, const char *name)
{
	char key[ATREST__STORE_KEY_MAX];
	atrest_backend_reader *br;

	GUARD(atrest__store_key(key, sizeof(key), st, name));
	GUARD(atrest__b_open_read(st->b, &br, key));
	if (etag)
		snprintf(etag, ATREST_BACKEND_ETAG_MAX, "%s", br->etag);
	if (mtime)
		*mtime = br->mtime;
	atrest__br_close(br);
	return 0;
}

int atrest__snap_remove(atrest_store *st, const char *name)
{
	return atrest__object_remove(st, name, 1);
}

typedef struct list_ctx {
	atrest__snap_list_cb cb;
	void *payload;
	size_t skip;
} list_ctx;

static int list_one(const char *key, uint64_t size, int64_t mtime, void *p)
{
	list_ctx *c = p;

	return c->cb(key + c->skip, size, mtime, c->payload);
}

int atrest__snap_list(
	atrest_store *st, const char *sub, atrest__snap_list_cb cb, void *payload)
{
	char name[SNAP_NAME_MAX + 16], key[ATREST__STORE_KEY_MAX];
	list_ctx c = {cb, payload, 0};

	ENSURE(strlen(sub) < SNAP_NAME_MAX - sizeof(SNAP_ROOT), ATREST_EINVAL,
		"prefix too long");
	snprintf(name, sizeof(name), SNAP_ROOT "%s", sub);
	GUARD(atrest__store_key(key, sizeof(key), st, name));
	c.skip = strlen(key) - strlen(sub);
	return atrest__b_list(st->b, key, list_one, &c);
}

static int key_one(const char *rel, uint64_t size, int64_t mtime, void *p)
{
	return atrest__snap_keys_add(p, rel, size, mtime);
}

int atrest__snap_keys_add(
	atrest__snap_keys *k, const char *rel, uint64_t size, int64_t mtime)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 256;
		atrest__snap_key *v = realloc(k->v, cap * sizeof(*v));
		ENSURE(v, ATREST_ERROR, "out of memory");
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n].rel = strdup(rel);
	ENSURE(k->v[k->n].rel, ATREST_ERROR, "out of memory");
	k->v[k->n].size = size;
	k->v[k->n++].mtime = mtime;
	return 0;
}

void atrest__snap_keys_free(atrest__snap_keys *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i].rel);
	free(k->v);
	memset(k, 0, sizeof(*k));
}

int atrest__snap_keys_of(atrest__snap_keys *k, atrest_store *st, const char *sub)
{
	int rc;

	memset(k, 0, sizeof(*k));
	rc = atrest__snap_list(st, sub, key_one, k);
	if (rc < 0)
		atrest__snap_keys_free(k);
	return rc;
}

int atrest__snap_each_object(
	atrest_store *st, int (*fn)(const char *name, void *payload), void *payload)
{
	char name[SNAP_NAME_MAX];
	atrest__snap_keys k;
	int rc = atrest__snap_keys_of(&k, st, "");

	for (size_t i = 0; rc == 0 && i < k.n; i++) {
		snprintf(name, sizeof(name), SNAP_ROOT "%s", k.v[i].rel);
		rc = fn(name, payload);
	}
	atrest__snap_keys_free(&k);
	return rc;
}

/* ---- manifests ---- */

int atrest__snap_load(
	atrest__manifest **out, char *etag, atrest_store *st, const char *name)
{
	char mname[SNAP_NAME_MAX];
	uint8_t *buf;
	size_t len;
	int rc;

	*out = NULL;
	GUARD(atrest__snap_mname(mname, name));
	rc = atrest__snap_get_small(
		&buf, &len, etag, NULL, st, mname, (size_t)ATREST__SNAP_MANIFEST_MAX);
	if (rc == ATREST_ENOTFOUND)
		return atrest__error(rc, "no snapshot '%s'", name);
	GUARD(rc);
	rc = atrest__manifest_decode(out, buf, len);
	atrest__wipe(buf, len);
	free(buf);
	if (rc == 0 && strcmp((*out)->name, name) != 0) {
		atrest__manifest_free(*out);
		*out = NULL;
		rc = atrest__error(ATREST_EINTEGRITY,
			"manifest of '%s' names another snapshot", name);
	}
	if (rc < 0)
		atrest__error_prefix("snapshot '%s'", name);
	return rc;
}

int atrest__snap_load_head(atrest__manifest_head *out, atrest_store *st, const char *name)
{
	char mname[SNAP_NAME_MAX];
	uint8_t buf[4096];
	atrest_reader *r;
	size_t len;
	int rc;

	GUARD(atrest__snap_mname(mname, name));
	rc = atrest__reader_open_internal(&r, st, mname);
	if (rc == ATREST_ENOTFOUND)
		return atrest__error(rc, "no snapshot '%s'", name);
	GUARD(rc);
	len = atrest_reader_size(r) < sizeof(buf) ? (size_t)atrest_reader_size(r)
						  : sizeof(buf);
	rc = read_all(r, buf, len);
	atrest_reader_close(r);
	if (rc == 0)
		rc = atrest__manifest_head_decode(out, buf, len);
	if (rc == 0 && strcmp(out->name, name) != 0)
		rc = atrest__error(ATREST_EINTEGRITY, "manifest names another snapshot");
	if (rc < 0)
		atrest__error_prefix("snapshot '%s'", name);
	return rc;
}

/* ---- content-hash keys ---- */

void atrest__snap_hkeys_init(atrest__snap_hkeys *h)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
}

void atrest__snap_hkeys_free(atrest__snap_hkeys *h)
{
	atrest__secret_free(h->keys);
	pthread_mutex_destroy(&h->mu);
}

/* Khash = HKDF(salt = store id, IKM = data key, "atrest/v1 snapshot content"). */
static int derive_hkey(uint8_t out[32], atrest_store *st, uint32_t dek)
{
	static const char info[] = "atrest/v1 snapshot content";
	uint8_t key[ATREST__DEK_LEN];
	int rc;

	GUARD(atrest__store_dek(st, dek, key));
	rc = atrest__hkdf(out, 32, st->store_id, sizeof(st->store_id), key, sizeof(key),
		(const uint8_t *)info, sizeof(info) - 1);
	atrest__wipe(key, sizeof(key));
	return rc;
}

int atrest__snap_mac(
	atrest__mac **out, atrest__snap_hkeys *h, atrest_store *st, uint32_t dek)
{
	uint8_t key[32];
	size_t cap = sizeof(h->ids) / sizeof(h->ids[0]);
	int rc = 1;

	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < h->n; i++)
		if (h->ids[i] == dek) {
			rc = atrest__mac_new(out, h->keys->data + 32 * i, 32);
			break;
		}
	pthread_mutex_unlock(&h->mu);
	if (rc <= 0)
		return rc;
	GUARD(derive_hkey(key, st, dek));
	rc = atrest__mac_new(out, key, sizeof(key));
	pthread_mutex_lock(&h->mu);
	if (!h->keys && atrest__secret_new(&h->keys, 32 * cap) < 0)
		h->keys = NULL;
	if (h->keys && h->n < cap) {
		memcpy(h->keys->data + 32 * h->n, key, 32);
		h->ids[h->n++] = dek;
	}
	pthread_mutex_unlock(&h->mu);
	atrest__wipe(key, sizeof(key));
	return rc;
}

/* ---- clocks ---- */

double atrest__snap_clock(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int64_t atrest__snap_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void atrest__snap_pause(unsigned ms)
{
	uint16_t r = 0;
	struct timespec t;
	unsigned total;

	(void)atrest__rand(&r, sizeof(r));
	total = ms + (ms ? r % (ms + 1) : 0);
	t.tv_sec = total / 1000;
	t.tv_nsec = (long)(total % 1000) * 1000000;
	while (nanosleep(&t, &t) != 0)
		;
}

/* ---- progress ---- */

void atrest__snap_prog_init(
	atrest__snap_prog *g, atrest_snap_progress_cb cb, void *payload)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	g->cb = cb;
	g->payload = payload;
}

void atrest__snap_prog_add(atrest__snap_prog *g, uint64_t files, uint64_t bytes)
{
	double now;

	pthread_mutex_lock(&g->mu);
	g->p.files_done += files;
	g->p.bytes_done += bytes;
	if (g->cb && (now = atrest__snap_clock()) - g->last >= 0.1) {
		g->last = now;
		g->cb(&g->p, g->payload);
	}
	pthread_mutex_unlock(&g->mu);
}

void atrest__snap_prog_note(atrest__snap_prog *g, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!g->cb)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&g->mu);
	g->p.note = msg;
	g->p.note_path = path;
	g->cb(&g->p, g->payload);
	g->p.note = NULL;
	g->p.note_path = NULL;
	pthread_mutex_unlock(&g->mu);
}

void atrest__snap_prog_end(atrest__snap_prog *g)
{
	if (g->cb)
		g->cb(&g->p, g->payload);
	pthread_mutex_destroy(&g->mu);
}

void atrest__snap_op_stats(atrest__op *op, const atrest_snap_stats *st)
{
	op->count = st->files;
	op->bytes = st->bytes;
}
