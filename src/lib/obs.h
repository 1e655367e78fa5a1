/*
 * Internals of observing a store (include/atrest/observe.h): the operation
 * context every public entry point opens and closes, the one emit path to
 * the metrics, the audit writer and the user's observer, and the hooks the
 * key provider wrappers, the key cache and the writer's commit call.
 */
#ifndef ATREST_OBS_H
#define ATREST_OBS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "atrest/observe.h"
#include "atrest/sys/keyprov.h"

struct atrest_store;
typedef struct atrest__obs atrest__obs;
typedef struct atrest__audit atrest__audit;
typedef struct atrest__metrics atrest__metrics;

/*
 * One public operation in progress on this thread.  Begun and ended by the
 * entry point's wrapper; provider calls and key lookups made meanwhile find
 * it through a thread-local pointer (ops nest: a job's puts, a put's unwrap).
 */
typedef struct atrest__op {
	struct atrest_store *st;
	int op;
	const char *name;
	uint64_t t0;
	uint64_t bytes, offset, length, count;
	int ranged;
	uint32_t dek;
	int emitted;      /* the put's event went out before its commit */
	int quiet;        /* end without an event (nothing happened) */
	int failed;       /* a streaming read's first failure */
	const char *note; /* the event's detail on success */
	/* The tenant its provider calls concern, when not the handle's (a
	 * shred, the store's rewrap: atrest__op_tenant). */
	const char *tenant;
	char *own; /* name copy of a suspended op */
	struct atrest__op *up;
} atrest__op;

/* Monotonic nanoseconds. */
uint64_t atrest__obs_clock(void);
/* This process's id (getpid, kept; renewed after fork). */
pid_t atrest__obs_pid(void);

void atrest__op_begin(
	atrest__op *op, struct atrest_store *st, int kind, const char *name);
/* Emit the operation's event (unless already emitted and rc == 0); rc. */
int atrest__op_end(atrest__op *op, int rc);
/*
 * A streaming reader or writer keeps its op between calls: suspend moves a
 * begun op into dst (off this thread), resume moves it back for the call
 * that ends it.
 */
void atrest__op_suspend(atrest__op *op, atrest__op *dst);
void atrest__op_resume(atrest__op *op, atrest__op *src);
/* Take op off this thread: it ends without an event (nothing happened). */
void atrest__op_drop(atrest__op *op);
/* A streaming read of got bytes that returned rc. */
void atrest__op_count(atrest__op *op, uint64_t got, int rc);
/* A snapshot operation (ATREST_OP_SNAPSHOT_PUT .. ATREST_OP_GC)? */
int atrest__op_is_snapshot(int kind);
/*
 * Provider calls of this thread's operation concern tenant t from now on
 * (NULL: the handle's own again); returns the one it replaces, to be put
 * back.  For handles atrest opens on a tenant inside a store operation.
 */
const char *atrest__op_tenant(const char *t);
/* The innermost operation of this thread, or NULL. */
atrest__op *atrest__op_current(void);

/*
 * Called by the writer right before its object becomes visible: the event
 * (put, or the object of a reencrypt/migrate job) is written first, and the
 * per-key usage counts the object.  Fails (and the put with it) when the
 * audit trail cannot take the line.
 */
int atrest__op_precommit(
	struct atrest_store *st, const char *name, uint64_t bytes, uint32_t dek);

/* A data key id looked up by the current operation (keyring.c). */
void atrest__op_key(uint32_t id);

/* Key cache outcomes (keyring.c). */
enum { ATREST__CACHE_HIT, ATREST__CACHE_MISS, ATREST__CACHE_EVICT };
void atrest__obs_cache(int what);

/* Around each key provider wrap/unwrap (keyprov.c): t0 from atrest__obs_clock. */
void atrest__obs_provider(atrest_keyprov *kp, int op, const uint8_t *aad, size_t aad_len,
	int rc, uint64_t t0);

/* Store lifecycle (store.c): set up before the keyring is read, finish
 * once it is open (rc: the open's result, returned), free at close. */
int atrest__obs_new(struct atrest_store *st, const atrest_store_options *o);
int atrest__obs_opened(struct atrest_store *st, int rc);
/* With the store's own keyring loaded (before a tenant's replaces it):
 * the audit signing key, made when missing (failures are counted, not
 * returned: the trail then stays unsigned). */
void atrest__obs_keyring(struct atrest_store *st);
/* A handle of atrest's own on a tenant of st (tenant.c): st's metrics,
 * audit writer and observer, and usage counts of its own keyring. */
