/*
 * The tpm2: key provider: a random master key sealed by a TPM 2.0 (ESYS)
 * under a primary key, optionally to PCR values; the sealed blob is kept in
 * the keyring's provider parameters and unsealed once per process.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "atrest/sys/keyprov.h"
#include "common.h"
#include "crypto.h"
#include "keyring.h"
#include "plugins.h"
#include "secret.h"
#include "uri.h"

#define MASTER_LEN 32
#define WRAP_FORMAT 0x01 /* 1 || iv(12) || ct || tag(16) under the KEK */
#define PARAMS_TAG "tpm2-sealed-v1"
#define INFO_KEK "atrest/v1 tpm2 kek"
#define INFO_KEY_ID "atrest/v1 tpm2 key id"

struct tpm2_kp {
	struct atrest_keyprov parent;
	pthread_mutex_t mu;
	char tcti[512];
	TPML_PCR_SELECTION pcrs; /* count 0: no PCR policy */
	char pcrs_text[64];
	atrest__secret *kek; /* from the unsealed master key */
	char key_id[40];
	char *bound; /* the parameters kek came from */
};

/* A session of one TPM conversation; everything is flushed by tpm_close. */
struct tpm {
	ESYS_CONTEXT *ctx;
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_TR primary, object, session;
};

static int tpm_err(TSS2_RC rc, const char *what)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK, base = rc & 0xFFFF;

	if (layer == TSS2_TCTI_RC_LAYER ||
		(layer != TSS2_TPM_RC_LAYER &&
			(base == TSS2_BASE_RC_IO_ERROR ||
				base == TSS2_BASE_RC_NO_CONNECTION ||
				base == TSS2_BASE_RC_TRY_AGAIN)))
		return atrest__error(ATREST_EUNAVAILABLE,
			"tpm2: TPM unreachable: %s (%s)", what, Tss2_RC_Decode(rc));
	return atrest__error(
		ATREST_EKEY, "tpm2: %s failed (%s)", what, Tss2_RC_Decode(rc));
}

static void tpm_close(struct tpm *t)
{
	ESYS_TR *h[] = {&t->session, &t->object, &t->primary};

	for (size_t i = 0; i < 3 && t->ctx; i++)
		if (*h[i] != ESYS_TR_NONE)
			Esys_FlushContext(t->ctx, *h[i]);
	if (t->ctx)
		Esys_Finalize(&t->ctx);
	if (t->tcti)
		Tss2_TctiLdr_Finalize(&t->tcti);
}

/* The storage primary key: ECC P-256, deterministic from the owner seed. */
static int tpm_open(struct tpm *t, const char *tcti)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	TSS2_RC rc;

	t->ctx = NULL;
	t->tcti = NULL;
	t->primary = t->object = t->session = ESYS_TR_NONE;
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_Initialize(&t->ctx, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return atrest__error(ATREST_EUNAVAILABLE, "tpm2: TPM unreachable (%s)",
			Tss2_RC_Decode(rc));
	tmpl.publicArea.type = TPM2_ALG_ECC;
	tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
	tmpl.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM |
		TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
		TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
		TPMA_OBJECT_NODA;
	tmpl.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	tmpl.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
	tmpl.publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	tmpl.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	tmpl.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	tmpl.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	rc = Esys_CreatePrimary(t->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		ESYS_TR_NONE, &sens, &tmpl, &outside, &none, &t->primary, NULL, NULL,
		NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "creating the primary key");
	return 0;
}

/*
 * A session salted by the primary key, so that the master key crosses the
 * bus encrypted (AES-128-CFB parameter encryption); a policy session when
 * PCRs are bound.
 */
static int tpm_session(struct tpm *t, TPM2_SE type)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_AES,
		.keyBits = {.aes = 128},
		.mode = {.aes = TPM2_ALG_CFB}};
	TSS2_RC rc;

	rc = Esys_StartAuthSession(t->ctx,
		type == TPM2_SE_TRIAL ? ESYS_TR_NONE : t->primary, ESYS_TR_NONE,
		ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, type, &sym,
		TPM2_ALG_SHA256, &t->session);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "starting a session");
	if (type == TPM2_SE_TRIAL)
		return 0;
	rc = Esys_TRSess_SetAttributes(t->ctx, t->session,
		TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT |
			TPMA_SESSION_CONTINUESESSION,
		0xff);
	return rc == TSS2_RC_SUCCESS ? 0 : tpm_err(rc, "setting session attributes");
}

