/*
 * Object I/O of a store: a writer that seals stages of segments in parallel
 * while writing the previous stage, and a reader that opens segments in
 * parallel and releases only authenticated plaintext; stat, list, delete.
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "names.h"
#include "pool.h"
#include "secret.h"
#include "store_int.h"
#include "upload_int.h"

/* Largest writer stage (plaintext sealed while the one before is written). */
#define STAGE_MAX (1u << 20)
/* Largest bulk read (whole segments opened in parallel into the output). */
#define CHUNK_MAX (4u << 20)
/* Smallest and largest piece of work handed to one thread. */
#define ITEM_MIN (16u << 10)
#define ITEM_MAX (256u << 10)
/* Ciphertext buffers: the smallest made, the largest kept by the store. */
#define CTBUF_MIN (STAGE_MAX + (64u << 10))
#define CTBUF_KEEP (CHUNK_MAX + (64u << 10))
#define SPARES (sizeof(((atrest_store *)0)->spare) / sizeof(void *))

/*
 * A ciphertext buffer.  The store keeps a few between objects: faulting in
 * a fresh megabyte costs about as much as opening it.
 */
typedef struct ctbuf {
	size_t cap;
	uint8_t data[];
} ctbuf;

/* Per-thread copies of an object's keyed state, made on first use. */
typedef struct crew {
	atrest__obj *slot[ATREST__POOL_MAX]; /* 0: the object's own */
	uint8_t *scratch[ATREST__POOL_MAX];  /* a segment opened aside */
	ctbuf *ctb[ATREST__POOL_MAX];        /* ciphertext being opened */
	atrest_store *st;                    /* keeps spare ctb buffers */
} crew;

/* One writer stage: segments first.. of pt, sealed into ct. */
typedef struct seal_task {
	crew *crew;
	atrest__pool *pool;
	const uint8_t *pt;
	uint8_t *ct;
	size_t len, nseg, run, ct_len;
	uint64_t first;
	int last;     /* the stage ends the object */
	int borrowed; /* pt is the caller's buffer */
	int state;    /* IDLE, QUEUED (being sealed) or SEALED (not written) */
	atrest__job job;
} seal_task;

enum { IDLE, QUEUED, SEALED };

/* A first stage up to this size is joined to the header in one write. */
#define HEAD_JOIN_MAX (256 * 1024)

struct atrest_writer {
	atrest_store *st;
	atrest_backend_writer *bw;
	atrest__obj obj;
	crew crew;
	/* Double buffers: stage cur fills or seals while cur ^ 1 is written. */
	uint8_t *pt[2];
	size_t pt_cap[2];
	ctbuf *ct[2];
	size_t fill; /* plaintext bytes in pt[cur] */
	int cur;
	uint64_t index; /* segments staged so far */
	seal_task task[2];
	int failed;
	uint8_t *head; /* header and sealed metadata, sent with the first stage */
	size_t head_len;
	atrest__op op; /* its event, sent before commit (obs.h) */
	uint8_t form;  /* of its header: 0 for ATREST__FORM_OBJECT */
	int quiet;     /* commits without an event of its own (upload records) */
};

/* The parts of a multipart object being read (upload.c writes them). */
typedef struct mp_read {
	atrest__mpu m;
	atrest_reader *sub; /* the part being read, or NULL */
	uint32_t cur;       /* its index in m.parts */
	int tail_checked;   /* empty parts at the end were opened */
} mp_read;

struct atrest_reader {
	atrest_store *st;
	atrest_backend_reader *br;
	atrest__obj obj;
	crew crew;
	int plain_ok;  /* a non-atrest file may be passed through */
	int plain;     /* pass-through of a non-atrest file */
	uint64_t size; /* plaintext bytes */
	uint64_t pos;
	uint8_t *ct, *pt; /* one segment, for reads not covering whole ones */
	uint64_t cached;  /* segment held in pt, or UINT64_MAX */
	size_t cached_len;
	uint8_t *meta; /* authenticated encoded metadata */
	size_t meta_len;
	uint8_t head[ATREST__HDR_READ];
	size_t head_len;
	atrest__op op; /* its event, sent at close (obs.h) */
	mp_read *mp;   /* a multipart object: reads go to its parts */
};

static int mp_load(atrest_reader *r);
static int mp_read_into(atrest_reader *r, uint8_t *p, size_t len, size_t *got);

/* The store's pool, started on first need; NULL when threads is 1. */
atrest__pool *atrest__store_pool(atrest_store *st)
{
	atrest__pool *p = __atomic_load_n(&st->pool, __ATOMIC_ACQUIRE);

	if (p || st->threads < 2)
		return p;
	pthread_mutex_lock(&st->pool_mu);
	p = st->pool;
	if (!p && atrest__pool_new(&p, st->threads) == 0)
		__atomic_store_n(&st->pool, p, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&st->pool_mu);
	return p; /* NULL when no thread could start: work goes on here */
}

/* Make *buf hold at least need bytes; its old content is dropped. */
static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (*cap >= need)
		return 0;
	if (*buf)
		atrest__wipe(*buf, *cap);
	free(*buf);
	*cap = 0;
	*buf = malloc(need);
	ENSURE(*buf, ATREST_ERROR, "out of memory");
	*cap = need;
	return 0;
}

static void drop(uint8_t **buf, size_t *cap)
{
	if (*buf)
		atrest__wipe(*buf, *cap);
	free(*buf);
	*buf = NULL;
	*cap = 0;
}

