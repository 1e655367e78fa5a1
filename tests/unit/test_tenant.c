/*
 * Tenants: separate namespaces (no tenant sees or overwrites another's
 * names), separate keyrings (ids, rotation, destruction), a tenant's own
 * master key, crypto-shredding, the authenticated registry, the store's
 * rewrap moving its tenants, and one thread pool shared by many handles.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "helpers.h"
#include "keyring.h"

static uint8_t KEY[32], OTHER[32];

static atrest_store *open_t(
	const char *dir, const uint8_t *key, const char *tenant, int *rc)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st = NULL;
	int r;

	o.path = dir;
	o.create = tenant == NULL;
	o.tenant = tenant;
	o.threads = 1;
	assert_int_equal(atrest_keyprov_raw(&o.key, key, 32), 0);
	r = atrest_store_open(&st, &o);
	if (rc)
		*rc = r;
	else
		assert_int_equal(r, 0);
	return st;
}

static const char *last_msg(void)
{
	const atrest_error *e = atrest_error_last();

	return e && e->message ? e->message : "";
}

struct names {
	char v[16][64];
	int n;
};

static int add_name(const atrest_list_entry *e, void *p)
{
	struct names *l = p;

	assert_true(l->n < 16);
	snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", e->name);
	return 0;
}

static struct names list_of(atrest_store *st)
{
	struct names l;

	memset(&l, 0, sizeof(l));
	assert_int_equal(atrest_list(st, "", add_name, &l), 0);
	return l;
}

static int path_exists(const char *dir, const char *rel)
{
	char p[4096];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &sb) == 0;
}

/* Same names in two tenants are two objects; lists never mix. */
static void test_namespaces(void **state)
{
	char dir[256];
	atrest_store *st, *acme;
	struct names l;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_t(dir, KEY, NULL, NULL);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	acme = open_t(dir, KEY, "acme", NULL);
	assert_int_equal(atrest_put(st, "x", "default", 7, NULL), 0);
	assert_int_equal(atrest_put(acme, "x", "acme's", 6, NULL), 0);
	assert_int_equal(atrest_put(acme, "only/acme", "a", 1, NULL), 0);
	th_expect_object(st, "x", "default");
	th_expect_object(acme, "x", "acme's");
	l = list_of(st);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0], "x");
	l = list_of(acme);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.v[0], "only/acme");
	assert_string_equal(l.v[1], "x");
	void *out;
	size_t n;
	assert_int_equal(atrest_get(&out, &n, st, "only/acme"), ATREST_ENOTFOUND);
	assert_true(path_exists(dir, ".atrest/tenants/acme/objects/x"));
	assert_true(path_exists(dir, ".atrest/tenants/acme/keyring"));
	assert_int_equal(atrest_delete(acme, "x"), 0);
	th_expect_object(st, "x", "default");
	atrest_store_close(acme);
	atrest_store_close(st);
	th_rmrf(dir);
}

static int count_keys(const atrest_key_info *k, void *p)
{
	(void)k;
	(*(int *)p)++;
	return 0;
}

static int keys_n(atrest_store *st)
{
	int n = 0;

	assert_int_equal(atrest_keys_list(st, 0, count_keys, &n), 0);
	return n;
}

