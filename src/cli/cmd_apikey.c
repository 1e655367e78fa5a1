/*
 * atrest apikey|s3key create|list|revoke: the server's API keys and S3
 * access keys, through the key file module of src/server (apikeys.c),
 * which the server reads too; creations and revocations go to the store's
 * audit trail.  S3 secrets are sealed with the store's keys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../server/apikeys.h"
#include "cli.h"

struct apikey_args {
	const char *tenant, *name, *file;
	int role, json;
	int s3;     /* s3key: access keys in <store>/.atrest/s3keys */
	char *path; /* the key file in use (allocated) */
};

/* The key file: --file, else <store>/.atrest/apikeys of an existing store. */
static int key_file(struct apikey_args *a, const struct cli_ctx *ctx)
{
	struct stat sb;
	char dir[4096];

	if (a->file) {
		a->path = strdup(a->file);
		return a->path ? CLI_OK : cli_err_os(ENOMEM, a->s3 ? "s3key" : "apikey");
	}
	snprintf(dir, sizeof(dir), "%s/.atrest", ctx->store);
	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return cli_err_msg(3,
			"%s: no store at %s (create it with 'atrest init', or give "
			"--file)",
			a->s3 ? "s3key" : "apikey", ctx->store);
	if (asprintf(&a->path, "%s/%s", dir, a->s3 ? "s3keys" : "apikeys") < 0)
		return cli_err_os(ENOMEM, a->s3 ? "s3key" : "apikey");
	return CLI_OK;
}

static int parse(struct apikey_args *a, struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"tenant", required_argument, NULL, 't'},
		{"role", required_argument, NULL, 'r'},
		{"name", required_argument, NULL, 'n'},
		{"file", required_argument, NULL, 'f'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	memset(a, 0, sizeof(*a));
	a->tenant = ctx->tenant ? ctx->tenant : "";
	a->name = "";
	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 't')
			a->tenant = optarg;
		else if (c == 'r' &&
			(a->role = srv_role_from_name(optarg)) == SRV_ROLE_NONE)
			return cli_usage_err(ctx, "--role takes reader, writer or admin");
		else if (c == 'n')
			a->name = optarg;
		else if (c == 'f')
			a->file = optarg;
		else if (c == 'j')
			a->json = 1;
		else if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		} else if (c != 'r')
			return CLI_USAGE;
	}
	return CLI_OK;
}

/*
 * A key created or revoked, in the store's audit trail (name: the key's id;
 * principal: this user), when the store opens with the master key of the
 * environment; else a note on stderr (the key file changed anyway).
 */
/* The store (its default tenant) with the environment's master key. */
static int open_store(atrest_store **st, const struct cli_ctx *ctx)
{
	atrest_store_options o;
	int rc;

	memset(&o, 0, sizeof(o));
	o.version = ATREST_STORE_OPTIONS_VERSION;
	o.path = ctx->store;
	rc = atrest_keyprov_from_env(&o.key, 0);
	return rc == 0 ? atrest_store_open(st, &o) : rc;
}

static void audit_change(
	const struct cli_ctx *ctx, int op, const char *id, const char *tenant)
{
	atrest_event ev = ATREST_EVENT_INIT;
	atrest_store *st;
	int rc = open_store(&st, ctx);

	if (rc == 0) {
		ev.op = op;
		ev.tenant = tenant;
		ev.name = id;
		rc = atrest_audit_record(st, &ev);
		atrest_store_close(st);
	}
	if (rc < 0)
		fprintf(stderr,
			"atrest: note: key %s is not in the store's audit trail: %s\n",
			id,
			rc == ATREST_ENOTFOUND ? "no master key or no store"
					       : cli_lib_message(rc));
}

/*
 * A new S3 access key, its secret sealed with the data key of the store's
 * default tenant (whose handle the server opens secrets with), whatever
 * tenant the key is for.
 */
