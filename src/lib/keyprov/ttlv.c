/*
 * KMIP TTLV (ttlv.h): encoder, defensive decoder (every length and type
 * checked before use, bounded depth and size) and the request/response
 * envelope of KMIP 1.x.  Written from the KMIP 1.4 specification, 9.1.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "secret.h"
#include "ttlv.h"

/* ---- encoding */

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int reserve(atrest__ttlv_enc *e, size_t n)
{
	uint8_t *b;
	size_t cap;

	if (e->err || n > TTLV_MAX_MESSAGE || e->len + n > TTLV_MAX_MESSAGE) {
		e->err = 1;
		return -1;
	}
	if (e->len + n <= e->cap)
		return 0;
	cap = (e->len + n) * 2 + 256;
	b = malloc(cap);
	if (!b) {
		e->err = 1;
		return -1;
	}
	if (e->b) {
		memcpy(b, e->b, e->len);
		atrest__wipe(e->b, e->cap); /* never leave key bytes behind */
		free(e->b);
	}
	e->b = b;
	e->cap = cap;
	return 0;
}

/* One item: header, value, zero padding to 8. */
static void item(
	atrest__ttlv_enc *e, uint32_t tag, uint8_t type, const void *val, size_t len)
{
	size_t pad = (8 - len % 8) % 8;

	if (len > 0xFFFFFFFFu || reserve(e, 8 + len + pad) < 0)
		return;
	put_be(e->b + e->len, tag, 3);
	e->b[e->len + 3] = type;
	put_be(e->b + e->len + 4, len, 4);
	if (len)
		memcpy(e->b + e->len + 8, val, len);
	memset(e->b + e->len + 8 + len, 0, pad);
	e->len += 8 + len + pad;
}

void atrest__ttlv_begin(atrest__ttlv_enc *e, uint32_t tag)
{
	if (e->depth >= TTLV_MAX_DEPTH) {
		e->err = 1;
		return;
	}
	e->open[e->depth++] = e->len;
	item(e, tag, TTLV_STRUCT, NULL, 0);
}

void atrest__ttlv_end(atrest__ttlv_enc *e)
{
	size_t at;

	if (e->depth == 0) {
		e->err = 1;
		return;
	}
	at = e->open[--e->depth];
	if (!e->err)
		put_be(e->b + at + 4, e->len - at - 8, 4);
}

void atrest__ttlv_int(atrest__ttlv_enc *e, uint32_t tag, int32_t v)
{
	uint8_t b[4];

	put_be(b, (uint32_t)v, 4);
	item(e, tag, TTLV_INT, b, 4);
}

void atrest__ttlv_long(atrest__ttlv_enc *e, uint32_t tag, int64_t v)
{
	uint8_t b[8];

	put_be(b, (uint64_t)v, 8);
	item(e, tag, TTLV_LONG, b, 8);
}

void atrest__ttlv_enum(atrest__ttlv_enc *e, uint32_t tag, uint32_t v)
{
	uint8_t b[4];

	put_be(b, v, 4);
	item(e, tag, TTLV_ENUM, b, 4);
}

void atrest__ttlv_bool(atrest__ttlv_enc *e, uint32_t tag, int v)
{
	uint8_t b[8];

	put_be(b, v ? 1 : 0, 8);
	item(e, tag, TTLV_BOOL, b, 8);
}

void atrest__ttlv_datetime(atrest__ttlv_enc *e, uint32_t tag, int64_t v)
{
	uint8_t b[8];

	put_be(b, (uint64_t)v, 8);
	item(e, tag, TTLV_DATETIME, b, 8);
}

void atrest__ttlv_interval(atrest__ttlv_enc *e, uint32_t tag, uint32_t v)
{
	uint8_t b[4];

	put_be(b, v, 4);
	item(e, tag, TTLV_INTERVAL, b, 4);
}

void atrest__ttlv_text(atrest__ttlv_enc *e, uint32_t tag, const char *s, size_t len)
{
	item(e, tag, TTLV_TEXT, s, len);
}

