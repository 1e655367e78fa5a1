/*
 * Standalone encrypted files (form 2 of docs/FORMAT.md, section 7): the
 * header extension carrying the wrapped data key, the incremental encryptor
 * and decryptor, and the pipelined fd-to-fd pumps behind 'atrest encrypt'.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrest/file.h"
#include "format.h"
#include "keyring.h"
#include "pool.h"
#include "secret.h"

#define EXT_VERSION 1
#define KIND_MAX 31
#define KEY_ID_MAX 127
#define WRAP_LABEL "atrest/v1 file"
#define WRAP_AAD_LEN (sizeof(WRAP_LABEL) - 1 + ATREST__SALT_LEN)
#define BATCH (2u << 20)                /* bytes per read, seal and write */
#define NSLOT 6                         /* batches in flight in a pipeline */
#define MAX_WORKERS 4                   /* crypto threads of a pipeline */
#define WRITEBACK_LAG ((off_t)16 << 20) /* durable outputs: see pipe_writeback */
#define IO_MAX (1u << 30)

/* ---- the header extension */

struct ext {
	char kind[KIND_MAX + 1];
	char key_id[KEY_ID_MAX + 1];
	char params[ATREST__EXT_MAX + 1];
	const uint8_t *wrapped; /* points into the header's ext */
	size_t wrapped_len;
};

/* Kind and key id: printable ASCII.  Params: no control bytes. */
static int text_ok(const char *s, size_t n, int ascii)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)s[i];

		if (c < 0x20 || c == 0x7f || (ascii && c > 0x7f))
			return 0;
	}
	return 1;
}

static int ext_encode(atrest__hdr *h, const char *kind, const char *key_id,
	const char *params, const uint8_t *wrapped, size_t wlen)
{
	size_t k = strlen(kind), i = strlen(key_id);
	size_t p = params ? strlen(params) : 0, need = 7 + k + i + p + wlen;
	uint8_t *x = h->ext;

	ENSURE(k >= 1 && k <= KIND_MAX && text_ok(kind, k, 1), ATREST_EINVAL,
		"key provider kind cannot be recorded in a file header");
	ENSURE(i >= 1 && i <= KEY_ID_MAX && text_ok(key_id, i, 1), ATREST_EINVAL,
		"master key id cannot be recorded in a file header");
	ENSURE(text_ok(params, p, 0), ATREST_EINVAL,
		"key provider parameters hold control bytes");
	ENSURE(need <= ATREST__EXT_MAX, ATREST_EINVAL,
		"key provider parameters "
		"and wrapped key (%zu bytes) do not fit a file header",
		need);
	*x++ = EXT_VERSION;
	*x++ = (uint8_t)k;
	memcpy(x, kind, k);
	x += k;
	*x++ = (uint8_t)i;
	memcpy(x, key_id, i);
	x += i;
	atrest__put_le16(x, (uint16_t)p);
	if (p)
		memcpy(x + 2, params, p);
	x += 2 + p;
	atrest__put_le16(x, (uint16_t)wlen);
	memcpy(x + 2, wrapped, wlen);
	h->ext_len = (uint16_t)need;
	return 0;
}

#define EXT_NEED(n)                                         \
	ENSURE((size_t)(end - p) >= (n), ATREST_EINTEGRITY, \
		"file header extension truncated (header modified)")

/* A length-prefixed text field of at most max bytes into dst. */
static int ext_text(char *dst, const uint8_t **pp, const uint8_t *end, size_t n,
	size_t min, size_t max, int ascii)
{
	const uint8_t *p = *pp;

	ENSURE(n >= min && n <= max, ATREST_EINTEGRITY,
		"file header extension field length out of range");
	EXT_NEED(n);
	ENSURE(text_ok((const char *)p, n, ascii), ATREST_EINTEGRITY,
		"file header extension holds control bytes");
	memcpy(dst, p, n);
	dst[n] = '\0';
	*pp = p + n;
	return 0;
}

static int ext_parse(struct ext *e, const atrest__hdr *h)
{
	const uint8_t *p = h->ext, *end = h->ext + h->ext_len;
	size_t n;

	memset(e, 0, sizeof(*e));
	EXT_NEED(2);
	ENSURE(p[0] == EXT_VERSION, ATREST_EINTEGRITY,
		"unknown file header extension version %u", p[0]);
	n = p[1];
	p += 2;
	GUARD(ext_text(e->kind, &p, end, n, 1, KIND_MAX, 1));
	EXT_NEED(1);
	n = *p++;
	GUARD(ext_text(e->key_id, &p, end, n, 1, KEY_ID_MAX, 1));
	EXT_NEED(2);
	n = atrest__le16(p);
	p += 2;
	GUARD(ext_text(e->params, &p, end, n, 0, ATREST__EXT_MAX, 0));
	EXT_NEED(2);
	n = atrest__le16(p);
	p += 2;
	ENSURE(n > ATREST__DEK_LEN / 2 && n <= ATREST_WRAPPED_MAX, ATREST_EINTEGRITY,
		"file header's wrapped key length out of range");
	EXT_NEED(n);
	e->wrapped = p;
	e->wrapped_len = n;
	ENSURE(p + n == end, ATREST_EINTEGRITY,
		"file header extension has trailing bytes (header modified)");
	return 0;
}

