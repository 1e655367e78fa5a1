#!/bin/sh
# atrest server and the store's audit trail and metrics: every operation of
# an authenticated request is recorded for its API key's id (streamed GETs
# included, whose reader closes after the response), tenants are named,
# authentication failures (missing, unknown, revoked key, role, unknown
# tenant) are recorded and counted, API keys created and revoked and the
# server's start, reload and stop are recorded, no secret reaches a line,
# the trail verifies with the exported public key, and /metrics (the
# server's metrics and the library's of every tenant) passes promtool and
# prometheus_client with values checked.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"
LOG="$ATREST_STORE/.atrest/audit"

new_key
atrest init >/dev/null
check_exit 0 atrest tenant add acme
new_apikey w writer
new_apikey r reader
new_apikey a writer acme
new_apikey g writer ghost
wid=$(cut -d_ -f2 "$T/w.key")
rid=$(cut -d_ -f2 "$T/r.key")
aid=$(cut -d_ -f2 "$T/a.key")
gid=$(cut -d_ -f2 "$T/g.key")

# audit_has EXPR: some line j of the trail satisfies the Python expression.
audit_has() {
	cat "$LOG"/audit-*.jsonl >"$T/trail"
	$PY - "$T/trail" "$1" <<'EOF' || fail "no audit line with $1"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if any(eval(sys.argv[2], {}, {"j": j}) for j in lines) else 1)
EOF
	ok "audit line: $1"
}

audit_has "j['op'] == 'apikey_create' and j['name'] == '$wid' and j['outcome'] == 'ok'"
audit_has "j['op'] == 'apikey_create' and j['name'] == '$aid' and j['tenant'] == 'acme'"

server_start
audit_has "j['op'] == 'server' and j['name'] == 'start'"
audit_has "j['op'] == 'server' and j['name'] == 'apikeys_reload' and j['outcome'] == 'ok'"

