/*
 * Small helpers shared by the cmocka unit tests: private temp directories,
 * hex decoding for vectors, random buffers.
 */
#ifndef ATREST_TEST_HELPERS_H
#define ATREST_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "atrest/atrest.h"
#include "atrest/sys/keyprov.h"

/* mkdtemp under $TMPDIR (or /tmp); path written to out (PATH_MAX). */
void th_tmpdir(char *out, size_t cap);
/* rm -rf of a directory made by th_tmpdir. */
void th_rmrf(const char *path);
/* Decode hex into a malloc'd buffer; *len gets the byte count. */
uint8_t *th_unhex(const char *hex, size_t *len);
/* A malloc'd lowercase hex string of n bytes (for writing vectors). */
char *th_hex(const uint8_t *b, size_t n);
/* Deterministic pseudo-random bytes (xorshift) for test data. */
void th_fill(void *buf, size_t len, uint64_t seed);
/* Read a whole file into a malloc'd buffer (NULL on failure). */
uint8_t *th_read_file(const char *path, size_t *len);
/* Write a whole file (0 on success). */
int th_write_file(const char *path, const void *buf, size_t len);

/* 1 in an ASan or TSan build (sizes and memory limits differ there). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif
/* A raw-key provider for the 32 bytes at k (fails the test otherwise). */
atrest_keyprov *th_raw_key(const uint8_t *k);
/* Open (creating) the store at dir under the 32-byte raw key, with cipher,
 * segment size and threads (0: defaults); fails the test otherwise. */
atrest_store *th_store_with(
	const char *dir, const uint8_t *key, int cipher, uint32_t seg, unsigned threads);
/* The object name of st reads back as the text want (fails the test otherwise). */
void th_expect_object(atrest_store *st, const char *name, const char *want);
/* Open (creating) the store at dir with key and old key (taken over). */
int th_store_open(
	atrest_store **st, const char *dir, atrest_keyprov *key, atrest_keyprov *old);
/*
 * A key provider that passes every call to real (owned by the test), after
 * hook(k, unwrap) for wraps (unwrap 0) and unwraps (1) when set: a non-zero
 * return fails the call with that code.  Counts unwraps; its free does
 * nothing.
 */
typedef struct th_kp th_kp;
struct th_kp {
	atrest_keyprov parent;
	atrest_keyprov *real;
	int (*hook)(th_kp *k, int unwrap);
	int unwraps;
	void *ctx;
};
void th_kp_init(th_kp *k, const char *kind, atrest_keyprov *real);

#endif
