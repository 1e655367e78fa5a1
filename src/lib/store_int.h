/*
 * The store handle's internals, shared by store.c (open, keyring updates),
 * object.c (writer, reader), record.c, lifecycle.c and tenant.c.
 */
#ifndef ATREST_STORE_INT_H
#define ATREST_STORE_INT_H

#include <pthread.h>

#include "common.h"

#include "atrest/store.h"
#include "atrest/sys/backend.h"
#include "atrest/sys/keyprov.h"
#include "keyring.h"
#include "obs.h"
#include "pool.h"
#include "store/backend_int.h"

/* Backend keys of a tenant: .atrest/tenants/<T>/{keyring,objects/...}. */
#define ATREST__TENANTS_DIR ".atrest/tenants/"
#define ATREST__KEY_PREFIX_MAX (sizeof(ATREST__TENANTS_DIR) + ATREST_TENANT_MAX + 16)

struct atrest_store {
	atrest_backend *b;
	int borrowed;             /* b and kp belong to the handle this one serves */
	atrest_keyprov *kp;       /* the store's master key */
	atrest_keyprov *old_kp;   /* a previous one (ATREST_OLD_*), or NULL */
	atrest_keyprov *own_kp;   /* a tenant's own master key, or NULL */
	atrest_keyprov *cur_kp;   /* the one that unlocked kr */
	atrest_keyprov **retired; /* replaced by atrest_rewrap, freed at close */
	size_t nretired;
	atrest__keyring *kr;  /* NULL: a directory without a keyring (yet) */
	uint8_t store_id[16]; /* kr's id: fixed for the handle's life */
	/* Guards kr, cur_kp and the key cache; held only to look up, never
	 * across I/O (backend or key provider). */
	pthread_mutex_t mu;
	pthread_mutex_t update_mu; /* one reload or keyring update at a time */
	atrest__key_cache cache;
	int64_t last_refresh;
	int64_t last_maintain;
	int foreign_master; /* keyring rewrapped to a key we lack */
	char tenant[ATREST_TENANT_MAX + 1];
	char prefix[ATREST__KEY_PREFIX_MAX]; /* of object keys: "" or a tenant's */
	char kr_key[ATREST__KEY_PREFIX_MAX]; /* the keyring's backend key */
	int allow_plaintext;
	unsigned int flags;      /* ATREST_STORE_* */
	char *location;          /* for messages */
	char *state_dir;         /* rollback detection (floor.c), or NULL */
	unsigned threads;        /* resolved option: 1 means no pool */
	atrest__pool *pool;      /* started on first need (atomic pointer) */
	int own_pool;            /* pool is this handle's (not the caller's) */
	pthread_mutex_t pool_mu; /* serialises starting it */
	void *spare[8];          /* ciphertext buffers kept for reuse (atomic) */
	struct atrest__obs *obs; /* events: metrics, audit trail, observer */
};

/*
 * The active data key id and a copy of its key (32 bytes; the caller wipes
 * it), for a new object; applies the rotation policy first.
 */
int atrest__store_active_dek(atrest_store *st, uint32_t *id, uint8_t *key, int *cipher,
	uint32_t *segment_size);
/* The active data key id and the store cipher, without the key (records
 * derive their key once per data key). */
int atrest__store_record_key(atrest_store *st, uint32_t *id, int *cipher);
/* A copy of data key id, for reading (the keyring is re-read once when
 * the id is unknown: another process may have rotated). */
int atrest__store_dek(atrest_store *st, uint32_t id, uint8_t *key);

/* Re-read the keyring if another process changed it (force: now, else at
 * most once a second).  ATREST_ENOTFOUND when the handle has no keyring. */
int atrest__store_refresh(atrest_store *st, int force);

/*
 * Change the keyring: read it (with its etag), authenticate it, apply op
 * to that private copy, bump its generation, write it back with a
 * conditional put (replace only the version read), and only then publish
 * it in memory.  A lost race (another process changed the keyring) starts
 * over from the read.  op gets the provider that unlocked kr in *kp and may
 * replace it (a rewrap).  Nothing changes in memory when anything fails.
 */
typedef int (*atrest__keyring_op)(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg);
int atrest__store_update(atrest_store *st, atrest__keyring_op op, void *arg);
/* A short random pause after a lost race, growing with the attempts. */
void atrest__store_backoff(int tries);

/* Apply the rotation policy (throttled to once a minute). */
int atrest__store_policy(atrest_store *st);

/* Keep a provider replaced by a rewrap until the handle closes. */
void atrest__store_retire(atrest_store *st, atrest_keyprov *kp);

/*
 * The backend key of object name (prefixed for a tenant) in out; a name of
 * the library's own under ".atrest/" goes to ".atrest/tenants/<T>/" for
 * tenant T.
 */
int atrest__store_key(char *out, size_t cap, const atrest_store *st, const char *name);
#define ATREST__STORE_KEY_MAX (ATREST_NAME_MAX + ATREST__KEY_PREFIX_MAX + 1)

