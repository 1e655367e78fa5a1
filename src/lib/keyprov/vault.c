/*
 * HashiCorp Vault Transit master keys (vault://HOST:PORT/MOUNT/keys/NAME,
 * vault+http:// for loopback only): encrypt/decrypt with the core's AAD as
 * the context (binding it for derived keys) and in the wrapped plaintext
 * (binding it for every key), rewrap inside Vault to the newest key
 * version; tokens from VAULT_TOKEN, AppRole or ~/.vault-token, looked up
 * and renewed before they expire; VAULT_NAMESPACE and VAULT_CACERT.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cloud.h"
#include "crypto.h"
#include "http.h"
#include "plugins.h"

#define KIND "vault"
#define TOKEN_MAX 4096

struct vault {
	atrest__cloud_kp base; /* first */
	char addr[400];        /* https://HOST:PORT */
	char mount[256];       /* Transit mount path, e.g. "transit" */
	char name[128];        /* key name */
	char auth_mount[128];  /* AppRole mount, default "approle" */
	char source[64];       /* where the token comes from, for messages */
	int renewable;
	atrest__http *http;
	atrest__token token;
};

/* ---- requests */

/* Headers of every request: JSON and the namespace. */
static void base_headers(atrest__http_hdrs *h)
{
	const char *ns = getenv("VAULT_NAMESPACE");

	atrest__http_hdrs_add(h, "Content-Type", "application/json");
	if (ns && *ns)
		atrest__http_hdrs_add(h, "X-Vault-Namespace", "%s", ns);
}

/* A request with a given token (login, lookup, renew). */
static int vault_plain(struct vault *v, const char *method, const char *path,
	const char *what, const atrest__buf *body, const char *token,
	atrest__http_resp *resp)
{
	char url[900];
	atrest__http_req req = {.method = method,
		.url = url,
		.what = what,
		.body = body ? body->data : NULL,
		.body_len = body ? body->len : 0,
		.plain_http = 1, /* checked against loopback when parsing */
		.secret_response = 1};
	int rc;

	snprintf(url, sizeof(url), "%s/v1/%s", v->addr, path);
	base_headers(&req.headers);
	if (token)
		atrest__http_hdrs_add(&req.headers, "X-Vault-Token", "%s", token);
	rc = atrest__http_do(v->http, &req, resp);
	if (rc == 0 && !atrest__http_ok(resp))
		rc = atrest__http_fail(v->http, &req, resp, ATREST_EUNAVAILABLE,
			resp->status == 400 && strstr(path, "/login")
				? "check VAULT_ROLE_ID and VAULT_SECRET_ID"
				: resp->status == 403
				? "the token was refused: expired or revoked"
				: NULL);
	atrest__http_hdrs_free(&req.headers);
	return rc;
}

/* auth.client_token and auth.lease_duration of a login or renewal. */
static int take_auth(struct vault *v, atrest__http_resp *resp, const char *what,
	atrest__secret **tok, int64_t *life)
{
	static const char *const p_tok[] = {"auth", "client_token", NULL};
	json_t *j = NULL, *auth;
	int rc = atrest__json_take(tok, resp->body.data, resp->body.len, p_tok);

	if (rc == 0)
		rc = atrest__cloud_json(
			&j, v->http, &(atrest__http_req){.what = what}, resp);
	auth = json_object_get(j, "auth");
	*life = json_integer_value(json_object_get(auth, "lease_duration"));
	v->renewable = json_is_true(json_object_get(auth, "renewable"));
	json_decref(j);
	if (rc < 0 || (*tok)->len == 0 || (*tok)->len > TOKEN_MAX) {
		atrest__secret_free(*tok);
		*tok = NULL;
		return rc == ATREST_EUNAVAILABLE
			? rc
			: atrest__error(
				  ATREST_EUNAVAILABLE, "Vault %s: no client_token", what);
	}
	return 0;
}

static int approle_login(struct vault *v, atrest__secret **tok, int64_t *life)
{
	const char *role = getenv("VAULT_ROLE_ID"), *secret = getenv("VAULT_SECRET_ID");
	atrest__buf body = ATREST__BUF_LOCKED;
	atrest__http_resp resp;
	char path[200];
	int rc;

	memset(&resp, 0, sizeof(resp));
	snprintf(path, sizeof(path), "auth/%s/login", v->auth_mount);
	atrest__buf_puts(&body, "{\"role_id\":");
	atrest__buf_json_str(&body, role, strlen(role));
	atrest__buf_puts(&body, ",\"secret_id\":");
	atrest__buf_json_str(&body, secret, strlen(secret));
	atrest__buf_puts(&body, "}");
	GUARD_OUT(atrest__buf_check(&body));
	GUARD_OUT(vault_plain(v, "POST", path, "AppRole login", &body, NULL, &resp));
	rc = take_auth(v, &resp, "AppRole login", tok, life);
out:
	atrest__buf_free(&body);
	atrest__http_resp_free(&resp);
	return rc;
}

