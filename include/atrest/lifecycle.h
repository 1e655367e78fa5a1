/*
 * Key lifecycle of a store: data-key rotation and its policy, master-key
 * rewrap, re-encryption, exposure and destruction of data keys, and the
 * migration of plaintext files.  Safe to call while other threads and other
 * processes use the same store.
 */
#ifndef ATREST_LIFECYCLE_H
#define ATREST_LIFECYCLE_H

#include "export.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atrest_key_info {
	uint32_t id;
	const char *status; /* "active", "retired", "exposed", "destroyed" */
	int64_t created;    /* seconds since the epoch */
	uint64_t objects;   /* objects sealed under it (with usage only) */
	uint64_t bytes;     /* their plaintext bytes (with usage only) */
} atrest_key_info;

/* Called once per data key; a non-zero return stops the walk. */
typedef int (*atrest_key_cb)(const atrest_key_info *info, void *payload);

/*
 * Call cb for every data key, oldest first.  With usage ATREST_KEYS_USAGE,
 * objects and bytes per key come from the store's counts, kept by every put
 * and delete (no scan; a store without counts is scanned once); with
 * ATREST_KEYS_SCAN every object's header is read to count them and the
 * store's counts are replaced by the result (docs/AUDIT.md, "Usage").
 */
#define ATREST_KEYS_USAGE 1
#define ATREST_KEYS_SCAN 2
ATREST_EXTERN int atrest_keys_list(
	atrest_store *st, int usage, atrest_key_cb cb, void *payload);

/*
 * The data keys of the store at location (and tenant, may be NULL) as its
 * keyring records them, without any key: id, status and creation time, NOT
 * authenticated (the keyring's MAC needs the master key); objects and bytes
 * are 0 (the usage counts are checked with the keyring's keys).
 */
ATREST_EXTERN int atrest_keys_peek(
	const char *location, const char *tenant, atrest_key_cb cb, void *payload);

/* Start a new active data key (its id in *new_id, which may be NULL); the
 * previous one stays for reads. */
ATREST_EXTERN int atrest_rotate(uint32_t *new_id, atrest_store *st);

/*
 * Apply the rotation policy now (atrest_settings rotate_days, force_days):
 * rotate when the active key is older than rotate_days.  Writers call this
 * on their own (at most once a minute); long-running processes may call it
 * from a timer.  *rotated (may be NULL) tells whether it rotated.
 */
ATREST_EXTERN int atrest_maintain(atrest_store *st, int *rotated);

/*
 * Rewrap the keyring under new_key (taken over; NULL: the store's current
 * provider, e.g. after opening with an old key).  Changes no object.
 */
ATREST_EXTERN int atrest_rewrap(atrest_store *st, atrest_keyprov *new_key);

/* Mark a data key compromised (the active key is rotated away first). */
ATREST_EXTERN int atrest_key_expose(atrest_store *st, uint32_t id);

/*
 * Wipe a data key from the keyring.  Refused (ATREST_EEXISTS) while objects
 * are still sealed under it, unless force; the active key cannot be
 * destroyed (rotate first).
 */
ATREST_EXTERN int atrest_key_destroy(atrest_store *st, uint32_t id, int force);

typedef struct atrest_job_stats {
	uint64_t scanned; /* objects looked at */
	uint64_t done;    /* objects rewritten */
	uint64_t failed;  /* objects that could not be rewritten */
	uint64_t bytes;   /* plaintext bytes rewritten */
} atrest_job_stats;

/* Progress of a job: called after each object (name may be NULL). */
typedef void (*atrest_progress_cb)(
	const atrest_job_stats *s, uint64_t total, const char *name, void *payload);

/*
 * Re-encrypt every object under data key dek_id (and prefix) with the active
 * key, one atomic put per object.  Resumable: a re-run skips what is done.
 * Objects that fail are counted and reported through the last error.  out
 * (may be NULL) receives the counts.
 */
ATREST_EXTERN int atrest_reencrypt(atrest_job_stats *out, atrest_store *st,
	uint32_t dek_id, const char *prefix, atrest_progress_cb cb, void *payload);

/*
 * Encrypt in place every plaintext (non-atrest) file under prefix, one
 * atomic put per object; crash-safe and resumable.
 */
ATREST_EXTERN int atrest_migrate(atrest_job_stats *out, atrest_store *st,
	const char *prefix, atrest_progress_cb cb, void *payload);

/* The data key id an object is sealed with (no key needed), or 0 for a
 * plaintext file. */
ATREST_EXTERN int atrest_object_key_id(uint32_t *out, atrest_store *st, const char *name);

#ifdef __cplusplus
}
#endif
#endif
