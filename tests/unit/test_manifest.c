/*
 * The snapshot formats: the committed vectors (tests/vectors/snapshots.txt,
 * written by the independent tests/vectors/snapshot_vectors.py) decode to
 * their fields and encode back to their bytes; every rule of the manifest
 * is refused by the encoder and the decoder; cuts and flipped bytes never
 * decode to something else; leases, markers, the counter, names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "format.h"
#include "helpers.h"
#include "manifest.h"
#include "names.h"
#include "snap_int.h"

/* ---- the vectors ---- */

typedef struct vman {
	char name[1100], parent[1100], writer[40];
	uint64_t seq;
	int64_t created;
	atrest__snap_obj objs[8];
	size_t nobj;
	atrest__snap_ent ents[16];
	char paths[16][64], targets[16][64];
	atrest__snap_xattr xa[16][4];
	char xnames[16][4][32];
	uint8_t *xvals[16][4];
	size_t nent;
} vman;

static char *field(char *line, const char *key)
{
	size_t n = strlen(key);

	line[strcspn(line, "\n")] = '\0';
	if (strncmp(line, key, n) || strncmp(line + n, " = ", 3))
		return NULL;
	return line + n + 3;
}

static int type_of(const char *t)
{
	static const char *names[] = {
		"", "dir", "file", "symlink", "hardlink", "fifo", "char", "block"};

	for (int i = 1; i < 8; i++)
		if (!strcmp(t, names[i]))
			return i;
	fail_msg("unknown type %s", t);
	return 0;
}

static void parse_entry(vman *v, char *s)
{
	atrest__snap_ent *e = &v->ents[v->nent];
	char type[16], path[64], hash[80], target[64];
	unsigned mode;
	long long mtime;
	unsigned long long a, b, c;
	int n;

	memset(e, 0, sizeof(*e));
	assert_int_equal(sscanf(s, "%15s %63s %o %u %u %lld%n", type, path, &mode,
				 &e->uid, &e->gid, &mtime, &n),
		6);
	e->type = (uint8_t)type_of(type);
	snprintf(v->paths[v->nent], 64, "%s", strcmp(path, "-") ? path : "");
	e->path = v->paths[v->nent];
	e->mode = mode;
	e->mtime = mtime;
	e->obj = ATREST__SNAP_NOOBJ;
	s += n;
	if (e->type == ATREST__SNAP_FILE) {
		assert_int_equal(sscanf(s, "%llu %llu %llu %79s", &a, &b, &c, hash), 4);
		e->size = a;
		e->obj = (uint32_t)b;
		e->off = c;
		assert_int_equal(atrest__unhex_n(e->hash, 32, hash), 0);
	} else if (e->type == ATREST__SNAP_SYMLINK) {
		assert_int_equal(sscanf(s, "%63s", target), 1);
		snprintf(v->targets[v->nent], 64, "%s", target);
		e->target = v->targets[v->nent];
	} else if (e->type == ATREST__SNAP_HARDLINK) {
		assert_int_equal(sscanf(s, "%llu", &a), 1);
		e->link = (uint32_t)a;
	} else if (e->type == ATREST__SNAP_CHAR || e->type == ATREST__SNAP_BLOCK) {
		assert_int_equal(sscanf(s, "%llu", &a), 1);
		e->rdev = a;
	}
	e->xattrs = v->xa[v->nent];
	v->nent++;
}

static void parse_xattr(vman *v, char *s)
{
	atrest__snap_ent *e = &v->ents[v->nent - 1];
	size_t k = e->nxattr++, len = 0;
	char *sp = strchr(s, ' ');

	assert_non_null(sp);
	*sp = '\0';
	snprintf(v->xnames[v->nent - 1][k], 32, "%s", s);
	v->xa[v->nent - 1][k].name = v->xnames[v->nent - 1][k];
	v->xvals[v->nent - 1][k] = *(sp + 1) ? th_unhex(sp + 1, &len) : calloc(1, 1);
	v->xa[v->nent - 1][k].value = v->xvals[v->nent - 1][k];
	v->xa[v->nent - 1][k].len = (uint32_t)len;
}

static void parse_object(vman *v, const char *s)
{
	atrest__snap_obj *o = &v->objs[v->nobj++];
	char w[40], commit[80];
	unsigned long long size;

	assert_int_equal(sscanf(s, "%39s %u %u %llu %79s", w, &o->ref.index, &o->dek,
				 &size, commit),
		5);
	assert_int_equal(atrest__unhex_n(o->ref.writer, 16, w), 0);
	assert_int_equal(atrest__unhex_n(o->commit, 32, commit), 0);
	o->size = size;
}

