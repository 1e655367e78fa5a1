/*
 * Unit tests of AWS credentials, region and endpoints (src/lib/awscred.c):
 * environment, profiles of the shared files, container credentials and
 * IMDSv2 served by the in-process server of httpd.c, the order of the
 * chain, refresh before expiry, and malformed inputs.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "awscred.h"
#include "helpers.h"
#include "httpd.h"
#include "keyring.h"

static const char *const aws_vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
	"AWS_CONFIG_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_V1_DISABLED", "AWS_REGION",
	"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS",
	"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	"AWS_METADATA_SERVICE_TIMEOUT", "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
	"AWS_CA_BUNDLE", "ATREST_CA_BUNDLE", NULL};

static char dir[512];

static const char *last_msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e ? e->message : "";
}

static int setup(void **state)
{
	(void)state;
	for (int i = 0; aws_vars[i]; i++)
		unsetenv(aws_vars[i]);
	th_tmpdir(dir, sizeof(dir));
	setenv("HOME", dir, 1); /* never the real ~/.aws */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_rmrf(dir);
	return 0;
}

static void write_in(const char *name, const char *text)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(th_write_file(path, text, strlen(text)), 0);
}

static void use_file(const char *var, const char *name, const char *text)
{
	char path[700];

	write_in(name, text);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	setenv(var, path, 1);
}

/* Resolve with a profile (NULL: the default chain) and expect success. */
static void get_keys(atrest__aws_keys *k, const char *profile)
{
	atrest__awscred *c;

	assert_int_equal(atrest__awscred_new(&c, profile), 0);
	if (atrest__awscred_get(c, k, 0) != 0)
		fail_msg("no credentials: %s", last_msg());
	atrest__awscred_free(c);
}

static int get_fails(const char *profile)
{
	atrest__aws_keys k;
	atrest__awscred *c;
	int rc;

	assert_int_equal(atrest__awscred_new(&c, profile), 0);
	rc = atrest__awscred_get(c, &k, 0);
	assert_null(k.secret);
	atrest__awscred_free(c);
	return rc;
}

static void test_env(void **state)
{
	atrest__aws_keys k;

	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	get_keys(&k, NULL);
	assert_string_equal(k.access_key, "AKIDENV");
	assert_string_equal((char *)k.secret->data, "env-secret");
	assert_null(k.token);
	assert_int_equal(k.expires, 0);
	assert_string_equal(k.source, "environment");
	atrest__aws_keys_clear(&k);
	setenv("AWS_SESSION_TOKEN", "env-token", 1);
	get_keys(&k, NULL);
	assert_string_equal((char *)k.token->data, "env-token");
	atrest__aws_keys_clear(&k);
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(get_fails(NULL), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(
		last_msg(), "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"));
	assert_null(strstr(last_msg(), "env-token"));
}

static const char *creds_file = "# a comment\r\n"
				"[default]\r\n"
				"aws_access_key_id = AKIDDEFAULT\r\n"
				"aws_secret_access_key = default-secret\r\n"
				"\n"
				"[dev]\n"
				"aws_access_key_id=AKIDDEV\n"
				"; another comment\n"
				"aws_secret_access_key   =   dev/secret+with=signs  \n"
				"aws_session_token = dev-token\n"
				"[  spaced  ]\n"
				"aws_access_key_id = AKIDSPACED\n"
				"aws_secret_access_key = s\n";

static const char *config_file = "[default]\n"
				 "region = eu-west-3\n"
				 "[profile cfgonly]\n"
				 "s3 =\n"
				 "  aws_access_key_id = NESTED-NOT-THIS\n"
				 "aws_access_key_id : AKIDCFG\n"
				 "aws_secret_access_key : cfg-secret\n"
				 "region = ap-south-1\n"
				 "endpoint_url = https://kms.example.test:9443\n"
				 "[profile assume]\n"
				 "role_arn = arn:aws:iam::123456789012:role/x\n"
				 "source_profile = default\n"
				 "[profile  dev]\n"
				 "region = us-west-2\n";