# An authenticated request's lines carry the key's id and tenant.
head -c 3000000 /dev/urandom >"$T/big"
req w PUT /v1/checkpoints/job/big --data-binary @"$T/big"
expect 201 "writer puts 3 MB"
req r GET /v1/checkpoints/job/big
expect 200 "reader gets it (streamed)"
same "$T/big" "$T/body"
req a PUT /v1/checkpoints/job/t --data-binary tenant-data
expect 201 "acme's writer puts"
req r GET /v1/checkpoints/job/big -r 100-199
expect 206 "a ranged read"
req r HEAD /v1/checkpoints/job/big -I
expect 200 "HEAD"
# The reader's line is written when the reader closes: after the response.
i=0
until [ "$(cat "$LOG"/audit-*.jsonl | grep -c "\"op\":\"get\",\"outcome\":\"ok\",\"principal\":\"$rid\"")" -ge 2 ] ||
	[ $i -ge 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
# One request, one line: the GET opens the object once (no stat beside its
# get), the range is the get's, a HEAD is one stat.
cat "$LOG"/audit-*.jsonl >"$T/trail"
$PY - "$T/trail" "$rid" <<'EOF' || fail "a reader's requests are not one line each"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
mine = [(j["op"], j.get("bytes"), j.get("offset"), j.get("length"))
        for j in lines if j.get("principal") == sys.argv[2] and j.get("name") == "job/big"]
# (a streamed GET's line comes when its reader closes: any order)
key = lambda t: repr(t)
assert sorted(mine, key=key) == sorted([("get", 3000000, None, None),
    ("get", 100, 100, 100), ("stat", None, None, None)], key=key), mine
EOF
ok "GET, ranged GET, HEAD: one audit line each (get, get of the range, stat)"
audit_has "j['op'] == 'put' and j['principal'] == '$wid' and j['name'] == 'job/big' and j['bytes'] == 3000000"
audit_has "j['op'] == 'get' and j['principal'] == '$rid' and j['name'] == 'job/big' and j['bytes'] == 3000000"
audit_has "j['op'] == 'get' and j['principal'] == '$rid' and j['name'] == 'job/big' and j['bytes'] == 100"
audit_has "j['op'] == 'put' and j['principal'] == '$aid' and j['tenant'] == 'acme'"

# Authentication failures: recorded and counted.
req - GET /v1/checkpoints/job/big
expect 401 "no key"
printf 'Authorization: Bearer atr_0123456789abcdef_%s\n' \
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" >"$T/bad.hdr"
req bad GET /v1/checkpoints/job/big
expect 401 "unknown key"
req r PUT /v1/checkpoints/job/x --data-binary x
expect 403 "reader may not put"
req g GET /v1/checkpoints/job/big
expect 403 "a key of a tenant not in the store"
check_exit 0 atrest apikey revoke "$wid"
audit_has "j['op'] == 'apikey_revoke' and j['name'] == '$wid'"
req_until 401 w GET /v1/checkpoints/job/big
expect 401 "the revoked key"
audit_has "j['op'] == 'auth' and j['outcome'] == 'key' and j['principal'] == 'unauthenticated' and j.get('error', '') == 'missing'"
audit_has "j['op'] == 'auth' and j['outcome'] == 'key' and j.get('error', '') == 'unknown_key claimed_id=0123456789abcdef'"
audit_has "j['op'] == 'auth' and j['outcome'] == 'key' and j.get('error', '') == 'unknown_key claimed_id=$wid'"
audit_has "j['op'] == 'auth' and j['outcome'] == 'invalid' and j['principal'] == '$rid' and 'role=reader' in j.get('error', '')"
audit_has "j['op'] == 'auth' and j['outcome'] == 'not_found' and j['principal'] == '$gid' and j['tenant'] == 'ghost'"

# /metrics: the server's and the library's (every tenant), parseable.
req r GET /metrics
expect 200 "metrics"
cp "$T/body" "$T/metrics"
promtool check metrics <"$T/metrics" >"$T/lint" 2>&1 || fail "promtool: $(cat "$T/lint")"
ok "promtool check metrics accepts /metrics"
$PY - "$T/metrics" <<'EOF' || fail "metric values"
import sys
from prometheus_client.parser import text_string_to_metric_families
samples = [s for f in text_string_to_metric_families(open(sys.argv[1]).read())
           for s in f.samples]
def val(name, **labels):
    return sum(s.value for s in samples if s.name == name and
               all(s.labels.get(k) == v for k, v in labels.items()))
checks = {
    "server requests": val("atrest_server_requests_total", route="object", method="PUT", status="201") >= 2,
    "server auth failures": val("atrest_server_auth_failures_total", reason="unknown_key") >= 2,
    "server role failures": val("atrest_server_auth_failures_total", reason="role") >= 1,
    "library auth failures": val("atrest_auth_failures_total") >= 5,
    "library puts, default tenant": val("atrest_operations_total", operation="put", outcome="ok", tenant="") >= 1,
    "library puts, acme": val("atrest_operations_total", operation="put", outcome="ok", tenant="acme") >= 1,
    "library gets": val("atrest_decryptions_total") >= 2,
    "acme's data keys": val("atrest_data_key_objects", tenant="acme") >= 1,
}
bad = [k for k, v in checks.items() if not v]
if bad:
    print("failed:", bad)
    sys.exit(1)
print("metrics checked:", ", ".join(checks))
EOF
ok "/metrics holds the server's and the library's metrics, per tenant"

# A key of another tenant sees the library's metrics of its tenant only.
new_apikey ar reader acme
req_until 200 ar GET /metrics
expect 200 "acme's reader gets /metrics"
cp "$T/body" "$T/metrics-acme"
promtool check metrics <"$T/metrics-acme" >"$T/lint" 2>&1 || fail "promtool: $(cat "$T/lint")"
$PY - "$T/metrics-acme" <<'EOF' || fail "acme's metrics show another tenant"
import sys
from prometheus_client.parser import text_string_to_metric_families
samples = [s for f in text_string_to_metric_families(open(sys.argv[1]).read())
           for s in f.samples]
puts = sum(s.value for s in samples if s.name == "atrest_operations_total" and
           s.labels.get("operation") == "put" and s.labels.get("outcome") == "ok")
tenants = {s.labels["tenant"] for s in samples if "tenant" in s.labels}
print("acme sees puts:", puts, "tenant labels:", tenants)
sys.exit(0 if puts == 1 and tenants <= {"acme"} else 1)
EOF
ok "acme's /metrics has acme's library metrics alone"

# SIGHUP: one more reload in the trail.
reloads() {
	cat "$LOG"/audit-*.jsonl | grep -c '"op":"server".*"name":"apikeys_reload"' || true
}
before=$(reloads)
kill -HUP "$SERVER_PID"
i=0
until [ "$(reloads)" -gt "$before" ] || [ $i -ge 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ "$(reloads)" -gt "$before" ] || fail "SIGHUP's reload is not in the trail"
ok "SIGHUP's reload is in the trail"
server_stop
audit_has "j['op'] == 'server' and j['name'] == 'stop' and j['outcome'] == 'ok'"

# The trail verifies with the exported key; no secret is in it.
check_exit 0 atrest audit pubkey -o "$T/audit.pem"
check_exit 0 atrest audit verify --pubkey "$T/audit.pem"
ok "the trail verifies"
for k in w r a g; do
	secret=$(sed 's/^atr_[0-9a-f]*_//' "$T/$k.key")
	grep -rqF -- "$secret" "$LOG" "$SERVER_LOG" && fail "API key $k's secret in a log"
done
grep -rqiF -- "$(head -n 1 "$ATREST_KEY_FILE")" "$LOG" "$SERVER_LOG" && fail "the master key in a log"
ok "no API key secret nor master key in the trail or the server's log"
