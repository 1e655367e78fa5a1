/*
 * Paths of a snapshot's tree on the local disk, resolved beneath one
 * directory without following any symbolic link (openat2 with
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, else a component at a time with
 * O_NOFOLLOW), a per-thread cache of the current parent directory, and a
 * removal of a half-restored tree that never follows a link.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "snap_int.h"

static int no_openat2; /* ENOSYS once: walk components from then on */

static int walk(int root, const char *path, int flags, mode_t mode)
{
	char comp[256];
	int dir = root, fd = -1;

	for (const char *p = path;;) {
		const char *sl = strchr(p, '/');
		size_t n = sl ? (size_t)(sl - p) : strlen(p);
		if (n == 0 || n >= sizeof(comp)) {
			errno = EINVAL;
			break;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		fd = sl ? openat(dir, comp,
				  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
			: openat(dir, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
		if (dir != root)
			close(dir);
		if (fd < 0 || !sl)
			return fd;
		dir = fd;
		p = sl + 1;
	}
	if (dir != root)
		close(dir);
	return -1;
}

int atrest__snap_openat(int root, const char *path, int flags, mode_t mode)
{
	struct open_how how = {0};
	long fd;

	if (!*path)
		return openat(root, ".", flags | O_CLOEXEC, mode);
	if (!__atomic_load_n(&no_openat2, __ATOMIC_RELAXED)) {
		how.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC);
		how.mode = (flags & O_CREAT) ? mode : 0;
		how.resolve =
			RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
		fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return (int)fd;
		__atomic_store_n(&no_openat2, 1, __ATOMIC_RELAXED);
	}
	return walk(root, path, flags, mode);
}

void atrest__snap_dirc_init(atrest__snap_dirc *c)
{
	c->fd = -1;
	c->dir = NULL;
}

void atrest__snap_dirc_close(atrest__snap_dirc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->dir);
	atrest__snap_dirc_init(c);
}

int atrest__snap_dirc_parent(
	atrest__snap_dirc *c, int root, const char *path, const char **base)
{
	const char *sl = strrchr(path, '/');
	size_t n = sl ? (size_t)(sl - path) : 0;

	*base = sl ? sl + 1 : path;
	if (c->fd >= 0 && strlen(c->dir) == n && memcmp(c->dir, path, n) == 0)
		return c->fd;
	atrest__snap_dirc_close(c);
	c->dir = strndup(path, n);
	if (!c->dir) {
		errno = ENOMEM;
		return -1;
	}
	c->fd = atrest__snap_openat(root, c->dir, O_RDONLY | O_DIRECTORY, 0);
	return c->fd;
}

/* Remove everything inside the directory fd (taken over and closed). */
static int empty_dir(int fd)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int err = 0;

	if (!d) {
		close(fd);
		return errno;
	}
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int e = atrest__snap_rmtree(fd, de->d_name);
		if (e && !err)
			err = e;
	}
	closedir(d);
	return err;
}

int atrest__snap_rmtree(int dirfd, const char *name)
{
	struct stat sb;
	int fd;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : errno;
	if (!S_ISDIR(sb.st_mode))
		return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? 0 : errno;
	/* A directory restored without write or search permission: give it. */
	(void)fchmodat(dirfd, name, 0700, 0);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int err = empty_dir(fd);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT && !err)
		err = errno;
	return err;
}
