/*
 * The API-key file: creation of keys, strict parsing (jansson, then every
 * field checked), locked atomic rewrites, and constant-time checks.  The
 * secrets are 256 random bits, so one salted SHA-256 is enough: no
 * password-style stretching is needed to resist guessing.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apikeys.h"

static const char *const roles[] = {"none", "reader", "writer", "admin"};

const char *srv_role_name(int role)
{
	return role > 0 && role <= SRV_ROLE_ADMIN ? roles[role] : "none";
}

int srv_role_from_name(const char *name)
{
	int i;

	for (i = SRV_ROLE_READER; i <= SRV_ROLE_ADMIN; i++)
		if (name && !strcmp(name, roles[i]))
			return i;
	return SRV_ROLE_NONE;
}

int srv_tenant_ok(const char *t)
{
	size_t i, n = strlen(t);

	if (n > ATREST_TENANT_MAX || t[0] == '.' || t[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = t[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static void set_why(char *why, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

static void hex(char *out, const uint8_t *in, size_t n)
{
	static const char d[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Exactly 2n lowercase hex digits into out; 0 or -1. */
static int unhex(uint8_t *out, size_t n, const char *s)
{
	size_t i;

	if (strlen(s) != 2 * n)
		return -1;
	for (i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
					       : -1;

		if (v < 0)
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

static int digest(
	uint8_t out[32], const uint8_t salt[16], const uint8_t *secret, size_t n)
{
	uint8_t buf[16 + 64];
	unsigned int len = 32;
	int ok;

	if (n > 64)
		return -1;
	memcpy(buf, salt, 16);
	memcpy(buf + 16, secret, n);
	ok = EVP_Digest(buf, 16 + n, out, &len, EVP_sha256(), NULL);
	OPENSSL_cleanse(buf, sizeof(buf));
	return ok == 1 ? 0 : -1;
}

/* base64url without padding of 32 bytes: 43 characters. */
static void b64url32(char out[44], const uint8_t in[32])
{
	char std[45];
	size_t i;

	EVP_EncodeBlock((unsigned char *)std, in, 32);
	for (i = 0; i < 43; i++)
		out[i] = std[i] == '+' ? '-' : std[i] == '/' ? '_' : std[i];
	out[43] = '\0';
	OPENSSL_cleanse(std, sizeof(std));
}

/* The 32 bytes of a 43-character base64url text; 0 or -1. */
static int unb64url32(uint8_t out[32], const char *s)
{
	char std[45];
	uint8_t buf[33];
	size_t i;
	int rc = -1;

	if (strlen(s) != 43)
		return -1;
	for (i = 0; i < 43; i++) {
		char c = s[i];

		if (c == '+' || c == '/' || c == '=')
			goto out;
		std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	std[43] = '=';
	std[44] = '\0';
	if (EVP_DecodeBlock(buf, (unsigned char *)std, 44) != 33)
		goto out;
	memcpy(out, buf, 32);
	/* One spelling per key: the last character's two spare bits are 0. */
	b64url32(std, out);
	rc = memcmp(std, s, 43) == 0 ? 0 : -1;
out:
	OPENSSL_cleanse(std, sizeof(std));
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

int srv_apikey_new(struct srv_apikey *out, char *key, size_t cap, const char *tenant,
	int role, const char *name)
{
	uint8_t id[SRV_APIKEY_ID_LEN / 2], secret[32];
	char text[44];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (cap < SRV_APIKEY_LEN + 1 || !srv_tenant_ok(tenant) || role == SRV_ROLE_NONE ||
		strlen(name) > SRV_APIKEY_NAME_MAX)
		return -1;
	if (atrest_random(id, sizeof(id)) < 0 ||
		atrest_random(secret, sizeof(secret)) < 0 ||
		atrest_random(out->salt, sizeof(out->salt)) < 0 ||
		digest(out->hash, out->salt, secret, sizeof(secret)) < 0)
		goto out;
	hex(out->id, id, sizeof(id));
	snprintf(out->tenant, sizeof(out->tenant), "%s", tenant);
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->role = role;
	out->created = (int64_t)time(NULL);
	b64url32(text, secret);
	snprintf(key, cap, "atr_%s_%s", out->id, text);
	rc = 0;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

static int text_ok(const char *s, size_t max)
{
	size_t i, n = strlen(s);

	if (n > max)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* A string member, or NULL. */
static const char *str_of(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An S3 access key id: "ATR" and 17 of [A-Z2-7]. */
static int s3_id_ok(const char *id)
{
	size_t i;

	if (strlen(id) != SRV_S3KEY_ID_LEN || strncmp(id, "ATR", 3) != 0)
		return 0;
	for (i = 3; i < SRV_S3KEY_ID_LEN; i++)
		if (!((id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '2' && id[i] <= '7')))
			return 0;
	return 1;
}

int srv_s3key_new(struct srv_apikey *out, char secret[SRV_S3KEY_SECRET_LEN + 1],
	const char *tenant, int role, const char *name, atrest_recorder *rec)
{
	static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint8_t rnd[SRV_S3KEY_ID_LEN + SRV_S3KEY_SECRET_LEN];
	size_t i, n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!srv_tenant_ok(tenant) || role == SRV_ROLE_NONE ||
		strlen(name) > SRV_APIKEY_NAME_MAX || atrest_random(rnd, sizeof(rnd)) < 0)
		goto out;
	memcpy(out->id, "ATR", 3);
	for (i = 3; i < SRV_S3KEY_ID_LEN; i++)
		out->id[i] = b32[rnd[i] & 31];
	for (i = 0; i < SRV_S3KEY_SECRET_LEN; i++) /* 6 of 8 bits: no bias */
		secret[i] = b64[rnd[SRV_S3KEY_ID_LEN + i] & 63];
	secret[SRV_S3KEY_SECRET_LEN] = '\0';
	if (atrest_record_seal(rec, out->sealed, sizeof(out->sealed), &n, secret,
		    SRV_S3KEY_SECRET_LEN, out->id, SRV_S3KEY_ID_LEN) < 0 ||
		n != sizeof(out->sealed))
		goto out;
	snprintf(out->tenant, sizeof(out->tenant), "%s", tenant);
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->role = role;
	out->s3 = 1;
	out->created = (int64_t)time(NULL);
	rc = 0;
out:
	OPENSSL_cleanse(rnd, sizeof(rnd));
	if (rc < 0)
		OPENSSL_cleanse(secret, SRV_S3KEY_SECRET_LEN + 1);
	return rc;
}

int srv_s3key_secret(char out[SRV_S3KEY_SECRET_LEN + 1], const struct srv_apikey *e,
	atrest_recorder *rec)
{
	uint8_t buf[SRV_S3KEY_SEALED_LEN]; /* the open needs room for the tag */
	size_t n = 0;
	int rc = -1;

	if (e->s3 &&
		atrest_record_open(rec, buf, sizeof(buf), &n, e->sealed,
			sizeof(e->sealed), e->id, strlen(e->id)) == 0 &&
		n == SRV_S3KEY_SECRET_LEN) {
		memcpy(out, buf, n);
		out[n] = '\0';
		rc = 0;
	} else
		OPENSSL_cleanse(out, SRV_S3KEY_SECRET_LEN + 1);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

const struct srv_apikey *srv_s3keys_find(const struct srv_apikeys *k, const char *id)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		if (k->v[i].s3 && !strcmp(k->v[i].id, id))
			return &k->v[i];
	return NULL;
}

/* The fields every entry has, checked and copied into e; 0 or -1. */
static int common_parse(struct srv_apikey *e, json_t *o, const char *id)
{
	const char *tenant = str_of(o, "tenant"), *role = str_of(o, "role"),
		   *name = str_of(o, "name");
	json_t *created = json_object_get(o, "created");

	if (!tenant || !srv_tenant_ok(tenant) || !role ||
		srv_role_from_name(role) == SRV_ROLE_NONE || !name ||
		!text_ok(name, SRV_APIKEY_NAME_MAX) || !json_is_integer(created) ||
		json_integer_value(created) < 0)
		return -1;
	snprintf(e->id, sizeof(e->id), "%s", id);
	snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->role = srv_role_from_name(role);
	e->created = json_integer_value(created);
	return 0;
}

/* An S3 key entry: the secret sealed, not hashed. */
static int s3_entry_parse(struct srv_apikey *e, json_t *o, char *why, size_t cap)
{
	const char *id = str_of(o, "id"), *sealed = str_of(o, "sealed");

	if (json_object_size(o) != 6 || !id || !s3_id_ok(id) || !sealed ||
		unhex(e->sealed, sizeof(e->sealed), sealed) < 0 ||
		common_parse(e, o, id) < 0) {
		set_why(why, cap, "S3 key entry '%.20s' has a missing or malformed field",
			id && text_ok(id, 20) ? id : "?");
		return -1;
	}
	e->s3 = 1;
	return 0;
}

static int entry_parse(struct srv_apikey *e, json_t *o, char *why, size_t cap)
{
	static const char *const fields[] = {
		"id", "tenant", "role", "name", "created", "salt", "hash"};
	const char *id = str_of(o, "id"), *salt = str_of(o, "salt"),
		   *hash = str_of(o, "hash");
	uint8_t idb[SRV_APIKEY_ID_LEN / 2];

	if (json_is_object(o) && json_object_get(o, "sealed"))
		return s3_entry_parse(e, o, why, cap);
	if (!json_is_object(o) ||
		json_object_size(o) != sizeof(fields) / sizeof(fields[0])) {
		set_why(why, cap,
			"a key entry is not an object of exactly the fields %s, ...",
			fields[0]);
		return -1;
	}
	if (!id || unhex(idb, sizeof(idb), id) < 0 || !salt ||
		unhex(e->salt, sizeof(e->salt), salt) < 0 || !hash ||
		unhex(e->hash, sizeof(e->hash), hash) < 0 || common_parse(e, o, id) < 0) {
		set_why(why, cap, "key entry '%.16s' has a missing or malformed field",
			id && text_ok(id, 16) ? id : "?");
		return -1;
	}
	return 0;
}

static int parse_json(struct srv_apikeys *out, json_t *root, char *why, size_t cap)
{
	json_t *keys = json_object_get(root, "keys"),
	       *v = json_object_get(root, "version");
	size_t i, j, n;

	if (!json_is_object(root) || json_object_size(root) != 2 || !json_is_integer(v) ||
		json_integer_value(v) != 1 || !json_is_array(keys)) {
		set_why(why, cap, "not an atrest API-key file (version 1)");
		return -1;
	}
	n = json_array_size(keys);
	if (n && !(out->v = calloc(n, sizeof(*out->v)))) {
		set_why(why, cap, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (entry_parse(&out->v[i], json_array_get(keys, i), why, cap) < 0)
			return -1;
		for (j = 0; j < i; j++)
			if (!strcmp(out->v[j].id, out->v[i].id)) {
				set_why(why, cap, "key id %s appears twice",
					out->v[i].id);
				return -1;
			}
		out->n = i + 1;
	}
	return 0;
}

int srv_apikeys_parse(
	struct srv_apikeys *out, const char *text, size_t len, char *why, size_t cap)
{
	json_error_t err;
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		set_why(why, cap, "not JSON (line %d: %s)", err.line, err.text);
		return -1;
	}
	rc = parse_json(out, root, why, cap);
	json_decref(root);
	if (rc < 0)
		srv_apikeys_free(out);
	return rc;
}

void srv_apikeys_free(struct srv_apikeys *k)
{
	if (k->v)
		OPENSSL_cleanse(k->v, k->n * sizeof(*k->v));
	free(k->v);
	memset(k, 0, sizeof(*k));
}

#define FILE_MAX (16u << 20)

/* Read an open file whole; 0 or -1 with why. */
static int read_fd(
	int fd, char **out, size_t *len, const char *path, char *why, size_t cap)
{
	struct stat sb;
	char *buf;
	size_t got = 0;
	ssize_t n;

	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > FILE_MAX) {
		set_why(why, cap, "%s is not a regular file of at most 16 MiB", path);
		return -1;
	}
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		set_why(why, cap,
			"%s may be read or written by other users: chmod 600 it", path);
		return -1;
	}
	if (!(buf = malloc((size_t)sb.st_size + 1))) {
		set_why(why, cap, "out of memory");
		return -1;
	}
	while (got < (size_t)sb.st_size &&
		(n = read(fd, buf + got, (size_t)sb.st_size - got)) > 0)
		got += (size_t)n;
	*out = buf;
	*len = got;
	return 0;
}

int srv_apikeys_load(struct srv_apikeys *out, const char *path, char *why, size_t cap)
{
	char *text;
	size_t len;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		set_why(why, cap, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	rc = read_fd(fd, &text, &len, path, why, cap);
	close(fd);
	if (rc < 0)
		return -1;
	rc = srv_apikeys_parse(out, text, len, why, cap);
	free(text);
	if (rc < 0) {
		char inner[256];

		snprintf(inner, sizeof(inner), "%s", why);
		set_why(why, cap, "%s: %s", path, inner);
	}
	return rc;
}

static json_t *entry_json(const struct srv_apikey *e)
{
	char salt[33], hash[65], sealed[2 * SRV_S3KEY_SEALED_LEN + 1];

	if (e->s3) {
		hex(sealed, e->sealed, sizeof(e->sealed));
		return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "id", e->id, "tenant",
			e->tenant, "role", srv_role_name(e->role), "name", e->name,
			"created", (json_int_t)e->created, "sealed", sealed);
	}
	hex(salt, e->salt, sizeof(e->salt));
	hex(hash, e->hash, sizeof(e->hash));
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s}", "id", e->id, "tenant",
		e->tenant, "role", srv_role_name(e->role), "name", e->name, "created",
		(json_int_t)e->created, "salt", salt, "hash", hash);
}

/* Write keys to path atomically: temp file, fsync, rename, fsync dir. */
static int write_keys(
	const char *path, const struct srv_apikeys *k, char *why, size_t cap)
{
	json_t *arr = json_array(), *root;
	char tmp[4096], *text = NULL, *dcopy;
	size_t i;
	int fd = -1, rc = -1, dfd;

	for (i = 0; arr && i < k->n; i++)
		json_array_append_new(arr, entry_json(&k->v[i]));
	root = json_pack("{s:i,s:o}", "version", 1, "keys", arr);
	if (!root || !(text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER))) {
		set_why(why, cap, "out of memory");
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0 ||
		write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
		write(fd, "\n", 1) != 1 || fsync(fd) < 0 || close(fd) < 0 ||
		rename(tmp, path) < 0) {
		set_why(why, cap, "cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		fd = -1;
		goto out;
	}
	fd = -1;
	if ((dcopy = strdup(path)) != NULL) {
		if ((dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >=
			0) {
			fsync(dfd);
			close(dfd);
		}
		free(dcopy);
	}
	rc = 0;
out:
	free(text);
	json_decref(root);
	return rc;
}

typedef int (*edit_fn)(struct srv_apikeys *k, const void *arg, char *why, size_t cap);

/* Read, edit and write back under the lock file path.lock. */
static int locked_edit(
	const char *path, edit_fn fn, const void *arg, char *why, size_t cap)
{
	char lock[4096];
	struct srv_apikeys k;
	int lfd, rc;

	snprintf(lock, sizeof(lock), "%s.lock", path);
	lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0) {
		set_why(why, cap, "cannot lock %s: %s", lock, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	rc = srv_apikeys_load(&k, path, why, cap);
	if (rc == 0)
		rc = fn(&k, arg, why, cap);
	if (rc == 0)
		rc = write_keys(path, &k, why, cap);
	srv_apikeys_free(&k);
	close(lfd);
	return rc;
}

static int add_one(struct srv_apikeys *k, const void *arg, char *why, size_t cap)
{
	struct srv_apikey *v = realloc(k->v, (k->n + 1) * sizeof(*v));

	if (!v) {
		set_why(why, cap, "out of memory");
		return -1;
	}
	k->v = v;
	k->v[k->n++] = *(const struct srv_apikey *)arg;
	return 0;
}

static int drop_one(struct srv_apikeys *k, const void *arg, char *why, size_t cap)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		if (!strcmp(k->v[i].id, arg)) {
			memmove(&k->v[i], &k->v[i + 1], (k->n - i - 1) * sizeof(k->v[0]));
			k->n--;
			return 0;
		}
	return 1;
}

int srv_apikeys_add(const char *path, const struct srv_apikey *e, char *why, size_t cap)
{
	return locked_edit(path, add_one, e, why, cap);
}

int srv_apikeys_revoke(const char *path, const char *id, char *why, size_t cap)
{
	return locked_edit(path, drop_one, id, why, cap);
}

int srv_apikey_claimed_id(char out[SRV_APIKEY_ID_LEN + 1], const char *presented)
{
	out[0] = '\0';
	if (strlen(presented) != SRV_APIKEY_LEN || strncmp(presented, "atr_", 4) != 0 ||
		presented[4 + SRV_APIKEY_ID_LEN] != '_')
		return -1;
	for (size_t i = 0; i < SRV_APIKEY_ID_LEN; i++) {
		char c = presented[4 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
	}
	memcpy(out, presented + 4, SRV_APIKEY_ID_LEN);
	out[SRV_APIKEY_ID_LEN] = '\0';
	return 0;
}

const struct srv_apikey *srv_apikeys_check(
	const struct srv_apikeys *k, const char *presented)
{
	static const uint8_t zero_salt[16];
	const struct srv_apikey *hit = NULL;
	uint8_t secret[32], got[32];
	char id[SRV_APIKEY_ID_LEN + 1];
	size_t i;

	if (srv_apikey_claimed_id(id, presented) < 0 ||
		unb64url32(secret, presented + 5 + SRV_APIKEY_ID_LEN) < 0)
		return NULL;
	for (i = 0; i < k->n; i++)
		if (!k->v[i].s3 && !strcmp(k->v[i].id, id))
			hit = &k->v[i];
	/* The same work whether or not the id is known. */
	if (digest(got, hit ? hit->salt : zero_salt, secret, sizeof(secret)) < 0 ||
		!hit || CRYPTO_memcmp(got, hit->hash, sizeof(got)) != 0)
		hit = NULL;
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(got, sizeof(got));
	return hit;
}
