/*
 * Helpers of the cloud key providers (cloud.h): a small JSON scanner that
 * lifts secret strings out of locked response bodies, the AAD encodings,
 * the bearer-token cache, key ids, URI parameters and CRC32C.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud.h"
#include "crypto.h"
#include "keyring.h"

int atrest__cloud_json(json_t **out, const atrest__http *h, const atrest__http_req *req,
	const atrest__http_resp *resp)
{
	json_error_t jerr;

	*out = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len,
		JSON_REJECT_DUPLICATES, &jerr);
	if (json_is_object(*out))
		return 0;
	json_decref(*out);
	*out = NULL;
	return atrest__error(ATREST_EUNAVAILABLE,
		"%s %s: HTTP %ld with a response that is not a JSON object",
		atrest__http_service(h), req->what ? req->what : req->method,
		resp->status);
}

const char *atrest__json_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- the AAD */

#define AAD_TAIL 20 /* store id (16) + key number (4) */

/* The keyring's roles (docs/FORMAT.md section 4); other AADs go as base64. */
static int keyring_role(const uint8_t *aad, size_t rl)
{
	static const char *const roles[] = {"atrest/v1 dek", "atrest/v1 check"};

	for (int i = 0; i < 2; i++)
		if (rl == strlen(roles[i]) && memcmp(aad, roles[i], rl) == 0)
			return 1;
	return 0;
}

void atrest__aad_context(atrest__buf *out, const uint8_t *aad, size_t aad_len)
{
	size_t rl = aad_len > AAD_TAIL ? aad_len - AAD_TAIL : 0;

	if (!keyring_role(aad, rl)) {
		atrest__buf_puts(out, "{\"atrest-aad\":\"");
		atrest__buf_b64(out, aad, aad_len, 0);
		atrest__buf_puts(out, "\"}");
		return;
	}
	atrest__buf_puts(out, "{\"atrest-role\":");
	atrest__buf_json_str(out, (const char *)aad, rl);
	atrest__buf_puts(out, ",\"atrest-store-id\":\"");
	atrest__buf_hex(out, aad + rl, 16);
	atrest__buf_printf(out, "\",\"atrest-key-id\":\"%u\"}",
		(unsigned)atrest__le32(aad + rl + 16));
}

int atrest__aad_bind(uint8_t out[ATREST__CLOUD_BOUND_LEN], const uint8_t *key,
	size_t key_len, const uint8_t *aad, size_t aad_len)
{
	ENSURE(key_len == ATREST__CLOUD_DEK_LEN, ATREST_EINVAL,
		"cannot wrap a key of %zu bytes", key_len);
	memcpy(out, key, key_len);
	return atrest__sha256(out + key_len, aad, aad_len);
}

int atrest__aad_unbind(uint8_t *out, size_t cap, size_t *out_len, const uint8_t *bound,
	size_t bound_len, const uint8_t *aad, size_t aad_len, const char *provider)
{
	uint8_t h[32];

	ENSURE(bound_len == ATREST__CLOUD_BOUND_LEN && cap >= ATREST__CLOUD_DEK_LEN,
		ATREST_EKEY, "%s returned a key of %zu bytes, not one atrest wrapped",
		provider, bound_len);
	GUARD(atrest__sha256(h, aad, aad_len));
	ENSURE(atrest__ct_equal(h, bound + ATREST__CLOUD_DEK_LEN, 32), ATREST_EKEY,
		"%s: the wrapped key belongs to another store or role (its binding does "
		"not match)",
		provider);
	memcpy(out, bound, ATREST__CLOUD_DEK_LEN);
	*out_len = ATREST__CLOUD_DEK_LEN;
	return 0;
}

int atrest__aad_unbind_answer(uint8_t *out, size_t cap, size_t *out_len,
	atrest__http_resp *resp, const char *const *path, const uint8_t *aad,
	size_t aad_len, const char *provider)
{
	atrest__secret *pt = NULL;
	int rc = atrest__json_take_b64(&pt, resp->body.data, resp->body.len, path, 128);

	if (rc < 0)
		return atrest__error(ATREST_EUNAVAILABLE, "%s: the answer has no %s",
			provider, path[1] ? path[1] : path[0]);
	rc = atrest__aad_unbind(
		out, cap, out_len, pt->data, pt->len, aad, aad_len, provider);
	atrest__secret_free(pt);
	return rc;
}

