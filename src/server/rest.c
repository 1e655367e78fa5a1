/*
 * The REST API's table and everything but the checkpoints themselves:
 * authentication (Bearer or X-API-Key), JSON errors, /healthz, /readyz,
 * /metrics and the admin routes of /v1/keys.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "apikeys.h"
#include "body.h"
#include "events.h"
#include "metrics.h"
#include "rest_int.h"

static struct MHD_Response *render_error(
	struct http_req *req, unsigned status, const char *code, const char *message)
{
	json_t *j = json_pack("{s:s,s:s}", "error", message, "code", code);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	struct MHD_Response *resp = NULL;

	json_decref(j);
	if (text) {
		size_t n = strlen(text);

		text[n] = '\n'; /* replaces the NUL: the body is counted */
		resp = http_response_buffer(text, n + 1);
		if (resp)
			http_response_header(
				resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
		free(text);
	}
	return resp;
}

void rest_json(struct http_req *req, unsigned status, json_t *j)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!text) {
		http_error(req, 500, "internal_error", "out of memory");
		return;
	}
	http_respond_text(req, status, "application/json", text, strlen(text));
	free(text);
}

void rest_iso_time(char out[32], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void rest_lib_error(struct http_req *req, int code, const char *what)
{
	struct http_status s = http_status_of(code);
	const atrest_error *e = atrest_error_last();

	if (s.status >= 500 || s.status == 422)
		srv_event("store_error", "what=%s status=%u reason=\"%s\"", what,
			s.status,
			e && e->code == code ? e->message : atrest_strerror(code));
	/* Bad names and prefixes are the client's own: their reason helps. */
	if (code == ATREST_EINVAL && e && e->code == code)
		http_error(req, s.status, s.code, "%s", e->message);
	else
		http_error(req, s.status, s.code, "%s", http_public_message(code));
}

static void release_tenant(void *ref)
{
	srv_tenant_release(ref);
}

int rest_store(atrest_store **out, struct http_req *req)
{
	struct srv_rest *r = req->api->ctx;
	struct srv_tenant *ref;
	int rc;

	if (req->hold) {
		*out = srv_tenant_store(req->hold);
		return 0;
	}
	rc = srv_tenants_acquire(out, &ref, r->tenants, req->principal.tenant);
	if (rc == ATREST_ENOTFOUND) {
		srv_event("unknown_tenant", "route=%s", req->route->label);
		srv_audit(ATREST_OP_AUTH, ATREST_ENOTFOUND, NULL, req->principal.tenant,
			req->route->label, "the key's tenant is not in the store");
		http_error(req, 403, "unknown_tenant",
			"this key's tenant is not (or no longer) in the store");
		return -1;
	}
	if (rc < 0) {
		rest_lib_error(req, rc, "open tenant store");
		return -1;
	}
	req->hold = ref;
	req->hold_release = release_tenant;
	return 0;
}

/* The credential of a request: "Authorization: Bearer K" or "X-API-Key: K". */
static const char *presented_key(struct http_req *req)
{
	const char *h = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);

	if (h) {
		if (strncasecmp(h, "Bearer ", 7) != 0)
			return "";
		for (h += 7; *h == ' '; h++)
			;
		return h;
	}
	return http_header(req, "X-API-Key");
}

/*
 * An authentication failure: counted, logged (rate limited) and audited
 * (every one) for who (NULL: not authenticated), reason and the route.
 */
static void auth_failed(struct http_req *req, const char *who, const char *reason,
	int outcome, const char *detail)
{
	char note[160];

	srv_metrics_auth_failure(req->api->name, reason);
	srv_event("auth_failure", "reason=%s%s%s route=%s", reason, detail ? " " : "",
		detail ? detail : "", req->route->label);
	snprintf(note, sizeof(note), "%s%s%s", reason, detail ? " " : "",
		detail ? detail : "");
	srv_audit(ATREST_OP_AUTH, outcome, who ? who : "unauthenticated",
		who ? req->principal.tenant : NULL, req->route->label, note);
}

static int authenticate(struct http_req *req, int need)
{
	static const struct http_header_kv challenge = {
		MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"atrest\""};
	struct srv_rest *r = req->api->ctx;
	const char *key = presented_key(req);
	char detail[96];

	if (!key || !*key) {
		auth_failed(req, NULL, "missing", ATREST_EKEY, NULL);
		http_error_with(req, 401, "unauthorized", &challenge, 1,
			"an API key is needed: 'Authorization: Bearer KEY' or 'X-API-Key: KEY'");
		return -1;
	}
	if (srv_auth_check(r->auth, key, &req->principal) < 0) {
		char id[SRV_APIKEY_ID_LEN + 1];

		snprintf(detail, sizeof(detail), "claimed_id=%s",
			srv_apikey_claimed_id(id, key) == 0 ? id : "none");
		auth_failed(req, NULL, "unknown_key", ATREST_EKEY, detail);
		http_error_with(req, 401, "unauthorized", &challenge, 1,
			"the API key is not valid (unknown or revoked)");
		return -1;
	}
	if (req->principal.role < need) {
		srv_principal_set(&req->principal);
		snprintf(detail, sizeof(detail), "role=%s needs=%s",
			srv_role_name(req->principal.role), srv_role_name(need));
		auth_failed(req, req->principal.key_id, "role", ATREST_EINVAL, detail);
		http_error(req, 403, "forbidden",
			"this key's role (%s) may not do this; %s needed",
			srv_role_name(req->principal.role), srv_role_name(need));
		return -1;
	}
	return 0;
}

static void healthz(struct http_req *req)
{
	rest_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* A durable write in the server's state directory (the store's own
 * .atrest/ when the store is that directory). */
