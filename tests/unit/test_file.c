/*
 * Standalone files (form 2): round trips through the incremental API and
 * the pipelined fd pumps, every tampering an integrity failure, wrong keys a
 * key error, passphrases, and the committed vectors (tests/vectors/files.txt).
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "format.h"
#include "helpers.h"
#include "keyring.h"

#define SEG 1024

static const int CIPHERS[] = {ATREST_CIPHER_AES_256_GCM, ATREST_CIPHER_CHACHA20_POLY1305,
	ATREST_CIPHER_AES_256_CBC_HMAC_SHA256};

/* ---- memory sources and sinks */

typedef struct membuf {
	uint8_t *p;
	size_t len, cap, off;
	size_t chunk; /* most bytes per read (0: all) */
} membuf;

static int mem_write(const void *buf, size_t len, void *payload)
{
	membuf *m = payload;

	if (len == 0)
		return 0;
	if (m->len + len > m->cap) {
		m->cap = (m->len + len) * 2 + 64;
		m->p = realloc(m->p, m->cap);
		assert_non_null(m->p);
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static int mem_read(void *buf, size_t cap, size_t *got, void *payload)
{
	membuf *m = payload;
	size_t n = m->len - m->off;

	if (n > cap)
		n = cap;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	if (n)
		memcpy(buf, m->p + m->off, n);
	m->off += n;
	*got = n;
	return 0;
}

static atrest_keyprov *raw_key(uint64_t seed)
{
	uint8_t k[32];
	atrest_keyprov *kp;

	th_fill(k, sizeof(k), seed);
	assert_int_equal(atrest_keyprov_raw(&kp, k, sizeof(k)), 0);
	return kp;
}

static atrest_file_options opts_for(int cipher, uint32_t seg)
{
	atrest_file_options o = ATREST_FILE_OPTIONS_INIT;

	o.cipher = cipher;
	o.segment_size = seg;
	return o;
}

/* Encrypt pt in chunks of step bytes through the incremental API. */
static membuf enc_buf(atrest_keyprov *kp, const atrest_file_options *o, const uint8_t *pt,
	size_t len, size_t step)
{
	atrest_file_encryptor *e;
	membuf out = {0};

	assert_int_equal(atrest_file_encryptor_new(&e, kp, o, mem_write, &out), 0);
	for (size_t off = 0; off < len; off += step)
		assert_int_equal(atrest_file_encryptor_write(e, pt + off,
					 len - off < step ? len - off : step),
			0);
	assert_int_equal(atrest_file_encryptor_finish(e), 0);
	return out;
}

/* Decrypt a whole buffer; the code, and the plaintext in *out on success. */
static int dec_buf(
	atrest_keyprov *kp, const uint8_t *file, size_t len, membuf *out, size_t chunk)
{
	membuf in = {(uint8_t *)file, len, len, 0, chunk};
	atrest_file_decryptor *d;
	uint8_t buf[70000];
	size_t got;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = atrest_file_decryptor_new(&d, kp, mem_read, &in);
	if (rc < 0)
		return rc;
	do {
		rc = atrest_file_decryptor_read(d, buf, sizeof(buf), &got);
		if (rc == 0)
			mem_write(buf, got, out);
	} while (rc == 0 && got > 0);
	atrest_file_decryptor_free(d);
	if (rc < 0) {
		free(out->p);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

static int dec_rc(atrest_keyprov *kp, const uint8_t *file, size_t len)
{
	membuf out;
	int rc = dec_buf(kp, file, len, &out, 0);

	free(out.p);
	return rc;
}

/* ---- fd pumps over temp files */

static char g_dir[PATH_MAX];

static int tmp_fd(const char *name, const void *data, size_t len)
{
	char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static uint8_t *fd_slurp(int fd, size_t *len)
{
	off_t end = lseek(fd, 0, SEEK_END);
	uint8_t *p = malloc((size_t)end + 1);

	assert_non_null(p);
	assert_int_equal(pread(fd, p, (size_t)end, 0), end);
	*len = (size_t)end;
	return p;
}

/* ---- round trips */

static void round_trip(int cipher, uint32_t seg, size_t size, uint64_t seed)
{
	atrest_keyprov *kp = raw_key(1);
	atrest_file_options o = opts_for(cipher, seg);
	uint8_t *pt = malloc(size + 1), *file, *back;
	size_t flen, blen;
	int in, mid, out;
	membuf enc, dec;

	th_fill(pt, size, seed);
	/* Incremental encryptor, pipelined decryptor. */
	enc = enc_buf(kp, &o, pt, size, 1000);
	in = tmp_fd("enc", enc.p, enc.len);
	out = tmp_fd("dec", NULL, 0);
	assert_int_equal(atrest_file_decrypt_fd(kp, NULL, in, out), 0);
	back = fd_slurp(out, &blen);
	assert_int_equal(blen, size);
	assert_memory_equal(back, pt, size);
	free(back);
	close(in);
	close(out);
	/* Pipelined encryptor, incremental decryptor with short reads. */
	in = tmp_fd("pt", pt, size);
	mid = tmp_fd("ct", NULL, 0);
	assert_int_equal(atrest_file_encrypt_fd(kp, &o, in, mid), 0);
	file = fd_slurp(mid, &flen);
	assert_int_equal(flen, enc.len); /* same layout, other key and salt */
	assert_int_equal(dec_buf(kp, file, flen, &dec, 777), 0);
	assert_int_equal(dec.len, size);
	assert_memory_equal(dec.p, pt, size);
	close(in);
	close(mid);
	free(file);
	free(dec.p);
	free(enc.p);
	free(pt);
	atrest_keyprov_free(kp);
}

static void test_round_trips(void **state)
{
	const size_t batch = 2u << 20; /* the pipeline's batch */
	const size_t small[] = {
		0, 1, 15, 16, 17, SEG - 1, SEG, SEG + 1, 2 * SEG, 3 * SEG + 500};
	const size_t big[] = {65535, 65536, 65537, batch - 1, batch, batch + 1, 3 * batch,
		5 * batch + 12345};

	(void)state;
	for (size_t c = 0; c < 3; c++) {
		for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++)
			round_trip(CIPHERS[c], SEG, small[i], i);
		for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
			round_trip(CIPHERS[c], 0, big[i], 100 + i);
	}
	/* Segments larger than a batch. */
	round_trip(ATREST_CIPHER_AES_256_GCM, 4u << 20, 9u << 20, 7);
}

static void test_metadata(void **state)
{
	atrest_meta_entry e[] = {{"job", "42"}, {"host", "db-1"}};
	atrest_meta m = {e, 2};
	atrest_file_options o = ATREST_FILE_OPTIONS_INIT;
	atrest_keyprov *kp = raw_key(2);
	const atrest_meta_entry *got;
	atrest_file_decryptor *d;
	membuf enc, in;
	size_t n;

	(void)state;
	o.meta = &m;
	enc = enc_buf(kp, &o, (const uint8_t *)"x", 1, 1);
	in = (membuf){enc.p, enc.len, enc.len, 0, 0};
	assert_int_equal(atrest_file_decryptor_new(&d, kp, mem_read, &in), 0);
	atrest_file_decryptor_meta(d, &got, &n);
	assert_int_equal(n, 2);
	assert_string_equal(got[1].key, "host");
	assert_string_equal(got[1].value, "db-1");
	assert_memory_equal(atrest_file_decryptor_key_id(d), "fp:", 3);
	atrest_file_decryptor_free(d);
	free(enc.p);
	atrest_keyprov_free(kp);
}

/* ---- tampering */

static void test_every_byte(void **state)
{
	atrest_keyprov *kp = raw_key(3);
	uint8_t pt[2 * SEG + 100];

	(void)state;
	th_fill(pt, sizeof(pt), 4);
	for (size_t c = 0; c < 3; c++) {
		atrest_file_options o = opts_for(CIPHERS[c], SEG);
		membuf f = enc_buf(kp, &o, pt, sizeof(pt), 333);

		/* Bits 0 and 7 of every byte; under the sanitizers (ten times
		 * slower) one of the two, alternating, still every byte. */
		for (size_t i = 0; i < f.len; i++)
			for (int bit = SANITIZED ? (int)(i % 2) * 7 : 0; bit < 8;
				bit += SANITIZED ? 8 : 7) {
				f.p[i] ^= (uint8_t)(1u << bit);
				assert_int_equal(
					dec_rc(kp, f.p, f.len), ATREST_EINTEGRITY);
				f.p[i] ^= (uint8_t)(1u << bit);
			}
		assert_int_equal(dec_rc(kp, f.p, f.len), 0);
		free(f.p);
	}
	atrest_keyprov_free(kp);
}

static void test_truncate_extend(void **state)
{
	atrest_keyprov *kp = raw_key(5);
	uint8_t pt[3 * SEG];

	(void)state;
	th_fill(pt, sizeof(pt), 6);
	for (size_t c = 0; c < 3; c++) {
		atrest_file_options o = opts_for(CIPHERS[c], SEG);
		membuf f = enc_buf(kp, &o, pt, sizeof(pt), sizeof(pt));
		uint8_t *big = calloc(1, f.len + 2 * SEG + 100);

		for (size_t cut = 0; cut < f.len; cut++)
			assert_int_equal(dec_rc(kp, f.p, cut), ATREST_EINTEGRITY);
		memcpy(big, f.p, f.len);
		for (size_t ext = 1; ext <= 100; ext++)
			assert_int_equal(dec_rc(kp, big, f.len + ext), ATREST_EINTEGRITY);
		/* A whole extra copy of the last segment. */
		size_t last = atrest__cipher_ctlen(CIPHERS[c], SEG);
		memcpy(big + f.len, f.p + f.len - last, last);
		assert_int_equal(dec_rc(kp, big, f.len + last), ATREST_EINTEGRITY);
		free(big);
		free(f.p);
	}
	atrest_keyprov_free(kp);
}

/* A failing pump writes a prefix of the plaintext, never damaged bytes. */
static void test_pump_failure_prefix(void **state)
{
	atrest_keyprov *kp = raw_key(7);
	size_t size = 7u << 20, flen, blen;
	uint8_t *pt = malloc(size), *file, *back;
	int in, ct, out;

	(void)state;
	th_fill(pt, size, 8);
	in = tmp_fd("pt", pt, size);
	ct = tmp_fd("ct", NULL, 0);
	assert_int_equal(atrest_file_encrypt_fd(kp, NULL, in, ct), 0);
	file = fd_slurp(ct, &flen);
	file[flen - (3u << 20)] ^= 1;
	close(ct);
	ct = tmp_fd("ct", file, flen);
	out = tmp_fd("out", NULL, 0);
	assert_int_equal(atrest_file_decrypt_fd(kp, NULL, ct, out), ATREST_EINTEGRITY);
	back = fd_slurp(out, &blen);
	/* The damaged segment is in the third 2 MiB batch: at most two went out. */
	assert_true(blen <= (4u << 20));
	assert_memory_equal(back, pt, blen);
	close(in);
	close(ct);
	close(out);
	free(back);
	free(file);
	free(pt);
	atrest_keyprov_free(kp);
}

/* Feeds a pipe, then keeps it open without writing more. */
typedef struct feeder {
	int fd;
	const uint8_t *buf;
	size_t len;
	int release; /* the test's pipe write end closes only when set */
} feeder;

static void *feed(void *arg)
{
	feeder *f = arg;

	for (size_t off = 0; off < f->len;) {
		ssize_t n = write(f->fd, f->buf + off, f->len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	while (!__atomic_load_n(&f->release, __ATOMIC_ACQUIRE))
		usleep(1000);
	close(f->fd);
	return NULL;
}

/*
 * A stage fails while the reader waits on a pipe that never ends: decrypt
 * must return (the reader leaves on its own), not hang.
 */
static void test_failure_on_open_pipe(void **state)
{
	atrest_keyprov *kp = raw_key(9);
	size_t size = 6u << 20;
	uint8_t *pt = malloc(size);
	int fds[2], out;
	pthread_t t;

	(void)state;
	th_fill(pt, size, 10);
	membuf f = enc_buf(kp, NULL, pt, size, size);
	f.p[f.len / 4] ^= 1; /* in the first batch */
	assert_int_equal(pipe(fds), 0);
	feeder fd = {fds[1], f.p, f.len / 2, 0};
	pthread_create(&t, NULL, feed, &fd);
	out = tmp_fd("open-pipe-out", NULL, 0);
	assert_int_equal(
		atrest_file_decrypt_fd(kp, NULL, fds[0], out), ATREST_EINTEGRITY);
	/* The feeder may still be blocked writing: let its write fail. */
	signal(SIGPIPE, SIG_IGN);
	close(fds[0]);
	__atomic_store_n(&fd.release, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	close(out);
	free(f.p);
	free(pt);
	atrest_keyprov_free(kp);
}

/* ---- keys */

static void test_wrong_key(void **state)
{
	atrest_keyprov *kp = raw_key(9), *other = raw_key(10), *text;
	char hex[65], want[32];
	uint8_t k[32];
	membuf f, out;
	const atrest_error *e;

	(void)state;
	f = enc_buf(kp, NULL, (const uint8_t *)"secret", 6, 6);
	assert_int_equal(dec_rc(other, f.p, f.len), ATREST_EKEY);
	e = atrest_error_last();
	assert_non_null(e);
	/* The message names the key the file wants. */
	assert_int_equal(atrest__kp_key_id(kp, want, sizeof(want)), 0);
	assert_memory_equal(want, "fp:", 3);
	assert_non_null(strstr(e->message, want));
	assert_non_null(strstr(e->message, "wrong master key"));
	/* The same key by another route (text instead of raw) opens it. */
	th_fill(k, sizeof(k), 9);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", k[i]);
	assert_int_equal(atrest_keyprov_text(&text, hex, 64), 0);
	assert_int_equal(dec_buf(text, f.p, f.len, &out, 0), 0);
	assert_int_equal(out.len, 6);
	assert_memory_equal(out.p, "secret", 6);
	free(out.p);
	free(f.p);
	atrest_keyprov_free(text);
	atrest_keyprov_free(other);
	atrest_keyprov_free(kp);
}

static void test_passphrase(void **state)
{
	atrest_keyprov *kp, *again, *wrong, *raw = raw_key(11);
	membuf f, out;

	(void)state;
	setenv("ATREST_ARGON2_TEST_MEMORY_KIB", "8192", 1);
	assert_int_equal(atrest_keyprov_passphrase(&kp, "correct horse", 13), 0);
	assert_int_equal(atrest_keyprov_passphrase(&again, "correct horse", 13), 0);
	assert_int_equal(atrest_keyprov_passphrase(&wrong, "battery staple", 14), 0);
	f = enc_buf(kp, NULL, (const uint8_t *)"payload", 7, 7);
	assert_non_null(memmem(f.p, f.len, "argon2id", 8));
	assert_int_equal(dec_buf(again, f.p, f.len, &out, 0), 0);
	assert_int_equal(out.len, 7);
	assert_memory_equal(out.p, "payload", 7);
	free(out.p);
	assert_int_equal(dec_rc(wrong, f.p, f.len), ATREST_EKEY);
	assert_int_equal(dec_rc(raw, f.p, f.len), ATREST_EKEY);
	/* A raw-key file given a passphrase. */
	free(f.p);
	f = enc_buf(raw, NULL, (const uint8_t *)"payload", 7, 7);
	assert_int_equal(dec_rc(wrong, f.p, f.len), ATREST_EKEY);
	free(f.p);
	unsetenv("ATREST_ARGON2_TEST_MEMORY_KIB");
	atrest_keyprov_free(kp);
	atrest_keyprov_free(again);
	atrest_keyprov_free(wrong);
	atrest_keyprov_free(raw);
}

/*
 * A file's passphrase parameters, edited: malformed is an integrity
 * failure about the file (never "keyring"); costlier than atrest writes is
 * refused before any work.
 */
static void test_passphrase_params(void **state)
{
	static const struct {
		const char *to;
		int rc;
		const char *says;
	} edits[] = {
		{"\"t\":0", ATREST_EINTEGRITY, "standalone file header modified"},
		{"\"t\":9", ATREST_ETOOBIG, "ATREST_KDF_ALLOW_COSTLY"},
		{"\"t\":3", 0, NULL},
	};
	atrest_keyprov *kp;
	membuf f;
	uint8_t *t;

	(void)state;
	setenv("ATREST_ARGON2_TEST_MEMORY_KIB", "8192", 1);
	assert_int_equal(atrest_keyprov_passphrase(&kp, "correct horse", 13), 0);
	f = enc_buf(kp, NULL, (const uint8_t *)"payload", 7, 7);
	t = memmem(f.p, f.len, "\"t\":3", 5);
	assert_non_null(t);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		memcpy(t, edits[i].to, 5);
		assert_int_equal(dec_rc(kp, f.p, f.len), edits[i].rc);
		if (edits[i].says) {
			assert_non_null(
				strstr(atrest_error_last()->message, edits[i].says));
			assert_null(strstr(atrest_error_last()->message, "keyring"));
		}
	}
	free(f.p);
	atrest_keyprov_free(kp);
	unsetenv("ATREST_ARGON2_TEST_MEMORY_KIB");
}

static void test_not_a_file(void **state)
{
	atrest_keyprov *kp = raw_key(12);
	uint8_t dek[32], *obj;
	atrest__hdr h;
	size_t len;

	(void)state;
	memset(&h, 0, sizeof(h));
	h.form = ATREST__FORM_OBJECT;
	h.cipher = ATREST_CIPHER_AES_256_GCM;
	h.segment_size = SEG;
	h.dek_id = 1;
	th_fill(h.store_id, sizeof(h.store_id), 1);
	strcpy(h.name, "a/b");
	th_fill(dek, sizeof(dek), 13);
	assert_int_equal(atrest__obj_seal_buf(&obj, &len, &h, dek,
				 (const uint8_t *)"\0\0", 2, (const uint8_t *)"hi", 2),
		0);
	assert_int_equal(dec_rc(kp, obj, len), ATREST_EINTEGRITY);
	assert_non_null(strstr(
		atrest_error_last()->message, "a store object, not a standalone file"));
	assert_int_equal(
		dec_rc(kp, (const uint8_t *)"plain text", 10), ATREST_EINTEGRITY);
	assert_int_equal(dec_rc(kp, (const uint8_t *)"", 0), ATREST_EINTEGRITY);
	free(obj);
	atrest_keyprov_free(kp);
}

static void test_bad_options(void **state)
{
	atrest_keyprov *kp = raw_key(14);
	atrest_file_options o = opts_for(99, 0);
	atrest_file_encryptor *e;
	membuf out = {0};

	(void)state;
	assert_int_equal(
		atrest_file_encryptor_new(&e, kp, &o, mem_write, &out), ATREST_EINVAL);
	o = opts_for(0, 100);
	assert_int_equal(
		atrest_file_encryptor_new(&e, kp, &o, mem_write, &out), ATREST_EINVAL);
	o = opts_for(0, 0);
	o.version = 99;
	assert_int_equal(
		atrest_file_encryptor_new(&e, kp, &o, mem_write, &out), ATREST_EINVAL);
	assert_int_equal(
		atrest_file_encryptor_new(&e, NULL, NULL, mem_write, &out), ATREST_EKEY);
	free(out.p);
	atrest_keyprov_free(kp);
}

/* ---- committed vectors */

/* The extension of FORMAT.md 7.1, written here from the document. */
static size_t ext_bytes(uint8_t *x, const char *kind, const char *key_id,
	const char *params, const uint8_t *wrapped, size_t wlen)
{
	size_t k = strlen(kind), i = strlen(key_id), p = strlen(params), n = 0;

	x[n++] = 1;
	x[n++] = (uint8_t)k;
	memcpy(x + n, kind, k);
	n += k;
	x[n++] = (uint8_t)i;
	memcpy(x + n, key_id, i);
	n += i;
	x[n++] = (uint8_t)p;
	x[n++] = (uint8_t)(p >> 8);
	memcpy(x + n, params, p);
	n += p;
	x[n++] = (uint8_t)wlen;
	x[n++] = (uint8_t)(wlen >> 8);
	memcpy(x + n, wrapped, wlen);
	return n + wlen;
}

static void wrap_aad(uint8_t aad[46], const uint8_t *salt)
{
	memcpy(aad, "atrest/v1 file", 14);
	memcpy(aad + 14, salt, 32);
}

typedef struct fvec {
	int cipher;
	uint32_t seg;
	char *fields[16];
} fvec;

static const char *const NAMES[] = {"master_key", "passphrase", "kind", "key_id",
	"params", "data_key", "salt", "wrapped_key", "extension", "metadata", "plaintext",
	"file", NULL};
enum {
	F_MASTER,
	F_PASS,
	F_KIND,
	F_KEY_ID,
	F_PARAMS,
	F_DEK,
	F_SALT,
	F_WRAPPED,
	F_EXT,
	F_META,
	F_PT,
	F_FILE
};

/* Seal a form-2 file with everything fixed (no randomness). */
static uint8_t *seal_fixed(size_t *len, int cipher, uint32_t seg, const uint8_t *dek,
	const uint8_t *salt, const uint8_t *ext, size_t el, const uint8_t *meta,
	size_t ml, const uint8_t *pt, size_t pl)
{
	atrest__hdr h;
	uint8_t *out;

	memset(&h, 0, sizeof(h));
	h.form = ATREST__FORM_FILE;
	h.cipher = (uint8_t)cipher;
	h.segment_size = seg;
	memcpy(h.salt, salt, 32);
	memcpy(h.ext, ext, el);
	h.ext_len = (uint16_t)el;
	assert_int_equal(atrest__obj_seal_buf(&out, len, &h, dek, meta, ml, pt, pl), 0);
	return out;
}

static atrest_keyprov *vec_key(const fvec *v)
{
	atrest_keyprov *kp;
	size_t n;

	if (v->fields[F_PASS]) {
		assert_int_equal(atrest_keyprov_passphrase(&kp, v->fields[F_PASS],
					 strlen(v->fields[F_PASS])),
			0);
	} else {
		uint8_t *mk = th_unhex(v->fields[F_MASTER], &n);
		assert_int_equal(atrest_keyprov_raw(&kp, mk, n), 0);
		free(mk);
	}
	return kp;
}

static void check_vector(const fvec *v)
{
	size_t n, el, wl, ml, pl, fl, len;
	uint8_t *dek = th_unhex(v->fields[F_DEK], &n),
		*salt = th_unhex(v->fields[F_SALT], &n);
	uint8_t *wrapped = th_unhex(v->fields[F_WRAPPED], &wl);
	uint8_t *ext = th_unhex(v->fields[F_EXT], &el),
		*meta = th_unhex(v->fields[F_META], &ml);
	uint8_t *pt = th_unhex(v->fields[F_PT], &pl),
		*file = th_unhex(v->fields[F_FILE], &fl);
	uint8_t mine[ATREST__EXT_MAX], aad[46], *again;
	atrest_keyprov *kp = vec_key(v);
	atrest__secret *key;
	char *params = NULL;
	membuf out;

	/* The extension, from its fields as the document says. */
	assert_int_equal(
		ext_bytes(mine, v->fields[F_KIND], v->fields[F_KEY_ID],
			v->fields[F_PARAMS] ? v->fields[F_PARAMS] : "", wrapped, wl),
		el);
	assert_memory_equal(mine, ext, el);
	/* The master key unwraps the data key. */
	wrap_aad(aad, salt);
	assert_int_equal(atrest__kp_bind(kp, v->fields[F_PARAMS], &params), 0);
	free(params);
	assert_int_equal(atrest__kp_unwrap(kp, &key, wrapped, wl, aad, sizeof(aad)), 0);
	assert_memory_equal(key->data, dek, 32);
	atrest__secret_free(key);
	/* Decrypting gives the plaintext; re-sealing gives the same bytes. */
	assert_int_equal(dec_buf(kp, file, fl, &out, 0), 0);
	assert_int_equal(out.len, pl);
	if (pl)
		assert_memory_equal(out.p, pt, pl);
	again = seal_fixed(&len, v->cipher, v->seg, dek, salt, ext, el, meta, ml, pt, pl);
	assert_int_equal(len, fl);
	assert_memory_equal(again, file, fl);
	free(out.p), free(again), free(dek), free(salt), free(wrapped), free(ext);
	free(meta), free(pt), free(file);
	atrest_keyprov_free(kp);
}

/* Writes tests/vectors/files.txt; run with ATREST_GEN_VECTORS=1. */
static void generate(const char *path)
{
	static const uint8_t meta[] = {1, 0, 3, 0, 'j', 'o', 'b', 2, 0, 0, 0, '4', '2'};
	static const size_t sizes[] = {0, 1, 2 * SEG + 500};
	FILE *f = fopen(path, "w");
	uint8_t mk[32], dek[32], salt[32], pt[2 * SEG + 500], wrapped[ATREST_WRAPPED_MAX];
	uint8_t ext[ATREST__EXT_MAX], aad[46];

	assert_non_null(f);
	fprintf(f,
		"# atrest standalone file vectors (docs/FORMAT.md section 7). One "
		"blank-line-separated\n# record each. Generated once; never "
		"regenerate for a released format version.\n\n");
	th_fill(mk, 32, 300);
	th_fill(dek, 32, 301);
	th_fill(pt, sizeof(pt), 302);
	for (size_t c = 0; c < 4; c++)
		for (size_t i = 0; i < 3; i++) {
			int pass = c == 3, cipher = CIPHERS[pass ? 0 : c];
			const uint8_t *m = i == 2 ? meta : (const uint8_t *)"\0\0";
			size_t ml = i == 2 ? sizeof(meta) : 2, wl, el, len;
			char key_id[128], *params = NULL;
			atrest_keyprov *kp;
			uint8_t *file;

			if (pass && i != 1)
				continue;
			if (pass)
				assert_int_equal(atrest_keyprov_passphrase(
							 &kp, "correct horse", 13),
					0);
			else
				assert_int_equal(atrest_keyprov_raw(&kp, mk, 32), 0);
			th_fill(salt, 32, 400 + 10 * c + i);
			assert_int_equal(atrest__kp_bind(kp, NULL, &params), 0);
			assert_int_equal(
				atrest__kp_key_id(kp, key_id, sizeof(key_id)), 0);
			wrap_aad(aad, salt);
			assert_int_equal(
				atrest__kp_wrap(kp, wrapped, &wl, dek, aad, 46), 0);
			el = ext_bytes(
				ext, kp->kind, key_id, params ? params : "", wrapped, wl);
			file = seal_fixed(&len, cipher, SEG, dek, salt, ext, el, m, ml,
				pt, sizes[i]);
			char *h_mk = th_hex(mk, 32), *h_dek = th_hex(dek, 32),
			     *h_salt = th_hex(salt, 32);
			char *h_w = th_hex(wrapped, wl), *h_e = th_hex(ext, el),
			     *h_m = th_hex(m, ml);
			char *h_p = th_hex(pt, sizes[i]), *h_f = th_hex(file, len);
			fprintf(f, "cipher = %s\nsegment_size = %u\n",
				atrest_cipher_name(cipher), SEG);
			if (pass)
				fprintf(f, "passphrase = correct horse\nparams = %s\n",
					params);
			else
				fprintf(f, "master_key = %s\n", h_mk);
			fprintf(f,
				"kind = %s\nkey_id = %s\ndata_key = %s\nsalt = %s\n"
				"wrapped_key = %s\nextension = %s\nmetadata = %s\n"
				"plaintext = %s\nfile = %s\n\n",
				kp->kind, key_id, h_dek, h_salt, h_w, h_e, h_m, h_p, h_f);
			free(h_mk), free(h_dek), free(h_salt), free(h_w), free(h_e);
			free(h_m), free(h_p), free(h_f), free(file), free(params);
			atrest_keyprov_free(kp);
		}
	fclose(f);
}

/*
 * A file sealed by hand with kp: the given metadata bytes and segments of
 * the given plaintext lengths (the last flag on the final one).  A valid
 * MAC does not make a malformed file acceptable.
 */
static uint8_t *seal_crafted(size_t *len, atrest_keyprov *kp, int cipher,
	const uint8_t *meta, size_t ml, const size_t *segs, size_t n)
{
	uint8_t hb[ATREST__HDR_MAX], dek[32], salt[32], aad[46], pt[SEG], *buf;
	uint8_t wrapped[ATREST_WRAPPED_MAX];
	char key_id[128], *params = NULL;
	size_t wl, off;
	atrest__hdr h;
	atrest__obj o;

	th_fill(dek, 32, 77);
	th_fill(salt, 32, 78);
	memset(&h, 0, sizeof(h));
	h.form = ATREST__FORM_FILE;
	h.cipher = (uint8_t)cipher;
	h.segment_size = SEG;
	memcpy(h.salt, salt, 32);
	assert_int_equal(atrest__kp_bind(kp, NULL, &params), 0);
	assert_int_equal(atrest__kp_key_id(kp, key_id, sizeof(key_id)), 0);
	wrap_aad(aad, salt);
	assert_int_equal(atrest__kp_wrap(kp, wrapped, &wl, dek, aad, 46), 0);
	h.ext_len = (uint16_t)ext_bytes(
		h.ext, kp->kind, key_id, params ? params : "", wrapped, wl);
	free(params);
	h.meta_len = (uint32_t)atrest__cipher_ctlen(cipher, ml);
	assert_int_equal(atrest__hdr_encode(hb, sizeof(hb), &h), 0);
	assert_int_equal(atrest__obj_init(&o, &h, hb, dek, 32, 0), 0);
	*len = h.len + h.meta_len;
	for (size_t i = 0; i < n; i++)
		*len += atrest__cipher_ctlen(cipher, segs[i]);
	buf = malloc(*len);
	assert_non_null(buf);
	memcpy(buf, hb, h.len);
	assert_int_equal(atrest__meta_seal(&o, buf + h.len, meta, ml), 0);
	off = o.data_off;
	for (size_t i = 0; i < n; i++) {
		th_fill(pt, segs[i], i);
		assert_int_equal(
			atrest__seg_seal(&o, buf + off, i, i + 1 == n, pt, segs[i]), 0);
		off += atrest__cipher_ctlen(cipher, segs[i]);
	}
	atrest__obj_cleanup(&o);
	return buf;
}

/* Both readers (incremental and pipelined) on a file: the code. */
static void expect_both(atrest_keyprov *kp, const uint8_t *file, size_t len, int want)
{
	int in = tmp_fd("crafted", file, len), out = tmp_fd("crafted.out", NULL, 0);

	assert_int_equal(dec_rc(kp, file, len), want);
	assert_int_equal(atrest_file_decrypt_fd(kp, NULL, in, out), want);
	close(in);
	close(out);
}

/* CBC-HMAC: a segment before the last that opens short is refused. */
static void test_crafted_short_segment(void **state)
{
	static const uint8_t none[] = {0, 0};
	const size_t bad[][4] = {{SEG - 5, 100}, {SEG, SEG - 15, SEG, 9}};
	const size_t good[] = {SEG, SEG, SEG, 9};
	atrest_keyprov *kp = raw_key(5);
	uint8_t *f;
	size_t len;

	(void)state;
	f = seal_crafted(
		&len, kp, ATREST_CIPHER_AES_256_CBC_HMAC_SHA256, none, 2, bad[0], 2);
	expect_both(kp, f, len, ATREST_EINTEGRITY);
	free(f);
	f = seal_crafted(
		&len, kp, ATREST_CIPHER_AES_256_CBC_HMAC_SHA256, none, 2, bad[1], 4);
	expect_both(kp, f, len, ATREST_EINTEGRITY);
	free(f);
	f = seal_crafted(
		&len, kp, ATREST_CIPHER_AES_256_CBC_HMAC_SHA256, none, 2, good, 4);
	expect_both(kp, f, len, 0);
	free(f);
	atrest_keyprov_free(kp);
}

/* Metadata breaking FORMAT.md 2.4 is refused in a standalone file too. */
static void test_crafted_metadata(void **state)
{
	static const uint8_t empty_key[] = {1, 0, 0, 0, 1, 0, 0, 0, 'v'};
	static const uint8_t trailing[] = {0, 0, 0};
	static const uint8_t nul[] = {1, 0, 1, 0, 'k', 2, 0, 0, 0, 'v', 0};
	const uint8_t *bad[] = {empty_key, trailing, nul};
	const size_t blen[] = {sizeof(empty_key), sizeof(trailing), sizeof(nul)};
	const size_t one[] = {10};
	atrest_keyprov *kp = raw_key(6);
	uint8_t *f;
	size_t len;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		f = seal_crafted(
			&len, kp, ATREST_CIPHER_AES_256_GCM, bad[i], blen[i], one, 1);
		expect_both(kp, f, len, ATREST_EINTEGRITY);
		free(f);
	}
	atrest_keyprov_free(kp);
}

static char *field(char *line, const char *key)
{
	size_t kl = strlen(key);

	if (strncmp(line, key, kl) || strncmp(line + kl, " = ", 3))
		return NULL;
	line[strcspn(line, "\n")] = '\0';
	return line + kl + 3;
}

static void test_vectors(void **state)
{
	static char line[1 << 16];
	char path[512];
	fvec v;
	FILE *f;
	int count = 0;

	(void)state;
	setenv("ATREST_ARGON2_TEST_MEMORY_KIB", "8192", 1);
	snprintf(path, sizeof(path), "%s/files.txt", ATREST_VECTORS_DIR);
	if (getenv("ATREST_GEN_VECTORS"))
		generate(path);
	f = fopen(path, "r");
	assert_non_null(f);
	memset(&v, 0, sizeof(v));
	while (fgets(line, sizeof(line), f)) {
		char *x;

		if ((x = field(line, "cipher")))
			v.cipher = atrest_cipher_from_name(x);
		else if ((x = field(line, "segment_size")))
			v.seg = (uint32_t)atoi(x);
		for (int i = 0; NAMES[i]; i++)
			if ((x = field(line, NAMES[i])))
				v.fields[i] = strdup(x);
		if (v.fields[F_FILE]) {
			check_vector(&v);
			for (int i = 0; NAMES[i]; i++)
				free(v.fields[i]);
			memset(&v, 0, sizeof(v));
			count++;
		}
	}
	fclose(f);
	unsetenv("ATREST_ARGON2_TEST_MEMORY_KIB");
	assert_int_equal(count, 10);
}

static int setup(void **state)
{
	(void)state;
	th_tmpdir(g_dir, sizeof(g_dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	th_rmrf(g_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_truncate_extend),
		cmocka_unit_test(test_pump_failure_prefix),
		cmocka_unit_test(test_failure_on_open_pipe),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_passphrase),
		cmocka_unit_test(test_passphrase_params),
		cmocka_unit_test(test_not_a_file),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_crafted_short_segment),
		cmocka_unit_test(test_crafted_metadata),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
