/*
 * The one door from the core into a master-key provider: every call checks
 * the provider's version and what it returns (lengths, terminators), so a
 * faulty plug-in fails cleanly.  Also the hex/base64 coding of store files.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "atrest/keys.h"
#include "crypto.h"
#include "keyring.h"

/* A provider that failed without saying why still gets a message. */
static int kp_failed(atrest_keyprov *kp, int rc, const char *what)
{
	const atrest_error *e = atrest_error_last();

	if (rc >= 0 || (e && e->code == rc))
		return rc;
	return atrest__error(rc, "key provider '%s' failed to %s: %s",
		kp->kind ? kp->kind : "?", what, atrest_strerror(rc));
}

static int check_kp(atrest_keyprov *kp)
{
	ENSURE(kp, ATREST_EKEY, "no master key");
	ENSURE(kp->version >= 1 && kp->wrap && kp->unwrap && kp->key_id, ATREST_EINVAL,
		"key provider '%s' has an unsupported interface",
		kp->kind ? kp->kind : "?");
	return 0;
}

int atrest__kp_bind(atrest_keyprov *kp, const char *params_in, char **params_out)
{
	*params_out = NULL;
	GUARD(check_kp(kp));
	if (!kp->bind)
		return 0;
	atrest_error_clear();
	return kp_failed(kp, kp->bind(kp, params_in, params_out), "prepare the key");
}

int atrest__kp_key_id(atrest_keyprov *kp, char *out, size_t cap)
{
	GUARD(check_kp(kp));
	out[0] = '\0';
	GUARD(kp->key_id(kp, out, cap));
	ENSURE(memchr(out, '\0', cap) && out[0], ATREST_ERROR,
		"key provider '%s' returned no key id", kp->kind);
	return 0;
}

int atrest__kp_wrap(atrest_keyprov *kp, uint8_t *out, size_t *out_len, const uint8_t *key,
	const uint8_t *aad, size_t aad_len)
{
	size_t n = 0;

	GUARD(check_kp(kp));
	atrest_error_clear();
	GUARD(kp_failed(kp,
		kp->wrap(kp, out, ATREST_WRAPPED_MAX, &n, key, ATREST__DEK_LEN, aad,
			aad_len),
		"wrap a key"));
	ENSURE(n > ATREST__DEK_LEN / 2 && n <= ATREST_WRAPPED_MAX, ATREST_ERROR,
		"key provider '%s' returned a wrapped key of bad length %zu", kp->kind,
		n);
	*out_len = n;
	return 0;
}

int atrest__kp_unwrap(atrest_keyprov *kp, atrest__secret **out, const uint8_t *wrapped,
	size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	atrest__secret *s = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	GUARD(check_kp(kp));
	GUARD(atrest__secret_new(&s, ATREST__DEK_LEN * 2));
	atrest_error_clear();
	rc = kp_failed(kp,
		kp->unwrap(kp, s->data, s->cap, &n, wrapped, wrapped_len, aad, aad_len),
		"unwrap a key");
	if (rc == 0 && n != ATREST__DEK_LEN)
		rc = atrest__error(ATREST_ERROR,
			"key provider '%s' unwrapped a key of bad length %zu", kp->kind,
			n);
	if (rc < 0) {
		atrest__secret_free(s);
		return rc;
	}
	s->len = n;
	*out = s;
	return 0;
}

void atrest__hex(char *out, const uint8_t *in, size_t len)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int atrest__unhex_n(uint8_t *out, size_t n, const char *hex)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			atrest__wipe(out, n);
			return ATREST_EINVAL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int atrest__unhex(uint8_t *out, size_t len, const char *hex)
{
	if (strlen(hex) != 2 * len)
		return ATREST_EINVAL;
	return atrest__unhex_n(out, len, hex);
}

char *atrest__b64(const uint8_t *in, size_t len)
{
	char *s = malloc(4 * ((len + 2) / 3) + 1);

	if (s)
		EVP_EncodeBlock((unsigned char *)s, in, (int)len);
	return s;
}

int atrest__unb64(uint8_t *out, size_t cap, size_t *out_len, const char *b64)
{
	size_t n = strlen(b64), pad = 0;
	uint8_t *tmp;
	int got;

	if (n == 0 || n % 4 || n / 4 * 3 > cap + 2)
		return ATREST_EINVAL;
	pad = (b64[n - 1] == '=') + (b64[n - 2] == '=');
	tmp = malloc(n / 4 * 3);
	if (!tmp)
		return ATREST_ERROR;
	got = EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got - pad > cap) {
		free(tmp);
		return ATREST_EINVAL;
	}
	*out_len = (size_t)got - pad;
	memcpy(out, tmp, *out_len);
	atrest__wipe(tmp, n / 4 * 3);
	free(tmp);
	return 0;
}

int atrest_random(void *buf, size_t len)
{
	GUARD(atrest__crypto_init());
	return atrest__rand(buf, len);
}
