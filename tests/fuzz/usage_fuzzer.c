/*
 * Fuzz target: the parser of a store's per-key usage counts
 * (.atrest/usage.json), which any writer of the store directory controls.
 */
#include <stdlib.h>

#include "fuzz.h"
#include "obs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	atrest__usage_row *rows = NULL;
	size_t n = 0;

	if (atrest__usage_parse(&rows, &n, (const char *)data, size) == 0) {
		for (size_t i = 0; i < n; i++)
			if (rows[i].id == 0)
				abort();
		free(rows);
	}
	return 0;
}
