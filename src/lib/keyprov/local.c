/*
 * The local master-key providers of keys.h: a raw key, key text, a key file
 * and a passphrase (Argon2id, or PBKDF2 in FIPS mode), plus the choice of
 * provider from the environment.  All wrap data keys with AES-256-GCM.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "atrest/keys.h"
#include "atrest/store.h"
#include "atrest/sys/keyprov.h"
#include "common.h"
#include "crypto.h"
#include "secret.h"

#define MASTER_LEN 32
#define KEY_ID_LEN 20 /* "fp:" + 16 hex digits + NUL */
#define KEY_FILE_MAX 65536
#define PASS_MAX 65536
#define WRAP_OVERHEAD (ATREST_NONCE_LEN + ATREST_AEAD_TAG_LEN)

#define INFO_KEK "atrest/v1 kek"
#define INFO_KEY_ID "atrest/v1 key id"
#define INFO_KEY_FILE "atrest/v1 key file"

enum { KDF_ARGON2ID = 1, KDF_PBKDF2 = 2 };

/* What a passphrase is stretched with; kept (as JSON) in the keyring. */
struct kdf_params {
	int kdf;
	uint8_t salt[64];
	size_t salt_len;
	uint32_t t, m, p; /* argon2id: passes, KiB, lanes */
	uint32_t iter;    /* pbkdf2-sha256 */
};

struct local_kp {
	struct atrest_keyprov parent;
	pthread_mutex_t lock; /* bind may replace kek while others wrap */
	atrest__secret *kek;  /* NULL until the master key is known */
	char key_id[KEY_ID_LEN];
	atrest__secret *pass; /* passphrase providers only */
	struct kdf_params bound;
	int have_bound;
};

/* ---- the master key and what is derived from it */

static int hkdf_str(
	uint8_t *out, size_t len, const uint8_t *ikm, size_t ikm_len, const char *info)
{
	return atrest__hkdf(
		out, len, NULL, 0, ikm, ikm_len, (const uint8_t *)info, strlen(info));
}

/*
 * Install a master key: only the KEK and the fingerprint are kept, so the
 * master itself never outlives this call.  Caller holds the lock or owns kp.
 */
static int set_master(struct local_kp *l, const uint8_t master[MASTER_LEN])
{
	atrest__secret *kek;
	uint8_t fp[8];

	GUARD(atrest__secret_new(&kek, MASTER_LEN));
	if (hkdf_str(kek->data, MASTER_LEN, master, MASTER_LEN, INFO_KEK) < 0 ||
		hkdf_str(fp, sizeof(fp), master, MASTER_LEN, INFO_KEY_ID) < 0) {
		atrest__secret_free(kek);
		return ATREST_ERROR;
	}
	atrest__secret_free(l->kek);
	l->kek = kek;
	snprintf(l->key_id, sizeof(l->key_id), "fp:");
	for (size_t i = 0; i < sizeof(fp); i++)
		snprintf(l->key_id + 3 + 2 * i, 3, "%02x", fp[i]);
	return 0;
}

static int local_bind(atrest_keyprov *kp, const char *params_in, char **params_out)
{
	(void)kp;
	(void)params_in;
	if (params_out)
		*params_out = NULL;
	return 0;
}

