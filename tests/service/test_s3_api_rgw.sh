#!/bin/sh
# The S3 API as an encrypting gateway in front of Ceph RGW (the ctest
# fixture): atrest server on an s3:// store, the real clients (aws, s3cmd,
# rclone) talking to atrest, and RGW read directly to check that what it
# holds is ciphertext under the expected names; an object changed in RGW
# behind atrest's back gives the client an error, never wrong bytes.  The
# 10 MiB upload is multipart (8 MiB parts): its parts are sealed in RGW as
# they arrive, and the completed object lists them.
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"
RGW_ID=$S3_ACCESS_KEY
RGW_SECRET=$S3_SECRET_KEY
S3_MULTIPART_THRESHOLD=8MB
S3_MULTIPART_CHUNKSIZE=8MB
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

# What RGW holds: the whole bucket, read directly.
run "RGW holds the object under the store's prefix" rgw s3api head-object \
	--bucket "$BUCKET" --key store/gateway/dir/ten
run "copy the bucket out of RGW" rgw s3 sync "s3://$BUCKET" "$T/rgw-copy"
/usr/bin/python3 - "$T/ten" "$T/small" "$T/rgw-copy" <<'P' || fail "plaintext found in RGW"
import os, sys
probes = []
for f in sys.argv[1:3]:
    a = open(f, "rb").read()
    probes += [a[o + 100:o + 4196] for o in range(0, len(a), 1 << 20)]
for d, _, files in os.walk(sys.argv[3]):
    for f in files:
        b = open(os.path.join(d, f), "rb").read()
        if any(p in b for p in probes):
            print("plaintext in", f)
            sys.exit(1)
P
ok "RGW holds no plaintext (parts and objects are ciphertext)"
part=$(find "$T/rgw-copy/store/.atrest" -type f -size +8M | head -n 1)
[ -n "$part" ] || fail "no sealed part of the multipart object in RGW: $(find "$T/rgw-copy" -type f)"
ok "the multipart object's parts are sealed objects of their own in RGW"

# Tamper in RGW: the client gets an error, never the changed bytes.
/usr/bin/python3 -c 'import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 1
open(p, "wb").write(b)' "$part"
run "write the changed part into RGW" rgw s3 cp "$part" "s3://$BUCKET/${part#"$T/rgw-copy/"}"
s3_expect_error "failed" \
	"a tampered part through atrest" aws_ s3 cp s3://gateway/dir/ten "$T/tampered"
if [ -f "$T/tampered" ]; then
	[ "$(stat -c %s "$T/tampered")" -lt 10485760 ] || fail "a full body from a tampered object"
fi
ok "no complete body from a tampered object"
run "the untouched object still reads" aws_ s3 cp s3://gateway/dir/small "$T/small.again"
same "$T/small" "$T/small.again"
run "aws s3 rm --recursive" aws_ s3 rm --recursive s3://gateway/
run "aws s3 rb" aws_ s3 rb s3://gateway
server_stop
