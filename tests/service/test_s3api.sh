#!/bin/sh
# The S3-compatible API (atrest server --s3-port) on a local store, with
# the real clients: Debian's aws (s3 and s3api), s3cmd and rclone, over
# HTTP and then HTTPS.  Buckets, listings with the real names and
# plaintext sizes, ETags the clients check, ranges, metadata, copies,
# batch deletes, presigned URLs; SigV4 refusals (wrong secret, unknown
# key, skew, bad payload hash, aws-chunked with a broken chunk signature,
# a wrong checksum trailer), roles, tenants, ciphertext at rest, tampering;
# then a backup tool, restic, stores, checks and restores through atrest.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"
. "$ATREST_SRC/tests/service/lib/s3api.sh"

new_key
atrest init >/dev/null
check_exit 0 atrest tenant add beta
new_s3key w writer
new_s3key r reader
new_s3key b writer beta
new_apikey m reader
check_exit 0 atrest s3key list --json
grep -q "$(cat "$T/w.id")" "$T/out" || fail "s3key list"
grep -q "$(cat "$T/w.secret")" "$T/out" "$ATREST_STORE/.atrest/s3keys" &&
	fail "a secret is shown by list or kept in plaintext"
ok "s3key list shows ids, never secrets; the key file keeps them sealed"
[ "$(stat -c %a "$ATREST_STORE/.atrest/s3keys")" = 600 ] || fail "s3keys mode"
(unset ATREST_KEY_FILE && check_exit 5 atrest s3key create --role writer)
ok "s3key create needs the master key (to seal the secret)"
head -c 32 /dev/urandom >"$T/wrong.key"
chmod 600 "$T/wrong.key"
ATREST_KEY_FILE="$T/wrong.key" check_exit 5 atrest s3key create --role writer
check_exit 2 atrest s3key create
check_exit 3 atrest s3key revoke ATRAAAAAAAAAAAAAAAAA
check_exit 0 atrest apikey list --json
grep -q "$(cat "$T/w.id")" "$T/out" && fail "apikey list shows an S3 key"
ok "API keys and S3 keys are listed apart"
s3_server_start --s3-domain s3.test

# ---- aws s3 ----
as w
run "aws s3 mb" aws_ s3 mb s3://data
s3_expect_error BucketAlreadyOwnedByYou "mb twice" aws_ s3 mb s3://data
s3_expect_error InvalidBucketName "a bad bucket name" aws_ s3api create-bucket --bucket 'x_y'
mkdir -p "$T/src/d1/d2"
: >"$T/src/zero"
printf x >"$T/src/one"
head -c 10485760 /dev/urandom >"$T/src/ten"
head -c 300000 /dev/urandom >"$T/src/d1/d2/deep"
printf 'hello\n' >"$T/src/d1/hello.txt"
for f in zero one ten; do
	run "aws s3 cp $f" aws_ s3 cp "$T/src/$f" "s3://data/cp/$f"
	run "aws s3 cp back $f" aws_ s3 cp "s3://data/cp/$f" "$T/back-$f"
	same "$T/src/$f" "$T/back-$f"
done
run "aws s3 sync" aws_ s3 sync "$T/src" s3://data/sync
run "aws s3 ls --recursive" aws_ s3 ls --recursive s3://data/sync/
grep -q ' 10485760 sync/ten$' "$T/out" || fail "ls: $(cat "$T/out")"
grep -q ' 300000 sync/d1/d2/deep$' "$T/out" || fail "ls: $(cat "$T/out")"
ok "ls shows the real names and plaintext sizes"
run "aws s3 sync again (nothing to do)" aws_ s3 sync "$T/src" s3://data/sync
[ ! -s "$T/out" ] || fail "a second sync copied again: $(cat "$T/out")"
ok "a second sync sees everything equal"
mkdir "$T/down"
run "aws s3 sync down" aws_ s3 sync s3://data/sync "$T/down"
run "the tree came back" diff -r "$T/src" "$T/down"
run "aws s3 ls (buckets)" aws_ s3 ls
grep -q ' data$' "$T/out" || fail "bucket list: $(cat "$T/out")"

