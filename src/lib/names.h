/*
 * Internal side of name validation (names.c): the check for list prefixes,
 * which may end inside a component or with "/", and tenant names.
 */
#ifndef ATREST_NAMES_H
#define ATREST_NAMES_H

/* 0, or ATREST_EINVAL with the reason as last error; NULL and "" are fine. */
int atrest__name_check_prefix(const char *prefix);

/*
 * A tenant name: 1 to 64 bytes of letters, digits, '.', '_' and '-',
 * starting with a letter or digit (it names a directory of the store).
 * 0, or ATREST_EINVAL with the reason.
 */
int atrest__tenant_check(const char *name);

/*
 * A name of the library's own objects: ".atrest/snap/" then '/'-separated
 * components of 1 to 255 printable bytes, no "." or "..", at most 1024
 * bytes in all (they fit an object header's context).
 */
int atrest__internal_name_check(const char *name);

#endif
