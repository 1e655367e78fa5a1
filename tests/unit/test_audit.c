/*
 * Unit tests of the event hook, the audit trail and the metrics: every
 * operation's event and fields, verification and each kind of tampering,
 * torn-line repair, threads, per-key usage against a scan, metric values.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>

#include "atrest/atrest.h"
#include "helpers.h"
#include "store/fs_int.h"

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
	18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* Events seen by the user observer (copies of the interesting fields). */
typedef struct seen {
	int op, outcome, ranged;
	char name[64], principal[64], tenant[32], provider[32], master[64];
	uint64_t bytes, offset, length, count, seq;
	uint32_t dek;
} seen;

static seen events[4096];
static size_t nevents;
static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_event(const atrest_event *ev, void *payload)
{
	seen *s;

	(void)payload;
	pthread_mutex_lock(&ev_mu);
	if (nevents < sizeof(events) / sizeof(events[0])) {
		s = &events[nevents++];
		memset(s, 0, sizeof(*s));
		s->op = ev->op;
		s->outcome = ev->outcome;
		s->ranged = ev->ranged;
		snprintf(s->name, sizeof(s->name), "%s", ev->name ? ev->name : "");
		snprintf(s->principal, sizeof(s->principal), "%s", ev->principal);
		snprintf(s->tenant, sizeof(s->tenant), "%s", ev->tenant);
		snprintf(s->provider, sizeof(s->provider), "%s",
			ev->provider ? ev->provider : "");
		snprintf(s->master, sizeof(s->master), "%s",
			ev->master_key_id ? ev->master_key_id : "");
		s->bytes = ev->bytes;
		s->offset = ev->offset;
		s->length = ev->length;
		s->count = ev->count;
		s->seq = ev->seq;
		s->dek = ev->data_key_id;
	}
	pthread_mutex_unlock(&ev_mu);
}

static const atrest_observer OBSERVER = {ATREST_OBSERVER_VERSION, on_event, NULL};

static atrest_store *open_opts(
	const char *dir, const char *audit, uint64_t rotate, unsigned flags, int *rc_out)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *st = NULL;
	int rc;

	o.path = dir;
	o.create = 1;
	o.observer = &OBSERVER;
	o.audit = audit;
	o.audit_rotate_bytes = rotate;
	o.flags = flags;
	o.threads = 1;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	rc = atrest_store_open(&st, &o);
	if (rc_out)
		*rc_out = rc;
	else
		assert_int_equal(rc, 0);
	return st;
}

static atrest_store *open_store(const char *dir)
{
	return open_opts(dir, NULL, 0, 0, NULL);
}

/* The last event of op (NULL when none). */
static const seen *last_of(int op)
{
	for (size_t i = nevents; i > 0; i--)
		if (events[i - 1].op == op)
			return &events[i - 1];
	return NULL;
}

static void audit_dir(char *out, size_t cap, const char *dir)
{
	snprintf(out, cap, "%s/.atrest/audit", dir);
}

static int verify_dir(const char *dir, atrest_audit_report *r, atrest_store *st)
{
	uint8_t pub[32];
	char a[512];

	if (st)
		assert_int_equal(atrest_audit_pubkey(pub, st), 0);
	else
		assert_int_equal(atrest_audit_pubkey_unchecked(pub, dir), 0);
	audit_dir(a, sizeof(a), dir);
	*r = (atrest_audit_report)ATREST_AUDIT_REPORT_INIT;
	return atrest_audit_verify(r, a, pub, 0);
}

