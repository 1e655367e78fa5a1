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

/* Encoded metadata is at most 64 KiB: a larger --meta-file cannot fit. */
#define META_FILE_MAX 65536

/* put's arguments; meta entries point into argv or into meta_text. */
struct put_args {
	const char *name;
	const char *file; /* NULL: stdin */
	atrest_meta_entry *entries;
	size_t count, cap;
	char **meta_opts; /* the --meta (m) and --meta-file (f) options, in order */
	char *meta_kind;
	size_t nopts;
	char *meta_text[8]; /* --meta-file contents (wiped when done) */
	size_t meta_len[8], ntext;
};

static int meta_add(struct put_args *a, char *key, char *value)
{
	if (a->count == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 16;
		atrest_meta_entry *e = realloc(a->entries, cap * sizeof(*e));

		if (!e)
			return cli_err_os(ENOMEM, "put");
		a->entries = e;
		a->cap = cap;
	}
	a->entries[a->count].key = key;
	a->entries[a->count].value = value;
	a->count++;
	return CLI_OK;
}

/* "KEY=VALUE" into the next entry; KEY is split off in place. */
static int put_meta(struct cli_ctx *ctx, struct put_args *a, char *arg, const char *where)
{
	char *eq = strchr(arg, '=');

	if (!eq || eq == arg)
		return cli_usage_err(ctx, "%s needs KEY=VALUE, not '%s'", where, arg);
	*eq = '\0';
	return meta_add(a, arg, eq + 1);
}

/* The whole of path ("-": standard input), NUL-terminated, into *out. */
static int read_meta_file(char **out, size_t *len, const char *path)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	ssize_t n = 0;
	int err = fd < 0 ? errno : 0;

	*len = 0;
	*out = err ? NULL : malloc(META_FILE_MAX + 2);
	if (!err && !*out)
		err = ENOMEM;
	while (!err && *len <= META_FILE_MAX) {
		n = read(fd, *out + *len, META_FILE_MAX + 1 - *len);
		if (n < 0 && errno != EINTR)
			err = errno;
		if (n == 0)
			break;
		if (n > 0)
			*len += (size_t)n;
	}
	if (!err && *len > META_FILE_MAX)
		err = EFBIG;
	if (fd > STDIN_FILENO)
		close(fd);
	if (*out)
		(*out)[*len] = '\0';
	return err;
}

/* One KEY=VALUE per line (no other syntax; empty lines are skipped). */
static int put_meta_file(struct cli_ctx *ctx, struct put_args *a, const char *path)
{
	char *text, *line, *next, where[64];
	size_t len, n = 0;
	int err, status = CLI_OK;

	if (a->ntext == sizeof(a->meta_text) / sizeof(a->meta_text[0]))
		return cli_usage_err(ctx, "too many --meta-file options");
	err = read_meta_file(&text, &len, path);
	a->meta_text[a->ntext] = text;
	a->meta_len[a->ntext++] = len;
	if (err == EFBIG)
		return cli_err_msg(CLI_FAIL, "put: --meta-file %s: larger than %d bytes",
			path, META_FILE_MAX);
	if (err)
		return cli_err_os(err, "put: --meta-file %s", path);
	if (memchr(text, '\0', len))
		return cli_usage_err(ctx, "--meta-file %s holds a NUL byte", path);
	for (line = text; !status && line < text + len; line = next) {
		next = strchr(line, '\n');
		next = next ? next + 1 : text + len;
		if (next[-1] == '\n')
			next[-1] = '\0';
		n++;
		snprintf(where, sizeof(where), "--meta-file line %zu", n);
		if (*line)
			status = put_meta(ctx, a, line, where);
	}
	return status;
}

/* The metadata options in order, once it is known what stdin carries. */
static int put_meta_all(struct cli_ctx *ctx, struct put_args *a)
{
	int status = CLI_OK;

	for (size_t i = 0; !status && i < a->nopts; i++) {
		if (a->meta_kind[i] == 'm')
			status = put_meta(ctx, a, a->meta_opts[i], "--meta");
		else if (!strcmp(a->meta_opts[i], "-") && !a->file)
			status = cli_usage_err(ctx,
				"--meta-file - and the data cannot both come from "
				"standard input: give FILE");
		else
			status = put_meta_file(ctx, a, a->meta_opts[i]);
	}
	return status;
}

