/*
 * Google Cloud KMS master keys
 * (gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K): :encrypt and
 * :decrypt over REST with the core's AAD as additionalAuthenticatedData and
 * CRC32C integrity fields; OAuth 2 access tokens from a service-account key
 * (an RS256 JWT signed here, exchanged at the file's token_uri), gcloud's
 * user credentials, or the GCE metadata server.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloud.h"
#include "crypto.h"
#include "keyring.h"
#include "plugins.h"

#define KIND "gcp-kms"
#define NAME_MAX_LEN 512
#define KEYFILE_MAX 65536
#define SCOPE "https://www.googleapis.com/auth/cloudkms"
#define GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"
#define JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"

enum cred_kind { CRED_NONE, CRED_SERVICE_ACCOUNT, CRED_USER, CRED_METADATA };

struct gcp_kms {
	atrest__cloud_kp base;       /* first */
	char name[NAME_MAX_LEN + 1]; /* projects/.../cryptoKeys/K */
	char endpoint[512];          /* https://cloudkms.googleapis.com */
	atrest__http *http;          /* Cloud KMS */
	atrest__http *auth;          /* token endpoint or metadata server */
	atrest__token token;
	pthread_mutex_t mu; /* loading the credentials */
	int kind;           /* enum cred_kind, once loaded */
	char source[600];   /* the credentials file, or "metadata server" */
	char email[256];    /* service account */
	char key_kid[128];  /* private_key_id */
	char token_uri[600];
	char client_id[256];
	EVP_PKEY *pkey;             /* service account key */
	atrest__secret *refresh;    /* user credentials: refresh token */
	atrest__secret *client_sec; /* user credentials: client secret */
};

/* ---- credentials */

static int sa_fields(struct gcp_kms *g, json_t *j)
{
	const char *email = atrest__json_str(j, "client_email");
	const char *kid = atrest__json_str(j, "private_key_id");
	const char *uri = atrest__json_str(j, "token_uri");

	ENSURE(email && strlen(email) < sizeof(g->email) &&
			(!kid || strlen(kid) < sizeof(g->key_kid)),
		ATREST_EUNAVAILABLE, "Google credentials %s: no usable client_email",
		g->source);
	snprintf(g->email, sizeof(g->email), "%s", email);
	snprintf(g->key_kid, sizeof(g->key_kid), "%s", kid ? kid : "");
	snprintf(g->token_uri, sizeof(g->token_uri), "%s", uri ? uri : GOOGLE_TOKEN_URI);
	return 0;
}

/* The service account's private key, PEM text in locked memory. */
static int sa_key(struct gcp_kms *g, const atrest__secret *pem)
{
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);

	ENSURE(bio, ATREST_ERROR, "out of memory");
	g->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!g->pkey || EVP_PKEY_get_base_id(g->pkey) != EVP_PKEY_RSA)
		return atrest__error_ossl(ATREST_EUNAVAILABLE,
			"Google credentials %s: private_key is not an RSA key in PEM",
			g->source);
	return 0;
}

static int user_fields(struct gcp_kms *g, json_t *j)
{
	const char *id = atrest__json_str(j, "client_id");
	const char *uri = atrest__json_str(j, "token_uri");

	ENSURE(id && strlen(id) < sizeof(g->client_id) && g->refresh && g->client_sec,
		ATREST_EUNAVAILABLE,
		"Google credentials %s: authorized_user without client_id, client_secret "
		"or refresh_token",
		g->source);
	snprintf(g->client_id, sizeof(g->client_id), "%s", id);
	snprintf(g->token_uri, sizeof(g->token_uri), "%s", uri ? uri : GOOGLE_TOKEN_URI);
	return 0;
}

