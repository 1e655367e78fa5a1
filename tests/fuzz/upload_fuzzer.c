/*
 * Fuzz target: the parsers of multipart uploads' records and of a
 * completed object's part list (upload_fmt.c).  Both are authenticated
 * before parsing, but a parser must still take anything: every input is
 * tried as both, and what parses must encode back to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "upload_int.h"

static void try_record(const uint8_t *data, size_t size)
{
	uint8_t back[ATREST__UP_REC_MAX];
	atrest__up_rec r;
	size_t len;

	if (atrest__up_rec_parse(&r, data, size) != 0)
		return;
	if (atrest__up_rec_encode(back, sizeof(back), &len, &r) != 0 || len != size ||
		memcmp(back, data, size) != 0)
		abort();
}

static void try_list(const uint8_t *data, size_t size)
{
	uint64_t sum = 0;
	atrest__mpu m;
	uint8_t *back;
	size_t len;

	if (atrest__mpu_parse(&m, data, size) != 0)
		return;
	for (uint32_t i = 0; i < m.count; i++) {
		if (m.parts[i].start != sum ||
			(i && m.parts[i].number <= m.parts[i - 1].number))
			abort();
		sum += m.parts[i].size;
	}
	if (sum != m.size || atrest__mpu_encode(&back, &len, &m) != 0 || len != size ||
		memcmp(back, data, size) != 0)
		abort();
	free(back);
	atrest__mpu_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	try_record(data, size);
	try_list(data, size);
	return 0;
}
