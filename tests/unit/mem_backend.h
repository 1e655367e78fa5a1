/*
 * An in-memory store backend for core tests: it keeps its objects in a
 * shared location (several handles may open one, as processes share a
 * directory), counts every call, and can fail or lie on demand.
 */
#ifndef ATREST_TEST_MEM_BACKEND_H
#define ATREST_TEST_MEM_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "atrest/sys/backend.h"

enum {
	MEM_PREPARE,
	MEM_OPEN_WRITE,
	MEM_WRITE,
	MEM_SYNC,
	MEM_COMMIT,
	MEM_ABORT,
	MEM_OPEN_READ,
	MEM_PREAD,
	MEM_CLOSE,
	MEM_LIST,
	MEM_REMOVE,
	MEM_CALLS
};

/* How pread lies (mem_location.lie). */
enum {
	MEM_HONEST,
	MEM_LIE_LONG,  /* *got = len + 16: more than asked */
	MEM_LIE_SHORT, /* *got = len / 2 in the middle of an object */
};

typedef struct mem_location mem_location;

/* A new, empty location (exists: prepare(0) succeeds on it). */
mem_location *mem_location_new(void);
/* Free it once every backend handle on it is freed. */
void mem_location_free(mem_location *loc);
/* A backend handle on loc (the store takes it over). */
atrest_backend *mem_backend(mem_location *loc);

/* Calls of method m (MEM_*) on every handle since the location was made. */
unsigned long mem_calls(mem_location *loc, int m);
void mem_calls_reset(mem_location *loc);

/* Make pread lie (MEM_LIE_*), or be honest again (MEM_HONEST). */
void mem_lie(mem_location *loc, int how);
/*
 * Fail the next calls of method m after `after` more succeed: with code,
 * and without setting an error when silent.  count 0 disarms.
 */
void mem_fail(mem_location *loc, int m, int after, int count, int code, int silent);

/* Replace the bytes of key directly (an attacker, or another writer). */
int mem_poke(mem_location *loc, const char *key, const void *buf, size_t len);
/* The bytes of key (malloc'd) or NULL. */
uint8_t *mem_peek(mem_location *loc, const char *key, size_t *len);
/* Keys held, .atrest/ ones included. */
size_t mem_count(mem_location *loc);

#endif