static int policy_pcr(struct tpm *t, const TPML_PCR_SELECTION *pcrs)
{
	TPM2B_DIGEST empty = {0};
	TSS2_RC rc = Esys_PolicyPCR(t->ctx, t->session, ESYS_TR_NONE, ESYS_TR_NONE,
		ESYS_TR_NONE, &empty, pcrs);

	return rc == TSS2_RC_SUCCESS ? 0 : tpm_err(rc, "binding to PCR values");
}

/* The policy digest of "these PCRs hold their current values". */
static int pcr_policy_digest(
	struct tpm *t, const TPML_PCR_SELECTION *pcrs, TPM2B_DIGEST *out)
{
	TPM2B_DIGEST *d = NULL;
	TSS2_RC rc;

	GUARD(tpm_session(t, TPM2_SE_TRIAL));
	GUARD(policy_pcr(t, pcrs));
	rc = Esys_PolicyGetDigest(
		t->ctx, t->session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &d);
	Esys_FlushContext(t->ctx, t->session);
	t->session = ESYS_TR_NONE;
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "computing the PCR policy");
	*out = *d;
	Esys_Free(d);
	return 0;
}

/* Seal master; the sealed object's public and private parts out. */
static int tpm_seal(struct tpm *t, const TPML_PCR_SELECTION *pcrs, const uint8_t *master,
	TPM2B_PUBLIC **pub, TPM2B_PRIVATE **priv)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	TSS2_RC rc;

	tmpl.publicArea.type = TPM2_ALG_KEYEDHASH;
	tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
	tmpl.publicArea.objectAttributes =
		TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA;
	tmpl.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
	if (pcrs->count)
		GUARD(pcr_policy_digest(t, pcrs, &tmpl.publicArea.authPolicy));
	else
		tmpl.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
	sens.sensitive.data.size = MASTER_LEN;
	memcpy(sens.sensitive.data.buffer, master, MASTER_LEN);
	GUARD(tpm_session(t, TPM2_SE_HMAC));
	rc = Esys_Create(t->ctx, t->primary, ESYS_TR_PASSWORD, t->session, ESYS_TR_NONE,
		&sens, &tmpl, &outside, &none, priv, pub, NULL, NULL, NULL);
	atrest__wipe(&sens, sizeof(sens));
	return rc == TSS2_RC_SUCCESS ? 0 : tpm_err(rc, "sealing the master key");
}

static int tpm_unseal(struct tpm *t, const TPML_PCR_SELECTION *pcrs,
	const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, atrest__secret *out)
{
	TPM2B_SENSITIVE_DATA *data = NULL;
	TSS2_RC rc;

	rc = Esys_Load(t->ctx, t->primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		priv, pub, &t->object);
	if (rc != TSS2_RC_SUCCESS && (rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER)
		return atrest__error(ATREST_EKEY,
			"tpm2: the sealed master key does not load on this TPM (another "
			"TPM, or its owner hierarchy was cleared): %s",
			Tss2_RC_Decode(rc));
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "loading the sealed key");
	GUARD(tpm_session(t, pcrs->count ? TPM2_SE_POLICY : TPM2_SE_HMAC));
	if (pcrs->count) {
		GUARD(policy_pcr(t, pcrs));
		rc = Esys_Unseal(
			t->ctx, t->object, t->session, ESYS_TR_NONE, ESYS_TR_NONE, &data);
	} else {
		rc = Esys_Unseal(t->ctx, t->object, ESYS_TR_PASSWORD, t->session,
			ESYS_TR_NONE, &data);
	}
	if (rc != TSS2_RC_SUCCESS && pcrs->count &&
		(rc & TSS2_RC_LAYER_MASK) == TSS2_TPM_RC_LAYER)
		return atrest__error(ATREST_EKEY,
			"tpm2: the TPM refuses to unseal the master key: the PCR values "
			"it is bound to have changed (%s)",
			Tss2_RC_Decode(rc));
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "unsealing the master key");
	rc = data->size == MASTER_LEN ? 0 : 1;
	if (rc == 0)
		memcpy(out->data, data->buffer, MASTER_LEN);
	atrest__wipe(data, sizeof(*data));
	Esys_Free(data);
	ENSURE(rc == 0, ATREST_EKEY, "tpm2: the sealed object holds no master key");
	return 0;
}

