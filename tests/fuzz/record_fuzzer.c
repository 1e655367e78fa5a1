/*
 * Fuzz target: opening compact records with a recorder of a store made once
 * in a private temporary directory; also seals each input and opens it back.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/atrest.h"
#include "fuzz.h"

static char dir[4096];
static atrest_store *store;
static atrest_recorder *rec;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static void teardown(void)
{
	atrest_recorder_close(rec);
	atrest_store_close(store);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A setup failure is a broken harness, not an uninteresting input. */
static void setup(void)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	const char *tmp = getenv("TMPDIR");
	uint8_t key[32];

	snprintf(dir, sizeof(dir), "%s/atrest-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	fuzz_key(key);
	o.path = dir;
	o.create = 1;
	if (atrest_keyprov_raw(&o.key, key, sizeof(key)) != 0 ||
		atrest_store_open(&store, &o) != 0 ||
		atrest_recorder_open(&rec, store, FUZZ_RECORD_NS) != 0) {
		fprintf(stderr, "record fuzzer setup: %s\n",
			atrest_error_last()->message);
		abort();
	}
	/* After OpenSSL's own exit handler: handlers run in reverse order, and
	 * closing the store signs the audit trail. */
	atexit(teardown);
}

/* Any input as plaintext must seal and open back to itself. */
static void round_trip(const uint8_t *data, size_t size, uint8_t *buf)
{
	uint8_t *sealed = malloc(size + ATREST_RECORD_OVERHEAD);
	size_t sealed_len, got;

	if (!sealed)
		return;
	if (atrest_record_seal(rec, sealed, size + ATREST_RECORD_OVERHEAD, &sealed_len,
		    data, size, FUZZ_RECORD_AD, 1) != 0)
		abort();
	if (atrest_record_open(rec, buf, size + ATREST_RECORD_OVERHEAD, &got, sealed,
		    sealed_len, FUZZ_RECORD_AD, 1) != 0 ||
		got != size || memcmp(buf, data, size) != 0)
		abort();
	free(sealed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;
	size_t got;
	int rc;

	if (!rec)
		setup();
	buf = malloc(size + ATREST_RECORD_OVERHEAD);
	if (!buf)
		return 0;
	rc = atrest_record_open(rec, buf, size, &got, data, size, FUZZ_RECORD_AD, 1);
	if (rc == 0 && got + ATREST_RECORD_OVERHEAD != size)
		abort();
	round_trip(data, size, buf);
	free(buf);
	return 0;
}
