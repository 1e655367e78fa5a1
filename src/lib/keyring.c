/*
 * The keyring (keyring.h): creation, JSON parsing and serialization, the
 * master-key check, the MAC over a canonical encoding, lazy unwrapping of
 * data keys and rotation.  Written to the store by store.c.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "crypto.h"
#include "keyring.h"
#include "names.h"
#include "obs.h"

#define KEYRING_FORMAT "atrest-keyring"
#define MAX_KEYS 100000

static const char *STATUS_NAMES[] = {"", "active", "retired", "exposed", "destroyed"};

const char *atrest__dek_status_name(int status)
{
	return status >= 1 && status <= 4 ? STATUS_NAMES[status] : "unknown";
}

static int status_from_name(const char *s)
{
	for (int i = 1; i <= 4; i++)
		if (strcmp(s, STATUS_NAMES[i]) == 0)
			return i;
	return -1;
}

/* Additional data binding a wrapped blob to its store and role. */
static size_t wrap_aad(
	uint8_t *aad, const atrest__keyring *kr, const char *role, uint32_t id)
{
	size_t rl = strlen(role);

	memcpy(aad, role, rl);
	memcpy(aad + rl, kr->store_id, 16);
	atrest__put_le32(aad + rl + 16, id);
	return rl + 20;
}

static int wrap_dek(atrest__keyring *kr, atrest_keyprov *kp, atrest__dek *d)
{
	uint8_t aad[64];
	size_t n = wrap_aad(aad, kr, "atrest/v1 dek", d->id);

	return atrest__kp_wrap(kp, d->wrapped, &d->wrapped_len, d->key->data, aad, n);
}

