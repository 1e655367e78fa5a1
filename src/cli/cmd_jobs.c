/*
 * Jobs that rewrite objects one atomic put at a time, resumable after a
 * crash: reencrypt (off a data key, onto the active one) and migrate
 * (plaintext files encrypted in place).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The library's progress callback drawing the bar (terminals only). */
static void job_progress(
	const atrest_job_stats *s, uint64_t total, const char *name, void *payload)
{
	struct cli_progress *p = payload;

	(void)name;
	p->total = (size_t)total;
	cli_progress_show(p, (size_t)s->scanned);
}

/*
 * Exit status of a finished job: the library's code when it returned one,
 * else for failures it only counted the code of its last error.
 */
static int job_status(int rc, const atrest_job_stats *s, const char *what)
{
	const atrest_error *e;

	if (rc < 0)
		return cli_err(rc, "%s", what);
	if (!s->failed)
		return CLI_OK;
	e = atrest_error_last();
	if (e && e->code < 0)
		return cli_err(e->code, "%s", what);
	return cli_err_msg(
		CLI_FAIL, "%s: %llu objects failed", what, (unsigned long long)s->failed);
}

/* Whether a job that returned rc got far enough to report numbers. */
static int job_ran(int rc, const atrest_job_stats *s)
{
	return rc == 0 || s->scanned || s->failed;
}

/* reencrypt's and migrate's arguments. */
struct job_args {
	uint32_t key_id; /* reencrypt: the data key to move off */
	const char *prefix;
};

static int job_parse(
	struct cli_ctx *ctx, int argc, char **argv, struct job_args *a, int want_key)
{
	static const struct option opts[] = {{"data-key", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", want_key ? opts : opts + 1)) !=
		-1) {
		if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		}
		if (c != 'k')
			return CLI_USAGE;
		if (cli_parse_u32(optarg, &a->key_id) < 0 || !a->key_id)
			return cli_usage_err(ctx, "bad data key ID '%s'", optarg);
	}
	if (want_key && !a->key_id)
		return cli_usage_err(ctx, "missing --data-key ID");
	if (argc - optind > 1)
		return cli_usage_err(ctx, "too many arguments");
	a->prefix = optind < argc ? argv[optind] : "";
	return CLI_OK;
}

static int reencrypt_run(atrest_store *st, const struct job_args *a)
{
	atrest_job_stats s;
	struct cli_progress p;
	char what[64];
	int rc;

	memset(&s, 0, sizeof(s));
	snprintf(what, sizeof(what), "reencrypt --data-key %u", a->key_id);
	cli_progress_start(&p, "re-encrypting", 0);
	rc = atrest_reencrypt(&s, st, a->key_id, a->prefix, job_progress, &p);
	cli_progress_clear(&p);
	if (job_ran(rc, &s))
		printf("re-encrypted %llu of %llu objects (%llu bytes), %llu "
		       "failed\n",
			(unsigned long long)s.done, (unsigned long long)s.scanned,
			(unsigned long long)s.bytes, (unsigned long long)s.failed);
	return job_status(rc, &s, what);
}

int cmd_reencrypt(struct cli_ctx *ctx, int argc, char **argv)
{
	struct job_args a = {0};
	atrest_store *st;
	int status;

	status = job_parse(ctx, argc, argv, &a, 1);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	status = reencrypt_run(st, &a);
	atrest_store_close(st);
	return status;
}

static int migrate_run(atrest_store *st, const struct job_args *a)
{
	atrest_job_stats s;
	struct cli_progress p;
	int rc;

	memset(&s, 0, sizeof(s));
	cli_progress_start(&p, "migrating", 0);
	rc = atrest_migrate(&s, st, a->prefix, job_progress, &p);
	cli_progress_clear(&p);
	if (job_ran(rc, &s))
		printf("migrated %llu plaintext objects (%llu bytes), %llu "
		       "failed\n",
			(unsigned long long)s.done, (unsigned long long)s.bytes,
			(unsigned long long)s.failed);
	return job_status(rc, &s, "migrate");
}

/* A plaintext checkpoint directory becomes a store: create it on the way. */
int cmd_migrate(struct cli_ctx *ctx, int argc, char **argv)
{
	struct job_args a = {0};
	atrest_store *st;
	int status;

	status = job_parse(ctx, argc, argv, &a, 0);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	status = cli_open_store(&st, ctx, 1);
	if (status)
		return status;
	status = migrate_run(st, &a);
	atrest_store_close(st);
	return status;
}
