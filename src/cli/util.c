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

/* Names longer than this are shown as their start, "...", and their end. */
#define NAME_SHOWN 64
#define KEEP (NAME_SHOWN / 2 - 2)

/* src with every quoted 'run' longer than NAME_SHOWN shortened, into out. */
static void shorten_quoted(char *out, size_t cap, const char *src)
{
	const char *q, *end;
	size_t n = 0;

	out[0] = '\0';
	while ((q = strchr(src, '\'')) && (end = strchr(q + 1, '\'')) && n < cap) {
		if ((size_t)(end - q - 1) > NAME_SHOWN)
			n += (size_t)snprintf(out + n, cap - n, "%.*s%.*s...%.*s'",
				(int)(q - src + 1), src, KEEP, q + 1, KEEP, end - KEEP);
		else
			n += (size_t)snprintf(
				out + n, cap - n, "%.*s", (int)(end - src + 1), src);
		src = end + 1;
	}
	if (n < cap)
		snprintf(out + n, cap - n, "%s", src);
}

/*
 * what without a trailing name that msg already quotes ("get x" and "no
 * object 'x' in store S": the name is said once), a long one shortened.
 */
static void name_once(char *what, const char *msg)
{
	char q[WHAT_MAX + 2], *p;
	size_t len;

	for (p = strchr(what, ' '); p; p = strchr(p + 1, ' ')) {
		/* 'name', or the start of a name the library shortened. */
		snprintf(q, sizeof(q), "'%s'", p + 1);
		if (p[1] && strlen(p + 1) > 40)
			snprintf(q, sizeof(q), "%.40s", p + 1);
		if (p[1] && strstr(msg, q)) {
			*p = '\0';
			return;
		}
	}
	p = strchr(what, ' ');
	if (p && (len = strlen(p + 1)) > NAME_SHOWN) {
		memmove(p + 1 + KEEP + 3, p + 1 + len - KEEP, KEEP + 1);
		memcpy(p + 1 + KEEP, "...", 3);
	}
}

int cli_err(int code, const char *fmt, ...)
{
	char what[WHAT_MAX], msg[WHAT_MAX];

	FORMAT_WHAT(what, fmt);
	name_once(what, cli_lib_message(code));
	shorten_quoted(msg, sizeof(msg), cli_lib_message(code));
	fprintf(stderr, "atrest: %s: %s\n", what, msg);
	return cli_exit_status(code);
}

int cli_err_os(int errnum, const char *fmt, ...)
{
	char what[WHAT_MAX];

	FORMAT_WHAT(what, fmt);
	fprintf(stderr, "atrest: %s: %s\n", what, strerror(errnum));
	return CLI_FAIL;
}

int cli_err_input(int errnum, const char *fmt, ...)
{
	char what[WHAT_MAX];

	FORMAT_WHAT(what, fmt);
	fprintf(stderr, "atrest: %s: %s\n", what, strerror(errnum));
	/* A missing input is "not found", as a missing object is. */
	return errnum == ENOENT || errnum == ENOTDIR ? 3 : CLI_FAIL;
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

/* The global options, also accepted after the command (codes above any
 * command's own). */
enum { GLOBAL_STORE = 0x4000, GLOBAL_TENANT, GLOBAL_PLAIN };
static const struct option global_opts[] = {
	{"store", required_argument, NULL, GLOBAL_STORE},
	{"tenant", required_argument, NULL, GLOBAL_TENANT},
	{"allow-plaintext", no_argument, NULL, GLOBAL_PLAIN}, {NULL, 0, NULL, 0}};

/* A command's long options followed by the global ones (a command's own
 * option of the same name comes first, so it wins). */
static const struct option *with_globals(const struct option *opts)
{
	static struct option all[96];
	size_t n = 0, g = sizeof(global_opts) / sizeof(global_opts[0]);

	while (opts && opts[n].name && n + g < sizeof(all) / sizeof(all[0]))
		n++;
	if (n)
		memcpy(all, opts, n * sizeof(*all));
	memcpy(all + n, global_opts, sizeof(global_opts));
	return all;
}

/* A global option wherever it appears; 1 when c was one, 0 if not, or
 * CLI_OPT_BAD after a usage error. */
static int apply_global(struct cli_ctx *ctx, int c)
{
	switch (c) {
	case GLOBAL_STORE:
		if (!*optarg) {
			cli_usage_err(ctx, "--store needs a location");
			return CLI_OPT_BAD;
		}
		ctx->store = optarg;
		ctx->store_given = 1;
		return 1;
	case GLOBAL_TENANT:
		ctx->tenant = *optarg ? optarg : NULL;
		return 1;
	case GLOBAL_PLAIN:
		ctx->allow_plaintext = 1;
		return 1;
	default:
		return 0;
	}
}

int cli_getopt(struct cli_ctx *ctx, int argc, char **argv, const char *optstring,
	const struct option *longopts)
{
	const char *arg;
	int c, g;

	do
		c = getopt_long(argc, argv, optstring, with_globals(longopts), NULL);
	while ((g = apply_global(ctx, c)) == 1);
	if (g == CLI_OPT_BAD)
		return CLI_OPT_BAD;
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

int cli_have_key(void)
{
	static const char *const names[] = {
		"ATREST_KEY", "ATREST_KEY_FILE", "ATREST_PASSPHRASE", "ATREST_KEY_URI"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = getenv(names[i]);

		if (v && *v)
			return 1;
	}
	return 0;
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
		/* The store once: most messages name it already. */
		if (ctx->cmd && strstr(cli_lib_message(rc), ctx->store))
			return cli_err(rc, "%s", ctx->cmd->name);
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
int cli_list_add(const atrest_list_entry *e, void *payload)
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
	rc = atrest_list(st, prefix ? prefix : "", cli_list_add, out);
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
