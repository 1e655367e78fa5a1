/*
 * One store handle per tenant, opened on first use with the server's
 * master-key settings and kept until shutdown.  Opening fails cleanly
 * (and is retried by the next request) while a key provider is down.
 */
#ifndef ATREST_SERVER_TENANTS_H
#define ATREST_SERVER_TENANTS_H

#include "atrest/atrest.h"

struct srv_tenants;

struct srv_store_config {
	const char *path;     /* the store directory */
	unsigned int threads; /* atrest_store_options.threads */
	unsigned int flags;   /* ATREST_STORE_* */
	int allow_plaintext;
};

int srv_tenants_new(struct srv_tenants **out, const struct srv_store_config *cfg);
/*
 * The handle of tenant ("" the default), opening it when needed (creating
 * the store for the default tenant).  0 or a negative atrest code with the
 * library's message as last error.
 */
int srv_tenants_get(atrest_store **out, struct srv_tenants *t, const char *tenant);
void srv_tenants_free(struct srv_tenants *t);

#endif
