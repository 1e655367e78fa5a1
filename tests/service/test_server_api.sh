#!/bin/sh
# atrest server, REST API against the real server process on 127.0.0.1:
# every route and status, metadata headers, ETag, If-None-Match, Range edge
# cases, listing pages, roles, size limit, tampered objects (422 before a
# byte, or a cut connection mid-body), readiness.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"

new_key
atrest init >/dev/null
new_apikey w writer
new_apikey r reader
new_apikey a admin
server_start --max-object-size 8M
grep -Eq '^Max core file size +0 +0 ' "/proc/$SERVER_PID/limits" ||
	fail "core dumps are not disabled: $(grep core "/proc/$SERVER_PID/limits")"
ok "core dumps disabled in the server process"

# Public routes.
req - GET /healthz
expect 200 "healthz without a key"
req - GET /readyz
expect 200 "readyz: store writable, key usable"
req - GET /nope
expect 404 "unknown route"
body_json 'j["code"] == "not_found" and "error" in j'

# Authentication and roles.
req - GET /v1/checkpoints/x
expect 401 "no API key"
header WWW-Authenticate 'Bearer'
printf 'Authorization: Bearer atr_0000000000000000_%043d\n' 0 >"$T/bad.hdr"
req bad GET /v1/checkpoints/x
expect 401 "unknown API key"
printf 'X-API-Key: %s\n' "$(cat "$T/r.key")" >"$T/rx.hdr"
req rx GET /v1/checkpoints/x
expect 404 "X-API-Key works too"
req r PUT /v1/checkpoints/x --data-binary x
expect 403 "a reader may not PUT"
body_json 'j["code"] == "forbidden"'
req w GET /v1/keys
expect 403 "a writer may not list data keys"
req - GET /metrics
expect 401 "metrics need a key"

# PUT, GET, HEAD with metadata and ETag.
head -c 100000 /dev/urandom >"$T/obj"
req w PUT /v1/checkpoints/job-1/chk-1 --data-binary @"$T/obj" \
	-H 'X-Atrest-Meta-Job: 42' -H 'x-atrest-meta-ts: 2026-11-22T10:00Z'
expect 201 "PUT creates"
etag=$(sed -n 's/^ETag: *\(.*\)\r$/\1/ip' "$T/headers")
[ -n "$etag" ] || fail "no ETag on PUT"
body_json 'j["size"] == 100000 and j["name"] == "job-1/chk-1"'
req r GET /v1/checkpoints/job-1/chk-1
expect 200 "GET"
same "$T/obj" "$T/body"
header ETag "^ETag: $etag"
header X-Atrest-Meta-Job '^X-Atrest-Meta-job: 42'
header X-Atrest-Meta-Ts '2026-11-22T10:00Z'
header Content-Type 'application/octet-stream'
header Accept-Ranges 'bytes'
req r HEAD /v1/checkpoints/job-1/chk-1 -I
expect 200 "HEAD"
header Content-Length '100000'
header X-Atrest-Meta-Job '42'
req r GET /v1/checkpoints/job-1/chk-1 -H "If-None-Match: $etag"
expect 304 "If-None-Match with the current ETag"
cmp -s "$T/obj" "$ATREST_STORE/job-1/chk-1" && fail "the stored file is the plaintext"
ok "the stored file is ciphertext"
req w PUT /v1/checkpoints/job-1/chk-1 --data-binary "second"
expect 200 "PUT over an existing object"
req r GET /v1/checkpoints/job-1/chk-1
[ "$(cat "$T/body")" = second ] || fail "GET after overwrite"
ok "overwritten"
req w PUT /v1/checkpoints/job-1/empty --data-binary ""
expect 201 "PUT of an empty body"
req r GET /v1/checkpoints/job-1/empty
expect 200 "GET of an empty object"
[ ! -s "$T/body" ] || fail "empty object has bytes"

# Create-only.
req w PUT /v1/checkpoints/job-1/once --data-binary one -H 'If-None-Match: *'
expect 201 "If-None-Match: * creates when absent"
req w PUT /v1/checkpoints/job-1/once --data-binary two -H 'If-None-Match: *'
expect 412 "If-None-Match: * when present"
body_json 'j["code"] == "precondition_failed"'
req r GET /v1/checkpoints/job-1/once
[ "$(cat "$T/body")" = one ] || fail "a refused create changed the object"
ok "the first create stays"
req w PUT /v1/checkpoints/job-1/once --data-binary two -H 'If-None-Match: "abc"'
expect 400 "If-None-Match other than * on PUT"

