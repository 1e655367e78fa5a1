/*
 * Compact records (docs/FORMAT.md, "Records"): 1 byte form and cipher,
 * 3 bytes data key id, 12 bytes nonce, ciphertext, 16 bytes tag.  Keys are
 * derived once per (data key, cipher, namespace); the cipher context is
 * reused, so a record costs one AEAD call and no allocation.  Version 2
 * records bind the cipher into the key; version 1 records (no cipher in
 * the key) are still opened, never written.
 */
#include <stdlib.h>
#include <string.h>

#include "atrest/record.h"
#include "crypto.h"
#include "secret.h"
#include "store_int.h"

#define REC_FORM_V1 0xB0 /* read only: one key for both ciphers */
#define REC_FORM 0xC0    /* version 2: the cipher id is in the derivation */
#define REC_HDR 16
#define REC_NS_MAX 255
#define REC_AD_MAX 4096
#define REC_PER_NONCE_RUN (1ull << 32)
#define REC_CACHE 8

typedef struct rec_key {
	uint32_t id;
	int cipher;
	int form; /* REC_FORM or REC_FORM_V1 */
	atrest__aead *aead;
} rec_key;

struct atrest_recorder {
	atrest_store *st;
	char ns[REC_NS_MAX + 1];
	rec_key keys[REC_CACHE]; /* most recently used data keys */
	uint8_t nonce[ATREST_NONCE_LEN];
	uint64_t sealed; /* records sealed in the current nonce run */
	uint8_t *aad;    /* REC_HDR + REC_AD_MAX bytes */
};

/* Records use an AEAD; a CBC-HMAC store seals its records with AES-GCM. */
static int record_cipher(int store_cipher)
{
	return store_cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256
		? ATREST_CIPHER_AES_256_GCM
		: store_cipher;
}

/*
 * info = "atrest/v2 record" || BYTE(cipher) || namespace, so that one data
 * key never keys two ciphers; version 1: "atrest/v1 record" || namespace.
 */
static size_t record_info(uint8_t *info, int form, int cipher, const char *ns)
{
	const char *label = form == REC_FORM ? "atrest/v2 record" : "atrest/v1 record";
	size_t n = strlen(label), nl = strlen(ns);

	memcpy(info, label, n);
	if (form == REC_FORM)
		info[n++] = (uint8_t)cipher;
	memcpy(info + n, ns, nl);
	return n + nl;
}

static int derive_key(rec_key *k, atrest_recorder *r, uint32_t id, int cipher, int form,
	const uint8_t *dek)
{
	uint8_t info[16 + 1 + REC_NS_MAX], key[32];
	size_t il = record_info(info, form, cipher, r->ns);
	int rc;

	rc = atrest__hkdf(key, sizeof(key), r->st->store_id, 16, dek, 32, info, il);
	if (rc == 0)
		rc = atrest__aead_new(&k->aead, cipher, key, sizeof(key));
	atrest__wipe(key, sizeof(key));
	k->id = id;
	k->cipher = cipher;
	k->form = form;
	return rc;
}

/* A data key for the recorder: its one event per key (obs.h). */
static int recorder_dek(atrest_recorder *r, uint32_t id, uint8_t *dek)
{
	atrest__op op;

	atrest__op_begin(&op, r->st, ATREST_OP_RECORDS, r->ns);
	return atrest__op_end(&op, atrest__store_dek(r->st, id, dek));
}

/* The keyed context for data key id, from the small cache. */
static int key_for(rec_key **out, atrest_recorder *r, uint32_t id, int cipher, int form)
{
	uint8_t dek[32];
	rec_key *k;
	int rc;

	for (int i = 0; i < REC_CACHE; i++)
		if (r->keys[i].aead && r->keys[i].id == id &&
			r->keys[i].cipher == cipher && r->keys[i].form == form) {
			*out = &r->keys[i];
			return 0;
		}
	GUARD(recorder_dek(r, id, dek));
	k = &r->keys[REC_CACHE - 1];
	atrest__aead_free(k->aead);
	memmove(&r->keys[1], &r->keys[0], (REC_CACHE - 1) * sizeof(*k));
	k = &r->keys[0];
	memset(k, 0, sizeof(*k));
	rc = derive_key(k, r, id, cipher, form, dek);
	atrest__wipe(dek, sizeof(dek));
	GUARD(rc);
	*out = k;
	return 0;
}

static int new_nonce_run(atrest_recorder *r)
{
	r->sealed = 0;
	return atrest__rand(r->nonce, sizeof(r->nonce));
}

