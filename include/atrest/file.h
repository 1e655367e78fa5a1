/*
 * Standalone encrypted files (docs/FORMAT.md section 7): self-contained
 * streams whose data key travels in the header, wrapped by the master key,
 * for backups and for moving data between stores.  No store is involved.
 */
#ifndef ATREST_FILE_H
#define ATREST_FILE_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atrest_file_options {
	unsigned int version;
	/* Encrypting: the cipher (0: aes-256-gcm) and plaintext bytes per
	 * segment (0: 64 KiB).  Decrypting reads both from the file. */
	int cipher;
	uint32_t segment_size;
	/* Encrypting: metadata sealed into the file (NULL: none). */
	const atrest_meta *meta;
	/*
	 * The fd functions only: fsync the output fd before returning success.
	 * The pumps then write back as they go and drop what was written back
	 * from the page cache, so the final fsync is short.  Only regular
	 * files are synced; pipes and devices are left alone.
	 */
	int fsync;
} atrest_file_options;

#define ATREST_FILE_OPTIONS_VERSION 1
#define ATREST_FILE_OPTIONS_INIT                       \
	{                                              \
		.version = ATREST_FILE_OPTIONS_VERSION \
	}

/*
 * A sink: write all len bytes or fail; return 0 or a negative atrest code
 * (which the caller of the library then gets back).
 */
typedef int (*atrest_file_write_cb)(const void *buf, size_t len, void *payload);
/*
 * A source: read up to cap bytes into buf; *got = 0 means the end of the
 * stream.  Short reads are fine.  Return 0 or a negative atrest code.
 */
typedef int (*atrest_file_read_cb)(void *buf, size_t cap, size_t *got, void *payload);

/*
 * Encrypting, incrementally, on the caller's thread.  The key provider is
 * bound to fresh parameters (a passphrase gets a new salt: one key
 * derivation per encryptor); the caller keeps ownership of key and may free
 * it after _new returns.  The header is written to the sink by _new.
 */
typedef struct atrest_file_encryptor atrest_file_encryptor;

ATREST_EXTERN int atrest_file_encryptor_new(atrest_file_encryptor **out,
	atrest_keyprov *key, const atrest_file_options *opts, atrest_file_write_cb write,
	void *payload);
/* Same, writing to fd (which stays open and owned by the caller). */
ATREST_EXTERN int atrest_file_encryptor_new_fd(atrest_file_encryptor **out,
	atrest_keyprov *key, const atrest_file_options *opts, int fd);
ATREST_EXTERN int atrest_file_encryptor_write(
	atrest_file_encryptor *e, const void *buf, size_t len);
/* Seal the last segment and write it; frees e.  A stream is complete only
 * when this returned 0. */
ATREST_EXTERN int atrest_file_encryptor_finish(atrest_file_encryptor *e);
/* Drop e; what was written to the sink is an incomplete (invalid) file. */
ATREST_EXTERN void atrest_file_encryptor_abort(atrest_file_encryptor *e);

/*
 * Decrypting, incrementally.  _new reads and checks the header and unwraps
 * the data key: ATREST_EKEY when key is not the file's master key (the
 * message names the one it wants), ATREST_EINTEGRITY when the input is not
 * a standalone atrest file (a store object, another file) or its header
 * was modified.  The caller keeps ownership of key.
 */
typedef struct atrest_file_decryptor atrest_file_decryptor;

ATREST_EXTERN ATREST_WARN_UNUSED int atrest_file_decryptor_new(
	atrest_file_decryptor **out, atrest_keyprov *key, atrest_file_read_cb read,
	void *payload);
ATREST_EXTERN ATREST_WARN_UNUSED int atrest_file_decryptor_new_fd(
	atrest_file_decryptor **out, atrest_keyprov *key, int fd);
/*
 * Up to cap bytes of authenticated plaintext; *got = 0 only at the end of
 * an intact file.  Bytes are released one batch of segments at a time, each
 * only after its tags verified; truncation, extension, reordering or any
 * modification is ATREST_EINTEGRITY, and every later call fails too.
 */
ATREST_EXTERN ATREST_WARN_UNUSED int atrest_file_decryptor_read(
	atrest_file_decryptor *d, void *buf, size_t cap, size_t *got);
/* The file's metadata (authenticated), valid until _free. */
ATREST_EXTERN void atrest_file_decryptor_meta(
	const atrest_file_decryptor *d, const atrest_meta_entry **entries, size_t *count);
/* The master key id the file is wrapped under, e.g. "fp:3f1c9a0b2d7e4c55". */
ATREST_EXTERN const char *atrest_file_decryptor_key_id(const atrest_file_decryptor *d);
ATREST_EXTERN void atrest_file_decryptor_free(atrest_file_decryptor *d);

/*
 * Whole streams from in_fd to out_fd, pipelined: a reader thread, one
 * crypto thread per CPU (up to 4, the caller's included) and a writer
 * thread overlap the I/O with the sealing, in 2 MiB reads and writes with
 * sequential read-ahead.  Neither fd is closed.  decrypt writes only
 * authenticated plaintext, a batch of segments at a time, so when it fails
 * part of the plaintext may already be in out_fd: use a temporary file and
 * rename it only on success where that matters (as 'atrest decrypt -o'
 * does).
 */
ATREST_EXTERN int atrest_file_encrypt_fd(
	atrest_keyprov *key, const atrest_file_options *opts, int in_fd, int out_fd);
ATREST_EXTERN ATREST_WARN_UNUSED int atrest_file_decrypt_fd(
	atrest_keyprov *key, const atrest_file_options *opts, int in_fd, int out_fd);

#ifdef __cplusplus
}
#endif
#endif
