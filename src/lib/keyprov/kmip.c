/*
 * The kmip:// key provider: a KMIP 1.4 client (TTLV over TLS 1.2+ with a
 * client certificate) whose key server encrypts data keys with AES-GCM, so
 * the master key stays there; mode=get fetches the key into locked memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "atrest/sys/keyprov.h"
#include "common.h"
#include "crypto.h"
#include "plugins.h"
#include "secret.h"
#include "ttlv.h"
#include "uri.h"

#define WHAT "kmip URI"
#define FORMAT_GCM 0x01 /* 1 | iv_len | iv | ct | tag(16) */
#define FORMAT_CBC 0x02 /* 1 | iv_len | iv | AES-CBC(dek || SHA-256(aad)) */
#define IV_LEN 12
#define TAG_LEN 16
#define CONNECT_MS 3000
#define IO_MS 5000
#define DEADLINE_MS 10000 /* one call, retries included */
#define PATH_MAX_ 4096

struct kmip_kp {
	struct atrest_keyprov parent;
	pthread_mutex_t mu; /* one request at a time on the connection */
	char host[256], port[16], uid[256], key_id[128];
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	int minor;   /* protocol version 1.minor */
	int use_cbc; /* the server has no AES-GCM: CBC fallback */
	int get_mode;
	atrest__secret *key;  /* mode=get: the fetched key */
	int64_t down_since;   /* last failed connect (ms), 0 when up */
	uint32_t last_reason; /* of the last failed request */
};

/* ---- TLS connection */

/*
 * Writing to a connection the server closed raises SIGPIPE, which would
 * kill the application: block it on this thread while we talk, and
 * swallow one we caused.
 */
struct nosigpipe {
	sigset_t old;
	int was_pending;
};

static void nosigpipe_begin(struct nosigpipe *n)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	n->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &n->old);
}

static void nosigpipe_end(struct nosigpipe *n)
{
	struct timespec zero = {0, 0};
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!n->was_pending && sigismember(&pending, SIGPIPE))
		sigtimedwait(&set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &n->old, NULL);
}

static void disconnect(struct kmip_kp *k)
{
	if (k->ssl) {
		struct nosigpipe n;

		nosigpipe_begin(&n);
		SSL_shutdown(k->ssl);
		nosigpipe_end(&n);
		SSL_free(k->ssl);
		k->ssl = NULL;
	}
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

static int set_timeouts(int fd, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) |
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A TCP connection within CONNECT_MS, or -1 with errno. */
static int tcp_connect(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	int err = 0, flags;
	socklen_t el = sizeof(err);
	struct pollfd pfd;

	if (fd < 0)
		return -1;
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd = (struct pollfd){fd, POLLOUT, 0};
		if (poll(&pfd, 1, CONNECT_MS) != 1) {
			errno = ETIMEDOUT;
			goto fail;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			errno = err;
			goto fail;
		}
	}
	fcntl(fd, F_SETFL, flags);
	set_timeouts(fd, IO_MS);
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

static int open_socket(struct kmip_kp *k)
{
	struct addrinfo hints = {0}, *res = NULL, *ai;
	int gai, err = ECONNREFUSED;

	hints.ai_socktype = SOCK_STREAM;
	gai = getaddrinfo(k->host, k->port, &hints, &res);
	if (gai)
		return atrest__error(ATREST_EUNAVAILABLE, "kmip: cannot resolve %s: %s",
			k->host, gai_strerror(gai));
	for (ai = res; ai; ai = ai->ai_next) {
		k->fd = tcp_connect(ai);
		if (k->fd >= 0)
			break;
		err = errno;
	}
	freeaddrinfo(res);
	if (k->fd < 0)
		return atrest__error_os(ATREST_EUNAVAILABLE, err,
			"kmip: key server %s:%s unreachable", k->host, k->port);
	return 0;
}

/* Why a handshake failed: a refused or untrusted certificate is a key error. */
static int handshake_error(struct kmip_kp *k)
{
	unsigned long e = ERR_peek_last_error();
	long vr = SSL_get_verify_result(k->ssl);
	int reason = ERR_GET_REASON(e);

	ERR_clear_error();
	if (vr != X509_V_OK)
		return atrest__error(ATREST_EKEY,
			"kmip: the certificate of key server %s:%s is not trusted (%s)",
			k->host, k->port, X509_verify_cert_error_string(vr));
	/* Any alert the server sent during the handshake refuses us. */
	if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET)
		return atrest__error(ATREST_EKEY,
			"kmip: key server %s:%s refused the TLS handshake (%s): check the "
			"client certificate",
			k->host, k->port, ERR_reason_error_string(e));
	if (reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
		reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
		reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN ||
		reason == SSL_R_TLSV1_ALERT_ACCESS_DENIED ||
		reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE ||
		reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR ||
		reason == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED ||
		reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED ||
		reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
		reason == SSL_R_UNSUPPORTED_PROTOCOL ||
		reason == SSL_R_NO_PROTOCOLS_AVAILABLE)
		return atrest__error(ATREST_EKEY,
			"kmip: key server %s:%s refused the TLS handshake (%s): check the "
			"client certificate",
			k->host, k->port, ERR_reason_error_string(e));
	return atrest__error(ATREST_EUNAVAILABLE,
		"kmip: TLS handshake with key server %s:%s failed (%s)", k->host, k->port,
		e ? ERR_reason_error_string(e) : "connection closed");
}

