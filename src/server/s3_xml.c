/*
 * S3 request XML (s3_xml.h) with libxml2: XML_PARSE_NONET and no
 * XML_PARSE_NOENT (entities are never substituted), documents with a DTD
 * refused, sizes bounded by the caller's body limit and the count limits.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "s3_xml.h"

static xmlDoc *read_doc(const char *buf, size_t len, const char *root)
{
	xmlDoc *doc;
	xmlNode *r;

	if (len > 64u << 20)
		return NULL;
	doc = xmlReadMemory(buf, (int)len, NULL, NULL,
		XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
			XML_PARSE_NOCDATA);
	r = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!r || doc->intSubset || doc->extSubset ||
		strcmp((const char *)r->name, root) != 0) {
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

static int is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static xmlNode *child(xmlNode *n, const char *name)
{
	for (xmlNode *c = n->children; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* The text of element name under n, or NULL (free with xmlFree). */
static char *text_of(xmlNode *n, const char *name)
{
	xmlNode *c = child(n, name);

	return c ? (char *)xmlNodeGetContent(c) : NULL;
}

int s3_xml_delete(
	const char *buf, size_t len, int *quiet, s3_xml_key_cb cb, void *payload)
{
	xmlDoc *doc = read_doc(buf, len, "Delete");
	xmlNode *root;
	char *q;
	size_t n = 0;
	int rc = 0;

	*quiet = 0;
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if ((q = text_of(root, "Quiet")) != NULL) {
		*quiet = !strcmp(q, "true");
		xmlFree(q);
	}
	for (xmlNode *o = root->children; o && !rc; o = o->next)
		if (is(o, "Object"))
			n++;
	if (n == 0 || n > S3_XML_KEYS_MAX)
		rc = -1;
	for (xmlNode *o = root->children; o && !rc; o = o->next) {
		char *key;

		if (!is(o, "Object"))
			continue;
		if (!(key = text_of(o, "Key")) || !*key)
			rc = -1;
		else
			rc = cb(key, payload);
		xmlFree(key);
	}
	xmlFreeDoc(doc);
	return rc;
}

/* "1".."10000" exactly; 0 or -1. */
static int part_number(uint32_t *out, const char *s)
{
	uint32_t v = 0;
	size_t i;

	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 5)
			return -1;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (i == 0 || v < 1 || v > S3_XML_PARTS_MAX)
		return -1;
	*out = v;
	return 0;
}

static int one_part(xmlNode *p, s3_xml_part_cb cb, void *payload)
{
	char *num = text_of(p, "PartNumber"), *etag = text_of(p, "ETag"), *e;
	uint32_t n;
	size_t l;
	int rc = -1;

	if (num && etag && part_number(&n, num) == 0) {
		e = etag;
		l = strlen(e);
		if (l >= 2 && e[0] == '"' && e[l - 1] == '"') {
			e[l - 1] = '\0';
			e++;
		}
		rc = *e ? cb(n, e, payload) : -1;
	}
	xmlFree(num);
	xmlFree(etag);
	return rc;
}

int s3_xml_complete(const char *buf, size_t len, s3_xml_part_cb cb, void *payload)
{
	xmlDoc *doc = read_doc(buf, len, "CompleteMultipartUpload");
	size_t n = 0;
	int rc = 0;

	if (!doc)
		return -1;
	for (xmlNode *p = xmlDocGetRootElement(doc)->children; p && !rc; p = p->next) {
		if (!is(p, "Part"))
			continue;
		rc = ++n > S3_XML_PARTS_MAX ? -1 : one_part(p, cb, payload);
	}
	if (!rc && n == 0)
		rc = -1;
	xmlFreeDoc(doc);
	return rc;
}
