/*
 * AWS credentials, region and endpoints (awscred.h): the shared files'
 * INI reader, the environment and profile sources, the container and
 * instance-metadata services, and the cache that refreshes them.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "awscred.h"
#include "buf.h"
#include "http.h"
#include "json_secret.h"
#include "keyring.h"

#define FILE_MAX (1 << 20)
#define REFRESH_BEFORE 600 /* seconds of lifetime left that trigger a refresh */

struct atrest__awscred {
	pthread_mutex_t mu;
	char profile[128];
	int explicit_profile;
	atrest__aws_keys cur;
	int have;
	unsigned long fetches;
	atrest__http *meta; /* container and instance metadata, made on first need */
};

void atrest__aws_keys_clear(atrest__aws_keys *k)
{
	atrest__secret_free(k->secret);
	atrest__secret_free(k->token);
	memset(k, 0, sizeof(*k));
}

static int keys_copy(atrest__aws_keys *dst, const atrest__aws_keys *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst->access_key, src->access_key, sizeof(dst->access_key));
	memcpy(dst->source, src->source, sizeof(dst->source));
	dst->expires = src->expires;
	GUARD(atrest__secret_dup(&dst->secret, src->secret->data, src->secret->len + 1));
	dst->secret->len = src->secret->len;
	if (src->token) {
		int rc = atrest__secret_dup(
			&dst->token, src->token->data, src->token->len + 1);
		if (rc < 0) {
			atrest__aws_keys_clear(dst);
			return rc;
		}
		dst->token->len = src->token->len;
	}
	return 0;
}

/* A NUL-terminated secret holding n bytes of s. */
static int secret_str(atrest__secret **out, const char *s, size_t n)
{
	GUARD(atrest__secret_new(out, n + 1));
	memcpy((*out)->data, s, n);
	(*out)->data[n] = '\0';
	(*out)->len = n;
	return 0;
}

static int env_true(const char *name)
{
	const char *v = getenv(name);

	return v && strcasecmp(v, "true") == 0;
}

/* ---- the shared files */

static int is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* [start, end) trimmed of blanks. */
static void trim(const char *t, size_t *start, size_t *end)
{
	while (*start < *end && is_blank((unsigned char)t[*start]))
		(*start)++;
	while (*end > *start && is_blank((unsigned char)t[*end - 1]))
		(*end)--;
}

/* Is the header text t[s..e) the section name, white space runs counting as one? */
static int section_is(const char *t, size_t s, size_t e, const char *name)
{
	size_t k = 0;

	trim(t, &s, &e);
	while (s < e) {
		char c = is_blank((unsigned char)t[s]) ? ' ' : t[s];

		if (name[k] == '\0' || name[k++] != c)
			return 0;
		if (c != ' ')
			s++;
		while (c == ' ' && s < e && is_blank((unsigned char)t[s]))
			s++;
	}
	return name[k] == '\0';
}

/*
 * Find key in [section]: 1 with the value span, 0 when absent.  *has tells
 * whether the section exists at all.
 */
static int ini_find(const char *t, size_t n, const char *section, const char *key,
	size_t *vs, size_t *ve, int *has)
{
	int in = 0;

	*has = 0;
	for (size_t i = 0; i < n;) {
		size_t eol = i, s = i, e;

		while (eol < n && t[eol] != '\n')
			eol++;
		e = eol;
		if (s < e && !is_blank((unsigned char)t[s])) { /* indented: nested */
			trim(t, &s, &e);
			if (t[s] == '[') {
				const char *close = memchr(t + s, ']', e - s);
				in = close &&
					section_is(
						t, s + 1, (size_t)(close - t), section);
				*has |= in;
			} else if (in && t[s] != '#' && t[s] != ';') {
				size_t d = s, ks = s, ke;
				while (d < e && t[d] != '=' && t[d] != ':')
					d++;
				ke = d;
				trim(t, &ks, &ke);
				if (d < e && ke - ks == strlen(key) &&
					strncasecmp(t + ks, key, ke - ks) == 0) {
					*vs = d + 1;
					*ve = e;
					trim(t, vs, ve);
					return 1;
				}
			}
		}
		i = eol + 1;
	}
	return 0;
}

