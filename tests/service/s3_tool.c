/*
 * The S3 service tests' helper program, against a real server:
 *   s3_tool suite BASE          the backend contract suite, each test in a
 *                               fresh prefix under BASE (s3://bucket/p)
 *   s3_tool fill LOC PFX N T    N small objects PFX00000.. put raw through
 *                               the backend by T threads (fast fills)
 *   s3_tool count LOC PFX       how many keys the backend lists under PFX
 *   s3_tool cleanup SECONDS     atrest_store_cleanup on $ATREST_STORE
 *   s3_tool race SECS TAG OTHER OUT
 *                               for SECS seconds on $ATREST_STORE: put
 *                               TAG/o-N, rotate every other round, read the
 *                               newest of OTHER/ back; what it made in OUT
 *   s3_tool check OUT...        every object recorded reads back as
 *                               written; every key recorded is in the
 *                               keyring, no id twice
 * Credentials and the endpoint come from the environment, as for atrest.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "atrest/sys/backend.h"
#include "backend_suite.h"
#include "helpers.h"

/* ---- the contract suite */

struct suite_ctx {
	const char *base;
	char loc[600];
};

static atrest_backend *suite_open(void *ctx)
{
	struct suite_ctx *c = ctx;
	atrest_backend *b;

	if (atrest_backend_open(&b, c->loc) != 0)
		return NULL;
	if (b->prepare(b, 1) != 0) {
		b->free(b);
		return NULL;
	}
	return b;
}

static int suite_create(void *ctx)
{
	struct suite_ctx *c = ctx;
	uint8_t r[6];
	char *hex;

	th_fill(r, sizeof(r), (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20);
	hex = th_hex(r, sizeof(r));
	snprintf(c->loc, sizeof(c->loc), "%s/suite-%s", c->base, hex);
	free(hex);
	return 0;
}

struct keys {
	char **v;
	size_t n;
};

static int keep_key(const char *key, uint64_t size, int64_t mtime, void *p)
{
	struct keys *k = p;

	(void)size;
	(void)mtime;
	k->v = realloc(k->v, (k->n + 1) * sizeof(*k->v));
	k->v[k->n++] = strdup(key);
	return 0;
}

/* Everything under the location goes, the store's own keys too. */
static void suite_destroy(void *ctx)
{
	atrest_backend *b = suite_open(ctx);
	struct keys k = {NULL, 0};

	if (!b)
		return;
	b->list(b, "", keep_key, &k);
	b->list(b, ".atrest/", keep_key, &k);
	if (k.n)
		b->remove_many(b, (const char *const *)k.v, k.n);
	for (size_t i = 0; i < k.n; i++)
		free(k.v[i]);
	free(k.v);
	b->free(b);
}

/* ---- fast fills */

struct filler {
	atrest_backend *b;
	const char *prefix;
	long n;
	atomic_long next;
	atomic_int failed;
};

static void *fill_main(void *arg)
{
	struct filler *f = arg;
	char key[512];
	long i;

	while ((i = atomic_fetch_add(&f->next, 1)) < f->n) {
		atrest_backend_writer *w;
		snprintf(key, sizeof(key), "%s%05ld", f->prefix, i);
		if (f->b->open_write(f->b, &w, key, 0, NULL) != 0 ||
			w->write(w, key, strlen(key)) != 0 || w->commit(w) != 0) {
			fprintf(stderr, "fill %s: %s\n", key,
				atrest_error_last()->message);
			atomic_store(&f->failed, 1);
			return NULL;
		}
	}
	return NULL;
}

static int fill(const char *loc, const char *prefix, long n, int threads)
{
	struct filler f = {.prefix = prefix, .n = n};
	pthread_t th[64];
	struct suite_ctx c;

	snprintf(c.loc, sizeof(c.loc), "%s", loc);
	f.b = suite_open(&c);
	if (!f.b || threads < 1 || threads > 64)
		return 1;
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, fill_main, &f);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	f.b->free(f.b);
	return atomic_load(&f.failed);
}

