#!/bin/sh
# Tenants with their own namespaces, keyrings and master keys through
# atrest server: another tenant's object is 404 and absent from its lists;
# the same name is independent per tenant; rotation of one tenant changes
# nothing for another; a tenant with its own master key ('atrest tenant
# add --key-file') cannot be read without it; 'atrest tenant shred'
# makes a tenant's objects unreadable at once, then its key is refused, and
# leaves others alone.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"

new_key
atrest init >/dev/null
atrest keygen -o "$T/beta.key"
check_exit 0 atrest tenant add alpha
check_exit 0 atrest tenant add beta --key-file "$T/beta.key"
check_exit 0 atrest tenant list
check_out 'alpha'
check_out 'beta'
new_apikey a writer alpha
new_apikey aa admin alpha
new_apikey b writer beta
new_apikey ba admin beta
server_start

# Isolation: 404 and absent from lists.
req a PUT /v1/checkpoints/job/x --data-binary alpha-x
expect 201 "alpha writes job/x"
req b GET /v1/checkpoints/job/x
expect 404 "beta does not see alpha's job/x"
req b HEAD /v1/checkpoints/job/x -I
expect 404 "HEAD: beta does not see it either"
req b DELETE /v1/checkpoints/job/x
expect 404 "beta cannot delete alpha's job/x"
req b GET '/v1/checkpoints?prefix=job/'
expect 200 "beta lists job/"
body_json 'j["objects"] == []'
req b PUT /v1/checkpoints/job/x --data-binary beta-x -H 'If-None-Match: *'
expect 201 "beta creates its own job/x"
req a GET /v1/checkpoints/job/x
[ "$(cat "$T/body")" = alpha-x ] || fail "beta's put changed alpha's job/x"
req b GET /v1/checkpoints/job/x
[ "$(cat "$T/body")" = beta-x ] || fail "beta's job/x"
ok "one name, two independent objects"

# Own keyrings: rotating alpha leaves beta's keys as they were.
req ba GET /v1/keys
cp "$T/body" "$T/beta-keys-before"
req aa POST /v1/keys/rotate
expect 200 "alpha rotates"
req ba GET /v1/keys
cmp -s "$T/body" "$T/beta-keys-before" || fail "alpha's rotation changed beta's keys"
ok "alpha's rotation changed nothing for beta"
server_stop

# Beta's own master key: without it beta is unreadable, alpha is not.
mv "$T/beta.key" "$T/beta.key.away"
server_start
req b GET /v1/checkpoints/job/x
got=$(cat "$T/status")
[ "$got" = 500 ] || [ "$got" = 503 ] || fail "beta readable without its master key ($got)"
grep -q beta-x "$T/body" && fail "beta's plaintext without its master key"
ok "beta's objects need beta's master key ($got)"
grep -q 'cannot open key file' "$SERVER_LOG" || fail "the log does not say why beta failed"
ok "the server's log names the missing key file"
req a GET /v1/checkpoints/job/x
expect 200 "alpha is unaffected"
server_stop
mv "$T/beta.key.away" "$T/beta.key"

# Crypto-shredding one tenant.
server_start
req b GET /v1/checkpoints/job/x
expect 200 "beta readable again with its key"
check_exit 0 atrest tenant shred beta
req b GET /v1/checkpoints/job/x
got=$(cat "$T/status")
[ "$got" != 200 ] || fail "beta's object read after shred"
grep -q beta-x "$T/body" && fail "beta's plaintext after shred"
ok "beta's object unreadable as soon as the shred returned ($got)"
[ -z "$(find "$ATREST_STORE/.atrest/tenants" -path '*beta*' -type f)" ] ||
	fail "files of beta left after shred"
req_until 403 b GET /v1/checkpoints/job/x
expect 403 "beta's keys are refused once the server saw the shred"
req a GET /v1/checkpoints/job/x
expect 200 "alpha survives beta's shred"
[ "$(cat "$T/body")" = alpha-x ] || fail "alpha's job/x after beta's shred"
req a PUT /v1/checkpoints/job/y --data-binary alpha-y
expect 201 "alpha still writes"
server_stop