void atrest__ttlv_bytes(atrest__ttlv_enc *e, uint32_t tag, const uint8_t *p, size_t len)
{
	item(e, tag, TTLV_BYTES, p, len);
}

void atrest__ttlv_bigint(atrest__ttlv_enc *e, uint32_t tag, const uint8_t *p, size_t len)
{
	size_t n = (len + 7) / 8 * 8;
	uint8_t *b;

	if (len == 0 || len > 4096 || !(b = malloc(n))) {
		e->err = 1;
		return;
	}
	/* Sign-extend into the padding (two's complement). */
	memset(b, p[0] & 0x80 ? 0xFF : 0x00, n - len);
	memcpy(b + n - len, p, len);
	item(e, tag, TTLV_BIGINT, b, n);
	free(b);
}

int atrest__ttlv_finish(atrest__ttlv_enc *e)
{
	ENSURE(!e->err && e->depth == 0 && e->len > 0, ATREST_ERROR,
		"kmip: cannot encode the request (out of memory or too large)");
	return 0;
}

void atrest__ttlv_enc_free(atrest__ttlv_enc *e)
{
	if (e->b) {
		atrest__wipe(e->b, e->cap);
		free(e->b);
	}
	memset(e, 0, sizeof(*e));
}

/* ---- decoding */

#define BAD(...) atrest__error(ATREST_EINTEGRITY, "kmip: malformed message: " __VA_ARGS__)

struct parser {
	atrest__ttlv_doc *doc;
	size_t cap;
};

static int fixed_len(uint8_t type)
{
	switch (type) {
	case TTLV_INT:
	case TTLV_ENUM:
	case TTLV_INTERVAL:
		return 4;
	case TTLV_LONG:
	case TTLV_BOOL:
	case TTLV_DATETIME:
		return 8;
	default:
		return -1;
	}
}

static int new_node(struct parser *ps, int32_t *idx)
{
	atrest__ttlv_doc *d = ps->doc;

	if (d->count >= TTLV_MAX_NODES)
		return BAD("more than %d items", TTLV_MAX_NODES);
	if (d->count == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 32;
		atrest__ttlv *n = realloc(d->n, cap * sizeof(*n));
		ENSURE(n, ATREST_ERROR, "out of memory");
		d->n = n;
		ps->cap = cap;
	}
	*idx = (int32_t)d->count++;
	return 0;
}

static int check_value(const atrest__ttlv *n)
{
	int fl = fixed_len(n->type);

	if (n->type < TTLV_STRUCT || n->type > TTLV_INTERVAL)
		return BAD("unknown item type 0x%02x", n->type);
	if (fl >= 0 && n->len != (uint32_t)fl)
		return BAD("item 0x%06x of type 0x%02x has length %u", n->tag, n->type,
			n->len);
	if (n->type == TTLV_BIGINT && (n->len == 0 || n->len % 8))
		return BAD("big integer of length %u", n->len);
	if (n->type == TTLV_BOOL && get_be(n->val, 8) > 1)
		return BAD("boolean that is neither 0 nor 1");
	if ((n->tag >> 16) != 0x42 && (n->tag >> 16) != 0x54)
		return BAD("tag 0x%06x outside KMIP's ranges", n->tag);
	return 0;
}

static int parse_items(
	struct parser *ps, const uint8_t *p, size_t len, int depth, int32_t *first);

/* One item at p (at most avail bytes); *used is its padded size. */
static int parse_item(struct parser *ps, const uint8_t *p, size_t avail, int depth,
	int32_t *idx, size_t *used)
{
	atrest__ttlv *n;
	size_t padded;
	int32_t first = -1;

	if (avail < 8)
		return BAD("truncated item header");
	GUARD(new_node(ps, idx));
	n = &ps->doc->n[*idx];
	n->tag = (uint32_t)get_be(p, 3);
	n->type = p[3];
	n->len = (uint32_t)get_be(p + 4, 4);
	n->val = p + 8;
	n->first = n->next = -1;
	padded = n->type == TTLV_STRUCT ? n->len : ((size_t)n->len + 7) / 8 * 8;
	if (padded > avail - 8)
		return BAD(
			"item 0x%06x longer (%u) than what contains it", n->tag, n->len);
	GUARD(check_value(n));
	*used = 8 + padded;
	if (n->type != TTLV_STRUCT)
		return 0;
	if (n->len % 8)
		return BAD("structure 0x%06x of unaligned length %u", n->tag, n->len);
	if (depth >= TTLV_MAX_DEPTH)
		return BAD("nested deeper than %d", TTLV_MAX_DEPTH);
	GUARD(parse_items(ps, p + 8, n->len, depth + 1, &first));
	ps->doc->n[*idx].first = first; /* n may have moved */
	return 0;
}

