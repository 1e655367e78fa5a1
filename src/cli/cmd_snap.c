/*
 * Snapshots from the command line: put -r, get -r, ls -r, rm -r, verify -r
 * (reached from those commands when -r is given), snapshot list|latest,
 * and gc; a progress bar with bytes, files and rate on a terminal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_recursive(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-r") || !strcmp(argv[i], "--recursive"))
			return 1;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/* ---- progress ---- */

struct bar {
	int on;
	const char *label;
	const char *what; /* notes: NULL for warnings about a path, else a
			     failure of this command ("verify -r NAME") */
	double start;
	int drawn;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void bar_init(struct bar *b, const char *label, const char *what)
{
	b->on = isatty(STDERR_FILENO);
	b->label = label;
	b->what = what;
	b->start = now_s();
	b->drawn = 0;
}

static void human(char *out, size_t cap, double v)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void bar_clear(struct bar *b)
{
	if (b->on && b->drawn)
		fputs("\r\033[K", stderr);
	b->drawn = 0;
}

static void on_progress(const atrest_snap_progress *p, void *payload)
{
	struct bar *b = payload;
	char done[32], total[32], rate[32];
	double t = now_s() - b->start;

	if (p->note) {
		bar_clear(b);
		if (b->what)
			fprintf(stderr, "atrest: %s: %s\n", b->what, p->note);
		else
			fprintf(stderr, "atrest: warning: %s: %s\n",
				p->note_path && *p->note_path ? p->note_path : ".",
				p->note);
		return;
	}
	if (!b->on)
		return;
	human(done, sizeof(done), (double)p->bytes_done);
	human(total, sizeof(total), (double)p->bytes_total);
	human(rate, sizeof(rate), t > 0 ? (double)p->bytes_done / t : 0);
	fprintf(stderr, "\r\033[K%s %s / %s, %llu / %llu files, %s/s", b->label, done,
		total, (unsigned long long)p->files_done,
		(unsigned long long)p->files_total, rate);
	fflush(stderr);
	b->drawn = 1;
}

/* ---- put -r ---- */

struct put_tree {
	const char *dir, *name, *parent;
	int full;
	atrest_snap_tree_options topt;
};

static int put_tree_parse(struct cli_ctx *ctx, int argc, char **argv, struct put_tree *a)
{
	enum { O_PARENT = 256, O_FULL, O_XATTRS, O_CHECKSUM };
	static const struct option opts[] = {{"recursive", no_argument, NULL, 'r'},
		{"parent", required_argument, NULL, O_PARENT},
		{"full", no_argument, NULL, O_FULL},
		{"xattrs", no_argument, NULL, O_XATTRS},
		{"checksum", no_argument, NULL, O_CHECKSUM},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":hr", opts)) != -1) {
		if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		} else if (c == O_PARENT) {
			a->parent = optarg;
		} else if (c == O_FULL) {
			a->full = 1;
		} else if (c == O_XATTRS) {
			a->topt.flags |= ATREST_SNAP_TREE_XATTRS;
		} else if (c == O_CHECKSUM) {
			a->topt.flags |= ATREST_SNAP_TREE_CHECKSUM;
		} else if (c != 'r') {
			return CLI_USAGE;
		}
	}
	if (a->full && a->parent)
		return cli_usage_err(ctx, "--full and --parent exclude each other");
	if (argc - optind != 2)
		return cli_usage_err(ctx, "needs DIR and NAME");
	a->dir = argv[optind];
	a->name = argv[optind + 1];
	return CLI_OK;
}

static int put_tree_once(atrest_store *st, const struct put_tree *a, int full,
	atrest_snap_stats *stats, uint64_t *seq, char *parent, size_t cap)
{
	atrest_snap_options o = ATREST_SNAP_OPTIONS_INIT;
	atrest_snap *s;
	struct bar b;
	int rc;

	o.parent = full ? NULL : a->parent;
	o.flags = full ? 0 : ATREST_SNAP_AUTO_PARENT;
	rc = atrest_snap_begin(&s, st, a->name, &o);
	if (rc < 0)
		return rc;
	snprintf(parent, cap, "%s", atrest_snap_parent(s) ? atrest_snap_parent(s) : "");
	bar_init(&b, "put -r", NULL);
	rc = atrest_snap_add_tree(stats, s, a->dir, &a->topt, on_progress, &b);
	bar_clear(&b);
	if (rc < 0) {
		atrest_snap_abort(s);
		return rc;
	}
	return atrest_snap_commit(seq, s);
}

