/*
 * The S3 backend's XML answers read with libxml2: listings, uploads, the
 * results of multipart and batch deletes, and error bodies.  No network,
 * no DTD (a document with one is refused), no entity is ever expanded:
 * only the text and CDATA of elements is read.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "awscred.h"
#include "s3_int.h"

#define XML_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();
}

/* The document, or NULL for anything malformed or carrying a DTD. */
static xmlDoc *parse(const char *xml, size_t len)
{
	xmlDoc *doc;

	if (!xml || len == 0 || len > INT32_MAX)
		return NULL;
	pthread_once(&xml_once, xml_init);
	doc = xmlReadMemory(xml, (int)len, NULL, NULL, XML_OPTS);
	if (doc && (doc->intSubset || doc->extSubset || !xmlDocGetRootElement(doc))) {
		xmlFreeDoc(doc);
		doc = NULL;
	}
	return doc;
}

/* Element node n is called name (namespaces ignored). */
static int is(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE &&
		strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (is(c, name))
			return c;
	return NULL;
}

/* The text of n (text and CDATA children only), or NULL when absent,
 * too long or out of memory.  malloc'd. */
static char *text(const xmlNode *n)
{
	size_t len = 0, k = 0;
	char *out;

	if (!n)
		return NULL;
	for (const xmlNode *c = n->children; c; c = c->next)
		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
			c->content)
			len += strlen((const char *)c->content);
	if (len > 65536 || !(out = malloc(len + 1)))
		return NULL;
	for (const xmlNode *c = n->children; c; c = c->next)
		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
			c->content) {
			size_t m = strlen((const char *)c->content);
			memcpy(out + k, c->content, m);
			k += m;
		}
	out[k] = '\0';
	return out;
}

/* The text of child name into out (cap bytes): 1, or 0 when absent or
 * too long. */
static int child_text(char *out, size_t cap, const xmlNode *n, const char *name)
{
	char *t = text(child(n, name));
	int ok = t && strlen(t) < cap;

	if (ok)
		strcpy(out, t);
	else if (cap)
		out[0] = '\0';
	free(t);
	return ok;
}

static int child_true(const xmlNode *n, const char *name)
{
	char v[8];

	return child_text(v, sizeof(v), n, name) && strcmp(v, "true") == 0;
}

static int parse_u64(uint64_t *out, const char *s)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int atrest__s3_url_decode(char *out, size_t cap, const char *s)
{
	size_t k = 0;

	for (; *s; s++) {
		uint8_t c = (uint8_t)*s;
		if (*s == '%') {
			ENSURE(s[1] && s[2] && atrest__unhex_n(&c, 1, s + 1) == 0,
				ATREST_EINVAL,
				"S3: a listed key is not valid URL encoding");
			s += 2;
		} else if (*s == '+') {
			c = ' ';
		}
		ENSURE(k + 1 < cap && c != 0, ATREST_EINVAL,
			"S3: a listed key is too long or holds a NUL");
		out[k++] = (char)c;
	}
	out[k] = '\0';
	return 0;
}

/* The text of child name, URL-decoded when encoded, malloc'd. */
static char *key_text(const xmlNode *n, const char *name, int encoded)
{
	char *t = text(child(n, name)), *d;

	if (!t || !encoded)
		return t;
	d = malloc(strlen(t) + 1);
	if (d && atrest__s3_url_decode(d, strlen(t) + 1, t) < 0) {
		free(d);
		d = NULL;
	}
	free(t);
	return d;
}

static int bad(const char *what)
{
	return atrest__error(ATREST_EUNAVAILABLE,
		"S3: the answer to %s is not the XML expected", what);
}

static int oom(void)
{
	return atrest__error(ATREST_ERROR, "out of memory");
}

/* ---- ListObjectsV2 */

static int list_entry(atrest__s3_list *l, const xmlNode *c, int encoded)
{
	atrest__s3_object *o = &l->v[l->n];
	char num[24], when[64];

	o->key = key_text(c, "Key", encoded);
	if (!o->key || !child_text(num, sizeof(num), c, "Size") ||
		parse_u64(&o->size, num) < 0 ||
		!child_text(when, sizeof(when), c, "LastModified") ||
		atrest__aws_parse_time(&o->mtime, when) < 0) {
		free(o->key);
		return bad("ListObjectsV2 (an entry)");
	}
	l->n++;
	return 0;
}

static int list_entries(atrest__s3_list *l, const xmlNode *root, int encoded)
{
	size_t count = 0;

	for (const xmlNode *c = root->children; c; c = c->next)
		count += is(c, "Contents");
	l->v = calloc(count + 1, sizeof(*l->v));
	if (!l->v)
		return oom();
	for (const xmlNode *c = root->children; c; c = c->next)
		if (is(c, "Contents"))
			GUARD(list_entry(l, c, encoded));
	return 0;
}

int atrest__s3_parse_list(atrest__s3_list *out, const char *xml, size_t len)
{
	xmlDoc *doc = parse(xml, len);
	const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	char enc[8];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!is(root, "ListBucketResult")) {
		xmlFreeDoc(doc);
		return bad("ListObjectsV2");
	}
	child_text(enc, sizeof(enc), root, "EncodingType");
	out->truncated = child_true(root, "IsTruncated");
	out->next_token = text(child(root, "NextContinuationToken"));
	rc = list_entries(out, root, strcmp(enc, "url") == 0);
	if (rc == 0 && out->truncated && (!out->next_token || !*out->next_token))
		rc = bad("ListObjectsV2 (truncated without a continuation token)");
	xmlFreeDoc(doc);
	if (rc < 0)
		atrest__s3_list_free(out);
	return rc;
}

