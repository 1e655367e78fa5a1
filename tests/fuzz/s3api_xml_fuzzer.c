/*
 * Fuzz target: the S3 API's request XML (DeleteObjects and
 * CompleteMultipartUpload bodies, src/server/s3_xml.c), with the properties
 * that every key reported is non-empty, part numbers are 1..10000, and no
 * more entries than the limits are ever reported.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/server/s3_xml.h"
#include "fuzz.h"

static int on_key(const char *key, void *payload)
{
	if (!*key || ++*(size_t *)payload > S3_XML_KEYS_MAX)
		abort();
	return 0;
}

static int on_part(uint32_t number, const char *etag, void *payload)
{
	if (number < 1 || number > 10000 || !*etag ||
		++*(size_t *)payload > S3_XML_PARTS_MAX)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0;
	int quiet;

	s3_xml_delete((const char *)data, size, &quiet, on_key, &n);
	n = 0;
	s3_xml_complete((const char *)data, size, on_part, &n);
	return 0;
}