/* A fixed token (VAULT_TOKEN, ~/.vault-token): its ttl from lookup-self. */
static int fixed_token(struct vault *v, atrest__secret *tok, int64_t *life)
{
	atrest__http_resp resp;
	json_t *j = NULL, *data;
	int rc;

	memset(&resp, 0, sizeof(resp));
	GUARD_OUT(vault_plain(v, "GET", "auth/token/lookup-self", "token lookup", NULL,
		(const char *)tok->data, &resp));
	GUARD_OUT(atrest__cloud_json(
		&j, v->http, &(atrest__http_req){.what = "token lookup"}, &resp));
	data = json_object_get(j, "data");
	*life = json_integer_value(json_object_get(data, "ttl"));
	v->renewable = json_is_true(json_object_get(data, "renewable"));
out:
	json_decref(j);
	atrest__http_resp_free(&resp);
	return rc;
}

static int renew(struct vault *v, atrest__secret **tok, int64_t *life)
{
	atrest__buf body = ATREST__BUF_INIT;
	atrest__http_resp resp;
	int rc;

	memset(&resp, 0, sizeof(resp));
	atrest__buf_puts(&body, "{}");
	rc = vault_plain(v, "POST", "auth/token/renew-self", "token renewal", &body,
		(const char *)v->token.value->data, &resp);
	if (rc == 0)
		rc = take_auth(v, &resp, "token renewal", tok, life);
	atrest__buf_free(&body);
	atrest__http_resp_free(&resp);
	return rc;
}

static int env_set(const char *name)
{
	const char *s = getenv(name);

	return s && *s;
}

static int fetch_token(void *arg, atrest__secret **tok, int64_t *life)
{
	struct vault *v = arg;
	const char *env = getenv("VAULT_TOKEN"), *home = getenv("HOME");
	char path[600];
	int rc;

	/* Near expiry (not refused): renew what we have. */
	if (v->token.value && !v->token.forced && v->renewable &&
		renew(v, tok, life) == 0)
		return 0;
	if (env && *env) {
		snprintf(v->source, sizeof(v->source), "VAULT_TOKEN");
		ENSURE(strlen(env) <= TOKEN_MAX, ATREST_EUNAVAILABLE,
			"VAULT_TOKEN is too long");
		GUARD(atrest__secret_dup(tok, env, strlen(env) + 1));
		(*tok)->len = strlen(env);
	} else if (env_set("VAULT_ROLE_ID") && env_set("VAULT_SECRET_ID")) {
		snprintf(v->source, sizeof(v->source), "AppRole");
		return approle_login(v, tok, life);
	} else {
		snprintf(path, sizeof(path), "%s/.vault-token", home ? home : "");
		snprintf(v->source, sizeof(v->source), "~/.vault-token");
		if (access(path, R_OK) != 0)
			return atrest__error(ATREST_EUNAVAILABLE,
				"no Vault token: set VAULT_TOKEN, or VAULT_ROLE_ID and "
				"VAULT_SECRET_ID for AppRole");
		GUARD(atrest__secret_read_file(tok, path, TOKEN_MAX, "~/.vault-token"));
	}
	rc = fixed_token(v, *tok, life);
	if (rc < 0) {
		atrest__secret_free(*tok);
		*tok = NULL;
	}
	return rc;
}

/* ---- Transit */

static int refused(const atrest__http_resp *resp)
{
	return resp->status == 403;
}

static int transit_failure(struct vault *v, const atrest__http_req *req,
	const atrest__http_resp *resp, int decrypting)
{
	char fix[600];
	int rc = ATREST_EUNAVAILABLE;

	if (resp->status == 403)
		snprintf(fix, sizeof(fix),
			"the %s token lacks update on %s/%s/%s, or expired (see "
			"docs/KEY-PROVIDERS.md)",
			v->source, v->mount, req->what, v->name);
	else if (strstr(resp->msg, "key not found"))
		snprintf(fix, sizeof(fix), "no Transit key %s at mount %s", v->name,
			v->mount);
	else if (decrypting && resp->status == 400) {
		snprintf(fix, sizeof(fix),
			"the wrapped key belongs to another store or Transit key, or was "
			"altered");
		rc = ATREST_EKEY;
	} else
		fix[0] = '\0';
	return atrest__http_fail(v->http, req, resp, rc, fix[0] ? fix : NULL);
}