/* Parse a credentials file: secrets taken out first, then the rest. */
static int load_file(struct gcp_kms *g, atrest__secret *text)
{
	static const char *const p_key[] = {"private_key", NULL};
	static const char *const p_refresh[] = {"refresh_token", NULL};
	static const char *const p_secret[] = {"client_secret", NULL};
	char *t = (char *)text->data;
	atrest__secret *pem = NULL;
	const char *type;
	json_t *j = NULL;
	int rc = 0;

	if (atrest__json_take(&pem, t, text->len, p_key) == ATREST_EINVAL ||
		atrest__json_take(&g->refresh, t, text->len, p_refresh) ==
			ATREST_EINVAL ||
		atrest__json_take(&g->client_sec, t, text->len, p_secret) ==
			ATREST_EINVAL ||
		!(j = json_loadb(t, text->len, JSON_REJECT_DUPLICATES, NULL)))
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"Google credentials %s: not a JSON credentials file", g->source);
	type = j ? atrest__json_str(j, "type") : NULL;
	if (rc == 0 && type && strcmp(type, "service_account") == 0 && pem) {
		g->kind = CRED_SERVICE_ACCOUNT;
		rc = sa_fields(g, j);
		rc = rc ? rc : sa_key(g, pem);
	} else if (rc == 0 && type && strcmp(type, "authorized_user") == 0) {
		g->kind = CRED_USER;
		rc = user_fields(g, j);
	} else if (rc == 0) {
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"Google credentials %s: type \"%.40s\" is not supported (use a "
			"service_account key or gcloud's authorized_user credentials)",
			g->source, type ? type : "?");
	}
	if (rc == 0 && strncasecmp(g->token_uri, "https://", 8) != 0)
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"Google credentials %s: token_uri must be https://", g->source);
	json_decref(j);
	atrest__secret_free(pem);
	return rc;
}

/* The well-known file gcloud writes (application default credentials). */
static void well_known(char *out, size_t cap)
{
	const char *cfg = getenv("CLOUDSDK_CONFIG"), *home = getenv("HOME");

	if (cfg && *cfg)
		snprintf(out, cap, "%s/application_default_credentials.json", cfg);
	else
		snprintf(out, cap,
			"%s/.config/gcloud/application_default_credentials.json",
			home ? home : "");
}

/* Find the credentials the way Google's client libraries do (once). */
static int load_credentials(struct gcp_kms *g)
{
	const char *env = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	atrest__secret *text = NULL;
	char path[600];
	int rc = 0;

	if (g->kind != CRED_NONE)
		return 0;
	if (env && *env) {
		snprintf(path, sizeof(path), "%s", env);
	} else {
		well_known(path, sizeof(path));
		if (access(path, R_OK) != 0) {
			g->kind = CRED_METADATA;
			snprintf(g->source, sizeof(g->source), "the metadata server");
			return 0;
		}
	}
	snprintf(g->source, sizeof(g->source), "%s", path);
	GUARD(atrest__secret_read_file(&text, path, KEYFILE_MAX,
		env && *env ? "GOOGLE_APPLICATION_CREDENTIALS" : "Google credentials"));
	rc = load_file(g, text);
	atrest__secret_free(text);
	if (rc < 0) {
		g->kind = CRED_NONE;
		EVP_PKEY_free(g->pkey);
		g->pkey = NULL;
		atrest__secret_free(g->refresh);
		atrest__secret_free(g->client_sec);
		g->refresh = g->client_sec = NULL;
	}
	return rc;
}

/* ---- access tokens */

