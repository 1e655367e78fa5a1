/*
 * The checked wrappers through which the core calls a store backend
 * (backend.c), and the registry of location schemes.  Nothing in the core
 * calls a backend method directly.
 */
#ifndef ATREST_BACKEND_INT_H
#define ATREST_BACKEND_INT_H

#include "atrest/sys/backend.h"

/* A backend for a location ("file:///dir", "s3://...", a plain path);
 * flags are the store's ATREST_STORE_* flags. */
int atrest__backend_from_location(
	atrest_backend **out, const char *location, unsigned int flags);

/* The local directory of a location (a plain path or file:// URI) in *dir
 * (malloc'd), or NULL for a location elsewhere (s3://...). */
int atrest__location_dir(char **dir, const char *location);

/* Version and required methods: once, before any call. */
int atrest__backend_check(atrest_backend *b);

int atrest__b_prepare(atrest_backend *b, int create);
int atrest__b_open_write(atrest_backend *b, atrest_backend_writer **out, const char *key,
	unsigned int flags, const char *etag);
int atrest__b_open_read(atrest_backend *b, atrest_backend_reader **out, const char *key);
int atrest__b_list(
	atrest_backend *b, const char *prefix, atrest_backend_list_cb cb, void *payload);
int atrest__b_remove(atrest_backend *b, const char *key);
/* Remove n keys (missing ones are no error): the backend's batch removal,
 * or one remove each. */
int atrest__b_remove_many(atrest_backend *b, const char *const *keys, size_t n);
/* What dead writers left (backend.h cleanup); 0 with *count 0 when the
 * backend has nothing of the kind. */
int atrest__b_cleanup(atrest_backend *b, uint64_t older_than, uint64_t *count);
void atrest__b_free(atrest_backend *b);

int atrest__bw_write(atrest_backend_writer *w, const void *buf, size_t len);
/* Durable but not yet visible; 0 at once when the backend cannot. */
int atrest__bw_sync(atrest_backend_writer *w);
int atrest__bw_commit(atrest_backend_writer *w);
void atrest__bw_abort(atrest_backend_writer *w);

/* *got <= len is checked: a backend that returns more fails. */
int atrest__br_pread(
	atrest_backend_reader *r, void *buf, size_t len, uint64_t off, size_t *got);
void atrest__br_close(atrest_backend_reader *r);

#endif