/* A random id that the keyring does not hold (tombstones included). */
static int fresh_id(atrest__keyring *kr, uint32_t *out)
{
	uint8_t r[3];

	for (int tries = 0; tries < 1000; tries++) {
		GUARD(atrest__rand(r, sizeof(r)));
		uint32_t id = (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16;
		if (id >= 1 && id <= ATREST__DEK_ID_MAX &&
			!atrest__keyring_find(kr, id)) {
			*out = id;
			return 0;
		}
	}
	return atrest__error(ATREST_ERROR, "no free data key id");
}

static int new_dek(atrest__keyring *kr, atrest_keyprov *kp)
{
	atrest__dek *keys, *d;
	uint32_t id = 0;

	ENSURE(kr->nkeys < MAX_KEYS, ATREST_ERROR, "keyring holds too many data keys");
	GUARD(fresh_id(kr, &id));
	keys = realloc(kr->keys, (kr->nkeys + 1) * sizeof(*keys));
	ENSURE(keys, ATREST_ERROR, "out of memory");
	kr->keys = keys;
	d = &keys[kr->nkeys];
	memset(d, 0, sizeof(*d));
	d->id = id;
	d->created = atrest__now();
	d->status = ATREST__DEK_ACTIVE;
	GUARD(atrest__secret_new(&d->key, ATREST__DEK_LEN));
	d->unwrapped_at = atrest__now();
	int rc = atrest__rand(d->key->data, ATREST__DEK_LEN);
	if (rc == 0)
		rc = wrap_dek(kr, kp, d); /* keep the provider's code (unavailable...) */
	if (rc < 0) {
		atrest__secret_free(d->key);
		return rc;
	}
	kr->nkeys++;
	kr->active = id;
	return 0;
}

static int derive_mac_key(atrest__keyring *kr, const atrest__secret *check)
{
	static const char info[] = "atrest/v1 keyring mac";

	atrest__secret_free(kr->mac_key);
	kr->mac_key = NULL;
	GUARD(atrest__secret_new(&kr->mac_key, 32));
	return atrest__hkdf(kr->mac_key->data, 32, kr->store_id, 16, check->data,
		check->len, (const uint8_t *)info, sizeof(info) - 1);
}

static int bind_provider(atrest__keyring *kr, atrest_keyprov *kp)
{
	char *params = NULL;

	GUARD(atrest__kp_bind(kp, kr->params, &params));
	if (params) {
		free(kr->params);
		kr->params = params;
	}
	snprintf(kr->kind, sizeof(kr->kind), "%s", kp->kind ? kp->kind : "?");
	return atrest__kp_key_id(kp, kr->key_id, sizeof(kr->key_id));
}

int atrest__keyring_create(atrest__keyring **out, atrest_keyprov *kp)
{
	atrest__keyring *kr = calloc(1, sizeof(*kr));
	atrest__secret *check = NULL;
	uint8_t aad[64];
	int rc;

	ENSURE(kr, ATREST_ERROR, "out of memory");
	kr->version = 2;
	GUARD_OUT(atrest__rand(kr->store_id, sizeof(kr->store_id)));
	GUARD_OUT(bind_provider(kr, kp));
	GUARD_OUT(atrest__secret_new(&check, 32));
	GUARD_OUT(atrest__rand(check->data, 32));
	GUARD_OUT(atrest__kp_wrap(kp, kr->check, &kr->check_len, check->data, aad,
		wrap_aad(aad, kr, "atrest/v1 check", 0)));
	GUARD_OUT(derive_mac_key(kr, check));
	GUARD_OUT(new_dek(kr, kp));
	kr->check_secret = check;
	check = NULL;
	*out = kr;
out:
	atrest__secret_free(check);
	if (rc < 0)
		atrest__keyring_free(kr);
	return rc;
}

int atrest__keyring_rotate(atrest__keyring *kr, atrest_keyprov *kp)
{
	uint32_t old = kr->active;

	GUARD(new_dek(kr, kp));
	for (size_t i = 0; i < kr->nkeys; i++)
		if (kr->keys[i].id == old && kr->keys[i].status == ATREST__DEK_ACTIVE)
			kr->keys[i].status = ATREST__DEK_RETIRED;
	return 0;
}

/* Canonical bytes the MAC covers: every field, length-prefixed. */
typedef struct canon {
	uint8_t *b;
	size_t len, cap;
	int oom;
} canon;

static void canon_put(canon *c, const void *p, size_t n)
{
	if (c->oom)
		return;
	if (c->len + n > c->cap) {
		size_t cap = (c->len + n) * 2 + 256;
		uint8_t *b = realloc(c->b, cap);
		if (!b) {
			c->oom = 1;
			return;
		}
		c->b = b;
		c->cap = cap;
	}
	memcpy(c->b + c->len, p, n);
	c->len += n;
}

static void canon_u64(canon *c, uint64_t v)
{
	uint8_t b[8];

	atrest__put_le64(b, v);
	canon_put(c, b, 8);
}

static void canon_bytes(canon *c, const void *p, size_t n)
{
	canon_u64(c, n);
	canon_put(c, p, n);
}

static void canon_str(canon *c, const char *s)
{
	canon_bytes(c, s ? s : "", s ? strlen(s) : 0);
}

/* The audit trail's signing key: absent from keyrings that have none. */
static void canon_audit(canon *c, const atrest__keyring *kr)
{
	if (!kr->has_audit)
		return;
	canon_str(c, "audit");
	canon_put(c, kr->audit_pub, 32);
	canon_bytes(c, kr->audit_wrapped, kr->audit_wrapped_len);
}

/*
 * Version 2 appends the tenant, the settings, the tenant registry and
 * (when there is one) the audit key.
 */
static void canon_v2(canon *c, const atrest__keyring *kr)
{
	const atrest_settings *s = &kr->settings;

	canon_str(c, kr->tenant);
	canon_str(c, atrest_cipher_name(s->cipher));
	canon_u64(c, s->segment_size);
	canon_u64(c, s->rotate_days);
	canon_u64(c, s->force_days);
	canon_u64(c, kr->ntenants);
	for (size_t i = 0; i < kr->ntenants; i++) {
		const atrest__tenant *t = &kr->tenants[i];
		canon_str(c, t->name);
		canon_put(c, t->id, 16);
		canon_str(c, t->key_uri);
		canon_str(c, t->key_file);
	}
	canon_audit(c, kr);
}

static int keyring_mac(uint8_t mac[32], const atrest__keyring *kr)
{
	canon c = {0};
	int rc;

	canon_str(&c, kr->version >= 2 ? "atrest-keyring-v2" : "atrest-keyring-v1");
	canon_put(&c, kr->store_id, 16);
	canon_u64(&c, kr->generation);
	canon_u64(&c, kr->active);
	canon_str(&c, kr->kind);
	canon_str(&c, kr->key_id);
	canon_str(&c, kr->params);
	canon_bytes(&c, kr->check, kr->check_len);
	canon_u64(&c, kr->nkeys);
	for (size_t i = 0; i < kr->nkeys; i++) {
		const atrest__dek *d = &kr->keys[i];
		canon_u64(&c, d->id);
		canon_u64(&c, (uint64_t)d->created);
		canon_u64(&c, (uint64_t)d->status);
		canon_bytes(&c, d->wrapped, d->wrapped_len);
	}
	if (kr->version >= 2)
		canon_v2(&c, kr);
	ENSURE(!c.oom, ATREST_ERROR, "out of memory");
	rc = atrest__hmac_sha256(mac, kr->mac_key->data, kr->mac_key->len, c.b, c.len);
	free(c.b);
	return rc;
}

static int check_active(const atrest__keyring *kr)
{
	const atrest__dek *d = NULL;

	if (kr->active == 0) { /* shredded: every key destroyed */
		for (size_t i = 0; i < kr->nkeys; i++)
			ENSURE(kr->keys[i].status == ATREST__DEK_DESTROYED,
				ATREST_EINTEGRITY,
				"keyring damaged: no active key but live keys");
		return 0;
	}

	for (size_t i = 0; i < kr->nkeys; i++)
		if (kr->keys[i].id == kr->active)
			d = &kr->keys[i];
	ENSURE(d && d->status == ATREST__DEK_ACTIVE, ATREST_EINTEGRITY,
		"keyring damaged: active data key %u missing", kr->active);
	return 0;
}

int atrest__keyring_unlock(atrest__keyring *kr, atrest_keyprov *kp)
{
	char given[sizeof(kr->key_id)], *params = NULL;
	atrest__secret *check = NULL;
	uint8_t aad[64], mac[32];
	int rc;

	/*
	 * Binding only reads the keyring: a provider that would pick new
	 * parameters (a passphrase on a store that had none) is simply the wrong
	 * key, and the same key by another route (ATREST_KEY instead of a key
	 * file) must not change the recorded kind or id.
	 */
	rc = atrest__kp_bind(kp, kr->params, &params);
	free(params);
	if (rc < 0) {
		atrest__error_prefix("keyring");
		return rc;
	}
	GUARD(atrest__kp_key_id(kp, given, sizeof(given)));
	rc = atrest__kp_unwrap(kp, &check, kr->check, kr->check_len, aad,
		wrap_aad(aad, kr, "atrest/v1 check", 0));
	/* The key the keyring names, yet its check does not unwrap: edited. */
	if ((rc == ATREST_EKEY || rc == ATREST_EINTEGRITY) && !strcmp(given, kr->key_id))
		return atrest__error(ATREST_EINTEGRITY,
			"keyring damaged: its check does not unwrap under its own master "
			"key %s (store_id or check edited, or corrupted)",
			given);
	if (rc == ATREST_EKEY || rc == ATREST_EINTEGRITY)
		return atrest__error(ATREST_EKEY,
			"wrong master key: the store's keyring is wrapped by master key %s, "
			"the key given is %s",
			kr->key_id, given);
	GUARD(rc);
	rc = derive_mac_key(kr, check);
	atrest__secret_free(kr->check_secret);
	kr->check_secret = check;
	GUARD(rc);
	GUARD(keyring_mac(mac, kr));
	ENSURE(atrest__ct_equal(mac, kr->mac, 32), ATREST_EINTEGRITY,
		"keyring damaged: its MAC does not match (edited or corrupted)");
	return check_active(kr);
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jint(json_t *o, const char *k, json_int_t *out)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v))
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int parse_blob(uint8_t *out, size_t *len, const char *b64)
{
	return b64 && atrest__unb64(out, ATREST_WRAPPED_MAX, len, b64) == 0 && *len > 0
		? 0
		: -1;
}