void atrest__s3_list_free(atrest__s3_list *l)
{
	for (size_t i = 0; l->v && i < l->n; i++)
		free(l->v[i].key);
	free(l->v);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}

/* ---- ListMultipartUploads */

static int upload_entry(atrest__s3_uploads *u, const xmlNode *c, int encoded)
{
	atrest__s3_upload *e = &u->v[u->n];
	char when[64];

	e->key = key_text(c, "Key", encoded);
	e->upload_id = text(child(c, "UploadId"));
	if (!e->key || !e->upload_id || !*e->upload_id ||
		!child_text(when, sizeof(when), c, "Initiated") ||
		atrest__aws_parse_time(&e->initiated, when) < 0) {
		free(e->key);
		free(e->upload_id);
		return bad("ListMultipartUploads (an entry)");
	}
	u->n++;
	return 0;
}

int atrest__s3_parse_uploads(atrest__s3_uploads *out, const char *xml, size_t len)
{
	xmlDoc *doc = parse(xml, len);
	const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	size_t count = 0;
	char enc[8];
	int rc = 0, encoded;

	memset(out, 0, sizeof(*out));
	if (!is(root, "ListMultipartUploadsResult")) {
		xmlFreeDoc(doc);
		return bad("ListMultipartUploads");
	}
	child_text(enc, sizeof(enc), root, "EncodingType");
	encoded = strcmp(enc, "url") == 0;
	out->truncated = child_true(root, "IsTruncated");
	out->next_key = key_text(root, "NextKeyMarker", encoded);
	out->next_upload_id = text(child(root, "NextUploadIdMarker"));
	for (const xmlNode *c = root->children; c; c = c->next)
		count += is(c, "Upload");
	out->v = calloc(count + 1, sizeof(*out->v));
	if (!out->v)
		rc = oom();
	for (const xmlNode *c = root->children; rc == 0 && c; c = c->next)
		if (is(c, "Upload"))
			rc = upload_entry(out, c, encoded);
	if (rc == 0 && out->truncated && (!out->next_key || !*out->next_key))
		rc = bad("ListMultipartUploads (truncated without a marker)");
	xmlFreeDoc(doc);
	if (rc < 0)
		atrest__s3_uploads_free(out);
	return rc;
}

void atrest__s3_uploads_free(atrest__s3_uploads *u)
{
	for (size_t i = 0; u->v && i < u->n; i++) {
		free(u->v[i].key);
		free(u->v[i].upload_id);
	}
	free(u->v);
	free(u->next_key);
	free(u->next_upload_id);
	memset(u, 0, sizeof(*u));
}

/* ---- multipart results, batch deletes, errors */

int atrest__s3_parse_upload_id(char **out, const char *xml, size_t len)
{
	xmlDoc *doc = parse(xml, len);
	const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;

	*out = is(root, "InitiateMultipartUploadResult") ? text(child(root, "UploadId"))
							 : NULL;
	xmlFreeDoc(doc);
	if (*out && **out)
		return 0;
	free(*out);
	*out = NULL;
	return bad("CreateMultipartUpload");
}

int atrest__s3_parse_complete(char *code, size_t code_cap, char *msg, size_t msg_cap,
	const char *xml, size_t len)
{
	xmlDoc *doc = parse(xml, len);
	const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	int rc = is(root, "CompleteMultipartUploadResult") ? 0 : 1;

	if (rc == 1 && is(root, "Error")) {
		child_text(code, code_cap, root, "Code");
		child_text(msg, msg_cap, root, "Message");
	} else if (rc == 1) {
		rc = bad("CompleteMultipartUpload");
	}
	xmlFreeDoc(doc);
	return rc;
}

int atrest__s3_parse_delete(size_t *errors, char *key, size_t key_cap, char *code,
	size_t code_cap, const char *xml, size_t len)
{
	xmlDoc *doc = parse(xml, len);
	const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;

	*errors = 0;
	if (!is(root, "DeleteResult")) {
		xmlFreeDoc(doc);
		return bad("DeleteObjects");
	}
	for (const xmlNode *c = root->children; c; c = c->next) {
		if (!is(c, "Error"))
			continue;
		if ((*errors)++ == 0) {
			child_text(key, key_cap, c, "Key");
			child_text(code, code_cap, c, "Code");
		}
	}
	xmlFreeDoc(doc);
	return 0;
}

/* Printable ASCII only, cut to fit. */
static void printable(char *out, size_t cap, const char *s)
{
	size_t k = 0;

	for (; s && *s && k + 1 < cap; s++)
		out[k++] =
			(unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f ? *s : ' ';
	out[k] = '\0';
}

void atrest__s3_parse_error(atrest__http_resp *resp)
{
	xmlDoc *doc = resp->body.len ? parse(resp->body.data, resp->body.len) : NULL;
	const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	char *code, *msg;

	if (!is(root, "Error")) {
		xmlFreeDoc(doc);
		return;
	}
	code = text(child(root, "Code"));
	msg = text(child(root, "Message"));
	printable(resp->code, sizeof(resp->code), code);
	printable(resp->msg, sizeof(resp->msg), msg);
	free(code);
	free(msg);
	xmlFreeDoc(doc);
}
