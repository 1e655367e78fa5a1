/*
 * Snapshots: a directory tree (a RocksDB or Flink checkpoint, a PostgreSQL
 * base backup) stored as one authenticated manifest plus the objects that
 * hold its files' contents.  Incremental snapshots share unchanged files
 * with their parent; the manifest pins every object's version, so a missing,
 * extra, renamed, swapped or rolled-back object is an integrity failure
 * naming the file.  See docs/FORMAT.md section 8 and docs/OPERATIONS.md.
 */
#ifndef ATREST_SNAPSHOT_H
#define ATREST_SNAPSHOT_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Entry types. */
typedef enum atrest_snap_type {
	ATREST_SNAP_DIR = 1,
	ATREST_SNAP_FILE = 2,
	ATREST_SNAP_SYMLINK = 3,
	ATREST_SNAP_HARDLINK = 4, /* another name of an earlier FILE entry */
	ATREST_SNAP_FIFO = 5,
	ATREST_SNAP_CHAR = 6, /* character device */
	ATREST_SNAP_BLOCK = 7 /* block device */
} atrest_snap_type;

typedef struct atrest_snap_xattr {
	const char *name; /* e.g. "user.origin", "security.capability" */
	const void *value;
	size_t len;
} atrest_snap_xattr;

/*
 * One entry of a snapshot.  path is relative, '/'-separated, with no empty,
 * "." or ".." component ("" is the root directory); at most 4095 bytes.
 */
typedef struct atrest_snap_entry {
	unsigned int version; /* ATREST_SNAP_ENTRY_VERSION, set by the caller */
	const char *path;
	int type;      /* atrest_snap_type */
	uint32_t mode; /* permission bits (07777) */
	uint32_t uid, gid;
	int64_t mtime_ns;                /* nanoseconds since the epoch */
	uint64_t size;                   /* FILE: bytes (filled in when reading) */
	const char *target;              /* SYMLINK: the link's text; HARDLINK: the path
	                       of the FILE entry it is another name of */
	uint64_t rdev;                   /* CHAR, BLOCK: the device number */
	const atrest_snap_xattr *xattrs; /* sorted by name when reading */
	size_t xattr_count;
} atrest_snap_entry;

#define ATREST_SNAP_ENTRY_VERSION 1
#define ATREST_SNAP_ENTRY_INIT                       \
	{                                            \
		.version = ATREST_SNAP_ENTRY_VERSION \
	}

/*
 * Counts of one operation (written by put, read by restore and verify,
 * removed by gc); every field is 0 when it does not apply.
 */
typedef struct atrest_snap_stats {
	uint64_t files, dirs, symlinks, hardlinks, specials;
	uint64_t skipped;      /* sockets (never stored) */
	uint64_t bytes;        /* bytes of the files */
	uint64_t shared_files; /* unchanged since the parent, not rewritten */
	uint64_t shared_bytes;
	uint64_t objects;        /* data objects written, read or removed */
	uint64_t stored_bytes;   /* plaintext bytes of those objects */
	uint64_t kept;           /* gc: objects still referenced */
	uint64_t leases_removed; /* gc: stale writers' leases removed */
	/* gc: what dead writers left in the backend (atrest_store_cleanup:
	 * unfinished uploads a day old or more, temp files) */
	uint64_t cleaned;
} atrest_snap_stats;

/*
 * Progress of a long operation, and things to report: called from one
 * thread at a time (whichever made the progress).  note is NULL for plain
 * progress, else a warning about note_path to show the user (a socket
 * skipped, a file that changed while it was read).
 */
typedef struct atrest_snap_progress {
	uint64_t files_done, files_total;
	uint64_t bytes_done, bytes_total;
	const char *note;
	const char *note_path;
} atrest_snap_progress;

typedef void (*atrest_snap_progress_cb)(const atrest_snap_progress *p, void *payload);

/* ---- writing a snapshot ---- */

typedef struct atrest_snap atrest_snap;
typedef struct atrest_snap_file atrest_snap_file;

typedef struct atrest_snap_options {
	unsigned int version; /* ATREST_SNAP_OPTIONS_VERSION */
	/* Share unchanged files with this snapshot (NULL: see flags). */
	const char *parent;
	unsigned int flags; /* ATREST_SNAP_* */
	/*
	 * Seconds after which gc may treat this writer as dead when it has
	 * not renewed its lease (0: 3600).  The library renews it on every
	 * call at most every ttl/4 seconds; a writer idle longer than ttl
	 * between calls fails at commit rather than publish a snapshot whose
	 * objects gc may have removed.
	 */
	uint32_t lease_ttl;
} atrest_snap_options;

