/*
 * AWS Signature Version 4 (sigv4.h): canonical forms, signing key and
 * signatures, Authorization and presigned-URL parsing, and verification.
 * Written from AWS's published description of the algorithm.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "common.h"
#include "crypto.h"
#include "sigv4.h"

#define SIGV4_MAX_HEADERS 256
#define SIGV4_MAX_PARAMS 1024

int atrest__sigv4_amz_date(char out[17], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	ENSURE(gmtime_r(&tt, &tm) && strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) == 16,
		ATREST_EINVAL, "time out of range for a SigV4 date");
	return 0;
}

int atrest__sigv4_parse_amz_date(int64_t *out, const char *s)
{
	struct tm tm = {0};
	const char *end;

	*out = 0;
	if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
		return ATREST_EINVAL;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)s[i]))
			return ATREST_EINVAL;
	end = strptime(s, "%Y%m%dT%H%M%SZ", &tm);
	if (!end || *end)
		return ATREST_EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int atrest__sigv4_scope(char *out, size_t cap, const char *amz_date, const char *region,
	const char *service)
{
	int n;

	ENSURE(strlen(amz_date) == 16, ATREST_EINVAL, "bad SigV4 date");
	n = snprintf(out, cap, "%.8s/%s/%s/aws4_request", amz_date, region, service);
	ENSURE(n > 0 && (size_t)n < cap, ATREST_EINVAL, "SigV4 scope too long");
	return 0;
}

/* Percent-decode n bytes of s into b ('%' not followed by two hex digits stays). */
static void pct_decode(atrest__buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c;

		if (s[i] == '%' && i + 2 < n && atrest__unhex_n(&c, 1, s + i + 1) == 0) {
			atrest__buf_putc(b, (char)c);
			i += 2;
		} else {
			atrest__buf_putc(b, s[i]);
		}
	}
}

static int is_dots(const char *s, size_t n)
{
	return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

/*
 * Dot segments and empty segments removed (RFC 3986 section 5.2.4, plus
 * "//" merged), a trailing slash kept.
 */
static int normalize_path(atrest__buf *out, const char *path)
{
	size_t n = strlen(path), nseg = 0, *start, *len;
	const char *last = strrchr(path, '/');
	int trailing;

	last = last ? last + 1 : path;
	trailing = n > 0 && (path[n - 1] == '/' || is_dots(last, strlen(last)));
	start = calloc(n + 1, sizeof(*start));
	len = calloc(n + 1, sizeof(*len));
	if (!start || !len) {
		free(start);
		free(len);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && path[j] != '/')
			j++;
		if (j - i == 2 && is_dots(path + i, 2))
			nseg -= nseg > 0;
		else if (j > i && !is_dots(path + i, j - i)) {
			start[nseg] = i;
			len[nseg++] = j - i;
		}
		i = j + 1;
	}
	atrest__buf_putc(out, '/');
	for (size_t k = 0; k < nseg; k++) {
		atrest__buf_put(out, path + start[k], len[k]);
		if (k + 1 < nseg || trailing)
			atrest__buf_putc(out, '/');
	}
	free(start);
	free(len);
	return atrest__buf_check(out);
}

int atrest__sigv4_canonical_uri(char **out, const char *path, int flags)
{
	atrest__buf tmp = ATREST__BUF_INIT, b = ATREST__BUF_INIT;
	int rc;

	*out = NULL;
	if (!path || !*path)
		path = "/";
	if (flags & ATREST__SIGV4_S3) {
		pct_decode(&tmp, path, strlen(path));
	} else if (flags & ATREST__SIGV4_NO_NORMALIZE) {
		atrest__buf_puts(&tmp, path);
	} else {
		rc = normalize_path(&tmp, path);
		if (rc < 0) {
			atrest__buf_free(&tmp);
			return rc;
		}
	}
	GUARD_OUT(atrest__buf_check(&tmp));
	atrest__buf_urlenc(&b, tmp.data, tmp.len, 1);
	GUARD_OUT(atrest__buf_check(&b));
	*out = atrest__buf_take(&b);
out:
	atrest__buf_free(&tmp);
	atrest__buf_free(&b);
	return rc;
}

/* ---- the canonical query */

struct param {
	char *name, *value; /* encoded */
};

