/*
 * atrest-bench: measures each performance target beside its reference
 * in the same run, in a temporary directory, and prints a table or JSON.
 */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench_int.h"

/* The groups of figures, in the order they run. */
static const struct group {
	const char *name;
	int (*fn)(struct bench *b);
	int dflt; /* part of a run without --only */
} groups[] = {
	{"rss", bench_rss, 1}, /* first: the process is still small */
	{"object", bench_object, 1},
	{"put", bench_put, 1},
	{"get", bench_get, 1},
	{"records", bench_records, 1},
	{"rewrap", bench_rewrap, 1},
	{"crypt", bench_crypt, 1},
	{"pipe", bench_pipe, 1},
	{"cli", bench_cli, 1},
	{"passphrase", bench_passphrase, 1},
	{"sweep", bench_sweep, 0},
	{"s3", bench_s3, 0},
};

#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

struct bench_fig *bench_add(struct bench *b, const char *name, double value,
	const char *unit, const char *ref_name, double ref, double ratio)
{
	struct bench_fig *f;

	if (b->nfigs == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 32;
		f = realloc(b->figs, cap * sizeof(*f));
		if (!f)
			return NULL;
		b->figs = f;
		b->cap = cap;
	}
	f = &b->figs[b->nfigs++];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->ref_name, sizeof(f->ref_name), "%s", ref_name ? ref_name : "");
	f->unit = unit;
	f->value = value;
	f->ref = ref;
	f->ratio = ratio;
	f->target = NAN;
	return f;
}

void bench_target(struct bench_fig *f, const char *on, const char *cmp, double target)
{
	if (!f)
		return;
	f->on = on;
	f->cmp = cmp;
	f->target = target;
}

void bench_na(struct bench *b, const char *name, const char *unit, const char *why)
{
	struct bench_fig *f = bench_add(b, name, NAN, unit, NULL, NAN, NAN);

	if (f)
		snprintf(f->note, sizeof(f->note), "not available: %s", why);
}

void bench_say(const char *fmt, ...)
{
	va_list ap;

	if (!isatty(2))
		return;
	fputs("bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_pct(double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)ceil(p * (double)n);
	return v[i == 0 ? 0 : i - 1 < n ? i - 1 : n - 1];
}

void bench_fill_buf(uint8_t *buf, size_t len)
{
	uint8_t block[64 * 1024];
	size_t n;

	atrest_random(block, sizeof(block));
	for (size_t off = 0; off < len; off += n) {
		n = len - off < sizeof(block) ? len - off : sizeof(block);
		memcpy(buf + off, block, n);
		/* Vary the tiles so that nothing deduplicates or compresses. */
		block[off / sizeof(block) % sizeof(block)] ^= 0xa5;
	}
}

int bench_store_ex(struct bench *b, atrest_store **out, const char *sub,
	const uint8_t *key_in, uint8_t key_out[32], unsigned int flags)
{
	return bench_store_audit(b, out, sub, key_in, key_out, flags, NULL);
}

int bench_store_audit(struct bench *b, atrest_store **out, const char *sub,
	const uint8_t *key_in, uint8_t key_out[32], unsigned int flags, const char *audit)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	char path[4096];
	uint8_t key[32];
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", b->dir, sub);
	if (key_in)
		memcpy(key, key_in, sizeof(key));
	else
		rc = atrest_random(key, sizeof(key));
	if (rc == 0)
		rc = atrest_keyprov_raw(&o.key, key, sizeof(key));
	if (key_out)
		memcpy(key_out, key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	if (rc < 0)
		return cli_err(rc, "bench: key");
	o.path = path;
	o.create = 1;
	o.flags = flags;
	o.audit = audit;
	rc = atrest_store_open(out, &o);
	if (rc < 0)
		return cli_err(rc, "bench: store %s", path);
	return 0;
}

int bench_store(struct bench *b, atrest_store **out, const char *sub, uint8_t key_out[32])
{
	return bench_store_ex(b, out, sub, NULL, key_out, 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_tree(const char *dir)
{
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "atrest: bench: could not remove %s\n", dir);
}

/* The run directory: mkdtemp under --dir, $TMPDIR or /var/tmp. */
static int make_dir(struct bench *b, const char *parent)
{
	const char *tmp = getenv("TMPDIR");
	size_t n;

	if (!parent)
		parent = tmp && *tmp ? tmp : "/var/tmp";
	n = strlen(parent) + sizeof("/atrest-bench.XXXXXX");
	b->dir = malloc(n);
	if (!b->dir)
		return cli_err_os(ENOMEM, "bench");
	snprintf(b->dir, n, "%s/atrest-bench.XXXXXX", parent);
	if (!mkdtemp(b->dir)) {
		int e = errno;
		free(b->dir);
		b->dir = NULL;
		return cli_err_os(e, "bench: cannot make a directory under %s", parent);
	}
	return 0;
}

static void cpu_model(char *out, size_t cap)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512], *p;

	snprintf(out, cap, "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) != 0 || !(p = strchr(line, ':')))
			continue;
		p += strspn(p + 1, " \t") + 1;
		p[strcspn(p, "\n")] = '\0';
		snprintf(out, cap, "%s", p);
		break;
	}
	if (f)
		fclose(f);
}

