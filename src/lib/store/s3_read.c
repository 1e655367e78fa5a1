/*
 * Reads of the S3 backend: open fetches the first 64 KiB with the object's
 * size and ETag; later reads are ranged GETs of exactly what is asked, or,
 * for a reader moving forward, chunks fetched ahead by a few threads.  A
 * reader that jumped into the object (a byte range) reads ahead no more
 * than it has read.  Every answer must carry the ETag opened: a replaced
 * object fails with ATREST_ECONFLICT, never a mix of versions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "s3_int.h"

#define HEAD_GET (64u << 10) /* bytes fetched by open */
#define RA_CHUNK (4u << 20)  /* one read-ahead GET */
#define RA_SLOTS 12
#define RA_AHEAD (16u << 20) /* most bytes fetched past the last read */
#define SLACK (4u << 20)     /* reads this close to the last one are in order */

enum { C_EMPTY, C_BUSY, C_DONE };

struct chunk {
	struct s3_reader *r;
	uint64_t off;
	size_t len;
	uint8_t *buf;
	int state;
	int joined;
	int rc;
	atrest__saved_error err;
	int cancel; /* (atomic) stop the transfer */
	pthread_t th;
};

struct s3_reader {
	atrest_backend_reader parent; /* first */
	atrest__s3 *s;
	char etag[ATREST__S3_ETAG_MAX];
	char nonce[ATREST__S3_NONCE_LEN + 1];
	uint8_t *head;
	size_t head_len;
	struct chunk ch[RA_SLOTS];
	uint64_t win_start, win_end; /* chunks cover [win_start, win_end) */
	uint64_t last_end, run_start;
	char key[];
};

/* ---- one ranged GET into a buffer */

struct sink {
	uint8_t *buf;
	size_t cap, got;
	const int *cancel;
};

static int sink_write(const void *p, size_t n, void *arg)
{
	struct sink *k = arg;

	if (n > k->cap - k->got ||
		(k->cancel && __atomic_load_n(k->cancel, __ATOMIC_RELAXED)))
		return -1;
	memcpy(k->buf + k->got, p, n);
	k->got += n;
	return 0;
}

static int sink_rewind(void *arg)
{
	((struct sink *)arg)->got = 0;
	return 0;
}

static int replaced(const struct s3_reader *r)
{
	return atrest__error(ATREST_ECONFLICT,
		"S3: s3://%s/%s%s was replaced or removed while being read", r->s->bucket,
		r->s->prefix, r->key);
}

/* The answer is the version opened, the bytes asked for. */
static int check_range(const struct s3_reader *r, const atrest__http_resp *resp,
	uint64_t off, size_t len, size_t got)
{
	char etag[ATREST__S3_ETAG_MAX];
	const char *cr = atrest__http_hdrs_get(&resp->headers, "Content-Range");
	const char *nonce = atrest__http_hdrs_get(&resp->headers, ATREST__S3_NONCE_HDR);
	unsigned long long a, b, t;

	atrest__s3_etag_clean(etag, atrest__http_hdrs_get(&resp->headers, "ETag"));
	if (strcmp(etag, r->etag) != 0 || strcmp(nonce ? nonce : "", r->nonce) != 0)
		return replaced(r);
	if (resp->status == 206 &&
		(!cr || sscanf(cr, "bytes %llu-%llu/%llu", &a, &b, &t) != 3 || a != off ||
			b + 1 != off + len || t != r->parent.size))
		return replaced(r);
	ENSURE(got == len && (resp->status == 206 || (off == 0 && len == r->parent.size)),
		ATREST_ECONFLICT, "S3 GetObject s3://%s/%s%s: %zu bytes of %zu arrived",
		r->s->bucket, r->s->prefix, r->key, got, len);
	return 0;
}

static int get_range(
	struct s3_reader *r, uint8_t *buf, uint64_t off, size_t len, const int *cancel)
{
	atrest__s3_req q = {.method = "GET", .op = "GetObject", .key = r->key};
	struct sink k = {buf, len, 0, cancel};
	atrest__http_resp resp;
	char range[64], src[96];
	int rc;

	snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)off,
		(unsigned long long)(off + len - 1));
	atrest__s3_hdr(&q, "Range", range);
	q.write = sink_write;
	q.write_rewind = sink_rewind;
	q.write_arg = &k;
	q.time_ms = atrest__s3_time_for(r->s, len);
	rc = atrest__s3_call(r->s, &q, &resp, src, sizeof(src));
	if (rc == 0 && atrest__http_ok(&resp))
		rc = check_range(r, &resp, off, len, k.got);
	else if (rc == 0 &&
		(resp.status == 404 || resp.status == 412 || resp.status == 416))
		rc = replaced(r);
	else if (rc == 0)
		rc = atrest__s3_fail(r->s, &q, &resp, src);
	atrest__http_resp_free(&resp);
	return rc;
}

/* ---- read-ahead */

static void *chunk_main(void *arg)
{
	struct chunk *c = arg;

	c->rc = get_range(c->r, c->buf, c->off, c->len, &c->cancel);
	if (c->rc < 0)
		atrest__error_save(&c->err);
	return NULL;
}

/* Wait for a chunk's transfer (its thread's end publishes everything). */
static void chunk_join(struct chunk *c)
{
	if (c->state == C_BUSY && !c->joined) {
		pthread_join(c->th, NULL);
		c->joined = 1;
		c->state = C_DONE;
	}
}

static void chunk_drop(struct chunk *c)
{
	if (c->state == C_BUSY && !c->joined)
		__atomic_store_n(&c->cancel, 1, __ATOMIC_RELAXED);
	chunk_join(c);
	c->state = C_EMPTY;
}

static int chunk_start(struct s3_reader *r, struct chunk *c, uint64_t off, size_t len)
{
	if (!c->buf && !(c->buf = malloc(RA_CHUNK)))
		return atrest__error(ATREST_ERROR, "out of memory");
	c->r = r;
	c->off = off;
	c->len = len;
	c->rc = 0;
	c->joined = 0;
	c->cancel = 0;
	c->state = C_BUSY;
	if (pthread_create(&c->th, NULL, chunk_main, c) != 0) {
		c->state = C_EMPTY;
		return atrest__error(
			ATREST_ERROR, "S3: cannot start a read-ahead thread");
	}
	return 0;
}

/* Forget the window; the next one starts at off. */
static void window_reset(struct s3_reader *r, uint64_t off)
{
	for (int i = 0; i < RA_SLOTS; i++)
		chunk_drop(&r->ch[i]);
	r->win_start = r->win_end = off;
}

/* Bytes to keep fetched past end: all of RA_AHEAD for a reader that
 * started at the beginning, else no more than it has read. */
static uint64_t budget(const struct s3_reader *r, uint64_t end)
{
	uint64_t run = end > r->run_start ? end - r->run_start : 0;

	if (r->run_start <= r->head_len)
		return RA_AHEAD;
	return run < RA_AHEAD ? run : RA_AHEAD;
}

/* Recycle chunks far behind pos, start chunks up to need (at least) and
 * the budget past pos. */
static int top_up(struct s3_reader *r, uint64_t pos, uint64_t need)
{
	uint64_t size = r->parent.size, want = pos + budget(r, pos);

	if (r->win_end < r->head_len) /* the head is had already */
		r->win_start = r->win_end = r->head_len;
	want = want > need ? want : need;
	want = want < size ? want : size;
	for (int i = 0; i < RA_SLOTS; i++) {
		struct chunk *c = &r->ch[i];
		if (c->state != C_EMPTY && c->off + c->len + SLACK <= pos) {
			chunk_drop(c);
			if (c->off == r->win_start)
				r->win_start = c->off + c->len;
		}
	}
	for (int i = 0; i < RA_SLOTS && r->win_end < want; i++) {
		struct chunk *c = &r->ch[i];
		uint64_t left = want - r->win_end;
		if (c->state != C_EMPTY)
			continue;
		GUARD(chunk_start(
			r, c, r->win_end, left < RA_CHUNK ? (size_t)left : RA_CHUNK));
		r->win_end += c->len;
	}
	return 0;
}