/* header.claims.signature, each base64url, into a locked buffer. */
static int sign_jwt(struct gcp_kms *g, atrest__buf *out)
{
	atrest__buf hdr = ATREST__BUF_INIT, claims = ATREST__BUF_INIT;
	int64_t now = (int64_t)time(NULL);
	EVP_MD_CTX *md = NULL;
	uint8_t *sig = NULL;
	size_t sig_len = 0;
	int rc = 0;

	atrest__buf_puts(&hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":");
	atrest__buf_json_str(&hdr, g->key_kid, strlen(g->key_kid));
	atrest__buf_puts(&hdr, "}");
	atrest__buf_puts(&claims, "{\"iss\":");
	atrest__buf_json_str(&claims, g->email, strlen(g->email));
	atrest__buf_printf(&claims, ",\"scope\":\"%s\",\"aud\":", SCOPE);
	atrest__buf_json_str(&claims, g->token_uri, strlen(g->token_uri));
	atrest__buf_printf(&claims, ",\"iat\":%lld,\"exp\":%lld}", (long long)now,
		(long long)now + 3600);
	GUARD_OUT(atrest__buf_check(&hdr));
	GUARD_OUT(atrest__buf_check(&claims));
	atrest__buf_b64(out, (const uint8_t *)hdr.data, hdr.len, 1);
	atrest__buf_putc(out, '.');
	atrest__buf_b64(out, (const uint8_t *)claims.data, claims.len, 1);
	GUARD_OUT(atrest__buf_check(out));
	md = EVP_MD_CTX_new();
	sig = malloc((size_t)EVP_PKEY_get_size(g->pkey));
	ENSURE_OUT(md && sig, ATREST_ERROR, "out of memory");
	sig_len = (size_t)EVP_PKEY_get_size(g->pkey);
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, g->pkey) != 1 ||
		EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)out->data, out->len) !=
			1) {
		rc = atrest__error_ossl(ATREST_EUNAVAILABLE,
			"Google credentials %s: cannot sign the token request",
			g->source);
		goto out;
	}
	atrest__buf_putc(out, '.');
	atrest__buf_b64(out, sig, sig_len, 1);
	rc = atrest__buf_check(out);
out:
	EVP_MD_CTX_free(md);
	free(sig);
	atrest__buf_free(&hdr);
	atrest__buf_free(&claims);
	return rc;
}

/* POST a form to the token endpoint. */
static int token_post(
	struct gcp_kms *g, const atrest__buf *form, atrest__secret **tok, int64_t *life)
{
	atrest__http_req req = {.method = "POST",
		.url = g->token_uri,
		.what = "token",
		.body = form->data,
		.body_len = form->len,
		.secret_response = 1};
	atrest__http_resp resp;
	int rc;

	atrest__http_hdrs_add(
		&req.headers, "Content-Type", "application/x-www-form-urlencoded");
	rc = atrest__http_do(g->auth, &req, &resp);
	if (rc == 0 && !atrest__http_ok(&resp)) {
		char fix[700];
		snprintf(fix, sizeof(fix), "%s: check %s",
			strcmp(resp.code, "invalid_grant") == 0
				? "the key or refresh token is not valid (revoked, or the clock is off)"
				: "the credentials were refused",
			g->source);
		rc = atrest__http_fail(g->auth, &req, &resp, ATREST_EUNAVAILABLE, fix);
	}
	if (rc == 0)
		rc = atrest__oauth_token(g->auth, &req, &resp, tok, life);
	atrest__http_hdrs_free(&req.headers);
	atrest__http_resp_free(&resp);
	return rc;
}

static int fetch_sa(struct gcp_kms *g, atrest__secret **tok, int64_t *life)
{
	atrest__buf form = ATREST__BUF_LOCKED, jwt = ATREST__BUF_LOCKED;
	int rc;

	GUARD_OUT(sign_jwt(g, &jwt));
	atrest__buf_puts(&form, "grant_type=");
	atrest__buf_urlenc(&form, JWT_BEARER, strlen(JWT_BEARER), 0);
	atrest__buf_puts(&form, "&assertion=");
	atrest__buf_put(&form, jwt.data, jwt.len); /* base64url: nothing to encode */
	GUARD_OUT(atrest__buf_check(&form));
	rc = token_post(g, &form, tok, life);
out:
	atrest__buf_free(&form);
	atrest__buf_free(&jwt);
	return rc;
}

static int fetch_user(struct gcp_kms *g, atrest__secret **tok, int64_t *life)
{
	atrest__buf form = ATREST__BUF_LOCKED;
	int rc;

	atrest__buf_puts(&form, "grant_type=refresh_token&client_id=");
	atrest__buf_urlenc(&form, g->client_id, strlen(g->client_id), 0);
	atrest__buf_puts(&form, "&client_secret=");
	atrest__buf_urlenc(&form, g->client_sec->data, g->client_sec->len, 0);
	atrest__buf_puts(&form, "&refresh_token=");
	atrest__buf_urlenc(&form, g->refresh->data, g->refresh->len, 0);
	rc = atrest__buf_check(&form);
	if (rc == 0)
		rc = token_post(g, &form, tok, life);
	atrest__buf_free(&form);
	return rc;
}

