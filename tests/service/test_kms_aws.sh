#!/bin/sh
# AWS KMS master keys (aws-kms://) against the contract server
# tests/contract/aws_kms.py, which recomputes every SigV4 signature with
# botocore and validates requests against botocore's KMS model: round trips,
# the EncryptionContext, calls per data key, credentials from the
# environment, a profile, container credentials and IMDSv2 (with expiry and
# refresh), wrong and unknown credentials, permissions, TLS trust,
# throttling and 5xx retries, outages (cached keys keep working, a cold
# process fails with exit 5 in time), and a wrapped key moved to another
# store.  No secret may show in any output.
set -eu
. "$ATREST_SRC/tests/service/lib/svc.sh"
. "$ATREST_SRC/tests/service/lib/kms.sh"
aws_up
export ATREST_KEY_URI="$AWS_URI"

# ---- round trip; the keyring names the KMS key
round_trip "$A" kms:Encrypt "aws-kms:$ARN"
expect_calls "$A" kms:Decrypt 6 \
	"each process unwraps the check secret, the audit key and one data key"

# ---- the EncryptionContext binds the store id and the role
sid=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["store_id"])' \
	"$T/store/.atrest/keyring")
ids=$($PY -c 'import json,sys; print(" ".join(str(k["id"]) for k in json.load(open(sys.argv[1]))["keys"]))' \
	"$T/store/.atrest/keyring")
ctl "$A" last
$PY - "$T/ctl.out" "$sid" "$ids" <<'PY' || fail "EncryptionContext is not the store's"
import json, sys
last = json.load(open(sys.argv[1]))
ctx = last["Decrypt"]["EncryptionContext"]
assert ctx["atrest-store-id"] == sys.argv[2], ctx
assert ctx["atrest-role"] == "atrest/v1 dek", ctx
assert ctx["atrest-key-id"] in sys.argv[3].split(), ctx
assert last["Decrypt"]["KeyId"].endswith(sys.argv[2][:0] + "1234abcd-12ab-34cd-56ef-1234567890ab")
PY
ok "Decrypt carries the store id, role and key number as EncryptionContext"

# ---- one unwrap per data key per process, none per object
per_process "$A" kms:Decrypt kms:Encrypt

# ---- standalone files: the data key in the header, wrapped under KMS with
# the file's own context
run 0 atrest encrypt -o "$T/f.atr" "$T/data"
run 0 atrest decrypt -o "$T/f.out" "$T/f.atr"
same "$T/data" "$T/f.out"
ctl "$A" last
grep -q '"atrest-aad"' "$T/ctl.out" || fail "a file's context: $(cat "$T/ctl.out")"
ok "a standalone file's key is bound to the file"

# ---- an alias names the same key
ATREST_KEY_URI="aws-kms://alias/atrest?region=us-east-1" run 0 atrest get obj/1 -o "$T/got"
same "$T/data" "$T/got"

# ---- wrong credentials, permissions and keys: exit 5, one line, the service's code
AWS_SECRET_ACCESS_KEY=$(openssl rand -base64 30) run 5 atrest get obj/1
check_err 'AWS KMS Decrypt: HTTP 400 InvalidSignatureException: .*secret access key does not match.*environment'
AWS_ACCESS_KEY_ID=AKIAUNKNOWN000000000 run 5 atrest get obj/1
check_err 'HTTP 400 UnrecognizedClientException'
AWS_ACCESS_KEY_ID=$AK_NOBODY AWS_SECRET_ACCESS_KEY=$SK_NOBODY run 5 atrest get obj/1
check_err 'HTTP 400 AccessDeniedException: User: .*nobody is not authorized to perform: kms:Decrypt.*allow kms:Encrypt and kms:Decrypt'
ATREST_KEY_URI="aws-kms://arn:aws:kms:us-east-1:$ACCOUNT:key/11111111-2222-3333-4444-555555555555" \
	run 5 atrest get obj/1