static void ctbuf_put(atrest_store *st, ctbuf *b)
{
	if (b && b->cap <= CTBUF_KEEP) {
		for (size_t i = 0; i < SPARES; i++) {
			void *none = NULL;
			if (__atomic_compare_exchange_n(&st->spare[i], &none, b, 0,
				    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
				return;
		}
	}
	free(b);
}

/* Make *b hold at least need bytes (its content is dropped). */
static int ctbuf_get(ctbuf **b, atrest_store *st, size_t need)
{
	size_t cap = need > CTBUF_MIN ? need : CTBUF_MIN;

	if (*b && (*b)->cap >= need)
		return 0;
	ctbuf_put(st, *b);
	*b = NULL;
	for (size_t i = 0; i < SPARES && !*b; i++) {
		ctbuf *s = __atomic_exchange_n(&st->spare[i], NULL, __ATOMIC_ACQ_REL);
		if (s && s->cap >= need)
			*b = s;
		else
			free(s);
	}
	if (!*b && (*b = malloc(sizeof(ctbuf) + cap)) != NULL)
		(*b)->cap = cap;
	ENSURE(*b, ATREST_ERROR, "out of memory");
	return 0;
}

static int crew_obj(atrest__obj **out, crew *c, unsigned slot)
{
	return atrest__obj_for_slot(out, c->slot, slot);
}

static void crew_free(crew *c, size_t scratch_len)
{
	for (unsigned s = 0; s < ATREST__POOL_MAX; s++) {
		if (s > 0 && c->slot[s]) {
			atrest__obj_cleanup(c->slot[s]);
			free(c->slot[s]);
		}
		if (c->scratch[s])
			atrest__wipe(c->scratch[s], scratch_len);
		free(c->scratch[s]);
		ctbuf_put(c->st, c->ctb[s]);
		c->slot[s] = NULL;
		c->scratch[s] = NULL;
		c->ctb[s] = NULL;
	}
}

/* Segments per item: at least ITEM_MIN bytes, at most n / parts segments. */
static size_t item_run(size_t nseg, uint32_t seg, size_t parts)
{
	size_t run = (nseg + parts - 1) / parts, min = (ITEM_MIN + seg - 1) / seg;

	return run > min ? run : min;
}

static int header_for(atrest__hdr *h, atrest_store *st, const char *name, size_t meta_len,
	uint8_t *dek, uint8_t form)
{
	int cipher;

	memset(h, 0, sizeof(*h));
	GUARD(atrest__store_active_dek(st, &h->dek_id, dek, &cipher, &h->segment_size));
	h->form = form ? form : ATREST__FORM_OBJECT;
	h->cipher = (uint8_t)cipher;
	h->meta_len = (uint32_t)atrest__cipher_ctlen(cipher, meta_len);
	memcpy(h->store_id, st->store_id, ATREST__STORE_ID_LEN);
	strcpy(h->tenant, st->tenant);
	strcpy(h->name, name);
	return atrest__rand(h->salt, ATREST__SALT_LEN);
}

/*
 * Build the header and sealed metadata, and open the backend's writer
 * (flags: a condition of the put, with its etag).
 */
static int writer_start(atrest_writer *w, const char *name, const atrest_meta *m,
	unsigned int flags, const char *etag)
{
	char key[ATREST__STORE_KEY_MAX];
	uint8_t hb[ATREST__HDR_MAX], *meta = NULL;
	uint8_t dek[ATREST__DEK_LEN];
	size_t meta_len;
	atrest__hdr h;
	int rc;

	GUARD(atrest__meta_encode(&meta, &meta_len, m));
	GUARD_OUT(header_for(&h, w->st, name, meta_len, dek, w->form));
	GUARD_OUT(atrest__hdr_encode(hb, sizeof(hb), &h));
	GUARD_OUT(atrest__obj_init(&w->obj, &h, hb, dek, ATREST__DEK_LEN, 0));
	w->crew.slot[0] = &w->obj;
	w->crew.st = w->st;
	w->head_len = (size_t)h.len + h.meta_len;
	w->head = malloc(w->head_len);
	ENSURE_OUT(w->head, ATREST_ERROR, "out of memory");
	memcpy(w->head, hb, h.len);
	GUARD_OUT(atrest__meta_seal(&w->obj, w->head + h.len, meta, meta_len));
	GUARD_OUT(atrest__store_key(key, sizeof(key), w->st, name));
	GUARD_OUT(atrest__b_open_write(w->st->b, &w->bw, key, flags, etag));
out:
	atrest__wipe(dek, sizeof(dek));
	atrest__wipe(meta, meta_len);
	free(meta);
	return rc;
}

/* Wait until a queued stage is sealed (it is then SEALED, or IDLE on error). */
static int settle(seal_task *t)
{
	int rc;

	if (t->state != QUEUED)
		return 0;
	t->state = IDLE;
	rc = atrest__pool_wait(t->pool, &t->job);
	if (rc == 0)
		t->state = SEALED;
	return rc;
}

/* No thread may still touch the writer's buffers when they are freed. */
static void writer_free(atrest_writer *w)
{
	for (int b = 0; b < 2; b++) {
		(void)settle(&w->task[b]);
		drop(&w->pt[b], &w->pt_cap[b]);
		ctbuf_put(w->st, w->ct[b]);
	}
	crew_free(&w->crew, 0);
	atrest__obj_cleanup(&w->obj);
	free(w->head);
	free(w);
}

/* A caller's name, or one of the library's own objects (.atrest/snap/...). */
static int name_check(const char *name, int internal)
{
	return internal ? atrest__internal_name_check(name) : atrest_name_check(name);
}

static int writer_open_as(atrest_writer **out, atrest_store *st, const char *name,
	const atrest_meta *meta, unsigned int flags, const char *etag, int internal,
	uint8_t form, int quiet)
{
	atrest_writer *w;
	int rc;

	*out = NULL;
	GUARD(name_check(name, internal));
	w = calloc(1, sizeof(*w));
	ENSURE(w, ATREST_ERROR, "out of memory");
	w->st = st;
	w->form = form;
	w->quiet = quiet;
	rc = writer_start(w, name, meta, flags, etag);
	if (rc < 0) {
		atrest__bw_abort(w->bw);
		writer_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int writer_open(atrest_writer **out, atrest_store *st, const char *name,
	const atrest_meta *meta, unsigned int flags, const char *etag, int internal)
{
	return writer_open_as(out, st, name, meta, flags, etag, internal, 0, 0);
}

int atrest__writer_open_internal(atrest_writer **out, atrest_store *st, const char *name,
	unsigned int flags, const char *etag)
{
	return writer_open(out, st, name, NULL, flags, etag, 1);
}

int atrest__writer_open_upload(atrest_writer **out, atrest_store *st, const char *name,
	const atrest_meta *meta, unsigned int flags, const char *etag, unsigned int how)
{
	return writer_open_as(out, st, name, meta, flags, etag,
		!(how & ATREST__W_MULTIPART),
		how & ATREST__W_MULTIPART ? ATREST__FORM_MULTIPART : 0,
		(how & ATREST__W_QUIET) != 0);
}

void atrest__writer_set_op(atrest_writer *w, atrest__op *op)
{
	atrest__op_suspend(op, &w->op);
}

void atrest__writer_facts(const atrest_writer *w, uint8_t commit[32], uint32_t *dek)
{
	memcpy(commit, w->obj.hdr.commit, ATREST__COMMIT_LEN);
	*dek = w->obj.hdr.dek_id;
}

static int seal_item(void *ctx, size_t item, unsigned slot)
{
	seal_task *t = ctx;
	size_t end = (item + 1) * t->run < t->nseg ? (item + 1) * t->run : t->nseg;
	atrest__obj *o;

	GUARD(crew_obj(&o, t->crew, slot));
	for (size_t j = item * t->run; j < end; j++) {
		size_t off = j * o->hdr.segment_size, n = t->len - off;
		if (n > o->hdr.segment_size)
			n = o->hdr.segment_size;
		GUARD(atrest__seg_seal(o, t->ct + j * o->seg_ct, t->first + j,
			t->last && j + 1 == t->nseg, t->pt + off, n));
	}
	return 0;
}

/*
 * The header and metadata go out with the first stage: one write instead of
 * three for a small object (the system calls, not the copy, are what cost).
 */
static int write_head(atrest_writer *w, seal_task *t)
{
	uint8_t *both;
	int rc;

	if (t->ct_len > HEAD_JOIN_MAX || !(both = malloc(w->head_len + t->ct_len)))
		rc = atrest__bw_write(w->bw, w->head, w->head_len);
	else {
		memcpy(both, w->head, w->head_len);
		memcpy(both + w->head_len, t->ct, t->ct_len);
		rc = atrest__bw_write(w->bw, both, w->head_len + t->ct_len);
		free(both);
		t->ct_len = 0;
	}
	free(w->head);
	w->head = NULL;
	return rc;
}

/* Write a stage's ciphertext once it is sealed. */
static int drain(atrest_writer *w, seal_task *t)
{
	GUARD(settle(t));
	if (t->state != SEALED)
		return 0;
	t->state = IDLE;
	if (w->head)
		GUARD(write_head(w, t));
	return t->ct_len ? atrest__bw_write(w->bw, t->ct, t->ct_len) : 0;
}

/* Plaintext bytes of the next stage: one segment, doubling up to STAGE_MAX. */
static size_t stage_cap(const atrest_writer *w)
{
	uint32_t seg = w->obj.hdr.segment_size;
	uint64_t n = w->index ? w->index : 1, max = STAGE_MAX / seg;

	if (max == 0)
		max = 1;
	return (size_t)(n < max ? n : max) * seg;
}

static void task_init(
	seal_task *t, atrest_writer *w, const uint8_t *pt, size_t len, int last)
{
	uint32_t seg = w->obj.hdr.segment_size;

	t->crew = &w->crew;
	t->pt = pt;
	t->len = len;
	t->last = last;
	t->borrowed = pt != w->pt[w->cur];
	t->first = w->index;
	t->nseg = len ? (len + seg - 1) / seg : 1;
	t->run = item_run(t->nseg, seg, t->nseg);
	t->ct_len = (t->nseg - 1) * w->obj.seg_ct +
		atrest__cipher_ctlen(w->obj.hdr.cipher, len - (t->nseg - 1) * seg);
}

/*
 * Help finish sealing the previous stage, hand this one to the pool, and
 * write the previous one meanwhile.  A lone last segment is sealed here:
 * there is nothing to overlap it with.
 */
static int stage(atrest_writer *w, const uint8_t *pt, size_t len, int last)
{
	seal_task *t = &w->task[w->cur];
	size_t items;

	GUARD(settle(&w->task[w->cur ^ 1]));
	task_init(t, w, pt, len, last);
	GUARD(ctbuf_get(&w->ct[w->cur], w->st, t->ct_len));
	t->ct = w->ct[w->cur]->data;
	items = (t->nseg + t->run - 1) / t->run;
	t->pool = items > 1 || !last ? atrest__store_pool(w->st) : NULL;
	atrest__pool_submit(t->pool, &t->job, seal_item, t, items);
	t->state = QUEUED;
	w->index += t->nseg;
	w->cur ^= 1;
	return drain(w, &w->task[w->cur]);
}

/* Stage the final plaintext as last and write everything. */
static int finish(atrest_writer *w, const uint8_t *pt, size_t len)
{
	GUARD(stage(w, pt, len, 1));
	return drain(w, &w->task[w->cur ^ 1]);
}

/*
 * A stage is sealed only once more data arrives, so the last segment
 * (which may be full) is always sealed as last at commit.  Whole stages
 * are sealed straight from the caller's buffer.
 */
static int writer_push(atrest_writer *w, const uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t cap = stage_cap(w), n;
		if (w->fill == cap) {
			GUARD(stage(w, w->pt[w->cur], cap, 0));
			w->fill = 0;
			continue;
		}
		if (w->fill == 0 && len > cap) {
			GUARD(stage(w, p, cap, 0));
			p += cap;
			len -= cap;
			continue;
		}
		if (w->fill == 0)
			GUARD(grow(&w->pt[w->cur], &w->pt_cap[w->cur], cap));
		n = cap - w->fill < len ? cap - w->fill : len;
		memcpy(w->pt[w->cur] + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* The caller's buffer is theirs again once write returns. */
static int settle_borrowed(atrest_writer *w)
{
	seal_task *t = &w->task[w->cur ^ 1];

	return t->borrowed ? settle(t) : 0;
}

int atrest_writer_write(atrest_writer *w, const void *buf, size_t len)
{
	int rc, rc2;

	ENSURE(!w->failed, ATREST_EINVAL, "writer already failed; abort it");
	rc = writer_push(w, buf, len);
	rc2 = settle_borrowed(w);
	rc = rc < 0 ? rc : rc2;
	if (rc < 0)
		w->failed = 1;
	return rc;
}

/* Plaintext bytes staged, once the last stage is (stage flips cur). */
static uint64_t writer_bytes(const atrest_writer *w)
{
	const seal_task *t = &w->task[w->cur ^ 1];

	return (w->index - t->nseg) * w->obj.hdr.segment_size + t->len;
}

/*
 * Commit the backend object: its event goes out first, so that no object
 * is ever visible without it, and the per-key usage counts it after.
 */
static int commit_visible(atrest_writer *w)
{
	uint64_t bytes = writer_bytes(w);
	atrest__object_facts_t old;
	char old_id[ATREST__UPLOAD_ID_MAX + 1] = "";
	int had =
		atrest__object_facts(&old, w->st, w->obj.hdr.name) == 0 && !old.plaintext;
	int rc = w->quiet
		? 0
		: atrest__op_precommit(w->st, w->obj.hdr.name, bytes, w->obj.hdr.dek_id);

	if (rc < 0) {
		atrest__bw_abort(w->bw);
		return rc;
	}
	if (had && old.multipart)
		atrest__multipart_id(old_id, w->st, w->obj.hdr.name);
	GUARD(atrest__bw_commit(w->bw));
	atrest__usage_put(
		w->st, had ? old.dek_id : 0, old.size, w->obj.hdr.dek_id, bytes);
	if (old_id[0]) /* the parts the replaced object named */
		atrest__upload_release(w->st, old_id);
	return 0;
}

static int writer_commit(atrest_writer *w)
{
	int rc = w->failed ? atrest__error(ATREST_EINVAL, "writer already failed") : 0;

	if (rc == 0)
		rc = finish(w, w->pt[w->cur], w->fill);
	if (rc == 0) {
		rc = commit_visible(w);
	} else {
		atrest__bw_abort(w->bw);
	}
	writer_free(w);
	return rc;
}

static void writer_abort(atrest_writer *w)
{
	atrest__bw_abort(w->bw);
	writer_free(w);
}

/* Seal a whole buffer in place: stages borrow it, the last one included. */
static int put_all(atrest_writer *w, const uint8_t *p, size_t len)
{
	size_t cap;

	while (len > (cap = stage_cap(w))) {
		GUARD(stage(w, p, cap, 0));
		p += cap;
		len -= cap;
	}
	return finish(w, p, len);
}

static int put(atrest_store *st, const char *name, const void *buf, size_t len,
	const atrest_meta *meta)
{
	atrest_writer *w;
	int rc;

	GUARD(atrest_writer_open(&w, st, name, meta));
	rc = put_all(w, buf, len);
	if (rc == 0)
		rc = commit_visible(w);
	else
		atrest__bw_abort(w->bw);
	writer_free(w);
	return rc;
}

/* ---- public entry points: each one event (obs.h) ---- */

int atrest_put(atrest_store *st, const char *name, const void *buf, size_t len,
	const atrest_meta *meta)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_PUT, name);
	op.bytes = len;
	return atrest__op_end(&op, put(st, name, buf, len, meta));
}

/* The options' checks and the backend condition of a create-only writer. */
int atrest__write_flags(unsigned int *out, const atrest_write_options *opts)
{
	*out = 0;
	if (!opts)
		return 0;
	GUARD(atrest__check_version(
		opts->version, ATREST_WRITE_OPTIONS_VERSION, "atrest_write_options"));
	ENSURE(!(opts->flags & ~ATREST_WRITE_IF_ABSENT), ATREST_EINVAL,
		"unknown atrest_write_options flags 0x%x", opts->flags);
	*out = opts->flags & ATREST_WRITE_IF_ABSENT ? ATREST_BACKEND_IF_ABSENT : 0;
	return 0;
}

int atrest_writer_open_ex(atrest_writer **out, atrest_store *st, const char *name,
	const atrest_meta *meta, const atrest_write_options *opts)
{
	unsigned int flags;
	atrest__op op;
	int rc;

	*out = NULL;
	atrest__op_begin(&op, st, ATREST_OP_PUT, name);
	rc = atrest__write_flags(&flags, opts);
	if (rc == 0)
		rc = writer_open(out, st, name, meta, flags, NULL, 0);
	if (rc < 0)
		return atrest__op_end(&op, rc);
	atrest__op_suspend(&op, &(*out)->op);
	return 0;
}

int atrest_writer_open(
	atrest_writer **out, atrest_store *st, const char *name, const atrest_meta *meta)
{
	return atrest_writer_open_ex(out, st, name, meta, NULL);
}

int atrest_writer_commit(atrest_writer *w)
{
	atrest__op op;

	atrest__op_resume(&op, &w->op);
	return atrest__op_end(&op, writer_commit(w));
}

/* An abort is most often a failure's cleanup: the caller's last error
 * (why it aborts) stays as it was. */
void atrest_writer_abort(atrest_writer *w)
{
	atrest__saved_error why;
	atrest__op op;

	if (!w)
		return;
	atrest__error_save(&why);
	atrest__op_resume(&op, &w->op);
	writer_abort(w);
	atrest__op_end(&op, atrest__error(ATREST_ERROR, "aborted by the caller"));
	atrest__error_restore(&why);
}

static int pread_full(atrest_backend_reader *br, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	GUARD(atrest__br_pread(br, buf, len, off, &got));
	ENSURE(got == len, ATREST_EINTEGRITY,
		"object truncated (short read at offset %llu)", (unsigned long long)off);
	return 0;
}

/* The header is authentic (commitment checked); is it ours, here? */
static int check_context(atrest_reader *r, const char *name)
{
	const atrest__hdr *h = &r->obj.hdr;

	ENSURE(strcmp(h->tenant, r->st->tenant) == 0, ATREST_EINTEGRITY,
		"object belongs to tenant '%s', not this one (moved between tenants)",
		h->tenant);
	ENSURE(strcmp(h->name, name) == 0, ATREST_EINTEGRITY,
		"object was written as '%s' (moved or copied to another name)", h->name);
	return 0;
}

/*
 * Every reader authenticates the metadata block, so that no byte of an
 * object goes unchecked by a get; stat decodes what it kept.
 */
static int reader_meta(atrest_reader *r)
{
	uint32_t ml = r->obj.hdr.meta_len, off = r->obj.hdr.len;
	uint8_t *ct = NULL;
	int rc = 0;

	r->meta = malloc(ml);
	ENSURE(r->meta, ATREST_ERROR, "out of memory");
	if ((size_t)off + ml > r->head_len) {
		ct = malloc(ml);
		ENSURE_OUT(ct, ATREST_ERROR, "out of memory");
		GUARD_OUT(pread_full(r->br, ct, ml, off));
	}
	GUARD_OUT(atrest__meta_open(
		&r->obj, r->meta, &r->meta_len, ct ? ct : r->head + off, ml));
	rc = atrest__meta_check(r->meta, r->meta_len);
out:
	free(ct);
	return rc;
}

/*
 * Plaintext size of a laid-out object; CBC-HMAC needs the pad-count byte of
 * the last segment (one more read).
 */
static int size_of(uint64_t *size, atrest_backend_reader *br, const atrest__hdr *h,
	uint64_t nseg, size_t last_ct)
{
	uint64_t data_off = (uint64_t)h->len + h->meta_len;
	size_t seg_ct = atrest__cipher_ctlen(h->cipher, h->segment_size);
	uint8_t pad = 0;

	if (h->cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256)
		GUARD(pread_full(br, &pad, 1,
			atrest__pad_byte_off(data_off, seg_ct, nseg, last_ct)));
	return atrest__plain_size(size, h->cipher, h->segment_size, nseg, last_ct, pad);
}

static int reader_keyed(atrest_reader *r, const char *name)
{
	atrest__hdr h;
	uint8_t dek[ATREST__DEK_LEN];
	int rc = atrest__store_refresh(r->st, 0);

	ENSURE(rc != ATREST_ENOTFOUND, ATREST_EINTEGRITY,
		"'%s' is an atrest object, but %s has no keyring (restore "
		".atrest/keyring from a backup)",
		name, r->st->location);
	GUARD(rc);
	GUARD(atrest__hdr_parse(&h, r->head, r->head_len));
	ENSURE(h.form == ATREST__FORM_OBJECT || h.form == ATREST__FORM_MULTIPART,
		ATREST_EINTEGRITY,
		"a standalone encrypted file, not a store object (use 'atrest decrypt')");
	ENSURE(memcmp(h.store_id, r->st->store_id, ATREST__STORE_ID_LEN) == 0,
		ATREST_EINTEGRITY, "object belongs to another store (moved or copied)");
	GUARD(atrest__store_dek(r->st, h.dek_id, dek));
	rc = atrest__obj_init(&r->obj, &h, r->head, dek, ATREST__DEK_LEN, 1);
	atrest__wipe(dek, sizeof(dek));
	GUARD(rc);
	r->crew.slot[0] = &r->obj;
	r->crew.st = r->st;
	GUARD(check_context(r, name));
	GUARD(atrest__obj_layout(&r->obj, r->br->size));
	GUARD(reader_meta(r));
	GUARD(size_of(&r->size, r->br, &h, r->obj.nseg, r->obj.last_ct));
	return h.form == ATREST__FORM_MULTIPART ? mp_load(r) : 0;
}

static int reader_start(atrest_reader *r, const char *name)
{
	char key[ATREST__STORE_KEY_MAX];
	size_t got = 0;

	GUARD(atrest__store_key(key, sizeof(key), r->st, name));
	GUARD(atrest__b_open_read(r->st->b, &r->br, key));
	GUARD(atrest__br_pread(r->br, r->head, sizeof(r->head), 0, &got));
	r->head_len = got;
	if (!atrest__is_object(r->head, got)) {
		ENSURE(r->plain_ok, ATREST_EINTEGRITY,
			"not an atrest object (plaintext? set ATREST_ALLOW_PLAINTEXT=1 or "
			"--allow-plaintext to read it during a migration)");
		r->plain = 1;
		r->size = r->br->size;
		return 0;
	}
	return reader_keyed(r, name);
}

void atrest_reader_close(atrest_reader *r)
{
	atrest__op op;

	if (!r)
		return;
	atrest__op_resume(&op, &r->op);
	atrest__op_end(&op, op.failed);
	atrest__br_close(r->br);
	if (r->pt)
		atrest__wipe(r->pt, r->obj.seg_ct);
	free(r->pt);
	free(r->ct);
	if (r->meta)
		atrest__wipe(r->meta, r->obj.hdr.meta_len);
	free(r->meta);
	crew_free(&r->crew, r->obj.seg_ct);
	atrest__obj_cleanup(&r->obj);
	if (r->mp) {
		atrest_reader_close(r->mp->sub);
		atrest__mpu_free(&r->mp->m);
		free(r->mp);
	}
	free(r);
}

static int reader_open(atrest_reader **out, atrest_store *st, const char *name,
	int plain_ok, int internal)
{
	atrest_reader *r;
	int rc;

	*out = NULL;
	GUARD(name_check(name, internal));
	r = calloc(1, sizeof(*r));
	ENSURE(r, ATREST_ERROR, "out of memory");
	r->st = st;
	r->plain_ok = plain_ok;
	r->cached = UINT64_MAX;
	rc = reader_start(r, name);
	if (rc < 0) {
		atrest_reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int atrest_reader_open(atrest_reader **out, atrest_store *st, const char *name)
{
	atrest__op op;
	int rc;

	atrest__op_begin(&op, st, ATREST_OP_GET, name);
	rc = reader_open(out, st, name, st->allow_plaintext, 0);
	if (rc < 0)
		return atrest__op_end(&op, rc);
	atrest__op_suspend(&op, &(*out)->op);
	return 0;
}

int atrest__reader_open_internal(atrest_reader **out, atrest_store *st, const char *name)
{
	return reader_open(out, st, name, 0, 1);
}

void atrest__reader_facts(const atrest_reader *r, uint8_t commit[32], uint32_t *dek,
	const char **etag, int64_t *mtime)
{
	memcpy(commit, r->obj.hdr.commit, ATREST__COMMIT_LEN);
	*dek = r->obj.hdr.dek_id;
	*etag = r->br->etag;
	*mtime = r->br->mtime;
}

uint64_t atrest_reader_size(const atrest_reader *r)
{
	return r->size;
}

int atrest_reader_seek(atrest_reader *r, uint64_t off)
{
	ENSURE(off <= r->size, ATREST_EINVAL, "seek past the end of the object");
	r->pos = off;
	return 0;
}

/* Open segment i into r->pt (made on first use). */
static int open_cached(atrest_reader *r, uint64_t i)
{
	size_t ctlen = atrest__seg_ctlen(&r->obj, i);

	if (!r->pt) {
		r->pt = malloc(r->obj.seg_ct);
		r->ct = malloc(r->obj.seg_ct);
		ENSURE(r->pt && r->ct, ATREST_ERROR, "out of memory");
	}
	r->cached = UINT64_MAX;
	GUARD(pread_full(r->br, r->ct, ctlen, atrest__seg_off(&r->obj, i)));
	GUARD(atrest__seg_open(
		&r->obj, r->pt, &r->cached_len, i, i + 1 == r->obj.nseg, r->ct, ctlen));
	r->cached = i;
	return 0;
}

static int read_plain(atrest_reader *r, void *buf, size_t len, size_t *got)
{
	GUARD(atrest__br_pread(r->br, buf, len, r->pos, got));
	r->pos += *got;
	return 0;
}

/* A whole plaintext file, exactly as large as it was when opened. */
static int read_plain_all(atrest_reader *r, uint8_t *out, const char *name)
{
	size_t got = 0;

	GUARD(read_plain(r, out, r->size, &got));
	ENSURE(got == r->size, ATREST_ERROR,
		"'%s' changed while being read (%zu of %llu bytes); try again", name, got,
		(unsigned long long)r->size);
	return 0;
}

/*
 * Whole segments first.. of a bulk read, opened into out (room bytes).
 * Each item reads its own ciphertext (one thread at a time, as the backend
 * asks) into its thread's buffer, small enough to stay in cache.
 */
typedef struct open_task {
	crew *crew;
	atrest_store *st;
	atrest_backend_reader *br;
	pthread_mutex_t mu; /* serialises the backend reads */
	uint8_t *out;
	size_t room, nseg, run;
	uint64_t first;
	int solo;        /* one thread: no item can overlap another */
	size_t last_len; /* plaintext of the last of them */
} open_task;

/*
 * A failed open wipes a whole ciphertext length at its output, which
 * passes the segment's own plaintext: a segment whose window passes what
 * its item owns is opened aside and copied, so threads never overlap.
 */
static int open_one(open_task *t, atrest__obj *o, unsigned slot, size_t j,
	const uint8_t *ct, size_t owned)
{
	uint64_t i = t->first + j;
	size_t seg = o->hdr.segment_size, ctlen = atrest__seg_ctlen(o, i), n;
	uint8_t *dst = t->out + j * seg;
	int aside = j * seg + ctlen > owned;

	if (aside) {
		if (!t->crew->scratch[slot])
			t->crew->scratch[slot] = malloc(o->seg_ct);
		ENSURE(t->crew->scratch[slot], ATREST_ERROR, "out of memory");
		dst = t->crew->scratch[slot];
	}
	GUARD(atrest__seg_open(o, dst, &n, i, i + 1 == o->nseg, ct, ctlen));
	if (aside) {
		ENSURE(j * seg + n <= t->room, ATREST_EINTEGRITY, "object size mismatch");
		memcpy(t->out + j * seg, dst, n);
	}
	if (j + 1 == t->nseg)
		t->last_len = n;
	return 0;
}

/* Read the ciphertext of segments a..b-1 into this slot's buffer. */
static int read_item(
	uint8_t **out, open_task *t, atrest__obj *o, unsigned slot, size_t a, size_t b)
{
	ctbuf **buf = &t->crew->ctb[slot];
	size_t len = (b - a - 1) * o->seg_ct + atrest__seg_ctlen(o, t->first + b - 1);
	int rc;

	GUARD(ctbuf_get(buf, t->st, len));
	pthread_mutex_lock(&t->mu);
	rc = pread_full(t->br, (*buf)->data, len, atrest__seg_off(o, t->first + a));
	pthread_mutex_unlock(&t->mu);
	*out = (*buf)->data;
	return rc;
}

static int open_item(void *ctx, size_t item, unsigned slot)
{
	open_task *t = ctx;
	size_t a = item * t->run, b = a + t->run < t->nseg ? a + t->run : t->nseg;
	atrest__obj *o;
	uint8_t *ct;

	GUARD(crew_obj(&o, t->crew, slot));
	GUARD(read_item(&ct, t, o, slot, a, b));
	for (size_t j = a; j < b; j++)
		GUARD(open_one(t, o, slot, j, ct + (j - a) * o->seg_ct,
			b == t->nseg || t->solo ? t->room : b * o->hdr.segment_size));
	return 0;
}

/* Whole segments from pos that fit len (all that are left when len does). */
static size_t bulk_segs(const atrest_reader *r, size_t len)
{
	uint32_t seg = r->obj.hdr.segment_size;
	uint64_t i = r->pos / seg, left = r->obj.nseg - i;
	uint64_t k = len >= r->size - r->pos ? left : len / seg;
	size_t max = CHUNK_MAX / r->obj.seg_ct;

	if (r->pos % seg != 0)
		return 0;
	if (max == 0)
		max = 1;
	return (size_t)(k < max ? k : max);
}

/* Open k whole segments at pos in parallel, straight into p. */
static int read_bulk(atrest_reader *r, uint8_t *p, size_t room, size_t k, size_t *got)
{
	uint32_t seg = r->obj.hdr.segment_size;
	open_task t = {.crew = &r->crew,
		.st = r->st,
		.br = r->br,
		.out = p,
		.room = room,
		.nseg = k,
		.first = r->pos / seg};
	size_t items, max = ITEM_MAX / r->obj.seg_ct;
	atrest__pool *pool;
	int rc;

	t.run = item_run(k, seg, 2 * (size_t)r->st->threads);
	t.run = t.run > max && max > 0 ? max : t.run;
	items = (k + t.run - 1) / t.run;
	pool = items > 1 ? atrest__store_pool(r->st) : NULL;
	t.solo = pool == NULL;
	pthread_mutex_init(&t.mu, NULL);
	rc = atrest__pool_run(pool, open_item, &t, items);
	pthread_mutex_destroy(&t.mu);
	GUARD(rc);
	*got = (k - 1) * seg + t.last_len;
	ENSURE(r->pos + *got <= r->size, ATREST_EINTEGRITY, "object size mismatch");
	return 0;
}

/*
 * Read up to len bytes at pos into buf, which has room bytes (room >= len;
 * more room lets the last segment be opened in place).
 */
static int read_into(atrest_reader *r, uint8_t *p, size_t len, size_t room, size_t *got)
{
	uint32_t seg = r->obj.hdr.segment_size;
	size_t k, n;

	*got = 0;
	if (r->mp)
		return mp_read_into(r, p, len, got);
	while (len > 0 && r->pos < r->size) {
		if ((k = bulk_segs(r, len)) >= 2) {
			GUARD(read_bulk(r, p, room, k, &n));
		} else {
			uint64_t i = r->pos / seg;
			size_t off = (size_t)(r->pos % seg);
			if (r->cached != i)
				GUARD(open_cached(r, i));
			n = r->cached_len - off < len ? r->cached_len - off : len;
			memcpy(p, r->pt + off, n);
		}
		p += n;
		len -= n;
		room -= n;
		*got += n;
		r->pos += n;
	}
	return 0;
}

static int reader_read(atrest_reader *r, void *buf, size_t len, size_t *got)
{
	*got = 0;
	if (r->plain)
		return read_plain(r, buf, len, got);
	return read_into(r, buf, len, len, got);
}

int atrest_reader_read(atrest_reader *r, void *buf, size_t len, size_t *got)
{
	int rc = reader_read(r, buf, len, got);

	atrest__op_count(&r->op, *got, rc);
	return rc;
}

/* ---- multipart objects: a part list, read through the parts ---- */

/* Largest part list: the id and 10000 entries. */
#define MPU_LIST_MAX (10 + ATREST__UPLOAD_ID_MAX + 10000 * ATREST__MPU_PART_LEN)

/* The object's plaintext is its part list: read it, then read the parts. */
static int mp_load(atrest_reader *r)
{
	size_t room, got = 0;
	uint8_t *buf;
	int rc;

	ENSURE(r->size <= MPU_LIST_MAX, ATREST_EINTEGRITY,
		"multipart object '%s': part list too large", r->obj.hdr.name);
	room = (size_t)r->size + r->obj.seg_ct + 64;
	buf = malloc(room);
	ENSURE(buf, ATREST_ERROR, "out of memory");
	GUARD_OUT(read_into(r, buf, (size_t)r->size, room, &got));
	ENSURE_OUT(got == r->size, ATREST_EINTEGRITY, "part list truncated");
	r->mp = calloc(1, sizeof(*r->mp));
	ENSURE_OUT(r->mp, ATREST_ERROR, "out of memory");
	GUARD_OUT(atrest__mpu_parse(&r->mp->m, buf, got));
	r->size = r->mp->m.size;
	r->pos = 0;
out:
	free(buf);
	if (rc < 0 && r->mp) {
		free(r->mp);
		r->mp = NULL;
	}
	return rc;
}

/* The part's header must be the very one the list names: its commitment
 * (unique to that version), data key and sizes. */
static int mp_check_part(const atrest_reader *sub, const atrest__mpu_part *p)
{
	return atrest__ct_equal(sub->obj.hdr.commit, p->commit, ATREST__COMMIT_LEN) &&
		sub->obj.hdr.dek_id == p->dek && sub->br->size == p->stored &&
		sub->size == p->size && !sub->mp;
}

/* Open part i of the list as the one being read. */
static int mp_open(atrest_reader *r, uint32_t i)
{
	mp_read *mp = r->mp;
	const atrest__mpu_part *p = &mp->m.parts[i];
	char pname[ATREST__PART_NAME_MAX];
	int rc;

	atrest_reader_close(mp->sub);
	mp->sub = NULL;
	GUARD(atrest__upload_part_name(
		pname, sizeof(pname), mp->m.id, p->number, r->obj.hdr.name));
	rc = reader_open(&mp->sub, r->st, pname, 0, 1);
	if (rc == ATREST_ENOTFOUND)
		return atrest__error(ATREST_EINTEGRITY,
			"multipart object '%s': part %u is missing", r->obj.hdr.name,
			p->number);
	if (rc < 0) {
		atrest__error_prefix(
			"multipart object '%s', part %u", r->obj.hdr.name, p->number);
		return rc == ATREST_ECONFLICT ? rc : ATREST_EINTEGRITY;
	}
	mp->cur = i;
	ENSURE(mp_check_part(mp->sub, p), ATREST_EINTEGRITY,
		"multipart object '%s': part %u is not the one completed (replaced, "
		"swapped or truncated)",
		r->obj.hdr.name, p->number);
	return 0;
}

/* Index of the part holding plaintext offset pos (< size). */
static uint32_t mp_find(const atrest__mpu *m, uint64_t pos)
{
	uint32_t lo = 0, hi = m->count - 1;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->parts[mid].start + m->parts[mid].size > pos)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/*
 * Go to part i: reading on from the part before, the empty parts between
 * are opened too (each is checked); a seek opens part i alone.
 */
static int mp_goto(atrest_reader *r, uint32_t i)
{
	mp_read *mp = r->mp;
	const atrest__mpu_part *c = &mp->m.parts[mp->cur];

	if (mp->sub && mp->cur == i)
		return 0;
	if (mp->sub && mp->cur < i && c->start + c->size == r->pos)
		for (uint32_t j = mp->cur + 1; j < i; j++)
			GUARD(mp_open(r, j));
	return mp_open(r, i);
}

/* A read reaching the end opens the empty parts past the last byte. */
static int mp_tail(atrest_reader *r)
{
	mp_read *mp = r->mp;
	uint32_t from = mp->sub ? mp->cur + 1 : mp_find(&mp->m, r->pos);

	if (mp->tail_checked || (mp->sub && r->pos != r->size))
		return 0;
	for (uint32_t j = from; j < mp->m.count; j++)
		GUARD(mp_open(r, j));
	mp->tail_checked = 1;
	return 0;
}

static int mp_read_into(atrest_reader *r, uint8_t *p, size_t len, size_t *got)
{
	mp_read *mp = r->mp;

	*got = 0;
	while (len > 0 && r->pos < r->size) {
		uint32_t i = mp_find(&mp->m, r->pos);
		const atrest__mpu_part *pt = &mp->m.parts[i];
		uint64_t in = r->pos - pt->start, left = pt->size - in;
		size_t want = left < len ? (size_t)left : len, n = 0;

		int rc = mp_goto(r, i);
		if (rc == 0 && (rc = atrest_reader_seek(mp->sub, in)) == 0 &&
			(rc = read_into(mp->sub, p, want, want, &n)) < 0)
			atrest__error_prefix("multipart object '%s', part %u",
				r->obj.hdr.name, pt->number);
		GUARD(rc);
		ENSURE(n == want, ATREST_EINTEGRITY,
			"multipart object '%s': part %u ended early", r->obj.hdr.name,
			pt->number);
		p += n;
		len -= n;
		*got += n;
		r->pos += n;
	}
	if (r->pos == r->size && (len > 0 || *got > 0))
		GUARD(mp_tail(r));
	return 0;
}

int atrest__multipart_load(atrest__mpu *out, atrest_store *st, const char *name)
{
	atrest_reader *r;
	int rc = 1;

	memset(out, 0, sizeof(*out));
	GUARD(reader_open(&r, st, name, 0, 0));
	if (r->mp) {
		*out = r->mp->m;
		memset(&r->mp->m, 0, sizeof(r->mp->m));
		rc = 0;
	}
	atrest_reader_close(r);
	return rc;
}

void atrest__multipart_id(
	char out[ATREST__UPLOAD_ID_MAX + 1], atrest_store *st, const char *name)
{
	atrest__saved_error before;
	atrest__mpu m;

	out[0] = '\0';
	atrest__error_save(&before);
	if (atrest__multipart_load(&m, st, name) == 0)
		strcpy(out, m.id);
	atrest__mpu_free(&m);
	atrest__error_restore(&before);
}

static int facts_of(atrest__part_facts *out, atrest_reader *r, int want_meta)
{
	memset(out, 0, sizeof(*out));
	out->size = r->size;
	out->stored = r->br->size;
	out->mtime = r->br->mtime;
	out->dek = r->obj.hdr.dek_id;
	memcpy(out->commit, r->obj.hdr.commit, ATREST__COMMIT_LEN);
	memcpy(out->etag, r->br->etag, sizeof(out->etag));
	if (want_meta)
		return atrest__meta_decode(
			&out->meta, &out->meta_count, r->meta, r->meta_len);
	return 0;
}

int atrest__internal_facts(
	atrest__part_facts *out, atrest_store *st, const char *name, int want_meta)
{
	atrest_reader *r;
	int rc;

	memset(out, 0, sizeof(*out));
	GUARD(reader_open(&r, st, name, 0, 1));
	rc = facts_of(out, r, want_meta);
	atrest_reader_close(r);
	return rc;
}

static int read_all(atrest_reader *r, uint8_t *out, size_t room);

int atrest__internal_read(uint8_t **out, size_t *len, atrest__part_facts *facts,
	atrest_store *st, const char *name, size_t max)
{
	atrest_reader *r;
	uint8_t *buf = NULL;
	size_t room = 0;
	int rc;

	*out = NULL;
	*len = 0;
	memset(facts, 0, sizeof(*facts));
	GUARD(reader_open(&r, st, name, 0, 1));
	rc = facts_of(facts, r, 1);
	if (rc == 0 && r->size <= max)
		room = (size_t)r->size + r->obj.seg_ct + 64;
	buf = room ? malloc(room) : NULL;
	if (rc == 0)
		rc = buf ? read_all(r, buf, room)
			 : atrest__error(ATREST_EINTEGRITY, "'%s' is too large", name);
	atrest_reader_close(r);
	if (rc == 0) {
		*out = buf;
		*len = (size_t)facts->size;
		return 0;
	}
	free(buf);
	free(facts->meta);
	facts->meta = NULL;
	return rc;
}

int atrest__multipart_uses(atrest_store *st, const char *name, uint32_t dek)
{
	atrest_reader *r;
	int uses = 0;

	GUARD(reader_open(&r, st, name, 0, 0));
	uses = r->obj.hdr.dek_id == dek;
	for (uint32_t i = 0; r->mp && i < r->mp->m.count; i++)
		uses |= r->mp->m.parts[i].dek == dek;
	atrest_reader_close(r);
	return uses;
}

static int get_range(atrest_store *st, const char *name, uint64_t off, void *buf,
	size_t len, size_t *got)
{
	atrest_reader *r;
	int rc;

	*got = 0;
	GUARD(atrest_reader_open(&r, st, name));
	rc = off > r->size ? atrest__error(ATREST_EINVAL, "range starts past the end")
			   : atrest_reader_seek(r, off);
	if (rc == 0)
		rc = atrest_reader_read(r, buf, len, got);
	atrest_reader_close(r);
	return rc;
}

/* Whole segments are opened straight into the caller's buffer. */
static int read_all(atrest_reader *r, uint8_t *out, size_t room)
{
	size_t got;

	GUARD(read_into(r, out, r->size, room, &got));
	ENSURE(got == r->size, ATREST_EINTEGRITY, "object size mismatch");
	return 0;
}

int atrest_get_range(atrest_store *st, const char *name, uint64_t off, void *buf,
	size_t len, size_t *got)
{
	atrest__op op;
	int rc;

	atrest__op_begin(&op, st, ATREST_OP_GET, name);
	op.ranged = 1;
	op.offset = off;
	op.length = len;
	rc = get_range(st, name, off, buf, len, got);
	op.bytes = *got;
	return atrest__op_end(&op, rc);
}

static int get_once(void **out, size_t *out_len, atrest_store *st, const char *name)
{
	atrest_reader *r;
	uint8_t *buf;
	size_t room = 0;
	int rc;

	*out = NULL;
	*out_len = 0;
	GUARD(atrest_reader_open(&r, st, name));
	/* Room for a whole ciphertext segment past the end: open's contract. */
	if (r->size < SIZE_MAX - r->obj.seg_ct - 64)
		room = r->size + r->obj.seg_ct + 64;
	buf = room ? malloc(room) : NULL;
	if (!buf)
		rc = atrest__error(ATREST_ERROR, "out of memory");
	else if (r->plain)
		rc = read_plain_all(r, buf, name);
	else
		rc = read_all(r, buf, room);
	if (rc < 0) {
		if (buf)
			atrest__wipe(buf, room);
		free(buf);
	} else {
		*out = buf;
		*out_len = r->size;
	}
	atrest_reader_close(r);
	return rc;
}

/*
 * All or nothing, so an object replaced while being read (an object
 * store's reader then fails with ATREST_ECONFLICT) is read again, whole.
 */
static int get(void **out, size_t *out_len, atrest_store *st, const char *name)
{
	int rc, tries = 0;

	while ((rc = get_once(out, out_len, st, name)) == ATREST_ECONFLICT && ++tries < 5)
		;
	return rc;
}

int atrest_get(void **out, size_t *out_len, atrest_store *st, const char *name)
{
	atrest__op op;
	int rc;

	atrest__op_begin(&op, st, ATREST_OP_GET, name);
	rc = get(out, out_len, st, name);
	op.bytes = *out_len;
	return atrest__op_end(&op, rc);
}

static int stat_(atrest_stat_info *out, atrest_store *st, const char *name)
{
	atrest_reader *r;
	int rc = 0;

	GUARD(atrest__check_version(
		out->version, ATREST_STAT_INFO_VERSION, "atrest_stat_info"));
	memset(out, 0, sizeof(*out));
	out->version = ATREST_STAT_INFO_VERSION;
	GUARD(atrest_reader_open(&r, st, name));
	out->size = r->size;
	out->stored_size = r->br->size + (r->mp ? r->mp->m.stored : 0);
	out->mtime = r->br->mtime;
	out->plaintext = r->plain;
	if (!r->plain) {
		out->cipher = r->obj.hdr.cipher;
		out->segment_size = r->obj.hdr.segment_size;
		out->data_key_id = r->obj.hdr.dek_id;
		rc = atrest__meta_decode(
			&out->meta, &out->meta_count, r->meta, r->meta_len);
	}
	atrest_reader_close(r);
	return rc;
}

int atrest_stat(atrest_stat_info *out, atrest_store *st, const char *name)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_STAT, name);
	return atrest__op_end(&op, stat_(out, st, name));
}

void atrest_stat_info_clear(atrest_stat_info *info)
{
	free(info->meta);
	info->meta = NULL;
	info->meta_count = 0;
}

typedef struct list_ctx {
	atrest_list_cb cb;
	void *payload;
	size_t skip; /* the tenant's prefix */
	uint64_t n;
} list_ctx;

static int list_one(const char *key, uint64_t size, int64_t mtime, void *p)
{
	list_ctx *c = p;
	atrest_list_entry e = {key + c->skip, size, mtime};

	c->n++;
	return c->cb(&e, c->payload);
}

/* A tenant lists its own prefix only: no other tenant's name can show. */
int atrest_list(atrest_store *st, const char *prefix, atrest_list_cb cb, void *payload)
{
	char key[ATREST__STORE_KEY_MAX];
	list_ctx c = {cb, payload, strlen(st->prefix), 0};
	atrest__op op;
	int rc;

	prefix = prefix ? prefix : "";
	atrest__op_begin(&op, st, ATREST_OP_LIST, prefix);
	rc = atrest__name_check_prefix(prefix);
	if (rc == 0)
		rc = atrest__store_key(key, sizeof(key), st, prefix);
	if (rc == 0)
		rc = atrest__b_list(st->b, key, list_one, &c);
	op.count = c.n;
	return atrest__op_end(&op, rc);
}

/* The per-key usage forgets a deleted object. */
int atrest__object_remove(atrest_store *st, const char *name, int internal)
{
	char key[ATREST__STORE_KEY_MAX];
	atrest__object_facts_t f;
	atrest__saved_error before;
	int had;

	GUARD(name_check(name, internal));
	GUARD(atrest__store_key(key, sizeof(key), st, name));
	/* Only for the counts: a failed look leaves the caller's error be (a
	 * writer cleaning up after a failure must not lose why it failed). */
	atrest__error_save(&before);
	had = atrest__object_facts(&f, st, name) == 0 && !f.plaintext;
	if (!had)
		atrest__error_restore(&before);
	GUARD(atrest__b_remove(st->b, key));
	if (had)
		atrest__usage_put(st, f.dek_id, f.size, 0, 0);
	return 0;
}

/* A multipart object goes first, its parts after: a crash between leaves
 * orphans (atrest_upload_cleanup), never an object missing a part. */
static int delete (atrest_store *st, const char *name)
{
	char id[ATREST__UPLOAD_ID_MAX + 1] = "";
	atrest__object_facts_t f;
	atrest__saved_error before;

	GUARD(atrest_name_check(name));
	atrest__error_save(&before);
	if (atrest__object_facts(&f, st, name) == 0 && f.multipart)
		atrest__multipart_id(id, st, name);
	atrest__error_restore(&before);
	GUARD(atrest__object_remove(st, name, 0));
	if (id[0])
		atrest__upload_release(st, id);
	return 0;
}

int atrest_delete(atrest_store *st, const char *name)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_DELETE, name);
	return atrest__op_end(&op, delete (st, name));
}

int atrest__object_facts(atrest__object_facts_t *out, atrest_store *st, const char *name)
{
	char key[ATREST__STORE_KEY_MAX];
	atrest_backend_reader *br;
	uint8_t head[ATREST__HDR_READ];
	size_t got = 0, last;
	atrest__hdr h;
	uint64_t nseg;
	int rc;

	memset(out, 0, sizeof(*out));
	GUARD(atrest__store_key(key, sizeof(key), st, name));
	GUARD(atrest__b_open_read(st->b, &br, key));
	out->stored_size = br->size;
	out->mtime = br->mtime;
	memcpy(out->etag, br->etag, sizeof(out->etag));
	rc = atrest__br_pread(br, head, sizeof(head), 0, &got);
	if (rc == 0 && !atrest__is_object(head, got)) {
		out->plaintext = 1;
	} else if (rc == 0 && (rc = atrest__hdr_parse(&h, head, got)) == 0) {
		memcpy(out->salt, h.salt, sizeof(out->salt));
		out->dek_id = h.dek_id;
		out->multipart = h.form == ATREST__FORM_MULTIPART;
		rc = atrest__layout(&nseg, &last, h.cipher, h.segment_size,
			(uint64_t)h.len + h.meta_len, br->size);
		if (rc == 0)
			rc = size_of(&out->size, br, &h, nseg, last);
	}
	atrest__br_close(br);
	return rc;
}

static int copy_stream(atrest_reader *r, atrest_writer *w, uint64_t *bytes)
{
	size_t cap = 1 << 20, got;
	uint8_t *buf = malloc(cap);
	int rc = 0;

	ENSURE(buf, ATREST_ERROR, "out of memory");
	*bytes = 0;
	while ((rc = atrest_reader_read(r, buf, cap, &got)) == 0 && got > 0) {
		rc = atrest_writer_write(w, buf, got);
		if (rc < 0)
			break;
		*bytes += got;
	}
	atrest__wipe(buf, cap);
	free(buf);
	return rc;
}

/*
 * The copy is published with a conditional put on the version the facts
 * were read from: an object replaced meanwhile (by the engine writing a
 * new checkpoint under the same name) is left as it is, exactly.
 */
int atrest__object_rewrite(atrest_store *st, const char *name,
	const atrest__object_facts_t *facts, uint64_t *bytes)
{
	atrest_meta meta = {NULL, 0};
	atrest_meta_entry *entries = NULL;
	atrest_writer *w = NULL;
	atrest_reader *r;
	int rc;

	GUARD(reader_open(&r, st, name, facts->plaintext, 0));
	ENSURE_OUT(strcmp(r->br->etag, facts->etag) == 0, ATREST_EEXISTS,
		"object '%s' changed while being rewritten; left as it is", name);
	if (!r->plain)
		GUARD_OUT(
			atrest__meta_decode(&entries, &meta.count, r->meta, r->meta_len));
	meta.entries = entries;
	GUARD_OUT(writer_open(
		&w, st, name, &meta, ATREST_BACKEND_IF_MATCH, facts->etag, 0));
	GUARD_OUT(copy_stream(r, w, bytes));
	rc = writer_commit(w);
	w = NULL;
	if (rc == ATREST_ECONFLICT)
		rc = atrest__error(ATREST_EEXISTS,
			"object '%s' changed while being rewritten; left as it is", name);
out:
	if (w)
		writer_abort(w);
	free(entries);
	atrest_reader_close(r);
	return rc;
}
