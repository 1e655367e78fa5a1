/*
 * Benchmark entry points behind `atrest bench` (SPEC section 9): objects
 * sealed and opened in memory through the object format, and the bare
 * OpenSSL rates and costs they are measured against.  Not for production.
 */
#ifndef ATREST_BENCH_H
#define ATREST_BENCH_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atrest_bench_options {
	unsigned int version;
	int cipher;            /* 0: AES-256-GCM */
	uint32_t segment_size; /* 0: ATREST_SEGMENT_SIZE_DEFAULT */
	/*
	 * Threads sealing or opening one object's segments (0: one), the
	 * counterpart of the store's own threads setting.
	 */
	unsigned int threads;
	double seconds; /* time to measure for (0: 1 s) */
} atrest_bench_options;

#define ATREST_BENCH_OPTIONS_VERSION 1
#define ATREST_BENCH_OPTIONS_INIT                       \
	{                                               \
		.version = ATREST_BENCH_OPTIONS_VERSION \
	}

/*
 * Seal (or, with open != 0, open and authenticate) a whole object of bytes
 * bytes held in memory, repeatedly for about opts->seconds after one warm-up
 * pass; *out_gbps is plaintext 10^9 bytes per second.  Every pass derives
 * the object's keys from a fresh header, as a put or a get does.
 */
ATREST_EXTERN int atrest_bench_object(
	double *out_gbps, const atrest_bench_options *opts, size_t bytes, int open);

/*
 * Bare AEAD calls through OpenSSL's EVP interface with one reused context:
 * seal (open != 0: open and check the tag of) len bytes, a new nonce per
 * call, for about opts->seconds; *out_ops is calls per second.  The
 * cipher is AES-256-GCM or ChaCha20-Poly1305; threads is ignored.
 */
ATREST_EXTERN int atrest_bench_aead(
	double *out_ops, const atrest_bench_options *opts, size_t len, int open);

/*
 * The seconds one Argon2id derivation of a passphrase provider takes (its
 * parameters: 64 MiB, 3 passes, 4 lanes).
 */
ATREST_EXTERN int atrest_bench_kdf(double *out_seconds);

/*
 * Put count tiny objects named <prefix>NN/NNNNNNNN into a local directory
 * store without fsync, to build large stores quickly; the caller syncs the
 * file system afterwards.  Not thread-safe: nothing else may use a local
 * store of this process meanwhile.
 */
ATREST_EXTERN int atrest_bench_fill(atrest_store *st, const char *prefix, uint64_t count);

/* The version of OpenSSL in use, e.g. "OpenSSL 3.0.11 19 Sep 2023". */
ATREST_EXTERN const char *atrest_bench_openssl_version(void);

#ifdef __cplusplus
}
#endif
#endif
