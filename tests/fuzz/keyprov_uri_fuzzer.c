/*
 * Fuzz target: the key URI parsers of every provider built in (the scheme
 * registry, then aws-kms://, gcp-kms://, azure-kv://, vault:// ...).  A
 * provider is only built, never called, so nothing goes to the network.
 */
#include <stdlib.h>
#include <string.h>

#include "atrest/keys.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const schemes[] = {"", "aws-kms://", "gcp-kms://",
		"azure-kv://", "vault://", "vault+http://"};
	char *s = malloc(size + 16);
	atrest_keyprov *kp;

	if (!s)
		return 0;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i]);

		memcpy(s, schemes[i], n);
		memcpy(s + n, data, size);
		s[n + size] = '\0';
		if (atrest_keyprov_from_uri(&kp, s) == 0)
			atrest_keyprov_free(kp);
	}
	free(s);
	return 0;
}