static void same_entry(const atrest__snap_ent *a, const atrest__snap_ent *b)
{
	assert_int_equal(a->type, b->type);
	assert_string_equal(a->path, b->path);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_true(a->mtime == b->mtime);
	assert_int_equal(a->nxattr, b->nxattr);
	for (size_t k = 0; k < a->nxattr; k++) {
		assert_string_equal(a->xattrs[k].name, b->xattrs[k].name);
		assert_int_equal(a->xattrs[k].len, b->xattrs[k].len);
		assert_memory_equal(
			a->xattrs[k].value, b->xattrs[k].value, a->xattrs[k].len);
	}
	if (a->type == ATREST__SNAP_FILE) {
		assert_true(a->size == b->size && a->obj == b->obj && a->off == b->off);
		assert_memory_equal(a->hash, b->hash, 32);
	}
	if (a->type == ATREST__SNAP_SYMLINK)
		assert_string_equal(a->target, b->target);
	if (a->type == ATREST__SNAP_HARDLINK)
		assert_int_equal(a->link, b->link);
	if (a->type == ATREST__SNAP_CHAR || a->type == ATREST__SNAP_BLOCK)
		assert_true(a->rdev == b->rdev);
}

/* The record's fields as a manifest, and its bytes: both ways. */
static void check_manifest(vman *v, const char *hex)
{
	atrest__manifest want = {0}, *got = NULL;
	uint8_t *bytes, *enc;
	size_t len, enc_len;

	want.seq = v->seq;
	want.created = v->created;
	assert_int_equal(atrest__unhex_n(want.writer, 16, v->writer), 0);
	want.name = v->name;
	want.parent = v->parent;
	want.objs = v->objs;
	want.nobj = v->nobj;
	want.ents = v->ents;
	want.nent = v->nent;
	bytes = th_unhex(hex, &len);
	{
		/* Nothing decoded may point into the input. */
		uint8_t *copy = malloc(len);
		memcpy(copy, bytes, len);
		assert_int_equal(atrest__manifest_decode(&got, copy, len), 0);
		memset(copy, 0x5a, len);
		free(copy);
	}
	assert_true(got->seq == want.seq && got->created == want.created);
	assert_memory_equal(got->writer, want.writer, 16);
	assert_string_equal(got->name, want.name);
	assert_string_equal(got->parent, want.parent);
	assert_int_equal(got->nobj, want.nobj);
	assert_memory_equal(got->objs, want.objs, want.nobj * sizeof(*want.objs));
	assert_int_equal(got->nent, want.nent);
	for (size_t i = 0; i < want.nent; i++)
		same_entry(&got->ents[i], &want.ents[i]);
	assert_int_equal(atrest__manifest_encode(&enc, &enc_len, &want), 0);
	assert_int_equal(enc_len, len);
	assert_memory_equal(enc, bytes, len);
	free(enc);
	assert_int_equal(atrest__manifest_encode(&enc, &enc_len, got), 0);
	assert_memory_equal(enc, bytes, len);
	free(enc);
	atrest__manifest_free(got);
	free(bytes);
}

static void check_hash(const char *sid, const char *dek, const char *content,
	const char *hkey, const char *hash)
{
	static const char info[] = "atrest/v1 snapshot content";
	size_t n, cl;
	uint8_t *s = th_unhex(sid, &n), *d = th_unhex(dek, &n),
		*c = th_unhex(content, &cl);
	uint8_t k[32], h[32];
	char *x;

	assert_int_equal(atrest__hkdf(k, 32, s, 16, d, 32, (const uint8_t *)info,
				 sizeof(info) - 1),
		0);
	x = th_hex(k, 32);
	assert_string_equal(x, hkey);
	free(x);
	assert_int_equal(atrest__hmac_sha256(h, k, 32, c, cl), 0);
	x = th_hex(h, 32);
	assert_string_equal(x, hash);
	free(x);
	free(s), free(d), free(c);
}

static void check_object(const char *dek, const char *obj, const char *man,
	const char *name, const char *tenant)
{
	size_t dl, ol, ml, pl;
	uint8_t *d = th_unhex(dek, &dl), *o = th_unhex(obj, &ol), *m = th_unhex(man, &ml);
	uint8_t *pt = NULL;
	atrest__hdr h;

	assert_int_equal(atrest__obj_open_buf(&pt, &pl, &h, o, ol, d), 0);
	assert_int_equal(pl, ml);
	assert_memory_equal(pt, m, ml);
	assert_string_equal(h.name, name);
	assert_string_equal(h.tenant, tenant);
	free(d), free(o), free(m), free(pt);
}

