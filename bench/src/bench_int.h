/*
 * Shared by the files of `atrest bench`: the run, its figures (a value
 * beside a reference measured in the same run) and small timing helpers.
 */
#ifndef ATREST_CLI_BENCH_INT_H
#define ATREST_CLI_BENCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "bench_lib.h"
#include "cli.h"

#define MIB ((size_t)1 << 20)
#define KIB ((size_t)1 << 10)

/* One line of the report.  NAN marks a value, reference or ratio absent. */
struct bench_fig {
	char name[64];
	const char *unit;
	double value;
	char ref_name[64];
	double ref;
	double ratio;
	const char *on;  /* "ratio" or "value": what the target applies to */
	const char *cmp; /* ">=" or "<=" */
	double target;
	char note[200]; /* why not available, or what limits it */
};

/* One size of the sweep: MB/s of each way to write and read it. */
struct bench_sweep {
	size_t size;
	double put, plain_write, get, pread, enc, dec, age_enc, age_dec;
};

struct bench {
	int quick;
	const char *only; /* comma-separated groups, or NULL for the default */
	const char *s3;   /* --s3: the S3 location of the s3 figures */
	char *dir;        /* this run's temporary directory */
	char self[4096];  /* the atrest tool beside atrest-bench, for subprocesses */
	struct bench_fig *figs;
	size_t nfigs, cap;
	struct bench_sweep sweep[16];
	size_t nsweep;
};

/* Append a figure; ratio is computed by the caller (NAN: none).  NULL
 * when out of memory. */
struct bench_fig *bench_add(struct bench *b, const char *name, double value,
	const char *unit, const char *ref_name, double ref, double ratio);
/* Set the target of f: on "ratio" or "value", cmp ">=" or "<=". */
void bench_target(struct bench_fig *f, const char *on, const char *cmp, double target);
/* A figure that could not be measured, with the reason. */
void bench_na(struct bench *b, const char *name, const char *unit, const char *why);
/* A line on stderr saying what is being measured (terminals only). */
void bench_say(const char *fmt, ...) CLI_PRINTF(1, 2);

double bench_now(void);
/* The p-quantile (0..1) of n samples; sorts v. */
double bench_pct(double *v, size_t n, double p);
/* Fill buf with len bytes that do not compress (random, tiled). */
void bench_fill_buf(uint8_t *buf, size_t len);

/*
 * Open (creating) a store in <run dir>/<sub> with a fresh random key;
 * key_out (may be NULL) receives the key (wipe it).  0 or the exit status.
 */
int bench_store(
	struct bench *b, atrest_store **out, const char *sub, uint8_t key_out[32]);
/* The same with the key given (key_in, or a fresh one when NULL) and store
 * flags (ATREST_STORE_NO_SYNC...). */
int bench_store_ex(struct bench *b, atrest_store **out, const char *sub,
	const uint8_t *key_in, uint8_t key_out[32], unsigned int flags);
/* The same with the audit trail set ("off", a directory; NULL: default). */
int bench_store_audit(struct bench *b, atrest_store **out, const char *sub,
	const uint8_t *key_in, uint8_t key_out[32], unsigned int flags,
	const char *audit);
/* Write buf to path as plaintext with put's durability; 0 or errno. */
int bench_plain_write(const char *dir, const char *name, const void *buf, size_t len);
/*
 * Flush the file system holding dir, untimed, so that no timed run pays for
 * the write-back of the one before it.
 */
void bench_settle(const char *dir);

/* The groups of figures; each returns 0 or an exit status. */
int bench_object(struct bench *b);
int bench_records(struct bench *b);
int bench_passphrase(struct bench *b);
int bench_put(struct bench *b);
int bench_get(struct bench *b);
int bench_rewrap(struct bench *b);
int bench_rss(struct bench *b);
int bench_crypt(struct bench *b);
int bench_sweep(struct bench *b);
int bench_s3(struct bench *b);

/*
 * MB/s of atrest encrypt and decrypt, then age's, of a len-byte file, each
 * to a file, the fastest of runs (NAN: not available).
 */
int bench_crypt_size(double mbps[4], struct bench *b, size_t len, int runs);
/* Streams through pipes against age, and the CLI's cost per process. */
int bench_pipe(struct bench *b);
int bench_cli(struct bench *b);
/*
 * What the child processes of the crypt figures use: "ATREST_KEY=<hex>"
 * (NULL when this build has no 'atrest encrypt'), age's key file and its
 * recipient (NULL when age does not work).
 */
void bench_crypt_env(
	struct bench *b, const char **key, const char **age_key, const char **recipient);
/* Write len bytes of incompressible data to path; 0 or the exit status. */
int bench_make_input(const char *path, size_t len);

/*
 * Run argv (argv[0] a path) with stdout to out_path (NULL: inherited,
 * "/dev/null" allowed) and extra environment entries env (NULL-ended, may
 * be NULL); *secs is the wall time.  Returns the exit status, or -1 when it
 * could not start or was killed.
 */
int bench_spawn(
	double *secs, char *const argv[], const char *out_path, char *const env[]);

#endif
