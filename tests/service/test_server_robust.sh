#!/bin/sh
# atrest server against hostile and unlucky clients on 127.0.0.1: malformed
# HTTP, huge headers, random bytes, slowloris, 1,000 idle connections,
# clients that disconnect mid-upload (nothing visible, no temp file left),
# create-only puts racing in two server processes, and SIGTERM while uploads are in flight.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"
HTTPC="$PY $ATREST_SRC/tests/service/lib/httpc.py"

new_key
atrest init >/dev/null
new_apikey w writer
server_start --header-timeout 3 --idle-timeout 5

check "malformed requests are refused and the server stays up" $HTTPC malformed "$PORT"
check "random bytes on 200 connections" $HTTPC random "$PORT" 200
check "slowloris: 50 slow heads are cut, others are served" $HTTPC slowloris "$PORT" 50 60
req w GET /metrics
grep -Eq '^atrest_server_connections_cut_total\{reason="header_timeout"\} [0-9]+' "$T/body" ||
	fail "no header_timeout cuts counted"
ok "header-timeout cuts are counted"
before=$(rss_hwm)
check "1,000 idle connections while serving" $HTTPC idle "$PORT" 1000 2
after=$(rss_hwm)
echo "# peak RSS before ${before} KiB, after 1,000 connections ${after} KiB"
[ "$after" -lt 262144 ] || fail "1,000 idle connections took the server over 256 MiB"
ok "1,000 idle connections: peak RSS ${after} KiB"

# A client gone mid-upload: nothing visible, the temp file removed.
check "abandoned upload" $HTTPC abandon "$PORT" "$T/w.key" gone/obj 50000000 5000000
i=0
while [ -n "$(find "$ATREST_STORE/.atrest/tmp" -mindepth 2 -type f 2>/dev/null)" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -z "$(find "$ATREST_STORE/.atrest/tmp" -mindepth 2 -type f 2>/dev/null)" ] ||
	fail "a temp file stayed after the client left: $(find "$ATREST_STORE/.atrest/tmp" -mindepth 2 -type f)"
ok "no temp file left by the abandoned upload"
req w GET /v1/checkpoints/gone/obj
expect 404 "the abandoned object is not visible"
req w GET '/v1/checkpoints?prefix=gone'
body_json 'j["objects"] == []'

# An upload that stalls past the idle timeout is dropped too.
$PY - "$PORT" "$T/w.key" <<'PYEOF' || fail "stalled upload"
import socket, sys, time
key = open(sys.argv[2]).read().strip()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
s.sendall(("PUT /v1/checkpoints/stalled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Content-Length: 1000\r\n\r\nabc" % key).encode())
start = time.time()
try:
    closed = s.recv(100) == b""
except OSError:
    closed = True
print("stalled upload closed after %.1f s" % (time.time() - start))
sys.exit(0 if closed else 1)
PYEOF
req w GET /v1/checkpoints/stalled
expect 404 "the stalled object is not visible"

# Create-only puts racing in two server processes on one store.
spawn_server "$T/server2.log" || fail "the second server did not start"
SERVER2_PID=$SPAWNED_PID
check "create-only race across processes" $HTTPC create-race "$PORT" "$T/w.key" once/obj \
	"${SPAWNED_URL##*:}" 8
kill -TERM "$SERVER2_PID"
wait "$SERVER2_PID" || fail "the second server exited $? after SIGTERM"
SERVER2_PID=

# SIGTERM while three uploads are under way: they finish, new connections
# are refused, the server exits 0, the objects are complete.
rm -f "$T/started"
$HTTPC slow-uploads "$PORT" "$T/w.key" 3 3000000 4 "$T/started" >"$T/uploads.out" 2>&1 &
up=$!
i=0
while [ ! -f "$T/started" ] && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -TERM "$SERVER_PID"
sleep 0.3
check "new connections are refused while draining" $HTTPC refused "$PORT"
wait $up || { cat "$T/uploads.out" >&2; fail "uploads in flight did not all succeed"; }
cat "$T/uploads.out"
ok "uploads in flight during SIGTERM finished with 201"
server_stop
grep -q 'draining' "$SERVER_LOG" || fail "no drain line in the log"
server_start
for i in 0 1 2; do
	req w GET "/v1/checkpoints/drain/$i"
	expect 200 "drain/$i is there after the restart"
	[ "$(size "$T/body")" = 3000000 ] || fail "drain/$i is not complete"
done
server_stop
atrest ls >/dev/null
[ -z "$(find "$ATREST_STORE/.atrest/tmp" -mindepth 2 -type f 2>/dev/null)" ] ||
	fail "temp files remain after the next open"
ok "no temp file after the next open"
