/*
 * Opening and creating stores: backend and key provider set-up, the
 * keyring's read-modify-conditional-write protocol, refresh and rollback
 * detection, the settings kept in the keyring, and switching a handle to a
 * tenant.  Object I/O lives in object.c, the tenant registry in tenant.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "crypto.h"
#include "floor.h"
#include "format.h"
#include "names.h"
#include "store_int.h"
#include "upload_int.h"

#define SETTINGS_V1 ".atrest/settings.json" /* beside version 1 keyrings only */
#define KEYRING_MAX (64u * 1024 * 1024)
#define UPDATE_TRIES 2000 /* conditional puts lost before an update gives up */
#define READ_TRIES 20     /* reads of a file replaced while being read */

static const char *CIPHER_NAMES[] = {
	NULL, "aes-256-gcm", "chacha20-poly1305", "aes-256-cbc-hmac-sha256"};

const char *atrest_cipher_name(int cipher)
{
	return cipher >= 1 && cipher <= 3 ? CIPHER_NAMES[cipher] : "unknown";
}

int atrest_cipher_from_name(const char *name)
{
	for (int i = 1; name && i <= 3; i++)
		if (strcmp(name, CIPHER_NAMES[i]) == 0)
			return i;
	return atrest__error(ATREST_EINVAL,
		"unknown cipher '%s' (aes-256-gcm, chacha20-poly1305 or "
		"aes-256-cbc-hmac-sha256)",
		name ? name : "");
}