static void put_args_free(struct put_args *a)
{
	for (size_t i = 0; i < a->ntext; i++) {
		if (a->meta_text[i])
			explicit_bzero(a->meta_text[i], a->meta_len[i] + 1);
		free(a->meta_text[i]);
	}
	free(a->entries);
	free(a->meta_opts);
	free(a->meta_kind);
}

static int put_parse(struct cli_ctx *ctx, int argc, char **argv, struct put_args *a)
{
	static const struct option opts[] = {{"meta", required_argument, NULL, 'm'},
		{"meta-file", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	a->meta_opts = calloc((size_t)argc, sizeof(*a->meta_opts));
	a->meta_kind = calloc((size_t)argc, 1);
	if (!a->meta_opts || !a->meta_kind)
		return cli_err_os(ENOMEM, "put");
	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		}
		if (c != 'm' && c != 'f')
			return CLI_USAGE;
		a->meta_kind[a->nopts] = (char)c;
		a->meta_opts[a->nopts++] = optarg;
	}
	if (optind == argc)
		return cli_usage_err(ctx, "missing NAME");
	if (argc - optind > 2)
		return cli_usage_err(ctx, "too many arguments");
	a->name = argv[optind];
	if (optind + 1 < argc && strcmp(argv[optind + 1], "-") != 0)
		a->file = argv[optind + 1];
	return put_meta_all(ctx, a);
}

/* Copy fd into a writer for name; on any failure the writer is aborted. */
/* Write fd to w and commit it (abort on failure); exit status. */
int cli_stream_to_writer(
	atrest_writer *w, int fd, void *buf, const char *what, const char *src)
{
	ssize_t n;
	int rc;

	for (;;) {
		n = read(fd, buf, CLI_IO_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = cli_err_os(errno, "%s: reading %s", what, src);
			atrest_writer_abort(w);
			return rc;
		}
		if (n == 0)
			break;
		rc = atrest_writer_write(w, buf, (size_t)n);
		if (rc < 0) {
			rc = cli_err(rc, "%s", what);
			atrest_writer_abort(w);
			return rc;
		}
	}
	rc = atrest_writer_commit(w);
	return rc < 0 ? cli_err(rc, "%s", what) : CLI_OK;
}

static int put_stream(atrest_store *st, const struct put_args *a, int fd, void *buf)
{
	atrest_meta meta = {a->entries, a->count};
	char what[64 + ATREST_NAME_MAX];
	atrest_writer *w;
	int rc;

	rc = atrest_writer_open(&w, st, a->name, a->count ? &meta : NULL);
	if (rc < 0)
		return cli_err(rc, "put %s", a->name);
	snprintf(what, sizeof(what), "put %s", a->name);
	return cli_stream_to_writer(
		w, fd, buf, what, a->file ? a->file : "standard input");
}

int cmd_put(struct cli_ctx *ctx, int argc, char **argv)
{
	struct put_args a = {0};
	atrest_store *st = NULL;
	void *buf = NULL;
	int fd = STDIN_FILENO, status;

	if (cli_recursive(argc, argv))
		return cmd_put_tree(ctx, argc, argv);
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
	put_args_free(&a);
	return status == CLI_DONE ? CLI_OK : status;
}

/* What get writes: a byte range of the plaintext (HTTP's forms). */
struct get_range {
	int set;
	int suffix;          /* "-N": the last N bytes */
	uint64_t start, end; /* end UINT64_MAX: to the end */
	uint64_t left;       /* bytes still to write */
};

/* Copy the reader to fd (at most g->left bytes); exit status.  buf is
 * CLI_IO_BUF bytes. */
static int get_copy(atrest_reader *r, const char *name, int fd, const char *dst,
	void *buf, struct get_range *g)
{
	size_t got, want;
	int rc, err;

	for (;;) {
		want = g->left < CLI_IO_BUF ? (size_t)g->left : CLI_IO_BUF;
		if (want == 0)
			return CLI_OK;
		rc = atrest_reader_read(r, buf, want, &got);
		if (rc < 0)
			return cli_err(rc, "get %s", name);
		if (got == 0)
			return CLI_OK;
		g->left -= got;
		err = cli_write_all(fd, buf, got);
		if (err)
			return cli_err_os(err, "get %s: writing %s", name, dst);
	}
}

/* A device or FIFO is written in place, verified segments as they come,
 * like standard output. */