static int local_key_id(atrest_keyprov *kp, char *out, size_t cap)
{
	struct local_kp *l = (struct local_kp *)kp;
	int rc = 0;

	pthread_mutex_lock(&l->lock);
	if (l->kek == NULL)
		rc = atrest__error(ATREST_EINVAL,
			"%s provider used before "
			"bind",
			kp->kind);
	else if (cap < strlen(l->key_id) + 1)
		rc = atrest__error(ATREST_EINVAL, "key id buffer too small");
	else
		memcpy(out, l->key_id, strlen(l->key_id) + 1);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

/* An AES-256-GCM context under the KEK; caller holds the lock. */
static int kek_aead(struct local_kp *l, atrest__aead **out)
{
	ENSURE(l->kek != NULL, ATREST_EINVAL, "%s provider used before bind",
		l->parent.kind);
	return atrest__aead_new(out, ATREST_CIPHER_AES_256_GCM, l->kek->data, MASTER_LEN);
}

/* Wrapped form: nonce(12) || ct || tag(16), the nonce random. */
static int local_wrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	struct local_kp *l = (struct local_kp *)kp;
	size_t need = key_len + WRAP_OVERHEAD;
	atrest__aead *a = NULL;
	int rc;

	ENSURE(key_len > 0 && need <= ATREST_WRAPPED_MAX, ATREST_EINVAL,
		"cannot wrap a key of %zu bytes", key_len);
	ENSURE(cap >= need, ATREST_EINVAL,
		"wrap needs %zu bytes of room, "
		"got %zu",
		need, cap);
	pthread_mutex_lock(&l->lock);
	GUARD_OUT(kek_aead(l, &a));
	GUARD_OUT(atrest__rand(out, ATREST_NONCE_LEN));
	GUARD_OUT(atrest__aead_seal(
		a, out + ATREST_NONCE_LEN, out, aad, aad_len, key, key_len));
	*out_len = need;
out:
	pthread_mutex_unlock(&l->lock);
	atrest__aead_free(a);
	return rc;
}

static int local_unwrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	struct local_kp *l = (struct local_kp *)kp;
	uint8_t tmp[ATREST_WRAPPED_MAX];
	atrest__aead *a = NULL;
	size_t n = 0;
	int rc;

	ENSURE(wrapped_len > WRAP_OVERHEAD && wrapped_len <= sizeof(tmp), ATREST_EKEY,
		"wrapped key of %zu bytes is not one this %s "
		"provider made",
		wrapped_len, kp->kind);
	ENSURE(cap >= wrapped_len - WRAP_OVERHEAD, ATREST_EINVAL,
		"unwrap "
		"needs %zu bytes of room",
		wrapped_len - WRAP_OVERHEAD);
	pthread_mutex_lock(&l->lock);
	GUARD_OUT(kek_aead(l, &a));
	if (atrest__aead_open(a, tmp, &n, wrapped, aad, aad_len,
		    wrapped + ATREST_NONCE_LEN, wrapped_len - ATREST_NONCE_LEN) < 0) {
		rc = atrest__error(ATREST_EKEY,
			"wrong master key: the "
			"keyring's data key does not unwrap with %s %s (or its "
			"wrapping was altered)",
			kp->kind, l->key_id);
		goto out;
	}
	memcpy(out, tmp, n);
	*out_len = n;
out:
	pthread_mutex_unlock(&l->lock);
	atrest__aead_free(a);
	atrest__wipe(tmp, sizeof(tmp));
	return rc;
}

