/*
 * The crypto layer over OpenSSL 3 (contract in crypto.h): algorithms are
 * fetched once per process, cipher contexts are keyed once and then only
 * re-nonced, so sealing a segment or a small record allocates nothing.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include "atrest/errors.h"
#include "atrest/store.h"
#include "crypto.h"
#include "secret.h"

#define CBC_BLOCK 16
#define CBC_KEY 32
/* Bytes after the CBC body: the pad-count byte and the full HMAC tag. */
#define CBC_TRAILER (1 + ATREST_HMAC_TAG_LEN)
/* EVP takes int lengths; longer inputs are fed in pieces of this size. */
#define EVP_CHUNK (1 << 30)

struct atrest__aead {
	int cipher;
	EVP_CIPHER_CTX *enc; /* keyed once; each call only sets the nonce */
	EVP_CIPHER_CTX *dec;
	EVP_CIPHER_CTX *ecb; /* CBC-HMAC: derives the IV from the nonce */
	EVP_MAC_CTX *mac;    /* CBC-HMAC: HMAC keyed once, re-initialised */
};

/* Process-wide state, written only inside pthread_once. */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_rc;
static char g_msg[512];
static int g_fips;
static EVP_CIPHER *g_gcm, *g_chacha, *g_cbc, *g_ecb;
static EVP_MAC *g_hmac;
static EVP_KDF *g_hkdf, *g_pbkdf2;
static EVP_MD *g_sha256;

static char g_digest_name[] = "SHA256";

/* Where OpenSSL looks for fips.so, for the error message. */
static const char *modules_dir(void)
{
	const char *d = getenv("OPENSSL_MODULES");

	return d && *d ? d : OpenSSL_version(OPENSSL_MODULES_DIR);
}

static int load_fips(void)
{
	if (OSSL_PROVIDER_load(NULL, "fips") == NULL)
		return atrest__error_ossl(ATREST_EUNAVAILABLE,
			"FIPS mode asked for (ATREST_FIPS=1) but OpenSSL's "
			"FIPS provider is not installed: no usable fips.so "
			"(%s); "
			"install and configure the OpenSSL FIPS module, or "
			"unset ATREST_FIPS",
			modules_dir());
	/* base supplies encoders and decoders next to the FIPS algorithms. */
	if (OSSL_PROVIDER_load(NULL, "base") == NULL)
		return atrest__error_ossl(ATREST_EUNAVAILABLE,
			"FIPS mode: cannot load OpenSSL's base provider");
	if (EVP_default_properties_enable_fips(NULL, 1) != 1)
		return atrest__error_ossl(
			ATREST_EUNAVAILABLE, "FIPS mode: cannot require fips=yes");
	return 0;
}

static int fetch_all(void)
{
	g_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	g_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
	g_ecb = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL);
	/* Not approved, so not even looked for in FIPS mode. */
	if (!g_fips)
		g_chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	g_hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	g_pbkdf2 = EVP_KDF_fetch(NULL, "PBKDF2", NULL);
	g_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
	if (!g_gcm || !g_cbc || !g_ecb || (!g_fips && !g_chacha) || !g_hmac || !g_hkdf ||
		!g_pbkdf2 || !g_sha256)
		return atrest__error_ossl(ATREST_EUNAVAILABLE,
			"OpenSSL lacks an algorithm atrest needs (AES-256-GCM, "
			"ChaCha20-Poly1305, AES-256-CBC, HMAC, HKDF, PBKDF2, "
			"SHA-256)");
	return 0;
}

static void init_once(void)
{
	const char *f = getenv("ATREST_FIPS");
	const atrest_error *e;

	g_fips = f != NULL && strcmp(f, "1") == 0;
	g_rc = g_fips ? load_fips() : 0;
	if (g_rc == 0)
		g_rc = fetch_all();
	/* Keep the message: later calls may come from other threads. */
	e = atrest_error_last();
	if (g_rc < 0 && e)
		snprintf(g_msg, sizeof(g_msg), "%s", e->message);
}

int atrest__crypto_init(void)
{
	if (pthread_once(&g_once, init_once) != 0)
		return atrest__error(ATREST_ERROR,
			"crypto setup: pthread_once "
			"failed");
	if (g_rc < 0)
		return atrest__error(g_rc, "%s", g_msg);
	return 0;
}

