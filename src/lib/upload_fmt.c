/*
 * Coding of the multipart upload record and of a completed object's part
 * list (docs/FORMAT.md, "Multipart objects").  Pure functions over
 * buffers: the parsers take anything (they are fuzzed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "crypto.h"
#include "upload_int.h"

#define REC_MAGIC "AUPR"
#define MPU_MAGIC "AMPU"
#define FMT_VERSION 1

static void le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int id_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int id_ok(const char *id, size_t n)
{
	if (n < 1 || n > ATREST__UPLOAD_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!id_char((unsigned char)id[i]))
			return 0;
	return 1;
}

int atrest__upload_id_check(const char *id)
{
	ENSURE(id && id_ok(id, strlen(id)), ATREST_EINVAL,
		"invalid upload id: 1 to 64 of A-Z a-z 0-9 _ -");
	return 0;
}

int atrest__upload_part_name(
	char *out, size_t cap, const char *id, uint32_t number, const char *name)
{
	uint8_t h[32];
	char hex[17];
	int n;

	GUARD(atrest__upload_id_check(id));
	ENSURE(number >= 1 && number <= ATREST_UPLOAD_MAX_PARTS, ATREST_EINVAL,
		"part number %u is not in 1..%u", number, ATREST_UPLOAD_MAX_PARTS);
	GUARD(atrest__sha256(h, name, strlen(name)));
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	n = snprintf(out, cap, ATREST__UPLOAD_DIR "%s/%05u-%s", id, number, hex);
	ENSURE(n > 0 && (size_t)n < cap, ATREST_EINVAL, "part name too long");
	return 0;
}

int atrest__up_rec_encode(uint8_t *out, size_t cap, size_t *len, const atrest__up_rec *r)
{
	size_t n = strlen(r->name);

	ENSURE(n >= 1 && n <= ATREST_NAME_MAX && cap >= 16 + n, ATREST_EINVAL,
		"upload record: name too long");
	memcpy(out, REC_MAGIC, 4);
	out[4] = FMT_VERSION;
	out[5] = r->state;
	le(out + 6, (uint64_t)r->initiated, 8);
	le(out + 14, n, 2);
	memcpy(out + 16, r->name, n);
	*len = 16 + n;
	return 0;
}

int atrest__up_rec_parse(atrest__up_rec *out, const uint8_t *buf, size_t len)
{
	size_t n;

	memset(out, 0, sizeof(*out));
	ENSURE(len >= 16 && memcmp(buf, REC_MAGIC, 4) == 0 && buf[4] == FMT_VERSION,
		ATREST_EINTEGRITY, "upload record: bad magic or version");
	ENSURE(buf[5] >= ATREST__UP_OPEN && buf[5] <= ATREST__UP_ABORTING,
		ATREST_EINTEGRITY, "upload record: unknown state %u", buf[5]);
	n = (size_t)get_le(buf + 14, 2);
	ENSURE(n >= 1 && n <= ATREST_NAME_MAX && len == 16 + n, ATREST_EINTEGRITY,
		"upload record: bad name length");
	ENSURE(!memchr(buf + 16, 0, n), ATREST_EINTEGRITY, "upload record: NUL in name");
	out->state = buf[5];
	out->initiated = (int64_t)get_le(buf + 6, 8);
	memcpy(out->name, buf + 16, n);
	return 0;
}

int atrest__mpu_encode(uint8_t **out, size_t *len, const atrest__mpu *m)
{
	size_t idl = strlen(m->id),
	       n = 10 + idl + (size_t)m->count * ATREST__MPU_PART_LEN;
	uint8_t *p;

	*out = NULL;
	ENSURE(id_ok(m->id, idl) && m->count >= 1 && m->count <= ATREST_UPLOAD_MAX_PARTS,
		ATREST_EINVAL, "part list: bad id or count");
	p = malloc(n);
	ENSURE(p, ATREST_ERROR, "out of memory");
	memcpy(p, MPU_MAGIC, 4);
	p[4] = FMT_VERSION;
	p[5] = (uint8_t)idl;
	memcpy(p + 6, m->id, idl);
	le(p + 6 + idl, m->count, 4);
	for (uint32_t i = 0; i < m->count; i++) {
		uint8_t *e = p + 10 + idl + (size_t)i * ATREST__MPU_PART_LEN;
		le(e, m->parts[i].number, 4);
		le(e + 4, m->parts[i].size, 8);
		le(e + 12, m->parts[i].stored, 8);
		le(e + 20, m->parts[i].dek, 4);
		memcpy(e + 24, m->parts[i].commit, 32);
	}
	*out = p;
	*len = n;
	return 0;
}

void atrest__mpu_free(atrest__mpu *m)
{
	free(m->parts);
	m->parts = NULL;
	m->count = 0;
}

/* One entry, checked: numbers strictly increase, sums do not wrap. */
static int mpu_entry(atrest__mpu *m, uint32_t i, const uint8_t *e)
{
	atrest__mpu_part *p = &m->parts[i];

	p->number = (uint32_t)get_le(e, 4);
	p->size = get_le(e + 4, 8);
	p->stored = get_le(e + 12, 8);
	p->dek = (uint32_t)get_le(e + 20, 4);
	memcpy(p->commit, e + 24, 32);
	ENSURE(p->number >= 1 && p->number <= ATREST_UPLOAD_MAX_PARTS &&
			(i == 0 || p->number > m->parts[i - 1].number),
		ATREST_EINTEGRITY, "part list: part numbers out of order");
	ENSURE(p->size <= p->stored && p->stored <= UINT64_MAX - m->stored &&
			p->size <= UINT64_MAX - m->size,
		ATREST_EINTEGRITY, "part list: impossible sizes");
	p->start = m->size;
	m->size += p->size;
	m->stored += p->stored;
	return 0;
}

int atrest__mpu_parse(atrest__mpu *out, const uint8_t *buf, size_t len)
{
	size_t idl;
	uint32_t count;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	ENSURE(len >= 6 && memcmp(buf, MPU_MAGIC, 4) == 0 && buf[4] == FMT_VERSION,
		ATREST_EINTEGRITY, "part list: bad magic or version");
	idl = buf[5];
	ENSURE(len >= 10 + idl && id_ok((const char *)buf + 6, idl), ATREST_EINTEGRITY,
		"part list: bad upload id");
	count = (uint32_t)get_le(buf + 6 + idl, 4);
	ENSURE(count >= 1 && count <= ATREST_UPLOAD_MAX_PARTS &&
			len == 10 + idl + (size_t)count * ATREST__MPU_PART_LEN,
		ATREST_EINTEGRITY, "part list: bad part count or length");
	memcpy(out->id, buf + 6, idl);
	out->parts = calloc(count, sizeof(*out->parts));
	ENSURE(out->parts, ATREST_ERROR, "out of memory");
	out->count = count;
	for (uint32_t i = 0; i < count && rc == 0; i++)
		rc = mpu_entry(out, i, buf + 10 + idl + (size_t)i * ATREST__MPU_PART_LEN);
	if (rc < 0)
		atrest__mpu_free(out);
	return rc;
}
