#!/bin/sh
# Tenants through atrest server, as far as today's core goes: the tenant
# comes from the API key and is bound into every object it writes, and a
# key of one tenant never reads another tenant's object.  The full
# isolation (404, own namespaces, own keyrings and master keys, shred) is
# test_server_tenant_isolation.sh.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"

new_key
atrest init >/dev/null
new_apikey a writer alpha
new_apikey b writer beta
new_apikey d writer
server_start
printf 'alpha secret' >"$T/alpha"
req a PUT /v1/checkpoints/shared/x --data-binary @"$T/alpha"
expect 201 "alpha writes shared/x"
check_exit 0 atrest inspect shared/x --json
json 'j["tenant"] == "alpha"'
req a GET /v1/checkpoints/shared/x
expect 200 "alpha reads its object"
same "$T/alpha" "$T/body"
for k in b d; do
	req $k GET /v1/checkpoints/shared/x
	got=$(cat "$T/status")
	[ "$got" != 200 ] || fail "tenant key $k read alpha's object"
	grep -q 'alpha secret' "$T/body" && fail "alpha's plaintext reached key $k"
	ok "key $k cannot read alpha's object (status $got)"
done
check_exit 0 atrest --tenant alpha get shared/x
check_out 'alpha secret'
check_exit 4 atrest --tenant beta get shared/x
server_stop
