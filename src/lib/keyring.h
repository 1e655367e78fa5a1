/*
 * The store's keyring: the data keys, each wrapped by the master key, a
 * check blob that tells a wrong master key from a damaged keyring, and a
 * MAC over the whole (docs/FORMAT.md, "Keyring").
 */
#ifndef ATREST_KEYRING_H
#define ATREST_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "atrest/store.h"
#include "atrest/sys/keyprov.h"
#include "secret.h"

#define ATREST__DEK_LEN 32
#define ATREST__KEYRING_NAME ".atrest/keyring"
#define ATREST__DEK_ID_MAX 0xFFFFFEu /* ids fit the 24 bits of a record */

enum {
	ATREST__DEK_ACTIVE = 1,
	ATREST__DEK_RETIRED = 2,
	ATREST__DEK_EXPOSED = 3,
	ATREST__DEK_DESTROYED = 4
};

typedef struct atrest__dek {
	uint32_t id;
	int64_t created;
	int status;
	uint8_t wrapped[ATREST_WRAPPED_MAX];
	size_t wrapped_len;
	atrest__secret *key; /* unwrapped on first use; NULL until then */
	int64_t unwrapped_at;
	uint64_t uses; /* since unwrapped */
} atrest__dek;

/* How long unwrapped data keys are trusted (atrest_store_options). */
typedef struct atrest__key_cache {
	int64_t ttl;       /* seconds before asking the provider again */
	uint64_t max_uses; /* uses before asking the provider again */
	int64_t grace;     /* seconds a key outlives ttl while the provider is down */
} atrest__key_cache;

/* A tenant of the store, as the store's own keyring records it. */
typedef struct atrest__tenant {
	char name[ATREST_TENANT_MAX + 1];
	uint8_t id[16]; /* the id of its keyring */
	char *key_uri;  /* its own master key, or NULL */
	char *key_file; /* (absolute path) or NULL; neither: the store's key */
} atrest__tenant;

typedef struct atrest__keyring {
	int version;          /* of the document: 1 (settings apart) or 2 */
	uint8_t store_id[16]; /* the keyring's id (a tenant's has its own) */
	char tenant[ATREST_TENANT_MAX + 1]; /* "" for the store's own keyring */
	uint64_t generation;                /* bumped by every rewrite */
	/* Version 2: under the MAC.  Version 1: read from settings.json. */
	atrest_settings settings;
	atrest__tenant *tenants; /* the tenants (the store's own keyring only) */
	size_t ntenants;
	uint32_t active;
	char kind[32];    /* master-key provider kind */
	char key_id[128]; /* master key's non-secret id */
	char *params;     /* provider parameters (JSON text) or NULL */
	uint8_t check[ATREST_WRAPPED_MAX];
	size_t check_len;
	atrest__dek *keys;
	size_t nkeys;
	uint8_t mac[32];              /* as read from the file */
	atrest__secret *check_secret; /* unwrapped check secret */
	atrest__secret *mac_key;      /* from the unwrapped check secret */
	/* The audit trail's Ed25519 key: public half, private seed wrapped. */
	int has_audit;
	uint8_t audit_pub[32];
	uint8_t audit_wrapped[ATREST_WRAPPED_MAX];
	size_t audit_wrapped_len;
	atrest__secret *audit_seed; /* unwrapped on first use (rewrap uses it) */
} atrest__keyring;

/*
 * A new keyring (version 2): a random id, check secret and first data key;
 * the caller sets settings (and tenant) before serializing it.
 */
int atrest__keyring_create(atrest__keyring **out, atrest_keyprov *kp);

/* Parse keyring JSON (no keys used); ATREST_EINTEGRITY when malformed. */
int atrest__keyring_parse(atrest__keyring **out, const char *json, size_t len);

/*
 * Bind kp to the keyring and check it: ATREST_EKEY when kp is not the
 * master key the keyring was wrapped with, ATREST_EINTEGRITY when the
 * keyring was modified.
 */
int atrest__keyring_unlock(atrest__keyring *kr, atrest_keyprov *kp);

/* Serialize (with a fresh MAC) into a malloc'd JSON text. */
int atrest__keyring_serialize(char **out, size_t *out_len, atrest__keyring *kr);

/* The data key id, or NULL. */
atrest__dek *atrest__keyring_find(atrest__keyring *kr, uint32_t id);

/*
 * Data keys are looked up in three steps so that no lock is held while a
 * provider works: lookup (under the caller's lock) copies a cached key
 * into out and returns 0, or returns 1 and fills req when the key must be
 * unwrapped; unwrap (no lock) asks the provider; install (under the lock
 * again) caches the result and copies it into out.  Unknown id:
 * ATREST_EINTEGRITY; destroyed: ATREST_EKEY naming it.  While the provider
 * is unreachable an expired key is still used within the grace period.
 */
typedef struct atrest__dek_req {
	uint32_t id;
	uint8_t store_id[16];
	uint8_t wrapped[ATREST_WRAPPED_MAX];
	size_t wrapped_len;
} atrest__dek_req;

