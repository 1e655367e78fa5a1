/*
 * The audit trail and metrics from the command line: audit verify (no
 * master key needed), audit pubkey (export the signing key's public half)
 * and stats (metrics and key facts as text, JSON or Prometheus).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli.h"

/*
 * Where the store's audit trail is, as the library puts it: $ATREST_AUDIT
 * when it names a place, else .atrest/audit in the store's directory (a
 * plain path or file:// URI); 0 or the exit status after saying why not.
 */
static int default_audit_dir(char *out, size_t cap, const struct cli_ctx *ctx)
{
	const char *e = getenv("ATREST_AUDIT");
	char *dir = NULL;
	int rc;

	if (e && *e && strcmp(e, "off") && strcmp(e, "syslog")) {
		snprintf(out, cap, "%s", e);
		return CLI_OK;
	}
	rc = atrest_location_dir(&dir, ctx->store);
	if (rc < 0)
		return cli_err(rc, "audit verify");
	if (!dir)
		return cli_usage_err(ctx,
			"store %s keeps no audit trail of its own (set ATREST_AUDIT, "
			"or give the trail's DIR or FILE)",
			ctx->store);
	snprintf(out, cap, "%s/.atrest/audit", dir);
	atrest_free(dir);
	return CLI_OK;
}

/* A public key file: PEM (SubjectPublicKeyInfo) or 64 hex digits. */
static int read_pubkey(uint8_t out[32], const char *path)
{
	FILE *f = fopen(path, "r");
	char text[4096];
	size_t n = 32, len;
	EVP_PKEY *k;
	BIO *bio;
	int ok = 0;

	if (!f)
		return cli_err_input(errno, "audit verify: --pubkey %s", path);
	len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	bio = BIO_new_mem_buf(text, (int)len);
	k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (k) {
		ok = EVP_PKEY_get_raw_public_key(k, out, &n) == 1 && n == 32;
		EVP_PKEY_free(k);
	} else {
		text[strcspn(text, " \t\r\n")] = '\0';
		ok = strlen(text) == 64;
		for (size_t i = 0; ok && i < 32; i++)
			ok = sscanf(text + 2 * i, "%2hhx", &out[i]) == 1;
	}
	if (!ok)
		return cli_err_msg(CLI_USAGE,
			"audit verify: %s holds neither an Ed25519 PEM public key nor 64 "
			"hex digits",
			path);
	return 0;
}

static int verify_report(const atrest_audit_report *r, const char *path)
{
	printf("verified %llu lines (%llu signed heads) in %llu file%s of %s: sequence "
	       "%llu to %llu%s\n",
		(unsigned long long)r->lines, (unsigned long long)r->heads,
		(unsigned long long)r->files, r->files == 1 ? "" : "s", path,
		(unsigned long long)r->first_seq, (unsigned long long)r->last_seq,
		r->genesis ? "" : " (earlier lines removed or in other files)");
	printf("last signed head: sequence %llu, hash %s\n",
		(unsigned long long)r->head_seq, r->head_hash);
	return CLI_OK;
}

static int audit_verify(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"pubkey", required_argument, NULL, 'p'},
		{"min-seq", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	atrest_audit_report r = ATREST_AUDIT_REPORT_INIT;
	const char *pubfile = NULL;
	unsigned long long min = 0;
	char dir[4096];
	uint8_t pub[32];
	int c, rc, status;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'p')
			pubfile = optarg;
		else if (c == 'm' && sscanf(optarg, "%llu", &min) == 1)
			continue;
		else
			return c == 'h' ? cli_help(ctx->cmd) : CLI_USAGE;
	}
	if (argc - optind > 1)
		return cli_usage_err(ctx, "too many arguments");
	if (optind < argc)
		snprintf(dir, sizeof(dir), "%s", argv[optind]);
	else if ((status = default_audit_dir(dir, sizeof(dir), ctx)) != 0)
		return status;
	if (pubfile) {
		status = read_pubkey(pub, pubfile);
		if (status)
			return status;
	} else {
		rc = atrest_audit_pubkey_unchecked(pub, ctx->store);
		if (rc < 0)
			return cli_err(
				rc, "audit verify: no --pubkey, and the store's key");
		fprintf(stderr,
			"note: public key read from the keyring of %s, which no "
			"master key authenticates; for an independent check pass "
			"--pubkey (from 'atrest audit pubkey')\n",
			ctx->store);
	}
	rc = atrest_audit_verify(&r, dir, pub, (uint64_t)min);
	if (rc < 0 && r.lines)
		return cli_err_msg(cli_exit_status(rc),
			"audit verify: %s (%llu lines before it verified)",
			cli_lib_message(rc), (unsigned long long)r.lines);
	if (rc < 0)
		return cli_err(rc, "audit verify");
	return verify_report(&r, dir);
}

static int print_pubkey(const uint8_t pub[32], int hex, FILE *f)
{
	EVP_PKEY *k;
	int ok;

	if (hex) {
		for (int i = 0; i < 32; i++)
			fprintf(f, "%02x", pub[i]);
		fputc('\n', f);
		return CLI_OK;
	}
	k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
	ok = k && PEM_write_PUBKEY(f, k) == 1;
	EVP_PKEY_free(k);
	return ok ? CLI_OK : cli_err_msg(CLI_FAIL, "audit pubkey: cannot encode the key");
}