static void local_free(atrest_keyprov *kp)
{
	struct local_kp *l = (struct local_kp *)kp;

	atrest__secret_free(l->kek);
	atrest__secret_free(l->pass);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static int local_new(struct local_kp **out, const char *kind,
	int (*bind)(atrest_keyprov *, const char *, char **))
{
	struct local_kp *l;

	*out = NULL;
	GUARD(atrest__crypto_init());
	l = calloc(1, sizeof(*l));
	ENSURE(l != NULL, ATREST_ERROR, "out of memory");
	l->parent.version = ATREST_KEYPROV_VERSION;
	l->parent.kind = kind;
	l->parent.bind = bind;
	l->parent.key_id = local_key_id;
	l->parent.wrap = local_wrap;
	l->parent.unwrap = local_unwrap;
	l->parent.free = local_free;
	pthread_mutex_init(&l->lock, NULL);
	*out = l;
	return 0;
}

/* A provider of this kind holding master (which the caller wipes). */
static int local_from_master(
	atrest_keyprov **out, const char *kind, const uint8_t master[MASTER_LEN])
{
	struct local_kp *l;
	int rc;

	*out = NULL;
	GUARD(local_new(&l, kind, local_bind));
	rc = set_master(l, master);
	if (rc < 0) {
		local_free(&l->parent);
		return rc;
	}
	*out = &l->parent;
	return 0;
}

int atrest_keyprov_raw(atrest_keyprov **out, const uint8_t *key, size_t len)
{
	*out = NULL;
	ENSURE(key != NULL && len == MASTER_LEN, ATREST_EINVAL,
		"a raw master key is %d bytes, not %zu", MASTER_LEN, len);
	return local_from_master(out, "key", key);
}

/* ---- key text: 64 hex digits or base64 of 32 bytes */

static int is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *len)
{
	while (*len && is_space((unsigned char)(*s)[0]))
		(*s)++, (*len)--;
	while (*len && is_space((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

static int is_b64(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Padded standard base64 of at most 128 characters.  EVP_DecodeBlock does
 * the work but counts '=' as zero bytes, so the padding is checked and
 * subtracted here.
 */
static int b64_decode(
	uint8_t *out, size_t cap, size_t *out_len, const char *s, size_t len)
{
	uint8_t tmp[96];
	size_t pad = 0, n;
	int r;

	if (len == 0 || len % 4 != 0 || len > 128)
		return -1;
	while (pad < 2 && s[len - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < len - pad; i++)
		if (!is_b64((unsigned char)s[i]))
			return -1;
	n = len / 4 * 3 - pad;
	if (n > cap)
		return -1;
	r = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)len);
	if (r != (int)(len / 4 * 3)) {
		atrest__wipe(tmp, sizeof(tmp));
		return -1;
	}
	memcpy(out, tmp, n);
	*out_len = n;
	atrest__wipe(tmp, sizeof(tmp));
	return 0;
}

/* 0 and the key when s (trimmed here) is a key in text form, else -1. */
static int parse_key_text(uint8_t key[MASTER_LEN], const char *s, size_t len)
{
	size_t n = 0;

	trim(&s, &len);
	if (len == 2 * MASTER_LEN)
		return atrest__unhex_n(key, MASTER_LEN, s) == 0 ? 0 : -1;
	if (b64_decode(key, MASTER_LEN, &n, s, len) == 0 && n == MASTER_LEN)
		return 0;
	atrest__wipe(key, MASTER_LEN);
	return -1;
}

int atrest_keyprov_text(atrest_keyprov **out, const char *text, size_t len)
{
	uint8_t key[MASTER_LEN];
	int rc;

	*out = NULL;
	ENSURE(text != NULL, ATREST_EINVAL, "no key text");
	/* The message says what is expected, never what was given. */
	ENSURE(parse_key_text(key, text, len) == 0, ATREST_EKEY,
		"not a master "
		"key: expected 64 hex digits or the base64 of 32 bytes (e.g. "
		"from `atrest keygen` or `openssl rand -hex 32`)");
	rc = local_from_master(out, "key", key);
	atrest__wipe(key, sizeof(key));
	return rc;
}

/* ---- key files */

static int check_key_file(int fd, const char *path, struct stat *st)
{
	unsigned int mode;

	if (fstat(fd, st) < 0)
		return atrest__error_os(ATREST_EKEY, errno,
			"cannot stat key "
			"file %s",
			path);
	ENSURE(S_ISREG(st->st_mode), ATREST_EKEY,
		"key file %s is not a "
		"regular file",
		path);
	mode = (unsigned int)(st->st_mode & 07777);
	ENSURE((mode & 077) == 0, ATREST_EKEY,
		"key file %s is %s by group or "
		"others (mode %04o); chmod 600 %s",
		path,
		(mode & 044)           ? "readable"
			: (mode & 022) ? "writable"
				       : "accessible",
		mode, path);
	ENSURE(st->st_size <= KEY_FILE_MAX, ATREST_EKEY,
		"key file %s is too "
		"large (%lld bytes; at most %d)",
		path, (long long)st->st_size, KEY_FILE_MAX);
	return 0;
}

/*
 * The whole file, read into locked memory.  Opened without blocking, so
 * that a FIFO (whose open waits for a writer) or a device is refused by the
 * check instead of hanging the reader.  A symbolic link to a regular file
 * is followed (mounted secrets are often links); what it names is checked.
 */
static int read_key_file(atrest__secret **out, const char *path)
{
	struct stat st;
	size_t got = 0;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return atrest__error_os(ATREST_EKEY, errno,
			"cannot open key "
			"file %s",
			path);
	GUARD_OUT(check_key_file(fd, path, &st));
	GUARD_OUT(atrest__secret_new(out, (size_t)st.st_size));
	while (got < (*out)->cap) {
		ssize_t n = read(fd, (*out)->data + got, (*out)->cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = atrest__error_os(ATREST_EKEY, errno,
				"cannot read "
				"key file %s",
				path);
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	(*out)->len = got;
out:
	close(fd);
	if (rc < 0) {
		atrest__secret_free(*out);
		*out = NULL;
	}
	return rc;
}

/*
 * Text made only of hex or base64 characters is a key typed or pasted with
 * a digit too many or too few, not random material: refuse it rather than
 * hash it into a different key.
 */
static int looks_like_key_text(const uint8_t *p, size_t len)
{
	const char *s = (const char *)p;

	trim(&s, &len);
	for (size_t i = 0; i < len; i++)
		if (!is_b64((unsigned char)s[i]) && s[i] != '=')
			return 0;
	return len > 0;
}

int atrest_keyprov_file(atrest_keyprov **out, const char *path)
{
	atrest__secret *buf;
	uint8_t key[MASTER_LEN];
	int rc;

	*out = NULL;
	ENSURE(path != NULL && *path, ATREST_EINVAL, "no key file path");
	GUARD(atrest__crypto_init());
	GUARD(read_key_file(&buf, path));
	if (parse_key_text(key, (const char *)buf->data, buf->len) == 0)
		rc = 0;
	else if (looks_like_key_text(buf->data, buf->len))
		rc = atrest__error(ATREST_EKEY,
			"key file %s looks like a key in text "
			"form but is not one: expected exactly 64 hex digits or the base64 "
			"of 32 bytes",
			path);
	else if (buf->len >= MASTER_LEN)
		rc = hkdf_str(key, MASTER_LEN, buf->data, buf->len, INFO_KEY_FILE);
	else
		rc = atrest__error(ATREST_EKEY,
			"key file %s holds %zu bytes: "
			"expected 64 hex digits, the base64 of 32 bytes, or at "
			"least 32 bytes of random material",
			path, buf->len);
	atrest__secret_free(buf);
	if (rc == 0)
		rc = local_from_master(out, "key-file", key);
	atrest__wipe(key, sizeof(key));
	return rc;
}

/* ---- passphrases: the KDF parameters kept in the keyring */

/* The callers (keyring, standalone file) say whose parameters these are. */
#define PARAMS_BAD(...)                  \
	atrest__error(ATREST_EINTEGRITY, \
		"passphrase KDF parameters are malformed: " __VA_ARGS__)

/*
 * The costliest parameters atrest itself writes (params_new).  Parameters
 * read from a keyring or a file may ask for more only when the user allows
 * it: a hostile file must not make a reader spend gigabytes and minutes.
 */
#define ARGON2_T_WRITTEN 3
#define ARGON2_M_WRITTEN 65536
#define ARGON2_P_WRITTEN 4
#define PBKDF2_ITER_WRITTEN 600000
#define ALLOW_COSTLY_ENV "ATREST_KDF_ALLOW_COSTLY"

/* A u32 field in [lo, hi]; 0 or the error. */
static int json_u32(json_t *o, const char *name, uint32_t lo, uint32_t hi, uint32_t *out)
{
	json_t *v = json_object_get(o, name);
	json_int_t n;

	if (!json_is_integer(v))
		return PARAMS_BAD("\"%s\" must be an integer", name);
	n = json_integer_value(v);
	if (n < (json_int_t)lo || n > (json_int_t)hi)
		return PARAMS_BAD("\"%s\" must be between %u and %u", name, lo, hi);
	*out = (uint32_t)n;
	return 0;
}

/* Every field must be one this KDF knows: a newer format is refused. */
static int params_fields(json_t *o, int kdf)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		int ok = strcmp(k, "kdf") == 0 || strcmp(k, "salt") == 0 ||
			(kdf == KDF_ARGON2ID &&
				(strcmp(k, "t") == 0 || strcmp(k, "m") == 0 ||
					strcmp(k, "p") == 0)) ||
			(kdf == KDF_PBKDF2 && strcmp(k, "iter") == 0);

		if (!ok)
			return PARAMS_BAD("unexpected field \"%.32s\"", k);
	}
	return 0;
}

static int params_kdf(json_t *o, struct kdf_params *p)
{
	const char *kdf = json_string_value(json_object_get(o, "kdf"));
	const char *salt = json_string_value(json_object_get(o, "salt"));

	if (kdf && strcmp(kdf, "argon2id") == 0)
		p->kdf = KDF_ARGON2ID;
	else if (kdf && strcmp(kdf, "pbkdf2-sha256") == 0)
		p->kdf = KDF_PBKDF2;
	else
		return PARAMS_BAD("\"kdf\" must be \"argon2id\" or "
				  "\"pbkdf2-sha256\"");
	if (salt == NULL ||
		b64_decode(p->salt, sizeof(p->salt), &p->salt_len, salt, strlen(salt)) <
			0 ||
		p->salt_len < 16)
		return PARAMS_BAD("\"salt\" must be the base64 of 16 to 64 "
				  "bytes");
	return params_fields(o, p->kdf);
}

/* Refuse what costs more than atrest writes, unless the user allows it. */
static int params_cap(const struct kdf_params *p)
{
	const char *allow = getenv(ALLOW_COSTLY_ENV);

	if (allow && strcmp(allow, "1") == 0)
		return 0;
	if (p->kdf == KDF_ARGON2ID)
		ENSURE(p->t <= ARGON2_T_WRITTEN && p->m <= ARGON2_M_WRITTEN &&
				p->p <= ARGON2_P_WRITTEN,
			ATREST_ETOOBIG,
			"passphrase KDF parameters ask for more than atrest writes "
			"(argon2id t=%u, m=%u KiB, p=%u; at most t=%u, m=%u, p=%u): "
			"refused unless %s=1",
			p->t, p->m, p->p, ARGON2_T_WRITTEN, ARGON2_M_WRITTEN,
			ARGON2_P_WRITTEN, ALLOW_COSTLY_ENV);
	else
		ENSURE(p->iter <= PBKDF2_ITER_WRITTEN, ATREST_ETOOBIG,
			"passphrase KDF parameters ask for more than atrest writes "
			"(pbkdf2-sha256 iter=%u; at most %u): refused unless %s=1",
			p->iter, PBKDF2_ITER_WRITTEN, ALLOW_COSTLY_ENV);
	return 0;
}

static int params_parse(const char *text, struct kdf_params *p)
{
	json_error_t jerr;
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	int rc;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(o)) {
		json_decref(o);
		return PARAMS_BAD("not a JSON object");
	}
	GUARD_OUT(params_kdf(o, p));
	if (p->kdf == KDF_ARGON2ID) {
		GUARD_OUT(json_u32(o, "t", 1, 16, &p->t));
		GUARD_OUT(json_u32(o, "m", 8192, 4194304, &p->m));
		GUARD_OUT(json_u32(o, "p", 1, 16, &p->p));
	} else {
		GUARD_OUT(json_u32(o, "iter", 10000, 10000000, &p->iter));
	}
	rc = params_cap(p);
out:
	json_decref(o);
	return rc;
}

/*
 * Argon2id memory for new keyrings.  Test builds read a smaller size from
 * ATREST_ARGON2_TEST_MEMORY_KIB, so that their many derivations stay quick.
 */
static int argon2_new_memory(uint32_t *m)
{
#ifdef ATREST_TEST_HOOKS
	const char *v = getenv("ATREST_ARGON2_TEST_MEMORY_KIB");
	char *end;
	unsigned long n;

	*m = ARGON2_M_WRITTEN;
	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	n = strtoul(v, &end, 10);
	ENSURE(errno == 0 && *end == '\0' && n >= 8192 && n <= ARGON2_M_WRITTEN,
		ATREST_EINVAL,
		"ATREST_ARGON2_TEST_MEMORY_KIB must be a number "
		"of KiB between 8192 and %d",
		ARGON2_M_WRITTEN);
	*m = (uint32_t)n;
#else
	*m = ARGON2_M_WRITTEN;
#endif
	return 0;
}

/* Fresh parameters with a random salt, as JSON for the keyring. */
static int params_new(struct kdf_params *p, char **json)
{
	char salt[96];
	json_t *o;

	memset(p, 0, sizeof(*p));
	p->salt_len = 16;
	GUARD(atrest__rand(p->salt, p->salt_len));
	EVP_EncodeBlock((unsigned char *)salt, p->salt, (int)p->salt_len);
	if (atrest__fips_mode()) {
		p->kdf = KDF_PBKDF2;
		p->iter = PBKDF2_ITER_WRITTEN;
		o = json_pack("{s:s, s:s, s:I}", "kdf", "pbkdf2-sha256", "salt", salt,
			"iter", (json_int_t)p->iter);
	} else {
		p->kdf = KDF_ARGON2ID;
		p->t = ARGON2_T_WRITTEN;
		p->p = ARGON2_P_WRITTEN;
		GUARD(argon2_new_memory(&p->m));
		o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "kdf", "argon2id", "salt",
			salt, "t", (json_int_t)p->t, "m", (json_int_t)p->m, "p",
			(json_int_t)p->p);
	}
	*json = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	ENSURE(*json != NULL, ATREST_ERROR, "out of memory");
	return 0;
}

static int params_equal(const struct kdf_params *a, const struct kdf_params *b)
{
	return a->kdf == b->kdf && a->salt_len == b->salt_len &&
		memcmp(a->salt, b->salt, a->salt_len) == 0 && a->t == b->t &&
		a->m == b->m && a->p == b->p && a->iter == b->iter;
}

/* ---- passphrases: stretching, once per set of parameters */

static int pass_derive(struct local_kp *l, const struct kdf_params *p)
{
	uint8_t master[MASTER_LEN];
	int rc;

	if (l->have_bound && params_equal(&l->bound, p))
		return 0;
	if (p->kdf == KDF_ARGON2ID) {
		ENSURE(!atrest__fips_mode(), ATREST_EKEY,
			"this keyring's "
			"passphrase is stretched with Argon2id, which FIPS "
			"mode (ATREST_FIPS=1) does not allow: open it without "
			"ATREST_FIPS and rotate to a FIPS-allowed master key");
		rc = atrest__argon2id(master, MASTER_LEN, l->pass->data, l->pass->len,
			p->salt, p->salt_len, p->t, p->m, p->p);
	} else {
		rc = atrest__pbkdf2_sha256(master, MASTER_LEN, l->pass->data,
			l->pass->len, p->salt, p->salt_len, p->iter);
	}
	if (rc == 0)
		rc = set_master(l, master);
	atrest__wipe(master, sizeof(master));
	if (rc < 0)
		return rc;
	l->bound = *p;
	l->have_bound = 1;
	return 0;
}

static int pass_bind(atrest_keyprov *kp, const char *params_in, char **params_out)
{
	struct local_kp *l = (struct local_kp *)kp;
	struct kdf_params p;
	char *json = NULL;
	int rc;

	if (params_out)
		*params_out = NULL;
	if (params_in == NULL) {
		ENSURE(params_out != NULL, ATREST_EINVAL,
			"binding a "
			"passphrase to a new keyring needs params_out for its "
			"parameters");
		GUARD(params_new(&p, &json));
	} else {
		GUARD(params_parse(params_in, &p));
	}
	pthread_mutex_lock(&l->lock);
	rc = pass_derive(l, &p);
	pthread_mutex_unlock(&l->lock);
	if (rc < 0) {
		free(json);
		return rc;
	}
	if (params_out)
		*params_out = json;
	return 0;
}

int atrest_keyprov_passphrase(atrest_keyprov **out, const char *pass, size_t len)
{
	struct local_kp *l;
	int rc;

	*out = NULL;
	ENSURE(pass != NULL && len > 0, ATREST_EINVAL, "empty passphrase");
	ENSURE(len <= PASS_MAX, ATREST_EINVAL,
		"passphrase longer than %d "
		"bytes",
		PASS_MAX);
	GUARD(local_new(&l, "passphrase", pass_bind));
	rc = atrest__secret_dup(&l->pass, pass, len);
	if (rc < 0) {
		local_free(&l->parent);
		return rc;
	}
	*out = &l->parent;
	return 0;
}

/* ---- choosing a provider from the environment */

const char *atrest_keyprov_kind(const atrest_keyprov *kp)
{
	return kp ? kp->kind : NULL;
}

void atrest_keyprov_free(atrest_keyprov *kp)
{
	if (kp && kp->free)
		kp->free(kp);
}
