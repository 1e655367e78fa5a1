/*
 * Helpers shared by the unit tests (see helpers.h).  Test-only code: plain
 * libc, failing loudly through cmocka; a pass-through key provider.
 */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

void th_tmpdir(char *out, size_t cap)
{
	const char *base = getenv("TMPDIR");

	snprintf(out, cap, "%s/atrest-test-XXXXXX", base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(out));
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

void th_rmrf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint8_t *th_unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	uint8_t *b = malloc(n ? n : 1);

	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		unsigned int v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		b[i] = (uint8_t)v;
	}
	*len = n;
	return b;
}

char *th_hex(const uint8_t *b, size_t n)
{
	char *s = malloc(2 * n + 1);

	assert_non_null(s);

	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", b[i]);
	s[2 * n] = '\0';
	return s;
}

void th_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

uint8_t *th_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc(n > 0 ? (size_t)n : 1);
	if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

int th_write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(buf, 1, len, f) == len;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

atrest_keyprov *th_raw_key(const uint8_t *k)
{
	atrest_keyprov *kp;

	assert_int_equal(atrest_keyprov_raw(&kp, k, 32), 0);
	return kp;
}

int th_store_open(
	atrest_store **st, const char *dir, atrest_keyprov *key, atrest_keyprov *old)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;

	o.path = dir;
	o.create = 1;
	o.key = key;
	o.old_key = old;
	return atrest_store_open(st, &o);
}

atrest_store *th_store_with(
	const char *dir, const uint8_t *key, int cipher, uint32_t seg, unsigned threads)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st = NULL;

	o.path = dir;
	o.create = 1;
	o.cipher = cipher;
	o.segment_size = seg;
	o.threads = threads;
	o.key = th_raw_key(key);
	assert_int_equal(atrest_store_open(&st, &o), 0);
	return st;
}

void th_expect_object(atrest_store *st, const char *name, const char *want)
{
	void *out;
	size_t n;

	assert_int_equal(atrest_get(&out, &n, st, name), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	atrest_free(out);
}

static int kp_bind(atrest_keyprov *kp, const char *in, char **out)
{
	th_kp *k = (th_kp *)kp;

	return k->real->bind(k->real, in, out);
}

static int kp_key_id(atrest_keyprov *kp, char *out, size_t cap)
{
	th_kp *k = (th_kp *)kp;

	return k->real->key_id(k->real, out, cap);
}

static int kp_wrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *n,
	const uint8_t *key, size_t kl, const uint8_t *aad, size_t al)
{
	th_kp *k = (th_kp *)kp;
	int rc = k->hook ? k->hook(k, 0) : 0;

	return rc ? rc : k->real->wrap(k->real, out, cap, n, key, kl, aad, al);
}

static int kp_unwrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *n,
	const uint8_t *w, size_t wl, const uint8_t *aad, size_t al)
{
	th_kp *k = (th_kp *)kp;
	int rc;

	__atomic_add_fetch(&k->unwraps, 1, __ATOMIC_RELAXED);
	rc = k->hook ? k->hook(k, 1) : 0;
	return rc ? rc : k->real->unwrap(k->real, out, cap, n, w, wl, aad, al);
}

static void kp_free(atrest_keyprov *kp)
{
	(void)kp; /* the test's */
}

void th_kp_init(th_kp *k, const char *kind, atrest_keyprov *real)
{
	memset(k, 0, sizeof(*k));
	k->parent.version = ATREST_KEYPROV_VERSION;
	k->parent.kind = kind;
	k->parent.bind = kp_bind;
	k->parent.key_id = kp_key_id;
	k->parent.wrap = kp_wrap;
	k->parent.unwrap = kp_unwrap;
	k->parent.free = kp_free;
	k->real = real;
}