/* Ops named in the audit files, as a string "put,get,...". */
static int log_has_op(const char *dir, const char *op, const char *field, const char *val)
{
	char a[512], p[1024], line[16384];
	struct dirent *de;
	DIR *d;
	int found = 0;

	audit_dir(a, sizeof(a), dir);
	d = opendir(a);
	assert_non_null(d);
	while (!found && (de = readdir(d)) != NULL) {
		FILE *f;
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", a, de->d_name);
		f = fopen(p, "r");
		assert_non_null(f);
		while (!found && fgets(line, sizeof(line), f)) {
			json_t *j = json_loads(line, 0, NULL);
			const char *o = json_string_value(json_object_get(j, "op"));
			json_t *v = field ? json_object_get(j, field) : NULL;
			char num[32];
			snprintf(num, sizeof(num), "%lld",
				json_is_integer(v) ? (long long)json_integer_value(v)
						   : -1);
			found = o && strcmp(o, op) == 0 &&
				(!field ||
					(json_is_string(v) &&
						!strcmp(json_string_value(v), val)) ||
					(json_is_integer(v) && !strcmp(num, val)));
			json_decref(j);
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

/* Some audit file of dir contains text. */
static int grep_log(const char *dir, const char *text)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "grep -qF '%s' %s/.atrest/audit/audit-*.jsonl", text,
		dir);
	return system(cmd) == 0;
}

/* The store's first data key (ids are random). */
static uint32_t first_key;

static void object_events(atrest_store *st, const char *dir)
{
	void *out;
	size_t len, got;
	char buf[16];
	atrest_stat_info si = ATREST_STAT_INFO_INIT;
	atrest_writer *w;
	atrest_reader *r;

	assert_int_equal(atrest_put(st, "job/a", "hello world", 11, NULL), 0);
	assert_int_equal(atrest_object_key_id(&first_key, st, "job/a"), 0);
	assert_int_equal(last_of(ATREST_OP_PUT)->bytes, 11);
	assert_int_equal(last_of(ATREST_OP_PUT)->dek, first_key);
	assert_string_equal(last_of(ATREST_OP_PUT)->name, "job/a");
	assert_int_equal(atrest_get(&out, &len, st, "job/a"), 0);
	atrest_free(out);
	assert_int_equal(last_of(ATREST_OP_GET)->bytes, 11);
	assert_int_equal(last_of(ATREST_OP_GET)->dek, first_key);
	assert_int_equal(atrest_get_range(st, "job/a", 6, buf, 5, &got), 0);
	assert_true(last_of(ATREST_OP_GET)->ranged);
	assert_int_equal(last_of(ATREST_OP_GET)->offset, 6);
	assert_int_equal(last_of(ATREST_OP_GET)->length, 5);
	assert_int_equal(atrest_stat(&si, st, "job/a"), 0);
	atrest_stat_info_clear(&si);
	assert_int_equal(last_of(ATREST_OP_STAT)->dek, first_key);
	/* Streaming: one event each, at commit and at close. */
	assert_int_equal(atrest_writer_open(&w, st, "job/b", NULL), 0);
	assert_int_equal(atrest_writer_write(w, "0123456789", 10), 0);
	assert_int_equal(atrest_writer_write(w, "abc", 3), 0);
	assert_int_equal(atrest_writer_commit(w), 0);
	assert_int_equal(last_of(ATREST_OP_PUT)->bytes, 13);
	assert_string_equal(last_of(ATREST_OP_PUT)->name, "job/b");
	assert_int_equal(atrest_reader_open(&r, st, "job/b"), 0);
	assert_int_equal(atrest_reader_read(r, buf, 8, &got), 0);
	assert_int_equal(atrest_reader_read(r, buf, 8, &got), 0);
	atrest_reader_close(r);
	assert_int_equal(last_of(ATREST_OP_GET)->bytes, 13);
	assert_string_equal(last_of(ATREST_OP_GET)->name, "job/b");
	(void)dir;
}

static int count_cb(const atrest_list_entry *e, void *p)
{
	(void)e;
	(*(int *)p)++;
	return 0;
}

static void failure_events(atrest_store *st, const char *dir)
{
	void *out;
	size_t len;
	char p[512];
	uint8_t *b;
	size_t n;

	assert_int_equal(atrest_get(&out, &len, st, "nope"), ATREST_ENOTFOUND);
	assert_int_equal(last_of(ATREST_OP_GET)->outcome, ATREST_ENOTFOUND);
	/* A flipped byte: an integrity failure, recorded with its key. */
	snprintf(p, sizeof(p), "%s/job/a", dir);
	b = th_read_file(p, &n);
	b[n - 3] ^= 1;
	assert_int_equal(th_write_file(p, b, n), 0);
	free(b);
	assert_int_equal(atrest_get(&out, &len, st, "job/a"), ATREST_EINTEGRITY);
	assert_int_equal(last_of(ATREST_OP_GET)->outcome, ATREST_EINTEGRITY);
	assert_true(log_has_op(dir, "get", "outcome", "integrity"));
	assert_int_equal(atrest_put(st, "../bad", "x", 1, NULL), ATREST_EINVAL);
	assert_int_equal(last_of(ATREST_OP_PUT)->outcome, ATREST_EINVAL);
	/* The caller still sees its own error after the event was written. */
	assert_int_equal(atrest_error_last()->code, ATREST_EINVAL);
}

static void lifecycle_events(atrest_store *st, const char *dir)
{
	atrest_settings set = ATREST_SETTINGS_INIT;
	atrest_job_stats js;
	uint32_t id;
	int n = 0;

	assert_int_equal(atrest_put(st, "job/c", "c", 1, NULL), 0);
	assert_int_equal(atrest_list(st, "job/", count_cb, &n), 0);
	assert_int_equal(last_of(ATREST_OP_LIST)->count, (uint64_t)n);
	assert_string_equal(last_of(ATREST_OP_LIST)->name, "job/");
	assert_int_equal(atrest_rotate(&id, st), 0);
	assert_int_equal(last_of(ATREST_OP_ROTATE)->dek, id);
	assert_int_equal(atrest_reencrypt(&js, st, first_key, "job/c", NULL, NULL), 0);
	assert_int_equal(last_of(ATREST_OP_REENCRYPT)->count, 1);
	assert_true(log_has_op(dir, "reencrypt", "name", "job/c")); /* the object */
	assert_int_equal(atrest_key_expose(st, first_key), 0);
	assert_int_equal(last_of(ATREST_OP_EXPOSE)->dek, first_key);
	assert_int_equal(atrest_key_destroy(st, first_key, 1), 0);
	assert_int_equal(last_of(ATREST_OP_DESTROY)->dek, first_key);
	assert_int_equal(atrest_rewrap(st, NULL), 0);
	assert_non_null(last_of(ATREST_OP_REWRAP));
	assert_int_equal(atrest_store_settings(&set, st), 0);
	assert_int_equal(atrest_store_set_settings(st, &set), 0);
	assert_non_null(last_of(ATREST_OP_CONFIG));
	assert_int_equal(atrest_delete(st, "job/c"), 0);
	assert_string_equal(last_of(ATREST_OP_DELETE)->name, "job/c");
	/* A plaintext file migrated in place. */
	char p[512];
	snprintf(p, sizeof(p), "%s/plain", dir);
	assert_int_equal(th_write_file(p, "plain!", 6), 0);
	assert_int_equal(atrest_migrate(&js, st, "plain", NULL, NULL), 0);
	assert_int_equal(last_of(ATREST_OP_MIGRATE)->count, 1);
	assert_true(log_has_op(dir, "migrate", "name", "plain"));
}

static void server_events(atrest_store *st, const char *dir)
{
	atrest_event ev = ATREST_EVENT_INIT;
	char *text;
	size_t len;

	ev.op = ATREST_OP_AUTH;
	ev.outcome = ATREST_EKEY;
	ev.principal = "apikey:ab12";
	ev.detail = "bad API key";
	assert_int_equal(atrest_audit_record(st, &ev), 0);
	ev.outcome = 0;
	ev.op = ATREST_OP_APIKEY_CREATE;
	ev.name = "ab12";
	assert_int_equal(atrest_audit_record(st, &ev), 0);
	ev.op = ATREST_OP_APIKEY_REVOKE;
	assert_int_equal(atrest_audit_record(st, &ev), 0);
	ev.op = ATREST_OP_TENANT_ADD; /* the library's own: refused */
	assert_int_equal(atrest_audit_record(st, &ev), ATREST_EINVAL);
	ev.op = ATREST_OP_TENANT_SHRED;
	assert_int_equal(atrest_audit_record(st, &ev), ATREST_EINVAL);
	ev.op = ATREST_OP_PUT;
	assert_int_equal(atrest_audit_record(st, &ev), ATREST_EINVAL);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	assert_string_equal(last_of(ATREST_OP_TENANT_ADD)->name, "acme");
	assert_int_equal(atrest_tenant_shred(NULL, st, "acme"), 0);
	assert_string_equal(last_of(ATREST_OP_TENANT_SHRED)->name, "acme");
	assert_true(log_has_op(dir, "auth", "principal", "apikey:ab12"));
	assert_true(log_has_op(dir, "auth", "outcome", "key"));
	assert_true(log_has_op(dir, "apikey_create", "name", "ab12"));
	assert_true(log_has_op(dir, "apikey_revoke", "name", "ab12"));
	assert_true(log_has_op(dir, "tenant_add", "name", "acme"));
	assert_true(log_has_op(dir, "tenant_shred", "name", "acme"));
	assert_int_equal(atrest_metrics_write(&text, &len, st), 0);
	assert_non_null(strstr(text, "\natrest_auth_failures_total 1\n"));
	atrest_free(text);
}

/* Every kind of event, with its fields, in the observer and in the log. */
static void test_event_types(void **state)
{
	char dir[256];
	atrest_audit_report r;
	atrest_recorder *rec;
	uint8_t sealed[64];
	size_t sl;
	atrest_store *st;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	nevents = 0;
	st = open_store(dir);
	assert_non_null(last_of(ATREST_OP_OPEN));
	assert_non_null(last_of(ATREST_OP_KEY_WRAP));
	assert_string_equal(last_of(ATREST_OP_KEY_WRAP)->provider, "key");
	object_events(st, dir);
	assert_int_equal(atrest_principal_set("apikey:7f3a"), 0);
	failure_events(st, dir);
	assert_string_equal(last_of(ATREST_OP_GET)->principal, "apikey:7f3a");
	assert_int_equal(atrest_principal_set("has space"), ATREST_EINVAL);
	assert_int_equal(atrest_principal_set(NULL), 0);
	lifecycle_events(st, dir);
	assert_string_not_equal(last_of(ATREST_OP_DELETE)->principal, "apikey:7f3a");
	assert_int_equal(atrest_recorder_open(&rec, st, "table1"), 0);
	assert_int_equal(
		atrest_record_seal(rec, sealed, sizeof(sealed), &sl, "v", 1, NULL, 0), 0);
	atrest_recorder_close(rec);
	assert_string_equal(last_of(ATREST_OP_RECORDS)->name, "table1");
	server_events(st, dir);
	assert_int_equal(atrest_audit_flush(st), 0);
	assert_int_equal(verify_dir(dir, &r, st), 0);
	assert_true(r.genesis && r.heads >= 1 && r.lines >= nevents);
	atrest_store_close(st);
	/* A wrong master key: the failed open is recorded too. */
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	uint8_t other[32] = {9};
	o.path = dir;
	assert_int_equal(atrest_keyprov_raw(&o.key, other, 32), 0);
	assert_int_equal(atrest_store_open(&st, &o), ATREST_EKEY);
	assert_true(log_has_op(dir, "open", "outcome", "key"));
	th_rmrf(dir);
}

/* ---- tampering ---- */

typedef struct lines {
	char **v;
	size_t n;
} lines;

static void read_lines(lines *l, const char *path)
{
	size_t n;
	char *t = (char *)th_read_file(path, &n), *p, *nl;

	assert_non_null(t);
	l->v = calloc(n + 1, sizeof(char *));
	l->n = 0;
	for (p = t; p < t + n; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(t + n - p));
		assert_non_null(nl);
		l->v[l->n++] = strndup(p, (size_t)(nl - p + 1));
	}
	free(t);
}

