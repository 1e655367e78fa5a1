#!/bin/sh
# atrest server streams with bounded memory: a 2 GiB PUT (chunked, from a
# pipe) and GET, with the server's peak resident memory (VmHWM) under
# 128 MiB, and the bytes back identical (SHA-256).
set -eu
. "$ATREST_SRC/tests/cli/lib.sh"
. "$ATREST_SRC/tests/service/lib/server.sh"
SIZE=2147483648

new_key
atrest init >/dev/null
new_apikey w writer
server_start
want=$(head -c $SIZE /dev/zero | sha256sum | cut -d' ' -f1)
head -c $SIZE /dev/zero | curl -sS --max-time 1200 -H "@$T/w.hdr" -T - \
	-o "$T/body" -w '%{http_code}' "$URL/v1/checkpoints/big" >"$T/status" ||
	fail "curl PUT"
expect 201 "2 GiB PUT streamed from a pipe"
body_json "j['size'] == $SIZE"
curl -sS --max-time 1200 -H "@$T/w.hdr" "$URL/v1/checkpoints/big" | sha256sum |
	cut -d' ' -f1 >"$T/got"
[ "$(cat "$T/got")" = "$want" ] || fail "the 2 GiB object came back different"
ok "2 GiB GET streamed back identical"
hwm=$(rss_hwm)
echo "# server peak RSS (VmHWM): $hwm KiB"
[ "$hwm" -lt 131072 ] || fail "peak RSS $hwm KiB is over 128 MiB"
ok "peak RSS $hwm KiB < 128 MiB"
server_stop
