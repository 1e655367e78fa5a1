/*
 * Helpers shared by the commands: one-line errors, option parsing, opening
 * the store with the environment's keys, and output formats.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/*
 * The exit status for a library code: 0 ok, 1 other error, 2 usage or bad
 * input, 3 not found, 4 integrity failure, 5 key error or a service that
 * cannot be reached (a key provider, an object store: retry later).
 */
int cli_exit_status(int code)
{
	switch (code) {
	case ATREST_OK:
		return 0;
	case ATREST_EINVAL:
		return 2;
	case ATREST_ENOTFOUND:
		return 3;
	case ATREST_EINTEGRITY:
		return 4;
	case ATREST_EKEY:
	case ATREST_EUNAVAILABLE:
		return 5;
	default:
		return 1;
	}
}

#define WHAT_MAX 2048

/* Format the caller's printf-style arguments into buf. */
#define FORMAT_WHAT(buf, fmt)                          \
	do {                                           \
		va_list ap_;                           \
		va_start(ap_, fmt);                    \
		vsnprintf(buf, sizeof(buf), fmt, ap_); \
		va_end(ap_);                           \
	} while (0)

const char *cli_lib_message(int code)
{
	const atrest_error *e = atrest_error_last();

	/* A message left by an earlier, unrelated failure must not be shown. */
	if (e && e->code == code && e->message && *e->message)
		return e->message;
	return atrest_strerror(code);
}

int cli_err(int code, const char *fmt, ...)
{
	char what[WHAT_MAX];

	FORMAT_WHAT(what, fmt);
	fprintf(stderr, "atrest: %s: %s\n", what, cli_lib_message(code));
	return cli_exit_status(code);
}

int cli_err_os(int errnum, const char *fmt, ...)
{
	char what[WHAT_MAX];

	FORMAT_WHAT(what, fmt);
	fprintf(stderr, "atrest: %s: %s\n", what, strerror(errnum));
	return CLI_FAIL;
}

int cli_err_msg(int status, const char *fmt, ...)
{
	char what[WHAT_MAX];

	FORMAT_WHAT(what, fmt);
	fprintf(stderr, "atrest: %s\n", what);
	return status;
}

int cli_usage_err(const struct cli_ctx *ctx, const char *fmt, ...)
{
	char what[WHAT_MAX];

	FORMAT_WHAT(what, fmt);
	if (ctx && ctx->cmd)
		fprintf(stderr, "atrest: %s: %s (try 'atrest %s --help')\n",
			ctx->cmd->name, what, ctx->cmd->name);
	else
		fprintf(stderr, "atrest: %s (try 'atrest --help')\n", what);
	return CLI_USAGE;
}

int cli_dispatch(struct cli_ctx *ctx, int argc, char **argv,
	const struct cli_action *actions, size_t n, const char *names)
{
	size_t i;

	if (argc >= 2 &&
		(!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
			!strcmp(argv[1], "help")))
		return cli_help(ctx->cmd);
	if (argc < 2)
		return cli_usage_err(ctx, "missing action (%s)", names);
	for (i = 0; i < n; i++)
		if (!strcmp(argv[1], actions[i].name))
			break;
	if (i == n)
		return cli_usage_err(ctx, "unknown action '%s'", argv[1]);
	cli_getopt_reset();
	return actions[i].fn(ctx, argc - 1, argv + 1);
}

int cli_help(const struct cli_cmd *cmd)
{
	printf("usage: atrest %s", cmd->usage);
	return CLI_OK;
}

void cli_getopt_reset(void)
{
	/*
	 * 0 rather than 1: glibc then reinitialises completely, including the
	 * ordering ('+') that the global parse chose.  argv[0] is skipped.
	 */
	optind = 0;
	opterr = 0;
}

int cli_getopt(const struct cli_ctx *ctx, int argc, char **argv, const char *optstring,
	const struct option *longopts)
{
	const char *arg;
	int c;

	c = getopt_long(argc, argv, optstring, longopts, NULL);
	if (c != '?' && c != ':')
		return c;
	arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	if (c == ':')
		cli_usage_err(ctx, "option '%s' needs a value", arg);
	else if (optopt && strncmp(arg, "--", 2) != 0)
		cli_usage_err(ctx, "unknown option '-%c'", optopt);
	else
		cli_usage_err(ctx, "unknown option '%s'", arg);
	return CLI_OPT_BAD;
}