static void write_lines(const lines *l, const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (size_t i = 0; i < l->n; i++)
		fputs(l->v[i], f);
	fclose(f);
}

static void free_lines(lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* Verify a log whose active file was replaced: expect failure at line. */
static void expect_bad(const char *dir, const char *seg, const lines *l, uint64_t line)
{
	atrest_audit_report r;
	char p[512];
	lines keep;

	snprintf(p, sizeof(p), "%s/.atrest/audit/%s", dir, seg);
	read_lines(&keep, p);
	write_lines(l, p);
	assert_int_equal(verify_dir(dir, &r, NULL), ATREST_EINTEGRITY);
	if (line)
		assert_int_equal(r.bad_line, line);
	assert_non_null(strstr(atrest_error_last()->message, seg));
	write_lines(&keep, p);
	free_lines(&keep);
	assert_int_equal(verify_dir(dir, &r, NULL), 0);
}

static void tamper_one_file(const char *dir, const char *seg)
{
	char p[512];
	lines l;
	char *t;

	snprintf(p, sizeof(p), "%s/.atrest/audit/%s", dir, seg);
	read_lines(&l, p);
	assert_true(l.n > 12);
	/* Edited: a byte of line 5 (its name, say). */
	t = l.v[4];
	l.v[4] = strdup(t);
	l.v[4][strlen(t) / 2] ^= 1;
	expect_bad(dir, seg, &l, 5);
	free(l.v[4]);
	l.v[4] = t;
	/* Dropped: line 6 goes; line 6 (was 7) no longer follows. */
	lines d = {malloc(l.n * sizeof(char *)), 0};
	for (size_t i = 0; i < l.n; i++)
		if (i != 5)
			d.v[d.n++] = l.v[i];
	expect_bad(dir, seg, &d, 6);
	/* Inserted: line 3 twice. */
	lines ins = {malloc((l.n + 1) * sizeof(char *)), 0};
	for (size_t i = 0; i < l.n; i++) {
		ins.v[ins.n++] = l.v[i];
		if (i == 2)
			ins.v[ins.n++] = l.v[i];
	}
	expect_bad(dir, seg, &ins, 4);
	/* Reordered: lines 7 and 8 swapped. */
	t = l.v[6];
	l.v[6] = l.v[7];
	l.v[7] = t;
	expect_bad(dir, seg, &l, 7);
	l.v[7] = l.v[6];
	l.v[6] = t;
	/* Truncated: the last line cut in half. */
	lines tr = {malloc(l.n * sizeof(char *)), l.n};
	memcpy(tr.v, l.v, l.n * sizeof(char *));
	tr.v[l.n - 1] = strndup(l.v[l.n - 1], strlen(l.v[l.n - 1]) / 2);
	expect_bad(dir, seg, &tr, l.n);
	free(tr.v[l.n - 1]);
	/* The last lines deleted (the final head and two events). */
	tr.n = l.n - 3;
	tr.v[l.n - 1] = l.v[l.n - 1];
	expect_bad(dir, seg, &tr, 0);
	free(tr.v);
	free(ins.v);
	free(d.v);
	free_lines(&l);
}

static void test_verify_tampering(void **state)
{
	char dir[256], a[512], p[1024], q[1024];
	atrest_audit_report r;
	atrest_store *st;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_opts(dir, NULL, 8192, 0, NULL);
	for (int i = 0; i < 60; i++) {
		char name[32];
		snprintf(name, sizeof(name), "obj/%d", i);
		assert_int_equal(atrest_put(st, name, name, strlen(name), NULL), 0);
	}
	atrest_store_close(st);
	assert_int_equal(verify_dir(dir, &r, NULL), 0);
	assert_true(r.files >= 3);
	print_message("intact: %llu lines, %llu heads, %llu files\n",
		(unsigned long long)r.lines, (unsigned long long)r.heads,
		(unsigned long long)r.files);
	tamper_one_file(dir, "audit-000002.jsonl");
	/* An old copy of a segment put back: the next one does not follow. */
	audit_dir(a, sizeof(a), dir);
	snprintf(p, sizeof(p), "%s/audit-000001.jsonl", a);
	snprintf(q, sizeof(q), "%s/old", dir);
	lines l;
	read_lines(&l, p);
	lines old = {l.v, l.n - 4};
	write_lines(&old, p);
	assert_int_equal(verify_dir(dir, &r, NULL), ATREST_EINTEGRITY);
	write_lines(&l, p);
	free_lines(&l);
	/* A middle segment removed. */
	snprintf(q, sizeof(q), "%s/audit-000002.jsonl", a);
	snprintf(p, sizeof(p), "%s/moved", dir);
	assert_int_equal(rename(q, p), 0);
	assert_int_equal(verify_dir(dir, &r, NULL), ATREST_EINTEGRITY);
	assert_non_null(strstr(atrest_error_last()->message, "missing"));
	assert_int_equal(rename(p, q), 0);
	/* Another key's signature is not accepted. */
	uint8_t pub[32] = {0};
	pub[0] = 0x3b;
	r = (atrest_audit_report)ATREST_AUDIT_REPORT_INIT;
	assert_true(atrest_audit_verify(&r, a, pub, 0) < 0);
	/* A head sequence known to exist, newer than the log's: replayed. */
	assert_int_equal(verify_dir(dir, &r, NULL), 0);
	assert_int_equal(atrest_audit_pubkey_unchecked(pub, dir), 0);
	atrest_audit_report r2 = ATREST_AUDIT_REPORT_INIT;
	assert_int_equal(
		atrest_audit_verify(&r2, a, pub, r.head_seq + 1), ATREST_EINTEGRITY);
	th_rmrf(dir);
}

/* A writer that died mid-line: the next one cuts it, records it, chains on. */
static void test_torn_line(void **state)
{
	char dir[256], p[512];
	atrest_audit_report r;
	atrest_store *st;
	int fd;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_store(dir);
	assert_int_equal(atrest_put(st, "a", "x", 1, NULL), 0);
	atrest_store_close(st);
	snprintf(p, sizeof(p), "%s/.atrest/audit/audit-000001.jsonl", dir);
	fd = open(p, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"seq\":99,\"time\":\"2026-", 24), 24);
	close(fd);
	assert_int_equal(verify_dir(dir, &r, NULL), ATREST_EINTEGRITY);
	st = open_store(dir);
	assert_int_equal(atrest_put(st, "b", "y", 1, NULL), 0);
	atrest_store_close(st);
	assert_int_equal(verify_dir(dir, &r, NULL), 0);
	assert_true(log_has_op(dir, "recovered", NULL, NULL));
	th_rmrf(dir);
}

