/*
 * Snapshots of a store: listing, the newest under a prefix, removal, and gc.
 * gc and removal share one collection protocol (docs/ARCHITECTURE.md): a
 * marker of their own first, then the writers' leases, then every manifest;
 * what is referenced, named by a live lease, under a live writer's prefix
 * or younger than the grace age is kept; the marker is renewed as it goes
 * and a collection that lost it stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "snap_int.h"

/* ---- listing ---- */

typedef struct lctx {
	atrest_store *st;
	atrest_snapshot_list_cb cb;
	void *payload;
	/* latest */
	char *best;
	uint64_t best_seq;
} lctx;

static int list_one(const char *rel, uint64_t size, int64_t mtime, void *p)
{
	lctx *c = p;
	atrest__manifest_head h;
	atrest_snapshot_list_entry e;
	int rc;

	(void)size;
	(void)mtime;
	rc = atrest__snap_load_head(&h, c->st, rel + 2);
	if (rc == ATREST_ENOTFOUND) /* removed meanwhile */
		return 0;
	GUARD(rc);
	e.name = h.name;
	e.seq = h.seq;
	e.created_ns = h.created;
	e.parent = h.parent;
	return c->cb(&e, c->payload);
}

int atrest_snapshot_list(
	atrest_store *st, const char *prefix, atrest_snapshot_list_cb cb, void *payload)
{
	char sub[SNAP_NAME_MAX];
	lctx c = {st, cb, payload, NULL, 0};

	prefix = prefix ? prefix : "";
	GUARD(atrest__name_check_prefix(prefix));
	ENSURE(strlen(prefix) <= ATREST__SNAP_NAME_MAX, ATREST_EINVAL, "prefix too long");
	snprintf(sub, sizeof(sub), "m/%s", prefix);
	return atrest__snap_list(st, sub, list_one, &c);
}

static int pick_latest(const atrest_snapshot_list_entry *e, void *p)
{
	lctx *c = p;
	char *n;

	if (c->best && e->seq < c->best_seq)
		return 0;
	n = strdup(e->name);
	ENSURE(n, ATREST_ERROR, "out of memory");
	free(c->best);
	c->best = n;
	c->best_seq = e->seq;
	return 0;
}

int atrest_snapshot_latest(char **name, uint64_t *seq, atrest_store *st,
	const char *prefix, uint64_t min_seq)
{
	lctx c = {0};
	int rc;

	*name = NULL;
	*seq = 0;
	rc = atrest_snapshot_list(st, prefix, pick_latest, &c);
	if (rc == 0 && !c.best)
		rc = atrest__error(
			ATREST_ENOTFOUND, "no snapshot under '%s'", prefix ? prefix : "");
	if (rc == 0 && c.best_seq < min_seq)
		rc = atrest__error(ATREST_EINTEGRITY,
			"the newest snapshot under '%s' is '%s' with sequence %llu, older "
			"than the %llu required (the store was rolled back, or newer "
			"snapshots were removed)",
			prefix ? prefix : "", c.best, (unsigned long long)c.best_seq,
			(unsigned long long)min_seq);
	if (rc < 0) {
		free(c.best);
		return rc;
	}
	*name = c.best;
	*seq = c.best_seq;
	return 0;
}

/* ---- a set of object references ---- */

typedef struct refset {
	atrest__snap_ref *v;
	uint8_t *used;
	size_t cap, n;
} refset;

static size_t ref_hash(const atrest__snap_ref *r, size_t cap)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < ATREST__SNAP_ID_LEN; i++)
		h = (h ^ r->writer[i]) * 1099511628211ull;
	h = (h ^ r->index) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static int refset_has(const refset *s, const atrest__snap_ref *r)
{
	if (!s->cap)
		return 0;
	for (size_t i = ref_hash(r, s->cap);; i = (i + 1) & (s->cap - 1)) {
		if (!s->used[i])
			return 0;
		if (atrest__snap_ref_cmp(&s->v[i], r) == 0)
			return 1;
	}
}

static int refset_put(refset *s, const atrest__snap_ref *r);

static int refset_grow(refset *s)
{
	refset n = {0};

	n.cap = s->cap ? 2 * s->cap : 1024;
	n.v = malloc(n.cap * sizeof(*n.v));
	n.used = calloc(n.cap, 1);
	if (!n.v || !n.used) {
		free(n.v);
		free(n.used);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->used[i])
			(void)refset_put(&n, &s->v[i]);
	free(s->v);
	free(s->used);
	*s = n;
	return 0;
}

