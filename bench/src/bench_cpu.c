/*
 * The figures of `atrest bench` bound by the CPU: sealing and opening a large
 * object in memory against OpenSSL, small records against bare AEAD calls,
 * and the cost of a passphrase against one Argon2id derivation.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_int.h"

#define AEAD_LEN 16384

/* `openssl speed -evp aes-256-gcm` at 16 KiB in bytes/s, or NAN. */
static double openssl_speed(double seconds)
{
	char cmd[256], line[256];
	double v = NAN, x;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		"openssl speed -mr -elapsed -seconds %d "
		"-bytes %d -evp aes-256-gcm 2>/dev/null",
		(int)ceil(seconds), AEAD_LEN);
	p = popen(cmd, "r");
	if (!p)
		return NAN;
	while (fgets(line, sizeof(line), p)) {
		/* "+F:<n>:AES-256-GCM:<bytes per second>" */
		char *c = strrchr(line, ':');
		if (!strncmp(line, "+F:", 3) && c && sscanf(c + 1, "%lf", &x) == 1)
			v = x;
	}
	if (pclose(p) != 0)
		return NAN;
	return v;
}

/* GB/s of the in-memory object path; 0 or the exit status. */
static int object_rate(
	double *gbps, const struct bench *b, size_t bytes, unsigned int threads, int open)
{
	bench_options o = {0};
	int rc;

	o.threads = threads;
	o.seconds = b->quick ? 0.3 : 1.0;
	rc = bench_lib_object(gbps, &o, bytes, open);
	return rc < 0 ? cli_err(rc, "bench: object") : 0;
}

static int aead_rate(
	double *ops, const struct bench *b, size_t len, int open, double seconds)
{
	bench_options o = {0};
	int rc;

	o.seconds = seconds;
	rc = bench_lib_aead(ops, &o, len, open);
	return rc < 0 ? cli_err(rc, "bench: bare AEAD") : 0;
}

static void object_figs(
	struct bench *b, const double *r, double evp_seal, double evp_open, double speed)
{
	const char *evp_s = "EVP AES-256-GCM seal, 16 KiB calls";
	const char *evp_o = "EVP AES-256-GCM open, 16 KiB calls";

	bench_target(bench_add(b, "seal 1 thread", r[0], "GB/s", evp_s, evp_seal,
			     r[0] / evp_seal),
		"ratio", ">=", 0.90);
	bench_target(bench_add(b, "open 1 thread", r[1], "GB/s", evp_o, evp_open,
			     r[1] / evp_open),
		"ratio", ">=", 0.90);
	if (!isnan(speed))
		bench_target(bench_add(b, "seal 1 thread vs openssl speed", r[0], "GB/s",
				     "openssl speed -evp aes-256-gcm -bytes 16384", speed,
				     r[0] / speed),
			"ratio", ">=", 0.90);
	else
		bench_na(b, "seal 1 thread vs openssl speed", "GB/s",
			"no working 'openssl speed'");
	bench_target(bench_add(b, "seal 2 threads", r[2], "GB/s", "seal 1 thread", r[0],
			     r[2] / r[0]),
		"ratio", ">=", 1.7);
	bench_target(bench_add(b, "open 2 threads", r[3], "GB/s", "open 1 thread", r[1],
			     r[3] / r[1]),
		"ratio", ">=", 1.7);
}

int bench_object(struct bench *b)
{
	size_t bytes = (b->quick ? 64 : 256) * MIB;
	double r[4], evp_seal, evp_open, speed, secs = b->quick ? 0.3 : 1.0;
	int st;

	bench_say("sealing and opening %zu MiB in memory", bytes / MIB);
	if ((st = aead_rate(&evp_seal, b, AEAD_LEN, 0, secs)) ||
		(st = aead_rate(&evp_open, b, AEAD_LEN, 1, secs)))
		return st;
	for (int i = 0; i < 4; i++)
		if ((st = object_rate(&r[i], b, bytes, i < 2 ? 1 : 2, i % 2)))
			return st;
	speed = openssl_speed(secs) / 1e9;
	object_figs(b, r, evp_seal * AEAD_LEN / 1e9, evp_open * AEAD_LEN / 1e9, speed);
	return 0;
}

/* Records per second of atrest_record_seal or _open on len-byte records. */
static int record_rate(
	double *out, atrest_recorder *r, size_t len, int open, double seconds)
{
	uint8_t pt[512], rec[512 + ATREST_RECORD_OVERHEAD], back[512 + 64];
	double t0 = bench_now(), el = 0;
	uint64_t calls = 0;
	size_t n, got;
	int rc;

	memset(pt, 0x42, sizeof(pt));
	rc = atrest_record_seal(r, rec, sizeof(rec), &n, pt, len, NULL, 0);
	while (rc == 0 && el < seconds) {
		for (int i = 0; rc == 0 && i < 256; i++)
			rc = open ? atrest_record_open(
					    r, back, sizeof(back), &got, rec, n, NULL, 0)
				  : atrest_record_seal(
					    r, rec, sizeof(rec), &n, pt, len, NULL, 0);
		calls += 256;
		el = bench_now() - t0;
	}
	*out = rc == 0 ? (double)calls / el : 0;
	return rc < 0 ? cli_err(rc, "bench: records") : 0;
}

