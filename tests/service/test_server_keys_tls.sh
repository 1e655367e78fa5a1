#!/bin/sh
# API keys and TLS of atrest server: 'atrest apikey' (file mode, hash only,
# list, revoke), keys picked up without a restart (file change and SIGHUP),
# a broken key file leaving the keys in use, ATREST_API_KEY, plain HTTP
# refused off loopback, and TLS with 'atrest gen-cert' checked with curl and
# openssl s_client (TLS 1.3 and 1.2 offered, 1.1 refused), certificate
# reload on SIGHUP.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"

new_key
check_exit 3 atrest apikey create --role reader
check_err 'no store at'
atrest init >/dev/null
check_exit 2 atrest apikey create --role king
check_exit 2 atrest apikey create
check_exit 2 atrest apikey create --role reader --tenant '../x'
new_apikey w writer
keys="$ATREST_STORE/.atrest/apikeys"
[ "$(stat -c %a "$keys")" = 600 ] || fail "apikeys mode $(stat -c %a "$keys")"
ok "apikeys file has mode 0600"
# The secret is all after "atr_<16 hex>_" (base64url: it may hold '_').
secret=$(sed 's/^atr_[0-9a-f]*_//' "$T/w.key")
[ ${#secret} = 43 ] || fail "the key's secret is not 43 characters: ${#secret}"
grep -qF -- "$secret" "$keys" && fail "the key's secret is in the file"
ok "only a hash of the key is kept"
wid=$(cut -d_ -f2 "$T/w.key")
check_exit 0 atrest apikey list
check_out "^$wid +writer +- "
check_exit 0 atrest apikey create --role admin --tenant acme --name ops --json
json 'j["role"] == "admin" and j["tenant"] == "acme" and j["key"].startswith("atr_" + j["id"] + "_")'
check_exit 0 atrest apikey list --json
json 'len(j) == 2 and {k["role"] for k in j} == {"writer", "admin"} and all("key" not in k for k in j)'

server_start
req w PUT /v1/checkpoints/a --data-binary a
expect 201 "writer key works"

# A new key is picked up without a restart; a revoked one stops working.
new_apikey r reader
req_until 200 r GET /v1/checkpoints/a
expect 200 "a key created while running works within seconds"
rid=$(cut -d_ -f2 "$T/r.key")
check_exit 0 atrest apikey revoke "$rid"
check_exit 3 atrest apikey revoke "$rid"
req_until 401 r GET /v1/checkpoints/a
expect 401 "a revoked key is refused within seconds"
log_wait 'event=apikeys_reload result=ok' || fail "no reload logged"

# A broken key file: refused, the keys in use stay.
cp "$keys" "$T/keys.good"
printf '{"version": 1, "keys": [' >"$keys"
kill -HUP "$SERVER_PID"
log_wait 'apikeys_reload result=failed' || fail "a broken key file was not reported"
req w GET /v1/checkpoints/a
expect 200 "keys in use survive a broken key file"
cp "$T/keys.good" "$keys"
kill -HUP "$SERVER_PID"
server_stop

# The single admin key from the environment.
printf 'Authorization: Bearer dev-admin-key-123\n' >"$T/env.hdr"
ATREST_API_KEY=dev-admin-key-123 server_start
req env POST /v1/keys/rotate
expect 200 "ATREST_API_KEY is an admin key"
printf 'Authorization: Bearer dev-admin-key-12\n' >"$T/envbad.hdr"
req envbad GET /v1/keys
expect 401 "a prefix of the admin key is refused"
server_stop

# Plain HTTP only on loopback.
check_exit 2 atrest server --port 0 --listen 0.0.0.0
check_err 'refusing plain HTTP on 0.0.0.0'
check_exit 2 atrest server --port 0 --tls-cert x
check_exit 2 atrest server

# TLS with a generated certificate.
check_exit 0 atrest gen-cert --common-name localhost --ip 127.0.0.1 -o "$T/tls"
[ "$(stat -c %a "$T/tls/key.pem")" = 600 ] || fail "key.pem mode"
ok "key.pem has mode 0600"
check_exit 1 atrest gen-cert --common-name localhost -o "$T/tls"
check_err 'File exists'
server_start --tls-cert "$T/tls/cert.pem" --tls-key "$T/tls/key.pem"
case $URL in https://*) ok "the server says https" ;; *) fail "URL $URL" ;; esac
req w GET /v1/checkpoints/a --cacert "$T/tls/cert.pem"
expect 200 "GET over TLS, certificate verified by curl"
req w GET /v1/checkpoints/a --cacert "$T/tls/cert.pem" --tlsv1.3
expect 200 "TLS 1.3"
req w GET /v1/checkpoints/a --cacert "$T/tls/cert.pem" --tlsv1.2 --tls-max 1.2
expect 200 "TLS 1.2"
s_client() {
	timeout 30 openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$T/tls/cert.pem" \
		"$@" </dev/null >"$T/s_client" 2>&1
}
check "openssl s_client: TLS 1.3 offered" s_client -tls1_3
grep -q 'TLSv1.3' "$T/s_client" || fail "no TLS 1.3: $(cat "$T/s_client")"
grep -q 'Verify return code: 0' "$T/s_client" || fail "certificate not verified"
check "openssl s_client: TLS 1.2 offered" s_client -tls1_2
check "openssl s_client: TLS 1.1 refused" not s_client -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
check "openssl s_client: TLS 1.0 refused" not s_client -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
check "openssl s_client: CBC suites refused" not s_client -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA'
s_client -tls1_3 -showcerts
first=$(openssl x509 -noout -fingerprint -sha256 <"$T/s_client")
check_exit 0 atrest gen-cert --common-name localhost --ip 127.0.0.1 -o "$T/tls2"
cp "$T/tls2/cert.pem" "$T/tls/cert.pem"
cp "$T/tls2/key.pem" "$T/tls/key.pem"
kill -HUP "$SERVER_PID"
sleep 1
s_client -tls1_3 -showcerts
second=$(openssl x509 -noout -fingerprint -sha256 <"$T/s_client")
[ "$first" != "$second" ] || fail "SIGHUP did not load the new certificate"
ok "SIGHUP reloads the TLS certificate"
req w GET /v1/checkpoints/a --cacert "$T/tls2/cert.pem"
expect 200 "GET verified against the new certificate"
server_stop