static int fetch_metadata(struct gcp_kms *g, atrest__secret **tok, int64_t *life)
{
	const char *host = getenv("GCE_METADATA_HOST");
	char url[600];
	atrest__http_req req = {.method = "GET",
		.url = url,
		.what = "metadata token",
		.plain_http = 1,
		.no_proxy = 1,
		.secret_response = 1};
	atrest__http_resp resp;
	const char *flavor;
	int rc;

	snprintf(url, sizeof(url),
		"http://%s/computeMetadata/v1/instance/service-accounts/default/token?scopes=%s",
		host && *host ? host : "metadata.google.internal", SCOPE);
	atrest__http_hdrs_add(&req.headers, "Metadata-Flavor", "Google");
	rc = atrest__http_do(g->auth, &req, &resp);
	if (rc == ATREST_EUNAVAILABLE)
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service "
			"account key file, or run where the metadata server answers (%s)",
			resp.msg[0] ? resp.msg : "it did not");
	flavor = atrest__http_hdrs_get(&resp.headers, "Metadata-Flavor");
	if (rc == 0 && !atrest__http_ok(&resp))
		rc = atrest__http_fail(g->auth, &req, &resp, ATREST_EUNAVAILABLE,
			"the instance's service account has no token");
	else if (rc == 0 && (!flavor || strcmp(flavor, "Google") != 0))
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"Google metadata server: the answer lacks Metadata-Flavor: Google");
	if (rc == 0)
		rc = atrest__oauth_token(g->auth, &req, &resp, tok, life);
	atrest__http_hdrs_free(&req.headers);
	atrest__http_resp_free(&resp);
	return rc;
}

static int fetch_token(void *arg, atrest__secret **tok, int64_t *life)
{
	struct gcp_kms *g = arg;
	int rc;

	pthread_mutex_lock(&g->mu);
	rc = load_credentials(g);
	pthread_mutex_unlock(&g->mu);
	GUARD(rc);
	if (g->kind == CRED_SERVICE_ACCOUNT)
		return fetch_sa(g, tok, life);
	if (g->kind == CRED_USER)
		return fetch_user(g, tok, life);
	return fetch_metadata(g, tok, life);
}

/* ---- Cloud KMS calls */

static int refused(const atrest__http_resp *resp)
{
	return resp->status == 401;
}

static int gcp_failure(struct gcp_kms *g, const atrest__http_req *req,
	const atrest__http_resp *resp, int decrypt)
{
	char fix[800];
	int rc = ATREST_EUNAVAILABLE;

	if (resp->status == 401)
		snprintf(fix, sizeof(fix), "the access token was refused: check %s",
			g->source);
	else if (resp->status == 403)
		snprintf(fix, sizeof(fix),
			"grant roles/cloudkms.cryptoKeyEncrypterDecrypter on the key to %s",
			g->email[0] ? g->email : g->source);
	else if (resp->status == 404)
		snprintf(fix, sizeof(fix), "no such key: check the key URI");
	else if (strcmp(resp->code, "FAILED_PRECONDITION") == 0)
		snprintf(fix, sizeof(fix), "enable the key's primary version");
	else if (decrypt && strcmp(resp->code, "INVALID_ARGUMENT") == 0) {
		snprintf(fix, sizeof(fix),
			"the wrapped key belongs to another store or key, or was altered");
		rc = ATREST_EKEY;
	} else
		fix[0] = '\0';
	return atrest__http_fail(g->http, req, resp, rc, fix[0] ? fix : NULL);
}

static int gcp_post(struct gcp_kms *g, const char *verb, const atrest__buf *body,
	atrest__http_resp *resp)
{
	char url[1200];
	atrest__cloud_auth auth = {
		&g->token, fetch_token, g, "Authorization", "Bearer ", refused};
	atrest__http_req req = {.method = "POST",
		.url = url,
		.what = verb,
		.body = body->data,
		.body_len = body->len,
		.secret_response = 1};
	int rc;

	snprintf(url, sizeof(url), "%s/v1/%s:%s", g->endpoint, g->name, verb);
	atrest__http_hdrs_add(&req.headers, "Content-Type", "application/json");
	rc = atrest__cloud_call(g->http, &auth, &req, resp);
	if (rc == 0 && !atrest__http_ok(resp))
		rc = gcp_failure(g, &req, resp, strcmp(verb, "decrypt") == 0);
	atrest__http_hdrs_free(&req.headers);
	return rc;
}