static int refset_put(refset *s, const atrest__snap_ref *r)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap)
		GUARD(refset_grow(s));
	for (i = ref_hash(r, s->cap); s->used[i]; i = (i + 1) & (s->cap - 1))
		if (atrest__snap_ref_cmp(&s->v[i], r) == 0)
			return 0;
	s->used[i] = 1;
	s->v[i] = *r;
	s->n++;
	return 0;
}

static void refset_free(refset *s)
{
	free(s->v);
	free(s->used);
}

/* ---- the collection ---- */

typedef struct gc {
	atrest_store *st;
	uint32_t ttl;
	int64_t grace; /* < 0: no age limit (the objects of a removed snapshot) */
	int dry_run;
	uint8_t id[ATREST__SNAP_ID_LEN];
	char marker[SNAP_NAME_MAX];
	int marked;
	int64_t t0; /* the store's clock when the marker was made */
	double renewed;
	refset keep;
	uint8_t (*live)[ATREST__SNAP_ID_LEN]; /* writers with a live lease */
	size_t nlive;
	atrest__snap_keys stale; /* leases past their ttl */
	atrest_snap_stats out;
} gc;

static int marker_put(gc *g, unsigned flags, const char *etag)
{
	uint8_t enc[ATREST__SNAP_MARKER_LEN];

	atrest__marker_encode(enc, g->ttl, atrest__snap_now_ns());
	return atrest__snap_put_small(g->st, g->marker, enc, sizeof(enc), flags, etag);
}

static int marker_start(gc *g)
{
	GUARD(atrest__rand(g->id, sizeof(g->id)));
	atrest__snap_gname(g->marker, g->id);
	GUARD(marker_put(g, ATREST_BACKEND_IF_ABSENT, NULL));
	g->marked = 1;
	g->renewed = atrest__snap_clock();
	return atrest__snap_version(NULL, &g->t0, g->st, g->marker);
}

/*
 * Renew the marker every ttl/4 (before each removal among others): writers
 * that wait for this gc see it alive; one that lost its marker (judged
 * dead by another) stops before removing anything more.
 */
static int gc_tick(gc *g)
{
	char etag[ATREST_BACKEND_ETAG_MAX];
	double idle = atrest__snap_clock() - g->renewed;
	int rc;

	if (idle < g->ttl / 4.0)
		return 0;
	/* Paused (stopped, starved) for long: writers may be about to stop
	 * waiting for this gc, whose view of the store is old: stop. */
	ENSURE(idle <= g->ttl / 2.0, ATREST_ECONFLICT,
		"gc stopped: it could not renew its marker for %.0f s (more than half "
		"its ttl of %u s); run it again",
		idle, g->ttl);
	rc = atrest__snap_version(etag, NULL, g->st, g->marker);
	if (rc == 0)
		rc = marker_put(g, ATREST_BACKEND_IF_MATCH, etag);
	if (rc == ATREST_ENOTFOUND || rc == ATREST_ECONFLICT)
		return atrest__error(ATREST_ECONFLICT,
			"gc stopped: its marker was removed (it was judged dead after "
			"%u s without renewal)",
			g->ttl);
	GUARD(rc);
	g->renewed = atrest__snap_clock();
	return 0;
}

static int add_live(gc *g, const char *hex)
{
	uint8_t(*v)[ATREST__SNAP_ID_LEN] = realloc(g->live, (g->nlive + 1) * sizeof(*v));

	ENSURE(v, ATREST_ERROR, "out of memory");
	g->live = v;
	if (atrest__snap_parse_id(v[g->nlive], hex) == 0)
		g->nlive++;
	return 0;
}

static int is_live(const gc *g, const uint8_t *writer)
{
	for (size_t i = 0; i < g->nlive; i++)
		if (memcmp(g->live[i], writer, ATREST__SNAP_ID_LEN) == 0)
			return 1;
	return 0;
}

/* A lease: its references are kept (this run, even when stale); a live
 * one keeps its writer's own objects too. */
static int read_lease(gc *g, const atrest__snap_key *k)
{
	char name[SNAP_NAME_MAX];
	atrest__snap_lease l;
	uint8_t *buf;
	size_t len;
	int64_t mtime;
	int rc;

	snprintf(name, sizeof(name), SNAP_ROOT "%s", k->rel);
	rc = atrest__snap_get_small(
		&buf, &len, NULL, &mtime, g->st, name, SNAP_SMALL_MAX);
	if (rc == ATREST_ENOTFOUND) /* its writer finished: its manifest is listed next */
		return 0;
	if (rc == 0) {
		rc = atrest__lease_decode(&l, buf, len);
		free(buf);
	}
	if (rc < 0) {
		atrest__error_prefix(
			"snapshot writer's lease %s (remove it by hand if no "
			"snapshot is being written)",
			name);
		return rc;
	}
	for (size_t i = 0; i < l.nref && rc == 0; i++)
		rc = refset_put(&g->keep, &l.refs[i]);
	free(l.refs);
	GUARD(rc);
	if (g->t0 - mtime > (int64_t)l.ttl)
		return atrest__snap_keys_add(&g->stale, k->rel, 0, mtime);
	return add_live(g, k->rel + 2);
}

