#!/bin/sh
# 'make run': atrest server on 127.0.0.1 with a local store, a development
# master key, an admin API key and an S3 access key made once under a
# private directory (mode 0700; key files 0600), then ready-to-paste curl
# and aws commands.  Ctrl-C stops the server cleanly (it finishes requests
# in flight).
# Usage: scripts/run.sh BUILD_DIR
# (ATREST_DEV_DIR, ATREST_PORT, ATREST_S3_PORT to change)
set -eu
BUILD=${1:-build}
BIN=$(cd "$BUILD" && pwd)/atrest
[ -x "$BIN" ] || { echo "run.sh: no atrest binary in $BUILD" >&2; exit 1; }
DEV=${ATREST_DEV_DIR:-$(cd "$BUILD" && pwd)/dev}
PORT=${ATREST_PORT:-9000}
S3PORT=${ATREST_S3_PORT:-9010}
unset ATREST_KEY ATREST_PASSPHRASE ATREST_KEY_URI ATREST_OLD_KEY \
	ATREST_OLD_KEY_FILE ATREST_OLD_PASSPHRASE ATREST_OLD_KEY_URI \
	ATREST_ALLOW_PLAINTEXT ATREST_API_KEY
umask 077
mkdir -p "$DEV"
chmod 700 "$DEV"
export ATREST_KEY_FILE="$DEV/master.key"
export ATREST_STORE="$DEV/store"
HDR="$DEV/admin.header"
S3ENV="$DEV/s3.env"

if [ ! -f "$ATREST_KEY_FILE" ]; then
	"$BIN" keygen -o "$ATREST_KEY_FILE"
	echo "made a development master key: $ATREST_KEY_FILE (mode 0600)"
fi
[ -d "$ATREST_STORE/.atrest" ] || "$BIN" init
if [ ! -f "$HDR" ]; then
	key=$("$BIN" apikey create --role admin --name make-run | tail -n 1)
	printf 'Authorization: Bearer %s\n' "$key" >"$HDR"
	echo "made an admin API key; curl reads it from $HDR (mode 0600)"
fi
if [ ! -f "$S3ENV" ]; then
	"$BIN" s3key create --role writer --name make-run --json |
		sed -n 's/.*"access_key_id": *"\([^"]*\)".*"secret_access_key": *"\([^"]*\)".*/AWS_ACCESS_KEY_ID=\1\nAWS_SECRET_ACCESS_KEY=\2\nAWS_DEFAULT_REGION=us-east-1/p' >"$S3ENV"
	grep -q AWS_SECRET_ACCESS_KEY "$S3ENV" || { rm -f "$S3ENV"; echo "run.sh: no S3 key made" >&2; exit 1; }
	echo "made an S3 access key; the aws commands read it from $S3ENV (mode 0600)"
fi

LOG="$DEV/server.log"
start() {
	: >"$LOG"
	"$BIN" server --port "$1" --s3-port "$2" 2>>"$LOG" &
	PID=$!
	i=0
	while ! grep -q 'listening on' "$LOG" || ! grep -q 'S3 API at' "$LOG"; do
		if ! kill -0 "$PID" 2>/dev/null || [ $i -gt 300 ]; then
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
}
if ! start "$PORT" "$S3PORT"; then
	kill "$PID" 2>/dev/null || true
	cat "$LOG" >&2
	echo "run.sh: port $PORT or $S3PORT is taken? trying any free ports" >&2
	start 0 0 || { cat "$LOG" >&2; exit 1; }
fi
URL=$(sed -n 's/.*listening on \([^ ;]*\).*/\1/p' "$LOG" | tail -n 1)
S3URL=$(sed -n 's/.*S3 API at \([^ ;]*\).*/\1/p' "$LOG" | tail -n 1)
AWS="aws --endpoint-url $S3URL"
stop() {
	trap - INT TERM
	kill -TERM "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	kill "$TAIL" 2>/dev/null || true
	echo
	echo "server stopped; the store and keys stay in $DEV"
	exit 0
}
trap stop INT TERM
cat "$LOG"
cat <<EOF2

atrest server is running on $URL (Ctrl-C stops it).  Try:

  echo 'state of job 42' | curl -sS -H @$HDR -T - $URL/v1/checkpoints/job-42/chk-1
  curl -sS -H @$HDR -T /etc/os-release -H 'X-Atrest-Meta-Job: 42' $URL/v1/checkpoints/job-42/chk-2
  curl -sS -H @$HDR $URL/v1/checkpoints/job-42/chk-1
  curl -sS -H @$HDR -r 0-4 $URL/v1/checkpoints/job-42/chk-2
  curl -sS -H @$HDR "$URL/v1/checkpoints?prefix=job-42/"
  curl -sS -H @$HDR -X DELETE $URL/v1/checkpoints/job-42/chk-1
  curl -sS -H @$HDR $URL/v1/keys
  curl -sS -H @$HDR $URL/metrics
  curl -sS $URL/readyz

The S3-compatible API is on $S3URL (any S3 client; keys in $S3ENV):

  set -a; . $S3ENV; set +a
  $AWS s3 mb s3://demo
  $AWS s3 cp /etc/os-release s3://demo/etc/os-release
  $AWS s3 ls --recursive s3://demo/
  $AWS s3 cp s3://demo/etc/os-release -

On disk the objects are ciphertext: xxd $ATREST_STORE/job-42/chk-1 | head
More keys: ATREST_STORE=$ATREST_STORE atrest apikey create --role writer
           ATREST_STORE=$ATREST_STORE atrest s3key create --role reader
API reference: docs/SERVER.md and docs/S3.md.  Server log:
EOF2
tail -n 0 -f "$LOG" &
TAIL=$!
wait "$PID" || true
kill "$TAIL" 2>/dev/null || true
