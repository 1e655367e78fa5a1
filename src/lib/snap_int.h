/*
 * Internals shared by the snapshot modules: snap.c (the writer, leases, the
 * sequence counter), snap_tree.c (a directory in parallel), snap_read.c
 * (reading and verifying), snap_restore.c (a tree back on disk), snap_gc.c
 * (listing, removal, gc) and snap_fs.c (paths beneath a directory).
 */
#ifndef ATREST_SNAP_INT_H
#define ATREST_SNAP_INT_H

#include <pthread.h>
#include <stdint.h>

#include "atrest/snapshot.h"
#include "crypto.h"
#include "manifest.h"
#include "secret.h"
#include "store_int.h"

/* Internal object names (FORMAT.md 8.1), relative to the tenant. */
#define SNAP_ROOT ".atrest/snap/"
#define SNAP_NAME_MAX (ATREST_NAME_MAX + 1)
#define SNAP_SEQ_NAME SNAP_ROOT "seq"

/* Small objects of the protocol (leases, markers, counter) are at most this. */
#define SNAP_SMALL_MAX (64u << 20)
/* Defaults, seconds. */
#define SNAP_LEASE_TTL 3600u
#define SNAP_GC_TTL 60u
#define SNAP_GC_GRACE 3600
#define SNAP_GC_UPLOAD_AGE 86400 /* dead writers' uploads, at least this old */

/* A snapshot name: an object name of at most 1000 bytes. */
int atrest__snap_name_check(const char *name);

/* ".atrest/snap/m/<name>", "d/<hex>/<n>", "l/<hex>", "g/<hex>" into out. */
int atrest__snap_mname(char out[SNAP_NAME_MAX], const char *name);
void atrest__snap_dname(char out[SNAP_NAME_MAX], const atrest__snap_ref *r);
void atrest__snap_lname(char out[SNAP_NAME_MAX], const uint8_t id[ATREST__SNAP_ID_LEN]);
void atrest__snap_gname(char out[SNAP_NAME_MAX], const uint8_t id[ATREST__SNAP_ID_LEN]);
/* Parse "<32 hex>/<n>" (a data object under d/); 0 or -1. */
int atrest__snap_parse_dref(atrest__snap_ref *out, const char *rel);
/* Parse 32 hex digits (a lease or marker id) ending the string; 0 or -1. */
int atrest__snap_parse_id(uint8_t out[ATREST__SNAP_ID_LEN], const char *hex);

/* A small sealed object of the library's own, whole. */
int atrest__snap_put_small(atrest_store *st, const char *name, const void *buf,
	size_t len, unsigned int flags, const char *etag);
/* Read one whole (at most max bytes); etag and mtime (may be NULL) get the
 * version read. */
int atrest__snap_get_small(uint8_t **out, size_t *len, char *etag, int64_t *mtime,
	atrest_store *st, const char *name, size_t max);
/* The version (etag) and backend mtime of an object without a key;
 * ATREST_ENOTFOUND when gone. */
int atrest__snap_version(char *etag, int64_t *mtime, atrest_store *st, const char *name);
int atrest__snap_remove(atrest_store *st, const char *name);

/* Every key under SNAP_ROOT sub ("m/", "d/<hex>/", ...): cb gets the part
 * after SNAP_ROOT. */
typedef int (*atrest__snap_list_cb)(
	const char *rel, uint64_t size, int64_t mtime, void *p);
int atrest__snap_list(
	atrest_store *st, const char *sub, atrest__snap_list_cb cb, void *payload);

/* Keys under SNAP_ROOT sub, collected (to use the store while going
 * through them): rel is the part after SNAP_ROOT. */
typedef struct atrest__snap_key {
	char *rel;
	uint64_t size;
	int64_t mtime;
} atrest__snap_key;

typedef struct atrest__snap_keys {
	atrest__snap_key *v;
	size_t n, cap;
} atrest__snap_keys;

