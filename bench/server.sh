#!/bin/sh
# Benchmark of atrest server beside nginx (Debian's), in one run on this
# machine: wrk PUT and GET of 4 KiB and 1 MiB objects, plain HTTP and TLS,
# 1 and 8 connections.  nginx serves and accepts (WebDAV PUT) the same
# bytes as files from a private directory on 127.0.0.1; both get the same
# certificate.  Prints a Markdown table and writes it, with the date and
# the machine, into docs/BENCHMARKS.md between the "server-bench" markers.
# Usage: bench/server.sh BUILD_DIR [SECONDS_PER_RUN]   (default 10)
set -eu
BUILD=$(cd "${1:-build}" && pwd)
SECS=${2:-10}
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
unset ATREST_KEY ATREST_PASSPHRASE ATREST_KEY_URI ATREST_API_KEY
command -v wrk >/dev/null && command -v nginx >/dev/null ||
	{ echo "server.sh: needs wrk and nginx (scripts/deps.sh)" >&2; exit 1; }

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Keys and certificate.
export ATREST_KEY_FILE="$W/master.key" ATREST_STORE="$W/store"
"$BIN" keygen -o "$ATREST_KEY_FILE"
"$BIN" init >/dev/null
"$BIN" gen-cert --common-name localhost --ip 127.0.0.1 -o "$W/tls" >/dev/null
ATREST_WRK_KEY=$("$BIN" apikey create --role writer --name bench | tail -n 1)
export ATREST_WRK_KEY

# atrest server, plain and TLS (one process each, the same store).
ATREST_BIN=$BIN
. "$SRC/tests/service/lib/spawn.sh"
start_atrest() { # LOGFILE ARGS...: sets LASTPID and LASTURL
	spawn_server "$@" || exit 1
	LASTPID=$SPAWNED_PID
	LASTURL=$SPAWNED_URL
	PIDS="$PIDS $LASTPID"
}
start_atrest "$W/a1.log"
A_HTTP=$LASTURL
A_HTTP_PID=$LASTPID
start_atrest "$W/a2.log" --tls-cert "$W/tls/cert.pem" --tls-key "$W/tls/key.pem"
A_TLS=$LASTURL
A_TLS_PID=$LASTPID

# nginx: files under $W/www, PUT through WebDAV, in a private prefix.
NP=$(free_port)
NS=$(free_port)
mkdir -p "$W/www/v1/checkpoints/wrk" "$W/nginx/logs" "$W/nginx/tmp"
cat >"$W/nginx/nginx.conf" <<EOF
# Workers as root: they read and write files in this private 0700 directory.
user root root;
worker_processes 2;
pid $W/nginx/nginx.pid;
error_log $W/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $W/nginx/tmp;
	proxy_temp_path $W/nginx/tmp;
	fastcgi_temp_path $W/nginx/tmp;
	uwsgi_temp_path $W/nginx/tmp;
	scgi_temp_path $W/nginx/tmp;
	sendfile on;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$NP;
		listen 127.0.0.1:$NS ssl;
		ssl_certificate $W/tls/cert.pem;
		ssl_certificate_key $W/tls/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		root $W/www;
		client_max_body_size 2m;
		dav_methods PUT;
		create_full_put_path on;
	}
}
EOF
nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
PIDS="$PIDS $NGINX_PID"
sleep 1
kill -0 "$NGINX_PID" || { cat "$W/nginx/logs/error.log" >&2; exit 1; }

# The same objects on both: 64 names of each size.
fill() { # SIZE
	head -c "$1" /dev/urandom >"$W/obj"
	i=0
	while [ $i -lt 64 ]; do
		curl -sS -o /dev/null -H "Authorization: Bearer $ATREST_WRK_KEY" -T "$W/obj" \
			"$A_HTTP/v1/checkpoints/wrk/$i"
		cp "$W/obj" "$W/www/v1/checkpoints/wrk/$i"
		i=$((i + 1))
	done
}

# CPU seconds (user + system) of a process and its children threads.
cpu_of() { # PID...
	total=0
	for p in "$@"; do
		t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
		total=$((total + t))
	done
	echo "$total"
}
nginx_pids() {
	echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
}

HZ=$(getconf CLK_TCK)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
ROWS="$W/rows"
: >"$ROWS"
run() { # SERVER URL PIDS OP SIZE CONNS
	before=$(cpu_of $3)
	ATREST_WRK_MODE=$4 ATREST_WRK_SIZE=$5 ATREST_WRK_NAMES=64 \
		wrk -t "$([ "$6" = 1 ] && echo 1 || echo 2)" -c "$6" -d "${SECS}s" --latency \
		--timeout 30s -s "$SRC/tests/service/lib/mix.lua" "$2" >"$W/wrk.out" 2>&1
	after=$(cpu_of $3)
	reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$W/wrk.out")
	rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$W/wrk.out")
	p50=$(awk '$1 == "50%" {print $2}' "$W/wrk.out")
	p99=$(awk '$1 == "99%" {print $2}' "$W/wrk.out")
	errs=$(grep -E 'Non-2xx|Socket errors' "$W/wrk.out" | tr -s ' ' | tr '\n' ' ' || true)
	cpu_us=$(awk -v c="$((after - before))" -v hz="$HZ" -v n="${reqs:-0}" \
		'BEGIN { if (n > 0) printf "%.0f", c / hz / n * 1e6; else print "-" }')
	mibs=$(awk -v r="${rps:-0}" -v s="$5" 'BEGIN { printf "%.1f", r * s / 1048576 }')
	label=$([ "$5" = 4096 ] && echo "4 KiB" || echo "1 MiB")
	proto=$(case $2 in https*) echo TLS ;; *) echo HTTP ;; esac)
	printf '| %s | %s %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$4" \
		"$label" "$proto" "$6" "${rps:-0}" "$mibs" "${p50:--}" "${p99:--}" "$cpu_us" \
		"${errs:-0}" | tee -a "$ROWS"
}

for size in 4096 1048576; do
	fill "$size"
	for op in get put; do
		for conns in 1 8; do
			run atrest "$A_HTTP" "$A_HTTP_PID" $op $size $conns
			run nginx "http://127.0.0.1:$NP" "$(nginx_pids)" $op $size $conns
			run atrest "$A_TLS" "$A_TLS_PID" $op $size $conns
			run nginx "https://127.0.0.1:$NS" "$(nginx_pids)" $op $size $conns
		done
	done
done

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
{
	echo "<!-- server-bench: written by bench/server.sh; do not edit by hand -->"
	echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $CPU, $(nproc) CPUs, ${SECS} s per row;" \
		"load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
	echo "| server | request | protocol | connections | requests/s | MiB/s | p50 | p99 | server CPU µs/request | errors |"
	echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
	cat "$ROWS"
	echo "<!-- /server-bench -->"
} >"$W/table"
DOC="$SRC/docs/BENCHMARKS.md"
if grep -q '<!-- server-bench' "$DOC"; then
	awk -v t="$W/table" '
		/<!-- server-bench/ { while ((getline l < t) > 0) print l; skip = 1; next }
		/<!-- \/server-bench -->/ { skip = 0; next }
		!skip' "$DOC" >"$W/doc" && cat "$W/doc" >"$DOC"
else
	{ echo; echo "## Server (bench/server.sh)"; echo; cat "$W/table"; } >>"$DOC"
fi
echo "table written to $DOC"