int atrest__fips_mode(void)
{
	return g_fips;
}

int atrest__cipher_allowed(int cipher)
{
	GUARD(atrest__crypto_init());
	ENSURE(atrest__cipher_keylen(cipher) != 0, ATREST_EINVAL, "unknown cipher %d",
		cipher);
	ENSURE(!(g_fips && cipher == ATREST_CIPHER_CHACHA20_POLY1305), ATREST_EINVAL,
		"chacha20-poly1305 is not FIPS-approved "
		"(ATREST_FIPS=1); use aes-256-gcm or aes-256-cbc-hmac-sha256");
	return 0;
}

size_t atrest__cipher_keylen(int cipher)
{
	switch (cipher) {
	case ATREST_CIPHER_AES_256_GCM:
	case ATREST_CIPHER_CHACHA20_POLY1305:
		return 32;
	case ATREST_CIPHER_AES_256_CBC_HMAC_SHA256:
		return 2 * CBC_KEY;
	default:
		return 0;
	}
}

size_t atrest__cipher_ctlen(int cipher, size_t ptlen)
{
	switch (cipher) {
	case ATREST_CIPHER_AES_256_GCM:
	case ATREST_CIPHER_CHACHA20_POLY1305:
		return ptlen + ATREST_AEAD_TAG_LEN;
	case ATREST_CIPHER_AES_256_CBC_HMAC_SHA256:
		return (ptlen + CBC_BLOCK - 1) / CBC_BLOCK * CBC_BLOCK + CBC_TRAILER;
	default:
		return 0;
	}
}

size_t atrest__cipher_overhead(int cipher)
{
	return atrest__cipher_ctlen(cipher, 0);
}

int atrest__cipher_ptlen(int cipher, const uint8_t *ct, size_t ct_len, size_t *pt_len)
{
	size_t body;

	switch (cipher) {
	case ATREST_CIPHER_AES_256_GCM:
	case ATREST_CIPHER_CHACHA20_POLY1305:
		ENSURE(ct_len >= ATREST_AEAD_TAG_LEN, ATREST_EINTEGRITY,
			"ciphertext of %zu bytes is shorter than its tag", ct_len);
		*pt_len = ct_len - ATREST_AEAD_TAG_LEN;
		return 0;
	case ATREST_CIPHER_AES_256_CBC_HMAC_SHA256:
		ENSURE(ct_len >= CBC_TRAILER && (ct_len - CBC_TRAILER) % CBC_BLOCK == 0,
			ATREST_EINTEGRITY,
			"%zu bytes cannot be an "
			"AES-CBC-HMAC ciphertext",
			ct_len);
		body = ct_len - CBC_TRAILER;
		ENSURE(ct[body] < CBC_BLOCK && ct[body] <= body, ATREST_EINTEGRITY,
			"AES-CBC-HMAC ciphertext has a bad "
			"pad count");
		*pt_len = body - ct[body];
		return 0;
	default:
		return atrest__error(ATREST_EINVAL, "unknown cipher %d", cipher);
	}
}

/* EVP_CipherUpdate over any length (EVP counts in int). */
static int cipher_update(EVP_CIPHER_CTX *c, uint8_t *out, const uint8_t *in, size_t len)
{
	int n;

	while (len > 0) {
		int piece = len > EVP_CHUNK ? EVP_CHUNK : (int)len;

		if (EVP_CipherUpdate(c, out, &n, in, piece) != 1)
			return -1;
		if (out)
			out += n;
		in += piece;
		len -= (size_t)piece;
	}
	return 0;
}

static int aead_keyed(EVP_CIPHER_CTX **out, EVP_CIPHER *c, const uint8_t *key, int enc)
{
	*out = EVP_CIPHER_CTX_new();
	if (*out == NULL)
		return atrest__error_ossl(ATREST_ERROR, "EVP_CIPHER_CTX_new");
	GUARD_OSSL(EVP_CipherInit_ex2(*out, c, key, NULL, enc, NULL), ATREST_ERROR,
		"cannot key %s", EVP_CIPHER_get0_name(c));
	return 0;
}