static void test_profiles(void **state)
{
	atrest__aws_keys k;

	(void)state;
	use_file("AWS_SHARED_CREDENTIALS_FILE", "credentials", creds_file);
	use_file("AWS_CONFIG_FILE", "config", config_file);
	get_keys(&k, NULL);
	assert_string_equal(k.access_key, "AKIDDEFAULT");
	assert_string_equal((char *)k.secret->data, "default-secret");
	assert_string_equal(k.source, "profile default");
	atrest__aws_keys_clear(&k);
	setenv("AWS_PROFILE", "dev", 1);
	get_keys(&k, NULL);
	assert_string_equal(k.access_key, "AKIDDEV");
	assert_string_equal((char *)k.secret->data, "dev/secret+with=signs");
	assert_string_equal((char *)k.token->data, "dev-token");
	atrest__aws_keys_clear(&k);
	/* keys in the config file; nested lines are not the profile's */
	get_keys(&k, "cfgonly");
	assert_string_equal(k.access_key, "AKIDCFG");
	assert_string_equal((char *)k.secret->data, "cfg-secret");
	atrest__aws_keys_clear(&k);
	get_keys(&k, "spaced");
	assert_string_equal(k.access_key, "AKIDSPACED");
	atrest__aws_keys_clear(&k);
	/* env keys win over AWS_PROFILE, an explicit profile wins over them */
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	get_keys(&k, NULL);
	assert_string_equal(k.access_key, "AKIDENV");
	atrest__aws_keys_clear(&k);
	get_keys(&k, "dev");
	assert_string_equal(k.access_key, "AKIDDEV");
	atrest__aws_keys_clear(&k);
	/* unknown and unsupported profiles say so */
	assert_int_equal(get_fails("nosuch"), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(last_msg(), "AWS profile nosuch is in neither"));
	assert_int_equal(get_fails("assume"), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(last_msg(), "role_arn"));
	unsetenv("AWS_ACCESS_KEY_ID");
	setenv("AWS_PROFILE", "nosuch", 1);
	assert_int_equal(get_fails(NULL), ATREST_EUNAVAILABLE);
}

static void test_default_profile_missing(void **state)
{
	(void)state;
	/* No files, no env, metadata disabled: no credentials anywhere. */
	assert_int_equal(get_fails(NULL), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(last_msg(), "no AWS credentials"));
	/* ~/.aws/credentials is the default place */
	{
		char d[700];
		snprintf(d, sizeof(d), "%s/.aws", dir);
		assert_int_equal(mkdir(d, 0700), 0);
		write_in(".aws/credentials", creds_file);
	}
	atrest__aws_keys k;
	get_keys(&k, NULL);
	assert_string_equal(k.access_key, "AKIDDEFAULT");
	atrest__aws_keys_clear(&k);
}

static void test_region_endpoint(void **state)
{
	char v[256];

	(void)state;
	assert_int_equal(atrest__aws_region(v, sizeof(v), NULL), ATREST_ENOTFOUND);
	use_file("AWS_CONFIG_FILE", "config", config_file);
	assert_int_equal(atrest__aws_region(v, sizeof(v), NULL), 0);
	assert_string_equal(v, "eu-west-3");
	assert_int_equal(atrest__aws_region(v, sizeof(v), "cfgonly"), 0);
	assert_string_equal(v, "ap-south-1");
	setenv("AWS_PROFILE", "dev", 1);
	assert_int_equal(atrest__aws_region(v, sizeof(v), NULL), 0);
	assert_string_equal(v, "us-west-2");
	setenv("AWS_DEFAULT_REGION", "ca-central-1", 1);
	assert_int_equal(atrest__aws_region(v, sizeof(v), NULL), 0);
	assert_string_equal(v, "ca-central-1");
	setenv("AWS_REGION", "sa-east-1", 1);
	assert_int_equal(atrest__aws_region(v, sizeof(v), NULL), 0);
	assert_string_equal(v, "sa-east-1");

	assert_int_equal(atrest__aws_endpoint(v, sizeof(v), "KMS", NULL), 0);
	assert_int_equal(atrest__aws_endpoint(v, sizeof(v), "KMS", "cfgonly"), 1);
	assert_string_equal(v, "https://kms.example.test:9443");
	setenv("AWS_ENDPOINT_URL", "https://all.example.test", 1);
	assert_int_equal(atrest__aws_endpoint(v, sizeof(v), "KMS", "cfgonly"), 1);
	assert_string_equal(v, "https://all.example.test");
	setenv("AWS_ENDPOINT_URL_KMS", "https://127.0.0.1:8443", 1);
	assert_int_equal(atrest__aws_endpoint(v, sizeof(v), "kms", NULL), 1);
	assert_string_equal(v, "https://127.0.0.1:8443");
	setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "https://sm.example.test", 1);
	assert_int_equal(atrest__aws_endpoint(v, sizeof(v), "Secrets Manager", NULL), 1);
	assert_string_equal(v, "https://sm.example.test");
	setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE", 1);
	assert_int_equal(atrest__aws_endpoint(v, sizeof(v), "KMS", NULL), 0);
}