static int s3key_new(struct srv_apikey *e, char *secret, struct apikey_args *a,
	const struct cli_ctx *ctx)
{
	atrest_recorder *rec = NULL;
	struct cli_ctx root = *ctx;
	atrest_store *st;
	int status, rc;

	root.tenant = NULL;
	status = cli_open_store(&st, &root, 0);
	if (status != CLI_OK)
		return status;
	rc = atrest_recorder_open(&rec, st, SRV_S3KEY_NS);
	if (rc == 0)
		rc = srv_s3key_new(e, secret, a->tenant, a->role, a->name, rec) < 0
			? ATREST_ERROR
			: 0;
	if (rec)
		atrest_recorder_close(rec);
	atrest_store_close(st);
	return rc < 0 ? cli_err_msg(CLI_FAIL, "s3key: cannot seal a new secret") : CLI_OK;
}

static void s3key_print(
	const struct srv_apikey *e, const char *secret, const struct apikey_args *a)
{
	if (a->json) {
		printf("{\"access_key_id\": \"%s\", \"secret_access_key\": \"%s\", "
		       "\"tenant\": ",
			e->id, secret);
		cli_json_str(stdout, e->tenant);
		printf(", \"role\": \"%s\", \"name\": ", srv_role_name(e->role));
		cli_json_str(stdout, e->name);
		fputs("}\n", stdout);
		return;
	}
	printf("S3 access key for tenant %s, role %s (the secret is shown once; it "
	       "is kept sealed in %s):\naccess_key_id     %s\nsecret_access_key %s\n",
		e->tenant[0] ? e->tenant : "(default)", srv_role_name(e->role), a->path,
		e->id, secret);
}

static int apikey_create(struct apikey_args *a, struct cli_ctx *ctx)
{
	struct srv_apikey e;
	char key[SRV_APIKEY_LEN + SRV_S3KEY_SECRET_LEN + 1], why[512];
	int status;

	if (!a->role)
		return cli_usage_err(ctx, "create needs --role reader, writer or admin");
	if (!srv_tenant_ok(a->tenant))
		return cli_usage_err(
			ctx, "tenant '%s' is not 1-64 of [A-Za-z0-9._-]", a->tenant);
	if (strlen(a->name) > SRV_APIKEY_NAME_MAX)
		return cli_usage_err(
			ctx, "--name is longer than %d bytes", SRV_APIKEY_NAME_MAX);
	if ((status = key_file(a, ctx)) != CLI_OK)
		return status;
	if (a->s3 && (status = s3key_new(&e, key, a, ctx)) != CLI_OK)
		return status;
	if (!a->s3 &&
		srv_apikey_new(&e, key, sizeof(key), a->tenant, a->role, a->name) < 0)
		return cli_err_msg(CLI_FAIL, "apikey: no random bytes for a key");
	if (srv_apikeys_add(a->path, &e, why, sizeof(why)) < 0) {
		explicit_bzero(key, sizeof(key));
		return cli_err_msg(CLI_FAIL, "%s: %s", a->s3 ? "s3key" : "apikey", why);
	}
	audit_change(ctx, ATREST_OP_APIKEY_CREATE, e.id, e.tenant);
	if (a->s3)
		s3key_print(&e, key, a);
	else if (a->json) {
		printf("{\"id\": \"%s\", \"key\": \"%s\", \"tenant\": ", e.id, key);
		cli_json_str(stdout, e.tenant);
		printf(", \"role\": \"%s\", \"name\": ", srv_role_name(e.role));
		cli_json_str(stdout, e.name);
		fputs("}\n", stdout);
	} else {
		printf("API key %s for tenant %s, role %s (shown once; only its hash is "
		       "kept in %s):\n%s\n",
			e.id, e.tenant[0] ? e.tenant : "(default)", srv_role_name(e.role),
			a->path, key);
	}
	explicit_bzero(key, sizeof(key));
	return cli_flush_stdout();
}