/* An int64 field of proto3 JSON: a decimal string (or a number). */
static int crc_field(json_t *j, const char *name, uint32_t *out)
{
	json_t *v = json_object_get(j, name);
	long long n;

	if (json_is_integer(v))
		n = json_integer_value(v);
	else if (json_is_string(v) && *json_string_value(v))
		n = strtoll(json_string_value(v), NULL, 10);
	else
		return -1;
	if (n < 0 || n > 0xFFFFFFFFLL)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

static void put_b64_field(atrest__buf *b, const char *name, const uint8_t *p, size_t n)
{
	atrest__buf_printf(b, "\"%s\":\"", name);
	atrest__buf_b64(b, p, n, 0);
	atrest__buf_printf(
		b, "\",\"%sCrc32c\":\"%u\"", name, (unsigned)atrest__crc32c(p, n));
}

static int gcp_wrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	struct gcp_kms *g = (struct gcp_kms *)kp;
	atrest__buf body = ATREST__BUF_LOCKED;
	atrest__http_resp resp;
	json_t *j = NULL;
	const char *ct;
	uint32_t crc = 0;
	int rc;

	memset(&resp, 0, sizeof(resp));
	GUARD(atrest__cloud_wrap_args(KIND, key_len, cap, 1));
	atrest__buf_putc(&body, '{');
	put_b64_field(&body, "plaintext", key, key_len);
	atrest__buf_putc(&body, ',');
	put_b64_field(&body, "additionalAuthenticatedData", aad, aad_len);
	atrest__buf_putc(&body, '}');
	GUARD_OUT(atrest__buf_check(&body));
	GUARD_OUT(gcp_post(g, "encrypt", &body, &resp));
	GUARD_OUT(atrest__cloud_json(
		&j, g->http, &(atrest__http_req){.what = "encrypt"}, &resp));
	ct = atrest__json_str(j, "ciphertext");
	ENSURE_OUT(ct && atrest__b64_decode(out, cap, out_len, ct, strlen(ct)) == 0 &&
			*out_len > 0 && crc_field(j, "ciphertextCrc32c", &crc) == 0 &&
			crc == atrest__crc32c(out, *out_len) &&
			json_is_true(json_object_get(j, "verifiedPlaintextCrc32c")) &&
			json_is_true(json_object_get(
				j, "verifiedAdditionalAuthenticatedDataCrc32c")),
		ATREST_EUNAVAILABLE,
		"Google Cloud KMS encrypt: the answer failed its integrity checks (ciphertext, "
		"CRC32C)");
out:
	json_decref(j);
	atrest__buf_free(&body);
	atrest__http_resp_free(&resp);
	return rc;
}

static int gcp_unwrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	static const char *const p_plain[] = {"plaintext", NULL};
	struct gcp_kms *g = (struct gcp_kms *)kp;
	atrest__buf body = ATREST__BUF_INIT;
	atrest__secret *pt = NULL;
	atrest__http_resp resp;
	json_t *j = NULL;
	uint32_t crc = 0;
	int rc;

	memset(&resp, 0, sizeof(resp));
	atrest__buf_putc(&body, '{');
	put_b64_field(&body, "ciphertext", wrapped, wrapped_len);
	atrest__buf_putc(&body, ',');
	put_b64_field(&body, "additionalAuthenticatedData", aad, aad_len);
	atrest__buf_putc(&body, '}');
	GUARD_OUT(atrest__buf_check(&body));
	GUARD_OUT(gcp_post(g, "decrypt", &body, &resp));
	rc = atrest__json_take_b64(&pt, resp.body.data, resp.body.len, p_plain, 64);
	if (rc == 0)
		rc = atrest__cloud_json(
			&j, g->http, &(atrest__http_req){.what = "decrypt"}, &resp);
	ENSURE_OUT(rc == 0 && pt->len == ATREST__CLOUD_DEK_LEN && cap >= pt->len &&
			crc_field(j, "plaintextCrc32c", &crc) == 0 &&
			crc == atrest__crc32c(pt->data, pt->len),
		ATREST_EUNAVAILABLE,
		"Google Cloud KMS decrypt: the answer has no %d-byte plaintext that passes "
		"its CRC32C check",
		ATREST__CLOUD_DEK_LEN);
	memcpy(out, pt->data, pt->len);
	*out_len = pt->len;
