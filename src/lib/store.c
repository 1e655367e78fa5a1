/*
 * Opening and creating stores: backend and key provider set-up, the
 * crash-safe keyring (read, create exclusively, check), and the settings
 * file.  Object I/O lives in object.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto.h"
#include "store/fs_int.h"
#include "store_int.h"

#define SETTINGS_NAME ".atrest/settings.json"
#define KEYRING_MAX (64u * 1024 * 1024)

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

int atrest__store_read_file(
	atrest_backend *b, const char *key, char **out, size_t *len, size_t max)
{
	atrest_backend_reader *r;
	size_t got = 0;
	char *buf;
	int rc;

	GUARD(b->open_read(b, &r, key));
	if (r->size > max) {
		r->close(r);
		return atrest__error(ATREST_EINTEGRITY, "%s is too large", key);
	}
	buf = malloc(r->size + 1);
	if (!buf) {
		r->close(r);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	rc = r->pread(r, buf, r->size, 0, &got);
	if (rc == 0 && got != r->size)
		rc = atrest__error(ATREST_ERROR, "%s changed while being read", key);
	r->close(r);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

int atrest__store_write_file(atrest_backend *b, const char *key, const void *buf,
	size_t len, unsigned int flags)
{
	atrest_backend_writer *w;
	int rc;

	GUARD(b->open_write(b, &w, key, flags));
	rc = w->write(w, buf, len);
	if (rc < 0) {
		w->abort(w);
		return rc;
	}
	return w->commit(w);
}

static int settings_default(atrest_settings *s, int cipher, uint32_t segsize)
{
	s->cipher = cipher ? cipher : ATREST_CIPHER_AES_256_GCM;
	s->segment_size = segsize ? segsize : ATREST_SEGMENT_SIZE_DEFAULT;
	s->rotate_days = 30;
	s->force_days = 90;
	ENSURE(s->cipher >= 1 && s->cipher <= 3, ATREST_EINVAL, "unknown cipher %d",
		s->cipher);
	ENSURE(s->segment_size >= ATREST_SEGMENT_SIZE_MIN &&
			s->segment_size <= ATREST_SEGMENT_SIZE_MAX,
		ATREST_EINVAL, "segment size %u out of range (%u to %u)", s->segment_size,
		ATREST_SEGMENT_SIZE_MIN, ATREST_SEGMENT_SIZE_MAX);
	ENSURE(s->segment_size % 16 == 0, ATREST_EINVAL,
		"segment size %u is not a multiple of 16", s->segment_size);
	return atrest__cipher_allowed(s->cipher);
}

static int settings_check(const atrest_settings *s)
{
	atrest_settings t;

	GUARD(settings_default(&t, s->cipher, s->segment_size));
	ENSURE(s->rotate_days >= 1 && s->force_days >= s->rotate_days &&
			s->force_days <= 36500,
		ATREST_EINVAL,
		"rotation policy out of range (1 <= rotate-days <= "
		"force-days <= 36500)");
	return 0;
}

static int settings_load(atrest_store *st)
{
	char *text;
	size_t len;
	json_t *root;
	json_int_t seg = 0, rot = 0, force = 0;
	const char *cipher = NULL;
	int rc = atrest__store_read_file(st->b, SETTINGS_NAME, &text, &len, 65536);

	if (rc == ATREST_ENOTFOUND)
		return settings_default(&st->settings, 0, 0);
	GUARD(rc);
	root = json_loadb(text, len, 0, NULL);
	free(text);
	rc = json_unpack(root, "{s:s, s:I, s:I, s:I}", "cipher", &cipher, "segment_size",
		&seg, "rotate_days", &rot, "force_days", &force);
	if (rc == 0) {
		st->settings.cipher = atrest_cipher_from_name(cipher);
		st->settings.segment_size = (uint32_t)seg;
		st->settings.rotate_days = (uint32_t)rot;
		st->settings.force_days = (uint32_t)force;
		rc = seg > 0 && seg <= ATREST_SEGMENT_SIZE_MAX && rot > 0 && force > 0 &&
				rot < 100000 && force < 100000
			? settings_check(&st->settings)
			: -1;
	}
	json_decref(root);
	ENSURE(rc == 0, ATREST_EINTEGRITY,
		"store settings (%s) are damaged; fix or remove the file", SETTINGS_NAME);
	return 0;
}

static int settings_save(atrest_backend *b, const atrest_settings *s)
{
	json_t *root = json_pack("{s:s, s:I, s:I, s:I}", "cipher",
		atrest_cipher_name(s->cipher), "segment_size",
		(json_int_t)s->segment_size, "rotate_days", (json_int_t)s->rotate_days,
		"force_days", (json_int_t)s->force_days);
	char *text = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	int rc;

	json_decref(root);
	ENSURE(text, ATREST_ERROR, "out of memory");
	rc = atrest__store_write_file(b, SETTINGS_NAME, text, strlen(text), 0);
	free(text);
	return rc;
}

static int keyring_save(atrest_store *st, unsigned int flags)
{
	char *text;
	size_t len;
	int rc;

	GUARD(atrest__keyring_serialize(&text, &len, st->kr));
	rc = atrest__store_write_file(st->b, ATREST__KEYRING_NAME, text, len, flags);
	free(text);
	return rc;
}

static int keyring_read(atrest__keyring **out, atrest_backend *b)
{
	char *text;
	size_t len;
	int rc;

	GUARD(atrest__store_read_file(b, ATREST__KEYRING_NAME, &text, &len, KEYRING_MAX));
	rc = atrest__keyring_parse(out, text, len);
	free(text);
	return rc;
}

static int found_one(const char *key, uint64_t size, int64_t mtime, void *p)
{
	(void)key, (void)size, (void)mtime, (void)p;
	return 1;
}

/*
 * Settings are written before the keyring, so settings plus objects but no
 * keyring means the keyring was lost: creating a new one would orphan every
 * object.  (A plain directory being migrated has no settings.)
 */