static int read_manifest(gc *g, const atrest__snap_key *k)
{
	atrest__manifest *m;
	int rc = atrest__snap_load(&m, NULL, g->st, k->rel + 2);

	if (rc == ATREST_ENOTFOUND) /* removed meanwhile */
		return 0;
	if (rc < 0) {
		atrest__error_prefix("gc cannot tell which objects it references");
		return rc;
	}
	for (size_t i = 0; i < m->nobj && rc == 0; i++)
		rc = refset_put(&g->keep, &m->objs[i].ref);
	atrest__manifest_free(m);
	return rc;
}

/* Leases first, then manifests: a writer that finished between the two
 * listings published its manifest before dropping its lease. */
static int mark(gc *g)
{
	atrest__snap_keys k;
	int rc;

	GUARD(atrest__snap_keys_of(&k, g->st, "l/"));
	rc = 0;
	for (size_t i = 0; i < k.n && rc == 0; i++)
		rc = read_lease(g, &k.v[i]);
	atrest__snap_keys_free(&k);
	GUARD(rc);
	GUARD(gc_tick(g));
	GUARD(atrest__snap_keys_of(&k, g->st, "m/"));
	rc = 0;
	for (size_t i = 0; i < k.n && rc == 0; i++) {
		rc = read_manifest(g, &k.v[i]);
		if (rc == 0)
			rc = gc_tick(g);
	}
	atrest__snap_keys_free(&k);
	return rc;
}

static int sweep_one(gc *g, const atrest__snap_ref *r, uint64_t size)
{
	char name[SNAP_NAME_MAX];
	int rc;

	if (refset_has(&g->keep, r) || is_live(g, r->writer)) {
		g->out.kept++;
		return 0;
	}
	GUARD(gc_tick(g));
	atrest__snap_dname(name, r);
	rc = g->dry_run ? 0 : atrest__snap_remove(g->st, name);
	if (rc == ATREST_ENOTFOUND)
		return 0;
	GUARD(rc);
	g->out.objects++;
	g->out.stored_bytes += size;
	return 0;
}

/* Every object under d/ older than the grace age. */
static int sweep_all(gc *g)
{
	atrest__snap_ref r;
	atrest__snap_keys k;
	int rc = 0;

	GUARD(atrest__snap_keys_of(&k, g->st, "d/"));
	for (size_t i = 0; i < k.n && rc == 0; i++) {
		if (atrest__snap_parse_dref(&r, k.v[i].rel + 2) < 0)
			continue; /* not one of ours: left alone */
		if (g->t0 - k.v[i].mtime < g->grace)
			g->out.kept++;
		else
			rc = sweep_one(g, &r, k.v[i].size);
	}
	atrest__snap_keys_free(&k);
	return rc;
}

static int remove_stale(gc *g)
{
	char name[SNAP_NAME_MAX];

	for (size_t i = 0; i < g->stale.n && !g->dry_run; i++) {
		snprintf(name, sizeof(name), SNAP_ROOT "%s", g->stale.v[i].rel);
		if (atrest__snap_remove(g->st, name) == 0)
			g->out.leases_removed++;
	}
	return 0;
}

/* Markers of collections that died (not renewed for twice their ttl). */
static void remove_dead_markers(gc *g)
{
	char name[SNAP_NAME_MAX];
	uint32_t ttl;
	int64_t created;
	uint8_t *buf;
	size_t len;
	atrest__snap_keys k;

	if (g->dry_run || atrest__snap_keys_of(&k, g->st, "g/") < 0)
		return;
	for (size_t i = 0; i < k.n; i++) {
		snprintf(name, sizeof(name), SNAP_ROOT "%s", k.v[i].rel);
		if (!strcmp(name, g->marker) ||
			atrest__snap_get_small(&buf, &len, NULL, NULL, g->st, name, 64) <
				0)
			continue;
		if (atrest__marker_decode(&ttl, &created, buf, len) == 0 &&
			g->t0 - k.v[i].mtime > 2 * (int64_t)ttl)
			(void)atrest__snap_remove(g->st, name);
		free(buf);
	}
	atrest__snap_keys_free(&k);
}

