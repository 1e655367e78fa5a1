/*
 * Puts of the S3 backend.  An object up to one part is one PUT; a larger
 * one is a multipart upload whose parts are sent by a few threads as they
 * fill (memory: uploads + 1 parts), aborted when anything fails.  A
 * conditional put is always one PUT (servers such as RGW 16 ignore
 * conditions on CompleteMultipartUpload), spooled to an unnamed temp file
 * beyond one part.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "s3_int.h"
#include "sigv4.h"

#define BUFS_MAX 17          /* uploads (at most 16) + the one filling */
#define GROW_MIN (64u << 10) /* first allocation of a part buffer */
#define CONFLICT_TRIES 5     /* 409 ConditionalRequestConflict: try again */

enum { FREE, FILLING, QUEUED, SENDING };

struct part {
	uint8_t *data;
	size_t len, alloc, cap; /* cap: bytes this part takes */
	unsigned int num;
	int state;
};

struct s3_writer {
	atrest_backend_writer parent; /* first */
	atrest__s3 *s;
	unsigned int flags;
	char if_etag[ATREST__S3_ETAG_MAX];
	char if_nonce[ATREST__S3_NONCE_LEN + 1];
	char nonce[ATREST__S3_NONCE_LEN + 1];
	struct part *cur;
	struct part bufs[BUFS_MAX];
	unsigned int nbufs;
	uint64_t total;
	int spool_fd; /* a conditional put beyond one part, or -1 */
	uint64_t spooled;
	char *upload_id;
	unsigned int parts;
	char (*etags)[ATREST__S3_ETAG_MAX]; /* of part i + 1 */
	size_t etags_cap;
	pthread_t th[BUFS_MAX];
	unsigned int nth;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int err_rc; /* the first failure of an uploader */
	atrest__saved_error err;
	char key[];
};

/* Bytes of part num: the part size for the first thousand, then more,
 * so that 10,000 parts carry what S3 allows. */
static size_t part_cap(const atrest__s3 *s, unsigned int num)
{
	uint64_t c = (uint64_t)s->part_size * (1 + (num - 1) / 1000);

	return (size_t)(c < ATREST__S3_SINGLE_MAX ? c : ATREST__S3_SINGLE_MAX);
}

/* ---- one PUT, conditional or not */

struct file_body {
	int fd;
	uint64_t off, len;
};

static long file_read(void *buf, size_t cap, void *arg)
{
	struct file_body *f = arg;
	size_t want = f->len - f->off < cap ? (size_t)(f->len - f->off) : cap;
	ssize_t n;

	if (want == 0)
		return 0;
	do
		n = pread(f->fd, buf, want, (off_t)f->off);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	f->off += (uint64_t)n;
	return (long)n;
}

static int file_rewind(void *arg)
{
	((struct file_body *)arg)->off = 0;
	return 0;
}

/* The hex SHA-256 of the spool (plain http signs the payload). */
static int file_hash(char out[65], struct file_body *f)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	uint8_t buf[1 << 16], d[32];
	long n = 1;
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;

	while (ok && (n = file_read(buf, sizeof(buf), f)) > 0)
		ok = EVP_DigestUpdate(c, buf, (size_t)n) == 1;
	ok = ok && n == 0 && EVP_DigestFinal_ex(c, d, NULL) == 1;
	EVP_MD_CTX_free(c);
	file_rewind(f);
	ENSURE(ok, ATREST_ERROR, "S3: hashing the spooled object failed");
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	return 0;
}

/* PUT the object (memory, or the spool) with the condition header cond
 * (NULL: none); resp gets the answer. */
static int put_try(struct s3_writer *w, const char *cond_name, const char *cond,
	atrest__http_resp *resp, char *src, size_t src_cap)
{
	atrest__s3_req r = {.method = "PUT", .op = "PutObject", .key = w->key};
	struct file_body f = {w->spool_fd, 0, w->total};
	char hash[65];

	atrest__s3_hdr(&r, ATREST__S3_NONCE_HDR, w->nonce);
	if (cond)
		atrest__s3_hdr(&r, cond_name, cond);
	r.time_ms = atrest__s3_time_for(w->s, w->total);
	if (w->spool_fd < 0) {
		r.body = w->cur ? w->cur->data : NULL;
		r.body_len = w->cur ? w->cur->len : 0;
	} else {
		if (w->s->plain_http)
			GUARD(file_hash(hash, &f));
		r.payload_hash = w->s->plain_http ? hash : ATREST__SIGV4_UNSIGNED;
		r.read = file_read;
		r.rewind = file_rewind;
		r.read_arg = &f;
		r.read_len = (int64_t)w->total;
	}
	return atrest__s3_call(w->s, &r, resp, src, src_cap);
}

