/*
 * Fuzz target: keyless inspection of an object file.  Each input is written
 * to one temporary file, made once and rewritten for every run.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "atrest/inspect.h"
#include "fuzz.h"

static char path[4096];
static int fd = -1;

static void remove_file(void)
{
	close(fd);
	unlink(path);
}

static void setup(void)
{
	fd = fuzz_temp_file(path, sizeof(path));
	atexit(remove_file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	atrest_header_info info = ATREST_HEADER_INFO_INIT;

	if (fd < 0)
		setup();
	if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	if (atrest_inspect_file(&info, path) != 0)
		return 0;
	/* What inspect reports must fit in the file it read. */
	if (info.stored_size != size || info.segments == 0 ||
		(uint64_t)info.header_size + info.meta_size > size ||
		info.plaintext_size > size)
		abort();
	return 0;
}
