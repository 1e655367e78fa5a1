/*
 * The server's life: open the store (its default tenant), load keys and
 * certificates, start the listener, then wait for signals (blocked in every
 * thread, taken here with sigtimedwait) while sweeping slow connections and
 * watching the key file; on SIGTERM or SIGINT drain and close.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "auth.h"
#include "events.h"
#include "metrics.h"
#include "rest.h"
#include "s3.h"
#include "server.h"
#include "tenants.h"
#include "tls.h"

void srv_config_defaults(struct srv_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen = "127.0.0.1";
	c->max_object = 64ull << 30;
	c->s3_port = -1;
	c->s3_region = "us-east-1";
	c->drain_timeout = 30;
	c->limits.max_connections = 1024;
	c->limits.max_per_ip = 0;
	c->limits.idle_timeout = 60;
	c->limits.header_timeout = 30;
	c->limits.min_body_rate = 1024;
	c->limits.overflow_grace = 5;
	c->limits.connection_memory = 128u << 10;
	c->limits.thread_stack = 512u << 10;
}

int srv_is_loopback(const char *addr)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
			(IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

/* Everything the running server holds. */
struct server {
	const struct srv_config *cfg;
	char *keys_file;
	struct srv_tenants *tenants;
	struct srv_auth *auth;
	struct srv_tls *tls;
	char lib_state[4096]; /* DIR/.atrest: API keys, generation floors */
	char audit[4200];     /* the audit trail of a store that is not local */
	struct srv_rest rest;
	struct http_api api;
	struct http_listener *listener;
	/* The S3-compatible API, when --s3-port is given. */
	char *s3_keys_file;
	struct srv_auth *s3_auth;
	struct srv_s3 s3;
	struct http_api s3_api;
	struct http_listener *s3_listener;
};

