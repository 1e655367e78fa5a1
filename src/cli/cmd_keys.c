/*
 * Data keys and the master key: keys (list with usage, expose, destroy),
 * rotate (start a new active data key) and rewrap (the keyring under the
 * current master key).  Also the exposed-key warning that verify prints.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* One data key as listed; the status is copied, the library's may not last. */
struct key_row {
	uint32_t id;
	char status[16];
	int64_t created;
	uint64_t objects, bytes;
};

struct key_rows {
	struct key_row *v;
	size_t n, cap;
	int oom;
};

/* atrest_keys_list callback: copy one key; 1 (stop) when memory runs out. */
static int collect_key(const atrest_key_info *k, void *payload)
{
	struct key_rows *r = payload;
	struct key_row *v;

	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;

		v = realloc(r->v, cap * sizeof(*v));
		if (!v) {
			r->oom = 1;
			return 1;
		}
		r->v = v;
		r->cap = cap;
	}
	v = &r->v[r->n++];
	v->id = k->id;
	snprintf(v->status, sizeof(v->status), "%s", k->status ? k->status : "unknown");
	v->created = k->created;
	v->objects = k->objects;
	v->bytes = k->bytes;
	return 0;
}

/* Every data key (with usage: a scan); 0 or the exit status, printed. */
static int keys_collect(
	struct key_rows *out, atrest_store *st, int usage, const char *what)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = atrest_keys_list(st, usage, collect_key, out);
	if (out->oom)
		return cli_err_os(ENOMEM, "%s: listing data keys", what);
	if (rc < 0)
		return cli_err(rc, "%s", what);
	return CLI_OK;
}

static void warn_exposed(const struct key_rows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (strcmp(r->v[i].status, "exposed") || !r->v[i].objects)
			continue;
		fprintf(stderr,
			"warning: %llu objects are still sealed under "
			"exposed data key %u; run 'atrest reencrypt --data-key "
			"%u'\n",
			(unsigned long long)r->v[i].objects, r->v[i].id, r->v[i].id);
	}
}

int cli_warn_exposed(atrest_store *st, const char *what)
{
	struct key_rows r;
	int status;

	status = keys_collect(&r, st, 1, what);
	if (!status)
		warn_exposed(&r);
	free(r.v);
	return status;
}

/* A count, or "-" (text) / null (JSON) when it is not known. */
static const char *count_text(char out[24], uint64_t v, int known, int json)
{
	if (!known)
		return json ? "null" : "-";
	snprintf(out, 24, "%llu", (unsigned long long)v);
	return out;
}

static void keys_table(const struct key_rows *r, int counts)
{
	char when[32], o[24], b[24];
	size_t i;

	printf("%-6s  %-9s  %-20s  %10s  %s\n", "ID", "STATUS", "CREATED", "OBJECTS",
		"BYTES");
	for (i = 0; i < r->n; i++) {
		cli_iso_time(when, r->v[i].created);
		printf("%-6u  %-9s  %-20s  %10s  %s\n", r->v[i].id, r->v[i].status, when,
			count_text(o, r->v[i].objects, counts, 0),
			count_text(b, r->v[i].bytes, counts, 0));
	}
}

static void keys_json(const struct key_rows *r, int counts)
{
	char when[32], o[24], b[24];
	size_t i;

	putchar('[');
	for (i = 0; i < r->n; i++) {
		fputs(i ? ",\n " : "\n ", stdout);
		cli_iso_time(when, r->v[i].created);
		printf("{\"id\": %u, \"status\": ", r->v[i].id);
		cli_json_str(stdout, r->v[i].status);
		printf(", \"created\": \"%s\", \"objects\": %s, \"bytes\": %s}", when,
			count_text(o, r->v[i].objects, counts, 1),
			count_text(b, r->v[i].bytes, counts, 1));
	}
	fputs(r->n ? "\n]\n" : "]\n", stdout);
}