static int parse_items(
	struct parser *ps, const uint8_t *p, size_t len, int depth, int32_t *first)
{
	int32_t prev = -1, idx;
	size_t off = 0, used;

	while (off < len) {
		GUARD(parse_item(ps, p + off, len - off, depth, &idx, &used));
		if (prev < 0)
			*first = idx;
		else
			ps->doc->n[prev].next = idx;
		prev = idx;
		off += used;
	}
	return 0;
}

int atrest__ttlv_parse(atrest__ttlv_doc *doc, const uint8_t *buf, size_t len)
{
	struct parser ps = {doc, 0};
	int32_t idx;
	size_t used = 0;
	int rc;

	memset(doc, 0, sizeof(*doc));
	rc = len > TTLV_MAX_MESSAGE ? BAD("longer than %u bytes", TTLV_MAX_MESSAGE)
				    : parse_item(&ps, buf, len, 0, &idx, &used);
	if (rc == 0 && used != len)
		rc = BAD("%zu bytes after the message", len - used);
	if (rc < 0)
		atrest__ttlv_doc_free(doc);
	return rc;
}

void atrest__ttlv_doc_free(atrest__ttlv_doc *doc)
{
	free(doc->n);
	doc->n = NULL;
	doc->count = 0;
}

const atrest__ttlv *atrest__ttlv_child(
	const atrest__ttlv_doc *doc, const atrest__ttlv *node, uint32_t tag)
{
	if (!node || node->type != TTLV_STRUCT)
		return NULL;
	for (int32_t i = node->first; i >= 0; i = doc->n[i].next)
		if (doc->n[i].tag == tag)
			return &doc->n[i];
	return NULL;
}

int atrest__ttlv_get_int(const atrest__ttlv *n, int32_t *out)
{
	if (!n || n->type != TTLV_INT)
		return -1;
	*out = (int32_t)(uint32_t)get_be(n->val, 4);
	return 0;
}

int atrest__ttlv_get_long(const atrest__ttlv *n, int64_t *out)
{
	if (!n || n->type != TTLV_LONG)
		return -1;
	*out = (int64_t)get_be(n->val, 8);
	return 0;
}

int atrest__ttlv_get_enum(const atrest__ttlv *n, uint32_t *out)
{
	if (!n || n->type != TTLV_ENUM)
		return -1;
	*out = (uint32_t)get_be(n->val, 4);
	return 0;
}

int atrest__ttlv_get_bool(const atrest__ttlv *n, int *out)
{
	if (!n || n->type != TTLV_BOOL)
		return -1;
	*out = (int)get_be(n->val, 8);
	return 0;
}

int atrest__ttlv_get_bytes(const atrest__ttlv *n, const uint8_t **p, size_t *len)
{
	if (!n || n->type != TTLV_BYTES)
		return -1;
	*p = n->val;
	*len = n->len;
	return 0;
}

int atrest__ttlv_get_text(const atrest__ttlv *n, const char **p, size_t *len)
{
	if (!n || n->type != TTLV_TEXT)
		return -1;
	*p = (const char *)n->val;
	*len = n->len;
	return 0;
}

size_t atrest__ttlv_message_len(const uint8_t hdr[8])
{
	uint64_t len = get_be(hdr + 4, 4);

	if (hdr[3] != TTLV_STRUCT || len % 8 || len > TTLV_MAX_MESSAGE - 8)
		return 0;
	return 8 + (size_t)len;
}