static void free_vman(vman *v)
{
	for (size_t i = 0; i < 16; i++)
		for (size_t k = 0; k < 4; k++)
			free(v->xvals[i][k]);
	memset(v, 0, sizeof(*v));
}

static void test_vectors(void **state)
{
	static char line[1 << 16], f2[6][2200];
	char path[512], *x, kind[32] = "";
	static vman v;
	int manifests = 0, hashes = 0, objects = 0;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/snapshots.txt", ATREST_VECTORS_DIR);
	f = fopen(path, "r");
	assert_non_null(f);
	memset(&v, 0, sizeof(v));
	while (fgets(line, sizeof(line), f)) {
		if ((x = field(line, "kind")))
			snprintf(kind, sizeof(kind), "%s", x);
		else if ((x = field(line, "name")))
			snprintf(v.name, sizeof(v.name), "%s", x);
		else if ((x = field(line, "parent")))
			snprintf(v.parent, sizeof(v.parent), "%s", x);
		else if ((x = field(line, "seq")))
			v.seq = strtoull(x, NULL, 10);
		else if ((x = field(line, "created")))
			v.created = strtoll(x, NULL, 10);
		else if ((x = field(line, "writer")))
			snprintf(v.writer, sizeof(v.writer), "%s", x);
		else if ((x = field(line, "object")) && !strcmp(kind, "manifest"))
			parse_object(&v, x);
		else if ((x = field(line, "entry")))
			parse_entry(&v, x);
		else if ((x = field(line, "xattr")))
			parse_xattr(&v, x);
		else if ((x = field(line, "bytes"))) {
			check_manifest(&v, x);
			free_vman(&v);
			manifests++;
		} else if ((x = field(line, "store_id")))
			snprintf(f2[0], sizeof(f2[0]), "%s", x);
		else if ((x = field(line, "data_key")))
			snprintf(f2[1], sizeof(f2[1]), "%s", x);
		else if ((x = field(line, "content")))
			snprintf(f2[2], sizeof(f2[2]), "%s", x);
		else if ((x = field(line, "hash_key")))
			snprintf(f2[3], sizeof(f2[3]), "%s", x);
		else if ((x = field(line, "hash"))) {
			check_hash(f2[0], f2[1], f2[2], f2[3], x);
			hashes++;
		} else if ((x = field(line, "tenant")))
			snprintf(f2[4], sizeof(f2[4]), "%s", x);
		else if ((x = field(line, "manifest")))
			snprintf(f2[5], sizeof(f2[5]), "%s", x);
		else if ((x = field(line, "object")) &&
			!strcmp(kind, "manifest-object")) {
			check_object(f2[1], x, f2[5], v.name, f2[4]);
			objects++;
		}
	}
	fclose(f);
	assert_int_equal(manifests, 2);
	assert_int_equal(hashes, 3);
	assert_int_equal(objects, 1);
}

/* ---- the rules ---- */

/* The first vector, decoded: a manifest that uses every kind of entry. */
static atrest__manifest *sample(uint8_t **bytes, size_t *len)
{
	static char line[1 << 16];
	char path[512], *x;
	atrest__manifest *m = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/snapshots.txt", ATREST_VECTORS_DIR);
	f = fopen(path, "r");
	assert_non_null(f);
	while (!m && fgets(line, sizeof(line), f))
		if ((x = field(line, "bytes"))) {
			*bytes = th_unhex(x, len);
			assert_int_equal(atrest__manifest_decode(&m, *bytes, *len), 0);
		}
	fclose(f);
	assert_non_null(m);
	return m;
}

typedef void (*mutate_fn)(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o);