static int param_cmp(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/* Decode then encode again one name or value. */
static char *reencode(const char *s, size_t n)
{
	atrest__buf dec = ATREST__BUF_INIT, enc = ATREST__BUF_INIT;
	char *r = NULL;

	pct_decode(&dec, s, n);
	if (atrest__buf_check(&dec) == 0) {
		atrest__buf_urlenc(&enc, dec.data, dec.len, 0);
		r = atrest__buf_take(&enc);
	}
	atrest__buf_free(&dec);
	atrest__buf_free(&enc);
	return r;
}

/* Split a query into encoded parameters; the decoded name is compared to skip. */
static int split_query(struct param **out, size_t *count, const char *q, const char *skip)
{
	struct param *p = NULL;
	size_t n = 0;

	*out = NULL;
	*count = 0;
	for (const char *s = q; s && *s;) {
		const char *amp = strchr(s, '&'), *eq;
		size_t len = amp ? (size_t)(amp - s) : strlen(s), nl;

		eq = memchr(s, '=', len);
		nl = eq ? (size_t)(eq - s) : len;
		if (len > 0 && n >= SIGV4_MAX_PARAMS)
			goto too_many;
		if (len > 0) {
			struct param *np = realloc(p, (n + 1) * sizeof(*p));
			if (!np)
				goto oom;
			p = np;
			p[n].name = reencode(s, nl);
			p[n].value = eq ? reencode(eq + 1, len - nl - 1) : strdup("");
			n++;
			if (!p[n - 1].name || !p[n - 1].value)
				goto oom;
			if (skip && strcmp(p[n - 1].name, skip) == 0) {
				free(p[n - 1].name);
				free(p[n - 1].value);
				n--;
			}
		}
		s = amp ? amp + 1 : s + len;
	}
	*out = p;
	*count = n;
	return 0;
too_many:
oom:
	for (size_t i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
	return atrest__error(n >= SIGV4_MAX_PARAMS ? ATREST_EINVAL : ATREST_ERROR,
		n >= SIGV4_MAX_PARAMS ? "query has too many parameters"
				      : "out of memory");
}

int atrest__sigv4_canonical_query(char **out, const char *query, const char *skip)
{
	atrest__buf b = ATREST__BUF_INIT;
	struct param *p;
	size_t n;

	*out = NULL;
	GUARD(split_query(&p, &n, query, skip));
	if (n > 1)
		qsort(p, n, sizeof(*p), param_cmp);
	for (size_t i = 0; i < n; i++) {
		atrest__buf_printf(&b, "%s%s=%s", i ? "&" : "", p[i].name, p[i].value);
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
	*out = atrest__buf_take(&b);
	atrest__buf_free(&b);
	ENSURE(*out, ATREST_ERROR, "out of memory");
	return 0;
}

/* ---- canonical headers */

struct hdr {
	char *name; /* lowercase */
	const char *value;
	size_t order;
};

static int hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->order > y->order) - (x->order < y->order);
}

static int is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A value trimmed, runs of white space (folded lines too) as one space. */
static void put_folded(atrest__buf *b, const char *v)
{
	int space = 0, any = 0;

	for (; *v; v++) {
		if (is_ws((unsigned char)*v)) {
			space = any;
			continue;
		}
		if (space)
			atrest__buf_putc(b, ' ');
		atrest__buf_putc(b, *v);
		space = 0;
		any = 1;
	}
}

/* Is name in the ';'-separated list? */
static int in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *s = list; *s;) {
		const char *e = strchr(s, ';');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len == n && memcmp(s, name, n) == 0)
			return 1;
		s += len + (e != NULL);
	}
	return 0;
}

static int lower_headers(struct hdr **out, const atrest__sigv4_hdr *h, size_t n)
{
	struct hdr *v = NULL;

	ENSURE(n <= SIGV4_MAX_HEADERS, ATREST_EINVAL, "request has too many headers");
	v = calloc(n ? n : 1, sizeof(*v));
	ENSURE(v, ATREST_ERROR, "out of memory");
	for (size_t i = 0; i < n; i++) {
		v[i].name = strdup(h[i].name);
		v[i].value = h[i].value ? h[i].value : "";
		v[i].order = i;
		if (!v[i].name) {
			for (size_t j = 0; j < i; j++)
				free(v[j].name);
			free(v);
			return atrest__error(ATREST_ERROR, "out of memory");
		}
		for (char *c = v[i].name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), hdr_cmp);
	*out = v;
	return 0;
}

