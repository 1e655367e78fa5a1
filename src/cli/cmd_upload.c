/*
 * upload create | part | complete | list | abort | cleanup: multipart
 * uploads from the command line — made part by part, listed, aborted one
 * by one, or aborted by age.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static int print_text(const atrest_upload_entry *e, void *payload)
{
	char when[32];

	(void)payload;
	cli_iso_time(when, e->initiated);
	printf("%s %s %s\n", when, e->upload_id, e->name);
	return 0;
}

static int print_json(const atrest_upload_entry *e, void *payload)
{
	char when[32];
	int *first = payload;

	cli_iso_time(when, e->initiated);
	fputs(*first ? "[\n {\"name\": " : ",\n {\"name\": ", stdout);
	*first = 0;
	cli_json_str(stdout, e->name);
	printf(", \"upload_id\": \"%s\", \"initiated\": \"%s\"}", e->upload_id, when);
	return 0;
}

static int upload_list(const struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	atrest_store *st;
	int c, json = 0, first = 1, rc;

	while ((c = cli_getopt(ctx, argc, argv, ":", opts)) != -1) {
		if (c != 'j')
			return CLI_USAGE;
		json = 1;
	}
	if (argc - optind > 1)
		return cli_usage_err(ctx, "too many arguments");
	if ((c = cli_open_store(&st, ctx, 0)) != 0)
		return c;
	rc = atrest_upload_list(st, optind < argc ? argv[optind] : "",
		json ? print_json : print_text, &first);
	atrest_store_close(st);
	if (rc < 0)
		return cli_err(rc, "upload list");
	if (json)
		puts(first ? "[]" : "\n]");
	return CLI_OK;
}

static int upload_abort(const struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{NULL, 0, NULL, 0}};
	atrest_store *st;
	int c, rc;

	while ((c = cli_getopt(ctx, argc, argv, ":", opts)) != -1)
		return CLI_USAGE;
	if (optind + 2 != argc)
		return cli_usage_err(ctx, "upload abort needs NAME and UPLOAD_ID");
	if ((c = cli_open_store(&st, ctx, 0)) != 0)
		return c;
	rc = atrest_upload_abort(st, argv[optind], argv[optind + 1]);
	atrest_store_close(st);
	if (rc < 0)
		return cli_err(rc, "upload abort %s %s", argv[optind], argv[optind + 1]);
	printf("upload %s of %s aborted\n", argv[optind + 1], argv[optind]);
	return CLI_OK;
}

static int upload_create(const struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{NULL, 0, NULL, 0}};
	atrest_store *st;
	char *id = NULL;
	int c, rc;

	while ((c = cli_getopt(ctx, argc, argv, ":", opts)) != -1)
		return CLI_USAGE;
	if (optind + 1 != argc)
		return cli_usage_err(ctx, "upload create needs NAME");
	if ((c = cli_open_store(&st, ctx, 1)) != 0)
		return c;
	rc = atrest_upload_create(&id, st, argv[optind], NULL);
	atrest_store_close(st);
	if (rc < 0)
		return cli_err(rc, "upload create %s", argv[optind]);
	puts(id);
	atrest_free(id);
	return CLI_OK;
}

/* A part number 1..10000; 0 when not one. */
static uint32_t part_number(const char *s)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *s == '+' || n < 1 ||
		n > ATREST_UPLOAD_MAX_PARTS)
		return 0;
	return (uint32_t)n;
}

static int part_from(atrest_store *st, const char *name, const char *id, uint32_t n,
	int fd, const char *src)
{
	char what[64 + ATREST_NAME_MAX];
	atrest_writer *w;
	void *buf;
	int rc;

	rc = atrest_upload_part_open(&w, st, name, id, n, NULL);
	if (rc < 0)
		return cli_err(rc, "upload part %s %s %u", name, id, n);
	if (!(buf = malloc(CLI_IO_BUF))) {
		atrest_writer_abort(w);
		return cli_err_os(ENOMEM, "upload part");
	}
	snprintf(what, sizeof(what), "upload part %s %u", name, n);
	rc = cli_stream_to_writer(w, fd, buf, what, src);
	explicit_bzero(buf, CLI_IO_BUF);
	free(buf);
	return rc;
}

