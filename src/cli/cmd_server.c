/*
 * atrest server: the command line of the server (src/server), parsed here
 * with the CLI's helpers so that usage errors look like every command's.
 */
#include <stdlib.h>
#include <string.h>

#include "../server/server.h"
#include "cli.h"

/* A byte count with an optional K, M, G or T suffix (powers of 1024). */
static int parse_size64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int shift = 0;

	if (*s < '0' || *s > '9')
		return -1;
	v = strtoull(s, &end, 10);
	if (!strcmp(end, "K") || !strcmp(end, "KiB"))
		shift = 10;
	else if (!strcmp(end, "M") || !strcmp(end, "MiB"))
		shift = 20;
	else if (!strcmp(end, "G") || !strcmp(end, "GiB"))
		shift = 30;
	else if (!strcmp(end, "T") || !strcmp(end, "TiB"))
		shift = 40;
	else if (*end)
		return -1;
	if (v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* A number from 1 to max; 0 or -1. */
static int parse_count(const char *s, unsigned max, unsigned *out)
{
	uint32_t v;

	if (cli_parse_u32(s, &v) < 0 || v < 1 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Take the key out of argv, so that ps shows it no longer. */
static const char *take_secret(char *arg)
{
	char *copy = strdup(arg);

	explicit_bzero(arg, strlen(arg));
	fprintf(stderr,
		"atrest: server: warning: --api-key is visible to other local "
		"users until read; prefer ATREST_API_KEY or --api-keys-file\n");
	return copy;
}

enum {
	OPT_PORT = 256,
	OPT_STATE,
	OPT_LISTEN,
	OPT_KEY,
	OPT_KEYS_FILE,
	OPT_CERT,
	OPT_TLS_KEY,
	OPT_INSECURE,
	OPT_MAX_OBJECT,
	OPT_MAX_CONN,
	OPT_MAX_PER_IP,
	OPT_IDLE,
	OPT_HEAD,
	OPT_DRAIN,
	OPT_THREADS,
	OPT_S3_PORT,
	OPT_S3_KEYS,
	OPT_S3_DOMAIN,
	OPT_S3_REGION
};

static const struct option opts[] = {{"port", required_argument, NULL, OPT_PORT},
	{"state-dir", required_argument, NULL, OPT_STATE},
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"api-key", required_argument, NULL, OPT_KEY},
	{"api-keys-file", required_argument, NULL, OPT_KEYS_FILE},
	{"tls-cert", required_argument, NULL, OPT_CERT},
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},
	{"insecure-http", no_argument, NULL, OPT_INSECURE},
	{"max-object-size", required_argument, NULL, OPT_MAX_OBJECT},
	{"max-connections", required_argument, NULL, OPT_MAX_CONN},
	{"max-connections-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
	{"idle-timeout", required_argument, NULL, OPT_IDLE},
	{"header-timeout", required_argument, NULL, OPT_HEAD},
	{"drain-timeout", required_argument, NULL, OPT_DRAIN},
	{"threads", required_argument, NULL, OPT_THREADS},
	{"s3-port", required_argument, NULL, OPT_S3_PORT},
	{"s3-keys-file", required_argument, NULL, OPT_S3_KEYS},
	{"s3-domain", required_argument, NULL, OPT_S3_DOMAIN},
	{"s3-region", required_argument, NULL, OPT_S3_REGION},
	{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};

/* A TCP port, 0 (any free one) to 65535; 0 or a usage error status. */
static int parse_port(struct cli_ctx *ctx, const char *arg, int *out, const char *opt)
{
	unsigned port = 0;

	if (strcmp(arg, "0") != 0 && parse_count(arg, 65535, &port) < 0)
		return cli_usage_err(ctx, "%s takes 0 to 65535", opt);
	*out = (int)port;
	return 0;
}

/* The options of the S3-compatible listener. */
static int take_s3(struct cli_ctx *ctx, struct srv_config *c, int o, char *arg)
{
	switch (o) {
	case OPT_S3_PORT:
		return parse_port(ctx, arg, &c->s3_port, "--s3-port");
	case OPT_S3_KEYS:
		c->s3_keys_file = arg;
		return 0;
	case OPT_S3_DOMAIN:
		c->s3_domain = arg;
		return 0;
	case OPT_S3_REGION:
		c->s3_region = arg;
		return 0;
	default:
		return CLI_USAGE;
	}
}

/* One option into c; 0, CLI_DONE (help shown) or a usage error status. */
static int take(struct cli_ctx *ctx, struct srv_config *c, int o, char *arg)
{
	struct http_limits *l = &c->limits;

	switch (o) {
	case OPT_PORT:
		return parse_port(ctx, arg, &c->port, "--port");
	case OPT_STATE:
		c->state_dir = arg;
		return 0;
	case OPT_LISTEN:
		c->listen = arg;
		return 0;
	case OPT_KEY:
		c->api_key = take_secret(arg);
		return 0;
	case OPT_KEYS_FILE:
		c->api_keys_file = arg;
		return 0;
	case OPT_CERT:
		c->tls_cert = arg;
		return 0;
	case OPT_TLS_KEY:
		c->tls_key = arg;
		return 0;
	case OPT_INSECURE:
		c->insecure_http = 1;
		return 0;
	case OPT_MAX_OBJECT:
		return parse_size64(arg, &c->max_object) == 0
			? 0
			: cli_usage_err(
				  ctx, "--max-object-size takes bytes (K, M, G, T)");
	case OPT_MAX_CONN:
		return parse_count(arg, 1000000, &l->max_connections) == 0
			? 0
			: cli_usage_err(ctx, "--max-connections takes 1 to 1000000");
	case OPT_MAX_PER_IP:
		return parse_count(arg, 1000000, &l->max_per_ip) == 0
			? 0
			: cli_usage_err(
				  ctx, "--max-connections-per-ip takes 1 to 1000000");
	case OPT_IDLE:
		return parse_count(arg, 86400, &l->idle_timeout) == 0
			? 0
			: cli_usage_err(ctx, "--idle-timeout takes 1 to 86400 seconds");
	case OPT_HEAD:
		return parse_count(arg, 3600, &l->header_timeout) == 0
			? 0
			: cli_usage_err(ctx, "--header-timeout takes 1 to 3600 seconds");
	case OPT_DRAIN:
		return parse_count(arg, 86400, &c->drain_timeout) == 0
			? 0
			: cli_usage_err(ctx, "--drain-timeout takes 1 to 86400 seconds");
	case OPT_THREADS:
		return parse_count(arg, 64, &c->threads) == 0
			? 0
			: cli_usage_err(ctx, "--threads takes 1 to 64");
	case 'h':
		cli_help(ctx->cmd);
		return CLI_DONE;
	default:
		return take_s3(ctx, c, o, arg);
	}
}

static int check(struct cli_ctx *ctx, const struct srv_config *c)
{
	if (c->port < 0)
		return cli_usage_err(ctx, "--port is required (0: any free port)");
	if (!c->tls_cert != !c->tls_key)
		return cli_usage_err(ctx, "--tls-cert and --tls-key go together");
	if (c->tls_cert && c->insecure_http)
		return cli_usage_err(ctx, "--insecure-http makes no sense with TLS");
	if (c->api_key && c->api_keys_file && !*c->api_key)
		return cli_usage_err(ctx, "--api-key is empty");
	return 0;
}

/*
 * The store and the state directory: --state-dir DIR alone serves the
 * store DIR (its .atrest/ holds the server's files too); with --store
 * LOCATION (or $ATREST_STORE), LOCATION is served and DIR holds the
 * server's files; without --state-dir, the store (a directory) is both.
 */
static int locations(struct cli_ctx *ctx, struct srv_config *c)
{
	if (c->state_dir && !ctx->store_given)
		c->store = c->state_dir;
	if (c->state_dir)
		return 0;
	if (strstr(c->store, "://"))
		return cli_usage_err(ctx,
			"a store given as a URI needs --state-dir DIR "
			"(a local directory for the server's files)");
	c->state_dir = c->store;
	return 0;
}

int cmd_server(struct cli_ctx *ctx, int argc, char **argv)
{
	struct srv_config c;
	const char *env_key = getenv("ATREST_API_KEY");
	int o, status;

	srv_config_defaults(&c);
	c.port = -1;
	c.store = ctx->store;
	c.allow_plaintext = ctx->allow_plaintext;
	cli_getopt_reset();
	while ((o = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		status = take(ctx, &c, o, optarg);
		if (status == CLI_DONE)
			return CLI_OK;
		if (status)
			return status;
	}
	if (optind < argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	if ((status = check(ctx, &c)) != 0)
		return status;
	if (ctx->tenant && *ctx->tenant)
		return cli_usage_err(ctx, "the server serves every tenant: no --tenant");
	if ((status = locations(ctx, &c)) != 0)
		return status;
	if (!c.api_key && env_key && *env_key)
		c.api_key = env_key;
	return srv_run(&c);
}