/* ---- tokens */

void atrest__token_init(atrest__token *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
}

void atrest__token_clear(atrest__token *t)
{
	atrest__secret_free(t->value);
	t->value = NULL;
	pthread_mutex_destroy(&t->mu);
}

static int token_stale(const atrest__token *t, int64_t now)
{
	int64_t margin = t->lifetime / 2 < 300 ? t->lifetime / 2 : 300;

	return t->expires && now >= t->expires - margin;
}

int atrest__token_get(atrest__token *t, atrest__secret **copy, int force,
	atrest__token_fetch_fn fetch, void *arg)
{
	atrest__secret *fresh = NULL;
	int64_t life = 0, now = atrest__now();
	int rc = 0;

	*copy = NULL;
	pthread_mutex_lock(&t->mu);
	if (!t->value || force || token_stale(t, now)) {
		t->forced = force;
		rc = fetch(arg, &fresh, &life);
		if (rc == 0) {
			atrest__secret_free(t->value);
			t->value = fresh;
			t->lifetime = life > 0 ? life : 0;
			t->expires = life > 0 ? now + life : 0;
			t->fetches++;
		}
	}
	if (rc == 0)
		rc = atrest__secret_dup(copy, t->value->data, t->value->len + 1);
	if (rc == 0)
		(*copy)->len = t->value->len;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* ---- the provider table */

static int cloud_key_id(atrest_keyprov *kp, char *out, size_t cap)
{
	const char *id = ((atrest__cloud_kp *)kp)->key_id;

	ENSURE(strlen(id) < cap, ATREST_EINVAL, "key id buffer too small");
	memcpy(out, id, strlen(id) + 1);
	return 0;
}

void atrest__cloud_kp_init(atrest__cloud_kp *kp, const char *kind,
	int (*wrap)(atrest_keyprov *, uint8_t *, size_t, size_t *, const uint8_t *,
		size_t, const uint8_t *, size_t),
	int (*unwrap)(atrest_keyprov *, uint8_t *, size_t, size_t *, const uint8_t *,
		size_t, const uint8_t *, size_t),
	void (*free_fn)(atrest_keyprov *))
{
	kp->parent.version = ATREST_KEYPROV_VERSION;
	kp->parent.kind = kind;
	kp->parent.key_id = cloud_key_id;
	kp->parent.wrap = wrap;
	kp->parent.unwrap = unwrap;
	kp->parent.free = free_fn;
}

/* ---- names and URIs */

void atrest__cloud_key_id(char *out, size_t cap, const char *prefix, const char *name)
{
	size_t pl = strlen(prefix), nl = strlen(name);
	uint8_t h[32];

	if (pl + nl < cap) {
		snprintf(out, cap, "%s%s", prefix, name);
		return;
	}
	atrest__sha256(h, name, nl);
	/* prefix + head + "~" + 16 hex digits */
	snprintf(out, cap, "%s%.*s~%02x%02x%02x%02x%02x%02x%02x%02x", prefix,
		(int)(cap > pl + 18 ? cap - pl - 18 : 0), name, h[0], h[1], h[2], h[3],
		h[4], h[5], h[6], h[7]);
}

static int hexv(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* Percent-decode n bytes into out (cap); -1 when it does not fit. */
static int pct_copy(char *out, size_t cap, const char *s, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%' && i + 2 < n && hexv((unsigned char)s[i + 1]) >= 0 &&
			hexv((unsigned char)s[i + 2]) >= 0) {
			c = hexv((unsigned char)s[i + 1]) << 4 |
				hexv((unsigned char)s[i + 2]);
			i += 2;
		}
		if (k + 1 >= cap || c == 0)
			return -1;
		out[k++] = (char)c;
	}
	out[k] = '\0';
	return 0;
}

int atrest__uri_param(char *out, size_t cap, const char *uri, const char *name)
{
	const char *q = strchr(uri, '?');
	size_t nl = strlen(name);
	int found = 0;

	out[0] = '\0';
	for (const char *s = q ? q + 1 : NULL; s && *s;) {
		size_t len = strcspn(s, "&");
		const char *eq = memchr(s, '=', len);

		if (eq && (size_t)(eq - s) == nl && memcmp(s, name, nl) == 0) {
			ENSURE(!found, ATREST_EKEY, "key URI: parameter %s is repeated",
				name);
			ENSURE(pct_copy(out, cap, eq + 1, len - nl - 1) == 0, ATREST_EKEY,
				"key URI: parameter %s is too long or holds a NUL", name);
			found = 1;
		}
		s += len + (s[len] == '&');
	}
	return found;
}

