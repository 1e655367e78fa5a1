/*
 * The server's hand-written parsers and its key file, without a network:
 * request targets (percent-decoding, NUL refused, query), Range against
 * RFC 9110's examples, library errors as HTTP statuses, API keys
 * (create, check in constant time, revoke, strict parsing, file mode), and
 * the tenant table (one pool, counted handles used by many threads while a
 * tenant is shredded and added again).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../../src/server/apikeys.h"
#include "../../src/server/http.h"
#include "../../src/server/tenants.h"
#include "helpers.h"

static void test_target(void **state)
{
	struct http_target t;
	const char *why;

	assert_int_equal(
		http_target_parse(
			&t, "/v1/checkpoints/a%2Fb%20c?prefix=x+y&limit=5&flag", &why),
		0);
	assert_string_equal(t.path, "/v1/checkpoints/a/b c");
	assert_string_equal(http_target_param(&t, "prefix"), "x y");
	assert_string_equal(http_target_param(&t, "limit"), "5");
	assert_string_equal(http_target_param(&t, "flag"), "");
	assert_null(http_target_param(&t, "other"));
	http_target_free(&t);
	assert_int_equal(http_target_parse(&t, "http://h:1/p+q?a=%41", &why), 0);
	assert_string_equal(t.path, "/p+q");
	assert_string_equal(http_target_param(&t, "a"), "A");
	http_target_free(&t);
	assert_int_equal(http_target_parse(&t, "/a%00b", &why), -1);
	assert_int_equal(http_target_parse(&t, "/a%0", &why), -1);
	assert_int_equal(http_target_parse(&t, "/a%g0", &why), -1);
	assert_int_equal(http_target_parse(&t, "/a?x=%00", &why), -1);
	assert_int_equal(http_target_parse(&t, "*", &why), -1);
	assert_int_equal(http_target_parse(&t, "", &why), -1);
	assert_int_equal(http_target_parse(&t, "http://h", &why), -1);
}

static void test_range(void **state)
{
	uint64_t f, n;

	/* RFC 9110 section 14.1.2, on a 10000-byte representation. */
	assert_int_equal(http_range_parse("bytes=0-499", 10000, &f, &n), HTTP_RANGE_OK);
	assert_true(f == 0 && n == 500);
	assert_int_equal(http_range_parse("bytes=500-999", 10000, &f, &n), HTTP_RANGE_OK);
	assert_true(f == 500 && n == 500);
	assert_int_equal(http_range_parse("bytes=-500", 10000, &f, &n), HTTP_RANGE_OK);
	assert_true(f == 9500 && n == 500);
	assert_int_equal(http_range_parse("bytes=9500-", 10000, &f, &n), HTTP_RANGE_OK);
	assert_true(f == 9500 && n == 500);
	assert_int_equal(
		http_range_parse("bytes=0-0,-1", 10000, &f, &n), HTTP_RANGE_IGNORE);
	assert_int_equal(http_range_parse("bytes=0-99999999999999999999999", 10, &f, &n),
		HTTP_RANGE_OK);
	assert_true(f == 0 && n == 10);
	assert_int_equal(
		http_range_parse("bytes=10-", 10, &f, &n), HTTP_RANGE_UNSATISFIABLE);
	assert_int_equal(
		http_range_parse("bytes=-0", 10, &f, &n), HTTP_RANGE_UNSATISFIABLE);
	assert_int_equal(
		http_range_parse("bytes=-5", 0, &f, &n), HTTP_RANGE_UNSATISFIABLE);
	assert_int_equal(http_range_parse("bytes=3-2", 10, &f, &n), HTTP_RANGE_IGNORE);
	assert_int_equal(http_range_parse("bytes=", 10, &f, &n), HTTP_RANGE_IGNORE);
	assert_int_equal(http_range_parse("bytes=a-b", 10, &f, &n), HTTP_RANGE_IGNORE);
	assert_int_equal(http_range_parse("bits=0-1", 10, &f, &n), HTTP_RANGE_IGNORE);
}

static void test_status(void **state)
{
	assert_int_equal(http_status_of(ATREST_EINVAL).status, 400);
	assert_int_equal(http_status_of(ATREST_ENOTFOUND).status, 404);
	assert_int_equal(http_status_of(ATREST_EEXISTS).status, 409);
	assert_int_equal(http_status_of(ATREST_ETOOBIG).status, 413);
	assert_int_equal(http_status_of(ATREST_EINTEGRITY).status, 422);
	assert_int_equal(http_status_of(ATREST_EKEY).status, 500);
	assert_int_equal(http_status_of(ATREST_EUNAVAILABLE).status, 503);
	assert_int_equal(http_status_of(ATREST_ENOSPC).status, 507);
	assert_int_equal(http_status_of(ATREST_ERROR).status, 500);
	assert_string_equal(http_status_of(ATREST_EINTEGRITY).code, "integrity_failure");
}

