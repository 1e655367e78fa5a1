/*
 * Internal side of object-name validation (names.c): the check for list
 * prefixes, which may end inside a component or with "/".
 */
#ifndef ATREST_NAMES_H
#define ATREST_NAMES_H

/* 0, or ATREST_EINVAL with the reason as last error; NULL and "" are fine. */
int atrest__name_check_prefix(const char *prefix);

#endif