/* ---- the KMIP envelope */

void atrest__kmip_request_begin(atrest__ttlv_enc *e, int minor, uint32_t op)
{
	atrest__ttlv_begin(e, KMIP_TAG_REQUEST_MESSAGE);
	atrest__ttlv_begin(e, KMIP_TAG_REQUEST_HEADER);
	atrest__ttlv_begin(e, KMIP_TAG_PROTOCOL_VERSION);
	atrest__ttlv_int(e, KMIP_TAG_PROTOCOL_VERSION_MAJOR, 1);
	atrest__ttlv_int(e, KMIP_TAG_PROTOCOL_VERSION_MINOR, minor);
	atrest__ttlv_end(e);
	atrest__ttlv_int(e, KMIP_TAG_MAX_RESPONSE_SIZE, 65536);
	atrest__ttlv_int(e, KMIP_TAG_BATCH_COUNT, 1);
	atrest__ttlv_end(e);
	atrest__ttlv_begin(e, KMIP_TAG_BATCH_ITEM);
	atrest__ttlv_enum(e, KMIP_TAG_OPERATION, op);
	atrest__ttlv_begin(e, KMIP_TAG_REQUEST_PAYLOAD);
}

int atrest__kmip_request_end(atrest__ttlv_enc *e)
{
	atrest__ttlv_end(e); /* payload */
	atrest__ttlv_end(e); /* batch item */
	atrest__ttlv_end(e); /* message */
	return atrest__ttlv_finish(e);
}

/* The server's message, kept printable (it is shown to people). */
static void copy_message(char *out, size_t cap, const atrest__ttlv *n)
{
	const char *s;
	size_t len, o = 0;

	out[0] = '\0';
	if (atrest__ttlv_get_text(n, &s, &len) < 0)
		return;
	for (size_t i = 0; i < len && o + 1 < cap; i++)
		out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[o] = '\0';
}

int atrest__kmip_response(
	atrest__kmip_result *res, const atrest__ttlv_doc *doc, uint32_t op)
{
	const atrest__ttlv *root = doc->count ? &doc->n[0] : NULL, *hdr, *item, *n;
	int32_t count;
	uint32_t got_op;

	memset(res, 0, sizeof(*res));
	if (!root || root->tag != KMIP_TAG_RESPONSE_MESSAGE || root->type != TTLV_STRUCT)
		return BAD("not a response message");
	hdr = atrest__ttlv_child(doc, root, KMIP_TAG_RESPONSE_HEADER);
	if (atrest__ttlv_get_int(
		    atrest__ttlv_child(doc, hdr, KMIP_TAG_BATCH_COUNT), &count) < 0 ||
		count != 1)
		return BAD("response header without a batch count of 1");
	item = atrest__ttlv_child(doc, root, KMIP_TAG_BATCH_ITEM);
	if (!item || item->type != TTLV_STRUCT)
		return BAD("no batch item");
	if (atrest__ttlv_get_enum(atrest__ttlv_child(doc, item, KMIP_TAG_RESULT_STATUS),
		    &res->status) < 0)
		return BAD("no result status");
	n = atrest__ttlv_child(doc, item, KMIP_TAG_OPERATION);
	/* A failed request may come back without its operation. */
	if (n && (atrest__ttlv_get_enum(n, &got_op) < 0 || got_op != op))
		return BAD("response to another operation");
	if (!n && res->status == KMIP_STATUS_SUCCESS)
		return BAD("successful response without its operation");
	n = atrest__ttlv_child(doc, item, KMIP_TAG_RESULT_REASON);
	if (n && atrest__ttlv_get_enum(n, &res->reason) < 0)
		return BAD("result reason of the wrong type");
	copy_message(res->message, sizeof(res->message),
		atrest__ttlv_child(doc, item, KMIP_TAG_RESULT_MESSAGE));
	res->payload = atrest__ttlv_child(doc, item, KMIP_TAG_RESPONSE_PAYLOAD);
	if (res->payload && res->payload->type != TTLV_STRUCT)
		return BAD("response payload is not a structure");
	return 0;
}