static int refuse_lost_keyring(atrest_store *st)
{
	char *text;
	size_t len;
	int rc = atrest__store_read_file(st->b, SETTINGS_NAME, &text, &len, 65536);

	if (rc == ATREST_ENOTFOUND)
		return 0;
	GUARD(rc);
	free(text);
	rc = st->b->list(st->b, "", found_one, NULL);
	GUARD(rc);
	ENSURE(rc == 0, ATREST_EINTEGRITY,
		"store %s has objects but its keyring (.atrest/keyring) is missing; "
		"restore it from a backup (a new keyring would orphan every object)",
		st->location);
	return 0;
}

/* A new store: settings first, then the keyring, written exclusively. */
static int store_create(atrest_store *st, const atrest_store_options *o)
{
	atrest_settings s;
	int rc;

	GUARD(refuse_lost_keyring(st));
	GUARD(settings_default(&s, o->cipher, o->segment_size));
	GUARD(settings_save(st->b, &s));
	st->settings = s;
	GUARD(atrest__keyring_create(&st->kr, st->kp));
	rc = keyring_save(st, ATREST_BACKEND_EXCL);
	if (rc == ATREST_EEXISTS) {
		/* Another process created the store first: use theirs. */
		atrest__keyring_free(st->kr);
		st->kr = NULL;
		return ATREST_EEXISTS;
	}
	return rc;
}

/*
 * Unlock kr with the current master key or, failing that, the old one
 * (a master-key change in progress); *by tells which worked.
 */
static int unlock_any(atrest_store *st, atrest__keyring *kr, atrest_keyprov **by)
{
	int rc = atrest__keyring_unlock(kr, st->kp);

	*by = st->kp;
	if (rc == ATREST_EKEY && st->old_kp) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", atrest_error_last()->message);
		if (atrest__keyring_unlock(kr, st->old_kp) == 0) {
			*by = st->old_kp;
			return 0;
		}
		return atrest__error(ATREST_EKEY,
			"%s (the old key does not open it "
			"either)",
			msg);
	}
	return rc;
}

static int rewrap_op(atrest_store *st, atrest__keyring *kr, void *arg)
{
	return atrest__keyring_rewrap(kr, st->cur_kp, arg);
}

static int keyring_load(atrest_store *st, const atrest_store_options *o)
{
	atrest_backend_lock *lock = NULL;
	int rc = keyring_read(&st->kr, st->b);

	if (rc == ATREST_ENOTFOUND && o->create) {
		GUARD(st->b->lock(st->b, &lock));
		rc = keyring_read(&st->kr, st->b);
		if (rc == ATREST_ENOTFOUND)
			rc = store_create(st, o);
		st->b->unlock(st->b, lock);
		if (rc == ATREST_EEXISTS)
			rc = keyring_read(&st->kr, st->b);
		if (rc == 0 && st->kr->mac_key) {
			st->cur_kp = st->kp; /* created by us: already unlocked */
			return 1;
		}
	}
	if (rc == ATREST_ENOTFOUND)
		return atrest__error(ATREST_ENOTFOUND,
			"no atrest store at %s (create one with 'atrest init')",
			st->location);
	return rc;
}

