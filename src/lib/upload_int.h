/*
 * Multipart uploads' internals (docs/FORMAT.md, "Multipart objects"): the
 * upload record and the part list a completed object holds, their coding
 * (upload_fmt.c, pure), and what object.c calls in upload.c.
 */
#ifndef ATREST_UPLOAD_INT_H
#define ATREST_UPLOAD_INT_H

#include <stddef.h>
#include <stdint.h>

#include "atrest/store.h"
#include "atrest/upload.h"

#define ATREST__UPLOAD_DIR ".atrest/uploads/"
#define ATREST__UPLOAD_ID_MAX 64
#define ATREST__MPU_PART_LEN 56 /* bytes of one entry of the part list */

/* An upload's state, kept in its record. */
enum {
	ATREST__UP_OPEN = 1,
	ATREST__UP_COMPLETING = 2,
	ATREST__UP_COMPLETED = 3,
	ATREST__UP_ABORTING = 4
};

typedef struct atrest__up_rec {
	uint8_t state;
	int64_t initiated;
	char name[ATREST_NAME_MAX + 1];
} atrest__up_rec;

/* The record's plaintext: "AUPR", version 1, state, le64 initiated, le16
 * name length, name.  encode needs 16 + ATREST_NAME_MAX bytes. */
#define ATREST__UP_REC_MAX (16 + ATREST_NAME_MAX)
int atrest__up_rec_encode(uint8_t *out, size_t cap, size_t *len, const atrest__up_rec *r);
int atrest__up_rec_parse(atrest__up_rec *out, const uint8_t *buf, size_t len);

typedef struct atrest__mpu_part {
	uint32_t number;
	uint64_t size;   /* plaintext bytes */
	uint64_t stored; /* bytes in the backend */
	uint32_t dek;    /* data key id of its header */
	uint8_t commit[32];
	uint64_t start; /* plaintext offset in the object (not coded) */
} atrest__mpu_part;

/* The part list of a completed object. */
typedef struct atrest__mpu {
	char id[ATREST__UPLOAD_ID_MAX + 1];
	uint32_t count;
	atrest__mpu_part *parts;
	uint64_t size;   /* sum of the parts' plaintext */
	uint64_t stored; /* sum of the parts' stored bytes */
} atrest__mpu;

/* "AMPU", version 1, id length, id, le32 count, count entries of le32
 * number, le64 size, le64 stored size, le32 data key id, commitment. */
int atrest__mpu_encode(uint8_t **out, size_t *len, const atrest__mpu *m);
/* ATREST_EINTEGRITY for anything malformed; free with atrest__mpu_free. */
int atrest__mpu_parse(atrest__mpu *out, const uint8_t *buf, size_t len);
void atrest__mpu_free(atrest__mpu *m);

/* An upload id: 1..64 of [A-Za-z0-9_-]. */
int atrest__upload_id_check(const char *id);
/* The internal name of part number of upload id of object name. */
#define ATREST__PART_NAME_MAX (sizeof(ATREST__UPLOAD_DIR) + ATREST__UPLOAD_ID_MAX + 40)
int atrest__upload_part_name(
	char *out, size_t cap, const char *id, uint32_t number, const char *name);

/*
 * The parts of a multipart object go once the object no longer names
 * them (delete, overwrite, rewrite): remove upload id's parts and record.
 * Best effort: failures leave orphans that atrest_upload_cleanup removes,
 * and the caller's last error is kept.
 */
void atrest__upload_release(struct atrest_store *st, const char *id);
/* The part list of multipart object name (authenticated): 0, or 1 when
 * it is an ordinary object; free with atrest__mpu_free. */
int atrest__multipart_load(atrest__mpu *out, struct atrest_store *st, const char *name);
/*
 * Sweep this handle's upload area: what an abort, a delete or a crash left
 * (parts without a record, of an object deleted or replaced, not listed
 * by a completion), and with abort_open uploads in progress started more
 * than age seconds ago.  atrest_store_cleanup (and so snapshot gc) sweeps
 * without abort_open: only atrest_upload_cleanup ends live uploads.
 */
int atrest__upload_sweep(
	struct atrest_store *st, int64_t age, int abort_open, uint64_t *count);
/* Call fn for every object of the upload area (per-key usage scans). */
int atrest__upload_each_object(struct atrest_store *st,
	int (*fn)(const char *name, void *payload), void *payload);

#endif