/* Each tenant's keyring: its own id, keys, rotation and destruction. */
static void test_own_keyrings(void **state)
{
	char dir[256], sid[33], tid[33], p[2048];
	atrest_store *st, *acme;
	uint32_t id;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_t(dir, KEY, NULL, NULL);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	acme = open_t(dir, KEY, "acme", NULL);
	assert_int_equal(atrest_store_id(sid, st), 0);
	assert_int_equal(atrest_store_id(tid, acme), 0);
	assert_string_not_equal(sid, tid);
	assert_int_equal(atrest_put(acme, "a", "1", 1, NULL), 0);
	assert_int_equal(atrest_rotate(&id, acme), 0);
	assert_int_equal(keys_n(acme), 2);
	assert_int_equal(keys_n(st), 1);
	assert_int_equal(atrest_key_destroy(acme, id, 1), ATREST_ERROR); /* active */
	assert_int_equal(atrest_rotate(NULL, acme), 0);
	assert_int_equal(atrest_key_destroy(acme, id, 1), 0);
	assert_int_equal(keys_n(st), 1);
	/* A tenant's object moved into another namespace does not open. */
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	assert_int_equal(atrest_stat(&si, acme, "a"), 0);
	atrest_stat_info_clear(&si);
	snprintf(p, sizeof(p), "cp %s/.atrest/tenants/acme/objects/a %s/a", dir, dir);
	assert_int_equal(system(p), 0);
	void *out;
	size_t n;
	assert_int_equal(atrest_get(&out, &n, st, "a"), ATREST_EINTEGRITY);
	atrest_store_close(acme);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* A tenant wrapped by a key file of its own; the store keeps the path. */
static void test_own_master_key(void **state)
{
	char dir[256], kf[512], hex[65];
	atrest_tenant_options to = ATREST_TENANT_OPTIONS_INIT;
	atrest_store *st, *beta;
	int rc;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	snprintf(kf, sizeof(kf), "%s/beta.key", dir);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", OTHER[i]);
	assert_int_equal(th_write_file(kf, hex, 64), 0);
	assert_int_equal(chmod(kf, 0600), 0);
	st = open_t(dir, KEY, NULL, NULL);
	to.key_file = kf;
	assert_int_equal(atrest_tenant_add(st, "beta", &to), 0);
	beta = open_t(dir, KEY, "beta", NULL);
	assert_int_equal(atrest_put(beta, "b", "beta", 4, NULL), 0);
	th_expect_object(beta, "b", "beta");
	/* Not the store's key: the store's rewrap cannot move it... */
	assert_int_equal(atrest_rewrap(beta, NULL), ATREST_EINVAL);
	atrest_store_close(beta);
	/* ...and without its key file beta does not open. */
	assert_int_equal(unlink(kf), 0);
	beta = open_t(dir, KEY, "beta", &rc);
	assert_null(beta);
	assert_true(rc == ATREST_EKEY || rc == ATREST_ENOTFOUND);
	atrest_store_close(st);
	th_rmrf(dir);
}

struct tl {
	char names[8][65];
	char files[8][512];
	int n;
};

static int list_tenants(const atrest_tenant_info *t, void *p)
{
	struct tl *l = p;

	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", t->name);
	snprintf(l->files[l->n++], sizeof(l->files[0]), "%s",
		t->key_file ? t->key_file : "");
	assert_int_equal(strlen(t->keyring_id), 32);
	return 0;
}

/*
 * Shred: the keys go first (another handle on the tenant stops reading
 * within a second), then the objects, the keyring and the entry.
 */
static void test_shred(void **state)
{
	char dir[256], p[2048];
	atrest_store *st, *acme, *other;
	struct tl l = {.n = 0};
	uint64_t removed;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_t(dir, KEY, NULL, NULL);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	assert_int_equal(atrest_tenant_add(st, "keep", NULL), 0);
	acme = open_t(dir, KEY, "acme", NULL);
	other = open_t(dir, KEY, "keep", NULL);
	for (int i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "ckpt/%d", i);
		assert_int_equal(atrest_put(acme, p, "secret", 6, NULL), 0);
	}
	assert_int_equal(atrest_put(other, "k", "kept", 4, NULL), 0);
	th_expect_object(acme, "ckpt/1", "secret"); /* its key is cached */
	snprintf(p, sizeof(p), "cp %s/.atrest/tenants/acme/objects/ckpt/2 %s/saved", dir,
		dir);
	assert_int_equal(system(p), 0);
	assert_int_equal(atrest_tenant_shred(&removed, st, "acme"), 0);
	assert_int_equal(removed, 5);
	assert_false(path_exists(dir, ".atrest/tenants/acme"));
	assert_int_equal(atrest_tenant_list(st, list_tenants, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.names[0], "keep");
	th_expect_object(other, "k", "kept");
	/* The live handle on acme loses its keys at its next look. */
	atrest__clock_offset(2);
	assert_true(atrest_get(&out, &n, acme, "ckpt/1") < 0);
	assert_true(atrest_put(acme, "after", "x", 1, NULL) < 0);
	atrest__clock_offset(0);
	atrest_store_close(acme);
	assert_int_equal(atrest_tenant_shred(NULL, st, "acme"), ATREST_ENOTFOUND);
	/* A new acme is a new keyring: a saved copy of an old object is dead. */
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	acme = open_t(dir, KEY, "acme", NULL);
	snprintf(p, sizeof(p),
		"mkdir -p %s/.atrest/tenants/acme/objects/ckpt && "
		"cp %s/saved %s/.atrest/tenants/acme/objects/ckpt/2",
		dir, dir, dir);
	assert_int_equal(system(p), 0);
	assert_int_equal(atrest_get(&out, &n, acme, "ckpt/2"), ATREST_EINTEGRITY);
	atrest_store_close(acme);
	atrest_store_close(other);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* A live handle on a tenant shredded and added again never uses the new
 * keyring: it fails, writes nothing, and a new handle works. */
static void test_shred_and_add_again(void **state)
{
	char dir[256];
	atrest_store *st, *old, *fresh;
	struct names l;
	void *out;
	size_t n;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_t(dir, KEY, NULL, NULL);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	old = open_t(dir, KEY, "acme", NULL);
	assert_int_equal(atrest_put(old, "a", "first", 5, NULL), 0);
	assert_int_equal(atrest_tenant_shred(NULL, st, "acme"), 0);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	atrest__clock_offset(2); /* the old handle looks again */
	assert_int_equal(atrest_put(old, "b", "stale", 5, NULL), ATREST_ENOTFOUND);
	assert_non_null(strstr(last_msg(), "shredded and added again"));
	assert_true(atrest_get(&out, &n, old, "a") < 0);
	atrest__clock_offset(0);
	fresh = open_t(dir, KEY, "acme", NULL);
	l = list_of(fresh);
	assert_int_equal(l.n, 0);
	assert_int_equal(atrest_put(fresh, "c", "second", 6, NULL), 0);
	th_expect_object(fresh, "c", "second");
	atrest_store_close(fresh);
	atrest_store_close(old);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* The registry and the tenants' keyrings cannot be swapped or edited. */
static void test_registry_authenticated(void **state)
{
	char dir[256], p[2048];
	atrest_store *st;
	int rc;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_t(dir, KEY, NULL, NULL);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	assert_int_equal(atrest_tenant_add(st, "beta", NULL), 0);
	atrest_store_close(st);
	/* beta's keyring replaced by acme's (same master key): refused. */
	snprintf(p, sizeof(p),
		"cp %s/.atrest/tenants/beta/keyring %s/beta.kr && cp "
		"%s/.atrest/tenants/acme/keyring "
		"%s/.atrest/tenants/beta/keyring",
		dir, dir, dir, dir);
	assert_int_equal(system(p), 0);
	assert_null(open_t(dir, KEY, "beta", &rc));
	assert_int_equal(rc, ATREST_EINTEGRITY);
	snprintf(p, sizeof(p), "cp %s/beta.kr %s/.atrest/tenants/beta/keyring", dir, dir);
	assert_int_equal(system(p), 0);
	st = open_t(dir, KEY, "beta", NULL);
	atrest_store_close(st);
	/* An entry edited in the store's keyring: its MAC fails. */
	snprintf(p, sizeof(p),
		"sed -i 's/\"name\": \"beta\"/\"name\": \"bet4\"/' %s/.atrest/keyring",
		dir);
	assert_int_equal(system(p), 0);
	assert_null(open_t(dir, KEY, "acme", &rc));
	assert_int_equal(rc, ATREST_EINTEGRITY);
	th_rmrf(dir);
}

/* The store's rewrap moves the tenants wrapped by its master key. */
static void test_rewrap_moves_tenants(void **state)
{
	char dir[256];
	atrest_store *st, *acme;
	atrest_keyprov *kp;
	int rc;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_t(dir, KEY, NULL, NULL);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	acme = open_t(dir, KEY, "acme", NULL);
	assert_int_equal(atrest_put(acme, "a", "1", 1, NULL), 0);
	atrest_store_close(acme);
	assert_int_equal(atrest_keyprov_raw(&kp, OTHER, 32), 0);
	assert_int_equal(atrest_rewrap(st, kp), 0);
	atrest_store_close(st);
	assert_null(open_t(dir, KEY, "acme", &rc));
	assert_int_equal(rc, ATREST_EKEY);
	acme = open_t(dir, OTHER, "acme", NULL);
	th_expect_object(acme, "a", "1");
	atrest_store_close(acme);
	th_rmrf(dir);
}

static void test_errors(void **state)
{
	static const char *bad[] = {"", ".x", "-x", "a/b", "a b", "..", "x\n",
		"0123456789012345678901234567890123456789012345678901234567890123456"};
	atrest_tenant_options to = ATREST_TENANT_OPTIONS_INIT;
	char dir[256], p[2048];
	atrest_store *st, *acme;
	int rc;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_t(dir, KEY, NULL, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(atrest_tenant_add(st, bad[i], NULL), ATREST_EINVAL);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), ATREST_EEXISTS);
	to.key_uri = "pkcs11:token=t;object=k;pin-value=1234";
	assert_int_equal(atrest_tenant_add(st, "p11", &to), ATREST_EINVAL);
	assert_null(strstr(last_msg(), "1234"));
	to.key_file = "/nonexistent";
	assert_int_equal(atrest_tenant_add(st, "both", &to), ATREST_EINVAL);
	to.key_uri = NULL;
	assert_int_equal(atrest_tenant_add(st, "nokey", &to), ATREST_EKEY);
	assert_null(open_t(dir, KEY, "nobody", &rc));
	assert_int_equal(rc, ATREST_ENOTFOUND);
	assert_non_null(strstr(last_msg(), "tenant add"));
	acme = open_t(dir, KEY, "acme", NULL);
	assert_int_equal(atrest_tenant_add(acme, "x", NULL), ATREST_EINVAL);
	assert_int_equal(atrest_tenant_shred(NULL, acme, "acme"), ATREST_EINVAL);
	atrest_store_close(acme);
	/* An interrupted add (no keyring): reported; shred finishes it. */
	snprintf(p, sizeof(p), "%s/.atrest/tenants/acme/keyring", dir);
	assert_int_equal(unlink(p), 0);
	assert_null(open_t(dir, KEY, "acme", &rc));
	assert_int_equal(rc, ATREST_ENOTFOUND);
	assert_non_null(strstr(last_msg(), "tenant shred acme"));
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), ATREST_EEXISTS);
	assert_int_equal(atrest_tenant_shred(NULL, st, "acme"), 0);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	atrest_store_close(st);
	/* No store: no tenant. */
	snprintf(p, sizeof(p), "%s/none", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_null(open_t(p, KEY, "acme", &rc));
	assert_int_equal(rc, ATREST_ENOTFOUND);
	/* Even with create: a tenant never makes a store. */
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	o.path = p;
	o.create = 1;
	o.tenant = "acme";
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), ATREST_ENOTFOUND);
	assert_false(path_exists(p, ".atrest"));
	th_rmrf(dir);
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * A server with many tenants: one pool for every handle, not a pool per
 * handle (tenants x CPUs threads).
 */
