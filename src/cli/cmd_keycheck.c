/*
 * atrest key-check: is the configured master key reachable, and is it the
 * one the store's keyring is wrapped with?  Reads only the keyring; with
 * --time N also the latency of N wraps and unwraps by its provider.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void show_text(const atrest_key_check *c, int rc)
{
	printf("store key:  %s %s\n", c->store_kind[0] ? c->store_kind : "-",
		c->store_key_id[0] ? c->store_key_id : "-");
	printf("given key:  %s %s\n", c->kind, c->key_id[0] ? c->key_id : "-");
	printf("reachable:  %s\n", rc == ATREST_EUNAVAILABLE ? "no" : "yes");
	printf("matches:    %s\n", c->matches ? "yes" : "no");
	printf("open:       %.2f ms\n", c->open_ms);
	if (c->runs) {
		printf("wrap:       median %.3f ms, p99 %.3f ms (%u runs)\n",
			c->wrap_median_ms, c->wrap_p99_ms, c->runs);
		printf("unwrap:     median %.3f ms, p99 %.3f ms (%u runs)\n",
			c->unwrap_median_ms, c->unwrap_p99_ms, c->runs);
	}
}

static void show_json(const atrest_key_check *c, int rc)
{
	fputs("{\"store_kind\": ", stdout);
	cli_json_str(stdout, c->store_kind);
	fputs(", \"store_key_id\": ", stdout);
	cli_json_str(stdout, c->store_key_id);
	fputs(", \"kind\": ", stdout);
	cli_json_str(stdout, c->kind);
	fputs(", \"key_id\": ", stdout);
	cli_json_str(stdout, c->key_id);
	printf(", \"reachable\": %s, \"matches\": %s, \"open_ms\": %.3f",
		rc == ATREST_EUNAVAILABLE ? "false" : "true",
		c->matches ? "true" : "false", c->open_ms);
	if (c->runs)
		printf(", \"runs\": %u, \"wrap_median_ms\": %.4f, \"wrap_p99_ms\": %.4f, "
		       "\"unwrap_median_ms\": %.4f, \"unwrap_p99_ms\": %.4f",
			c->runs, c->wrap_median_ms, c->wrap_p99_ms, c->unwrap_median_ms,
			c->unwrap_p99_ms);
	fputs("}\n", stdout);
}

int cmd_keycheck(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"time", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	atrest_keyprov *key = NULL;
	atrest_key_check c;
	uint32_t runs = 0;
	int json = 0, ch, rc;

	cli_getopt_reset();
	while ((ch = cli_getopt(ctx, argc, argv, ":ht:", opts)) != -1) {
		if (ch == 't' && (cli_parse_u32(optarg, &runs) < 0 || runs > 100000))
			return cli_usage_err(ctx, "--time needs a count up to 100000");
		else if (ch == 'j')
			json = 1;
		else if (ch == 'h')
			return cli_help(ctx->cmd);
		else if (ch != 't')
			return CLI_USAGE;
	}
	if (optind < argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	rc = atrest_keyprov_from_env(&key, 0);
	if (rc < 0)
		return cli_err_msg(cli_exit_status(ATREST_EKEY), "key-check: %s",
			rc == ATREST_ENOTFOUND ? "no master key: set ATREST_KEY, "
						 "ATREST_KEY_FILE, ATREST_PASSPHRASE or "
						 "ATREST_KEY_URI"
					       : cli_lib_message(rc));
	rc = atrest_key_check_tenant(&c, ctx->store, ctx->tenant, key, runs);
	if (rc == 0 || rc == ATREST_EKEY || rc == ATREST_EUNAVAILABLE) {
		if (json)
			show_json(&c, rc);
		else
			show_text(&c, rc);
	}
	atrest_keyprov_free(key);
	if (rc < 0)
		return cli_err(rc, "key-check: store %s", ctx->store);
	return CLI_OK;
}
