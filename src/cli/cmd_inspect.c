/*
 * Checking objects: inspect (header facts read without any key, not even
 * opening the store) and verify (authenticate every object under a prefix).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* One fact of a header: a string, or (str NULL) a number. */
struct field {
	const char *key;
	const char *str;
	unsigned long long num;
};

#define NFIELDS 14

static const char *form_name(int form)
{
	return form == 1    ? "object"
		: form == 2 ? "standalone"
		: form == 3 ? "multipart"
			    : "unknown";
}

static void header_fields(struct field *f, const atrest_header_info *h, const char *path)
{
	const char *cipher = atrest_cipher_name(h->cipher);
	const struct field all[NFIELDS] = {
		{"path", path, 0},
		{"version", NULL, (unsigned long long)h->format_version},
		{"form", form_name(h->form), 0},
		{"cipher", cipher ? cipher : "unknown", 0},
		{"segment_size", NULL, h->segment_size},
		{"data_key_id", NULL, h->data_key_id},
		{"store_id", h->store_id, 0},
		{"tenant", h->tenant, 0},
		{"name", h->name, 0},
		{"header_size", NULL, h->header_size},
		{"meta_size", NULL, h->meta_size},
		{"stored_size", NULL, h->stored_size},
		{"plaintext_size", NULL, h->plaintext_size},
		{"segments", NULL, h->segments},
	};

	memcpy(f, all, sizeof(all));
}

static void inspect_text(const struct field *f)
{
	int i;

	for (i = 0; i < NFIELDS; i++) {
		if (f[i].str)
			printf("%s: %s\n", f[i].key, f[i].str);
		else
			printf("%s: %llu\n", f[i].key, f[i].num);
	}
}

static void inspect_json(const struct field *f, const atrest_header_info *h)
{
	int i;

	putchar('{');
	for (i = 0; i < NFIELDS; i++) {
		printf("%s\"%s\": ", i ? ", " : "", f[i].key);
		if (f[i].str)
			cli_json_str(stdout, f[i].str);
		else
			printf("%llu", f[i].num);
	}
	fputs(", \"context\": {\"store_id\": ", stdout);
	cli_json_str(stdout, h->store_id);
	fputs(", \"tenant\": ", stdout);
	cli_json_str(stdout, h->tenant);
	fputs(", \"name\": ", stdout);
	cli_json_str(stdout, h->name);
	fputs("}}\n", stdout);
}

/*
 * Inspect arg: the file itself when it is a regular file, else the object
 * arg of the store (through its backend, in the tenant's namespace).
 */
static int inspect_arg(atrest_header_info *h, const struct cli_ctx *ctx, const char *arg)
{
	struct stat sb;
	int rc;

	if (stat(arg, &sb) == 0 && S_ISREG(sb.st_mode))
		return atrest_inspect_file(h, arg);
	rc = atrest_name_check(arg);
	if (rc < 0)
		return rc;
	rc = atrest_inspect_object(h, ctx->store, ctx->tenant, arg);
	if (rc == ATREST_ENOTFOUND)
		return atrest_error_set(
			rc, "no such file, nor object in store %s", ctx->store);
	return rc;
}

/* "PATH is not an atrest object", with the library's detail if it adds any. */
static int not_atrest(const char *path, const char *why)
{
	static const char plain[] = "not an atrest object";

	if (!strncmp(why, plain, sizeof(plain) - 1))
		why += sizeof(plain) - 1;
	while (*why == ' ' || *why == ':')
		why++;
	return cli_err_msg(cli_exit_status(ATREST_EINTEGRITY),
		"%s is not an "
		"atrest object%s%s",
		path, *why ? ": " : "", why);
}

int cmd_inspect(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct field f[NFIELDS];
	atrest_header_info h = ATREST_HEADER_INFO_INIT;
	const char *path;
	int json = 0, c, rc, status = CLI_OK;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'h')
			return cli_help(ctx->cmd);
		if (c != 'j')
			return CLI_USAGE;
		json = 1;
	}
	if (optind == argc)
		return cli_usage_err(ctx, "missing NAME or PATH");
	if (optind + 1 < argc)
		return cli_usage_err(ctx, "too many arguments");
	path = argv[optind];
	rc = inspect_arg(&h, ctx, path);
	if (rc == 0) {
		header_fields(f, &h, path);
		if (json)
			inspect_json(f, &h);
		else
			inspect_text(f);
	} else if (rc == ATREST_EINTEGRITY) {
		status = not_atrest(path, cli_lib_message(rc));
	} else {
		status = cli_err(rc, "inspect %s", path);
	}
	return status;
}

/* Read name to the end, discarding plaintext; prints "NAME: reason". */
static int verify_one(
	atrest_store *st, const char *name, void *buf, struct cli_progress *p)
{
	atrest_reader *r = NULL;
	size_t got = 1;
	int rc;

	rc = atrest_reader_open(&r, st, name);
	while (rc == 0 && got)
		rc = atrest_reader_read(r, buf, CLI_IO_BUF, &got);
	if (rc < 0) {
		cli_progress_clear(p);
		fprintf(stderr, "%s: %s\n", name, cli_lib_message(rc));
	}
	if (r)
		atrest_reader_close(r);
	return rc;
}

/* Verify every listed object; exit status of the first failure. */
static int no_key(const atrest_key_info *k, void *payload)
{
	(void)k, (void)payload;
	return 0;
}

/*
 * Verify every listed object; exit status of the first failure.  A whole
 * store's verify also resets the per-key usage counts to a full count.
 */
static int verify_all(atrest_store *st, const struct cli_list *l, void *buf, int whole)
{
	struct cli_progress p;
	size_t i, failed = 0;
	int first = 0, rc, warned;

	cli_progress_start(&p, "verifying", l->n);
	for (i = 0; i < l->n; i++) {
		cli_progress_show(&p, i);
		rc = verify_one(st, l->v[i].name, buf, &p);
		if (rc < 0 && !failed++)
			first = rc;
	}
	cli_progress_show(&p, l->n);
	cli_progress_clear(&p);
	if (whole && (rc = atrest_keys_list(st, ATREST_KEYS_SCAN, no_key, NULL)) < 0)
		return cli_err(rc, "verify: counting objects per data key");
	/* Objects that verify may still sit under a compromised key. */
	warned = cli_warn_exposed(st, "verify");
	printf("verified %zu objects, %zu failed\n", l->n, failed);
	return first ? cli_exit_status(first) : warned;
}

int cmd_verify(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct cli_list l;
	atrest_store *st;
	void *buf;
	int c, status;

	if (cli_recursive(argc, argv))
		return cmd_verify_tree(ctx, argc, argv);
	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1)
		return c == 'h' ? cli_help(ctx->cmd) : CLI_USAGE;
	if (argc - optind > 1)
		return cli_usage_err(ctx, "too many arguments");
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	status = cli_list_collect(&l, st, optind < argc ? argv[optind] : "", "verify");
	buf = status ? NULL : malloc(CLI_IO_BUF);
	if (!status && !buf)
		status = cli_err_msg(CLI_FAIL, "verify: out of memory");
	if (!status)
		status = verify_all(st, &l, buf, optind == argc || !*argv[optind]);
	if (buf)
		explicit_bzero(buf, CLI_IO_BUF);
	free(buf);
	cli_list_free(&l);
	atrest_store_close(st);
	return status;
}
