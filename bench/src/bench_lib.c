/*
 * The in-process measurements of atrest-bench (bench_lib.h): whole objects
 * sealed and opened in memory by the format layer on one or more threads,
 * bare EVP AEAD loops, one Argon2id derivation.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bench_lib.h"
#include "crypto.h"
#include "format.h"
#include "secret.h"

#define BENCH_THREADS_MAX 64

/* An object in memory, shared read-only by the threads of one pass. */
struct mem_obj {
	atrest__hdr h;
	uint8_t hb[ATREST__HDR_MAX];
	uint8_t dek[32];
	uint8_t *pt; /* len bytes plus one ciphertext segment of slack */
	uint8_t *ct; /* the sealed body */
	size_t len;
	uint64_t nseg;
};

/* One thread's share of a pass: segments [first, end). */
struct worker {
	pthread_t tid;
	struct mem_obj *m;
	const atrest__obj *master;
	uint64_t first, end;
	int open;
	int rc;
};

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_cipher(const bench_options *o)
{
	return o && o->cipher ? o->cipher : ATREST_CIPHER_AES_256_GCM;
}

static double bench_seconds(const bench_options *o)
{
	return o && o->seconds > 0 ? o->seconds : 1.0;
}

/*
 * Key the object: a fresh header (new salt) for sealing, as every put
 * makes, or the existing one checked for opening, as every get does.
 */
static int mem_key(atrest__obj *o, struct mem_obj *m, int open)
{
	if (!open) {
		m->h.meta_len = (uint32_t)atrest__cipher_ctlen(m->h.cipher, 0);
		GUARD(atrest__rand(m->h.salt, ATREST__SALT_LEN));
		GUARD(atrest__hdr_encode(m->hb, sizeof(m->hb), &m->h));
	}
	GUARD(atrest__obj_init(o, &m->h, m->hb, m->dek, sizeof(m->dek), open));
	m->h = o->hdr;
	return 0;
}

static int seg_one(atrest__obj *o, struct mem_obj *m, uint64_t i, int open)
{
	size_t seg = m->h.segment_size, pl, ptlen = 0;
	int last = i + 1 == m->nseg;
	uint8_t *pt = m->pt + i * seg, *ct = m->ct + i * o->seg_ct;

	pl = last ? m->len - (size_t)(i * seg) : seg;
	if (!open)
		return atrest__seg_seal(o, ct, i, last, pt, pl);
	GUARD(atrest__seg_open(
		o, pt, &ptlen, i, last, ct, atrest__cipher_ctlen(m->h.cipher, pl)));
	ENSURE(ptlen == pl, ATREST_EINTEGRITY, "bench: segment length");
	return 0;
}

