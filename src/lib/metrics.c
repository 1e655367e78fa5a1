/*
 * Metrics kept by a store handle (docs/METRICS.md): lock-free counters and
 * histograms fed by the event hook, rendered with the store's gauges (data
 * keys, their age and usage, keyring generation) in Prometheus text format.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "atrest/atrest.h"
#include "obs.h"
#include "store_int.h"

#define NB 17
static const double BUCKETS[NB] = {50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

#define LIB_OPS 40 /* ops 1..39 of the library, then 64.. from LIB_OPS */
#define NOPS 48    /* mapped by op_index */
#define NOUT 10    /* outcomes 0..-9 */
#define NPROV 8    /* provider kinds */
#define NDEK 128   /* data keys with their own series */

typedef struct hist {
	uint64_t b[NB], count, sum_ns;
} hist;

typedef struct prov {
	char kind[32];
	hist h[3]; /* wrap, unwrap, rewrap (in the service) */
	uint64_t errors[3];
} prov;

typedef struct dekc {
	uint32_t id;
	uint64_t sealed_obj, sealed_bytes, opened_obj, opened_bytes;
} dekc;

struct atrest__metrics {
	uint64_t ops[NOPS][NOUT];
	uint64_t enc, dec, enc_fail, dec_fail, auth_fail, rotations;
	hist enc_h, dec_h;
	uint64_t cache[3];
	uint64_t audit_ok, audit_fail;
	pthread_mutex_t mu; /* adding provider kinds and data keys */
	prov provs[NPROV];
	size_t nprov; /* atomic: entries below it are complete */
	dekc deks[NDEK];
	size_t ndek;
	dekc other;
};

#define INC(x, n) __atomic_fetch_add(&(x), (n), __ATOMIC_RELAXED)
#define INCP(p, n) __atomic_fetch_add((p), (n), __ATOMIC_RELAXED)
#define LD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

int atrest__metrics_new(atrest__metrics **out)
{
	*out = calloc(1, sizeof(**out));
	ENSURE(*out, ATREST_ERROR, "out of memory");
	pthread_mutex_init(&(*out)->mu, NULL);
	return 0;
}

