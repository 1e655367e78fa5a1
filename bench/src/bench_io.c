/*
 * The figures of `atrest bench` bound by the file system: put against
 * plaintext writes of the same durability, get against pread, rewrap of
 * large stores against listing them, and the peak memory of streaming.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_int.h"

void bench_settle(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
}

int bench_plain_write(const char *dir, const char *name, const void *buf, size_t len)
{
	char tmp[4096], dest[4096];
	int fd, e;

	snprintf(tmp, sizeof(tmp), "%s/tmp/%s.tmp", dir, name);
	snprintf(dest, sizeof(dest), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	e = cli_write_all(fd, buf, len);
	if (!e && fsync(fd) != 0)
		e = errno;
	if (close(fd) != 0 && !e)
		e = errno;
	if (!e && rename(tmp, dest) != 0)
		e = errno;
	if (e) {
		unlink(tmp);
		return e;
	}
	return cli_fsync_parent(dest);
}

/* <run dir>/plain and its tmp/, for plaintext writes. */
static int plain_dir(char *out, size_t cap, const struct bench *b)
{
	char tmp[4096];

	snprintf(out, cap, "%s/plain", b->dir);
	snprintf(tmp, sizeof(tmp), "%s/tmp", out);
	if ((mkdir(out, 0700) != 0 && errno != EEXIST) ||
		(mkdir(tmp, 0700) != 0 && errno != EEXIST))
		return cli_err_os(errno, "bench: mkdir %s", tmp);
	return 0;
}

static int one_put(double *t, atrest_store *st, const uint8_t *buf, size_t len)
{
	double t0 = bench_now();
	int rc = atrest_put(st, "obj", buf, len, NULL);

	*t = bench_now() - t0;
	return rc < 0 ? cli_err(rc, "bench: put") : 0;
}

static int one_plain(double *t, const char *pdir, const uint8_t *buf, size_t len)
{
	double t0 = bench_now();
	int e = bench_plain_write(pdir, "obj", buf, len);

	*t = bench_now() - t0;
	return e ? cli_err_os(e, "bench: plaintext write in %s", pdir) : 0;
}

/*
 * Seconds of n puts and n plaintext writes of len bytes, taking turns and
 * alternating which goes first; with settle, the file system is flushed
 * (untimed) before each run.
 */
static int put_runs(double *t_put, double *t_plain, size_t n, atrest_store *st,
	const char *pdir, const uint8_t *buf, size_t len, int settle)
{
	int status;

	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < 2; k++) {
			if (settle)
				bench_settle(pdir);
			status = (k == (int)(i & 1))
				? one_put(&t_put[i], st, buf, len)
				: one_plain(&t_plain[i], pdir, buf, len);
			if (status)
				return status;
		}
	}
	return 0;
}

static void put_latency_figs(struct bench *b, const char *label, double *tp, double *tq,
	size_t n, double target)
{
	double p50 = bench_pct(tp, n, 0.5) * 1e3, q50 = bench_pct(tq, n, 0.5) * 1e3;
	double p99 = bench_pct(tp, n, 0.99) * 1e3, q99 = bench_pct(tq, n, 0.99) * 1e3;
	const char *ref = "plaintext write, fsync, rename, fsync dir";
	char name[64];

	snprintf(name, sizeof(name), "put %s median", label);
	bench_target(bench_add(b, name, p50, "ms", ref, q50, p50 / q50), "ratio",
		"<=", target);
	snprintf(name, sizeof(name), "put %s p99", label);
	bench_add(b, name, p99, "ms", ref, q99, p99 / q99);
}

/* Latency of puts of len bytes against plaintext writes. */
static int put_latency(struct bench *b, atrest_store *st, const char *pdir, size_t len,
	const char *label, double target)
{
	size_t n = b->quick ? 50 : 300;
	double *tp = calloc(n, sizeof(double)), *tq = calloc(n, sizeof(double));
	uint8_t *buf = malloc(len);
	int status;

	if (!tp || !tq || !buf) {
		status = cli_err_os(ENOMEM, "bench");
		goto out;
	}
	bench_fill_buf(buf, len);
	status = put_runs(tp, tq, n, st, pdir, buf, len, 0);
	if (status)
		goto out;
	put_latency_figs(b, label, tp, tq, n, target);
out:
	free(tp);
	free(tq);
	free(buf);
	return status;
}

