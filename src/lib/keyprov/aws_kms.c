/*
 * AWS KMS master keys (aws-kms://KEY[?region=R&profile=P]): data keys
 * wrapped with Encrypt and unwrapped with Decrypt over the KMS JSON 1.1
 * protocol, SigV4-signed, with an EncryptionContext made from the core's
 * AAD so a wrapped key only unwraps for its own store and role.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "awscred.h"
#include "cloud.h"
#include "crypto.h"
#include "plugins.h"
#include "sigv4.h"

#define KIND "aws-kms"
#define KEY_MAX 2048

struct aws_kms {
	atrest__cloud_kp base; /* first */
	char key[KEY_MAX + 1]; /* key id, key ARN, alias name or alias ARN */
	char region[64];
	char url[600];  /* endpoint + "/" */
	char host[300]; /* Host header */
	atrest__awscred *cred;
	atrest__http *http;
};

/* ---- one signed call */

struct kms_call {
	struct aws_kms *k;
	const char *target; /* "TrentService.Encrypt" */
	const atrest__buf *body;
	const atrest__aws_keys *keys;
};

/* Sign again before every attempt: a fresh X-Amz-Date. */
static int kms_sign(atrest__http_req *req, void *arg)
{
	struct kms_call *c = arg;
	char date[17], hash[65], *auth = NULL;
	uint8_t h[32];
	atrest__sigv4_hdr hd[5] = {{"content-type", "application/x-amz-json-1.1"},
		{"host", c->k->host}, {"x-amz-date", date}, {"x-amz-target", c->target},
		{"x-amz-security-token",
			c->keys->token ? (char *)c->keys->token->data : ""}};
	atrest__sigv4_msg m = {"POST", "/", "", hd, c->keys->token ? 5 : 4, hash};
	atrest__sigv4_creds cr = {c->keys->access_key, c->keys->secret->data,
		c->keys->secret->len,
		c->keys->token ? (char *)c->keys->token->data : NULL};

	GUARD(atrest__sigv4_amz_date(date, (int64_t)time(NULL)));
	GUARD(atrest__sha256(h, c->body->data, c->body->len));
	for (int i = 0; i < 32; i++)
		snprintf(hash + 2 * i, 3, "%02x", h[i]);
	GUARD(atrest__sigv4_authorization(&auth, &m, &cr, date, c->k->region, "kms", 0));
	atrest__http_hdrs_free(&req->headers);
	for (size_t i = 0; i < m.nheaders; i++)
		atrest__http_hdrs_add(&req->headers, hd[i].name, "%s", hd[i].value);
	atrest__http_hdrs_add(&req->headers, "Authorization", "%s", auth);
	free(auth);
	return 0;
}

/* What the operator should do about a KMS error code. */
static int kms_failure(struct aws_kms *k, const atrest__http_req *req,
	const atrest__http_resp *resp, const atrest__aws_keys *keys)
{
	static const struct {
		const char *code;
		int rc;
		const char *fix;
	} table[] = {
		{"InvalidCiphertextException", ATREST_EKEY,
			"the wrapped key belongs to another store or KMS key, or was altered"},
		{"IncorrectKeyException", ATREST_EKEY,
			"the wrapped key was made by another KMS key"},
		{"AccessDeniedException", ATREST_EUNAVAILABLE,
			"allow kms:Encrypt and kms:Decrypt on this key to these credentials"},
		{"UnrecognizedClientException", ATREST_EUNAVAILABLE,
			"the access key or session token is not valid: check the credentials"},
		{"InvalidClientTokenId", ATREST_EUNAVAILABLE,
			"the access key is not valid: check the credentials"},
		{"InvalidSignatureException", ATREST_EUNAVAILABLE,
			"the secret access key does not match the access key, or the clock is off"},
		{"IncompleteSignatureException", ATREST_EUNAVAILABLE, NULL},
		{"ExpiredTokenException", ATREST_EUNAVAILABLE,
			"the session credentials expired: refresh them"},
		{"NotFoundException", ATREST_EUNAVAILABLE,
			"no such KMS key in this account and region: check the key URI and region"},
		{"DisabledException", ATREST_EUNAVAILABLE, "enable the KMS key"},
		{"KMSInvalidStateException", ATREST_EUNAVAILABLE,
			"the KMS key is pending deletion or not usable"},
		{"InvalidKeyUsageException", ATREST_EUNAVAILABLE,
			"use a symmetric ENCRYPT_DECRYPT KMS key"},
	};
	char fix[200];

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(resp->code, table[i].code) == 0) {
			snprintf(fix, sizeof(fix), "%s%s%s",
				table[i].fix ? table[i].fix : "",
				table[i].fix ? "; credentials from "
					     : "credentials from ",
				keys->source);
			return atrest__http_fail(k->http, req, resp, table[i].rc, fix);
		}
	return atrest__http_fail(k->http, req, resp, ATREST_EUNAVAILABLE, NULL);
}