/* POST MOUNT/OP/NAME with the token; 0 with a 2xx response. */
static int transit(
	struct vault *v, const char *op, const atrest__buf *body, atrest__http_resp *resp)
{
	atrest__cloud_auth auth = {
		&v->token, fetch_token, v, "X-Vault-Token", "", refused};
	char url[900];
	atrest__http_req req = {.method = "POST",
		.url = url,
		.what = op,
		.body = body->data,
		.body_len = body->len,
		.plain_http = 1,
		.secret_response = 1};
	int rc;

	snprintf(url, sizeof(url), "%s/v1/%s/%s/%s", v->addr, v->mount, op, v->name);
	base_headers(&req.headers);
	rc = atrest__cloud_call(v->http, &auth, &req, resp);
	if (rc == 0 && !atrest__http_ok(resp))
		rc = transit_failure(v, &req, resp, strcmp(op, "encrypt") != 0);
	atrest__http_hdrs_free(&req.headers);
	return rc;
}

/* "context": the AAD (binds it for derived keys, ignored by others). */
static void put_context(atrest__buf *b, const uint8_t *aad, size_t aad_len)
{
	atrest__buf_puts(b, ",\"context\":\"");
	atrest__buf_b64(b, aad, aad_len, 0);
	atrest__buf_puts(b, "\"}");
}

/* data.ciphertext "vault:vN:..." of an encrypt or rewrap answer into out. */
static int take_ciphertext(struct vault *v, atrest__http_resp *resp, const char *what,
	uint8_t *out, size_t cap, size_t *out_len)
{
	json_t *j = NULL;
	const char *ct;
	int rc;

	GUARD(atrest__cloud_json(&j, v->http, &(atrest__http_req){.what = what}, resp));
	ct = atrest__json_str(json_object_get(j, "data"), "ciphertext");
	rc = ct && strncmp(ct, "vault:v", 7) == 0 && strlen(ct) <= cap
		? 0
		: atrest__error(ATREST_EUNAVAILABLE,
			  "Vault %s: the answer has no usable ciphertext (at most %zu bytes)",
			  what, cap);
	if (rc == 0) {
		*out_len = strlen(ct);
		memcpy(out, ct, *out_len);
	}
	json_decref(j);
	return rc;
}

int atrest__vault_blob_check(const uint8_t *w, size_t n)
{
	size_t i = 7;

	if (n < 10 || memcmp(w, "vault:v", 7) != 0)
		return ATREST_EKEY;
	while (i < n && isdigit(w[i]))
		i++;
	if (i == 7 || i >= n || w[i] != ':')
		return ATREST_EKEY;
	for (i++; i < n; i++)
		if (!isalnum(w[i]) && w[i] != '+' && w[i] != '/' && w[i] != '=')
			return ATREST_EKEY;
	return 0;
}

static int vault_wrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	struct vault *v = (struct vault *)kp;
	uint8_t bound[ATREST__CLOUD_BOUND_LEN];
	atrest__buf body = ATREST__BUF_LOCKED;
	atrest__http_resp resp;
	int rc;

	memset(&resp, 0, sizeof(resp));
	GUARD(atrest__cloud_wrap_args(KIND, key_len, cap, 1));
	GUARD(atrest__aad_bind(bound, key, key_len, aad, aad_len));
	atrest__buf_puts(&body, "{\"plaintext\":\"");
	atrest__buf_b64(&body, bound, sizeof(bound), 0);
	atrest__buf_puts(&body, "\"");
	atrest__wipe(bound, sizeof(bound));
	put_context(&body, aad, aad_len);
	GUARD_OUT(atrest__buf_check(&body));
	GUARD_OUT(transit(v, "encrypt", &body, &resp));
	rc = take_ciphertext(v, &resp, "encrypt", out, cap, out_len);
out:
	atrest__buf_free(&body);
	atrest__http_resp_free(&resp);
	return rc;
}

/* decrypt or rewrap a wrapped key: {"ciphertext", "context"}. */
static int transit_wrapped(struct vault *v, const char *op, const uint8_t *wrapped,
	size_t wrapped_len, const uint8_t *aad, size_t aad_len, atrest__http_resp *resp)
{
	atrest__buf body = ATREST__BUF_INIT;
	int rc;

	ENSURE(atrest__vault_blob_check(wrapped, wrapped_len) == 0, ATREST_EKEY,
		"the wrapped key is not a Vault Transit ciphertext");
	atrest__buf_puts(&body, "{\"ciphertext\":\"");
	atrest__buf_put(&body, wrapped, wrapped_len); /* checked: base64 characters */
	atrest__buf_puts(&body, "\"");
	put_context(&body, aad, aad_len);
	rc = atrest__buf_check(&body);
	if (rc == 0)
		rc = transit(v, op, &body, resp);
	atrest__buf_free(&body);
	return rc;
}

