/*
 * Fuzz target: the audit log verifier on one segment file, with the public
 * key of the worked example (tests/vectors/audit/), so that seeds made from
 * it reach the signature checks.  Each input is written to one temporary
 * file, made once and rewritten for every run.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atrest/errors.h"
#include "atrest/observe.h"
#include "fuzz.h"

/* tests/vectors/audit/pubkey.hex */
static const char PUB_HEX[] =
	"4b2bc9d55934fccab30a8b857d69e9dccf356ed27ee75211dd3cc4c6bc62d795";

static char path[4096];
static int fd = -1;
static uint8_t pub[32];

static void remove_file(void)
{
	close(fd);
	unlink(path);
}

static void setup(void)
{
	fd = fuzz_temp_file(path, sizeof(path));
	for (int i = 0; i < 32; i++)
		if (sscanf(PUB_HEX + 2 * i, "%2hhx", &pub[i]) != 1)
			abort();
	atexit(remove_file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	atrest_audit_report r = ATREST_AUDIT_REPORT_INIT;
	int rc;

	if (fd < 0)
		setup();
	if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	rc = atrest_audit_verify(&r, path, pub, 0);
	/* An intact log ends with a signed head; a failure names a line. */
	if (rc == 0 && (r.heads == 0 || r.lines == 0 || r.head_seq != r.last_seq))
		abort();
	if (rc == ATREST_EINTEGRITY && r.bad_line == 0)
		abort();
	return 0;
}
