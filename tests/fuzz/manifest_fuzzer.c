/*
 * Fuzz target: the snapshot decoders (manifest, manifest head, writer's
 * lease, gc marker, sequence counter), with the property that whatever
 * decodes encodes back to exactly the input.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "manifest.h"

static void manifest(const uint8_t *data, size_t size)
{
	atrest__manifest *m = NULL;
	atrest__manifest_head h;
	uint8_t *enc = NULL;
	size_t len = 0;

	(void)atrest__manifest_head_decode(&h, data, size);
	if (atrest__manifest_decode(&m, data, size) != 0)
		return;
	if (atrest__manifest_head_decode(&h, data, size) != 0 || h.seq != m->seq ||
		h.nent != m->nent || strcmp(h.name, m->name) != 0)
		abort();
	for (size_t i = 0; i < m->nent; i++)
		if (atrest__manifest_find(m, m->ents[i].path) != (long)i)
			abort();
	if (atrest__manifest_encode(&enc, &len, m) != 0 || len != size ||
		memcmp(enc, data, size) != 0)
		abort();
	free(enc);
	atrest__manifest_free(m);
}

static void lease(const uint8_t *data, size_t size)
{
	atrest__snap_lease l;
	uint8_t *enc = NULL;
	size_t len = 0;

	if (atrest__lease_decode(&l, data, size) != 0)
		return;
	if (atrest__lease_encode(&enc, &len, &l) != 0 || len != size ||
		memcmp(enc, data, size) != 0)
		abort();
	free(enc);
	free(l.refs);
}

static void small(const uint8_t *data, size_t size)
{
	uint8_t enc[ATREST__SNAP_MARKER_LEN > ATREST__SNAP_SEQ_LEN
			? ATREST__SNAP_MARKER_LEN
			: ATREST__SNAP_SEQ_LEN];
	uint32_t ttl;
	int64_t created;
	uint64_t seq;

	if (atrest__marker_decode(&ttl, &created, data, size) == 0) {
		atrest__marker_encode(enc, ttl, created);
		if (memcmp(enc, data, size) != 0)
			abort();
	}
	if (atrest__seqobj_decode(&seq, data, size) == 0) {
		atrest__seqobj_encode(enc, seq);
		if (memcmp(enc, data, size) != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	manifest(data, size);
	lease(data, size);
	small(data, size);
	return 0;
}
