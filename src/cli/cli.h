/*
 * Declarations shared by the files of the atrest command-line tool: the
 * command table entry, the per-run context and the helpers of util.c.
 */
#ifndef ATREST_CLI_H
#define ATREST_CLI_H

#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "atrest/atrest.h"

#if defined(__GNUC__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Exit statuses; library codes map with cli_exit_status. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cli_exit_status(int code);

/* From a command's parse helper: the command is done (help shown), exit 0. */
#define CLI_DONE (-1)

/* Returned by cli_getopt after it printed a usage error. */
#define CLI_OPT_BAD (-2)

/* The IO buffer of put, get and verify: cli_iobuf_new, cli_iobuf_free
 * (which wipes it). */
#define CLI_IO_BUF (1024 * 1024)
void *cli_iobuf_new(void);
void cli_iobuf_free(void *buf);

struct cli_ctx;

/*
 * One row of the command table in main.c.  fn gets argv with argv[0] the
 * command name and returns an exit status, having printed any error.
 */
struct cli_cmd {
	const char *name;
	int (*fn)(struct cli_ctx *ctx, int argc, char **argv);
	const char *summary; /* one line for 'atrest --help' */
	const char *usage;   /* printed after "usage: atrest " by --help */
};

/* What the global options decided, for the command being run. */
struct cli_ctx {
	const char *store;   /* store location: a directory or a URI */
	int store_given;     /* by --store or $ATREST_STORE (not the default) */
	const char *tenant;  /* NULL: the default tenant */
	int allow_plaintext; /* --allow-plaintext or ATREST_ALLOW_PLAINTEXT=1 */
	const struct cli_cmd *cmd;
};

/* An action of a command with actions (tenant add, upload list...). */
struct cli_action {
	const char *name;
	int (*fn)(struct cli_ctx *, int, char **);
};
/* Run the action argv[1] names (of n; their names in missing's message
 * when there is none), or the command's help; the exit status. */
int cli_dispatch(struct cli_ctx *ctx, int argc, char **argv,
	const struct cli_action *actions, size_t n, const char *names);

/* Commands (one file per group). */
int cmd_keygen(struct cli_ctx *ctx, int argc, char **argv);
int cmd_init(struct cli_ctx *ctx, int argc, char **argv);
int cmd_config(struct cli_ctx *ctx, int argc, char **argv);
int cmd_put(struct cli_ctx *ctx, int argc, char **argv);
int cmd_get(struct cli_ctx *ctx, int argc, char **argv);
int cmd_ls(struct cli_ctx *ctx, int argc, char **argv);
int cmd_rm(struct cli_ctx *ctx, int argc, char **argv);
int cmd_inspect(struct cli_ctx *ctx, int argc, char **argv);
int cmd_verify(struct cli_ctx *ctx, int argc, char **argv);
int cmd_keys(struct cli_ctx *ctx, int argc, char **argv);
int cmd_rotate(struct cli_ctx *ctx, int argc, char **argv);
int cmd_rewrap(struct cli_ctx *ctx, int argc, char **argv);
int cmd_reencrypt(struct cli_ctx *ctx, int argc, char **argv);
int cmd_migrate(struct cli_ctx *ctx, int argc, char **argv);
int cmd_encrypt(struct cli_ctx *ctx, int argc, char **argv);
int cmd_decrypt(struct cli_ctx *ctx, int argc, char **argv);
int cmd_bench(struct cli_ctx *ctx, int argc, char **argv);
int cmd_audit(struct cli_ctx *ctx, int argc, char **argv);
int cmd_stats(struct cli_ctx *ctx, int argc, char **argv);
int cmd_keycheck(struct cli_ctx *ctx, int argc, char **argv);
int cmd_tenant(struct cli_ctx *ctx, int argc, char **argv);
int cmd_upload(struct cli_ctx *ctx, int argc, char **argv);
int cmd_snapshot(struct cli_ctx *ctx, int argc, char **argv);
int cmd_gc(struct cli_ctx *ctx, int argc, char **argv);
int cmd_apikey(struct cli_ctx *ctx, int argc, char **argv);
int cmd_s3key(struct cli_ctx *ctx, int argc, char **argv);
int cmd_gen_cert(struct cli_ctx *ctx, int argc, char **argv);
int cmd_server(struct cli_ctx *ctx, int argc, char **argv);
int cmd_help(struct cli_ctx *ctx, int argc, char **argv);

/* Snapshots (cmd_snap.c): put, get, ls, rm and verify hand over to these
 * when -r (--recursive) is among their arguments (cli_recursive). */
int cli_recursive(int argc, char **argv);
int cmd_put_tree(struct cli_ctx *ctx, int argc, char **argv);
int cmd_get_tree(struct cli_ctx *ctx, int argc, char **argv);
int cmd_ls_tree(struct cli_ctx *ctx, int argc, char **argv);
int cmd_rm_tree(struct cli_ctx *ctx, int argc, char **argv);
int cmd_verify_tree(struct cli_ctx *ctx, int argc, char **argv);

/* The command table (commands.c) and the texts of 'atrest --help'. */
extern const struct cli_cmd cli_commands[];
extern const size_t cli_ncommands;
extern const char cli_global_usage[];
/* The environment and exit-status part of 'atrest --help'. */
void cli_write_global_env(FILE *f);
const struct cli_cmd *cli_find_command(const char *name);
void cli_print_global_usage(void);

/*
 * On stderr, one warning per exposed data key that objects still use (a scan
 * of the store); 0 or the exit status after printing why not (cmd_keys.c).
 */
int cli_warn_exposed(atrest_store *st, const char *what);