static void put_summary(
	const char *name, uint64_t seq, const atrest_snap_stats *s, const char *parent)
{
	char bytes[32], written[32];

	human(bytes, sizeof(bytes), (double)s->bytes);
	human(written, sizeof(written), (double)s->stored_bytes);
	printf("snapshot %s: sequence %llu, %llu files (%s), %llu shared with %s, %llu "
	       "objects written (%s)",
		name, (unsigned long long)seq, (unsigned long long)s->files, bytes,
		(unsigned long long)s->shared_files, *parent ? parent : "no parent",
		(unsigned long long)s->objects, written);
	if (s->dirs + s->symlinks + s->hardlinks + s->specials)
		printf(", %llu directories, %llu symbolic links, %llu hard links, %llu "
		       "special files",
			(unsigned long long)s->dirs, (unsigned long long)s->symlinks,
			(unsigned long long)s->hardlinks,
			(unsigned long long)s->specials);
	if (s->skipped)
		printf(", %llu sockets skipped", (unsigned long long)s->skipped);
	putchar('\n');
}

int cmd_put_tree(struct cli_ctx *ctx, int argc, char **argv)
{
	struct put_tree a = {.topt = ATREST_SNAP_TREE_OPTIONS_INIT};
	atrest_snap_stats stats;
	char parent[1024] = "";
	atrest_store *st;
	struct stat sb;
	uint64_t seq = 0;
	int status, rc;

	status = put_tree_parse(ctx, argc, argv, &a);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	/* Check the input first: a typo must not create a store. */
	if (stat(a.dir, &sb) != 0)
		return cli_err_input(errno, "put -r %s: %s", a.name, a.dir);
	if (!S_ISDIR(sb.st_mode))
		return cli_err_msg(
			CLI_USAGE, "put -r %s: %s is not a directory", a.name, a.dir);
	status = cli_open_store(&st, ctx, 1);
	if (status)
		return status;
	rc = put_tree_once(st, &a, a.full, &stats, &seq, parent, sizeof(parent));
	if (rc == ATREST_ECONFLICT && !a.full && !a.parent) {
		fprintf(stderr, "atrest: put -r %s: %s; taking a full snapshot instead\n",
			a.name, cli_lib_message(rc));
		rc = put_tree_once(st, &a, 1, &stats, &seq, parent, sizeof(parent));
	}
	if (rc < 0)
		status = cli_err(rc, "put -r %s", a.name);
	else
		put_summary(a.name, seq, &stats, parent);
	atrest_store_close(st);
	return status;
}

/* ---- get -r ---- */

static int get_tree_parse(struct cli_ctx *ctx, int argc, char **argv,
	atrest_snapshot_open_options *oo, atrest_snap_restore_options *ro)
{
	enum { O_MIN = 256, O_OWNERS, O_NO_OWNERS, O_NO_XATTRS, O_NO_SYNC };
	static const struct option opts[] = {{"recursive", no_argument, NULL, 'r'},
		{"min-seq", required_argument, NULL, O_MIN},
		{"owners", no_argument, NULL, O_OWNERS},
		{"no-owners", no_argument, NULL, O_NO_OWNERS},
		{"no-xattrs", no_argument, NULL, O_NO_XATTRS},
		{"no-sync", no_argument, NULL, O_NO_SYNC},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":hr", opts)) != -1) {
		if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		}
		if (c == O_MIN && parse_u64(optarg, &oo->min_seq) < 0)
			return cli_usage_err(
				ctx, "--min-seq needs a number, not '%s'", optarg);
		if (c == O_OWNERS)
			ro->flags |= ATREST_SNAP_RESTORE_OWNERS;
		else if (c == O_NO_OWNERS)
			ro->flags |= ATREST_SNAP_RESTORE_NO_OWNERS;
		else if (c == O_NO_XATTRS)
			ro->flags |= ATREST_SNAP_RESTORE_NO_XATTRS;
		else if (c == O_NO_SYNC)
			ro->flags |= ATREST_SNAP_RESTORE_NO_SYNC;
		else if (c != 'r' && c != O_MIN)
			return CLI_USAGE;
	}
	if (argc - optind != 2)
		return cli_usage_err(ctx, "needs NAME and DIR");
	return CLI_OK;
}

