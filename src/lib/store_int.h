/*
 * The store handle's internals, shared by store.c (open, settings, keyring
 * persistence), object.c (writer, reader) and record.c.
 */
#ifndef ATREST_STORE_INT_H
#define ATREST_STORE_INT_H

#include <pthread.h>

#include "atrest/store.h"
#include "atrest/sys/backend.h"
#include "atrest/sys/keyprov.h"
#include "keyring.h"

struct atrest_store {
	atrest_backend *b;
	atrest_keyprov *kp;
	atrest_keyprov *old_kp;
	atrest__keyring *kr;
	pthread_mutex_t mu; /* guards kr and settings */
	atrest_settings settings;
	char tenant[ATREST_TENANT_MAX + 1];
	int allow_plaintext;
	char *location; /* for messages */
};

/*
 * The active data key id and its key, for a new object.  The key bytes stay
 * valid until the store is closed.
 */
int atrest__store_active_dek(atrest_store *st, uint32_t *id, const uint8_t **key,
	int *cipher, uint32_t *segment_size);
/* The key of data key id, for reading. */
int atrest__store_dek(atrest_store *st, uint32_t id, const uint8_t **key);

/* Whole small files of the store's own (.atrest/...). */
int atrest__store_read_file(atrest_backend *b, const char *key, char **out,
	size_t *len, size_t max);
int atrest__store_write_file(atrest_backend *b, const char *key,
	const void *buf, size_t len, unsigned int flags);

#endif
