/*
 * The XML request bodies of the S3 API, read with libxml2 with no network,
 * no entity substitution and no DTD (a document carrying one is refused):
 * DeleteObjects' <Delete> and CompleteMultipartUpload's
 * <CompleteMultipartUpload>.
 */
#ifndef ATREST_SERVER_S3_XML_H
#define ATREST_SERVER_S3_XML_H

#include <stddef.h>
#include <stdint.h>

#define S3_XML_KEYS_MAX 1000
#define S3_XML_PARTS_MAX 10000

/* One key of a <Delete>; 0 to go on. */
typedef int (*s3_xml_key_cb)(const char *key, void *payload);
/*
 * Parse a <Delete> body: *quiet from <Quiet>, cb for each <Object><Key>
 * in order.  0; -1 malformed (not XML, a DTD, another root, an Object
 * without a Key, no Object, more than S3_XML_KEYS_MAX); or cb's non-zero.
 */
int s3_xml_delete(
	const char *buf, size_t len, int *quiet, s3_xml_key_cb cb, void *payload);

/* One <Part> of a completion: its number and ETag (quotes removed). */
typedef int (*s3_xml_part_cb)(uint32_t number, const char *etag, void *payload);
/*
 * Parse a <CompleteMultipartUpload> body, cb for each <Part> in order.
 * 0; -1 malformed (a part number not 1..10000, no ETag, no Part, more than
 * S3_XML_PARTS_MAX); or cb's non-zero.
 */
int s3_xml_complete(const char *buf, size_t len, s3_xml_part_cb cb, void *payload);

#endif
