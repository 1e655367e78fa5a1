/*
 * Corpus replayer: a main() for the fuzz targets that feeds every file of
 * the directories and files named on the command line to the target once,
 * so the corpora run as ordinary tests without libFuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Read path into a buffer of exactly its size, so overreads are caught. */
static int read_input(uint8_t **out, size_t *len, const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
		fseek(f, 0, SEEK_SET) != 0)
		goto fail;
	buf = malloc(size ? (size_t)size : 1);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto fail;
	fclose(f);
	*out = buf;
	*len = (size_t)size;
	return 0;
fail:
	free(buf);
	fclose(f);
	return -1;
}

static int run_file(const char *path)
{
	uint8_t *buf;
	size_t len;

	if (read_input(&buf, &len, path) < 0) {
		fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	printf("%s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int not_hidden(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Every regular file directly in dir, in name order; returns the count. */
static long run_dir(const char *dir)
{
	struct dirent **names;
	char path[4096];
	long ran = 0;
	int n = scandir(dir, &names, not_hidden, alphasort);
	struct stat sb;

	if (n < 0) {
		fprintf(stderr, "cannot list %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int len = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (ran >= 0 && len > 0 && (size_t)len < sizeof(path) &&
			stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			ran = run_file(path) < 0 ? -1 : ran + 1;
		free(names[i]);
	}
	free(names);
	return ran;
}

int main(int argc, char **argv)
{
	long total = 0;
	struct stat sb;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		long ran;
		if (stat(argv[i], &sb) != 0) {
			fprintf(stderr, "cannot stat %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(sb.st_mode))
			ran = run_dir(argv[i]);
		else
			ran = run_file(argv[i]) < 0 ? -1 : 1;
		if (ran < 0)
			return 1;
		total += ran;
	}
	printf("%ld inputs ran\n", total);
	/* An empty corpus is a broken test, not a passing one. */
	return total > 0 ? 0 : 1;
}