# Names and headers.
req w PUT '/v1/checkpoints/a%2Fb%20c' --data-binary pct
expect 201 "percent-encoded name"
[ -f "$ATREST_STORE/a/b c" ] || fail "a%2Fb%20c is not the object 'a/b c'"
ok "a%2Fb%20c is the object 'a/b c'"
req w PUT '/v1/checkpoints/a/../b' --path-as-is --data-binary x
expect 400 "name with .."
req w PUT '/v1/checkpoints/a%00b' --data-binary x
expect 400 "name with NUL"
req w PUT '/v1/checkpoints/a%zzb' --data-binary x
expect 400 "bad escape"
req w PUT "/v1/checkpoints/$(head -c 1100 /dev/zero | tr '\0' a)" --data-binary x
expect 400 "name over 1024 bytes"
req w PUT /v1/checkpoints/.atrest/keyring --data-binary x
expect 400 "the store's own files"
req w PUT /v1/checkpoints/ --data-binary x
expect 400 "empty name"
req w PUT /v1/checkpoints/m --data-binary x -H "X-Atrest-Meta-Bad: $(printf 'a\001b')"
expect 400 "metadata value with a control character"
req w PUT /v1/checkpoints/m --data-binary x -H 'X-Atrest-Meta-A: 1' -H 'x-atrest-meta-a: 2'
expect 400 "metadata key twice"
req w POST /v1/checkpoints/m
expect 405 "POST on an object"
header Allow 'GET, HEAD, PUT, DELETE'

# Ranges.
head -c 300000 /dev/urandom >"$T/big"
req w PUT /v1/checkpoints/r --data-binary @"$T/big"
expect 201 "PUT for ranges"
range() { # range SPEC STATUS FIRST LEN
	req r GET /v1/checkpoints/r -H "Range: $1"
	expect "$2" "Range: $1"
	if [ "$2" = 206 ] || [ "$2" = 200 ]; then
		dd if="$T/big" bs=1 skip="$3" count="$4" 2>/dev/null | cmp -s - "$T/body" ||
			fail "Range $1: wrong bytes"
	fi
}
range bytes=0-0 206 0 1
header Content-Range '^Content-Range: bytes 0-0/300000'
range bytes=65535-65536 206 65535 2
range bytes=299999- 206 299999 1
range bytes=-10 206 299990 10
range bytes=-400000 206 0 300000
range bytes=100-999999 206 100 299900
header Content-Range 'bytes 100-299999/300000'
range bytes=300000- 416 0 0
header Content-Range '^Content-Range: bytes \*/300000'
range bytes=-0 416 0 0
range bytes=5-1 200 0 300000
range 'bytes=0-1,5-6' 200 0 300000
range items=0-1 200 0 300000
req r GET /v1/checkpoints/job-1/empty -H 'Range: bytes=0-'
expect 416 "any range of an empty object"

# Listing.
for n in job-2/a job-2/b job-2/c job-3/a; do
	req w PUT "/v1/checkpoints/$n" --data-binary "$n"
	expect 201 "PUT $n"
done
req r GET '/v1/checkpoints?prefix=job-2/&limit=2'
expect 200 "list page 1"
body_json '[o["name"] for o in j["objects"]] == ["job-2/a", "job-2/b"] and j["truncated"] and j["next_after"] == "job-2/b"'
req r GET '/v1/checkpoints?prefix=job-2/&limit=2&after=job-2/b'
body_json '[o["name"] for o in j["objects"]] == ["job-2/c"] and not j["truncated"]'
req r GET '/v1/checkpoints?prefix=job-2%2F&long=1'
body_json 'all(o["size"] == 7 and o["etag"] and o["cipher"] == "aes-256-gcm" for o in j["objects"])'
req r GET '/v1/checkpoints?limit=0'
expect 400 "limit=0"
req r GET '/v1/checkpoints?limit=x'
expect 400 "limit=x"
req r GET '/v1/checkpoints?prefix=../'
expect 400 "prefix with .."
req r GET '/v1/checkpoints'
body_json 'len(j["objects"]) >= 8 and all("stored_size" in o and "mtime" in o for o in j["objects"])'

