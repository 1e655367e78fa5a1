/*
 * The figures of `atrest bench` that run programs: `atrest encrypt` and
 * `decrypt` (this binary, keyed through the child's environment) against
 * age with an X25519 recipient, to a file and to /dev/null.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_int.h"

/* A run over this many seconds is taken as hung, killed and failed. */
#define SPAWN_TIMEOUT 300

extern char **environ;

/* The environment without ATREST_* variables, then extra; free the array. */
static char **child_env(char *const extra[])
{
	size_t n = 0, k = 0, x = 0;
	char **env;

	while (environ[n])
		n++;
	while (extra && extra[x])
		x++;
	env = calloc(n + x + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "ATREST_", 7) != 0)
			env[k++] = environ[i];
	for (size_t i = 0; i < x; i++)
		env[k++] = extra[i];
	return env;
}

static void child_exec(char *const argv[], const char *out_path, char **env)
{
	int in = open("/dev/null", O_RDONLY), err = open("/dev/null", O_WRONLY);
	int out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : -1;

	if (in < 0 || err < 0 || (out_path && out < 0))
		_exit(127);
	dup2(in, 0);
	if (out >= 0)
		dup2(out, 1);
	dup2(err, 2);
	closefrom(3);
	execve(argv[0], argv, env);
	if (!strchr(argv[0], '/'))
		execvpe(argv[0], argv, env);
	_exit(127);
}

