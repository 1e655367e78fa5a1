/*
 * The event hook (include/atrest/observe.h): every public operation opens an
 * atrest__op and closes it through atrest__op_end, which builds the one
 * atrest_event and hands it to the metrics, the audit writer and the user's
 * observer.  Also the principal, the process's flusher and the audit key.
 */
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "obs.h"
#include "store_int.h"

struct atrest__obs {
	atrest_store *owner;
	/* A handle of atrest's own on a tenant (atrest__obs_share) borrows
	 * metrics, audit writer and observer from its store's. */
	atrest__obs *parent;
	atrest__metrics *metrics;
	atrest__audit *audit; /* NULL: off */
	atrest__usage *usage; /* of this handle's keyring */
	char where[PATH_MAX];
	int has_pub; /* the store's audit public key, once known */
	uint8_t audit_pub[32];
	atrest_observer user;
	atrest__op open_op;
	pthread_mutex_t mk_mu; /* guards mkid */
	char mkid[128];        /* the master key id, copied from the keyring */
	/* On the flusher's list of this process (fl_pid: which one). */
	pid_t fl_pid;
	atrest__obs *fl_next;
};

static _Thread_local atrest__op *tl_op;
static _Thread_local char tl_principal[128];

const char *atrest_op_name(int op)
{
	static const char *const lib[] = {NULL, "open", "put", "get", "stat", "list",
		"delete", "rotate", "rewrap", "reencrypt", "migrate", "expose", "destroy",
		"config", "key_unwrap", "key_wrap", "records", "recount", "recovered",
		"key_rewrap", "upload_create", "upload_part", "upload_complete",
		"upload_abort"};
	static const char *const ext[] = {"auth", "apikey_create", "apikey_revoke",
		"tenant_add", "tenant_shred", "server"};

	if (op >= 1 && op < (int)(sizeof(lib) / sizeof(lib[0])))
		return lib[op];
	if (op >= ATREST_OP_AUTH && op <= ATREST_OP_SERVER)
		return ext[op - ATREST_OP_AUTH];
	return "unknown";
}

uint64_t atrest__obs_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the principal ---- */

static char os_user[128];
static pthread_once_t os_user_once = PTHREAD_ONCE_INIT;

static void os_user_init(void)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res &&
		atrest_principal_set(res->pw_name) == 0)
		snprintf(os_user, sizeof(os_user), "%s", tl_principal);
	else
		snprintf(os_user, sizeof(os_user), "uid:%u", (unsigned)geteuid());
	tl_principal[0] = '\0';
}

/* 1 to 127 printable bytes without spaces (NULL: none given). */
static int principal_check(const char *principal)
{
	size_t n = principal ? strlen(principal) : 0;

	if (!principal)
		return 0;
	ENSURE(n > 0 && n < sizeof(tl_principal), ATREST_EINVAL,
		"principal must be 1 to %zu bytes", sizeof(tl_principal) - 1);
	for (size_t i = 0; i < n; i++)
		ENSURE((unsigned char)principal[i] > 0x20 && principal[i] != 0x7f,
			ATREST_EINVAL,
			"principal must be printable, without spaces or control bytes");
	return 0;
}

int atrest_principal_set(const char *principal)
{
	GUARD(principal_check(principal));
	snprintf(tl_principal, sizeof(tl_principal), "%s", principal ? principal : "");
	return 0;
}

static const char *principal(void)
{
	if (tl_principal[0])
		return tl_principal;
	pthread_once(&os_user_once, os_user_init);
	return os_user;
}

/* ---- emitting ---- */

static void start_flusher(atrest_store *st);

/*
 * The one place events go out: defaults filled, then metrics, audit trail,
 * user observer.  Returns the audit writer's result.
 */