/* One connection thread per client: allow the descriptors they need. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int key_status(int code)
{
	return code == ATREST_EKEY || code == ATREST_EUNAVAILABLE ? 5 : 1;
}

/* DIR/.atrest, made (0700) when missing; its path in out. */
static int state_subdir(char *out, size_t cap, const char *state_dir)
{
	snprintf(out, cap, "%s/.atrest", state_dir);
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -1;
	return mkdir(out, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/*
 * The audit trail of a store that is not a local directory (an object
 * store has no append) goes to the state directory, unless ATREST_AUDIT
 * says where; a local store keeps its own, shared with every process.
 */
static const char *audit_dir(struct server *s)
{
	const char *loc = s->cfg->store, *env = getenv("ATREST_AUDIT");

	if ((env && *env) || !strstr(loc, "://") || !strncmp(loc, "file://", 7))
		return NULL;
	snprintf(s->audit, sizeof(s->audit), "%s/audit", s->lib_state);
	return s->audit;
}

/*
 * The library's metrics, after the server's own in /metrics: of every
 * tenant for a key of the default tenant (the operator's), of its own
 * tenant alone for any other key, so no tenant learns of another.
 */
static int library_metrics(struct srv_buf *b, void *payload)
{
	const struct http_principal *p = srv_principal();
	char *text;
	size_t len;

	if (srv_tenants_metrics(
		    &text, &len, payload, p && p->tenant[0] ? p->tenant : NULL) < 0)
		return -1;
	if (text)
		srv_buf_printf(b, "%s", text);
	atrest_free(text);
	return b->oom ? -1 : 0;
}

static int open_store(struct server *s)
{
	struct srv_store_config sc = {s->cfg->store, s->lib_state, audit_dir(s),
		s->cfg->threads, 0, s->cfg->allow_plaintext};
	int rc = srv_tenants_new(&s->tenants, &sc);

	if (rc < 0) {
		const atrest_error *e = atrest_error_last();

		srv_log("cannot open store %s: %s%s", s->cfg->store,
			e && e->code == rc ? e->message : atrest_strerror(rc),
			rc == ATREST_EKEY ? " (set ATREST_KEY, ATREST_KEY_FILE, "
					    "ATREST_PASSPHRASE or ATREST_KEY_URI)"
					  : "");
		return key_status(rc);
	}
	srv_audit_store(srv_tenants_root(s->tenants));
	srv_metrics_add_section(library_metrics, s->tenants);
	return 0;
}

static int count_tenant(const atrest_tenant_info *info, void *payload)
{
	(void)info;
	++*(unsigned *)payload;
	return 0;
}

static void startup_line(struct server *s)
{
	atrest_settings set = ATREST_SETTINGS_INIT;
	char kind[32] = "?", id[128] = "?", url[96], state[4200] = "";
	const char *addr = s->cfg->listen;
	atrest_store *st = srv_tenants_root(s->tenants);
	unsigned tenants = 0;

	atrest_store_settings(&set, st);
	atrest_store_master_key(kind, sizeof(kind), id, sizeof(id), st);
	atrest_tenant_list(st, count_tenant, &tenants);
	if (strcmp(s->cfg->state_dir, s->cfg->store) != 0)
		snprintf(state, sizeof(state), "; state %s", s->cfg->state_dir);
	snprintf(url, sizeof(url), strchr(addr, ':') ? "%s://[%s]:%u" : "%s://%s:%u",
		s->tls ? "https" : "http", addr, http_listener_port(s->listener));
	srv_log("encryption at rest on: cipher %s, master key %s %s; store %s "
		"(%u tenant%s besides the default)%s; audit %s; %zu API keys; "
		"listening on %s",
		atrest_cipher_name(set.cipher), kind, id, s->cfg->store, tenants,
		tenants == 1 ? "" : "s", state, atrest_audit_location(st),
		srv_auth_count(s->auth), url);
	srv_audit(ATREST_OP_SERVER, 0, NULL, NULL, "start", url);
	if (s->s3_listener) {
		snprintf(url, sizeof(url),
			strchr(addr, ':') ? "%s://[%s]:%u" : "%s://%s:%u",
			s->tls ? "https" : "http", addr,
			http_listener_port(s->s3_listener));
		srv_log("S3 API at %s (region %s, %zu S3 access keys)", url,
			s->cfg->s3_region, srv_auth_count(s->s3_auth));
		srv_audit(ATREST_OP_SERVER, 0, NULL, NULL, "start_s3", url);
	}
}

/* The S3 listener, its keys and its API table; 0 or an exit status. */
static int start_s3(struct server *s)
{
	struct http_listener_config lc;

	if (s->cfg->s3_port < 0)
		return 0;
	if (s->cfg->s3_keys_file)
		s->s3_keys_file = strdup(s->cfg->s3_keys_file);
	else if (asprintf(&s->s3_keys_file, "%s/s3keys", s->lib_state) < 0)
		s->s3_keys_file = NULL;
	if (!s->s3_keys_file || srv_auth_new(&s->s3_auth, s->s3_keys_file, NULL) < 0)
		return 2;
	s->s3.tenants = s->tenants;
	s->s3.keys = s->s3_auth;
	s->s3.max_object = s->cfg->max_object;
	s->s3.region = s->cfg->s3_region;
	s->s3.domain = s->cfg->s3_domain;
	if (srv_s3_api(&s->s3_api, &s->s3) < 0)
		return 5;
	memset(&lc, 0, sizeof(lc));
	lc.addr = s->cfg->listen;
	lc.port = (uint16_t)s->cfg->s3_port;
	lc.tls = s->tls;
	lc.limits = &s->cfg->limits;
	lc.api = &s->s3_api;
	return http_listener_start(&s->s3_listener, &lc) < 0 ? 1 : 0;
}

static int start(struct server *s)
{
	struct http_listener_config lc;
	int rc;

	srv_metrics_connection(0); /* the start time */
	if ((rc = open_store(s)) != 0)
		return rc;
	if (srv_auth_new(&s->auth, s->keys_file, s->cfg->api_key) < 0)
		return 2;
	if (srv_auth_count(s->auth) == 0)
		srv_log("no API keys yet: every request but /healthz and /readyz is "
			"refused until 'atrest apikey create' adds one to %s",
			s->keys_file);
	if (s->cfg->tls_cert &&
		srv_tls_load(&s->tls, s->cfg->tls_cert, s->cfg->tls_key) < 0)
		return 2;
	s->rest.tenants = s->tenants;
	s->rest.auth = s->auth;
	s->rest.max_object = s->cfg->max_object;
	s->rest.state_dir = s->cfg->state_dir;
	srv_rest_api(&s->api, &s->rest);
	memset(&lc, 0, sizeof(lc));
	lc.addr = s->cfg->listen;
	lc.port = (uint16_t)s->cfg->port;
	lc.tls = s->tls;
	lc.limits = &s->cfg->limits;
	lc.api = &s->api;
	if (http_listener_start(&s->listener, &lc) < 0)
		return 1;
	if ((rc = start_s3(s)) != 0)
		return rc;
	startup_line(s);
	return 0;
}

static void reload(struct server *s)
{
	srv_auth_reload(s->auth, 1);
	if (s->s3_auth)
		srv_auth_reload(s->s3_auth, 1);
	if (s->s3_listener)
		srv_s3_sweep(&s->s3);
	if (s->tls) {
		int ok = srv_tls_reload(s->tls) == 0;

		srv_event("tls_reload", "result=%s",
			ok ? "ok" : "failed (old certificate kept)");
		srv_audit(ATREST_OP_SERVER, ok ? 0 : ATREST_EINVAL, NULL, NULL,
			"tls_reload", ok ? NULL : "old certificate kept");
	}
}

/* Stop accepting, let requests in flight finish (bounded), then stop. */
static void drain(struct server *s, int sig)
{
	int64_t until = http_now_ns() + (int64_t)s->cfg->drain_timeout * 1000000000LL;
	struct timespec tick = {0, 100 * 1000000L};
	unsigned busy;

	srv_log("%s: draining (%u s at most)", sig == SIGINT ? "SIGINT" : "SIGTERM",
		s->cfg->drain_timeout);
	s->rest.draining = 1;
	http_listener_draining(s->listener);
	http_listener_quiesce(s->listener);
	if (s->s3_listener) {
		http_listener_draining(s->s3_listener);
		http_listener_quiesce(s->s3_listener);
	}
	while ((busy = http_listener_busy(s->listener) +
			       (s->s3_listener ? http_listener_busy(s->s3_listener)
					       : 0)) > 0 &&
		http_now_ns() < until) {
		http_listener_sweep(s->listener);
		if (s->s3_listener)
			http_listener_sweep(s->s3_listener);
		nanosleep(&tick, NULL);
	}
	if (busy)
		srv_log("drain timeout: cutting %u requests still in flight", busy);
}

static int serve(struct server *s, const sigset_t *set)
{
	struct timespec tick = {0, 250 * 1000000L};
	unsigned n = 0;
	int sig;

	for (;;) {
		sig = sigtimedwait(set, NULL, &tick);
		if (sig == SIGHUP) {
			reload(s);
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			drain(s, sig);
			return 0;
		}
		http_listener_sweep(s->listener);
		if (s->s3_listener)
			http_listener_sweep(s->s3_listener);
		if (++n % 4 == 0) {
			srv_auth_reload(s->auth, 0);
			if (s->s3_auth)
				srv_auth_reload(s->s3_auth, 0);
		}
		if (s->s3_listener && n % 2400 == 0) /* every 10 minutes */
			srv_s3_sweep(&s->s3);
	}
}

static void stop(struct server *s, int rc)
{
	http_listener_stop(s->listener);
	if (s->s3_listener)
		http_listener_stop(s->s3_listener);
	srv_rest_cleanup(&s->rest);
	srv_s3_cleanup(&s->s3);
	srv_auth_free(s->s3_auth);
	free(s->s3_keys_file);
	if (s->listener)
		srv_audit(ATREST_OP_SERVER, rc == 0 ? 0 : ATREST_ERROR, NULL, NULL,
			"stop", NULL);
	srv_audit_store(NULL);
	srv_metrics_clear_sections();
	srv_tenants_free(s->tenants);
	srv_auth_free(s->auth);
	srv_tls_free(s->tls);
	srv_tls_shutdown();
	free(s->keys_file);
}

int srv_run(const struct srv_config *cfg)
{
	struct server s;
	sigset_t set;
	int rc;

	if (cfg->tls_cert == NULL && !cfg->insecure_http &&
		!srv_is_loopback(cfg->listen)) {
		srv_log("refusing plain HTTP on %s: give --tls-cert and --tls-key, or "
			"--insecure-http",
			cfg->listen);
		return 2;
	}
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	if (state_subdir(s.lib_state, sizeof(s.lib_state), cfg->state_dir) < 0) {
		srv_log("cannot make the state directory %s/.atrest: %s", cfg->state_dir,
			strerror(errno));
		return 1;
	}
	if (cfg->api_keys_file)
		s.keys_file = strdup(cfg->api_keys_file);
	else if (asprintf(&s.keys_file, "%s/apikeys", s.lib_state) < 0)
		s.keys_file = NULL;
	if (!s.keys_file)
		return 1;
	raise_fd_limit();
	/* Blocked before any thread starts, so every thread inherits it. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	rc = start(&s);
	if (rc == 0)
		rc = serve(&s, &set);
	stop(&s, rc);
	if (rc == 0)
		srv_log("stopped");
	return rc;
}