/* After a retried request: is the object now ours (our answer was lost)? */
static int ours_now(struct s3_writer *w, const atrest__http_resp *resp)
{
	char etag[ATREST__S3_ETAG_MAX], nonce[ATREST__S3_NONCE_LEN + 1];

	if (resp->attempts < 2 || atrest__s3_head(w->s, w->key, etag, nonce) != 1)
		return 0;
	return strcmp(nonce, w->nonce) == 0;
}

/* Still the version the condition names (the nonce tells replacements
 * with the same bytes apart)? */
static int still_matches(struct s3_writer *w, int *rc)
{
	char etag[ATREST__S3_ETAG_MAX], nonce[ATREST__S3_NONCE_LEN + 1];

	*rc = atrest__s3_head(w->s, w->key, etag, nonce);
	if (*rc < 0)
		return 0;
	*rc = 0;
	return strcmp(etag, w->if_etag) == 0 && strcmp(nonce, w->if_nonce) == 0;
}

static int lost(struct s3_writer *w)
{
	if (w->flags & ATREST_BACKEND_IF_ABSENT)
		return atrest__error(ATREST_EEXISTS, "S3: s3://%s/%s%s exists",
			w->s->bucket, w->s->prefix, w->key);
	return atrest__error(ATREST_ECONFLICT, "S3: s3://%s/%s%s changed meanwhile",
		w->s->bucket, w->s->prefix, w->key);
}

/*
 * A conditional PUT: 0 done, 1 with an answer that is an error, or a
 * failure.  If-Match is sent quoted, as HTTP writes an ETag; a server that
 * refuses the quoted form of the very ETag the object has (Ceph RGW 16)
 * gets it bare from then on.
 */
static int put_conditional(
	struct s3_writer *w, atrest__http_resp *resp, char *src, size_t cap)
{
	int match = (w->flags & ATREST_BACKEND_IF_MATCH) != 0, rc = 0;
	int bare = __atomic_load_n(&w->s->if_match_bare, __ATOMIC_RELAXED);
	char value[ATREST__S3_ETAG_MAX + 2];

	if (match && *w->if_nonce && !still_matches(w, &rc))
		return rc < 0 ? rc : lost(w);
	for (int tries = 0; tries < CONFLICT_TRIES; tries++) {
		snprintf(value, sizeof(value), bare || !match ? "%s" : "\"%s\"",
			match ? w->if_etag : "*");
		atrest__http_resp_free(resp);
		GUARD(put_try(
			w, match ? "If-Match" : "If-None-Match", value, resp, src, cap));
		if (atrest__http_ok(resp))
			return 0;
		if (resp->status == 409 &&
			strcmp(resp->code, "ConditionalRequestConflict") == 0)
			continue;
		if (resp->status != 412 && !(match && resp->status == 404))
			return 1;
		if (ours_now(w, resp))
			return 0;
		if (!match || bare || resp->status != 412 || !still_matches(w, &rc))
			return rc < 0 ? rc : lost(w);
		bare = 1;
		__atomic_store_n(&w->s->if_match_bare, 1, __ATOMIC_RELAXED);
		tries--; /* the bare form is not a conflict retry */
	}
	return 1;
}

/* One probe PUT of key; 0 with the status, or a failure. */
static int probe_put(
	atrest__s3 *s, const char *key, const char *name, const char *value, long *status)
{
	atrest__s3_req r = {.method = "PUT", .op = "PutObject", .key = key};
	atrest__http_resp resp;
	char src[96];
	int rc;

	r.body = "probe";
	r.body_len = 5;
	if (name)
		atrest__s3_hdr(&r, name, value);
	GUARD(atrest__s3_call(s, &r, &resp, src, sizeof(src)));
	*status = resp.status;
	rc = atrest__http_ok(&resp) || resp.status == 412
		? 0
		: atrest__s3_fail(s, &r, &resp, src);
	atrest__http_resp_free(&resp);
	return rc;
}