static int expired(const atrest__http_resp *resp)
{
	return strcmp(resp->code, "ExpiredTokenException") == 0 ||
		strcmp(resp->code, "ExpiredToken") == 0 ||
		strcmp(resp->code, "RequestExpired") == 0;
}

/*
 * POST one operation; 0 with a 2xx response in resp.  Expired session
 * credentials are fetched again once.
 */
static int kms_post(struct aws_kms *k, const char *op, const atrest__buf *body,
	atrest__http_resp *resp)
{
	char target[64];
	int rc = 0;

	snprintf(target, sizeof(target), "TrentService.%s", op);
	for (int round = 0; round < 2; round++) {
		atrest__aws_keys keys;
		struct kms_call c = {k, target, body, &keys};
		atrest__http_req req = {.method = "POST",
			.url = k->url,
			.what = op,
			.body = body->data,
			.body_len = body->len,
			.prepare = kms_sign,
			.prepare_arg = &c,
			.secret_response = 1};

		GUARD(atrest__awscred_get(k->cred, &keys, round > 0));
		rc = atrest__http_do(k->http, &req, resp);
		if (rc == 0 && !atrest__http_ok(resp) && !(round == 0 && expired(resp)))
			rc = kms_failure(k, &req, resp, &keys);
		atrest__http_hdrs_free(&req.headers);
		atrest__aws_keys_clear(&keys);
		if (rc < 0 || atrest__http_ok(resp))
			return rc;
		atrest__http_resp_free(resp);
	}
	return rc;
}

/* ---- the provider */

/*
 * One operation on a body {"KeyId", "EncryptionContext", field: base64}
 * (locked: it may carry the plaintext key); the answer's base64 member
 * want, of 1 to cap bytes, into a new secret.
 */
static int kms_op(struct aws_kms *k, const char *op, const uint8_t *aad, size_t aad_len,
	const char *field, const uint8_t *data, size_t len, const char *want, size_t cap,
	atrest__secret **out)
{
	const char *const path[] = {want, NULL};
	atrest__buf body = ATREST__BUF_LOCKED;
	atrest__http_resp resp;
	int rc;

	*out = NULL;
	memset(&resp, 0, sizeof(resp));
	atrest__buf_puts(&body, "{\"KeyId\":");
	atrest__buf_json_str(&body, k->key, strlen(k->key));
	atrest__buf_puts(&body, ",\"EncryptionContext\":");
	atrest__aad_context(&body, aad, aad_len);
	atrest__buf_printf(&body, ",\"%s\":\"", field);
	atrest__buf_b64(&body, data, len, 0);
	atrest__buf_puts(&body, "\"}");
	GUARD_OUT(atrest__buf_check(&body));
	GUARD_OUT(kms_post(k, op, &body, &resp));
	rc = atrest__json_take_b64(out, resp.body.data, resp.body.len, path, cap);
	if (rc == 0 && (*out)->len == 0) {
		atrest__secret_free(*out);
		*out = NULL;
		rc = ATREST_EINVAL;
	}
	if (rc < 0)
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"AWS KMS %s: the answer has no usable %s (1 to %zu bytes)", op,
			want, cap);
out:
	atrest__buf_free(&body);
	atrest__http_resp_free(&resp);
	return rc;
}

static int kms_wrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	atrest__secret *blob;

	GUARD(atrest__cloud_wrap_args(KIND, key_len, cap, 1));
	GUARD(kms_op((struct aws_kms *)kp, "Encrypt", aad, aad_len, "Plaintext", key,
		key_len, "CiphertextBlob", cap, &blob));
	memcpy(out, blob->data, blob->len);
	*out_len = blob->len;
	atrest__secret_free(blob);
	return 0;
}

static int kms_unwrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	atrest__secret *pt;
	int rc;

	GUARD(kms_op((struct aws_kms *)kp, "Decrypt", aad, aad_len, "CiphertextBlob",
		wrapped, wrapped_len, "Plaintext", 64, &pt));
	rc = pt->len == ATREST__CLOUD_DEK_LEN && cap >= pt->len
		? 0
		: atrest__error(ATREST_EUNAVAILABLE,
			  "AWS KMS Decrypt: the Plaintext is not %d bytes",
			  ATREST__CLOUD_DEK_LEN);
	if (rc == 0) {
		memcpy(out, pt->data, pt->len);
		*out_len = pt->len;
	}
	atrest__secret_free(pt);
	return rc;
}

static void kms_free(atrest_keyprov *kp)
{
	struct aws_kms *k = (struct aws_kms *)kp;

	atrest__awscred_free(k->cred);
	atrest__http_free(k->http);
	free(k);
}

