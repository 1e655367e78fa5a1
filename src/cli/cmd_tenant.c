/*
 * tenant add | list | shred: the tenants of a store, each with its own
 * namespace and keyring (and perhaps its own master key).  The store's
 * master key authenticates the list of tenants.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The store itself (never a tenant's handle); 0 or the exit status. */
static int open_store(atrest_store **st, const struct cli_ctx *ctx)
{
	if (ctx->tenant)
		return cli_usage_err(ctx, "tenants are managed without --tenant");
	return cli_open_store(st, ctx, 0);
}

static int tenant_add(const struct cli_ctx *ctx, int argc, char **argv)
{
	atrest_store *st;
	static const struct option opts[] = {{"key-uri", required_argument, NULL, 'u'},
		{"key-file", required_argument, NULL, 'f'}, {NULL, 0, NULL, 0}};
	atrest_tenant_options o = ATREST_TENANT_OPTIONS_INIT;
	int c, rc;

	while ((c = cli_getopt(ctx, argc, argv, ":", opts)) != -1) {
		if (c == 'u')
			o.key_uri = optarg;
		else if (c == 'f')
			o.key_file = optarg;
		else
			return CLI_USAGE;
	}
	if (optind + 1 != argc)
		return cli_usage_err(ctx, "tenant add needs one tenant name");
	if (o.key_uri && o.key_file)
		return cli_usage_err(ctx, "--key-uri or --key-file, not both");
	if ((c = open_store(&st, ctx)) != 0)
		return c;
	rc = atrest_tenant_add(st, argv[optind], &o);
	atrest_store_close(st);
	if (rc < 0)
		return cli_err(rc, "tenant add %s", argv[optind]);
	printf("tenant %s added (master key: %s)\n", argv[optind],
		o.key_uri            ? "its own, by URI"
			: o.key_file ? "its own, from a key file"
				     : "the store's");
	return CLI_OK;
}

static int print_text(const atrest_tenant_info *t, void *payload)
{
	(void)payload;
	printf("%-24s %s %s%s%s\n", t->name, t->keyring_id,
		t->key_uri            ? "key-uri "
			: t->key_file ? "key-file "
				      : "store",
		t->key_uri ? t->key_uri : "", t->key_file ? t->key_file : "");
	return 0;
}

static int print_json(const atrest_tenant_info *t, void *payload)
{
	int *first = payload;

	fputs(*first ? "[\n {\"name\": " : ",\n {\"name\": ", stdout);
	*first = 0;
	cli_json_str(stdout, t->name);
	printf(", \"keyring_id\": \"%s\", \"key_uri\": ", t->keyring_id);
	if (t->key_uri)
		cli_json_str(stdout, t->key_uri);
	else
		fputs("null", stdout);
	fputs(", \"key_file\": ", stdout);
	if (t->key_file)
		cli_json_str(stdout, t->key_file);
	else
		fputs("null", stdout);
	fputs("}", stdout);
	return 0;
}

static int tenant_list(const struct cli_ctx *ctx, int argc, char **argv)
{
	atrest_store *st;
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	int c, json = 0, first = 1, rc;

	while ((c = cli_getopt(ctx, argc, argv, ":", opts)) != -1) {
		if (c != 'j')
			return CLI_USAGE;
		json = 1;
	}
	if (optind != argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	if ((c = open_store(&st, ctx)) != 0)
		return c;
	rc = atrest_tenant_list(st, json ? print_json : print_text, &first);
	atrest_store_close(st);
	if (rc < 0)
		return cli_err(rc, "tenant list");
	if (json)
		puts(first ? "[]" : "\n]");
	return CLI_OK;
}

static int tenant_shred(const struct cli_ctx *ctx, int argc, char **argv)
{
	atrest_store *st;
	static const struct option opts[] = {{NULL, 0, NULL, 0}};
	uint64_t removed = 0;
	int c, rc;

	while ((c = cli_getopt(ctx, argc, argv, ":", opts)) != -1)
		return CLI_USAGE;
	if (optind + 1 != argc)
		return cli_usage_err(ctx, "tenant shred needs one tenant name");
	if ((c = open_store(&st, ctx)) != 0)
		return c;
	rc = atrest_tenant_shred(&removed, st, argv[optind]);
	atrest_store_close(st);
	if (rc < 0)
		return cli_err(rc, "tenant shred %s", argv[optind]);
	printf("tenant %s shredded: its data keys destroyed, %llu objects removed\n",
		argv[optind], (unsigned long long)removed);
	return CLI_OK;
}

static const struct cli_action actions[] = {
	{"add", tenant_add}, {"list", tenant_list}, {"shred", tenant_shred}};

int cmd_tenant(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, argc, argv, actions,
		sizeof(actions) / sizeof(actions[0]), "add, list or shred");
}