/* Throughput of one large put against one large plaintext write. */
static int put_large(struct bench *b, atrest_store *st, const char *pdir)
{
	size_t len = (b->quick ? 256 : 1024) * MIB;
	double tp[5], tq[5], gp, gq;
	size_t runs = b->quick ? 3 : 5;
	uint8_t *buf = malloc(len);
	char name[64];
	int status;

	if (!buf)
		return cli_err_os(ENOMEM, "bench");
	bench_fill_buf(buf, len);
	status = put_runs(tp, tq, runs, st, pdir, buf, len, 1);
	free(buf);
	if (status)
		return status;
	gp = (double)len / bench_pct(tp, runs, 0.5) / 1e9;
	gq = (double)len / bench_pct(tq, runs, 0.5) / 1e9;
	snprintf(name, sizeof(name), "put %zu MiB throughput", len / MIB);
	bench_target(bench_add(b, name, gp, "GB/s", "plaintext write, same durability",
			     gq, gp / gq),
		"ratio", ">=", 0.90);
	return 0;
}

/*
 * What the audit trail costs a 4 KiB put: puts to a store with it on and
 * to one with it off, taking turns, medians compared.
 */
static int put_audit(struct bench *b)
{
	size_t n = b->quick ? 60 : 400, len = 4 * KIB;
	double *ton = calloc(n, sizeof(double)), *toff = calloc(n, sizeof(double));
	uint8_t *buf = malloc(len);
	atrest_store *on = NULL, *off = NULL;
	int status = 0;

	if (!ton || !toff || !buf)
		status = cli_err_os(ENOMEM, "bench");
	if (!status && !(status = bench_store(b, &on, "audit-on", NULL)))
		status = bench_store_audit(b, &off, "audit-off", NULL, NULL, 0, "off");
	if (!status)
		bench_fill_buf(buf, len);
	for (size_t i = 0; !status && i < n; i++)
		for (int k = 0; !status && k < 2; k++)
			status = (k == (int)(i & 1)) ? one_put(&ton[i], on, buf, len)
						     : one_put(&toff[i], off, buf, len);
	if (!status) {
		double a = bench_pct(ton, n, 0.5) * 1e3,
		       o = bench_pct(toff, n, 0.5) * 1e3;
		bench_target(bench_add(b, "put 4 KiB, audit on, median", a, "ms",
				     "the same put, audit off", o, a / o),
			"ratio", "<=", 1.05);
	}
	atrest_store_close(on);
	atrest_store_close(off);
	free(ton);
	free(toff);
	free(buf);
	return status;
}

int bench_put(struct bench *b)
{
	char pdir[4096];
	atrest_store *st;
	int status;

	bench_say("put against plaintext writes");
	if ((status = plain_dir(pdir, sizeof(pdir), b)) ||
		(status = bench_store(b, &st, "put", NULL)))
		return status;
	status = put_latency(b, st, pdir, MIB, "1 MiB", 1.03);
	if (!status)
		status = put_latency(b, st, pdir, 4 * KIB, "4 KiB", 1.02);
	if (!status)
		status = put_large(b, st, pdir);
	atrest_store_close(st);
	if (!status)
		status = put_audit(b);
	return status;
}

/* Read a whole file as a plaintext get would: open, fstat, pread, close. */
static int plain_read(const char *path)
{
	struct stat sb;
	void *buf;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e = 0;

	if (fd < 0)
		return errno;
	if (fstat(fd, &sb) != 0 || !(buf = malloc((size_t)sb.st_size + 1))) {
		close(fd);
		return errno ? errno : ENOMEM;
	}
	n = pread(fd, buf, (size_t)sb.st_size, 0);
	if (n != sb.st_size)
		e = n < 0 ? errno : EIO;
	free(buf);
	close(fd);
	return e;
}

static int get_runs(double *tg, double *tr, size_t n, atrest_store *st, const char *name,
	const char *path)
{
	double t0;
	void *out;
	size_t len;
	int rc, e;

	for (size_t i = 0; i < n; i++) {
		t0 = bench_now();
		rc = atrest_get(&out, &len, st, name);
		if (rc == 0)
			atrest_free(out);
		tg[i] = (bench_now() - t0) * 1e6;
		if (rc < 0)
			return cli_err(rc, "bench: get");
		t0 = bench_now();
		e = plain_read(path);
		tr[i] = (bench_now() - t0) * 1e6;
		if (e)
			return cli_err_os(e, "bench: read %s", path);
	}
	return 0;
}

