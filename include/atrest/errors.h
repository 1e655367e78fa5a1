/*
 * Error codes of libatrest and the thread-local last-error detail.
 * Callers branch on the code; the message is for humans and never holds secrets.
 */
#ifndef ATREST_ERRORS_H
#define ATREST_ERRORS_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every public function returns 0 or one of these negative codes. */
typedef enum atrest_error_code {
	ATREST_OK = 0,
	ATREST_ERROR = -1,        /* generic failure (I/O, memory, OpenSSL) */
	ATREST_EINVAL = -2,       /* bad argument or bad name (CLI exit 2) */
	ATREST_ENOTFOUND = -3,    /* no such object or store (CLI exit 3) */
	ATREST_EINTEGRITY = -4,   /* modified, truncated, moved, not atrest (exit 4) */
	ATREST_EKEY = -5,         /* no key, wrong key, key destroyed (exit 5) */
	ATREST_EEXISTS = -6,      /* already exists */
	ATREST_EUNAVAILABLE = -7, /* a provider or backend cannot be reached */
	ATREST_ENOSPC = -8,       /* disk or quota full */
	ATREST_ETOOBIG = -9,      /* over a configured size limit */
	ATREST_ECONFLICT = -10    /* changed meanwhile (a conditional put lost) */
} atrest_error_code;

typedef struct atrest_error {
	int code;
	const char *message; /* one line, no trailing newline */
} atrest_error;

/*
 * The last error raised on this thread, or NULL when none was.  The pointer
 * stays valid until the next libatrest call on the same thread.
 */
ATREST_EXTERN const atrest_error *atrest_error_last(void);

/* Forget the last error of this thread. */
ATREST_EXTERN void atrest_error_clear(void);

/*
 * For plug-ins (key providers, store backends): set this thread's last
 * error to code and a printf-style message; returns code.
 */
ATREST_EXTERN int atrest_error_set(int code, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* A short static description of a code, e.g. "integrity failure". */
ATREST_EXTERN const char *atrest_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
