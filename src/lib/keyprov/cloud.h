/*
 * Shared by the cloud key providers (aws_kms.c, gcp_kms.c, azure_kv.c,
 * vault.c): taking secret fields out of JSON in locked memory before any
 * parser copies them, the encodings of the core's AAD, cached bearer
 * tokens, key ids, URI pieces and the error classes of the provider
 * contract.
 */
#ifndef ATREST_KEYPROV_CLOUD_H
#define ATREST_KEYPROV_CLOUD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "atrest/sys/keyprov.h"
#include "buf.h"
#include "common.h"
#include "http.h"
#include "json_secret.h"
#include "secret.h"

#define ATREST__CLOUD_DEK_LEN 32
/* Bytes a bound plaintext takes: the key, then SHA-256 of the AAD. */
#define ATREST__CLOUD_BOUND_LEN 64

/*
 * Parse a response body (after secrets were taken out) as a JSON object;
 * ATREST_EUNAVAILABLE naming the service and operation when it is not one.
 */
int atrest__cloud_json(json_t **out, const atrest__http *h, const atrest__http_req *req,
	const atrest__http_resp *resp);
/* A string member, or NULL. */
const char *atrest__json_str(json_t *o, const char *key);

/*
 * The core's AAD as a JSON object text of string members, for AWS KMS's
 * EncryptionContext: a keyring's "atrest/v1 dek" or "atrest/v1 check" ||
 * store id (16) || key number (le32) as {"atrest-role": ROLE,
 * "atrest-store-id": HEX, "atrest-key-id": N}, anything else (a standalone
 * file's AAD) as {"atrest-aad": BASE64}.  Each AAD gives one text and
 * back, so the context round-trips exactly.
 */
void atrest__aad_context(atrest__buf *out, const uint8_t *aad, size_t aad_len);
/*
 * For services that cannot bind an AAD themselves (RSA-OAEP key wrapping,
 * non-derived Transit keys): the plaintext sent is key || SHA-256(aad), and
 * on the way back the digest must match (ATREST_EKEY otherwise: the wrapped
 * key belongs to another store or role).
 */
int atrest__aad_bind(uint8_t out[ATREST__CLOUD_BOUND_LEN], const uint8_t *key,
	size_t key_len, const uint8_t *aad, size_t aad_len);
int atrest__aad_unbind(uint8_t *out, size_t cap, size_t *out_len, const uint8_t *bound,
	size_t bound_len, const uint8_t *aad, size_t aad_len, const char *provider);

/* The same for a service's answer: the base64 member at path, unbound. */
int atrest__aad_unbind_answer(uint8_t *out, size_t cap, size_t *out_len,
	atrest__http_resp *resp, const char *const *path, const uint8_t *aad,
	size_t aad_len, const char *provider);

/* A bearer token and when it expires, shared by the threads of a provider. */
typedef struct atrest__token {
	pthread_mutex_t mu;
	atrest__secret *value; /* NUL-terminated; NULL until fetched */
	int64_t expires; /* atrest__now() seconds; 0: unknown (kept until refused) */
	int64_t lifetime;
	unsigned long fetches; /* how many times it was fetched (tests, logs) */
	int forced;            /* during a fetch: the service refused the last one */
} atrest__token;

/*
 * Fetch a token: a new NUL-terminated secret and its lifetime in seconds
 * (0: unknown).  Called with the cache locked; it may read the current
 * value and forced (to renew rather than log in again, say).
 */
typedef int (*atrest__token_fetch_fn)(void *arg, atrest__secret **tok, int64_t *lifetime);

void atrest__token_init(atrest__token *t);
void atrest__token_clear(atrest__token *t);
/*
 * A copy of the current token, fetched first when there is none, when
 * force is set (the service refused the last one), or when less than
 * min(300 s, half its lifetime) is left.
 */
int atrest__token_get(atrest__token *t, atrest__secret **copy, int force,
	atrest__token_fetch_fn fetch, void *arg);

/*
 * What every cloud provider starts with: the plug-in table and the key id
 * the keyring records (at most 127 bytes, see atrest__cloud_key_id).
 */
typedef struct atrest__cloud_kp {
	struct atrest_keyprov parent;
	char key_id[128];
} atrest__cloud_kp;

/* Fill the table of a new provider (calloc'd) with its functions. */
void atrest__cloud_kp_init(atrest__cloud_kp *kp, const char *kind,
	int (*wrap)(atrest_keyprov *, uint8_t *, size_t, size_t *, const uint8_t *,
		size_t, const uint8_t *, size_t),
	int (*unwrap)(atrest_keyprov *, uint8_t *, size_t, size_t *, const uint8_t *,
		size_t, const uint8_t *, size_t),
	void (*free_fn)(atrest_keyprov *));

/*
 * The access token (taken out into a new secret) and its lifetime in
 * seconds (0 when not given) of an OAuth 2 token response body:
 * {"access_token": ..., "expires_in": N or "N"}.
 */
int atrest__oauth_token(const atrest__http *h, const atrest__http_req *req,
	atrest__http_resp *resp, atrest__secret **tok, int64_t *life);

/* How a service takes its token, and how to get one. */
typedef struct atrest__cloud_auth {
	atrest__token *token;
	atrest__token_fetch_fn fetch;
	void *arg;
	const char *header; /* "Authorization" or "X-Vault-Token" */
	const char *prefix; /* "Bearer " or "" */
	/* 1 when a response says the token was refused (fetch again, once). */
	int (*refused)(const atrest__http_resp *resp);
} atrest__cloud_auth;

/*
 * Send req (its own headers kept, the token added before each attempt)
 * and fill resp; when the service refuses the token, fetch a new one and
 * send again, once.  Returns as atrest__http_do does.
 */
int atrest__cloud_call(atrest__http *h, const atrest__cloud_auth *auth,
	atrest__http_req *req, atrest__http_resp *resp);

/*
 * A key id for the keyring (at most cap-1 bytes): prefix + name, or when
 * too long the start of the name, "~" and 16 hex digits of its SHA-256.
 */
void atrest__cloud_key_id(char *out, size_t cap, const char *prefix, const char *name);

/*
 * The value of query parameter name of a URI (percent-decoded) in out:
 * 1 found, 0 absent, ATREST_EKEY when too long or repeated.
 */
int atrest__uri_param(char *out, size_t cap, const char *uri, const char *name);
/* ATREST_EKEY unless every query parameter of uri is one of names. */
int atrest__uri_params_known(
	const char *uri, const char *const *names, const char *provider);

/*
 * The providers' wrapped-key formats, parsed from the keyring (exposed for
 * the fuzzers).  Azure: format (1: RSA-OAEP-256, 2: A256KW), version
 * length, version, ciphertext.  Vault: "vault:v<digits>:<base64>".  Both
 * ATREST_EKEY when the blob is not one of theirs.
 */
#define ATREST__AZURE_VERSION_MAX 64
int atrest__azure_blob_parse(const uint8_t *w, size_t n, int *format,
	char version[ATREST__AZURE_VERSION_MAX + 1], const uint8_t **ct, size_t *ct_len);
int atrest__vault_blob_check(const uint8_t *w, size_t n);

/* CRC32C (Castagnoli), as Google Cloud KMS uses for integrity fields. */
uint32_t atrest__crc32c(const uint8_t *p, size_t n);

/* The common checks of a provider's wrap call. */
int atrest__cloud_wrap_args(
	const char *provider, size_t key_len, size_t cap, size_t need);

#endif
