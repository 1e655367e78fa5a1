/*
 * API keys of the server: random keys "atr_<id>_<secret>" of which only a
 * salted SHA-256 of the secret is kept, with the key id, tenant, role and
 * a name, in a JSON file of mode 0600 (by default <store>/.atrest/apikeys).
 * S3 access keys live in a file of the same form (<store>/.atrest/s3keys)
 * with the secret sealed under the store's keys instead of hashed, since
 * SigV4 needs it.  Used by the server and by 'atrest apikey' / 's3key'.
 */
#ifndef ATREST_SERVER_APIKEYS_H
#define ATREST_SERVER_APIKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "atrest/atrest.h"

enum srv_role { SRV_ROLE_NONE = 0, SRV_ROLE_READER, SRV_ROLE_WRITER, SRV_ROLE_ADMIN };

/* "reader", "writer", "admin". */
const char *srv_role_name(int role);
/* The role of a name, or SRV_ROLE_NONE. */
int srv_role_from_name(const char *name);

/* A tenant name: "" (the default tenant) or 1-64 of [A-Za-z0-9._-], not
 * starting with '.' or '-'. */
int srv_tenant_ok(const char *tenant);

#define SRV_APIKEY_ID_LEN 16 /* hex digits */
#define SRV_APIKEY_NAME_MAX 128
/* "atr_" id "_" 43 base64url characters. */
#define SRV_APIKEY_LEN (4 + SRV_APIKEY_ID_LEN + 1 + 43)

/* S3 access keys: "ATR" and 17 of [A-Z2-7]; secrets of 40 characters. */
#define SRV_S3KEY_ID_LEN 20
#define SRV_S3KEY_SECRET_LEN 40
#define SRV_S3KEY_SEALED_LEN (SRV_S3KEY_SECRET_LEN + ATREST_RECORD_OVERHEAD)
/* The recorder namespace S3 secrets are sealed in (bound in the record). */
#define SRV_S3KEY_NS "atrest-s3-secret"

struct srv_apikey {
	char id[SRV_S3KEY_ID_LEN + 1];
	char tenant[ATREST_TENANT_MAX + 1];
	int role;
	char name[SRV_APIKEY_NAME_MAX + 1];
	int64_t created; /* seconds since the epoch */
	uint8_t salt[16];
	uint8_t hash[32]; /* SHA-256(salt || secret) */
	int s3;           /* an S3 access key: sealed holds the secret */
	uint8_t sealed[SRV_S3KEY_SEALED_LEN]; /* sealed with the id as AD */
};

struct srv_apikeys {
	struct srv_apikey *v;
	size_t n;
};

/*
 * A new key for tenant and role: the entry in *out, the key text (shown
 * once, never stored) in key (at least SRV_APIKEY_LEN + 1 bytes).  0 or -1.
 */
int srv_apikey_new(struct srv_apikey *out, char *key, size_t cap, const char *tenant,
	int role, const char *name);

/*
 * A new S3 access key: the entry in *out (its secret sealed by rec, a
 * recorder of namespace SRV_S3KEY_NS), the secret in secret (shown once).
 * 0 or -1.
 */
int srv_s3key_new(struct srv_apikey *out, char secret[SRV_S3KEY_SECRET_LEN + 1],
	const char *tenant, int role, const char *name, atrest_recorder *rec);
/* The secret of an S3 key entry, opened with rec; 0 or -1 (out wiped). */
int srv_s3key_secret(char out[SRV_S3KEY_SECRET_LEN + 1], const struct srv_apikey *e,
	atrest_recorder *rec);
/* The S3 key of access key id, or NULL. */
const struct srv_apikey *srv_s3keys_find(const struct srv_apikeys *k, const char *id);

/* Parse a key file's text, strictly; 0, or -1 with the reason in why. */
int srv_apikeys_parse(
	struct srv_apikeys *out, const char *text, size_t len, char *why, size_t why_cap);
/*
 * Read path: a missing file is an empty set; a file others may write or
 * read is refused.  0, or -1 with the reason in why.
 */
int srv_apikeys_load(
	struct srv_apikeys *out, const char *path, char *why, size_t why_cap);
void srv_apikeys_free(struct srv_apikeys *k);

/* Add e to the file, or remove key id from it, under an exclusive lock,
 * replacing the file atomically (mode 0600).  0, 1 (revoke: no such id),
 * or -1 with the reason in why. */
int srv_apikeys_add(
	const char *path, const struct srv_apikey *e, char *why, size_t why_cap);
int srv_apikeys_revoke(const char *path, const char *id, char *why, size_t why_cap);

/*
 * The id a presented key claims (not a secret: to name a revoked or
 * unknown key in logs), when it has a key's shape; 0, or -1 (out "").
 */
int srv_apikey_claimed_id(char out[SRV_APIKEY_ID_LEN + 1], const char *presented);

/* The entry a presented key matches (compared in constant time), or NULL. */
const struct srv_apikey *srv_apikeys_check(
	const struct srv_apikeys *k, const char *presented);

#endif
