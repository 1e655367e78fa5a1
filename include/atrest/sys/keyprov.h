/*
 * The interface a master-key provider implements (local key, passphrase,
 * PKCS#11, KMIP, TPM, cloud KMS).  The core calls it only through checked
 * wrappers, to wrap and unwrap the 32-byte data keys of a keyring.
 */
#ifndef ATREST_SYS_KEYPROV_H
#define ATREST_SYS_KEYPROV_H

#include <stddef.h>
#include <stdint.h>

#include "../keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ATREST_KEYPROV_VERSION 2
#define ATREST_WRAPPED_MAX 1024 /* bytes of one wrapped key, at most */

struct atrest_keyprov {
	unsigned int version; /* ATREST_KEYPROV_VERSION */
	const char *kind;     /* "key", "key-file", "passphrase", "pkcs11", ... */

	/*
	 * Prepare the master key for one keyring.  params_in is the JSON
	 * object text this provider asked to keep in the keyring, or NULL for
	 * a new keyring; the provider may set *params_out to a malloc'd JSON
	 * object text to keep (a passphrase's salt, say).  May be slow.
	 */
	int (*bind)(atrest_keyprov *kp, const char *params_in, char **params_out);
	/*
	 * A non-secret identifier of the master key, NUL-terminated in out,
	 * e.g. "fp:3f1c9a0b2d7e4c55" or a URI's object id.
	 */
	int (*key_id)(atrest_keyprov *kp, char *out, size_t cap);
	/* Wrap key (32 bytes) bound to aad; at most ATREST_WRAPPED_MAX bytes. */
	int (*wrap)(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
		const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len);
	/*
	 * Unwrap into out (locked memory of cap bytes).  A wrong key or
	 * altered blob is ATREST_EKEY; an unreachable service
	 * ATREST_EUNAVAILABLE.
	 */
	int (*unwrap)(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
		const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad,
		size_t aad_len);
	void (*free)(atrest_keyprov *kp);
	/* Version 1 ends here; later versions only append. */

	/*
	 * Version 2, optional (NULL when the provider has none): re-encrypt
	 * a blob this provider wrapped under the newest version of its master
	 * key inside the key service, so the data key never comes out (Vault
	 * Transit's rewrap).  Same AAD; the result is what wrap would give,
	 * at most ATREST_WRAPPED_MAX bytes; out may be wrapped itself.
	 */
	int (*rewrap)(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
		const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad,
		size_t aad_len);
};

#ifdef __cplusplus
}
#endif
#endif