int atrest__aws_ini_get(char *out, size_t cap, const char *text, size_t len,
	const char *section, const char *key)
{
	size_t vs, ve;
	int has;

	out[0] = '\0';
	if (!ini_find(text, len, section, key, &vs, &ve, &has))
		return 0;
	ENSURE(ve - vs < cap && !memchr(text + vs, '\0', ve - vs), ATREST_EINVAL,
		"AWS shared file: the value of %s in [%s] is too long", key, section);
	memcpy(out, text + vs, ve - vs);
	out[ve - vs] = '\0';
	return 1;
}

int atrest__aws_ini_has(const char *text, size_t len, const char *section)
{
	size_t vs, ve;
	int has;

	ini_find(text, len, section, "\n", &vs, &ve, &has);
	return has;
}

/* A secret value of [section] (NULL when absent). */
static int ini_secret(atrest__secret **out, const atrest__secret *file,
	const char *section, const char *key)
{
	size_t vs, ve;
	int has;

	*out = NULL;
	if (!file ||
		!ini_find((const char *)file->data, file->len, section, key, &vs, &ve,
			&has) ||
		ve == vs)
		return 0;
	return secret_str(out, (const char *)file->data + vs, ve - vs);
}

static const char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd *pw;

	if (h && *h)
		return h;
	pw = getpwuid(getuid());
	return pw ? pw->pw_dir : "/";
}

/* The path of a shared file: the variable, or ~/.aws/<name>. */
static void shared_path(char *out, size_t cap, const char *var, const char *name)
{
	const char *v = getenv(var);

	if (v && *v) {
		if (v[0] == '~' && v[1] == '/')
			snprintf(out, cap, "%s%s", home_dir(), v + 1);
		else
			snprintf(out, cap, "%s", v);
	} else {
		snprintf(out, cap, "%s/.aws/%s", home_dir(), name);
	}
}