static void test_ini(void **state)
{
	char v[32];
	const char *t = "[a]\nk=1\n  k = nested\n[b]\n k=indented\nk = 2 \n[a]\nk=3\n"
			"[c]\nlong = 0123456789012345678901234567890123456789\n";

	(void)state;
	assert_int_equal(atrest__aws_ini_get(v, sizeof(v), t, strlen(t), "a", "k"), 1);
	assert_string_equal(v, "1");
	assert_int_equal(atrest__aws_ini_get(v, sizeof(v), t, strlen(t), "b", "K"), 1);
	assert_string_equal(v, "2");
	assert_int_equal(atrest__aws_ini_get(v, sizeof(v), t, strlen(t), "x", "k"), 0);
	assert_int_equal(atrest__aws_ini_get(v, sizeof(v), t, strlen(t), "a", "z"), 0);
	assert_int_equal(atrest__aws_ini_get(v, sizeof(v), t, strlen(t), "c", "long"),
		ATREST_EINVAL);
	assert_true(atrest__aws_ini_has(t, strlen(t), "b"));
	assert_false(atrest__aws_ini_has(t, strlen(t), "d"));
	assert_int_equal(atrest__aws_ini_get(v, sizeof(v), "[a", 2, "a", "k"), 0);
	assert_int_equal(atrest__aws_ini_get(v, sizeof(v), "", 0, "a", "k"), 0);
}

static void test_parse(void **state)
{
	char ok[] =
		"{\"Code\":\"Success\",\"AccessKeyId\":\"ASIAX\",\"SecretAccessKey\":"
		"\"s\\/e\\u0063ret\",\"Token\":\"tok\",\"Expiration\":\"2030-01-02T03:04:05Z\"}";
	char bad1[] = "{\"AccessKeyId\":\"ASIAX\"}";
	char bad2[] =
		"{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}";
	char bad3[] =
		"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Expiration\":\"soon\"}";
	char bad4[] =
		"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"SecretAccessKey\":\"t\"}";
	atrest__aws_keys k;
	int64_t t;

	(void)state;
	assert_int_equal(atrest__aws_parse_credentials(&k, ok, strlen(ok)), 0);
	assert_string_equal((char *)k.secret->data, "s/ecret");
	assert_string_equal((char *)k.token->data, "tok");
	assert_int_equal(k.expires, 1893553445);
	assert_null(strstr(ok, "u0063ret")); /* taken out of the text */
	atrest__aws_keys_clear(&k);
	assert_int_equal(
		atrest__aws_parse_credentials(&k, bad1, strlen(bad1)), ATREST_ENOTFOUND);
	assert_int_equal(
		atrest__aws_parse_credentials(&k, bad2, strlen(bad2)), ATREST_EINVAL);
	assert_int_equal(
		atrest__aws_parse_credentials(&k, bad3, strlen(bad3)), ATREST_EINVAL);
	assert_int_equal(
		atrest__aws_parse_credentials(&k, bad4, strlen(bad4)), ATREST_EINVAL);
	assert_int_equal(atrest__aws_parse_time(&t, "2030-01-02T03:04:05.123456Z"), 0);
	assert_int_equal(t, 1893553445);
	assert_int_equal(atrest__aws_parse_time(&t, "2030-01-02T03:04:05+00:00"), 0);
	assert_int_equal(
		atrest__aws_parse_time(&t, "2030-01-02T03:04:05+02:00"), ATREST_EINVAL);
	assert_int_equal(atrest__aws_parse_time(&t, "2030-01-02"), ATREST_EINVAL);
}

