/*
 * encrypt and decrypt: standalone files (docs/FORMAT.md section 7) streamed
 * from a file or standard input to standard output, or with -o to a file
 * that appears only when everything succeeded.  No store is opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

struct crypt_args {
	int encrypt;
	const char *in;  /* NULL: standard input */
	const char *out; /* NULL: standard output */
	int cipher;
	uint32_t segment_size;
	char what[PATH_MAX + 16]; /* "encrypt IN" for messages */
};

static int crypt_option(struct cli_ctx *ctx, struct crypt_args *a, int c)
{
	switch (c) {
	case 'o':
		a->out = strcmp(optarg, "-") ? optarg : NULL;
		return CLI_OK;
	case 'c':
		a->cipher = atrest_cipher_from_name(optarg);
		if (a->cipher < 0)
			return cli_usage_err(ctx, "unknown cipher '%s'", optarg);
		return CLI_OK;
	case 's':
		if (cli_parse_size(optarg, &a->segment_size) < 0 ||
			a->segment_size < ATREST_SEGMENT_SIZE_MIN ||
			a->segment_size > ATREST_SEGMENT_SIZE_MAX)
			return cli_usage_err(
				ctx, "bad segment size '%s' (1K to 16M)", optarg);
		return CLI_OK;
	case 'h':
		cli_help(ctx->cmd);
		return CLI_DONE;
	default:
		return CLI_USAGE;
	}
}

static int crypt_parse(struct cli_ctx *ctx, int argc, char **argv, struct crypt_args *a)
{
	static const struct option enc_opts[] = {{"output", required_argument, NULL, 'o'},
		{"cipher", required_argument, NULL, 'c'},
		{"segment-size", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	static const struct option dec_opts[] = {{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c, status;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv,
			":ho:", a->encrypt ? enc_opts : dec_opts)) != -1) {
		status = crypt_option(ctx, a, c);
		if (status)
			return status;
	}
	if (argc - optind > 1)
		return cli_usage_err(ctx, "too many arguments");
	if (optind < argc && strcmp(argv[optind], "-") != 0)
		a->in = argv[optind];
	snprintf(a->what, sizeof(a->what), "%s %s", ctx->cmd->name,
		a->in ? a->in : "standard input");
	return CLI_OK;
}

/* The master key from the environment; 0 or the exit status (5). */
static int crypt_key(atrest_keyprov **kp, const struct crypt_args *a)
{
	int rc = atrest_keyprov_from_env(kp, 0);

	if (rc == ATREST_ENOTFOUND)
		return cli_err_msg(cli_exit_status(ATREST_EKEY),
			"%s: no master key: set ATREST_KEY, ATREST_KEY_FILE, "
			"ATREST_PASSPHRASE or ATREST_KEY_URI ('atrest keygen' makes "
			"a key)",
			a->what);
	if (rc < 0) {
		fprintf(stderr, "atrest: %s: %s\n", a->what, cli_lib_message(rc));
		return cli_exit_status(ATREST_EKEY);
	}
	return CLI_OK;
}

/* Run the library's pump from in_fd to out_fd; exit status. */
static int crypt_pump(const struct crypt_args *a, atrest_keyprov *kp, int in_fd,
	int out_fd, int durable)
{
	atrest_file_options opts;
	int rc;

	/* Not ATREST_FILE_OPTIONS_INIT: it trips -Wmissing-field-initializers. */
	memset(&opts, 0, sizeof(opts));
	opts.version = ATREST_FILE_OPTIONS_VERSION;
	opts.cipher = a->cipher;
	opts.segment_size = a->segment_size;
	opts.fsync = durable;
	if (a->encrypt)
		rc = atrest_file_encrypt_fd(kp, &opts, in_fd, out_fd);
	else
		rc = atrest_file_decrypt_fd(kp, &opts, in_fd, out_fd);
	return rc < 0 ? cli_err(rc, "%s", a->what) : CLI_OK;
}

/* OUT is a device or a pipe (/dev/null, a FIFO): write straight into it. */
static int crypt_to_special(const struct crypt_args *a, atrest_keyprov *kp, int in_fd)
{
	int fd = open(a->out, O_WRONLY | O_CLOEXEC), status;

	if (fd < 0)
		return cli_err_os(errno, "%s: %s", a->what, a->out);
	status = crypt_pump(a, kp, in_fd, fd, 0);
	if (close(fd) < 0 && !status)
		status = cli_err_os(errno, "%s: writing %s", a->what, a->out);
	return status;
}

/* Into an unnamed (or temporary) file beside OUT, published once synced. */
static int crypt_to_file(const struct crypt_args *a, atrest_keyprov *kp, int in_fd)
{
	struct cli_atomic out;
	int status, err;

	if (cli_is_special(a->out))
		return crypt_to_special(a, kp, in_fd);
	err = cli_atomic_open(&out, a->out);
	if (err == EINVAL)
		return cli_err_msg(
			CLI_USAGE, "%s: bad output file '%s'", a->what, a->out);
	if (err)
		return cli_err_os(err, "%s: creating a file next to %s", a->what, a->out);
	status = crypt_pump(a, kp, in_fd, out.fd, 1); /* the pump syncs */
	if (status) {
		cli_atomic_abort(&out);
		return status;
	}
	err = cli_atomic_commit(&out, 0);
	return err ? cli_err_os(err, "%s: writing %s", a->what, a->out) : CLI_OK;
}

static int cmd_crypt(struct cli_ctx *ctx, int argc, char **argv, int encrypt)
{
	struct crypt_args a;
	atrest_keyprov *kp = NULL;
	int in_fd = STDIN_FILENO, status;

	memset(&a, 0, sizeof(a));
	a.encrypt = encrypt;
	status = crypt_parse(ctx, argc, argv, &a);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	if (encrypt && !a.out && isatty(STDOUT_FILENO))
		return cli_usage_err(ctx,
			"refusing to write ciphertext to a "
			"terminal: use -o OUT or redirect standard output");
	status = crypt_key(&kp, &a);
	if (status)
		return status;
	if (a.in && (in_fd = open(a.in, O_RDONLY | O_CLOEXEC)) < 0) {
		status = cli_err_input(errno, "%s", a.what);
		goto out;
	}
	cli_grow_pipe(in_fd);
	if (a.out) {
		status = crypt_to_file(&a, kp, in_fd);
	} else {
		cli_grow_pipe(STDOUT_FILENO);
		status = crypt_pump(&a, kp, in_fd, STDOUT_FILENO, 0);
	}
out:
	if (in_fd > STDIN_FILENO)
		close(in_fd);
	atrest_keyprov_free(kp);
	return status;
}

int cmd_encrypt(struct cli_ctx *ctx, int argc, char **argv)
{
	return cmd_crypt(ctx, argc, argv, 1);
}

int cmd_decrypt(struct cli_ctx *ctx, int argc, char **argv)
{
	return cmd_crypt(ctx, argc, argv, 0);
}