int cmd_get_tree(struct cli_ctx *ctx, int argc, char **argv)
{
	atrest_snapshot_open_options oo = ATREST_SNAPSHOT_OPEN_OPTIONS_INIT;
	atrest_snap_restore_options ro = ATREST_SNAP_RESTORE_OPTIONS_INIT;
	atrest_snapshot *s = NULL;
	atrest_snap_stats stats;
	atrest_store *st;
	struct bar b;
	char bytes[32];
	int status, rc;

	status = get_tree_parse(ctx, argc, argv, &oo, &ro);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	rc = atrest_snapshot_open(&s, st, argv[optind], &oo);
	if (rc == 0) {
		bar_init(&b, "get -r", NULL);
		rc = atrest_snapshot_restore(
			&stats, s, argv[optind + 1], &ro, on_progress, &b);
		bar_clear(&b);
	}
	if (rc < 0) {
		status = cli_err(rc, "get -r %s", argv[optind]);
	} else {
		human(bytes, sizeof(bytes), (double)stats.bytes);
		printf("restored %s to %s: %llu files (%s), %llu directories\n",
			argv[optind], argv[optind + 1], (unsigned long long)stats.files,
			bytes, (unsigned long long)stats.dirs + 1);
	}
	atrest_snapshot_close(s);
	atrest_store_close(st);
	return status;
}

/* ---- ls -r ---- */

static void mode_string(char out[11], int type, uint32_t mode)
{
	static const char types[] = "?d-lhpcb";
	static const char rwx[] = "rwxrwxrwx";

	out[0] = type >= 1 && type <= 7 ? types[type] : '?';
	for (int i = 0; i < 9; i++)
		out[1 + i] = (mode & (0400u >> i)) ? rwx[i] : '-';
	if (mode & 04000)
		out[3] = (mode & 0100) ? 's' : 'S';
	if (mode & 02000)
		out[6] = (mode & 010) ? 's' : 'S';
	if (mode & 01000)
		out[9] = (mode & 01) ? 't' : 'T';
	out[10] = '\0';
}

static const char *type_name(int t)
{
	static const char *names[] = {
		"?", "dir", "file", "symlink", "hardlink", "fifo", "char", "block"};

	return t >= 1 && t <= 7 ? names[t] : "?";
}

static void ls_long(const atrest_snap_entry *e)
{
	char mode[11], when[32];

	mode_string(mode, e->type, e->mode);
	cli_iso_time(when, e->mtime_ns / 1000000000);
	printf("%s %u %u %llu %s %s", mode, e->uid, e->gid, (unsigned long long)e->size,
		when, *e->path ? e->path : ".");
	if (e->type == ATREST_SNAP_SYMLINK)
		printf(" -> %s", e->target);
	else if (e->type == ATREST_SNAP_HARDLINK)
		printf(" link to %s", e->target);
	putchar('\n');
}

static void ls_json_entry(const atrest_snap_entry *e, int first)
{
	printf("%s\n  {\"path\": ", first ? "" : ",");
	cli_json_str(stdout, e->path);
	printf(", \"type\": \"%s\", \"mode\": %u, \"uid\": %u, \"gid\": %u, \"size\": %llu, "
	       "\"mtime_ns\": %lld",
		type_name(e->type), e->mode, e->uid, e->gid, (unsigned long long)e->size,
		(long long)e->mtime_ns);
	if (e->target) {
		fputs(", \"target\": ", stdout);
		cli_json_str(stdout, e->target);
	}
	if (e->type == ATREST_SNAP_CHAR || e->type == ATREST_SNAP_BLOCK)
		printf(", \"rdev\": %llu", (unsigned long long)e->rdev);
	if (e->xattr_count) {
		fputs(", \"xattrs\": [", stdout);
		for (size_t k = 0; k < e->xattr_count; k++) {
			fputs(k ? ", " : "", stdout);
			cli_json_str(stdout, e->xattrs[k].name);
		}
		putchar(']');
	}
	putchar('}');
}