static void gc_end(gc *g)
{
	atrest__saved_error e;

	atrest__error_save(&e);
	if (g->marked)
		(void)atrest__snap_remove(g->st, g->marker);
	atrest__error_restore(&e);
	refset_free(&g->keep);
	atrest__snap_keys_free(&g->stale);
	free(g->live);
}

/* Collect: every unreferenced object (scope NULL) or those of scope. */
static int collect(gc *g, const atrest__manifest *scope)
{
	int rc;

	GUARD(marker_start(g));
	GUARD(mark(g));
	if (scope) {
		rc = 0;
		for (size_t i = 0; i < scope->nobj && rc == 0; i++)
			rc = sweep_one(g, &scope->objs[i].ref, 0);
		GUARD(rc);
	} else {
		GUARD(sweep_all(g));
	}
	GUARD(remove_stale(g));
	/*
	 * What dead writers left in the backend (unfinished S3 uploads, temp
	 * files): at least a day old, so that a long upload still in flight
	 * is never cut short.
	 */
	if (!g->dry_run)
		GUARD(atrest_store_cleanup(&g->out.cleaned, g->st,
			g->grace > SNAP_GC_UPLOAD_AGE ? (uint64_t)g->grace
						      : SNAP_GC_UPLOAD_AGE));
	remove_dead_markers(g);
	return 0;
}

static int snapshot_gc(
	atrest_snap_stats *out, atrest_store *st, const atrest_gc_options *opts)
{
	gc g;
	int rc;

	if (opts)
		GUARD(atrest__check_version(
			opts->version, ATREST_GC_OPTIONS_VERSION, "atrest_gc_options"));
	memset(&g, 0, sizeof(g));
	g.st = st;
	g.ttl = opts && opts->ttl ? opts->ttl : SNAP_GC_TTL;
	g.grace = opts && opts->grace >= 0 ? opts->grace : SNAP_GC_GRACE;
	g.dry_run = opts ? opts->dry_run : 0;
	rc = collect(&g, NULL);
	if (out)
		*out = g.out;
	gc_end(&g);
	return rc;
}

static int snapshot_remove(
	atrest_snap_stats *out, atrest__op *op, atrest_store *st, const char *name)
{
	char mname[SNAP_NAME_MAX];
	atrest__manifest *m = NULL;
	gc g;
	int rc;

	GUARD(atrest__snap_mname(mname, name));
	rc = atrest__snap_load(&m, NULL, st, name);
	if (rc < 0 && rc != ATREST_EINTEGRITY)
		return rc;
	for (size_t i = 0; m && i < m->nent; i++)
		if (m->ents[i].type == ATREST__SNAP_FILE) {
			op->count++;
			op->bytes += m->ents[i].size;
		}
	/* A damaged manifest is removed all the same; its objects go to gc. */
	rc = atrest__snap_remove(st, mname);
	if (rc == ATREST_ENOTFOUND)
		rc = atrest__error(rc, "no snapshot '%s'", name);
	if (rc < 0 || !m) {
		atrest__manifest_free(m);
		return rc;
	}
	memset(&g, 0, sizeof(g));
	g.st = st;
	g.ttl = SNAP_GC_TTL;
	rc = collect(&g, m);
	if (out)
		*out = g.out;
	gc_end(&g);
	atrest__manifest_free(m);
	return rc;
}

/* Removed: count and bytes are the snapshot's files; detail the objects. */
int atrest_snapshot_remove(atrest_snap_stats *out, atrest_store *st, const char *name)
{
	atrest_snap_stats so;
	char note[96];
	atrest__op op;
	int rc;

	memset(&so, 0, sizeof(so));
	atrest__op_begin(&op, st, ATREST_OP_SNAPSHOT_DELETE, name);
	rc = snapshot_remove(&so, &op, st, name);
	snprintf(note, sizeof(note), "%llu objects removed, %llu kept",
		(unsigned long long)so.objects, (unsigned long long)so.kept);
	op.note = note;
	if (out)
		*out = so;
	return atrest__op_end(&op, rc);
}

/* Collected: count and bytes are the objects removed and their bytes. */
int atrest_snapshot_gc(
	atrest_snap_stats *out, atrest_store *st, const atrest_gc_options *opts)
{
	atrest_snap_stats so;
	atrest__op op;
	int rc;

	memset(&so, 0, sizeof(so));
	atrest__op_begin(&op, st, ATREST_OP_GC, NULL);
	rc = snapshot_gc(&so, st, opts);
	op.count = so.objects;
	op.bytes = so.stored_bytes;
	if (opts && opts->dry_run)
		op.note = "dry run: counted, nothing removed";
	if (out)
		*out = so;
	return atrest__op_end(&op, rc);
}