static int vault_unwrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	static const char *const p_plain[] = {"data", "plaintext", NULL};
	atrest__http_resp resp;
	int rc;

	memset(&resp, 0, sizeof(resp));
	rc = transit_wrapped(
		(struct vault *)kp, "decrypt", wrapped, wrapped_len, aad, aad_len, &resp);
	if (rc == 0)
		rc = atrest__aad_unbind_answer(
			out, cap, out_len, &resp, p_plain, aad, aad_len, "Vault Transit");
	atrest__http_resp_free(&resp);
	return rc;
}

static int vault_rewrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	struct vault *v = (struct vault *)kp;
	atrest__http_resp resp;
	int rc;

	memset(&resp, 0, sizeof(resp));
	rc = transit_wrapped(v, "rewrap", wrapped, wrapped_len, aad, aad_len, &resp);
	if (rc == 0)
		rc = take_ciphertext(v, &resp, "rewrap", out, cap, out_len);
	atrest__http_resp_free(&resp);
	return rc;
}

static void vault_free(atrest_keyprov *kp)
{
	struct vault *v = (struct vault *)kp;

	atrest__http_free(v->http);
	atrest__token_clear(&v->token);
	free(v);
}

static int path_ok(const char *s, size_t n)
{
	if (n == 0 || s[0] == '/' || s[n - 1] == '/')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_./", s[i]))
			return 0;
	return !memmem(s, n, "..", 2) && !memmem(s, n, "//", 2);
}

/* vault[+http]://HOST:PORT/MOUNT/keys/NAME[?auth_mount=M] */
static int vault_parse(struct vault *v, const char *uri)
{
	static const char *const params[] = {"auth_mount", NULL};
	int http = strncasecmp(uri, "vault+http://", 13) == 0;
	const char *p, *keys, *name;
	size_t hl, ml, nl;

	ENSURE(http || strncasecmp(uri, "vault://", 8) == 0, ATREST_EKEY,
		"not a vault URI");
	p = uri + (http ? 13 : 8);
	hl = strcspn(p, "/?");
	keys = memmem(p + hl, strcspn(p + hl, "?"), "/keys/", 6);
	ENSURE(hl > 0 && hl < 300 && p[hl] == '/' && keys && keys > p + hl + 1,
		ATREST_EKEY,
		"not a Vault Transit key URI: expected vault://HOST:PORT/MOUNT/keys/NAME");
	ml = (size_t)(keys - (p + hl + 1));
	name = keys + 6;
	nl = strcspn(name, "?");
	ENSURE(path_ok(p + hl + 1, ml) && ml < sizeof(v->mount) && nl < sizeof(v->name) &&
			path_ok(name, nl) && !memchr(name, '/', nl),
		ATREST_EKEY, "Vault Transit key URI: bad mount path or key name");
	for (size_t i = 0; i < hl; i++)
		ENSURE(isalnum((unsigned char)p[i]) || strchr(".-:[]", p[i]), ATREST_EKEY,
			"Vault Transit key URI: the host is malformed");
	snprintf(v->addr, sizeof(v->addr), "%s://%.*s", http ? "http" : "https", (int)hl,
		p);
	ENSURE(!http || atrest__http_is_loopback(v->addr), ATREST_EKEY,
		"vault+http:// is for a Vault on this machine (loopback) only: use vault://");
	memcpy(v->mount, p + hl + 1, ml);
	memcpy(v->name, name, nl);
	GUARD(atrest__uri_params_known(uri, params, "Vault"));
	if (atrest__uri_param(v->auth_mount, sizeof(v->auth_mount), uri, "auth_mount") !=
		1)
		snprintf(v->auth_mount, sizeof(v->auth_mount), "approle");
	ENSURE(path_ok(v->auth_mount, strlen(v->auth_mount)), ATREST_EKEY,
		"Vault key URI: bad auth_mount");
	return 0;
}

int atrest__keyprov_vault(atrest_keyprov **out, const char *uri)
{
	atrest__http_opts ho = {.service = "Vault", .ca_env = "VAULT_CACERT"};
	struct vault *v;
	char id[700];
	int rc;

	*out = NULL;
	GUARD(atrest__crypto_init());
	v = calloc(1, sizeof(*v));
	ENSURE(v, ATREST_ERROR, "out of memory");
	atrest__cloud_kp_init(&v->base, KIND, vault_wrap, vault_unwrap, vault_free);
	v->base.parent.rewrap = vault_rewrap;
	atrest__token_init(&v->token);
	GUARD_OUT(vault_parse(v, uri));
	GUARD_OUT(atrest__http_new(&v->http, &ho));
	snprintf(id, sizeof(id), "%s/%s/keys/%s", strstr(v->addr, "://") + 3, v->mount,
		v->name);
	atrest__cloud_key_id(v->base.key_id, sizeof(v->base.key_id), "vault:", id);
	*out = &v->base.parent;
	return 0;
out:
	vault_free(&v->base.parent);
	return rc;
}