/* Split an ARN's fields; 0 when it is arn:PARTITION:kms:REGION:ACCOUNT:key/... or alias/... */
static int parse_arn(const char *arn, char *region, size_t cap)
{
	const char *f[6];
	size_t len[6], n = 0;
	const char *p = arn;

	while (n < 6) {
		const char *c = n < 5 ? strchr(p, ':') : NULL;
		f[n] = p;
		len[n] = c ? (size_t)(c - p) : strlen(p);
		n++;
		if (!c)
			break;
		p = c + 1;
	}
	if (n != 6 || len[2] != 3 || memcmp(f[2], "kms", 3) != 0 || len[3] == 0 ||
		len[3] >= cap || len[4] == 0 ||
		!(strncmp(f[5], "key/", 4) == 0 || strncmp(f[5], "alias/", 6) == 0) ||
		len[5] < 5)
		return -1;
	memcpy(region, f[3], len[3]);
	region[len[3]] = '\0';
	return 0;
}

static int plain_text(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '"' ||
			*s == '\\')
			return 0;
	return 1;
}

/* The key, region and profile of the URI. */
static int kms_parse(struct aws_kms *k, const char *uri, char *profile, size_t pcap)
{
	static const char *const params[] = {"region", "profile", NULL};
	const char *key;
	size_t n = 0;
	char region[64];
	int has_region;

	if (strncasecmp(uri, "aws-kms://", 10) == 0) {
		key = uri + 10;
		n = strcspn(key, "?");
	}
	ENSURE(n > 0 && n <= KEY_MAX, ATREST_EKEY,
		"not an AWS KMS key URI: expected aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID "
		"or aws-kms://alias/NAME?region=REGION");
	memcpy(k->key, key, n);
	k->key[n] = '\0';
	ENSURE(plain_text(k->key), ATREST_EKEY,
		"AWS KMS key URI: the key id is malformed");
	GUARD(atrest__uri_params_known(uri, params, "AWS KMS"));
	GUARD(has_region = atrest__uri_param(region, sizeof(region), uri, "region"));
	GUARD(atrest__uri_param(profile, pcap, uri, "profile"));
	if (strncmp(k->key, "arn:", 4) == 0) {
		ENSURE(parse_arn(k->key, k->region, sizeof(k->region)) == 0, ATREST_EKEY,
			"AWS KMS key URI: not a KMS key or alias ARN");
		ENSURE(!has_region || strcmp(region, k->region) == 0, ATREST_EKEY,
			"AWS KMS key URI: region= differs from the ARN's region");
	} else if (has_region) {
		snprintf(k->region, sizeof(k->region), "%s", region);
	} else if (atrest__aws_region(k->region, sizeof(k->region), profile) < 0) {
		return atrest__error(ATREST_EKEY,
			"AWS KMS key URI: no region: use a key ARN, add ?region=, or set "
			"AWS_REGION");
	}
	ENSURE(plain_text(k->region) && *k->region, ATREST_EKEY,
		"AWS KMS key URI: the region is malformed");
	return 0;
}

/* The endpoint URL and Host header. */
static int kms_endpoint(struct aws_kms *k, const char *profile)
{
	char ep[512];
	const char *host, *fips = getenv("AWS_USE_FIPS_ENDPOINT");
	size_t n;
	int rc = atrest__aws_endpoint(ep, sizeof(ep), "KMS", profile);

	GUARD(rc);
	if (rc == 0)
		snprintf(ep, sizeof(ep), "https://kms%s.%s.amazonaws.com%s",
			fips && strcasecmp(fips, "true") == 0 ? "-fips" : "", k->region,
			strncmp(k->region, "cn-", 3) == 0 ? ".cn" : "");
	n = strlen(ep);
	while (n > 0 && ep[n - 1] == '/')
		ep[--n] = '\0';
	host = strstr(ep, "://");
	ENSURE(host && host[3] && !strpbrk(host + 3, "/?#@") && plain_text(ep),
		ATREST_EKEY,
		"the AWS KMS endpoint must be a base URL like https://HOST[:PORT] "
		"(AWS_ENDPOINT_URL_KMS)");
	snprintf(k->host, sizeof(k->host), "%s", host + 3);
	snprintf(k->url, sizeof(k->url), "%s/", ep);
	return 0;
}

int atrest__keyprov_aws_kms(atrest_keyprov **out, const char *uri)
{
	atrest__http_opts ho = {.service = "AWS KMS", .ca_env = "AWS_CA_BUNDLE"};
	struct aws_kms *k;
	char profile[128];
	int rc;

	*out = NULL;
	GUARD(atrest__crypto_init());
	k = calloc(1, sizeof(*k));
	ENSURE(k, ATREST_ERROR, "out of memory");
	atrest__cloud_kp_init(&k->base, KIND, kms_wrap, kms_unwrap, kms_free);
	GUARD_OUT(kms_parse(k, uri, profile, sizeof(profile)));
	GUARD_OUT(kms_endpoint(k, profile));
	GUARD_OUT(atrest__awscred_new(&k->cred, *profile ? profile : NULL));
	GUARD_OUT(atrest__http_new(&k->http, &ho));
	atrest__cloud_key_id(k->base.key_id, sizeof(k->base.key_id), "aws-kms:", k->key);
	*out = &k->base.parent;
	return 0;
out:
	kms_free(&k->base.parent);
	return rc;
}