static int apikey_list(struct apikey_args *a, struct cli_ctx *ctx)
{
	struct srv_apikeys k;
	char why[512], when[32];
	size_t i, shown;
	int status;

	if ((status = key_file(a, ctx)) != CLI_OK)
		return status;
	if (srv_apikeys_load(&k, a->path, why, sizeof(why)) < 0)
		return cli_err_msg(CLI_FAIL, "%s: %s", a->s3 ? "s3key" : "apikey", why);
	if (!a->json)
		printf("%-*s  %-8s  %-20s  %-20s  %s\n", a->s3 ? 20 : 16,
			a->s3 ? "ACCESS KEY ID" : "ID", "ROLE", "TENANT", "CREATED",
			"NAME");
	else
		putchar('[');
	for (i = 0, shown = 0; i < k.n; i++) {
		const struct srv_apikey *e = &k.v[i];

		if (e->s3 != a->s3)
			continue;
		cli_iso_time(when, e->created);
		if (!a->json) {
			printf("%-*s  %-8s  %-20s  %-20s  %s\n", a->s3 ? 20 : 16, e->id,
				srv_role_name(e->role), e->tenant[0] ? e->tenant : "-",
				when, e->name);
			continue;
		}
		printf("%s{\"%s\": \"%s\", \"role\": \"%s\", \"tenant\": ",
			shown++ ? ",\n " : "\n ", a->s3 ? "access_key_id" : "id", e->id,
			srv_role_name(e->role));
		cli_json_str(stdout, e->tenant);
		printf(", \"created\": \"%s\", \"name\": ", when);
		cli_json_str(stdout, e->name);
		putchar('}');
	}
	if (a->json)
		fputs(shown ? "\n]\n" : "]\n", stdout);
	srv_apikeys_free(&k);
	return CLI_OK;
}

static int apikey_revoke(struct apikey_args *a, struct cli_ctx *ctx, const char *id)
{
	char why[512];
	int status, rc;

	if ((status = key_file(a, ctx)) != CLI_OK)
		return status;
	rc = srv_apikeys_revoke(a->path, id, why, sizeof(why));
	if (rc < 0)
		return cli_err_msg(CLI_FAIL, "%s: %s", a->s3 ? "s3key" : "apikey", why);
	if (rc > 0)
		return cli_err_msg(3, "%s: no key with id '%s' in %s",
			a->s3 ? "s3key" : "apikey", id, a->path);
	audit_change(ctx, ATREST_OP_APIKEY_REVOKE, id, NULL);
	printf("revoked %s %s\n", a->s3 ? "S3 access key" : "API key", id);
	return CLI_OK;
}

static int key_command(struct cli_ctx *ctx, int argc, char **argv, int s3)
{
	struct apikey_args a;
	const char *action;
	int status;

	status = parse(&a, ctx, argc, argv);
	a.s3 = s3;
	if (status == CLI_DONE)
		return CLI_OK;
	if (status)
		return status;
	if (optind >= argc)
		return cli_usage_err(ctx, "missing action: create, list or revoke");
	action = argv[optind++];
	if (!strcmp(action, "create") && optind == argc)
		status = apikey_create(&a, ctx);
	else if (!strcmp(action, "list") && optind == argc)
		status = apikey_list(&a, ctx);
	else if (!strcmp(action, "revoke") && optind + 1 == argc)
		status = apikey_revoke(&a, ctx, argv[optind]);
	else if (strcmp(action, "create") && strcmp(action, "list") &&
		strcmp(action, "revoke"))
		status = cli_usage_err(ctx, "unknown action '%s'", action);
	else
		status = cli_usage_err(ctx, "wrong number of arguments for %s", action);
	free(a.path);
	return status;
}

int cmd_apikey(struct cli_ctx *ctx, int argc, char **argv)
{
	return key_command(ctx, argc, argv, 0);
}

int cmd_s3key(struct cli_ctx *ctx, int argc, char **argv)
{
	return key_command(ctx, argc, argv, 1);
}
