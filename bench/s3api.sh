#!/bin/sh
# bench/s3api.sh [OUT]: the same S3 client against atrest's S3 API (a
# local store, encrypted) and against Ceph RGW directly (memstore,
# plaintext), in one run on one machine: /usr/bin/aws s3 cp up and down of
# 4 KiB, 1 MiB and 1 GiB objects (hyperfine, a new process per run, as
# scripts run it), both over plain HTTP on loopback with the same AWS CLI
# settings (multipart above 8 MiB, 8 MiB parts, 10 in flight).  The goal:
# atrest's encrypted throughput at least RGW's plaintext throughput for
# large objects, and small-object latency within 20 %.  Starts its own RGW
# (tests/service/lib/rgw-up) unless RGW_ENV names the env file of a running
# one.  Writes the raw hyperfine results as JSON to OUT (default
# bench/results/s3api-<date>.json) and prints a markdown table.
# S3API_SIZES="4k" runs a subset (a smoke test of the script).
set -eu
SIZES=${S3API_SIZES:-4k 1m 1g}
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/lib.sh"
bin=${ATREST_BIN:-$src/build/atrest}
svc=$src/tests/service/lib
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out=${1:-$src/bench/results/s3api-$stamp.json}
T=$(mktemp -d "${TMPDIR:-/tmp}/atrest-bench-s3api.XXXXXX")
own_rgw=0
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" || :
	[ "$own_rgw" = 1 ] && "$svc/rgw-down" "$T/rgw"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for p in hyperfine /usr/bin/aws; do
	command -v "$p" >/dev/null || { echo "bench/s3api.sh: $p is missing" >&2; exit 1; }
done

if [ -z "${RGW_ENV:-}" ]; then
	"$svc/rgw-up" "$T/rgw" 10737418240 >/dev/null
	own_rgw=1
	RGW_ENV=$T/rgw/env
fi
. "$RGW_ENV"
unset AWS_CA_BUNDLE AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 \
	ATREST_KEY ATREST_PASSPHRASE ATREST_KEY_URI ATREST_API_KEY
export HOME="$T/home" AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1
mkdir -p "$HOME"
export AWS_CONFIG_FILE="$T/aws-config"
for p in default "profile atrest" "profile rgw"; do
	printf '[%s]\nregion = us-east-1\ns3 =\n  multipart_threshold = 8MB\n  multipart_chunksize = 8MB\n  max_concurrent_requests = 10\n' "$p"
done >"$AWS_CONFIG_FILE"
export XDG_STATE_HOME="$T/state" ATREST_KEY_FILE="$T/key" ATREST_STORE="$T/store"

# atrest: a local store, an S3 key, the server with the S3 API.
"$bin" keygen -o "$T/key" >/dev/null
"$bin" init >/dev/null
"$bin" s3key create --role writer --name bench --json >"$T/s3key.json"
A_ID=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_key_id"])' "$T/s3key.json")
A_SECRET=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["secret_access_key"])' "$T/s3key.json")
"$bin" server --port 0 --s3-port 0 2>"$T/server.log" &
server_pid=$!
i=0
while ! grep -q 'S3 API at' "$T/server.log"; do
	i=$((i + 1))
	[ $i -lt 300 ] && kill -0 "$server_pid" 2>/dev/null || { cat "$T/server.log" >&2; exit 1; }
	sleep 0.1
done
A_URL=$(sed -n 's/.*S3 API at \([^ ]*\).*/\1/p' "$T/server.log")

# Each target as a command prefix with its own credentials, read from a
# private credentials file (never in a command line).
(umask 077 && printf '[atrest]\naws_access_key_id = %s\naws_secret_access_key = %s\n[rgw]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$A_ID" "$A_SECRET" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$T/credentials")
unset A_SECRET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export AWS_SHARED_CREDENTIALS_FILE="$T/credentials"
atrest_aws="env AWS_PROFILE=atrest /usr/bin/aws --endpoint-url $A_URL"
rgw_aws="env AWS_PROFILE=rgw /usr/bin/aws --endpoint-url $RGW_ENDPOINT"
bucket=atrest-bench-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
$atrest_aws s3 mb "s3://$bucket" >/dev/null
$rgw_aws s3 mb "s3://$bucket" >/dev/null

# one SIZE-NAME BYTES RUNS: uploads to both, then downloads from both.
one() {
	head -c "$2" /dev/urandom >"$T/in.$1"
	hf "put.$1" "$3" \
		-n "atrest S3 API (put)" "$atrest_aws s3 cp --quiet $T/in.$1 s3://$bucket/o.$1" \
		-n "RGW (put)" "$rgw_aws s3 cp --quiet $T/in.$1 s3://$bucket/o.$1"
	gc
	hf "get.$1" "$3" \
		-n "atrest S3 API (get)" "$atrest_aws s3 cp --quiet s3://$bucket/o.$1 $T/out.a.$1" \
		-n "RGW (get)" "$rgw_aws s3 cp --quiet s3://$bucket/o.$1 $T/out.r.$1"
	cmp -s "$T/in.$1" "$T/out.a.$1" || { echo "atrest returned other bytes" >&2; exit 1; }
	cmp -s "$T/in.$1" "$T/out.r.$1" || { echo "RGW returned other bytes" >&2; exit 1; }
	rm -f "$T/in.$1" "$T/out.a.$1" "$T/out.r.$1"
	$atrest_aws s3 rm --quiet "s3://$bucket/o.$1"
	$rgw_aws s3 rm --quiet "s3://$bucket/o.$1"
	gc
}

{
	printf '{'
	machine before
	printf '"rgw": "%s", ' "$(radosgw --version | cut -d' ' -f3)"
	printf '"aws": "%s", ' "$(/usr/bin/aws --version 2>&1 | cut -d' ' -f1)"
	for s in $SIZES; do
		case $s in
		4k) one 4k 4096 30 ;;
		1m) one 1m 1048576 20 ;;
		1g) one 1g 1073741824 3 ;;
		*) echo "bench/s3api.sh: unknown size $s" >&2; exit 1 ;;
		esac
	done
	printf '"runs": {'
	sep=
	for s in $SIZES; do
		for op in put get; do
			printf '%s"%s.%s": ' "$sep" "$op" "$s"
			cat "$T/$op.$s.json"
			sep=', '
		done
	done
	printf '}, '
	machine after
	printf '"end": 1}\n'
} >"$T/result.json"
mkdir -p "$(dirname "$out")"
/usr/bin/python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"), indent=1)' \
	"$T/result.json" "$out"
$rgw_aws s3 rb --force "s3://$bucket" >/dev/null 2>&1 || :
/usr/bin/python3 "$src/bench/s3api_table.py" "$out"