typedef struct thr {
	atrest_store *st;
	int id;
} thr;

static void *put_many(void *arg)
{
	thr *t = arg;
	char name[32];

	for (int i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "t%d/%d", t->id, i);
		if (atrest_put(t->st, name, name, strlen(name), NULL) != 0)
			return (void *)1;
	}
	return NULL;
}

/* Threads of one handle and a second handle: one linear chain. */
static void test_threads_one_chain(void **state)
{
	char dir[256];
	pthread_t th[4];
	thr a[4];
	atrest_audit_report r;
	atrest_store *st, *st2;
	void *res;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_opts(dir, NULL, 65536, ATREST_STORE_NO_SYNC, NULL);
	st2 = open_opts(dir, NULL, 65536, ATREST_STORE_NO_SYNC, NULL);
	for (int i = 0; i < 4; i++) {
		a[i] = (thr){i < 2 ? st : st2, i};
		assert_int_equal(pthread_create(&th[i], NULL, put_many, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &res), 0);
		assert_null(res);
	}
	atrest_store_close(st);
	atrest_store_close(st2);
	assert_int_equal(verify_dir(dir, &r, NULL), 0);
	assert_true(r.lines >= 600);
	th_rmrf(dir);
}

/* The keys in keyring order (oldest first): out[0] is the first key. */
static int use_cb(const atrest_key_info *k, void *p)
{
	atrest_key_info *out = p;
	size_t i = 0;

	while (i < 7 && out[i].id)
		i++;
	out[i] = *k;
	return 0;
}

