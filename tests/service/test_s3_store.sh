#!/bin/sh
# The S3 store against a real Ceph RGW (the ctest fixture): round trips
# from 0 bytes to past the multipart threshold, byte ranges that fetch only
# the segments they need (bytes counted by a proxy), listing, removal,
# tenants (batch deletes), what /usr/bin/aws and s3cmd see (ciphertext),
# the documented bucket policy (a user limited to a prefix) and lifecycle rule,
# tampering through the S3 API (exit 4), refused credentials, a missing
# bucket, an endpoint that is down, a name that does not resolve, and one
# that accepts connections but never answers (bounded time, one line).
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
new_key
MIB=1048576
LOC="s3://$BUCKET/store?part-size=5M&uploads=2"
export ATREST_STORE="$LOC"

# ---- round trips: one PUT up to a part, multipart above
for n in 0 1 4096 65535 65536 65537 $((5 * MIB - 40)) $((5 * MIB)) $((5 * MIB + 1)) \
	$((12 * MIB + 3)); do
	gen "rt$n" "$n" "$T/in.$n"
	check_exit 0 atrest put "rt/$n" "$T/in.$n"
	check_exit 0 atrest get "rt/$n" -o "$T/out.$n"
	same "$T/in.$n" "$T/out.$n"
done
# stored SIZE: bytes and part count (0: one PUT) of object rt/SIZE in RGW.
stored() {
	awscli s3api head-object --bucket "$BUCKET" --key "store/rt/$1" >"$T/head.json"
	$PY -c 'import json,sys; h=json.load(open(sys.argv[1])); e=h["ETag"].strip(chr(34))
print(h["ContentLength"], e.split("-")[1] if "-" in e else 0)' "$T/head.json"
}
# Every object is one PUT up to a part (5 MiB stored), else ceil(size/5M) parts.
for n in 0 4096 $((5 * MIB - 40)) $((12 * MIB + 3)); do
	set -- $(stored $n)
	want=$((($1 + 5 * MIB - 1) / (5 * MIB)))
	[ "$1" -le $((5 * MIB)) ] && want=0
	[ "$2" -eq "$want" ] || fail "rt/$n: $1 bytes stored in $2 parts, expected $want"
done
ok "objects up to one part are one PUT, larger ones a multipart upload of 5 MiB parts"
# Exactly one part's worth stored: one PUT; one byte more: two parts.
set -- $(stored $((5 * MIB - 40)))
exact=$((5 * MIB - 40 - ($1 - 5 * MIB)))
for n in $exact $((exact + 1)); do
	gen "rt$n" "$n" "$T/in.$n"
	check_exit 0 atrest put "rt/$n" "$T/in.$n"
	check_exit 0 atrest get "rt/$n" -o "$T/out.$n"
	same "$T/in.$n" "$T/out.$n"
done
[ "$(stored $exact)" = "$((5 * MIB)) 0" ] || fail "5 MiB stored: $(stored $exact)"
[ "$(stored $((exact + 1)))" = "$((5 * MIB + 1)) 2" ] ||
	fail "5 MiB + 1 stored: $(stored $((exact + 1)))"
ok "5 MiB stored is one PUT, 5 MiB + 1 two parts"
awscli s3api list-multipart-uploads --bucket "$BUCKET" >"$T/mpu.json"
! grep -q UploadId "$T/mpu.json" || fail "uploads left behind: $(cat "$T/mpu.json")"
ok "no multipart upload left behind"

# Listing, stat, verify, removal.
check_exit 0 atrest ls rt/
[ "$(wc -l <"$T/out")" -eq 12 ] || fail "ls rt/: $(cat "$T/out")"
check_exit 0 atrest ls -l rt/
check_out "^ *12582915 .*rt/12582915$"
check_exit 0 atrest verify
check_exit 0 atrest rm rt/1
check_exit 3 atrest get rt/1
check_err 'not found|no object'
check_exit 3 atrest rm rt/1

