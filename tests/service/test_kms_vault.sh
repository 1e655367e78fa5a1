#!/bin/sh
# HashiCorp Vault Transit master keys (vault://) against the contract
# server tests/contract/vault.py: round trips, calls per data key, the
# context (derived keys) and the binding of every wrapped key, VAULT_TOKEN,
# AppRole, ~/.vault-token, expired tokens (logged in again) and renewal,
# policies, namespaces, key rotation with `atrest rewrap` and Transit's own
# rewrap, vault+http:// on loopback only, retries, outages and a moved
# wrapped key.  No secret may show in any output.
set -eu
. "$ATREST_SRC/tests/service/lib/svc.sh"
. "$ATREST_SRC/tests/service/lib/kms.sh"
vault_up
P=$(port "$V")
export ATREST_KEY_URI="$VAULT_URI"

# blob_versions STORE: the "vault:vN" prefixes of a keyring's wrapped keys.
blob_versions() {
	$PY - "$1/.atrest/keyring" <<'PY'
import base64, json, sys
k = json.load(open(sys.argv[1]))
blobs = [k["check"], k["audit"]["wrapped"]] + [d["wrapped"] for d in k["keys"] if "wrapped" in d]
print(" ".join(sorted({base64.b64decode(b).decode().split(":")[1] for b in blobs})))
PY
}

# ---- round trip with VAULT_TOKEN
round_trip "$V" transit:encrypt "vault:127.0.0.1:$P/transit/keys/kek"
expect_calls "$V" auth:lookup-self 3 "the token is looked up once per process"
ctl "$V" last
$PY - "$T/ctl.out" "$T/store/.atrest/keyring" <<'PY' || fail "context is not the store's"
import base64, json, sys
last = json.load(open(sys.argv[1]))
kr = json.load(open(sys.argv[2]))
sid = bytes.fromhex(kr["store_id"])
ids = [k["id"] for k in kr["keys"] if "wrapped" in k]
assert base64.b64decode(last["decrypt"]["context"]) in [
    b"atrest/v1 dek" + sid + i.to_bytes(4, "little") for i in ids]
PY
ok "decrypt carries the store's AAD as context"
per_process "$V" transit:decrypt transit:encrypt
moved_key 'Vault Transit: the wrapped key belongs to another store or role'

# ---- a derived key: the service itself refuses another store's context
export ATREST_KEY_URI="vault://127.0.0.1:$P/transit/keys/dkek"
export ATREST_STORE="$T/dstore"
run 0 atrest put obj/1 "$T/data"
run 0 atrest get obj/1 -o "$T/got"
same "$T/data" "$T/got"
moved_key 'Vault decrypt: HTTP 400: cipher: message authentication failed \(the wrapped key belongs to another store or Transit key'
export ATREST_KEY_URI="vault://127.0.0.1:$P/transit/keys/kek"
export ATREST_STORE="$T/store"

# ---- policies and tokens
VAULT_TOKEN=$NOTOK run 5 atrest get obj/1
check_err 'Vault decrypt: HTTP 403: permission denied \(the VAULT_TOKEN token lacks update on transit/decrypt/kek'
VAULT_TOKEN=hvs.unknown run 5 atrest get obj/1
check_err 'Vault token lookup: HTTP 403: permission denied \(the token was refused: expired or revoked\)'
ATREST_KEY_URI="vault://127.0.0.1:$P/transit/keys/nokey" run 5 atrest get obj/1
check_err 'permission denied'
VAULT_CACERT= run 5 atrest get obj/1
check_err 'not trusted.*VAULT_CACERT'
ATREST_KEY_URI="vault://127.0.0.1:$P/transit/kek" run 5 atrest get obj/1
check_err 'not a Vault Transit key URI'

# ---- ~/.vault-token, as the Vault CLI leaves it
unset VAULT_TOKEN
printf '%s\n' "$ATOK" >"$HOME/.vault-token"
run 0 atrest get obj/1 -o "$T/got"
rm "$HOME/.vault-token"
run 5 atrest get obj/1
check_err 'no Vault token'