void atrest__metrics_free(atrest__metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static int op_index(int op)
{
	if (op >= 1 && op < ATREST_OP_AUTH && op < LIB_OPS)
		return op;
	if (op >= ATREST_OP_AUTH && op <= ATREST_OP_SERVER)
		return LIB_OPS + op - ATREST_OP_AUTH;
	return 0;
}

static void observe(hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;

	for (int i = 0; i < NB; i++)
		if (s <= BUCKETS[i]) {
			INC(h->b[i], 1);
			break;
		}
	INC(h->count, 1);
	INC(h->sum_ns, ns);
}

static prov *prov_of(atrest__metrics *m, const char *kind)
{
	size_t n = __atomic_load_n(&m->nprov, __ATOMIC_ACQUIRE);
	prov *p = NULL;

	for (size_t i = 0; i < n; i++)
		if (strcmp(m->provs[i].kind, kind) == 0)
			return &m->provs[i];
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->nprov && !p; i++)
		if (strcmp(m->provs[i].kind, kind) == 0)
			p = &m->provs[i];
	if (!p && m->nprov < NPROV) {
		p = &m->provs[m->nprov];
		snprintf(p->kind, sizeof(p->kind), "%s", kind);
		__atomic_store_n(&m->nprov, m->nprov + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&m->mu);
	return p;
}

static dekc *dek_of(atrest__metrics *m, uint32_t id)
{
	size_t n = __atomic_load_n(&m->ndek, __ATOMIC_ACQUIRE);
	dekc *d = NULL;

	for (size_t i = 0; i < n; i++)
		if (m->deks[i].id == id)
			return &m->deks[i];
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->ndek && !d; i++)
		if (m->deks[i].id == id)
			d = &m->deks[i];
	if (!d && m->ndek < NDEK) {
		d = &m->deks[m->ndek];
		d->id = id;
		__atomic_store_n(&m->ndek, m->ndek + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&m->mu);
	return d ? d : &m->other;
}

/* Failures that are the crypto's or the keys' (not a bad name, not absent). */
static int crypto_failure(int rc)
{
	return rc < 0 && rc != ATREST_EINVAL && rc != ATREST_ENOTFOUND &&
		rc != ATREST_EEXISTS;
}

static void provider_event(atrest__metrics *m, const atrest_event *ev)
{
	prov *p = prov_of(m, ev->provider ? ev->provider : "?");
	int w = ev->op == ATREST_OP_KEY_UNWRAP   ? 1
		: ev->op == ATREST_OP_KEY_REWRAP ? 2
						 : 0;

	if (!p)
		return;
	observe(&p->h[w], ev->duration_ns);
	if (ev->outcome < 0)
		INC(p->errors[w], 1);
}

static void object_event(atrest__metrics *m, const atrest_event *ev, int seal)
{
	dekc *d = dek_of(m, ev->data_key_id);

	if (ev->outcome < 0) {
		if (crypto_failure(ev->outcome))
			INCP(seal ? &m->enc_fail : &m->dec_fail, 1);
		return;
	}
	INCP(seal ? &m->enc : &m->dec, 1);
	observe(seal ? &m->enc_h : &m->dec_h, ev->duration_ns);
	INCP(seal ? &d->sealed_obj : &d->opened_obj, 1);
	INCP(seal ? &d->sealed_bytes : &d->opened_bytes, ev->bytes);
}

void atrest__metrics_event(atrest__metrics *m, const atrest_event *ev)
{
	int out = ev->outcome <= 0 && ev->outcome >= -9 ? -ev->outcome : 1;

	INC(m->ops[op_index(ev->op)][out], 1);
	switch (ev->op) {
	case ATREST_OP_PUT:
		object_event(m, ev, 1);
		break;
	case ATREST_OP_REENCRYPT:
	case ATREST_OP_MIGRATE:
		if (!ev->detail || ev->outcome < 0) /* one object, not the job */
			object_event(m, ev, 1);
		break;
	case ATREST_OP_GET:
	case ATREST_OP_STAT:
		object_event(m, ev, 0);
		break;
	case ATREST_OP_KEY_WRAP:
	case ATREST_OP_KEY_UNWRAP:
	case ATREST_OP_KEY_REWRAP:
		provider_event(m, ev);
		break;
	case ATREST_OP_ROTATE:
		if (ev->outcome == 0)
			INC(m->rotations, 1);
		break;
	case ATREST_OP_AUTH:
		if (ev->outcome < 0)
			INC(m->auth_fail, 1);
		break;
	default:
		break;
	}
}

void atrest__metrics_cache(atrest__metrics *m, int what)
{
	if (m && what >= 0 && what < 3)
		INC(m->cache[what], 1);
}

void atrest__metrics_audit(atrest__metrics *m, int ok)
{
	INCP(ok ? &m->audit_ok : &m->audit_fail, 1);
}

/* ---- rendering ---- */

typedef struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_fmt(sbuf *b, const char *fmt, ...) ATREST__PRINTF(2, 3);
static void sb_fmt(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int tries = 0; tries < 2 && !b->oom; tries++) {
		va_start(ap, fmt);
		n = vsnprintf(
			b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n) * 2 + 4096;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

/* A label value, escaped as the exposition format asks. */
static void sb_label(sbuf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sb_fmt(b, "\\%c", *v);
		else if (*v == '\n')
			sb_fmt(b, "\\n");
		else
			sb_fmt(b, "%c", *v);
	}
}

static void family(sbuf *b, const char *name, const char *type, const char *help)
{
	sb_fmt(b, "# HELP atrest_%s %s\n# TYPE atrest_%s %s\n", name, help, name, type);
}

/* One rendering target: a handle and its tenant label (or none). */
typedef struct target {
	atrest_store *st;
	atrest__metrics *m;
	int tenant_label;
	/* A snapshot of the store's data keys and their usage. */
	atrest_key_info *keys;
	size_t nkeys;
	uint64_t generation;
	atrest__usage_row *use;
	size_t nuse;
} target;

/* "{tenant="x",extra}" or "{extra}" or "". */
static void labels(sbuf *b, const target *t, const char *extra)
{
	int any = t->tenant_label || (extra && *extra);

	if (!any)
		return;
	sb_fmt(b, "{");
	if (t->tenant_label) {
		sb_fmt(b, "tenant=\"");
		sb_label(b, t->st->tenant);
		sb_fmt(b, "\"%s", extra && *extra ? "," : "");
	}
	if (extra && *extra)
		sb_fmt(b, "%s", extra);
	sb_fmt(b, "}");
}

static void sample(
	sbuf *b, const char *name, const target *t, const char *extra, double v)
{
	sb_fmt(b, "atrest_%s", name);
	labels(b, t, extra);
	sb_fmt(b, " %.17g\n", v);
}

static void hist_samples(
	sbuf *b, const char *name, const target *t, const char *extra, const hist *h)
{
	char lab[256], n[96];
	uint64_t cum = 0;

	for (int i = 0; i <= NB; i++) {
		if (i < NB) {
			cum += LD(h->b[i]);
			snprintf(lab, sizeof(lab), "%s%sle=\"%g\"", extra ? extra : "",
				extra && *extra ? "," : "", BUCKETS[i]);
		} else {
			cum = LD(h->count);
			snprintf(lab, sizeof(lab), "%s%sle=\"+Inf\"", extra ? extra : "",
				extra && *extra ? "," : "");
		}
		snprintf(n, sizeof(n), "%s_bucket", name);
		sample(b, n, t, lab, (double)cum);
	}
	snprintf(n, sizeof(n), "%s_sum", name);
	sample(b, n, t, extra, (double)LD(h->sum_ns) / 1e9);
	snprintf(n, sizeof(n), "%s_count", name);
	sample(b, n, t, extra, (double)LD(h->count));
}

static void render_ops(sbuf *b, const target *tg, size_t n)
{
	static const char *const outs[NOUT] = {"ok", "error", "invalid", "not_found",
		"integrity", "key", "exists", "unavailable", "no_space", "too_big"};
	char lab[128];

	family(b, "operations_total", "counter",
		"Operations of the store handle by operation and outcome.");
	for (size_t s = 0; s < n; s++)
		for (int op = 1; op < NOPS; op++)
			for (int o = 0; o < NOUT; o++) {
				uint64_t v = LD(tg[s].m->ops[op][o]);
				int code =
					op < LIB_OPS ? op : ATREST_OP_AUTH + op - LIB_OPS;
				if (!v)
					continue;
				snprintf(lab, sizeof(lab),
					"operation=\"%s\",outcome=\"%s\"",
					atrest_op_name(code), outs[o]);
				sample(b, "operations_total", &tg[s], lab, (double)v);
			}
}

/* Counters without labels: offsetof into the metrics struct. */
static const struct plain {
	const char *name, *help;
	size_t off;
} PLAIN[] = {
	{"encryptions_total", "Objects sealed (puts and re-encryptions).",
		offsetof(atrest__metrics, enc)},
	{"decryptions_total", "Objects opened (gets and stats).",
		offsetof(atrest__metrics, dec)},
	{"encryption_failures_total", "Seals that failed (key, integrity, I/O).",
		offsetof(atrest__metrics, enc_fail)},
	{"decryption_failures_total", "Opens that failed (key, integrity, I/O).",
		offsetof(atrest__metrics, dec_fail)},
	{"auth_failures_total", "Failed authentications recorded by the server.",
		offsetof(atrest__metrics, auth_fail)},
	{"key_rotations_total", "Data-key rotations (by command or policy).",
		offsetof(atrest__metrics, rotations)},
	{"key_cache_hits_total", "Data-key lookups served from the key cache.",
		offsetof(atrest__metrics, cache[ATREST__CACHE_HIT])},
	{"key_cache_misses_total", "Data-key lookups that had to unwrap the key.",
		offsetof(atrest__metrics, cache[ATREST__CACHE_MISS])},
	{"key_cache_evictions_total", "Cached data keys expired (TTL or uses).",
		offsetof(atrest__metrics, cache[ATREST__CACHE_EVICT])},
	{"audit_events_total", "Events written to the audit trail.",
		offsetof(atrest__metrics, audit_ok)},
	{"audit_write_failures_total", "Events the audit trail could not take.",
		offsetof(atrest__metrics, audit_fail)},
};

static void render_plain(sbuf *b, const target *tg, size_t n)
{
	for (size_t i = 0; i < sizeof(PLAIN) / sizeof(PLAIN[0]); i++) {
		family(b, PLAIN[i].name, "counter", PLAIN[i].help);
		for (size_t s = 0; s < n; s++) {
			uint64_t *v = (uint64_t *)((char *)tg[s].m + PLAIN[i].off);
			sample(b, PLAIN[i].name, &tg[s], NULL, (double)LD(*v));
		}
	}
}

/* Provider calls by provider and operation: durations, or errors. */
static void kms_family(sbuf *b, const target *tg, size_t n, int durations)
{
	static const char *const OPS[3] = {"wrap", "unwrap", "rewrap"};
	const char *name =
		durations ? "kms_call_duration_seconds" : "kms_call_errors_total";
	char lab[128];

	if (durations)
		family(b, name, "histogram",
			"Key provider (KMS) calls by provider and operation.");
	else
		family(b, name, "counter",
			"Key provider calls that failed (unreachable, wrong key).");
	for (size_t s = 0; s < n; s++)
		for (size_t i = 0; i < __atomic_load_n(&tg[s].m->nprov, __ATOMIC_ACQUIRE);
			i++)
			for (int w = 0; w < 3; w++) {
				const prov *p = &tg[s].m->provs[i];
				if (w == 2 && !LD(p->h[2].count)) /* providers that can */
					continue;
				snprintf(lab, sizeof(lab),
					"provider=\"%s\",operation=\"%s\"", p->kind,
					OPS[w]);
				if (durations)
					hist_samples(b, name, &tg[s], lab, &p->h[w]);
				else
					sample(b, name, &tg[s], lab,
						(double)LD(p->errors[w]));
			}
}

static void render_hists(sbuf *b, const target *tg, size_t n)
{
	family(b, "encryption_duration_seconds", "histogram",
		"Time to seal and commit an object.");
	for (size_t s = 0; s < n; s++)
		hist_samples(
			b, "encryption_duration_seconds", &tg[s], NULL, &tg[s].m->enc_h);
	family(b, "decryption_duration_seconds", "histogram",
		"Time to read and authenticate an object.");
	for (size_t s = 0; s < n; s++)
		hist_samples(
			b, "decryption_duration_seconds", &tg[s], NULL, &tg[s].m->dec_h);
	kms_family(b, tg, n, 1);
	kms_family(b, tg, n, 0);
}

static void dek_series(sbuf *b, const target *t, const char *name, size_t field)
{
	char lab[64];
	size_t n = __atomic_load_n(&t->m->ndek, __ATOMIC_ACQUIRE);

	for (size_t i = 0; i <= n; i++) {
		const dekc *d = i < n ? &t->m->deks[i] : &t->m->other;
		uint64_t v = LD(*(const uint64_t *)((const char *)d + field));
		if (i == n && !v)
			continue;
		if (i < n)
			snprintf(lab, sizeof(lab), "data_key=\"%u\"", d->id);
		else
			snprintf(lab, sizeof(lab), "data_key=\"other\"");
		sample(b, name, t, lab, (double)v);
	}
}

static void render_deks(sbuf *b, const target *tg, size_t n)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} f[] = {{"sealed_objects_total", "Objects sealed by this handle, by data key.",
			 offsetof(dekc, sealed_obj)},
		{"sealed_bytes_total",
			"Plaintext bytes sealed by this handle, by data key.",
			offsetof(dekc, sealed_bytes)},
		{"opened_objects_total", "Objects opened by this handle, by data key.",
			offsetof(dekc, opened_obj)},
		{"opened_bytes_total",
			"Plaintext bytes opened by this handle, by data key.",
			offsetof(dekc, opened_bytes)}};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		family(b, f[i].name, "counter", f[i].help);
		for (size_t s = 0; s < n; s++)
			dek_series(b, &tg[s], f[i].name, f[i].off);
	}
}

