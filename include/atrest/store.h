/*
 * The store: named, encrypted, authenticated objects (checkpoints) with put,
 * get, streaming, byte ranges, stat, list and delete.  One atrest_store may be
 * used from many threads at once; writers and readers belong to one thread.
 */
#ifndef ATREST_STORE_H
#define ATREST_STORE_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ATREST_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define ATREST_WARN_UNUSED
#endif

typedef struct atrest_store atrest_store;
typedef struct atrest_backend atrest_backend;
typedef struct atrest_pool atrest_pool;

typedef enum atrest_cipher {
	ATREST_CIPHER_DEFAULT = 0,
	ATREST_CIPHER_AES_256_GCM = 1,
	ATREST_CIPHER_CHACHA20_POLY1305 = 2,
	ATREST_CIPHER_AES_256_CBC_HMAC_SHA256 = 3
} atrest_cipher;

/* "aes-256-gcm", "chacha20-poly1305", "aes-256-cbc-hmac-sha256". */
ATREST_EXTERN const char *atrest_cipher_name(int cipher);
/* The cipher of a name, or ATREST_EINVAL. */
ATREST_EXTERN int atrest_cipher_from_name(const char *name);

#define ATREST_SEGMENT_SIZE_DEFAULT 65536u
#define ATREST_SEGMENT_SIZE_MIN 1024u
#define ATREST_SEGMENT_SIZE_MAX (16u * 1024 * 1024)
#define ATREST_NAME_MAX 1024  /* bytes of an object name */
#define ATREST_TENANT_MAX 64  /* bytes of a tenant name */
#define ATREST_META_MAX 65536 /* encoded bytes of an object's metadata */

typedef struct atrest_store_options {
	unsigned int version;
	/*
	 * The store's location: a directory path, or a URI such as
	 * "file:///var/lib/x" or "s3://bucket/prefix" (atrest_backend_open).
	 * Ignored when backend is set.
	 */
	const char *path;
	/* A backend to use instead of path; the store takes ownership. */
	atrest_backend *backend;
	/* The master key; the store takes ownership.  NULL: from environment. */
	atrest_keyprov *key;
	/* A previous master key; the keyring is rewrapped to key on open. */
	atrest_keyprov *old_key;
	/*
	 * Tenant whose objects and keyring this handle uses (NULL or "": the
	 * default tenant).  It must have been added (atrest_tenant_add); the
	 * store's master key (key) authenticates the list of tenants.
	 */
	const char *tenant;
	/* Create the store when it does not exist (never a tenant). */
	int create;
	/* Settings for a store being created (0: defaults). */
	int cipher;
	uint32_t segment_size;
	/* Return non-atrest files as they are instead of refusing them. */
	int allow_plaintext;
	/*
	 * Unwrapped data keys are kept in locked memory and asked of the key
	 * provider again after key_cache_ttl seconds or key_cache_uses uses
	 * (0: 300 s, 2^32 uses); while the provider is unreachable a cached
	 * key keeps working for key_cache_grace more seconds (0: 86400).
	 */
	uint32_t key_cache_ttl;
	uint64_t key_cache_uses;
	uint32_t key_cache_grace;
	/*
	 * Threads sealing and opening one large object (the caller's
	 * included): 0 for the number of online CPUs, 1 for none besides the
	 * caller.  They are started on first need and stopped by close.
	 * Ignored when pool is set.
	 */
	unsigned int threads;
	/* ATREST_STORE_* flags. */
	unsigned int flags;
	/* Version 2 adds: */
	/*
	 * A thread pool shared with other handles (atrest_pool_new), so that
	 * a process opening many stores or tenants starts one set of threads;
	 * it must outlive every handle using it.  NULL: the handle starts its
	 * own (see threads).
	 */
	atrest_pool *pool;
	/*
	 * Where this host remembers the newest keyring generation it has seen
	 * of each store and tenant, to report a keyring rolled back to an older
	 * copy: NULL for $XDG_STATE_HOME/atrest (else ~/.local/state/atrest),
	 * "" for nowhere (no rollback detection).
	 */
	const char *state_dir;
	/* Called for every event (include/atrest/observe.h); copied. */
	const struct atrest_observer *observer;
	/*
	 * The audit trail: "off", "syslog", or a directory for its files.
	 * NULL: $ATREST_AUDIT, else <store>/.atrest/audit for a local store
	 * (off for other backends).  docs/AUDIT.md.
	 */
	const char *audit;
	/* Audit files are rotated past this size (0: $ATREST_AUDIT_ROTATE_BYTES,
	 * else 64 MiB); a signed head is written at least every
	 * audit_head_lines lines (0: 1000). */
	uint64_t audit_rotate_bytes;
	unsigned int audit_head_lines;
} atrest_store_options;