static void keys_with(atrest_store *st, int how, atrest_key_info out[8])
{
	memset(out, 0, 8 * sizeof(*out));
	assert_int_equal(atrest_keys_list(st, how, use_cb, out), 0);
}

static int opens;

/* The fs backend opens files with openat2, or openat where there is none. */
static long counting_openat2(int dirfd, const char *path, struct open_how *how, size_t n)
{
	__atomic_fetch_add(&opens, 1, __ATOMIC_RELAXED);
	return syscall(SYS_openat2, dirfd, path, how, n);
}

static int counting_openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	__atomic_fetch_add(&opens, 1, __ATOMIC_RELAXED);
	return openat(dirfd, path, flags, mode);
}

/* Per-key counts kept by puts, overwrites and deletes equal a scan. */
static void test_usage_counts(void **state)
{
	char dir[256], name[32];
	atrest_key_info inc[8], scan[8];
	atrest_job_stats js;
	atrest_store *st;
	int n = SANITIZED ? 3000 : 20000; /* 100,000: atrest bench, "keys with usage" */

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_opts(dir, "off", 0, ATREST_STORE_NO_SYNC, NULL);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "o/%d", i);
		assert_int_equal(atrest_put(st, name, name, strlen(name), NULL), 0);
	}
	assert_int_equal(atrest_rotate(NULL, st), 0);
	for (int i = 0; i < n / 3; i++) { /* overwrites move objects to key 2 */
		snprintf(name, sizeof(name), "o/%d", i);
		assert_int_equal(atrest_put(st, name, "longer value", 12, NULL), 0);
	}
	for (int i = n / 3; i < n / 2; i++) {
		snprintf(name, sizeof(name), "o/%d", i);
		assert_int_equal(atrest_delete(st, name), 0);
	}
	keys_with(st, ATREST_KEYS_USAGE, inc);
	assert_int_equal(atrest_reencrypt(&js, st, inc[0].id, "o/9", NULL, NULL), 0);
	keys_with(st, ATREST_KEYS_USAGE, inc);
	atrest_store_close(st);
	/* Another handle reads what this one merged at close. */
	st = open_opts(dir, "off", 0, ATREST_STORE_NO_SYNC, NULL);
	memset(scan, 0, sizeof(scan));
	assert_int_equal(atrest__fs_set_syscall("openat2", (void *)counting_openat2), 0);
	assert_int_equal(atrest__fs_set_syscall("openat", (void *)counting_openat), 0);
	opens = 0;
	keys_with(st, ATREST_KEYS_USAGE, inc);
	print_message("keys with usage of %d objects: %d files opened\n", n, opens);
	assert_true(opens < 10); /* no scan: the counts file and the keyring */
	assert_int_equal(atrest__fs_set_syscall("openat2", NULL), 0);
	assert_int_equal(atrest__fs_set_syscall("openat", NULL), 0);
	keys_with(st, ATREST_KEYS_SCAN, scan);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(inc[k].id, scan[k].id);
		assert_int_equal(inc[k].objects, scan[k].objects);
		assert_int_equal(inc[k].bytes, scan[k].bytes);
	}
	assert_int_equal(
		scan[0].objects + scan[1].objects, (uint64_t)(n - (n / 2 - n / 3)));
	atrest_store_close(st);
	th_rmrf(dir);
}