/* Wait for pid for at most SPAWN_TIMEOUT s, then kill it; its status. */
static int wait_child(pid_t pid, int *status)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd p = {.fd = fd, .events = POLLIN};

	if (fd >= 0 && poll(&p, 1, SPAWN_TIMEOUT * 1000) == 0) {
		fprintf(stderr, "atrest: bench: a child ran over %d s; killed\n",
			SPAWN_TIMEOUT);
		kill(pid, SIGKILL);
	}
	if (fd >= 0)
		close(fd);
	while (waitpid(pid, status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

int bench_spawn(double *secs, char *const argv[], const char *out_path, char *const env[])
{
	char **e = child_env(env);
	double t0 = bench_now();
	int status;
	pid_t pid;

	if (!e)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		child_exec(argv, out_path, e);
	free(e);
	if (pid < 0 || wait_child(pid, &status) != 0)
		return -1;
	*secs = bench_now() - t0;
	return WIFEXITED(status) && WEXITSTATUS(status) != 127 ? WEXITSTATUS(status) : -1;
}

/* What running the two tools needs; set up once per run. */
struct crypt_env {
	int ready, atrest, age;
	char key[80]; /* "ATREST_KEY=<hex>" for the child only */
	char age_key[4096], recipient[128];
};

static struct crypt_env ce;

static int have_encrypt(struct bench *b)
{
	char *argv[] = {b->self, "encrypt", "--help", NULL};
	double t;

	return bench_spawn(&t, argv, "/dev/null", NULL) == 0;
}

/* age-keygen a key file and read back its recipient; 1 when age works. */
static int age_setup(struct bench *b)
{
	char pub[4096];
	char *gen[] = {"age-keygen", "-o", ce.age_key, NULL};
	char *rec[] = {"age-keygen", "-y", ce.age_key, NULL};
	FILE *f;
	double t;
	int ok;

	snprintf(ce.age_key, sizeof(ce.age_key), "%s/age.key", b->dir);
	snprintf(pub, sizeof(pub), "%s/age.pub", b->dir);
	if (bench_spawn(&t, gen, "/dev/null", NULL) != 0 ||
		bench_spawn(&t, rec, pub, NULL) != 0 || !(f = fopen(pub, "r")))
		return 0;
	ok = fgets(ce.recipient, sizeof(ce.recipient), f) != NULL;
	fclose(f);
	ce.recipient[strcspn(ce.recipient, "\r\n")] = '\0';
	return ok && !strncmp(ce.recipient, "age1", 4);
}

static void crypt_setup(struct bench *b)
{
	uint8_t key[32];
	char hex[65];

	if (ce.ready)
		return;
	ce.ready = 1;
	atrest_random(key, sizeof(key));
	cli_hex(hex, key, sizeof(key));
	snprintf(ce.key, sizeof(ce.key), "ATREST_KEY=%s", hex);
	explicit_bzero(key, sizeof(key));
	explicit_bzero(hex, sizeof(hex));
	ce.atrest = have_encrypt(b);
	ce.age = age_setup(b);
}

void bench_crypt_env(
	struct bench *b, const char **key, const char **age_key, const char **recipient)
{
	crypt_setup(b);
	*key = ce.atrest ? ce.key : NULL;
	*age_key = ce.age ? ce.age_key : NULL;
	*recipient = ce.age ? ce.recipient : NULL;
}

/* Write len bytes of incompressible data to path; 0 or the exit status. */
int bench_make_input(const char *path, size_t len)
{
	size_t chunk = len < 64 * MIB ? len : 64 * MIB, n;
	uint8_t *buf = malloc(chunk ? chunk : 1);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), e = 0;

	if (fd < 0 || !buf) {
		e = fd < 0 ? errno : ENOMEM;
		goto out;
	}
	bench_fill_buf(buf, chunk);
	for (size_t off = 0; !e && off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		buf[off / chunk % chunk] ^= 0x3c;
		e = cli_write_all(fd, buf, n);
	}
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return e ? cli_err_os(e, "bench: writing %s", path) : 0;
}

struct crypt_paths {
	char in[4096], atr[4096], agef[4096], out[4096];
};

static const char *const job_names[] = {"encrypt, to a file", "encrypt, to /dev/null",
	"decrypt, to a file", "decrypt, to /dev/null"};

/*
 * The command of job j: 0-3 atrest, 4-7 age; within each, encrypt to a
 * file, encrypt to /dev/null, decrypt to a file, decrypt to /dev/null.
 * Returns the file the output goes to, or NULL for /dev/null.
 */
static const char *job_argv(char **argv, int j, struct bench *b, struct crypt_paths *p)
{
	int age = j >= 4, dec = (j & 2) != 0, to_file = (j & 1) == 0, k = 0;
	char *src = dec ? (age ? p->agef : p->atr) : p->in;
	char *dst = dec ? p->out : (age ? p->agef : p->atr);

	argv[k++] = age ? "age" : b->self;
	if (!age) {
		argv[k++] = dec ? "decrypt" : "encrypt";
	} else if (dec) {
		argv[k++] = "-d";
		argv[k++] = "-i";
		argv[k++] = ce.age_key;
	} else {
		argv[k++] = "-r";
		argv[k++] = ce.recipient;
	}
	if (to_file) {
		argv[k++] = "-o";
		argv[k++] = dst;
	}
	argv[k++] = src;
	argv[k] = NULL;
	return to_file ? dst : NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median wall time of runs runs of job j (NAN when it failed). */
static double job_time(struct bench *b, struct crypt_paths *p, int j, int runs)
{
	char *env[] = {ce.key, NULL}, *argv[12];
	const char *dst = job_argv(argv, j, b, p);
	double s[5];

	for (int r = 0; r < runs; r++) {
		if (dst)
			unlink(dst);
		bench_settle(b->dir);
		if (bench_spawn(&s[r], argv, dst ? NULL : "/dev/null", env) != 0)
			return NAN;
	}
	qsort(s, (size_t)runs, sizeof(s[0]), cmp_double);
	return s[runs / 2];
}

/* Median of runs wall times of each job (NAN: not run or failed). */
static void crypt_times(
	double t[8], struct bench *b, struct crypt_paths *p, int runs, int files_only)
{
	for (int j = 0; j < 8; j++) {
		t[j] = NAN;
		if (!(j < 4 ? ce.atrest : ce.age) || (files_only && (j & 1)))
			continue;
		t[j] = job_time(b, p, j, runs < 5 ? runs : 5);
	}
	unlink(p->out);
}

static void crypt_paths_for(struct crypt_paths *p, const struct bench *b)
{
	snprintf(p->in, sizeof(p->in), "%s/crypt.in", b->dir);
	snprintf(p->atr, sizeof(p->atr), "%s/crypt.atrest", b->dir);
	snprintf(p->agef, sizeof(p->agef), "%s/crypt.age", b->dir);
	snprintf(p->out, sizeof(p->out), "%s/crypt.out", b->dir);
}

static void crypt_cleanup(const struct crypt_paths *p)
{
	unlink(p->in);
	unlink(p->atr);
	unlink(p->agef);
	unlink(p->out);
}

static void crypt_figs(struct bench *b, const double t[8], size_t len)
{
	char name[80];
	struct bench_fig *f;
	double v, r;

	for (int k = 0; k < 4; k++) {
		snprintf(name, sizeof(name), "%s %zu MiB", job_names[k], len / MIB);
		if (isnan(t[k])) {
			bench_na(b, name, "GB/s",
				ce.atrest ? "the command failed"
					  : "no 'atrest encrypt' in this build");
			continue;
		}
		v = (double)len / t[k] / 1e9;
		r = (double)len / t[4 + k] / 1e9;
		f = bench_add(b, name, v, "GB/s",
			k & 1 ? "age -r (X25519), same file"
			      : "age -r (X25519), same file; atrest fsyncs its output, age not",
			r, v / r);
		bench_target(f, "ratio", ">=", 2);
		if (f && isnan(t[4 + k]))
			snprintf(f->note, sizeof(f->note), "age not installed or failed");
	}
}

int bench_crypt(struct bench *b)
{
	size_t len = (b->quick ? 256 : 1024) * MIB;
	struct crypt_paths p;
	double t[8];
	int status;

	bench_say("encrypt and decrypt %zu MiB against age", len / MIB);
	crypt_setup(b);
	crypt_paths_for(&p, b);
	if (ce.atrest || ce.age) {
		if ((status = bench_make_input(p.in, len)))
			return status;
		crypt_times(t, b, &p, b->quick ? 1 : 3, 0);
	} else {
		for (int j = 0; j < 8; j++)
			t[j] = NAN;
	}
	crypt_figs(b, t, len);
	crypt_cleanup(&p);
	return 0;
}

int bench_crypt_size(double mbps[4], struct bench *b, size_t len, int runs)
{
	struct crypt_paths p;
	double t[8];
	int status;

	crypt_setup(b);
	crypt_paths_for(&p, b);
	if ((status = bench_make_input(p.in, len)))
		return status;
	crypt_times(t, b, &p, runs, 1);
	crypt_cleanup(&p);
	mbps[0] = (double)len / t[0] / 1e6;
	mbps[1] = (double)len / t[2] / 1e6;
	mbps[2] = (double)len / t[4] / 1e6;
	mbps[3] = (double)len / t[6] / 1e6;
	return 0;
}