/* ---- parameters: the sealed object, kept in the keyring */

static int b64_field(json_t *o, const char *name, const void *p, size_t n)
{
	char *s = atrest__b64(p, n);
	int rc = s && json_object_set_new(o, name, json_string(s)) == 0 ? 0 : -1;

	free(s);
	return rc;
}

static int params_make(char **out, const struct tpm2_kp *k, const TPM2B_PUBLIC *pub,
	const TPM2B_PRIVATE *priv)
{
	uint8_t pb[sizeof(*pub)], vb[sizeof(*priv)];
	size_t pn = 0, vn = 0;
	json_t *o = json_object();
	int bad;

	bad = !o || Tss2_MU_TPM2B_PUBLIC_Marshal(pub, pb, sizeof(pb), &pn) ||
		Tss2_MU_TPM2B_PRIVATE_Marshal(priv, vb, sizeof(vb), &vn) ||
		json_object_set_new(o, "sealed", json_string(PARAMS_TAG)) ||
		b64_field(o, "public", pb, pn) || b64_field(o, "private", vb, vn) ||
		(k->pcrs.count &&
			json_object_set_new(o, "pcrs", json_string(k->pcrs_text)));
	*out = bad ? NULL : json_dumps(o, JSON_COMPACT);
	json_decref(o);
	ENSURE(*out, ATREST_ERROR, "out of memory");
	return 0;
}

static int parse_pcrs(TPML_PCR_SELECTION *sel, const char *s);

#define NOT_OURS                                               \
	atrest__error(ATREST_EKEY,                             \
		"tpm2: the keyring's master key is not a key " \
		"sealed by a TPM (it was made by another provider)")

static int params_parse(const char *text, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv,
	TPML_PCR_SELECTION *pcrs)
{
	json_t *o = json_loads(text, 0, NULL);
	const char *tag = json_string_value(json_object_get(o, "sealed"));
	const char *p = json_string_value(json_object_get(o, "public"));
	const char *v = json_string_value(json_object_get(o, "private"));
	const char *pc = json_string_value(json_object_get(o, "pcrs"));
	uint8_t pb[sizeof(*pub)], vb[sizeof(*priv)];
	size_t pn = 0, vn = 0, off1 = 0, off2 = 0;
	int rc = 0;

	memset(pcrs, 0, sizeof(*pcrs));
	if (!tag || strcmp(tag, PARAMS_TAG))
		rc = NOT_OURS;
	else if (!p || !v || atrest__unb64(pb, sizeof(pb), &pn, p) ||
		atrest__unb64(vb, sizeof(vb), &vn, v) ||
		Tss2_MU_TPM2B_PUBLIC_Unmarshal(pb, pn, &off1, pub) ||
		Tss2_MU_TPM2B_PRIVATE_Unmarshal(vb, vn, &off2, priv) || off1 != pn ||
		off2 != vn || (pc && parse_pcrs(pcrs, pc) < 0))
		rc = atrest__error(ATREST_EINTEGRITY,
			"tpm2: the sealed master key in the keyring is malformed");
	json_decref(o);
	return rc;
}

/* ---- the master key and wrapping */

static int set_master(struct tpm2_kp *k, const atrest__secret *master)
{
	static const char info_kek[] = INFO_KEK, info_id[] = INFO_KEY_ID;
	atrest__secret *kek;
	uint8_t fp[8];

	GUARD(atrest__secret_new(&kek, MASTER_LEN));
	if (atrest__hkdf(kek->data, MASTER_LEN, NULL, 0, master->data, MASTER_LEN,
		    (const uint8_t *)info_kek, sizeof(info_kek) - 1) < 0 ||
		atrest__hkdf(fp, sizeof(fp), NULL, 0, master->data, MASTER_LEN,
			(const uint8_t *)info_id, sizeof(info_id) - 1) < 0) {
		atrest__secret_free(kek);
		return ATREST_ERROR;
	}
	atrest__secret_free(k->kek);
	k->kek = kek;
	memcpy(k->key_id, "tpm2:", 5);
	atrest__hex(k->key_id + 5, fp, sizeof(fp));
	return 0;
}

