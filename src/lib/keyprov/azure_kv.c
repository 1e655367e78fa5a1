/*
 * Azure Key Vault and Managed HSM master keys
 * (azure-kv://VAULT-HOST[:PORT]/keys/NAME[/VERSION]): wrapkey/unwrapkey
 * (RSA-OAEP-256 for vault keys, AES key wrap A256KW for Managed HSM keys)
 * with a pinned api-version; the key version used is kept with each
 * wrapped key, so unwrapping keeps working after the key is rotated in the
 * vault.  Neither algorithm takes an AAD: the wrapped plaintext binds it
 * (cloud.h, atrest__aad_bind).  Tokens by client credentials (a secret or
 * a federated token file) or managed identity.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cloud.h"
#include "crypto.h"
#include "plugins.h"

#define KIND "azure-kv"
#define API_VERSION "7.4"
#define VERSION_MAX ATREST__AZURE_VERSION_MAX
#define FORMAT_RSA 1 /* RSA-OAEP-256 */
#define FORMAT_AES 2 /* A256KW */
#define CLIENT_ASSERTION "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

struct azure_kv {
	atrest__cloud_kp base;         /* first */
	char host[300];                /* VAULT-HOST[:PORT] */
	char name[128];                /* key name */
	char version[VERSION_MAX + 1]; /* pinned version, or "" for the newest */
	int format;                    /* FORMAT_RSA or FORMAT_AES for new wraps */
	char resource[80];             /* https://vault.azure.net */
	atrest__http *http;
	atrest__http *auth;
	atrest__token token;
};

static const char *alg_name(int format)
{
	return format == FORMAT_AES ? "A256KW" : "RSA-OAEP-256";
}

/* ---- tokens */

static int env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v;
}

/* The client-credentials grant at AUTHORITY/TENANT/oauth2/v2.0/token. */
static int fetch_client(struct azure_kv *a, atrest__secret **tok, int64_t *life)
{
	const char *authority = getenv("AZURE_AUTHORITY_HOST"),
		   *tenant = getenv("AZURE_TENANT_ID");
	const char *client = getenv("AZURE_CLIENT_ID"),
		   *secret = getenv("AZURE_CLIENT_SECRET");
	const char *fed = getenv("AZURE_FEDERATED_TOKEN_FILE");
	atrest__buf form = ATREST__BUF_LOCKED;
	atrest__secret *assertion = NULL;
	atrest__http_req req = {.method = "POST", .what = "token", .secret_response = 1};
	atrest__http_resp resp;
	char url[800];
	size_t n;
	int rc;

	memset(&resp, 0, sizeof(resp));
	for (const char *c = tenant; *c; c++)
		ENSURE(isalnum((unsigned char)*c) || *c == '-' || *c == '.',
			ATREST_EUNAVAILABLE,
			"AZURE_TENANT_ID must be a tenant id or domain name");
	snprintf(url, sizeof(url), "%s",
		authority && *authority ? authority
					: "https://login.microsoftonline.com");
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		url[--n] = '\0';
	snprintf(url + n, sizeof(url) - n, "/%s/oauth2/v2.0/token", tenant);
	req.url = url;
	atrest__buf_puts(&form, "grant_type=client_credentials&client_id=");
	atrest__buf_urlenc(&form, client, strlen(client), 0);
	atrest__buf_printf(&form, "&scope=");
	atrest__buf_urlenc(&form, a->resource, strlen(a->resource), 0);
	atrest__buf_urlenc(&form, "/.default", 9, 0);
	if (secret && *secret) {
		atrest__buf_puts(&form, "&client_secret=");
		atrest__buf_urlenc(&form, secret, strlen(secret), 0);
	} else {
		GUARD_OUT(atrest__secret_read_file(
			&assertion, fed, 65536, "AZURE_FEDERATED_TOKEN_FILE"));
		atrest__buf_puts(&form, "&client_assertion_type=");
		atrest__buf_urlenc(&form, CLIENT_ASSERTION, strlen(CLIENT_ASSERTION), 0);
		atrest__buf_puts(&form, "&client_assertion=");
		atrest__buf_urlenc(&form, assertion->data, assertion->len, 0);
	}
	GUARD_OUT(atrest__buf_check(&form));
	req.body = form.data;
	req.body_len = form.len;
	atrest__http_hdrs_add(
		&req.headers, "Content-Type", "application/x-www-form-urlencoded");
	GUARD_OUT(atrest__http_do(a->auth, &req, &resp));
	if (!atrest__http_ok(&resp))
		rc = atrest__http_fail(a->auth, &req, &resp, ATREST_EUNAVAILABLE,
			strcmp(resp.code, "invalid_client") == 0
				? "check AZURE_CLIENT_ID and AZURE_CLIENT_SECRET or the federated token"
				: "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_AUTHORITY_HOST");
	else
		rc = atrest__oauth_token(a->auth, &req, &resp, tok, life);
out:
	atrest__secret_free(assertion);
	atrest__buf_free(&form);
	atrest__http_hdrs_free(&req.headers);
	atrest__http_resp_free(&resp);
	return rc;
}