/*
 * Keyring updates are only as safe as the server's conditional puts: once
 * per handle, before the first, make sure it refuses what it must (a
 * create-only put of an existing key, a replace of a version that is not
 * there), so that a server that ignores conditions fails loudly.
 */
static int check_conditions(atrest__s3 *s)
{
	char key[64], nonce[ATREST__S3_NONCE_LEN + 1];
	long st1 = 0, st2 = 0, st3 = 0;
	int rc;

	if (__atomic_load_n(&s->cond_checked, __ATOMIC_ACQUIRE))
		return 0;
	GUARD(atrest__s3_nonce(nonce));
	snprintf(key, sizeof(key), ".atrest/probe/%s", nonce);
	GUARD(probe_put(s, key, NULL, NULL, &st1));
	rc = probe_put(s, key, "If-None-Match", "*", &st2);
	if (rc == 0)
		rc = probe_put(
			s, key, "If-Match", "\"00000000000000000000000000000000\"", &st3);
	(void)atrest__s3_delete(s, key);
	GUARD(rc);
	ENSURE(st2 == 412 && st3 == 412, ATREST_EUNAVAILABLE,
		"S3 s3://%s/%s: the server ignores %s on PutObject, so keyring updates "
		"could be lost: atrest needs a server with conditional writes (AWS S3, "
		"MinIO, Ceph RGW 16 or later)",
		s->bucket, s->prefix, st2 != 412 ? "If-None-Match" : "If-Match");
	__atomic_store_n(&s->cond_checked, 1, __ATOMIC_RELEASE);
	return 0;
}

static int commit_single(struct s3_writer *w)
{
	atrest__http_resp resp;
	atrest__s3_req r = {.method = "PUT", .op = "PutObject", .key = w->key};
	char src[96];
	int rc;

	memset(&resp, 0, sizeof(resp));
	if (w->flags) {
		GUARD(check_conditions(w->s));
		rc = put_conditional(w, &resp, src, sizeof(src));
	} else {
		rc = put_try(w, NULL, NULL, &resp, src, sizeof(src));
		if (rc == 0 && !atrest__http_ok(&resp))
			rc = 1;
	}
	if (rc == 1) {
		snprintf(r.what, sizeof(r.what), "PutObject s3://%s/%s%s", w->s->bucket,
			w->s->prefix, w->key);
		rc = atrest__s3_fail(w->s, &r, &resp, src);
	}
	atrest__http_resp_free(&resp);
	return rc;
}

/* ---- the spool of a conditional put */

static int spool_open(struct s3_writer *w)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		snprintf(path, sizeof(path), "%s/atrest-s3-XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		return atrest__error_os(atrest__errno_code(errno), errno,
			"S3: cannot make a temp file in %s for a conditional put", dir);
	w->spool_fd = fd;
	return 0;
}

static int spill(struct s3_writer *w)
{
	const uint8_t *p = w->cur->data;
	size_t n = w->cur->len;

	if (w->spool_fd < 0)
		GUARD(spool_open(w));
	while (n > 0) {
		ssize_t k = pwrite(w->spool_fd, p, n, (off_t)w->spooled);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return atrest__error_os(atrest__errno_code(errno), errno,
				"S3: writing the temp file of a conditional put");
		p += k;
		n -= (size_t)k;
		w->spooled += (uint64_t)k;
	}
	w->cur->len = 0;
	return 0;
}

/* ---- multipart */

static int wait_error(struct s3_writer *w)
{
	return atrest__error_restore(&w->err);
}