# ---- byte ranges read only the segments they need
big=$((40 * MIB + 12345))
gen big "$big" "$T/big"
check_exit 0 atrest put big "$T/big"
range_check() { # START END: --range START-END equals the file's bytes
	check_exit 0 atrest get big --range "$1-$2"
	tail -c +$(($1 + 1)) "$T/big" | head -c $(($2 - $1 + 1)) >"$T/want"
	same "$T/want" "$T/out"
}
range_check 0 0
range_check 65530 65545
range_check $((20 * MIB - 7)) $((20 * MIB + 3 * 65536))
range_check $((big - 100)) $((big - 1))
range_check 3 $((big - 1))
check_exit 0 atrest get big --range -777
tail -c 777 "$T/big" >"$T/want"
same "$T/want" "$T/out"
check_exit 2 atrest get big --range "$big-"
check_err 'past the end'

helper proxy proxy "$RGW_PORT"
PROXIED="http://127.0.0.1:$HELPER_PORT"
before=$(cat "$T/proxy/bytes")
AWS_ENDPOINT_URL=$PROXIED check_exit 0 atrest get big --range $((30 * MIB))-$((30 * MIB + 99))
tail -c +$((30 * MIB + 1)) "$T/big" | head -c 100 >"$T/want"
same "$T/want" "$T/out"
sleep 0.5
read_b=$(($(cat "$T/proxy/bytes") - before))
# The keyring, the object's first 64 KiB, one 64 KiB segment, and headers.
[ "$read_b" -lt 180000 ] || fail "a 100-byte range of 40 MiB read $read_b bytes"
ok "a 100-byte range of a 40 MiB object fetched $read_b bytes"
before=$(cat "$T/proxy/bytes")
AWS_ENDPOINT_URL=$PROXIED check_exit 0 atrest get big --range $((10 * MIB))-$((12 * MIB - 1))
read_b=$(($(cat "$T/proxy/bytes") - before))
[ "$read_b" -lt $((2 * MIB + 2 * MIB + 200000)) ] ||
	fail "a 2 MiB range read $read_b bytes"
ok "a 2 MiB range fetched $read_b bytes (read-ahead bounded by what was read)"

# ---- independent clients see ciphertext, and the keyring, under the prefix
awscli s3 ls --recursive "s3://$BUCKET/store/" >"$T/ls"
grep -q 'store/.atrest/keyring$' "$T/ls" || fail "no keyring in $(cat "$T/ls")"
grep -q 'store/big$' "$T/ls" || fail "no object big in $(cat "$T/ls")"
ok "aws s3 ls shows the objects and .atrest/keyring under the prefix"
printf 'PLAINTEXT-MARKER-%s\n' $(seq 1 200) >"$T/marked"
check_exit 0 atrest put marked "$T/marked"
awscli s3 cp "s3://$BUCKET/store/marked" "$T/marked.aws" --quiet
s3c get --force "s3://$BUCKET/store/marked" "$T/marked.s3cmd" >/dev/null 2>&1 ||
	fail "s3cmd get failed"
same "$T/marked.aws" "$T/marked.s3cmd"
! grep -q PLAINTEXT-MARKER "$T/marked.aws" || fail "the stored object holds plaintext"
[ "$(head -c 7 "$T/marked.aws" | xxd -p)" = 89415452455354 ] ||
	fail "no atrest header: $(head -c 7 "$T/marked.aws" | xxd -p)"
ok "what aws and s3cmd download is ciphertext, byte for byte the same"
s3c ls "s3://$BUCKET/store/" >"$T/s3cmd.ls" 2>&1 || fail "s3cmd ls failed"
grep -q "store/marked" "$T/s3cmd.ls" || fail "s3cmd ls: $(cat "$T/s3cmd.ls")"
ok "s3cmd lists the store"

