/*
 * KMIP's TTLV encoding (tag, type, length, value; 8-byte aligned): an
 * encoder into a growing buffer that is wiped when freed, a defensive
 * decoder into a flat tree, and the KMIP request/response envelope.
 */
#ifndef ATREST_TTLV_H
#define ATREST_TTLV_H

#include <stddef.h>
#include <stdint.h>

enum {
	TTLV_STRUCT = 0x01,
	TTLV_INT = 0x02,
	TTLV_LONG = 0x03,
	TTLV_BIGINT = 0x04,
	TTLV_ENUM = 0x05,
	TTLV_BOOL = 0x06,
	TTLV_TEXT = 0x07,
	TTLV_BYTES = 0x08,
	TTLV_DATETIME = 0x09,
	TTLV_INTERVAL = 0x0A
};

/* Tags (KMIP 1.0-1.4) this project uses. */
enum {
	KMIP_TAG_ATTRIBUTE = 0x420008,
	KMIP_TAG_ATTRIBUTE_NAME = 0x42000A,
	KMIP_TAG_ATTRIBUTE_VALUE = 0x42000B,
	KMIP_TAG_BATCH_COUNT = 0x42000D,
	KMIP_TAG_BATCH_ITEM = 0x42000F,
	KMIP_TAG_BLOCK_CIPHER_MODE = 0x420011,
	KMIP_TAG_CRYPTO_ALGORITHM = 0x420028,
	KMIP_TAG_CRYPTO_LENGTH = 0x42002A,
	KMIP_TAG_CRYPTO_PARAMETERS = 0x42002B,
	KMIP_TAG_IV_COUNTER_NONCE = 0x42003D,
	KMIP_TAG_KEY_BLOCK = 0x420040,
	KMIP_TAG_KEY_FORMAT_TYPE = 0x420042,
	KMIP_TAG_KEY_MATERIAL = 0x420043,
	KMIP_TAG_KEY_VALUE = 0x420045,
	KMIP_TAG_MAX_RESPONSE_SIZE = 0x420050,
	KMIP_TAG_OBJECT_TYPE = 0x420057,
	KMIP_TAG_OPERATION = 0x42005C,
	KMIP_TAG_PADDING_METHOD = 0x42005F,
	KMIP_TAG_PROTOCOL_VERSION = 0x420069,
	KMIP_TAG_PROTOCOL_VERSION_MAJOR = 0x42006A,
	KMIP_TAG_PROTOCOL_VERSION_MINOR = 0x42006B,
	KMIP_TAG_REQUEST_HEADER = 0x420077,
	KMIP_TAG_REQUEST_MESSAGE = 0x420078,
	KMIP_TAG_REQUEST_PAYLOAD = 0x420079,
	KMIP_TAG_RESPONSE_HEADER = 0x42007A,
	KMIP_TAG_RESPONSE_MESSAGE = 0x42007B,
	KMIP_TAG_RESPONSE_PAYLOAD = 0x42007C,
	KMIP_TAG_RESULT_MESSAGE = 0x42007D,
	KMIP_TAG_RESULT_REASON = 0x42007E,
	KMIP_TAG_RESULT_STATUS = 0x42007F,
	KMIP_TAG_SYMMETRIC_KEY = 0x42008F,
	KMIP_TAG_TIME_STAMP = 0x420092,
	KMIP_TAG_UNIQUE_IDENTIFIER = 0x420094,
	KMIP_TAG_DATA = 0x4200C2,
	KMIP_TAG_TAG_LENGTH = 0x4200CE,
	KMIP_TAG_AE_ADDITIONAL_DATA = 0x4200FE,
	KMIP_TAG_AE_TAG = 0x4200FF
};

enum {
	KMIP_OP_GET = 0x0A,
	KMIP_OP_GET_ATTRIBUTES = 0x0B,
	KMIP_OP_ENCRYPT = 0x1F,
	KMIP_OP_DECRYPT = 0x20,
	KMIP_MODE_CBC = 0x01,
	KMIP_MODE_GCM = 0x09,
	KMIP_PAD_PKCS5 = 0x03,
	KMIP_ALG_AES = 0x03,
	KMIP_FORMAT_RAW = 0x01,
	KMIP_STATUS_SUCCESS = 0,
	KMIP_REASON_ITEM_NOT_FOUND = 0x01,
	KMIP_REASON_AUTH_FAILED = 0x03,
	KMIP_REASON_INVALID_MESSAGE = 0x04,
	KMIP_REASON_OP_NOT_SUPPORTED = 0x05,
	KMIP_REASON_INVALID_FIELD = 0x07,
	KMIP_REASON_FEATURE_NOT_SUPPORTED = 0x08,
	KMIP_REASON_CRYPTO_FAILURE = 0x0A,
	KMIP_REASON_PERMISSION_DENIED = 0x0C,
	KMIP_REASON_WRONG_STATE = 0x103 /* PyKMIP-style extension, seen as text */
};