static void test_shared_pool(void **state)
{
	enum { TENANTS = 6, BIG = 3 << 20 };
	char dir[256], name[16];
	atrest_store *st, *t[TENANTS];
	atrest_pool *pool;
	uint8_t *data = malloc(BIG);
	int before, with_pool;

	(void)state;
	th_fill(data, BIG, 4);
	th_tmpdir(dir, sizeof(dir));
	st = open_t(dir, KEY, NULL, NULL);
	before = count_threads();
	assert_int_equal(atrest_pool_new(&pool, 3), 0);
	/* Two workers (a sanitizer may add a thread of its own once). */
	with_pool = count_threads();
	assert_true(with_pool >= before + 2 && with_pool <= before + 3);
	for (int i = 0; i < TENANTS; i++) {
		atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
		snprintf(name, sizeof(name), "t%d", i);
		assert_int_equal(atrest_tenant_add(st, name, NULL), 0);
		o.path = dir;
		o.tenant = name;
		o.pool = pool;
		o.threads = 64; /* ignored: the pool decides */
		assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
		assert_int_equal(atrest_store_open(&t[i], &o), 0);
	}
	for (int i = 0; i < TENANTS; i++) {
		void *out;
		size_t n;
		assert_int_equal(atrest_put(t[i], "big", data, BIG, NULL), 0);
		assert_int_equal(atrest_get(&out, &n, t[i], "big"), 0);
		assert_int_equal(n, BIG);
		assert_memory_equal(out, data, BIG);
		atrest_free(out);
	}
	assert_int_equal(count_threads(), with_pool);
	for (int i = 0; i < TENANTS; i++)
		atrest_store_close(t[i]);
	atrest_pool_free(pool);
	assert_int_equal(count_threads(), with_pool - 2);
	atrest_store_close(st);
	free(data);
	th_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_namespaces),
		cmocka_unit_test(test_own_keyrings),
		cmocka_unit_test(test_own_master_key),
		cmocka_unit_test(test_shred),
		cmocka_unit_test(test_shred_and_add_again),
		cmocka_unit_test(test_registry_authenticated),
		cmocka_unit_test(test_rewrap_moves_tenants),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_shared_pool),
	};

	th_fill(KEY, sizeof(KEY), 21);
	th_fill(OTHER, sizeof(OTHER), 22);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