static int count_one(const char *key, uint64_t size, int64_t mtime, void *p)
{
	(void)key;
	(void)size;
	(void)mtime;
	(*(long *)p)++;
	return 0;
}

static int count(const char *loc, const char *prefix)
{
	struct suite_ctx c;
	atrest_backend *b;
	long n = 0;
	int rc;

	snprintf(c.loc, sizeof(c.loc), "%s", loc);
	b = suite_open(&c);
	if (!b)
		return 1;
	rc = b->list(b, prefix, count_one, &n);
	b->free(b);
	if (rc != 0) {
		fprintf(stderr, "count: %s\n", atrest_error_last()->message);
		return 1;
	}
	printf("%ld\n", n);
	return 0;
}

static int cleanup(const char *seconds)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st;
	uint64_t n = 0;
	int rc;

	o.path = getenv("ATREST_STORE");
	rc = atrest_store_open(&st, &o);
	if (rc == 0) {
		rc = atrest_store_cleanup(&n, st, strtoull(seconds, NULL, 10));
		atrest_store_close(st);
	}
	if (rc != 0) {
		fprintf(stderr, "cleanup: %s\n", atrest_error_last()->message);
		return 1;
	}
	printf("%llu\n", (unsigned long long)n);
	return 0;
}

/* ---- two processes sharing one store */

/* Deterministic contents of object name, n bytes. */
static void contents(uint8_t *p, size_t n, const char *name)
{
	uint64_t seed = 1469598103934665603ull;

	for (const char *c = name; *c; c++)
		seed = (seed ^ (uint8_t)*c) * 1099511628211ull;
	th_fill(p, n, seed);
}

static size_t size_of(const char *name)
{
	size_t h = 0;

	for (const char *c = name; *c; c++)
		h = h * 31 + (uint8_t)*c;
	return h % 100000 + 1;
}

static int open_store(atrest_store **st)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;

	o.path = getenv("ATREST_STORE");
	o.create = 1;
	if (atrest_store_open(st, &o) == 0)
		return 0;
	fprintf(stderr, "open: %s\n", atrest_error_last()->message);
	return 1;
}

/* name reads back as written (1 when it does not). */
static int check_object(atrest_store *st, const char *name)
{
	size_t n = size_of(name), got = 0;
	uint8_t *want = malloc(n);
	void *data = NULL;
	int bad;

	contents(want, n, name);
	bad = atrest_get(&data, &got, st, name) != 0 || got != n || memcmp(data, want, n);
	if (bad)
		fprintf(stderr, "%s: %s\n", name,
			data ? "wrong contents" : atrest_error_last()->message);
	free(want);
	atrest_free(data);
	return bad;
}

struct newest {
	char name[256];
};

static int keep_last(const atrest_list_entry *e, void *p)
{
	snprintf(((struct newest *)p)->name, sizeof(((struct newest *)p)->name), "%s",
		e->name);
	return 0;
}

static int race_round(
	atrest_store *st, long i, const char *tag, const char *other, FILE *out)
{
	char name[256], prefix[256];
	size_t n;
	uint8_t *p;
	uint32_t id;
	struct newest last = {""};
	int rc;

	snprintf(name, sizeof(name), "%s/o-%06ld", tag, i);
	n = size_of(name);
	p = malloc(n);
	contents(p, n, name);
	rc = atrest_put(st, name, p, n, NULL);
	free(p);
	if (rc != 0)
		return fprintf(stderr, "put %s: %s\n", name,
			       atrest_error_last()->message),
		       1;
	fprintf(out, "obj %s\n", name);
	if (i % 4 == 0) {
		if (atrest_rotate(&id, st) != 0)
			return fprintf(stderr, "rotate: %s\n",
				       atrest_error_last()->message),
			       1;
		fprintf(out, "key %u\n", id);
	}
	snprintf(prefix, sizeof(prefix), "%s/", other);
	if (atrest_list(st, prefix, keep_last, &last) != 0)
		return fprintf(stderr, "list: %s\n", atrest_error_last()->message), 1;
	if (*last.name)
		fprintf(out, "saw %s\n", last.name);
	fflush(out);
	return *last.name ? check_object(st, last.name) : 0;
}