# ---- tampering through the S3 API is an integrity failure
cp "$T/marked.aws" "$T/t1"
flip "$T/t1" 200
s3c put "$T/t1" "s3://$BUCKET/store/marked" >/dev/null 2>&1 || fail "s3cmd put failed"
check_exit 4 atrest get marked
check_err 'integrity|authentic|modified'
head -c $(($(size "$T/marked.aws") - 1)) "$T/marked.aws" >"$T/t2"
awscli s3 cp "$T/t2" "s3://$BUCKET/store/marked" --quiet
check_exit 4 atrest get marked
awscli s3 cp "s3://$BUCKET/store/rt/4096" "s3://$BUCKET/store/marked" --quiet
check_exit 4 atrest get marked
check_err "written as 'rt/4096'"
gen plain 1000 "$T/plain"
awscli s3 cp "$T/plain" "s3://$BUCKET/store/plain" --quiet
check_exit 4 atrest get plain
check_err 'not an atrest object'
ATREST_ALLOW_PLAINTEXT=1 check_exit 0 atrest get plain
same "$T/plain" "$T/out"

# ---- tenants: their own keyrings under .atrest/tenants/, shredded in batches
check_exit 0 atrest tenant add acme
for i in 1 2 3; do
	check_exit 0 atrest --tenant acme put "t/$i" "$T/in.4096"
done
check_exit 0 atrest --tenant acme get t/2 -o "$T/t.out"
same "$T/in.4096" "$T/t.out"
awscli s3 ls --recursive "s3://$BUCKET/store/.atrest/tenants/acme/" >"$T/ls"
[ "$(grep -c 'objects/t/' "$T/ls")" -eq 3 ] || fail "tenant objects: $(cat "$T/ls")"
check_exit 0 atrest tenant shred acme
check_out 'acme shredded: .* 3 objects removed'
awscli s3 ls --recursive "s3://$BUCKET/store/.atrest/tenants/acme/" >"$T/ls" || :
[ ! -s "$T/ls" ] || fail "left after shred: $(cat "$T/ls")"
ok "a shredded tenant's objects and keyring are gone from the bucket"

# ---- the bucket policy and lifecycle rule of docs/OPERATIONS.md, on RGW:
# credentials limited to one prefix (S3 then answers 403 for a missing key)
lim_ak="LIM$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
lim_sk=$(openssl rand -hex 20)
CEPH_CONF="$RGW_DIR/ceph.conf" timeout 120 radosgw-admin user create --uid="u-$lim_ak" \
	--display-name=limited --access-key="$lim_ak" --secret-key="$lim_sk" >/dev/null ||
	fail "radosgw-admin user create"
cat >"$T/policy.json" <<JSON
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/u-$lim_ak"]},
   "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
   "Resource": "arn:aws:s3:::$BUCKET/engine-7/*"},
  {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/u-$lim_ak"]},
   "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
   "Resource": "arn:aws:s3:::$BUCKET",
   "Condition": {"StringLike": {"s3:prefix": ["engine-7/*"]}}}]}
JSON
awscli s3api put-bucket-policy --bucket "$BUCKET" --policy "file://$T/policy.json" ||
	fail "put-bucket-policy"
limited() {
	AWS_ACCESS_KEY_ID=$lim_ak AWS_SECRET_ACCESS_KEY=$lim_sk XDG_STATE_HOME="$T/lim" \
		ATREST_STORE="s3://$BUCKET/engine-7?part-size=5M" "$ATREST_BIN" "$@"
}
check_exit 0 limited put chk "$T/in.$((12 * MIB + 3))"
check_exit 0 limited get chk -o "$T/lim.out"
same "$T/in.$((12 * MIB + 3))" "$T/lim.out"
check_exit 3 limited get nothere
check_exit 0 limited rotate
check_exit 0 limited ls
check_exit 0 limited rm chk
AWS_ACCESS_KEY_ID=$lim_ak AWS_SECRET_ACCESS_KEY=$lim_sk check_exit 5 atrest ls
check_err "HTTP 403 AccessDenied"
ok "credentials limited to their prefix by the documented policy work there only"
cat >"$T/lc.json" <<JSON
{"Rules": [{"ID": "atrest-aborted-uploads", "Status": "Enabled",
  "Filter": {"Prefix": "engine-7/"},
  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}}]}
JSON
awscli s3api put-bucket-lifecycle-configuration --bucket "$BUCKET" \
	--lifecycle-configuration "file://$T/lc.json" || fail "put-bucket-lifecycle-configuration"