int atrest__keyring_dek_lookup(uint8_t *out, atrest__dek_req *req, atrest__keyring *kr,
	uint32_t id, const atrest__key_cache *cache);
int atrest__keyring_dek_unwrap(
	atrest__secret **out, const atrest__dek_req *req, atrest_keyprov *kp);
/* rc: what unwrap returned (key is its result, taken over, or NULL). */
int atrest__keyring_dek_install(uint8_t *out, atrest__keyring *kr,
	const atrest__dek_req *req, atrest__secret *key, int rc,
	const atrest__key_cache *cache);

/*
 * Take over what an unlocked keyring (old, same store) already knows: the
 * check secret when the check blob is unchanged (then the MAC of kr is
 * verified, and kr is unlocked without a provider call: returns 1).
 * Returns 0 when kr still needs atrest__keyring_unlock.  The unwrapped data
 * keys stay with old (atrest__keyring_take_keys moves them when kr
 * replaces it).
 */
int atrest__keyring_adopt(atrest__keyring *kr, atrest__keyring *old);
/* Move old's unwrapped data keys into kr (same ids). */
void atrest__keyring_take_keys(atrest__keyring *kr, atrest__keyring *old);
/* Copy from's unwrapped data keys into kr (same ids), leaving from's. */
int atrest__keyring_copy_keys(atrest__keyring *kr, const atrest__keyring *from);
/* Unwrap with kp every live data key kr does not hold unwrapped yet. */
int atrest__keyring_unwrap_all(atrest__keyring *kr, atrest_keyprov *kp);

/*
 * Wrap every live data key under to (bound to fresh parameters),
 * unwrapping first with from where needed, and draw a new check secret
 * (wrapped under to), so that the keyring MAC key changes with the master
 * key.  kr is unchanged on failure.
 */
int atrest__keyring_rewrap(atrest__keyring *kr, atrest_keyprov *from, atrest_keyprov *to);
int atrest__keyring_expose(atrest__keyring *kr, atrest_keyprov *kp, uint32_t id);
int atrest__keyring_destroy(atrest__keyring *kr, uint32_t id);

/* The clock (seconds); test builds move it with atrest__clock_offset. */
int64_t atrest__now(void);
#ifdef ATREST_TEST_HOOKS
void atrest__clock_offset(int64_t seconds);
#endif

/*
 * Start a new active data key; the old one becomes retired.  Its id is
 * random (1 .. ATREST__DEK_ID_MAX) and differs from every id the keyring
 * holds, destroyed ones included: even a keyring rolled back to an older
 * copy is unlikely to re-issue an id that objects already use.
 */
int atrest__keyring_rotate(atrest__keyring *kr, atrest_keyprov *kp);

/* Destroy every data key (a tenant being shredded): active becomes 0. */
void atrest__keyring_shred(atrest__keyring *kr);

/* Settings within range (not whether FIPS mode allows the cipher). */
int atrest__settings_valid(const atrest_settings *s);

/* The registry entry of tenant name, or NULL. */
atrest__tenant *atrest__keyring_tenant(atrest__keyring *kr, const char *name);
/* Add (a copy of) t to the registry; remove name from it. */
int atrest__keyring_tenant_add(atrest__keyring *kr, const atrest__tenant *t);
void atrest__keyring_tenant_remove(atrest__keyring *kr, const char *name);

void atrest__keyring_free(atrest__keyring *kr);

/* Make the audit signing key when the keyring has none (docs/AUDIT.md). */
int atrest__keyring_audit_make(atrest__keyring *kr, atrest_keyprov *kp);
/* Unwrap the audit key's 32-byte seed; ATREST_ENOTFOUND when there is none. */
int atrest__keyring_audit_seed(
	atrest__secret **out, atrest__keyring *kr, atrest_keyprov *kp);

const char *atrest__dek_status_name(int status);

/* Checked calls into a provider (the only way the core calls one). */
int atrest__kp_bind(atrest_keyprov *kp, const char *params_in, char **params_out);
int atrest__kp_key_id(atrest_keyprov *kp, char *out, size_t cap);
int atrest__kp_wrap(atrest_keyprov *kp, uint8_t *out, size_t *out_len, const uint8_t *key,
	const uint8_t *aad, size_t aad_len);
int atrest__kp_unwrap(atrest_keyprov *kp, atrest__secret **out, const uint8_t *wrapped,
	size_t wrapped_len, const uint8_t *aad, size_t aad_len);
/*
 * Rewrap a blob inside the key service (same AAD), for providers that can
 * (atrest__kp_can_rewrap); the data key is not unwrapped into memory.
 */
int atrest__kp_can_rewrap(atrest_keyprov *kp);
int atrest__kp_rewrap(atrest_keyprov *kp, uint8_t *out, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len);

/* Hex and base64 coding for the store's JSON files. */
void atrest__hex(char *out, const uint8_t *in, size_t len);
int atrest__unhex(uint8_t *out, size_t len, const char *hex);
char *atrest__b64(const uint8_t *in, size_t len);
int atrest__unb64(uint8_t *out, size_t cap, size_t *out_len, const char *b64);

#endif
