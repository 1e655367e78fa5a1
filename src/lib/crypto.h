/*
 * The crypto layer over OpenSSL 3: the three segment ciphers behind one
 * seal/open interface, HKDF, hashing, RNG, password hashing and FIPS mode.
 * Nothing here knows the object format.
 */
#ifndef ATREST_CRYPTO_H
#define ATREST_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define ATREST_NONCE_LEN 12
#define ATREST_AEAD_TAG_LEN 16 /* GCM, ChaCha20-Poly1305 */
#define ATREST_HMAC_TAG_LEN 32 /* CBC-HMAC: full HMAC-SHA256 */
#define ATREST_CIPHER_KEY_MAX 64

/* Bytes of key a cipher takes: 32, or 64 for CBC-HMAC (enc key || MAC key). */
size_t atrest__cipher_keylen(int cipher);

/*
 * Ciphertext length for ptlen bytes:
 *   GCM, ChaCha20-Poly1305: ptlen + 16
 *   CBC-HMAC: roundup16(ptlen) + 1 (pad count) + 32 (tag)
 */
size_t atrest__cipher_ctlen(int cipher, size_t ptlen);

/* Smallest ciphertext (sealing zero bytes). */
size_t atrest__cipher_overhead(int cipher);

/*
 * A keyed cipher context, reused across many seal/open calls (only the nonce
 * changes).  Used by one thread at a time.
 */
typedef struct atrest__aead atrest__aead;

int atrest__aead_new(atrest__aead **out, int cipher, const uint8_t *key, size_t key_len);
void atrest__aead_free(atrest__aead *a);

/*
 * Seal pt into out (atrest__cipher_ctlen(ptlen) bytes; out may equal pt
 * only for GCM and ChaCha20-Poly1305).  CBC-HMAC: IV = AES-ECB_K(nonce||0^4)
 * (SP 800-38A appendix C), zero padding to 16, tag =
 * HMAC-SHA256(mac_key, nonce || ct || padcount); it takes no additional
 * data (aad_len must be 0: ATREST_EINVAL, and open fails).
 */
int atrest__aead_seal(atrest__aead *a, uint8_t *out, const uint8_t *nonce,
	const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len);

/*
 * Open ct (ct_len bytes) into out (at least ct_len bytes).  Tags are
 * compared in constant time.  On failure returns ATREST_EINTEGRITY and
 * wipes out.
 */
ATREST__WUR int atrest__aead_open(atrest__aead *a, uint8_t *out, size_t *pt_len,
	const uint8_t *nonce, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
	size_t ct_len);

/* Plaintext length of a CBC-HMAC ciphertext from its (unauthenticated)
 * pad-count byte, or of an AEAD ciphertext; ATREST_EINTEGRITY when ct_len
 * cannot be a ciphertext of this cipher. */
int atrest__cipher_ptlen(int cipher, const uint8_t *ct, size_t ct_len, size_t *pt_len);

int atrest__rand(void *buf, size_t len);

/* HKDF-SHA256 (RFC 5869), extract and expand in one call. */
int atrest__hkdf(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
	const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len);

int atrest__sha256(uint8_t out[32], const void *data, size_t len);
int atrest__hmac_sha256(uint8_t out[32], const uint8_t *key, size_t key_len,
	const void *data, size_t len);

/*
 * HMAC-SHA256 over a stream: keyed once, then any number of messages, each
 * reset, updated and finished.  Used by one thread at a time.
 */
typedef struct atrest__mac atrest__mac;
int atrest__mac_new(atrest__mac **out, const uint8_t *key, size_t key_len);
/* Start a new message (a new context is ready for one already). */
int atrest__mac_reset(atrest__mac *m);
int atrest__mac_update(atrest__mac *m, const void *data, size_t len);
int atrest__mac_final(atrest__mac *m, uint8_t out[32]);
void atrest__mac_free(atrest__mac *m);

/* Argon2id (RFC 9106) through libargon2; m_kib is memory in KiB. */
int atrest__argon2id(uint8_t *out, size_t out_len, const void *pass, size_t pass_len,
	const uint8_t *salt, size_t salt_len, uint32_t t_cost, uint32_t m_kib,
	uint32_t lanes);

/* PBKDF2-HMAC-SHA256 (the passphrase KDF in FIPS mode). */
int atrest__pbkdf2_sha256(uint8_t *out, size_t out_len, const void *pass, size_t pass_len,
	const uint8_t *salt, size_t salt_len, uint32_t iter);

/* 1 when the n bytes of a and b are equal, in time independent of them. */
int atrest__ct_equal(const void *a, const void *b, size_t n);

/*
 * Process-wide crypto setup, idempotent and thread-safe: reads ATREST_FIPS;
 * when it is "1", loads OpenSSL's FIPS provider (error ATREST_EUNAVAILABLE
 * naming the missing fips.so when absent) and sets default properties
 * "fips=yes".  Called by atrest_store_open and every constructor that needs
 * crypto.
 */
int atrest__crypto_init(void);
/* 1 when FIPS mode is on (after atrest__crypto_init). */
int atrest__fips_mode(void);
/* 0 when cipher may be used in the current mode, else ATREST_EINVAL. */
int atrest__cipher_allowed(int cipher);

#endif
