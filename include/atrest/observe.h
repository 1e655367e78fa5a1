/*
 * Observing a store: the event hook (one event per operation and failure),
 * the principal events are recorded for, the audit trail the library writes
 * (docs/AUDIT.md) and the metrics it keeps (docs/METRICS.md).
 */
#ifndef ATREST_OBSERVE_H
#define ATREST_OBSERVE_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What an event records.  Names (atrest_op_name) appear in audit lines. */
typedef enum atrest_op {
	ATREST_OP_OPEN = 1,        /* "open": a handle opened the store */
	ATREST_OP_PUT,             /* "put": an object sealed and committed */
	ATREST_OP_GET,             /* "get": an object (or a range of it) read */
	ATREST_OP_STAT,            /* "stat": header and metadata authenticated */
	ATREST_OP_LIST,            /* "list": names under a prefix listed */
	ATREST_OP_DELETE,          /* "delete" */
	ATREST_OP_ROTATE,          /* "rotate": a new active data key */
	ATREST_OP_REWRAP,          /* "rewrap": keyring under a new master key */
	ATREST_OP_REENCRYPT,       /* "reencrypt": the job, then one per object */
	ATREST_OP_MIGRATE,         /* "migrate": the job, then one per object */
	ATREST_OP_EXPOSE,          /* "expose": a data key marked compromised */
	ATREST_OP_DESTROY,         /* "destroy": a data key wiped */
	ATREST_OP_CONFIG,          /* "config": settings changed */
	ATREST_OP_KEY_UNWRAP,      /* "key_unwrap": a key provider call */
	ATREST_OP_KEY_WRAP,        /* "key_wrap": a key provider call */
	ATREST_OP_RECORDS,         /* "records": a recorder opened (namespace) */
	ATREST_OP_RECOUNT,         /* "recount": per-key usage counted by a scan */
	ATREST_OP_RECOVERED,       /* "recovered": the audit writer repaired a log */
	ATREST_OP_KEY_REWRAP,      /* "key_rewrap": a key rewrapped inside its service */
	ATREST_OP_UPLOAD_CREATE,   /* "upload_create": a multipart upload begun */
	ATREST_OP_UPLOAD_PART,     /* "upload_part": a part committed; count = number */
	ATREST_OP_UPLOAD_COMPLETE, /* "upload_complete": published; count = parts */
	ATREST_OP_UPLOAD_ABORT,    /* "upload_abort": an upload and its parts dropped */
	/* Events an embedding server records with atrest_audit_record: */
	ATREST_OP_AUTH = 64,     /* "auth": authentication (failed: outcome < 0) */
	ATREST_OP_APIKEY_CREATE, /* "apikey_create": name = the key's id */
	ATREST_OP_APIKEY_REVOKE, /* "apikey_revoke": name = the key's id */
	/* The library's own (atrest_tenant_add, atrest_tenant_shred): */
	ATREST_OP_TENANT_ADD,   /* "tenant_add": name = the tenant */
	ATREST_OP_TENANT_SHRED, /* "tenant_shred": name = the tenant; count */
	ATREST_OP_SERVER        /* "server": start, stop, reload (detail) */
} atrest_op;

/* "put", "key_unwrap", ...; "unknown" for other values. */
ATREST_EXTERN const char *atrest_op_name(int op);

/*
 * One operation or failure.  Strings are valid during the callback only.
 * Nothing secret is ever in an event: no key, passphrase, API key or data.
 */
typedef struct atrest_event {
	unsigned int version;  /* ATREST_EVENT_VERSION */
	int op;                /* atrest_op */
	int outcome;           /* 0, or the negative atrest_error_code */
	const char *principal; /* who (atrest_principal_set; else the OS user) */
	const char *tenant;    /* "" for the default tenant */
	const char *name;      /* object, prefix, namespace or subject; or NULL */
	uint64_t bytes;        /* plaintext bytes moved */
	int ranged;            /* a ranged get: offset and length below */
	uint64_t offset, length;
	uint32_t data_key_id;      /* 0: none */
	const char *master_key_id; /* the store's master key id, or NULL */
	const char *provider;      /* key provider kind (key_wrap, key_unwrap) */
	uint64_t duration_ns;
	uint64_t count;     /* objects listed, or rewritten by a job */
	const char *detail; /* the error message, or a non-secret note */
	uint64_t seq;       /* audit sequence number (0: not in a file log) */
} atrest_event;

#define ATREST_EVENT_VERSION 1
#define ATREST_EVENT_INIT                       \
	{                                       \
		.version = ATREST_EVENT_VERSION \
	}

