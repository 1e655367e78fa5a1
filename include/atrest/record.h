/*
 * Compact per-record encryption for small values (64 B - 1 KiB), with a
 * fixed overhead of ATREST_RECORD_OVERHEAD bytes.  A recorder belongs to one
 * thread; make one per thread.
 */
#ifndef ATREST_RECORD_H
#define ATREST_RECORD_H

#include "export.h"

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ATREST_RECORD_OVERHEAD 32

typedef struct atrest_recorder atrest_recorder;

/*
 * A recorder for the records of one namespace (a table, a topic) of st,
 * sealing with the store's active data key.  ns is bound into every record.
 */
ATREST_EXTERN int atrest_recorder_open(
	atrest_recorder **out, atrest_store *st, const char *ns);

/*
 * Seal pt into out (cap >= len + ATREST_RECORD_OVERHEAD).  ad (may be NULL)
 * is authenticated, not stored: pass the record's key, say.
 */
ATREST_EXTERN int atrest_record_seal(atrest_recorder *r, void *out, size_t cap,
	size_t *out_len, const void *pt, size_t len, const void *ad, size_t ad_len);

/* Open a sealed record; on failure out is wiped. */
ATREST_EXTERN ATREST_WARN_UNUSED int atrest_record_open(atrest_recorder *r, void *out,
	size_t cap, size_t *out_len, const void *rec, size_t len, const void *ad,
	size_t ad_len);

ATREST_EXTERN void atrest_recorder_close(atrest_recorder *r);

#ifdef __cplusplus
}
#endif
#endif
