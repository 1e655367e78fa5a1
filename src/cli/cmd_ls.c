/*
 * atrest ls: the objects under a prefix, as names, as long lines with the
 * authenticated header facts (-l), or as a JSON array (--json).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

struct ls_args {
	const char *prefix;
	int lng, json;
};

static int ls_parse(struct cli_ctx *ctx, int argc, char **argv, struct ls_args *a)
{
	static const struct option opts[] = {{"long", no_argument, NULL, 'l'},
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":hl", opts)) != -1) {
		if (c == 'l') {
			a->lng = 1;
		} else if (c == 'j') {
			a->json = 1;
		} else if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		} else {
			return CLI_USAGE;
		}
	}
	if (argc - optind > 1)
		return cli_usage_err(ctx, "too many arguments");
	a->prefix = optind < argc ? argv[optind] : "";
	return CLI_OK;
}

static const char *info_cipher(const atrest_stat_info *info)
{
	const char *name;

	if (info->plaintext)
		return "plaintext";
	name = atrest_cipher_name(info->cipher);
	return name ? name : "unknown";
}

/* "plaintext_size stored_size mtime cipher key=ID name"; exit status. */
static int ls_long_line(atrest_store *st, const struct cli_entry *e)
{
	atrest_stat_info info = ATREST_STAT_INFO_INIT;
	char when[32], key[16] = "-";
	int rc, status;

	rc = atrest_stat(&info, st, e->name);
	if (rc < 0) {
		status = cli_err(rc, "ls %s", e->name);
		cli_iso_time(when, e->mtime);
		printf("- %llu %s - key=- %s\n", (unsigned long long)e->stored_size, when,
			e->name);
		return status;
	}
	cli_iso_time(when, info.mtime);
	if (!info.plaintext)
		snprintf(key, sizeof(key), "%u", info.data_key_id);
	printf("%llu %llu %s %s key=%s %s\n", (unsigned long long)info.size,
		(unsigned long long)info.stored_size, when, info_cipher(&info), key,
		e->name);
	atrest_stat_info_clear(&info);
	return CLI_OK;
}

static void json_meta(const atrest_stat_info *info)
{
	size_t i;

	fputs(", \"meta\": {", stdout);
	for (i = 0; i < info->meta_count; i++) {
		if (i)
			fputs(", ", stdout);
		cli_json_str(stdout, info->meta[i].key);
		fputs(": ", stdout);
		cli_json_str(stdout, info->meta[i].value);
	}
	putchar('}');
}

/* The -l members of e's JSON object; exit status. */
static int json_long(atrest_store *st, const struct cli_entry *e)
{
	atrest_stat_info info = ATREST_STAT_INFO_INIT;
	int rc;

	rc = atrest_stat(&info, st, e->name);
	if (rc < 0) {
		fputs(", \"size\": null, \"cipher\": null, "
		      "\"data_key_id\": null, \"error\": ",
			stdout);
		cli_json_str(stdout, cli_lib_message(rc));
		return cli_err(rc, "ls %s", e->name);
	}
	printf(", \"size\": %llu, \"cipher\": ", (unsigned long long)info.size);
	cli_json_str(stdout, info_cipher(&info));
	if (info.plaintext)
		fputs(", \"data_key_id\": null", stdout);
	else
		printf(", \"data_key_id\": %u", info.data_key_id);
	json_meta(&info);
	atrest_stat_info_clear(&info);
	return CLI_OK;
}

static int ls_json(atrest_store *st, const struct cli_list *l, int lng)
{
	char when[32];
	int status = CLI_OK, s;
	size_t i;

	putchar('[');
	for (i = 0; i < l->n; i++) {
		fputs(i ? ",\n " : "\n ", stdout);
		fputs("{\"name\": ", stdout);
		cli_json_str(stdout, l->v[i].name);
		cli_iso_time(when, l->v[i].mtime);
		printf(", \"stored_size\": %llu, \"mtime\": \"%s\"",
			(unsigned long long)l->v[i].stored_size, when);
		if (lng && (s = json_long(st, &l->v[i])) != 0 && !status)
			status = s;
		putchar('}');
	}
	fputs(l->n ? "\n]\n" : "]\n", stdout);
	return status;
}

int cmd_ls(struct cli_ctx *ctx, int argc, char **argv)
{
	struct ls_args a = {0};
	struct cli_list l;
	atrest_store *st;
	int status, s;
	size_t i;

	if (cli_recursive(argc, argv))
		return cmd_ls_tree(ctx, argc, argv);
	status = ls_parse(ctx, argc, argv, &a);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	status = cli_list_collect(&l, st, a.prefix, "ls");
	if (status) {
		atrest_store_close(st);
		return status;
	}
	if (a.json)
		status = ls_json(st, &l, a.lng);
	for (i = 0; !a.json && i < l.n; i++) {
		if (!a.lng)
			printf("%s\n", l.v[i].name);
		else if ((s = ls_long_line(st, &l.v[i])) != 0 && !status)
			status = s;
	}
	cli_list_free(&l);
	atrest_store_close(st);
	return status;
}