# ---- AppRole: login, expired tokens, renewal, namespaces
export VAULT_ROLE_ID=role-1 VAULT_SECRET_ID=$SID
ctl "$V" reset
run 0 atrest get obj/1 -o "$T/got"
expect_calls "$V" auth:login 1 "one AppRole login per process"
VAULT_SECRET_ID=wrong run 5 atrest get obj/1
check_err 'Vault AppRole login: HTTP 400: invalid role or secret ID \(check VAULT_ROLE_ID and VAULT_SECRET_ID\)'
ctl "$V" reset
driver_start 1
step "put t/1 100"
sleep 2
ctl "$V" expire_tokens
step "get t/1"
driver_end
[ "$(answer 3)" = ok ] || fail "get after the token expired: $(cat "$T/steps.out")"
expect_calls "$V" auth:login 2 "an expired token: logged in again, once"
VAULT_ROLE_ID=role-short VAULT_SECRET_ID=$SID2
ctl "$V" reset
driver_start 1
step "get t/1"
sleep 3
step "get t/1"
driver_end
[ "$(tr '\n' ' ' <"$T/steps.out")" = "ok ok ok " ] || fail "renewal: $(cat "$T/steps.out")"
[ "$(calls "$V" auth:renew-self)" -ge 1 ] || fail "the token was not renewed"
ok "a token close to its end is renewed"
export VAULT_ROLE_ID=role-1 VAULT_SECRET_ID=$SID
VAULT_ROLE_ID=role-ns VAULT_SECRET_ID=$SIDNS VAULT_NAMESPACE=team-a ATREST_STORE="$T/nsstore" \
	run 0 atrest put a "$T/data"
VAULT_ROLE_ID=role-ns VAULT_SECRET_ID=$SIDNS VAULT_NAMESPACE=team-a ATREST_STORE="$T/nsstore" \
	run 0 atrest get a -o "$T/got"
VAULT_ROLE_ID=role-ns VAULT_SECRET_ID=$SIDNS ATREST_STORE="$T/nsstore" run 5 atrest get a
check_err 'invalid role or secret ID'

# ---- key rotation in Vault: atrest rewrap moves every key to the newest version
ctl "$V" rotate '{"key": "transit/kek"}'
[ "$(blob_versions "$T/store")" = v1 ] || fail "before rewrap: $(blob_versions "$T/store")"
ndek=$($PY -c 'import json,sys; print(sum(1 for k in json.load(open(sys.argv[1]))["keys"] if "wrapped" in k))' \
	"$T/store/.atrest/keyring")
ctl "$V" reset
# (Without the audit trail this process never unwraps the audit key, which
# then moves inside Vault too.)
ATREST_AUDIT=off run 0 atrest rewrap
[ "$(blob_versions "$T/store")" = v2 ] || fail "after rewrap: $(blob_versions "$T/store")"
# The data keys and the audit key moved by Transit's rewrap, inside Vault:
# one call each, and the only decrypt is the one that opens the keyring
# (its check secret).
expect_calls "$V" transit:rewrap "$((ndek + 1))" \
	"atrest rewrap: one Transit rewrap per data key and the audit key"
expect_calls "$V" transit:decrypt 1 "atrest rewrap: no data key decrypted"
ctl "$V" min_decryption_version '{"key": "transit/kek", "version": 2}'
run 0 atrest get obj/1 -o "$T/got"
same "$T/data" "$T/got"
ok "after rewrap the store needs only the newest key version"

# ---- Transit's rewrap: the data key never leaves Vault
ctl "$V" reset
printf 'wrap store-a\nquit\n' | "$ATREST_DRIVER" >"$T/driver.out"
ctl "$V" rotate '{"key": "transit/kek"}'
printf 'wrap store-a\nrewrap store-a\nunwrap store-a\nquit\n' | "$ATREST_DRIVER" >"$T/driver.out"
[ "$(tr '\n' ' ' <"$T/driver.out")" = "ok ok ok " ] || fail "rewrap: $(cat "$T/driver.out")"
ctl "$V" last
$PY -c 'import json,sys; l=json.load(open(sys.argv[1])); sys.exit(0 if l["rewrap"]["version"] == 3 and l["decrypt"]["version"] == 3 else 1)' \
	"$T/ctl.out" || fail "rewrap versions: $(cat "$T/ctl.out")"
expect_calls "$V" transit:rewrap 1 "one rewrap call"
expect_calls "$V" transit:decrypt 1 "decrypted only to check the result"

# ---- vault+http:// only on loopback
ATREST_KEY_URI="vault+http://127.0.0.1:$(port "$V" plain_port)/transit/keys/kek" \
	run 0 atrest get obj/1 -o "$T/got"
ATREST_KEY_URI="vault+http://vault.example.com:8200/transit/keys/kek" run 5 atrest get obj/1
check_err 'loopback'

retries "$V" transit:decrypt 'Vault decrypt: HTTP 429: request path "transit": rate limit quota exceeded \(gave up after'
outage "$V"
latency "$V"
no_secrets "$T/test-secrets" "$V/secrets.txt"