# DELETE.
req w DELETE /v1/checkpoints/job-3/a
expect 204 "DELETE"
req w DELETE /v1/checkpoints/job-3/a
expect 404 "DELETE again"
req r GET /v1/checkpoints/job-3/a
expect 404 "GET after DELETE"

# Size limit (8 MiB here).
head -c 9000000 /dev/zero >"$T/9m"
req w PUT /v1/checkpoints/too-big --data-binary @"$T/9m"
expect 413 "Content-Length over the limit"
req w PUT /v1/checkpoints/too-big --data-binary @"$T/9m" -H 'Transfer-Encoding: chunked'
expect 413 "chunked body passing the limit"
req r GET /v1/checkpoints/too-big
expect 404 "nothing stored from a refused body"

# Keys (admin).
req a GET /v1/keys
expect 200 "GET /v1/keys"
body_json 'len(j) == 1 and j[0]["status"] == "active" and j[0]["objects"] >= 1'
first=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["id"])' "$T/body")
req a POST /v1/keys/rotate
expect 200 "POST /v1/keys/rotate"
body_json "j['active'] != $first and j['active'] > 0"
second=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["active"])' "$T/body")
req a GET /v1/keys
body_json "[k['id'] for k in j] == [$first, $second] and j[0]['status'] == 'retired'"
req w PUT /v1/checkpoints/after-rotate --data-binary x
req r HEAD /v1/checkpoints/after-rotate -I
header X-Atrest-Data-Key "^X-Atrest-Data-Key: $second"
req r HEAD /v1/checkpoints/job-2/a -I
header X-Atrest-Data-Key "^X-Atrest-Data-Key: $first"

# Metrics.
req r GET /metrics
expect 200 "metrics"
grep -q '^atrest_server_requests_total{api="rest",route="object",method="PUT",status="201"}' "$T/body" ||
	fail "no request counter in /metrics"
grep -q '^atrest_server_request_duration_seconds_bucket' "$T/body" || fail "no histogram"
grep -q '^atrest_server_auth_failures_total{api="rest",reason="role"}' "$T/body" ||
	fail "no auth failure counter"
grep -q '^atrest_server_connections ' "$T/body" || fail "no connection gauge"
ok "metrics: requests, latency, auth failures, connections"

# Tampering: 422 before any byte, or a cut mid-body.
req w PUT /v1/checkpoints/small --data-binary @"$T/obj"
flip "$ATREST_STORE/small" -100
req r GET /v1/checkpoints/small
expect 422 "a damaged small object"
body_json 'j["code"] == "integrity_failure"'
head -c 4000000 /dev/urandom >"$T/4m"
req w PUT /v1/checkpoints/large --data-binary @"$T/4m"
flip "$ATREST_STORE/large" -1000
set +e
curl -s -H "@$T/r.hdr" --max-time 60 -o "$T/cut" "$URL/v1/checkpoints/large"
rc=$?
set -e
[ "$rc" != 0 ] || fail "a body damaged past its start arrived as a complete transfer"
[ "$(size "$T/cut")" -lt 4000000 ] || fail "all bytes of a damaged object were sent"
ok "damage found mid-body cuts the transfer (curl exit $rc, $(size "$T/cut") bytes)"
req r GET /v1/checkpoints/large -H 'Range: bytes=0-99999'
expect 206 "a range before the damage still reads"
req r GET /v1/checkpoints/large -H 'Range: bytes=3999000-'
expect 422 "a range over the damage"
# Up to 1 MiB a body is verified whole before the status line: damage in
# its last byte is a 422, not a cut transfer.
head -c 1048576 /dev/urandom >"$T/1m"
req w PUT /v1/checkpoints/onemeg --data-binary @"$T/1m"
flip "$ATREST_STORE/onemeg" -10
req r GET /v1/checkpoints/onemeg
expect 422 "a 1 MiB object damaged at its end"
req r GET /v1/checkpoints/large -H 'Range: bytes=2998999-3999999'
expect 422 "a 1 MiB range whose last byte is damaged"

# Not ready: the store cannot be written (a directory where the probe goes).
sleep 1.1
mkdir "$ATREST_STORE/.atrest/readyz.$SERVER_PID"
req - GET /readyz
expect 503 "readyz when the store is not writable"
header Retry-After '5'
rmdir "$ATREST_STORE/.atrest/readyz.$SERVER_PID"

server_stop