/* Managed identity: App Service's IDENTITY_ENDPOINT, else the instance metadata service. */
static int fetch_managed(struct azure_kv *a, atrest__secret **tok, int64_t *life)
{
	const char *ep = getenv("IDENTITY_ENDPOINT"), *hdr = getenv("IDENTITY_HEADER");
	const char *imds = getenv("AZURE_POD_IDENTITY_AUTHORITY_HOST"),
		   *client = getenv("AZURE_CLIENT_ID");
	atrest__buf url = ATREST__BUF_INIT;
	atrest__http_req req = {.method = "GET",
		.what = "managed identity token",
		.plain_http = 1,
		.no_proxy = 1,
		.secret_response = 1};
	atrest__http_resp resp;
	int app = ep && *ep && hdr && *hdr, rc;

	memset(&resp, 0, sizeof(resp));
	if (app) {
		atrest__buf_printf(&url, "%s?api-version=2019-08-01&resource=", ep);
		atrest__http_hdrs_add(&req.headers, "X-IDENTITY-HEADER", "%s", hdr);
	} else {
		atrest__buf_printf(
			&url, "%s", imds && *imds ? imds : "http://169.254.169.254");
		while (url.len > 0 && url.data[url.len - 1] == '/')
			url.data[--url.len] = '\0';
		atrest__buf_puts(&url,
			"/metadata/identity/oauth2/token?api-version=2018-02-01&resource=");
		atrest__http_hdrs_add(&req.headers, "Metadata", "true");
	}
	atrest__buf_urlenc(&url, a->resource, strlen(a->resource), 0);
	if (client && *client) {
		atrest__buf_puts(&url, "&client_id=");
		atrest__buf_urlenc(&url, client, strlen(client), 0);
	}
	GUARD_OUT(atrest__buf_check(&url));
	req.url = url.data;
	rc = atrest__http_do(a->auth, &req, &resp);
	if (rc == ATREST_EUNAVAILABLE)
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"no Azure credentials: set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
			"AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE), or run with a "
			"managed identity (%s)",
			resp.msg[0] ? resp.msg : "none answered");
	else if (rc == 0 && !atrest__http_ok(&resp))
		rc = atrest__http_fail(a->auth, &req, &resp, ATREST_EUNAVAILABLE,
			"the managed identity has no token for Key Vault");
	else if (rc == 0)
		rc = atrest__oauth_token(a->auth, &req, &resp, tok, life);
out:
	atrest__buf_free(&url);
	atrest__http_hdrs_free(&req.headers);
	atrest__http_resp_free(&resp);
	return rc;
}

static int fetch_token(void *arg, atrest__secret **tok, int64_t *life)
{
	struct azure_kv *a = arg;

	if (env_set("AZURE_TENANT_ID") && env_set("AZURE_CLIENT_ID") &&
		(env_set("AZURE_CLIENT_SECRET") || env_set("AZURE_FEDERATED_TOKEN_FILE")))
		return fetch_client(a, tok, life);
	return fetch_managed(a, tok, life);
}

/* ---- Key Vault calls */

static int refused(const atrest__http_resp *resp)
{
	return resp->status == 401;
}

static int kv_failure(struct azure_kv *a, const atrest__http_req *req,
	const atrest__http_resp *resp, int unwrap)
{
	const char *fix = NULL;
	int rc = ATREST_EUNAVAILABLE;

	if (resp->status == 401)
		fix = "the token was refused: check the Azure credentials";
	else if (resp->status == 403)
		fix = "give this identity the Key Vault Crypto User role (or the wrapKey and "
		      "unwrapKey key permissions), and check that the key is enabled";
	else if (resp->status == 404 && !unwrap)
		fix = "no such key or key version: check the key URI";
	else if (unwrap && resp->status == 404) {
		/* The version recorded with the wrapped key is not this key's. */
		fix = "this key has no such version: the wrapped key was made by another key, "
		      "or the version was deleted";
		rc = ATREST_EKEY;
	} else if (unwrap && resp->status == 400) {
		fix = "the wrapped key belongs to another vault key, or was altered";
		rc = ATREST_EKEY;
	}
	return atrest__http_fail(a->http, req, resp, rc, fix);
}

