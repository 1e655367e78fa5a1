/*
 * Fuzz target: the standalone-file reader of 'atrest decrypt' (file.c) with
 * the fixed master key: header, extension, key unwrap, metadata, segments
 * in stream order.  The same input goes through the incremental decryptor
 * in odd-sized reads and through the pipelined fd pump, which must agree;
 * the input is also encrypted as plaintext and must decrypt back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "atrest/atrest.h"
#include "fuzz.h"

static atrest_keyprov *key;

struct mem {
	const uint8_t *p;
	size_t len, off;
	uint8_t *out;
	size_t out_len, out_cap;
};

static int mem_read(void *buf, size_t cap, size_t *got, void *payload)
{
	struct mem *m = payload;
	size_t n = m->len - m->off;

	n = n < cap ? n : cap;
	n = n < 777 ? n : 777; /* short reads: a segment spans several */
	if (n)
		memcpy(buf, m->p + m->off, n);
	m->off += n;
	*got = n;
	return 0;
}

static int mem_write(const void *buf, size_t len, void *payload)
{
	struct mem *m = payload;

	if (len == 0)
		return 0;
	if (m->out_len + len > m->out_cap) {
		size_t cap = (m->out_len + len) * 2 + 64;
		uint8_t *p = realloc(m->out, cap);

		if (!p)
			return ATREST_ERROR;
		m->out = p;
		m->out_cap = cap;
	}
	memcpy(m->out + m->out_len, buf, len);
	m->out_len += len;
	return 0;
}

/* Decrypt through the callback API; the code, the plaintext in m->out. */
static int decrypt_mem(struct mem *m)
{
	atrest_file_decryptor *d;
	uint8_t buf[5000];
	size_t got = 1;
	int rc = atrest_file_decryptor_new(&d, key, mem_read, m);

	while (rc == 0 && got > 0) {
		rc = atrest_file_decryptor_read(d, buf, sizeof(buf), &got);
		if (rc == 0 && mem_write(buf, got, m) != 0)
			abort();
	}
	if (rc == 0) {
		const atrest_meta_entry *e;
		size_t n;

		atrest_file_decryptor_meta(d, &e, &n);
		for (size_t i = 0; i < n; i++)
			if (!e[i].key[0]) /* FORMAT.md 2.4: keys are never empty */
				abort();
	}
	atrest_file_decryptor_free(d);
	return rc;
}

/* An in-memory file descriptor holding len bytes of p (or empty). */
static int memfd_with(const uint8_t *p, size_t len)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0)
		abort();
	if (len && write(fd, p, len) != (ssize_t)len)
		abort();
	if (lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

/* The fd pump must agree with the incremental reader, byte for byte. */
static void decrypt_fd_agrees(
	const uint8_t *data, size_t size, int rc, const struct mem *m)
{
	int in = memfd_with(data, size), out = memfd_with(NULL, 0);
	int rc2 = atrest_file_decrypt_fd(key, NULL, in, out);
	off_t n = lseek(out, 0, SEEK_END);

	if ((rc == 0) != (rc2 == 0))
		abort();
	if (rc == 0) {
		uint8_t *back = malloc(m->out_len + 1);

		if (!back || n != (off_t)m->out_len ||
			pread(out, back, m->out_len, 0) != (ssize_t)m->out_len ||
			(m->out_len && memcmp(back, m->out, m->out_len) != 0))
			abort();
		free(back);
	}
	close(in);
	close(out);
}

/* Any input as plaintext encrypts and decrypts back to itself. */
static void round_trip(const uint8_t *data, size_t size)
{
	struct mem enc = {0}, dec = {0};
	atrest_file_encryptor *e;
	atrest_file_options o;

	memset(&o, 0, sizeof(o));
	o.version = ATREST_FILE_OPTIONS_VERSION;
	o.cipher = (int)(size % 3) + 1;
	o.segment_size = 1024;
	if (atrest_file_encryptor_new(&e, key, &o, mem_write, &enc) != 0 ||
		atrest_file_encryptor_write(e, data, size) != 0 ||
		atrest_file_encryptor_finish(e) != 0)
		abort();
	dec.p = enc.out;
	dec.len = enc.out_len;
	if (decrypt_mem(&dec) != 0 || dec.out_len != size ||
		(size && memcmp(dec.out, data, size) != 0))
		abort();
	free(enc.out);
	free(dec.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m = {data, size, 0, NULL, 0, 0};
	uint8_t k[32];
	int rc;

	if (!key) {
		fuzz_key(k);
		if (atrest_keyprov_raw(&key, k, sizeof(k)) != 0) {
			fprintf(stderr, "standalone fuzzer: %s\n",
				atrest_error_last()->message);
			abort();
		}
	}
	rc = decrypt_mem(&m);
	if (rc != 0 && rc != ATREST_EINTEGRITY && rc != ATREST_EKEY &&
		rc != ATREST_ETOOBIG)
		abort(); /* hostile input is damage or a key problem, nothing else */
	decrypt_fd_agrees(data, size, rc, &m);
	free(m.out);
	round_trip(data, size);
	return 0;
}