static int upload_part(const struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{NULL, 0, NULL, 0}};
	atrest_store *st;
	const char *file;
	uint32_t n;
	int c, fd = STDIN_FILENO, status;

	while ((c = cli_getopt(ctx, argc, argv, ":", opts)) != -1)
		return CLI_USAGE;
	if (argc - optind < 3 || argc - optind > 4)
		return cli_usage_err(
			ctx, "upload part needs NAME UPLOAD_ID NUMBER [FILE]");
	if (!(n = part_number(argv[optind + 2])))
		return cli_usage_err(
			ctx, "part number: 1 to %u", ATREST_UPLOAD_MAX_PARTS);
	file = argc - optind == 4 ? argv[optind + 3] : NULL;
	if (file && strcmp(file, "-") && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return cli_err_os(errno, "upload part: %s", file);
	status = cli_open_store(&st, ctx, 0);
	if (!status) {
		status = part_from(st, argv[optind], argv[optind + 1], n, fd,
			file ? file : "standard input");
		atrest_store_close(st);
	}
	if (fd > STDIN_FILENO)
		close(fd);
	return status;
}

static int upload_complete(const struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"if-absent", no_argument, NULL, 'x'}, {NULL, 0, NULL, 0}};
	atrest_write_options o = ATREST_WRITE_OPTIONS_INIT;
	uint32_t *nums;
	atrest_store *st;
	size_t count;
	int c, rc;

	while ((c = cli_getopt(ctx, argc, argv, ":", opts)) != -1) {
		if (c != 'x')
			return CLI_USAGE;
		o.flags |= ATREST_WRITE_IF_ABSENT;
	}
	if (argc - optind < 3)
		return cli_usage_err(
			ctx, "upload complete needs NAME UPLOAD_ID NUMBER...");
	count = (size_t)(argc - optind - 2);
	if (!(nums = calloc(count, sizeof(*nums))))
		return cli_err_os(ENOMEM, "upload complete");
	for (size_t i = 0; i < count; i++)
		if (!(nums[i] = part_number(argv[optind + 2 + (int)i]))) {
			free(nums);
			return cli_usage_err(
				ctx, "part number: 1 to %u", ATREST_UPLOAD_MAX_PARTS);
		}
	if ((c = cli_open_store(&st, ctx, 0)) != 0) {
		free(nums);
		return c;
	}
	rc = atrest_upload_complete(
		st, argv[optind], argv[optind + 1], nums, count, NULL, &o);
	atrest_store_close(st);
	free(nums);
	if (rc < 0)
		return cli_err(rc, "upload complete %s", argv[optind]);
	printf("%s: %zu parts\n", argv[optind], count);
	return CLI_OK;
}

/* "90", "30m", "12h", "7d": seconds; -1 when not a duration. */
static int64_t parse_duration(const char *s)
{
	static const char units[] = "smhd";
	static const int64_t mult[] = {1, 60, 3600, 86400};
	char *end;
	long long n;
	const char *u;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || end == s || n < 0 || *s == '-' || *s == '+')
		return -1;
	if (!*end)
		return n;
	u = strchr(units, tolower((unsigned char)*end));
	if (!u || end[1] || n > INT64_MAX / mult[u - units])
		return -1;
	return n * mult[u - units];
}

static int upload_cleanup(const struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"older-than", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
	atrest_store *st;
	int64_t age = -1;
	size_t n = 0;
	int c, rc;

	while ((c = cli_getopt(ctx, argc, argv, ":", opts)) != -1) {
		if (c != 'o')
			return CLI_USAGE;
		if ((age = parse_duration(optarg)) < 0)
			return cli_usage_err(ctx,
				"--older-than: a duration such as 3600, 30m, 12h or 7d");
	}
	if (optind != argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	if (age < 0)
		return cli_usage_err(ctx, "upload cleanup needs --older-than DUR");
	if ((c = cli_open_store(&st, ctx, 0)) != 0)
		return c;
	rc = atrest_upload_cleanup(&n, st, age);
	atrest_store_close(st);
	if (rc < 0)
		return cli_err(rc, "upload cleanup");
	printf("%zu uploads removed\n", n);
	return CLI_OK;
}

static const struct cli_action actions[] = {{"create", upload_create},
	{"part", upload_part}, {"complete", upload_complete}, {"list", upload_list},
	{"abort", upload_abort}, {"cleanup", upload_cleanup}};

int cmd_upload(struct cli_ctx *ctx, int argc, char **argv)
{
	return cli_dispatch(ctx, argc, argv, actions,
		sizeof(actions) / sizeof(actions[0]),
		"create, part, complete, list, abort or cleanup");
}
