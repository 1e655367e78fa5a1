/*
 * Multipart uploads: an object assembled from parts that are sealed as they
 * arrive (in any order, in parallel, re-uploadable), then published under
 * its name by a completion that costs work per part, never a copy or a
 * re-encryption of the bytes.  The completed object reads, ranges, stats,
 * lists, verifies and deletes like any other object.  See docs/FORMAT.md.
 */
#ifndef ATREST_UPLOAD_H
#define ATREST_UPLOAD_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Part numbers are 1 .. ATREST_UPLOAD_MAX_PARTS (as S3). */
#define ATREST_UPLOAD_MAX_PARTS 10000u

/*
 * Start an upload of name (checked like any object name) with the
 * object's user metadata.  *upload_id (free with atrest_free) is an opaque,
 * unguessable, printable token of at most 64 characters [A-Za-z0-9_-].
 */
ATREST_EXTERN int atrest_upload_create(
	char **upload_id, atrest_store *st, const char *name, const atrest_meta *meta);

/*
 * A writer for part part_number of an upload: the part is sealed as it
 * streams and bound to the upload's object name, upload id and part number.
 * Commit makes it durable and replaces an earlier part of that number;
 * nothing is visible under name yet.  meta (may be NULL) is kept encrypted
 * with the part (the S3 API keeps the part's ETag there).  ATREST_ENOTFOUND
 * when the upload does not exist (aborted, completed, never created).
 */
ATREST_EXTERN int atrest_upload_part_open(atrest_writer **out, atrest_store *st,
	const char *name, const char *upload_id, uint32_t part_number,
	const atrest_meta *meta);

/* One uploaded part, as atrest_upload_parts reports it. */
typedef struct atrest_upload_part {
	uint32_t number;
	uint64_t size;                 /* plaintext bytes */
	uint64_t stored_size;          /* bytes in the backend */
	int64_t mtime;                 /* seconds since the epoch */
	const atrest_meta_entry *meta; /* the part's metadata, decrypted */
	size_t meta_count;
} atrest_upload_part;

typedef int (*atrest_upload_part_cb)(const atrest_upload_part *part, void *payload);

/* The committed parts of an upload in increasing number (authenticated). */
ATREST_EXTERN int atrest_upload_parts(atrest_store *st, const char *name,
	const char *upload_id, atrest_upload_part_cb cb, void *payload);

/*
 * Publish the upload as object name from parts (strictly increasing
 * numbers, each committed; ATREST_EINVAL naming the first bad one
 * otherwise, ATREST_ENOTFOUND for a part never uploaded).  meta, when not
 * NULL, replaces the metadata given at creation (the S3 API adds the
 * multipart ETag).  opts as for atrest_writer_open_ex
 * (ATREST_WRITE_IF_ABSENT).  Parts not listed are removed.  The previous
 * object of that name, if any, is replaced atomically, as by a put.
 */
ATREST_EXTERN int atrest_upload_complete(atrest_store *st, const char *name,
	const char *upload_id, const uint32_t *parts, size_t count,
	const atrest_meta *meta, const atrest_write_options *opts);

/* Drop an upload and its parts.  ATREST_ENOTFOUND when there is none. */
ATREST_EXTERN int atrest_upload_abort(
	atrest_store *st, const char *name, const char *upload_id);

/* One upload in progress, as atrest_upload_list reports it. */
typedef struct atrest_upload_entry {
	const char *name;
	const char *upload_id;
	int64_t initiated; /* seconds since the epoch */
} atrest_upload_entry;

typedef int (*atrest_upload_list_cb)(const atrest_upload_entry *entry, void *payload);

/* Uploads in progress whose object name starts with prefix, by name. */
ATREST_EXTERN int atrest_upload_list(
	atrest_store *st, const char *prefix, atrest_upload_list_cb cb, void *payload);

/* Abort every upload initiated more than age_seconds ago; *aborted counts. */
ATREST_EXTERN int atrest_upload_cleanup(
	size_t *aborted, atrest_store *st, int64_t age_seconds);

#ifdef __cplusplus
}
#endif

#endif