/* ---- the audit trail's signing key (docs/FORMAT.md, "Keyring") ---- */

static int parse_audit(atrest__keyring *kr, json_t *o)
{
	const char *pub = jstr(o, "public");

	if (!o)
		return 0;
	if (!json_is_object(o) || json_object_size(o) != 2 || !pub ||
		atrest__unhex(kr->audit_pub, 32, pub) ||
		parse_blob(kr->audit_wrapped, &kr->audit_wrapped_len, jstr(o, "wrapped")))
		return -1;
	kr->has_audit = 1;
	return 0;
}

static json_t *audit_json(const atrest__keyring *kr)
{
	char pub[65], *w;
	json_t *o;

	atrest__hex(pub, kr->audit_pub, 32);
	w = atrest__b64(kr->audit_wrapped, kr->audit_wrapped_len);
	o = w ? json_pack("{s:s, s:s}", "public", pub, "wrapped", w) : NULL;
	free(w);
	return o;
}

static int unwrap_audit(atrest__keyring *kr, atrest_keyprov *kp)
{
	uint8_t aad[64], pub[32];

	if (kr->audit_seed)
		return 0;
	GUARD(atrest__kp_unwrap(kp, &kr->audit_seed, kr->audit_wrapped,
		kr->audit_wrapped_len, aad, wrap_aad(aad, kr, "atrest/v1 audit", 0)));
	if (atrest__ed25519_public(pub, kr->audit_seed->data) == 0 &&
		atrest__ct_equal(pub, kr->audit_pub, 32))
		return 0;
	atrest__secret_free(kr->audit_seed);
	kr->audit_seed = NULL;
	return atrest__error(ATREST_EINTEGRITY,
		"keyring damaged: the audit key does not match its public half");
}

int atrest__keyring_audit_make(atrest__keyring *kr, atrest_keyprov *kp)
{
	atrest__secret *seed = NULL;
	uint8_t aad[64];
	int rc;

	if (kr->has_audit)
		return 0;
	ENSURE(!kr->tenant[0], ATREST_EINVAL,
		"a tenant's keyring holds no audit key (the store's signs)");
	GUARD(atrest__secret_new(&seed, 32));
	GUARD_OUT(atrest__rand(seed->data, 32));
	GUARD_OUT(atrest__ed25519_public(kr->audit_pub, seed->data));
	GUARD_OUT(atrest__kp_wrap(kp, kr->audit_wrapped, &kr->audit_wrapped_len,
		seed->data, aad, wrap_aad(aad, kr, "atrest/v1 audit", 0)));
	kr->has_audit = 1;
	kr->audit_seed = seed;
	seed = NULL;
out:
	atrest__secret_free(seed);
	return rc;
}

int atrest__keyring_audit_seed(
	atrest__secret **out, atrest__keyring *kr, atrest_keyprov *kp)
{
	*out = NULL;
	if (!kr->has_audit)
		return ATREST_ENOTFOUND;
	GUARD(unwrap_audit(kr, kp));
	return atrest__secret_dup(out, kr->audit_seed->data, 32);
}

static int parse_dek(atrest__dek *d, json_t *o)
{
	json_int_t id, created;
	const char *st = jstr(o, "status"), *w = jstr(o, "wrapped");

	memset(d, 0, sizeof(*d));
	if (!json_is_object(o) || jint(o, "id", &id) || jint(o, "created", &created) ||
		!st || id < 1 || id >= 0xFFFFFF)
		return -1;
	d->id = (uint32_t)id;
	d->created = created;
	d->status = status_from_name(st);
	if (d->status < 0)
		return -1;
	/* A tombstone has no wrapped key at all (not even null). */
	if (d->status == ATREST__DEK_DESTROYED)
		return json_object_get(o, "wrapped") ? -1 : 0;
	return parse_blob(d->wrapped, &d->wrapped_len, w);
}

static int parse_keys(atrest__keyring *kr, json_t *arr)
{
	size_t n = json_array_size(arr);

	if (!json_is_array(arr) || n == 0 || n > MAX_KEYS)
		return -1;
	kr->keys = calloc(n, sizeof(*kr->keys));
	if (!kr->keys)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (parse_dek(&kr->keys[i], json_array_get(arr, i)) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (kr->keys[j].id == kr->keys[i].id)
				return -1;
		kr->nkeys++;
	}
	return 0;
}