/* ---- container and instance metadata, served in process */

struct meta {
	pthread_mutex_t mu;
	int token_puts, role_gets, cred_gets, container_gets;
	int v1_only;    /* the token PUT answers 404 */
	int expires_in; /* Expiration, seconds from now */
	char want_auth[64];
};

static void creds_json(char *out, size_t cap, int expires_in, const char *ak)
{
	time_t t = time(NULL) + expires_in;
	struct tm tm;
	char exp[32];

	gmtime_r(&t, &tm);
	strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(out, cap,
		"{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"%s\","
		"\"SecretAccessKey\":\"meta-secret\",\"Token\":\"meta-token\","
		"\"Expiration\":\"%s\"}",
		ak, exp);
}

static int imds_token_ok(const struct meta *m, const th_http_req *req)
{
	char v[64];

	return m->v1_only ||
		(th_http_header(req, "X-aws-ec2-metadata-token", v, sizeof(v)) &&
			strcmp(v, "imds-session-token") == 0);
}

static void meta_handler(const th_http_req *req, th_http_resp *resp, void *arg)
{
	struct meta *m = arg;
	char v[128];

	pthread_mutex_lock(&m->mu);
	if (strcmp(req->method, "PUT") == 0 &&
		strcmp(req->target, "/latest/api/token") == 0) {
		m->token_puts++;
		if (m->v1_only ||
			!th_http_header(req, "X-aws-ec2-metadata-token-ttl-seconds", v,
				sizeof(v)))
			resp->status = m->v1_only ? 404 : 400;
		else
			snprintf(resp->body, sizeof(resp->body), "imds-session-token");
	} else if (strcmp(req->target, "/latest/meta-data/iam/security-credentials/") ==
		0) {
		m->role_gets++;
		if (!imds_token_ok(m, req))
			resp->status = 401;
		else
			snprintf(resp->body, sizeof(resp->body), "my-role\n");
	} else if (strcmp(req->target,
			   "/latest/meta-data/iam/security-credentials/my-role") == 0) {
		m->cred_gets++;
		if (!imds_token_ok(m, req))
			resp->status = 401;
		else
			creds_json(resp->body, sizeof(resp->body), m->expires_in,
				"ASIAIMDS");
	} else if (strcmp(req->target, "/v2/credentials/abc") == 0) {
		m->container_gets++;
		if (!th_http_header(req, "Authorization", v, sizeof(v)) ||
			strcmp(v, m->want_auth) != 0) {
			resp->status = 403;
			snprintf(resp->body, sizeof(resp->body),
				"{\"code\":\"AccessDenied\",\"message\":\"bad token\"}");
		} else {
			creds_json(resp->body, sizeof(resp->body), m->expires_in,
				"ASIACONT");
		}
	} else {
		resp->status = 404;
	}
	pthread_mutex_unlock(&m->mu);
}

static th_httpd *meta_start(struct meta *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	m->expires_in = 3600;
	snprintf(m->want_auth, sizeof(m->want_auth), "container-auth-token");
	return th_httpd_start(meta_handler, m);
}

