/*
 * Tenants of a store: each has its own namespace of objects, its own
 * keyring (data keys, rotation, destruction, settings) and may have its own
 * master key.  A handle opened with atrest_store_options.tenant works on
 * that tenant alone; these functions take a handle on the store itself (no
 * tenant), whose master key authenticates the list of tenants.
 */
#ifndef ATREST_TENANT_H
#define ATREST_TENANT_H

#include "export.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atrest_tenant_options {
	unsigned int version; /* ATREST_TENANT_OPTIONS_VERSION */
	/*
	 * The tenant's own master key, named by a key URI or a key file (at
	 * most one; neither: the store's master key).  Only the reference is
	 * kept, in the store's keyring: keep secrets (a PIN) out of the URI.
	 */
	const char *key_uri;
	const char *key_file;
} atrest_tenant_options;

#define ATREST_TENANT_OPTIONS_VERSION 1
#define ATREST_TENANT_OPTIONS_INIT                       \
	{                                                \
		.version = ATREST_TENANT_OPTIONS_VERSION \
	}

/*
 * Add tenant name (1 to 64 letters, digits, '.', '_', '-'; a letter or
 * digit first) with a new keyring wrapped by its master key (opts may be
 * NULL).  ATREST_EEXISTS when it exists.
 */
ATREST_EXTERN int atrest_tenant_add(
	atrest_store *st, const char *name, const atrest_tenant_options *opts);

typedef struct atrest_tenant_info {
	const char *name;
	const char *key_uri;  /* its own master key, or NULL */
	const char *key_file; /* (neither: the store's master key) */
	char keyring_id[33];  /* hex id of its keyring, in its objects' headers */
} atrest_tenant_info;

/* Called once per tenant, in the order they were added; a non-zero
 * return stops the walk and is returned. */
typedef int (*atrest_tenant_cb)(const atrest_tenant_info *info, void *payload);

ATREST_EXTERN int atrest_tenant_list(
	atrest_store *st, atrest_tenant_cb cb, void *payload);

/*
 * Crypto-shred tenant name: first destroy every data key of its keyring
 * (its objects are unreadable from that moment, in every process within a
 * second), then remove its objects (their count in *removed, which may be
 * NULL), its keyring and its entry.  Re-run it after an interruption.
 */
ATREST_EXTERN int atrest_tenant_shred(
	uint64_t *removed, atrest_store *st, const char *name);

#ifdef __cplusplus
}
#endif
#endif