static int cbc_keyed(atrest__aead *a, const uint8_t *key)
{
	OSSL_PARAM p[2];

	GUARD(aead_keyed(&a->enc, g_cbc, key, 1));
	GUARD(aead_keyed(&a->dec, g_cbc, key, 0));
	GUARD(aead_keyed(&a->ecb, g_ecb, key, 1));
	/* Padding is ours (zeros plus a count byte), never PKCS#7. */
	EVP_CIPHER_CTX_set_padding(a->enc, 0);
	EVP_CIPHER_CTX_set_padding(a->dec, 0);
	EVP_CIPHER_CTX_set_padding(a->ecb, 0);
	a->mac = EVP_MAC_CTX_new(g_hmac);
	if (a->mac == NULL)
		return atrest__error_ossl(ATREST_ERROR, "EVP_MAC_CTX_new");
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, g_digest_name, 0);
	p[1] = OSSL_PARAM_construct_end();
	GUARD_OSSL(EVP_MAC_init(a->mac, key + CBC_KEY, CBC_KEY, p), ATREST_ERROR,
		"cannot key HMAC-SHA256");
	return 0;
}

int atrest__aead_new(atrest__aead **out, int cipher, const uint8_t *key, size_t key_len)
{
	atrest__aead *a;
	int rc;

	*out = NULL;
	GUARD(atrest__cipher_allowed(cipher));
	ENSURE(key_len == atrest__cipher_keylen(cipher), ATREST_EINVAL,
		"cipher %d takes a %zu-byte key, not %zu", cipher,
		atrest__cipher_keylen(cipher), key_len);
	a = calloc(1, sizeof(*a));
	ENSURE(a != NULL, ATREST_ERROR, "out of memory");
	a->cipher = cipher;
	if (cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256) {
		GUARD_OUT(cbc_keyed(a, key));
	} else {
		EVP_CIPHER *c = cipher == ATREST_CIPHER_AES_256_GCM ? g_gcm : g_chacha;
		GUARD_OUT(aead_keyed(&a->enc, c, key, 1));
		GUARD_OUT(aead_keyed(&a->dec, c, key, 0));
	}
	*out = a;
	return 0;
out:
	atrest__aead_free(a);
	return rc;
}

void atrest__aead_free(atrest__aead *a)
{
	if (a == NULL)
		return;
	/* The context frees cleanse their key schedules. */
	EVP_CIPHER_CTX_free(a->enc);
	EVP_CIPHER_CTX_free(a->dec);
	EVP_CIPHER_CTX_free(a->ecb);
	EVP_MAC_CTX_free(a->mac);
	free(a);
}

static int gcm_seal(atrest__aead *a, uint8_t *out, const uint8_t *nonce,
	const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len)
{
	EVP_CIPHER_CTX *c = a->enc;
	OSSL_PARAM p[2];
	int n;

	if (EVP_CipherInit_ex2(c, NULL, NULL, nonce, 1, NULL) != 1 ||
		cipher_update(c, NULL, aad, aad_len) < 0 ||
		cipher_update(c, out, pt, pt_len) < 0 ||
		EVP_CipherFinal_ex(c, out + pt_len, &n) != 1)
		return atrest__error_ossl(ATREST_ERROR, "AEAD seal failed");
	p[0] = OSSL_PARAM_construct_octet_string(
		OSSL_CIPHER_PARAM_AEAD_TAG, out + pt_len, ATREST_AEAD_TAG_LEN);
	p[1] = OSSL_PARAM_construct_end();
	GUARD_OSSL(EVP_CIPHER_CTX_get_params(c, p), ATREST_ERROR,
		"AEAD seal: cannot get the tag");
	return 0;
}

static int gcm_open(atrest__aead *a, uint8_t *out, size_t *pt_len, const uint8_t *nonce,
	const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len)
{
	EVP_CIPHER_CTX *c = a->dec;
	size_t len = ct_len - ATREST_AEAD_TAG_LEN;
	OSSL_PARAM p[2];
	int n;

	p[0] = OSSL_PARAM_construct_octet_string(
		OSSL_CIPHER_PARAM_AEAD_TAG, (void *)(ct + len), ATREST_AEAD_TAG_LEN);
	p[1] = OSSL_PARAM_construct_end();
	if (EVP_CipherInit_ex2(c, NULL, NULL, nonce, 0, NULL) != 1 ||
		EVP_CIPHER_CTX_set_params(c, p) != 1 ||
		cipher_update(c, NULL, aad, aad_len) < 0 ||
		cipher_update(c, out, ct, len) < 0 ||
		EVP_CipherFinal_ex(c, out + len, &n) != 1) {
		ERR_clear_error();
		return -1;
	}
	*pt_len = len;
	return 0;
}

