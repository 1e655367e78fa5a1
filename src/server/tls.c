/*
 * Certificates for the listeners, handed to GnuTLS per handshake by a
 * callback, so a reload (SIGHUP) swaps them for new connections while each
 * open connection keeps the generation it started with until it closes.
 */
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "events.h"
#include "http.h"
#include "tls.h"

#define CHAIN_MAX 8

/* One loaded certificate chain and key, shared by the connections that
 * shook hands with it. */
struct gen {
	gnutls_pcert_st pcert[CHAIN_MAX];
	unsigned npcert;
	gnutls_privkey_t key;
	unsigned refs;
};

struct srv_tls {
	char *cert_path, *key_path;
};

/* The generation new handshakes get; one per process (both listeners). */
static pthread_mutex_t tls_mu = PTHREAD_MUTEX_INITIALIZER;
static struct gen *current;

static void gen_free(struct gen *g)
{
	unsigned i;

	for (i = 0; i < g->npcert; i++)
		gnutls_pcert_deinit(&g->pcert[i]);
	if (g->key)
		gnutls_privkey_deinit(g->key);
	free(g);
}

static void datum_wipe(gnutls_datum_t *d)
{
	if (d->data) {
		gnutls_memset(d->data, 0, d->size);
		gnutls_free(d->data);
	}
	d->data = NULL;
}

/* The key must match the certificate: GnuTLS checks it when both are set. */
static int pair_matches(const gnutls_datum_t *cert, const gnutls_datum_t *key)
{
	gnutls_certificate_credentials_t c;
	int rc;

	if (gnutls_certificate_allocate_credentials(&c) < 0)
		return GNUTLS_E_MEMORY_ERROR;
	rc = gnutls_certificate_set_x509_key_mem2(
		c, cert, key, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(c);
	return rc < 0 ? rc : 0;
}

static int key_mode_ok(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return 0;
	if (sb.st_mode & S_IROTH) {
		srv_log("TLS key %s is readable by every user: chmod o-r it", path);
		return -1;
	}
	return 0;
}

static int gen_load(struct gen **out, const char *cert_path, const char *key_path)
{
	gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
	struct gen *g = calloc(1, sizeof(*g));
	unsigned n = CHAIN_MAX;
	int rc = -1, e;

	if (!g)
		return -1;
	if (key_mode_ok(key_path) < 0)
		goto out;
	if ((e = gnutls_load_file(cert_path, &cert)) < 0 ||
		(e = gnutls_load_file(key_path, &key)) < 0) {
		srv_log("cannot read TLS %s %s: %s", cert.data ? "key" : "certificate",
			cert.data ? key_path : cert_path, gnutls_strerror(e));
		goto out;
	}
	if ((e = pair_matches(&cert, &key)) < 0 ||
		(e = gnutls_pcert_list_import_x509_raw(
			 g->pcert, &n, &cert, GNUTLS_X509_FMT_PEM, 0)) < 0 ||
		(g->npcert = n, e = gnutls_privkey_init(&g->key)) < 0 ||
		(e = gnutls_privkey_import_x509_raw(
			 g->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		srv_log("TLS certificate %s with key %s: %s", cert_path, key_path,
			gnutls_strerror(e));
		goto out;
	}
	*out = g;
	g = NULL;
	rc = 0;
out:
	datum_wipe(&key);
	datum_wipe(&cert);
	if (g)
		gen_free(g);
	return rc;
}

/* Make g current; the old one goes once its last connection closed. */
static void gen_install(struct gen *g)
{
	struct gen *old;

	pthread_mutex_lock(&tls_mu);
	old = current;
	current = g;
	if (old && old->refs == 0)
		gen_free(old);
	pthread_mutex_unlock(&tls_mu);
}

int srv_tls_load(struct srv_tls **out, const char *cert, const char *key)
{
	struct srv_tls *t = calloc(1, sizeof(*t));
	struct gen *g;

	*out = NULL;
	if (!t || !(t->cert_path = strdup(cert)) || !(t->key_path = strdup(key)) ||
		gen_load(&g, cert, key) < 0) {
		srv_tls_free(t);
		return -1;
	}
	gen_install(g);
	*out = t;
	return 0;
}

int srv_tls_reload(struct srv_tls *t)
{
	struct gen *g;

	if (gen_load(&g, t->cert_path, t->key_path) < 0)
		return -1;
	gen_install(g);
	return 0;
}

void srv_tls_free(struct srv_tls *t)
{
	if (!t)
		return;
	free(t->cert_path);
	free(t->key_path);
	free(t);
}

const char *srv_tls_priority(void)
{
	return SRV_TLS_PRIORITY;
}

static int cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn,
	int nreqs, const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
	gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key)
{
	struct MHD_Connection *mc = gnutls_session_get_ptr(session);
	struct gen *g;

	pthread_mutex_lock(&tls_mu);
	g = current;
	if (g)
		g->refs++;
	pthread_mutex_unlock(&tls_mu);
	if (!g)
		return -1;
	*pcert = g->pcert;
	*pcert_length = g->npcert;
	*key = g->key;
	if (mc)
		http_conn_hold_tls(mc, g);
	else
		srv_tls_conn_closed(g);
	return 0;
}

gnutls_certificate_retrieve_function2 *srv_tls_cert_callback(void)
{
	return cert_callback;
}

void srv_tls_conn_closed(void *ref)
{
	struct gen *g = ref;

	pthread_mutex_lock(&tls_mu);
	if (--g->refs == 0 && g != current)
		gen_free(g);
	pthread_mutex_unlock(&tls_mu);
}

/* At exit, after the listeners stopped. */
void srv_tls_shutdown(void)
{
	pthread_mutex_lock(&tls_mu);
	if (current && current->refs == 0)
		gen_free(current);
	current = NULL;
	pthread_mutex_unlock(&tls_mu);
}