static int upload_part(struct s3_writer *w, struct part *p)
{
	atrest__buf q = ATREST__BUF_INIT;
	atrest__s3_req r = {.method = "PUT", .op = "UploadPart", .key = w->key};
	atrest__http_resp resp;
	char src[96];
	int rc;

	memset(&resp, 0, sizeof(resp));
	atrest__buf_printf(&q, "partNumber=%u&uploadId=", p->num);
	atrest__buf_urlenc(&q, w->upload_id, strlen(w->upload_id), 0);
	GUARD_OUT(atrest__buf_check(&q));
	r.query = q.data;
	r.body = p->data;
	r.body_len = p->len;
	r.time_ms = atrest__s3_time_for(w->s, p->len);
	GUARD_OUT(atrest__s3_call(w->s, &r, &resp, src, sizeof(src)));
	if (!atrest__http_ok(&resp))
		GUARD_OUT(atrest__s3_fail(w->s, &r, &resp, src));
	pthread_mutex_lock(&w->mu);
	atrest__s3_etag_clean(
		w->etags[p->num - 1], atrest__http_hdrs_get(&resp.headers, "ETag"));
	rc = *w->etags[p->num - 1] ? 0 : -1;
	pthread_mutex_unlock(&w->mu);
	ENSURE_OUT(rc == 0, ATREST_EUNAVAILABLE,
		"S3 UploadPart s3://%s/%s%s: no ETag in the answer", w->s->bucket,
		w->s->prefix, w->key);
out:
	atrest__http_resp_free(&resp);
	atrest__buf_free(&q);
	return rc;
}

/* The queued part with the lowest number, or NULL. */
static struct part *next_queued(struct s3_writer *w)
{
	struct part *best = NULL;

	for (unsigned int i = 0; i < w->nbufs; i++)
		if (w->bufs[i].state == QUEUED && (!best || w->bufs[i].num < best->num))
			best = &w->bufs[i];
	return best;
}

static void *uploader(void *arg)
{
	struct s3_writer *w = arg;
	struct part *p;
	int rc;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!(p = next_queued(w)) && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!p)
			break;
		p->state = SENDING;
		rc = w->err_rc;
		pthread_mutex_unlock(&w->mu);
		if (rc == 0)
			rc = upload_part(w, p);
		pthread_mutex_lock(&w->mu);
		if (rc < 0 && w->err_rc == 0) {
			atrest__error_save(&w->err);
			w->err_rc = rc;
		}
		p->state = FREE;
		p->len = 0;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int start_multipart(struct s3_writer *w)
{
	atrest__s3_req r = {.method = "POST",
		.op = "CreateMultipartUpload",
		.key = w->key,
		.query = "uploads="};
	atrest__http_resp resp;
	char src[96];
	int rc;

	atrest__s3_hdr(&r, ATREST__S3_NONCE_HDR, w->nonce);
	GUARD(atrest__s3_call(w->s, &r, &resp, src, sizeof(src)));
	rc = atrest__http_ok(&resp)
		? atrest__s3_parse_upload_id(&w->upload_id, resp.body.data, resp.body.len)
		: atrest__s3_fail(w->s, &r, &resp, src);
	atrest__http_resp_free(&resp);
	GUARD(rc);
	for (unsigned int i = 0; i < w->s->uploads; i++) {
		if (pthread_create(&w->th[i], NULL, uploader, w) != 0)
			return atrest__error(
				ATREST_ERROR, "S3: cannot start an upload thread");
		w->nth++;
	}
	return 0;
}

/* Hand the filled part to the uploaders. */
static int enqueue(struct s3_writer *w)
{
	char(*e)[ATREST__S3_ETAG_MAX];
	unsigned int num = w->parts + 1;

	ENSURE(num <= ATREST__S3_PARTS_MAX, ATREST_ETOOBIG,
		"S3: s3://%s/%s%s is larger than %u parts can hold (raise ?part-size=)",
		w->s->bucket, w->s->prefix, w->key, ATREST__S3_PARTS_MAX);
	pthread_mutex_lock(&w->mu);
	if (num > w->etags_cap) {
		size_t cap = w->etags_cap ? 2 * w->etags_cap : 256;
		e = realloc(w->etags, cap * sizeof(*e));
		if (e) {
			memset(e + w->etags_cap, 0, (cap - w->etags_cap) * sizeof(*e));
			w->etags = e;
			w->etags_cap = cap;
		}
	}
	if (num <= w->etags_cap) {
		w->cur->num = num;
		w->cur->state = QUEUED;
		w->parts = num;
		w->cur = NULL;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	ENSURE(w->cur == NULL, ATREST_ERROR, "out of memory");
	return 0;
}

/* A free buffer to fill (waiting for an uploader to release one). */
static int take_buf(struct s3_writer *w)
{
	struct part *p = NULL;
	int rc;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		for (unsigned int i = 0; !p && i < w->nbufs; i++)
			if (w->bufs[i].state == FREE)
				p = &w->bufs[i];
		if (p || w->err_rc)
			break;
		pthread_cond_wait(&w->cv, &w->mu);
	}
	rc = w->err_rc;
	if (p && rc == 0)
		p->state = FILLING;
	pthread_mutex_unlock(&w->mu);
	if (rc < 0)
		return wait_error(w);
	p->len = 0;
	p->cap = part_cap(w->s, w->parts + 1);
	w->cur = p;
	return 0;
}

