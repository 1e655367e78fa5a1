/*
 * The atrest object format (docs/FORMAT.md): header coding, per-object key
 * derivation and commitment, segment layout and nonces, metadata coding.
 * Pure functions over buffers; no I/O and no keyring.
 */
#ifndef ATREST_FORMAT_H
#define ATREST_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "atrest/store.h"
#include "crypto.h"

#define ATREST__MAGIC \
	"\x89"        \
	"ATREST"
#define ATREST__MAGIC_LEN 7
#define ATREST__VERSION 1
#define ATREST__FORM_OBJECT 1
#define ATREST__FORM_FILE 2
#define ATREST__FORM_MULTIPART 3 /* a store object holding a part list */
#define ATREST__SALT_LEN 32
#define ATREST__COMMIT_LEN 32
#define ATREST__STORE_ID_LEN 16
#define ATREST__PREFIX_LEN 7
#define ATREST__HDR_FIXED 58 /* bytes before the context */
#define ATREST__EXT_MAX 2048
#define ATREST__CTX_MAX \
	(ATREST__STORE_ID_LEN + 1 + ATREST_TENANT_MAX + 2 + ATREST_NAME_MAX)
#define ATREST__HDR_MAX \
	(ATREST__HDR_FIXED + ATREST__CTX_MAX + 2 + ATREST__EXT_MAX + ATREST__COMMIT_LEN)
/* Any header fits in the first read of this many bytes. */
#define ATREST__HDR_READ 4096
#define ATREST__META_NONCE_INDEX 0xFFFFFFFFu
#define ATREST__MAX_SEGMENTS 0xFFFFFFFFull /* indexes 0 .. 2^32-2 */

typedef struct atrest__hdr {
	uint8_t version;
	uint8_t form;
	uint8_t cipher;
	uint32_t segment_size;
	uint32_t dek_id;
	uint32_t meta_len; /* sealed metadata bytes after the header */
	uint8_t salt[ATREST__SALT_LEN];
	uint8_t store_id[ATREST__STORE_ID_LEN];
	char tenant[ATREST_TENANT_MAX + 1];
	char name[ATREST_NAME_MAX + 1];
	uint8_t ext[ATREST__EXT_MAX]; /* form 2: the wrapped data key etc. */
	uint16_t ext_len;
	uint8_t commit[ATREST__COMMIT_LEN];
	uint32_t len; /* encoded bytes, commitment included */
} atrest__hdr;

/* Is buf (len bytes) the start of an atrest object (by its magic)? */
int atrest__is_object(const uint8_t *buf, size_t len);

/*
 * Encode h into buf (cap >= ATREST__HDR_MAX) leaving the commitment zero;
 * sets h->len.  ATREST_EINVAL when a field is out of range.
 */
int atrest__hdr_encode(uint8_t *buf, size_t cap, atrest__hdr *h);

/*
 * Parse a header from the first len bytes of an object.  ATREST_EINTEGRITY
 * for anything malformed (bad magic, version, ranges, lengths past len).
 */
int atrest__hdr_parse(atrest__hdr *h, const uint8_t *buf, size_t len);

/* The keyed state of one object, shared by sealing and opening. */
typedef struct atrest__obj {
	atrest__hdr hdr;
	atrest__aead *aead;
	uint8_t prefix[ATREST__PREFIX_LEN];
	uint64_t data_off; /* header + metadata */
	size_t seg_ct;     /* ciphertext bytes of a full segment */
	/* Layout, filled by atrest__obj_layout when opening: */
	uint64_t nseg;
	size_t last_ct;
	/* The cipher key, kept to key more contexts (wiped by cleanup). */
	uint8_t key[ATREST_CIPHER_KEY_MAX];
} atrest__obj;

/*
 * Derive the object's keys from the data key and the encoded header
 * (hdr_bytes, h->len bytes, commitment area included but ignored): one
 * HKDF-SHA256 gives the cipher key, the nonce prefix and the commitment.
 * With check != 0 the commitment must match h->commit (else
 * ATREST_EINTEGRITY); with check == 0 it is written into h->commit and into
 * hdr_bytes.
 */
int atrest__obj_init(atrest__obj *o, const atrest__hdr *h, uint8_t *hdr_bytes,
	const uint8_t *dek, size_t dek_len, int check);