int atrest__snap_keys_of(atrest__snap_keys *out, atrest_store *st, const char *sub);
int atrest__snap_keys_add(
	atrest__snap_keys *k, const char *rel, uint64_t size, int64_t mtime);
void atrest__snap_keys_free(atrest__snap_keys *k);

/* Read and decode manifest name; etag (may be NULL) gets its version. */
int atrest__snap_load(
	atrest__manifest **out, char *etag, atrest_store *st, const char *name);
/* Head of manifest name (its first segment only). */
int atrest__snap_load_head(
	atrest__manifest_head *out, atrest_store *st, const char *name);

/* Keys of the content hash, one per data key, derived once per handle. */
typedef struct atrest__snap_hkeys {
	pthread_mutex_t mu;
	atrest__secret *keys; /* n keys of 32 bytes */
	uint32_t ids[16];
	size_t n;
} atrest__snap_hkeys;

void atrest__snap_hkeys_init(atrest__snap_hkeys *h);
void atrest__snap_hkeys_free(atrest__snap_hkeys *h);
/* An HMAC context keyed with the content-hash key of data key dek. */
int atrest__snap_mac(
	atrest__mac **out, atrest__snap_hkeys *h, atrest_store *st, uint32_t dek);

/* Monotonic seconds (fractions included). */
double atrest__snap_clock(void);
/* Realtime nanoseconds since the epoch. */
int64_t atrest__snap_now_ns(void);
/* Sleep ms milliseconds plus up to ms random ones. */
void atrest__snap_pause(unsigned ms);

/* Progress reporting shared by the tree, restore and verify passes. */
typedef struct atrest__snap_prog {
	pthread_mutex_t mu;
	atrest_snap_progress p;
	atrest_snap_progress_cb cb;
	void *payload;
	double last;
} atrest__snap_prog;

void atrest__snap_prog_init(
	atrest__snap_prog *g, atrest_snap_progress_cb cb, void *payload);
void atrest__snap_prog_add(atrest__snap_prog *g, uint64_t files, uint64_t bytes);
void atrest__snap_prog_note(atrest__snap_prog *g, const char *path, const char *fmt, ...)
	ATREST__PRINTF(3, 4);
void atrest__snap_prog_end(atrest__snap_prog *g);

/* A snapshot operation's event: count = files, bytes = their bytes. */
void atrest__snap_op_stats(atrest__op *op, const atrest_snap_stats *st);

/* ---- the writer (snap.c) ---- */

/* An entry being added, owning its strings. */
typedef struct atrest__went {
	atrest__snap_ent e;
	char *link_path; /* HARDLINK: resolved to e.link at commit */
} atrest__went;

/* A gc marker live when a writer began: waited for at commit. */
typedef struct atrest__snap_marker {
	char name[SNAP_NAME_MAX];
	char etag[ATREST_BACKEND_ETAG_MAX];
	uint32_t ttl;
} atrest__snap_marker;

struct atrest_snap {
	atrest_store *st;
	char *name;
	uint8_t writer[ATREST__SNAP_ID_LEN];
	uint32_t lease_ttl;
	int64_t begun;      /* ns: files are read after this (the manifest's time) */
	pthread_mutex_t mu; /* guards everything below */
	atrest__manifest *parent;
	char parent_etag[ATREST_BACKEND_ETAG_MAX];
	uint32_t *parent_map; /* parent object -> index in objs, or NOOBJ */
	atrest__went *ents;
	size_t nent, ent_cap;
	atrest__snap_obj *objs;
	size_t nobj, obj_cap;
	uint32_t next_index;            /* of the next data object d/<writer>/<n> */
	struct atrest__snap_pack *pack; /* open pack of add_buffer */
	size_t open_files;
	double renewed;               /* atrest__snap_clock() of the last lease renewal */
	atrest__snap_marker *markers; /* gc markers live at begin */
	size_t nmarkers;
	int leased; /* the lease was written: there is something to clean */
	int failed;
	atrest__snap_hkeys hk;
	atrest__op op; /* the snapshot_put event, begin to commit or abort */
};

