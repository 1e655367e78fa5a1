/*
 * The store handle's internals, shared by store.c (open, settings, keyring
 * persistence), object.c (writer, reader) and record.c.
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

struct atrest_store {
	atrest_backend *b;
	atrest_keyprov *kp;
	atrest_keyprov *old_kp;
	atrest_keyprov *cur_kp; /* the one that unlocked the keyring */
	atrest__keyring *kr;
	pthread_mutex_t mu;        /* guards kr, cur_kp and settings */
	pthread_mutex_t update_mu; /* one reload or keyring update at a time */
	atrest__key_cache cache;
	int64_t last_refresh;
	int64_t last_maintain;
	int foreign_master; /* keyring rewrapped to a key we lack */
	atrest_settings settings;
	char tenant[ATREST_TENANT_MAX + 1];
	int allow_plaintext;
	char *location;          /* for messages */
	unsigned threads;        /* resolved option: 1 means no pool */
	atrest__pool *pool;      /* started on first need (atomic pointer) */
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
 * most once a second). */
int atrest__store_refresh(atrest_store *st, int force);

/*
 * Change the keyring under the store lock: re-read it, apply op to the
 * fresh copy, bump its generation and write it atomically.
 */
typedef int (*atrest__keyring_op)(atrest_store *st, atrest__keyring *kr, void *arg);
int atrest__store_update(atrest_store *st, atrest__keyring_op op, void *arg);

/* Apply the rotation policy (throttled to once a minute). */
int atrest__store_policy(atrest_store *st);

/* What an object's header says, read without a key (not authenticated). */
typedef struct atrest__object_facts_t {
	int plaintext;
	uint32_t dek_id;
	uint8_t salt[32];
	uint64_t size; /* plaintext bytes */
	uint64_t stored_size;
	int64_t mtime;
} atrest__object_facts_t;

int atrest__object_facts(atrest__object_facts_t *out, atrest_store *st, const char *name);

/*
 * Rewrite an object under the active data key, keeping its metadata; a
 * plaintext file (facts->plaintext) is encrypted.  Fails with
 * ATREST_EEXISTS, leaving the object alone, when it was replaced meanwhile.
 */
int atrest__object_rewrite(atrest_store *st, const char *name,
	const atrest__object_facts_t *facts, uint64_t *bytes);

/* Whole small files of the store's own (.atrest/...). */
int atrest__store_read_file(
	atrest_backend *b, const char *key, char **out, size_t *len, size_t max);
int atrest__store_write_file(atrest_backend *b, const char *key, const void *buf,
	size_t len, unsigned int flags);

#endif