static void m_dotdot(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[3].path = "base/..";
}
static void m_absolute(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[3].path = "/etc/passwd";
}
/* A file whose parent is the symbolic link "wal". */
static void m_under_link(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[10] = e[5];
	e[10].path = "wal/x";
	m->nent = 11;
}
static void m_swap(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	atrest__snap_ent t = e[1];
	e[1] = e[2];
	e[2] = t;
}
static void m_dup(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[2] = e[1];
}
static void m_noroot(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[0].type = ATREST__SNAP_FILE;
}
static void m_past(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[3].size++;
}
static void m_overflow(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[3].off = UINT64_MAX - 10;
}
static void m_noobj(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[3].obj = 2;
}
static void m_unused(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[6].obj = 0;
}
static void m_empty_obj(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[5].obj = 0;
}
static void m_link_fwd(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[4].link = 6;
}
static void m_link_dir(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[4].link = 2;
}
static void m_mode(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[1].mode = 0100600;
}
static void m_seq(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	m->seq = 0;
}
static void m_name(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	m->name = ".atrest/x";
}
static void m_parent(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	m->parent = "a//b";
}
static void m_objorder(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	atrest__snap_obj t = o[0];
	o[0] = o[1];
	o[1] = t;
}
static void m_dek(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	o[1].dek = 0;
}
static void m_type(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[7].type = 9;
}
static void m_target(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[9].target = "";
}
static void m_xorder(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	static atrest__snap_xattr x[2];
	x[0] = e[6].xattrs[1];
	x[1] = e[6].xattrs[0];
	e[6].xattrs = x;
}
static void m_dot(atrest__manifest *m, atrest__snap_ent *e, atrest__snap_obj *o)
{
	e[7].path = "./pipe";
}

static void test_rules(void **state)
{
	static const mutate_fn muts[] = {m_dotdot, m_absolute, m_under_link, m_swap,
		m_dup, m_noroot, m_past, m_overflow, m_noobj, m_unused, m_empty_obj,
		m_link_fwd, m_link_dir, m_mode, m_seq, m_name, m_parent, m_objorder,
		m_dek, m_type, m_target, m_xorder, m_dot};
	uint8_t *bytes, *enc;
	size_t len, enc_len;
	atrest__manifest *m = sample(&bytes, &len);
	atrest__snap_ent ents[16];
	atrest__snap_obj objs[4];

	(void)state;
	for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		atrest__manifest x = *m;
		memcpy(ents, m->ents, m->nent * sizeof(*ents));
		memcpy(objs, m->objs, m->nobj * sizeof(*objs));
		x.ents = ents;
		x.objs = objs;
		muts[i](&x, ents, objs);
		assert_int_equal(atrest__manifest_check(&x), ATREST_EINTEGRITY);
		assert_int_equal(
			atrest__manifest_encode(&enc, &enc_len, &x), ATREST_EINVAL);
		assert_null(enc);
	}
	atrest__manifest_free(m);
	free(bytes);
}

/* Every cut and every flipped byte: refused, or (the flip of a byte that
 * is free, like a mode bit) a manifest that encodes back to those bytes. */
static void test_cuts_and_flips(void **state)
{
	uint8_t *bytes, *enc;
	size_t len, enc_len;
	atrest__manifest *m = sample(&bytes, &len), *d;
	atrest__manifest_head h;

	(void)state;
	atrest__manifest_free(m);
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(
			atrest__manifest_decode(&d, bytes, cut), ATREST_EINTEGRITY);
		assert_null(d);
	}
	for (size_t i = 0; i < len; i++)
		for (int bit = 0; bit < 8; bit += 3) {
			bytes[i] ^= (uint8_t)(1 << bit);
			if (atrest__manifest_decode(&d, bytes, len) == 0) {
				assert_int_equal(
					atrest__manifest_encode(&enc, &enc_len, d), 0);
				assert_int_equal(enc_len, len);
				assert_memory_equal(enc, bytes, len);
				free(enc);
				atrest__manifest_free(d);
			}
			bytes[i] ^= (uint8_t)(1 << bit);
		}
	assert_int_equal(atrest__manifest_head_decode(&h, bytes, 100), 0);
	assert_string_equal(h.name, "pg/2026-11-22");
	assert_string_equal(h.parent, "pg/2026-11-21");
	assert_int_equal(h.seq, 7);
	assert_int_equal(h.nobj, 2);
	assert_int_equal(atrest__manifest_head_decode(&h, bytes, 40), ATREST_EINTEGRITY);
	bytes[7] = 2;
	assert_int_equal(atrest__manifest_decode(&d, bytes, len), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "unknown version"));
	free(bytes);
}

/* ---- the small ones ---- */

