/*
 * Fuzz target: KMIP's TTLV decoder and the response checker (network
 * input from a key server).  Seeds are real PyKMIP requests and responses
 * captured with logging_level=DEBUG, and the KMIP specification's examples.
 */
#include "fuzz.h"
#include "keyprov/ttlv.h"

/* Visit every node through the typed readers. */
static void walk(const atrest__ttlv_doc *doc)
{
	for (size_t i = 0; i < doc->count; i++) {
		const atrest__ttlv *n = &doc->n[i];
		const uint8_t *p;
		const char *s;
		size_t len;
		int32_t v;
		int64_t l;
		uint32_t e;
		int b;

		(void)atrest__ttlv_get_int(n, &v);
		(void)atrest__ttlv_get_long(n, &l);
		(void)atrest__ttlv_get_enum(n, &e);
		(void)atrest__ttlv_get_bool(n, &b);
		(void)atrest__ttlv_get_bytes(n, &p, &len);
		(void)atrest__ttlv_get_text(n, &s, &len);
		(void)atrest__ttlv_child(doc, n, KMIP_TAG_UNIQUE_IDENTIFIER);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t ops[] = {
		KMIP_OP_GET, KMIP_OP_GET_ATTRIBUTES, KMIP_OP_ENCRYPT, KMIP_OP_DECRYPT};
	atrest__kmip_result res;
	atrest__ttlv_doc doc;

	if (size >= 8)
		(void)atrest__ttlv_message_len(data);
	if (atrest__ttlv_parse(&doc, data, size) < 0)
		return 0;
	walk(&doc);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		(void)atrest__kmip_response(&res, &doc, ops[i]);
	atrest__ttlv_doc_free(&doc);
	return 0;
}
