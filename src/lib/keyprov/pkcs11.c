/*
 * The pkcs11: key provider (RFC 7512 URIs): the master key is an AES key
 * inside a PKCS#11 token and never leaves it; data keys are encrypted by
 * the token with CKM_AES_GCM, the store id and role as AAD.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "atrest/sys/keyprov.h"
#include "common.h"
#include "crypto.h"
#include "keyring.h"
#include "plugins.h"
#include "secret.h"
#include "uri.h"

#define POOL_MAX 8       /* idle sessions kept per provider */
#define WRAP_FORMAT 0x01 /* format byte: CKM_AES_GCM, iv(12) || ct || tag(16) */
#define WRAP_KWP 0x02    /* CKM_AES_KEY_WRAP_PAD blob || tag(16), see kwp_tag */
#define KWP_INFO "atrest/v1 pkcs11 kwp"
#define IV_LEN 12
#define TAG_LEN 16
#define LABEL_MAX 256
#define DEFAULT_MODULE "p11-kit-proxy.so"

/* ---- modules: loaded once per process, shared by every provider */

struct p11_module {
	struct p11_module *next;
	char *path;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	unsigned refs;
	pid_t pid;         /* the process that initialised it */
	int owned;         /* we called C_Initialize (and so C_Finalize) */
	uint64_t gen;      /* bumped by each restart: older sessions are gone */
	int64_t restarted; /* when (monotonic ms) */
};

static pthread_mutex_t modules_mu = PTHREAD_MUTEX_INITIALIZER;
static struct p11_module *modules;

