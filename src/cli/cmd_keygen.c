/*
 * atrest keygen: a new random 256-bit master key, printed as hex or base64
 * or written to a new mode-0600 file.  Key bytes are wiped after use.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define KEY_BYTES 32

/* Create path (never an existing file), write text, fsync; exit status. */
static int write_key_file(const char *path, const char *text)
{
	int fd, err;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		return cli_err_msg(CLI_FAIL,
			"keygen: %s already exists; refusing to overwrite it", path);
	if (fd < 0)
		return cli_err_os(errno, "keygen: %s", path);
	err = cli_write_all(fd, text, strlen(text));
	if (!err && fsync(fd) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	if (!err)
		err = cli_fsync_parent(path);
	if (err) {
		unlink(path);
		return cli_err_os(err, "keygen: writing %s", path);
	}
	return CLI_OK;
}

int cmd_keygen(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"base64", no_argument, NULL, 'b'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	uint8_t key[KEY_BYTES];
	char text[2 * KEY_BYTES + 2];
	const char *path = NULL;
	int base64 = 0, c, rc, status, err;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":ho:", opts)) != -1) {
		if (c == 'b')
			base64 = 1;
		else if (c == 'o')
			path = optarg;
		else if (c == 'h')
			return cli_help(ctx->cmd);
		else
			return CLI_USAGE;
	}
	if (optind < argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	rc = atrest_random(key, sizeof(key));
	if (rc < 0)
		return cli_err(rc, "keygen");
	if (base64)
		cli_base64(text, key, sizeof(key));
	else
		cli_hex(text, key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	strcat(text, "\n");
	if (path) {
		status = write_key_file(path, text);
	} else {
		/* write(2), not stdio: no copy of the key in a stdio buffer. */
		err = cli_write_all(STDOUT_FILENO, text, strlen(text));
		status = err ? cli_err_os(err, "keygen: standard output") : 0;
	}
	explicit_bzero(text, sizeof(text));
	return status;
}