/* POST {"alg", "value"} to keys/NAME[/VERSION]/OP; 0 with a 2xx response. */
static int kv_post(struct azure_kv *a, const char *op, const char *version, int format,
	const uint8_t *value, size_t len, atrest__http_resp *resp)
{
	atrest__cloud_auth auth = {
		&a->token, fetch_token, a, "Authorization", "Bearer ", refused};
	atrest__buf body = ATREST__BUF_LOCKED;
	atrest__http_req req = {.method = "POST", .what = op, .secret_response = 1};
	char url[800];
	int rc;

	snprintf(url, sizeof(url), "https://%s/keys/%s%s%s/%s?api-version=%s", a->host,
		a->name, *version ? "/" : "", version, op, API_VERSION);
	req.url = url;
	atrest__buf_printf(&body, "{\"alg\":\"%s\",\"value\":\"", alg_name(format));
	atrest__buf_b64(&body, value, len, 1);
	atrest__buf_puts(&body, "\"}");
	GUARD_OUT(atrest__buf_check(&body));
	req.body = body.data;
	req.body_len = body.len;
	atrest__http_hdrs_add(&req.headers, "Content-Type", "application/json");
	rc = atrest__cloud_call(a->http, &auth, &req, resp);
	if (rc == 0 && !atrest__http_ok(resp))
		rc = kv_failure(a, &req, resp, strcmp(op, "unwrapkey") == 0);
out:
	atrest__http_hdrs_free(&req.headers);
	atrest__buf_free(&body);
	return rc;
}

/* The version at the end of a kid: https://HOST/keys/NAME/VERSION. */
static int kid_version(
	char out[VERSION_MAX + 1], const struct azure_kv *a, const char *kid)
{
	const char *v = kid ? strrchr(kid, '/') : NULL;
	char want[500];
	size_t n;

	snprintf(want, sizeof(want), "/keys/%s/", a->name);
	if (!v || !strstr(kid, want) || (n = strlen(v + 1)) == 0 || n > VERSION_MAX)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[1 + i]))
			return -1;
	memcpy(out, v + 1, n + 1);
	return 0;
}

/* Wrapped form: format (1), version length (1), version, ciphertext. */
static int kv_wrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	static const char *const p_value[] = {"value", NULL};
	struct azure_kv *a = (struct azure_kv *)kp;
	uint8_t bound[ATREST__CLOUD_BOUND_LEN];
	char version[VERSION_MAX + 1];
	atrest__secret *ct = NULL;
	atrest__http_resp resp;
	json_t *j = NULL;
	size_t vl;
	int rc;

	memset(&resp, 0, sizeof(resp));
	GUARD(atrest__cloud_wrap_args(KIND, key_len, cap, 2 + VERSION_MAX + 1));
	GUARD(atrest__aad_bind(bound, key, key_len, aad, aad_len));
	rc = kv_post(a, "wrapkey", a->version, a->format, bound, sizeof(bound), &resp);
	atrest__wipe(bound, sizeof(bound));
	GUARD_OUT(rc);
	rc = atrest__json_take_b64(
		&ct, resp.body.data, resp.body.len, p_value, cap - 2 - VERSION_MAX);
	if (rc == 0)
		rc = atrest__cloud_json(
			&j, a->http, &(atrest__http_req){.what = "wrapkey"}, &resp);
	ENSURE_OUT(rc == 0 && ct->len > 0 &&
			kid_version(version, a, atrest__json_str(j, "kid")) == 0,
		ATREST_EUNAVAILABLE,
		"Azure Key Vault wrapkey: the answer has no wrapped value or no key version in "
		"its kid");
	vl = strlen(version);
	out[0] = (uint8_t)a->format;
	out[1] = (uint8_t)vl;
	memcpy(out + 2, version, vl);
	memcpy(out + 2 + vl, ct->data, ct->len);
	*out_len = 2 + vl + ct->len;
out:
	json_decref(j);
	atrest__secret_free(ct);
	atrest__http_resp_free(&resp);
	return rc;
}

int atrest__azure_blob_parse(const uint8_t *w, size_t n, int *format,
	char version[ATREST__AZURE_VERSION_MAX + 1], const uint8_t **ct, size_t *ct_len)
{
	size_t vl = n >= 2 ? w[1] : 0;

	ENSURE(n > 2 + vl && (w[0] == FORMAT_RSA || w[0] == FORMAT_AES) && vl > 0 &&
			vl <= VERSION_MAX,
		ATREST_EKEY, "the wrapped key is not one the azure-kv provider made");
	for (size_t i = 0; i < vl; i++)
		ENSURE(isalnum(w[2 + i]), ATREST_EKEY,
			"the wrapped key is not one the azure-kv provider made");
	memcpy(version, w + 2, vl);
	version[vl] = '\0';
	*format = w[0];
	*ct = w + 2 + vl;
	*ct_len = n - 2 - vl;
	return 0;
}

