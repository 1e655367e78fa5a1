#!/bin/sh
# A 5 GiB object through the S3 store, streamed both ways from and to a
# pipe with the default settings (8 MiB parts, 3 uploads at once, reads
# ahead): peak RSS (VmHWM) of the atrest process at most 64 MiB each way,
# the bytes the same (SHA-256), 641 parts on the server.  The object is
# removed at once (RGW's memstore holds it in RAM).
set -eu
. "$ATREST_SRC/tests/service/lib/s3.sh"
new_key
SIZE=$((5 * 1024 * 1024 * 1024))
LIMIT_KB=$((64 * 1024))

# rss FILE CMD...: run CMD, its peak RSS in KiB into FILE.
rss() {
	/usr/bin/python3 -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$@"
}

stream() {
	openssl enc -aes-128-ctr -nosalt -pass pass:big5 -pbkdf2 -in /dev/zero 2>/dev/null |
		head -c "$SIZE"
}

check_exit 0 atrest init
mkfifo "$T/tee"
sha256sum <"$T/tee" >"$T/sum.in" &
hasher=$!
t0=$(date +%s)
stream | tee "$T/tee" | rss "$T/rss.put" "$ATREST_BIN" put big5 - || fail "put of 5 GiB failed"
t1=$(date +%s)
wait "$hasher"
ok "put 5 GiB from a pipe in $((t1 - t0)) s, peak RSS $(cat "$T/rss.put") KiB"
[ "$(cat "$T/rss.put")" -le "$LIMIT_KB" ] || fail "put peak RSS $(cat "$T/rss.put") KiB > 64 MiB"

awscli s3api head-object --bucket "$BUCKET" --key store/big5 >"$T/head.json"
$PY - "$T/head.json" "$SIZE" <<'PY' || fail "stored object: $(cat "$T/head.json")"
import json, sys
h = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert h["ContentLength"] > n, h
assert h["ETag"].strip('"').endswith("-%d" % ((h["ContentLength"] + (8 << 20) - 1) // (8 << 20))), h
PY
ok "stored as $(sed -n 's/.*"ContentLength": \([0-9]*\).*/\1/p' "$T/head.json") bytes in 8 MiB parts"
awscli s3api list-multipart-uploads --bucket "$BUCKET" >"$T/mpu.json"
! grep -q UploadId "$T/mpu.json" || fail "an upload was left behind"

t0=$(date +%s)
rss "$T/rss.get" "$ATREST_BIN" get big5 | sha256sum >"$T/sum.out"
t1=$(date +%s)
ok "got 5 GiB to a pipe in $((t1 - t0)) s, peak RSS $(cat "$T/rss.get") KiB"
[ "$(cut -d' ' -f1 "$T/sum.in")" = "$(cut -d' ' -f1 "$T/sum.out")" ] ||
	fail "the 5 GiB came back different"
ok "the 5 GiB came back the same (SHA-256 $(cut -c1-16 "$T/sum.out")...)"
[ "$(cat "$T/rss.get")" -le "$LIMIT_KB" ] || fail "get peak RSS $(cat "$T/rss.get") KiB > 64 MiB"
check_exit 0 atrest get big5 --range $((SIZE - 10))-
[ "$(size "$T/out")" -eq 10 ] || fail "the last 10 bytes"
check_exit 0 atrest rm big5
CEPH_CONF="$RGW_DIR/ceph.conf" timeout 120 radosgw-admin gc process --include-all \
	>/dev/null 2>&1 || :
