/*
 * Locked, non-dumpable memory for keys: the one buffer type for secrets.
 * Release always wipes.
 */
#ifndef ATREST_SECRET_H
#define ATREST_SECRET_H

#include <stddef.h>
#include <stdint.h>

typedef struct atrest__secret {
	uint8_t *data;
	size_t len; /* bytes in use, <= cap */
	size_t cap;
} atrest__secret;

/*
 * A zeroed secret of cap bytes (len = cap) in its own mlock'ed,
 * MADV_DONTDUMP pages.  mlock failing (RLIMIT_MEMLOCK) is not an error: it
 * is reported once by atrest__secret_unlocked().
 */
int atrest__secret_new(atrest__secret **out, size_t cap);
/* A new secret holding a copy of len bytes of src. */
int atrest__secret_dup(atrest__secret **out, const void *src, size_t len);
/* Wipe, unlock and free; NULL is fine. */
void atrest__secret_free(atrest__secret *s);
/* How many secrets could not be locked so far in this process. */
unsigned long atrest__secret_unlocked(void);
/*
 * A small credential file (a token file, say) read into a new secret,
 * white space trimmed; at most max bytes.  Failures are
 * ATREST_EUNAVAILABLE naming what (the variable that named the file).
 */
int atrest__secret_read_file(
	atrest__secret **out, const char *path, size_t max, const char *what);
/* Wipe memory in a way the compiler does not remove. */
void atrest__wipe(void *p, size_t len);

#endif