static int kv_unwrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	static const char *const p_value[] = {"value", NULL};
	struct azure_kv *a = (struct azure_kv *)kp;
	char version[VERSION_MAX + 1];
	atrest__http_resp resp;
	const uint8_t *ct;
	size_t ct_len;
	int format, rc;

	memset(&resp, 0, sizeof(resp));
	GUARD(atrest__azure_blob_parse(
		wrapped, wrapped_len, &format, version, &ct, &ct_len));
	GUARD_OUT(kv_post(a, "unwrapkey", version, format, ct, ct_len, &resp));
	rc = atrest__aad_unbind_answer(
		out, cap, out_len, &resp, p_value, aad, aad_len, "Azure Key Vault");
out:
	atrest__http_resp_free(&resp);
	return rc;
}

static void kv_free(atrest_keyprov *kp)
{
	struct azure_kv *a = (struct azure_kv *)kp;

	atrest__http_free(a->http);
	atrest__http_free(a->auth);
	atrest__token_clear(&a->token);
	free(a);
}

static int name_ok(const char *s, size_t n, size_t max, int dash)
{
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !(dash && s[i] == '-'))
			return 0;
	return 1;
}

/* VAULT-HOST[:PORT]/keys/NAME[/VERSION][?alg=...] */
static int kv_parse(struct azure_kv *a, const char *uri)
{
	static const char *const params[] = {"alg", NULL};
	const char *p, *k, *v;
	size_t hl, nl, vl;
	char alg[32];
	int has_alg;

	ENSURE(strncasecmp(uri, "azure-kv://", 11) == 0, ATREST_EKEY,
		"not an azure-kv URI");
	p = uri + 11;
	hl = strcspn(p, "/?");
	k = p + hl;
	ENSURE(hl > 0 && hl < sizeof(a->host) && strncmp(k, "/keys/", 6) == 0,
		ATREST_EKEY,
		"not an Azure Key Vault key URI: expected "
		"azure-kv://VAULT.vault.azure.net/keys/NAME[/VERSION]");
	for (size_t i = 0; i < hl; i++)
		ENSURE(isalnum((unsigned char)p[i]) || strchr(".-:[]", p[i]), ATREST_EKEY,
			"Azure Key Vault key URI: the vault host is malformed");
	memcpy(a->host, p, hl);
	k += 6;
	nl = strcspn(k, "/?");
	v = k[nl] == '/' ? k + nl + 1 : k + nl;
	vl = strcspn(v, "?");
	ENSURE(name_ok(k, nl, 127, 1) && (vl == 0 || name_ok(v, vl, VERSION_MAX, 0)) &&
			(v[vl] == '\0' || v[vl] == '?'),
		ATREST_EKEY, "Azure Key Vault key URI: bad key name or version");
	memcpy(a->name, k, nl);
	memcpy(a->version, v, vl);
	GUARD(atrest__uri_params_known(uri, params, "Azure Key Vault"));
	GUARD(has_alg = atrest__uri_param(alg, sizeof(alg), uri, "alg"));
	a->format = strstr(a->host, ".managedhsm.") ? FORMAT_AES : FORMAT_RSA;
	if (has_alg) {
		ENSURE(strcmp(alg, "RSA-OAEP-256") == 0 || strcmp(alg, "A256KW") == 0,
			ATREST_EKEY,
			"Azure Key Vault key URI: alg is RSA-OAEP-256 or A256KW");
		a->format = strcmp(alg, "A256KW") == 0 ? FORMAT_AES : FORMAT_RSA;
	}
	snprintf(a->resource, sizeof(a->resource), "%s",
		strstr(a->host, ".managedhsm.") ? "https://managedhsm.azure.net"
						: "https://vault.azure.net");
	return 0;
}

int atrest__keyprov_azure_kv(atrest_keyprov **out, const char *uri)
{
	atrest__http_opts kv = {.service = "Azure Key Vault"};
	atrest__http_opts aad = {.service = "Azure AD", .max_response = 65536};
	struct azure_kv *a;
	char id[500];
	int rc;

	*out = NULL;
	GUARD(atrest__crypto_init());
	a = calloc(1, sizeof(*a));
	ENSURE(a, ATREST_ERROR, "out of memory");
	atrest__cloud_kp_init(&a->base, KIND, kv_wrap, kv_unwrap, kv_free);
	atrest__token_init(&a->token);
	GUARD_OUT(kv_parse(a, uri));
	GUARD_OUT(atrest__http_new(&a->http, &kv));
	GUARD_OUT(atrest__http_new(&a->auth, &aad));
	snprintf(id, sizeof(id), "%s/keys/%s", a->host, a->name);
	atrest__cloud_key_id(a->base.key_id, sizeof(a->base.key_id), "azure-kv:", id);
	*out = &a->base.parent;
	return 0;
out:
	kv_free(&a->base.parent);
	return rc;
}