/* One read of a whole small file (read_file retries it). */
static int read_file_once(atrest_backend *b, const char *key, char **out, size_t *len,
	size_t max, char *etag)
{
	atrest_backend_reader *r;
	size_t got = 0;
	char *buf;
	int rc;

	GUARD(atrest__b_open_read(b, &r, key));
	if (r->size > max) {
		atrest__br_close(r);
		return atrest__error(ATREST_EINTEGRITY, "%s is too large", key);
	}
	buf = malloc(r->size + 1);
	if (!buf) {
		atrest__br_close(r);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	rc = atrest__br_pread(r, buf, r->size, 0, &got);
	if (rc == 0 && got != r->size)
		rc = atrest__error(ATREST_ERROR, "%s changed while being read", key);
	if (rc == 0 && etag)
		memcpy(etag, r->etag, ATREST_BACKEND_ETAG_MAX);
	atrest__br_close(r);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/*
 * An object store's reader fails with ATREST_ECONFLICT when the file is
 * replaced between two of its reads (S3: a keyring larger than the first
 * GET, updated meanwhile): read the new version instead.
 */
int atrest__store_read_file(atrest_backend *b, const char *key, char **out, size_t *len,
	size_t max, char *etag)
{
	int rc, tries = 0;

	while ((rc = read_file_once(b, key, out, len, max, etag)) == ATREST_ECONFLICT &&
		++tries < READ_TRIES)
		;
	return rc;
}

int atrest__store_write_file(atrest_backend *b, const char *key, const void *buf,
	size_t len, unsigned int flags, const char *etag)
{
	atrest_backend_writer *w;
	int rc;

	GUARD(atrest__b_open_write(b, &w, key, flags, etag));
	rc = atrest__bw_write(w, buf, len);
	if (rc < 0) {
		atrest__bw_abort(w);
		return rc;
	}
	return atrest__bw_commit(w);
}

int atrest__store_key(char *out, size_t cap, const atrest_store *st, const char *name)
{
	int own = strncmp(name, ".atrest/", 8) == 0, n;

	if (own && st->tenant[0])
		n = snprintf(out, cap, ATREST__TENANTS_DIR "%s/%s", st->tenant, name + 8);
	else
		n = snprintf(out, cap, "%s%s", own ? "" : st->prefix, name);

	ENSURE(n >= 0 && (size_t)n < cap, ATREST_EINVAL, "name too long");
	return 0;
}

/* ---- settings ---- */

static int settings_default(atrest_settings *s, int cipher, uint32_t segsize)
{
	s->version = ATREST_SETTINGS_VERSION;
	s->cipher = cipher ? cipher : ATREST_CIPHER_AES_256_GCM;
	s->segment_size = segsize ? segsize : ATREST_SEGMENT_SIZE_DEFAULT;
	s->rotate_days = 30;
	s->force_days = 90;
	GUARD(atrest__settings_valid(s));
	return atrest__cipher_allowed(s->cipher);
}

/*
 * A version 1 keyring kept its settings in settings.json, outside the MAC;
 * they are folded into the keyring (and the file removed) by its next
 * update.
 */
static int settings_v1(atrest__keyring *kr, atrest_backend *b)
{
	char *text;
	size_t len;
	json_t *root;
	json_int_t seg = 0, rot = 0, force = 0;
	const char *cipher = NULL;
	int rc = atrest__store_read_file(b, SETTINGS_V1, &text, &len, 65536, NULL);

	if (rc == ATREST_ENOTFOUND)
		return settings_default(&kr->settings, 0, 0);
	GUARD(rc);
	root = json_loadb(text, len, 0, NULL);
	free(text);
	rc = json_unpack(root, "{s:s, s:I, s:I, s:I}", "cipher", &cipher, "segment_size",
		&seg, "rotate_days", &rot, "force_days", &force);
	if (rc == 0) {
		atrest_settings *s = &kr->settings;
		s->version = ATREST_SETTINGS_VERSION;
		s->cipher = atrest_cipher_from_name(cipher);
		s->segment_size = (uint32_t)seg;
		s->rotate_days = (uint32_t)rot;
		s->force_days = (uint32_t)force;
		rc = seg > 0 && seg <= ATREST_SEGMENT_SIZE_MAX && rot > 0 && force > 0 &&
				rot < 100000 && force < 100000
			? atrest__settings_valid(s)
			: -1;
	}
	json_decref(root);
	ENSURE(rc == 0, ATREST_EINTEGRITY,
		"store settings (%s) are damaged; fix or remove the file", SETTINGS_V1);
	return 0;
}

/* ---- reading and authenticating a keyring ---- */

static int keyring_read(atrest__keyring **out, atrest_backend *b, const char *key,
	char etag[ATREST_BACKEND_ETAG_MAX])
{
	char *text;
	size_t len;
	int rc;

	*out = NULL;
	GUARD(atrest__store_read_file(b, key, &text, &len, KEYRING_MAX, etag));
	rc = atrest__keyring_parse(out, text, len);
	free(text);
	if (rc == 0 && (*out)->version == 1)
		rc = settings_v1(*out, b);
	if (rc < 0) {
		atrest__keyring_free(*out);
		*out = NULL;
	}
	return rc;
}

/*
 * Unlock kr with the handle's master key or, failing that, the old one (a
 * master-key change in progress); *by tells which worked.  A tenant with a
 * key of its own has no old one.
 */
static int unlock_any(atrest_store *st, atrest__keyring *kr, atrest_keyprov **by)
{
	atrest_keyprov *kp = st->own_kp ? st->own_kp : st->kp;
	atrest_keyprov *old = st->own_kp ? NULL : st->old_kp;
	atrest__saved_error first;
	int rc = atrest__keyring_unlock(kr, kp);

	*by = kp;
	if (rc != ATREST_EKEY || !old)
		return rc;
	atrest__error_save(&first);
	if (atrest__keyring_unlock(kr, old) == 0) {
		*by = old;
		return 0;
	}
	return atrest__error(
		ATREST_EKEY, "%s (the old key does not open it either)", first.message);
}

/*
 * Authenticate a keyring just read: through the copy in memory when its
 * check blob is unchanged (no provider call), else with a provider.  It
 * must be this handle's keyring (the id it opened), and not older than one
 * seen before.
 */
static int verify(atrest_store *st, atrest__keyring *kr, atrest_keyprov **by, int final)
{
	uint64_t seen = 0;
	int rc = 0, same = 1;

	pthread_mutex_lock(&st->mu);
	*by = st->cur_kp;
	same = !st->kr || memcmp(kr->store_id, st->store_id, 16) == 0;
	if (st->kr && same) { /* another keyring's keys are never adopted */
		rc = atrest__keyring_adopt(kr, st->kr);
		seen = st->kr->generation;
	}
	pthread_mutex_unlock(&st->mu);
	if (!same && st->tenant[0])
		return atrest__error(ATREST_ENOTFOUND,
			"tenant '%s' of %s was shredded and added again: open it again",
			st->tenant, st->location);
	ENSURE(same, ATREST_EINTEGRITY,
		"the keyring of %s was replaced by another store's (a different id)",
		st->location);
	GUARD(rc);
	if (rc == 0)
		GUARD(unlock_any(st, kr, by));
	ENSURE(kr->generation >= seen, ATREST_EINTEGRITY,
		"the keyring of %s went back from generation %llu to %llu: it was "
		"replaced by an older copy",
		st->location, (unsigned long long)seen,
		(unsigned long long)kr->generation);
	ENSURE(strcmp(kr->tenant, st->tenant) == 0, ATREST_EINTEGRITY,
		"keyring of %s belongs to tenant '%s', not '%s' (replaced)", st->location,
		kr->tenant, st->tenant);
	return atrest__floor_check(
		st->state_dir, kr->store_id, kr->generation, st->location, final);
}

/*
 * Authenticate *kr, just read.  One older than this host has seen may have
 * been read just before another process replaced it: read again while each
 * read finds a newer one; a keyring that stays older was rolled back.
 * *kr is freed (and NULL) on failure.
 */
static int settle(atrest_store *st, atrest__keyring **kr, char *etag, atrest_keyprov **by)
{
	uint64_t last;
	int rc = verify(st, *kr, by, 0);

	for (int tries = 0; rc == 1; tries++) {
		last = (*kr)->generation;
		atrest__keyring_free(*kr);
		rc = keyring_read(kr, st->b, st->kr_key, etag);
		if (rc == 0)
			rc = verify(
				st, *kr, by, tries >= 100 || (*kr)->generation <= last);
	}
	if (rc < 0) {
		atrest__keyring_free(*kr);
		*kr = NULL;
	}
	return rc;
}

/* Make kr (authenticated, unlocked by by) the handle's keyring. */
static void publish(atrest_store *st, atrest__keyring *kr, atrest_keyprov *by)
{
	atrest__keyring *old;

	pthread_mutex_lock(&st->mu);
	old = st->kr;
	if (old)
		atrest__keyring_take_keys(kr, old);
	else
		memcpy(st->store_id, kr->store_id, 16);
	st->kr = kr;
	st->cur_kp = by;
	pthread_mutex_unlock(&st->mu);
	atrest__keyring_free(old);
}

/* The keyring in memory is the one in the store: nothing to do. */
static int unchanged(atrest_store *st, const atrest__keyring *kr)
{
	int same;

	pthread_mutex_lock(&st->mu);
	same = st->kr && kr->generation == st->kr->generation &&
		kr->check_len == st->kr->check_len &&
		memcmp(kr->check, st->kr->check, kr->check_len) == 0 &&
		memcmp(kr->mac, st->kr->mac, 32) == 0;
	pthread_mutex_unlock(&st->mu);
	return same;
}

static int no_store(atrest_store *st)
{
	return atrest__error(ATREST_ENOTFOUND,
		"no atrest store at %s (no keyring yet: 'atrest init', or the first "
		"put or migrate, creates one)",
		st->location);
}

/* Swap in a re-read keyring that differs from ours (update_mu held). */
static int reload(atrest_store *st)
{
	atrest__keyring *kr = NULL;
	atrest_keyprov *by;
	int rc = keyring_read(&kr, st->b, st->kr_key, NULL);

	if (rc == ATREST_ENOTFOUND && st->tenant[0])
		return atrest__error(ATREST_ENOTFOUND,
			"tenant '%s' of %s has no keyring any more (shredded)",
			st->tenant, st->location);
	if (rc == ATREST_ENOTFOUND) {
		pthread_mutex_lock(&st->mu);
		rc = st->kr ? atrest__error(ATREST_EINTEGRITY,
				      "the keyring of %s is gone (restore "
				      ".atrest/keyring from a backup)",
				      st->location)
			    : 0;
		pthread_mutex_unlock(&st->mu);
		return rc;
	}
	GUARD(rc);
	if (unchanged(st, kr)) {
		atrest__keyring_free(kr);
		return 0;
	}
	GUARD(settle(st, &kr, NULL, &by));
	publish(st, kr, by);
	return 0;
}

static int has_keyring(atrest_store *st)
{
	int has;

	pthread_mutex_lock(&st->mu);
	has = st->kr != NULL;
	pthread_mutex_unlock(&st->mu);
	return has;
}

int atrest__store_refresh(atrest_store *st, int force)
{
	int64_t now = atrest__now();
	int rc = 0;

	if (force || now - __atomic_load_n(&st->last_refresh, __ATOMIC_RELAXED) >= 1) {
		pthread_mutex_lock(&st->update_mu);
		if (force || now - st->last_refresh >= 1) {
			rc = reload(st);
			__atomic_store_n(&st->last_refresh, now, __ATOMIC_RELAXED);
		}
		pthread_mutex_unlock(&st->update_mu);
	}
	/*
	 * Rewrapped under a master key we do not hold: keep working with the
	 * keys already unwrapped (docs/OPERATIONS.md); updates stay refused.
	 */
	if (rc == ATREST_EKEY) {
		__atomic_store_n(&st->foreign_master, 1, __ATOMIC_RELAXED);
		rc = 0;
	}
	GUARD(rc);
	return has_keyring(st) ? 0 : no_store(st);
}

/* ---- the update protocol ---- */

/* A short random pause after a lost race, growing with the attempts. */
void atrest__store_backoff(int tries)
{
	unsigned char r = 0;
	long max_us = tries < 6 ? 1000L << tries : 50000;
	struct timespec ts;

	atrest__rand(&r, 1);
	ts.tv_sec = 0;
	ts.tv_nsec = (max_us * r / 256 + 100) * 1000;
	nanosleep(&ts, NULL);
}

static int update_once(atrest_store *st, atrest__keyring_op op, void *arg)
{
	char etag[ATREST_BACKEND_ETAG_MAX], *text = NULL;
	atrest__keyring *kr = NULL;
	atrest_keyprov *by;
	size_t len;
	int rc, was_v1;

	rc = keyring_read(&kr, st->b, st->kr_key, etag);
	if (rc == ATREST_ENOTFOUND)
		return has_keyring(st) ? reload(st) : no_store(st);
	GUARD(rc);
	GUARD(settle(st, &kr, etag, &by));
	was_v1 = kr->version == 1;
	GUARD_OUT(op(st, kr, &by, arg));
	kr->generation++;
	GUARD_OUT(atrest__keyring_serialize(&text, &len, kr));
	GUARD_OUT(atrest__store_write_file(
		st->b, st->kr_key, text, len, ATREST_BACKEND_IF_MATCH, etag));
	if (was_v1) /* its settings now live in the keyring */
		atrest__b_remove(st->b, SETTINGS_V1);
	atrest__floor_check(st->state_dir, kr->store_id, kr->generation, st->location, 1);
	publish(st, kr, by);
	kr = NULL;
out:
	if (text)
		atrest__wipe(text, len);
	free(text);
	atrest__keyring_free(kr);
	return rc;
}

int atrest__store_update(atrest_store *st, atrest__keyring_op op, void *arg)
{
	int rc, tries = 0;

	pthread_mutex_lock(&st->update_mu);
	while ((rc = update_once(st, op, arg)) == ATREST_ECONFLICT &&
		++tries < UPDATE_TRIES)
		atrest__store_backoff(tries);
	__atomic_store_n(&st->last_refresh, atrest__now(), __ATOMIC_RELAXED);
	pthread_mutex_unlock(&st->update_mu);
	if (rc == ATREST_ECONFLICT)
		atrest__error_prefix("the keyring of %s kept changing (%d attempts)",
			st->location, tries);
	return rc;
}

/*
 * Every data key is unwrapped (from the handle's cache where it can be)
 * before the new master key is bound: binding may change the provider's
 * state (a passphrase's new salt), and from may be the same provider as to.
 */
static int rewrap_op(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	atrest_keyprov *to = arg;
	int rc;

	pthread_mutex_lock(&st->mu);
	rc = st->kr ? atrest__keyring_copy_keys(kr, st->kr) : 0;
	pthread_mutex_unlock(&st->mu);
	GUARD(rc);
	/* Unwrapped first, as binding to the new key may change what the old
	 * one needs; a key service that rewraps in place is left to do so. */
	if (!(*kp == to && atrest__kp_can_rewrap(to)))
		GUARD(atrest__keyring_unwrap_all(kr, *kp));
	GUARD(atrest__keyring_rewrap(kr, *kp, to));
	*kp = to;
	return 0;
}

int atrest__store_rewrap_one(atrest_store *st, atrest_keyprov *to)
{
	return atrest__store_update(st, rewrap_op, to);
}

void atrest__store_retire(atrest_store *st, atrest_keyprov *kp)
{
	atrest_keyprov **v;

	if (!kp)
		return;
	pthread_mutex_lock(&st->mu);
	v = realloc(st->retired, (st->nretired + 1) * sizeof(*v));
	if (v) {
		st->retired = v;
		st->retired[st->nretired++] = kp;
	}
	pthread_mutex_unlock(&st->mu);
	if (!v) /* no room to keep it: nothing can be using it but us */
		atrest_keyprov_free(kp);
}

/* ---- creating a store ---- */

typedef struct object_probe {
	atrest_backend *b;
	char name[ATREST_NAME_MAX + 1];
} object_probe;

/* Stop (1) at the first atrest object: its magic, not its name, tells. */
static int is_atrest(const char *key, uint64_t size, int64_t mtime, void *p)
{
	object_probe *pr = p;
	atrest_backend_reader *r;
	uint8_t head[ATREST__MAGIC_LEN];
	size_t got = 0;

	(void)mtime;
	if (size < ATREST__MAGIC_LEN || atrest__b_open_read(pr->b, &r, key) < 0)
		return 0;
	if (atrest__br_pread(r, head, sizeof(head), 0, &got) == 0 &&
		atrest__is_object(head, got))
		snprintf(pr->name, sizeof(pr->name), "%s", key);
	atrest__br_close(r);
	return pr->name[0] ? 1 : 0;
}

/*
 * A new keyring beside atrest objects would orphan them all (a lost or
 * deleted keyring): refused unless the caller decided so (FORCE_NEW).
 */
static int refuse_beside_objects(atrest_store *st)
{
	object_probe pr = {st->b, ""};
	int rc;

	if (st->flags & ATREST_STORE_FORCE_NEW)
		return 0;
	rc = atrest__b_list(st->b, "", is_atrest, &pr);
	if (rc == 0) /* a store of snapshots only */
		rc = atrest__b_list(st->b, ".atrest/snap/", is_atrest, &pr);
	GUARD(rc);
	ENSURE(!pr.name[0], ATREST_EINTEGRITY,
		"%s holds atrest objects ('%s', ...) but no keyring: restore "
		".atrest/keyring from a backup (a new keyring would leave them "
		"unreadable; 'atrest init --force' makes one anyway)",
		st->location, pr.name);
	return 0;
}

/* A new store: one keyring (settings inside), created exclusively. */
static int store_create(atrest_store *st, const atrest_store_options *o)
{
	atrest__keyring *kr = NULL;
	atrest_settings s;
	char *text = NULL;
	size_t len = 0;
	int rc;

	GUARD(refuse_beside_objects(st));
	GUARD(settings_default(&s, o->cipher, o->segment_size));
	GUARD(atrest__keyring_create(&kr, st->kp));
	kr->settings = s;
	GUARD_OUT(atrest__keyring_audit_make(kr, st->kp)); /* the store's only */
	GUARD_OUT(atrest__keyring_serialize(&text, &len, kr));
	/* ATREST_EEXISTS: another process created it first; use theirs. */
	GUARD_OUT(atrest__store_write_file(
		st->b, st->kr_key, text, len, ATREST_BACKEND_IF_ABSENT, NULL));
	atrest__floor_check(st->state_dir, kr->store_id, kr->generation, st->location, 1);
	publish(st, kr, st->kp);
	kr = NULL;
out:
	free(text);
	atrest__keyring_free(kr);
	return rc;
}

/* Read and authenticate the keyring at kr_key (1: there is none). */
static int keyring_load(atrest_store *st)
{
	atrest__keyring *kr;
	atrest_keyprov *by;
	int rc = keyring_read(&kr, st->b, st->kr_key, NULL);

	if (rc == ATREST_ENOTFOUND)
		return 1;
	GUARD(rc);
	GUARD(settle(st, &kr, NULL, &by));
	publish(st, kr, by);
	st->last_refresh = atrest__now();
	return 0;
}

static int keyring_open(atrest_store *st, const atrest_store_options *o)
{
	int tenant = o->tenant && *o->tenant, created = 0, rc = keyring_load(st);

	GUARD(rc);
	if (rc == 1 && o->create && !tenant) { /* a tenant never makes a store */
		rc = store_create(st, o);
		created = rc == 0;
		if (rc == ATREST_EEXISTS)
			rc = keyring_load(st);
		GUARD(rc);
	}
	ENSURE(!(o->create && (st->flags & ATREST_STORE_EXCL) && !created),
		ATREST_EEXISTS, "store %s already exists", st->location);
	if (rc == 1) /* a directory without a keyring: plain files only */
		return tenant ? no_store(st) : 0;
	/* Opened with the old master key: move the keyring to the new one. */
	if (st->old_kp && st->cur_kp == st->old_kp)
		GUARD(atrest__store_rewrap_all(st, st->kp));
	return 0;
}

/* ---- tenants ---- */

/* The tenant's own master key, from the registry's reference. */
static int tenant_key(atrest_store *st, const atrest__tenant *t)
{
	if (t->key_uri)
		GUARD(atrest_keyprov_from_uri(&st->own_kp, t->key_uri));
	else if (t->key_file)
		GUARD(atrest_keyprov_file(&st->own_kp, t->key_file));
	return 0;
}

/*
 * Make the handle tenant name's: its keyring (which must be the one the
 * store's authenticated registry names) and its objects' prefix.
 */
static int tenant_switch(atrest_store *st, const char *name)
{
	atrest__tenant t, *e;
	atrest__keyring *store_kr;
	int rc;

	GUARD(atrest__tenant_check(name));
	pthread_mutex_lock(&st->mu);
	e = st->kr ? atrest__keyring_tenant(st->kr, name) : NULL;
	if (e)
		t = *e;
	pthread_mutex_unlock(&st->mu);
	ENSURE(e, ATREST_ENOTFOUND,
		"no tenant '%s' in store %s (add it with 'atrest tenant add %s')", name,
		st->location, name);
	GUARD(tenant_key(st, &t)); /* t's strings are only read while st->kr lives */
	pthread_mutex_lock(&st->mu);
	store_kr = st->kr;
	st->kr = NULL;
	pthread_mutex_unlock(&st->mu);
	atrest__keyring_free(store_kr);
	snprintf(st->tenant, sizeof(st->tenant), "%s", name);
	snprintf(st->prefix, sizeof(st->prefix), ATREST__TENANTS_DIR "%s/objects/", name);
	snprintf(st->kr_key, sizeof(st->kr_key), ATREST__TENANTS_DIR "%s/keyring", name);
	rc = keyring_load(st);
	GUARD(rc);
	ENSURE(rc == 0, ATREST_ENOTFOUND,
		"tenant '%s' of %s has no keyring (an interrupted 'tenant add' or "
		"'tenant shred': run 'atrest tenant shred %s' to finish)",
		name, st->location, name);
	ENSURE(memcmp(st->store_id, t.id, 16) == 0, ATREST_EINTEGRITY,
		"the keyring of tenant '%s' is not the one the store registered "
		"(replaced or copied from elsewhere)",
		name);
	if (st->cur_kp == st->old_kp && st->old_kp)
		GUARD(atrest__store_rewrap_one(st, st->kp));
	return 0;
}

/* ---- handles ---- */

static int store_setup(atrest_store *st, const atrest_store_options *o)
{
	const char *path = o->path && *o->path ? o->path : "./atrest-store";
	const char *tenant = o->tenant && *o->tenant ? o->tenant : NULL;

	pthread_mutex_init(&st->pool_mu, NULL);
	GUARD(atrest__check_version(
		o->version, ATREST_STORE_OPTIONS_VERSION, "atrest_store_options"));
	st->pool = o->version >= 2 ? o->pool : NULL;
	st->threads = st->pool ? atrest__pool_slots(st->pool)
			       : (o->threads ? o->threads : atrest__pool_cpus());
	st->own_pool = !st->pool;
	GUARD(atrest__floor_dir(&st->state_dir, o->version >= 2 ? o->state_dir : NULL));
	GUARD(atrest__crypto_init());
	if (tenant)
		GUARD(atrest__tenant_check(tenant));
	st->allow_plaintext = o->allow_plaintext;
	st->flags = o->flags;
	st->cache.ttl = o->key_cache_ttl ? o->key_cache_ttl : 300;
	st->cache.max_uses = o->key_cache_uses ? o->key_cache_uses : 1ull << 32;
	st->cache.grace = o->key_cache_grace ? o->key_cache_grace : 86400;
	st->location = strdup(o->backend && o->backend->name ? o->backend->name : path);
	ENSURE(st->location, ATREST_ERROR, "out of memory");
	strcpy(st->kr_key, ATREST__KEYRING_NAME);
	if (!st->b)
		GUARD(atrest__backend_from_location(&st->b, path, o->flags));
	GUARD(atrest__backend_check(st->b));
	if (!st->kp) {
		int rc = atrest_keyprov_from_env(&st->kp, 0);
		ENSURE(rc != ATREST_ENOTFOUND, ATREST_EKEY, "%s",
			atrest_error_last()->message);
		GUARD(rc);
	}
	GUARD(atrest__b_prepare(st->b, o->create && !tenant));
	GUARD(keyring_open(st, o));
	/* The audit trail is the store's, signed by its keyring's key, for
	 * tenants too: taken before a tenant's keyring replaces it. */
	atrest__obs_keyring(st);
	return tenant ? tenant_switch(st, tenant) : 0;
}

static atrest_store *store_new(void)
{
	atrest_store *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->update_mu, NULL);
	return st;
}

int atrest_store_open(atrest_store **out, const atrest_store_options *opts)
{
	atrest_store *st = store_new();
	int rc;

	*out = NULL;
	if (!st) {
		atrest_keyprov_free(opts->key);
		atrest_keyprov_free(opts->old_key);
		atrest__b_free(opts->backend);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	st->b = opts->backend;
	st->kp = opts->key;
	st->old_kp = opts->old_key;
	rc = atrest__obs_new(st, opts);
	if (rc == 0)
		rc = store_setup(st, opts);
	rc = atrest__obs_opened(st, rc);
	if (rc < 0) {
		atrest_store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

int atrest__store_tenant(atrest_store **out, atrest_store *st, const char *name)
{
	atrest_store *t = store_new();
	int rc;

	*out = NULL;
	ENSURE(t, ATREST_ERROR, "out of memory");
	t->borrowed = 1;
	t->b = st->b;
	t->kp = st->kp;
	t->old_kp = st->old_kp;
	t->cache = st->cache;
	t->threads = 1;
	t->state_dir = st->state_dir ? strdup(st->state_dir) : NULL;
	t->location = strdup(st->location);
	t->flags = st->flags;
	strcpy(t->kr_key, ATREST__KEYRING_NAME);
	pthread_mutex_init(&t->pool_mu, NULL);
	rc = t->location ? 0 : atrest__error(ATREST_ERROR, "out of memory");
	if (rc == 0)
		rc = atrest__obs_share(t, st);
	if (rc == 0)
		rc = keyring_load(t);
	if (rc == 1)
		rc = no_store(t);
	if (rc == 0)
		rc = tenant_switch(t, name);
	if (rc < 0) {
		atrest_store_close(t);
		return rc;
	}
	*out = t;
	return 0;
}

void atrest_store_close(atrest_store *st)
{
	if (!st)
		return;
	atrest__obs_free(st);
	atrest__keyring_free(st->kr);
	if (!st->borrowed) {
		atrest_keyprov_free(st->kp);
		atrest_keyprov_free(st->old_kp);
		atrest__b_free(st->b);
	}
	atrest_keyprov_free(st->own_kp);
	for (size_t i = 0; i < st->nretired; i++)
		atrest_keyprov_free(st->retired[i]);
	free(st->retired);
	pthread_mutex_destroy(&st->mu);
	pthread_mutex_destroy(&st->update_mu);
	if (st->own_pool)
		atrest__pool_free(st->pool);
	pthread_mutex_destroy(&st->pool_mu);
	for (size_t i = 0; i < sizeof(st->spare) / sizeof(st->spare[0]); i++)
		free(st->spare[i]);
	free(st->location);
	free(st->state_dir);
	free(st);
}

/* ---- data keys, without holding the mutex across a provider call ---- */

static int shredded(atrest_store *st)
{
	return atrest__error(ATREST_EKEY,
		"tenant '%s' of %s was shredded: it has no data keys", st->tenant,
		st->location);
}

int atrest__store_active_dek(
	atrest_store *st, uint32_t *id, uint8_t *key, int *cipher, uint32_t *segment_size)
{
	GUARD(atrest__store_refresh(st, 0));
	GUARD(atrest__store_policy(st));
	pthread_mutex_lock(&st->mu);
	*id = st->kr->active;
	*cipher = st->kr->settings.cipher;
	*segment_size = st->kr->settings.segment_size;
	pthread_mutex_unlock(&st->mu);
	if (*id == 0)
		return shredded(st);
	return atrest__store_dek(st, *id, key);
}

int atrest__store_record_key(atrest_store *st, uint32_t *id, int *cipher)
{
	GUARD(atrest__store_refresh(st, 0));
	GUARD(atrest__store_policy(st));
	pthread_mutex_lock(&st->mu);
	*id = st->kr->active;
	*cipher = st->kr->settings.cipher;
	pthread_mutex_unlock(&st->mu);
	return *id ? 0 : shredded(st);
}

/*
 * Look up under the mutex; a key not cached (or expired) is unwrapped by
 * the provider with the mutex released, then cached.
 */
static int dek_copy(atrest_store *st, uint32_t id, uint8_t *key)
{
	atrest__dek_req req;
	atrest__secret *s = NULL;
	atrest_keyprov *kp;
	int rc;

	pthread_mutex_lock(&st->mu);
	rc = atrest__keyring_find(st->kr, id)
		? atrest__keyring_dek_lookup(key, &req, st->kr, id, &st->cache)
		: ATREST_ENOTFOUND;
	kp = st->cur_kp;
	pthread_mutex_unlock(&st->mu);
	if (rc != 1)
		return rc;
	rc = atrest__keyring_dek_unwrap(&s, &req, kp);
	pthread_mutex_lock(&st->mu);
	rc = atrest__keyring_dek_install(key, st->kr, &req, s, rc, &st->cache);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int atrest__store_dek(atrest_store *st, uint32_t id, uint8_t *key)
{
	int rc;

	GUARD(atrest__store_refresh(st, 0));
	rc = dek_copy(st, id, key);
	if (rc == ATREST_ENOTFOUND) {
		/* Perhaps made by another process since we last looked. */
		GUARD(atrest__store_refresh(st, 1));
		rc = dek_copy(st, id, key);
	}
	if (rc == ATREST_ENOTFOUND &&
		__atomic_load_n(&st->foreign_master, __ATOMIC_RELAXED))
		rc = atrest__error(ATREST_EKEY,
			"data key %u is newer than this process's copy of the keyring, which "
			"was rewrapped to a master key this process does not hold; restart it "
			"with the new key",
			id);
	else if (rc == ATREST_ENOTFOUND)
		rc = atrest__error(ATREST_EINTEGRITY,
			"data key %u is not in this store's keyring (object modified or "
			"from another store)",
			id);
	return rc;
}

/* ---- settings, in the keyring ---- */

int atrest_store_settings(atrest_settings *out, atrest_store *st)
{
	unsigned int version = out->version;

	GUARD(atrest__check_version(version, ATREST_SETTINGS_VERSION, "atrest_settings"));
	GUARD(atrest__store_refresh(st, 0));
	pthread_mutex_lock(&st->mu);
	*out = st->kr->settings;
	out->version = version;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

static int settings_op(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	(void)st;
	(void)kp;
	kr->settings = *(const atrest_settings *)arg;
	return 0;
}

static int set_settings(atrest_store *st, const atrest_settings *s)
{
	atrest_settings c;

	GUARD(atrest__check_version(
		s->version, ATREST_SETTINGS_VERSION, "atrest_settings"));
	c = *s;
	c.version = ATREST_SETTINGS_VERSION;
	GUARD(atrest__settings_valid(&c));
	GUARD(atrest__cipher_allowed(c.cipher));
	return atrest__store_update(st, settings_op, &c);
}

int atrest__keyring_peek(atrest__keyring **out, const char *location, const char *tenant)
{
	const char *loc = location && *location ? location : "./atrest-store";
	atrest_backend *b = NULL;
	char key[ATREST__KEY_PREFIX_MAX];
	int rc;

	*out = NULL;
	if (tenant && *tenant)
		GUARD(atrest__tenant_check(tenant));
	snprintf(key, sizeof(key),
		tenant && *tenant ? ATREST__TENANTS_DIR "%s/keyring" : "%s",
		tenant && *tenant ? tenant : ATREST__KEYRING_NAME);
	rc = atrest__backend_from_location(&b, loc, 0);
	GUARD_OUT(rc);
	GUARD_OUT(atrest__backend_check(b));
	GUARD_OUT(atrest__b_prepare(b, 0));
	rc = keyring_read(out, b, key, NULL);
	ENSURE_OUT(
		rc != ATREST_ENOTFOUND, ATREST_ENOTFOUND, "no atrest store at %s", loc);
out:
	atrest__b_free(b);
	return rc;
}

int atrest_settings_peek(atrest_settings *out, const char *location, const char *tenant)
{
	unsigned int version = out->version;
	atrest__keyring *kr = NULL;

	GUARD(atrest__check_version(version, ATREST_SETTINGS_VERSION, "atrest_settings"));
	GUARD(atrest__keyring_peek(&kr, location, tenant));
	*out = kr->settings;
	out->version = version;
	atrest__keyring_free(kr);
	return 0;
}

int atrest_store_set_settings(atrest_store *st, const atrest_settings *s)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_CONFIG, NULL);
	return atrest__op_end(&op, set_settings(st, s));
}

int atrest_store_cleanup(uint64_t *count, atrest_store *st, uint64_t older_than)
{
	uint64_t n = 0;
	int rc;

	if (count)
		*count = 0;
	ENSURE(st, ATREST_EINVAL, "no store");
	rc = atrest__b_cleanup(st->b, older_than, &n);
	if (rc == 0 && st->kr) { /* what dead uploads and deletes left */
		uint64_t up = 0;
		rc = atrest__upload_sweep(st,
			older_than > INT64_MAX ? INT64_MAX : (int64_t)older_than, 0, &up);
		n += up;
	}
	if (count)
		*count = n;
	return rc;
}

int atrest_store_id(char out[33], atrest_store *st)
{
	GUARD(atrest__store_refresh(st, 0));
	atrest__hex(out, st->store_id, 16);
	return 0;
}

int atrest_store_master_key(
	char *kind, size_t kind_cap, char *key_id, size_t id_cap, atrest_store *st)
{
	ENSURE(kind && kind_cap && key_id && id_cap, ATREST_EINVAL, "no output buffer");
	pthread_mutex_lock(&st->mu);
	snprintf(kind, kind_cap, "%s", st->kr->kind);
	snprintf(key_id, id_cap, "%s", st->kr->key_id);
	pthread_mutex_unlock(&st->mu);
	return 0;
}

void atrest_free(void *p)
{
	free(p);
}
