#!/bin/sh
# S3 multipart uploads through atrest server's S3 API on a local store:
# aws s3 cp of 40 MiB and 1 GiB files (multipart, 10 parts in flight) with
# the S3 multipart ETag; rclone with 8 concurrent part uploads (5 MiB and
# 100 MiB parts) and the server's peak memory under 256 MiB; s3cmd; and every s3api multipart call with
# S3's errors (InvalidPartOrder, InvalidPart, EntityTooSmall, NoSuchUpload).
# The parts are sealed as they arrive; the stored object is ciphertext.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"
S3_MULTIPART_THRESHOLD=8MB
S3_MULTIPART_CHUNKSIZE=8MB
. "$ATREST_SRC/tests/service/lib/s3api.sh"

new_key
atrest init >/dev/null
new_s3key w writer
s3_server_start
as w
run "mb" aws_ s3 mb s3://mpu
t_swept=$(date +%s)
run "an upload that will end outside the S3 API" aws_ s3api create-multipart-upload \
	--bucket mpu --key swept --metadata a=b
swept=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["UploadId"])' "$T/out")
check_exit 0 atrest upload abort mpu/swept "$swept"
[ -f "$ATREST_STORE/.s3/uploads/$swept" ] || fail "no creation marker for $swept"

# aws s3 cp, multipart.
head -c 41943040 /dev/urandom >"$T/forty"
run "aws s3 cp 40 MiB (5 parts of 8 MiB)" aws_ s3 cp "$T/forty" s3://mpu/forty
run "head-object" aws_ s3api head-object --bucket mpu --key forty
want=$(/usr/bin/python3 -c 'import hashlib,sys
d = open(sys.argv[1], "rb").read(); c = 8 << 20
m = b"".join(hashlib.md5(d[i:i + c]).digest() for i in range(0, len(d), c))
print("%s-%d" % (hashlib.md5(m).hexdigest(), (len(d) + c - 1) // c))' "$T/forty")
grep -q "\"ETag\": \"\\\\\"$want\\\\\"\"" "$T/out" || fail "ETag: want $want: $(cat "$T/out")"
grep -q '"ContentLength": 41943040' "$T/out" || fail "size: $(cat "$T/out")"
ok "the multipart ETag is md5(part MD5s)-N and the size the plaintext's"
run "aws s3 cp back" aws_ s3 cp s3://mpu/forty "$T/forty.back"
same "$T/forty" "$T/forty.back"
run "a range across parts" aws_ s3api get-object --bucket mpu --key forty \
	--range bytes=8388000-8389999 "$T/r"
dd if="$T/forty" bs=1000 skip=8388 count=2 2>/dev/null | cmp - "$T/r" ||
	fail "range across a part boundary"
ok "a range across a part boundary"
/usr/bin/python3 -c 'import sys
a = open(sys.argv[1], "rb").read()
probes = [a[o + 100:o + 4196] for o in range(0, len(a), 8 << 20)]
for f in sys.argv[2:]:
    b = open(f, "rb").read()
    if any(p in b for p in probes): sys.exit(1)' "$T/forty" $(find "$ATREST_STORE" -type f) ||
	fail "plaintext of a part found in the store"
ok "no part is stored in plaintext"

# s3api, step by step.
head -c 6291456 /dev/urandom >"$T/p1"
head -c 1000 /dev/urandom >"$T/p2"
run "create-multipart-upload" aws_ s3api create-multipart-upload --bucket mpu --key steps \
	--metadata origin=test --content-type application/x-steps
id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["UploadId"])' "$T/out")
run "upload-part 2 (out of order)" aws_ s3api upload-part --bucket mpu --key steps \
	--upload-id "$id" --part-number 2 --body "$T/p2"
e2=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ETag"])' "$T/out")
run "upload-part 1" aws_ s3api upload-part --bucket mpu --key steps --upload-id "$id" \
	--part-number 1 --body "$T/p1"
e1=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ETag"])' "$T/out")
[ "$e1" = "\"$(md5sum <"$T/p1" | cut -c1-32)\"" ] || fail "part ETag $e1"
ok "a part's ETag is the MD5 of its bytes"
run "upload-part 1 again (replaces it)" aws_ s3api upload-part --bucket mpu --key steps \
	--upload-id "$id" --part-number 1 --body "$T/p1"
run "list-parts" aws_ s3api list-parts --bucket mpu --key steps --upload-id "$id"
/usr/bin/python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
assert [(p["PartNumber"], p["Size"]) for p in j["Parts"]] == [(1, 6291456), (2, 1000)], j' \
	"$T/out" || fail "list-parts: $(cat "$T/out")"
run "list-multipart-uploads" aws_ s3api list-multipart-uploads --bucket mpu
grep -q "\"UploadId\": \"$id\"" "$T/out" || fail "upload not listed: $(cat "$T/out")"
cat >"$T/order.json" <<J
{"Parts": [{"PartNumber": 2, "ETag": $(printf '%s' "$e2" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}, {"PartNumber": 1, "ETag": $(printf '%s' "$e1" | /usr/bin/python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}]}
J
s3_expect_error InvalidPartOrder "parts out of order" aws_ s3api complete-multipart-upload \
	--bucket mpu --key steps --upload-id "$id" --multipart-upload "file://$T/order.json"
/usr/bin/python3 - "$T" "$e1" "$e2" <<'P'
import json, sys
t, e1, e2 = sys.argv[1:4]
def w(name, parts):
    json.dump({"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
              open("%s/%s.json" % (t, name), "w"))
w("badetag", [(1, '"00000000000000000000000000000000"'), (2, e2)])
w("missing", [(1, e1), (3, e2)])
w("small", [(2, e2), (3, e2)])
w("good", [(1, e1), (2, e2)])
P
s3_expect_error InvalidPart "a wrong part ETag" aws_ s3api complete-multipart-upload \
	--bucket mpu --key steps --upload-id "$id" --multipart-upload "file://$T/badetag.json"
s3_expect_error InvalidPart "a part never uploaded" aws_ s3api complete-multipart-upload \
	--bucket mpu --key steps --upload-id "$id" --multipart-upload "file://$T/missing.json"
run "complete-multipart-upload" aws_ s3api complete-multipart-upload --bucket mpu \
	--key steps --upload-id "$id" --multipart-upload "file://$T/good.json"
run "get the completed object" aws_ s3api get-object --bucket mpu --key steps "$T/steps"
grep -q '"origin": "test"' "$T/out" && grep -q '"ContentType": "application/x-steps"' "$T/out" ||
	fail "creation metadata lost: $(cat "$T/out")"
cat "$T/p1" "$T/p2" | cmp - "$T/steps" || fail "completed bytes"
ok "the completed object: parts in order, metadata from the creation"
s3_expect_error NoSuchUpload "the completed upload is gone" aws_ s3api list-parts \
	--bucket mpu --key steps --upload-id "$id"
run "create another" aws_ s3api create-multipart-upload --bucket mpu --key small
id2=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["UploadId"])' "$T/out")
run "two small parts" aws_ s3api upload-part --bucket mpu --key small --upload-id "$id2" \
	--part-number 2 --body "$T/p2"
run "part 3" aws_ s3api upload-part --bucket mpu --key small --upload-id "$id2" \
	--part-number 3 --body "$T/p2"
s3_expect_error EntityTooSmall "a part under 5 MiB before the last" aws_ s3api \
	complete-multipart-upload --bucket mpu --key small --upload-id "$id2" \
	--multipart-upload "file://$T/small.json"
run "abort-multipart-upload" aws_ s3api abort-multipart-upload --bucket mpu --key small \
	--upload-id "$id2"
s3_expect_error NoSuchUpload "an aborted upload" aws_ s3api upload-part --bucket mpu \
	--key small --upload-id "$id2" --part-number 1 --body "$T/p2"
s3_expect_error NoSuchUpload "an unknown upload id" aws_ s3api abort-multipart-upload \
	--bucket mpu --key small --upload-id 'nope'
s3_expect_error "(404)" "nothing was published" aws_ s3api head-object --bucket mpu --key small

# rclone, 8 parts in flight; s3cmd multipart.
head -c 31457280 /dev/urandom >"$T/thirty"
mkdir "$T/rc"
cp "$T/thirty" "$T/rc/thirty"
run "rclone copy, multipart, 8 concurrent parts" rclone_ copy --s3-upload-cutoff 5M \
	--s3-chunk-size 5M --s3-upload-concurrency 8 "$T/rc" at:mpu/rclone
run "rclone check" rclone_ check "$T/rc" at:mpu/rclone
run "rclone cat with a range" rclone_ cat --offset 10000000 --count 5000 at:mpu/rclone/thirty
dd if="$T/thirty" bs=5000 skip=2000 count=1 2>/dev/null | cmp - "$T/out" || fail "rclone range"
run "rclone copy of 30 MiB in one PUT (streamed: opaque ETag)" rclone_ copy "$T/rc" \
	at:mpu/single
run "rclone check of the single PUT" rclone_ check "$T/rc" at:mpu/single
run "s3cmd multipart put" s3cmd_ put --multipart-chunk-size-mb=5 "$T/thirty" s3://mpu/s3cmd
run "s3cmd get" s3cmd_ get --force s3://mpu/s3cmd "$T/thirty.s3cmd"
same "$T/thirty" "$T/thirty.s3cmd"

# 1 GiB with aws s3 cp: memory stays bounded.
head -c 1073741824 /dev/urandom >"$T/gib"
run "aws s3 cp 1 GiB" aws_ s3 cp "$T/gib" s3://mpu/gib
run "aws s3 cp 1 GiB back" aws_ s3 cp s3://mpu/gib "$T/gib.back"
same "$T/gib" "$T/gib.back"
rm -f "$T/gib.back"
mkdir "$T/g"
mv "$T/gib" "$T/g/gib"
run "rclone copy 1 GiB in 100 MiB parts, 8 in flight" rclone_ copy --s3-upload-cutoff 100M \
	--s3-chunk-size 100M --s3-upload-concurrency 8 "$T/g" at:mpu/rc100
run "rclone check" rclone_ check "$T/g" at:mpu/rc100
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
[ "$hwm" -lt 262144 ] || fail "the server's peak RSS was $hwm kB"
ok "the server's peak RSS stayed under 256 MiB ($hwm kB)"
# The marker of the upload aborted outside is removed by the next sweep
# (SIGHUP, or every ten minutes) once it is a minute old.
while [ $(($(date +%s) - t_swept)) -le 62 ]; do sleep 1; done
kill -HUP "$SERVER_PID"
i=0
while [ -f "$ATREST_STORE/.s3/uploads/$swept" ] && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ ! -f "$ATREST_STORE/.s3/uploads/$swept" ] || fail "the stale upload marker stayed"
# The sweep logs its count once it has been through every tenant.
log_wait 'upload_markers_removed=1' || fail "no sweep event"
ok "the sweep removed the marker of an upload aborted outside the S3 API"
run "aws s3 rm --recursive" aws_ s3 rm --recursive s3://mpu
run "rb" aws_ s3 rb s3://mpu
server_stop
