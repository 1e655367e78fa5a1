#!/bin/sh
# Azure Key Vault master keys (azure-kv://) against the contract server
# tests/contract/azure_kv.py (real RSA-OAEP-256 and AES key wrap, tokens it
# signs and checks): round trips, calls per data key, the key version kept
# with each wrapped key (vault-side rotation, pinned versions, rewrap),
# Managed HSM's A256KW, client secrets, federated tokens and managed
# identity, expired tokens (refreshed), wrong credentials and permissions,
# retries, outages and a moved wrapped key.  No secret in any output.
set -eu
. "$ATREST_SRC/tests/service/lib/svc.sh"
. "$ATREST_SRC/tests/service/lib/kms.sh"
azure_up
P=$(port "$Z")
export ATREST_KEY_URI="$AZURE_URI"

# last_version OP: the key version the vault used for OP's last call.
last_version() {
	ctl "$Z" last
	$PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["version"])' \
		"$T/ctl.out" "$1"
}

# ---- round trip
round_trip "$Z" kv:wrapkey "azure-kv:127.0.0.1:$P/keys/kek"
expect_calls "$Z" aad:token 3 "one token per process"
per_process "$Z" kv:unwrapkey kv:wrapkey

# ---- the key version is kept: rotation in the vault, pinned versions, rewrap
V1=$(last_version unwrapkey)
ctl "$Z" rotate '{"key": "kek"}'
run 0 atrest get obj/1 -o "$T/got"
[ "$(last_version unwrapkey)" = "$V1" ] || fail "unwrap did not use the recorded version"
ok "after a rotation in the vault, keys unwrap with the version they were wrapped with"
run 0 atrest rotate
run 0 atrest put obj/2 "$T/data"
V2=$(last_version wrapkey)
[ "$V2" != "$V1" ] || fail "a new data key was not wrapped with the newest version"
ok "a new data key is wrapped with the newest version"
run 0 atrest rewrap
ctl "$Z" disable_version "{\"key\": \"kek\", \"version\": \"$V1\"}"
run 0 atrest get obj/1 -o "$T/got"
run 0 atrest get obj/2 -o "$T/got"
ok "after rewrap nothing needs the old version"
ATREST_KEY_URI="azure-kv://127.0.0.1:$P/keys/kek/$V1" ATREST_STORE="$T/pinned" run 5 atrest init
check_err 'HTTP 403 Forbidden/KeyDisabled: Operation wrapKey is not allowed on a disabled key'
ctl "$Z" enable_version "{\"key\": \"kek\", \"version\": \"$V1\"}"
ATREST_KEY_URI="azure-kv://127.0.0.1:$P/keys/kek/$V1" ATREST_STORE="$T/pinned" run 0 atrest init
[ "$(last_version wrapkey)" = "$V1" ] || fail "a pinned version was not used"
ok "a version in the URI is the one wrapped with"

# ---- Managed HSM keys: AES key wrap
ATREST_KEY_URI="azure-kv://127.0.0.1:$P/keys/hsmkek?alg=A256KW" ATREST_STORE="$T/hsm" \
	run 0 atrest put a "$T/data"
ATREST_KEY_URI="azure-kv://127.0.0.1:$P/keys/hsmkek?alg=A256KW" ATREST_STORE="$T/hsm" \
	run 0 atrest get a -o "$T/got"
same "$T/data" "$T/got"
ctl "$Z" last
grep -q '"alg": "A256KW"' "$T/ctl.out" || fail "not A256KW: $(cat "$T/ctl.out")"
ok "Managed HSM keys wrap with A256KW"

# ---- expired tokens are fetched again, once, in a running process
ctl "$Z" reset
driver_start 1
step "put t/1 100"
sleep 2
ctl "$Z" expire_tokens
sleep 1
step "get t/1"
driver_end
[ "$(answer 3)" = ok ] || fail "get after the token expired: $(cat "$T/steps.out")"
expect_calls "$Z" aad:token 2 "the expired token replaced once"