static const char *fs_name(const char *dir)
{
	struct statfs s;

	if (statfs(dir, &s) != 0)
		return "unknown";
	switch ((unsigned long)s.f_type) {
	case 0xEF53:
		return "ext4";
	case 0x01021994:
		return "tmpfs";
	case 0x58465342:
		return "xfs";
	case 0x9123683E:
		return "btrfs";
	case 0x794c7630:
		return "overlayfs";
	default:
		return "other";
	}
}

/* The facts about the machine and run that head the report. */
struct machine {
	char cpu[256], date[32], kernel[160];
	char load[2][64]; /* /proc/loadavg before and after: others' load */
	long cores;
	const char *openssl, *fs;
};

static void loadavg(char *out, size_t cap)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double a[3];

	if (f && fscanf(f, "%lf %lf %lf", &a[0], &a[1], &a[2]) == 3)
		snprintf(out, cap, "%.2f %.2f %.2f", a[0], a[1], a[2]);
	else
		snprintf(out, cap, "unknown");
	if (f)
		fclose(f);
}

static void machine_facts(struct machine *m, const struct bench *b)
{
	struct utsname u;

	cpu_model(m->cpu, sizeof(m->cpu));
	m->cores = sysconf(_SC_NPROCESSORS_ONLN);
	cli_iso_time(m->date, (int64_t)time(NULL));
	m->openssl = bench_openssl_version();
	m->fs = fs_name(b->dir);
	loadavg(m->load[0], sizeof(m->load[0]));
	if (uname(&u) == 0)
		snprintf(m->kernel, sizeof(m->kernel), "%s %s", u.sysname, u.release);
	else
		snprintf(m->kernel, sizeof(m->kernel), "unknown");
}

/* -1: no target or no value; else whether the target is met. */
static int fig_met(const struct bench_fig *f)
{
	double x;

	if (!f->on || isnan(f->target))
		return -1;
	x = !strcmp(f->on, "ratio") ? f->ratio : f->value;
	if (isnan(x))
		return -1;
	return !strcmp(f->cmp, ">=") ? x >= f->target : x <= f->target;
}

static void json_num(double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", stdout);
	else
		printf("%.6g", v);
}

static void json_fig(const struct bench_fig *f)
{
	int met = fig_met(f);

	fputs("{\"name\": ", stdout);
	cli_json_str(stdout, f->name);
	fputs(", \"value\": ", stdout);
	json_num(f->value);
	fputs(", \"unit\": ", stdout);
	cli_json_str(stdout, f->unit ? f->unit : "");
	fputs(", \"reference\": ", stdout);
	json_num(f->ref);
	fputs(", \"reference_name\": ", stdout);
	cli_json_str(stdout, f->ref_name);
	fputs(", \"ratio\": ", stdout);
	json_num(f->ratio);
	fputs(", \"target\": ", stdout);
	if (f->on) {
		printf("{\"on\": \"%s\", \"cmp\": \"%s\", \"value\": ", f->on, f->cmp);
		json_num(f->target);
		fputs("}", stdout);
	} else {
		fputs("null", stdout);
	}
	printf(", \"met\": %s, \"note\": ", met < 0 ? "null" : met ? "true" : "false");
	cli_json_str(stdout, f->note);
	fputs("}", stdout);
}

