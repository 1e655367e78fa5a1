/*
 * The interface a store backend implements (local directory, S3, ...), and
 * its contract.  It fits object stores: whole-object atomic puts, ranged
 * reads, sorted listing and conditional puts; no rename, no partial
 * overwrite and no lock is ever asked for.
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

/*
 * The contract, for every method below:
 *
 * - Errors: a method returns 0 or a negative atrest_error_code and, when it
 *   fails, sets this thread's last error with atrest_error_set() (the core
 *   gives a silent failure a generic message).  ATREST_ENOTFOUND is the
 *   answer for a missing key, ATREST_EUNAVAILABLE for a service that cannot
 *   be reached, ATREST_ENOSPC for a full disk or quota.  Messages never hold
 *   credentials.
 * - Threads: the methods of one atrest_backend may be called from many
 *   threads at once.  A writer or a reader is used by one thread at a time
 *   (the core may hand it from one thread to another).
 * - Ownership: the backend allocates writers and readers and frees them in
 *   commit, abort and close; free releases the backend once every writer
 *   and reader is gone.  Strings passed in are only borrowed for the call.
 * - Keys are validated object names ("a/b/c", at most 1024 bytes), possibly
 *   under a tenant's prefix, or the store's own files, all under ".atrest/"
 *   (".atrest/keyring", ".atrest/tenants/acme/objects/a/b", ...): at most
 *   1200 bytes, '/'-separated, no empty, "." or ".." component.  A backend
 *   must refuse (ATREST_EINVAL) any other key rather than reach outside its
 *   location.
 * - The core calls a backend only through checked wrappers
 *   (src/lib/store/backend.c): versions, missing methods, returned sizes
 *   and silent failures are checked there, so a faulty backend fails
 *   cleanly instead of corrupting memory.
 */

#define ATREST_BACKEND_VERSION 3
#define ATREST_BACKEND_WRITER_VERSION 1
#define ATREST_BACKEND_READER_VERSION 1

/* Bytes of an etag, its NUL included. */
#define ATREST_BACKEND_ETAG_MAX 128

/*
 * Conditions of open_write (at most one), checked atomically with the
 * publication at commit:
 * IF_ABSENT: create only; commit fails with ATREST_EEXISTS when the key
 *   exists (S3: If-None-Match: *).
 * IF_MATCH: replace only the version read with the given etag; commit fails
 *   with ATREST_ECONFLICT when the key now has another etag or is gone
 *   (S3: If-Match).
 * A plain put (no condition) must never slip between the check and the
 * publication of a conditional one, so that the condition is exact.
 */
#define ATREST_BACKEND_IF_ABSENT 0x1u
#define ATREST_BACKEND_IF_MATCH 0x2u
/*
 * With IF_MATCH, a hint, not a condition: the new version keeps what the
 * replaced one had of owner, group, permission bits and modification time,
 * where the backend has such things (the local directory store does; a
 * backend without them ignores the flag).  Used when atrest rewrites an
 * object in place (migrate, reencrypt), so that an engine that checks its
 * files' owner and mode still starts.
 */
#define ATREST_BACKEND_KEEP_ATTRS 0x4u

/*
 * An object being written.  Nothing is visible under its key until commit
 * returns 0; commit and abort free the writer (commit even when it fails).
 * Commit makes the object durable (fsync, or the service's own guarantee)
 * before it returns.
 */
typedef struct atrest_backend_writer atrest_backend_writer;
struct atrest_backend_writer {
	unsigned int version; /* ATREST_BACKEND_WRITER_VERSION */
	/* Append len bytes (the whole buffer, or fail). */
	int (*write)(atrest_backend_writer *w, const void *buf, size_t len);
	int (*commit)(atrest_backend_writer *w);
	void (*abort)(atrest_backend_writer *w);
	/*
	 * Optional (NULL when the backend cannot): make everything written so
	 * far durable without publishing it, so that commit only publishes.
	 */
	int (*sync)(atrest_backend_writer *w);
	/* Version 1 ends here; later versions only append. */
};

#define ATREST_BACKEND_WRITER_INIT                       \
	{                                                \
		.version = ATREST_BACKEND_WRITER_VERSION \
	}