void atrest__obj_cleanup(atrest__obj *o);

/*
 * A copy of o with its own cipher contexts, for another thread to seal or
 * open segments of the same object; free it with atrest__obj_cleanup.
 */
int atrest__obj_clone(atrest__obj *out, const atrest__obj *o);
/*
 * The copy of slots[0] that thread slot works with, cloned into slots[slot]
 * on first use (the caller frees slots 1.. with atrest__obj_cleanup and
 * free).  One thread per slot, as the worker pool guarantees.
 */
int atrest__obj_for_slot(atrest__obj **out, atrest__obj **slots, unsigned slot);

/* Segment layout of an object of stored_size bytes; ATREST_EINTEGRITY
 * when the size cannot be that of an intact object. */
int atrest__layout(uint64_t *nseg, size_t *last_ct, int cipher, uint32_t segment_size,
	uint64_t data_off, uint64_t stored_size);
int atrest__obj_layout(atrest__obj *o, uint64_t stored_size);

/* Offset and ciphertext length of segment i (i < o->nseg). */
uint64_t atrest__seg_off(const atrest__obj *o, uint64_t i);
size_t atrest__seg_ctlen(const atrest__obj *o, uint64_t i);

void atrest__nonce(uint8_t out[ATREST_NONCE_LEN], const uint8_t *prefix, uint32_t index,
	uint8_t flag);

/*
 * Seal / open segment i; last marks the final segment.  Opening a segment
 * that is not last fails (ATREST_EINTEGRITY) unless it holds exactly the
 * segment size.
 */
int atrest__seg_seal(atrest__obj *o, uint8_t *out, uint64_t i, int last,
	const uint8_t *pt, size_t pt_len);
ATREST__WUR int atrest__seg_open(atrest__obj *o, uint8_t *out, size_t *pt_len, uint64_t i,
	int last, const uint8_t *ct, size_t ct_len);

/*
 * Metadata: u16 count, then per entry u16 key length, key, u32 value
 * length, value.  encode allocates *out; decode allocates one block holding
 * the entry array and strings (free with free()).
 */
int atrest__meta_encode(uint8_t **out, size_t *out_len, const atrest_meta *m);
int atrest__meta_decode(
	atrest_meta_entry **out, size_t *count, const uint8_t *buf, size_t len);
/*
 * Check decrypted metadata against every rule of FORMAT.md 2.4 (count
 * matching the entries, no trailing bytes, non-empty keys, no NUL);
 * ATREST_EINTEGRITY otherwise.  Every reader calls it, decoding or not.
 */
int atrest__meta_check(const uint8_t *buf, size_t len);
/* Seal / open the metadata block (nonce index 0xFFFFFFFF, flag 2). */
int atrest__meta_seal(atrest__obj *o, uint8_t *out, const uint8_t *pt, size_t pt_len);
ATREST__WUR int atrest__meta_open(
	atrest__obj *o, uint8_t *out, size_t *pt_len, const uint8_t *ct, size_t ct_len);

/*
 * Plaintext size of a laid-out object.  For CBC-HMAC the last segment's
 * pad-count byte (read by the caller at atrest__pad_byte_off) is needed;
 * other ciphers ignore it.
 */
int atrest__plain_size(uint64_t *size, int cipher, uint32_t segment_size, uint64_t nseg,
	size_t last_ct, int pad_byte);
uint64_t atrest__pad_byte_off(
	uint64_t data_off, size_t seg_ct, uint64_t nseg, size_t last_ct);

/*
 * A whole object sealed or opened in memory (test vectors, fuzzing).  seal
 * takes h with form, cipher, segment size, data key id, salt and context
 * set; it fills meta_len and the commitment.  open checks the commitment,
 * the layout and every segment; it does not compare the context.
 */
int atrest__obj_seal_buf(uint8_t **out, size_t *out_len, atrest__hdr *h,
	const uint8_t *dek, const uint8_t *meta, size_t meta_len, const uint8_t *pt,
	size_t pt_len);
ATREST__WUR int atrest__obj_open_buf(uint8_t **out, size_t *out_len, atrest__hdr *h,
	const uint8_t *obj, size_t obj_len, const uint8_t *dek);

#endif