/* A new master key, sealed; its parameters out. */
static int seal_new(struct tpm2_kp *k, char **params_out)
{
	TPM2B_PUBLIC *pub = NULL;
	TPM2B_PRIVATE *priv = NULL;
	atrest__secret *master = NULL;
	struct tpm t;
	int rc;

	GUARD(atrest__secret_new(&master, MASTER_LEN));
	GUARD_OUT(atrest__rand(master->data, MASTER_LEN));
	rc = tpm_open(&t, k->tcti);
	if (rc == 0)
		rc = tpm_seal(&t, &k->pcrs, master->data, &pub, &priv);
	tpm_close(&t);
	GUARD_OUT(rc);
	GUARD_OUT(params_make(params_out, k, pub, priv));
	GUARD_OUT(set_master(k, master));
out:
	Esys_Free(pub);
	Esys_Free(priv);
	atrest__secret_free(master);
	return rc;
}

static int unseal(struct tpm2_kp *k, const char *params)
{
	TPM2B_PUBLIC pub = {0};
	TPM2B_PRIVATE priv = {0};
	TPML_PCR_SELECTION pcrs;
	atrest__secret *master = NULL;
	struct tpm t;
	int rc;

	GUARD(params_parse(params, &pub, &priv, &pcrs));
	GUARD(atrest__secret_new(&master, MASTER_LEN));
	rc = tpm_open(&t, k->tcti);
	if (rc == 0)
		rc = tpm_unseal(&t, &pcrs, &pub, &priv, master);
	tpm_close(&t);
	if (rc == 0)
		rc = set_master(k, master);
	atrest__secret_free(master);
	return rc;
}

static int tpm2_bind(atrest_keyprov *kp, const char *params_in, char **params_out)
{
	struct tpm2_kp *k = (struct tpm2_kp *)kp;
	char *made = NULL;
	int rc = 0;

	*params_out = NULL;
	pthread_mutex_lock(&k->mu);
	if (params_in && k->bound && strcmp(params_in, k->bound) == 0)
		goto out; /* unsealed once per process */
	rc = params_in ? unseal(k, params_in) : seal_new(k, &made);
	if (rc == 0) {
		free(k->bound);
		k->bound = strdup(params_in ? params_in : made);
		ENSURE_OUT(k->bound, ATREST_ERROR, "out of memory");
	}
out:
	pthread_mutex_unlock(&k->mu);
	if (rc == 0)
		*params_out = made;
	else
		free(made);
	return rc;
}

static int tpm2_key_id(atrest_keyprov *kp, char *out, size_t cap)
{
	struct tpm2_kp *k = (struct tpm2_kp *)kp;
	int rc = 0;

	pthread_mutex_lock(&k->mu);
	if (!k->kek)
		rc = atrest__error(ATREST_EINVAL, "tpm2 provider used before bind");
	else if (strlen(k->key_id) >= cap)
		rc = atrest__error(ATREST_EINVAL, "key id buffer too small");
	else
		strcpy(out, k->key_id);
	pthread_mutex_unlock(&k->mu);
	return rc;
}

static int tpm2_wrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
	struct tpm2_kp *k = (struct tpm2_kp *)kp;
	int rc;

	ENSURE(cap > 1, ATREST_EINVAL, "wrap buffer too small");
	pthread_mutex_lock(&k->mu);
	rc = k->kek ? atrest__gcm_wrap(k->kek, out + 1, cap - 1, out_len, key, key_len,
			      aad, aad_len)
		    : atrest__error(ATREST_EINVAL, "tpm2 provider used before bind");
	pthread_mutex_unlock(&k->mu);
	GUARD(rc);
	out[0] = WRAP_FORMAT;
	*out_len += 1;
	return 0;
}

