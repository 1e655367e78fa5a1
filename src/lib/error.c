/*
 * Thread-local last error of libatrest and the code tables (names, CLI exit
 * statuses).  Messages are built by the library and never contain secrets.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "common.h"

#define MSG_MAX ATREST__ERROR_MSG_MAX

static _Thread_local char tl_msg[MSG_MAX];
static _Thread_local atrest_error tl_err;
static _Thread_local int tl_set;
static _Thread_local unsigned long tl_seq; /* errors raised on this thread */

ATREST__PRINTF(2, 0)
static int set_message(int code, const char *fmt, va_list ap, const char *tail)
{
	size_t n;

	vsnprintf(tl_msg, sizeof(tl_msg), fmt, ap);
	n = strlen(tl_msg);
	if (tail && *tail && n < sizeof(tl_msg) - 3)
		snprintf(tl_msg + n, sizeof(tl_msg) - n, ": %s", tail);
	tl_err.code = code;
	tl_err.message = tl_msg;
	tl_set = 1;
	tl_seq++;
	return code;
}

int atrest__error(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_message(code, fmt, ap, NULL);
	va_end(ap);
	return code;
}

int atrest_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_message(code, fmt, ap, NULL);
	va_end(ap);
	return code;
}

int atrest__error_os(int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	char buf[128];
	const char *s;

#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	s = strerror_r(errnum, buf, sizeof(buf));
#else
	s = strerror_r(errnum, buf, sizeof(buf)) == 0 ? buf : "unknown error";
#endif
	va_start(ap, fmt);
	set_message(code, fmt, ap, s);
	va_end(ap);
	return code;
}

int atrest__error_ossl(int code, const char *fmt, ...)
{
	va_list ap;
	char buf[256] = "";
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	va_start(ap, fmt);
	set_message(code, fmt, ap, buf);
	va_end(ap);
	return code;
}

ATREST__PRINTF(1, 2)
void atrest__error_prefix(const char *fmt, ...)
{
	char old[MSG_MAX];
	va_list ap;
	int n;

	if (!tl_set)
		return;
	memcpy(old, tl_msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(tl_msg, sizeof(tl_msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tl_msg) - 3)
		return;
	tl_msg[n] = ':';
	tl_msg[n + 1] = ' ';
	memcpy(tl_msg + n + 2, old, sizeof(tl_msg) - (size_t)n - 2);
	tl_msg[sizeof(tl_msg) - 1] = '\0';
}

void atrest__error_save(atrest__saved_error *out)
{
	out->code = tl_set ? tl_err.code : 0;
	memcpy(out->message, tl_set ? tl_msg : "", tl_set ? sizeof(tl_msg) : 1);
}

int atrest__error_restore(const atrest__saved_error *e)
{
	if (e->code == 0) {
		atrest_error_clear();
		return 0;
	}
	return atrest__error(e->code, "%s", e->message);
}

int atrest__errno_code(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ENOTDIR:
		return ATREST_ENOTFOUND;
	case EEXIST:
		return ATREST_EEXISTS;
	case ENOSPC:
	case EDQUOT:
		return ATREST_ENOSPC;
	case EFBIG:
		return ATREST_ETOOBIG;
	case ENAMETOOLONG:
	case EISDIR:
		return ATREST_EINVAL;
	default:
		return ATREST_ERROR;
	}
}

const atrest_error *atrest_error_last(void)
{
	return tl_set ? &tl_err : NULL;
}

void atrest_error_clear(void)
{
	tl_set = 0;
	tl_msg[0] = '\0';
}

const char *atrest_strerror(int code)
{
	switch (code) {
	case ATREST_OK:
		return "success";
	case ATREST_EINVAL:
		return "invalid argument";
	case ATREST_ENOTFOUND:
		return "not found";
	case ATREST_EINTEGRITY:
		return "integrity failure";
	case ATREST_EKEY:
		return "key error";
	case ATREST_EEXISTS:
		return "already exists";
	case ATREST_EUNAVAILABLE:
		return "unavailable";
	case ATREST_ENOSPC:
		return "no space left";
	case ATREST_ETOOBIG:
		return "too big";
	case ATREST_ECONFLICT:
		return "changed meanwhile";
	default:
		return "error";
	}
}

int atrest__check_version(unsigned int have, unsigned int current, const char *type)
{
	ENSURE(have >= 1 && have <= current, ATREST_EINVAL,
		"unsupported %s version %u (this libatrest knows 1 to %u; set it with "
		"the _INIT macro)",
		type, have, current);
	return 0;
}

unsigned long atrest__error_seq(void)
{
	return tl_seq;
}