int atrest__obs_share(struct atrest_store *t, struct atrest_store *st);
void atrest__obs_free(struct atrest_store *st);
#ifdef ATREST_TEST_HOOKS
/* Tests that count backend calls: no flusher thread (close still flushes). */
void atrest__obs_flusher_off(int off);
#endif

/* The handle's metrics (metrics.c). */
int atrest__metrics_new(atrest__metrics **out);
void atrest__metrics_free(atrest__metrics *m);
void atrest__metrics_event(atrest__metrics *m, const atrest_event *ev);
void atrest__metrics_cache(atrest__metrics *m, int what);
void atrest__metrics_audit(atrest__metrics *m, int ok);
atrest__metrics *atrest__obs_metrics(struct atrest_store *st);

/* The audit writer (audit.c). */
typedef struct atrest__audit_conf {
	const char *where; /* "off", "syslog" or a directory */
	uint64_t rotate_bytes;
	unsigned head_lines;
	uint8_t store_id[16];
} atrest__audit_conf;

int atrest__audit_new(atrest__audit **out, const atrest__audit_conf *c);
/* Sign heads from now on with this Ed25519 seed (32 bytes, copied). */
int atrest__audit_set_key(
	atrest__audit *a, const uint8_t seed[32], const uint8_t sid[16]);
/* Append ev as one line (its seq set); 0, or the error. */
int atrest__audit_append(atrest__audit *a, atrest_event *ev);
/* fdatasync and sign the head if lines are unsigned. */
int atrest__audit_flush(atrest__audit *a);
void atrest__audit_free(atrest__audit *a);
uint64_t atrest__audit_last_seq(atrest__audit *a);

/* Audit line coding shared by the writer and the verifier. */
#define ATREST__AUDIT_LINE_MAX 8192
#define ATREST__AUDIT_PREFIX "audit-"
#define ATREST__AUDIT_SUFFIX ".jsonl"
/* The bytes an Ed25519 head signs (docs/AUDIT.md): 76 bytes. */
#define ATREST__AUDIT_SIGMSG_LEN 76
void atrest__audit_sigmsg(uint8_t out[ATREST__AUDIT_SIGMSG_LEN], const uint8_t sid[16],
	uint64_t seq, const uint8_t prev[32]);
/* First 16 hex digits of SHA-256(pub), NUL-terminated. */
void atrest__audit_key_fp(char out[17], const uint8_t pub[32]);
/* The Ed25519 public key of a seed. */
int atrest__ed25519_public(uint8_t pub[32], const uint8_t seed[32]);

/* Per-key usage counts (usage.c). */
typedef struct atrest__usage atrest__usage;
int atrest__usage_new(atrest__usage **out);
void atrest__usage_free(atrest__usage *u);
/* Count an object replacing another (old_dek 0: none, or plaintext). */
void atrest__usage_add(atrest__usage *u, uint32_t dek, uint64_t bytes, int sign);
/* A committed put: new object under dek, replacing old (old_dek 0: none). */
void atrest__usage_put(struct atrest_store *st, uint32_t old_dek, uint64_t old_bytes,
	uint32_t dek, uint64_t bytes);
/* Merge this handle's changes into the store's counts file. */
int atrest__usage_flush(struct atrest_store *st);
/* Counts of key id (after merging): objects and bytes. */
typedef struct atrest__usage_row {
	uint32_t id;
	uint64_t objects, bytes;
} atrest__usage_row;
int atrest__usage_read(atrest__usage_row **rows, size_t *n, struct atrest_store *st);
/* Replace the counts with a full scan's (rows sorted by id). */
int atrest__usage_write(struct atrest_store *st, const atrest__usage_row *rows, size_t n);
atrest__usage *atrest__obs_usage(struct atrest_store *st);
/* Parse the counts file (fuzzed); ATREST_EINTEGRITY when malformed. */
int atrest__usage_parse(
	atrest__usage_row **rows, size_t *n, const char *text, size_t len);
/* At open: a keyring with no objects and no counts file gets empty counts. */
int atrest__usage_init(struct atrest_store *st);
/* Remove the counts kept beside the keyring at kr_key (a shredded tenant). */
int atrest__usage_remove(struct atrest_backend *b, const char *kr_key);
/* The last audit sequence number this handle wrote or saw (0: none). */
uint64_t atrest__obs_audit_seq(struct atrest_store *st);

#endif