static int emit(atrest_store *st, atrest_event *ev)
{
	atrest__obs *o = st->obs;
	char mkid[128];
	int rc = 0;

	if (!o)
		return 0;
	if (!ev->principal)
		ev->principal = principal();
	if (!ev->tenant)
		ev->tenant = st->tenant;
	if (!ev->master_key_id) {
		pthread_mutex_lock(&o->mk_mu);
		memcpy(mkid, o->mkid, sizeof(mkid));
		pthread_mutex_unlock(&o->mk_mu);
		ev->master_key_id = mkid[0] ? mkid : NULL;
	}
	if (o->audit) {
		rc = atrest__audit_append(o->audit, ev);
		atrest__metrics_audit(o->metrics, rc == 0);
	}
	start_flusher(st); /* also merges the usage counts */
	atrest__metrics_event(o->metrics, ev);
	if (o->user.on_event)
		o->user.on_event(ev, o->user.payload);
	return rc;
}

static void op_event(atrest_event *ev, const atrest__op *op, int rc, const char *detail)
{
	*ev = (atrest_event)ATREST_EVENT_INIT;
	ev->op = op->op;
	ev->outcome = rc;
	ev->name = op->name;
	ev->bytes = op->bytes;
	ev->ranged = op->ranged;
	ev->offset = op->offset;
	ev->length = op->length;
	ev->data_key_id = op->dek;
	ev->count = op->count;
	ev->duration_ns = atrest__obs_clock() - op->t0;
	ev->detail = detail ? detail : op->note;
}

/* Object-level calls made inside another operation add no event of their
 * own (a put's writer, a get's reader, a job's rewrites). */
static int nested_quiet(int kind)
{
	return tl_op && kind >= ATREST_OP_PUT && kind <= ATREST_OP_DELETE;
}

void atrest__op_begin(atrest__op *op, atrest_store *st, int kind, const char *name)
{
	memset(op, 0, sizeof(*op));
	op->st = st;
	op->op = kind;
	op->name = name;
	op->t0 = atrest__obs_clock();
	op->quiet = nested_quiet(kind);
	if (op->quiet)
		return;
	op->up = tl_op;
	tl_op = op;
}

void atrest__op_suspend(atrest__op *op, atrest__op *dst)
{
	if (!op->quiet && tl_op == op)
		tl_op = op->up;
	*dst = *op;
	dst->up = NULL;
	if (!op->quiet && op->name) {
		dst->own = strdup(op->name);
		dst->name = dst->own;
	}
}

void atrest__op_resume(atrest__op *op, atrest__op *src)
{
	*op = *src;
	src->own = NULL;
	if (!op->st || op->quiet) {
		op->quiet = 1;
		return;
	}
	op->up = tl_op;
	tl_op = op;
}

void atrest__op_drop(atrest__op *op)
{
	if (!op->quiet && tl_op == op)
		tl_op = op->up;
	op->quiet = 1;
}

void atrest__op_count(atrest__op *op, uint64_t got, int rc)
{
	op->bytes += got;
	if (rc < 0 && !op->failed)
		op->failed = rc;
}

atrest__op *atrest__op_current(void)
{
	return tl_op;
}

int atrest__op_end(atrest__op *op, int rc)
{
	atrest_event ev;
	atrest__saved_error k;

	if (op->quiet) {
		free(op->own);
		return rc;
	}
	if (tl_op == op)
		tl_op = op->up;
	if (op->st && !(op->emitted && rc == 0)) {
		atrest__error_save(&k);
		op_event(&ev, op, rc, rc < 0 && k.code ? k.message : NULL);
		(void)emit(op->st, &ev);
		(void)atrest__error_restore(&k);
	}
	free(op->own);
	return rc;
}

int atrest__op_precommit(atrest_store *st, const char *name, uint64_t bytes, uint32_t dek)
{
	atrest__op *cur = tl_op, one;
	atrest_event ev;
	int rc;
	/* A put's event, and an upload's part or completion, is the object's */
	int merge = cur &&
		(cur->op == ATREST_OP_PUT || cur->op == ATREST_OP_UPLOAD_PART ||
			cur->op == ATREST_OP_UPLOAD_COMPLETE);

	if (merge) {
		cur->bytes = bytes;
		cur->dek = dek;
		cur->emitted = 1;
		one = *cur;
	} else {
		memset(&one, 0, sizeof(one));
		one.op = cur ? cur->op : ATREST_OP_PUT;
		one.t0 = atrest__obs_clock();
		one.bytes = bytes;
		one.dek = dek;
	}
	if (!merge || cur->op == ATREST_OP_PUT) /* an upload's: its object */
		one.name = name;
	op_event(&ev, &one, 0, NULL);
	rc = emit(st, &ev);
	if (rc < 0) {
		if (merge)
			cur->emitted = 0;
		atrest__error_prefix("audit trail cannot record the put, so the "
				     "object is not committed");
		return rc;
	}
	return 0;
}