static void wrap_aad(uint8_t aad[WRAP_AAD_LEN], const uint8_t *salt)
{
	memcpy(aad, WRAP_LABEL, sizeof(WRAP_LABEL) - 1);
	memcpy(aad + sizeof(WRAP_LABEL) - 1, salt, ATREST__SALT_LEN);
}

/* ---- sources and sinks */

struct src {
	int fd;
	atrest_file_read_cb cb;
	void *payload;
	uint8_t *pend; /* read ahead while parsing the header; served first */
	size_t pend_off, pend_len;
	uint8_t peek; /* one byte read to learn whether the stream goes on */
	int has_peek;
	int eof;
	const int *stop; /* set by a failing pipeline: stop waiting for input */
};

struct sink {
	int fd;
	atrest_file_write_cb cb;
	void *payload;
};

static int cb_failed(int rc, const char *what)
{
	int code = rc < 0 ? rc : ATREST_ERROR;
	const atrest_error *e = atrest_error_last();

	if (e && e->code == code && e->message && *e->message)
		return code; /* the callback left its own reason */
	return atrest__error(
		code, "%s: callback failed (%s)", what, atrest_strerror(code));
}

/*
 * Inside a pipeline the reader may wait on a pipe that never delivers while
 * another stage has failed: it polls, and leaves when told to stop (no
 * thread cancellation, which unwinds through library code).
 */
static int wait_readable(struct src *s)
{
	struct pollfd pfd = {s->fd, POLLIN, 0};
	int n;

	while (s->stop) {
		if (__atomic_load_n(s->stop, __ATOMIC_ACQUIRE))
			return atrest__error(ATREST_ERROR, "input abandoned");
		n = poll(&pfd, 1, 100);
		if (n > 0 || (n < 0 && errno != EINTR))
			return 0;
	}
	return 0;
}

static int src_read(struct src *s, uint8_t *buf, size_t cap, size_t *got)
{
	ssize_t n;

	*got = 0;
	if (s->has_peek) {
		buf[0] = s->peek;
		s->has_peek = 0;
		*got = 1;
		return 0;
	}
	if (s->pend_off < s->pend_len) {
		*got = s->pend_len - s->pend_off < cap ? s->pend_len - s->pend_off : cap;
		memcpy(buf, s->pend + s->pend_off, *got);
		s->pend_off += *got;
		return 0;
	}
	if (s->eof)
		return 0;
	if (s->cb) {
		int rc = s->cb(buf, cap, got, s->payload);

		if (rc != 0)
			return cb_failed(rc, "reading the input");
		ENSURE(*got <= cap, ATREST_EINVAL,
			"read callback returned more than it was asked for");
		s->eof = *got == 0;
		return 0;
	}
	GUARD(wait_readable(s));
	do
		n = read(s->fd, buf, cap < IO_MAX ? cap : IO_MAX);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return atrest__error_os(
			atrest__errno_code(errno), errno, "reading the input");
	*got = (size_t)n;
	s->eof = n == 0;
	return 0;
}

/* Read until cap bytes or the end of the stream. */
static int src_full(struct src *s, uint8_t *buf, size_t cap, size_t *got)
{
	size_t n;

	*got = 0;
	while (*got < cap) {
		GUARD(src_read(s, buf + *got, cap - *got, &n));
		if (n == 0)
			break;
		*got += n;
	}
	return 0;
}

/*
 * The next batch: up to cap bytes, and whether it ends the stream (a full
 * batch is followed by a one-byte peek, kept for the next batch).
 */
static int src_batch(struct src *s, uint8_t *buf, size_t cap, size_t *len, int *final)
{
	size_t got;

	GUARD(src_full(s, buf, cap, len));
	*final = 1;
	if (*len < cap)
		return 0;
	GUARD(src_full(s, &s->peek, 1, &got));
	s->has_peek = got == 1;
	*final = !s->has_peek;
	return 0;
}

static int fd_write_all(int fd, const uint8_t *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len < IO_MAX ? len : IO_MAX);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return atrest__error_os(
				atrest__errno_code(errno), errno, "writing the output");
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sink_write(struct sink *s, const uint8_t *buf, size_t len)
{
	int rc;

	if (!s->cb)
		return fd_write_all(s->fd, buf, len);
	rc = s->cb(buf, len, s->payload);
	return rc != 0 ? cb_failed(rc, "writing the output") : 0;
}