# ---- stored bytes are ciphertext; tampering is an error ----
stored="$ATREST_STORE/data/cp/ten"
[ -f "$stored" ] || fail "no object file at $stored"
grep -c . "$stored" >/dev/null
cmp -s "$stored" "$T/src/ten" && fail "the object is stored in plaintext"
/usr/bin/python3 -c 'import sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
sys.exit(1 if b[:4096] in a or a[-4096:] in b else 0)' "$stored" "$T/src/ten" ||
	fail "plaintext found in the stored object"
ok "the stored object is ciphertext"

# ---- s3api: every operation ----
run "head-object" aws_ s3api head-object --bucket data --key sync/d1/hello.txt
/usr/bin/python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
assert j["ContentLength"] == 6, j
assert j["ETag"] == "\"b1946ac92492d2347c6235b4d2611184\"", j' "$T/out" ||
	fail "head-object: $(cat "$T/out")"
ok "HeadObject: plaintext size, ETag = MD5 of the plaintext"
run "put-object with metadata" aws_ s3api put-object --bucket data --key m/obj \
	--body "$T/src/d1/hello.txt" --metadata job=42,stage=x --content-type text/x-test \
	--content-md5 "$(openssl md5 -binary "$T/src/d1/hello.txt" | base64)"
run "get-object" aws_ s3api get-object --bucket data --key m/obj "$T/m.out"
grep -q '"job": "42"' "$T/out" && grep -q '"ContentType": "text/x-test"' "$T/out" ||
	fail "metadata: $(cat "$T/out")"
ok "x-amz-meta-* and Content-Type come back"
s3_expect_error BadDigest "a wrong Content-MD5" aws_ s3api put-object --bucket data \
	--key m/bad --body "$T/src/one" --content-md5 "$(printf y | openssl md5 -binary | base64)"
run "get-object --range" aws_ s3api get-object --bucket data --key cp/ten \
	--range bytes=1000000-1000999 "$T/range.out"
dd if="$T/src/ten" bs=1000 skip=1000 count=1 2>/dev/null | cmp - "$T/range.out" ||
	fail "range bytes differ"
ok "a range returns exactly those bytes"
s3_expect_error InvalidRange "a range past the end" aws_ s3api get-object --bucket data \
	--key cp/one --range bytes=5-9 "$T/x"
s3_expect_error PreconditionFailed "If-Match with another ETag" aws_ s3api get-object \
	--bucket data --key cp/one --if-match '"00000000000000000000000000000000"' "$T/x"
s3_expect_error 304 "If-None-Match with the ETag" aws_ s3api get-object --bucket data \
	--key sync/d1/hello.txt --if-none-match '"b1946ac92492d2347c6235b4d2611184"' "$T/x"
curl_s3 PUT /data/c/once -H 'If-None-Match: *' --data-binary @"$T/src/one"
expect 200 "If-None-Match: * creates"
curl_s3 PUT /data/c/once -H 'If-None-Match: *' --data-binary @"$T/src/one"
expect 412 "If-None-Match: * on an existing key"
grep -q PreconditionFailed "$T/body" || fail "412 without PreconditionFailed"
curl_s3 PUT /data/c/once -H 'If-Match: "00000000000000000000000000000000"' --data-binary x
expect 412 "If-Match with another ETag on a PUT"
for alg in CRC32 CRC32C SHA1 SHA256; do
	run "put-object with an x-amz-checksum-$alg header" aws_ s3api put-object \
		--bucket data --key "ck/$alg" --body "$T/src/d1/d2/deep" --checksum-algorithm "$alg"
	grep -q "\"Checksum$alg\"" "$T/out" || fail "no Checksum$alg echoed: $(cat "$T/out")"
done
curl_s3 PUT /data/ck/bad -H 'x-amz-checksum-sha1: AAAAAAAAAAAAAAAAAAAAAAAAAAA=' --data-binary x
expect 400 "a wrong x-amz-checksum-sha1"
grep -q BadDigest "$T/body" || fail "no BadDigest"
s3_expect_error NotImplemented "tags are refused, not ignored" aws_ s3api put-object \
	--bucket data --key ck/t --body "$T/src/one" --tagging a=b
