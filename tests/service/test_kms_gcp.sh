#!/bin/sh
# Google Cloud KMS master keys (gcp-kms://) against the contract server
# tests/contract/gcp_kms.py, which verifies the RS256 JWT with the service
# account's public key at its token endpoint and checks bearer tokens,
# permissions, request fields, CRC32C and the AAD: round trips, calls per
# data key, service-account keys, gcloud user credentials and the metadata
# server, revoked tokens (refreshed), wrong keys and permissions, retries,
# outages and a moved wrapped key.  No secret may show in any output.
set -eu
. "$ATREST_SRC/tests/service/lib/svc.sh"
. "$ATREST_SRC/tests/service/lib/kms.sh"
gcp_up
P=$(port "$G")
NAME=$GCP_NAME
NAME2=$GCP_NAME2
gcp_key_file "$T/sa2.json" "$T/sa2.key" kid-2 "$SA2"
gcp_key_file "$T/sa-wrongkid.json" "$T/sa.key" kid-9 "$SA"
gcp_key_file "$T/sa-forged.json" "$T/sa2.key" kid-1 "$SA"
export ATREST_KEY_URI="$GCP_URI"

# ---- round trip; one token per process
round_trip "$G" kms:encrypt "gcp-kms:$NAME"
expect_calls "$G" oauth:token 3 "one access token per process (init, put, get)"
ctl "$G" last
$PY - "$T/ctl.out" "$T/store/.atrest/keyring" <<'PY' || fail "additionalAuthenticatedData is not the store's"
import base64, json, sys
last = json.load(open(sys.argv[1]))
kr = json.load(open(sys.argv[2]))
sid = bytes.fromhex(kr["store_id"])
aad = base64.b64decode(last["decrypt"]["aad"])
assert aad in [b"atrest/v1 dek" + sid + k["id"].to_bytes(4, "little")
               for k in kr["keys"]], aad
PY
ok "decrypt carries the store id, role and key number as additionalAuthenticatedData"
per_process "$G" kms:decrypt kms:encrypt

# ---- revoked tokens are fetched again, once, in a running process
ctl "$G" reset
driver_start 1
step "put t/1 100"
sleep 2
ctl "$G" revoke_tokens
step "get t/1"
driver_end
[ "$(answer 3)" = ok ] || fail "get after the token was revoked: $(cat "$T/steps.out")"
expect_calls "$G" oauth:token 2 "the refused token replaced once"

# ---- wrong keys, permissions, files: exit 5, one line, the service's code
GOOGLE_APPLICATION_CREDENTIALS="$T/sa-forged.json" run 5 atrest get obj/1
check_err 'Google OAuth token: HTTP 400 invalid_grant: Invalid JWT Signature.*not valid'
GOOGLE_APPLICATION_CREDENTIALS="$T/sa-wrongkid.json" run 5 atrest get obj/1
check_err 'invalid_grant'
GOOGLE_APPLICATION_CREDENTIALS="$T/sa2.json" run 5 atrest get obj/1
check_err "Google Cloud KMS decrypt: HTTP 403 PERMISSION_DENIED: Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied.*grant roles/cloudkms.cryptoKeyEncrypterDecrypter on the key to $SA2"
ATREST_KEY_URI="gcp-kms://projects/atrest-test/locations/europe-west1/keyRings/ring/cryptoKeys/none" \
	run 5 atrest get obj/1
check_err 'HTTP 404 NOT_FOUND'
ATREST_KEY_URI="gcp-kms://$NAME2" run 5 atrest get obj/1
check_err 'wrong master key'
GOOGLE_APPLICATION_CREDENTIALS="$T/nosuch.json" run 5 atrest get obj/1
check_err 'GOOGLE_APPLICATION_CREDENTIALS: cannot open'
echo '{"type": "external_account"}' >"$T/ext.json"
GOOGLE_APPLICATION_CREDENTIALS="$T/ext.json" run 5 atrest get obj/1
check_err 'type "external_account" is not supported'
ATREST_KEY_URI="gcp-kms://projects/p/keyRings/r" run 5 atrest get obj/1
check_err 'not a Google Cloud KMS key URI'
ATREST_CA_BUNDLE= run 5 atrest get obj/1
check_err 'not trusted'
ctl "$G" disable_version "{\"key\": \"$NAME\", \"version\": 1}"
run 5 atrest get obj/1
check_err 'HTTP 400 FAILED_PRECONDITION'

# ---- key rotation in the service: old wrapped keys still unwrap, and
# rewrap moves them to the new primary version
ctl "$G" enable_version "{\"key\": \"$NAME\", \"version\": 1}"
ctl "$G" rotate "{\"key\": \"$NAME\"}"
run 0 atrest get obj/1 -o "$T/got"
run 0 atrest rewrap
ctl "$G" disable_version "{\"key\": \"$NAME\", \"version\": 1}"
run 0 atrest get obj/1 -o "$T/got"
same "$T/data" "$T/got"
ok "after rewrap nothing needs key version 1"

# ---- gcloud's user credentials (refresh token), at the well-known place
mkdir -p "$HOME/.config/gcloud"
$PY - "$HOME/.config/gcloud/application_default_credentials.json" "$CSECRET" "$RTOKEN" \
	"https://127.0.0.1:$P/token" <<'PY'
import json, sys
json.dump({"type": "authorized_user", "client_id": "client-1.apps.googleusercontent.com",
           "client_secret": sys.argv[2], "refresh_token": sys.argv[3],
           "token_uri": sys.argv[4]}, open(sys.argv[1], "w"))
PY
unset GOOGLE_APPLICATION_CREDENTIALS
run 0 atrest get obj/1 -o "$T/got"
sed -i 's/"refresh_token": "/"refresh_token": "x/' "$HOME/.config/gcloud/application_default_credentials.json"
run 5 atrest get obj/1
check_err 'HTTP 400 invalid_grant'
rm -rf "$HOME/.config/gcloud"

# ---- the GCE metadata server
export GCE_METADATA_HOST="127.0.0.1:$(port "$G" meta_port)"
ctl "$G" reset
run 0 atrest get obj/1 -o "$T/got"
expect_calls "$G" metadata:token 1
unset GCE_METADATA_HOST
GCE_METADATA_HOST=127.0.0.1:1 run 5 atrest get obj/1
check_err 'no Google credentials'
export GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json"

retries "$G" kms:decrypt 'Google Cloud KMS decrypt: HTTP 429 RESOURCE_EXHAUSTED: Quota exceeded.*gave up after 4 attempts'
moved_key 'Google Cloud KMS decrypt: HTTP 400 INVALID_ARGUMENT: Decryption failed: the ciphertext is invalid\. \(the wrapped key belongs to another store'
outage "$G"
latency "$G"
no_secrets "$T/test-secrets" "$G/secrets.txt"