static int race(long secs, const char *tag, const char *other, const char *path)
{
	FILE *out = fopen(path, "w");
	time_t end = time(NULL) + secs;
	atrest_store *st;
	long i = 0;
	int bad = 0;

	if (!out || open_store(&st))
		return 1;
	while (!bad && time(NULL) < end)
		bad = race_round(st, i++, tag, other, out);
	atrest_store_close(st);
	fclose(out);
	printf("%s: %ld rounds%s\n", tag, i, bad ? ", FAILED" : "");
	return bad;
}

struct idset {
	uint32_t v[100000];
	size_t n;
};

static int keep_id(const atrest_key_info *k, void *p)
{
	struct idset *s = p;

	if (s->n < sizeof(s->v) / sizeof(s->v[0]))
		s->v[s->n++] = k->id;
	return 0;
}

static int has_id(const struct idset *s, uint32_t id)
{
	size_t c = 0;

	for (size_t i = 0; i < s->n; i++)
		c += s->v[i] == id;
	return (int)c;
}

static int check_file(atrest_store *st, const struct idset *ids, const char *path,
	long *objs, long *keys)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int bad = 0;

	if (!f)
		return 1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "obj ", 4)) {
			bad |= check_object(st, line + 4);
			(*objs)++;
		} else if (!strncmp(line, "key ", 4)) {
			uint32_t id = (uint32_t)strtoul(line + 4, NULL, 10);
			if (has_id(ids, id) != 1) {
				fprintf(stderr, "data key %u: %d times in the keyring\n",
					id, has_id(ids, id));
				bad = 1;
			}
			(*keys)++;
		}
	}
	fclose(f);
	return bad;
}

static int check(int n, char **paths)
{
	static struct idset ids;
	atrest_store *st;
	long objs = 0, keys = 0;
	int bad = 0;

	if (open_store(&st))
		return 1;
	if (atrest_keys_list(st, 0, keep_id, &ids) != 0) {
		fprintf(stderr, "keys: %s\n", atrest_error_last()->message);
		bad = 1;
	}
	for (size_t i = 0; i < ids.n; i++)
		if (has_id(&ids, ids.v[i]) != 1) {
			fprintf(stderr, "data key id %u is in the keyring twice\n",
				ids.v[i]);
			bad = 1;
		}
	for (int i = 0; i < n; i++)
		bad |= check_file(st, &ids, paths[i], &objs, &keys);
	atrest_store_close(st);
	printf("%ld objects and %ld rotated keys checked, %zu keys in the keyring%s\n",
		objs, keys, ids.n, bad ? ": FAILED" : "");
	return bad;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "suite")) {
		struct suite_ctx c = {.base = argv[2]};
		backend_factory f = {
			"s3 (real server)", suite_create, suite_open, suite_destroy, &c};
		return backend_suite_run(&f) ? 1 : 0;
	}
	if (argc == 6 && !strcmp(argv[1], "fill"))
		return fill(argv[2], argv[3], atol(argv[4]), atoi(argv[5]));
	if (argc == 4 && !strcmp(argv[1], "count"))
		return count(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "cleanup"))
		return cleanup(argv[2]);
	if (argc == 6 && !strcmp(argv[1], "race"))
		return race(atol(argv[2]), argv[3], argv[4], argv[5]);
	if (argc >= 3 && !strcmp(argv[1], "check"))
		return check(argc - 2, argv + 2);
	fprintf(stderr,
		"usage: s3_tool suite BASE | fill LOC PREFIX N THREADS | "
		"count LOC PREFIX | cleanup SECONDS | race SECS TAG OTHER OUT | "
		"check OUT...\n");
	return 2;
}
