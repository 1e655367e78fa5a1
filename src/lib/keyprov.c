/*
 * The one door from the core into a master-key provider: every call checks
 * the provider's version and what it returns (lengths, terminators), so a
 * faulty plug-in fails cleanly.  The registry of key URI schemes and the
 * choice of provider from the environment.  Hex/base64 of store files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "atrest/keys.h"
#include "crypto.h"
#include "keyring.h"
#include "obs.h"
#include "plugins.h"

/* A provider that failed without saying why still gets a message. */
static int kp_failed(unsigned long seq, atrest_keyprov *kp, int rc, const char *what)
{
	const atrest_error *e = atrest_error_last();

	if (rc >= 0 || (e && e->code == rc && atrest__error_seq() != seq))
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
	unsigned long seq = atrest__error_seq();
	return kp_failed(seq, kp, kp->bind(kp, params_in, params_out), "prepare the key");
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

/* After a wrap or a rewrap of n bytes: its event, then its length checked. */
static int wrapped_out(atrest_keyprov *kp, int op, int rc, uint64_t t0,
	const uint8_t *aad, size_t aad_len, size_t n)
{
	atrest__obs_provider(kp, op, aad, aad_len, rc, t0);
	GUARD(rc);
	ENSURE(n > ATREST__DEK_LEN / 2 && n <= ATREST_WRAPPED_MAX, ATREST_ERROR,
		"key provider '%s' returned a %s key of bad length %zu", kp->kind,
		op == ATREST_OP_KEY_REWRAP ? "rewrapped" : "wrapped", n);
	return 0;
}

int atrest__kp_wrap(atrest_keyprov *kp, uint8_t *out, size_t *out_len, const uint8_t *key,
	const uint8_t *aad, size_t aad_len)
{
	uint64_t t0 = atrest__obs_clock();
	size_t n = 0;
	int rc;

	GUARD(check_kp(kp));
	unsigned long seq = atrest__error_seq();
	rc = kp_failed(seq, kp,
		kp->wrap(kp, out, ATREST_WRAPPED_MAX, &n, key, ATREST__DEK_LEN, aad,
			aad_len),
		"wrap a key");
	GUARD(wrapped_out(kp, ATREST_OP_KEY_WRAP, rc, t0, aad, aad_len, n));
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
	/*
	 * Room for anything a wrapped blob could hold, so a provider handed
	 * another provider's blob says "not mine" rather than "no room".
	 */
	GUARD(atrest__secret_new(&s, ATREST_WRAPPED_MAX));
	unsigned long seq = atrest__error_seq();
	uint64_t t0 = atrest__obs_clock();
	rc = kp_failed(seq, kp,
		kp->unwrap(kp, s->data, s->cap, &n, wrapped, wrapped_len, aad, aad_len),
		"unwrap a key");
	atrest__obs_provider(kp, ATREST_OP_KEY_UNWRAP, aad, aad_len, rc, t0);
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

int atrest__kp_can_rewrap(atrest_keyprov *kp)
{
	return kp && kp->version >= 2 && kp->rewrap;
}

int atrest__kp_rewrap(atrest_keyprov *kp, uint8_t *out, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	uint8_t tmp[ATREST_WRAPPED_MAX];
	size_t n = 0;
	uint64_t t0;
	int rc;

	GUARD(check_kp(kp));
	ENSURE(atrest__kp_can_rewrap(kp), ATREST_EINVAL,
		"key provider '%s' cannot rewrap inside its service", kp->kind);
	unsigned long seq = atrest__error_seq();
	t0 = atrest__obs_clock();
	rc = kp_failed(seq, kp,
		kp->rewrap(kp, tmp, sizeof(tmp), &n, wrapped, wrapped_len, aad, aad_len),
		"rewrap a key");
	GUARD(wrapped_out(kp, ATREST_OP_KEY_REWRAP, rc, t0, aad, aad_len, n));
	memcpy(out, tmp, n);
	*out_len = n;
	return 0;
}

/* ---- the registry: providers named by URI, one row per scheme ---- */

static const struct uri_scheme {
	const char *scheme; /* without the colon */
	atrest__keyprov_uri_fn open;
} uri_schemes[] = {
#ifdef ATREST_WITH_PKCS11
	{"pkcs11", atrest__keyprov_pkcs11},
#endif
#ifdef ATREST_WITH_KMIP
	{"kmip", atrest__keyprov_kmip},
#endif
#ifdef ATREST_WITH_TPM2
	{"tpm2", atrest__keyprov_tpm2},
#endif
#ifdef ATREST_WITH_CLOUD
	{"aws-kms", atrest__keyprov_aws_kms},
	{"gcp-kms", atrest__keyprov_gcp_kms},
	{"azure-kv", atrest__keyprov_azure_kv},
	{"vault", atrest__keyprov_vault},
	{"vault+http", atrest__keyprov_vault},
#endif
	{NULL, NULL},
};

/* The scheme of an RFC 3986 URI, or 0 when uri does not start with one. */
static size_t uri_scheme_len(const char *uri)
{
	size_t n = 0;

	if (!((uri[0] >= 'a' && uri[0] <= 'z') || (uri[0] >= 'A' && uri[0] <= 'Z')))
		return 0;
	while (uri[n] && uri[n] != ':' && n <= 32) {
		int c = (unsigned char)uri[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
			return 0;
		n++;
	}
	return uri[n] == ':' ? n : 0;
}

int atrest_keyprov_from_uri(atrest_keyprov **out, const char *uri)
{
	size_t n;

	*out = NULL;
	ENSURE(uri, ATREST_EINVAL, "no key URI");
	n = uri_scheme_len(uri);
	/* Never echo the URI: it may carry a PIN or a token. */
	ENSURE(n > 0, ATREST_EKEY,
		"not a key URI: expected scheme:..., e.g. "
		"pkcs11:token=...;object=...");
	for (const struct uri_scheme *s = uri_schemes; s->scheme; s++)
		if (strlen(s->scheme) == n && strncasecmp(s->scheme, uri, n) == 0)
			return s->open(out, uri);
	return atrest__error(ATREST_EKEY,
		"unsupported key URI scheme '%.*s:' (not built into this libatrest)",
		(int)n, uri);
}

const char *const *atrest_keyprov_schemes(void)
{
	static const char *names[sizeof(uri_schemes) / sizeof(uri_schemes[0])];

	for (size_t i = 0; uri_schemes[i].scheme; i++)
		names[i] = uri_schemes[i].scheme;
	return names;
}

/* ---- the provider the environment names ---- */

static const char *const env_names[2][4] = {
	{"ATREST_KEY", "ATREST_KEY_FILE", "ATREST_PASSPHRASE", "ATREST_KEY_URI"},
	{"ATREST_OLD_KEY", "ATREST_OLD_KEY_FILE", "ATREST_OLD_PASSPHRASE",
		"ATREST_OLD_KEY_URI"},
};

/* Index of the one variable set (0..3), or the error. */
static int env_pick(const char *const names[4], int old, const char **val)
{
	char set[160] = "";
	int which = -1, count = 0;

	for (int i = 0; i < 4; i++) {
		const char *v = getenv(names[i]);

		if (v == NULL || *v == '\0')
			continue;
		snprintf(set + strlen(set), sizeof(set) - strlen(set), "%s%s",
			count ? ", " : "", names[i]);
		which = i;
		*val = v;
		count++;
	}
	ENSURE(count > 0, ATREST_ENOTFOUND,
		"no %smaster key: set %s (e.g. "
		"`atrest keygen`), %s, %s or %s",
		old ? "old " : "", names[0], names[1], names[2], names[3]);
	ENSURE(count == 1, ATREST_EINVAL,
		"more than one %smaster key is set "
		"(%s); set only one",
		old ? "old " : "", set);
	return which;
}

int atrest_keyprov_from_env(atrest_keyprov **out, int old)
{
	const char *const *names = env_names[old ? 1 : 0];
	const char *v = NULL;
	int which, rc;

	*out = NULL;
	which = env_pick(names, old, &v);
	if (which < 0)
		return which;
	switch (which) {
	case 0:
		rc = atrest_keyprov_text(out, v, strlen(v));
		break;
	case 1:
		rc = atrest_keyprov_file(out, v);
		break;
	case 2:
		rc = atrest_keyprov_passphrase(out, v, strlen(v));
		break;
	default:
		rc = atrest_keyprov_from_uri(out, v);
		break;
	}
	if (rc < 0)
		atrest__error_prefix("%s", names[which]);
	return rc;
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
