/*
 * Who is acting, and what the server itself records: the per-request
 * principal (one setter, so it can be pointed at the library's audit
 * principal) and the server's own events (auth failures, key reloads),
 * logged as one line each on stderr.
 */
#ifndef ATREST_SERVER_EVENTS_H
#define ATREST_SERVER_EVENTS_H

#include "http.h"

/*
 * The principal of the request this thread serves; NULL clears it.  The
 * library's principal of this thread (atrest_principal_set) follows: the
 * store's audit trail records the request's operations for the API key's
 * id.
 */
void srv_principal_set(const struct http_principal *p);
/* This thread's principal, or NULL. */
const struct http_principal *srv_principal(void);

/*
 * A server event: kind (auth_failure, apikeys_reload, tls_reload, ...)
 * and details as "key=value" text; never secrets.  Logged with the
 * principal of this thread when one is set.  Auth failures are rate
 * limited in the log (every one is counted in the metrics).
 */
void srv_event(const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Where srv_audit records: the default tenant's handle, whose audit trail
 * is the store's (tenants included).  NULL: nowhere (before the store is
 * open, after it closed).
 */
void srv_audit_store(atrest_store *st);

/*
 * A server event in the store's audit trail and the library's metrics:
 * op is ATREST_OP_AUTH (a failed one counts in atrest_auth_failures_total),
 * ATREST_OP_SERVER, ...; outcome 0 or an atrest code; principal NULL for
 * this thread's; tenant NULL for the default; name (the subject) and detail
 * may be NULL.  Never a secret.
 */
void srv_audit(int op, int outcome, const char *principal, const char *tenant,
	const char *name, const char *detail);

/* One line on stderr, "atrest server: TIME MESSAGE". */
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