static struct chunk *chunk_at(struct s3_reader *r, uint64_t off)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct chunk *c = &r->ch[i];
		if (c->state != C_EMPTY && off >= c->off && off < c->off + c->len)
			return c;
	}
	return NULL;
}

/* Copy from the chunk holding off; 0 with *n bytes, or its failure. */
static int from_chunk(struct chunk *c, uint8_t *out, uint64_t off, size_t want, size_t *n)
{
	size_t at = (size_t)(off - c->off);

	chunk_join(c);
	if (c->rc < 0) {
		int rc = atrest__error_restore(&c->err);
		c->state = C_EMPTY; /* fetched again if asked again */
		return rc;
	}
	*n = c->len - at < want ? c->len - at : want;
	memcpy(out, c->buf + at, *n);
	return 0;
}

static int in_order(const struct s3_reader *r, uint64_t off)
{
	return off + SLACK >= r->last_end && off <= r->last_end + SLACK;
}

/* One step of a read: from the head, a chunk, a new window, or a GET. */
static int read_step(
	struct s3_reader *r, uint8_t *out, uint64_t off, size_t want, int seq, size_t *n)
{
	struct chunk *c;

	if (off < r->head_len) {
		*n = r->head_len - off < want ? (size_t)(r->head_len - off) : want;
		memcpy(out, r->head + off, *n);
		return 0;
	}
	if ((c = chunk_at(r, off)) != NULL)
		return from_chunk(c, out, off, want, n);
	if (seq && off >= r->win_end && want <= RA_AHEAD) {
		if (off != r->win_end || r->win_end == r->win_start)
			window_reset(r, off);
		GUARD(top_up(r, off, off + want));
		c = chunk_at(r, off);
		ENSURE(c, ATREST_ERROR, "S3: read-ahead lost its window");
		return from_chunk(c, out, off, want, n);
	}
	*n = want;
	return get_range(r, out, off, want, NULL);
}

static int s3r_pread(
	atrest_backend_reader *br, void *buf, size_t len, uint64_t off, size_t *got)
{
	struct s3_reader *r = (struct s3_reader *)br;
	uint64_t size = br->size;
	size_t done = 0, n;
	int seq;

	*got = 0;
	if (off >= size || len == 0)
		return 0;
	len = size - off < len ? (size_t)(size - off) : len;
	seq = in_order(r, off);
	if (!seq)
		r->run_start = off;
	while (done < len) {
		GUARD(read_step(
			r, (uint8_t *)buf + done, off + done, len - done, seq, &n));
		done += n;
	}
	r->last_end = off + len;
	/* Reads within the head (a header, a small object) fetch nothing. */
	if (off + len > r->head_len && (r->win_end > r->win_start || seq))
		GUARD(top_up(r, off + len, 0));
	*got = len;
	return 0;
}

static void s3r_close(atrest_backend_reader *br)
{
	struct s3_reader *r = (struct s3_reader *)br;

	for (int i = 0; i < RA_SLOTS; i++) {
		chunk_drop(&r->ch[i]);
		free(r->ch[i].buf);
	}
	free(r->head);
	free(r);
}

/* ---- open */

/* Size, ETag, nonce and time of the answer to open's GET. */
static int open_facts(struct s3_reader *r, const atrest__http_resp *resp, size_t got)
{
	const char *cr = atrest__http_hdrs_get(&resp->headers, "Content-Range");
	const char *lm = atrest__http_hdrs_get(&resp->headers, "Last-Modified");
	const char *nonce = atrest__http_hdrs_get(&resp->headers, ATREST__S3_NONCE_HDR);
	unsigned long long a, b, t;
	time_t when = lm ? curl_getdate(lm, NULL) : -1;

	atrest__s3_etag_clean(r->etag, atrest__http_hdrs_get(&resp->headers, "ETag"));
	if (nonce && strlen(nonce) == ATREST__S3_NONCE_LEN)
		strcpy(r->nonce, nonce);
	r->parent.mtime = when < 0 ? 0 : (int64_t)when;
	if (resp->status == 206) {
		ENSURE(cr && sscanf(cr, "bytes %llu-%llu/%llu", &a, &b, &t) == 3 &&
				a == 0 && b + 1 == got && b < t,
			ATREST_EUNAVAILABLE,
			"S3 GetObject s3://%s/%s%s: a bad Content-Range", r->s->bucket,
			r->s->prefix, r->key);
		r->parent.size = t;
	} else {
		r->parent.size = got;
	}
	ENSURE(*r->etag, ATREST_EUNAVAILABLE, "S3 GetObject s3://%s/%s%s: no ETag",
		r->s->bucket, r->s->prefix, r->key);
	r->head_len = got;
	return 0;
}