static int audit_pubkey(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"hex", no_argument, NULL, 'x'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *outp = NULL;
	atrest_store *st;
	uint8_t pub[32];
	int c, hex = 0, rc, status;
	FILE *f = stdout;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":ho:", opts)) != -1) {
		if (c == 'x')
			hex = 1;
		else if (c == 'o')
			outp = optarg;
		else
			return c == 'h' ? cli_help(ctx->cmd) : CLI_USAGE;
	}
	if (optind < argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	rc = atrest_audit_pubkey(pub, st);
	atrest_store_close(st);
	if (rc < 0)
		return cli_err(rc, "audit pubkey");
	if (outp && !(f = fopen(outp, "w")))
		return cli_err_os(errno, "audit pubkey: %s", outp);
	status = print_pubkey(pub, hex, f);
	if (f != stdout && fclose(f) != 0 && !status)
		status = cli_err_os(errno, "audit pubkey: %s", outp);
	return status;
}

int cmd_audit(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "verify"))
		return audit_verify(ctx, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "pubkey"))
		return audit_pubkey(ctx, argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return cli_help(ctx->cmd);
	return cli_usage_err(ctx, "expected 'audit verify' or 'audit pubkey'");
}

/* ---- stats ---- */

struct stat_key {
	uint32_t id;
	char status[16];
	int64_t created;
	uint64_t objects, bytes;
};

struct stat_keys {
	struct stat_key v[256];
	size_t n;
};

static int stat_key_cb(const atrest_key_info *k, void *payload)
{
	struct stat_keys *s = payload;

	if (s->n == sizeof(s->v) / sizeof(s->v[0]))
		return 0;
	s->v[s->n] = (struct stat_key){k->id, "", k->created, k->objects, k->bytes};
	snprintf(s->v[s->n].status, sizeof(s->v[s->n].status), "%s", k->status);
	s->n++;
	return 0;
}

static void stats_text(atrest_store *st, const struct stat_keys *k, const char *id)
{
	atrest_settings set = ATREST_SETTINGS_INIT;
	uint64_t objects = 0, bytes = 0;
	char when[32];

	atrest_store_settings(&set, st);
	for (size_t i = 0; i < k->n; i++) {
		objects += k->v[i].objects;
		bytes += k->v[i].bytes;
	}
	printf("store id      %s\ncipher        %s\nsegment size  %u\n", id,
		atrest_cipher_name(set.cipher), set.segment_size);
	printf("rotation      every %u days (forced at %u)\n", set.rotate_days,
		set.force_days);
	printf("objects       %llu (%llu plaintext bytes)\naudit trail   %s\n",
		(unsigned long long)objects, (unsigned long long)bytes,
		atrest_audit_location(st));
	printf("data keys     %zu\n", k->n);
	for (size_t i = 0; i < k->n; i++) {
		cli_iso_time(when, k->v[i].created);
		printf("  key %-5u %-9s created %s  age %lld days  %llu objects  %llu "
		       "bytes\n",
			k->v[i].id, k->v[i].status, when,
			(long long)((time(NULL) - k->v[i].created) / 86400),
			(unsigned long long)k->v[i].objects,
			(unsigned long long)k->v[i].bytes);
	}
}

static void stats_json(atrest_store *st, const struct stat_keys *k, const char *id)
{
	atrest_settings set = ATREST_SETTINGS_INIT;
	char when[32];

	atrest_store_settings(&set, st);
	printf("{\"store_id\": \"%s\", \"cipher\": \"%s\", \"segment_size\": %u, "
	       "\"rotate_days\": %u, \"force_days\": %u, \"audit\": ",
		id, atrest_cipher_name(set.cipher), set.segment_size, set.rotate_days,
		set.force_days);
	cli_json_str(stdout, atrest_audit_location(st));
	printf(", \"keys\": [");
	for (size_t i = 0; i < k->n; i++) {
		cli_iso_time(when, k->v[i].created);
		printf("%s\n  {\"id\": %u, \"status\": \"%s\", \"created\": \"%s\", "
		       "\"age_seconds\": %lld, \"objects\": %llu, \"bytes\": %llu}",
			i ? "," : "", k->v[i].id, k->v[i].status, when,
			(long long)(time(NULL) - k->v[i].created),
			(unsigned long long)k->v[i].objects,
			(unsigned long long)k->v[i].bytes);
	}
	printf("%s]}\n", k->n ? "\n" : "");
}

static int stats_show(atrest_store *st, int format)
{
	struct stat_keys *k = calloc(1, sizeof(*k));
	char id[33], *text = NULL;
	size_t len;
	int rc;

	if (!k)
		return cli_err_os(ENOMEM, "stats");
	rc = atrest_keys_list(st, ATREST_KEYS_USAGE, stat_key_cb, k);
	if (rc == 0)
		rc = atrest_store_id(id, st);
	if (rc == 0 && format == 'p')
		rc = atrest_metrics_write(&text, &len, st);
	if (rc == 0 && format == 'p')
		fwrite(text, 1, len, stdout);
	else if (rc == 0 && format == 'j')
		stats_json(st, k, id);
	else if (rc == 0)
		stats_text(st, k, id);
	atrest_free(text);
	free(k);
	return rc < 0 ? cli_err(rc, "stats") : CLI_OK;
}

int cmd_stats(struct cli_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
		{"prometheus", no_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	atrest_store *st;
	int c, format = 't', status;

	cli_getopt_reset();
	while ((c = cli_getopt(ctx, argc, argv, ":h", opts)) != -1) {
		if (c == 'j' || c == 'p')
			format = c;
		else
			return c == 'h' ? cli_help(ctx->cmd) : CLI_USAGE;
	}
	if (optind < argc)
		return cli_usage_err(ctx, "unexpected argument '%s'", argv[optind]);
	status = cli_open_store(&st, ctx, 0);
	if (status)
		return status;
	status = stats_show(st, format);
	atrest_store_close(st);
	return status;
}
