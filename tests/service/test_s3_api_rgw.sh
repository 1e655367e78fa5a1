#!/bin/sh
# The S3 API as an encrypting gateway in front of Ceph RGW (the ctest
# fixture): atrest server on an s3:// store, the real clients (aws, s3cmd,
# rclone) talking to atrest, and RGW read directly to check that what it
# holds is ciphertext under the expected names; an object changed in RGW
# behind atrest's back gives the client an error, never wrong bytes.
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"
RGW_ID=$S3_ACCESS_KEY
RGW_SECRET=$S3_SECRET_KEY
. "$ATREST_SRC/tests/service/lib/s3api.sh"
export AWS_ENDPOINT_URL="$RGW_ENDPOINT" # the store's, for atrest (its own env)
trap 'for p in ${SERVER_PID:-}; do kill -KILL "$p" 2>/dev/null || :; done; s3_cleanup' EXIT
STATE="$T/srv-state"

# RGW itself, with its own credentials.
rgw() {
	AWS_ACCESS_KEY_ID=$RGW_ID AWS_SECRET_ACCESS_KEY=$RGW_SECRET \
		timeout 300 /usr/bin/aws --endpoint-url "$RGW_ENDPOINT" "$@"
}

new_key
check_exit 0 atrest init
mkdir -p -m 700 "$STATE/.atrest"
new_s3key_file() {
	(umask 077 && atrest s3key create --role writer --name "$1" \
		--file "$STATE/.atrest/s3keys" --json >"$T/$1.json") || fail "s3key create"
	/usr/bin/python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
open(sys.argv[2], "w").write(j["access_key_id"])
open(sys.argv[3], "w").write(j["secret_access_key"])' "$T/$1.json" "$T/$1.id" "$T/$1.secret"
}
new_s3key_file w
s3_server_start --state-dir "$STATE"
as w

head -c 10485760 /dev/urandom >"$T/ten"
head -c 70000 /dev/urandom >"$T/small"
run "aws s3 mb through atrest" aws_ s3 mb s3://gateway
run "aws s3 cp 10 MiB through atrest" aws_ s3 cp "$T/ten" s3://gateway/dir/ten
run "aws s3 cp back" aws_ s3 cp s3://gateway/dir/ten "$T/ten.back"
same "$T/ten" "$T/ten.back"
run "s3cmd put through atrest" s3cmd_ put "$T/small" s3://gateway/dir/small
run "s3cmd get (MD5 checked)" s3cmd_ get --force s3://gateway/dir/small "$T/small.back"
same "$T/small" "$T/small.back"
mkdir -p "$T/tree/a"
cp "$T/small" "$T/tree/a/s"
printf x >"$T/tree/x"
run "rclone copy through atrest" rclone_ copy "$T/tree" at:gateway/rc
run "rclone check" rclone_ check "$T/tree" at:gateway/rc
run "rclone cat with a range" rclone_ cat --offset 5000 --count 100 at:gateway/dir/ten
dd if="$T/ten" bs=100 skip=50 count=1 2>/dev/null >"$T/want"
same "$T/want" "$T/out"
run "aws s3 ls through atrest" aws_ s3 ls --recursive s3://gateway/
grep -q ' 10485760 dir/ten$' "$T/out" || fail "ls: $(cat "$T/out")"
ok "listing through atrest: real names, plaintext sizes"

# What RGW holds.
run "RGW holds the object under the store's prefix" rgw s3api head-object \
	--bucket "$BUCKET" --key store/gateway/dir/ten
run "read it from RGW directly" rgw s3 cp "s3://$BUCKET/store/gateway/dir/ten" "$T/raw"
cmp -s "$T/raw" "$T/ten" && fail "RGW holds the plaintext"
[ "$(stat -c %s "$T/raw")" -gt 10485760 ] || fail "the stored object is not larger"
/usr/bin/python3 -c 'import sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
sys.exit(1 if b[5000:9096] in a else 0)' "$T/raw" "$T/ten" ||
	fail "plaintext found in RGW"
ok "RGW holds ciphertext"

# Tamper in RGW: the client gets an error, never the changed bytes.
/usr/bin/python3 -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 1
open(p, "wb").write(b)' "$T/raw"
run "write the changed object into RGW" rgw s3 cp "$T/raw" "s3://$BUCKET/store/gateway/dir/ten"
s3_expect_error "failed" \
	"a tampered object through atrest" aws_ s3 cp s3://gateway/dir/ten "$T/tampered"
if [ -f "$T/tampered" ]; then
	cmp -s "$T/tampered" "$T/ten" && fail "tampered read gave the old bytes?"
	[ "$(stat -c %s "$T/tampered")" -lt 10485760 ] || fail "a full body from a tampered object"
fi
ok "no complete body from a tampered object"
run "the untouched object still reads" aws_ s3 cp s3://gateway/dir/small "$T/small.again"
same "$T/small" "$T/small.again"
run "aws s3 rm --recursive" aws_ s3 rm --recursive s3://gateway/
run "aws s3 rb" aws_ s3 rb s3://gateway
server_stop
