/*
 * Shared by the fuzz targets and the seed generator: the fixed keys and
 * names that let committed seeds reach the code behind authentication.
 */
#ifndef ATREST_FUZZ_H
#define ATREST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The record target's namespace and associated data. */
#define FUZZ_RECORD_NS "fuzz"
#define FUZZ_RECORD_AD "k"

/* The fixed 32-byte key (bytes 0..31): object data key and store master key. */
static inline void fuzz_key(uint8_t key[32])
{
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
}

/*
 * A temporary file for targets that read files: its path in path (cap
 * bytes), its descriptor returned; removed at exit by the caller's handler.
 */
static inline int fuzz_temp_file(char *path, size_t cap)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(path, cap, "%s/atrest-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		abort();
	return fd;
}

/* libFuzzer's entry point, also called by the corpus replayer. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
