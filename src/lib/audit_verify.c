/*
 * Verifying an audit log with the public key alone (docs/AUDIT.md): every
 * line must follow the one before it (hash and sequence), every head's
 * Ed25519 signature must hold, segments must end sealed, and nothing may
 * follow the last signed head.  Also the keyless read of the public key.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "keyring.h"
#include "obs.h"
#include "store_int.h"

typedef struct vstate {
	atrest_audit_report *r;
	EVP_PKEY *pub;
	char fp[17];
	uint8_t sid[16];
	int have_sid;
	int have_prev;
	uint8_t prev[32];
	uint64_t prev_seq;
	int last_head, sealed;
	uint64_t last_head_line; /* its line number in its file */
	char last_head_file[PATH_MAX];
	uint64_t open_line; /* first line after the last head */
	char open_file[PATH_MAX];
	const char *file;
	uint64_t line;
	char cur_file[PATH_MAX], old_file[PATH_MAX];
	int prev_in_old; /* the line before this one is in the file before */
	uint64_t prev_line;
	int first_is_one; /* verifying a directory that starts at segment 1 */
} vstate;

/* The first problem: file and line kept in the report and the message. */
static int bad(vstate *v, const char *what)
{
	snprintf(v->r->bad_file, sizeof(v->r->bad_file), "%.1000s", v->file);
	v->r->bad_line = v->line;
	return atrest__error(ATREST_EINTEGRITY, "%s:%llu: %s", v->file,
		(unsigned long long)v->line, what);
}