/* Errors: each prints one line on stderr and returns the exit status. */
/* "atrest: WHAT: <library message>", status from code. */
int cli_err(int code, const char *fmt, ...) CLI_PRINTF(2, 3);
/* "atrest: WHAT: strerror(errnum)", status 1. */
int cli_err_os(int errnum, const char *fmt, ...) CLI_PRINTF(2, 3);
/* The same for an input that cannot be opened: status 3 (not found) when it
 * does not exist (ENOENT, ENOTDIR), as for a missing object; else 1. */
int cli_err_input(int errnum, const char *fmt, ...) CLI_PRINTF(2, 3);
/* "atrest: WHAT", the given status. */
int cli_err_msg(int status, const char *fmt, ...) CLI_PRINTF(2, 3);
/* "atrest: CMD: WHAT (try 'atrest CMD --help')", status 2. */
int cli_usage_err(const struct cli_ctx *ctx, const char *fmt, ...) CLI_PRINTF(2, 3);
/* The library's message for code (last error of this thread, or generic). */
const char *cli_lib_message(int code);

/* Print a command's usage on stdout; returns 0. */
int cli_help(const struct cli_cmd *cmd);

/*
 * getopt_long for a command's argv (argv[0] is the command).  Start each
 * parse with cli_getopt_reset().  optstring must begin with ':'.  Returns
 * the option, -1 at the end, or CLI_OPT_BAD after printing a usage error.
 * The global options (--store, --tenant, --allow-plaintext) are accepted
 * among any command's options and set ctx.
 */
void cli_getopt_reset(void);
int cli_getopt(struct cli_ctx *ctx, int argc, char **argv, const char *optstring,
	const struct option *longopts);

/*
 * Initialise opts with the store path, tenant, plaintext switch and the
 * master key(s) from the environment; 0 or the exit status after printing
 * why not.
 */
int cli_store_options(atrest_store_options *opts, const struct cli_ctx *ctx);
/* Whether a master key is set in the environment (commands that show only
 * what is not secret then work without one). */
int cli_have_key(void);
/* cli_store_options and atrest_store_open; 0 or the exit status. */
int cli_open_store(atrest_store **out, const struct cli_ctx *ctx, int create);

/* Parsing. */
/* A size with an optional K, KiB, M or MiB suffix; 0 or -1. */
int cli_parse_size(const char *s, uint32_t *out);
/* A decimal unsigned 32-bit number; 0 or -1. */
int cli_parse_u32(const char *s, uint32_t *out);

/* Write fd to w (CLI_IO_BUF bytes of buf at a time) and commit it, or
 * abort it on failure; the exit status (cmd_object.c). */
int cli_stream_to_writer(
	atrest_writer *w, int fd, void *buf, const char *what, const char *src);

/* Output. */
/* Make the pipe at fd (if it is one) hold up to 1 MiB; no error if not. */
void cli_grow_pipe(int fd);
/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void cli_hex(char *out, const uint8_t *in, size_t n);
/* Padded base64 of n bytes into out (4 * ((n + 2) / 3) + 1 bytes). */
void cli_base64(char *out, const uint8_t *in, size_t n);
/* s as a quoted JSON string. */
void cli_json_str(FILE *f, const char *s);
/* t (seconds since the epoch) as ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ". */
void cli_iso_time(char out[32], int64_t t);
/* Write all of buf to fd; 0 or an errno value. */
int cli_write_all(int fd, const void *buf, size_t len);
/* Flush stdout; 0 or the exit status after printing the error. */
int cli_flush_stdout(void);
/* fsync the directory holding path; 0 or an errno value. */
int cli_fsync_parent(const char *path);

/* A progress bar on stderr, drawn only when stderr is a terminal. */
struct cli_progress {
	int on;
	const char *label;
	size_t total;
};
void cli_progress_start(struct cli_progress *p, const char *label, size_t total);
void cli_progress_show(struct cli_progress *p, size_t done);
/* Erase the bar (before printing a line, and at the end). */
void cli_progress_clear(struct cli_progress *p);

/* The objects under a prefix, collected so that the store can be used again. */
struct cli_entry {
	char *name;
	uint64_t stored_size;
	int64_t mtime;
};
struct cli_list {
	struct cli_entry *v;
	size_t n, cap;
};
/* 0 or the exit status after printing the error (what names the command). */
int cli_list_collect(
	struct cli_list *out, atrest_store *st, const char *prefix, const char *what);
void cli_list_free(struct cli_list *l);
/* atrest_list callback adding to a struct cli_list; 1 when out of memory. */
int cli_list_add(const atrest_list_entry *e, void *payload);

/*
 * An existing device or FIFO (/dev/null, a pipe): an output that is written
 * in place, never replaced by a rename.
 */
int cli_is_special(const char *path);

/*
 * An output file (get -o, decrypt -o, encrypt -o) that appears at path,
 * whole, only when committed.  Written unnamed (O_TMPFILE in path's
 * directory) where the file system allows, so that nothing named exists
 * before the commit, even after kill -9; else as a named temporary file
 * "DIR/.BASE.atrest-XXXXXX" (mode 0600), locked while in use, removed on
 * SIGINT, SIGTERM and SIGHUP, and by the next open for the same path when a
 * harder kill left it.  One at a time; path must outlive the output.
 */
struct cli_atomic {
	const char *path;
	int fd;
	char tmp[PATH_MAX]; /* the temporary name, "" while unnamed */
};
/* 0 or an errno value (EINVAL: path names no file). */
int cli_atomic_open(struct cli_atomic *a, const char *path);
/* fsync when sync, put the file at path, sync the directory; 0 or errno
 * (the output is then gone and an existing path untouched). */
int cli_atomic_commit(struct cli_atomic *a, int sync);
void cli_atomic_abort(struct cli_atomic *a);

#endif
