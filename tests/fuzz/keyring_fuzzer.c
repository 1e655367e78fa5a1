/*
 * Fuzz target: the keyring JSON parser (no key is used; unlocking is what
 * authenticates a keyring, parsing must survive anything first).
 */
#include "fuzz.h"
#include "keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	atrest__keyring *kr = NULL;

	if (atrest__keyring_parse(&kr, (const char *)data, size) == 0)
		atrest__keyring_free(kr);
	return 0;
}