/* Metric values follow the operations done. */
static void test_metrics_values(void **state)
{
	char dir[256], want[128], *text;
	size_t len;
	void *out;
	uint32_t k1;
	atrest_store *st, *st2;
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_store(dir);
	for (int i = 0; i < 3; i++)
		assert_int_equal(atrest_put(st, "m", "abcd", 4, NULL), 0);
	assert_int_equal(atrest_get(&out, &len, st, "m"), 0);
	atrest_free(out);
	assert_int_equal(atrest_object_key_id(&k1, st, "m"), 0);
	assert_int_equal(atrest_get(&out, &len, st, "none"), ATREST_ENOTFOUND);
	assert_int_equal(atrest_rotate(NULL, st), 0);
	assert_int_equal(atrest_metrics_write(&text, &len, st), 0);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "\natrest_encryptions_total 3\n"));
	assert_non_null(strstr(text, "\natrest_decryptions_total 1\n"));
	assert_non_null(strstr(text, "\natrest_key_rotations_total 1\n"));
	assert_non_null(strstr(text,
		"atrest_operations_total{operation=\"get\",outcome=\"not_found\"} 1\n"));
	snprintf(want, sizeof(want), "atrest_sealed_bytes_total{data_key=\"%u\"} 12\n",
		k1);
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want),
		"atrest_data_key_objects{data_key=\"%u\",status=\"retired\"} 1\n", k1);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(
		text, "atrest_encryption_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(text, "atrest_build_info{version=\"" ATREST_VERSION "\""));
	assert_null(strstr(text, "name=")); /* no object names as labels */
	atrest_free(text);
	/* Two tenants in one exposition. */
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	o.path = dir;
	o.tenant = "acme";
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&st2, &o), 0);
	atrest_store *both[2] = {st, st2};
	assert_int_equal(atrest_metrics_write_many(&text, &len, both, 2), 0);
	assert_non_null(strstr(text, "atrest_encryptions_total{tenant=\"acme\"} 0\n"));
	assert_non_null(strstr(text, "atrest_encryptions_total{tenant=\"\"} 3\n"));
	atrest_free(text);
	atrest_store_close(st2);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* A tenant's handle, counted objects of its keyring alone. */
static void tenant_counts(atrest_store *t, uint64_t objects)
{
	atrest_key_info k[8];

	keys_with(t, ATREST_KEYS_USAGE, k);
	assert_int_equal(k[0].objects, objects);
	keys_with(t, ATREST_KEYS_SCAN, k);
	assert_int_equal(k[0].objects, objects);
}

static atrest_store *open_tenant(const char *dir, const char *name)
{
	atrest_store_options o = ATREST_STORE_OPTIONS_INIT;
	atrest_store *t;

	o.path = dir;
	o.tenant = name;
	o.observer = &OBSERVER;
	o.threads = 1;
	assert_int_equal(atrest_keyprov_raw(&o.key, KEY, 32), 0);
	assert_int_equal(atrest_store_open(&t, &o), 0);
	return t;
}

/*
 * Tenants write to the store's one trail, signed by the store's key (a
 * tenant with a master key of its own too); each keyring keeps its own
 * usage counts; tenant add and shred are events of their own.
 */
static const uint8_t NEWKEY[32] = {32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19,
	18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};

/*
 * Provider calls seen since event from: those about a data key (not the
 * store's check secret or audit key) name tenant t, at least one of kind
 * op among them; the store's own keyring's calls name none.
 */
static void provider_tenants(size_t from, const char *t, int op)
{
	size_t theirs = 0;

	for (size_t i = from; i < nevents; i++) {
		const seen *e = &events[i];
		if (e->op != ATREST_OP_KEY_UNWRAP && e->op != ATREST_OP_KEY_WRAP)
			continue;
		if (!strcmp(e->tenant, t))
			theirs += e->op == op;
		assert_true(!strcmp(e->tenant, t) || !strcmp(e->tenant, ""));
	}
	assert_true(theirs > 0);
}

static void test_tenants_one_trail(void **state)
{
	atrest_tenant_options to = ATREST_TENANT_OPTIONS_INIT;
	char dir[256], kf[512], hex[65], p[600];
	uint8_t pub[32], tpub[32];
	atrest_audit_report r;
	atrest_store *st, *acme, *own;
	atrest_key_info k[8];
	uint64_t removed = 0;
	atrest_keyprov *newkey;
	size_t from;
	struct stat sb;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	nevents = 0;
	st = open_store(dir);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), 0);
	assert_int_equal(last_of(ATREST_OP_TENANT_ADD)->outcome, 0);
	snprintf(kf, sizeof(kf), "%s/own.key", dir);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", (unsigned)(0xa0 ^ i));
	assert_int_equal(th_write_file(kf, hex, 64), 0);
	assert_int_equal(chmod(kf, 0600), 0);
	to.key_file = kf;
	assert_int_equal(atrest_tenant_add(st, "own", &to), 0);
	assert_int_equal(atrest_tenant_add(st, "acme", NULL), ATREST_EEXISTS);
	assert_int_equal(last_of(ATREST_OP_TENANT_ADD)->outcome, ATREST_EEXISTS);
	acme = open_tenant(dir, "acme");
	own = open_tenant(dir, "own");
	assert_int_equal(atrest_put(acme, "a", "acme!", 5, NULL), 0);
	assert_string_equal(last_of(ATREST_OP_PUT)->tenant, "acme");
	assert_int_equal(atrest_put(acme, "b", "acme!", 5, NULL), 0);
	assert_int_equal(atrest_put(own, "a", "own", 3, NULL), 0);
	assert_string_equal(last_of(ATREST_OP_PUT)->tenant, "own");
	assert_true(log_has_op(dir, "put", "tenant", "acme"));
	assert_true(log_has_op(dir, "put", "tenant", "own"));
	assert_string_equal(atrest_audit_location(acme), atrest_audit_location(st));
	assert_int_equal(atrest_audit_pubkey(pub, st), 0);
	assert_int_equal(atrest_audit_pubkey(tpub, own), 0);
	assert_memory_equal(pub, tpub, 32);
	tenant_counts(acme, 2);
	tenant_counts(own, 1);
	keys_with(st, ATREST_KEYS_USAGE, k); /* the store's keyring: none */
	assert_int_equal(k[0].objects, 0);
	atrest_store_close(acme);
	atrest_store_close(own);
	from = nevents;
	assert_int_equal(atrest_tenant_shred(&removed, st, "acme"), 0);
	provider_tenants(from, "acme", ATREST_OP_KEY_UNWRAP);
	assert_int_equal(removed, 2);
	assert_int_equal(last_of(ATREST_OP_TENANT_SHRED)->count, 2);
	assert_true(log_has_op(dir, "tenant_shred", "name", "acme"));
	snprintf(p, sizeof(p), "%s/.atrest/tenants/acme/usage.json", dir);
	assert_int_not_equal(stat(p, &sb), 0); /* its counts went too */
	snprintf(p, sizeof(p), "%s/.atrest/tenants/own/usage.json", dir);
	assert_int_equal(stat(p, &sb), 0);
	/* The store's rewrap moves beta's keyring: those calls name beta. */
	assert_int_equal(atrest_tenant_add(st, "beta", NULL), 0);
	assert_int_equal(atrest_keyprov_raw(&newkey, NEWKEY, 32), 0);
	from = nevents;
	assert_int_equal(atrest_rewrap(st, newkey), 0);
	provider_tenants(from, "beta", ATREST_OP_KEY_WRAP);
	atrest_store_close(st);
	assert_int_equal(verify_dir(dir, &r, NULL), 0);
	th_rmrf(dir);
}

