/*
 * A long-running atrest process for the service tests, driven line by line
 * on stdin so a shell test can change a contract server between steps:
 * store commands (open, put, get, rotate, close) and provider commands on
 * one key URI (wrap, unwrap, rewrap with a chosen AAD).  Answers one line
 * per command: "ok [...]" or "err CODE message".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/atrest.h"
#include "common.h"
#include "keyring.h"

static atrest_store *st;
static atrest_keyprov *kp;
static uint8_t blob[ATREST_WRAPPED_MAX];
static size_t blob_len;

static void say_err(int rc)
{
	const atrest_error *e = atrest_error_last();

	printf("err %d %s\n", rc, e ? e->message : "");
}

/* Deterministic contents of object name, n bytes. */
static void fill(uint8_t *p, size_t n, const char *name)
{
	uint32_t x = 2166136261u;

	for (const char *c = name; *c; c++)
		x = (x ^ (uint8_t)*c) * 16777619u;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

static int cmd_open(const char *arg)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;

	o.path = getenv("ATREST_STORE");
	o.create = 1;
	o.key_cache_ttl = arg && *arg ? (uint32_t)atoi(arg) : 0;
	return atrest_store_open(&st, &o);
}

static int cmd_put(const char *name, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	int rc;

	fill(p, n, name);
	rc = atrest_put(st, name, p, n, NULL);
	free(p);
	return rc;
}

static int cmd_get(const char *name)
{
	void *got = NULL;
	size_t n = 0;
	int rc = atrest_get(&got, &n, st, name);
	uint8_t *want;

	if (rc < 0)
		return rc;
	want = malloc(n ? n : 1);
	fill(want, n, name);
	if (memcmp(want, got, n) != 0)
		rc = ATREST_EINTEGRITY;
	free(want);
	atrest_free(got);
	return rc;
}

/* An AAD from text: role || 16 bytes of store id (from the text) || le32 1. */
static size_t make_aad(uint8_t *aad, const char *store)
{
	size_t n = strlen("atrest/v1 dek");

	memcpy(aad, "atrest/v1 dek", n);
	memset(aad + n, 0, 16);
	memcpy(aad + n, store, strlen(store) < 16 ? strlen(store) : 16);
	aad[n + 16] = 1;
	aad[n + 17] = aad[n + 18] = aad[n + 19] = 0;
	return n + 20;
}

static int cmd_kp(const char *verb, const char *arg)
{
	static const uint8_t dek[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
	uint8_t aad[64];
	size_t aad_len = make_aad(aad, arg ? arg : "store-a");
	atrest__secret *s = NULL;
	int rc;

	if (!kp)
		GUARD(atrest_keyprov_from_env(&kp, 0));
	if (strcmp(verb, "wrap") == 0)
		return atrest__kp_wrap(kp, blob, &blob_len, dek, aad, aad_len);
	if (strcmp(verb, "rewrap") == 0)
		return atrest__kp_rewrap(
			kp, blob, &blob_len, blob, blob_len, aad, aad_len);
	rc = atrest__kp_unwrap(kp, &s, blob, blob_len, aad, aad_len);
	if (rc == 0 && memcmp(s->data, dek, 32) != 0)
		rc = ATREST_EINTEGRITY;
	atrest__secret_free(s);
	return rc;
}

static int run(char *line)
{
	char *verb = strtok(line, " \n"), *a = strtok(NULL, " \n"),
	     *b = strtok(NULL, " \n");

	if (!verb)
		return 0;
	if (strcmp(verb, "open") == 0)
		return cmd_open(a);
	if (strcmp(verb, "close") == 0) {
		atrest_store_close(st);
		st = NULL;
		return 0;
	}
	if (strcmp(verb, "put") == 0 && a && b)
		return cmd_put(a, (size_t)atol(b));
	if (strcmp(verb, "get") == 0 && a)
		return cmd_get(a);
	if (strcmp(verb, "rotate") == 0) {
		uint32_t id;
		return atrest_rotate(&id, st);
	}
	if (strcmp(verb, "wrap") == 0 || strcmp(verb, "unwrap") == 0 ||
		strcmp(verb, "rewrap") == 0)
		return cmd_kp(verb, a);
	return ATREST_EINVAL;
}

int main(void)
{
	char line[512];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		int rc;

		if (strncmp(line, "quit", 4) == 0)
			break;
		rc = run(line);
		if (rc < 0)
			say_err(rc);
		else
			printf("ok\n");
	}
	atrest_store_close(st);
	atrest_keyprov_free(kp);
	return 0;
}
