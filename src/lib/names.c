/*
 * Validation of object names ("job-42/chk-17/part-3"), list prefixes and
 * tenant names.
 * Every name reaches a backend as a key, so anything that could walk out of
 * the store or hit its own files (".atrest/") is refused here.
 */
#include <string.h>

#include "atrest/store.h"
#include "common.h"
#include "names.h"

#define COMPONENT_MAX 255 /* NAME_MAX of common file systems */
#define QUOTE_MAX 64

/* A printable, bounded copy of name for messages (it may hold anything). */
static const char *quote(char out[QUOTE_MAX + 4], const char *name)
{
	size_t i;

	for (i = 0; name[i] && i < QUOTE_MAX; i++) {
		unsigned char c = (unsigned char)name[i];
		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	strcpy(out + i, name[i] ? "..." : "");
	return out;
}

static int bad(const char *name, int pfx, const char *why)
{
	char q[QUOTE_MAX + 4];

	return atrest__error(ATREST_EINVAL, "invalid %s \"%s\": %s",
		pfx ? "prefix" : "name", quote(q, name), why);
}

/*
 * The rules shared by names and prefixes.  In a prefix the last component
 * may be partial ("job-4" lists "job-42"), so "." or ".." or ".atrest" there
 * is the start of a valid name and only a finished component is judged.
 * pfx: s is a prefix.
 */
static int check(const char *s, int pfx)
{
	size_t len = strlen(s), start = 0;

	if (len > ATREST_NAME_MAX)
		return bad(s, pfx, "longer than 1024 bytes");
	if (s[0] == '/')
		return bad(s, pfx, "starts with \"/\"");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return bad(s, pfx, "contains a control character");
	}
	for (size_t i = 0; i <= len; i++) {
		size_t n = i - start;
		if (s[i] != '/' && s[i] != '\0')
			continue;
		if (n > COMPONENT_MAX)
			return bad(s, pfx, "a component is over 255 bytes");
		if (s[i] == '\0' && pfx)
			break;
		if (n == 0)
			return bad(s, pfx,
				s[i] ? "empty component (\"//\")" : "ends with \"/\"");
		if ((n == 1 && s[start] == '.') ||
			(n == 2 && s[start] == '.' && s[start + 1] == '.'))
			return bad(s, pfx, "\".\" or \"..\" component");
		if (start == 0 && n == 7 && memcmp(s, ".atrest", 7) == 0)
			return bad(s, pfx, "\".atrest\" is the store's own");
		start = i + 1;
	}
	return 0;
}

int atrest_name_check(const char *name)
{
	if (!name)
		return atrest__error(ATREST_EINVAL, "invalid name: NULL");
	if (!*name)
		return atrest__error(ATREST_EINVAL, "invalid name: empty");
	return check(name, 0);
}

int atrest__name_check_prefix(const char *prefix)
{
	if (!prefix || !*prefix)
		return 0;
	return check(prefix, 1);
}

static int tenant_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int atrest__tenant_check(const char *name)
{
	char q[QUOTE_MAX + 4];
	size_t n = name ? strlen(name) : 0;

	ENSURE(n >= 1 && n <= ATREST_TENANT_MAX, ATREST_EINVAL,
		"invalid tenant name: 1 to %d bytes", ATREST_TENANT_MAX);
	for (size_t i = 0; i < n; i++)
		ENSURE(tenant_char((unsigned char)name[i]) &&
				(i > 0 ||
					(name[0] != '.' && name[0] != '_' &&
						name[0] != '-')),
			ATREST_EINVAL,
			"invalid tenant name \"%s\": letters, digits, '.', '_' and '-' "
			"only, starting with a letter or digit",
			quote(q, name));
	return 0;
}

int atrest__internal_name_check(const char *name)
{
	ENSURE(name &&
			((strncmp(name, ".atrest/snap/", 13) == 0 && name[13]) ||
				(strncmp(name, ".atrest/uploads/", 16) == 0 && name[16])),
		ATREST_EINVAL, "not a name of the library's own objects");
	return check(name + 8, 0);
}