/* Room in the buffer for n more bytes (grown up to its part's size). */
static int room(struct part *p, size_t n)
{
	size_t want = p->len + n, a = p->alloc ? p->alloc : GROW_MIN;
	uint8_t *d;

	if (want <= p->alloc)
		return 0;
	while (a < want)
		a *= 2;
	a = a < p->cap ? a : p->cap;
	d = realloc(p->data, a);
	ENSURE(d, ATREST_ERROR, "out of memory");
	p->data = d;
	p->alloc = a;
	return 0;
}

/* The current buffer is full and more comes: send it (or spool it). */
static int flush(struct s3_writer *w)
{
	if (w->flags) {
		ENSURE(w->total <= ATREST__S3_SINGLE_MAX, ATREST_ETOOBIG,
			"S3: a conditional put (a keyring, or an object rewritten in "
			"place) is one PUT, at most 5 GiB: s3://%s/%s%s is larger",
			w->s->bucket, w->s->prefix, w->key);
		return spill(w);
	}
	if (!w->upload_id)
		GUARD(start_multipart(w));
	return enqueue(w);
}

static int s3w_write(atrest_backend_writer *bw, const void *buf, size_t len)
{
	struct s3_writer *w = (struct s3_writer *)bw;
	const uint8_t *p = buf;

	while (len > 0) {
		size_t n;
		if (w->cur && w->cur->len == w->cur->cap)
			GUARD(flush(w));
		if (!w->cur)
			GUARD(take_buf(w));
		n = w->cur->cap - w->cur->len < len ? w->cur->cap - w->cur->len : len;
		GUARD(room(w->cur, n));
		memcpy(w->cur->data + w->cur->len, p, n);
		w->cur->len += n;
		w->total += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* Stop the uploaders (after the queued parts, or at once with err). */
static void stop_uploaders(struct s3_writer *w, int drop)
{
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	if (drop && w->err_rc == 0)
		w->err_rc = ATREST_ERROR;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (unsigned int i = 0; i < w->nth; i++)
		pthread_join(w->th[i], NULL);
	w->nth = 0;
}

static int complete_body(atrest__buf *b, const struct s3_writer *w)
{
	atrest__buf_puts(b, "<CompleteMultipartUpload>");
	for (unsigned int i = 0; i < w->parts; i++)
		atrest__buf_printf(b,
			"<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>",
			i + 1, w->etags[i]);
	atrest__buf_puts(b, "</CompleteMultipartUpload>");
	return atrest__buf_check(b);
}

/* One CompleteMultipartUpload; 1 when it should be sent again. */
static int complete_once(struct s3_writer *w, atrest__s3_req *r)
{
	atrest__http_resp resp;
	char src[96], code[96] = "", msg[240] = "";
	int rc = atrest__s3_call(w->s, r, &resp, src, sizeof(src));

	if (rc == 0 && !atrest__http_ok(&resp))
		rc = resp.status == 404 && ours_now(w, &resp)
			? 0
			: atrest__s3_fail(w->s, r, &resp, src);
	else if (rc == 0)
		rc = atrest__s3_parse_complete(code, sizeof(code), msg, sizeof(msg),
			resp.body.data, resp.body.len);
	if (rc == 1 && (!strcmp(code, "InternalError") || !strcmp(code, "SlowDown")))
		rc = 2;
	else if (rc == 1)
		rc = atrest__error(strcmp(code, "EntityTooSmall") ? ATREST_EUNAVAILABLE
								  : ATREST_ERROR,
			"%s: %s%s%s", r->what, code, *msg ? ": " : "", msg);
	atrest__http_resp_free(&resp);
	return rc == 2 ? 1 : rc;
}

static int complete(struct s3_writer *w)
{
	atrest__buf q = ATREST__BUF_INIT, body = ATREST__BUF_INIT;
	atrest__s3_req r = {
		.method = "POST", .op = "CompleteMultipartUpload", .key = w->key};
	int rc;

	atrest__buf_puts(&q, "uploadId=");
	atrest__buf_urlenc(&q, w->upload_id, strlen(w->upload_id), 0);
	GUARD_OUT(atrest__buf_check(&q));
	GUARD_OUT(complete_body(&body, w));
	r.query = q.data;
	r.body = body.data;
	r.body_len = body.len;
	r.time_ms = atrest__s3_time_for(w->s, w->total / 64);
	for (int tries = 0; (rc = complete_once(w, &r)) == 1 && tries < 3; tries++)
		nanosleep(&(struct timespec){0, 200000000L * (tries + 1)}, NULL);
	if (rc == 1)
		rc = atrest__error(ATREST_EUNAVAILABLE, "%s: kept failing", r.what);
out:
	atrest__buf_free(&body);
	atrest__buf_free(&q);
	return rc;
}

static void abort_upload(struct s3_writer *w)
{
	atrest__buf q = ATREST__BUF_INIT;
	atrest__s3_req r = {
		.method = "DELETE", .op = "AbortMultipartUpload", .key = w->key};
	atrest__http_resp resp;
	atrest__saved_error keep;

	atrest__error_save(&keep);
	atrest__buf_puts(&q, "uploadId=");
	atrest__buf_urlenc(&q, w->upload_id, strlen(w->upload_id), 0);
	if (atrest__buf_check(&q) == 0) {
		r.query = q.data;
		if (atrest__s3_call(w->s, &r, &resp, NULL, 0) == 0)
			atrest__http_resp_free(&resp);
	}
	atrest__buf_free(&q);
	atrest__error_restore(&keep); /* the failure that made us abort stays */
}

static void writer_free(struct s3_writer *w)
{
	if (w->nth)
		stop_uploaders(w, 1);
	for (unsigned int i = 0; i < w->nbufs; i++)
		free(w->bufs[i].data);
	if (w->spool_fd >= 0)
		close(w->spool_fd);
	free(w->etags);
	free(w->upload_id);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w);
}

static int s3w_commit(atrest_backend_writer *bw)
{
	struct s3_writer *w = (struct s3_writer *)bw;
	int rc = 0;

	if (!w->upload_id) {
		if (w->spool_fd >= 0 && w->cur)
			rc = spill(w);
		if (rc == 0)
			rc = commit_single(w);
	} else {
		if (w->cur && w->cur->len > 0)
			rc = enqueue(w);
		stop_uploaders(w, rc < 0);
		if (rc == 0 && w->err_rc)
			rc = wait_error(w);
		if (rc == 0)
			rc = complete(w);
		if (rc < 0)
			abort_upload(w);
	}
	writer_free(w);
	return rc;
}

static void s3w_abort(atrest_backend_writer *bw)
{
	struct s3_writer *w = (struct s3_writer *)bw;

	if (w->upload_id) {
		stop_uploaders(w, 1);
		abort_upload(w);
	}
	writer_free(w);
}

int atrest__s3_open_write(atrest_backend *b, atrest_backend_writer **out, const char *key,
	unsigned int flags, const char *etag)
{
	atrest__s3 *s = (atrest__s3 *)b;
	struct s3_writer *w;
	int rc = 0;

	*out = NULL;
	GUARD(atrest__s3_check_key(s, key));
	w = calloc(1, sizeof(*w) + strlen(key) + 1);
	ENSURE(w, ATREST_ERROR, "out of memory");
	w->parent = (atrest_backend_writer)ATREST_BACKEND_WRITER_INIT;
	w->parent.write = s3w_write;
	w->parent.commit = s3w_commit;
	w->parent.abort = s3w_abort;
	w->s = s;
	w->flags = flags & (ATREST_BACKEND_IF_ABSENT | ATREST_BACKEND_IF_MATCH);
	w->spool_fd = -1;
	w->nbufs = s->uploads + 1;
	strcpy(w->key, key);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (w->flags & ATREST_BACKEND_IF_MATCH)
		rc = etag ? atrest__s3_etag_split(w->if_etag, w->if_nonce, etag)
			  : atrest__error(
				    ATREST_EINVAL, "S3: a conditional put needs an etag");
	if (rc == 0)
		rc = atrest__s3_nonce(w->nonce);
	if (rc < 0) {
		writer_free(w);
		return rc;
	}
	*out = &w->parent;
	return 0;
}
