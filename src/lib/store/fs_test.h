/*
 * Test hook of the local directory backend (fs.c): swap a system call it
 * makes for a fake, to inject faults (SQLite os_unix.c aSyscall style).
 */
#ifndef ATREST_FS_TEST_H
#define ATREST_FS_TEST_H

/*
 * Make fs.c call fn instead of the libc function called name ("open",
 * "write", "fsync", "rename", "link", "mkdir", "unlink", ...); NULL restores
 * the original.  fn must have exactly the libc prototype (open is variadic).
 * Not thread-safe: call it while no backend is in use.  0, or ATREST_EINVAL
 * for an unknown name.
 */
int atrest__fs_set_syscall(const char *name, void *fn);

#endif
