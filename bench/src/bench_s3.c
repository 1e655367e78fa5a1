/*
 * The S3 figures of `atrest bench --only s3 --s3 s3://BUCKET/PREFIX`: puts
 * and gets of 4 KiB, 1 MiB and 1 GiB through a store on that location
 * against the same bytes sent as plain signed requests by the same S3
 * client (the backend alone, no encryption), alternating in one process.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/sys/backend.h"
#include "bench_int.h"

#define STREAM (1u << 20) /* bytes per write or read of a large object */

struct s3b {
	struct bench *b;
	atrest_store *st;
	atrest_backend *raw; /* the plain signed requests */
	uint8_t *buf;        /* STREAM bytes that do not compress */
	uint8_t *out;
};

static int lib_err(int rc, const char *what)
{
	return cli_err(rc, "bench s3: %s", what);
}

/* A plain signed PUT of len bytes (the buffer repeated). */
static int raw_put(struct s3b *s, const char *key, size_t len)
{
	atrest_backend_writer *w;
	int rc = s->raw->open_write(s->raw, &w, key, 0, NULL);

	for (size_t off = 0; rc == 0 && off < len; off += STREAM)
		rc = w->write(w, s->buf, len - off < STREAM ? len - off : STREAM);
	if (rc < 0) {
		w->abort(w);
		return lib_err(rc, "plain put");
	}
	rc = w->commit(w);
	return rc < 0 ? lib_err(rc, "plain put") : 0;
}

static int raw_get(struct s3b *s, const char *key)
{
	atrest_backend_reader *r;
	size_t got = 1;
	int rc = s->raw->open_read(s->raw, &r, key);

	for (uint64_t off = 0; rc == 0 && got > 0; off += got)
		rc = r->pread(r, s->out, STREAM, off, &got);
	if (rc == 0)
		r->close(r);
	return rc < 0 ? lib_err(rc, "plain get") : 0;
}

static int lib_put(struct s3b *s, const char *name, size_t len)
{
	atrest_writer *w;
	int rc = atrest_writer_open(&w, s->st, name, NULL);

	for (size_t off = 0; rc == 0 && off < len; off += STREAM)
		rc = atrest_writer_write(
			w, s->buf, len - off < STREAM ? len - off : STREAM);
	if (rc < 0) {
		atrest_writer_abort(w);
		return lib_err(rc, "put");
	}
	rc = atrest_writer_commit(w);
	return rc < 0 ? lib_err(rc, "put") : 0;
}

static int lib_get(struct s3b *s, const char *name)
{
	atrest_reader *r;
	size_t got = 1;
	int rc = atrest_reader_open(&r, s->st, name);

	while (rc == 0 && got > 0)
		rc = atrest_reader_read(r, s->out, STREAM, &got);
	if (rc == 0)
		atrest_reader_close(r);
	return rc < 0 ? lib_err(rc, "get") : 0;
}

/* One size: runs of each way, alternating; medians (and MB/s when large). */
static int measure(struct s3b *s, size_t len, int runs, const char *label)
{
	double *t[4], med[4];
	char name[96], ref[64];
	int rc = 0;

	for (int k = 0; k < 4; k++)
		t[k] = calloc((size_t)runs, sizeof(double));
	bench_say("s3: %s, %d runs of each", label, runs);
	for (int i = 0; rc == 0 && i < runs; i++) {
		double t0 = bench_now();
		rc = lib_put(s, "bench/obj", len);
		t[0][i] = bench_now() - t0;
		t0 = bench_now();
		rc = rc ? rc : raw_put(s, "plain/obj", len);
		t[1][i] = bench_now() - t0;
		t0 = bench_now();
		rc = rc ? rc : lib_get(s, "bench/obj");
		t[2][i] = bench_now() - t0;
		t0 = bench_now();
		rc = rc ? rc : raw_get(s, "plain/obj");
		t[3][i] = bench_now() - t0;
	}
	for (int k = 0; rc == 0 && k < 4; k++)
		med[k] = bench_pct(t[k], (size_t)runs, 0.5);
	for (int k = 0; rc == 0 && k < 4; k += 2) {
		struct bench_fig *f;
		int big = len >= 64 * MIB;
		double v = big ? len / med[k] / 1e6 : med[k] * 1e3;
		double r = big ? len / med[k + 1] / 1e6 : med[k + 1] * 1e3;
		snprintf(name, sizeof(name), "s3 %s %s%s", k ? "get" : "put", label,
			big ? "" : " (median)");
		snprintf(ref, sizeof(ref), "plain signed %s", k ? "GET" : "PUT");
		f = bench_add(s->b, name, v, big ? "MB/s" : "ms", ref, r, v / r);
		if (f && big)
			bench_target(f, "ratio", ">=", 0.9);
		else if (f)
			bench_target(f, "ratio", "<=", 1.10);
	}
	for (int k = 0; k < 4; k++)
		free(t[k]);
	return rc;
}

static int s3_open(struct s3b *s, const char *loc)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	uint8_t key[32];
	char raw[4096];
	int rc;

	snprintf(raw, sizeof(raw), "%s", loc);
	rc = atrest_random(key, sizeof(key));
	if (rc == 0)
		rc = atrest_keyprov_raw(&o.key, key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	o.path = loc;
	o.create = 1;
	o.state_dir = "";
	if (rc == 0)
		rc = atrest_store_open(&s->st, &o);
	if (rc == 0)
		rc = atrest_backend_open(&s->raw, raw);
	if (rc == 0)
		rc = s->raw->prepare(s->raw, 1);
	return rc < 0 ? lib_err(rc, loc) : 0;
}

int bench_s3(struct bench *b)
{
	struct s3b s = {b, NULL, NULL, malloc(STREAM), malloc(STREAM)};
	int rc;

	if (!b->s3) {
		bench_na(b, "s3", "", "give the store with --s3 s3://BUCKET/PREFIX");
		return 0;
	}
	if (!s.buf || !s.out)
		return cli_err_os(12, "bench s3");
	bench_fill_buf(s.buf, STREAM);
	rc = s3_open(&s, b->s3);
	if (rc == 0)
		rc = measure(&s, 4 * KIB, b->quick ? 30 : 200, "4 KiB");
	if (rc == 0)
		rc = measure(&s, MIB, b->quick ? 10 : 50, "1 MiB");
	if (rc == 0)
		rc = measure(&s, b->quick ? 256 * MIB : 1024 * MIB, 3,
			b->quick ? "256 MiB" : "1 GiB");
	if (s.st) {
		atrest_delete(s.st, "bench/obj");
		atrest_store_close(s.st);
	}
	if (s.raw) {
		s.raw->remove(s.raw, "plain/obj");
		s.raw->free(s.raw);
	}
	free(s.buf);
	free(s.out);
	return rc;
}