/* Each worker clones the keyed object for its own context, as a pool does. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	atrest__obj o;

	w->rc = atrest__obj_clone(&o, w->master);
	for (uint64_t i = w->first; w->rc == 0 && i < w->end; i++)
		w->rc = seg_one(&o, w->m, i, w->open);
	atrest__obj_cleanup(&o);
	return NULL;
}

static int start_workers(struct worker *w, unsigned int threads)
{
	unsigned int t, started = 0;
	int rc = 0;

	for (t = 0; t < threads; t++, started++)
		if (pthread_create(&w[t].tid, NULL, worker_run, &w[t]) != 0)
			break;
	for (t = 0; t < started; t++) {
		pthread_join(w[t].tid, NULL);
		if (w[t].rc < 0 && rc == 0)
			rc = w[t].rc;
	}
	ENSURE(started == threads, ATREST_ERROR, "bench: cannot start a thread");
	return rc;
}

static int mem_pass(struct mem_obj *m, unsigned int threads, int open)
{
	struct worker w[BENCH_THREADS_MAX];
	atrest__obj master;
	int rc;

	memset(&master, 0, sizeof(master));
	rc = mem_key(&master, m, open);
	for (uint64_t i = 0; rc == 0 && threads == 1 && i < m->nseg; i++)
		rc = seg_one(&master, m, i, open);
	if (rc == 0 && threads > 1) {
		for (unsigned int t = 0; t < threads; t++) {
			w[t].m = m;
			w[t].master = &master;
			w[t].open = open;
			w[t].rc = 0;
			w[t].first = m->nseg * t / threads;
			w[t].end = m->nseg * (t + 1) / threads;
		}
		rc = start_workers(w, threads);
	}
	atrest__obj_cleanup(&master);
	return rc;
}

static int mem_setup(struct mem_obj *m, const bench_options *o, size_t bytes)
{
	size_t seg_ct;

	memset(m, 0, sizeof(*m));
	m->h.form = ATREST__FORM_OBJECT;
	m->h.cipher = (uint8_t)bench_cipher(o);
	m->h.segment_size =
		o && o->segment_size ? o->segment_size : ATREST_SEGMENT_SIZE_DEFAULT;
	m->h.dek_id = 1;
	strcpy(m->h.name, "bench");
	m->len = bytes;
	m->nseg = bytes == 0 ? 1 : (bytes + m->h.segment_size - 1) / m->h.segment_size;
	seg_ct = atrest__cipher_ctlen(m->h.cipher, m->h.segment_size);
	GUARD(atrest__rand(m->dek, sizeof(m->dek)));
	GUARD(atrest__rand(m->h.store_id, ATREST__STORE_ID_LEN));
	m->pt = malloc(bytes + seg_ct);
	m->ct = malloc(m->nseg * seg_ct);
	ENSURE(m->pt && m->ct, ATREST_ERROR, "bench: out of memory");
	/* Touch every page now so that page faults are not timed. */
	memset(m->pt, 0x5a, bytes + seg_ct);
	memset(m->ct, 0, m->nseg * seg_ct);
	return 0;
}

static void mem_free(struct mem_obj *m)
{
	atrest__wipe(m->dek, sizeof(m->dek));
	free(m->pt);
	free(m->ct);
}

int bench_lib_object(double *out_gbps, const bench_options *opts, size_t bytes, int open)
{
	unsigned int threads = opts && opts->threads ? opts->threads : 1;
	double limit = bench_seconds(opts), t0, el;
	struct mem_obj m;
	uint64_t passes = 0;
	int rc;

	*out_gbps = 0;
	ENSURE(threads <= BENCH_THREADS_MAX, ATREST_EINVAL, "bench: too many threads");
	GUARD(atrest__crypto_init());
	GUARD(atrest__cipher_allowed(bench_cipher(opts)));
	rc = mem_setup(&m, opts, bytes);
	/* The warm-up pass also makes the ciphertext an open pass reads. */
	if (rc == 0)
		rc = mem_pass(&m, threads, 0);
	t0 = now_sec();
	el = 0;
	while (rc == 0 && (el < limit || passes < 2)) {
		rc = mem_pass(&m, threads, open);
		passes++;
		el = now_sec() - t0;
	}
	if (rc == 0)
		*out_gbps = (double)bytes * (double)passes / el / 1e9;
	mem_free(&m);
	return rc;
}

/* One reused EVP context and the buffers of a bare AEAD loop. */
struct aead_loop {
	EVP_CIPHER_CTX *ctx;
	uint8_t *in, *out;
	size_t len;
	uint8_t nonce[ATREST_NONCE_LEN];
	uint8_t tag[ATREST_AEAD_TAG_LEN];
};

static const char *evp_name(int cipher)
{
	switch (cipher) {
	case ATREST_CIPHER_AES_256_GCM:
		return "AES-256-GCM";
	case ATREST_CIPHER_CHACHA20_POLY1305:
		return "ChaCha20-Poly1305";
	default:
		return NULL;
	}
}

