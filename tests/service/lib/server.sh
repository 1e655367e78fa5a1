# Helpers of the server tests (sourced after tests/cli/lib.sh): start
# 'atrest server' on 127.0.0.1 on a free port (port 0: the kernel picks, the
# startup line tells), stop it by PID, and curl with the key kept in a
# header file (never in argv).
SERVER_LOG="$T/server.log"

. "$ATREST_SRC/tests/service/lib/spawn.sh"

# server_start [SERVER ARGS...]: start on a fresh or existing store $ATREST_STORE
# with the key $ATREST_KEY_FILE; sets SERVER_PID, PORT and URL.
server_start() {
	spawn_server "$SERVER_LOG" "$@" || fail "the server did not start"
	SERVER_PID=$SPAWNED_PID
	URL=$SPAWNED_URL
	PORT=${URL##*:}
	ok "server $SERVER_PID listening on $URL"
}

# server_stop: SIGTERM, then wait (60 s at most) for exit status 0.
server_stop() {
	[ -n "${SERVER_PID:-}" ] || return 0
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	i=0
	while kill -0 "$SERVER_PID" 2>/dev/null && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		fail "the server did not stop within 60 s of SIGTERM"
	fi
	set +e
	wait "$SERVER_PID"
	rc=$?
	set -e
	SERVER_PID=
	[ "$rc" = 0 ] || { cat "$SERVER_LOG" >&2; fail "the server exited $rc after SIGTERM"; }
	ok "server stopped cleanly (exit 0)"
}

# Stop a server still running when the test ends (failure included):
# SERVER_PID, and SERVER2_PID of a test that runs a second one.
server_cleanup() {
	for p in ${SERVER_PID:-} ${SERVER2_PID:-}; do
		kill -KILL "$p" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap server_cleanup EXIT

# new_apikey NAME ROLE [TENANT]: a key in $T/NAME.key and a header file
# $T/NAME.hdr ("Authorization: Bearer ...", mode 0600).
new_apikey() {
	atrest ${3:+--tenant "$3"} apikey create --role "$2" --name "$1" >"$T/$1.out" ||
		fail "apikey create $1"
	tail -n 1 "$T/$1.out" >"$T/$1.key"
	(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$T/$1.key")" >"$T/$1.hdr")
}

# req KEYNAME METHOD PATH [CURL ARGS...]: status in $T/status, body in
# $T/body, headers in $T/headers.  KEYNAME "-" sends no key.
req() {
	k=$1
	m=$2
	p=$3
	shift 3
	set -- -s -S --max-time 120 -o "$T/body" -D "$T/headers" -w '%{http_code}' \
		-X "$m" "$@" "$URL$p"
	if [ "$k" != - ]; then
		set -- -H "@$T/$k.hdr" "$@"
	fi
	curl "$@" >"$T/status" 2>"$T/curl.err" || true
}

# req_until STATUS KEYNAME METHOD PATH: repeat req (30 s at most) until it
# answers STATUS (a change the server or another process makes, which the
# server sees within about a second); then expect it.
req_until() {
	want=$1
	shift
	i=0
	while req "$@" && [ "$(cat "$T/status")" != "$want" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

# expect STATUS DESCRIPTION: the last req answered STATUS.
# log_wait PATTERN: until the server's log has a line matching PATTERN
# (grep -E), 60 s at most; 1 when it never came.
log_wait() {
	lw_i=0
	while ! grep -Eq "$1" "$SERVER_LOG"; do
		[ $lw_i -lt 600 ] || return 1
		sleep 0.1
		lw_i=$((lw_i + 1))
	done
}

expect() {
	got=$(cat "$T/status")
	if [ "$got" != "$1" ]; then
		echo "--- headers:" >&2
		cat "$T/headers" >&2 2>/dev/null
		echo "--- body:" >&2
		head -c 1000 "$T/body" >&2 2>/dev/null
		fail "$2: status $got, expected $1"
	fi
	ok "$2: $1"
}

# header NAME PATTERN: the last response has header NAME matching PATTERN.
header() {
	grep -i "^$1:" "$T/headers" | grep -Eq -- "$2" ||
		fail "header $1 does not match '$2': $(grep -i "^$1:" "$T/headers")"
	ok "header $1 matches '$2'"
}

# body_json EXPR: Python expression on j = the last response body (JSON).
body_json() {
	cp "$T/body" "$T/out"
	json "$1"
}

# rss_hwm: the server's peak resident memory in KiB (VmHWM).
rss_hwm() {
	sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SERVER_PID/status"
}
