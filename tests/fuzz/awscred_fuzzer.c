/*
 * Fuzz target: what AWS credentials parsing reads from files and the
 * network: the shared files' INI text, the container and instance
 * credentials JSON, and ISO 8601 times.
 */
#include <stdlib.h>
#include <string.h>

#include "awscred.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const sections[] = {"default", "profile dev", "dev", "a b"};
	static const char *const keys[] = {
		"aws_access_key_id", "region", "role_arn", "x"};
	char *s = malloc(size + 1), v[256];
	atrest__aws_keys k;
	int64_t t;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (int i = 0; i < 4; i++) {
		(void)atrest__aws_ini_has(s, size, sections[i]);
		for (int j = 0; j < 4; j++)
			if (atrest__aws_ini_get(
				    v, sizeof(v), s, size, sections[i], keys[j]) == 1 &&
				strlen(v) >= sizeof(v))
				abort();
	}
	(void)atrest__aws_parse_time(&t, s);
	if (atrest__aws_parse_credentials(&k, s, size) == 0) {
		if (!k.secret || !k.access_key[0])
			abort();
		atrest__aws_keys_clear(&k);
	}
	free(s);
	return 0;
}