/*
 * Called for every event of the store, in the thread that caused it, after
 * the audit trail has it.  It may be called with library locks held: it must
 * not call back into the store, and should be quick.
 */
typedef void (*atrest_event_cb)(const atrest_event *ev, void *payload);

typedef struct atrest_observer {
	unsigned int version; /* ATREST_OBSERVER_VERSION */
	atrest_event_cb on_event;
	void *payload;
} atrest_observer;

#define ATREST_OBSERVER_VERSION 1
#define ATREST_OBSERVER_INIT                       \
	{                                          \
		.version = ATREST_OBSERVER_VERSION \
	}

/*
 * The principal this thread's events are recorded for (an API-key id, an
 * S3 access key id, a user name), until changed; NULL goes back to the OS
 * user.  At most 127 printable bytes, never a secret.  ATREST_EINVAL when
 * not acceptable.
 */
ATREST_EXTERN int atrest_principal_set(const char *principal);

/*
 * Record an event of the embedding program in the store's audit trail,
 * metrics and observer: ev->op is one of ATREST_OP_AUTH and after
 * (authentication, API keys, server; tenant events are the library's own).  principal and tenant default
 * to this thread's principal and the handle's tenant.  Failed ATREST_OP_AUTH
 * events count in atrest_auth_failures_total.
 */
ATREST_EXTERN int atrest_audit_record(atrest_store *st, const atrest_event *ev);

/*
 * Make every audit line written so far durable, and sign the chain head
 * (the library does both at least once a second and at close).
 */
ATREST_EXTERN int atrest_audit_flush(atrest_store *st);

/* Where the store's audit trail goes: "off", "syslog" or a directory. */
ATREST_EXTERN const char *atrest_audit_location(atrest_store *st);

/*
 * The audit trail's Ed25519 public key (32 bytes), read from the keyring of
 * the open store (authenticated by the master key; the key is made when the
 * store had none).  The trail is the store's, tenants included: a handle on
 * a tenant answers with the key it took from the store's keyring at open.
 */
ATREST_EXTERN int atrest_audit_pubkey(uint8_t out[32], atrest_store *st);

/*
 * The same, read from the keyring of the store at location (a path or a
 * URI, as atrest_store_options.path) without a master key: NOT
 * authenticated (keep an exported copy for real checks).  ATREST_ENOTFOUND
 * when the store has no audit key yet.
 */
ATREST_EXTERN int atrest_audit_pubkey_unchecked(uint8_t out[32], const char *location);

/* What atrest_audit_verify found. */
typedef struct atrest_audit_report {
	unsigned int version; /* ATREST_AUDIT_REPORT_VERSION, set by the caller */
	uint64_t lines;       /* lines verified (events and heads) */
	uint64_t heads;       /* signed heads verified */
	uint64_t files;
	uint64_t first_seq, last_seq;
	uint64_t head_seq;  /* the last signed head */
	char head_hash[65]; /* its line hash, hex: record it to detect replay */
	int genesis;        /* the log starts at its first line (seq 1) */
	/* On failure: the file and 1-based line of the first problem. */
	char bad_file[1024];
	uint64_t bad_line;
} atrest_audit_report;

#define ATREST_AUDIT_REPORT_VERSION 1
#define ATREST_AUDIT_REPORT_INIT                       \
	{                                              \
		.version = ATREST_AUDIT_REPORT_VERSION \
	}

/*
 * Verify an audit log (a directory of segments, or one segment file) with
 * the public key alone: the hash chain, sequence numbers, every signed head,
 * and that nothing follows the last signed head.  0 when intact; else
 * ATREST_EINTEGRITY with the first bad file and line in out and the reason
 * as the last error (ATREST_ENOTFOUND: no log).  min_seq (0: none) is a
 * head sequence number known to exist: a log whose last signed head is older
 * was cut or replayed.
 */
ATREST_EXTERN int atrest_audit_verify(atrest_audit_report *out, const char *path,
	const uint8_t pubkey[32], uint64_t min_seq);

/*
 * The store's metrics in Prometheus text exposition format (version 0.0.4):
 * counters and histograms of this handle since it was opened, and gauges of
 * the store (data keys, their age and usage, keyring generation).  *out is
 * NUL-terminated; free it with atrest_free.
 */
ATREST_EXTERN int atrest_metrics_write(char **out, size_t *out_len, atrest_store *st);

/*
 * The same for several handles (one per tenant) in one exposition: each
 * sample carries a tenant label.
 */
ATREST_EXTERN int atrest_metrics_write_many(
	char **out, size_t *out_len, atrest_store *const *stores, size_t n);

#ifdef __cplusplus
}
#endif
#endif