static void json_sweep(const struct bench *b)
{
	const char *keys[] = {"put", "plain_write", "get", "pread", "encrypt", "decrypt",
		"age_encrypt", "age_decrypt"};

	fputs(",\n  \"sweep_unit\": \"MB/s\",\n  \"sweep\": [", stdout);
	for (size_t i = 0; i < b->nsweep; i++) {
		const struct bench_sweep *s = &b->sweep[i];
		double v[] = {s->put, s->plain_write, s->get, s->pread, s->enc, s->dec,
			s->age_enc, s->age_dec};

		printf("%s\n    {\"size\": %zu", i ? "," : "", s->size);
		for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++) {
			printf(", \"%s\": ", keys[k]);
			json_num(v[k]);
		}
		fputs("}", stdout);
	}
	fputs("\n  ]", stdout);
}

static void print_json(const struct bench *b, const struct machine *m)
{
	fputs("{\n  \"machine\": {\"cpu\": ", stdout);
	cli_json_str(stdout, m->cpu);
	printf(", \"cores\": %ld, \"kernel\": ", m->cores);
	cli_json_str(stdout, m->kernel);
	fputs(", \"openssl\": ", stdout);
	cli_json_str(stdout, m->openssl);
	printf(", \"filesystem\": \"%s\", \"loadavg_before\": \"%s\", "
	       "\"loadavg_after\": \"%s\"},\n  \"date\": \"%s\",\n",
		m->fs, m->load[0], m->load[1], m->date);
	printf("  \"atrest\": \"%s\",\n  \"quick\": %s,\n  \"figures\": [",
		ATREST_VERSION, b->quick ? "true" : "false");
	for (size_t i = 0; i < b->nfigs; i++) {
		fputs(i ? ",\n    " : "\n    ", stdout);
		json_fig(&b->figs[i]);
	}
	fputs("\n  ]", stdout);
	if (b->nsweep)
		json_sweep(b);
	fputs("\n}\n", stdout);
}

static void fmt_num(char *out, size_t cap, double v, const char *unit)
{
	if (isnan(v))
		snprintf(out, cap, "-");
	else
		snprintf(out, cap, "%.4g%s%s", v, unit && *unit ? " " : "",
			unit ? unit : "");
}

static void table_row(const struct bench_fig *f)
{
	static const char *const met_s[] = {"-", "no", "yes"};
	char val[48], ref[48], ratio[16], target[32];

	fmt_num(val, sizeof(val), f->value, f->unit);
	fmt_num(ref, sizeof(ref), f->ref, f->unit);
	fmt_num(ratio, sizeof(ratio), f->ratio, NULL);
	if (f->on)
		snprintf(target, sizeof(target), "%s %s %.4g",
			!strcmp(f->on, "ratio") ? "ratio" : "value", f->cmp, f->target);
	else
		snprintf(target, sizeof(target), "-");
	printf("%-34s %-14s %-14s %-7s %-18s %s\n", f->name, val, ref, ratio, target,
		met_s[fig_met(f) + 1]);
	if (*f->ref_name)
		printf("%-34s reference: %s\n", "", f->ref_name);
	if (*f->note)
		printf("%-34s note: %s\n", "", f->note);
}

static void print_sweep(const struct bench *b)
{
	fputs("\nsweep (MB/s)    put   plain     get   pread encrypt decrypt"
	      " age-enc age-dec\n",
		stdout);
	for (size_t i = 0; i < b->nsweep; i++) {
		const struct bench_sweep *s = &b->sweep[i];

		printf("%10zu %8.0f%8.0f%8.0f%8.0f%8.0f%8.0f%8.0f%8.0f\n", s->size,
			s->put, s->plain_write, s->get, s->pread, s->enc, s->dec,
			s->age_enc, s->age_dec);
	}
}

