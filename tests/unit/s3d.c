/*
 * The unit tests' in-memory S3 server (s3d.h).  Test-only code: it keeps
 * to what the S3 API reference says of each operation the backend uses and
 * checks every SigV4 signature with the project's verifier.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "buf.h"
#include "crypto.h"
#include "httpd.h"
#include "s3d.h"
#include "sigv4.h"

struct obj {
	char *bucket, *key;
	uint8_t *data;
	size_t len;
	char etag[48];
	char nonce[40];
	int64_t mtime;
};

struct upload {
	char *bucket, *key, id[40];
	char nonce[40];
	int64_t initiated;
	uint8_t *part[64]; /* parts 1..64 */
	size_t plen[64];
	char petag[64][40];
};

struct knob {
	char op[40];
	int count, status, drop, applied;
	char code[64];
	size_t cut;
};

struct s3d {
	th_httpd *h;
	char endpoint[64];
	char access[64], secret[128];
	pthread_mutex_t mu;
	struct obj *o;
	size_t n, cap;
	struct upload *u[256];
	int nu;
	char buckets[16][64];
	int nb;
	int page, bare, ignore, deny_missing, delay_ms;
	struct knob k[8];
	int nk;
	long calls[32];
	int active[32], most[32];
	uint64_t bytes_out;
	long seq;
	char last_headers[32][8192];
};

static const char *const OPS[] = {"HeadBucket", "CreateBucket", "ListObjectsV2",
	"DeleteObjects", "ListMultipartUploads", "PutObject", "GetObject", "HeadObject",
	"DeleteObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
	"AbortMultipartUpload", "Unknown", NULL};

static int op_index(const char *op)
{
	for (int i = 0; OPS[i]; i++)
		if (!strcmp(OPS[i], op))
			return i;
	return 13;
}

/* ---- small helpers */

static void pct_decode(char *out, size_t cap, const char *s, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k + 1 < cap; i++) {
		if (s[i] == '%' && i + 2 < n) {
			char h[3] = {s[i + 1], s[i + 2], 0};
			out[k++] = (char)strtol(h, NULL, 16);
			i += 2;
		} else {
			out[k++] = s[i];
		}
	}
	out[k] = '\0';
}

/* The decoded value of query parameter name: 1 found, 0 absent. */
static int qparam(const char *target, const char *name, char *out, size_t cap)
{
	const char *q = strchr(target, '?');
	size_t nl = strlen(name);

	for (const char *p = q ? q + 1 : NULL; p && *p;) {
		size_t len = strcspn(p, "&"), kl = strcspn(p, "=&");
		if (kl == nl && !strncmp(p, name, nl)) {
			pct_decode(out, cap, p + kl + (kl < len),
				kl < len ? len - kl - 1 : 0);
			return 1;
		}
		p += len + (p[len] == '&');
	}
	return 0;
}

static void md5_hex(char out[33], const void *p, size_t n)
{
	uint8_t d[16];
	unsigned int dl = 0;

	EVP_Digest(p, n, d, &dl, EVP_md5(), NULL);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* S3's url encoding of listed keys: '+' for a space. */
static void key_enc(atrest__buf *b, const char *k)
{
	for (; *k; k++) {
		if (*k == ' ')
			atrest__buf_putc(b, '+');
		else
			atrest__buf_urlenc(b, k, 1, 1);
	}
}

static void iso_time(char out[32], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static void set_body(th_http_resp *a, atrest__buf *b)
{
	a->heap = atrest__buf_take(b);
	a->body_len = a->heap ? strlen(a->heap) : 0;
	atrest__buf_free(b);
}

static void error(th_http_resp *a, int status, const char *code)
{
	a->status = status;
	snprintf(a->body, sizeof(a->body),
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
		"<Message>test server: %s</Message></Error>",
		code, code);
}

static struct obj *find(s3d *d, const char *bucket, const char *key)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(d->o[i].bucket, bucket) && !strcmp(d->o[i].key, key))
			return &d->o[i];
	return NULL;
}

static int has_bucket(s3d *d, const char *b)
{
	for (int i = 0; i < d->nb; i++)
		if (!strcmp(d->buckets[i], b))
			return 1;
	return 0;
}