/* The next data object's reference (locks s->mu). */
void atrest__snap_next_ref(atrest_snap *s, atrest__snap_ref *out);
/* Record a written object; its index in *obj (locks s->mu). */
int atrest__snap_add_obj(atrest_snap *s, const atrest__snap_obj *o, uint32_t *obj);
/* Add an entry (copied); hard links name their file by link_path.  The
 * caller holds s->mu when locked is set. */
int atrest__snap_add_ent(
	atrest_snap *s, const atrest__snap_ent *e, const char *link_path, int locked);
/* Share parent entry pi's content for e (locks s->mu). */
int atrest__snap_share(atrest_snap *s, const atrest__snap_ent *e, long pi);
/* Renew the lease when due (force: or check that it is still there); locks
 * s->mu. */
int atrest__snap_tick(atrest_snap *s, int force);
/* Convert a caller's entry (validated) into e; strings borrowed. */
int atrest__snap_from_entry(
	atrest__snap_ent *e, atrest__snap_xattr *xa, const atrest_snap_entry *in);

/* Open writer w for the next data object; its ref, dek and commitment. */
int atrest__snap_open_obj(atrest_writer **w, atrest__snap_obj *o, atrest_snap *s);

/* ---- reading (snap_read.c) ---- */

struct atrest_snapshot {
	atrest_store *st;
	atrest__manifest *m;
	char etag[ATREST_BACKEND_ETAG_MAX];
	atrest__snap_hkeys hk;
	/* FILE entries with bytes, by object then offset; object k's are
	 * order[start[k] .. start[k+1]). */
	size_t *order, *start;
	atrest_snap_xattr *xattrs; /* the entries' in the public layout */
	size_t *xoff;              /* entry i's start in xattrs */
};

/* Make s->order and s->start (once). */
int atrest__snapshot_plan(atrest_snapshot *s);

/* Open object k of s, checked to be the version pinned (file: the path
 * to name in messages). */
int atrest__snapshot_obj_open(
	atrest_reader **out, atrest_snapshot *s, uint32_t k, const char *file);

/*
 * Copy len bytes from r's position into mac (may be NULL) and fd (-1:
 * nowhere), through buf (cap bytes); file names the destination.
 */
int atrest__snap_copy(atrest_reader *r, uint64_t len, atrest__mac *mac, int fd,
	uint8_t *buf, size_t cap, const char *file);

/* The keyed hash of a file's bytes, as pinned: ATREST_EINTEGRITY naming
 * the file otherwise (mac is finished). */
int atrest__snap_check_hash(atrest__mac *mac, const atrest__snap_ent *e);

/*
 * Objects under the snapshot's own prefix that it does not list (added to
 * its set): each reported through cb(name, payload); their count in *n.
 */
int atrest__snapshot_extra(atrest_snapshot *s, size_t *n,
	void (*cb)(const char *name, void *payload), void *payload);

/* ---- paths beneath a directory (snap_fs.c) ---- */

/*
 * Open path (relative, checked; "" is root itself) beneath the directory
 * root without following any symbolic link on the way or at the end
 * (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, else one component at a
 * time with O_NOFOLLOW).  Returns an fd or -1 with errno.
 */
int atrest__snap_openat(int root, const char *path, int flags, mode_t mode);

/*
 * A directory fd cache for one thread walking sorted paths: the parent
 * directory of path, opened beneath root, and the last component.
 */
typedef struct atrest__snap_dirc {
	int fd;
	char *dir; /* its path, "" for root */
} atrest__snap_dirc;

void atrest__snap_dirc_init(atrest__snap_dirc *c);
void atrest__snap_dirc_close(atrest__snap_dirc *c);
/* The fd of path's parent (owned by c) and path's last component. */
int atrest__snap_dirc_parent(
	atrest__snap_dirc *c, int root, const char *path, const char **base);

/* rm -r of name in dirfd, never following a link (name may be missing). */
int atrest__snap_rmtree(int dirfd, const char *name);

#endif
