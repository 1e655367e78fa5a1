/*
 * Who is acting, and what the server itself records: the per-request
 * principal (one setter, so it can be pointed at the library's audit
 * principal) and the server's own events (auth failures, key reloads),
 * logged as one line each on stderr.
 */
#ifndef ATREST_SERVER_EVENTS_H
#define ATREST_SERVER_EVENTS_H

#include "http.h"

/* The principal of the request this thread serves; NULL clears it. */
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

/* One line on stderr, "atrest server: TIME MESSAGE". */
void srv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