static uint64_t usage_of(const target *t, uint32_t id, int bytes)
{
	for (size_t i = 0; i < t->nuse; i++)
		if (t->use[i].id == id)
			return bytes ? t->use[i].bytes : t->use[i].objects;
	return 0;
}

static void render_keys(sbuf *b, const target *tg, size_t n)
{
	static const char *const what[3] = {
		"data_key_age_seconds", "data_key_objects", "data_key_bytes"};
	static const char *const help[3] = {
		"Age of each data key (status: active, retired, exposed, destroyed).",
		"Objects of the store sealed under each data key (kept incrementally).",
		"Plaintext bytes of the store under each data key (kept incrementally)."};
	int64_t now = atrest__now();
	char lab[96];

	for (int w = 0; w < 3; w++) {
		family(b, what[w], "gauge", help[w]);
		for (size_t s = 0; s < n; s++)
			for (size_t i = 0; i < tg[s].nkeys; i++) {
				const atrest_key_info *k = &tg[s].keys[i];
				snprintf(lab, sizeof(lab),
					"data_key=\"%u\",status=\"%s\"", k->id,
					k->status);
				sample(b, what[w], &tg[s], lab,
					w == 0 ? (double)(now - k->created)
					       : (double)usage_of(&tg[s], k->id, w == 2));
			}
	}
	family(b, "keyring_generation", "gauge",
		"Generation of the keyring (bumped by every key change).");
	for (size_t s = 0; s < n; s++)
		sample(b, "keyring_generation", &tg[s], NULL, (double)tg[s].generation);
	family(b, "audit_last_sequence", "gauge",
		"Sequence number of the last audit line this handle wrote or saw.");
	for (size_t s = 0; s < n; s++)
		sample(b, "audit_last_sequence", &tg[s], NULL,
			(double)atrest__obs_audit_seq(tg[s].st));
}