/*
 * With no parent given: the newest snapshot whose name shares NAME's prefix
 * up to its last '/' (for "pg/2026-11-22" the newest under "pg/") is the
 * parent, if there is one.
 */
#define ATREST_SNAP_AUTO_PARENT 0x1u

#define ATREST_SNAP_OPTIONS_VERSION 1
#define ATREST_SNAP_OPTIONS_INIT                       \
	{                                              \
		.version = ATREST_SNAP_OPTIONS_VERSION \
	}

/*
 * Begin snapshot name (an object name of at most 1000 bytes; snapshots and
 * objects are apart, so the same name can be both).  Nothing is visible
 * under name until commit.  Fails with ATREST_EEXISTS when the snapshot
 * exists, ATREST_ENOTFOUND when the parent does not.
 */
ATREST_EXTERN int atrest_snap_begin(atrest_snap **out, atrest_store *st, const char *name,
	const atrest_snap_options *opts);

/* The parent snapshot's name (chosen or found), or NULL when none. */
ATREST_EXTERN const char *atrest_snap_parent(const atrest_snap *s);

/*
 * Add a directory, symbolic link, hard link (target: the path of a FILE
 * entry of this snapshot that sorts before the link's path, in byte
 * order), FIFO or device.  Entries may come in any
 * order; missing parent directories are added at commit (mode 0700, this
 * process's owner, the commit's time), the root ("") too.
 */
ATREST_EXTERN int atrest_snap_add(atrest_snap *s, const atrest_snap_entry *e);

/*
 * Add a file whose bytes are written through the returned streaming writer
 * (bounded memory, sealed as it goes); the entry counts once the file is
 * committed.  Several files may be written at once from different threads.
 */
ATREST_EXTERN int atrest_snap_add_file(
	atrest_snap_file **out, atrest_snap *s, const atrest_snap_entry *e);
ATREST_EXTERN int atrest_snap_file_write(
	atrest_snap_file *f, const void *buf, size_t len);
/* Make the file's object durable and add its entry; frees f. */
ATREST_EXTERN int atrest_snap_file_commit(atrest_snap_file *f);
/* Drop the file (the snapshot goes on without it); frees f. */
ATREST_EXTERN void atrest_snap_file_abort(atrest_snap_file *f);

/* Add a file whose bytes are buf; small files are packed together. */
ATREST_EXTERN int atrest_snap_add_buffer(
	atrest_snap *s, const atrest_snap_entry *e, const void *buf, size_t len);

/*
 * Add a file unchanged since the parent snapshot: it shares the content of
 * the parent's FILE entry at parent_path (NULL: e->path), nothing is
 * written.  e's metadata (mode, owner, mtime) is used; its size must be the
 * parent's.  ATREST_ENOTFOUND when the parent has no such file.
 */
ATREST_EXTERN int atrest_snap_add_unchanged(
	atrest_snap *s, const atrest_snap_entry *e, const char *parent_path);

typedef struct atrest_snap_tree_options {
	unsigned int version; /* ATREST_SNAP_TREE_OPTIONS_VERSION */
	unsigned int flags;   /* ATREST_SNAP_TREE_* */
} atrest_snap_tree_options;

/* Store extended attributes (every namespace the caller may read). */
#define ATREST_SNAP_TREE_XATTRS 0x1u
/*
 * Confirm every unchanged-looking file (same size and mtime as in the
 * parent) by its keyed content hash instead of trusting its mtime.
 */
#define ATREST_SNAP_TREE_CHECKSUM 0x2u

#define ATREST_SNAP_TREE_OPTIONS_VERSION 1
#define ATREST_SNAP_TREE_OPTIONS_INIT                       \
	{                                                   \
		.version = ATREST_SNAP_TREE_OPTIONS_VERSION \
	}

/*
 * Add the tree at dir (its root entry is dir itself): regular files,
 * directories, symbolic links (stored as links, never followed), hard
 * links, FIFOs and devices, with modes, owners, nanosecond mtimes and, on
 * request, extended attributes; sockets are skipped and reported through
 * cb.  Files are read, hashed, sealed and written in parallel on the
 * store's pool; small ones are packed into shared objects.  With a parent,
 * a file whose size and mtime are the parent's entry's is shared (unless
 * its mtime is too close to the parent's time to be trusted, or
 * ATREST_SNAP_TREE_CHECKSUM), and one whose size alone is equal is hashed
 * first and shared when its keyed hash is the parent's.  out (may be NULL)
 * receives the counts; opts and cb may be NULL.
 */
ATREST_EXTERN int atrest_snap_add_tree(atrest_snap_stats *out, atrest_snap *s,
	const char *dir, const atrest_snap_tree_options *opts, atrest_snap_progress_cb cb,
	void *payload);

