/*
 * Small helpers shared by the key providers that are named by URI
 * (pkcs11:, kmip://, tpm2:): attribute lookup with percent-decoding, and
 * the AES-256-GCM key wrapping under a key held in locked memory.
 */
#ifndef ATREST_KEYPROV_URI_H
#define ATREST_KEYPROV_URI_H

#include <stddef.h>
#include <stdint.h>

#include "secret.h"

/*
 * Look up NAME=VALUE among the sep-separated attributes of s[0..len) and
 * percent-decode VALUE into out (cap bytes, NUL-terminated).  Returns 1
 * when found, 0 when absent, ATREST_EKEY (message naming what and the
 * attribute, never the value) when malformed, too long or repeated.
 */
int atrest__uri_attr(char *out, size_t cap, const char *s, size_t len, char sep,
	const char *name, const char *what);

/* The same for a value that is bytes (NULs allowed), *out_len of them. */
int atrest__uri_attr_bytes(uint8_t *out, size_t cap, size_t *out_len, const char *s,
	size_t len, char sep, const char *name, const char *what);

/*
 * Refuse an attribute whose name is not in known (NULL-terminated): a
 * misspelt attribute must not be silently ignored.
 */
int atrest__uri_known(
	const char *s, size_t len, char sep, const char *const *known, const char *what);

/* Read a small secret file (a PIN) into locked memory, without its final
 * newline. */
int atrest__read_secret_file(atrest__secret **out, const char *path, const char *what);

/*
 * Wrapping under a 32-byte key held here: out = iv(12) || ct || tag(16),
 * the key's AAD bound.  Unwrap failures are ATREST_EKEY.
 */
int atrest__gcm_wrap(const atrest__secret *key, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *in, size_t in_len, const uint8_t *aad, size_t aad_len);
int atrest__gcm_unwrap(const atrest__secret *key, uint8_t *out, size_t cap,
	size_t *out_len, const uint8_t *in, size_t in_len, const uint8_t *aad,
	size_t aad_len, const char *what);

/* Monotonic milliseconds, for deadlines and latency. */
int64_t atrest__mono_ms(void);

#endif