static int parse_settings(atrest__keyring *kr, json_t *o)
{
	json_int_t seg, rot, force;
	const char *cipher = jstr(o, "cipher");
	atrest_settings *s = &kr->settings;

	if (!json_is_object(o) || !cipher || jint(o, "segment_size", &seg) ||
		jint(o, "rotate_days", &rot) || jint(o, "force_days", &force) ||
		seg < 1 || seg > UINT32_MAX || rot < 1 || rot > UINT32_MAX || force < 1 ||
		force > UINT32_MAX)
		return -1;
	s->version = ATREST_SETTINGS_VERSION;
	s->cipher = atrest_cipher_from_name(cipher);
	s->segment_size = (uint32_t)seg;
	s->rotate_days = (uint32_t)rot;
	s->force_days = (uint32_t)force;
	return atrest__settings_valid(s) == 0 ? 0 : -1;
}

static int parse_tenant(atrest__tenant *t, json_t *o)
{
	const char *name = jstr(o, "name"), *id = jstr(o, "id");
	const char *uri = jstr(o, "key_uri"), *file = jstr(o, "key_file");

	memset(t, 0, sizeof(*t));
	if (!json_is_object(o) || !name || atrest__tenant_check(name) < 0 || !id ||
		atrest__unhex(t->id, 16, id) || (uri && file) || (uri && !*uri) ||
		(file && *file != '/'))
		return -1;
	strcpy(t->name, name);
	if (uri && !(t->key_uri = strdup(uri)))
		return -1;
	if (file && !(t->key_file = strdup(file)))
		return -1;
	return 0;
}

static int parse_tenants(atrest__keyring *kr, json_t *arr)
{
	size_t n = json_array_size(arr);

	if (!arr)
		return 0;
	if (!json_is_array(arr) || n > MAX_KEYS)
		return -1;
	kr->tenants = calloc(n ? n : 1, sizeof(*kr->tenants));
	if (!kr->tenants)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int bad = parse_tenant(&kr->tenants[i], json_array_get(arr, i));
		kr->ntenants++; /* freed with the keyring even when bad */
		if (bad < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(kr->tenants[j].name, kr->tenants[i].name) == 0)
				return -1;
	}
	return 0;
}

/* Version 2 carries the settings, and a tenant's name or the registry. */
static int parse_v2(atrest__keyring *kr, json_t *root)
{
	json_t *t = json_object_get(root, "tenant");

	if (kr->version == 1)
		return json_object_get(root, "settings") || t ||
				json_object_get(root, "tenants") ||
				json_object_get(root, "audit") || kr->active < 1
			? -1
			: 0;
	if (t && (!json_is_string(t) || atrest__tenant_check(json_string_value(t)) < 0))
		return -1;
	if (t)
		strcpy(kr->tenant, json_string_value(t));
	if (t && (json_object_get(root, "tenants") || json_object_get(root, "audit")))
		return -1; /* a tenant has no tenants and no audit key */
	if (parse_audit(kr, json_object_get(root, "audit")) < 0)
		return -1;
	if (parse_settings(kr, json_object_get(root, "settings")) < 0)
		return -1;
	return parse_tenants(kr, json_object_get(root, "tenants"));
}

static int parse_fields(atrest__keyring *kr, json_t *root)
{
	json_t *m = json_object_get(root, "master");
	json_int_t ver, gen, active;
	const char *sid = jstr(root, "store_id"), *mac = jstr(root, "mac");
	const char *kind = jstr(m, "kind"), *kid = jstr(m, "key_id");
	const char *params = jstr(m, "params"), *fmt = jstr(root, "format");

	if (!fmt || strcmp(fmt, KEYRING_FORMAT) || jint(root, "version", &ver) ||
		(ver != 1 && ver != 2) || jint(root, "generation", &gen) || gen < 0 ||
		jint(root, "active", &active) || active < 0 ||
		active > ATREST__DEK_ID_MAX || !sid || !mac || !kind || !kid ||
		strlen(kind) >= sizeof(kr->kind) || strlen(kid) >= sizeof(kr->key_id) ||
		atrest__unhex(kr->store_id, 16, sid) || atrest__unhex(kr->mac, 32, mac) ||
		parse_blob(kr->check, &kr->check_len, jstr(root, "check")))
		return -1;
	kr->version = (int)ver;
	kr->generation = (uint64_t)gen;
	kr->active = (uint32_t)active;
	strcpy(kr->kind, kind);
	strcpy(kr->key_id, kid);
	/* params: a string, null or absent (the MAC cannot tell null from ""). */
	if (!params && json_object_get(m, "params") &&
		!json_is_null(json_object_get(m, "params")))
		return -1;
	if (params && !(kr->params = strdup(params)))
		return -1;
	if (parse_v2(kr, root) < 0)
		return -1;
	return parse_keys(kr, json_object_get(root, "keys"));
}

int atrest__keyring_parse(atrest__keyring **out, const char *json, size_t len)
{
	atrest__keyring *kr = calloc(1, sizeof(*kr));
	json_error_t jerr;
	json_t *root;
	int bad;

	ENSURE(kr, ATREST_ERROR, "out of memory");
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	bad = !json_is_object(root) || parse_fields(kr, root) < 0;
	json_decref(root);
	if (bad) {
		atrest__keyring_free(kr);
		return atrest__error(ATREST_EINTEGRITY,
			"keyring damaged: not a valid atrest keyring (the store is NOT "
			"re-created; restore .atrest/keyring from a backup)");
	}
	*out = kr;
	return 0;
}