#define TTLV_MAX_DEPTH 16
#define TTLV_MAX_NODES 4096
#define TTLV_MAX_MESSAGE (1u << 20) /* bytes of one message, at most */

/* ---- encoding */

typedef struct atrest__ttlv_enc {
	uint8_t *b;
	size_t len, cap;
	size_t open[TTLV_MAX_DEPTH]; /* offsets of open structures */
	int depth;
	int err; /* out of memory or misuse: finish fails */
} atrest__ttlv_enc;

void atrest__ttlv_begin(atrest__ttlv_enc *e, uint32_t tag);
void atrest__ttlv_end(atrest__ttlv_enc *e);
void atrest__ttlv_int(atrest__ttlv_enc *e, uint32_t tag, int32_t v);
void atrest__ttlv_long(atrest__ttlv_enc *e, uint32_t tag, int64_t v);
void atrest__ttlv_enum(atrest__ttlv_enc *e, uint32_t tag, uint32_t v);
void atrest__ttlv_bool(atrest__ttlv_enc *e, uint32_t tag, int v);
void atrest__ttlv_datetime(atrest__ttlv_enc *e, uint32_t tag, int64_t v);
void atrest__ttlv_interval(atrest__ttlv_enc *e, uint32_t tag, uint32_t v);
void atrest__ttlv_text(atrest__ttlv_enc *e, uint32_t tag, const char *s, size_t len);
void atrest__ttlv_bytes(atrest__ttlv_enc *e, uint32_t tag, const uint8_t *p, size_t len);
/* Big Integer: len bytes, big-endian two's complement, left-padded to 8. */
void atrest__ttlv_bigint(atrest__ttlv_enc *e, uint32_t tag, const uint8_t *p, size_t len);
/* 0 when every structure was closed and nothing failed. */
int atrest__ttlv_finish(atrest__ttlv_enc *e);
/* Wipe (requests hold data keys) and free. */
void atrest__ttlv_enc_free(atrest__ttlv_enc *e);

/* ---- decoding */

typedef struct atrest__ttlv {
	uint32_t tag;
	uint8_t type;
	uint32_t len;        /* value bytes, without padding */
	const uint8_t *val;  /* into the parsed buffer */
	int32_t first, next; /* children and siblings, -1 for none */
} atrest__ttlv;

typedef struct atrest__ttlv_doc {
	atrest__ttlv *n; /* n[0] is the root */
	size_t count;
} atrest__ttlv_doc;

/*
 * Parse exactly one item filling buf[0..len) (which must outlive doc).
 * Every length, type, nesting depth and node count is checked; 0 or
 * ATREST_EINTEGRITY with the reason.
 */
int atrest__ttlv_parse(atrest__ttlv_doc *doc, const uint8_t *buf, size_t len);
void atrest__ttlv_doc_free(atrest__ttlv_doc *doc);

/* The first child of node (a structure) with tag, or NULL. */
const atrest__ttlv *atrest__ttlv_child(
	const atrest__ttlv_doc *doc, const atrest__ttlv *node, uint32_t tag);
/* Typed reads: 0, or -1 when node is NULL or of another type. */
int atrest__ttlv_get_int(const atrest__ttlv *node, int32_t *out);
int atrest__ttlv_get_long(const atrest__ttlv *node, int64_t *out);
int atrest__ttlv_get_enum(const atrest__ttlv *node, uint32_t *out);
int atrest__ttlv_get_bool(const atrest__ttlv *node, int *out);
int atrest__ttlv_get_bytes(const atrest__ttlv *node, const uint8_t **p, size_t *len);
int atrest__ttlv_get_text(const atrest__ttlv *node, const char **p, size_t *len);

/* Length of the message whose 8-byte header is hdr, or 0 if refused. */
size_t atrest__ttlv_message_len(const uint8_t hdr[8]);

/* ---- the KMIP envelope */

/* Start a one-item request of op (protocol 1.minor); end with _request_end. */
void atrest__kmip_request_begin(atrest__ttlv_enc *e, int minor, uint32_t op);
int atrest__kmip_request_end(atrest__ttlv_enc *e);

/* What a response says about its one batch item. */
typedef struct atrest__kmip_result {
	uint32_t status, reason;     /* reason 0 when absent */
	char message[160];           /* printable, truncated; "" when absent */
	const atrest__ttlv *payload; /* NULL when absent */
} atrest__kmip_result;

/*
 * Check a parsed response to op: its shape, one batch item of the same
 * operation; fills res.  ATREST_EINTEGRITY when malformed.
 */
int atrest__kmip_response(
	atrest__kmip_result *res, const atrest__ttlv_doc *doc, uint32_t op);

#endif