static void render_build(sbuf *b)
{
	family(b, "build_info", "gauge",
		"Version of libatrest and of OpenSSL it runs with.");
	sb_fmt(b, "atrest_build_info{version=\"%s\",openssl=\"", ATREST_VERSION);
	sb_label(b, OpenSSL_version(OPENSSL_VERSION));
	sb_fmt(b, "\"} 1\n");
}

static int snapshot(target *t)
{
	atrest__keyring *kr;

	GUARD(atrest__store_refresh(t->st, 0));
	pthread_mutex_lock(&t->st->mu);
	kr = t->st->kr;
	t->generation = kr->generation;
	t->nkeys = kr->nkeys;
	t->keys = calloc(kr->nkeys ? kr->nkeys : 1, sizeof(*t->keys));
	for (size_t i = 0; t->keys && i < kr->nkeys; i++) {
		t->keys[i].id = kr->keys[i].id;
		t->keys[i].status = atrest__dek_status_name(kr->keys[i].status);
		t->keys[i].created = kr->keys[i].created;
	}
	pthread_mutex_unlock(&t->st->mu);
	ENSURE(t->keys, ATREST_ERROR, "out of memory");
	if (atrest__usage_read(&t->use, &t->nuse, t->st) < 0) {
		t->use = NULL; /* no counts yet (atrest keys counts them) */
		t->nuse = 0;
	}
	return 0;
}