/*
 * Skip fsync on puts: much faster, but a crash may lose or tear recent
 * objects.  For scratch stores, tests and benchmarks only.
 */
#define ATREST_STORE_NO_SYNC 0x1u
/* With create: fail with ATREST_EEXISTS when the store already exists. */
#define ATREST_STORE_EXCL 0x2u
/*
 * With create: make a new keyring even in a directory that holds atrest
 * objects but no keyring (they can then never be read: a deliberate
 * decision, e.g. after the keyring was lost for good).
 */
#define ATREST_STORE_FORCE_NEW 0x4u

#define ATREST_STORE_OPTIONS_VERSION 2
#define ATREST_STORE_OPTIONS_INIT                       \
	{                                               \
		.version = ATREST_STORE_OPTIONS_VERSION \
	}

/*
 * A pool of threads for sealing and opening large objects, to share between
 * store handles (atrest_store_options.pool): threads counts the caller's
 * own thread (0: the number of online CPUs; 1: no workers).
 */
ATREST_EXTERN int atrest_pool_new(atrest_pool **out, unsigned int threads);
/* Stop and free a pool; every handle using it must be closed first. */
ATREST_EXTERN void atrest_pool_free(atrest_pool *pool);

/*
 * Open (and with opts->create, create) a store.  Fails with ATREST_EKEY when
 * the master key is missing or is not the store's, ATREST_ENOTFOUND when the
 * location does not exist and create is 0 (or the tenant does not),
 * ATREST_EINTEGRITY when the keyring is damaged, rolled back to an older
 * copy, or missing beside atrest objects (see ATREST_STORE_FORCE_NEW).  An
 * existing location without a keyring opens without create as a directory
 * of plain files: they read with allow_plaintext (a migration), atrest
 * objects there fail, and writes fail with ATREST_ENOTFOUND until a handle
 * opened with create makes the store in place.  The options' key providers
 * and backend are taken over even when the call fails.
 */
ATREST_EXTERN int atrest_store_open(atrest_store **out, const atrest_store_options *opts);
ATREST_EXTERN void atrest_store_close(atrest_store *st);

/* User metadata: key/value pairs, encrypted with the object. */
typedef struct atrest_meta_entry {
	const char *key;
	const char *value;
} atrest_meta_entry;

typedef struct atrest_meta {
	const atrest_meta_entry *entries;
	size_t count;
} atrest_meta;

/* Atomically and durably replace (or create) name with buf. */
ATREST_EXTERN int atrest_put(atrest_store *st, const char *name, const void *buf,
	size_t len, const atrest_meta *meta);

/*
 * Read and authenticate a whole object.  *out is allocated (free it with
 * atrest_free); on any failure nothing is returned.
 */
ATREST_EXTERN ATREST_WARN_UNUSED int atrest_get(
	void **out, size_t *out_len, atrest_store *st, const char *name);

/*
 * Read len bytes at offset off of an object's plaintext into buf; only the
 * segments covering the range are read and authenticated.  *got is less than
 * len only at the end of the object.
 */
ATREST_EXTERN ATREST_WARN_UNUSED int atrest_get_range(atrest_store *st, const char *name,
	uint64_t off, void *buf, size_t len, size_t *got);

/* Streaming writer: nothing is visible under name until commit succeeds. */
typedef struct atrest_writer atrest_writer;
ATREST_EXTERN int atrest_writer_open(
	atrest_writer **out, atrest_store *st, const char *name, const atrest_meta *meta);
ATREST_EXTERN int atrest_writer_write(atrest_writer *w, const void *buf, size_t len);