static const struct {
	CK_RV rv;
	const char *name;
} rv_names[] = {
	{CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
	{CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
	{CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
	{CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
	{CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
	{CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
	{CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
	{CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
	{CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
	{CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
	{CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
	{CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
	{CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
	{CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
	{CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
	{CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
	{CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
	{CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
	{CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
	{CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
	{CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
};

static const char *rv_name(CK_RV rv)
{
	static __thread char buf[32];

	for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (rv_names[i].rv == rv)
			return rv_names[i].name;
	snprintf(buf, sizeof(buf), "CKR 0x%lx", (unsigned long)rv);
	return buf;
}

/* The token or the module went away (an outage, not a wrong key). */
static int rv_outage(CK_RV rv)
{
	return rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_REMOVED ||
		rv == CKR_DEVICE_MEMORY || rv == CKR_TOKEN_NOT_PRESENT ||
		rv == CKR_TOKEN_NOT_RECOGNIZED || rv == CKR_SESSION_CLOSED ||
		rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_CRYPTOKI_NOT_INITIALIZED ||
		rv == CKR_FUNCTION_FAILED || rv == CKR_USER_NOT_LOGGED_IN;
}

/*
 * Handles that no longer name anything (the token was removed and put back,
 * or its service restarted): find the key again before judging.
 */
static int rv_stale(CK_RV rv)
{
	return rv_outage(rv) || rv == CKR_OBJECT_HANDLE_INVALID ||
		rv == CKR_KEY_HANDLE_INVALID;
}

static int p11_err(CK_RV rv, const char *what)
{
	return atrest__error(rv_outage(rv) ? ATREST_EUNAVAILABLE : ATREST_EKEY,
		"pkcs11: %s failed (%s)", what, rv_name(rv));
}

static CK_RV module_initialize(struct p11_module *m)
{
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = m->f->C_Initialize(&args);
	m->owned = rv == CKR_OK;
	m->pid = getpid();
	return rv == CKR_CRYPTOKI_ALREADY_INITIALIZED ? CKR_OK : rv;
}

static int module_load(struct p11_module **out, const char *path)
{
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
	struct p11_module *m = calloc(1, sizeof(*m));
	CK_RV rv;

	ENSURE(m && (m->path = strdup(path)), ATREST_ERROR, "out of memory");
	m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!m->dl) {
		free(m->path);
		free(m);
		return atrest__error(ATREST_EKEY, "pkcs11: cannot load module %s", path);
	}
	*(void **)&get_list = dlsym(m->dl, "C_GetFunctionList");
	if (!get_list || get_list(&m->f) != CKR_OK || !m->f) {
		dlclose(m->dl);
		free(m->path);
		free(m);
		return atrest__error(
			ATREST_EKEY, "pkcs11: %s is not a PKCS#11 module", path);
	}
	rv = module_initialize(m);
	if (rv != CKR_OK) {
		dlclose(m->dl);
		free(m->path);
		free(m);
		return p11_err(rv, "C_Initialize");
	}
	*out = m;
	return 0;
}

static int module_get(struct p11_module **out, const char *path)
{
	struct p11_module *m;
	int rc = 0;

	pthread_mutex_lock(&modules_mu);
	for (m = modules; m && strcmp(m->path, path); m = m->next)
		;
	if (!m && (rc = module_load(&m, path)) == 0) {
		m->next = modules;
		modules = m;
	}
	if (m && rc == 0)
		m->refs++;
	pthread_mutex_unlock(&modules_mu);
	*out = rc == 0 ? m : NULL;
	return rc;
}

/*
 * In a child after fork, a module must be initialised again before use
 * (PKCS#11 2.40, 6.7.7); the parent's sessions are not the child's.
 */
static int module_after_fork(struct p11_module *m)
{
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&modules_mu);
	if (m->pid != getpid())
		rv = module_initialize(m);
	pthread_mutex_unlock(&modules_mu);
	return rv == CKR_OK ? 0 : p11_err(rv, "C_Initialize after fork");
}

/*
 * Finalize and initialise a module again: after its token was removed and
 * put back, or its service restarted, many modules see the token only then.
 * At most once a second; every provider's sessions of it are then gone.
 */
static void module_restart(struct p11_module *m)
{
	int64_t now = atrest__mono_ms();

	pthread_mutex_lock(&modules_mu);
	if (m->owned && m->pid == getpid() && now - m->restarted >= 1000) {
		m->f->C_Finalize(NULL);
		module_initialize(m);
		m->owned = 1; /* ours now; a failed start is tried again later */
		m->gen++;
		m->restarted = now;
	}
	pthread_mutex_unlock(&modules_mu);
}

static void module_put(struct p11_module *m)
{
	struct p11_module **pp;

	pthread_mutex_lock(&modules_mu);
	if (--m->refs == 0) {
		for (pp = &modules; *pp != m; pp = &(*pp)->next)
			;
		*pp = m->next;
		if (m->owned && m->pid == getpid())
			m->f->C_Finalize(NULL);
		dlclose(m->dl);
		free(m->path);
		free(m);
	}
	pthread_mutex_unlock(&modules_mu);
}

/* ---- the provider */

struct p11_kp {
	struct atrest_keyprov parent;
	struct p11_module *mod;
	pthread_mutex_t mu; /* guards everything below */
	/* what the URI selects */
	char token[LABEL_MAX], serial[LABEL_MAX], object[LABEL_MAX];
	uint8_t id[128];
	size_t id_len;
	long slot_id; /* -1: any */
	atrest__secret *pin;
	char key_id[128];
	/* what was found */
	int ready;
	pid_t pid;
	uint64_t epoch; /* bumped when sessions are dropped */
	uint64_t gen;   /* the module generation the sessions belong to */
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE key;
	CK_SESSION_HANDLE idle[POOL_MAX];
	size_t nidle;
	unsigned busy; /* sessions handed out */
	int kwp;       /* the module lacks AES-GCM: key wrap with padding */
};

/* A token label is 32 bytes padded with spaces. */
static int label_eq(const CK_UTF8CHAR *padded, size_t cap, const char *want)
{
	size_t n = cap;

	while (n && padded[n - 1] == ' ')
		n--;
	return strlen(want) == n && memcmp(padded, want, n) == 0;
}

static int slot_matches(struct p11_kp *p, CK_SLOT_ID slot)
{
	CK_TOKEN_INFO ti;

	if (p->slot_id >= 0 && (CK_SLOT_ID)p->slot_id != slot)
		return 0;
	if (p->mod->f->C_GetTokenInfo(slot, &ti) != CKR_OK)
		return 0;
	if (p->token[0] && !label_eq(ti.label, sizeof(ti.label), p->token))
		return 0;
	return !p->serial[0] ||
		label_eq(ti.serialNumber, sizeof(ti.serialNumber), p->serial);
}

static int find_slot(struct p11_kp *p)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_RV rv = p->mod->f->C_GetSlotList(CK_TRUE, slots, &n);

	if (rv != CKR_OK)
		return p11_err(rv, "C_GetSlotList");
	for (CK_ULONG i = 0; i < n; i++)
		if (slot_matches(p, slots[i])) {
			p->slot = slots[i];
			return 0;
		}
	/* Unplugged, or its service is down: an outage, not a wrong key. */
	if (p->token[0])
		return atrest__error(ATREST_EUNAVAILABLE,
			"pkcs11: no token labelled '%s' is present", p->token);
	return atrest__error(ATREST_EUNAVAILABLE, "pkcs11: no token matches the URI");
}

static int login(struct p11_kp *p, CK_SESSION_HANDLE s)
{
	CK_RV rv;

	if (!p->pin)
		return 0;
	rv = p->mod->f->C_Login(s, CKU_USER, p->pin->data, p->pin->len);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return 0;
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE)
		return atrest__error(ATREST_EKEY, "pkcs11: wrong PIN for token '%s' (%s)",
			p->token[0] ? p->token : "?", rv_name(rv));
	return p11_err(rv, "C_Login");
}

static int find_key(struct p11_kp *p, CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[3] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0, nt = 1;
	CK_RV rv;

	if (p->object[0])
		tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, p->object, strlen(p->object)};
	if (p->id_len)
		tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, p->id, p->id_len};
	rv = p->mod->f->C_FindObjectsInit(s, tmpl, nt);
	if (rv == CKR_OK) {
		rv = p->mod->f->C_FindObjects(s, found, 2, &n);
		p->mod->f->C_FindObjectsFinal(s);
	}
	if (rv != CKR_OK)
		return p11_err(rv, "C_FindObjects");
	ENSURE(n == 1, ATREST_EKEY,
		"pkcs11: %s secret key matches the URI on token '%s'%s",
		n ? "more than one" : "no", p->token[0] ? p->token : "?",
		!n && !p->pin ? " (no PIN given: a private key is found only after login)"
			      : "");
	p->key = found[0];
	return 0;
}

/* Drop every session (closed only in the process that opened them). */
static void drop_sessions(struct p11_kp *p, int close)
{
	for (size_t i = 0; i < p->nidle; i++)
		if (close)
			p->mod->f->C_CloseSession(p->idle[i]);
	p->nidle = 0;
	p->ready = 0;
	p->epoch++;
}

/* Find the token and the key and log in; caller holds mu. */
static int resolve(struct p11_kp *p)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;

	if (p->pid != getpid()) {
		drop_sessions(p, 0);
		GUARD(module_after_fork(p->mod));
		p->pid = getpid();
	}
	if (p->gen != __atomic_load_n(&p->mod->gen, __ATOMIC_ACQUIRE)) {
		drop_sessions(p, 0); /* the module was restarted */
		p->gen = __atomic_load_n(&p->mod->gen, __ATOMIC_ACQUIRE);
	}
	if (p->ready)
		return 0;
	GUARD(find_slot(p));
	rv = p->mod->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK)
		return p11_err(rv, "C_OpenSession");
	int rc = login(p, s);
	if (rc == 0)
		rc = find_key(p, s);
	if (rc < 0) {
		p->mod->f->C_CloseSession(s);
		return rc;
	}
	p->idle[p->nidle++] = s; /* kept open: it holds the login */
	p->ready = 1;
	return 0;
}

static int session_get(struct p11_kp *p, CK_SESSION_HANDLE *s, uint64_t *epoch)
{
	int rc;

	pthread_mutex_lock(&p->mu);
	rc = resolve(p);
	if (rc == 0 && p->nidle > 0) {
		*s = p->idle[--p->nidle];
	} else if (rc == 0) {
		CK_RV rv = p->mod->f->C_OpenSession(
			p->slot, CKF_SERIAL_SESSION, NULL, NULL, s);
		if (rv != CKR_OK)
			rc = p11_err(rv, "C_OpenSession");
	}
	if (rc == 0)
		p->busy++;
	*epoch = p->epoch;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

/* Return a session to the pool; after an outage error, start afresh. */
static void session_put(struct p11_kp *p, CK_SESSION_HANDLE s, uint64_t epoch, CK_RV rv)
{
	pthread_mutex_lock(&p->mu);
	p->busy--;
	if (rv_stale(rv) && epoch == p->epoch)
		drop_sessions(p, 1);
	if (!rv_stale(rv) && epoch == p->epoch && p->nidle < POOL_MAX)
		p->idle[p->nidle++] = s;
	else if (p->pid == getpid() && p->gen == p->mod->gen)
		p->mod->f->C_CloseSession(s);
	pthread_mutex_unlock(&p->mu);
}

typedef CK_RV (*p11_op)(struct p11_kp *p, CK_SESSION_HANDLE s, void *arg);

/* Run op on a pooled session; once more on fresh sessions after an outage. */
static int with_session(struct p11_kp *p, p11_op op, void *arg, CK_RV *out_rv)
{
	for (int attempt = 0;; attempt++) {
		CK_SESSION_HANDLE s;
		uint64_t epoch;
		int rc = session_get(p, &s, &epoch);
		CK_RV rv;

		if (rc == ATREST_EUNAVAILABLE && attempt == 0) {
			module_restart(p->mod);
			continue;
		}
		GUARD(rc);
		rv = op(p, s, arg);
		session_put(p, s, epoch, rv);
		*out_rv = rv;
		if (!rv_stale(rv) || attempt > 0)
			return 0;
	}
}

struct crypt_arg {
	int encrypt;
	uint8_t *iv;
	const uint8_t *aad, *in;
	size_t aad_len, in_len;
	uint8_t *out;
	CK_ULONG out_len;
};

static CK_RV do_crypt(struct p11_kp *p, CK_SESSION_HANDLE s, void *arg)
{
	struct crypt_arg *a = arg;
	CK_GCM_PARAMS gp = {
		a->iv, IV_LEN, IV_LEN * 8, (CK_BYTE_PTR)a->aad, a->aad_len, TAG_LEN * 8};
	CK_MECHANISM mech = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_FUNCTION_LIST_PTR f = p->mod->f;
	CK_RV rv;

	rv = a->encrypt ? f->C_EncryptInit(s, &mech, p->key)
			: f->C_DecryptInit(s, &mech, p->key);
	if (rv != CKR_OK)
		return rv;
	return a->encrypt
		? f->C_Encrypt(s, (CK_BYTE_PTR)a->in, a->in_len, a->out, &a->out_len)
		: f->C_Decrypt(s, (CK_BYTE_PTR)a->in, a->in_len, a->out, &a->out_len);
}

/*
 * The fallback for modules without CKM_AES_GCM (p11-kit's RPC before 0.25,
 * some HSMs): C_WrapKey with CKM_AES_KEY_WRAP_PAD of the data key imported
 * as a session object.  Key wrap has no AAD, so the AAD is bound by a tag
 * keyed with the data key itself: HMAC-SHA256(dek, info || aad || blob).
 */
struct kwp_arg {
	const uint8_t *aad;
	size_t aad_len;
	uint8_t *key; /* 32 bytes in (wrap) or out (unwrap) */
	uint8_t *blob;
	CK_ULONG blob_len;
};

static CK_RV do_kwp_wrap(struct p11_kp *p, CK_SESSION_HANDLE s, void *arg)
{
	struct kwp_arg *a = arg;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)}, {CKA_TOKEN, &no, sizeof(no)},
		{CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_SENSITIVE, &no, sizeof(no)},
		{CKA_VALUE, a->key, 32}};
	CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_OBJECT_HANDLE h;
	CK_RV rv = p->mod->f->C_CreateObject(s, tmpl, 6, &h);

	if (rv != CKR_OK)
		return rv;
	rv = p->mod->f->C_WrapKey(s, &mech, p->key, h, a->blob, &a->blob_len);
	p->mod->f->C_DestroyObject(s, h);
	return rv;
}

static CK_RV do_kwp_unwrap(struct p11_kp *p, CK_SESSION_HANDLE s, void *arg)
{
	struct kwp_arg *a = arg;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)}, {CKA_TOKEN, &no, sizeof(no)},
		{CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_SENSITIVE, &no, sizeof(no)}};
	CK_ATTRIBUTE val = {CKA_VALUE, a->key, 32};
	CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	CK_OBJECT_HANDLE h;
	CK_RV rv = p->mod->f->C_UnwrapKey(
		s, &mech, p->key, a->blob, a->blob_len, tmpl, 5, &h);

	if (rv != CKR_OK)
		return rv;
	rv = p->mod->f->C_GetAttributeValue(s, h, &val, 1);
	if (rv == CKR_OK && val.ulValueLen != 32)
		rv = CKR_WRAPPED_KEY_INVALID;
	p->mod->f->C_DestroyObject(s, h);
	return rv;
}

static int kwp_tag(uint8_t tag[TAG_LEN], const struct kwp_arg *a)
{
	static const char info[] = KWP_INFO;
	uint8_t buf[sizeof(info) + 64 + ATREST_WRAPPED_MAX], mac[32];
	size_t n = sizeof(info) - 1;

	ENSURE(a->aad_len <= 64 && a->blob_len <= ATREST_WRAPPED_MAX, ATREST_EINVAL,
		"pkcs11: AAD too long");
	memcpy(buf, info, n);
	memcpy(buf + n, a->aad, a->aad_len);
	memcpy(buf + n + a->aad_len, a->blob, a->blob_len);
	GUARD(atrest__hmac_sha256(mac, a->key, 32, buf, n + a->aad_len + a->blob_len));
	memcpy(tag, mac, TAG_LEN);
	atrest__wipe(mac, sizeof(mac));
	return 0;
}

static int kwp_wrap(struct p11_kp *p, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	uint8_t k[32];
	struct kwp_arg a = {aad, aad_len, k, out + 1, 0};
	CK_RV rv;
	int rc;

	ENSURE(key_len == 32 && cap > 1 + 48 + TAG_LEN, ATREST_EINVAL,
		"pkcs11: cannot wrap a key of %zu bytes", key_len);
	memcpy(k, key, 32);
	a.blob_len = cap - 1 - TAG_LEN;
	out[0] = WRAP_KWP;
	rc = with_session(p, do_kwp_wrap, &a, &rv);
	if (rc == 0 && rv != CKR_OK)
		rc = p11_err(rv, "wrapping a data key with the token's key");
	if (rc == 0)
		rc = kwp_tag(out + 1 + a.blob_len, &a);
	if (rc == 0)
		*out_len = 1 + a.blob_len + TAG_LEN;
	atrest__wipe(k, sizeof(k));
	return rc;
}

static int kwp_unwrap(struct p11_kp *p, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	uint8_t k[32], blob[ATREST_WRAPPED_MAX], tag[TAG_LEN];
	struct kwp_arg a = {aad, aad_len, k, blob, wrapped_len - 1 - TAG_LEN};
	CK_RV rv;
	int rc;

	ENSURE(wrapped_len > 1 + TAG_LEN + 8 && cap >= 32, ATREST_EKEY,
		"pkcs11: the wrapped key was not made by a PKCS#11 token");
	memcpy(blob, wrapped + 1, a.blob_len);
	rc = with_session(p, do_kwp_unwrap, &a, &rv);
	if (rc == 0 && rv != CKR_OK)
		rc = rv_outage(rv) && rv != CKR_FUNCTION_FAILED
			? p11_err(rv, "unwrapping a data key")
			: atrest__error(ATREST_EKEY,
				  "pkcs11: wrong master key: the data key does not "
				  "unwrap with %s (%s)",
				  p->key_id, rv_name(rv));
	if (rc == 0)
		rc = kwp_tag(tag, &a);
	if (rc == 0 && !atrest__ct_equal(tag, wrapped + 1 + a.blob_len, TAG_LEN))
		rc = atrest__error(ATREST_EKEY,
			"pkcs11: the wrapped key belongs elsewhere or was altered");
	if (rc == 0) {
		memcpy(out, k, 32);
		*out_len = 32;
	}
	atrest__wipe(k, sizeof(k));
	return rc;
}

static int p11_bind(atrest_keyprov *kp, const char *params_in, char **params_out)
{
	struct p11_kp *p = (struct p11_kp *)kp;
	int rc;

	(void)params_in;
	*params_out = NULL;
	pthread_mutex_lock(&p->mu);
	rc = resolve(p);
	pthread_mutex_unlock(&p->mu);
	if (rc == ATREST_EUNAVAILABLE) {
		module_restart(p->mod);
		pthread_mutex_lock(&p->mu);
		rc = resolve(p);
		pthread_mutex_unlock(&p->mu);
	}
	return rc;
}

static int p11_key_id(atrest_keyprov *kp, char *out, size_t cap)
{
	struct p11_kp *p = (struct p11_kp *)kp;

	ENSURE(strlen(p->key_id) < cap, ATREST_EINVAL, "key id buffer too small");
	strcpy(out, p->key_id);
	return 0;
}

static int p11_wrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	struct p11_kp *p = (struct p11_kp *)kp;
	struct crypt_arg a = {
		1, out + 1, aad, key, aad_len, key_len, out + 1 + IV_LEN, 0};
	CK_RV rv;

	ENSURE(cap >= 1 + IV_LEN + key_len + TAG_LEN, ATREST_EINVAL,
		"pkcs11: wrap buffer too small");
	a.out_len = cap - 1 - IV_LEN;
	out[0] = WRAP_FORMAT;
	GUARD(atrest__rand(out + 1, IV_LEN));
	if (p->kwp)
		return kwp_wrap(p, out, cap, out_len, key, key_len, aad, aad_len);
	GUARD(with_session(p, do_crypt, &a, &rv));
	if (rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID) {
		p->kwp = 1;
		return kwp_wrap(p, out, cap, out_len, key, key_len, aad, aad_len);
	}
	if (rv != CKR_OK)
		return p11_err(rv, "encrypting a data key with the token's key");
	ENSURE(a.out_len == key_len + TAG_LEN, ATREST_EKEY,
		"pkcs11: the token returned %lu bytes for AES-GCM",
		(unsigned long)a.out_len);
	*out_len = 1 + IV_LEN + a.out_len;
	return 0;
}

static int p11_unwrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	struct p11_kp *p = (struct p11_kp *)kp;
	uint8_t iv[IV_LEN], tmp[ATREST_WRAPPED_MAX];
	struct crypt_arg a = {
		0, iv, aad, wrapped + 1 + IV_LEN, aad_len, 0, tmp, sizeof(tmp)};
	CK_RV rv;
	int rc;

	if (wrapped_len > 1 && wrapped[0] == WRAP_KWP)
		return kwp_unwrap(
			p, out, cap, out_len, wrapped, wrapped_len, aad, aad_len);
	ENSURE(wrapped_len > 1 + IV_LEN + TAG_LEN && wrapped[0] == WRAP_FORMAT,
		ATREST_EKEY, "pkcs11: the wrapped key was not made by a PKCS#11 token");
	memcpy(iv, wrapped + 1, IV_LEN);
	a.in_len = wrapped_len - 1 - IV_LEN;
	GUARD(with_session(p, do_crypt, &a, &rv));
	if (rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID)
		return atrest__error(ATREST_EKEY,
			"pkcs11: this module cannot do CKM_AES_GCM, which the keyring's "
			"data keys are wrapped with (%s)",
			rv_name(rv));
	if (rv != CKR_OK)
		/* SoftHSM answers CKR_GENERAL_ERROR for a bad tag. */
		return rv_outage(rv) && rv != CKR_FUNCTION_FAILED
			? p11_err(rv, "decrypting a data key")
			: atrest__error(ATREST_EKEY,
				  "pkcs11: wrong master key: the data key does not "
				  "decrypt with %s (%s)",
				  p->key_id, rv_name(rv));
	rc = a.out_len <= cap ? 0 : ATREST_EINVAL;
	if (rc == 0) {
		memcpy(out, tmp, a.out_len);
		*out_len = a.out_len;
	}
	atrest__wipe(tmp, sizeof(tmp));
	return rc;
}

static void p11_free(atrest_keyprov *kp)
{
	struct p11_kp *p = (struct p11_kp *)kp;

	if (p->mod) {
		/* Login state is per token and process: log out when the
		 * last user of the module goes. */
		int mine = p->pid == getpid() && p->gen == p->mod->gen;

		if (p->nidle && p->mod->refs == 1 && mine)
			p->mod->f->C_Logout(p->idle[0]);
		drop_sessions(p, mine);
		module_put(p->mod);
	}
	atrest__secret_free(p->pin);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- the URI */

static const char *const path_attrs[] = {"token", "object", "id", "slot-id", "serial",
	"manufacturer", "model", "type", "library-manufacturer", "library-description",
	"library-version", "slot-description", "slot-manufacturer", NULL};
static const char *const query_attrs[] = {
	"pin-value", "pin-source", "module-path", "module-name", "x-wrap", NULL};

#define WHAT "pkcs11 URI"

static int parse_pin(struct p11_kp *p, const char *q, size_t qlen)
{
	char buf[4096];
	int rc;

	rc = atrest__uri_attr(buf, sizeof(buf), q, qlen, '&', "pin-value", WHAT);
	if (rc == 1)
		rc = atrest__secret_dup(&p->pin, buf, strlen(buf));
	else if (rc == 0 &&
		(rc = atrest__uri_attr(
			 buf, sizeof(buf), q, qlen, '&', "pin-source", WHAT)) == 1)
		rc = atrest__read_secret_file(&p->pin,
			strncmp(buf, "file:", 5) == 0 ? buf + 5 : buf,
			"pkcs11 pin-source");
	else if (rc == 0 && getenv("ATREST_PKCS11_PIN") && *getenv("ATREST_PKCS11_PIN"))
		rc = atrest__secret_dup(&p->pin, getenv("ATREST_PKCS11_PIN"),
			strlen(getenv("ATREST_PKCS11_PIN")));
	atrest__wipe(buf, sizeof(buf));
	return rc < 0 ? rc : 0;
}

static int parse_type(const char *path, size_t plen)
{
	char type[32];
	int rc = atrest__uri_attr(type, sizeof(type), path, plen, ';', "type", WHAT);

	GUARD(rc);
	ENSURE(rc == 0 || strcmp(type, "secret-key") == 0, ATREST_EKEY,
		"pkcs11 URI: the master key must be a secret key (type=secret-key)");
	return 0;
}

static int parse_select(struct p11_kp *p, const char *path, size_t plen)
{
	char slot[32], *end;
	int rc;

	GUARD(atrest__uri_known(path, plen, ';', path_attrs, WHAT));
	GUARD(parse_type(path, plen));
	GUARD(atrest__uri_attr(
		p->token, sizeof(p->token), path, plen, ';', "token", WHAT));
	GUARD(atrest__uri_attr(
		p->serial, sizeof(p->serial), path, plen, ';', "serial", WHAT));
	GUARD(atrest__uri_attr(
		p->object, sizeof(p->object), path, plen, ';', "object", WHAT));
	GUARD(atrest__uri_attr_bytes(
		p->id, sizeof(p->id), &p->id_len, path, plen, ';', "id", WHAT));
	rc = atrest__uri_attr(slot, sizeof(slot), path, plen, ';', "slot-id", WHAT);
	GUARD(rc);
	p->slot_id = -1;
	if (rc == 1) {
		p->slot_id = strtol(slot, &end, 10);
		ENSURE(*slot && !*end && p->slot_id >= 0, ATREST_EKEY,
			"pkcs11 URI: slot-id must be a number");
	}
	ENSURE(p->object[0] || p->id_len, ATREST_EKEY,
		"pkcs11 URI: name the key with object= or id=");
	return 0;
}

static int parse_module(char *module, size_t cap, const char *q, size_t qlen)
{
	const char *env = getenv("ATREST_PKCS11_MODULE");
	char name[256];
	int rc = atrest__uri_attr(module, cap, q, qlen, '&', "module-path", WHAT);

	GUARD(rc);
	if (rc == 1)
		return 0;
	rc = atrest__uri_attr(name, sizeof(name), q, qlen, '&', "module-name", WHAT);
	GUARD(rc);
	if (rc == 1) {
		ENSURE(!strchr(name, '/'), ATREST_EKEY,
			"pkcs11 URI: module-name is a name, not a path (use module-path)");
		snprintf(module, cap, "%s.so", name);
	} else {
		snprintf(module, cap, "%s", env && *env ? env : DEFAULT_MODULE);
	}
	return 0;
}

/*
 * x-wrap=aes-key-wrap-pad (a vendor query attribute, RFC 7512 section 2.3)
 * chooses the key-wrap fallback even where the module has AES-GCM: for
 * HSMs whose policy allows only key wrapping, and to test the fallback.
 */
static int parse_wrap(struct p11_kp *p, const char *q, size_t qlen)
{
	char how[32];
	int rc = atrest__uri_attr(how, sizeof(how), q, qlen, '&', "x-wrap", WHAT);

	GUARD(rc);
	ENSURE(rc == 0 || strcmp(how, "aes-gcm") == 0 ||
			strcmp(how, "aes-key-wrap-pad") == 0,
		ATREST_EKEY, "pkcs11 URI: x-wrap is aes-gcm or aes-key-wrap-pad");
	p->kwp = rc == 1 && strcmp(how, "aes-key-wrap-pad") == 0;
	return 0;
}

/* A non-secret id: what the URI selects, without the PIN or the module. */
static void make_key_id(struct p11_kp *p)
{
	char hex[2 * sizeof(p->id) + 1];
	uint8_t h[32];
	int n;

	atrest__hex(hex, p->id, p->id_len);
	n = snprintf(p->key_id, sizeof(p->key_id), "pkcs11:token=%s;%s%s%s%s",
		p->token[0] ? p->token : p->serial, p->object[0] ? "object=" : "",
		p->object, p->id_len ? (p->object[0] ? ";id=" : "id=") : "", hex);
	for (char *c = p->key_id; *c; c++)
		if ((unsigned char)*c < 0x21 || *c == '"' || *c == '\\' || *c == 0x7f)
			*c = '_';
	if (n >= (int)sizeof(p->key_id) &&
		atrest__sha256(h, p->key_id, strlen(p->key_id)) == 0) {
		atrest__hex(hex, h, 16);
		snprintf(p->key_id, sizeof(p->key_id), "pkcs11:sha256=%.32s", hex);
	}
}

int atrest__keyprov_pkcs11(atrest_keyprov **out, const char *uri)
{
	const char *path = uri + strlen("pkcs11:"), *q = strchr(path, '?');
	size_t plen = q ? (size_t)(q - path) : strlen(path), qlen = q ? strlen(q + 1) : 0;
	struct p11_kp *p;
	char module[4096];
	int rc;

	*out = NULL;
	GUARD(atrest__crypto_init());
	p = calloc(1, sizeof(*p));
	ENSURE(p, ATREST_ERROR, "out of memory");
	pthread_mutex_init(&p->mu, NULL);
	p->pid = getpid();
	q = q ? q + 1 : "";
	GUARD_OUT(atrest__uri_known(q, qlen, '&', query_attrs, WHAT));
	GUARD_OUT(parse_select(p, path, plen));
	GUARD_OUT(parse_pin(p, q, qlen));
	GUARD_OUT(parse_module(module, sizeof(module), q, qlen));
	GUARD_OUT(parse_wrap(p, q, qlen));
	make_key_id(p);
	GUARD_OUT(module_get(&p->mod, module));
	p->parent.version = ATREST_KEYPROV_VERSION;
	p->parent.kind = "pkcs11";
	p->parent.bind = p11_bind;
	p->parent.key_id = p11_key_id;
	p->parent.wrap = p11_wrap;
	p->parent.unwrap = p11_unwrap;
	p->parent.free = p11_free;
	*out = &p->parent;
out:
	if (rc < 0)
		p11_free(&p->parent);
	return rc;
}
