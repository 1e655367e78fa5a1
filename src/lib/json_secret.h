/*
 * Secret strings taken out of JSON text (response bodies, key files) held
 * in locked memory, before a JSON parser makes unlocked copies of them.
 */
#ifndef ATREST_JSON_SECRET_H
#define ATREST_JSON_SECRET_H

#include <stddef.h>

#include "common.h"
#include "secret.h"

/*
 * Find the string at path (object member names from the top, NULL-
 * terminated) in the JSON text json (len bytes, modified), decode its
 * escapes into a new NUL-terminated secret, and overwrite the string's
 * characters in json with 'x' so the text a JSON parser reads afterwards
 * holds no copy.  ATREST_ENOTFOUND when there is no string there,
 * ATREST_EINVAL when the text is not JSON (as far as it was read) or the
 * member is repeated.
 */
int atrest__json_take(
	atrest__secret **out, char *json, size_t len, const char *const *path);
/* The same, base64-decoded (standard or url alphabet) into at most cap bytes. */
int atrest__json_take_b64(atrest__secret **out, char *json, size_t len,
	const char *const *path, size_t cap);

#endif