static int records_size(struct bench *b, atrest_recorder *r, size_t len)
{
	double secs = b->quick ? 0.2 : 0.5, rec, bare;
	char name[64], ref[64];
	int st;

	for (int open = 0; open < 2; open++) {
		if ((st = record_rate(&rec, r, len, open, secs)) ||
			(st = aead_rate(&bare, b, len, open, secs)))
			return st;
		snprintf(name, sizeof(name), "record %s %zu B", open ? "open" : "seal",
			len);
		snprintf(ref, sizeof(ref), "bare EVP AES-256-GCM %s, reused context",
			open ? "open" : "seal");
		bench_target(
			bench_add(b, name, rec / 1e6, "M/s", ref, bare / 1e6, rec / bare),
			"ratio", ">=", 0.60);
	}
	return 0;
}

int bench_records(struct bench *b)
{
	static const size_t sizes[] = {64, 128, 256, 512};
	atrest_recorder *r = NULL;
	atrest_store *st;
	int status, rc;

	bench_say("small records");
	if ((status = bench_store(b, &st, "records", NULL)))
		return status;
	rc = atrest_recorder_open(&r, st, "bench");
	if (rc < 0)
		status = cli_err(rc, "bench: recorder");
	for (size_t i = 0; !status && i < sizeof(sizes) / sizeof(sizes[0]); i++)
		status = records_size(b, r, sizes[i]);
	atrest_recorder_close(r);
	atrest_store_close(st);
	return status;
}

/*
 * Open the store <run dir>/sub with kp (taken over), put n 4 KiB objects
 * and close it; t[0] is the time opening took, t[1] the rest.
 */
static int session(
	double t[2], struct bench *b, const char *sub, atrest_keyprov *kp, int n)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	uint8_t buf[4096];
	char path[4096], name[32];
	double t0 = bench_now();
	atrest_store *st;
	int rc;

	memset(buf, 0x33, sizeof(buf));
	snprintf(path, sizeof(path), "%s/%s", b->dir, sub);
	o.path = path;
	o.key = kp;
	o.create = 1;
	rc = atrest_store_open(&st, &o);
	t[0] = bench_now() - t0;
	if (rc < 0)
		return cli_err(rc, "bench: store %s", path);
	for (int i = 0; rc == 0 && i < n; i++) {
		snprintf(name, sizeof(name), "p%03d", i);
		rc = atrest_put(st, name, buf, sizeof(buf), NULL);
	}
	atrest_store_close(st);
	t[1] = bench_now() - t0 - t[0];
	return rc < 0 ? cli_err(rc, "bench: put") : 0;
}

/* A provider for a passphrase, or (pass == NULL) for a raw key. */
static int provider(atrest_keyprov **out, const char *pass, const uint8_t *key)
{
	int rc = pass ? atrest_keyprov_passphrase(out, pass, strlen(pass))
		      : atrest_keyprov_raw(out, key, 32);

	return rc < 0 ? cli_err(rc, "bench: key provider") : 0;
}

/* Passphrase session against a raw-key one plus exactly one derivation. */
static void passphrase_fig(
	struct bench *b, const double *tp, const double *tr, double kdf)
{
	double p = tp[0] + tp[1], r = tr[0] + tr[1];
	struct bench_fig *f = bench_add(b, "passphrase: open + 100 puts", p, "s",
		"raw-key session + one Argon2id derivation", r + kdf, p / (r + kdf));

	bench_target(f, "ratio", "<=", 1.5);
	if (f)
		snprintf(f->note, sizeof(f->note),
			"open %.3g s = %.2g "
			"derivations (raw key %.3g s); 100 puts %.3g s (raw key %.3g "
			"s); one derivation %.3g s",
			tp[0], (tp[0] - tr[0]) / kdf, tr[0], tp[1], tr[1], kdf);
}

int bench_passphrase(struct bench *b)
{
	uint8_t raw[32];
	char pass[49];
	double kdf, tp[2], tr[2], tc[2];
	atrest_keyprov *kp;
	int st, rc;

	bench_say("passphrase: one derivation per process");
	atrest_random(raw, sizeof(raw));
	cli_hex(pass, raw, 24);
	atrest_random(raw, sizeof(raw));
	/* Create each store, then time opening it for 100 puts. */
	if ((st = provider(&kp, pass, NULL)) || (st = session(tc, b, "pass", kp, 0)) ||
		(st = provider(&kp, NULL, raw)) || (st = session(tc, b, "raw", kp, 0)) ||
		(st = provider(&kp, NULL, raw)) ||
		(st = session(tr, b, "raw", kp, 100)) ||
		(st = provider(&kp, pass, NULL)) ||
		(st = session(tp, b, "pass", kp, 100)))
		goto out;
	if ((rc = bench_lib_kdf(&kdf)) < 0)
		st = cli_err(rc, "bench: argon2id");
	else
		passphrase_fig(b, tp, tr, kdf);
out:
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(raw, sizeof(raw));
	return st;
}