/* Options of atrest_writer_open_ex. */
typedef struct atrest_write_options {
	unsigned int version; /* ATREST_WRITE_OPTIONS_VERSION */
	unsigned int flags;   /* ATREST_WRITE_* */
} atrest_write_options;

/*
 * Create only: commit fails with ATREST_EEXISTS (and publishes nothing)
 * when name exists at that moment, atomically with the publication, so of
 * any number of writers racing to create one name, in any processes,
 * exactly one succeeds.
 */
#define ATREST_WRITE_IF_ABSENT 0x1u

#define ATREST_WRITE_OPTIONS_VERSION 1
#define ATREST_WRITE_OPTIONS_INIT                       \
	{                                               \
		.version = ATREST_WRITE_OPTIONS_VERSION \
	}

/* atrest_writer_open with options (opts may be NULL: none). */
ATREST_EXTERN int atrest_writer_open_ex(atrest_writer **out, atrest_store *st,
	const char *name, const atrest_meta *meta, const atrest_write_options *opts);
/* Seal the last segment, make the object durable and visible; frees w. */
ATREST_EXTERN int atrest_writer_commit(atrest_writer *w);
/* Drop everything written; frees w.  The thread's last error (why the
 * caller aborts, most often) is left as it was. */
ATREST_EXTERN void atrest_writer_abort(atrest_writer *w);

/*
 * Streaming reader: returns only authenticated plaintext.  A read that
 * reaches the end checks that the object was not truncated.
 */
typedef struct atrest_reader atrest_reader;
ATREST_EXTERN int atrest_reader_open(
	atrest_reader **out, atrest_store *st, const char *name);
/* *got == 0 means end of object. */
ATREST_EXTERN ATREST_WARN_UNUSED int atrest_reader_read(
	atrest_reader *r, void *buf, size_t len, size_t *got);
ATREST_EXTERN int atrest_reader_seek(atrest_reader *r, uint64_t off);
ATREST_EXTERN uint64_t atrest_reader_size(const atrest_reader *r);
ATREST_EXTERN void atrest_reader_close(atrest_reader *r);

typedef struct atrest_stat_info {
	unsigned int version; /* ATREST_STAT_INFO_VERSION, set by the caller */
	uint64_t size;        /* plaintext bytes */
	uint64_t stored_size; /* bytes in the backend */
	int64_t mtime;        /* seconds since the epoch, from the backend */
	int cipher;
	uint32_t segment_size;
	uint32_t data_key_id;
	int plaintext; /* a non-atrest file passed through */
	/* Decrypted user metadata; valid until atrest_stat_info_clear. */
	atrest_meta_entry *meta;
	size_t meta_count;
} atrest_stat_info;

#define ATREST_STAT_INFO_VERSION 1
#define ATREST_STAT_INFO_INIT                       \
	{                                           \
		.version = ATREST_STAT_INFO_VERSION \
	}

/*
 * Header facts and metadata, authenticated.  out->version must be set
 * (ATREST_STAT_INFO_INIT); everything else in *out is overwritten.
 */
ATREST_EXTERN ATREST_WARN_UNUSED int atrest_stat(
	atrest_stat_info *out, atrest_store *st, const char *name);
ATREST_EXTERN void atrest_stat_info_clear(atrest_stat_info *info);

/*
 * The header facts and metadata of an open reader, as atrest_stat gives
 * them (out->version set by the caller; clear with atrest_stat_info_clear),
 * without opening the object again: a reader's one "get" event stays the
 * only one.
 */
ATREST_EXTERN int atrest_reader_stat(atrest_stat_info *out, const atrest_reader *r);
/*
 * Read only bytes [off, off + len) of the object: seeks to off, reads end
 * (*got == 0) at off + len, and the reader's event records the range.
 * ATREST_EINVAL when the range is not inside the object.
 */
ATREST_EXTERN int atrest_reader_range(atrest_reader *r, uint64_t off, uint64_t len);

typedef struct atrest_list_entry {
	const char *name;
	uint64_t stored_size;
	int64_t mtime;
} atrest_list_entry;

/* Called once per object listed; a non-zero return stops the walk. */
typedef int (*atrest_list_cb)(const atrest_list_entry *entry, void *payload);