/*
 * Publish the snapshot: everything written is durable before the manifest
 * is put, once and atomically (a create-only put: a concurrent writer of
 * the same name makes one of the two fail with ATREST_EEXISTS).  *seq (may
 * be NULL) receives its sequence number, larger than that of every
 * snapshot committed before in this store (or tenant).  Frees s, whatever
 * the result; on failure nothing is visible and what was written is
 * removed.  ATREST_ECONFLICT when the lease was lost (idle past its ttl)
 * or an object shared with the parent was removed meanwhile (the parent
 * removed while this snapshot was written): take the snapshot again.
 */
ATREST_EXTERN int atrest_snap_commit(uint64_t *seq, atrest_snap *s);
/* Drop the snapshot and what it wrote; frees s. */
ATREST_EXTERN void atrest_snap_abort(atrest_snap *s);

/* ---- reading a snapshot ---- */

typedef struct atrest_snapshot atrest_snapshot;
typedef struct atrest_snap_reader atrest_snap_reader;

typedef struct atrest_snapshot_open_options {
	unsigned int version; /* ATREST_SNAPSHOT_OPEN_OPTIONS_VERSION */
	/*
	 * Refuse (ATREST_EINTEGRITY) a snapshot whose sequence number is
	 * below this: a reader that remembers the sequence of the newest
	 * snapshot it saw cannot be handed an older one.
	 */
	uint64_t min_seq;
} atrest_snapshot_open_options;

#define ATREST_SNAPSHOT_OPEN_OPTIONS_VERSION 1
#define ATREST_SNAPSHOT_OPEN_OPTIONS_INIT                       \
	{                                                       \
		.version = ATREST_SNAPSHOT_OPEN_OPTIONS_VERSION \
	}

/*
 * Open snapshot name: its manifest is read whole, authenticated and checked
 * (opts may be NULL).  ATREST_ENOTFOUND when there is no such snapshot.
 */
ATREST_EXTERN int atrest_snapshot_open(atrest_snapshot **out, atrest_store *st,
	const char *name, const atrest_snapshot_open_options *opts);
ATREST_EXTERN void atrest_snapshot_close(atrest_snapshot *s);

typedef struct atrest_snapshot_info {
	unsigned int version; /* ATREST_SNAPSHOT_INFO_VERSION, set by the caller */
	const char *name;     /* valid while the snapshot is open */
	const char *parent;   /* "" when it shares nothing */
	uint64_t seq;
	int64_t created_ns;
	uint64_t entries, files, bytes; /* bytes: of its files */
	uint64_t objects;               /* data objects it references */
} atrest_snapshot_info;

#define ATREST_SNAPSHOT_INFO_VERSION 1
#define ATREST_SNAPSHOT_INFO_INIT                       \
	{                                               \
		.version = ATREST_SNAPSHOT_INFO_VERSION \
	}

ATREST_EXTERN int atrest_snapshot_info_get(
	atrest_snapshot_info *out, const atrest_snapshot *s);

/* Entries are numbered 0 .. count-1 in byte order of their paths (0 is the
 * root). */
ATREST_EXTERN size_t atrest_snapshot_count(const atrest_snapshot *s);
/*
 * Entry i (out->version set by the caller); its strings are valid while
 * the snapshot is open.  A HARDLINK entry's target is the path of its FILE.
 */
ATREST_EXTERN int atrest_snapshot_entry(
	atrest_snap_entry *out, const atrest_snapshot *s, size_t i);
/* The number of the entry at path, or ATREST_ENOTFOUND. */
ATREST_EXTERN int atrest_snapshot_find(
	size_t *out, const atrest_snapshot *s, const char *path);

/*
 * A reader of FILE (or HARDLINK) entry i's bytes: its object is checked to
 * be the version the manifest pins, and the bytes are checked against the
 * file's keyed hash when the last one is read.  Failures are integrity
 * failures naming the file.
 */
ATREST_EXTERN int atrest_snapshot_entry_open(
	atrest_snap_reader **out, atrest_snapshot *s, size_t i);
/* *got == 0 at the end (after the hash verified). */
ATREST_EXTERN ATREST_WARN_UNUSED int atrest_snap_reader_read(
	atrest_snap_reader *r, void *buf, size_t len, size_t *got);
ATREST_EXTERN void atrest_snap_reader_close(atrest_snap_reader *r);

typedef struct atrest_snap_restore_options {
	unsigned int version; /* ATREST_SNAP_RESTORE_OPTIONS_VERSION */
	unsigned int flags;   /* ATREST_SNAP_RESTORE_* */
} atrest_snap_restore_options;

