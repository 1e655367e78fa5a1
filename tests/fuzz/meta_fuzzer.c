/*
 * Fuzz target: the metadata decoder, with the property that decoded entries
 * are NUL-terminated strings that encode back to the input.
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "fuzz.h"

/* Re-encoding may refuse (an empty key, too large); when it does not, it
 * must give back exactly the bytes decoded. */
static void check_round_trip(
	const atrest_meta_entry *e, size_t n, const uint8_t *data, size_t size)
{
	atrest_meta m = {e, n};
	uint8_t *enc = NULL;
	size_t enc_len = 0;

	if (atrest__meta_encode(&enc, &enc_len, &m) != 0)
		return;
	if (enc_len != size || memcmp(enc, data, size) != 0)
		abort();
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	atrest_meta_entry *e = NULL;
	size_t n = 0, total = 0;

	if (atrest__meta_decode(&e, &n, data, size) != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		total += strlen(e[i].key) + strlen(e[i].value) + 6;
	if (total + 2 != size)
		abort();
	check_round_trip(e, n, data, size);
	free(e);
	return 0;
}