int atrest_metrics_write_many(
	char **out, size_t *out_len, atrest_store *const *stores, size_t n)
{
	target *tg = calloc(n ? n : 1, sizeof(*tg));
	sbuf b = {0};
	int rc = 0;

	*out = NULL;
	*out_len = 0;
	ENSURE(tg, ATREST_ERROR, "out of memory");
	for (size_t s = 0; s < n && rc == 0; s++) {
		tg[s].st = stores[s];
		tg[s].m = atrest__obs_metrics(stores[s]);
		tg[s].tenant_label = n > 1;
		rc = tg[s].m ? snapshot(&tg[s])
			     : atrest__error(ATREST_EINVAL, "metrics: store not open");
	}
	if (rc == 0) {
		render_build(&b);
		render_ops(&b, tg, n);
		render_plain(&b, tg, n);
		render_hists(&b, tg, n);
		render_deks(&b, tg, n);
		render_keys(&b, tg, n);
		rc = b.oom || !b.p ? atrest__error(ATREST_ERROR, "out of memory") : 0;
	}
	for (size_t s = 0; s < n; s++) {
		free(tg[s].keys);
		free(tg[s].use);
	}
	free(tg);
	if (rc < 0) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
}

int atrest_metrics_write(char **out, size_t *out_len, atrest_store *st)
{
	return atrest_metrics_write_many(out, out_len, &st, 1);
}