static int state_writable(const char *state_dir)
{
	char path[4096];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/.atrest/readyz.%ld", state_dir, (long)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return 0;
	ok = write(fd, "1", 1) == 1 && fsync(fd) == 0;
	close(fd);
	unlink(path);
	return ok;
}

/*
 * Seal and open a record with the default tenant's active data key: the key
 * is usable.  One recorder for the server's life (under readyz's mutex), so
 * probes add no audit line (a recorder records once per data key).
 */
static int key_usable(struct srv_rest *r)
{
	uint8_t sealed[64 + ATREST_RECORD_OVERHEAD], out[64];
	size_t n, m;
	int rc;

	if (!r->ready_rec) {
		rc = atrest_recorder_open(&r->ready_rec, srv_tenants_root(r->tenants),
			"atrest-server-readyz");
		if (rc < 0)
			return rc;
	}
	rc = atrest_record_seal(
		r->ready_rec, sealed, sizeof(sealed), &n, "ready", 5, NULL, 0);
	if (rc == 0)
		rc = atrest_record_open(
			r->ready_rec, out, sizeof(out), &m, sealed, n, NULL, 0);
	return rc;
}

void srv_rest_cleanup(struct srv_rest *r)
{
	if (r->ready_rec)
		atrest_recorder_close(r->ready_rec);
	r->ready_rec = NULL;
}

/* The answer of the last check, kept a second so probes cost little. */
static void readyz(struct http_req *req)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int64_t checked;
	static char why[128];
	struct srv_rest *r = req->api->ctx;
	int64_t now = http_now_ns();
	int rc;

	pthread_mutex_lock(&mu);
	if (!checked || now - checked > 1000000000LL) {
		why[0] = '\0';
		if ((rc = key_usable(r)) < 0)
			snprintf(why, sizeof(why), "master key not usable: %s",
				atrest_strerror(rc));
		else if (!state_writable(r->state_dir))
			snprintf(why, sizeof(why), "state directory not writable");
		checked = now;
	}
	if (!why[0] && r->draining)
		snprintf(why, sizeof(why), "shutting down");
	pthread_mutex_unlock(&mu);
	if (why[0])
		http_error(req, 503, "not_ready", "%s", why);
	else
		rest_json(req, 200, json_pack("{s:s}", "status", "ready"));
}

static void metrics(struct http_req *req)
{
	struct srv_buf b = {0};

	if (srv_metrics_render(&b) < 0)
		http_error(req, 500, "internal_error", "out of memory");
	else
		http_respond_text(req, 200, "text/plain; version=0.0.4", b.p, b.len);
	srv_buf_free(&b);
}

static int key_row(const atrest_key_info *k, void *payload)
{
	char when[32];

	rest_iso_time(when, k->created);
	return json_array_append_new(payload,
		json_pack("{s:I,s:s,s:s,s:I,s:I}", "id", (json_int_t)k->id, "status",
			k->status ? k->status : "unknown", "created", when, "objects",
			(json_int_t)k->objects, "bytes", (json_int_t)k->bytes));
}

static void keys_list(struct http_req *req)
{
	const char *usage = http_target_param(&req->target, "usage");
	json_t *arr = json_array();
	atrest_store *st;
	int rc;

	if (!arr || rest_store(&st, req) < 0) {
		json_decref(arr);
		if (!req->responded)
			http_error(req, 500, "internal_error", "out of memory");
		return;
	}
	rc = atrest_keys_list(st, !(usage && !strcmp(usage, "0")), key_row, arr);
	if (rc != 0) {
		json_decref(arr);
		rest_lib_error(req, rc < 0 ? rc : ATREST_ERROR, "list data keys");
		return;
	}
	rest_json(req, 200, arr);
}

static void keys_rotate(struct http_req *req)
{
	atrest_store *st;
	uint32_t id;
	int rc;

	if (rest_store(&st, req) < 0)
		return;
	rc = atrest_rotate(&id, st);
	if (rc < 0) {
		rest_lib_error(req, rc, "rotate");
		return;
	}
	srv_event("data_key_rotated", "active=%u", id);
	rest_json(req, 200, json_pack("{s:I}", "active", (json_int_t)id));
}

static const struct http_route routes[] = {
	{"/healthz", HTTP_GET | HTTP_HEAD, "healthz", 0, healthz},
	{"/readyz", HTTP_GET | HTTP_HEAD, "readyz", 0, readyz},
	{"/metrics", HTTP_GET | HTTP_HEAD, "metrics", SRV_ROLE_READER, metrics},
	{"/v1/checkpoints", HTTP_GET | HTTP_HEAD, "list", SRV_ROLE_READER, rest_list},
	{"/v1/checkpoints/*", HTTP_GET | HTTP_HEAD, "object", SRV_ROLE_READER,
		rest_object_get},
	{"/v1/checkpoints/*", HTTP_PUT, "object", SRV_ROLE_WRITER, rest_object_put},
	{"/v1/checkpoints/*", HTTP_DELETE, "object", SRV_ROLE_WRITER, rest_object_delete},
	{"/v1/keys", HTTP_GET | HTTP_HEAD, "keys", SRV_ROLE_ADMIN, keys_list},
	{"/v1/keys/rotate", HTTP_POST, "keys_rotate", SRV_ROLE_ADMIN, keys_rotate},
	{NULL, 0, NULL, 0, NULL},
};

void srv_rest_api(struct http_api *out, struct srv_rest *r)
{
	memset(out, 0, sizeof(*out));
	out->name = "rest";
	out->routes = routes;
	out->authenticate = authenticate;
	out->render_error = render_error;
	out->ctx = r;
}