/* A snapshot is one event from begin to commit or abort, beside its objects'. */
static void test_snapshot_events(void **state)
{
	atrest_snap_entry e = ATREST_SNAP_ENTRY_INIT;
	atrest_snap_stats so;
	atrest_snapshot *sn;
	atrest_snap *s;
	char dir[256], *text;
	atrest_store *st;
	size_t len;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	nevents = 0;
	st = open_store(dir);
	e.path = "f";
	e.type = ATREST_SNAP_FILE;
	e.mode = 0600;
	assert_int_equal(atrest_snap_begin(&s, st, "s/1", NULL), 0);
	assert_null(last_of(ATREST_OP_SNAPSHOT_PUT)); /* not before its end */
	assert_int_equal(atrest_snap_add_buffer(s, &e, "hello", 5), 0);
	atrest_snap_abort(s);
	assert_int_equal(last_of(ATREST_OP_SNAPSHOT_PUT)->outcome, ATREST_ERROR);
	assert_int_equal(last_of(ATREST_OP_SNAPSHOT_PUT)->count, 1);
	assert_int_equal(atrest_snap_begin(&s, st, "s/1", NULL), 0);
	assert_int_equal(atrest_snap_add_buffer(s, &e, "hello", 5), 0);
	assert_int_equal(atrest_snap_commit(NULL, s), 0);
	assert_int_equal(last_of(ATREST_OP_SNAPSHOT_PUT)->outcome, 0);
	assert_int_equal(last_of(ATREST_OP_SNAPSHOT_PUT)->bytes, 5);
	assert_string_equal(last_of(ATREST_OP_SNAPSHOT_PUT)->name, "s/1");
	assert_non_null(last_of(ATREST_OP_PUT)); /* its objects' own events */
	assert_int_equal(atrest_snap_begin(&s, st, "s/1", NULL), ATREST_EEXISTS);
	assert_int_equal(last_of(ATREST_OP_SNAPSHOT_PUT)->outcome, ATREST_EEXISTS);
	assert_int_equal(atrest_snapshot_open(&sn, st, "s/1", NULL), 0);
	assert_null(last_of(ATREST_OP_SNAPSHOT_OPEN)); /* only failures */
	assert_int_equal(atrest_snapshot_verify(&so, sn, NULL, NULL), 0);
	assert_int_equal(last_of(ATREST_OP_SNAPSHOT_VERIFY)->count, 1);
	assert_int_equal(last_of(ATREST_OP_SNAPSHOT_VERIFY)->bytes, 5);
	atrest_snapshot_close(sn);
	assert_int_equal(atrest_snapshot_open(&sn, st, "s/2", NULL), ATREST_ENOTFOUND);
	assert_string_equal(last_of(ATREST_OP_SNAPSHOT_OPEN)->name, "s/2");
	assert_int_equal(atrest_snapshot_remove(&so, st, "s/1"), 0);
	assert_int_equal(last_of(ATREST_OP_SNAPSHOT_DELETE)->count, 1);
	assert_int_equal(atrest_snapshot_remove(&so, st, "s/1"), ATREST_ENOTFOUND);
	assert_int_equal(last_of(ATREST_OP_SNAPSHOT_DELETE)->outcome, ATREST_ENOTFOUND);
	assert_int_equal(atrest_snapshot_gc(&so, st, NULL), 0);
	assert_int_equal(last_of(ATREST_OP_GC)->outcome, 0);
	assert_int_equal(atrest_audit_flush(st), 0);
	assert_true(log_has_op(dir, "snapshot_put", "name", "s/1"));
	assert_true(log_has_op(dir, "snapshot_verify", "count", "1"));
	assert_true(log_has_op(dir, "snapshot_delete", "outcome", "not_found"));
	assert_true(log_has_op(dir, "gc", "outcome", "ok"));
	assert_int_equal(atrest_metrics_write(&text, &len, st), 0);
	assert_non_null(strstr(text, "operation=\"snapshot_put\",outcome=\"ok\""));
	assert_non_null(strstr(text, "operation=\"gc\",outcome=\"ok\""));
	assert_non_null(
		strstr(text, "operation=\"snapshot_delete\",outcome=\"not_found\""));
	atrest_free(text);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* A reader's header facts and a range: still the reader's one event. */
static void test_reader_stat_range(void **state)
{
	atrest_meta_entry me = {"k", "v"};
	atrest_meta meta = {&me, 1};
	atrest_stat_info a = ATREST_STAT_INFO_INIT, b = ATREST_STAT_INFO_INIT;
	char dir[256], buf[64];
	atrest_reader *r;
	atrest_store *st;
	size_t got, before;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_store(dir);
	assert_int_equal(atrest_put(st, "o", "0123456789abcdef", 16, &meta), 0);
	assert_int_equal(atrest_stat(&a, st, "o"), 0);
	nevents = 0;
	assert_int_equal(atrest_reader_open(&r, st, "o"), 0);
	assert_int_equal(atrest_reader_stat(&b, r), 0);
	assert_int_equal(b.size, a.size);
	assert_int_equal(b.data_key_id, a.data_key_id);
	assert_int_equal(b.stored_size, a.stored_size);
	assert_int_equal(b.meta_count, 1);
	assert_string_equal(b.meta[0].value, "v");
	assert_int_equal(atrest_reader_range(r, 10, 7), ATREST_EINVAL);
	assert_int_equal(atrest_reader_range(r, 4, 6), 0);
	assert_int_equal(atrest_reader_read(r, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 6);
	assert_memory_equal(buf, "456789", 6);
	assert_int_equal(atrest_reader_read(r, buf, sizeof(buf), &got), 0);
	assert_int_equal(got, 0);
	before = nevents;
	atrest_reader_close(r);
	assert_int_equal(nevents, before + 1); /* one event, at close */
	assert_int_equal(events[before].op, ATREST_OP_GET);
	assert_true(events[before].ranged);
	assert_int_equal(events[before].offset, 4);
	assert_int_equal(events[before].length, 6);
	assert_int_equal(events[before].bytes, 6);
	assert_null(last_of(ATREST_OP_STAT));
	atrest_stat_info_clear(&a);
	atrest_stat_info_clear(&b);
	atrest_store_close(st);
	th_rmrf(dir);
}

/* Threads recording server events (the detail makes long lines). */
static void *record_many(void *p)
{
	atrest_store *st = p;
	atrest_event ev = ATREST_EVENT_INIT;
	char detail[301];
	intptr_t failed = 0;

	memset(detail, 'd', 300);
	detail[300] = '\0';
	ev.op = ATREST_OP_SERVER;
	ev.name = "bench";
	ev.detail = detail;
	for (int i = 0; i < 10; i++)
		failed += atrest_audit_record(st, &ev) < 0;
	return (void *)failed;
}

/*
 * Lines that cannot be written (the file size limit stands in for a full
 * disk): every event of a batch fails, none is half written, the chain
 * stays intact, and the next line records how many were lost.
 */
static void test_write_failure(void **state)
{
	char dir[256], seg[600];
	atrest_audit_report r;
	struct rlimit was, lim;
	pthread_t th[4];
	atrest_store *st;
	struct stat sb;
	void *failed;
	long total = 0;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_store(dir);
	assert_int_equal(atrest_put(st, "a", "x", 1, NULL), 0);
	assert_int_equal(atrest_audit_flush(st), 0);
	snprintf(seg, sizeof(seg), "%s/.atrest/audit/audit-000001.jsonl", dir);
	assert_int_equal(stat(seg, &sb), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
	lim = was;
	lim.rlim_cur = (rlim_t)sb.st_size + 50; /* part of one line fits */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, record_many, st), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &failed), 0);
		total += (long)(intptr_t)failed;
	}
	assert_int_equal(atrest_put(st, "b", "x", 1, NULL), ATREST_ERROR);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
	assert_int_equal(total, 40);
	assert_int_equal(stat(seg, &sb), 0);
	assert_true((rlim_t)sb.st_size < lim.rlim_cur); /* cut back: no torn line */
	assert_int_equal(atrest_put(st, "c", "x", 1, NULL), 0);
	assert_true(log_has_op(dir, "recovered", NULL, NULL));
	assert_int_equal(atrest_audit_flush(st), 0);
	assert_int_equal(verify_dir(dir, &r, st), 0);
	atrest_store_close(st);
	/* 40 records, the put's line before its commit and its failure's */
	assert_true(grep_log(dir, "42 events could not be written before"));
	th_rmrf(dir);
}