int atrest_recorder_open(atrest_recorder **out, atrest_store *st, const char *ns)
{
	atrest_recorder *r;

	*out = NULL;
	ENSURE(ns && strlen(ns) <= REC_NS_MAX, ATREST_EINVAL,
		"record namespace missing or longer than %d bytes", REC_NS_MAX);
	r = calloc(1, sizeof(*r));
	ENSURE(r, ATREST_ERROR, "out of memory");
	r->aad = malloc(REC_HDR + REC_AD_MAX);
	if (!r->aad || new_nonce_run(r) < 0) {
		free(r->aad);
		free(r);
		return atrest__error(ATREST_ERROR, "cannot set up recorder");
	}
	r->st = st;
	strcpy(r->ns, ns);
	*out = r;
	return 0;
}

void atrest_recorder_close(atrest_recorder *r)
{
	if (!r)
		return;
	for (int i = 0; i < REC_CACHE; i++)
		atrest__aead_free(r->keys[i].aead);
	free(r->aad);
	atrest__wipe(r, sizeof(*r));
	free(r);
}

/* Big-endian increment of the 96-bit nonce: a run of distinct nonces. */
static void nonce_next(uint8_t *n)
{
	for (int i = ATREST_NONCE_LEN - 1; i >= 0; i--)
		if (++n[i] != 0)
			break;
}

static size_t build_aad(
	atrest_recorder *r, const uint8_t *hdr, const void *ad, size_t ad_len)
{
	memcpy(r->aad, hdr, REC_HDR);
	if (ad_len)
		memcpy(r->aad + REC_HDR, ad, ad_len);
	return REC_HDR + ad_len;
}

int atrest_record_seal(atrest_recorder *r, void *out, size_t cap, size_t *out_len,
	const void *pt, size_t len, const void *ad, size_t ad_len)
{
	uint8_t *o = out;
	uint32_t id;
	rec_key *k;
	int cipher;

	ENSURE(len <= SIZE_MAX - ATREST_RECORD_OVERHEAD &&
			cap >= len + ATREST_RECORD_OVERHEAD,
		ATREST_EINVAL, "record buffer too small");
	ENSURE(ad_len <= REC_AD_MAX, ATREST_EINVAL, "record AD over %d bytes",
		REC_AD_MAX);
	GUARD(atrest__store_record_key(r->st, &id, &cipher));
	cipher = record_cipher(cipher);
	GUARD(key_for(&k, r, id, cipher, REC_FORM));
	if (r->sealed >= REC_PER_NONCE_RUN)
		GUARD(new_nonce_run(r));
	o[0] = (uint8_t)(REC_FORM | cipher);
	o[1] = (uint8_t)id;
	o[2] = (uint8_t)(id >> 8);
	o[3] = (uint8_t)(id >> 16);
	memcpy(o + 4, r->nonce, ATREST_NONCE_LEN);
	nonce_next(r->nonce);
	r->sealed++;
	GUARD(atrest__aead_seal(k->aead, o + REC_HDR, o + 4, r->aad,
		build_aad(r, o, ad, ad_len), pt, len));
	*out_len = len + ATREST_RECORD_OVERHEAD;
	return 0;
}

int atrest_record_open(atrest_recorder *r, void *out, size_t cap, size_t *out_len,
	const void *rec, size_t len, const void *ad, size_t ad_len)
{
	const uint8_t *p = rec;
	uint32_t id;
	rec_key *k;
	int cipher, form;

	*out_len = 0;
	ENSURE(len >= ATREST_RECORD_OVERHEAD, ATREST_EINTEGRITY, "record truncated");
	ENSURE(cap >= len - REC_HDR, ATREST_EINVAL, "record output buffer too small");
	ENSURE(ad_len <= REC_AD_MAX, ATREST_EINVAL, "record AD over %d bytes",
		REC_AD_MAX);
	cipher = p[0] & 0x0F;
	form = p[0] & 0xF0;
	ENSURE((form == REC_FORM || form == REC_FORM_V1) &&
			(cipher == ATREST_CIPHER_AES_256_GCM ||
				cipher == ATREST_CIPHER_CHACHA20_POLY1305),
		ATREST_EINTEGRITY, "not an atrest record");
	id = (uint32_t)p[1] | (uint32_t)p[2] << 8 | (uint32_t)p[3] << 16;
	GUARD(key_for(&k, r, id, cipher, form));
	if (atrest__aead_open(k->aead, out, out_len, p + 4, r->aad,
		    build_aad(r, p, ad, ad_len), p + REC_HDR, len - REC_HDR) < 0)
		return atrest__error(ATREST_EINTEGRITY,
			"record failed authentication (modified, or another key or AD)");
	return 0;
}
