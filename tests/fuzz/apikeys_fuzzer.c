/*
 * Fuzz target: the API-key file parser (API keys and S3 keys), with the
 * properties that what it accepts is valid (tenants, roles, unique ids of
 * the right form) and that no presented key made from the input matches an
 * entry by accident.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/apikeys.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct srv_apikeys k;
	char why[256], key[SRV_APIKEY_LEN + 1];
	size_t i, j;

	if (srv_apikeys_parse(&k, (const char *)data, size, why, sizeof(why)) < 0) {
		if (!why[0])
			abort();
		return 0;
	}
	for (i = 0; i < k.n; i++) {
		if (!srv_tenant_ok(k.v[i].tenant) || k.v[i].role == SRV_ROLE_NONE ||
			strlen(k.v[i].id) !=
				(k.v[i].s3 ? SRV_S3KEY_ID_LEN : SRV_APIKEY_ID_LEN))
			abort();
		/* An S3 key is found by its id only, and never checks as an API key. */
		if (k.v[i].s3) {
			if (srv_s3keys_find(&k, k.v[i].id) == NULL)
				abort();
			continue;
		}
		for (j = 0; j < i; j++)
			if (!strcmp(k.v[i].id, k.v[j].id))
				abort();
		/* The id with an all-'A' secret: a match would be a broken hash. */
		memset(key, 'A', SRV_APIKEY_LEN);
		key[SRV_APIKEY_LEN] = '\0';
		memcpy(key, "atr_", 4);
		memcpy(key + 4, k.v[i].id, SRV_APIKEY_ID_LEN);
		key[4 + SRV_APIKEY_ID_LEN] = '_';
		if (srv_apikeys_check(&k, key))
			abort();
	}
	srv_apikeys_free(&k);
	return 0;
}
