#!/bin/sh
# Quick paired comparison of the server's GET path, for a machine that is
# shared: runs take turns so that both sides of a ratio see the same load.
#   audit: 4 KiB GETs, 8 connections, from two servers on one store, one
#          with the audit trail on (the default) and one with ATREST_AUDIT=off;
#   nginx: 1 MiB GETs, 8 connections, from atrest (audit on) and from nginx
#          serving the same plaintext files.
# Prints each round and the median of each side and of the ratios, and the
# atrest servers' CPU time per request (user + system, from /proc), which a
# loaded machine disturbs far less than requests per second.
# Usage: bench/server_get.sh BUILD_DIR [ROUNDS] [SECONDS]   (default 5, 3)
set -eu
BUILD=$(cd "${1:-build}" && pwd)
ROUNDS=${2:-5}
SECS=${3:-3}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN="$BUILD/atrest"
W=$(mktemp -d "${TMPDIR:-/tmp}/atrest-bench.XXXXXX")
PIDS=""
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset ATREST_KEY ATREST_PASSPHRASE ATREST_KEY_URI ATREST_API_KEY ATREST_AUDIT
command -v wrk >/dev/null && command -v nginx >/dev/null ||
	{ echo "server_get.sh: needs wrk and nginx (scripts/deps.sh)" >&2; exit 1; }

export ATREST_KEY_FILE="$W/master.key" ATREST_STORE="$W/store"
"$BIN" keygen -o "$ATREST_KEY_FILE"
"$BIN" init >/dev/null
ATREST_WRK_KEY=$("$BIN" apikey create --role writer --name bench | tail -n 1)
export ATREST_WRK_KEY

ATREST_BIN=$BIN
. "$SRC/tests/service/lib/spawn.sh"
spawn_server "$W/on.log" || exit 1
ON=$SPAWNED_URL
ON_PID=$SPAWNED_PID
PIDS="$PIDS $SPAWNED_PID"
ATREST_AUDIT=off spawn_server "$W/off.log" || exit 1
OFF=$SPAWNED_URL
OFF_PID=$SPAWNED_PID
PIDS="$PIDS $SPAWNED_PID"

NP=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$W/www/v1/checkpoints/wrk" "$W/nginx/logs" "$W/nginx/tmp"
cat >"$W/nginx/nginx.conf" <<EOF
user root root;
worker_processes 2;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $W/nginx/tmp;
	sendfile on;
	keepalive_requests 1000000;
	server { listen 127.0.0.1:$NP; root $W/www; }
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -g 'daemon off;' &
PIDS="$PIDS $!"
sleep 1

fill() { # SIZE PREFIX
	head -c "$1" /dev/urandom >"$W/obj"
	i=0
	while [ $i -lt 64 ]; do
		curl -sS -o /dev/null -H "Authorization: Bearer $ATREST_WRK_KEY" \
			-T "$W/obj" "$ON/v1/checkpoints/$2/$i"
		cp "$W/obj" "$W/www/v1/checkpoints/$2/$i" 2>/dev/null ||
			{ mkdir -p "$W/www/v1/checkpoints/$2" && cp "$W/obj" "$W/www/v1/checkpoints/$2/$i"; }
		i=$((i + 1))
	done
}
fill 4096 wrk
fill 1048576 big

HZ=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# rps URL PREFIX [PID]: requests per second of SECS of GETs, 8 connections;
# with PID, also appends that process's CPU µs per request to $W/cpu.
rps() {
	c0=$([ -n "${3:-}" ] && cpu_of "$3" || echo 0)
	ATREST_WRK_MODE=get ATREST_WRK_NAMES=64 ATREST_WRK_PREFIX=$2 \
		wrk -t 2 -c 8 -d "${SECS}s" --timeout 30s \
		-s "$SRC/tests/service/lib/mix.lua" "$1" >"$W/wrk.out" 2>&1
	c1=$([ -n "${3:-}" ] && cpu_of "$3" || echo 0)
	n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$W/wrk.out")
	[ -z "${3:-}" ] || awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="${n:-0}" -v k="$2.$3" \
		'BEGIN { if (n > 0) printf "%s %.1f\n", k, c / hz / n * 1e6 }' >>"$W/cpu"
	sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$W/wrk.out"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$W/a"
: >"$W/n"
: >"$W/cpu"
r=1
while [ $r -le "$ROUNDS" ]; do
	on=$(rps "$ON" wrk "$ON_PID")
	off=$(rps "$OFF" wrk "$OFF_PID")
	at=$(rps "$ON" big "$ON_PID")
	ng=$(rps "http://127.0.0.1:$NP" big)
	echo "$on $off" >>"$W/a"
	echo "$at $ng" >>"$W/n"
	printf 'round %d: 4 KiB GET/s audit on %s off %s (%.2f); 1 MiB GET/s atrest %s nginx %s (%.2f)\n' \
		"$r" "$on" "$off" "$(echo "$on $off" | awk '{print $1 / $2}')" "$at" "$ng" \
		"$(echo "$at $ng" | awk '{print $1 / $2}')"
	r=$((r + 1))
done
printf 'median: 4 KiB GET/s audit on %s, off %s, ratio %s\n' \
	"$(cut -d' ' -f1 "$W/a" | median)" "$(cut -d' ' -f2 "$W/a" | median)" \
	"$(awk '{print $1 / $2}' "$W/a" | median)"
printf 'median: 1 MiB GET/s atrest %s, nginx %s, ratio %s\n' \
	"$(cut -d' ' -f1 "$W/n" | median)" "$(cut -d' ' -f2 "$W/n" | median)" \
	"$(awk '{print $1 / $2}' "$W/n" | median)"
cpu() { awk -v k="$1" '$1 == k {print $2}' "$W/cpu" | median; }
printf 'median server CPU per request: 4 KiB GET audit on %s µs, off %s µs; 1 MiB GET %s µs\n' \
	"$(cpu "wrk.$ON_PID")" "$(cpu "wrk.$OFF_PID")" "$(cpu "big.$ON_PID")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