out:
	json_decref(j);
	atrest__secret_free(pt);
	atrest__buf_free(&body);
	atrest__http_resp_free(&resp);
	return rc;
}

static void gcp_free(atrest_keyprov *kp)
{
	struct gcp_kms *g = (struct gcp_kms *)kp;

	atrest__http_free(g->http);
	atrest__http_free(g->auth);
	atrest__token_clear(&g->token);
	EVP_PKEY_free(g->pkey);
	atrest__secret_free(g->refresh);
	atrest__secret_free(g->client_sec);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

/* projects/P/locations/L/keyRings/R/cryptoKeys/K, each id of [A-Za-z0-9._:-]. */
static int valid_name(const char *s)
{
	static const char *const fixed[] = {
		"projects", "locations", "keyRings", "cryptoKeys"};
	const char *p = s;

	for (int i = 0; i < 4; i++) {
		size_t n = strlen(fixed[i]), id;

		if (strncmp(p, fixed[i], n) != 0 || p[n] != '/')
			return 0;
		p += n + 1;
		id = strcspn(p, "/");
		if (id == 0 || id > 100)
			return 0;
		for (size_t k = 0; k < id; k++)
			if (!isalnum((unsigned char)p[k]) && !strchr("._:-", p[k]))
				return 0;
		p += id;
		if (i < 3 && *p++ != '/')
			return 0;
	}
	return *p == '\0';
}

static int gcp_parse(struct gcp_kms *g, const char *uri)
{
	const char *name = "", *ep = getenv("ATREST_GCP_KMS_ENDPOINT");
	size_t n;

	if (strncasecmp(uri, "gcp-kms://", 10) == 0)
		name = uri + 10;
	ENSURE(strlen(name) <= NAME_MAX_LEN && !strchr(name, '?') && valid_name(name),
		ATREST_EKEY,
		"not a Google Cloud KMS key URI: expected "
		"gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K");
	snprintf(g->name, sizeof(g->name), "%s", name);
	snprintf(g->endpoint, sizeof(g->endpoint), "%s",
		ep && *ep ? ep : "https://cloudkms.googleapis.com");
	n = strlen(g->endpoint);
	while (n > 0 && g->endpoint[n - 1] == '/')
		g->endpoint[--n] = '\0';
	ENSURE(strncasecmp(g->endpoint, "https://", 8) == 0 && n > 8 &&
			n < sizeof(g->endpoint) - 1,
		ATREST_EKEY, "ATREST_GCP_KMS_ENDPOINT must be an https:// base URL");
	return 0;
}

int atrest__keyprov_gcp_kms(atrest_keyprov **out, const char *uri)
{
	atrest__http_opts kms = {.service = "Google Cloud KMS"};
	atrest__http_opts oauth = {.service = "Google OAuth", .max_response = 65536};
	struct gcp_kms *g;
	int rc;

	*out = NULL;
	GUARD(atrest__crypto_init());
	g = calloc(1, sizeof(*g));
	ENSURE(g, ATREST_ERROR, "out of memory");
	atrest__cloud_kp_init(&g->base, KIND, gcp_wrap, gcp_unwrap, gcp_free);
	atrest__token_init(&g->token);
	pthread_mutex_init(&g->mu, NULL);
	GUARD_OUT(gcp_parse(g, uri));
	GUARD_OUT(atrest__http_new(&g->http, &kms));
	GUARD_OUT(atrest__http_new(&g->auth, &oauth));
	atrest__cloud_key_id(g->base.key_id, sizeof(g->base.key_id), "gcp-kms:", g->name);
	*out = &g->base.parent;
	return 0;
out:
	gcp_free(&g->base.parent);
	return rc;
}