static int tls_connect(struct kmip_kp *k)
{
	GUARD(open_socket(k));
	k->ssl = SSL_new(k->ctx);
	ENSURE(k->ssl, ATREST_ERROR, "out of memory");
	SSL_set_fd(k->ssl, k->fd);
	/* The server's name (or IP address) must be in its certificate. */
	if (!SSL_set1_host(k->ssl, k->host))
		return atrest__error(ATREST_ERROR, "kmip: cannot set the server name");
	SSL_set_tlsext_host_name(k->ssl, k->host);
	ERR_clear_error();
	if (SSL_connect(k->ssl) != 1)
		return handshake_error(k);
	return 0;
}

static int ssl_io_error(struct kmip_kp *k, const char *what)
{
	unsigned long e = ERR_peek_last_error();

	ERR_clear_error();
	return atrest__error(ATREST_EUNAVAILABLE, "kmip: %s key server %s:%s failed (%s)",
		what, k->host, k->port,
		e ? ERR_reason_error_string(e) : "connection closed or timed out");
}

static int read_full(struct kmip_kp *k, uint8_t *p, size_t n)
{
	while (n) {
		int r = SSL_read(k->ssl, p, n > 65536 ? 65536 : (int)n);
		if (r <= 0)
			return ssl_io_error(k, "reading from");
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Send req, read one response message into *resp (malloc'd). */
static int exchange(
	struct kmip_kp *k, const atrest__ttlv_enc *req, uint8_t **resp, size_t *resp_len)
{
	uint8_t hdr[8];
	size_t len;

	if (SSL_write(k->ssl, req->b, (int)req->len) != (int)req->len)
		return ssl_io_error(k, "writing to");
	GUARD(read_full(k, hdr, 8));
	len = atrest__ttlv_message_len(hdr);
	ENSURE(len > 8, ATREST_EUNAVAILABLE,
		"kmip: key server %s:%s sent something that is not a KMIP message",
		k->host, k->port);
	*resp = malloc(len);
	ENSURE(*resp, ATREST_ERROR, "out of memory");
	memcpy(*resp, hdr, 8);
	*resp_len = len;
	return read_full(k, *resp + 8, len - 8);
}

/* The response bytes to req, reconnecting and retrying with backoff. */
static int round_trip(
	struct kmip_kp *k, const atrest__ttlv_enc *req, uint8_t **resp, size_t *resp_len)
{
	int64_t start = atrest__mono_ms(), wait = 250;
	int rc = 0;

	*resp = NULL;
	for (int attempt = 0;; attempt++) {
		int fresh = !k->ssl;

		rc = fresh ? tls_connect(k) : 0;
		if (rc == 0)
			rc = exchange(k, req, resp, resp_len);
		if (rc == 0) {
			k->down_since = 0;
			return 0;
		}
		free(*resp);
		*resp = NULL;
		disconnect(k);
		if (rc != ATREST_EUNAVAILABLE)
			return rc;
		/* A kept connection the server closed: try a new one at once. */
		if (!fresh && attempt == 0)
			continue;
		/* Down a moment ago: say so at once rather than wait again. */
		if (k->down_since && start - k->down_since < 1000 && attempt > 0)
			break;
		if (atrest__mono_ms() - start + wait + CONNECT_MS + IO_MS > DEADLINE_MS ||
			attempt >= 3)
			break;
		usleep((useconds_t)wait * 1000);
		wait *= 3;
	}
	k->down_since = atrest__mono_ms();
	return rc;
}

static const char *reason_text(uint32_t reason)
{
	switch (reason) {
	case KMIP_REASON_ITEM_NOT_FOUND:
		return "no such key on the server";
	case KMIP_REASON_AUTH_FAILED:
		return "the server refused the client's credentials";
	case KMIP_REASON_PERMISSION_DENIED:
		return "permission denied: the key is not active (revoked, "
		       "deactivated or destroyed) or may not be used for this";
	case KMIP_REASON_CRYPTO_FAILURE:
		return "cryptographic failure";
	case KMIP_REASON_OP_NOT_SUPPORTED:
	case KMIP_REASON_FEATURE_NOT_SUPPORTED:
	case KMIP_REASON_INVALID_FIELD:
		return "not supported by the server";
	default:
		return "operation failed";
	}
}

/* Run one request; on success *doc (over *buf) holds the response payload. */
static int request(struct kmip_kp *k, atrest__ttlv_enc *req, uint32_t op, uint8_t **buf,
	atrest__ttlv_doc *doc, atrest__kmip_result *res)
{
	size_t len = 0;
	int rc;

	struct nosigpipe nsp;

	*buf = NULL;
	memset(doc, 0, sizeof(*doc));
	memset(res, 0, sizeof(*res));
	k->last_reason = 0;
	GUARD(atrest__kmip_request_end(req));
	nosigpipe_begin(&nsp);
	rc = round_trip(k, req, buf, &len);
	nosigpipe_end(&nsp);
	if (rc == 0)
		rc = atrest__ttlv_parse(doc, *buf, len);
	if (rc == 0)
		rc = atrest__kmip_response(res, doc, op);
	if (rc == ATREST_EINTEGRITY) /* a server we cannot understand */
		rc = ATREST_EUNAVAILABLE, disconnect(k);
	if (rc == 0 && res->status != KMIP_STATUS_SUCCESS)
		k->last_reason = res->reason ? res->reason : 0xFFFF,
		rc = atrest__error(ATREST_EKEY, "kmip: key %s on %s:%s: %s%s%s", k->uid,
			k->host, k->port, reason_text(res->reason),
			res->message[0] ? ": " : "", res->message);
	if (rc < 0) {
		atrest__ttlv_doc_free(doc);
		if (*buf)
			atrest__wipe(*buf, len);
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

/* What a server that lacks a feature answers. */
static int unsupported(uint32_t reason)
{
	return reason == KMIP_REASON_OP_NOT_SUPPORTED ||
		reason == KMIP_REASON_FEATURE_NOT_SUPPORTED ||
		reason == KMIP_REASON_INVALID_FIELD ||
		reason == KMIP_REASON_INVALID_MESSAGE;
}

static void free_response(uint8_t *buf, atrest__ttlv_doc *doc)
{
	if (buf && doc->count)
		atrest__wipe(buf, (size_t)(doc->n[0].len) + 8);
	free(buf);
	atrest__ttlv_doc_free(doc);
}

/* ---- Encrypt and Decrypt on the server */

static void crypto_params(atrest__ttlv_enc *e, int cbc)
{
	atrest__ttlv_begin(e, KMIP_TAG_CRYPTO_PARAMETERS);
	atrest__ttlv_enum(
		e, KMIP_TAG_BLOCK_CIPHER_MODE, cbc ? KMIP_MODE_CBC : KMIP_MODE_GCM);
	if (cbc)
		atrest__ttlv_enum(e, KMIP_TAG_PADDING_METHOD, KMIP_PAD_PKCS5);
	atrest__ttlv_enum(e, KMIP_TAG_CRYPTO_ALGORITHM, KMIP_ALG_AES);
	if (!cbc)
		atrest__ttlv_int(e, KMIP_TAG_TAG_LENGTH, TAG_LEN);
	atrest__ttlv_end(e);
}

/* A wrapped blob's parts. */
struct blob {
	int format;
	const uint8_t *iv, *ct, *tag;
	size_t iv_len, ct_len;
};

static int blob_parse(struct blob *b, const uint8_t *w, size_t n)
{
	memset(b, 0, sizeof(*b));
	if (n < 3 || (w[0] != FORMAT_GCM && w[0] != FORMAT_CBC) || w[1] == 0 ||
		w[1] > 16 || n < 2u + w[1] + (w[0] == FORMAT_GCM ? TAG_LEN + 1 : 16))
		return atrest__error(ATREST_EKEY,
			"kmip: the wrapped key was not made by a KMIP key server");
	b->format = w[0];
	b->iv_len = w[1];
	b->iv = w + 2;
	b->ct = w + 2 + b->iv_len;
	b->ct_len = n - 2 - b->iv_len - (b->format == FORMAT_GCM ? TAG_LEN : 0);
	b->tag = b->format == FORMAT_GCM ? b->ct + b->ct_len : NULL;
	return 0;
}

static int server_encrypt(struct kmip_kp *k, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *in, size_t in_len, const uint8_t *aad, size_t aad_len, int cbc)
{
	atrest__ttlv_enc e = {0};
	atrest__kmip_result res;
	atrest__ttlv_doc doc;
	const uint8_t *ct, *tag = NULL, *iv;
	size_t ct_len, tag_len = 0, iv_len = cbc ? 16 : IV_LEN;
	uint8_t ivbuf[16], *buf;
	int rc;

	GUARD(atrest__rand(ivbuf, iv_len));
	atrest__kmip_request_begin(&e, k->minor, KMIP_OP_ENCRYPT);
	atrest__ttlv_text(&e, KMIP_TAG_UNIQUE_IDENTIFIER, k->uid, strlen(k->uid));
	crypto_params(&e, cbc);
	atrest__ttlv_bytes(&e, KMIP_TAG_DATA, in, in_len);
	atrest__ttlv_bytes(&e, KMIP_TAG_IV_COUNTER_NONCE, ivbuf, iv_len);
	if (!cbc)
		atrest__ttlv_bytes(&e, KMIP_TAG_AE_ADDITIONAL_DATA, aad, aad_len);
	rc = request(k, &e, KMIP_OP_ENCRYPT, &buf, &doc, &res);
	atrest__ttlv_enc_free(&e);
	GUARD(rc);
	iv = ivbuf;
	/* The server may choose the IV itself. */
	if (atrest__ttlv_child(&doc, res.payload, KMIP_TAG_IV_COUNTER_NONCE))
		atrest__ttlv_get_bytes(
			atrest__ttlv_child(&doc, res.payload, KMIP_TAG_IV_COUNTER_NONCE),
			&iv, &iv_len);
	if (atrest__ttlv_get_bytes(atrest__ttlv_child(&doc, res.payload, KMIP_TAG_DATA),
		    &ct, &ct_len) < 0 ||
		(!cbc &&
			atrest__ttlv_get_bytes(
				atrest__ttlv_child(&doc, res.payload, KMIP_TAG_AE_TAG),
				&tag, &tag_len) < 0) ||
		(!cbc && tag_len != TAG_LEN) || iv_len == 0 || iv_len > 16 ||
		2 + iv_len + ct_len + tag_len > cap)
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"kmip: key server %s:%s answered Encrypt without usable data",
			k->host, k->port);
	if (rc == 0) {
		out[0] = cbc ? FORMAT_CBC : FORMAT_GCM;
		out[1] = (uint8_t)iv_len;
		memcpy(out + 2, iv, iv_len);
		memcpy(out + 2 + iv_len, ct, ct_len);
		if (tag_len)
			memcpy(out + 2 + iv_len + ct_len, tag, tag_len);
		*out_len = 2 + iv_len + ct_len + tag_len;
	}
	free_response(buf, &doc);
	return rc;
}

static int server_decrypt(struct kmip_kp *k, uint8_t *out, size_t cap, size_t *out_len,
	const struct blob *b, const uint8_t *aad, size_t aad_len)
{
	atrest__ttlv_enc e = {0};
	atrest__kmip_result res;
	atrest__ttlv_doc doc;
	const uint8_t *pt;
	size_t pt_len;
	uint8_t *buf;
	int rc, cbc = b->format == FORMAT_CBC;

	atrest__kmip_request_begin(&e, cbc ? 2 : k->minor, KMIP_OP_DECRYPT);
	atrest__ttlv_text(&e, KMIP_TAG_UNIQUE_IDENTIFIER, k->uid, strlen(k->uid));
	crypto_params(&e, cbc);
	atrest__ttlv_bytes(&e, KMIP_TAG_DATA, b->ct, b->ct_len);
	atrest__ttlv_bytes(&e, KMIP_TAG_IV_COUNTER_NONCE, b->iv, b->iv_len);
	if (!cbc) {
		atrest__ttlv_bytes(&e, KMIP_TAG_AE_ADDITIONAL_DATA, aad, aad_len);
		atrest__ttlv_bytes(&e, KMIP_TAG_AE_TAG, b->tag, TAG_LEN);
	}
	rc = request(k, &e, KMIP_OP_DECRYPT, &buf, &doc, &res);
	atrest__ttlv_enc_free(&e);
	if (rc == ATREST_EKEY && k->last_reason == KMIP_REASON_CRYPTO_FAILURE)
		return atrest__error(ATREST_EKEY,
			"kmip: wrong master key: the data key does not decrypt with key %s "
			"on %s:%s (or its wrapping was altered)",
			k->uid, k->host, k->port);
	GUARD(rc);
	if (atrest__ttlv_get_bytes(atrest__ttlv_child(&doc, res.payload, KMIP_TAG_DATA),
		    &pt, &pt_len) < 0 ||
		pt_len > cap)
		rc = atrest__error(ATREST_EUNAVAILABLE,
			"kmip: key server %s:%s answered Decrypt without usable data",
			k->host, k->port);
	else {
		memcpy(out, pt, pt_len);
		*out_len = pt_len;
	}
	free_response(buf, &doc);
	return rc;
}

/* ---- the CBC fallback: the AAD's hash travels inside the ciphertext */

static int cbc_wrap(struct kmip_kp *k, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	uint8_t in[64 + 32];
	int rc;

	ENSURE(key_len <= 64, ATREST_EINVAL, "kmip: key too long to wrap");
	memcpy(in, key, key_len);
	GUARD(atrest__sha256(in + key_len, aad, aad_len));
	rc = server_encrypt(k, out, cap, out_len, in, key_len + 32, aad, aad_len, 1);
	atrest__wipe(in, sizeof(in));
	return rc;
}

static int cbc_check(struct kmip_kp *k, uint8_t *pt, size_t *pt_len, const uint8_t *aad,
	size_t aad_len)
{
	uint8_t h[32];

	GUARD(atrest__sha256(h, aad, aad_len));
	if (*pt_len <= 32 || !atrest__ct_equal(pt + *pt_len - 32, h, 32))
		return atrest__error(ATREST_EKEY,
			"kmip: wrong master key: the data key does not decrypt with key %s "
			"(or its wrapping was altered)",
			k->uid);
	*pt_len -= 32;
	return 0;
}

/* ---- mode=get: the key fetched once, kept in locked memory */

static int fetch_key(struct kmip_kp *k)
{
	atrest__ttlv_enc e = {0};
	atrest__kmip_result res;
	atrest__ttlv_doc doc;
	const atrest__ttlv *kb;
	const uint8_t *mat;
	size_t mat_len;
	uint8_t *buf;
	int rc;

	atrest__kmip_request_begin(&e, k->minor, KMIP_OP_GET);
	atrest__ttlv_text(&e, KMIP_TAG_UNIQUE_IDENTIFIER, k->uid, strlen(k->uid));
	atrest__ttlv_enum(&e, KMIP_TAG_KEY_FORMAT_TYPE, KMIP_FORMAT_RAW);
	rc = request(k, &e, KMIP_OP_GET, &buf, &doc, &res);
	atrest__ttlv_enc_free(&e);
	GUARD(rc);
	kb = atrest__ttlv_child(&doc,
		atrest__ttlv_child(&doc, res.payload, KMIP_TAG_SYMMETRIC_KEY),
		KMIP_TAG_KEY_BLOCK);
	if (atrest__ttlv_get_bytes(
		    atrest__ttlv_child(&doc,
			    atrest__ttlv_child(&doc, kb, KMIP_TAG_KEY_VALUE),
			    KMIP_TAG_KEY_MATERIAL),
		    &mat, &mat_len) < 0 ||
		mat_len != 32)
		rc = atrest__error(ATREST_EKEY,
			"kmip: key %s on %s:%s is not a raw 256-bit symmetric key",
			k->uid, k->host, k->port);
	else
		rc = atrest__secret_dup(&k->key, mat, 32);
	free_response(buf, &doc);
	return rc;
}

/*
 * The key's State attribute: Active (2) or a key error that says why not,
 * so that a revoked key is reported as such rather than as a wrong key.
 * A server without GetAttributes is not held against the key.
 */
static int check_state(struct kmip_kp *k)
{
	static const char *const names[] = {"", "pre-active (not yet activated)",
		"active", "deactivated", "compromised (revoked)", "destroyed",
		"destroyed and compromised"};
	static const char state[] = "State";
	atrest__ttlv_enc e = {0};
	atrest__kmip_result res;
	atrest__ttlv_doc doc;
	uint32_t st = 0;
	uint8_t *buf;
	int rc;

	atrest__kmip_request_begin(&e, k->minor, KMIP_OP_GET_ATTRIBUTES);
	atrest__ttlv_text(&e, KMIP_TAG_UNIQUE_IDENTIFIER, k->uid, strlen(k->uid));
	atrest__ttlv_text(&e, KMIP_TAG_ATTRIBUTE_NAME, state, sizeof(state) - 1);
	rc = request(k, &e, KMIP_OP_GET_ATTRIBUTES, &buf, &doc, &res);
	atrest__ttlv_enc_free(&e);
	if (rc == ATREST_EKEY && unsupported(k->last_reason))
		return 0;
	GUARD(rc);
	atrest__ttlv_get_enum(
		atrest__ttlv_child(&doc,
			atrest__ttlv_child(&doc, res.payload, KMIP_TAG_ATTRIBUTE),
			KMIP_TAG_ATTRIBUTE_VALUE),
		&st);
	free_response(buf, &doc);
	ENSURE(st == 0 || st == 2, ATREST_EKEY, "kmip: key %s on %s:%s is %s", k->uid,
		k->host, k->port, st < 7 ? names[st] : "not active");
	return 0;
}

/* ---- the provider */

static int kmip_bind(atrest_keyprov *kp, const char *params_in, char **params_out)
{
	struct kmip_kp *k = (struct kmip_kp *)kp;
	int rc = 0;

	(void)params_in;
	*params_out = NULL;
	pthread_mutex_lock(&k->mu);
	rc = check_state(k);
	if (rc == 0 && k->get_mode && !k->key)
		rc = fetch_key(k);
	pthread_mutex_unlock(&k->mu);
	return rc;
}

static int kmip_key_id(atrest_keyprov *kp, char *out, size_t cap)
{
	struct kmip_kp *k = (struct kmip_kp *)kp;

	ENSURE(strlen(k->key_id) < cap, ATREST_EINVAL, "key id buffer too small");
	strcpy(out, k->key_id);
	return 0;
}

static int local_wrap(struct kmip_kp *k, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	ENSURE(k->key, ATREST_EINVAL, "kmip provider used before bind");
	ENSURE(cap > 2, ATREST_EINVAL, "wrap buffer too small");
	GUARD(atrest__gcm_wrap(
		k->key, out + 2, cap - 2, out_len, key, key_len, aad, aad_len));
	/* iv || ct || tag, as the server's own: either can unwrap it. */
	out[0] = FORMAT_GCM;
	out[1] = IV_LEN;
	*out_len += 2;
	return 0;
}

static int kmip_wrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	struct kmip_kp *k = (struct kmip_kp *)kp;
	int rc;

	pthread_mutex_lock(&k->mu);
	if (k->get_mode)
		rc = local_wrap(k, out, cap, out_len, key, key_len, aad, aad_len);
	else if (!k->use_cbc) {
		rc = server_encrypt(k, out, cap, out_len, key, key_len, aad, aad_len, 0);
		if (rc == ATREST_EKEY && unsupported(k->last_reason)) {
			/* No AES-GCM there (KMIP < 1.4): fall back to CBC. */
			{
				k->use_cbc = 1;
				rc = cbc_wrap(
					k, out, cap, out_len, key, key_len, aad, aad_len);
			}
		}
	} else
		rc = cbc_wrap(k, out, cap, out_len, key, key_len, aad, aad_len);
	pthread_mutex_unlock(&k->mu);
	return rc;
}

static int kmip_unwrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	struct kmip_kp *k = (struct kmip_kp *)kp;
	uint8_t tmp[ATREST_WRAPPED_MAX];
	size_t n = 0;
	struct blob b;
	int rc;

	GUARD(blob_parse(&b, wrapped, wrapped_len));
	pthread_mutex_lock(&k->mu);
	if (k->get_mode && b.format == FORMAT_GCM && b.iv_len == IV_LEN)
		rc = atrest__gcm_unwrap(k->key, tmp, sizeof(tmp), &n, wrapped + 2,
			wrapped_len - 2, aad, aad_len, "kmip");
	else
		rc = server_decrypt(k, tmp, sizeof(tmp), &n, &b, aad, aad_len);
	pthread_mutex_unlock(&k->mu);
	if (rc == 0 && b.format == FORMAT_CBC)
		rc = cbc_check(k, tmp, &n, aad, aad_len);
	if (rc == 0 && n > cap)
		rc = atrest__error(ATREST_EINVAL, "kmip: unwrapped key too long");
	if (rc == 0) {
		memcpy(out, tmp, n);
		*out_len = n;
	}
	atrest__wipe(tmp, sizeof(tmp));
	return rc;
}

static void kmip_free(atrest_keyprov *kp)
{
	struct kmip_kp *k = (struct kmip_kp *)kp;

	disconnect(k);
	SSL_CTX_free(k->ctx);
	atrest__secret_free(k->key);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

/* ---- the URI: kmip://HOST[:PORT]/UNIQUE-ID?ca=...&cert=...&key=... */

static const char *const query_attrs[] = {
	"ca", "cert", "key", "mode", "version", "cipher", NULL};

static int parse_authority(struct kmip_kp *k, const char *a, size_t n)
{
	const char *colon;

	if (n && a[0] == '[') { /* [v6]:port */
		const char *end = memchr(a, ']', n);
		ENSURE(end && end - a - 1 < (long)sizeof(k->host), ATREST_EKEY,
			"kmip URI: malformed host");
		memcpy(k->host, a + 1, (size_t)(end - a - 1));
		colon = end + 1 < a + n && end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = memchr(a, ':', n);
		size_t hl = colon ? (size_t)(colon - a) : n;
		ENSURE(hl > 0 && hl < sizeof(k->host), ATREST_EKEY,
			"kmip URI: malformed host");
		memcpy(k->host, a, hl);
	}
	snprintf(k->port, sizeof(k->port), "5696");
	if (colon) {
		size_t pl = (size_t)(a + n - colon - 1);
		ENSURE(pl > 0 && pl < 6 && strspn(colon + 1, "0123456789") >= pl,
			ATREST_EKEY, "kmip URI: malformed port");
		memcpy(k->port, colon + 1, pl);
		k->port[pl] = '\0';
	}
	return 0;
}

static int parse_uid(struct kmip_kp *k, const char *p, size_t n)
{
	char tmp[sizeof(k->uid) + 8];

	/* The path is one percent-encoded segment: reuse the attribute decoder. */
	ENSURE(n > 0 && n + 4 < sizeof(tmp), ATREST_EKEY,
		"kmip URI: name the key: kmip://HOST:PORT/UNIQUE-ID");
	snprintf(tmp, sizeof(tmp), "u=%.*s", (int)n, p);
	GUARD(atrest__uri_attr(k->uid, sizeof(k->uid), tmp, strlen(tmp), '&', "u", WHAT));
	for (const char *c = k->uid; *c; c++)
		ENSURE((unsigned char)*c >= 0x20 && *c != 0x7f, ATREST_EKEY,
			"kmip URI: the unique identifier holds control characters");
	ENSURE(k->uid[0], ATREST_EKEY, "kmip URI: empty unique identifier");
	return 0;
}

static int load_tls(struct kmip_kp *k, const char *q, size_t qlen)
{
	char ca[PATH_MAX_], cert[PATH_MAX_], key[PATH_MAX_];
	int have_ca, have_cert, have_key;

	GUARD(have_ca = atrest__uri_attr(ca, sizeof(ca), q, qlen, '&', "ca", WHAT));
	GUARD(have_cert =
			atrest__uri_attr(cert, sizeof(cert), q, qlen, '&', "cert", WHAT));
	GUARD(have_key = atrest__uri_attr(key, sizeof(key), q, qlen, '&', "key", WHAT));
	ENSURE(have_cert && have_key, ATREST_EKEY,
		"kmip URI: a client certificate is needed: cert=PATH&key=PATH");
	k->ctx = SSL_CTX_new(TLS_client_method());
	ENSURE(k->ctx, ATREST_ERROR, "kmip: cannot create a TLS context");
	SSL_CTX_set_min_proto_version(k->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(k->ctx, SSL_MODE_AUTO_RETRY);
	if (have_ca ? SSL_CTX_load_verify_locations(k->ctx, ca, NULL) != 1
		    : SSL_CTX_set_default_verify_paths(k->ctx) != 1)
		return atrest__error_ossl(ATREST_EKEY, "kmip: cannot load CA %s",
			have_ca ? ca : "(system default)");
	if (SSL_CTX_use_certificate_chain_file(k->ctx, cert) != 1)
		return atrest__error_ossl(
			ATREST_EKEY, "kmip: cannot load client certificate %s", cert);
	if (SSL_CTX_use_PrivateKey_file(k->ctx, key, SSL_FILETYPE_PEM) != 1 ||
		SSL_CTX_check_private_key(k->ctx) != 1)
		return atrest__error_ossl(ATREST_EKEY,
			"kmip: cannot load the client key %s (or it does not match the "
			"certificate)",
			key);
	return 0;
}

static int parse_options(struct kmip_kp *k, const char *q, size_t qlen)
{
	char v[32];
	int rc;

	GUARD(rc = atrest__uri_attr(v, sizeof(v), q, qlen, '&', "mode", WHAT));
	ENSURE(!rc || !strcmp(v, "get") || !strcmp(v, "encrypt"), ATREST_EKEY,
		"kmip URI: mode is 'encrypt' (default) or 'get'");
	k->get_mode = rc && !strcmp(v, "get");
	GUARD(rc = atrest__uri_attr(v, sizeof(v), q, qlen, '&', "version", WHAT));
	ENSURE(!rc || !strcmp(v, "1.2") || !strcmp(v, "1.3") || !strcmp(v, "1.4"),
		ATREST_EKEY, "kmip URI: version is 1.2, 1.3 or 1.4");
	k->minor = rc ? v[2] - '0' : 4;
	GUARD(rc = atrest__uri_attr(v, sizeof(v), q, qlen, '&', "cipher", WHAT));
	ENSURE(!rc || !strcmp(v, "gcm") || !strcmp(v, "cbc"), ATREST_EKEY,
		"kmip URI: cipher is 'gcm' (default) or 'cbc'");
	k->use_cbc = (rc && !strcmp(v, "cbc")) || k->minor < 4;
	return 0;
}

static int parse_uri(struct kmip_kp *k, const char *uri)
{
	const char *a = uri + strlen("kmip:"), *slash, *q;

	ENSURE(strncmp(a, "//", 2) == 0, ATREST_EKEY,
		"kmip URI: expected kmip://HOST:PORT/UNIQUE-ID?cert=...&key=...");
	a += 2;
	slash = strchr(a, '/');
	ENSURE(slash, ATREST_EKEY, "kmip URI: name the key: kmip://HOST:PORT/UNIQUE-ID");
	q = strchr(slash, '?');
	GUARD(parse_authority(k, a, (size_t)(slash - a)));
	GUARD(parse_uid(k, slash + 1, q ? (size_t)(q - slash - 1) : strlen(slash + 1)));
	q = q ? q + 1 : "";
	GUARD(atrest__uri_known(q, strlen(q), '&', query_attrs, WHAT));
	GUARD(parse_options(k, q, strlen(q)));
	GUARD(load_tls(k, q, strlen(q)));
	snprintf(k->key_id, sizeof(k->key_id), "kmip:%.100s", k->uid);
	return 0;
}

int atrest__keyprov_kmip(atrest_keyprov **out, const char *uri)
{
	struct kmip_kp *k;
	int rc;

	*out = NULL;
	GUARD(atrest__crypto_init());
	k = calloc(1, sizeof(*k));
	ENSURE(k, ATREST_ERROR, "out of memory");
	k->fd = -1;
	pthread_mutex_init(&k->mu, NULL);
	k->parent.version = ATREST_KEYPROV_VERSION;
	k->parent.kind = "kmip";
	k->parent.bind = kmip_bind;
	k->parent.key_id = kmip_key_id;
	k->parent.wrap = kmip_wrap;
	k->parent.unwrap = kmip_unwrap;
	k->parent.free = kmip_free;
	rc = parse_uri(k, uri);
	if (rc < 0) {
		kmip_free(&k->parent);
		return rc;
	}
	*out = &k->parent;
	return 0;
}