/* The first data key an operation looks up is the one it is about. */
void atrest__op_key(uint32_t id)
{
	if (tl_op && !tl_op->dek)
		tl_op->dek = id;
}

void atrest__obs_cache(int what)
{
	if (tl_op && tl_op->st && tl_op->st->obs)
		atrest__metrics_cache(tl_op->st->obs->metrics, what);
}

/*
 * What a provider call was about, from its additional data "atrest/v1
 * <role>" || store id || le32 id (keyring.c): the data key id, or the role.
 */
static const char *aad_role(uint32_t *id, const uint8_t *aad, size_t n)
{
	static const char pre[] = "atrest/v1 ";

	*id = 0;
	if (n < sizeof(pre) - 1 + 20 || memcmp(aad, pre, sizeof(pre) - 1) != 0)
		return "other";
	if (n - 20 - (sizeof(pre) - 1) == 3 &&
		memcmp(aad + sizeof(pre) - 1, "dek", 3) == 0) {
		*id = atrest__le32(aad + n - 4);
		return NULL;
	}
	if (n - 20 - (sizeof(pre) - 1) == 5 &&
		memcmp(aad + sizeof(pre) - 1, "check", 5) == 0)
		return "check secret";
	if (n - 20 - (sizeof(pre) - 1) == 5 &&
		memcmp(aad + sizeof(pre) - 1, "audit", 5) == 0)
		return "audit key";
	return "other";
}

void atrest__obs_provider(atrest_keyprov *kp, int op, const uint8_t *aad, size_t aad_len,
	int rc, uint64_t t0)
{
	atrest__op one;
	atrest_event ev;
	atrest__saved_error k;
	const char *role;
	uint32_t id;

	if (!tl_op || !tl_op->st)
		return;
	memset(&one, 0, sizeof(one));
	one.op = op;
	one.t0 = t0;
	role = aad_role(&id, aad, aad_len);
	one.dek = id;
	atrest__error_save(&k);
	op_event(&ev, &one, rc, rc < 0 && k.code ? k.message : role);
	ev.provider = kp && kp->kind ? kp->kind : "?";
	(void)emit(tl_op->st, &ev);
	(void)atrest__error_restore(&k);
}

int atrest_audit_record(atrest_store *st, const atrest_event *in)
{
	atrest_event ev;
	int rc;

	ENSURE(st && in, ATREST_EINVAL, "atrest_audit_record: no store or event");
	GUARD(atrest__check_version(in->version, ATREST_EVENT_VERSION, "atrest_event"));
	ENSURE(in->op >= ATREST_OP_AUTH && in->op <= ATREST_OP_SERVER &&
			in->op != ATREST_OP_TENANT_ADD &&
			in->op != ATREST_OP_TENANT_SHRED,
		ATREST_EINVAL, "atrest_audit_record: event %d is the library's own",
		in->op);
	ENSURE(in->outcome <= 0 && in->outcome >= ATREST_ETOOBIG, ATREST_EINVAL,
		"atrest_audit_record: outcome %d is not an atrest_error_code",
		in->outcome);
	GUARD(principal_check(in->principal));
	ev = *in;
	ev.version = ATREST_EVENT_VERSION;
	ev.seq = 0;
	rc = emit(st, &ev);
	return rc;
}

/* ---- the handle's observer state ---- */

static int audit_where(
	const char **out, const atrest_store_options *o, char *buf, size_t cap)
{
	const char *w = o->version >= 2 ? o->audit : NULL;
	char *dir = NULL;

	if (!w || !*w)
		w = getenv("ATREST_AUDIT");
	*out = w && *w ? w : "off"; /* no local directory: docs/AUDIT.md */
	if ((w && *w) || o->backend)
		return 0;
	GUARD(atrest__location_dir(
		&dir, o->path && *o->path ? o->path : "./atrest-store"));
	if (dir) {
		snprintf(buf, cap, "%s/.atrest/audit", dir);
		*out = buf;
	}
	free(dir);
	return 0;
}

