#!/bin/sh
# Tenants through atrest server: the tenant comes from the API key and is
# bound into every object it writes (the CLI reads it with --tenant; a file
# moved into another tenant fails to open); a key whose tenant is not in the
# store is refused (403); a tenant shredded and added again while the server
# runs gets a new handle.  Keyring generations go to the server's state
# directory (a rolled-back tenant keyring is caught there), which may be
# apart from the store.  Isolation, own master keys, rotation and shred are
# test_server_tenant_isolation.sh.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"

new_key
atrest init >/dev/null
check_exit 0 atrest tenant add alpha
check_exit 0 atrest tenant add beta
new_apikey a writer alpha
new_apikey b writer beta
new_apikey d writer
new_apikey g writer ghost
server_start
grep -q '(2 tenants besides the default)' "$SERVER_LOG" || fail "startup line: $(cat "$SERVER_LOG")"
ok "the startup line counts the tenants"

printf 'alpha secret' >"$T/alpha"
req a PUT /v1/checkpoints/shared/x --data-binary @"$T/alpha"
expect 201 "alpha writes shared/x"
obj="$ATREST_STORE/.atrest/tenants/alpha/objects/shared/x"
[ -f "$obj" ] || fail "alpha's object is not in alpha's namespace"
check_exit 0 atrest inspect "$obj" --json
json 'j["tenant"] == "alpha"'
check_exit 0 atrest --tenant alpha get shared/x
check_out 'alpha secret'
check_exit 3 atrest get shared/x
ok "the CLI reads alpha's object with --tenant alpha only"

# A key whose tenant was never added.
req g GET /v1/checkpoints/shared/x
expect 403 "a key of a tenant not in the store"
body_json 'j["code"] == "unknown_tenant"'
req g PUT /v1/checkpoints/y --data-binary y
expect 403 "no PUT for a tenant not in the store"
[ ! -e "$ATREST_STORE/.atrest/tenants/ghost" ] || fail "a namespace was made for ghost"

# A file moved into another tenant's namespace fails authentication.
mkdir -p "$ATREST_STORE/.atrest/tenants/beta/objects/shared"
cp "$obj" "$ATREST_STORE/.atrest/tenants/beta/objects/shared/x"
req b GET /v1/checkpoints/shared/x
expect 422 "alpha's object copied into beta"
grep -q 'alpha secret' "$T/body" && fail "plaintext of a moved object"
rm "$ATREST_STORE/.atrest/tenants/beta/objects/shared/x"

# Shred and add again while the server runs: the old handle is dropped.
req b PUT /v1/checkpoints/old --data-binary old-beta
expect 201 "beta writes old"
check_exit 0 atrest tenant shred beta
req b GET /v1/checkpoints/old
[ "$(cat "$T/status")" != 200 ] || fail "beta's object read after shred"
grep -q old-beta "$T/body" && fail "beta's plaintext after shred"
ok "beta's object unreadable as soon as the shred returned ($(cat "$T/status"))"
req_until 403 b GET /v1/checkpoints/old
expect 403 "beta's key once the server saw the shred: no such tenant"
check_exit 0 atrest tenant add beta
req_until 404 b GET /v1/checkpoints/old
expect 404 "the new beta has none of the old one's objects"
req b PUT /v1/checkpoints/new --data-binary new-beta
expect 201 "the new beta writes"
check_exit 0 atrest --tenant beta get new
check_out 'new-beta'
ok "the server's object is readable under the new beta keyring"
req a GET /v1/checkpoints/shared/x
expect 200 "alpha is untouched"

# Generations of the keyrings in use are kept in the state directory.
check_exit 0 atrest tenant list --json
alpha_id=$($PY -c 'import json,sys; print([t["keyring_id"] for t in json.load(open(sys.argv[1])) if t["name"] == "alpha"][0])' "$T/out")
[ -e "$ATREST_STORE/.atrest/generations/$alpha_id" ] ||
	fail "no generation of alpha's keyring in the state directory"
ok "alpha's keyring generation is in the state directory"

# A tenant keyring rolled back to an older copy is refused.
new_apikey aa admin alpha
kr="$ATREST_STORE/.atrest/tenants/alpha/keyring"
cp "$kr" "$T/alpha-keyring.old"
req_until 200 aa GET /v1/keys
expect 200 "alpha's new admin key is picked up"
req aa POST /v1/keys/rotate
expect 200 "alpha rotates (a newer keyring generation)"
server_stop
cp "$T/alpha-keyring.old" "$kr"
server_start
req a GET /v1/checkpoints/shared/x
[ "$(cat "$T/status")" != 200 ] || fail "a rolled-back keyring of alpha was used"
grep -q 'rolled back' "$SERVER_LOG" || fail "the log does not tell the rollback: $(cat "$SERVER_LOG")"
ok "a rolled-back keyring of alpha is refused ($(cat "$T/status")) and logged"
server_stop

# A store given as a URI, with the server's files in a state directory apart.
check_exit 2 atrest --store "file://$ATREST_STORE" server --port 0
check_err 'needs --state-dir'
mkdir -m 700 "$T/srv-state"
ATREST_STORE="file://$ATREST_STORE" spawn_server "$SERVER_LOG" --state-dir "$T/srv-state" ||
	fail "the server did not start with a separate state directory"
SERVER_PID=$SPAWNED_PID
URL=$SPAWNED_URL
grep -q "state $T/srv-state" "$SERVER_LOG" || fail "startup line: $(cat "$SERVER_LOG")"
atrest apikey create --role reader --tenant beta --file "$T/srv-state/.atrest/apikeys" |
	tail -n 1 >"$T/s.key"
(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$T/s.key")" >"$T/s.hdr")
req_until 200 s GET /v1/checkpoints/new
expect 200 "a key of the state directory's file works"
[ -n "$(ls "$T/srv-state/.atrest/generations")" ] || fail "no generations in the state directory"
ok "generations are kept in the separate state directory"
server_stop