static json_t *dek_json(const atrest__dek *d)
{
	json_t *o = json_pack("{s:I, s:I, s:s}", "id", (json_int_t)d->id, "created",
		(json_int_t)d->created, "status", atrest__dek_status_name(d->status));
	char *w;

	if (!o || d->status == ATREST__DEK_DESTROYED)
		return o;
	w = atrest__b64(d->wrapped, d->wrapped_len);
	if (!w || json_object_set_new(o, "wrapped", json_string(w)) < 0) {
		json_decref(o);
		o = NULL;
	}
	free(w);
	return o;
}

/* Set o[k] = v (taken over); 1 when that failed. */
static int put(json_t *o, const char *k, json_t *v)
{
	return json_object_set_new(o, k, v) < 0;
}

static json_t *keys_json(const atrest__keyring *kr)
{
	json_t *keys = json_array();

	for (size_t i = 0; keys && i < kr->nkeys; i++)
		if (json_array_append_new(keys, dek_json(&kr->keys[i])) < 0) {
			json_decref(keys);
			keys = NULL;
		}
	return keys;
}

static json_t *settings_json(const atrest_settings *s)
{
	return json_pack("{s:s, s:I, s:I, s:I}", "cipher", atrest_cipher_name(s->cipher),
		"segment_size", (json_int_t)s->segment_size, "rotate_days",
		(json_int_t)s->rotate_days, "force_days", (json_int_t)s->force_days);
}