# ---- wrong credentials, permissions, keys
AZURE_CLIENT_SECRET=$SECRET2 run 5 atrest get obj/1
check_err 'Azure AD token: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided.*AZURE_CLIENT_SECRET'
AZURE_TENANT_ID=00000000-0000-0000-0000-000000000000 run 5 atrest get obj/1
check_err 'AADSTS90002.*AZURE_TENANT_ID'
AZURE_TENANT_ID=../../evil run 5 atrest get obj/1
check_err 'AZURE_TENANT_ID must be'
AZURE_CLIENT_ID=app-2 AZURE_CLIENT_SECRET=$SECRET2 run 5 atrest get obj/1
check_err "Azure Key Vault unwrapkey: HTTP 403 Forbidden/AccessDenied: .*does not have keys unwrapKey permission.*Key Vault Crypto User"
ATREST_KEY_URI="azure-kv://127.0.0.1:$P/keys/nosuch" ATREST_STORE="$T/nosuch" run 5 atrest init
check_err 'Azure Key Vault wrapkey: HTTP 404 KeyNotFound.*no such key'
ATREST_KEY_URI="azure-kv://127.0.0.1:$P/keys/nosuch" run 5 atrest get obj/1
check_err 'wrong master key'
ATREST_KEY_URI="azure-kv://127.0.0.1:$P/keys/other" run 5 atrest get obj/1
check_err 'wrong master key'
ATREST_KEY_URI="azure-kv://127.0.0.1:$P/secrets/kek" run 5 atrest get obj/1
check_err 'not an Azure Key Vault key URI'
ATREST_CA_BUNDLE= run 5 atrest get obj/1
check_err 'not trusted'

# ---- a federated token (AKS workload identity)
$PY - "$T/k8s.key" "$T/fedtoken" <<'PY'
import jwt, sys, time
now = int(time.time())
open(sys.argv[2], "w").write(jwt.encode(
    {"iss": "https://oidc.example.test/cluster", "sub": "system:serviceaccount:default:atrest",
     "aud": "api://AzureADTokenExchange", "iat": now, "exp": now + 3600},
    open(sys.argv[1]).read(), algorithm="RS256"))
PY
cat "$T/fedtoken" >>"$T/test-secrets"
echo >>"$T/test-secrets"
unset AZURE_CLIENT_SECRET
AZURE_CLIENT_ID=app-fed AZURE_FEDERATED_TOKEN_FILE="$T/fedtoken" run 0 atrest get obj/1 -o "$T/got"
echo "not-a-jwt" >"$T/badtoken"
AZURE_CLIENT_ID=app-fed AZURE_FEDERATED_TOKEN_FILE="$T/badtoken" run 5 atrest get obj/1
check_err 'AADSTS700211'

# ---- managed identity: instance metadata, then App Service
unset AZURE_TENANT_ID AZURE_CLIENT_ID
ctl "$Z" reset
AZURE_POD_IDENTITY_AUTHORITY_HOST="http://127.0.0.1:$(port "$Z" meta_port)" \
	run 0 atrest get obj/1 -o "$T/got"
expect_calls "$Z" msi:token 1 "instance metadata token"
IDENTITY_ENDPOINT="http://127.0.0.1:$(port "$Z" meta_port)/msi/token" IDENTITY_HEADER=$IDHEADER \
	run 0 atrest get obj/1 -o "$T/got"
IDENTITY_ENDPOINT="http://127.0.0.1:$(port "$Z" meta_port)/msi/token" IDENTITY_HEADER=wrong \
	run 5 atrest get obj/1
check_err 'managed identity token: HTTP 401'
AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:1 run 5 atrest get obj/1
check_err 'no Azure credentials'
export AZURE_TENANT_ID=$TENANT AZURE_CLIENT_ID=app-1 AZURE_CLIENT_SECRET=$SECRET1

retries "$Z" kv:unwrapkey 'Azure Key Vault unwrapkey: HTTP 429 Throttled: .*gave up after'
moved_key 'Azure Key Vault: the wrapped key belongs to another store or role'
outage "$Z"
latency "$Z"
no_secrets "$T/test-secrets" "$Z/secrets.txt"
