#!/bin/sh
# Multipart uploads on an S3 store against a real Ceph RGW (the ctest
# fixture): parts uploaded in parallel and out of order (one larger than
# the backend's own part size, so an S3 multipart upload itself), the
# completed object read whole and across part boundaries, listed once,
# ciphertext in the bucket, a part replaced through the S3 API named as an
# integrity failure, create-only completion, rm and abort leaving nothing
# in the bucket, and cleanup by age.
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
new_key
MIB=1048576
export ATREST_STORE="s3://$BUCKET/store?part-size=5M&uploads=2"
check_exit 0 atrest init

gen p1 $((6 * MIB + 7)) "$T/p1"
gen p2 4096 "$T/p2"
gen p3 100001 "$T/p3"
cat "$T/p1" "$T/p2" "$T/p3" >"$T/all"

# bucket_keys PATTERN: keys of the bucket matching PATTERN (a count).
bucket_keys() {
	awscli s3api list-objects-v2 --bucket "$BUCKET" --prefix store/ \
		--query 'Contents[].Key' --output text >"$T/keys" 2>/dev/null || :
	tr '\t' '\n' <"$T/keys" | grep -c -- "$1" || true
}

check_exit 0 atrest upload create big
ID=$(cat "$T/out")
# parts in parallel, the last first
"$ATREST_BIN" upload part big "$ID" 3 "$T/p3" >"$T/o3" 2>&1 &
P3=$!
"$ATREST_BIN" upload part big "$ID" 1 "$T/p1" >"$T/o1" 2>&1 &
P1=$!
check_exit 0 atrest upload part big "$ID" 2 "$T/p2"
wait $P3 || fail "part 3: $(cat "$T/o3")"
wait $P1 || fail "part 1: $(cat "$T/o1")"
ok "three parts uploaded at once"
check_exit 0 atrest upload list
check_out " $ID big$"
check_exit 0 atrest upload complete --if-absent big "$ID" 1 2 3
check_exit 0 atrest get big -o "$T/got"
same "$T/all" "$T/got"
check_exit 0 atrest get big --range $((6 * MIB))-$((6 * MIB + 4200))
tail -c +$((6 * MIB + 1)) "$T/all" | head -c 4201 >"$T/want"
same "$T/want" "$T/out"
check_exit 0 atrest ls
check "the object is listed once" test "$(cat "$T/out")" = big
check_exit 0 atrest verify
check_out 'verified 1 objects, 0 failed'
check "the bucket holds the record and three parts" test "$(bucket_keys "uploads/$ID/")" = 4

# ciphertext in the bucket: no 64-byte run of a part's plaintext
P2KEY=$(tr '\t' '\n' <"$T/keys" | grep "uploads/$ID/00002-")
awscli s3 cp "s3://$BUCKET/$P2KEY" "$T/p2.stored" >/dev/null
head -c 64 "$T/p2" >"$T/p2.head"
$PY -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.exit(open(sys.argv[2],"rb").read() in d)' \
	"$T/p2.stored" "$T/p2.head" || fail "part 2 is stored in plaintext"
ok "parts are ciphertext in the bucket"

# part 3's bytes put in part 2's place through the S3 API
P3KEY=$(tr '\t' '\n' <"$T/keys" | grep "uploads/$ID/00003-")
awscli s3 cp "s3://$BUCKET/$P3KEY" "s3://$BUCKET/$P2KEY" >/dev/null
check_exit 4 atrest get big -o "$T/bad"
grep -q 'part 2' "$T/err" || fail "the error does not name part 2: $(cat "$T/err")"
ok "a part replaced in the bucket is named"
awscli s3 cp "$T/p2.stored" "s3://$BUCKET/$P2KEY" >/dev/null
check_exit 0 atrest get big -o "$T/got"
same "$T/all" "$T/got"

# create-only completion over the object, then abort
check_exit 0 atrest upload create big
ID2=$(cat "$T/out")
check_exit 0 atrest upload part big "$ID2" 1 "$T/p2"
check_exit 1 atrest upload complete --if-absent big "$ID2" 1
check_exit 0 atrest upload abort big "$ID2"
check "abort leaves nothing of that upload" test "$(bucket_keys "uploads/$ID2/")" = 0

# rm removes the parts
check_exit 0 atrest rm big
check "rm leaves no upload key in the bucket" test "$(bucket_keys uploads/)" = 0

# cleanup by age
check_exit 0 atrest upload create old
ID3=$(cat "$T/out")
check_exit 0 atrest upload part old "$ID3" 1 "$T/p2"
check_exit 0 atrest upload cleanup --older-than 1d
check_out '^0 uploads removed$'
sleep 2
check_exit 0 atrest upload cleanup --older-than 1
check_out '^1 uploads removed$'
check "cleanup leaves no upload key in the bucket" test "$(bucket_keys uploads/)" = 0
awscli s3api list-multipart-uploads --bucket "$BUCKET" >"$T/mpu.json"
! grep -q UploadId "$T/mpu.json" || fail "S3 uploads left behind: $(cat "$T/mpu.json")"
ok "no S3 multipart upload left behind"