awscli s3api get-bucket-lifecycle-configuration --bucket "$BUCKET" >"$T/lc.out"
grep -q '"DaysAfterInitiation": 2' "$T/lc.out" || fail "lifecycle: $(cat "$T/lc.out")"
ok "RGW keeps the documented lifecycle rule for aborted uploads"

# ---- refused credentials, missing bucket: one line, the right exit status
AWS_SECRET_ACCESS_KEY=wrong-secret-0123456789 within 30 5 atrest get big
check_err "S3 GetObject s3://$BUCKET/store/.atrest/keyring: HTTP 403 SignatureDoesNotMatch.*credentials from environment"
AWS_ACCESS_KEY_ID=AKIANOSUCHKEY0000000 within 30 5 atrest ls
check_err "HTTP 403 InvalidAccessKeyId"
ATREST_STORE="s3://atrest-no-such-bucket-$$/p" within 30 3 atrest get x
check_err "s3://atrest-no-such-bucket-$$: HTTP 404 NoSuchBucket"
ATREST_STORE="s3://atrest-no-such-bucket-$$/p" within 30 3 atrest ls
check_err "NoSuchBucket"
! awscli s3 ls "s3://atrest-no-such-bucket-$$" >/dev/null 2>&1 || fail "a reader made a bucket"
ok "reading a missing bucket does not create it"

# ---- endpoints that are down, unknown, or never answer: bounded, one line
down_port=$("$SVC/freeport")
AWS_ENDPOINT_URL="http://127.0.0.1:$down_port" within 30 5 atrest get big
check_err "S3 .*s3://$BUCKET.*cannot reach 127.0.0.1:$down_port"
AWS_ENDPOINT_URL="https://atrest-no-such-host.invalid" within 30 5 atrest get big
check_err "cannot reach .*atrest-no-such-host.invalid.*(resolve|Could not)"
helper blackhole hole
# The default bound, 30 s, measured in the background meanwhile.
t0=$(date +%s)
AWS_ENDPOINT_URL="http://127.0.0.1:$HELPER_PORT" "$ATREST_BIN" ls >"$T/bg.out" 2>"$T/bg.err" &
bg=$!
AWS_ENDPOINT_URL="http://127.0.0.1:$HELPER_PORT" ATREST_S3_TIMEOUT=3 within 12 5 atrest get big
check_err "S3 .*(timed out|Timeout).*"
ATREST_STORE="$LOC&timeout=2" AWS_ENDPOINT_URL="http://127.0.0.1:$HELPER_PORT" \
	within 10 5 atrest ls

# ---- bad locations are usage errors that name the problem
ATREST_STORE="s3://ab/p" check_exit 2 atrest ls
check_err 'bucket name has 3 to 63'
ATREST_STORE="s3://$BUCKET/a/../b" check_exit 2 atrest ls
check_err "prefix"
ATREST_STORE="s3://$BUCKET/p?colour=red" check_exit 2 atrest ls
check_err "bad parameter 'colour'"
AWS_ENDPOINT_URL="http://example.com:9000" check_exit 2 atrest ls
check_err 'allow-http=true'
ATREST_STORE="s3://$BUCKET/store?path-style=true" check_exit 0 atrest get rt/0
check_exit 0 atrest --store "s3://$BUCKET/store" get rt/4096 -o "$T/o"
same "$T/in.4096" "$T/o"

set +e
wait "$bg"
st=$?
set -e
t1=$(date +%s)
[ "$st" -eq 5 ] || fail "ls against a silent endpoint exited $st: $(cat "$T/bg.err")"
[ $((t1 - t0)) -le 40 ] || fail "ls against a silent endpoint took $((t1 - t0)) s"
[ "$(wc -l <"$T/bg.err")" -eq 1 ] && grep -q "S3 HeadBucket s3://$BUCKET: cannot reach .*gave up after" "$T/bg.err" ||
	fail "silent endpoint: $(cat "$T/bg.err")"
ok "with the default timeout a silent endpoint fails in $((t1 - t0)) s: $(cat "$T/bg.err")"