s3_expect_error NotImplemented "SSE-KMS is refused, not ignored" aws_ s3api put-object \
	--bucket data --key ck/t --body "$T/src/one" --server-side-encryption aws:kms
s3_expect_error NotImplemented "another storage class is refused" aws_ s3api put-object \
	--bucket data --key ck/t --body "$T/src/one" --storage-class GLACIER
run "SSE-S3 (AES256) is what atrest does anyway" aws_ s3api put-object --bucket data \
	--key ck/t --body "$T/src/one" --server-side-encryption AES256
curl_s3 PUT /data/ck/bad -H 'x-amz-checksum-crc64nvme: AAAAAAAAAAA=' --data-binary x
expect 501 "a checksum algorithm not served is refused, not ignored"
curl_s3 GET /data/cp/ten -H 'Range: bytes=-100'
expect 206 "a suffix range"
header Content-Range 'bytes 10485660-10485759/10485760'
# (curl 7.88 signs query strings wrongly: aws for the response-* overrides.)
run "response-* overrides" aws_ s3api get-object --bucket data --key cp/one \
	--response-cache-control no-store --response-content-type x/y "$T/x"
grep -q '"CacheControl": "no-store"' "$T/out" && grep -q '"ContentType": "x/y"' "$T/out" ||
	fail "overrides: $(cat "$T/out")"
s3_expect_error 304 "If-Modified-Since in the future" aws_ s3api get-object --bucket data \
	--key cp/one --if-modified-since 2100-01-01T00:00:00Z "$T/x"
s3_expect_error PreconditionFailed "If-Unmodified-Since in the past" aws_ s3api get-object \
	--bucket data --key cp/one --if-unmodified-since 2000-01-01T00:00:00Z "$T/x"
run "copy-object (COPY)" aws_ s3api copy-object --bucket data --key m/copy \
	--copy-source data/m/obj
run "copied bytes" aws_ s3api get-object --bucket data --key m/copy "$T/copy.out"
grep -q '"job": "42"' "$T/out" || fail "COPY kept no metadata: $(cat "$T/out")"
same "$T/src/d1/hello.txt" "$T/copy.out"
run "copy-object (REPLACE)" aws_ s3api copy-object --bucket data --key m/copy2 \
	--copy-source data/m/obj --metadata-directive REPLACE --metadata other=1
run "head of the REPLACE copy" aws_ s3api head-object --bucket data --key m/copy2
grep -q '"other": "1"' "$T/out" && ! grep -q '"job"' "$T/out" ||
	fail "REPLACE: $(cat "$T/out")"
ok "CopyObject COPY and REPLACE"
run "list-objects-v2 with a delimiter" aws_ s3api list-objects-v2 --bucket data \
	--prefix sync/ --delimiter /
/usr/bin/python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
keys = [c["Key"] for c in j["Contents"]]
pfx = [p["Prefix"] for p in j["CommonPrefixes"]]
assert keys == ["sync/one", "sync/ten", "sync/zero"], keys
assert pfx == ["sync/d1/"], pfx' "$T/out" || fail "delimiter listing: $(cat "$T/out")"
ok "ListObjectsV2: Contents and CommonPrefixes"
cp "$T/out" "$T/list.whole"
for v in list-objects-v2 list-objects; do
	run "$v with a delimiter, one entry a page" aws_ s3api $v --bucket data \
		--prefix sync/ --delimiter / --page-size 1
	/usr/bin/python3 -c 'import json,sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
k = lambda j: ([c["Key"] for c in j["Contents"]], [p["Prefix"] for p in j["CommonPrefixes"]])
assert k(a) == k(b), (k(a), k(b))' "$T/list.whole" "$T/out" ||
		fail "$v pages with a delimiter: $(cat "$T/out")"
done
ok "pages of one entry give the same keys and CommonPrefixes, each once"
run "list-objects-v2 in pages of 2" aws_ s3api list-objects-v2 --bucket data \
	--prefix sync/ --page-size 2
