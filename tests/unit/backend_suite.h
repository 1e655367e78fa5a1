/*
 * The contract test suite of store backends (include/atrest/sys/backend.h):
 * run it with a factory for the backend under test (fs and memory here;
 * S3 against a real service under tests/service).
 */
#ifndef ATREST_TEST_BACKEND_SUITE_H
#define ATREST_TEST_BACKEND_SUITE_H

#include "atrest/sys/backend.h"

typedef struct backend_factory {
	const char *name;
	/* Make a new, empty location (prepared); 0 or -1. */
	int (*create)(void *ctx);
	/* Another handle on the current location (as another process would
	 * open it), prepared. */
	atrest_backend *(*open)(void *ctx);
	/* Remove the current location. */
	void (*destroy)(void *ctx);
	void *ctx;
} backend_factory;

/* Run every contract test against f; the number of failures. */
int backend_suite_run(const backend_factory *f);

/* A put in two writes (the writer must append), with a condition. */
int bs_put(atrest_backend *b, const char *key, const void *buf, size_t len,
	unsigned int flags, const char *etag);
/* The whole object, NUL-terminated, and its etag (may be NULL); NULL with
 * *rc set. */
char *bs_get(atrest_backend *b, const char *key, size_t *len, int *rc, char *etag);

/*
 * Listings of objects that each hold their own key as content: bs_collect
 * records the keys (checking each size), returning 7 after stop_after.
 */
struct bs_seen {
	char keys[64][64];
	int n;
	int stop_after;
};
int bs_collect(const char *key, uint64_t size, int64_t mtime, void *payload);
/* The listing of prefix is exactly want[0..n). */
void bs_expect_list(
	atrest_backend *b, const char *prefix, const char *const *want, int n);

#endif
