/*
 * The one door from the core into a store backend: checked wrappers around
 * every method (versions, missing methods, returned sizes and keys, silent
 * failures), and the registry of location schemes (file://, s3://).
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "atrest/sys/backend.h"
#include "backend_int.h"
#include "common.h"
#include "fs_int.h"
#include "plugins.h"

#define KEY_MAX 1200 /* bytes of a backend key (backend.h) */

/* A backend that failed without saying why still gets a message. */
static int failed(unsigned long seq, int rc, const char *who, const char *what)
{
	const atrest_error *e = atrest_error_last();

	if (rc == 0)
		return 0;
	if (rc > 0 || rc < ATREST_ECONFLICT)
		return atrest__error(ATREST_ERROR,
			"store backend '%s' returned %d from %s, not an atrest error code",
			who, rc, what);
	if (e && e->code == rc && atrest__error_seq() != seq)
		return rc;
	return atrest__error(rc, "store backend '%s' failed to %s: %s", who, what,
		atrest_strerror(rc));
}

int atrest__backend_check(atrest_backend *b)
{
	ENSURE(b, ATREST_EINVAL, "no store backend");
	ENSURE(b->version >= 2, ATREST_EINVAL,
		"store backend '%s' implements interface version %u; this libatrest "
		"needs version 2 (conditional puts instead of locks)",
		b->name ? b->name : "?", b->version);
	ENSURE(b->name && b->prepare && b->open_write && b->open_read && b->list &&
			b->remove && b->free,
		ATREST_EINVAL, "store backend '%s' lacks a required method",
		b->name ? b->name : "?");
	return 0;
}

int atrest__b_prepare(atrest_backend *b, int create)
{
	unsigned long seq = atrest__error_seq();
	return failed(seq, b->prepare(b, create), b->name, "prepare its location");
}

int atrest__b_open_write(atrest_backend *b, atrest_backend_writer **out, const char *key,
	unsigned int flags, const char *etag)
{
	atrest_backend_writer *w = NULL;
	int rc;

	*out = NULL;
	ENSURE(!(flags & ATREST_BACKEND_IF_MATCH) || etag, ATREST_EINVAL,
		"a conditional put needs an etag");
	unsigned long seq = atrest__error_seq();
	GUARD(failed(seq,
		b->open_write(
			b, &w, key, flags, flags & ATREST_BACKEND_IF_MATCH ? etag : NULL),
		b->name, "start a put"));
	rc = w && w->version >= 1 && w->write && w->commit && w->abort
		? 0
		: atrest__error(ATREST_ERROR,
			  "store backend '%s' returned an unusable writer", b->name);
	if (rc < 0 && w && w->abort)
		w->abort(w);
	GUARD(rc);
	*out = w;
	return 0;
}

int atrest__b_open_read(atrest_backend *b, atrest_backend_reader **out, const char *key)
{
	atrest_backend_reader *r = NULL;
	int rc;

	*out = NULL;
	unsigned long seq = atrest__error_seq();
	GUARD(failed(seq, b->open_read(b, &r, key), b->name, "open an object"));
	rc = r && r->version >= 1 && r->pread && r->close &&
			memchr(r->etag, '\0', sizeof(r->etag))
		? 0
		: atrest__error(ATREST_ERROR,
			  "store backend '%s' returned an unusable reader", b->name);
	if (rc < 0 && r && r->close)
		r->close(r);
	GUARD(rc);
	*out = r;
	return 0;
}

/* Every key listed is checked before the core sees it. */
typedef struct list_check {
	atrest_backend *b;
	const char *prefix;
	size_t plen;
	int internal;
	atrest_backend_list_cb cb;
	void *payload;
	int cb_rc;
	char prev[KEY_MAX + 1];
} list_check;

static int check_one(const char *key, uint64_t size, int64_t mtime, void *p)
{
	list_check *c = p;
	size_t len = key ? strnlen(key, KEY_MAX + 1) : 0;

	if (!key || len == 0 || len > KEY_MAX || strncmp(key, c->prefix, c->plen) != 0 ||
		(!c->internal && strncmp(key, ".atrest/", 8) == 0) ||
		(c->prev[0] && strcmp(key, c->prev) <= 0)) {
		c->cb_rc = atrest__error(ATREST_ERROR,
			"store backend '%s' listed a key out of order, outside the "
			"prefix or among the store's own files",
			c->b->name);
		return c->cb_rc;
	}
	memcpy(c->prev, key, len + 1);
	c->cb_rc = c->cb(key, size, mtime, c->payload);
	return c->cb_rc;
}

int atrest__b_list(
	atrest_backend *b, const char *prefix, atrest_backend_list_cb cb, void *payload)
{
	list_check *c = calloc(1, sizeof(*c));
	int rc;

	ENSURE(c, ATREST_ERROR, "out of memory");
	c->b = b;
	c->prefix = prefix ? prefix : "";
	c->plen = strlen(c->prefix);
	c->internal = strncmp(c->prefix, ".atrest/", 8) == 0;
	c->cb = cb;
	c->payload = payload;
	unsigned long seq = atrest__error_seq();
	rc = b->list(b, c->prefix, check_one, c);
	if (rc != 0 && rc != c->cb_rc)
		rc = failed(seq, rc, b->name, "list objects");
	free(c);
	return rc;
}

int atrest__b_remove(atrest_backend *b, const char *key)
{
	unsigned long seq = atrest__error_seq();
	return failed(seq, b->remove(b, key), b->name, "remove an object");
}