static void keys_print(const struct key_rows *r, int json, int counts)
{
	if (json)
		keys_json(r, counts);
	else
		keys_table(r, counts);
}

static int keys_show(atrest_store *st, int json, int scan)
{
	struct key_rows r;
	int status;

	status =
		keys_collect(&r, st, scan ? ATREST_KEYS_SCAN : ATREST_KEYS_USAGE, "keys");
	if (!status)
		keys_print(&r, json, 1);
	/* After the table, so that it stays readable on a terminal. */
	if (!status && !json) {
		fflush(stdout);
		warn_exposed(&r);
	}
	free(r.v);
	return status;
}

/*
 * The list without a master key: ids, statuses and times as the keyring
 * says, not authenticated; the usage counts need the key ("-", null).
 */
static int keys_show_unkeyed(const struct cli_ctx *ctx, int json)
{
	struct key_rows r;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = atrest_keys_peek(ctx->store, ctx->tenant, collect_key, &r);
	if (r.oom)
		rc = cli_err_os(ENOMEM, "keys: listing data keys");
	else if (rc < 0)
		rc = cli_err(rc, "keys");
	else
		keys_print(&r, json, 0);
	free(r.v);
	if (!rc)
		fprintf(stderr,
			"atrest: note: no master key given: data keys as the "
			"keyring records them, NOT authenticated; usage counts "
			"need the key\n");
	return rc;
}

/* The active data key's id, or 0 when there is none or listing failed. */
static uint32_t active_key(atrest_store *st)
{
	struct key_rows r;
	uint32_t id = 0;
	size_t i;

	memset(&r, 0, sizeof(r));
	if (atrest_keys_list(st, 0, collect_key, &r) == 0 && !r.oom)
		for (i = 0; i < r.n; i++)
			if (!strcmp(r.v[i].status, "active"))
				id = r.v[i].id;
	free(r.v);
	atrest_error_clear();
	return id;
}

static int keys_expose(atrest_store *st, uint32_t id)
{
	uint32_t before = active_key(st), after;
	int rc;

	rc = atrest_key_expose(st, id);
	if (rc < 0)
		return cli_err(rc, "keys expose %u", id);
	after = active_key(st);
	if (after && after != before)
		printf("data key %u marked exposed; new active data key %u\n", id, after);
	else
		printf("data key %u marked exposed\n", id);
	return CLI_OK;
}

static int keys_destroy(atrest_store *st, uint32_t id, int force)
{
	int rc;

	rc = atrest_key_destroy(st, id, force);
	if (rc < 0)
		return cli_err(rc, "keys destroy %u", id);
	printf("data key %u destroyed\n", id);
	return CLI_OK;
}

/* What 'keys' was asked to do. */
enum { KEYS_LIST, KEYS_EXPOSE, KEYS_DESTROY };
struct keys_args {
	int action, json, force, scan;
	uint32_t id;
};

/* The positional arguments: none, "expose ID" or "destroy ID". */
static int keys_action(struct cli_ctx *ctx, int argc, char **argv, struct keys_args *a)
{
	const char *verb;

	if (optind == argc)
		return CLI_OK;
	verb = argv[optind];
	if (!strcmp(verb, "expose"))
		a->action = KEYS_EXPOSE;
	else if (!strcmp(verb, "destroy"))
		a->action = KEYS_DESTROY;
	else
		return cli_usage_err(ctx,
			"unknown action '%s' (expose or "
			"destroy)",
			verb);
	if (argc - optind < 2)
		return cli_usage_err(ctx, "%s needs a data key ID", verb);
	if (argc - optind > 2)
		return cli_usage_err(ctx, "too many arguments");
	if (cli_parse_u32(argv[optind + 1], &a->id) < 0 || !a->id)
		return cli_usage_err(ctx, "bad data key ID '%s'", argv[optind + 1]);
	return CLI_OK;
}

