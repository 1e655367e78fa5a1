/*
 * The registries of plug-ins built into libatrest: key providers by URI
 * scheme (keyprov.c) and store backends by location scheme.  Optional ones
 * are compiled in by the CMake options ATREST_WITH_<NAME>.
 */
#ifndef ATREST_PLUGINS_H
#define ATREST_PLUGINS_H

#include "atrest/sys/backend.h"
#include "atrest/sys/keyprov.h"

/*
 * A provider named by a key URI.  The URI may carry a PIN or a token: a
 * constructor never copies it into an error message.
 */
typedef int (*atrest__keyprov_uri_fn)(atrest_keyprov **out, const char *uri);

#ifdef ATREST_WITH_PKCS11
int atrest__keyprov_pkcs11(atrest_keyprov **out, const char *uri);
#endif
#ifdef ATREST_WITH_KMIP
int atrest__keyprov_kmip(atrest_keyprov **out, const char *uri);
#endif
#ifdef ATREST_WITH_TPM2
int atrest__keyprov_tpm2(atrest_keyprov **out, const char *uri);
#endif
#ifdef ATREST_WITH_CLOUD
int atrest__keyprov_aws_kms(atrest_keyprov **out, const char *uri);
int atrest__keyprov_gcp_kms(atrest_keyprov **out, const char *uri);
int atrest__keyprov_azure_kv(atrest_keyprov **out, const char *uri);
int atrest__keyprov_vault(atrest_keyprov **out, const char *uri);
#endif

/*
 * A store backend named by a location "scheme://..." (backend.c); flags
 * are the store's ATREST_STORE_* flags (ATREST_STORE_NO_SYNC, ...).  The
 * location may carry credentials: never copy it into an error message.
 */
typedef int (*atrest__backend_fn)(
	atrest_backend **out, const char *location, unsigned int flags);

#ifdef ATREST_WITH_S3
int atrest__backend_s3(atrest_backend **out, const char *location, unsigned int flags);
#endif

#endif
