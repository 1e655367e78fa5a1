/*
 * atrest bench: runs atrest-bench, the benchmark program built and
 * installed beside atrest (the measurements are not part of libatrest).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cmd_bench(struct cli_ctx *ctx, int argc, char **argv)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 16);
	char *slash;

	(void)ctx;
	(void)argc;
	path[n > 0 ? n : 0] = '\0';
	slash = strrchr(path, '/');
	strcpy(slash ? slash + 1 : path, "atrest-bench");
	cli_flush_stdout();
	argv[0] = "atrest-bench";
	execv(path, argv);
	execvp("atrest-bench", argv);
	return cli_err_os(
		errno, "bench: cannot run atrest-bench (installed beside atrest)");
}