int atrest__b_remove_many(atrest_backend *b, const char *const *keys, size_t n)
{
	int rc = 0;

	if (b->version >= 3 && b->remove_many) {
		unsigned long seq = atrest__error_seq();
		return n ? failed(seq, b->remove_many(b, keys, n), b->name,
				   "remove objects")
			 : 0;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = atrest__b_remove(b, keys[i]);
		if (rc == ATREST_ENOTFOUND)
			rc = 0;
	}
	return rc;
}

int atrest__b_cleanup(atrest_backend *b, uint64_t older_than, uint64_t *count)
{
	uint64_t n = 0;
	int rc;

	*count = 0;
	if (b->version < 3 || !b->cleanup)
		return 0;
	unsigned long seq = atrest__error_seq();
	rc = failed(seq, b->cleanup(b, older_than, &n), b->name, "clean up");
	*count = n;
	return rc;
}

void atrest__b_free(atrest_backend *b)
{
	if (b && b->free)
		b->free(b);
}

int atrest__bw_write(atrest_backend_writer *w, const void *buf, size_t len)
{
	unsigned long seq = atrest__error_seq();
	return failed(seq, w->write(w, buf, len), "writer", "write");
}

int atrest__bw_sync(atrest_backend_writer *w)
{
	if (!w->sync)
		return 0;
	unsigned long seq = atrest__error_seq();
	return failed(seq, w->sync(w), "writer", "sync");
}

int atrest__bw_commit(atrest_backend_writer *w)
{
	unsigned long seq = atrest__error_seq();
	return failed(seq, w->commit(w), "writer", "commit a put");
}

void atrest__bw_abort(atrest_backend_writer *w)
{
	if (w)
		w->abort(w);
}

int atrest__br_pread(
	atrest_backend_reader *r, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t n = 0;

	*got = 0;
	unsigned long seq = atrest__error_seq();
	GUARD(failed(seq, r->pread(r, buf, len, off, &n), "reader", "read"));
	ENSURE(n <= len, ATREST_ERROR,
		"store backend returned %zu bytes for a read of %zu (faulty backend)", n,
		len);
	*got = n;
	return 0;
}

void atrest__br_close(atrest_backend_reader *r)
{
	if (r)
		r->close(r);
}

/* ---- the registry of location schemes ---- */

/* file:///abs/path (%XX decoded) or file://localhost/abs/path. */
static int file_path(char **out, const char *location)
{
	const char *p = location + 7; /* after "file://" */
	char *path;
	size_t n = 0;

	*out = NULL;
	if (strncmp(p, "localhost/", 10) == 0)
		p += 9;
	ENSURE(*p == '/', ATREST_EINVAL,
		"store location '%s': a file URI names an absolute path (file:///dir)",
		location);
	path = malloc(strlen(p) + 1);
	ENSURE(path, ATREST_ERROR, "out of memory");
	for (; *p; p++) {
		uint8_t c;
		if (*p == '%' && atrest__unhex_n(&c, 1, p + 1) == 0 && c) {
			path[n++] = (char)c;
			p += 2;
		} else {
			path[n++] = *p;
		}
	}
	path[n] = '\0';
	*out = path;
	return 0;
}

static int file_location(atrest_backend **out, const char *location, unsigned int flags)
{
	char *path;
	int rc;

	GUARD(file_path(&path, location));
	rc = atrest__backend_fs_new(out, path, (flags & ATREST_STORE_NO_SYNC) != 0);
	free(path);
	return rc;
}

static const struct {
	const char *scheme;
	atrest__backend_fn fn;
} schemes[] = {
	{"file", file_location},
#ifdef ATREST_WITH_S3
	{"s3", atrest__backend_s3},
#endif
	{NULL, NULL},
};

static const char *const scheme_names[] = {
	"file",
#ifdef ATREST_WITH_S3
	"s3",
#endif
	NULL,
};

/* Length of the "scheme" of "scheme://...", or 0 for a plain path. */
static size_t scheme_len(const char *s)
{
	size_t i = 0;

	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return 0;
	while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		(s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.')
		i++;
	return strncmp(s + i, "://", 3) == 0 ? i : 0;
}

int atrest__backend_from_location(
	atrest_backend **out, const char *location, unsigned int flags)
{
	char built[64] = "";
	size_t n;

	*out = NULL;
	ENSURE(location && *location, ATREST_EINVAL, "empty store location");
	n = scheme_len(location);
	if (n == 0)
		return atrest__backend_fs_new(
			out, location, (flags & ATREST_STORE_NO_SYNC) != 0);
	for (size_t i = 0; schemes[i].scheme; i++)
		if (strlen(schemes[i].scheme) == n &&
			strncasecmp(location, schemes[i].scheme, n) == 0)
			return schemes[i].fn(out, location, flags);
	for (size_t i = 0; scheme_names[i]; i++)
		snprintf(built + strlen(built), sizeof(built) - strlen(built), "%s%s://",
			i ? ", " : "", scheme_names[i]);
	return atrest__error(ATREST_EINVAL,
		"store location '%.*s://...': unknown scheme (built in: %s)", (int)n,
		location, built);
}

int atrest__location_dir(char **dir, const char *location)
{
	size_t n = scheme_len(location);

	*dir = NULL;
	if (n == 4 && strncasecmp(location, "file", 4) == 0)
		return file_path(dir, location);
	if (n == 0) {
		*dir = strdup(location);
		ENSURE(*dir, ATREST_ERROR, "out of memory");
	}
	return 0;
}

int atrest_location_dir(char **dir, const char *location)
{
	ENSURE(dir && location, ATREST_EINVAL, "no location");
	return atrest__location_dir(dir, location);
}

int atrest_backend_open(atrest_backend **out, const char *location)
{
	ENSURE(out, ATREST_EINVAL, "no place for the backend");
	return atrest__backend_from_location(out, location, 0);
}

const char *const *atrest_backend_schemes(void)
{
	return scheme_names;
}
