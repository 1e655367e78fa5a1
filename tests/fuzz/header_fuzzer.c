/*
 * Fuzz target: the object header parser and the segment layout it implies,
 * with the property that an accepted header re-encodes to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "fuzz.h"

/* What parse accepted, encode must write back byte for byte. */
static void check_round_trip(const atrest__hdr *h, const uint8_t *data)
{
	static uint8_t enc[ATREST__HDR_MAX];
	atrest__hdr copy = *h;

	if (atrest__hdr_encode(enc, sizeof(enc), &copy) != 0)
		abort();
	if (copy.len != h->len || memcmp(enc, data, h->len - ATREST__COMMIT_LEN) != 0)
		abort();
}

static void check_layout(const atrest__hdr *h, size_t size, const uint8_t *data)
{
	uint64_t data_off = (uint64_t)h->len + h->meta_len, nseg, plain;
	size_t last, seg_ct = atrest__cipher_ctlen(h->cipher, h->segment_size);
	int pad = 0;

	if (atrest__layout(&nseg, &last, h->cipher, h->segment_size, data_off, size) != 0)
		return;
	if (h->cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256)
		pad = data[atrest__pad_byte_off(data_off, seg_ct, nseg, last)];
	(void)atrest__plain_size(&plain, h->cipher, h->segment_size, nseg, last, pad);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static atrest__hdr h;

	if (atrest__hdr_parse(&h, data, size) != 0)
		return 0;
	check_round_trip(&h, data);
	check_layout(&h, size, data);
	return 0;
}
