/*
 * The REST API of atrest server: checkpoints under /v1/checkpoints/, keys
 * under /v1/keys, health, readiness and metrics; errors as JSON.
 */
#ifndef ATREST_SERVER_REST_H
#define ATREST_SERVER_REST_H

#include "auth.h"
#include "http.h"
#include "tenants.h"

struct srv_rest {
	struct srv_tenants *tenants;
	struct srv_auth *auth;
	uint64_t max_object;        /* bytes of a PUT body; 0: no limit */
	const char *state_dir;      /* the server's state (readiness writes there) */
	volatile int draining;      /* readyz answers 503 */
	atrest_recorder *ready_rec; /* readyz's, under its mutex */
};

/* The API table for http_listener_start, bound to r. */
void srv_rest_api(struct http_api *out, struct srv_rest *r);
/* Close what the API opened (before the store closes). */
void srv_rest_cleanup(struct srv_rest *r);

#endif
