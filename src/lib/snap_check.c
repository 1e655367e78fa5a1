/*
 * Verification of a whole snapshot: every object it pins is opened (its
 * version checked), read to the end (every segment authenticated) and each
 * file's bytes checked against its keyed hash, objects in parallel; then
 * the snapshot's own prefix is listed for objects added to its set.
 */
#include <stdlib.h>
#include <string.h>

#include "snap_int.h"

#define VERIFY_BUF (1u << 20)

static int by_offset(const void *a, const void *b, void *ctx)
{
	const atrest__snap_ent *e = ctx;
	uint64_t x = e[*(const size_t *)a].off, y = e[*(const size_t *)b].off;

	return x < y ? -1 : x > y;
}

int atrest__snapshot_plan(atrest_snapshot *s)
{
	const atrest__manifest *m = s->m;
	size_t *fill;

	if (s->order)
		return 0;
	s->start = calloc(m->nobj + 1, sizeof(*s->start));
	fill = calloc(m->nobj + 1, sizeof(*fill));
	s->order = malloc((m->nent + 1) * sizeof(*s->order));
	if (!s->start || !fill || !s->order) {
		free(fill);
		free(s->order);
		s->order = NULL;
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	for (size_t i = 0; i < m->nent; i++)
		if (m->ents[i].type == ATREST__SNAP_FILE && m->ents[i].size)
			s->start[m->ents[i].obj + 1]++;
	for (size_t k = 0; k < m->nobj; k++)
		s->start[k + 1] += s->start[k];
	for (size_t i = 0; i < m->nent; i++)
		if (m->ents[i].type == ATREST__SNAP_FILE && m->ents[i].size) {
			uint32_t k = m->ents[i].obj;
			s->order[s->start[k] + fill[k]++] = i;
		}
	free(fill);
	for (size_t k = 0; k < m->nobj; k++)
		qsort_r(s->order + s->start[k], s->start[k + 1] - s->start[k],
			sizeof(size_t), by_offset, (void *)m->ents);
	return 0;
}

typedef struct vctx {
	atrest_snapshot *s;
	atrest__snap_prog prog;
	pthread_mutex_t mu;
	atrest__saved_error first; /* the first failure */
	atrest_snap_stats st;
} vctx;

/* Report this thread's last error about path and go on. */
static void failed(vctx *v, const char *path)
{
	atrest__saved_error e;

	atrest__error_save(&e);
	pthread_mutex_lock(&v->mu);
	if (!v->first.code)
		v->first = e;
	pthread_mutex_unlock(&v->mu);
	atrest__snap_prog_note(&v->prog, path, "%s", e.message);
}

/* Object k's files, in offset order, then the rest of its bytes. */
static int check_files(
	vctx *v, uint32_t k, atrest_reader *r, atrest__mac *mac, uint8_t *buf)
{
	const atrest__manifest *m = v->s->m;
	uint64_t pos = 0;

	for (size_t j = v->s->start[k]; j < v->s->start[k + 1]; j++) {
		const atrest__snap_ent *e = &m->ents[v->s->order[j]];
		if (e->off < pos)
			GUARD(atrest_reader_seek(r, e->off));
		else if (e->off > pos)
			GUARD(atrest__snap_copy(
				r, e->off - pos, NULL, -1, buf, VERIFY_BUF, e->path));
		GUARD(atrest__mac_reset(mac));
		GUARD(atrest__snap_copy(r, e->size, mac, -1, buf, VERIFY_BUF, e->path));
		if (atrest__snap_check_hash(mac, e) < 0)
			failed(v, e->path);
		pos = e->off + e->size;
		atrest__snap_prog_add(&v->prog, 1, e->size);
	}
	if (pos < m->objs[k].size)
		GUARD(atrest__snap_copy(r, m->objs[k].size - pos, NULL, -1, buf,
			VERIFY_BUF, m->ents[v->s->order[v->s->start[k]]].path));
	return 0;
}

static int verify_obj(void *ctx, size_t k, unsigned slot)
{
	vctx *v = ctx;
	const atrest__manifest *m = v->s->m;
	const char *file = m->ents[v->s->order[v->s->start[k]]].path;
	uint8_t *buf = malloc(VERIFY_BUF);
	atrest_reader *r = NULL;
	atrest__mac *mac = NULL;
	int rc;

	(void)slot;
	ENSURE(buf, ATREST_ERROR, "out of memory");
	rc = atrest__snapshot_obj_open(&r, v->s, (uint32_t)k, file);
	if (rc == 0)
		rc = atrest__snap_mac(&mac, &v->s->hk, v->s->st, m->objs[k].dek);
	if (rc == 0)
		rc = check_files(v, (uint32_t)k, r, mac, buf);
	if (rc < 0)
		failed(v, file);
	pthread_mutex_lock(&v->mu);
	v->st.objects++;
	v->st.stored_bytes += m->objs[k].size;
	pthread_mutex_unlock(&v->mu);
	atrest_reader_close(r);
	atrest__mac_free(mac);
	free(buf);
	return rc == ATREST_ENOTFOUND ? rc : 0; /* the snapshot is gone: stop */
}

static void extra_found(const char *name, void *payload)
{
	vctx *v = payload;

	atrest__error(ATREST_EINTEGRITY,
		"object %s is not part of snapshot '%s' (added to its set, or renamed)",
		name, v->s->m->name);
	failed(v, name);
}

static void count_entries(atrest_snap_stats *st, const atrest__manifest *m)
{
	for (size_t i = 0; i < m->nent; i++) {
		const atrest__snap_ent *e = &m->ents[i];
		st->files += e->type == ATREST__SNAP_FILE;
		st->bytes += e->type == ATREST__SNAP_FILE ? e->size : 0;
		st->dirs += e->type == ATREST__SNAP_DIR;
		st->symlinks += e->type == ATREST__SNAP_SYMLINK;
		st->hardlinks += e->type == ATREST__SNAP_HARDLINK;
		st->specials += e->type >= ATREST__SNAP_FIFO;
	}
}

static int snapshot_verify(atrest_snap_stats *out, atrest_snapshot *s,
	atrest_snap_progress_cb cb, void *payload)
{
	vctx v;
	size_t extra = 0;
	int rc;

	memset(&v, 0, sizeof(v));
	v.s = s;
	pthread_mutex_init(&v.mu, NULL);
	atrest__snap_prog_init(&v.prog, cb, payload);
	count_entries(&v.st, s->m);
	v.prog.p.files_total = v.st.files;
	v.prog.p.bytes_total = v.st.bytes;
	rc = atrest__snapshot_plan(s);
	if (rc == 0)
		rc = atrest__pool_run(
			atrest__store_pool(s->st), verify_obj, &v, s->m->nobj);
	if (rc == 0)
		rc = atrest__snapshot_extra(s, &extra, extra_found, &v);
	atrest__snap_prog_end(&v.prog);
	pthread_mutex_destroy(&v.mu);
	if (out)
		*out = v.st;
	GUARD(rc);
	return atrest__error_restore(&v.first);
}

int atrest_snapshot_verify(atrest_snap_stats *out, atrest_snapshot *s,
	atrest_snap_progress_cb cb, void *payload)
{
	atrest_snap_stats st;
	atrest__op op;
	int rc;

	memset(&st, 0, sizeof(st));
	atrest__op_begin(&op, s->st, ATREST_OP_SNAPSHOT_VERIFY, s->m->name);
	rc = snapshot_verify(&st, s, cb, payload);
	atrest__snap_op_stats(&op, &st);
	if (out)
		*out = st;
	return atrest__op_end(&op, rc);
}
