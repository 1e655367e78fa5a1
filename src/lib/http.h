/*
 * A small HTTPS client over libcurl for the cloud key providers and the S3
 * backend: one atrest__http per service holds reusable easy handles (kept
 * connections), TLS settings and the retry policy; atrest__http_do sends one
 * request with bounded timeouts, retrying with exponential backoff and
 * jitter on network errors, 5xx, 429 and throttling error codes, never on
 * other 4xx.  Errors are one line naming the service, the HTTP status and
 * the service's error code, never a secret.  Safe to use from many threads.
 */
#ifndef ATREST_HTTP_H
#define ATREST_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "common.h"
#include "secret.h"

/* Header lines ("Name: value"); every line is wiped when released. */
typedef struct atrest__http_hdrs {
	char **v;
	size_t n, cap;
	int failed; /* out of memory in an add (checked by atrest__http_do) */
} atrest__http_hdrs;

/* Add "name: value" (printf-style value). */
void atrest__http_hdrs_add(atrest__http_hdrs *h, const char *name, const char *fmt, ...)
	ATREST__PRINTF(3, 4);
/* Add a whole "Name: value" line; append copies of every line of src. */
void atrest__http_hdrs_add_line(atrest__http_hdrs *h, const char *line);
void atrest__http_hdrs_copy(atrest__http_hdrs *dst, const atrest__http_hdrs *src);
/* The value of the first header called name (any case), or NULL. */
const char *atrest__http_hdrs_get(const atrest__http_hdrs *h, const char *name);
void atrest__http_hdrs_free(atrest__http_hdrs *h);

/* Streaming bodies: return bytes produced/consumed, or -1 to abort. */
typedef long (*atrest__http_read_fn)(void *buf, size_t cap, void *arg);
typedef int (*atrest__http_rewind_fn)(void *arg);
typedef int (*atrest__http_write_fn)(const void *buf, size_t len, void *arg);

typedef struct atrest__http_req atrest__http_req;
/*
 * Called before every attempt (a retry included): set or refresh headers
 * that depend on the time or on credentials (a SigV4 signature, a bearer
 * token).  Return 0, or an error code that ends the request.
 */
typedef int (*atrest__http_prepare_fn)(atrest__http_req *req, void *arg);

struct atrest__http_req {
	const char *method; /* "GET", "POST", "PUT", "HEAD", "DELETE", ... */
	const char *url;
	const char *what;          /* the operation, for messages ("Decrypt") */
	atrest__http_hdrs headers; /* sent as they are; owned by the caller */
	/* The body: from memory... */
	const void *body;
	size_t body_len;
	/* ...or from a callback (body_len bytes, or chunked when -1). */
	atrest__http_read_fn read;
	atrest__http_rewind_fn rewind; /* NULL: a failed attempt is not retried */
	int64_t read_len;
	void *read_arg;
	/* A 2xx response body to a callback instead of memory. */
	atrest__http_write_fn write;
	void *write_arg;
	/*
	 * Called before a retry once part of a response went to write (start
	 * the output over); NULL: such a response is not retried.
	 */
	atrest__http_rewind_fn write_rewind;
	atrest__http_prepare_fn prepare;
	void *prepare_arg;
	int secret_response; /* keep the response body in locked memory */
	int plain_http;      /* allow http:// (metadata services, loopback) */
	int no_proxy;        /* never through a proxy (link-local services) */
	/*
	 * This call's time budget, per attempt and in all, instead of the
	 * service's (0): large transfers get more than small requests.
	 */
	long time_ms;
};

typedef struct atrest__http_resp {
	long status;               /* last HTTP status, 0 when none arrived */
	atrest__buf body;          /* NUL-terminated; locked when asked */
	atrest__http_hdrs headers; /* of the last response */
	int attempts;
	double ms;     /* wall time of the whole call, retries included */
	char code[96]; /* the service's error code ("AccessDeniedException") */
	char msg[240]; /* the service's message, printable ASCII, shortened */
} atrest__http_resp;

/* A service's client settings; zero fields take the defaults in brackets. */
typedef struct atrest__http_opts {
	const char *service; /* "AWS KMS": names the service in messages */
	const char *ca_env;  /* its CA bundle variable, e.g. "AWS_CA_BUNDLE" */
	const char *ca_file; /* an extra CA bundle file, e.g. from a URI */
	long connect_ms;     /* per attempt [3000] */
	long attempt_ms;     /* per attempt, whole exchange [10000] */
	long total_ms;    /* the whole call with retries [ATREST_KMS_TIMEOUT or 10000] */
	int max_attempts; /* [4] */
	long backoff_ms;  /* first backoff [100]; doubles, full jitter */
	long backoff_max_ms; /* [2000] */
	size_t max_response; /* bytes kept of a response body [1 MiB] */
	/*
	 * Fill resp->code and resp->msg from an error response; NULL reads
	 * the usual JSON shapes (AWS "__type", Google and Azure "error",
	 * OAuth "error"/"error_description", Vault "errors").
	 */
	void (*parse_error)(atrest__http_resp *resp);
	/* Extra throttling codes (NULL-terminated) beside the AWS list. */
	const char *const *throttle_codes;
} atrest__http_opts;

typedef struct atrest__http atrest__http;

int atrest__http_new(atrest__http **out, const atrest__http_opts *opts);
void atrest__http_free(atrest__http *h);

/*
 * Send req and fill resp (atrest__http_resp_free it in any case).
 * Returns 0 whenever a final response arrived, whatever its status (the
 * caller judges it, e.g. with atrest__http_fail); ATREST_EUNAVAILABLE
 * when the service could not be reached, or kept failing with 5xx or
 * throttling until the attempts or the time ran out; ATREST_EINVAL for a
 * URL that is not https:// (http:// only with plain_http); ATREST_ETOOBIG
 * for a response over max_response.
 */
int atrest__http_do(atrest__http *h, atrest__http_req *req, atrest__http_resp *resp);
void atrest__http_resp_free(atrest__http_resp *resp);

/* 1 when status is 2xx. */
int atrest__http_ok(const atrest__http_resp *resp);
/*
 * Raise code with the one-line message
 *   "<service> <what>: HTTP <status> <code>: <msg> (<fix>)"
 * from a response (fix may be NULL); returns code.
 */
int atrest__http_fail(const atrest__http *h, const atrest__http_req *req,
	const atrest__http_resp *resp, int code, const char *fix);
/* The service name given at creation. */
const char *atrest__http_service(const atrest__http *h);

/*
 * The default error decoder, and the check it uses for throttling codes
 * (exposed for tests and fuzzing).
 */
void atrest__http_parse_error_json(atrest__http_resp *resp);
int atrest__http_is_throttle(const char *code, const char *const *extra);
/* Seconds of a Retry-After header value (delta-seconds form), or -1. */
long atrest__http_retry_after(const char *value);
/* 1 when the URL's host is a loopback address or "localhost". */
int atrest__http_is_loopback(const char *url);

#endif