static int tpm2_unwrap(atrest_keyprov *kp, uint8_t *out, size_t cap, size_t *out_len,
	const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
	struct tpm2_kp *k = (struct tpm2_kp *)kp;
	int rc;

	ENSURE(wrapped_len > 1 && wrapped[0] == WRAP_FORMAT, ATREST_EKEY,
		"tpm2: the wrapped key was not made with a TPM-sealed key");
	pthread_mutex_lock(&k->mu);
	rc = k->kek ? atrest__gcm_unwrap(k->kek, out, cap, out_len, wrapped + 1,
			      wrapped_len - 1, aad, aad_len, "tpm2")
		    : atrest__error(ATREST_EINVAL, "tpm2 provider used before bind");
	pthread_mutex_unlock(&k->mu);
	return rc;
}

static void tpm2_free(atrest_keyprov *kp)
{
	struct tpm2_kp *k = (struct tpm2_kp *)kp;

	atrest__secret_free(k->kek);
	free(k->bound);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

/* ---- the URI: tpm2:TCTI[&pcrs=BANK:N,N...] */

static int parse_pcrs(TPML_PCR_SELECTION *sel, const char *s)
{
	const char *colon = strchr(s, ':');
	TPMS_PCR_SELECTION *p = &sel->pcrSelections[0];
	char *end;

	memset(sel, 0, sizeof(*sel));
	if (!colon)
		return -1;
	if (!strncmp(s, "sha256:", 7))
		p->hash = TPM2_ALG_SHA256;
	else if (!strncmp(s, "sha1:", 5))
		p->hash = TPM2_ALG_SHA1;
	else if (!strncmp(s, "sha384:", 7))
		p->hash = TPM2_ALG_SHA384;
	else
		return -1;
	p->sizeofSelect = 3;
	for (s = colon + 1;; s = end + 1) {
		long n = strtol(s, &end, 10);
		if (end == s || n < 0 || n > 23)
			return -1;
		p->pcrSelect[n / 8] |= (uint8_t)(1u << (n % 8));
		if (*end == '\0')
			break;
		if (*end != ',')
			return -1;
	}
	sel->count = 1;
	return 0;
}

static int parse_uri(struct tpm2_kp *k, const char *uri)
{
	const char *t = uri + strlen("tpm2:");
	const char *amp = strpbrk(t, "&?");
	size_t tl = amp ? (size_t)(amp - t) : strlen(t);
	static const char *const known[] = {"pcrs", NULL};
	int rc;

	ENSURE(tl > 0 && tl < sizeof(k->tcti), ATREST_EKEY,
		"tpm2 URI: expected tpm2:TCTI, e.g. tpm2:device:/dev/tpmrm0 or "
		"tpm2:swtpm:host=127.0.0.1,port=2321");
	memcpy(k->tcti, t, tl);
	if (!amp)
		return 0;
	GUARD(atrest__uri_known(amp + 1, strlen(amp + 1), '&', known, "tpm2 URI"));
	rc = atrest__uri_attr(k->pcrs_text, sizeof(k->pcrs_text), amp + 1,
		strlen(amp + 1), '&', "pcrs", "tpm2 URI");
	GUARD(rc);
	ENSURE(rc == 0 || parse_pcrs(&k->pcrs, k->pcrs_text) == 0, ATREST_EKEY,
		"tpm2 URI: pcrs is BANK:N[,N...], e.g. pcrs=sha256:0,7 (PCRs 0 to 23)");
	return 0;
}

int atrest__keyprov_tpm2(atrest_keyprov **out, const char *uri)
{
	struct tpm2_kp *k;
	int rc;

	*out = NULL;
	GUARD(atrest__crypto_init());
	/* The TSS logs failures on stderr; the error message says it once. */
	setenv("TSS2_LOG", "all+NONE", 0);
	k = calloc(1, sizeof(*k));
	ENSURE(k, ATREST_ERROR, "out of memory");
	pthread_mutex_init(&k->mu, NULL);
	k->parent.version = ATREST_KEYPROV_VERSION;
	k->parent.kind = "tpm2";
	k->parent.bind = tpm2_bind;
	k->parent.key_id = tpm2_key_id;
	k->parent.wrap = tpm2_wrap;
	k->parent.unwrap = tpm2_unwrap;
	k->parent.free = tpm2_free;
	rc = parse_uri(k, uri);
	if (rc < 0) {
		tpm2_free(&k->parent);
		return rc;
	}
	*out = &k->parent;
	return 0;
}
