/*
 * Internals of the local directory backend (fs.c) shared with the core and,
 * in test builds, the fault-injection hook of its system-call table.
 */
#ifndef ATREST_FS_INT_H
#define ATREST_FS_INT_H

#include "atrest/sys/backend.h"

/* atrest_backend_fs, with nosync != 0 skipping every fsync of a put
 * (ATREST_STORE_NO_SYNC). */
int atrest__backend_fs_new(atrest_backend **out, const char *root, int nosync);

#ifdef ATREST_TEST_HOOKS
/*
 * Make fs.c call fn instead of the libc function called name ("open",
 * "write", "fsync", "rename", "link", "mkdir", "unlink", ...); NULL restores
 * the original.  fn must have exactly the libc prototype (open is variadic).
 * Not thread-safe: call it while no backend is in use.  0, or ATREST_EINVAL
 * for an unknown name.  Test builds only.
 */
int atrest__fs_set_syscall(const char *name, void *fn);
#endif

#endif