static void get_figs(struct bench *b, double *tg, double *tr, size_t n)
{
	const char *ref = "open, pread, close of the same 1 MiB file";
	double g50 = bench_pct(tg, n, 0.5), r50 = bench_pct(tr, n, 0.5);
	double g99 = bench_pct(tg, n, 0.99), r99 = bench_pct(tr, n, 0.99);

	bench_add(b, "get 1 MiB (page cache) p50", g50, "us", ref, r50, g50 / r50);
	bench_target(bench_add(b, "get 1 MiB (page cache) p99", g99, "us", ref, r99,
			     g99 / r99),
		"value", "<=", 500);
}

int bench_get(struct bench *b)
{
	size_t n = b->quick ? 1000 : 3000;
	double *tg = calloc(n, sizeof(double)), *tr = calloc(n, sizeof(double));
	uint8_t *buf = malloc(MIB);
	char path[4096];
	atrest_store *st = NULL;
	int status, rc;

	bench_say("get from the page cache");
	if (!tg || !tr || !buf) {
		status = cli_err_os(ENOMEM, "bench");
		goto out;
	}
	bench_fill_buf(buf, MIB);
	if ((status = bench_store(b, &st, "get", NULL)))
		goto out;
	if ((rc = atrest_put(st, "g1m", buf, MIB, NULL)) < 0) {
		status = cli_err(rc, "bench: put");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/get/g1m", b->dir);
	/* One round to warm the caches, then the measured ones. */
	if (!(status = get_runs(tg, tr, 1, st, "g1m", path)) &&
		!(status = get_runs(tg, tr, n, st, "g1m", path)))
		get_figs(b, tg, tr, n);
out:
	atrest_store_close(st);
	free(tg);
	free(tr);
	free(buf);
	return status;
}

static int count_one(const atrest_list_entry *e, void *payload)
{
	(void)e;
	(*(uint64_t *)payload)++;
	return 0;
}

/* Median ms of rewrapping to a new random key, 5 times over. */
static int rewrap_ms(double *out, atrest_store *st)
{
	double t[5], t0;
	atrest_keyprov *kp;
	uint8_t key[32];
	int rc = 0;

	for (int i = 0; rc == 0 && i < 5; i++) {
		rc = atrest_random(key, sizeof(key));
		if (rc == 0)
			rc = atrest_keyprov_raw(&kp, key, sizeof(key));
		explicit_bzero(key, sizeof(key));
		t0 = bench_now();
		if (rc == 0)
			rc = atrest_rewrap(st, kp);
		t[i] = (bench_now() - t0) * 1e3;
	}
	*out = bench_pct(t, 5, 0.5);
	return rc < 0 ? cli_err(rc, "bench: rewrap") : 0;
}

/*
 * count tiny objects named f/NN/NNNNNNNN, put through a handle that skips
 * fsync (ATREST_STORE_NO_SYNC) to build large stores quickly; the caller
 * syncs the file system once afterwards.
 */
static int fill(struct bench *b, const char *sub, uint64_t count, uint8_t key[32])
{
	static const char body[] = "atrest bench fill";
	char name[64];
	atrest_store *st;
	int status, rc = 0;

	if ((status = bench_store_ex(b, &st, sub, NULL, key, ATREST_STORE_NO_SYNC)))
		return status;
	for (uint64_t i = 0; rc == 0 && i < count; i++) {
		snprintf(name, sizeof(name), "f/%02u/%08llu", (unsigned int)(i % 100),
			(unsigned long long)i);
		rc = atrest_put(st, name, body, sizeof(body) - 1, NULL);
	}
	atrest_store_close(st);
	return rc < 0 ? cli_err(rc, "bench: filling %s", sub) : 0;
}

static int no_key(const atrest_key_info *k, void *payload)
{
	(void)k, (void)payload;
	return 0;
}

/*
 * Per-key usage (atrest keys) and the metrics of a large store, from the
 * store's usage counts: the median of 5 runs each, against listing it.
 */
static int usage_figs(struct bench *b, atrest_store *st, uint64_t count, double t_list)
{
	double tk[5], tm[5];
	char name[64], *text;
	size_t len;
	int rc = 0;

	for (int i = 0; rc == 0 && i < 5; i++) {
		double t0 = bench_now();
		rc = atrest_keys_list(st, ATREST_KEYS_USAGE, no_key, NULL);
		tk[i] = (bench_now() - t0) * 1e3;
		t0 = bench_now();
		if (rc == 0 && (rc = atrest_metrics_write(&text, &len, st)) == 0)
			atrest_free(text);
		tm[i] = (bench_now() - t0) * 1e3;
	}
	if (rc < 0)
		return cli_err(rc, "bench: usage counts");
	snprintf(name, sizeof(name), "keys with usage, %llu objects",
		(unsigned long long)count);
	bench_target(bench_add(b, name, bench_pct(tk, 5, 0.5), "ms", "listing the store",
			     t_list, bench_pct(tk, 5, 0.5) / t_list),
		"value", "<=", 50);
	snprintf(name, sizeof(name), "metrics, %llu objects", (unsigned long long)count);
	bench_target(bench_add(b, name, bench_pct(tm, 5, 0.5), "ms", "listing the store",
			     t_list, bench_pct(tm, 5, 0.5) / t_list),
		"value", "<=", 50);
	return 0;
}

static int rewrap_one(struct bench *b, uint64_t count)
{
	uint8_t key[32];
	char sub[32], name[64];
	uint64_t listed = 0;
	double t_list, t_rewrap;
	atrest_store *st;
	int status, rc, fd;

	snprintf(sub, sizeof(sub), "rewrap%llu", (unsigned long long)count);
	bench_say("filling a store with %llu objects", (unsigned long long)count);
	if ((status = fill(b, sub, count, key)))
		return status;
	if ((fd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		syncfs(fd);
		close(fd);
	}
	status = bench_store_ex(b, &st, sub, key, NULL, 0);
	explicit_bzero(key, sizeof(key));
	if (status)
		return status;
	t_list = bench_now();
	rc = atrest_list(st, "", count_one, &listed);
	t_list = (bench_now() - t_list) * 1e3;
	if (rc < 0 || listed != count) {
		atrest_store_close(st);
		return cli_err(rc < 0 ? rc : ATREST_ERROR, "bench: filling %s", sub);
	}
	status = rewrap_ms(&t_rewrap, st);
	if (!status)
		status = usage_figs(b, st, count, t_list);
	atrest_store_close(st);
	snprintf(name, sizeof(name), "rewrap, %llu objects", (unsigned long long)count);
	if (!status)
		bench_target(bench_add(b, name, t_rewrap, "ms", "listing the store",
				     t_list, t_rewrap / t_list),
			"value", "<=", 10);
	return status;
}

int bench_rewrap(struct bench *b)
{
	int status = rewrap_one(b, 10000);

	if (!status && !b->quick)
		status = rewrap_one(b, 100000);
	return status;
}

/* In the child: stream len bytes into an object and back, 1 MiB at a time. */
static int stream_child(struct bench *b, uint64_t len)
{
	atrest_writer *w;
	atrest_reader *r;
	atrest_store *st;
	uint8_t *buf = malloc(MIB);
	uint64_t done = 0;
	size_t got;
	int rc;

	if (!buf || bench_store(b, &st, "rss", NULL))
		return 1;
	bench_fill_buf(buf, MIB);
	rc = atrest_writer_open(&w, st, "big", NULL);
	for (; rc == 0 && done < len; done += MIB)
		rc = atrest_writer_write(w, buf, MIB);
	if (rc == 0)
		rc = atrest_writer_commit(w);
	else if (w)
		atrest_writer_abort(w);
	if (rc == 0)
		rc = atrest_reader_open(&r, st, "big");
	for (done = 0, got = 1; rc == 0 && got > 0; done += got)
		rc = atrest_reader_read(r, buf, MIB, &got);
	if (rc == 0)
		atrest_reader_close(r);
	atrest_store_close(st);
	if (rc < 0)
		return cli_err(rc, "bench: streaming");
	return done == len ? 0 : 1;
}

/* Peak RSS (KiB) of a child streaming len bytes; *start its RSS at birth. */
static int stream_peak(double *peak, double *start, struct bench *b, uint64_t len)
{
	struct rusage ru;
	long base = 0;
	int fds[2], status;
	pid_t pid;

	if (pipe(fds) != 0)
		return cli_err_os(errno, "bench: pipe");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		getrusage(RUSAGE_SELF, &ru);
		if (write(fds[1], &ru.ru_maxrss, sizeof(ru.ru_maxrss)) < 0)
			_exit(1);
		_exit(stream_child(b, len));
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], &base, sizeof(base)) != sizeof(base))
		base = -1;
	close(fds[0]);
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid)
		return cli_err_os(errno, "bench: fork");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cli_err_msg(CLI_FAIL, "bench: the streaming child failed");
	*peak = (double)ru.ru_maxrss;
	*start = (double)base;
	return 0;
}