static int ls_print(atrest_snapshot *s, int lng, int json)
{
	atrest_snapshot_info info = ATREST_SNAPSHOT_INFO_INIT;
	atrest_snap_entry e = ATREST_SNAP_ENTRY_INIT;
	int rc = atrest_snapshot_info_get(&info, s);

	if (rc == 0 && json) {
		printf("{\"name\": ");
		cli_json_str(stdout, info.name);
		printf(", \"seq\": %llu, \"created_ns\": %lld, \"parent\": ",
			(unsigned long long)info.seq, (long long)info.created_ns);
		cli_json_str(stdout, info.parent);
		printf(", \"files\": %llu, \"bytes\": %llu, \"objects\": %llu, \"entries\": [",
			(unsigned long long)info.files, (unsigned long long)info.bytes,
			(unsigned long long)info.objects);
	}
	for (size_t i = 0; rc == 0 && i < atrest_snapshot_count(s); i++) {
		rc = atrest_snapshot_entry(&e, s, i);
		if (rc < 0)
			break;
		if (json)
			ls_json_entry(&e, i == 0);
		else if (lng)
			ls_long(&e);
		else
			printf("%s\n", *e.path ? e.path : ".");
	}
	if (rc == 0 && json)
		printf("\n]}\n");
	return rc;
}

int cmd_ls_tree(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"recursive", no_argument, NULL, 'r'},
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	atrest_snapshot *s;
	atrest_store *st;
	int c, lng = 0, json = 0, status, rc;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":hrl", opts)) != -1) {
		if (c == 'h')
			return cli_help(ctx->cmd);
		if (c == 'l')
			lng = 1;
		else if (c == 'j')
			json = 1;
		else if (c != 'r')
			return CLI_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage_err(ctx, "needs one snapshot NAME");
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	rc = atrest_snapshot_open(&s, st, argv[optind], NULL);
	if (rc == 0) {
		rc = ls_print(s, lng, json);
		atrest_snapshot_close(s);
	}
	if (rc < 0)
		status = cli_err(rc, "ls -r %s", argv[optind]);
	atrest_store_close(st);
	return status;
}

/* ---- rm -r, verify -r ---- */

/* The one NAME of a command taking only -r; exit status or CLI_OK. */
static int one_name(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"recursive", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":hr", opts)) != -1) {
		if (c == 'h') {
			cli_help(ctx->cmd);
			return CLI_DONE;
		}
		if (c != 'r')
			return CLI_USAGE;
	}
	if (argc - optind != 1)
		return cli_usage_err(ctx, "needs one snapshot NAME");
	return CLI_OK;
}

int cmd_rm_tree(struct cli_ctx *ctx, int argc, char **argv)
{
	atrest_snap_stats stats;
	atrest_store *st;
	int status = one_name(ctx, argc, argv), rc;

	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	rc = atrest_snapshot_remove(&stats, st, argv[optind]);
	if (rc < 0)
		status = cli_err(rc, "rm -r %s", argv[optind]);
	else
		printf("removed snapshot %s: %llu objects deleted, %llu shared with other "
		       "snapshots kept\n",
			argv[optind], (unsigned long long)stats.objects,
			(unsigned long long)stats.kept);
	atrest_store_close(st);
	return status;
}

int cmd_verify_tree(struct cli_ctx *ctx, int argc, char **argv)
{
	atrest_snapshot *s = NULL;
	atrest_snap_stats stats = {0};
	atrest_store *st;
	struct bar b;
	char bytes[32];
	int status = one_name(ctx, argc, argv), rc;

	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	rc = atrest_snapshot_open(&s, st, argv[optind], NULL);
	if (rc < 0) {
		status = cli_err(rc, "verify -r %s", argv[optind]);
	} else {
		char what[1100];
		snprintf(what, sizeof(what), "verify -r %s", argv[optind]);
		bar_init(&b, "verify -r", what);
		rc = atrest_snapshot_verify(&stats, s, on_progress, &b);
		bar_clear(&b);
		human(bytes, sizeof(bytes), (double)stats.bytes);
		printf("snapshot %s: %llu files (%s) in %llu objects, %s\n", argv[optind],
			(unsigned long long)stats.files, bytes,
			(unsigned long long)stats.objects,
			rc < 0 ? "FAILED" : "all verified");
		status = cli_exit_status(rc);
	}
	atrest_snapshot_close(s);
	atrest_store_close(st);
	return status;
}

/* ---- snapshot list | latest ---- */

static int list_line(const atrest_snapshot_list_entry *e, void *payload)
{
	int *json = payload;
	char when[32];

	cli_iso_time(when, e->created_ns / 1000000000);
	if (*json) {
		printf("%s\n  {\"name\": ", *json == 1 ? "" : ",");
		cli_json_str(stdout, e->name);
		printf(", \"seq\": %llu, \"created_ns\": %lld, \"parent\": ",
			(unsigned long long)e->seq, (long long)e->created_ns);
		cli_json_str(stdout, e->parent);
		putchar('}');
		*json = 2;
	} else {
		printf("%llu %s %s%s%s\n", (unsigned long long)e->seq, when, e->name,
			*e->parent ? " parent=" : "", e->parent);
	}
	return 0;
}

