/*
 * Seed generator for the fuzz corpora (not a test): writes valid objects,
 * headers, metadata and records made with the fuzzers' fixed keys, plus
 * damaged variants.  Usage: seed_object CORPORA_DIR [TARGET...]
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atrest/atrest.h"
#include "format.h"
#include "fuzz.h"

#define SEG 1024u

static const char *out_dir;

_Noreturn static void die(const char *what)
{
	const atrest_error *e = atrest_error_last();

	fprintf(stderr, "seed_object: %s: %s\n", what, e && e->message ? e->message : "");
	exit(1);
}

_Noreturn static void die_os(const char *what)
{
	fprintf(stderr, "seed_object: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void put(const char *target, const char *name, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die_os(path);
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		die_os(path);
}

/* A copy of buf with byte i xor-ed with x. */
static void put_flipped(const char *target, const char *name, const uint8_t *buf,
	size_t len, size_t i, uint8_t x)
{
	uint8_t *c = malloc(len);

	if (!c)
		die("out of memory");
	memcpy(c, buf, len);
	c[i] ^= x;
	put(target, name, c, len);
	free(c);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static void make_hdr(atrest__hdr *h, int form, int cipher, unsigned seed)
{
	memset(h, 0, sizeof(*h));
	h->form = (uint8_t)form;
	h->cipher = (uint8_t)cipher;
	h->segment_size = SEG;
	fill(h->salt, sizeof(h->salt), seed);
	if (form == ATREST__FORM_FILE) {
		h->ext_len = 60; /* the size of a wrapped data key */
		fill(h->ext, h->ext_len, seed + 1);
		snprintf(h->name, sizeof(h->name), "model-%u.bin", seed);
		return;
	}
	h->dek_id = 1;
	fill(h->store_id, sizeof(h->store_id), seed + 2);
	strcpy(h->tenant, seed % 2 ? "team-a" : "");
	snprintf(h->name, sizeof(h->name), "runs/exp%u/step-%u.ckpt", seed % 3, seed);
}

/* Seal pt_len bytes of patterned plaintext with one metadata entry. */
static uint8_t *seal(size_t *len, int form, int cipher, size_t pt_len, unsigned seed)
{
	char step[16];
	atrest_meta_entry e = {"step", step};
	atrest_meta m = {&e, 1};
	uint8_t key[32], *meta, *pt = malloc(pt_len ? pt_len : 1), *obj;
	size_t meta_len;
	atrest__hdr h;

	snprintf(step, sizeof(step), "%u", seed);
	fuzz_key(key);
	make_hdr(&h, form, cipher, seed);
	if (!pt || atrest__meta_encode(&meta, &meta_len, &m) != 0)
		die("metadata");
	fill(pt, pt_len, seed + 3);
	if (atrest__obj_seal_buf(&obj, len, &h, key, meta, meta_len, pt, pt_len) != 0)
		die("seal");
	free(meta);
	free(pt);
	return obj;
}

static const char *const CIPHER_TAG[] = {"", "gcm", "chacha", "cbc"};

/* Valid objects for the three ciphers at four sizes, and damaged copies. */
static void seed_objects(void)
{
	static const size_t sizes[] = {0, 100, SEG, 2 * SEG + 452};
	char name[64];
	uint8_t *obj;
	size_t len;

	for (int c = 1; c <= 3; c++)
		for (unsigned s = 0; s < 4; s++) {
			obj = seal(&len, ATREST__FORM_OBJECT, c, sizes[s], c * 4 + s);
			snprintf(name, sizeof(name), "%s-%zu", CIPHER_TAG[c], sizes[s]);
			put("object", name, obj, len);
			if (s == 3) {
				snprintf(name, sizeof(name), "%s-%zu-trunc",
					CIPHER_TAG[c], sizes[s]);
				put("object", name, obj, len - 1);
				snprintf(name, sizeof(name), "%s-%zu-flip", CIPHER_TAG[c],
					sizes[s]);
				put_flipped("object", name, obj, len, len - 20, 0x01);
			}
			free(obj);
		}
	obj = seal(&len, ATREST__FORM_FILE, ATREST_CIPHER_AES_256_GCM, 300, 40);
	put("object", "file-gcm-300", obj, len);
	put_flipped("object", "file-gcm-300-commit", obj, len, 30, 0x80);
	free(obj);
	put("object", "empty", "", 0);
	put("object", "magic-only", ATREST__MAGIC, ATREST__MAGIC_LEN);
}

/* Bare headers of both forms, one full object, and truncated headers. */
static void seed_headers(void)
{
	static uint8_t hb[ATREST__HDR_MAX];
	atrest__hdr h;
	uint8_t *obj;
	size_t len;

	for (int c = 1; c <= 3; c++) {
		char name[32];
		make_hdr(&h, ATREST__FORM_OBJECT, c, 50 + c);
		h.meta_len = (uint32_t)atrest__cipher_ctlen(c, 12);
		if (atrest__hdr_encode(hb, sizeof(hb), &h) != 0)
			die("encode");
		snprintf(name, sizeof(name), "object-%s", CIPHER_TAG[c]);
		put("header", name, hb, h.len);
	}
	put("header", "object-cbc-short", hb, h.len - ATREST__COMMIT_LEN - 1);
	make_hdr(&h, ATREST__FORM_FILE, ATREST_CIPHER_CHACHA20_POLY1305, 60);
	h.meta_len = (uint32_t)atrest__cipher_ctlen(h.cipher, 0);
	if (atrest__hdr_encode(hb, sizeof(hb), &h) != 0)
		die("encode");
	put("header", "file-chacha", hb, h.len);
	put_flipped("header", "file-chacha-form", hb, h.len, 8, 0x03);
	obj = seal(&len, ATREST__FORM_OBJECT, ATREST_CIPHER_AES_256_CBC_HMAC_SHA256,
		SEG + 5, 61);
	put("header", "full-cbc", obj, len);
	free(obj);
}

/* Whole files for inspect: each cipher, a truncation, a bad pad count. */
static void seed_inspect(void)
{
	char name[32];
	uint8_t *obj;
	size_t len;

	for (int c = 1; c <= 3; c++) {
		obj = seal(&len, ATREST__FORM_OBJECT, c, 3 * SEG - 7, 70 + c);
		snprintf(name, sizeof(name), "%s-3seg", CIPHER_TAG[c]);
		put("inspect", name, obj, len);
		if (c == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256) {
			put_flipped("inspect", "cbc-3seg-pad", obj, len, len - 33, 0x40);
			put("inspect", "cbc-3seg-trunc", obj, len - 16);
		}
		free(obj);
	}
	obj = seal(&len, ATREST__FORM_FILE, ATREST_CIPHER_AES_256_GCM, 10, 80);
	put("inspect", "file-gcm-10", obj, len);
	free(obj);
	put("inspect", "plain-text", "not an atrest object\n", 21);
}

static void put_meta(const char *name, const atrest_meta_entry *e, size_t n)
{
	atrest_meta m = {e, n};
	uint8_t *buf;
	size_t len;

	if (atrest__meta_encode(&buf, &len, &m) != 0)
		die("metadata");
	put("meta", name, buf, len);
	free(buf);
}

static void seed_meta(void)
{
	static const atrest_meta_entry e[] = {
		{"step", "1200"},
		{"loss", "0.0314"},
		{"note", ""},
		{"framework", "torch 2.3; cuda 12.1"},
	};
	static const uint8_t trailing[] = {1, 0, 1, 0, 'k', 0, 0, 0, 0, 'x'};
	static const uint8_t nul[] = {1, 0, 1, 0, 'k', 2, 0, 0, 0, 'a', 0};
	static const uint8_t huge[] = {1, 0, 1, 0, 'k', 0xff, 0xff, 0xff, 0xff, 'v'};
	static const uint8_t empty_key[] = {1, 0, 0, 0, 1, 0, 0, 0, 'v'};

	put_meta("none", NULL, 0);
	put_meta("one", e, 1);
	put_meta("four", e, 4);
	put("meta", "trailing", trailing, sizeof(trailing));
	put("meta", "nul", nul, sizeof(nul));
	put("meta", "huge-value", huge, sizeof(huge));
	put("meta", "empty-key", empty_key, sizeof(empty_key));
	put("meta", "count-only", "\x05\x00", 2);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

/* Records sealed by a store with the fuzzer's master key, cipher c. */
static void seed_records_of(int c)
{
	static const size_t sizes[] = {0, 1, 64, 256, 1024};
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	char dir[] = "/tmp/atrest-seed-XXXXXX", name[32];
	uint8_t key[32], pt[1024], rec[1024 + ATREST_RECORD_OVERHEAD];
	atrest_recorder *r;
	atrest_store *st;
	size_t len;

	if (!mkdtemp(dir))
		die_os("mkdtemp");
	fuzz_key(key);
	o.path = dir;
	o.create = 1;
	o.cipher = c;
	if (atrest_keyprov_raw(&o.key, key, sizeof(key)) != 0 ||
		atrest_store_open(&st, &o) != 0 ||
		atrest_recorder_open(&r, st, FUZZ_RECORD_NS) != 0)
		die("store");
	for (unsigned i = 0; i < 5; i++) {
		fill(pt, sizes[i], i);
		if (atrest_record_seal(r, rec, sizeof(rec), &len, pt, sizes[i],
			    FUZZ_RECORD_AD, 1) != 0)
			die("record");
		snprintf(name, sizeof(name), "%s-%zu", CIPHER_TAG[c], sizes[i]);
		put("record", name, rec, len);
	}
	snprintf(name, sizeof(name), "%s-1024-trunc", CIPHER_TAG[c]);
	put("record", name, rec, ATREST_RECORD_OVERHEAD - 1);
	snprintf(name, sizeof(name), "%s-1024-keyid", CIPHER_TAG[c]);
	put_flipped("record", name, rec, len, 1, 0x07);
	atrest_recorder_close(r);
	atrest_store_close(st);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void seed_records(void)
{
	seed_records_of(ATREST_CIPHER_AES_256_GCM);
	seed_records_of(ATREST_CIPHER_CHACHA20_POLY1305);
}

/* Standalone files sealed with the fuzzers' master key, and damaged ones. */
struct grow_buf {
	uint8_t *buf;
	size_t len;
};

static int mem_out(const void *buf, size_t len, void *payload)
{
	struct grow_buf *g = payload;
	uint8_t *p = realloc(g->buf, g->len + len);

	if (!p)
		return ATREST_ERROR;
	memcpy(p + g->len, buf, len);
	g->buf = p;
	g->len += len;
	return 0;
}

static void seal_file(const char *name, atrest_keyprov *kp, int cipher, size_t size,
	const atrest_meta *meta)
{
	struct grow_buf out = {NULL, 0};
	uint8_t pt[3 * SEG];
	atrest_file_options o;
	atrest_file_encryptor *e;
	char n2[64];

	memset(&o, 0, sizeof(o));
	o.version = ATREST_FILE_OPTIONS_VERSION;
	o.cipher = cipher;
	o.segment_size = SEG;
	o.meta = meta;
	fill(pt, size, (unsigned)size);
	if (atrest_file_encryptor_new(&e, kp, &o, mem_out, &out) != 0 ||
		atrest_file_encryptor_write(e, pt, size) != 0 ||
		atrest_file_encryptor_finish(e) != 0)
		die("encrypt");
	put("standalone", name, out.buf, out.len);
	snprintf(n2, sizeof(n2), "%s-trunc", name);
	put("standalone", n2, out.buf, out.len - 1);
	snprintf(n2, sizeof(n2), "%s-ctx", name);
	put_flipped("standalone", n2, out.buf, out.len, 62, 0x01);
	snprintf(n2, sizeof(n2), "%s-ext", name); /* in the kind */
	put_flipped("standalone", n2, out.buf, out.len, 81, 0x01);
	snprintf(n2, sizeof(n2), "%s-last", name);
	put_flipped("standalone", n2, out.buf, out.len, out.len - 1, 0x80);
	free(out.buf);
}

static void seed_standalone(void)
{
	static const size_t sizes[] = {0, 1, SEG, 2 * SEG + 500};
	atrest_meta_entry e[] = {{"job", "42"}, {"ts", "2026-11-22"}};
	atrest_meta meta = {e, 2};
	atrest_keyprov *kp;
	uint8_t key[32];
	char name[64];

	fuzz_key(key);
	if (atrest_keyprov_raw(&kp, key, sizeof(key)) != 0)
		die("key");
	for (int c = 1; c <= 3; c++)
		for (size_t i = 0; i < 4; i++) {
			snprintf(name, sizeof(name), "%s-%zu", CIPHER_TAG[c], sizes[i]);
			seal_file(name, kp, c, sizes[i], i == 3 ? &meta : NULL);
		}
	atrest_keyprov_free(kp);
	/* A passphrase file: its parameters are parsed, its key is not ours. */
	setenv("ATREST_ARGON2_TEST_MEMORY_KIB", "8192", 1);
	if (atrest_keyprov_passphrase(&kp, "fuzz", 4) != 0)
		die("passphrase");
	seal_file("passphrase-gcm-1", kp, 1, 1, NULL);
	atrest_keyprov_free(kp);
}

static const struct {
	const char *name;
	void (*fn)(void);
} TARGETS[] = {
	{"object", seed_objects},
	{"header", seed_headers},
	{"inspect", seed_inspect},
	{"meta", seed_meta},
	{"record", seed_records},
	{"standalone", seed_standalone},
};

#define NTARGETS (sizeof(TARGETS) / sizeof(TARGETS[0]))

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPORA_DIR [TARGET...]\n", argv[0]);
		return 2;
	}
	out_dir = argv[1];
	for (size_t i = 0; i < NTARGETS; i++) {
		int wanted = argc == 2;
		for (int a = 2; a < argc; a++)
			wanted |= strcmp(argv[a], TARGETS[i].name) == 0;
		if (wanted)
			TARGETS[i].fn();
	}
	return 0;
}