static void test_container(void **state)
{
	struct meta m;
	th_httpd *d = meta_start(&m);
	atrest__awscred *c;
	atrest__aws_keys k;
	char url[128];

	(void)state;
	th_httpd_url(url, sizeof(url), d, "/v2/credentials/abc");
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "container-auth-token", 1);
	assert_int_equal(atrest__awscred_new(&c, NULL), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atrest__awscred_get(c, &k, 0), 0);
		assert_string_equal(k.access_key, "ASIACONT");
		assert_string_equal((char *)k.secret->data, "meta-secret");
		assert_string_equal((char *)k.token->data, "meta-token");
		assert_string_equal(k.source, "container");
		assert_true(k.expires > atrest__now() + 3000);
		atrest__aws_keys_clear(&k);
	}
	assert_int_equal(m.container_gets, 1); /* cached while they last */
	/* force: the service refused them */
	assert_int_equal(atrest__awscred_get(c, &k, 1), 0);
	atrest__aws_keys_clear(&k);
	assert_int_equal(m.container_gets, 2);
	atrest__awscred_free(c);
	/* close to expiry: asked again each time */
	m.expires_in = 300;
	assert_int_equal(atrest__awscred_new(&c, NULL), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(atrest__awscred_get(c, &k, 0), 0);
		atrest__aws_keys_clear(&k);
	}
	assert_int_equal(m.container_gets, 4);
	assert_int_equal(atrest__awscred_fetches(c), 2);
	atrest__awscred_free(c);
	/* the token from a file; a wrong one is refused */
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	use_file("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "tokfile",
		"container-auth-token\n");
	get_keys(&k, NULL);
	atrest__aws_keys_clear(&k);
	use_file("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "tokfile", "wrong-token");
	assert_int_equal(get_fails(NULL), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(last_msg(), "HTTP 403"));
	assert_null(strstr(last_msg(), "wrong-token"));
	/* plain http only to loopback and the ECS/EKS addresses */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds", 1);
	assert_int_equal(get_fails(NULL), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(last_msg(), "must be https://"));
	/* a profile comes before container credentials */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	use_file("AWS_SHARED_CREDENTIALS_FILE", "credentials", creds_file);
	get_keys(&k, NULL);
	assert_string_equal(k.source, "profile default");
	atrest__aws_keys_clear(&k);
	th_httpd_stop(d);
	pthread_mutex_destroy(&m.mu);
}

static void test_imds(void **state)
{
	struct meta m;
	th_httpd *d = meta_start(&m);
	atrest__aws_keys k;
	char url[128];

	(void)state;
	th_httpd_url(url, sizeof(url), d, "/");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	get_keys(&k, NULL);
	assert_string_equal(k.access_key, "ASIAIMDS");
	assert_string_equal(k.source, "instance metadata");
	atrest__aws_keys_clear(&k);
	assert_int_equal(m.token_puts, 1); /* IMDSv2: the token first */
	assert_int_equal(m.role_gets, 1);
	assert_int_equal(m.cred_gets, 1);
	/* IMDSv1 when the token call is not there, unless that is disabled */
	m.v1_only = 1;
	get_keys(&k, NULL);
	atrest__aws_keys_clear(&k);
	assert_int_equal(m.cred_gets, 2);
	setenv("AWS_EC2_METADATA_V1_DISABLED", "true", 1);
	assert_int_equal(get_fails(NULL), ATREST_EUNAVAILABLE);
	unsetenv("AWS_EC2_METADATA_V1_DISABLED");
	/* disabled: not asked */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	assert_int_equal(get_fails(NULL), ATREST_EUNAVAILABLE);
	assert_int_equal(m.cred_gets, 2);
	th_httpd_stop(d);
	pthread_mutex_destroy(&m.mu);
	/* unreachable: a clear "no credentials", soon */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	time_t t0 = time(NULL);
	assert_int_equal(get_fails(NULL), ATREST_EUNAVAILABLE);
	assert_non_null(strstr(last_msg(), "no AWS credentials"));
	assert_true(time(NULL) - t0 < 10);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_env),
		T(test_profiles),
		T(test_default_profile_missing),
		T(test_region_endpoint),
		T(test_ini),
		T(test_parse),
		T(test_container),
		T(test_imds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
