/*
 * Helpers of the URI-named key providers (uri.h): attribute lookup with
 * percent-decoding, PIN files, AES-256-GCM wrapping under a key in locked
 * memory, and a monotonic clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "crypto.h"
#include "uri.h"

#define SECRET_FILE_MAX 4096

/*
 * Percent-decode v[0..n) into out (NUL-terminated; *olen bytes, NULs
 * allowed only when olen is given); -1 when malformed or too long.
 */
static int pct_decode(char *out, size_t cap, const char *v, size_t n, size_t *olen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)v[i];

		if (c == '%') {
			uint8_t x;

			if (i + 2 >= n || atrest__unhex_n(&x, 1, v + i + 1) < 0)
				return -1;
			c = x;
			i += 2;
		}
		if ((c == 0 && !olen) || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (olen)
		*olen = o;
	return 0;
}

/* Calls fn for each "name=value" item; stops on a non-zero return. */
static int each_attr(const char *s, size_t len, char sep,
	int (*fn)(const char *name, size_t nlen, const char *val, size_t vlen, void *arg),
	void *arg)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i, eq;
		int rc;

		while (j < len && s[j] != sep)
			j++;
		for (eq = i; eq < j && s[eq] != '='; eq++)
			;
		if (j > i) {
			rc = eq < j ? fn(s + i, eq - i, s + eq + 1, j - eq - 1, arg)
				    : fn(s + i, j - i, NULL, 0, arg);
			if (rc)
				return rc;
		}
		i = j + 1;
	}
	return 0;
}

struct attr_find {
	const char *name, *what;
	char *out;
	size_t cap, *len;
	int found;
};

static int find_one(
	const char *name, size_t nlen, const char *val, size_t vlen, void *arg)
{
	struct attr_find *f = arg;

	if (strlen(f->name) != nlen || strncmp(name, f->name, nlen) != 0)
		return 0;
	if (f->found)
		return atrest__error(
			ATREST_EKEY, "%s: attribute '%s' given twice", f->what, f->name);
	if (!val || pct_decode(f->out, f->cap, val, vlen, f->len) < 0) {
		atrest__wipe(f->out, f->cap);
		return atrest__error(ATREST_EKEY,
			"%s: attribute '%s' is malformed or too long", f->what, f->name);
	}
	f->found = 1;
	return 0;
}

int atrest__uri_attr(char *out, size_t cap, const char *s, size_t len, char sep,
	const char *name, const char *what)
{
	struct attr_find f = {name, what, out, cap, NULL, 0};

	out[0] = '\0';
	GUARD(each_attr(s, len, sep, find_one, &f));
	return f.found;
}

int atrest__uri_attr_bytes(uint8_t *out, size_t cap, size_t *out_len, const char *s,
	size_t len, char sep, const char *name, const char *what)
{
	struct attr_find f = {name, what, (char *)out, cap, out_len, 0};

	*out_len = 0;
	GUARD(each_attr(s, len, sep, find_one, &f));
	return f.found;
}

struct attr_known {
	const char *const *known;
	const char *what;
};

static int check_known(
	const char *name, size_t nlen, const char *val, size_t vlen, void *arg)
{
	struct attr_known *k = arg;

	(void)val, (void)vlen;
	for (const char *const *p = k->known; *p; p++)
		if (strlen(*p) == nlen && strncmp(name, *p, nlen) == 0)
			return 0;
	for (size_t i = 0; i < nlen; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || name[i] == '-' ||
			    (name[i] >= '0' && name[i] <= '9')))
			return atrest__error(
				ATREST_EKEY, "%s: malformed attribute", k->what);
	return atrest__error(ATREST_EKEY, "%s: unknown attribute '%.*s'", k->what,
		(int)(nlen > 40 ? 40 : nlen), name);
}

int atrest__uri_known(
	const char *s, size_t len, char sep, const char *const *known, const char *what)
{
	struct attr_known k = {known, what};

	return each_attr(s, len, sep, check_known, &k);
}

int atrest__read_secret_file(atrest__secret **out, const char *path, const char *what)
{
	atrest__secret *s = NULL;
	struct stat st;
	ssize_t n;
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return atrest__error_os(
			ATREST_EKEY, errno, "%s: cannot open %s", what, path);
	ENSURE_OUT(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			st.st_size < SECRET_FILE_MAX,
		ATREST_EKEY, "%s: %s is not a small regular file", what, path);
	GUARD_OUT(atrest__secret_new(&s, (size_t)st.st_size + 1));
	do
		n = read(fd, s->data, s->cap - 1);
	while (n < 0 && errno == EINTR);
	ENSURE_OUT(n >= 0, ATREST_EKEY, "%s: cannot read %s", what, path);
	while (n > 0 && (s->data[n - 1] == '\n' || s->data[n - 1] == '\r'))
		n--;
	s->data[n] = '\0';
	s->len = (size_t)n;
	*out = s;
	s = NULL;
out:
	close(fd);
	atrest__secret_free(s);
	return rc;
}

int atrest__gcm_wrap(const atrest__secret *key, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *in, size_t in_len, const uint8_t *aad, size_t aad_len)
{
	size_t need = ATREST_NONCE_LEN + in_len + ATREST_AEAD_TAG_LEN;
	atrest__aead *a = NULL;
	int rc;

	ENSURE(cap >= need, ATREST_EINVAL, "wrap needs %zu bytes of room", need);
	GUARD(atrest__aead_new(&a, 1 /* AES-256-GCM */, key->data, 32));
	GUARD_OUT(atrest__rand(out, ATREST_NONCE_LEN));
	GUARD_OUT(atrest__aead_seal(
		a, out + ATREST_NONCE_LEN, out, aad, aad_len, in, in_len));
	*out_len = need;
out:
	atrest__aead_free(a);
	return rc;
}

int atrest__gcm_unwrap(const atrest__secret *key, uint8_t *out, size_t cap,
	size_t *out_len, const uint8_t *in, size_t in_len, const uint8_t *aad,
	size_t aad_len, const char *what)
{
	uint8_t tmp[1024];
	atrest__aead *a = NULL;
	size_t n = 0;
	int rc;

	ENSURE(in_len > ATREST_NONCE_LEN + ATREST_AEAD_TAG_LEN && in_len <= sizeof(tmp),
		ATREST_EKEY, "%s: a wrapped key of %zu bytes is not one it made", what,
		in_len);
	GUARD(atrest__aead_new(&a, 1 /* AES-256-GCM */, key->data, 32));
	if (atrest__aead_open(a, tmp, &n, in, aad, aad_len, in + ATREST_NONCE_LEN,
		    in_len - ATREST_NONCE_LEN) < 0) {
		rc = atrest__error(ATREST_EKEY,
			"%s: wrong master key (the wrapped key does not open with it, "
			"or was altered)",
			what);
		goto out;
	}
	ENSURE_OUT(n <= cap, ATREST_EINVAL, "%s: unwrapped key too long", what);
	memcpy(out, tmp, n);
	*out_len = n;
	rc = 0;
out:
	atrest__aead_free(a);
	atrest__wipe(tmp, sizeof(tmp));
	return rc;
}

int64_t atrest__mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
