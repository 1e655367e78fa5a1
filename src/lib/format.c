/*
 * The object format of docs/FORMAT.md: header coding and validation, the one
 * HKDF that keys an object, the segment layout, nonces and metadata.  Every
 * parser here treats its input as hostile (it is fuzzed).
 */
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "secret.h"

static const char INFO_LABEL[] = "atrest/v1 object";

int atrest__is_object(const uint8_t *buf, size_t len)
{
	return len >= ATREST__MAGIC_LEN &&
		memcmp(buf, ATREST__MAGIC, ATREST__MAGIC_LEN) == 0;
}

static int cipher_known(int c)
{
	return c == ATREST_CIPHER_AES_256_GCM || c == ATREST_CIPHER_CHACHA20_POLY1305 ||
		c == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256;
}

static int segment_size_ok(int cipher, uint32_t s)
{
	if (s < ATREST_SEGMENT_SIZE_MIN || s > ATREST_SEGMENT_SIZE_MAX)
		return 0;
	return cipher != ATREST_CIPHER_AES_256_CBC_HMAC_SHA256 || s % 16 == 0;
}

static size_t context_len(const atrest__hdr *h)
{
	return ATREST__STORE_ID_LEN + 1 + strlen(h->tenant) + 2 + strlen(h->name);
}

int atrest__hdr_encode(uint8_t *buf, size_t cap, atrest__hdr *h)
{
	size_t tl = strlen(h->tenant), nl = strlen(h->name), cl, off;

	ENSURE(cipher_known(h->cipher), ATREST_EINVAL, "unknown cipher %d", h->cipher);
	ENSURE(segment_size_ok(h->cipher, h->segment_size), ATREST_EINVAL,
		"segment size %u out of range", h->segment_size);
	ENSURE(tl <= ATREST_TENANT_MAX && nl <= ATREST_NAME_MAX, ATREST_EINVAL,
		"tenant or name too long");
	ENSURE(h->ext_len <= ATREST__EXT_MAX, ATREST_EINVAL, "header extension too long");
	cl = context_len(h);
	ENSURE(cap >= ATREST__HDR_FIXED + cl + 2 + h->ext_len + ATREST__COMMIT_LEN,
		ATREST_EINVAL, "header buffer too small");

	memcpy(buf, ATREST__MAGIC, ATREST__MAGIC_LEN);
	buf[7] = ATREST__VERSION;
	buf[8] = h->form;
	buf[9] = h->cipher;
	atrest__put_le16(buf + 10, 0);
	atrest__put_le32(buf + 12, h->segment_size);
	atrest__put_le32(buf + 16, h->dek_id);
	atrest__put_le32(buf + 20, h->meta_len);
	memcpy(buf + 24, h->salt, ATREST__SALT_LEN);
	atrest__put_le16(buf + 56, (uint16_t)cl);
	off = ATREST__HDR_FIXED;
	memcpy(buf + off, h->store_id, ATREST__STORE_ID_LEN);
	off += ATREST__STORE_ID_LEN;
	buf[off++] = (uint8_t)tl;
	memcpy(buf + off, h->tenant, tl);
	off += tl;
	atrest__put_le16(buf + off, (uint16_t)nl);
	off += 2;
	memcpy(buf + off, h->name, nl);
	off += nl;
	atrest__put_le16(buf + off, h->ext_len);
	off += 2;
	memcpy(buf + off, h->ext, h->ext_len);
	off += h->ext_len;
	memset(buf + off, 0, ATREST__COMMIT_LEN);
	h->version = ATREST__VERSION;
	h->len = (uint32_t)(off + ATREST__COMMIT_LEN);
	return 0;
}

