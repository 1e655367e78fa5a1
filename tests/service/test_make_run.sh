#!/bin/sh
# make run (scripts/run.sh): the development server starts on 127.0.0.1
# with keys made once in a private directory, and the commands it prints
# work when pasted as they are: the REST calls with curl, the S3 calls with
# the aws CLI; objects on disk are ciphertext; SIGTERM stops it cleanly; a
# second start reuses the keys and reads what the first stored.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"

DEV="$T/dev"
BUILD=$(dirname "$ATREST_BIN")
export ATREST_DEV_DIR="$DEV" ATREST_PORT=0 ATREST_S3_PORT=0
unset ATREST_STORE
RUN_PID=

stop_run() {
	[ -n "$RUN_PID" ] || return 0
	kill -TERM "$RUN_PID" 2>/dev/null || true
	i=0
	while kill -0 "$RUN_PID" 2>/dev/null && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$RUN_PID" 2>/dev/null || true
	RUN_PID=
}
trap 'stop_run; rm -rf "$T"' EXIT

# start OUT: scripts/run.sh in the background until it printed its help.
start() {
	: >"$1"
	sh "$ATREST_SRC/scripts/run.sh" "$BUILD" >"$1" 2>&1 &
	RUN_PID=$!
	i=0
	until grep -q 'Server log:' "$1"; do
		kill -0 "$RUN_PID" 2>/dev/null || { cat "$1" >&2; fail "run.sh ended early"; }
		[ $i -lt 1800 ] || { cat "$1" >&2; fail "run.sh printed no help in 180 s"; }
		sleep 0.1
		i=$((i + 1))
	done
}

# line OUT PATTERN: the first printed command line matching PATTERN.
line() {
	grep -m 1 -- "$2" "$1" | sed 's/^  //'
}

start "$T/run1.out"
ok "make run started the server"
[ "$(stat -c %a "$DEV")" = 700 ] || fail "dev dir mode $(stat -c %a "$DEV")"
for f in master.key admin.header s3.env; do
	[ "$(stat -c %a "$DEV/$f")" = 600 ] || fail "$f mode $(stat -c %a "$DEV/$f")"
done
ok "private directory 0700, key files 0600"
grep -q 'encryption at rest on' "$T/run1.out" || fail "no startup line saying encryption at rest is on"
if grep -q "$(cat "$DEV/master.key")" "$T/run1.out"; then fail "the master key was printed"; fi
if grep -q "$(sed 's/.*Bearer //' "$DEV/admin.header")" "$T/run1.out"; then fail "the admin API key was printed"; fi
if grep -q "$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$DEV/s3.env")" "$T/run1.out"; then fail "the S3 secret was printed"; fi
ok "no key, API key or S3 secret in what it prints"

# The REST commands, as printed.
sh -c "$(line "$T/run1.out" "echo 'state of job 42'")" >"$T/put.out"
sh -c "$(line "$T/run1.out" "-T /etc/os-release")" >"$T/put2.out"
sh -c "$(line "$T/run1.out" "admin.header http.*/chk-1\$")" >"$T/get.out"
[ "$(cat "$T/get.out")" = "state of job 42" ] || fail "GET gave '$(cat "$T/get.out")'"
sh -c "$(line "$T/run1.out" "-r 0-4")" >"$T/range.out"
[ "$(cat "$T/range.out")" = "$(head -c 5 /etc/os-release)" ] || fail "range GET"
sh -c "$(line "$T/run1.out" "prefix=job-42/")" >"$T/list.out"
grep -q 'job-42/chk-2' "$T/list.out" || fail "the listing lacks job-42/chk-2"
ok "the printed curl commands put, get, range-get and list"
if grep -q 'state of job 42' "$DEV/store/job-42/chk-1"; then fail "plaintext in the stored object"; fi
ok "the object on disk is ciphertext"

# The S3 commands, as printed, with the keys from s3.env.
s3=$(sed -n '/set -a/,/^$/p' "$T/run1.out" | grep '^  ' | sed 's/^  //')
printf '%s\n' "$s3" >"$T/s3.sh"
grep -q 'aws --endpoint-url http://127.0.0.1:' "$T/s3.sh" || fail "no aws command printed"
sh -e "$T/s3.sh" >"$T/s3.out" 2>"$T/s3.err" || { cat "$T/s3.err" >&2; fail "aws commands"; }
grep -q 'etc/os-release' "$T/s3.out" || fail "aws s3 ls did not list etc/os-release"
tail -n "$(wc -l </etc/os-release)" "$T/s3.out" | cmp -s - /etc/os-release ||
	fail "aws s3 cp back did not give /etc/os-release"
if grep -rq 'PRETTY_NAME' "$DEV/store/demo"; then fail "plaintext in the stored S3 object"; fi
ok "the printed aws commands make a bucket, copy in, list and copy back; ciphertext on disk"

stop_run
grep -q 'server stopped' "$T/run1.out" || fail "run.sh did not say the server stopped"
url=$(sed -n 's/.*listening on \([^ ;]*\).*/\1/p' "$T/run1.out" | tail -n 1)
if curl -sS -m 5 "$url/healthz"; then fail "the server still answers after SIGTERM"; fi
ok "SIGTERM stopped the server and run.sh"

start "$T/run2.out"
if grep -q 'made a development master key' "$T/run2.out"; then fail "the second start made a new master key"; fi
sh -c "$(line "$T/run2.out" "admin.header http.*/chk-1\$")" >"$T/get2.out"
[ "$(cat "$T/get2.out")" = "state of job 42" ] || fail "second start: GET gave '$(cat "$T/get2.out")'"
ok "a second make run reuses the keys and reads the first run's object"
stop_run