/* An empty object answers 416 to a range: its facts from a HEAD. */
static int open_empty(struct s3_reader *r)
{
	atrest__s3_req q = {.method = "HEAD", .op = "HeadObject", .key = r->key};
	atrest__http_resp resp;
	char src[96];
	int rc = atrest__s3_call(r->s, &q, &resp, src, sizeof(src));

	if (rc == 0 && atrest__http_ok(&resp)) {
		rc = open_facts(r, &resp, 0);
		const char *cl = atrest__http_hdrs_get(&resp.headers, "Content-Length");
		if (rc == 0 && cl && strcmp(cl, "0") != 0)
			rc = replaced(r);
	} else if (rc == 0 &&
		(resp.status == 404 ||
			(resp.status == 403 && atrest__s3_absent(r->s, r->key)))) {
		rc = atrest__error(ATREST_ENOTFOUND, "S3: no object s3://%s/%s%s",
			r->s->bucket, r->s->prefix, r->key);
	} else if (rc == 0) {
		rc = atrest__s3_fail(r->s, &q, &resp, src);
	}
	atrest__http_resp_free(&resp);
	return rc;
}

static int open_get(struct s3_reader *r)
{
	atrest__s3_req q = {.method = "GET", .op = "GetObject", .key = r->key};
	struct sink k = {r->head, HEAD_GET, 0, NULL};
	atrest__http_resp resp;
	char range[40], src[96];
	int rc;

	snprintf(range, sizeof(range), "bytes=0-%u", HEAD_GET - 1);
	atrest__s3_hdr(&q, "Range", range);
	q.write = sink_write;
	q.write_rewind = sink_rewind;
	q.write_arg = &k;
	rc = atrest__s3_call(r->s, &q, &resp, src, sizeof(src));
	if (rc == 0 && atrest__http_ok(&resp))
		rc = open_facts(r, &resp, k.got);
	else if (rc == 0 && resp.status == 416)
		rc = open_empty(r);
	else if (rc == 0 &&
		((resp.status == 404 && strcmp(resp.code, "NoSuchBucket") != 0) ||
			(resp.status == 403 && atrest__s3_absent(r->s, r->key))))
		rc = atrest__error(ATREST_ENOTFOUND, "S3: no object s3://%s/%s%s",
			r->s->bucket, r->s->prefix, r->key);
	else if (rc == 0)
		rc = atrest__s3_fail(r->s, &q, &resp, src);
	atrest__http_resp_free(&resp);
	return rc;
}

int atrest__s3_open_read(atrest_backend *b, atrest_backend_reader **out, const char *key)
{
	atrest__s3 *s = (atrest__s3 *)b;
	struct s3_reader *r;
	int rc;

	*out = NULL;
	GUARD(atrest__s3_check_key(s, key));
	r = calloc(1, sizeof(*r) + strlen(key) + 1);
	ENSURE(r, ATREST_ERROR, "out of memory");
	strcpy(r->key, key);
	r->s = s;
	r->parent = (atrest_backend_reader)ATREST_BACKEND_READER_INIT;
	r->parent.pread = s3r_pread;
	r->parent.close = s3r_close;
	r->head = malloc(HEAD_GET);
	rc = r->head ? open_get(r) : atrest__error(ATREST_ERROR, "out of memory");
	if (rc < 0) {
		s3r_close(&r->parent);
		return rc;
	}
	atrest__s3_etag_join(r->parent.etag, r->etag, r->nonce);
	*out = &r->parent;
	return 0;
}