static uint64_t rotate_bytes(const atrest_store_options *o)
{
	const char *e = getenv("ATREST_AUDIT_ROTATE_BYTES");
	unsigned long long v = 0;

	if (o->version >= 2 && o->audit_rotate_bytes)
		return o->audit_rotate_bytes;
	if (e && *e)
		v = strtoull(e, NULL, 10);
	return v >= 4096 ? v : 64ull << 20;
}

int atrest__obs_new(atrest_store *st, const atrest_store_options *o)
{
	atrest__obs *obs = calloc(1, sizeof(*obs));
	char buf[PATH_MAX];
	const char *where;

	ENSURE(obs, ATREST_ERROR, "out of memory");
	st->obs = obs;
	GUARD(atrest__check_version(
		o->version, ATREST_STORE_OPTIONS_VERSION, "atrest_store_options"));
	pthread_mutex_init(&obs->mk_mu, NULL);
	obs->owner = st;
	if (o->version >= 2 && o->observer) {
		GUARD(atrest__check_version(o->observer->version, ATREST_OBSERVER_VERSION,
			"atrest_observer"));
		obs->user.on_event = o->observer->on_event;
		obs->user.payload = o->observer->payload;
	}
	GUARD(atrest__metrics_new(&obs->metrics));
	GUARD(atrest__usage_new(&obs->usage));
	GUARD(audit_where(&where, o, buf, sizeof(buf)));
	snprintf(obs->where, sizeof(obs->where), "%s", where);
	if (strcmp(where, "off") != 0) {
		atrest__audit_conf c = {where, rotate_bytes(o),
			o->version >= 2 && o->audit_head_lines ? o->audit_head_lines
							       : 1000,
			{0}};
		GUARD(atrest__audit_new(&obs->audit, &c));
	}
	atrest__op_begin(&obs->open_op, st, ATREST_OP_OPEN, NULL);
	return 0;
}

static void copy_mkid(atrest_store *st)
{
	char id[128];

	pthread_mutex_lock(&st->mu);
	snprintf(id, sizeof(id), "%s", st->kr ? st->kr->key_id : "");
	pthread_mutex_unlock(&st->mu);
	pthread_mutex_lock(&st->obs->mk_mu);
	memcpy(st->obs->mkid, id, sizeof(id));
	pthread_mutex_unlock(&st->obs->mk_mu);
}

static int make_audit_key(
	atrest_store *st, atrest__keyring *kr, atrest_keyprov **kp, void *arg)
{
	(void)st;
	(void)arg;
	return atrest__keyring_audit_make(kr, *kp);
}

/* The store keyring's audit key: its seed (made when missing) and public half. */
static int audit_seed(atrest_store *st, atrest__secret **seed, uint8_t pub[32])
{
	int rc;

	pthread_mutex_lock(&st->mu);
	rc = atrest__keyring_audit_seed(seed, st->kr, st->cur_kp);
	if (rc == 0)
		memcpy(pub, st->kr->audit_pub, 32);
	pthread_mutex_unlock(&st->mu);
	return rc;
}

/* The signing key, made (one keyring update) when the store has none. */
static int attach_key(atrest_store *st)
{
	atrest__obs *o = st->obs;
	atrest__secret *seed = NULL;
	int rc = audit_seed(st, &seed, o->audit_pub);

	if (rc == ATREST_ENOTFOUND) {
		GUARD(atrest__store_update(st, make_audit_key, NULL));
		rc = audit_seed(st, &seed, o->audit_pub);
	}
	GUARD(rc);
	rc = atrest__audit_set_key(o->audit, seed->data, st->store_id);
	atrest__secret_free(seed);
	__atomic_store_n(&o->has_pub, rc == 0, __ATOMIC_RELEASE);
	return rc;
}