/* The whole file into locked memory; *out NULL when it does not exist. */
static int read_shared(atrest__secret **out, const char *var, const char *name)
{
	char path[1024];
	size_t got = 0;
	int fd;

	*out = NULL;
	shared_path(path, sizeof(path), var, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR
			? 0
			: atrest__error_os(ATREST_EUNAVAILABLE, errno,
				  "cannot open the AWS %s file %s", name, path);
	if (atrest__secret_new(out, FILE_MAX) < 0) {
		close(fd);
		return ATREST_ERROR;
	}
	for (;;) {
		ssize_t n = read(fd, (*out)->data + got, FILE_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	(*out)->len = got;
	return 0;
}

/* The config file's section of a profile. */
static void config_section(char *out, size_t cap, const char *profile)
{
	snprintf(out, cap, "%s%s", strcmp(profile, "default") ? "profile " : "", profile);
}

/* ---- environment and profile */

static int from_env(atrest__aws_keys *k)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"),
		   *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN");

	if ((!ak || !*ak) && (!sk || !*sk))
		return 0;
	ENSURE(ak && *ak && sk && *sk, ATREST_EUNAVAILABLE,
		"%s is set but %s is not: set both, or neither",
		ak && *ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		ak && *ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	ENSURE(strlen(ak) < sizeof(k->access_key), ATREST_EUNAVAILABLE,
		"AWS_ACCESS_KEY_ID is too long");
	snprintf(k->access_key, sizeof(k->access_key), "%s", ak);
	GUARD(secret_str(&k->secret, sk, strlen(sk)));
	if (tok && *tok)
		GUARD(secret_str(&k->token, tok, strlen(tok)));
	snprintf(k->source, sizeof(k->source), "environment");
	return 1;
}

/* What a profile without keys uses instead, named in the message. */
static const char *unsupported_source(const atrest__secret *cfg, const char *section)
{
	static const char *const keys[] = {"role_arn", "credential_process",
		"sso_session", "sso_start_url", "web_identity_token_file", NULL};
	char v[8];

	for (int i = 0; cfg && keys[i]; i++)
		if (atrest__aws_ini_get(v, sizeof(v), (const char *)cfg->data, cfg->len,
			    section, keys[i]) != 0)
			return keys[i];
	return NULL;
}

/* Keys of [section] of one file: 1 when found. */
static int keys_in(atrest__aws_keys *k, const atrest__secret *f, const char *section,
	const char *source)
{
	atrest__secret *ak = NULL;
	int rc;

	GUARD(ini_secret(&ak, f, section, "aws_access_key_id"));
	if (!ak)
		return 0;
	rc = ak->len < sizeof(k->access_key)
		? 0
		: atrest__error(ATREST_EUNAVAILABLE,
			  "AWS %s: aws_access_key_id is too long", source);
	if (rc == 0) {
		memcpy(k->access_key, ak->data, ak->len + 1);
		rc = ini_secret(&k->secret, f, section, "aws_secret_access_key");
	}
	atrest__secret_free(ak);
	GUARD(rc);
	ENSURE(k->secret, ATREST_EUNAVAILABLE,
		"AWS %s has aws_access_key_id but no aws_secret_access_key", source);
	GUARD(ini_secret(&k->token, f, section, "aws_session_token"));
	snprintf(k->source, sizeof(k->source), "%s", source);
	return 1;
}

static int from_profile(const atrest__awscred *c, atrest__aws_keys *k)
{
	atrest__secret *cred = NULL, *cfg = NULL;
	char section[160], source[160];
	const char *other;
	int rc, has;

	GUARD_OUT(read_shared(&cred, "AWS_SHARED_CREDENTIALS_FILE", "credentials"));
	GUARD_OUT(read_shared(&cfg, "AWS_CONFIG_FILE", "config"));
	snprintf(source, sizeof(source), "profile %s", c->profile);
	GUARD_OUT(keys_in(k, cred, c->profile, source));
	config_section(section, sizeof(section), c->profile);
	if (rc == 0)
		GUARD_OUT(keys_in(k, cfg, section, source));
	if (rc == 0 && strcmp(c->profile, "default") == 0)
		GUARD_OUT(keys_in(k, cfg, "profile default", source));
	if (rc == 1)
		goto out;
	has = (cred &&
		      atrest__aws_ini_has(
			      (const char *)cred->data, cred->len, c->profile)) ||
		(cfg && atrest__aws_ini_has((const char *)cfg->data, cfg->len, section));
	other = has ? unsupported_source(cfg, section) : NULL;
	ENSURE_OUT(!other, ATREST_EUNAVAILABLE,
		"AWS profile %s takes its credentials from %s, which atrest does not "
		"support: give the profile keys, or use the environment, container or "
		"instance credentials",
		c->profile, other);
	ENSURE_OUT(has || (!c->explicit_profile && strcmp(c->profile, "default") == 0),
		ATREST_EUNAVAILABLE,
		"AWS profile %s is in neither the credentials nor the config file",
		c->profile);
out:
	atrest__secret_free(cred);
	atrest__secret_free(cfg);
	return rc;
}

/* ---- container and instance metadata */

int atrest__aws_parse_time(int64_t *out, const char *s)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	*out = 0;
	if (!p)
		return ATREST_EINVAL;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p);)
			p++;
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0 && strcmp(p, "UTC") != 0)
		return ATREST_EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int atrest__aws_parse_credentials(atrest__aws_keys *out, char *json, size_t len)
{
	static const char *const p_secret[] = {"SecretAccessKey", NULL};
	static const char *const p_token[] = {"Token", NULL};
	const char *ak, *exp, *code;
	json_t *j = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = atrest__json_take(&out->secret, json, len, p_secret);
	if (rc == 0) {
		rc = atrest__json_take(&out->token, json, len, p_token);
		rc = rc == ATREST_ENOTFOUND ? 0 : rc;
	}
	if (rc == 0 && !(j = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL)))
		rc = ATREST_EINVAL;
	ak = json_string_value(json_object_get(j, "AccessKeyId"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	code = json_string_value(json_object_get(j, "Code"));
	if (rc == 0 &&
		(!ak || !*ak || strlen(ak) >= sizeof(out->access_key) ||
			(code && strcmp(code, "Success") != 0) ||
			(exp && atrest__aws_parse_time(&out->expires, exp) < 0) ||
			out->secret->len == 0))
		rc = ATREST_EINVAL;
	if (rc == 0)
		snprintf(out->access_key, sizeof(out->access_key), "%s", ak);
	json_decref(j);
	if (rc < 0)
		atrest__aws_keys_clear(out);
	return rc;
}

static long env_seconds_ms(const char *name, long def)
{
	const char *v = getenv(name);
	long s = v && *v ? atol(v) : 0;

	return s > 0 && s <= 60 ? s * 1000 : def;
}

static int meta_client(atrest__awscred *c)
{
	long t = env_seconds_ms("AWS_METADATA_SERVICE_TIMEOUT", 1000);
	const char *na = getenv("AWS_METADATA_SERVICE_NUM_ATTEMPTS");
	int attempts = na && atoi(na) > 0 && atoi(na) <= 10 ? atoi(na) : 2;
	atrest__http_opts o = {.service = "AWS credentials",
		.ca_env = "AWS_CA_BUNDLE",
		.connect_ms = t,
		.attempt_ms = t,
		.total_ms = (t + 200) * attempts + 500,
		.max_attempts = attempts,
		.backoff_ms = 100,
		.max_response = 65536};

	if (c->meta)
		return 0;
	return atrest__http_new(&c->meta, &o);
}

/* GET/PUT a metadata URL; 0 with the response, whatever its status. */
static int meta_call(atrest__awscred *c, const char *method, const char *url,
	const char *hdr_name, const char *hdr_value, int secret, atrest__http_resp *resp,
	const char *what)
{
	atrest__http_req req = {.method = method,
		.url = url,
		.what = what,
		.plain_http = 1,
		.no_proxy = 1,
		.secret_response = secret};
	int rc;

	GUARD(meta_client(c));
	if (hdr_name)
		atrest__http_hdrs_add(&req.headers, hdr_name, "%s", hdr_value);
	rc = atrest__http_do(c->meta, &req, resp);
	atrest__http_hdrs_free(&req.headers);
	return rc;
}

/* Credentials JSON of a 200 response into k. */
static int take_credentials(
	atrest__aws_keys *k, atrest__http_resp *resp, const char *source)
{
	int rc = atrest__aws_parse_credentials(k, resp->body.data, resp->body.len);

	ENSURE(rc == 0, ATREST_EUNAVAILABLE,
		"AWS %s credentials: the response is not the expected credentials JSON",
		source);
	snprintf(k->source, sizeof(k->source), "%s", source);
	return 0;
}

/* Hosts the AWS SDKs let container credentials come from over plain http. */
static int container_http_ok(const char *url)
{
	static const char *const hosts[] = {"http://169.254.170.2/",
		"http://169.254.170.2:", "http://169.254.170.23/",
		"http://169.254.170.23:", "http://[fd00:ec2::23]", NULL};

	if (atrest__http_is_loopback(url))
		return 1;
	for (int i = 0; hosts[i]; i++)
		if (strncasecmp(url, hosts[i], strlen(hosts[i])) == 0)
			return 1;
	return 0;
}

/* 1 with the URL when container credentials are configured, 0 when not. */
static int container_url(char *out, size_t cap)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");

	if (rel && *rel) {
		snprintf(out, cap, "http://169.254.170.2%s%s", rel[0] == '/' ? "" : "/",
			rel);
		return 1;
	}
	if (!full || !*full)
		return 0;
	ENSURE(strncasecmp(full, "https://", 8) == 0 ||
			(strncasecmp(full, "http://", 7) == 0 && container_http_ok(full)),
		ATREST_EUNAVAILABLE,
		"AWS_CONTAINER_CREDENTIALS_FULL_URI must be https://, or http:// to a "
		"loopback or ECS/EKS link-local address");
	snprintf(out, cap, "%s", full);
	return 1;
}