int atrest__uri_params_known(
	const char *uri, const char *const *names, const char *provider)
{
	const char *q = strchr(uri, '?');

	for (const char *s = q ? q + 1 : NULL; s && *s;) {
		size_t len = strcspn(s, "&"), kl = strcspn(s, "=&");
		int known = 0;

		for (const char *const *n = names; *n; n++)
			known |= strlen(*n) == kl && memcmp(*n, s, kl) == 0;
		/* Never echo the parameter: a URI may carry a token. */
		ENSURE(known || len == 0, ATREST_EKEY,
			"%s key URI has an unknown parameter (see docs/KEY-PROVIDERS.md)",
			provider);
		s += len + (s[len] == '&');
	}
	return 0;
}

uint32_t atrest__crc32c(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}

int atrest__cloud_wrap_args(const char *provider, size_t key_len, size_t cap, size_t need)
{
	ENSURE(key_len == ATREST__CLOUD_DEK_LEN, ATREST_EINVAL,
		"%s wraps keys of %d bytes, not %zu", provider, ATREST__CLOUD_DEK_LEN,
		key_len);
	ENSURE(cap >= need, ATREST_EINVAL, "%s needs %zu bytes of room to wrap a key",
		provider, need);
	return 0;
}

int atrest__oauth_token(const atrest__http *h, const atrest__http_req *req,
	atrest__http_resp *resp, atrest__secret **tok, int64_t *life)
{
	static const char *const p_tok[] = {"access_token", NULL};
	json_t *j = NULL, *exp;
	int rc;

	rc = atrest__json_take(tok, resp->body.data, resp->body.len, p_tok);
	if (rc == 0)
		rc = atrest__cloud_json(&j, h, req, resp);
	exp = json_object_get(j, "expires_in");
	/* Azure's managed identity gives it as a string. */
	*life = json_is_integer(exp)  ? (int64_t)json_integer_value(exp)
		: json_is_string(exp) ? atoll(json_string_value(exp))
				      : 0;
	json_decref(j);
	if (rc == 0 && (*tok)->len == 0)
		rc = ATREST_EINVAL;
	if (rc < 0) {
		atrest__secret_free(*tok);
		*tok = NULL;
		return rc == ATREST_EUNAVAILABLE
			? rc
			: atrest__error(ATREST_EUNAVAILABLE,
				  "%s %s: no access_token in the answer",
				  atrest__http_service(h), req->what);
	}
	return 0;
}

/* ---- calls with a bearer token */

struct bearer {
	const atrest__cloud_auth *auth;
	const atrest__http_hdrs *base; /* the caller's own headers */
	const atrest__secret *tok;
};

static int bearer_prepare(atrest__http_req *req, void *arg)
{
	struct bearer *b = arg;

	atrest__http_hdrs_free(&req->headers);
	atrest__http_hdrs_copy(&req->headers, b->base);
	atrest__http_hdrs_add(&req->headers, b->auth->header, "%s%s", b->auth->prefix,
		(const char *)b->tok->data);
	return req->headers.failed ? atrest__error(ATREST_ERROR, "out of memory") : 0;
}

int atrest__cloud_call(atrest__http *h, const atrest__cloud_auth *auth,
	atrest__http_req *req, atrest__http_resp *resp)
{
	atrest__http_hdrs base = req->headers;
	int rc = 0;

	memset(&req->headers, 0, sizeof(req->headers));
	for (int round = 0; round < 2; round++) {
		struct bearer b = {auth, &base, NULL};
		atrest__secret *tok = NULL;

		rc = atrest__token_get(
			auth->token, &tok, round > 0, auth->fetch, auth->arg);
		if (rc < 0)
			break;
		b.tok = tok;
		req->prepare = bearer_prepare;
		req->prepare_arg = &b;
		rc = atrest__http_do(h, req, resp);
		atrest__secret_free(tok);
		atrest__http_hdrs_free(&req->headers);
		if (rc < 0 || atrest__http_ok(resp) || round > 0 || !auth->refused(resp))
			break;
		atrest__http_resp_free(resp);
	}
	req->headers = base;
	req->prepare = NULL;
	req->prepare_arg = NULL;
	return rc;
}