/*
 * An object opened for reading: open_read fills size, mtime (seconds since
 * the epoch) and etag, an opaque NUL-terminated string that changes
 * whenever the object is replaced (S3: the ETag; fs: the file's identity
 * and a hash of its first bytes).  A reader reads the version it opened,
 * even when the key is replaced meanwhile, or fails with ATREST_ECONFLICT.
 *
 * pread reads up to len bytes at off into buf and sets *got.  *got < len
 * only when off + len passes the end of the object (short reads are the
 * backend's to retry); *got is never more than len.
 */
typedef struct atrest_backend_reader atrest_backend_reader;
struct atrest_backend_reader {
	unsigned int version; /* ATREST_BACKEND_READER_VERSION */
	uint64_t size;
	int64_t mtime;
	char etag[ATREST_BACKEND_ETAG_MAX];
	int (*pread)(atrest_backend_reader *r, void *buf, size_t len, uint64_t off,
		size_t *got);
	void (*close)(atrest_backend_reader *r);
	/* Version 1 ends here; later versions only append. */
};

#define ATREST_BACKEND_READER_INIT                       \
	{                                                \
		.version = ATREST_BACKEND_READER_VERSION \
	}

/* Called once per key listed; a non-zero return stops the listing. */
typedef int (*atrest_backend_list_cb)(
	const char *key, uint64_t size, int64_t mtime, void *payload);

typedef struct atrest_backend atrest_backend;
struct atrest_backend {
	unsigned int version; /* ATREST_BACKEND_VERSION */
	const char *name;     /* "fs", "s3", ... */
	/*
	 * Check the store's location; with create != 0 make it when missing
	 * (a directory, a bucket), else ATREST_ENOTFOUND.  Called once before
	 * any other method.  Readers must work on a location they may not
	 * write to: anything a writer needs is made on first write.
	 */
	int (*prepare)(atrest_backend *b, int create);
	/* Start writing key; flags: 0 or one condition above (etag is the
	 * IF_MATCH etag, NULL otherwise). */
	int (*open_write)(atrest_backend *b, atrest_backend_writer **out, const char *key,
		unsigned int flags, const char *etag);
	int (*open_read)(atrest_backend *b, atrest_backend_reader **out, const char *key);
	/*
	 * Call cb for every key starting with prefix, in byte order of keys.
	 * Keys under ".atrest/" are listed only when prefix starts with
	 * ".atrest/" (an object store may list around them with a start-after
	 * marker).  A non-zero return of cb stops the listing and is returned.
	 */
	int (*list)(atrest_backend *b, const char *prefix, atrest_backend_list_cb cb,
		void *payload);
	/* Remove key; ATREST_ENOTFOUND when it does not exist. */
	int (*remove)(atrest_backend *b, const char *key);
	void (*free)(atrest_backend *b);
	/* Version 2 ends here; version 3 adds two optional methods (NULL
	 * when the backend has none): */
	/*
	 * Remove the n keys at once (an object store's batch delete); keys
	 * that do not exist are no error.  On failure some may be gone.
	 */
	int (*remove_many)(atrest_backend *b, const char *const *keys, size_t n);
	/*
	 * Remove what writers that died left behind and nobody can see (S3:
	 * multipart uploads never completed; fs: temp files of handles that
	 * are gone), when started more than older_than seconds ago (a live
	 * writer's are younger); *count gets how many were removed.
	 */
	int (*cleanup)(atrest_backend *b, uint64_t older_than, uint64_t *count);
	/* Version 3 ends here; later versions only append. */
};

#define ATREST_BACKEND_INIT                       \
	{                                         \
		.version = ATREST_BACKEND_VERSION \
	}

/* The local directory backend: object "a/b" is the file <root>/a/b. */
ATREST_EXTERN int atrest_backend_fs(atrest_backend **out, const char *root);

/*
 * The backend for a location: "file:///abs/dir" or a plain path (the local
 * directory backend), "s3://bucket/prefix" (when built with S3 support).
 */
ATREST_EXTERN int atrest_backend_open(atrest_backend **out, const char *location);

/* The location schemes built in ("file", "s3"), NULL-terminated. */
ATREST_EXTERN const char *const *atrest_backend_schemes(void);

#ifdef __cplusplus
}
#endif
#endif
