/*
 * Store-wide commands: init (create a store with chosen settings) and
 * config (show or change the settings kept in the store's keyring).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char cipher_names[] =
	"aes-256-gcm, chacha20-poly1305 or aes-256-cbc-hmac-sha256";

static int parse_segment_size(const char *s, uint32_t *out)
{
	if (cli_parse_size(s, out) < 0)
		return -1;
	if (*out < ATREST_SEGMENT_SIZE_MIN || *out > ATREST_SEGMENT_SIZE_MAX)
		return -1;
	return 0;
}

static const char *cipher_label(int cipher)
{
	const char *name = atrest_cipher_name(cipher);

	return name ? name : "unknown";
}

/* Create the store; refused when it exists (and, unless force, when the
 * directory holds atrest objects without a keyring). */
static int init_create(const struct cli_ctx *ctx, int cipher, uint32_t seg, int force)
{
	atrest_store_options opts;
	atrest_settings set = ATREST_SETTINGS_INIT;
	atrest_store *st;
	char id[33];
	int status, rc;

	status = cli_store_options(&opts, ctx);
	if (status)
		return status;
	opts.create = 1;
	opts.flags = ATREST_STORE_EXCL | (force ? ATREST_STORE_FORCE_NEW : 0);
	opts.cipher = cipher;
	opts.segment_size = seg;
	rc = atrest_store_open(&st, &opts);
	if (rc == ATREST_EEXISTS)
		return cli_err_msg(CLI_FAIL, "store %s already exists", ctx->store);
	if (rc < 0)
		return cli_err(rc, "init %s", ctx->store);
	rc = atrest_store_settings(&set, st);
	if (rc == 0)
		rc = atrest_store_id(id, st);
	if (rc < 0) {
		status = cli_err(rc, "init %s", ctx->store);
	} else {
		printf("initialized store %s (cipher %s, segment size %u, "
		       "store id %s)\n",
			ctx->store, cipher_label(set.cipher), set.segment_size, id);
	}
	atrest_store_close(st);
	return status;
}

int cmd_init(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"cipher", required_argument, NULL, 'c'},
		{"segment-size", required_argument, NULL, 's'},
		{"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	uint32_t seg = 0;
	int cipher = 0, force = 0, c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		switch (c) {
		case 'c':
			cipher = atrest_cipher_from_name(optarg);
			if (cipher < 0)
				return cli_usage_err(ctx,
					"unknown cipher '%s' "
					"(use %s)",
					optarg, cipher_names);
			break;
		case 's':
			if (parse_segment_size(optarg, &seg) < 0)
				return cli_usage_err(ctx,
					"bad segment size '%s' "
					"(%u to %u bytes; K and M suffixes "
					"allowed)",
					optarg, ATREST_SEGMENT_SIZE_MIN,
					ATREST_SEGMENT_SIZE_MAX);
			break;
		case 'f':
			force = 1;
			break;
		case 'h':
			return cli_help(ctx->cmd);
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	if (ctx->tenant)
		return cli_usage_err(ctx,
			"init creates the store; add tenants with 'atrest tenant add'");
	return init_create(ctx, cipher, seg, force);
}

/* config: the settings by their command-line names. */
enum { CFG_CIPHER, CFG_SEGMENT, CFG_ROTATE, CFG_FORCE, CFG_COUNT };
static const char *const config_keys[CFG_COUNT] = {
	"cipher", "segment-size", "rotate-days", "force-days"};

static int config_key(const char *name)
{
	int k;

	for (k = 0; k < CFG_COUNT; k++)
		if (!strcmp(config_keys[k], name))
			return k;
	return -1;
}

static void config_print(const atrest_settings *s, int k, int with_key)
{
	if (with_key)
		printf("%s = ", config_keys[k]);
	if (k == CFG_CIPHER)
		printf("%s\n", cipher_label(s->cipher));
	else if (k == CFG_SEGMENT)
		printf("%u\n", s->segment_size);
	else if (k == CFG_ROTATE)
		printf("%u\n", s->rotate_days);
	else
		printf("%u\n", s->force_days);
}

/* Set setting k of s from text v; 0 or -1. */
static int config_parse(atrest_settings *s, int k, const char *v)
{
	int cipher;

	switch (k) {
	case CFG_CIPHER:
		cipher = atrest_cipher_from_name(v);
		if (cipher < 0)
			return -1;
		s->cipher = cipher;
		return 0;
	case CFG_SEGMENT:
		return parse_segment_size(v, &s->segment_size);
	case CFG_ROTATE:
		return cli_parse_u32(v, &s->rotate_days);
	default:
		return cli_parse_u32(v, &s->force_days);
	}
}

static void config_show(const atrest_settings *s, int k)
{
	if (k >= 0) {
		config_print(s, k, 0);
		return;
	}
	for (int i = 0; i < CFG_COUNT; i++)
		config_print(s, i, 1);
}

/*
 * Without a master key the settings can still be shown, as written: the
 * keyring's MAC that covers them needs the key, so say they are not
 * authenticated.  0 and *done, or the exit status.
 */
static int config_unkeyed(const struct cli_ctx *ctx, int k, int *done)
{
	atrest_settings set = ATREST_SETTINGS_INIT;
	atrest_keyprov *key = NULL;
	int rc = atrest_keyprov_from_env(&key, 0);

	atrest_keyprov_free(key);
	*done = rc == ATREST_ENOTFOUND;
	if (!*done)
		return CLI_OK;
	rc = atrest_settings_peek(&set, ctx->store, ctx->tenant);
	if (rc < 0)
		return cli_err(rc, "config %s", ctx->store);
	fprintf(stderr,
		"atrest: note: no master key given: these settings are shown as "
		"written, NOT authenticated\n");
	config_show(&set, k);
	return CLI_OK;
}

/* Print setting k (all when k < 0), or set it to value. */
static int config_run(const struct cli_ctx *ctx, int k, const char *value)
{
	atrest_settings set = ATREST_SETTINGS_INIT;
	atrest_store *st;
	int status, rc, done;

	if (!value) {
		status = config_unkeyed(ctx, k, &done);
		if (status || done)
			return status;
	}
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	rc = atrest_store_settings(&set, st);
	if (rc == 0 && value) {
		config_parse(&set, k, value); /* already checked */
		rc = atrest_store_set_settings(st, &set);
	}
	if (rc < 0)
		status = cli_err(rc, "config %s", ctx->store);
	else if (!value)
		config_show(&set, k);
	atrest_store_close(st);
	return status;
}

int cmd_config(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	atrest_settings scratch = {0};
	const char *value = NULL;
	int c, k = -1;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1)
		return c == 'h' ? cli_help(ctx->cmd) : CLI_USAGE;
	if (argc - optind > 2)
		return cli_usage_err(ctx, "too many arguments");
	if (optind < argc && (k = config_key(argv[optind])) < 0)
		return cli_usage_err(ctx,
			"unknown setting '%s' (cipher, "
			"segment-size, rotate-days, force-days)",
			argv[optind]);
	if (optind + 1 < argc)
		value = argv[optind + 1];
	if (value && config_parse(&scratch, k, value) < 0)
		return cli_usage_err(ctx, "bad value '%s' for %s", value, config_keys[k]);
	return config_run(ctx, k, value);
}