/usr/bin/python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
keys = [c["Key"] for c in j["Contents"]]
assert keys == ["sync/d1/d2/deep", "sync/d1/hello.txt", "sync/one", "sync/ten", "sync/zero"], keys' \
	"$T/out" || fail "paged listing: $(cat "$T/out")"
ok "ListObjectsV2 pages with continuation tokens"
run "list-objects (V1) with marker" aws_ s3api list-objects --bucket data \
	--prefix sync/ --page-size 1
grep -c '"Key"' "$T/out" | grep -qx 5 || fail "V1 pages: $(cat "$T/out")"
ok "ListObjects V1 pages with markers"
run "odd key names" aws_ s3api put-object --bucket data --key 'odd/a b+c%d&e<f>.txt' \
	--body "$T/src/one"
run "list shows the real name" aws_ s3api list-objects-v2 --bucket data --prefix odd/
grep -q '"Key": "odd/a b+c%d&e<f>.txt"' "$T/out" || fail "odd name: $(cat "$T/out")"
ok "a key with spaces and URL/XML characters round-trips"
run "delete-objects" aws_ s3api delete-objects --bucket data \
	--delete 'Objects=[{Key=m/copy},{Key=m/copy2},{Key=never}]'
grep -q '"Key": "m/copy2"' "$T/out" || fail "delete-objects: $(cat "$T/out")"
run "delete-objects quiet" aws_ s3api delete-objects --bucket data \
	--delete 'Objects=[{Key=c/once}],Quiet=true'
grep -q 'c/once' "$T/out" && fail "quiet mode listed a deleted key"
s3_expect_error "(404)" "deleted keys are gone" aws_ s3api head-object --bucket data --key c/once
run "get-bucket-location" aws_ s3api get-bucket-location --bucket data
run "head-bucket" aws_ s3api head-bucket --bucket data
s3_expect_error 404 "head-bucket of a missing bucket" aws_ s3api head-bucket --bucket nope
s3_expect_error NoSuchBucket "a missing bucket" aws_ s3 ls s3://nope
s3_expect_error BucketNotEmpty "rb of a bucket with objects" aws_ s3 rb s3://data
s3_expect_error NotImplemented "an unsupported subresource" aws_ s3api get-bucket-acl \
	--bucket data

# ---- presigned GET ----
run "aws s3 presign" aws_ s3 presign s3://data/sync/d1/hello.txt --expires-in 300
curl -sS --max-time 60 -o "$T/pre.out" "$(cat "$T/out")" || fail "presigned GET"
same "$T/src/d1/hello.txt" "$T/pre.out"
code=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' "$(sed 's/hello/hellO/' "$T/out")")
[ "$code" = 403 ] || fail "a changed presigned URL: $code"
ok "a presigned URL for another key is refused (403)"

# ---- SigV4 refusals and body checks (hand-made requests) ----
head -c 200000 /dev/urandom >"$T/raw"
raw() {
	$S3RAW "$1" "$S3URL/data/$2" "$(cat "$T/$3.id")" "$(cat "$T/$3.secret")" "$T/raw" \
		>"$T/raw.out" 2>&1 || fail "s3raw $1: $(cat "$T/raw.out")"
	[ "$(head -n 1 "$T/raw.out")" = "$4" ] ||
		fail "$1: expected $4, got $(head -c 600 "$T/raw.out")"
	ok "$1: $4 ${5:-}"
}
raw chunked raw/chunked w 200 "(aws-chunked, chunk signatures checked)"
run "the aws-chunked object" aws_ s3 cp s3://data/raw/chunked "$T/raw.back"
same "$T/raw" "$T/raw.back"
raw chunked-badsig raw/badsig w 403 "SignatureDoesNotMatch"
grep -q SignatureDoesNotMatch "$T/raw.out" || fail "no SignatureDoesNotMatch"
raw trailer raw/trailer w 200 "(unsigned payload, CRC32 trailer checked)"
run "the trailer object" aws_ s3 cp s3://data/raw/trailer "$T/raw.back2"
same "$T/raw" "$T/raw.back2"
raw trailer-badsum raw/badsum w 400 "BadDigest"
raw skew raw/skew w 403 "RequestTimeTooSkewed"
raw badhash raw/badhash w 400 "XAmzContentSHA256Mismatch"
raw nohash raw/nohash w 400
S3RAW_HOST="data.s3.test:${S3URL##*:}" $S3RAW get "$S3URL/sync/d1/hello.txt" \
	"$(cat "$T/w.id")" "$(cat "$T/w.secret")" - >"$T/raw.out" 2>&1