static int keyring_open(atrest_store *st, const atrest_store_options *o)
{
	int rc = keyring_load(st, o);

	GUARD(rc);
	if (rc == 1)
		return 0;
	GUARD(unlock_any(st, st->kr, &st->cur_kp));
	GUARD(settings_load(st));
	st->last_refresh = atrest__now();
	/* Opened with the old master key: move the keyring to the new one. */
	if (st->cur_kp == st->old_kp) {
		GUARD(atrest__store_update(st, rewrap_op, st->kp));
		st->cur_kp = st->kp;
	}
	return 0;
}

/* Swap in a re-read keyring that is newer than ours. */
static int reload(atrest_store *st)
{
	atrest__keyring *kr = NULL, *old;
	atrest_keyprov *by = st->cur_kp;
	int rc;

	GUARD(keyring_read(&kr, st->b));
	pthread_mutex_lock(&st->mu);
	rc = kr->generation == st->kr->generation && kr->check_len == st->kr->check_len &&
			memcmp(kr->check, st->kr->check, kr->check_len) == 0
		? 2
		: atrest__keyring_adopt(kr, st->kr);
	pthread_mutex_unlock(&st->mu);
	if (rc == 0) /* rewrapped by another process: ask a provider */
		rc = unlock_any(st, kr, &by);
	if (rc < 0 || rc == 2) {
		atrest__keyring_free(kr);
		return rc < 0 ? rc : 0;
	}
	pthread_mutex_lock(&st->mu);
	old = st->kr;
	atrest__keyring_take_keys(kr, old);
	st->kr = kr;
	st->cur_kp = by;
	pthread_mutex_unlock(&st->mu);
	atrest__keyring_free(old);
	return 0;
}

