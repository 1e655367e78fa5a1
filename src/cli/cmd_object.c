/*
 * Commands on one object: put (stream a file in), get (stream it out,
 * replacing an output file only after full verification) and rm.
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

/* put's arguments; meta entries point into argv. */
struct put_args {
	const char *name;
	const char *file; /* NULL: stdin */
	atrest_meta_entry *entries;
	size_t count;
};

/* "--meta KEY=VALUE" into the next entry; KEY is split off in place. */
static int put_meta(struct cli_ctx *ctx, struct put_args *a, char *arg)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg)
		return cli_usage_err(ctx, "--meta needs KEY=VALUE, not '%s'", arg);
	*eq = '\0';
	a->entries[a->count].key = arg;
	a->entries[a->count].value = eq + 1;
	a->count++;
	return CLI_OK;
}

static int put_parse(struct cli_ctx *ctx, int argc, char **argv, struct put_args *a)
{
	static const struct option opts[] = {{"meta", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c, status;

	a->entries = calloc((size_t)argc, sizeof(*a->entries));
	if (!a->entries)
		return cli_err_os(ENOMEM, "put");
	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		}
		if (c != 'm')
			return CLI_USAGE;
		status = put_meta(ctx, a, optarg);
		if (status)
			return status;
	}
	if (optind == argc)
		return cli_usage_err(ctx, "missing NAME");
	if (argc - optind > 2)
		return cli_usage_err(ctx, "too many arguments");
	a->name = argv[optind];
	if (optind + 1 < argc && strcmp(argv[optind + 1], "-") != 0)
		a->file = argv[optind + 1];
	return CLI_OK;
}

/* Copy fd into a writer for name; on any failure the writer is aborted. */
static int put_stream(atrest_store *st, const struct put_args *a, int fd, void *buf)
{
	atrest_meta meta = {a->entries, a->count};
	const char *src = a->file ? a->file : "standard input";
	atrest_writer *w;
	ssize_t n;
	int rc;

	rc = atrest_writer_open(&w, st, a->name, a->count ? &meta : NULL);
	if (rc < 0)
		return cli_err(rc, "put %s", a->name);
	for (;;) {
		n = read(fd, buf, CLI_IO_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = cli_err_os(errno, "put %s: reading %s", a->name, src);
			atrest_writer_abort(w);
			return rc;
		}
		if (n == 0)
			break;
		rc = atrest_writer_write(w, buf, (size_t)n);
		if (rc < 0) {
			rc = cli_err(rc, "put %s", a->name);
			atrest_writer_abort(w);
			return rc;
		}
	}
	rc = atrest_writer_commit(w);
	return rc < 0 ? cli_err(rc, "put %s", a->name) : CLI_OK;
}

int cmd_put(struct cli_ctx *ctx, int argc, char **argv)
{
	struct put_args a = {0};
	atrest_store *st = NULL;
	void *buf = NULL;
	int fd = STDIN_FILENO, status;

	status = put_parse(ctx, argc, argv, &a);
	if (status)
		goto out;
	/* Open the input first: a typo must not create a store. */
	if (a.file && (fd = open(a.file, O_RDONLY | O_CLOEXEC)) < 0) {
		status = cli_err_os(errno, "put %s: %s", a.name, a.file);
		goto out;
	}
	buf = malloc(CLI_IO_BUF);
	if (!buf) {
		status = cli_err_os(ENOMEM, "put %s", a.name);
		goto out;
	}
	status = cli_open_store(&st, ctx, 1);
	if (!status)
		status = put_stream(st, &a, fd, buf);
out:
	if (buf)
		explicit_bzero(buf, CLI_IO_BUF);
	free(buf);
	if (st)
		atrest_store_close(st);
	if (fd > STDIN_FILENO)
		close(fd);
	free(a.entries);
	return status == CLI_DONE ? CLI_OK : status;
}

/* Copy the reader to fd; exit status.  buf is CLI_IO_BUF bytes. */
static int get_copy(
	atrest_reader *r, const char *name, int fd, const char *dst, void *buf)
{
	size_t got;
	int rc, err;

	for (;;) {
		rc = atrest_reader_read(r, buf, CLI_IO_BUF, &got);
		if (rc < 0)
			return cli_err(rc, "get %s", name);
		if (got == 0)
			return CLI_OK;
		err = cli_write_all(fd, buf, got);
		if (err)
			return cli_err_os(err, "get %s: writing %s", name, dst);
	}
}

/* A device or FIFO is written in place, verified segments as they come,
 * like standard output. */
static int get_to_special(atrest_reader *r, const char *name, const char *path, void *buf)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), status;

	if (fd < 0)
		return cli_err_os(errno, "get %s: opening %s", name, path);
	status = get_copy(r, name, fd, path, buf);
	if (close(fd) < 0 && !status)
		status = cli_err_os(errno, "get %s: writing %s", name, path);
	return status;
}

/* Verify everything into an unnamed (or temporary) file, then publish it. */
static int get_to_file(atrest_reader *r, const char *name, const char *path, void *buf)
{
	struct cli_atomic out;
	int status, err;

	if (cli_is_special(path))
		return get_to_special(r, name, path, buf);
	err = cli_atomic_open(&out, path);
	if (err == EINVAL)
		return cli_err_msg(CLI_USAGE, "get %s: bad output file '%s'", name, path);
	if (err)
		return cli_err_os(err, "get %s: creating a file next to %s", name, path);
	status = get_copy(r, name, out.fd, path, buf);
	if (status) {
		cli_atomic_abort(&out);
		return status;
	}
	err = cli_atomic_commit(&out, 1);
	return err ? cli_err_os(err, "get %s: writing %s", name, path) : CLI_OK;
}

static int get_parse(
	struct cli_ctx *ctx, int argc, char **argv, const char **name, const char **out)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":ho:", opts)) != -1) {
		if (c == 'o') {
			*out = strcmp(optarg, "-") ? optarg : NULL;
		} else if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		} else {
			return CLI_USAGE;
		}
	}
	if (optind == argc)
		return cli_usage_err(ctx, "missing NAME");
	if (optind + 1 < argc)
		return cli_usage_err(ctx, "too many arguments");
	*name = argv[optind];
	return CLI_OK;
}

int cmd_get(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *name = NULL, *out = NULL;
	atrest_store *st = NULL;
	atrest_reader *r = NULL;
	void *buf;
	int status, rc;

	status = get_parse(ctx, argc, argv, &name, &out);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	buf = malloc(CLI_IO_BUF);
	if (!buf)
		return cli_err_os(ENOMEM, "get %s", name);
	status = cli_open_store(&st, ctx, 0);
	if (status)
		goto out;
	rc = atrest_reader_open(&r, st, name);
	if (rc < 0)
		status = cli_err(rc, "get %s", name);
	else if (out)
		status = get_to_file(r, name, out, buf);
	else
		status = get_copy(r, name, STDOUT_FILENO, "standard output", buf);
out:
	if (r)
		atrest_reader_close(r);
	if (st)
		atrest_store_close(st);
	explicit_bzero(buf, CLI_IO_BUF);
	free(buf);
	return status;
}

int cmd_rm(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	atrest_store *st;
	int c, status, rc;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1)
		return c == 'h' ? cli_help(ctx->cmd) : CLI_USAGE;
	if (optind == argc)
		return cli_usage_err(ctx, "missing NAME");
	if (optind + 1 < argc)
		return cli_usage_err(ctx, "too many arguments");
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	rc = atrest_delete(st, argv[optind]);
	if (rc < 0)
		status = cli_err(rc, "rm %s", argv[optind]);
	atrest_store_close(st);
	return status;
}