[ "$(cat "$T/raw.out")" = "$(printf '200\nhello\n')" ] || fail "vhost GET: $(cat "$T/raw.out")"
S3RAW_HOST="data.s3.test:${S3URL##*:}" $S3RAW get "$S3URL/?list-type=2&prefix=sync%2Fd1%2F" \
	"$(cat "$T/w.id")" "$(cat "$T/w.secret")" - >"$T/raw.out" 2>&1
grep -q '<Key>sync/d1/hello.txt</Key>' "$T/raw.out" || fail "vhost list: $(cat "$T/raw.out")"
ok "virtual-host style (Host: data.s3.test) for objects and listings"
s3_expect_error "(404)" "refused uploads left nothing" aws_ s3api head-object \
	--bucket data --key raw/badsig
AWS_SECRET_ACCESS_KEY=wrong-wrong-wrong-wrong-wrong-wrong-wron s3_expect_error \
	SignatureDoesNotMatch "a wrong secret" aws_ s3 ls s3://data
AWS_ACCESS_KEY_ID=ATRAAAAAAAAAAAAAAAAA s3_expect_error InvalidAccessKeyId \
	"an unknown access key" aws_ s3 ls s3://data
code=$(curl -s --max-time 60 -o /dev/null -w '%{http_code}' "$S3URL/data/cp/one")
[ "$code" = 403 ] || fail "anonymous GET: $code"
ok "an anonymous request is refused (403)"

# ---- roles, tenants, revocation ----
as r
run "a reader reads" aws_ s3 cp s3://data/cp/one "$T/r.out"
s3_expect_error AccessDenied "a reader may not write" aws_ s3 cp "$T/src/one" s3://data/r
as b
run "tenant beta: its own bucket" aws_ s3 mb s3://data
run "tenant beta: sees only its own" aws_ s3 ls --recursive s3://data
[ ! -s "$T/out" ] || fail "tenant beta sees: $(cat "$T/out")"
ok "the same bucket name in another tenant is another namespace"
run "beta writes" aws_ s3 cp "$T/src/one" s3://data/b1
as w
s3_expect_error "(404)" "the default tenant does not see beta's object" \
	aws_ s3api head-object --bucket data --key b1
check_exit 0 atrest s3key revoke "$(cat "$T/r.id")"
as r
i=0
while aws_ s3 ls s3://data >/dev/null 2>&1 && [ $i -lt 100 ]; do
	sleep 0.3
	i=$((i + 1))
done
s3_expect_error InvalidAccessKeyId "a revoked key" aws_ s3 ls s3://data

# ---- s3cmd ----
as w
run "s3cmd put" s3cmd_ put "$T/src/ten" s3://data/s3cmd/ten
run "s3cmd get (MD5 checked)" s3cmd_ get --force s3://data/s3cmd/ten "$T/s3cmd.ten"
same "$T/src/ten" "$T/s3cmd.ten"
grep -qi 'md5' "$T/err" && fail "s3cmd warned about MD5: $(cat "$T/err")"
run "s3cmd sync" s3cmd_ sync "$T/src/" s3://data/s3cmd/tree/
run "s3cmd ls" s3cmd_ ls -r s3://data/s3cmd/
grep -q ' 300000 *s3://data/s3cmd/tree/d1/d2/deep' "$T/out" || fail "s3cmd ls: $(cat "$T/out")"
run "s3cmd del" s3cmd_ del s3://data/s3cmd/ten