/*
 * Call cb for every object whose name starts with prefix, in byte order of
 * names.  A non-zero return from cb stops the walk and is returned.
 */
ATREST_EXTERN int atrest_list(
	atrest_store *st, const char *prefix, atrest_list_cb cb, void *payload);

ATREST_EXTERN int atrest_delete(atrest_store *st, const char *name);

/* Check a name: 0, or ATREST_EINVAL with the reason as last error. */
ATREST_EXTERN int atrest_name_check(const char *name);

/* Free memory that libatrest returned. */
ATREST_EXTERN void atrest_free(void *p);

/*
 * The store's settings, kept in its keyring under the keyring's MAC (see
 * docs/FORMAT.md): each tenant has its own.
 */
typedef struct atrest_settings {
	unsigned int version; /* ATREST_SETTINGS_VERSION, set by the caller */
	int cipher;
	uint32_t segment_size;
	uint32_t rotate_days; /* data-key rotation policy */
	uint32_t force_days;
} atrest_settings;

#define ATREST_SETTINGS_VERSION 1
#define ATREST_SETTINGS_INIT                       \
	{                                          \
		.version = ATREST_SETTINGS_VERSION \
	}

/*
 * Read (out->version set by the caller: ATREST_SETTINGS_INIT; re-read when
 * another process changed them) or change the settings of the store.
 */
ATREST_EXTERN int atrest_store_settings(atrest_settings *out, atrest_store *st);
ATREST_EXTERN int atrest_store_set_settings(atrest_store *st, const atrest_settings *s);

/*
 * The settings of the store at location (and tenant, may be NULL) as they
 * are written, without any key: NOT authenticated (they live in the
 * keyring, under its MAC, which only the master key checks).  For showing
 * them; a store opened with its key uses atrest_store_settings.
 */
ATREST_EXTERN int atrest_settings_peek(
	atrest_settings *out, const char *location, const char *tenant);

/*
 * The local directory of a store location (a plain path or a file:// URI)
 * in *dir, to be freed with atrest_free; NULL for a location elsewhere
 * (s3://...).  Where the store's own files are, e.g. its audit trail in
 * DIR/.atrest/audit.
 */
ATREST_EXTERN int atrest_location_dir(char **dir, const char *location);

/*
 * atrest_list without any key: the objects of the store at location (and
 * tenant, may be NULL) whose names start with prefix.  Names, sizes and
 * times are not secret (anyone who can read the directory sees them); no
 * audit line is written, as no key is at hand to sign one.
 */
ATREST_EXTERN int atrest_list_peek(const char *location, const char *tenant,
	const char *prefix, atrest_list_cb cb, void *payload);

/*
 * Remove what writers that died left in the store's location and nobody
 * can see: on S3, multipart uploads never completed (their parts are
 * stored, and billed, until aborted); in a directory, the temp files of
 * handles that are gone.  Only what was started more than older_than
 * seconds ago is touched (S3 cannot tell a live writer's upload from a
 * dead one's: use at least the longest put you run; a handle's first
 * writer does this with a day).  The whole location is swept, every
 * tenant's objects included.  *count (may be NULL) gets how many were
 * removed.
 */
ATREST_EXTERN int atrest_store_cleanup(
	uint64_t *count, atrest_store *st, uint64_t older_than);

/* The store's id as 32 hex digits plus NUL. */
ATREST_EXTERN int atrest_store_id(char out[33], atrest_store *st);

/*
 * The master key the keyring is wrapped under, for logs and status pages:
 * its provider kind ("key-file", "passphrase", ...) and non-secret id
 * (e.g. "fp:3f1c9a0b2d7e4c55"), NUL-terminated and cut to fit.
 */
ATREST_EXTERN int atrest_store_master_key(
	char *kind, size_t kind_cap, char *key_id, size_t id_cap, atrest_store *st);

/* The same read from the keyring of the store at location (and tenant, may
 * be NULL) without any key: what it records, NOT authenticated. */
ATREST_EXTERN int atrest_master_key_peek(char *kind, size_t kind_cap, char *key_id,
	size_t id_cap, const char *location, const char *tenant);

#ifdef __cplusplus
}
#endif
#endif
