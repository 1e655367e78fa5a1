/*
 * The figures of `atrest bench` about how the tool is used from a shell:
 * encrypt and decrypt streamed through pipes (cat | atrest encrypt | cat)
 * against age on the same pipes, and the wall time of one CLI process
 * (put and get of 4 KiB) against cp of the same file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_int.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median wall time of runs runs of argv (at most 31); NAN when one failed. */
static double median_run(char *const argv[], char *const env[], int runs)
{
	double s[31];

	if (runs > 31)
		runs = 31;
	for (int r = 0; r < runs; r++)
		if (bench_spawn(&s[r], argv, "/dev/null", env) != 0)
			return NAN;
	qsort(s, (size_t)runs, sizeof(s[0]), cmp_double);
	return s[runs / 2];
}

/* bash -o pipefail -c SCRIPT with $1..$3: a pipeline whose every stage
 * must succeed. */
static double pipeline(const char *script, const char *a1, const char *a2, const char *a3,
	char *const env[], int runs)
{
	char *argv[] = {"/bin/bash", "-o", "pipefail", "-c", (char *)script, "bench",
		(char *)a1, (char *)a2, (char *)a3, NULL};

	return median_run(argv, env, runs);
}

struct pipe_paths {
	char in[4096], atr[4096], agef[4096];
};

/* The encrypted inputs of the decrypt pipelines; 0 when both were made. */
static int pipe_inputs(struct bench *b, const struct pipe_paths *p, const char *key,
	const char *recipient)
{
	char *enc[] = {b->self, "encrypt", "-o", (char *)p->atr, (char *)p->in, NULL};
	char *age[] = {"age", "-r", (char *)recipient, "-o", (char *)p->agef,
		(char *)p->in, NULL};
	char *env[] = {(char *)key, NULL};
	double t;

	if (bench_spawn(&t, enc, "/dev/null", env) != 0)
		return -1;
	return recipient && bench_spawn(&t, age, "/dev/null", NULL) != 0 ? -1 : 0;
}

static void pipe_fig(struct bench *b, const char *name, double t, double t_age,
	size_t len, const char *why)
{
	struct bench_fig *f;
	double v = (double)len / t / 1e9, r = (double)len / t_age / 1e9;

	if (isnan(t)) {
		bench_na(b, name, "GB/s", why);
		return;
	}
	f = bench_add(b, name, v, "GB/s", "age, the same pipes", r, v / r);
	bench_target(f, "ratio", ">=", 2);
	if (f && isnan(t_age))
		snprintf(f->note, sizeof(f->note), "age not installed or failed");
}

int bench_pipe(struct bench *b)
{
	size_t len = (b->quick ? 64 : 512) * MIB;
	int runs = b->quick ? 1 : 3, status;
	const char *key, *age_key, *recipient;
	double t[4] = {NAN, NAN, NAN, NAN};
	char *env[2] = {NULL, NULL};
	struct pipe_paths p;

	bench_say("encrypt and decrypt %zu MiB through pipes against age", len / MIB);
	bench_crypt_env(b, &key, &age_key, &recipient);
	snprintf(p.in, sizeof(p.in), "%s/pipe.in", b->dir);
	snprintf(p.atr, sizeof(p.atr), "%s/pipe.atrest", b->dir);
	snprintf(p.agef, sizeof(p.agef), "%s/pipe.age", b->dir);
	env[0] = (char *)key;
	if (key && (status = bench_make_input(p.in, len)) != 0)
		return status;
	if (key && pipe_inputs(b, &p, key, recipient) == 0) {
		t[0] = pipeline("cat \"$1\" | \"$2\" encrypt | cat >/dev/null", p.in,
			b->self, NULL, env, runs);
		t[1] = pipeline("\"$2\" decrypt \"$1\" | cat >/dev/null", p.atr, b->self,
			NULL, env, runs);
	}
	if (key && recipient) {
		t[2] = pipeline("cat \"$1\" | age -r \"$2\" | cat >/dev/null", p.in,
			recipient, NULL, NULL, runs);
		t[3] = pipeline("age -d -i \"$2\" \"$1\" | cat >/dev/null", p.agef,
			age_key, NULL, NULL, runs);
	}
	pipe_fig(b, "encrypt through pipes", t[0], t[2], len,
		key ? "the command failed" : "no 'atrest encrypt' in this build");
	pipe_fig(b, "decrypt through pipes", t[1], t[3], len,
		key ? "the command failed" : "no 'atrest encrypt' in this build");
	unlink(p.in);
	unlink(p.atr);
	unlink(p.agef);
	return 0;
}

static void cli_fig(
	struct bench *b, const char *name, double t, double t_cp, const char *syncs)
{
	struct bench_fig *f;

	if (isnan(t)) {
		bench_na(b, name, "ms", "the command failed");
		return;
	}
	f = bench_add(b, name, t * 1e3, "ms", "cp of the same 4 KiB file", t_cp * 1e3,
		t / t_cp);
	if (f)
		snprintf(f->note, sizeof(f->note),
			"one process each, median; it syncs %s, cp syncs nothing", syncs);
}

int bench_cli(struct bench *b)
{
	const char *key, *age_key, *recipient;
	char in[4096], out[4096], store[4096], cp_out[4096];
	int runs = b->quick ? 9 : 31, status;
	char *env[2] = {NULL, NULL};
	double t_put, t_get, t_cp;

	bench_say("one atrest process: put and get of 4 KiB against cp");
	bench_crypt_env(b, &key, &age_key, &recipient);
	snprintf(in, sizeof(in), "%s/cli.in", b->dir);
	snprintf(out, sizeof(out), "%s/cli.out", b->dir);
	snprintf(cp_out, sizeof(cp_out), "%s/cli.cp", b->dir);
	snprintf(store, sizeof(store), "--store=%s/cli-store", b->dir);
	if ((status = bench_make_input(in, 4 * KIB)) != 0)
		return status;
	env[0] = (char *)key;
	char *put[] = {b->self, store, "put", "x", in, NULL};
	char *get[] = {b->self, store, "get", "x", "-o", out, NULL};
	char *cp[] = {"cp", in, cp_out, NULL};
	double warm;

	/* The first put creates the store: not timed. */
	t_put = t_get = NAN;
	if (key && bench_spawn(&warm, put, "/dev/null", env) == 0) {
		t_put = median_run(put, env, runs);
		t_get = median_run(get, env, runs);
	}
	t_cp = median_run(cp, NULL, runs);
	cli_fig(b, "CLI put, 4 KiB", t_put, t_cp, "the object and the audit trail");
	cli_fig(b, "CLI get -o, 4 KiB", t_get, t_cp, "its output file");
	unlink(in);
	unlink(out);
	unlink(cp_out);
	return 0;
}
