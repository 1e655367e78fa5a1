/*
 * The per-request principal (thread-local: one connection per thread), the
 * server's clock and its log: events and messages as one timestamped line
 * each on stderr, auth failures rate limited so a flood cannot fill the
 * journal.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "events.h"

static _Thread_local const struct http_principal *principal;
static atrest_store *audit_st;

void srv_principal_set(const struct http_principal *p)
{
	principal = p;
	atrest_principal_set(p && p->key_id[0] ? p->key_id : NULL);
}

const struct http_principal *srv_principal(void)
{
	return principal;
}

__attribute__((format(printf, 2, 0))) static void vlog(
	const char *prefix, const char *fmt, va_list ap)
{
	char when[32], line[1024];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "atrest server: %s.%03ldZ %s", when,
		ts.tv_nsec / 1000000, prefix);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	/* One write per line, so lines of different threads never mix. */
	fprintf(stderr, "%s\n", line);
}

int64_t http_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void srv_audit_store(atrest_store *st)
{
	__atomic_store_n(&audit_st, st, __ATOMIC_RELEASE);
}

void srv_audit(int op, int outcome, const char *who, const char *tenant, const char *name,
	const char *detail)
{
	atrest_store *st = __atomic_load_n(&audit_st, __ATOMIC_ACQUIRE);
	atrest_event ev = ATREST_EVENT_INIT;

	if (!st)
		return;
	ev.op = op;
	ev.outcome = outcome;
	ev.principal = who;
	ev.tenant = tenant ? tenant : "";
	ev.name = name;
	ev.detail = detail;
	if (atrest_audit_record(st, &ev) < 0) {
		const atrest_error *e = atrest_error_last();

		srv_log("event=audit_failed op=%s reason=\"%s\"", atrest_op_name(op),
			e ? e->message : "?");
	}
}

void srv_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

/* At most 10 auth-failure lines a second. */
static int rate_ok(void)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static time_t second;
	static unsigned n;
	time_t now = time(NULL);
	int ok;

	pthread_mutex_lock(&mu);
	if (now != second) {
		second = now;
		n = 0;
	}
	ok = n++ < 10;
	pthread_mutex_unlock(&mu);
	return ok;
}

void srv_event(const char *kind, const char *fmt, ...)
{
	const struct http_principal *p = principal;
	char prefix[160];
	va_list ap;

	if (!strcmp(kind, "auth_failure") && !rate_ok())
		return;
	if (p && p->key_id[0])
		snprintf(prefix, sizeof(prefix), "event=%s key=%s tenant=%s ", kind,
			p->key_id, p->tenant[0] ? p->tenant : "-");
	else
		snprintf(prefix, sizeof(prefix), "event=%s ", kind);
	va_start(ap, fmt);
	vlog(prefix, fmt, ap);
	va_end(ap);
}
