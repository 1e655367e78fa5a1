/*
 * The in-process measurements of atrest-bench that need the library's
 * internals: objects sealed and opened in memory through the object format,
 * bare OpenSSL AEAD rates, one Argon2id derivation.  Not part of libatrest.
 */
#ifndef ATREST_BENCH_LIB_H
#define ATREST_BENCH_LIB_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_options {
	int cipher;            /* 0: AES-256-GCM */
	uint32_t segment_size; /* 0: ATREST_SEGMENT_SIZE_DEFAULT */
	/* Threads sealing or opening one object's segments (0: one). */
	unsigned int threads;
	double seconds; /* time to measure for (0: 1 s) */
} bench_options;

/*
 * Seal (or, with open != 0, open and authenticate) a whole object of bytes
 * bytes held in memory, repeatedly for about opts->seconds after one warm-up
 * pass; *out_gbps is plaintext 10^9 bytes per second.  Every pass derives
 * the object's keys from a fresh header, as a put or a get does.
 */
int bench_lib_object(double *out_gbps, const bench_options *opts, size_t bytes, int open);

/*
 * Bare AEAD calls through OpenSSL's EVP interface with one reused context:
 * seal (open != 0: open and check the tag of) len bytes, a new nonce per
 * call, for about opts->seconds; *out_ops is calls per second.
 */
int bench_lib_aead(double *out_ops, const bench_options *opts, size_t len, int open);

/* The seconds one Argon2id derivation with the passphrase provider's
 * parameters (64 MiB, 3 passes, 4 lanes) takes. */
int bench_lib_kdf(double *out_seconds);

/* The version of OpenSSL in use, e.g. "OpenSSL 3.0.11 19 Sep 2023". */
const char *bench_openssl_version(void);

#endif