/* One seal (new nonce each time) or one open of the same ciphertext. */
static int aead_call(struct aead_loop *l, int open)
{
	int n = 0, fin = 0;

	if (!open)
		for (int i = 0; i < 8 && ++l->nonce[i] == 0; i++)
			;
	GUARD_OSSL(EVP_CipherInit_ex(l->ctx, NULL, NULL, NULL, l->nonce, !open),
		ATREST_ERROR, "bench: EVP init");
	if (open)
		GUARD_OSSL(EVP_CIPHER_CTX_ctrl(
				   l->ctx, EVP_CTRL_AEAD_SET_TAG, sizeof(l->tag), l->tag),
			ATREST_ERROR, "bench: set tag");
	GUARD_OSSL(EVP_CipherUpdate(l->ctx, l->out, &n, l->in, (int)l->len), ATREST_ERROR,
		"bench: EVP update");
	GUARD_OSSL(EVP_CipherFinal_ex(l->ctx, l->out + n, &fin), ATREST_EINTEGRITY,
		"bench: tag mismatch");
	if (!open)
		GUARD_OSSL(EVP_CIPHER_CTX_ctrl(
				   l->ctx, EVP_CTRL_AEAD_GET_TAG, sizeof(l->tag), l->tag),
			ATREST_ERROR, "bench: get tag");
	return 0;
}

static int aead_setup(struct aead_loop *l, int cipher, size_t len)
{
	uint8_t key[32];
	EVP_CIPHER *c;
	int rc;

	ENSURE(evp_name(cipher), ATREST_EINVAL, "bench: not an AEAD cipher");
	ENSURE(len <= (size_t)1 << 30, ATREST_EINVAL, "bench: length too large");
	c = EVP_CIPHER_fetch(NULL, evp_name(cipher), NULL);
	ENSURE(c, ATREST_EUNAVAILABLE, "bench: %s unavailable", evp_name(cipher));
	l->ctx = EVP_CIPHER_CTX_new();
	l->in = calloc(1, len + 16);
	l->out = calloc(1, len + 16);
	l->len = len;
	rc = l->ctx && l->in && l->out
		? atrest__rand(key, sizeof(key))
		: atrest__error(ATREST_ERROR, "bench: out of memory");
	if (rc == 0 && EVP_CipherInit_ex(l->ctx, c, NULL, key, NULL, 1) != 1)
		rc = atrest__error_ossl(ATREST_ERROR, "bench: EVP key setup");
	atrest__wipe(key, sizeof(key));
	EVP_CIPHER_free(c);
	return rc;
}

static void aead_free(struct aead_loop *l)
{
	EVP_CIPHER_CTX_free(l->ctx);
	free(l->in);
	free(l->out);
}

int bench_lib_aead(double *out_ops, const bench_options *opts, size_t len, int open)
{
	double limit = bench_seconds(opts), t0, el = 0;
	struct aead_loop l;
	uint64_t calls = 0;
	int rc;

	*out_ops = 0;
	memset(&l, 0, sizeof(l));
	GUARD(atrest__crypto_init());
	rc = aead_setup(&l, bench_cipher(opts), len);
	/* Warm up; an open loop then opens the last ciphertext sealed. */
	for (int i = 0; rc == 0 && i < 64; i++)
		rc = aead_call(&l, 0);
	if (rc == 0 && open)
		memcpy(l.in, l.out, len);
	t0 = now_sec();
	while (rc == 0 && el < limit) {
		for (int i = 0; rc == 0 && i < 64; i++)
			rc = aead_call(&l, open);
		calls += 64;
		el = now_sec() - t0;
	}
	if (rc == 0)
		*out_ops = (double)calls / el;
	aead_free(&l);
	return rc;
}

int bench_lib_kdf(double *out_seconds)
{
	uint8_t out[32], salt[16];
	double t0;
	int rc;

	*out_seconds = 0;
	GUARD(atrest__crypto_init());
	GUARD(atrest__rand(salt, sizeof(salt)));
	t0 = now_sec();
	rc = atrest__argon2id(out, sizeof(out), "bench passphrase", 16, salt,
		sizeof(salt), 3, 65536, 4);
	*out_seconds = now_sec() - t0;
	atrest__wipe(out, sizeof(out));
	return rc;
}

const char *bench_openssl_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}