static int from_container(atrest__awscred *c, atrest__aws_keys *k)
{
	const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	atrest__secret *auth = NULL;
	atrest__http_resp resp;
	char url[2048];
	int rc;

	memset(&resp, 0, sizeof(resp));
	GUARD(rc = container_url(url, sizeof(url)));
	if (rc == 0)
		return 0;
	if (file && *file)
		GUARD(atrest__secret_read_file(
			&auth, file, 16384, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
	else if (tok && *tok)
		GUARD(secret_str(&auth, tok, strlen(tok)));
	GUARD_OUT(meta_call(c, "GET", url, auth ? "Authorization" : NULL,
		auth ? (const char *)auth->data : NULL, 1, &resp,
		"container credentials"));
	if (!atrest__http_ok(&resp)) {
		rc = atrest__http_fail(c->meta,
			&(atrest__http_req){
				.method = "GET", .what = "container credentials"},
			&resp, ATREST_EUNAVAILABLE,
			"check AWS_CONTAINER_CREDENTIALS_* and the authorization token");
		goto out;
	}
	GUARD_OUT(take_credentials(k, &resp, "container"));
	rc = 1;
out:
	atrest__secret_free(auth);
	atrest__http_resp_free(&resp);
	return rc;
}

static void imds_base(char *out, size_t cap)
{
	const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *mode = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	size_t n;

	if (ep && *ep)
		snprintf(out, cap, "%s", ep);
	else if (mode && strcasecmp(mode, "IPv6") == 0)
		snprintf(out, cap, "http://[fd00:ec2::254]");
	else
		snprintf(out, cap, "http://169.254.169.254");
	n = strlen(out);
	while (n > 0 && out[n - 1] == '/')
		out[--n] = '\0';
}

#define IMDS_NONE                                                                  \
	"no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or " \
	"AWS_PROFILE, or run with a container or instance role"

/* The IMDSv2 session token (NULL to go on with IMDSv1 where allowed). */
static int imds_token(atrest__awscred *c, const char *base, atrest__secret **tok)
{
	atrest__http_resp resp;
	char url[1100];
	int rc;

	*tok = NULL;
	snprintf(url, sizeof(url), "%s/latest/api/token", base);
	rc = meta_call(c, "PUT", url, "X-aws-ec2-metadata-token-ttl-seconds", "21600", 1,
		&resp, "instance metadata token");
	if (rc == ATREST_EUNAVAILABLE)
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"%s (instance metadata at %s: %s)", IMDS_NONE, base,
			resp.msg[0] ? resp.msg : "not reachable");
	else if (rc == 0 && atrest__http_ok(&resp) && resp.body.len > 0)
		rc = secret_str(tok, resp.body.data, resp.body.len);
	else if (rc == 0 && (resp.status == 404 || resp.status == 405) &&
		!env_true("AWS_EC2_METADATA_V1_DISABLED"))
		rc = 0; /* IMDSv1 only */
	else if (rc == 0)
		rc = atrest__http_fail(c->meta,
			&(atrest__http_req){
				.method = "PUT", .what = "instance metadata token"},
			&resp, ATREST_EUNAVAILABLE, NULL);
	atrest__http_resp_free(&resp);
	return rc;
}

static int imds_get(atrest__awscred *c, const char *url, const atrest__secret *tok,
	atrest__http_resp *resp, const char *what)
{
	int rc = meta_call(c, "GET", url, tok ? "X-aws-ec2-metadata-token" : NULL,
		tok ? (const char *)tok->data : NULL, 1, resp, what);

	if (rc == 0 && !atrest__http_ok(resp))
		rc = atrest__http_fail(c->meta,
			&(atrest__http_req){.method = "GET", .what = what}, resp,
			ATREST_EUNAVAILABLE,
			resp->status == 404 ? "the instance has no IAM role" : NULL);
	return rc;
}

static int from_imds(atrest__awscred *c, atrest__aws_keys *k)
{
	atrest__secret *tok = NULL;
	atrest__http_resp resp;
	char base[1024], url[1400], role[256];
	int rc;

	memset(&resp, 0, sizeof(resp));
	imds_base(base, sizeof(base));
	GUARD(imds_token(c, base, &tok));
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", base);
	GUARD_OUT(imds_get(c, url, tok, &resp, "instance role"));
	snprintf(role, sizeof(role), "%.*s", (int)strcspn(resp.body.data, "\r\n"),
		resp.body.data);
	ENSURE_OUT(role[0] && !strpbrk(role, "/?#%"), ATREST_EUNAVAILABLE,
		"AWS instance metadata names no usable IAM role");
	atrest__http_resp_free(&resp);
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s",
		base, role);
	GUARD_OUT(imds_get(c, url, tok, &resp, "instance credentials"));
	GUARD_OUT(take_credentials(k, &resp, "instance metadata"));
	rc = 1;
out:
	atrest__secret_free(tok);
	atrest__http_resp_free(&resp);
	return rc;
}