# ---- rclone ----
run "rclone copy" rclone_ copy "$T/src" at:data/rclone
run "rclone check (sizes and MD5s)" rclone_ check "$T/src" at:data/rclone
run "rclone sync" rclone_ sync "$T/src/d1" at:data/rclone/d1
run "rclone lsl" rclone_ lsl at:data/rclone
grep -q ' 10485760 .* ten$' "$T/out" || fail "rclone lsl: $(cat "$T/out")"
run "rclone cat --offset --count" rclone_ cat --offset 4242 --count 1000 at:data/rclone/ten
dd if="$T/src/ten" bs=1 skip=4242 count=1000 2>/dev/null >"$T/rc.want"
same "$T/rc.want" "$T/out"

# ---- restic (minio-go: aws-chunked bodies with chunk signatures over HTTP) ----
export RESTIC_PASSWORD=atrest-test-repository RESTIC_CACHE_DIR="$T/restic-cache"
restic_() {
	timeout 300 /usr/bin/restic --no-cache ${S3_CA:+--cacert "$S3_CA"} \
		-r "s3:$S3URL/data/restic" "$@"
}
run "restic init" restic_ init
run "restic backup" restic_ backup "$T/src"
run "restic check --read-data (its own integrity checks)" restic_ check --read-data
run "restic restore" restic_ restore latest --target "$T/restored"
run "the restored tree" diff -r "$T/src" "$T/restored$T/src"

# ---- tampering in the store ----
flip "$ATREST_STORE/data/rclone/d1/hello.txt" -3
s3_expect_error "IntegrityCheckFailed\|422\|500" "a tampered object is an error" \
	aws_ s3 cp s3://data/rclone/d1/hello.txt "$T/tampered"
[ ! -s "$T/tampered" ] || cmp -s "$T/tampered" "$T/src/d1/hello.txt" && :
ok "no wrong bytes from a tampered object"

# ---- rm --recursive, rb ----
run "aws s3 rm --recursive" aws_ s3 rm --recursive s3://data
run "aws s3 rb" aws_ s3 rb s3://data

# ---- audit and metrics ----
grep -q "\"principal\":\"$(cat "$T/w.id")\"" "$ATREST_STORE/.atrest/audit/"* ||
	fail "no audit line with the access key id as principal"
ok "the audit trail records S3 operations for the access key id"
req m GET /metrics
expect 200 "metrics"
grep -q 'api="s3".*route="PutObject"' "$T/body" || fail "no S3 request metrics"
grep -q 'atrest_server_auth_failures_total{api="s3",reason="signature"}' "$T/body" ||
	fail "no S3 auth failure metrics: $(grep auth_fail "$T/body")"
ok "metrics count S3 requests by operation, and S3 auth failures"
server_stop
check_exit 0 atrest audit verify

# ---- HTTPS ----
check_exit 0 atrest gen-cert --common-name localhost --ip 127.0.0.1 -o "$T/tls"
S3_CA="$T/tls/cert.pem"
s3_server_start --tls-cert "$T/tls/cert.pem" --tls-key "$T/tls/key.pem"
case $S3URL in https://*) ok "the S3 API says https" ;; *) fail "S3URL $S3URL" ;; esac
as w
run "https: aws s3 mb" aws_ s3 mb s3://secure
run "https: aws s3 cp" aws_ s3 cp "$T/src/ten" s3://secure/ten
run "https: put-object with a CRC32 checksum" aws_ s3api put-object --bucket secure \
	--key crc --body "$T/src/d1/d2/deep" --checksum-algorithm CRC32
run "https: s3cmd get" s3cmd_ get --force s3://secure/ten "$T/https.ten"
same "$T/src/ten" "$T/https.ten"
run "https: rclone copy" rclone_ copy "$T/src/d1" at:secure/rc
run "https: rclone check" rclone_ check "$T/src/d1" at:secure/rc
run "https: rclone cat" rclone_ cat at:secure/crc
same "$T/src/d1/d2/deep" "$T/out"
rm -rf "$T/restored"
run "https: restic init" restic_ init
run "https: restic backup" restic_ backup "$T/src"
run "https: restic restore" restic_ restore latest --target "$T/restored"
run "https: the restored tree" diff -r "$T/src" "$T/restored$T/src"
server_stop
