/*
 * atrest server: what 'atrest server' parsed from its command line, and
 * the function that runs the server until SIGTERM or SIGINT.
 */
#ifndef ATREST_SERVER_SERVER_H
#define ATREST_SERVER_SERVER_H

#include <stdint.h>

#include "http.h"

struct srv_config {
	const char *store;         /* the store's location */
	const char *state_dir;     /* the server's own files: DIR/.atrest/ */
	const char *listen;        /* numeric address; NULL: 127.0.0.1 */
	int port;                  /* 0: a free port, shown in the startup line */
	const char *api_key;       /* a single admin key of the default tenant */
	const char *api_keys_file; /* NULL: <state_dir>/.atrest/apikeys */
	const char *tls_cert, *tls_key;
	int insecure_http;      /* plain HTTP on a non-loopback address */
	uint64_t max_object;    /* bytes of one PUT; 0: no limit */
	unsigned drain_timeout; /* seconds SIGTERM waits for requests */
	unsigned threads;       /* threads of the pool all handles share (0: CPUs) */
	int allow_plaintext;
	int s3_port;              /* the S3-compatible listener; -1: none */
	const char *s3_keys_file; /* NULL: <state_dir>/.atrest/s3keys */
	const char *s3_domain;    /* virtual-host style under it; NULL: none */
	const char *s3_region;    /* the region signatures are scoped to */
	struct http_limits limits;
};

/* Defaults of every field but store, state_dir and port. */
void srv_config_defaults(struct srv_config *c);

/* Is addr (numeric) a loopback address? */
int srv_is_loopback(const char *addr);

/*
 * Run until SIGTERM or SIGINT (then drain and return 0); SIGHUP reloads
 * API keys and TLS certificates.  Returns an exit status after printing
 * why on stderr: 1 error, 2 bad configuration, 5 master key.
 */
int srv_run(const struct srv_config *cfg);

#endif
