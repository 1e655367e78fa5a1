/*
 * atrest ls: the objects under a prefix, as names (no key needed), as long
 * lines with the authenticated header facts (-l), or as a JSON array.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct ls_args {
	const char *prefix;
	int lng, json, human, zero;
	uint64_t size, stored; /* totals of -l */
	size_t failed;
};

static int ls_parse(struct cli_ctx *ctx, int argc, char **argv, struct ls_args *a)
{
	enum { OPT_HELP = 256 };
	static const struct option opts[] = {{"long", no_argument, NULL, 'l'},
		{"json", no_argument, NULL, 'j'},
		{"human-readable", no_argument, NULL, 'h'},
		{"null", no_argument, NULL, '0'}, {"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":hl0", opts)) != -1) {
		if (c == 'l') {
			a->lng = 1;
		} else if (c == 'j') {
			a->json = 1;
		} else if (c == 'h') {
			a->human = 1;
		} else if (c == '0') {
			a->zero = 1;
		} else if (c == OPT_HELP) {
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

/* A size as digits, or with -h as coreutils shows it (1.5K, 12M). */
static const char *size_text(char out[32], uint64_t n, int human)
{
	static const char units[] = "KMGTPE";
	double v = (double)n;
	int u = -1;

	if (!human || n < 1024) {
		snprintf(out, 32, "%llu", (unsigned long long)n);
		return out;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (v < 10)
		snprintf(out, 32, "%.1f%c", v, units[u]);
	else
		snprintf(out, 32, "%.0f%c", v, units[u]);
	return out;
}

#define LS_LONG_FMT "%10s %10s %-20s %-17s %10s %s%c"

static void ls_long_header(const struct ls_args *a)
{
	if (!a->zero)
		printf(LS_LONG_FMT, "SIZE", "STORED", "MODIFIED", "CIPHER", "KEY", "NAME",
			'\n');
}

/* "size stored_size mtime cipher key name" under the header; exit status. */
static int ls_long_line(atrest_store *st, const struct cli_entry *e, struct ls_args *a)
{
	atrest_stat_info info = ATREST_STAT_INFO_INIT;
	char when[32], key[16] = "-", sz[32], stored[32];
	int rc, status;
	char end = a->zero ? '\0' : '\n';

	a->stored += e->stored_size;
	rc = atrest_stat(&info, st, e->name);
	if (rc < 0) {
		status = cli_err(rc, "ls %s", e->name);
		cli_iso_time(when, e->mtime);
		printf(LS_LONG_FMT, "-", size_text(stored, e->stored_size, a->human),
			when, "-", "-", e->name, end);
		a->failed++;
		return status;
	}
	cli_iso_time(when, info.mtime);
	if (!info.plaintext)
		snprintf(key, sizeof(key), "%u", info.data_key_id);
	a->size += info.size;
	printf(LS_LONG_FMT, size_text(sz, info.size, a->human),
		size_text(stored, info.stored_size, a->human), when, info_cipher(&info),
		key, e->name, end);
	atrest_stat_info_clear(&info);
	return CLI_OK;
}

static void ls_long_total(const struct ls_args *a, size_t n)
{
	char sz[32], stored[32];

	if (a->zero)
		return;
	printf("total: %zu object%s, %s%s of data%s, %s%s stored\n", n, n == 1 ? "" : "s",
		size_text(sz, a->size, a->human), a->human ? "" : " bytes",
		a->failed ? " (unreadable ones not counted)" : "",
		size_text(stored, a->stored, a->human), a->human ? "" : " bytes");
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

/* The list: with the store opened with its key, or without any (names
 * only, not secret) when no master key is set and -l is not asked for. */
static int ls_collect(struct cli_list *l, atrest_store **st, struct cli_ctx *ctx,
	const struct ls_args *a)
{
	int rc;

	*st = NULL;
	memset(l, 0, sizeof(*l));
	if (a->lng || cli_have_key()) {
		rc = cli_open_store(st, ctx, 0);
		return rc ? rc : cli_list_collect(l, *st, a->prefix, "ls");
	}
	rc = atrest_list_peek(ctx->store, ctx->tenant, a->prefix, cli_list_add, l);
	if (rc > 0)
		return cli_err_os(ENOMEM, "ls: listing objects");
	if (rc < 0)
		return cli_err(rc, "ls");
	return CLI_OK;
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
	status = ls_collect(&l, &st, ctx, &a);
	if (status) {
		cli_list_free(&l);
		atrest_store_close(st);
		return status;
	}
	if (a.json)
		status = ls_json(st, &l, a.lng);
	else if (a.lng)
		ls_long_header(&a);
	for (i = 0; !a.json && i < l.n; i++) {
		if (!a.lng)
			printf("%s%c", l.v[i].name, a.zero ? '\0' : '\n');
		else if ((s = ls_long_line(st, &l.v[i], &a)) != 0 && !status)
			status = s;
	}
	if (a.lng && !a.json)
		ls_long_total(&a, l.n);
	cli_list_free(&l);
	atrest_store_close(st);
	return status;
}