/* IV = AES-ECB_K(nonce || 0^4): unpredictable, and unique per nonce. */
static int cbc_iv(atrest__aead *a, uint8_t iv[CBC_BLOCK], const uint8_t *nonce)
{
	uint8_t blk[CBC_BLOCK] = {0};
	int n;

	memcpy(blk, nonce, ATREST_NONCE_LEN);
	if (EVP_CipherUpdate(a->ecb, iv, &n, blk, CBC_BLOCK) != 1 || n != CBC_BLOCK)
		return -1;
	return 0;
}

/*
 * HMAC-SHA256(mac_key, nonce || body || padcount).  No additional data:
 * without a length prefix its boundary with the body would be ambiguous,
 * and the format never needs any (callers are refused in seal and open).
 */
static int cbc_tag(atrest__aead *a, uint8_t tag[ATREST_HMAC_TAG_LEN],
	const uint8_t *nonce, const uint8_t *body, size_t body_len)
{
	size_t n;

	/* A NULL key keeps the key and only restarts the MAC. */
	if (EVP_MAC_init(a->mac, NULL, 0, NULL) != 1 ||
		EVP_MAC_update(a->mac, nonce, ATREST_NONCE_LEN) != 1 ||
		EVP_MAC_update(a->mac, body, body_len + 1) != 1 ||
		EVP_MAC_final(a->mac, tag, &n, ATREST_HMAC_TAG_LEN) != 1 ||
		n != ATREST_HMAC_TAG_LEN)
		return -1;
	return 0;
}

static int cbc_seal(atrest__aead *a, uint8_t *out, const uint8_t *nonce, size_t aad_len,
	const uint8_t *pt, size_t pt_len)
{
	size_t full = pt_len / CBC_BLOCK * CBC_BLOCK, rest = pt_len - full;
	size_t body = full + (rest ? CBC_BLOCK : 0);
	uint8_t iv[CBC_BLOCK], last[CBC_BLOCK] = {0};
	int n, rc = 0;

	ENSURE(aad_len == 0, ATREST_EINVAL,
		"AES-CBC-HMAC takes no additional data (docs/FORMAT.md section 1)");
	if (rest)
		memcpy(last, pt + full, rest);
	if (cbc_iv(a, iv, nonce) < 0 ||
		EVP_CipherInit_ex2(a->enc, NULL, NULL, iv, 1, NULL) != 1 ||
		cipher_update(a->enc, out, pt, full) < 0 ||
		(rest && cipher_update(a->enc, out + full, last, CBC_BLOCK) < 0) ||
		EVP_CipherFinal_ex(a->enc, out + body, &n) != 1)
		rc = atrest__error_ossl(ATREST_ERROR, "AES-CBC seal failed");
	out[body] = (uint8_t)(rest ? CBC_BLOCK - rest : 0);
	if (rc == 0 && cbc_tag(a, out + body + 1, nonce, out, body) < 0)
		rc = atrest__error_ossl(ATREST_ERROR, "HMAC-SHA256 failed");
	atrest__wipe(last, sizeof(last));
	return rc;
}

/* Verify first, decrypt only an authentic body (encrypt-then-MAC). */
static int cbc_open(atrest__aead *a, uint8_t *out, size_t *pt_len, const uint8_t *nonce,
	size_t aad_len, const uint8_t *ct, size_t ct_len)
{
	uint8_t tag[ATREST_HMAC_TAG_LEN], iv[CBC_BLOCK], nonzero = 0;
	size_t body, pad;
	int n;

	if (aad_len != 0 || ct_len < CBC_TRAILER ||
		(ct_len - CBC_TRAILER) % CBC_BLOCK != 0)
		return -1;
	body = ct_len - CBC_TRAILER;
	if (cbc_tag(a, tag, nonce, ct, body) < 0 ||
		CRYPTO_memcmp(tag, ct + body + 1, sizeof(tag)) != 0)
		return -1;
	pad = ct[body];
	if (pad >= CBC_BLOCK || pad > body)
		return -1;
	if (cbc_iv(a, iv, nonce) < 0 ||
		EVP_CipherInit_ex2(a->dec, NULL, NULL, iv, 0, NULL) != 1 ||
		cipher_update(a->dec, out, ct, body) < 0 ||
		EVP_CipherFinal_ex(a->dec, out + body, &n) != 1)
		return -1;
	for (size_t i = body - pad; i < body; i++)
		nonzero |= out[i];
	if (nonzero)
		return -1;
	*pt_len = body - pad;
	return 0;
}