void atrest__obs_keyring(atrest_store *st)
{
	atrest__obs *o = st->obs;
	atrest__saved_error k;
	int known;

	pthread_mutex_lock(&st->mu);
	known = st->kr != NULL;
	pthread_mutex_unlock(&st->mu);
	if (!o || o->parent || !known)
		return;
	if (!o->audit) { /* only its public half, for atrest_audit_pubkey */
		pthread_mutex_lock(&st->mu);
		known = st->kr->has_audit;
		if (known)
			memcpy(o->audit_pub, st->kr->audit_pub, 32);
		pthread_mutex_unlock(&st->mu);
		__atomic_store_n(&o->has_pub, known, __ATOMIC_RELEASE);
		return;
	}
	atrest__error_save(&k);
	if (attach_key(st) < 0)
		atrest__metrics_audit(o->metrics, 0);
	(void)atrest__error_restore(&k);
}

int atrest__obs_opened(atrest_store *st, int rc)
{
	atrest__obs *o = st->obs;
	atrest__saved_error k;

	if (!o)
		return rc;
	if (rc == 0) {
		copy_mkid(st);
		atrest__error_save(&k);
		(void)atrest__usage_init(st);
		(void)atrest__error_restore(&k);
	}
	if (rc == ATREST_ENOTFOUND) /* no store there to record it in */
		atrest__op_drop(&o->open_op);
	return atrest__op_end(&o->open_op, rc);
}

int atrest__obs_share(atrest_store *t, atrest_store *st)
{
	atrest__obs *p = st->obs, *o;

	if (!p)
		return 0;
	o = calloc(1, sizeof(*o));
	ENSURE(o, ATREST_ERROR, "out of memory");
	pthread_mutex_init(&o->mk_mu, NULL);
	o->owner = t;
	o->parent = p->parent ? p->parent : p;
	o->metrics = o->parent->metrics;
	o->audit = o->parent->audit;
	o->user = o->parent->user;
	memcpy(o->where, o->parent->where, sizeof(o->where));
	t->obs = o;
	return atrest__usage_new(&o->usage);
}

atrest__metrics *atrest__obs_metrics(atrest_store *st)
{
	return st->obs ? st->obs->metrics : NULL;
}

atrest__usage *atrest__obs_usage(atrest_store *st)
{
	return st->obs ? st->obs->usage : NULL;
}

uint64_t atrest__obs_audit_seq(atrest_store *st)
{
	return st->obs && st->obs->audit ? atrest__audit_last_seq(st->obs->audit) : 0;
}

/* ---- the flusher ---- */

static void flush_once(atrest_store *st)
{
	atrest__saved_error k;

	atrest__error_save(&k);
	if (st->obs->audit && atrest__audit_flush(st->obs->audit) < 0)
		atrest__metrics_audit(st->obs->metrics, 0);
	(void)atrest__usage_flush(st);
	copy_mkid(st);
	(void)atrest__error_restore(&k);
}

/*
 * One flusher thread per process serves every handle that has had an
 * event (a process opening many stores or tenants starts one thread, not
 * one each): each second it makes audit lines durable and signed, and
 * merges usage counts.  It ends when no handle is left on its list; a
 * forked child starts its own for the handles it uses.
 */
static pthread_mutex_t fl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fl_cv = PTHREAD_COND_INITIALIZER;
static atrest__obs *fl_list;
static const atrest__obs *fl_busy; /* being flushed, off the mutex */
static pid_t fl_running;           /* the process whose thread runs */
#ifdef ATREST_TEST_HOOKS
static int fl_off;

void atrest__obs_flusher_off(int off)
{
	__atomic_store_n(&fl_off, off, __ATOMIC_RELAXED);
}
#endif

static void *flusher_main(void *arg)
{
	struct timespec at;

	(void)arg;
	pthread_mutex_lock(&fl_mu);
	while (fl_list) {
		clock_gettime(CLOCK_REALTIME, &at);
		at.tv_sec += 1;
		pthread_cond_timedwait(&fl_cv, &fl_mu, &at);
		for (atrest__obs *o = fl_list; o; o = o->fl_next) {
			fl_busy = o; /* its close waits for us */
			pthread_mutex_unlock(&fl_mu);
			flush_once(o->owner);
			pthread_mutex_lock(&fl_mu);
			fl_busy = NULL;
			pthread_cond_broadcast(&fl_cv);
		}
	}
	fl_running = 0;
	pthread_mutex_unlock(&fl_mu);
	return NULL;
}

