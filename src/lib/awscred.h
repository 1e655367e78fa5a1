/*
 * AWS credentials, region and endpoints found the way the AWS CLI and SDKs
 * find them: the environment, a profile of the shared credentials and
 * config files, container credentials (ECS, EKS Pod Identity) and EC2
 * instance metadata (IMDSv2), refreshed before they expire.  Secrets live
 * in atrest__secret memory.  Used by the AWS KMS provider and the S3
 * backend.
 */
#ifndef ATREST_AWSCRED_H
#define ATREST_AWSCRED_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "secret.h"

/* One set of credentials (a copy owned by the caller). */
typedef struct atrest__aws_keys {
	char access_key[128];
	atrest__secret *secret; /* secret access key, NUL-terminated */
	atrest__secret *token;  /* session token, NUL-terminated; NULL when none */
	int64_t expires;        /* atrest__now() seconds; 0: they do not expire */
	char source[96];        /* "environment", "profile NAME", "container", ... */
} atrest__aws_keys;

void atrest__aws_keys_clear(atrest__aws_keys *k);

typedef struct atrest__awscred atrest__awscred;

/*
 * A credential chain.  profile NULL takes AWS_PROFILE (or "default") and
 * tries the environment's keys first; a profile given here (a key URI's
 * profile=) is explicit and skips them, as --profile does.
 */
int atrest__awscred_new(atrest__awscred **out, const char *profile);
void atrest__awscred_free(atrest__awscred *c);

/*
 * A copy of the current credentials, resolved on first use and again when
 * less than 10 minutes of their lifetime are left (the old ones are kept
 * while they last if that fails), or at once with force (the service
 * refused them).  ATREST_EUNAVAILABLE, saying where atrest looked, when
 * no source has credentials.
 */
int atrest__awscred_get(atrest__awscred *c, atrest__aws_keys *out, int force);
/* How many times credentials were resolved (for tests and logs). */
unsigned long atrest__awscred_fetches(atrest__awscred *c);

/*
 * The region: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region
 * in the config file.  0 and the region, or ATREST_ENOTFOUND.
 */
int atrest__aws_region(char *out, size_t cap, const char *profile);

/*
 * An endpoint override for a service (its SDK id, e.g. "KMS", "S3"):
 * AWS_ENDPOINT_URL_<ID> (upper case, spaces as underscores), then
 * AWS_ENDPOINT_URL, then the profile's endpoint_url; none when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true.  1 when found, 0 when not.
 */
int atrest__aws_endpoint(
	char *out, size_t cap, const char *service_id, const char *profile);

/*
 * The value of key in [section] of an AWS shared file's text (INI as the
 * AWS CLI reads it: "key = value" lines, '#' and ';' comments, indented
 * lines nested under the key above).  1 with the trimmed value, 0 when
 * absent, ATREST_EINVAL when it does not fit in cap.  The config file
 * names profiles "[profile NAME]" (and "[default]"), the credentials file
 * "[NAME]".
 */
int atrest__aws_ini_get(char *out, size_t cap, const char *text, size_t len,
	const char *section, const char *key);
/* 1 when [section] exists in the text. */
int atrest__aws_ini_has(const char *text, size_t len, const char *section);

/*
 * The credentials JSON of the container and instance-metadata services
 * ({"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}), from a
 * locked body that this modifies (secrets are taken out first).
 */
int atrest__aws_parse_credentials(atrest__aws_keys *out, char *json, size_t len);
/* An ISO 8601 UTC time ("2024-05-01T12:00:00Z", fractions and +00:00 allowed). */
int atrest__aws_parse_time(int64_t *out, const char *s);

#endif