static int check_sig(vstate *v, json_t *j, uint64_t seq)
{
	const char *key = json_string_value(json_object_get(j, "key"));
	const char *sig = json_string_value(json_object_get(j, "sig"));
	const char *sid = json_string_value(json_object_get(j, "store"));
	uint8_t s[70], msg[ATREST__AUDIT_SIGMSG_LEN], id[16];
	size_t sl = 0;
	EVP_MD_CTX *c;
	int ok;

	if (!key || !sig || !sid)
		return bad(v, "a head without a signature");
	if (strcmp(key, v->fp) != 0)
		return bad(v, "a head signed by another key than the one given");
	if (atrest__unhex(id, 16, sid) != 0 || (v->have_sid && memcmp(id, v->sid, 16)))
		return bad(v, "a head of another store");
	memcpy(v->sid, id, 16);
	v->have_sid = 1;
	if (atrest__unb64(s, sizeof(s), &sl, sig) != 0 || sl != 64)
		return bad(v, "a malformed signature");
	atrest__audit_sigmsg(msg, id, seq, v->prev);
	c = EVP_MD_CTX_new();
	ok = c && EVP_DigestVerifyInit(c, NULL, NULL, NULL, v->pub) == 1 &&
		EVP_DigestVerify(c, s, 64, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(c);
	if (!ok)
		return bad(v,
			"the head's signature does not verify (lines before it edited, "
			"dropped, inserted or reordered, or the head forged)");
	return 0;
}

/* The chain rules for one parsed line. */
static int check_chain(vstate *v, json_t *j, uint64_t seq, const char *prev)
{
	uint8_t p[32], zero[32] = {0};

	if (atrest__unhex(p, 32, prev) != 0)
		return bad(v, "not an audit line (bad prev)");
	if (v->sealed)
		return bad(v, "a line after its segment's final head");
	if (v->have_prev) {
		if (memcmp(p, v->prev, 32) != 0 && seq == v->prev_seq + 1) {
			/* In sequence, yet the hash differs: the line before changed. */
			v->file = v->prev_in_old ? v->old_file : v->cur_file;
			v->line = v->prev_line;
			return bad(v,
				"edited: the next line recorded another hash of this "
				"line");
		}
		if (memcmp(p, v->prev, 32) != 0)
			return bad(v,
				"does not follow the line before it (a line dropped, "
				"inserted or reordered)");
		if (seq != v->prev_seq + 1)
			return bad(v,
				"sequence number out of order (a line dropped, inserted "
				"or reordered)");
		return 0;
	}
	if (seq == 1 && memcmp(p, zero, 32) != 0)
		return bad(v, "the first line does not start a chain");
	if (v->first_is_one && seq != 1)
		return bad(v,
			"the log does not start at sequence 1 (its first lines dropped)");
	v->r->genesis = seq == 1;
	v->r->first_seq = seq;
	return 0;
}

static int check_line(vstate *v, const char *line, size_t n)
{
	json_t *j = json_loadb(line, n, JSON_REJECT_DUPLICATES, NULL);
	json_t *js = json_object_get(j, "seq");
	const char *prev = json_string_value(json_object_get(j, "prev"));
	const char *op = json_string_value(json_object_get(j, "op"));
	uint64_t seq;
	int rc, head;

	if (!json_is_integer(js) || json_integer_value(js) < 1 || !prev || !op ||
		!json_is_string(json_object_get(j, "time"))) {
		json_decref(j);
		return bad(v, "not an audit line (edited or damaged)");
	}
	seq = (uint64_t)json_integer_value(js);
	head = strcmp(op, "head") == 0;
	rc = check_chain(v, j, seq, prev);
	if (rc == 0 && head)
		rc = check_sig(v, j, seq);
	if (rc == 0) {
		v->sealed = head && json_is_true(json_object_get(j, "last"));
		if (!head && (v->last_head || !v->have_prev)) {
			v->open_line = v->line;
			snprintf(v->open_file, sizeof(v->open_file), "%s", v->file);
		}
		v->last_head = head;
		if (head) {
			v->r->heads++;
			v->r->head_seq = seq;
			atrest__sha256(v->prev, line, n);
			atrest__hex(v->r->head_hash, v->prev, 32);
			v->last_head_line = v->line;
			snprintf(v->last_head_file, sizeof(v->last_head_file), "%s",
				v->file);
		}
		atrest__sha256(v->prev, line, n);
		v->prev_in_old = 0;
		v->prev_line = v->line;
		v->prev_seq = seq;
		v->have_prev = 1;
		v->r->last_seq = seq;
		v->r->lines++;
	}
	json_decref(j);
	return rc;
}

static int verify_file(vstate *v, const char *path, int last_file)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	if (!f)
		return atrest__error_os(
			atrest__errno_code(errno), errno, "audit: cannot open %s", path);
	memcpy(v->old_file, v->cur_file, sizeof(v->old_file));
	snprintf(v->cur_file, sizeof(v->cur_file), "%s", path);
	v->prev_in_old = 1;
	v->file = v->cur_file;
	v->line = 0;
	v->sealed = 0;
	v->r->files++;
	while (rc == 0 && (n = getline(&buf, &cap, f)) > 0) {
		v->line++;
		if (buf[n - 1] != '\n')
			rc = bad(v,
				"a torn last line (the writer died mid-line, or the file "
				"was cut)");
		else if (n > ATREST__AUDIT_LINE_MAX)
			rc = bad(v, "a line too long to be an audit line");
		else
			rc = check_line(v, buf, (size_t)n - 1);
	}
	free(buf);
	fclose(f);
	GUARD(rc);
	v->line++;
	if (!last_file && v->line > 1 && !v->sealed)
		return bad(v,
			"the segment ends without its final head (lines cut from its "
			"end, or an old copy put back)");
	return 0;
}

static int seg_cmp(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

/* The segment numbers in dir, sorted. */
static int list_segments(unsigned **out, size_t *n, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned *v = NULL, *nv, s;
	size_t cap = 0;
	char tail[16];

	*n = 0;
	if (!d)
		return atrest__error_os(
			atrest__errno_code(errno), errno, "audit: cannot open %s", dir);
	while ((de = readdir(d)) != NULL) {
		if (sscanf(de->d_name, ATREST__AUDIT_PREFIX "%u%15s", &s, tail) != 2 ||
			strcmp(tail, ATREST__AUDIT_SUFFIX) != 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return atrest__error(ATREST_ERROR, "out of memory");
			}
			v = nv;
		}
		v[(*n)++] = s;
	}
	closedir(d);
	qsort(v, *n, sizeof(*v), seg_cmp);
	*out = v;
	ENSURE(*n > 0, ATREST_ENOTFOUND, "audit: no audit log in %s", dir);
	return 0;
}

