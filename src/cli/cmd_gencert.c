/*
 * atrest gen-cert: a self-signed ECDSA P-256 certificate and its key for
 * trying the server over TLS, made with OpenSSL (key file mode 0600).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define NAMES_MAX 16
#define DAYS 365

struct cert_args {
	const char *cn, *dir;
	const char *ips[NAMES_MAX], *dns[NAMES_MAX];
	size_t nips, ndns;
};

static int dns_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.' ||
			    (s[i] == '*' && i == 0)))
			return 0;
	return 1;
}

static int ip_ok(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* "DNS:cn,DNS:n,...,IP:a,..." */
static char *san_text(const struct cert_args *a)
{
	size_t i, cap = 16 + strlen(a->cn);
	char *s;

	for (i = 0; i < a->ndns; i++)
		cap += strlen(a->dns[i]) + 6;
	for (i = 0; i < a->nips; i++)
		cap += strlen(a->ips[i]) + 5;
	if (!(s = malloc(cap)))
		return NULL;
	snprintf(s, cap, dns_ok(a->cn) ? "DNS:%s" : "", a->cn);
	for (i = 0; i < a->ndns; i++)
		snprintf(s + strlen(s), cap - strlen(s), "%sDNS:%s", *s ? "," : "",
			a->dns[i]);
	for (i = 0; i < a->nips; i++)
		snprintf(s + strlen(s), cap - strlen(s), "%sIP:%s", *s ? "," : "",
			a->ips[i]);
	return s;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int ok;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (!(e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)))
		return 0;
	ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok;
}

/* The certificate for key, signed by itself; NULL on failure. */
static X509 *make_cert(const struct cert_args *a, EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	char *san = san_text(a);
	int ok = x && name && san && atrest_random(serial, sizeof(serial)) == 0;

	serial[0] &= 0x7f; /* a positive serial number */
	ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) &&
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
		X509_set_version(x, 2) &&
		X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
		X509_gmtime_adj(X509_getm_notAfter(x), 60L * 60 * 24 * DAYS) &&
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
			(const unsigned char *)a->cn, -1, -1, 0) &&
		X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) &&
		X509_set_pubkey(x, key) &&
		add_ext(x, NID_basic_constraints, "critical,CA:TRUE") &&
		add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") &&
		add_ext(x, NID_ext_key_usage, "serverAuth") &&
		add_ext(x, NID_subject_key_identifier, "hash") &&
		(!*san || add_ext(x, NID_subject_alt_name, san)) &&
		X509_sign(x, key, EVP_sha256()) > 0;
	BN_free(bn);
	X509_NAME_free(name);
	free(san);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Create DIR/FILE (never an existing file) with mode; write x, else k, as PEM. */
static int write_pem(const char *dir, const char *file, mode_t mode, X509 *x, EVP_PKEY *k)
{
	char path[4096];
	FILE *f;
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return cli_err_os(errno, "gen-cert: %s", path);
	if (!(f = fdopen(fd, "w"))) {
		close(fd);
		unlink(path);
		return cli_err_os(errno, "gen-cert: %s", path);
	}
	ok = x ? PEM_write_X509(f, x)
	       : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	ok = ok && fflush(f) == 0 && fsync(fd) == 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok) {
		unlink(path);
		return cli_err_msg(CLI_FAIL, "gen-cert: cannot write %s", path);
	}
	return CLI_OK;
}

static int generate(const struct cert_args *a)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = key ? make_cert(a, key) : NULL;
	int status;

	if (!x) {
		EVP_PKEY_free(key);
		return cli_err_msg(
			CLI_FAIL, "gen-cert: OpenSSL could not make the certificate");
	}
	if (mkdir(a->dir, 0700) < 0 && errno != EEXIST) {
		status = cli_err_os(errno, "gen-cert: %s", a->dir);
	} else {
		status = write_pem(a->dir, "key.pem", 0600, NULL, key);
		if (!status)
			status = write_pem(a->dir, "cert.pem", 0644, x, NULL);
	}
	X509_free(x);
	EVP_PKEY_free(key);
	if (!status)
		printf("%s/cert.pem\n%s/key.pem\n", a->dir, a->dir);
	return status;
}

int cmd_gen_cert(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{"common-name", required_argument, NULL, 'c'},
		{"ip", required_argument, NULL, 'i'},
		{"dns", required_argument, NULL, 'd'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct cert_args a;
	int c;

	memset(&a, 0, sizeof(a));
	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":ho:", opts)) != -1) {
		if (c == 'c')
			a.cn = optarg;
		else if (c == 'o')
			a.dir = optarg;
		else if (c == 'i' && a.nips < NAMES_MAX && ip_ok(optarg))
			a.ips[a.nips++] = optarg;
		else if (c == 'i')
			return cli_usage_err(
				ctx, "--ip '%s': not an address, or too many", optarg);
		else if (c == 'd' && a.ndns < NAMES_MAX && dns_ok(optarg))
			a.dns[a.ndns++] = optarg;
		else if (c == 'd')
			return cli_usage_err(
				ctx, "--dns '%s': not a host name, or too many", optarg);
		else if (c == 'h')
			return cli_help(ctx->cmd);
		else
			return CLI_USAGE;
	}
	if (optind < argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	if (!a.cn || !*a.cn || strlen(a.cn) > 64)
		return cli_usage_err(ctx, "--common-name (1 to 64 bytes) is required");
	if (!a.dir)
		return cli_usage_err(ctx, "-o DIR is required");
	return generate(&a);
}