/* ATREST_AUDIT=off writes nothing; a directory elsewhere gets the log. */
static void test_audit_locations(void **state)
{
	char dir[256], other[512];
	atrest_audit_report r = ATREST_AUDIT_REPORT_INIT;
	struct stat sb;
	uint8_t pub[32];
	atrest_store *st;

	(void)state;
	th_tmpdir(dir, sizeof(dir));
	st = open_opts(dir, "off", 0, 0, NULL);
	assert_int_equal(atrest_put(st, "a", "x", 1, NULL), 0);
	assert_string_equal(atrest_audit_location(st), "off");
	atrest_store_close(st);
	snprintf(other, sizeof(other), "%s/.atrest/audit", dir);
	assert_int_not_equal(stat(other, &sb), 0);
	snprintf(other, sizeof(other), "%s/elsewhere", dir);
	st = open_opts(dir, other, 0, 0, NULL);
	assert_int_equal(atrest_put(st, "b", "x", 1, NULL), 0);
	assert_int_equal(atrest_audit_pubkey(pub, st), 0);
	atrest_store_close(st);
	assert_int_equal(atrest_audit_verify(&r, other, pub, 0), 0);
	th_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_types),
		cmocka_unit_test(test_verify_tampering),
		cmocka_unit_test(test_torn_line),
		cmocka_unit_test(test_threads_one_chain),
		cmocka_unit_test(test_usage_counts),
		cmocka_unit_test(test_metrics_values),
		cmocka_unit_test(test_audit_locations),
		cmocka_unit_test(test_tenants_one_trail),
		cmocka_unit_test(test_snapshot_events),
		cmocka_unit_test(test_reader_stat_range),
		cmocka_unit_test(test_write_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
