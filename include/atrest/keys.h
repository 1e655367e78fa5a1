/*
 * Master-key providers a store can be opened with.  A provider wraps and
 * unwraps the store's data keys; it never hands its key to the core.
 */
#ifndef ATREST_KEYS_H
#define ATREST_KEYS_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atrest_keyprov atrest_keyprov;

/* A 32-byte master key given in memory (copied into locked memory). */
ATREST_EXTERN int atrest_keyprov_raw(
	atrest_keyprov **out, const uint8_t *key, size_t len);

/*
 * A master key parsed from text: 64 hex digits or base64 of 32 bytes.
 * Surrounding white space is ignored.
 */
ATREST_EXTERN int atrest_keyprov_text(atrest_keyprov **out, const char *text, size_t len);

/*
 * A key file: hex, base64, or at least 32 bytes of raw random material
 * (condensed with HKDF-SHA256).  Refused when group- or world-readable.
 */
ATREST_EXTERN int atrest_keyprov_file(atrest_keyprov **out, const char *path);

/*
 * A passphrase, stretched with Argon2id (64 MiB, 3 passes, 4 lanes; PBKDF2-
 * SHA256 in FIPS mode) with a random salt kept in the keyring.  The
 * derivation runs once per provider, when the store is opened.
 */
ATREST_EXTERN int atrest_keyprov_passphrase(
	atrest_keyprov **out, const char *pass, size_t len);

/*
 * The provider the environment names: ATREST_KEY, ATREST_KEY_FILE,
 * ATREST_PASSPHRASE or ATREST_KEY_URI, or with old != 0 their ATREST_OLD_
 * forms.  Returns ATREST_ENOTFOUND when none is set, ATREST_EINVAL when more
 * than one is.
 */
ATREST_EXTERN int atrest_keyprov_from_env(atrest_keyprov **out, int old);

/*
 * The provider a key URI names (pkcs11:, kmip://, tpm2:, vault://,
 * aws-kms://, gcp-kms://, azure-kv://, as built in).  ATREST_EKEY for an
 * unknown or malformed URI; the URI itself is never put in a message.
 */
ATREST_EXTERN int atrest_keyprov_from_uri(atrest_keyprov **out, const char *uri);

/* The key URI schemes built into this library, NULL-terminated. */
ATREST_EXTERN const char *const *atrest_keyprov_schemes(void);

/* The provider's kind ("key", "key-file", "passphrase", "pkcs11", ...). */
ATREST_EXTERN const char *atrest_keyprov_kind(const atrest_keyprov *kp);

ATREST_EXTERN void atrest_keyprov_free(atrest_keyprov *kp);

/* Fill buf with len bytes from OpenSSL's CSPRNG (for keygen). */
ATREST_EXTERN int atrest_random(void *buf, size_t len);

/*
 * Whether this process's key memory is locked.  Every key libatrest holds
 * (master-key material, data keys, MAC keys) lives in its own pages, kept
 * out of core dumps and wiped on release, and locked with mlock(2) so it
 * never reaches swap.  Returns 0 while every such buffer so far could be
 * locked, else how many could not (RLIMIT_MEMLOCK too low, e.g. ulimit -l 0,
 * without CAP_IPC_LOCK): those keys may be written to swap.  Work goes on
 * either way; a caller that must not run unlocked checks this after
 * opening its store and stops.
 */
ATREST_EXTERN unsigned long atrest_secure_memory_status(void);

#ifdef __cplusplus
}
#endif
#endif
