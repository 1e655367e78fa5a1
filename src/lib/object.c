/*
 * Object I/O of a store: the streaming writer (header, sealed metadata,
 * segments sealed as they fill) and the random-access reader that releases
 * only authenticated plaintext; put, get, ranges, stat, list and delete.
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "names.h"
#include "secret.h"
#include "store_int.h"

struct atrest_writer {
	atrest_store *st;
	atrest_backend_writer *bw;
	atrest__obj obj;
	uint8_t *pt; /* one segment of plaintext not yet sealed */
	uint8_t *ct;
	size_t fill;
	uint64_t index;
	int failed;
};

struct atrest_reader {
	atrest_store *st;
	atrest_backend_reader *br;
	atrest__obj obj;
	int plain;       /* pass-through of a non-atrest file */
	uint64_t size;   /* plaintext bytes */
	uint64_t pos;
	uint8_t *ct, *pt;
	uint64_t cached; /* segment held in pt, or UINT64_MAX */
	size_t cached_len;
	uint8_t *meta; /* authenticated encoded metadata */
	size_t meta_len;
	uint8_t head[ATREST__HDR_READ];
	size_t head_len;
};

static int header_for(atrest__hdr *h, atrest_store *st, const char *name,
	size_t meta_len, uint8_t *dek)
{
	int cipher;

	memset(h, 0, sizeof(*h));
	GUARD(atrest__store_active_dek(st, &h->dek_id, dek, &cipher,
		&h->segment_size));
	h->form = ATREST__FORM_OBJECT;
	h->cipher = (uint8_t)cipher;
	h->meta_len = (uint32_t)atrest__cipher_ctlen(cipher, meta_len);
	memcpy(h->store_id, st->kr->store_id, ATREST__STORE_ID_LEN);
	strcpy(h->tenant, st->tenant);
	strcpy(h->name, name);
	return atrest__rand(h->salt, ATREST__SALT_LEN);
}

/* Build the header and sealed metadata, and send them to the backend. */
static int writer_start(atrest_writer *w, const char *name, const atrest_meta *m)
{
	uint8_t hb[ATREST__HDR_MAX], *meta = NULL, *sealed = NULL;
	uint8_t dek[ATREST__DEK_LEN];
	size_t meta_len;
	atrest__hdr h;
	int rc;

	GUARD(atrest__meta_encode(&meta, &meta_len, m));
	GUARD_OUT(header_for(&h, w->st, name, meta_len, dek));
	GUARD_OUT(atrest__hdr_encode(hb, sizeof(hb), &h));
	GUARD_OUT(atrest__obj_init(&w->obj, &h, hb, dek, ATREST__DEK_LEN, 0));
	sealed = malloc(h.meta_len);
	ENSURE_OUT(sealed, ATREST_ERROR, "out of memory");
	GUARD_OUT(atrest__meta_seal(&w->obj, sealed, meta, meta_len));
	w->pt = malloc(h.segment_size);
	w->ct = malloc(w->obj.seg_ct);
	ENSURE_OUT(w->pt && w->ct, ATREST_ERROR, "out of memory");
	GUARD_OUT(w->st->b->open_write(w->st->b, &w->bw, name, 0));
	GUARD_OUT(w->bw->write(w->bw, hb, h.len));
	GUARD_OUT(w->bw->write(w->bw, sealed, h.meta_len));
out:
	atrest__wipe(dek, sizeof(dek));
	atrest__wipe(meta, meta_len);
	free(meta);
	free(sealed);
	return rc;
}

static void writer_free(atrest_writer *w)
{
	if (w->pt)
		atrest__wipe(w->pt, w->obj.hdr.segment_size);
	free(w->pt);
	free(w->ct);
	atrest__obj_cleanup(&w->obj);
	free(w);
}

