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

#endif
