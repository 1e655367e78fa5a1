/*
 * TLS for the listeners: certificate and key loaded with GnuTLS (the TLS
 * library of libmicrohttpd), swapped on reload without dropping
 * connections, and the priority string that allows only TLS 1.2 and 1.3
 * with forward-secret AEAD suites.
 */
#ifndef ATREST_SERVER_TLS_H
#define ATREST_SERVER_TLS_H

#include <gnutls/abstract.h>

struct srv_tls;

/* TLS 1.3 and 1.2 only; ECDHE key exchange; AES-GCM and ChaCha20-Poly1305. */
#define SRV_TLS_PRIORITY                                                        \
	"SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:" \
	"+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:-MAC-ALL:+AEAD:-KX-ALL:"  \
	"+ECDHE-ECDSA:+ECDHE-RSA:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"    \
	"+GROUP-SECP384R1:%SERVER_PRECEDENCE"

/* Load cert (PEM, chain allowed) and key (PEM); 0, or -1 with the reason
 * printed on stderr. */
int srv_tls_load(struct srv_tls **out, const char *cert, const char *key);
/* Read the files again; on failure the old ones stay in use.  0 or -1. */
int srv_tls_reload(struct srv_tls *t);
void srv_tls_free(struct srv_tls *t);

/* What http.c passes to libmicrohttpd. */
const char *srv_tls_priority(void);
/* MHD_OPTION_HTTPS_CERT_CALLBACK's function. */
gnutls_certificate_retrieve_function2 *srv_tls_cert_callback(void);
/* Called by http.c when a connection closes: drops what it held. */
void srv_tls_conn_closed(void *ref);
/* Free the current certificate at exit, after the listeners stopped. */
void srv_tls_shutdown(void);

#endif