int atrest__aead_seal(atrest__aead *a, uint8_t *out, const uint8_t *nonce,
	const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len)
{
	if (a->cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256)
		return cbc_seal(a, out, nonce, aad_len, pt, pt_len);
	return gcm_seal(a, out, nonce, aad, aad_len, pt, pt_len);
}

int atrest__aead_open(atrest__aead *a, uint8_t *out, size_t *pt_len, const uint8_t *nonce,
	const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len)
{
	int rc;

	*pt_len = 0;
	if (a->cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256)
		rc = cbc_open(a, out, pt_len, nonce, aad_len, ct, ct_len);
	else if (ct_len < ATREST_AEAD_TAG_LEN)
		rc = -1;
	else
		rc = gcm_open(a, out, pt_len, nonce, aad, aad_len, ct, ct_len);
	if (rc == 0)
		return 0;
	/* Never hand back any of a forged plaintext. */
	atrest__wipe(out, ct_len);
	*pt_len = 0;
	ERR_clear_error();
	return atrest__error(ATREST_EINTEGRITY,
		"authentication failed: the "
		"ciphertext, its context or the key is not the one sealed");
}

int atrest__rand(void *buf, size_t len)
{
	uint8_t *p = buf;

	GUARD(atrest__crypto_init());
	while (len > 0) {
		int piece = len > EVP_CHUNK ? EVP_CHUNK : (int)len;

		GUARD_OSSL(RAND_bytes(p, piece), ATREST_ERROR,
			"the random number generator failed");
		p += piece;
		len -= (size_t)piece;
	}
	return 0;
}

/* The salt and info of HKDF may be empty; then they are simply not set. */
int atrest__hkdf(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
	const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len)
{
	OSSL_PARAM p[5], *q = p;
	EVP_KDF_CTX *k;
	int ok;

	GUARD(atrest__crypto_init());
	ENSURE(ikm_len > 0, ATREST_EINVAL, "HKDF needs input key material");
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, g_digest_name, 0);
	*q++ = OSSL_PARAM_construct_octet_string(
		OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
	if (salt_len)
		*q++ = OSSL_PARAM_construct_octet_string(
			OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	if (info_len)
		*q++ = OSSL_PARAM_construct_octet_string(
			OSSL_KDF_PARAM_INFO, (void *)info, info_len);
	*q = OSSL_PARAM_construct_end();
	k = EVP_KDF_CTX_new(g_hkdf);
	ENSURE(k != NULL, ATREST_ERROR, "out of memory");
	ok = EVP_KDF_derive(k, out, out_len, p);
	EVP_KDF_CTX_free(k);
	GUARD_OSSL(ok, ATREST_ERROR, "HKDF-SHA256 failed");
	return 0;
}

int atrest__sha256(uint8_t out[32], const void *data, size_t len)
{
	GUARD(atrest__crypto_init());
	GUARD_OSSL(EVP_Digest(data, len, out, NULL, g_sha256, NULL), ATREST_ERROR,
		"SHA-256 failed");
	return 0;
}

int atrest__hmac_sha256(
	uint8_t out[32], const uint8_t *key, size_t key_len, const void *data, size_t len)
{
	OSSL_PARAM p[2];
	EVP_MAC_CTX *m;
	size_t n = 0;
	int ok;

	GUARD(atrest__crypto_init());
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, g_digest_name, 0);
	p[1] = OSSL_PARAM_construct_end();
	m = EVP_MAC_CTX_new(g_hmac);
	ENSURE(m != NULL, ATREST_ERROR, "out of memory");
	ok = EVP_MAC_init(m, key, key_len, p) == 1 && EVP_MAC_update(m, data, len) == 1 &&
		EVP_MAC_final(m, out, &n, 32) == 1 && n == 32;
	EVP_MAC_CTX_free(m);
	GUARD_OSSL(ok ? 1 : 0, ATREST_ERROR, "HMAC-SHA256 failed");
	return 0;
}