/* Every name of signed_list must be among the (sorted) headers. */
static int check_signed(const struct hdr *v, size_t n, const char *list)
{
	for (const char *s = list; *s;) {
		const char *e = strchr(s, ';');
		size_t len = e ? (size_t)(e - s) : strlen(s), i;

		for (i = 0; i < n; i++)
			if (strlen(v[i].name) == len && memcmp(v[i].name, s, len) == 0)
				break;
		ENSURE(i < n, ATREST_EKEY, "signed header '%.*s' is not in the request",
			(int)(len < 64 ? len : 64), s);
		s += len + (e != NULL);
	}
	return 0;
}

int atrest__sigv4_canonical_headers(char **out, char **signed_out,
	const atrest__sigv4_hdr *h, size_t n, const char *signed_list)
{
	atrest__buf b = ATREST__BUF_INIT, sl = ATREST__BUF_INIT;
	struct hdr *v = NULL;
	int rc;

	*out = NULL;
	if (signed_out)
		*signed_out = NULL;
	GUARD(lower_headers(&v, h, n));
	GUARD_OUT(signed_list ? check_signed(v, n, signed_list) : 0);
	for (size_t i = 0; i < n; i++) {
		int first = i == 0 || strcmp(v[i].name, v[i - 1].name) != 0;

		if (signed_list && !in_list(signed_list, v[i].name))
			continue;
		if (first) {
			atrest__buf_printf(
				&b, "%s%s:", i && b.len ? "\n" : "", v[i].name);
			atrest__buf_printf(&sl, "%s%s", sl.len ? ";" : "", v[i].name);
		} else {
			atrest__buf_putc(&b, ',');
		}
		put_folded(&b, v[i].value);
	}
	if (b.len)
		atrest__buf_putc(&b, '\n');
	GUARD_OUT(atrest__buf_check(&b));
	GUARD_OUT(atrest__buf_check(&sl));
	*out = atrest__buf_take(&b);
	if (signed_out)
		*signed_out = atrest__buf_take(&sl);
out:
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
	atrest__buf_free(&b);
	atrest__buf_free(&sl);
	return rc;
}

/* ---- canonical request, string to sign, signature */

int atrest__sigv4_canonical_request(char **out, char **signed_out,
	const atrest__sigv4_msg *m, const char *signed_list, int flags)
{
	char *uri = NULL, *query = NULL, *hdrs = NULL, *sl = NULL;
	atrest__buf b = ATREST__BUF_INIT;
	int rc;

	*out = NULL;
	if (signed_out)
		*signed_out = NULL;
	ENSURE(m->method && m->payload_hash, ATREST_EINVAL,
		"SigV4 request without method or payload hash");
	GUARD_OUT(atrest__sigv4_canonical_uri(&uri, m->path, flags));
	GUARD_OUT(atrest__sigv4_canonical_query(&query, m->query, NULL));
	GUARD_OUT(atrest__sigv4_canonical_headers(
		&hdrs, &sl, m->headers, m->nheaders, signed_list));
	atrest__buf_printf(&b, "%s\n%s\n%s\n%s\n%s\n%s", m->method, uri, query, hdrs, sl,
		m->payload_hash);
	GUARD_OUT(atrest__buf_check(&b));
	*out = atrest__buf_take(&b);
	ENSURE_OUT(*out, ATREST_ERROR, "out of memory");
	if (signed_out) {
		*signed_out = sl;
		sl = NULL;
	}
out:
	free(uri);
	free(query);
	free(hdrs);
	free(sl);
	atrest__buf_free(&b);
	return rc;
}

int atrest__sigv4_string_to_sign(char **out, const char *amz_date, const char *scope,
	const char *canonical_request)
{
	atrest__buf b = ATREST__BUF_INIT;
	uint8_t h[32];

	*out = NULL;
	GUARD(atrest__sha256(h, canonical_request, strlen(canonical_request)));
	atrest__buf_printf(&b, "%s\n%s\n%s\n", ATREST__SIGV4_ALGORITHM, amz_date, scope);
	atrest__buf_hex(&b, h, sizeof(h));
	*out = atrest__buf_take(&b);
	atrest__buf_free(&b);
	ENSURE(*out, ATREST_ERROR, "out of memory");
	return 0;
}

