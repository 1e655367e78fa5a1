#!/bin/sh
# bench/s3api_big.sh [GIB]: a GIB GiB (default 10) upload through the S3 API
# with aws s3 cp in 100 MiB parts, 8 in flight, to atrest server on a local
# store; prints the time and the server's peak resident memory (VmHWM), then
# downloads it again and compares every byte (the source is a sparse file of
# zeros, so it needs no disk of its own). Keys come from private files.
set -eu
BIN=${ATREST_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/atrest}
GIB=${1:-10}
PID=
T=$(mktemp -d ${TMPDIR:-/var/tmp}/atrest-big.XXXXXX)
trap '[ -z "$PID" ] || { kill -TERM "$PID"; wait "$PID"; } 2>/dev/null; rm -rf "$T"' EXIT
cd "$T"
export ATREST_KEY_FILE=$T/key ATREST_STORE=$T/store XDG_STATE_HOME=$T/state HOME=$T
$BIN keygen -o "$T/key" >/dev/null
$BIN init >/dev/null
$BIN s3key create --role writer --name big --json > s3.json
ID=$(/usr/bin/python3 -c 'import json;print(json.load(open("s3.json"))["access_key_id"])')
SK=$(/usr/bin/python3 -c 'import json;print(json.load(open("s3.json"))["secret_access_key"])')
umask 077
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$ID" "$SK" > creds
printf '[default]\nregion = us-east-1\ns3 =\n  multipart_threshold = 100MB\n  multipart_chunksize = 100MB\n  max_concurrent_requests = 8\n' > conf
export AWS_SHARED_CREDENTIALS_FILE=$T/creds AWS_CONFIG_FILE=$T/conf AWS_EC2_METADATA_DISABLED=true
$BIN server --port 0 --s3-port 0 2> server.log &
PID=$!
i=0
while ! grep -q 'S3 API at' server.log; do
	i=$((i + 1))
	[ $i -lt 300 ] && kill -0 "$PID" 2>/dev/null || { cat server.log >&2; exit 1; }
	sleep 0.1
done
URL=$(sed -n 's/.*S3 API at \([^ ]*\).*/\1/p' server.log)
A="/usr/bin/aws --endpoint-url $URL"
$A s3 mb s3://big >/dev/null
truncate -s "${GIB}G" in.bin
grep VmHWM /proc/$PID/status
start=$(date +%s)
$A s3 cp --quiet in.bin s3://big/in.bin
end=$(date +%s)
echo "upload $GIB GiB: $((end - start)) s"
grep -E "VmHWM|VmRSS" /proc/$PID/status
$A s3api head-object --bucket big --key in.bin | grep -E "ContentLength|ETag"
rm -f in.bin
start=$(date +%s)
$A s3 cp --quiet s3://big/in.bin - | cmp - /dev/zero 2>&1 | head -1 || true
end=$(date +%s)
echo "download $GIB GiB (compared with zeros; EOF on - expected): $((end - start)) s"
grep -E "VmHWM|VmRSS" /proc/$PID/status
du -sh "$T/store"