int atrest__store_refresh(atrest_store *st, int force)
{
	int64_t now = atrest__now();
	int rc = 0;

	if (!force && now - __atomic_load_n(&st->last_refresh, __ATOMIC_RELAXED) < 1)
		return 0;
	pthread_mutex_lock(&st->update_mu);
	if (force || now - st->last_refresh >= 1) {
		rc = reload(st);
		__atomic_store_n(&st->last_refresh, now, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&st->update_mu);
	/*
	 * Rewrapped under a master key we do not hold: keep working with the
	 * keys already unwrapped (docs/OPERATIONS.md); updates stay refused.
	 */
	if (rc == ATREST_EKEY) {
		st->foreign_master = 1;
		rc = 0;
	}
	return rc;
}

static int update_locked(atrest_store *st, atrest__keyring_op op, void *arg)
{
	char *text = NULL;
	size_t len;
	int rc;

	GUARD(reload(st));
	pthread_mutex_lock(&st->mu);
	rc = op(st, st->kr, arg);
	if (rc == 0) {
		st->kr->generation++;
		rc = atrest__keyring_serialize(&text, &len, st->kr);
	}
	pthread_mutex_unlock(&st->mu);
	if (rc == 0)
		rc = atrest__store_write_file(st->b, ATREST__KEYRING_NAME, text, len, 0);
	free(text);
	if (rc < 0) /* forget the in-memory change: the file is the truth */
		st->kr->generation = 0;
	return rc;
}

int atrest__store_update(atrest_store *st, atrest__keyring_op op, void *arg)
{
	atrest_backend_lock *lock;
	int rc;

	pthread_mutex_lock(&st->update_mu);
	rc = st->b->lock(st->b, &lock);
	if (rc == 0) {
		rc = update_locked(st, op, arg);
		st->b->unlock(st->b, lock);
	}
	if (rc < 0 && st->kr->generation == 0) {
		int keep = rc;
		reload(st);
		rc = keep;
	}
	st->last_refresh = atrest__now();
	pthread_mutex_unlock(&st->update_mu);
	return rc;
}

static int store_setup(atrest_store *st, const atrest_store_options *o)
{
	const char *path = o->path && *o->path ? o->path : "./atrest-store";

	pthread_mutex_init(&st->pool_mu, NULL);
	st->threads = o->threads ? o->threads : atrest__pool_cpus();
	GUARD(atrest__check_version(
		o->version, ATREST_STORE_OPTIONS_VERSION, "atrest_store_options"));
	GUARD(atrest__crypto_init());
	ENSURE(!o->tenant || strlen(o->tenant) <= ATREST_TENANT_MAX, ATREST_EINVAL,
		"tenant name longer than %d bytes", ATREST_TENANT_MAX);
	snprintf(st->tenant, sizeof(st->tenant), "%s", o->tenant ? o->tenant : "");
	st->allow_plaintext = o->allow_plaintext;
	st->cache.ttl = o->key_cache_ttl ? o->key_cache_ttl : 300;
	st->cache.max_uses = o->key_cache_uses ? o->key_cache_uses : 1ull << 32;
	st->cache.grace = o->key_cache_grace ? o->key_cache_grace : 86400;
	st->location = strdup(o->backend ? o->backend->name : path);
	ENSURE(st->location, ATREST_ERROR, "out of memory");
	if (!st->b)
		GUARD(atrest__backend_fs_new(
			&st->b, path, (o->flags & ATREST_STORE_NO_SYNC) != 0));
	if (!st->kp) {
		int rc = atrest_keyprov_from_env(&st->kp, 0);
		ENSURE(rc != ATREST_ENOTFOUND, ATREST_EKEY, "%s",
			atrest_error_last()->message);
		GUARD(rc);
	}
	GUARD(st->b->prepare(st->b, o->create));
	return keyring_open(st, o);
}

int atrest_store_open(atrest_store **out, const atrest_store_options *opts)
{
	atrest_store *st = calloc(1, sizeof(*st));
	int rc;

	*out = NULL;
	if (!st) {
		atrest_keyprov_free(opts->key);
		atrest_keyprov_free(opts->old_key);
		return atrest__error(ATREST_ERROR, "out of memory");
	}
	st->b = opts->backend;
	st->kp = opts->key;
	st->old_kp = opts->old_key;
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->update_mu, NULL);
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

void atrest_store_close(atrest_store *st)
{
	if (!st)
		return;
	atrest__obs_free(st);
	atrest__keyring_free(st->kr);
	atrest_keyprov_free(st->kp);
	atrest_keyprov_free(st->old_kp);
	if (st->b)
		st->b->free(st->b);
	pthread_mutex_destroy(&st->mu);
	pthread_mutex_destroy(&st->update_mu);
	atrest__pool_free(st->pool);
	pthread_mutex_destroy(&st->pool_mu);
	for (size_t i = 0; i < sizeof(st->spare) / sizeof(st->spare[0]); i++)
		free(st->spare[i]);
	free(st->location);
	free(st);
}

int atrest__store_active_dek(
	atrest_store *st, uint32_t *id, uint8_t *key, int *cipher, uint32_t *segment_size)
{
	int rc;

	GUARD(atrest__store_refresh(st, 0));
	GUARD(atrest__store_policy(st));
	pthread_mutex_lock(&st->mu);
	*id = st->kr->active;
	*cipher = st->settings.cipher;
	*segment_size = st->settings.segment_size;
	rc = atrest__keyring_dek(key, st->kr, st->cur_kp, *id, &st->cache);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int atrest__store_record_key(atrest_store *st, uint32_t *id, int *cipher)
{
	GUARD(atrest__store_refresh(st, 0));
	GUARD(atrest__store_policy(st));
	pthread_mutex_lock(&st->mu);
	*id = st->kr->active;
	*cipher = st->settings.cipher;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

static int dek_copy(atrest_store *st, uint32_t id, uint8_t *key)
{
	int rc;

	pthread_mutex_lock(&st->mu);
	rc = atrest__keyring_find(st->kr, id)
		? atrest__keyring_dek(key, st->kr, st->cur_kp, id, &st->cache)
		: ATREST_ENOTFOUND;
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
	if (rc == ATREST_ENOTFOUND && st->foreign_master)
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

int atrest_store_settings(atrest_settings *out, atrest_store *st)
{
	GUARD(atrest__check_version(
		out->version, ATREST_SETTINGS_VERSION, "atrest_settings"));
	pthread_mutex_lock(&st->mu);
	*out = st->settings;
	out->version = ATREST_SETTINGS_VERSION;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

static int set_settings(atrest_store *st, const atrest_settings *s)
{
	int rc;

	GUARD(atrest__check_version(
		s->version, ATREST_SETTINGS_VERSION, "atrest_settings"));
	GUARD(settings_check(s));
	pthread_mutex_lock(&st->mu);
	rc = settings_save(st->b, s);
	if (rc == 0)
		st->settings = *s;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

int atrest_store_set_settings(atrest_store *st, const atrest_settings *s)
{
	atrest__op op;

	atrest__op_begin(&op, st, ATREST_OP_CONFIG, NULL);
	return atrest__op_end(&op, set_settings(st, s));
}

int atrest_store_id(char out[33], atrest_store *st)
{
	atrest__hex(out, st->kr->store_id, 16);
	return 0;
}

void atrest_free(void *p)
{
	free(p);
}