int atrest_writer_open(atrest_writer **out, atrest_store *st, const char *name,
	const atrest_meta *meta)
{
	atrest_writer *w;
	int rc;

	*out = NULL;
	GUARD(atrest_name_check(name));
	w = calloc(1, sizeof(*w));
	ENSURE(w, ATREST_ERROR, "out of memory");
	w->st = st;
	rc = writer_start(w, name, meta);
	if (rc < 0) {
		if (w->bw)
			w->bw->abort(w->bw);
		writer_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

static int seal_and_send(atrest_writer *w, const uint8_t *pt, size_t len, int last)
{
	size_t ctlen = atrest__cipher_ctlen(w->obj.hdr.cipher, len);

	GUARD(atrest__seg_seal(&w->obj, w->ct, w->index, last, pt, len));
	GUARD(w->bw->write(w->bw, w->ct, ctlen));
	w->index++;
	return 0;
}

/*
 * A full buffer is sealed only once more data arrives, so the last segment
 * (which may be full) is always sealed as last at commit.
 */
static int writer_push(atrest_writer *w, const uint8_t *p, size_t len)
{
	size_t seg = w->obj.hdr.segment_size;

	while (len > 0) {
		if (w->fill == seg) {
			GUARD(seal_and_send(w, w->pt, seg, 0));
			w->fill = 0;
		}
		if (w->fill == 0 && len > seg) {
			GUARD(seal_and_send(w, p, seg, 0));
			p += seg;
			len -= seg;
			continue;
		}
		size_t n = seg - w->fill < len ? seg - w->fill : len;
		memcpy(w->pt + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
	}
	return 0;
}

int atrest_writer_write(atrest_writer *w, const void *buf, size_t len)
{
	int rc;

	ENSURE(!w->failed, ATREST_EINVAL, "writer already failed; abort it");
	rc = writer_push(w, buf, len);
	if (rc < 0)
		w->failed = 1;
	return rc;
}

int atrest_writer_commit(atrest_writer *w)
{
	int rc = w->failed ? atrest__error(ATREST_EINVAL, "writer already failed") : 0;

	if (rc == 0)
		rc = seal_and_send(w, w->pt, w->fill, 1);
	if (rc == 0) {
		rc = w->bw->commit(w->bw);
	} else {
		w->bw->abort(w->bw);
	}
	writer_free(w);
	return rc;
}

void atrest_writer_abort(atrest_writer *w)
{
	if (!w)
		return;
	w->bw->abort(w->bw);
	writer_free(w);
}

int atrest_put(atrest_store *st, const char *name, const void *buf, size_t len,
	const atrest_meta *meta)
{
	atrest_writer *w;
	int rc;

	GUARD(atrest_writer_open(&w, st, name, meta));
	rc = atrest_writer_write(w, buf, len);
	if (rc < 0) {
		atrest_writer_abort(w);
		return rc;
	}
	return atrest_writer_commit(w);
}

static int pread_full(atrest_backend_reader *br, void *buf, size_t len,
	uint64_t off)
{
	size_t got = 0;

	GUARD(br->pread(br, buf, len, off, &got));
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
	rc = atrest__meta_open(&r->obj, r->meta, &r->meta_len, ct ? ct : r->head + off,
		ml);
out:
	free(ct);
	return rc;
}

static int reader_keyed(atrest_reader *r, const char *name)
{
	atrest__hdr h;
	uint8_t dek[ATREST__DEK_LEN];
	int pad = 0, rc;

	GUARD(atrest__hdr_parse(&h, r->head, r->head_len));
	ENSURE(h.form == ATREST__FORM_OBJECT, ATREST_EINTEGRITY,
		"a standalone encrypted file, not a store object (use 'atrest decrypt')");
	ENSURE(memcmp(h.store_id, r->st->kr->store_id, ATREST__STORE_ID_LEN) == 0,
		ATREST_EINTEGRITY, "object belongs to another store (moved or copied)");
	GUARD(atrest__store_dek(r->st, h.dek_id, dek));
	rc = atrest__obj_init(&r->obj, &h, r->head, dek, ATREST__DEK_LEN, 1);
	atrest__wipe(dek, sizeof(dek));
	GUARD(rc);
	GUARD(check_context(r, name));
	GUARD(atrest__obj_layout(&r->obj, r->br->size));
	GUARD(reader_meta(r));
	if (h.cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256) {
		uint8_t b;
		GUARD(pread_full(r->br, &b, 1, atrest__pad_byte_off(r->obj.data_off,
			r->obj.seg_ct, r->obj.nseg, r->obj.last_ct)));
		pad = b;
	}
	GUARD(atrest__plain_size(&r->size, h.cipher, h.segment_size, r->obj.nseg,
		r->obj.last_ct, pad));
	r->pt = malloc(r->obj.seg_ct);
	r->ct = malloc(r->obj.seg_ct);
	ENSURE(r->pt && r->ct, ATREST_ERROR, "out of memory");
	return 0;
}

static int reader_start(atrest_reader *r, const char *name)
{
	size_t got = 0;

	GUARD(r->st->b->open_read(r->st->b, &r->br, name));
	GUARD(r->br->pread(r->br, r->head, sizeof(r->head), 0, &got));
	r->head_len = got;
	if (!atrest__is_object(r->head, got)) {
		ENSURE(r->st->allow_plaintext, ATREST_EINTEGRITY,
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
	if (!r)
		return;
	if (r->br)
		r->br->close(r->br);
	if (r->pt)
		atrest__wipe(r->pt, r->obj.seg_ct);
	free(r->pt);
	free(r->ct);
	if (r->meta)
		atrest__wipe(r->meta, r->obj.hdr.meta_len);
	free(r->meta);
	atrest__obj_cleanup(&r->obj);
	free(r);
}

int atrest_reader_open(atrest_reader **out, atrest_store *st, const char *name)
{
	atrest_reader *r;
	int rc;

	*out = NULL;
	GUARD(atrest_name_check(name));
	r = calloc(1, sizeof(*r));
	ENSURE(r, ATREST_ERROR, "out of memory");
	r->st = st;
	r->cached = UINT64_MAX;
	rc = reader_start(r, name);
	if (rc < 0) {
		atrest_reader_close(r);
		return rc;
	}
	*out = r;
	return 0;
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

/* Open segment i into out (room for seg_ct bytes). */
static int open_segment(atrest_reader *r, uint8_t *out, uint64_t i, size_t *len)
{
	size_t ctlen = atrest__seg_ctlen(&r->obj, i);

	GUARD(pread_full(r->br, r->ct, ctlen, atrest__seg_off(&r->obj, i)));
	return atrest__seg_open(&r->obj, out, len, i, i + 1 == r->obj.nseg, r->ct,
		ctlen);
}

static int read_plain(atrest_reader *r, void *buf, size_t len, size_t *got)
{
	GUARD(r->br->pread(r->br, buf, len, r->pos, got));
	r->pos += *got;
	return 0;
}

int atrest_reader_read(atrest_reader *r, void *buf, size_t len, size_t *got)
{
	uint8_t *p = buf;
	uint32_t seg = r->obj.hdr.segment_size;

	*got = 0;
	if (r->plain)
		return read_plain(r, buf, len, got);
	while (len > 0 && r->pos < r->size) {
		uint64_t i = r->pos / seg;
		size_t off = (size_t)(r->pos % seg), n;
		if (r->cached != i) {
			r->cached = UINT64_MAX;
			GUARD(open_segment(r, r->pt, i, &r->cached_len));
			r->cached = i;
		}
		n = r->cached_len - off < len ? r->cached_len - off : len;
		memcpy(p, r->pt + off, n);
		p += n;
		len -= n;
		*got += n;
		r->pos += n;
	}
	return 0;
}

int atrest_get_range(atrest_store *st, const char *name, uint64_t off,
	void *buf, size_t len, size_t *got)
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
static int read_all(atrest_reader *r, uint8_t *out)
{
	uint64_t pos = 0;
	size_t n;

	for (uint64_t i = 0; i < r->obj.nseg; i++) {
		GUARD(open_segment(r, out + pos, i, &n));
		pos += n;
	}
	ENSURE(pos == r->size, ATREST_EINTEGRITY, "object size mismatch");
	return 0;
}

int atrest_get(atrest_store *st, const char *name, void **out, size_t *out_len)
{
	atrest_reader *r;
	uint8_t *buf;
	size_t got;
	int rc;

	*out = NULL;
	*out_len = 0;
	GUARD(atrest_reader_open(&r, st, name));
	/* Room for a whole ciphertext segment past the end: open's contract. */
	buf = r->size < SIZE_MAX - r->obj.seg_ct - 64
		? malloc(r->size + r->obj.seg_ct + 64) : NULL;
	if (!buf)
		rc = atrest__error(ATREST_ERROR, "out of memory");
	else if (r->plain)
		rc = read_plain(r, buf, r->size, &got);
	else
		rc = read_all(r, buf);
	if (rc < 0) {
		if (buf)
			atrest__wipe(buf, r->size);
		free(buf);
	} else {
		*out = buf;
		*out_len = r->size;
	}
	atrest_reader_close(r);
	return rc;
}

int atrest_stat(atrest_stat_info *out, atrest_store *st, const char *name)
{
	atrest_reader *r;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	GUARD(atrest_reader_open(&r, st, name));
	out->size = r->size;
	out->stored_size = r->br->size;
	out->mtime = r->br->mtime;
	out->plaintext = r->plain;
	if (!r->plain) {
		out->cipher = r->obj.hdr.cipher;
		out->segment_size = r->obj.hdr.segment_size;
		out->data_key_id = r->obj.hdr.dek_id;
		rc = atrest__meta_decode(&out->meta, &out->meta_count, r->meta,
			r->meta_len);
	}
	atrest_reader_close(r);
	return rc;
}

void atrest_stat_info_clear(atrest_stat_info *info)
{
	free(info->meta);
	info->meta = NULL;
	info->meta_count = 0;
}

typedef struct list_ctx {
	int (*cb)(const atrest_list_entry *, void *);
	void *payload;
} list_ctx;

static int list_one(const char *key, uint64_t size, int64_t mtime, void *p)
{
	list_ctx *c = p;
	atrest_list_entry e = { key, size, mtime };

	return c->cb(&e, c->payload);
}

int atrest_list(atrest_store *st, const char *prefix,
	int (*cb)(const atrest_list_entry *entry, void *payload), void *payload)
{
	list_ctx c = { cb, payload };

	prefix = prefix ? prefix : "";
	GUARD(atrest__name_check_prefix(prefix));
	return st->b->list(st->b, prefix, list_one, &c);
}

int atrest_delete(atrest_store *st, const char *name)
{
	GUARD(atrest_name_check(name));
	return st->b->remove(st->b, name);
}

int atrest__object_facts(atrest__object_facts_t *out, atrest_store *st,
	const char *name)
{
	atrest_backend_reader *br;
	uint8_t head[ATREST__HDR_READ];
	size_t got = 0, last;
	atrest__hdr h;
	uint64_t nseg;
	int rc;

	memset(out, 0, sizeof(*out));
	GUARD(st->b->open_read(st->b, &br, name));
	out->stored_size = br->size;
	out->mtime = br->mtime;
	rc = br->pread(br, head, sizeof(head), 0, &got);
	if (rc == 0 && !atrest__is_object(head, got)) {
		out->plaintext = 1;
	} else if (rc == 0 && (rc = atrest__hdr_parse(&h, head, got)) == 0) {
		memcpy(out->salt, h.salt, sizeof(out->salt));
		out->dek_id = h.dek_id;
		rc = atrest__layout(&nseg, &last, h.cipher, h.segment_size,
			(uint64_t)h.len + h.meta_len, br->size);
		if (rc == 0) /* CBC's pad count is not read: at most 15 bytes off */
			rc = atrest__plain_size(&out->size, h.cipher, h.segment_size, nseg,
				last, 0);
	}
	br->close(br);
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

/* Did someone replace the object while we copied it? */
static int unchanged(atrest_store *st, const char *name,
	const atrest__object_facts_t *before)
{
	atrest__object_facts_t now;

	if (atrest__object_facts(&now, st, name) < 0)
		return 0;
	if (before->plaintext)
		return now.plaintext && now.stored_size == before->stored_size &&
		       now.mtime == before->mtime;
	return !now.plaintext && memcmp(now.salt, before->salt, sizeof(now.salt)) == 0;
}

int atrest__object_rewrite(atrest_store *st, const char *name,
	const atrest__object_facts_t *facts, uint64_t *bytes)
{
	atrest_meta meta = { NULL, 0 };
	atrest_meta_entry *entries = NULL;
	atrest_writer *w = NULL;
	atrest_reader *r;
	int rc, saved = st->allow_plaintext;

	st->allow_plaintext = facts->plaintext; /* only for this reader */
	rc = atrest_reader_open(&r, st, name);
	st->allow_plaintext = saved;
	GUARD(rc);
	if (!r->plain)
		GUARD_OUT(atrest__meta_decode(&entries, &meta.count, r->meta, r->meta_len));
	meta.entries = entries;
	GUARD_OUT(atrest_writer_open(&w, st, name, &meta));
	GUARD_OUT(copy_stream(r, w, bytes));
	ENSURE_OUT(unchanged(st, name, facts), ATREST_EEXISTS,
		"object '%s' changed while being rewritten; left as it is", name);
	rc = atrest_writer_commit(w);
	w = NULL;
out:
	if (w)
		atrest_writer_abort(w);
	free(entries);
	atrest_reader_close(r);
	return rc;
}