static int snapshot_list(atrest_store *st, const char *prefix, int json)
{
	int state = json, rc;

	if (json)
		putchar('[');
	rc = atrest_snapshot_list(st, prefix, list_line, &state);
	if (rc == 0 && json)
		printf("\n]\n");
	return rc < 0 ? cli_err(rc, "snapshot list") : CLI_OK;
}

static int snapshot_latest(atrest_store *st, const char *prefix, uint64_t min, int json)
{
	char *name;
	uint64_t seq;
	int rc = atrest_snapshot_latest(&name, &seq, st, prefix, min);

	if (rc < 0)
		return cli_err(rc, "snapshot latest %s", prefix);
	if (json) {
		printf("{\"name\": ");
		cli_json_str(stdout, name);
		printf(", \"seq\": %llu}\n", (unsigned long long)seq);
	} else {
		printf("%s %llu\n", name, (unsigned long long)seq);
	}
	atrest_free(name);
	return CLI_OK;
}

int cmd_snapshot(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { O_MIN = 256 };
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
		{"min-seq", required_argument, NULL, O_MIN},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *action, *prefix;
	atrest_store *st;
	uint64_t min = 0;
	int c, json = 0, status;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'h')
			return cli_help(ctx->cmd);
		if (c == 'j')
			json = 1;
		else if (c == O_MIN && parse_u64(optarg, &min) == 0)
			continue;
		else
			return c == O_MIN ? cli_usage_err(ctx, "--min-seq needs a number")
					  : CLI_USAGE;
	}
	if (optind == argc)
		return cli_usage_err(ctx, "missing ACTION (list or latest)");
	action = argv[optind];
	if (strcmp(action, "list") && strcmp(action, "latest"))
		return cli_usage_err(ctx, "unknown action '%s'", action);
	if (argc - optind > 2 || (!strcmp(action, "latest") && argc - optind != 2))
		return cli_usage_err(ctx, "%s takes %s PREFIX", action,
			strcmp(action, "list") ? "one" : "at most one");
	prefix = optind + 1 < argc ? argv[optind + 1] : "";
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	status = !strcmp(action, "list") ? snapshot_list(st, prefix, json)
					 : snapshot_latest(st, prefix, min, json);
	atrest_store_close(st);
	return status;
}

/* ---- gc ---- */

int cmd_gc(struct cli_ctx *ctx, int argc, char **argv)
{
	enum { O_GRACE = 256, O_TTL, O_DRY };
	static const struct option opts[] = {{"grace", required_argument, NULL, O_GRACE},
		{"ttl", required_argument, NULL, O_TTL},
		{"dry-run", no_argument, NULL, O_DRY}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	atrest_gc_options o = ATREST_GC_OPTIONS_INIT;
	atrest_snap_stats stats;
	atrest_store *st;
	uint32_t v;
	char bytes[32];
	int c, status, rc;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'h')
			return cli_help(ctx->cmd);
		if ((c == O_GRACE || c == O_TTL) && cli_parse_u32(optarg, &v) < 0)
			return cli_usage_err(
				ctx, "needs a number of seconds, not '%s'", optarg);
		if (c == O_GRACE)
			o.grace = v;
		else if (c == O_TTL && v > 0)
			o.ttl = v;
		else if (c == O_DRY)
			o.dry_run = 1;
		else
			return c == O_TTL ? cli_usage_err(ctx, "--ttl must be at least 1")
					  : CLI_USAGE;
	}
	if (optind != argc)
		return cli_usage_err(ctx, "too many arguments");
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	rc = atrest_snapshot_gc(&stats, st, &o);
	if (rc < 0) {
		status = cli_err(rc, "gc");
	} else {
		human(bytes, sizeof(bytes), (double)stats.stored_bytes);
		printf("gc: %llu objects %s (%s), %llu kept, %llu stale leases removed, "
		       "%llu dead writers' leftovers cleaned\n",
			(unsigned long long)stats.objects,
			o.dry_run ? "to remove" : "removed", bytes,
			(unsigned long long)stats.kept,
			(unsigned long long)stats.leases_removed,
			(unsigned long long)stats.cleaned);
	}
	atrest_store_close(st);
	return status;
}
