/*
 * The S3-compatible API of atrest server, on its own listener: SigV4
 * authentication with S3 access keys (atrest s3key), buckets as top-level
 * prefixes of the key's tenant, objects, listings and S3 XML errors.
 */
#ifndef ATREST_SERVER_S3_H
#define ATREST_SERVER_S3_H

#include <pthread.h>

#include "auth.h"
#include "http.h"
#include "tenants.h"

struct srv_s3 {
	struct srv_tenants *tenants;
	struct srv_auth *keys; /* the S3 key file */
	uint64_t max_object;   /* bytes of a PUT body; 0: no limit */
	const char *region;    /* signatures must be scoped to it */
	const char *domain;    /* virtual-host style under it; NULL: none */
	/* Opens sealed secrets (a recorder belongs to one thread at a time). */
	pthread_mutex_t mu;
	atrest_recorder *rec;
};

/* The API table for http_listener_start, bound to s. 0 or -1. */
int srv_s3_api(struct http_api *out, struct srv_s3 *s);
/*
 * Remove the creation-metadata markers of multipart uploads that no
 * longer exist (aborted by age with 'atrest upload cleanup') in every open
 * tenant; the count removed.
 */
size_t srv_s3_sweep(struct srv_s3 *s);
/* The same in one tenant's store (s3_multipart.c). */
size_t srv_s3_sweep_store(atrest_store *st);
/* Close what the API opened (before the store closes). */
void srv_s3_cleanup(struct srv_s3 *s);

#endif