static void print_table(const struct bench *b, const struct machine *m)
{
	printf("atrest %s bench%s  %s\n", ATREST_VERSION, b->quick ? " (quick)" : "",
		m->date);
	printf("cpu: %s, %ld cores; %s; %s\n", m->cpu, m->cores, m->kernel, m->openssl);
	printf("directory: %s (%s); load average before %s, after %s\n\n", b->dir, m->fs,
		m->load[0], m->load[1]);
	printf("%-34s %-14s %-14s %-7s %-18s %s\n", "figure", "value", "reference",
		"ratio", "target", "met");
	for (size_t i = 0; i < b->nfigs; i++)
		table_row(&b->figs[i]);
	if (b->nsweep)
		print_sweep(b);
}

/* Is group name chosen by --only (or by default)? */
static int chosen(const struct bench *b, const struct group *g)
{
	size_t n = strlen(g->name);

	if (!b->only)
		return g->dflt;
	for (const char *p = b->only; *p; p += strcspn(p, ",")) {
		p += *p == ',';
		if (!strncmp(p, g->name, n) && (p[n] == ',' || p[n] == '\0'))
			return 1;
	}
	return 0;
}

static int check_only(const struct cli_ctx *ctx, const char *only)
{
	for (const char *p = only; *p;) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < NGROUPS; i++)
			if (strlen(groups[i].name) == n && !strncmp(p, groups[i].name, n))
				break;
		if (i == NGROUPS)
			return cli_usage_err(
				ctx, "--only: unknown figure '%.*s'", (int)n, p);
		p += n + (p[n] == ',');
	}
	return 0;
}

static int parse_bench(struct bench *b, int *json, const char **dir, struct cli_ctx *ctx,
	int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_QUICK, OPT_DIR, OPT_ONLY, OPT_S3 };
	static const struct option opts[] = {{"json", no_argument, NULL, OPT_JSON},
		{"quick", no_argument, NULL, OPT_QUICK},
		{"dir", required_argument, NULL, OPT_DIR},
		{"only", required_argument, NULL, OPT_ONLY},
		{"s3", required_argument, NULL, OPT_S3}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int c;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'h')
			return cli_help(ctx->cmd), CLI_DONE;
		else if (c == OPT_JSON)
			*json = 1;
		else if (c == OPT_QUICK)
			b->quick = 1;
		else if (c == OPT_DIR)
			*dir = optarg;
		else if (c == OPT_ONLY)
			b->only = optarg;
		else if (c == OPT_S3)
			b->s3 = optarg;
		else
			return CLI_USAGE;
	}
	if (optind < argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	return b->only ? check_only(ctx, b->only) : 0;
}

static int run_groups(struct bench *b)
{
	int status = 0, rc;

	for (size_t i = 0; i < NGROUPS; i++) {
		if (!chosen(b, &groups[i]))
			continue;
		rc = groups[i].fn(b);
		if (rc != 0) {
			bench_na(b, groups[i].name, "", "failed (see stderr)");
			status = status ? status : rc;
		}
	}
	return status;
}

int cmd_bench(struct cli_ctx *ctx, int argc, char **argv)
{
	struct bench b = {0};
	struct machine m;
	const char *dir = NULL;
	int json = 0, status;
	ssize_t n;

	status = parse_bench(&b, &json, &dir, ctx, argc, argv);
	if (status)
		return status == CLI_DONE ? CLI_OK : status;
	/* The atrest tool beside this program runs the CLI figures. */
	n = readlink("/proc/self/exe", b.self, sizeof(b.self) - 8);
	b.self[n > 0 ? n : 0] = '\0';
	strcpy(strrchr(b.self, '/') ? strrchr(b.self, '/') + 1 : b.self, "atrest");
	status = make_dir(&b, dir);
	if (status)
		return status;
	machine_facts(&m, &b);
	status = run_groups(&b);
	loadavg(m.load[1], sizeof(m.load[1]));
	if (json)
		print_json(&b, &m);
	else
		print_table(&b, &m);
	rm_tree(b.dir);
	free(b.dir);
	free(b.figs);
	return status;
}