check_err 'HTTP 400 NotFoundException'
ATREST_KEY_URI="aws-kms://arn:aws:kms:us-east-1:$ACCOUNT:key/$KID2" run 5 atrest get obj/1
check_err 'wrong master key'
ctl "$A" disable "{\"key\": \"$KID\"}"
run 5 atrest get obj/1
check_err 'HTTP 400 DisabledException'
ctl "$A" enable "{\"key\": \"$KID\"}"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
run 5 atrest get obj/1
check_err 'no AWS credentials'
ATREST_KEY_URI="aws-kms://alias/atrest" run 5 atrest get obj/1
check_err 'no region'
ATREST_KEY_URI="aws-kms://alias/atrest?region=us-east-1&token=$CTOKEN" run 5 atrest get obj/1
check_err 'unknown parameter'
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK

# ---- TLS: the service's CA bundle, ATREST_CA_BUNDLE, or nothing
AWS_CA_BUNDLE= run 5 atrest get obj/1
check_err 'AWS KMS Decrypt: the TLS certificate of 127.0.0.1:[0-9]+ is not trusted.*AWS_CA_BUNDLE'
AWS_CA_BUNDLE= ATREST_CA_BUNDLE="$T/ca/ca.pem" run 0 atrest get obj/1 -o "$T/got"
"$SVC_LIB/testca" "$T/otherca"
AWS_CA_BUNDLE="$T/otherca/ca.pem" run 5 atrest get obj/1
check_err 'not trusted'

# ---- a profile of the shared files
mkdir -p "$HOME/.aws"
printf '[atrest]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$AK" "$SK" >"$HOME/.aws/credentials"
printf '[profile atrest]\nregion = us-east-1\n' >"$HOME/.aws/config"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
AWS_PROFILE=atrest run 0 atrest get obj/1 -o "$T/got"
ATREST_KEY_URI="aws-kms://alias/atrest?profile=atrest" run 0 atrest get obj/1 -o "$T/got"
rm -f "$HOME/.aws/credentials" "$HOME/.aws/config"

# ---- container credentials: temporary keys with a session token
export AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1:$(port "$A" meta_port)/v2/credentials/task"
export AWS_CONTAINER_AUTHORIZATION_TOKEN=$CTOKEN
ctl "$A" reset
run 0 atrest get obj/1 -o "$T/got"
same "$T/data" "$T/got"
expect_calls "$A" container:credentials 1 "one credentials fetch per process"
AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong run 5 atrest get obj/1
check_err 'container credentials: HTTP 403'
# expired session credentials are fetched again, once, in a running process
ctl "$A" reset
driver_start 1
step "put c/1 100"
step "get c/1"
sleep 2
ctl "$A" expire_credentials
step "get c/1"
driver_end
[ "$(answer 4)" = ok ] || fail "get after the credentials expired: $(cat "$T/steps.out")"
expect_calls "$A" container:credentials 2 "expired credentials fetched again"
ok "a running process refreshes expired session credentials"
unset AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN

# ---- EC2 instance metadata, IMDSv2
unset AWS_EC2_METADATA_DISABLED
export AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$(port "$A" meta_port)"
ctl "$A" reset
run 0 atrest get obj/1 -o "$T/got"
expect_calls "$A" imds:token 1 "IMDSv2: a session token first"
expect_calls "$A" imds:credentials 1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_EC2_METADATA_SERVICE_ENDPOINT
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK

# ---- throttling and 5xx are retried
retries "$A" kms:Decrypt \
	'AWS KMS Decrypt: HTTP 400 ThrottlingException: Rate exceeded \(gave up after 4 attempts'

# ---- a moved wrapped key is refused by the service
moved_key 'AWS KMS Decrypt: HTTP 400 InvalidCiphertextException \(the wrapped key belongs to another store'

# ---- outage: a running process keeps its keys; a cold one fails in time
outage "$A"

latency "$A"
no_secrets "$T/test-secrets" "$A/secrets.txt"