/* Any failure to get a master key is a key error (exit 5), with a hint. */
static int key_err(int code, const char *which)
{
	fprintf(stderr, "atrest: %s: %s\n", which, cli_lib_message(code));
	return cli_exit_status(ATREST_EKEY);
}

int cli_store_options(atrest_store_options *opts, const struct cli_ctx *ctx)
{
	atrest_keyprov *key = NULL, *old = NULL;
	int rc;

	rc = atrest_keyprov_from_env(&key, 0);
	if (rc == ATREST_ENOTFOUND)
		return cli_err_msg(cli_exit_status(ATREST_EKEY),
			"no master key: set ATREST_KEY, ATREST_KEY_FILE, "
			"ATREST_PASSPHRASE or ATREST_KEY_URI "
			"('atrest keygen' makes a key)");
	if (rc < 0)
		return key_err(rc, "master key");
	rc = atrest_keyprov_from_env(&old, 1);
	if (rc < 0 && rc != ATREST_ENOTFOUND) {
		atrest_keyprov_free(key);
		return key_err(rc, "previous master key (ATREST_OLD_*)");
	}
	atrest_error_clear();
	/* Not ATREST_STORE_OPTIONS_INIT: it trips -Wmissing-field-initializers. */
	memset(opts, 0, sizeof(*opts));
	opts->version = ATREST_STORE_OPTIONS_VERSION;
	opts->path = ctx->store;
	opts->tenant = ctx->tenant;
	opts->key = key;
	opts->old_key = rc == 0 ? old : NULL;
	opts->allow_plaintext = ctx->allow_plaintext;
	return CLI_OK;
}

int cli_open_store(atrest_store **out, const struct cli_ctx *ctx, int create)
{
	atrest_store_options opts;
	int status, rc;

	*out = NULL;
	status = cli_store_options(&opts, ctx);
	if (status)
		return status;
	opts.create = create;
	rc = atrest_store_open(out, &opts);
	if (rc < 0) {
		*out = NULL;
		return cli_err(rc, "store %s", ctx->store);
	}
	return CLI_OK;
}

/* The value of the leading digits of s in *v, the rest in *end; 0 or -1. */
static int parse_digits(const char *s, unsigned long long *v, char **end)
{
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno ? -1 : 0;
}

int cli_parse_size(const char *s, uint32_t *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (parse_digits(s, &v, &end) < 0)
		return -1;
	if (!strcmp(end, "K") || !strcmp(end, "k") || !strcmp(end, "KiB"))
		mul = 1024;
	else if (!strcmp(end, "M") || !strcmp(end, "MiB"))
		mul = 1024 * 1024;
	else if (*end)
		return -1;
	if (v > UINT32_MAX / mul)
		return -1;
	*out = (uint32_t)(v * mul);
	return 0;
}

int cli_parse_u32(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (parse_digits(s, &v, &end) < 0 || *end || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* atrest_list callback: copy one entry; 1 (stop) when memory runs out. */
static int collect_one(const atrest_list_entry *e, void *payload)
{
	struct cli_list *l = payload;
	struct cli_entry *v;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;

		v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return 1;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].name = strdup(e->name);
	if (!l->v[l->n].name)
		return 1;
	l->v[l->n].stored_size = e->stored_size;
	l->v[l->n].mtime = e->mtime;
	l->n++;
	return 0;
}

int cli_list_collect(
	struct cli_list *out, atrest_store *st, const char *prefix, const char *what)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = atrest_list(st, prefix ? prefix : "", collect_one, out);
	if (rc > 0)
		return cli_err_os(ENOMEM, "%s: listing objects", what);
	if (rc < 0)
		return cli_err(rc, "%s", what);
	return CLI_OK;
}

void cli_list_free(struct cli_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}
