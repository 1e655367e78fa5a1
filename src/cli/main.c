/*
 * The atrest command-line tool: process hardening, global options and
 * dispatch to the command table of commands.c.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli.h"

/* Key material must never reach a core dump or another process's ptrace. */
static void harden_process(void)
{
	struct rlimit none = {0, 0};

	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	setrlimit(RLIMIT_CORE, &none);
	/* A closed pipe is then an EPIPE error like any other. */
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Keys that could not be locked may reach swap: said once, at the end, so
 * that an operator can raise the limit (the library keeps working).
 */
static void warn_unlocked_memory(void)
{
	unsigned long n = atrest_secure_memory_status();
	struct rlimit rl;
	char limit[32] = "unknown";

	if (n == 0)
		return;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		snprintf(limit, sizeof(limit), "%llu bytes",
			(unsigned long long)rl.rlim_cur);
	fprintf(stderr,
		"atrest: warning: %lu key buffer%s could not be locked in memory "
		"(RLIMIT_MEMLOCK %s; raise 'ulimit -l' or grant CAP_IPC_LOCK): keys "
		"may be written to swap\n",
		n, n == 1 ? "" : "s", limit);
}

static int env_true(const char *name)
{
	const char *v = getenv(name);

	return v && (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true"));
}

/*
 * Parse the options before the command; -1 to go on, else the exit status
 * (cli_getopt takes --store, --tenant and --allow-plaintext; --json is
 * handed to the command).
 */
static int parse_global(struct cli_ctx *ctx, int argc, char **argv, int *json)
{
	enum { OPT_VERSION = 256, OPT_JSON };
	static const struct option opts[] = {{"version", no_argument, NULL, OPT_VERSION},
		{"json", no_argument, NULL, OPT_JSON}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, "+:h", opts)) != -1) {
		switch (c) {
		case OPT_JSON:
			*json = 1;
			break;
		case OPT_VERSION:
			printf("atrest %s\n", ATREST_VERSION);
			return CLI_OK;
		case 'h':
			cli_print_global_usage();
			return CLI_OK;
		default:
			return CLI_USAGE;
		}
	}
	return -1;
}

static void default_options(struct cli_ctx *ctx)
{
	const char *store = getenv("ATREST_STORE");

	ctx->store = store && *store ? store : "./atrest-store";
	ctx->store_given = store && *store;
	ctx->allow_plaintext = env_true("ATREST_ALLOW_PLAINTEXT");
}

/*
 * The command's arguments with "--json" added (before a "--"): 'atrest
 * --json keys' is 'atrest keys --json'.  NULL when out of memory.
 */
static char **with_json(int argc, char **argv)
{
	char **v = calloc((size_t)argc + 2, sizeof(*v));
	int at = 1, k = 0;

	if (!v)
		return NULL;
	while (at < argc && strcmp(argv[at], "--"))
		at++;
	for (int i = 0; i < argc; i++) {
		if (i == at)
			v[k++] = "--json";
		v[k++] = argv[i];
	}
	if (at == argc)
		v[k++] = "--json";
	return v;
}

int main(int argc, char **argv)
{
	struct cli_ctx ctx = {0};
	char **cmd_argv;
	int status, flushed, json = 0;

	harden_process();
	default_options(&ctx);
	status = parse_global(&ctx, argc, argv, &json);
	if (status >= 0)
		return status == CLI_OK ? cli_flush_stdout() : status;
	if (optind >= argc)
		return cli_usage_err(&ctx, "missing COMMAND");
	ctx.cmd = cli_find_command(argv[optind]);
	if (!ctx.cmd)
		return cli_usage_err(&ctx, "unknown command '%s'", argv[optind]);
	argc -= optind;
	argv += optind;
	cmd_argv = json ? with_json(argc, argv) : argv;
	if (!cmd_argv)
		return cli_err_msg(CLI_FAIL, "out of memory");
	status = ctx.cmd->fn(&ctx, argc + json, cmd_argv);
	if (cmd_argv != argv)
		free(cmd_argv);
	flushed = cli_flush_stdout();
	warn_unlocked_memory();
	return status ? status : flushed;
}
