/*
 * One store handle per tenant, opened with the core's tenant support on
 * first use and shared by every request of that tenant; all handles share
 * one thread pool.  A handle is checked against the store's tenant
 * registry at most once a second, so a tenant shredded meanwhile is
 * refused and one shredded and added again gets a new handle.  Opening
 * fails cleanly (and is retried by the next request) while a key provider
 * is down.
 */
#ifndef ATREST_SERVER_TENANTS_H
#define ATREST_SERVER_TENANTS_H

#include "atrest/atrest.h"

struct srv_tenants;
struct srv_tenant; /* a counted reference to one tenant's handle */

struct srv_store_config {
	const char *path;      /* the store's location */
	const char *state_dir; /* atrest_store_options.state_dir */
	const char *audit;     /* atrest_store_options.audit (NULL: default) */
	unsigned int threads;  /* of the pool every handle shares (0: CPUs) */
	unsigned int flags;    /* ATREST_STORE_* */
	int allow_plaintext;
};

/*
 * Start the pool and open the default tenant's handle (creating the store
 * when missing).  0 or a negative atrest code with the library's message
 * as last error.
 */
int srv_tenants_new(struct srv_tenants **out, const struct srv_store_config *cfg);

/*
 * The default tenant's handle, open for the table's whole life (it holds
 * the registry of tenants): no reference to release.
 */
atrest_store *srv_tenants_root(struct srv_tenants *t);

/*
 * A reference to tenant's handle ("" the default tenant), opening it when
 * needed.  ATREST_ENOTFOUND when the tenant is not (or no longer) in the
 * store's registry.  Release with srv_tenant_release: the handle stays
 * valid until then even when it is replaced meanwhile.
 */
int srv_tenants_acquire(atrest_store **out, struct srv_tenant **ref,
	struct srv_tenants *t, const char *tenant);
void srv_tenant_release(struct srv_tenant *ref);

/* The handle and the tenant's name ("" the default) of a reference. */
atrest_store *srv_tenant_store(const struct srv_tenant *ref);
const char *srv_tenant_name(const struct srv_tenant *ref);

/*
 * References to every open handle (for metrics): *n of them in *out, an
 * array to give back to srv_tenants_release_all.  0 or ATREST_ERROR.
 */
int srv_tenants_all(struct srv_tenant ***out, size_t *n, struct srv_tenants *t);
void srv_tenants_release_all(struct srv_tenant **refs, size_t n);

/*
 * The library's metrics of every open handle (only: of that tenant's
 * alone, when open) as one Prometheus exposition, each sample labelled
 * with its tenant; free *out with atrest_free.
 */
int srv_tenants_metrics(char **out, size_t *len, struct srv_tenants *t, const char *only);

/* Close every handle and the pool; no request may be in flight. */
void srv_tenants_free(struct srv_tenants *t);

#endif