/* Store data under bucket/key (taking data). */
static struct obj *store(s3d *d, const char *bucket, const char *key, uint8_t *data,
	size_t len, const char *etag, const char *nonce)
{
	struct obj *o = find(d, bucket, key);

	if (!o) {
		if (d->n == d->cap) {
			d->cap = d->cap ? 2 * d->cap : 64;
			d->o = realloc(d->o, d->cap * sizeof(*d->o));
		}
		o = &d->o[d->n++];
		memset(o, 0, sizeof(*o));
		o->bucket = strdup(bucket);
		o->key = strdup(key);
	}
	free(o->data);
	o->data = data;
	o->len = len;
	snprintf(o->etag, sizeof(o->etag), "%s", etag);
	snprintf(o->nonce, sizeof(o->nonce), "%s", nonce ? nonce : "");
	o->mtime = time(NULL);
	return o;
}

static void drop_obj(s3d *d, struct obj *o)
{
	free(o->bucket);
	free(o->key);
	free(o->data);
	*o = d->o[--d->n];
}

/* ---- signatures */

static int verify(s3d *d, const th_http_req *r, th_http_resp *a)
{
	atrest__sigv4_hdr hd[64];
	char lines[8192], auth_v[2048], date[32], hash[80], path[2048];
	atrest__sigv4_auth au;
	const char *q = strchr(r->target, '?');
	size_t n = 0;
	uint8_t h[32];
	char hex[65];

	if (!th_http_header(r, "Authorization", auth_v, sizeof(auth_v)) ||
		atrest__sigv4_parse_authorization(&au, auth_v) != 0) {
		error(a, 403, "AccessDenied");
		return -1;
	}
	if (strcmp(au.access_key, d->access) != 0) {
		error(a, 403, "InvalidAccessKeyId");
		return -1;
	}
	snprintf(lines, sizeof(lines), "%s", r->headers);
	for (char *p = lines; *p && n < 64;) {
		char *e = strstr(p, "\r\n"), *c;
		if (e)
			*e = '\0';
		c = strchr(p, ':');
		if (c) {
			*c = '\0';
			hd[n].name = p;
			for (c++; *c == ' '; c++)
				;
			hd[n++].value = c;
		}
		if (!e)
			break;
		p = e + 2;
	}
	th_http_header(r, "x-amz-date", date, sizeof(date));
	th_http_header(r, "x-amz-content-sha256", hash, sizeof(hash));
	snprintf(path, sizeof(path), "%.*s",
		(int)(q ? q - r->target : (long)strlen(r->target)), r->target);
	atrest__sigv4_msg m = {r->method, path, q ? q + 1 : NULL, hd, n, hash};
	if (atrest__sigv4_verify(&m, &au, date, (const uint8_t *)d->secret,
		    strlen(d->secret), 0, ATREST__SIGV4_S3) != 0) {
		error(a, 403, "SignatureDoesNotMatch");
		return -1;
	}
	atrest__sha256(h, r->body, r->body_len);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	if (strcmp(hash, ATREST__SIGV4_UNSIGNED) != 0 && strcmp(hash, hex) != 0) {
		error(a, 400, "XAmzContentSHA256Mismatch");
		return -1;
	}
	return 0;
}

/* ---- operations */

static void list_objects(
	s3d *d, const char *bucket, const th_http_req *r, th_http_resp *a);

static int cmp_obj(const void *x, const void *y)
{
	return strcmp(((const struct obj *)x)->key, ((const struct obj *)y)->key);
}