static int verify_dir(vstate *v, const char *dir)
{
	unsigned *segs = NULL;
	size_t n;
	char p[PATH_MAX];
	int rc;

	rc = list_segments(&segs, &n, dir);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		snprintf(p, sizeof(p),
			"%s/" ATREST__AUDIT_PREFIX "%06u" ATREST__AUDIT_SUFFIX, dir,
			segs[i]);
		v->first_is_one = segs[0] == 1;
		if (i > 0 && segs[i] != segs[i - 1] + 1) {
			v->file = p;
			v->line = 1;
			rc = bad(v, "the segment before this one is missing");
			break;
		}
		rc = verify_file(v, p, i + 1 == n);
	}
	free(segs);
	return rc;
}

static int check_end(vstate *v, uint64_t min_seq)
{
	if (v->r->lines == 0)
		return atrest__error(ATREST_ENOTFOUND, "audit: the log is empty");
	if (!v->last_head) {
		v->file = v->open_file;
		v->line = v->open_line;
		return bad(v,
			"this line and those after it are not covered by a signed "
			"head (lines cut after them, or a writer died before signing: "
			"the next use of the store signs them)");
	}
	if (min_seq && v->r->head_seq < min_seq) {
		snprintf(v->r->bad_file, sizeof(v->r->bad_file), "%.1000s",
			v->last_head_file);
		v->r->bad_line = v->last_head_line;
		return atrest__error(ATREST_EINTEGRITY,
			"%s:%llu: the last signed head is sequence %llu, older than %llu "
			"(the log was cut or an old copy put back)",
			v->last_head_file, (unsigned long long)v->last_head_line,
			(unsigned long long)v->r->head_seq, (unsigned long long)min_seq);
	}
	return 0;
}

int atrest_audit_verify(atrest_audit_report *out, const char *path,
	const uint8_t pubkey[32], uint64_t min_seq)
{
	vstate v;
	struct stat sb;
	int rc;

	GUARD(atrest__check_version(
		out->version, ATREST_AUDIT_REPORT_VERSION, "atrest_audit_report"));
	memset(out, 0, sizeof(*out));
	out->version = ATREST_AUDIT_REPORT_VERSION;
	ENSURE(path && pubkey, ATREST_EINVAL, "audit: no log or no public key");
	GUARD(atrest__crypto_init());
	memset(&v, 0, sizeof(v));
	v.r = out;
	v.pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pubkey, 32);
	if (!v.pub)
		return atrest__error_ossl(
			ATREST_EINVAL, "audit: not an Ed25519 public key");
	atrest__audit_key_fp(v.fp, pubkey);
	if (stat(path, &sb) != 0)
		rc = atrest__error_os(
			atrest__errno_code(errno), errno, "audit: %s", path);
	else if (S_ISDIR(sb.st_mode))
		rc = verify_dir(&v, path);
	else
		rc = verify_file(&v, path, 1);
	if (rc == 0)
		rc = check_end(&v, min_seq);
	EVP_PKEY_free(v.pub);
	return rc;
}

int atrest_audit_pubkey_unchecked(uint8_t out[32], const char *location)
{
	atrest__keyring *kr = NULL;
	int rc;

	GUARD(atrest__keyring_peek(&kr, location, NULL));
	rc = kr->has_audit ? 0
			   : atrest__error(ATREST_ENOTFOUND,
				     "the store has no audit key yet (it is made "
				     "when the store is next opened with its "
				     "master key)");
	if (rc == 0)
		memcpy(out, kr->audit_pub, 32);
	atrest__keyring_free(kr);
	return rc;
}
