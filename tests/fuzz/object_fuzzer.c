/*
 * Fuzz target: opening a whole object in memory with a fixed data key, the
 * path every read takes (header, commitment, layout, metadata, segments).
 */
#include <stdlib.h>

#include "format.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static atrest__hdr h;
	uint8_t dek[32], *out = NULL;
	size_t out_len = 0;

	fuzz_key(dek);
	if (atrest__obj_open_buf(&out, &out_len, &h, data, size, dek) == 0)
		free(out);
	return 0;
}