static void list_objects(
	s3d *d, const char *bucket, const th_http_req *r, th_http_resp *a)
{
	char prefix[2048] = "", token[2048] = "", after[2048] = "", when[32];
	atrest__buf b = ATREST__BUF_INIT;
	int shown = 0, enc;
	const char *last = NULL;

	qparam(r->target, "prefix", prefix, sizeof(prefix));
	qparam(r->target, "start-after", after, sizeof(after));
	if (qparam(r->target, "continuation-token", token, sizeof(token))) {
		size_t n = strlen(token) / 2;
		for (size_t i = 0; i < n && i + 1 < sizeof(after); i++) {
			char h[3] = {token[2 * i], token[2 * i + 1], 0};
			after[i] = (char)strtol(h, NULL, 16);
		}
		after[n < sizeof(after) ? n : sizeof(after) - 1] = '\0';
	}
	enc = qparam(r->target, "encoding-type", when, sizeof(when)) &&
		!strcmp(when, "url");
	qsort(d->o, d->n, sizeof(*d->o), cmp_obj);
	atrest__buf_puts(&b,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	if (enc)
		atrest__buf_puts(&b, "<EncodingType>url</EncodingType>");
	for (size_t i = 0; i < d->n; i++) {
		struct obj *o = &d->o[i];
		if (strcmp(o->bucket, bucket) ||
			strncmp(o->key, prefix, strlen(prefix)) ||
			strcmp(o->key, after) <= 0)
			continue;
		if (shown == d->page) { /* the token: the last key in hex */
			atrest__buf_puts(&b,
				"<IsTruncated>true</IsTruncated>"
				"<NextContinuationToken>");
			atrest__buf_hex(&b, (const uint8_t *)last, strlen(last));
			atrest__buf_puts(&b, "</NextContinuationToken>");
			break;
		}
		iso_time(when, o->mtime);
		atrest__buf_puts(&b, "<Contents><Key>");
		if (enc)
			key_enc(&b, o->key);
		else
			atrest__buf_puts(&b, o->key);
		atrest__buf_printf(&b,
			"</Key><LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
			"<Size>%zu</Size></Contents>",
			when, o->etag, o->len);
		last = o->key;
		shown++;
	}
	atrest__buf_puts(&b, "</ListBucketResult>");
	set_body(a, &b);
}

static void list_uploads(
	s3d *d, const char *bucket, const th_http_req *r, th_http_resp *a)
{
	atrest__buf b = ATREST__BUF_INIT;
	char prefix[2048] = "", when[32];

	qparam(r->target, "prefix", prefix, sizeof(prefix));
	atrest__buf_puts(&b,
		"<?xml version=\"1.0\"?><ListMultipartUploadsResult>"
		"<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>");
	for (int i = 0; i < d->nu; i++) {
		struct upload *u = d->u[i];
		if (strcmp(u->bucket, bucket) || strncmp(u->key, prefix, strlen(prefix)))
			continue;
		iso_time(when, u->initiated);
		atrest__buf_puts(&b, "<Upload><Key>");
		key_enc(&b, u->key);
		atrest__buf_printf(&b,
			"</Key><UploadId>%s</UploadId><Initiated>%s</Initiated></Upload>",
			u->id, when);
	}
	atrest__buf_puts(&b, "</ListMultipartUploadsResult>");
	set_body(a, &b);
}

/* The keys of a <Delete> body, removed (a tiny scan: test input only). */
static void delete_objects(
	s3d *d, const char *bucket, const th_http_req *r, th_http_resp *a)
{
	atrest__buf b = ATREST__BUF_INIT;
	const char *p = r->body;

	while ((p = strstr(p, "<Key>")) != NULL) {
		const char *e = strstr(p, "</Key>");
		char key[2048];
		atrest__buf k = ATREST__BUF_INIT;
		struct obj *o;
		if (!e)
			break;
		/* Undo the five entities. */
		for (const char *c = p + 5; c < e; c++) {
			static const char *ent[] = {
				"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
			static const char rep[] = "&<>\"'";
			int hit = 0;
			for (int i = 0; i < 5 && !hit; i++)
				if (!strncmp(c, ent[i], strlen(ent[i]))) {
					atrest__buf_putc(&k, rep[i]);
					c += strlen(ent[i]) - 1;
					hit = 1;
				}
			if (!hit)
				atrest__buf_putc(&k, *c);
		}
		snprintf(key, sizeof(key), "%s", k.data ? k.data : "");
		atrest__buf_free(&k);
		if ((o = find(d, bucket, key)) != NULL)
			drop_obj(d, o);
		p = e;
	}
	atrest__buf_puts(&b, "<?xml version=\"1.0\"?><DeleteResult></DeleteResult>");
	set_body(a, &b);
}

static struct upload *upload_of(s3d *d, const th_http_req *r, int *at)
{
	char id[64];

	if (!qparam(r->target, "uploadId", id, sizeof(id)))
		return NULL;
	for (int i = 0; i < d->nu; i++)
		if (!strcmp(d->u[i]->id, id)) {
			*at = i;
			return d->u[i];
		}
	return NULL;
}

static void upload_free(struct upload *u)
{
	for (int i = 0; i < 64; i++)
		free(u->part[i]);
	free(u->bucket);
	free(u->key);
	free(u);
}

/* A condition on the key's current version: 0 to go on, else answered. */
static int condition(s3d *d, struct obj *o, const th_http_req *r, th_http_resp *a)
{
	char v[128], q[64];

	if (d->ignore)
		return 0;
	if (th_http_header(r, "If-None-Match", v, sizeof(v)) && !strcmp(v, "*") && o) {
		error(a, 412, "PreconditionFailed");
		return 1;
	}
	if (th_http_header(r, "If-Match", v, sizeof(v))) {
		snprintf(q, sizeof(q), "\"%s\"", o ? o->etag : "");
		if (!o) {
			error(a, 404, "NoSuchKey");
			return 1;
		}
		if (d->bare ? strcmp(v, o->etag) != 0
			    : strcmp(v, q) != 0 && strcmp(v, o->etag)) {
			error(a, 412, "PreconditionFailed");
			return 1;
		}
	}
	return 0;
}

static void put_object(s3d *d, const char *bucket, const char *key, const th_http_req *r,
	th_http_resp *a)
{
	char etag[40], nonce[64] = "";
	uint8_t *data;

	if (condition(d, find(d, bucket, key), r, a))
		return;
	th_http_header(r, "x-amz-meta-atrest-put", nonce, sizeof(nonce));
	md5_hex(etag, r->body, r->body_len);
	data = malloc(r->body_len ? r->body_len : 1);
	memcpy(data, r->body, r->body_len);
	store(d, bucket, key, data, r->body_len, etag, nonce);
	snprintf(a->headers, sizeof(a->headers), "ETag: \"%s\"\r\n", etag);
}

static void get_object(
	s3d *d, struct obj *o, const th_http_req *r, th_http_resp *a, int head)
{
	char range[128], when[64];
	unsigned long long s = 0, e = 0;
	time_t t = (time_t)o->mtime;
	struct tm tm;
	size_t n = o->len;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(a->headers, sizeof(a->headers),
		"ETag: \"%s\"\r\nLast-Modified: %s\r\n%s%s%s", o->etag, when,
		*o->nonce ? "x-amz-meta-atrest-put: " : "", o->nonce,
		*o->nonce ? "\r\n" : "");
	if (!head && th_http_header(r, "Range", range, sizeof(range)) &&
		sscanf(range, "bytes=%llu-%llu", &s, &e) == 2) {
		if (s >= o->len) {
			a->headers[0] = '\0';
			error(a, 416, "InvalidRange");
			return;
		}
		e = e < o->len ? e : o->len - 1;
		a->status = 206;
		snprintf(a->headers + strlen(a->headers),
			sizeof(a->headers) - strlen(a->headers),
			"Content-Range: bytes %llu-%llu/%zu\r\n", s, e, o->len);
		n = (size_t)(e - s + 1);
	}
	if (head) {
		snprintf(a->headers + strlen(a->headers),
			sizeof(a->headers) - strlen(a->headers), "X-Length: %zu\r\n",
			o->len);
		a->big = 0;
		return;
	}
	a->heap = malloc(n ? n : 1);
	memcpy(a->heap, o->data + s, n);
	a->body_len = n;
	d->bytes_out += n;
	if (n == 0)
		a->body[0] = '\0';
}

static void create_upload(s3d *d, const char *bucket, const char *key,
	const th_http_req *r, th_http_resp *a)
{
	struct upload *u = calloc(1, sizeof(*u));
	atrest__buf b = ATREST__BUF_INIT;

	u->bucket = strdup(bucket);
	u->key = strdup(key);
	snprintf(u->id, sizeof(u->id), "up-%ld~x+y", ++d->seq);
	u->initiated = time(NULL);
	th_http_header(r, "x-amz-meta-atrest-put", u->nonce, sizeof(u->nonce));
	d->u[d->nu++] = u;
	atrest__buf_printf(&b,
		"<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>%s</Bucket>"
		"<Key>k</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>",
		bucket, u->id);
	set_body(a, &b);
}

static void upload_part(s3d *d, const th_http_req *r, th_http_resp *a)
{
	char num[16];
	int at, k;
	struct upload *u = upload_of(d, r, &at);

	if (!u || !qparam(r->target, "partNumber", num, sizeof(num)) ||
		(k = atoi(num)) < 1 || k > 64) {
		error(a, 404, "NoSuchUpload");
		return;
	}
	free(u->part[k - 1]);
	u->part[k - 1] = malloc(r->body_len ? r->body_len : 1);
	memcpy(u->part[k - 1], r->body, r->body_len);
	u->plen[k - 1] = r->body_len;
	md5_hex(u->petag[k - 1], r->body, r->body_len);
	snprintf(a->headers, sizeof(a->headers), "ETag: \"%s\"\r\n", u->petag[k - 1]);
}

/* Parts 1..n as the body lists them, in order, ETags matching; the
 * object is their concatenation. */
static void complete_upload(s3d *d, const char *bucket, const char *key,
	const th_http_req *r, th_http_resp *a)
{
	atrest__buf b = ATREST__BUF_INIT, all = ATREST__BUF_INIT;
	int at, k = 0;
	struct upload *u = upload_of(d, r, &at);
	char want[64], etag[48];
	size_t len;
	const char *p = r->body;

	if (!u) {
		error(a, 404, "NoSuchUpload");
		return;
	}
	while ((p = strstr(p, "<PartNumber>")) != NULL) {
		int num = atoi(p + 12);
		const char *e = strstr(p, "<ETag>");
		snprintf(want, sizeof(want), "\"%s\"",
			num >= 1 && num <= 64 ? u->petag[num - 1] : "");
		if (num != k + 1 || !e || strncmp(e + 6, want, strlen(want)) != 0 ||
			!u->part[num - 1] || (k > 0 && u->plen[k - 1] < (5u << 20))) {
			error(a, 400, num != k + 1 ? "InvalidPartOrder" : "InvalidPart");
			atrest__buf_free(&all);
			return;
		}
		atrest__buf_put(&all, u->part[num - 1], u->plen[num - 1]);
		k = num;
		p = e;
	}
	md5_hex(etag, all.data ? all.data : "", all.len);
	snprintf(etag + 32, sizeof(etag) - 32, "-%d", k);
	len = all.len; /* before take empties the buffer */
	store(d, bucket, key, (uint8_t *)atrest__buf_take(&all), len, etag, u->nonce);
	atrest__buf_free(&all);
	d->u[at] = d->u[--d->nu];
	upload_free(u);
	atrest__buf_printf(&b,
		"<?xml version=\"1.0\"?><CompleteMultipartUploadResult><ETag>"
		"&quot;%s&quot;</ETag></CompleteMultipartUploadResult>",
		etag);
	set_body(a, &b);
}

/* ---- dispatch */

static const char *classify(const th_http_req *r, int has_key)
{
	char v[8];
	/* Parameters by name: a key or prefix may hold "uploads" too. */
	int uploads = qparam(r->target, "uploads", v, sizeof(v)),
	    upload_id = qparam(r->target, "uploadId", v, sizeof(v)),
	    del = qparam(r->target, "delete", v, sizeof(v));

	if (!has_key) {
		if (!strcmp(r->method, "HEAD"))
			return "HeadBucket";
		if (!strcmp(r->method, "PUT"))
			return "CreateBucket";
		if (!strcmp(r->method, "POST") && del)
			return "DeleteObjects";
		if (!strcmp(r->method, "GET"))
			return uploads ? "ListMultipartUploads" : "ListObjectsV2";
		return "Unknown";
	}
	if (!strcmp(r->method, "POST"))
		return uploads ? "CreateMultipartUpload" : "CompleteMultipartUpload";
	if (!strcmp(r->method, "PUT"))
		return upload_id ? "UploadPart" : "PutObject";
	if (!strcmp(r->method, "DELETE"))
		return upload_id ? "AbortMultipartUpload" : "DeleteObject";
	if (!strcmp(r->method, "HEAD"))
		return "HeadObject";
	return "GetObject";
}

static void object_op(s3d *d, const char *op, const char *bucket, const char *key,
	const th_http_req *r, th_http_resp *a)
{
	struct obj *o = find(d, bucket, key);
	int at;

	if (!has_bucket(d, bucket)) {
		error(a, 404, "NoSuchBucket");
		if (!strcmp(op, "HeadObject"))
			a->body[0] = '\0';
	} else if (!strcmp(op, "PutObject")) {
		put_object(d, bucket, key, r, a);
	} else if (!strcmp(op, "GetObject") || !strcmp(op, "HeadObject")) {
		if (o)
			get_object(d, o, r, a, op[0] == 'H');
		else if (d->deny_missing)
			error(a, 403, "AccessDenied");
		else
			error(a, 404, "NoSuchKey");
		if (op[0] == 'H' && a->status >= 400)
			a->body[0] = '\0';
	} else if (!strcmp(op, "DeleteObject")) {
		if (o)
			drop_obj(d, o);
		a->status = 204;
	} else if (!strcmp(op, "CreateMultipartUpload")) {
		create_upload(d, bucket, key, r, a);
	} else if (!strcmp(op, "UploadPart")) {
		upload_part(d, r, a);
	} else if (!strcmp(op, "CompleteMultipartUpload")) {
		complete_upload(d, bucket, key, r, a);
	} else if (!strcmp(op, "AbortMultipartUpload")) {
		struct upload *u = upload_of(d, r, &at);
		if (u) {
			d->u[at] = d->u[--d->nu];
			upload_free(u);
		}
		a->status = u ? 204 : 404;
	}
}

static void bucket_op(
	s3d *d, const char *op, const char *bucket, const th_http_req *r, th_http_resp *a)
{
	if (!strcmp(op, "CreateBucket")) {
		if (!has_bucket(d, bucket) && d->nb < 16)
			snprintf(d->buckets[d->nb++], 64, "%.63s", bucket);
	} else if (!strcmp(op, "HeadBucket")) {
		a->status = has_bucket(d, bucket) ? 200 : 404;
	} else if (!has_bucket(d, bucket)) {
		error(a, 404, "NoSuchBucket");
	} else if (!strcmp(op, "ListObjectsV2")) {
		list_objects(d, bucket, r, a);
	} else if (!strcmp(op, "ListMultipartUploads")) {
		list_uploads(d, bucket, r, a);
	} else if (!strcmp(op, "DeleteObjects")) {
		delete_objects(d, bucket, r, a);
	}
}

/* A knob armed for op: its index, or -1. */
static int armed(s3d *d, const char *op)
{
	for (int i = 0; i < d->nk; i++)
		if (d->k[i].count > 0 &&
			(!strcmp(d->k[i].op, op) || !strcmp(d->k[i].op, "*"))) {
			d->k[i].count--;
			return i;
		}
	return -1;
}

static void handle(const th_http_req *r, th_http_resp *a, void *arg)
{
	s3d *d = arg;
	char bucket[128], key[2048], path[2048];
	const char *p = r->target + 1, *slash;
	const char *op;
	int i, k, delay;

	snprintf(path, sizeof(path), "%.*s", (int)strcspn(p, "?"), p);
	slash = strchr(path, '/');
	snprintf(bucket, sizeof(bucket), "%.*s",
		(int)(slash ? slash - path : (long)strlen(path)), path);
	pct_decode(
		key, sizeof(key), slash ? slash + 1 : "", slash ? strlen(slash + 1) : 0);
	op = classify(r, *key != '\0');
	i = op_index(op);
	pthread_mutex_lock(&d->mu);
	d->calls[i]++;
	d->active[i]++;
	d->most[i] = d->active[i] > d->most[i] ? d->active[i] : d->most[i];
	snprintf(d->last_headers[i], sizeof(d->last_headers[i]), "%s", r->headers);
	delay = d->delay_ms;
	k = armed(d, op);
	pthread_mutex_unlock(&d->mu);
	if (delay) /* requests overlap here (the most at once) */
		nanosleep(&(struct timespec){delay / 1000, (delay % 1000) * 1000000L},
			NULL);
	pthread_mutex_lock(&d->mu);
	if (verify(d, r, a) == 0) {
		if (k >= 0 && d->k[k].status) {
			error(a, d->k[k].status, d->k[k].code);
		} else if (k >= 0 && d->k[k].drop && !d->k[k].applied) {
			a->drop = 1; /* lost before it took effect */
		} else {
			if (*key)
				object_op(d, op, bucket, key, r, a);
			else
				bucket_op(d, op, bucket, r, a);
			if (k >= 0) { /* took effect, the answer is lost or cut */
				a->drop = d->k[k].drop;
				a->cut = d->k[k].cut;
			}
		}
	}
	d->active[i]--;
	pthread_mutex_unlock(&d->mu);
}

/* ---- the knobs and counters */

s3d *s3d_start(const char *access_key, const char *secret)
{
	s3d *d = calloc(1, sizeof(*d));

	pthread_mutex_init(&d->mu, NULL);
	snprintf(d->access, sizeof(d->access), "%s", access_key);
	snprintf(d->secret, sizeof(d->secret), "%s", secret);
	d->page = 1000;
	d->h = th_httpd_start(handle, d);
	th_httpd_url(d->endpoint, sizeof(d->endpoint), d->h, "");
	return d;
}

void s3d_stop(s3d *d)
{
	th_httpd_stop(d->h);
	while (d->n)
		drop_obj(d, &d->o[d->n - 1]);
	free(d->o);
	for (int i = 0; i < d->nu; i++)
		upload_free(d->u[i]);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

const char *s3d_endpoint(const s3d *d)
{
	return d->endpoint;
}

#define LOCKED(d, stmt)                         \
	do {                                    \
		pthread_mutex_lock(&(d)->mu);   \
		stmt;                           \
		pthread_mutex_unlock(&(d)->mu); \
	} while (0)

void s3d_page(s3d *d, int n)
{
	LOCKED(d, d->page = n);
}

void s3d_bare_if_match(s3d *d, int on)
{
	LOCKED(d, d->bare = on);
}

void s3d_ignore_conditions(s3d *d, int on)
{
	LOCKED(d, d->ignore = on);
}

void s3d_deny_missing(s3d *d, int on)
{
	LOCKED(d, d->deny_missing = on);
}

void s3d_delay(s3d *d, int ms)
{
	LOCKED(d, d->delay_ms = ms);
}

static void arm(s3d *d, const char *op, int count, int status, const char *code, int drop,
	int applied, size_t cut)
{
	pthread_mutex_lock(&d->mu);
	int at = 0;
	while (at < d->nk && d->k[at].count > 0)
		at++;
	if (at < 8) {
		struct knob *k = &d->k[at];
		d->nk = at == d->nk ? d->nk + 1 : d->nk;
		snprintf(k->op, sizeof(k->op), "%s", op);
		snprintf(k->code, sizeof(k->code), "%s", code ? code : "");
		k->count = count;
		k->status = status;
		k->drop = drop;
		k->applied = applied;
		k->cut = cut;
	}
	pthread_mutex_unlock(&d->mu);
}

void s3d_fail(s3d *d, const char *op, int count, int status, const char *code)
{
	arm(d, op, count, status, code, 0, 0, 0);
}

void s3d_drop(s3d *d, const char *op, int count, int applied)
{
	arm(d, op, count, 0, NULL, 1, applied, 0);
}

void s3d_cut(s3d *d, const char *op, int count, size_t cut)
{
	arm(d, op, count, 0, NULL, 0, 1, cut);
}

long s3d_calls(s3d *d, const char *op)
{
	long n = 0;

	pthread_mutex_lock(&d->mu);
	for (int i = 0; OPS[i]; i++)
		if (!strcmp(op, "*") || !strcmp(op, OPS[i]))
			n += d->calls[i];
	pthread_mutex_unlock(&d->mu);
	return n;
}

int s3d_most_at_once(s3d *d, const char *op)
{
	int n;

	LOCKED(d, n = d->most[op_index(op)]);
	return n;
}

uint64_t s3d_bytes_out(s3d *d)
{
	uint64_t n;

	LOCKED(d, n = d->bytes_out);
	return n;
}

int s3d_uploads(s3d *d)
{
	int n;

	LOCKED(d, n = d->nu);
	return n;
}

void s3d_age_uploads(s3d *d, long secs)
{
	LOCKED(d, for (int i = 0; i < d->nu; i++) d->u[i]->initiated -= secs);
}

void s3d_poke(s3d *d, const char *bucket, const char *key, const void *p, size_t n)
{
	uint8_t *data = malloc(n ? n : 1);
	char etag[40];

	memcpy(data, p, n);
	md5_hex(etag, p, n);
	LOCKED(d, store(d, bucket, key, data, n, etag, NULL));
}

uint8_t *s3d_peek(s3d *d, const char *bucket, const char *key, size_t *n)
{
	uint8_t *out = NULL;
	struct obj *o;

	pthread_mutex_lock(&d->mu);
	if ((o = find(d, bucket, key)) != NULL) {
		out = malloc(o->len ? o->len : 1);
		memcpy(out, o->data, o->len);
		*n = o->len;
	}
	pthread_mutex_unlock(&d->mu);
	return out;
}

const char *s3d_last_header(
	s3d *d, const char *op, const char *name, char *out, size_t cap)
{
	th_http_req r;
	const char *v;

	memset(&r, 0, sizeof(r));
	LOCKED(d,
		snprintf(r.headers, sizeof(r.headers), "%s",
			d->last_headers[op_index(op)]));
	v = th_http_header(&r, name, out, cap);
	return v;
}
