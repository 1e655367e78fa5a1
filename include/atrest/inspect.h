/*
 * Reading an object's header without any key: the facts inspect shows.
 * Nothing here is authenticated; it is for people and tools, not decisions.
 */
#ifndef ATREST_INSPECT_H
#define ATREST_INSPECT_H

#include "export.h"

#include <stdint.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atrest_header_info {
	unsigned int version; /* ATREST_HEADER_INFO_VERSION, set by the caller */
	int format_version;   /* of the object format */
	int form;             /* 1 store object, 2 standalone file, 3 multipart object */
	int cipher;
	uint32_t segment_size;
	uint32_t data_key_id; /* 0 in a standalone file */
	char store_id[33];    /* hex; "" in a standalone file */
	char tenant[ATREST_TENANT_MAX + 1];
	char name[ATREST_NAME_MAX + 1];
	uint32_t header_size;
	uint32_t meta_size; /* sealed metadata bytes */
	uint64_t stored_size;
	uint64_t plaintext_size;
	uint64_t segments;
} atrest_header_info;

#define ATREST_HEADER_INFO_VERSION 1
#define ATREST_HEADER_INFO_INIT                       \
	{                                             \
		.version = ATREST_HEADER_INFO_VERSION \
	}

/*
 * Parse the file at path (out->version set by the caller:
 * ATREST_HEADER_INFO_INIT).  ATREST_EINTEGRITY when it is not an atrest object
 * or its layout is inconsistent with its size.
 */
ATREST_EXTERN int atrest_inspect_file(atrest_header_info *out, const char *path);

/*
 * The same for object name of the store at location (a path or a URI, see
 * atrest_backend_open) in tenant's namespace (NULL or "": the default),
 * read through the store's backend: no key, no link followed.
 */
ATREST_EXTERN int atrest_inspect_object(atrest_header_info *out, const char *location,
	const char *tenant, const char *name);

#ifdef __cplusplus
}
#endif
#endif
