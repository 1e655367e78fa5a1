/*
 * Locked, non-dumpable memory for keys (contract in secret.h): every secret
 * has its own page-rounded mapping, so locking, MADV_DONTDUMP and the final
 * wipe cover exactly it and nothing else.  Small credential files are read
 * straight into one.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "atrest/keys.h"
#include "common.h"
#include "secret.h"

/* The mapping starts with this header; the public part comes first. */
struct secret_map {
	atrest__secret pub;
	size_t map_len;
	int locked;
};

#define DATA_OFFSET ((sizeof(struct secret_map) + 63) / 64 * 64) /* cache-line aligned */

static atomic_ulong g_unlocked;

int atrest__secret_new(atrest__secret **out, size_t cap)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t pg = page > 0 ? (size_t)page : 4096, len;
	struct secret_map *m;
	void *p;

	*out = NULL;
	ENSURE(cap <= SIZE_MAX - DATA_OFFSET - pg, ATREST_EINVAL,
		"secret of %zu bytes is too large", cap);
	len = (DATA_OFFSET + cap + pg - 1) / pg * pg;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return atrest__error_os(
			ATREST_ERROR, errno, "cannot map %zu bytes for a secret", len);
	/* Best effort: a low RLIMIT_MEMLOCK must not stop the program. */
	(void)madvise(p, len, MADV_DONTDUMP);
	m = p;
	m->locked = mlock(p, len) == 0;
	if (!m->locked)
		atomic_fetch_add(&g_unlocked, 1);
	m->map_len = len;
	m->pub.data = (uint8_t *)p + DATA_OFFSET;
	m->pub.len = cap;
	m->pub.cap = cap;
	*out = &m->pub;
	return 0;
}

int atrest__secret_dup(atrest__secret **out, const void *src, size_t len)
{
	GUARD(atrest__secret_new(out, len));
	if (len)
		memcpy((*out)->data, src, len);
	return 0;
}

void atrest__secret_free(atrest__secret *s)
{
	struct secret_map *m = (struct secret_map *)s;
	size_t len;
	int locked;

	if (s == NULL)
		return;
	len = m->map_len;
	locked = m->locked;
	/* Wipe the whole mapping (header too) before it goes back. */
	OPENSSL_cleanse(m, len);
	if (locked)
		munlock(m, len);
	munmap(m, len);
}

unsigned long atrest__secret_unlocked(void)
{
	return atomic_load(&g_unlocked);
}

unsigned long atrest_secure_memory_status(void)
{
	return atrest__secret_unlocked();
}

void atrest__wipe(void *p, size_t len)
{
	if (p && len)
		OPENSSL_cleanse(p, len);
}

int atrest__secret_read_file(
	atrest__secret **out, const char *path, size_t max, const char *what)
{
	atrest__secret *s;
	size_t got = 0, start = 0;
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return atrest__error_os(
			ATREST_EUNAVAILABLE, errno, "%s: cannot open %s", what, path);
	rc = atrest__secret_new(&s, max + 1);
	while (rc == 0 && got < max) {
		ssize_t n = read(fd, s->data + got, max - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = atrest__error_os(ATREST_EUNAVAILABLE, errno,
				"%s: cannot read %s", what, path);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (rc < 0) {
		atrest__secret_free(s);
		return rc;
	}
	if (got == max) {
		atrest__secret_free(s);
		return atrest__error(
			ATREST_EUNAVAILABLE, "%s: %s is too large", what, path);
	}
	while (got > 0 && isspace(s->data[got - 1]))
		got--;
	while (start < got && isspace(s->data[start]))
		start++;
	memmove(s->data, s->data + start, got - start);
	s->len = got - start;
	memset(s->data + s->len, 0, s->cap - s->len);
	if (s->len == 0) {
		atrest__secret_free(s);
		return atrest__error(ATREST_EUNAVAILABLE, "%s: %s is empty", what, path);
	}
	*out = s;
	return 0;
}
