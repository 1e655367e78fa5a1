/*
 * atrest_key_check_run (keycheck.h): open a local store's keyring with a
 * master key, without the store handle or any object, and time the
 * provider's wrap and unwrap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/keycheck.h"
#include "atrest/sys/backend.h"
#include "crypto.h"
#include "keyring.h"
#include "store/backend_int.h"
#include "store_int.h"

#define KEYRING_READ_MAX (64u * 1024 * 1024)
#define RUNS_MAX 100000u

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median and 99th percentile (nearest rank) of v[0..n), sorted here. */
static void stats(double *v, size_t n, double *median, double *p99)
{
	size_t r = (size_t)(0.99 * (double)n + 0.999999);

	qsort(v, n, sizeof(*v), cmp_double);
	*median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	*p99 = v[(r ? r : 1) - 1];
}

static int read_keyring(atrest__keyring **out, const char *path)
{
	atrest_backend *b = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	GUARD(atrest_backend_open(&b, path));
	rc = atrest__b_prepare(b, 0);
	if (rc == 0)
		rc = atrest__store_read_file(
			b, ATREST__KEYRING_NAME, &text, &len, KEYRING_READ_MAX, NULL);
	if (rc == ATREST_ENOTFOUND)
		rc = atrest__error(ATREST_ENOTFOUND, "no atrest store at %s", path);
	if (rc == 0)
		rc = atrest__keyring_parse(out, text, len);
	free(text);
	atrest__b_free(b);
	return rc;
}

/* runs wraps and unwraps of a random key, bound like a data key. */
static int time_runs(
	atrest_key_check *out, atrest__keyring *kr, atrest_keyprov *kp, uint32_t runs)
{
	double *w = calloc(runs, sizeof(double)), *u = calloc(runs, sizeof(double));
	uint8_t key[ATREST__DEK_LEN], blob[ATREST_WRAPPED_MAX], aad[64];
	static const char role[] = "atrest/v1 key-check";
	atrest__secret *back = NULL;
	size_t n = 0, aad_len = sizeof(role) - 1 + 16;
	int rc = 0;

	ENSURE_OUT(w && u, ATREST_ERROR, "out of memory");
	memcpy(aad, role, sizeof(role) - 1);
	memcpy(aad + sizeof(role) - 1, kr->store_id, 16);
	for (uint32_t i = 0; i < runs; i++) {
		double t0 = now_ms();

		GUARD_OUT(atrest__rand(key, sizeof(key)));
		t0 = now_ms();
		GUARD_OUT(atrest__kp_wrap(kp, blob, &n, key, aad, aad_len));
		w[i] = now_ms() - t0;
		t0 = now_ms();
		GUARD_OUT(atrest__kp_unwrap(kp, &back, blob, n, aad, aad_len));
		u[i] = now_ms() - t0;
		ENSURE_OUT(atrest__ct_equal(back->data, key, sizeof(key)), ATREST_EKEY,
			"key provider '%s' unwrapped another key than it wrapped",
			kr->kind);
		atrest__secret_free(back);
		back = NULL;
	}
	stats(w, runs, &out->wrap_median_ms, &out->wrap_p99_ms);
	stats(u, runs, &out->unwrap_median_ms, &out->unwrap_p99_ms);
	out->runs = runs;
out:
	atrest__secret_free(back);
	atrest__wipe(key, sizeof(key));
	free(w);
	free(u);
	return rc;
}

int atrest_key_check_run(
	atrest_key_check *out, const char *path, atrest_keyprov *key, uint32_t runs)
{
	return atrest_key_check_tenant(out, path, NULL, key, runs);
}

int atrest_key_check_tenant(atrest_key_check *out, const char *path, const char *tenant,
	atrest_keyprov *key, uint32_t runs)
{
	atrest__keyring *kr = NULL;
	double t0;
	int rc;

	memset(out, 0, sizeof(*out));
	ENSURE(key && path, ATREST_EINVAL, "key check needs a store path and a key");
	ENSURE(runs <= RUNS_MAX, ATREST_EINVAL, "at most %u timed runs", RUNS_MAX);
	GUARD(atrest__crypto_init());
	snprintf(out->kind, sizeof(out->kind), "%s", atrest_keyprov_kind(key));
	if (tenant && *tenant)
		GUARD(atrest__keyring_peek(&kr, path, tenant));
	else
		GUARD(read_keyring(&kr, path));
	snprintf(out->store_kind, sizeof(out->store_kind), "%s", kr->kind);
	snprintf(out->store_key_id, sizeof(out->store_key_id), "%s", kr->key_id);
	t0 = now_ms();
	rc = atrest__keyring_unlock(kr, key);
	out->open_ms = now_ms() - t0;
	if (rc == 0 || rc == ATREST_EKEY) {
		/* Bound (to this or another key): its id is known; keep the
		 * unlock's message. */
		char msg[512];

		snprintf(msg, sizeof(msg), "%s",
			atrest_error_last() ? atrest_error_last()->message : "");
		if (atrest__kp_key_id(key, out->key_id, sizeof(out->key_id)) < 0)
			out->key_id[0] = '\0';
		if (rc < 0)
			atrest__error(rc, "%s", msg);
	}
	if (rc == 0) {
		out->matches = 1;
		atrest_error_clear();
		if (runs)
			rc = time_runs(out, kr, key, runs);
	}
	atrest__keyring_free(kr);
	return rc;
}
