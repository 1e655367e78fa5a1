/*
 * Locked, non-dumpable memory for keys (contract in secret.h): every secret
 * has its own page-rounded mapping, so locking, MADV_DONTDUMP and the final
 * wipe cover exactly it and nothing else.
 */
#include <errno.h>
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