/* A fork never copies the list's mutex while the flusher holds it. */
static void fl_lock(void)
{
	pthread_mutex_lock(&fl_mu);
}

static void fl_unlock(void)
{
	pthread_mutex_unlock(&fl_mu);
}

static void fl_atfork(void)
{
	pthread_atfork(fl_lock, fl_unlock, fl_unlock);
}

/* On the first event of st's handle in this process. */
static void start_flusher(atrest_store *st)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	atrest__obs *o = st->obs;
	pid_t me = getpid();
	pthread_attr_t attr;
	pthread_t th;

	if (__atomic_load_n(&o->fl_pid, __ATOMIC_ACQUIRE) == me)
		return;
#ifdef ATREST_TEST_HOOKS
	if (__atomic_load_n(&fl_off, __ATOMIC_RELAXED))
		return;
#endif
	pthread_once(&once, fl_atfork);
	pthread_mutex_lock(&fl_mu);
	if (fl_running != me) { /* first, or a forked child: the list was theirs */
		fl_list = NULL;
		fl_busy = NULL;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&th, &attr, flusher_main, NULL) == 0)
			fl_running = me;
		pthread_attr_destroy(&attr);
	}
	if (fl_running == me && o->fl_pid != me) {
		o->fl_next = fl_list;
		fl_list = o;
		__atomic_store_n(&o->fl_pid, me, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&fl_mu);
}

/* Off the list, once the flusher is not working on it. */
static void stop_flushing(atrest__obs *o)
{
	pid_t me = getpid();

	if (__atomic_load_n(&o->fl_pid, __ATOMIC_ACQUIRE) != me)
		return;
	pthread_mutex_lock(&fl_mu);
	while (fl_busy == o)
		pthread_cond_wait(&fl_cv, &fl_mu);
	for (atrest__obs **p = &fl_list; *p; p = &(*p)->fl_next)
		if (*p == o) {
			*p = o->fl_next;
			break;
		}
	pthread_mutex_unlock(&fl_mu);
}

void atrest__obs_free(atrest_store *st)
{
	atrest__obs *o = st->obs;

	if (!o)
		return;
	stop_flushing(o);
	if (st->kr)
		flush_once(st);
	if (!o->parent) {
		atrest__audit_free(o->audit);
		atrest__metrics_free(o->metrics);
	}
	atrest__usage_free(o->usage);
	pthread_mutex_destroy(&o->mk_mu);
	free(o);
	st->obs = NULL;
}

/* ---- public audit helpers ---- */

int atrest_audit_flush(atrest_store *st)
{
	GUARD(st->obs && st->obs->audit ? atrest__audit_flush(st->obs->audit) : 0);
	return atrest__usage_flush(st);
}

const char *atrest_audit_location(atrest_store *st)
{
	return st->obs ? st->obs->where : "off";
}

/* The store's key, made when missing (a tenant's handle: as taken at open). */
int atrest_audit_pubkey(uint8_t out[32], atrest_store *st)
{
	atrest__obs *o = st->obs;
	int rc;

	ENSURE(st, ATREST_EINVAL, "atrest_audit_pubkey: no store");
	if (st->tenant[0] || (o && o->parent)) {
		ENSURE(o && __atomic_load_n(&o->has_pub, __ATOMIC_ACQUIRE),
			ATREST_ENOTFOUND,
			"the store has no audit key yet: ask through the store, not "
			"tenant '%s'",
			st->tenant);
		memcpy(out, o->audit_pub, 32);
		return 0;
	}
	GUARD(atrest__store_refresh(st, 0));
	pthread_mutex_lock(&st->mu);
	rc = st->kr->has_audit ? 0 : ATREST_ENOTFOUND;
	if (rc == 0)
		memcpy(out, st->kr->audit_pub, 32);
	pthread_mutex_unlock(&st->mu);
	if (rc == ATREST_ENOTFOUND) {
		GUARD(atrest__store_update(st, make_audit_key, NULL));
		pthread_mutex_lock(&st->mu);
		memcpy(out, st->kr->audit_pub, 32);
		pthread_mutex_unlock(&st->mu);
	}
	return 0;
}