int bench_rss(struct bench *b)
{
	uint64_t len = (uint64_t)(b->quick ? 512 : 4096) * MIB;
	double peak = NAN, start = NAN, t0 = bench_now();
	struct bench_fig *f;
	char name[64];
	int status;

	bench_say("streaming %llu MiB through put and get",
		(unsigned long long)(len / MIB));
	if ((status = stream_peak(&peak, &start, b, len)))
		return status;
	snprintf(name, sizeof(name), "stream %llu MiB, peak RSS",
		(unsigned long long)(len / MIB));
	f = bench_add(b, name, peak / 1024, "MiB", "RSS of the process at fork",
		start / 1024, NAN);
	bench_target(f, "value", "<=", 64);
	if (f)
		snprintf(f->note, sizeof(f->note),
			"put and get of %llu MiB took "
			"%.3g s",
			(unsigned long long)(len / MIB), bench_now() - t0);
	return 0;
}

/* Runs of one sweep size: enough to time about budget bytes, 3 at least. */
static size_t sweep_runs(size_t size, size_t budget, size_t most)
{
	size_t n = budget / size;

	return n < 3 ? 3 : n > most ? most : n;
}

static int sweep_size(struct bench *b, struct bench_sweep *s, atrest_store *st,
	const char *pdir, uint8_t *buf)
{
	size_t n = sweep_runs(s->size, b->quick ? 16 * MIB : 64 * MIB, 100);
	size_t g = sweep_runs(s->size, b->quick ? 64 * MIB : 256 * MIB, 1000);
	double *t1 = calloc(g, sizeof(double)), *t2 = calloc(g, sizeof(double));
	double mb = (double)s->size / 1e6, crypt[4];
	char path[4200];
	int status;

	if (!t1 || !t2) {
		status = cli_err_os(ENOMEM, "bench");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/obj", pdir);
	if ((status = put_runs(t1, t2, n, st, pdir, buf, s->size, s->size >= 64 * MIB)))
		goto out;
	s->put = mb / bench_pct(t1, n, 0.5);
	s->plain_write = mb / bench_pct(t2, n, 0.5);
	if ((status = get_runs(t1, t2, g, st, "obj", path)))
		goto out;
	/* get_runs gives microseconds. */
	s->get = mb / bench_pct(t1, g, 0.5) * 1e6;
	s->pread = mb / bench_pct(t2, g, 0.5) * 1e6;
	status = bench_crypt_size(crypt, b, s->size, b->quick ? 1 : 3);
	s->enc = crypt[0];
	s->dec = crypt[1];
	s->age_enc = crypt[2];
	s->age_dec = crypt[3];
out:
	free(t1);
	free(t2);
	return status;
}

int bench_sweep(struct bench *b)
{
	size_t top = (b->quick ? 16 : 256) * MIB;
	char pdir[4096];
	atrest_store *st = NULL;
	uint8_t *buf = malloc(top);
	int status;

	if (!buf)
		return cli_err_os(ENOMEM, "bench");
	bench_fill_buf(buf, top);
	if ((status = plain_dir(pdir, sizeof(pdir), b)) ||
		(status = bench_store(b, &st, "sweep", NULL)))
		goto out;
	for (size_t sz = 4 * KIB; !status && sz <= top; sz *= 4) {
		struct bench_sweep *s = &b->sweep[b->nsweep++];

		bench_say("sweep: %zu bytes", sz);
		memset(s, 0, sizeof(*s));
		s->size = sz;
		status = sweep_size(b, s, st, pdir, buf);
	}
out:
	atrest_store_close(st);
	free(buf);
	return status;
}
