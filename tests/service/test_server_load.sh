#!/bin/sh
# atrest server under load: 8 connections for 30 s of PUT and GET mixed
# (wrk), with no error and no non-2xx answer; then the objects verify.
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"

new_key
atrest init >/dev/null
new_apikey w writer
server_start
head -c 4096 /dev/zero | tr '\0' x >"$T/body4k"
i=0
while [ $i -lt 64 ]; do
	req w PUT "/v1/checkpoints/wrk/$i" --data-binary @"$T/body4k"
	expect 201 "fill wrk/$i" >/dev/null
	i=$((i + 1))
done
ok "64 objects filled"
ATREST_WRK_KEY=$(cat "$T/w.key") ATREST_WRK_MODE=mix ATREST_WRK_SIZE=4096 \
	timeout 120 wrk -t 2 -c 8 -d 30s --timeout 30s \
	-s "$ATREST_SRC/tests/service/lib/mix.lua" "$URL" >"$T/wrk.out" 2>&1 ||
	{ cat "$T/wrk.out" >&2; fail "wrk failed"; }
cat "$T/wrk.out"
grep -q 'Non-2xx or 3xx responses' "$T/wrk.out" && fail "non-2xx answers under load"
grep -q 'Socket errors' "$T/wrk.out" && fail "socket errors under load"
reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$T/wrk.out")
[ "${reqs:-0}" -gt 100 ] || fail "only ${reqs:-0} requests in 30 s"
ok "8 connections, 30 s, $reqs requests, 0 errors"
server_stop
check_exit 0 atrest verify wrk/
check_out '64'
