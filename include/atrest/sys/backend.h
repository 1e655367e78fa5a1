/*
 * The interface a store backend implements (local directory, S3, ...).
 * It fits object stores: whole-object atomic puts, ranged reads, sorted
 * listing; no rename and no partial overwrite are ever asked for.
 */
#ifndef ATREST_SYS_BACKEND_H
#define ATREST_SYS_BACKEND_H

#include "../export.h"

#include <stddef.h>
#include <stdint.h>

#include "../store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ATREST_BACKEND_VERSION 1

/* open_write flag: fail with ATREST_EEXISTS when the key already exists. */
#define ATREST_BACKEND_EXCL 0x1

/*
 * An object being written.  Nothing is visible under its key until commit
 * returns 0; after commit or abort the writer is freed by the backend.
 * Commit must make the object durable (fsync, or the service's own
 * guarantee) before it returns.
 */
typedef struct atrest_backend_writer atrest_backend_writer;
struct atrest_backend_writer {
	int (*write)(atrest_backend_writer *w, const void *buf, size_t len);
	int (*commit)(atrest_backend_writer *w);
	void (*abort)(atrest_backend_writer *w);
	/*
	 * Optional (NULL when the backend cannot): make everything written so
	 * far durable without publishing it, so that commit only publishes.
	 * Lets the core check a condition right before an object appears.
	 */
	int (*sync)(atrest_backend_writer *w);
};

/*
 * An object opened for reading: size and mtime are filled by open_read.
 * pread returns 0 and sets *got; *got < len only when off + len passes the
 * end of the object.  It may be called from one thread at a time.
 */
typedef struct atrest_backend_reader atrest_backend_reader;
struct atrest_backend_reader {
	uint64_t size;
	int64_t mtime;
	int (*pread)(atrest_backend_reader *r, void *buf, size_t len, uint64_t off,
		size_t *got);
	void (*close)(atrest_backend_reader *r);
};

/* A held lock; released (and freed) by unlock. */
typedef struct atrest_backend_lock atrest_backend_lock;

typedef int (*atrest_backend_list_cb)(
	const char *key, uint64_t size, int64_t mtime, void *payload);

/*
 * Keys are validated object names ("a/b/c"), or the store's own files under
 * ".atrest/" (".atrest/keyring", ...).  Every method returns 0 or a negative
 * atrest_error_code and sets the last error.  ATREST_ENOTFOUND is the answer
 * for a missing key.
 */
typedef struct atrest_backend atrest_backend;
struct atrest_backend {
	unsigned int version; /* ATREST_BACKEND_VERSION */
	const char *name;     /* "fs", "s3", ... */

	/* Make the store's location usable (create it with create != 0). */
	int (*prepare)(atrest_backend *b, int create);
	int (*open_write)(atrest_backend *b, atrest_backend_writer **out, const char *key,
		unsigned int flags);
	int (*open_read)(atrest_backend *b, atrest_backend_reader **out, const char *key);
	/*
	 * Call cb for every key starting with prefix, in byte order, skipping
	 * the store's own files under ".atrest/".  A non-zero return of cb
	 * stops the listing and is returned.
	 */
	int (*list)(atrest_backend *b, const char *prefix, atrest_backend_list_cb cb,
		void *payload);
	int (*remove)(atrest_backend *b, const char *key);
	/* Exclusive lock between processes, for keyring updates. */
	int (*lock)(atrest_backend *b, atrest_backend_lock **out);
	void (*unlock)(atrest_backend *b, atrest_backend_lock *l);
	void (*free)(atrest_backend *b);
	/* Version 1 ends here; later versions only append. */
};

/* The local directory backend: object "a/b" is the file <root>/a/b. */
ATREST_EXTERN int atrest_backend_fs(atrest_backend **out, const char *root);

#ifdef __cplusplus
}
#endif
#endif