static int keys_parse(struct cli_ctx *ctx, int argc, char **argv, struct keys_args *a)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
		{"force", no_argument, NULL, 'f'}, {"scan", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c, status;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'j') {
			a->json = 1;
		} else if (c == 'f') {
			a->force = 1;
		} else if (c == 's') {
			a->scan = 1;
		} else if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		} else {
			return CLI_USAGE;
		}
	}
	status = keys_action(ctx, argc, argv, a);
	if (status)
		return status;
	if ((a->json || a->scan) && a->action != KEYS_LIST)
		return cli_usage_err(ctx, "--json and --scan only apply to the list");
	if (a->force && a->action != KEYS_DESTROY)
		return cli_usage_err(ctx, "--force only applies to 'keys destroy'");
	return CLI_OK;
}

int cmd_keys(struct cli_ctx *ctx, int argc, char **argv)
{
	struct keys_args a = {0};
	atrest_store *st;
	int status;

	status = keys_parse(ctx, argc, argv, &a);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	if (a.action == KEYS_LIST && !a.scan && !cli_have_key())
		return keys_show_unkeyed(ctx, a.json);
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	if (a.action == KEYS_EXPOSE)
		status = keys_expose(st, a.id);
	else if (a.action == KEYS_DESTROY)
		status = keys_destroy(st, a.id, a.force);
	else
		status = keys_show(st, a.json, a.scan);
	atrest_store_close(st);
	return status;
}

/* Options of a command that takes no arguments: 0, CLI_DONE or usage. */
static int no_args(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c != 'h')
			return CLI_USAGE;
		cli_help(ctx->cmd);
		return CLI_DONE;
	}
	if (optind < argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	return CLI_OK;
}

int cmd_rotate(struct cli_ctx *ctx, int argc, char **argv)
{
	atrest_store *st;
	uint32_t id = 0;
	int status, rc;

	status = no_args(ctx, argc, argv);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	rc = atrest_rotate(&id, st);
	if (rc < 0)
		status = cli_err(rc, "rotate %s", ctx->store);
	else
		printf("new active data key %u\n", id);
	atrest_store_close(st);
	return status;
}

/*
 * Opening with ATREST_OLD_* set already rewraps; the explicit call covers a
 * store opened with the current key only (fresh wrapping, same keys).
 */
/* "... under master key KIND ID (was ID)", and whether the old key was of
 * any use: given while the keyring already was under the new one. */
static void rewrap_report(atrest_store *st, const char *was, int old_given)
{
	char kind[64], id[128];

	if (atrest_store_master_key(kind, sizeof(kind), id, sizeof(id), st) < 0)
		snprintf(kind, sizeof(kind), "%s", "unknown");
	printf("keyring rewrapped under master key %s %s", kind, id);
	if (*was && strcmp(was, id))
		printf(" (was %s)", was);
	putchar('\n');
	if (old_given && !strcmp(was, id))
		fprintf(stderr,
			"atrest: note: the keyring already was under this master key: "
			"the previous key (ATREST_OLD_*) opened nothing\n");
}

int cmd_rewrap(struct cli_ctx *ctx, int argc, char **argv)
{
	atrest_store_options opts;
	char kind[64], was[128] = "";
	atrest_store *st;
	int status, rc, old_given;

	status = no_args(ctx, argc, argv);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	status = cli_store_options(&opts, ctx);
	if (status)
		return status;
	old_given = opts.old_key != NULL;
	/* The key the keyring names now; authenticated by the open below. */
	if (atrest_master_key_peek(
		    kind, sizeof(kind), was, sizeof(was), ctx->store, ctx->tenant) < 0)
		was[0] = '\0';
	atrest_error_clear();
	rc = atrest_store_open(&st, &opts);
	if (rc < 0)
		return cli_err(rc, "rewrap");
	rc = atrest_rewrap(st, NULL);
	if (rc < 0)
		status = cli_err(rc, "rewrap %s", ctx->store);
	else
		rewrap_report(st, was, old_given);
	atrest_store_close(st);
	return status;
}
