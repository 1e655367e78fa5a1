/*
 * Shared internals of libatrest: the error-raising helpers and the control
 * macros every library file uses (s2n-style ENSURE/GUARD, one out: label).
 */
#ifndef ATREST_COMMON_H
#define ATREST_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "atrest/errors.h"

#if defined(__GNUC__)
#define ATREST__PRINTF(a, b) __attribute__((format(printf, a, b)))
#define ATREST__WUR __attribute__((warn_unused_result))
#else
#define ATREST__PRINTF(a, b)
#define ATREST__WUR
#endif

/* Record code and message as this thread's last error; returns code. */
int atrest__error(int code, const char *fmt, ...) ATREST__PRINTF(2, 3);
/* Same, appending strerror(errnum). */
int atrest__error_os(int code, int errnum, const char *fmt, ...) ATREST__PRINTF(3, 4);
/* Same, appending OpenSSL's first queued error reason (and clearing it). */
int atrest__error_ossl(int code, const char *fmt, ...) ATREST__PRINTF(2, 3);
/* Prefix the current last message with "what: " (context for callers). */
void atrest__error_prefix(const char *fmt, ...) ATREST__PRINTF(1, 2);

/*
 * This thread's last error, kept aside: errors are thread-local, so one
 * that must survive other library calls, or cross to another thread, is
 * saved and later raised again (on any thread) by restore.
 */
#define ATREST__ERROR_MSG_MAX 1024
typedef struct atrest__saved_error {
	int code; /* 0 when no error was set */
	char message[ATREST__ERROR_MSG_MAX];
} atrest__saved_error;
void atrest__error_save(atrest__saved_error *out);
/* Raise the saved error again on this thread; returns its code (0: none). */
int atrest__error_restore(const atrest__saved_error *e);
/*
 * The one rule for the versioned structs callers pass (options, and the
 * info structs they fill in): versions 1 up to current are accepted, and
 * the library touches only the fields of the caller's version.
 */
int atrest__check_version(unsigned int have, unsigned int current, const char *type);
/*
 * How many errors this thread has raised so far.  A wrapper around a
 * plug-in call compares it before and after, to tell whether the plug-in
 * set a message, without clearing (and so losing) the caller's last error.
 */
unsigned long atrest__error_seq(void);
/* The code an errno maps to (ENOENT -> ENOTFOUND, ENOSPC -> ENOSPC...). */
int atrest__errno_code(int errnum);

/*
 * n bytes from the 2n hex digits at hex (no terminator needed); on any
 * other character ATREST_EINVAL and out wiped (keyprov.c).
 */
int atrest__unhex_n(uint8_t *out, size_t n, const char *hex);

/* Return code from the enclosing function unless cond holds. */
#define ENSURE(cond, code, ...)                                    \
	do {                                                       \
		if (!(cond))                                       \
			return atrest__error((code), __VA_ARGS__); \
	} while (0)

/* Return any failure of call. */
#define GUARD(call)                       \
	do {                              \
		int guard_rc_ = (call);   \
		if (guard_rc_ < 0)        \
			return guard_rc_; \
	} while (0)

/* Set rc and jump to out: on failure of call (functions owning resources). */
#define GUARD_OUT(call)           \
	do {                      \
		rc = (call);      \
		if (rc < 0)       \
			goto out; \
	} while (0)

#define ENSURE_OUT(cond, code, ...)                              \
	do {                                                     \
		if (!(cond)) {                                   \
			rc = atrest__error((code), __VA_ARGS__); \
			goto out;                                \
		}                                                \
	} while (0)

/* OpenSSL calls return 1 on success. */
#define GUARD_OSSL(call, code, ...)                                     \
	do {                                                            \
		if ((call) != 1)                                        \
			return atrest__error_ossl((code), __VA_ARGS__); \
	} while (0)

/* Little-endian integer coding used by every on-disk structure. */
static inline void atrest__put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void atrest__put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void atrest__put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t atrest__le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t atrest__le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
}

static inline uint64_t atrest__le64(const uint8_t *p)
{
	return (uint64_t)atrest__le32(p) | (uint64_t)atrest__le32(p + 4) << 32;
}

#endif
