#!/bin/sh
# bench/s3.sh [OUT]: the S3 store against a Ceph RGW on loopback, in one
# run on one machine:
#  - the CLI: atrest put / get of 4 KiB, 1 MiB and 1 GiB against
#    /usr/bin/aws s3 cp and s3cmd put / get of the same plaintext
#    (hyperfine, each run a new process, as a user or script runs them);
#  - the library: 'atrest-bench --only s3' puts and gets the same sizes
#    through a store and as plain signed requests of the same S3 client.
# Starts its own RGW (tests/service/lib/rgw-up) unless RGW_ENV names the
# env file of a running one.  Writes the raw results as JSON to OUT
# (default bench/results/s3-<date>.json) and prints a markdown table.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/lib.sh"
bin=${ATREST_BIN:-$src/build/atrest}
bench=${ATREST_BENCH:-$(dirname "$bin")/atrest-bench}
svc=$src/tests/service/lib
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
out=${1:-$src/bench/results/s3-$stamp.json}
T=$(mktemp -d "${TMPDIR:-/tmp}/atrest-bench-s3.XXXXXX")
own_rgw=0
cleanup() {
	[ "$own_rgw" = 1 ] && "$svc/rgw-down" "$T/rgw"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for p in hyperfine s3cmd /usr/bin/aws; do
	command -v "$p" >/dev/null || { echo "bench/s3.sh: $p is missing" >&2; exit 1; }
done

if [ -z "${RGW_ENV:-}" ]; then
	"$svc/rgw-up" "$T/rgw" 10737418240 >/dev/null
	own_rgw=1
	RGW_ENV=$T/rgw/env
fi
. "$RGW_ENV"
unset AWS_CA_BUNDLE AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 ATREST_KEY \
	ATREST_PASSPHRASE ATREST_KEY_URI
export HOME="$T/home" AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1
mkdir -p "$HOME"
export AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY"
export AWS_ENDPOINT_URL="$RGW_ENDPOINT" AWS_CONFIG_FILE="$T/aws-config"
printf '[default]\nregion = us-east-1\n' >"$AWS_CONFIG_FILE"
S3_ACCESS_KEY=$S3_ACCESS_KEY S3_SECRET_KEY=$S3_SECRET_KEY RGW_PORT=$RGW_PORT \
	"$svc/s3cfg" >"$T/s3cfg"
export XDG_STATE_HOME="$T/state" ATREST_KEY_FILE="$T/key"
bucket=atrest-bench-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
export ATREST_STORE="s3://$bucket/store"
aws="/usr/bin/aws --endpoint-url $RGW_ENDPOINT"
s3c="s3cmd -c $T/s3cfg --no-progress"
"$bin" keygen -o "$T/key" >/dev/null
"$bin" init >/dev/null
$aws s3 ls "s3://$bucket" >/dev/null

# cli SIZE-NAME BYTES RUNS: the three puts, then (the server's garbage
# collected, so that it does not run during the gets) the three gets of the
# same file.  Gets write a file without fsync, as aws and s3cmd do (atrest
# get -o would sync it); hyperfine subtracts the shell's own start-up.
cli() {
	head -c "$2" /dev/urandom >"$T/in.$1"
	hf "put.$1" "$3" \
		-n "atrest put" "$bin put obj/$1 $T/in.$1" \
		-n "aws s3 cp (put)" "$aws s3 cp --quiet $T/in.$1 s3://$bucket/plain/aws.$1" \
		-n "s3cmd put" "$s3c --quiet put $T/in.$1 s3://$bucket/plain/s3cmd.$1"
	gc
	hf "get.$1" "$3" \
		-n "atrest get" "$bin get obj/$1 >$T/out.$1" \
		-n "aws s3 cp (get)" "$aws s3 cp --quiet s3://$bucket/plain/aws.$1 $T/out.aws.$1" \
		-n "s3cmd get" "$s3c --quiet --force get s3://$bucket/plain/s3cmd.$1 $T/out.s3cmd.$1"
	cmp -s "$T/in.$1" "$T/out.$1" || { echo "atrest get returned other bytes" >&2; exit 1; }
	rm -f "$T/in.$1" "$T/out.$1" "$T/out.aws.$1" "$T/out.s3cmd.$1"
	"$bin" rm "obj/$1"
	$aws s3 rm --quiet --recursive "s3://$bucket/plain/"
	gc
}

{
	printf '{'
	machine before
	printf '"rgw": "%s", ' "$(radosgw --version | cut -d' ' -f3)"
	printf '"aws": "%s", ' "$(/usr/bin/aws --version 2>&1 | cut -d' ' -f1)"
	printf '"s3cmd": "%s", ' "$(s3cmd --version | cut -d' ' -f3)"
	cli 4k 4096 30
	cli 1m 1048576 20
	cli 1g 1073741824 3
	printf '"cli": {'
	for s in 4k 1m 1g; do
		for op in put get; do
			printf '"%s.%s": ' "$op" "$s"
			cat "$T/$op.$s.json"
			[ "$op.$s" = get.1g ] || printf ', '
		done
	done
	printf '}, "library": '
	"$bench" --only s3 --s3 "s3://$bucket/lib" --json
	printf ', '
	machine after
	printf '"end": 1}\n'
} >"$T/result.json"
mkdir -p "$(dirname "$out")"
/usr/bin/python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"), indent=1)' \
	"$T/result.json" "$out"
$aws s3 rb --force "s3://$bucket" >/dev/null 2>&1 || :
/usr/bin/python3 "$src/bench/s3_table.py" "$out"
