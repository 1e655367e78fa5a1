/*
 * Fuzz target: the aws-chunked body decoder of the S3 API
 * (src/server/s3_chunked.c), unsigned and signed, fed in pieces whose sizes
 * come from the input: no crash, never more data out than in, and a body
 * accepted in one piece is accepted the same in any split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/s3_chunked.h"
#include "fuzz.h"

struct sink {
	uint64_t n;
	uint32_t crc;
};

static int emit(void *payload, const void *buf, size_t len)
{
	struct sink *s = payload;

	s->n += len;
	s->crc = s3_crc32(s->crc, buf, len);
	return 0;
}

static int run(const uint8_t *data, size_t size, size_t step, int sign, struct sink *s)
{
	static const uint8_t key[32] = {1};
	struct s3_chunked c;
	size_t i;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	if (s3_chunked_init(&c, sign ? key : NULL, "20130524T000000Z",
		    "20130524/us-east-1/s3/aws4_request",
		    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
		    sign ? NULL : "x-amz-checksum-crc32", emit, s) < 0)
		return -1;
	for (i = 0; i < size && rc == 0; i += step)
		rc = s3_chunked_feed(&c, data + i, size - i < step ? size - i : step);
	if (rc == 0)
		rc = s3_chunked_finish(&c);
	if (rc < 0 && (!c.code || !c.why || c.status < 400))
		abort();
	s3_chunked_free(&c);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sink whole, split;
	size_t step;
	int a, b;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 7 + 1;
	for (int sign = 0; sign < 2; sign++) {
		a = run(data + 1, size - 1, size, sign, &whole);
		b = run(data + 1, size - 1, step, sign, &split);
		if (whole.n > size || a != b ||
			(a == 0 && (whole.n != split.n || whole.crc != split.crc)))
			abort();
	}
	return 0;
}
