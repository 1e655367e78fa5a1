/*
 * Checking a master key against a store without touching its objects:
 * is the key reachable, is it the one the keyring is wrapped with, and
 * what one wrap and one unwrap by its provider cost.
 */
#ifndef ATREST_KEYCHECK_H
#define ATREST_KEYCHECK_H

#include "export.h"

#include <stdint.h>

#include "keys.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atrest_key_check {
	char store_kind[32];    /* the provider kind the keyring records */
	char store_key_id[128]; /* and the master key id it records */
	char kind[32];          /* the given provider's kind */
	char key_id[128];       /* and its key id ("" when it failed early) */
	int matches;            /* 1: the given key opens the keyring */
	double open_ms;         /* preparing the key and opening the keyring */
	/* With runs > 0: latency of one wrap and one unwrap, in ms. */
	uint32_t runs;
	double wrap_median_ms, wrap_p99_ms;
	double unwrap_median_ms, unwrap_p99_ms;
} atrest_key_check;

/*
 * Read the keyring of the local store at path and open it with key (not
 * taken over; it may be used by other threads at the same time).  Returns
 * 0 when key is the store's master key; ATREST_EKEY when it is another
 * key (out says which keys), ATREST_EUNAVAILABLE when its provider cannot
 * be reached, ATREST_ENOTFOUND when there is no store.  With runs > 0 it
 * then wraps and unwraps a random key runs times and reports the latency.
 */
ATREST_EXTERN int atrest_key_check_run(
	atrest_key_check *out, const char *path, atrest_keyprov *key, uint32_t runs);

/* atrest_key_check_run on the keyring of tenant (NULL: the store's own). */
ATREST_EXTERN int atrest_key_check_tenant(atrest_key_check *out, const char *path,
	const char *tenant, atrest_keyprov *key, uint32_t runs);

#ifdef __cplusplus
}
#endif
#endif