static int get_to_special(atrest_reader *r, const char *name, const char *path, void *buf,
	struct get_range *g)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), status;

	if (fd < 0)
		return cli_err_os(errno, "get %s: opening %s", name, path);
	status = get_copy(r, name, fd, path, buf, g);
	if (close(fd) < 0 && !status)
		status = cli_err_os(errno, "get %s: writing %s", name, path);
	return status;
}

/* Verify everything into an unnamed (or temporary) file, then publish it. */
static int get_to_file(atrest_reader *r, const char *name, const char *path, void *buf,
	struct get_range *g)
{
	struct cli_atomic out;
	int status, err;

	if (cli_is_special(path))
		return get_to_special(r, name, path, buf, g);
	err = cli_atomic_open(&out, path);
	if (err == EINVAL)
		return cli_err_msg(CLI_USAGE, "get %s: bad output file '%s'", name, path);
	if (err)
		return cli_err_os(err, "get %s: creating a file next to %s", name, path);
	status = get_copy(r, name, out.fd, path, buf, g);
	if (status) {
		cli_atomic_abort(&out);
		return status;
	}
	err = cli_atomic_commit(&out, 1);
	return err ? cli_err_os(err, "get %s: writing %s", name, path) : CLI_OK;
}

/* A decimal offset of a range; 0 or -1. */
static int range_num(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 19)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "START-END", "START-" or "-N". */
static int parse_range(struct cli_ctx *ctx, const char *s, struct get_range *g)
{
	const char *dash = strchr(s, '-');
	size_t a = dash ? (size_t)(dash - s) : 0;

	g->set = 1;
	g->end = UINT64_MAX;
	g->suffix = dash == s;
	if (!dash || (g->suffix && range_num(s + 1, strlen(s + 1), &g->start) < 0) ||
		(!g->suffix && range_num(s, a, &g->start) < 0) ||
		(!g->suffix && dash[1] &&
			range_num(dash + 1, strlen(dash + 1), &g->end) < 0) ||
		g->start > g->end)
		return cli_usage_err(ctx,
			"--range takes START-END (inclusive, START <= END), START- or -N, "
			"not '%s'",
			s);
	return CLI_OK;
}

static int get_parse(struct cli_ctx *ctx, int argc, char **argv, const char **name,
	const char **out, struct get_range *g)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
		{"range", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":ho:", opts)) != -1) {
		if (c == 'o') {
			*out = strcmp(optarg, "-") ? optarg : NULL;
		} else if (c == 'r') {
			if (parse_range(ctx, optarg, g))
				return CLI_USAGE;
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

/* Seek to the range's start; how many bytes to write.  Exit status. */
static int get_seek(atrest_reader *r, const char *name, struct get_range *g)
{
	uint64_t size = atrest_reader_size(r);
	int rc;

	g->left = size;
	if (!g->set)
		return CLI_OK;
	if (g->suffix) {
		g->start = g->start < size ? size - g->start : 0;
		g->end = UINT64_MAX;
	}
	if (g->start >= size && !(g->suffix || (size == 0 && g->start == 0)))
		return cli_err_msg(CLI_USAGE,
			"get %s: the range starts at %llu, past the end of the object "
			"(%llu bytes)",
			name, (unsigned long long)g->start, (unsigned long long)size);
	g->end = g->end < size ? g->end : size - 1;
	g->left = size ? g->end - g->start + 1 : 0;
	rc = atrest_reader_seek(r, size ? g->start : 0);
	return rc < 0 ? cli_err(rc, "get %s", name) : CLI_OK;
}

int cmd_get(struct cli_ctx *ctx, int argc, char **argv)
{
	const char *name = NULL, *out = NULL;
	struct get_range g = {0};
	atrest_store *st = NULL;
	atrest_reader *r = NULL;
	void *buf;
	int status, rc;

	if (cli_recursive(argc, argv))
		return cmd_get_tree(ctx, argc, argv);
	status = get_parse(ctx, argc, argv, &name, &out, &g);
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
	else
		status = get_seek(r, name, &g);
	if (!status && out)
		status = get_to_file(r, name, out, buf, &g);
	else if (!status)
		status = get_copy(r, name, STDOUT_FILENO, "standard output", buf, &g);
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

	if (cli_recursive(argc, argv))
		return cmd_rm_tree(ctx, argc, argv);
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