/* What an object's header says, read without a key (not authenticated). */
typedef struct atrest__object_facts_t {
	int plaintext;
	uint32_t dek_id;
	uint8_t salt[32];
	uint64_t size; /* plaintext bytes */
	uint64_t stored_size;
	int64_t mtime;
	char etag[ATREST_BACKEND_ETAG_MAX]; /* the version read */
	int multipart; /* a completed upload: a part list (upload_int.h) */
} atrest__object_facts_t;

int atrest__object_facts(atrest__object_facts_t *out, atrest_store *st, const char *name);

/*
 * The library's own objects (snapshots, snap.c): names under ".atrest/snap/"
 * that no caller can use (atrest__internal_name_check), sealed and read like
 * any object, kept in the tenant's own area (atrest__store_key).
 */
int atrest__writer_open_internal(atrest_writer **out, atrest_store *st, const char *name,
	unsigned int flags, const char *etag);
int atrest__reader_open_internal(atrest_reader **out, atrest_store *st, const char *name);
/*
 * Writers of multipart uploads (upload.c): how is ATREST__W_* (name is a
 * user's name for a multipart object, an internal one otherwise); a quiet
 * writer commits without an event (the upload operation has its own).
 */
#define ATREST__W_MULTIPART 0x1u
#define ATREST__W_QUIET 0x2u
int atrest__writer_open_upload(atrest_writer **out, atrest_store *st, const char *name,
	const atrest_meta *meta, unsigned int flags, const char *etag, unsigned int how);
/* The writer's event becomes op (begun by the caller, ended by commit). */
void atrest__writer_set_op(atrest_writer *w, atrest__op *op);
/* The checks of atrest_write_options and the backend condition asked. */
int atrest__write_flags(unsigned int *out, const atrest_write_options *opts);
/* Authenticated facts of one of the library's own objects (an upload's
 * part or record); meta (want_meta) is freed with free(). */
typedef struct atrest__part_facts {
	uint64_t size, stored;
	int64_t mtime;
	uint32_t dek;
	uint8_t commit[32];
	char etag[ATREST_BACKEND_ETAG_MAX];
	atrest_meta_entry *meta;
	size_t meta_count;
} atrest__part_facts;
int atrest__internal_facts(
	atrest__part_facts *out, atrest_store *st, const char *name, int want_meta);
/* A whole internal object of at most max bytes, with its facts and meta. */
int atrest__internal_read(uint8_t **out, size_t *len, atrest__part_facts *facts,
	atrest_store *st, const char *name, size_t max);
/* The upload id a multipart object names, or "" (errors are kept). */
void atrest__multipart_id(char out[65], atrest_store *st, const char *name);
/* 1 when the object or one of its parts is sealed by data key dek. */
int atrest__multipart_uses(atrest_store *st, const char *name, uint32_t dek);
/* The key commitment (the value unique to this version) and data key id. */
void atrest__writer_facts(const atrest_writer *w, uint8_t commit[32], uint32_t *dek);
/* The same, authenticated, and the version (etag) and mtime opened. */
void atrest__reader_facts(const atrest_reader *r, uint8_t commit[32], uint32_t *dek,
	const char **etag, int64_t *mtime);
/* Call fn with the name of every object of the snapshot area
 * (.atrest/snap/..., snap_util.c): a scan of data-key usage counts them. */
int atrest__snap_each_object(
	atrest_store *st, int (*fn)(const char *name, void *payload), void *payload);
/* The store's pool (started on first need); NULL when threads is 1. */
atrest__pool *atrest__store_pool(atrest_store *st);

/*
 * Rewrite an object under the active data key, keeping its metadata; a
 * plaintext file (facts->plaintext) is encrypted.  Fails with
 * ATREST_EEXISTS, leaving the object alone, when it was replaced meanwhile.
 */
/*
 * Remove object name (internal != 0: one of the library's own under
 * .atrest/, as snapshots keep), the per-key usage counts forgetting it.
 */
int atrest__object_remove(atrest_store *st, const char *name, int internal);

int atrest__object_rewrite(atrest_store *st, const char *name,
	const atrest__object_facts_t *facts, uint64_t *bytes);

/* Whole small files of the store's own (.atrest/...); etag (may be NULL)
 * receives the version read. */
int atrest__store_read_file(atrest_backend *b, const char *key, char **out, size_t *len,
	size_t max, char *etag);
int atrest__store_write_file(atrest_backend *b, const char *key, const void *buf,
	size_t len, unsigned int flags, const char *etag);

/*
 * A handle on tenant name's keyring and objects that shares st's backend
 * and master keys (closed with atrest_store_close, which leaves them).
 */
int atrest__store_tenant(atrest_store **out, atrest_store *st, const char *name);

/* Rewrap the store's keyring and every tenant keyring wrapped by the
 * store's master key under to (tenant.c). */
int atrest__store_rewrap_all(atrest_store *st, atrest_keyprov *to);

/* The keyring at location (a tenant's, or the store's for NULL), read
 * and parsed but NOT authenticated (no master key). */
int atrest__keyring_peek(atrest__keyring **out, const char *location, const char *tenant);

/* Rewrap this handle's keyring alone under to. */
int atrest__store_rewrap_one(atrest_store *st, atrest_keyprov *to);

#endif
