/*
 * Rollback detection for keyrings: the newest generation this host has
 * seen of each keyring id, kept outside the store (per user under
 * $XDG_STATE_HOME/atrest, or in a server's state directory).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floor.h"
#include "keyring.h"

#define FLOOR_DIGITS 20

int atrest__floor_dir(char **out, const char *opt)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char buf[4096];

	*out = NULL;
	if (opt && !*opt)
		return 0; /* asked for none */
	if (opt)
		snprintf(buf, sizeof(buf), "%s", opt);
	else if (xdg && *xdg == '/')
		snprintf(buf, sizeof(buf), "%s/atrest", xdg);
	else if (home && *home == '/')
		snprintf(buf, sizeof(buf), "%s/.local/state/atrest", home);
	else
		return 0; /* nowhere to keep it: no detection (docs/SECURITY.md) */
	*out = strdup(buf);
	ENSURE(*out, ATREST_ERROR, "out of memory");
	return 0;
}

/* mkdir -p, each new directory 0700; 0 or -1. */
static int make_dir(const char *dir)
{
	char p[4096];
	size_t n = strlen(dir);

	if (n >= sizeof(p))
		return -1;
	memcpy(p, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			return -1;
		p[i] = i < n ? '/' : '\0';
	}
	return 0;
}

/* The floor file of id, opened and locked; -1 when it cannot be. */
static int floor_open(const char *dir, const uint8_t id[16], char *path, size_t cap)
{
	char hex[33], sub[4096];
	struct stat st;
	int fd;

	atrest__hex(hex, id, 16);
	snprintf(sub, sizeof(sub), "%s/generations", dir);
	snprintf(path, cap, "%s/%s", sub, hex);
	if (make_dir(sub) != 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || flock(fd, LOCK_EX) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint64_t floor_read(int fd)
{
	char buf[FLOOR_DIGITS + 2];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *end;
	unsigned long long v;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtoull(buf, &end, 10);
	return end == buf ? 0 : (uint64_t)v;
}

int atrest__floor_check(const char *dir, const uint8_t id[16], uint64_t generation,
	const char *location, int final)
{
	char path[4200], text[FLOOR_DIGITS + 2];
	uint64_t seen;
	int fd;

	if (!dir)
		return 0;
	fd = floor_open(dir, id, path, sizeof(path));
	if (fd < 0)
		return 0; /* an unusable state dir does not stop the store */
	seen = floor_read(fd);
	if (generation < seen && !final) {
		close(fd);
		return 1;
	}
	if (generation < seen) {
		close(fd);
		return atrest__error(ATREST_EINTEGRITY,
			"the keyring of %s is at generation %llu, older than generation "
			"%llu seen before on this host: it was rolled back to an older "
			"copy (restore the newest keyring; if the rollback is deliberate, "
			"remove %s)",
			location, (unsigned long long)generation,
			(unsigned long long)seen, path);
	}
	if (generation > seen) {
		snprintf(text, sizeof(text), "%0*llu\n", FLOOR_DIGITS,
			(unsigned long long)generation);
		if (pwrite(fd, text, strlen(text), 0) == (ssize_t)strlen(text))
			(void)ftruncate(fd, (off_t)strlen(text));
	}
	close(fd);
	return 0;
}