int atrest__sigv4_signing_key(uint8_t out[32], const uint8_t *secret, size_t secret_len,
	const char *date8, const char *region, const char *service)
{
	const char *steps[4] = {date8, region, service, "aws4_request"};
	atrest__secret *k;
	int rc = 0;

	ENSURE(secret_len < 1024 && strlen(date8) == 8, ATREST_EINVAL,
		"bad SigV4 secret or date");
	GUARD(atrest__secret_new(&k, secret_len + 4));
	memcpy(k->data, "AWS4", 4);
	memcpy(k->data + 4, secret, secret_len);
	GUARD_OUT(atrest__hmac_sha256(out, k->data, k->len, steps[0], strlen(steps[0])));
	for (int i = 1; i < 4; i++)
		GUARD_OUT(atrest__hmac_sha256(out, out, 32, steps[i], strlen(steps[i])));
out:
	atrest__secret_free(k);
	if (rc < 0)
		atrest__wipe(out, 32);
	return rc;
}

int atrest__sigv4_signature(
	char out[65], const uint8_t key[32], const char *string_to_sign)
{
	uint8_t mac[32];

	static const char digits[] = "0123456789abcdef";

	GUARD(atrest__hmac_sha256(mac, key, 32, string_to_sign, strlen(string_to_sign)));
	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[mac[i] >> 4];
		out[2 * i + 1] = digits[mac[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

/* Signature over the lines of a chained string to sign. */
static int chained(char out[65], const uint8_t key[32], const char *algo,
	const char *amz_date, const char *scope, const char *prev, const char *tail)
{
	atrest__buf b = ATREST__BUF_INIT;
	int rc;

	atrest__buf_printf(&b, "%s\n%s\n%s\n%s\n%s", algo, amz_date, scope, prev, tail);
	rc = atrest__buf_check(&b);
	if (rc == 0)
		rc = atrest__sigv4_signature(out, key, b.data);
	atrest__buf_free(&b);
	return rc;
}

int atrest__sigv4_chunk_signature(char out[65], const uint8_t key[32],
	const char *amz_date, const char *scope, const char *prev_signature,
	const char *chunk_hash)
{
	char tail[140];

	snprintf(tail, sizeof(tail), "%s\n%s", ATREST__SIGV4_EMPTY_SHA256, chunk_hash);
	return chained(out, key, "AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope,
		prev_signature, tail);
}

int atrest__sigv4_trailer_signature(char out[65], const uint8_t key[32],
	const char *amz_date, const char *scope, const char *prev_signature,
	const char *trailer_hash)
{
	return chained(out, key, "AWS4-HMAC-SHA256-TRAILER", amz_date, scope,
		prev_signature, trailer_hash);
}

/* The signature of m with the given signed headers (NULL: all). */
static int sign_msg(char sig[65], char **signed_out, const atrest__sigv4_msg *m,
	const char *signed_list, const uint8_t *secret, size_t secret_len,
	const char *amz_date, const char *region, const char *service, int flags)
{
	char scope[200], date8[9], *creq = NULL, *sts = NULL;
	atrest__secret *key = NULL;
	int rc;

	GUARD(atrest__sigv4_scope(scope, sizeof(scope), amz_date, region, service));
	GUARD_OUT(atrest__sigv4_canonical_request(
		&creq, signed_out, m, signed_list, flags));
	GUARD_OUT(atrest__sigv4_string_to_sign(&sts, amz_date, scope, creq));
	memcpy(date8, amz_date, 8);
	date8[8] = '\0';
	GUARD_OUT(atrest__secret_new(&key, 32));
	GUARD_OUT(atrest__sigv4_signing_key(
		key->data, secret, secret_len, date8, region, service));
	GUARD_OUT(atrest__sigv4_signature(sig, key->data, sts));
out:
	atrest__secret_free(key);
	free(creq);
	free(sts);
	return rc;
}

/* ---- signing client requests */

int atrest__sigv4_authorization(char **out, const atrest__sigv4_msg *m,
	const atrest__sigv4_creds *c, const char *amz_date, const char *region,
	const char *service, int flags)
{
	atrest__buf b = ATREST__BUF_INIT;
	char sig[65], scope[200], *sl = NULL;

	*out = NULL;
	GUARD(atrest__sigv4_scope(scope, sizeof(scope), amz_date, region, service));
	GUARD(sign_msg(sig, &sl, m, NULL, c->secret, c->secret_len, amz_date, region,
		service, flags));
	atrest__buf_printf(&b, "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		ATREST__SIGV4_ALGORITHM, c->access_key, scope, sl, sig);
	free(sl);
	*out = atrest__buf_take(&b);
	atrest__buf_free(&b);
	ENSURE(*out, ATREST_ERROR, "out of memory");
	return 0;
}

/* The X-Amz-* parameters of a presigned URL, before the signature. */
static void presign_params(atrest__buf *q, const atrest__sigv4_msg *m,
	const atrest__sigv4_creds *c, const char *amz_date, const char *scope,
	const char *signed_list, long expires)
{
	char cred[400];

	snprintf(cred, sizeof(cred), "%s/%s", c->access_key, scope);
	if (m->query && *m->query)
		atrest__buf_printf(q, "%s&", m->query);
	atrest__buf_printf(
		q, "X-Amz-Algorithm=%s&X-Amz-Credential=", ATREST__SIGV4_ALGORITHM);
	atrest__buf_urlenc(q, cred, strlen(cred), 0);
	atrest__buf_printf(q,
		"&X-Amz-Date=%s&X-Amz-Expires=%ld&X-Amz-SignedHeaders=", amz_date,
		expires);
	atrest__buf_urlenc(q, signed_list, strlen(signed_list), 0);
	if (c->token && *c->token) {
		atrest__buf_puts(q, "&X-Amz-Security-Token=");
		atrest__buf_urlenc(q, c->token, strlen(c->token), 0);
	}
}

int atrest__sigv4_presign(char **query_out, const atrest__sigv4_msg *m,
	const atrest__sigv4_creds *c, const char *amz_date, const char *region,
	const char *service, long expires, int flags)
{
	atrest__buf q = ATREST__BUF_INIT;
	atrest__sigv4_msg pm = *m;
	char scope[200], sig[65], *sl = NULL, *hdrs = NULL;
	int rc;

	*query_out = NULL;
	ENSURE(expires >= 1 && expires <= 604800, ATREST_EINVAL,
		"a presigned URL lasts 1 to 604800 seconds, not %ld", expires);
	GUARD(atrest__sigv4_scope(scope, sizeof(scope), amz_date, region, service));
	GUARD(atrest__sigv4_canonical_headers(&hdrs, &sl, m->headers, m->nheaders, NULL));
	presign_params(&q, m, c, amz_date, scope, sl, expires);
	GUARD_OUT(atrest__buf_check(&q));
	pm.query = q.data;
	GUARD_OUT(sign_msg(sig, NULL, &pm, NULL, c->secret, c->secret_len, amz_date,
		region, service, flags));
	atrest__buf_printf(&q, "&X-Amz-Signature=%s", sig);
	*query_out = atrest__buf_take(&q);
	ENSURE_OUT(*query_out, ATREST_ERROR, "out of memory");
out:
	free(sl);
	free(hdrs);
	atrest__buf_free(&q);
	return rc;
}

/* ---- parsing what a request claims */

static int copy_field(char *dst, size_t cap, const char *s, size_t n)
{
	if (n == 0 || n >= cap)
		return -1;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static int all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* "AK/YYYYMMDD/region/service/aws4_request" */
static int parse_credential(atrest__sigv4_auth *a, const char *s, size_t n)
{
	const char *f[5];
	size_t len[5], k = 0;
	const char *p = s, *end = s + n;

	while (k < 5) {
		const char *slash = memchr(p, '/', (size_t)(end - p));

		f[k] = p;
		len[k] = slash && k < 4 ? (size_t)(slash - p) : (size_t)(end - p);
		k++;
		if (!slash || k == 5)
			break;
		p = slash + 1;
	}
	if (k != 5 || len[4] != 12 || memcmp(f[4], "aws4_request", 12) != 0 ||
		len[1] != 8 || !all_digits(f[1], 8))
		return -1;
	if (copy_field(a->access_key, sizeof(a->access_key), f[0], len[0]) ||
		copy_field(a->date, sizeof(a->date), f[1], len[1]) ||
		copy_field(a->region, sizeof(a->region), f[2], len[2]) ||
		copy_field(a->service, sizeof(a->service), f[3], len[3]))
		return -1;
	return 0;
}

/* Lowercase header names, strictly increasing, ';'-separated, host among them. */
static int check_signed_list(const char *s)
{
	const char *prev = NULL;
	size_t prev_len = 0;

	if (!*s || !in_list(s, "host"))
		return -1;
	while (*s) {
		const char *e = strchr(s, ';');
		size_t len = e ? (size_t)(e - s) : strlen(s);

		if (len == 0 || (e && !e[1]))
			return -1;
		for (size_t i = 0; i < len; i++)
			if (!(islower((unsigned char)s[i]) ||
				    isdigit((unsigned char)s[i]) || s[i] == '-' ||
				    s[i] == '_' || s[i] == '.'))
				return -1;
		if (prev) {
			size_t m = len < prev_len ? len : prev_len;
			int c = memcmp(prev, s, m);
			if (c > 0 || (c == 0 && prev_len >= len))
				return -1;
		}
		prev = s;
		prev_len = len;
		s += len + (e != NULL);
	}
	return 0;
}

static int check_signature_hex(const char *s)
{
	if (strlen(s) != 64)
		return -1;
	for (int i = 0; i < 64; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return -1;
	return 0;
}

#define AUTH_BAD(what) \
	atrest__error(ATREST_EINVAL, "malformed SigV4 Authorization header: %s", what)

/* One "Key=value" field of the Authorization header into a. */
static int auth_field(atrest__sigv4_auth *a, const char *s, size_t n, int *seen)
{
	const char *eq = memchr(s, '=', n);
	size_t kl = eq ? (size_t)(eq - s) : 0, vl = eq ? n - kl - 1 : 0;

	if (!eq)
		return AUTH_BAD("a field without '='");
	if (kl == 10 && memcmp(s, "Credential", 10) == 0 && !(*seen & 1)) {
		*seen |= 1;
		return parse_credential(a, eq + 1, vl) ? AUTH_BAD("bad Credential") : 0;
	}
	if (kl == 13 && memcmp(s, "SignedHeaders", 13) == 0 && !(*seen & 2)) {
		*seen |= 2;
		if (copy_field(
			    a->signed_headers, sizeof(a->signed_headers), eq + 1, vl) ||
			check_signed_list(a->signed_headers))
			return AUTH_BAD("bad SignedHeaders");
		return 0;
	}
	if (kl == 9 && memcmp(s, "Signature", 9) == 0 && !(*seen & 4)) {
		*seen |= 4;
		if (copy_field(a->signature, sizeof(a->signature), eq + 1, vl) ||
			check_signature_hex(a->signature))
			return AUTH_BAD("bad Signature");
		return 0;
	}
	return AUTH_BAD("unknown or repeated field");
}

int atrest__sigv4_parse_authorization(atrest__sigv4_auth *out, const char *value)
{
	size_t al = strlen(ATREST__SIGV4_ALGORITHM);
	const char *s = value;
	int seen = 0;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, ATREST__SIGV4_ALGORITHM, al) != 0 || !is_ws((unsigned char)s[al]))
		return AUTH_BAD("not AWS4-HMAC-SHA256");
	s += al;
	while (*s) {
		const char *e;
		size_t n;

		while (is_ws((unsigned char)*s))
			s++;
		e = strchr(s, ',');
		n = e ? (size_t)(e - s) : strlen(s);
		while (n > 0 && is_ws((unsigned char)s[n - 1]))
			n--;
		GUARD(auth_field(out, s, n, &seen));
		s = e ? e + 1 : s + strlen(s);
	}
	ENSURE(seen == 7, ATREST_EINVAL,
		"malformed SigV4 Authorization header: Credential, SignedHeaders and "
		"Signature are all needed");
	return 0;
}

/*
 * The decoded value of the one parameter named name: 1 when found, 0 when
 * absent, -1 when repeated, too long or out of memory.
 */
static int query_get(char *out, size_t cap, const char *query, const char *name)
{
	int found = 0;

	for (const char *s = query; s && *s;) {
		const char *amp = strchr(s, '&');
		size_t len = amp ? (size_t)(amp - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		size_t nl = eq ? (size_t)(eq - s) : len;
		atrest__buf k = ATREST__BUF_INIT, v = ATREST__BUF_INIT;
		int bad = 0;

		pct_decode(&k, s, nl);
		if (atrest__buf_check(&k) < 0) {
			bad = 1;
		} else if (strcmp(k.data, name) == 0) {
			if (eq)
				pct_decode(&v, eq + 1, len - nl - 1);
			bad = found || atrest__buf_check(&v) < 0 || v.len >= cap ||
				strlen(v.data) != v.len;
			if (!bad)
				memcpy(out, v.data, v.len + 1);
			found = 1;
		}
		atrest__buf_free(&k);
		atrest__buf_free(&v);
		if (bad)
			return -1;
		s = amp ? amp + 1 : s + len;
	}
	return found;
}

#define PRESIGN_BAD(what) \
	atrest__error(ATREST_EINVAL, "malformed SigV4 presigned URL: %s", what)

int atrest__sigv4_parse_presigned(atrest__sigv4_auth *out, const char *query)
{
	char algo[32], cred[400], expires[16];
	int64_t t;

	memset(out, 0, sizeof(*out));
	if (query_get(algo, sizeof(algo), query, "X-Amz-Algorithm") != 1 ||
		strcmp(algo, ATREST__SIGV4_ALGORITHM) != 0)
		return PRESIGN_BAD("X-Amz-Algorithm is not AWS4-HMAC-SHA256");
	if (query_get(cred, sizeof(cred), query, "X-Amz-Credential") != 1 ||
		parse_credential(out, cred, strlen(cred)) < 0)
		return PRESIGN_BAD("bad X-Amz-Credential");
	if (query_get(out->amz_date, sizeof(out->amz_date), query, "X-Amz-Date") != 1 ||
		atrest__sigv4_parse_amz_date(&t, out->amz_date) < 0)
		return PRESIGN_BAD("bad X-Amz-Date");
	if (query_get(expires, sizeof(expires), query, "X-Amz-Expires") != 1 ||
		!*expires || strlen(expires) > 6 ||
		!all_digits(expires, strlen(expires)) ||
		(out->expires = atol(expires)) < 1 || out->expires > 604800)
		return PRESIGN_BAD("X-Amz-Expires must be 1 to 604800 seconds");
	if (query_get(out->signed_headers, sizeof(out->signed_headers), query,
		    "X-Amz-SignedHeaders") != 1 ||
		check_signed_list(out->signed_headers) < 0)
		return PRESIGN_BAD("bad X-Amz-SignedHeaders");
	if (query_get(out->signature, sizeof(out->signature), query, "X-Amz-Signature") !=
			1 ||
		check_signature_hex(out->signature) < 0)
		return PRESIGN_BAD("bad X-Amz-Signature");
	if (query_get(out->token, sizeof(out->token), query, "X-Amz-Security-Token") < 0)
		return PRESIGN_BAD("bad X-Amz-Security-Token");
	return 0;
}

/* ---- verification */

int atrest__sigv4_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && atrest__ct_equal(a, b, n);
}

int atrest__sigv4_verify(const atrest__sigv4_msg *m, const atrest__sigv4_auth *a,
	const char *amz_date, const uint8_t *secret, size_t secret_len, int presigned,
	int flags)
{
	atrest__sigv4_msg vm = *m;
	char *q = NULL, sig[65];
	int rc;

	ENSURE(amz_date && strlen(amz_date) == 16 && strncmp(amz_date, a->date, 8) == 0,
		ATREST_EINVAL, "SigV4 credential date is not the request's date");
	ENSURE(check_signed_list(a->signed_headers) == 0, ATREST_EINVAL,
		"SigV4 signed headers must include host");
	if (presigned) {
		GUARD(atrest__sigv4_canonical_query(&q, m->query, "X-Amz-Signature"));
		vm.query = q;
	}
	rc = sign_msg(sig, NULL, &vm, a->signed_headers, secret, secret_len, amz_date,
		a->region, a->service, flags);
	free(q);
	if (rc == ATREST_EKEY)
		return atrest__error(ATREST_EINVAL, "SigV4: a signed header is missing");
	GUARD(rc);
	rc = atrest__sigv4_equal(sig, a->signature)
		? 0
		: atrest__error(ATREST_EKEY, "SigV4 signature does not match");
	atrest__wipe(sig, sizeof(sig));
	return rc;
}