/* Restore owners (default: only when running as root). */
#define ATREST_SNAP_RESTORE_OWNERS 0x1u
#define ATREST_SNAP_RESTORE_NO_OWNERS 0x2u
/* Leave extended attributes out. */
#define ATREST_SNAP_RESTORE_NO_XATTRS 0x4u
/* Do not flush the restored tree to disk before naming it dir. */
#define ATREST_SNAP_RESTORE_NO_SYNC 0x8u

#define ATREST_SNAP_RESTORE_OPTIONS_VERSION 1
#define ATREST_SNAP_RESTORE_OPTIONS_INIT                       \
	{                                                      \
		.version = ATREST_SNAP_RESTORE_OPTIONS_VERSION \
	}

/*
 * Restore the whole snapshot as directory dir, which must not exist (or be
 * an empty directory).  The tree is built in a private directory beside dir
 * ("." + its name + ".atrest-XXXXXX"), in parallel, every file checked;
 * only when everything verified is it flushed to disk and renamed to dir.
 * On failure nothing appears at dir.  Entries are created beneath that
 * directory without following any link; owners are restored when running
 * as root (see flags).  A leftover of a killed restore to the same dir is
 * removed by the next one.
 */
ATREST_EXTERN int atrest_snapshot_restore(atrest_snap_stats *out, atrest_snapshot *s,
	const char *dir, const atrest_snap_restore_options *opts,
	atrest_snap_progress_cb cb, void *payload);

/*
 * Read and check everything: every object the manifest pins (version and
 * every byte), every file's keyed hash, and that no object was added to the
 * snapshot's own set.  Each failure is reported through cb (note, with the
 * file as note_path) and verification goes on; the first failure's code is
 * returned.
 */
ATREST_EXTERN int atrest_snapshot_verify(atrest_snap_stats *out, atrest_snapshot *s,
	atrest_snap_progress_cb cb, void *payload);

/* ---- snapshots of a store ---- */

typedef struct atrest_snapshot_list_entry {
	const char *name;
	uint64_t seq;
	int64_t created_ns;
	const char *parent;
} atrest_snapshot_list_entry;

typedef int (*atrest_snapshot_list_cb)(
	const atrest_snapshot_list_entry *e, void *payload);

/*
 * Call cb for every snapshot whose name starts with prefix, in byte order
 * of names; each manifest's head is read and authenticated.  A non-zero
 * return of cb stops the walk and is returned.
 */
ATREST_EXTERN int atrest_snapshot_list(
	atrest_store *st, const char *prefix, atrest_snapshot_list_cb cb, void *payload);

/*
 * The snapshot with the highest sequence number among those whose name
 * starts with prefix: its name (allocated, free with atrest_free) and
 * sequence.  ATREST_ENOTFOUND when there is none; ATREST_EINTEGRITY when
 * that number is below min_seq (the store was rolled back, or newer
 * snapshots removed).
 */
ATREST_EXTERN int atrest_snapshot_latest(char **name, uint64_t *seq, atrest_store *st,
	const char *prefix, uint64_t min_seq);

/*
 * Remove snapshot name: its manifest first (the snapshot is gone at once),
 * then the objects no other snapshot or live writer references.  Other
 * snapshots are never affected.  out (may be NULL) counts the objects
 * removed and kept.
 */
ATREST_EXTERN int atrest_snapshot_remove(
	atrest_snap_stats *out, atrest_store *st, const char *name);

typedef struct atrest_gc_options {
	unsigned int version; /* ATREST_GC_OPTIONS_VERSION */
	/*
	 * Unreferenced objects younger than this many seconds are kept
	 * (< 0: 3600); a margin for clocks, since live writers are protected
	 * by their leases anyway.
	 */
	int64_t grace;
	/* Seconds writers wait for this gc before treating it as dead
	 * (0: 60); it renews its marker every ttl/4. */
	uint32_t ttl;
	int dry_run; /* count what would be removed; remove nothing */
} atrest_gc_options;

#define ATREST_GC_OPTIONS_VERSION 1
#define ATREST_GC_OPTIONS_INIT                                    \
	{                                                         \
		.version = ATREST_GC_OPTIONS_VERSION, .grace = -1 \
	}

/*
 * Remove every snapshot object that no snapshot references, safe against
 * snapshots being written, removed and collected at the same time, and
 * against a kill at any instant (see docs/ARCHITECTURE.md).  opts may be
 * NULL.
 */
ATREST_EXTERN int atrest_snapshot_gc(
	atrest_snap_stats *out, atrest_store *st, const atrest_gc_options *opts);

#ifdef __cplusplus
}
#endif
#endif