/* A string field of the context: printable bytes only, NUL-terminated. */
static int take_string(char *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (src[i] < 0x20 || src[i] == 0x7f)
			return ATREST_EINTEGRITY;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

static int parse_context(atrest__hdr *h, const uint8_t *p, size_t cl)
{
	size_t tl, nl;

	ENSURE(cl >= ATREST__STORE_ID_LEN + 3, ATREST_EINTEGRITY,
		"header context too short");
	memcpy(h->store_id, p, ATREST__STORE_ID_LEN);
	tl = p[ATREST__STORE_ID_LEN];
	ENSURE(tl <= ATREST_TENANT_MAX && ATREST__STORE_ID_LEN + 1 + tl + 2 <= cl,
		ATREST_EINTEGRITY, "header tenant length out of range");
	ENSURE(take_string(h->tenant, p + ATREST__STORE_ID_LEN + 1, tl) == 0,
		ATREST_EINTEGRITY, "header tenant is not printable");
	p += ATREST__STORE_ID_LEN + 1 + tl;
	nl = atrest__le16(p);
	ENSURE(nl <= ATREST_NAME_MAX && ATREST__STORE_ID_LEN + 1 + tl + 2 + nl == cl,
		ATREST_EINTEGRITY, "header name length out of range");
	ENSURE(take_string(h->name, p + 2, nl) == 0, ATREST_EINTEGRITY,
		"header name is not printable");
	return 0;
}

int atrest__hdr_parse(atrest__hdr *h, const uint8_t *buf, size_t len)
{
	size_t cl, off;

	memset(h, 0, sizeof(*h));
	ENSURE(atrest__is_object(buf, len), ATREST_EINTEGRITY, "not an atrest object");
	ENSURE(len >= ATREST__HDR_FIXED, ATREST_EINTEGRITY, "header truncated");
	ENSURE(buf[7] == ATREST__VERSION, ATREST_EINTEGRITY,
		"unsupported format version %u", buf[7]);
	h->version = buf[7];
	h->form = buf[8];
	h->cipher = buf[9];
	ENSURE(h->form == ATREST__FORM_OBJECT || h->form == ATREST__FORM_FILE ||
			h->form == ATREST__FORM_MULTIPART,
		ATREST_EINTEGRITY, "unknown object form %u", h->form);
	ENSURE(cipher_known(h->cipher), ATREST_EINTEGRITY, "unknown cipher %u",
		h->cipher);
	ENSURE(atrest__le16(buf + 10) == 0, ATREST_EINTEGRITY, "unknown header flags");
	h->segment_size = atrest__le32(buf + 12);
	ENSURE(segment_size_ok(h->cipher, h->segment_size), ATREST_EINTEGRITY,
		"segment size %u out of range", h->segment_size);
	h->dek_id = atrest__le32(buf + 16);
	h->meta_len = atrest__le32(buf + 20);
	ENSURE(h->meta_len >= atrest__cipher_overhead(h->cipher) &&
			h->meta_len <= atrest__cipher_ctlen(h->cipher, ATREST_META_MAX),
		ATREST_EINTEGRITY, "metadata length out of range");
	memcpy(h->salt, buf + 24, ATREST__SALT_LEN);
	cl = atrest__le16(buf + 56);
	ENSURE(cl <= ATREST__CTX_MAX && len >= ATREST__HDR_FIXED + cl + 2,
		ATREST_EINTEGRITY, "header truncated");
	GUARD(parse_context(h, buf + ATREST__HDR_FIXED, cl));
	off = ATREST__HDR_FIXED + cl;
	h->ext_len = atrest__le16(buf + off);
	off += 2;
	ENSURE(h->ext_len <= ATREST__EXT_MAX &&
			len >= off + h->ext_len + ATREST__COMMIT_LEN,
		ATREST_EINTEGRITY, "header truncated");
	ENSURE(h->form == ATREST__FORM_FILE || h->ext_len == 0, ATREST_EINTEGRITY,
		"unexpected header extension");
	memcpy(h->ext, buf + off, h->ext_len);
	off += h->ext_len;
	memcpy(h->commit, buf + off, ATREST__COMMIT_LEN);
	h->len = (uint32_t)(off + ATREST__COMMIT_LEN);
	return 0;
}

static int derive(uint8_t *okm, size_t okm_len, const atrest__hdr *h,
	const uint8_t *hdr_bytes, const uint8_t *dek, size_t dek_len)
{
	uint8_t info[sizeof(INFO_LABEL) - 1 + 32];

	memcpy(info, INFO_LABEL, sizeof(INFO_LABEL) - 1);
	GUARD(atrest__sha256(
		info + sizeof(INFO_LABEL) - 1, hdr_bytes, h->len - ATREST__COMMIT_LEN));
	return atrest__hkdf(okm, okm_len, h->salt, ATREST__SALT_LEN, dek, dek_len, info,
		sizeof(info));
}

int atrest__obj_init(atrest__obj *o, const atrest__hdr *h, uint8_t *hdr_bytes,
	const uint8_t *dek, size_t dek_len, int check)
{
	uint8_t okm[ATREST_CIPHER_KEY_MAX + ATREST__PREFIX_LEN + ATREST__COMMIT_LEN];
	size_t kl = atrest__cipher_keylen(h->cipher);
	size_t okm_len = kl + ATREST__PREFIX_LEN + ATREST__COMMIT_LEN;
	const uint8_t *commit = okm + kl + ATREST__PREFIX_LEN;
	int rc;

	memset(o, 0, sizeof(*o));
	o->hdr = *h;
	GUARD_OUT(derive(okm, okm_len, h, hdr_bytes, dek, dek_len));
	if (check) {
		ENSURE_OUT(atrest__ct_equal(commit, h->commit, ATREST__COMMIT_LEN),
			ATREST_EINTEGRITY,
			"header authentication failed (key commitment mismatch)");
	} else {
		memcpy(o->hdr.commit, commit, ATREST__COMMIT_LEN);
		memcpy(hdr_bytes + h->len - ATREST__COMMIT_LEN, commit,
			ATREST__COMMIT_LEN);
	}
	memcpy(o->prefix, okm + kl, ATREST__PREFIX_LEN);
	memcpy(o->key, okm, kl);
	GUARD_OUT(atrest__aead_new(&o->aead, h->cipher, okm, kl));
	o->data_off = (uint64_t)h->len + h->meta_len;
	o->seg_ct = atrest__cipher_ctlen(h->cipher, h->segment_size);
out:
	atrest__wipe(okm, sizeof(okm));
	return rc;
}

void atrest__obj_cleanup(atrest__obj *o)
{
	atrest__aead_free(o->aead);
	atrest__wipe(o, sizeof(*o));
}

int atrest__layout(uint64_t *nseg, size_t *last_ct, int cipher, uint32_t segment_size,
	uint64_t data_off, uint64_t stored_size)
{
	size_t full = atrest__cipher_ctlen(cipher, segment_size);
	size_t min = atrest__cipher_overhead(cipher);
	uint64_t body, n, last;

	ENSURE(stored_size >= data_off + min, ATREST_EINTEGRITY,
		"object truncated (%llu bytes is shorter than its header)",
		(unsigned long long)stored_size);
	body = stored_size - data_off;
	n = (body + full - 1) / full;
	last = body - (n - 1) * full;
	ENSURE(n <= ATREST__MAX_SEGMENTS, ATREST_EINTEGRITY, "object too large");
	ENSURE(n == 1 || last > min, ATREST_EINTEGRITY,
		"object size does not match its segment layout (truncated or extended)");
	ENSURE(cipher != ATREST_CIPHER_AES_256_CBC_HMAC_SHA256 || (last - min) % 16 == 0,
		ATREST_EINTEGRITY,
		"object size does not match its segment layout (truncated or extended)");
	*nseg = n;
	*last_ct = (size_t)last;
	return 0;
}

int atrest__obj_layout(atrest__obj *o, uint64_t stored_size)
{
	return atrest__layout(&o->nseg, &o->last_ct, o->hdr.cipher, o->hdr.segment_size,
		o->data_off, stored_size);
}

uint64_t atrest__seg_off(const atrest__obj *o, uint64_t i)
{
	return o->data_off + i * (uint64_t)o->seg_ct;
}

size_t atrest__seg_ctlen(const atrest__obj *o, uint64_t i)
{
	return i + 1 == o->nseg ? o->last_ct : o->seg_ct;
}

void atrest__nonce(uint8_t out[ATREST_NONCE_LEN], const uint8_t *prefix, uint32_t index,
	uint8_t flag)
{
	memcpy(out, prefix, ATREST__PREFIX_LEN);
	out[7] = (uint8_t)(index >> 24);
	out[8] = (uint8_t)(index >> 16);
	out[9] = (uint8_t)(index >> 8);
	out[10] = (uint8_t)index;
	out[11] = flag;
}

int atrest__seg_seal(atrest__obj *o, uint8_t *out, uint64_t i, int last,
	const uint8_t *pt, size_t pt_len)
{
	uint8_t nonce[ATREST_NONCE_LEN];

	ENSURE(i < ATREST__MAX_SEGMENTS, ATREST_ETOOBIG,
		"object too large for its segment size");
	atrest__nonce(nonce, o->prefix, (uint32_t)i, last ? 1 : 0);
	return atrest__aead_seal(o->aead, out, nonce, NULL, 0, pt, pt_len);
}

int atrest__seg_open(atrest__obj *o, uint8_t *out, size_t *pt_len, uint64_t i, int last,
	const uint8_t *ct, size_t ct_len)
{
	uint8_t nonce[ATREST_NONCE_LEN];

	ENSURE(i < ATREST__MAX_SEGMENTS, ATREST_EINTEGRITY, "segment index out of range");
	atrest__nonce(nonce, o->prefix, (uint32_t)i, last ? 1 : 0);
	if (atrest__aead_open(o->aead, out, pt_len, nonce, NULL, 0, ct, ct_len) < 0)
		return atrest__error(ATREST_EINTEGRITY,
			"segment %llu failed authentication (modified, truncated or reordered)",
			(unsigned long long)i);
	/*
	 * Every segment but the last holds exactly S bytes.  A CBC-HMAC
	 * segment of full length can still carry a pad count (an authentic
	 * but non-conforming writer): readers would then disagree on the
	 * plaintext, so it is refused.
	 */
	if (!last && *pt_len != o->hdr.segment_size) {
		atrest__wipe(out, *pt_len);
		*pt_len = 0;
		return atrest__error(ATREST_EINTEGRITY,
			"segment %llu holds fewer bytes than the segment size, and is "
			"not the last (malformed object)",
			(unsigned long long)i);
	}
	return 0;
}

int atrest__meta_seal(atrest__obj *o, uint8_t *out, const uint8_t *pt, size_t pt_len)
{
	uint8_t nonce[ATREST_NONCE_LEN];

	atrest__nonce(nonce, o->prefix, ATREST__META_NONCE_INDEX, 2);
	return atrest__aead_seal(o->aead, out, nonce, NULL, 0, pt, pt_len);
}

int atrest__meta_open(
	atrest__obj *o, uint8_t *out, size_t *pt_len, const uint8_t *ct, size_t ct_len)
{
	uint8_t nonce[ATREST_NONCE_LEN];

	atrest__nonce(nonce, o->prefix, ATREST__META_NONCE_INDEX, 2);
	if (atrest__aead_open(o->aead, out, pt_len, nonce, NULL, 0, ct, ct_len) < 0)
		return atrest__error(ATREST_EINTEGRITY, "metadata failed authentication");
	return 0;
}

int atrest__meta_encode(uint8_t **out, size_t *out_len, const atrest_meta *m)
{
	size_t count = m ? m->count : 0, need = 2, off = 2;
	uint8_t *b;

	ENSURE(count <= 0xFFFF, ATREST_EINVAL, "too many metadata entries");
	for (size_t i = 0; i < count; i++) {
		const atrest_meta_entry *e = &m->entries[i];
		ENSURE(e->key && e->value && *e->key, ATREST_EINVAL,
			"metadata entry %zu has no key or value", i);
		ENSURE(strlen(e->key) <= 0xFFFF, ATREST_EINVAL, "metadata key too long");
		need += 6 + strlen(e->key) + strlen(e->value);
		ENSURE(need <= ATREST_META_MAX, ATREST_ETOOBIG,
			"metadata larger than %d bytes", ATREST_META_MAX);
	}
	b = malloc(need);
	ENSURE(b, ATREST_ERROR, "out of memory");
	atrest__put_le16(b, (uint16_t)count);
	for (size_t i = 0; i < count; i++) {
		size_t kl = strlen(m->entries[i].key), vl = strlen(m->entries[i].value);
		atrest__put_le16(b + off, (uint16_t)kl);
		memcpy(b + off + 2, m->entries[i].key, kl);
		off += 2 + kl;
		atrest__put_le32(b + off, (uint32_t)vl);
		memcpy(b + off + 4, m->entries[i].value, vl);
		off += 4 + vl;
	}
	*out = b;
	*out_len = need;
	return 0;
}

/* First pass of decode: validate and measure. */
static int meta_measure(size_t *count, size_t *strings, const uint8_t *buf, size_t len)
{
	size_t off = 2;

	ENSURE(len >= 2, ATREST_EINTEGRITY, "metadata truncated");
	*count = atrest__le16(buf);
	*strings = 0;
	for (size_t i = 0; i < *count; i++) {
		size_t kl, vl;
		ENSURE(len - off >= 2, ATREST_EINTEGRITY, "metadata truncated");
		kl = atrest__le16(buf + off);
		ENSURE(len - off - 2 >= kl + 4, ATREST_EINTEGRITY, "metadata truncated");
		vl = atrest__le32(buf + off + 2 + kl);
		ENSURE(len - off - 6 - kl >= vl, ATREST_EINTEGRITY, "metadata truncated");
		ENSURE(kl > 0, ATREST_EINTEGRITY, "metadata has an empty key");
		ENSURE(!memchr(buf + off + 2, 0, kl) &&
				!memchr(buf + off + 6 + kl, 0, vl),
			ATREST_EINTEGRITY, "metadata holds a NUL byte");
		off += 6 + kl + vl;
		*strings += kl + vl + 2;
	}
	ENSURE(off == len, ATREST_EINTEGRITY, "metadata has trailing bytes");
	return 0;
}

int atrest__meta_check(const uint8_t *buf, size_t len)
{
	size_t count, strings;

	return meta_measure(&count, &strings, buf, len);
}

int atrest__meta_decode(
	atrest_meta_entry **out, size_t *count, const uint8_t *buf, size_t len)
{
	size_t n = 0, strings = 0, off = 2;
	atrest_meta_entry *e;
	char *s;

	GUARD(meta_measure(&n, &strings, buf, len));
	e = malloc(n * sizeof(*e) + strings + 1);
	ENSURE(e, ATREST_ERROR, "out of memory");
	s = (char *)(e + n);
	for (size_t i = 0; i < n; i++) {
		size_t kl = atrest__le16(buf + off), vl;
		memcpy(s, buf + off + 2, kl);
		s[kl] = '\0';
		e[i].key = s;
		s += kl + 1;
		off += 2 + kl;
		vl = atrest__le32(buf + off);
		memcpy(s, buf + off + 4, vl);
		s[vl] = '\0';
		e[i].value = s;
		s += vl + 1;
		off += 4 + vl;
	}
	*out = e;
	*count = n;
	return 0;
}

int atrest__plain_size(uint64_t *size, int cipher, uint32_t segment_size, uint64_t nseg,
	size_t last_ct, int pad_byte)
{
	size_t min = atrest__cipher_overhead(cipher), last;

	if (cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256) {
		ENSURE(pad_byte >= 0 && pad_byte <= 15 &&
				last_ct - min >= (size_t)pad_byte,
			ATREST_EINTEGRITY, "last segment has a bad pad count");
		last = last_ct - min - (size_t)pad_byte;
	} else {
		last = last_ct - min;
	}
	*size = (nseg - 1) * (uint64_t)segment_size + last;
	return 0;
}

uint64_t atrest__pad_byte_off(
	uint64_t data_off, size_t seg_ct, uint64_t nseg, size_t last_ct)
{
	/* The byte just before the 32-byte HMAC tag. */
	return data_off + (nseg - 1) * (uint64_t)seg_ct + last_ct - 33;
}

static int seal_body(atrest__obj *o, uint8_t *out, const uint8_t *pt, size_t len)
{
	uint32_t seg = o->hdr.segment_size;
	uint64_t n = len == 0 ? 1 : (len + seg - 1) / seg;

	for (uint64_t i = 0; i < n; i++) {
		size_t pl = i + 1 < n ? seg : len - (size_t)(i * seg);
		GUARD(atrest__seg_seal(o, out, i, i + 1 == n, pt + i * seg, pl));
		out += atrest__cipher_ctlen(o->hdr.cipher, pl);
	}
	return 0;
}

int atrest__obj_seal_buf(uint8_t **out, size_t *out_len, atrest__hdr *h,
	const uint8_t *dek, const uint8_t *meta, size_t meta_len, const uint8_t *pt,
	size_t pt_len)
{
	uint8_t hb[ATREST__HDR_MAX], *buf = NULL;
	size_t seg = h->segment_size, full, total;
	atrest__obj o;
	int rc;

	memset(&o, 0, sizeof(o));
	h->meta_len = (uint32_t)atrest__cipher_ctlen(h->cipher, meta_len);
	GUARD(atrest__hdr_encode(hb, sizeof(hb), h));
	GUARD(atrest__obj_init(&o, h, hb, dek, 32, 0));
	full = pt_len / seg;
	total = h->len + h->meta_len + full * o.seg_ct +
		atrest__cipher_ctlen(h->cipher, pt_len % seg);
	if (pt_len && pt_len % seg == 0) /* the last segment is full */
		total -= atrest__cipher_overhead(h->cipher);
	buf = malloc(total);
	ENSURE_OUT(buf, ATREST_ERROR, "out of memory");
	memcpy(buf, hb, h->len);
	GUARD_OUT(atrest__meta_seal(&o, buf + h->len, meta, meta_len));
	GUARD_OUT(seal_body(&o, buf + o.data_off, pt, pt_len));
	*h = o.hdr;
	*out = buf;
	*out_len = total;
	buf = NULL;
out:
	free(buf);
	atrest__obj_cleanup(&o);
	return rc;
}

static int open_body(atrest__obj *o, uint8_t *out, const uint8_t *obj)
{
	size_t n;

	for (uint64_t i = 0; i < o->nseg; i++) {
		GUARD(atrest__seg_open(o, out, &n, i, i + 1 == o->nseg,
			obj + atrest__seg_off(o, i), atrest__seg_ctlen(o, i)));
		out += n;
	}
	return 0;
}

int atrest__obj_open_buf(uint8_t **out, size_t *out_len, atrest__hdr *h,
	const uint8_t *obj, size_t obj_len, const uint8_t *dek)
{
	uint8_t hb[ATREST__HDR_MAX], *buf = NULL, *meta = NULL;
	atrest__obj o;
	uint64_t size = 0;
	size_t ml = 0;
	int rc, pad = 0;

	memset(&o, 0, sizeof(o));
	GUARD(atrest__hdr_parse(h, obj, obj_len));
	memcpy(hb, obj, h->len);
	GUARD(atrest__obj_init(&o, h, hb, dek, 32, 1));
	GUARD_OUT(atrest__obj_layout(&o, obj_len));
	if (h->cipher == ATREST_CIPHER_AES_256_CBC_HMAC_SHA256)
		pad = obj[atrest__pad_byte_off(o.data_off, o.seg_ct, o.nseg, o.last_ct)];
	GUARD_OUT(atrest__plain_size(
		&size, h->cipher, h->segment_size, o.nseg, o.last_ct, pad));
	meta = malloc(h->meta_len);
	buf = malloc(size + o.seg_ct);
	ENSURE_OUT(meta && buf, ATREST_ERROR, "out of memory");
	GUARD_OUT(atrest__meta_open(&o, meta, &ml, obj + h->len, h->meta_len));
	GUARD_OUT(atrest__meta_check(meta, ml));
	GUARD_OUT(open_body(&o, buf, obj));
	*out = buf;
	*out_len = (size_t)size;
	buf = NULL;
out:
	free(buf);
	free(meta);
	atrest__obj_cleanup(&o);
	return rc;
}

int atrest__obj_clone(atrest__obj *out, const atrest__obj *o)
{
	*out = *o;
	out->aead = NULL;
	return atrest__aead_new(
		&out->aead, o->hdr.cipher, o->key, atrest__cipher_keylen(o->hdr.cipher));
}

int atrest__obj_for_slot(atrest__obj **out, atrest__obj **slots, unsigned slot)
{
	atrest__obj *o = slots[slot];
	int rc;

	if (!o) {
		o = malloc(sizeof(*o));
		ENSURE(o, ATREST_ERROR, "out of memory");
		rc = atrest__obj_clone(o, slots[0]);
		if (rc < 0) {
			atrest__obj_cleanup(o);
			free(o);
			return rc;
		}
		slots[slot] = o;
	}
	*out = o;
	return 0;
}