static void test_lease_marker_counter(void **state)
{
	atrest__snap_ref refs[3] = {{{1}, 1}, {{1}, 2}, {{2}, 0}};
	atrest__snap_lease l = {600, 42, 3, refs}, back;
	uint8_t *enc, m[ATREST__SNAP_MARKER_LEN], c[ATREST__SNAP_SEQ_LEN];
	size_t len;
	uint32_t ttl;
	int64_t created;
	uint64_t seq;

	(void)state;
	assert_int_equal(atrest__lease_encode(&enc, &len, &l), 0);
	assert_int_equal(len, 8 + 4 + 8 + 4 + 3 * 20);
	assert_int_equal(atrest__lease_decode(&back, enc, len), 0);
	assert_int_equal(back.ttl, 600);
	assert_true(back.created == 42 && back.nref == 3);
	assert_memory_equal(back.refs, refs, sizeof(refs));
	free(back.refs);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(
			atrest__lease_decode(&back, enc, cut), ATREST_EINTEGRITY);
	memcpy(enc + 24 + 20, enc + 24, 20); /* a repeated reference */
	assert_int_equal(atrest__lease_decode(&back, enc, len), ATREST_EINTEGRITY);
	free(enc);
	refs[2] = refs[0];
	assert_int_equal(atrest__lease_encode(&enc, &len, &l), ATREST_EINVAL);

	atrest__marker_encode(m, 60, 7);
	assert_int_equal(atrest__marker_decode(&ttl, &created, m, sizeof(m)), 0);
	assert_true(ttl == 60 && created == 7);
	assert_int_equal(atrest__marker_decode(&ttl, &created, m, sizeof(m) - 1),
		ATREST_EINTEGRITY);
	atrest__marker_encode(m, 0, 7);
	assert_int_equal(
		atrest__marker_decode(&ttl, &created, m, sizeof(m)), ATREST_EINTEGRITY);
	atrest__seqobj_encode(c, 12345);
	assert_int_equal(atrest__seqobj_decode(&seq, c, sizeof(c)), 0);
	assert_true(seq == 12345);
	c[0] ^= 1;
	assert_int_equal(atrest__seqobj_decode(&seq, c, sizeof(c)), ATREST_EINTEGRITY);
	assert_int_equal(atrest__seqobj_decode(&seq, m, sizeof(m)), ATREST_EINTEGRITY);
}

static void test_names(void **state)
{
	atrest__snap_ref r;
	char name[SNAP_NAME_MAX];

	(void)state;
	assert_int_equal(atrest__internal_name_check(".atrest/snap/m/pg/1"), 0);
	assert_int_equal(atrest__internal_name_check(".atrest/snap/"), ATREST_EINVAL);
	assert_int_equal(atrest__internal_name_check(".atrest/keyring"), ATREST_EINVAL);
	assert_int_equal(
		atrest__internal_name_check(".atrest/snap/m/../x"), ATREST_EINVAL);
	assert_int_equal(atrest__internal_name_check("pg/1"), ATREST_EINVAL);
	assert_int_equal(atrest_name_check(".atrest/snap/m/pg/1"), ATREST_EINVAL);
	assert_int_equal(
		atrest__snap_parse_dref(&r, "0123456789abcdef0123456789abcdef/42"), 0);
	assert_int_equal(r.index, 42);
	atrest__snap_dname(name, &r);
	assert_string_equal(name, ".atrest/snap/d/0123456789abcdef0123456789abcdef/42");
	assert_int_equal(
		atrest__snap_parse_dref(&r, "0123456789abcdef0123456789abcdef/042"), -1);
	assert_int_equal(
		atrest__snap_parse_dref(&r, "0123456789abcdef0123456789abcdef/"), -1);
	assert_int_equal(atrest__snap_parse_dref(
				 &r, "0123456789abcdef0123456789abcdef/4294967296"),
		-1);
	assert_int_equal(
		atrest__snap_parse_dref(&r, "0123456789ABCDEF0123456789abcdef/1"), -1);
	assert_int_equal(
		atrest__snap_parse_dref(&r, "0123456789abcdef0123456789abcde/1"), -1);
	assert_int_equal(atrest__snap_path_check("a/b", 3), 0);
	assert_int_equal(atrest__snap_path_check("a//b", 4), ATREST_EINTEGRITY);
	assert_int_equal(atrest__snap_path_check("a/", 2), ATREST_EINTEGRITY);
	assert_int_equal(atrest__snap_path_check("..", 2), ATREST_EINTEGRITY);
	assert_int_equal(atrest__snap_path_check("a\0b", 3), ATREST_EINTEGRITY);
	assert_int_equal(atrest__snap_name_check("pg/1"), 0);
	memset(name, 'a', 1001);
	name[1001] = '\0';
	assert_int_equal(atrest__snap_name_check(name), ATREST_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_cuts_and_flips),
		cmocka_unit_test(test_lease_marker_counter),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