static void test_apikeys(void **state)
{
	char dir[256], path[512], key[SRV_APIKEY_LEN + 1], key2[SRV_APIKEY_LEN + 1],
		why[512];
	struct srv_apikey e, e2;
	struct srv_apikeys k;
	struct stat sb;
	char was;

	th_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/apikeys", dir);
	assert_int_equal(
		srv_apikey_new(&e, key, sizeof(key), "acme", SRV_ROLE_WRITER, "n"), 0);
	assert_int_equal(strlen(key), SRV_APIKEY_LEN);
	assert_int_equal(
		srv_apikey_new(&e2, key2, sizeof(key2), "", SRV_ROLE_ADMIN, ""), 0);
	assert_int_equal(
		srv_apikey_new(&e2, key2, sizeof(key2), "../x", SRV_ROLE_ADMIN, ""), -1);
	assert_int_equal(
		srv_apikey_new(&e2, key2, sizeof(key2), "", SRV_ROLE_NONE, ""), -1);
	assert_int_equal(
		srv_apikey_new(&e2, key2, sizeof(key2), "", SRV_ROLE_ADMIN, ""), 0);
	assert_int_equal(srv_apikeys_add(path, &e, why, sizeof(why)), 0);
	assert_int_equal(srv_apikeys_add(path, &e2, why, sizeof(why)), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(srv_apikeys_load(&k, path, why, sizeof(why)), 0);
	assert_int_equal(k.n, 2);
	assert_non_null(srv_apikeys_check(&k, key));
	assert_string_equal(srv_apikeys_check(&k, key)->tenant, "acme");
	assert_int_equal(srv_apikeys_check(&k, key2)->role, SRV_ROLE_ADMIN);
	/* Another secret character; then another spelling of the same last
	 * 4 bits (base64's spare bits): both refused. */
	was = key[SRV_APIKEY_LEN - 10];
	key[SRV_APIKEY_LEN - 10] = was == 'A' ? 'B' : 'A';
	assert_null(srv_apikeys_check(&k, key));
	key[SRV_APIKEY_LEN - 10] = was;
	assert_non_null(srv_apikeys_check(&k, key));
	{
		static const char b64[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		char *last = &key[SRV_APIKEY_LEN - 1];
		int v = (int)(strchr(b64, *last) - b64);

		*last = b64[v | 1];
		assert_null(srv_apikeys_check(&k, key));
		*last = b64[v];
	}
	assert_null(srv_apikeys_check(&k, "atr_"));
	assert_null(srv_apikeys_check(&k, ""));
	srv_apikeys_free(&k);
	assert_int_equal(srv_apikeys_revoke(path, e.id, why, sizeof(why)), 0);
	assert_int_equal(srv_apikeys_revoke(path, e.id, why, sizeof(why)), 1);
	assert_int_equal(srv_apikeys_load(&k, path, why, sizeof(why)), 0);
	assert_int_equal(k.n, 1);
	assert_null(srv_apikeys_check(&k, key));
	srv_apikeys_free(&k);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(srv_apikeys_load(&k, path, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "chmod 600"));
	th_rmrf(dir);
}

static void test_apikeys_parse(void **state)
{
	static const char *bad[] = {"", "[]", "{\"version\":1}",
		"{\"version\":2,\"keys\":[]}", "{\"version\":1,\"keys\":[{}]}",
		"{\"version\":1,\"keys\":[],\"x\":1}",
		"{\"version\":1,\"version\":1,\"keys\":[]}"};
	struct srv_apikeys k;
	char why[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		assert_int_equal(
			srv_apikeys_parse(&k, bad[i], strlen(bad[i]), why, sizeof(why)),
			-1);
		assert_true(why[0] != '\0');
	}
	assert_int_equal(srv_apikeys_parse(&k, bad[3] + 0, 0, why, sizeof(why)), -1);
	assert_int_equal(srv_apikeys_parse(&k, "{\"version\":1,\"keys\":[]}",
				 strlen("{\"version\":1,\"keys\":[]}"), why, sizeof(why)),
		0);
	assert_int_equal(k.n, 0);
	srv_apikeys_free(&k);
	assert_true(srv_tenant_ok("") && srv_tenant_ok("acme-1.prod_x"));
	assert_false(srv_tenant_ok(".x") || srv_tenant_ok("a/b") || srv_tenant_ok("-x"));
}

struct user {
	struct srv_tenants *t;
	const char *tenant;
	int *stop; /* read and set atomically */
	int ok, refused, failed;
};

/* Acquire, put and read back, release; until told to stop. */
static void *tenant_user(void *arg)
{
	struct user *u = arg;
	char name[32];

	for (int i = 0; !__atomic_load_n(u->stop, __ATOMIC_ACQUIRE) || i < 50; i++) {
		struct srv_tenant *ref;
		atrest_store *st;
		void *out;
		size_t n;
		int rc = srv_tenants_acquire(&st, &ref, u->t, u->tenant);

		if (rc == ATREST_ENOTFOUND) {
			u->refused++;
			continue;
		}
		assert_int_equal(rc, 0);
		snprintf(name, sizeof(name), "obj-%d", i % 4);
		if (atrest_put(st, name, name, strlen(name), NULL) == 0 &&
			atrest_get(&out, &n, st, name) == 0) {
			u->ok++;
			atrest_free(out);
		} else
			u->failed++; /* a handle whose tenant went meanwhile */
		srv_tenant_release(ref);
	}
	return NULL;
}

/* Acquire tenant until it answers want (30 s at most: the table looks at
 * the registry once a second). */
static int acquire_until(struct srv_tenants *t, const char *tenant, int want)
{
	struct timespec tick = {0, 50 * 1000000L};
	struct srv_tenant *ref = NULL;
	atrest_store *st;
	int rc = -1;

	for (int i = 0; i < 600; i++) {
		rc = srv_tenants_acquire(&st, &ref, t, tenant);
		srv_tenant_release(ref);
		if (rc == want)
			break;
		nanosleep(&tick, NULL);
	}
	return rc;
}

static void test_tenant_table(void **state)
{
	struct srv_store_config cfg = {0};
	struct srv_tenant *ref, **all;
	struct srv_tenants *t;
	struct user u[4];
	pthread_t th[4];
	int stop = 0;
	char dir[256], state_dir[300], key[65];
	atrest_store *st, *root;
	uint8_t k[32];
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	snprintf(state_dir, sizeof(state_dir), "%s/.atrest", dir);
	th_fill(k, sizeof(k), 9);
	for (int i = 0; i < 32; i++)
		snprintf(key + 2 * i, 3, "%02x", k[i]);
	setenv("ATREST_KEY", key, 1);
	cfg.path = dir;
	cfg.state_dir = state_dir;
	cfg.threads = 2;
	assert_int_equal(srv_tenants_new(&t, &cfg), 0);
	root = srv_tenants_root(t);
	assert_int_equal(srv_tenants_acquire(&st, &ref, t, ""), 0);
	assert_ptr_equal(st, root);
	srv_tenant_release(ref);
	assert_int_equal(srv_tenants_acquire(&st, &ref, t, "acme"), ATREST_ENOTFOUND);
	assert_null(ref);
	assert_int_equal(atrest_tenant_add(root, "acme", NULL), 0);
	assert_int_equal(atrest_tenant_add(root, "keep", NULL), 0);
	/* Threads use both tenants while acme is shredded and added again. */
	for (int i = 0; i < 4; i++) {
		u[i] = (struct user){t, i % 2 ? "keep" : "acme", &stop, 0, 0, 0};
		assert_int_equal(pthread_create(&th[i], NULL, tenant_user, &u[i]), 0);
	}
	assert_int_equal(atrest_tenant_shred(NULL, root, "acme"), 0);
	assert_int_equal(acquire_until(t, "acme", ATREST_ENOTFOUND), ATREST_ENOTFOUND);
	assert_int_equal(atrest_tenant_add(root, "acme", NULL), 0);
	assert_int_equal(acquire_until(t, "acme", 0), 0);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_true(u[i].ok + u[i].refused + u[i].failed >= 50);
		if (i % 2) /* keep never noticed acme's shred */
			assert_true(
				u[i].ok >= 50 && u[i].refused == 0 && u[i].failed == 0);
	}
	/*
	 * The table converges on the new acme: a handle a user thread opened
	 * in the middle of the shred may serve (and refuse every write, as
	 * the library never writes under a shredded keyring) until the next
	 * registry check; then the new acme's handle works.
	 */
	for (int i = 0;; i++) {
		struct timespec tick = {0, 50 * 1000000L};

		assert_int_equal(srv_tenants_acquire(&st, &ref, t, "acme"), 0);
		if (atrest_put(st, "fresh", "x", 1, NULL) == 0)
			break;
		if (i == 600)
			fail_msg("put in the new acme: %s", atrest_error_last()->message);
		assert_true(atrest_error_last()->code == ATREST_EKEY ||
			atrest_error_last()->code == ATREST_ENOTFOUND);
		srv_tenant_release(ref);
		nanosleep(&tick, NULL);
	}
	th_expect_object(st, "fresh", "x");
	srv_tenant_release(ref);
	assert_int_equal(srv_tenants_all(&all, &n, t), 0);
	assert_int_equal(n, 3); /* default, keep, the new acme */
	srv_tenants_release_all(all, n);
	srv_tenants_free(t);
	unsetenv("ATREST_KEY");
	th_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_apikeys),
		cmocka_unit_test(test_apikeys_parse),
		cmocka_unit_test(test_tenant_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