static json_t *tenants_json(const atrest__keyring *kr)
{
	json_t *arr = json_array(), *o;
	char id[33];

	for (size_t i = 0; arr && i < kr->ntenants; i++) {
		const atrest__tenant *t = &kr->tenants[i];
		atrest__hex(id, t->id, 16);
		o = json_pack("{s:s, s:s}", "name", t->name, "id", id);
		if (!o || (t->key_uri && put(o, "key_uri", json_string(t->key_uri))) ||
			(t->key_file && put(o, "key_file", json_string(t->key_file))) ||
			json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

static json_t *keyring_json(const atrest__keyring *kr, const uint8_t mac[32])
{
	char sid[33], machex[65], *check = atrest__b64(kr->check, kr->check_len);
	json_t *root = json_object();
	int bad = !check;

	atrest__hex(sid, kr->store_id, 16);
	atrest__hex(machex, mac, 32);
	bad |= put(root, "format", json_string(KEYRING_FORMAT));
	bad |= put(root, "version", json_integer(2));
	bad |= put(root, "store_id", json_string(sid));
	if (kr->tenant[0])
		bad |= put(root, "tenant", json_string(kr->tenant));
	bad |= put(root, "generation", json_integer((json_int_t)kr->generation));
	bad |= put(root, "settings", settings_json(&kr->settings));
	bad |= put(root, "master",
		json_pack("{s:s, s:s, s:s?}", "kind", kr->kind, "key_id", kr->key_id,
			"params", kr->params));
	bad |= put(root, "check", json_string(check ? check : ""));
	bad |= put(root, "active", json_integer((json_int_t)kr->active));
	bad |= put(root, "keys", keys_json(kr));
	if (kr->ntenants)
		bad |= put(root, "tenants", tenants_json(kr));
	if (kr->has_audit)
		bad |= put(root, "audit", audit_json(kr));
	bad |= put(root, "mac", json_string(machex));
	free(check);
	if (bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}

int atrest__keyring_serialize(char **out, size_t *out_len, atrest__keyring *kr)
{
	json_t *root;
	uint8_t mac[32];

	ENSURE(kr->mac_key, ATREST_EKEY, "keyring is locked");
	GUARD(check_active(kr));
	GUARD(atrest__settings_valid(&kr->settings));
	kr->version = 2; /* a version 1 keyring is written as version 2 */
	GUARD(keyring_mac(mac, kr));
	root = keyring_json(kr, mac);
	ENSURE(root, ATREST_ERROR, "out of memory");
	*out = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(root);
	ENSURE(*out, ATREST_ERROR, "out of memory");
	*out_len = strlen(*out);
	memcpy(kr->mac, mac, 32);
	return 0;
}

atrest__dek *atrest__keyring_find(atrest__keyring *kr, uint32_t id)
{
	for (size_t i = 0; i < kr->nkeys; i++)
		if (kr->keys[i].id == id)
			return &kr->keys[i];
	return NULL;
}

static int unwrap_dek(
	atrest__keyring *kr, atrest_keyprov *kp, atrest__dek *d, atrest__secret **out)
{
	uint8_t aad[64];
	int rc = atrest__kp_unwrap(kp, out, d->wrapped, d->wrapped_len, aad,
		wrap_aad(aad, kr, "atrest/v1 dek", d->id));

	if (rc == ATREST_EKEY)
		return atrest__error(ATREST_EINTEGRITY,
			"keyring damaged: data key %u does not unwrap", d->id);
	return rc;
}

/* Is d's cached key (if any) still to be trusted without the provider? */
static int fresh(const atrest__dek *d, const atrest__key_cache *c)
{
	return d->key &&
		(!c ||
			(atrest__now() - d->unwrapped_at < c->ttl &&
				d->uses < c->max_uses));
}

static int usable(atrest__dek **out, atrest__keyring *kr, uint32_t id)
{
	atrest__dek *d = atrest__keyring_find(kr, id);

	ENSURE(d, ATREST_EINTEGRITY,
		"data key %u is not in this store's keyring (object modified or from "
		"another store)",
		id);
	ENSURE(d->status != ATREST__DEK_DESTROYED, ATREST_EKEY,
		"data key %u was destroyed: its objects cannot be read", id);
	*out = d;
	return 0;
}

static void copy_out(uint8_t *out, atrest__dek *d)
{
	d->uses++;
	memcpy(out, d->key->data, ATREST__DEK_LEN);
}

int atrest__keyring_dek_lookup(uint8_t *out, atrest__dek_req *req, atrest__keyring *kr,
	uint32_t id, const atrest__key_cache *cache)
{
	atrest__dek *d;

	atrest__op_key(id);
	GUARD(usable(&d, kr, id));
	if (fresh(d, cache)) {
		atrest__obs_cache(ATREST__CACHE_HIT);
		copy_out(out, d);
		return 0;
	}
	if (d->key) /* expired: asked of the provider again */
		atrest__obs_cache(ATREST__CACHE_EVICT);
	atrest__obs_cache(ATREST__CACHE_MISS);
	req->id = id;
	memcpy(req->store_id, kr->store_id, 16);
	memcpy(req->wrapped, d->wrapped, d->wrapped_len);
	req->wrapped_len = d->wrapped_len;
	return 1;
}

int atrest__keyring_dek_unwrap(
	atrest__secret **out, const atrest__dek_req *req, atrest_keyprov *kp)
{
	atrest__keyring probe;
	atrest__dek d;

	memcpy(probe.store_id, req->store_id, 16);
	memset(&d, 0, sizeof(d));
	d.id = req->id;
	memcpy(d.wrapped, req->wrapped, req->wrapped_len);
	d.wrapped_len = req->wrapped_len;
	return unwrap_dek(&probe, kp, &d, out);
}

/*
 * An expired key keeps working while the provider is unreachable, for the
 * grace period; any other failure drops it.
 */
int atrest__keyring_dek_install(uint8_t *out, atrest__keyring *kr,
	const atrest__dek_req *req, atrest__secret *key, int rc,
	const atrest__key_cache *cache)
{
	atrest__dek *d;
	int same;

	if (usable(&d, kr, req->id) < 0) {
		atrest__secret_free(key);
		return usable(&d, kr, req->id);
	}
	same = d->wrapped_len == req->wrapped_len &&
		memcmp(d->wrapped, req->wrapped, req->wrapped_len) == 0;
	if (rc == 0 && same && !fresh(d, cache)) {
		atrest__secret_free(d->key);
		d->key = key;
		d->unwrapped_at = atrest__now();
		d->uses = 0;
		key = NULL;
	}
	if (rc == 0 && key) { /* someone else cached it meanwhile */
		d->uses++;
		memcpy(out, key->data, ATREST__DEK_LEN);
		atrest__secret_free(key);
		return 0;
	}
	if (rc == 0 || fresh(d, cache))
		return copy_out(out, d), 0;
	if (rc == ATREST_EUNAVAILABLE && d->key && cache &&
		atrest__now() - d->unwrapped_at < cache->ttl + cache->grace)
		return copy_out(out, d), 0;
	atrest__secret_free(d->key);
	d->key = NULL;
	return rc;
}

/* The same audit key (public half) in both keyrings. */
static int same_audit(const atrest__keyring *kr, const atrest__keyring *old)
{
	return kr->has_audit && old->has_audit &&
		memcmp(kr->audit_pub, old->audit_pub, 32) == 0;
}

void atrest__keyring_take_keys(atrest__keyring *kr, atrest__keyring *old)
{
	if (!kr->audit_seed && old->audit_seed && same_audit(kr, old)) {
		kr->audit_seed = old->audit_seed;
		old->audit_seed = NULL;
	}
	for (size_t i = 0; i < kr->nkeys; i++) {
		atrest__dek *d = &kr->keys[i], *o = atrest__keyring_find(old, d->id);
		if (!o || !o->key || d->key || d->status == ATREST__DEK_DESTROYED)
			continue;
		d->key = o->key;
		d->unwrapped_at = o->unwrapped_at;
		d->uses = o->uses;
		o->key = NULL;
	}
}

int atrest__keyring_copy_keys(atrest__keyring *kr, const atrest__keyring *from)
{
	if (!kr->audit_seed && from->audit_seed && same_audit(kr, from))
		GUARD(atrest__secret_dup(&kr->audit_seed, from->audit_seed->data, 32));
	for (size_t i = 0; i < kr->nkeys; i++) {
		atrest__dek *d = &kr->keys[i];
		const atrest__dek *o =
			atrest__keyring_find((atrest__keyring *)from, d->id);
		if (!o || !o->key || d->key || d->status == ATREST__DEK_DESTROYED)
			continue;
		GUARD(atrest__secret_dup(&d->key, o->key->data, o->key->len));
		d->unwrapped_at = o->unwrapped_at;
		d->uses = o->uses;
	}
	return 0;
}

int atrest__keyring_unwrap_all(atrest__keyring *kr, atrest_keyprov *kp)
{
	if (kr->has_audit)
		GUARD(unwrap_audit(kr, kp));
	for (size_t i = 0; i < kr->nkeys; i++) {
		atrest__dek *d = &kr->keys[i];
		if (d->key || d->status == ATREST__DEK_DESTROYED)
			continue;
		GUARD(unwrap_dek(kr, kp, d, &d->key));
		d->unwrapped_at = atrest__now();
		d->uses = 0;
	}
	return 0;
}

int atrest__keyring_adopt(atrest__keyring *kr, atrest__keyring *old)
{
	uint8_t mac[32];

	ENSURE(memcmp(kr->store_id, old->store_id, 16) == 0, ATREST_EINTEGRITY,
		"keyring now belongs to another store");
	if (!old->check_secret || kr->check_len != old->check_len ||
		memcmp(kr->check, old->check, kr->check_len) != 0)
		return 0;
	GUARD(atrest__secret_dup(
		&kr->check_secret, old->check_secret->data, old->check_secret->len));
	GUARD(derive_mac_key(kr, kr->check_secret));
	GUARD(keyring_mac(mac, kr));
	ENSURE(atrest__ct_equal(mac, kr->mac, 32), ATREST_EINTEGRITY,
		"keyring damaged: its MAC does not match (edited or corrupted)");
	GUARD(check_active(kr));
	return 1;
}

/* The audit seed under to, into out (in place where the service can). */
static int audit_rewrap(
	atrest__keyring *kr, atrest_keyprov *from, atrest_keyprov *to, atrest__dek *out)
{
	uint8_t aad[64];
	size_t n = wrap_aad(aad, kr, "atrest/v1 audit", 0);

	if (!kr->has_audit)
		return 0;
	if (!kr->audit_seed && from == to && atrest__kp_can_rewrap(to))
		return atrest__kp_rewrap(to, out->wrapped, &out->wrapped_len,
			kr->audit_wrapped, kr->audit_wrapped_len, aad, n);
	GUARD(unwrap_audit(kr, from));
	return atrest__kp_wrap(
		to, out->wrapped, &out->wrapped_len, kr->audit_seed->data, aad, n);
}

/*
 * New wrapped blobs for every live key, the audit key (at nk[nkeys]) and
 * the check, into scratch first.
 */
static int rewrap_all(atrest__keyring *kr, atrest_keyprov *from, atrest_keyprov *to,
	atrest__dek *nk, const atrest__secret *check_secret, uint8_t *check,
	size_t *check_len)
{
	uint8_t aad[64];

	for (size_t i = 0; i < kr->nkeys; i++) {
		atrest__dek *d = &kr->keys[i];
		nk[i] = *d;
		nk[i].key = NULL;
		if (d->status == ATREST__DEK_DESTROYED)
			continue;
		/* A service that rewraps in place (Vault Transit): the data key
		 * never comes into this process for the move. */
		if (!d->key && from == to && atrest__kp_can_rewrap(to)) {
			GUARD(atrest__kp_rewrap(to, nk[i].wrapped, &nk[i].wrapped_len,
				d->wrapped, d->wrapped_len, aad,
				wrap_aad(aad, kr, "atrest/v1 dek", d->id)));
			continue;
		}
		if (!d->key) {
			GUARD(unwrap_dek(kr, from, d, &d->key));
			d->unwrapped_at = atrest__now();
		}
		GUARD(atrest__kp_wrap(to, nk[i].wrapped, &nk[i].wrapped_len, d->key->data,
			aad, wrap_aad(aad, kr, "atrest/v1 dek", d->id)));
	}
	GUARD(audit_rewrap(kr, from, to, &nk[kr->nkeys]));
	return atrest__kp_wrap(to, check, check_len, check_secret->data, aad,
		wrap_aad(aad, kr, "atrest/v1 check", 0));
}

/*
 * A new random check secret, and so a new MAC key: whoever still holds the
 * old master key (and an old copy of the keyring, whose check it unwraps)
 * can no longer compute a MAC this keyring accepts.
 */
static int new_check_secret(atrest__keyring *probe, atrest__secret **out)
{
	GUARD(atrest__secret_new(out, 32));
	GUARD(atrest__rand((*out)->data, 32));
	probe->mac_key = NULL;
	return derive_mac_key(probe, *out);
}

/* Install what rewrap prepared in probe (parameters, check, MAC key). */
static void rewrap_commit(atrest__keyring *kr, atrest__keyring *probe,
	const atrest__dek *nk, const uint8_t *check, size_t check_len)
{
	for (size_t i = 0; i < kr->nkeys; i++) {
		memcpy(kr->keys[i].wrapped, nk[i].wrapped, nk[i].wrapped_len);
		kr->keys[i].wrapped_len = nk[i].wrapped_len;
	}
	if (kr->has_audit) {
		memcpy(kr->audit_wrapped, nk[kr->nkeys].wrapped,
			nk[kr->nkeys].wrapped_len);
		kr->audit_wrapped_len = nk[kr->nkeys].wrapped_len;
	}
	memcpy(kr->check, check, check_len);
	kr->check_len = check_len;
	memcpy(kr->kind, probe->kind, sizeof(kr->kind));
	memcpy(kr->key_id, probe->key_id, sizeof(kr->key_id));
	free(kr->params);
	kr->params = probe->params;
	probe->params = NULL;
	atrest__secret_free(kr->check_secret);
	kr->check_secret = probe->check_secret;
	probe->check_secret = NULL;
	atrest__secret_free(kr->mac_key);
	kr->mac_key = probe->mac_key;
	probe->mac_key = NULL;
}

int atrest__keyring_rewrap(atrest__keyring *kr, atrest_keyprov *from, atrest_keyprov *to)
{
	atrest__keyring probe = *kr;
	atrest__dek *nk = calloc(kr->nkeys + 1, sizeof(*nk)); /* + the audit key */
	uint8_t check[ATREST_WRAPPED_MAX];
	size_t check_len = 0;
	int rc;

	probe.params = NULL;
	probe.check_secret = NULL;
	probe.mac_key = NULL;
	ENSURE(nk, ATREST_ERROR, "out of memory");
	ENSURE_OUT(kr->check_secret, ATREST_EKEY, "keyring is locked");
	/* Fresh provider parameters (a new passphrase salt, say). */
	GUARD_OUT(bind_provider(&probe, to));
	GUARD_OUT(new_check_secret(&probe, &probe.check_secret));
	GUARD_OUT(rewrap_all(kr, from, to, nk, probe.check_secret, check, &check_len));
	rewrap_commit(kr, &probe, nk, check, check_len);
out:
	free(probe.params);
	atrest__secret_free(probe.check_secret);
	atrest__secret_free(probe.mac_key);
	atrest__wipe(nk, (kr->nkeys + 1) * sizeof(*nk));
	free(nk);
	return rc;
}

int atrest__keyring_expose(atrest__keyring *kr, atrest_keyprov *kp, uint32_t id)
{
	atrest__dek *d = atrest__keyring_find(kr, id);

	ENSURE(d, ATREST_ENOTFOUND, "no data key %u", id);
	ENSURE(d->status != ATREST__DEK_DESTROYED, ATREST_EINVAL,
		"data key %u is already destroyed", id);
	if (id == kr->active)
		GUARD(atrest__keyring_rotate(kr, kp));
	d = atrest__keyring_find(kr, id); /* rotate may move the array */
	d->status = ATREST__DEK_EXPOSED;
	return 0;
}

int atrest__keyring_destroy(atrest__keyring *kr, uint32_t id)
{
	atrest__dek *d = atrest__keyring_find(kr, id);

	ENSURE(d, ATREST_ENOTFOUND, "no data key %u", id);
	ENSURE(id != kr->active, ATREST_ERROR,
		"data key %u is the active key: rotate first ('atrest rotate')", id);
	d->status = ATREST__DEK_DESTROYED;
	atrest__wipe(d->wrapped, sizeof(d->wrapped));
	d->wrapped_len = 0;
	atrest__secret_free(d->key);
	d->key = NULL;
	return 0;
}

static int64_t clock_offset;

int64_t atrest__now(void)
{
	return (int64_t)time(NULL) + __atomic_load_n(&clock_offset, __ATOMIC_RELAXED);
}

#ifdef ATREST_TEST_HOOKS
void atrest__clock_offset(int64_t seconds)
{
	__atomic_store_n(&clock_offset, seconds, __ATOMIC_RELAXED);
}
#endif

void atrest__keyring_shred(atrest__keyring *kr)
{
	for (size_t i = 0; i < kr->nkeys; i++) {
		atrest__dek *d = &kr->keys[i];
		d->status = ATREST__DEK_DESTROYED;
		atrest__wipe(d->wrapped, sizeof(d->wrapped));
		d->wrapped_len = 0;
		atrest__secret_free(d->key);
		d->key = NULL;
	}
	kr->active = 0;
}

int atrest__settings_valid(const atrest_settings *s)
{
	ENSURE(s->cipher >= 1 && s->cipher <= 3, ATREST_EINVAL, "unknown cipher %d",
		s->cipher);
	ENSURE(s->segment_size >= ATREST_SEGMENT_SIZE_MIN &&
			s->segment_size <= ATREST_SEGMENT_SIZE_MAX,
		ATREST_EINVAL, "segment size %u out of range (%u to %u)", s->segment_size,
		ATREST_SEGMENT_SIZE_MIN, ATREST_SEGMENT_SIZE_MAX);
	ENSURE(s->segment_size % 16 == 0, ATREST_EINVAL,
		"segment size %u is not a multiple of 16", s->segment_size);
	ENSURE(s->rotate_days >= 1 && s->force_days >= s->rotate_days &&
			s->force_days <= 36500,
		ATREST_EINVAL,
		"rotation policy out of range (1 <= rotate-days <= force-days <= 36500)");
	return 0;
}

atrest__tenant *atrest__keyring_tenant(atrest__keyring *kr, const char *name)
{
	for (size_t i = 0; i < kr->ntenants; i++)
		if (strcmp(kr->tenants[i].name, name) == 0)
			return &kr->tenants[i];
	return NULL;
}

static void tenant_clear(atrest__tenant *t)
{
	free(t->key_uri);
	free(t->key_file);
	memset(t, 0, sizeof(*t));
}

int atrest__keyring_tenant_add(atrest__keyring *kr, const atrest__tenant *t)
{
	atrest__tenant *v, c = *t;

	ENSURE(!atrest__keyring_tenant(kr, t->name), ATREST_EEXISTS,
		"tenant '%s' already exists", t->name);
	ENSURE(kr->ntenants < MAX_KEYS, ATREST_ERROR, "too many tenants");
	c.key_uri = t->key_uri ? strdup(t->key_uri) : NULL;
	c.key_file = t->key_file ? strdup(t->key_file) : NULL;
	v = realloc(kr->tenants, (kr->ntenants + 1) * sizeof(*v));
	if (!v || (t->key_uri && !c.key_uri) || (t->key_file && !c.key_file)) {
		tenant_clear(&c);
		if (v)
			kr->tenants = v;
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	kr->tenants = v;
	v[kr->ntenants++] = c;
	return 0;
}

void atrest__keyring_tenant_remove(atrest__keyring *kr, const char *name)
{
	atrest__tenant *t = atrest__keyring_tenant(kr, name);

	if (!t)
		return;
	tenant_clear(t);
	memmove(t, t + 1, (size_t)(kr->tenants + kr->ntenants - (t + 1)) * sizeof(*t));
	kr->ntenants--;
}

void atrest__keyring_free(atrest__keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->ntenants; i++)
		tenant_clear(&kr->tenants[i]);
	free(kr->tenants);
	for (size_t i = 0; i < kr->nkeys; i++)
		atrest__secret_free(kr->keys[i].key);
	free(kr->keys);
	free(kr->params);
	atrest__secret_free(kr->mac_key);
	atrest__secret_free(kr->check_secret);
	atrest__secret_free(kr->audit_seed);
	atrest__wipe(kr, sizeof(*kr));
	free(kr);
}