/* ---- the chain */

static int resolve(atrest__awscred *c, atrest__aws_keys *k)
{
	int rc = 0;

	memset(k, 0, sizeof(*k));
	if (!c->explicit_profile)
		rc = from_env(k);
	if (rc == 0)
		rc = from_profile(c, k);
	if (rc == 0)
		rc = from_container(c, k);
	if (rc == 0 && !env_true("AWS_EC2_METADATA_DISABLED"))
		rc = from_imds(c, k);
	if (rc == 0)
		rc = atrest__error(ATREST_EUNAVAILABLE, "%s", IMDS_NONE);
	if (rc < 0)
		atrest__aws_keys_clear(k);
	return rc < 0 ? rc : 0;
}

int atrest__awscred_new(atrest__awscred **out, const char *profile)
{
	atrest__awscred *c;
	const char *env = getenv("AWS_PROFILE");

	*out = NULL;
	c = calloc(1, sizeof(*c));
	ENSURE(c, ATREST_ERROR, "out of memory");
	c->explicit_profile = profile && *profile;
	if (!c->explicit_profile)
		profile = env && *env ? env : "default";
	if (strlen(profile) >= sizeof(c->profile) || strpbrk(profile, "[]\n")) {
		free(c);
		return atrest__error(ATREST_EKEY, "not a usable AWS profile name");
	}
	snprintf(c->profile, sizeof(c->profile), "%s", profile);
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

void atrest__awscred_free(atrest__awscred *c)
{
	if (!c)
		return;
	atrest__aws_keys_clear(&c->cur);
	atrest__http_free(c->meta);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int atrest__awscred_get(atrest__awscred *c, atrest__aws_keys *out, int force)
{
	atrest__aws_keys fresh;
	int64_t now = atrest__now();
	int rc = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->mu);
	if (!c->have || force ||
		(c->cur.expires && c->cur.expires - now < REFRESH_BEFORE)) {
		rc = resolve(c, &fresh);
		if (rc == 0) {
			atrest__aws_keys_clear(&c->cur);
			c->cur = fresh;
			c->have = 1;
			c->fetches++;
		} else if (c->have && !force && c->cur.expires > now) {
			rc = 0; /* the old ones still last */
			atrest_error_clear();
		}
	}
	if (rc == 0)
		rc = keys_copy(out, &c->cur);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

unsigned long atrest__awscred_fetches(atrest__awscred *c)
{
	unsigned long n;

	pthread_mutex_lock(&c->mu);
	n = c->fetches;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* ---- region and endpoints */

/* A value of the config file's section for the profile (1 found). */
static int config_value(char *out, size_t cap, const char *profile, const char *key)
{
	atrest__secret *cfg = NULL;
	char section[160];
	const char *env = getenv("AWS_PROFILE");
	int rc;

	if (!profile || !*profile)
		profile = env && *env ? env : "default";
	GUARD(read_shared(&cfg, "AWS_CONFIG_FILE", "config"));
	if (!cfg)
		return 0;
	config_section(section, sizeof(section), profile);
	rc = atrest__aws_ini_get(
		out, cap, (const char *)cfg->data, cfg->len, section, key);
	if (rc == 0 && strcmp(profile, "default") == 0)
		rc = atrest__aws_ini_get(out, cap, (const char *)cfg->data, cfg->len,
			"profile default", key);
	atrest__secret_free(cfg);
	return rc;
}

int atrest__aws_region(char *out, size_t cap, const char *profile)
{
	const char *names[] = {"AWS_REGION", "AWS_DEFAULT_REGION"};

	for (int i = 0; i < 2; i++) {
		const char *v = getenv(names[i]);
		if (v && *v && strlen(v) < cap) {
			snprintf(out, cap, "%s", v);
			return 0;
		}
	}
	if (config_value(out, cap, profile, "region") == 1 && *out)
		return 0;
	return atrest__error(ATREST_ENOTFOUND,
		"no AWS region: set AWS_REGION, the profile's region, or give it in the URI");
}

int atrest__aws_endpoint(
	char *out, size_t cap, const char *service_id, const char *profile)
{
	char name[128];
	const char *v;
	size_t n;

	if (env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"))
		return 0;
	n = (size_t)snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s", service_id);
	for (size_t i = 17; i < n && i < sizeof(name); i++)
		name[i] = name[i] == ' ' ? '_' : (char)toupper((unsigned char)name[i]);
	v = getenv(name);
	if (!v || !*v)
		v = getenv("AWS_ENDPOINT_URL");
	if (v && *v) {
		ENSURE(strlen(v) < cap, ATREST_EKEY, "%s is too long", name);
		snprintf(out, cap, "%s", v);
		return 1;
	}
	return config_value(out, cap, profile, "endpoint_url") == 1 && *out;
}
