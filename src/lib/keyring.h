/*
 * The store's keyring: the data keys, each wrapped by the master key, a
 * check blob that tells a wrong master key from a damaged keyring, and a
 * MAC over the whole (docs/FORMAT.md, "Keyring").
 */
#ifndef ATREST_KEYRING_H
#define ATREST_KEYRING_H

#include <stddef.h>
#include <stdint.h>

#include "atrest/sys/keyprov.h"
#include "secret.h"

#define ATREST__DEK_LEN 32
#define ATREST__KEYRING_NAME ".atrest/keyring"

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

typedef struct atrest__keyring {
	uint8_t store_id[16];
	uint64_t generation; /* bumped by every rewrite */
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

/* A new keyring for a new store: store id, check secret, first data key. */
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
 * Copy data key id into out (32 bytes), unwrapping it with kp when it is
 * not cached or its cache entry expired (cache may be NULL: no expiry).
 * Unknown id: ATREST_EINTEGRITY; destroyed: ATREST_EKEY naming it.  While kp
 * is unavailable an expired key is still used within the grace period.
 */
int atrest__keyring_dek(uint8_t *out, atrest__keyring *kr, atrest_keyprov *kp,
	uint32_t id, const atrest__key_cache *cache);

/*
 * Take over what an unlocked keyring (old, same store) already knows: the
 * check secret when the check blob is unchanged (then the MAC of kr is
 * verified, and kr is unlocked without a provider call: returns 1) and the
 * unwrapped data keys.  Returns 0 when kr still needs atrest__keyring_unlock.
 */
int atrest__keyring_adopt(atrest__keyring *kr, atrest__keyring *old);
/* Move old's unwrapped data keys into kr (same ids). */
void atrest__keyring_take_keys(atrest__keyring *kr, atrest__keyring *old);

/*
 * Wrap the check secret and every live data key under to (bound to fresh
 * parameters), unwrapping first with from where needed.  kr is unchanged
 * on failure.
 */
int atrest__keyring_rewrap(atrest__keyring *kr, atrest_keyprov *from, atrest_keyprov *to);
int atrest__keyring_expose(atrest__keyring *kr, atrest_keyprov *kp, uint32_t id);
int atrest__keyring_destroy(atrest__keyring *kr, uint32_t id);

/* The clock (seconds); test builds move it with atrest__clock_offset. */
int64_t atrest__now(void);
#ifdef ATREST_TEST_HOOKS
void atrest__clock_offset(int64_t seconds);
#endif

/* Start a new active data key; the old one becomes retired. */
int atrest__keyring_rotate(atrest__keyring *kr, atrest_keyprov *kp);

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

/* Hex and base64 coding for the store's JSON files. */
void atrest__hex(char *out, const uint8_t *in, size_t len);
int atrest__unhex(uint8_t *out, size_t len, const char *hex);
char *atrest__b64(const uint8_t *in, size_t len);
int atrest__unb64(uint8_t *out, size_t cap, size_t *out_len, const char *b64);

#endif
