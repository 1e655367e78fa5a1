#!/bin/sh
# atrest server on an S3 store (the Ceph RGW of the ctest fixture): the
# store is s3://BUCKET/PREFIX and the server's own files (API keys, keyring
# generations, and the audit trail, which an object store cannot append to)
# are in its state directory; objects written over HTTP are in the bucket;
# create-only PUTs racing in two server processes are exact through S3's
# conditional put; the trail verifies.
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"
trap 'for p in ${SERVER_PID:-} ${SERVER2_PID:-}; do kill -KILL "$p" 2>/dev/null || :; done; s3_cleanup' EXIT
HTTPC="$PY $ATREST_SRC/tests/service/lib/httpc.py"
STATE="$T/srv-state"
AUDIT="$STATE/.atrest/audit"

new_key
check_exit 0 atrest init
check_exit 2 atrest server --port 0
check_err 'needs --state-dir'
mkdir -p -m 700 "$STATE/.atrest"
atrest apikey create --role writer --name s3 --file "$STATE/.atrest/apikeys" |
	tail -n 1 >"$T/w.key"
(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$T/w.key")" >"$T/w.hdr")
wid=$(cut -d_ -f2 "$T/w.key")

server_start --state-dir "$STATE"
grep -q "store $ATREST_STORE .*state $STATE; audit $AUDIT;" "$SERVER_LOG" ||
	fail "startup line: $(cat "$SERVER_LOG")"
ok "the startup line names the S3 store, the state directory and the trail"

head -c 300000 /dev/urandom >"$T/obj"
req w PUT /v1/checkpoints/job/x --data-binary @"$T/obj"
expect 201 "PUT into the S3 store"
req w GET /v1/checkpoints/job/x
expect 200 "GET from the S3 store"
same "$T/obj" "$T/body"
req w GET /v1/checkpoints/job/x -r 1000-1999
expect 206 "a range from the S3 store"
req w GET '/v1/checkpoints?prefix=job/'
body_json '[o["name"] for o in j["objects"]] == ["job/x"]'
awscli s3api head-object --bucket "$BUCKET" --key store/job/x >/dev/null ||
	fail "the object is not in the bucket"
awscli s3 cp "s3://$BUCKET/store/job/x" "$T/raw" >/dev/null
cmp -s "$T/obj" "$T/raw" && fail "the bucket holds the plaintext"
ok "the bucket holds the object, encrypted"

# Create-only PUTs racing in two server processes on the one bucket.
spawn_server "$T/server2.log" --state-dir "$STATE" ||
	fail "the second server did not start"
SERVER2_PID=$SPAWNED_PID
check "create-only race across processes on S3" $HTTPC create-race "$PORT" "$T/w.key" \
	once/obj "${SPAWNED_URL##*:}" 6
kill -TERM "$SERVER2_PID"
wait "$SERVER2_PID" || fail "the second server exited $? after SIGTERM"
SERVER2_PID=
server_stop

# The trail is in the state directory and verifies.
[ -n "$(ls "$AUDIT"/audit-*.jsonl 2>/dev/null)" ] || fail "no audit trail in $AUDIT"
grep -q "\"op\":\"put\",\"outcome\":\"ok\",\"principal\":\"$wid\",\"tenant\":\"\",\"name\":\"job/x\"" \
	"$AUDIT"/audit-*.jsonl || fail "no put line for the key in the trail"
ok "the trail records the key's put"
check_exit 0 atrest audit pubkey -o "$T/audit.pem"
check_exit 0 atrest audit verify --pubkey "$T/audit.pem" "$AUDIT"
ok "the trail in the state directory verifies"
