/*
 * The snapshot formats (docs/FORMAT.md section 8): the manifest that lists a
 * snapshot's entries and pins its data objects, the writer's lease, the gc
 * marker and the sequence counter.  Pure coding and checking over buffers.
 */
#ifndef ATREST_MANIFEST_H
#define ATREST_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define ATREST__SNAP_ID_LEN 16
#define ATREST__SNAP_HASH_LEN 32
#define ATREST__SNAP_NOOBJ 0xFFFFFFFFu
#define ATREST__SNAP_NAME_MAX 1000   /* bytes of a snapshot name */
#define ATREST__SNAP_PATH_MAX 4095   /* bytes of an entry's path */
#define ATREST__SNAP_TARGET_MAX 4095 /* bytes of a symbolic link's target */
#define ATREST__SNAP_XATTRS_MAX 1024 /* extended attributes of one entry */
#define ATREST__SNAP_XNAME_MAX 255
#define ATREST__SNAP_XVALUE_MAX 65536
#define ATREST__SNAP_MODE_MASK 07777u
/* Largest manifest read (plaintext bytes). */
#define ATREST__SNAP_MANIFEST_MAX (1ull << 30)

/* Entry types, as stored (byte 0 of an entry). */
enum {
	ATREST__SNAP_DIR = 1,
	ATREST__SNAP_FILE = 2,
	ATREST__SNAP_SYMLINK = 3,
	ATREST__SNAP_HARDLINK = 4,
	ATREST__SNAP_FIFO = 5,
	ATREST__SNAP_CHAR = 6,
	ATREST__SNAP_BLOCK = 7
};

/* A data object: .atrest/snap/d/<hex(writer)>/<index>. */
typedef struct atrest__snap_ref {
	uint8_t writer[ATREST__SNAP_ID_LEN];
	uint32_t index;
} atrest__snap_ref;

typedef struct atrest__snap_obj {
	atrest__snap_ref ref;
	uint32_t dek;       /* the data key it is sealed with (and hashed with) */
	uint64_t size;      /* plaintext bytes */
	uint8_t commit[32]; /* its key commitment: the version pinned */
} atrest__snap_obj;

typedef struct atrest__snap_xattr {
	const char *name;
	const uint8_t *value;
	uint32_t len;
} atrest__snap_xattr;

typedef struct atrest__snap_ent {
	uint8_t type;
	const char *path; /* "" for the root directory */
	uint32_t mode;    /* permission bits, 07777 */
	uint32_t uid, gid;
	int64_t mtime; /* nanoseconds since the epoch */
	/* FILE */
	uint64_t size;
	uint32_t obj; /* index in the object table, or NOOBJ when size is 0 */
	uint64_t off; /* of its bytes in that object */
	uint8_t hash[ATREST__SNAP_HASH_LEN];
	const char *target; /* SYMLINK */
	uint32_t link;      /* HARDLINK: index of the FILE entry it links to */
	uint64_t rdev;      /* CHAR, BLOCK */
	const atrest__snap_xattr *xattrs;
	uint16_t nxattr;
} atrest__snap_ent;

typedef struct atrest__manifest {
	uint64_t seq;
	int64_t created; /* nanoseconds since the epoch */
	uint8_t writer[ATREST__SNAP_ID_LEN];
	const char *name;
	const char *parent; /* "" when none */
	size_t nobj, nent;
	const atrest__snap_obj *objs;
	const atrest__snap_ent *ents;
	/* Storage of a decoded manifest (NULL when built by hand). */
	void *store_;
} atrest__manifest;

/* The fixed part and names, for listing without decoding every entry. */
typedef struct atrest__manifest_head {
	uint64_t seq;
	int64_t created;
	uint8_t writer[ATREST__SNAP_ID_LEN];
	char name[ATREST__SNAP_NAME_MAX + 1];
	char parent[ATREST__SNAP_NAME_MAX + 1];
	uint32_t nobj, nent;
} atrest__manifest_head;

/* Every rule of FORMAT.md 8.2; ATREST_EINTEGRITY naming the first broken. */
int atrest__manifest_check(const atrest__manifest *m);
/* Check and encode m into *out (malloc'd); ATREST_EINVAL when m breaks a rule. */
int atrest__manifest_encode(uint8_t **out, size_t *out_len, const atrest__manifest *m);
/* Decode exactly one manifest; ATREST_EINTEGRITY for anything else. */
int atrest__manifest_decode(atrest__manifest **out, const uint8_t *buf, size_t len);
void atrest__manifest_free(atrest__manifest *m);
/* The head of a manifest from its first len bytes (len may stop short of
 * the entries). */
int atrest__manifest_head_decode(
	atrest__manifest_head *out, const uint8_t *buf, size_t len);

/* An entry's path: "" (root) or components of 1-255 bytes without NUL or
 * '/', not "." or "..", at most 4095 bytes; 0 or ATREST_EINTEGRITY. */
int atrest__snap_path_check(const char *path, size_t len);
/* Index of path among m's (sorted) entries, or -1. */
long atrest__manifest_find(const atrest__manifest *m, const char *path);
/* Byte order of paths (the manifest's order). */
int atrest__snap_path_cmp(const char *a, const char *b);

/* Lease of a writer: .atrest/snap/l/<hex(writer)>. */
typedef struct atrest__snap_lease {
	uint32_t ttl;    /* seconds without renewal after which it is stale */
	int64_t created; /* nanoseconds since the epoch */
	size_t nref;
	atrest__snap_ref *refs; /* sorted, unique: objects it may share */
} atrest__snap_lease;

int atrest__lease_encode(uint8_t **out, size_t *out_len, const atrest__snap_lease *l);
/* Decode into *out (refs malloc'd); ATREST_EINTEGRITY when malformed. */
int atrest__lease_decode(atrest__snap_lease *out, const uint8_t *buf, size_t len);

/* A gc marker (.atrest/snap/g/<id>) and the sequence counter (.atrest/snap/seq). */
#define ATREST__SNAP_MARKER_LEN 20
#define ATREST__SNAP_SEQ_LEN 16
void atrest__marker_encode(
	uint8_t out[ATREST__SNAP_MARKER_LEN], uint32_t ttl, int64_t created);
int atrest__marker_decode(
	uint32_t *ttl, int64_t *created, const uint8_t *buf, size_t len);
void atrest__seqobj_encode(uint8_t out[ATREST__SNAP_SEQ_LEN], uint64_t seq);
int atrest__seqobj_decode(uint64_t *seq, const uint8_t *buf, size_t len);

/* Order of references (writer id, then index). */
int atrest__snap_ref_cmp(const atrest__snap_ref *a, const atrest__snap_ref *b);

#endif