static int is_regular(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* fsync a regular file; other outputs (pipes, devices) need nothing. */
static int sync_output(int fd)
{
	if (!is_regular(fd))
		return 0;
	if (fsync(fd) < 0)
		return atrest__error_os(
			atrest__errno_code(errno), errno, "syncing the output");
	return 0;
}

/* ---- keys: making and recovering the per-file data key */

/* The keyed object (pipelines clone it per crypto thread). */
struct fkey {
	atrest__obj o;
	int keyed;
	char key_id[KEY_ID_MAX + 1];
};

static void fkey_cleanup(struct fkey *k)
{
	if (k->keyed)
		atrest__obj_cleanup(&k->o);
	k->keyed = 0;
}

/* Key k->o from the data key; hb is the encoded header. */
static int fkey_init(struct fkey *k, const atrest__hdr *h, uint8_t *hb,
	const uint8_t *dek, size_t dek_len, int check)
{
	k->keyed = 1; /* cleanup is safe on a failed init */
	return atrest__obj_init(&k->o, h, hb, dek, dek_len, check);
}

static int opts_check(const atrest_file_options *o, atrest__hdr *h)
{
	int cipher = o && o->cipher ? o->cipher : ATREST_CIPHER_AES_256_GCM;

	if (o)
		GUARD(atrest__check_version(
			o->version, ATREST_FILE_OPTIONS_VERSION, "atrest_file_options"));
	GUARD(atrest__cipher_allowed(cipher));
	h->cipher = (uint8_t)cipher;
	h->segment_size =
		o && o->segment_size ? o->segment_size : ATREST_SEGMENT_SIZE_DEFAULT;
	return 0;
}

/* A fresh data key, wrapped under kp, in the header extension of h. */
static int seal_key(
	atrest__secret **dek, atrest_keyprov *kp, atrest__hdr *h, char *key_id)
{
	uint8_t wrapped[ATREST_WRAPPED_MAX], aad[WRAP_AAD_LEN];
	size_t wlen = 0;
	char *params = NULL;
	int rc;

	GUARD(atrest__kp_bind(kp, NULL, &params));
	GUARD_OUT(atrest__kp_key_id(kp, key_id, KEY_ID_MAX + 1));
	GUARD_OUT(atrest__secret_new(dek, ATREST__DEK_LEN));
	GUARD_OUT(atrest__rand((*dek)->data, ATREST__DEK_LEN));
	GUARD_OUT(atrest__rand(h->salt, ATREST__SALT_LEN));
	wrap_aad(aad, h->salt);
	GUARD_OUT(atrest__kp_wrap(kp, wrapped, &wlen, (*dek)->data, aad, sizeof(aad)));
	rc = ext_encode(h, kp->kind ? kp->kind : "?", key_id, params, wrapped, wlen);
out:
	free(params);
	return rc;
}

/*
 * Everything a new file needs: the key, the header (into k) and the bytes
 * that start the file, header || sealed metadata (*prefix, malloc'd).
 */
static int seal_setup(struct fkey *k, atrest_keyprov *kp, const atrest_file_options *opts,
	uint8_t **prefix, size_t *prefix_len)
{
	uint8_t hb[ATREST__HDR_MAX], *meta = NULL, *buf = NULL;
	atrest__secret *dek = NULL;
	atrest__hdr h;
	size_t ml = 0;
	int rc;

	memset(k, 0, sizeof(*k));
	memset(&h, 0, sizeof(h));
	GUARD(atrest__crypto_init());
	ENSURE(kp, ATREST_EKEY, "no master key");
	h.form = ATREST__FORM_FILE;
	GUARD(opts_check(opts, &h));
	GUARD(atrest__meta_encode(&meta, &ml, opts ? opts->meta : NULL));
	GUARD_OUT(seal_key(&dek, kp, &h, k->key_id));
	h.meta_len = (uint32_t)atrest__cipher_ctlen(h.cipher, ml);
	GUARD_OUT(atrest__hdr_encode(hb, sizeof(hb), &h));
	GUARD_OUT(fkey_init(k, &h, hb, dek->data, ATREST__DEK_LEN, 0));
	buf = malloc((size_t)h.len + h.meta_len);
	ENSURE_OUT(buf, ATREST_ERROR, "out of memory");
	memcpy(buf, hb, h.len);
	GUARD_OUT(atrest__meta_seal(&k->o, buf + h.len, meta, ml));
	*prefix = buf;
	*prefix_len = (size_t)h.len + h.meta_len;
	buf = NULL;
out:
	free(buf);
	free(meta);
	atrest__secret_free(dek);
	if (rc < 0)
		fkey_cleanup(k);
	return rc;
}

/* The checks of a standalone file's header that need no key. */
static int file_hdr(atrest__hdr *h, const uint8_t *buf, size_t len)
{
	static const uint8_t zero[ATREST__STORE_ID_LEN];

	ENSURE(atrest__is_object(buf, len), ATREST_EINTEGRITY,
		len ? "not an atrest file (no atrest magic)"
		    : "empty input, not an atrest file");
	GUARD(atrest__hdr_parse(h, buf, len));
	ENSURE(h->form == ATREST__FORM_FILE, ATREST_EINTEGRITY,
		"a store object, not a standalone file (use 'atrest get')");
	ENSURE(h->dek_id == 0 && !h->tenant[0] && !h->name[0] &&
			memcmp(h->store_id, zero, sizeof(zero)) == 0,
		ATREST_EINTEGRITY,
		"standalone file header carries a store context (header modified)");
	return 0;
}

/*
 * Bind kp to the parameters the file recorded (a passphrase's salt).
 * Parameters the provider cannot parse were modified in the header; other
 * failures (parameters over a limit, an unreachable provider) keep their
 * code, with the file named as their source.
 */
static int bind_to_file(atrest_keyprov *kp, const struct ext *e)
{
	atrest__saved_error why;
	char *params = NULL;
	int rc = atrest__kp_bind(kp, e->params[0] ? e->params : NULL, &params);

	free(params);
	if (rc == ATREST_EINTEGRITY || rc == ATREST_EINVAL) {
		atrest__error_save(&why);
		return atrest__error(ATREST_EINTEGRITY,
			"standalone file header modified: its %s parameters: %s", e->kind,
			why.message);
	}
	if (rc < 0)
		atrest__error_prefix("standalone file (%s parameters)", e->kind);
	return rc;
}

/*
 * Recover the data key with kp and key the object.  A provider that cannot
 * unwrap is the wrong master key when its id differs from the recorded one;
 * with the same id the header was modified.
 */
static int open_key(struct fkey *k, atrest_keyprov *kp, const atrest__hdr *h, uint8_t *hb)
{
	uint8_t aad[WRAP_AAD_LEN];
	char given[KEY_ID_MAX + 1];
	atrest__secret *dek = NULL;
	struct ext e;
	int rc;

	GUARD(ext_parse(&e, h));
	snprintf(k->key_id, sizeof(k->key_id), "%s", e.key_id);
	GUARD(bind_to_file(kp, &e));
	GUARD(atrest__kp_key_id(kp, given, sizeof(given)));
	wrap_aad(aad, h->salt);
	rc = atrest__kp_unwrap(kp, &dek, e.wrapped, e.wrapped_len, aad, sizeof(aad));
	if ((rc == ATREST_EKEY || rc == ATREST_EINTEGRITY) && strcmp(given, e.key_id))
		return atrest__error(ATREST_EKEY,
			"wrong master key: the file is "
			"encrypted with master key %s (%s), the key given is %s (%s)",
			e.key_id, e.kind, given, kp->kind ? kp->kind : "?");
	if (rc == ATREST_EKEY || rc == ATREST_EINTEGRITY)
		return atrest__error(ATREST_EINTEGRITY,
			"the file's data key does not "
			"unwrap under its own master key %s (header modified)",
			e.key_id);
	GUARD(rc);
	rc = fkey_init(k, h, hb, dek->data, dek->len, 1);
	atrest__secret_free(dek);
	return rc;
}

/*
 * Read and check the header and metadata from in and key k.  What was read
 * beyond them stays in in for the segments.
 */
static int open_setup(struct fkey *k, atrest_keyprov *kp, struct src *in,
	atrest_meta_entry **meta, size_t *meta_count)
{
	uint8_t *buf = malloc(ATREST__HDR_READ), *mp = NULL, *grown;
	size_t got = 0, more = 0, need, ml = 0;
	atrest__hdr h;
	int rc, keyed = 0;

	memset(k, 0, sizeof(*k));
	ENSURE(buf, ATREST_ERROR, "out of memory");
	GUARD_OUT(atrest__crypto_init());
	ENSURE_OUT(kp, ATREST_EKEY, "no master key");
	GUARD_OUT(src_full(in, buf, ATREST__HDR_READ, &got));
	GUARD_OUT(file_hdr(&h, buf, got));
	keyed = 1;
	GUARD_OUT(open_key(k, kp, &h, buf));
	need = (size_t)h.len + h.meta_len;
	if (need > got) {
		grown = realloc(buf, need);
		ENSURE_OUT(grown, ATREST_ERROR, "out of memory");
		buf = grown;
		GUARD_OUT(src_full(in, buf + got, need - got, &more));
		got += more;
	}
	ENSURE_OUT(got >= need, ATREST_EINTEGRITY, "file truncated (in its metadata)");
	mp = malloc(h.meta_len);
	ENSURE_OUT(mp, ATREST_ERROR, "out of memory");
	GUARD_OUT(atrest__meta_open(&k->o, mp, &ml, buf + h.len, h.meta_len));
	GUARD_OUT(atrest__meta_decode(meta, meta_count, mp, ml));
	/* The rest is the start of the segments. */
	memmove(buf, buf + need, got - need);
	in->pend = buf;
	in->pend_len = got - need;
	in->pend_off = 0;
	buf = NULL;
out:
	free(buf);
	if (mp)
		atrest__wipe(mp, h.meta_len);
	free(mp);
	if (rc < 0 && keyed)
		fkey_cleanup(k);
	return rc;
}

/* ---- segments, a batch at a time */

typedef int (*batch_fn)(atrest__obj *o, uint64_t *idx, const uint8_t *in, size_t len,
	int final, uint8_t *out, size_t *out_len);

/* Whole segments, except that the batch ending the stream may end short. */
static int seal_batch(atrest__obj *o, uint64_t *idx, const uint8_t *pt, size_t len,
	int final, uint8_t *out, size_t *out_len)
{
	size_t seg = o->hdr.segment_size, off = 0, w = 0;

	do {
		size_t n = len - off < seg ? len - off : seg;

		GUARD(atrest__seg_seal(
			o, out + w, *idx, final && off + n == len, pt + off, n));
		w += atrest__cipher_ctlen(o->hdr.cipher, n);
		off += n;
		(*idx)++;
	} while (off < len);
	*out_len = w;
	return 0;
}

/* out needs room for len bytes (each open may use its ciphertext length). */
static int open_batch(atrest__obj *o, uint64_t *idx, const uint8_t *ct, size_t len,
	int final, uint8_t *out, size_t *out_len)
{
	size_t off = 0, w = 0, min = atrest__cipher_overhead(o->hdr.cipher);

	ENSURE(len > 0, ATREST_EINTEGRITY, "file truncated (no segments)");
	while (off < len) {
		size_t n = len - off < o->seg_ct ? len - off : o->seg_ct, got = 0;
		int last = final && off + n == len;

		ENSURE(!last || *idx == 0 || n > min, ATREST_EINTEGRITY,
			"file truncated or extended (its size does not match its "
			"segments)");
		GUARD(atrest__seg_open(o, out + w, &got, *idx, last, ct + off, n));
		w += got;
		off += n;
		(*idx)++;
	}
	*out_len = w;
	return 0;
}

static size_t batch_segments(uint32_t segment_size)
{
	size_t k = BATCH / segment_size;

	return k ? k : 1;
}

/* ---- the incremental encryptor */

struct atrest_file_encryptor {
	struct fkey k;
	struct sink out;
	int fsync;
	uint8_t *pt, *ct;
	size_t pt_len, cap; /* cap: plaintext bytes per batch */
	size_t pt_hw;       /* plaintext bytes ever held (wiped at the end) */
	uint64_t idx;
	int failed;
};

static void enc_free(atrest_file_encryptor *e)
{
	if (!e)
		return;
	fkey_cleanup(&e->k);
	if (e->pt)
		atrest__wipe(e->pt, e->pt_hw);
	free(e->pt);
	free(e->ct);
	free(e);
}

static int enc_new(atrest_file_encryptor **out, atrest_keyprov *kp,
	const atrest_file_options *opts, const struct sink *sink)
{
	atrest_file_encryptor *e = calloc(1, sizeof(*e));
	uint8_t *prefix = NULL;
	size_t plen = 0, nseg;
	int rc;

	*out = NULL;
	ENSURE(e, ATREST_ERROR, "out of memory");
	GUARD_OUT(seal_setup(&e->k, kp, opts, &prefix, &plen));
	e->out = *sink;
	e->fsync = opts && opts->fsync;
	nseg = batch_segments(e->k.o.hdr.segment_size);
	e->cap = nseg * e->k.o.hdr.segment_size;
	e->pt = malloc(e->cap);
	e->ct = malloc(nseg * e->k.o.seg_ct);
	ENSURE_OUT(e->pt && e->ct, ATREST_ERROR, "out of memory");
	GUARD_OUT(sink_write(&e->out, prefix, plen));
	*out = e;
	e = NULL;
out:
	free(prefix);
	enc_free(e);
	return rc;
}

int atrest_file_encryptor_new(atrest_file_encryptor **out, atrest_keyprov *key,
	const atrest_file_options *opts, atrest_file_write_cb write, void *payload)
{
	struct sink s = {-1, write, payload};

	ENSURE(out && write, ATREST_EINVAL, "no output callback");
	return enc_new(out, key, opts, &s);
}

int atrest_file_encryptor_new_fd(atrest_file_encryptor **out, atrest_keyprov *key,
	const atrest_file_options *opts, int fd)
{
	struct sink s = {fd, NULL, NULL};

	ENSURE(out && fd >= 0, ATREST_EINVAL, "no output file descriptor");
	return enc_new(out, key, opts, &s);
}

static int enc_flush(atrest_file_encryptor *e, int final)
{
	size_t n = 0;
	int rc = seal_batch(&e->k.o, &e->idx, e->pt, e->pt_len, final, e->ct, &n);

	if (rc == 0)
		rc = sink_write(&e->out, e->ct, n);
	e->pt_len = 0;
	e->failed = rc < 0;
	return rc;
}

int atrest_file_encryptor_write(atrest_file_encryptor *e, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	ENSURE(e && (p || !len), ATREST_EINVAL, "no encryptor or buffer");
	ENSURE(!e->failed, ATREST_ERROR, "encryptor failed earlier");
	while (len > 0) {
		size_t n;

		/* A full batch is sealed only once more data shows it is not last. */
		if (e->pt_len == e->cap)
			GUARD(enc_flush(e, 0));
		n = e->cap - e->pt_len < len ? e->cap - e->pt_len : len;
		memcpy(e->pt + e->pt_len, p, n);
		e->pt_len += n;
		if (e->pt_len > e->pt_hw)
			e->pt_hw = e->pt_len;
		p += n;
		len -= n;
	}
	return 0;
}

int atrest_file_encryptor_finish(atrest_file_encryptor *e)
{
	int rc;

	ENSURE(e, ATREST_EINVAL, "no encryptor");
	rc = e->failed ? atrest__error(ATREST_ERROR, "encryptor failed earlier")
		       : enc_flush(e, 1);
	if (rc == 0 && e->fsync && !e->out.cb)
		rc = sync_output(e->out.fd);
	enc_free(e);
	return rc;
}

void atrest_file_encryptor_abort(atrest_file_encryptor *e)
{
	enc_free(e);
}

/* ---- the incremental decryptor */

struct atrest_file_decryptor {
	struct fkey k;
	struct src in;
	uint8_t *ct, *pt;
	size_t ct_cap, pt_len, pt_off;
	size_t pt_hw; /* bytes of pt ever written (at most the ciphertext read) */
	uint64_t idx;
	int done, failed;
	atrest_meta_entry *meta;
	size_t meta_count;
};

void atrest_file_decryptor_free(atrest_file_decryptor *d)
{
	if (!d)
		return;
	fkey_cleanup(&d->k);
	if (d->pt)
		atrest__wipe(d->pt, d->pt_hw);
	free(d->pt);
	free(d->ct);
	free(d->in.pend);
	free(d->meta);
	free(d);
}

static int dec_new(atrest_file_decryptor **out, atrest_keyprov *kp, const struct src *in)
{
	atrest_file_decryptor *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	ENSURE(d, ATREST_ERROR, "out of memory");
	d->in = *in;
	rc = open_setup(&d->k, kp, &d->in, &d->meta, &d->meta_count);
	if (rc < 0) {
		free(d->in.pend);
		free(d);
		return rc;
	}
	d->ct_cap = batch_segments(d->k.o.hdr.segment_size) * d->k.o.seg_ct;
	d->ct = malloc(d->ct_cap);
	d->pt = malloc(d->ct_cap);
	if (!d->ct || !d->pt) {
		atrest_file_decryptor_free(d);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	*out = d;
	return 0;
}

int atrest_file_decryptor_new(atrest_file_decryptor **out, atrest_keyprov *key,
	atrest_file_read_cb read, void *payload)
{
	struct src s = {.fd = -1, .cb = read, .payload = payload};

	ENSURE(out && read, ATREST_EINVAL, "no input callback");
	return dec_new(out, key, &s);
}

int atrest_file_decryptor_new_fd(atrest_file_decryptor **out, atrest_keyprov *key, int fd)
{
	struct src s = {.fd = fd};

	ENSURE(out && fd >= 0, ATREST_EINVAL, "no input file descriptor");
	return dec_new(out, key, &s);
}

static int dec_fill(atrest_file_decryptor *d)
{
	size_t n = 0;
	int final = 0, rc;

	rc = src_batch(&d->in, d->ct, d->ct_cap, &n, &final);
	if (n > d->pt_hw) /* plaintext is never longer than its ciphertext */
		d->pt_hw = n;
	if (rc == 0)
		rc = open_batch(&d->k.o, &d->idx, d->ct, n, final, d->pt, &d->pt_len);
	if (rc < 0) {
		d->failed = rc;
		d->pt_len = 0;
		return rc;
	}
	d->pt_off = 0;
	d->done = final;
	return 0;
}

int atrest_file_decryptor_read(
	atrest_file_decryptor *d, void *buf, size_t cap, size_t *got)
{
	size_t n;

	ENSURE(got && d && (buf || !cap), ATREST_EINVAL, "no decryptor or buffer");
	*got = 0;
	ENSURE(!d->failed, d->failed, "the file failed to decrypt earlier");
	if (d->pt_off == d->pt_len) {
		if (d->done || cap == 0)
			return 0;
		GUARD(dec_fill(d));
	}
	n = d->pt_len - d->pt_off < cap ? d->pt_len - d->pt_off : cap;
	memcpy(buf, d->pt + d->pt_off, n);
	d->pt_off += n;
	*got = n;
	return 0;
}

void atrest_file_decryptor_meta(
	const atrest_file_decryptor *d, const atrest_meta_entry **entries, size_t *count)
{
	*entries = d ? d->meta : NULL;
	*count = d ? d->meta_count : 0;
}

const char *atrest_file_decryptor_key_id(const atrest_file_decryptor *d)
{
	return d ? d->k.key_id : NULL;
}

/*
 * ---- the pipeline of the fd pumps
 *
 * A ring of NSLOT batches passes three stages: a reader thread fills a
 * slot's input in stream order and hands the batch to the worker pool
 * (pool.c) as a job of its own; the pool's threads seal or open batches
 * independently (batch i starts at segment i × segments per batch, as
 * every batch but the last is full), each thread with its own cipher
 * context; the calling thread waits for the batches in order, writes them
 * and frees their slots.  A slot carries its batch number, so a stage never
 * takes a slot still holding an older batch.
 */

enum { SLOT_FREE, SLOT_QUEUED };

struct pipe;

struct slot {
	uint8_t *in, *out;
	size_t in_len, out_len;
	size_t in_hw, out_hw; /* bytes ever written to in and out (wiped) */
	uint64_t seq;         /* the batch it holds */
	int final, state;
	struct pipe *p;
	atrest__job job; /* its crypto, while QUEUED */
};

struct pipe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot s[NSLOT];
	size_t in_cap, out_cap;
	uint64_t seg_per_batch;
	batch_fn fn;
	atrest__pool *pool;                 /* NULL: crypto runs in the writer */
	atrest__obj *obj[ATREST__POOL_MAX]; /* per pool slot; [0] is the key's own */
	struct src *src;
	int out_fd, sync;
	off_t synced;            /* writeback started up to here */
	off_t dropped;           /* written back and dropped from the cache up to here */
	int stop;                /* a stage failed: the others leave */
	atrest__saved_error err; /* the first failure, raised by pipe_run */
};

/* Record the first failure (lock held); thread-local errors cross here. */
static void pipe_fail(struct pipe *p, int rc)
{
	const atrest_error *e = atrest_error_last();

	if (!p->err.code) {
		if (!e || e->code != rc)
			atrest__error(rc, "%s", atrest_strerror(rc));
		atrest__error_save(&p->err);
	}
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
}

/* One batch's crypto, on whichever pool thread claims it. */
static int crypto_item(void *ctx, size_t item, unsigned slot)
{
	struct slot *s = ctx;
	struct pipe *p = s->p;
	uint64_t idx = s->seq * p->seg_per_batch;
	atrest__obj *o = NULL;

	(void)item;
	GUARD(atrest__obj_for_slot(&o, p->obj, slot));
	return p->fn(o, &idx, s->in, s->in_len, s->final, s->out, &s->out_len);
}

/* Wait until slot s holds batch seq in state; 0 when stopped instead. */
static int pipe_wait(struct pipe *p, struct slot *s, uint64_t seq, int state)
{
	int ok;

	pthread_mutex_lock(&p->mu);
	while (!p->stop && !(s->state == state && (s->seq == seq || state == SLOT_FREE)))
		pthread_cond_wait(&p->cv, &p->mu);
	ok = !p->stop;
	pthread_mutex_unlock(&p->mu);
	return ok;
}

static void pipe_set(struct pipe *p, struct slot *s, int rc, int state)
{
	pthread_mutex_lock(&p->mu);
	if (rc < 0)
		pipe_fail(p, rc);
	else
		s->state = state;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/*
 * What the batch just read may write into s: its input, and at most one
 * output segment per input segment it begins.  Only that much is wiped at
 * the end: a small stream leaves the rest of the buffers untouched (never
 * faulted in, nothing to wipe).
 */
static void slot_touched(struct pipe *p, struct slot *s)
{
	size_t in_seg = p->in_cap / p->seg_per_batch,
	       out_seg = p->out_cap / p->seg_per_batch;
	size_t out = (s->in_len / in_seg + 1) * out_seg;

	if (s->in_len > s->in_hw)
		s->in_hw = s->in_len;
	if (out > p->out_cap)
		out = p->out_cap;
	if (out > s->out_hw)
		s->out_hw = out;
}

/* Fill slots in stream order and queue their crypto on the pool. */
static void *reader_main(void *arg)
{
	struct pipe *p = arg;

	for (uint64_t i = 0;; i++) {
		struct slot *s = &p->s[i % NSLOT];
		int rc, final = 0;

		if (!pipe_wait(p, s, 0, SLOT_FREE))
			break;
		rc = src_batch(p->src, s->in, p->in_cap, &s->in_len, &final);
		slot_touched(p, s);
		if (rc == 0) {
			pthread_mutex_lock(&p->mu); /* the writer reads them */
			s->seq = i;
			s->final = final;
			pthread_mutex_unlock(&p->mu);
			atrest__pool_submit(p->pool, &s->job, crypto_item, s, 1);
		}
		pipe_set(p, s, rc, SLOT_QUEUED);
		if (rc < 0 || final)
			break;
	}
	return NULL;
}

/*
 * A durable output is written back as it goes (the streaming pattern of
 * sync_file_range(2)): start writeback of each batch, wait for the batches
 * WRITEBACK_LAG bytes behind and drop them from the page cache.  The final
 * fsync is then short, dirty memory stays small, and the pages are reused.
 */
static void pipe_writeback(struct pipe *p, size_t len)
{
	off_t end = p->synced + (off_t)len, old = end - WRITEBACK_LAG;

	sync_file_range(p->out_fd, p->synced, (off_t)len, SYNC_FILE_RANGE_WRITE);
	p->synced = end;
	if (old <= p->dropped)
		return;
	sync_file_range(p->out_fd, p->dropped, old - p->dropped,
		SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			SYNC_FILE_RANGE_WAIT_AFTER);
	(void)posix_fadvise(p->out_fd, p->dropped, old - p->dropped, POSIX_FADV_DONTNEED);
	p->dropped = old;
}

/* A slot whose job was waited for is free again; rc < 0 stops the pipe. */
static void pipe_release(struct pipe *p, struct slot *s, int rc)
{
	pthread_mutex_lock(&p->mu);
	s->state = SLOT_FREE;
	if (rc < 0)
		pipe_fail(p, rc);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* The calling thread: batches in order, written once their crypto is done. */
static void pipe_write_all(struct pipe *p)
{
	for (uint64_t i = 0;; i++) {
		struct slot *s = &p->s[i % NSLOT];
		int rc, final;

		if (!pipe_wait(p, s, i, SLOT_QUEUED))
			break;
		final = s->final;
		/* Runs the batch here when no pool thread has taken it yet. */
		rc = atrest__pool_wait(p->pool, &s->job);
		if (rc == 0)
			rc = fd_write_all(p->out_fd, s->out, s->out_len);
		if (rc == 0 && p->sync)
			pipe_writeback(p, s->out_len);
		pipe_release(p, s, rc);
		if (rc < 0 || final)
			break;
	}
}

static int pipe_init(struct pipe *p, size_t in_cap, size_t out_cap)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->in_cap = in_cap;
	p->out_cap = out_cap;
	for (int i = 0; i < NSLOT; i++) {
		p->s[i].p = p;
		p->s[i].in = malloc(in_cap);
		p->s[i].out = malloc(out_cap);
		ENSURE(p->s[i].in && p->s[i].out, ATREST_ERROR, "out of memory");
	}
	return 0;
}

static void pipe_free(struct pipe *p)
{
	for (int i = 0; i < NSLOT; i++) {
		/* Either side may hold plaintext. */
		if (p->s[i].in)
			atrest__wipe(p->s[i].in, p->s[i].in_hw);
		if (p->s[i].out)
			atrest__wipe(p->s[i].out, p->s[i].out_hw);
		free(p->s[i].in);
		free(p->s[i].out);
	}
	for (unsigned i = 1; i < ATREST__POOL_MAX; i++) {
		if (p->obj[i])
			atrest__obj_cleanup(p->obj[i]);
		free(p->obj[i]);
	}
	atrest__pool_free(p->pool);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}

/*
 * Run the reader thread and write here.  On the way out, every batch still
 * queued on the pool is waited for: its buffers must outlive its crypto.
 */
static void pipe_threads(struct pipe *p)
{
	pthread_t rd;
	int have_rd = pthread_create(&rd, NULL, reader_main, p) == 0;

	if (have_rd) {
		pipe_write_all(p);
	} else {
		pthread_mutex_lock(&p->mu);
		pipe_fail(p, atrest__error(ATREST_ERROR, "cannot start a thread"));
		pthread_mutex_unlock(&p->mu);
	}
	pthread_mutex_lock(&p->mu);
	if (p->stop)
		pthread_cond_broadcast(&p->cv); /* the reader polls p->stop */
	pthread_mutex_unlock(&p->mu);
	if (have_rd)
		pthread_join(rd, NULL);
	for (int i = 0; i < NSLOT; i++)
		if (p->s[i].state == SLOT_QUEUED)
			pipe_release(
				p, &p->s[i], atrest__pool_wait(p->pool, &p->s[i].job));
}

/* Crypto threads of a pump: one per online CPU, at most MAX_WORKERS. */
static unsigned pump_threads(void)
{
	unsigned n = atrest__pool_cpus();

	return n > MAX_WORKERS ? MAX_WORKERS : n;
}

static int pipe_run(struct fkey *k, batch_fn fn, struct src *src, int out_fd,
	size_t in_cap, size_t out_cap, int sync)
{
	struct pipe p;
	int rc = pipe_init(&p, in_cap, out_cap);

	p.fn = fn;
	p.src = src;
	p.out_fd = out_fd;
	p.obj[0] = &k->o;
	p.seg_per_batch = batch_segments(k->o.hdr.segment_size);
	p.sync = sync && is_regular(out_fd);
	if (p.sync && (p.synced = lseek(out_fd, 0, SEEK_CUR)) < 0)
		p.sync = 0;
	p.dropped = p.synced;
	/* No pool (one CPU, or no thread could start): crypto runs here. */
	if (pump_threads() >= 2 && atrest__pool_new(&p.pool, pump_threads()) < 0)
		p.pool = NULL;
	src->stop = &p.stop;
	if (rc == 0)
		pipe_threads(&p);
	src->stop = NULL;
	pipe_free(&p);
	if (rc == 0 && p.err.code)
		rc = atrest__error_restore(&p.err);
	return rc;
}

static void advise_sequential(int fd)
{
	/* Read-ahead for files; pipes refuse, which is fine. */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
}

int atrest_file_encrypt_fd(
	atrest_keyprov *key, const atrest_file_options *opts, int in_fd, int out_fd)
{
	struct src in = {.fd = in_fd};
	uint8_t *prefix = NULL;
	size_t plen = 0, nseg;
	struct fkey k;
	int rc;

	ENSURE(in_fd >= 0 && out_fd >= 0, ATREST_EINVAL, "bad file descriptor");
	GUARD(seal_setup(&k, key, opts, &prefix, &plen));
	advise_sequential(in_fd);
	nseg = batch_segments(k.o.hdr.segment_size);
	GUARD_OUT(fd_write_all(out_fd, prefix, plen));
	GUARD_OUT(pipe_run(&k, seal_batch, &in, out_fd, nseg * k.o.hdr.segment_size,
		nseg * k.o.seg_ct, opts && opts->fsync));
	if (opts && opts->fsync)
		rc = sync_output(out_fd);
out:
	free(prefix);
	fkey_cleanup(&k);
	return rc;
}

int atrest_file_decrypt_fd(
	atrest_keyprov *key, const atrest_file_options *opts, int in_fd, int out_fd)
{
	struct src in = {.fd = in_fd};
	atrest_meta_entry *meta = NULL;
	size_t mc = 0, cap;
	struct fkey k;
	int rc;

	ENSURE(in_fd >= 0 && out_fd >= 0, ATREST_EINVAL, "bad file descriptor");
	if (opts)
		GUARD(atrest__check_version(opts->version, ATREST_FILE_OPTIONS_VERSION,
			"atrest_file_options"));
	advise_sequential(in_fd);
	GUARD(open_setup(&k, key, &in, &meta, &mc));
	free(meta);
	cap = batch_segments(k.o.hdr.segment_size) * k.o.seg_ct;
	rc = pipe_run(&k, open_batch, &in, out_fd, cap, cap, opts && opts->fsync);
	if (rc == 0 && opts && opts->fsync)
		rc = sync_output(out_fd);
	free(in.pend);
	fkey_cleanup(&k);
	return rc;
}