struct atrest__mac {
	EVP_MAC_CTX *ctx;
};

int atrest__mac_new(atrest__mac **out, const uint8_t *key, size_t key_len)
{
	OSSL_PARAM p[2];
	atrest__mac *m;

	*out = NULL;
	GUARD(atrest__crypto_init());
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, g_digest_name, 0);
	p[1] = OSSL_PARAM_construct_end();
	m = calloc(1, sizeof(*m));
	ENSURE(m, ATREST_ERROR, "out of memory");
	m->ctx = EVP_MAC_CTX_new(g_hmac);
	if (!m->ctx || EVP_MAC_init(m->ctx, key, key_len, p) != 1) {
		atrest__mac_free(m);
		return atrest__error_ossl(ATREST_ERROR, "HMAC-SHA256 init failed");
	}
	*out = m;
	return 0;
}

int atrest__mac_reset(atrest__mac *m)
{
	GUARD_OSSL(
		EVP_MAC_init(m->ctx, NULL, 0, NULL), ATREST_ERROR, "HMAC reset failed");
	return 0;
}

int atrest__mac_update(atrest__mac *m, const void *data, size_t len)
{
	GUARD_OSSL(EVP_MAC_update(m->ctx, data, len), ATREST_ERROR, "HMAC update failed");
	return 0;
}

int atrest__mac_final(atrest__mac *m, uint8_t out[32])
{
	size_t n = 0;

	GUARD_OSSL(EVP_MAC_final(m->ctx, out, &n, 32) == 1 && n == 32 ? 1 : 0,
		ATREST_ERROR, "HMAC final failed");
	return 0;
}

void atrest__mac_free(atrest__mac *m)
{
	if (!m)
		return;
	EVP_MAC_CTX_free(m->ctx);
	free(m);
}

int atrest__argon2id(uint8_t *out, size_t out_len, const void *pass, size_t pass_len,
	const uint8_t *salt, size_t salt_len, uint32_t t_cost, uint32_t m_kib,
	uint32_t lanes)
{
	int r;

	GUARD(atrest__crypto_init());
	/* Belt and braces: the passphrase provider refuses this first. */
	ENSURE(!g_fips, ATREST_EINVAL,
		"argon2id is not FIPS-approved "
		"(ATREST_FIPS=1); PBKDF2-SHA256 is used in FIPS mode");
	ENSURE(pass_len <= UINT32_MAX && salt_len <= UINT32_MAX && out_len <= UINT32_MAX,
		ATREST_EINVAL, "argon2id: input too long");
	r = argon2id_hash_raw(
		t_cost, m_kib, lanes, pass, pass_len, salt, salt_len, out, out_len);
	if (r == ARGON2_OK)
		return 0;
	atrest__wipe(out, out_len);
	return atrest__error(
		r == ARGON2_MEMORY_ALLOCATION_ERROR ? ATREST_ERROR : ATREST_EINVAL,
		"argon2id (t=%u, m=%u KiB, p=%u) "
		"failed: %s",
		t_cost, m_kib, lanes, argon2_error_message(r));
}

int atrest__pbkdf2_sha256(uint8_t *out, size_t out_len, const void *pass, size_t pass_len,
	const uint8_t *salt, size_t salt_len, uint32_t iter)
{
	OSSL_PARAM p[5];
	EVP_KDF_CTX *k;
	unsigned int it = iter;
	int ok;

	GUARD(atrest__crypto_init());
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, g_digest_name, 0);
	p[1] = OSSL_PARAM_construct_octet_string(
		OSSL_KDF_PARAM_PASSWORD, (void *)pass, pass_len);
	p[2] = OSSL_PARAM_construct_octet_string(
		OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	p[3] = OSSL_PARAM_construct_uint(OSSL_KDF_PARAM_ITER, &it);
	p[4] = OSSL_PARAM_construct_end();
	k = EVP_KDF_CTX_new(g_pbkdf2);
	ENSURE(k != NULL, ATREST_ERROR, "out of memory");
	ok = EVP_KDF_derive(k, out, out_len, p);
	EVP_KDF_CTX_free(k);
	GUARD_OSSL(ok, ATREST_ERROR,
		"PBKDF2-HMAC-SHA256 (%u iterations) "
		"failed",
		iter);
	return 0;
}

int atrest__ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
